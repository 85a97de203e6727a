//! WinRS remote shells: `Shell` (Create/Delete) and `Command`, a cancellable stream of
//! output ending in one exit status, with stdin and signals.

mod command;
mod disconnect;
pub(crate) mod fast;
pub(crate) mod messages;
mod quote;
mod run;
pub mod text;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use command::{Command, CommandBuilder, CommandEvent, ExitStatus};
pub use disconnect::DisconnectedShell;
pub use run::Output;

use crate::client::Client;
use crate::error::Result;
use crate::soap::envelope::{OptionItem, Selector};
use crate::soap::ns;
use messages::ShellSpec;

/// The default bound on output buffered for a slow consumer before Receives pause.
pub const DEFAULT_OUTPUT_BUFFER: usize = 1024 * 1024;

/// Builds and opens a WinRS shell: `client.shell().codepage(65001).open().await`.
#[must_use]
#[derive(Debug, Clone)]
pub struct ShellBuilder {
    client: Client,
    resource_uri: String,
    codepage: Option<u32>,
    no_profile: Option<bool>,
    spec: ShellSpec,
    output_buffer: usize,
}

impl ShellBuilder {
    /// `WINRS_CODEPAGE`: the code page of the shell's output (e.g. 65001 for UTF-8,
    /// 437 or 850 for OEM pages). Default: the server's (usually 437 on en-US hosts).
    pub fn codepage(mut self, cp: u32) -> Self {
        self.codepage = Some(cp);
        self
    }

    /// `WINRS_NOPROFILE`: do not load the user profile.
    pub fn no_profile(mut self, yes: bool) -> Self {
        self.no_profile = Some(yes);
        self
    }

    /// The shell's working directory.
    pub fn working_directory(mut self, dir: impl Into<String>) -> Self {
        self.spec.working_directory = Some(dir.into());
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.spec.environment.push((name.into(), value.into()));
        self
    }

    /// `IdleTimeOut`: the server deletes the shell after this long without requests.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.spec.idle_timeout = Some(d);
        self
    }

    /// The shell resource URI (default: the cmd shell).
    pub fn resource_uri(mut self, uri: impl Into<String>) -> Self {
        self.resource_uri = uri.into();
        self
    }

    /// The bound on output buffered for a slow consumer (default 1 MiB): while more is
    /// buffered, no further Receive is sent.
    pub fn output_buffer(mut self, bytes: usize) -> Self {
        self.output_buffer = bytes.max(1);
        self
    }

    /// Creates the shell (WS-Transfer Create).
    ///
    /// # Errors
    /// A fault (e.g. the MaxShellsPerUser quota, 2150859173: [`crate::Error::is_quota`]),
    /// transport errors, or an unreadable response.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the Create; a shell the server created anyway is
    /// removed when its IdleTimeOut passes.
    pub async fn open(self) -> Result<Shell> {
        let mut options = Vec::new();
        if let Some(np) = self.no_profile {
            options.push(OptionItem::must_comply(
                "WINRS_NOPROFILE",
                if np { "TRUE" } else { "FALSE" },
            ));
        }
        if let Some(cp) = self.codepage {
            options.push(OptionItem::must_comply("WINRS_CODEPAGE", cp.to_string()));
        }
        let c = &self.client;
        let env = crate::soap::Envelope {
            options: &options,
            ..c.envelope(ns::action::CREATE, Some(&self.resource_uri))
        }
        .write(|w| messages::write_create(w, &self.spec));
        let id = fast::exchange_shell_id(c, env).await?;
        tracing::debug!(shell = %id, "shell created");
        Ok(self.into_shell(id))
    }

    fn into_shell(self, id: String) -> Shell {
        Shell {
            inner: Arc::new(ShellInner::new(
                self.client,
                id,
                self.resource_uri,
                self.codepage.unwrap_or(437),
                self.output_buffer,
            )),
        }
    }
}

pub(crate) struct ShellInner {
    pub(crate) client: Client,
    pub(crate) id: String,
    pub(crate) resource_uri: String,
    pub(crate) selectors: Vec<Selector>,
    pub(crate) codepage: u32,
    pub(crate) output_buffer: usize,
    closed: AtomicBool,
    /// Cancelled when a Disconnect starts: the commands' Receive loops stop (see
    /// [`Shell::disconnect`]) and send no Signal.
    pub(crate) disconnecting: CancellationToken,
    /// The commands' Receive loops, for a disconnect to wait for.
    pub(crate) drivers: TaskTracker,
    /// The final Signal terminate of commands that have ended (each driver holds a token
    /// of it from before its final item until the Signal's answer): `close()` waits for
    /// them, so that the Delete follows the Signals as MS-WSMV orders them.
    pub(crate) signals: TaskTracker,
}

impl ShellInner {
    pub(crate) fn new(
        client: Client,
        id: String,
        resource_uri: String,
        codepage: u32,
        output_buffer: usize,
    ) -> ShellInner {
        ShellInner {
            client,
            selectors: vec![Selector::new("ShellId", id.clone())],
            id,
            resource_uri,
            codepage,
            output_buffer,
            closed: AtomicBool::new(false),
            disconnecting: CancellationToken::new(),
            drivers: TaskTracker::new(),
            signals: TaskTracker::new(),
        }
    }

    pub(crate) fn envelope<'a>(&'a self, action: &'a str) -> crate::soap::Envelope<'a> {
        crate::soap::Envelope {
            selectors: &self.selectors,
            ..self.client.envelope(action, Some(&self.resource_uri))
        }
    }

    async fn delete(&self) -> Result<()> {
        let env = self.envelope(ns::action::DELETE).write(|_| {});
        match fast::exchange_ack(&self.client, env).await {
            Ok(()) => Ok(()),
            // Already gone (idle timeout, or deleted by another party): the goal is met.
            Err(e) if e.fault().is_some_and(crate::Fault::is_gone) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl Drop for ShellInner {
    fn drop(&mut self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        // Never block in Drop: delete the shell on a tracked background task.
        let shell = ShellInner::new(
            self.client.clone(),
            self.id.clone(),
            self.resource_uri.clone(),
            self.codepage,
            self.output_buffer,
        );
        shell.closed.store(true, Ordering::SeqCst);
        let client = self.client.clone();
        client.spawn_cleanup(async move {
            if let Err(e) = shell.delete().await {
                tracing::warn!(shell = %shell.id, error = %e, "background shell delete failed");
            }
        });
    }
}

/// An open WinRS shell. `close().await` deletes it and reports errors; dropping it
/// deletes it on a background task (awaited by [`Client::shutdown`]).
pub struct Shell {
    pub(crate) inner: Arc<ShellInner>,
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

impl Shell {
    /// The ShellId.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The code page output is decoded with by the text helpers.
    pub fn codepage(&self) -> u32 {
        self.inner.codepage
    }

    /// Starts building a command: `shell.command("ipconfig").arg("/all").start().await`.
    pub fn command(&self, command: impl Into<String>) -> CommandBuilder {
        CommandBuilder::new(Arc::clone(&self.inner), command.into())
    }

    /// Deletes the shell (which also terminates its commands on the server). The Signal
    /// terminate of commands that have just ended goes out first: the Delete waits for
    /// their answers (each bounded by its HTTP timeout).
    ///
    /// # Errors
    /// Transport errors or a fault other than "already gone".
    ///
    /// # Cancel safety
    /// If the future is dropped, the Delete is retried on a background task.
    pub async fn close(self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let inner = Arc::clone(&self.inner);
        let mut guard = RetryOnDrop(Some(Arc::clone(&inner)));
        // Signal terminate of commands that just ended first, then Delete.
        inner.signals.close();
        inner.signals.wait().await;
        let r = inner.delete().await;
        guard.0 = None;
        r
    }
}

/// If `close()` is dropped mid-way, delete in the background instead.
struct RetryOnDrop(Option<Arc<ShellInner>>);

impl Drop for RetryOnDrop {
    fn drop(&mut self) {
        if let Some(inner) = self.0.take() {
            let client = inner.client.clone();
            client.spawn_cleanup(async move {
                let _ = inner.delete().await;
            });
        }
    }
}

impl Client {
    /// Starts building a WinRS shell.
    pub fn shell(&self) -> ShellBuilder {
        ShellBuilder {
            client: self.clone(),
            resource_uri: ns::RESOURCE_CMD.to_string(),
            codepage: None,
            no_profile: None,
            spec: ShellSpec {
                input_streams: "stdin".into(),
                output_streams: "stdout stderr".into(),
                ..Default::default()
            },
            output_buffer: DEFAULT_OUTPUT_BUFFER,
        }
    }
}
