//! Trust decisions against a loopback TLS server with certificates made here: a pinned
//! self-signed certificate that the web PKI roots refuse, a pin mismatch that names the
//! presented fingerprint, several pins (a renewal), pins in both notations and refused
//! malformed ones, an unknown CA that says so, and the operating system's trust store.

#[path = "support/mini_http.rs"]
mod mini_http;
#[path = "support/pki.rs"]
mod pki;

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use mini_http::{Acceptor, Io, Reply, Server};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_winrm::{Client, Error, IdentifyResponse};

const IDENTIFY: &str = concat!(
    r#"<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body>"#,
    r#"<wsmid:IdentifyResponse xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">"#,
    r#"<wsmid:ProtocolVersion>http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd</wsmid:ProtocolVersion>"#,
    r#"<wsmid:ProductVendor>Microsoft Corporation</wsmid:ProductVendor>"#,
    r#"<wsmid:ProductVersion>OS: 10.0.17763 SP: 0.0 Stack: 3.0</wsmid:ProductVersion>"#,
    r#"</wsmid:IdentifyResponse></s:Body></s:Envelope>"#
);

async fn identify(c: &Client) -> Result<IdentifyResponse, Error> {
    tokio::time::timeout(Duration::from_secs(10), c.identify().into_future())
        .await
        .expect("the request hung")
}

/// A self-signed certificate for `names` (no CA any store knows).
struct SelfSigned {
    der: CertificateDer<'static>,
    key: Vec<u8>,
}

impl SelfSigned {
    fn new(names: &[&str]) -> SelfSigned {
        SelfSigned::with(names, false)
    }

    /// `ca`: with basic constraints CA:TRUE, as `openssl req -x509` makes them.
    fn with(names: &[&str], ca: bool) -> SelfSigned {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        if ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        }
        let cert = params.self_signed(&key).unwrap();
        SelfSigned {
            der: cert.der().clone(),
            key: key.serialize_der(),
        }
    }

    /// `AB:CD:...`
    fn colons(&self) -> String {
        Sha256::digest(self.der.as_ref())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// `abcd...`
    fn plain_lower(&self) -> String {
        self.colons().replace(':', "").to_ascii_lowercase()
    }
}

async fn tls_server(cert: &SelfSigned) -> Server {
    let config = pki::server_config(vec![cert.der.clone()], &cert.key);
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
    Server::start_with(acceptor, |_, _| {
        Reply::Bytes(mini_http::soap(200, IDENTIFY))
    })
    .await
}

fn check_identify(r: Result<IdentifyResponse, Error>) {
    let id = r.unwrap_or_else(|e| panic!("identify failed: {e}"));
    assert_eq!(id.product_vendor, "Microsoft Corporation");
}

#[tokio::test]
async fn a_pinned_self_signed_certificate_is_accepted_that_the_roots_refuse() {
    // The name in the certificate is not the one connected to: a pin does not check it.
    let cert = SelfSigned::new(&["winrm.example.test"]);
    let server = tls_server(&cert).await;
    let url = format!("https://127.0.0.1:{}/wsman", server.addr.port());

    let e = identify(&Client::builder(&url).build().unwrap())
        .await
        .unwrap_err();
    assert!(e.is_unknown_ca(), "{e:?}");
    assert!(!e.is_pin_mismatch());
    let m = e.to_string();
    assert!(
        m.contains("not trust") && m.contains(&cert.colons()) && m.contains("pin_sha256"),
        "the unknown CA reads clearly and names the certificate: {m}"
    );

    for pin in [cert.colons(), cert.plain_lower()] {
        let c = Client::builder(&url).pin_sha256(&pin).build().unwrap();
        check_identify(identify(&c).await);
    }
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn a_self_signed_ca_certificate_as_the_servers_reads_clearly_and_can_be_pinned() {
    let cert = SelfSigned::with(&["localhost"], true);
    let server = tls_server(&cert).await;
    let url = format!("https://localhost:{}/wsman", server.addr.port());
    // Even with that certificate added as a trusted CA, WebPKI refuses it as a server's.
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64_lines(cert.der.as_ref())
    );
    for c in [
        Client::builder(&url).build().unwrap(),
        Client::builder(&url)
            .add_root_certificate_pem(pem.as_bytes())
            .build()
            .unwrap(),
    ] {
        match identify(&c).await.unwrap_err() {
            Error::Tls { message, source } => {
                assert!(
                    message.contains("is a CA certificate") && message.contains(&cert.colons()),
                    "{message}"
                );
                assert!(source.is_some());
            }
            other => panic!("expected Error::Tls, got {other:?}"),
        }
    }
    let c = Client::builder(&url)
        .pin_sha256(&cert.colons())
        .build()
        .unwrap();
    check_identify(identify(&c).await);
}

fn base64_lines(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    b64.as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_pin_mismatch_is_a_typed_error_naming_the_presented_fingerprint() {
    let cert = SelfSigned::new(&["localhost"]);
    let other = SelfSigned::new(&["localhost"]);
    let server = tls_server(&cert).await;
    let url = format!("https://localhost:{}/wsman", server.addr.port());
    // Neither the dangerous switch nor trusted roots override a pin.
    let c = Client::builder(&url)
        .pin_sha256(&other.colons())
        .danger_accept_invalid_certs(true)
        .os_roots(false)
        .build()
        .unwrap();
    let e = identify(&c).await.unwrap_err();
    match &e {
        Error::PinMismatch {
            endpoint,
            presented,
        } => {
            assert_eq!(presented, &cert.colons());
            assert_eq!(endpoint, &format!("localhost:{}", server.addr.port()));
        }
        other => panic!("expected Error::PinMismatch, got {other:?}"),
    }
    assert!(e.is_pin_mismatch() && e.is_connect() && !e.is_retryable());
    assert!(!e.is_unknown_ca());
    assert!(e.to_string().contains(&cert.colons()), "{e}");
    assert!(
        server.requests().is_empty(),
        "no request passes a refused pin"
    );
}

#[tokio::test]
async fn several_pins_accept_any_of_them() {
    let old = SelfSigned::new(&["localhost"]);
    let new = SelfSigned::new(&["localhost"]);
    let server = tls_server(&new).await;
    let url = format!("https://localhost:{}/wsman", server.addr.port());
    let c = Client::builder(&url)
        .pin_sha256(&old.colons())
        .pin_sha256(&new.plain_lower())
        .build()
        .unwrap();
    check_identify(identify(&c).await);
    // The same two pins the other way round share that configuration's verdict.
    let c = Client::builder(&url)
        .pin_sha256(&new.colons())
        .pin_sha256(&old.colons())
        .build()
        .unwrap();
    check_identify(identify(&c).await);
}

#[test]
fn malformed_pins_are_config_errors() {
    let good = "ab".repeat(32);
    for bad in [
        "",
        "abc",
        &"ab".repeat(31),
        &"ab".repeat(33),
        &format!("{}zz", "ab".repeat(31)),
        &"AB:".repeat(31).to_string(),
        "AB:CD:E:F",
        // a SHA-1 thumbprint, as Windows shows it
        &"ab".repeat(20),
    ] {
        let r = Client::builder("https://localhost/wsman")
            .pin_sha256(bad)
            .build();
        match r {
            Err(Error::Config(m)) => assert!(m.contains("pin"), "{m}"),
            other => panic!("{bad:?}: expected Error::Config, got {other:?}"),
        }
    }
    let sha1 = Client::builder("https://localhost/wsman")
        .pin_sha256(&"ab".repeat(20))
        .build()
        .unwrap_err();
    assert!(sha1.to_string().contains("SHA-1"), "{sha1}");
    let colons = vec!["Ab"; 32].join(":");
    for ok in [good.as_str(), &good.to_ascii_uppercase(), &colons] {
        Client::builder("https://localhost/wsman")
            .pin_sha256(ok)
            .build()
            .unwrap_or_else(|e| panic!("{ok:?}: {e}"));
    }
}

#[test]
fn os_roots_build_or_say_why_not() {
    // This machine's store (SSL_CERT_FILE / SSL_CERT_DIR are not set by the tests).
    let has_system_store = std::fs::read_dir("/etc/ssl/certs").is_ok_and(|d| d.count() > 0);
    let r = Client::builder("https://localhost/wsman")
        .os_roots(true)
        .build();
    if has_system_store {
        r.unwrap_or_else(|e| panic!("the OS store at /etc/ssl/certs: {e}"));
    } else {
        let e = r.unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("trust store")),
            "{e:?}"
        );
    }
    // Plain http:// needs no TLS configuration, so no store is read.
    Client::builder("http://localhost/wsman")
        .os_roots(true)
        .build()
        .unwrap();
}

/// The child's mark: set, this test binary is the child run with a chosen OS store.
const CHILD: &str = "TOKIO_WINRM_TRUST_CHILD";

#[test]
fn os_roots_without_a_usable_store_is_a_clear_config_error() {
    if std::env::var_os(CHILD).is_some() {
        // The child: SSL_CERT_FILE names an empty or missing bundle.
        let e = Client::builder("https://localhost/wsman")
            .os_roots(true)
            .build()
            .unwrap_err();
        match &e {
            Error::Config(m) => println!("CHILD-ERROR {m}"),
            other => panic!("expected Error::Config, got {other:?}"),
        }
        return;
    }
    // The environment of the process decides where the OS store is: run this test
    // again in a child process with its own, rather than change this one's.
    let dir = std::env::temp_dir().join(format!("tokio-winrm-trust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, b"").unwrap();
    let missing = dir.join("missing.pem");
    for (bundle, why) in [(&empty, "holds no certificate"), (&missing, "missing.pem")] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "os_roots_without_a_usable_store_is_a_clear_config_error",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env("SSL_CERT_FILE", bundle)
            .env("SSL_CERT_DIR", &dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.split_once("CHILD-ERROR ").map(|(_, m)| m))
            .unwrap_or_else(|| panic!("the child ran no check: {stdout}"));
        assert!(
            line.contains("trust store") && line.contains(why) && line.contains("SSL_CERT_FILE"),
            "{line}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
