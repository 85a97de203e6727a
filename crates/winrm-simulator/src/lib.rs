//! A WS-Management server that behaves like a Windows WinRM endpoint, in-process:
//! Identify, WS-Transfer on the config resource and WMI-like classes, Invoke, WinRS
//! shells, PowerShell Remoting (runspace pools and pipelines), WS-Enumeration with WQL, Robust Connections, Disconnect/Reconnect, the
//! Basic, NTLM, Kerberos and CredSSP logons with message encryption, client
//! certificates over HTTPS, and the faults Windows
//! sends. Used by tokio-winrm's examples, tests and benchmarks, and by users testing
//! their automation without a Windows host: add it as a dev-dependency.
//!
//! Built on `wsman-protocol` (the messages), never on the client: the arrows point
//! down. `winrm sim` (the `winrm-cli` crate) runs it as a standalone server.
//!
//! # Testing your automation without Windows
//!
//! Start a [`Simulator`], give it what your code expects to find on the host
//! ([`Simulator::register_class`] for WMI classes and instances,
//! [`Simulator::register_command`] for programs, [`Simulator::put_file`] (or
//! [`Simulator::register_file`]) for files: the host has one file system, which file
//! copy (`Client::copy` / `Client::fetch`), `type`, `dir`, `powershell -File`,
//! `Get-Content`, `Get-Item`, `Get-ChildItem` and `Test-Path` all reach and
//! [`Simulator::file`] reads back), make it misbehave where you want to see your error handling
//! ([`Simulator::inject`]), point your code's `tokio_winrm::Client` at
//! [`Simulator::endpoint`], then assert on what your code returned, on what it sent
//! ([`Simulator::requests`]) and on what it left behind ([`Simulator::counters`]).
//!
//! ```
//! use std::time::Duration;
//! use winrm_simulator::{CommandContext, Injection, Operation, SimClass, Simulator};
//! use tokio_winrm::{Auth, Client, Error};
//!
//! /// The code under test: stops every widget the host reports as stuck.
//! async fn unstick_widgets(client: &Client) -> Result<Vec<String>, Error> {
//!     let stuck = client
//!         .wql("root/cimv2", "SELECT Name FROM Acme_Widget WHERE State = 'Stuck'")
//!         .start()
//!         .collect_items()
//!         .await?;
//!     let mut stopped = Vec::new();
//!     for item in stuck {
//!         let Some(name) = item.instance().and_then(|i| i.get_str("Name")) else {
//!             continue;
//!         };
//!         // A fault for one widget does not stop the others.
//!         match client.run("widgetctl", &["stop", name]).await {
//!             Ok(out) if out.code == Some(0) => stopped.push(name.to_string()),
//!             Ok(_) | Err(Error::Fault(_)) => {}
//!             Err(e) => return Err(e),
//!         }
//!     }
//!     Ok(stopped)
//! }
//!
//! # fn main() {
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! rt.block_on(async {
//!     let sim = Simulator::start().await.unwrap();
//!     sim.register_class(
//!         SimClass::new("Acme_Widget")
//!             .key("Name")
//!             .property("State")
//!             .instance([("Name", "gear"), ("State", "Stuck")])
//!             .instance([("Name", "cog"), ("State", "Running")])
//!             .instance([("Name", "sprocket"), ("State", "Stuck")]),
//!     );
//!     sim.register_command("widgetctl", |ctx: CommandContext| async move {
//!         ctx.print(&format!("{} {}\r\n", ctx.args[0], ctx.args[1])).await;
//!         0
//!     });
//!     // The host refuses the first stop.
//!     sim.inject(Injection::on(Operation::Command).fault_code(5));
//!
//!     let client = Client::builder(sim.endpoint())
//!         .auth(Auth::basic(sim.user(), sim.password()))
//!         .allow_insecure_basic(true) // plain HTTP on loopback
//!         .operation_timeout(Duration::from_secs(5))
//!         .build()
//!         .unwrap();
//!     let stopped = unstick_widgets(&client).await.unwrap();
//!
//!     assert_eq!(stopped, ["sprocket"]);
//!     // What the code sent: the query, then two Commands (one refused).
//!     let log = sim.requests();
//!     let commands: Vec<_> = log
//!         .iter()
//!         .filter(|r| r.action.ends_with("/shell/Command"))
//!         .collect();
//!     assert_eq!(commands.len(), 2);
//!     assert!(commands[1].body.contains("sprocket"));
//!     let c = sim.counters();
//!     assert_eq!((c.injected, c.commands_started), (1, 1));
//!     client.shutdown().await;
//! });
//! # }
//! ```
//!
//! # PowerShell Remoting (PSRP)
//!
//! A shell created on `http://schemas.microsoft.com/powershell/Microsoft.PowerShell`
//! (or another session configuration: [`Simulator::register_ps_configuration`]) is a
//! runspace pool, as on Windows: pypsrp's `RunspacePool` and `PowerShell` run against
//! it unmodified. Its pipelines run built-in cmdlets (`Get-Service`, `Get-Process`,
//! `Get-Item`, `Get-ChildItem`, `Get-Content`, `Test-Path`, `Write-Output`/`Error`/
//! `Warning`/`Verbose`/`Debug`/`Information`/`Host`/`Progress`, `Start-Sleep`,
//! `Get-Date`, `ConvertTo-Json`, `Select-Object`, `Read-Host`, `Out-Null`) given as
//! commands with parameters or as scripts of pipelines with literal arguments, and the
//! cmdlets you register with [`Simulator::register_cmdlet`]: closures that get a
//! [`CmdletContext`] with the parameters and input objects and write objects and
//! records; a SecureString parameter the client sent is read in plain text with
//! [`CmdletContext::secure_parameter`] (a [`SecureStringError`] when no session key
//! was exchanged). That is the way to
//! test PowerShell automation without Windows: register what your scripts call on the
//! host, run your code against [`Simulator::endpoint`], and assert on what it got and
//! on [`Simulator::counters`] (`open_shells`, `running_commands`, `pipeline_stops`).
//! Two timings to know when asserting on them: a pipeline's command counts in
//! `running_commands` until the client terminates it or closes the pool (tokio-winrm
//! sends `terminate` after each finished pipeline, on a task of its own), and a
//! cancelled pipeline's stop signal also goes out on a task of its own: call
//! `Client::shutdown` (which waits for both) before asserting on `running_commands`,
//! `pipeline_stops` or `signals`.
//!
//! As the recordings of Windows hosts answering pypsrp show: the pool's shell takes
//! the client's `ShellId`; the opening messages come one per Receive (Windows splits
//! them by timing, so a client loops until RUNSPACEPOOL_STATE Opened); the protocol version is the lower of the client's and 2.3
//! (2.1 and 2.2 pools have no information stream); Receives return one fragment per
//! `rsp:Stream`, cut and packed to each request's MaxEnvelopeSize; pipelines queue for
//! the pool's runspaces (SET_MAX_RUNSPACES, GET_AVAILABLE_RUNSPACES); the stop signal
//! (`powershell/signal/crtl_c`, to a pipeline or the pool) ends pipelines `Stopped`;
//! Disconnect, Reconnect and Connect (with `connectXml`) keep pipelines running with
//! their output held in bounded queues; GET_COMMAND_METADATA is answered; host calls
//! (`Read-Host`) go to the client's host, or fail with PowerShell's NonInteractive
//! error when the client has none; an unknown command fails a command pipeline with
//! CommandNotFoundException (in a script, the error is written and the next statement
//! runs).

#![forbid(unsafe_code)]
#![warn(missing_docs, clippy::missing_errors_doc)]
#![allow(
    clippy::result_large_err,
    reason = "a SimFault is the simulator's cold error path; boxing it buys nothing"
)]

/// The message layer, under the name the modules here use.
use wsman_protocol as soap;

mod body;
mod config;
mod credssp;
mod encryption;
mod enumeration;
mod files;
mod inject;
mod kerberos;
mod ntlm;
mod registered;
pub mod request;
mod requests;
pub mod response;
mod robust;
mod server;
mod spnego;
mod synthetic;
mod tls;
mod winrs;
mod wmi;
pub mod wql;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use files::SimFileInfo;
pub use inject::{Injection, Operation};
pub use kerberos::SimKerberos;
pub use registered::SimClass;
pub use request::SimRequest;
pub use requests::{LoggedRequest, REQUEST_LOG_CAPACITY};
pub use response::SimFault;
pub use tls::{MUTUAL_AUTHORIZATION, SimTls, fingerprint};
pub use winrs::{
    CmdletContext, CmdletFn, CommandContext, CommandFn, SecureStringError, synthetic_process,
};
/// The PSRP message layer (`PsValue`, `PsObject`, `ErrorRecord`, ...), for cmdlets
/// registered with [`Simulator::register_cmdlet`].
pub use wsman_protocol::psrp;
pub use wsman_protocol::security::credssp::Delegated as CredSspDelegation;

/// Result of a handler: a response envelope, or the fault to send.
pub(crate) type HandlerResult = Result<String, SimFault>;

/// Settings of a simulator. `Debug` shows the users' names, never their passwords.
#[derive(Clone)]
pub struct SimConfig {
    /// Where to listen (default `127.0.0.1:0`, an ephemeral port).
    pub addr: SocketAddr,
    /// Accepted `(user, password)` pairs for Basic (default `("vagrant", "vagrant")`).
    pub users: Vec<(String, String)>,
    /// Accept Basic authentication (Windows: `Service/Auth/Basic`).
    pub allow_basic: bool,
    /// Answer Identify with `WSMANIDENTIFY: unauthenticated` without credentials.
    pub allow_unauthenticated_identify: bool,
    /// Accept clear-text messages on NTLM/Negotiate-authenticated connections
    /// (Windows: `Service/AllowUnencrypted`, default false). When false, an unsealed
    /// request after an NTLM, Kerberos or CredSSP handshake on plain HTTP is refused with
    /// HTTP 500; over the simulator's own HTTPS (`tls`) clear bodies are taken, as Windows
    /// takes them.
    pub allow_unencrypted: bool,
    /// `MaxShellsPerUser` (Windows default 30).
    pub max_shells_per_user: usize,
    /// `MaxEnvelopeSizekb` reported by the config resource.
    pub max_envelope_size_kb: u32,
    /// Cap on an accepted request body.
    pub max_request_bytes: usize,
    /// The interval between `ping -n N` lines (Windows: 1 s).
    pub ping_interval: Duration,
    /// Number of generated Win32_Service instances.
    pub service_count: usize,
    /// Number of instances of the synthetic class `Sim_Item` (up to 1,000,000).
    pub synthetic_count: u64,
    /// PSRP: when non-zero, `Get-Process` writes this many synthetic processes
    /// ([`synthetic_process`]: `System.Diagnostics.Process`-shaped, 25 properties)
    /// instead of the WMI process table, for throughput benchmarks (default 0).
    pub psrp_synthetic_processes: usize,
    /// `MaxBatchItems`: the most items in one Pull response.
    pub max_batch_items: usize,
    /// How long an unused enumeration context lives (`EnumerationTimeoutms`).
    pub enumeration_timeout: Duration,
    /// How long each Pull is held before it is answered (default zero: at once), as a
    /// long poll with nothing new; past the request's OperationTimeout it ends with
    /// `w:TimedOut`. For cancel tests.
    pub pull_delay: Duration,
    /// Seed of the generated data.
    pub seed: u64,
    /// Robust Connections ([MS-WSMV] §3.1.4.1.39) for shells and CIM objects: echo
    /// `p:OperationID` and answer retransmissions from the OperationMessages table
    /// (default true, as Windows 8 / Server 2012 and later). False: the OperationID is
    /// ignored, as older Windows does.
    pub robust_connections: bool,
    /// Keep the log of requests that [`Simulator::requests`] returns (default true).
    /// Benchmarks and the standalone server, where no one reads it, turn it off.
    pub log_requests: bool,
    /// The most rows of the OperationMessages table (default 1,024; the oldest go).
    pub operation_cache_entries: usize,
    /// The most bytes of responses the OperationMessages table keeps (default 64 MiB;
    /// the oldest rows go first, before the next row is added): a server's memory
    /// bound, whatever the size of the responses (a file fetch's are up to the envelope
    /// size each).
    pub operation_cache_bytes: usize,
    /// How long a response stays in the table after it was made (default 60 s).
    pub operation_retention: Duration,
    /// A Kerberos acceptor; `None`: Kerberos is refused.
    pub kerberos: Option<SimKerberos>,
    /// HTTPS mode: the server's TLS identity and the client-certificate mapping
    /// ([`SimTls`]); `None` (the default): plain HTTP.
    pub tls: Option<SimTls>,
    /// Accept CredSSP (Windows: `Service/Auth/CredSSP`, default false): see
    /// [`Simulator::credssp_delegations`] for what the clients delegated.
    pub credssp: bool,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The accounts' passwords stay out: only the user names are shown.
        let users: Vec<&str> = self.users.iter().map(|(u, _)| u.as_str()).collect();
        f.debug_struct("SimConfig")
            .field("addr", &self.addr)
            .field("users", &users)
            .field("allow_basic", &self.allow_basic)
            .field(
                "allow_unauthenticated_identify",
                &self.allow_unauthenticated_identify,
            )
            .field("allow_unencrypted", &self.allow_unencrypted)
            .field("max_shells_per_user", &self.max_shells_per_user)
            .field("max_envelope_size_kb", &self.max_envelope_size_kb)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("ping_interval", &self.ping_interval)
            .field("service_count", &self.service_count)
            .field("synthetic_count", &self.synthetic_count)
            .field("psrp_synthetic_processes", &self.psrp_synthetic_processes)
            .field("max_batch_items", &self.max_batch_items)
            .field("enumeration_timeout", &self.enumeration_timeout)
            .field("pull_delay", &self.pull_delay)
            .field("seed", &self.seed)
            .field("robust_connections", &self.robust_connections)
            .field("log_requests", &self.log_requests)
            .field("operation_cache_entries", &self.operation_cache_entries)
            .field("operation_cache_bytes", &self.operation_cache_bytes)
            .field("operation_retention", &self.operation_retention)
            .field("kerberos", &self.kerberos)
            .field("tls", &self.tls)
            .field("credssp", &self.credssp)
            .finish()
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            users: vec![("vagrant".into(), "vagrant".into())],
            allow_basic: true,
            allow_unauthenticated_identify: true,
            allow_unencrypted: false,
            max_shells_per_user: 30,
            max_envelope_size_kb: 500,
            max_request_bytes: 1024 * 1024,
            ping_interval: Duration::from_millis(1000),
            service_count: 200,
            synthetic_count: 10_000,
            psrp_synthetic_processes: 0,
            max_batch_items: 20_000,
            enumeration_timeout: Duration::from_secs(60),
            pull_delay: Duration::ZERO,
            seed: 42,
            robust_connections: true,
            log_requests: true,
            operation_cache_entries: 1024,
            operation_cache_bytes: 64 * 1024 * 1024,
            operation_retention: Duration::from_secs(60),
            kerberos: None,
            tls: None,
            credssp: false,
        }
    }
}

/// Live counters of the simulator, for tests.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub auth_failures: AtomicU64,
    pub failed_logons: AtomicU64,
    pub faults: AtomicU64,
    pub open_shells: AtomicU64,
    pub shells_created: AtomicU64,
    pub running_commands: AtomicU64,
    pub commands_started: AtomicU64,
    pub signals: AtomicU64,
    pub terminate_signals: AtomicU64,
    pub signals_while_receive_pending: AtomicU64,
    pub receives_pending: AtomicU64,
    pub open_enumerations: AtomicU64,
    pub releases: AtomicU64,
    pub releases_while_pull_pending: AtomicU64,
    pub pulls_pending: AtomicU64,
    pub invokes: AtomicU64,
    pub puts: AtomicU64,
    pub connections: AtomicU64,
    pub ntlm_handshakes: AtomicU64,
    pub spnego_ntlm_handshakes: AtomicU64,
    pub sealed_messages: AtomicU64,
    pub unseal_failures: AtomicU64,
    pub disconnected_shells: AtomicU64,
    pub disconnects: AtomicU64,
    pub reconnects: AtomicU64,
    pub robust_replays: AtomicU64,
    pub robust_refusals: AtomicU64,
    pub cached_operations: AtomicU64,
    pub injected: AtomicU64,
    pub pipeline_stops: AtomicU64,
}

/// A snapshot of the simulator's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CounterSnapshot {
    /// Requests received (all).
    pub requests: u64,
    /// Requests refused with 401.
    pub auth_failures: u64,
    /// Logons refused for their credentials, as a domain controller counts them toward
    /// an account lockout: Basic credentials that do not match, an NTLM AUTHENTICATE
    /// refused, a Kerberos AP-REQ refused. (A 401 to a request without credentials, or
    /// to an NTLM NEGOTIATE, is not a failed logon.)
    pub failed_logons: u64,
    /// Faults sent.
    pub faults: u64,
    /// Shells open now.
    pub open_shells: u64,
    /// Shells created in total.
    pub shells_created: u64,
    /// Commands running now (started and not terminated; a finished PSRP pipeline's
    /// command counts until it is terminated or its pool closed).
    pub running_commands: u64,
    /// Commands started in total.
    pub commands_started: u64,
    /// Signal requests received.
    pub signals: u64,
    /// Signal terminate requests received.
    pub terminate_signals: u64,
    /// Signals that arrived while a Receive for the same command was pending.
    pub signals_while_receive_pending: u64,
    /// Receive requests waiting now.
    pub receives_pending: u64,
    /// Enumeration contexts open now.
    pub open_enumerations: u64,
    /// Release requests received.
    pub releases: u64,
    /// Releases that arrived while a Pull on the same context was pending.
    pub releases_while_pull_pending: u64,
    /// Pull requests waiting now.
    pub pulls_pending: u64,
    /// Invoke requests.
    pub invokes: u64,
    /// Put requests.
    pub puts: u64,
    /// TCP connections accepted.
    pub connections: u64,
    /// NTLM handshakes completed (AUTHENTICATE accepted), raw or inside SPNEGO.
    pub ntlm_handshakes: u64,
    /// Of `ntlm_handshakes`, those negotiated inside SPNEGO (`NegTokenInit` /
    /// `NegTokenResp` under `Negotiate`, both `mechListMIC`s verified).
    pub spnego_ntlm_handshakes: u64,
    /// Sealed requests unsealed and verified.
    pub sealed_messages: u64,
    /// Sealed requests refused because they failed to unseal or verify.
    pub unseal_failures: u64,
    /// Shells disconnected (or disconnecting) now; they also count in `open_shells`.
    pub disconnected_shells: u64,
    /// Disconnects of a connected shell, in total.
    pub disconnects: u64,
    /// Reconnects and Connects of a disconnected shell, in total.
    pub reconnects: u64,
    /// Retransmissions (Robust Connections) answered from the OperationMessages table
    /// instead of being carried out again.
    pub robust_replays: u64,
    /// Requests refused for reusing an OperationID without marking a retransmission.
    pub robust_refusals: u64,
    /// Rows of the OperationMessages table at the last look.
    pub cached_operations: u64,
    /// Requests an [`Injection`] applied to.
    pub injected: u64,
    /// PSRP stop signals (`powershell/signal/crtl_c`) received for pipelines.
    pub pipeline_stops: u64,
}

/// The simulator's CredSSP counters, from [`Simulator::credssp_counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CredSspCounters {
    /// CredSSP exchanges completed: authenticated, and the credentials delegated.
    pub handshakes: u64,
    /// CredSSP-encrypted requests decrypted.
    pub sealed_messages: u64,
    /// Refusals: wrong passwords, bad tokens, failed decryption.
    pub failures: u64,
    /// Encrypted requests of more than one 16 KiB part (`multipart/x-multi-encrypted`).
    pub multi_part_requests: u64,
    /// Responses encrypted in more than one part.
    pub multi_part_responses: u64,
}

/// The simulator's Kerberos counters, from
/// [`Simulator::kerberos_counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct KerberosCounters {
    /// Kerberos handshakes accepted (AP-REQ verified).
    pub handshakes: u64,
    /// Kerberos-sealed requests unsealed and verified.
    pub sealed_messages: u64,
    /// Refusals: bad tokens, unknown users, failed verification.
    pub failures: u64,
    /// Of the handshakes, those that came SPNEGO-wrapped under `Negotiate`.
    pub spnego_handshakes: u64,
}

impl Counters {
    fn snapshot(&self) -> CounterSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::SeqCst);
        CounterSnapshot {
            requests: g(&self.requests),
            auth_failures: g(&self.auth_failures),
            failed_logons: g(&self.failed_logons),
            faults: g(&self.faults),
            open_shells: g(&self.open_shells),
            shells_created: g(&self.shells_created),
            running_commands: g(&self.running_commands),
            commands_started: g(&self.commands_started),
            signals: g(&self.signals),
            terminate_signals: g(&self.terminate_signals),
            signals_while_receive_pending: g(&self.signals_while_receive_pending),
            receives_pending: g(&self.receives_pending),
            open_enumerations: g(&self.open_enumerations),
            releases: g(&self.releases),
            releases_while_pull_pending: g(&self.releases_while_pull_pending),
            pulls_pending: g(&self.pulls_pending),
            invokes: g(&self.invokes),
            puts: g(&self.puts),
            connections: g(&self.connections),
            ntlm_handshakes: g(&self.ntlm_handshakes),
            spnego_ntlm_handshakes: g(&self.spnego_ntlm_handshakes),
            sealed_messages: g(&self.sealed_messages),
            unseal_failures: g(&self.unseal_failures),
            disconnected_shells: g(&self.disconnected_shells),
            disconnects: g(&self.disconnects),
            reconnects: g(&self.reconnects),
            robust_replays: g(&self.robust_replays),
            robust_refusals: g(&self.robust_refusals),
            cached_operations: g(&self.cached_operations),
            injected: g(&self.injected),
            pipeline_stops: g(&self.pipeline_stops),
        }
    }
}

/// Shared state of one simulator.
pub(crate) struct State {
    pub config: SimConfig,
    pub counters: Counters,
    pub winrs: winrs::WinRs,
    pub enumerations: enumeration::Enumerations,
    pub wmi: wmi::Wmi,
    pub winrm_config: config::WinRmConfig,
    pub shutdown: CancellationToken,
    pub ntlm: ntlm::Control,
    /// Robust Connections' OperationMessages table.
    pub operations: robust::Operations,
    /// When the last Signal terminate arrived (for latency benchmarks).
    pub last_terminate: std::sync::Mutex<Option<std::time::Instant>>,
    /// When the last PSRP stop signal arrived (for latency benchmarks).
    pub last_pipeline_stop: std::sync::Mutex<Option<std::time::Instant>>,
    /// Armed fault injections (`Simulator::inject`).
    pub injections: inject::Injections,
    /// The request log (`Simulator::requests`).
    pub requests: requests::RequestLog,
    pub kerberos: kerberos::Control,
    /// HTTPS mode: the TLS acceptor, built once from `config.tls`.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// The CredSSP acceptor's identity, counters and delegations.
    pub credssp: credssp::Control,
    /// The host's file system (`Simulator::file`, the file-copy scripts).
    pub files: Arc<files::Files>,
}

/// A running simulator. Dropping it stops the server.
pub struct Simulator {
    addr: SocketAddr,
    state: Arc<State>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Rows of the Robust Connections OperationMessages table now (expired ones
    /// dropped first).
    pub fn cached_operations(&self) -> usize {
        self.state.operations.len(&self.state)
    }

    /// Starts a simulator with default settings on an ephemeral loopback port.
    ///
    /// # Errors
    /// When the address cannot be bound.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes starts nothing (the listener is closed).
    pub async fn start() -> std::io::Result<Simulator> {
        Simulator::start_with(SimConfig::default()).await
    }

    /// Starts a simulator with the given settings.
    ///
    /// # Errors
    /// When the address cannot be bound.
    ///
    /// # Cancel safety
    /// Dropping the future before it completes starts nothing (the listener is closed).
    pub async fn start_with(config: SimConfig) -> std::io::Result<Simulator> {
        let tls = match &config.tls {
            Some(t) => Some(tokio_rustls::TlsAcceptor::from(t.server_config()?)),
            None => None,
        };
        let credssp = credssp::Control::new(config.credssp)?;
        let listener = tokio::net::TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let files = Arc::new(files::Files::new());
        let state = Arc::new(State {
            winrs: winrs::WinRs::new(Arc::clone(&files)),
            enumerations: enumeration::Enumerations::default(),
            wmi: wmi::Wmi::new(&config),
            winrm_config: config::WinRmConfig::new(&config),
            counters: Counters::default(),
            shutdown: CancellationToken::new(),
            ntlm: ntlm::Control::default(),
            operations: robust::Operations::default(),
            last_terminate: std::sync::Mutex::new(None),
            last_pipeline_stop: std::sync::Mutex::new(None),
            injections: inject::Injections::default(),
            requests: requests::RequestLog::default(),
            kerberos: kerberos::Control::default(),
            tls,
            credssp,
            files,
            config,
        });
        tokio::spawn(server::serve(listener, Arc::clone(&state)));
        Ok(Simulator { addr, state })
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL, `http://127.0.0.1:PORT/wsman` (`https://` in HTTPS mode).
    pub fn endpoint(&self) -> String {
        let scheme = if self.state.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}/wsman", self.addr)
    }

    /// The first configured user name.
    pub fn user(&self) -> &str {
        self.state.config.users.first().map_or("", |u| u.0.as_str())
    }

    /// The first configured password.
    pub fn password(&self) -> &str {
        self.state.config.users.first().map_or("", |u| u.1.as_str())
    }

    /// Bytes of responses the Robust Connections OperationMessages table keeps now (at
    /// most [`SimConfig::operation_cache_bytes`] plus the last response added).
    pub fn cached_operation_bytes(&self) -> usize {
        self.state.operations.bytes(&self.state)
    }

    /// The counters now.
    pub fn counters(&self) -> CounterSnapshot {
        self.state.counters.snapshot()
    }

    /// When the last Signal terminate reached the simulator's handler, if one did: the
    /// end of a cancel-latency measurement, taken without a thread spinning on the
    /// counters.
    pub fn last_terminate_signal_at(&self) -> Option<std::time::Instant> {
        *self
            .state
            .last_terminate
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// When the last PSRP stop signal (`powershell/signal/crtl_c`) reached the
    /// simulator's handler, if one did: the end of a pipeline cancel-latency
    /// measurement.
    pub fn last_pipeline_stop_at(&self) -> Option<std::time::Instant> {
        *self
            .state
            .last_pipeline_stop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes the server forget every NTLM context (as after a service restart): the next
    /// request on an authenticated connection gets a 401.
    pub fn forget_ntlm_contexts(&self) {
        self.state.ntlm.forget_contexts();
    }

    /// Fault injection: refuse every NTLM login from now on (as after a password change
    /// or an account lockout); established contexts keep working until forgotten.
    pub fn refuse_ntlm_logins(&self, yes: bool) {
        self.state.ntlm.refuse_logins(yes);
    }

    /// Fault injection: the next sealed response carries a corrupted signature. (A hook of
    /// tokio-winrm's own tests; [`Simulator::inject`] is the general tool.)
    #[doc(hidden)]
    pub fn tamper_next_sealed_response(&self) {
        self.state.ntlm.tamper_next();
    }

    /// Fault injection: the next Kerberos-sealed response carries
    /// a corrupted signature. (A hook of tokio-winrm's own tests.)
    #[doc(hidden)]
    pub fn tamper_next_kerberos_response(&self) {
        self.state
            .kerberos
            .tamper_next
            .store(true, Ordering::SeqCst);
    }

    /// Fault injection: the next CredSSP-encrypted response has a bit of its TLS
    /// ciphertext flipped. (A hook of tokio-winrm's own tests.)
    #[doc(hidden)]
    pub fn tamper_next_credssp_response(&self) {
        self.state.credssp.tamper_next.store(true, Ordering::SeqCst);
    }

    /// Kerberos counters: handshakes accepted, sealed requests
    /// unsealed, and refusals (bad tokens, unknown users, failed verification).
    pub fn kerberos_counters(&self) -> KerberosCounters {
        let k = &self.state.kerberos;
        KerberosCounters {
            handshakes: k.handshakes.load(Ordering::SeqCst),
            sealed_messages: k.sealed_messages.load(Ordering::SeqCst),
            failures: k.failures.load(Ordering::SeqCst),
            spnego_handshakes: k.spnego_handshakes.load(Ordering::SeqCst),
        }
    }

    /// CredSSP counters: exchanges completed (credentials delegated), encrypted
    /// requests decrypted, and refusals (wrong passwords, bad tokens, failed decryption).
    pub fn credssp_counters(&self) -> CredSspCounters {
        let c = &self.state.credssp;
        CredSspCounters {
            handshakes: c.handshakes.load(Ordering::SeqCst),
            sealed_messages: c.sealed_messages.load(Ordering::SeqCst),
            failures: c.failures.load(Ordering::SeqCst),
            multi_part_requests: c.multi_part_requests.load(Ordering::SeqCst),
            multi_part_responses: c.multi_part_responses.load(Ordering::SeqCst),
        }
    }

    /// The credentials CredSSP clients delegated (`TSCredentials`), oldest first: what
    /// the host could use for a second hop. Their `Debug` hides the passwords.
    pub fn credssp_delegations(&self) -> Vec<CredSspDelegation> {
        self.state
            .credssp
            .delegations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops accepting connections and ends running commands.
    pub fn stop(&self) {
        self.state.shutdown.cancel();
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
    }
}

/// A WMI-like class the simulator serves: instances made on demand from an index, so
/// large classes are never held in memory.
pub(crate) trait ClassSource: Send + Sync {
    /// Class name, e.g. `Win32_Service`.
    fn name(&self) -> &str;
    /// The WMI namespace, e.g. `root/cimv2` (that of every built-in class).
    fn namespace(&self) -> &str {
        wmi::NAMESPACE
    }
    /// Property names in schema order.
    fn properties(&self) -> Vec<&str>;
    /// Key property names (selectors), e.g. `["Name"]`.
    fn keys(&self) -> Vec<&str>;
    /// Number of instances.
    fn count(&self) -> u64;
    /// The instance at `index` (< count).
    fn instance(&self, index: u64) -> crate::soap::Instance;
    /// Writes instance `index` (< count) as [`wmi::write_instance`] writes
    /// [`ClassSource::instance`] under resource URI `uri`, without building it, and
    /// returns true; the default writes nothing and returns false (the caller then builds
    /// the instance). Enumerations without selectors or a filter use it.
    fn write_instance_xml(
        &self,
        _w: &mut soap::envelope::XmlWriter,
        _uri: &str,
        _index: u64,
    ) -> bool {
        false
    }
    /// Finds an instance by its key selectors; the default scans.
    fn find(&self, selectors: &[(String, String)]) -> Option<crate::soap::Instance> {
        (0..self.count()).map(|i| self.instance(i)).find(|inst| {
            selectors
                .iter()
                .all(|(k, v)| inst.get_str(k).is_some_and(|x| x.eq_ignore_ascii_case(v)))
        })
    }
}
