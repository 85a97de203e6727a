//! Disconnect and reconnect of a runspace pool ([MS-PSRP] §3.1.4.11-12 on [MS-WSMV]
//! Disconnect/Reconnect, §3.1.4.15-16): the pool and its pipelines go on running on the
//! server while no client is connected, and this client comes back to them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use uuid::Uuid;
use wsman_protocol::psrp::Fragmenter;
use wsman_protocol::psrp::messages::{ApplicationPrivateData, HostInfo, ProtocolVersion};

use super::host::PsHost;
use super::pipeline::{DEFAULT_EVENT_BUFFER, Pipeline};
use super::pool::{PoolInner, RunspacePool};
use crate::error::{Error, Result};
use crate::shell::DisconnectedShell;

impl RunspacePool {
    /// Disconnects from the pool (WinRS Disconnect): the pool and its running pipelines
    /// go on on the server, which buffers their output, and
    /// [`DisconnectedRunspacePool::reconnect`] comes back to them.
    ///
    /// `idle_timeout` (`rsp:IdleTimeOut`) is how long the server keeps the disconnected
    /// pool; `None` keeps the pool's.
    ///
    /// The pipelines being read stop their Receive loops (the Receive in flight is let
    /// finish), deliver what they received, and end with [`Error::Disconnected`]
    /// carrying their CommandId; no stop signal goes out. Resume one after reconnecting
    /// with [`RunspacePool::resume_pipeline`].
    ///
    /// # Errors
    /// Transport errors or a fault (e.g. the server does not support disconnected
    /// operations for this configuration). The pool is then not deleted: it is deleted
    /// by the server when its idle timeout passes.
    ///
    /// # Cancel safety
    /// If the future is dropped, the Disconnect may or may not have reached the server;
    /// the pool is not deleted.
    pub async fn disconnect(
        self,
        idle_timeout: Option<Duration>,
    ) -> Result<DisconnectedRunspacePool> {
        let RunspacePool { inner, shell } = self;
        let out = inner
            .out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let shell = shell.disconnect(idle_timeout).await?;
        tracing::debug!(pool = %inner.id, "runspace pool disconnected");
        Ok(DisconnectedRunspacePool {
            shell,
            id: inner.id,
            version: inner.version,
            private_data: inner.private_data.clone(),
            out,
            host: Arc::clone(&inner.host),
            host_info: inner.host_info.clone(),
            keys: inner.keys.carry(),
            max_runspaces: inner
                .max_runspaces
                .load(std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// Goes on reading a pipeline that was running when the pool was disconnected (its
    /// CommandId from [`Error::Disconnected`], or [`Pipeline::id`]), after
    /// [`DisconnectedRunspacePool::reconnect`]: the output the server buffered, then the
    /// rest, then the final state, as from [`PipelineBuilder::start`](super::PipelineBuilder::start).
    ///
    /// # Errors
    /// [`Error::State`] for a CommandId that is not a pipeline id. A pipeline that does
    /// not exist shows as a fault in the stream (2150858843).
    ///
    /// # Cancel safety
    /// Waiting for a free runspace can be dropped without effect.
    pub async fn resume_pipeline(&self, command_id: &str) -> Result<Pipeline> {
        let id = Uuid::parse_str(command_id)
            .map_err(|_| Error::State(format!("{command_id:?} is not a pipeline's CommandId")))?;
        let pool = Arc::clone(&self.inner);
        let scope = pool.shell.client.scope(None, None);
        let permit = tokio::select! {
            biased;
            reason = scope.cancelled() => return Err(Error::Cancelled { reason }),
            p = Arc::clone(&pool.slots).acquire_owned() => p.map_err(|_| PoolInner::closed_error())?,
        };
        Ok(Pipeline::drive(
            pool,
            id,
            command_id.to_string(),
            scope,
            permit,
            DEFAULT_EVENT_BUFFER,
            false,
        ))
    }
}

/// A runspace pool this client disconnected from ([`RunspacePool::disconnect`]). It goes
/// on running on the server with its pipelines.
///
/// Dropping it does **not** close the pool (that is the point of disconnecting); the
/// server deletes it when its idle timeout passes. [`DisconnectedRunspacePool::close`]
/// deletes it at once.
pub struct DisconnectedRunspacePool {
    shell: DisconnectedShell,
    id: Uuid,
    version: ProtocolVersion,
    private_data: Option<ApplicationPrivateData>,
    out: Fragmenter,
    host: Arc<dyn PsHost>,
    host_info: HostInfo,
    /// The session key survives: the server's pool keeps it.
    keys: super::secure::Keys,
    max_runspaces: i32,
}

impl std::fmt::Debug for DisconnectedRunspacePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DisconnectedRunspacePool")
            .field("id", &self.id)
            .field("shell", &self.shell.id())
            .finish_non_exhaustive()
    }
}

impl DisconnectedRunspacePool {
    /// The runspace pool id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The ShellId of the pool's shell.
    pub fn shell_id(&self) -> &str {
        self.shell.id()
    }

    /// Reconnects this client to the pool (WinRS Reconnect); then
    /// [`RunspacePool::resume_pipeline`] goes on reading its pipelines, and new ones
    /// start as usual. The pool keeps its protocol version, private data, host and the
    /// numbering of the PSRP objects this client sends.
    ///
    /// # Errors
    /// A fault (the pool is gone: 2150858843, e.g. after its idle timeout), transport
    /// errors.
    ///
    /// # Cancel safety
    /// If the future is dropped, the Reconnect may or may not have taken effect; the
    /// pool is not deleted.
    pub async fn reconnect(self) -> Result<RunspacePool> {
        let shell = self.shell.reconnect().await?;
        tracing::debug!(pool = %self.id, "runspace pool reconnected");
        let inner = PoolInner {
            shell: Arc::clone(&shell.inner),
            id: self.id,
            version: self.version,
            private_data: self.private_data,
            out: Mutex::new(self.out),
            slots: Arc::new(Semaphore::new(
                usize::try_from(self.max_runspaces).unwrap_or(1),
            )),
            host: self.host,
            host_info: self.host_info,
            max_runspaces: std::sync::atomic::AtomicI32::new(self.max_runspaces),
            stream: Arc::default(),
            closed: tokio_util::sync::CancellationToken::new(),
            keys: self.keys,
        };
        Ok(RunspacePool::from_parts(Arc::new(inner), shell))
    }

    /// Deletes the pool, which stops its pipelines.
    ///
    /// # Errors
    /// Transport errors or a fault other than "already gone".
    ///
    /// # Cancel safety
    /// If the future is dropped, the Delete may or may not have reached the server.
    pub async fn close(self) -> Result<()> {
        self.shell.close().await
    }
}
