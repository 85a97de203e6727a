//! A small namespace-resolved element tree over quick-xml's `NsReader`.
//!
//! Responses are bounded by the transport's body cap, so a tree is cheap and lets every
//! parser match elements by namespace URI and local name, never by prefix.

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::ns;

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
    pub(crate) fn invalid(what: &'static str, value: &str) -> Self {
        ParseError::Invalid {
            what,
            value: excerpt(value, 80),
        }
    }
}

/// Shortens `s` to at most `max` characters, on a character boundary.
pub(crate) fn excerpt(s: &str, max: usize) -> String {
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

fn resolve(r: ResolveResult<'_>) -> Option<Ns> {
    match r {
        ResolveResult::Bound(n) => Some(match ns::intern(n.as_ref()) {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(String::from_utf8_lossy(n.as_ref()).into_owned()),
        }),
        _ => None,
    }
}

/// Decodes bytes to text: UTF-8 (with or without BOM), or UTF-16 with a BOM.
pub fn decode_text(input: &[u8]) -> Result<Cow<'_, str>, ParseError> {
    if let Some(rest) = input.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return std::str::from_utf8(rest)
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
    std::str::from_utf8(input)
        .map(Cow::Borrowed)
        .map_err(|e| ParseError::Encoding(e.to_string()))
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

/// Parses a document already decoded to text.
///
/// # Errors
/// As [`parse`].
pub fn parse_str(text: &str) -> Result<Element, ParseError> {
    let mut reader = NsReader::from_str(text);
    {
        let cfg = reader.config_mut();
        cfg.check_end_names = true;
        cfg.expand_empty_elements = false;
    }
    let mut stack: Vec<Element> = Vec::with_capacity(16);
    // Namespace declarations of each open element, and their sum.
    let mut declared: Vec<usize> = Vec::with_capacity(16);
    let mut in_scope = 0usize;
    let mut root: Option<Element> = None;
    let syntax = |reader: &NsReader<&[u8]>, e: &dyn std::fmt::Display| ParseError::Syntax {
        position: reader.buffer_position(),
        message: excerpt(&e.to_string(), 200),
    };
    loop {
        let (res, ev) = match reader.read_resolved_event() {
            Ok(v) => v,
            Err(e) => return Err(syntax(&reader, &e)),
        };
        let nsv = resolve(res);
        match ev {
            Event::Start(ref start) | Event::Empty(ref start) => {
                let is_empty = matches!(ev, Event::Empty(_));
                if root.is_some() {
                    return Err(ParseError::Syntax {
                        position: reader.buffer_position(),
                        message: "content after the root element".into(),
                    });
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(ParseError::TooDeep);
                }
                let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                let mut attrs = Vec::new();
                let mut decls = 0usize;
                for (count, a) in start.attributes().enumerate() {
                    if count >= MAX_ATTRIBUTES {
                        return Err(ParseError::Syntax {
                            position: reader.buffer_position(),
                            message: format!(
                                "more than {MAX_ATTRIBUTES} attributes on one element"
                            ),
                        });
                    }
                    let a = a.map_err(|e| syntax(&reader, &e))?;
                    let key = a.key;
                    if key.as_ref() == b"xmlns" || key.as_ref().starts_with(b"xmlns:") {
                        decls += 1;
                        continue;
                    }
                    let (ares, local) = reader.resolve_attribute(key);
                    let ans = if key.prefix().is_some() {
                        resolve(ares)
                    } else {
                        None
                    };
                    let value = a
                        .unescape_value()
                        .map_err(|e| syntax(&reader, &e))?
                        .into_owned();
                    attrs.push(Attr {
                        ns: ans,
                        name: String::from_utf8_lossy(local.as_ref()).into_owned(),
                        value,
                    });
                }
                let el = Element {
                    ns: nsv,
                    name,
                    attrs,
                    text: String::new(),
                    children: Vec::new(),
                };
                if in_scope + decls > MAX_NAMESPACES_IN_SCOPE {
                    return Err(ParseError::Syntax {
                        position: reader.buffer_position(),
                        message: format!(
                            "more than {MAX_NAMESPACES_IN_SCOPE} namespace declarations in scope"
                        ),
                    });
                }
                if is_empty {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => root = Some(el),
                    }
                } else {
                    stack.push(el);
                    declared.push(decls);
                    in_scope += decls;
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or_else(|| ParseError::Syntax {
                    position: reader.buffer_position(),
                    message: "unmatched end tag".into(),
                })?;
                in_scope = in_scope.saturating_sub(declared.pop().unwrap_or(0));
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| syntax(&reader, &e))?;
                match stack.last_mut() {
                    Some(cur) => cur.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => {
                        return Err(ParseError::Syntax {
                            position: reader.buffer_position(),
                            message: "text outside the root element".into(),
                        });
                    }
                }
            }
            Event::CData(c) => {
                let s = c.decode().map_err(|e| syntax(&reader, &e))?;
                match stack.last_mut() {
                    Some(cur) => cur.text.push_str(&s),
                    None => {
                        return Err(ParseError::Syntax {
                            position: reader.buffer_position(),
                            message: "CDATA outside the root element".into(),
                        });
                    }
                }
            }
            Event::GeneralRef(r) => {
                let cur = stack.last_mut().ok_or_else(|| ParseError::Syntax {
                    position: reader.buffer_position(),
                    message: "reference outside the root element".into(),
                })?;
                match r.resolve_char_ref() {
                    Ok(Some(ch)) => cur.text.push(ch),
                    Ok(None) => {
                        let name = r.decode().map_err(|e| syntax(&reader, &e))?;
                        match quick_xml::escape::resolve_predefined_entity(&name) {
                            Some(s) => cur.text.push_str(s),
                            None => {
                                return Err(ParseError::Syntax {
                                    position: reader.buffer_position(),
                                    message: format!("unknown entity &{};", excerpt(&name, 20)),
                                });
                            }
                        }
                    }
                    Err(e) => return Err(syntax(&reader, &e)),
                }
            }
            Event::DocType(_) => {
                return Err(ParseError::Syntax {
                    position: reader.buffer_position(),
                    message: "DOCTYPE is not allowed in SOAP messages".into(),
                });
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(ParseError::Syntax {
            position: reader.buffer_position(),
            message: format!(
                "unexpected end of document inside <{}>",
                stack.last().map(|e| e.name.as_str()).unwrap_or("")
            ),
        });
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
}
