//! NTLM with message encryption against the simulator's acceptor: the handshake per
//! channel, sealed Identify/Get/command/enumeration, a tampered signature refused with
//! nothing delivered, re-authentication that re-seals from the plaintext (after a 401 in
//! mid-session and after the connection is cut), a wrong password refused at once, the
//! AllowUnencrypted and Basic switches, and secrets kept out of Debug.
//!
//! The interop test against pyspnego's acceptor (tests/peers/ntlm_server.py) runs when
//! python3 with `spnego` is found (`WINRM_PEER_PYTHON` names the interpreter), and says
//! why it skipped otherwise.

#[path = "support/pyspnego_peer.rs"]
mod pyspnego_peer;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_winrm::{Auth, Client, Encryption, Error, Resource};
use winrm_simulator::{SimConfig, Simulator};

const WMI: &str = "root/cimv2";

async fn within<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test timed out");
}

fn client(endpoint: &str, auth: Auth) -> Client {
    Client::builder(endpoint)
        .auth(auth)
        .operation_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn ntlm_sim_config() -> SimConfig {
    SimConfig {
        allow_basic: false,
        allow_unauthenticated_identify: false,
        ping_interval: Duration::from_millis(10),
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn sealed_identify_get_command_and_enumeration() {
    within(async {
        let sim = Simulator::start_with(ntlm_sim_config()).await.unwrap();
        let c = client(&sim.endpoint(), Auth::ntlm(sim.user(), sim.password()));
        let id = c.identify().await.unwrap();
        assert!(format!("{id:?}").contains("Microsoft"));
        let os = c
            .get(&Resource::wmi(WMI, "Win32_OperatingSystem"))
            .await
            .unwrap();
        assert!(os.get_str("Caption").is_some(), "{os:?}");
        let out = c.run("echo", &["sealed", "hello"]).await.unwrap();
        assert_eq!(out.code, Some(0));
        assert!(
            out.stdout_text().contains("sealed hello"),
            "{:?}",
            out.stdout_text()
        );
        let n = sim.counters();
        let t = c.transport_stats();
        // Every request after the handshake was sealed, and every channel authenticated once.
        assert!(n.sealed_messages >= 5, "{n:?}");
        assert_eq!(n.unseal_failures, 0);
        assert_eq!(n.ntlm_handshakes, t.handshakes, "{n:?} {t:?}");
        assert_eq!(
            t.handshakes, t.connects,
            "one handshake per connection: {t:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn sealed_enumeration() {
    within(async {
        let sim = Simulator::start_with(ntlm_sim_config()).await.unwrap();
        let c = client(&sim.endpoint(), Auth::ntlm(sim.user(), sim.password()));
        let items = c
            .enumerate(&Resource::wmi(WMI, "Win32_Service"))
            .start()
            .collect_items()
            .await
            .unwrap();
        assert!(items.len() >= 10, "{}", items.len());
        assert_eq!(sim.counters().unseal_failures, 0);
    })
    .await;
}

#[tokio::test]
async fn negotiate_with_domain_and_upn_user_names() {
    within(async {
        let sim = Simulator::start_with(ntlm_sim_config()).await.unwrap();
        for user in [
            format!("CORP\\{}", sim.user()),
            format!("{}@corp.example", sim.user()),
        ] {
            let c = client(&sim.endpoint(), Auth::negotiate(user, sim.password()));
            c.get(&Resource::wmi(WMI, "Win32_OperatingSystem"))
                .await
                .unwrap();
        }
        assert_eq!(sim.counters().ntlm_handshakes, 2);
    })
    .await;
}

#[tokio::test]
async fn wrong_password_is_refused_at_once() {
    within(async {
        let sim = Simulator::start_with(ntlm_sim_config()).await.unwrap();
        let c = client(&sim.endpoint(), Auth::ntlm(sim.user(), "not-the-password"));
        let e = c.identify().await.unwrap_err();
        match &e {
            Error::Unauthorized { offered } => assert_eq!(offered, &["Negotiate".to_string()]),
            other => panic!("expected Unauthorized, got {other:?}"),
        }
        // NEGOTIATE and AUTHENTICATE, nothing more: no retry loop.
        assert_eq!(sim.counters().requests, 2);
        assert_eq!(sim.counters().ntlm_handshakes, 0);
        assert!(!e.to_string().contains("not-the-password"));
    })
    .await;
}

#[tokio::test]
async fn tampered_signature_is_a_typed_error_and_nothing_is_delivered() {
    within(async {
        let sim = Simulator::start_with(ntlm_sim_config()).await.unwrap();
        let c = client(&sim.endpoint(), Auth::ntlm(sim.user(), sim.password()));
        let res = Resource::wmi(WMI, "Win32_Service").selector("Name", "WinRM");
        c.get(&res).await.unwrap();
        sim.tamper_next_sealed_response();
        let e = c.get(&res).await.unwrap_err();
        // The server answered: not a logon failure, and the request may have run.
        assert!(
            matches!(&e, Error::ResponseIntegrity { source } if source.to_string().contains("signature")),
            "{e:?}"
        );
        assert!(!e.is_auth(), "{e:?}");
        assert!(e.may_have_executed(), "{e:?}");
        // The channel with the desynchronized context is gone; a new one authenticates.
        let again = c.get(&res).await.unwrap();
        assert_eq!(again.get_str("Name"), Some("WinRM"));
        assert_eq!(c.transport_stats().handshakes, 2);
    })
    .await;
}

#[tokio::test]
async fn tampered_receive_delivers_no_output_from_that_message() {
    within(async {
        let sim = Simulator::start_with(ntlm_sim_config()).await.unwrap();
        let c = client(&sim.endpoint(), Auth::ntlm(sim.user(), sim.password()));
        let shell = c.shell().open().await.unwrap();
        let cmd = shell
            .command("echo")
            .args(["secret-output"])
            .start()
            .await
            .unwrap();
        sim.tamper_next_sealed_response(); // the first Receive's answer
        let r = cmd.collect().await;
        match r {
            Err(e) => assert!(
                matches!(e, Error::ResponseIntegrity { .. }) && e.may_have_executed(),
                "{e:?}"
            ),
            Ok(out) => panic!("output delivered from a tampered message: {out:?}"),
        }
        let _ = shell.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_401_in_mid_session_reauthenticates_once_and_reseals() {
    within(async {
        let sim = Simulator::start_with(ntlm_sim_config()).await.unwrap();
        let c = client(&sim.endpoint(), Auth::ntlm(sim.user(), sim.password()));
        let res = Resource::wmi(WMI, "Win32_OperatingSystem");
        c.get(&res).await.unwrap();
        sim.forget_ntlm_contexts();
        c.get(&res).await.unwrap();
        let n = sim.counters();
        assert_eq!(n.connections, 1, "same connection: {n:?}");
        assert_eq!(n.ntlm_handshakes, 2);
        // The refused request was sealed anew under the new context: no failed unseal.
        assert_eq!(n.unseal_failures, 0);
        assert_eq!(n.sealed_messages, 2, "{n:?}");
    })
    .await;
}

#[tokio::test]
async fn a_second_401_after_reauthentication_is_a_typed_error() {
    within(async {
        let sim = Simulator::start_with(ntlm_sim_config()).await.unwrap();
        let c = client(&sim.endpoint(), Auth::ntlm(sim.user(), sim.password()));
        let res = Resource::wmi(WMI, "Win32_OperatingSystem");
        c.get(&res).await.unwrap();
        // The server forgets the context and refuses every new login: the client
        // re-authenticates once, is refused, and reports it, without looping.
        sim.refuse_ntlm_logins(true);
        sim.forget_ntlm_contexts();
        let before = sim.counters().requests;
        let e = c.get(&res).await.unwrap_err();
        match &e {
            Error::Unauthorized { offered } => assert_eq!(offered, &["Negotiate".to_string()]),
            other => panic!("expected Unauthorized, got {other:?}"),
        }
        // The refused sealed request, then NEGOTIATE and AUTHENTICATE once: three.
        assert_eq!(sim.counters().requests - before, 3, "{:?}", sim.counters());
        assert_eq!(sim.counters().ntlm_handshakes, 1);
        // The refused re-authentication counts as refused credentials: this client
        // logs on no more, even once logins work again (tests/logon.rs); a new client
        // does.
        sim.refuse_ntlm_logins(false);
        let before = sim.counters().requests;
        let e = c.get(&res).await.unwrap_err();
        assert!(
            matches!(&e, Error::Auth(m) if m.contains("no further logon")),
            "{e:?}"
        );
        assert_eq!(sim.counters().requests, before);
        client(&sim.endpoint(), Auth::ntlm(sim.user(), sim.password()))
            .get(&res)
            .await
            .unwrap();
        assert_eq!(sim.counters().ntlm_handshakes, 2);
    })
    .await;
}

/// A TCP proxy whose connections can all be cut at once.
async fn cutting_proxy(target: SocketAddr) -> (SocketAddr, Arc<Notify>, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cut = Arc::new(Notify::new());
    let alive = Arc::new(AtomicBool::new(true));
    let (cut2, alive2) = (Arc::clone(&cut), Arc::clone(&alive));
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let cut = Arc::clone(&cut2);
            let _ = &alive2;
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(target).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    () = cut.notified() => {}
                }
            });
        }
    });
    (addr, cut, alive)
}

#[tokio::test]
async fn a_cut_connection_reauthenticates_and_reseals() {
    within(async {
        let sim = Simulator::start_with(ntlm_sim_config()).await.unwrap();
        let (proxy, cut, _) = cutting_proxy(sim.addr()).await;
        let c = client(
            &format!("http://{proxy}/wsman"),
            Auth::ntlm(sim.user(), sim.password()),
        );
        let res = Resource::wmi(WMI, "Win32_OperatingSystem");
        c.get(&res).await.unwrap();
        cut.notify_waiters();
        tokio::time::sleep(Duration::from_millis(50)).await;
        c.get(&res).await.unwrap();
        let n = sim.counters();
        assert_eq!(n.connections, 2, "{n:?}");
        assert_eq!(n.ntlm_handshakes, 2, "one handshake per connection: {n:?}");
        assert_eq!(
            n.unseal_failures, 0,
            "a message sealed for the old context was re-sent"
        );
        assert_eq!(n.sealed_messages, 2);
    })
    .await;
}

#[tokio::test]
async fn allow_unencrypted_switch() {
    within(async {
        let sim = Simulator::start_with(ntlm_sim_config()).await.unwrap();
        let clear = Auth::ntlm(sim.user(), sim.password())
            .encryption(Encryption::Never)
            .allow_unencrypted(true);
        let c = client(&sim.endpoint(), clear.clone());
        match c.identify().await.unwrap_err() {
            e @ Error::UnencryptedRefused => {
                assert!(!e.may_have_executed() && !e.is_auth(), "{e:?}");
                assert!(e.to_string().contains("AllowUnencrypted"), "{e}");
            }
            other => panic!("expected the clear-text refusal, got {other:?}"),
        }
        let open = Simulator::start_with(SimConfig {
            allow_unencrypted: true,
            ..ntlm_sim_config()
        })
        .await
        .unwrap();
        let c = client(&open.endpoint(), clear);
        c.get(&Resource::wmi(WMI, "Win32_OperatingSystem"))
            .await
            .unwrap();
        assert_eq!(open.counters().sealed_messages, 0);
        assert_eq!(open.counters().ntlm_handshakes, 1);
        // Never over plain HTTP without the explicit allow is a configuration error.
        let e = Client::builder(open.endpoint())
            .auth(Auth::ntlm("u", "p").encryption(Encryption::Never))
            .build()
            .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e:?}");
    })
    .await;
}

#[tokio::test]
async fn basic_switch_and_offered_schemes() {
    within(async {
        let sim = Simulator::start_with(ntlm_sim_config()).await.unwrap();
        let c = Client::builder(sim.endpoint())
            .auth(Auth::basic(sim.user(), sim.password()))
            .allow_insecure_basic(true)
            .build()
            .unwrap();
        match c.identify().await.unwrap_err() {
            Error::Unauthorized { offered } => assert_eq!(offered, vec!["Negotiate".to_string()]),
            other => panic!("{other:?}"),
        }
        let with_basic = Simulator::start_with(SimConfig {
            allow_basic: true,
            ..ntlm_sim_config()
        })
        .await
        .unwrap();
        let c = client(
            &with_basic.endpoint(),
            Auth::ntlm(with_basic.user(), "wrong"),
        );
        match c.identify().await.unwrap_err() {
            Error::Unauthorized { offered } => assert_eq!(offered, vec!["Negotiate", "Basic"]),
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn debug_never_shows_the_password() {
    let c = client(
        "http://127.0.0.1:1/wsman",
        Auth::ntlm("CORP\\bob", "s3cr3t-Pa55"),
    );
    let d = format!("{c:?} {:?}", Auth::negotiate("bob@corp", "s3cr3t-Pa55"));
    assert!(d.contains("bob"), "{d}");
    assert!(!d.contains("s3cr3t"), "{d}");
    let e = c.identify().await.unwrap_err();
    assert!(!format!("{e:?} {e}").contains("s3cr3t"));
}

/// pyspnego's NTLM and Negotiate (SPNEGO) acceptors (tests/peers/servers/ntlm_server.py)
/// as the server: our client's handshake (raw NTLM, and NTLM inside SPNEGO with both
/// mechListMICs), sealing and unsealing against code no one here wrote.
#[tokio::test]
#[ignore = "needs Python with pyspnego (WINRM_PEER_PYTHON); .ci/run runs it with -- --ignored"]
async fn interop_with_pyspnego_acceptor() {
    // Ignored by default: run on purpose, a missing peer is a failure, never a skip.
    let python = pyspnego_peer::peer_python(&["tokio-winrm-peers-venv", "tokio-winrm-venv"])
        .unwrap_or_else(|reason| panic!("no pyspnego peer: {reason}"));
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/peers/servers/ntlm_server.py"
    );
    let (mut child, endpoint) = pyspnego_peer::start(&python, script, &[], false).await;
    within(async {
        for auth in [
            Auth::ntlm("vagrant", "vagrant"),
            Auth::negotiate("CORP\\vagrant", "vagrant"),
            // SPNEGO: pyspnego's Negotiate acceptor, NTLM inside, both mechListMICs.
            Auth::negotiate("vagrant", "vagrant").spnego(true),
            Auth::negotiate("CORP\\vagrant", "vagrant").spnego(true),
        ] {
            let c = client(&endpoint, auth);
            let id = c.identify().await.unwrap();
            assert!(format!("{id:?}").contains("pyspnego peer"), "{id:?}");
            let out = c.run("whoami", &[]).await.unwrap();
            assert_eq!(out.stdout, b"hello from pyspnego\r\n");
            assert_eq!(out.code, Some(0));
            let items = c
                .enumerate(&Resource::wmi(WMI, "Win32_Service"))
                .start()
                .collect_items()
                .await
                .unwrap();
            assert!(items.len() >= 2, "{items:?}");
            assert!(c.transport_stats().handshakes >= 1);
        }
        let bad = client(&endpoint, Auth::ntlm("vagrant", "wrong"));
        assert!(matches!(
            bad.identify().await.unwrap_err(),
            Error::Unauthorized { .. }
        ));
        let bad = client(&endpoint, Auth::negotiate("vagrant", "wrong").spnego(true));
        assert!(matches!(
            bad.identify().await.unwrap_err(),
            Error::Unauthorized { .. }
        ));
    })
    .await;
    pyspnego_peer::stop(&mut child).await;
}
