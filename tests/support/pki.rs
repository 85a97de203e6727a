//! Test certificates and TLS servers: a throwaway CA and a server certificate it signed
//! ([`pki`]), a rustls server configuration for a chain ([`server_config`]), and a TLS
//! front for the simulator ([`start`]: it speaks plain HTTP; the front terminates TLS
//! for `localhost` and relays the bytes), for `https://` endpoints in tests that need
//! the simulator's plain-HTTP behaviour behind TLS (proxies, Kerberos channel binding).
#![allow(dead_code, reason = "each test file uses a part")]

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::{
    self,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
};

/// A running front: its port on 127.0.0.1 and the CA that issued its certificate.
pub struct TlsFront {
    /// The listening port (connect as `localhost`, the certificate's name).
    pub port: u16,
    /// The test CA's certificate, PEM: what a client adds to trust the front.
    pub ca_pem: String,
}

/// A CA and a server certificate it signed for `names`.
pub struct Pki {
    /// The CA's certificate, PEM.
    pub ca_pem: String,
    /// The server's chain: its certificate, then the CA's.
    pub chain: Vec<CertificateDer<'static>>,
    /// The server's private key, PKCS#8 DER.
    pub key: Vec<u8>,
}

/// A fresh CA and a server certificate for `names` signed by it.
pub fn pki(names: &[&str]) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tokio-winrm test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .unwrap()
        .signed_by(&key, &*ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        chain: vec![cert.der().clone(), ca.der().clone()],
        key: key.serialize_der(),
    }
}

/// A rustls server configuration (ring, no client authentication) for `chain` and its
/// PKCS#8 `key`.
pub fn server_config(chain: Vec<CertificateDer<'static>>, key: &[u8]) -> rustls::ServerConfig {
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            chain,
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_vec())),
        )
        .unwrap()
}

/// Starts a front relaying to `backend`; it runs until the test's runtime ends.
pub async fn start(backend: SocketAddr) -> TlsFront {
    let pki = pki(&["localhost"]);
    let config = server_config(pki.chain.clone(), &pki.key);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let (Ok(mut tls), Ok(mut plain)) = (
                    acceptor.accept(tcp).await,
                    TcpStream::connect(backend).await,
                ) else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    TlsFront {
        port,
        ca_pem: pki.ca_pem,
    }
}
