//! PowerShell Remoting ([MS-PSRP]): runspace pools and pipelines that take and return
//! objects, as cancellable streams, on the WinRS plumbing of [`crate::shell`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> tokio_winrm::Result<()> {
//! # let sim = winrm_simulator::Simulator::start().await.unwrap();
//! # let client = tokio_winrm::Client::builder(sim.endpoint())
//! #     .auth(tokio_winrm::Auth::ntlm(sim.user(), sim.password()))
//! #     .build()?;
//! use futures_util::StreamExt as _;
//! use tokio_winrm::psrp::{PipelineEnd, PsEvent};
//!
//! #[derive(serde::Deserialize)]
//! #[serde(rename_all = "PascalCase")]
//! struct Service { name: String, status: String }
//!
//! let pool = client.runspace_pool().max_runspaces(4).open().await?;
//! // Collect typed output:
//! let services = pool.pipeline().command("Get-Service").param("Name", "WinRM")
//!     .invoke_as::<Service>().await?.output;
//! # assert_eq!(services[0].name, "WinRM");
//! // Or read the stream: output and records as they come, then one final state.
//! let script = "Write-Warning 'disk almost full'; Get-Service -Name WinRM";
//! let mut p = pool.pipeline().script(script).start().await?;
//! while let Some(ev) = p.next().await {
//!     match ev? {
//!         PsEvent::Output(v) => println!("{v:?}"),
//!         PsEvent::Warning(w) => eprintln!("WARNING: {}", w.message),
//!         PsEvent::State(PipelineEnd::Completed) => break,
//!         PsEvent::State(other) => eprintln!("ended: {other:?}"),
//!         _ => {}
//!     }
//! }
//! pool.close().await?;
//! # Ok(()) }
//! ```
//!
//! The example runs as it is against the embedded simulator (`winrm_simulator`), whose
//! scripts are statements of its cmdlets separated by `;` (no script blocks or
//! variables); a Windows host runs any script.
//!
//! Cancellation follows `MI_Operation_Cancel` as the rest of the crate does:
//! [`Pipeline::cancel`] (or a deadline, or cancelling the client's token,
//! [`Client::cancellation_token`](crate::Client::cancellation_token)) abandons the Receive in
//! flight, sends the PSRP stop signal at once on another connection ([MS-PSRP]
//! §3.1.5.3.9), delivers what was already received, and ends the stream with
//! `State(Stopped { reason })`.
//!
//! Host calls (`Read-Host`, `Get-Credential`, `$Host.UI.PromptForChoice`) go to the
//! pool's [`PsHost`]; the default, [`NotInteractive`], fails them at once with a clear
//! error record, so a script that asks for input fails instead of hanging.
//!
//! SecureStrings (`<SS>`) are encrypted with a session key the pool exchanges with the
//! server on first use ([MS-PSRP] §3.1.5.4.3): [`RunspacePool::secure_string`] makes one
//! for a parameter, [`RunspacePool::decrypt`] reads one the server sent, and a host
//! answers `Read-Host -AsSecureString` or `Get-Credential` through
//! [`PsHost::call_with_session_key`].
//!
//! While a pipeline runs on, the pool's own stream is read too ([MS-PSRP] §3.1.4.3):
//! a server that must send a SecureString and has no session key asks for one there
//! (PUBLIC_KEY_REQUEST, §3.1.5.4.5), which the pool answers (the pipeline's final state
//! comes after the key, so [`RunspacePool::decrypt`] reads its output); a host call made
//! at pool level (RUNSPACEPOOL_HOST_CALL) goes to the same [`PsHost`]; and a pool the
//! server reports Broken or Closed ends the running pipelines' streams with
//! [`Error::RunspacePoolBroken`](crate::Error::RunspacePoolBroken).
//!
//! The objects are [`PsValue`]s ([MS-PSRP] §2.2.5); read them into your own types with
//! [`from_value`] (serde) or [`Pipeline::invoke_as`].

mod disconnect;
mod driver;
mod event;
mod host;
mod pipeline;
mod pool;
mod secure;
mod stream;
mod wire;

pub use disconnect::DisconnectedRunspacePool;
pub use event::{Invocation, PipelineEnd, PsEvent};
pub use host::{NotInteractive, PsHost};
pub use pipeline::{DEFAULT_EVENT_BUFFER, Pipeline, PipelineBuilder};
pub use pool::{RunspacePool, RunspacePoolBuilder};
pub use secure::ps_credential;
/// What [`Error::Psrp`](crate::Error::Psrp) holds: a PSRP message, fragment, CLIXML or
/// serde error (an `invoke_as` misfit among them), or a session-key error.
pub use wsman_protocol::psrp::Error as PsrpError;
pub use wsman_protocol::psrp::clixml::EncryptedString;
pub use wsman_protocol::psrp::messages::{
    ApplicationPrivateData, ErrorCategory, ErrorRecord, HostCall, HostMethod, InformationRecord,
    InformationalRecord, ProgressRecord, ProtocolVersion,
};
pub use wsman_protocol::psrp::{
    Collection, ExchangeKey, PsObject, PsValue, SessionKey, from_value, to_value,
};
