//! CredSSP ([MS-CSSP]) as WinRM carries it over HTTP (`Authorization: CredSSP <base64>`):
//! a TLS channel inside the HTTP exchange (rustls over memory buffers, no IO), SPNEGO
//! (NTLM) authentication inside that channel with sspi's CredSSP client or server, the
//! public-key binding (`pubKeyAuth`), and the delegation of the user's password
//! (`TSCredentials`). Once established, the inner TLS session encrypts WinRM messages
//! ([MS-WSMV] §2.2.9.1.3, `application/HTTP-CredSSP-session-encrypted`).
//!
//! The inner channel is TLS 1.2 with AES-GCM suites only, as Windows' CredSSP (SChannel)
//! negotiates it and as pywinrm's framing expects. The inner server certificate is not
//! checked against any CA (MS-CSSP §3.1.5 step 1, as Windows and pyspnego do): the
//! `pubKeyAuth` exchange binds the authentication to that certificate's public key,
//! so that a man in the middle of the inner channel fails the exchange. The *outer*
//! HTTPS connection is what tells the client it talks to the right host; the client
//! crate requires it to be verified or pinned.
//!
//! Every sspi call runs under [`quiet`]: its tracing events carry tokens.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig};
use secrecy::{ExposeSecret, SecretString};
use sspi::credssp::{
    ClientMode, ClientState, CredSspClient, CredSspMode, CredSspServer, CredentialsProxy,
    ServerMode, ServerState, TsRequest,
};
use sspi::ntlm::NtlmConfig;
use sspi::{AuthIdentity, Credentials, NegotiateConfig, Username};

use super::tls::WithoutChain;
use super::{SecurityError, quiet};

type Result<T> = std::result::Result<T, SecurityError>;

pub use crate::encryption::{CREDSSP_CHUNK as CHUNK, CREDSSP_PROTOCOL};

/// The HTTP authentication scheme.
pub const SCHEME: &str = "CredSSP";

fn failed(what: &str, e: impl std::fmt::Display) -> SecurityError {
    SecurityError::Failed(format!("{what}: {e}"))
}

fn sspi_failed(what: &str, e: &sspi::Error) -> SecurityError {
    // sspi's messages name states and flags, never secrets.
    SecurityError::Failed(format!("{what}: {:?}: {}", e.error_type, e.description))
}

/// The crypto provider of the inner channel: ring, TLS 1.2 ECDHE with AES-GCM.
fn provider() -> Arc<CryptoProvider> {
    use ring::cipher_suite as cs;
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ],
        ..ring::default_provider()
    })
}

/// The public key CredSSP binds ([MS-CSSP] §3.1.5: the `SubjectPublicKey` of the
/// server's certificate, the contents of its BIT STRING; for RSA the PKCS#1
/// `RSAPublicKey`).
///
/// # Errors
/// [`SecurityError::Failed`] when the certificate is not DER that webpki can read, its
/// `SubjectPublicKeyInfo` does not parse, or the key's BIT STRING has unused bits.
pub fn subject_public_key(cert: &CertificateDer<'_>) -> Result<Vec<u8>> {
    use spki::der::Decode as _;
    let ee = webpki::EndEntityCert::try_from(cert)
        .map_err(|e| failed("the CredSSP server certificate does not parse", e))?;
    let spki_der = ee.subject_public_key_info();
    let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der.as_ref())
        .map_err(|e| failed("the CredSSP server certificate's public key", e))?;
    spki.subject_public_key
        .as_bytes()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| SecurityError::Failed("the CredSSP public key is not whole bytes".into()))
}

/// Writes what the connection has to send into a buffer.
fn drain(conn: &mut Connection) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out)
            .map_err(|e| failed("CredSSP TLS", e))?;
    }
    Ok(out)
}

/// Feeds TLS records to the connection and returns the plaintext they carried.
fn feed(conn: &mut Connection, mut records: &[u8]) -> Result<Vec<u8>> {
    let mut plain = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if !records.is_empty() {
            conn.read_tls(&mut records)
                .map_err(|e| failed("CredSSP TLS", e))?;
        }
        conn.process_new_packets()
            .map_err(|e| failed("CredSSP TLS", e))?;
        loop {
            match conn.reader().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => plain.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(failed("CredSSP TLS", e)),
            }
        }
        if records.is_empty() {
            return Ok(plain);
        }
    }
}

/// Encrypts `plain` as TLS application data: the records to send.
fn encrypt(conn: &mut Connection, plain: &[u8]) -> Result<Vec<u8>> {
    conn.writer()
        .write_all(plain)
        .map_err(|e| failed("CredSSP encryption", e))?;
    drain(conn)
}

fn encode(ts: &TsRequest) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    ts.encode_ts_request(&mut out)
        .map_err(|e| failed("encoding a TSRequest", e))?;
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<TsRequest> {
    TsRequest::from_buffer(bytes).map_err(|e| failed("the peer's TSRequest does not parse", e))
}

/// The SPNEGO (NTLM only) configuration both sides use.
fn negotiate_config(computer: &str) -> NegotiateConfig {
    NegotiateConfig::new(
        Box::new(NtlmConfig::new(computer.to_string())),
        Some("!kerberos,!pku2u,ntlm".to_string()),
        computer.to_string(),
    )
}

/// What the client sends next.
#[derive(Debug)]
pub enum ClientStep {
    /// A token to send; the server answers with another (HTTP 401 with a token).
    Continue(Vec<u8>),
    /// The last token: the encrypted `TSCredentials` (the delegation). The server
    /// answers it with the response to the request that carried it.
    Final(Vec<u8>),
}

enum ClientStage {
    Tls,
    Auth(Box<CredSspClient>),
    Done,
}

/// A CredSSP client: one per HTTP connection.
pub struct CredSspClientContext {
    tls: Connection,
    stage: ClientStage,
    identity: Option<AuthIdentity>,
    service: String,
}

impl std::fmt::Debug for CredSspClientContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredSspClientContext { .. }")
    }
}

impl CredSspClientContext {
    /// Starts a client for `user` (`DOMAIN\user`, `user@domain` or `user`) at `host`
    /// and returns it with the first token (the TLS ClientHello).
    ///
    /// # Errors
    /// [`SecurityError::InvalidName`] for a user name sspi cannot parse;
    /// [`SecurityError::Failed`] when rustls cannot set up the inner TLS 1.2 client.
    pub fn new(user: &str, password: &SecretString, host: &str) -> Result<(Self, Vec<u8>)> {
        let username = Username::parse(user)
            .map_err(|e| SecurityError::InvalidName(format!("invalid user name {user:?}: {e}")))?;
        let identity = AuthIdentity {
            username,
            password: password.expose_secret().to_string().into(),
        };
        let provider = provider();
        let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .map_err(|e| failed("CredSSP TLS configuration", e))?
            .dangerous()
            // The inner channel's certificate check: any certificate (see the module
            // docs), with the handshake signatures verified against it (its key is the
            // one bound by `pubKeyAuth`).
            .with_custom_certificate_verifier(Arc::new(WithoutChain::any(provider)))
            .with_no_client_auth();
        config.resumption = rustls::client::Resumption::disabled();
        config.enable_sni = false;
        let name = ServerName::try_from(host.to_string())
            .unwrap_or_else(|_| ServerName::try_from("credssp").expect("a valid DNS name"));
        let mut tls = Connection::Client(
            ClientConnection::new(Arc::new(config), name).map_err(|e| failed("CredSSP TLS", e))?,
        );
        let hello = drain(&mut tls)?;
        Ok((
            CredSspClientContext {
                tls,
                stage: ClientStage::Tls,
                identity: Some(identity),
                service: format!("HTTP/{host}"),
            },
            hello,
        ))
    }

    /// True once the final token has been produced: messages may be sealed.
    pub fn is_established(&self) -> bool {
        matches!(self.stage, ClientStage::Done)
    }

    /// The next token, from the server's last one.
    ///
    /// # Errors
    /// [`SecurityError::Failed`] for a TLS failure, a server without a certificate, a
    /// TSRequest that does not decode, or a step sspi refuses (among them a `pubKeyAuth`
    /// that does not match the certificate's key, [MS-CSSP] §3.1.5);
    /// [`SecurityError::Refused`] when the server's TSRequest carries an NTSTATUS error
    /// code (e.g. a wrong password).
    pub fn step(&mut self, input: &[u8]) -> Result<ClientStep> {
        match &mut self.stage {
            ClientStage::Tls => {
                let _ = feed(&mut self.tls, input)?;
                let out = drain(&mut self.tls)?;
                if self.tls.is_handshaking() {
                    return Ok(ClientStep::Continue(out));
                }
                if !out.is_empty() {
                    // TLS 1.2 ends with the server's Finished; nothing should be left.
                    return Err(SecurityError::Failed(
                        "CredSSP TLS: unexpected data after the handshake".into(),
                    ));
                }
                let cert = self
                    .tls
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .ok_or_else(|| {
                        SecurityError::Failed("the CredSSP server sent no certificate".into())
                    })?;
                let public_key = subject_public_key(cert)?;
                let identity = self
                    .identity
                    .take()
                    .ok_or_else(|| SecurityError::Failed("CredSSP client used twice".into()))?;
                let mut client = quiet(|| {
                    CredSspClient::new(
                        public_key,
                        Credentials::AuthIdentity(identity),
                        CredSspMode::WithCredentials,
                        ClientMode::Negotiate(negotiate_config("tokio-winrm")),
                        self.service.clone(),
                    )
                })
                .map_err(|e| sspi_failed("CredSSP client", &e))?;
                let ts = match quiet(|| client.process(TsRequest::default()).resolve_to_result())
                    .map_err(|e| sspi_failed("CredSSP authentication", &e))?
                {
                    ClientState::ReplyNeeded(ts) => ts,
                    ClientState::FinalMessage(_) => {
                        return Err(SecurityError::Failed(
                            "CredSSP client finished before authenticating".into(),
                        ));
                    }
                };
                self.stage = ClientStage::Auth(Box::new(client));
                Ok(ClientStep::Continue(encrypt(&mut self.tls, &encode(&ts)?)?))
            }
            ClientStage::Auth(client) => {
                let plain = feed(&mut self.tls, input)?;
                let ts = decode(&plain)?;
                if let Some(code) = ts.error_code {
                    return Err(SecurityError::Refused(format!(
                        "the CredSSP server refused the logon (NTSTATUS {:#010x})",
                        code.0
                    )));
                }
                let state = quiet(|| client.process(ts).resolve_to_result())
                    .map_err(|e| sspi_failed("CredSSP authentication", &e))?;
                match state {
                    ClientState::ReplyNeeded(ts) => {
                        Ok(ClientStep::Continue(encrypt(&mut self.tls, &encode(&ts)?)?))
                    }
                    ClientState::FinalMessage(ts) => {
                        let out = encrypt(&mut self.tls, &encode(&ts)?)?;
                        self.stage = ClientStage::Done;
                        Ok(ClientStep::Final(out))
                    }
                }
            }
            ClientStage::Done => Err(SecurityError::Failed(
                "CredSSP: a token after the exchange ended".into(),
            )),
        }
    }

    /// Encrypts `plain` (at most [`CHUNK`] bytes make one TLS record).
    ///
    /// # Errors
    /// [`SecurityError::Failed`] before the exchange has ended, or when the TLS layer
    /// refuses to encrypt.
    pub fn seal(&mut self, plain: &[u8]) -> Result<Vec<u8>> {
        if !self.is_established() {
            return Err(SecurityError::Failed(
                "CredSSP: sealing before the exchange ended".into(),
            ));
        }
        encrypt(&mut self.tls, plain)
    }

    /// Decrypts TLS records. Any failure (a tampered or replayed record) leaves the
    /// context unusable: the caller drops it.
    ///
    /// # Errors
    /// [`SecurityError::Failed`] before the exchange has ended, or for a record that does
    /// not decrypt or verify.
    pub fn unseal(&mut self, records: &[u8]) -> Result<Vec<u8>> {
        if !self.is_established() {
            return Err(SecurityError::Failed(
                "CredSSP: unsealing before the exchange ended".into(),
            ));
        }
        feed(&mut self.tls, records)
    }

    /// The length WinRM puts before each encrypted part ([MS-WSMV] §2.2.9.1.3): the TLS
    /// trailer of the negotiated suite (16 bytes for AES-GCM, the only suites offered).
    pub fn trailer_len(&self) -> u32 {
        TRAILER_LEN
    }
}

/// The TLS trailer of the AES-GCM suites (their authentication tag).
pub const TRAILER_LEN: u32 = 16;

/// Accounts a CredSSP server knows: user names and passwords. A SPNEGO client's user
/// must match one name exactly (format, user and domain, ASCII case ignored: sspi's
/// Negotiate acceptor compares them so), so list each form a client may send
/// (`user`, `DOMAIN\user`, `user@suffix`); a raw NTLM client's is compared without its
/// domain.
#[derive(Clone, Default)]
pub struct Accounts(pub Vec<(String, String)>);

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(u, _)| u))
            .finish()
    }
}

fn bare(s: &str) -> String {
    let s = s.rsplit_once('\\').map_or(s, |(_, u)| u);
    s.split_once('@').map_or(s, |(u, _)| u).to_ascii_lowercase()
}

impl CredentialsProxy for Accounts {
    type AuthenticationData = AuthIdentity;

    fn auth_data_by_user(&mut self, username: &Username) -> std::io::Result<AuthIdentity> {
        let wanted = bare(username.account_name());
        self.0
            .iter()
            .find(|(u, _)| bare(u) == wanted)
            .map(|(_, p)| AuthIdentity {
                username: username.clone(),
                password: p.clone().into(),
            })
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "unknown user"))
    }

    fn auth_data(&mut self) -> std::io::Result<Vec<AuthIdentity>> {
        self.0
            .iter()
            .map(|(u, p)| {
                Ok(AuthIdentity {
                    username: Username::parse(u).map_err(std::io::Error::other)?,
                    password: p.clone().into(),
                })
            })
            .collect()
    }
}

/// The credentials a client delegated: what the server may use for a second hop.
#[derive(Clone)]
pub struct Delegated {
    /// The user name, as sent.
    pub user: String,
    /// The domain, as sent (may be empty).
    pub domain: String,
    /// The password.
    pub password: SecretString,
}

impl std::fmt::Debug for Delegated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delegated")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("password", &"<redacted>")
            .finish()
    }
}

fn domain_of(username: &Username) -> String {
    match username.parts() {
        sspi::UsernameParts::DownLevelLogonName(p) => {
            p.netbios_domain().unwrap_or_default().to_string()
        }
        sspi::UsernameParts::UserPrincipalName(p) => p.suffix().to_string(),
    }
}

/// What the server answers.
#[derive(Debug)]
pub enum ServerStep {
    /// A token to send back (HTTP 401 with it).
    Continue(Vec<u8>),
    /// The client authenticated and delegated its credentials.
    Done(Delegated),
}

/// Why a server step failed.
#[derive(Debug)]
pub enum ServerFailure {
    /// The credentials were refused (a failed logon).
    Refused(String),
    /// The exchange is malformed.
    Failed(SecurityError),
}

enum ServerStage {
    Tls,
    Auth(Box<CredSspServer<Accounts>>),
    Done,
}

/// The server side's inner TLS configuration and the public key it binds.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    public_key: Vec<u8>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls { .. }")
    }
}

/// The server TLS configuration of the inner channel, from a certificate chain and key
/// (RSA: pywinrm's CredSSP binds PKCS#1 public keys only).
///
/// # Errors
/// [`SecurityError::Failed`] when the chain is empty, the leaf's public key cannot be read,
/// or rustls refuses the certificate and key.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerTls> {
    let leaf = chain
        .first()
        .ok_or_else(|| SecurityError::Failed("CredSSP server without a certificate".into()))?;
    let public_key = subject_public_key(leaf)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .map_err(|e| failed("CredSSP TLS configuration", e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| failed("CredSSP TLS certificate", e))?;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(ServerTls {
        config: Arc::new(config),
        public_key,
    })
}

/// A CredSSP acceptor: one per HTTP connection.
pub struct CredSspServerContext {
    tls: Connection,
    stage: ServerStage,
    /// The reply of the last sspi step, before it is encrypted.
    last_reply: Option<TsRequest>,
    /// SPNEGO inside (not raw NTLM): the client's last NTLM token may come with its
    /// `pubKeyAuth` (see [`CredSspServerContext::process`]).
    spnego: bool,
    public_key: Vec<u8>,
    accounts: Option<Accounts>,
}

impl std::fmt::Debug for CredSspServerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredSspServerContext { .. }")
    }
}

impl CredSspServerContext {
    /// A server waiting for the client's first token (its ClientHello).
    ///
    /// # Errors
    /// [`SecurityError::Failed`] when rustls cannot start a server connection with
    /// `config`.
    pub fn new(config: &ServerTls, accounts: Accounts) -> Result<Self> {
        let tls = Connection::Server(
            rustls::ServerConnection::new(Arc::clone(&config.config))
                .map_err(|e| failed("CredSSP TLS", e))?,
        );
        Ok(CredSspServerContext {
            tls,
            stage: ServerStage::Tls,
            spnego: false,
            last_reply: None,
            public_key: config.public_key.clone(),
            accounts: Some(accounts),
        })
    }

    /// True once the client delegated its credentials.
    pub fn is_established(&self) -> bool {
        matches!(self.stage, ServerStage::Done)
    }

    /// One step: the client's token in, the answer out.
    ///
    /// # Errors
    /// [`ServerFailure::Refused`] when sspi refuses a step of the authentication (among
    /// them credentials that match no account: a failed logon); [`ServerFailure::Failed`]
    /// for a malformed exchange: TLS records that do not decrypt, a TSRequest that does
    /// not decode, a step out of order.
    pub fn step(&mut self, input: &[u8]) -> std::result::Result<ServerStep, ServerFailure> {
        let plain = feed(&mut self.tls, input).map_err(ServerFailure::Failed)?;
        if matches!(self.stage, ServerStage::Tls) {
            if self.tls.is_handshaking() || plain.is_empty() {
                return drain(&mut self.tls)
                    .map(ServerStep::Continue)
                    .map_err(ServerFailure::Failed);
            }
            // The first TSRequest came with (or after) the end of the handshake.
            let ts = decode(&plain).map_err(ServerFailure::Failed)?;
            let mode = match &ts.nego_tokens {
                Some(t) if t.starts_with(b"NTLMSSP\0") => {
                    ServerMode::Ntlm(NtlmConfig::new("WINRM-SIM".into()))
                }
                _ => {
                    self.spnego = true;
                    ServerMode::Negotiate(negotiate_config("WINRM-SIM"))
                }
            };
            let accounts = self.accounts.take().unwrap_or_default();
            let server = quiet(|| CredSspServer::new(self.public_key.clone(), accounts, mode))
                .map_err(|e| ServerFailure::Failed(sspi_failed("CredSSP server", &e)))?;
            self.stage = ServerStage::Auth(Box::new(server));
            return self.process(ts);
        }
        let ts = decode(&plain).map_err(ServerFailure::Failed)?;
        self.process(ts)
    }

    /// One TSRequest. A SPNEGO client (pyspnego, as against Windows) may send its NTLM
    /// AUTHENTICATE (with its `mechListMIC`) together with `pubKeyAuth`; sspi's server
    /// then answers with `pubKeyAuth` alone and drops its own `mechListMIC`, which such a
    /// client must verify before it unseals the `pubKeyAuth` (sealed after that MIC, so
    /// with the next sequence number). Such a request goes to sspi in two steps, the
    /// token and then the key, and the answers are joined: token and key in one
    /// TSRequest, as Windows answers.
    fn process(&mut self, ts: TsRequest) -> std::result::Result<ServerStep, ServerFailure> {
        if self.spnego && ts.nego_tokens.is_some() && ts.pub_key_auth.is_some() {
            let mut token = ts.clone();
            token.pub_key_auth = None;
            token.client_nonce = None;
            let mut key = ts;
            key.nego_tokens = None;
            let first = self.process_one(token)?;
            let ServerStep::Continue(_) = first else {
                return Err(ServerFailure::Failed(SecurityError::Failed(
                    "CredSSP: finished before the public key exchange".into(),
                )));
            };
            let answer_token = self.last_reply.take();
            let second = self.process_one(key)?;
            let ServerStep::Continue(_) = second else {
                return Err(ServerFailure::Failed(SecurityError::Failed(
                    "CredSSP: finished at the public key exchange".into(),
                )));
            };
            let mut joined = self.last_reply.take().ok_or_else(|| {
                ServerFailure::Failed(SecurityError::Failed("CredSSP: no answer".into()))
            })?;
            joined.nego_tokens = answer_token.and_then(|t| t.nego_tokens);
            let bytes = encode(&joined).map_err(ServerFailure::Failed)?;
            return encrypt(&mut self.tls, &bytes)
                .map(ServerStep::Continue)
                .map_err(ServerFailure::Failed);
        }
        let step = self.process_one(ts)?;
        match step {
            ServerStep::Continue(_) => {
                let reply = self.last_reply.take().ok_or_else(|| {
                    ServerFailure::Failed(SecurityError::Failed("CredSSP: no answer".into()))
                })?;
                let bytes = encode(&reply).map_err(ServerFailure::Failed)?;
                encrypt(&mut self.tls, &bytes)
                    .map(ServerStep::Continue)
                    .map_err(ServerFailure::Failed)
            }
            done => Ok(done),
        }
    }

    /// One sspi step; a reply is left in `last_reply` (not yet encrypted).
    fn process_one(&mut self, ts: TsRequest) -> std::result::Result<ServerStep, ServerFailure> {
        let ServerStage::Auth(server) = &mut self.stage else {
            return Err(ServerFailure::Failed(SecurityError::Failed(
                "CredSSP: a token after the exchange ended".into(),
            )));
        };
        match quiet(|| server.process(ts).resolve_to_result()) {
            Ok(ServerState::ReplyNeeded(ts)) => {
                self.last_reply = Some(ts);
                Ok(ServerStep::Continue(Vec::new()))
            }
            Ok(ServerState::Finished(identity)) => {
                self.stage = ServerStage::Done;
                Ok(ServerStep::Done(Delegated {
                    user: identity.username.account_name().to_string(),
                    domain: domain_of(&identity.username),
                    password: SecretString::from(identity.password.as_ref().clone()),
                }))
            }
            Err(e) => Err(ServerFailure::Refused(format!(
                "{:?}: {}",
                e.error.error_type, e.error.description
            ))),
        }
    }

    /// Encrypts `plain` (at most [`CHUNK`] bytes make one TLS record).
    ///
    /// # Errors
    /// [`SecurityError::Failed`] when the TLS layer refuses to encrypt.
    pub fn seal(&mut self, plain: &[u8]) -> Result<Vec<u8>> {
        encrypt(&mut self.tls, plain)
    }

    /// Decrypts TLS records.
    ///
    /// # Errors
    /// [`SecurityError::Failed`] for a record that does not decrypt or verify.
    pub fn unseal(&mut self, records: &[u8]) -> Result<Vec<u8>> {
        feed(&mut self.tls, records)
    }
}
