//! The logon gate of one client: one wrong password is one failed logon, not one per
//! connection (an Active Directory lockout threshold is commonly 5-10 failed logons,
//! and a fan-out of 32 calls opens 32 connections).
//!
//! - Until a logon has succeeded, only one logon runs at a time: the first call that
//!   needs credentials carries them; every other such call waits for its outcome.
//! - An attempt whose verdict was lost (the connection failed after the NTLM
//!   AUTHENTICATE left, [`Error::LogonOutcomeUnknown`]) fails the calls waiting for it
//!   too, as one that could not reach the host does: they would each send the proof
//!   again, one more logon each for the domain controller to judge.
//! - A success opens the gate for good: new connections then authenticate in
//!   parallel. A transient failure (a timeout of the server, a lost connection, a
//!   cancelled call) decides nothing: the next waiting call makes the next attempt.
//! - An attempt that could not reach the host ([`Error::Connect`]: name resolution,
//!   connection refused, the connect timeout; a TLS handshake that timed out; a proxy
//!   that could not be reached), or a KDC (a Kerberos logon's
//!   [`KerberosErrorKind::KdcUnreachable`]), sent nothing to the server and tells the
//!   calls waiting for it all they would learn: they fail at once with an
//!   [`Error::Connect`] (or [`Error::Proxy`], [`Error::Kerberos`]) saying so, instead
//!   of each making an attempt in turn (32 calls to a dead host would otherwise take 32
//!   connect timeouts). A call that comes later makes a new attempt: the host may be
//!   back.
//! - Credentials refused by the server (a 401 to Basic credentials, to an NTLM
//!   AUTHENTICATE or to a Kerberos AP-REQ) or by the KDC (a wrong password, an unknown,
//!   disabled, locked-out or expired account) close the gate for good: every waiting
//!   and every later call fails at once with [`Error::Auth`], and this client sends no
//!   further logon. A client with other credentials is a new client.
//!
//! - Handshakes (NTLM, Kerberos) are gated once more, on their own: at most one
//!   handshake whose outcome is unknown runs at a time, and the handshakes that wait
//!   for it all go, in parallel, as soon as one succeeds. So a fan-out after a success
//!   costs one handshake round trip before the rest run in parallel, and a password
//!   changed on the server in mid-session costs one failed logon, not one per
//!   connection that opens meanwhile.
//!
//! A refusal after a success counts the same as before one: when a connection has to
//! authenticate again (a new connection, or a 401 in mid-session that asks for a new
//! handshake) and that logon is refused, the password was most likely changed or the
//! account locked or disabled on the server side. Retrying the old password from every
//! connection is exactly what locks an account, so the client stops. The cost: a
//! refusal that a server meant as transient (an NTLM pass-through that could not reach
//! a domain controller answers 401 too) also stops the client; building a new client
//! is the way on, and the error says so. Basic has no handshake: its credentials ride
//! on every request, so after a success the requests in flight when the server starts
//! refusing them are each a failed logon (at most one per channel); later ones are not
//! sent.

use std::fmt;
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, KerberosErrorKind, Result};

#[derive(Debug, Clone)]
enum Phase {
    /// No logon has succeeded yet: one attempt at a time.
    Pending,
    /// A logon succeeded: the gate is open.
    Succeeded,
    /// Credentials refused: why (no secrets: the text of an error).
    Refused(Arc<str>),
}

/// The logon state shared by every channel of one client.
///
/// The phase and the count sit under a plain mutex, and a change wakes every waiter
/// through one [`Notify`] (a waiter registers before it reads the state, so none misses
/// a change): every client has a gate, and two `watch` channels cost about 700 bytes
/// per client (a fan-out holds one client per host in flight).
pub(crate) struct Logon {
    state: Mutex<State>,
    /// The phase's kind ([`PENDING`], [`SUCCEEDED`], [`REFUSED`]), written under the
    /// lock with the phase: what every request asks (open yet?) without the lock.
    kind: AtomicU8,
    /// Woken (all waiters) when the phase or the count of successes changes.
    changed: Notify,
    /// One permit: the logon attempt running while the phase is [`Phase::Pending`].
    attempt: Arc<Semaphore>,
    /// One permit: the handshake whose outcome is unknown.
    probe: Arc<Semaphore>,
    /// Handshakes in [`Logon::before_handshake`]: the listeners of
    /// [`State::successes`].
    waiting: AtomicUsize,
    /// The tickets of the client's one ticket-granting exchange.
    #[cfg(feature = "kerberos")]
    pub(crate) tickets: super::kerberos::TicketCache,
}

const PENDING: u8 = 0;
const SUCCEEDED: u8 = 1;
const REFUSED: u8 = 2;

/// What [`Logon::changed`] announces.
struct State {
    phase: Phase,
    /// Counts successful logons while handshakes wait for the probe: they go when it
    /// moves.
    successes: u64,
    /// Counts the logon attempts that ended (see [`Logon::attempt_ended`]).
    ended: u64,
    /// The last attempt that could not reach the host: the value of [`State::ended`]
    /// it ended at, and why. Calls that were waiting then fail with it.
    unreachable: Option<(u64, Arc<Unreachable>)>,
}

/// Why a logon attempt could not reach the host (no secrets: the text of an error).
#[derive(Debug)]
enum Unreachable {
    /// The host: its host:port, the I/O error's kind, the attempt's error.
    Host {
        endpoint: String,
        kind: io::ErrorKind,
        cause: String,
    },
    /// The proxy: its host:port, the I/O error's kind, the attempt's error.
    Proxy {
        proxy: String,
        kind: io::ErrorKind,
        cause: String,
    },
    /// The KDC of a Kerberos logon: the attempt's error message.
    Kdc { cause: String },
    /// The server's verdict on the credentials' proof was lost
    /// ([`Error::LogonOutcomeUnknown`]): the waiting calls do not each send the proof
    /// again (a wrong password would count once per call towards a lockout).
    Verdict { cause: String },
}

impl Unreachable {
    /// How `error`, the error of an attempt on `endpoint` (host:port), says that nothing
    /// reached the host; `None` when something may have.
    fn of(error: &Error, endpoint: &str) -> Option<Unreachable> {
        let io_source =
            |s: &crate::error::BoxError| s.downcast_ref::<io::Error>().map(io::Error::kind);
        match error {
            Error::Connect { endpoint, source } => Some(Unreachable::Host {
                endpoint: endpoint.clone(),
                kind: source.kind(),
                cause: error.to_string(),
            }),
            Error::Tls {
                source: Some(source),
                ..
            } if io_source(source) == Some(io::ErrorKind::TimedOut) => Some(Unreachable::Host {
                endpoint: endpoint.to_string(),
                kind: io::ErrorKind::TimedOut,
                cause: error.to_string(),
            }),
            Error::Proxy {
                proxy,
                source: Some(source),
                ..
            } => io_source(source).map(|kind| Unreachable::Proxy {
                proxy: proxy.clone(),
                kind,
                cause: error.to_string(),
            }),
            Error::Kerberos {
                kind: KerberosErrorKind::KdcUnreachable,
                message,
            } => Some(Unreachable::Kdc {
                cause: message.clone(),
            }),
            Error::LogonOutcomeUnknown { source } => Some(Unreachable::Verdict {
                cause: source.to_string(),
            }),
            _ => None,
        }
    }

    /// The error of a call that waited for the attempt: of the same kind as the
    /// attempt's ([`Error::is_connect`], [`Error::is_retryable`], [`Error::is_timeout`]
    /// as it).
    fn error(&self) -> Error {
        match self {
            Unreachable::Host {
                endpoint,
                kind,
                cause,
            } => Error::Connect {
                endpoint: endpoint.clone(),
                source: io::Error::new(
                    *kind,
                    format!(
                        "the logon attempt this call waited for could not reach {endpoint} \
                         ({cause}); this call sent nothing"
                    ),
                ),
            },
            Unreachable::Proxy { proxy, kind, cause } => Error::Proxy {
                proxy: proxy.clone(),
                message: format!(
                    "the logon attempt this call waited for could not reach the proxy \
                     ({cause}); this call sent nothing"
                ),
                source: Some(Box::new(io::Error::new(*kind, cause.clone()))),
            },
            Unreachable::Verdict { cause } => Error::LogonOutcomeUnknown {
                source: format!(
                    "the logon attempt this call waited for lost the server's verdict \
                     ({cause}); this call sent nothing"
                )
                .into(),
            },
            Unreachable::Kdc { cause } => Error::Kerberos {
                kind: KerberosErrorKind::KdcUnreachable,
                message: format!(
                    "the logon attempt this call waited for could not reach the KDC \
                     ({cause}); this call sent nothing"
                ),
            },
        }
    }
}

impl fmt::Debug for Logon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logon")
            .field("phase", &self.state().phase)
            .finish_non_exhaustive()
    }
}

/// The right to make the one logon attempt; dropping it lets the next call try.
#[derive(Debug)]
pub(crate) struct Attempt {
    _permit: OwnedSemaphorePermit,
}

/// One handshake counted in [`Logon::waiting`] while it waits (however it ends).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn refused_error(cause: &str) -> Error {
    Error::Auth(format!(
        "the credentials were refused ({cause}); no further logon is attempted by this \
         client (build a new client to try other credentials)"
    ))
}

impl Logon {
    pub(crate) fn new() -> Logon {
        Logon {
            state: Mutex::new(State {
                phase: Phase::Pending,
                successes: 0,
                ended: 0,
                unreachable: None,
            }),
            kind: AtomicU8::new(PENDING),
            changed: Notify::new(),
            attempt: Arc::new(Semaphore::new(1)),
            probe: Arc::new(Semaphore::new(1)),
            waiting: AtomicUsize::new(0),
            #[cfg(feature = "kerberos")]
            tickets: super::kerberos::TicketCache::default(),
        }
    }

    /// Waits until a call that carries credentials may go: `Ok(None)` once a logon has
    /// succeeded (no gating), `Ok(Some(attempt))` when this call is the one logon
    /// attempt (hold it until the call ends, then give it to [`Logon::attempt_ended`]),
    /// an error at once when the credentials were refused, or when an attempt this call
    /// waited for could not reach the host. Cancel-safe: a waiter dropped while waiting
    /// takes nothing.
    pub(crate) async fn enter(&self) -> Result<Option<Attempt>> {
        // The usual case, once a logon has succeeded: nothing to wait for.
        if self.kind.load(Ordering::Acquire) == SUCCEEDED {
            return Ok(None);
        }
        // The attempts that end from here on are the ones this call waits for.
        let seen = self.state().ended;
        loop {
            // Registered before the phase is read: a change after the read wakes it.
            let mut changed = pin!(self.changed.notified());
            changed.as_mut().enable();
            if let Some(verdict) = self.verdict(seen) {
                return verdict;
            }
            tokio::select! {
                biased;
                () = changed => {}
                permit = Arc::clone(&self.attempt).acquire_owned() => {
                    let permit =
                        permit.map_err(|_| Error::State("transport closed".into()))?;
                    // An attempt that ends records its verdict before it lets go of
                    // the permit: whoever gets the permit next sees it.
                    return match self.verdict(seen) {
                        Some(verdict) => verdict,
                        None => Ok(Some(Attempt { _permit: permit })),
                    };
                }
            }
        }
    }

    /// What a call that started waiting when [`State::ended`] was `seen` is told without
    /// an attempt of its own: go (a success), fail (a refusal, or an attempt since then
    /// that could not reach the host), or `None`: wait for the permit.
    fn verdict(&self, seen: u64) -> Option<Result<Option<Attempt>>> {
        let s = self.state();
        match &s.phase {
            Phase::Succeeded => return Some(Ok(None)),
            Phase::Refused(cause) => return Some(Err(refused_error(cause))),
            Phase::Pending => {}
        }
        match &s.unreachable {
            Some((at, why)) if *at > seen => Some(Err(why.error())),
            _ => None,
        }
    }

    /// The logon attempt `attempt` ended (its call's outcome is `result`; an attempt
    /// dropped without this, by a cancelled call, counts as a transient failure). When
    /// it could not reach the host on `endpoint` (host:port), the calls waiting for it
    /// fail at once (see the module docs); the permit goes to the next call after that.
    pub(crate) fn attempt_ended<T>(&self, attempt: Attempt, result: &Result<T>, endpoint: &str) {
        let why = match result {
            Err(e) => Unreachable::of(e, endpoint),
            Ok(_) => None,
        };
        let wake = {
            let mut s = self.state();
            s.ended = s.ended.wrapping_add(1);
            why.map(|why| s.unreachable = Some((s.ended, Arc::new(why))))
                .is_some()
        };
        if wake {
            tracing::debug!(
                endpoint,
                "the logon attempt could not reach the host, or lost the server's verdict: \
                 the calls waiting for it fail"
            );
            self.changed.notify_waiters();
        }
        drop(attempt);
    }

    /// Waits until a handshake may start: `Ok(Some(probe))` when it is the one handshake
    /// whose outcome is unknown (hold it until the handshake ends), `Ok(None)` when a
    /// logon succeeded while it waited (the credentials are good: go in parallel), an
    /// error at once when the credentials were refused. Cancel-safe.
    pub(crate) async fn before_handshake(&self) -> Result<Option<Attempt>> {
        let _waiting = Waiting::new(&self.waiting);
        // Counted as waiting first, then the count read: a success this does not see
        // moves the count after this point, as if it had come before the wait.
        let seen = self.state().successes;
        loop {
            // Registered before the state is read: a change after the read wakes it.
            let mut changed = pin!(self.changed.notified());
            changed.as_mut().enable();
            self.check()?;
            if self.state().successes != seen {
                return Ok(None);
            }
            tokio::select! {
                biased;
                // The phase or the count moved: read them again.
                () = changed => {}
                permit = Arc::clone(&self.probe).acquire_owned() => {
                    let permit =
                        permit.map_err(|_| Error::State("transport closed".into()))?;
                    self.check()?;
                    return Ok(Some(Attempt { _permit: permit }));
                }
            }
        }
    }

    /// Fails at once when the credentials were refused: checked before every logon, so
    /// that a call that passed the gate before a refusal sends no further logon.
    pub(crate) fn check(&self) -> Result<()> {
        if self.kind.load(Ordering::Acquire) != REFUSED {
            return Ok(());
        }
        match &self.state().phase {
            Phase::Refused(cause) => Err(refused_error(cause)),
            Phase::Pending | Phase::Succeeded => Ok(()),
        }
    }

    /// A logon succeeded: waiting calls and handshakes go on in parallel. A refusal
    /// stays a refusal.
    pub(crate) fn succeeded(&self) {
        // Only handshakes waiting in `before_handshake` listen for successes, and one that
        // starts waiting later starts from the count as it is then: with none waiting, no
        // count to move and no waiters to wake (Basic calls this on every request). A
        // waiter counts itself before it subscribes, so one this does not see subscribes
        // after this point, as if the count had moved before it. So the usual case (open
        // already, no handshake waiting) has nothing to change and takes no lock.
        if self.kind.load(Ordering::Acquire) != PENDING && self.waiting.load(Ordering::SeqCst) == 0
        {
            return;
        }
        let changed = {
            let mut s = self.state();
            let counted = self.waiting.load(Ordering::SeqCst) > 0;
            if counted {
                s.successes = s.successes.wrapping_add(1);
            }
            let opened = matches!(s.phase, Phase::Pending);
            if opened {
                s.phase = Phase::Succeeded;
                self.kind.store(SUCCEEDED, Ordering::Release);
            }
            counted || opened
        };
        if changed {
            self.changed.notify_waiters();
        }
    }

    /// The credentials were refused (`cause` is the error of the refused logon): every
    /// waiting and later call fails at once.
    pub(crate) fn refused(&self, cause: &Error) {
        let cause: Arc<str> = Arc::from(cause.to_string());
        let changed = {
            let mut s = self.state();
            match s.phase {
                Phase::Refused(_) => false,
                Phase::Pending | Phase::Succeeded => {
                    s.phase = Phase::Refused(cause);
                    self.kind.store(REFUSED, Ordering::Release);
                    true
                }
            }
        };
        if changed {
            self.changed.notify_waiters();
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn one_attempt_at_a_time_until_a_verdict() {
        let logon = Arc::new(Logon::new());
        let first = logon
            .enter()
            .await
            .unwrap()
            .expect("the first call attempts");
        let waiter = tokio::spawn({
            let logon = Arc::clone(&logon);
            async move { logon.enter().await.map(|a| a.is_some()) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiter.is_finished(),
            "a second attempt while the first runs"
        );
        // A transient failure: the waiter makes the next attempt.
        drop(first);
        assert!(waiter.await.unwrap().unwrap());
    }

    #[tokio::test]
    async fn success_opens_refusal_closes() {
        let logon = Arc::new(Logon::new());
        let first = logon.enter().await.unwrap();
        let waiter = tokio::spawn({
            let logon = Arc::clone(&logon);
            async move { logon.enter().await.map(|a| a.is_some()) }
        });
        tokio::task::yield_now().await;
        logon.succeeded();
        // Released by the success, while the first attempt still holds its permit.
        assert!(!waiter.await.unwrap().unwrap());
        drop(first);
        assert!(logon.enter().await.unwrap().is_none());
        logon.refused(&Error::Unauthorized {
            offered: vec!["Negotiate".into()],
        });
        logon.succeeded(); // does not undo a refusal
        let e = logon.enter().await.unwrap_err();
        assert!(e.is_auth(), "{e:?}");
        assert!(
            e.to_string().contains("no further logon is attempted"),
            "{e}"
        );
        assert!(logon.check().is_err());
    }

    #[tokio::test]
    async fn one_handshake_of_unknown_outcome_at_a_time() {
        let logon = Arc::new(Logon::new());
        logon.succeeded();
        let probe = logon.before_handshake().await.unwrap();
        assert!(probe.is_some());
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let logon = Arc::clone(&logon);
                tokio::spawn(async move { logon.before_handshake().await.map(|p| p.is_some()) })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(waiters.iter().all(|w| !w.is_finished()));
        // The probe succeeds: every waiter goes, without a probe of its own.
        logon.succeeded();
        for w in waiters {
            assert!(!w.await.unwrap().unwrap());
        }
        drop(probe);
        // A refused probe fails the waiters at once.
        let probe = logon.before_handshake().await.unwrap();
        let waiter = tokio::spawn({
            let logon = Arc::clone(&logon);
            async move { logon.before_handshake().await.map(|p| p.is_some()) }
        });
        tokio::task::yield_now().await;
        logon.refused(&Error::Unauthorized { offered: vec![] });
        assert!(waiter.await.unwrap().unwrap_err().is_auth());
        drop(probe);
        assert!(logon.before_handshake().await.is_err());
    }

    #[tokio::test]
    async fn a_success_moves_the_count_only_for_waiting_handshakes() {
        let logon = Arc::new(Logon::new());
        logon.succeeded();
        assert_eq!(logon.state().successes, 0, "no handshake was waiting");
        let probe = logon.before_handshake().await.unwrap();
        assert_eq!(logon.waiting.load(Ordering::SeqCst), 0);
        let waiter = tokio::spawn({
            let logon = Arc::clone(&logon);
            async move { logon.before_handshake().await.map(|p| p.is_some()) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(logon.waiting.load(Ordering::SeqCst), 1);
        // A waiter dropped while it waits is no longer counted.
        waiter.abort();
        assert!(waiter.await.unwrap_err().is_cancelled());
        assert_eq!(logon.waiting.load(Ordering::SeqCst), 0);
        let waiter = tokio::spawn({
            let logon = Arc::clone(&logon);
            async move { logon.before_handshake().await.map(|p| p.is_some()) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        logon.succeeded();
        assert!(!waiter.await.unwrap().unwrap(), "released without a probe");
        assert_eq!(logon.state().successes, 1);
        assert_eq!(logon.waiting.load(Ordering::SeqCst), 0);
        drop(probe);
    }

    /// A success wakes every call waiting at the gate, and none of them becomes an
    /// attempt of its own (each registers for the wake-up before it reads the phase).
    #[tokio::test]
    async fn every_waiter_goes_on_a_success() {
        let logon = Arc::new(Logon::new());
        let first = logon.enter().await.unwrap();
        assert!(first.is_some());
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let logon = Arc::clone(&logon);
                tokio::spawn(async move { logon.enter().await.map(|a| a.is_some()) })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(waiters.iter().all(|w| !w.is_finished()));
        logon.succeeded();
        for w in waiters {
            let attempt = tokio::time::timeout(Duration::from_secs(5), w)
                .await
                .expect("woken by the success")
                .unwrap()
                .unwrap();
            assert!(!attempt, "released without an attempt of its own");
        }
        drop(first);
    }

    fn timed_out(endpoint: &str) -> Error {
        Error::Connect {
            endpoint: endpoint.into(),
            source: io::Error::new(io::ErrorKind::TimedOut, "timed out after 500ms"),
        }
    }

    /// Waiters at the gate, spawned and parked before the test goes on.
    async fn park(logon: &Arc<Logon>, n: usize) -> Vec<tokio::task::JoinHandle<Result<bool>>> {
        let w: Vec<_> = (0..n)
            .map(|_| {
                let logon = Arc::clone(logon);
                tokio::spawn(async move { logon.enter().await.map(|a| a.is_some()) })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(w.iter().all(|w| !w.is_finished()), "a waiter did not wait");
        w
    }

    /// An attempt that could not reach the host fails every call waiting for it at once,
    /// with a connect error of the same kind; a call that comes later makes a new
    /// attempt.
    #[tokio::test]
    async fn waiters_fail_at_once_when_the_attempt_could_not_reach_the_host() {
        let logon = Arc::new(Logon::new());
        let first = logon
            .enter()
            .await
            .unwrap()
            .expect("the first call attempts");
        let waiters = park(&logon, 8).await;
        logon.attempt_ended(first, &Err::<(), _>(timed_out("web01:5986")), "web01:5986");
        for w in waiters {
            let e = tokio::time::timeout(Duration::from_secs(5), w)
                .await
                .expect("failed at once")
                .unwrap()
                .unwrap_err();
            assert!(
                matches!(&e, Error::Connect { endpoint, .. } if endpoint == "web01:5986"),
                "{e:?}"
            );
            assert!(
                e.is_connect() && e.is_retryable() && e.is_timeout(),
                "{e:?}"
            );
            assert!(!e.is_auth() && !e.may_have_executed(), "{e:?}");
            let text = e.to_string();
            assert!(
                text.contains("the logon attempt this call waited for could not reach web01:5986")
                    && text.contains("timed out after 500ms"),
                "{text}"
            );
        }
        // Later: a new attempt (the host may be back), and its waiters wait for it.
        let second = logon.enter().await.unwrap().expect("a new attempt");
        let waiters = park(&logon, 2).await;
        logon.attempt_ended(second, &Ok(()), "web01:5986");
        logon.succeeded();
        for w in waiters {
            assert!(!w.await.unwrap().unwrap(), "released by the success");
        }
    }

    /// A TLS handshake that timed out and an unreachable proxy count as unreachable; a
    /// failure that may have reached the host (an HTTP timeout, a lost connection) keeps
    /// the old way: the next waiting call makes the next attempt.
    #[tokio::test]
    async fn only_an_unreachable_host_fails_the_waiters() {
        let tls = Error::Tls {
            message: "TLS handshake with h:1 timed out after 1s".into(),
            source: Some(io::Error::from(io::ErrorKind::TimedOut).into()),
        };
        let proxy = Error::Proxy {
            proxy: "proxy:3128".into(),
            message: "cannot connect".into(),
            source: Some(io::Error::from(io::ErrorKind::ConnectionRefused).into()),
        };
        let refused_tunnel = Error::Proxy {
            proxy: "proxy:3128".into(),
            message: "CONNECT answered 403".into(),
            source: None,
        };
        let bad_certificate = Error::Tls {
            message: "TLS handshake with h:1 failed".into(),
            source: Some(io::Error::new(io::ErrorKind::InvalidData, "bad certificate").into()),
        };
        let kdc = Error::Kerberos {
            kind: KerberosErrorKind::KdcUnreachable,
            message: "the KDC tcp://kdc:88 did not answer within 10s".into(),
        };
        let expired = Error::Kerberos {
            kind: KerberosErrorKind::TicketExpired,
            message: "run kinit".into(),
        };
        for (error, fails) in [
            (tls, true),
            (proxy, true),
            (kdc, true),
            (refused_tunnel, false),
            (bad_certificate, false),
            (expired, false),
            (Error::HttpTimeout(Duration::from_secs(1)), false),
            (
                Error::connection(io::Error::from(io::ErrorKind::ConnectionReset)),
                false,
            ),
        ] {
            let text = error.to_string();
            let logon = Arc::new(Logon::new());
            let first = logon.enter().await.unwrap().unwrap();
            let waiter = park(&logon, 1).await.pop().unwrap();
            logon.attempt_ended(first, &Err::<(), _>(error), "h:1");
            let outcome = tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("the waiter moved on")
                .unwrap();
            if fails {
                let e = outcome.unwrap_err();
                if e.is_auth() {
                    assert_eq!(e.kerberos_kind(), Some(KerberosErrorKind::KdcUnreachable));
                    assert!(e.to_string().contains("tcp://kdc:88"), "{e}");
                } else {
                    assert!(e.is_connect() && e.is_retryable(), "{text}: {e:?}");
                }
                assert!(e.to_string().contains("waited for"), "{e}");
            } else {
                assert!(
                    outcome.unwrap(),
                    "{text}: the waiter makes the next attempt"
                );
            }
        }
    }

    #[tokio::test]
    async fn waiters_fail_at_once_on_a_refusal() {
        let logon = Arc::new(Logon::new());
        let first = logon.enter().await.unwrap();
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let logon = Arc::clone(&logon);
                tokio::spawn(async move { logon.enter().await.map(|a| a.is_some()) })
            })
            .collect();
        tokio::task::yield_now().await;
        logon.refused(&Error::Auth("Kerberos: pre-authentication failed".into()));
        for w in waiters {
            assert!(matches!(w.await.unwrap(), Err(Error::Auth(_))));
        }
        drop(first);
    }
}
