//! Negotiate with SPNEGO (`Auth::negotiate(..).spnego(true)`) against the simulator's
//! SPNEGO-NTLM acceptor: a `NegTokenInit`, the CHALLENGE and AUTHENTICATE in
//! `NegTokenResp`s with both `mechListMIC`s, then every message sealed with the NTLM
//! context (commands, WQL, large output, large input); Kerberos not possible (no realm,
//! an unreachable KDC, an IP address) falls back to NTLM before anything is sent, one
//! SPNEGO-NTLM handshake counted at the simulator; a wrong password is one failed logon;
//! raw NTLM still works beside it. (SPNEGO with a real KDC: tests/kerberos.rs.)

#[path = "support/pki.rs"]
mod pki;

use std::future::Future;
use std::time::Duration;

use tokio_winrm::{Auth, Client, Error, Resource};
use winrm_simulator::{SimConfig, Simulator};

const WMI: &str = "root/cimv2";

async fn within<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test timed out");
}

fn config() -> SimConfig {
    SimConfig {
        allow_basic: false,
        allow_unauthenticated_identify: false,
        ping_interval: Duration::from_millis(10),
        ..SimConfig::default()
    }
}

fn client(endpoint: &str, auth: Auth) -> Client {
    Client::builder(endpoint)
        .auth(auth)
        .operation_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn spnego_ntlm_sealed_commands_wql_and_large_output() {
    within(async {
        let sim = Simulator::start_with(config()).await.unwrap();
        let c = client(
            &sim.endpoint(),
            Auth::negotiate(sim.user(), sim.password()).spnego(true),
        );
        let out = c.run("echo", &["sealed", "spnego"]).await.unwrap();
        assert_eq!(out.code, Some(0));
        assert!(out.stdout_text().contains("sealed spnego"), "{out:?}");
        let rows = c
            .wql(WMI, "SELECT Name, State FROM Win32_Service")
            .start()
            .collect_items()
            .await
            .unwrap();
        assert!(rows.len() >= 10, "{}", rows.len());
        // A large output (many sealed Receive responses) and a large input.
        let big = c.run("sim-gen", &["--kib", "300"]).await.unwrap();
        assert_eq!(big.code, Some(0));
        assert_eq!(big.stdout.len(), 300 * 1024);
        let shell = c.shell().open().await.unwrap();
        let cmd = shell.command("findstr").arg("x").start().await.unwrap();
        let line = format!("{}\r\n", "x".repeat(1022));
        cmd.close_stdin(line.repeat(40).as_bytes()).await.unwrap();
        let out = cmd.collect().await.unwrap();
        assert_eq!(out.stdout, line.repeat(40).as_bytes());
        shell.close().await.unwrap();

        let n = sim.counters();
        let t = c.transport_stats();
        assert!(n.spnego_ntlm_handshakes >= 1, "{n:?}");
        assert_eq!(n.spnego_ntlm_handshakes, n.ntlm_handshakes, "{n:?}");
        assert_eq!(n.spnego_ntlm_handshakes, t.handshakes, "{n:?} {t:?}");
        assert!(n.sealed_messages >= 8, "{n:?}");
        assert_eq!(n.unseal_failures, 0);
        assert_eq!(n.failed_logons, 0);
        assert_eq!(sim.kerberos_counters().handshakes, 0);
    })
    .await;
}

#[tokio::test]
async fn without_a_realm_or_kdc_it_is_one_spnego_ntlm_handshake() {
    within(async {
        let sim = Simulator::start_with(config()).await.unwrap();
        for user in [
            sim.user().to_string(),
            format!("SIM\\{}", sim.user()),
            format!("{}@sim.test", sim.user()),
        ] {
            let before = sim.counters();
            let c = client(
                &sim.endpoint(),
                Auth::negotiate(user.clone(), sim.password()).spnego(true),
            );
            c.identify().await.unwrap();
            let n = sim.counters();
            assert_eq!(
                n.spnego_ntlm_handshakes - before.spnego_ntlm_handshakes,
                1,
                "{user}: {n:?}"
            );
            // NegTokenInit, AUTHENTICATE, then the sealed Identify.
            assert_eq!(n.requests - before.requests, 3, "{user}: {n:?}");
            assert_eq!(n.failed_logons, 0);
        }
    })
    .await;
}

/// A user with a realm and a KDC that does not answer: sspi tries Kerberos, falls back
/// to NTLM inside SPNEGO before anything goes to the server.
#[cfg(feature = "kerberos")]
#[tokio::test]
async fn an_unreachable_kdc_falls_back_to_ntlm_before_sending() {
    within(async {
        let sim = Simulator::start_with(SimConfig {
            users: vec![("TOKIO.TEST\\vagrant".into(), "vagrant".into())],
            ..config()
        })
        .await
        .unwrap();
        // A port nothing listens on.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let kdc = closed.local_addr().unwrap().to_string();
        drop(closed);
        let c = client(
            &sim.endpoint(),
            Auth::negotiate("vagrant@TOKIO.TEST", "vagrant")
                .spnego(true)
                .kerberos_options(tokio_winrm::KerberosOptions {
                    kdc: Some(kdc),
                    // Not an IP address: Kerberos is tried.
                    spn: Some("HTTP/host.tokio.test".into()),
                    ..Default::default()
                }),
        );
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
async fn a_wrong_password_is_one_failed_logon() {
    within(async {
        let sim = Simulator::start_with(config()).await.unwrap();
        let c = client(
            &sim.endpoint(),
            Auth::negotiate(sim.user(), "not-the-password").spnego(true),
        );
        let calls: Vec<_> = (0..16)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.identify().await })
            })
            .collect();
        let mut unauthorized = 0;
        for call in calls {
            let e = call.await.unwrap().unwrap_err();
            assert!(e.is_auth(), "{e:?}");
            assert!(!format!("{e} {e:?}").contains("not-the-password"));
            unauthorized += usize::from(matches!(e, Error::Unauthorized { .. }));
        }
        assert_eq!(unauthorized, 1);
        let n = sim.counters();
        assert_eq!(n.failed_logons, 1, "{n:?}");
        // NegTokenInit and AUTHENTICATE, on one connection.
        assert_eq!((n.requests, n.connections), (2, 1), "{n:?}");
        assert_eq!(n.spnego_ntlm_handshakes, 0);
    })
    .await;
}

#[tokio::test]
async fn raw_ntlm_and_spnego_side_by_side() {
    within(async {
        let sim = Simulator::start_with(config()).await.unwrap();
        let raw = client(&sim.endpoint(), Auth::negotiate(sim.user(), sim.password()));
        let spnego = client(
            &sim.endpoint(),
            Auth::negotiate(sim.user(), sim.password()).spnego(true),
        );
        for c in [&raw, &spnego, &raw] {
            c.get(&Resource::wmi(WMI, "Win32_OperatingSystem"))
                .await
                .unwrap();
        }
        let n = sim.counters();
        assert_eq!(
            (n.ntlm_handshakes, n.spnego_ntlm_handshakes),
            (2, 1),
            "{n:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_tampered_response_is_refused() {
    within(async {
        let sim = Simulator::start_with(config()).await.unwrap();
        let c = client(
            &sim.endpoint(),
            Auth::negotiate(sim.user(), sim.password()).spnego(true),
        );
        c.identify().await.unwrap();
        sim.tamper_next_sealed_response();
        let e = c.identify().await.unwrap_err();
        assert!(
            matches!(&e, Error::ResponseIntegrity { source } if source.to_string().contains("signature")),
            "{e:?}"
        );
        assert!(!e.is_auth() && e.may_have_executed(), "{e:?}");
        // A fresh connection authenticates again and goes on.
        c.identify().await.unwrap();
        assert_eq!(sim.counters().spnego_ntlm_handshakes, 2);
    })
    .await;
}

/// Over https:// (a TLS front relaying to the simulator) TLS carries the privacy
/// (`Encryption::Auto`: nothing sealed) and the exchange is bound to the TLS channel.
#[tokio::test]
async fn over_https_tls_carries_the_privacy() {
    within(async {
        let sim = Simulator::start_with(SimConfig {
            // The simulator sees the front's plain HTTP: clear text after the logon.
            allow_unencrypted: true,
            ..config()
        })
        .await
        .unwrap();
        let front = pki::start(sim.addr()).await;
        let c = Client::builder(format!("https://localhost:{}/wsman", front.port))
            .auth(Auth::negotiate(sim.user(), sim.password()).spnego(true))
            .add_root_certificate_pem(front.ca_pem.as_bytes())
            .operation_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let out = c.run("echo", &["over", "tls"]).await.unwrap();
        assert!(out.stdout_text().contains("over tls"), "{out:?}");
        let n = sim.counters();
        assert_eq!(n.spnego_ntlm_handshakes, 1, "{n:?}");
        assert_eq!(n.sealed_messages, 0, "{n:?}");
    })
    .await;
}
