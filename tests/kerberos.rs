//! Kerberos against a real MIT KDC (feature `kerberos`): our client logs in at the KDC
//! with a password (AS exchange), gets a ticket for `HTTP/localhost` (TGS exchange) and
//! authenticates to the simulator, whose acceptor holds the service key from the KDC's
//! keytab; then Identify, Get and a command go sealed as
//! `application/HTTP-Kerberos-session-encrypted`, an enumeration too; a tampered sealed
//! response is a typed error. A wrong password is refused by the KDC as a typed error
//! before any request reaches the server; a service key that does not match the ticket
//! is refused by the server with 401.
//!
//! The KDC comes from `tests/kdc/setup.sh` (run by `.ci/run`), which exports
//! `TOKIO_WINRM_KDC`, `TOKIO_WINRM_KDC_REALM` and `TOKIO_WINRM_KDC_KEYTAB`. Without
//! them the tests print why and pass; with them, any failure fails.

use std::future::Future;
use std::time::Duration;

use tokio_winrm::sim::{SimConfig, SimKerberos, Simulator};
use tokio_winrm::{Auth, Client, Error, KerberosOptions, Resource};

const WMI: &str = "root/cimv2";

struct Kdc {
    addr: String,
    realm: String,
    keytab: String,
}

fn kdc(test: &str) -> Option<Kdc> {
    let Ok(addr) = std::env::var("TOKIO_WINRM_KDC") else {
        eprintln!(
            "SKIPPED {test}: TOKIO_WINRM_KDC is not set (start a KDC with: eval \"$(tests/kdc/setup.sh)\")"
        );
        return None;
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
        .build()
        .unwrap()
}

#[tokio::test]
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
        let (handshakes, sealed, failures) = sim.kerberos_counters();
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
        assert_eq!(sim.kerberos_counters().0, 1);
    })
    .await;
}

#[tokio::test]
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
            matches!(&e, Error::Auth(m) if m.contains("signature")),
            "{e:?}"
        );
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
        assert_eq!(sim.kerberos_counters().2, 1);
    })
    .await;
}
