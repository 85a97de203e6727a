//! `Pipeline`: a PowerShell pipeline in a runspace pool as a `Stream` of [`PsEvent`]s
//! ending in one [`PipelineEnd`] ([MS-PSRP] §3.1.4.4-3.1.4.6).
//!
//! Starting: a Command whose CommandId is the pipeline id and whose `rsp:Arguments`
//! hold CREATE_PIPELINE (more fragments follow on the pipeline's stdin); input objects
//! go as PIPELINE_INPUT and END_OF_PIPELINE_INPUT on stdin. A driver Receives the
//! pipeline's `stdout`, reassembles messages, answers host calls and forwards the
//! records: in the stream's own polls while its consumer waits on it, on a task of its
//! own once it has work while the consumer is away (see `driver::Runner`), so a small
//! pipeline costs no task hop. Cancelling follows `MI_Operation_Cancel`: the Receive in flight is
//! abandoned, the stop signal (`powershell/signal/crtl_c`, §3.1.5.3.9) goes out at once
//! on another connection, what was received is still delivered, then
//! `State(Stopped)`.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wsman_protocol::psrp::messages::{
    Argument, Command, CreatePipeline, PipelineResultTypes, PowerShell, end_of_pipeline_input,
    pipeline_input,
};
use wsman_protocol::psrp::{Destination, Message, MessageType, PsValue};

use super::driver::{Driver, Item, Runner};
use super::event::{Invocation, PipelineEnd, PsEvent};
use super::pool::PoolInner;
use super::wire::{self, Input};
use crate::error::{Error, Result};
use crate::operation::{CancelHandle, Scope};
use crate::soap::envelope::OptionItem;
use crate::soap::ns;

/// The default number of events buffered for a slow consumer before Receives pause.
pub const DEFAULT_EVENT_BUFFER: usize = 1024;

/// Builds a pipeline: commands piped into each other, statements, parameters, input.
///
/// ```no_run
/// # async fn f(pool: tokio_winrm::psrp::RunspacePool) -> tokio_winrm::Result<()> {
/// let services = pool
///     .pipeline()
///     .command("Get-Service")
///     .param("Name", "WinRM")
///     .command("Select-Object") // piped: Get-Service -Name WinRM | Select-Object -First 1
///     .param("First", 1)
///     .invoke()
///     .await?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct PipelineBuilder {
    pool: Arc<PoolInner>,
    statements: Vec<Vec<Command>>,
    input: Option<Vec<PsValue>>,
    streaming_input: bool,
    error: Option<Error>,
    deadline: Option<Duration>,
    token: Option<CancellationToken>,
    buffer: usize,
    /// A cleanup's pipeline: the client's own cancel (`cancel_all`, its token) does not
    /// stop it; its deadline bounds it.
    outlives_client: bool,
}

impl std::fmt::Debug for PipelineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineBuilder")
            .field("pool", &self.pool.id)
            .field("statements", &self.statements.len())
            .finish_non_exhaustive()
    }
}

impl PipelineBuilder {
    pub(crate) fn new(pool: Arc<PoolInner>) -> Self {
        PipelineBuilder {
            pool,
            statements: vec![Vec::new()],
            input: None,
            streaming_input: false,
            error: None,
            deadline: None,
            token: None,
            buffer: DEFAULT_EVENT_BUFFER,
            outlives_client: false,
        }
    }

    fn last(&mut self, what: &str) -> Option<&mut Command> {
        let last = self.statements.last_mut().and_then(|s| s.last_mut());
        if last.is_none() && self.error.is_none() {
            self.error = Some(Error::State(format!(
                "{what} needs a command first: call .command() or .script() before it"
            )));
        }
        last
    }

    /// Adds a command (a cmdlet, function or program by name), piped from the commands
    /// before it in the statement, as PowerShell's `AddCommand` does.
    pub fn command(mut self, name: impl Into<String>) -> Self {
        self.current().push(Command::new(name));
        self
    }

    /// Adds a script block's text as a command (`AddScript`): `.script("Get-Date; 1 + 1")`.
    pub fn script(mut self, text: impl Into<String>) -> Self {
        self.current().push(Command::script(text));
        self
    }

    fn current(&mut self) -> &mut Vec<Command> {
        if self.statements.is_empty() {
            self.statements.push(Vec::new());
        }
        let last = self.statements.len() - 1;
        &mut self.statements[last]
    }

    /// Starts a new statement (`AddStatement`): the next command is not piped from the
    /// previous ones; its output follows theirs.
    pub fn statement(mut self) -> Self {
        if self.statements.last().is_some_and(|s| !s.is_empty()) {
            self.statements.push(Vec::new());
        }
        self
    }

    /// Adds `-name value` to the last command.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<PsValue>) -> Self {
        let arg = Argument::named(name, value);
        if let Some(c) = self.last("param") {
            c.args.push(arg);
        }
        self
    }

    /// Adds `-name value` to the last command, the value serialized with serde
    /// ([`to_value`](crate::psrp::to_value)); a value that cannot be serialized fails
    /// `start()`.
    pub fn param_as<T: Serialize + ?Sized>(mut self, name: impl Into<String>, value: &T) -> Self {
        match wsman_protocol::psrp::to_value(value) {
            Ok(v) => self.param(name, v),
            Err(e) => {
                self.error.get_or_insert(Error::Psrp(e));
                self
            }
        }
    }

    /// Adds the switch `-name` to the last command.
    pub fn switch(mut self, name: impl Into<String>) -> Self {
        let arg = Argument::switch(name);
        if let Some(c) = self.last("switch") {
            c.args.push(arg);
        }
        self
    }

    /// Adds a positional argument to the last command.
    pub fn arg(mut self, value: impl Into<PsValue>) -> Self {
        let arg = Argument::positional(value);
        if let Some(c) = self.last("arg") {
            c.args.push(arg);
        }
        self
    }

    /// Merges the last command's error stream into the output (`2>&1`): error records
    /// arrive as [`PsEvent::Output`] objects.
    pub fn merge_error_to_output(mut self) -> Self {
        if let Some(c) = self.last("merge_error_to_output") {
            *c = c.clone().merge_error_to_output();
        }
        self
    }

    /// Merges every stream of the last command (error, warning, verbose, debug,
    /// information) into the output (`*>&1`; protocol 2.2 and later for all but the
    /// error stream).
    pub fn merge_all_to_output(mut self) -> Self {
        if let Some(c) = self.last("merge_all_to_output") {
            let mut m = c.clone().merge_error_to_output();
            m.merge_warning = PipelineResultTypes::Output;
            m.merge_verbose = PipelineResultTypes::Output;
            m.merge_debug = PipelineResultTypes::Output;
            m.merge_information = PipelineResultTypes::Output;
            *c = m;
        }
        self
    }

    /// Merges what the commands before the last one in its statement left unmerged
    /// (their output and errors) into its input (`MergePreviousResults` Output | Error,
    /// PowerShell's `MergeUnclaimedPreviousCommandResults`, [MS-PSRP] §2.2.3.12).
    pub fn merge_previous_results(mut self) -> Self {
        if let Some(c) = self.last("merge_previous_results") {
            c.merge_previous_results = PipelineResultTypes::OUTPUT_AND_ERROR;
        }
        self
    }

    /// Input objects for the first command (`$input`, pipeline-bound parameters): sent
    /// by `start()` after the pipeline is created, then END_OF_PIPELINE_INPUT.
    pub fn input<I, V>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<PsValue>,
    {
        self.input
            .get_or_insert_with(Vec::new)
            .extend(values.into_iter().map(Into::into));
        self
    }

    /// Input objects serialized with serde, as [`PipelineBuilder::input`].
    pub fn input_as<T: Serialize>(mut self, values: impl IntoIterator<Item = T>) -> Self {
        let mut out = Vec::new();
        for v in values {
            match wsman_protocol::psrp::to_value(&v) {
                Ok(v) => out.push(v),
                Err(e) => {
                    self.error.get_or_insert(Error::Psrp(e));
                    return self;
                }
            }
        }
        self.input(out)
    }

    /// The caller streams the input: the pipeline waits for
    /// [`Pipeline::send_input`] calls and [`Pipeline::end_input`].
    pub fn streaming_input(mut self) -> Self {
        self.streaming_input = true;
        self
    }

    /// Cancels the pipeline (reason Timeout) when `d` has passed since `start()`.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }

    /// Cancels the pipeline (reason User) when `token` is cancelled.
    pub fn cancellation(mut self, token: CancellationToken) -> Self {
        self.token = Some(token);
        self
    }

    /// How many events may wait for the consumer before the next Receive waits
    /// (default [`DEFAULT_EVENT_BUFFER`]).
    pub fn event_buffer(mut self, events: usize) -> Self {
        self.buffer = events.max(1);
        self
    }

    /// Makes this a cleanup's pipeline (the removal of a stopped upload's temporary
    /// file): it runs even when the client's own token is cancelled
    /// ([`Client::cancel_all`](crate::Client::cancel_all)), which is when cleanups run.
    /// Give it a deadline.
    pub(crate) fn outliving_client(mut self) -> Self {
        self.outlives_client = true;
        self
    }

    /// Starts the pipeline: waits for a free runspace of the pool, sends the Command
    /// with CREATE_PIPELINE ([MS-PSRP] §3.1.5.3.4), the input given to
    /// [`PipelineBuilder::input`], and starts the Receive loop.
    ///
    /// # Errors
    /// [`Error::State`] for a builder without commands, or a parameter before any
    /// command, or when the pool was closed ([`RunspacePool::close`](super::RunspacePool::close));
    /// [`Error::Psrp`] for a value serde could not serialize; a fault on the
    /// Command or a Send; [`Error::Cancelled`]; transport errors.
    ///
    /// # Cancel safety
    /// Dropping the future while it waits for a runspace sends nothing. Dropped after
    /// the Command went out, the pipeline may be running on the server: the stop signal
    /// is sent for it on a background task.
    pub async fn start(mut self) -> Result<Pipeline> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.statements.retain(|s| !s.is_empty());
        if self.statements.is_empty() {
            return Err(Error::State(
                "a pipeline needs at least one command or script".into(),
            ));
        }
        let pool = Arc::clone(&self.pool);
        let c = pool.shell.client.clone();
        let deadline = self.deadline.map(|d| Instant::now() + d);
        let scope = if self.outlives_client {
            Scope::new(&CancellationToken::new(), self.token, deadline)
        } else {
            c.scope(self.token, deadline)
        };
        let permit = tokio::select! {
            biased;
            reason = scope.cancelled() => return Err(Error::Cancelled { reason }),
            p = Arc::clone(&pool.slots).acquire_owned() => p.map_err(|_| PoolInner::closed_error())?,
        };
        let id = Uuid::new_v4();
        let has_input = self.input.is_some() || self.streaming_input;
        let mut powershell = PowerShell::new(Vec::new());
        powershell.statements = std::mem::take(&mut self.statements);
        let mut create = CreatePipeline::new(powershell);
        create.no_input = !has_input;
        create.host_info = pool.host_info.clone();
        // Written directly (the text `to_value` would serialize to, without the tree).
        let msg = Message::new(
            Destination::Server,
            MessageType::CreatePipeline,
            pool.id,
            Some(id),
            create.to_clixml(pool.version).into_bytes(),
        );
        let mut payloads = pool.pack(&[msg]).into_iter();
        let first = payloads.next().unwrap_or_default();
        let options = [OptionItem::new("WINRS_SKIP_CMD_SHELL", "FALSE")];
        let env = crate::soap::Envelope {
            options: &options,
            ..pool.shell.envelope(ns::action::COMMAND)
        }
        .write(|w| wire::write_command(w, id, &first));
        // From here the pipeline may exist on the server, and until `Pipeline::drive`
        // owns it `guard` does: if this future is dropped or cancelled first, the guard
        // finishes the Command on a cleanup task and stops what it created.
        let mut guard = StartGuard {
            pool: Arc::clone(&pool),
            state: StartState::Sending(Box::pin({
                let c = c.clone();
                // The CommandId read straight from the response's events (the tree
                // reader for anything unusual, faults included).
                async move { crate::shell::fast::exchange_command_id(&c, env).await }
            })),
        };
        let command_id = tokio::select! {
            biased;
            reason = scope.cancelled() => return Err(Error::Cancelled { reason }),
            r = guard.command() => match r {
                // The Command crossed the pool's close (and its Delete).
                Err(_) if pool.is_closed() => return Err(PoolInner::closed_error()),
                r => r?,
            },
        };
        guard.state = StartState::Created(command_id.clone());
        tracing::debug!(pool = %pool.id, pipeline = %id, command = %command_id, "pipeline created");
        // The rest of CREATE_PIPELINE goes on the pipeline's stdin before anything else.
        let rest: Vec<Vec<u8>> = payloads.collect();
        let sent = tokio::select! {
            biased;
            reason = scope.cancelled() => Err(Error::Cancelled { reason }),
            r = pool.send_payloads(Input::Stdin, Some(&command_id), rest) => r,
        };
        // The pipeline exists on the server: from here on, dropping `pipeline` stops it.
        // Without input its Receive loop starts in the caller's polls (see `Runner`);
        // with input it gets a task at once, so that output is received while the
        // caller sends.
        guard.state = StartState::Owned;
        let pipeline =
            Pipeline::drive(pool, id, command_id, scope, permit, self.buffer, !has_input);
        sent?;
        if let Some(values) = self.input {
            pipeline.send_input_messages(values, true).await?;
        } else if !has_input {
            // The first Receive goes out now, as a spawned driver's would.
            std::future::poll_fn(|cx| {
                let _ = pipeline.runner.drive(cx, |_, _| Poll::Ready(()));
                Poll::Ready(())
            })
            .await;
        }
        Ok(pipeline)
    }

    /// Starts the pipeline and collects everything it yields.
    ///
    /// Called from outside the workers of a multi-thread runtime (in `block_on`, where
    /// `#[tokio::main]` runs `main`'s body), the whole pipeline runs on one task of the
    /// runtime, so that the caller's thread is woken once, with the result, rather than
    /// for each of the pipeline's requests.
    ///
    /// # Errors
    /// As [`PipelineBuilder::start`] and [`Pipeline::invoke`].
    ///
    /// # Cancel safety
    /// Dropping the future stops the pipeline (the stop signal goes out on a background
    /// task).
    pub async fn invoke(self) -> Result<Invocation> {
        off_caller_thread(async move { self.start().await?.invoke().await }).await
    }

    /// Starts the pipeline and collects its output deserialized into `T` with serde.
    ///
    /// As [`PipelineBuilder::invoke`], called from outside the workers of a
    /// multi-thread runtime the whole pipeline runs on one task of the runtime: each
    /// output object is then read into `T` on the thread that received it, rather than
    /// handed to the caller's thread (a hand-off and a wake-up per Receive, and the
    /// object's bytes moved between the threads' caches), which is why `T` must be
    /// `Send + 'static`. [`Pipeline::invoke_as`] on a started pipeline has no such
    /// bound and reads on the caller's thread.
    ///
    /// # Errors
    /// As [`PipelineBuilder::start`] and [`Pipeline::invoke_as`].
    ///
    /// # Cancel safety
    /// As [`PipelineBuilder::invoke`].
    pub async fn invoke_as<T: DeserializeOwned + Send + 'static>(self) -> Result<Invocation<T>> {
        off_caller_thread(async move { self.start().await?.invoke_as().await }).await
    }
}

/// Runs `work`, a whole pipeline (its Command, Receives and events), on a task of the
/// runtime when the caller is not a task of a multi-thread runtime, e.g. the thread in
/// `block_on` (where `#[tokio::main]` runs `main`'s body). The connections' tasks run
/// on the runtime's workers: every answer would otherwise wake the caller's thread and
/// every request a worker (a kernel wake-up each, costlier than the rest of a small
/// pipeline); so the caller is woken once, with the result. Elsewhere it runs in place.
/// Dropping the future aborts the task, which drops (so stops) the pipeline.
async fn off_caller_thread<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    let runtime = tokio::runtime::Handle::current();
    if tokio::task::try_id().is_some()
        || runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread
    {
        return work.await;
    }
    struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let mut task = AbortOnDrop(runtime.spawn(work));
    match (&mut task.0).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Aborted by the runtime's shutdown.
        Err(_) => Err(Error::Cancelled {
            reason: crate::CancelReason::Shutdown,
        }),
    }
}

/// The Command of a pipeline being started, until [`Pipeline::drive`] owns the
/// pipeline. Dropped before that (the caller dropped `start()`'s future, or it was
/// cancelled), it stops on a cleanup task whatever the Command created on the server:
/// a Command still in flight is finished first (abandoning it would leave the server to
/// create the pipeline with no one to stop it), then the PSRP stop signal and the
/// Signal terminate go to the command. A Command that failed created nothing.
struct StartGuard {
    pool: Arc<PoolInner>,
    state: StartState,
}

/// The Command's exchange, answering the CommandId.
type CommandFuture = Pin<Box<dyn Future<Output = Result<String>> + Send>>;

enum StartState {
    /// The Command's exchange, not yet answered.
    Sending(CommandFuture),
    /// The server created the command with this id.
    Created(String),
    /// Answered with an error, or owned by the `Pipeline`: nothing to clean up.
    Owned,
}

impl StartGuard {
    /// Awaits the Command's answer; cancel safe (the exchange stays in the guard).
    async fn command(&mut self) -> Result<String> {
        let StartState::Sending(exchange) = &mut self.state else {
            return Err(Error::State(
                "the pipeline's Command was already answered".into(),
            ));
        };
        let r = exchange.as_mut().await;
        self.state = StartState::Owned;
        r
    }
}

impl Drop for StartGuard {
    fn drop(&mut self) {
        let command = match std::mem::replace(&mut self.state, StartState::Owned) {
            StartState::Owned => return,
            StartState::Sending(exchange) => Err(exchange),
            StartState::Created(id) => Ok(id),
        };
        let pool = Arc::clone(&self.pool);
        let client = pool.shell.client.clone();
        let signalling = pool.shell.signals.token();
        client.spawn_cleanup(async move {
            let _signalling = signalling;
            let command_id = match command {
                Ok(id) => id,
                Err(exchange) => match exchange.await {
                    Ok(id) => id,
                    Err(_) => return,
                },
            };
            if pool.is_closed() {
                return; // the pool's Delete stops it
            }
            tracing::debug!(pool = %pool.id, command = %command_id, "stopping a pipeline whose start was abandoned");
            for code in [wire::STOP_SIGNAL, ns::signal::TERMINATE] {
                if let Err(e) = super::driver::send_signal(&pool, &command_id, code).await {
                    tracing::debug!(pool = %pool.id, command = %command_id, code, error = %e, "signal failed");
                }
            }
        });
    }
}

/// A running pipeline: a `Stream<Item = Result<PsEvent>>` of output objects and
/// records in the order the server sent them, then exactly one [`PsEvent::State`], then
/// `None`. A transport error, a fault, or a message that cannot be read is yielded once
/// as `Err` instead of the final state, and the stream ends (the pipeline is then
/// stopped on the server).
///
/// Dropping an unfinished pipeline cancels it: the stop signal goes out on a background
/// task that [`crate::Client::shutdown`] waits for.
pub struct Pipeline {
    id: Uuid,
    /// The CommandId the server gave the pipeline (Windows echoes `id`).
    command_id: String,
    pool: Arc<PoolInner>,
    rx: mpsc::Receiver<Result<Item>>,
    /// Runs the driver: in this stream's polls, or on a task of its own.
    runner: Arc<Runner>,
    /// Shared with the driver: forward output objects unread ([`Item::RawOutputs`]).
    raw_output: Arc<AtomicBool>,
    /// Shared with the driver: the event buffer's room for those objects, given back
    /// as batches are taken.
    raw_room: Arc<Semaphore>,
    /// Objects of a batch taken by [`Stream::poll_next`] and not yet yielded.
    raw_pending: VecDeque<bytes::Bytes>,
    cancel: CancelHandle,
    finished: bool,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("id", &self.id)
            .field("pool", &self.pool.id)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    pub(crate) fn drive(
        pool: Arc<PoolInner>,
        id: Uuid,
        command_id: String,
        scope: Scope,
        permit: OwnedSemaphorePermit,
        buffer: usize,
        inline: bool,
    ) -> Pipeline {
        let (tx, rx) = mpsc::channel(buffer);
        let cancel = scope.handle();
        // Counted from here: once cancelled (or dropped), `Client::shutdown` waits for its
        // stop signal, whether or not the driver has run since (a cancel moves an inline
        // driver to a task of its own at once: see `Runner`).
        let registered = pool.shell.client.register_operation(&scope);
        let raw_output = Arc::new(AtomicBool::new(false));
        let raw_room = Arc::new(Semaphore::new(buffer));
        let driver = Driver {
            raw_output: Arc::clone(&raw_output),
            raw_room: Arc::clone(&raw_room),
            pool: Arc::clone(&pool),
            id,
            command_id: command_id.clone(),
            scope,
            tx,
            registered: Some(registered),
            permit: Some(permit),
        };
        let runner = Runner::start(driver, inline);
        Pipeline {
            id,
            command_id,
            pool,
            rx,
            runner,
            raw_output,
            raw_room,
            raw_pending: VecDeque::new(),
            cancel,
            finished: false,
        }
    }

    /// The pipeline id (`PID`; also its CommandId).
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// A cheap handle whose `cancel()` stops this pipeline (sync, idempotent).
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Stops the pipeline with reason User: the stream delivers what was received, then
    /// ends with `State(Stopped { reason: Some(User) })`.
    pub fn cancel(&self) {
        self.cancel.cancel();
        // The stop signal goes out now, whether or not the stream is polled.
        self.runner.hand_off();
    }

    /// Sends one input object (PIPELINE_INPUT, [MS-PSRP] §2.2.2.17) to a pipeline built
    /// with [`PipelineBuilder::streaming_input`]. The Send's answer is awaited, so a
    /// loop of `send_input` runs at the server's pace.
    ///
    /// # Errors
    /// [`Error::Cancelled`] once this client stopped the pipeline (its handle, token,
    /// deadline, [`crate::Client::cancel_all`]); a fault (e.g. the pipeline has ended:
    /// 2150858843) or transport errors.
    ///
    /// # Cancel safety
    /// A dropped future may or may not have delivered the object.
    pub async fn send_input(&self, value: impl Into<PsValue>) -> Result<()> {
        self.send_inputs([value.into()]).await
    }

    /// Sends one input object serialized with serde.
    ///
    /// # Errors
    /// [`Error::Psrp`] when `value` cannot be serialized; as [`Pipeline::send_input`].
    ///
    /// # Cancel safety
    /// As [`Pipeline::send_input`].
    pub async fn send_input_as<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        self.send_input(wsman_protocol::psrp::to_value(value)?)
            .await
    }

    /// Sends input objects, as many per Send as fit in an envelope.
    ///
    /// # Errors
    /// As [`Pipeline::send_input`].
    ///
    /// # Cancel safety
    /// A dropped future may have delivered some of the objects.
    pub async fn send_inputs(&self, values: impl IntoIterator<Item = PsValue>) -> Result<()> {
        self.send_input_messages(values, false).await
    }

    /// Input objects, and END_OF_PIPELINE_INPUT after them when `end`, packed into as
    /// few Sends as fit (as Windows' clients send them).
    async fn send_input_messages(
        &self,
        values: impl IntoIterator<Item = PsValue>,
        end: bool,
    ) -> Result<()> {
        let mut messages: Vec<Message> = values
            .into_iter()
            .map(|v| pipeline_input(self.pool.id, self.id, &v))
            .collect();
        if end {
            messages.push(end_of_pipeline_input(self.pool.id, self.id));
        }
        if messages.is_empty() {
            return Ok(());
        }
        let payloads = self.pool.pack(&messages);
        self.send_while_running(payloads).await
    }

    /// Sends input payloads unless the pipeline was stopped by this client: then
    /// [`Error::Cancelled`] before anything more is sent, and also when a Send's fault
    /// is the server's answer to a pipeline the stop already ended (2150858843, no such
    /// command), which would otherwise reach the caller instead of the cancel.
    async fn send_while_running(&self, payloads: Vec<Vec<u8>>) -> Result<()> {
        let cancelled = || Error::Cancelled {
            reason: self
                .cancel
                .reason()
                .unwrap_or(crate::CancelReason::Shutdown),
        };
        if self.cancel.is_cancelled() {
            return Err(cancelled());
        }
        match self
            .pool
            .send_payloads(Input::Stdin, Some(&self.command_id), payloads)
            .await
        {
            Err(e) if e.fault().is_some() && self.cancel.is_cancelled() => Err(cancelled()),
            other => other,
        }
    }

    /// Ends the input (END_OF_PIPELINE_INPUT, [MS-PSRP] §2.2.2.18).
    ///
    /// # Errors
    /// As [`Pipeline::send_input`].
    ///
    /// # Cancel safety
    /// A dropped future may or may not have ended the input.
    pub async fn end_input(&self) -> Result<()> {
        let payloads = self
            .pool
            .pack(&[end_of_pipeline_input(self.pool.id, self.id)]);
        self.send_while_running(payloads).await
    }

    /// Reads the stream to the end and collects what it yielded.
    ///
    /// # Errors
    /// The first error of the stream; [`Error::PipelineFailed`] with the terminating
    /// error record; [`Error::Cancelled`] when this client stopped it;
    /// [`Error::PipelineStopped`] when the server did.
    ///
    /// # Cancel safety
    /// Dropping the future drops the pipeline, which stops it.
    pub async fn invoke(mut self) -> Result<Invocation> {
        use futures_util::StreamExt as _;
        let mut out = Invocation::default();
        while let Some(ev) = self.next().await {
            match ev? {
                PsEvent::Output(v) => out.output.push(v),
                PsEvent::Error(e) => out.errors.push(e),
                PsEvent::Warning(r) => out.warnings.push(r),
                PsEvent::Verbose(r) => out.verbose.push(r),
                PsEvent::Debug(r) => out.debug.push(r),
                PsEvent::Information(r) => out.information.push(r),
                PsEvent::Progress(_) => {}
                PsEvent::State(end) => return end_result(end).map(|()| out),
            }
        }
        Err(Error::State(
            "the pipeline's stream ended without a final state".into(),
        ))
    }

    /// [`Pipeline::invoke`], with each output object deserialized into `T`
    /// ([`from_value`](crate::psrp::from_value)).
    ///
    /// # Errors
    /// As [`Pipeline::invoke`]; [`Error::Psrp`] for an object that does not fit `T`, its
    /// message naming the object's place in the output and its PowerShell type.
    ///
    /// # Cancel safety
    /// As [`Pipeline::invoke`].
    pub async fn invoke_as<T: DeserializeOwned>(mut self) -> Result<Invocation<T>> {
        // From here on the driver leaves output objects unread: each is read straight
        // into a `T` as it arrives (no `PsValue` tree; see `clixml::from_str_as`).
        self.raw_output.store(true, Ordering::Relaxed);
        let mut out = Invocation {
            output: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            verbose: Vec::new(),
            debug: Vec::new(),
            information: Vec::new(),
        };
        // The first object that does not fit `T`: reported once the pipeline ended
        // well (a failed pipeline's error comes first, as `invoke`'s).
        let mut misfit = None;
        let mut index = 0usize;
        while let Some(item) = std::future::poll_fn(|cx| self.poll_item(cx)).await {
            let ev = match item {
                Err(e) => {
                    self.finished = true;
                    return Err(e);
                }
                Ok(Item::RawOutputs(batch)) => {
                    // Back to the stream once the batch is read: the driver waits for
                    // that here rather than move to a task.
                    self.runner.busy();
                    self.raw_room.add_permits(batch.len());
                    for data in batch {
                        let i = index;
                        index += 1;
                        if misfit.is_some() {
                            continue;
                        }
                        let read = raw_text(&data).and_then(|text| {
                            match wsman_protocol::psrp::clixml::from_str_as::<T>(text) {
                                Ok(v) => Ok(Ok(v)),
                                // Again through the owned value: its error (a CLIXML one
                                // ends the pipeline, as the driver's reading would) or
                                // the misfit with its place and type.
                                Err(_) => {
                                    let v = wsman_protocol::psrp::clixml::from_str(text)?;
                                    Ok(wsman_protocol::psrp::from_value::<T>(&v)
                                        .map_err(|e| located(e, i, &v)))
                                }
                            }
                        });
                        match read {
                            Ok(Ok(v)) => out.output.push(v),
                            Ok(Err(e)) => misfit = Some(e),
                            Err(e) => {
                                self.stop_driver();
                                self.finished = true;
                                return Err(e.into());
                            }
                        }
                    }
                    continue;
                }
                Ok(Item::Event(ev)) => ev,
            };
            match ev {
                PsEvent::Output(v) => {
                    let i = index;
                    index += 1;
                    if misfit.is_none() {
                        match wsman_protocol::psrp::from_value::<T>(&v) {
                            Ok(t) => out.output.push(t),
                            Err(e) => misfit = Some(located(e, i, &v)),
                        }
                    }
                }
                PsEvent::Error(e) => out.errors.push(e),
                PsEvent::Warning(r) => out.warnings.push(r),
                PsEvent::Verbose(r) => out.verbose.push(r),
                PsEvent::Debug(r) => out.debug.push(r),
                PsEvent::Information(r) => out.information.push(r),
                PsEvent::Progress(_) => {}
                PsEvent::State(end) => {
                    self.finished = true;
                    end_result(end)?;
                    return match misfit {
                        Some(e) => Err(e),
                        None => Ok(out),
                    };
                }
            }
        }
        self.finished = true;
        Err(Error::State(
            "the pipeline's stream ended without a final state".into(),
        ))
    }

    /// The next item from the driver, which this poll drives while it is inline.
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Item>>> {
        let Pipeline { runner, rx, .. } = self;
        runner.drive(cx, |cx, register| {
            if register {
                return rx.poll_recv(cx);
            }
            match rx.try_recv() {
                Ok(item) => Poll::Ready(Some(item)),
                Err(mpsc::error::TryRecvError::Empty) => Poll::Pending,
                Err(mpsc::error::TryRecvError::Disconnected) => Poll::Ready(None),
            }
        })
    }

    /// Cancels the driver; [`crate::Client::shutdown`] waits for its stop signal (the
    /// driver is registered as a cancelled operation).
    fn stop_driver(&mut self) {
        self.cancel.cancel();
    }
}

/// An output message's data as text (a leading byte order mark dropped).
fn raw_text(data: &[u8]) -> std::result::Result<&str, wsman_protocol::psrp::Error> {
    let data = data
        .strip_prefix(wsman_protocol::psrp::message::UTF8_BOM)
        .unwrap_or(data);
    wsman_protocol::xml::utf8(data).map_err(|_| wsman_protocol::psrp::Error::NotUtf8)
}

/// The final state as a result, for `invoke`.
fn end_result(end: PipelineEnd) -> Result<()> {
    match end {
        PipelineEnd::Completed => Ok(()),
        PipelineEnd::Failed(error) => Err(Error::PipelineFailed { error }),
        PipelineEnd::Stopped {
            reason: Some(reason),
        } => Err(Error::Cancelled { reason }),
        PipelineEnd::Stopped { reason: None } => Err(Error::PipelineStopped),
    }
}

impl Stream for Pipeline {
    type Item = Result<PsEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        // Output objects forwarded unread: only after `invoke_as`, which reads the
        // stream itself; read here all the same (unreadable: the pipeline is stopped, as
        // the driver does when it cannot read a message).
        let read_raw = |this: &mut Self, data: bytes::Bytes| {
            let read = raw_text(&data)
                .and_then(wsman_protocol::psrp::clixml::from_str)
                .map(PsEvent::Output)
                .map_err(Error::from);
            if read.is_err() {
                this.stop_driver();
                this.finished = true;
            }
            Poll::Ready(Some(read))
        };
        if let Some(data) = self.raw_pending.pop_front() {
            return read_raw(&mut self, data);
        }
        match self.poll_item(cx) {
            Poll::Ready(Some(item)) => {
                let item = match item {
                    Ok(Item::Event(ev)) => Ok(ev),
                    Ok(Item::RawOutputs(batch)) => {
                        self.raw_room.add_permits(batch.len());
                        self.raw_pending.extend(batch);
                        match self.raw_pending.pop_front() {
                            Some(data) => return read_raw(&mut self, data),
                            // An empty batch (the driver makes none): the next item.
                            None => {
                                cx.waker().wake_by_ref();
                                return Poll::Pending;
                            }
                        }
                    }
                    Err(e) => Err(e),
                };
                if matches!(item, Ok(PsEvent::State(_)) | Err(_)) {
                    self.finished = true;
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

impl Drop for Pipeline {
    fn drop(&mut self) {
        if !self.finished {
            self.stop_driver();
        }
        // An inline driver that has not finished (stopping, or sending its final
        // Signal) goes on in a task.
        self.runner.hand_off();
    }
}

/// A serde error of output object `index` with its place and PowerShell type in the
/// message (the type names of an object, else the kind of primitive).
fn located(
    e: wsman_protocol::psrp::Error,
    index: usize,
    v: &wsman_protocol::psrp::PsValue,
) -> Error {
    match e {
        wsman_protocol::psrp::Error::Serde(msg) => {
            let kind = match v.as_object() {
                Some(o) => o
                    .type_names
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "an object without type names".into()),
                None => format!("{v:?}")
                    .split(['(', ' '])
                    .next()
                    .unwrap_or("")
                    .to_string(),
            };
            Error::Psrp(wsman_protocol::psrp::Error::Serde(format!(
                "output object {index} ({kind}): {msg}"
            )))
        }
        other => Error::Psrp(other),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use winrm_simulator::{CmdletContext, SimConfig, Simulator};

    use crate::{Auth, Client};

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Proc {
        name: String,
        id: i64,
        path: Option<String>,
    }

    async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(30), f)
            .await
            .expect("test step timed out")
    }

    /// `invoke_as` takes the output objects of a Receive as batches that count against
    /// the event buffer object by object: whatever the buffer (one object, a few, more
    /// than a Receive holds), every object arrives, in order, read as the owned path
    /// reads it, and a misfit past the first batches is located by its place.
    #[tokio::test]
    async fn invoke_as_reads_batches_of_any_buffer_size_in_order() {
        let sim = Simulator::start_with(SimConfig {
            psrp_synthetic_processes: 1500,
            ..Default::default()
        })
        .await
        .unwrap();
        sim.register_cmdlet("Count-To", |ctx: CmdletContext| async move {
            for n in 0..900i64 {
                if n == 777 {
                    ctx.write_output(wsman_protocol::psrp::PsValue::from("x"))
                        .await;
                } else {
                    ctx.write_output(wsman_protocol::psrp::PsValue::from(n))
                        .await;
                }
            }
            Ok(())
        });
        let c = Client::builder(sim.endpoint())
            .auth(Auth::basic(sim.user(), sim.password()))
            .allow_insecure_basic(true)
            .operation_timeout(Duration::from_secs(5))
            .max_envelope_size(512_000)
            .build()
            .unwrap();
        let pool = within(c.runspace_pool().open()).await.unwrap();
        for buffer in [1, 7, 100, 5000] {
            let got = within(
                pool.pipeline()
                    .command("Get-Process")
                    .event_buffer(buffer)
                    .invoke_as::<Proc>(),
            )
            .await
            .unwrap();
            assert_eq!(got.output.len(), 1500, "buffer {buffer}");
            for (i, p) in got.output.iter().enumerate() {
                let want: Proc =
                    crate::psrp::from_value(&winrm_simulator::synthetic_process(i)).unwrap();
                assert_eq!(p, &want, "buffer {buffer}");
            }
            let err = within(
                pool.pipeline()
                    .command("Count-To")
                    .event_buffer(buffer)
                    .invoke_as::<i64>(),
            )
            .await
            .expect_err("a text is no number");
            assert!(
                err.to_string().contains("output object 777"),
                "buffer {buffer}: {err}"
            );
        }
        within(pool.close()).await.unwrap();
        c.shutdown().await;
    }

    /// While `invoke_as` reads a batch, a wake-up of its driver waits for the batch to
    /// be read, but a cancel does not: the stop signal goes out at once, while the
    /// reader is still busy with the batch it took (each object here takes 100 ms to
    /// read, until the stop is seen), and the call ends `Cancelled`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancel_while_invoke_as_reads_a_batch_sends_the_stop_at_once() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        static READ: AtomicUsize = AtomicUsize::new(0);
        static STOPPED: AtomicBool = AtomicBool::new(false);
        struct Slow;
        impl<'de> serde::Deserialize<'de> for Slow {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                i64::deserialize(d)?;
                // The first objects quickly, the later ones (in large batches: the
                // writer has filled the server's queue by then) slowly.
                if READ.fetch_add(1, Ordering::SeqCst) >= 100 && !STOPPED.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(Slow)
            }
        }
        let sim = Simulator::start().await.unwrap();
        sim.register_cmdlet("Count-Then-Hang", |ctx: CmdletContext| async move {
            for n in 0..2000i64 {
                ctx.write_output(wsman_protocol::psrp::PsValue::from(n))
                    .await;
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        });
        let c = Client::builder(sim.endpoint())
            .auth(Auth::basic(sim.user(), sim.password()))
            .allow_insecure_basic(true)
            .operation_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let pool = within(c.runspace_pool().open()).await.unwrap();
        let token = tokio_util::sync::CancellationToken::new();
        let stops = sim.counters().pipeline_stops;
        let run = tokio::spawn(
            pool.pipeline()
                .command("Count-Then-Hang")
                .cancellation(token.clone())
                .invoke_as::<Slow>(),
        );
        within(async {
            while READ.load(Ordering::SeqCst) <= 100 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        token.cancel();
        let read_at_cancel = READ.load(Ordering::SeqCst);
        within(async {
            while sim.counters().pipeline_stops == stops {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
        let read_at_stop = READ.load(Ordering::SeqCst);
        STOPPED.store(true, Ordering::SeqCst);
        assert!(
            read_at_stop <= read_at_cancel + 2,
            "the stop waited for the reader: {read_at_cancel} objects read at the cancel, \
             {read_at_stop} at the stop"
        );
        let err = within(run).await.unwrap().err().expect("cancelled");
        assert!(matches!(err, crate::Error::Cancelled { .. }), "{err:?}");
        within(pool.close()).await.unwrap();
        c.shutdown().await;
    }
}
