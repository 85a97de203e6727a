//! The runspace pool's own stream: a WinRS Receive on the pool's shell with no
//! CommandId, read by one background task while the pool is in use.
//!
//! The server sends there, while pipelines run, messages that no pipeline's Receive
//! carries: PUBLIC_KEY_REQUEST when it must send a SecureString and has no session key
//! ([MS-PSRP] §2.2.2.5, §3.1.5.4.5: the client answers PUBLIC_KEY and the server
//! ENCRYPTED_SESSION_KEY), RUNSPACEPOOL_HOST_CALL (§2.2.2.15, answered by
//! RUNSPACEPOOL_HOST_RESPONSE), RUNSPACEPOOL_STATE Broken or Closed (§2.2.2.2), and the
//! answers of the client's own pool calls (RUNSPACE_AVAILABILITY, §2.2.2.8) and key
//! exchange. PowerShell's own client keeps such a Receive on the session for as long as
//! it is open (`WSManClientSessionTransportManager.StartReceivingData`).
//!
//! Here the stream is read only while it is needed, with no timer or request per
//! pipeline (a sequence of small pipelines costs nothing here; the recordings of Windows
//! answering pypsrp have no such Receive either): at once for a pool call or a key
//! exchange that waits for its answer; for pipelines, once one's Receive has timed out
//! (a whole OperationTimeout without output, which is how a pipeline waiting for the
//! server's PUBLIC_KEY_REQUEST to be answered looks) or one starts while another has
//! run for a second, and then for as long as a pipeline has run a second or more.
//! PowerShell's client reads the stream for as long as the session is open; this one
//! answers the server's first request in a lone pipeline one OperationTimeout late
//! (Windows PowerShell 3 and later never sends PUBLIC_KEY_REQUEST: the client
//! exchanges the key first, as [`RunspacePool::exchange_keys`](super::RunspacePool::exchange_keys)
//! does). The reader stops when nothing needs it after a poll (the next need starts it
//! again), when the pool is dropped or closed (its Receive is abandoned), before a
//! Disconnect (the Receive in flight is let finish, as the pipelines' are; the next need
//! after the reconnection starts it again), on the client's cancellation, and when the
//! pool breaks.
//!
//! One reader at a time: everything that needs a pool message registers a waiter and
//! the reader routes the message to it (pool calls by their call id).
//!
//! A long poll holds a channel of the transport's long-poll budget: the reader only
//! starts a long poll while at least one more long-poll channel stays free for the
//! pipelines, and otherwise polls briefly, so that it never makes a pipeline's Receive
//! wait behind it for a whole OperationTimeout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::BytesMut;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use wsman_protocol::psrp::messages::{ErrorRecord, RunspacePoolState, ServerMessage};
use wsman_protocol::psrp::{Defragmenter, MessageType, PsValue};

use super::pool::{PoolInner, receive_once};
use super::secure::answer_needs_session_key;
use crate::error::{Error, Result};
use crate::shell::ShellInner;
use crate::shell::messages as winrs;

/// The OperationTimeout of a short poll, when the long-poll budget is nearly spent.
const SHORT_POLL: Duration = Duration::from_millis(200);
/// The first pause between short polls (doubled up to [`BUSY_PAUSE_MAX`] while they
/// find nothing).
const BUSY_PAUSE: Duration = Duration::from_millis(250);
const BUSY_PAUSE_MAX: Duration = Duration::from_secs(2);
/// How long a pipeline runs before the pool's stream is read for it (when another
/// starts, or its Receive times out).
const WATCH_TICK: Duration = Duration::from_secs(1);
/// How long a pool host call's answer waits for a session key exchange.
const KEY_WAIT: Duration = Duration::from_secs(60);

/// What the pool's stream reader shares with the rest of the pool.
pub(crate) struct PoolStream {
    state: Mutex<ReaderState>,
    /// Cancelled when the server reported the pool Broken or Closed.
    broken: CancellationToken,
    broken_info: OnceLock<(String, Option<ErrorRecord>)>,
    /// Cancelled when the pool goes away (its last handle dropped, or `close()`).
    stop: CancellationToken,
    /// Bumped when a session key arrives, the reader ends or the pool breaks.
    pub(crate) events: watch::Sender<u64>,
    /// Wakes a watching reader for a call that waits for its answer.
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct ReaderState {
    running: bool,
    /// Pool calls waiting for their RUNSPACE_AVAILABILITY, by call id.
    calls: HashMap<i64, oneshot::Sender<Result<PsValue>>>,
    /// Other waiters (a key exchange).
    waiting: usize,
    /// Why the last reader ended, for the waiters that saw it end.
    ended: Option<String>,
    /// Bumped when a reader ends.
    generation: u64,
    /// The running pipelines' start times, by a number given in start order.
    pipelines: std::collections::BTreeMap<u64, tokio::time::Instant>,
    next_pipeline: u64,
}

impl ReaderState {
    /// A pipeline has run for a watch tick (small pipelines never do).
    fn long_running(&self) -> bool {
        self.pipelines
            .first_key_value()
            .is_some_and(|(_, t)| t.elapsed() >= WATCH_TICK)
    }
}

impl Default for PoolStream {
    fn default() -> Self {
        PoolStream {
            state: Mutex::new(ReaderState::default()),
            broken: CancellationToken::new(),
            broken_info: OnceLock::new(),
            stop: CancellationToken::new(),
            events: watch::channel(0).0,
            wake: tokio::sync::Notify::new(),
        }
    }
}

impl PoolStream {
    fn lock(&self) -> std::sync::MutexGuard<'_, ReaderState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn bump(&self) {
        self.events.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The pool broke (RUNSPACEPOOL_STATE Broken or Closed on its stream).
    pub(crate) fn broken(&self) -> &CancellationToken {
        &self.broken
    }

    /// [`Error::RunspacePoolBroken`] with what the server said, once the pool broke.
    pub(crate) fn broken_error(&self) -> Option<Error> {
        self.broken_info
            .get()
            .map(|(state, error)| Error::RunspacePoolBroken {
                state: state.clone(),
                error: error.clone().map(Box::new),
            })
    }

    fn set_broken(&self, state: String, error: Option<ErrorRecord>) {
        let _ = self.broken_info.set((state, error));
        self.broken.cancel();
        let calls: Vec<_> = self.lock().calls.drain().collect();
        for (_, tx) in calls {
            let _ = tx.send(Err(self.broken_error().unwrap_or_else(closed)));
        }
        self.bump();
    }

    /// Stops the reader (the pool is closing or gone): its Receive is abandoned.
    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }

    /// The generation of readers, to tell later whether the reader ended meanwhile.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Why the reader ended, if it ended after `generation`.
    pub(crate) fn ended_since(&self, generation: u64) -> Option<Error> {
        let g = self.lock();
        (g.generation != generation).then(|| {
            Error::State(format!(
                "the runspace pool's stream stopped: {}",
                g.ended.as_deref().unwrap_or("no reason")
            ))
        })
    }

    /// Registers a pool call's waiter.
    pub(crate) fn expect_call(&self, call_id: i64) -> oneshot::Receiver<Result<PsValue>> {
        let (tx, rx) = oneshot::channel();
        self.lock().calls.insert(call_id, tx);
        rx
    }

    /// Forgets a pool call's waiter (its future was dropped or its Send failed).
    pub(crate) fn forget_call(&self, call_id: i64) {
        self.lock().calls.remove(&call_id);
    }

    /// Counts a waiter that is not a pool call (keeps the reader polling) until dropped.
    pub(crate) fn waiting(self: &Arc<Self>) -> Waiting {
        self.lock().waiting += 1;
        Waiting(Arc::clone(self))
    }
}

impl PoolInner {
    /// Counts a pipeline's Receive task as running until the returned guard is dropped
    /// (the task holds it). The pool's stream is read once a pipeline's Receive timed
    /// out (see [`PoolInner::pipeline_stalled`]) or a pipeline starts while another has
    /// run for [`WATCH_TICK`]; then while one runs on that long.
    pub(crate) fn track(self: &Arc<Self>) -> Tracked {
        let (id, another_long_running) = {
            let mut g = self.stream.lock();
            // Asked before the insert: the new pipeline (the youngest) never counts.
            let long = g.long_running();
            let id = g.next_pipeline;
            g.next_pipeline += 1;
            g.pipelines.insert(id, tokio::time::Instant::now());
            (id, long)
        };
        let tracked = Tracked(Arc::clone(&self.stream), id);
        // Another pipeline has run for a while: read the stream for it now.
        if another_long_running {
            self.wake_reader();
        }
        tracked
    }

    /// A pipeline's Receive timed out (a whole OperationTimeout without output): it
    /// may wait for something the server asks on the pool's stream.
    pub(crate) fn pipeline_stalled(self: &Arc<Self>) {
        self.wake_reader();
    }
}

/// A running pipeline, counted until dropped (see [`PoolInner::track`]).
pub(crate) struct Tracked(Arc<PoolStream>, u64);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.lock().pipelines.remove(&self.1);
    }
}

/// A waiter the reader keeps polling for; see [`PoolStream::waiting`].
pub(crate) struct Waiting(Arc<PoolStream>);

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut g = self.0.lock();
        g.waiting = g.waiting.saturating_sub(1);
    }
}

fn closed() -> Error {
    Error::RunspacePoolBroken {
        state: "Closed".into(),
        error: None,
    }
}

impl PoolInner {
    /// Starts the reader if needed and has it poll now, for a call that registered
    /// its waiter and sent its request.
    pub(crate) fn wake_reader(self: &Arc<Self>) {
        self.ensure_reader();
        self.stream.wake.notify_one();
    }

    /// Starts the reader of the pool's stream unless it runs (or the pool broke, or is
    /// being disconnected).
    pub(crate) fn ensure_reader(self: &Arc<Self>) {
        let stream = &self.stream;
        if stream.broken.is_cancelled()
            || stream.stop.is_cancelled()
            || self.shell.disconnecting.is_cancelled()
        {
            return;
        }
        {
            let mut g = stream.lock();
            if g.running {
                return;
            }
            g.running = true;
        }
        tracing::debug!(pool = %self.id, "reading the pool's stream");
        let reader = Reader {
            pool: Arc::downgrade(self),
            shell: Arc::clone(&self.shell),
            stream: Arc::clone(&self.stream),
        };
        self.shell.drivers.spawn(reader.run());
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // The reader holds no strong reference: it stops here, so the shell is deleted.
        self.stream.stop();
    }
}

/// Why a reader stopped, when it matters.
enum Exit {
    /// Nothing needed the stream any more.
    Idle,
    /// A Receive failed, or a message could not be read.
    Failed(String),
}

struct Reader {
    pool: Weak<PoolInner>,
    /// Kept apart from `pool` (which the reader does not keep alive) for the Receives.
    shell: Arc<ShellInner>,
    stream: Arc<PoolStream>,
}

impl Reader {
    async fn run(self) {
        let why = self.read().await;
        let mut g = self.stream.lock();
        match &why {
            // `running` was cleared with the check (a new reader may run already).
            Some(Exit::Idle) => {}
            _ => g.running = false,
        }
        let why = match why {
            Some(Exit::Failed(why)) => Some(why),
            _ => None,
        };
        g.generation = g.generation.wrapping_add(1);
        g.ended.clone_from(&why);
        if let Some(why) = why {
            tracing::debug!(shell = %self.shell.id, error = %why, "the pool's stream reader stopped");
            for (_, tx) in g.calls.drain() {
                let _ = tx.send(Err(Error::State(format!(
                    "the runspace pool's stream stopped: {why}"
                ))));
            }
        }
        drop(g);
        self.stream.bump();
    }

    /// Reads until the pool is unused (`Idle`), gone, disconnected or broken (`None`),
    /// or a Receive fails (`Failed`).
    async fn read(&self) -> Option<Exit> {
        let mut inbound = Defragmenter::new();
        let mut arena = BytesMut::new();
        let client = self.shell.client.clone();
        let token = client.cancellation_token().clone();
        // The pause between short polls.
        let mut pause = BUSY_PAUSE;
        loop {
            if self.stream.stop.is_cancelled()
                || self.shell.disconnecting.is_cancelled()
                || token.is_cancelled()
            {
                return None;
            }
            let poll = {
                let g = self.stream.lock();
                !g.calls.is_empty() || g.waiting > 0 || g.long_running()
            };
            if !poll {
                // Nothing needs the stream: stop (under the lock `ensure_reader` takes,
                // so that no start is missed); a call, or a pipeline that runs on,
                // starts a reader again.
                let mut g = self.stream.lock();
                if !g.calls.is_empty() || g.waiting > 0 || g.long_running() {
                    continue;
                }
                g.running = false;
                return Some(Exit::Idle);
            }
            // A long poll only while another long-poll channel stays free for the
            // pipelines; else a short one, which waits its turn for a channel, holds it
            // briefly, and comes back less often while it finds nothing.
            let timeout = if client.inner.transport.long_polls_free() >= 2 {
                client.inner.operation_timeout
            } else {
                SHORT_POLL
            };
            let received = tokio::select! {
                biased;
                // Dropping the Receive closes its connection at once.
                () = self.stream.stop.cancelled() => return None,
                () = token.cancelled() => return None,
                r = receive_once(&self.shell, None, timeout) => r,
            };
            let received = match received {
                Ok(Some(r)) => r,
                Ok(None) => {
                    if timeout == SHORT_POLL {
                        tokio::select! {
                            () = self.stream.stop.cancelled() => return None,
                            () = self.stream.wake.notified() => pause = BUSY_PAUSE,
                            () = tokio::time::sleep(pause) => pause = (pause * 2).min(BUSY_PAUSE_MAX),
                        }
                    }
                    continue;
                }
                Err(e) => {
                    if self.shell.disconnecting.is_cancelled() || self.stream.stop.is_cancelled() {
                        // The Receive crossed the Disconnect or the Delete.
                        return None;
                    }
                    return Some(Exit::Failed(e.to_string()));
                }
            };
            let pool = self.pool.upgrade()?;
            if !received.chunks.is_empty() {
                pause = BUSY_PAUSE;
            }
            for text in &received.chunks {
                let messages = winrs::decode_into(text, &mut arena)
                    .map_err(Error::from)
                    .and_then(|data| inbound.push_messages(&data).map_err(Error::from));
                let messages = match messages {
                    Ok(m) => m,
                    Err(e) => return Some(Exit::Failed(e.to_string())),
                };
                for m in messages {
                    let decoded = match ServerMessage::decode(&m) {
                        Ok(d) => d,
                        Err(e) => return Some(Exit::Failed(e.to_string())),
                    };
                    if self.route(&pool, decoded).await {
                        return None;
                    }
                }
            }
            if received.done {
                self.stream.set_broken("Closed".into(), None);
                return None;
            }
        }
    }

    /// Acts on one message of the pool's stream; true when the pool broke.
    async fn route(&self, pool: &Arc<PoolInner>, message: ServerMessage) -> bool {
        match message {
            ServerMessage::RunspaceAvailability(a) => {
                let tx = self.stream.lock().calls.remove(&a.call_id);
                if let Some(tx) = tx {
                    let _ = tx.send(Ok(a.response));
                }
            }
            ServerMessage::Other(MessageType::EncryptedSessionKey, v) => {
                pool.key_arrived(&v);
                // The exchange is over: its waiter no longer needs the stream polled.
                self.stream.lock().waiting = 0;
                self.stream.bump();
            }
            ServerMessage::Other(MessageType::PublicKeyRequest, _) => {
                // §3.1.5.4.5: answered with PUBLIC_KEY, on a task of its own (making a
                // key pair takes a while); ENCRYPTED_SESSION_KEY comes on this stream.
                tracing::debug!(pool = %pool.id, "the server asks for the session key");
                let p = Arc::clone(pool);
                self.shell.drivers.spawn(async move {
                    match tokio::time::timeout(KEY_WAIT, p.answer_key_request()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            tracing::warn!(pool = %p.id, error = %e, "answering PUBLIC_KEY_REQUEST failed");
                        }
                        Err(_) => {
                            tracing::warn!(pool = %p.id, "no ENCRYPTED_SESSION_KEY after PUBLIC_KEY");
                        }
                    }
                });
            }
            ServerMessage::HostCall(call) => {
                if answer_needs_session_key(call.method) && pool.keys.session().is_none() {
                    // The key exchange needs this reader: answered on a task of its own.
                    let p = Arc::clone(pool);
                    self.shell.drivers.spawn(async move {
                        let answer = tokio::time::timeout(KEY_WAIT, p.answer_host_call(None, &call));
                        match answer.await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => {
                                tracing::warn!(pool = %p.id, error = %e, "answering a pool host call failed");
                            }
                            Err(_) => {
                                tracing::warn!(pool = %p.id, "no session key for a pool host call's answer");
                            }
                        }
                    });
                } else if let Err(e) = pool.answer_host_call(None, &call).await {
                    tracing::warn!(pool = %pool.id, error = %e, "answering a pool host call failed");
                }
            }
            ServerMessage::RunspacePoolState(s)
                if matches!(
                    s.state,
                    RunspacePoolState::Broken | RunspacePoolState::Closed
                ) =>
            {
                tracing::debug!(pool = %pool.id, state = %s.state.name(), "the runspace pool broke");
                self.stream.set_broken(s.state.name(), s.error);
                return true;
            }
            _ => {}
        }
        false
    }
}
