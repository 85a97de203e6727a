//! WinRS ([MS-WSMV] §3.1.4.11-14) as a Windows host answers it: shells per user under
//! the MaxShellsPerUser quota, commands run as tokio tasks (built-in programs or
//! closures users registered), Send, long-polled Receive, Signal and Delete, with exact
//! counters.
//!
//! Choices where Windows' behaviour is not on record:
//! * Signal `terminate` kills a running command (exit code 1) and removes it; a
//!   Receive pending on it returns at once with the output buffered so far and
//!   `CommandState Done`.
//! * Signal `ctrl_c`/`ctrl_break` on a running command stops it with
//!   `STATUS_CONTROL_C_EXIT` (3221225786); the command stays until the next Signal
//!   or the shell's Delete. Any Signal on a command that ended removes it (pypsrp ends
//!   commands with `ctrl_c`, pywinrm with `terminate`).
//! * A command counts in `running_commands` from Command until it is removed.
//!
//! Disconnect, Reconnect and Connect (§3.1.4.15-17), as the pypsrp recordings of a
//! Windows host show them:
//! * Disconnect moves the shell to "disconnecting": Receives pending on its commands
//!   return at once with the output they have (`CommandState Running`), new requests
//!   other than Disconnect, Reconnect, Connect and Delete get `w:InternalError`
//!   (§3.1.4.1.31.7; the WSManFault code, 5023 ERROR_INVALID_STATE, is the
//!   simulator's choice: Windows' is not on record). Once no Receive is pending the
//!   shell is "disconnected" and the DisconnectResponse goes out.
//! * The commands of a disconnected shell go on running. Their output stays in their
//!   pipes, which are bounded (1 MiB of output per command): a command that fills its
//!   pipe waits in its next write until a client reads again, as Windows'
//!   `OutputBufferingMode` Block (its default) suspends the plug-in's results. A
//!   Disconnect asking for `BufferMode` Drop is refused (InvalidParameter): not
//!   simulated.
//! * `rsp:IdleTimeOut` in the Disconnect replaces the shell's IdleTimeOut while it is
//!   disconnected; when it passes without a Reconnect or Connect, the shell is deleted
//!   and its commands killed.
//! * Reconnect (empty body) and Connect (`<rsp:Connect/>`) make the shell connected
//!   again; a Connect to a connected shell is an InternalError (§3.1.4.17), a Reconnect
//!   to one is ignored (the simulator does not tell clients apart). `<rsp:Connect
//!   CommandId=".."/>` on a connected shell checks that the command exists (invalid
//!   selectors otherwise) and answers an empty ConnectResponse.

// `SimFault` is the error type every handler of the simulator returns; its size is
// that of one fault, built once per failed request.
#![allow(clippy::result_large_err)]

mod cmdline;
mod commands;
mod powershell;
mod process;
mod programs;
pub(crate) mod psrp;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::future::BoxFuture;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::body::{BodyBuilder, SimBody};
use super::response::{ENVELOPE_TAIL, SimFault, envelope, envelope_head};
use super::{SimRequest, Simulator, State};
use crate::soap::cim::parse_duration;
use crate::soap::envelope::XmlWriter;
use crate::soap::ns::{self, action};
use commands::{Program, Sh};
use process::{Desired, Io, PendingGuard, Proc, StdinReader, lock};

pub use process::{CommandContext, CommandFn};
pub(crate) use psrp::engine::text_of;
pub use psrp::engine::{CmdletContext, CmdletFn, SecureStringError};
pub use psrp::objects::synthetic_process;

/// The environment of a PowerShell session of `user` (with its profile loaded, as
/// PSRP sessions have it): what `%TEMP%` and `$env:TEMP` expand to.
pub(crate) fn session_env(user: &str) -> Vec<(String, String)> {
    default_env(user, true)
}

/// Exit code of a command stopped by Signal terminate.
pub(crate) const EXIT_TERMINATED: u32 = 1;
/// Exit code of a command stopped by ctrl_c or ctrl_break (`STATUS_CONTROL_C_EXIT`).
pub(crate) const EXIT_CTRL_C: u32 = 0xC000_013A;

const DEFAULT_IDLE: Duration = Duration::from_secs(7200);
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait accepted for timers, so `Instant + d` never overflows.
const MAX_WAIT: Duration = Duration::from_secs(86_400 * 365);
const MAX_COMMAND_LINE: usize = 32_767;
const STATE_DONE: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done";
const STATE_RUNNING: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running";

/// Commands and files users added to a simulator.
#[derive(Default)]
pub(crate) struct Registry {
    commands: RwLock<HashMap<String, CommandFn>>,
    /// The host's file system: the one store that file copy, `type`, `Get-Item` and
    /// [`Simulator::register_file`] / [`Simulator::put_file`] all reach.
    files: Arc<crate::files::Files>,
    /// PSRP cmdlets users registered, by lower-case name: the name as registered, and
    /// the cmdlet.
    cmdlets: RwLock<HashMap<String, (String, CmdletFn)>>,
    /// The parameters registered cmdlets declared, by lower-case name (none declared:
    /// any parameter binds).
    cmdlet_parameters: RwLock<HashMap<String, Vec<String>>>,
    /// PowerShell session configurations users registered (lower case).
    configurations: RwLock<Vec<String>>,
}

impl Registry {
    /// The cmdlet registered as `name` (case-insensitive).
    pub(crate) fn cmdlet(&self, name: &str) -> Option<CmdletFn> {
        self.cmdlets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&name.to_ascii_lowercase())
            .map(|(_, f)| Arc::clone(f))
    }

    /// The parameters the registered cmdlet `name` declared, if it did.
    pub(crate) fn cmdlet_parameters(&self, name: &str) -> Option<Vec<String>> {
        self.cmdlet_parameters
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&name.to_ascii_lowercase())
            .cloned()
    }

    /// The names of the registered cmdlets, as registered, sorted.
    pub(crate) fn cmdlet_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .cmdlets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names
    }

    /// Whether a user registered the session configuration `name`.
    pub(crate) fn has_configuration(&self, name: &str) -> bool {
        self.configurations
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|c| c.eq_ignore_ascii_case(name))
    }

    /// The command registered as `program`: the whole name, else its file name without
    /// directory and `.exe` (case-insensitive).
    pub(crate) fn command(&self, program: &str) -> Option<CommandFn> {
        let map = self
            .commands
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.is_empty() {
            return None;
        }
        let lower = program.to_ascii_lowercase();
        let base = lower.rsplit(['\\', '/']).next().unwrap_or(&lower);
        let base = base.strip_suffix(".exe").unwrap_or(base);
        map.get(&lower).or_else(|| map.get(base)).cloned()
    }

    /// The entries directly in directory `dir` (absolute): directories (length `None`)
    /// then files; `None` when `dir` is not a directory.
    pub(crate) fn entries(&self, dir: &str) -> Option<Vec<(String, Option<usize>)>> {
        self.files.entries_in(dir)
    }

    /// A file by absolute Windows path (case-insensitive): the host's file system, where
    /// file copy, [`Simulator::put_file`] and [`Simulator::register_file`] put files.
    pub(crate) fn file(&self, path: &str) -> Option<Vec<u8>> {
        self.files.read_file(path)
    }
}

/// The contents of a file every simulated host has, by lower-case absolute path (also
/// put on the host's file system that file copy reaches, `files.rs`).
pub(crate) fn builtin_file(key: &str) -> Option<&'static [u8]> {
    Some(match key {
        "c:\\windows\\win.ini" => b"; for 16-bit app support\r\n[fonts]\r\n[extensions]\r\n[mci extensions]\r\n[files]\r\n[Mail]\r\nMAPI=1\r\n",
        "c:\\windows\\system32\\drivers\\etc\\hosts" => b"# Simulated hosts file.\r\n127.0.0.1       localhost\r\n::1             localhost\r\n",
        "c:\\sim\\hello.txt" => b"hello from the simulator\r\n",
        _ => return None,
    })
}

/// The WinRS state of a simulator.
pub(crate) struct WinRs {
    shells: Mutex<HashMap<String, Arc<Shell>>>,
    registry: Arc<Registry>,
}

impl WinRs {
    /// The WinRS state of a host whose file system is `files` (the simulator's one
    /// store).
    pub(crate) fn new(files: Arc<crate::files::Files>) -> WinRs {
        WinRs {
            shells: Mutex::default(),
            registry: Arc::new(Registry {
                files,
                ..Registry::default()
            }),
        }
    }
}

struct Shell {
    id: String,
    /// The resource URI the shell was created on.
    resource_uri: String,
    /// The runspace pool of a PowerShell (PSRP) shell.
    psrp: Option<Arc<psrp::Pool>>,
    owner: String,
    codepage: u32,
    env: Vec<(String, String)>,
    /// The environment as the client sent it, echoed in the CreateResponse.
    client_env: Vec<(String, String)>,
    working_directory: Option<String>,
    idle_timeout: Duration,
    input_streams: String,
    output_streams: String,
    last_used: Mutex<Instant>,
    /// When the Create was answered (the shell list's `ShellRunTime`).
    created: Instant,
    pending: AtomicUsize,
    commands: Mutex<HashMap<String, Arc<Proc>>>,
    closed: CancellationToken,
    /// Connected, disconnecting or disconnected; a change wakes pending Receives.
    conn: tokio::sync::watch::Sender<Conn>,
    /// The Disconnect's IdleTimeOut, in force while the shell is disconnected.
    disconnected_idle: Mutex<Option<Duration>>,
    /// The `p:SessionId` of the client the shell belongs to (its creator, or the last
    /// one that sent Connect): only that client may Reconnect (§3.2.6.4; another uses
    /// Connect).
    client_session: Mutex<Option<String>>,
}

/// The connection state of a shell (`rsp:State`, plus the transient "disconnecting").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conn {
    Connected,
    Disconnecting,
    Disconnected,
}

/// `d` as the shell list writes a run or idle time: `P0DT1H2M3S`.
fn day_time(d: Duration) -> String {
    let s = d.as_secs();
    format!(
        "P{}DT{}H{}M{}S",
        s / 86_400,
        s / 3600 % 24,
        s / 60 % 60,
        s % 60
    )
}

impl WinRs {
    /// The shell list ([MS-WSMV] Enumerate of the `.../windows/shell` resource): one
    /// `rsp:Shell` item per open shell, with the fields Windows writes (as recorded in
    /// pypsrp's `test_psrp_disconnect_runspaces`), oldest first.
    pub(crate) fn shell_list_items(&self) -> Vec<String> {
        let mut shells: Vec<Arc<Shell>> = lock(&self.shells).values().cloned().collect();
        shells.sort_by_key(|s| s.created);
        let now = Instant::now();
        shells
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let state = match *s.conn.borrow() {
                    Conn::Connected => "Connected",
                    Conn::Disconnecting | Conn::Disconnected => "Disconnected",
                };
                let idle = lock(&s.disconnected_idle).unwrap_or(s.idle_timeout);
                let inactive = now.saturating_duration_since(*lock(&s.last_used));
                let children = lock(&s.commands).len();
                let mut w = XmlWriter::with_capacity(1024);
                w.raw("<rsp:Shell xmlns:rsp=\"");
                w.raw(ns::SHELL);
                w.raw("\">");
                w.element("rsp:ShellId", &s.id);
                w.element("rsp:ResourceUri", &s.resource_uri);
                w.element("rsp:Owner", &format!("SIM\\{}", s.owner));
                w.element("rsp:ClientIP", "127.0.0.1");
                w.element("rsp:ProcessId", &(4000 + i).to_string());
                w.element("rsp:IdleTimeOut", &format!("PT{:.3}S", idle.as_secs_f64()));
                w.element("rsp:InputStreams", &s.input_streams);
                w.element("rsp:OutputStreams", &s.output_streams);
                w.element("rsp:MaxIdleTimeOut", "PT2147483.647S");
                w.element("rsp:Locale", "en-US");
                w.element("rsp:DataLocale", "en-US");
                w.element("rsp:CompressionMode", "NoCompression");
                w.element("rsp:ProfileLoaded", "Yes");
                w.element("rsp:Encoding", "UTF8");
                w.element("rsp:BufferMode", "Block");
                w.element("rsp:State", state);
                w.element(
                    "rsp:ShellRunTime",
                    &day_time(now.saturating_duration_since(s.created)),
                );
                w.element("rsp:ShellInactivity", &day_time(inactive));
                w.element("rsp:MemoryUsed", "46MB");
                w.element("rsp:ChildProcesses", &children.to_string());
                w.raw("</rsp:Shell>");
                w.into_string()
            })
            .collect()
    }
}

impl Shell {
    fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    fn conn(&self) -> Conn {
        *self.conn.borrow()
    }

    /// The idle timeout in force: the Disconnect's while disconnected, else the shell's.
    fn idle_timeout(&self) -> Duration {
        match self.conn() {
            Conn::Connected => self.idle_timeout,
            Conn::Disconnecting | Conn::Disconnected => {
                lock(&self.disconnected_idle).unwrap_or(self.idle_timeout)
            }
        }
    }

    fn command(&self, id: &str) -> Result<Arc<Proc>, SimFault> {
        lock(&self.commands)
            .get(&id.trim().to_ascii_uppercase())
            .cloned()
            .ok_or_else(unknown_command)
    }
}

fn unknown_command() -> SimFault {
    let mut f = SimFault::invalid_selectors();
    f.message = Some("The Windows Remote Shell received a request to perform an operation on a command identifier that does not exist. Either the command has completed execution or the client specified an invalid command identifier. ".into());
    f
}

/// §3.1.4.1.31.7: a request other than Disconnect, Reconnect, Connect and Delete to a
/// disconnected shell.
fn shell_disconnected(id: &str) -> SimFault {
    SimFault::internal(
        &format!(
            "The request cannot be processed because the shell {id} is disconnected. Connect to the shell (Reconnect or Connect) and retry the operation. "
        ),
        ERROR_INVALID_STATE,
    )
}

/// ERROR_INVALID_STATE, the code of [`shell_disconnected`] (the simulator's choice).
const ERROR_INVALID_STATE: u32 = 5023;

fn unknown_shell(id: &str) -> SimFault {
    let mut f = SimFault::invalid_selectors();
    f.message = Some(format!(
        "The request for the Windows Remote Shell with ShellId {id} failed because the shell was not found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. Provide the correct ShellId or create a new shell and retry the operation. "
    ));
    f
}

/// The fault of the shell plugin for a bad request body (code 87).
fn bad_parameter() -> SimFault {
    let mut f = SimFault::invalid_parameter("The parameter is incorrect. ");
    f.fault_detail =
        Some("http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidValue".into());
    f.provider = Some((
        "Shell cmd plugin".into(),
        "%systemroot%\\system32\\winrscmd.dll|The parameter is incorrect. ".into(),
    ));
    f
}

fn add(counter: &AtomicU64, n: i64) {
    if n >= 0 {
        counter.fetch_add(n.unsigned_abs(), Ordering::SeqCst);
    } else {
        counter.fetch_sub(n.unsigned_abs(), Ordering::SeqCst);
    }
}

impl Simulator {
    /// Registers a command: `name` (case-insensitive; `deploy` also answers
    /// `deploy.exe` and `C:\tools\deploy.exe`) runs `f` with the context of each run,
    /// through cmd (`cmd /c deploy x && echo ok`), directly, or from PowerShell. The
    /// future's output is what the client receives; its value is the exit code.
    /// Registered commands take precedence over the built-in ones.
    ///
    /// `f` returns any `Send` future (an `async move` block); a boxed one
    /// (`Box::pin(async move { .. })`) is accepted too.
    pub fn register_command<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(CommandContext) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = i32> + Send + 'static,
    {
        let f: CommandFn = Arc::new(move |ctx| -> BoxFuture<'static, i32> { Box::pin(f(ctx)) });
        let mut map = self
            .state
            .winrs
            .registry
            .commands
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.insert(name.to_ascii_lowercase(), f);
    }

    /// Registers a PowerShell cmdlet for PSRP clients (runspace pools and pipelines):
    /// `name` (case-insensitive) runs `f` once per invocation, in a command
    /// (`AddCommand("Get-Widget").AddParameter(..)`) or a script
    /// (`"Get-Widget -Name gear | Select-Object -First 1"`). The context gives the
    /// parameters and the input objects and writes output, errors and the other
    /// streams; `Err(record)` is a terminating error (the pipeline fails, or in a script
    /// the statement ends). Registered cmdlets take precedence over the built-in ones
    /// (`Get-Service`, `Write-Output`, ...). A stop (Ctrl-C from the client) drops the
    /// future. A registered cmdlet takes any parameter name unless it declared its
    /// parameters ([`Simulator::declare_cmdlet_parameters`]); the built-in ones refuse
    /// names they do not declare, as PowerShell does (`Get-Service -Nme x` fails the
    /// pipeline with a `NamedParameterNotFound` ParameterBindingException record).
    ///
    /// ```
    /// use winrm_simulator::{CmdletContext, Simulator};
    /// use winrm_simulator::psrp::messages::{ErrorCategory, ErrorRecord};
    /// use winrm_simulator::psrp::{PsObject, PsValue};
    ///
    /// # fn main() {
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// # rt.block_on(async {
    /// let sim = Simulator::start().await.unwrap();
    /// // Get-Widget [-Name] <pattern>: one object per widget, an error for "broken".
    /// sim.register_cmdlet("Get-Widget", |ctx: CmdletContext| async move {
    ///     let name = ctx.parameter_str("Name").or_else(|| {
    ///         ctx.positional(0).and_then(|v| v.as_str()).map(str::to_string)
    ///     });
    ///     if name.as_deref() == Some("broken") {
    ///         return Err(ErrorRecord::new(
    ///             "The widget is broken.",
    ///             "WidgetBroken,Get-Widget",
    ///             ErrorCategory::InvalidOperation,
    ///         ));
    ///     }
    ///     for (widget, state) in [("gear", "Stuck"), ("cog", "Running")] {
    ///         if name.as_deref().is_none_or(|n| n == widget) {
    ///             let obj = PsObject::new()
    ///                 .with_type_names(["Acme.Widget", "System.Object"])
    ///                 .with_property("Name", widget)
    ///                 .with_property("State", state);
    ///             ctx.write_output(obj).await;
    ///         }
    ///     }
    ///     Ok(())
    /// });
    /// // Stop-Widget: reads widgets from its input.
    /// sim.register_cmdlet("Stop-Widget", |mut ctx: CmdletContext| async move {
    ///     while let Some(w) = ctx.next_input().await {
    ///         let name = w.property("Name").and_then(PsValue::as_str).unwrap_or("?");
    ///         ctx.write_verbose(&format!("stopping {name}")).await;
    ///         ctx.write_output(format!("stopped {name}")).await;
    ///     }
    ///     Ok(())
    /// });
    /// // A client now runs `Get-Widget -Name gear | Stop-Widget` and gets "stopped gear".
    /// # });
    /// # }
    /// ```
    pub fn register_cmdlet<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(CmdletContext) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), crate::soap::psrp::messages::ErrorRecord>>
            + Send
            + 'static,
    {
        let f: CmdletFn = Arc::new(move |ctx| -> BoxFuture<'static, _> { Box::pin(f(ctx)) });
        self.state
            .winrs
            .registry
            .cmdlets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_ascii_lowercase(), (name.to_string(), f));
    }

    /// Declares the parameters of the cmdlet registered (or to be registered) as `name`:
    /// from then on a named argument that is none of them (nor a prefix of one, nor a
    /// common parameter such as `-ErrorAction`) fails the pipeline as PowerShell does
    /// (a `NamedParameterNotFound,<name>` ParameterBindingException record). Without a
    /// declaration a registered cmdlet takes any parameter name.
    pub fn declare_cmdlet_parameters(&self, name: &str, parameters: &[&str]) {
        self.state
            .winrs
            .registry
            .cmdlet_parameters
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                name.to_ascii_lowercase(),
                parameters.iter().map(|p| p.to_string()).collect(),
            );
    }

    /// Adds a PowerShell session configuration (e.g. a JEA endpoint `Acme.Ops`): PSRP
    /// clients can then open pools on
    /// `http://schemas.microsoft.com/powershell/Acme.Ops` besides the configurations
    /// every host has (`Microsoft.PowerShell`, `Microsoft.PowerShell32`, ...).
    pub fn register_ps_configuration(&self, name: &str) {
        self.state
            .winrs
            .registry
            .configurations
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(name.to_string());
    }

    /// Adds a file to the simulated host (absolute Windows path, case-insensitive; its
    /// directories are created), replacing one that is there. It is the same file
    /// system as [`Simulator::put_file`]'s: `type`, `dir`, `Get-Item`,
    /// `powershell -File`, file copy (`Client::fetch`) and [`Simulator::file`] all see
    /// it. Unlike `put_file` it does not return an error; a path that cannot hold a
    /// file (a UNC path, a directory, a file where a directory is needed) is a mistake
    /// in the test and panics.
    ///
    /// # Panics
    /// When [`Simulator::put_file`] would fail for `path`.
    pub fn register_file(&self, path: &str, contents: impl Into<Vec<u8>>) {
        let contents = contents.into();
        if let Err(e) = self.put_file(path, &contents) {
            panic!("register_file({path:?}): {e}");
        }
    }
}

/// Answers a request for a resource under the WinRS shell namespace.
pub(crate) async fn handle(
    state: &Arc<State>,
    req: &SimRequest,
    user: &str,
) -> Result<SimBody, SimFault> {
    let relates = req.message_id.as_deref();
    match req.action.as_str() {
        action::CREATE => create(state, req, user),
        action::DELETE => delete(state, req, user),
        action::COMMAND => command(state, req, user),
        action::SEND => send(state, req, user),
        action::RECEIVE => return receive(state, req, user).await,
        action::SIGNAL => signal(state, req, user),
        action::DISCONNECT => return disconnect(state, req, user).await,
        action::RECONNECT => reconnect(state, req, user),
        action::CONNECT => connect(state, req, user),
        other => Err(SimFault::action_not_supported(other)),
    }
    .map(|(action, body)| envelope(action, relates, |w| w.raw(&body)).into())
}

type Reply = Result<(&'static str, String), SimFault>;

fn find_shell(state: &State, req: &SimRequest, user: &str) -> Result<Arc<Shell>, SimFault> {
    let id = req.selector("ShellId").map(str::trim).unwrap_or("");
    if id.is_empty() {
        return Err(SimFault::invalid_selectors());
    }
    let shells = lock(&state.winrs.shells);
    match shells.get(&id.to_ascii_uppercase()) {
        Some(s) if s.owner.eq_ignore_ascii_case(user) => {
            let any_state = [
                action::DISCONNECT,
                action::RECONNECT,
                action::CONNECT,
                action::DELETE,
            ]
            .contains(&req.action.as_str());
            if !any_state && s.conn() != Conn::Connected {
                return Err(shell_disconnected(&s.id));
            }
            s.touch();
            Ok(Arc::clone(s))
        }
        _ => Err(unknown_shell(id)),
    }
}

fn default_env(user: &str, profile: bool) -> Vec<(String, String)> {
    let home = format!("C:\\Users\\{user}");
    let mut env: Vec<(String, String)> = [
        ("ALLUSERSPROFILE", "C:\\ProgramData"),
        ("CommonProgramFiles", "C:\\Program Files\\Common Files"),
        ("COMPUTERNAME", "SIM"),
        ("ComSpec", "C:\\Windows\\system32\\cmd.exe"),
        ("NUMBER_OF_PROCESSORS", "2"),
        ("OS", "Windows_NT"),
        ("Path", "C:\\Windows\\system32;C:\\Windows;C:\\Windows\\System32\\Wbem;C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\"),
        ("PATHEXT", ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH;.MSC"),
        ("PROCESSOR_ARCHITECTURE", "AMD64"),
        ("PROMPT", "$P$G"),
        ("PUBLIC", "C:\\Users\\Public"),
        ("SystemDrive", "C:"),
        ("SystemRoot", "C:\\Windows"),
        ("USERDOMAIN", "SIM"),
        ("USERNAME", user),
        ("windir", "C:\\Windows"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if profile {
        for (k, v) in [
            ("APPDATA", format!("{home}\\AppData\\Roaming")),
            ("HOMEDRIVE", "C:".into()),
            ("HOMEPATH", format!("\\Users\\{user}")),
            ("LOCALAPPDATA", format!("{home}\\AppData\\Local")),
            ("TEMP", format!("{home}\\AppData\\Local\\Temp")),
            ("TMP", format!("{home}\\AppData\\Local\\Temp")),
            ("USERPROFILE", home),
        ] {
            env.push((k.into(), v));
        }
    } else {
        env.push(("TEMP".into(), "C:\\Windows\\TEMP".into()));
        env.push(("TMP".into(), "C:\\Windows\\TEMP".into()));
        env.push(("USERPROFILE".into(), "C:\\Users\\Default".into()));
    }
    env
}

fn is_true(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.trim().eq_ignore_ascii_case("true") || v.trim() == "1")
}

fn create(state: &Arc<State>, req: &SimRequest, user: &str) -> Reply {
    let resource_uri = req
        .resource_uri
        .clone()
        .unwrap_or_else(|| ns::RESOURCE_CMD.to_string());
    let shell_el = req.body.child(ns::SHELL, "Shell");
    let pool = if psrp::is_ps_uri(&resource_uri) {
        Some(psrp::open(state, req, &resource_uri)?)
    } else {
        None
    };
    let text = |name: &str| {
        shell_el
            .and_then(|s| s.child_text(ns::SHELL, name))
            .map(str::to_string)
    };
    let codepage = match req.option("WINRS_CODEPAGE") {
        Some(v) => v.trim().parse::<u32>().map_err(|_| bad_parameter())?,
        None => 437,
    };
    let profile = !is_true(req.option("WINRS_NOPROFILE"));
    let idle_timeout = match text("IdleTimeOut") {
        Some(t) => parse_duration(&t).ok_or_else(bad_parameter)?,
        None => DEFAULT_IDLE,
    };
    let idle_timeout = if idle_timeout.is_zero() {
        DEFAULT_IDLE
    } else {
        idle_timeout.min(MAX_WAIT)
    };
    let client_env: Vec<(String, String)> = shell_el
        .and_then(|s| s.child(ns::SHELL, "Environment"))
        .map(|e| {
            e.children_named(ns::SHELL, "Variable")
                .map(|v| (v.attr("Name").unwrap_or("").to_string(), v.text.clone()))
                .filter(|(k, _)| !k.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut env = default_env(user, profile);
    for (k, v) in &client_env {
        env.retain(|(e, _)| !e.eq_ignore_ascii_case(k));
        env.push((k.clone(), v.clone()));
    }
    // A PowerShell client names its pool's shell (`rsp:Shell/@ShellId`), as Windows
    // accepts.
    let id = shell_el
        .filter(|_| pool.is_some())
        .and_then(|s| s.attr("ShellId"))
        .and_then(|s| Uuid::parse_str(s.trim()).ok())
        .unwrap_or_else(Uuid::new_v4)
        .hyphenated()
        .to_string()
        .to_ascii_uppercase();
    let (default_in, default_out) = if pool.is_some() {
        ("stdin pr", "stdout")
    } else {
        ("stdin", "stdout stderr")
    };
    let shell = Arc::new(Shell {
        id: id.clone(),
        resource_uri: resource_uri.clone(),
        psrp: pool,
        owner: user.to_string(),
        codepage,
        env,
        client_env,
        working_directory: text("WorkingDirectory").filter(|d| !d.is_empty()),
        idle_timeout,
        input_streams: text("InputStreams").unwrap_or_else(|| default_in.into()),
        output_streams: text("OutputStreams").unwrap_or_else(|| default_out.into()),
        last_used: Mutex::new(Instant::now()),
        created: Instant::now(),
        pending: AtomicUsize::new(0),
        commands: Mutex::new(HashMap::new()),
        closed: CancellationToken::new(),
        conn: tokio::sync::watch::Sender::new(Conn::Connected),
        client_session: Mutex::new(req.session_id.clone()),
        disconnected_idle: Mutex::new(None),
    });
    {
        let mut shells = lock(&state.winrs.shells);
        let limit = state.config.max_shells_per_user;
        if shells
            .values()
            .filter(|s| s.owner.eq_ignore_ascii_case(user))
            .count()
            >= limit
        {
            return Err(SimFault::max_shells(limit));
        }
        if shells.contains_key(&id) {
            return Err(SimFault::invalid_parameter(
                "A shell with this ShellId already exists. ",
            ));
        }
        shells.insert(id.clone(), Arc::clone(&shell));
        add(&state.counters.open_shells, 1);
        add(&state.counters.shells_created, 1);
    }
    spawn_idle_watch(state, &shell);
    let address = req
        .to
        .clone()
        .unwrap_or_else(|| "http://localhost:5985/wsman".into());
    let mut w = XmlWriter::with_capacity(1024);
    w.raw("<x:ResourceCreated>");
    w.element("a:Address", &address);
    w.raw("<a:ReferenceParameters>");
    w.element("w:ResourceURI", &shell.resource_uri);
    w.raw("<w:SelectorSet><w:Selector Name=\"ShellId\">");
    w.text(&id);
    w.raw("</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>");
    w.raw("<rsp:Shell xmlns:rsp=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell\">");
    w.element("rsp:ShellId", &id);
    w.element("rsp:ResourceUri", &shell.resource_uri);
    w.element("rsp:Owner", user);
    w.element("rsp:ClientIP", "127.0.0.1");
    if !shell.client_env.is_empty() {
        w.raw("<rsp:Environment>");
        for (k, v) in &shell.client_env {
            w.raw("<rsp:Variable Name=\"");
            w.attr_text(k);
            w.raw("\">");
            w.text(v);
            w.raw("</rsp:Variable>");
        }
        w.raw("</rsp:Environment>");
    }
    if let Some(dir) = &shell.working_directory {
        w.element("rsp:WorkingDirectory", dir);
    }
    w.element(
        "rsp:IdleTimeOut",
        &format!(
            "PT{}.{:03}S",
            idle_timeout.as_secs(),
            idle_timeout.subsec_millis()
        ),
    );
    w.element("rsp:InputStreams", &shell.input_streams);
    w.element("rsp:OutputStreams", &shell.output_streams);
    w.raw("<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>");
    Ok((action::CREATE_RESPONSE, w.into_string()))
}

/// Removes a shell after its IdleTimeOut without requests (a pending Receive counts as
/// activity). One sleeping task per shell; it ends with the shell or the simulator.
fn spawn_idle_watch(state: &Arc<State>, shell: &Arc<Shell>) {
    let weak_state: Weak<State> = Arc::downgrade(state);
    let weak_shell = Arc::downgrade(shell);
    let closed = shell.closed.clone();
    let shutdown = state.shutdown.clone();
    // A Disconnect may shorten the idle timeout: recompute the wake then.
    let mut conn = shell.conn.subscribe();
    tokio::spawn(async move {
        loop {
            let wake = match weak_shell.upgrade() {
                Some(s) => *lock(&s.last_used) + s.idle_timeout(),
                None => return,
            };
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                r = conn.changed() => {
                    if r.is_err() {
                        return;
                    }
                    continue;
                }
                () = closed.cancelled() => return,
                () = shutdown.cancelled() => return,
            }
            let (Some(state), Some(shell)) = (weak_state.upgrade(), weak_shell.upgrade()) else {
                return;
            };
            if shell.pending.load(Ordering::SeqCst) > 0 {
                shell.touch();
                continue;
            }
            if *lock(&shell.last_used) + shell.idle_timeout() <= Instant::now() {
                let removed = {
                    let mut shells = lock(&state.winrs.shells);
                    match shells.get(&shell.id) {
                        Some(s) if Arc::ptr_eq(s, &shell) => shells.remove(&shell.id),
                        _ => None,
                    }
                };
                if removed.is_some() {
                    close_shell(&state, &shell);
                }
                return;
            }
        }
    });
}

/// Ends a shell already removed from the map: kills and removes its commands.
fn close_shell(state: &State, shell: &Shell) {
    let procs: Vec<Arc<Proc>> = {
        let mut cmds = lock(&shell.commands);
        shell.closed.cancel();
        cmds.drain().map(|(_, p)| p).collect()
    };
    for p in procs {
        p.remove(EXIT_TERMINATED);
        add(&state.counters.running_commands, -1);
    }
    if let Some(pool) = &shell.psrp {
        let n = pool.close();
        add(&state.counters.running_commands, -(n as i64));
    }
    add(&state.counters.open_shells, -1);
    // Count a disconnected (or disconnecting) shell out once: the state becomes
    // Connected for good, which also wakes a Disconnect waiting on it.
    if shell.conn.send_replace(Conn::Connected) != Conn::Connected {
        add(&state.counters.disconnected_shells, -1);
    }
}

/// How long a Disconnect waits for the Receives pending on the shell to answer.
const DISCONNECT_DRAIN: Duration = Duration::from_secs(10);

async fn disconnect(state: &Arc<State>, req: &SimRequest, user: &str) -> Result<SimBody, SimFault> {
    let shell = find_shell(state, req, user)?;
    let el = req.body.child(ns::SHELL, "Disconnect");
    let idle = match el.and_then(|d| d.child_text(ns::SHELL, "IdleTimeOut")) {
        Some(t) => Some(parse_duration(t).ok_or_else(bad_parameter)?.min(MAX_WAIT)),
        None => None,
    };
    if el
        .and_then(|d| d.child_text(ns::SHELL, "BufferMode"))
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("drop"))
    {
        return Err(bad_parameter());
    }
    if let Some(d) = idle.filter(|d| !d.is_zero()) {
        *lock(&shell.disconnected_idle) = Some(d);
    }
    let prev = {
        // Under the shells lock, so a concurrent Delete either ran before (the shell is
        // gone) or runs after and counts the shell out.
        let shells = lock(&state.winrs.shells);
        if !shells
            .get(&shell.id)
            .is_some_and(|s| Arc::ptr_eq(s, &shell))
        {
            return Err(unknown_shell(&shell.id));
        }
        let prev = shell.conn();
        if prev == Conn::Connected {
            shell.conn.send_replace(Conn::Disconnecting);
            add(&state.counters.disconnected_shells, 1);
            add(&state.counters.disconnects, 1);
        }
        prev
    };
    if prev == Conn::Connected {
        // §3.1.4.15: pending Receives deliver what they have before the Disconnect
        // completes (the state change woke them).
        let until = Instant::now() + DISCONNECT_DRAIN;
        while shell.pending.load(Ordering::SeqCst) > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        shell.conn.send_if_modified(|c| {
            let change = *c == Conn::Disconnecting;
            if change {
                *c = Conn::Disconnected;
            }
            change
        });
    }
    shell.touch();
    Ok(envelope(
        action::DISCONNECT_RESPONSE,
        req.message_id.as_deref(),
        |_| {},
    )
    .into())
}

/// Moves a disconnected shell back to Connected (Reconnect, Connect).
fn attach(state: &State, shell: &Shell) -> Result<(), SimFault> {
    let mut was = Conn::Connected;
    shell.conn.send_if_modified(|c| {
        was = *c;
        let change = *c == Conn::Disconnected;
        if change {
            *c = Conn::Connected;
        }
        change
    });
    match was {
        Conn::Disconnected => {
            *lock(&shell.disconnected_idle) = None;
            add(&state.counters.disconnected_shells, -1);
            add(&state.counters.reconnects, 1);
            shell.touch();
            Ok(())
        }
        Conn::Disconnecting => Err(shell_disconnected(&shell.id)),
        Conn::Connected => Err(SimFault::internal(
            &format!("The shell {} is already connected to a client. ", shell.id),
            ERROR_INVALID_STATE,
        )),
    }
}

fn reconnect(state: &Arc<State>, req: &SimRequest, user: &str) -> Reply {
    let shell = find_shell(state, req, user)?;
    let owner = lock(&shell.client_session).clone();
    if let (Some(owner), Some(this)) = (owner, req.session_id.as_ref())
        && !owner.eq_ignore_ascii_case(this)
    {
        // §3.2.6.4: Reconnect is for the client the shell belongs to; others Connect.
        return Err(SimFault::internal(
            &format!(
                "The shell {} belongs to another client session: use Connect, not Reconnect. ",
                shell.id
            ),
            ERROR_INVALID_STATE,
        ));
    }
    match attach(state, &shell) {
        // §3.1.4.16: a Reconnect from the connected client is ignored.
        Ok(()) => {}
        Err(_) if shell.conn() == Conn::Connected => {}
        Err(f) => return Err(f),
    }
    Ok((action::RECONNECT_RESPONSE, String::new()))
}

fn connect(state: &Arc<State>, req: &SimRequest, user: &str) -> Reply {
    let shell = find_shell(state, req, user)?;
    let command_id = req
        .body
        .child(ns::SHELL, "Connect")
        .and_then(|c| c.attr("CommandId"))
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(id) = command_id {
        if shell.conn() != Conn::Connected {
            return Err(shell_disconnected(&shell.id));
        }
        match &shell.psrp {
            Some(pool) => drop(pool.pipeline_by_command(id)?),
            None => drop(shell.command(id)?),
        }
        return Ok((action::CONNECT_RESPONSE, "<rsp:ConnectResponse/>".into()));
    }
    attach(state, &shell)?;
    *lock(&shell.client_session) = req.session_id.clone();
    if let Some(pool) = &shell.psrp
        && let Some(body) = psrp::connect(req, pool)?
    {
        return Ok((action::CONNECT_RESPONSE, body));
    }
    let mut w = XmlWriter::with_capacity(256);
    w.raw("<rsp:ConnectResponse>");
    w.element("rsp:InputStreams", &shell.input_streams);
    w.element("rsp:OutputStreams", &shell.output_streams);
    w.raw("</rsp:ConnectResponse>");
    Ok((action::CONNECT_RESPONSE, w.into_string()))
}

fn delete(state: &Arc<State>, req: &SimRequest, user: &str) -> Reply {
    let shell = find_shell(state, req, user)?;
    let removed = lock(&state.winrs.shells).remove(&shell.id);
    if removed.is_none() {
        return Err(unknown_shell(&shell.id));
    }
    close_shell(state, &shell);
    Ok((action::DELETE_RESPONSE, String::new()))
}

fn command(state: &Arc<State>, req: &SimRequest, user: &str) -> Reply {
    let shell = find_shell(state, req, user)?;
    if let Some(pool) = &shell.psrp {
        return psrp::command(state, req, &shell, pool);
    }
    let line_el = req
        .body
        .child(ns::SHELL, "CommandLine")
        .ok_or_else(bad_parameter)?;
    let program = line_el
        .child_text(ns::SHELL, "Command")
        .ok_or_else(bad_parameter)?;
    let mut line = program.to_string();
    for arg in line_el.children_named(ns::SHELL, "Arguments") {
        line.push(' ');
        line.push_str(&arg.text);
    }
    if line.trim().is_empty() {
        return Err(bad_parameter());
    }
    if line.len() > MAX_COMMAND_LINE {
        return Err(SimFault::invalid_parameter(
            "The command line is too long. ",
        ));
    }
    let skip_cmd = is_true(req.option("WINRS_SKIP_CMD_SHELL"));
    let registry = Arc::clone(&state.winrs.registry);
    let program = commands::resolve(&line, skip_cmd, &registry)?;
    let id = match line_el
        .attr("CommandId")
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(id) => id.to_ascii_uppercase(),
        None => Uuid::new_v4().hyphenated().to_string().to_ascii_uppercase(),
    };
    let (proc, stdin) = Proc::new(id.clone());
    let (out, err) = commands::default_targets();
    let sh = Sh {
        io: Io {
            proc: Arc::clone(&proc),
            stdin: Arc::new(tokio::sync::Mutex::new(StdinReader::new(stdin))),
            out,
            err,
            codepage: shell.codepage,
        },
        env: shell.env.clone(),
        cwd: shell
            .working_directory
            .clone()
            .unwrap_or_else(|| format!("C:\\Users\\{user}")),
        user: user.to_string(),
        shell_id: shell.id.clone(),
        command_id: id.clone(),
        registry,
        ping_interval: state.config.ping_interval,
        depth: 0,
    };
    let mut cmds = lock(&shell.commands);
    if shell.closed.is_cancelled() {
        return Err(unknown_shell(&shell.id));
    }
    if cmds.contains_key(&id) {
        return Err(SimFault::invalid_parameter(
            "A command with this CommandId already exists in the shell. ",
        ));
    }
    spawn_process(&proc, run_program(sh, program), state.shutdown.clone());
    cmds.insert(id.clone(), proc);
    drop(cmds);
    add(&state.counters.running_commands, 1);
    add(&state.counters.commands_started, 1);
    let mut w = XmlWriter::with_capacity(128);
    w.raw("<rsp:CommandResponse>");
    w.element("rsp:CommandId", &id);
    w.raw("</rsp:CommandResponse>");
    Ok((action::COMMAND_RESPONSE, w.into_string()))
}

fn run_program(sh: Sh, program: Program) -> BoxFuture<'static, i32> {
    Box::pin(commands::run(sh, program))
}

/// Runs a command's future as a task; its value (or the simulator's shutdown) ends it.
fn spawn_process(proc: &Arc<Proc>, fut: BoxFuture<'static, i32>, shutdown: CancellationToken) {
    let p = Arc::clone(proc);
    let task = tokio::spawn(async move {
        let code = tokio::select! {
            code = fut => code as u32,
            () = shutdown.cancelled() => EXIT_TERMINATED,
        };
        p.finish(code);
    });
    proc.set_task(task.abort_handle());
}

fn send(state: &Arc<State>, req: &SimRequest, user: &str) -> Reply {
    let shell = find_shell(state, req, user)?;
    if let Some(pool) = &shell.psrp {
        return psrp::send(state, req, &shell, pool);
    }
    let send = req
        .body
        .child(ns::SHELL, "Send")
        .ok_or_else(bad_parameter)?;
    let mut inputs = Vec::new();
    for s in send.children_named(ns::SHELL, "Stream") {
        let proc = shell.command(s.attr("CommandId").ok_or_else(bad_parameter)?)?;
        let text: String = s.text.chars().filter(|c| !c.is_whitespace()).collect();
        let data = STANDARD
            .decode(text.as_bytes())
            .map_err(|_| bad_parameter())?;
        inputs.push((proc, data, is_true(s.attr("End"))));
    }
    for (proc, data, end) in inputs {
        proc.send_stdin(data, end);
    }
    Ok((action::SEND_RESPONSE, "<rsp:SendResponse/>".into()))
}

async fn receive(state: &Arc<State>, req: &SimRequest, user: &str) -> Result<SimBody, SimFault> {
    let shell = find_shell(state, req, user)?;
    if let Some(pool) = &shell.psrp {
        return psrp::receive(state, req, &shell, pool).await;
    }
    let desired_el = req
        .body
        .child(ns::SHELL, "Receive")
        .and_then(|r| r.child(ns::SHELL, "DesiredStream"))
        .ok_or_else(bad_parameter)?;
    let cmd_id = desired_el.attr("CommandId").ok_or_else(bad_parameter)?;
    let desired = Desired::parse(&desired_el.text);
    let proc = shell.command(cmd_id)?;
    let timeout = req
        .operation_timeout
        .unwrap_or(DEFAULT_OPERATION_TIMEOUT)
        .min(MAX_WAIT);
    let deadline = Instant::now() + timeout;
    let mut changed = proc.subscribe();
    // A Disconnect makes a pending Receive answer with what it has (§3.1.4.15).
    let mut conn = shell.conn.subscribe();
    if !proc.ready() {
        let _pending = PendingGuard::new(&state.counters.receives_pending, &shell.pending, &proc);
        while !proc.ready() && *conn.borrow_and_update() == Conn::Connected {
            tokio::select! {
                r = changed.changed() => if r.is_err() { break },
                r = conn.changed() => if r.is_err() { break },
                () = tokio::time::sleep_until(deadline) => return Err(SimFault::timed_out()),
                () = state.shutdown.cancelled() => {
                    return Err(SimFault::internal("The I/O operation has been aborted because of either a thread exit or an application request. ", 995));
                }
            }
        }
    }
    shell.touch();
    let budget = req
        .max_envelope_size
        .map_or(153_600, |s| s as usize)
        .clamp(8192, 64 << 20)
        - 2048;
    let batch = proc.take(budget, desired, proc.id.len());
    Ok(receive_body(
        &envelope_head(action::RECEIVE_RESPONSE, req.message_id.as_deref()),
        &proc.id,
        batch,
        desired,
    ))
}

/// The ReceiveResponse: the output's base64 text goes out from the pipe's buffers as it
/// is, between the envelope's text.
fn receive_body(head: &str, id: &str, batch: process::Batch, desired: Desired) -> SimBody {
    let mut b = BodyBuilder::default();
    b.text(head);
    b.text("<rsp:ReceiveResponse>");
    for (kind, data) in batch.chunks {
        b.text("<rsp:Stream Name=\"");
        b.text(kind.name());
        b.text("\" CommandId=\"");
        b.text(id);
        b.text("\">");
        b.shared(data.text().clone());
        b.text("</rsp:Stream>");
    }
    match batch.done {
        Some(code) => {
            for (wanted, name) in [(desired.stdout, "stdout"), (desired.stderr, "stderr")] {
                if wanted {
                    b.text(&format!(
                        "<rsp:Stream Name=\"{name}\" CommandId=\"{id}\" End=\"true\"></rsp:Stream>"
                    ));
                }
            }
            if batch.without_code {
                b.text(&format!(
                    "<rsp:CommandState CommandId=\"{id}\" State=\"{STATE_DONE}\"></rsp:CommandState>"
                ));
            } else {
                b.text(&format!(
                    "<rsp:CommandState CommandId=\"{id}\" State=\"{STATE_DONE}\"><rsp:ExitCode>{code}</rsp:ExitCode></rsp:CommandState>"
                ));
            }
        }
        None => b.text(&format!(
            "<rsp:CommandState CommandId=\"{id}\" State=\"{STATE_RUNNING}\"></rsp:CommandState>"
        )),
    }
    b.text("</rsp:ReceiveResponse>");
    b.text(ENVELOPE_TAIL);
    b.finish()
}

#[derive(Clone, Copy, PartialEq)]
enum SignalKind {
    Terminate,
    CtrlC,
}

fn signal(state: &Arc<State>, req: &SimRequest, user: &str) -> Reply {
    add(&state.counters.signals, 1);
    if let Ok(shell) = find_shell(state, req, user)
        && let Some(pool) = &shell.psrp
    {
        return psrp::signal(state, req, pool);
    }
    let sig = req
        .body
        .child(ns::SHELL, "Signal")
        .ok_or_else(bad_parameter)?;
    let code = sig
        .child_text(ns::SHELL, "Code")
        .unwrap_or("")
        .to_ascii_lowercase();
    let kind = match code.rsplit('/').next().unwrap_or("") {
        "terminate" => SignalKind::Terminate,
        "ctrl_c" | "ctrl_break" => SignalKind::CtrlC,
        _ => return Err(bad_parameter()),
    };
    if kind == SignalKind::Terminate {
        *lock(&state.last_terminate) = Some(std::time::Instant::now());
        add(&state.counters.terminate_signals, 1);
    }
    let shell = find_shell(state, req, user)?;
    let cmd_id = sig.attr("CommandId").ok_or_else(bad_parameter)?;
    let proc = shell.command(cmd_id)?;
    if proc.receivers() > 0 {
        add(&state.counters.signals_while_receive_pending, 1);
    }
    if kind == SignalKind::CtrlC && !proc.exited() {
        proc.kill(EXIT_CTRL_C);
    } else if lock(&shell.commands).remove(&proc.id).is_some() {
        proc.remove(EXIT_TERMINATED);
        add(&state.counters.running_commands, -1);
    }
    Ok((action::SIGNAL_RESPONSE, "<rsp:SignalResponse/>".into()))
}
