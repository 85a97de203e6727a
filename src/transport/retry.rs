//! The opt-in retry policy: quota faults and failures that provably left nothing done on
//! the server are tried again with exponential backoff and jitter, up to a cap.

use std::time::Duration;

use super::RequestKind;
use crate::error::Error;

/// Which failed requests the client sends again by itself, and how patiently
/// ([`crate::ClientBuilder::retry_policy`]; none by default).
///
/// Whatever the policy, a request that may have reached the server is never sent again
/// unless repeating it is harmless. Retried are:
/// - **quota faults** 2150859173 (MaxShellsPerUser and similar) and 2150859174
///   (MaxConcurrentOperationsPerUser): the server refused the request, so it did
///   nothing; cancelled operations keep counting against these quotas for a while, so
///   waiting helps;
/// - **connection failures before the request left**: [`Error::Connect`] (connection
///   refused, name resolution, connect timeout; not TLS: a refused certificate stays
///   refused), [`Error::Connection`], and an [`Error::Proxy`] whose proxy could not be
///   reached (not one that refused the tunnel), for every kind of request;
/// - **lost responses and HTTP timeouts of reads** (Identify, WS-Transfer Get, the
///   config Get), which are safe to repeat. (Without a policy a read whose response was
///   lost is still sent once more on a fresh connection.)
///
/// The wait before attempt *n* + 1 is a random duration between half and all of
/// `initial_backoff * 2^(n-1)`, capped at `max_backoff`. The wait is cancelled with the
/// operation (its token, deadline, or the client's token).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    pub(crate) max_attempts: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
    pub(crate) quota: bool,
    pub(crate) connect: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::new()
    }
}

impl RetryPolicy {
    /// Up to 4 attempts in all, backoff from 200 ms up to 5 s, quota faults and
    /// connection failures both retried.
    pub fn new() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            quota: true,
            connect: true,
        }
    }

    /// Attempts in all, the first included (at least 1).
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The wait before the second attempt (it doubles for each further one).
    #[must_use]
    pub fn initial_backoff(mut self, d: Duration) -> Self {
        self.initial_backoff = d;
        self
    }

    /// The longest wait between two attempts.
    #[must_use]
    pub fn max_backoff(mut self, d: Duration) -> Self {
        self.max_backoff = d;
        self
    }

    /// Whether quota faults (2150859173, 2150859174) are retried (default true).
    #[must_use]
    pub fn retry_quota_faults(mut self, yes: bool) -> Self {
        self.quota = yes;
        self
    }

    /// Whether connection failures are retried (default true).
    #[must_use]
    pub fn retry_connection_failures(mut self, yes: bool) -> Self {
        self.connect = yes;
        self
    }

    /// Whether `error` of a `kind` request may be retried under this policy.
    pub(crate) fn allows(&self, kind: RequestKind, error: &Error) -> bool {
        match error {
            Error::Connect { .. } | Error::Connection { .. } => self.connect,
            Error::Proxy { .. } => self.connect && error.is_retryable(),
            Error::ResponseLost { .. } | Error::HttpTimeout(_) => {
                self.connect && kind == RequestKind::Read
            }
            Error::Fault(f) => self.quota && f.is_quota(),
            _ => false,
        }
    }

    /// The wait after the `attempt`-th failure (1-based), with jitter.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        let full = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        // Between half and all of it; uuid's v4 generator is the random source at hand.
        let r = uuid::Uuid::new_v4().as_u128() as u64;
        let frac = (r % 1_000) as f64 / 1_000.0;
        full.mul_f64(0.5 + frac / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::new()
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_millis(700));
        for _ in 0..50 {
            let b1 = p.backoff(1);
            assert!((50..=100).contains(&b1.as_millis()), "{b1:?}");
            let b3 = p.backoff(3);
            assert!((200..=400).contains(&b3.as_millis()), "{b3:?}");
            let b9 = p.backoff(9);
            assert!((350..=700).contains(&b9.as_millis()), "{b9:?}");
        }
    }

    #[test]
    fn only_what_left_nothing_done_is_retried() {
        let p = RetryPolicy::new();
        let lost = || Error::response_lost(std::io::Error::other("reset"));
        assert!(p.allows(RequestKind::Read, &lost()));
        assert!(!p.allows(RequestKind::Write, &lost()));
        assert!(!p.allows(RequestKind::LongPoll, &lost()));
        let timeout = Error::HttpTimeout(Duration::from_secs(1));
        assert!(p.allows(RequestKind::Read, &timeout));
        assert!(!p.allows(RequestKind::Write, &timeout));
        let refused = Error::Connect {
            endpoint: "h:1".into(),
            source: std::io::ErrorKind::ConnectionRefused.into(),
        };
        assert!(p.allows(RequestKind::Write, &refused));
        assert!(
            !p.clone()
                .retry_connection_failures(false)
                .allows(RequestKind::Write, &refused)
        );
        assert!(!p.allows(RequestKind::Write, &Error::tls("bad certificate", None)));
        assert!(!p.allows(RequestKind::Write, &Error::Auth("no".into())));
        let proxy = |source: Option<crate::BoxError>| Error::Proxy {
            proxy: "p:3128".into(),
            message: "m".into(),
            source,
        };
        let unreachable = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(p.allows(RequestKind::Write, &proxy(Some(Box::new(unreachable)))));
        assert!(
            !p.allows(RequestKind::Write, &proxy(None)),
            "a 407 stays a 407"
        );
    }
}
