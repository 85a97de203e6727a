//! Kerberos security contexts through sspi's Kerberos package ([MS-WSMV] §2.2.9.1):
//! the initiator (an AP-REQ for a service principal, after the AS and TGS exchanges
//! with a KDC the caller connects to), the acceptor (an AP-REQ checked with the
//! service's long-term key), and message encryption under
//! `application/HTTP-Kerberos-session-encrypted`: the signature is the head of the
//! RFC 4121 wrap token, the sealed data its tail.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use sspi::network_client::NetworkClient;
use sspi::{
    AuthIdentity, Credentials, CredentialsBuffers, Kerberos, KerberosConfig, SecurityStatus, Sspi,
};

use super::{self as context, SecurityError};
use crate::encryption as sealing;

type Result<T> = std::result::Result<T, SecurityError>;

/// The protocol of Kerberos session encryption.
pub const KERBEROS_PROTOCOL: &str = "application/HTTP-Kerberos-session-encrypted";
/// The `Content-Type` of a message sealed with a Kerberos context.
pub const KERBEROS_CONTENT_TYPE: &str = "multipart/encrypted;protocol=\"application/HTTP-Kerberos-session-encrypted\";boundary=\"Encrypted Boundary\"";

fn auth_error(what: &str, e: &sspi::Error) -> SecurityError {
    SecurityError::Failed(format!(
        "Kerberos {what}: {:?}: {}",
        e.error_type, e.description
    ))
}

/// A client or server Kerberos context.
pub struct KerberosContext {
    krb: Kerberos,
    creds: Option<CredentialsBuffers>,
    spn: String,
    /// The `SEC_CHANNEL_BINDINGS` buffer handed to sspi with each initiator step.
    channel_bindings: Option<Vec<u8>>,
}

/// The `SEC_CHANNEL_BINDINGS` structure sspi reads from a `ChannelBindings` buffer
/// (32-byte header, no initiator or acceptor address, the application data after the
/// header): what the GSS-API calls `gss_channel_bindings_struct`, whose MD5 goes into
/// the authenticator checksum (RFC 4121 §4.1.1.2).
pub fn sec_channel_bindings(application_data: &[u8]) -> Vec<u8> {
    const HEADER: u32 = 32;
    let len = u32::try_from(application_data.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(32 + application_data.len());
    // initiator: type, length, offset; acceptor: type, length, offset.
    out.extend_from_slice(&[0u8; 24]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&HEADER.to_le_bytes());
    out.extend_from_slice(application_data);
    out
}

impl fmt::Debug for KerberosContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KerberosContext { .. }")
    }
}

impl KerberosContext {
    /// Initiator: a context for `identity` (whose user name carries the realm) that
    /// will ask for a ticket to `spn` (e.g. `HTTP/host`). No network yet: the first
    /// [`initialize`](Self::initialize) runs the KDC exchanges through its `kdc`.
    ///
    /// # Errors
    ///
    /// [`SecurityError::Failed`] when sspi refuses the configuration or credentials.
    pub fn client(
        config: KerberosConfig,
        identity: AuthIdentity,
        spn: String,
    ) -> Result<KerberosContext> {
        let (krb, creds) = context::quiet(|| {
            let mut krb =
                Kerberos::new_client_from_config(config).map_err(|e| auth_error("context", &e))?;
            let credentials = Credentials::from(identity);
            let handle = context::outbound_credentials(&mut krb, &credentials)
                .map_err(|e| auth_error("credentials", &e))?;
            Ok::<_, SecurityError>((krb, handle))
        })?;
        Ok(KerberosContext {
            krb,
            creds,
            spn,
            channel_bindings: None,
        })
    }

    /// Initiator: binds the context to a channel (for HTTPS the RFC 5929
    /// `tls-server-end-point` data): sspi puts the MD5 of the channel bindings into the
    /// AP-REQ authenticator's checksum and marks the AP options as channel-bound, as
    /// Windows' Extended Protection for Authentication expects. Call it before the first
    /// [`initialize`](Self::initialize).
    pub fn set_channel_bindings(&mut self, application_data: &[u8]) {
        self.channel_bindings = Some(sec_channel_bindings(application_data));
    }

    /// The `SEC_CHANNEL_BINDINGS` buffer the context hands to sspi, if bound.
    pub fn channel_bindings(&self) -> Option<&[u8]> {
        self.channel_bindings.as_deref()
    }

    /// Initiator: one step of the handshake on the server's `input` (empty at first),
    /// with the KDC reached through `kdc`. Returns sspi's status and the token to send.
    /// Blocking when `kdc` is.
    ///
    /// # Errors
    ///
    /// [`SecurityError::Failed`] when the KDC or the handshake fails.
    pub fn initialize(
        &mut self,
        input: &[u8],
        kdc: &dyn NetworkClient,
    ) -> Result<(SecurityStatus, Vec<u8>)> {
        self.initialize_with(input, kdc)
    }

    fn initialize_with(
        &mut self,
        input: &[u8],
        kdc: &dyn NetworkClient,
    ) -> Result<(SecurityStatus, Vec<u8>)> {
        context::initialize(
            &mut self.krb,
            &mut self.creds,
            Some(&self.spn),
            self.channel_bindings.as_deref(),
            input,
            kdc,
        )
        .map_err(|e| auth_error("handshake", &e))
    }

    /// Initiator: verifies the server's AP-REP (mutual authentication).
    ///
    /// # Errors
    ///
    /// [`SecurityError::Failed`] when the AP-REP does not complete the context.
    pub fn finish(&mut self, ap_rep: &[u8], kdc: &dyn NetworkClient) -> Result<()> {
        let (status, _) = self.initialize(ap_rep, kdc)?;
        if status != SecurityStatus::Ok {
            return Err(SecurityError::Failed(format!(
                "Kerberos: the server's AP-REP did not complete the context ({status:?})"
            )));
        }
        Ok(())
    }

    /// Server: an acceptor for the service principal `service` (e.g. `["HTTP",
    /// "localhost"]`) with its long-term key (from the keytab).
    ///
    /// # Errors
    /// The reason as text when sspi cannot make an acceptor from `service` and `key`.
    pub fn server(service: &[&str], key: Vec<u8>) -> std::result::Result<KerberosContext, String> {
        let krb = context::quiet(|| {
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
            Kerberos::new_server_from_config(config, props).map_err(|e| e.to_string())
        })?;
        Ok(KerberosContext {
            krb,
            creds: None,
            spn: service.join("/"),
            channel_bindings: None,
        })
    }

    /// Server: accepts an AP-REQ; returns the AP-REP token and the client principal.
    ///
    /// # Errors
    /// The refusal as text: sspi's error for an AP-REQ it does not accept (e.g. one that
    /// does not decrypt with the service key, or whose channel binding differs), or an
    /// acceptor status other than OK.
    pub fn accept(&mut self, token: &[u8]) -> std::result::Result<(Vec<u8>, String), String> {
        let (status, token) =
            context::accept(&mut self.krb, &mut self.creds, token).map_err(|e| e.to_string())?;
        if status != SecurityStatus::Ok {
            return Err(format!("acceptor status {status:?}"));
        }
        let user = context::quiet(|| self.krb.query_context_names())
            .map(|n| n.username.account_name().to_string())
            .map_err(|e| e.to_string())?;
        Ok((token, user))
    }

    /// Seals `plain`: the wrap-token head (the signature) and its tail.
    ///
    /// # Errors
    /// [`SecurityError::Failed`] when sspi cannot wrap the message (e.g. before the context
    /// is established).
    pub fn seal(&mut self, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
        context::seal(&mut self.krb, plain).map_err(|e| auth_error("sealing a message", &e))
    }

    /// Unseals and verifies a message; any failure is an [`SecurityError::Failed`].
    ///
    /// # Errors
    /// [`SecurityError::Failed`] for a wrap token that does not decrypt or verify.
    pub fn unseal(&mut self, signature: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        context::unseal(&mut self.krb, signature, sealed)
            .map_err(|e| auth_error("message signature verification failed", &e))
    }
}

/// Frames a message sealed with a Kerberos context (the layout of [`sealing::frame`],
/// with the Kerberos protocol name).
pub fn frame(original_len: usize, signature: &[u8], data: &[u8]) -> Bytes {
    sealing::frame_as(KERBEROS_PROTOCOL, original_len, signature, data)
}

/// The parts of a Kerberos-sealed body: `(original length, signature, data)`. Never
/// panics on any input.
///
/// # Errors
/// The reason as text when the body is not one Kerberos-encrypted part as
/// [`crate::encryption::parse`] describes it.
pub fn parse(body: &[u8]) -> std::result::Result<(usize, &[u8], &[u8]), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_bindings_are_the_structure_sspi_reads() {
        let data = b"tls-server-end-point:0123456789abcdef0123456789abcdef";
        let buf = sec_channel_bindings(data);
        assert_eq!(buf.len(), 32 + data.len());
        let cb = sspi::channel_bindings::ChannelBindings::from_bytes(&buf).unwrap();
        assert_eq!(cb.application_data, data);
        assert!(cb.initiator.is_empty() && cb.acceptor.is_empty());
        assert_eq!((cb.initiator_addr_type, cb.acceptor_addr_type), (0, 0));
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
