//! The crate's one public error type.

use crate::operation::CancelReason;
use crate::soap::de::DeError;
use crate::soap::{Fault, ParseError};

/// A boxed underlying error, kept as [`std::error::Error::source`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for `Result<T, tokio_winrm::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a WS-Management endpoint.
///
/// What the server said is [`Error::Fault`]; what the HTTP layer said carries the
/// status and a short excerpt of the body. Secrets never appear in an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with a SOAP fault.
    #[error("{0}")]
    Fault(Box<Fault>),
    /// An HTTP status that is not a SOAP answer (e.g. a non-SOAP 500, 404, 413).
    #[error("HTTP {status} from the server: {excerpt:?}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The first bytes of the body, lossily decoded.
        excerpt: String,
    },
    /// The server refused the credentials (HTTP 401). Only the call whose logon was
    /// refused gets it: the client then sends no further logon, and its other calls,
    /// waiting or later, fail at once with [`Error::Auth`] ("no further logon is
    /// attempted"); [`Error::is_auth`] is true for both.
    #[error("authentication failed (HTTP 401); the server offers: {}", if offered.is_empty() { "nothing".to_string() } else { offered.join(", ") })]
    Unauthorized {
        /// The schemes of the server's `WWW-Authenticate` headers.
        offered: Vec<String>,
    },
    /// The host refused the client certificate of an [`Auth::Certificate`] logon: HTTP
    /// 401 to the certificate logon (no user mapped to the certificate, its issuer not
    /// trusted, certificate authentication off), or the TLS handshake ended by the host
    /// with a certificate alert (e.g. `UnknownCA`, `BadCertificate`,
    /// `CertificateRequired`).
    ///
    /// [`Auth::Certificate`]: crate::Auth::Certificate
    #[error("the host refused the client certificate: {reason}")]
    ClientCertificateRefused {
        /// Why, as far as the client can tell.
        reason: String,
    },
    /// [`Auth::CredSsp`] on an endpoint where the delegated password could reach someone
    /// other than the host: plain `http://`, or `https://` with certificate checks off.
    /// Raised when the client is built, before anything is sent.
    ///
    /// [`Auth::CredSsp`]: crate::Auth::CredSsp
    #[error(
        "CredSSP delegates the password to the host, so it needs an https:// endpoint \
         whose certificate is verified (by a trusted CA or a pin): {reason}"
    )]
    CredSspNeedsVerifiedHttps {
        /// What is missing.
        reason: &'static str,
    },
    /// Authentication could not be carried out (handshake or configuration).
    #[error("authentication error: {0}")]
    Auth(String),
    /// A Kerberos logon could not use the client's credentials: an expired ticket, no
    /// ticket cache, an unknown principal, a missing keytab (see [`KerberosErrorKind`];
    /// feature `gssapi`). `message` says what to do (e.g. run `kinit`); it never holds
    /// a password or key.
    #[error("Kerberos: {message}")]
    Kerberos {
        /// What went wrong.
        kind: KerberosErrorKind,
        /// The readable explanation, with the GSSAPI library's own text.
        message: String,
    },
    /// The response body exceeded the configured cap; nothing of it is used.
    #[error("response of HTTP {status} exceeds the {limit}-byte cap: {excerpt:?}")]
    ResponseTooLarge {
        /// The HTTP status code.
        status: u16,
        /// The cap in bytes.
        limit: usize,
        /// The first bytes of the body.
        excerpt: String,
    },
    /// The server answered with something that is not SOAP (an HTML page from a proxy
    /// or captive portal, for instance) where a SOAP envelope was expected.
    #[error("the server answered HTTP {status} with {} instead of SOAP: {excerpt:?}", content_type.as_deref().map_or_else(|| "no Content-Type".to_string(), |t| format!("{t:?}")))]
    NotSoap {
        /// The HTTP status code.
        status: u16,
        /// The response's `Content-Type`, if it had one (e.g. `text/html`).
        content_type: Option<String>,
        /// The first bytes of the body, lossily decoded, whitespace collapsed.
        excerpt: String,
    },
    /// A command's output exceeded the bound of [`crate::Client::run`] or
    /// [`crate::Command::collect`]; the command was stopped (Signal terminate) and,
    /// for `run`, its shell deleted.
    #[error(
        "the command's output exceeds the {limit}-byte bound (stdout and stderr together); the command was stopped"
    )]
    OutputTooLarge {
        /// The bound in bytes ([`crate::ClientBuilder::max_output`]).
        limit: usize,
    },
    /// Connecting to the endpoint failed (name resolution, TCP connect, or the connect
    /// timeout: `source` is the [`std::io::Error`], kind `TimedOut` for the timeout). No
    /// request reached the server.
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        /// host:port.
        endpoint: String,
        /// The I/O error of the resolver or the TCP connect.
        #[source]
        source: std::io::Error,
    },
    /// A proxy ([`crate::Proxy`]) did not open the way to the endpoint: it is
    /// unreachable, it refused the tunnel (an HTTP `CONNECT` answered 403 or 407, a
    /// SOCKS5 refusal or rejected credentials), or the connection to it and its
    /// handshake did not finish within the connect timeout (`source` is then an
    /// [`std::io::Error`] of kind `TimedOut`). No request reached the server. The proxy's
    /// credentials are never part of it.
    #[error("proxy {proxy}: {message}")]
    Proxy {
        /// The proxy's host:port.
        proxy: String,
        /// What failed, with what the proxy answered.
        message: String,
        /// The underlying error: the [`std::io::Error`] of the connection to the proxy
        /// (or the timeout), or the handshake's error; none when the proxy answered a
        /// `CONNECT` with a refusal (its status line is in `message`).
        #[source]
        source: Option<BoxError>,
    },
    /// TLS failed: the handshake (including certificate verification; `source` is then the
    /// [`std::io::Error`] that wraps rustls' error) or the TLS configuration.
    #[error("TLS error: {message}")]
    Tls {
        /// What failed.
        message: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// Certificate pins are set ([`crate::ClientBuilder::pin_sha256`]) and the server's
    /// certificate matches none of them: the TLS handshake was refused and no request
    /// was sent. `presented` is the fingerprint of the certificate the server showed:
    /// pin it only after checking it against the host's own certificate.
    #[error(
        "TLS: the certificate of {endpoint} matches no pinned SHA-256 fingerprint; it presented {presented}"
    )]
    PinMismatch {
        /// host:port.
        endpoint: String,
        /// The SHA-256 fingerprint of the presented end-entity certificate, `AB:CD:...`.
        presented: String,
    },
    /// The connection failed before the request was sent, or during an authentication
    /// handshake (closed, reset, malformed HTTP). The request itself did not reach the
    /// server.
    #[error("connection error: {source}")]
    Connection {
        /// The underlying error (hyper's or the socket's).
        #[source]
        source: BoxError,
    },
    /// The connection failed after the request was sent (or while it was being sent) and
    /// before its whole response arrived: **the server may have carried the request out**.
    ///
    /// Requests that are safe to repeat (Identify, WS-Transfer Get, the config Get) are
    /// sent once more on a fresh connection before this error is reported; others
    /// (Create, Command, Send, Receive, Signal, Invoke, Put, Delete, Enumerate, Pull,
    /// Release) are never re-sent, because running them twice can harm the host or lose
    /// output.
    #[error(
        "connection lost after the request was sent; the server may have carried it out: {source}"
    )]
    ResponseLost {
        /// The underlying error (hyper's or the socket's).
        #[source]
        source: BoxError,
    },
    /// The connection failed (or the HTTP timeout passed) after the credentials' proof
    /// was sent (an NTLM AUTHENTICATE, also inside SPNEGO or CredSSP), before the
    /// server's verdict on it came back. The request itself was not sent. Not retryable:
    /// each retry would be another logon the domain controller judges, and a wrong
    /// password then counts once per retry towards the account's lockout; the calls that
    /// were waiting for this logon fail with it too. A later call tries again.
    #[error(
        "the server's verdict on the logon was lost (the connection failed after the credentials were sent): {source}; not retried, so that a wrong password is not tried again"
    )]
    LogonOutcomeUnknown {
        /// What failed (the connection's error, or the HTTP timeout).
        #[source]
        source: BoxError,
    },
    /// The host refused a message sent in clear text on a connection authenticated with
    /// NTLM, Kerberos or CredSSP over plain `http://` (an empty HTTP 500, as Windows
    /// answers when its `Service/AllowUnencrypted` is false, the default). Nothing was
    /// carried out. Seal the messages (`Encryption::Auto`, the default, or `Always`) or
    /// use `https://`.
    #[error(
        "the host refused a message sent in clear text over http:// (HTTP 500 with no body: its AllowUnencrypted is false); seal messages (Encryption::Auto, the default) or use https://"
    )]
    UnencryptedRefused,
    /// The server answered, but its answer failed the message security check: a sealed
    /// response (NTLM, Kerberos, SPNEGO or CredSSP message encryption, [MS-WSMV] 2.2.9.1)
    /// whose signature or length did not verify or that did not decrypt, or a clear-text
    /// answer to an encrypted request. Nothing of the answer is used. **The server may
    /// have carried the request out**, as with [`Error::ResponseLost`]; the request is not
    /// sent again. The connection and its security context are dropped: the next request
    /// authenticates a new one.
    ///
    /// A shell's Create answered this way leaves the shell on the host until its idle
    /// timeout (its ShellId was in the answer).
    #[error(
        "the response failed its message security check and was not used; the server may have carried the request out: {source}"
    )]
    ResponseIntegrity {
        /// What failed: the security context's verification or decryption error.
        #[source]
        source: BoxError,
    },
    /// One HTTP request took longer than the HTTP timeout (the time spent waiting for a
    /// free channel does not count). The server may still carry the request out.
    #[error("HTTP request timed out after {0:?}")]
    HttpTimeout(std::time::Duration),
    /// The response is not a WS-Management message this client understands.
    #[error("invalid response: {0}")]
    Parse(#[from] ParseError),
    /// An instance did not fit the caller's type.
    #[error(transparent)]
    Deserialize(#[from] DeError),
    /// The operation was cancelled before it completed.
    #[error("operation cancelled ({reason})")]
    Cancelled {
        /// Why.
        reason: CancelReason,
    },
    /// A request that may already have reached the server was given up on: an Invoke
    /// (the provider may still complete it), a command's start (the command may have
    /// begun before the Signal terminate sent for it), a Send of stdin (the chunk may
    /// have been written). [`Error::may_have_executed`] is true.
    #[error("request abandoned ({reason}); the server may still complete it")]
    Abandoned {
        /// Why.
        reason: CancelReason,
    },
    /// The client configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A command argument cannot be passed as exactly one argument (see
    /// [`crate::CommandBuilder::arg`]); nothing was sent. The value itself is not shown:
    /// it may be a secret.
    #[error("argument #{} after the command cannot be passed as one argument: {reason}", index + 1)]
    InvalidArgument {
        /// The argument's position among the builder's arguments, from 0 for the first
        /// after the command (the message counts from 1: "argument #1").
        index: usize,
        /// Why, and what to do instead.
        reason: &'static str,
    },
    /// A name the caller gave that would become an XML element name (an instance's class
    /// or property name, an embedded instance's property name, an Invoke method name) is
    /// not an XML `NCName` ([`crate::InvalidName`]); nothing was sent. The error
    /// names it and what it is for.
    #[error(transparent)]
    InvalidName(#[from] crate::soap::cim::InvalidName),
    /// The operation is not valid in the object's current state.
    #[error("invalid state: {0}")]
    State(String),
    /// The command's shell was disconnected ([`crate::Shell::disconnect`]): this stream
    /// ends after every chunk the server had sent, no Signal went out, and the command
    /// goes on running on the server. Read the rest after connecting to the shell
    /// ([`crate::ShellBuilder::connect`] or [`crate::DisconnectedShell::reconnect`]) with
    /// [`crate::Shell::attach_command`].
    #[error(
        "shell {shell_id} was disconnected; command {command_id} goes on running on the server"
    )]
    Disconnected {
        /// The ShellId.
        shell_id: String,
        /// The CommandId.
        command_id: String,
    },
    /// A PowerShell Remoting message or object could not be read or written ([MS-PSRP]:
    /// fragments, message headers, CLIXML, serde); the inner error is
    /// [`psrp::PsrpError`](crate::psrp::PsrpError).
    #[error("PowerShell Remoting: {0}")]
    Psrp(#[from] crate::soap::psrp::Error),
    /// The runspace pool did not open, or broke: the server reported it `state`
    /// (`Broken`, `Closed`), with the error record saying why when it sent one.
    #[error("the runspace pool is {state}{}", error.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    RunspacePoolBroken {
        /// The RUNSPACEPOOL_STATE the server reported.
        state: String,
        /// Its `ExceptionAsErrorRecord`.
        error: Option<Box<crate::soap::psrp::messages::ErrorRecord>>,
    },
    /// The pipeline failed with a terminating error (a `throw`, a parse error, a command
    /// that does not exist): PIPELINE_STATE Failed.
    #[error("the pipeline failed: {error}")]
    PipelineFailed {
        /// The terminating error.
        error: Box<crate::soap::psrp::messages::ErrorRecord>,
    },
    /// The server reported the pipeline Stopped without this client stopping it.
    #[error("the pipeline was stopped on the server")]
    PipelineStopped,
    /// A file transfer ([`crate::Client::copy`], [`crate::Client::fetch`]) failed on a
    /// path: `kind` says why.
    #[error("{kind}: {path}{}", if message.is_empty() { String::new() } else { format!(" ({message})") })]
    Transfer {
        /// Why.
        kind: TransferErrorKind,
        /// The local or remote path concerned.
        path: String,
        /// What the host (or the local file system) said.
        message: String,
    },
    /// A transferred file's SHA-256 differs between the sender and the receiver: the
    /// file was not put in place (a previous version is kept).
    #[error("SHA-256 mismatch for {path}: the sender had {expected}, the receiver {actual}")]
    HashMismatch {
        /// The destination path.
        path: String,
        /// The sender's hash (lowercase hex).
        expected: String,
        /// The receiver's hash (lowercase hex; empty when the host did not say).
        actual: String,
    },
    /// A script too long for [`crate::Client::run_ps`]: its `-EncodedCommand` would
    /// make a command line longer than Windows starts a process with (32,767
    /// characters with the terminating NUL). Nothing was sent. Run it in a PowerShell
    /// Remoting pipeline, which takes scripts of any length.
    #[error(
        "the script is too long for run_ps ({length} UTF-16 code units, at most {max}); \
         run it in a PowerShell Remoting pipeline: client.runspace_pool().open() then \
         pool.pipeline().script(..)"
    )]
    ScriptTooLong {
        /// The script's length in UTF-16 code units (a character outside the Basic
        /// Multilingual Plane counts 2).
        length: usize,
        /// The longest script `run_ps` can send, in the same units.
        max: usize,
    },
    /// Text given for a request holds a character XML 1.0 cannot carry (NUL, the other
    /// control characters but tab, CR and LF, U+FFFE, U+FFFF): a selector, option or
    /// resource URI, a property value of Put, Create or Invoke, a WQL filter, a command
    /// line or a raw argument. Nothing was sent. The error ([`crate::InvalidText`])
    /// names what and which, the character and its position, never the text itself.
    #[error(transparent)]
    InvalidText(#[from] crate::soap::envelope::InvalidText),
}

/// What kind of file-transfer failure an [`Error::Transfer`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferErrorKind {
    /// The remote file or directory does not exist (or the target's directory).
    RemoteNotFound,
    /// The remote path is a directory where a file was expected.
    RemoteIsDirectory,
    /// The remote path is a file where a directory was expected.
    RemoteNotDirectory,
    /// Access denied, or a read-only target.
    AccessDenied,
    /// The target exists and overwriting was not allowed.
    AlreadyExists,
    /// The local source does not exist.
    LocalNotFound,
    /// The local source is a directory and the transfer is not recursive.
    LocalIsDirectory,
    /// A UNC or device path (`\\server\share`, `\\.\`, `\\?\`) that the caller did
    /// not allow, an empty remote path, or a path the host sent that would leave the
    /// destination directory.
    PathRefused,
    /// Another I/O error (local, or on the host).
    Io,
    /// A name Windows cannot hold, refused before anything is sent (a local name a
    /// copy would give a remote file, or a name in a remote path): not valid Unicode, a
    /// character Windows forbids in file names (`<>:"/\|?*`, U+0000–U+001F; a `:`
    /// only as a drive's), a reserved device name (`CON`, `NUL.txt`, `COM1`, ...), or a
    /// trailing dot or space (Windows drops them). The host's scripts refuse the same
    /// names after expanding variables.
    InvalidName,
    /// Two local names of a recursive copy that are one name on Windows (they differ
    /// only in case, compared as NTFS does): one file would overwrite the other, so the
    /// copy is refused before anything is sent. The message names both paths.
    NameCollision,
}

impl std::fmt::Display for TransferErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TransferErrorKind::RemoteNotFound => "remote path not found",
            TransferErrorKind::RemoteIsDirectory => "remote path is a directory",
            TransferErrorKind::RemoteNotDirectory => "remote path is not a directory",
            TransferErrorKind::AccessDenied => "access denied",
            TransferErrorKind::AlreadyExists => "target exists",
            TransferErrorKind::LocalNotFound => "local path not found",
            TransferErrorKind::LocalIsDirectory => "local path is a directory (use recursive)",
            TransferErrorKind::PathRefused => "path refused",
            TransferErrorKind::Io => "I/O error",
            TransferErrorKind::InvalidName => "not a valid Windows file name",
            TransferErrorKind::NameCollision => "names that are one name on Windows",
        })
    }
}

/// What kind of Kerberos credential failure an [`Error::Kerberos`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KerberosErrorKind {
    /// The ticket-granting ticket in the cache has expired: run `kinit` again.
    TicketExpired,
    /// There is no ticket cache (or it holds no tickets): run `kinit`, set
    /// `KRB5CCNAME`, or use a keytab.
    NoCredentialCache,
    /// The client principal is unknown: not in the ticket cache, not in the keytab, or
    /// not known to the KDC.
    UnknownPrincipal,
    /// The KDC does not know the service principal (`HTTP/host`): the host name, the
    /// SPN override or DNS canonicalisation is wrong.
    UnknownService,
    /// The keytab file does not exist.
    KeytabMissing,
    /// The KDC refused the credentials (a wrong key, a revoked or expired account).
    Refused,
    /// No KDC of the realm could be reached: no connection, or no answer in time (the
    /// password path gives the KDC 10 s to accept and 10 s per read). Nothing was sent
    /// to the WinRM server. [`Error::is_auth`] is true; [`Error::is_retryable`] and
    /// [`Error::is_timeout`] are false: the password path remembers the unreachable KDC
    /// for a minute per client, its Kerberos logons failing at once meanwhile (and
    /// [`Auth::spnego`](crate::Auth::spnego) logons offering NTLM alone), so a retry
    /// within that minute gains nothing.
    KdcUnreachable,
    /// Anything else the GSSAPI library reported.
    Other,
}

impl Error {
    /// The kind of an [`Error::Transfer`].
    pub fn transfer_kind(&self) -> Option<TransferErrorKind> {
        match self {
            Error::Transfer { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The kind of an [`Error::Kerberos`].
    pub fn kerberos_kind(&self) -> Option<KerberosErrorKind> {
        match self {
            Error::Kerberos { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// True when a Kerberos ticket has expired ([`KerberosErrorKind::TicketExpired`]):
    /// run `kinit` again.
    pub fn is_ticket_expired(&self) -> bool {
        self.kerberos_kind() == Some(KerberosErrorKind::TicketExpired)
    }

    /// The server's fault, if this is one.
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            Error::Fault(f) => Some(f),
            _ => None,
        }
    }

    /// True for [`Error::Cancelled`] and [`Error::Abandoned`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Cancelled { .. } | Error::Abandoned { .. })
    }

    /// True for HTTP timeouts, connect timeouts, operation timeouts reported by the
    /// server, and cancellations because a deadline passed.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::HttpTimeout(_) => true,
            Error::Connect { source, .. } => source.kind() == std::io::ErrorKind::TimedOut,
            Error::Proxy { .. } => {
                self.proxy_io_error().map(std::io::Error::kind)
                    == Some(std::io::ErrorKind::TimedOut)
            }
            Error::Fault(f) => f.is_timed_out(),
            Error::Cancelled { reason } | Error::Abandoned { reason } => {
                *reason == CancelReason::Timeout
            }
            _ => false,
        }
    }

    /// True when the error is a quota fault: retry later with backoff.
    pub fn is_quota(&self) -> bool {
        self.fault().is_some_and(Fault::is_quota)
    }

    /// True when no connection to the endpoint could be made: [`Error::Connect`] (name
    /// resolution, TCP connect, connect timeout), [`Error::Tls`] (handshake, certificate)
    /// [`Error::PinMismatch`] and [`Error::Proxy`].
    pub fn is_connect(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::Tls { .. }
                | Error::PinMismatch { .. }
                | Error::Proxy { .. }
        )
    }

    /// True for [`Error::PinMismatch`]: the server's certificate is not pinned.
    pub fn is_pin_mismatch(&self) -> bool {
        matches!(self, Error::PinMismatch { .. })
    }

    /// True when the TLS handshake failed because the server's certificate was issued
    /// by a CA the client does not trust (rustls' `UnknownIssuer`): add the CA, use the
    /// operating system's trust store, or pin the certificate.
    pub fn is_unknown_ca(&self) -> bool {
        match self {
            Error::Tls {
                source: Some(source),
                ..
            } => crate::transport::tls_unknown_issuer(source.as_ref()),
            _ => false,
        }
    }

    /// True for [`Error::Proxy`]: the proxy was unreachable, refused the tunnel, or timed
    /// out. No request reached the server.
    pub fn is_proxy(&self) -> bool {
        matches!(self, Error::Proxy { .. })
    }

    /// The I/O error of an [`Error::Proxy`] that failed on the connection to the proxy
    /// (unreachable, reset, timed out) rather than on the proxy's refusal.
    fn proxy_io_error(&self) -> Option<&std::io::Error> {
        match self {
            Error::Proxy {
                source: Some(s), ..
            } => s.downcast_ref::<std::io::Error>(),
            _ => None,
        }
    }

    /// True when the request certainly did not take effect on the server and the same
    /// call may succeed later: a failed connect ([`Error::Connect`], not TLS: a refused
    /// certificate stays refused; an [`Error::Proxy`] when the connection to the proxy
    /// failed or timed out, not when the proxy refused), a connection that failed before the request was sent
    /// ([`Error::Connection`]), and the quota faults 2150859173 / 2150859174 (the server
    /// refused the request; retry with backoff). [`Error::ResponseLost`] and
    /// [`Error::HttpTimeout`] are not retryable in general: the server may have carried
    /// the request out. [`crate::RetryPolicy`] retries these cases for you.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Connection { .. } => true,
            Error::Proxy { .. } => self.proxy_io_error().is_some(),
            Error::Fault(f) => f.is_quota(),
            _ => false,
        }
    }

    /// True when the server may have carried the request out although the call failed:
    /// [`Error::ResponseLost`], [`Error::ResponseIntegrity`], [`Error::HttpTimeout`],
    /// [`Error::Abandoned`]; an answer that came but could not be read ([`Error::Parse`],
    /// [`Error::Deserialize`], and [`Error::NotSoap`] or [`Error::ResponseTooLarge`] with
    /// HTTP 200: something accepted the request); and a gateway's HTTP 502 or 504
    /// ([`Error::Http`]: the proxy may have passed the request on before the server's
    /// answer failed it). False for an answer that says the request was not carried
    /// out (a SOAP fault, a 401, a refused connection). A caller that would run a write
    /// again on failure must not when this is true.
    pub fn may_have_executed(&self) -> bool {
        match self {
            Error::ResponseLost { .. }
            | Error::ResponseIntegrity { .. }
            | Error::HttpTimeout(_)
            | Error::Abandoned { .. }
            | Error::Parse(_)
            | Error::Deserialize(_) => true,
            Error::NotSoap { status, .. } | Error::ResponseTooLarge { status, .. } => {
                *status == 200
            }
            Error::Http { status, .. } => matches!(status, 502 | 504),
            _ => false,
        }
    }

    pub(crate) fn connection(source: impl Into<BoxError>) -> Error {
        Error::Connection {
            source: source.into(),
        }
    }

    pub(crate) fn response_lost(source: impl Into<BoxError>) -> Error {
        Error::ResponseLost {
            source: source.into(),
        }
    }

    /// [`Error::ResponseIntegrity`] for the error of opening a sealed answer (the
    /// message of an [`Error::Auth`], any other error as it is).
    pub(crate) fn response_integrity(e: Error) -> Error {
        Error::ResponseIntegrity {
            source: match e {
                Error::Auth(message) => message.into(),
                other => Box::new(other),
            },
        }
    }

    pub(crate) fn tls(message: impl Into<String>, source: Option<BoxError>) -> Error {
        Error::Tls {
            message: message.into(),
            source,
        }
    }

    /// True for authentication failures (including [`Error::Kerberos`]).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            Error::Unauthorized { .. }
                | Error::Auth(_)
                | Error::ClientCertificateRefused { .. }
                | Error::Kerberos { .. }
        )
    }
}

impl From<Fault> for Error {
    fn from(f: Fault) -> Self {
        Error::Fault(Box::new(f))
    }
}

impl From<wsman_protocol::security::SecurityError> for Error {
    fn from(e: wsman_protocol::security::SecurityError) -> Self {
        use wsman_protocol::security::SecurityError;
        match e {
            SecurityError::InvalidName(m) => Error::Config(m),
            SecurityError::Failed(m) => Error::Auth(m),
            other => Error::Auth(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_send_sync_static() {
        fn check<T: Send + Sync + std::error::Error + 'static>() {}
        check::<Error>();
    }
}
