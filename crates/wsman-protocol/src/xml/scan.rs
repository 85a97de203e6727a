//! A pull reader over quick-xml events that checks a document as [`super::parse`] does
//! (well-formedness, namespace declarations, the `MAX_*` limits, references, no
//! DOCTYPE) but builds no element tree: element names come back resolved against the
//! declarations in scope, and attributes and character data as slices of the document.
//! For readers of a few fields of a hot response (WinRS); anything it refuses, the tree
//! reader refuses too (its checks are the tree reader's, and never fewer), so a caller
//! may fall back to the tree reader for the detailed error.

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use super::{
    MAX_ATTRIBUTES, MAX_DEPTH, MAX_NAMESPACES_IN_SCOPE, Ns, ParseError, Scope, excerpt, split_qname,
};

/// One step of a [`Scanner`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<'t> {
    /// An element opened (`empty`: it was `<x/>`, and no [`Step::End`] follows). Its
    /// namespace, local name and attributes are [`Scanner::is`], [`Scanner::attr`].
    Start {
        /// Local name.
        local: &'t str,
        /// The element was written `<x/>`.
        empty: bool,
    },
    /// The innermost open element closed.
    End,
    /// A piece of character data of the innermost open element: text (borrowed from
    /// the document), a CDATA section or a resolved reference.
    Text(Cow<'t, str>),
    /// The document ended, well-formed.
    Eof,
}

/// The pull reader; see the module documentation.
pub struct Scanner<'t> {
    reader: Reader<&'t [u8]>,
    text: &'t str,
    scope: Scope,
    /// Per open element: the bindings in scope before it, and its declarations.
    frames: Vec<(usize, usize)>,
    in_scope: usize,
    root_done: bool,
    /// After an empty element: the bindings to drop before the next step.
    pending_truncate: Option<usize>,
    /// The last opened element: its namespace and attributes (qualified name, value).
    ns: Option<Ns>,
    attrs: Vec<(&'t str, Cow<'t, str>)>,
}

impl std::fmt::Debug for Scanner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("depth", &self.frames.len())
            .finish_non_exhaustive()
    }
}

impl<'t> Scanner<'t> {
    /// A scanner over a document already decoded to text ([`super::decode_text`]).
    pub fn new(text: &'t str) -> Scanner<'t> {
        let mut reader = Reader::from_str(text);
        {
            let cfg = reader.config_mut();
            cfg.check_end_names = true;
            cfg.expand_empty_elements = false;
        }
        Scanner {
            reader,
            text,
            scope: Scope::new(),
            frames: Vec::with_capacity(12),
            in_scope: 0,
            root_done: false,
            pending_truncate: None,
            ns: None,
            attrs: Vec::with_capacity(4),
        }
    }

    /// How many elements are open (after a [`Step::Start`], the new one included; an
    /// empty element is counted until the next step).
    pub fn depth(&self) -> usize {
        self.frames.len() + usize::from(self.pending_truncate.is_some())
    }

    /// The namespace of the last opened element.
    pub fn ns(&self) -> Option<&str> {
        self.ns.as_deref()
    }

    /// An attribute of the last opened element by local name, as
    /// [`super::Element::attr`] finds it: an attribute without a namespace first, else
    /// any with that local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        let local = |q: &'t str| -> (Option<&[u8]>, &[u8]) { split_qname(q.as_bytes()) };
        self.attrs
            .iter()
            .find(|(q, _)| {
                let (prefix, l) = local(q);
                l == name.as_bytes()
                    && (prefix.is_none() || self.scope.resolve(prefix, false).is_none())
            })
            .or_else(|| {
                self.attrs
                    .iter()
                    .find(|(q, _)| local(q).1 == name.as_bytes())
            })
            .map(|(_, v)| v.as_ref())
    }

    fn syntax(&self, message: String) -> ParseError {
        ParseError::Syntax {
            position: self.reader.buffer_position(),
            message: excerpt(&message, 200),
        }
    }

    /// The next step.
    ///
    /// # Errors
    /// What [`super::parse`] refuses: [`ParseError::Syntax`], [`ParseError::TooDeep`],
    /// [`ParseError::Empty`], [`ParseError::Encoding`].
    pub fn next_step(&mut self) -> Result<Step<'t>, ParseError> {
        if let Some(first) = self.pending_truncate.take() {
            self.scope.truncate(first);
        }
        loop {
            let ev = self
                .reader
                .read_event()
                .map_err(|e| self.syntax(e.to_string()))?;
            match ev {
                Event::Start(ref start) | Event::Empty(ref start) => {
                    let empty = matches!(ev, Event::Empty(_));
                    if self.root_done {
                        return Err(self.syntax("content after the root element".into()));
                    }
                    if self.frames.len() >= MAX_DEPTH {
                        return Err(ParseError::TooDeep);
                    }
                    let first = self.scope.bindings.len();
                    let mut decls = 0usize;
                    self.attrs.clear();
                    for (count, a) in start.attributes().with_checks(false).enumerate() {
                        if count >= MAX_ATTRIBUTES {
                            return Err(self.syntax(format!(
                                "more than {MAX_ATTRIBUTES} attributes on one element"
                            )));
                        }
                        let a = a.map_err(|e| self.syntax(e.to_string()))?;
                        let key = a.key.as_ref();
                        let declared = match key.strip_prefix(b"xmlns") {
                            Some([]) => Some(&[][..]),
                            Some([b':', prefix @ ..]) => Some(prefix),
                            _ => None,
                        };
                        if let Some(prefix) = declared {
                            decls += 1;
                            if self.in_scope + decls > MAX_NAMESPACES_IN_SCOPE {
                                return Err(self.syntax(format!(
                                    "more than {MAX_NAMESPACES_IN_SCOPE} namespace declarations in scope"
                                )));
                            }
                            if let Err(m) = self.scope.declare(prefix, &a.value, first) {
                                return Err(self.syntax(m));
                            }
                            continue;
                        }
                        let name = within(self.text, key)?;
                        if self.attrs.iter().any(|(q, _)| *q == name) {
                            return Err(
                                self.syntax(format!("duplicate attribute {}", excerpt(name, 40)))
                            );
                        }
                        let raw = within(self.text, &a.value)?;
                        let value = if raw.contains('&') {
                            Cow::Owned(
                                a.unescape_value()
                                    .map_err(|e| self.syntax(e.to_string()))?
                                    .into_owned(),
                            )
                        } else {
                            Cow::Borrowed(raw)
                        };
                        self.attrs.push((name, value));
                    }
                    let (prefix, local) = split_qname(start.name().into_inner());
                    let local = within(self.text, local)?;
                    self.ns = self.scope.resolve(prefix, true);
                    if empty {
                        if self.frames.is_empty() {
                            self.root_done = true;
                        }
                        self.pending_truncate = Some(first);
                    } else {
                        self.frames.push((first, decls));
                        self.in_scope += decls;
                    }
                    return Ok(Step::Start { local, empty });
                }
                Event::End(_) => {
                    let Some((first, decls)) = self.frames.pop() else {
                        return Err(self.syntax("unmatched end tag".into()));
                    };
                    self.scope.truncate(first);
                    self.in_scope = self.in_scope.saturating_sub(decls);
                    if self.frames.is_empty() {
                        self.root_done = true;
                    }
                    return Ok(Step::End);
                }
                Event::Text(t) => {
                    let s = within(self.text, &t)?;
                    if !self.frames.is_empty() {
                        return Ok(Step::Text(Cow::Borrowed(s)));
                    }
                    if !s.trim().is_empty() {
                        return Err(self.syntax("text outside the root element".into()));
                    }
                }
                Event::CData(c) => {
                    let s = c.decode().map_err(|e| self.syntax(e.to_string()))?;
                    if self.frames.is_empty() {
                        return Err(self.syntax("CDATA outside the root element".into()));
                    }
                    return Ok(Step::Text(Cow::Owned(s.into_owned())));
                }
                Event::GeneralRef(r) => {
                    if self.frames.is_empty() {
                        return Err(self.syntax("reference outside the root element".into()));
                    }
                    return match r.resolve_char_ref() {
                        Ok(Some(ch)) => Ok(Step::Text(Cow::Owned(ch.to_string()))),
                        Ok(None) => {
                            let name = r.decode().map_err(|e| self.syntax(e.to_string()))?;
                            match quick_xml::escape::resolve_predefined_entity(&name) {
                                Some(s) => Ok(Step::Text(Cow::Borrowed(s))),
                                None => {
                                    Err(self
                                        .syntax(format!("unknown entity &{};", excerpt(&name, 20))))
                                }
                            }
                        }
                        Err(e) => Err(self.syntax(e.to_string())),
                    };
                }
                Event::DocType(_) => {
                    return Err(self.syntax("DOCTYPE is not allowed in SOAP messages".into()));
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => {
                    if !self.frames.is_empty() {
                        return Err(self.syntax("unexpected end of document".into()));
                    }
                    if !self.root_done {
                        return Err(ParseError::Empty);
                    }
                    return Ok(Step::Eof);
                }
            }
        }
    }
}

/// The slice of `text` that `bytes` borrows (the reader hands out nothing else for a
/// document read from a `&str`; anything else is refused).
fn within<'t>(text: &'t str, bytes: &[u8]) -> Result<&'t str, ParseError> {
    bytes
        .as_ptr()
        .addr()
        .checked_sub(text.as_ptr().addr())
        .and_then(|start| text.get(start..start.checked_add(bytes.len())?))
        .ok_or_else(|| ParseError::Encoding("text outside the document".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns;

    /// Every step of `xml`, or the first error.
    fn steps(xml: &str) -> Result<Vec<String>, ParseError> {
        let mut s = Scanner::new(xml);
        let mut out = Vec::new();
        loop {
            match s.next_step()? {
                Step::Start { local, empty } => out.push(format!(
                    "<{{{}}}{local}{}{}>",
                    s.ns().unwrap_or(""),
                    s.attr("Name")
                        .map(|v| format!(" Name={v}"))
                        .unwrap_or_default(),
                    if empty { "/" } else { "" }
                )),
                Step::End => out.push("</>".into()),
                Step::Text(t) => out.push(t.into_owned()),
                Step::Eof => return Ok(out),
            }
        }
    }

    #[test]
    fn resolves_names_and_attributes_as_the_tree_does() {
        let xml = r#"<s:E xmlns:s="http://www.w3.org/2003/05/soap-envelope"><x:A xmlns:x="urn:x" x:Name="p" Name="a&amp;b"/><B u:Name="q">t&lt;<![CDATA[c]]>&#65;</B></s:E>"#;
        assert_eq!(
            steps(xml).unwrap(),
            [
                format!("<{{{}}}E>", ns::SOAP),
                "<{urn:x}A Name=a&b/>".into(),
                // An attribute with an unbound prefix has no namespace, as in the tree.
                "<{}B Name=q>".into(),
                "t".into(),
                "<".into(),
                "c".into(),
                "A".into(),
                "</>".into(),
                "</>".into(),
            ]
        );
    }

    #[test]
    fn refuses_what_the_tree_reader_refuses() {
        for bad in [
            "",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "x<a/>",
            "<a x='1' x='2'/>",
            "<a xmlns:p='u' xmlns:p='v'/>",
            "<a xmlns:xml='urn:other'/>",
            "<!DOCTYPE a><a/>",
            "<a>&bogus;</a>",
            "<a b='&bogus;'/>",
            "<a><![CDATA[x]]></a><![CDATA[y]]>",
        ] {
            assert!(steps(bad).is_err(), "{bad:?} was accepted");
            assert!(crate::xml::parse_str(bad).is_err(), "{bad:?}");
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(steps(&deep), Err(ParseError::TooDeep));
        let attrs: String = (0..=MAX_ATTRIBUTES).map(|i| format!(" a{i}='1'")).collect();
        assert!(matches!(
            steps(&format!("<a{attrs}/>")),
            Err(ParseError::Syntax { .. })
        ));
    }
}
