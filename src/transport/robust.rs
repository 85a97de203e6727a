//! Robust Connections, the client's side ([MS-WSMV] §3.1.4.1.39, §3.2.5.3): every
//! request for a resource carries a fresh `p:OperationID`; a server that supports
//! Robust Connections for the resource echoes it in its response. Once it has, a request
//! whose response was lost (or that a proxy refused with 502/503/504, or that the
//! network kept from connecting) is sent again on a fresh connection with the same
//! OperationID marked `s:mustUnderstand="true"`, and the server answers from its cache
//! instead of carrying the request out a second time.
//!
//! The OperationID and ResourceURI are read back from the request text: this crate's
//! envelope writer emits them in one fixed form, at a known place (right after `a:To`,
//! the first header; `envelope::HEADER_AT`), so that reading them costs no search;
//! requests in another form are searched (pinned by the tests below).

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use bytes::Bytes;

use crate::error::Error;
use crate::soap::envelope::{FIRST_TRANSMISSION_MARK, HEADER_AT, RETRANSMISSION_MARK};

/// Retransmissions after the first attempt, at most.
pub(crate) const MAX_RETRANSMISSIONS: u32 = 8;
/// How long after the first failure retransmissions may still start (§3.2.5.3: 185 s).
pub(crate) const RETRY_WINDOW: Duration = Duration::from_secs(185);
/// How far into a message the headers are looked for.
const HEADER_SCAN: usize = 4096;

/// The resource URIs whose server has echoed an OperationID: only for those is a lost
/// request retransmitted. A server that does not support Robust Connections for a
/// resource ignores the OperationID, and would carry a retransmission out again.
#[derive(Debug, Default)]
pub(crate) struct RobustState {
    /// A handful at most (the shell URIs and a few CIM classes), so a list compared
    /// with memcmp beats hashing the URI on every request.
    supported: Mutex<Vec<Box<[u8]>>>,
}

impl RobustState {
    pub(crate) fn supports(&self, resource_uri: &[u8]) -> bool {
        self.supported
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|known| **known == *resource_uri)
    }

    /// Records support when `response` echoes `operation_id` (looked for only until
    /// support is known).
    pub(crate) fn observe(&self, resource_uri: &[u8], operation_id: &[u8], response: &[u8]) {
        if self.supports(resource_uri)
            || find(&response[..response.len().min(HEADER_SCAN)], operation_id).is_none()
        {
            return;
        }
        tracing::debug!(
            resource_uri = %String::from_utf8_lossy(resource_uri),
            "the server supports Robust Connections"
        );
        let mut supported = self.supported.lock().unwrap_or_else(|p| p.into_inner());
        if !supported.iter().any(|known| **known == *resource_uri) {
            supported.push(resource_uri.into());
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    // This crate's OperationIDs are `uuid:` and a GUID: a searcher built for each one
    // costs more than the search (about 3,000 instructions per response), so look for
    // the fixed prefix, built once, and compare what follows it.
    if needle.starts_with(UUID_PREFIX) {
        let mut from = 0;
        while let Some(i) = UUID.find(&hay[from..]) {
            let at = from + i;
            if hay[at..].starts_with(needle) {
                return Some(at);
            }
            from = at + 1;
        }
        return None;
    }
    memchr::memmem::find(hay, needle)
}

const UUID_PREFIX: &[u8] = b"uuid:";

/// Searchers for the fixed needles, built once (building one costs more than a search
/// of a request's headers).
type Needle = LazyLock<memchr::memmem::Finder<'static>>;
static FIRST_MARK: Needle = LazyLock::new(|| memchr::memmem::Finder::new(FIRST_TRANSMISSION_MARK));
static RETRANSMISSION: Needle = LazyLock::new(|| memchr::memmem::Finder::new(RETRANSMISSION_MARK));
static RESOURCE_OPEN: Needle =
    LazyLock::new(|| memchr::memmem::Finder::new("<w:ResourceURI s:mustUnderstand=\"true\">"));
static RESOURCE_CLOSE: Needle = LazyLock::new(|| memchr::memmem::Finder::new("</w:ResourceURI>"));
static UUID: Needle = LazyLock::new(|| memchr::memmem::Finder::new(UUID_PREFIX));

/// Searchers for the start of the two marks: short needles (up to 32 bytes) get
/// memchr's fastest searcher, long ones a slower one.
static OPERATION_ID_OPEN: Needle = LazyLock::new(|| memchr::memmem::Finder::new("<p:OperationID "));
static RESOURCE_URI_OPEN: Needle = LazyLock::new(|| memchr::memmem::Finder::new("<w:ResourceURI "));

/// Where `mark` (which begins with what `start` finds) first is in `hay`.
fn find_mark(hay: &[u8], start: &Needle, mark: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = hay.get(from..).and_then(|rest| start.find(rest)) {
        let at = from + at;
        if hay[at..].starts_with(mark) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The OperationID and the ResourceURI of a request written by this crate: read where
/// the envelope writer puts them (`<s:Header><a:To>…</a:To><w:ResourceURI …>…
/// </w:ResourceURI><p:OperationID …>`, see `envelope::HEADER_AT`), else searched for.
pub(crate) fn robust_headers(request: &[u8]) -> Option<(&[u8], &[u8])> {
    written_in_place(request).or_else(|| Some((operation_id(request)?, resource_uri(request)?)))
}

/// [`robust_headers`] at the place the writer puts them; None when they are not there.
fn written_in_place(request: &[u8]) -> Option<(&[u8], &[u8])> {
    const TO: &[u8] = b"<s:Header><a:To>";
    const URI: &[u8] = b"</a:To><w:ResourceURI s:mustUnderstand=\"true\">";
    const URI_END: &[u8] = b"</w:ResourceURI>";
    let to = request.get(HEADER_AT..)?.strip_prefix(TO)?;
    // Character data (escaped: no `<` in it) up to the end tag.
    let after_to = &to[memchr::memchr(b'<', to)?..];
    let uri_text = after_to.strip_prefix(URI)?;
    let uri_len = memchr::memchr(b'<', uri_text)?;
    let id = uri_text[uri_len..]
        .strip_prefix(URI_END)?
        .strip_prefix(FIRST_TRANSMISSION_MARK.as_bytes())?
        .get(..41)?;
    id.starts_with(b"uuid:")
        .then_some((id, &uri_text[..uri_len]))
}

/// The OperationID of a request written by this crate (`uuid:` and the 36 characters).
pub(crate) fn operation_id(request: &[u8]) -> Option<&[u8]> {
    let head = &request[..request.len().min(HEADER_SCAN)];
    let at = find_mark(head, &OPERATION_ID_OPEN, FIRST_TRANSMISSION_MARK.as_bytes())?
        + FIRST_TRANSMISSION_MARK.len();
    let id = head.get(at..at + 41)?;
    id.starts_with(b"uuid:").then_some(id)
}

/// The ResourceURI of a request written by this crate.
pub(crate) fn resource_uri(request: &[u8]) -> Option<&[u8]> {
    let head = &request[..request.len().min(HEADER_SCAN)];
    let at =
        find_mark(head, &RESOURCE_URI_OPEN, RESOURCE_OPEN.needle())? + RESOURCE_OPEN.needle().len();
    let len = RESOURCE_CLOSE.find(&head[at..])?;
    Some(&head[at..at + len])
}

/// The same request marked as a retransmission.
pub(crate) fn mark_retransmission(request: &Bytes) -> Bytes {
    let Some(at) = FIRST_MARK.find(&request[..request.len().min(HEADER_SCAN)]) else {
        return request.clone();
    };
    let mut out = Vec::with_capacity(request.len());
    out.extend_from_slice(&request[..at]);
    out.extend_from_slice(RETRANSMISSION_MARK.as_bytes());
    out.extend_from_slice(&request[at + FIRST_TRANSMISSION_MARK.len()..]);
    Bytes::from(out)
}

/// The same request as a new operation: a fresh OperationID, marked as a first
/// transmission. For sending a request again as itself (a read whose response was lost,
/// a retry after a quota fault): the server answered or may have answered the old
/// OperationID, and would refuse it unmarked.
pub(crate) fn renew_operation_id(request: &Bytes) -> Bytes {
    let head = &request[..request.len().min(HEADER_SCAN)];
    let (at, mark) = match FIRST_MARK.find(head) {
        Some(at) => (at, FIRST_TRANSMISSION_MARK),
        None => match RETRANSMISSION.find(head) {
            Some(at) => (at, RETRANSMISSION_MARK),
            None => return request.clone(),
        },
    };
    let id_at = at + mark.len();
    if head.get(id_at..id_at + 5) != Some(b"uuid:".as_slice()) || head.len() < id_at + 41 {
        return request.clone();
    }
    let mut out = Vec::with_capacity(request.len());
    out.extend_from_slice(&request[..at]);
    out.extend_from_slice(FIRST_TRANSMISSION_MARK.as_bytes());
    out.extend_from_slice(b"uuid:");
    out.extend_from_slice(
        uuid::Uuid::new_v4()
            .hyphenated()
            .to_string()
            .to_uppercase()
            .as_bytes(),
    );
    out.extend_from_slice(&request[id_at + 41..]);
    Bytes::from(out)
}

/// Whether a failed attempt may be retransmitted (the server dedups it by OperationID):
/// every failure of the network or of a proxy in between, not an answer of the server.
pub(crate) fn retransmittable(e: &Error) -> bool {
    match e {
        Error::ResponseLost { .. }
        | Error::HttpTimeout(_)
        | Error::Connect { .. }
        | Error::Connection { .. } => true,
        Error::Http { status, .. } => matches!(status, 502..=504),
        // The proxy could not be reached (not: it refused the tunnel, which a
        // retransmission would meet again).
        Error::Proxy { .. } => e.is_retryable(),
        _ => false,
    }
}

/// The wait before retransmission `n` (1-based): none for the first (a lost connection
/// is usually just that connection), then 50 ms doubling, at most 2 s.
pub(crate) fn backoff(n: u32) -> Duration {
    if n <= 1 {
        return Duration::ZERO;
    }
    Duration::from_millis(50)
        .saturating_mul(2u32.saturating_pow(n.saturating_sub(2).min(10)))
        .min(Duration::from_secs(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_proxy_is_retransmitted_a_refusing_one_is_not() {
        let unreachable = Error::Proxy {
            proxy: "127.0.0.1:3128".into(),
            message: "cannot connect to the proxy".into(),
            source: Some(Box::new(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            ))),
        };
        assert!(retransmittable(&unreachable));
        let refused = Error::Proxy {
            proxy: "127.0.0.1:3128".into(),
            message: "CONNECT refused: HTTP/1.1 407 Proxy Authentication Required".into(),
            source: None,
        };
        assert!(!retransmittable(&refused));
    }
    use crate::soap::Envelope;
    use uuid::Uuid;

    proptest::proptest! {
        /// The `uuid:` search finds what a plain substring search finds, overlapping
        /// and partial prefixes included.
        #[test]
        fn the_id_search_finds_what_a_substring_search_finds(
            hay in proptest::collection::vec(proptest::sample::select(b"uid:-ab".to_vec()), 0..80),
            tail in proptest::collection::vec(proptest::sample::select(b"uid:-ab".to_vec()), 0..6),
        ) {
            let mut needle = UUID_PREFIX.to_vec();
            needle.extend_from_slice(&tail);
            proptest::prop_assert_eq!(find(&hay, &needle), memchr::memmem::find(&hay, &needle));
            let mut planted = hay.clone();
            planted.extend_from_slice(&needle);
            proptest::prop_assert_eq!(find(&planted, &needle), memchr::memmem::find(&planted, &needle));
        }
    }

    #[test]
    fn reads_back_what_the_writer_wrote() {
        let id = Uuid::new_v4();
        let env = Envelope {
            resource_uri: Some("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"),
            operation_id: Some(id),
            ..Envelope::new("http://x/Create", "http://h:5985/wsman")
        }
        .write(|w| w.raw("<x/>"));
        let body = Bytes::from(env);
        let op = operation_id(&body).expect("the OperationID");
        assert_eq!(
            std::str::from_utf8(op).unwrap(),
            format!("uuid:{}", id.to_string().to_uppercase())
        );
        assert_eq!(
            resource_uri(&body),
            Some(&b"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"[..])
        );
        // At the place the writer puts them, and the same as the search finds.
        assert_eq!(
            written_in_place(&body),
            Some((op, resource_uri(&body).unwrap()))
        );
        assert_eq!(robust_headers(&body), written_in_place(&body));
        // Elsewhere (another writer, extra namespaces on the root): found by the search.
        let moved = std::str::from_utf8(&body).unwrap().replacen(
            "<s:Envelope ",
            "<s:Envelope xmlns:x=\"urn:x\" ",
            1,
        );
        assert_eq!(written_in_place(moved.as_bytes()), None);
        assert_eq!(
            robust_headers(moved.as_bytes()),
            Some((op, resource_uri(&body).unwrap()))
        );
        // Retransmissions are not read in place (nor sent as the first attempt).
        assert_eq!(written_in_place(&mark_retransmission(&body)), None);
        let again = mark_retransmission(&body);
        let text = std::str::from_utf8(&again).unwrap();
        assert!(text.contains(RETRANSMISSION_MARK), "{text}");
        assert!(!text.contains(FIRST_TRANSMISSION_MARK), "{text}");
        assert_eq!(
            text.replace(RETRANSMISSION_MARK, FIRST_TRANSMISSION_MARK),
            std::str::from_utf8(&body).unwrap()
        );
        // Still well-formed, and the header still says the same OperationID.
        let root = crate::soap::xml::parse(&again).unwrap();
        let header = root.child(crate::soap::ns::SOAP, "Header").unwrap();
        let el = header.child(crate::soap::ns::WSMV, "OperationID").unwrap();
        assert_eq!(el.text.as_bytes(), op);
    }

    #[test]
    fn a_renewed_request_is_a_new_first_transmission() {
        let env = Envelope {
            resource_uri: Some("http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/X"),
            operation_id: Some(Uuid::new_v4()),
            ..Envelope::new("http://x/Get", "http://h:5985/wsman")
        }
        .write(|_| {});
        let body = Bytes::from(env);
        let old = operation_id(&body).unwrap().to_vec();
        for source in [body.clone(), mark_retransmission(&body)] {
            let renewed = renew_operation_id(&source);
            let new = operation_id(&renewed).expect("a first transmission again");
            assert_ne!(new, &old[..]);
            assert_eq!(renewed.len(), body.len());
            crate::soap::xml::parse(&renewed).unwrap();
        }
    }

    #[test]
    fn support_is_per_resource_and_needs_the_echo() {
        let s = RobustState::default();
        s.observe(
            b"r1",
            b"uuid:ABC",
            b"<s:Header><p:OperationID>uuid:XYZ</p:OperationID>",
        );
        assert!(!s.supports(b"r1"));
        s.observe(
            b"r1",
            b"uuid:ABC",
            b"<s:Header><p:OperationID>uuid:ABC</p:OperationID>",
        );
        assert!(s.supports(b"r1") && !s.supports(b"r2"));
    }

    #[test]
    fn what_is_retransmitted() {
        assert!(retransmittable(&Error::response_lost(
            std::io::Error::other("x")
        )));
        assert!(retransmittable(&Error::Http {
            status: 503,
            excerpt: String::new()
        }));
        assert!(!retransmittable(&Error::Http {
            status: 500,
            excerpt: String::new()
        }));
        assert!(!retransmittable(&Error::Auth("no".into())));
        assert!(backoff(1).is_zero() && backoff(2) < backoff(4));
        assert_eq!(backoff(30), Duration::from_secs(2));
    }
}
