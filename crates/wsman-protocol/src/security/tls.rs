//! A rustls server-certificate verifier for TLS channels whose trust decision is not the
//! certificate chain: the inner channel of CredSSP (any certificate: `pubKeyAuth` binds
//! its key, see [`credssp`](super::credssp)) and a client's pinned or
//! accept-invalid outer connection.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// The decision on the server's end-entity certificate: `Ok` accepts it.
type Accept = dyn Fn(&CertificateDer<'_>) -> Result<(), rustls::Error> + Send + Sync;

/// A verifier that does not check the certificate chain, the name, the dates or
/// revocation: `accept` alone decides on the end-entity certificate. Either way the
/// handshake signatures are checked with the provider's algorithms, so the server must
/// hold the private key of the certificate it presented.
pub struct WithoutChain {
    accept: Box<Accept>,
    provider: Arc<CryptoProvider>,
}

impl WithoutChain {
    /// A verifier that decides on the end-entity certificate with `accept` and checks
    /// the handshake signatures with `provider`'s algorithms.
    pub fn new(
        provider: Arc<CryptoProvider>,
        accept: impl Fn(&CertificateDer<'_>) -> Result<(), rustls::Error> + Send + Sync + 'static,
    ) -> Self {
        WithoutChain {
            accept: Box::new(accept),
            provider,
        }
    }

    /// A verifier that accepts any certificate (the handshake signatures still checked).
    pub fn any(provider: Arc<CryptoProvider>) -> Self {
        WithoutChain::new(provider, |_| Ok(()))
    }
}

impl std::fmt::Debug for WithoutChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WithoutChain").finish_non_exhaustive()
    }
}

impl ServerCertVerifier for WithoutChain {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        (self.accept)(end_entity).map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
