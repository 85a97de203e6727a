//! The cmdlet engine: runs a CREATE_PIPELINE's statements, each a pipeline of commands
//! connected by bounded channels, every command a future (a built-in cmdlet or one a
//! user registered with [`Simulator::register_cmdlet`](crate::Simulator::register_cmdlet)).
//!
//! Semantics, as PowerShell's:
//! * a command (`AddCommand`) that is not found fails the pipeline with the
//!   CommandNotFoundException record; in a script, the record goes to the error stream
//!   and the next statement runs;
//! * a cmdlet's `Err(record)` is a terminating error: it fails the pipeline (a
//!   command) or ends the statement with the record on the error stream (a script);
//! * when a command ends, the commands before it in its pipeline are stopped (as
//!   `Select-Object -First` stops its upstream);
//! * `Write-Verbose` and `Write-Debug` write only with `-Verbose` / `-Debug` (the
//!   default preferences are SilentlyContinue); the information stream exists from
//!   protocol 2.3.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::super::super::State;
use super::script::{self, Statement};
use super::{Pipeline, objects, server_message};
use crate::soap::psrp::clixml::EncryptedString;
use crate::soap::psrp::messages::{
    Argument, Command, ErrorCategory, ErrorRecord, HostCall, HostMethod, InformationalRecord,
    PipelineResultTypes, PowerShell, ProgressRecord, ProtocolVersion,
};
use crate::soap::psrp::{Collection, MessageType, PsObject, PsValue};
use secrecy::SecretString;

/// A cmdlet registered with [`Simulator::register_cmdlet`](crate::Simulator::register_cmdlet):
/// called once per invocation with its [`CmdletContext`]; `Err` is a terminating error.
pub type CmdletFn =
    Arc<dyn Fn(CmdletContext) -> BoxFuture<'static, Result<(), ErrorRecord>> + Send + Sync>;

/// Objects a channel between two commands holds before the writer waits.
const CHANNEL: usize = 64;

/// What a pipeline run needs.
#[derive(Clone)]
pub(crate) struct Run {
    pub state: Arc<State>,
    pub pool_id: Uuid,
    pub pipeline_id: Uuid,
    pub version: ProtocolVersion,
    pub host_null: bool,
    pub host_ui_null: bool,
    pub pipeline: Arc<Pipeline>,
    pub pool: Arc<super::Pool>,
    pub application_arguments: Arc<Vec<(PsValue, PsValue)>>,
    pub user: String,
}

impl Run {
    async fn send(&self, t: MessageType, v: &PsValue) {
        self.pipeline
            .outbox
            .push(server_message(t, self.pool_id, Some(self.pipeline_id), v))
            .await;
    }
}

/// How a pipeline ended.
pub(crate) enum Outcome {
    Completed,
    Failed(Box<ErrorRecord>),
    Stopped,
}

/// Where a command reads its input from.
enum Input {
    Empty,
    Client(mpsc::UnboundedReceiver<PsValue>),
    Upstream(mpsc::Receiver<PsValue>),
}

/// Where a command's output goes: the next command, or (the last one) the client.
enum Output {
    Next(mpsc::Sender<PsValue>),
    Client,
}

/// One invocation of a cmdlet: its parameters, its input, and the streams it writes.
///
/// Parameter names are case-insensitive. Output goes to the next command of the
/// pipeline (or to the client), waiting while the next command is behind; error,
/// warning, verbose, debug, information and progress records go to the client.
pub struct CmdletContext {
    name: String,
    args: Vec<Argument>,
    input: Input,
    output: Output,
    run: Arc<RunShared>,
    merge_error: bool,
}

/// The parts of a [`Run`] every command of it shares.
struct RunShared {
    run: Run,
}

impl std::fmt::Debug for CmdletContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CmdletContext")
            .field("name", &self.name)
            .field("args", &self.args)
            .finish_non_exhaustive()
    }
}

impl CmdletContext {
    /// The command name as the client wrote it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// All arguments in order: named (`-Name value`), switches (a name with a `Null`
    /// value) and positional ones (no name).
    pub fn arguments(&self) -> &[Argument] {
        &self.args
    }

    /// The value of the named parameter `name` (case-insensitive).
    pub fn parameter(&self, name: &str) -> Option<&PsValue> {
        self.args
            .iter()
            .find(|a| {
                a.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .map(|a| &a.value)
    }

    /// The named parameter `name` as text (strings, numbers, and the `ToString` of an
    /// object).
    pub fn parameter_str(&self, name: &str) -> Option<String> {
        self.parameter(name).and_then(text_of)
    }

    /// The `index`-th positional argument (0-based).
    pub fn positional(&self, index: usize) -> Option<&PsValue> {
        self.args
            .iter()
            .filter(|a| a.name.is_none())
            .nth(index)
            .map(|a| &a.value)
    }

    /// Whether the switch `-name` was given (a `Null` or `$true` value).
    pub fn switch(&self, name: &str) -> bool {
        self.parameter(name)
            .is_some_and(|v| v.is_null() || v.as_bool() == Some(true))
    }

    /// The application argument `name` the client gave when it opened the pool
    /// (`$PSSenderInfo.ApplicationArguments[name]` on Windows; case-insensitive).
    pub fn application_argument(&self, name: &str) -> Option<&PsValue> {
        self.run
            .run
            .application_arguments
            .iter()
            .find(|(k, _)| k.as_str().is_some_and(|k| k.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v)
    }

    /// The name of the user the pool runs as.
    pub fn user(&self) -> &str {
        &self.run.run.user
    }

    /// The simulator's state (the file-copy scripts reach the host's files through it).
    pub(crate) fn sim_state(&self) -> &Arc<State> {
        &self.run.run.state
    }

    /// The protocol version the pool speaks (2.1, 2.2 or 2.3).
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.run.run.version
    }

    /// The next input object: from the previous command of the pipeline, or the
    /// client's PIPELINE_INPUT for the first command; `None` at the end of input.
    ///
    /// # Cancel safety
    /// Cancel safe: an object is taken only when the future completes.
    pub async fn next_input(&mut self) -> Option<PsValue> {
        match &mut self.input {
            Input::Empty => None,
            Input::Client(rx) => rx.recv().await,
            Input::Upstream(rx) => rx.recv().await,
        }
    }

    /// Writes an object to the output stream. Waits while the next command (or the
    /// client) is behind; an object written after the next command ended is dropped.
    ///
    /// # Cancel safety
    /// Not cancel safe: the object may or may not have been written.
    pub async fn write_output(&self, value: impl Into<PsValue>) {
        match &self.output {
            Output::Next(tx) => {
                let _ = tx.send(value.into()).await;
            }
            Output::Client => {
                self.run
                    .run
                    .send(MessageType::PipelineOutput, &value.into())
                    .await;
            }
        }
    }

    /// Writes an error record (a non-terminating error; return `Err` for a terminating
    /// one). With the command's error stream merged into output, it goes to output.
    ///
    /// # Cancel safety
    /// Not cancel safe: the record may or may not have been written.
    pub async fn write_error(&self, record: ErrorRecord) {
        if self.merge_error {
            self.write_output(record.to_value()).await;
        } else {
            self.run
                .run
                .send(MessageType::ErrorRecord, &record.to_value())
                .await;
        }
    }

    /// Writes a warning.
    ///
    /// # Cancel safety
    /// Not cancel safe: the record may or may not have been written.
    pub async fn write_warning(&self, message: &str) {
        let r = InformationalRecord::new("Warning", message);
        self.run
            .run
            .send(MessageType::WarningRecord, &r.to_value())
            .await;
    }

    /// Writes a verbose record (whatever the preference: the caller decides).
    ///
    /// # Cancel safety
    /// Not cancel safe: the record may or may not have been written.
    pub async fn write_verbose(&self, message: &str) {
        let r = InformationalRecord::new("Verbose", message);
        self.run
            .run
            .send(MessageType::VerboseRecord, &r.to_value())
            .await;
    }

    /// Writes a debug record.
    ///
    /// # Cancel safety
    /// Not cancel safe: the record may or may not have been written.
    pub async fn write_debug(&self, message: &str) {
        let r = InformationalRecord::new("Debug", message);
        self.run
            .run
            .send(MessageType::DebugRecord, &r.to_value())
            .await;
    }

    /// Writes an information record (protocol 2.3; dropped on older pools, which have
    /// no information stream).
    ///
    /// # Cancel safety
    /// Not cancel safe: the record may or may not have been written.
    pub async fn write_information(&self, message_data: impl Into<PsValue>) {
        self.write_information_tagged(message_data.into(), &[])
            .await;
    }

    /// Writes what `Write-Host` writes: an information record tagged `PSHOST`.
    ///
    /// # Cancel safety
    /// Not cancel safe: the record may or may not have been written.
    pub async fn write_host(&self, text: impl Into<String>) {
        self.write_information_tagged(PsValue::String(text.into()), &["PSHOST"])
            .await;
    }

    async fn write_information_tagged(&self, message_data: PsValue, tags: &[&str]) {
        if self.run.run.version < ProtocolVersion::V2_3 {
            return;
        }
        // As Windows writes it: every property extended (`<MS>`).
        let record = PsObject::new()
            .with_type_names([
                "System.Management.Automation.InformationRecord",
                "System.Object",
            ])
            .with_to_string(text_of(&message_data).unwrap_or_default())
            .with_property("MessageData", message_data)
            .with_property("SerializeExtendedInfo", false)
            .with_property("Source", self.name.clone())
            .with_property(
                "TimeGenerated",
                PsValue::DateTime(objects::datetime_text(std::time::SystemTime::now())),
            )
            .with_property(
                "Tags",
                PsObject::list(
                    [
                        "System.Collections.Generic.List`1[[System.String, mscorlib, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089]]",
                        "System.Object",
                    ],
                    tags.iter().map(|t| PsValue::String((*t).into())).collect(),
                ),
            )
            .with_property("User", format!("SIM\\{}", self.run.run.user))
            .with_property("Computer", "SIM")
            .with_property("ProcessId", PsValue::U32(4242))
            .with_property("NativeThreadId", PsValue::U32(4243))
            .with_property("ManagedThreadId", PsValue::U32(12));
        self.run
            .run
            .send(MessageType::InformationRecord, &record.into())
            .await;
    }

    /// Writes a progress record.
    ///
    /// # Cancel safety
    /// Not cancel safe: the record may or may not have been written.
    pub async fn write_progress(&self, record: &ProgressRecord) {
        self.run
            .run
            .send(MessageType::ProgressRecord, &record.to_value())
            .await;
    }

    /// Calls a method of the client's host (PIPELINE_HOST_CALL) and waits for its
    /// PIPELINE_HOST_RESPONSE; `Ok(None)` for a void method (no response is awaited).
    ///
    /// # Errors
    /// The host's error record, or PowerShell's "NonInteractive mode" record when the
    /// client said it has no host.
    ///
    /// # Cancel safety
    /// Cancel safe: a response that comes later is dropped.
    pub async fn host_call(
        &self,
        method: HostMethod,
        parameters: Vec<PsValue>,
    ) -> Result<Option<PsValue>, ErrorRecord> {
        let run = &self.run.run;
        let ui_method = method.is_interactive() || method.name().starts_with("Write");
        if run.host_null || (run.host_ui_null && ui_method) {
            if method.is_void() {
                return Ok(None);
            }
            return Err(non_interactive(&self.name));
        }
        let (call_id, rx) = if method.is_void() {
            (-100, None)
        } else {
            let (id, rx) = run.pipeline.host_call();
            (id, Some(rx))
        };
        let call = HostCall::new(call_id, method, parameters);
        run.send(MessageType::PipelineHostCall, &call.to_value())
            .await;
        let Some(rx) = rx else { return Ok(None) };
        self.host_answer(rx).await
    }
}

/// Why [`CmdletContext::secure_parameter`] (or [`CmdletContext::decrypt`]) gave no plain
/// text. Converts into the [`ErrorRecord`] a cmdlet returns, so `?` works in a cmdlet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecureStringError {
    /// The command has no named parameter of that name.
    Missing {
        /// The parameter's name.
        parameter: String,
    },
    /// The parameter is not a SecureString (a plain string, a number, ...).
    NotSecureString {
        /// The parameter's name.
        parameter: String,
    },
    /// The client and the pool exchanged no session key ([MS-PSRP] §3.1.5.4.3), so no
    /// SecureString can be decrypted. A client that sends a SecureString makes the
    /// exchange first.
    NoSessionKey,
    /// The ciphertext does not decrypt under the pool's session key (damaged, or made
    /// with another pool's key).
    Undecryptable,
}

impl std::fmt::Display for SecureStringError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecureStringError::Missing { parameter } => {
                write!(f, "the command has no parameter -{parameter}")
            }
            SecureStringError::NotSecureString { parameter } => {
                write!(f, "the parameter -{parameter} is not a SecureString")
            }
            SecureStringError::NoSessionKey => f.write_str(
                "no session key was exchanged with the client, so no SecureString can be decrypted",
            ),
            SecureStringError::Undecryptable => {
                f.write_str("the SecureString does not decrypt under the pool's session key")
            }
        }
    }
}

impl std::error::Error for SecureStringError {}

impl From<SecureStringError> for ErrorRecord {
    fn from(e: SecureStringError) -> ErrorRecord {
        let (id, category) = match &e {
            SecureStringError::Missing { .. } => (
                "ParameterArgumentValidationErrorNullNotAllowed",
                ErrorCategory::InvalidData,
            ),
            SecureStringError::NotSecureString { .. } => (
                "ParameterArgumentTransformationError",
                ErrorCategory::InvalidData,
            ),
            SecureStringError::NoSessionKey | SecureStringError::Undecryptable => (
                "PSRemotingDataStructureException",
                ErrorCategory::InvalidOperation,
            ),
        };
        ErrorRecord::new(e.to_string(), id, category)
    }
}

impl CmdletContext {
    /// The plain text of the SecureString parameter `name` (case-insensitive), decrypted
    /// with the pool's session key, as a cmdlet on Windows reads a `[SecureString]`
    /// parameter (for a SecureString inside an object, such as a `PSCredential`'s
    /// `Password`, see [`CmdletContext::decrypt`]). The text is a
    /// [`secrecy::SecretString`]: it is not shown by `Debug` and is zeroed when dropped.
    ///
    /// ```
    /// # use winrm_simulator::{CmdletContext, Simulator};
    /// # async fn f(sim: Simulator) {
    /// use secrecy::ExposeSecret as _;
    /// sim.register_cmdlet("Set-Secret", |ctx: CmdletContext| async move {
    ///     let secret = ctx.secure_parameter("Value")?;
    ///     ctx.write_output(secret.expose_secret().len() as i32).await;
    ///     Ok(())
    /// });
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`SecureStringError::Missing`] without such a parameter,
    /// [`SecureStringError::NotSecureString`] when it is another type,
    /// [`SecureStringError::NoSessionKey`] when the client exchanged no session key,
    /// [`SecureStringError::Undecryptable`] when the ciphertext does not decrypt.
    pub fn secure_parameter(&self, name: &str) -> Result<SecretString, SecureStringError> {
        match self.parameter(name) {
            None => Err(SecureStringError::Missing {
                parameter: name.to_string(),
            }),
            Some(PsValue::SecureString(s)) => self.decrypt(s),
            Some(_) => Err(SecureStringError::NotSecureString {
                parameter: name.to_string(),
            }),
        }
    }

    /// The plain text of a SecureString the client sent (a parameter's value, a
    /// property of an input object such as a `PSCredential`'s `Password`), decrypted
    /// with the pool's session key.
    ///
    /// # Errors
    /// [`SecureStringError::NoSessionKey`] when the client exchanged no session key,
    /// [`SecureStringError::Undecryptable`] when the ciphertext does not decrypt.
    pub fn decrypt(&self, secure: &EncryptedString) -> Result<SecretString, SecureStringError> {
        let key = self
            .run
            .run
            .pool
            .current_session_key()
            .ok_or(SecureStringError::NoSessionKey)?;
        key.decrypt(secure)
            .map_err(|_| SecureStringError::Undecryptable)
    }
}

impl CmdletContext {
    /// `text` as a SecureString encrypted with the pool's session key, as PowerShell
    /// sends one (`ConvertTo-SecureString`'s output). Without a key the server asks the
    /// client for one first: PUBLIC_KEY_REQUEST on the pool's stream ([MS-PSRP]
    /// §3.1.5.4.5), then it waits (up to a minute) for the client's PUBLIC_KEY.
    ///
    /// # Errors
    /// An error record when no key came.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn secure_string(&self, text: &str) -> Result<PsValue, ErrorRecord> {
        match self.run.run.pool.session_key(Duration::from_secs(60)).await {
            Some(k) => Ok(PsValue::SecureString(k.encrypt(text))),
            None => Err(ErrorRecord::new(
                "The client did not send the public key needed to send a SecureString.",
                "PSRemotingDataStructureException",
                ErrorCategory::InvalidOperation,
            )),
        }
    }

    /// A host's answer to a call: its result, or its error record (PowerShell's
    /// "NonInteractive mode" record when no answer came or its record cannot be read).
    async fn host_answer(
        &self,
        rx: tokio::sync::oneshot::Receiver<crate::soap::psrp::messages::HostResponse>,
    ) -> Result<Option<PsValue>, ErrorRecord> {
        match rx.await {
            Ok(r) => match r.error {
                Some(e) => {
                    Err(ErrorRecord::from_value(&e).unwrap_or_else(|_| non_interactive(&self.name)))
                }
                None => Ok(r.result),
            },
            Err(_) => Err(non_interactive(&self.name)),
        }
    }

    /// Calls a method of the pool's host (RUNSPACEPOOL_HOST_CALL on the pool's own
    /// stream, [MS-PSRP] §2.2.2.15, as a pool-level host call is made) and waits for the
    /// RUNSPACEPOOL_HOST_RESPONSE; `Ok(None)` for a void method.
    ///
    /// # Errors
    /// The host's error record; PowerShell's "NonInteractive mode" record when the
    /// client said its pool has no host.
    ///
    /// # Cancel safety
    /// Cancel safe: a response that comes later is dropped.
    pub async fn pool_host_call(
        &self,
        method: HostMethod,
        parameters: Vec<PsValue>,
    ) -> Result<Option<PsValue>, ErrorRecord> {
        let pool = &self.run.run.pool;
        if pool.host_null || (pool.host_ui_null && method.is_interactive()) {
            if method.is_void() {
                return Ok(None);
            }
            return Err(non_interactive(&self.name));
        }
        let Some(rx) = pool.pool_host_call(method, parameters) else {
            return Ok(None);
        };
        self.host_answer(rx).await
    }

    /// Reports the runspace pool Broken with `error` (RUNSPACEPOOL_STATE on the pool's
    /// stream, [MS-PSRP] §2.2.2.2), as a server whose pool fails does; the pipelines are
    /// left as they are, and a client must end them.
    pub fn break_runspace_pool(&self, error: ErrorRecord) {
        self.run.run.pool.report_broken(error);
    }
}

fn non_interactive(command: &str) -> ErrorRecord {
    let mut e = ErrorRecord::new(
        "Windows PowerShell is in NonInteractive mode. Read and Prompt functionality is not available.",
        format!(
            "System.Management.Automation.PSInvalidOperationException,Microsoft.PowerShell.Commands.{}Command",
            command.replace('-', "")
        ),
        ErrorCategory::InvalidOperation,
    );
    e.exception_type = Some("System.Management.Automation.PSInvalidOperationException".into());
    e
}

/// A value's text, as PowerShell converts it to a string.
pub(crate) fn text_of(v: &PsValue) -> Option<String> {
    match v {
        PsValue::Null => None,
        PsValue::String(s) => Some(s.clone()),
        PsValue::Bool(b) => Some(if *b { "True" } else { "False" }.into()),
        PsValue::I32(n) => Some(n.to_string()),
        PsValue::I64(n) => Some(n.to_string()),
        PsValue::U32(n) => Some(n.to_string()),
        PsValue::U64(n) => Some(n.to_string()),
        PsValue::I16(n) => Some(n.to_string()),
        PsValue::U16(n) => Some(n.to_string()),
        PsValue::U8(n) => Some(n.to_string()),
        PsValue::I8(n) => Some(n.to_string()),
        PsValue::F64(n) => Some(n.to_string()),
        PsValue::F32(n) => Some(n.to_string()),
        PsValue::Object(o) => o
            .to_string
            .clone()
            .or_else(|| o.value.as_ref().and_then(text_of)),
        other => other.as_str().map(str::to_string),
    }
}

/// The items of a value PowerShell enumerates (arrays, lists), else the value itself.
pub(crate) fn enumerate(v: PsValue) -> Vec<PsValue> {
    if let PsValue::Object(o) = &v
        && let Some(c) = &o.collection
        && let Some(items) = c.items()
    {
        return items.to_vec();
    }
    vec![v]
}

/// An input object as the server holds it: deserialized, its type names prefixed with
/// `Deserialized.` (as Windows writes such objects back).
pub(crate) fn deserialized(v: PsValue) -> PsValue {
    let PsValue::Object(o) = v else { return v };
    let mut o = Arc::unwrap_or_clone(o);
    if o.value.is_none() || o.collection.is_some() || !o.extended.is_empty() {
        let names: Vec<String> = o
            .type_names
            .iter()
            .map(|t| {
                if t.starts_with("Deserialized.") {
                    t.clone()
                } else {
                    format!("Deserialized.{t}")
                }
            })
            .collect();
        o.type_names = names.into();
    }
    o.extended = o
        .extended
        .into_iter()
        .map(|(n, v)| (n, deserialized(v)))
        .collect();
    o.adapted = o
        .adapted
        .into_iter()
        .map(|(n, v)| (n, deserialized(v)))
        .collect();
    PsValue::Object(Arc::new(o))
}

/// The CommandNotFoundException record for `name`.
pub(crate) fn command_not_found(name: &str) -> ErrorRecord {
    let message = format!(
        "The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again."
    );
    let mut e = ErrorRecord::new(
        message.clone(),
        "CommandNotFoundException",
        ErrorCategory::ObjectNotFound,
    );
    e.exception_type = Some("System.Management.Automation.CommandNotFoundException".into());
    e.reason = Some("CommandNotFoundException".into());
    e.target_name = Some(name.into());
    if let Some(o) = e.raw.as_object() {
        let mut o = o.clone();
        let exception = PsObject::new()
            .with_type_names([
                "System.Management.Automation.CommandNotFoundException",
                "System.Management.Automation.RuntimeException",
                "System.SystemException",
                "System.Exception",
                "System.Object",
            ])
            .with_to_string(format!(
                "System.Management.Automation.CommandNotFoundException: {message}"
            ))
            .with_adapted("Message", message)
            .with_adapted("CommandName", name)
            .with_adapted("HResult", -2_146_233_087_i32);
        for (n, v) in o.extended.iter_mut() {
            match n.as_str() {
                "Exception" => *v = exception.clone().into(),
                "TargetObject" => *v = name.into(),
                "ErrorCategory_Reason" => *v = "CommandNotFoundException".into(),
                "ErrorCategory_TargetName" => *v = name.into(),
                "ErrorCategory_TargetType" => *v = "String".into(),
                "ErrorCategory_Message" => {
                    *v = format!("ObjectNotFound: ({name}:String) [], CommandNotFoundException")
                        .into();
                }
                _ => {}
            }
        }
        e.raw = o.into();
    }
    e
}

/// PowerShell's `ErrorCategoryInfo` shortening of a target name in the category
/// message: over 40 characters, the first 15, `...` and the last 15.
fn ellipsize(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 40 {
        return text.to_string();
    }
    let first: String = chars[..15].iter().collect();
    let last: String = chars[chars.len() - 15..].iter().collect();
    format!("{first}...{last}")
}

/// The record of `throw <value>` (`None`: a bare `throw`), as Windows sends it in the
/// Failed state (recorded in pypsrp's `test_client_fetch_file_fail_missing.yml`): a
/// `RuntimeException` thrown from a throw statement whose message is the value's
/// text (`ScriptHalted` for a bare `throw`), that text as the error id, the value as
/// the target object, category `OperationStopped`.
pub(crate) fn thrown(value: Option<PsValue>) -> ErrorRecord {
    const RUNTIME: &str = "System.Management.Automation.RuntimeException";
    let category = ErrorCategory::OperationStopped;
    let message = value
        .as_ref()
        .and_then(text_of)
        .unwrap_or_else(|| "ScriptHalted".to_string());
    let target_type = match &value {
        None => "",
        Some(PsValue::String(_)) => "String",
        Some(PsValue::I32(_)) => "Int32",
        Some(PsValue::I64(_)) => "Int64",
        Some(PsValue::F64(_)) => "Double",
        Some(PsValue::Bool(_)) => "Boolean",
        Some(_) => "Object",
    };
    let target_name = if value.is_some() {
        message.as_str()
    } else {
        ""
    };
    let exception: PsValue = PsObject::new()
        .with_type_names([
            RUNTIME,
            "System.SystemException",
            "System.Exception",
            "System.Object",
        ])
        .with_to_string(format!("{RUNTIME}: {message}"))
        .with_adapted("ErrorRecord", message.clone())
        .with_adapted("WasThrownFromThrowStatement", true)
        .with_adapted("Message", message.clone())
        .with_adapted("HResult", -2_146_233_087_i32)
        .into();
    let raw: PsValue = PsObject::new()
        .with_type_names(["System.Management.Automation.ErrorRecord", "System.Object"])
        .with_to_string(message.clone())
        .with_property("Exception", exception)
        .with_property("TargetObject", value.clone().unwrap_or(PsValue::Null))
        .with_property("FullyQualifiedErrorId", message.clone())
        .with_property("InvocationInfo", PsValue::Null)
        .with_property("ErrorCategory_Category", category.value())
        .with_property("ErrorCategory_Activity", "")
        .with_property("ErrorCategory_Reason", "RuntimeException")
        .with_property("ErrorCategory_TargetName", target_name)
        .with_property("ErrorCategory_TargetType", target_type)
        .with_property(
            "ErrorCategory_Message",
            format!(
                "{}: ({}:{target_type}) [], RuntimeException",
                category.name(),
                ellipsize(target_name)
            ),
        )
        .with_property("SerializeExtendedInfo", false)
        .into();
    ErrorRecord::from_value(&raw).unwrap_or_else(|_| {
        let mut e = ErrorRecord::new(message.clone(), message, category);
        e.exception_type = Some(RUNTIME.into());
        e
    })
}

/// The ParseException record a script the simulator cannot read fails with (the
/// exception is a `ParseException` on the wire too).
fn parse_error(message: &str) -> ErrorRecord {
    const PARSE: &str = "System.Management.Automation.ParseException";
    let mut e = ErrorRecord::new(message, "ParseException", ErrorCategory::ParserError);
    e.exception_type = Some(PARSE.into());
    e.reason = Some("ParseException".into());
    let category_message = "ParserError: (:) [], ParseException".to_string();
    e.category_message = Some(category_message.clone());
    if let Some(o) = e.raw.as_object() {
        let mut o = o.clone();
        let exception = PsObject::new()
            .with_type_names([
                PARSE,
                "System.Management.Automation.RuntimeException",
                "System.SystemException",
                "System.Exception",
                "System.Object",
            ])
            .with_to_string(format!("{PARSE}: {message}"))
            .with_adapted("Message", message)
            .with_adapted("HResult", -2_146_233_087_i32);
        for (n, v) in o.extended.iter_mut() {
            match n.as_str() {
                "Exception" => *v = exception.clone().into(),
                "ErrorCategory_Reason" => *v = "ParseException".into(),
                "ErrorCategory_Message" => *v = category_message.clone().into(),
                _ => {}
            }
        }
        e.raw = o.into();
    }
    e
}

/// PowerShell's common parameters and their aliases (about_CommonParameters), which
/// every cmdlet takes.
const COMMON_PARAMETERS: &[&str] = &[
    "Verbose",
    "vb",
    "Debug",
    "db",
    "ErrorAction",
    "ea",
    "WarningAction",
    "wa",
    "InformationAction",
    "infa",
    "ErrorVariable",
    "ev",
    "WarningVariable",
    "wv",
    "InformationVariable",
    "iv",
    "OutVariable",
    "ov",
    "OutBuffer",
    "ob",
    "PipelineVariable",
    "pv",
];

/// The first named argument of `c` that none of its cmdlet's parameters takes (a name
/// or a prefix of one, case-insensitive, as PowerShell binds them), as PowerShell's
/// ParameterBindingException record; the pipeline fails with it. A prefix of one
/// parameter is renamed to it. The built-in cmdlets'
/// parameters are those of [`objects::BUILTINS`]; a registered cmdlet takes any
/// parameter unless it declared them (`Simulator::declare_cmdlet_parameters`), as does
/// a built-in one the table lacks.
fn unknown_parameter(run: &Run, c: &mut Resolved) -> Option<ErrorRecord> {
    let registry = &run.state.winrs.registry;
    let (name, command, declared): (String, String, Vec<String>) =
        if registry.cmdlet(&c.name).is_some() {
            // A registered cmdlet: as a function, the error id names the command.
            (
                c.name.clone(),
                c.name.clone(),
                registry.cmdlet_parameters(&c.name)?,
            )
        } else {
            let (name, _, declared) = objects::BUILTINS
                .iter()
                .find(|(n, _, _)| n.eq_ignore_ascii_case(&c.name))?;
            (
                name.to_string(),
                format!(
                    "Microsoft.PowerShell.Commands.{}Command",
                    name.replace('-', "")
                ),
                declared.iter().map(|(p, _)| p.to_string()).collect(),
            )
        };
    for a in &mut c.args {
        let Some(given) = a.name.as_deref() else {
            continue;
        };
        let lower = given.to_ascii_lowercase();
        let all = || {
            declared
                .iter()
                .map(String::as_str)
                .chain(COMMON_PARAMETERS.iter().copied())
        };
        if lower.is_empty() || !all().any(|p| p.to_ascii_lowercase().starts_with(&lower)) {
            return Some(parameter_not_found(&name, &command, given));
        }
        // A prefix binds to the one parameter it begins (as `-na` to `-Name`).
        if !all().any(|p| p.eq_ignore_ascii_case(given)) {
            let mut matching = declared
                .iter()
                .filter(|p| p.to_ascii_lowercase().starts_with(&lower));
            if let (Some(only), None) = (matching.next(), matching.next()) {
                a.name = Some(only.clone());
            }
        }
    }
    None
}

/// The ParameterBindingException record of `cmdlet` given `-param`, as Windows
/// PowerShell 5.1 writes it (`Get-Service -Nme WinRM`).
fn parameter_not_found(cmdlet: &str, command: &str, param: &str) -> ErrorRecord {
    let message = format!("A parameter cannot be found that matches parameter name '{param}'.");
    let mut e = ErrorRecord::new(
        message.clone(),
        format!("NamedParameterNotFound,{command}"),
        ErrorCategory::InvalidArgument,
    );
    e.exception_type = Some("System.Management.Automation.ParameterBindingException".into());
    e.reason = Some("ParameterBindingException".into());
    e.activity = Some(cmdlet.into());
    let category_message = format!("InvalidArgument: (:) [{cmdlet}], ParameterBindingException");
    e.category_message = Some(category_message.clone());
    if let Some(o) = e.raw.as_object() {
        let mut o = o.clone();
        let exception = PsObject::new()
            .with_type_names([
                "System.Management.Automation.ParameterBindingException",
                "System.Management.Automation.RuntimeException",
                "System.SystemException",
                "System.Exception",
                "System.Object",
            ])
            .with_to_string(format!(
                "System.Management.Automation.ParameterBindingException: {message}"
            ))
            .with_adapted("Message", message)
            .with_adapted("ParameterName", param)
            .with_adapted("ErrorId", "NamedParameterNotFound")
            .with_adapted("HResult", -2_146_233_087_i32);
        for (n, v) in o.extended.iter_mut() {
            match n.as_str() {
                "Exception" => *v = exception.clone().into(),
                "ErrorCategory_Reason" => *v = "ParameterBindingException".into(),
                "ErrorCategory_Activity" => *v = cmdlet.into(),
                "ErrorCategory_Message" => *v = category_message.as_str().into(),
                _ => {}
            }
        }
        e.raw = o.into();
    }
    e
}

/// A command ready to run.
struct Resolved {
    name: String,
    args: Vec<Argument>,
    f: CmdletFn,
    merge_error: bool,
}

/// Finds a command: registered cmdlets first, then the built-in ones.
fn resolve(run: &Run, name: &str) -> Option<CmdletFn> {
    run.state
        .winrs
        .registry
        .cmdlet(name)
        .or_else(|| objects::builtin(name, &run.state, &run.user))
}

fn merges_error(c: &Command, version: ProtocolVersion) -> bool {
    if version >= ProtocolVersion::V2_2 {
        c.merge_error == PipelineResultTypes::Output
    } else {
        c.merge_my_result == PipelineResultTypes::Error
            && c.merge_to_result == PipelineResultTypes::Output
    }
}

/// Runs the statements of a CREATE_PIPELINE.
pub(crate) async fn run(
    run: Run,
    ps: PowerShell,
    input: Option<mpsc::UnboundedReceiver<PsValue>>,
) -> Outcome {
    let mut input = input.map_or(Input::Empty, Input::Client);
    for statement in ps.statements {
        // A statement that is one script runs the script's statements.
        if let [only] = statement.as_slice()
            && only.is_script
        {
            // tokio-winrm's file-copy scripts run natively on the host's files.
            if let Some(f) = crate::files::native_script(&only.cmd) {
                let resolved = vec![Resolved {
                    name: "script".into(),
                    args: only.args.clone(),
                    f,
                    merge_error: merges_error(only, run.version),
                }];
                let inp = std::mem::replace(&mut input, Input::Empty);
                if let Err(e) = run_statement(&run, resolved, inp).await {
                    return Outcome::Failed(Box::new(e));
                }
                continue;
            }
            let parsed = match script::parse(&only.cmd) {
                Ok(p) => p,
                Err(m) => return Outcome::Failed(Box::new(parse_error(&m))),
            };
            let merge = merges_error(only, run.version);
            for st in parsed {
                let st = match st {
                    // A terminating error: the script, and the pipeline, end here.
                    Statement::Throw(v) => return Outcome::Failed(Box::new(thrown(v))),
                    Statement::Pipeline(p) => p,
                };
                let mut resolved = Vec::new();
                let mut missing = None;
                for c in st {
                    match resolve(&run, &c.name) {
                        Some(f) => resolved.push(Resolved {
                            name: c.name,
                            args: c.args,
                            f,
                            merge_error: merge,
                        }),
                        None => {
                            missing = Some(c.name);
                            break;
                        }
                    }
                }
                if let Some(name) = missing {
                    write_error(&run, merge, command_not_found(&name)).await;
                    continue;
                }
                let inp = std::mem::replace(&mut input, Input::Empty);
                if let Err(e) = run_statement(&run, resolved, inp).await {
                    write_error(&run, merge, e).await;
                }
            }
            continue;
        }
        let mut resolved = Vec::new();
        for c in statement {
            if c.is_script {
                // A script inside a pipeline of commands: one pipeline, spliced in.
                let parsed = match script::parse(&c.cmd) {
                    Ok(p) => p,
                    Err(m) => return Outcome::Failed(Box::new(parse_error(&m))),
                };
                if parsed.len() > 1 {
                    return Outcome::Failed(Box::new(parse_error(
                        "A script in a pipeline of commands must be one pipeline.",
                    )));
                }
                let commands = match parsed.into_iter().next() {
                    Some(Statement::Throw(v)) => return Outcome::Failed(Box::new(thrown(v))),
                    Some(Statement::Pipeline(p)) => p,
                    None => Vec::new(),
                };
                for sc in commands {
                    let Some(f) = resolve(&run, &sc.name) else {
                        return Outcome::Failed(Box::new(command_not_found(&sc.name)));
                    };
                    resolved.push(Resolved {
                        name: sc.name,
                        args: sc.args,
                        f,
                        merge_error: merges_error(&c, run.version),
                    });
                }
                continue;
            }
            let Some(f) = resolve(&run, &c.cmd) else {
                return Outcome::Failed(Box::new(command_not_found(&c.cmd)));
            };
            let merge_error = merges_error(&c, run.version);
            resolved.push(Resolved {
                name: c.cmd,
                args: c.args,
                f,
                merge_error,
            });
        }
        let inp = std::mem::replace(&mut input, Input::Empty);
        if let Err(e) = run_statement(&run, resolved, inp).await {
            return Outcome::Failed(Box::new(e));
        }
    }
    Outcome::Completed
}

async fn write_error(run: &Run, merge: bool, e: ErrorRecord) {
    let t = if merge {
        MessageType::PipelineOutput
    } else {
        MessageType::ErrorRecord
    };
    run.send(t, &e.to_value()).await;
}

/// Runs one pipeline of commands; the first terminating error ends it.
async fn run_statement(
    run: &Run,
    commands: Vec<Resolved>,
    input: Input,
) -> Result<(), ErrorRecord> {
    if commands.is_empty() {
        return Ok(());
    }
    // Parameters are bound before any command of the pipeline runs.
    let mut commands = commands;
    if let Some(e) = commands.iter_mut().find_map(|c| unknown_parameter(run, c)) {
        return Err(e);
    }
    let shared = Arc::new(RunShared { run: run.clone() });
    let n = commands.len();
    // done[i]: command i ended (so the commands before it stop).
    let done: Vec<CancellationToken> = (0..=n).map(|_| CancellationToken::new()).collect();
    let mut futures: Vec<BoxFuture<'static, Result<(), ErrorRecord>>> = Vec::with_capacity(n);
    let mut input = Some(input);
    let mut upstream: Option<mpsc::Receiver<PsValue>> = None;
    for (i, c) in commands.into_iter().enumerate() {
        let inp = match upstream.take() {
            Some(rx) => Input::Upstream(rx),
            None => input.take().unwrap_or(Input::Empty),
        };
        // The last command writes to the client itself, so its output and its records
        // keep the order it wrote them in.
        let output = if i + 1 == n {
            Output::Client
        } else {
            let (tx, rx) = mpsc::channel(CHANNEL);
            upstream = Some(rx);
            Output::Next(tx)
        };
        let ctx = CmdletContext {
            name: c.name,
            args: c.args,
            input: inp,
            output,
            run: Arc::clone(&shared),
            merge_error: c.merge_error,
        };
        let fut = (c.f)(ctx);
        let me = done[i].clone();
        let downstream = done[i + 1].clone();
        futures.push(Box::pin(async move {
            let r = tokio::select! {
                r = fut => r,
                () = downstream.cancelled() => Ok(()),
            };
            me.cancel();
            r
        }));
    }
    futures_util::future::try_join_all(futures)
        .await
        .map(|_| ())
}

/// Sleeps for `d` (a cmdlet's wait; the pipeline's stop cancels it).
pub(crate) async fn sleep(d: Duration) {
    tokio::time::sleep(d).await;
}

/// A dictionary value's entries, if it is one.
pub(crate) fn dictionary(v: &PsValue) -> Option<&[(PsValue, PsValue)]> {
    match v.as_object()?.collection.as_ref()? {
        Collection::Dictionary(d) => Some(d),
        _ => None,
    }
}

/// The `CmdletInfo` objects GET_COMMAND_METADATA answers for the commands matching
/// `patterns` (wildcards): the built-in cmdlets with their parameters, then the
/// registered ones (their parameters are not declared).
pub(crate) fn command_metadata(state: &State, patterns: &[String]) -> Vec<PsValue> {
    let matches = |name: &str| patterns.iter().any(|p| objects::like(p, name));
    let mut out = Vec::new();
    for (name, namespace, params) in objects::BUILTINS {
        if matches(name) {
            out.push(cmdlet_info(name, namespace, params));
        }
    }
    for name in state.winrs.registry.cmdlet_names() {
        if matches(&name)
            && !objects::BUILTINS
                .iter()
                .any(|(b, _, _)| b.eq_ignore_ascii_case(&name))
        {
            out.push(cmdlet_info(&name, "", &[]));
        }
    }
    out
}

fn cmdlet_info(name: &str, namespace: &str, params: &[(&str, &str)]) -> PsValue {
    let parameters: Vec<(PsValue, PsValue)> = params
        .iter()
        .map(|(p, ty)| {
            // Windows writes a ParameterMetadata's properties adapted (`<Props>`).
            let meta = PsObject::new()
                .with_type_names([
                    "System.Management.Automation.ParameterMetadata",
                    "System.Object",
                ])
                .with_adapted("Name", *p)
                .with_adapted("ParameterType", *ty)
                .with_adapted(
                    "Aliases",
                    PsObject::list(
                        [
                            "System.Collections.ObjectModel.Collection`1[[System.String]]",
                            "System.Object",
                        ],
                        vec![],
                    ),
                )
                .with_adapted("IsDynamic", false)
                .with_adapted(
                    "SwitchParameter",
                    *ty == "System.Management.Automation.SwitchParameter",
                );
            (PsValue::from(*p), meta.into())
        })
        .collect();
    PsObject::new()
        .with_type_names([
            "Selected.System.Management.Automation.CmdletInfo",
            "System.Management.Automation.PSCustomObject",
            "System.Object",
        ])
        .with_property("Name", name)
        .with_property("Namespace", namespace)
        .with_property("HelpUri", "")
        .with_property(
            "CommandType",
            PsObject::enumeration("System.Management.Automation.CommandTypes", "Cmdlet", 8),
        )
        .with_property("ResolvedCommandName", PsValue::Null)
        .with_property(
            "OutputType",
            PsObject::list(
                ["System.Collections.ObjectModel.ReadOnlyCollection`1[[System.Management.Automation.PSTypeName]]", "System.Object"],
                vec![],
            ),
        )
        .with_property(
            "Parameters",
            PsObject::new()
                .with_type_names([
                    "System.Collections.Generic.Dictionary`2[[System.String],[System.Management.Automation.ParameterMetadata]]",
                    "System.Object",
                ])
                .with_collection(Collection::Dictionary(parameters)),
        )
        .into()
}
