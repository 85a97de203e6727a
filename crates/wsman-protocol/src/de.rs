//! Deserializes CIM instances into the caller's serde types.
//!
//! Responses carry scalars as text; the deserializer parses text into whatever the
//! target field asks for (`u32`, `bool`, `f64`, ...). A one-element array arrives as a
//! single element, so a scalar also deserializes as a sequence of one. Fields are
//! matched by exact property name; use `#[serde(rename_all = "PascalCase")]`.
//!
//! # Empty arrays
//!
//! An array property with no elements arrives as no element at all: Windows writes
//! one `<p:Tags>` per element, so for none there is nothing, and the instance has no
//! such property. A plain `Vec` field then fails with ``missing field `Tags` ``. Mark
//! `Vec` fields `#[serde(default)]` (or use `Option<Vec<_>>`), so that an empty array
//! reads as an empty `Vec`. (A nil array, `xsi:nil="true"`, reads as an empty `Vec`
//! either way.)
//!
//! ```
//! use serde::Deserialize;
//! use wsman_protocol::de::from_instance;
//! use wsman_protocol::{Instance, Value};
//!
//! #[derive(Deserialize)]
//! #[serde(rename_all = "PascalCase")]
//! struct Service {
//!     name: String,
//!     #[serde(default)]
//!     tags: Vec<String>,
//! }
//!
//! // What a Get of an instance whose Tags array is empty reads: no Tags property.
//! let empty = Instance::new("Svc").with("Name", "WinRM");
//! let svc: Service = from_instance(&empty).unwrap();
//! assert!(svc.tags.is_empty());
//!
//! // One element arrives as a scalar, two or more as an array.
//! let one = Instance::new("Svc").with("Name", "WinRM").with("Tags", "a");
//! assert_eq!(from_instance::<Service>(&one).unwrap().tags, ["a"]);
//! let two = empty.with("Tags", Value::Array(vec!["a".into(), "b".into()]));
//! assert_eq!(from_instance::<Service>(&two).unwrap().tags, ["a", "b"]);
//!
//! // Without `#[serde(default)]`, the empty array is a missing field.
//! #[derive(Debug, Deserialize)]
//! #[serde(rename_all = "PascalCase")]
//! struct Strict {
//!     tags: Vec<String>,
//! }
//! let e = from_instance::<Strict>(&Instance::new("Svc")).unwrap_err();
//! assert!(e.to_string().contains("missing field `Tags`"), "{e}");
//! ```

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Visitor,
};

use super::cim::{EndpointReference, Instance, Value};
use super::envelope::SelectorValue;

/// Why an instance did not fit the target type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot deserialize instance: {0}")]
pub struct DeError(pub String);

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

/// Deserializes an instance into `T`.
///
/// An empty array property is absent from the instance (Windows sends no element for
/// it): mark `Vec` fields `#[serde(default)]`, see [the module docs](self#empty-arrays).
///
/// # Errors
/// [`DeError`] when a property is missing or its text does not parse as the field's type.
pub fn from_instance<T: DeserializeOwned>(inst: &Instance) -> Result<T, DeError> {
    T::deserialize(InstanceDe(inst))
}

struct InstanceDe<'a>(&'a Instance);
/// A [`Value`] as a serde deserializer (used by the streaming typed reader).
pub struct ValueDe<'a>(pub &'a Value);

impl<'de, 'a> Deserializer<'de> for InstanceDe<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_map(InstanceMap {
            iter: self.0.properties.iter(),
            value: None,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct InstanceMap<'a> {
    iter: std::slice::Iter<'a, (String, Value)>,
    /// The current property: its name (for errors) and value.
    value: Option<(&'a str, &'a Value)>,
}

impl<'de, 'a> MapAccess<'de> for InstanceMap<'a> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some((k, v));
                seed.deserialize(k.as_str().into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (name, v) = self
            .value
            .take()
            .ok_or_else(|| DeError("value without key".into()))?;
        // The property's name leads the error (nested instances add theirs in front).
        seed.deserialize(ValueDe(v))
            .map_err(|e| DeError(format!("property {name}: {}", e.0)))
    }
}

struct Seq<'a>(std::slice::Iter<'a, Value>);

impl<'de, 'a> SeqAccess<'de> for Seq<'a> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        self.0
            .next()
            .map(|v| seed.deserialize(ValueDe(v)))
            .transpose()
    }
}

fn epr_instance(epr: &EndpointReference) -> Instance {
    let mut selectors = Instance::new("SelectorSet");
    for s in &epr.selectors {
        let v = match &s.value {
            SelectorValue::Text(t) => Value::String(t.clone()),
            SelectorValue::Reference(r) => Value::Instance(Box::new(epr_instance(r))),
        };
        selectors.properties.push((s.name.clone(), v));
    }
    Instance::new("EndpointReference")
        .with("Address", epr.address.as_str())
        .with("ResourceURI", epr.resource_uri.as_str())
        .with("SelectorSet", Value::Instance(Box::new(selectors)))
}

impl<'a> ValueDe<'a> {
    fn text(&self) -> Result<&'a str, DeError> {
        match self.0 {
            Value::String(s) => Ok(s.trim()),
            Value::DateTime(d) => Ok(&d.raw),
            other => Err(DeError(format!("expected a scalar, found {}", kind(other)))),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "a boolean",
        Value::Int(_) | Value::UInt(_) => "an integer",
        Value::Real(_) => "a number",
        Value::String(_) => "text",
        Value::DateTime(_) => "a datetime",
        Value::Interval(_) => "an interval",
        Value::Reference(_) => "a reference",
        Value::Instance(_) => "an embedded instance",
        Value::Array(_) => "an array",
    }
}

macro_rules! parse_num {
    ($name:ident, $visit:ident, $t:ty, $get:ident) => {
        fn $name<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
            let n = match self.0 {
                Value::Array(items) if items.len() == 1 => return ValueDe(&items[0]).$name(v),
                other => other.$get().ok_or_else(|| {
                    let text = other.as_str().unwrap_or("").trim();
                    if text.parse::<i128>().is_ok() || text.parse::<f64>().is_ok() {
                        // A number, just not one this type holds ("-5" for a u32).
                        DeError(format!(
                            "{text} is out of range for {} (or not a whole number)",
                            stringify!($t)
                        ))
                    } else {
                        DeError(format!(
                            "expected a number, found {}: {:?}",
                            kind(other),
                            other.as_str().unwrap_or("")
                        ))
                    }
                })?,
            };
            let n = <$t>::try_from(n)
                .map_err(|_| DeError(format!("{n} is out of range for {}", stringify!($t))))?;
            v.$visit(n)
        }
    };
}

impl<'de, 'a> Deserializer<'de> for ValueDe<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => v.visit_unit(),
            Value::Bool(b) => v.visit_bool(*b),
            Value::Int(i) => v.visit_i64(*i),
            Value::UInt(u) => v.visit_u64(*u),
            Value::Real(f) => v.visit_f64(*f),
            Value::String(s) => v.visit_str(s),
            Value::DateTime(d) => v.visit_str(&d.raw),
            Value::Interval(d) => v.visit_f64(d.as_secs_f64()),
            Value::Reference(epr) => InstanceDe(&epr_instance(epr)).deserialize_any(v),
            Value::Instance(inst) => InstanceDe(inst).deserialize_any(v),
            Value::Array(items) => v.visit_seq(Seq(items.iter())),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        if let Value::Array(items) = self.0
            && items.len() == 1
        {
            return ValueDe(&items[0]).deserialize_bool(v);
        }
        let b = self
            .0
            .as_bool()
            .ok_or_else(|| DeError(format!("expected a boolean, found {}", kind(self.0))))?;
        v.visit_bool(b)
    }

    parse_num!(deserialize_i8, visit_i8, i8, as_i64);
    parse_num!(deserialize_i16, visit_i16, i16, as_i64);
    parse_num!(deserialize_i32, visit_i32, i32, as_i64);
    parse_num!(deserialize_i64, visit_i64, i64, as_i64);
    parse_num!(deserialize_u8, visit_u8, u8, as_u64);
    parse_num!(deserialize_u16, visit_u16, u16, as_u64);
    parse_num!(deserialize_u32, visit_u32, u32, as_u64);
    parse_num!(deserialize_u64, visit_u64, u64, as_u64);

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(v)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        if let Value::Interval(d) = self.0 {
            return v.visit_f64(d.as_secs_f64());
        }
        let f = self
            .0
            .as_f64()
            .ok_or_else(|| DeError(format!("expected a number, found {}", kind(self.0))))?;
        v.visit_f64(f)
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
        match self.0 {
            Value::String(s) => v.visit_str(s),
            Value::Array(items) if items.len() == 1 => ValueDe(&items[0]).deserialize_str(v),
            _ => self.deserialize_any(v),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_seq(Seq(self.0.as_slice().iter()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn an_error_names_the_property_and_says_out_of_range() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Outer {
            #[serde(rename = "Inner")]
            inner: Inner,
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Inner {
            #[serde(rename = "Neg")]
            neg: u32,
        }
        let inner = Instance::new("I").with("Neg", "-5");
        let outer = Instance::new("O").with("Inner", Value::Instance(Box::new(inner)));
        let e = from_instance::<Outer>(&outer).unwrap_err().to_string();
        assert!(e.contains("property Inner: property Neg:"), "{e}");
        assert!(e.contains("-5 is out of range for u32"), "{e}");
        let text = Instance::new("I").with("Neg", "five");
        let e = from_instance::<Inner>(&text).unwrap_err().to_string();
        assert!(
            e.contains("property Neg: expected a number, found text"),
            "{e}"
        );
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Svc {
        name: String,
        process_id: u32,
        started: bool,
        description: Option<String>,
        dependencies: Vec<String>,
        start_mode: Mode,
        #[serde(default)]
        missing: Option<u8>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    enum Mode {
        Auto,
        Manual,
    }

    #[test]
    fn text_parses_into_fields() {
        let inst = Instance::new("Win32_Service")
            .with("Name", "WinRM")
            .with("ProcessId", " 42 ")
            .with("Started", "true")
            .with("Description", Value::Null)
            .with("Dependencies", "RPCSS")
            .with("StartMode", "Auto")
            .with("Extra", "ignored");
        let s: Svc = from_instance(&inst).unwrap();
        assert_eq!(
            s,
            Svc {
                name: "WinRM".into(),
                process_id: 42,
                started: true,
                description: None,
                dependencies: vec!["RPCSS".into()],
                start_mode: Mode::Auto,
                missing: None
            }
        );
        let bad = Instance::new("X").with("Name", "a").with("ProcessId", "-1");
        let err = from_instance::<Svc>(&bad).unwrap_err();
        assert!(
            err.0.contains("out of range") || err.0.contains("expected"),
            "{err}"
        );
    }
}
