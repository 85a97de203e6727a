//! NTLM security contexts through the `sspi` crate: the client side of the handshake
//! (NEGOTIATE, then AUTHENTICATE from the server's CHALLENGE), the acceptor side the
//! simulator uses, and sealing/unsealing of messages with an established context.
//!
//! A context belongs to one TCP connection (DESIGN §2). Sealing advances RC4 state and
//! sequence numbers, so a message sealed under one context can never be sent under
//! another, and a failed unseal leaves the context unusable: the caller drops it.

use secrecy::{ExposeSecret, SecretString};
use sspi::{
    AuthIdentity, AuthIdentityBuffers, BufferType, ClientRequestFlags, DataRepresentation, Ntlm,
    SecurityBuffer, Sspi, SspiImpl, Username,
};

use super::{self as context, Message, SecurityError};

type Result<T> = std::result::Result<T, SecurityError>;

/// The NTLM signature size.
pub const SIGNATURE_LEN: usize = 16;
const NTLMSSP: &[u8] = b"NTLMSSP\0";

fn auth_error(what: &str, e: &sspi::Error) -> SecurityError {
    // sspi's messages name states and flags, never secrets.
    SecurityError::Failed(format!("{what}: {:?}: {}", e.error_type, e.description))
}

/// The NTLM message type (1, 2 or 3) of a raw token, if it is one.
pub fn message_type(token: &[u8]) -> Option<u32> {
    let rest = token.strip_prefix(NTLMSSP)?;
    Some(u32::from_le_bytes(*rest.first_chunk::<4>()?))
}

/// The user name carried by an AUTHENTICATE message (UTF-16LE, as sspi sends it),
/// without the domain. `None` when the message is malformed.
pub fn authenticate_user(token: &[u8]) -> Option<String> {
    if message_type(token)? != 3 {
        return None;
    }
    let field = token.get(36..44)?;
    let len = usize::from(u16::from_le_bytes([field[0], field[1]]));
    let off = u32::from_le_bytes([field[4], field[5], field[6], field[7]]) as usize;
    let raw = token.get(off..off.checked_add(len)?)?;
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

/// A client or server NTLM context.
pub struct NtlmContext {
    ntlm: Ntlm,
    creds: Option<AuthIdentityBuffers>,
}

impl std::fmt::Debug for NtlmContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NtlmContext { .. }")
    }
}

fn client_flags() -> ClientRequestFlags {
    ClientRequestFlags::CONFIDENTIALITY
        | ClientRequestFlags::INTEGRITY
        | ClientRequestFlags::ALLOCATE_MEMORY
}

impl NtlmContext {
    /// Starts a client context and returns it with the NEGOTIATE token. `user` may be
    /// `user`, `DOMAIN\user` or `user@domain`; `channel_binding` is the RFC 5929
    /// application data (`tls-server-end-point:` + certificate hash) on HTTPS.
    ///
    /// # Errors
    /// [`SecurityError::InvalidName`] for a user name sspi cannot parse;
    /// [`SecurityError::Failed`] when sspi cannot acquire credentials or make the NEGOTIATE
    /// message.
    pub fn client(
        user: &str,
        password: &SecretString,
        channel_binding: Option<&[u8]>,
    ) -> Result<(NtlmContext, Vec<u8>)> {
        let username = Username::parse(user)
            .map_err(|e| SecurityError::InvalidName(format!("invalid user name {user:?}: {e}")))?;
        let identity = AuthIdentity {
            username,
            password: password.expose_secret().to_string().into(),
        };
        let mut ntlm = context::quiet(|| {
            let mut ntlm = Ntlm::new();
            if let Some(cb) = channel_binding {
                ntlm.set_channel_bindings(cb);
            }
            ntlm
        });
        let creds = context::outbound_credentials(&mut ntlm, &identity)
            .map_err(|e| auth_error("NTLM credentials", &e))?;
        let mut ctx = NtlmContext { ntlm, creds };
        let token = ctx.initialize(None)?;
        Ok((ctx, token))
    }

    fn initialize(&mut self, input: Option<&[u8]>) -> Result<Vec<u8>> {
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let mut input_buffers: Vec<SecurityBuffer> = input
            .map(|t| vec![SecurityBuffer::new(t.to_vec(), BufferType::Token)])
            .unwrap_or_default();
        let result = context::quiet(|| {
            let mut builder = self
                .ntlm
                .initialize_security_context()
                .with_credentials_handle(&mut self.creds)
                .with_context_requirements(client_flags())
                .with_target_data_representation(DataRepresentation::Native)
                .with_output(&mut output);
            if input.is_some() {
                builder = builder.with_input(&mut input_buffers);
            }
            self.ntlm
                .initialize_security_context_impl(&mut builder)
                .and_then(|mut g| g.resolve_to_result())
        })
        .map_err(|e| auth_error("NTLM handshake", &e))?;
        context::complete_if_needed(&mut self.ntlm, result.status, &mut output)
            .map_err(|e| auth_error("NTLM handshake", &e))?;
        Ok(context::output_token(output))
    }

    /// Answers the server's CHALLENGE with the AUTHENTICATE token.
    ///
    /// # Errors
    /// [`SecurityError::Failed`] when `challenge` is not an NTLM CHALLENGE message or sspi
    /// refuses it.
    pub fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>> {
        if message_type(challenge) != Some(2) {
            return Err(SecurityError::Failed(
                "the server's Negotiate token is not an NTLM CHALLENGE".into(),
            ));
        }
        self.initialize(Some(challenge))
    }

    /// A server context waiting for a NEGOTIATE token.
    pub fn server() -> NtlmContext {
        NtlmContext {
            ntlm: context::quiet(Ntlm::new),
            creds: None,
        }
    }

    /// Server: one step of the handshake. For NEGOTIATE it returns the CHALLENGE; for
    /// AUTHENTICATE it checks the response against `password` and returns an empty token.
    ///
    /// # Errors
    /// sspi's refusal as text: a malformed token, an AUTHENTICATE whose user name does not
    /// parse, or one whose response does not match `password` (a failed logon).
    pub fn accept(
        &mut self,
        token: &[u8],
        password: Option<&str>,
    ) -> std::result::Result<Vec<u8>, String> {
        if let (Some(user), Some(password)) = (authenticate_user(token), password) {
            let username = Username::parse(&user).map_err(|e| e.to_string())?;
            self.creds = Some(
                AuthIdentity {
                    username,
                    password: password.to_string().into(),
                }
                .into(),
            );
        }
        let (_, token) =
            context::accept(&mut self.ntlm, &mut self.creds, token).map_err(|e| e.to_string())?;
        Ok(token)
    }

    /// Seals `plain`: returns the signature and the sealed data (same length as `plain`).
    ///
    /// # Errors
    /// [`SecurityError::Failed`] when sspi cannot seal (e.g. before the handshake has
    /// ended).
    pub fn seal(&mut self, plain: &[u8]) -> Result<([u8; SIGNATURE_LEN], Vec<u8>)> {
        let mut signature = [0u8; SIGNATURE_LEN];
        let data = context::transform(&mut self.ntlm, Message::Seal, &mut signature, plain)
            .map_err(|e| auth_error("sealing a message", &e))?;
        Ok((signature, data))
    }

    /// Unseals and verifies a message. Any failure (a tampered signature or data, a
    /// replayed or reordered message) is an [`SecurityError::Failed`] and leaves this context
    /// unusable: its RC4 state and sequence number have moved on.
    ///
    /// # Errors
    /// [`SecurityError::Failed`] as above.
    pub fn unseal(&mut self, signature: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        if signature.len() != SIGNATURE_LEN {
            return Err(SecurityError::Failed(format!(
                "message signature verification failed: {} bytes, not {SIGNATURE_LEN}",
                signature.len()
            )));
        }
        let mut sig = [0u8; SIGNATURE_LEN];
        sig.copy_from_slice(signature);
        context::transform(&mut self.ntlm, Message::Unseal, &mut sig, sealed)
            .map_err(|e| auth_error("message signature verification failed", &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(
        user: &str,
        password: &str,
        server_password: &str,
    ) -> std::result::Result<(NtlmContext, NtlmContext), String> {
        let (mut client, t1) =
            NtlmContext::client(user, &SecretString::from(password.to_string()), None).unwrap();
        assert_eq!(message_type(&t1), Some(1));
        let mut server = NtlmContext::server();
        let t2 = server.accept(&t1, None)?;
        let t3 = client.respond(&t2).unwrap();
        assert_eq!(message_type(&t3), Some(3));
        server.accept(&t3, Some(server_password))?;
        Ok((client, server))
    }

    #[test]
    fn handshake_seal_unseal_both_ways() {
        for user in ["vagrant", "CORP\\vagrant", "vagrant@corp.example"] {
            let (mut c, mut s) = pair(user, "pw", "pw").unwrap();
            for i in 0..3 {
                let msg = format!("<s:Envelope>{i}</s:Envelope>");
                let (sig, sealed) = c.seal(msg.as_bytes()).unwrap();
                assert_ne!(&sealed[..], msg.as_bytes());
                assert_eq!(s.unseal(&sig, &sealed).unwrap(), msg.as_bytes());
                let (sig, sealed) = s.seal(b"reply").unwrap();
                assert_eq!(c.unseal(&sig, &sealed).unwrap(), b"reply");
            }
        }
    }

    #[test]
    fn user_name_is_read_from_authenticate() {
        let (mut client, t1) =
            NtlmContext::client("CORP\\alice", &SecretString::from("x".to_string()), None).unwrap();
        let mut server = NtlmContext::server();
        let t2 = server.accept(&t1, None).unwrap();
        let t3 = client.respond(&t2).unwrap();
        assert_eq!(authenticate_user(&t3).as_deref(), Some("alice"));
        assert_eq!(authenticate_user(&t1), None);
        assert_eq!(authenticate_user(b"NTLMSSP\0\x03\0\0\0"), None);
    }

    #[test]
    fn wrong_password_is_refused() {
        assert!(pair("vagrant", "wrong", "pw").is_err());
    }

    #[test]
    fn tampered_messages_are_refused() {
        let (mut c, mut s) = pair("vagrant", "pw", "pw").unwrap();
        let (mut sig, sealed) = s.seal(b"hello").unwrap();
        sig[5] ^= 1;
        let e = c.unseal(&sig, &sealed).unwrap_err();
        assert!(
            matches!(e, SecurityError::Failed(ref m) if m.contains("signature")),
            "{e}"
        );
        let (mut c, mut s) = pair("vagrant", "pw", "pw").unwrap();
        let (sig, mut sealed) = s.seal(b"hello").unwrap();
        sealed[0] ^= 1;
        assert!(c.unseal(&sig, &sealed).is_err());
        assert!(c.unseal(&[0u8; 3], b"x").is_err());
    }
}
