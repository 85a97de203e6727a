//! Items read straight into the caller's serde type: the properties of an item are kept
//! as text borrowed from the response and deserialized with the rules of
//! [`crate::from_instance`] (text parsed into the field's type, nil as `None`, repeated
//! elements as sequences, a scalar as a sequence of one), with no `Instance` built.
//! An item with a structured property (datetime, interval, reference, embedded
//! instance) is built as an [`Instance`] and goes through `from_instance` itself.

use std::borrow::Cow;
use std::marker::PhantomData;

use serde::de::{
    DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};

use super::EnumItem;
use super::page::{Cursor, Sink, Start, fold};
use crate::error::Result;
use crate::soap::cim::{Instance, Value};
use crate::soap::de::{DeError, from_instance};
use crate::soap::xml::ParseError;

/// One property as read: borrowed text, nil, repeated, or (structured) a full value.
#[derive(Debug)]
enum Slot<'i> {
    Text(Cow<'i, str>),
    Null,
    Many(Vec<Slot<'i>>),
    Owned(Box<Value>),
}

impl Slot<'_> {
    fn into_value(self) -> Value {
        match self {
            Slot::Text(t) => Value::String(t.into_owned()),
            Slot::Null => Value::Null,
            Slot::Many(v) => Value::Array(v.into_iter().map(Slot::into_value).collect()),
            Slot::Owned(v) => *v,
        }
    }

    fn is_owned(&self) -> bool {
        match self {
            Slot::Owned(_) => true,
            Slot::Many(v) => v.iter().any(Slot::is_owned),
            _ => false,
        }
    }
}

/// Deserializes each object item into `T`; a misfit is that item's error.
pub(crate) struct Typed<T>(PhantomData<fn() -> T>);

impl<T> Typed<T> {
    pub(crate) fn new() -> Self {
        Typed(PhantomData)
    }
}

/// Deserializes an item's instance (references have none).
pub(crate) fn from_item<T: DeserializeOwned>(item: &EnumItem) -> Result<T> {
    match item.instance() {
        Some(inst) => Ok(from_instance(inst)?),
        None => {
            Err(DeError("a bare endpoint reference has no properties to deserialize".into()).into())
        }
    }
}

impl<T: DeserializeOwned> Sink for Typed<T> {
    type Item = Result<T>;

    fn object<'i>(
        &mut self,
        c: &mut Cursor<'i>,
        e: &Start<'i>,
        empty: bool,
    ) -> Result<Result<T>, ParseError> {
        let mut props: Vec<(&'i str, Slot<'i>)> = Vec::with_capacity(c.hint);
        if !empty {
            while let Some((p, empty)) = c.next_child()? {
                let name = c.local_name(&p)?;
                let nil = c.is_nil(&p)?;
                let slot = if empty {
                    if nil {
                        Slot::Null
                    } else {
                        Slot::Text(Cow::Borrowed(""))
                    }
                } else {
                    match c.property_text()? {
                        (_, None) if nil => Slot::Null,
                        (text, None) => Slot::Text(text),
                        (text, Some((first, empty))) => {
                            Slot::Owned(Box::new(c.structured(nil, text, &first, empty)?))
                        }
                    }
                };
                match props.last_mut() {
                    Some((prev, Slot::Many(items))) if *prev == name => items.push(slot),
                    Some((prev, last)) if *prev == name => {
                        let first = std::mem::replace(last, Slot::Null);
                        *last = Slot::Many(vec![first, slot]);
                    }
                    _ => props.push((name, slot)),
                }
            }
        }
        c.hint = props.len().max(4);
        if props.iter().any(|(_, s)| s.is_owned()) {
            let mut inst = Instance::new(c.local_name(e)?);
            for (name, slot) in props {
                match inst.properties.last_mut() {
                    Some((prev, v)) if prev == name => fold(v, slot.into_value()),
                    _ => inst.properties.push((name.to_string(), slot.into_value())),
                }
            }
            return Ok(from_instance(&inst).map_err(Into::into));
        }
        Ok(T::deserialize(Props(&props)).map_err(Into::into))
    }

    fn other(&mut self, item: EnumItem) -> Result<T> {
        from_item(&item)
    }
}

struct Props<'a, 'i>(&'a [(&'i str, Slot<'i>)]);
struct SlotDe<'a, 'i>(&'a Slot<'i>);

impl<'de> Deserializer<'de> for Props<'_, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_map(PropMap {
            iter: self.0.iter(),
            value: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct PropMap<'a, 'i> {
    iter: std::slice::Iter<'a, (&'i str, Slot<'i>)>,
    value: Option<&'a Slot<'i>>,
}

impl<'de, 'a, 'i> MapAccess<'de> for PropMap<'a, 'i> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(IntoDeserializer::<DeError>::into_deserializer(*k))
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let v = self
            .value
            .take()
            .ok_or_else(|| DeError("value without key".into()))?;
        seed.deserialize(SlotDe(v))
    }
}

struct Seq<'a, 'i>(std::slice::Iter<'a, Slot<'i>>);

impl<'de> SeqAccess<'de> for Seq<'_, '_> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        self.0
            .next()
            .map(|v| seed.deserialize(SlotDe(v)))
            .transpose()
    }
}

fn kind(s: &Slot<'_>) -> &'static str {
    match s {
        Slot::Null => "nil",
        Slot::Text(_) => "text",
        Slot::Many(_) => "an array",
        Slot::Owned(_) => "a structured value",
    }
}

impl<'a, 'i> SlotDe<'a, 'i> {
    /// The single scalar: the slot itself, or the one element of an array of one.
    fn scalar(&self) -> &'a Slot<'i> {
        match self.0 {
            Slot::Many(items) if items.len() == 1 => &items[0],
            other => other,
        }
    }

    fn text(&self) -> Result<&'a str, DeError> {
        match self.0 {
            Slot::Text(t) => Ok(t.trim()),
            other => Err(DeError(format!("expected a scalar, found {}", kind(other)))),
        }
    }

    fn number<N: std::str::FromStr>(&self, what: &str) -> Result<N, DeError> {
        match self.scalar() {
            Slot::Text(t) => t.trim().parse::<N>().map_err(|_| {
                let fits_wider = t.trim().parse::<i128>().is_ok();
                DeError(if fits_wider {
                    format!("{} is out of range", t.trim())
                } else {
                    format!("expected {what}, found text: {:?}", t.as_ref())
                })
            }),
            other => Err(DeError(format!(
                "expected {what}, found {}: \"\"",
                kind(other)
            ))),
        }
    }
}

macro_rules! num {
    ($name:ident, $visit:ident, $t:ty) => {
        fn $name<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            v.$visit(self.number::<$t>("a number")?)
        }
    };
}

impl<'de> Deserializer<'de> for SlotDe<'_, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Slot::Null => v.visit_unit(),
            Slot::Text(t) => v.visit_str(t),
            Slot::Many(items) => v.visit_seq(Seq(items.iter())),
            Slot::Owned(_) => Err(DeError("a structured value needs the instance path".into())),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let b = match self.scalar() {
            Slot::Text(t) => match t.trim() {
                s if s.eq_ignore_ascii_case("true") || s == "1" => Some(true),
                s if s.eq_ignore_ascii_case("false") || s == "0" => Some(false),
                _ => None,
            },
            _ => None,
        };
        v.visit_bool(
            b.ok_or_else(|| DeError(format!("expected a boolean, found {}", kind(self.scalar()))))?,
        )
    }

    num!(deserialize_i8, visit_i8, i8);
    num!(deserialize_i16, visit_i16, i16);
    num!(deserialize_i32, visit_i32, i32);
    num!(deserialize_i64, visit_i64, i64);
    num!(deserialize_u8, visit_u8, u8);
    num!(deserialize_u16, visit_u16, u16);
    num!(deserialize_u32, visit_u32, u32);
    num!(deserialize_u64, visit_u64, u64);

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(v)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Slot::Text(t) => v.visit_f64(
                t.trim()
                    .parse()
                    .map_err(|_| DeError("expected a number, found text".into()))?,
            ),
            other => Err(DeError(format!("expected a number, found {}", kind(other)))),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let t = self.text()?;
        let mut it = t.chars();
        match (it.next(), it.next()) {
            (Some(c), None) => v.visit_char(c),
            _ => Err(DeError(format!("expected one character, found {t:?}"))),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.scalar() {
            Slot::Text(t) => v.visit_str(t),
            _ => self.deserialize_any(v),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Slot::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Slot::Many(items) => v.visit_seq(Seq(items.iter())),
            Slot::Null => v.visit_seq(Seq([].iter())),
            one => v.visit_seq(Seq(std::slice::from_ref(one).iter())),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let t = self.text()?;
        v.visit_enum(t.into_deserializer())
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        i128 u128 bytes byte_buf unit_struct tuple tuple_struct map struct identifier ignored_any
    }
}
