//! One wrong password is one failed logon, not one per connection (issue 10 §3).
//!
//! 32 concurrent calls with a wrong password give exactly one failed logon at the
//! simulator, for Basic and for NTLM; every call fails with a typed auth error, and a
//! later call fails at once without reaching the server. A transient failure of the
//! first logon does not poison the client. A correct password still opens 32
//! connections in parallel: 32 commands whose Receives must all be pending on the
//! server at once before any of them may finish. A refused re-authentication in
//! mid-session stops the client too. (Kerberos: tests/kerberos.rs, with the KDC.)

#[path = "support/parallel.rs"]
mod parallel;

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_winrm::{Auth, Client, Error, Resource};
use winrm_simulator::{SimConfig, Simulator};

const CALLS: usize = 32;
const WMI: &str = "root/cimv2";

async fn within<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test timed out");
}

fn config(basic: bool) -> SimConfig {
    SimConfig {
        allow_basic: basic,
        allow_unauthenticated_identify: false,
        max_shells_per_user: 2 * CALLS,
        ping_interval: Duration::from_millis(10),
        ..SimConfig::default()
    }
}

fn client(endpoint: &str, auth: Auth) -> Client {
    Client::builder(endpoint)
        .auth(auth)
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(5))
        // Room for 32 long polls at once: one eighth of the channels is kept for short
        // requests.
        .max_channels(40)
        .build()
        .unwrap()
}

fn is_refusal(e: &Error) -> bool {
    match e {
        Error::Unauthorized { .. } => true,
        Error::Auth(m) => m.contains("no further logon is attempted"),
        _ => false,
    }
}

/// 32 concurrent authenticated Identify calls; all must fail as refused.
async fn fan_out_refused(c: &Client) {
    let calls = (0..CALLS).map(|_| {
        let c = c.clone();
        tokio::spawn(async move { c.identify().await })
    });
    let mut unauthorized = 0;
    for call in calls.collect::<Vec<_>>() {
        let e = call.await.unwrap().unwrap_err();
        assert!(is_refusal(&e), "{e:?}");
        assert!(e.is_auth(), "{e:?}");
        assert!(!e.to_string().contains("not-the-password"), "{e}");
        unauthorized += usize::from(matches!(e, Error::Unauthorized { .. }));
    }
    // The one logon that was made reports the server's 401; the rest were never sent.
    assert_eq!(unauthorized, 1);
}

/// A later call fails at once, and the server sees nothing of it.
async fn later_calls_fail_without_contacting_the_server(sim: &Simulator, c: &Client) {
    let before = sim.counters();
    let t = c.transport_stats();
    let started = std::time::Instant::now();
    for _ in 0..3 {
        let e = c
            .get(&Resource::wmi(WMI, "Win32_OperatingSystem"))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Auth(m) if m.contains("no further logon is attempted")),
            "{e:?}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(sim.counters(), before);
    assert_eq!(c.transport_stats(), t);
}

#[tokio::test]
async fn basic_wrong_password_from_32_calls_is_one_failed_logon() {
    within(async {
        let sim = Simulator::start_with(config(true)).await.unwrap();
        let c = client(&sim.endpoint(), Auth::basic(sim.user(), "not-the-password"));
        fan_out_refused(&c).await;
        let n = sim.counters();
        assert_eq!(n.failed_logons, 1, "{n:?}");
        assert_eq!(n.requests, 1, "{n:?}");
        later_calls_fail_without_contacting_the_server(&sim, &c).await;
    })
    .await;
}

#[tokio::test]
async fn ntlm_wrong_password_from_32_calls_is_one_failed_logon() {
    within(async {
        let sim = Simulator::start_with(config(false)).await.unwrap();
        let c = client(&sim.endpoint(), Auth::ntlm(sim.user(), "not-the-password"));
        fan_out_refused(&c).await;
        let n = sim.counters();
        assert_eq!(n.failed_logons, 1, "{n:?}");
        // One NEGOTIATE and one AUTHENTICATE, on one connection.
        assert_eq!((n.requests, n.connections), (2, 1), "{n:?}");
        assert_eq!(n.ntlm_handshakes, 0);
        later_calls_fail_without_contacting_the_server(&sim, &c).await;
    })
    .await;
}

/// Runs 32 commands that can only finish once the server holds 32 pending Receives
/// at the same time: 32 requests in flight at once, so 32 connections.
async fn fan_out_in_parallel(sim: &Simulator, c: &Client) {
    for out in parallel::run_all_at_once(sim, c, CALLS).await {
        assert_eq!(out.code, Some(0));
        assert!(out.stdout_text().contains("released"));
    }
    let n = sim.counters();
    assert_eq!(n.failed_logons, 0, "{n:?}");
    assert_eq!(n.connections, CALLS as u64, "{n:?}");
    assert_eq!(c.transport_stats().connects, CALLS as u64);
}

#[tokio::test]
async fn ntlm_right_password_opens_32_connections_in_parallel() {
    within(async {
        let sim = Simulator::start_with(config(false)).await.unwrap();
        let c = client(&sim.endpoint(), Auth::ntlm(sim.user(), sim.password()));
        fan_out_in_parallel(&sim, &c).await;
        let t = c.transport_stats();
        assert_eq!(t.handshakes, CALLS as u64, "one per connection: {t:?}");
        assert_eq!(sim.counters().ntlm_handshakes, CALLS as u64);
    })
    .await;
}

#[tokio::test]
async fn basic_right_password_opens_32_connections_in_parallel() {
    within(async {
        let sim = Simulator::start_with(config(true)).await.unwrap();
        let c = client(&sim.endpoint(), Auth::basic(sim.user(), sim.password()));
        fan_out_in_parallel(&sim, &c).await;
    })
    .await;
}

#[tokio::test]
async fn a_transient_failure_of_the_first_logon_does_not_poison_the_client() {
    within(async {
        // Nothing listens on the port at first: the first logons fail to connect.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let c = client(
            &format!("http://{addr}/wsman"),
            Auth::ntlm("vagrant", "vagrant"),
        );
        for _ in 0..2 {
            let e = c.identify().await.unwrap_err();
            assert!(matches!(e, Error::Connect { .. }), "{e:?}");
        }
        let sim = Simulator::start_with(SimConfig {
            addr,
            ..config(false)
        })
        .await
        .unwrap();
        c.identify().await.unwrap();
        assert_eq!(sim.counters().ntlm_handshakes, 1);
    })
    .await;
}

#[tokio::test]
async fn a_cancelled_first_logon_lets_the_next_call_try() {
    within(async {
        // A server that accepts and never answers: the first logon hangs until its
        // caller gives up; the next call then makes its own attempt.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let c = client(&format!("http://{addr}/wsman"), Auth::ntlm("u", "p"));
        let first = tokio::time::timeout(Duration::from_millis(200), c.identify()).await;
        assert!(first.is_err(), "the silent server answered?");
        let (_held, _) = silent.accept().await.unwrap();
        let second = tokio::time::timeout(Duration::from_millis(200), c.identify()).await;
        assert!(second.is_err());
        // The second call reached the server: it was not stuck behind the first.
        let accepted = tokio::time::timeout(Duration::from_secs(5), silent.accept()).await;
        assert!(accepted.is_ok(), "the second call made no attempt");
    })
    .await;
}

#[tokio::test]
async fn a_refused_reauthentication_in_mid_session_stops_the_client() {
    within(async {
        let sim = Simulator::start_with(config(false)).await.unwrap();
        let c = client(&sim.endpoint(), Auth::ntlm(sim.user(), sim.password()));
        let res = Resource::wmi(WMI, "Win32_OperatingSystem");
        c.get(&res).await.unwrap();
        // The password is changed on the server: contexts forgotten, logons refused.
        // 32 calls at once: one reuses the connection (401, then a refused
        // re-authentication), the others open connections whose handshakes wait for
        // the one handshake in flight, and fail with it.
        sim.refuse_ntlm_logins(true);
        sim.forget_ntlm_contexts();
        let calls: Vec<_> = (0..CALLS)
            .map(|_| {
                let c = c.clone();
                let res = res.clone();
                tokio::spawn(async move { c.get(&res).await })
            })
            .collect();
        for call in calls {
            let e = call.await.unwrap().unwrap_err();
            assert!(is_refusal(&e), "{e:?}");
        }
        assert_eq!(sim.counters().failed_logons, 1, "{:?}", sim.counters());
        sim.refuse_ntlm_logins(false);
        later_calls_fail_without_contacting_the_server(&sim, &c).await;
        // A new client (with the new password) logs on.
        let fresh = client(&sim.endpoint(), Auth::ntlm(sim.user(), sim.password()));
        fresh.get(&res).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn the_gate_is_per_client() {
    within(async {
        let sim = Simulator::start_with(config(true)).await.unwrap();
        let c = client(&sim.endpoint(), Auth::basic(sim.user(), sim.password()));
        c.identify().await.unwrap();
        // Another client with a wrong password is refused on its own ...
        let other = client(&sim.endpoint(), Auth::basic(sim.user(), "wrong"));
        assert!(other.identify().await.unwrap_err().is_auth());
        assert!(other.identify().await.unwrap_err().is_auth());
        assert_eq!(sim.counters().failed_logons, 1);
        // ... and the first client goes on.
        c.identify().await.unwrap();
    })
    .await;
}

#[test]
fn endpoint_with_user_information_is_refused_without_echoing_it() {
    for url in [
        "http://bob:hunter2-secret@host:5985/wsman",
        "https://CORP%5Cbob:hunter2-secret@host/wsman",
        "http://bob:hunter2-secret@host:notaport/wsman",
    ] {
        let b = Client::builder(url).auth(Auth::ntlm("bob", "x"));
        let debug = format!("{b:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        let e = b.build().unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(matches!(e, Error::Config(_)), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("user information"), "{shown}");
    }
}

#[tokio::test]
async fn spnego_wrong_password_from_32_calls_is_one_failed_logon() {
    within(async {
        let sim = Simulator::start_with(config(false)).await.unwrap();
        let c = client(
            &sim.endpoint(),
            Auth::negotiate(sim.user(), "not-the-password").spnego(true),
        );
        fan_out_refused(&c).await;
        let n = sim.counters();
        assert_eq!(n.failed_logons, 1, "{n:?}");
        // One NegTokenInit and one AUTHENTICATE (in a NegTokenResp), on one connection.
        assert_eq!((n.requests, n.connections), (2, 1), "{n:?}");
        assert_eq!(n.spnego_ntlm_handshakes, 0);
        later_calls_fail_without_contacting_the_server(&sim, &c).await;
    })
    .await;
}

#[tokio::test]
async fn spnego_right_password_opens_32_connections_in_parallel() {
    within(async {
        let sim = Simulator::start_with(config(false)).await.unwrap();
        let c = client(
            &sim.endpoint(),
            Auth::negotiate(sim.user(), sim.password()).spnego(true),
        );
        fan_out_in_parallel(&sim, &c).await;
        let t = c.transport_stats();
        assert_eq!(t.handshakes, CALLS as u64, "one per connection: {t:?}");
        assert_eq!(sim.counters().spnego_ntlm_handshakes, CALLS as u64);
    })
    .await;
}
