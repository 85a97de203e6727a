//! `Client`: a cheap clone over shared state (config, channel pool, cancellation token,
//! background cleanup tracker), and `ClientBuilder`.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::operation::{CancelReason, Operations, Registered, Scope};
use crate::soap::envelope::HeaderTemplate;
use crate::soap::xml::{self, Element, ParseError, TextSink};
use crate::soap::{Envelope, Fault, ns};
use crate::transport::robust::{self, RobustState};
use crate::transport::{
    Auth, Endpoint, HttpResponse, RawEndpoint, RequestKind, RetryPolicy, TlsOptions, Transport,
    TransportConfig, TransportStats, http_timeout_for, parse_pem_certificates,
};
use crate::transport::{Proxy, select_proxy};

/// The default `w:OperationTimeout` (the long-poll length for Receive and Pull).
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(20);
/// The default `w:MaxEnvelopeSize` in bytes (Windows' default `MaxEnvelopeSizekb` is 500).
pub const DEFAULT_MAX_ENVELOPE_SIZE: u32 = 153_600;
/// The most a request envelope is made to hold, in bytes, whatever
/// [`ClientBuilder::max_envelope_size`] says: Windows' default `MaxEnvelopeSizekb` (500
/// KB), the limit a host applies to the requests it takes ([MS-WSMV] 3.1.4.1.5 refuses a
/// larger one with `w:EncodingLimit`). `w:MaxEnvelopeSize` limits the responses only.
pub(crate) const MAX_REQUEST_ENVELOPE: usize = 512_000;
/// The default cap on one response body.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// The default bound on the output [`Client::run`] and [`crate::Command::collect`] keep
/// (stdout and stderr together): 64 MiB.
pub const DEFAULT_MAX_OUTPUT: usize = 64 * 1024 * 1024;

/// Builds a [`Client`]. Setter errors are kept until [`ClientBuilder::build`].
#[must_use]
#[derive(Debug)]
pub struct ClientBuilder {
    endpoint: RawEndpoint,
    auth: Auth,
    operation_timeout: Duration,
    http_timeout: Option<Duration>,
    connect_timeout: Duration,
    max_envelope_size: u32,
    max_response_bytes: usize,
    max_output: usize,
    locale: Option<String>,
    token: Option<CancellationToken>,
    tls: TlsOptions,
    allow_insecure_basic: bool,
    max_channels: usize,
    max_shells: Option<usize>,
    idle_timeout: Duration,
    retry: Option<RetryPolicy>,
    robust_connections: bool,
    error: Option<Error>,
    proxy: Option<Proxy>,
    proxy_from_env: bool,
}

impl ClientBuilder {
    /// Robust Connections ([MS-WSMV] §3.1.4.1.39; default on): every request for a
    /// resource carries a `p:OperationID`. Once the server has echoed one for a resource
    /// URI (Windows 8 / Server 2012 and later do for shells and CIM objects), a request
    /// to it whose response was lost, that timed out, that a proxy refused with 502-504,
    /// or that could not connect, is sent again on a fresh connection with the same
    /// OperationID marked `s:mustUnderstand="true"`, and the server answers from its
    /// cache instead of carrying it out twice. Up to 8 retransmissions (the first at
    /// once, then 50 ms to 2 s apart), within 185 s of the first failure (§3.2.5.3);
    /// each attempt has its own HTTP timeout, and a cancel or deadline ends the wait at
    /// once. Against a server that
    /// has not echoed an OperationID nothing is retransmitted: such failures are
    /// [`Error::ResponseLost`].
    pub fn robust_connections(mut self, yes: bool) -> Self {
        self.robust_connections = yes;
        self
    }

    /// Retries quota faults and failures that left nothing done on the server, with
    /// backoff (see [`RetryPolicy`] for exactly what is retried). Default: none, apart
    /// from sending a read whose response was lost once more on a fresh connection.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Credentials; [`Auth::None`] by default.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// The `w:OperationTimeout` of each request (default 20 s). For Receive and Pull this
    /// is the long-poll length; the server answers `w:TimedOut` when it passes.
    pub fn operation_timeout(mut self, d: Duration) -> Self {
        if d < Duration::from_millis(1) {
            self.error
                .get_or_insert(Error::Config("operation timeout must be positive".into()));
        }
        self.operation_timeout = d;
        self
    }

    /// The HTTP timeout of one request (default: operation timeout + 10 s). Keep it
    /// longer than the operation timeout: a Receive may wait that long for output, and
    /// one cut by the HTTP timeout is sent again (Robust Connections) rather than
    /// answered, or fails with [`Error::HttpTimeout`] without them. [`ClientBuilder::build`]
    /// logs a warning (`tracing`) when it is not longer, and refuses zero.
    pub fn http_timeout(mut self, d: Duration) -> Self {
        self.http_timeout = Some(d);
        self
    }

    /// How long connecting (TCP and TLS) may take (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// `w:MaxEnvelopeSize` in bytes (default 153600): the largest response the host may
    /// send. Windows refuses values under 8192.
    ///
    /// It also sizes the requests this client splits (PSRP fragments, stdin, file-copy
    /// chunks), but never above 512,000 bytes, Windows' default `MaxEnvelopeSizekb` (500
    /// KB): the host applies its own limit to requests, so raising this for large WMI
    /// results does not make uploads too large for a host with the default settings.
    pub fn max_envelope_size(mut self, bytes: u32) -> Self {
        self.max_envelope_size = bytes;
        self
    }

    /// The cap on one response body (default 4 MiB). Bigger bodies are a typed error.
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The most output, stdout and stderr together, that [`Client::run`],
    /// [`Client::run_ps`] and [`crate::Command::collect`] keep in memory (default
    /// [`DEFAULT_MAX_OUTPUT`], 64 MiB). Past it they fail with
    /// [`Error::OutputTooLarge`], stop the command (Signal terminate) and, for `run`,
    /// delete the shell. Streaming a [`crate::Command`] yourself is not bounded by it.
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.max_output = bytes;
        self
    }

    /// `w:Locale`/`p:DataLocale` (default `en-US`); `None` omits them.
    pub fn locale(mut self, locale: Option<&str>) -> Self {
        self.locale = locale.map(str::to_string);
        self
    }

    /// The client's cancellation token: cancelling it cancels every operation (with
    /// reason Shutdown). Each operation holds a child token.
    pub fn cancellation(mut self, token: CancellationToken) -> Self {
        self.token = Some(token);
        self
    }

    /// Trusts the CA certificates of a PEM bundle, in addition to the web PKI roots.
    pub fn add_root_certificate_pem(mut self, pem: &[u8]) -> Self {
        match parse_pem_certificates(pem) {
            Ok(certs) => self.tls.extra_roots.extend(certs),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Trusts only the added CA certificates, not the built-in web PKI roots.
    pub fn only_added_roots(mut self, yes: bool) -> Self {
        self.tls.no_default_roots = yes;
        self
    }

    /// Accepts any TLS certificate. Dangerous: anyone on the path can read and change
    /// the traffic. Only for lab hosts and tests.
    pub fn danger_accept_invalid_certs(mut self, yes: bool) -> Self {
        self.tls.danger_accept_invalid_certs = yes;
        self
    }

    /// Also trusts the operating system's trust store (default off): on Linux the CA
    /// bundle openssl would read (`SSL_CERT_FILE` / `SSL_CERT_DIR` when set, else the
    /// system's, e.g. `/etc/ssl/certs` from the `ca-certificates` package), on Windows
    /// the system certificate store, on macOS the keychain; this is where an
    /// enterprise's internal CA is usually installed. It adds to the web PKI roots and
    /// the added CAs; with [`ClientBuilder::only_added_roots`] it replaces the web PKI
    /// roots. Read when the client is built: a store that cannot be read or holds no
    /// usable certificate makes [`ClientBuilder::build`] fail with [`Error::Config`]
    /// (for `https://` endpoints) rather than fall back to the web roots.
    pub fn os_roots(mut self, yes: bool) -> Self {
        self.tls.os_roots = yes;
        self
    }

    /// Pins the server's certificate by the SHA-256 fingerprint of its DER encoding (of
    /// the end-entity certificate, not its public key), as 64 hex digits with or without
    /// `:` between the bytes (`openssl x509 -noout -fingerprint -sha256` prints it).
    /// Call it once per certificate to accept several (a renewal ahead of time).
    ///
    /// With a pin set, the pin **is** the trust decision: a certificate whose
    /// fingerprint is a pin is accepted, any other refused with
    /// [`Error::PinMismatch`] (which names the fingerprint presented). Checked: the
    /// fingerprint, and the TLS handshake signature with the certificate's key (so the
    /// server holds its private key). Not checked: the issuer and chain (the roots,
    /// [`ClientBuilder::os_roots`] and [`ClientBuilder::danger_accept_invalid_certs`]
    /// play no part), the host name, the validity dates, key usages and revocation.
    /// Channel binding (`tls-server-end-point`) uses the pinned certificate as always.
    /// Windows' certificate thumbprint is SHA-1 and is not accepted here. A malformed
    /// pin makes [`ClientBuilder::build`] fail with [`Error::Config`].
    pub fn pin_sha256(mut self, fingerprint: &str) -> Self {
        match crate::transport::parse_pin(fingerprint) {
            Ok(pin) => {
                if !self.tls.pins.contains(&pin) {
                    self.tls.pins.push(pin);
                }
            }
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
        self
    }

    /// Allows Basic authentication over plain HTTP (the password travels in clear text).
    pub fn allow_insecure_basic(mut self, yes: bool) -> Self {
        self.allow_insecure_basic = yes;
        self
    }

    /// The most connections (channels) to the endpoint at once (default 32, at least 2).
    /// One eighth of them (at least one) is kept for short requests: long polls
    /// (Receive, Pull) never hold more than the rest, so a cancel's Signal, a Get or an
    /// Identify finds a channel however many commands are running. Requests waiting for
    /// a channel are served in the order they came; the wait is not HTTP time.
    ///
    /// Each running command and each enumeration being pulled holds a channel for its
    /// long poll, up to the OperationTimeout while it has nothing new. With more of them
    /// running at once than the long-poll share (seven eighths of `n`), the rest wait in
    /// line, and a quick command started then can wait up to an OperationTimeout or more
    /// for its first Receive: set `n` above the number of commands run at once (within
    /// the host's own limits, e.g. MaxShellsPerUser).
    pub fn max_channels(mut self, n: usize) -> Self {
        self.max_channels = n;
        self
    }

    /// The most shells (WinRS shells and PSRP runspace pools) this client keeps open on
    /// the host at once (default: no bound). Past it, opening one more (including the
    /// shell of [`Client::run`] and the pool of [`Client::copy`]) waits until one of the
    /// client's shells is deleted, instead of failing with the host's MaxShellsPerUser
    /// quota fault (2150859173; Windows' default quota is 30). A shell counts from its
    /// Create until its Delete has been answered (a dropped shell's Delete runs on a
    /// background task), or until [`Shell::disconnect`](crate::Shell::disconnect) hands
    /// it over. The host's quota counts the user's shells from every client, so leave
    /// room for other clients of the same account.
    pub fn max_shells(mut self, n: usize) -> Self {
        self.max_shells = Some(n.max(1));
        self
    }

    /// How long an idle channel is kept (default 60 s, under HTTP.sys's 120 s).
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }

    /// Connects through `proxy` (an HTTP `CONNECT` tunnel or SOCKS5; see [`Proxy`]):
    /// every channel is one tunnel over its own connection to the proxy, so NTLM and
    /// Kerberos contexts stay bound to one connection. The connect timeout covers the
    /// connection to the proxy and its handshake. An explicit proxy is used for the
    /// endpoint whatever the environment says (`NO_PROXY` included).
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Takes the proxy from the environment as curl does (default off): `HTTPS_PROXY`
    /// for `https://` endpoints, `HTTP_PROXY` for `http://` ones, `ALL_PROXY` for either
    /// when that is unset (each upper-case, then lower-case); `NO_PROXY` lists hosts,
    /// domains (with their subdomains), addresses and CIDR ranges reached directly, `*`
    /// for all. Within a CGI program (`REQUEST_METHOD` set) the environment is ignored.
    /// Read when the client is built; [`ClientBuilder::proxy`] takes precedence.
    ///
    /// [`ClientBuilder::build`] fails with [`Error::Config`] when the variable that
    /// applies names a proxy this client cannot use (`https://`, `socks4://`).
    pub fn proxy_from_env(mut self, yes: bool) -> Self {
        self.proxy_from_env = yes;
        self
    }

    /// Builds the client. No connection is made until the first request.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid endpoint, TLS settings, Basic over HTTP
    /// without [`ClientBuilder::allow_insecure_basic`], a zero HTTP timeout or a
    /// `max_envelope_size` under 8192.
    pub fn build(self) -> Result<Client> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let endpoint = Endpoint::parse(&self.endpoint.0)?;
        if let Some(http) = self.http_timeout
            && http <= self.operation_timeout
        {
            // Not refused: a short HTTP timeout is how a caller fails fast on a host that
            // never answers (Identify, Get). But every long poll will be cut.
            tracing::warn!(
                http_timeout = ?http,
                operation_timeout = ?self.operation_timeout,
                "the HTTP timeout is not longer than the operation timeout: a Receive or Pull \
                 waiting for output that long is cut by it and sent again (Robust Connections) \
                 or fails with HttpTimeout; make it longer than the operation timeout"
            );
        }
        if self.http_timeout.is_some_and(|d| d.is_zero()) {
            return Err(Error::Config(
                "http_timeout must be longer than zero (every request would time out)".into(),
            ));
        }
        if self.tls.danger_accept_invalid_certs && matches!(self.auth, crate::Auth::Basic { .. }) {
            // CredSSP refuses this outright (it would delegate the password); Basic sends
            // it on every request, so say so.
            tracing::warn!(
                "Basic authentication with certificate verification turned off: the password \
                 goes to whoever answers on this address (a man in the middle included)"
            );
        }
        if self.max_envelope_size < 8192 {
            return Err(Error::Config(
                "max_envelope_size must be at least 8192 bytes".into(),
            ));
        }
        let mut config = TransportConfig::new(
            endpoint,
            self.auth,
            self.allow_insecure_basic,
            &self.tls,
            self.max_response_bytes,
            self.connect_timeout,
            self.max_channels,
            self.idle_timeout,
        )?;
        config.proxy = select_proxy(self.proxy, self.proxy_from_env, &config.endpoint)?;
        let session_id = Uuid::new_v4();
        let template = HeaderTemplate::new(&Envelope {
            operation_timeout: Some(self.operation_timeout),
            max_envelope_size: Some(self.max_envelope_size),
            locale: self.locale.as_deref(),
            session_id: Some(session_id),
            ..Envelope::new("", &config.endpoint.url)
        });
        Ok(Client {
            inner: Arc::new(ClientInner {
                transport: Arc::new(Transport::new(config)),
                operation_timeout: self.operation_timeout,
                http_timeout: self.http_timeout,
                max_envelope_size: self.max_envelope_size,
                max_output: self.max_output,
                locale: self.locale,
                token: self.token.unwrap_or_default(),
                tracker: TaskTracker::new(),
                operations: Arc::default(),
                session_id,
                retry: self.retry,
                robust: self.robust_connections.then(RobustState::default),
                template,
                shells: self
                    .max_shells
                    .map(|n| Arc::new(tokio::sync::Semaphore::new(n))),
            }),
        })
    }
}

impl ClientInner {
    /// The size a request envelope this client splits (PSRP fragments, stdin chunks)
    /// is kept within: `max_envelope_size`, at most [`MAX_REQUEST_ENVELOPE`].
    pub(crate) fn request_envelope_limit(&self) -> usize {
        (self.max_envelope_size as usize).min(MAX_REQUEST_ENVELOPE)
    }
}

pub(crate) struct ClientInner {
    /// The endpoint is the transport's (`transport.config.endpoint`): one copy per
    /// client, not two.
    pub(crate) transport: Arc<Transport>,
    pub(crate) operation_timeout: Duration,
    pub(crate) http_timeout: Option<Duration>,
    pub(crate) max_envelope_size: u32,
    pub(crate) max_output: usize,
    pub(crate) locale: Option<String>,
    pub(crate) token: CancellationToken,
    pub(crate) tracker: TaskTracker,
    /// The running operations, for [`Client::shutdown`] to wait for the cancelled ones.
    pub(crate) operations: Arc<Operations>,
    pub(crate) session_id: Uuid,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) robust: Option<RobustState>,
    /// The fixed headers of this client's requests, written once.
    pub(crate) template: HeaderTemplate,
    /// [`ClientBuilder::max_shells`]: a permit per shell the client has open.
    pub(crate) shells: Option<Arc<tokio::sync::Semaphore>>,
}

/// An async WS-Management client for one endpoint. Cloning is cheap (an `Arc`).
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<ClientInner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.transport.config.endpoint.url)
            .field("auth", &self.inner.transport.config.auth)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Starts building a client for `endpoint`, e.g. `http://host:5985/wsman`.
    pub fn builder(endpoint: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            endpoint: RawEndpoint(endpoint.into()),
            auth: Auth::None,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            http_timeout: None,
            connect_timeout: Duration::from_secs(10),
            max_envelope_size: DEFAULT_MAX_ENVELOPE_SIZE,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_output: DEFAULT_MAX_OUTPUT,
            locale: Some("en-US".into()),
            token: None,
            tls: TlsOptions::default(),
            allow_insecure_basic: false,
            max_channels: 32,
            max_shells: None,
            idle_timeout: Duration::from_secs(60),
            retry: None,
            robust_connections: true,
            error: None,
            proxy: None,
            proxy_from_env: false,
        }
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> &str {
        &self.inner.transport.config.endpoint.url
    }

    /// The client's cancellation token (cancelling it cancels every operation).
    pub fn cancellation_token(&self) -> &CancellationToken {
        &self.inner.token
    }

    /// Transport counters (connections, requests).
    pub fn transport_stats(&self) -> TransportStats {
        self.inner.transport.stats()
    }

    /// Waits for every background cleanup to finish: those of shells, pools and
    /// enumerations dropped, and those of every operation (a command, an enumeration, a
    /// pipeline) cancelled or dropped before the call (by its handle, its token, its
    /// deadline, the client's token), counted even when its task has not run since:
    /// when this returns, each has sent its Signal terminate, Release or PSRP stop
    /// signal and had the answer (or the failure, bounded by the HTTP timeout).
    /// Operations that are not cancelled go on and are not waited for (nor are their
    /// streams ended); neither are operations started afterwards.
    ///
    /// # Cancel safety
    /// Cancelling the wait leaves the cleanups running.
    pub async fn shutdown(&self) {
        self.inner.operations.wait_cancelled().await;
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
        self.inner.tracker.reopen();
    }

    /// Cancels every operation of this client (reason Shutdown) and waits for their
    /// cleanups: when it returns, every command, enumeration and pipeline that was
    /// running has sent its Signal terminate, Release or PSRP stop signal and had the
    /// answer (or the failure, bounded by the HTTP timeout), whether or not its stream
    /// was being read, and the shells of [`Client::run`] calls are deleted; as
    /// [`Client::shutdown`] does, it also waits for the cleanups of shells, pools and
    /// enumerations dropped. So a program may return from `main` right after it.
    ///
    /// **Permanent:** this cancels the client's own token, so every operation started on
    /// this client (or a clone) afterwards is cancelled at once (opening a shell or a
    /// pool included, also while it waits for [`ClientBuilder::max_shells`]); build a
    /// new client to go on.
    ///
    /// # Errors
    /// None: cleanup failures are logged (at warn), not returned; use
    /// [`crate::Shell::close`] on each shell to see them.
    ///
    /// # Cancel safety
    /// Cancelling the wait leaves the operations cancelled and their cleanups running.
    pub async fn cancel_all(&self) {
        self.inner.token.cancel();
        self.shutdown().await;
    }

    /// Registers a running operation cancelled by `scope`: [`Client::shutdown`] waits
    /// for it once it is cancelled, until the guard is dropped (after its cleanup).
    pub(crate) fn register_operation(&self, scope: &Scope) -> Registered {
        self.inner.operations.register(scope)
    }

    /// Held by a cleanup that runs in an operation's own task (not spawned): [`Client::shutdown`]
    /// and [`Client::cancel_all`] wait for it as for the spawned ones.
    pub(crate) fn cleanup_token(&self) -> tokio_util::task::task_tracker::TaskTrackerToken {
        self.inner.tracker.token()
    }

    pub(crate) fn spawn_cleanup<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            self.inner.tracker.spawn_on(fut, &handle);
        }
    }

    /// A permit for one more open shell ([`ClientBuilder::max_shells`]), waiting for a
    /// shell to be deleted when the bound is reached; `None` when there is no bound.
    /// Cancel safe: dropped while waiting, it takes nothing.
    pub(crate) async fn shell_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let shells = self.inner.shells.as_ref()?;
        Arc::clone(shells).acquire_owned().await.ok()
    }

    /// Headers for a request on this client: To, MessageID, MaxEnvelopeSize, Locale,
    /// SessionId and OperationTimeout filled in.
    pub(crate) fn envelope<'a>(
        &'a self,
        action: &'a str,
        resource_uri: Option<&'a str>,
    ) -> Envelope<'a> {
        Envelope {
            resource_uri,
            operation_timeout: Some(self.inner.operation_timeout),
            max_envelope_size: Some(self.inner.max_envelope_size),
            locale: self.inner.locale.as_deref(),
            session_id: Some(self.inner.session_id),
            operation_id: resource_uri
                .filter(|_| self.inner.robust.is_some())
                .map(|_| Uuid::new_v4()),
            template: Some(&self.inner.template),
            ..Envelope::new(action, &self.inner.transport.config.endpoint.url)
        }
    }

    pub(crate) fn http_timeout(&self, operation_timeout: Duration) -> Duration {
        http_timeout_for(operation_timeout, self.inner.http_timeout)
    }

    /// Sends one request of `kind` under the client's retry policy: the HTTP timeout
    /// covers each attempt (not the wait for a channel, nor the backoff).
    pub(crate) async fn send(
        &self,
        kind: RequestKind,
        body: Bytes,
        unauthenticated: bool,
        operation_timeout: Duration,
    ) -> Result<HttpResponse> {
        let timeout = self.http_timeout(operation_timeout);
        let t = &self.inner.transport;
        // Slices of the request (shared, not copied): the OperationID and ResourceURI.
        let mut robust = self.inner.robust.as_ref().and_then(|state| {
            let (id, uri) = robust::robust_headers(&body)?;
            Some((state, body.slice_ref(id), body.slice_ref(uri)))
        });
        let mut body = body;
        let mut fresh = false;
        let mut attempt = 1;
        let mut retransmissions = 0;
        let mut first_failure: Option<Instant> = None;
        // An attempt of this operation may have reached the server (its response was
        // lost, or it timed out): a later attempt's failure to connect does not make the
        // operation "certainly not carried out".
        let mut may_have_run = false;
        loop {
            let started = tracing::enabled!(tracing::Level::DEBUG).then(Instant::now);
            let result = t
                .send(body.clone(), unauthenticated, kind, timeout, fresh)
                .await;
            if let Err(e) = &result {
                may_have_run |= e.may_have_executed();
            }
            // A retransmission that could not connect (the server went away after the
            // first attempt reached it) is reported as that first attempt's loss: never
            // as a connect error, which says "safe to send again".
            let result = match result {
                Err(e) if may_have_run && !e.may_have_executed() && e.is_retryable() => {
                    Err(Error::response_lost(e))
                }
                other => other,
            };
            if let Some(started) = started {
                log_exchange(&body, &result, started.elapsed());
            }
            if let Some((state, id, uri)) = &robust {
                match &result {
                    Ok(resp) => state.observe(uri, id, &resp.body),
                    Err(e) if robust::retransmittable(e) && state.supports(uri) => {
                        let since = *first_failure.get_or_insert_with(Instant::now);
                        if retransmissions < robust::MAX_RETRANSMISSIONS
                            && since.elapsed() < robust::RETRY_WINDOW
                        {
                            retransmissions += 1;
                            tracing::debug!(error = %e, retransmissions, "retransmitting with the same OperationID");
                            tokio::time::sleep(robust::backoff(retransmissions)).await;
                            if retransmissions == 1 {
                                body = robust::mark_retransmission(&body);
                            }
                            fresh = true;
                            continue;
                        }
                    }
                    Err(_) => {}
                }
            }
            let Some(policy) = &self.inner.retry else {
                return result;
            };
            let error = match result {
                // A quota fault is read here, so that every operation's reader sees
                // only the final answer.
                Ok(resp) if resp.status == 500 && policy.quota => {
                    match read_envelope(HttpResponse {
                        status: resp.status,
                        body: resp.body.clone(),
                    }) {
                        Err(e) if e.is_quota() => e,
                        _ => return Ok(resp),
                    }
                }
                Ok(resp) => return Ok(resp),
                Err(e) => e,
            };
            if attempt >= policy.max_attempts || !policy.allows(kind, &error) {
                return Err(error);
            }
            let wait = policy.backoff(attempt);
            tracing::debug!(attempt, ?wait, error = %error, "retrying under the retry policy");
            tokio::time::sleep(wait).await;
            attempt += 1;
            // The failed attempt was answered (or provably not carried out): the retry is
            // a new operation, with an OperationID of its own.
            body = robust::renew_operation_id(&body);
            if let Some((_, id, _)) = &mut robust
                && let Some(new) = robust::operation_id(&body)
            {
                *id = body.slice_ref(new);
            }
            fresh = false;
            retransmissions = 0;
            first_failure = None;
            may_have_run = false;
        }
    }

    /// Sends one envelope on any channel and returns the response's root element.
    /// Dropping the future abandons the request and closes its connection.
    pub(crate) async fn exchange(
        &self,
        kind: RequestKind,
        body: String,
        operation_timeout: Duration,
    ) -> Result<Element> {
        self.exchange_with(kind, body, operation_timeout, &mut xml::NoSink)
            .await
    }

    /// [`Client::exchange`], with the text of the elements `sink` claims going to it.
    pub(crate) async fn exchange_with(
        &self,
        kind: RequestKind,
        body: String,
        operation_timeout: Duration,
        sink: &mut (dyn TextSink + Send),
    ) -> Result<Element> {
        // Boxed: the request's state (retry, logon gate, lease, timeout: about 1.4 KB)
        // lives on the heap only while the request does, instead of inline in every
        // future that awaits an operation (a task that opens a shell and then holds it
        // while its command runs would carry it all along).
        let resp = Box::pin(self.send(kind, request_bytes(body), false, operation_timeout)).await?;
        read_envelope_with(resp, sink)
    }

    /// Sends one envelope on any channel and returns the HTTP response unread, for
    /// readers that read it themselves (the WinRS event reader, `shell/fast.rs`).
    pub(crate) async fn exchange_response(
        &self,
        kind: RequestKind,
        body: String,
        operation_timeout: Duration,
    ) -> Result<HttpResponse> {
        self.send(kind, request_bytes(body), false, operation_timeout)
            .await
    }

    /// Identify: a read, optionally without credentials.
    pub(crate) async fn exchange_raw(
        &self,
        body: String,
        unauthenticated: bool,
    ) -> Result<Element> {
        let resp = self
            .send(
                RequestKind::Read,
                Bytes::from(body),
                unauthenticated,
                self.inner.operation_timeout,
            )
            .await?;
        read_envelope(resp)
    }

    pub(crate) fn scope(
        &self,
        user: Option<CancellationToken>,
        deadline: Option<Instant>,
    ) -> Scope {
        Scope::new(&self.inner.token, user, deadline)
    }
}

/// Parses a response: a fault becomes [`Error::Fault`]; anything but a SOAP envelope is
/// a typed error.
pub(crate) fn read_envelope(resp: HttpResponse) -> Result<Element> {
    read_envelope_with(resp, &mut xml::NoSink)
}

/// [`read_envelope`], with the text of the elements `sink` claims going to it.
pub(crate) fn read_envelope_with(resp: HttpResponse, sink: &mut dyn TextSink) -> Result<Element> {
    sink.document(&resp.body);
    let root = match xml::parse_with(&resp.body, sink) {
        Ok(r) => r,
        Err(e) if resp.status != 200 => {
            return Err(Error::Http {
                status: resp.status,
                excerpt: format!(
                    "{} ({e})",
                    xml::excerpt(&String::from_utf8_lossy(&resp.body), 200)
                ),
            });
        }
        Err(e) => return Err(e.into()),
    };
    if !root.is(ns::SOAP, "Envelope") {
        return Err(ParseError::Unexpected {
            expected: "a SOAP 1.2 Envelope",
            found: root.describe(),
        }
        .into());
    }
    if let Some(f) = Fault::from_envelope(&root) {
        return Err(f.into());
    }
    if resp.status != 200 {
        return Err(Error::Http {
            status: resp.status,
            excerpt: "SOAP envelope without a fault".into(),
        });
    }
    if root.child(ns::SOAP, "Body").is_none() {
        return Err(ParseError::Missing("s:Body").into());
    }
    Ok(root)
}

/// The `s:Body` of a parsed envelope.
pub(crate) fn body(root: &Element) -> &Element {
    root.child(ns::SOAP, "Body")
        .expect("read_envelope checked the body")
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// How cancelling a call is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnCancel {
    /// A read: nothing happened on the server.
    Cancelled,
    /// A write or Invoke: the server may still complete it.
    Abandoned,
}

/// One request/response operation: `.await` it, optionally after setting
/// [`Call::cancellation`] or [`Call::deadline`].
///
/// A `Call` is [`IntoFuture`](std::future::IntoFuture), not a `Future` itself (the
/// settings above are made before it starts): where a `Future` is needed, as for
/// `futures_util::future::join_all`, pass `call.into_future()`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> tokio_winrm::Result<()> {
/// # let sim = winrm_simulator::Simulator::start().await.unwrap();
/// # let client = tokio_winrm::Client::builder(sim.endpoint())
/// #     .auth(tokio_winrm::Auth::ntlm(sim.user(), sim.password()))
/// #     .build()?;
/// use std::future::IntoFuture as _;
/// let calls = (0..3).map(|_| client.identify().into_future());
/// for answer in futures_util::future::join_all(calls).await {
///     println!("{}", answer?.product_vendor);
/// }
/// # Ok(()) }
/// ```
#[must_use = "a Call does nothing until awaited"]
pub struct Call<T> {
    client: Client,
    user: Option<CancellationToken>,
    deadline: Option<Duration>,
    on_cancel: OnCancel,
    work: Box<dyn FnOnce(Client) -> BoxFuture<Result<T>> + Send>,
}

impl<T> std::fmt::Debug for Call<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Call<T> {
    pub(crate) fn new<F, Fut>(
        client: &Client,
        on_cancel: OnCancel,
        span: tracing::Span,
        work: F,
    ) -> Call<T>
    where
        F: FnOnce(Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        Call {
            client: client.clone(),
            user: None,
            deadline: None,
            on_cancel,
            work: Box::new(move |c| Box::pin(tracing::Instrument::instrument(work(c), span))),
        }
    }

    /// Cancels the call when `token` is cancelled (reason User).
    pub fn cancellation(mut self, token: CancellationToken) -> Self {
        self.user = Some(token);
        self
    }

    /// Cancels the call when `d` has passed (reason Timeout).
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }
}

impl<T: Send + 'static> IntoFuture for Call<T> {
    type Output = Result<T>;
    type IntoFuture = BoxFuture<Result<T>>;

    fn into_future(self) -> Self::IntoFuture {
        let scope = self
            .client
            .scope(self.user, self.deadline.map(|d| Instant::now() + d));
        let fut = (self.work)(self.client);
        let on_cancel = self.on_cancel;
        Box::pin(async move {
            if scope.is_cancelled() {
                let reason = scope.cancelled().await;
                return Err(Error::Cancelled { reason });
            }
            tokio::select! {
                biased;
                reason = scope.cancelled() => Err(cancel_error(on_cancel, reason)),
                r = fut => r,
            }
        })
    }
}

fn cancel_error(on_cancel: OnCancel, reason: CancelReason) -> Error {
    match on_cancel {
        OnCancel::Cancelled => Error::Cancelled { reason },
        OnCancel::Abandoned => Error::Abandoned { reason },
    }
}

/// A request's bytes, held until its response comes (a long poll can wait minutes):
/// without the spare capacity the envelope writer reserved (it starts at 2 KiB; a
/// Receive is about 1.3 KiB), which matters with thousands of commands in flight.
fn request_bytes(mut body: String) -> Bytes {
    if body.capacity() - body.len() > 256 {
        body.shrink_to_fit();
    }
    Bytes::from(body)
}

/// The `-vv` line of one request: its action (the last segment of `wsa:Action`), the
/// HTTP status or the error, the response size and the time taken. Nothing else of the
/// body (a request may carry a command line or a password parameter).
fn log_exchange(body: &[u8], result: &Result<HttpResponse>, elapsed: Duration) {
    let action =
        action_name(body).unwrap_or(if memchr::memmem::find(body, b"Identify").is_some() {
            "Identify"
        } else {
            "?"
        });
    match result {
        Ok(resp) => tracing::debug!(
            action,
            status = resp.status,
            bytes = resp.body.len(),
            ms = elapsed.as_millis() as u64,
            "WS-Management request answered"
        ),
        Err(e) => tracing::debug!(
            action,
            error = %e,
            ms = elapsed.as_millis() as u64,
            "WS-Management request failed"
        ),
    }
}

/// The last path segment of a request's `wsa:Action` (`Get`, `Command`, `Receive`, ...).
fn action_name(body: &[u8]) -> Option<&str> {
    let start = memchr::memmem::find(body, b":Action")?;
    let rest = &body[start..];
    let open = memchr::memchr(b'>', rest)? + 1;
    let close = memchr::memchr(b'<', &rest[open..])? + open;
    let uri = std::str::from_utf8(&rest[open..close]).ok()?.trim();
    uri.rsplit('/').next().filter(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_debug_line_names_the_action_and_nothing_else() {
        let env = Envelope::new(crate::soap::ns::action::COMMAND, "http://h:5985/wsman")
            .write(|w| w.raw("<rsp:Command>secret.exe</rsp:Command>"));
        assert_eq!(action_name(env.as_bytes()), Some("Command"));
        assert_eq!(action_name(b"<a:Action>"), None);
        assert_eq!(action_name(b"<a:Action></a:Action>"), None);
        assert_eq!(action_name(b""), None);
    }
}
