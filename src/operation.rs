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

/// The running operations of a client (a command's Receive loop, an enumeration's or a
/// pipeline's driver), each registered from its start until its cleanup (Signal
/// terminate, Release, the PSRP stop signal) has been sent and answered, or handed to a
/// task of the client's cleanup tracker.
///
/// [`crate::Client::shutdown`] and [`crate::Client::cancel_all`] wait here for every
/// operation that is cancelled when they are called, whether or not its task has run
/// since: a cancel only wakes a driver, and a wait that looked at the cleanups already
/// under way would miss those whose driver has not been polled yet.
///
/// One slot per running operation, reused: registering takes the lock, a free slot and
/// a clone of the scope (a few reference counts), and allocates only while the number of
/// operations running at once grows past its peak.
#[derive(Default)]
pub(crate) struct Operations {
    state: std::sync::Mutex<OpsState>,
    /// Notified when an operation ends while someone waits.
    ended: tokio::sync::Notify,
}

#[derive(Default)]
struct OpsState {
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// Waits in progress (an ending operation notifies only when there are some).
    waiters: usize,
}

struct Slot {
    /// Bumped when the slot is freed, so that a waiter can tell a reused slot apart.
    generation: u64,
    scope: Option<Scope>,
}

impl Operations {
    fn lock(&self) -> std::sync::MutexGuard<'_, OpsState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers an operation cancelled by `scope`; it counts until the returned guard is
    /// dropped.
    pub(crate) fn register(self: &Arc<Self>, scope: &Scope) -> Registered {
        let mut s = self.lock();
        let index = match s.free.pop() {
            Some(i) => {
                s.slots[i].scope = Some(scope.clone());
                i
            }
            None => {
                s.slots.push(Slot {
                    generation: 0,
                    scope: Some(scope.clone()),
                });
                s.slots.len() - 1
            }
        };
        Registered {
            ops: Arc::clone(self),
            index,
        }
    }

    /// Waits until every operation that is cancelled now (by its handle, its caller's
    /// token, its deadline, the client's token, or because its stream was dropped) has
    /// ended. Operations not cancelled now, and those registered later, are not waited
    /// for. Cancel safe.
    pub(crate) async fn wait_cancelled(&self) {
        let mut pending: Vec<(usize, u64)> = {
            let s = self.lock();
            s.slots
                .iter()
                .enumerate()
                .filter(|(_, slot)| slot.scope.as_ref().is_some_and(Scope::is_cancelled))
                .map(|(i, slot)| (i, slot.generation))
                .collect()
        };
        if pending.is_empty() {
            return;
        }
        struct Waiting<'a>(&'a Operations);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.lock().waiters -= 1;
            }
        }
        self.lock().waiters += 1;
        let _waiting = Waiting(self);
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            // Enabled before the check: an end after it notifies this future.
            ended.as_mut().enable();
            {
                let s = self.lock();
                pending.retain(|&(i, generation)| s.slots[i].generation == generation);
            }
            if pending.is_empty() {
                return;
            }
            ended.await;
        }
    }
}

/// An operation's registration with its client's [`Operations`]; dropping it ends it.
pub(crate) struct Registered {
    ops: Arc<Operations>,
    index: usize,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registered")
            .field("index", &self.index)
            .finish()
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let (scope, notify) = {
            let mut s = self.ops.lock();
            let slot = &mut s.slots[self.index];
            slot.generation = slot.generation.wrapping_add(1);
            let scope = slot.scope.take();
            s.free.push(self.index);
            (scope, s.waiters > 0)
        };
        // The scope's tokens are dropped outside the lock.
        drop(scope);
        if notify {
            self.ops.ended.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_wait_covers_the_operations_cancelled_when_it_starts_and_no_others() {
        let client = CancellationToken::new();
        let ops = Arc::new(Operations::default());
        let cancelled = Scope::new(&client, None, None);
        let running = Scope::new(&client, None, None);
        let a = ops.register(&cancelled);
        let b = ops.register(&running);
        cancelled.handle().cancel();
        // Nothing cancelled apart from `a`: the wait is for `a` alone.
        let mut wait = Box::pin(ops.wait_cancelled());
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut wait)
                .await
                .is_err(),
            "the wait ended while a cancelled operation runs"
        );
        // `a` ends and its slot is taken again by a cancelled operation registered
        // after the wait began: the wait ends all the same.
        drop(a);
        let later = Scope::new(&client, None, None);
        later.handle().cancel();
        let c = ops.register(&later);
        tokio::time::timeout(Duration::from_secs(5), &mut wait)
            .await
            .expect("the wait ended when its operation did");
        // An operation whose deadline has passed counts as cancelled.
        let past = Scope::new(&client, None, Some(Instant::now()));
        let d = ops.register(&past);
        let mut wait = Box::pin(ops.wait_cancelled());
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut wait)
                .await
                .is_err()
        );
        drop((c, d));
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .expect("the wait ended");
        drop(b);
        assert_eq!(ops.lock().waiters, 0);
    }
}
