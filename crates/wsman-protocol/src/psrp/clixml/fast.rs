//! CLIXML text straight into the caller's type: [`from_str_as`], the same result as
//! [`from_value`](super::from_value) over [`from_str`](super::from_str), without the
//! owned [`PsValue`] tree. The value is read into a tree that borrows its texts from the
//! document (no allocation for a text without entity references or `_xHHHH_` escapes,
//! no `Arc` per object, no map of reference ids), which serde then reads.
//!
//! Anything this reader does not take (a `Ref` to an earlier object, a progress record,
//! an error of any kind, a serde mismatch) sends the document through the owned path,
//! which gives the answer (its value, or its typed error): so this path only ever
//! changes how fast a value is read, never what it reads as.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

use super::de::{float, integer};
use super::de_common::common_deserialize_methods;
use super::reader::{ReadLimits, base64};
use super::value::{EncryptedString, PsValue};
use super::{escape, from_str, from_value};
use crate::psrp::error::{Error, Result};

/// Reads one CLIXML value (a PSRP message's data) into a `T`, with the default reader
/// limits: the same `T`, or the same error, as
/// `from_value::<T>(&from_str(text)?)`, with fewer allocations.
///
/// # Errors
///
/// As [`from_str`](super::from_str) and [`from_value`](super::from_value).
pub fn from_str_as<T: DeserializeOwned>(text: &str) -> Result<T> {
    // The pull reader first: if it takes the document, serde's answer over its tree is
    // the borrowing reader's (the same tree); a misfit is then told by the owned path.
    match super::pull::read::<T>(text) {
        Ok(Ok(v)) => return Ok(v),
        Ok(Err(_)) => return from_value(&from_str(text)?),
        Err(super::pull::GiveUp) => {}
    }
    match fast::<T>(text) {
        Ok(v) => Ok(v),
        Err(_) => from_value(&from_str(text)?),
    }
}

pub(super) fn fast<T: DeserializeOwned>(text: &str) -> Result<T> {
    let limits = ReadLimits::default();
    if text.len() > limits.max_len {
        return Err(Error::TooLong(limits.max_len));
    }
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    let cfg = reader.config_mut();
    cfg.check_end_names = true;
    cfg.expand_empty_elements = false;
    cfg.trim_text(false);
    let mut p = Lite {
        doc: text,
        reader,
        limits,
        depth: 0,
        values: 0,
        type_ids: Vec::new(),
    };
    let mut out = None;
    loop {
        match p.next()? {
            Event::Start(e) if out.is_none() => out = Some(p.value(&e, false)?.1),
            Event::Empty(e) if out.is_none() => out = Some(p.value(&e, true)?.1),
            Event::Text(t) if is_blank(&t) => {}
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            _ => return Err(bail()),
        }
    }
    let v = out.ok_or(Error::Empty)?;
    T::deserialize(&v)
}

/// Any reason to leave this path (the owned path then gives the real answer).
fn bail() -> Error {
    Error::Serde("not read by the borrowing reader".into())
}

fn is_blank(t: &[u8]) -> bool {
    t.iter().all(u8::is_ascii_whitespace)
}

/// A value whose texts borrow from the document.
pub(super) enum Val<'t> {
    /// A primitive other than a text (numbers, bools, `Nil`, GUIDs, bytes, `D`).
    Prim(PsValue),
    /// `S`, `DT`, `TS`, `Version`, `URI`, `XD`, `SBK`: text, escapes resolved.
    Str(Cow<'t, str>),
    Obj(Box<Obj<'t>>),
}

#[derive(Default)]
pub(super) struct Obj<'t> {
    pub(super) to_string: Option<Cow<'t, str>>,
    pub(super) value: Option<Val<'t>>,
    pub(super) items: Option<Vec<Val<'t>>>,
    pub(super) entries: Option<Vec<(Val<'t>, Val<'t>)>>,
    pub(super) adapted: Vec<(Cow<'t, str>, Val<'t>)>,
    pub(super) extended: Vec<(Cow<'t, str>, Val<'t>)>,
}

impl<'t> Obj<'t> {
    /// As [`PsObject::properties`](super::PsObject::properties): extended, then the
    /// adapted ones no extended property hides.
    fn properties(&self) -> impl Iterator<Item = (&str, &Val<'t>)> {
        let extended = &self.extended;
        extended
            .iter()
            .chain(
                self.adapted
                    .iter()
                    .filter(move |(n, _)| !extended.iter().any(|(e, _)| e.eq_ignore_ascii_case(n))),
            )
            .map(|(n, v)| (n.as_ref(), v))
    }
}

/// An element's `N` and `RefId` attributes.
type NameAndRefId<'t> = (Option<Cow<'t, str>>, Option<Cow<'t, str>>);

struct Lite<'t> {
    doc: &'t str,
    reader: Reader<&'t [u8]>,
    limits: ReadLimits,
    depth: usize,
    values: usize,
    /// The `RefId`s of the `TN`s read so far (a `TNRef` must name one).
    type_ids: Vec<Cow<'t, str>>,
}

/// `b` as the part of `doc` it is, if it is one (an attribute value quick-xml read in
/// place), so that it can be borrowed for as long as the document.
fn within<'t>(doc: &'t str, b: &[u8]) -> Option<&'t str> {
    let start = (b.as_ptr() as usize).checked_sub(doc.as_ptr() as usize)?;
    let s = doc.get(start..start.checked_add(b.len())?)?;
    (s.as_ptr() == b.as_ptr()).then_some(s)
}

/// How many `TN` reference ids this reader keeps (more: the owned path, with its map).
pub(super) const MAX_TYPE_IDS: usize = 64;

/// Text with `_xHHHH_` escapes resolved, still borrowed when it has none.
pub(super) fn decoded(c: Cow<'_, str>) -> Cow<'_, str> {
    match c {
        Cow::Borrowed(b) => escape::decode(b),
        Cow::Owned(o) => match escape::decode(&o) {
            Cow::Borrowed(_) => Cow::Owned(o),
            Cow::Owned(d) => Cow::Owned(d),
        },
    }
}

impl<'t> Lite<'t> {
    fn next(&mut self) -> Result<Event<'t>> {
        self.reader.read_event().map_err(|_| bail())
    }

    /// The `N` and `RefId` attributes.
    fn attrs(&self, e: &BytesStart<'t>) -> Result<NameAndRefId<'t>> {
        // The usual shape, ` N="Name"` alone with nothing to unescape, read without the
        // attribute iterator (a seventh of the reading of a `Get-Process` object).
        if let Some(v) = e
            .attributes_raw()
            .strip_prefix(b" N=\"")
            .and_then(|r| r.strip_suffix(b"\""))
            && !v.iter().any(|&b| matches!(b, b'"' | b'&' | b'<'))
            && let Some(s) = within(self.doc, v)
        {
            return Ok((Some(Cow::Borrowed(s)), None));
        }
        let (mut name, mut ref_id) = (None, None);
        for (count, a) in e.attributes().with_checks(false).enumerate() {
            if count >= 16 {
                return Err(bail());
            }
            let a = a.map_err(|_| bail())?;
            let which = match a.key.local_name().as_ref() {
                b"N" => &mut name,
                b"RefId" => &mut ref_id,
                b"S" => {
                    a.unescape_value().map_err(|_| bail())?;
                    continue;
                }
                _ => continue,
            };
            let v: Cow<'t, str> = match within(self.doc, &a.value) {
                Some(s) if !s.contains('&') => Cow::Borrowed(s),
                _ => Cow::Owned(a.unescape_value().map_err(|_| bail())?.into_owned()),
            };
            *which = Some(v);
        }
        Ok((name, ref_id))
    }

    fn text(&mut self, empty: bool) -> Result<Cow<'t, str>> {
        let mut out: Cow<'t, str> = Cow::Borrowed("");
        if empty {
            return Ok(out);
        }
        loop {
            match self.next()? {
                Event::Text(t) => {
                    let piece = match t.into_inner() {
                        // Text quick-xml read in place is part of the document,
                        // already UTF-8.
                        Cow::Borrowed(b) => Cow::Borrowed(match within(self.doc, b) {
                            Some(s) => s,
                            None => crate::xml::utf8(b).map_err(|_| bail())?,
                        }),
                        Cow::Owned(v) => Cow::Owned(String::from_utf8(v).map_err(|_| bail())?),
                    };
                    if out.is_empty() {
                        out = piece;
                    } else {
                        out.to_mut().push_str(&piece);
                    }
                }
                Event::CData(c) => {
                    let s = c.decode().map_err(|_| bail())?;
                    out.to_mut().push_str(&s);
                }
                Event::GeneralRef(r) => match r.resolve_char_ref() {
                    Ok(Some(ch)) => out.to_mut().push(ch),
                    Ok(None) => {
                        let name = r.decode().map_err(|_| bail())?;
                        match quick_xml::escape::resolve_predefined_entity(&name) {
                            Some(s) => out.to_mut().push_str(s),
                            None => return Err(bail()),
                        }
                    }
                    Err(_) => return Err(bail()),
                },
                Event::End(_) => return Ok(out),
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) | Event::DocType(_) => {}
                _ => return Err(bail()),
            }
        }
    }

    fn count(&mut self) -> Result<()> {
        self.values += 1;
        if self.values > self.limits.max_values {
            return Err(bail());
        }
        Ok(())
    }

    fn value(
        &mut self,
        e: &BytesStart<'t>,
        empty: bool,
    ) -> Result<(Option<Cow<'t, str>>, Val<'t>)> {
        self.count()?;
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(bail());
        }
        let (name, _ref_id) = self.attrs(e)?;
        let v = self.body(e, empty)?;
        self.depth -= 1;
        Ok((name.map(decoded), v))
    }

    fn body(&mut self, e: &BytesStart<'t>, empty: bool) -> Result<Val<'t>> {
        macro_rules! parse {
            ($variant:ident) => {{
                let text = self.text(empty)?;
                Val::Prim(PsValue::$variant(text.trim().parse().map_err(|_| bail())?))
            }};
        }
        Ok(match e.local_name().as_ref() {
            b"Nil" => {
                self.text(empty)?;
                Val::Prim(PsValue::Null)
            }
            b"S" | b"URI" | b"XD" | b"SBK" => Val::Str(decoded(self.text(empty)?)),
            b"DT" | b"TS" | b"Version" => Val::Str(match self.text(empty)? {
                Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
                Cow::Owned(o) => Cow::Owned(o.trim().to_string()),
            }),
            b"B" => match self.text(empty)?.trim() {
                "true" | "1" => Val::Prim(PsValue::Bool(true)),
                "false" | "0" => Val::Prim(PsValue::Bool(false)),
                _ => return Err(bail()),
            },
            b"C" => parse!(Char),
            b"SB" => parse!(I8),
            b"By" => parse!(U8),
            b"I16" => parse!(I16),
            b"U16" => parse!(U16),
            b"I32" => parse!(I32),
            b"U32" => parse!(U32),
            b"I64" => parse!(I64),
            b"U64" => parse!(U64),
            b"Sg" => parse!(F32),
            b"Db" => parse!(F64),
            b"G" => parse!(Guid),
            b"D" => Val::Prim(PsValue::Decimal(self.text(empty)?.trim().to_string())),
            b"BA" => Val::Prim(PsValue::Bytes(base64(&self.text(empty)?, "BA")?)),
            b"SS" => Val::Prim(PsValue::SecureString(EncryptedString(base64(
                &self.text(empty)?,
                "SS",
            )?))),
            b"Obj" => Val::Obj(Box::new(self.object(empty)?)),
            // `Ref` (an earlier object again), `PR` and anything else: the owned path.
            _ => return Err(bail()),
        })
    }

    /// The next child element up to the end of the current one (`None` at its end).
    fn child(&mut self) -> Result<Option<(BytesStart<'t>, bool)>> {
        loop {
            return match self.next()? {
                Event::Start(e) => Ok(Some((e, false))),
                Event::Empty(e) => Ok(Some((e, true))),
                Event::End(_) => Ok(None),
                Event::Text(t) if is_blank(&t) => continue,
                Event::Comment(_) | Event::PI(_) => continue,
                _ => Err(bail()),
            };
        }
    }

    fn object(&mut self, empty: bool) -> Result<Obj<'t>> {
        let mut obj = Obj::default();
        if empty {
            return Ok(obj);
        }
        while let Some((e, child_empty)) = self.child()? {
            match e.local_name().as_ref() {
                b"TN" => {
                    let id = self.attrs(&e)?.1;
                    self.type_names(child_empty)?;
                    if let Some(id) = id {
                        if self.type_ids.len() >= MAX_TYPE_IDS {
                            return Err(bail());
                        }
                        self.type_ids.push(id);
                    }
                }
                b"TNRef" => {
                    let id = self.attrs(&e)?.1.unwrap_or_default();
                    self.text(child_empty)?;
                    if !self.type_ids.contains(&id) {
                        return Err(bail());
                    }
                }
                b"ToString" => obj.to_string = Some(decoded(self.text(child_empty)?)),
                b"LST" | b"IE" | b"QUE" | b"STK" => {
                    obj.entries = None;
                    obj.items = Some(self.items(child_empty)?);
                }
                b"DCT" => {
                    obj.items = None;
                    obj.entries = Some(self.dictionary(child_empty)?);
                }
                b"Props" => self.properties(child_empty, &mut obj.adapted)?,
                b"MS" => self.properties(child_empty, &mut obj.extended)?,
                _ => obj.value = Some(self.value(&e, child_empty)?.1),
            }
        }
        Ok(obj)
    }

    fn type_names(&mut self, empty: bool) -> Result<()> {
        if empty {
            return Ok(());
        }
        while let Some((e, child_empty)) = self.child()? {
            if e.local_name().as_ref() != b"T" {
                return Err(bail());
            }
            self.count()?;
            self.text(child_empty)?;
        }
        Ok(())
    }

    fn items(&mut self, empty: bool) -> Result<Vec<Val<'t>>> {
        let mut items = Vec::new();
        if empty {
            return Ok(items);
        }
        while let Some((e, child_empty)) = self.child()? {
            items.push(self.value(&e, child_empty)?.1);
        }
        Ok(items)
    }

    fn properties(&mut self, empty: bool, out: &mut Vec<(Cow<'t, str>, Val<'t>)>) -> Result<()> {
        if empty {
            return Ok(());
        }
        while let Some((e, child_empty)) = self.child()? {
            let (n, v) = self.value(&e, child_empty)?;
            out.push((n.unwrap_or_default(), v));
        }
        Ok(())
    }

    fn dictionary(&mut self, empty: bool) -> Result<Vec<(Val<'t>, Val<'t>)>> {
        let mut entries = Vec::new();
        if empty {
            return Ok(entries);
        }
        while let Some((e, child_empty)) = self.child()? {
            if e.local_name().as_ref() != b"En" || child_empty {
                return Err(bail());
            }
            let (mut key, mut value) = (None, None);
            while let Some((e, child_empty)) = self.child()? {
                let (n, v) = self.value(&e, child_empty)?;
                match n.as_deref() {
                    Some("Key") => key = Some(v),
                    _ => value = Some(v),
                }
            }
            entries.push((
                key.ok_or_else(bail)?,
                value.unwrap_or(Val::Prim(PsValue::Null)),
            ));
        }
        Ok(entries)
    }
}

// ---- serde over the borrowed tree, as `de.rs` over `PsValue` --------------------------

fn int_of(v: &Val<'_>) -> Option<i128> {
    match v {
        Val::Prim(p) => integer(p),
        Val::Str(_) => None,
        Val::Obj(o) => int_of(o.value.as_ref()?),
    }
}

fn float_of(v: &Val<'_>) -> Option<f64> {
    match v {
        Val::Prim(p) => float(p),
        Val::Str(_) => None,
        Val::Obj(o) => float_of(o.value.as_ref()?),
    }
}

struct Seq<'de, 't> {
    items: std::slice::Iter<'de, Val<'t>>,
}

impl<'de> de::SeqAccess<'de> for Seq<'de, 'de> {
    type Error = Error;
    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>> {
        self.items.next().map(|v| seed.deserialize(v)).transpose()
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

static NULL: Val<'static> = Val::Prim(PsValue::Null);

struct Props<'de, I> {
    items: I,
    /// The current property: its name (for errors) and value.
    value: Option<(&'de str, &'de Val<'de>)>,
}

impl<'de, I: Iterator<Item = (&'de str, &'de Val<'de>)>> de::MapAccess<'de> for Props<'de, I> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match self.items.next() {
            Some((k, v)) => {
                self.value = Some((k, v));
                seed.deserialize(de::value::BorrowedStrDeserializer::new(k))
                    .map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        match self.value.take() {
            // The property's name leads the error (nested objects add theirs in front).
            Some((name, v)) => seed.deserialize(v).map_err(|e| match e {
                Error::Serde(m) => Error::Serde(format!("property {name}: {m}")),
                other => other,
            }),
            None => seed.deserialize(&NULL),
        }
    }
}

struct Entries<'de> {
    items: std::slice::Iter<'de, (Val<'de>, Val<'de>)>,
    value: Option<&'de Val<'de>>,
}

impl<'de> de::MapAccess<'de> for Entries<'de> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match self.items.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(k).map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(self.value.take().unwrap_or(&NULL))
    }
}

fn visit_object<'de, V: Visitor<'de>>(o: &'de Obj<'de>, visitor: V) -> Result<V::Value> {
    if let Some(entries) = &o.entries {
        return visitor.visit_map(Entries {
            items: entries.iter(),
            value: None,
        });
    }
    if let Some(items) = &o.items {
        return visitor.visit_seq(Seq {
            items: items.iter(),
        });
    }
    if !o.extended.is_empty() || !o.adapted.is_empty() {
        return visit_props(o, visitor);
    }
    match (&o.value, &o.to_string) {
        (Some(v), _) => de::Deserializer::deserialize_any(v, visitor),
        (None, Some(s)) => visitor.visit_borrowed_str(s),
        (None, None) => visit_props(o, visitor),
    }
}

fn visit_props<'de, V: Visitor<'de>>(o: &'de Obj<'de>, visitor: V) -> Result<V::Value> {
    visitor.visit_map(Props {
        items: o.properties(),
        value: None,
    })
}

impl<'de> de::Deserializer<'de> for &'de Val<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Val::Prim(p) => p.deserialize_any(visitor),
            Val::Str(s) => visitor.visit_borrowed_str(s),
            Val::Obj(o) => visit_object(o, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Val::Prim(PsValue::Null) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Val::Prim(p) => p.deserialize_str(visitor),
            Val::Str(s) => visitor.visit_borrowed_str(s),
            Val::Obj(o) => match (&o.to_string, &o.value) {
                (Some(s), _) => visitor.visit_borrowed_str(s),
                (None, Some(v)) => v.deserialize_str(visitor),
                (None, None) => self.deserialize_any(visitor),
            },
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Val::Prim(p) => p.deserialize_bool(visitor),
            Val::Obj(o) if o.value.is_some() => {
                o.value.as_ref().unwrap_or(&NULL).deserialize_bool(visitor)
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Val::Prim(PsValue::Null) => visitor.visit_seq(Seq { items: [].iter() }),
            Val::Obj(o) if o.items.is_some() => self.deserialize_any(visitor),
            _ => visitor.visit_seq(Seq {
                items: std::slice::from_ref(self).iter(),
            }),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Val::Obj(o) if o.entries.is_some() => visit_object(o, visitor),
            Val::Obj(o) => visit_props(o, visitor),
            _ => self.deserialize_any(visitor),
        }
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self {
            Val::Prim(p) => p.deserialize_enum(name, variants, visitor),
            Val::Str(s) => visitor.visit_enum(s.as_ref().into_deserializer()),
            Val::Obj(o) => match &o.to_string {
                Some(s) => visitor.visit_enum(s.as_ref().into_deserializer()),
                None => Err(bail()),
            },
        }
    }

    common_deserialize_methods!(int_of, float_of);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psrp::clixml::{PsObject, to_string};

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Svc {
        name: String,
        id: i64,
        status: String,
        tags: Vec<String>,
        #[serde(default)]
        missing: Option<u8>,
    }

    /// The `N` attribute read at once (` N="..."` alone) and through the attribute
    /// iterator (any other shape) give the same name.
    #[test]
    fn names_read_at_once_match_the_attribute_iterator() {
        for (doc, name) in [
            (r#"<MS><S N="Path">x</S></MS>"#, "Path"),
            (r#"<MS><S N="">x</S></MS>"#, ""),
            (r#"<MS><S N="a&amp;b">x</S></MS>"#, "a&b"),
            (r#"<MS><S  N="Path" >x</S></MS>"#, "Path"),
            (r#"<MS><S N='Path'>x</S></MS>"#, "Path"),
            (r#"<MS><S N="Path" RefId="3">x</S></MS>"#, "Path"),
            (r#"<MS><S RefId="3" N="Path">x</S></MS>"#, "Path"),
        ] {
            let doc = format!("<Obj>{doc}</Obj>");
            let m: std::collections::BTreeMap<String, String> = fast(&doc).unwrap();
            assert_eq!(m.keys().collect::<Vec<_>>(), [name], "{doc}");
            let owned: std::collections::BTreeMap<String, String> =
                from_value(&from_str(&doc).unwrap()).unwrap();
            assert_eq!(m, owned, "{doc}");
        }
        let empty: std::collections::BTreeMap<String, Option<String>> =
            fast(r#"<Obj><MS><Nil N="P"/><Nil N="Q" /></MS></Obj>"#).unwrap();
        assert_eq!(empty.keys().collect::<Vec<_>>(), ["P", "Q"]);
    }

    /// The borrowing reader takes ordinary objects itself (the property tests check it
    /// agrees with the owned path; this checks it is the path taken).
    #[test]
    fn ordinary_objects_take_the_borrowing_path() {
        let v: PsValue = PsObject::new()
            .with_type_names(["Svc", "System.Object"])
            .with_to_string("svc _x0041_")
            .with_property("Name", "a<b>&_x0041_")
            .with_adapted("Id", 7_i32)
            .with_adapted(
                "Status",
                PsObject::enumeration(
                    "System.ServiceProcess.ServiceControllerStatus",
                    "Running",
                    4,
                ),
            )
            .with_property(
                "Tags",
                PsObject::list(["System.Object[]"], vec!["x".into(), "y".into()]),
            )
            .into();
        let text = to_string(&v);
        let quick: Svc = fast(&text).expect("the borrowing path");
        let owned: Svc = from_value(&from_str(&text).unwrap()).unwrap();
        assert_eq!(quick, owned);
        assert_eq!(quick.name, "a<b>&_x0041_");
        assert_eq!(quick.status, "Running");
        // A `Ref` goes the owned way, with the same answer.
        let doc = r#"<Obj RefId="0"><MS><Obj N="A" RefId="1"><ToString>t</ToString></Obj><Ref N="B" RefId="1"/></MS></Obj>"#;
        assert!(fast::<std::collections::BTreeMap<String, String>>(doc).is_err());
        let m: std::collections::BTreeMap<String, String> = from_str_as(doc).unwrap();
        assert_eq!(m["B"], "t");
    }
}
