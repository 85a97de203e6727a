//! TLS configuration, verified by default: the built-in web PKI roots, optionally the
//! operating system's trust store and added CA certificates, or certificate pins (the
//! SHA-256 fingerprint of the server's certificate); verification can be turned off
//! only through an explicitly dangerous switch.
//!
//! Clients built with the same [`TlsOptions`] share one rustls `ClientConfig` (its
//! parsed root store, about 150 trust anchors, and its session cache) for as long as
//! any of them lives: a fan-out over a thousand `https://` hosts, one client each,
//! holds one root store, not a thousand.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, Weak};

use sha2::{Digest, Sha256};
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
    client::WebPkiServerVerifier,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject},
};

use wsman_protocol::security::tls::WithoutChain;

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
    /// Also trust the operating system's trust store (see
    /// [`crate::ClientBuilder::os_roots`]).
    pub os_roots: bool,
    /// SHA-256 fingerprints of the server certificates to accept. When any is set, a
    /// pin is the whole trust decision (see [`crate::ClientBuilder::pin_sha256`]).
    pub pins: Vec<[u8; 32]>,
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
            .field("os_roots", &self.os_roots)
            .field(
                "pins",
                &self.pins.iter().map(|p| fingerprint(p)).collect::<Vec<_>>(),
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
    os_roots: bool,
    pins: Vec<[u8; 32]>,
    /// The client identity: its chain and the SHA-256 of its private key (not the key).
    identity: Option<(Vec<Vec<u8>>, [u8; 32])>,
}

impl Key {
    fn of(opts: &TlsOptions, identity: Option<&ClientCertificate>) -> Key {
        // Every field of `TlsOptions`: a new option that is not here would hand a
        // client the configuration of other options.
        let TlsOptions {
            extra_roots,
            no_default_roots,
            danger_accept_invalid_certs,
            os_roots,
            pins,
        } = opts;
        let mut pins = pins.clone();
        pins.sort_unstable();
        pins.dedup();
        Key {
            extra_roots: extra_roots.iter().map(|c| c.to_vec()).collect(),
            no_default_roots: *no_default_roots,
            danger_accept_invalid_certs: *danger_accept_invalid_certs,
            os_roots: *os_roots,
            pins,
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
    let verifier: Arc<dyn ServerCertVerifier> = if !opts.pins.is_empty() {
        // Certificate pinning: the server's end-entity certificate is accepted exactly
        // when its SHA-256 fingerprint (over the whole DER certificate) is one of the
        // pins. The chain, the issuer, the name, the validity dates, key usages and
        // revocation are not checked: the pin is the trust decision.
        let pins = opts.pins.clone();
        Arc::new(WithoutChain::new(provider(), move |end_entity| {
            let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
            if pins.contains(&digest) {
                Ok(())
            } else {
                Err(refusal(Verdict::PinMismatch, fingerprint(&digest)))
            }
        }))
    } else if opts.danger_accept_invalid_certs {
        // Any certificate (`danger_accept_invalid_certs`).
        Arc::new(WithoutChain::any(provider()))
    } else {
        let mut roots = RootCertStore::empty();
        if !opts.no_default_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        if opts.os_roots {
            add_os_roots(&mut roots)?;
        }
        for c in &opts.extra_roots {
            roots
                .add(c.clone())
                .map_err(|e| Error::Config(format!("invalid CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(Error::Config(
                "no trusted CA: only_added_roots is set but no CA certificate was added".into(),
            ));
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| Error::tls(format!("TLS configuration: {e}"), Some(Box::new(e))))?;
        Arc::new(Roots(webpki))
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match identity {
        None => builder.with_no_client_auth(),
        // rustls' error names what is wrong with the key (type, algorithm), never its bytes.
        Some(c) => builder
            .with_client_auth_cert(c.chain.clone(), c.key.clone_key())
            .map_err(|e| Error::Config(format!("client certificate and key: {e}")))?,
    };
    Ok(Arc::new(config))
}

/// Adds the operating system's trust store. An unreadable store, or one without a
/// single usable certificate, is an error that says where it was looked for: the option
/// was asked for, so it never silently means "web roots only".
fn add_os_roots(roots: &mut RootCertStore) -> Result<()> {
    let found = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = if found.errors.is_empty() {
            "it holds no certificate".to_string()
        } else {
            found
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        return Err(Error::Config(format!(
            "the operating system's trust store gave no usable CA certificate ({why}); \
             on Linux it is read from SSL_CERT_FILE / SSL_CERT_DIR when set, else from \
             the system bundle (e.g. /etc/ssl/certs, package ca-certificates)"
        )));
    }
    for e in &found.errors {
        tracing::debug!(error = %e, "part of the OS trust store could not be read");
    }
    Ok(())
}

/// `AB:CD:...`: a SHA-256 fingerprint as certificate tools print it.
pub(crate) fn fingerprint(digest: &[u8]) -> String {
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// The SHA-256 fingerprint of a DER certificate.
pub(crate) fn sha256_fingerprint(der: &[u8]) -> String {
    fingerprint(&Sha256::digest(der))
}

/// Parses a SHA-256 fingerprint: 64 hex digits, upper or lower case, with or without
/// `:` between the bytes (as `openssl x509 -fingerprint -sha256` prints it).
///
/// # Errors
/// [`Error::Config`] for anything else, saying what is wrong (a 40-digit value is a
/// SHA-1 thumbprint, as Windows shows certificates; the pin is the SHA-256 one).
pub(crate) fn parse_pin(text: &str) -> Result<[u8; 32]> {
    let t = text.trim();
    let digits: String = if t.contains(':') {
        let parts: Vec<&str> = t.split(':').collect();
        if parts.iter().any(|p| p.len() != 2) {
            return Err(Error::Config(format!(
                "invalid SHA-256 pin {t:?}: with colons, each byte is two hex digits (AB:CD:...)"
            )));
        }
        parts.concat()
    } else {
        t.to_string()
    };
    if let Some(c) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(Error::Config(format!(
            "invalid SHA-256 pin {t:?}: {c:?} is not a hex digit"
        )));
    }
    if digits.len() == 40 {
        return Err(Error::Config(format!(
            "invalid SHA-256 pin {t:?}: 40 hex digits is a SHA-1 thumbprint (as Windows shows \
             it); pin the SHA-256 fingerprint (64 hex digits), e.g. from \
             `openssl x509 -noout -fingerprint -sha256`"
        )));
    }
    if digits.len() != 64 {
        return Err(Error::Config(format!(
            "invalid SHA-256 pin {t:?}: {} hex digits, a SHA-256 fingerprint has 64",
            digits.len()
        )));
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16)
            .map_err(|e| Error::Config(format!("invalid SHA-256 pin {t:?}: {e}")))?;
    }
    Ok(out)
}

/// Why a verifier of this module refused the server's certificate, with the
/// certificate's SHA-256 fingerprint so that the message can say which one it was.
/// Carried as the rustls error's source ([`refusal`]) and read back by
/// [`handshake_error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A pinned client was shown none of its pins: [`Error::PinMismatch`].
    PinMismatch,
    /// The certificate chains to no trusted CA (rustls' `UnknownIssuer`).
    UnknownIssuer,
    /// The certificate is itself a CA certificate (basic constraints `CA:TRUE`, as
    /// `openssl req -x509` makes by default), which WebPKI refuses as a server
    /// certificate even from a trusted store (webpki's `CaUsedAsEndEntity`).
    CaAsServer,
}

/// A [`Verdict`] on a presented certificate.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) verdict: Verdict,
    pub(crate) presented: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.presented;
        match self.verdict {
            Verdict::PinMismatch => {
                write!(f, "the server's certificate (SHA-256 {p}) matches no pin")
            }
            Verdict::UnknownIssuer => write!(
                f,
                "invalid peer certificate: UnknownIssuer: it was issued by a CA that is not \
                 trusted (certificate SHA-256 {p})"
            ),
            Verdict::CaAsServer => write!(
                f,
                "invalid peer certificate: CaUsedAsEndEntity: the server's certificate is a CA \
                 certificate (certificate SHA-256 {p})"
            ),
        }
    }
}

impl std::error::Error for Refused {}

/// The rustls error that carries `verdict` on the certificate whose fingerprint is
/// `presented`.
fn refusal(verdict: Verdict, presented: String) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(Refused {
        verdict,
        presented,
    }))))
}

/// The rustls error under a handshake failure, if it is one.
fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// The verdict a verifier of this module put into a rustls error.
pub(crate) fn verifier_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let rustls = match e.downcast_ref::<std::io::Error>() {
        Some(io) => rustls_error(io)?,
        None => e.downcast_ref::<rustls::Error>()?,
    };
    match rustls {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(o))) => {
            o.downcast_ref::<Refused>()
        }
        _ => None,
    }
}

/// The error of a failed TLS handshake with `authority`: [`Error::PinMismatch`] when
/// the certificate is not pinned, else [`Error::Tls`] with a readable message.
pub(crate) fn handshake_error(authority: &str, e: std::io::Error) -> Error {
    let refused = verifier_error(&e);
    let message = match refused.map(|r| (r.verdict, r.presented.clone())) {
        Some((Verdict::PinMismatch, presented)) => {
            return Error::PinMismatch {
                endpoint: authority.to_string(),
                presented,
            };
        }
        Some((Verdict::UnknownIssuer, p)) => format!(
            "TLS handshake with {authority} failed: the server's certificate (SHA-256 {p}) \
             was issued by a CA this client does not trust: add that CA \
             (ClientBuilder::add_root_certificate_pem), trust the operating system's store \
             (ClientBuilder::os_roots), or pin the certificate (ClientBuilder::pin_sha256)"
        ),
        Some((Verdict::CaAsServer, p)) => format!(
            "TLS handshake with {authority} failed: the server's certificate (SHA-256 {p}) \
             is a CA certificate (basic constraints CA:TRUE, as `openssl req -x509` makes \
             by default), which is not accepted as a server's certificate even when \
             trusted: give the server a certificate issued by a CA, or pin this one \
             (ClientBuilder::pin_sha256)"
        ),
        None if handshake_failure_alert(&e) => format!(
            "TLS handshake with {authority} failed: {e}: the server found no cipher suite in \
             common. This client offers TLS 1.2 and 1.3 with ECDHE and AES-GCM or \
             ChaCha20 only; Windows Server 2012 R2 and older (and Windows 7 and 8.1) offer \
             AES-GCM only with an ECDSA certificate, so an RSA certificate on their HTTPS \
             listener leaves nothing in common: give the listener an ECDSA certificate, or \
             use HTTP with message encryption (NTLM or Kerberos seal every message)"
        ),
        None => format!("TLS handshake with {authority} failed: {e}"),
    };
    Error::tls(message, Some(Box::new(e)))
}

/// Whether the server ended the handshake with a `handshake_failure` alert (what
/// Schannel sends when no cipher suite is in common).
fn handshake_failure_alert(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|r| {
            matches!(
                r,
                rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure)
            )
        })
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

/// WebPKI verification against the root store, with the presented certificate's
/// fingerprint added to an unknown-issuer refusal.
#[derive(Debug)]
struct Roots(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for Roots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|e| match e {
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => refusal(
                    Verdict::UnknownIssuer,
                    sha256_fingerprint(end_entity.as_ref()),
                ),
                // webpki's own error, which rustls passes on without a variant of its own.
                rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(o)))
                    if format!("{o:?}") == "CaUsedAsEndEntity" =>
                {
                    refusal(Verdict::CaAsServer, sha256_fingerprint(end_entity.as_ref()))
                }
                other => other,
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.0.requires_raw_public_keys()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.0.root_hint_subjects()
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
    fn the_cache_key_tells_the_new_options_apart() {
        let base = TlsOptions::default();
        let os = TlsOptions {
            os_roots: true,
            ..TlsOptions::default()
        };
        let pinned = TlsOptions {
            pins: vec![[1; 32]],
            ..TlsOptions::default()
        };
        let other_pin = TlsOptions {
            pins: vec![[2; 32]],
            ..TlsOptions::default()
        };
        let both_pins = TlsOptions {
            pins: vec![[2; 32], [1; 32]],
            ..TlsOptions::default()
        };
        let keys = [&base, &os, &pinned, &other_pin, &both_pins].map(|o| Key::of(o, None));
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate() {
                assert_eq!(a == b, i == j, "options {i} and {j}");
            }
        }
        // The order of the pins does not matter.
        let reordered = TlsOptions {
            pins: vec![[1; 32], [2; 32], [1; 32]],
            ..TlsOptions::default()
        };
        assert!(Key::of(&reordered, None) == Key::of(&both_pins, None));
        // And configurations follow the keys.
        let a = client_config(&pinned).unwrap();
        let b = client_config(&other_pin).unwrap();
        let c = client_config(&pinned.clone()).unwrap();
        assert!(!Arc::ptr_eq(&a, &b) && Arc::ptr_eq(&a, &c));
        let plain = client_config(&base).unwrap();
        assert!(!Arc::ptr_eq(&a, &plain));
    }

    #[test]
    fn pins_parse_in_both_notations_and_print_with_colons() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let pin = parse_pin(hex).unwrap();
        assert_eq!(pin[0], 0x00);
        assert_eq!(pin[10], 0xaa);
        assert_eq!(pin[31], 0xff);
        let printed = fingerprint(&pin);
        assert_eq!(printed.len(), 32 * 3 - 1);
        assert!(printed.starts_with("00:11:22:") && printed.ends_with(":EE:FF"));
        assert_eq!(parse_pin(&printed).unwrap(), pin);
        assert_eq!(parse_pin(&format!("  {printed}\n")).unwrap(), pin);
        for bad in ["", ":", "0g", &hex[1..], &format!("{hex}00"), "+1"] {
            assert!(parse_pin(bad).is_err(), "{bad:?}");
        }
        // Non-ASCII input never panics (slicing by byte).
        assert!(parse_pin(&"é".repeat(32)).is_err());
        assert!(parse_pin(&"éé:".repeat(32)).is_err());
    }

    #[test]
    fn debug_shows_pins_as_fingerprints() {
        let opts = TlsOptions {
            pins: vec![[0xab; 32]],
            os_roots: true,
            ..TlsOptions::default()
        };
        let d = format!("{opts:?}");
        assert!(
            d.contains("AB:AB:AB") && d.contains("os_roots: true"),
            "{d}"
        );
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
