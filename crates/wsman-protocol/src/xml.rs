//! A small namespace-resolved element tree over quick-xml's `Reader`, with namespace
//! declarations resolved here (once per declaration, not once per element).
//!
//! Responses are bounded by the transport's body cap, so a tree is cheap and lets every
//! parser match elements by namespace URI and local name, never by prefix.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use super::ns;

mod scan;
pub use scan::{Scanner, Step};

/// How deep an XML document may nest before it is refused. Real WS-Man responses stay
/// under 20; the cap keeps hostile input from exhausting the stack when a tree is dropped.
pub const MAX_DEPTH: usize = 96;

/// How many attributes (namespace declarations included) one element may carry. Real
/// WS-Man elements carry under 20; the cap keeps hostile input from making the reader's
/// duplicate-attribute check quadratic.
pub const MAX_ATTRIBUTES: usize = 256;

/// How many namespace declarations may be in scope at once. Name resolution scans the
/// declarations in scope, so an unbounded number would make parsing quadratic.
pub const MAX_NAMESPACES_IN_SCOPE: usize = 256;

/// A namespace URI, borrowed for the namespaces this crate knows.
pub type Ns = Cow<'static, str>;

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The bytes are not well-formed XML.
    #[error("malformed XML at byte {position}: {message}")]
    Syntax {
        /// Byte offset where the reader stopped.
        position: u64,
        /// What the reader reported.
        message: String,
    },
    /// The bytes are not valid UTF-8 (or UTF-16 with a byte order mark).
    #[error("response is not valid UTF-8 or UTF-16: {0}")]
    Encoding(String),
    /// Elements nest deeper than [`MAX_DEPTH`].
    #[error("XML nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The document has no root element.
    #[error("empty XML document")]
    Empty,
    /// The document is XML but not the expected WS-Management message.
    #[error("unexpected message: expected {expected}, found {found}")]
    Unexpected {
        /// What was expected.
        expected: &'static str,
        /// What was found instead.
        found: String,
    },
    /// A required element or attribute is missing.
    #[error("{0} is missing from the response")]
    Missing(&'static str),
    /// A value could not be interpreted.
    #[error("invalid {what}: {value:?}")]
    Invalid {
        /// Which value.
        what: &'static str,
        /// The offending text (shortened).
        value: String,
    },
}

impl ParseError {
    /// [`ParseError::Invalid`] for `what`, with `value` shortened for the message.
    pub fn invalid(what: &'static str, value: &str) -> Self {
        ParseError::Invalid {
            what,
            value: excerpt(value, 80),
        }
    }
}

/// Shortens `s` to at most `max` characters, on a character boundary.
pub fn excerpt(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// An attribute with its resolved namespace (None for unprefixed attributes).
#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    /// Namespace URI of the attribute, if prefixed.
    pub ns: Option<Ns>,
    /// Local name.
    pub name: String,
    /// Unescaped value.
    pub value: String,
}

/// An element with its resolved namespace, attributes, text and children.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Element {
    /// Namespace URI, None when unbound.
    pub ns: Option<Ns>,
    /// Local name.
    pub name: String,
    /// Attributes, namespace declarations excluded.
    pub attrs: Vec<Attr>,
    /// Concatenated character data directly inside this element.
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// True when this element has namespace `ns` and local name `name`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.name == name && self.ns.as_deref() == Some(ns)
    }

    /// The first child with namespace `ns` and local name `name`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// The first child with local name `name` in any of `nss`.
    pub fn child_any(&self, nss: &[&str], name: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| c.name == name && c.ns.as_deref().is_some_and(|n| nss.contains(&n)))
    }

    /// All children with namespace `ns` and local name `name`.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// Follows a path of (namespace, local name) steps from this element.
    pub fn path(&self, steps: &[(&str, &str)]) -> Option<&Element> {
        let mut cur = self;
        for (ns, name) in steps {
            cur = cur.child(ns, name)?;
        }
        Some(cur)
    }

    /// The text of the child `ns:name`, trimmed.
    pub fn child_text(&self, ns: &str, name: &str) -> Option<&str> {
        self.child(ns, name).map(|c| c.text.trim())
    }

    /// The value of an unprefixed attribute (or, failing that, of any attribute with
    /// that local name).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_none() && a.name == name)
            .or_else(|| self.attrs.iter().find(|a| a.name == name))
            .map(|a| a.value.as_str())
    }

    /// The value of the attribute `ns:name`.
    pub fn attr_ns(&self, ns: &str, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.name == name && a.ns.as_deref() == Some(ns))
            .map(|a| a.value.as_str())
    }

    /// True when the element carries `xsi:nil="true"`.
    pub fn is_nil(&self) -> bool {
        self.attr_ns(ns::XSI, "nil")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true") || v.trim() == "1")
    }

    /// A short description for error messages: `{ns}name`.
    pub fn describe(&self) -> String {
        match &self.ns {
            Some(ns) => format!("{{{ns}}}{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Decodes bytes to text: UTF-8 (with or without BOM), or UTF-16 with a BOM.
///
/// # Errors
/// [`ParseError::Encoding`] when the bytes are not valid UTF-8 (after an optional byte
/// order mark) or, with a UTF-16 byte order mark, not valid UTF-16.
pub fn decode_text(input: &[u8]) -> Result<Cow<'_, str>, ParseError> {
    if let Some(rest) = input.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return utf8(rest)
            .map(Cow::Borrowed)
            .map_err(|e| ParseError::Encoding(e.to_string()));
    }
    let utf16 = |rest: &[u8], le: bool| -> Result<Cow<'_, str>, ParseError> {
        if !rest.len().is_multiple_of(2) {
            return Err(ParseError::Encoding("odd length UTF-16".into()));
        }
        let units = rest.chunks_exact(2).map(|c| {
            if le {
                u16::from_le_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], c[1]])
            }
        });
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map(Cow::Owned)
            .map_err(|e| ParseError::Encoding(e.to_string()))
    };
    if let Some(rest) = input.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, true);
    }
    if let Some(rest) = input.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, false);
    }
    utf8(input)
        .map(Cow::Borrowed)
        .map_err(|e| ParseError::Encoding(e.to_string()))
}

/// `bytes` as UTF-8 text: [`std::str::from_utf8`]'s answer, found faster for valid
/// text, which is checked with SIMD instructions where the CPU has them (the `simdutf8`
/// crate). The standard library's check runs only to describe an error.
///
/// # Errors
/// [`std::str::Utf8Error`] for bytes that are not UTF-8, as `std::str::from_utf8`
/// gives it.
pub fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(_) => std::str::from_utf8(bytes),
    }
}

/// Parses a whole document into its root element.
///
/// # Errors
/// [`ParseError`] for bytes that are not well-formed XML in UTF-8/UTF-16, for a missing
/// root, for more than one root, or for nesting deeper than [`MAX_DEPTH`].
pub fn parse(input: &[u8]) -> Result<Element, ParseError> {
    let text = decode_text(input)?;
    parse_str(&text)
}

/// Takes the character data of the elements it claims instead of the tree: for large
/// payloads (base64 stream text) that are decoded straight from the document rather
/// than copied into an [`Element`] first. A claimed element keeps an empty `text`.
pub trait TextSink {
    /// An element opened; `open` holds the open elements, root first, this one last.
    /// Returning true claims its text.
    fn claim(&mut self, open: &[Element]) -> bool;
    /// The bytes about to be parsed, so that claimed text can be kept as slices of them.
    fn document(&mut self, _bytes: &bytes::Bytes) {}
    /// A claimed element ended with this character data (borrowed from the document
    /// when it came in one piece). An error ends the parse.
    ///
    /// # Errors
    /// An error ends the parse: [`parse_with`] returns it.
    fn take(&mut self, element: &Element, text: &str) -> Result<(), ParseError>;
}

/// The sink that claims nothing.
pub struct NoSink;

impl TextSink for NoSink {
    fn claim(&mut self, _: &[Element]) -> bool {
        false
    }
    fn take(&mut self, _: &Element, _: &str) -> Result<(), ParseError> {
        Ok(())
    }
}

/// [`parse`], with the text of the elements `sink` claims going to it, and without the
/// Robust Connections headers (see [`RobustHeaders`]): the client's response reader,
/// which learns of the server's support from the raw bytes instead.
///
/// # Errors
/// [`ParseError`] for bytes that are not UTF-8 (or UTF-16 with a byte order mark), are not
/// well-formed XML ([`ParseError::Syntax`]), nest deeper than [`MAX_DEPTH`] or hold no
/// element; and whatever error `sink` returns from [`TextSink::take`].
pub fn parse_with(input: &[u8], sink: &mut dyn TextSink) -> Result<Element, ParseError> {
    let text = decode_text(input)?;
    parse_str_with(&text, sink, Echo::Skip)
}

/// The Robust Connections headers ([MS-WSMV] §3.1.4.1.39) of a SOAP message:
/// `p:OperationID` and `p:SequenceId` (or `p:SequenceID`) directly under
/// `s:Envelope/s:Header`. They are on every request and response, so the readers that
/// meet them take them without building elements for them (an element costs several
/// allocations); the rest of the document is read and checked as by [`parse`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RobustHeaders {
    /// The text of the first `p:OperationID`, trimmed.
    pub operation_id: Option<String>,
    /// The first `p:OperationID` says `s:mustUnderstand="true"` (or `"1"`).
    pub must_understand: bool,
    /// The text of the first `p:SequenceId`, trimmed.
    pub sequence_id: Option<String>,
    /// The text of the first `p:SequenceID`, trimmed.
    pub sequence_id_caps: Option<String>,
}

/// What the reader does with the Robust Connections headers.
enum Echo<'a> {
    /// Builds elements for them, as for any other.
    Tree,
    /// Checks and drops them.
    Skip,
    /// Checks them and reads them into the given place.
    Read(&'a mut RobustHeaders),
}

/// [`parse`], with the Robust Connections headers read into a [`RobustHeaders`] instead
/// of the tree: the simulator's request reader.
///
/// # Errors
/// As [`parse`].
pub fn parse_robust(input: &[u8]) -> Result<(Element, RobustHeaders), ParseError> {
    let text = decode_text(input)?;
    let mut headers = RobustHeaders::default();
    let root = parse_str_with(&text, &mut NoSink, Echo::Read(&mut headers))?;
    Ok((root, headers))
}

/// A cheap first test of a qualified name for [`robust_header`]: it ends in `ID` or `Id`
/// and is long enough.
#[inline]
fn may_be_robust_header(qname: &[u8]) -> bool {
    qname.len() >= 10 && matches!(qname[qname.len() - 2..], [b'I', b'D' | b'd'])
}

/// A Robust Connections header in one of the forms that writers use (this crate's
/// envelope writer, the simulator, and Windows): `<p:NAME>`,
/// `<p:NAME s:mustUnderstand="false">` or `<p:NAME s:mustUnderstand="true">`, character
/// data without markup or references, and `</p:NAME>`, back to back.
struct CanonicalHeader<'t> {
    /// 0 OperationID, 1 SequenceId, 2 SequenceID (as [`robust_header`]).
    which: usize,
    /// The character data, untrimmed.
    text: &'t [u8],
    /// The `s:mustUnderstand` attribute is present.
    has_attribute: bool,
    must_understand: bool,
    /// Bytes from `<` to the end tag's `>`.
    len: usize,
}

/// Recognizes a [`CanonicalHeader`] at the start of `rest`. Anything else (other
/// prefixes or spacing, more attributes, entity references, children) is None, for the
/// general reader to take.
fn canonical_robust_header(rest: &[u8]) -> Option<CanonicalHeader<'_>> {
    const NAMES: [&[u8]; 3] = [b"OperationID", b"SequenceId", b"SequenceID"];
    const ATTRIBUTES: [(&[u8], bool); 2] = [
        (b" s:mustUnderstand=\"false\">", false),
        (b" s:mustUnderstand=\"true\">", true),
    ];
    let after_prefix = rest.strip_prefix(b"<p:")?;
    let which = NAMES.iter().position(|n| after_prefix.starts_with(n))?;
    let name = NAMES[which];
    let after_name = &after_prefix[name.len()..];
    let (content, has_attribute, must_understand) = match after_name.strip_prefix(b">") {
        Some(content) => (content, false, false),
        None => {
            let (attribute, must) = ATTRIBUTES.iter().find(|(a, _)| after_name.starts_with(a))?;
            (&after_name[attribute.len()..], true, *must)
        }
    };
    // Short character data (an OperationID is 41 bytes), then the end tag.
    let window = &content[..content.len().min(128)];
    let end = memchr::memchr2(b'<', b'&', window)?;
    let close = &content[end..];
    if close.first() != Some(&b'<')
        || close.get(1..4) != Some(b"/p:")
        || !close[4..].starts_with(name)
        || close.get(4 + name.len()) != Some(&b'>')
    {
        return None;
    }
    let len = rest.len() - content.len() + end + 4 + name.len() + 1;
    Some(CanonicalHeader {
        which,
        text: &content[..end],
        has_attribute,
        must_understand,
        len,
    })
}

/// Which Robust Connections header `start` opens, when it is one (directly under
/// `s:Envelope/s:Header`, in the [MS-WSMV] namespace, declaring no namespaces itself):
/// 0 OperationID, 1 SequenceId, 2 SequenceID.
fn robust_header(stack: &[Element], start: &BytesStart<'_>, scope: &Scope) -> Option<usize> {
    let [env, header] = stack else {
        return None;
    };
    let (prefix, local) = split_qname(start.name().into_inner());
    let which = match local {
        b"OperationID" => 0,
        b"SequenceId" => 1,
        b"SequenceID" => 2,
        _ => return None,
    };
    if !(header.is(ns::SOAP, "Header") && env.is(ns::SOAP, "Envelope")) {
        return None;
    }
    let raw = start.attributes_raw();
    if memchr::memchr(b'x', raw).is_some() && raw.windows(5).any(|w| w == b"xmlns") {
        return None;
    }
    (scope.resolve(prefix, true).as_deref() == Some(ns::WSMV)).then_some(which)
}

/// Reads the rest of a Robust Connections header that `start` opened (its attributes,
/// checked as for any element, and its character data), returning its trimmed text and
/// whether it says `s:mustUnderstand="true"`. Child elements (there are none in a real
/// message) are read over as well-formed XML and dropped.
fn read_robust_header<'t>(
    reader: &mut Reader<&'t [u8]>,
    text: &'t str,
    start: &BytesStart<'_>,
    is_empty: bool,
    scope: &Scope,
    skipped: u64,
) -> Result<(Cow<'t, str>, bool), ParseError> {
    let syntax = |reader: &Reader<&[u8]>, message: String| ParseError::Syntax {
        position: reader.buffer_position() + skipped,
        message: excerpt(&message, 200),
    };
    let mut must_understand = false;
    // Duplicates checked here, without an allocation for the usual one or two names.
    let mut keys: [&[u8]; 4] = [&[]; 4];
    let mut more_keys: Vec<&[u8]> = Vec::new();
    for (count, a) in start.attributes().with_checks(false).enumerate() {
        if count >= MAX_ATTRIBUTES {
            return Err(syntax(
                reader,
                format!("more than {MAX_ATTRIBUTES} attributes on one element"),
            ));
        }
        let a = a.map_err(|e| syntax(reader, e.to_string()))?;
        let key = a.key.into_inner();
        if keys[..count.min(4)].contains(&key) || more_keys.contains(&key) {
            return Err(syntax(
                reader,
                format!("duplicate attribute {}", String::from_utf8_lossy(key)),
            ));
        }
        match keys.get_mut(count) {
            Some(slot) => *slot = key,
            None => more_keys.push(key),
        }
        let value = if a.value.contains(&b'&') {
            a.unescape_value()
                .map_err(|e| syntax(reader, e.to_string()))?
        } else {
            Cow::Borrowed(as_str(text, &a.value)?)
        };
        if let (Some(prefix), b"mustUnderstand") = split_qname(a.key.as_ref())
            && scope.resolve(Some(prefix), false).as_deref() == Some(ns::SOAP)
        {
            must_understand = value == "true" || value == "1";
        }
    }
    let mut content: Cow<'t, str> = Cow::Borrowed("");
    if is_empty {
        return Ok((content, must_understand));
    }
    loop {
        match reader.read_event() {
            Err(e) => return Err(syntax(reader, e.to_string())),
            Ok(Event::Text(t)) => {
                let piece = match t.into_inner() {
                    Cow::Borrowed(b) => Cow::Borrowed(as_str(text, b)?),
                    Cow::Owned(v) => Cow::Owned(
                        String::from_utf8(v).map_err(|e| ParseError::Encoding(e.to_string()))?,
                    ),
                };
                append(&mut content, piece);
            }
            Ok(Event::CData(c)) => {
                let s = c.decode().map_err(|e| syntax(reader, e.to_string()))?;
                append(&mut content, Cow::Owned(s.into_owned()));
            }
            Ok(Event::GeneralRef(r)) => match r.resolve_char_ref() {
                Ok(Some(ch)) => {
                    append(&mut content, Cow::Owned(ch.to_string()));
                }
                Ok(None) => {
                    let name = r.decode().map_err(|e| syntax(reader, e.to_string()))?;
                    match quick_xml::escape::resolve_predefined_entity(&name) {
                        Some(s) => append(&mut content, Cow::Borrowed(s)),
                        None => {
                            return Err(syntax(reader, format!("unknown entity &{name};")));
                        }
                    }
                }
                Err(e) => return Err(syntax(reader, e.to_string())),
            },
            Ok(Event::Start(child)) => {
                reader
                    .read_to_end(child.name())
                    .map_err(|e| syntax(reader, e.to_string()))?;
            }
            Ok(Event::End(_)) => break,
            Ok(Event::DocType(_)) => {
                return Err(syntax(
                    reader,
                    "DOCTYPE is not allowed in SOAP messages".into(),
                ));
            }
            Ok(Event::Empty(_) | Event::Decl(_) | Event::PI(_) | Event::Comment(_)) => {}
            Ok(Event::Eof) => {
                return Err(syntax(reader, "unexpected end of document".into()));
            }
        }
    }
    let trimmed = match content {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
    };
    Ok((trimmed, must_understand))
}

/// Appends character data to a claimed element's text, borrowing while it is one piece.
fn append<'t>(slot: &mut Cow<'t, str>, piece: Cow<'t, str>) {
    if slot.is_empty() {
        *slot = piece;
    } else {
        slot.to_mut().push_str(&piece);
    }
}

/// The namespace of the reserved `xmlns` prefix.
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// The slice of `text` that `bytes` borrows, found by address (no second UTF-8 check);
/// bytes from elsewhere are checked as UTF-8.
fn as_str<'a>(text: &'a str, bytes: &'a [u8]) -> Result<&'a str, ParseError> {
    let borrowed = bytes
        .as_ptr()
        .addr()
        .checked_sub(text.as_ptr().addr())
        .and_then(|start| text.get(start..start.checked_add(bytes.len())?));
    match borrowed {
        Some(s) => Ok(s),
        None => utf8(bytes).map_err(|e| ParseError::Encoding(e.to_string())),
    }
}

/// The namespace declarations in scope, innermost last. A declaration is resolved (and
/// its URI interned) once, not again for every element that uses its prefix.
struct Scope {
    /// The prefixes, back to back (the default namespace has an empty prefix).
    prefixes: Vec<u8>,
    /// Per binding: where its prefix starts in `prefixes` and ends, and its namespace
    /// (None when undeclared by `xmlns=""`).
    bindings: Vec<(usize, usize, Option<Ns>)>,
}

impl Scope {
    fn new() -> Scope {
        let mut scope = Scope {
            prefixes: Vec::with_capacity(64),
            bindings: Vec::with_capacity(16),
        };
        scope.push(b"xml", Some(Cow::Borrowed(ns::XML)));
        scope.push(b"xmlns", Some(Cow::Borrowed(XMLNS_NS)));
        scope
    }

    fn push(&mut self, prefix: &[u8], ns: Option<Ns>) {
        let start = self.prefixes.len();
        self.prefixes.extend_from_slice(prefix);
        self.bindings.push((start, self.prefixes.len(), ns));
    }

    /// The bindings from index `from` on, with their prefixes.
    fn iter_from(&self, from: usize) -> impl DoubleEndedIterator<Item = (&[u8], &Option<Ns>)> {
        self.bindings
            .get(from..)
            .unwrap_or(&[])
            .iter()
            .map(|(start, end, ns)| (self.prefixes.get(*start..*end).unwrap_or(&[]), ns))
    }

    /// Drops the bindings from index `len` on.
    fn truncate(&mut self, len: usize) {
        if let Some(&(start, _, _)) = self.bindings.get(len) {
            self.bindings.truncate(len);
            self.prefixes.truncate(start);
        }
    }

    /// The namespace of `prefix` (None: unprefixed). Unprefixed element names take the
    /// default namespace, unprefixed attribute names none; an unknown prefix has none.
    #[inline]
    fn resolve(&self, prefix: Option<&[u8]>, element: bool) -> Option<Ns> {
        let wanted: &[u8] = match prefix {
            None if element => b"",
            None => return None,
            Some([]) => return None,
            Some(p) => p,
        };
        // Prefixes are short and mostly differ in their first byte: compare that (and the
        // length) inline before the bytes.
        let first = wanted.first();
        self.bindings
            .iter()
            .rev()
            .find(|(start, end, _)| {
                end - start == wanted.len()
                    && self
                        .prefixes
                        .get(*start..*end)
                        .is_some_and(|p| p.first() == first && p == wanted)
            })
            .and_then(|(_, _, ns)| ns.clone())
    }

    /// Adds the declaration `xmlns[:prefix]="uri"` (raw value, as namespace names are
    /// compared). Binding the reserved prefixes or namespaces otherwise is an error.
    fn declare(&mut self, prefix: &[u8], uri: &[u8], first: usize) -> Result<(), String> {
        if self.iter_from(first).any(|(p, _)| p == prefix) {
            return Err("duplicate namespace declaration".into());
        }
        let reserved = uri == ns::XML.as_bytes() || uri == XMLNS_NS.as_bytes();
        match prefix {
            b"xml" if uri == ns::XML.as_bytes() => return Ok(()),
            b"xml" | b"xmlns" => return Err("the xml and xmlns prefixes cannot be rebound".into()),
            [_, ..] if reserved => {
                return Err("a reserved namespace cannot be bound to another prefix".into());
            }
            _ => {}
        }
        let ns = if uri.is_empty() {
            None
        } else if let Some(known) = ns::intern(uri) {
            Some(Cow::Borrowed(known))
        } else {
            Some(Cow::Owned(String::from_utf8_lossy(uri).into_owned()))
        };
        self.push(prefix, ns);
        Ok(())
    }
}

/// Splits a qualified name at its first colon: (prefix, local name).
fn split_qname(name: &[u8]) -> (Option<&[u8]>, &[u8]) {
    match name.iter().position(|&b| b == b':') {
        Some(i) => (Some(&name[..i]), &name[i + 1..]),
        None => (None, name),
    }
}

/// Parses a document already decoded to text.
///
/// # Errors
/// As [`parse`].
pub fn parse_str(text: &str) -> Result<Element, ParseError> {
    parse_str_with(text, &mut NoSink, Echo::Tree)
}

fn parse_str_with<'t, S: TextSink + ?Sized>(
    text: &'t str,
    sink: &mut S,
    mut echo: Echo<'_>,
) -> Result<Element, ParseError> {
    let mut reader = Reader::from_str(text);
    {
        let cfg = reader.config_mut();
        cfg.check_end_names = true;
        cfg.expand_empty_elements = false;
    }
    let mut stack: Vec<Element> = Vec::with_capacity(16);
    let mut scope = Scope::new();
    // Per open element: how many bindings were in scope before it, how many namespace
    // declarations it carries (with the running sum of the latter), and the text so
    // far when the sink claimed it.
    let mut frames: Vec<(usize, usize, Option<Cow<'t, str>>)> = Vec::with_capacity(16);
    let mut in_scope = 0usize;
    let mut root: Option<Element> = None;
    // Bytes taken past the reader by the fast path for Robust Connections headers (the
    // reader does not count them; error positions add them back).
    let skipped = std::cell::Cell::new(0u64);
    // The last event was a tag (start, end or empty element), so the reader is between
    // markup with nothing of the next token consumed: a whole element may be taken past
    // it.
    let mut after_tag = false;
    // Whether `p` is the [MS-WSMV] namespace and `s` SOAP's, for the bindings in scope
    // when last looked at (their count: the header's children declare none that
    // matter, or they would not be in the usual form).
    let mut usual_prefixes: Option<(usize, bool, bool)> = None;
    let syntax_at = |reader: &Reader<&[u8]>, message: String| ParseError::Syntax {
        position: reader.buffer_position() + skipped.get(),
        message,
    };
    let syntax = |reader: &Reader<&[u8]>, e: &dyn std::fmt::Display| {
        syntax_at(reader, excerpt(&e.to_string(), 200))
    };
    loop {
        // The Robust Connections headers in their usual form are taken without the
        // tokenizer: they are on every message, and cost more to tokenize than to match.
        if after_tag && stack.len() == 2 && !matches!(echo, Echo::Tree) {
            let rest: &[u8] = reader.get_ref();
            let usual = rest.starts_with(b"<p:")
                && stack[1].is(ns::SOAP, "Header")
                && stack[0].is(ns::SOAP, "Envelope");
            if usual && usual_prefixes.is_none_or(|(n, _, _)| n != scope.bindings.len()) {
                usual_prefixes = Some((
                    scope.bindings.len(),
                    scope.resolve(Some(b"p"), true).as_deref() == Some(ns::WSMV),
                    scope.resolve(Some(b"s"), false).as_deref() == Some(ns::SOAP),
                ));
            }
            if usual
                && let Some((_, true, s_is_soap)) = usual_prefixes
                && let Some(h) = canonical_robust_header(rest)
                && (!h.has_attribute || s_is_soap)
            {
                let value = as_str(text, h.text)?.trim();
                if let Echo::Read(headers) = &mut echo {
                    let slot = match h.which {
                        0 => &mut headers.operation_id,
                        1 => &mut headers.sequence_id,
                        _ => &mut headers.sequence_id_caps,
                    };
                    if slot.is_none() {
                        *slot = Some(value.to_owned());
                        if h.which == 0 {
                            headers.must_understand = h.must_understand;
                        }
                    }
                }
                *reader.get_mut() = &rest[h.len..];
                skipped.set(skipped.get() + h.len as u64);
                continue;
            }
        }
        let ev = match reader.read_event() {
            Ok(v) => v,
            Err(e) => return Err(syntax(&reader, &e)),
        };
        after_tag = matches!(ev, Event::Start(_) | Event::Empty(_) | Event::End(_));
        match ev {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let is_empty = matches!(ev, Event::Empty(_));
                if root.is_some() {
                    return Err(syntax_at(&reader, "content after the root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(ParseError::TooDeep);
                }
                if !matches!(echo, Echo::Tree)
                    && stack.len() == 2
                    && may_be_robust_header(start.name().into_inner())
                    && let Some(which) = robust_header(&stack, start, &scope)
                {
                    let (value, must_understand) = read_robust_header(
                        &mut reader,
                        text,
                        start,
                        is_empty,
                        &scope,
                        skipped.get(),
                    )?;
                    if let Echo::Read(h) = &mut echo {
                        let slot = match which {
                            0 => &mut h.operation_id,
                            1 => &mut h.sequence_id,
                            _ => &mut h.sequence_id_caps,
                        };
                        if slot.is_none() {
                            *slot = Some(value.into_owned());
                            if which == 0 {
                                h.must_understand = must_understand;
                            }
                        }
                    }
                    continue;
                }
                let first = scope.bindings.len();
                let mut attrs: Vec<Attr> = Vec::new();
                let mut decls = 0usize;
                // One pass over the attributes: declarations go into scope, the others are
                // kept under their qualified name until every declaration is known.
                for (count, a) in start.attributes().with_checks(false).enumerate() {
                    if count >= MAX_ATTRIBUTES {
                        return Err(syntax_at(
                            &reader,
                            format!("more than {MAX_ATTRIBUTES} attributes on one element"),
                        ));
                    }
                    let a = a.map_err(|e| syntax(&reader, &e))?;
                    let key = a.key.as_ref();
                    let declared = match key.strip_prefix(b"xmlns") {
                        Some([]) => Some(&[][..]),
                        Some([b':', prefix @ ..]) => Some(prefix),
                        _ => None,
                    };
                    if let Some(prefix) = declared {
                        decls += 1;
                        if in_scope + decls > MAX_NAMESPACES_IN_SCOPE {
                            return Err(syntax_at(
                                &reader,
                                format!(
                                    "more than {MAX_NAMESPACES_IN_SCOPE} namespace declarations in scope"
                                ),
                            ));
                        }
                        scope
                            .declare(prefix, &a.value, first)
                            .map_err(|m| syntax_at(&reader, m))?;
                        continue;
                    }
                    let name = as_str(text, key)?;
                    if attrs.iter().any(|x| x.name == name) {
                        return Err(syntax_at(
                            &reader,
                            format!("duplicate attribute {}", excerpt(name, 40)),
                        ));
                    }
                    let raw = as_str(text, &a.value)?;
                    let value = if raw.contains('&') {
                        a.unescape_value()
                            .map_err(|e| syntax(&reader, &e))?
                            .into_owned()
                    } else {
                        raw.to_owned()
                    };
                    attrs.push(Attr {
                        ns: None,
                        name: name.to_owned(),
                        value,
                    });
                }
                for attr in &mut attrs {
                    if let (Some(prefix), local) = split_qname(attr.name.as_bytes()) {
                        attr.ns = scope.resolve(Some(prefix), false);
                        let skip = attr.name.len() - local.len();
                        attr.name.drain(..skip);
                    }
                }
                let qname = start.name();
                let (prefix, local) = split_qname(qname.as_ref());
                let el = Element {
                    ns: scope.resolve(prefix, true),
                    name: as_str(text, local)?.to_owned(),
                    attrs,
                    text: String::new(),
                    children: Vec::new(),
                };
                if is_empty {
                    scope.truncate(first);
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => root = Some(el),
                    }
                } else {
                    stack.push(el);
                    let claimed = sink.claim(&stack).then_some(Cow::Borrowed(""));
                    frames.push((first, decls, claimed));
                    in_scope += decls;
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| syntax_at(&reader, "unmatched end tag".into()))?;
                let (first, decls, claimed) =
                    frames.pop().unwrap_or((scope.bindings.len(), 0, None));
                scope.truncate(first);
                in_scope = in_scope.saturating_sub(decls);
                if let Some(text) = claimed {
                    sink.take(&el, &text)?;
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some((_, _, Some(slot))) = frames.last_mut() {
                    let piece = match t.into_inner() {
                        Cow::Borrowed(b) => Cow::Borrowed(as_str(text, b)?),
                        Cow::Owned(v) => Cow::Owned(
                            String::from_utf8(v)
                                .map_err(|e| ParseError::Encoding(e.to_string()))?,
                        ),
                    };
                    append(slot, piece);
                    continue;
                }
                let s = as_str(text, &t)?;
                match stack.last_mut() {
                    Some(cur) => cur.text.push_str(s),
                    None if s.trim().is_empty() => {}
                    None => {
                        return Err(syntax_at(&reader, "text outside the root element".into()));
                    }
                }
            }
            Event::CData(c) => {
                let s = c.decode().map_err(|e| syntax(&reader, &e))?;
                if let Some((_, _, Some(slot))) = frames.last_mut() {
                    append(slot, Cow::Owned(s.into_owned()));
                    continue;
                }
                match stack.last_mut() {
                    Some(cur) => cur.text.push_str(&s),
                    None => {
                        return Err(syntax_at(&reader, "CDATA outside the root element".into()));
                    }
                }
            }
            Event::GeneralRef(r) => {
                let cur = stack.last_mut().ok_or_else(|| {
                    syntax_at(&reader, "reference outside the root element".into())
                })?;
                let slot = match frames.last_mut() {
                    Some((_, _, Some(slot))) => Some(slot),
                    _ => None,
                };
                let put = |s: &str| match slot {
                    Some(slot) => append(slot, Cow::Owned(s.to_owned())),
                    None => cur.text.push_str(s),
                };
                match r.resolve_char_ref() {
                    Ok(Some(ch)) => put(ch.encode_utf8(&mut [0; 4])),
                    Ok(None) => {
                        let name = r.decode().map_err(|e| syntax(&reader, &e))?;
                        match quick_xml::escape::resolve_predefined_entity(&name) {
                            Some(s) => put(s),
                            None => {
                                return Err(syntax_at(
                                    &reader,
                                    format!("unknown entity &{};", excerpt(&name, 20)),
                                ));
                            }
                        }
                    }
                    Err(e) => return Err(syntax(&reader, &e)),
                }
            }
            Event::DocType(_) => {
                return Err(syntax_at(
                    &reader,
                    "DOCTYPE is not allowed in SOAP messages".into(),
                ));
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(syntax_at(
            &reader,
            format!("unexpected end of document inside <{}>", open.name),
        ));
    }
    root.ok_or(ParseError::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_and_namespace_caps() {
        let attrs = |n: usize| {
            let a: String = (0..n).map(|i| format!(" a{i}=\"v\"")).collect();
            format!("<r{a}/>")
        };
        assert_eq!(
            parse(attrs(MAX_ATTRIBUTES).as_bytes()).unwrap().attrs.len(),
            MAX_ATTRIBUTES
        );
        assert!(matches!(
            parse(attrs(MAX_ATTRIBUTES + 1).as_bytes()),
            Err(ParseError::Syntax { .. })
        ));
        // Declarations add up across nesting, and leave scope with their element.
        let decls = |from: usize, n: usize| -> String {
            (from..from + n)
                .map(|i| format!(" xmlns:p{i}=\"urn:{i}\""))
                .collect()
        };
        let half = MAX_NAMESPACES_IN_SCOPE / 2;
        let ok = format!(
            "<r{}><a{}/><b{}/></r>",
            decls(0, half),
            decls(half, half),
            decls(half, half)
        );
        assert!(parse(ok.as_bytes()).is_ok());
        let deep = format!(
            "<r{}><a{}><b{}/></a></r>",
            decls(0, half),
            decls(half, half),
            decls(2 * half, 1)
        );
        assert!(matches!(
            parse(deep.as_bytes()),
            Err(ParseError::Syntax { .. })
        ));
    }

    #[test]
    fn resolves_namespaces_not_prefixes() {
        let doc = br#"<a:Env xmlns:a="http://www.w3.org/2003/05/soap-envelope" xmlns:zz="urn:x"><a:Body><zz:Item zz:k="v" plain="p">t&amp;u&#x41;<![CDATA[<c>]]></zz:Item></a:Body></a:Env>"#;
        let root = parse(doc).unwrap();
        assert!(root.is(ns::SOAP, "Env"));
        let item = root.path(&[(ns::SOAP, "Body"), ("urn:x", "Item")]).unwrap();
        assert_eq!(item.text, "t&uA<c>");
        assert_eq!(item.attr_ns("urn:x", "k"), Some("v"));
        assert_eq!(item.attr("plain"), Some("p"));
        assert!(matches!(item.ns, Some(Cow::Owned(_))));
        assert!(matches!(root.ns, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn declarations_scope_and_reserved_prefixes() {
        // A declaration applies to its own element and attributes wherever it stands,
        // and leaves scope with the element; `xmlns=""` undeclares the default.
        let doc = br#"<r xmlns="urn:d"><p:a p:k="1" xml:lang="en" xmlns:p="urn:p"><b xmlns=""/><p:c/></p:a><p:d/><e/></r>"#;
        let root = parse(doc).unwrap();
        assert!(root.is("urn:d", "r"));
        let a = root.child("urn:p", "a").unwrap();
        assert!(
            a.attrs
                .iter()
                .all(|x| x.name != "p" && !x.name.starts_with("xmlns"))
        );
        assert_eq!(a.attr_ns("urn:p", "k"), Some("1"));
        assert_eq!(a.attr_ns(ns::XML, "lang"), Some("en"));
        let b = &a.children[0];
        assert_eq!((b.ns.as_deref(), b.name.as_str()), (None, "b"));
        assert!(a.child("urn:p", "c").is_some());
        // `p` is out of scope after </p:a>: an unknown prefix resolves to no namespace.
        assert_eq!(
            (
                root.children[1].ns.as_deref(),
                root.children[1].name.as_str()
            ),
            (None, "d")
        );
        assert!(root.child("urn:d", "e").is_some());
        // The default namespace, declared before other prefixes on the same element.
        let r = parse(br#"<r xmlns="urn:d" xmlns:p="urn:p"><e/><p:f/></r>"#).unwrap();
        assert!(r.child("urn:d", "e").is_some() && r.child("urn:p", "f").is_some());
        // Unprefixed attributes have no namespace, even under a default namespace.
        let r = parse(br#"<r xmlns="urn:d" k="v"/>"#).unwrap();
        assert_eq!((r.attrs[0].ns.as_deref(), r.attr("k")), (None, Some("v")));
        // Interned namespaces are shared, not allocated per element.
        let soap = parse(br#"<s:E xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:B/></s:E>"#)
            .unwrap();
        assert!(matches!(soap.children[0].ns, Some(Cow::Borrowed(ns::SOAP))));
        for bad in [
            &br#"<r a="1" a="2"/>"#[..],
            br#"<r xmlns:p="urn:1" xmlns:p="urn:2"/>"#,
            br#"<r xmlns:xml="urn:x"/>"#,
            br#"<r xmlns:xmlns="urn:x"/>"#,
            br#"<r xmlns:p="http://www.w3.org/XML/1998/namespace"/>"#,
            br#"<r a="1&bogus;"/>"#,
        ] {
            assert!(
                matches!(parse(bad), Err(ParseError::Syntax { .. })),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let ok = parse(br#"<r xmlns:xml="http://www.w3.org/XML/1998/namespace" a="x&lt;&#65;"/>"#);
        assert_eq!(ok.unwrap().attr("a"), Some("x<A"));
    }

    #[test]
    fn robust_headers_read_without_elements() {
        let doc = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd" xmlns:q="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"><s:Header><p:SessionId>x</p:SessionId><q:OperationID s:mustUnderstand="true"> uuid:A&amp;B </q:OperationID><p:OperationID>second</p:OperationID><p:SequenceID>2</p:SequenceID><p:SequenceId>1</p:SequenceId><p:Other><p:OperationID>deep</p:OperationID></p:Other></s:Header><s:Body><p:OperationID>in body</p:OperationID></s:Body></s:Envelope>"#;
        let (root, h) = parse_robust(doc).unwrap();
        assert_eq!(h.operation_id.as_deref(), Some("uuid:A&B"));
        assert!(h.must_understand);
        assert_eq!(h.sequence_id.as_deref(), Some("1"));
        assert_eq!(h.sequence_id_caps.as_deref(), Some("2"));
        let header = root.child(ns::SOAP, "Header").unwrap();
        let names: Vec<&str> = header.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["SessionId", "Other"]);
        // Only directly under the header: elsewhere they are elements as any other.
        assert!(
            header
                .path(&[(ns::WSMV, "Other"), (ns::WSMV, "OperationID")])
                .is_some()
        );
        assert!(
            root.path(&[(ns::SOAP, "Body"), (ns::WSMV, "OperationID")])
                .is_some()
        );
        // The client's reader drops them; the plain reader keeps them.
        let skipped = parse_with(doc, &mut NoSink).unwrap();
        assert_eq!(skipped, root);
        let full = parse(doc).unwrap();
        assert_eq!(full.child(ns::SOAP, "Header").unwrap().children.len(), 6);
        // Another namespace, a declaration of its own, or mustUnderstand in another
        // namespace: not taken for the header (or not for a retransmission mark).
        let other = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:p="urn:x"><s:Header><p:OperationID>a</p:OperationID><OperationID xmlns="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd">b</OperationID></s:Header><s:Body/></s:Envelope>"#;
        let (root, h) = parse_robust(other).unwrap();
        assert_eq!(h, RobustHeaders::default());
        assert_eq!(root.child(ns::SOAP, "Header").unwrap().children.len(), 2);
        let unmarked = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"><s:Header><p:OperationID p:mustUnderstand="true"/></s:Header><s:Body/></s:Envelope>"#;
        let (_, h) = parse_robust(unmarked).unwrap();
        assert_eq!(
            (h.operation_id.as_deref(), h.must_understand),
            (Some(""), false)
        );
        // What is malformed in them is still refused.
        for bad in [
            &br#"<p:OperationID s:mustUnderstand="true" s:mustUnderstand="false">a</p:OperationID>"#[..],
            br#"<p:OperationID>a&bogus;</p:OperationID>"#,
            br#"<p:OperationID>a<b></p:OperationID>"#,
            br#"<p:OperationID a="&bogus;">a</p:OperationID>"#,
            br#"<p:OperationID>a</p:SequenceId>"#,
            br#"<p:OperationID a="1" b="2" c="3" d="4" e="5" b="6">a</p:OperationID>"#,
        ] {
            let doc = [
                &br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"><s:Header>"#[..],
                bad,
                b"</s:Header><s:Body/></s:Envelope>",
            ]
            .concat();
            let shown = String::from_utf8_lossy(bad);
            assert!(matches!(parse_robust(&doc), Err(ParseError::Syntax { .. })), "{shown}");
            assert!(matches!(parse_with(&doc, &mut NoSink), Err(ParseError::Syntax { .. })), "{shown}");
            assert!(matches!(parse(&doc), Err(ParseError::Syntax { .. })), "{shown}");
        }
        // Unterminated inside one.
        let cut = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"><s:Header><p:OperationID>a"#;
        assert!(matches!(parse_robust(cut), Err(ParseError::Syntax { .. })));
    }

    #[test]
    fn usual_robust_headers_read_as_the_general_reader_reads_them() {
        const HEAD: &str = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"><s:Header><p:SessionId>x</p:SessionId>"#;
        const TAIL: &str = "</s:Header><s:Body><p:Item>1</p:Item></s:Body></s:Envelope>";
        let id = "uuid:0A1B2C3D-0000-4000-8000-00000000ABCD";
        let cases = [
            format!(
                r#"<p:OperationID s:mustUnderstand="false">{id}</p:OperationID><p:SequenceId s:mustUnderstand="false">1</p:SequenceId>"#
            ),
            format!(
                r#"<p:OperationID s:mustUnderstand="true">{id}</p:OperationID><p:SequenceId>1</p:SequenceId>"#
            ),
            format!(r#"<p:OperationID> {id} </p:OperationID><p:SequenceID>3</p:SequenceID>"#),
            format!(
                r#"<p:SequenceId>1</p:SequenceId><p:OperationID>{id}</p:OperationID><p:OperationID>{id}X</p:OperationID>"#
            ),
        ];
        for case in &cases {
            let fast = format!("{HEAD}{case}{TAIL}");
            // A space before each header keeps the fast path out: the general reader.
            let general = format!("{HEAD}{}{TAIL}", case.replace("<p:", " <p:"));
            let (fast_root, fast_headers) = parse_robust(fast.as_bytes()).unwrap();
            let (general_root, general_headers) = parse_robust(general.as_bytes()).unwrap();
            assert_eq!(fast_headers, general_headers, "{case}");
            assert!(
                fast_headers
                    .operation_id
                    .as_deref()
                    .is_some_and(|v| v.starts_with(id)),
                "{case}"
            );
            assert_eq!(
                fast_root.child(ns::SOAP, "Header").unwrap().children,
                general_root.child(ns::SOAP, "Header").unwrap().children,
                "{case}"
            );
            assert_eq!(
                fast_root.child(ns::SOAP, "Body"),
                general_root.child(ns::SOAP, "Body")
            );
            assert_eq!(parse_with(fast.as_bytes(), &mut NoSink).unwrap(), fast_root);
            // The plain reader keeps them as elements.
            let full = parse(fast.as_bytes()).unwrap();
            assert!(full.child(ns::SOAP, "Header").unwrap().children.len() >= 3);
        }
        let (_, h) = parse_robust(format!("{HEAD}{}{TAIL}", cases[1]).as_bytes()).unwrap();
        assert!(h.must_understand);
        assert_eq!(h.sequence_id.as_deref(), Some("1"));
        // `p` bound elsewhere, or `s` not the SOAP namespace: not taken for the headers.
        let elsewhere = format!(
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:p="urn:x"><s:Header><p:OperationID>{id}</p:OperationID></s:Header><s:Body/></s:Envelope>"#
        );
        let (root, h) = parse_robust(elsewhere.as_bytes()).unwrap();
        assert_eq!(h, RobustHeaders::default());
        assert_eq!(root.child(ns::SOAP, "Header").unwrap().children.len(), 1);
        let other_s = format!(
            r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:s="urn:x" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"><e:Header><p:OperationID s:mustUnderstand="true">{id}</p:OperationID></e:Header><e:Body/></e:Envelope>"#
        );
        let (_, h) = parse_robust(other_s.as_bytes()).unwrap();
        assert_eq!(
            (h.operation_id.as_deref(), h.must_understand),
            (Some(id), false)
        );
        // Error positions count the bytes taken past the tokenizer: the same as when
        // the general reader reads the same document.
        let bad = format!(
            "{HEAD}{}</s:Header><s:Body><a></b></s:Body></s:Envelope>",
            cases[0]
        );
        let position = |r: Result<Element, ParseError>| match r {
            Err(ParseError::Syntax { position, .. }) => position,
            other => panic!("{other:?}"),
        };
        let fast = position(parse_robust(bad.as_bytes()).map(|(root, _)| root));
        assert_eq!(fast, position(parse(bad.as_bytes())));
        assert!(fast as usize > HEAD.len() + cases[0].len());
    }

    #[test]
    fn default_namespace_and_utf16() {
        let s = r#"<?xml version="1.0" encoding="utf-16"?><Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Body/></Envelope>"#;
        let mut bytes = vec![0xFF, 0xFE];
        for u in s.encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        let root = parse(&bytes).unwrap();
        assert!(root.is(ns::SOAP, "Envelope"));
        assert!(root.child(ns::SOAP, "Body").is_some());
    }

    #[test]
    fn rejects_bad_documents() {
        assert_eq!(parse(b"").unwrap_err(), ParseError::Empty);
        assert!(matches!(
            parse(b"<a><b></a>"),
            Err(ParseError::Syntax { .. })
        ));
        assert!(matches!(parse(b"<a>"), Err(ParseError::Syntax { .. })));
        assert!(matches!(parse(b"<a/><b/>"), Err(ParseError::Syntax { .. })));
        assert!(matches!(
            parse(b"<a>&bogus;</a>"),
            Err(ParseError::Syntax { .. })
        ));
        assert!(matches!(
            parse(b"\xff\xfe\x00"),
            Err(ParseError::Encoding(_))
        ));
        assert!(matches!(
            parse(b"<a>\xc3</a>"),
            Err(ParseError::Encoding(_))
        ));
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(deep.as_bytes()).unwrap_err(), ParseError::TooDeep);
        assert!(matches!(
            parse(b"<!DOCTYPE x [<!ENTITY e 'x'>]><a>&e;</a>"),
            Err(ParseError::Syntax { .. })
        ));
    }

    mod utf8_check {
        use proptest::prelude::*;

        proptest! {
            /// `utf8` gives what `std::str::from_utf8` gives, text or error (its
            /// position and length included), on any bytes: mostly text with stray bytes,
            /// cut multi-byte characters and surrogates mixed in, of lengths around SIMD
            /// block sizes.
            #[test]
            fn utf8_answers_as_std_does(
                pieces in proptest::collection::vec(
                    prop_oneof![
                        "[a-z<>&\"']{0,70}".prop_map(String::into_bytes),
                        "[\u{80}-\u{10FFFF}]{0,20}".prop_map(String::into_bytes),
                        proptest::collection::vec(any::<u8>(), 0..4),
                        Just(vec![0xED, 0xA0, 0x80]),
                        Just(vec![0xE2, 0x82]),
                    ],
                    0..12,
                )
            ) {
                let bytes: Vec<u8> = pieces.concat();
                prop_assert_eq!(super::super::utf8(&bytes), std::str::from_utf8(&bytes));
            }
        }
    }
}
