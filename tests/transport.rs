//! Transport behaviour against scripted servers: TLS with a certificate generated here
//! (verified by default, a custom CA, the explicit dangerous switch), Basic refused over
//! plain HTTP, a closed connection replaced, and every way an HTTP exchange can go wrong
//! turned into a typed error with the client still usable afterwards.

#[path = "support/mini_http.rs"]
mod mini_http;
#[path = "support/pki.rs"]
mod pki;

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use mini_http::{Acceptor, Io, Reply, Server};
use pki::{Pki, pki};
use tokio_rustls::TlsAcceptor;
use tokio_winrm::{Auth, Client, ClientBuilder, Error, IdentifyResponse, Instance, Resource};

const IDENTIFY: &str = concat!(
    r#"<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body>"#,
    r#"<wsmid:IdentifyResponse xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">"#,
    r#"<wsmid:ProtocolVersion>http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd</wsmid:ProtocolVersion>"#,
    r#"<wsmid:ProductVendor>Microsoft Corporation</wsmid:ProductVendor>"#,
    r#"<wsmid:ProductVersion>OS: 10.0.17763 SP: 0.0 Stack: 3.0</wsmid:ProductVersion>"#,
    r#"</wsmid:IdentifyResponse></s:Body></s:Envelope>"#
);

const TIMEOUT: Duration = Duration::from_secs(10);

fn identify_reply() -> Reply {
    Reply::Bytes(mini_http::soap(200, IDENTIFY))
}

async fn identify(c: &Client) -> Result<IdentifyResponse, Error> {
    tokio::time::timeout(TIMEOUT, c.identify().into_future())
        .await
        .expect("the request hung")
}

fn check_identify(r: Result<IdentifyResponse, Error>) {
    let id = r.unwrap_or_else(|e| panic!("identify failed: {e:?}"));
    assert_eq!(id.product_vendor, "Microsoft Corporation");
    assert_eq!(id.stack_version(), Some("3.0"));
}

// ---- TLS ---------------------------------------------------------------------------

async fn tls_server(pki: &Pki) -> Server {
    let config = pki::server_config(pki.chain.clone(), &pki.key);
    let tls = TlsAcceptor::from(Arc::new(config));
    let acceptor: Acceptor = Arc::new(move |tcp| {
        let tls = tls.clone();
        Box::pin(async move {
            tls.accept(tcp)
                .await
                .ok()
                .map(|s| Box::new(s) as Box<dyn Io>)
        })
    });
    Server::start_with(acceptor, |_, _| identify_reply()).await
}

#[tokio::test]
async fn tls_with_the_test_ca_succeeds() {
    let pki = pki(&["localhost", "127.0.0.1"]);
    let server = tls_server(&pki).await;
    let port = server.addr.port();
    for host in ["localhost", "127.0.0.1"] {
        let c = Client::builder(format!("https://{host}:{port}/wsman"))
            .add_root_certificate_pem(pki.ca_pem.as_bytes())
            .build()
            .unwrap();
        check_identify(identify(&c).await);
        // Only the added CA, without the web PKI roots, works as well.
        let c = Client::builder(format!("https://{host}:{port}/wsman"))
            .add_root_certificate_pem(pki.ca_pem.as_bytes())
            .only_added_roots(true)
            .build()
            .unwrap();
        check_identify(identify(&c).await);
    }
    // Basic over https needs no special permission, and the password goes encrypted.
    let c = Client::builder(format!("https://localhost:{port}/wsman"))
        .auth(Auth::basic("user", "pw"))
        .add_root_certificate_pem(pki.ca_pem.as_bytes())
        .build()
        .unwrap();
    check_identify(identify(&c).await);
    assert_eq!(
        server.requests().last().unwrap().header("authorization"),
        Some("Basic dXNlcjpwdw==")
    );
}

#[tokio::test]
async fn tls_verification_failures_are_tls_errors() {
    let pki = pki(&["localhost", "127.0.0.1"]);
    let server = tls_server(&pki).await;
    let port = server.addr.port();
    // Unknown issuer: the test CA is not trusted.
    let c = Client::builder(format!("https://localhost:{port}/wsman"))
        .build()
        .unwrap();
    match identify(&c).await {
        Err(Error::Tls { message: m, source }) => {
            assert!(m.to_ascii_lowercase().contains("certificate"), "{m}");
            assert!(source.is_some(), "the rustls error is kept as the source");
        }
        other => panic!("expected Error::Tls, got {other:?}"),
    }
    // Wrong name: trusted CA, but the certificate is for another host.
    let other = self::pki(&["winrm.example.test"]);
    let server2 = tls_server(&other).await;
    let c = Client::builder(format!("https://localhost:{}/wsman", server2.addr.port()))
        .add_root_certificate_pem(other.ca_pem.as_bytes())
        .build()
        .unwrap();
    match identify(&c).await {
        Err(Error::Tls { message: m, source }) => {
            assert!(m.to_ascii_lowercase().contains("certificate"), "{m}");
            assert!(source.is_some(), "the rustls error is kept as the source");
        }
        other => panic!("expected Error::Tls, got {other:?}"),
    }
    assert!(
        server.requests().is_empty() && server2.requests().is_empty(),
        "no request may pass a failed handshake"
    );
    // The explicit dangerous switch accepts both.
    for port in [port, server2.addr.port()] {
        let c = Client::builder(format!("https://localhost:{port}/wsman"))
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        check_identify(identify(&c).await);
    }
}

#[test]
fn invalid_pem_is_a_config_error() {
    let r = Client::builder("https://localhost/wsman")
        .add_root_certificate_pem(b"not a certificate")
        .build();
    assert!(matches!(r, Err(Error::Config(_))), "{r:?}");
}

// ---- configuration and secrets -------------------------------------------------------

#[test]
fn basic_over_plain_http_is_refused_unless_allowed() {
    let build = |b: ClientBuilder| b.auth(Auth::basic("user", "pw")).build();
    let r = build(Client::builder("http://127.0.0.1:5985/wsman"));
    match r {
        Err(Error::Config(m)) => assert!(m.contains("allow_insecure_basic"), "{m}"),
        other => panic!("expected Error::Config, got {other:?}"),
    }
    assert!(
        build(Client::builder("http://127.0.0.1:5985/wsman").allow_insecure_basic(true)).is_ok()
    );
    assert!(build(Client::builder("https://127.0.0.1:5986/wsman")).is_ok());
    assert!(
        Client::builder("http://127.0.0.1:5985/wsman")
            .build()
            .is_ok(),
        "no credentials, no objection"
    );
}

#[test]
fn error_is_send_sync_static() {
    fn check<T: Send + Sync + std::error::Error + 'static>() {}
    check::<Error>();
}

#[test]
fn debug_never_shows_the_password() {
    let secret = "s3cr3t-Pa55word";
    let builder =
        Client::builder("https://host:5986/wsman").auth(Auth::basic("DOMAIN\\bob", secret));
    let b = format!("{builder:?}");
    assert!(!b.contains(secret), "{b}");
    let client = builder.build().unwrap();
    let c = format!("{client:?} {client:#?}");
    assert!(!c.contains(secret), "{c}");
    assert!(c.contains("bob"), "the user name is not a secret: {c}");
    let a = format!("{:?}", Auth::basic("bob", secret));
    assert!(!a.contains(secret), "{a}");
}

// ---- connection recovery -------------------------------------------------------------

async fn recovery(close_header: bool, pause: Duration) {
    let server = Server::start(move |_, _| {
        let headers: &[(&str, &str)] = if close_header {
            &[("Connection", "close")]
        } else {
            &[]
        };
        Reply::BytesThenClose(mini_http::response(
            200,
            "application/soap+xml;charset=UTF-8",
            IDENTIFY.as_bytes(),
            headers,
        ))
    })
    .await;
    let c = Client::builder(server.url()).build().unwrap();
    check_identify(identify(&c).await);
    tokio::time::sleep(pause).await;
    check_identify(identify(&c).await);
    check_identify(identify(&c).await);
    assert_eq!(c.transport_stats().connects, 3);
    assert_eq!(server.connections(), 3);
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn connection_close_header_between_requests_is_recovered() {
    recovery(true, Duration::ZERO).await;
}

#[tokio::test]
async fn silent_close_between_requests_is_recovered() {
    // At once (the client may not have seen the close yet) and after a pause.
    recovery(false, Duration::ZERO).await;
    recovery(false, Duration::from_millis(100)).await;
}

#[tokio::test]
async fn one_request_then_close_means_two_connects() {
    let server = Server::start(|i, _| match i {
        0 => Reply::BytesThenClose(mini_http::soap(200, IDENTIFY)),
        _ => identify_reply(),
    })
    .await;
    let c = Client::builder(server.url()).build().unwrap();
    check_identify(identify(&c).await);
    check_identify(identify(&c).await);
    check_identify(identify(&c).await);
    assert_eq!(c.transport_stats().connects, 2);
    assert_eq!(server.connections(), 2);
}

// ---- typed HTTP errors ----------------------------------------------------------------

/// A server whose first reply is `first`, and every later one a good Identify.
async fn first_then_ok(first: impl Fn() -> Reply + Send + Sync + 'static) -> Server {
    Server::start(move |i, _| if i == 0 { first() } else { identify_reply() }).await
}

/// Whether the failing exchange must leave its connection behind.
#[derive(PartialEq)]
enum Conn {
    /// The connection is broken (or its state unknown): the next request needs a new one.
    Replaced,
    /// The HTTP exchange was complete: reusing or replacing the connection are both fine.
    Either,
}

/// Runs one failing request, checks the client still works afterwards, and returns the
/// error.
async fn fails_then_recovers(server: &Server, builder: ClientBuilder, conn: Conn) -> Error {
    let c = builder.build().unwrap();
    let err = identify(&c).await.expect_err("the first request must fail");
    check_identify(identify(&c).await);
    assert_eq!(server.requests().len(), 2);
    let connects = c.transport_stats().connects;
    if conn == Conn::Replaced {
        assert_eq!(
            connects, 2,
            "after {err:?} the broken connection is replaced"
        );
    } else {
        assert!((1..=2).contains(&connects), "{connects} connects");
    }
    err
}

/// Invoke Win32_Process.Create (a write) against `server`, whose first reply fails:
/// the error, after checking that the request went out once and that the client still
/// works.
async fn write_fails_then_recovers(server: &Server) -> Error {
    let c = Client::builder(server.url()).build().unwrap();
    let call = c.invoke(
        &Resource::new("wmicimv2/Win32_Process"),
        "Create",
        &Instance::new("Create_INPUT").with("CommandLine", "notepad.exe"),
    );
    let err = tokio::time::timeout(TIMEOUT, call.into_future())
        .await
        .expect("the request hung")
        .expect_err("the first request must fail");
    assert_eq!(server.requests().len(), 1, "a write is never sent twice");
    check_identify(identify(&c).await);
    assert_eq!(server.requests().len(), 2);
    assert_eq!(
        c.transport_stats().connects,
        2,
        "the broken connection is replaced"
    );
    err
}

/// A named way of losing a response.
type LostCase = (&'static str, fn() -> Reply);

/// The replies of a server that loses the connection while answering.
fn lost_responses() -> Vec<LostCase> {
    vec![
        ("Content-Length promises more than arrives", || {
            let mut r = mini_http::soap(200, IDENTIFY);
            r.truncate(r.len() - IDENTIFY.len() / 2);
            Reply::BytesThenClose(r)
        }),
        ("a chunked body cut inside a chunk", || {
            let mut r = mini_http::chunked(200, "application/soap+xml", IDENTIFY.as_bytes(), 64);
            r.truncate(r.len() / 2);
            Reply::BytesThenClose(r)
        }),
        ("closed before any byte of the response", || {
            Reply::BytesThenClose(Vec::new())
        }),
    ]
}

#[tokio::test]
async fn a_write_whose_response_is_lost_is_response_lost_and_never_resent() {
    for (case, reply) in lost_responses() {
        let server = first_then_ok(reply).await;
        let err = write_fails_then_recovers(&server).await;
        assert!(matches!(err, Error::ResponseLost { .. }), "{case}: {err:?}");
        assert!(
            err.may_have_executed() && !err.is_retryable(),
            "{case}: {err:?}"
        );
        assert!(
            std::error::Error::source(&err).is_some(),
            "{case}: hyper's error is kept as the source"
        );
    }
}

#[tokio::test]
async fn a_read_whose_response_is_lost_is_sent_again_on_a_fresh_connection() {
    for (case, reply) in lost_responses() {
        let server = first_then_ok(reply).await;
        let c = Client::builder(server.url()).build().unwrap();
        check_identify(identify(&c).await);
        assert_eq!(server.requests().len(), 2, "{case}");
        let stats = c.transport_stats();
        assert_eq!((stats.connects, stats.reconnects), (2, 1), "{case}");
    }
}

#[tokio::test]
async fn non_soap_500_is_http_error_with_excerpt() {
    let html = "<html><head><title>Internal Server Error</title></head><body>Something broke</body></html>";
    let server = first_then_ok(move || {
        Reply::Bytes(mini_http::response(500, "text/html", html.as_bytes(), &[]))
    })
    .await;
    let err = fails_then_recovers(&server, Client::builder(server.url()), Conn::Either).await;
    match &err {
        Error::Http {
            status: 500,
            excerpt,
        } => assert!(
            excerpt.starts_with("<html><head><title>Internal"),
            "{excerpt}"
        ),
        other => panic!("expected Error::Http 500, got {other:?}"),
    }
}

#[tokio::test]
async fn unauthorized_lists_the_offered_schemes() {
    let server = first_then_ok(|| {
        Reply::Bytes(mini_http::response(
            401,
            "text/plain",
            b"",
            &[
                ("WWW-Authenticate", "Negotiate"),
                ("WWW-Authenticate", "Basic realm=\"WSMAN\""),
            ],
        ))
    })
    .await;
    let b = Client::builder(server.url())
        .auth(Auth::basic("bob", "wrong-password"))
        .allow_insecure_basic(true);
    let c = b.build().unwrap();
    let err = identify(&c).await.unwrap_err();
    match &err {
        Error::Unauthorized { offered } => assert_eq!(offered, &["Negotiate", "Basic"]),
        other => panic!("expected Error::Unauthorized, got {other:?}"),
    }
    assert!(err.is_auth());
    assert!(!format!("{err} {err:?}").contains("wrong-password"));
    // Refused credentials: the client sends no further logon (issue 10 §3).
    let again = identify(&c).await.unwrap_err();
    assert!(
        matches!(&again, Error::Auth(m) if m.contains("no further logon")),
        "{again:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn status_413_is_http_error() {
    let server = first_then_ok(|| {
        Reply::Bytes(mini_http::response(
            413,
            "text/plain",
            b"request too large",
            &[],
        ))
    })
    .await;
    let err = fails_then_recovers(&server, Client::builder(server.url()), Conn::Either).await;
    match &err {
        Error::Http {
            status: 413,
            excerpt,
        } => assert!(excerpt.contains("request too large"), "{excerpt}"),
        other => panic!("expected Error::Http 413, got {other:?}"),
    }
}

fn huge_envelope() -> String {
    let filler = "x".repeat(100 * 1024);
    IDENTIFY.replace("Microsoft Corporation", &filler)
}

fn check_too_large(err: &Error) {
    match err {
        Error::ResponseTooLarge {
            status,
            limit,
            excerpt,
        } => {
            assert_eq!((*status, *limit), (200, 64 * 1024));
            assert!(excerpt.starts_with("<s:Envelope"), "{excerpt}");
            assert!(
                excerpt.len() <= 1024,
                "the excerpt stays short: {}",
                excerpt.len()
            );
        }
        other => panic!("expected Error::ResponseTooLarge, got {other:?}"),
    }
}

#[tokio::test]
async fn body_over_the_cap_with_content_length() {
    let server = first_then_ok(|| Reply::Bytes(mini_http::soap(200, &huge_envelope()))).await;
    let err = fails_then_recovers(
        &server,
        Client::builder(server.url()).max_response_bytes(64 * 1024),
        Conn::Replaced,
    )
    .await;
    check_too_large(&err);
}

#[tokio::test]
async fn body_over_the_cap_chunked() {
    let server = first_then_ok(|| {
        Reply::Bytes(mini_http::chunked(
            200,
            "application/soap+xml",
            huge_envelope().as_bytes(),
            4096,
        ))
    })
    .await;
    let err = fails_then_recovers(
        &server,
        Client::builder(server.url()).max_response_bytes(64 * 1024),
        Conn::Replaced,
    )
    .await;
    check_too_large(&err);
}

#[tokio::test]
async fn body_under_the_cap_passes_chunked() {
    let server = Server::start(|_, _| {
        Reply::Bytes(mini_http::chunked(
            200,
            "application/soap+xml",
            IDENTIFY.as_bytes(),
            7,
        ))
    })
    .await;
    let c = Client::builder(server.url())
        .max_response_bytes(64 * 1024)
        .build()
        .unwrap();
    check_identify(identify(&c).await);
    check_identify(identify(&c).await);
    assert_eq!(c.transport_stats().connects, 1);
}

#[tokio::test]
async fn malformed_xml_is_a_parse_error() {
    let server =
        first_then_ok(|| Reply::Bytes(mini_http::soap(200, "<s:Envelope xmlns:s=\"x\"><s:Body>")))
            .await;
    let err = fails_then_recovers(&server, Client::builder(server.url()), Conn::Either).await;
    assert!(matches!(err, Error::Parse(_)), "{err:?}");
    // Well-formed, but not a SOAP envelope.
    let server =
        first_then_ok(|| Reply::Bytes(mini_http::soap(200, "<html><body>hello</body></html>")))
            .await;
    let c = Client::builder(server.url()).build().unwrap();
    let err = identify(&c).await.unwrap_err();
    assert!(matches!(err, Error::Parse(_)), "{err:?}");
    check_identify(identify(&c).await);
}

#[tokio::test]
async fn a_server_that_never_answers_is_an_http_timeout() {
    let server = first_then_ok(|| Reply::Hang).await;
    let started = tokio::time::Instant::now();
    let builder = Client::builder(server.url()).http_timeout(Duration::from_millis(200));
    let err = fails_then_recovers(&server, builder, Conn::Replaced).await;
    assert!(
        matches!(err, Error::HttpTimeout(d) if d == Duration::from_millis(200)),
        "{err:?}"
    );
    assert!(err.is_timeout());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn every_request_carries_the_client_headers_and_its_own_length() {
    // The headers come from one map per client: Basic's Authorization on each request,
    // none on an unauthenticated Identify, and each body's own Content-Length.
    let server = Server::start(|_, _| identify_reply()).await;
    let c = Client::builder(server.url())
        .auth(Auth::basic("user", "pw"))
        .allow_insecure_basic(true)
        .build()
        .unwrap();
    check_identify(identify(&c).await);
    check_identify(c.identify_unauthenticated().await);
    check_identify(identify(&c).await);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    for (i, r) in requests.iter().enumerate() {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/wsman");
        assert_eq!(
            r.header("content-type"),
            Some("application/soap+xml;charset=UTF-8")
        );
        assert_eq!(r.header("host"), Some(server.addr.to_string().as_str()));
        let length = r.body.len().to_string();
        assert_eq!(r.header("content-length"), Some(length.as_str()), "{i}");
        assert_eq!(
            r.headers
                .iter()
                .filter(|(n, _)| n == "content-length")
                .count(),
            1
        );
        let unauthenticated = i == 1;
        assert_eq!(
            r.header("authorization"),
            (!unauthenticated).then_some("Basic dXNlcjpwdw=="),
            "{i}"
        );
        assert_eq!(
            r.header("wsmanidentify"),
            unauthenticated.then_some("unauthenticated"),
            "{i}"
        );
    }
}

#[tokio::test]
async fn a_handshake_leg_without_a_body_says_content_length_0() {
    // hyper sends no Content-Length for an empty body; a POST without one may be refused
    // (411), so the NTLM legs carry it explicitly.
    let server = Server::start(|_, _| {
        Reply::Bytes(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n"
                .to_vec(),
        )
    })
    .await;
    let c = Client::builder(server.url())
        .auth(Auth::ntlm("user", "pw"))
        .build()
        .unwrap();
    assert!(identify(&c).await.is_err());
    let requests = server.requests();
    let leg = requests.first().expect("the NEGOTIATE leg");
    assert!(leg.body.is_empty());
    assert_eq!(leg.header("content-length"), Some("0"));
    assert!(
        leg.header("authorization")
            .is_some_and(|v| v.starts_with("Negotiate ")),
        "{leg:?}"
    );
}

#[tokio::test]
async fn a_channel_times_each_request_from_its_own_start() {
    // Each channel keeps one timer and moves its deadline per request: the deadline of an
    // earlier request on the same connection must neither cut a later one short nor
    // leave it without a limit.
    let server = Server::start(|i, _| {
        if i == 1 {
            Reply::Hang
        } else {
            identify_reply()
        }
    })
    .await;
    let timeout = Duration::from_millis(300);
    let c = Client::builder(server.url())
        .http_timeout(timeout)
        .build()
        .unwrap();
    check_identify(identify(&c).await);
    // Past half the first request's timeout: its deadline passes while the next one waits.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = tokio::time::Instant::now();
    let err = identify(&c).await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(err, Error::HttpTimeout(d) if d == timeout),
        "{err:?}"
    );
    assert!(waited >= timeout, "cut short after {waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    // The channel of the timed-out request was dropped; the next one works.
    check_identify(identify(&c).await);
    assert_eq!(c.transport_stats().connects, 2);
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let c = Client::builder(format!("http://{addr}/wsman"))
        .build()
        .unwrap();
    let err = identify(&c).await.unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
}
