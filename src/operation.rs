//! What every operation shares: its cancellation scope (a child of the client's token,
//! the caller's token, a deadline) and the reason it ended early.

use std::fmt;
use std::sync::{Arc, OnceLock};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why an operation was cancelled, after `MI_CancellationReason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CancelReason {
    /// The caller cancelled it.
    User,
    /// Its deadline passed.
    Timeout,
    /// The client is shutting down.
    Shutdown,
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CancelReason::User => "cancelled by the caller",
            CancelReason::Timeout => "deadline exceeded",
            CancelReason::Shutdown => "client shutting down",
        })
    }
}

/// A cheap, cloneable handle that cancels one operation. `cancel()` is synchronous and
/// idempotent; its effect is asynchronous.
#[derive(Clone, Debug)]
pub struct CancelHandle {
    token: CancellationToken,
    reason: Arc<OnceLock<CancelReason>>,
}

impl CancelHandle {
    /// Cancels with reason [`CancelReason::User`].
    pub fn cancel(&self) {
        self.cancel_with(CancelReason::User);
    }

    /// Cancels with the given reason; the first reason wins.
    pub fn cancel_with(&self, reason: CancelReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The reason, once cancelled.
    pub fn reason(&self) -> Option<CancelReason> {
        self.reason.get().copied()
    }
}

/// The cancellation scope of one operation.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    own: CancelHandle,
    client: CancellationToken,
    user: Option<CancellationToken>,
    deadline: Option<Instant>,
}

impl Scope {
    pub(crate) fn new(
        client: &CancellationToken,
        user: Option<CancellationToken>,
        deadline: Option<Instant>,
    ) -> Scope {
        Scope {
            own: CancelHandle {
                token: client.child_token(),
                reason: Arc::new(OnceLock::new()),
            },
            client: client.clone(),
            user,
            deadline,
        }
    }

    pub(crate) fn handle(&self) -> CancelHandle {
        self.own.clone()
    }

    /// Resolves when the operation is cancelled, with the reason. Records the reason so
    /// every observer agrees.
    pub(crate) async fn cancelled(&self) -> CancelReason {
        let user = async {
            match &self.user {
                Some(t) => t.cancelled().await,
                None => std::future::pending().await,
            }
        };
        // The deadline's timer on the heap, and only when there is a deadline: inline, it
        // would take room (about 100 bytes) in every future that waits for a cancel (a
        // command's driver, a Call), with or without one.
        let timer = self.deadline.map(|d| Box::pin(tokio::time::sleep_until(d)));
        let deadline = async {
            match timer {
                Some(t) => t.await,
                None => std::future::pending().await,
            }
        };
        let r = tokio::select! {
            biased;
            _ = self.own.token.cancelled() => {
                if self.client.is_cancelled() && self.own.reason().is_none() {
                    CancelReason::Shutdown
                } else {
                    self.own.reason().unwrap_or(CancelReason::User)
                }
            }
            _ = user => CancelReason::User,
            _ = deadline => CancelReason::Timeout,
        };
        self.own.cancel_with(r);
        self.own.reason().unwrap_or(r)
    }

    /// Cancelled already (without waiting)?
    pub(crate) fn is_cancelled(&self) -> bool {
        self.own.is_cancelled()
            || self
                .user
                .as_ref()
                .is_some_and(CancellationToken::is_cancelled)
            || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}
