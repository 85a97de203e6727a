//! Items read straight into the caller's serde type: the properties of an item are
//! handed to the deserializer as they are read, as text borrowed from the response,
//! with the rules of [`crate::from_instance`] (text parsed into the field's type, nil as
//! `None`, consecutive repeated elements as sequences, a scalar as a sequence of one);
//! no `Instance` is built. A structured property (datetime, interval, reference,
//! embedded instance) is read as a [`Value`] and deserialized as `from_instance` does.

use std::borrow::Cow;
use std::marker::PhantomData;

use serde::de::{
    DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};

use super::EnumItem;
use super::page::{Cursor, Prop, PropValue, Sink, Start};
use crate::error::Result;
use crate::soap::cim::Value;
use crate::soap::de::{DeError, ValueDe, from_instance};
use crate::soap::xml::ParseError;

/// One property as read: text, nil, repeated, or (structured) a full value.
#[derive(Debug)]
enum Slot<'i> {
    Text(Cow<'i, str>),
    Null,
    Many(Vec<Slot<'i>>),
    Owned(Box<Value>),
}

impl<'i> From<PropValue<'i>> for Slot<'i> {
    fn from(v: PropValue<'i>) -> Self {
        match v {
            PropValue::Text(t) => Slot::Text(t),
            PropValue::Null => Slot::Null,
            PropValue::Structured(v) => Slot::Owned(v),
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
        let name = e.name();
        let mut map = Props {
            c,
            prefix: name.prefix().map_or(&b""[..], |p| p.into_inner()),
            ahead: None,
            value: None,
            done: empty,
            failed: None,
        };
        let out = T::deserialize(ItemDe(&mut map));
        // The XML comes first: a malformed item fails the page, whatever serde made of it.
        if let Some(err) = map.failed {
            return Err(err);
        }
        // Whatever the deserializer left unread (after an error, say) is read and checked.
        map.ahead = None;
        while !map.done {
            if map.c.next_property(map.prefix)?.is_none() {
                map.done = true;
            }
        }
        Ok(out.map_err(Into::into))
    }

    fn other(&mut self, item: EnumItem) -> Result<T> {
        from_item(&item)
    }
}

/// The properties of one item as a serde map, read on demand: a key is read with the
/// property after it, so that consecutive repeats can be gathered into one sequence.
struct Props<'c, 'i, 'p> {
    c: &'c mut Cursor<'i>,
    prefix: &'p [u8],
    /// The property read ahead of the current one.
    ahead: Option<Prop<'i>>,
    /// The key just returned (for errors) and its value.
    value: Option<(&'i str, Slot<'i>)>,
    /// True once the item's end tag was read.
    done: bool,
    /// The XML error that stopped the reading.
    failed: Option<ParseError>,
}

impl<'i> Props<'_, 'i, '_> {
    #[inline]
    fn pull(&mut self) -> Result<Option<Prop<'i>>, DeError> {
        if self.done {
            return Ok(None);
        }
        match self.c.next_property(self.prefix) {
            Ok(Some(p)) => Ok(Some(p)),
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                let msg = DeError(format!("malformed item: {e}"));
                self.failed = Some(e);
                self.done = true;
                Err(msg)
            }
        }
    }
}

struct ItemDe<'a, 'c, 'i, 'p>(&'a mut Props<'c, 'i, 'p>);

impl<'de> Deserializer<'de> for ItemDe<'_, '_, '_, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_map(self.0)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> MapAccess<'de> for &mut Props<'_, '_, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let prop = match self.ahead.take() {
            Some(p) => p,
            None => match self.pull()? {
                Some(p) => p,
                None => return Ok(None),
            },
        };
        let mut slot = Slot::from(prop.value);
        while let Some(next) = self.pull()? {
            if next.name != prop.name {
                self.ahead = Some(next);
                break;
            }
            let more = Slot::from(next.value);
            match &mut slot {
                Slot::Many(items) => items.push(more),
                _ => {
                    let first = std::mem::replace(&mut slot, Slot::Null);
                    slot = Slot::Many(vec![first, more]);
                }
            }
        }
        self.value = Some((prop.name, slot));
        seed.deserialize(IntoDeserializer::<DeError>::into_deserializer(prop.name))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (name, v) = self
            .value
            .take()
            .ok_or_else(|| DeError("value without key".into()))?;
        // The property's name leads the error, as `from_instance`'s do.
        seed.deserialize(SlotDe(v))
            .map_err(|e| DeError(format!("property {name}: {}", e.0)))
    }
}

struct Seq<I>(I);

impl<'de, 'i, I: Iterator<Item = Slot<'i>>> SeqAccess<'de> for Seq<I> {
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

/// One property's value. Repeats come as `Many` of two or more, so a scalar target
/// meets either the scalar itself or an array it refuses, as with `from_instance`.
struct SlotDe<'i>(Slot<'i>);

impl SlotDe<'_> {
    fn text(&self) -> Result<&str, DeError> {
        match &self.0 {
            Slot::Text(t) => Ok(t.trim()),
            other => Err(DeError(format!("expected a scalar, found {}", kind(other)))),
        }
    }

    fn number<N: std::str::FromStr>(&self, what: &str) -> Result<N, DeError> {
        match &self.0 {
            Slot::Text(t) => t.trim().parse::<N>().map_err(|_| {
                let fits_wider = t.trim().parse::<i128>().is_ok();
                DeError(if fits_wider {
                    format!(
                        "{} is out of range for {}",
                        t.trim(),
                        std::any::type_name::<N>()
                    )
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

/// A structured value is deserialized exactly as `from_instance` would.
macro_rules! structured {
    ($self:ident, $method:ident, $v:ident $(, $arg:expr)*) => {
        if let Slot::Owned(val) = &$self.0 {
            return ValueDe(val).$method($($arg,)* $v);
        }
    };
}

macro_rules! num {
    ($name:ident, $visit:ident, $t:ty) => {
        fn $name<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            structured!(self, $name, v);
            v.$visit(self.number::<$t>("a number")?)
        }
    };
}

impl<'de> Deserializer<'de> for SlotDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Slot::Null => v.visit_unit(),
            Slot::Text(Cow::Borrowed(t)) => v.visit_str(t),
            Slot::Text(Cow::Owned(t)) => v.visit_string(t),
            Slot::Many(items) => v.visit_seq(Seq(items.into_iter())),
            Slot::Owned(val) => ValueDe(&val).deserialize_any(v),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        structured!(self, deserialize_bool, v);
        let b = match &self.0 {
            Slot::Text(t) => match t.trim() {
                s if s.eq_ignore_ascii_case("true") || s == "1" => Some(true),
                s if s.eq_ignore_ascii_case("false") || s == "0" => Some(false),
                _ => None,
            },
            _ => None,
        };
        v.visit_bool(
            b.ok_or_else(|| DeError(format!("expected a boolean, found {}", kind(&self.0))))?,
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
        structured!(self, deserialize_f64, v);
        match &self.0 {
            Slot::Text(t) => v.visit_f64(t.trim().parse().map_err(|_| {
                DeError(format!("expected a number, found text: {:?}", t.as_ref()))
            })?),
            other => Err(DeError(format!("expected a number, found {}", kind(other)))),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        structured!(self, deserialize_char, v);
        let t = self.text()?;
        let mut it = t.chars();
        match (it.next(), it.next()) {
            (Some(c), None) => v.visit_char(c),
            _ => Err(DeError(format!("expected one character, found {t:?}"))),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        structured!(self, deserialize_str, v);
        self.deserialize_any(v)
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        structured!(self, deserialize_option, v);
        match self.0 {
            Slot::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        structured!(self, deserialize_seq, v);
        match self.0 {
            Slot::Many(items) => v.visit_seq(Seq(items.into_iter())),
            Slot::Null => v.visit_seq(Seq(std::iter::empty())),
            one => v.visit_seq(Seq(std::iter::once(one))),
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
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        structured!(self, deserialize_enum, v, name, variants);
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
