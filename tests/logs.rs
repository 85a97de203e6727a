//! No credential material in any log, at any level (issue 10 §5): a TRACE capture of
//! whole sessions, client and in-process simulator, is grepped for the password, its
//! NT hash (MD4 of its UTF-16LE form) and the raw authentication tokens seen on the
//! wire (captured by a tee proxy between client and simulator), in the encodings a
//! log line could carry them: base64, hex, and Rust's `Debug` of a byte slice.
//!
//! sspi's own `tracing` events print its builders and buffers (the NTLM CHALLENGE and
//! AUTHENTICATE messages among them, enough to test password guesses offline); the
//! library runs every sspi call with tracing silenced (src/transport/context.rs).
//! Kerberos: tests/kerberos.rs (it needs the KDC).

#[path = "support/log_capture.rs"]
mod log_capture;

use std::time::Duration;

use tokio_winrm::{Auth, Client, Encryption, Resource};
use winrm_simulator::{SimConfig, Simulator};

use log_capture::{Secrets, TeeProxy, capture};

const USER: &str = "logger";
const PASSWORD: &str = "Pa55-w0rd-XYZZY";
const WMI: &str = "root/cimv2";

async fn simulator(basic: bool) -> Simulator {
    Simulator::start_with(SimConfig {
        users: vec![(USER.into(), PASSWORD.into())],
        allow_basic: basic,
        allow_unauthenticated_identify: true,
        ping_interval: Duration::from_millis(10),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// Identify, Get, a command and an enumeration: every kind of request; then a client
/// with a wrong password (a refused exchange is credential material as well).
async fn session(c: &Client, wrong: Auth) {
    c.identify().await.unwrap();
    c.get(&Resource::wmi(WMI, "Win32_OperatingSystem"))
        .await
        .unwrap();
    let out = c.run("echo", &["logged", "session"]).await.unwrap();
    assert!(out.stdout_text().contains("logged session"));
    let items = c
        .enumerate(&Resource::wmi(WMI, "Win32_Service"))
        .start()
        .collect_items()
        .await
        .unwrap();
    assert!(!items.is_empty());
    let wrong = Client::builder(c.endpoint())
        .auth(wrong)
        .allow_insecure_basic(true)
        .build()
        .unwrap();
    assert!(wrong.identify().await.unwrap_err().is_auth());
}

#[tokio::test]
async fn a_trace_capture_of_a_basic_session_holds_no_credentials() {
    let logs = capture();
    let sim = simulator(true).await;
    let proxy = TeeProxy::start(sim.addr()).await;
    let c = Client::builder(proxy.endpoint())
        .auth(Auth::basic(USER, PASSWORD))
        .allow_insecure_basic(true)
        .build()
        .unwrap();
    session(&c, Auth::basic(USER, "wrong-Pa55")).await;
    let mut secrets = Secrets::of_password(PASSWORD);
    secrets.add_wire(&proxy.wire());
    assert!(secrets.tokens() >= 2, "no Authorization seen on the wire");
    secrets.assert_absent_from(&logs.text());
}

#[tokio::test]
async fn a_trace_capture_of_a_sealed_ntlm_session_holds_no_credentials() {
    let logs = capture();
    let sim = simulator(false).await;
    let proxy = TeeProxy::start(sim.addr()).await;
    let c = Client::builder(proxy.endpoint())
        .auth(Auth::ntlm(USER, PASSWORD).encryption(Encryption::Always))
        .build()
        .unwrap();
    session(&c, Auth::ntlm(USER, "wrong-Pa55")).await;
    assert!(sim.counters().sealed_messages >= 4, "{:?}", sim.counters());
    let mut secrets = Secrets::of_password(PASSWORD);
    secrets.add_wire(&proxy.wire());
    // NEGOTIATE, CHALLENGE and AUTHENTICATE, at least once each.
    assert!(secrets.tokens() >= 3, "{} tokens", secrets.tokens());
    secrets.assert_absent_from(&logs.text());
}

#[tokio::test]
async fn a_trace_capture_of_a_sealed_spnego_session_holds_no_credentials() {
    let logs = capture();
    let sim = simulator(false).await;
    let proxy = TeeProxy::start(sim.addr()).await;
    let c = Client::builder(proxy.endpoint())
        .auth(
            Auth::negotiate(USER, PASSWORD)
                .spnego(true)
                .encryption(Encryption::Always),
        )
        .build()
        .unwrap();
    session(&c, Auth::negotiate(USER, "wrong-Pa55").spnego(true)).await;
    let n = sim.counters();
    assert!(
        n.spnego_ntlm_handshakes >= 1 && n.sealed_messages >= 4,
        "{n:?}"
    );
    let mut secrets = Secrets::of_password(PASSWORD);
    secrets.add_wire(&proxy.wire());
    // NegTokenInit, the CHALLENGE, the AUTHENTICATE and the final NegTokenResp.
    assert!(secrets.tokens() >= 4, "{} tokens", secrets.tokens());
    secrets.assert_absent_from(&logs.text());
}

/// An HTTP timeout not longer than the operation timeout cuts every long poll: `build`
/// says so in a warning (and still builds: a short HTTP timeout is how a caller fails
/// fast on a host that never answers). The default, and a longer one, say nothing.
#[tokio::test]
async fn a_http_timeout_not_longer_than_the_operation_timeout_is_warned_about() {
    let logs = capture();
    let warning = "the HTTP timeout is not longer than the operation timeout";
    let count = |text: &str| text.matches(warning).count();
    let before = count(&logs.text());
    Client::builder("http://127.0.0.1:1/wsman")
        .operation_timeout(Duration::from_secs(20))
        .http_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    Client::builder("http://127.0.0.1:1/wsman").build().unwrap();
    assert_eq!(count(&logs.text()), before, "no warning for these");
    Client::builder("http://127.0.0.1:1/wsman")
        .operation_timeout(Duration::from_secs(20))
        .http_timeout(Duration::from_secs(1))
        .build()
        .expect("still built");
    let text = logs.text();
    assert_eq!(count(&text), before + 1, "{text}");
    assert!(text.contains("WARN"), "{text}");
}
