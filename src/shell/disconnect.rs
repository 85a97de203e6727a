//! Disconnect, Reconnect and Connect ([MS-WSMV] §3.1.4.15-17, §3.2.6.2-4): a shell that
//! outlives its client, and a client (this one, or another process) that attaches to
//! it later and goes on reading a command's output.
//!
//! The messages follow Windows' own clients as recorded (pypsrp against Windows Server):
//! * Disconnect: `<rsp:Disconnect/>` to the shell's EPR, optionally with
//!   `<rsp:IdleTimeOut>` (how long the server keeps the disconnected shell);
//!   DisconnectResponse has an empty body.
//! * Reconnect (the client that disconnected): an empty body; ReconnectResponse empty.
//! * Connect (any client): `<rsp:Connect/>` to the shell's EPR, answered by
//!   `rsp:ConnectResponse`; then `<rsp:Connect CommandId="..."/>` for each command to
//!   go on reading, then Receive with that CommandId.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Command, Shell, ShellBuilder, ShellInner};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::soap::envelope::{XmlWriter, format_duration};
use crate::soap::ns;
use crate::transport::RequestKind;

/// How long [`Shell::disconnect`] waits, beyond the OperationTimeout, for the commands'
/// Receive loops to stop.
const DRIVER_GRACE: Duration = Duration::from_secs(5);

fn write_disconnect(w: &mut XmlWriter, idle_timeout: Option<Duration>) {
    w.raw("<rsp:Disconnect xmlns:rsp=\"");
    w.raw(ns::SHELL);
    match idle_timeout {
        Some(d) => {
            w.raw("\">");
            w.element("rsp:IdleTimeOut", &format_duration(d));
            w.raw("</rsp:Disconnect>");
        }
        None => w.raw("\"/>"),
    }
}

fn write_connect(w: &mut XmlWriter, command_id: Option<&str>) {
    w.raw("<rsp:Connect xmlns:rsp=\"");
    w.raw(ns::SHELL);
    w.raw("\"");
    if let Some(id) = command_id {
        w.raw(" CommandId=\"");
        w.attr_text(id);
        w.raw("\"");
    }
    w.raw("/>");
}

impl ShellInner {
    async fn send_simple(&self, action: &str, body: impl FnOnce(&mut XmlWriter)) -> Result<()> {
        let env = self.envelope(action).write(body);
        self.client
            .exchange(RequestKind::Write, env, self.client.inner.operation_timeout)
            .await
            .map(|_| ())
    }
}

impl Shell {
    /// Disconnects from the shell (WinRS Disconnect): the shell and its commands go on
    /// running on the server, which buffers their output, and the returned
    /// [`DisconnectedShell`] (or any other client, by [`Shell::id`]) can attach again.
    ///
    /// `idle_timeout` (`rsp:IdleTimeOut`) overrides the shell's IdleTimeOut while it is
    /// disconnected: the server deletes the shell, killing its commands, when it passes
    /// without a Reconnect or Connect. `None` keeps the shell's.
    ///
    /// The commands of this shell that are being read stop their Receive loops: the
    /// Receive in flight is let finish (the server answers it with the output it has
    /// before it completes the Disconnect), then each stream yields
    /// [`Error::Disconnected`] after that output. No Signal is sent. This call returns
    /// once those loops have stopped (bounded by the OperationTimeout and a few seconds),
    /// so every byte the server sent is in the streams and the rest is on the server.
    ///
    /// A server that buffers output for a disconnected shell stops the command's writes
    /// when its buffer is full (`OutputBufferingMode` Block, Windows' default) until a
    /// client reads again.
    ///
    /// # Errors
    /// Transport errors or a fault (the server does not support Disconnect for this
    /// shell, or the shell is gone). Either way the commands' Receive loops have stopped
    /// without a Signal, and the shell is **not** deleted: it may be connected or
    /// disconnected on the server; a disconnected one is deleted by the server when its
    /// idle timeout passes (delete it at once with `client.shell().connect(id)` and
    /// [`Shell::close`]).
    ///
    /// # Cancel safety
    /// If the future is dropped, the Disconnect may or may not have reached the server;
    /// the Receive loops stop and the shell is not deleted (as for an error).
    pub async fn disconnect(self, idle_timeout: Option<Duration>) -> Result<DisconnectedShell> {
        let inner = Arc::clone(&self.inner);
        if inner.closed.swap(true, Ordering::SeqCst) {
            return Err(Error::State(format!("shell {} is closed", inner.id)));
        }
        // From here no handle deletes the shell (`closed` is set), and no Receive loop
        // sends another Receive.
        inner.disconnecting.cancel();
        drop(self);
        let r = inner
            .send_simple(ns::action::DISCONNECT, |w| {
                write_disconnect(w, idle_timeout)
            })
            .await;
        inner.drivers.close();
        let grace = inner.client.inner.operation_timeout + DRIVER_GRACE;
        if tokio::time::timeout(grace, inner.drivers.wait())
            .await
            .is_err()
        {
            tracing::warn!(shell = %inner.id, "a Receive loop did not stop after the Disconnect");
        }
        r?;
        tracing::debug!(shell = %inner.id, "shell disconnected");
        Ok(DisconnectedShell {
            client: inner.client.clone(),
            id: inner.id.clone(),
            resource_uri: inner.resource_uri.clone(),
            codepage: inner.codepage,
            output_buffer: inner.output_buffer,
        })
    }

    /// Attaches to a command that runs in this shell (WinRS Connect with the
    /// CommandId), typically after [`ShellBuilder::connect`] or
    /// [`DisconnectedShell::reconnect`], and goes on reading its output from where the
    /// server's buffer is. The stream then behaves as one from
    /// [`crate::CommandBuilder::start`]: output, then one `Exit` after the usual Signal
    /// terminate; dropping it early cancels the command.
    ///
    /// # Errors
    /// A fault (2150858843 invalid selectors: no such command in the shell; an internal
    /// error while the shell is disconnected), transport errors.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the Connect; the command keeps running.
    pub async fn attach_command(&self, command_id: impl Into<String>) -> Result<Command> {
        let id = command_id.into();
        let inner = &self.inner;
        let scope = inner.client.scope(None, None);
        tokio::select! {
            biased;
            reason = scope.cancelled() => return Err(Error::Cancelled { reason }),
            r = inner.send_simple(ns::action::CONNECT, |w| write_connect(w, Some(&id))) => r?,
        }
        tracing::debug!(shell = %inner.id, command = %id, "command attached");
        Ok(Command::drive(Arc::clone(inner), id, scope))
    }
}

impl ShellBuilder {
    /// Connects to an existing, disconnected shell by its ShellId (WinRS Connect), from
    /// any client: the one that created it, or another process. The shell is then
    /// connected to this client; [`Shell::attach_command`] goes on reading its commands.
    ///
    /// Of the builder's settings, the resource URI (it must be the shell's), the code
    /// page the text helpers decode with and the output buffer apply; the shell's other
    /// settings are the ones it was created with. The Connect does not tell the code
    /// page the shell was created with: name it (`client.shell().codepage(65001)
    /// .connect(id)` for a shell created with 65001), or the text helpers decode with
    /// 437, the default.
    ///
    /// Dropping the returned [`Shell`] deletes it, as for a shell this client created.
    ///
    /// # Errors
    /// A fault: 2150858843 (invalid selectors) when there is no such shell for this
    /// user; `w:InternalError` when the shell is connected (to another client);
    /// transport errors.
    ///
    /// # Cancel safety
    /// If the future is dropped, the Connect may or may not have taken effect: the shell
    /// is then connected to nobody, and deleted by the server when its idle timeout
    /// passes.
    pub async fn connect(self, shell_id: impl Into<String>) -> Result<Shell> {
        let shell = self.into_shell(shell_id.into(), None);
        // Not deleted if the Connect fails: it is not ours.
        shell.inner.closed.store(true, Ordering::SeqCst);
        shell
            .inner
            .send_simple(ns::action::CONNECT, |w| write_connect(w, None))
            .await?;
        shell.inner.closed.store(false, Ordering::SeqCst);
        tracing::debug!(shell = %shell.inner.id, "shell connected");
        Ok(shell)
    }
}

impl Client {
    /// Connects to an existing, disconnected cmd shell by its ShellId (WinRS Connect):
    /// shorthand for `client.shell().connect(shell_id)`; see [`ShellBuilder::connect`].
    /// Its output is decoded as code page 437: for a shell created with another, use
    /// `client.shell().codepage(cp).connect(shell_id)`.
    ///
    /// # Errors
    /// As [`ShellBuilder::connect`].
    ///
    /// # Cancel safety
    /// As [`ShellBuilder::connect`].
    pub async fn connect_shell(&self, shell_id: impl Into<String>) -> Result<Shell> {
        self.shell().connect(shell_id).await
    }
}

/// A shell this client disconnected from ([`Shell::disconnect`]). It goes on running
/// on the server with its commands.
///
/// Dropping a `DisconnectedShell` does **not** delete the shell: that is the point of
/// disconnecting. The server deletes it when its idle timeout passes without a
/// Reconnect or Connect; [`DisconnectedShell::close`] deletes it at once.
#[derive(Debug)]
pub struct DisconnectedShell {
    client: Client,
    id: String,
    resource_uri: String,
    codepage: u32,
    output_buffer: usize,
}

impl DisconnectedShell {
    /// The ShellId: what another client passes to [`Client::connect_shell`].
    pub fn id(&self) -> &str {
        &self.id
    }

    fn inner(&self) -> ShellInner {
        ShellInner::new(
            self.client.clone(),
            self.id.clone(),
            self.resource_uri.clone(),
            self.codepage,
            self.output_buffer,
        )
    }

    /// Reconnects this client to the shell (WinRS Reconnect, for the client that
    /// disconnected; another client uses [`Client::connect_shell`]). The `Shell` it gives
    /// is an ordinary one: dropping it deletes the shell on the server (disconnect it
    /// again to leave it running).
    ///
    /// # Errors
    /// A fault (the shell is gone: 2150858843, e.g. after its idle timeout), transport
    /// errors. The `DisconnectedShell` is consumed either way; its id still names the
    /// shell for [`Client::connect_shell`].
    ///
    /// # Cancel safety
    /// If the future is dropped, the Reconnect may or may not have taken effect; the
    /// shell is not deleted.
    pub async fn reconnect(self) -> Result<Shell> {
        let inner = self.inner();
        inner.closed.store(true, Ordering::SeqCst);
        inner.send_simple(ns::action::RECONNECT, |_| {}).await?;
        inner.closed.store(false, Ordering::SeqCst);
        tracing::debug!(shell = %self.id, "shell reconnected");
        Ok(Shell {
            inner: Arc::new(inner),
        })
    }

    /// Deletes the shell, which terminates its commands (WS-Transfer Delete, which the
    /// server accepts for a disconnected shell).
    ///
    /// # Errors
    /// Transport errors or a fault other than "already gone".
    ///
    /// # Cancel safety
    /// If the future is dropped, the Delete may or may not have reached the server.
    pub async fn close(self) -> Result<()> {
        let inner = self.inner();
        inner.closed.store(true, Ordering::SeqCst);
        inner.delete().await
    }
}
