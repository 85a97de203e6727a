//! Kerberos through the system GSSAPI (feature `gssapi`) against a real MIT KDC: the
//! user's ticket cache after `kinit`, a client keytab, ticket reuse counted at the KDC
//! (one TGS exchange for 32 connections), typed errors (an expired ticket, no cache, a
//! principal the cache or keytab does not hold, a missing keytab, an unknown service),
//! the SPN override, and the channel binding over HTTPS. The simulator's acceptor is
//! sspi's (the same as for the password path), so the GSSAPI's tokens and wrap tokens
//! are checked against an independent implementation.
//!
//! The KDC comes from `tests/kdc/setup.sh` (run by `.ci/run`), which exports
//! `TOKIO_WINRM_KDC*` and `KRB5_CONFIG`; `kinit` comes from Debian's krb5-user. Each
//! test uses principals and ticket caches of its own (tests run in parallel).

#[path = "support/kdc_log.rs"]
mod kdc_log;
#[path = "support/parallel.rs"]
mod parallel;
#[path = "support/pki.rs"]
mod pki;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio_winrm::{Auth, Client, Error, KerberosErrorKind, KerberosOptions, Resource};
use winrm_simulator::{SimConfig, SimKerberos, Simulator};

const WMI: &str = "root/cimv2";
const IGNORE: &str = "needs the MIT KDC and system GSSAPI (.ci/run)";

struct Kdc {
    realm: String,
    keytab: String,
    client_keytab: String,
    dir: String,
}

fn kdc() -> Kdc {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set (start a KDC with: eval \"$(tests/kdc/setup.sh)\"; {IGNORE})")
        })
    };
    Kdc {
        realm: var("TOKIO_WINRM_KDC_REALM"),
        keytab: var("TOKIO_WINRM_KDC_KEYTAB"),
        client_keytab: var("TOKIO_WINRM_KDC_CLIENT_KEYTAB"),
        dir: var("TOKIO_WINRM_KDC_DIR"),
    }
}

async fn within<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test timed out");
}

/// `kinit user` (password: the user's name) into a ticket cache file of its own; its
/// `FILE:` name.
fn kinit(kdc: &Kdc, user: &str, tag: &str) -> String {
    let cache = format!("FILE:{}/cc-{tag}", kdc.dir);
    let mut child = Command::new("kinit")
        .arg(format!("{user}@{}", kdc.realm))
        .env("KRB5CCNAME", &cache)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("kinit (Debian: krb5-user)");
    writeln!(child.stdin.take().unwrap(), "{user}").unwrap();
    assert!(child.wait().unwrap().success(), "kinit {user}");
    cache
}

async fn simulator(kdc: &Kdc, users: &[&str]) -> Simulator {
    Simulator::start_with(SimConfig {
        users: users
            .iter()
            .map(|u| (u.to_string(), "unused-by-kerberos".to_string()))
            .collect(),
        allow_basic: false,
        allow_unauthenticated_identify: false,
        max_shells_per_user: 2 * CALLS,
        ping_interval: Duration::from_millis(10),
        kerberos: Some(SimKerberos::from_keytab(&kdc.keytab, "HTTP/localhost").unwrap()),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// A client of `http://localhost:PORT/wsman` (the default SPN is `HTTP/localhost`).
fn client(sim: &Simulator, auth: Auth) -> Client {
    Client::builder(format!("http://localhost:{}/wsman", sim.addr().port()))
        .auth(auth)
        .operation_timeout(Duration::from_secs(5))
        .max_channels(40)
        .build()
        .unwrap()
}

fn ccache(cache: &str) -> KerberosOptions {
    KerberosOptions {
        ccache: Some(cache.to_string()),
        ..KerberosOptions::default()
    }
}

fn kdc_exchanges(kdc: &Kdc, user: &str) -> (usize, usize) {
    kdc_log::exchanges(&kdc.dir, &kdc.realm, user)
}

async fn settled_kdc_exchanges(kdc: &Kdc, user: &str) -> (usize, usize) {
    kdc_log::settled_exchanges(&kdc.dir, &kdc.realm, user).await
}

const CALLS: usize = 32;

#[tokio::test]
#[ignore = "needs the MIT KDC and system GSSAPI (.ci/run)"]
async fn ticket_cache_after_kinit_seals_identify_get_and_a_command() {
    let kdc = kdc();
    within(async {
        let cache = kinit(&kdc, "gsscache", "cache");
        let sim = simulator(&kdc, &["gsscache"]).await;
        let auth = Auth::kerberos_ticket_cache(None).kerberos_options(ccache(&cache));
        assert!(format!("{auth:?}").contains("TicketCache"), "{auth:?}");
        let c = client(&sim, auth);
        let id = c.identify().await.unwrap();
        assert!(format!("{id:?}").contains("Microsoft"), "{id:?}");
        let os = c
            .get(&Resource::wmi(WMI, "Win32_OperatingSystem"))
            .await
            .unwrap();
        assert!(os.get_str("Caption").is_some(), "{os:?}");
        let out = c.run("echo", &["gssapi", "hello"]).await.unwrap();
        assert!(out.stdout_text().contains("gssapi hello"), "{out:?}");
        let items = c
            .enumerate(&Resource::wmi(WMI, "Win32_Service"))
            .start()
            .collect_items()
            .await
            .unwrap();
        assert!(items.len() >= 10, "{}", items.len());
        let k = sim.kerberos_counters();
        let t = c.transport_stats();
        assert_eq!(k.failures, 0, "{k:?}");
        assert_eq!(k.handshakes, t.handshakes, "{k:?} {t:?}");
        // Identify, Get, Create, Command, Receive(s), Signal, Delete, Enumerate, Pull...
        assert!(k.sealed_messages >= 8, "{k:?}");
        assert_eq!(sim.counters().ntlm_handshakes, 0);
        // A tampered sealed response fails its verification, typed; a new channel
        // authenticates again from the same credential.
        sim.tamper_next_kerberos_response();
        let res = Resource::wmi(WMI, "Win32_Service").selector("Name", "WinRM");
        let e = c.get(&res).await.unwrap_err();
        assert!(
            matches!(&e, Error::ResponseIntegrity { source } if source.to_string().contains("signature")),
            "{e:?}"
        );
        assert!(!e.is_auth() && e.may_have_executed(), "{e:?}");
        assert_eq!(c.get(&res).await.unwrap().get_str("Name"), Some("WinRM"));
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the MIT KDC and system GSSAPI (.ci/run)"]
async fn ticket_cache_32_connections_make_one_tgs_exchange() {
    let kdc = kdc();
    within(async {
        let cache = kinit(&kdc, "gssfanout", "fanout");
        let sim = simulator(&kdc, &["gssfanout"]).await;
        let before = kdc_exchanges(&kdc, "gssfanout");
        let c = client(
            &sim,
            Auth::kerberos_ticket_cache(Some(&format!("gssfanout@{}", kdc.realm)))
                .kerberos_options(ccache(&cache)),
        );
        for out in parallel::run_all_at_once(&sim, &c, CALLS).await {
            assert!(out.stdout_text().contains("released"));
        }
        let t = c.transport_stats();
        assert_eq!(
            (t.connects, t.handshakes),
            (CALLS as u64, CALLS as u64),
            "{t:?}"
        );
        let k = sim.kerberos_counters();
        assert_eq!((k.handshakes, k.failures), (CALLS as u64, 0), "{k:?}");
        let after = settled_kdc_exchanges(&kdc, "gssfanout").await;
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            (0, 1),
            "no AS exchange (kinit made it) and one TGS exchange for {CALLS} connections: \
             {before:?} -> {after:?}"
        );
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the MIT KDC and system GSSAPI (.ci/run)"]
async fn keytab_logon_32_connections_one_as_and_one_tgs_exchange() {
    let kdc = kdc();
    within(async {
        let sim = simulator(&kdc, &["gsskeytab"]).await;
        let before = kdc_exchanges(&kdc, "gsskeytab");
        let principal = format!("gsskeytab@{}", kdc.realm);
        let auth = Auth::kerberos_keytab(&principal, &kdc.client_keytab);
        let d = format!("{auth:?}");
        assert!(d.contains("Keytab") && d.contains("gsskeytab"), "{d}");
        let c = client(&sim, auth);
        for out in parallel::run_all_at_once(&sim, &c, CALLS).await {
            assert!(out.stdout_text().contains("released"));
        }
        let k = sim.kerberos_counters();
        assert_eq!((k.handshakes, k.failures), (CALLS as u64, 0), "{k:?}");
        let after = settled_kdc_exchanges(&kdc, "gsskeytab").await;
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            (1, 1),
            "one AS and one TGS exchange for {CALLS} connections: {before:?} -> {after:?}"
        );
        // A second client has its own credential (its own in-memory cache).
        let c2 = client(&sim, Auth::kerberos_keytab(&principal, &kdc.client_keytab));
        c2.identify().await.unwrap();
        let last = settled_kdc_exchanges(&kdc, "gsskeytab").await;
        assert_eq!((last.0 - after.0, last.1 - after.1), (1, 1));
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the MIT KDC and system GSSAPI (.ci/run)"]
async fn an_expired_ticket_is_a_typed_error_that_says_to_run_kinit() {
    let kdc = kdc();
    within(async {
        // gssexpire's tickets live 3 seconds (tests/kdc/setup.sh).
        let cache = kinit(&kdc, "gssexpire", "expire");
        let sim = simulator(&kdc, &["gssexpire"]).await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        let c = client(
            &sim,
            Auth::kerberos_ticket_cache(None).kerberos_options(ccache(&cache)),
        );
        let e = c.identify().await.unwrap_err();
        eprintln!("expired as expected: {e}");
        assert!(e.is_ticket_expired(), "{e:?}");
        assert!(e.is_auth());
        assert!(
            e.to_string().contains("expired") && e.to_string().contains("kinit"),
            "{e}"
        );
        assert_eq!(sim.counters().requests, 0, "nothing reached the server");
        // Not a refusal of the credentials: after a new kinit the same client works.
        kinit(&kdc, "gssexpire", "expire");
        c.identify().await.unwrap();
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the MIT KDC and system GSSAPI (.ci/run)"]
async fn wrong_principal_missing_cache_or_keytab_are_typed_errors() {
    let kdc = kdc();
    within(async {
        let cache = kinit(&kdc, "gsscache", "wrong");
        let sim = simulator(&kdc, &["gsscache"]).await;
        let kind = |auth: Auth| {
            let c = client(&sim, auth);
            async move {
                let e = c.identify().await.unwrap_err();
                eprintln!("refused as expected: {e}");
                assert!(e.is_auth(), "{e:?}");
                e.kerberos_kind()
            }
        };
        // A principal the cache does not hold.
        let nobody = format!("nobody@{}", kdc.realm);
        assert_eq!(
            kind(Auth::kerberos_ticket_cache(Some(&nobody)).kerberos_options(ccache(&cache))).await,
            Some(KerberosErrorKind::UnknownPrincipal)
        );
        // A principal the keytab does not hold.
        assert_eq!(
            kind(Auth::kerberos_keytab(&nobody, &kdc.client_keytab)).await,
            Some(KerberosErrorKind::UnknownPrincipal)
        );
        // No such cache.
        let missing = format!("FILE:{}/no-such-cache", kdc.dir);
        assert_eq!(
            kind(Auth::kerberos_ticket_cache(None).kerberos_options(ccache(&missing))).await,
            Some(KerberosErrorKind::NoCredentialCache)
        );
        // No such keytab: named in the error.
        let path = PathBuf::from(&kdc.dir).join("no-such.keytab");
        let c = client(
            &sim,
            Auth::kerberos_keytab(format!("gsskeytab@{}", kdc.realm), &path),
        );
        let e = c.identify().await.unwrap_err();
        assert_eq!(
            e.kerberos_kind(),
            Some(KerberosErrorKind::KeytabMissing),
            "{e:?}"
        );
        assert!(e.to_string().contains("no-such.keytab"), "{e}");
        // A service principal the KDC does not know.
        assert_eq!(
            kind(
                Auth::kerberos_ticket_cache(None).kerberos_options(KerberosOptions {
                    spn: Some("HTTP/no-such-host.tokio.test".into()),
                    ..ccache(&cache)
                })
            )
            .await,
            Some(KerberosErrorKind::UnknownService)
        );
        assert_eq!(sim.counters().requests, 0, "nothing reached the server");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the MIT KDC and system GSSAPI (.ci/run)"]
async fn spn_override_reaches_an_endpoint_by_ip_address_and_canonicalisation() {
    let kdc = kdc();
    within(async {
        let cache = kinit(&kdc, "gsscache", "spn");
        let sim = simulator(&kdc, &["gsscache"]).await;
        // By IP address the default SPN would be HTTP/127.0.0.1, which the KDC does not
        // know; the override names the service.
        let endpoint = format!("http://127.0.0.1:{}/wsman", sim.addr().port());
        let c = Client::builder(&endpoint)
            .auth(
                Auth::kerberos_ticket_cache(None).kerberos_options(KerberosOptions {
                    spn: Some(format!("HTTP/localhost@{}", kdc.realm)),
                    ..ccache(&cache)
                }),
            )
            .build()
            .unwrap();
        c.identify().await.unwrap();
        assert_eq!(sim.kerberos_counters().handshakes, 1);
        // DNS canonicalisation: localhost is its own canonical name, so the ticket is
        // for HTTP/localhost (an alias would become its CNAME target).
        let c = client(
            &sim,
            Auth::kerberos_ticket_cache(None).kerberos_options(KerberosOptions {
                canonicalize_host: true,
                ..ccache(&cache)
            }),
        );
        c.identify().await.unwrap();
        assert_eq!(sim.kerberos_counters().handshakes, 2);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs the MIT KDC and system GSSAPI (.ci/run)"]
async fn ticket_cache_over_https_with_the_channel_binding() {
    let kdc = kdc();
    within(async {
        let cache = kinit(&kdc, "gsscache", "https");
        let sim = Simulator::start_with(SimConfig {
            users: vec![("gsscache".into(), "unused".into())],
            allow_basic: false,
            allow_unencrypted: true,
            kerberos: Some(SimKerberos::from_keytab(&kdc.keytab, "HTTP/localhost").unwrap()),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let front = pki::start(sim.addr()).await;
        let c = Client::builder(format!("https://localhost:{}/wsman", front.port))
            .auth(Auth::kerberos_ticket_cache(None).kerberos_options(ccache(&cache)))
            .add_root_certificate_pem(front.ca_pem.as_bytes())
            .operation_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let out = c.run("echo", &["gssapi", "over", "tls"]).await.unwrap();
        assert!(out.stdout_text().contains("gssapi over tls"));
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

#[tokio::test]
#[ignore = "needs the MIT KDC and system GSSAPI (.ci/run)"]
async fn spnego_under_negotiate_negotiates_kerberos_and_seals_as_spnego() {
    let kdc = kdc();
    within(async {
        let cache = kinit(&kdc, "gsscache", "spnego");
        let sim = simulator(&kdc, &["gsscache"]).await;
        let c = client(
            &sim,
            Auth::kerberos_ticket_cache(None).kerberos_options(KerberosOptions {
                spnego: true,
                ..ccache(&cache)
            }),
        );
        c.identify().await.unwrap();
        let out = c.run("echo", &["spnego", "kerberos"]).await.unwrap();
        assert!(out.stdout_text().contains("spnego kerberos"), "{out:?}");
        let k = sim.kerberos_counters();
        assert_eq!(k.failures, 0, "{k:?}");
        assert!(k.handshakes >= 1, "{k:?}");
        assert_eq!(
            k.spnego_handshakes, k.handshakes,
            "every handshake SPNEGO: {k:?}"
        );
        assert!(k.sealed_messages >= 5, "{k:?}");
        assert_eq!(sim.counters().ntlm_handshakes, 0);
        // A tampered SPNEGO-framed response fails its verification.
        sim.tamper_next_kerberos_response();
        let e = c.identify().await.unwrap_err();
        assert!(
            matches!(&e, Error::ResponseIntegrity { source } if source.to_string().contains("signature")),
            "{e:?}"
        );
        assert!(!e.is_auth() && e.may_have_executed(), "{e:?}");
        // The password path does not do SPNEGO: a configuration error, nothing sent.
        let requests = sim.counters().requests;
        let c = client(
            &sim,
            Auth::kerberos("gsscache", "gsscache").kerberos_options(KerberosOptions {
                spnego: true,
                ..KerberosOptions::new(std::env::var("TOKIO_WINRM_KDC").unwrap(), &kdc.realm)
            }),
        );
        assert!(matches!(c.identify().await.unwrap_err(), Error::Config(_)));
        assert_eq!(sim.counters().requests, requests);
    })
    .await;
}

// ---- No credential material in a TRACE capture, in errors or in Debug ----

#[path = "support/log_capture.rs"]
mod log_capture;

#[tokio::test]
#[ignore = "needs the MIT KDC and system GSSAPI (.ci/run)"]
async fn a_trace_capture_of_a_keytab_session_holds_no_key_material() {
    let kdc = kdc();
    let logs = log_capture::capture();
    within(async {
        let sim = simulator(&kdc, &["gsskeytab"]).await;
        // A tee in front of the server: the AP-REQ and AP-REP it sees are looked for.
        let server = log_capture::TeeProxy::start(sim.addr()).await;
        let endpoint = format!("http://localhost:{}/wsman", server.addr().port());
        let principal = format!("gsskeytab@{}", kdc.realm);
        let auth = Auth::kerberos_keytab(&principal, &kdc.client_keytab);
        let c = Client::builder(&endpoint)
            .auth(auth.clone())
            .operation_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        c.identify().await.unwrap();
        let out = c.run("echo", &["keytab", "logged"]).await.unwrap();
        assert!(out.stdout_text().contains("keytab logged"));
        // An error too: a principal the keytab does not hold.
        let wrong = Client::builder(&endpoint)
            .auth(Auth::kerberos_keytab(
                format!("nobody@{}", kdc.realm),
                &kdc.client_keytab,
            ))
            .build()
            .unwrap();
        let e = wrong.identify().await.unwrap_err();
        let mut secrets = log_capture::Secrets::default();
        secrets.add_wire(&server.wire());
        assert!(secrets.tokens() >= 2, "{} tokens", secrets.tokens());
        // The keytab's bytes (its keys among them).
        let keytab = std::fs::read(&kdc.client_keytab).unwrap();
        secrets.add_raw_streams("client keytab", &[keytab]);
        let text = format!("{}\n{e}\n{e:?}\n{auth:?}\n{c:?}", logs.text());
        secrets.assert_absent_from(&text);
    })
    .await;
}
