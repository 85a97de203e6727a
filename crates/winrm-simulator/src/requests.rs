//! The log of the requests a simulator received ([`Simulator::requests`]), for tests
//! that assert what their code sent.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::{SimRequest, Simulator};

/// The most entries the log keeps; the oldest go first.
pub const REQUEST_LOG_CAPACITY: usize = 10_000;
/// The most bytes of a request's SOAP Body kept in [`LoggedRequest::body`].
const BODY_EXCERPT: usize = 4096;

/// One request as the simulator read it (after authentication and unsealing).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoggedRequest {
    /// `wsa:Action` (empty for Identify).
    pub action: String,
    /// `w:ResourceURI`, if any.
    pub resource_uri: Option<String>,
    /// The text selectors of `w:SelectorSet`, as `(name, value)`.
    pub selectors: Vec<(String, String)>,
    /// The XML inside the SOAP Body as sent, cut at 4 KiB.
    pub body: String,
    /// When the simulator read it.
    pub at: SystemTime,
    /// `w:OperationTimeout`, if any.
    pub operation_timeout: Option<Duration>,
    /// `w:MaxEnvelopeSize`, if any.
    pub max_envelope_size: Option<u32>,
    /// The options of `w:OptionSet`, as `(name, value)` (e.g. `WINRS_CODEPAGE`).
    pub options: Vec<(String, String)>,
    /// Why the simulator could not read the request (it answered with this fault):
    /// `None` for every request it read. Such an entry has an empty `action` unless
    /// the envelope's Action could be read.
    pub refused: Option<String>,
}

impl LoggedRequest {
    /// The value of the option `name` (case-insensitive).
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of the selector `name` (case-insensitive).
    pub fn selector(&self, name: &str) -> Option<&str> {
        self.selectors
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The bounded log.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    entries: Mutex<VecDeque<LoggedRequest>>,
}

impl RequestLog {
    /// Records `req`, read from the envelope `raw`.
    pub(crate) fn record(&self, req: &SimRequest, raw: &[u8]) {
        let entry = LoggedRequest {
            action: req.action.clone(),
            resource_uri: req.resource_uri.clone(),
            selectors: req
                .selectors
                .iter()
                .filter_map(|s| Some((s.name.clone(), s.text()?.to_string())))
                .collect(),
            body: body_excerpt(raw),
            at: SystemTime::now(),
            operation_timeout: req.operation_timeout,
            max_envelope_size: req.max_envelope_size,
            options: req
                .options
                .iter()
                .map(|o| (o.name.clone(), o.value.clone()))
                .collect(),
            refused: None,
        };
        self.push(entry);
    }

    /// Records a request the simulator could not read, with the reason of its fault.
    pub(crate) fn record_refused(&self, raw: &[u8], reason: &str) {
        self.push(LoggedRequest {
            action: String::new(),
            resource_uri: None,
            selectors: Vec::new(),
            body: body_excerpt(raw),
            at: SystemTime::now(),
            operation_timeout: None,
            max_envelope_size: None,
            options: Vec::new(),
            refused: Some(reason.to_string()),
        });
    }

    fn push(&self, entry: LoggedRequest) {
        let mut entries = super::wmi::lock(&self.entries);
        if entries.len() >= REQUEST_LOG_CAPACITY {
            entries.pop_front();
        }
        entries.push_back(entry);
    }
}

/// The text between the SOAP Body's start and end tags (any prefix), at most
/// `BODY_EXCERPT` bytes on a character boundary.
fn body_excerpt(raw: &[u8]) -> String {
    // Only the part from the Body on is decoded (the headers come first).
    let from = memchr::memmem::find(raw, b":Body")
        .and_then(|at| raw[..at].iter().rposition(|&c| c == b'<'))
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&raw[from..]);
    let open = [":Body>", ":Body "]
        .iter()
        .filter_map(|t| text.find(t))
        .min()
        .and_then(|at| text[at..].find('>').map(|gt| at + gt + 1));
    let close = text.rfind(":Body>").and_then(|at| text[..at].rfind("</"));
    let inner = match (open, close) {
        (Some(o), Some(c)) if o <= c => text[o..c].trim(),
        _ => "",
    };
    let mut end = inner.len().min(BODY_EXCERPT);
    while !inner.is_char_boundary(end) {
        end -= 1;
    }
    inner[..end].to_string()
}

impl Simulator {
    /// The requests received so far, oldest first (the last
    /// [`REQUEST_LOG_CAPACITY`]): every parsed request that passed authentication,
    /// Identify included, whether or not an [`Injection`](super::Injection) changed
    /// its answer. Bodies are logged as sent: do not log secrets in a test's commands.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        super::wmi::lock(&self.state.requests.entries)
            .iter()
            .cloned()
            .collect()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        super::wmi::lock(&self.state.requests.entries).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::{REQUEST_LOG_CAPACITY, RequestLog, body_excerpt};
    use crate::SimRequest;

    #[test]
    fn the_log_keeps_the_newest_entries() {
        let raw = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body><wsmid:Identify xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"/></s:Body></s:Envelope>"#;
        let mut req = SimRequest::parse(raw).unwrap();
        let log = RequestLog::default();
        for i in 0..REQUEST_LOG_CAPACITY + 5 {
            req.action = format!("urn:{i}");
            log.record(&req, raw);
        }
        let entries = crate::wmi::lock(&log.entries);
        assert_eq!(entries.len(), REQUEST_LOG_CAPACITY);
        assert_eq!(entries.front().unwrap().action, "urn:5");
        assert_eq!(
            entries.back().unwrap().action,
            format!("urn:{}", REQUEST_LOG_CAPACITY + 4)
        );
        assert!(
            entries[0].body.starts_with("<wsmid:Identify"),
            "{}",
            entries[0].body
        );
    }

    #[test]
    fn body_excerpt_takes_the_body_content() {
        let raw = br#"<s:Envelope xmlns:s="x"><s:Header><a:To>t</a:To></s:Header><s:Body><rsp:Signal CommandId="1"/></s:Body></s:Envelope>"#;
        assert_eq!(body_excerpt(raw), r#"<rsp:Signal CommandId="1"/>"#);
        assert_eq!(body_excerpt(b"<s:Envelope><s:Body/></s:Envelope>"), "");
        assert_eq!(body_excerpt(b"garbage"), "");
        let long = format!("<s:Body>{}</s:Body>", "\u{e9}".repeat(3000));
        let cut = body_excerpt(long.as_bytes());
        assert!(cut.len() <= 4096 && cut.len() >= 4094, "{}", cut.len());
    }
}
