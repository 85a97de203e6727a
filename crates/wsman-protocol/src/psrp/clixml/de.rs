//! serde deserialization from [`PsValue`]: an object's properties (extended, then
//! adapted) map onto a struct's fields by name, lists onto sequences, dictionaries onto
//! maps, enums onto unit variants by their `ToString` or onto integers by their number.

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::de_common::common_deserialize_methods;
use super::value::{Collection, PsObject, PsValue};
use crate::psrp::error::{Error, Result};

/// Deserializes `value` into a `T`, borrowing strings from it where `T` allows.
///
/// A scalar read into a sequence gives a sequence of one (PowerShell unrolls one-item
/// arrays), `Nil` into a sequence gives an empty one.
///
/// # Errors
///
/// [`wsman_protocol::psrp::Error::Serde`](crate::psrp::Error::Serde) when the shapes do
/// not match, [`wsman_protocol::psrp::Error::SecureStringWithoutKey`](crate::psrp::Error::SecureStringWithoutKey)
/// for a SecureString read as text. Through tokio-winrm (`tokio_winrm::psrp::from_value`,
/// `Pipeline::invoke_as`) these come as `tokio_winrm::Error::Psrp`.
///
/// (tokio-winrm users: the same items are in `tokio_winrm::psrp`.)
///
/// ```
/// use wsman_protocol::psrp::{PsObject, PsValue, from_value};
/// #[derive(serde::Deserialize)]
/// #[serde(rename_all = "PascalCase")]
/// struct Service { name: String, status: String }
/// let v: PsValue = PsObject::new()
///     .with_property("Name", "winrm")
///     .with_adapted("Status", "Running")
///     .into();
/// let s: Service = from_value(&v).unwrap();
/// assert_eq!((s.name.as_str(), s.status.as_str()), ("winrm", "Running"));
/// ```
pub fn from_value<'de, T: de::Deserialize<'de>>(value: &'de PsValue) -> Result<T> {
    T::deserialize(value)
}

pub(super) fn integer(v: &PsValue) -> Option<i128> {
    Some(match *v {
        PsValue::I8(n) => n.into(),
        PsValue::U8(n) => n.into(),
        PsValue::I16(n) => n.into(),
        PsValue::U16(n) => n.into(),
        PsValue::I32(n) => n.into(),
        PsValue::U32(n) => n.into(),
        PsValue::I64(n) => n.into(),
        PsValue::U64(n) => n.into(),
        PsValue::Char(n) => n.into(),
        PsValue::Decimal(ref s) => s.trim().parse().ok()?,
        PsValue::Object(ref o) => integer(o.value.as_ref()?)?,
        _ => return None,
    })
}

pub(super) fn float(v: &PsValue) -> Option<f64> {
    match v {
        PsValue::F32(n) => Some(f64::from(*n)),
        PsValue::F64(n) => Some(*n),
        PsValue::Decimal(s) => s.trim().parse().ok(),
        PsValue::Object(o) => float(o.value.as_ref()?),
        other => integer(other).map(|n| n as f64),
    }
}

struct Seq<'de> {
    items: std::slice::Iter<'de, PsValue>,
}

impl<'de> de::SeqAccess<'de> for Seq<'de> {
    type Error = Error;
    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>> {
        self.items.next().map(|v| seed.deserialize(v)).transpose()
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Props<'de> {
    items: Box<dyn Iterator<Item = (&'de str, &'de PsValue)> + 'de>,
    /// The current property: its name (for errors) and value.
    value: Option<(&'de str, &'de PsValue)>,
}

impl<'de> de::MapAccess<'de> for Props<'de> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match self.items.next() {
            Some((k, v)) => {
                self.value = Some((k, v));
                seed.deserialize(BorrowedStrDeserializer::new(k)).map(Some)
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
            None => seed.deserialize(&PsValue::Null),
        }
    }
}

struct Entries<'de> {
    items: std::slice::Iter<'de, (PsValue, PsValue)>,
    value: Option<&'de PsValue>,
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
        seed.deserialize(self.value.take().unwrap_or(&PsValue::Null))
    }
}

fn visit_object<'de, V: Visitor<'de>>(o: &'de PsObject, visitor: V) -> Result<V::Value> {
    match &o.collection {
        Some(Collection::Dictionary(entries)) => visitor.visit_map(Entries {
            items: entries.iter(),
            value: None,
        }),
        Some(c) => visitor.visit_seq(Seq {
            items: c.items().unwrap_or_default().iter(),
        }),
        None if !o.extended.is_empty() || !o.adapted.is_empty() => visit_props(o, visitor),
        None => match (&o.value, &o.to_string) {
            (Some(v), _) => de::Deserializer::deserialize_any(v, visitor),
            (None, Some(s)) => visitor.visit_borrowed_str(s),
            (None, None) => visit_props(o, visitor),
        },
    }
}

fn visit_props<'de, V: Visitor<'de>>(o: &'de PsObject, visitor: V) -> Result<V::Value> {
    visitor.visit_map(Props {
        items: Box::new(o.properties()),
        value: None,
    })
}

impl<'de> de::Deserializer<'de> for &'de PsValue {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            PsValue::Null => visitor.visit_unit(),
            PsValue::Bool(b) => visitor.visit_bool(*b),
            PsValue::Char(c) => match char::from_u32(u32::from(*c)) {
                Some(ch) => visitor.visit_char(ch),
                None => visitor.visit_u16(*c),
            },
            PsValue::I8(n) => visitor.visit_i8(*n),
            PsValue::U8(n) => visitor.visit_u8(*n),
            PsValue::I16(n) => visitor.visit_i16(*n),
            PsValue::U16(n) => visitor.visit_u16(*n),
            PsValue::I32(n) => visitor.visit_i32(*n),
            PsValue::U32(n) => visitor.visit_u32(*n),
            PsValue::I64(n) => visitor.visit_i64(*n),
            PsValue::U64(n) => visitor.visit_u64(*n),
            PsValue::F32(n) => visitor.visit_f32(*n),
            PsValue::F64(n) => visitor.visit_f64(*n),
            PsValue::Decimal(s)
            | PsValue::String(s)
            | PsValue::DateTime(s)
            | PsValue::Duration(s)
            | PsValue::Uri(s)
            | PsValue::Version(s)
            | PsValue::XmlDocument(s)
            | PsValue::ScriptBlock(s) => visitor.visit_borrowed_str(s),
            PsValue::Bytes(b) => visitor.visit_borrowed_bytes(b),
            PsValue::Guid(g) => visitor.visit_string(g.hyphenated().to_string()),
            PsValue::SecureString(_) => Err(Error::SecureStringWithoutKey),
            PsValue::Object(o) => visit_object(o, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            PsValue::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            PsValue::Object(o) => match (&o.to_string, &o.value) {
                (Some(s), _) => visitor.visit_borrowed_str(s),
                (None, Some(v)) => v.deserialize_str(visitor),
                (None, None) => self.deserialize_any(visitor),
            },
            PsValue::Bool(b) => visitor.visit_str(if *b { "True" } else { "False" }),
            PsValue::Char(_) => self.deserialize_any(visitor),
            v => match integer(v) {
                Some(n) => visitor.visit_string(n.to_string()),
                None => match float(v) {
                    Some(f) => visitor.visit_string(f.to_string()),
                    None => v.deserialize_any(visitor),
                },
            },
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            PsValue::Object(o) if o.value.is_some() => o
                .value
                .as_ref()
                .unwrap_or(&PsValue::Null)
                .deserialize_bool(visitor),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            PsValue::Null => visitor.visit_seq(Seq { items: [].iter() }),
            PsValue::Object(o) if matches!(o.collection, Some(ref c) if c.items().is_some()) => {
                self.deserialize_any(visitor)
            }
            _ => visitor.visit_seq(Seq {
                items: std::slice::from_ref(self).iter(),
            }),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            PsValue::Object(o) => match &o.collection {
                Some(Collection::Dictionary(_)) => visit_object(o, visitor),
                _ => visit_props(o, visitor),
            },
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
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.as_str() {
            Some(s) => visitor.visit_enum(s.into_deserializer()),
            None => Err(Error::Serde(format!(
                "expected an enum name, found {}",
                kind(self)
            ))),
        }
    }

    common_deserialize_methods!(integer, float);
}

fn kind(v: &PsValue) -> &'static str {
    match v {
        PsValue::Null => "Nil",
        PsValue::Object(_) => "an object",
        PsValue::SecureString(_) => "a SecureString",
        _ => "a primitive value",
    }
}
