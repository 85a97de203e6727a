//! A logon whose verdict is lost: the server (or what is in between) takes the NTLM
//! AUTHENTICATE, the proof of the password, and then drops the connection or never
//! answers. Each further AUTHENTICATE would be another logon the domain controller
//! judges, so a wrong password would count towards the account's lockout once per call
//! and per retry. The client sends it once: the call is `LogonOutcomeUnknown` (not
//! retryable, even under a retry policy), and the calls that waited for that logon fail
//! with it without sending anything.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_winrm::{Auth, Client, Error, RetryPolicy};
use wsman_protocol::security::ntlm::{NtlmContext, message_type};

#[derive(Clone, Copy, Debug)]
enum Then {
    /// Close the connection once the AUTHENTICATE is read.
    Close,
    /// Keep it open and never answer.
    Hang,
    /// Never answer the NEGOTIATE (no credentials were sent yet).
    HangOnNegotiate,
}

/// A server that answers an NTLM NEGOTIATE with a real CHALLENGE and then does `then`
/// to the AUTHENTICATE; it counts the AUTHENTICATEs.
async fn verdict_losing_server(then: Then) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/wsman", listener.local_addr().unwrap());
    let authenticates = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&authenticates);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut server = NtlmContext::server();
                let mut buf = Vec::new();
                loop {
                    // One request: its head and its Content-Length body.
                    let head = loop {
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_string();
                            let len = head
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length").then(|| v.trim())
                                })
                                .and_then(|v| v.parse::<usize>().ok())
                                .unwrap_or(0);
                            if buf.len() >= end + 4 + len {
                                buf.drain(..end + 4 + len);
                                break head;
                            }
                        }
                        let mut chunk = [0u8; 4096];
                        match conn.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let token = head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        let v = v.trim().strip_prefix("Negotiate ")?;
                        k.eq_ignore_ascii_case("authorization")
                            .then(|| base64::engine::general_purpose::STANDARD.decode(v).ok())?
                    });
                    match token.as_deref().and_then(message_type) {
                        Some(1) if matches!(then, Then::HangOnNegotiate) => {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            return;
                        }
                        Some(1) => {
                            let challenge = server.accept(token.as_deref().unwrap(), None).unwrap();
                            let answer = format!(
                                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate {}\r\nContent-Length: 0\r\n\r\n",
                                base64::engine::general_purpose::STANDARD.encode(challenge)
                            );
                            if conn.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        Some(3) => {
                            count.fetch_add(1, Ordering::SeqCst);
                            if matches!(then, Then::Hang) {
                                tokio::time::sleep(Duration::from_secs(60)).await;
                            }
                            return;
                        }
                        _ => {
                            let answer = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n";
                            if conn.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (url, authenticates)
}

async fn thirty_two_calls(then: Then) {
    let (url, authenticates) = verdict_losing_server(then).await;
    let client = Client::builder(url)
        .auth(Auth::ntlm("bob", "perhaps-wrong"))
        .http_timeout(Duration::from_millis(500))
        .retry_policy(RetryPolicy::new().initial_backoff(Duration::from_millis(10)))
        .build()
        .unwrap();
    let calls = (0..32).map(|_| {
        let client = client.clone();
        async move { client.shell().open().await.map(|_| ()) }
    });
    let results = tokio::time::timeout(
        Duration::from_secs(30),
        futures_util::future::join_all(calls),
    )
    .await
    .expect("in time");
    for r in &results {
        let e = r.as_ref().expect_err("no verdict");
        assert!(
            matches!(e, Error::LogonOutcomeUnknown { .. }),
            "{then:?}: {e:?}"
        );
        assert!(
            !e.is_retryable() && !e.may_have_executed(),
            "{then:?}: {e:?}"
        );
    }
    assert_eq!(
        authenticates.load(Ordering::SeqCst),
        1,
        "{then:?}: one AUTHENTICATE for 32 calls under a retry policy"
    );
    // A later call may try again (the password is not known to be wrong).
    let e = client
        .shell()
        .open()
        .await
        .map(|_| ())
        .expect_err("still no verdict");
    assert!(matches!(e, Error::LogonOutcomeUnknown { .. }), "{e:?}");
    assert_eq!(authenticates.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connection_closed_after_the_authenticate_sends_it_once() {
    thirty_two_calls(Then::Close).await;
}

#[tokio::test]
async fn an_authenticate_never_answered_is_sent_once() {
    thirty_two_calls(Then::Hang).await;
}

#[tokio::test]
async fn a_handshake_that_times_out_before_the_proof_did_nothing() {
    let (url, authenticates) = verdict_losing_server(Then::HangOnNegotiate).await;
    let client = Client::builder(url)
        .auth(Auth::ntlm("bob", "pw"))
        .http_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(30), client.shell().open())
        .await
        .expect("in time")
        .map(|_| ())
        .expect_err("no CHALLENGE");
    // Not HttpTimeout, which says the request may have run: it was never sent.
    assert!(matches!(e, Error::Connection { .. }), "{e:?}");
    assert!(!e.may_have_executed() && e.is_retryable(), "{e:?}");
    assert_eq!(authenticates.load(Ordering::SeqCst), 0);
}
