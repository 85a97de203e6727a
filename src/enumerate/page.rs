//! Reads an EnumerateResponse or PullResponse in one streaming pass over quick-xml
//! events ([MS-WSMV] §3.1.4.8-9, DESIGN §3): `EnumerationContext` (possibly empty),
//! `Items` and `EndOfSequence` in the wsen or the wsman namespace, items as typed
//! elements (`p:Win32_Service`), `w:XmlFragment`, bare `a:EndpointReference`s or
//! `w:Item` wrappers holding both. A fault is left to the tree-based fault reader.
//! The events come from [`Cursor`] (`cursor.rs`). What becomes of each item is up to a [`Sink`]: an [`EnumItem`], or (in `typed`) the
//! caller's serde type read straight from the borrowed text.

use std::borrow::Cow;

use quick_xml::events::{BytesRef, Event};

use super::EnumItem;
pub(crate) use super::cursor::{Child, Cursor, Start};
use crate::error::{Error, Result};
use crate::soap::cim::{EndpointReference, Instance, Value};
use crate::soap::fault::Fault;
use crate::soap::ns;
use crate::soap::xml::{self, Attr, Element, MAX_DEPTH, MAX_NAMESPACES_IN_SCOPE, ParseError};

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
        let batch = read(bytes, &mut Items)?;
        Ok(Page {
            items: batch.items,
            context: batch.context,
            end_of_sequence: batch.end_of_sequence,
        })
    }
}

/// A parsed batch, whatever its items became.
pub(crate) struct Batch<I> {
    pub items: Vec<I>,
    pub context: Option<String>,
    pub end_of_sequence: bool,
}

/// Reads a response; a fault is read by the tree-based fault reader.
pub(crate) fn read<S: Sink>(bytes: &[u8], sink: &mut S) -> Result<Batch<S::Item>> {
    match scan(bytes, sink)? {
        Some(batch) => Ok(batch),
        None => {
            let root = xml::parse(bytes)?;
            match Fault::from_envelope(&root) {
                Some(f) => Err(Error::from(f)),
                None => Err(ParseError::Missing("s:Fault").into()),
            }
        }
    }
}

/// What becomes of each item of a response.
pub(crate) trait Sink {
    /// One item.
    type Item;
    /// An object (instance) item; `e` was just read.
    fn object<'i>(
        &mut self,
        c: &mut Cursor<'i>,
        e: &Start<'i>,
        empty: bool,
    ) -> Result<Self::Item, ParseError>;
    /// A reference, or a `w:Item` wrapper, already read.
    fn other(&mut self, item: EnumItem) -> Self::Item;
}

/// Items as [`EnumItem`]s.
pub(crate) struct Items;

impl Sink for Items {
    type Item = EnumItem;
    fn object<'i>(
        &mut self,
        c: &mut Cursor<'i>,
        e: &Start<'i>,
        empty: bool,
    ) -> Result<EnumItem, ParseError> {
        Ok(EnumItem::Object(c.instance(e, empty)?))
    }
    fn other(&mut self, item: EnumItem) -> EnumItem {
        item
    }
}

/// Scans a response envelope: `None` when its body is a fault.
pub(crate) fn scan<S: Sink>(
    input: &[u8],
    sink: &mut S,
) -> Result<Option<Batch<S::Item>>, ParseError> {
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
    let mut batch = None;
    if !empty {
        while let Some((e, empty)) = c.next_child()? {
            if !c.is(&e, ns::SOAP, "Body") || empty {
                c.skip(&e, empty)?;
                continue;
            }
            while let Some((b, empty)) = c.next_child()? {
                if c.is(&b, ns::SOAP, "Fault") {
                    return Ok(None);
                }
                if c.is(&b, ns::ENUMERATION, "EnumerateResponse")
                    || c.is(&b, ns::ENUMERATION, "PullResponse")
                {
                    batch = Some(c.response(empty, sink)?);
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
    batch
        .map(Some)
        .ok_or(ParseError::Missing("n:EnumerateResponse or n:PullResponse"))
}

impl<'i> Cursor<'i> {
    /// The content of a `wsen:EnumerateResponse` / `wsen:PullResponse`.
    fn response<S: Sink>(
        &mut self,
        empty: bool,
        sink: &mut S,
    ) -> Result<Batch<S::Item>, ParseError> {
        let mut batch = Batch {
            items: Vec::new(),
            context: None,
            end_of_sequence: false,
        };
        if empty {
            return Ok(batch);
        }
        while let Some((e, empty)) = self.next_child()? {
            let either =
                |c: &Self, name| c.is(&e, ns::ENUMERATION, name) || c.is(&e, ns::WSMAN, name);
            if self.is(&e, ns::ENUMERATION, "EnumerationContext") {
                let t = self.text_content(empty)?;
                let t = t.trim();
                batch.context = (!t.is_empty()).then(|| t.to_string());
            } else if either(self, "Items") {
                if !empty {
                    self.items(&mut batch.items, sink)?;
                }
            } else if either(self, "EndOfSequence") {
                batch.end_of_sequence = true;
                self.skip(&e, empty)?;
            } else {
                self.skip(&e, empty)?;
            }
        }
        Ok(batch)
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

    /// The children of `Items`.
    fn items<S: Sink>(&mut self, out: &mut Vec<S::Item>, sink: &mut S) -> Result<(), ParseError> {
        let mut memo = Memo::default();
        let start = self.r.buffer_position();
        while let Some((e, empty)) = self.next_item(&mut memo)? {
            let item = if self.is(&e, ns::WSMAN, "Item") {
                sink.other(self.item_wrapper(empty)?)
            } else if self.is(&e, ns::ADDRESSING, "EndpointReference") {
                sink.other(EnumItem::Reference(self.epr(&e, empty)?))
            } else {
                sink.object(self, &e, empty)?
            };
            out.push(item);
            if out.len() == 1 {
                // Items of a page are alike: room for as many as the first one's size
                // suggests the rest of the response holds (bounded).
                let first = (self.r.buffer_position() - start).max(1);
                let left = self.r.get_ref().len() as u64;
                out.reserve((left / first).min(MAX_RESERVED) as usize);
            }
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
        EndpointReference::from_element(&el)
            .ok_or_else(|| ParseError::invalid("endpoint reference of an item", &el.describe()))
    }

    /// The next child of `Items`, as [`Cursor::next_child`] reads it, except that an
    /// item whose attributes are byte for byte those of the previous item reuses the
    /// namespace declarations read from them (items of one class repeat theirs).
    fn next_item(&mut self, memo: &mut Memo<'i>) -> Result<Child<'i>, ParseError> {
        self.settle();
        loop {
            let (e, empty) = match self.r.read_event() {
                Err(err) => return Err(self.syntax(&err)),
                Ok(Event::Start(e)) => (e, false),
                Ok(Event::Empty(e)) => (e, true),
                Ok(Event::End(_)) => {
                    self.end();
                    return Ok(None);
                }
                Ok(Event::Eof) if self.depth == 0 => return Ok(None),
                Ok(Event::Eof) => return Err(self.eof()),
                Ok(Event::DocType(_)) => return Err(self.doctype()),
                Ok(_) => continue,
            };
            if self.depth >= MAX_DEPTH {
                return Err(ParseError::TooDeep);
            }
            let raw = e.attributes_raw();
            let n = if raw.iter().all(u8::is_ascii_whitespace) {
                0
            } else if *raw == *memo.attrs
                && self.bindings.len() + memo.bindings.len() <= MAX_NAMESPACES_IN_SCOPE
            {
                self.bindings.extend(memo.bindings.iter().cloned());
                memo.bindings.len()
            } else {
                let n = self.declare(&e)?;
                memo.attrs.clear();
                memo.attrs.extend_from_slice(raw);
                memo.bindings.clear();
                memo.bindings
                    .extend_from_slice(&self.bindings[self.bindings.len() - n..]);
                n
            };
            self.open(n, empty);
            return Ok(Some((e, empty)));
        }
    }

    /// Undoes the declarations of the empty element read last.
    #[inline]
    fn settle(&mut self) {
        if self.pending > 0 {
            let keep = self.bindings.len() - self.pending;
            self.bindings.truncate(keep);
            self.pending = 0;
        }
    }

    /// Bookkeeping for a start tag (or an empty element) that made `n` declarations.
    #[inline]
    fn open(&mut self, n: usize, empty: bool) {
        if empty {
            self.pending = n;
        } else {
            self.depth += 1;
            self.declared.push(n);
        }
    }

    /// Depth check and declarations of an element inside a property.
    fn enter(&mut self, e: &Start<'i>, empty: bool) -> Result<(), ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(ParseError::TooDeep);
        }
        let n = self.declare(e)?;
        self.open(n, empty);
        Ok(())
    }

    fn doctype(&self) -> ParseError {
        self.syntax(&"DOCTYPE is not allowed in SOAP messages")
    }

    /// An instance element: each child is a property; repeated ones fold into arrays.
    pub(crate) fn instance(&mut self, e: &Start<'i>, empty: bool) -> Result<Instance, ParseError> {
        let local = self.local_name(e)?;
        let class_name = local.strip_suffix("_Type").unwrap_or(local).to_string();
        let namespace = self.element_ns(e).map(str::to_string);
        let mut properties: Vec<(String, Value)> = Vec::with_capacity(self.hint);
        if !empty {
            let name = e.name();
            let prefix = name.prefix().map_or(&b""[..], |p| p.into_inner());
            while let Some(p) = self.next_property(prefix)? {
                let v = match p.value {
                    PropValue::Text(t) => Value::String(t.into_owned()),
                    PropValue::Null => Value::Null,
                    PropValue::Structured(v) => *v,
                };
                match properties.last_mut() {
                    Some((prev_name, prev)) if prev_name == p.name => fold(prev, v),
                    _ => properties.push((p.name.to_string(), v)),
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

    /// The next property of the instance being read, or `None` at the instance's end
    /// tag. A property is read whole: in the common case (start tag, text, end tag)
    /// straight off the reader, with the bookkeeping of [`Cursor::next`]; text is
    /// borrowed when it is one unescaped piece. `prefix` is the prefix properties are
    /// expected to carry (the instance's); any other is handled too.
    pub(crate) fn next_property(&mut self, prefix: &[u8]) -> Result<Option<Prop<'i>>, ParseError> {
        self.settle();
        let (e, empty) = loop {
            match self.r.read_event() {
                Err(err) => return Err(self.syntax(&err)),
                Ok(Event::Start(e)) => break (e, false),
                Ok(Event::Empty(e)) => break (e, true),
                Ok(Event::End(_)) => {
                    self.end();
                    return Ok(None);
                }
                Ok(Event::Eof) if self.depth == 0 => return Ok(None),
                Ok(Event::Eof) => return Err(self.eof()),
                Ok(Event::DocType(_)) => return Err(self.doctype()),
                _ => {}
            }
        };
        if self.depth >= MAX_DEPTH {
            return Err(ParseError::TooDeep);
        }
        let n = self.declare(&e)?;
        if empty {
            self.pending = n;
        }
        let qname = e.name();
        let raw = qname.as_ref();
        let at = prefix.len();
        // Byte by byte: prefixes are a letter or two, shorter than a call to memcmp.
        let same_prefix = raw.iter().zip(prefix).all(|(a, b)| a == b);
        let local = if raw.len() > at && raw[at] == b':' && same_prefix {
            &raw[at + 1..]
        } else {
            match raw.iter().position(|&b| b == b':') {
                Some(i) => &raw[i + 1..],
                None => raw,
            }
        };
        let name = self
            .pin_str(local)
            .ok_or_else(|| self.syntax(&"element name outside the input"))?;
        let nil = self.is_nil(&e)?;
        if empty {
            let value = if nil {
                PropValue::Null
            } else {
                PropValue::Text(Cow::Borrowed(""))
            };
            return Ok(Some(Prop { name, value }));
        }
        // The property is entered (depth, declarations) only if it has child elements;
        // otherwise its end tag just undoes its declarations.
        let mut text: Cow<'i, str> = Cow::Borrowed("");
        loop {
            match self.r.read_event() {
                Err(err) => return Err(self.syntax(&err)),
                Ok(Event::Text(t)) if text.is_empty() => text = self.text_of(&t)?,
                Ok(Event::Text(t)) => append(&mut text, self.text_of(&t)?),
                Ok(Event::CData(t)) => {
                    append(&mut text, t.decode().map_err(|err| self.syntax(&err))?)
                }
                Ok(Event::GeneralRef(r)) => match predefined(&r) {
                    Some(s) => text.to_mut().push_str(s),
                    None => self.push_ref(text.to_mut(), &r)?,
                },
                Ok(Event::End(_)) => {
                    if n > 0 {
                        self.bindings.truncate(self.bindings.len() - n);
                    }
                    let value = if nil {
                        PropValue::Null
                    } else {
                        PropValue::Text(text)
                    };
                    return Ok(Some(Prop { name, value }));
                }
                Ok(Event::Start(c)) => {
                    self.open(n, false);
                    self.enter(&c, false)?;
                    let v = self.structured(nil, text, &c, false)?;
                    return Ok(Some(Prop {
                        name,
                        value: PropValue::Structured(Box::new(v)),
                    }));
                }
                Ok(Event::Empty(c)) => {
                    self.open(n, false);
                    self.enter(&c, true)?;
                    let v = self.structured(nil, text, &c, true)?;
                    return Ok(Some(Prop {
                        name,
                        value: PropValue::Structured(Box::new(v)),
                    }));
                }
                Ok(Event::Eof) => return Err(self.eof()),
                Ok(Event::DocType(_)) => return Err(self.doctype()),
                Ok(Event::Comment(_) | Event::PI(_) | Event::Decl(_)) => {}
            }
        }
    }

    /// The rest of a property that has child elements; `first` is the first child.
    pub(crate) fn structured(
        &mut self,
        nil: bool,
        text: Cow<'i, str>,
        first: &Start<'i>,
        empty: bool,
    ) -> Result<Value, ParseError> {
        let mut el = Element {
            text: text.into_owned(),
            ..Element::default()
        };
        el.children.push(self.subtree(first, empty)?);
        self.fill(&mut el)?;
        Ok(if nil {
            Value::Null
        } else {
            Value::from_element(&el)
        })
    }

    /// An element and its descendants as a tree (for EPRs and structured values).
    fn subtree(&mut self, e: &Start<'i>, empty: bool) -> Result<Element, ParseError> {
        let mut el = Element {
            ns: self.ns_of(e),
            name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
            ..Element::default()
        };
        for a in e.attributes().with_checks(false) {
            let a = a.map_err(|err| self.syntax(&err))?;
            let key = a.key;
            if key.as_ref() == b"xmlns" || key.as_ref().starts_with(b"xmlns:") {
                continue;
            }
            let ans = key
                .prefix()
                .and_then(|p| self.lookup(p.as_ref()))
                .map(|n| match ns::intern(n.as_bytes()) {
                    Some(s) => Cow::Borrowed(s),
                    None => Cow::Owned(n.to_string()),
                });
            let name = String::from_utf8_lossy(key.local_name().as_ref()).into_owned();
            let value = a
                .unescape_value()
                .map_err(|err| self.syntax(&err))?
                .into_owned();
            el.attrs.push(Attr {
                ns: ans,
                name,
                value,
            });
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
                Event::Text(t) => el
                    .text
                    .push_str(&t.decode().map_err(|err| self.syntax(&err))?),
                Event::CData(t) => el
                    .text
                    .push_str(&t.decode().map_err(|err| self.syntax(&err))?),
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

/// The most items room is made for ahead of reading them.
const MAX_RESERVED: u64 = 1024;

/// A property element read whole: its local name and value.
pub(crate) struct Prop<'i> {
    pub(crate) name: &'i str,
    pub(crate) value: PropValue<'i>,
}

/// The value of a property element.
pub(crate) enum PropValue<'i> {
    /// Text (empty for `<p:X/>`), borrowed when it is one unescaped piece.
    Text(Cow<'i, str>),
    /// `xsi:nil="true"`.
    Null,
    /// A property with child elements: datetime, interval, reference, embedded instance.
    Structured(Box<Value>),
}

/// The namespace declarations made by the attributes of the previous item.
#[derive(Default)]
struct Memo<'i> {
    attrs: Vec<u8>,
    bindings: Vec<(&'i [u8], Cow<'i, str>)>,
}

/// Adds `v` to a repeated property: the value becomes (or grows) an array.
pub(crate) fn fold(prev: &mut Value, v: Value) {
    match prev {
        Value::Array(items) => items.push(v),
        _ => {
            let first = std::mem::replace(prev, Value::Null);
            *prev = Value::Array(vec![first, v]);
        }
    }
}

/// The five predefined entities, by their raw name.
#[inline]
fn predefined(r: &BytesRef<'_>) -> Option<&'static str> {
    match r.as_ref() {
        b"amp" => Some("&"),
        b"lt" => Some("<"),
        b"gt" => Some(">"),
        b"quot" => Some("\""),
        b"apos" => Some("'"),
        _ => None,
    }
}

#[inline]
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
