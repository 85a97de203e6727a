//! TLS configuration: webpki roots plus optional custom CAs, verified by default;
//! verification can be turned off only through an explicitly dangerous switch.
//!
//! Clients built with the same [`TlsOptions`] share one rustls `ClientConfig` (its
//! parsed root store, about 150 trust anchors, and its session cache) for as long as
//! any of them lives: a fan-out over a thousand `https://` hosts, one client each,
//! holds one root store, not a thousand.

use std::sync::{Arc, Mutex, Weak};

use tokio_rustls::rustls::{
    self, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};

use super::auth::ClientCertificate;
use crate::error::{Error, Result};

/// TLS settings of a client.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct TlsOptions {
    /// Extra trusted CA certificates (DER).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Do not load the built-in web PKI roots (trust only `extra_roots`).
    pub no_default_roots: bool,
    /// Accept any certificate. Dangerous: only for tests and lab hosts.
    pub danger_accept_invalid_certs: bool,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("extra_roots", &self.extra_roots.len())
            .field("no_default_roots", &self.no_default_roots)
            .field(
                "danger_accept_invalid_certs",
                &self.danger_accept_invalid_certs,
            )
            .finish()
    }
}

/// Parses every certificate of a PEM bundle.
///
/// # Errors
/// [`Error::Config`] when the text holds no certificate or a malformed one.
pub fn parse_pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("invalid PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Config("no certificate found in PEM data".into()));
    }
    Ok(certs)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// What makes two [`TlsOptions`] build the same configuration.
#[derive(PartialEq, Eq)]
struct Key {
    extra_roots: Vec<Vec<u8>>,
    no_default_roots: bool,
    danger_accept_invalid_certs: bool,
    /// The client identity: its chain and the SHA-256 of its private key (not the key).
    identity: Option<(Vec<Vec<u8>>, [u8; 32])>,
}

impl Key {
    fn of(opts: &TlsOptions, identity: Option<&ClientCertificate>) -> Key {
        Key {
            extra_roots: opts.extra_roots.iter().map(|c| c.to_vec()).collect(),
            no_default_roots: opts.no_default_roots,
            danger_accept_invalid_certs: opts.danger_accept_invalid_certs,
            identity: identity
                .map(|c| (c.chain.iter().map(|d| d.to_vec()).collect(), c.key_digest())),
        }
    }
}

/// The configurations in use, by options; an entry lives as long as a client holds it.
static SHARED: Mutex<Vec<(Key, Weak<ClientConfig>)>> = Mutex::new(Vec::new());

/// The configuration for `opts`: the one another live client already uses, or a new one.
#[cfg_attr(
    not(test),
    allow(dead_code, reason = "the form without a client identity")
)]
pub(crate) fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>> {
    client_config_with_identity(opts, None)
}

/// [`client_config`] that presents `identity` when the server asks for a client
/// certificate; clients share a configuration only with the same identity.
pub(crate) fn client_config_with_identity(
    opts: &TlsOptions,
    identity: Option<&ClientCertificate>,
) -> Result<Arc<ClientConfig>> {
    let key = Key::of(opts, identity);
    let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    shared.retain(|(_, config)| config.strong_count() > 0);
    if let Some(config) = shared
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, config)| config.upgrade())
    {
        return Ok(config);
    }
    let config = build_config(opts, identity)?;
    shared.push((key, Arc::downgrade(&config)));
    Ok(config)
}

fn build_config(
    opts: &TlsOptions,
    identity: Option<&ClientCertificate>,
) -> Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::tls(format!("TLS configuration: {e}"), Some(Box::new(e))))?;
    let builder = if opts.danger_accept_invalid_certs {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
    } else {
        let mut roots = RootCertStore::empty();
        if !opts.no_default_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for c in &opts.extra_roots {
            roots
                .add(c.clone())
                .map_err(|e| Error::Config(format!("invalid CA certificate: {e}")))?;
        }
        builder.with_root_certificates(roots)
    };
    let config = match identity {
        None => builder.with_no_client_auth(),
        // rustls' error names what is wrong with the key (type, algorithm), never its bytes.
        Some(c) => builder
            .with_client_auth_cert(c.chain.clone(), c.key.clone_key())
            .map_err(|e| Error::Config(format!("client certificate and key: {e}")))?,
    };
    Ok(Arc::new(config))
}

/// The certificate alert the server ended the TLS session with, anywhere in `e`'s
/// sources: with a client certificate presented, the server's verdict on it (TLS 1.2 in
/// the handshake; TLS 1.3 on the first read, as the client has finished by then).
pub(crate) fn client_certificate_alert(e: &Error) -> Option<rustls::AlertDescription> {
    use rustls::AlertDescription as A;
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        let rustls_error = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::AlertReceived(alert)) = rustls_error
            && matches!(
                alert,
                A::BadCertificate
                    | A::UnsupportedCertificate
                    | A::CertificateRevoked
                    | A::CertificateExpired
                    | A::CertificateUnknown
                    | A::UnknownCA
                    | A::AccessDenied
                    | A::CertificateRequired
            )
        {
            return Some(*alert);
        }
        next = err.source();
    }
    None
}

pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(h.to_string())
        .map_err(|e| Error::Config(format!("invalid TLS server name {host:?}: {e}")))
}

/// Accepts any certificate but still checks handshake signatures.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_with_the_same_options_share_one_config_while_one_lives() {
        let opts = TlsOptions::default();
        let a = client_config(&opts).unwrap();
        let b = client_config(&opts.clone()).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "same options: one root store");
        let lab = TlsOptions {
            danger_accept_invalid_certs: true,
            ..TlsOptions::default()
        };
        let c = client_config(&lab).unwrap();
        assert!(!Arc::ptr_eq(&a, &c), "other options: their own config");
        // An invalid CA is refused every time (nothing is cached for it).
        let bad_ca = TlsOptions {
            extra_roots: vec![CertificateDer::from(vec![1, 2, 3])],
            no_default_roots: true,
            ..TlsOptions::default()
        };
        assert!(client_config(&bad_ca).is_err());
        assert!(client_config(&bad_ca).is_err());
        // The cache does not keep a configuration alive.
        let weak = Arc::downgrade(&c);
        drop(c);
        assert!(weak.upgrade().is_none());
        let d = client_config(&lab).unwrap();
        assert!(!Arc::ptr_eq(&a, &d));
    }

    #[test]
    fn a_client_identity_is_part_of_the_shared_configs_key() {
        let identity = |name: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = rcgen::CertificateParams::new(vec![name.to_string()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
            let auth =
                crate::Auth::certificate(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
                    .unwrap();
            auth.client_certificate().unwrap().clone()
        };
        let (alice, bob) = (identity("alice"), identity("bob"));
        let opts = TlsOptions::default();
        let none = client_config(&opts).unwrap();
        let a = client_config_with_identity(&opts, Some(&alice)).unwrap();
        let a2 = client_config_with_identity(&opts, Some(&alice.clone())).unwrap();
        let b = client_config_with_identity(&opts, Some(&bob)).unwrap();
        assert!(Arc::ptr_eq(&a, &a2), "same identity: one config");
        assert!(!Arc::ptr_eq(&a, &b), "another identity: its own config");
        assert!(!Arc::ptr_eq(&a, &none), "no identity: its own config");
        assert!(a.client_auth_cert_resolver.has_certs());
        assert!(!none.client_auth_cert_resolver.has_certs());
    }
}
