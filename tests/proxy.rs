//! Proxies: HTTP `CONNECT` tunnels and SOCKS5 in front of the simulator, with NTLM
//! sealing inside the tunnel.
//!
//! Without anything installed: proxy URL parsing, credentials kept out of `Debug`,
//! `Display` and errors, and a tokio fake proxy that tunnels, refuses `CONNECT` (407,
//! 403), never answers (the connect timeout) or is not there at all: each refusal is an
//! [`Error::Proxy`] naming the proxy, never a request that "may have executed". The
//! `NO_PROXY`/`HTTP_PROXY` rules are unit tests in `src/transport/proxy.rs`.
//!
//! With real proxies (`#[ignore]`d; `.ci/run` installs pproxy from PyPI and runs them
//! with `TOKIO_WINRM_PPROXY` naming its executable): commands and a WQL query through
//! an HTTP `CONNECT` proxy, a SOCKS5 proxy with local and one with remote name
//! resolution, all with proxy credentials, and wrong proxy passwords refused with
//! [`Error::Proxy`].

#[path = "support/pki.rs"]
mod pki;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_winrm::{Auth, Client, Error, Proxy};
use winrm_simulator::{SimConfig, Simulator};

async fn within<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test timed out");
}

fn ntlm_sim_config() -> SimConfig {
    SimConfig {
        allow_basic: false,
        allow_unauthenticated_identify: false,
        ping_interval: Duration::from_millis(10),
        ..SimConfig::default()
    }
}

fn client_via(endpoint: &str, sim: &Simulator, proxy: Proxy) -> Client {
    Client::builder(endpoint)
        .auth(Auth::ntlm(sim.user(), sim.password()))
        .operation_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5))
        .max_channels(4)
        .proxy(proxy)
        .build()
        .unwrap()
}

/// Commands, a WQL query and a Get, sealed with NTLM, through whatever proxy `c` uses;
/// every connection authenticated once.
async fn sealed_session(c: &Client, sim: &Simulator) {
    let out = c.run("echo", &["through", "the", "proxy"]).await.unwrap();
    assert_eq!(out.code, Some(0));
    assert!(
        out.stdout_text().contains("through the proxy"),
        "{:?}",
        out.stdout_text()
    );
    let out = c.run("cmd", &["/c", "exit", "3"]).await.unwrap();
    assert_eq!(out.code, Some(3));
    let services = c
        .wql("root/cimv2", "SELECT * FROM Win32_Service")
        .start()
        .collect_items()
        .await
        .unwrap();
    assert!(!services.is_empty(), "the WQL query returned nothing");
    assert!(
        services
            .iter()
            .all(|s| s.instance().is_some_and(|i| i.get_str("Name").is_some())),
        "{services:?}"
    );
    let n = sim.counters();
    let t = c.transport_stats();
    assert!(n.sealed_messages >= 6, "{n:?}");
    assert_eq!(n.unseal_failures, 0, "{n:?}");
    assert_eq!(t.handshakes, t.connects, "one NTLM logon per tunnel: {t:?}");
}

// ---- URL parsing and secrets --------------------------------------------------------

#[test]
fn proxy_urls_parse_with_curls_defaults() {
    let p = Proxy::parse("http://proxy.corp:3128").unwrap();
    assert_eq!(p.to_string(), "http://proxy.corp:3128");
    assert!(!p.is_socks5());
    // No scheme: an HTTP proxy; no port: 1080.
    assert_eq!(
        Proxy::parse("proxy.corp").unwrap().to_string(),
        "http://proxy.corp:1080"
    );
    assert_eq!(
        Proxy::parse("socks5://10.0.0.1").unwrap().to_string(),
        "socks5://10.0.0.1:1080"
    );
    let p = Proxy::parse("SOCKS5H://[::1]:9050").unwrap();
    assert_eq!(p.to_string(), "socks5h://[::1]:9050");
    assert_eq!(p.authority(), "[::1]:9050");
    assert!(p.is_socks5());
    // The typed constructors.
    assert_eq!(
        Proxy::socks5("proxy.corp:1081").unwrap().to_string(),
        "socks5://proxy.corp:1081"
    );
    assert!(Proxy::http("proxy.corp:3128").is_ok());
    assert!(matches!(Proxy::http("socks5://p:1"), Err(Error::Config(_))));
    assert!(matches!(Proxy::socks5("http://p:1"), Err(Error::Config(_))));
    // Unsupported schemes and hosts are configuration errors that never repeat the
    // password.
    for bad in [
        "https://u:hunter2@proxy.corp:443",
        "socks4://u:hunter2@proxy.corp",
        "ftp://u:hunter2@proxy.corp",
        "http://u:hunter2@:3128",
    ] {
        let e = Proxy::parse(bad).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{bad}: {e:?}");
        assert!(!format!("{e} {e:?}").contains("hunter2"), "{e}");
    }
    // SOCKS5 credentials are at most 255 bytes (RFC 1929).
    let long = "x".repeat(256);
    assert!(Proxy::parse(&format!("socks5://u:{long}@p")).is_err());
    let sim_less = Client::builder("http://win1:5985/wsman")
        .proxy(Proxy::socks5("p:1").unwrap().credentials(long, "pw"))
        .build();
    assert!(matches!(sim_less, Err(Error::Config(_))));
}

#[test]
fn proxy_credentials_never_in_debug_or_display() {
    let from_url = Proxy::parse("http://alice:hunter2%21@proxy.corp:3128").unwrap();
    let given = Proxy::socks5("socks5h://proxy.corp")
        .unwrap()
        .credentials("alice", "hunter2!");
    for p in [&from_url, &given] {
        let shown = format!("{p:?} {p} {p:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("alice"), "the user name is shown: {shown}");
    }
    let builder = Client::builder("http://win1:5985/wsman")
        .auth(Auth::ntlm("bob", "s3cret"))
        .proxy(from_url);
    let shown = format!("{builder:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("proxy.corp:3128"), "{shown}");
    let client = builder.build().unwrap();
    assert!(!format!("{client:?}").contains("hunter2"));
}

// ---- A fake proxy (tokio) -----------------------------------------------------------

#[derive(Clone, Copy)]
enum Behaviour {
    /// Opens the tunnel (when the credentials match, if any are required).
    Tunnel,
    /// Answers every CONNECT with this response head.
    Refuse(&'static str),
    /// Accepts the connection and never answers.
    Silent,
}

struct FakeProxy {
    addr: SocketAddr,
    /// Every CONNECT request head received.
    heads: Arc<Mutex<Vec<String>>>,
}

impl FakeProxy {
    async fn start(behaviour: Behaviour, required_auth: Option<(&str, &str)>) -> FakeProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let expected = required_auth.map(|(u, p)| {
            format!(
                "proxy-authorization: basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
            .to_ascii_lowercase()
        });
        let seen = Arc::clone(&heads);
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let seen = Arc::clone(&seen);
                let expected = expected.clone();
                tokio::spawn(async move {
                    let Some(head) = read_head(&mut conn).await else {
                        return;
                    };
                    seen.lock().unwrap().push(head.clone());
                    match behaviour {
                        Behaviour::Silent => {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                        }
                        Behaviour::Refuse(answer) => {
                            let _ = conn.write_all(answer.as_bytes()).await;
                        }
                        Behaviour::Tunnel => {
                            if let Some(line) = &expected
                                && !head.to_ascii_lowercase().contains(line.as_str())
                            {
                                let _ = conn
                                    .write_all(
                                        b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                                          Proxy-Authenticate: Basic realm=\"fake\"\r\n\
                                          Content-Length: 0\r\n\r\n",
                                    )
                                    .await;
                                return;
                            }
                            let target = head
                                .lines()
                                .next()
                                .and_then(|l| l.split_whitespace().nth(1))
                                .unwrap_or("")
                                .to_string();
                            let Ok(mut upstream) = TcpStream::connect(&target).await else {
                                let _ = conn.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                                return;
                            };
                            let _ = conn
                                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                                .await;
                            let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
                        }
                    }
                });
            }
        });
        FakeProxy { addr, heads }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

async fn read_head(conn: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() > 8192 || conn.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    String::from_utf8(buf).ok()
}

/// An [`Error::Proxy`] that names `proxy` and says nothing "may have executed".
fn assert_proxy_error(e: &Error, proxy: SocketAddr) -> String {
    let Error::Proxy {
        proxy: named,
        message,
        ..
    } = e
    else {
        panic!("expected Error::Proxy, got {e:?}");
    };
    assert_eq!(named, &proxy.to_string(), "{e}");
    assert!(e.is_proxy() && e.is_connect(), "{e:?}");
    assert!(
        !e.may_have_executed(),
        "a refused tunnel sent nothing: {e:?}"
    );
    assert!(e.to_string().contains(&proxy.to_string()), "{e}");
    message.clone()
}

#[tokio::test]
async fn sealed_session_through_a_connect_tunnel_with_credentials() {
    within(async {
        let sim = Simulator::start_with(ntlm_sim_config()).await.unwrap();
        let proxy = FakeProxy::start(Behaviour::Tunnel, Some(("pxuser", "px pass"))).await;
        let c = client_via(
            &sim.endpoint(),
            &sim,
            Proxy::http(&proxy.url())
                .unwrap()
                .credentials("pxuser", "px pass"),
        );
        sealed_session(&c, &sim).await;
        // One CONNECT per connection, to the endpoint, with the proxy credentials.
        let heads = proxy.heads();
        let t = c.transport_stats();
        assert_eq!(heads.len() as u64, t.connects, "{heads:?} {t:?}");
        let connect_line = format!("CONNECT {} HTTP/1.1\r\n", sim.addr());
        assert!(
            heads.iter().all(|h| h.starts_with(&connect_line)),
            "{heads:?}"
        );
    })
    .await;
}

/// The simulator behind a TLS front (`support/pki.rs`): the `https://` endpoint
/// and the CA's PEM.
async fn tls_front(sim: &Simulator) -> (String, String) {
    let front = pki::start(sim.addr()).await;
    (
        format!("https://localhost:{}/wsman", front.port),
        front.ca_pem,
    )
}

#[tokio::test]
async fn https_endpoint_through_a_connect_tunnel() {
    within(async {
        // Basic inside TLS: the simulator behind the TLS front sees plain HTTP, so it
        // would insist on NTLM sealing, which the client rightly skips over https.
        let sim = Simulator::start().await.unwrap();
        let (endpoint, ca) = tls_front(&sim).await;
        let proxy = FakeProxy::start(Behaviour::Tunnel, None).await;
        let c = Client::builder(&endpoint)
            .auth(Auth::basic(sim.user(), sim.password()))
            .add_root_certificate_pem(ca.as_bytes())
            .proxy(Proxy::http(&proxy.url()).unwrap())
            .build()
            .unwrap();
        let out = c.run("echo", &["over", "tls"]).await.unwrap();
        assert!(
            out.stdout_text().contains("over tls"),
            "{:?}",
            out.stdout_text()
        );
        // The CONNECT names the endpoint by name; TLS (verified) runs inside the tunnel.
        let heads = proxy.heads();
        let port = endpoint
            .rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches("/wsman");
        assert!(!heads.is_empty());
        assert!(
            heads
                .iter()
                .all(|h| h.starts_with(&format!("CONNECT localhost:{port} HTTP/1.1\r\n"))),
            "{heads:?}"
        );
        assert_eq!(heads.len() as u64, c.transport_stats().connects);
    })
    .await;
}

#[tokio::test]
async fn connect_refused_with_407_is_a_typed_error_naming_the_proxy() {
    within(async {
        let sim = Simulator::start_with(ntlm_sim_config()).await.unwrap();
        let proxy = FakeProxy::start(Behaviour::Tunnel, Some(("pxuser", "right"))).await;
        let c = client_via(
            &sim.endpoint(),
            &sim,
            Proxy::http(&proxy.url())
                .unwrap()
                .credentials("pxuser", "wrong-pw"),
        );
        let e = c.run("echo", &["never"]).await.unwrap_err();
        let message = assert_proxy_error(&e, proxy.addr);
        assert!(message.contains("407 Proxy Authentication Required"), "{e}");
        assert!(message.contains("not accepted"), "{e}");
        assert!(message.contains("Basic"), "the offered scheme: {e}");
        assert!(!e.is_retryable(), "a refusal stays a refusal: {e:?}");
        assert!(!format!("{e} {e:?}").contains("wrong-pw"), "{e:?}");
        // The credentials were offered to the proxy, and nothing reached the server.
        let auth = base64::engine::general_purpose::STANDARD.encode("pxuser:wrong-pw");
        assert!(proxy.heads()[0].contains(&auth), "{:?}", proxy.heads());
        assert_eq!(sim.counters().requests, 0);

        // Without credentials the error says none were given.
        let c = client_via(&sim.endpoint(), &sim, Proxy::http(&proxy.url()).unwrap());
        let e = c.identify().await.unwrap_err();
        let message = assert_proxy_error(&e, proxy.addr);
        assert!(message.contains("none were given"), "{e}");
        assert_eq!(sim.counters().requests, 0);
    })
    .await;
}

#[tokio::test]
async fn connect_refused_with_403_reports_the_status_line() {
    within(async {
        let sim = Simulator::start_with(ntlm_sim_config()).await.unwrap();
        let proxy = FakeProxy::start(
            Behaviour::Refuse("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"),
            None,
        )
        .await;
        let c = client_via(&sim.endpoint(), &sim, Proxy::http(&proxy.url()).unwrap());
        let e = c.run("echo", &["never"]).await.unwrap_err();
        let message = assert_proxy_error(&e, proxy.addr);
        assert!(message.contains("HTTP/1.1 403 Forbidden"), "{e}");
        assert!(
            message.contains(&sim.addr().to_string()),
            "names the target: {e}"
        );
        assert_eq!(sim.counters().requests, 0);
    })
    .await;
}

#[tokio::test]
async fn unreachable_proxy_is_a_retryable_proxy_error() {
    within(async {
        // A port nobody listens on: bind, note it, close.
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let c = Client::builder("http://win1.example:5985/wsman")
            .auth(Auth::ntlm("u", "p"))
            .proxy(Proxy::socks5(&format!("socks5h://u:hunter2@{addr}")).unwrap())
            .build()
            .unwrap();
        let e = c.identify().await.unwrap_err();
        let message = assert_proxy_error(&e, addr);
        assert!(message.contains("cannot connect to the proxy"), "{e}");
        assert!(e.is_retryable(), "the proxy may come back: {e:?}");
        assert!(!format!("{e} {e:?}").contains("hunter2"));
    })
    .await;
}

#[tokio::test]
async fn connect_timeout_covers_the_proxy_handshake() {
    within(async {
        let proxy = FakeProxy::start(Behaviour::Silent, None).await;
        let c = Client::builder("http://win1.example:5985/wsman")
            .auth(Auth::ntlm("u", "p"))
            .connect_timeout(Duration::from_millis(300))
            .proxy(Proxy::http(&proxy.url()).unwrap())
            .build()
            .unwrap();
        let started = std::time::Instant::now();
        let e = c.identify().await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_proxy_error(&e, proxy.addr);
        assert!(e.is_timeout(), "{e:?}");
        assert_eq!(proxy.heads().len(), 1, "the CONNECT was sent");
    })
    .await;
}

// ---- Real proxies (pproxy) ----------------------------------------------------------

/// A pproxy process with an HTTP and a SOCKS5 listener, both requiring `user:pass`;
/// `--auth 0` so that no address stays authorized after a login. Killed on drop.
struct Pproxy {
    child: std::process::Child,
    http: SocketAddr,
    socks: SocketAddr,
    log: std::path::PathBuf,
}

const PX_USER: &str = "pxuser";
const PX_PASS: &str = "pxpass";

impl Pproxy {
    async fn start() -> Pproxy {
        let exe = std::env::var("TOKIO_WINRM_PPROXY")
            .expect("TOKIO_WINRM_PPROXY names the pproxy executable (.ci/run sets it)");
        let free = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        };
        let (http, socks) = (free(), free());
        let log = std::env::temp_dir().join(format!(
            "tokio-winrm-pproxy-{}-{}.log",
            std::process::id(),
            http.port()
        ));
        let child = std::process::Command::new(exe)
            .arg("-l")
            .arg(format!("http://{http}#{PX_USER}:{PX_PASS}"))
            .arg("-l")
            .arg(format!("socks5://{socks}#{PX_USER}:{PX_PASS}"))
            .args(["--auth", "0", "-v"])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start pproxy");
        let px = Pproxy {
            child,
            http,
            socks,
            log,
        };
        for addr in [http, socks] {
            let mut up = false;
            for _ in 0..100 {
                if TcpStream::connect(addr).await.is_ok() {
                    up = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(up, "pproxy did not listen on {addr}");
        }
        px
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Pproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

#[tokio::test]
#[ignore = "needs pproxy (.ci/run installs it)"]
async fn real_http_connect_proxy_carries_a_sealed_session() {
    within(async {
        let px = Pproxy::start().await;
        let sim = Simulator::start_with(ntlm_sim_config()).await.unwrap();
        let proxy = Proxy::http(&format!("http://{PX_USER}:{PX_PASS}@{}", px.http)).unwrap();
        let c = client_via(&sim.endpoint(), &sim, proxy);
        sealed_session(&c, &sim).await;
        let log = px.log();
        let tunnels = log.matches(&format!("-> {}", sim.addr())).count() as u64;
        assert_eq!(tunnels, c.transport_stats().connects, "{log}");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs pproxy (.ci/run installs it)"]
async fn real_socks5_proxy_carries_a_sealed_session_with_local_and_remote_resolution() {
    within(async {
        let px = Pproxy::start().await;
        let sim = Simulator::start_with(ntlm_sim_config()).await.unwrap();
        // By name, so that who resolves it shows in the proxy's log.
        let endpoint = format!("http://localhost:{}/wsman", sim.addr().port());

        // socks5://: the client resolves `localhost`; the proxy is given an address.
        let c = client_via(
            &endpoint,
            &sim,
            Proxy::socks5(&format!("socks5://{}", px.socks))
                .unwrap()
                .credentials(PX_USER, PX_PASS),
        );
        sealed_session(&c, &sim).await;
        let log = px.log();
        assert!(
            !log.contains("-> localhost:"),
            "resolved by the client: {log}"
        );
        let local = log.matches(&format!("-> {}", sim.addr())).count() as u64;
        assert_eq!(local, c.transport_stats().connects, "{log}");

        // socks5h://: the proxy resolves the name.
        let c = client_via(
            &endpoint,
            &sim,
            Proxy::socks5(&format!("socks5h://{PX_USER}:{PX_PASS}@{}", px.socks)).unwrap(),
        );
        sealed_session(&c, &sim).await;
        let log = px.log();
        let remote = log
            .matches(&format!("-> localhost:{}", sim.addr().port()))
            .count() as u64;
        assert_eq!(remote, c.transport_stats().connects, "{log}");
    })
    .await;
}

#[tokio::test]
#[ignore = "needs pproxy (.ci/run installs it)"]
async fn real_proxies_refusing_a_wrong_password_give_a_proxy_error() {
    within(async {
        let px = Pproxy::start().await;
        let sim = Simulator::start_with(ntlm_sim_config()).await.unwrap();
        let proxies = [
            (px.http, Proxy::http(&px.http.to_string()).unwrap()),
            (
                px.socks,
                Proxy::socks5(&format!("socks5h://{}", px.socks)).unwrap(),
            ),
        ];
        for (addr, proxy) in proxies {
            let c = client_via(
                &sim.endpoint(),
                &sim,
                proxy.credentials(PX_USER, "not-the-password"),
            );
            let e = c.run("echo", &["never"]).await.unwrap_err();
            let message = assert_proxy_error(&e, addr);
            assert!(!format!("{e} {e:?}").contains("not-the-password"), "{e:?}");
            if addr == px.http {
                assert!(message.contains("407"), "{e}");
            }
            assert!(!e.is_retryable(), "a refusal stays a refusal: {e:?}");
            // The WQL path fails the same way.
            let e = c
                .wql("root/cimv2", "SELECT * FROM Win32_Service")
                .start()
                .collect_items()
                .await
                .unwrap_err();
            assert_proxy_error(&e, addr);
        }
        assert_eq!(sim.counters().requests, 0, "nothing reached the server");
        assert!(px.log().contains("Unauthorized"), "{}", px.log());
    })
    .await;
}
