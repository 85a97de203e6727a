//! The request envelope writer ([MS-WSMV] §3.1.4.1 headers).
//!
//! Requests are written straight into a `String`; element names carry fixed prefixes
//! declared on the root (`s`, `a`, `w`, `p`) or on the body element that needs them.

use std::fmt::Write as _;
use std::time::Duration;

use uuid::Uuid;

use super::cim::EndpointReference;
use super::ns;

/// A selector: a key of the resource instance (`w:Selector Name=".."`).
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    /// Selector name, e.g. `Name` or `ShellId`.
    pub name: String,
    /// Its value: text, or an endpoint reference for association keys.
    pub value: SelectorValue,
}

/// The value of a selector.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectorValue {
    /// Plain text.
    Text(String),
    /// An endpoint reference (references to other instances).
    Reference(Box<EndpointReference>),
}

impl Selector {
    /// A text selector.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Selector {
            name: name.into(),
            value: SelectorValue::Text(value.into()),
        }
    }

    /// The text value, if this is a text selector.
    pub fn text(&self) -> Option<&str> {
        match &self.value {
            SelectorValue::Text(t) => Some(t),
            SelectorValue::Reference(_) => None,
        }
    }
}

/// An option of the `w:OptionSet` header.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionItem {
    /// Option name, e.g. `WINRS_NOPROFILE`.
    pub name: String,
    /// Its value.
    pub value: String,
    /// Whether the server must honour it (`MustComply="true"`).
    pub must_comply: bool,
    /// Optional `Type` attribute (e.g. `xs:boolean` for WMI options).
    pub type_name: Option<String>,
}

impl OptionItem {
    /// An option without MustComply.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        OptionItem {
            name: name.into(),
            value: value.into(),
            must_comply: false,
            type_name: None,
        }
    }

    /// An option the server must comply with.
    pub fn must_comply(name: impl Into<String>, value: impl Into<String>) -> Self {
        OptionItem {
            must_comply: true,
            ..OptionItem::new(name, value)
        }
    }
}

/// Text the caller gave (a selector or option value, a property value, a WQL query,
/// a command line) holding a character XML 1.0 cannot carry, refused before anything
/// is written or sent.
///
/// XML 1.0 allows tab, LF, CR, U+0020-U+D7FF, U+E000-U+FFFD and U+10000-U+10FFFF, and
/// nothing else, not even as a character reference (`&#1;`): NUL, the other C0
/// controls and U+FFFE/U+FFFF make the envelope ill-formed, and Windows refuses it
/// with an error that names neither the value nor the character. The text itself is
/// not shown (it may be a secret): what it is, which one, the character and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what}{} holds {} at character {offset} (counting from 0), which XML 1.0 cannot carry, not even as a character reference; nothing was sent",
    if name.is_empty() { String::new() } else { format!(" {name:?}") },
    format!("U+{:04X}", u32::from(*character))
)]
pub struct InvalidText {
    /// What the text is: `"selector"`, `"option"`, `"property"`, `"resource URI"`,
    /// `"WQL filter"`, `"command"`, `"command argument"`, ...
    pub what: &'static str,
    /// Which one: the selector's, option's or property's name (`Outer.Inner` for a
    /// property of an embedded instance, `Name[2]` for an array's third value), `#2`
    /// for the second argument; empty when there is only one.
    pub name: String,
    /// The character.
    pub character: char,
    /// Its position in the text, in characters (Unicode scalar values) from 0.
    pub offset: usize,
}

impl InvalidText {
    /// The same error, its name put under `outer` (`outer.name`, or `outer` alone).
    pub fn within(mut self, outer: &str) -> Self {
        self.name = if self.name.is_empty() {
            outer.to_string()
        } else if self.name.starts_with('[') {
            format!("{outer}{}", self.name)
        } else {
            format!("{outer}.{}", self.name)
        };
        self
    }
}

/// The first character of `s` that XML 1.0 cannot carry (U+0000-U+0008, U+000B,
/// U+000C, U+000E-U+001F, U+FFFE, U+FFFF; a Rust string holds no surrogates), with its
/// position in characters from 0.
pub fn first_invalid_xml_char(s: &str) -> Option<(usize, char)> {
    let at = first_invalid_xml_byte(s.as_bytes())?;
    let character = s[at..].chars().next()?;
    Some((s[..at].chars().count(), character))
}

/// The byte offset of the first character XML 1.0 cannot carry in UTF-8 `bytes`
/// (see [`first_invalid_xml_char`]). Blocks are checked without an early exit inside
/// them, which the compiler vectorizes; only a block with a control byte or an `EF`
/// (U+FFFE and U+FFFF are `EF BF BE` and `EF BF BF`) is looked at byte by byte.
pub fn first_invalid_xml_byte(bytes: &[u8]) -> Option<usize> {
    let suspect = |c: u8| ((c < 0x20) & (c != b'\t') & (c != b'\n') & (c != b'\r')) | (c == 0xEF);
    let invalid = |i: usize| {
        let c = bytes[i];
        (c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r'))
            || (c == 0xEF
                && bytes.get(i + 1) == Some(&0xBF)
                && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)))
    };
    let mut start = 0;
    for block in bytes.chunks(64) {
        if block.iter().fold(false, |any, &c| any | suspect(c))
            && let Some(i) = (start..start + block.len()).find(|&i| invalid(i))
        {
            return Some(i);
        }
        start += block.len();
    }
    None
}

/// `Ok` when XML 1.0 can carry `text` ([`first_invalid_xml_char`]), else
/// [`InvalidText`] with `what`, `name`, the character and its position.
///
/// # Errors
/// [`InvalidText`] for the first character XML cannot carry.
pub fn check_text(what: &'static str, name: &str, text: &str) -> Result<(), InvalidText> {
    match first_invalid_xml_char(text) {
        None => Ok(()),
        Some((offset, character)) => Err(InvalidText {
            what,
            name: name.to_string(),
            character,
            offset,
        }),
    }
}

/// Checks the names and values of selectors (those of endpoint references among
/// them included) with [`check_text`].
///
/// # Errors
/// [`InvalidText`] for the first name or value XML cannot carry.
pub fn check_selectors(selectors: &[Selector]) -> Result<(), InvalidText> {
    selectors.iter().try_for_each(|s| {
        check_text("selector name", "", &s.name)?;
        match &s.value {
            SelectorValue::Text(t) => check_text("selector", &s.name, t),
            SelectorValue::Reference(epr) => epr.check_text().map_err(|e| e.within(&s.name)),
        }
    })
}

/// Checks the names, values and types of options with [`check_text`].
///
/// # Errors
/// [`InvalidText`] for the first name or value XML cannot carry.
pub fn check_options(options: &[OptionItem]) -> Result<(), InvalidText> {
    options.iter().try_for_each(|o| {
        check_text("option name", "", &o.name)?;
        check_text("option", &o.name, &o.value)?;
        check_text("option type", &o.name, o.type_name.as_deref().unwrap_or(""))
    })
}

/// The opening tag of `p:OperationID` in a first transmission, exactly as the writer
/// emits it (the retransmission of the same request replaces it with
/// [`RETRANSMISSION_MARK`]; [MS-WSMV] §3.1.4.1.39).
pub const FIRST_TRANSMISSION_MARK: &str = "<p:OperationID s:mustUnderstand=\"false\">";
/// The opening tag of `p:OperationID` in a retransmission: `s:mustUnderstand="true"`
/// tells the server that it may have seen this request already.
pub const RETRANSMISSION_MARK: &str = "<p:OperationID s:mustUnderstand=\"true\">";

/// Where `<s:Header>` begins in what [`Envelope::write`] writes without extra
/// `namespaces`: right after the root's four declarations. Its first children are then
/// `a:To`, `w:ResourceURI` (when set) and `p:OperationID` with `p:SequenceId` (when
/// set), back to back, so that a client reads its own request's Robust Connections
/// headers at a known place instead of searching for them.
pub const HEADER_AT: usize = "<s:Envelope xmlns:s=\"".len()
    + ns::SOAP.len()
    + "\" xmlns:a=\"".len()
    + ns::ADDRESSING.len()
    + "\" xmlns:w=\"".len()
    + ns::WSMAN.len()
    + "\" xmlns:p=\"".len()
    + ns::WSMV.len()
    + "\">".len();

/// Formats a duration as an `xs:duration` with every digit it holds: `PT60S`,
/// `PT0.500S`, `PT0.0005S`, `PT259205.1234567S`, `PT0.000000001S`.
///
/// In seconds (the form Windows writes its own timeouts in, `PT7200.000S`) up to
/// `i32::MAX` seconds; past that, as days, hours, minutes and seconds
/// (`P10675199DT2H48M5.4775807S`), since readers keep each number in 32 bits (.NET's
/// `XsdDuration` refuses a component past `Int32.MaxValue`). The fraction has at least
/// three digits (milliseconds, as Windows writes) and otherwise as many as the value
/// needs, up to nine: nothing is rounded, so a value read from Windows (at most seven
/// digits: .NET `TimeSpan` ticks, CIM intervals in microseconds) is written back as
/// it was. `xs:duration` allows any number of fraction digits, and .NET's `XmlConvert`
/// reads nine (a `TimeSpan` then keeps the 100 ns ticks).
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    let mut out = if secs <= i32::MAX as u64 {
        format!("PT{secs}")
    } else {
        let (days, rest) = (secs / 86_400, secs % 86_400);
        format!(
            "P{days}DT{}H{}M{}",
            rest / 3600,
            rest % 3600 / 60,
            rest % 60
        )
    };
    if nanos != 0 {
        let digits = format!("{nanos:09}");
        let len = digits.trim_end_matches('0').len().max(3);
        out.push('.');
        out.push_str(&digits[..len]);
    }
    out.push('S');
    out
}

/// The headers of one request. Build with [`Envelope::new`], then [`Envelope::write`]
/// with a body closure.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// `wsa:Action`.
    pub action: &'a str,
    /// `wsa:To`: the endpoint URL.
    pub to: &'a str,
    /// `w:ResourceURI`.
    pub resource_uri: Option<&'a str>,
    /// `wsa:MessageID`.
    pub message_id: Uuid,
    /// `w:OperationTimeout`.
    pub operation_timeout: Option<Duration>,
    /// `w:MaxEnvelopeSize` in bytes.
    pub max_envelope_size: Option<u32>,
    /// `w:Locale` and `p:DataLocale` (`xml:lang`).
    pub locale: Option<&'a str>,
    /// `w:SelectorSet`.
    pub selectors: &'a [Selector],
    /// `w:OptionSet`.
    pub options: &'a [OptionItem],
    /// `p:SessionId`.
    pub session_id: Option<Uuid>,
    /// `p:OperationID` (with `p:SequenceId` 1): the request takes part in Robust
    /// Connections ([MS-WSMV] §3.1.4.1.39). Written with `s:mustUnderstand="false"`, the
    /// form of a first transmission; see [`RETRANSMISSION_MARK`].
    pub operation_id: Option<Uuid>,
    /// Extra namespace declarations for the root, `(prefix, uri)`.
    pub namespaces: &'a [(&'a str, &'a str)],
    /// The client's fixed headers, already written ([`HeaderTemplate`]): used for the
    /// headers whose values it was made with, and ignored when this envelope's differ.
    pub template: Option<&'a HeaderTemplate>,
}

/// The headers a client writes the same on every request (the root's declarations,
/// `a:To`, `w:MaxEnvelopeSize`, `w:Locale`, `p:DataLocale`, `p:SessionId` and
/// `w:OperationTimeout`), written and escaped once per client instead of on every
/// request. [`Envelope::write`] copies them when the envelope's values are the ones the
/// template was made with (the output is the same byte for byte), else writes them as
/// usual.
#[derive(Debug, Clone)]
pub struct HeaderTemplate {
    to: String,
    locale: Option<String>,
    session_id: Option<Uuid>,
    operation_timeout: Option<Duration>,
    max_envelope_size: Option<u32>,
    /// From `<s:Envelope` to `</a:To>`.
    head: String,
    /// `w:MaxEnvelopeSize`, or nothing.
    max_envelope: String,
    /// `w:Locale` to `w:OperationTimeout`.
    tail: String,
}

impl HeaderTemplate {
    /// The template of the envelopes whose fixed headers are those of `e`.
    pub fn new(e: &Envelope<'_>) -> HeaderTemplate {
        let plain = Envelope {
            namespaces: &[],
            template: None,
            ..e.clone()
        };
        let mut w = XmlWriter::with_capacity(512);
        plain.write_head(&mut w);
        let head = std::mem::take(&mut w.buf);
        plain.write_max_envelope(&mut w);
        let max_envelope = std::mem::take(&mut w.buf);
        plain.write_tail(&mut w);
        HeaderTemplate {
            to: e.to.to_string(),
            locale: e.locale.map(str::to_string),
            session_id: e.session_id,
            operation_timeout: e.operation_timeout,
            max_envelope_size: e.max_envelope_size,
            head,
            max_envelope,
            tail: w.buf,
        }
    }

    /// Whether `e`'s fixed headers are the template's.
    fn fits(&self, e: &Envelope<'_>) -> bool {
        e.namespaces.is_empty()
            && e.to == self.to
            && e.locale == self.locale.as_deref()
            && e.session_id == self.session_id
            && e.operation_timeout == self.operation_timeout
            && e.max_envelope_size == self.max_envelope_size
    }

    /// The length of the fixed parts, for sizing a request's buffer.
    fn len(&self) -> usize {
        self.head.len() + self.max_envelope.len() + self.tail.len()
    }
}

impl<'a> Envelope<'a> {
    /// Headers with a fresh MessageID and nothing optional set.
    pub fn new(action: &'a str, to: &'a str) -> Self {
        Envelope {
            action,
            to,
            resource_uri: None,
            message_id: Uuid::new_v4(),
            operation_timeout: None,
            max_envelope_size: None,
            locale: None,
            selectors: &[],
            options: &[],
            session_id: None,
            operation_id: None,
            namespaces: &[],
            template: None,
        }
    }

    /// Writes the envelope, calling `body` to write the content of `s:Body`.
    pub fn write(&self, body: impl FnOnce(&mut XmlWriter)) -> String {
        let template = self.template.filter(|t| t.fits(self));
        let mut w = XmlWriter::with_capacity(match template {
            // The fixed parts, the varying headers and a small body: no reallocation,
            // and little spare room for a request held through a long poll.
            Some(t) => t.len() + 1024,
            None => 2048,
        });
        match template {
            Some(t) => w.raw(&t.head),
            None => self.write_head(&mut w),
        }
        if let Some(uri) = self.resource_uri {
            w.raw("<w:ResourceURI s:mustUnderstand=\"true\">");
            w.text(uri);
            w.raw("</w:ResourceURI>");
        }
        let mut buf = Uuid::encode_buffer();
        if let Some(id) = self.operation_id {
            // On every request: written without formatting machinery or a String, right
            // after `a:To` and `w:ResourceURI`, where a client finds both without a
            // search (see HEADER_AT).
            w.raw(FIRST_TRANSMISSION_MARK);
            w.raw("uuid:");
            w.raw(id.hyphenated().encode_upper(&mut buf));
            w.raw("</p:OperationID><p:SequenceId s:mustUnderstand=\"false\">1</p:SequenceId>");
        }
        w.raw("<a:ReplyTo><a:Address s:mustUnderstand=\"true\">");
        w.raw(ns::ANONYMOUS);
        w.raw("</a:Address></a:ReplyTo>");
        w.raw("<a:Action s:mustUnderstand=\"true\">");
        w.text(self.action);
        w.raw("</a:Action>");
        match template {
            Some(t) => w.raw(&t.max_envelope),
            None => self.write_max_envelope(&mut w),
        }
        w.raw("<a:MessageID>uuid:");
        w.raw(self.message_id.hyphenated().encode_upper(&mut buf));
        w.raw("</a:MessageID>");
        match template {
            Some(t) => w.raw(&t.tail),
            None => self.write_tail(&mut w),
        }
        if !self.selectors.is_empty() {
            write_selector_set(&mut w, self.selectors);
        }
        if !self.options.is_empty() {
            w.raw("<w:OptionSet s:mustUnderstand=\"true\">");
            for o in self.options {
                w.raw("<w:Option Name=\"");
                w.attr_text(&o.name);
                w.raw("\"");
                if o.must_comply {
                    w.raw(" MustComply=\"true\"");
                }
                if let Some(t) = &o.type_name {
                    w.raw(" Type=\"");
                    w.attr_text(t);
                    w.raw("\"");
                }
                w.raw(">");
                w.text(&o.value);
                w.raw("</w:Option>");
            }
            w.raw("</w:OptionSet>");
        }
        w.raw("</s:Header><s:Body>");
        body(&mut w);
        w.raw("</s:Body></s:Envelope>");
        w.buf
    }

    /// The root with its declarations, `s:Header` and `a:To`.
    fn write_head(&self, w: &mut XmlWriter) {
        w.raw("<s:Envelope xmlns:s=\"");
        w.raw(ns::SOAP);
        w.raw("\" xmlns:a=\"");
        w.raw(ns::ADDRESSING);
        w.raw("\" xmlns:w=\"");
        w.raw(ns::WSMAN);
        w.raw("\" xmlns:p=\"");
        w.raw(ns::WSMV);
        w.raw("\"");
        for (prefix, uri) in self.namespaces {
            w.raw(" xmlns:");
            w.raw(prefix);
            w.raw("=\"");
            w.attr_text(uri);
            w.raw("\"");
        }
        w.raw("><s:Header>");
        w.raw("<a:To>");
        w.text(self.to);
        w.raw("</a:To>");
    }

    /// `w:MaxEnvelopeSize`, when set.
    fn write_max_envelope(&self, w: &mut XmlWriter) {
        if let Some(size) = self.max_envelope_size {
            let _ = write!(
                w.buf,
                "<w:MaxEnvelopeSize s:mustUnderstand=\"true\">{size}</w:MaxEnvelopeSize>"
            );
        }
    }

    /// `w:Locale`, `p:DataLocale`, `p:SessionId` and `w:OperationTimeout`, those set.
    fn write_tail(&self, w: &mut XmlWriter) {
        if let Some(lang) = self.locale {
            w.raw("<w:Locale xml:lang=\"");
            w.attr_text(lang);
            w.raw("\" s:mustUnderstand=\"false\"/><p:DataLocale xml:lang=\"");
            w.attr_text(lang);
            w.raw("\" s:mustUnderstand=\"false\"/>");
        }
        if let Some(sid) = self.session_id {
            let _ = write!(
                w.buf,
                "<p:SessionId s:mustUnderstand=\"false\">uuid:{}</p:SessionId>",
                upper(sid)
            );
        }
        if let Some(t) = self.operation_timeout {
            w.raw("<w:OperationTimeout>");
            w.raw(&format_duration(t));
            w.raw("</w:OperationTimeout>");
        }
    }
}

/// Writes `w:SelectorSet` with text or EPR selectors.
pub fn write_selector_set(w: &mut XmlWriter, selectors: &[Selector]) {
    w.raw("<w:SelectorSet>");
    for s in selectors {
        w.raw("<w:Selector Name=\"");
        w.attr_text(&s.name);
        w.raw("\">");
        match &s.value {
            SelectorValue::Text(t) => w.text(t),
            SelectorValue::Reference(epr) => write_epr(w, epr),
        }
        w.raw("</w:Selector>");
    }
    w.raw("</w:SelectorSet>");
}

/// Writes the content of an endpoint reference (`a:Address`, `a:ReferenceParameters`).
pub fn write_epr(w: &mut XmlWriter, epr: &EndpointReference) {
    w.raw("<a:Address>");
    w.text(&epr.address);
    w.raw("</a:Address><a:ReferenceParameters><w:ResourceURI>");
    w.text(&epr.resource_uri);
    w.raw("</w:ResourceURI>");
    if !epr.selectors.is_empty() {
        write_selector_set(w, &epr.selectors);
    }
    w.raw("</a:ReferenceParameters>");
}

fn upper(id: Uuid) -> String {
    let mut buf = Uuid::encode_buffer();
    id.hyphenated().encode_upper(&mut buf).to_string()
}

/// The unauthenticated-capable Identify request: no addressing headers, as Windows
/// expects (DSP0226 §11).
pub fn identify() -> String {
    format!(
        "<s:Envelope xmlns:s=\"{}\" xmlns:wsmid=\"{}\"><s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>",
        ns::SOAP,
        ns::IDENTITY
    )
}

/// Appends escaped XML to a `String`.
#[derive(Debug, Default)]
pub struct XmlWriter {
    buf: String,
}

impl XmlWriter {
    /// A writer with room for `n` bytes.
    #[inline]
    pub fn with_capacity(n: usize) -> Self {
        XmlWriter {
            buf: String::with_capacity(n),
        }
    }

    /// Appends markup as is. The caller guarantees it is well-formed.
    #[inline]
    pub fn raw(&mut self, s: &str) {
        self.buf.push_str(s);
    }

    /// Appends escaped character data.
    #[inline]
    pub fn text(&mut self, s: &str) {
        escape_into(&mut self.buf, s, false);
    }

    /// Appends text escaped for a double-quoted attribute value.
    #[inline]
    pub fn attr_text(&mut self, s: &str) {
        escape_into(&mut self.buf, s, true);
    }

    /// `<tag>text</tag>` with `text` escaped.
    pub fn element(&mut self, tag: &str, text: &str) {
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push('>');
        self.text(text);
        self.buf.push_str("</");
        self.buf.push_str(tag);
        self.buf.push('>');
    }

    /// The written text.
    pub fn into_string(self) -> String {
        self.buf
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Drops what was written after the first `len` bytes (a mark taken with
    /// [`XmlWriter::len`]).
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    /// Makes room for `n` more bytes.
    pub fn reserve(&mut self, n: usize) {
        self.buf.reserve(n);
    }

    /// Appends a number (or any value whose text needs no escaping) without an
    /// intermediate string.
    pub fn display(&mut self, v: impl std::fmt::Display) {
        use std::fmt::Write as _;
        let _ = write!(self.buf, "{v}");
    }

    /// The written text so far.
    pub fn as_str(&self) -> &str {
        &self.buf
    }

    /// Appends the base64 (standard alphabet, padded) of `data`: character data that
    /// needs no escaping, encoded straight into the envelope without a scan or an
    /// intermediate string.
    pub fn base64(&mut self, data: &[u8]) {
        self.buf
            .reserve(base64::encoded_len(data.len(), true).unwrap_or(0) + 256);
        // base64-simd: the same standard alphabet and padding as base64's STANDARD,
        // several times fewer instructions on the kilobytes of a PSRP Command.
        base64_simd::STANDARD.encode_append(data, &mut self.buf);
    }
}

/// Per byte: 1 when character data escapes it, 2 when an attribute value does.
const ESCAPED: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'<' as usize] = 3;
    t[b'>' as usize] = 3;
    t[b'&' as usize] = 3;
    t[b'\r' as usize] = 3;
    t[b'"' as usize] = 2;
    t[b'\t' as usize] = 2;
    t[b'\n' as usize] = 2;
    t
};

/// From this length on, text is searched for what character data escapes with memchr
/// (vector instructions) rather than byte by byte.
const SEARCHED: usize = 24;

fn escape_into(out: &mut String, s: &str, attr: bool) {
    // Most text (URIs, ids, actions) has nothing to escape: one scan, one copy.
    let mask = if attr { 2 } else { 1 };
    let first = if !attr && s.len() >= SEARCHED {
        let b = s.as_bytes();
        match (
            memchr::memchr3(b'<', b'>', b'&', b),
            memchr::memchr(b'\r', b),
        ) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        }
    } else {
        s.bytes().position(|b| ESCAPED[usize::from(b)] & mask != 0)
    };
    let Some(first) = first else {
        out.push_str(s);
        return;
    };
    let mut last = 0;
    for (i, b) in s.bytes().enumerate().skip(first) {
        let rep = match b {
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'&' => "&amp;",
            b'"' if attr => "&quot;",
            b'\r' => "&#13;",
            b'\t' if attr => "&#9;",
            b'\n' if attr => "&#10;",
            _ => continue,
        };
        out.push_str(&s[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&s[last..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_the_standard_padded_encoding() {
        use base64::Engine as _;
        for len in (0..70).chain([1_000, 4_099, 65_537]) {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 3) as u8).collect();
            let mut w = XmlWriter::with_capacity(0);
            w.raw("<x>");
            w.base64(&data);
            let want = format!(
                "<x>{}",
                base64::engine::general_purpose::STANDARD.encode(&data)
            );
            assert_eq!(w.as_str(), want, "{len} bytes");
        }
    }

    #[test]
    fn a_template_writes_what_the_envelope_writes_and_only_when_it_fits() {
        let sid = Uuid::parse_str("a635d444-7e75-4e46-9a68-2fff53af45ca").unwrap();
        let base = Envelope {
            resource_uri: Some(ns::RESOURCE_CMD),
            operation_timeout: Some(Duration::from_millis(20_500)),
            max_envelope_size: Some(153_600),
            locale: Some("en-\"US\"&"),
            session_id: Some(sid),
            operation_id: Some(Uuid::new_v4()),
            ..Envelope::new(ns::action::RECEIVE, "http://h:5985/wsman?a=<b>&c")
        };
        let template = HeaderTemplate::new(&base);
        let selectors = [Selector::new("ShellId", "S<1>")];
        let options = [OptionItem::new("WINRS_CONSOLEMODE_STDIN", "TRUE")];
        let other = [("x", "urn:x")];
        let variants = [
            base.clone(),
            Envelope {
                selectors: &selectors,
                options: &options,
                ..base.clone()
            },
            Envelope {
                resource_uri: None,
                operation_id: None,
                ..base.clone()
            },
            // Values other than the template's: written as usual.
            Envelope {
                locale: None,
                ..base.clone()
            },
            Envelope {
                operation_timeout: Some(Duration::from_secs(1)),
                ..base.clone()
            },
            Envelope {
                max_envelope_size: None,
                session_id: None,
                ..base.clone()
            },
            Envelope {
                to: "http://other/wsman",
                ..base.clone()
            },
            Envelope {
                namespaces: &other,
                ..base.clone()
            },
        ];
        for (i, e) in variants.iter().enumerate() {
            let plain = e.write(|w| w.raw("<x/>"));
            let templated = Envelope {
                template: Some(&template),
                ..e.clone()
            }
            .write(|w| w.raw("<x/>"));
            assert_eq!(plain, templated, "variant {i}");
            assert_eq!(template.fits(e), i < 3, "variant {i}");
        }
        assert!(
            variants[0]
                .write(|_| {})
                .contains("<a:To>http://h:5985/wsman?a=&lt;b&gt;&amp;c</a:To>")
        );
        assert!(crate::xml::parse(variants[1].write(|_| {}).as_bytes()).is_ok());
    }

    #[test]
    fn golden_get_envelope() {
        let id = Uuid::parse_str("fc40e3cd-53e9-4315-b486-6d538b25d1f5").unwrap();
        let sid = Uuid::parse_str("a635d444-7e75-4e46-9a68-2fff53af45ca").unwrap();
        let selectors = [Selector::new("Name", "Win<RM>&")];
        let options = [OptionItem::must_comply("WINRS_NOPROFILE", "TRUE")];
        let env = Envelope {
            resource_uri: Some(
                "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service",
            ),
            message_id: id,
            operation_timeout: Some(Duration::from_millis(20_500)),
            max_envelope_size: Some(153600),
            locale: Some("en-US"),
            selectors: &selectors,
            options: &options,
            session_id: Some(sid),
            ..Envelope::new(ns::action::GET, "http://host:5985/wsman")
        };
        let xml = env.write(|_| {});
        let expected = concat!(
            "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\" xmlns:p=\"http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd\">",
            "<s:Header><a:To>http://host:5985/wsman</a:To>",
            "<w:ResourceURI s:mustUnderstand=\"true\">http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service</w:ResourceURI>",
            "<a:ReplyTo><a:Address s:mustUnderstand=\"true\">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>",
            "<a:Action s:mustUnderstand=\"true\">http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action>",
            "<w:MaxEnvelopeSize s:mustUnderstand=\"true\">153600</w:MaxEnvelopeSize>",
            "<a:MessageID>uuid:FC40E3CD-53E9-4315-B486-6D538B25D1F5</a:MessageID>",
            "<w:Locale xml:lang=\"en-US\" s:mustUnderstand=\"false\"/><p:DataLocale xml:lang=\"en-US\" s:mustUnderstand=\"false\"/>",
            "<p:SessionId s:mustUnderstand=\"false\">uuid:A635D444-7E75-4E46-9A68-2FFF53AF45CA</p:SessionId>",
            "<w:OperationTimeout>PT20.500S</w:OperationTimeout>",
            "<w:SelectorSet><w:Selector Name=\"Name\">Win&lt;RM&gt;&amp;</w:Selector></w:SelectorSet>",
            "<w:OptionSet s:mustUnderstand=\"true\"><w:Option Name=\"WINRS_NOPROFILE\" MustComply=\"true\">TRUE</w:Option></w:OptionSet>",
            "</s:Header><s:Body></s:Body></s:Envelope>"
        );
        assert_eq!(xml, expected);
        // and it parses back as well-formed XML
        let root = super::super::xml::parse(xml.as_bytes()).unwrap();
        assert!(root.is(ns::SOAP, "Envelope"));
    }

    #[test]
    fn robust_headers_follow_to_and_resource_uri_at_header_at() {
        let id = Uuid::parse_str("fc40e3cd-53e9-4315-b486-6d538b25d1f5").unwrap();
        let env = Envelope {
            resource_uri: Some("http://r/x"),
            operation_id: Some(id),
            ..Envelope::new(ns::action::GET, "http://h:5985/wsman")
        };
        let xml = env.write(|_| {});
        assert_eq!(
            &xml[HEADER_AT..],
            concat!(
                "<s:Header><a:To>http://h:5985/wsman</a:To>",
                "<w:ResourceURI s:mustUnderstand=\"true\">http://r/x</w:ResourceURI>",
                "<p:OperationID s:mustUnderstand=\"false\">uuid:FC40E3CD-53E9-4315-B486-6D538B25D1F5</p:OperationID>",
                "<p:SequenceId s:mustUnderstand=\"false\">1</p:SequenceId>",
            )
            .to_owned()
                + &xml[xml.find("<a:ReplyTo>").unwrap()..]
        );
        super::super::xml::parse(xml.as_bytes()).unwrap();
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(Duration::from_secs(60)), "PT60S");
        assert_eq!(format_duration(Duration::from_millis(1)), "PT0.001S");
    }

    #[test]
    fn escaping() {
        let mut w = XmlWriter::default();
        w.attr_text("a\"b<c>&\r\n");
        assert_eq!(w.as_str(), "a&quot;b&lt;c&gt;&amp;&#13;&#10;");
        let mut w = XmlWriter::default();
        w.element("x", "é\"");
        assert_eq!(w.into_string(), "<x>é\"</x>");
        // Nothing to escape, or only late in the text; tabs and line breaks are kept
        // in character data.
        let mut w = XmlWriter::default();
        w.text("plain\ttext\n");
        w.text("abc<");
        w.attr_text("x\ty");
        assert_eq!(w.as_str(), "plain\ttext\nabc&lt;x&#9;y");
    }

    #[test]
    fn text_searched_with_memchr_escapes_as_text_scanned_byte_by_byte() {
        // The plain definition, byte by byte.
        fn reference(s: &str, attr: bool) -> String {
            let mut out = String::new();
            for c in s.chars() {
                match c {
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    '&' => out.push_str("&amp;"),
                    '\r' => out.push_str("&#13;"),
                    '"' if attr => out.push_str("&quot;"),
                    '\t' if attr => out.push_str("&#9;"),
                    '\n' if attr => out.push_str("&#10;"),
                    c => out.push(c),
                }
            }
            out
        }
        let base = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";
        let mut checked = 0;
        for len in [0, 1, SEARCHED - 1, SEARCHED, SEARCHED + 1, base.len()] {
            let plain = &base[..len];
            for special in ["", "<", ">", "&", "\r", "\"", "\t", "\n", "é", "<\r", "\r&"] {
                for at in [0, len / 2, len] {
                    let s = format!("{}{special}{}", &plain[..at], &plain[at..]);
                    for attr in [false, true] {
                        let mut w = XmlWriter::default();
                        if attr {
                            w.attr_text(&s);
                        } else {
                            w.text(&s);
                        }
                        assert_eq!(w.as_str(), reference(&s, attr), "{s:?} attr={attr}");
                        checked += usize::from(s.len() >= SEARCHED && !attr);
                    }
                }
            }
        }
        assert!(checked > 50, "{checked}");
    }
}
