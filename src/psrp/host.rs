//! The PowerShell host of a runspace pool: what answers the host calls a pipeline makes
//! (`Read-Host`, `Get-Credential`, `$Host.UI.PromptForChoice`, `Write-Host`...;
//! [MS-PSRP] §2.2.2.27, §3.1.4.6).

use wsman_protocol::psrp::messages::{ErrorCategory, ErrorRecord, HostCall, HostMethod};
use wsman_protocol::psrp::{PsValue, SessionKey};

/// Answers host calls. Install one with
/// [`RunspacePoolBuilder::host`](super::RunspacePoolBuilder::host); without one, the
/// pool uses [`NotInteractive`].
///
/// It answers a pipeline's calls (PIPELINE_HOST_CALL) and the pool's own
/// (RUNSPACEPOOL_HOST_CALL, [MS-PSRP] §2.2.2.15, read from the pool's stream while a
/// pipeline runs on; `HostCall` then has no pipeline).
///
/// [`PsHost::call`] runs on the pipeline's Receive loop: no Receive goes out until it
/// returns, so it should answer quickly (a preset answer, a value from a channel that is
/// already filled). Its return value is sent only for methods that return something
/// ([`HostMethod::is_void`] false); for void methods (`WriteLine`, `SetShouldExit`...)
/// it is a notification and the result is ignored.
pub trait PsHost: Send + Sync + 'static {
    /// Answers one call: `Ok(value)` is the method's return value, `Err(record)` the
    /// error the pipeline sees (e.g. `Read-Host` fails with it).
    ///
    /// # Errors
    /// The error record to send back in place of a value.
    fn call(&self, call: &HostCall) -> Result<PsValue, Box<ErrorRecord>>;

    /// As [`PsHost::call`], with the pool's session key, which answers holding a
    /// SecureString need: `ReadLineAsSecureString` returns
    /// `PsValue::SecureString(key.encrypt(text))`, `PromptForCredential` a
    /// [`ps_credential`](super::ps_credential) with such a password ([MS-PSRP]
    /// §2.2.5.1.24). For a call of those methods the pool exchanges the key first (`key`
    /// is then `Some`); otherwise it is `Some` once exchanged (see
    /// [`RunspacePool::exchange_keys`](super::RunspacePool::exchange_keys)). The default calls
    /// [`PsHost::call`]: override this one in a host that answers with SecureStrings.
    ///
    /// # Errors
    /// The error record to send back in place of a value.
    fn call_with_session_key(
        &self,
        call: &HostCall,
        key: Option<&SessionKey>,
    ) -> Result<PsValue, Box<ErrorRecord>> {
        let _ = key;
        self.call(call)
    }
}

/// The default host: it has no user to ask. Calls that need an answer (`ReadLine`,
/// `Prompt`, `PromptForCredential`, `PromptForChoice`, `ReadLineAsSecureString`...) fail
/// at once with a `NotImplemented` error record, "this host is not interactive", so a
/// script that asks for input fails instead of hanging; notifications (`WriteLine`,
/// `WriteProgress`...) are ignored.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotInteractive;

impl NotInteractive {
    /// The error record sent for `call`.
    pub fn error(call: &HostCall) -> ErrorRecord {
        ErrorRecord::new(
            format!(
                "The host is not interactive: {} cannot be answered (tokio-winrm runs without a user; install a PsHost to answer host calls).",
                call.method.name()
            ),
            "HostNotInteractive",
            ErrorCategory::NotImplemented,
        )
    }
}

impl PsHost for NotInteractive {
    fn call(&self, call: &HostCall) -> Result<PsValue, Box<ErrorRecord>> {
        if call.method.is_void() {
            Ok(PsValue::Null)
        } else {
            Err(Box::new(NotInteractive::error(call)))
        }
    }
}

/// Whether a method's answer is sent back.
pub(crate) fn needs_answer(method: HostMethod) -> bool {
    !method.is_void()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_interactive_refuses_questions_and_ignores_notifications() {
        let read = HostCall::new(1, HostMethod::ReadLine, Vec::new());
        let err = NotInteractive.call(&read).expect_err("ReadLine is refused");
        assert!(err.message.contains("not interactive"), "{}", err.message);
        assert!(err.message.contains("ReadLine"), "{}", err.message);
        assert_eq!(
            err.fully_qualified_error_id.as_deref(),
            Some("HostNotInteractive")
        );
        assert!(needs_answer(HostMethod::ReadLine));
        let cred = HostCall::new(2, HostMethod::PromptForCredential1, Vec::new());
        assert!(NotInteractive.call(&cred).is_err());
        let write = HostCall::new(-100, HostMethod::WriteLine2, vec!["hi".into()]);
        assert_eq!(NotInteractive.call(&write), Ok(PsValue::Null));
        assert!(!needs_answer(HostMethod::WriteLine2));
    }
}
