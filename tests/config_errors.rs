//! Configuration the client refuses, before anything is sent, with a message that says
//! what to do.

use std::time::Duration;

use tokio_winrm::{Auth, Client, Error};

#[test]
fn a_zero_http_timeout_is_refused() {
    let e = Client::builder("https://host:5986/wsman")
        .auth(Auth::basic("u", "p"))
        .http_timeout(Duration::ZERO)
        .build()
        .map(|_| ())
        .expect_err("every request would time out");
    assert!(
        matches!(&e, Error::Config(m) if m.contains("http_timeout")),
        "{e:?}"
    );
}

#[test]
fn an_encrypted_private_key_is_named_as_such() {
    let cert = rcgen::generate_simple_self_signed(vec!["client".into()]).unwrap();
    let cert_pem = cert.cert.pem();
    // The shape of `openssl pkcs8 -topk8 -v2 aes256` output (the content does not
    // matter: no PEM parser reads it as a key).
    let key = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let e = Auth::certificate(cert_pem.as_bytes(), key.as_bytes())
        .map(|_| ())
        .expect_err("encrypted keys are not read");
    let text = e.to_string();
    assert!(
        text.contains("encrypted") && text.contains("openssl"),
        "{text}"
    );
    assert!(
        !text.contains("MIIF"),
        "the key's bytes are never shown: {text}"
    );
}

#[test]
fn a_bad_certificate_is_reported_once_as_configuration() {
    let e = Auth::certificate(b"not a certificate", b"not a key")
        .map(|_| ())
        .expect_err("nothing usable");
    let text = e.to_string();
    assert_eq!(text.matches("invalid configuration").count(), 1, "{text}");
    assert!(text.contains("client certificate"), "{text}");
}
