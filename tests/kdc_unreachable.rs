//! A KDC that accepts TCP and never answers (feature `kerberos`, the password path; no
//! KDC or system library needed).
//!
//! The client waits for it once (the KDC timeout, 10 s), then remembers it as
//! unreachable for a while: Kerberos logons fail at once with
//! [`KerberosErrorKind::KdcUnreachable`], SPNEGO logons offer NTLM alone at once,
//! instead of every new connection waiting 10 s for the KDC again, one after another.
#![cfg(feature = "kerberos")]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_winrm::{Auth, Client, Error, KerberosErrorKind, KerberosOptions};
use winrm_simulator::{SimConfig, Simulator};

/// The KDC's time to answer (src/transport/kerberos.rs).
const KDC_TIMEOUT: Duration = Duration::from_secs(10);

async fn within<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(120), f)
        .await
        .expect("test timed out");
}

/// A TCP listener on 127.0.0.1 that accepts, holds the connections and never answers:
/// its address and the count of connections it accepted.
async fn black_hole() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(s);
        }
    });
    (addr, accepted)
}

async fn simulator() -> Simulator {
    Simulator::start_with(SimConfig {
        users: vec![("TOKIO.TEST\\vagrant".into(), "vagrant".into())],
        allow_unauthenticated_identify: false,
        ping_interval: Duration::from_millis(10),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// `http://localhost:PORT/wsman`: a host name, so that Kerberos is tried (`HTTP/localhost`).
fn endpoint(sim: &Simulator) -> String {
    format!("http://localhost:{}/wsman", sim.addr().port())
}

fn assert_kdc_unreachable(e: &Error, kdc: &str) {
    assert_eq!(
        e.kerberos_kind(),
        Some(KerberosErrorKind::KdcUnreachable),
        "{e:?}"
    );
    assert!(e.is_auth(), "{e:?}");
    assert!(!e.is_retryable() && !e.is_timeout(), "{e:?}");
    assert!(!e.may_have_executed(), "{e:?}");
    let text = e.to_string();
    assert!(text.contains(&format!("the KDC tcp://{kdc}")), "{text}");
    assert!(
        text.contains("did not answer within 10s") && text.contains("nothing was sent"),
        "{text}"
    );
    assert!(!format!("{e:?}").contains("\"vagrant\""), "{e:?}");
}

/// 8 calls at once with Kerberos: one KDC connection, every call fails with
/// `KdcUnreachable` about one KDC timeout after the start (8 timeouts one after another
/// before); a later call fails at once without asking the KDC; nothing reached WinRM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kerberos_fails_at_once_once_the_kdc_did_not_answer() {
    within(async {
        let (kdc, accepted) = black_hole().await;
        let sim = simulator().await;
        let c = Client::builder(endpoint(&sim))
            .auth(
                Auth::kerberos("vagrant", "vagrant")
                    .kerberos_options(KerberosOptions::new(&kdc, "TOKIO.TEST")),
            )
            .http_timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let start = Instant::now();
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move {
                    let r = c.identify().await;
                    (start.elapsed(), r.map(|_| ()))
                })
            })
            .collect();
        let mut last = Duration::ZERO;
        for call in calls {
            let (took, r) = call.await.unwrap();
            last = last.max(took);
            assert_kdc_unreachable(&r.unwrap_err(), &kdc);
        }
        assert!(
            last >= KDC_TIMEOUT - Duration::from_millis(500),
            "failed before the KDC timeout: {last:?}"
        );
        assert!(
            last < 2 * KDC_TIMEOUT,
            "the last of 8 calls failed after {last:?}"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "one KDC connection");
        // Later: at once, from the client's memory.
        let start = Instant::now();
        let e = c.identify().await.unwrap_err();
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        assert_kdc_unreachable(&e, &kdc);
        assert!(e.to_string().contains("asks the KDC again"), "{e}");
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "the KDC was not asked again"
        );
        assert_eq!(sim.counters().requests, 0, "nothing reached WinRM");
    })
    .await;
}

/// SPNEGO: the first logon waits for the KDC once and falls back to NTLM; the
/// connections opened after it offer NTLM alone at once (4 commands in parallel took 41 s
/// with 12 KDC connections before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spnego_falls_back_to_ntlm_at_once_once_the_kdc_did_not_answer() {
    within(async {
        let (kdc, accepted) = black_hole().await;
        let sim = simulator().await;
        let c = Client::builder(endpoint(&sim))
            .auth(
                Auth::negotiate("vagrant", "vagrant")
                    .spnego(true)
                    .kerberos_options(KerberosOptions::new(&kdc, "TOKIO.TEST")),
            )
            .http_timeout(Duration::from_secs(60))
            .operation_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        c.identify().await.unwrap();
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        let start = Instant::now();
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.run("echo", &["x"]).await })
            })
            .collect();
        for run in runs {
            let out = run.await.unwrap().unwrap();
            assert!(out.stdout_text().contains('x'), "{out:?}");
        }
        let took = start.elapsed();
        assert!(took < KDC_TIMEOUT / 2, "4 commands took {took:?}");
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "the KDC was asked again"
        );
        let n = sim.counters();
        assert!(n.spnego_ntlm_handshakes >= 2, "{n:?}");
        assert_eq!(n.failed_logons, 0, "{n:?}");
    })
    .await;
}

/// An HTTP timeout shorter than the KDC's: the call fails when the HTTP timeout strikes,
/// as `KdcUnreachable` (nothing was sent to WinRM), not as an HTTP timeout that may have
/// executed the request; the calls waiting at the logon gate for it fail with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_timeout_while_waiting_for_the_kdc_is_the_kdc_s_failure() {
    within(async {
        let (kdc, accepted) = black_hole().await;
        let sim = simulator().await;
        let http_timeout = Duration::from_secs(1);
        let c = Client::builder(endpoint(&sim))
            .auth(
                Auth::kerberos("vagrant", "vagrant")
                    .kerberos_options(KerberosOptions::new(&kdc, "TOKIO.TEST")),
            )
            .http_timeout(http_timeout)
            .build()
            .unwrap();
        let start = Instant::now();
        let calls: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move {
                    let r = c.identify().await;
                    (start.elapsed(), r.map(|_| ()))
                })
            })
            .collect();
        let mut timed_out = 0;
        for call in calls {
            let (took, r) = call.await.unwrap();
            // One HTTP timeout, not one per call (4 s); generous for a loaded machine.
            assert!(took < 3 * http_timeout, "{took:?}");
            let e = r.unwrap_err();
            assert_eq!(
                e.kerberos_kind(),
                Some(KerberosErrorKind::KdcUnreachable),
                "{e:?}"
            );
            assert!(!e.may_have_executed() && !e.is_retryable(), "{e:?}");
            let text = e.to_string();
            let own = format!("the KDC {kdc} did not answer within the HTTP timeout (1s)");
            assert!(
                text.contains(&own) && text.contains("nothing was sent"),
                "{text}"
            );
            if !text.contains("waited for") {
                timed_out += 1;
            }
        }
        assert_eq!(timed_out, 1, "one call waited for the KDC");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        assert_eq!(sim.counters().requests, 0, "nothing reached WinRM");
    })
    .await;
}
