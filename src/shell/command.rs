//! `Command`: a running remote command as a `Stream` of output chunks ending with one
//! `Exit`, driven by a background Receive loop that follows the MI_Operation_Cancel
//! contract: on cancel the long poll in flight is abandoned at once, Signal terminate
//! goes out on another channel, buffered output is still delivered, then one final
//! status.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use futures_util::task::AtomicWaker;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ShellInner;
use super::messages::{self, StreamName};
use crate::error::{Error, Result};
use crate::operation::{CancelHandle, CancelReason, Scope};
use crate::soap::envelope::{OptionItem, check_text};
use crate::soap::ns;

/// One item of a command's output stream.
///
/// Output chunks are decoded into a buffer the command reuses once the previous chunks
/// are dropped; a chunk kept for long keeps that buffer (at most about one
/// ReceiveResponse of output) alive, so copy small pieces you keep (`Bytes::to_vec`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandEvent {
    /// A chunk of standard output, as the server sent it (raw bytes in the shell's code page).
    Stdout(Bytes),
    /// A chunk of standard error.
    Stderr(Bytes),
    /// The final item: how the command ended.
    Exit(ExitStatus),
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitStatus {
    /// The process exited with this code.
    Exited(i64),
    /// The server reported the command done (`CommandState Done`) without an
    /// `ExitCode`. The command ended, but whether it succeeded is unknown: this is
    /// not success ([`ExitStatus::success`] is false, [`ExitStatus::code`] `None`).
    ExitedWithoutCode,
    /// The command was cancelled (and terminated on the server).
    Cancelled {
        /// Why.
        reason: CancelReason,
    },
}

impl ExitStatus {
    /// The exit code, if the process exited and the server reported its code.
    pub fn code(&self) -> Option<i64> {
        match self {
            ExitStatus::Exited(c) => Some(*c),
            ExitStatus::ExitedWithoutCode | ExitStatus::Cancelled { .. } => None,
        }
    }

    /// Exited with code 0 (an unknown exit code is not success).
    pub fn success(&self) -> bool {
        *self == ExitStatus::Exited(0)
    }
}

/// Builds a command on a shell.
///
/// # The command line
///
/// WinRS joins the command and the arguments with single spaces into one Windows
/// command line, which by default runs through `cmd.exe /c` (see
/// [`CommandBuilder::skip_cmd_shell`]). The command (the text given to
/// [`crate::Shell::command`]) is written as given, so it may be a whole command line
/// of the caller's (`"powershell -Command Get-Date"`), and a program path with spaces
/// must be quoted by the caller (`"\"C:\\Program Files\\app\\tool.exe\""`). Through
/// cmd.exe a command line that begins with `"` would lose its first and last quote
/// (cmd's `/c` rule, as `cmd /?` describes it); the builder then adds one more pair
/// around the whole line, which cmd removes, so a quoted program path works with
/// quoted arguments.
#[must_use]
pub struct CommandBuilder {
    shell: Arc<ShellInner>,
    command: String,
    args: Vec<Arg>,
    console_mode_stdin: Option<bool>,
    skip_cmd_shell: Option<bool>,
    deadline: Option<Duration>,
    token: Option<CancellationToken>,
}

/// An argument as the caller gave it: quoted at `start()` (which knows whether cmd.exe
/// reads the line), or verbatim.
enum Arg {
    Quoted(String),
    Raw(String),
}

impl std::fmt::Debug for CommandBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandBuilder")
            .field("command", &self.command)
            .field("args", &self.args.len())
            .finish_non_exhaustive()
    }
}

impl CommandBuilder {
    pub(crate) fn new(shell: Arc<ShellInner>, command: String) -> CommandBuilder {
        CommandBuilder {
            shell,
            command,
            args: Vec::new(),
            console_mode_stdin: None,
            skip_cmd_shell: None,
            deadline: None,
            token: None,
        }
    }

    /// Adds an argument that the remote program receives as exactly one `argv` entry,
    /// as [`std::process::Command::arg`] does.
    ///
    /// The value is quoted for the rules of the Microsoft C runtime, which
    /// `CommandLineToArgvW` and nearly every Windows program follow: a value that is
    /// empty or has a space, tab, line break or `"` is put in double quotes, each `"` is
    /// written `\"`, and backslashes before a `"` or before the closing quote are
    /// doubled (other backslashes stay as they are, so `C:\dir\` is unchanged).
    ///
    /// Through `cmd.exe` (the default), the quoted value is also escaped for cmd: a `^`
    /// goes before each `"`, `&`, `|`, `<`, `>`, `^`, `(` and `)`, so none of them is an
    /// operator and cmd removes the carets before the program starts. What cmd would
    /// still act on cannot be escaped on a `cmd /c` line, and [`CommandBuilder::start`]
    /// then fails with [`Error::InvalidArgument`] before anything is sent:
    /// * `%` (`%NAME%` is expanded, and cmd has no escape for it on a command line);
    /// * `!` (expanded when delayed expansion is enabled on the host, which the client
    ///   cannot know);
    /// * CR and LF (a line break ends the command line).
    ///
    /// With [`CommandBuilder::skip_cmd_shell`]`(true)` the program starts without
    /// cmd.exe: `%`, `!` and line breaks are then ordinary characters and pass through
    /// verbatim. NUL and the other control characters below U+0020 except tab, CR and LF
    /// are refused in both modes (XML cannot carry them).
    ///
    /// Programs that parse their command line their own way (cmd's internal commands
    /// such as `echo` and `set`, or `cmd /c` given as the command) do not follow these
    /// rules; use [`CommandBuilder::raw_arg`] for them.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(Arg::Quoted(a.into()));
        self
    }

    /// Adds arguments, each as [`CommandBuilder::arg`] does.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args
            .extend(args.into_iter().map(|a| Arg::Quoted(a.into())));
        self
    }

    /// Appends `text` to the command line verbatim (after one space), for callers who
    /// mean shell syntax: `raw_arg("a.txt > b.txt & type b.txt")` is split, redirected
    /// and chained by cmd.exe. Nothing is quoted, escaped or refused; text that leaves
    /// a `"` open changes how cmd.exe reads the arguments after it.
    pub fn raw_arg(mut self, text: impl Into<String>) -> Self {
        self.args.push(Arg::Raw(text.into()));
        self
    }

    /// `WINRS_CONSOLEMODE_STDIN`: stdin is a console (TRUE) or a pipe (FALSE).
    pub fn console_mode_stdin(mut self, yes: bool) -> Self {
        self.console_mode_stdin = Some(yes);
        self
    }

    /// `WINRS_SKIP_CMD_SHELL`: run the program directly, not through `cmd.exe /c`.
    pub fn skip_cmd_shell(mut self, yes: bool) -> Self {
        self.skip_cmd_shell = Some(yes);
        self
    }

    /// Cancels the command (reason Timeout) when `d` has passed since `start()`.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }

    /// Cancels the command (reason User) when `token` is cancelled.
    pub fn cancellation(mut self, token: CancellationToken) -> Self {
        self.token = Some(token);
        self
    }

    /// Starts the command (WinRS Command) and its Receive loop.
    ///
    /// The builder's [`deadline`](CommandBuilder::deadline) and
    /// [`cancellation`](CommandBuilder::cancellation) token (and the client's
    /// [`cancel_all`](crate::Client::cancel_all)) apply from here: to the Command
    /// request, then to the command it starts.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (nothing sent) for a value [`CommandBuilder::arg`]
    /// cannot pass as one argument. [`Error::InvalidText`] (nothing sent) when the
    /// command or a [`CommandBuilder::raw_arg`] text holds a character XML cannot carry
    /// (NUL, control characters other than tab, CR and LF, U+FFFE, U+FFFF).
    /// [`Error::Cancelled`] when the command was cancelled before its Command request
    /// went out: nothing was sent. [`Error::Abandoned`] (its
    /// [`Error::may_have_executed`] is true) when it was cancelled while the Command
    /// request was in flight: the server may have started the command, and it may have
    /// done something before the Signal terminate that follows stops it (see Cancel
    /// safety). Either way the error comes at once, without waiting for the server.
    /// A fault (e.g. 2147942402 file not found with `skip_cmd_shell`), transport
    /// errors, or an unreadable response.
    ///
    /// # Cancel safety
    /// A Command request cannot be cancelled on the server: once it may be on the wire,
    /// cancelling `start()` (its token, its deadline, `cancel_all`) or dropping its
    /// future does not abandon it. Its exchange is finished on a background task, and
    /// if the server started the command (the answer carries a CommandId), Signal
    /// terminate goes to it at once, so that it does not run to completion unseen.
    /// That task is bounded by the HTTP timeout of each of its two requests.
    /// [`crate::Client::shutdown`] and [`crate::Client::cancel_all`] wait for it (and
    /// for a start whose Command is in flight), and so does a [`crate::Shell::close`]
    /// begun after the cancel, whose Delete then follows the Signal. A command whose
    /// shell is being disconnected gets no Signal (the server refuses it): it runs on in
    /// the disconnected shell.
    pub async fn start(self) -> Result<Command> {
        let shell = self.shell;
        let c = &shell.client;
        let scope = c.scope(self.token, self.deadline.map(|d| Instant::now() + d));
        let mut options = Vec::new();
        if let Some(v) = self.console_mode_stdin {
            options.push(OptionItem::new(
                "WINRS_CONSOLEMODE_STDIN",
                if v { "TRUE" } else { "FALSE" },
            ));
        }
        // Always stated, as Windows' own clients do (FALSE: run through cmd.exe /c).
        let skip = self.skip_cmd_shell.unwrap_or(false);
        options.push(OptionItem::new(
            "WINRS_SKIP_CMD_SHELL",
            if skip { "TRUE" } else { "FALSE" },
        ));
        let (command, args) = command_line(self.command, self.args, !skip)?;
        let env = crate::soap::Envelope {
            options: &options,
            ..shell.envelope(ns::action::COMMAND)
        }
        .write(|w| messages::write_command(w, &command, &args));
        // From here until its answer, `pending` owns the Command's exchange: if this
        // future is cancelled or dropped first, the guard finishes it in the background
        // and terminates the command it started.
        let client = c.clone();
        let mut pending = PendingStart {
            shell: Arc::clone(&shell),
            exchange: Some(Box::pin(async move {
                super::fast::exchange_command_id(&client, env).await
            })),
            sent: false,
            _tracked: c.cleanup_token(),
        };
        let id = tokio::select! {
            biased;
            reason = scope.cancelled() => return Err(pending.cancelled(reason)),
            r = pending.answer() => r?,
        };
        drop(pending);
        tracing::debug!(shell = %shell.id, command = %id, "command started");
        Ok(Command::drive(shell, id, scope))
    }
}

/// The Command request's exchange, answering the CommandId.
type CommandExchange = Pin<Box<dyn std::future::Future<Output = Result<String>> + Send>>;

/// The Command of a command being started, until its answer. Dropped before that (the
/// caller's future dropped, a cancel, a deadline), the exchange is not abandoned: the
/// server may start the command anyway, and it would run to completion with no one to
/// stop it (a Command cannot be cancelled on the server). The exchange is finished on a
/// cleanup task instead, and a command it started gets Signal terminate at once.
struct PendingStart {
    shell: Arc<ShellInner>,
    exchange: Option<CommandExchange>,
    /// The exchange was polled: the Command may be on the wire.
    sent: bool,
    /// Keeps [`crate::Client::shutdown`] and `cancel_all` waiting while the Command is
    /// in flight, until the cleanup task (if any) is registered in its place.
    _tracked: tokio_util::task::task_tracker::TaskTrackerToken,
}

impl PendingStart {
    /// Awaits the answer. Cancel safe: dropped mid-way, the exchange stays in the guard
    /// (and goes to the cleanup task when the guard is dropped).
    async fn answer(&mut self) -> Result<String> {
        let Some(exchange) = self.exchange.as_mut() else {
            return Err(Error::State("the Command was already answered".into()));
        };
        self.sent = true;
        let r = exchange.as_mut().await;
        self.exchange = None;
        r
    }

    /// The error for a start cancelled with `reason`: [`Error::Abandoned`] once the
    /// Command may have reached the server, [`Error::Cancelled`] before.
    fn cancelled(&self, reason: CancelReason) -> Error {
        if self.sent && self.exchange.is_some() {
            Error::Abandoned { reason }
        } else {
            Error::Cancelled { reason }
        }
    }
}

impl Drop for PendingStart {
    fn drop(&mut self) {
        let Some(exchange) = self.exchange.take() else {
            return;
        };
        if !self.sent {
            // Never polled: nothing was sent, so nothing was started.
            return;
        }
        let shell = Arc::clone(&self.shell);
        // `Shell::close` waits for this token, so that its Delete follows the Signal.
        let signalling = shell.signals.token();
        let client = shell.client.clone();
        client.spawn_cleanup(async move {
            let _signalling = signalling;
            // A Command that failed started nothing.
            let Ok(id) = exchange.await else {
                return;
            };
            if shell.disconnecting.is_cancelled() {
                tracing::debug!(shell = %shell.id, command = %id, "shell disconnecting; a command whose start was abandoned is left running");
                return;
            }
            tracing::debug!(shell = %shell.id, command = %id, "terminating a command whose start was abandoned");
            match send_signal(&shell, &id, ns::signal::TERMINATE).await {
                Ok(()) => {}
                Err(e) if e.fault().is_some_and(|f| f.is_gone() || f.is_aborted()) => {}
                Err(e) => {
                    tracing::debug!(shell = %shell.id, command = %id, error = %e, "Signal terminate failed")
                }
            }
        });
    }
}

impl Command {
    /// Starts the Receive loop of command `id` (started, or attached after a Connect).
    pub(crate) fn drive(shell: Arc<ShellInner>, id: String, scope: Scope) -> Command {
        let flow = Arc::new(Flow::default());
        let terminated = Arc::new(AtomicBool::new(false));
        let handle = scope.handle();
        let command_scope = scope.clone();
        // Counted from here: once cancelled (or dropped), `Client::shutdown` waits for
        // its Signal, whether or not the driver has run since.
        let registered = shell.client.register_operation(&scope);
        let driver = Driver {
            shell: Arc::clone(&shell),
            id: id.clone(),
            scope,
            tx: Sender(Arc::clone(&flow)),
            registered,
            terminated: Arc::clone(&terminated),
        };
        // On the shell's tracker, so that a disconnect can wait for its drivers to stop.
        // Boxed: the task then moves a pointer, not the driver's state, as it is spawned,
        // polled into place and finished (each move a copy of over a kilobyte).
        shell.drivers.spawn(Box::pin(driver.run()));
        Command {
            id,
            shell,
            cancel: handle,
            scope: command_scope,
            flow,
            terminated,
            finished: false,
            arena: BytesMut::new(),
        }
    }
}

/// The `rsp:Command` and `rsp:Arguments` texts: arguments quoted (for cmd.exe too when
/// `through_cmd`), and through cmd.exe a line that begins with `"` wrapped in one more
/// pair of quotes for cmd's `/c` rule to remove.
fn command_line(
    mut command: String,
    args: Vec<Arg>,
    through_cmd: bool,
) -> Result<(String, Vec<String>)> {
    // Text XML cannot carry, refused before anything is sent (quoted arguments are
    // refused by the quoting, as InvalidArgument).
    check_text("command", "", &command)?;
    let mut out = Vec::with_capacity(args.len());
    for (index, a) in args.into_iter().enumerate() {
        out.push(match a {
            Arg::Raw(t) => {
                check_text("command argument", &format!("#{}", index + 1), &t)?;
                t
            }
            Arg::Quoted(v) => {
                super::quote::quote(&v, through_cmd).map_err(|r| Error::InvalidArgument {
                    index,
                    reason: r.reason(),
                })?
            }
        });
    }
    if through_cmd && command.trim_start().starts_with('"') {
        command.insert(0, '"');
        match out.last_mut() {
            Some(last) => last.push('"'),
            None => command.push('"'),
        }
    }
    Ok((command, out))
}

/// What the driver hands the stream: events, and large output still in base64, decoded
/// when the consumer reads it, so that decoding one response runs beside the next
/// Receive instead of before it.
enum Item {
    Event(Result<CommandEvent>),
    Output(StreamName, Bytes),
}

/// Base64 text from this size on is decoded by the consumer rather than the driver.
const DECODE_LATER: usize = 16 * 1024;

/// What the driver and the stream share: the backpressure count, and the hand-off of
/// items. The hand-off is a queue that grows only as far as the consumer lags (a
/// channel would allocate a block of 32 items for the one or two most commands send),
/// and it holds one item per output chunk, event or error.
#[derive(Default)]
struct Flow {
    buffered: AtomicUsize,
    notify: Notify,
    queue: Mutex<Queue>,
    /// The stream's task, woken when an item comes or the driver ends.
    waker: AtomicWaker,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    /// The driver has ended: no more items come.
    closed: bool,
    /// The stream is gone: items are dropped, not kept.
    dropped: bool,
}

impl Flow {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next item; None once the driver has ended and every item was taken.
    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        self.waker.register(cx.waker());
        let mut q = self.queue();
        match q.items.pop_front() {
            Some(item) => Poll::Ready(Some(item)),
            None if q.closed => Poll::Ready(None),
            None => Poll::Pending,
        }
    }

    /// The stream is gone: drops what it did not read, and what comes later.
    fn drop_receiver(&self) {
        let items = {
            let mut q = self.queue();
            q.dropped = true;
            std::mem::take(&mut q.items)
        };
        drop(items);
    }
}

/// The driver's end of the hand-off; dropped, it tells the stream that nothing more
/// comes (as a channel's sender does).
struct Sender(Arc<Flow>);

impl Sender {
    fn send(&self, item: Item) {
        {
            let mut q = self.0.queue();
            if q.dropped {
                return;
            }
            q.items.push_back(item);
        }
        self.0.waker.wake();
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.0.queue().closed = true;
        self.0.waker.wake();
    }
}

/// A running command: a `Stream<Item = Result<CommandEvent>>` of Stdout/Stderr chunks in
/// the order the server sent them, then exactly one [`CommandEvent::Exit`], then `None`.
/// A transport or server error is yielded once as `Err`, and the stream ends.
///
/// Large output is base64-decoded as it is read from the stream (so decoding overlaps the
/// next Receive). Stream text the server garbled is an [`Error::Parse`] after the output
/// before it; the command is then stopped as if dropped.
///
/// Dropping an unfinished command cancels it: Signal terminate is sent on a background
/// task that [`crate::Client::shutdown`] waits for.
///
/// When its shell is closed ([`crate::Shell::close`]) while it runs, the stream ends
/// with [`Error::State`] ("shell … is closed") after the output received before; the
/// shell's Delete ends the command on the server.
///
/// When its shell is disconnected ([`crate::Shell::disconnect`]), the stream ends with
/// [`Error::Disconnected`] after the output the server had sent, and no Signal goes out:
/// the command goes on running on the server, and [`crate::Shell::attach_command`] on a
/// connected shell (from this client or another) reads the rest.
pub struct Command {
    id: String,
    shell: Arc<ShellInner>,
    cancel: CancelHandle,
    /// The command's cancellation scope, which stdin's Sends honour.
    scope: Scope,
    flow: Arc<Flow>,
    terminated: Arc<AtomicBool>,
    finished: bool,
    /// Where output is decoded (see [`messages::decode_into`]).
    arena: BytesMut,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Command")
            .field("id", &self.id)
            .field("shell", &self.shell.id)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl Command {
    /// The CommandId.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The code page of the shell, for decoding output with [`super::text::decode`].
    pub fn codepage(&self) -> u32 {
        self.shell.codepage
    }

    /// Output received from the server and not yet read from this stream, in bytes.
    /// Bounded by the shell's output buffer plus one Receive response.
    pub fn buffered_bytes(&self) -> usize {
        self.flow.buffered.load(Ordering::SeqCst)
    }

    /// A cheap handle whose `cancel()` cancels this command (sync, idempotent).
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Cancels with reason User. The stream then ends with `Exit(Cancelled)`.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Sends bytes to the command's stdin (WinRS Send), in chunks that fit the envelope.
    ///
    /// It honours the command's cancellation ([`Command::cancel`], its deadline, its
    /// token, [`crate::Client::cancel_all`]): once the command is cancelled nothing more
    /// is sent, and a Send in flight is abandoned at once (the command is being
    /// terminated).
    ///
    /// # Errors
    /// [`Error::Cancelled`] when the command was cancelled before the next chunk went
    /// out: that chunk and the ones after it were not sent (those before were).
    /// [`Error::Abandoned`] (its [`Error::may_have_executed`] is true) when it was
    /// cancelled while a Send was in flight: that chunk may have reached the command's
    /// stdin. Transport errors or a fault (e.g. the command has ended: 2150858843).
    ///
    /// # Cancel safety
    /// A dropped future may have sent some chunks and not others.
    pub async fn send(&self, data: &[u8]) -> Result<()> {
        self.send_inner(data, false).await
    }

    /// Sends the last bytes (possibly none) and closes stdin (`End="true"`).
    ///
    /// Like [`Command::send`], it honours the command's cancellation.
    ///
    /// # Errors
    /// As [`Command::send`]: after [`Error::Cancelled`] stdin was not closed; after
    /// [`Error::Abandoned`] it may have been.
    ///
    /// # Cancel safety
    /// As [`Command::send`].
    pub async fn close_stdin(&self, data: &[u8]) -> Result<()> {
        self.send_inner(data, true).await
    }

    async fn send_inner(&self, data: &[u8], end: bool) -> Result<()> {
        let c = &self.shell.client;
        // base64 grows data by 4/3; keep each envelope well under MaxEnvelopeSize (and
        // the host's limit on requests).
        let max = (c.inner.request_envelope_limit().saturating_sub(4096) * 3 / 4).max(1024);
        let mut chunks: Vec<&[u8]> = data.chunks(max).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            if self.scope.is_cancelled() {
                // Nothing more goes to a command being terminated.
                return Err(Error::Cancelled {
                    reason: self.scope.cancelled().await,
                });
            }
            let env = self
                .shell
                .envelope(ns::action::SEND)
                .write(|w| messages::write_send(w, &self.id, chunk, end && i == last));
            // Set when the Send is first polled: from then it may be on the wire.
            let sent = AtomicBool::new(false);
            tokio::select! {
                biased;
                // Dropping the Send future closes its connection at once.
                reason = self.scope.cancelled() => {
                    return Err(if sent.load(Ordering::Relaxed) {
                        Error::Abandoned { reason }
                    } else {
                        Error::Cancelled { reason }
                    });
                }
                r = async {
                    sent.store(true, Ordering::Relaxed);
                    super::fast::exchange_ack(c, env).await
                } => r?,
            }
        }
        Ok(())
    }

    /// Sends a signal code (a URI of [`crate::soap::ns::signal`]).
    async fn signal(&self, code: &str) -> Result<()> {
        send_signal(&self.shell, &self.id, code).await
    }

    /// Sends Ctrl+C.
    ///
    /// # Errors
    /// Transport errors or a fault.
    ///
    /// # Cancel safety
    /// The signal may or may not have been delivered.
    pub async fn ctrl_c(&self) -> Result<()> {
        self.signal(ns::signal::CTRL_C).await
    }

    /// Sends Ctrl+Break.
    ///
    /// # Errors
    /// Transport errors or a fault.
    ///
    /// # Cancel safety
    /// The signal may or may not have been delivered.
    pub async fn ctrl_break(&self) -> Result<()> {
        self.signal(ns::signal::CTRL_BREAK).await
    }

    /// Sends Signal terminate. The stream then ends with the state the server reports.
    ///
    /// # Errors
    /// Transport errors or a fault.
    ///
    /// # Cancel safety
    /// The signal may or may not have been delivered.
    pub async fn terminate(&self) -> Result<()> {
        self.terminated.store(true, Ordering::SeqCst);
        self.signal(ns::signal::TERMINATE).await
    }

    /// Reads the stream to the end, collecting output, at most the client's
    /// [`crate::ClientBuilder::max_output`] bytes of it (64 MiB unless set).
    ///
    /// This inherent method takes precedence over `StreamExt::collect`; to collect the
    /// stream's items themselves, call that one by its path:
    /// `futures_util::StreamExt::collect::<Vec<_>>(command)`.
    ///
    /// # Errors
    /// The first error of the stream; [`Error::Cancelled`] if the command was cancelled;
    /// [`Error::OutputTooLarge`] once stdout and stderr together exceed the bound (the
    /// command is then stopped: Signal terminate goes out in the background, and
    /// [`crate::Client::shutdown`] waits for it).
    ///
    /// # Cancel safety
    /// Dropping the future drops the command, which cancels it.
    pub async fn collect(self) -> Result<super::Output> {
        let limit = self.shell.client.inner.max_output;
        self.collect_with_limit(limit).await
    }

    /// [`Command::collect`] with its own bound: at most `max_output` bytes of stdout and
    /// stderr together.
    ///
    /// # Errors
    /// As [`Command::collect`]; [`Error::OutputTooLarge`] past `max_output`.
    ///
    /// # Cancel safety
    /// As [`Command::collect`].
    pub async fn collect_with_limit(mut self, max_output: usize) -> Result<super::Output> {
        use futures_util::StreamExt as _;
        let mut out = super::Output {
            stdout: Vec::new(),
            stderr: Vec::new(),
            code: None,
            codepage: self.shell.codepage,
        };
        while let Some(ev) = self.next().await {
            let kept = out.stdout.len() + out.stderr.len();
            let (buf, chunk) = match ev? {
                CommandEvent::Stdout(b) => (&mut out.stdout, b),
                CommandEvent::Stderr(b) => (&mut out.stderr, b),
                CommandEvent::Exit(ExitStatus::Exited(code)) => {
                    out.code = Some(code);
                    continue;
                }
                CommandEvent::Exit(ExitStatus::ExitedWithoutCode) => continue,
                CommandEvent::Exit(ExitStatus::Cancelled { reason }) => {
                    return Err(Error::Cancelled { reason });
                }
            };
            if chunk.len() > max_output.saturating_sub(kept) {
                // Returning drops `self`, which stops the command.
                tracing::debug!(command = %self.id, limit = max_output, "output bound exceeded");
                return Err(Error::OutputTooLarge { limit: max_output });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

impl Stream for Command {
    type Item = Result<CommandEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match self.flow.poll_recv(cx) {
            Poll::Ready(Some(Item::Output(stream, text))) => {
                self.flow
                    .buffered
                    .fetch_sub(messages::decoded_len(&text), Ordering::SeqCst);
                self.flow.notify.notify_one();
                let Command { arena, .. } = &mut *self;
                match messages::decode_into(&text, arena) {
                    Ok(data) => Poll::Ready(Some(Ok(match stream {
                        StreamName::Stdout => CommandEvent::Stdout(data),
                        StreamName::Stderr => CommandEvent::Stderr(data),
                    }))),
                    Err(e) => {
                        // Output the server garbled: the error ends the stream, and the
                        // command is stopped as if dropped.
                        self.stop_driver();
                        self.finished = true;
                        Poll::Ready(Some(Err(e.into())))
                    }
                }
            }
            Poll::Ready(Some(Item::Event(item))) => {
                match &item {
                    Ok(CommandEvent::Stdout(b) | CommandEvent::Stderr(b)) => {
                        self.flow.buffered.fetch_sub(b.len(), Ordering::SeqCst);
                        self.flow.notify.notify_one();
                    }
                    Ok(CommandEvent::Exit(_)) | Err(_) => self.finished = true,
                }
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => {
                self.finished = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Command {
    /// Cancels the driver; [`crate::Client::shutdown`] waits for its Signal terminate
    /// (the driver is registered as a cancelled operation).
    fn stop_driver(&mut self) {
        self.cancel.cancel();
    }
}

impl Drop for Command {
    fn drop(&mut self) {
        if !self.finished {
            self.stop_driver();
        }
        self.flow.drop_receiver();
    }
}

async fn send_signal(shell: &ShellInner, id: &str, code: &str) -> Result<()> {
    let env = shell
        .envelope(ns::action::SIGNAL)
        .write(|w| messages::write_signal(w, id, code));
    super::fast::exchange_ack(&shell.client, env).await
}

enum Outcome {
    /// `Exited` or `ExitedWithoutCode`, as the server reported it.
    Exited(ExitStatus),
    Cancelled(CancelReason),
    Failed(Error),
    /// The shell is being disconnected: stop without a Signal (see `Shell::disconnect`).
    Disconnected,
}

struct Driver {
    shell: Arc<ShellInner>,
    id: String,
    scope: Scope,
    /// The hand-off to the stream, and the [`Flow`] it shares with it.
    tx: Sender,
    /// Registered with the client from the start until the final Signal's answer (see
    /// [`crate::Client::shutdown`]).
    registered: crate::operation::Registered,
    terminated: Arc<AtomicBool>,
}

impl Driver {
    async fn run(mut self) {
        let outcome = self.receive_loop().await;
        let shell = Arc::clone(&self.shell);
        let id = self.id.clone();
        // A disconnected shell's commands go on running: no Signal, whatever the outcome
        // (the server would refuse it anyway while the shell is disconnected).
        let disconnected = shell.disconnecting.is_cancelled();
        // After a normal finish MS-WSMV requires Signal terminate; after a cancel it stops
        // the process. Either way it goes out now, on a channel of its own.
        let signal = async {
            if disconnected {
                return;
            }
            match send_signal(&shell, &id, ns::signal::TERMINATE).await {
                Ok(()) => {}
                Err(e) if e.fault().is_some_and(|f| f.is_gone() || f.is_aborted()) => {}
                Err(e) => {
                    tracing::debug!(shell = %shell.id, command = %id, error = %e, "Signal terminate failed")
                }
            }
        };
        // From here until the Signal's answer, Client::shutdown waits for this task:
        // the token is taken before the final item goes out, so a caller that saw it
        // and then shuts down still waits for the Signal.
        let tracked = shell.client.inner.tracker.token();
        let signalling = shell.signals.token();
        match outcome {
            Outcome::Exited(status) => {
                // The normal end: Signal terminate first (MS-WSMV's order), then Exit.
                signal.await;
                self.tx.send(Item::Event(Ok(CommandEvent::Exit(status))));
            }
            Outcome::Cancelled(reason) => {
                tracing::debug!(shell = %shell.id, command = %id, %reason, "command cancelled");
                // The shell of `Client::run` is deleted here when the client cancels
                // everything: `cancel_all` waits for this driver, not for the caller's
                // task, which may never run again. Decided before the final item, so
                // that `run`'s own close (after that item) finds it closed.
                let delete = reason == CancelReason::Shutdown && shell.take_delete_with_command();
                // The final status does not wait for the server (MI_Operation_Cancel:
                // as soon as possible); the Signal is already on its way and tracked.
                self.tx
                    .send(Item::Event(Ok(CommandEvent::Exit(ExitStatus::Cancelled {
                        reason,
                    }))));
                signal.await;
                if delete {
                    shell.delete_in_place().await;
                }
            }
            Outcome::Failed(e) => {
                self.tx.send(Item::Event(Err(e)));
                signal.await;
            }
            Outcome::Disconnected => {
                drop(signal);
                tracing::debug!(shell = %shell.id, command = %id, "shell disconnected; command left running");
                self.tx.send(Item::Event(Err(Error::Disconnected {
                    shell_id: shell.id.clone(),
                    command_id: id.clone(),
                })));
            }
        }
        // Release the shell before the tracker token so a pending background Delete is
        // registered with the tracker first.
        drop(self.shell);
        drop(shell);
        drop(signalling);
        drop(tracked);
        drop(self.registered);
    }

    /// The error that ends the stream of a command whose shell was closed
    /// ([`crate::Shell::close`]) while it ran.
    fn shell_closed(&self) -> Error {
        Error::State(format!(
            "shell {} is closed, which ended command {}",
            self.shell.id, self.id
        ))
    }

    async fn receive_loop(&mut self) -> Outcome {
        let bound = self.shell.output_buffer;
        let c = self.shell.client.clone();
        // Keeps the shell alive while we poll (as winrs.exe does).
        let keepalive = [OptionItem::new("WSMAN_CMDSHELL_OPTION_KEEPALIVE", "TRUE")];
        // The Receive's SequenceId ([MS-WSMV] §3.1.4.14, as Windows' clients send it):
        // 0 first, one more after each ReceiveResponse taken. A Receive sent again after
        // a lost response (Robust Connections) carries the same number.
        let mut sequence: u64 = 0;
        loop {
            // Backpressure: no new Receive while the consumer is behind.
            while self.tx.0.buffered.load(Ordering::SeqCst) > bound {
                tokio::select! {
                    biased;
                    reason = self.scope.cancelled() => return Outcome::Cancelled(reason),
                    () = self.shell.disconnecting.cancelled() => return Outcome::Disconnected,
                    () = self.shell.deleting.cancelled() => return Outcome::Failed(self.shell_closed()),
                    _ = self.tx.0.notify.notified() => {}
                }
            }
            // Disconnecting: no new Receive. The one in flight was let finish (the server
            // answers it with what it has before it completes the Disconnect).
            if self.shell.disconnecting.is_cancelled() {
                return Outcome::Disconnected;
            }
            // Closed: its Delete ends the command on the server; no new Receive.
            if self.shell.deleting.is_cancelled() {
                return Outcome::Failed(self.shell_closed());
            }
            let env = crate::soap::Envelope {
                options: &keepalive,
                ..self.shell.envelope(ns::action::RECEIVE)
            }
            .write(|w| messages::write_receive(w, &self.id, Some(sequence)));
            let result = tokio::select! {
                biased;
                // Dropping the Receive future closes its connection at once.
                reason = self.scope.cancelled() => return Outcome::Cancelled(reason),
                // The shell is being closed: its Delete ends the command on the server,
                // and a Receive would only be refused (the shell is gone).
                () = self.shell.deleting.cancelled() => return Outcome::Failed(self.shell_closed()),
                r = super::fast::exchange_receive(&c, env, &self.id) => r,
            };
            let received = match result {
                Ok(received) => received,
                Err(e) => {
                    if self.shell.disconnecting.is_cancelled()
                        && e.fault().is_some()
                        && !self.scope.is_cancelled()
                    {
                        // The Receive crossed the Disconnect (the server refuses requests
                        // to a disconnected shell): it took no output.
                        return Outcome::Disconnected;
                    }
                    if let Some(f) = e.fault() {
                        if f.is_timed_out() {
                            continue; // the long poll ended without news: poll again
                        }
                        if (f.is_gone() || f.is_aborted())
                            && (self.scope.is_cancelled() || self.terminated.load(Ordering::SeqCst))
                        {
                            let reason = if self.scope.is_cancelled() {
                                self.scope.cancelled().await
                            } else {
                                CancelReason::User
                            };
                            return Outcome::Cancelled(reason);
                        }
                    }
                    return Outcome::Failed(e);
                }
            };
            sequence += 1;
            for (stream, text) in received.chunks {
                self.tx
                    .0
                    .buffered
                    .fetch_add(messages::decoded_len(&text), Ordering::SeqCst);
                // Small chunks are decoded here, so the response they came in is freed
                // at once; large ones go to the consumer still in base64.
                let item = if text.len() < DECODE_LATER {
                    match messages::decode_into(&text, &mut BytesMut::new()) {
                        Ok(data) => Item::Event(Ok(match stream {
                            StreamName::Stdout => CommandEvent::Stdout(data),
                            StreamName::Stderr => CommandEvent::Stderr(data),
                        })),
                        Err(e) => return Outcome::Failed(e.into()),
                    }
                } else {
                    Item::Output(stream, text)
                };
                self.tx.send(item);
            }
            if let Some(status) = received.done {
                return Outcome::Exited(status);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stdout(b: &'static [u8]) -> Item {
        Item::Event(Ok(CommandEvent::Stdout(Bytes::from_static(b))))
    }

    fn text(item: Option<Item>) -> Option<Bytes> {
        match item {
            Some(Item::Event(Ok(CommandEvent::Stdout(b)))) => Some(b),
            Some(_) => panic!("another item"),
            None => None,
        }
    }

    #[test]
    fn the_hand_off_keeps_order_ends_after_the_driver_and_drops_for_a_gone_stream() {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let flow = Arc::new(Flow::default());
        let tx = Sender(Arc::clone(&flow));
        assert!(flow.poll_recv(&mut cx).is_pending());
        tx.send(stdout(b"a"));
        tx.send(stdout(b"b"));
        // The driver ends: what it sent still comes, in order, then the end.
        drop(tx);
        let Poll::Ready(first) = flow.poll_recv(&mut cx) else {
            panic!("an item")
        };
        assert_eq!(text(first).as_deref(), Some(&b"a"[..]));
        let Poll::Ready(second) = flow.poll_recv(&mut cx) else {
            panic!("an item")
        };
        assert_eq!(text(second).as_deref(), Some(&b"b"[..]));
        assert!(matches!(flow.poll_recv(&mut cx), Poll::Ready(None)));

        // The stream is gone: what it did not read, and what comes later, is dropped.
        let flow = Arc::new(Flow::default());
        let tx = Sender(Arc::clone(&flow));
        tx.send(stdout(b"unread"));
        flow.drop_receiver();
        tx.send(stdout(b"later"));
        assert!(flow.queue().items.is_empty());
    }

    #[tokio::test]
    async fn the_stream_is_woken_by_an_item_from_another_task() {
        let flow = Arc::new(Flow::default());
        let tx = Sender(Arc::clone(&flow));
        let reader = tokio::spawn({
            let flow = Arc::clone(&flow);
            async move { std::future::poll_fn(|cx| flow.poll_recv(cx)).await }
        });
        tokio::task::yield_now().await;
        tx.send(stdout(b"x"));
        let got = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("woken")
            .unwrap();
        assert_eq!(text(got).as_deref(), Some(&b"x"[..]));
    }
}
