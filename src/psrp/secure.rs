//! SecureStrings in a runspace pool: the session key exchange ([MS-PSRP] §3.1.5.4.3:
//! PUBLIC_KEY on the pool's stdin, ENCRYPTED_SESSION_KEY on its output), then
//! encryption of the SecureStrings the client sends (parameters, host answers) and
//! decryption of those it receives ([MS-PSRP] §2.2.5.1.24).
//!
//! The crypto is `wsman_protocol::psrp::session_key` (RSA and AES from RustCrypto);
//! this module does the exchange on the wire, once per pool.

use std::sync::Arc;

use secrecy::SecretString;
use tokio::sync::OnceCell;
use wsman_protocol::psrp::clixml::EncryptedString;
use wsman_protocol::psrp::messages::HostMethod;
use wsman_protocol::psrp::{
    Destination, ExchangeKey, Message, MessageType, PsObject, PsValue, SessionKey,
};

use super::pool::{PoolInner, RunspacePool};
use super::wire::Input;
use crate::error::{Error, Result};

/// A pool's keys: the RSA pair the builder was given (else one is made at the first
/// exchange) and the session key once exchanged.
#[derive(Default)]
pub(crate) struct Keys {
    pub(crate) exchange: Option<ExchangeKey>,
    /// The pair sent in PUBLIC_KEY: `exchange`, or one made once for the pool.
    pair: OnceCell<ExchangeKey>,
    /// The session key; replaced if the server asks for a new one (PUBLIC_KEY_REQUEST).
    session: std::sync::Mutex<Option<SessionKey>>,
    /// Why the last exchange failed (an ENCRYPTED_SESSION_KEY that does not decrypt),
    /// for the caller waiting for it.
    failure: std::sync::Mutex<Option<Error>>,
    /// One exchange at a time (the client's, or an answer to the server's request).
    exchanging: tokio::sync::Mutex<()>,
    /// Bumped whenever a session key is set.
    version: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("exchanged", &self.session().is_some())
            .finish_non_exhaustive()
    }
}

impl Keys {
    pub(crate) fn new(exchange: Option<ExchangeKey>) -> Self {
        Keys {
            exchange,
            ..Keys::default()
        }
    }

    /// The same keys for the pool after a disconnection (the server's pool keeps its
    /// session key).
    pub(crate) fn carry(&self) -> Self {
        Keys {
            exchange: self.exchange.clone(),
            pair: OnceCell::new_with(self.pair.get().cloned()),
            session: std::sync::Mutex::new(self.session()),
            ..Keys::default()
        }
    }

    /// The session key, if the exchange happened.
    pub(crate) fn session(&self) -> Option<SessionKey> {
        self.session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Records why an exchange failed, for the caller waiting for it.
    pub(crate) fn fail(&self, e: Error) {
        *self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
    }

    fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn take_failure(&self) -> Option<Error> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

/// How long a pipeline's end waits for a key exchange in flight.
const KEY_SETTLE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

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
    /// exchange at a time: concurrent callers wait for the same one. The answer comes
    /// on the pool's stream, which its reader routes here.
    pub(crate) async fn session_key(self: &Arc<Self>) -> Result<SessionKey> {
        self.exchange(false).await
    }

    /// Answers the server's PUBLIC_KEY_REQUEST ([MS-PSRP] §3.1.5.4.5): PUBLIC_KEY even
    /// if a key was exchanged (the server asks for a new one), then waits for it, so that
    /// [`PoolInner::key_settled`] and other exchanges wait for this one.
    pub(crate) async fn answer_key_request(self: &Arc<Self>) -> Result<SessionKey> {
        self.exchange(true).await
    }

    /// Waits while an exchange is in flight (a pipeline whose output holds a SecureString
    /// made with a key the server asked for ends after that key is here).
    pub(crate) async fn key_settled(&self) {
        if self.keys.exchanging.try_lock().is_err() {
            // Bounded: an exchange the server never answers does not hold pipelines.
            let _ = tokio::time::timeout(KEY_SETTLE_WAIT, self.keys.exchanging.lock()).await;
        }
    }

    async fn exchange(self: &Arc<Self>, requested: bool) -> Result<SessionKey> {
        if !requested && let Some(k) = self.keys.session() {
            return Ok(k);
        }
        let _one_at_a_time = self.keys.exchanging.lock().await;
        if !requested && let Some(k) = self.keys.session() {
            return Ok(k);
        }
        let before = self.keys.version();
        if let Some(e) = self.stream.broken_error() {
            return Err(e);
        }
        let _waiting = self.stream.waiting();
        let mut events = self.stream.events.subscribe();
        let generation = self.stream.generation();
        drop(self.keys.take_failure());
        self.send_public_key().await?;
        self.wake_reader();
        if self.shell.disconnecting.is_cancelled() {
            return Err(Error::State(
                "the runspace pool is being disconnected: no session key exchange".into(),
            ));
        }
        loop {
            if self.keys.version() != before
                && let Some(k) = self.keys.session()
            {
                return Ok(k);
            }
            if let Some(e) = self.keys.take_failure() {
                return Err(e);
            }
            if let Some(e) = self.stream.broken_error() {
                return Err(e);
            }
            if let Some(e) = self.stream.ended_since(generation) {
                return Err(e);
            }
            if events.changed().await.is_err() {
                return Err(Error::State("the runspace pool is gone".into()));
            }
        }
    }

    /// Sends PUBLIC_KEY with the pool's RSA public key ([MS-PSRP] §2.2.2.3), making the
    /// pair first if there is none.
    pub(crate) async fn send_public_key(&self) -> Result<()> {
        let pair = self
            .keys
            .pair
            .get_or_try_init(|| async {
                match &self.keys.exchange {
                    Some(k) => Ok(k.clone()),
                    None => tokio::task::spawn_blocking(ExchangeKey::generate)
                        .await
                        .map_err(|e| {
                            Error::State(format!("generating the RSA key pair failed: {e}"))
                        })?
                        .map_err(Error::from),
                }
            })
            .await?;
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
        let payloads = self.pack(&[msg]);
        self.send_payloads(Input::Stdin, None, payloads).await
    }

    /// ENCRYPTED_SESSION_KEY arrived on the pool's stream ([MS-PSRP] §2.2.2.4): the
    /// session key, unwrapped with the pool's RSA key.
    pub(crate) fn key_arrived(&self, v: &PsValue) {
        let Some(pair) = self.keys.pair.get() else {
            tracing::debug!(pool = %self.id, "ENCRYPTED_SESSION_KEY without a PUBLIC_KEY: ignored");
            return;
        };
        let key = v
            .property("EncryptedSessionKey")
            .and_then(PsValue::as_str)
            .ok_or(wsman_protocol::psrp::Error::MissingProperty {
                message: "ENCRYPTED_SESSION_KEY",
                property: "EncryptedSessionKey",
            })
            .and_then(|blob| pair.decrypt_session_key(blob));
        match key {
            Ok(k) => {
                tracing::debug!(pool = %self.id, "session key exchanged");
                *self
                    .keys
                    .session
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(k);
                self.keys
                    .version
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            Err(e) => self.keys.fail(e.into()),
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
    /// When the server asked for the key itself (PUBLIC_KEY_REQUEST, [MS-PSRP]
    /// §3.1.5.4.5, while a pipeline that outputs a SecureString runs), this waits for
    /// that exchange instead of starting another.
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
    /// A SecureString in a pipeline's output that the server made with a key it asked
    /// for during that pipeline decrypts once the pipeline's final state came (the
    /// state waits for the key); before it, [`RunspacePool::exchange_keys`] waits for the
    /// exchange in flight.
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
