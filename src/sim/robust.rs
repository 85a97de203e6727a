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
//! `SimConfig::operation_cache_entries` rows (the oldest go first), and a row is kept at
//! most `SimConfig::operation_retention` after its response was made (the Response
//! Retention Timer).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use tokio::sync::watch;

use super::State;
use super::body::SimBody;

/// A response kept for retransmissions (before sealing).
#[derive(Clone, Debug)]
pub(crate) struct Cached {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub parts: Vec<Bytes>,
}

impl Cached {
    pub(crate) fn response(&self) -> http::Response<SimBody> {
        let mut resp = http::Response::new(SimBody::from_parts(self.parts.iter().cloned()));
        *resp.status_mut() = self.status;
        *resp.headers_mut() = self.headers.clone();
        resp
    }
}

struct Row {
    primary: u64,
    /// None while the request is being carried out.
    done: watch::Receiver<Option<(Cached, Instant)>>,
}

/// The OperationMessages table.
#[derive(Default)]
pub(crate) struct Operations {
    rows: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    rows: HashMap<String, Row>,
    order: VecDeque<String>,
}

/// What to do with a request that carries an OperationID.
pub(crate) enum Admission {
    /// Carry it out, then [`Operations::complete`] with the sender.
    Run(watch::Sender<Option<(Cached, Instant)>>),
    /// A retransmission of a row: its response, once made.
    Replay(watch::Receiver<Option<(Cached, Instant)>>),
    /// Refused: the OperationID is in use and the request is not a retransmission.
    Reused,
}

impl Operations {
    /// Looks the request up in the table ([MS-WSMV] §3.1.4.1.39's two procedures).
    pub(crate) fn admit(
        &self,
        state: &State,
        id: &str,
        retransmission: bool,
        connection: u64,
    ) -> Admission {
        let mut t = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        t.expire(state);
        if let Some(row) = t.rows.get_mut(id) {
            if !retransmission {
                return Admission::Reused;
            }
            row.primary = connection;
            return Admission::Replay(row.done.clone());
        }
        // A new request on this connection: its earlier rows were read.
        let stale: Vec<String> = t
            .rows
            .iter()
            .filter(|(_, r)| r.primary == connection)
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            t.remove(&k);
        }
        while t.rows.len() >= state.config.operation_cache_entries.max(1) {
            let Some(oldest) = t.order.pop_front() else {
                break;
            };
            t.rows.remove(&oldest);
        }
        let (tx, rx) = watch::channel(None);
        t.rows.insert(
            id.to_string(),
            Row {
                primary: connection,
                done: rx,
            },
        );
        t.order.push_back(id.to_string());
        state
            .counters
            .cached_operations
            .store(t.rows.len() as u64, Ordering::SeqCst);
        Admission::Run(tx)
    }

    /// Stores the response of a row.
    pub(crate) fn complete(tx: &watch::Sender<Option<(Cached, Instant)>>, cached: Cached) {
        let _ = tx.send(Some((cached, Instant::now())));
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
        self.rows.remove(id);
        self.order.retain(|k| k != id);
    }

    /// Drops rows whose response is older than the retention time.
    fn expire(&mut self, state: &State) {
        let retention = state.config.operation_retention;
        let now = Instant::now();
        let old: Vec<String> = self
            .rows
            .iter()
            .filter(|(_, r)| {
                r.done
                    .borrow()
                    .as_ref()
                    .is_some_and(|(_, at)| now.duration_since(*at) > retention)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in old {
            self.remove(&k);
        }
        state
            .counters
            .cached_operations
            .store(self.rows.len() as u64, Ordering::SeqCst);
    }
}

/// The response with `p:OperationID` and `p:SequenceId` added to its SOAP header.
pub(crate) fn echo(resp: http::Response<SimBody>, id: &str) -> http::Response<SimBody> {
    let (parts, body) = resp.into_parts();
    let mut pieces = body.into_parts();
    if let Some(first) = pieces.first_mut()
        && let Some(at) = first
            .windows(b"<s:Header>".len())
            .position(|w| w == b"<s:Header>")
    {
        let at = at + b"<s:Header>".len();
        let mut head = Vec::with_capacity(first.len() + 200);
        head.extend_from_slice(&first[..at]);
        head.extend_from_slice(b"<p:OperationID xmlns:p=\"http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd\" s:mustUnderstand=\"false\">");
        head.extend_from_slice(escape(id).as_bytes());
        head.extend_from_slice(b"</p:OperationID><p:SequenceId xmlns:p=\"http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd\">1</p:SequenceId>");
        head.extend_from_slice(&first[at..]);
        *first = Bytes::from(head);
    }
    http::Response::from_parts(parts, SimBody::from_parts(pieces))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
