//! Kerberos (feature `kerberos`) through sspi's Kerberos package: the client side (a
//! password-based AS exchange and a TGS exchange with the KDC over TCP, then the AP-REQ
//! under the HTTP `Kerberos` scheme), the acceptor side the simulator uses, and WinRM
//! message encryption with a Kerberos context ([MS-WSMV] §2.2.9.1,
//! `application/HTTP-Kerberos-session-encrypted`: the signature is the head of the
//! RFC 4121 wrap token, the sealed data its tail).
//!
//! The KDC exchange runs on a blocking thread: sspi drives it as a generator that asks
//! for one network round trip at a time, answered here over std TCP (RFC 4120 §7.2.2,
//! each message prefixed by its 4-byte big-endian length). sspi's `network_client`
//! feature (reqwest) is not used.

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;
use secrecy::ExposeSecret;
use sspi::network_client::NetworkClient;
use sspi::{
    AuthIdentity, BufferType, ClientRequestFlags, Credentials, CredentialsBuffers,
    DataRepresentation, Kerberos, KerberosConfig, NetworkProtocol, NetworkRequest, SecurityBuffer,
    SecurityStatus, Sspi, SspiImpl, Username,
};

use super::auth::SspiCredentials;
use super::context::{self, Message};
use super::ntlm::NtlmContext;
use super::sealing;
use crate::error::{Error, Result};

/// The protocol of Kerberos session encryption.
pub(crate) const KERBEROS_PROTOCOL: &str = "application/HTTP-Kerberos-session-encrypted";
/// The `Content-Type` of a message sealed with a Kerberos context.
pub(crate) const KERBEROS_CONTENT_TYPE: &str = "multipart/encrypted;protocol=\"application/HTTP-Kerberos-session-encrypted\";boundary=\"Encrypted Boundary\"";
const KDC_TIMEOUT: Duration = Duration::from_secs(10);
/// A KDC answer larger than this is refused.
const MAX_KDC_REPLY: usize = 1 << 20;

/// Where the KDC is and which realm the user belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KerberosOptions {
    /// The KDC: `host:port`, or `tcp://host:port`. `None`: looked up for the realm in
    /// the krb5.conf that `KRB5_CONFIG` names (as MIT Kerberos does).
    pub kdc: Option<String>,
    /// The realm of a user given without one (`user`); `user@REALM` and `REALM\user`
    /// carry their own.
    pub realm: Option<String>,
    /// The service principal; `HTTP/<endpoint host>` when `None`, as WinRM registers it.
    pub spn: Option<String>,
}

impl KerberosOptions {
    /// Options with a KDC address and a realm.
    pub fn new(kdc: impl Into<String>, realm: impl Into<String>) -> KerberosOptions {
        KerberosOptions {
            kdc: Some(kdc.into()),
            realm: Some(realm.into()),
            spn: None,
        }
    }
}

/// The credentials and options of a Kerberos login.
#[derive(Clone)]
pub struct KerberosCredentials {
    pub(crate) sspi: SspiCredentials,
    pub(crate) options: KerberosOptions,
}

impl KerberosCredentials {
    pub(crate) fn new(sspi: SspiCredentials) -> KerberosCredentials {
        KerberosCredentials {
            sspi,
            options: KerberosOptions::default(),
        }
    }

    /// The user name as given.
    pub fn user(&self) -> &str {
        &self.sspi.user
    }

    /// The KDC and realm settings.
    pub fn options(&self) -> &KerberosOptions {
        &self.options
    }
}

impl fmt::Debug for KerberosCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KerberosCredentials")
            .field("sspi", &self.sspi)
            .field("options", &self.options)
            .finish()
    }
}

fn auth_error(what: &str, e: &sspi::Error) -> Error {
    Error::Auth(format!(
        "Kerberos {what}: {:?}: {}",
        e.error_type, e.description
    ))
}

/// `(account, REALM)` of a user name: `user@REALM`, `REALM\user`, or `user` with the
/// configured realm.
fn principal(user: &str, realm: Option<&str>) -> Result<(String, String)> {
    let (account, domain) = if let Some((d, u)) = user.split_once('\\') {
        (u, Some(d))
    } else if let Some((u, d)) = user.rsplit_once('@') {
        (u, Some(d))
    } else {
        (user, realm)
    };
    let domain = domain.or(realm).filter(|d| !d.is_empty()).ok_or_else(|| {
        Error::Config(format!(
            "Kerberos user {user:?} has no realm: use user@REALM or set KerberosOptions::realm"
        ))
    })?;
    if account.is_empty() {
        return Err(Error::Config("empty Kerberos user name".into()));
    }
    Ok((account.to_string(), domain.to_ascii_uppercase()))
}

/// sspi's network client: the KDC over TCP, std sockets, with timeouts.
struct KdcTcp;

impl KdcTcp {
    fn exchange(request: &NetworkRequest) -> std::io::Result<Vec<u8>> {
        let host = request.url.host_str().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = request.url.port().unwrap_or(88);
        let mut last = std::io::Error::other("the KDC name resolves to no address");
        for addr in (host, port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, KDC_TIMEOUT) {
                Ok(mut s) => {
                    s.set_read_timeout(Some(KDC_TIMEOUT))?;
                    s.set_write_timeout(Some(KDC_TIMEOUT))?;
                    // sspi's TCP messages already carry their length prefix.
                    s.write_all(&request.data)?;
                    let mut len = [0u8; 4];
                    s.read_exact(&mut len)?;
                    let n = u32::from_be_bytes(len) as usize;
                    if n > MAX_KDC_REPLY {
                        return Err(std::io::Error::other("KDC reply too large"));
                    }
                    let mut reply = vec![0u8; 4 + n];
                    reply[..4].copy_from_slice(&len);
                    s.read_exact(&mut reply[4..])?;
                    return Ok(reply);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

impl NetworkClient for KdcTcp {
    fn send(&self, request: &NetworkRequest) -> sspi::Result<Vec<u8>> {
        if request.protocol != NetworkProtocol::Tcp {
            return Err(sspi::Error::new(
                sspi::ErrorKind::NoAuthenticatingAuthority,
                format!("only tcp:// KDCs are supported, not {:?}", request.protocol),
            ));
        }
        KdcTcp::exchange(request).map_err(|e| {
            sspi::Error::new(
                sspi::ErrorKind::NoAuthenticatingAuthority,
                format!("KDC {}: {e}", request.url),
            )
        })
    }
}

/// A client or server Kerberos context.
pub(crate) struct KerberosContext {
    krb: Kerberos,
    creds: Option<CredentialsBuffers>,
    spn: String,
}

impl fmt::Debug for KerberosContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KerberosContext { .. }")
    }
}

fn client_flags() -> ClientRequestFlags {
    ClientRequestFlags::MUTUAL_AUTH
        | ClientRequestFlags::CONFIDENTIALITY
        | ClientRequestFlags::INTEGRITY
        | ClientRequestFlags::SEQUENCE_DETECT
        | ClientRequestFlags::ALLOCATE_MEMORY
}

impl KerberosContext {
    /// Client: the AS and TGS exchanges with the KDC, then the AP-REQ token (GSS-API
    /// framed) for `HTTP/<host>`. Blocking (network): call it on a blocking thread.
    pub(crate) fn client(
        creds: &KerberosCredentials,
        host: &str,
    ) -> Result<(KerberosContext, Vec<u8>)> {
        let (account, realm) = principal(&creds.sspi.user, creds.options.realm.as_deref())?;
        let username = Username::new_down_level_logon_name(&account, &realm)
            .map_err(|e| Error::Config(format!("invalid Kerberos user name: {e}")))?;
        let identity = AuthIdentity {
            username,
            password: creds.sspi.password.expose_secret().to_string().into(),
        };
        let config = match &creds.options.kdc {
            Some(kdc) => KerberosConfig::new_with_kdc_url(kdc, "tokio-winrm".into()),
            None => KerberosConfig {
                kdc_resolution: sspi::KdcResolution::KdcUrl(None),
                client_computer_name: "tokio-winrm".into(),
            },
        };
        let mut krb =
            Kerberos::new_client_from_config(config).map_err(|e| auth_error("context", &e))?;
        let credentials = Credentials::from(identity);
        let handle = context::outbound_credentials(&mut krb, &credentials)
            .map_err(|e| auth_error("credentials", &e))?;
        let spn = creds
            .options
            .spn
            .clone()
            .unwrap_or_else(|| format!("HTTP/{host}"));
        let mut ctx = KerberosContext {
            krb,
            creds: handle,
            spn,
        };
        let (status, token) = ctx.initialize(&[])?;
        if status != SecurityStatus::ContinueNeeded || token.is_empty() {
            return Err(Error::Auth(format!(
                "Kerberos: no AP-REQ after the KDC exchange ({status:?})"
            )));
        }
        Ok((ctx, token))
    }

    fn initialize(&mut self, input: &[u8]) -> Result<(SecurityStatus, Vec<u8>)> {
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let mut input_buffers = vec![SecurityBuffer::new(input.to_vec(), BufferType::Token)];
        let spn = self.spn.clone();
        let mut builder = self
            .krb
            .initialize_security_context()
            .with_credentials_handle(&mut self.creds)
            .with_context_requirements(client_flags())
            .with_target_data_representation(DataRepresentation::Native)
            .with_target_name(&spn)
            .with_input(&mut input_buffers)
            .with_output(&mut output);
        let result = self
            .krb
            .initialize_security_context_impl(&mut builder)
            .and_then(|mut g| g.resolve_with_client(&KdcTcp))
            .map_err(|e| auth_error("handshake", &e))?;
        Ok((result.status, context::output_token(output)))
    }

    /// Client: verifies the server's AP-REP (mutual authentication).
    pub(crate) fn finish(&mut self, ap_rep: &[u8]) -> Result<()> {
        let (status, _) = self.initialize(ap_rep)?;
        if status != SecurityStatus::Ok {
            return Err(Error::Auth(format!(
                "Kerberos: the server's AP-REP did not complete the context ({status:?})"
            )));
        }
        Ok(())
    }

    /// Server: an acceptor for the service principal `service` (e.g. `["HTTP",
    /// "localhost"]`) with its long-term key (from the keytab).
    #[cfg_attr(not(feature = "sim"), allow(dead_code))]
    pub(crate) fn server(
        service: &[&str],
        key: Vec<u8>,
    ) -> std::result::Result<KerberosContext, String> {
        let props = sspi::kerberos::ServerProperties::new(
            service,
            None,
            Duration::from_secs(300),
            Some(sspi::Secret::new(key)),
        )
        .map_err(|e| e.to_string())?;
        let config = KerberosConfig {
            kdc_resolution: sspi::KdcResolution::KdcUrl(None),
            client_computer_name: "tokio-winrm-sim".into(),
        };
        let krb = Kerberos::new_server_from_config(config, props).map_err(|e| e.to_string())?;
        Ok(KerberosContext {
            krb,
            creds: None,
            spn: service.join("/"),
        })
    }

    /// Server: accepts an AP-REQ; returns the AP-REP token and the client principal.
    #[cfg_attr(not(feature = "sim"), allow(dead_code))]
    pub(crate) fn accept(
        &mut self,
        token: &[u8],
    ) -> std::result::Result<(Vec<u8>, String), String> {
        let (status, token) =
            context::accept(&mut self.krb, &mut self.creds, token).map_err(|e| e.to_string())?;
        if status != SecurityStatus::Ok {
            return Err(format!("acceptor status {status:?}"));
        }
        let user = self
            .krb
            .query_context_names()
            .map(|n| n.username.account_name().to_string())
            .map_err(|e| e.to_string())?;
        Ok((token, user))
    }

    /// Seals `plain`: the wrap-token head (the signature) and its tail.
    pub(crate) fn seal(&mut self, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
        let trailer = self
            .krb
            .query_context_sizes()
            .map_err(|e| auth_error("sealing a message", &e))?
            .security_trailer as usize;
        let mut signature = vec![0u8; trailer];
        let data = context::transform(&mut self.krb, Message::Seal, &mut signature, plain)
            .map_err(|e| auth_error("sealing a message", &e))?;
        Ok((signature, data))
    }

    /// Unseals and verifies a message; any failure is an [`Error::Auth`].
    pub(crate) fn unseal(&mut self, signature: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        context::transform(
            &mut self.krb,
            Message::Unseal,
            &mut signature.to_vec(),
            sealed,
        )
        .map_err(|e| auth_error("message signature verification failed", &e))
    }
}

/// Frames a message sealed with a Kerberos context (the layout of [`sealing::frame`],
/// with the Kerberos protocol name).
pub(crate) fn frame(original_len: usize, signature: &[u8], data: &[u8]) -> Bytes {
    sealing::frame_as(KERBEROS_PROTOCOL, original_len, signature, data)
}

/// The parts of a Kerberos-sealed body: `(original length, signature, data)`. Never
/// panics on any input.
pub(crate) fn parse(body: &[u8]) -> std::result::Result<(usize, &[u8], &[u8]), String> {
    const OPEN: &[u8] = b"--Encrypted Boundary\r\n";
    let find = sealing::find_ci;
    let rest = body
        .strip_prefix(OPEN)
        .ok_or("does not start with the boundary")?;
    let second = find(rest, OPEN).ok_or("no second part")?;
    let header = &rest[..second];
    if find(header, KERBEROS_PROTOCOL.as_bytes()).is_none() {
        return Err("the first part is not HTTP-Kerberos-session-encrypted".into());
    }
    let original_len = sealing::original_len(header).map_err(|e| e.0)?;
    let part = &rest[second + OPEN.len()..];
    let line_end = find(part, b"\r\n").ok_or("no header line in the second part")?;
    let (signature, data) = sealing::split_payload(&part[line_end + 2..]).map_err(|e| e.0)?;
    Ok((original_len, signature, data))
}

/// The security context of a channel: NTLM or Kerberos.
#[derive(Debug)]
pub(crate) enum Security {
    Ntlm(Box<NtlmContext>),
    Kerberos(Box<KerberosContext>),
}

impl From<NtlmContext> for Security {
    fn from(c: NtlmContext) -> Self {
        Security::Ntlm(Box::new(c))
    }
}

/// Seals and frames a request: its content type and body.
pub(crate) fn seal_message(ctx: &mut Security, plain: &[u8]) -> Result<(&'static str, Bytes)> {
    match ctx {
        Security::Ntlm(c) => {
            let (signature, sealed) = c.seal(plain)?;
            Ok((
                sealing::SPNEGO_CONTENT_TYPE,
                sealing::frame(plain.len(), &signature, &sealed),
            ))
        }
        Security::Kerberos(c) => {
            let (signature, sealed) = c.seal(plain)?;
            Ok((
                KERBEROS_CONTENT_TYPE,
                frame(plain.len(), &signature, &sealed),
            ))
        }
    }
}

/// Parses and unseals a sealed body: the plaintext and its declared length.
pub(crate) fn open_message(ctx: &mut Security, body: &[u8]) -> Result<(Vec<u8>, usize)> {
    match ctx {
        Security::Ntlm(c) => {
            let parts = sealing::parse(body).map_err(|e| Error::Auth(e.to_string()))?;
            Ok((c.unseal(parts.signature, parts.data)?, parts.original_len))
        }
        Security::Kerberos(c) => {
            let (len, signature, data) = parse(body)
                .map_err(|e| Error::Auth(format!("malformed multipart/encrypted body: {e}")))?;
            Ok((c.unseal(signature, data)?, len))
        }
    }
}

/// The `Authorization: Kerberos <token>` value.
pub(crate) fn header(token: &[u8]) -> Result<http::HeaderValue> {
    use base64::Engine as _;
    let value = format!(
        "Kerberos {}",
        base64::engine::general_purpose::STANDARD.encode(token)
    );
    let mut v = http::HeaderValue::from_str(&value).map_err(|e| Error::Auth(e.to_string()))?;
    v.set_sensitive(true);
    Ok(v)
}

/// The token of a `WWW-Authenticate: <scheme> <base64>` header.
pub(crate) fn scheme_token(headers: &http::HeaderMap, scheme: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|v| {
            let (s, token) = v.trim().split_once(' ')?;
            if !s.eq_ignore_ascii_case(scheme) {
                return None;
            }
            base64::engine::general_purpose::STANDARD
                .decode(token.trim())
                .ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals() {
        assert_eq!(
            principal("vagrant", Some("tokio.test")).unwrap(),
            ("vagrant".into(), "TOKIO.TEST".into())
        );
        assert_eq!(
            principal("vagrant@TOKIO.TEST", None).unwrap(),
            ("vagrant".into(), "TOKIO.TEST".into())
        );
        assert_eq!(
            principal("CORP\\bob", Some("X")).unwrap(),
            ("bob".into(), "CORP".into())
        );
        assert!(principal("vagrant", None).is_err());
    }

    #[test]
    fn debug_hides_the_password() {
        let a = crate::Auth::kerberos("vagrant", "hunter2-secret")
            .kerberos_options(KerberosOptions::new("127.0.0.1:88", "TOKIO.TEST"));
        let d = format!("{a:?} {a:#?}");
        assert!(d.contains("vagrant") && d.contains("TOKIO.TEST"), "{d}");
        assert!(!d.contains("hunter2"), "{d}");
        assert_eq!(a.scheme(), "Kerberos");
        assert!(a.seals(false) && !a.seals(true));
    }

    #[test]
    fn frames_round_trip_and_never_panic() {
        let body = frame(5, &[9u8; 76], b"abcde");
        assert_eq!(parse(&body).unwrap(), (5, &[9u8; 76][..], &b"abcde"[..]));
        for cut in 0..body.len() {
            let _ = parse(&body[..cut]);
        }
        assert!(parse(&sealing::frame(5, &[9u8; 16], b"abcde")).is_err());
    }
}
