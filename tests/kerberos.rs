//! Kerberos against a real MIT KDC (feature `kerberos`): our client logs in at the KDC
//! with a password (AS exchange), gets a ticket for `HTTP/localhost` (TGS exchange) and
//! authenticates to the simulator, whose acceptor holds the service key from the KDC's
//! keytab; then Identify, Get and a command go sealed as
//! `application/HTTP-Kerberos-session-encrypted`, an enumeration too; a tampered sealed
//! response is a typed error. A wrong password is refused by the KDC as a typed error
//! before any request reaches the server; a service key that does not match the ticket
//! is refused by the server with 401.
//!
//! Over https:// (a TLS front relaying to the simulator) the AP-REQ carries the
//! `tls-server-end-point` channel binding and is accepted.
//!
//! 32 concurrent calls with a wrong password make one AS exchange at the KDC and send
//! no AP-REQ; with the right password they open 32 connections with one AS and one TGS
//! exchange (the KDC's log counts them).
//!
//! Negotiate with SPNEGO and a password (`Auth::negotiate(..).spnego(true)`, sspi's
//! Negotiate): Kerberos inside SPNEGO when the simulator has its Kerberos acceptor (the
//! simulator counts a SPNEGO Kerberos handshake, no NTLM); NTLM inside SPNEGO after an
//! optimistic AP-REQ when it has none (the simulator selects NTLM); a wrong password is
//! one failed AS exchange at the KDC, no NTLM attempt and nothing sent to the server;
//! 32 connections share one AS and one TGS exchange.
//!
//! The KDC comes from `tests/kdc/setup.sh` (run by `.ci/run`), which exports
//! `TOKIO_WINRM_KDC`, `TOKIO_WINRM_KDC_REALM` and `TOKIO_WINRM_KDC_KEYTAB`. Without
//! them the tests print why and pass; with them, any failure fails.

#[path = "support/kdc_log.rs"]
mod kdc_log;
#[path = "support/parallel.rs"]
mod parallel;
#[path = "support/pki.rs"]
mod pki;

use std::future::Future;
use std::time::Duration;

use tokio_winrm::{Auth, Client, Error, KerberosOptions, Resource};
use winrm_simulator::{KerberosCounters, SimConfig, SimKerberos, Simulator};

const WMI: &str = "root/cimv2";

struct Kdc {
    addr: String,
    realm: String,
    keytab: String,
}

fn kdc(test: &str) -> Option<Kdc> {
    // The tests are #[ignore]d: run on purpose, a missing KDC is a failure, not a skip.
    let Ok(addr) = std::env::var("TOKIO_WINRM_KDC") else {
        panic!(
            "{test}: TOKIO_WINRM_KDC is not set (start a KDC with: eval \"$(tests/kdc/setup.sh)\")"
        );
    };
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| panic!("TOKIO_WINRM_KDC is set but {name} is not"))
    };
    Some(Kdc {
        addr,
        realm: var("TOKIO_WINRM_KDC_REALM"),
        keytab: var("TOKIO_WINRM_KDC_KEYTAB"),
    })
}

async fn within<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test timed out");
}

async fn simulator(kdc: &Kdc) -> Simulator {
    let acceptor = SimKerberos::from_keytab(&kdc.keytab, "HTTP/localhost").unwrap();
    Simulator::start_with(SimConfig {
        allow_basic: false,
        allow_unauthenticated_identify: false,
        ping_interval: Duration::from_millis(10),
        kerberos: Some(acceptor),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// `http://localhost:PORT/wsman`: the default SPN is then `HTTP/localhost`.
fn client(sim: &Simulator, kdc: &Kdc, user: &str, password: &str) -> Client {
    let endpoint = format!("http://localhost:{}/wsman", sim.addr().port());
    Client::builder(endpoint)
        .auth(
            Auth::kerberos(user, password)
                .kerberos_options(KerberosOptions::new(&kdc.addr, &kdc.realm)),
        )
        .operation_timeout(Duration::from_secs(5))
        // Room for 32 long polls at once: one eighth of the channels is kept for short
        // requests.
        .max_channels(40)
        .build()
        .unwrap()
}

#[tokio::test]
#[ignore = "needs a KDC: eval \"$(tests/kdc/setup.sh)\", then cargo test ... -- --ignored (.ci/run does)"]
async fn sealed_identify_get_and_command_with_a_real_kdc() {
    let Some(kdc) = kdc("sealed_identify_get_and_command_with_a_real_kdc") else {
        return;
    };
    within(async {
        let sim = simulator(&kdc).await;
        let c = client(&sim, &kdc, "vagrant", "vagrant");
        let id = c.identify().await.unwrap();
        assert!(format!("{id:?}").contains("Microsoft"), "{id:?}");
        let os = c
            .get(&Resource::wmi(WMI, "Win32_OperatingSystem"))
            .await
            .unwrap();
        assert!(os.get_str("Caption").is_some(), "{os:?}");
        let out = c.run("echo", &["kerberos", "hello"]).await.unwrap();
        assert_eq!(out.code, Some(0));
        assert!(
            out.stdout_text().contains("kerberos hello"),
            "{:?}",
            out.stdout_text()
        );
        let k = sim.kerberos_counters();
        let (handshakes, sealed, failures) = (k.handshakes, k.sealed_messages, k.failures);
        let t = c.transport_stats();
        assert_eq!(failures, 0);
        assert_eq!(handshakes, t.handshakes, "{t:?}");
        assert_eq!(
            t.handshakes, t.connects,
            "one handshake per connection: {t:?}"
        );
        // Identify, Get, then at least Create, Command, Receive, Signal, Delete: all sealed.
        assert!(sealed >= 6, "{sealed}");
        assert_eq!(sim.counters().ntlm_handshakes, 0);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a KDC: eval \"$(tests/kdc/setup.sh)\", then cargo test ... -- --ignored (.ci/run does)"]
async fn user_at_realm_form() {
    let Some(kdc) = kdc("user_at_realm_form") else {
        return;
    };
    within(async {
        let sim = simulator(&kdc).await;
        let user = format!("vagrant@{}", kdc.realm);
        let c = client(&sim, &kdc, &user, "vagrant");
        c.get(&Resource::wmi(WMI, "Win32_Service").selector("Name", "WinRM"))
            .await
            .unwrap();
        assert_eq!(sim.kerberos_counters().handshakes, 1);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a KDC: eval \"$(tests/kdc/setup.sh)\", then cargo test ... -- --ignored (.ci/run does)"]
async fn sealed_enumeration_and_a_tampered_response() {
    let Some(kdc) = kdc("sealed_enumeration_and_a_tampered_response") else {
        return;
    };
    within(async {
        let sim = simulator(&kdc).await;
        let c = client(&sim, &kdc, "vagrant", "vagrant");
        let items = c
            .enumerate(&Resource::wmi(WMI, "Win32_Service"))
            .start()
            .collect_items()
            .await
            .unwrap();
        assert!(items.len() >= 10, "{}", items.len());
        let res = Resource::wmi(WMI, "Win32_Service").selector("Name", "WinRM");
        sim.tamper_next_kerberos_response();
        let e = c.get(&res).await.unwrap_err();
        assert!(
            matches!(&e, Error::ResponseIntegrity { source } if source.to_string().contains("signature")),
            "{e:?}"
        );
        assert!(!e.is_auth() && e.may_have_executed(), "{e:?}");
        // The channel with the failed context is gone; a new one authenticates.
        let again = c.get(&res).await.unwrap();
        assert_eq!(again.get_str("Name"), Some("WinRM"));
        let t = c.transport_stats();
        assert_eq!(t.handshakes, t.connects, "{t:?}");
        assert!(t.handshakes >= 2, "{t:?}");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a KDC: eval \"$(tests/kdc/setup.sh)\", then cargo test ... -- --ignored (.ci/run does)"]
async fn wrong_password_is_a_typed_error_from_the_kdc() {
    let Some(kdc) = kdc("wrong_password_is_a_typed_error_from_the_kdc") else {
        return;
    };
    within(async {
        let sim = simulator(&kdc).await;
        let c = client(&sim, &kdc, "vagrant", "not-the-password");
        let e = c.identify().await.unwrap_err();
        eprintln!("refused as expected: {e}");
        assert!(matches!(e, Error::Auth(_)), "{e:?}");
        assert!(e.is_auth());
        assert!(!e.to_string().contains("not-the-password"), "{e}");
        // Refused at the KDC: nothing reached the server.
        assert_eq!(sim.counters().requests, 0);
        assert_eq!(c.transport_stats().handshakes, 0);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a KDC: eval \"$(tests/kdc/setup.sh)\", then cargo test ... -- --ignored (.ci/run does)"]
async fn a_service_key_that_does_not_match_is_refused_by_the_server() {
    let Some(kdc) = kdc("a_service_key_that_does_not_match_is_refused_by_the_server") else {
        return;
    };
    within(async {
        let sim = Simulator::start_with(SimConfig {
            allow_basic: false,
            allow_unauthenticated_identify: false,
            kerberos: Some(SimKerberos::new("HTTP/localhost", vec![7u8; 32])),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let c = client(&sim, &kdc, "vagrant", "vagrant");
        let e = c.identify().await.unwrap_err();
        match &e {
            Error::Unauthorized { offered } => {
                assert!(offered.iter().any(|s| s == "Kerberos"), "{offered:?}")
            }
            other => panic!("expected Unauthorized, got {other:?}"),
        }
        assert_eq!(sim.kerberos_counters().failures, 1);
    })
    .await;
}

// ---- One ticket-granting exchange per client, one failed logon per wrong password ----

const CALLS: usize = 32;

/// KDC exchanges of `user` that reached a verdict, from the KDC's log (`kdc.log` in
/// `TOKIO_WINRM_KDC_DIR`): `(AS, TGS)`. An AS exchange is the pre-authenticated
/// AS-REQ (ISSUE or PREAUTH_FAILED); the NEEDED_PREAUTH round before it is not counted.
/// Each test counts a principal of its own (tests/kdc/setup.sh), as tests share the KDC.
fn kdc_exchanges(realm: &str, user: &str) -> (usize, usize) {
    kdc_log::exchanges(&kdc_dir(), realm, user)
}

async fn settled_kdc_exchanges(realm: &str, user: &str) -> (usize, usize) {
    kdc_log::settled_exchanges(&kdc_dir(), realm, user).await
}

fn kdc_dir() -> String {
    std::env::var("TOKIO_WINRM_KDC_DIR").expect("TOKIO_WINRM_KDC_DIR")
}

/// `CALLS` identify calls at once with a wrong `password`: each fails with
/// [`Error::Auth`] naming no password, either the KDC's refusal or the client's closed
/// logon gate. Returns how many carry the KDC's refusal.
async fn refused_calls(c: &Client, password: &str) -> usize {
    let calls: Vec<_> = (0..CALLS)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.identify().await })
        })
        .collect();
    let mut from_the_kdc = 0;
    for call in calls {
        let e = call.await.unwrap().unwrap_err();
        let Error::Auth(m) = &e else {
            panic!("expected Error::Auth, got {e:?}")
        };
        assert!(!m.contains(password), "{m}");
        if m.contains("no further logon is attempted") {
            continue;
        }
        assert!(m.contains("KDC_ERR_PREAUTH_FAILED"), "{m}");
        from_the_kdc += 1;
    }
    from_the_kdc
}

/// Asserts that `user` made one AS and one TGS exchange at the KDC since `before` (once
/// its log has settled).
async fn assert_one_ticket_exchange(realm: &str, user: &str, before: (usize, usize)) {
    let after = settled_kdc_exchanges(realm, user).await;
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (1, 1),
        "one AS and one TGS exchange for 32 connections: {before:?} -> {after:?}"
    );
}

async fn fan_out_simulator(kdc: &Kdc, user: &str) -> Simulator {
    let acceptor = SimKerberos::from_keytab(&kdc.keytab, "HTTP/localhost").unwrap();
    Simulator::start_with(SimConfig {
        users: vec![(user.to_string(), user.to_string())],
        allow_basic: false,
        allow_unauthenticated_identify: false,
        max_shells_per_user: 2 * CALLS,
        ping_interval: Duration::from_millis(10),
        kerberos: Some(acceptor),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

#[tokio::test]
#[ignore = "needs a KDC: eval \"$(tests/kdc/setup.sh)\", then cargo test ... -- --ignored (.ci/run does)"]
async fn wrong_password_from_32_calls_is_one_as_exchange_and_no_ap_req() {
    let Some(kdc) = kdc("wrong_password_from_32_calls_is_one_as_exchange_and_no_ap_req") else {
        return;
    };
    within(async {
        let sim = fan_out_simulator(&kdc, "lockout").await;
        let before = kdc_exchanges(&kdc.realm, "lockout");
        let c = client(&sim, &kdc, "lockout", "not-the-password");
        let from_the_kdc = refused_calls(&c, "not-the-password").await;
        assert_eq!(from_the_kdc, 1, "one logon reached the KDC");
        let after = settled_kdc_exchanges(&kdc.realm, "lockout").await;
        assert_eq!(
            after.0 - before.0,
            1,
            "AS exchanges: {before:?} -> {after:?}"
        );
        assert_eq!(after.1, before.1, "no TGS exchange");
        // No AP-REQ, no request at all reached the server.
        assert_eq!(sim.kerberos_counters(), KerberosCounters::default());
        assert_eq!(sim.counters().requests, 0);
        assert_eq!(sim.counters().failed_logons, 0);
        // A later call fails at once, with no KDC exchange.
        let e = c.identify().await.unwrap_err();
        assert!(
            matches!(&e, Error::Auth(m) if m.contains("no further logon")),
            "{e:?}"
        );
        let last = settled_kdc_exchanges(&kdc.realm, "lockout").await;
        assert_eq!(last, after);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a KDC: eval \"$(tests/kdc/setup.sh)\", then cargo test ... -- --ignored (.ci/run does)"]
async fn right_password_opens_32_connections_with_one_ticket_exchange() {
    let Some(kdc) = kdc("right_password_opens_32_connections_with_one_ticket_exchange") else {
        return;
    };
    within(async {
        let sim = fan_out_simulator(&kdc, "fanout").await;
        let before = kdc_exchanges(&kdc.realm, "fanout");
        let c = client(&sim, &kdc, "fanout", "fanout");
        // 32 commands that can only finish once the server holds 32 pending Receives at
        // once: 32 connections, each with its own AP-REQ.
        for out in parallel::run_all_at_once(&sim, &c, CALLS).await {
            assert!(out.stdout_text().contains("released"));
        }
        let t = c.transport_stats();
        assert_eq!(t.connects, CALLS as u64, "{t:?}");
        assert_eq!(t.handshakes, CALLS as u64, "{t:?}");
        let k = sim.kerberos_counters();
        let (handshakes, failures) = (k.handshakes, k.failures);
        assert_eq!((handshakes, failures), (CALLS as u64, 0));
        assert_one_ticket_exchange(&kdc.realm, "fanout", before).await;
    })
    .await;
}

// ---- No credential material in a TRACE capture of a Kerberos session (issue 10 §5) ----

#[path = "support/log_capture.rs"]
mod log_capture;

#[tokio::test]
#[ignore = "needs a KDC: eval \"$(tests/kdc/setup.sh)\", then cargo test ... -- --ignored (.ci/run does)"]
async fn a_trace_capture_of_a_kerberos_session_holds_no_credentials() {
    let Some(kdc) = kdc("a_trace_capture_of_a_kerberos_session_holds_no_credentials") else {
        return;
    };
    let logs = log_capture::capture();
    within(async {
        let acceptor = SimKerberos::from_keytab(&kdc.keytab, "HTTP/localhost").unwrap();
        let sim = Simulator::start_with(SimConfig {
            users: vec![("logger".into(), "unused-by-kerberos".into())],
            allow_basic: false,
            allow_unauthenticated_identify: false,
            ping_interval: Duration::from_millis(10),
            kerberos: Some(acceptor),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        // Tee proxies in front of the server and of the KDC: what they see is the
        // credential material to look for (AP-REQ, AP-REP, AS and TGS messages).
        let server = log_capture::TeeProxy::start(sim.addr()).await;
        let kdc_addr: std::net::SocketAddr = kdc.addr.parse().unwrap();
        let kdc_tee = log_capture::TeeProxy::start(kdc_addr).await;
        let endpoint = format!("http://localhost:{}/wsman", server.addr().port());
        let kdc_via_tee = kdc_tee.addr().to_string();
        let c = Client::builder(&endpoint)
            .auth(
                Auth::kerberos("logger", "Kerb-Pa55-XYZZY")
                    .kerberos_options(KerberosOptions::new(&kdc_via_tee, &kdc.realm)),
            )
            .operation_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        c.identify().await.unwrap();
        c.get(&Resource::wmi(WMI, "Win32_OperatingSystem"))
            .await
            .unwrap();
        let out = c.run("echo", &["kerberos", "logged"]).await.unwrap();
        assert!(out.stdout_text().contains("kerberos logged"));
        assert!(
            sim.kerberos_counters().sealed_messages >= 4,
            "{:?}",
            sim.kerberos_counters()
        );
        // A wrong password too (refused by the KDC).
        let wrong = Client::builder(&endpoint)
            .auth(
                Auth::kerberos("logger", "wrong-Kerb-Pa55")
                    .kerberos_options(KerberosOptions::new(&kdc_via_tee, &kdc.realm)),
            )
            .build()
            .unwrap();
        assert!(wrong.identify().await.unwrap_err().is_auth());
        let mut secrets = log_capture::Secrets::of_password("Kerb-Pa55-XYZZY");
        secrets.add_wire(&server.wire());
        let http_tokens = secrets.tokens();
        assert!(http_tokens >= 2, "{http_tokens} tokens");
        secrets.add_raw_streams("KDC message", &kdc_tee.wire());
        assert!(secrets.tokens() >= http_tokens + 4, "no KDC traffic seen");
        secrets.assert_absent_from(&logs.text());
    })
    .await;
}

/// The simulator behind a TLS front (`support/pki.rs`): the port and the CA's PEM.
async fn tls_front(sim: &Simulator) -> (u16, String) {
    let front = pki::start(sim.addr()).await;
    (front.port, front.ca_pem)
}

#[tokio::test]
#[ignore = "needs a KDC: eval \"$(tests/kdc/setup.sh)\", then cargo test ... -- --ignored (.ci/run does)"]
async fn kerberos_over_https_with_the_channel_binding() {
    let Some(kdc) = kdc("kerberos_over_https_with_the_channel_binding") else {
        return;
    };
    within(async {
        // The simulator sees plain HTTP behind the front: it must take the messages
        // that TLS protects unsealed, as Windows does over its HTTPS listener.
        let sim = Simulator::start_with(SimConfig {
            allow_basic: false,
            allow_unencrypted: true,
            kerberos: Some(SimKerberos::from_keytab(&kdc.keytab, "HTTP/localhost").unwrap()),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let (port, ca) = tls_front(&sim).await;
        // Over https:// the AP-REQ carries the tls-server-end-point binding of the
        // front's certificate (the simulator's acceptor, like sspi's, does not check it;
        // that the binding reaches the context is a unit test in src/transport/kerberos.rs).
        let c = Client::builder(format!("https://localhost:{port}/wsman"))
            .auth(
                Auth::kerberos("vagrant", "vagrant")
                    .kerberos_options(KerberosOptions::new(&kdc.addr, &kdc.realm)),
            )
            .add_root_certificate_pem(ca.as_bytes())
            .operation_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let out = c.run("echo", &["kerberos", "over", "tls"]).await.unwrap();
        assert!(out.stdout_text().contains("kerberos over tls"));
        let k = sim.kerberos_counters();
        assert_eq!(k.failures, 0, "{k:?}");
        assert!(k.handshakes >= 1, "{k:?}");
        assert_eq!(
            k.sealed_messages, 0,
            "TLS protects the messages: none sealed"
        );
    })
    .await;
}

// ---- Negotiate with SPNEGO and a password: Kerberos first, NTLM when not possible ----

/// `Auth::negotiate(..).spnego(true)` with the KDC, to `http://localhost:PORT/wsman`.
fn spnego_client(sim: &Simulator, kdc: &Kdc, user: &str, password: &str) -> Client {
    let endpoint = format!("http://localhost:{}/wsman", sim.addr().port());
    Client::builder(endpoint)
        .auth(
            Auth::negotiate(user, password)
                .spnego(true)
                .kerberos_options(KerberosOptions::new(&kdc.addr, &kdc.realm)),
        )
        .operation_timeout(Duration::from_secs(5))
        .max_channels(40)
        .build()
        .unwrap()
}

#[tokio::test]
#[ignore = "needs a KDC: eval \"$(tests/kdc/setup.sh)\", then cargo test ... -- --ignored (.ci/run does)"]
async fn spnego_with_a_password_negotiates_kerberos() {
    let Some(kdc) = kdc("spnego_with_a_password_negotiates_kerberos") else {
        return;
    };
    within(async {
        let sim = simulator(&kdc).await;
        let c = spnego_client(&sim, &kdc, "vagrant", "vagrant");
        let out = c.run("echo", &["spnego", "kerberos"]).await.unwrap();
        assert!(out.stdout_text().contains("spnego kerberos"), "{out:?}");
        let items = c
            .wql(WMI, "SELECT Name FROM Win32_Service")
            .start()
            .collect_items()
            .await
            .unwrap();
        assert!(items.len() >= 10);
        let k = sim.kerberos_counters();
        let t = c.transport_stats();
        assert_eq!(k.spnego_handshakes, t.handshakes, "{k:?} {t:?}");
        assert!(k.spnego_handshakes >= 1 && k.failures == 0, "{k:?}");
        assert!(k.sealed_messages >= 6, "{k:?}");
        let n = sim.counters();
        assert_eq!(
            (n.ntlm_handshakes, n.spnego_ntlm_handshakes),
            (0, 0),
            "{n:?}"
        );
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a KDC: eval \"$(tests/kdc/setup.sh)\", then cargo test ... -- --ignored (.ci/run does)"]
async fn spnego_to_a_server_without_kerberos_goes_on_with_ntlm() {
    let Some(kdc) = kdc("spnego_to_a_server_without_kerberos_goes_on_with_ntlm") else {
        return;
    };
    within(async {
        // No Kerberos acceptor: the optimistic AP-REQ cannot be used; the simulator
        // selects NTLM (a user named as the NTLM fallback sends it: REALM\\vagrant).
        let sim = Simulator::start_with(SimConfig {
            users: vec![(format!("{}\\vagrant", kdc.realm), "vagrant".into())],
            allow_basic: false,
            allow_unauthenticated_identify: false,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let c = spnego_client(&sim, &kdc, "vagrant", "vagrant");
        c.identify().await.unwrap();
        let n = sim.counters();
        // The NegTokenInit with the AP-REQ, the NEGOTIATE and the AUTHENTICATE in
        // NegTokenResps, then the sealed Identify.
        assert_eq!(n.requests, 4, "{n:?}");
        let out = c.run("whoami", &[]).await.unwrap();
        assert_eq!(out.code, Some(0));
        let n = sim.counters();
        assert_eq!(n.spnego_ntlm_handshakes, 1, "{n:?}");
        assert_eq!(n.failed_logons, 0, "{n:?}");
        assert_eq!(sim.kerberos_counters().handshakes, 0);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a KDC: eval \"$(tests/kdc/setup.sh)\", then cargo test ... -- --ignored (.ci/run does)"]
async fn spnego_wrong_password_is_one_as_exchange_and_no_ntlm() {
    let Some(kdc) = kdc("spnego_wrong_password_is_one_as_exchange_and_no_ntlm") else {
        return;
    };
    within(async {
        let sim = fan_out_simulator(&kdc, "lockout").await;
        let c = spnego_client(&sim, &kdc, "lockout", "not-the-password");
        let from_the_kdc = refused_calls(&c, "not-the-password").await;
        assert_eq!(from_the_kdc, 1, "one logon reached the KDC");
        // No fallback to NTLM: nothing reached the server.
        assert_eq!(sim.counters().requests, 0);
        assert_eq!(sim.counters().failed_logons, 0);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a KDC: eval \"$(tests/kdc/setup.sh)\", then cargo test ... -- --ignored (.ci/run does)"]
async fn spnego_32_connections_share_one_ticket_exchange() {
    let Some(kdc) = kdc("spnego_32_connections_share_one_ticket_exchange") else {
        return;
    };
    within(async {
        let sim = fan_out_simulator(&kdc, "spnegofan").await;
        let before = kdc_exchanges(&kdc.realm, "spnegofan");
        let c = spnego_client(&sim, &kdc, "spnegofan", "spnegofan");
        for out in parallel::run_all_at_once(&sim, &c, CALLS).await {
            assert!(out.stdout_text().contains("released"));
        }
        let k = sim.kerberos_counters();
        assert_eq!(
            (k.spnego_handshakes, k.failures),
            (CALLS as u64, 0),
            "{k:?}"
        );
        assert_one_ticket_exchange(&kdc.realm, "spnegofan", before).await;
    })
    .await;
}
