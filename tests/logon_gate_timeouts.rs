//! Calls with credentials to a host that cannot be reached fail within about one connect
//! timeout, not one after another (the logon gate, `src/transport/logon.rs`).
//!
//! Before the first successful logon only one call at a time may carry credentials; the
//! others wait at the gate for its outcome. When that attempt could not reach the host
//! (here: a listener that accepts TCP and never answers the TLS handshake), nothing
//! reached the server, and the waiting calls fail at once with a connect error instead
//! of each making its own attempt in turn (16 calls were 16 connect timeouts before).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_winrm::{Auth, Client, Error};

const CALLS: usize = 16;
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// A listener on 127.0.0.1 that accepts TCP connections, holds them and never says a
/// word: its address and the count of connections it accepted.
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

fn auths() -> Vec<(&'static str, Auth)> {
    #[cfg_attr(not(feature = "kerberos"), allow(unused_mut))]
    let mut auths = vec![
        ("Basic", Auth::basic("bob", "pw")),
        ("NTLM", Auth::ntlm("bob", "pw")),
        ("SPNEGO", Auth::negotiate("bob", "pw").spnego(true)),
    ];
    #[cfg(feature = "kerberos")]
    auths.push((
        "Kerberos",
        Auth::kerberos("bob", "pw").kerberos_options(tokio_winrm::KerberosOptions::new(
            "127.0.0.1:1",
            "TOKIO.TEST",
        )),
    ));
    auths
}

#[tokio::test]
async fn concurrent_calls_with_credentials_to_a_black_hole_fail_within_one_connect_timeout() {
    for (name, auth) in auths() {
        let (addr, accepted) = black_hole().await;
        let c = Client::builder(format!("https://{addr}/wsman"))
            .auth(auth)
            .connect_timeout(CONNECT_TIMEOUT)
            .http_timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let start = Instant::now();
        let calls: Vec<_> = (0..CALLS)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move {
                    let r = c.identify().await;
                    (start.elapsed(), r.map(|_| ()))
                })
            })
            .collect();
        let mut attempts = 0;
        let mut last = Duration::ZERO;
        for call in calls {
            let (took, r) = tokio::time::timeout(Duration::from_secs(60), call)
                .await
                .expect("a call hung")
                .unwrap();
            last = last.max(took);
            let e = r.unwrap_err();
            let text = e.to_string();
            if text.contains("waited for") {
                // A call that waited at the gate: a connect error naming the host.
                assert!(matches!(e, Error::Connect { .. }), "{name}: {e:?}");
                assert!(
                    e.is_connect() && e.is_retryable() && e.is_timeout(),
                    "{name}: {e:?}"
                );
                assert!(
                    text.contains(&format!(
                        "the logon attempt this call waited for could not reach {addr}"
                    )),
                    "{name}: {text}"
                );
            } else {
                // An attempt of its own: the TLS handshake timed out.
                attempts += 1;
                assert!(e.is_connect(), "{name}: {e:?}");
                assert!(text.contains("timed out"), "{name}: {text}");
            }
            assert!(!e.may_have_executed() && !e.is_auth(), "{name}: {e:?}");
            assert!(!format!("{e:?}").contains("pw\""), "{name}: {e:?}");
        }
        // Generous for a loaded machine: one connect timeout is the figure (16 calls
        // took 16 of them before), and a call spawned late makes one more attempt.
        assert!(
            last < 3 * CONNECT_TIMEOUT,
            "{name}: the last of {CALLS} calls failed after {last:?}"
        );
        assert!(
            (1..=2).contains(&attempts),
            "{name}: {attempts} calls made attempts of their own"
        );
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            attempts,
            "{name}: one connection per attempt, none from the waiters"
        );
    }
}

/// After the attempt its waiters failed with, a later call makes an attempt of its own:
/// the host may be back.
#[tokio::test]
async fn a_later_call_makes_a_new_attempt() {
    let (addr, accepted) = black_hole().await;
    let c = Client::builder(format!("https://{addr}/wsman"))
        .auth(Auth::ntlm("bob", "pw"))
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .unwrap();
    let (a, b) = tokio::join!(c.identify(), c.identify());
    let waited = [&a, &b]
        .iter()
        .filter(|r| r.as_ref().unwrap_err().to_string().contains("waited for"))
        .count();
    assert_eq!(waited, 1, "{a:?} {b:?}");
    let e = c.identify().await.unwrap_err();
    assert!(!e.to_string().contains("waited for"), "{e}");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}
