//! Robust Connections, the server's side ([MS-WSMV] §3.1.4.1.39): the OperationMessages
//! table. A request for a shell or a CIM object that carries `p:OperationID` gets a row;
//! its response is kept there, so that a retransmission (the same OperationID with
//! `s:mustUnderstand="true"`, on any connection) is answered from the row instead of
//! being carried out again. Every response to such a request echoes the OperationID,
//! which is how a client learns that the server supports Robust Connections.
//!
//! As the section says: a reused OperationID that is not marked as a retransmission is
//! refused with `wsa:InvalidMessageInformationHeader`, as is a SequenceId other than 1;
//! a new request on a connection deletes the rows whose primary connection it is (their
//! client has evidently read the response); a retransmission makes its connection the
//! row's primary one. Limits, as a server must have them: at most
//! `SimConfig::operation_cache_entries` rows and `SimConfig::operation_cache_bytes` of
//! kept responses (the oldest rows go first), and a row is kept at most
//! `SimConfig::operation_retention` after its response was made (the Response Retention
//! Timer). A row's response is freed as soon as the row leaves the table.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use super::State;
use super::body::SimBody;
use super::response::{ECHO_OPEN, ENVELOPE_OPEN};

/// A response kept for retransmissions (before sealing).
#[derive(Clone, Debug)]
pub(crate) struct Cached {
    pub status: StatusCode,
    /// None for the usual headers (the SOAP content type alone), which are not copied.
    pub headers: Option<HeaderMap>,
    pub parts: Vec<Bytes>,
}

impl Cached {
    /// The response `head` with `body`, kept (the body's buffers are shared, not copied).
    pub(crate) fn of(head: &http::response::Parts, body: &SimBody) -> Cached {
        let usual = head.headers.len() == 1
            && head
                .headers
                .get(http::header::CONTENT_TYPE)
                .map(|v| v.as_bytes())
                == Some(super::server::SOAP_CONTENT_TYPE.as_bytes());
        Cached {
            status: head.status,
            headers: (!usual).then(|| head.headers.clone()),
            parts: body.parts(),
        }
    }

    /// Bytes the kept response holds (its body's parts; the head is small).
    fn size(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum::<usize>() + 256
    }

    pub(crate) fn response(&self) -> http::Response<SimBody> {
        let mut resp = http::Response::new(SimBody::from_parts(self.parts.iter().cloned()));
        *resp.status_mut() = self.status;
        match &self.headers {
            Some(headers) => *resp.headers_mut() = headers.clone(),
            None => {
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static(super::server::SOAP_CONTENT_TYPE),
                );
            }
        }
        resp
    }
}

struct Row {
    primary: u64,
    slot: Arc<Slot>,
}

/// A row's response, shared with the retransmissions that wait for it. Cheaper than a
/// channel per request: a lock nobody contends and a `Notify` that wakes only waiters.
#[derive(Default)]
pub(crate) struct Slot {
    state: Mutex<SlotState>,
    notify: tokio::sync::Notify,
    /// The row is no longer in the table (changed only under the table's lock).
    removed: AtomicBool,
    /// The table's count of bytes in kept responses, which this slot's response adds to
    /// for as long as the slot lives.
    kept: Arc<AtomicUsize>,
    /// What this slot's response added to `kept`.
    size: AtomicUsize,
}

impl Slot {
    /// A slot whose response counts in `kept`.
    fn counted(kept: &Arc<AtomicUsize>) -> Slot {
        Slot {
            state: Mutex::default(),
            notify: tokio::sync::Notify::new(),
            removed: AtomicBool::new(false),
            kept: Arc::clone(kept),
            size: AtomicUsize::new(0),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.kept.fetch_sub(*self.size.get_mut(), Ordering::Relaxed);
    }
}

#[derive(Default)]
enum SlotState {
    /// The request is being carried out.
    #[default]
    Running,
    /// Its response, and when it was made.
    Done(Cached, Instant),
    /// It ended without a response (its connection dropped in the instant it ran).
    Abandoned,
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finish(&self, state: SlotState) {
        {
            let mut s = self.lock();
            if !matches!(*s, SlotState::Running) {
                return;
            }
            if let SlotState::Done(cached, _) = &state {
                let size = cached.size();
                self.size.store(size, Ordering::Relaxed);
                self.kept.fetch_add(size, Ordering::Relaxed);
            }
            *s = state;
        }
        self.notify.notify_waiters();
    }

    /// The response, once made; None when the request ended without one.
    pub(crate) async fn response(&self) -> Option<Cached> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match &*self.lock() {
                SlotState::Done(cached, _) => return Some(cached.clone()),
                SlotState::Abandoned => return None,
                SlotState::Running => {}
            }
            notified.await;
        }
    }
}

/// The right to store a row's response: dropped without [`Completion::complete`], it
/// marks the row as ended without one (its retransmissions are refused, never run).
pub(crate) struct Completion(Arc<Slot>);

impl Completion {
    /// Stores the response of the row.
    pub(crate) fn complete(self, cached: Cached) {
        self.0.finish(SlotState::Done(cached, Instant::now()));
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.0.finish(SlotState::Abandoned);
    }
}

/// Hashes the simulator's own connection numbers (not input from the network, so no
/// need for a keyed hash) and OperationIDs (input from the network, but a simulator has
/// no adversary to fear, and a table lookup per request should not cost a SipHash of
/// 41 bytes; the seed still differs between processes).
#[derive(Default)]
struct ConnectionHasher(u64);

const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

impl std::hash::Hasher for ConnectionHasher {
    fn finish(&self) -> u64 {
        // A final avalanche, so that the low bits (hashbrown's bucket index) and the top
        // seven (its control bytes) both depend on every input bit.
        let h = self.0 ^ (self.0 >> 29);
        h.wrapping_mul(MIX) ^ (h >> 32)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let word = u64::from_le_bytes(c.try_into().unwrap_or_default());
            self.0 = (self.0.rotate_left(23) ^ word).wrapping_mul(MIX);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(MIX);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(MIX);
    }
}

/// [`ConnectionHasher`] seeded once per process.
#[derive(Clone, Copy, Default)]
struct SeededHasher;

impl std::hash::BuildHasher for SeededHasher {
    type Hasher = ConnectionHasher;
    fn build_hasher(&self) -> ConnectionHasher {
        static SEED: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
            std::collections::hash_map::RandomState::new().hash_one(0u64)
        });
        ConnectionHasher(*SEED)
    }
}

/// The OperationMessages table.
#[derive(Default)]
pub(crate) struct Operations {
    rows: Mutex<Table>,
    /// Bytes in the kept responses of the rows (and of rows just removed whose slot a
    /// retransmission still holds).
    kept: Arc<AtomicUsize>,
}

#[derive(Default)]
struct Table {
    rows: HashMap<Arc<str>, Row, SeededHasher>,
    /// Rows oldest first; rows already removed are skipped (and compacted away when
    /// the queue grows past twice the table). Weak: a removed row's response is freed
    /// at once, not when its entry reaches the front.
    order: VecDeque<(Arc<str>, Weak<Slot>)>,
    /// The row whose primary connection each connection is (HTTP/1.1: one request at a
    /// time per connection, so at most one).
    by_connection: HashMap<u64, Arc<str>, BuildHasherDefault<ConnectionHasher>>,
}

/// What to do with a request that carries an OperationID.
pub(crate) enum Admission {
    /// Carry it out, then [`Completion::complete`] with its response.
    Run(Completion),
    /// A retransmission of a row: its response, once made ([`Slot::response`]).
    Replay(Arc<Slot>),
    /// Refused: the OperationID is in use and the request is not a retransmission.
    Reused,
}

impl Operations {
    /// Looks the request up in the table ([MS-WSMV] §3.1.4.1.39's two procedures).
    pub(crate) fn admit(
        &self,
        state: &State,
        id: &Arc<str>,
        retransmission: bool,
        connection: u64,
    ) -> Admission {
        let mut t = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        t.expire(state);
        if let Some(row) = t.rows.get_mut(&**id) {
            if !retransmission {
                return Admission::Reused;
            }
            row.primary = connection;
            let slot = Arc::clone(&row.slot);
            t.by_connection.insert(connection, Arc::clone(id));
            return Admission::Replay(slot);
        }
        // A new request on this connection: the row it was primary for was read.
        if let Some(old) = t.by_connection.remove(&connection)
            && let Entry::Occupied(row) = t.rows.entry(old)
            && row.get().primary == connection
        {
            row.remove().slot.removed.store(true, Ordering::Relaxed);
        }
        let cap = state.config.operation_cache_entries.max(1);
        let budget = state.config.operation_cache_bytes;
        while t.rows.len() >= cap || self.kept.load(Ordering::Relaxed) > budget {
            let Some((oldest, slot)) = t.order.pop_front() else {
                break;
            };
            if slot
                .upgrade()
                .is_some_and(|s| !s.removed.load(Ordering::Relaxed))
            {
                t.remove(&oldest);
            }
        }
        let slot = Arc::new(Slot::counted(&self.kept));
        // One allocation for the id, shared by the three indexes and the echo.
        let key = Arc::clone(id);
        t.rows.insert(
            Arc::clone(&key),
            Row {
                primary: connection,
                slot: Arc::clone(&slot),
            },
        );
        t.order.push_back((Arc::clone(&key), Arc::downgrade(&slot)));
        t.by_connection.insert(connection, key);
        t.compact(cap);
        state
            .counters
            .cached_operations
            .store(t.rows.len() as u64, Ordering::SeqCst);
        Admission::Run(Completion(slot))
    }

    /// Bytes of kept responses now (expired rows dropped first).
    pub(crate) fn bytes(&self, state: &State) -> usize {
        self.rows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .expire(state);
        self.kept.load(Ordering::Relaxed)
    }

    /// Rows now.
    pub(crate) fn len(&self, state: &State) -> usize {
        let mut t = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        t.expire(state);
        t.rows.len()
    }
}

impl Table {
    fn remove(&mut self, id: &str) {
        if let Some(row) = self.rows.remove(id) {
            row.slot.removed.store(true, Ordering::Relaxed);
        }
    }

    /// Drops the oldest rows whose response is older than the retention time.
    fn expire(&mut self, state: &State) {
        let retention = state.config.operation_retention;
        let now = Instant::now();
        while let Some((_, slot)) = self.order.front() {
            let expired = match slot.upgrade() {
                None => true, // already removed and freed: skip
                Some(slot) => {
                    slot.removed.load(Ordering::Relaxed) // already removed: skip
                        || matches!(&*slot.lock(), SlotState::Done(_, at) if now.duration_since(*at) > retention)
                }
            };
            if !expired {
                break;
            }
            if let Some((id, slot)) = self.order.pop_front()
                && slot
                    .upgrade()
                    .is_some_and(|s| !s.removed.load(Ordering::Relaxed))
            {
                self.remove(&id);
            }
        }
        state
            .counters
            .cached_operations
            .store(self.rows.len() as u64, Ordering::SeqCst);
    }

    fn compact(&mut self, cap: usize) {
        if self.order.len() > 2 * cap.max(self.rows.len()) {
            let rows = &self.rows;
            self.order.retain(|(_, slot)| {
                slot.upgrade()
                    .is_some_and(|s| !s.removed.load(Ordering::Relaxed))
            });
            self.by_connection.retain(|_, k| rows.contains_key(k));
        }
    }
}

static HEADER_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new("<s:Header>"));
static P_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| {
        memchr::memmem::Finder::new(
            "xmlns:p=\"http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd\"",
        )
    });

/// The response, with `p:OperationID` and `p:SequenceId` added to its SOAP header
/// unless its envelope was written with them (under `response::ECHO`).
pub(crate) fn ensure_echo(resp: http::Response<SimBody>, id: &str) -> http::Response<SimBody> {
    let echoed = resp.body().first_part().is_some_and(|first| {
        first.starts_with(ENVELOPE_OPEN.as_bytes())
            && first[ENVELOPE_OPEN.len()..].starts_with(ECHO_OPEN.as_bytes())
    });
    if echoed { resp } else { echo(resp, id) }
}

/// The response with `p:OperationID` and `p:SequenceId` added to its SOAP header. A
/// large first part (a whole ReceiveResponse can be one) is not copied: the header goes
/// in as a part of its own between two slices of it.
pub(crate) fn echo(resp: http::Response<SimBody>, id: &str) -> http::Response<SimBody> {
    const HEADER: &[u8] = b"<s:Header>";
    let (parts, body) = resp.into_parts();
    let mut pieces = body.into_parts();
    // The simulator's own envelopes begin with ENVELOPE_OPEN (no search needed, `p`
    // declared on the root); others are searched, and get `p` declared here.
    let at = pieces.first().and_then(|first| {
        if first.starts_with(ENVELOPE_OPEN.as_bytes()) {
            Some((ENVELOPE_OPEN.len(), true))
        } else {
            let at = HEADER_FINDER.find(&first[..first.len().min(4096)])? + HEADER.len();
            Some((at, P_FINDER.find(&first[..at]).is_some()))
        }
    });
    if let Some((at, declared)) = at {
        let first = pieces.remove(0);
        const P: &str = " xmlns:p=\"http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd\"";
        let decl = if declared { "" } else { P };
        let id = escape(id);
        let echo: [&str; 7] = [
            "<p:OperationID",
            decl,
            " s:mustUnderstand=\"false\">",
            &id,
            "</p:OperationID><p:SequenceId",
            decl,
            ">1</p:SequenceId>",
        ];
        let echo_len: usize = echo.iter().map(|s| s.len()).sum();
        if first.len() <= 64 * 1024 {
            // Small: one part (each part can cost the connection a write of its own),
            // written in one allocation.
            let mut whole = Vec::with_capacity(first.len() + echo_len);
            whole.extend_from_slice(&first[..at]);
            for s in echo {
                whole.extend_from_slice(s.as_bytes());
            }
            whole.extend_from_slice(&first[at..]);
            pieces.insert(0, Bytes::from(whole));
        } else {
            let echo = echo.concat();
            pieces.splice(
                0..0,
                [first.slice(..at), Bytes::from(echo), first.slice(at..)],
            );
        }
    }
    http::Response::from_parts(parts, SimBody::from_parts(pieces))
}

fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if memchr::memchr3(b'&', b'<', b'>', s.as_bytes()).is_none() {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;"),
    )
}

/// A request that must complete (and leave its response in its row) even when the
/// connection it came on is gone. It runs in place, as a part of the connection's
/// future, and only if that future is dropped before it completes does the rest of it
/// go on as a task of its own: the same outcome as spawning it at once, without a task
/// per request.
pub(crate) struct Detached<F: Future<Output: Send> + Send + 'static> {
    fut: Option<std::pin::Pin<Box<F>>>,
}

impl<F: Future<Output: Send> + Send + 'static> Detached<F> {
    pub(crate) fn new(fut: F) -> Self {
        Detached {
            fut: Some(Box::pin(fut)),
        }
    }
}

impl<F: Future<Output: Send> + Send + 'static> Future for Detached<F> {
    /// Err when it panicked.
    type Output = Result<F::Output, ()>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let Some(fut) = self.fut.as_mut() else {
            return std::task::Poll::Ready(Err(()));
        };
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx)));
        match polled {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(v)) => {
                self.fut = None;
                std::task::Poll::Ready(Ok(v))
            }
            Err(_) => {
                self.fut = None;
                std::task::Poll::Ready(Err(()))
            }
        }
    }
}

impl<F: Future<Output: Send> + Send + 'static> Drop for Detached<F> {
    fn drop(&mut self) {
        if let Some(fut) = self.fut.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            drop(handle.spawn(fut));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::{ECHO, envelope};

    fn text(resp: http::Response<SimBody>) -> String {
        let parts = resp.into_body().into_parts();
        String::from_utf8(parts.concat()).unwrap()
    }

    fn response(body: String) -> http::Response<SimBody> {
        http::Response::new(SimBody::from(body))
    }

    #[tokio::test]
    async fn the_echo_is_written_once_with_the_envelope_or_spliced_in() {
        let id = "uuid:A<B";
        // Written under ECHO: the envelope carries it, and ensure_echo adds nothing.
        let written = ECHO
            .scope(std::sync::Arc::from(id), async {
                envelope("urn:a", None, |_| {})
            })
            .await;
        let out = text(ensure_echo(response(written), id));
        assert_eq!(out.matches("<p:OperationID").count(), 1, "{out}");
        assert!(
            out.contains("<p:OperationID s:mustUnderstand=\"false\">uuid:A&lt;B</p:OperationID><p:SequenceId>1</p:SequenceId>"),
            "{out}"
        );
        // Written without it: spliced in at the same place, the same bytes.
        let plain = envelope("urn:a", None, |_| {});
        let spliced = text(ensure_echo(response(plain), id));
        let strip = |s: &str| {
            let m = s.find("<a:MessageID>").unwrap();
            let e = s.find("</a:MessageID>").unwrap();
            format!("{}{}", &s[..m], &s[e..])
        };
        assert_eq!(strip(&spliced), strip(&out));
        // Another envelope (no `p` on its root): searched, and `p` declared on the echo.
        let other = "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Header></s:Header><s:Body/></s:Envelope>";
        let out = text(ensure_echo(response(other.into()), id));
        let req = crate::SimRequest::parse(out.as_bytes());
        let root = crate::soap::xml::parse(out.as_bytes()).unwrap();
        let header = root.child(crate::soap::ns::SOAP, "Header").unwrap();
        let wsmv = crate::soap::ns::WSMV;
        assert_eq!(header.child_text(wsmv, "OperationID"), Some(id));
        assert_eq!(header.child_text(wsmv, "SequenceId"), Some("1"));
        // (Not a request: refused for want of its addressing headers, not as malformed.)
        assert!(req.is_err());
    }

    #[test]
    fn the_request_reader_takes_operation_ids_in_either_form() {
        use crate::soap::envelope::{Envelope, FIRST_TRANSMISSION_MARK, RETRANSMISSION_MARK};
        let id = uuid::Uuid::new_v4();
        let env = Envelope {
            resource_uri: Some("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"),
            operation_id: Some(id),
            ..Envelope::new("http://x/Get", "http://h:5985/wsman")
        }
        .write(|_| {});
        let want = format!("uuid:{}", id.hyphenated().to_string().to_uppercase());
        let req = crate::SimRequest::parse(env.as_bytes()).unwrap();
        assert_eq!(req.operation_id.as_deref(), Some(want.as_str()));
        assert_eq!(req.sequence_id.as_deref(), Some("1"));
        assert!(!req.retransmission);
        let marked = env.replace(FIRST_TRANSMISSION_MARK, RETRANSMISSION_MARK);
        assert!(
            crate::SimRequest::parse(marked.as_bytes())
                .unwrap()
                .retransmission
        );
        // Declaring `p` itself (read from the tree, as before).
        let own = env.replace(
            FIRST_TRANSMISSION_MARK,
            "<p:OperationID xmlns:p=\"http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd\" s:mustUnderstand=\"true\">",
        );
        let req = crate::SimRequest::parse(own.as_bytes()).unwrap();
        assert_eq!(req.operation_id.as_deref(), Some(want.as_str()));
        assert!(req.retransmission);
        // SequenceID, and a SequenceId other than 1, come through for the checks.
        let caps = env.replace(
            "<p:SequenceId s:mustUnderstand=\"false\">1</p:SequenceId>",
            "<p:SequenceID>2</p:SequenceID>",
        );
        let req = crate::SimRequest::parse(caps.as_bytes()).unwrap();
        assert_eq!(req.sequence_id.as_deref(), Some("2"));
    }

    #[test]
    fn a_kept_response_comes_back_with_its_status_headers_and_body() {
        use http::header::{CONTENT_TYPE, HeaderValue};
        for extra in [false, true] {
            let mut resp = http::Response::new(SimBody::from_parts([
                Bytes::from_static(b"a"),
                Bytes::from_static(b"b"),
            ]));
            *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(crate::server::SOAP_CONTENT_TYPE),
            );
            if extra {
                resp.headers_mut()
                    .insert("x-extra", HeaderValue::from_static("1"));
            }
            let (head, body) = resp.into_parts();
            let cached = Cached::of(&head, &body);
            // The usual headers are not copied, and come back all the same.
            assert_eq!(cached.headers.is_some(), extra);
            let again = cached.response();
            assert_eq!(again.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(again.headers(), &head.headers);
            assert_eq!(text(again), "ab");
        }
    }

    #[tokio::test]
    async fn a_slot_gives_its_response_to_waiters_or_says_it_has_none() {
        let cached = Cached {
            status: StatusCode::OK,
            headers: Some(HeaderMap::new()),
            parts: vec![Bytes::from_static(b"r")],
        };
        let slot = Arc::new(Slot::default());
        let waiter = tokio::spawn({
            let slot = Arc::clone(&slot);
            async move { slot.response().await }
        });
        tokio::task::yield_now().await;
        Completion(Arc::clone(&slot)).complete(cached);
        let got = waiter.await.unwrap().expect("the response");
        assert_eq!(got.parts, vec![Bytes::from_static(b"r")]);
        // Already done: at once, and a Completion dropped later changes nothing.
        drop(Completion(Arc::clone(&slot)));
        assert!(slot.response().await.is_some());
        // Dropped without a response: waiters, present and later, get None.
        let slot = Arc::new(Slot::default());
        let waiter = tokio::spawn({
            let slot = Arc::clone(&slot);
            async move { slot.response().await }
        });
        tokio::task::yield_now().await;
        drop(Completion(Arc::clone(&slot)));
        assert!(waiter.await.unwrap().is_none());
        assert!(slot.response().await.is_none());
    }
}
