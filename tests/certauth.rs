//! Client-certificate authentication (issue 13 §2) against the simulator in HTTPS mode:
//! an rcgen CA signs the server's certificate and the clients' certificates; the
//! simulator trusts the CA for client certificates and maps some of them to users.

#[path = "support/log_capture.rs"]
mod log_capture;

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio_winrm::{Auth, Client, Error, Resource};
use winrm_simulator::{SimConfig, SimTls, Simulator};

/// A CA and what it signed.
struct Ca(CertifiedIssuer<'static, KeyPair>);

/// A certificate and its private key, in PEM.
struct Identity {
    cert_pem: String,
    cert_der: Vec<u8>,
    key_pem: String,
    key_der: Vec<u8>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    fn pem(&self) -> String {
        self.0.pem()
    }

    /// A certificate for `names` (server) or for the user `cn` (client: the UPN-like
    /// subject Windows maps, and the clientAuth extended key usage).
    fn issue(&self, names: &[&str], cn: &str, client: bool) -> Identity {
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &*self.0).unwrap();
        Identity {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }
}

struct Lab {
    ca: Ca,
    alice: Identity,
    bob: Identity,
    sim: Simulator,
}

/// The simulator in HTTPS mode, trusting `ca` for client certificates, with alice's and
/// bob's certificates mapped.
async fn lab() -> Lab {
    let ca = Ca::new("tokio-winrm certauth CA");
    let server = ca.issue(&["localhost", "127.0.0.1"], "localhost", false);
    let alice = ca.issue(&[], "alice@corp.example", true);
    let bob = ca.issue(&[], "bob@corp.example", true);
    let tls = SimTls::from_pem(server.cert_pem.as_bytes(), server.key_pem.as_bytes())
        .unwrap()
        .client_ca_pem(ca.pem().as_bytes())
        .unwrap()
        .map_certificate(&alice.cert_der, "alice")
        .map_fingerprint(&winrm_simulator::fingerprint(&bob.cert_der), "bob")
        .unwrap();
    let sim = Simulator::start_with(SimConfig {
        tls: Some(tls),
        ping_interval: Duration::from_millis(10),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    Lab {
        ca,
        alice,
        bob,
        sim,
    }
}

fn client(lab: &Lab, auth: Auth) -> Client {
    Client::builder(lab.sim.endpoint())
        .auth(auth)
        .add_root_certificate_pem(lab.ca.pem().as_bytes())
        .only_added_roots(true)
        .operation_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn certificate(id: &Identity) -> Auth {
    Auth::certificate(id.cert_pem.as_bytes(), id.key_pem.as_bytes()).unwrap()
}

async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test timed out")
}

#[tokio::test]
async fn a_mapped_certificate_runs_a_command_and_a_get_as_its_user() {
    within(async {
        let lab = lab().await;
        assert!(
            lab.sim.endpoint().starts_with("https://"),
            "{}",
            lab.sim.endpoint()
        );
        assert_eq!(
            winrm_simulator::MUTUAL_AUTHORIZATION,
            "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"
        );
        let alice = client(&lab, certificate(&lab.alice));
        let out = alice.run("echo", &["certificate", "logon"]).await.unwrap();
        assert_eq!(out.code, Some(0));
        assert!(out.stdout_text().contains("certificate logon"), "{out:?}");
        let os = alice
            .get(&Resource::wmi("root/cimv2", "Win32_OperatingSystem"))
            .await
            .unwrap();
        assert!(os.get_str("Caption").is_some(), "{os:?}");

        // The logons are alice's (mapped by certificate) and bob's (by fingerprint).
        let who = alice.run("whoami", &[]).await.unwrap();
        assert_eq!(who.stdout_text(), "sim\\alice\r\n");
        let bob = client(&lab, certificate(&lab.bob));
        let who = bob.run("whoami", &[]).await.unwrap();
        assert_eq!(who.stdout_text(), "sim\\bob\r\n");
        assert_eq!(lab.sim.counters().failed_logons, 0);
        alice.shutdown().await;
        bob.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_unmapped_certificate_is_refused_with_a_typed_error() {
    within(async {
        let lab = lab().await;
        let carol = lab.ca.issue(&[], "carol@corp.example", true);
        let c = client(&lab, certificate(&carol));
        let e = c
            .get(&Resource::wmi("root/cimv2", "Win32_OperatingSystem"))
            .await;
        let Err(e @ Error::ClientCertificateRefused { .. }) = e else {
            panic!("expected ClientCertificateRefused, got {e:?}");
        };
        assert!(e.is_auth());
        let text = e.to_string();
        assert!(text.contains("refused the client certificate"), "{text}");
        assert!(text.contains("401"), "{text}");
        assert_eq!(lab.sim.counters().failed_logons, 1);
        // The logon gate: no second refused logon from this client.
        let again = c.run("echo", &["x"]).await;
        assert!(matches!(again, Err(ref e) if e.is_auth()), "{again:?}");
        assert_eq!(lab.sim.counters().failed_logons, 1);

        // A client without a certificate asking for a certificate logon is impossible
        // through the API (the identity is part of Auth::Certificate); one with Basic
        // and no certificate meets the same 401 a Windows host sends.
        let basic = client(&lab, Auth::basic("alice", "wrong"));
        let e = basic.identify().await;
        assert!(matches!(e, Err(Error::Unauthorized { .. })), "{e:?}");
        // The HTTPS listener serves password logons too (the certificate is optional in
        // the handshake).
        let basic = client(&lab, Auth::basic(lab.sim.user(), lab.sim.password()));
        let who = basic.run("whoami", &[]).await.unwrap();
        assert_eq!(who.stdout_text(), format!("sim\\{}\r\n", lab.sim.user()));
    })
    .await;
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_ca_is_refused_with_a_typed_error() {
    within(async {
        let lab = lab().await;
        let rogue = Ca::new("rogue CA").issue(&[], "alice@corp.example", true);
        let c = client(&lab, certificate(&rogue));
        let e = c.run("echo", &["x"]).await;
        let Err(Error::ClientCertificateRefused { reason }) = &e else {
            panic!("expected ClientCertificateRefused, got {e:?}");
        };
        assert!(reason.contains("alert"), "{reason}");
    })
    .await;
}

#[tokio::test]
async fn certificate_auth_over_http_is_a_configuration_error() {
    let ca = Ca::new("ca");
    let id = ca.issue(&[], "alice", true);
    let e = Client::builder("http://127.0.0.1:5985/wsman")
        .auth(certificate(&id))
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(e.to_string().contains("https"), "{e}");
    // Nothing usable in the PEM: configuration errors that do not quote the key.
    let e = Auth::certificate(id.cert_pem.as_bytes(), b"not a key").unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    let e = Auth::certificate(id.key_pem.as_bytes(), id.key_pem.as_bytes()).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    let mut broken = id.key_pem.clone();
    broken.truncate(broken.len() / 2);
    let e = Auth::certificate(id.cert_pem.as_bytes(), broken.as_bytes()).unwrap_err();
    assert_no_key(&e.to_string(), &id);
    let e =
        Auth::certificate_from_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
    assert!(e.to_string().contains("/nonexistent/cert.pem"), "{e}");
}

/// No piece of the private key: its PEM lines, its DER as hex or as `Debug` bytes.
fn assert_no_key(text: &str, id: &Identity) {
    for line in id.key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!text.contains(line), "PEM key line in: {text}");
    }
    let der = &id.key_der[id.key_der.len() - 24..];
    let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!text.to_lowercase().contains(&hex), "hex key in: {text}");
    let bytes = format!("{der:?}");
    let bytes = bytes.trim_matches(|c| c == '[' || c == ']');
    assert!(!text.contains(bytes), "key bytes in: {text}");
}

#[tokio::test]
async fn debug_and_trace_logs_hide_the_private_key() {
    let logs = log_capture::capture();
    within(async {
        let lab = lab().await;
        let dir = std::env::temp_dir().join(format!("certauth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("alice.pem"), dir.join("alice.key"));
        std::fs::write(&cert, &lab.alice.cert_pem).unwrap();
        std::fs::write(&key, &lab.alice.key_pem).unwrap();
        let auth = Auth::certificate_from_files(&cert, &key).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let debug = format!("{auth:?} {auth:#?}");
        assert!(debug.contains("<redacted>"), "{debug}");
        assert_no_key(&debug, &lab.alice);
        let c = client(&lab, auth);
        assert_no_key(&format!("{c:?}"), &lab.alice);
        let out = c.run("echo", &["traced"]).await.unwrap();
        assert!(out.stdout_text().contains("traced"));
        c.shutdown().await;
        let text = logs.text();
        assert!(!text.is_empty(), "no capture at all");
        assert_no_key(&text, &lab.alice);
    })
    .await;
}
