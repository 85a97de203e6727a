//! The background task of a running pipeline: Receives on its command, reassembles and
//! decodes the PSRP messages, answers host calls, forwards records to the stream with
//! backpressure, and on cancel sends the stop signal ([MS-PSRP] §3.1.5.3.9) at once on
//! a connection of its own, then delivers what was received and `State(Stopped)`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::BytesMut;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio_util::task::task_tracker::TaskTrackerToken;
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
use crate::transport::RequestKind;

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
    /// PIPELINE_OUTPUT's CLIXML, left unread (once `raw_output` is set:
    /// [`Pipeline::invoke_as`](super::Pipeline::invoke_as) reads it straight into its
    /// type).
    RawOutput(bytes::Bytes),
}

pub(super) struct Driver {
    pub(super) pool: Arc<PoolInner>,
    pub(super) id: Uuid,
    pub(super) command_id: String,
    pub(super) scope: Scope,
    pub(super) tx: mpsc::Sender<Result<Item>>,
    /// Forward output objects as [`Item::RawOutput`].
    pub(super) raw_output: Arc<AtomicBool>,
    pub(super) cleanup_rx: oneshot::Receiver<TaskTrackerToken>,
    pub(super) permit: Option<OwnedSemaphorePermit>,
}

impl Driver {
    pub(super) async fn run(mut self) {
        let mut queue = VecDeque::new();
        let outcome = self.receive_loop(&mut queue).await;
        let command_id = self.command_id.clone();
        // A Signal for the pipeline's command on a task of its own, which the pool's
        // close() (the Delete follows the Signal) and the client's shutdown() wait for;
        // `permit` is released when it is done.
        let signal = |pool: Arc<PoolInner>,
                      id: Uuid,
                      code: &'static str,
                      permit: Option<OwnedSemaphorePermit>| {
            let client = pool.shell.client.clone();
            let signalling = pool.shell.signals.token();
            let command_id = command_id.clone();
            client.spawn_cleanup(async move {
                let _signalling = signalling;
                match send_signal(&pool, &command_id, code).await {
                    Ok(()) => {}
                    Err(e) if e.fault().is_some_and(|f| f.is_gone() || f.is_aborted()) => {}
                    Err(e) => {
                        tracing::debug!(pool = %pool.id, pipeline = %id, code, error = %e, "signal failed");
                    }
                }
                drop(permit);
            });
        };
        let stop = |pool, id, permit| signal(pool, id, wire::STOP_SIGNAL, permit);
        match outcome {
            Outcome::Ended(end) => {
                drop(self.permit.take());
                // The finished pipeline's command is released on the server (WS-Man
                // Signal terminate, as pypsrp does and as this crate's WinRS commands
                // do): Windows keeps a finished command until then, and a long-lived
                // pool would otherwise gather them against the per-user quotas.
                signal(Arc::clone(&self.pool), self.id, ns::signal::TERMINATE, None);
                // A key the server asked for during the pipeline is here before its end.
                self.pool.key_settled().await;
                let _ = self.tx.send(Ok(Item::Event(PsEvent::State(end)))).await;
            }
            Outcome::Cancelled(reason) => {
                tracing::debug!(pipeline = %self.id, %reason, "pipeline cancelled");
                // At once, on a connection of its own; then what was received, then
                // the final state (it does not wait for the server's answer).
                stop(Arc::clone(&self.pool), self.id, self.permit.take());
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
                stop(Arc::clone(&self.pool), self.id, self.permit.take());
                let _ = self.tx.send(Err(e)).await;
            }
            Outcome::Gone => {
                stop(Arc::clone(&self.pool), self.id, self.permit.take());
            }
            Outcome::Disconnected => {
                drop(self.permit.take());
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
        // Keeps Client::shutdown waiting until the stop task above is registered.
        drop(self.cleanup_rx.try_recv().ok());
    }

    async fn receive_loop(&mut self, queue: &mut VecDeque<Item>) -> Outcome {
        let mut inbound = Defragmenter::new();
        let mut arena = BytesMut::new();
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
                    return Outcome::Failed(e);
                }
            };
            let mut end = None;
            for text in &received.chunks {
                let data = match winrs::decode_into(text, &mut arena) {
                    Ok(d) => d,
                    Err(e) => return Outcome::Failed(e.into()),
                };
                let messages = match inbound.push_messages(&data) {
                    Ok(m) => m,
                    Err(e) => return Outcome::Failed(e.into()),
                };
                for m in messages {
                    if m.message_type == MessageType::PipelineOutput
                        && self.raw_output.load(Ordering::Relaxed)
                    {
                        queue.push_back(Item::RawOutput(m.data));
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
            // Forward; a full buffer holds the next Receive back (backpressure).
            while let Some(ev) = queue.pop_front() {
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
                    permit = self.tx.reserve() => match permit {
                        Ok(p) => p.send(Ok(ev)),
                        Err(_) => return Outcome::Gone,
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

/// A Signal for pipeline `command_id`: the PSRP stop signal ([MS-PSRP] §3.1.5.3.9) or
/// WS-Man terminate.
async fn send_signal(pool: &PoolInner, command_id: &str, code: &str) -> Result<()> {
    let env = pool
        .shell
        .envelope(ns::action::SIGNAL)
        .write(|w| winrs::write_signal(w, command_id, code));
    let c = &pool.shell.client;
    c.exchange(RequestKind::Write, env, c.inner.operation_timeout)
        .await
        .map(|_| ())
}
