//! What a relay on plain HTTP can forge when messages are sealed (NTLM): the server seals
//! its answers to a sealed request, faults included, but a 401 is always clear text.
//! A forged 401 must not make the client carry a write out twice, and a clear-text fault
//! in place of a sealed answer is not taken for the server's. And a TLS handshake that
//! never completes is a connect timeout (nothing was sent), not a TLS error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_winrm::{Auth, Client, Error};
use winrm_simulator::{SimConfig, Simulator};

const T: Duration = Duration::from_secs(30);

/// One HTTP/1.1 message with a `Content-Length` body (what the client and the simulator
/// send): its head and its bytes, or None at the end of the stream.
async fn message<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                fill(r, buf).await?;
            }
            return Some((head, buf.drain(..end + 4 + len).collect()));
        }
        fill(r, buf).await?;
    }
}

async fn fill<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 16 * 1024];
    match r.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

/// A relay to `server` that passes everything through, except that the server's answer
/// to the `nth` sealed request (1-based, over all connections) is replaced by `forged`
/// after the server has carried the request out.
async fn relay(server: SocketAddr, nth: usize, forged: String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sealed = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (sealed, forged) = (Arc::clone(&sealed), forged.clone());
            tokio::spawn(async move {
                let Ok(mut upstream) = TcpStream::connect(server).await else {
                    return;
                };
                let (mut from_client, mut from_server) = (Vec::new(), Vec::new());
                while let Some((head, request)) = message(&mut client, &mut from_client).await {
                    let n = if head.contains("multipart/encrypted") {
                        sealed.fetch_add(1, Ordering::SeqCst) + 1
                    } else {
                        0
                    };
                    if upstream.write_all(&request).await.is_err() {
                        return;
                    }
                    let Some((_, answer)) = message(&mut upstream, &mut from_server).await else {
                        return;
                    };
                    let out = if n == nth {
                        forged.as_bytes()
                    } else {
                        &answer[..]
                    };
                    if client.write_all(out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

const FORGED_401: &str =
    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n";

fn forged_fault() -> String {
    let fault = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header/><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:InternalError</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">Access is denied.</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>"#;
    format!(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{fault}",
        fault.len()
    )
}

async fn ntlm_sim(robust: bool) -> Simulator {
    Simulator::start_with(SimConfig {
        robust_connections: robust,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

fn ntlm_client(addr: SocketAddr, sim: &Simulator, robust: bool) -> Client {
    Client::builder(format!("http://{addr}/wsman"))
        .auth(Auth::ntlm(sim.user(), sim.password()))
        .robust_connections(robust)
        .build()
        .unwrap()
}

/// The sealed requests of `client.run`: the shell's Create (1), the Command (2), ...
const COMMAND: usize = 2;

#[tokio::test]
async fn a_forged_401_to_a_sealed_write_does_not_run_it_again() {
    let sim = ntlm_sim(false).await;
    let addr = relay(sim.addr(), COMMAND, FORGED_401.into()).await;
    let client = ntlm_client(addr, &sim, false);
    let err = tokio::time::timeout(T, client.run("echo", &["once"]))
        .await
        .expect("in time")
        .expect_err("the Command's answer was a forged 401");
    assert!(matches!(err, Error::ResponseLost { .. }), "{err:?}");
    assert!(err.may_have_executed() && !err.is_retryable(), "{err:?}");
    assert_eq!(sim.counters().commands_started, 1, "carried out once");
    client.shutdown().await;
}

#[tokio::test]
async fn with_robust_connections_a_forged_401_is_answered_from_the_servers_cache() {
    let sim = ntlm_sim(true).await;
    let addr = relay(sim.addr(), COMMAND, FORGED_401.into()).await;
    let client = ntlm_client(addr, &sim, true);
    let out = tokio::time::timeout(T, client.run("echo", &["once"]))
        .await
        .expect("in time")
        .expect("retransmitted under the same OperationID");
    assert_eq!(out.stdout_text(), "once\r\n");
    let c = sim.counters();
    assert_eq!(c.commands_started, 1, "carried out once: {c:?}");
    assert_eq!(c.robust_replays, 1, "answered from the cache: {c:?}");
    client.shutdown().await;
}

#[tokio::test]
async fn a_clear_text_fault_for_a_sealed_request_is_an_integrity_error() {
    let sim = ntlm_sim(true).await;
    let addr = relay(sim.addr(), COMMAND, forged_fault()).await;
    let client = ntlm_client(addr, &sim, true);
    let err = tokio::time::timeout(T, client.run("echo", &["once"]))
        .await
        .expect("in time")
        .expect_err("the Command's answer was a forged fault");
    assert!(matches!(err, Error::ResponseIntegrity { .. }), "{err:?}");
    assert!(err.may_have_executed() && err.fault().is_none(), "{err:?}");
    assert_eq!(sim.counters().commands_started, 1);
    client.shutdown().await;
}

#[tokio::test]
async fn a_tls_handshake_that_never_completes_is_a_connect_timeout() {
    // Accepts TCP and never answers the ClientHello.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = listener.accept().await {
            conns.push(c);
        }
    });
    let client = Client::builder(format!("https://{addr}/wsman"))
        .auth(Auth::basic("u", "p"))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = tokio::time::timeout(T, client.identify())
        .await
        .expect("in time")
        .expect_err("no TLS answer");
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        err.is_connect() && err.is_timeout() && err.is_retryable(),
        "{err:?}"
    );
    assert!(!err.may_have_executed());
    let text = err.to_string();
    assert!(
        text.contains(&addr.to_string()) && text.contains("TLS handshake"),
        "{text}"
    );
    held.abort();
}

#[tokio::test]
async fn a_handshake_failure_alert_explains_the_cipher_suites() {
    // What Schannel answers a ClientHello it shares no cipher suite with: a fatal
    // handshake_failure alert.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = listener.accept().await {
            let mut hello = [0u8; 1024];
            let _ = c.read(&mut hello).await;
            let _ = c.write_all(b"\x15\x03\x03\x00\x02\x02\x28").await;
        }
    });
    let client = Client::builder(format!("https://{addr}/wsman"))
        .auth(Auth::basic("u", "p"))
        .build()
        .unwrap();
    let err = tokio::time::timeout(T, client.identify())
        .await
        .expect("in time")
        .expect_err("no suite in common");
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("no cipher suite in common") && text.contains("ECDSA certificate"),
        "{text}"
    );
}
