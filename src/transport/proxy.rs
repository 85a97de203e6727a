//! Proxies: an HTTP `CONNECT` tunnel or a SOCKS5 connection per channel, with proxy
//! credentials, and the opt-in choice of a proxy from `HTTP_PROXY`, `HTTPS_PROXY`,
//! `ALL_PROXY` and `NO_PROXY` (curl's rules).
//!
//! The handshakes are hyper-util's (`Tunnel`, `SocksV5`) and so is the environment
//! matcher (`Matcher`); this module picks the proxy, opens the TCP connection to it,
//! bounds the whole setup by the connect timeout and turns what went wrong into
//! [`Error::Proxy`]. Every channel is one tunnel over one TCP connection to the proxy,
//! so an NTLM or Kerberos context stays bound to one connection end to end, for
//! `http://` endpoints as for `https://` ones (`CONNECT` is used for both; the proxy
//! never sees a request, only bytes).

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use base64::Engine as _;
use http::{HeaderValue, Uri};
use hyper_util::client::legacy::connect::proxy::{SocksV5, Tunnel};
use hyper_util::client::proxy::matcher::Matcher;
use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tower_service::Service;

use super::{Endpoint, redact_userinfo};
use crate::error::{BoxError, Error, Result};

/// The port of a proxy URL without one (curl's default, for every proxy type).
const DEFAULT_PROXY_PORT: u16 = 1080;
/// SOCKS5 user names and passwords are at most 255 bytes (RFC 1929).
const SOCKS5_MAX_CREDENTIAL: usize = 255;
/// How much of the proxy's answer is kept for an error message.
const RECORD_BYTES: usize = 512;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// An HTTP proxy, used through `CONNECT` tunnels.
    Http,
    /// SOCKS5; `remote_dns`: the proxy resolves the endpoint's name (`socks5h://`).
    Socks5 { remote_dns: bool },
}

#[derive(Clone)]
struct Credentials {
    user: String,
    password: SecretString,
}

/// A proxy the client connects through: an HTTP proxy (an HTTP `CONNECT` tunnel per
/// connection, for `http://` and `https://` endpoints alike) or a SOCKS5 proxy.
///
/// TLS to an `https://` endpoint runs inside the tunnel, end to end: the proxy sees
/// neither the certificate check nor the messages, and channel binding is that of the
/// endpoint's certificate. Proxy credentials (Basic `Proxy-Authorization` for `CONNECT`,
/// RFC 1929 username/password for SOCKS5) never appear in `Debug`, `Display`, logs or
/// errors.
///
/// ```
/// use tokio_winrm::Proxy;
/// let p = Proxy::parse("socks5h://alice:s3cret@proxy.corp:1080")?;
/// assert_eq!(p.to_string(), "socks5h://proxy.corp:1080");
/// assert!(!format!("{p:?}").contains("s3cret"));
/// let p = Proxy::http("http://proxy.corp:3128")?.credentials("alice", "s3cret");
/// assert_eq!(p.authority(), "proxy.corp:3128");
/// # Ok::<(), tokio_winrm::Error>(())
/// ```
#[derive(Clone)]
pub struct Proxy {
    kind: Kind,
    /// Host name or address (IPv6 without brackets).
    host: String,
    port: u16,
    credentials: Option<Credentials>,
}

impl Proxy {
    /// Parses a proxy URL: `http://[user:password@]host[:port]` (a URL without a scheme
    /// is an HTTP proxy, as with curl), `socks5://...` (the client resolves the
    /// endpoint's name) or `socks5h://...` (the proxy resolves it). The default port is
    /// 1080 (curl's). User information is percent-decoded and used for the proxy only.
    ///
    /// # Errors
    /// [`Error::Config`] for another scheme (`https://` proxies, TLS to the proxy, and
    /// SOCKS4 are not supported), a URL without a host, or SOCKS5 credentials over 255
    /// bytes. No error repeats the user information.
    pub fn parse(url: &str) -> Result<Proxy> {
        let shown = redact_userinfo(url);
        let full = if url.contains("://") {
            url.to_string()
        } else {
            format!("http://{url}")
        };
        let uri: Uri = full
            .parse()
            .map_err(|e| Error::Config(format!("invalid proxy URL {shown:?}: {e}")))?;
        let kind = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("http") => Kind::Http,
            Some("socks5") => Kind::Socks5 { remote_dns: false },
            Some("socks5h") => Kind::Socks5 { remote_dns: true },
            Some(other) => {
                return Err(Error::Config(format!(
                    "proxy {shown:?}: the scheme {other}:// is not supported \
                     (use http://, socks5:// or socks5h://)"
                )));
            }
            None => Kind::Http,
        };
        let authority = uri
            .authority()
            .ok_or_else(|| Error::Config(format!("proxy {shown:?} has no host")))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if host.is_empty() {
            return Err(Error::Config(format!("proxy {shown:?} has no host")));
        }
        let credentials = match authority.as_str().rsplit_once('@') {
            Some((userinfo, _)) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let decode = |s: &str| {
                    percent_encoding::percent_decode_str(s)
                        .decode_utf8()
                        .map(|s| s.into_owned())
                        .map_err(|_| {
                            Error::Config(format!(
                                "proxy {shown:?}: the user information is not UTF-8 \
                                 once percent-decoded"
                            ))
                        })
                };
                Some(Credentials {
                    user: decode(user)?,
                    password: SecretString::from(decode(password)?),
                })
            }
            None => None,
        };
        let proxy = Proxy {
            kind,
            host,
            port: authority.port_u16().unwrap_or(DEFAULT_PROXY_PORT),
            credentials,
        };
        proxy.check_credentials()?;
        Ok(proxy)
    }

    /// An HTTP proxy ([`Proxy::parse`] that accepts only `http://` URLs and bare
    /// `host:port`): an HTTP `CONNECT` tunnel per connection.
    ///
    /// # Errors
    /// [`Error::Config`] as for [`Proxy::parse`], and for a SOCKS URL.
    pub fn http(url: &str) -> Result<Proxy> {
        let p = Proxy::parse(url)?;
        if p.kind != Kind::Http {
            return Err(Error::Config(format!(
                "proxy {:?} is not an http:// proxy",
                redact_userinfo(url)
            )));
        }
        Ok(p)
    }

    /// A SOCKS5 proxy: `socks5://` (the client resolves the endpoint's name) or
    /// `socks5h://` (the proxy resolves it, which it must when the endpoint's name is
    /// only known inside the proxy's network). Bare `host:port` is `socks5://`, as
    /// curl's `--socks5`.
    ///
    /// # Errors
    /// [`Error::Config`] as for [`Proxy::parse`], and for an `http://` URL.
    pub fn socks5(url: &str) -> Result<Proxy> {
        let p = if url.contains("://") {
            Proxy::parse(url)?
        } else {
            Proxy::parse(&format!("socks5://{url}"))?
        };
        if p.kind == Kind::Http {
            return Err(Error::Config(format!(
                "proxy {:?} is not a socks5:// or socks5h:// proxy",
                redact_userinfo(url)
            )));
        }
        Ok(p)
    }

    /// Sets the proxy credentials (replacing any from the URL): Basic
    /// `Proxy-Authorization` on the `CONNECT` of an HTTP proxy, the username/password
    /// method (RFC 1929) for SOCKS5. A SOCKS5 user name or password over 255 bytes
    /// fails when the client is built.
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Proxy {
        self.credentials = Some(Credentials {
            user: user.into(),
            password: SecretString::from(password.into()),
        });
        self
    }

    /// `host:port` of the proxy (IPv6 in brackets), as errors name it.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// True for SOCKS5 proxies, false for HTTP proxies.
    pub fn is_socks5(&self) -> bool {
        matches!(self.kind, Kind::Socks5 { .. })
    }

    fn scheme(&self) -> &'static str {
        match self.kind {
            Kind::Http => "http",
            Kind::Socks5 { remote_dns: false } => "socks5",
            Kind::Socks5 { remote_dns: true } => "socks5h",
        }
    }

    fn check_credentials(&self) -> Result<()> {
        if let (Kind::Socks5 { .. }, Some(c)) = (self.kind, &self.credentials)
            && (c.user.len() > SOCKS5_MAX_CREDENTIAL
                || c.password.expose_secret().len() > SOCKS5_MAX_CREDENTIAL)
        {
            return Err(Error::Config(format!(
                "proxy {self}: SOCKS5 user names and passwords are at most \
                 {SOCKS5_MAX_CREDENTIAL} bytes"
            )));
        }
        Ok(())
    }

    /// The proxy URL hyper-util's connectors are given (it is only handed back to the
    /// inner connector, which ignores it).
    fn uri(&self) -> Result<Uri> {
        format!("{}://{}/", self.scheme(), self.authority())
            .parse()
            .map_err(|e| Error::Config(format!("invalid proxy address {}: {e}", self.authority())))
    }

    fn error(&self, message: impl Into<String>, source: Option<BoxError>) -> Error {
        Error::Proxy {
            proxy: self.authority(),
            message: message.into(),
            source,
        }
    }

    /// Opens a connection to `endpoint` through the proxy: TCP to the proxy, then the
    /// `CONNECT` or SOCKS5 handshake, all within `timeout`. The stream returned carries
    /// the endpoint's bytes (TLS, if any, goes on top).
    pub(crate) async fn connect(
        &self,
        endpoint: &Endpoint,
        timeout: Duration,
    ) -> Result<TcpStream> {
        match tokio::time::timeout(timeout, self.connect_inner(endpoint)).await {
            Ok(result) => result,
            Err(_) => Err(self.error(
                format!(
                    "no tunnel to {} within the connect timeout of {timeout:?} \
                     (TCP connect to the proxy and its handshake)",
                    endpoint.authority()
                ),
                Some(Box::new(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("timed out after {timeout:?}"),
                ))),
            )),
        }
    }

    async fn connect_inner(&self, endpoint: &Endpoint) -> Result<TcpStream> {
        tracing::debug!(proxy = %self, endpoint = %endpoint.authority(), "connecting through a proxy");
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| {
                self.error(
                    format!("cannot connect to the proxy: {e}"),
                    Some(Box::new(e)),
                )
            })?;
        let _ = tcp.set_nodelay(true);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let once = Once(Some(Recording {
            tcp,
            seen: Arc::clone(&seen),
        }));
        let target = endpoint.authority();
        let stream = match self.kind {
            Kind::Http => {
                let mut tunnel = Tunnel::new(self.uri()?, once);
                if let Some(c) = &self.credentials {
                    tunnel = tunnel.with_auth(basic(c)?);
                }
                let dst = authority_uri(&target)?;
                let result = match poll_fn(|cx| tunnel.poll_ready(cx)).await {
                    Ok(()) => tunnel.call(dst).await,
                    Err(e) => Err(e),
                };
                result.map_err(|e| self.connect_refused(&target, &seen, Box::new(e)))?
            }
            Kind::Socks5 { remote_dns } => {
                let host = if remote_dns {
                    endpoint.host.clone()
                } else {
                    // Resolved here, asynchronously (hyper-util would resolve with a
                    // blocking call): the proxy is given an address.
                    resolve(endpoint).await?
                };
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host
                };
                let dst = authority_uri(&format!("{host}:{}", endpoint.port))?;
                let mut socks = SocksV5::new(self.uri()?, once).local_dns(false);
                if let Some(c) = &self.credentials {
                    socks = socks.with_auth(c.user.clone(), c.password.expose_secret().to_string());
                }
                let result = match poll_fn(|cx| socks.poll_ready(cx)).await {
                    Ok(()) => socks.call(dst).await,
                    Err(e) => Err(e),
                };
                result.map_err(|e| {
                    let why = e.to_string();
                    let mut why = why
                        .strip_prefix("SOCKS error: ")
                        .unwrap_or(&why)
                        .to_string();
                    if why.starts_with("io error") {
                        // hyper-util's message leaves the I/O error out.
                        let detail = format!("{e:?}");
                        why = if detail.contains("UnexpectedEof") {
                            "the proxy closed the connection during the SOCKS5 handshake \
                             (some proxies do so on wrong credentials)"
                                .to_string()
                        } else {
                            format!("{why} ({detail})")
                        };
                    }
                    self.error(
                        format!("no SOCKS5 connection to {target}: {why}"),
                        Some(Box::new(e)),
                    )
                })?
            }
        };
        Ok(stream.tcp)
    }

    /// [`Error::Proxy`] for a failed `CONNECT`, with the status line the proxy answered
    /// (hyper-util's error does not carry it).
    fn connect_refused(&self, target: &str, seen: &Mutex<Vec<u8>>, e: BoxError) -> Error {
        let seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
        match status_line(&seen) {
            Some((code, line)) => {
                let hint = match (code, &self.credentials) {
                    (407, None) => " (the proxy asks for credentials; none were given)",
                    (407, Some(_)) => " (the proxy credentials were not accepted)",
                    _ => "",
                };
                let offered = proxy_authenticate(&seen);
                let offered = if code == 407 && !offered.is_empty() {
                    format!("; it offers: {offered}")
                } else {
                    String::new()
                };
                self.error(
                    format!("refused the CONNECT to {target}: {line:?}{hint}{offered}"),
                    None,
                )
            }
            None => self.error(format!("the CONNECT to {target} failed: {e}"), Some(e)),
        }
    }
}

impl fmt::Display for Proxy {
    /// The proxy's URL without credentials, e.g. `socks5h://proxy.corp:1080`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme(), self.authority())
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &self.to_string())
            .field("user", &self.credentials.as_ref().map(|c| c.user.as_str()))
            .field("password", &self.credentials.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The proxy to use for `endpoint`: the explicit one, else (when `from_env`) the one
/// the environment names for its scheme unless `NO_PROXY` exempts it.
pub(crate) fn select(
    explicit: Option<Proxy>,
    from_env: bool,
    endpoint: &Endpoint,
) -> Result<Option<Proxy>> {
    if let Some(p) = explicit {
        p.check_credentials()?;
        return Ok(Some(p));
    }
    if !from_env {
        return Ok(None);
    }
    from_vars(&|name| std::env::var(name).ok(), endpoint)
}

/// The environment's proxy for `endpoint`, reading variables through `var`.
///
/// As curl: `HTTPS_PROXY` for `https://` endpoints and `HTTP_PROXY` for `http://` ones,
/// `ALL_PROXY` for either when its own is not set; each name upper-case first, then
/// lower-case; `NO_PROXY` lists hosts, domains (matching their subdomains too; a leading
/// dot is optional), IP addresses and CIDR ranges to reach directly, or `*` for all.
/// Within a CGI program (`REQUEST_METHOD` set) the environment is not used (a request
/// header `Proxy:` would arrive as `HTTP_PROXY`).
pub(crate) fn from_vars(
    var: &dyn Fn(&str) -> Option<String>,
    endpoint: &Endpoint,
) -> Result<Option<Proxy>> {
    if var("REQUEST_METHOD").is_some() {
        return Ok(None);
    }
    let first = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|n| var(n).filter(|v| !v.trim().is_empty()))
            .unwrap_or_default()
    };
    let (all, http, https) = (
        first(["ALL_PROXY", "all_proxy"]),
        first(["HTTP_PROXY", "http_proxy"]),
        first(["HTTPS_PROXY", "https_proxy"]),
    );
    let chosen = if endpoint.https { &https } else { &http };
    let chosen = if chosen.is_empty() { &all } else { chosen };
    let no = first(["NO_PROXY", "no_proxy"]);
    let matcher = |no: &str| {
        Matcher::builder()
            .all(all.as_str())
            .http(http.as_str())
            .https(https.as_str())
            .no(no)
            .build()
    };
    let dst: Uri = endpoint
        .url
        .parse()
        .map_err(|e| Error::Config(format!("invalid endpoint URL for the proxy rules: {e}")))?;
    let Some(intercept) = matcher(&no).intercept(&dst) else {
        if !chosen.is_empty() && matcher("").intercept(&dst).is_none() {
            // Not NO_PROXY: hyper-util passed over a scheme it does not know. Say so
            // rather than connect directly behind the user's back.
            return Err(Error::Config(format!(
                "the proxy environment names {:?}, which is not an http://, socks5:// or \
                 socks5h:// proxy URL",
                redact_userinfo(chosen)
            )));
        }
        return Ok(None);
    };
    let mut proxy = Proxy::parse(&intercept.uri().to_string()).map_err(|_| {
        Error::Config(format!(
            "the proxy environment names {:?}, which this client cannot use \
             (http://, socks5:// or socks5h:// are supported)",
            redact_userinfo(chosen)
        ))
    })?;
    if let Some((user, password)) = intercept.raw_auth() {
        proxy = proxy.credentials(user, password);
    } else if let Some(header) = intercept.basic_auth()
        && let Some((user, password)) = decode_basic(header)
    {
        proxy = proxy.credentials(user, password);
    }
    proxy.check_credentials()?;
    Ok(Some(proxy))
}

/// User and password of a `Basic` header value (hyper-util's matcher hands HTTP proxy
/// credentials over encoded).
fn decode_basic(header: &HeaderValue) -> Option<(String, String)> {
    let encoded = header.to_str().ok()?.strip_prefix("Basic ")?;
    let plain = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let plain = String::from_utf8(plain).ok()?;
    let (user, password) = plain.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The `Proxy-Authorization` value: Basic, marked sensitive.
fn basic(c: &Credentials) -> Result<HeaderValue> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        c.user,
        c.password.expose_secret()
    ));
    let mut v = HeaderValue::from_str(&format!("Basic {encoded}"))
        .map_err(|_| Error::Config("invalid proxy credentials".into()))?;
    v.set_sensitive(true);
    Ok(v)
}

fn authority_uri(authority: &str) -> Result<Uri> {
    format!("http://{authority}/")
        .parse()
        .map_err(|e| Error::Config(format!("invalid endpoint address {authority}: {e}")))
}

/// The endpoint's first address (for `socks5://`, where the client resolves).
async fn resolve(endpoint: &Endpoint) -> Result<String> {
    let connect_error = |source| Error::Connect {
        endpoint: endpoint.authority(),
        source,
    };
    let mut addrs = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(connect_error)?;
    let addr = addrs.next().ok_or_else(|| {
        connect_error(io::Error::new(
            io::ErrorKind::NotFound,
            "the name resolved to no address",
        ))
    })?;
    Ok(addr.ip().to_string())
}

/// `(code, line)` of the HTTP status line at the start of `bytes`.
fn status_line(bytes: &[u8]) -> Option<(u16, String)> {
    let end = bytes.iter().position(|&b| b == b'\r' || b == b'\n')?;
    let line = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut parts = line.splitn(3, ' ');
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?.parse::<u16>().ok()?;
    let line: String = line.chars().filter(|c| !c.is_control()).take(120).collect();
    Some((code, line))
}

/// The schemes of the `Proxy-Authenticate` headers in a recorded answer.
fn proxy_authenticate(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let schemes: Vec<String> = text
        .split("\r\n")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case("proxy-authenticate"))
        .filter_map(|(_, v)| v.split_whitespace().next())
        .map(|s| {
            s.chars()
                .filter(char::is_ascii_alphanumeric)
                .take(20)
                .collect()
        })
        .filter(|s: &String| !s.is_empty())
        .collect();
    schemes.join(", ")
}

/// The TCP connection to the proxy during the handshake, keeping the first bytes the
/// proxy sends for the error message.
struct Recording {
    tcp: TcpStream,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl hyper::rt::Read for Recording {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut local = [0u8; 1024];
        let want = buf.remaining().min(local.len());
        let mut read = tokio::io::ReadBuf::new(&mut local[..want]);
        ready!(Pin::new(&mut this.tcp).poll_read(cx, &mut read))?;
        let got = read.filled();
        if let Ok(mut seen) = this.seen.lock() {
            let room = RECORD_BYTES.saturating_sub(seen.len());
            seen.extend_from_slice(&got[..got.len().min(room)]);
        }
        buf.put_slice(got);
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for Recording {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// The inner connector of hyper-util's `Tunnel` and `SocksV5`: hands over the
/// connection to the proxy already opened (so that its failures are told apart).
struct Once(Option<Recording>);

impl Service<Uri> for Once {
    type Response = Recording;
    type Error = io::Error;
    type Future = std::future::Ready<io::Result<Recording>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _proxy: Uri) -> Self::Future {
        std::future::ready(
            self.0
                .take()
                .ok_or_else(|| io::Error::other("the proxy connection was already used")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(url: &str) -> Endpoint {
        Endpoint::parse(url).unwrap()
    }

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn chosen(pairs: &[(&str, &str)], endpoint: &str) -> Option<String> {
        from_vars(&vars(pairs), &ep(endpoint))
            .unwrap()
            .map(|p| p.to_string())
    }

    #[test]
    fn scheme_picks_the_variable_and_all_proxy_is_the_fallback() {
        let env = [
            ("HTTP_PROXY", "http://h.corp:3128"),
            ("HTTPS_PROXY", "socks5h://s.corp"),
            ("ALL_PROXY", "http://all.corp:8080"),
        ];
        assert_eq!(
            chosen(&env, "http://win1:5985").as_deref(),
            Some("http://h.corp:3128")
        );
        assert_eq!(
            chosen(&env, "https://win1").as_deref(),
            Some("socks5h://s.corp:1080")
        );
        let env = [("ALL_PROXY", "http://all.corp:8080")];
        assert_eq!(
            chosen(&env, "https://win1").as_deref(),
            Some("http://all.corp:8080")
        );
        assert_eq!(
            chosen(&env, "http://win1").as_deref(),
            Some("http://all.corp:8080")
        );
        assert_eq!(chosen(&[], "http://win1"), None);
    }

    #[test]
    fn lower_case_variables_count_and_upper_case_wins() {
        let env = [("https_proxy", "http://lower.corp:1")];
        assert_eq!(
            chosen(&env, "https://win1").as_deref(),
            Some("http://lower.corp:1")
        );
        let env = [
            ("HTTPS_PROXY", "http://upper.corp:2"),
            ("https_proxy", "http://lower.corp:1"),
        ];
        assert_eq!(
            chosen(&env, "https://win1").as_deref(),
            Some("http://upper.corp:2")
        );
        let env = [("no_proxy", "win1"), ("all_proxy", "socks5://p")];
        assert_eq!(chosen(&env, "https://win1"), None);
        assert_eq!(
            chosen(&env, "https://win2").as_deref(),
            Some("socks5://p:1080")
        );
    }

    #[test]
    fn no_proxy_follows_curl() {
        let with = |no: &'static str| [("ALL_PROXY", "http://p.corp:3128"), ("NO_PROXY", no)];
        // A domain matches itself and its subdomains, with or without a leading dot,
        // case-insensitively; not a name that merely ends with the same letters.
        for no in ["corp.example", ".corp.example", "CORP.example"] {
            assert_eq!(chosen(&with(no), "http://corp.example"), None, "{no}");
            assert_eq!(chosen(&with(no), "http://win1.corp.example"), None, "{no}");
            assert!(
                chosen(&with(no), "http://notcorp.example").is_some(),
                "{no}"
            );
        }
        // Lists: commas, whitespace around entries.
        let env = with("other.test , win1.test,10.0.0.0/8");
        assert_eq!(chosen(&env, "http://win1.test"), None);
        assert_eq!(chosen(&env, "http://10.1.2.3:5985"), None);
        assert!(chosen(&env, "http://11.1.2.3:5985").is_some());
        assert!(chosen(&env, "http://win2.test").is_some());
        // Addresses, IPv6 too; `*` bypasses everything.
        assert_eq!(chosen(&with("192.0.2.7"), "http://192.0.2.7"), None);
        assert!(chosen(&with("192.0.2.7"), "http://192.0.2.8").is_some());
        assert_eq!(chosen(&with("::1"), "http://[::1]:5985"), None);
        assert_eq!(chosen(&with("*"), "https://anything.test"), None);
        assert!(chosen(&with(""), "https://anything.test").is_some());
    }

    #[test]
    fn cgi_programs_ignore_the_environment() {
        let env = [("HTTP_PROXY", "http://p:1"), ("REQUEST_METHOD", "GET")];
        assert_eq!(chosen(&env, "http://win1"), None);
    }

    #[test]
    fn credentials_from_the_environment_reach_the_proxy_and_not_its_debug() {
        for url in [
            "http://al%40ice:p%3Ass@p.corp:3128",
            "socks5h://al%40ice:p%3Ass@p.corp",
        ] {
            let p = from_vars(&vars(&[("ALL_PROXY", url)]), &ep("http://win1"))
                .unwrap()
                .unwrap();
            let c = p.credentials.as_ref().expect("credentials");
            assert_eq!(c.user, "al@ice", "{url}");
            assert_eq!(c.password.expose_secret(), "p:ss", "{url}");
            let shown = format!("{p:?} {p}");
            assert!(
                !shown.contains("p:ss") && !shown.contains("p%3Ass"),
                "{shown}"
            );
        }
    }

    #[test]
    fn unsupported_environment_proxies_are_errors_not_direct_connections() {
        for url in ["https://p.corp:443", "socks4://p.corp", "ftp://p.corp"] {
            let err = from_vars(&vars(&[("HTTPS_PROXY", url)]), &ep("https://win1")).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{url}: {err}");
        }
        let err = from_vars(
            &vars(&[("HTTPS_PROXY", "https://user:hunter2@p.corp")]),
            &ep("https://win1"),
        )
        .unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn status_lines_and_offered_schemes_are_read_from_the_answer() {
        let answer = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                       Proxy-Authenticate: Basic realm=\"x\"\r\nproxy-authenticate: Negotiate\r\n\r\n";
        assert_eq!(
            status_line(answer),
            Some((407, "HTTP/1.1 407 Proxy Authentication Required".into()))
        );
        assert_eq!(proxy_authenticate(answer), "Basic, Negotiate");
        assert_eq!(
            status_line(b"HTTP/1.1 403 Forbidden\r\n"),
            Some((403, "HTTP/1.1 403 Forbidden".into()))
        );
        assert_eq!(status_line(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_line(b"HTTP/1.1 200"), None);
    }
}
