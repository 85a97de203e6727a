//! Credentials. Passwords live in `secrecy` types and never reach `Debug`, logs or errors.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use crate::error::{Error, Result};

/// Whether messages are sealed (encrypted and signed with the security context of an
/// NTLM/Negotiate handshake) as `multipart/encrypted` ([MS-WSMV] §2.2.9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Encryption {
    /// Seal on `http://`; on `https://` TLS carries the privacy (as WinRM expects).
    #[default]
    Auto,
    /// Seal every message, over HTTPS too.
    Always,
    /// Never seal. Over plain HTTP this is refused unless
    /// [`Auth::allow_unencrypted`] is set; the host must then have
    /// `AllowUnencrypted=true` (Windows default: false).
    Never,
}

/// User name, password and message-encryption policy of an NTLM or Negotiate login.
#[derive(Clone)]
pub struct SspiCredentials {
    pub(crate) user: String,
    pub(crate) password: SecretString,
    pub(crate) encryption: Encryption,
    pub(crate) allow_unencrypted: bool,
    /// Negotiate only: SPNEGO tokens (see [`Auth::spnego`]).
    pub(crate) spnego: bool,
    /// Negotiate with SPNEGO (feature `kerberos`): the KDC, realm and SPN of the
    /// Kerberos attempt.
    #[cfg(feature = "kerberos")]
    pub(crate) kerberos: Option<Box<super::kerberos::KerberosOptions>>,
}

impl SspiCredentials {
    /// The user name as given (`user`, `DOMAIN\user` or `user@domain`).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The message-encryption policy.
    pub fn encryption(&self) -> Encryption {
        self.encryption
    }
}

/// How to authenticate.
///
/// # Failed logons
///
/// A client never turns one wrong password into many failed logons (Active Directory
/// locks an account after a few): until a logon has succeeded, one logon runs at a
/// time and calls that need one wait for its outcome; once the server (a 401 to Basic
/// credentials, to an NTLM AUTHENTICATE or to a Kerberos AP-REQ) or the KDC (a wrong
/// password, an unknown, locked-out, disabled or expired account) refuses the
/// credentials, every waiting and later call fails at once with [`Error::Auth`]
/// (the call whose logon was refused gets [`Error::Unauthorized`] or the KDC's
/// [`Error::Auth`]) and the client sends no further logon, even after a success (a
/// password changed on the server side). To try other credentials, build another
/// client. Connection failures and timeouts decide nothing: the next call tries again.
/// After a success, connections authenticate in parallel; a handshake whose outcome is
/// unknown runs alone, and those waiting for it go together once it succeeds.
///
/// With Kerberos a client makes one ticket exchange with the KDC (the AS and TGS
/// exchanges), shared by all its connections; each connection sends its own AP-REQ.
///
/// [`Error::Auth`]: crate::Error::Auth
/// [`Error::Unauthorized`]: crate::Error::Unauthorized
#[derive(Clone)]
#[non_exhaustive]
pub enum Auth {
    /// No credentials (Identify with `WSMANIDENTIFY: unauthenticated`, or open endpoints).
    None,
    /// HTTP Basic. Refused over plain HTTP unless the client explicitly allows it.
    Basic {
        /// User name (`user`, `DOMAIN\user` or `user@domain`).
        user: String,
        /// Password.
        password: SecretString,
    },
    /// NTLM, sent under the HTTP `Negotiate` scheme (the only one WinRM offers for it),
    /// with message encryption. Each channel (TCP connection) runs its own handshake.
    Ntlm(SspiCredentials),
    /// Negotiate. By default the tokens are raw NTLM under the `Negotiate` scheme, which
    /// Windows accepts. With [`Auth::spnego`] they are SPNEGO tokens as Windows' own
    /// clients send them: Kerberos first when it is possible, NTLM inside SPNEGO when
    /// it is not (see [`Auth::spnego`]). SPNEGO-wrapped Kerberos without a password is
    /// a Kerberos logon from the ticket cache or a keytab with `KerberosOptions::spnego`
    /// (feature `gssapi`).
    Negotiate(SspiCredentials),
    /// Kerberos (feature `kerberos`): a password-based login at the KDC, the AP-REQ
    /// under the HTTP `Kerberos` scheme, and Kerberos message encryption.
    #[cfg(feature = "kerberos")]
    Kerberos(super::kerberos::KerberosCredentials),
    /// Client-certificate authentication (WinRM's certificate mapping), HTTPS only: the
    /// TLS handshake presents the certificate and every request carries
    /// `Authorization: http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual`
    /// (the security profile `wsman:secprofile/https/mutual`, [DMTF-DSP0226] Annex C.3.5;
    /// on the host `Service/Auth/Certificate`, default false). The host logs the request on as the user the certificate
    /// is mapped to (`winrm create winrm/config/service/certmapping`); one it does not
    /// map is [`Error::ClientCertificateRefused`](crate::Error::ClientCertificateRefused).
    Certificate(ClientCertificate),
    /// CredSSP ([MS-CSSP]), HTTPS only: a TLS channel inside the HTTP exchange
    /// (`Authorization: CredSSP`), NTLM (SPNEGO) inside it, and then the user's password
    /// delegated to the host (`TSCredentials`), so that commands there can reach other
    /// hosts as the user (the "second hop"; on the host `Service/Auth/CredSSP`, default
    /// false). Messages are encrypted with the inner TLS session
    /// (`multipart/x-multi-encrypted` in 16 KiB parts, [MS-WSMV] §2.2.9.1.3) unless
    /// [`Auth::encryption`] says otherwise (the outer HTTPS then protects them alone).
    ///
    /// The password goes to whoever answers the endpoint, so the client insists on an
    /// `https://` endpoint whose certificate is verified (by a CA or a pin): building a
    /// client with it for `http://` or with
    /// [`ClientBuilder::danger_accept_invalid_certs`] is
    /// [`Error::CredSspNeedsVerifiedHttps`], before anything is sent.
    ///
    /// [`ClientBuilder::danger_accept_invalid_certs`]: crate::ClientBuilder::danger_accept_invalid_certs
    /// [`Error::CredSspNeedsVerifiedHttps`]: crate::Error::CredSspNeedsVerifiedHttps
    CredSsp(SspiCredentials),
}

/// A TLS client identity: a certificate chain (leaf first) and its private key. The key
/// never appears in `Debug`, logs or errors.
#[derive(Clone)]
pub struct ClientCertificate {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: Arc<PrivateKeyDer<'static>>,
}

impl ClientCertificate {
    /// The certificate chain, leaf first (DER).
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The SHA-256 digest of the private key's DER encoding: part of the key under
    /// which TLS configurations are shared, so that the key itself is not kept there.
    pub(crate) fn key_digest(&self) -> [u8; 32] {
        Sha256::digest(self.key.secret_der()).into()
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("chain", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The `Authorization` value of a certificate logon: the URI of the security profile
/// `wsman:secprofile/https/mutual` ([DMTF-DSP0226] Annex C.3.5; [MS-WSMV] §2.2.4.34).
const MUTUAL: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual";

fn sspi_credentials(user: impl Into<String>, password: impl Into<String>) -> SspiCredentials {
    SspiCredentials {
        user: user.into(),
        password: SecretString::from(password.into()),
        encryption: Encryption::Auto,
        allow_unencrypted: false,
        spnego: false,
        #[cfg(feature = "kerberos")]
        kerberos: None,
    }
}

impl Auth {
    /// Client-certificate authentication from PEM: the certificate (leaf first, any
    /// intermediates after it) and its private key (PKCS#8, PKCS#1 or SEC1). HTTPS only:
    /// building a client for an `http://` endpoint with it is an [`Error::Config`].
    ///
    /// # Errors
    /// [`Error::Config`] when either holds nothing usable (the error never shows the key).
    pub fn certificate(cert_pem: &[u8], key_pem: &[u8]) -> Result<Auth> {
        let chain = super::tls::parse_pem_certificates(cert_pem).map_err(|e| match e {
            // Not "invalid configuration: client certificate: invalid configuration: ...".
            Error::Config(m) => Error::Config(format!("client certificate: {m}")),
            e => Error::Config(format!("client certificate: {e}")),
        })?;
        // The PEM parser's error is not shown: it may quote what it read.
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| {
            let encrypted = key_pem
                .windows(b"ENCRYPTED PRIVATE KEY".len())
                .any(|w| w == b"ENCRYPTED PRIVATE KEY")
                || key_pem
                    .windows(b"Proc-Type: 4,ENCRYPTED".len())
                    .any(|w| w == b"Proc-Type: 4,ENCRYPTED");
            Error::Config(if encrypted {
                "client certificate's private key is encrypted (a passphrase-protected PEM), \
                 which is not supported: decrypt it first (`openssl pkey -in key.pem -out \
                 plain.pem`) and keep the file readable only by the service"
                    .into()
            } else {
                "client certificate's private key: no usable PEM private key \
                 (PKCS#8, PKCS#1 or SEC1) found"
                    .into()
            })
        })?;
        Ok(Auth::Certificate(ClientCertificate {
            chain,
            key: Arc::new(key),
        }))
    }

    /// [`Auth::certificate`] from PEM files.
    ///
    /// # Errors
    /// [`Error::Config`] when a file cannot be read (naming it) or holds nothing usable.
    pub fn certificate_from_files(
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Result<Auth> {
        let read = |p: &Path, what: &str| {
            std::fs::read(p)
                .map_err(|e| Error::Config(format!("cannot read {what} {}: {e}", p.display())))
        };
        let cert = read(cert_path.as_ref(), "client certificate")?;
        let key = secrecy::SecretSlice::from(read(key_path.as_ref(), "client private key")?);
        Auth::certificate(&cert, key.expose_secret())
    }

    /// The client certificate, if this is a certificate logon.
    pub(crate) fn client_certificate(&self) -> Option<&ClientCertificate> {
        match self {
            Auth::Certificate(c) => Some(c),
            _ => None,
        }
    }

    /// Basic authentication.
    pub fn basic(user: impl Into<String>, password: impl Into<String>) -> Auth {
        Auth::Basic {
            user: user.into(),
            password: SecretString::from(password.into()),
        }
    }

    /// NTLM authentication with message encryption ([`Encryption::Auto`]).
    /// `user` may be `user`, `DOMAIN\user` or `user@domain`.
    pub fn ntlm(user: impl Into<String>, password: impl Into<String>) -> Auth {
        Auth::Ntlm(sspi_credentials(user, password))
    }

    /// Negotiate authentication with message encryption ([`Encryption::Auto`]); see
    /// [`Auth::Negotiate`] for what it negotiates today.
    pub fn negotiate(user: impl Into<String>, password: impl Into<String>) -> Auth {
        Auth::Negotiate(sspi_credentials(user, password))
    }

    /// CredSSP authentication with credential delegation (see [`Auth::CredSsp`]) and
    /// message encryption ([`Encryption::Always`]: every message is encrypted with the
    /// inner TLS session; [`Encryption::Auto`] leaves it to the outer HTTPS). `user` may
    /// be `DOMAIN\user`, `user@domain` or `user`.
    pub fn credssp(user: impl Into<String>, password: impl Into<String>) -> Auth {
        let mut c = sspi_credentials(user, password);
        c.encryption = Encryption::Always;
        Auth::CredSsp(c)
    }

    /// The CredSSP credentials, if this is a CredSSP logon.
    pub(crate) fn credssp_credentials(&self) -> Option<&SspiCredentials> {
        match self {
            Auth::CredSsp(c) => Some(c),
            _ => None,
        }
    }

    /// Kerberos authentication with message encryption ([`Encryption::Auto`]), for
    /// `user@REALM`, `REALM\user`, or `user` with [`KerberosOptions::realm`]
    /// (feature `kerberos`). The KDC is set with [`Auth::kerberos_options`].
    ///
    /// [`KerberosOptions::realm`]: super::kerberos::KerberosOptions::realm
    #[cfg(feature = "kerberos")]
    pub fn kerberos(user: impl Into<String>, password: impl Into<String>) -> Auth {
        Auth::Kerberos(super::kerberos::KerberosCredentials::new(sspi_credentials(
            user, password,
        )))
    }

    /// Kerberos from the user's ticket cache (after `kinit`), through the system GSSAPI
    /// (feature `gssapi`): no password. The cache is [`KerberosOptions::ccache`], else
    /// the one `KRB5CCNAME` names, else the system default; `principal` (`user@REALM`)
    /// picks one from a cache collection, `None` takes the cache's default principal.
    /// The KDC and realm come from krb5.conf (`KRB5_CONFIG`); of [`KerberosOptions`],
    /// `spn`, `ccache` and `canonicalize_host` apply. Messages are sealed as with
    /// [`Auth::kerberos`]. An expired ticket is an [`Error::Kerberos`] of kind
    /// [`KerberosErrorKind::TicketExpired`](crate::KerberosErrorKind::TicketExpired).
    ///
    /// [`KerberosOptions`]: super::kerberos::KerberosOptions
    /// [`KerberosOptions::ccache`]: super::kerberos::KerberosOptions::ccache
    #[cfg(feature = "gssapi")]
    pub fn kerberos_ticket_cache(principal: Option<&str>) -> Auth {
        let mut k = super::kerberos::KerberosCredentials::new(sspi_credentials(
            principal.unwrap_or_default(),
            String::new(),
        ));
        k.gss = Some(super::gssapi::GssSource::Cache {
            principal: principal.map(str::to_string),
        });
        Auth::Kerberos(k)
    }

    /// Kerberos with the key of `principal` (`user@REALM`) from a client keytab file,
    /// through the system GSSAPI (feature `gssapi`), as `kinit -k -t FILE` would. The
    /// tickets live in a private in-memory cache of the client (or in
    /// [`KerberosOptions::ccache`]). A file that does not exist is an
    /// [`Error::Kerberos`] of kind
    /// [`KeytabMissing`](crate::KerberosErrorKind::KeytabMissing) at the first logon.
    /// The in-memory cache (`MEMORY:tokio-winrm-<uuid>`, a few kilobytes of tickets)
    /// stays in the process after the client is dropped: the GSSAPI has no call to
    /// destroy it through a credential handle.
    ///
    /// [`KerberosOptions::ccache`]: super::kerberos::KerberosOptions::ccache
    #[cfg(feature = "gssapi")]
    pub fn kerberos_keytab(
        principal: impl Into<String>,
        keytab: impl Into<std::path::PathBuf>,
    ) -> Auth {
        let principal = principal.into();
        let mut k = super::kerberos::KerberosCredentials::new(sspi_credentials(
            principal.clone(),
            String::new(),
        ));
        k.gss = Some(super::gssapi::GssSource::Keytab {
            principal,
            path: keytab.into(),
        });
        Auth::Kerberos(k)
    }

    /// Sets the KDC, realm and service principal of a Kerberos login, and of the
    /// Kerberos attempt of a SPNEGO Negotiate login ([`Auth::spnego`]; there `spn`,
    /// `kdc`, `realm` and `canonicalize_host` apply); ignored otherwise.
    #[cfg(feature = "kerberos")]
    pub fn kerberos_options(mut self, options: super::kerberos::KerberosOptions) -> Auth {
        match &mut self {
            Auth::Kerberos(k) => k.options = options,
            Auth::Negotiate(c) => c.kerberos = Some(Box::new(options)),
            _ => {}
        }
        self
    }

    /// Negotiate as Windows' own clients do (Negotiate only; ignored otherwise): SPNEGO
    /// tokens (RFC 4178, [MS-SPNG]) under `Authorization: Negotiate`, through sspi's
    /// Negotiate package, instead of raw NTLM tokens.
    ///
    /// - The first token is always a `NegTokenInit`. With feature `kerberos` it offers
    ///   Kerberos first (`[MS-KRB5, KRB5, NTLMSSP]` with an AP-REQ) when Kerberos is
    ///   possible: the user names a realm (`user@REALM`, `REALM\user`, or
    ///   [`KerberosOptions::realm`]), a KDC is known for it
    ///   ([`KerberosOptions::kdc`], else `SSPI_KDC_URL` or the krb5.conf that
    ///   `KRB5_CONFIG` names), and the service principal is not an IP address (an
    ///   endpoint given as an address needs [`KerberosOptions::spn`]). Otherwise, and
    ///   without feature `kerberos`, it offers NTLM alone (`[NTLMSSP]` with the
    ///   NEGOTIATE).
    /// - The fallback from Kerberos to NTLM happens on the client, before anything is
    ///   sent to the server: when the KDC cannot be reached, names a wrong realm, does
    ///   not know the service principal, or the clocks are too far apart. A KDC that
    ///   refuses the password is a refusal (the logon gate closes), not a fallback. A
    ///   server that cannot use Kerberos selects NTLM in its answer and the exchange
    ///   goes on with NTLM. So a wrong password is one failed logon: at the KDC, or at
    ///   the server's NTLM check, never both and never twice.
    /// - With NTLM both sides exchange `mechListMIC`s (the client's with its
    ///   AUTHENTICATE, the server's in its final `WWW-Authenticate: Negotiate` token,
    ///   which the client requires before sealing anything). Messages are sealed with
    ///   the negotiated mechanism and framed as
    ///   `application/HTTP-SPNEGO-session-encrypted`, as the policy of
    ///   [`Auth::encryption`] says.
    /// - Kerberos tickets are shared by the client's connections, as for
    ///   [`Auth::kerberos`].
    ///
    /// [`KerberosOptions::realm`]: super::kerberos::KerberosOptions::realm
    /// [`KerberosOptions::kdc`]: super::kerberos::KerberosOptions::kdc
    /// [`KerberosOptions::spn`]: super::kerberos::KerberosOptions::spn
    #[cfg(feature = "kerberos")]
    pub fn spnego(mut self, yes: bool) -> Auth {
        if let Auth::Negotiate(c) = &mut self {
            c.spnego = yes;
        }
        self
    }

    /// Negotiate as Windows' own clients do (Negotiate only; ignored otherwise): SPNEGO
    /// tokens (RFC 4178, [MS-SPNG]) under `Authorization: Negotiate`, through sspi's
    /// Negotiate package, instead of raw NTLM tokens. Without feature `kerberos` the
    /// `NegTokenInit` offers NTLM alone (`[NTLMSSP]`); both sides then exchange
    /// `mechListMIC`s (the server's in its final `WWW-Authenticate: Negotiate` token,
    /// which the client requires before sealing anything), and messages are sealed
    /// with NTLM and framed as `application/HTTP-SPNEGO-session-encrypted`. With
    /// feature `kerberos` Kerberos is tried first, with a fallback to NTLM.
    #[cfg(not(feature = "kerberos"))]
    pub fn spnego(mut self, yes: bool) -> Auth {
        if let Auth::Negotiate(c) = &mut self {
            c.spnego = yes;
        }
        self
    }

    /// Whether this is a SPNEGO Negotiate login ([`Auth::spnego`]).
    pub(crate) fn is_spnego(&self) -> bool {
        matches!(self, Auth::Negotiate(c) if c.spnego)
    }

    /// Sets the message-encryption policy (NTLM, Negotiate, Kerberos and CredSSP; ignored
    /// otherwise). CredSSP's default is [`Encryption::Always`].
    pub fn encryption(mut self, policy: Encryption) -> Auth {
        if let Some(c) = self.sspi_mut() {
            c.encryption = policy;
        }
        self
    }

    /// Explicitly allows [`Encryption::Never`] over plain HTTP (NTLM/Negotiate only): the
    /// SOAP messages then travel in clear text, and the host must allow it.
    pub fn allow_unencrypted(mut self, yes: bool) -> Auth {
        if let Some(c) = self.sspi_mut() {
            c.allow_unencrypted = yes;
        }
        self
    }

    fn sspi_mut(&mut self) -> Option<&mut SspiCredentials> {
        match self {
            Auth::Ntlm(c) | Auth::Negotiate(c) | Auth::CredSsp(c) => Some(c),
            #[cfg(feature = "kerberos")]
            Auth::Kerberos(k) => Some(&mut k.sspi),
            Auth::None | Auth::Basic { .. } | Auth::Certificate(_) => None,
        }
    }

    /// The NTLM/Negotiate credentials, if this is such a login.
    pub(crate) fn sspi(&self) -> Option<&SspiCredentials> {
        match self {
            Auth::Ntlm(c) | Auth::Negotiate(c) => Some(c),
            #[cfg(feature = "kerberos")]
            Auth::Kerberos(k) => Some(&k.sspi),
            Auth::None | Auth::Basic { .. } | Auth::Certificate(_) | Auth::CredSsp(_) => None,
        }
    }

    /// The user name, if any (a certificate logon has none: the host maps it).
    pub fn user(&self) -> Option<&str> {
        match self {
            Auth::None | Auth::Certificate(_) => None,
            Auth::Basic { user, .. } => Some(user),
            Auth::Ntlm(c) | Auth::Negotiate(c) | Auth::CredSsp(c) => Some(&c.user),
            #[cfg(feature = "kerberos")]
            Auth::Kerberos(k) => Some(k.sspi.user.as_str()).filter(|u| !u.is_empty()),
        }
    }

    /// The scheme name as used in `WWW-Authenticate`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Basic { .. } => "Basic",
            Auth::Certificate(_) => "certificate",
            Auth::Ntlm(_) | Auth::Negotiate(_) => "Negotiate",
            Auth::CredSsp(_) => "CredSSP",
            #[cfg(feature = "kerberos")]
            Auth::Kerberos(_) => "Kerberos",
        }
    }

    /// Whether messages are sealed on an endpoint of this kind (`https` or not).
    pub(crate) fn seals(&self, https: bool) -> bool {
        let policy = self.sspi().or(self.credssp_credentials());
        match policy.map(|c| c.encryption) {
            Some(Encryption::Always) => true,
            Some(Encryption::Auto) => !https,
            Some(Encryption::Never) | None => false,
        }
    }

    /// The value of the `Authorization` header for Basic, and for a certificate logon.
    pub(crate) fn basic_header(&self) -> Option<http::HeaderValue> {
        match self {
            Auth::Certificate(_) => Some(http::HeaderValue::from_static(MUTUAL)),
            Auth::Basic { user, password } => {
                let raw = format!("{user}:{}", password.expose_secret());
                let enc = base64::engine::general_purpose::STANDARD.encode(raw.as_bytes());
                let mut v = http::HeaderValue::from_str(&format!("Basic {enc}")).ok()?;
                v.set_sensitive(true);
                Some(v)
            }
            Auth::None | Auth::Ntlm(_) | Auth::Negotiate(_) | Auth::CredSsp(_) => None,
            #[cfg(feature = "kerberos")]
            Auth::Kerberos(_) => None,
        }
    }
}

impl fmt::Debug for SspiCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SspiCredentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("encryption", &self.encryption)
            .field("allow_unencrypted", &self.allow_unencrypted)
            .field("spnego", &self.spnego)
            .finish()
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("Auth::None"),
            Auth::Basic { user, .. } => f
                .debug_struct("Auth::Basic")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
            Auth::Ntlm(c) => f.debug_tuple("Auth::Ntlm").field(c).finish(),
            Auth::Negotiate(c) => f.debug_tuple("Auth::Negotiate").field(c).finish(),
            #[cfg(feature = "kerberos")]
            Auth::Kerberos(k) => f.debug_tuple("Auth::Kerberos").field(k).finish(),
            Auth::Certificate(c) => f.debug_tuple("Auth::Certificate").field(c).finish(),
            Auth::CredSsp(c) => f.debug_tuple("Auth::CredSsp").field(c).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let a = Auth::basic("DOMAIN\\bob", "hunter2-secret");
        let d = format!("{a:?}");
        assert!(d.contains("DOMAIN\\\\bob"));
        assert!(!d.contains("hunter2"));
        let h = a.basic_header().unwrap();
        assert!(h.is_sensitive());
        assert!(!format!("{h:?}").contains("aHVudGVy"));
        for a in [
            Auth::ntlm("bob@corp.example", "hunter2-secret"),
            Auth::negotiate("CORP\\bob", "hunter2-secret"),
            Auth::credssp("CORP\\bob", "hunter2-secret"),
        ] {
            let d = format!("{a:?} {a:#?}");
            assert!(d.contains("bob") && d.contains("<redacted>"), "{d}");
            assert!(!d.contains("hunter2"), "{d}");
        }
    }

    #[test]
    fn spnego_is_a_negotiate_option() {
        assert!(!Auth::negotiate("u", "p").is_spnego());
        let a = Auth::negotiate("u", "p").spnego(true);
        assert!(a.is_spnego() && a.scheme() == "Negotiate");
        assert!(a.seals(false) && !a.seals(true));
        // Other schemes ignore it.
        assert!(!Auth::ntlm("u", "p").spnego(true).is_spnego());
        assert!(!Auth::credssp("u", "p").spnego(true).is_spnego());
        assert!(
            !Auth::negotiate("u", "p")
                .spnego(true)
                .spnego(false)
                .is_spnego()
        );
    }

    #[test]
    fn encryption_policy() {
        let a = Auth::ntlm("u", "p");
        assert!(a.seals(false) && !a.seals(true));
        let a = Auth::ntlm("u", "p").encryption(Encryption::Always);
        assert!(a.seals(false) && a.seals(true));
        let a = Auth::negotiate("u", "p").encryption(Encryption::Never);
        assert!(!a.seals(false) && !a.seals(true));
        assert!(!Auth::basic("u", "p").seals(false));
        assert_eq!(Auth::ntlm("u", "p").scheme(), "Negotiate");
        // CredSSP encrypts with its inner TLS session by default, over HTTPS too.
        let a = Auth::credssp("u", "p");
        assert!(a.seals(true) && a.scheme() == "CredSSP");
        assert!(
            !Auth::credssp("u", "p")
                .encryption(Encryption::Auto)
                .seals(true)
        );
    }
}
