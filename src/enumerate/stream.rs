//! The enumeration stream and its driver task, following the MI_Operation_Cancel
//! contract (DESIGN §1): on cancel the Pull in flight is abandoned at once, Release goes
//! out at once on another channel, the items already received are still yielded in
//! order, then exactly one final status.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::message::{self, exchange_page};
use super::page::Batch;
use super::{EnumEnd, EnumEvent, ReadPage, Request, is_invalid_context};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::operation::{CancelHandle, CancelReason, Scope};
use crate::soap::ns;
use crate::transport::RequestKind;

/// How the driver ended: what the stream yields after the last batch.
enum Final {
    End(EnumEnd),
    Error(Error),
}

/// What the driver leaves for the stream when it stops.
#[derive(Default)]
struct Outcome {
    last: Option<Final>,
    /// The result of the Release the driver sent, if it sent one.
    release: Option<oneshot::Receiver<Result<()>>>,
}

type Shared = Arc<Mutex<Outcome>>;

/// An Enumerate or Pull in flight, owned so that it can be finished in the background.
type PageExchange<T> = Pin<Box<dyn Future<Output = Result<Batch<Result<T>>>> + Send>>;

enum Phase<T> {
    /// Not started yet (no tokio runtime when `start()` ran).
    Pending(Box<(Scope, Request, ReadPage<T>)>),
    Running,
    Done,
}

/// A running enumeration: a `Stream` of `Result<EnumEvent<T>>` that yields the items,
/// then exactly one [`EnumEvent::End`], then `None`.
///
/// A fatal error (a fault such as an expired context, a transport error) is yielded as
/// the last item instead of `End`. An item that does not fit `T` (with
/// [`crate::Client::enumerate_as`]) is an error item and the stream goes on.
///
/// Dropping an unfinished enumeration cancels it and sends Release in the background;
/// [`crate::Client::shutdown`] waits for that. [`Enumeration::close`] does the same
/// and returns the Release's result.
#[must_use = "a stream does nothing unless polled"]
pub struct Enumeration<T> {
    client: Client,
    handle: CancelHandle,
    phase: Phase<T>,
    rx: Option<mpsc::Receiver<Vec<Result<T>>>>,
    buf: VecDeque<Result<T>>,
    shared: Shared,
    release: Option<oneshot::Receiver<Result<()>>>,
    driver: Option<JoinHandle<()>>,
}

impl<T> std::fmt::Debug for Enumeration<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enumeration")
            .field("buffered", &self.buf.len())
            .field("cancelled", &self.handle.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Enumeration<T> {
    pub(crate) fn new(client: Client, scope: Scope, request: Request, reader: ReadPage<T>) -> Self {
        let mut e = Enumeration {
            client,
            handle: scope.handle(),
            phase: Phase::Pending(Box::new((scope, request, reader))),
            rx: None,
            buf: VecDeque::new(),
            shared: Shared::default(),
            release: None,
            driver: None,
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            e.launch();
        }
        e
    }

    /// Spawns the driver (needs a runtime).
    fn launch(&mut self) {
        let Phase::Pending(boxed) = std::mem::replace(&mut self.phase, Phase::Running) else {
            return;
        };
        let (scope, request, reader) = *boxed;
        let (tx, rx) = mpsc::channel(1);
        let span = tracing::debug_span!(
            "operation",
            operation = "enumerate",
            resource = request.resource.uri()
        );
        // Counted from here: once cancelled (or dropped), `Client::shutdown` waits for its
        // Release, whether or not the driver has run since.
        let registered = self.client.register_operation(&scope);
        let driver = Driver {
            client: self.client.clone(),
            _registered: registered,
            scope,
            request,
            reader,
            tx,
            shared: Arc::clone(&self.shared),
        };
        self.rx = Some(rx);
        self.driver = Some(tokio::spawn(driver.run().instrument(span)));
    }

    /// A handle that cancels this enumeration (cheap to clone; `cancel()` is
    /// synchronous and idempotent).
    pub fn cancel_handle(&self) -> CancelHandle {
        self.handle.clone()
    }

    /// Cancels with reason User (see [`Enumeration::cancel_handle`]).
    pub fn cancel(&self) {
        self.handle.cancel();
    }

    /// Reads the rest of the stream into a vector.
    ///
    /// All or nothing: the first error item (with
    /// [`Client::enumerate_as`](crate::Client::enumerate_as), an instance that does not
    /// fit `T`) ends it with that error, and the items read before it are dropped (the
    /// enumeration is released). To keep the good items and skip or report the bad
    /// ones, read the stream itself (`StreamExt::next`): an [`Error::Deserialize`] item
    /// does not end it.
    ///
    /// # Errors
    /// The first error item, or [`Error::Cancelled`] when the enumeration was cancelled.
    ///
    /// # Cancel safety
    /// Dropping the future drops the enumeration (Release in the background).
    pub async fn collect_items(mut self) -> Result<Vec<T>> {
        let mut out = Vec::new();
        while let Some(ev) = std::future::poll_fn(|cx| Pin::new(&mut self).poll_next(cx)).await {
            match ev? {
                EnumEvent::Item(t) => out.push(t),
                EnumEvent::End(EnumEnd::Complete) => break,
                EnumEvent::End(EnumEnd::Cancelled { reason }) => {
                    return Err(Error::Cancelled { reason });
                }
            }
        }
        Ok(out)
    }

    /// Ends the enumeration: cancels it unless it already ended, discards what is left,
    /// and waits for the Release, if one was needed.
    ///
    /// # Errors
    /// The Release's error (an already expired context counts as released).
    ///
    /// # Cancel safety
    /// Dropping the future drops the enumeration; the Release still goes out in the
    /// background.
    pub async fn close(mut self) -> Result<()> {
        if !matches!(self.phase, Phase::Done) {
            self.handle.cancel();
            while std::future::poll_fn(|cx| Pin::new(&mut self).poll_next(cx))
                .await
                .is_some()
            {}
        }
        match self.release.take() {
            Some(rx) => rx.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }

    fn finish(&mut self) -> Option<Result<EnumEvent<T>>> {
        self.phase = Phase::Done;
        self.rx = None;
        let mut out = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        self.release = out.release.take();
        Some(match out.last.take() {
            Some(Final::End(end)) => Ok(EnumEvent::End(end)),
            Some(Final::Error(e)) => Err(e),
            None => Err(Error::State(
                "the enumeration driver stopped without a final status".into(),
            )),
        })
    }
}

impl<T: Send + 'static> Stream for Enumeration<T> {
    type Item = Result<EnumEvent<T>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.buf.pop_front() {
                return Poll::Ready(Some(item.map(EnumEvent::Item)));
            }
            match this.phase {
                Phase::Done => return Poll::Ready(None),
                Phase::Pending(_) => {
                    if tokio::runtime::Handle::try_current().is_err() {
                        this.phase = Phase::Done;
                        return Poll::Ready(Some(Err(Error::State(
                            "an enumeration needs a tokio runtime".into(),
                        ))));
                    }
                    this.launch();
                }
                Phase::Running => {}
            }
            let Some(rx) = this.rx.as_mut() else {
                return Poll::Ready(this.finish());
            };
            match ready!(rx.poll_recv(cx)) {
                Some(batch) => this.buf.extend(batch),
                None => return Poll::Ready(this.finish()),
            }
        }
    }
}

impl<T> Drop for Enumeration<T> {
    fn drop(&mut self) {
        if matches!(self.phase, Phase::Done) {
            return;
        }
        // The driver sees the cancel, abandons its request and sends Release; the
        // tracked wait lets Client::shutdown() wait for it.
        self.handle.cancel();
        if let Some(driver) = self.driver.take() {
            self.client.spawn_cleanup(async move {
                let _ = driver.await;
            });
        }
    }
}

impl<T> Unpin for Enumeration<T> {}

/// The background task of one enumeration.
struct Driver<T> {
    client: Client,
    /// Registered with the client until the driver ends (its Release, if any, is then
    /// on a cleanup task).
    _registered: crate::operation::Registered,
    scope: Scope,
    request: Request,
    reader: ReadPage<T>,
    tx: mpsc::Sender<Vec<Result<T>>>,
    shared: Shared,
}

impl<T: Send + 'static> Driver<T> {
    fn stop(&self, last: Final) {
        let mut out = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        out.last = Some(last);
    }

    /// Sends Release for `context` at once, on its own request, tracked by the client.
    fn release(&self, context: String) {
        self.release_in_background(async move { Some(context) });
    }

    /// Lets an Enumerate cancelled in flight finish on a tracked task (its HTTP timeout
    /// bounds it) and releases the context its response names. If the response never
    /// arrives (the connection is lost), the context stays on the server until its own
    /// expiry (on Windows, the enumeration's idle timeout).
    fn release_when_enumerated(&self, exchange: PageExchange<T>) {
        self.release_in_background(async move {
            match exchange.await {
                Ok(page) if !page.end_of_sequence => {
                    if page.context.is_some() {
                        tracing::debug!(
                            "releasing the context of an Enumerate cancelled in flight"
                        );
                    }
                    page.context
                }
                // Nothing to release, or the server's answer was lost.
                _ => None,
            }
        });
    }

    /// On a tracked task: waits for `context`, releases it if there is one, and keeps
    /// the result for [`Enumeration::close`].
    fn release_in_background(
        &self,
        context: impl Future<Output = Option<String>> + Send + 'static,
    ) {
        let (tx, rx) = oneshot::channel();
        let client = self.client.clone();
        let request = self.request.clone();
        self.client.spawn_cleanup(
            async move {
                let r = match context.await {
                    Some(ctx) => message::release(&client, &request, &ctx).await,
                    None => Ok(()),
                };
                if let Err(e) = &r {
                    tracing::warn!(error = %e, "enumeration release failed");
                }
                let _ = tx.send(r);
            }
            .in_current_span(),
        );
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .release = Some(rx);
    }

    fn cancelled(&self, context: Option<String>, reason: CancelReason) {
        tracing::debug!(%reason, release = context.is_some(), "enumeration cancelled");
        if let Some(ctx) = context {
            self.release(ctx);
        }
        self.stop(Final::End(EnumEnd::Cancelled { reason }));
    }

    async fn run(self) {
        let c = &self.client;
        if let Err(e) = message::check_text(&self.request) {
            // Text XML cannot carry: nothing is sent.
            return self.stop(Final::Error(e.into()));
        }
        // None until the Enumerate response names the context.
        let mut context: Option<String> = None;
        let mut started = false;
        let mut end = false;
        let mut permit = None;
        loop {
            // Room for one batch: the consumer has taken the previous one, so this
            // request keeps the stream at most one batch ahead.
            let p = match permit.take() {
                Some(p) => p,
                None => tokio::select! {
                    biased;
                    reason = self.scope.cancelled() => return self.cancelled(context, reason),
                    p = self.tx.reserve() => match p {
                        Ok(p) => p,
                        Err(_) => return self.cancelled(context, CancelReason::User),
                    },
                },
            };
            if end {
                drop(p);
                return self.stop(Final::End(EnumEnd::Complete));
            }
            let body = match (&context, started) {
                (_, false) => message::envelope(c, ns::action::ENUMERATE, &self.request, |w| {
                    message::write_enumerate(w, &self.request)
                }),
                (Some(ctx), true) => message::envelope(c, ns::action::PULL, &self.request, |w| {
                    message::write_pull(w, ctx, self.request.max_elements)
                }),
                (None, true) => {
                    return self.stop(Final::Error(
                        crate::soap::ParseError::Missing("n:EnumerationContext").into(),
                    ));
                }
            };
            let kind = if started {
                RequestKind::LongPoll
            } else {
                RequestKind::Write
            };
            let client = c.clone();
            let reader = self.reader;
            let mut exchange =
                Box::pin(async move { exchange_page(&client, kind, body, reader).await });
            // A response that is ready wins over a cancel that is also ready, so an
            // EndOfSequence that won the race completes the enumeration.
            let res = tokio::select! {
                biased;
                r = &mut exchange => r,
                reason = self.scope.cancelled() => {
                    if !started {
                        // Cancelled while the Enumerate is out: its context is not known
                        // yet, so the Enumerate is not abandoned but finished in the
                        // background, and the context it names is released.
                        self.release_when_enumerated(exchange);
                    }
                    return self.cancelled(context, reason);
                }
            };
            match res {
                Ok(page) => {
                    started = true;
                    end = page.end_of_sequence;
                    context = if end { None } else { page.context };
                    if page.items.is_empty() {
                        permit = Some(p);
                    } else {
                        p.send(page.items);
                    }
                }
                Err(e) if started && e.is_timeout() && e.fault().is_some() => {
                    // w:TimedOut on a Pull: nothing new yet, pull again.
                    permit = Some(p);
                }
                Err(e) => {
                    if started
                        && !is_invalid_context(&e)
                        && let Some(ctx) = context.take()
                    {
                        self.release(ctx);
                    }
                    return self.stop(Final::Error(e));
                }
            }
        }
    }
}
