//! Pipeline messages: CREATE_PIPELINE (§2.2.2.10) with the PowerShell object (§2.2.3.11)
//! and its commands (§2.2.3.12), PIPELINE_INPUT / END_OF_PIPELINE_INPUT (§2.2.2.17-18)
//! and PIPELINE_STATE (§2.2.2.21).

use super::{
    ApartmentState, ErrorRecord, HostInfo, ProtocolVersion, boolean, int, non_null, object,
    ps_enum, required, text,
};
use crate::psrp::clixml::{DirectWriter, PsObject, PsValue};
use crate::psrp::error::{Error, Result};
use crate::psrp::message::{Destination, Message, MessageType};

/// The type names of the command and argument lists PowerShell sends.
const PSOBJECT_LIST_NAMES: [&str; 2] = [
    "System.Collections.Generic.List`1[[System.Management.Automation.PSObject, System.Management.Automation, Version=1.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35]]",
    "System.Object",
];

/// [`PSOBJECT_LIST_NAMES`], made once and shared.
fn psobject_list_names() -> &'static std::sync::Arc<[String]> {
    static NAMES: std::sync::OnceLock<std::sync::Arc<[String]>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| PSOBJECT_LIST_NAMES.into_iter().map(String::from).collect())
}

/// A list typed [`PSOBJECT_LIST_NAMES`].
fn psobject_list(items: Vec<PsValue>) -> PsObject {
    PsObject::new()
        .with_shared_type_names(std::sync::Arc::clone(psobject_list_names()))
        .with_collection(crate::psrp::clixml::Collection::List(items))
}

/// A `List<PSObject>` object of `items`, each written by `item`, as [`psobject_list`]
/// makes it.
fn write_psobject_list<T>(
    w: &mut DirectWriter,
    name: Option<&str>,
    items: &[T],
    mut item: impl FnMut(&mut DirectWriter, &T),
) {
    w.start_object(name, Some(psobject_list_names()));
    if items.is_empty() {
        w.markup("<LST />");
    } else {
        w.markup("<LST>");
        for i in items {
            item(w, i);
        }
        w.markup("</LST>");
    }
    w.end_object();
}

ps_enum! {
    /// `PipelineResultTypes` ([MS-PSRP] §2.2.3.31): which stream a command's merge option
    /// names.
    PipelineResultTypes, "System.Management.Automation.Runspaces.PipelineResultTypes", {
        /// None: no merge.
        None = 0 => "None",
        /// Output.
        Output = 1 => "Output",
        /// Error.
        Error = 2 => "Error",
        /// Warning.
        Warning = 3 => "Warning",
        /// Verbose.
        Verbose = 4 => "Verbose",
        /// Debug.
        Debug = 5 => "Debug",
        /// Information.
        Information = 6 => "Information",
        /// All.
        All = 7 => "All",
        /// Null.
        Null = 8 => "Null",
    }
}

ps_enum! {
    /// `PSInvocationState` ([MS-PSRP] §2.2.3.5): a pipeline's state.
    PipelineState, "System.Management.Automation.PSInvocationState", {
        /// NotStarted.
        NotStarted = 0 => "NotStarted",
        /// Running.
        Running = 1 => "Running",
        /// Stopping.
        Stopping = 2 => "Stopping",
        /// Stopped: the pipeline was stopped.
        Stopped = 3 => "Stopped",
        /// Completed.
        Completed = 4 => "Completed",
        /// Failed: an error record says why.
        Failed = 5 => "Failed",
        /// Disconnected.
        Disconnected = 6 => "Disconnected",
    }
}

impl PipelineResultTypes {
    /// `Output | Error` (3): what `MergePreviousResults` takes to merge the unclaimed
    /// output and errors of the commands before one into its input
    /// (`MergeUnclaimedPreviousCommandResults`). .NET's `PipelineResultTypes` is a
    /// flags enum whose 3 is also the name `Warning`; the server reads the number.
    pub const OUTPUT_AND_ERROR: PipelineResultTypes = PipelineResultTypes::Warning;
}

impl PipelineState {
    /// `true` for the states a pipeline ends in: Stopped, Completed, Failed.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            PipelineState::Stopped | PipelineState::Completed | PipelineState::Failed
        )
    }
}

/// `RemoteStreamOptions` ([MS-PSRP] §2.2.3.8): flags asking the server to add
/// invocation info to records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RemoteStreamOptions(pub i32);

impl RemoteStreamOptions {
    /// No invocation info.
    pub const NONE: Self = RemoteStreamOptions(0);
    /// `AddInvocationInfo`: to error, warning, debug and verbose records (15; what
    /// PowerShell and pypsrp send).
    pub const ADD_INVOCATION_INFO: Self = RemoteStreamOptions(15);

    fn name(self) -> String {
        const FLAGS: [(i32, &str); 4] = [
            (1, "AddInvocationInfoToErrorRecord"),
            (2, "AddInvocationInfoToWarningRecord"),
            (4, "AddInvocationInfoToDebugRecord"),
            (8, "AddInvocationInfoToVerboseRecord"),
        ];
        match self.0 {
            0 => "None".into(),
            15 => "AddInvocationInfo".into(),
            n => FLAGS
                .iter()
                .filter(|(bit, _)| n & bit != 0)
                .map(|(_, name)| *name)
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    fn type_names() -> &'static std::sync::Arc<[String]> {
        static TYPE_NAMES: std::sync::OnceLock<std::sync::Arc<[String]>> =
            std::sync::OnceLock::new();
        TYPE_NAMES.get_or_init(|| {
            PsObject::enum_type_names("System.Management.Automation.Runspaces.RemoteStreamOptions")
        })
    }

    fn to_ps_value(self) -> PsValue {
        PsObject::shared_enumeration(
            std::sync::Arc::clone(Self::type_names()),
            self.name(),
            self.0,
        )
        .into()
    }
}

/// One argument of a command ([MS-PSRP] §2.2.3.12, `Args`): named (`-Name value`),
/// positional (no name) or a switch (a name with a `Nil` value, as PowerShell's
/// `AddParameter(name)` sends).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Argument {
    /// `N`: the parameter name, `None` for a positional argument.
    pub name: Option<String>,
    /// `V`: the value.
    pub value: PsValue,
}

impl Argument {
    /// `-name value`.
    pub fn named(name: impl Into<String>, value: impl Into<PsValue>) -> Self {
        Argument {
            name: Some(name.into()),
            value: value.into(),
        }
    }

    /// A positional argument.
    pub fn positional(value: impl Into<PsValue>) -> Self {
        Argument {
            name: None,
            value: value.into(),
        }
    }

    /// A switch parameter, `-name`.
    pub fn switch(name: impl Into<String>) -> Self {
        Argument {
            name: Some(name.into()),
            value: PsValue::Null,
        }
    }

    fn to_value(&self) -> PsValue {
        PsObject::new()
            .with_property("N", self.name.clone())
            .with_property("V", self.value.clone())
            .into()
    }

    fn write_to(&self, w: &mut DirectWriter) {
        w.start_object(None, None);
        w.markup("<MS>");
        w.string("N", self.name.as_deref());
        w.value(Some("V"), &self.value);
        w.markup("</MS>");
        w.end_object();
    }

    fn from_value(v: &PsValue) -> Result<Self> {
        const M: &str = "command argument";
        let o = object(v, M)?;
        Ok(Argument {
            name: text(o, "N"),
            value: required(o, M, "V")?.clone(),
        })
    }
}

/// One command of a pipeline ([MS-PSRP] §2.2.3.12): a cmdlet or a script, its
/// arguments and its stream merges.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Command {
    /// `Cmd`: the command name, or the script text when `is_script`.
    pub cmd: String,
    /// `IsScript`.
    pub is_script: bool,
    /// `UseLocalScope` (`None`: the default).
    pub use_local_scope: Option<bool>,
    /// `Args`.
    pub args: Vec<Argument>,
    /// `MergeMyResult`: the stream this command merges from (protocol 2.1 style).
    pub merge_my_result: PipelineResultTypes,
    /// `MergeToResult`: the stream it merges into.
    pub merge_to_result: PipelineResultTypes,
    /// `MergePreviousResults`.
    pub merge_previous_results: PipelineResultTypes,
    /// `MergeError` (protocol 2.2 and later).
    pub merge_error: PipelineResultTypes,
    /// `MergeWarning` (2.2+).
    pub merge_warning: PipelineResultTypes,
    /// `MergeVerbose` (2.2+).
    pub merge_verbose: PipelineResultTypes,
    /// `MergeDebug` (2.2+).
    pub merge_debug: PipelineResultTypes,
    /// `MergeInformation` (2.3+).
    pub merge_information: PipelineResultTypes,
}

impl Command {
    /// A cmdlet, function or application by name.
    pub fn new(name: impl Into<String>) -> Self {
        Command {
            cmd: name.into(),
            is_script: false,
            use_local_scope: None,
            args: Vec::new(),
            merge_my_result: PipelineResultTypes::None,
            merge_to_result: PipelineResultTypes::None,
            merge_previous_results: PipelineResultTypes::None,
            merge_error: PipelineResultTypes::None,
            merge_warning: PipelineResultTypes::None,
            merge_verbose: PipelineResultTypes::None,
            merge_debug: PipelineResultTypes::None,
            merge_information: PipelineResultTypes::None,
        }
    }

    /// A script.
    pub fn script(text: impl Into<String>) -> Self {
        Command {
            is_script: true,
            ..Command::new(text)
        }
    }

    /// Appends an argument.
    #[must_use]
    pub fn arg(mut self, arg: Argument) -> Self {
        self.args.push(arg);
        self
    }

    /// Merges the error stream into the output (`2>&1`), for protocol 2.1 and later.
    #[must_use]
    pub fn merge_error_to_output(mut self) -> Self {
        self.merge_my_result = PipelineResultTypes::Error;
        self.merge_to_result = PipelineResultTypes::Output;
        self.merge_error = PipelineResultTypes::Output;
        self
    }

    /// The `Command` object as protocol `version` defines it.
    pub fn to_value(&self, version: ProtocolVersion) -> PsValue {
        let args: Vec<PsValue> = self.args.iter().map(Argument::to_value).collect();
        let mut o = PsObject::new()
            .with_property("Cmd", self.cmd.clone())
            .with_property("IsScript", self.is_script)
            .with_property("UseLocalScope", self.use_local_scope)
            .with_property("MergeMyResult", self.merge_my_result.to_ps_value())
            .with_property("MergeToResult", self.merge_to_result.to_ps_value())
            .with_property(
                "MergePreviousResults",
                self.merge_previous_results.to_ps_value(),
            )
            .with_property("Args", psobject_list(args));
        if version >= ProtocolVersion::V2_2 {
            o = o
                .with_property("MergeError", self.merge_error.to_ps_value())
                .with_property("MergeWarning", self.merge_warning.to_ps_value())
                .with_property("MergeVerbose", self.merge_verbose.to_ps_value())
                .with_property("MergeDebug", self.merge_debug.to_ps_value());
        }
        if version >= ProtocolVersion::V2_3 {
            o = o.with_property("MergeInformation", self.merge_information.to_ps_value());
        }
        o.into()
    }

    /// [`Command::to_value`] written directly.
    fn write_to(&self, w: &mut DirectWriter, version: ProtocolVersion) {
        w.start_object(None, None);
        w.markup("<MS>");
        w.string("Cmd", Some(&self.cmd));
        w.boolean("IsScript", self.is_script);
        w.opt_boolean("UseLocalScope", self.use_local_scope);
        self.merge_my_result.write_to(w, "MergeMyResult");
        self.merge_to_result.write_to(w, "MergeToResult");
        self.merge_previous_results
            .write_to(w, "MergePreviousResults");
        write_psobject_list(w, Some("Args"), &self.args, |w, a| a.write_to(w));
        if version >= ProtocolVersion::V2_2 {
            self.merge_error.write_to(w, "MergeError");
            self.merge_warning.write_to(w, "MergeWarning");
            self.merge_verbose.write_to(w, "MergeVerbose");
            self.merge_debug.write_to(w, "MergeDebug");
        }
        if version >= ProtocolVersion::V2_3 {
            self.merge_information.write_to(w, "MergeInformation");
        }
        w.markup("</MS>");
        w.end_object();
    }

    /// Parses a `Command` object; merge options a version lacks read as `None`.
    ///
    /// # Errors
    ///
    /// [`Error::MissingProperty`] or [`Error::WrongType`].
    pub fn from_value(v: &PsValue) -> Result<Self> {
        const M: &str = "Command";
        let o = object(v, M)?;
        let merge = |p: &str| {
            o.property(p)
                .and_then(PsValue::as_i64)
                .map_or(PipelineResultTypes::None, PipelineResultTypes::from_value)
        };
        let args = match o.property("Args") {
            Some(a) if !a.is_null() => a
                .as_list()
                .ok_or(Error::WrongType {
                    message: M,
                    property: "Args",
                    expected: "a list",
                })?
                .iter()
                .map(Argument::from_value)
                .collect::<Result<_>>()?,
            _ => Vec::new(),
        };
        Ok(Command {
            cmd: text(o, "Cmd").ok_or(Error::MissingProperty {
                message: M,
                property: "Cmd",
            })?,
            is_script: boolean(o, M, "IsScript")?,
            use_local_scope: o.property("UseLocalScope").and_then(PsValue::as_bool),
            args,
            merge_my_result: merge("MergeMyResult"),
            merge_to_result: merge("MergeToResult"),
            merge_previous_results: merge("MergePreviousResults"),
            merge_error: merge("MergeError"),
            merge_warning: merge("MergeWarning"),
            merge_verbose: merge("MergeVerbose"),
            merge_debug: merge("MergeDebug"),
            merge_information: merge("MergeInformation"),
        })
    }
}

/// The `PowerShell` object ([MS-PSRP] §2.2.3.11): one or more statements, each a
/// pipeline of commands.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct PowerShell {
    /// The statements (`ExtraCmds` when more than one, else `Cmds`); the commands of
    /// one statement are piped into each other.
    pub statements: Vec<Vec<Command>>,
    /// `IsNested`.
    pub is_nested: bool,
    /// `History`: text to add to the history, if any.
    pub history: Option<String>,
    /// `RedirectShellErrorOutputPipe`.
    pub redirect_shell_error_output_pipe: bool,
}

impl PowerShell {
    /// One statement made of `commands`.
    pub fn new(commands: Vec<Command>) -> Self {
        PowerShell {
            statements: vec![commands],
            ..Self::default()
        }
    }

    fn statement(commands: &[Command], version: ProtocolVersion) -> PsValue {
        psobject_list(commands.iter().map(|c| c.to_value(version)).collect()).into()
    }

    /// The `PowerShell` object as protocol `version` defines it.
    pub fn to_value(&self, version: ProtocolVersion) -> PsValue {
        let extra = if self.statements.len() > 1 {
            psobject_list(
                self.statements
                    .iter()
                    .map(|s| {
                        PsObject::new()
                            .with_property("Cmds", Self::statement(s, version))
                            .into()
                    })
                    .collect(),
            )
            .into()
        } else {
            PsValue::Null
        };
        let first = self.statements.first().map_or(&[][..], Vec::as_slice);
        PsObject::new()
            .with_property("IsNested", self.is_nested)
            .with_property("ExtraCmds", extra)
            .with_property("Cmds", Self::statement(first, version))
            .with_property("History", self.history.clone())
            .with_property(
                "RedirectShellErrorOutputPipe",
                self.redirect_shell_error_output_pipe,
            )
            .into()
    }

    /// [`PowerShell::to_value`] written directly.
    fn write_to(&self, w: &mut DirectWriter, version: ProtocolVersion) {
        let statement = |w: &mut DirectWriter, commands: &[Command]| {
            write_psobject_list(w, Some("Cmds"), commands, |w, c| c.write_to(w, version));
        };
        w.start_object(Some("PowerShell"), None);
        w.markup("<MS>");
        w.boolean("IsNested", self.is_nested);
        if self.statements.len() > 1 {
            write_psobject_list(w, Some("ExtraCmds"), &self.statements, |w, s| {
                w.start_object(None, None);
                w.markup("<MS>");
                statement(w, s);
                w.markup("</MS>");
                w.end_object();
            });
        } else {
            w.value(Some("ExtraCmds"), &PsValue::Null);
        }
        statement(w, self.statements.first().map_or(&[][..], Vec::as_slice));
        w.string("History", self.history.as_deref());
        w.boolean(
            "RedirectShellErrorOutputPipe",
            self.redirect_shell_error_output_pipe,
        );
        w.markup("</MS>");
        w.end_object();
    }

    /// Parses a `PowerShell` object.
    ///
    /// # Errors
    ///
    /// [`Error::MissingProperty`] or [`Error::WrongType`].
    pub fn from_value(v: &PsValue) -> Result<Self> {
        const M: &str = "PowerShell";
        let o = object(v, M)?;
        let commands = |list: &PsValue| -> Result<Vec<Command>> {
            list.as_list()
                .ok_or(Error::WrongType {
                    message: M,
                    property: "Cmds",
                    expected: "a list",
                })?
                .iter()
                .map(Command::from_value)
                .collect()
        };
        let statements = match non_null(o, "ExtraCmds") {
            Some(extra) => extra
                .as_list()
                .ok_or(Error::WrongType {
                    message: M,
                    property: "ExtraCmds",
                    expected: "a list",
                })?
                .iter()
                .map(|s| commands(required(object(s, M)?, M, "Cmds")?))
                .collect::<Result<_>>()?,
            None => vec![commands(required(o, M, "Cmds")?)?],
        };
        Ok(PowerShell {
            statements,
            is_nested: o
                .property("IsNested")
                .and_then(PsValue::as_bool)
                .unwrap_or(false),
            history: text(o, "History"),
            redirect_shell_error_output_pipe: o
                .property("RedirectShellErrorOutputPipe")
                .and_then(PsValue::as_bool)
                .unwrap_or(false),
        })
    }
}

/// CREATE_PIPELINE ([MS-PSRP] §2.2.2.10).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CreatePipeline {
    /// `NoInput`: `false` when the client will send PIPELINE_INPUT.
    pub no_input: bool,
    /// `ApartmentState`.
    pub apartment_state: ApartmentState,
    /// `RemoteStreamOptions`.
    pub remote_stream_options: RemoteStreamOptions,
    /// `AddToHistory`.
    pub add_to_history: bool,
    /// `HostInfo`.
    pub host_info: HostInfo,
    /// `PowerShell`: what to run.
    pub powershell: PowerShell,
    /// `IsNested`.
    pub is_nested: bool,
}

impl CreatePipeline {
    /// A pipeline running `powershell` without input, as pypsrp and PowerShell build
    /// it by default (no host, invocation info added to records).
    pub fn new(powershell: PowerShell) -> Self {
        CreatePipeline {
            no_input: true,
            apartment_state: ApartmentState::UnknownState,
            remote_stream_options: RemoteStreamOptions::ADD_INVOCATION_INFO,
            add_to_history: false,
            host_info: HostInfo::none(),
            powershell,
            is_nested: false,
        }
    }

    /// The message body as protocol `version` (the server's, from its
    /// SESSION_CAPABILITY) defines it.
    pub fn to_value(&self, version: ProtocolVersion) -> PsValue {
        PsObject::new()
            .with_property("NoInput", self.no_input)
            .with_property("ApartmentState", self.apartment_state.to_ps_value())
            .with_property(
                "RemoteStreamOptions",
                self.remote_stream_options.to_ps_value(),
            )
            .with_property("AddToHistory", self.add_to_history)
            .with_property("HostInfo", self.host_info.to_value())
            .with_property("PowerShell", self.powershell.to_value(version))
            .with_property("IsNested", self.is_nested)
            .into()
    }

    /// The CLIXML of [`CreatePipeline::to_value`] (what
    /// [`to_string`](crate::psrp::clixml::to_string) makes of it), written without
    /// building the object tree first: a client sends one per pipeline.
    pub fn to_clixml(&self, version: ProtocolVersion) -> String {
        let mut w = DirectWriter::new();
        w.start_object(None, None);
        w.markup("<MS>");
        w.boolean("NoInput", self.no_input);
        self.apartment_state.write_to(&mut w, "ApartmentState");
        w.enumeration(
            "RemoteStreamOptions",
            RemoteStreamOptions::type_names(),
            &self.remote_stream_options.name(),
            self.remote_stream_options.0,
        );
        w.boolean("AddToHistory", self.add_to_history);
        self.host_info.write_to(&mut w, "HostInfo");
        self.powershell.write_to(&mut w, version);
        w.boolean("IsNested", self.is_nested);
        w.markup("</MS>");
        w.end_object();
        w.finish()
    }

    /// Parses the message body (the server side).
    ///
    /// # Errors
    ///
    /// [`Error::MissingProperty`] or [`Error::WrongType`].
    pub fn from_value(v: &PsValue) -> Result<Self> {
        const M: &str = "CREATE_PIPELINE";
        let o = object(v, M)?;
        Ok(CreatePipeline {
            no_input: boolean(o, M, "NoInput")?,
            apartment_state: o
                .property("ApartmentState")
                .and_then(PsValue::as_i64)
                .map_or(ApartmentState::UnknownState, ApartmentState::from_value),
            remote_stream_options: RemoteStreamOptions(
                o.property("RemoteStreamOptions")
                    .and_then(PsValue::as_i64)
                    .and_then(|n| i32::try_from(n).ok())
                    .unwrap_or(0),
            ),
            add_to_history: o
                .property("AddToHistory")
                .and_then(PsValue::as_bool)
                .unwrap_or(false),
            host_info: match o.property("HostInfo") {
                Some(h) if !h.is_null() => HostInfo::from_value(h)?,
                _ => HostInfo::none(),
            },
            powershell: PowerShell::from_value(required(o, M, "PowerShell")?)?,
            is_nested: o
                .property("IsNested")
                .and_then(PsValue::as_bool)
                .unwrap_or(false),
        })
    }
}

/// A PIPELINE_INPUT message ([MS-PSRP] §2.2.2.17) carrying one input object.
pub fn pipeline_input(
    runspace_pool_id: uuid::Uuid,
    pipeline_id: uuid::Uuid,
    value: &PsValue,
) -> Message {
    Message::from_value(
        Destination::Server,
        MessageType::PipelineInput,
        runspace_pool_id,
        Some(pipeline_id),
        value,
    )
}

/// The END_OF_PIPELINE_INPUT message ([MS-PSRP] §2.2.2.18): no data.
pub fn end_of_pipeline_input(runspace_pool_id: uuid::Uuid, pipeline_id: uuid::Uuid) -> Message {
    Message::new(
        Destination::Server,
        MessageType::EndOfPipelineInput,
        runspace_pool_id,
        Some(pipeline_id),
        bytes::Bytes::new(),
    )
}

/// PIPELINE_STATE ([MS-PSRP] §2.2.2.21): the pipeline's state and, when it failed, why.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PipelineStateInfo {
    /// `PipelineState`.
    pub state: PipelineState,
    /// `ExceptionAsErrorRecord`, present when the pipeline failed (or was stopped).
    pub error: Option<ErrorRecord>,
}

impl PipelineStateInfo {
    /// A state without an error.
    pub fn new(state: PipelineState) -> Self {
        PipelineStateInfo { state, error: None }
    }

    /// The message body.
    pub fn to_value(&self) -> PsValue {
        let mut o = PsObject::new().with_property("PipelineState", self.state.value());
        if let Some(e) = &self.error {
            o = o.with_property("ExceptionAsErrorRecord", e.to_value());
        }
        o.into()
    }

    /// Parses the message body.
    ///
    /// # Errors
    ///
    /// [`Error::MissingProperty`] or [`Error::WrongType`].
    pub fn from_value(v: &PsValue) -> Result<Self> {
        const M: &str = "PIPELINE_STATE";
        let o = object(v, M)?;
        Ok(PipelineStateInfo {
            state: PipelineState::from_value(int(o, M, "PipelineState")?),
            error: non_null(o, "ExceptionAsErrorRecord")
                .map(|e| ErrorRecord::from_value(&e))
                .transpose()?,
        })
    }
}
