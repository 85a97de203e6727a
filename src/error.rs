//! The crate's one public error type.

use crate::operation::CancelReason;
use crate::soap::de::DeError;
use crate::soap::{Fault, ParseError};

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
    /// The server refused the credentials (HTTP 401).
    #[error("authentication failed (HTTP 401); the server offers: {}", if offered.is_empty() { "nothing".to_string() } else { offered.join(", ") })]
    Unauthorized {
        /// The schemes of the server's `WWW-Authenticate` headers.
        offered: Vec<String>,
    },
    /// Authentication could not be carried out (handshake or configuration).
    #[error("authentication error: {0}")]
    Auth(String),
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
    /// Connecting to the endpoint failed.
    #[error("cannot connect to {endpoint}: {message}")]
    Connect {
        /// host:port.
        endpoint: String,
        /// What failed.
        message: String,
    },
    /// TLS failed (including certificate verification).
    #[error("TLS error: {0}")]
    Tls(String),
    /// The connection failed during a request (closed, reset, malformed HTTP).
    #[error("connection error: {0}")]
    Connection(String),
    /// One HTTP request took longer than the HTTP timeout.
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
    /// An Invoke (or other non-cancellable request) was abandoned; the provider may still
    /// complete it on the server.
    #[error("request abandoned ({reason}); the server may still complete it")]
    Abandoned {
        /// Why.
        reason: CancelReason,
    },
    /// The client configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The operation is not valid in the object's current state.
    #[error("invalid state: {0}")]
    State(String),
}

impl Error {
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

    /// True for HTTP timeouts, operation timeouts reported by the server, and
    /// cancellations because a deadline passed.
    pub fn is_timeout(&self) -> bool {
        match self {
            Error::HttpTimeout(_) => true,
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

    /// True for authentication failures.
    pub fn is_auth(&self) -> bool {
        matches!(self, Error::Unauthorized { .. } | Error::Auth(_))
    }
}

impl From<Fault> for Error {
    fn from(f: Fault) -> Self {
        Error::Fault(Box::new(f))
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
