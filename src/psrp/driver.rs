//! The background task of a running pipeline: Receives on its command, reassembles and
//! decodes the PSRP messages, answers host calls, forwards records to the stream with
//! backpressure, and on cancel sends the stop signal ([MS-PSRP] §3.1.5.3.9) at once on
//! a connection of its own, then delivers what was received and `State(Stopped)`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures_util::task::AtomicWaker;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wsman_protocol::psrp::messages::{
    ErrorCategory, ErrorRecord, PipelineState, RunspacePoolState, ServerMessage,
};
use wsman_protocol::psrp::{Defragmenter, MessageType};

use super::event::{PipelineEnd, PsEvent};
use super::pool::{PoolInner, receive_pipeline};
use super::wire;
use crate::error::{Error, Result};
use crate::operation::{CancelReason, Scope};
use crate::shell::messages as winrs;
use crate::soap::ns;

pub(super) enum Outcome {
    Ended(PipelineEnd),
    /// The pool is being disconnected: stop without a signal; the pipeline goes on
    /// running on the server.
    Disconnected,
    Cancelled(CancelReason),
    Failed(Error),
    /// The consumer dropped the stream.
    Gone,
}

/// What the driver forwards to the [`Pipeline`](super::Pipeline).
// Events are the common item; boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub(super) enum Item {
    Event(PsEvent),
    /// PIPELINE_OUTPUTs' CLIXML, left unread (once `raw_output` is set:
    /// [`Pipeline::invoke_as`](super::Pipeline::invoke_as) reads each straight into its
    /// type): the consecutive output objects of one Receive, at most the event buffer's
    /// size, as one item. They count against the event buffer one by one all the same
    /// ([`Driver::raw_room`]): the consumer gives their room back as it takes them (the
    /// last items a cancelled or disconnected driver hands over go without: no Receive
    /// follows them).
    RawOutputs(Vec<bytes::Bytes>),
}

pub(super) struct Driver {
    pub(super) pool: Arc<PoolInner>,
    pub(super) id: Uuid,
    pub(super) command_id: String,
    pub(super) scope: Scope,
    pub(super) tx: mpsc::Sender<Result<Item>>,
    /// Forward output objects as [`Item::RawOutputs`].
    pub(super) raw_output: Arc<AtomicBool>,
    /// Room for output objects in [`Item::RawOutputs`], one permit each, as many as
    /// the event buffer holds: a batch waits for its objects' room before it is sent
    /// (backpressure per object, as for other events), and the consumer adds the room
    /// back when it takes the batch.
    pub(super) raw_room: Arc<Semaphore>,
    /// Registered with the client from the start until its last Signals are on a
    /// cleanup task (see [`crate::Client::shutdown`]).
    pub(super) registered: Option<crate::operation::Registered>,
    pub(super) permit: Option<OwnedSemaphorePermit>,
}

impl Driver {
    pub(super) async fn run(mut self) {
        let mut queue = VecDeque::new();
        let outcome = self.receive_loop(&mut queue).await;
        let command_id = self.command_id.clone();
        // Signals for the pipeline's command, in order, on a task of their own, which the
        // pool's close() (the Delete follows the Signals) and the client's shutdown()
        // wait for; `permit` is released when they are done.
        let signal = |pool: Arc<PoolInner>,
                      id: Uuid,
                      codes: &'static [&'static str],
                      permit: Option<OwnedSemaphorePermit>| {
            let client = pool.shell.client.clone();
            let signalling = pool.shell.signals.token();
            let command_id = command_id.clone();
            client.spawn_cleanup(async move {
                let _signalling = signalling;
                for &code in codes {
                    match send_signal(&pool, &command_id, code).await {
                        Ok(()) => {}
                        // Gone or aborted: nothing is left to signal.
                        Err(e) if e.fault().is_some_and(|f| f.is_gone() || f.is_aborted()) => {
                            break;
                        }
                        Err(e) => {
                            tracing::debug!(pool = %pool.id, pipeline = %id, code, error = %e, "signal failed");
                        }
                    }
                }
                drop(permit);
            });
        };
        // The PSRP stop signal at once, then Signal terminate, which releases the
        // stopped command on the server as it releases a finished one (without it,
        // Windows keeps the command against the per-user quotas for the pool's life).
        let stop = |pool, id, permit| {
            signal(
                pool,
                id,
                &[wire::STOP_SIGNAL, ns::signal::TERMINATE],
                permit,
            );
        };
        // The registration ends once the Signals are on their task (tracked by the
        // client): before the final items, which wait for a consumer that may never
        // read again.
        let registered = self.registered.take();
        match outcome {
            Outcome::Ended(end) => {
                drop(self.permit.take());
                // The finished pipeline's command is released on the server (WS-Man
                // Signal terminate, as pypsrp does and as this crate's WinRS commands
                // do): Windows keeps a finished command until then, and a long-lived
                // pool would otherwise gather them against the per-user quotas. The
                // final state does not wait for it.
                signal(
                    Arc::clone(&self.pool),
                    self.id,
                    &[ns::signal::TERMINATE],
                    None,
                );
                drop(registered);
                // A key the server asked for during the pipeline is here before its end.
                self.pool.key_settled().await;
                let _ = self.tx.send(Ok(Item::Event(PsEvent::State(end)))).await;
            }
            Outcome::Cancelled(reason) => {
                tracing::debug!(pipeline = %self.id, %reason, "pipeline cancelled");
                // At once, on a connection of its own; then what was received, then
                // the final state (it does not wait for the server's answer).
                stop(Arc::clone(&self.pool), self.id, self.permit.take());
                drop(registered);
                for ev in queue {
                    if self.tx.send(Ok(ev)).await.is_err() {
                        break;
                    }
                }
                let _ = self
                    .tx
                    .send(Ok(Item::Event(PsEvent::State(PipelineEnd::Stopped {
                        reason: Some(reason),
                    }))))
                    .await;
            }
            Outcome::Failed(e) => {
                if self.pool.is_closed() {
                    // Nothing more goes to the deleted pool.
                    drop(self.permit.take());
                } else {
                    stop(Arc::clone(&self.pool), self.id, self.permit.take());
                }
                drop(registered);
                let _ = self.tx.send(Err(e)).await;
            }
            Outcome::Gone => {
                stop(Arc::clone(&self.pool), self.id, self.permit.take());
                drop(registered);
            }
            Outcome::Disconnected => {
                drop(self.permit.take());
                drop(registered);
                tracing::debug!(pipeline = %self.id, "pool disconnected; pipeline left running");
                // Delivered apart from this task, which the disconnect waits for.
                let tx = self.tx.clone();
                let error = Error::Disconnected {
                    shell_id: self.pool.shell.id.clone(),
                    command_id: self.command_id.clone(),
                };
                tokio::spawn(async move {
                    for ev in queue {
                        if tx.send(Ok(ev)).await.is_err() {
                            return;
                        }
                    }
                    let _ = tx.send(Err(error)).await;
                });
            }
        }
    }

    async fn receive_loop(&mut self, queue: &mut VecDeque<Item>) -> Outcome {
        let mut inbound = Defragmenter::new();
        // Kept from one Receive to the next: no allocation per stream element.
        let mut arena = wire::StreamArena::default();
        let mut decoded = Vec::new();
        let mut messages = Vec::new();
        let shell = Arc::clone(&self.pool.shell);
        loop {
            // Disconnecting: no new Receive (the one in flight was let finish: the
            // server answers it with what it has before it completes the Disconnect).
            if shell.disconnecting.is_cancelled() {
                return Outcome::Disconnected;
            }
            let received = tokio::select! {
                biased;
                // Dropping the Receive future closes its connection at once.
                reason = self.scope.cancelled() => return Outcome::Cancelled(reason),
                // The pool was closed: its Delete ends the pipeline on the server.
                () = self.pool.closed.cancelled() => return Outcome::Failed(PoolInner::closed_error()),
                // RUNSPACEPOOL_STATE Broken or Closed on the pool's stream.
                () = self.pool.stream.broken().cancelled() => {
                    return Outcome::Failed(self.pool.stream.broken_error().unwrap_or_else(|| Error::State("the runspace pool broke".into())));
                }
                r = receive_pipeline(&self.pool, &self.command_id) => r,
            };
            let received = match received {
                Ok(r) => r,
                Err(e) => {
                    if shell.disconnecting.is_cancelled()
                        && e.fault().is_some()
                        && !self.scope.is_cancelled()
                    {
                        // The Receive crossed the Disconnect: it took no output.
                        return Outcome::Disconnected;
                    }
                    if self.scope.is_cancelled()
                        && e.fault().is_some_and(|f| f.is_gone() || f.is_aborted())
                    {
                        return Outcome::Cancelled(self.scope.cancelled().await);
                    }
                    if self.pool.is_closed() {
                        // The Receive crossed the pool's Delete.
                        return Outcome::Failed(PoolInner::closed_error());
                    }
                    return Outcome::Failed(e);
                }
            };
            let mut end = None;
            // All the response's streams decoded into one buffer; a text that is not
            // base64 fails the pipeline once the texts before it are handled, as when
            // each was decoded in turn.
            let bad_text = arena.decode(received.chunks.iter().map(|t| &t[..]), &mut decoded);
            for data in decoded.drain(..) {
                messages.clear();
                if let Err(e) = inbound.push_messages_into(&data, &mut messages) {
                    return Outcome::Failed(e.into());
                }
                for m in messages.drain(..) {
                    if m.message_type == MessageType::PipelineOutput
                        && self.raw_output.load(Ordering::Relaxed)
                    {
                        // Into the batch at the queue's end, if it has room.
                        let limit = self.batch_limit();
                        match queue.back_mut() {
                            Some(Item::RawOutputs(batch)) if batch.len() < limit => {
                                batch.push(m.data);
                            }
                            _ => queue.push_back(Item::RawOutputs(vec![m.data])),
                        }
                        continue;
                    }
                    // The server sends this pipeline's messages on its command's stream
                    // (a recording's ids differ from ours; Windows echoes ours).
                    let decoded = match ServerMessage::decode(&m) {
                        Ok(d) => d,
                        Err(e) => return Outcome::Failed(e.into()),
                    };
                    let ev = match decoded {
                        ServerMessage::Output(v) => PsEvent::Output(v),
                        ServerMessage::Error(e) => PsEvent::Error(e),
                        ServerMessage::Warning(r) => PsEvent::Warning(r),
                        ServerMessage::Verbose(r) => PsEvent::Verbose(r),
                        ServerMessage::Debug(r) => PsEvent::Debug(r),
                        ServerMessage::Information(r) => PsEvent::Information(r),
                        ServerMessage::Progress(r) => PsEvent::Progress(r),
                        ServerMessage::HostCall(call) => {
                            let pipeline = m.pipeline_id;
                            let answer = tokio::select! {
                                biased;
                                reason = self.scope.cancelled() => return Outcome::Cancelled(reason),
                                r = self.pool.answer_host_call(pipeline, &call) => r,
                            };
                            if let Err(e) = answer {
                                return Outcome::Failed(e);
                            }
                            continue;
                        }
                        ServerMessage::PipelineState(s) if s.state.is_terminal() => {
                            end = Some(match s.state {
                                PipelineState::Completed => PipelineEnd::Completed,
                                PipelineState::Stopped => PipelineEnd::Stopped { reason: None },
                                _ => PipelineEnd::Failed(Box::new(s.error.unwrap_or_else(|| {
                                    ErrorRecord::new(
                                        format!("the pipeline ended {}", s.state.name()),
                                        "PipelineFailed",
                                        ErrorCategory::NotSpecified,
                                    )
                                }))),
                            });
                            continue;
                        }
                        ServerMessage::RunspacePoolState(s)
                            if matches!(
                                s.state,
                                RunspacePoolState::Broken | RunspacePoolState::Closed
                            ) =>
                        {
                            return Outcome::Failed(Error::RunspacePoolBroken {
                                state: s.state.name(),
                                error: s.error.map(Box::new),
                            });
                        }
                        _ => continue,
                    };
                    queue.push_back(Item::Event(ev));
                }
            }
            if let Some(e) = bad_text {
                return Outcome::Failed(e.into());
            }
            // Forward; a full buffer holds the next Receive back (backpressure).
            while let Some(ev) = queue.pop_front() {
                let objects = match &ev {
                    Item::RawOutputs(batch) => u32::try_from(batch.len()).unwrap_or(u32::MAX),
                    Item::Event(_) => 0,
                };
                let room = &self.raw_room;
                let tx = &self.tx;
                tokio::select! {
                    biased;
                    reason = self.scope.cancelled() => {
                        queue.push_front(ev);
                        return Outcome::Cancelled(reason);
                    }
                    () = shell.disconnecting.cancelled() => {
                        queue.push_front(ev);
                        return Outcome::Disconnected;
                    }
                    // The consumer is gone (while the batch waits for room).
                    () = tx.closed() => return Outcome::Gone,
                    permit = async move {
                        // Room for the batch's objects, then a place in the channel
                        // (dropped unused if this future is: the room goes back).
                        let room = match objects {
                            0 => None,
                            n => Some(room.acquire_many(n).await),
                        };
                        (room, tx.reserve().await)
                    } => match permit {
                        (room, Ok(p)) => match room.transpose() {
                            Ok(room) => {
                                // Given back by the consumer.
                                if let Some(room) = room {
                                    room.forget();
                                }
                                p.send(Ok(ev));
                            }
                            Err(_) => return Outcome::Gone,
                        },
                        (_, Err(_)) => return Outcome::Gone,
                    },
                }
            }
            if let Some(end) = end {
                return Outcome::Ended(end);
            }
            if received.done {
                return Outcome::Failed(Error::State(
                    "the server ended the pipeline's command without a PIPELINE_STATE".into(),
                ));
            }
        }
    }
}

impl Driver {
    /// The most output objects in one [`Item::RawOutputs`]: the event buffer's size (a
    /// batch must fit in the room the buffer has).
    fn batch_limit(&self) -> usize {
        self.tx.max_capacity().min(u32::MAX as usize)
    }
}

/// A Signal for pipeline `command_id`: the PSRP stop signal ([MS-PSRP] §3.1.5.3.9) or
/// WS-Man terminate.
pub(super) async fn send_signal(pool: &PoolInner, command_id: &str, code: &str) -> Result<()> {
    let env = pool
        .shell
        .envelope(ns::action::SIGNAL)
        .write(|w| winrs::write_signal(w, command_id, code));
    crate::shell::fast::exchange_ack(&pool.shell.client, env).await
}

/// Where a pipeline's [`Driver`] runs. A started pipeline's driver first runs *inline*:
/// the consumer's own polls of the stream poll it (no task, so no wake-up of another
/// thread between a Receive's answer and the consumer, which costs more than the rest
/// of a small pipeline). It moves to a task of its own (*background*) as soon as it
/// has work while the consumer is not waiting on the stream: a wake-up arrives while
/// the consumer is away (it took an item and went on, or has not polled yet), the
/// pipeline is cancelled or its pool disconnecting (the stop signal then goes out at
/// once, whoever polls), or the stream is dropped. From then on it runs as a spawned
/// driver always did; it never comes back inline. A consumer that took a batch of
/// output objects to read ([`Runner::busy`]) is not away: a wake-up then waits for its
/// next poll (a cancel or a disconnect does not).
pub(super) struct Runner {
    /// Mode (`INLINE`, `BACKGROUND`, `DONE`) and the consumer's flags.
    state: AtomicU8,
    /// The consumer's waker while it waits on the stream (inline mode).
    consumer: AtomicWaker,
    /// The background task's waker, for wake-ups registered by an inline poll.
    background: AtomicWaker,
    driver: Mutex<Option<Pin<Box<dyn Future<Output = ()> + Send>>>>,
    /// To tell a cancel or a disconnect apart in a wake-up.
    scope: Scope,
    disconnecting: CancellationToken,
    runtime: tokio::runtime::Handle,
}

const MODE: u8 = 0b11;
const INLINE: u8 = 0;
const BACKGROUND: u8 = 1;
const DONE: u8 = 2;
/// The consumer is polling the driver (a wake-up then means: poll it again).
const POLLING: u8 = 0b100;
/// The consumer's last poll of the stream returned `Pending`: it waits for a wake-up.
const AWAITING: u8 = 0b1000;
/// A wake-up came while `POLLING`.
const REPOLL: u8 = 0b1_0000;
/// The consumer is busy with items it took (a batch of output objects) and polls the
/// driver again once done: a wake-up meanwhile waits for it (the driver then goes on
/// on the consumer's thread, where the next response's bytes are read), unless it is a
/// cancel or a disconnect, which move the driver to a task at once as ever.
const BUSY: u8 = 0b10_0000;

impl Runner {
    /// A runner for `driver`: inline, or spawned at once when `!inline`. Needs a Tokio
    /// runtime (as every request of the client does).
    pub(super) fn start(driver: Driver, inline: bool) -> Arc<Runner> {
        let shell = Arc::clone(&driver.pool.shell);
        // The shell's disconnect waits for this token (dropped with the future).
        let tracked = shell.drivers.token();
        let runner = Arc::new(Runner {
            state: AtomicU8::new(INLINE),
            consumer: AtomicWaker::new(),
            background: AtomicWaker::new(),
            scope: driver.scope.clone(),
            disconnecting: shell.disconnecting.clone(),
            runtime: tokio::runtime::Handle::current(),
            driver: Mutex::new(Some(Box::pin({
                // Counted as running, so that the pool's own stream is read while it
                // runs on (see `stream.rs`).
                let running = driver.pool.track();
                // `run()`'s future (some kilobytes) is made inside the box at the first
                // poll, not made here and moved into it.
                async move {
                    let _tracked = (tracked, running);
                    driver.run().await;
                }
            }))),
        });
        if !inline {
            runner.hand_off();
        }
        runner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Pin<Box<dyn Future<Output = ()> + Send>>>> {
        self.driver
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves the driver to a task of its own, unless it is already there or done, or
    /// the consumer is polling it right now (it then sees the wake-up itself).
    pub(super) fn hand_off(self: &Arc<Self>) {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & MODE != INLINE || s & POLLING != 0 {
                return;
            }
            match self
                .state
                .compare_exchange(s, BACKGROUND, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        self.runtime.spawn(Background(Arc::clone(self)));
        // A consumer waiting inline was not registered on the stream's channel.
        self.consumer.wake();
    }

    /// The consumer's poll: polls the driver in the consumer's context while it is
    /// inline, and `pull` (the stream's channel) after it, until `pull` is ready or
    /// the driver waits for something. `pull`'s flag says whether it must register
    /// the consumer's waker: not while the driver is inline (it fills the channel
    /// only in these polls, and the runner wakes the consumer), which spares a
    /// wake-up of the consumer's own task for every item.
    pub(super) fn drive<T>(
        self: &Arc<Self>,
        cx: &mut Context<'_>,
        mut pull: impl FnMut(&mut Context<'_>, bool) -> Poll<T>,
    ) -> Poll<T> {
        if tokio::runtime::Handle::try_current().is_err() {
            // Polled outside a Tokio runtime (the driver's timers and requests need
            // one): the driver goes on in a task of the runtime it started on.
            self.hand_off();
        }
        if !self.enter() {
            return pull(cx, true);
        }
        let mut got = Poll::Pending;
        for _ in 0..4 {
            self.poll_inline(cx);
            if got.is_pending() {
                got = pull(cx, !self.is_inline());
            }
            if self.leave(got.is_pending()) {
                return got;
            }
        }
        // Woken during every poll: Tokio's cooperative budget is spent (its resources
        // then wake at once). Yield to the scheduler rather than spin.
        let waiting = got.is_pending();
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                Some((s & MODE) | if waiting { AWAITING } else { 0 })
            });
        if waiting {
            cx.waker().wake_by_ref();
        } else {
            self.hand_off();
        }
        got
    }

    /// The consumer goes to work on items it took, and will poll the stream again once
    /// done (see [`BUSY`]).
    pub(super) fn busy(&self) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & MODE == INLINE && s & POLLING == 0).then_some(s | BUSY)
            });
    }

    /// Still run by its consumer's polls (not moved to a task, not done).
    fn is_inline(&self) -> bool {
        self.state.load(Ordering::Acquire) & MODE == INLINE
    }

    /// Starts a poll of the driver by the consumer: true when the driver is inline.
    fn enter(&self) -> bool {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & MODE != INLINE {
                return false;
            }
            match self.state.compare_exchange(
                s,
                INLINE | POLLING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// Polls the inline driver in the consumer's context (between `enter` and `leave`).
    fn poll_inline(self: &Arc<Self>, cx: &mut Context<'_>) {
        let mut driver = self.lock();
        self.state.fetch_and(!REPOLL, Ordering::AcqRel);
        let Some(fut) = driver.as_mut() else {
            return;
        };
        self.consumer.register(cx.waker());
        let waker = Waker::from(Arc::clone(self));
        if fut
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready()
        {
            *driver = None;
            self.state.fetch_or(DONE, Ordering::AcqRel);
        }
    }

    /// Ends the consumer's poll: `waiting` when it returns `Pending` (wake-ups then go
    /// to the consumer), else wake-ups while it is away move the driver to a task.
    /// False when a wake-up came during the poll: poll the driver again first.
    fn leave(&self, waiting: bool) -> bool {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            if s & MODE == INLINE && s & REPOLL != 0 {
                return false;
            }
            let next = (s & MODE) | if waiting { AWAITING } else { 0 };
            match self
                .state
                .compare_exchange(s, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }
}

impl std::task::Wake for Runner {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            match s & MODE {
                INLINE => {}
                BACKGROUND => return self.background.wake(),
                _ => return,
            }
            if s & POLLING != 0 {
                match self.state.compare_exchange(
                    s,
                    s | REPOLL,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return,
                    Err(now) => {
                        s = now;
                        continue;
                    }
                }
            }
            let stopping = self.scope.is_cancelled() || self.disconnecting.is_cancelled();
            if s & BUSY != 0 && !stopping {
                // The consumer's next poll of the stream polls the driver first.
                return;
            }
            if s & AWAITING != 0 && !stopping {
                return self.consumer.wake();
            }
            // Work while the consumer is away, or a cancel (whose stop signal must not
            // wait for the consumer's next poll).
            self.hand_off();
            s = self.state.load(Ordering::Acquire);
        }
    }
}

/// The driver's task once it left the consumer's polls.
struct Background(Arc<Runner>);

impl Future for Background {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let runner = &self.0;
        runner.background.register(cx.waker());
        let mut driver = runner.lock();
        let Some(fut) = driver.as_mut() else {
            return Poll::Ready(());
        };
        if fut.as_mut().poll(cx).is_ready() {
            *driver = None;
            runner.state.store(DONE, Ordering::Release);
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Also when the runtime drops the task: the driver's future holds wakers of
        // the runner.
        drop(self.0.lock().take());
    }
}
