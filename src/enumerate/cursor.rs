//! The event layer under the page reader: a quick-xml `Reader` over the response text
//! with depth, the caps of the tree reader (depth, attributes, declarations in scope) and
//! namespace declarations tracked here rather than by `NsReader`: only elements with
//! attributes can declare one, and only structural elements, EPRs and structured values
//! need resolving, so property elements (most of a response) cost one check.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::{BytesRef, BytesStart, Event};

use crate::soap::ns;
use crate::soap::xml::{MAX_ATTRIBUTES, MAX_DEPTH, MAX_NAMESPACES_IN_SCOPE, ParseError, excerpt};

/// The next child element and whether it is empty (`<x/>`).
pub(crate) type Child<'i> = Option<(Start<'i>, bool)>;

/// A reader positioned in the document, tracking depth and namespace declarations.
pub(crate) struct Cursor<'i> {
    input: &'i str,
    pub(super) r: Reader<&'i [u8]>,
    pub(super) depth: usize,
    /// `(prefix, namespace)` declarations in scope, innermost last (`""`: default).
    pub(super) bindings: Vec<(&'i [u8], Cow<'i, str>)>,
    /// How many declarations each open element made.
    pub(super) declared: Vec<usize>,
    /// The declarations of the empty element just read, undone by the next read.
    pub(super) pending: usize,
    /// Properties of the previous instance: a capacity hint for the next.
    pub(crate) hint: usize,
}

pub(crate) type Start<'i> = BytesStart<'i>;

impl<'i> Cursor<'i> {
    pub(crate) fn new(input: &'i str) -> Self {
        let mut r = Reader::from_str(input);
        let cfg = r.config_mut();
        cfg.check_end_names = true;
        cfg.expand_empty_elements = false;
        Cursor {
            input,
            r,
            depth: 0,
            bindings: Vec::with_capacity(16),
            declared: Vec::with_capacity(16),
            pending: 0,
            hint: 8,
        }
    }

    pub(crate) fn syntax(&self, e: &dyn std::fmt::Display) -> ParseError {
        ParseError::Syntax {
            position: self.r.buffer_position(),
            message: excerpt(&e.to_string(), 200),
        }
    }

    pub(crate) fn eof(&self) -> ParseError {
        self.syntax(&"unexpected end of document")
    }

    /// The same bytes with the input's lifetime, when they lie inside the input (they do
    /// for every borrowed event of a reader over a `&str`).
    fn pin(&self, bytes: &[u8]) -> Option<&'i [u8]> {
        let base = self.input.as_ptr() as usize;
        let at = (bytes.as_ptr() as usize).checked_sub(base)?;
        self.input.as_bytes().get(at..at.checked_add(bytes.len())?)
    }

    /// The same text with the input's lifetime, without validating it again (the
    /// reader splits the input only at ASCII delimiters, so slices are whole characters).
    pub(crate) fn pin_str(&self, bytes: &[u8]) -> Option<&'i str> {
        let base = self.input.as_ptr() as usize;
        let at = (bytes.as_ptr() as usize).checked_sub(base)?;
        self.input.get(at..at.checked_add(bytes.len())?)
    }

    /// The local name of an element, borrowed from the input.
    pub(crate) fn local_name(&self, e: &Start<'i>) -> Result<&'i str, ParseError> {
        let local = e.local_name();
        self.pin_str(local.as_ref())
            .ok_or_else(|| self.syntax(&"element name outside the input"))
    }

    /// The content of a text event, borrowed from the input.
    pub(crate) fn text_of(
        &self,
        t: &quick_xml::events::BytesText<'i>,
    ) -> Result<Cow<'i, str>, ParseError> {
        match self.pin_str(t) {
            Some(s) => Ok(Cow::Borrowed(s)),
            None => t.decode().map_err(|err| self.syntax(&err)),
        }
    }

    /// The next event that matters, with depth and declarations updated.
    #[inline]
    pub(crate) fn next(&mut self) -> Result<Event<'i>, ParseError> {
        if self.pending > 0 {
            let keep = self.bindings.len() - self.pending;
            self.bindings.truncate(keep);
            self.pending = 0;
        }
        loop {
            let ev = self.r.read_event().map_err(|e| self.syntax(&e))?;
            match &ev {
                Event::Start(e) => {
                    if self.depth >= MAX_DEPTH {
                        return Err(ParseError::TooDeep);
                    }
                    let n = self.declare(e)?;
                    self.depth += 1;
                    self.declared.push(n);
                }
                Event::Empty(e) => {
                    if self.depth >= MAX_DEPTH {
                        return Err(ParseError::TooDeep);
                    }
                    self.pending = self.declare(e)?;
                }
                Event::End(_) => self.end(),
                Event::DocType(_) => {
                    return Err(self.syntax(&"DOCTYPE is not allowed in SOAP messages"));
                }
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) => continue,
                _ => {}
            }
            return Ok(ev);
        }
    }

    /// Bookkeeping for an end tag.
    pub(super) fn end(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        let n = self.declared.pop().unwrap_or(0);
        self.bindings
            .truncate(self.bindings.len().saturating_sub(n));
    }

    /// Records an element's namespace declarations; refuses too many attributes or too
    /// many declarations in scope. An element without attributes costs one check.
    #[inline]
    pub(super) fn declare(&mut self, e: &Start<'i>) -> Result<usize, ParseError> {
        if e.attributes_raw().iter().all(u8::is_ascii_whitespace) {
            return Ok(0);
        }
        self.declare_attributes(e)
    }

    #[inline(never)]
    fn declare_attributes(&mut self, e: &Start<'i>) -> Result<usize, ParseError> {
        let mut n = 0usize;
        for (count, a) in e.attributes().with_checks(true).enumerate() {
            if count >= MAX_ATTRIBUTES {
                return Err(self.syntax(&format!(
                    "more than {MAX_ATTRIBUTES} attributes on one element"
                )));
            }
            let a = a.map_err(|err| self.syntax(&err))?;
            let key = a.key.as_ref();
            let prefix: &[u8] = match key {
                b"xmlns" => b"",
                k if k.starts_with(b"xmlns:") => &k[6..],
                _ => continue,
            };
            if self.bindings.len() >= MAX_NAMESPACES_IN_SCOPE {
                return Err(self.syntax(&format!(
                    "more than {MAX_NAMESPACES_IN_SCOPE} namespace declarations in scope"
                )));
            }
            let prefix: &'i [u8] = match prefix {
                b"" => b"",
                p => self
                    .pin(p)
                    .ok_or_else(|| self.syntax(&"attribute outside the input"))?,
            };
            let raw = self.pin(&a.value).and_then(|v| std::str::from_utf8(v).ok());
            let uri: Cow<'i, str> = match raw {
                Some(v) if !v.contains('&') => Cow::Borrowed(v),
                _ => Cow::Owned(
                    a.unescape_value()
                        .map_err(|err| self.syntax(&err))?
                        .into_owned(),
                ),
            };
            self.bindings.push((prefix, uri));
            n += 1;
        }
        Ok(n)
    }

    /// The namespace bound to `prefix` (`b""`: the default namespace).
    pub(crate) fn lookup(&self, prefix: &[u8]) -> Option<&str> {
        if prefix == b"xml" {
            return Some(ns::XML);
        }
        let (_, uri) = self.bindings.iter().rev().find(|(p, _)| *p == prefix)?;
        (!uri.is_empty()).then_some(uri.as_ref())
    }

    /// An element's namespace URI.
    pub(crate) fn element_ns(&self, e: &Start<'i>) -> Option<&str> {
        let name = e.name();
        self.lookup(name.prefix().as_ref().map_or(&b""[..], |p| p.as_ref()))
    }

    /// The namespace of an element, borrowed when it is one this crate knows.
    pub(crate) fn ns_of(&self, e: &Start<'i>) -> Option<Cow<'static, str>> {
        self.element_ns(e).map(|n| match ns::intern(n.as_bytes()) {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(n.to_string()),
        })
    }

    pub(crate) fn is(&self, e: &Start<'i>, ns: &str, local: &str) -> bool {
        e.local_name().as_ref() == local.as_bytes() && self.element_ns(e) == Some(ns)
    }

    pub(crate) fn describe(&self, e: &Start<'i>) -> String {
        let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
        match self.element_ns(e) {
            Some(n) => format!("{{{n}}}{local}"),
            None => local,
        }
    }

    /// The next child element of the current element, or None at its end. Text between
    /// structural elements is ignored.
    pub(crate) fn next_child(&mut self) -> Result<Child<'i>, ParseError> {
        loop {
            match self.next()? {
                Event::Start(e) => return Ok(Some((e, false))),
                Event::Empty(e) => return Ok(Some((e, true))),
                Event::End(_) => return Ok(None),
                Event::Eof if self.depth == 0 => return Ok(None),
                Event::Eof => return Err(self.eof()),
                _ => {}
            }
        }
    }

    pub(crate) fn expect_eof(&mut self) -> Result<(), ParseError> {
        loop {
            match self.next()? {
                Event::Eof => return Ok(()),
                Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
                _ => return Err(self.syntax(&"content after the root element")),
            }
        }
    }

    /// Skips the rest of an element whose start was just read.
    pub(crate) fn skip(&mut self, e: &Start<'i>, empty: bool) -> Result<(), ParseError> {
        if !empty {
            self.r
                .read_to_end(e.name())
                .map_err(|err| self.syntax(&err))?;
            self.end();
        }
        Ok(())
    }

    pub(crate) fn push_ref(&self, out: &mut String, r: &BytesRef<'_>) -> Result<(), ParseError> {
        match r.resolve_char_ref() {
            Ok(Some(ch)) => out.push(ch),
            Ok(None) => {
                let name = r.decode().map_err(|e| self.syntax(&e))?;
                match quick_xml::escape::resolve_predefined_entity(&name) {
                    Some(s) => out.push_str(s),
                    None => {
                        return Err(
                            self.syntax(&format!("unknown entity &{};", excerpt(&name, 20)))
                        );
                    }
                }
            }
            Err(e) => return Err(self.syntax(&e)),
        }
        Ok(())
    }

    /// True when the element carries `xsi:nil="true"`.
    pub(crate) fn is_nil(&self, e: &Start<'i>) -> Result<bool, ParseError> {
        if e.attributes_raw().iter().all(u8::is_ascii_whitespace) {
            return Ok(false);
        }
        for a in e.attributes().with_checks(false) {
            let a = a.map_err(|err| self.syntax(&err))?;
            let Some(prefix) = a.key.prefix() else {
                continue;
            };
            if a.key.local_name().as_ref() != b"nil"
                || self.lookup(prefix.as_ref()) != Some(ns::XSI)
            {
                continue;
            }
            let v = a.unescape_value().map_err(|err| self.syntax(&err))?;
            return Ok(v.trim().eq_ignore_ascii_case("true") || v.trim() == "1");
        }
        Ok(false)
    }
}
