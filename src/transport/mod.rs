//! Connection-bound HTTP channels ([DESIGN §2]): one owned HTTP/1.1 connection per
//! channel plus its security context, requests serialized per channel, several channels
//! per client for concurrency. Auth and TLS live here; SOAP does not.

mod auth;
mod cbt;
pub(crate) mod channel;
#[cfg(feature = "gssapi")]
mod gssapi;
#[cfg(feature = "kerberos")]
pub(crate) mod kerberos;
mod logon;
mod proxy;
mod retry;
pub(crate) mod robust;
mod tls;

use wsman_protocol::encryption as sealing;
use wsman_protocol::security::ntlm;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

pub use auth::{Auth, ClientCertificate, Encryption, SspiCredentials};
pub(crate) use channel::{Channel, HttpResponse, http_timeout_for};
#[cfg(feature = "kerberos")]
pub use kerberos::{KerberosCredentials, KerberosOptions};
pub(crate) use logon::Logon;
pub use proxy::Proxy;
pub(crate) use proxy::select as select_proxy;
pub use retry::RetryPolicy;
pub use tls::{TlsOptions, parse_pem_certificates};

pub(crate) use tls::parse_pin;

/// True when `e` is a TLS handshake failure for a certificate from an unknown CA.
pub(crate) fn tls_unknown_issuer(e: &(dyn std::error::Error + 'static)) -> bool {
    tls::verifier_error(e).is_some_and(|r| r.verdict == tls::Verdict::UnknownIssuer)
}

use crate::error::{Error, Result};

/// A parsed WS-Management endpoint URL.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The URL as given (used for `wsa:To`).
    pub url: String,
    /// True for `https`.
    pub https: bool,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Path and query, e.g. `/wsman`.
    pub path: String,
}

impl Endpoint {
    /// Parses `http[s]://host[:port][/path]`; the default path is `/wsman` and the default
    /// ports are 5985 (http) and 5986 (https), as WinRM listens.
    ///
    /// A URL with user information (`http://user:password@host/`) is refused: the
    /// credentials go in [`Auth`], and a password in a URL ends up in shell histories,
    /// process lists and logs. No error repeats the user information.
    ///
    /// # Errors
    /// [`Error::Config`] for anything else.
    pub fn parse(url: &str) -> Result<Endpoint> {
        let shown = redact_userinfo(url);
        if shown != url {
            return Err(Error::Config(format!(
                "endpoint {shown:?} carries user information (user:password@): \
                 give the credentials with ClientBuilder::auth instead"
            )));
        }
        let uri: http::Uri = url
            .parse()
            .map_err(|e| Error::Config(format!("invalid endpoint URL {shown:?}: {e}")))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(Error::Config(format!(
                    "endpoint {shown:?} must start with http:// or https://"
                )));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| Error::Config(format!("endpoint {shown:?} has no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 5986 } else { 5985 });
        let path = match uri.path_and_query().map(|p| p.as_str()) {
            None | Some("") | Some("/") => "/wsman".to_string(),
            Some(p) => p.to_string(),
        };
        let url = format!(
            "{}://{}:{}{}",
            if https { "https" } else { "http" },
            if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            },
            port,
            path
        );
        Ok(Endpoint {
            url,
            https,
            host,
            port,
            path,
        })
    }

    /// `host:port` for connecting.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// `url` with the user information of its authority (`user:password@`) replaced by
/// `***`, for anything that shows a URL as the caller gave it. Also for text that is
/// not a URL at all (no scheme): whatever precedes an `@` before the first `/`.
pub(crate) fn redact_userinfo(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &rest[at..]),
        None => url.to_string(),
    }
}

/// An endpoint URL as the caller gave it, before it is parsed: its `Debug` hides user
/// information (see [`Endpoint::parse`]).
#[derive(Clone)]
pub(crate) struct RawEndpoint(pub(crate) String);

impl std::fmt::Debug for RawEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&redact_userinfo(&self.0), f)
    }
}

/// Transport settings, fixed when the client is built.
#[derive(Debug, Clone)]
pub(crate) struct TransportConfig {
    pub endpoint: Endpoint,
    pub auth: Auth,
    pub tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    pub max_response_bytes: usize,
    pub connect_timeout: Duration,
    pub max_channels: usize,
    pub idle_timeout: Duration,
    /// The logon gate (and Kerberos tickets) shared by every channel of the client.
    pub logon: Arc<Logon>,
    /// The proxy every channel connects through (see `proxy.rs`), if any.
    pub proxy: Option<Proxy>,
    /// The request target and the headers every request starts from, Basic's (and a
    /// certificate logon's) `Authorization` among them (encoded once, marked sensitive),
    /// made once per client for all its channels (see [`channel::request_head`]).
    pub request_head: Option<channel::RequestHead>,
}

impl TransportConfig {
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site: ClientBuilder::build"
    )]
    pub(crate) fn new(
        endpoint: Endpoint,
        auth: Auth,
        allow_insecure_basic: bool,
        tls: &TlsOptions,
        max_response_bytes: usize,
        connect_timeout: Duration,
        max_channels: usize,
        idle_timeout: Duration,
    ) -> Result<TransportConfig> {
        if matches!(auth, Auth::Basic { .. }) && !endpoint.https && !allow_insecure_basic {
            return Err(Error::Config(
                "Basic authentication over plain HTTP sends the password in clear text; \
                 use https, or allow it explicitly with allow_insecure_basic(true)"
                    .into(),
            ));
        }
        if let Some(c) = auth.sspi()
            && c.encryption == Encryption::Never
            && !endpoint.https
            && !c.allow_unencrypted
        {
            return Err(Error::Config(
                "Encryption::Never over plain HTTP sends every message in clear text; \
                 use https, or allow it explicitly with Auth::allow_unencrypted(true)"
                    .into(),
            ));
        }
        if matches!(auth, Auth::Certificate(_)) && !endpoint.https {
            return Err(Error::Config(
                "client-certificate authentication needs an https:// endpoint \
                 (the certificate is presented in the TLS handshake)"
                    .into(),
            ));
        }
        if matches!(auth, Auth::CredSsp(_)) {
            if !endpoint.https {
                return Err(Error::CredSspNeedsVerifiedHttps {
                    reason: "the endpoint is http://",
                });
            }
            if tls.danger_accept_invalid_certs && tls.pins.is_empty() {
                return Err(Error::CredSspNeedsVerifiedHttps {
                    reason: "certificate checks are off (danger_accept_invalid_certs)",
                });
            }
        }
        let tls = if endpoint.https {
            Some(tls::client_config_with_identity(
                tls,
                auth.client_certificate(),
            )?)
        } else {
            None
        };
        let request_head = channel::request_head(&endpoint, auth.basic_header());
        Ok(TransportConfig {
            endpoint,
            tls,
            max_response_bytes,
            connect_timeout,
            max_channels: max_channels.max(2),
            idle_timeout,
            logon: Arc::new(Logon::new()),
            proxy: None,
            request_head,
            auth,
        })
    }
}

/// Counters of the transport, for tests and diagnostics.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub connects: AtomicU64,
    pub requests: AtomicU64,
    pub reconnects: AtomicU64,
    pub handshakes: AtomicU64,
}

/// A snapshot of the transport counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TransportStats {
    /// TCP (or TLS) connections opened.
    pub connects: u64,
    /// HTTP requests sent.
    pub requests: u64,
    /// Requests sent again on a fresh connection: after hyper handed an unsent request
    /// back (a reused connection the server had closed), or after the response of a
    /// read (Identify, Get) was lost.
    pub reconnects: u64,
    /// NTLM/Negotiate handshakes completed (one per channel connection, plus re-auths).
    pub handshakes: u64,
}

struct Idle {
    /// Boxed: a channel moves between the pool and a lease on every request.
    channel: Box<Channel>,
    since: Instant,
}

/// What a request is, for the pool and for re-sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    /// A read that is safe to repeat (Identify, WS-Transfer Get, the config Get): sent
    /// once more on a fresh connection when its response was lost.
    Read,
    /// Anything that changes state or whose repetition loses data (Create, Command,
    /// Send, Signal, Invoke, Put, Delete, Enumerate, Release): never re-sent once it may
    /// have reached the server.
    Write,
    /// A long poll (Receive, Pull): never re-sent, and held to the long-poll budget of
    /// channels so that short requests always find a channel.
    LongPoll,
}

/// Channels kept for short requests out of `max_channels`: long polls may hold all
/// the others. One eighth, at least one.
pub(crate) fn reserved_for_short(max_channels: usize) -> usize {
    (max_channels / 8).max(1)
}

/// The channel pool of one endpoint.
///
/// A request first takes a permit (at most `max_channels` channels are in use; tokio's
/// semaphore serves waiters in order, so a queued request is never overtaken by later
/// ones), then an idle channel or a new one. A channel going back to the pool releases
/// its permit, which wakes the oldest waiter. Long polls (Receive, Pull) also need a
/// permit of the long-poll budget, so that however many commands are running, short
/// requests (a cancel's Signal, a Get) are served at once. Channels in use plus idle
/// channels never exceed `max_channels`: a channel is only created when no idle one is
/// left.
pub(crate) struct Transport {
    pub(crate) config: Arc<TransportConfig>,
    idle: std::sync::Mutex<Vec<Idle>>,
    permits: Arc<Semaphore>,
    long_poll_permits: Arc<Semaphore>,
    pub(crate) stats: Arc<Stats>,
}

impl Transport {
    pub(crate) fn new(config: TransportConfig) -> Transport {
        let permits = Arc::new(Semaphore::new(config.max_channels));
        let long_polls = config.max_channels - reserved_for_short(config.max_channels);
        Transport {
            config: Arc::new(config),
            idle: std::sync::Mutex::new(Vec::new()),
            permits,
            long_poll_permits: Arc::new(Semaphore::new(long_polls.max(1))),
            stats: Arc::new(Stats::default()),
        }
    }

    /// Long-poll channels free now (out of the long-poll budget).
    pub(crate) fn long_polls_free(&self) -> usize {
        self.long_poll_permits.available_permits()
    }

    pub(crate) fn stats(&self) -> TransportStats {
        TransportStats {
            connects: self.stats.connects.load(Ordering::Relaxed),
            requests: self.stats.requests.load(Ordering::Relaxed),
            reconnects: self.stats.reconnects.load(Ordering::Relaxed),
            handshakes: self.stats.handshakes.load(Ordering::Relaxed),
        }
    }

    /// Waits for a permit (and, for a long poll, a long-poll permit), then takes an idle
    /// channel or a new (not yet connected) one. The wait is not HTTP time.
    pub(crate) async fn lease(self: &Arc<Self>, kind: RequestKind) -> Result<Lease> {
        let long_poll = match kind {
            RequestKind::LongPoll => Some(permit(&self.long_poll_permits).await?),
            RequestKind::Read | RequestKind::Write => None,
        };
        let permit = permit(&self.permits).await?;
        let channel = self.take_idle().unwrap_or_else(|| {
            Box::new(Channel::new(
                Arc::clone(&self.config),
                Arc::clone(&self.stats),
            ))
        });
        Ok(Lease {
            channel: Some(channel),
            pool: Arc::clone(self),
            _permit: permit,
            _long_poll: long_poll,
        })
    }

    fn take_idle(&self) -> Option<Box<Channel>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        while let Some(i) = idle.pop() {
            if now.duration_since(i.since) < self.config.idle_timeout && i.channel.is_usable() {
                return Some(i.channel);
            }
        }
        None
    }

    /// One request on any channel, under the HTTP timeout `timeout` (which starts once
    /// a channel is had). A [`RequestKind::Read`] whose response was lost is sent once
    /// more on a fresh connection; nothing else is re-sent once it may have left. A
    /// request that carries credentials passes the logon gate first (see [`logon`]):
    /// until a logon has succeeded it runs alone, and once the credentials were refused
    /// it fails at once.
    pub(crate) async fn send(
        self: &Arc<Self>,
        body: Bytes,
        unauthenticated_identify: bool,
        kind: RequestKind,
        timeout: Duration,
        fresh: bool,
    ) -> Result<HttpResponse> {
        let auth = &self.config.auth;
        let gated = !unauthenticated_identify && !matches!(auth, Auth::None);
        let attempt = if gated {
            self.config.logon.enter().await?
        } else {
            None
        };
        let mut result = self
            .send_leased(body, unauthenticated_identify, kind, timeout, fresh)
            .await;
        if let (Auth::Certificate(_), Err(e)) = (auth, &result) {
            let reason = match e {
                Error::Unauthorized { .. } => Some(
                    "HTTP 401: the host maps no user to this certificate, does not trust \
                     its issuer, or did not ask for it (certificate authentication off on \
                     the host)"
                        .to_string(),
                ),
                e => tls::client_certificate_alert(e)
                    .map(|alert| format!("the TLS session ended with the alert {alert:?}")),
            };
            if let Some(reason) = reason {
                result = Err(Error::ClientCertificateRefused { reason });
            }
        }
        if gated && matches!(auth, Auth::Basic { .. } | Auth::Certificate(_)) {
            // NTLM and Kerberos report from their handshakes (channel.rs). Basic has no
            // handshake: its credentials ride on every request, and the server's answer
            // to them is the verdict.
            match &result {
                Ok(_) => self.config.logon.succeeded(),
                Err(e @ (Error::Unauthorized { .. } | Error::ClientCertificateRefused { .. })) => {
                    self.config.logon.refused(e)
                }
                Err(_) => {}
            }
        }
        if let Some(attempt) = attempt {
            // An attempt that could not reach the host fails the calls waiting for it.
            let endpoint = self.config.endpoint.authority();
            self.config.logon.attempt_ended(attempt, &result, &endpoint);
        }
        result
    }

    async fn send_leased(
        self: &Arc<Self>,
        body: Bytes,
        unauthenticated_identify: bool,
        kind: RequestKind,
        timeout: Duration,
        fresh: bool,
    ) -> Result<HttpResponse> {
        match self
            .send_once(body.clone(), unauthenticated_identify, kind, timeout, fresh)
            .await
        {
            Err(Error::ResponseLost { source }) if kind == RequestKind::Read => {
                tracing::debug!(error = %source, "response of a read lost; sending it again on a fresh connection");
                self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                // A new operation as far as Robust Connections go: a server that kept
                // the lost response would refuse the same OperationID unmarked.
                let body = robust::renew_operation_id(&body);
                self.send_once(body, unauthenticated_identify, kind, timeout, true)
                    .await
            }
            other => other,
        }
    }

    /// One attempt on a leased channel (a new connection when `fresh`), under the HTTP
    /// timeout.
    async fn send_once(
        self: &Arc<Self>,
        body: Bytes,
        unauthenticated_identify: bool,
        kind: RequestKind,
        timeout: Duration,
        fresh: bool,
    ) -> Result<HttpResponse> {
        let mut lease = self.lease(kind).await?;
        if fresh {
            // Not on a connection that may be the broken one's peer.
            lease.channel().disconnect();
        }
        lease
            .channel()
            .send_within(
                timeout,
                body,
                unauthenticated_identify,
                kind == RequestKind::Read,
            )
            .await
    }
}

/// A permit of `semaphore`, at once when one is free (nobody waits then: tokio hands a
/// released permit to the oldest waiter first), else in turn.
async fn permit(semaphore: &Arc<Semaphore>) -> Result<OwnedSemaphorePermit> {
    match Arc::clone(semaphore).try_acquire_owned() {
        Ok(permit) => Ok(permit),
        Err(tokio::sync::TryAcquireError::Closed) => Err(transport_closed()),
        Err(tokio::sync::TryAcquireError::NoPermits) => Arc::clone(semaphore)
            .acquire_owned()
            .await
            .map_err(|_| transport_closed()),
    }
}

fn transport_closed() -> Error {
    Error::State("transport closed".into())
}

/// A channel borrowed from the pool, with its permits. Dropping it mid-request (an
/// abandoned long poll) drops the connection; otherwise the channel goes back to the
/// pool, then the permits are released.
pub(crate) struct Lease {
    channel: Option<Box<Channel>>,
    pool: Arc<Transport>,
    _permit: OwnedSemaphorePermit,
    _long_poll: Option<OwnedSemaphorePermit>,
}

impl Lease {
    pub(crate) fn channel(&mut self) -> &mut Channel {
        self.channel
            .as_mut()
            .expect("lease holds a channel until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(ch) = self.channel.take() else {
            return;
        };
        if !ch.is_reusable() {
            return; // dropping it closes the connection
        }
        let idle = Idle {
            channel: ch,
            since: Instant::now(),
        };
        let mut pool = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
        // Room for one at first (a client used one request at a time, the usual case
        // and the fan-out's, never needs more): a Vec would take room for four.
        if pool.capacity() == 0 {
            pool.reserve_exact(1);
        }
        pool.push(idle);
        // The permits are released after this, when the fields drop: the next waiter
        // finds the channel idle.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://host").unwrap();
        assert_eq!((e.port, e.path.as_str(), e.https), (5985, "/wsman", false));
        assert_eq!(e.url, "http://host:5985/wsman");
        let e = Endpoint::parse("https://[::1]/custom").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.path.as_str()),
            ("::1", 5986, "/custom")
        );
        assert_eq!(e.authority(), "[::1]:5986");
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("not a url").is_err());
    }

    #[test]
    fn user_information_is_refused_and_never_echoed() {
        for url in [
            "http://bob:hunter2-secret@host/wsman",
            "https://bob:hunter2-secret@[::1]:5986/wsman",
            "http://hunter2-secret@host",
            "bob:hunter2-secret@host:5985",
            "ftp://bob:hunter2-secret@host",
            "http://bob:hunter2-secret@host:99999/wsman",
        ] {
            let e = Endpoint::parse(url).unwrap_err();
            let shown = format!("{e} {e:?}");
            assert!(matches!(e, Error::Config(_)), "{shown}");
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("***@"), "{shown}");
            let raw = format!("{:?}", RawEndpoint(url.to_string()));
            assert!(!raw.contains("hunter2") && raw.contains("***@"), "{raw}");
        }
        assert_eq!(
            redact_userinfo("http://u:p@h:1/a@b?c@d"),
            "http://***@h:1/a@b?c@d"
        );
        assert_eq!(redact_userinfo("http://h/p@q"), "http://h/p@q");
        assert!(Endpoint::parse("http://host/wsman?a=b@c").is_ok());
    }
}
