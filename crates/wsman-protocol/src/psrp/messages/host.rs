//! Host calls ([MS-PSRP] §2.2.2.15-16, §2.2.2.27-28): the server asks the client's
//! host to do something (write a line, read a line, prompt for a credential...) and,
//! for methods with a return value, waits for the answer.

use super::{int, object, ps_enum, required};
use crate::psrp::clixml::{PsObject, PsValue};
use crate::psrp::error::{Error, Result};

ps_enum! {
    /// The host method a call names (`RemoteHostMethodId`, [MS-PSRP] §2.2.3.17).
    HostMethod, "System.Management.Automation.Remoting.RemoteHostMethodId", {
        /// `GetName`.
        GetName = 1 => "GetName",
        /// `GetVersion`.
        GetVersion = 2 => "GetVersion",
        /// `GetInstanceId`.
        GetInstanceId = 3 => "GetInstanceId",
        /// `GetCurrentCulture`.
        GetCurrentCulture = 4 => "GetCurrentCulture",
        /// `GetCurrentUICulture`.
        GetCurrentUICulture = 5 => "GetCurrentUICulture",
        /// `SetShouldExit`.
        SetShouldExit = 6 => "SetShouldExit",
        /// `EnterNestedPrompt`.
        EnterNestedPrompt = 7 => "EnterNestedPrompt",
        /// `ExitNestedPrompt`.
        ExitNestedPrompt = 8 => "ExitNestedPrompt",
        /// `NotifyBeginApplication`.
        NotifyBeginApplication = 9 => "NotifyBeginApplication",
        /// `NotifyEndApplication`.
        NotifyEndApplication = 10 => "NotifyEndApplication",
        /// `ReadLine`.
        ReadLine = 11 => "ReadLine",
        /// `ReadLineAsSecureString`.
        ReadLineAsSecureString = 12 => "ReadLineAsSecureString",
        /// `Write1`.
        Write1 = 13 => "Write1",
        /// `Write2`.
        Write2 = 14 => "Write2",
        /// `WriteLine1`.
        WriteLine1 = 15 => "WriteLine1",
        /// `WriteLine2`.
        WriteLine2 = 16 => "WriteLine2",
        /// `WriteLine3`.
        WriteLine3 = 17 => "WriteLine3",
        /// `WriteErrorLine`.
        WriteErrorLine = 18 => "WriteErrorLine",
        /// `WriteDebugLine`.
        WriteDebugLine = 19 => "WriteDebugLine",
        /// `WriteProgress`.
        WriteProgress = 20 => "WriteProgress",
        /// `WriteVerboseLine`.
        WriteVerboseLine = 21 => "WriteVerboseLine",
        /// `WriteWarningLine`.
        WriteWarningLine = 22 => "WriteWarningLine",
        /// `Prompt`.
        Prompt = 23 => "Prompt",
        /// `PromptForCredential1`.
        PromptForCredential1 = 24 => "PromptForCredential1",
        /// `PromptForCredential2`.
        PromptForCredential2 = 25 => "PromptForCredential2",
        /// `PromptForChoice`.
        PromptForChoice = 26 => "PromptForChoice",
        /// `GetForegroundColor`.
        GetForegroundColor = 27 => "GetForegroundColor",
        /// `SetForegroundColor`.
        SetForegroundColor = 28 => "SetForegroundColor",
        /// `GetBackgroundColor`.
        GetBackgroundColor = 29 => "GetBackgroundColor",
        /// `SetBackgroundColor`.
        SetBackgroundColor = 30 => "SetBackgroundColor",
        /// `GetCursorPosition`.
        GetCursorPosition = 31 => "GetCursorPosition",
        /// `SetCursorPosition`.
        SetCursorPosition = 32 => "SetCursorPosition",
        /// `GetWindowPosition`.
        GetWindowPosition = 33 => "GetWindowPosition",
        /// `SetWindowPosition`.
        SetWindowPosition = 34 => "SetWindowPosition",
        /// `GetCursorSize`.
        GetCursorSize = 35 => "GetCursorSize",
        /// `SetCursorSize`.
        SetCursorSize = 36 => "SetCursorSize",
        /// `GetBufferSize`.
        GetBufferSize = 37 => "GetBufferSize",
        /// `SetBufferSize`.
        SetBufferSize = 38 => "SetBufferSize",
        /// `GetWindowSize`.
        GetWindowSize = 39 => "GetWindowSize",
        /// `SetWindowSize`.
        SetWindowSize = 40 => "SetWindowSize",
        /// `GetWindowTitle`.
        GetWindowTitle = 41 => "GetWindowTitle",
        /// `SetWindowTitle`.
        SetWindowTitle = 42 => "SetWindowTitle",
        /// `GetMaxWindowSize`.
        GetMaxWindowSize = 43 => "GetMaxWindowSize",
        /// `GetMaxPhysicalWindowSize`.
        GetMaxPhysicalWindowSize = 44 => "GetMaxPhysicalWindowSize",
        /// `GetKeyAvailable`.
        GetKeyAvailable = 45 => "GetKeyAvailable",
        /// `ReadKey`.
        ReadKey = 46 => "ReadKey",
        /// `FlushInputBuffer`.
        FlushInputBuffer = 47 => "FlushInputBuffer",
        /// `SetBufferContents1`.
        SetBufferContents1 = 48 => "SetBufferContents1",
        /// `SetBufferContents2`.
        SetBufferContents2 = 49 => "SetBufferContents2",
        /// `GetBufferContents`.
        GetBufferContents = 50 => "GetBufferContents",
        /// `ScrollBufferContents`.
        ScrollBufferContents = 51 => "ScrollBufferContents",
        /// `PushRunspace`.
        PushRunspace = 52 => "PushRunspace",
        /// `PopRunspace`.
        PopRunspace = 53 => "PopRunspace",
        /// `GetIsRunspacePushed`.
        GetIsRunspacePushed = 54 => "GetIsRunspacePushed",
        /// `GetRunspace`.
        GetRunspace = 55 => "GetRunspace",
        /// `PromptForChoiceMultipleSelection`.
        PromptForChoiceMultipleSelection = 56 => "PromptForChoiceMultipleSelection",
    }
}

impl HostMethod {
    /// `true` for methods without a return value: the client sends no response
    /// ([MS-PSRP] §2.2.3.17, "Return Value: None").
    pub fn is_void(self) -> bool {
        use HostMethod::*;
        matches!(
            self,
            SetShouldExit
                | EnterNestedPrompt
                | ExitNestedPrompt
                | NotifyBeginApplication
                | NotifyEndApplication
                | Write1
                | Write2
                | WriteLine1
                | WriteLine2
                | WriteLine3
                | WriteErrorLine
                | WriteDebugLine
                | WriteProgress
                | WriteVerboseLine
                | WriteWarningLine
                | SetForegroundColor
                | SetBackgroundColor
                | SetCursorPosition
                | SetWindowPosition
                | SetCursorSize
                | SetBufferSize
                | SetWindowSize
                | SetWindowTitle
                | FlushInputBuffer
                | SetBufferContents1
                | SetBufferContents2
                | ScrollBufferContents
                | PushRunspace
                | PopRunspace
        )
    }

    /// `true` for methods that need a person at the keyboard (read a line or a key,
    /// prompt, ask for a credential or a choice): a non-interactive client answers them
    /// with an error.
    pub fn is_interactive(self) -> bool {
        use HostMethod::*;
        matches!(
            self,
            ReadLine
                | ReadLineAsSecureString
                | Prompt
                | PromptForCredential1
                | PromptForCredential2
                | PromptForChoice
                | PromptForChoiceMultipleSelection
                | ReadKey
        )
    }
}

/// RUNSPACEPOOL_HOST_CALL or PIPELINE_HOST_CALL ([MS-PSRP] §2.2.2.15, §2.2.2.27).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HostCall {
    /// `ci`: the call id the response must carry.
    pub call_id: i64,
    /// `mi`: the method.
    pub method: HostMethod,
    /// `mp`: the parameters, in order.
    pub parameters: Vec<PsValue>,
}

impl HostCall {
    /// A call (the server side).
    pub fn new(call_id: i64, method: HostMethod, parameters: Vec<PsValue>) -> Self {
        HostCall {
            call_id,
            method,
            parameters,
        }
    }

    /// The message body.
    pub fn to_value(&self) -> PsValue {
        PsObject::new()
            .with_property("ci", self.call_id)
            .with_property("mi", self.method.to_ps_value())
            .with_property(
                "mp",
                PsObject::list(
                    ["System.Collections.ArrayList", "System.Object"],
                    self.parameters.clone(),
                ),
            )
            .into()
    }

    /// Parses the message body.
    ///
    /// # Errors
    ///
    /// [`Error::MissingProperty`] or [`Error::WrongType`].
    pub fn from_value(v: &PsValue) -> Result<Self> {
        const M: &str = "HOST_CALL";
        let o = object(v, M)?;
        let parameters = match required(o, M, "mp")? {
            PsValue::Null => Vec::new(),
            list => list
                .as_list()
                .ok_or(Error::WrongType {
                    message: M,
                    property: "mp",
                    expected: "a list",
                })?
                .to_vec(),
        };
        Ok(HostCall {
            call_id: int(o, M, "ci")?,
            method: HostMethod::from_value(int(o, M, "mi")?),
            parameters,
        })
    }
}

/// RUNSPACEPOOL_HOST_RESPONSE or PIPELINE_HOST_RESPONSE ([MS-PSRP] §2.2.2.16,
/// §2.2.2.28): the return value (`mr`) or the error (`me`) of a host call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HostResponse {
    /// `ci`: the call this answers.
    pub call_id: i64,
    /// `mi`: the method called.
    pub method: HostMethod,
    /// `mr`: the return value.
    pub result: Option<PsValue>,
    /// `me`: an error record saying why the host could not do it.
    pub error: Option<PsValue>,
}

impl HostResponse {
    /// A successful answer with a return value.
    pub fn returning(call: &HostCall, result: PsValue) -> Self {
        HostResponse {
            call_id: call.call_id,
            method: call.method,
            result: Some(result),
            error: None,
        }
    }

    /// A failed answer carrying an error record (e.g. "this host is not interactive").
    pub fn failing(call: &HostCall, error: &super::ErrorRecord) -> Self {
        HostResponse {
            call_id: call.call_id,
            method: call.method,
            result: None,
            error: Some(error.to_value()),
        }
    }

    /// The message body.
    pub fn to_value(&self) -> PsValue {
        let mut o = PsObject::new()
            .with_property("ci", self.call_id)
            .with_property("mi", self.method.to_ps_value());
        if let Some(r) = &self.result {
            o = o.with_property("mr", r.clone());
        }
        if let Some(e) = &self.error {
            o = o.with_property("me", e.clone());
        }
        o.into()
    }

    /// Parses the message body (the server side).
    ///
    /// # Errors
    ///
    /// [`Error::MissingProperty`] or [`Error::WrongType`].
    pub fn from_value(v: &PsValue) -> Result<Self> {
        const M: &str = "HOST_RESPONSE";
        let o = object(v, M)?;
        Ok(HostResponse {
            call_id: int(o, M, "ci")?,
            method: HostMethod::from_value(int(o, M, "mi")?),
            result: o.property("mr").cloned(),
            error: o.property("me").cloned(),
        })
    }
}
