//! HTTPS mode ([`SimConfig::tls`](crate::SimConfig::tls)): the server's TLS identity,
//! and WinRM's client-certificate mapping (`winrm/config/service/certmapping` on
//! Windows), which logs a request on as the user its client certificate is mapped to.

use std::fmt;
use std::io;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio_rustls::rustls::{
    self, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject},
    server::{
        WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
};

/// The `Authorization` value of a certificate logon: the URI of the security profile
/// `wsman:secprofile/https/mutual` ([DMTF-DSP0226] Annex C.3.5; [MS-WSMV] §2.2.4.34).
pub const MUTUAL_AUTHORIZATION: &str =
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual";

/// The TLS settings of a simulator in HTTPS mode: its certificate chain and private
/// key, the CAs it trusts for client certificates, and which client certificate logs on
/// as which user. The private key never appears in `Debug`.
///
/// # How a client certificate logs on
///
/// A request logs on with its certificate when it carries the header
/// `Authorization: http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual`
/// (the profile `wsman:secprofile/https/mutual`, [DMTF-DSP0226] Annex C.3.5, as Windows
/// and pywinrm send it) on a TLS connection whose client
/// presented a certificate that
///
/// - chains to one of the trusted client CAs ([`SimTls::client_ca_pem`]), when any are
///   set (a certificate that does not is refused in the TLS handshake, with rustls'
///   alert; without client CAs the mapping alone is the trust decision), and
/// - is mapped to a user by the SHA-256 fingerprint of its DER encoding
///   ([`SimTls::map_certificate`], [`SimTls::map_fingerprint`]).
///
/// Otherwise the request is refused with HTTP 401, as Windows refuses an unmapped
/// certificate. Windows' HTTP.sys may ask for the client certificate only after it has
/// seen the request, by TLS renegotiation; rustls does not renegotiate, so the simulator
/// asks for one in the first handshake, optionally: a client without one still connects, and its Basic,
/// NTLM or Kerberos logons work as on plain HTTP. A request with the header and no
/// certificate gets the same 401.
#[derive(Clone)]
pub struct SimTls {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    client_cas: Vec<CertificateDer<'static>>,
    mappings: Vec<([u8; 32], String)>,
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.into())
}

fn pem_certificates(pem: &[u8], what: &str) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{what}: invalid PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(format!("{what}: no certificate in the PEM data")));
    }
    Ok(certs)
}

/// The SHA-256 fingerprint of a DER certificate, as upper-case hex without separators
/// (the form `winrm sim --map-cert` and [`SimTls::map_fingerprint`] take).
pub fn fingerprint(cert_der: &[u8]) -> String {
    Sha256::digest(cert_der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// Parses 64 hex digits, with or without `:` separators, in either case.
fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex: Vec<u8> = text.bytes().filter(|b| *b != b':').collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

impl SimTls {
    /// The server identity from PEM: a certificate chain (leaf first) and its private key
    /// (PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    /// `InvalidInput` when either holds nothing usable; the key's bytes are never in it.
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> io::Result<SimTls> {
        let chain = pem_certificates(cert_chain_pem, "server certificate")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|_| invalid("server private key: no usable PEM private key"))?;
        Ok(SimTls::new(chain, key))
    }

    /// The server identity from DER: a certificate chain (leaf first) and its private
    /// key (PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    /// `InvalidInput` when the chain is empty or the key's encoding is not recognised.
    pub fn from_der(cert_chain: Vec<Vec<u8>>, key: Vec<u8>) -> io::Result<SimTls> {
        if cert_chain.is_empty() {
            return Err(invalid("server certificate: empty chain"));
        }
        let chain = cert_chain.into_iter().map(CertificateDer::from).collect();
        let key = PrivateKeyDer::try_from(key)
            .map_err(|_| invalid("server private key: not a PKCS#8, PKCS#1 or SEC1 key"))?;
        Ok(SimTls::new(chain, key))
    }

    fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> SimTls {
        SimTls {
            chain,
            key: Arc::new(key),
            client_cas: Vec::new(),
            mappings: Vec::new(),
        }
    }

    /// Trusts the CA certificates of a PEM bundle for client certificates.
    ///
    /// # Errors
    /// `InvalidInput` when the bundle holds no certificate or a malformed one.
    pub fn client_ca_pem(mut self, pem: &[u8]) -> io::Result<SimTls> {
        self.client_cas
            .extend(pem_certificates(pem, "client CA certificate")?);
        Ok(self)
    }

    /// Maps the client certificate `cert_der` (DER) to `user`.
    pub fn map_certificate(mut self, cert_der: &[u8], user: impl Into<String>) -> SimTls {
        self.mappings
            .push((Sha256::digest(cert_der).into(), user.into()));
        self
    }

    /// Maps every certificate of a PEM bundle to `user`.
    ///
    /// # Errors
    /// `InvalidInput` when the bundle holds no certificate or a malformed one.
    pub fn map_certificate_pem(
        mut self,
        pem: &[u8],
        user: impl Into<String>,
    ) -> io::Result<SimTls> {
        let user = user.into();
        for c in pem_certificates(pem, "mapped client certificate")? {
            self = self.map_certificate(&c, user.clone());
        }
        Ok(self)
    }

    /// Maps the client certificate with this SHA-256 fingerprint (64 hex digits, `:`
    /// separators allowed) to `user`.
    ///
    /// # Errors
    /// `InvalidInput` when `sha256` is not 64 hex digits.
    pub fn map_fingerprint(mut self, sha256: &str, user: impl Into<String>) -> io::Result<SimTls> {
        let fp = parse_fingerprint(sha256.trim())
            .ok_or_else(|| invalid(format!("{sha256:?} is not a SHA-256 fingerprint")))?;
        self.mappings.push((fp, user.into()));
        Ok(self)
    }

    /// The user a client certificate (DER) is mapped to.
    fn user_of(&self, cert_der: &[u8]) -> Option<&str> {
        let fp: [u8; 32] = Sha256::digest(cert_der).into();
        self.mappings
            .iter()
            .find(|(f, _)| *f == fp)
            .map(|(_, u)| u.as_str())
    }

    /// The rustls server configuration.
    pub(crate) fn server_config(&self) -> io::Result<Arc<ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let webpki = if self.client_cas.is_empty() {
            None
        } else {
            let mut roots = RootCertStore::empty();
            for c in &self.client_cas {
                roots
                    .add(c.clone())
                    .map_err(|e| invalid(format!("client CA certificate: {e}")))?;
            }
            let v =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| invalid(format!("client CA certificates: {e}")))?;
            Some(v)
        };
        let verifier = Arc::new(ClientCerts {
            webpki,
            provider: Arc::clone(&provider),
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(format!("TLS configuration: {e}")))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| invalid(format!("server certificate and key: {e}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl fmt::Debug for SimTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimTls")
            .field("chain", &self.chain.len())
            .field("key", &"<redacted>")
            .field("client_cas", &self.client_cas.len())
            .field(
                "mappings",
                &self.mappings.iter().map(|(_, u)| u).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// What the TLS side knows of a connection's client (a request extension).
#[derive(Debug, Clone)]
pub(crate) struct ClientCert {
    /// Whether the client presented a certificate.
    pub presented: bool,
    /// The user it is mapped to.
    pub user: Option<String>,
}

impl ClientCert {
    pub(crate) fn of(tls: &SimTls, peer: Option<&[CertificateDer<'static>]>) -> ClientCert {
        let leaf = peer.and_then(|c| c.first());
        ClientCert {
            presented: leaf.is_some(),
            user: leaf.and_then(|c| tls.user_of(c)).map(str::to_string),
        }
    }
}

/// Whether a request asks for a certificate logon.
pub(crate) fn asks_for_certificate_logon(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(MUTUAL_AUTHORIZATION))
}

/// Asks every client for a certificate and accepts connections without one; with client
/// CAs, a presented certificate must chain to one of them (webpki), else any presented
/// certificate passes (its handshake signature is still checked) and the mapping decides.
#[derive(Debug)]
struct ClientCerts {
    webpki: Option<Arc<dyn ClientCertVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for ClientCerts {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        match &self.webpki {
            Some(v) => v.root_hint_subjects(),
            None => &[],
        }
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match &self.webpki {
            Some(v) => v.verify_client_cert(end_entity, intermediates, now),
            None => Ok(ClientCertVerified::assertion()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_or_without_separators() {
        let fp = fingerprint(b"cert");
        assert_eq!(fp.len(), 64);
        let raw: [u8; 32] = Sha256::digest(b"cert").into();
        assert_eq!(parse_fingerprint(&fp), Some(raw));
        assert_eq!(parse_fingerprint(&fp.to_lowercase()), Some(raw));
        let colons: Vec<String> = fp
            .as_bytes()
            .chunks(2)
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        assert_eq!(parse_fingerprint(&colons.join(":")), Some(raw));
        assert_eq!(parse_fingerprint(&fp[..62]), None);
        assert_eq!(parse_fingerprint(&format!("{}zz", &fp[..62])), None);
        assert_eq!(parse_fingerprint("é".repeat(32).as_str()), None);
    }

    #[test]
    fn debug_hides_the_key_and_bad_input_is_refused() {
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(b"SECRETKEYBYTES".to_vec());
        let tls = SimTls::new(vec![CertificateDer::from(vec![1])], key.into())
            .map_certificate(b"client", "alice");
        let d = format!("{tls:?} {tls:#?}");
        assert!(d.contains("<redacted>") && d.contains("alice"), "{d}");
        assert!(!d.contains("SECRET") && !d.contains("83, 69, 67"), "{d}");
        assert_eq!(tls.user_of(b"client"), Some("alice"));
        assert_eq!(tls.user_of(b"other"), None);
        assert!(SimTls::from_pem(b"", b"").is_err());
        assert!(SimTls::from_der(vec![], vec![1, 2, 3]).is_err());
    }
}
