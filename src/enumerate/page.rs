//! Reads an EnumerateResponse or PullResponse in one streaming pass over quick-xml
//! events, building the items' [`Instance`]s directly instead of a generic element tree
//! ([MS-WSMV] §3.1.4.8-9, DESIGN §3): `EnumerationContext` (possibly empty), `Items` and
//! `EndOfSequence` in the wsen or the wsman namespace, items as typed elements
//! (`p:Win32_Service`), `w:XmlFragment`, bare `a:EndpointReference`s or `w:Item`
//! wrappers holding both. A fault is left to the tree-based fault reader.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::EnumItem;
use crate::error::{Error, Result};
use crate::soap::cim::{EndpointReference, Instance, Value};
use crate::soap::fault::Fault;
use crate::soap::ns;
use crate::soap::xml::{self, Attr, Element, MAX_ATTRIBUTES, MAX_DEPTH, MAX_NAMESPACES_IN_SCOPE, ParseError, excerpt};

/// One batch of an enumeration: the items of an EnumerateResponse or a PullResponse,
/// the context for the next Pull, and whether the sequence ended.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Page {
    /// The items, in document order.
    pub items: Vec<EnumItem>,
    /// The `EnumerationContext` for the next Pull or a Release; `None` when absent or
    /// empty (Windows sends an empty one, or none, with `EndOfSequence`).
    pub context: Option<String>,
    /// True when the response carried `EndOfSequence`.
    pub end_of_sequence: bool,
}

impl Page {
    /// Parses the bytes of an EnumerateResponse or PullResponse envelope.
    ///
    /// # Errors
    /// [`Error::Fault`] when the envelope holds a SOAP fault, [`Error::Parse`] when it is
    /// not an enumeration response.
    pub fn parse(bytes: &[u8]) -> Result<Page> {
        match scan(bytes)? {
            Scan::Page(p) => Ok(p),
            Scan::Fault => {
                let root = xml::parse(bytes)?;
                match Fault::from_envelope(&root) {
                    Some(f) => Err(Error::from(f)),
                    None => Err(ParseError::Missing("s:Fault").into()),
                }
            }
        }
    }
}

/// What the streaming pass found.
pub(crate) enum Scan {
    /// An enumeration response.
    Page(Page),
    /// The body holds an `s:Fault`; read it with the tree-based reader.
    Fault,
}

/// Scans a response envelope.
pub(crate) fn scan(input: &[u8]) -> Result<Scan, ParseError> {
    let text = xml::decode_text(input)?;
    let mut c = Cursor::new(&text);
    let Some((root, empty)) = c.next_child()? else {
        return Err(ParseError::Empty);
    };
    if !c.is(&root, ns::SOAP, "Envelope") {
        return Err(ParseError::Unexpected {
            expected: "a SOAP 1.2 Envelope",
            found: c.describe(&root),
        });
    }
    let mut page = None;
    if !empty {
        while let Some((e, empty)) = c.next_child()? {
            if !c.is(&e, ns::SOAP, "Body") || empty {
                c.skip(&e, empty)?;
                continue;
            }
            while let Some((b, empty)) = c.next_child()? {
                if c.is(&b, ns::SOAP, "Fault") {
                    return Ok(Scan::Fault);
                }
                if c.is(&b, ns::ENUMERATION, "EnumerateResponse") || c.is(&b, ns::ENUMERATION, "PullResponse") {
                    page = Some(c.response(empty)?);
                } else {
                    return Err(ParseError::Unexpected {
                        expected: "an EnumerateResponse or PullResponse",
                        found: c.describe(&b),
                    });
                }
            }
        }
    }
    c.expect_eof()?;
    page.map(Scan::Page)
        .ok_or(ParseError::Missing("n:EnumerateResponse or n:PullResponse"))
}

/// A reader positioned in the document, tracking depth.
struct Cursor<'i> {
    r: NsReader<&'i [u8]>,
    depth: usize,
    /// Namespace declarations of each open element, and their sum (capped like the
    /// tree reader's, so hostile input cannot make name resolution quadratic).
    declared: Vec<usize>,
    in_scope: usize,
    /// Properties of the previous instance: a capacity hint for the next.
    hint: usize,
}

type Start<'i> = BytesStart<'i>;

impl<'i> Cursor<'i> {
    fn new(text: &'i str) -> Self {
        let mut r = NsReader::from_str(text);
        let cfg = r.config_mut();
        cfg.check_end_names = true;
        cfg.expand_empty_elements = false;
        Cursor {
            r,
            depth: 0,
            declared: Vec::with_capacity(16),
            in_scope: 0,
            hint: 8,
        }
    }

    fn syntax(&self, e: &dyn std::fmt::Display) -> ParseError {
        ParseError::Syntax {
            position: self.r.buffer_position(),
            message: excerpt(&e.to_string(), 200),
        }
    }

    fn eof(&self) -> ParseError {
        self.syntax(&"unexpected end of document")
    }

    /// The next event that matters, with the depth and the declarations in scope
    /// updated.
    fn next(&mut self) -> Result<Event<'i>, ParseError> {
        loop {
            let ev = self.r.read_event().map_err(|e| self.syntax(&e))?;
            match &ev {
                Event::Start(e) => {
                    if self.depth >= MAX_DEPTH {
                        return Err(ParseError::TooDeep);
                    }
                    let decls = self.declarations(e)?;
                    self.depth += 1;
                    self.declared.push(decls);
                    self.in_scope += decls;
                }
                Event::Empty(e) => {
                    self.declarations(e)?;
                }
                Event::End(_) => self.end(),
                Event::DocType(_) => return Err(self.syntax(&"DOCTYPE is not allowed in SOAP messages")),
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) => continue,
                _ => {}
            }
            return Ok(ev);
        }
    }

    /// Bookkeeping for an end tag.
    fn end(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        self.in_scope = self.in_scope.saturating_sub(self.declared.pop().unwrap_or(0));
    }

    /// Counts an element's namespace declarations, refusing too many attributes or too
    /// many declarations in scope. Elements without attributes cost one check.
    fn declarations(&self, e: &Start<'i>) -> Result<usize, ParseError> {
        if e.attributes_raw().iter().all(u8::is_ascii_whitespace) {
            return Ok(0);
        }
        let mut decls = 0usize;
        for (count, a) in e.attributes().with_checks(false).enumerate() {
            if count >= MAX_ATTRIBUTES {
                return Err(self.syntax(&format!("more than {MAX_ATTRIBUTES} attributes on one element")));
            }
            let a = a.map_err(|err| self.syntax(&err))?;
            if a.key.as_ref() == b"xmlns" || a.key.as_ref().starts_with(b"xmlns:") {
                decls += 1;
            }
        }
        if self.in_scope + decls > MAX_NAMESPACES_IN_SCOPE {
            return Err(self.syntax(&format!("more than {MAX_NAMESPACES_IN_SCOPE} namespace declarations in scope")));
        }
        Ok(decls)
    }

    /// The next child element of the current element, or None at its end. Text between
    /// structural elements is ignored.
    fn next_child(&mut self) -> Result<Option<(Start<'i>, bool)>, ParseError> {
        loop {
            match self.next()? {
                Event::Start(e) => return Ok(Some((e, false))),
                Event::Empty(e) => {
                    if self.depth >= MAX_DEPTH {
                        return Err(ParseError::TooDeep);
                    }
                    return Ok(Some((e, true)));
                }
                Event::End(_) => return Ok(None),
                Event::Eof if self.depth == 0 => return Ok(None),
                Event::Eof => return Err(self.eof()),
                _ => {}
            }
        }
    }

    fn expect_eof(&mut self) -> Result<(), ParseError> {
        loop {
            match self.next()? {
                Event::Eof => return Ok(()),
                Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
                _ => return Err(self.syntax(&"content after the root element")),
            }
        }
    }

    /// Skips the rest of an element whose start was just read.
    fn skip(&mut self, e: &Start<'i>, empty: bool) -> Result<(), ParseError> {
        if !empty {
            self.r.read_to_end(e.name()).map_err(|err| self.syntax(&err))?;
            self.end();
        }
        Ok(())
    }

    fn is(&self, e: &Start<'i>, ns: &str, local: &str) -> bool {
        let (res, name) = self.r.resolve_element(e.name());
        name.as_ref() == local.as_bytes() && matches!(res, ResolveResult::Bound(n) if n.as_ref() == ns.as_bytes())
    }

    /// The element's namespace URI, borrowed when it is one this crate knows.
    fn ns_of(&self, e: &Start<'i>) -> Option<Cow<'static, str>> {
        match self.r.resolve_element(e.name()).0 {
            ResolveResult::Bound(n) => Some(match ns::intern(n.as_ref()) {
                Some(s) => Cow::Borrowed(s),
                None => Cow::Owned(String::from_utf8_lossy(n.as_ref()).into_owned()),
            }),
            _ => None,
        }
    }

    fn describe(&self, e: &Start<'i>) -> String {
        let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
        match self.ns_of(e) {
            Some(n) => format!("{{{n}}}{local}"),
            None => local,
        }
    }

    /// The content of a `wsen:EnumerateResponse` / `wsen:PullResponse`.
    fn response(&mut self, empty: bool) -> Result<Page, ParseError> {
        let mut page = Page::default();
        if empty {
            return Ok(page);
        }
        while let Some((e, empty)) = self.next_child()? {
            let either = |c: &Self, name| c.is(&e, ns::ENUMERATION, name) || c.is(&e, ns::WSMAN, name);
            if self.is(&e, ns::ENUMERATION, "EnumerationContext") {
                let t = self.text_content(empty)?;
                let t = t.trim();
                page.context = (!t.is_empty()).then(|| t.to_string());
            } else if either(self, "Items") {
                if !empty {
                    self.items(&mut page.items)?;
                }
            } else if either(self, "EndOfSequence") {
                page.end_of_sequence = true;
                self.skip(&e, empty)?;
            } else {
                self.skip(&e, empty)?;
            }
        }
        Ok(page)
    }

    /// Text of an element whose start was just read; child elements are skipped.
    fn text_content(&mut self, empty: bool) -> Result<String, ParseError> {
        let mut out = String::new();
        if empty {
            return Ok(out);
        }
        loop {
            match self.next()? {
                Event::Text(t) => out.push_str(&t.decode().map_err(|e| self.syntax(&e))?),
                Event::CData(t) => out.push_str(&t.decode().map_err(|e| self.syntax(&e))?),
                Event::GeneralRef(r) => self.push_ref(&mut out, &r)?,
                Event::Start(e) => self.skip(&e, false)?,
                Event::End(_) => return Ok(out),
                Event::Eof => return Err(self.eof()),
                _ => {}
            }
        }
    }

    fn push_ref(&self, out: &mut String, r: &quick_xml::events::BytesRef<'_>) -> Result<(), ParseError> {
        match r.resolve_char_ref() {
            Ok(Some(ch)) => out.push(ch),
            Ok(None) => {
                let name = r.decode().map_err(|e| self.syntax(&e))?;
                match quick_xml::escape::resolve_predefined_entity(&name) {
                    Some(s) => out.push_str(s),
                    None => return Err(self.syntax(&format!("unknown entity &{};", excerpt(&name, 20)))),
                }
            }
            Err(e) => return Err(self.syntax(&e)),
        }
        Ok(())
    }

    /// The children of `Items`.
    fn items(&mut self, out: &mut Vec<EnumItem>) -> Result<(), ParseError> {
        while let Some((e, empty)) = self.next_child()? {
            let item = if self.is(&e, ns::WSMAN, "Item") {
                self.item_wrapper(empty)?
            } else if self.is(&e, ns::ADDRESSING, "EndpointReference") {
                EnumItem::Reference(self.epr(&e, empty)?)
            } else {
                EnumItem::Object(self.instance(&e, empty)?)
            };
            out.push(item);
        }
        Ok(())
    }

    /// `w:Item`: an instance and/or its endpoint reference.
    fn item_wrapper(&mut self, empty: bool) -> Result<EnumItem, ParseError> {
        let (mut inst, mut epr) = (None, None);
        if !empty {
            while let Some((e, empty)) = self.next_child()? {
                if self.is(&e, ns::ADDRESSING, "EndpointReference") && epr.is_none() {
                    epr = Some(self.epr(&e, empty)?);
                } else if inst.is_none() {
                    inst = Some(self.instance(&e, empty)?);
                } else {
                    self.skip(&e, empty)?;
                }
            }
        }
        match (inst, epr) {
            (Some(i), Some(r)) => Ok(EnumItem::ObjectAndReference(i, r)),
            (Some(i), None) => Ok(EnumItem::Object(i)),
            (None, Some(r)) => Ok(EnumItem::Reference(r)),
            (None, None) => Err(ParseError::Missing("the content of a w:Item")),
        }
    }

    fn epr(&mut self, e: &Start<'i>, empty: bool) -> Result<EndpointReference, ParseError> {
        let el = self.subtree(e, empty)?;
        EndpointReference::from_element(&el).ok_or_else(|| ParseError::invalid("endpoint reference of an item", &el.describe()))
    }

    /// An instance element: each child is a property; repeated ones fold into arrays.
    fn instance(&mut self, e: &Start<'i>, empty: bool) -> Result<Instance, ParseError> {
        let local = e.local_name();
        let local = std::str::from_utf8(local.as_ref()).map_err(|err| self.syntax(&err))?;
        let class_name = local.strip_suffix("_Type").unwrap_or(local).to_string();
        let namespace = self.ns_of(e).map(Cow::into_owned);
        let mut properties: Vec<(String, Value)> = Vec::with_capacity(self.hint);
        if !empty {
            while let Some((p, empty)) = self.next_child()? {
                let v = self.property(&p, empty)?;
                let name = p.local_name();
                let name = name.as_ref();
                match properties.last_mut() {
                    Some((prev_name, prev)) if prev_name.as_bytes() == name => match prev {
                        Value::Array(items) => items.push(v),
                        _ => {
                            let first = std::mem::replace(prev, Value::Null);
                            *prev = Value::Array(vec![first, v]);
                        }
                    },
                    _ => {
                        let name = std::str::from_utf8(name).map_err(|err| self.syntax(&err))?;
                        properties.push((name.to_string(), v));
                    }
                }
            }
        }
        self.hint = properties.len().max(4);
        Ok(Instance {
            class_name,
            namespace,
            properties,
        })
    }

    /// True when the element carries `xsi:nil="true"`.
    fn is_nil(&self, e: &Start<'i>) -> Result<bool, ParseError> {
        if e.attributes_raw().iter().all(u8::is_ascii_whitespace) {
            return Ok(false);
        }
        for a in e.attributes() {
            let a = a.map_err(|err| self.syntax(&err))?;
            if a.key.local_name().as_ref() != b"nil" || a.key.prefix().is_none() {
                continue;
            }
            let (res, _) = self.r.resolve_attribute(a.key);
            if matches!(res, ResolveResult::Bound(n) if n.as_ref() == ns::XSI.as_bytes()) {
                let v = a.unescape_value().map_err(|err| self.syntax(&err))?;
                return Ok(v.trim().eq_ignore_ascii_case("true") || v.trim() == "1");
            }
        }
        Ok(false)
    }

    /// A property value: text without allocation of a tree in the common case; a
    /// property with child elements (datetime, interval, reference, embedded instance)
    /// is read as a small tree and interpreted by [`Value::from_element`].
    fn property(&mut self, e: &Start<'i>, empty: bool) -> Result<Value, ParseError> {
        let nil = self.is_nil(e)?;
        if empty {
            return Ok(if nil { Value::Null } else { Value::String(String::new()) });
        }
        let mut text: Cow<'i, str> = Cow::Borrowed("");
        loop {
            match self.next()? {
                Event::Text(t) => append(&mut text, t.decode().map_err(|err| self.syntax(&err))?),
                Event::CData(t) => append(&mut text, t.decode().map_err(|err| self.syntax(&err))?),
                Event::GeneralRef(r) => {
                    let mut s = String::new();
                    self.push_ref(&mut s, &r)?;
                    append(&mut text, Cow::Owned(s));
                }
                Event::End(_) => {
                    return Ok(if nil { Value::Null } else { Value::String(text.into_owned()) });
                }
                Event::Start(c) => return self.complex(nil, text, &c, false),
                Event::Empty(c) => return self.complex(nil, text, &c, true),
                Event::Eof => return Err(self.eof()),
                _ => {}
            }
        }
    }

    /// The rest of a property that has child elements; `first` is the first child.
    fn complex(&mut self, nil: bool, text: Cow<'i, str>, first: &Start<'i>, empty: bool) -> Result<Value, ParseError> {
        let mut el = Element {
            text: text.into_owned(),
            ..Element::default()
        };
        el.children.push(self.subtree(first, empty)?);
        self.fill(&mut el)?;
        Ok(if nil { Value::Null } else { Value::from_element(&el) })
    }

    /// An element and its descendants as a tree (for EPRs and structured values).
    fn subtree(&mut self, e: &Start<'i>, empty: bool) -> Result<Element, ParseError> {
        let mut el = Element {
            ns: self.ns_of(e),
            name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
            ..Element::default()
        };
        for a in e.attributes() {
            let a = a.map_err(|err| self.syntax(&err))?;
            let key = a.key;
            if key.as_ref() == b"xmlns" || key.as_ref().starts_with(b"xmlns:") {
                continue;
            }
            let (res, local) = self.r.resolve_attribute(key);
            let ans = match (key.prefix(), res) {
                (Some(_), ResolveResult::Bound(n)) => Some(match ns::intern(n.as_ref()) {
                    Some(s) => Cow::Borrowed(s),
                    None => Cow::Owned(String::from_utf8_lossy(n.as_ref()).into_owned()),
                }),
                _ => None,
            };
            let name = String::from_utf8_lossy(local.as_ref()).into_owned();
            let value = a.unescape_value().map_err(|err| self.syntax(&err))?.into_owned();
            el.attrs.push(Attr { ns: ans, name, value });
        }
        if !empty {
            self.fill(&mut el)?;
        }
        Ok(el)
    }

    /// Reads text and children into `el` up to its end tag.
    fn fill(&mut self, el: &mut Element) -> Result<(), ParseError> {
        loop {
            match self.next()? {
                Event::Text(t) => el.text.push_str(&t.decode().map_err(|err| self.syntax(&err))?),
                Event::CData(t) => el.text.push_str(&t.decode().map_err(|err| self.syntax(&err))?),
                Event::GeneralRef(r) => self.push_ref(&mut el.text, &r)?,
                Event::Start(c) => {
                    let child = self.subtree(&c, false)?;
                    el.children.push(child);
                }
                Event::Empty(c) => {
                    let child = self.subtree(&c, true)?;
                    el.children.push(child);
                }
                Event::End(_) => return Ok(()),
                Event::Eof => return Err(self.eof()),
                _ => {}
            }
        }
    }
}

fn append<'i>(text: &mut Cow<'i, str>, more: Cow<'i, str>) {
    if text.is_empty() {
        *text = more;
    } else {
        text.to_mut().push_str(&more);
    }
}

#[cfg(test)]
#[path = "page_tests.rs"]
mod tests;
