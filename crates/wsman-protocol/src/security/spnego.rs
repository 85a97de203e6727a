//! SPNEGO (RFC 4178, [MS-SPNG]) as Windows offers it under the HTTP `Negotiate` scheme,
//! through sspi's Negotiate package: the initiator sends a `NegTokenInit` listing its
//! mechanisms (Kerberos first when it can get a ticket, then NTLM) with an optimistic
//! token for the first; the acceptor answers `NegTokenResp`s; the exchange ends with the
//! `mechListMIC`s of both sides when NTLM is chosen (MS-SPNG §3.1.5.1: NTLM's MIC in
//! the AUTHENTICATE makes them mandatory). Once established, messages are sealed with
//! the mechanism's context and framed as `application/HTTP-SPNEGO-session-encrypted`.
//!
//! What sspi 0.23's Negotiate client sends (checked in its source, pinned by the tests
//! below): a `NegTokenInit` always (never a raw NTLM token); with Kerberos possible its
//! mechTypes are `[MS-KRB5, KRB5, NTLMSSP]` with the AP-REQ, otherwise `[NTLMSSP]` with
//! the NTLM NEGOTIATE. It falls back from Kerberos to NTLM inside its first step, before
//! anything is sent, when the KDC cannot be reached, names a wrong realm, does not know
//! the service principal, or the clocks are skewed; a target name that is an IP address
//! goes to NTLM at once. A KDC that refuses the password is an error, not a fallback.
//!
//! The acceptor here negotiates NTLM only (the simulator's: its Kerberos acceptor is
//! its own, see `security::kerberos`): a `NegTokenInit` that offers NTLM anywhere in
//! its list is answered with a `NegTokenResp` selecting NTLM (with the CHALLENGE when
//! NTLM came first with its NEGOTIATE, else without a token, the client's optimistic
//! token being unusable). sspi's acceptor matches the client's user name against its
//! accounts exactly (format, user and domain, ASCII case ignored).
//!
//! Every sspi call runs under [`quiet`]: its tracing events carry tokens.

use sspi::network_client::NetworkClient;
use sspi::ntlm::NtlmConfig;
use sspi::{
    AuthIdentity, Credentials, CredentialsBuffers, Negotiate, NegotiateConfig, NetworkRequest,
    SecurityStatus,
};

use super::{SecurityError, quiet};

type Result<T> = std::result::Result<T, SecurityError>;

fn sspi_failed(what: &str, e: &sspi::Error) -> SecurityError {
    // sspi's messages name states and flags, never secrets.
    SecurityError::Failed(format!(
        "SPNEGO {what}: {:?}: {}",
        e.error_type, e.description
    ))
}

/// The sspi package list of an NTLM-only Negotiate context.
const NTLM_ONLY: &str = "!kerberos,!pku2u,ntlm";
/// The sspi package list of a Kerberos-first context (NTLM as the fallback).
const KERBEROS_THEN_NTLM: &str = "kerberos,ntlm,!pku2u";

/// The workstation name the client gives in its NTLM messages.
const WORKSTATION: &str = "tokio-winrm";

/// A network client for contexts that never talk to a KDC: every request fails as an
/// unreachable KDC would (which makes sspi fall back to NTLM).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoKdc;

impl NetworkClient for NoKdc {
    fn send(&self, request: &NetworkRequest) -> sspi::Result<Vec<u8>> {
        Err(sspi::Error::new(
            sspi::ErrorKind::NoAuthenticatingAuthority,
            format!("no KDC configured (asked for {})", request.url),
        ))
    }
}

/// The mechanism a SPNEGO context ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mechanism {
    /// Kerberos.
    Kerberos,
    /// NTLM.
    Ntlm,
    /// Another (PKU2U; never negotiated here).
    Other,
}

/// A client or server SPNEGO context (sspi's Negotiate).
pub struct SpnegoContext {
    neg: Negotiate,
    creds: Option<CredentialsBuffers>,
    target: Option<String>,
    /// The `SEC_CHANNEL_BINDINGS` buffer handed to sspi with each initiator step.
    channel_bindings: Option<Vec<u8>>,
}

impl std::fmt::Debug for SpnegoContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpnegoContext")
            .field("mechanism", &self.mechanism())
            .finish_non_exhaustive()
    }
}

impl SpnegoContext {
    /// Initiator offering NTLM only (`mechTypes` `[NTLMSSP]`). `identity` is the user as
    /// it goes into the NTLM AUTHENTICATE.
    ///
    /// # Errors
    /// [`SecurityError::Failed`] when sspi refuses the configuration or credentials.
    pub fn ntlm_client(identity: AuthIdentity) -> Result<SpnegoContext> {
        let config = NegotiateConfig::new(
            Box::new(NtlmConfig::new(WORKSTATION.to_string())),
            Some(NTLM_ONLY.to_string()),
            WORKSTATION.to_string(),
        );
        SpnegoContext::client(config, identity, None)
    }

    /// Initiator trying Kerberos first (with `kerberos`, whose KDC the first
    /// [`initialize`](Self::initialize) reaches through its network client) for the
    /// service principal `spn`, and NTLM when Kerberos is not possible (see the module
    /// docs). `identity`'s user name carries the realm.
    ///
    /// # Errors
    /// [`SecurityError::Failed`] when sspi refuses the configuration or credentials.
    pub fn kerberos_client(
        kerberos: sspi::KerberosConfig,
        identity: AuthIdentity,
        spn: String,
    ) -> Result<SpnegoContext> {
        let config = NegotiateConfig::new(
            Box::new(kerberos),
            Some(KERBEROS_THEN_NTLM.to_string()),
            WORKSTATION.to_string(),
        );
        SpnegoContext::client(config, identity, Some(spn))
    }

    fn client(
        config: NegotiateConfig,
        identity: AuthIdentity,
        target: Option<String>,
    ) -> Result<SpnegoContext> {
        let (neg, creds) = quiet(|| {
            let mut neg = Negotiate::new_client(config).map_err(|e| sspi_failed("context", &e))?;
            let credentials = Credentials::from(identity);
            let creds = super::outbound_credentials(&mut neg, &credentials)
                .map_err(|e| sspi_failed("credentials", &e))?;
            Ok::<_, SecurityError>((neg, creds))
        })?;
        Ok(SpnegoContext {
            neg,
            creds,
            target,
            channel_bindings: None,
        })
    }

    /// Binds the context to a channel (for HTTPS the RFC 5929 `tls-server-end-point`
    /// data), for Kerberos and NTLM alike: an initiator puts it into its AP-REQ or
    /// AUTHENTICATE; an acceptor refuses an AUTHENTICATE bound to another channel. Call
    /// it before the first step.
    pub fn set_channel_bindings(&mut self, application_data: &[u8]) {
        self.channel_bindings = Some(super::kerberos::sec_channel_bindings(application_data));
    }

    /// The mechanism chosen so far (after the first step: the one offered first; at
    /// the end: the one the acceptor selected).
    pub fn mechanism(&self) -> Mechanism {
        match self.neg.negotiated_protocol() {
            sspi::NegotiatedProtocol::Kerberos(_) => Mechanism::Kerberos,
            sspi::NegotiatedProtocol::Ntlm(_) => Mechanism::Ntlm,
            sspi::NegotiatedProtocol::Pku2u(_) => Mechanism::Other,
        }
    }

    /// Initiator: one step on the acceptor's token (`input`, empty at first), the KDC
    /// (if any) reached through `kdc`. Returns sspi's status (`Ok` once established)
    /// and the token to send (may be empty at the end). Blocking when `kdc` is.
    ///
    /// # Errors
    /// [`SecurityError::Failed`] when the KDC, the handshake or a `mechListMIC` fails.
    pub fn initialize(
        &mut self,
        input: &[u8],
        kdc: &dyn NetworkClient,
    ) -> Result<(SecurityStatus, Vec<u8>)> {
        super::initialize(
            &mut self.neg,
            &mut self.creds,
            self.target.as_deref(),
            self.channel_bindings.as_deref(),
            input,
            kdc,
        )
        .map_err(|e| sspi_failed("handshake", &e))
    }

    /// Acceptor negotiating NTLM (see the module docs), for these accounts: user names
    /// (`user`, `DOMAIN\user` or `user@suffix`) and passwords.
    ///
    /// # Errors
    /// A description when sspi refuses the configuration.
    pub fn ntlm_server(accounts: Vec<AuthIdentity>) -> std::result::Result<SpnegoContext, String> {
        let config = NegotiateConfig::new(
            Box::new(NtlmConfig::new("WINRM-SIM".to_string())),
            Some(NTLM_ONLY.to_string()),
            "WINRM-SIM".to_string(),
        );
        let neg = quiet(|| Negotiate::new_server(config, accounts)).map_err(|e| e.to_string())?;
        Ok(SpnegoContext {
            neg,
            creds: None,
            target: None,
            channel_bindings: None,
        })
    }

    /// Acceptor: one step on the initiator's token. `identity` is the account the
    /// NTLM AUTHENTICATE is checked against (the user as sent, with the account's
    /// password; `None` before it). Returns sspi's status (`Ok` once established) and
    /// the `NegTokenResp` to send back.
    ///
    /// # Errors
    /// A description (never a secret) when the token is malformed or refused.
    pub fn accept(
        &mut self,
        token: &[u8],
        identity: Option<AuthIdentity>,
    ) -> std::result::Result<(SecurityStatus, Vec<u8>), String> {
        if let Some(identity) = identity {
            self.creds = Some(CredentialsBuffers::AuthIdentity(identity.into()));
        }
        super::accept_bound(
            &mut self.neg,
            &mut self.creds,
            token,
            self.channel_bindings.as_deref(),
        )
        .map_err(|e| e.to_string())
    }

    /// Seals `plain`: the signature (the NTLM signature, or the head of a Kerberos wrap
    /// token) and the sealed data.
    ///
    /// # Errors
    /// [`SecurityError::Failed`] when sealing fails.
    pub fn seal(&mut self, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
        super::seal(&mut self.neg, plain).map_err(|e| sspi_failed("sealing a message", &e))
    }

    /// Unseals and verifies a message. Any failure leaves the context unusable.
    ///
    /// # Errors
    /// [`SecurityError::Failed`] when the message does not verify.
    pub fn unseal(&mut self, signature: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        super::unseal(&mut self.neg, signature, sealed)
            .map_err(|e| sspi_failed("message signature verification failed", &e))
    }
}

/// The token of a `NegTokenResp` (`[1] NegTokenTarg`) as the acceptor's answer, and of
/// a `NegTokenInit` in its InitialContextToken framing: what an SPNEGO token starts
/// with (`0xa1` and `0x60`). Raw NTLM starts with `NTLMSSP\0`.
pub fn is_spnego(token: &[u8]) -> bool {
    matches!(token.first(), Some(0x60 | 0xa1))
}

/// The mechanism token inside a SPNEGO token: the optimistic token of a `NegTokenInit`
/// or the `responseToken` of a `NegTokenResp`. `None` when there is none or the token
/// does not parse. Never panics.
pub fn inner_token(token: &[u8]) -> Option<Vec<u8>> {
    match token.first()? {
        0x60 => {
            // [APPLICATION 0] IMPLICIT SEQUENCE, read as a SEQUENCE (picky-krb's
            // ApplicationTag0 reader unwraps on malformed input).
            let mut raw = token.to_vec();
            raw[0] = 0x30;
            let init: picky_krb::gss_api::GssApiNegInit = picky_asn1_der::from_bytes(&raw).ok()?;
            init.neg_token_init.0.mech_token.0.map(|t| t.0.0)
        }
        0xa1 => {
            let resp: picky_krb::gss_api::NegTokenTarg1 = picky_asn1_der::from_bytes(token).ok()?;
            resp.0.response_token.0.map(|t| t.0.0)
        }
        _ => None,
    }
}

/// Whether a client's SPNEGO token carries credentials the acceptor checks (so that a
/// refusal of it is a failed logon): an NTLM AUTHENTICATE or a Kerberos AP-REQ (not an
/// NTLM NEGOTIATE, nor a token that carries only a `mechListMIC`).
pub fn carries_credentials(token: &[u8]) -> bool {
    inner_token(token).is_some_and(|t| match super::ntlm::message_type(&t) {
        Some(n) => n == 3,
        None => !t.is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sspi::Username;

    fn identity(user: &str, password: &str) -> AuthIdentity {
        AuthIdentity {
            username: Username::parse(user).unwrap(),
            password: password.to_string().into(),
        }
    }

    /// A whole exchange; the server checks the AUTHENTICATE against `server_password`.
    fn exchange(
        user: &str,
        password: &str,
        server_password: &str,
    ) -> std::result::Result<(SpnegoContext, SpnegoContext), String> {
        let mut client = SpnegoContext::ntlm_client(identity(user, password)).unwrap();
        let mut server = SpnegoContext::ntlm_server(vec![identity(user, server_password)])?;
        let (status, init) = client.initialize(&[], &NoKdc).unwrap();
        assert_eq!(status, SecurityStatus::ContinueNeeded);
        assert_eq!(init[0], 0x60, "a NegTokenInit, not raw NTLM");
        let (status, challenge) = server.accept(&init, None)?;
        assert_eq!(status, SecurityStatus::ContinueNeeded);
        assert_eq!(challenge[0], 0xa1);
        assert!(!carries_credentials(&init) && !carries_credentials(&challenge));
        let (status, authenticate) = client.initialize(&challenge, &NoKdc).unwrap();
        assert!(carries_credentials(&authenticate));
        for t in [&init, &authenticate] {
            for cut in 0..t.len() {
                let _ = inner_token(&t[..cut]); // never panics
            }
        }
        assert!(inner_token(&init).unwrap().starts_with(b"NTLMSSP\0"));
        assert_eq!(status, SecurityStatus::ContinueNeeded, "waits for the MIC");
        let (status, done) = server.accept(&authenticate, Some(identity(user, server_password)))?;
        assert_eq!(status, SecurityStatus::Ok);
        let (status, last) = client
            .initialize(&done, &NoKdc)
            .map_err(|e| e.to_string())?;
        assert_eq!(status, SecurityStatus::Ok);
        assert!(last.is_empty());
        Ok((client, server))
    }

    #[test]
    fn ntlm_in_spnego_seals_both_ways() {
        let (mut c, mut s) = exchange("vagrant", "pw", "pw").unwrap();
        assert_eq!(c.mechanism(), Mechanism::Ntlm);
        for i in 0..3 {
            let msg = format!("<s:Envelope>{i}</s:Envelope>");
            let (sig, sealed) = c.seal(msg.as_bytes()).unwrap();
            assert_eq!(sig.len(), 16);
            assert_ne!(&sealed[..], msg.as_bytes());
            assert_eq!(s.unseal(&sig, &sealed).unwrap(), msg.as_bytes());
            let (sig, sealed) = s.seal(b"reply").unwrap();
            assert_eq!(c.unseal(&sig, &sealed).unwrap(), b"reply");
        }
    }

    /// The client's AUTHENTICATE (inside SPNEGO) carries the channel binding: an
    /// acceptor on the same channel takes it, one on another channel refuses it.
    #[test]
    fn the_channel_binding_reaches_the_acceptor() {
        for (client_cb, server_cb, ok) in [
            (
                &b"tls-server-end-point:aaaa"[..],
                &b"tls-server-end-point:aaaa"[..],
                true,
            ),
            (
                b"tls-server-end-point:aaaa",
                b"tls-server-end-point:bbbb",
                false,
            ),
        ] {
            let mut client = SpnegoContext::ntlm_client(identity("vagrant", "pw")).unwrap();
            client.set_channel_bindings(client_cb);
            let mut server = SpnegoContext::ntlm_server(vec![identity("vagrant", "pw")]).unwrap();
            server.set_channel_bindings(server_cb);
            let (_, init) = client.initialize(&[], &NoKdc).unwrap();
            let (_, challenge) = server.accept(&init, None).unwrap();
            let (_, authenticate) = client.initialize(&challenge, &NoKdc).unwrap();
            let result = server.accept(&authenticate, Some(identity("vagrant", "pw")));
            assert_eq!(result.is_ok(), ok, "{result:?}");
        }
    }

    #[test]
    fn a_wrong_password_is_refused() {
        assert!(exchange("vagrant", "wrong", "pw").is_err());
    }

    #[test]
    fn without_a_kdc_the_kerberos_client_falls_back_to_ntlm_before_sending() {
        let config = sspi::KerberosConfig::new_with_kdc_url("127.0.0.1:1", WORKSTATION.into());
        let id = AuthIdentity {
            username: Username::new_down_level_logon_name("vagrant", "TOKIO.TEST").unwrap(),
            password: "pw".to_string().into(),
        };
        let mut c =
            SpnegoContext::kerberos_client(config, id, "HTTP/host.tokio.test".into()).unwrap();
        assert_eq!(c.mechanism(), Mechanism::Kerberos);
        let (status, init) = c.initialize(&[], &NoKdc).unwrap();
        assert_eq!(status, SecurityStatus::ContinueNeeded);
        assert_eq!(c.mechanism(), Mechanism::Ntlm);
        assert!(is_spnego(&init));
        // The NTLM NEGOTIATE is inside, not raw.
        assert!(!init.starts_with(b"NTLMSSP"));
    }
}
