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
pub use run::{Output, PowerShellCommand};

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

/// The code page a shell is created with when the caller names none (OEM United
/// States, what en-US hosts use and what pywinrm asks for).
const DEFAULT_CODEPAGE: u32 = 437;

impl ShellBuilder {
    /// `WINRS_CODEPAGE`: the code page of the shell's output (e.g. 65001 for UTF-8,
    /// 437 or 850 for OEM pages). Default: 437, sent explicitly (as pywinrm does): left
    /// out, the host would use its own OEM code page (866 on a Russian host, 932 on a
    /// Japanese one), which the client cannot know to decode with. 65001 gives any
    /// text without loss.
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
    /// transport errors, or an unreadable response. [`crate::Error::Cancelled`] (reason
    /// Shutdown) once the client's token is cancelled ([`Client::cancel_all`]), before
    /// or while the shell is opened (waiting for [`crate::ClientBuilder::max_shells`]
    /// included).
    ///
    /// # Cancel safety
    /// Dropping the future while the Create is in flight returns at once; the Create's
    /// exchange is finished on a background task and the shell the server created is
    /// deleted ([`Client::shutdown`] waits for it), so that it does not hold a
    /// MaxShellsPerUser slot until its IdleTimeOut.
    pub async fn open(self) -> Result<Shell> {
        let mut options = Vec::new();
        if let Some(np) = self.no_profile {
            options.push(OptionItem::must_comply(
                "WINRS_NOPROFILE",
                if np { "TRUE" } else { "FALSE" },
            ));
        }
        // Always stated: the text helpers decode with it (see `codepage`).
        let cp = self.codepage.unwrap_or(DEFAULT_CODEPAGE);
        options.push(OptionItem::must_comply("WINRS_CODEPAGE", cp.to_string()));
        let c = &self.client;
        // Once the client cancelled everything (`cancel_all`), nothing more is opened.
        let shutdown = || crate::Error::Cancelled {
            reason: crate::CancelReason::Shutdown,
        };
        let token = c.cancellation_token();
        if token.is_cancelled() {
            return Err(shutdown());
        }
        // Waits while the client has `max_shells` open (no bound: nothing to wait for).
        let permit = match c.inner.shells {
            Some(_) => tokio::select! {
                biased;
                () = token.cancelled() => return Err(shutdown()),
                p = c.shell_permit() => p,
            },
            None => None,
        };
        let env = crate::soap::Envelope {
            options: &options,
            ..c.envelope(ns::action::CREATE, Some(&self.resource_uri))
        }
        .write(|w| messages::write_create(w, &self.spec));
        let client = c.clone();
        let mut create = PendingCreate::new(
            c,
            &self.resource_uri,
            Box::pin(async move { fast::exchange_shell_id(&client, env).await }),
            permit,
        );
        // Cancelled in flight, the Create is finished on a cleanup task and the shell it
        // made deleted (see `PendingCreate`).
        let id = tokio::select! {
            biased;
            () = token.cancelled() => return Err(shutdown()),
            r = create.answer() => r?,
        };
        tracing::debug!(shell = %id, "shell created");
        let permit = create.take_permit();
        Ok(self.into_shell(id, permit))
    }

    fn into_shell(self, id: String, permit: Option<tokio::sync::OwnedSemaphorePermit>) -> Shell {
        Shell {
            inner: Arc::new(
                ShellInner::new(
                    self.client,
                    id,
                    self.resource_uri,
                    self.codepage.unwrap_or(DEFAULT_CODEPAGE),
                    self.output_buffer,
                )
                .with_permit(permit),
            ),
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
    /// The shell of [`Client::run`]: deleted by its command's driver when the client
    /// cancels everything ([`Client::cancel_all`]), rather than by `run`'s own task.
    delete_with_command: AtomicBool,
    /// Cancelled when a Disconnect starts: the commands' Receive loops stop (see
    /// [`Shell::disconnect`]) and send no Signal.
    pub(crate) disconnecting: CancellationToken,
    /// Cancelled when [`Shell::close`] starts: the commands' Receive loops stop, and
    /// their streams end with an [`crate::Error::State`] saying the shell is closed
    /// (its Delete ends the commands on the server).
    pub(crate) deleting: CancellationToken,
    /// The commands' Receive loops, for a disconnect to wait for.
    pub(crate) drivers: TaskTracker,
    /// The final Signal terminate of commands that have ended (each driver holds a token
    /// of it from before its final item until the Signal's answer): `close()` waits for
    /// them, so that the Delete follows the Signals as MS-WSMV orders them.
    pub(crate) signals: TaskTracker,
    /// The client's permit for this open shell ([`crate::ClientBuilder::max_shells`]),
    /// given back once the Delete is answered (or with the last handle).
    permit: std::sync::Mutex<Option<tokio::sync::OwnedSemaphorePermit>>,
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
            delete_with_command: AtomicBool::new(false),
            disconnecting: CancellationToken::new(),
            deleting: CancellationToken::new(),
            drivers: TaskTracker::new(),
            signals: TaskTracker::new(),
            permit: std::sync::Mutex::new(None),
        }
    }

    /// This shell holds `permit` (one of the client's open shells) until it is deleted.
    pub(crate) fn with_permit(self, permit: Option<tokio::sync::OwnedSemaphorePermit>) -> Self {
        *self.permit_slot() = permit;
        self
    }

    fn permit_slot(&self) -> std::sync::MutexGuard<'_, Option<tokio::sync::OwnedSemaphorePermit>> {
        self.permit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Gives the client's permit back: the shell's Delete was answered.
    fn release_permit(&self) {
        drop(self.permit_slot().take());
    }

    pub(crate) fn envelope<'a>(&'a self, action: &'a str) -> crate::soap::Envelope<'a> {
        crate::soap::Envelope {
            selectors: &self.selectors,
            ..self.client.envelope(action, Some(&self.resource_uri))
        }
    }

    /// Marks this the shell of [`Client::run`] (see `delete_with_command`).
    pub(crate) fn delete_with_command(&self) {
        self.delete_with_command.store(true, Ordering::SeqCst);
    }

    /// True once, for the driver of the command of a [`Client::run`] shell that is not
    /// closed yet: the shell is then marked closed, and the driver deletes it
    /// ([`ShellInner::delete_in_place`]).
    pub(crate) fn take_delete_with_command(&self) -> bool {
        self.delete_with_command.load(Ordering::SeqCst) && !self.closed.swap(true, Ordering::SeqCst)
    }

    /// Deletes the shell (after [`ShellInner::take_delete_with_command`]) and gives the
    /// client's permit back; a failure is logged.
    pub(crate) async fn delete_in_place(&self) {
        if let Err(e) = self.delete().await {
            tracing::warn!(shell = %self.id, error = %e, "shell delete failed");
        }
        self.release_permit();
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
        )
        // The permit goes with the Delete: given back when it is answered.
        .with_permit(self.permit_slot().take());
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
    /// The streams of its commands that are still running end at once with
    /// [`crate::Error::State`] ("shell … is closed"), after the output they had
    /// received.
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
        // The commands' Receive loops stop: nothing more is received from the shell.
        inner.deleting.cancel();
        let mut guard = RetryOnDrop(Some(Arc::clone(&inner)));
        // Signal terminate of commands that just ended first, then Delete.
        inner.signals.close();
        inner.signals.wait().await;
        let r = inner.delete().await;
        guard.0 = None;
        inner.release_permit();
        r
    }
}

/// The answer to a shell's Create: its ShellId.
pub(crate) type CreateExchange =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<String>> + Send>>;

/// A shell's Create on the wire (a WinRS shell or a PSRP runspace pool). Dropped before
/// its answer (the caller's future dropped, a deadline, a cancel), the exchange is not
/// abandoned: the server may have created the shell already, and would keep it, against
/// the user's MaxShellsPerUser quota, until its IdleTimeOut. It is finished on a cleanup
/// task instead ([`Client::shutdown`] waits for it), and the shell it created deleted.
pub(crate) struct PendingCreate {
    client: Client,
    resource_uri: String,
    exchange: Option<CreateExchange>,
    /// The exchange was polled: its request may be on the wire.
    started: bool,
    /// The client's permit for the shell being created (`max_shells`).
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl PendingCreate {
    pub(crate) fn new(
        client: &Client,
        resource_uri: &str,
        exchange: CreateExchange,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Self {
        PendingCreate {
            client: client.clone(),
            resource_uri: resource_uri.to_string(),
            exchange: Some(exchange),
            started: false,
            permit,
        }
    }

    /// The permit, for the shell the answer names (or dropped with the guard when the
    /// Create failed: it created nothing).
    pub(crate) fn take_permit(&mut self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.permit.take()
    }

    /// Awaits the answer. Cancel safe: dropped mid-way, the exchange stays in the guard
    /// (and goes to the cleanup task when the guard is dropped).
    pub(crate) async fn answer(&mut self) -> Result<String> {
        let Some(exchange) = self.exchange.as_mut() else {
            return Err(crate::Error::State(
                "the shell's Create was already answered".into(),
            ));
        };
        self.started = true;
        let r = exchange.as_mut().await;
        self.exchange = None;
        r
    }
}

impl Drop for PendingCreate {
    fn drop(&mut self) {
        let Some(exchange) = self.exchange.take() else {
            return;
        };
        if !self.started {
            // Never polled: nothing was sent, so nothing was created.
            return;
        }
        let client = self.client.clone();
        let resource_uri = std::mem::take(&mut self.resource_uri);
        let permit = self.permit.take();
        self.client.spawn_cleanup(async move {
            // A Create that failed created nothing.
            let Ok(id) = exchange.await else {
                return;
            };
            tracing::debug!(shell = %id, "deleting a shell whose Create was abandoned");
            let inner = ShellInner::new(client, id, resource_uri, 437, 0).with_permit(permit);
            inner.closed.store(true, Ordering::SeqCst);
            if let Err(e) = inner.delete().await {
                tracing::debug!(shell = %inner.id, error = %e, "delete failed");
            }
        });
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
                inner.release_permit();
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
