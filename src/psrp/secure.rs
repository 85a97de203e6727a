//! SecureStrings in a runspace pool: the session key exchange ([MS-PSRP] §3.1.5.4.3:
//! PUBLIC_KEY on the pool's stdin, ENCRYPTED_SESSION_KEY on its output), then
//! encryption of the SecureStrings the client sends (parameters, host answers) and
//! decryption of those it receives ([MS-PSRP] §2.2.5.1.24).
//!
//! The crypto is `wsman_protocol::psrp::session_key` (RSA and AES from RustCrypto);
//! this module does the exchange on the wire, once per pool.

use bytes::BytesMut;
use secrecy::SecretString;
use tokio::sync::OnceCell;
use wsman_protocol::psrp::clixml::EncryptedString;
use wsman_protocol::psrp::messages::{HostMethod, RunspacePoolState, ServerMessage};
use wsman_protocol::psrp::{
    Defragmenter, Destination, ExchangeKey, Message, MessageType, PsObject, PsValue, SessionKey,
};

use super::pool::{PoolInner, RunspacePool, receive};
use super::wire::Input;
use crate::error::{Error, Result};
use crate::shell::messages as winrs;

/// A pool's keys: the RSA pair the builder was given (else one is made at the first
/// exchange) and the session key once exchanged.
#[derive(Default)]
pub(crate) struct Keys {
    pub(crate) exchange: Option<ExchangeKey>,
    session: OnceCell<SessionKey>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("exchanged", &self.session.initialized())
            .finish_non_exhaustive()
    }
}

impl Keys {
    pub(crate) fn new(exchange: Option<ExchangeKey>) -> Self {
        Keys {
            exchange,
            session: OnceCell::new(),
        }
    }

    /// The same keys for the pool after a disconnection (the server's pool keeps its
    /// session key).
    pub(crate) fn carry(&self) -> Self {
        let session = OnceCell::new();
        if let Some(k) = self.session.get() {
            let _ = session.set(k.clone());
        }
        Keys {
            exchange: self.exchange.clone(),
            session,
        }
    }

    /// The session key, if the exchange happened.
    pub(crate) fn session(&self) -> Option<&SessionKey> {
        self.session.get()
    }
}

/// Whether a host method's answer holds a SecureString (`ReadLineAsSecureString`, the
/// `PSCredential` of `PromptForCredential`): the pool exchanges keys before asking the
/// host.
pub(crate) fn answer_needs_session_key(method: HostMethod) -> bool {
    matches!(
        method,
        HostMethod::ReadLineAsSecureString
            | HostMethod::PromptForCredential1
            | HostMethod::PromptForCredential2
    )
}

impl PoolInner {
    /// The pool's session key, exchanging it first if this is the first use. One
    /// exchange per pool: concurrent callers wait for the same one.
    pub(crate) async fn session_key(&self) -> Result<&SessionKey> {
        self.keys
            .session
            .get_or_try_init(|| self.exchange_session_key())
            .await
    }

    async fn exchange_session_key(&self) -> Result<SessionKey> {
        let pair = match &self.keys.exchange {
            Some(k) => k.clone(),
            None => tokio::task::spawn_blocking(ExchangeKey::generate)
                .await
                .map_err(|e| Error::State(format!("generating the RSA key pair failed: {e}")))??,
        };
        let body: PsValue = PsObject::new()
            .with_property("PublicKey", pair.public_key_blob())
            .into();
        let msg = Message::from_value(
            Destination::Server,
            MessageType::PublicKey,
            self.id,
            None,
            &body,
        );
        // One pool-level exchange at a time: each receives on the pool until its answer.
        let _one_at_a_time = self.calls.lock().await;
        let payloads = self.pack(&[msg]);
        self.send_payloads(Input::Stdin, None, payloads).await?;
        let mut inbound = Defragmenter::new();
        let mut arena = BytesMut::new();
        loop {
            let received = receive(&self.shell, None).await?;
            for text in received.chunks {
                let data = winrs::decode_into(&text, &mut arena)?;
                for m in inbound.push_messages(&data)? {
                    match ServerMessage::decode(&m)? {
                        ServerMessage::Other(MessageType::EncryptedSessionKey, v) => {
                            let blob = v
                                .property("EncryptedSessionKey")
                                .and_then(PsValue::as_str)
                                .ok_or(wsman_protocol::psrp::Error::MissingProperty {
                                    message: "ENCRYPTED_SESSION_KEY",
                                    property: "EncryptedSessionKey",
                                })?;
                            tracing::debug!(pool = %self.id, "session key exchanged");
                            return Ok(pair.decrypt_session_key(blob)?);
                        }
                        ServerMessage::RunspacePoolState(s)
                            if matches!(
                                s.state,
                                RunspacePoolState::Broken | RunspacePoolState::Closed
                            ) =>
                        {
                            return Err(Error::RunspacePoolBroken {
                                state: s.state.name(),
                                error: s.error.map(Box::new),
                            });
                        }
                        ServerMessage::HostCall(call) => {
                            Box::pin(self.answer_host_call(None, &call)).await?;
                        }
                        _ => {}
                    }
                }
            }
            if received.done {
                return Err(Error::RunspacePoolBroken {
                    state: "Closed".into(),
                    error: None,
                });
            }
        }
    }
}

impl RunspacePool {
    /// Exchanges the session key with the server now ([MS-PSRP] §3.1.5.4.3: PUBLIC_KEY
    /// with the client's RSA public key, answered by ENCRYPTED_SESSION_KEY), if it was
    /// not exchanged yet. [`RunspacePool::secure_string`] and host answers that hold a
    /// SecureString do it on first use; calling it first moves the round trip (and the
    /// making of an RSA key pair, unless [`RunspacePoolBuilder::exchange_key`] gave one)
    /// out of the way.
    ///
    /// [`RunspacePoolBuilder::exchange_key`]: super::RunspacePoolBuilder::exchange_key
    ///
    /// # Errors
    /// [`Error::Psrp`] (a `SessionKey` error) when the server's key does not decrypt or
    /// its message cannot be read; [`Error::RunspacePoolBroken`]; faults and transport
    /// errors of the Send and the Receives.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the exchange; the next call starts it again with a
    /// new PUBLIC_KEY (the server answers the latest).
    pub async fn exchange_keys(&self) -> Result<()> {
        self.inner.session_key().await.map(|_| ())
    }

    /// `text` as a SecureString for a parameter or an input object (`<SS>`, [MS-PSRP]
    /// §2.2.5.1.24), encrypted with the pool's session key (exchanged first if needed):
    /// `.param("Value", pool.secure_string("p@ss").await?)`.
    ///
    /// # Errors
    /// As [`RunspacePool::exchange_keys`].
    ///
    /// # Cancel safety
    /// As [`RunspacePool::exchange_keys`].
    pub async fn secure_string(&self, text: &str) -> Result<PsValue> {
        let key = self.inner.session_key().await?;
        Ok(PsValue::SecureString(key.encrypt(text)))
    }

    /// The text of a SecureString the server sent (an output object, a property), with
    /// the pool's session key.
    ///
    /// # Errors
    /// [`Error::State`] before any key exchange (the server cannot have made one this
    /// client can read); [`Error::Psrp`] when it does not decrypt with the key.
    pub fn decrypt(&self, secure: &EncryptedString) -> Result<SecretString> {
        let key = self.inner.keys.session().ok_or_else(|| {
            Error::State("no session key: call RunspacePool::exchange_keys first".into())
        })?;
        Ok(key.decrypt(secure)?)
    }
}

/// A `System.Management.Automation.PSCredential` with `password` (a SecureString made
/// with the pool's session key, e.g. by [`SessionKey::encrypt`]), as a host answers
/// `PromptForCredential` ([MS-PSRP] §2.2.3.25).
pub fn ps_credential(user_name: impl Into<String>, password: EncryptedString) -> PsValue {
    PsObject::new()
        .with_type_names(["System.Management.Automation.PSCredential", "System.Object"])
        .with_to_string("System.Management.Automation.PSCredential")
        .with_adapted("UserName", user_name.into())
        .with_adapted("Password", PsValue::SecureString(password))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_credential_and_secure_line_answers_need_the_key() {
        assert!(answer_needs_session_key(HostMethod::ReadLineAsSecureString));
        assert!(answer_needs_session_key(HostMethod::PromptForCredential2));
        assert!(!answer_needs_session_key(HostMethod::ReadLine));
        assert!(!answer_needs_session_key(HostMethod::PromptForChoice));
    }

    #[test]
    fn a_credential_is_the_typed_object_with_adapted_properties() {
        let v = ps_credential("me", EncryptedString::from_ciphertext(vec![1; 16]));
        let o = v.as_object().expect("an object");
        assert!(o.is_type("System.Management.Automation.PSCredential"));
        assert_eq!(o.property("UserName").and_then(PsValue::as_str), Some("me"));
        assert!(matches!(
            o.property("Password"),
            Some(PsValue::SecureString(s)) if s.ciphertext() == [1; 16]
        ));
        let keys = Keys::new(None);
        assert!(keys.session().is_none());
        assert_eq!(format!("{keys:?}"), "Keys { exchanged: false, .. }");
    }
}
