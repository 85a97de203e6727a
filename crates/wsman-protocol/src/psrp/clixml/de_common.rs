//! The `serde::Deserializer` methods that read CLIXML values the same way whether the
//! value is owned ([`PsValue`](super::PsValue), `de.rs`) or borrowed from the message
//! (`fast.rs`): integers through `deserialize_i64`, floats through the
//! module's float reader, and the forms CLIXML has no own element for.

/// Expands to those methods inside an `impl Deserializer<'de>`; `$int` reads an integer
/// from `self` (`Option<i128>`), `$float` a float (`Option<f64>`).
macro_rules! common_deserialize_methods {
    ($int:path, $float:path) => {
        fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.deserialize_i64(visitor)
        }
        fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.deserialize_i64(visitor)
        }
        fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.deserialize_i64(visitor)
        }
        fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            match $int(self) {
                Some(n) if n < 0 => match i64::try_from(n) {
                    Ok(n) => visitor.visit_i64(n),
                    Err(_) => visitor.visit_i128(n),
                },
                Some(n) => match u64::try_from(n) {
                    Ok(n) => visitor.visit_u64(n),
                    Err(_) => visitor.visit_i128(n),
                },
                None => self.deserialize_any(visitor),
            }
        }
        fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.deserialize_i64(visitor)
        }
        fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.deserialize_i64(visitor)
        }
        fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.deserialize_i64(visitor)
        }
        fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.deserialize_i64(visitor)
        }
        fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.deserialize_f64(visitor)
        }
        fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            match $float(self) {
                Some(f) => visitor.visit_f64(f),
                None => self.deserialize_any(visitor),
            }
        }
        fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.deserialize_any(visitor)
        }
        fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.deserialize_any(visitor)
        }
        fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.deserialize_any(visitor)
        }
        fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.deserialize_any(visitor)
        }
        fn deserialize_unit_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value> {
            self.deserialize_any(visitor)
        }
        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value> {
            visitor.visit_newtype_struct(self)
        }
        fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
            self.deserialize_seq(visitor)
        }
        fn deserialize_tuple_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _len: usize,
            visitor: V,
        ) -> Result<V::Value> {
            self.deserialize_seq(visitor)
        }
        fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.deserialize_str(visitor)
        }
        fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            visitor.visit_unit()
        }
    };
}

pub(super) use common_deserialize_methods;
