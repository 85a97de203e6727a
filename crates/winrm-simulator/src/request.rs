//! Reads a request as a Windows WinRM endpoint would: headers by namespace URI, the
//! addressing checks of [MS-WSMV] §3.1.4.1, and the body element.

use std::time::Duration;

use crate::soap::cim::{parse_duration, read_selector_set};
use crate::soap::envelope::{OptionItem, Selector};
use crate::soap::ns;
use crate::soap::xml::{self, Element};

use super::response::SimFault;

/// A parsed request.
#[derive(Debug, Clone)]
pub struct SimRequest {
    /// `wsa:Action` (empty for Identify).
    pub action: String,
    /// `wsa:To`.
    pub to: Option<String>,
    /// `w:ResourceURI`.
    pub resource_uri: Option<String>,
    /// `wsa:MessageID`.
    pub message_id: Option<String>,
    /// `w:OperationTimeout`.
    pub operation_timeout: Option<Duration>,
    /// `w:MaxEnvelopeSize`.
    pub max_envelope_size: Option<u32>,
    /// `w:SelectorSet`.
    pub selectors: Vec<Selector>,
    /// `w:OptionSet`.
    pub options: Vec<OptionItem>,
    /// `p:SessionId`.
    pub session_id: Option<String>,
    /// `p:OperationID` (Robust Connections, [MS-WSMV] §3.1.4.1.39).
    pub operation_id: Option<String>,
    /// True when the OperationID says `s:mustUnderstand="true"`: a retransmission.
    pub retransmission: bool,
    /// `p:SequenceId` (or `p:SequenceID`).
    pub sequence_id: Option<String>,
    /// True for a `wsmid:Identify` request.
    pub identify: bool,
    /// The `s:Body` element.
    pub body: Element,
}

impl SimRequest {
    /// Parses and checks a request. Identify needs no addressing headers; every other
    /// request needs Action, MessageID and an anonymous ReplyTo.
    ///
    /// # Errors
    /// The fault Windows would answer with.
    pub fn parse(bytes: &[u8]) -> Result<SimRequest, SimFault> {
        // An XML parser refuses what XML 1.0 does not allow, raw or as a reference.
        if let Some(detail) = invalid_xml_char(bytes) {
            return Err(SimFault::malformed(&detail));
        }
        // OperationID and SequenceId come back read, not as elements of the header.
        let (root, robust) =
            xml::parse_robust(bytes).map_err(|e| SimFault::malformed(&e.to_string()))?;
        if !root.is(ns::SOAP, "Envelope") {
            return Err(SimFault::malformed(
                "the root element is not a SOAP 1.2 Envelope",
            ));
        }
        let mut header = Element::default();
        let mut body = None;
        for c in root.children {
            if c.is(ns::SOAP, "Header") {
                header = c;
            } else if c.is(ns::SOAP, "Body") {
                body = Some(c);
            }
        }
        let body = body.ok_or_else(|| SimFault::malformed("the envelope has no Body"))?;
        let identify = body.child(ns::IDENTITY, "Identify").is_some();
        let text =
            |n: &str, nss: &[&str]| header.child_any(nss, n).map(|e| e.text.trim().to_string());
        let action = text("Action", &[ns::ADDRESSING]).unwrap_or_default();
        let message_id = text("MessageID", &[ns::ADDRESSING]);
        let reply_to = header
            .child(ns::ADDRESSING, "ReplyTo")
            .and_then(|r| r.child_text(ns::ADDRESSING, "Address"))
            .map(str::to_string);
        let operation_timeout = match text("OperationTimeout", &[ns::WSMAN]) {
            Some(t) => Some(
                parse_duration(&t)
                    .ok_or_else(|| SimFault::invalid_header("OperationTimeout", &t))?,
            ),
            None => None,
        };
        let max_envelope_size = match text("MaxEnvelopeSize", &[ns::WSMAN]) {
            Some(t) => Some(
                t.parse::<u32>()
                    .map_err(|_| SimFault::invalid_header("MaxEnvelopeSize", &t))?,
            ),
            None => None,
        };
        let req = SimRequest {
            to: text("To", &[ns::ADDRESSING]),
            resource_uri: text("ResourceURI", &[ns::WSMAN]),
            operation_timeout,
            max_envelope_size,
            selectors: header
                .child(ns::WSMAN, "SelectorSet")
                .map(read_selector_set)
                .unwrap_or_default(),
            options: header
                .child(ns::WSMAN, "OptionSet")
                .map(|set| {
                    set.children_named(ns::WSMAN, "Option")
                        .map(|o| OptionItem {
                            name: o.attr("Name").unwrap_or("").to_string(),
                            value: o.text.trim().to_string(),
                            must_comply: o
                                .attr("MustComply")
                                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
                            type_name: o.attr("Type").map(str::to_string),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            session_id: text("SessionId", &[ns::WSMV]),
            // Read by the parser, or (when they declare namespaces of their own) in
            // the header as elements.
            retransmission: match &robust.operation_id {
                Some(_) => robust.must_understand,
                None => header
                    .child(ns::WSMV, "OperationID")
                    .and_then(|e| e.attr_ns(ns::SOAP, "mustUnderstand"))
                    .is_some_and(|v| v == "true" || v == "1"),
            },
            operation_id: robust
                .operation_id
                .or_else(|| text("OperationID", &[ns::WSMV])),
            sequence_id: robust
                .sequence_id
                .or_else(|| text("SequenceId", &[ns::WSMV]))
                .or(robust.sequence_id_caps)
                .or_else(|| text("SequenceID", &[ns::WSMV])),
            identify,
            action,
            message_id,
            body,
        };
        if identify {
            return Ok(req);
        }
        if req.action.is_empty() {
            return Err(SimFault::missing_header("Action"));
        }
        if req.message_id.is_none() {
            return Err(SimFault::missing_header("MessageID"));
        }
        match reply_to.as_deref() {
            Some(ns::ANONYMOUS) => {}
            Some(_) => {
                return Err(SimFault::invalid_header(
                    "ReplyTo",
                    "a non-anonymous address",
                ));
            }
            None => return Err(SimFault::missing_header("ReplyTo")),
        }
        if let Some(size) = req.max_envelope_size
            && size < 8192
        {
            return Err(SimFault::encoding_limit(size));
        }
        Ok(req)
    }

    /// The text of selector `name` (case-insensitive).
    pub fn selector(&self, name: &str) -> Option<&str> {
        self.selectors
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .and_then(Selector::text)
    }

    /// The value of option `name` (case-insensitive).
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(name))
            .map(|o| o.value.as_str())
    }

    /// The first element of the body.
    pub fn body_element(&self) -> Option<&Element> {
        self.body.children.first()
    }
}

/// Whether XML 1.0 allows the character `code` (its `Char` production).
fn xml_char(code: u32) -> bool {
    matches!(code, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x1_0000..=0x10_FFFF)
}

/// Where `bytes` holds a character XML 1.0 does not allow, written raw (a C0 control
/// but tab, LF and CR; U+FFFE, U+FFFF) or as a character reference (`&#0;`,
/// `&#xFFFE;`), which a Windows endpoint refuses as an ill-formed envelope.
fn invalid_xml_char(bytes: &[u8]) -> Option<String> {
    if let Some(at) = crate::soap::envelope::first_invalid_xml_byte(bytes) {
        return Some(format!(
            "The message holds a character XML 1.0 does not allow at byte {at}."
        ));
    }
    memchr::memmem::find_iter(bytes, b"&#").find_map(|at| {
        let rest = &bytes[at + 2..];
        let (digits, radix) = match rest.first() {
            Some(b'x') => (&rest[1..], 16),
            _ => (rest, 10),
        };
        let end = digits.iter().take(10).position(|&b| b == b';')?;
        let code = std::str::from_utf8(&digits[..end])
            .ok()
            .and_then(|t| u32::from_str_radix(t, radix).ok())?;
        (!xml_char(code)).then(|| {
            format!(
                "The message holds a reference to a character XML 1.0 does not allow (U+{code:04X}) at byte {at}."
            )
        })
    })
}
