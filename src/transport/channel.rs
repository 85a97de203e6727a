//! One channel: an owned HTTP/1.1 connection (TCP or TLS) and its security context.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::either::Either;

mod credssp;
mod spnego;
#[cfg(feature = "kerberos")]
pub(crate) use spnego::{spnego_ntlm_client, spnego_ntlm_client_as};

use super::ntlm::NtlmContext;
use super::{Stats, TransportConfig, sealing};
use crate::error::{Error, Result};

const EXCERPT_BYTES: usize = 256;
const SOAP_CONTENT_TYPE: &str = "application/soap+xml;charset=UTF-8";
const SOAP_CONTENT_TYPE_PREFIX: &[u8] = b"application/soap+xml";

/// A response the SOAP layer should read: 200, or a status that carries a SOAP body
/// (faults come with 500, some with 400).
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub status: u16,
    pub body: Bytes,
}

struct Conn {
    sender: SendRequest<Full<Bytes>>,
    task: JoinHandle<()>,
    requests: u64,
    /// The NTLM context authenticated on this connection; it dies with the connection.
    security: Option<Security>,
    /// `tls-server-end-point` channel-binding data (HTTPS only).
    channel_binding: Option<Vec<u8>>,
    /// The CredSSP context authenticated on this connection (channel/credssp.rs).
    credssp: Option<Box<wsman_protocol::security::credssp::CredSspClientContext>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Close the socket at once: an abandoned long poll must not linger.
        self.task.abort();
    }
}

/// The message security of a channel: how its connection authenticates and where
/// the context lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    /// NTLM, Kerberos or SPNEGO ([`Conn::security`]): messages sealed as
    /// `multipart/encrypted`.
    Sspi,
    /// CredSSP ([`Conn::credssp`], channel/credssp.rs): messages encrypted with its inner
    /// TLS session.
    CredSsp,
}

impl Scheme {
    /// Whether the connection has a context of this scheme.
    fn authenticated(self, conn: &Conn) -> bool {
        match self {
            Scheme::Sspi => conn.security.is_some(),
            Scheme::CredSsp => conn.credssp.is_some(),
        }
    }

    /// Drops the connection's context of this scheme (the server no longer knows it).
    fn forget(self, conn: &mut Conn) {
        match self {
            Scheme::Sspi => conn.security = None,
            Scheme::CredSsp => conn.credssp = None,
        }
    }

    fn resend_note(self) -> &'static str {
        match self {
            Scheme::Sspi => "sealing it anew for a fresh connection",
            Scheme::CredSsp => "encrypting it anew for a fresh connection",
        }
    }

    fn reauthenticate_note(self) -> &'static str {
        match self {
            Scheme::Sspi => "401 on an authenticated channel; authenticating again",
            Scheme::CredSsp => "401 on a CredSSP channel; authenticating again",
        }
    }

    fn clear_text_error(self) -> &'static str {
        match self {
            Scheme::Sspi => "the server answered a sealed request in clear text",
            Scheme::CredSsp => "the server answered an encrypted request in clear text",
        }
    }
}

pub(crate) struct Channel {
    config: Arc<TransportConfig>,
    conn: Option<Conn>,
    in_flight: bool,
    /// What is left of the last large response body's buffer: once the caller has
    /// dropped that body, its allocation is reused for the next one instead of freed and
    /// allocated again (large allocations that come and go cost page faults with many
    /// allocators; WinRS output arrives as a run of large responses).
    body_buf: BytesMut,
    /// The timer of [`Channel::send_within`], kept from request to request: moving a
    /// registered timer's deadline later is one atomic step in tokio (the timer fires at
    /// the old deadline only to be put at the new one), where a timer per request is
    /// entered into and taken out of the timer wheel under its lock each time.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    stats: Arc<Stats>,
    /// Its handshake waits for the KDC (channel/spnego.rs, [`Channel::kdc_timed_out`]).
    kdc_wait: bool,
    /// The legs of the handshake under way so far ([`Channel::handshake_leg`]).
    legs: u32,
    /// A handshake leg that answers the server's challenge (the proof of the
    /// credentials: an NTLM AUTHENTICATE, also inside SPNEGO or CredSSP) is out and its
    /// answer not read: a failure now loses the logon's verdict
    /// ([`Error::LogonOutcomeUnknown`]).
    proof_out: bool,
    /// The request carrying the caller's body was handed to the connection (a failure
    /// before that, in the handshake, did nothing on the server).
    request_out: bool,
}

/// Bodies at least this large leave their buffer for reuse.
const REUSE_BODY_BUFFER: usize = 64 * 1024;

/// A whole HTTP response, before it is judged.
struct Raw {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

/// A failed round trip.
enum Failure {
    /// The request provably never left: hyper handed it back unsent (a reused
    /// connection the server had closed). It may go again on a fresh connection.
    Unsent(Error),
    /// The connection failed once the request had been handed to hyper: it may have
    /// reached the server. Reported as [`Error::ResponseLost`] for the request itself
    /// (as [`Error::Connection`] for a handshake leg, whose empty body does nothing).
    Lost(hyper::Error),
    /// Anything else (a response over the size cap, a local error).
    Fatal(Error),
}

impl Failure {
    /// The error of a failed request that carried the caller's body.
    fn for_request(self) -> Error {
        match self {
            Failure::Unsent(e) | Failure::Fatal(e) => e,
            Failure::Lost(e) => Error::response_lost(e),
        }
    }

    /// The error of a failed handshake leg (its empty body did nothing on the server).
    fn for_handshake(self) -> Error {
        match self {
            Failure::Unsent(e) | Failure::Fatal(e) => e,
            Failure::Lost(e) => Error::connection(e),
        }
    }
}

/// How often an unsent request is tried on a fresh connection.
const UNSENT_ATTEMPTS: u32 = 3;

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Fatal(e)
    }
}

fn excerpt(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(EXCERPT_BYTES)];
    String::from_utf8_lossy(cut).trim().to_string()
}

/// A SOAP `Content-Type` (`application/soap+xml`), or a body that starts like an envelope.
fn looks_like_soap(content_type: Option<&HeaderValue>, body: &[u8]) -> bool {
    // Checked on every response: no allocation, and the usual value (WinRM's, ours)
    // without a search.
    let ct_soap = content_type.is_some_and(|v| {
        let v = v.as_bytes();
        v.get(..SOAP_CONTENT_TYPE_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(SOAP_CONTENT_TYPE_PREFIX))
            || v.windows(b"soap+xml".len())
                .any(|w| w.eq_ignore_ascii_case(b"soap+xml"))
    });
    ct_soap || (body.trim_ascii_start().starts_with(b"<") && memfind(body, b"Envelope"))
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).take(4096).any(|w| w == needle)
}

/// The schemes of the `WWW-Authenticate` headers.
fn offered(headers: &http::HeaderMap) -> Vec<String> {
    headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
        .filter(|s| !s.is_empty() && !s.contains('='))
        .collect()
}

/// The token of a `WWW-Authenticate: <scheme> <base64>` header (`Negotiate`,
/// `Kerberos`, `CredSSP`).
fn scheme_token(headers: &http::HeaderMap, scheme: &str) -> Option<Vec<u8>> {
    headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|v| {
            let (s, token) = v.trim().split_once(' ')?;
            if !s.eq_ignore_ascii_case(scheme) {
                return None;
            }
            base64::engine::general_purpose::STANDARD
                .decode(token.trim())
                .ok()
        })
}

/// [`Error::Connect`] for a connect step (`what`: `""` for TCP, `"TLS handshake "`) that
/// did not finish within `timeout`: nothing was sent, so it is retryable and a timeout.
fn connect_timed_out(authority: &str, what: &str, timeout: Duration) -> Error {
    Error::Connect {
        endpoint: authority.to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("{what}timed out after {timeout:?}"),
        ),
    }
}

/// Judges a whole response: 200 and SOAP faults go to the SOAP layer, the rest are errors.
fn classify(raw: Raw) -> Result<HttpResponse> {
    let Raw {
        status,
        headers,
        body,
    } = raw;
    match status {
        200 if !looks_like_soap(headers.get(header::CONTENT_TYPE), &body) => {
            Err(not_soap(status, headers.get(header::CONTENT_TYPE), &body))
        }
        200 => Ok(HttpResponse { status, body }),
        401 => Err(Error::Unauthorized {
            offered: offered(&headers),
        }),
        400 | 500 if looks_like_soap(headers.get(header::CONTENT_TYPE), &body) => {
            Ok(HttpResponse { status, body })
        }
        // A redirect is not followed (the credentials would go to wherever it points):
        // where it points is shown instead.
        300..=399 => Err(Error::Http {
            status,
            excerpt: match headers.get(header::LOCATION).map(|v| v.to_str()) {
                Some(Ok(to)) => format!("redirected to {to}; redirects are not followed"),
                _ => excerpt(&body),
            },
        }),
        _ => Err(Error::Http {
            status,
            excerpt: excerpt(&body),
        }),
    }
}

/// [`Error::NotSoap`]: what came instead of SOAP (a proxy's or captive portal's HTML
/// page, say), with the start of the body on one line.
fn not_soap(status: u16, content_type: Option<&HeaderValue>, body: &[u8]) -> Error {
    const MAX_CONTENT_TYPE: usize = 100;
    const MAX_EXCERPT_CHARS: usize = 160;
    let content_type = content_type.map(|v| {
        let text = String::from_utf8_lossy(v.as_bytes());
        text.chars().take(MAX_CONTENT_TYPE).collect::<String>()
    });
    let head = String::from_utf8_lossy(&body[..body.len().min(4 * MAX_EXCERPT_CHARS)]);
    let mut excerpt = String::new();
    for word in head.split_whitespace() {
        if !excerpt.is_empty() {
            excerpt.push(' ');
        }
        excerpt.push_str(word);
    }
    if excerpt.chars().count() > MAX_EXCERPT_CHARS {
        excerpt = excerpt.chars().take(MAX_EXCERPT_CHARS).collect::<String>() + "…";
    }
    Error::NotSoap {
        status,
        content_type,
        excerpt,
    }
}

/// The request target and the headers every request of a client starts from: `Host`,
/// `Content-Type` (SOAP), `User-Agent`, the `Authorization` of Basic (or of a certificate
/// logon), which rides on every request, and `Content-Length: 0`. Made once per client
/// (not per channel nor per request): a request clones the map instead of hashing each
/// header into a new one.
#[derive(Debug, Clone)]
pub(crate) struct RequestHead {
    uri: http::Uri,
    headers: http::HeaderMap,
}

/// The [`RequestHead`] of `endpoint` (None when its target does not parse: requests then
/// report the error).
pub(crate) fn request_head(
    endpoint: &super::Endpoint,
    authorization: Option<HeaderValue>,
) -> Option<RequestHead> {
    let uri = http::Uri::try_from(endpoint.path.as_str()).ok()?;
    let host = HeaderValue::try_from(endpoint.authority()).ok()?;
    let mut h = http::HeaderMap::with_capacity(8);
    h.insert(header::HOST, host);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SOAP_CONTENT_TYPE),
    );
    h.insert(
        header::USER_AGENT,
        HeaderValue::from_static(concat!("tokio-winrm/", env!("CARGO_PKG_VERSION"))),
    );
    if let Some(v) = authorization {
        h.insert(header::AUTHORIZATION, v);
    }
    // An empty body's; a request with a body drops it for the one hyper writes.
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    Some(RequestHead { uri, headers: h })
}

impl Channel {
    pub(crate) fn new(config: Arc<TransportConfig>, stats: Arc<Stats>) -> Channel {
        Channel {
            config,
            conn: None,
            in_flight: false,
            body_buf: BytesMut::new(),
            timer: None,
            stats,
            kdc_wait: false,
            legs: 0,
            proof_out: false,
            request_out: false,
        }
    }

    /// Closes the connection (if any): the next request connects afresh.
    pub(crate) fn disconnect(&mut self) {
        self.conn = None;
    }

    /// Idle and its connection (if any) still open.
    pub(crate) fn is_usable(&self) -> bool {
        !self.in_flight && self.conn.as_ref().is_none_or(|c| !c.sender.is_closed())
    }

    /// May go back to the pool: no request half-done.
    pub(crate) fn is_reusable(&self) -> bool {
        self.is_usable()
    }

    async fn ensure_connected(&mut self) -> Result<()> {
        if self.conn.as_ref().is_none_or(|c| c.sender.is_closed()) {
            self.conn = None;
            // Boxed: connecting (TCP, TLS handshake) is rare, and its state would
            // otherwise enlarge every request future (and so every task holding one).
            Box::pin(self.connect()).await?;
        }
        Ok(())
    }

    async fn connect(&mut self) -> Result<()> {
        let ep = &self.config.endpoint;
        let authority = ep.authority();
        let tcp = if let Some(proxy) = &self.config.proxy {
            // A tunnel through the proxy (CONNECT or SOCKS5), one per channel.
            proxy.connect(ep, self.config.connect_timeout).await?
        } else {
            tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(&authority))
                .await
                .map_err(|_| connect_timed_out(&authority, "", self.config.connect_timeout))?
                .map_err(|source| Error::Connect {
                    endpoint: authority.clone(),
                    source,
                })?
        };
        let _ = tcp.set_nodelay(true);
        tracing::debug!(endpoint = %authority, "TCP connection established");
        let mut channel_binding = None;
        let io =
            match &self.config.tls {
                Some(tls) => {
                    let name = super::tls::server_name(&ep.host)?;
                    let connector = tokio_rustls::TlsConnector::from(Arc::clone(tls));
                    let stream = tokio::time::timeout(
                        self.config.connect_timeout,
                        connector.connect(name, tcp),
                    )
                    .await
                    // Nothing was sent yet: a connect failure (retryable), as a TCP
                    // connect that timed out is.
                    .map_err(|_| {
                        connect_timed_out(&authority, "TLS handshake ", self.config.connect_timeout)
                    })?
                    .map_err(|e| super::tls::handshake_error(&authority, e))?;
                    {
                        let (_, session) = stream.get_ref();
                        tracing::debug!(
                            protocol = ?session.protocol_version(),
                            cipher_suite = ?session.negotiated_cipher_suite().map(|c| c.suite()),
                            "TLS session established"
                        );
                    }
                    if self.config.auth.sspi().is_some() {
                        channel_binding = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(|cert| super::cbt::tls_server_end_point(cert.as_ref()));
                    }
                    // Boxed so that plain-TCP connections do not carry TLS state.
                    Either::Right(Box::new(stream))
                }
                None => Either::Left(tcp),
            };
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .map_err(Error::connection)?;
        // The connection future itself, mapped: an `async move` block awaiting it would
        // hold it twice in its task (the captured value and the awaited one).
        let task = tokio::spawn(futures_util::FutureExt::map(conn, |r| {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended");
            }
        }));
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        self.conn = Some(Conn {
            sender,
            task,
            requests: 0,
            security: None,
            channel_binding,
            credssp: None,
        });
        Ok(())
    }

    /// A request of `body`: the channel's headers, `content_type` if not SOAP's, and
    /// `authorization` instead of Basic's (if any). `Content-Length` is hyper's for a body
    /// (it sets it from the body's exact length) and the channel's `0` for an empty one
    /// (hyper would send none, and a POST without it may be refused with 411).
    fn request(
        &self,
        content_type: &'static str,
        body: Bytes,
        authorization: Option<HeaderValue>,
        unauthenticated_identify: bool,
    ) -> Result<Request<Full<Bytes>>> {
        let Some(RequestHead { uri, headers }) = &self.config.request_head else {
            let ep = &self.config.endpoint;
            return Err(Error::Config(format!(
                "invalid request target {:?} on {:?}",
                ep.path,
                ep.authority()
            )));
        };
        let empty = body.is_empty();
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = uri.clone();
        let h = req.headers_mut();
        *h = headers.clone();
        if content_type != SOAP_CONTENT_TYPE {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        if !empty {
            // Room for hyper's own (a cloned map has none to spare).
            h.remove(header::CONTENT_LENGTH);
        }
        if unauthenticated_identify {
            h.remove(header::AUTHORIZATION);
            h.insert(
                http::HeaderName::from_static("wsmanidentify"),
                HeaderValue::from_static("unauthenticated"),
            );
        } else if let Some(v) = authorization {
            h.insert(header::AUTHORIZATION, v);
        }
        Ok(req)
    }

    /// [`Channel::send`] under the HTTP timeout `timeout`: [`Error::HttpTimeout`] once it
    /// has passed without the whole response (as `tokio::time::timeout`, on the
    /// channel's own timer).
    pub(crate) async fn send_within(
        &mut self,
        timeout: Duration,
        body: Bytes,
        unauthenticated_identify: bool,
        repeatable: bool,
    ) -> Result<HttpResponse> {
        let Some(deadline) = tokio::time::Instant::now().checked_add(timeout) else {
            // Beyond what an `Instant` holds: no deadline at all.
            return self.send(body, unauthenticated_identify, repeatable).await;
        };
        self.kdc_wait = false;
        self.proof_out = false;
        self.request_out = false;
        let mut timer = match self.timer.take() {
            Some(mut t) => {
                t.as_mut().reset(deadline);
                t
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        let result = {
            let mut send = std::pin::pin!(self.send(body, unauthenticated_identify, repeatable));
            std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = send.as_mut().poll(cx) {
                    return Poll::Ready(r);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(Error::HttpTimeout(timeout))),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await
        };
        // The timer keeps the waker it was last polled with until it is polled again:
        // a no-op one instead, so that an idle channel holds no task (nor wakes one
        // when the deadline passes).
        let _ = timer
            .as_mut()
            .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
        self.timer = Some(timer);
        // Timed out waiting for the KDC: nothing was sent (channel/spnego.rs).
        let result = self.kdc_timed_out(result, timeout);
        match result {
            Err(Error::HttpTimeout(t)) if self.proof_out => Err(Error::LogonOutcomeUnknown {
                source: Box::new(Error::HttpTimeout(t)),
            }),
            // In the handshake, before the credentials' proof: nothing was done.
            Err(Error::HttpTimeout(t)) if !self.request_out => Err(Error::connection(format!(
                "no answer to the logon handshake within the HTTP timeout ({t:?}); the \
                 request was not sent"
            ))),
            other => other,
        }
    }

    /// Sends one SOAP request and reads the whole (capped) response. With NTLM/Negotiate
    /// the channel authenticates its connection first and seals per the policy.
    /// `repeatable`: the request is safe to carry out twice (a read), so a 401 to it
    /// when sealed may be answered by sending it again (see [`Channel::send_secured`]).
    pub(crate) async fn send(
        &mut self,
        body: Bytes,
        unauthenticated_identify: bool,
        repeatable: bool,
    ) -> Result<HttpResponse> {
        if !unauthenticated_identify && self.config.auth.credssp_credentials().is_some() {
            return Box::pin(self.send_secured(body, Scheme::CredSsp, repeatable)).await;
        }
        if !unauthenticated_identify && self.config.auth.sspi().is_some() {
            // Boxed: its handshake and sealing state would otherwise enlarge the future
            // of every Basic request too.
            return Box::pin(self.send_secured(body, Scheme::Sspi, repeatable)).await;
        }
        let mut attempts = 0;
        loop {
            attempts += 1;
            self.ensure_connected().await?;
            // Basic's `Authorization` (if any) is in the channel's headers.
            let req = self.request(
                SOAP_CONTENT_TYPE,
                body.clone(),
                None,
                unauthenticated_identify,
            )?;
            // Boxed: the request, hyper's response future and the body reader live on the
            // heap while the request is out, so every future above this one (each shell
            // and command task) stays small.
            self.request_out = true;
            match Box::pin(self.round_trip(req)).await {
                Ok(raw) => return classify(raw),
                Err(Failure::Unsent(e)) if attempts < UNSENT_ATTEMPTS => {
                    tracing::debug!(error = %e, "request not sent; sending it on a fresh connection");
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                Err(f) => return Err(f.for_request()),
            }
        }
    }

    /// NTLM/Negotiate/Kerberos or CredSSP: the exchange when the connection has no
    /// context of `scheme` (new, reconnected, or refused with 401 mid-session: once), then
    /// `plain` encrypted per the policy under the context of this attempt. The request is
    /// encrypted anew on every attempt, never re-sent as encrypted.
    ///
    /// A 401 to a sealed request is clear text, which nothing authenticates over plain
    /// HTTP: a relay may forge it after the server carried the request out. So only a
    /// `repeatable` request (a read) is sent again on its word; any other is reported as
    /// [`Error::ResponseLost`], which Robust Connections retransmit under the same
    /// OperationID (a server that did carry it out answers from its cache, [MS-WSMV]
    /// §3.1.4.1.39) and which otherwise tells the caller the request may have run. Over
    /// HTTPS (TLS authenticates the 401) every request is sent again.
    async fn send_secured(
        &mut self,
        plain: Bytes,
        scheme: Scheme,
        repeatable: bool,
    ) -> Result<HttpResponse> {
        let seal = self.config.auth.seals(self.config.endpoint.https);
        let mut attempts = 0;
        let mut reauthenticated = false;
        loop {
            attempts += 1;
            self.ensure_connected().await?;
            let step = async {
                if self.conn.as_ref().is_some_and(|c| !scheme.authenticated(c)) {
                    // The handshake's failures are the handshake's: its empty bodies do
                    // nothing on the server, and the request itself has not left. But a
                    // connection lost while the credentials' proof awaits its verdict
                    // is a logon whose outcome is unknown.
                    self.legs = 0;
                    self.authenticate(scheme).await.map_err(|f| {
                        Failure::Fatal(match f {
                            Failure::Lost(e) if self.proof_out => Error::LogonOutcomeUnknown {
                                source: Box::new(e),
                            },
                            f => f.for_handshake(),
                        })
                    })?;
                }
                let req = if seal {
                    let (content_type, body) = self.seal_body(scheme, &plain)?;
                    self.request(content_type, body, None, false)?
                } else {
                    self.request(SOAP_CONTENT_TYPE, plain.clone(), None, false)?
                };
                self.request_out = true;
                self.round_trip(req).await
            };
            let raw = match step.await {
                Ok(raw) => raw,
                Err(Failure::Unsent(e)) if attempts < UNSENT_ATTEMPTS => {
                    tracing::debug!(error = %e, "request not sent; {}", scheme.resend_note());
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(f) => return Err(f.for_request()),
            };
            if !seal && !self.config.endpoint.https && raw.status == 500 && raw.body.is_empty() {
                // Windows' answer to clear text it does not allow (AllowUnencrypted=false)
                // on an authenticated connection: before anything is carried out.
                return Err(Error::UnencryptedRefused);
            }
            if raw.status == 401 {
                // The server no longer knows this connection's context.
                if let Some(c) = self.conn.as_mut() {
                    scheme.forget(c);
                }
                if reauthenticated {
                    return Err(Error::Unauthorized {
                        offered: offered(&raw.headers),
                    });
                }
                if seal && !self.config.endpoint.https && !repeatable {
                    tracing::debug!(
                        "401 in clear text to a sealed request that is not safe to repeat; \
                         reported as a lost response"
                    );
                    return Err(Error::response_lost(
                        "the server's answer to a sealed request was an HTTP 401 in clear text, \
                         which nothing authenticates over plain HTTP: the request may have been \
                         carried out, so it is not sent again on its word",
                    ));
                }
                reauthenticated = true;
                tracing::debug!("{}", scheme.reauthenticate_note());
                continue;
            }
            let result = self.open(raw, seal, scheme);
            if result.is_err() {
                // A failed unseal desynchronizes the context (a failed decryption leaves
                // CredSSP's TLS session unusable): the connection goes with it.
                self.conn = None;
            }
            return result;
        }
    }

    /// The exchange of `scheme` on the current connection.
    async fn authenticate(&mut self, scheme: Scheme) -> Result<(), Failure> {
        match scheme {
            Scheme::Sspi => self.handshake().await,
            Scheme::CredSsp => self.credssp_handshake().await,
        }
    }

    /// Encrypts a request under the connection's context of `scheme`: its content type
    /// and body.
    fn seal_body(&mut self, scheme: Scheme, plain: &[u8]) -> Result<(&'static str, Bytes)> {
        let conn = self.conn.as_mut();
        match scheme {
            Scheme::Sspi => {
                let ctx = conn.and_then(|c| c.security.as_mut()).ok_or_else(|| {
                    Error::State("no security context after the handshake".into())
                })?;
                seal_message(ctx, plain)
            }
            Scheme::CredSsp => {
                let ctx = conn
                    .and_then(|c| c.credssp.as_mut())
                    .ok_or_else(|| Error::State("no CredSSP context after the exchange".into()))?;
                credssp::seal(ctx, plain)
            }
        }
    }

    /// Decrypts an encrypted response body under the connection's context of `scheme`,
    /// checking the declared length of the plaintext.
    fn unseal_body(&mut self, scheme: Scheme, body: &[u8]) -> Result<Vec<u8>> {
        let conn = self.conn.as_mut();
        match scheme {
            Scheme::Sspi => {
                let ctx = conn.and_then(|c| c.security.as_mut()).ok_or_else(|| {
                    Error::Auth(
                        "a sealed response on a connection without a security context".into(),
                    )
                })?;
                let (plain, original_len) = open_message(ctx, body)?;
                if plain.len() != original_len {
                    return Err(Error::Auth(format!(
                        "sealed response length {} does not match its OriginalContent Length {}",
                        plain.len(),
                        original_len
                    )));
                }
                Ok(plain)
            }
            Scheme::CredSsp => {
                let ctx = conn.and_then(|c| c.credssp.as_mut()).ok_or_else(|| {
                    Error::Auth("an encrypted response on a connection without CredSSP".into())
                })?;
                credssp::open_parts(ctx, body)
            }
        }
    }

    /// The NTLM handshake on the current connection: NEGOTIATE and AUTHENTICATE tokens
    /// on empty-bodied POSTs (as pywinrm and pypsrp do; a sealed body needs the finished
    /// context). A wrong password is refused on the AUTHENTICATE leg: an error at once,
    /// and the client's logon gate is closed (see `logon.rs`): no further logon.
    async fn handshake(&mut self) -> Result<(), Failure> {
        let creds = self
            .config
            .auth
            .sspi()
            .ok_or_else(|| Error::State("handshake without NTLM credentials".into()))?;
        #[cfg(feature = "kerberos")]
        if let super::Auth::Kerberos(k) = &self.config.auth {
            return self.kerberos_handshake(k.clone()).await;
        }
        if self.config.auth.is_spnego() {
            // Negotiate with SPNEGO: channel/spnego.rs.
            return Box::pin(self.spnego_handshake()).await;
        }
        let logon = Arc::clone(&self.config.logon);
        let _probe = logon.before_handshake().await?;
        let binding = self.conn.as_ref().and_then(|c| c.channel_binding.clone());
        tracing::debug!(
            user = %creds.user,
            channel_binding = binding.is_some(),
            "NTLM logon (Negotiate): NEGOTIATE sent"
        );
        let (mut ctx, negotiate) =
            NtlmContext::client(&creds.user, &creds.password, binding.as_deref())
                .map_err(Error::from)?;
        let raw = self
            .handshake_leg(scheme_header("Negotiate", &negotiate)?)
            .await?;
        if raw.status != 401 {
            return Err(unexpected_handshake_answer(raw).into());
        }
        let Some(challenge) = scheme_token(&raw.headers, "Negotiate") else {
            return Err(Error::Unauthorized {
                offered: offered(&raw.headers),
            }
            .into());
        };
        // A refusal that arrived meanwhile (another connection's) stops this logon too.
        logon.check()?;
        let authenticate = ctx.respond(&challenge).map_err(Error::from)?;
        let raw = self
            .handshake_leg(scheme_header("Negotiate", &authenticate)?)
            .await?;
        match raw.status {
            200 => {}
            401 => {
                let e = Error::Unauthorized {
                    offered: offered(&raw.headers),
                };
                tracing::debug!("NTLM logon refused (401 to AUTHENTICATE)");
                logon.refused(&e);
                return Err(e.into());
            }
            _ => return Err(unexpected_handshake_answer(raw).into()),
        }
        logon.succeeded();
        if self.config.auth.seals(self.config.endpoint.https) {
            tracing::debug!("NTLM logon accepted; messages sealed from here on");
        } else {
            tracing::debug!(
                "NTLM logon accepted; messages not sealed (TLS, or sealing turned off)"
            );
        }
        if let Some(c) = self.conn.as_mut() {
            c.security = Some(Security::Ntlm(Box::new(ctx)));
        }
        self.stats.handshakes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Unseals a `multipart/encrypted` (or CredSSP-encrypted) response (verifying its
    /// signature) and judges it. Nothing of a message whose signature fails is returned.
    fn open(&mut self, raw: Raw, sealed_request: bool, scheme: Scheme) -> Result<HttpResponse> {
        let content_type = raw
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !sealing::is_encrypted(content_type) {
            // A clear-text answer that is not SOAP at all (a proxy's page) is reported
            // as such by `classify`. A clear-text SOAP answer (a response or a fault: the
            // server seals both for a sealed request) is what a relay could forge.
            if sealed_request && looks_like_soap(raw.headers.get(header::CONTENT_TYPE), &raw.body) {
                return Err(Error::response_integrity(Error::Auth(
                    scheme.clear_text_error().into(),
                )));
            }
            return classify(raw);
        }
        let plain = self
            .unseal_body(scheme, &raw.body)
            .map_err(Error::response_integrity)?;
        let mut headers = raw.headers;
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SOAP_CONTENT_TYPE),
        );
        classify(Raw {
            status: raw.status,
            headers,
            body: Bytes::from(plain),
        })
    }

    /// One leg of an authentication exchange: `authorization` on an empty-bodied POST,
    /// its answer read whole.
    ///
    /// Every leg after the first answers a challenge of the server, which (for NTLM,
    /// also inside SPNEGO and CredSSP) carries the proof of the credentials: while its
    /// answer is out, [`Channel::proof_out`] is set.
    async fn handshake_leg(&mut self, authorization: HeaderValue) -> Result<Raw, Failure> {
        let req = self.request(SOAP_CONTENT_TYPE, Bytes::new(), Some(authorization), false)?;
        self.legs += 1;
        self.proof_out = self.legs > 1;
        let raw = self.round_trip(req).await;
        if raw.is_ok() {
            self.proof_out = false;
        }
        raw
    }

    /// One request on the current connection, its response read whole. Sent with
    /// hyper's `try_send_request`, which hands an unsent request back: only then is
    /// the failure [`Failure::Unsent`].
    async fn round_trip(&mut self, req: Request<Full<Bytes>>) -> Result<Raw, Failure> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| Error::State("no connection".into()))?;
        conn.requests += 1;
        self.in_flight = true;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = conn.sender.ready().await {
            // The connection closed before the request was handed over.
            self.in_flight = false;
            self.conn = None;
            return Err(Failure::Unsent(Error::connection(e)));
        }
        let resp = match conn.sender.try_send_request(req).await {
            Ok(r) => r,
            Err(mut e) => {
                self.in_flight = false;
                self.conn = None;
                let unsent = e.take_message().is_some();
                let e = e.into_error();
                tracing::debug!(error = %e, unsent, "connection failed during a request");
                return Err(if unsent {
                    Failure::Unsent(Error::connection(e))
                } else {
                    Failure::Lost(e)
                });
            }
        };
        let result = self.read_response(resp).await;
        self.in_flight = false;
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    async fn read_response(
        &mut self,
        resp: http::Response<hyper::body::Incoming>,
    ) -> Result<Raw, Failure> {
        let status = resp.status().as_u16();
        let limit = self.config.max_response_bytes;
        let (parts, mut body) = resp.into_parts();
        // The `Content-Length` hyper read (none for a chunked or close-delimited body).
        let declared = hyper::body::Body::size_hint(&body).exact();
        let mut buf = std::mem::take(&mut self.body_buf);
        // Room for the whole body, once a second frame shows it must be gathered. This
        // reclaims the previous large body's allocation when nothing holds it any more.
        let whole = declared.map_or(8192, |d| d.min(limit as u64) as usize);
        let too_large = |buf: &BytesMut| {
            // A sealed body's bytes are ciphertext: nothing readable to show. (Looked
            // up only here: a header lookup per response costs every request.)
            let sealed = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(sealing::is_encrypted);
            Error::ResponseTooLarge {
                status,
                limit,
                excerpt: if sealed {
                    "(sealed: not shown)".into()
                } else {
                    excerpt(buf)
                },
            }
        };
        if declared.is_some_and(|d| d > limit as u64) {
            if let Some(Ok(frame)) = body.frame().await
                && let Some(data) = frame.data_ref()
            {
                buf.extend_from_slice(&data[..data.len().min(EXCERPT_BYTES)]);
            }
            self.conn = None;
            return Err(Failure::Fatal(too_large(&buf)));
        }
        // A body that arrives as one frame (hyper reads what the socket has, so usually
        // the whole body) needs no gathering; more frames are gathered into `buf`.
        let mut first: Option<Bytes> = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(Failure::Lost)?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let held = first.as_ref().map_or(0, Bytes::len);
            if held + buf.len() + data.len() > limit {
                if let Some(f) = first.take() {
                    buf.extend_from_slice(&f[..f.len().min(EXCERPT_BYTES)]);
                }
                let room = EXCERPT_BYTES.saturating_sub(buf.len());
                buf.extend_from_slice(&data[..data.len().min(room)]);
                self.conn = None;
                return Err(Failure::Fatal(too_large(&buf)));
            }
            if first.is_none() && buf.is_empty() {
                first = Some(data);
                continue;
            }
            if let Some(f) = first.take() {
                buf.reserve(whole.max(f.len() + data.len()));
                buf.extend_from_slice(&f);
            }
            buf.extend_from_slice(&data);
        }
        let body = match first {
            // Large: used as it is. Small: copied, so that the slice of hyper's read
            // buffer is released at once and the buffer stays reusable (a small body held
            // a while, by queued output, would otherwise make hyper allocate another).
            Some(only) if only.len() >= REUSE_BODY_BUFFER => only,
            Some(small) => Bytes::copy_from_slice(&small),
            None if buf.is_empty() => Bytes::new(),
            None if buf.len() >= REUSE_BODY_BUFFER => buf.split().freeze(),
            // Small bodies are not worth sharing an allocation for.
            None => std::mem::take(&mut buf).freeze(),
        };
        self.body_buf = buf;
        Ok(Raw {
            status,
            headers: parts.headers,
            body,
        })
    }
}

// ---- Security-context hooks: NTLM, or with feature `kerberos` NTLM or Kerberos. ----

/// The security context of a channel: NTLM, raw or inside SPNEGO. Boxed: a channel
/// (kept idle in the pool, and inline in every request's lease) should not carry the
/// RC4 state of NTLM inline.
#[cfg(not(feature = "kerberos"))]
#[derive(Debug)]
enum Security {
    Ntlm(Box<NtlmContext>),
    Spnego(Box<wsman_protocol::security::spnego::SpnegoContext>),
}
#[cfg(feature = "kerberos")]
use super::kerberos::KerberosClient;
#[cfg(feature = "kerberos")]
use super::kerberos::{Security, open_message, seal_message};

/// Seals and frames a request: its content type and body.
#[cfg(not(feature = "kerberos"))]
fn seal_message(ctx: &mut Security, plain: &[u8]) -> Result<(&'static str, Bytes)> {
    let (signature, sealed) = match ctx {
        Security::Ntlm(c) => {
            let (signature, sealed) = c.seal(plain)?;
            (signature.to_vec(), sealed)
        }
        Security::Spnego(c) => c.seal(plain)?,
    };
    Ok((
        sealing::SPNEGO_CONTENT_TYPE,
        sealing::frame(plain.len(), &signature, &sealed),
    ))
}

/// Parses and unseals a sealed body: the plaintext and its declared length.
#[cfg(not(feature = "kerberos"))]
fn open_message(ctx: &mut Security, body: &[u8]) -> Result<(Vec<u8>, usize)> {
    let parts = sealing::parse(body).map_err(|e| Error::Auth(e.to_string()))?;
    let plain = match ctx {
        Security::Ntlm(c) => c.unseal(parts.signature, parts.data)?,
        Security::Spnego(c) => c.unseal(parts.signature, parts.data)?,
    };
    Ok((plain, parts.original_len))
}

#[cfg(feature = "kerberos")]
impl Channel {
    /// The Kerberos handshake on the current connection: the KDC exchange (on a
    /// blocking thread; the client's tickets when it has them), the AP-REQ on an
    /// empty-bodied POST, the AP-REP verified. A wrong password fails at the KDC,
    /// before any request reaches the server. A refusal by the KDC or of an AP-REQ
    /// from fresh tickets closes the client's logon gate (see `logon.rs`).
    async fn kerberos_handshake(
        &mut self,
        creds: super::kerberos::KerberosCredentials,
    ) -> Result<(), Failure> {
        let logon = Arc::clone(&self.config.logon);
        let _probe = logon.before_handshake().await?;
        let host = self.config.endpoint.host.clone();
        let gate = Arc::clone(&logon);
        // Over HTTPS the AP-REQ carries the channel binding, as NTLM's AUTHENTICATE does.
        let binding = self.conn.as_ref().and_then(|c| c.channel_binding.clone());
        // SPNEGO (GSSAPI only) goes under the Negotiate scheme.
        let scheme = if creds.options.spnego {
            #[cfg(feature = "gssapi")]
            let gss = creds.gss.is_some();
            #[cfg(not(feature = "gssapi"))]
            let gss = false;
            if !gss {
                return Err(Error::Config(
                    "KerberosOptions::spnego needs the ticket cache or a keytab (feature \
                     gssapi); the password path sends the AP-REQ under the Kerberos scheme \
                     (for SPNEGO with a password: Auth::negotiate(..).spnego(true))"
                        .into(),
                )
                .into());
            }
            "Negotiate"
        } else {
            "Kerberos"
        };
        let exchange = tokio::task::spawn_blocking(move || {
            #[cfg(feature = "gssapi")]
            if let Some(source) = &creds.gss {
                // The system GSSAPI: its own cache decides about reuse ("cached" is
                // only for sspi's replayed KDC replies).
                let spn = creds.service_principal(&host);
                return super::gssapi::GssContext::client(
                    &creds,
                    source,
                    &spn,
                    binding.as_deref(),
                    &gate.tickets.gss,
                )
                .map(|(ctx, token)| (Security::Gssapi(Box::new(ctx)), token, false));
            }
            KerberosClient::client(&creds, &host, binding.as_deref(), &gate.tickets)
                .map(|(ctx, token, cached)| (Security::Kerberos(Box::new(ctx)), token, cached))
        });
        let (mut ctx, ap_req, cached) = self
            .wait_for_kdc(exchange)
            .await
            .map_err(|e| Error::State(format!("the Kerberos KDC exchange failed: {e}")))?
            .map_err(|f| {
                if f.refused {
                    logon.refused(&f.error);
                }
                f.error
            })?;
        let raw = self.handshake_leg(scheme_header(scheme, &ap_req)?).await?;
        match raw.status {
            200 => {}
            401 => {
                let e = Error::Unauthorized {
                    offered: offered(&raw.headers),
                };
                if cached {
                    // Tickets from the cache (expired early, or the service key
                    // changed): forget them; the next logon asks the KDC again.
                    logon.tickets.clear();
                } else {
                    logon.refused(&e);
                }
                return Err(e.into());
            }
            _ => return Err(unexpected_handshake_answer(raw).into()),
        }
        let ap_rep = scheme_token(&raw.headers, scheme).ok_or_else(|| {
            Error::Auth("the server accepted the AP-REQ without an AP-REP".into())
        })?;
        match &mut ctx {
            Security::Kerberos(k) => KerberosClient::finish(k, &ap_rep)?,
            #[cfg(feature = "gssapi")]
            Security::Gssapi(g) => g.finish(&ap_rep)?,
            Security::Ntlm(_) | Security::Spnego(_) => {}
        }
        logon.succeeded();
        if let Some(c) = self.conn.as_mut() {
            c.security = Some(ctx);
        }
        self.stats.handshakes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The `Authorization: <scheme> <base64>` value (`Negotiate`, `Kerberos`, `CredSSP`),
/// marked sensitive.
fn scheme_header(scheme: &str, token: &[u8]) -> Result<HeaderValue> {
    let value = format!(
        "{scheme} {}",
        base64::engine::general_purpose::STANDARD.encode(token)
    );
    let mut v = HeaderValue::from_str(&value).map_err(|e| Error::Auth(e.to_string()))?;
    v.set_sensitive(true);
    Ok(v)
}

fn unexpected_handshake_answer(raw: Raw) -> Error {
    if raw.status == 200 && looks_like_soap(raw.headers.get(header::CONTENT_TYPE), &raw.body) {
        Error::Auth("the server accepted the NTLM handshake without a challenge".into())
    } else {
        match classify(raw) {
            Err(e) => e,
            Ok(r) => Error::Http {
                status: r.status,
                excerpt: excerpt(&r.body),
            },
        }
    }
}

/// The HTTP timeout of one request: the operation timeout plus a margin, so the server's
/// own timeout fault arrives before the client gives up.
pub(crate) fn http_timeout_for(
    operation_timeout: Duration,
    configured: Option<Duration>,
) -> Duration {
    configured.unwrap_or(operation_timeout + Duration::from_secs(10))
}
