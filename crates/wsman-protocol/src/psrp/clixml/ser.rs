//! serde serialization into [`PsValue`], for pipeline parameters and input objects:
//! structs become `PSCustomObject`s with extended properties, maps become hashtables,
//! sequences become `System.Object[]` lists, unit enum variants become their name (as
//! PowerShell converts strings to enum parameters).

use serde::ser::{self, Serialize};

use super::value::{PsObject, PsValue};
use crate::psrp::error::{Error, Result};

/// The type names of an object array.
pub(crate) const OBJECT_ARRAY: [&str; 3] = ["System.Object[]", "System.Array", "System.Object"];
/// The type names of a custom object.
pub(crate) const CUSTOM_OBJECT: [&str; 2] = [
    "System.Management.Automation.PSCustomObject",
    "System.Object",
];

/// Serializes `value` into a [`PsValue`].
///
/// # Errors
///
/// [`Error::Serde`] from the value's `Serialize` implementation; map keys may be any
/// value.
///
/// ```
/// use wsman_protocol::psrp::{PsValue, to_value};
/// #[derive(serde::Serialize)]
/// struct Params { name: &'static str, count: i32 }
/// let v = to_value(&Params { name: "winrm", count: 3 }).unwrap();
/// assert_eq!(v.property("name"), Some(&PsValue::String("winrm".into())));
/// assert_eq!(v.property("count"), Some(&PsValue::I32(3)));
/// ```
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<PsValue> {
    value.serialize(ValueSerializer)
}

struct ValueSerializer;

fn list(items: Vec<PsValue>) -> PsValue {
    PsObject::list(OBJECT_ARRAY, items).into()
}

fn single(variant: &str, value: PsValue) -> PsValue {
    PsObject::hashtable(vec![(PsValue::String(variant.into()), value)]).into()
}

impl ser::Serializer for ValueSerializer {
    type Ok = PsValue;
    type Error = Error;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = SeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = StructBuilder;
    type SerializeStructVariant = StructBuilder;

    fn serialize_bool(self, v: bool) -> Result<PsValue> {
        Ok(PsValue::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<PsValue> {
        Ok(PsValue::I8(v))
    }
    fn serialize_i16(self, v: i16) -> Result<PsValue> {
        Ok(PsValue::I16(v))
    }
    fn serialize_i32(self, v: i32) -> Result<PsValue> {
        Ok(PsValue::I32(v))
    }
    fn serialize_i64(self, v: i64) -> Result<PsValue> {
        Ok(PsValue::I64(v))
    }
    fn serialize_i128(self, v: i128) -> Result<PsValue> {
        Ok(i64::try_from(v).map_or_else(|_| PsValue::Decimal(v.to_string()), PsValue::I64))
    }
    fn serialize_u8(self, v: u8) -> Result<PsValue> {
        Ok(PsValue::U8(v))
    }
    fn serialize_u16(self, v: u16) -> Result<PsValue> {
        Ok(PsValue::U16(v))
    }
    fn serialize_u32(self, v: u32) -> Result<PsValue> {
        Ok(PsValue::U32(v))
    }
    fn serialize_u64(self, v: u64) -> Result<PsValue> {
        Ok(PsValue::U64(v))
    }
    fn serialize_u128(self, v: u128) -> Result<PsValue> {
        Ok(u64::try_from(v).map_or_else(|_| PsValue::Decimal(v.to_string()), PsValue::U64))
    }
    fn serialize_f32(self, v: f32) -> Result<PsValue> {
        Ok(PsValue::F32(v))
    }
    fn serialize_f64(self, v: f64) -> Result<PsValue> {
        Ok(PsValue::F64(v))
    }
    fn serialize_char(self, v: char) -> Result<PsValue> {
        Ok(PsValue::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<PsValue> {
        Ok(PsValue::String(v.to_string()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<PsValue> {
        Ok(PsValue::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<PsValue> {
        Ok(PsValue::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<PsValue> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<PsValue> {
        Ok(PsValue::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<PsValue> {
        Ok(PsValue::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<PsValue> {
        Ok(PsValue::String(variant.into()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<PsValue> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<PsValue> {
        Ok(single(variant, value.serialize(ValueSerializer)?))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder> {
        Ok(SeqBuilder {
            items: Vec::with_capacity(len.unwrap_or(0).min(1024)),
            variant: None,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SeqBuilder> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqBuilder> {
        Ok(SeqBuilder {
            items: Vec::with_capacity(len.min(1024)),
            variant: Some(variant),
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder> {
        Ok(MapBuilder {
            entries: Vec::with_capacity(len.unwrap_or(0).min(1024)),
            key: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<StructBuilder> {
        Ok(StructBuilder {
            props: Vec::with_capacity(len.min(1024)),
            variant: None,
        })
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<StructBuilder> {
        Ok(StructBuilder {
            props: Vec::with_capacity(len.min(1024)),
            variant: Some(variant),
        })
    }
}

/// Builds a list.
#[doc(hidden)]
pub struct SeqBuilder {
    items: Vec<PsValue>,
    variant: Option<&'static str>,
}

impl SeqBuilder {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.items.push(value.serialize(ValueSerializer)?);
        Ok(())
    }
    fn finish(self) -> PsValue {
        let v = list(self.items);
        match self.variant {
            Some(variant) => single(variant, v),
            None => v,
        }
    }
}

impl ser::SerializeSeq for SeqBuilder {
    type Ok = PsValue;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.push(value)
    }
    fn end(self) -> Result<PsValue> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = PsValue;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.push(value)
    }
    fn end(self) -> Result<PsValue> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = PsValue;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.push(value)
    }
    fn end(self) -> Result<PsValue> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleVariant for SeqBuilder {
    type Ok = PsValue;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.push(value)
    }
    fn end(self) -> Result<PsValue> {
        Ok(self.finish())
    }
}

/// Builds a hashtable.
#[doc(hidden)]
pub struct MapBuilder {
    entries: Vec<(PsValue, PsValue)>,
    key: Option<PsValue>,
}

impl ser::SerializeMap for MapBuilder {
    type Ok = PsValue;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.key = Some(key.serialize(ValueSerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let key = self.key.take().unwrap_or(PsValue::Null);
        self.entries.push((key, value.serialize(ValueSerializer)?));
        Ok(())
    }
    fn end(self) -> Result<PsValue> {
        Ok(PsObject::hashtable(self.entries).into())
    }
}

/// Builds a custom object.
#[doc(hidden)]
pub struct StructBuilder {
    props: Vec<(String, PsValue)>,
    variant: Option<&'static str>,
}

impl StructBuilder {
    fn finish(self) -> PsValue {
        let mut o = PsObject::new().with_type_names(CUSTOM_OBJECT);
        o.extended = self.props;
        match self.variant {
            Some(variant) => single(variant, o.into()),
            None => o.into(),
        }
    }
}

impl ser::SerializeStruct for StructBuilder {
    type Ok = PsValue;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.props
            .push((key.to_string(), value.serialize(ValueSerializer)?));
        Ok(())
    }
    fn end(self) -> Result<PsValue> {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for StructBuilder {
    type Ok = PsValue;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.props
            .push((key.to_string(), value.serialize(ValueSerializer)?));
        Ok(())
    }
    fn end(self) -> Result<PsValue> {
        Ok(self.finish())
    }
}
