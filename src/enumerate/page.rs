//! Reads an EnumerateResponse or PullResponse in one streaming pass over quick-xml
//! events ([MS-WSMV] §3.1.4.8-9, DESIGN §3): `EnumerationContext` (possibly empty),
//! `Items` and `EndOfSequence` in the wsen or the wsman namespace, items as typed
//! elements (`p:Win32_Service`), `w:XmlFragment`, bare `a:EndpointReference`s or
//! `w:Item` wrappers holding both. A fault is left to the tree-based fault reader.
//! The events come from [`Cursor`] (`cursor.rs`). What becomes of each item is up to a [`Sink`]: an [`EnumItem`], or (in `typed`) the
//! caller's serde type read straight from the borrowed text.

use std::borrow::Cow;

use quick_xml::events::Event;

use super::EnumItem;
pub(crate) use super::cursor::{Child, Cursor, Start};
use crate::error::{Error, Result};
use crate::soap::cim::{EndpointReference, Instance, Value};
use crate::soap::fault::Fault;
use crate::soap::ns;
use crate::soap::xml::{self, Attr, Element, ParseError};

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
        while let Some((e, empty)) = self.next_child()? {
            let item = if self.is(&e, ns::WSMAN, "Item") {
                sink.other(self.item_wrapper(empty)?)
            } else if self.is(&e, ns::ADDRESSING, "EndpointReference") {
                sink.other(EnumItem::Reference(self.epr(&e, empty)?))
            } else {
                sink.object(self, &e, empty)?
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
        EndpointReference::from_element(&el)
            .ok_or_else(|| ParseError::invalid("endpoint reference of an item", &el.describe()))
    }

    /// An instance element: each child is a property; repeated ones fold into arrays.
    pub(crate) fn instance(&mut self, e: &Start<'i>, empty: bool) -> Result<Instance, ParseError> {
        let local = self.local_name(e)?;
        let class_name = local.strip_suffix("_Type").unwrap_or(local).to_string();
        let namespace = self.element_ns(e).map(str::to_string);
        let mut properties: Vec<(String, Value)> = Vec::with_capacity(self.hint);
        if !empty {
            while let Some((p, empty)) = self.next_child()? {
                let name = self.local_name(&p)?;
                let v = self.property(&p, empty)?;
                match properties.last_mut() {
                    Some((prev_name, prev)) if prev_name == name => fold(prev, v),
                    _ => properties.push((name.to_string(), v)),
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

    /// The text of a property up to its end tag, borrowed when it is one piece; or, when
    /// a child element comes first, that child (the property is structured).
    pub(crate) fn property_text(&mut self) -> Result<(Cow<'i, str>, Child<'i>), ParseError> {
        let mut text: Cow<'i, str> = Cow::Borrowed("");
        loop {
            match self.next()? {
                Event::Text(t) => append(&mut text, self.text_of(&t)?),
                Event::CData(t) => append(&mut text, t.decode().map_err(|err| self.syntax(&err))?),
                Event::GeneralRef(r) => {
                    let mut s = String::new();
                    self.push_ref(&mut s, &r)?;
                    append(&mut text, Cow::Owned(s));
                }
                Event::End(_) => return Ok((text, None)),
                Event::Start(c) => return Ok((text, Some((c, false)))),
                Event::Empty(c) => return Ok((text, Some((c, true)))),
                Event::Eof => return Err(self.eof()),
                _ => {}
            }
        }
    }

    /// A property value: text in the common case; a property with child elements
    /// (datetime, interval, reference, embedded instance) is read as a small tree and
    /// interpreted by [`Value::from_element`].
    pub(crate) fn property(&mut self, e: &Start<'i>, empty: bool) -> Result<Value, ParseError> {
        let nil = self.is_nil(e)?;
        if empty {
            return Ok(if nil {
                Value::Null
            } else {
                Value::String(String::new())
            });
        }
        match self.property_text()? {
            (_, None) if nil => Ok(Value::Null),
            (text, None) => Ok(Value::String(text.into_owned())),
            (text, Some((c, empty))) => self.structured(nil, text, &c, empty),
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
