//! The CLIXML value model ([MS-PSRP] §2.2.5): primitive values (§2.2.5.1) and complex
//! objects (§2.2.5.2) with type names, to-string, adapted and extended properties,
//! collections, dictionaries and enums.

use std::fmt;
use std::sync::Arc;

use uuid::Uuid;

/// One serialized value ([MS-PSRP] §2.2.5).
///
/// Texts whose .NET types have no exact Rust equivalent keep their wire form:
/// `Decimal`, `DateTime`, `Duration`, `Version`, `Uri`, `XmlDocument` and `ScriptBlock`
/// hold the text the peer sent (escapes resolved), so nothing is lost on a round trip.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PsValue {
    /// `<Nil/>` (§2.2.5.1.20).
    Null,
    /// `<B>` (§2.2.5.1.3).
    Bool(bool),
    /// `<C>`: one UTF-16 code unit (§2.2.5.1.2).
    Char(u16),
    /// `<SB>`: signed byte (§2.2.5.1.7).
    I8(i8),
    /// `<By>`: unsigned byte (§2.2.5.1.6).
    U8(u8),
    /// `<I16>` (§2.2.5.1.9).
    I16(i16),
    /// `<U16>` (§2.2.5.1.8).
    U16(u16),
    /// `<I32>` (§2.2.5.1.11).
    I32(i32),
    /// `<U32>` (§2.2.5.1.10).
    U32(u32),
    /// `<I64>` (§2.2.5.1.13).
    I64(i64),
    /// `<U64>` (§2.2.5.1.12).
    U64(u64),
    /// `<Sg>` (§2.2.5.1.14).
    F32(f32),
    /// `<Db>` (§2.2.5.1.15).
    F64(f64),
    /// `<D>`: a .NET decimal, as its text (§2.2.5.1.16).
    Decimal(String),
    /// `<S>` (§2.2.5.1.1).
    String(String),
    /// `<DT>`: an XML Schema `dateTime`, as its text (§2.2.5.1.4).
    DateTime(String),
    /// `<TS>`: a .NET TimeSpan as an XML Schema `duration` text, e.g. `PT9.0269S`
    /// (§2.2.5.1.5).
    Duration(String),
    /// `<BA>`: bytes, base64 on the wire (§2.2.5.1.17).
    Bytes(Vec<u8>),
    /// `<G>` (§2.2.5.1.18).
    Guid(Uuid),
    /// `<URI>` (§2.2.5.1.19).
    Uri(String),
    /// `<Version>`, e.g. `2.3` or `10.0.14393.2248` (§2.2.5.1.21).
    Version(String),
    /// `<XD>`: an XML document as text (§2.2.5.1.22).
    XmlDocument(String),
    /// `<SBK>`: a script block's text (§2.2.5.1.23).
    ScriptBlock(String),
    /// `<SS>`: a SecureString, encrypted with the session key (§2.2.5.1.24).
    SecureString(EncryptedString),
    /// `<Obj>` (§2.2.5.2); shared, because `<Ref>` can point at one object from
    /// several places.
    Object(Arc<PsObject>),
}

/// The ciphertext of a SecureString ([MS-PSRP] §2.2.5.1.24): AES-256-CBC under the
/// session key of the PUBLIC_KEY / ENCRYPTED_SESSION_KEY exchange (§2.2.2.3-4). This
/// layer never decrypts it; its `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptedString(pub(crate) Vec<u8>);

impl EncryptedString {
    /// Wraps ciphertext made with the session key.
    pub fn from_ciphertext(ciphertext: Vec<u8>) -> Self {
        EncryptedString(ciphertext)
    }

    /// The ciphertext bytes.
    pub fn ciphertext(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for EncryptedString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptedString({} bytes)", self.0.len())
    }
}

/// The collection an object holds ([MS-PSRP] §2.2.5.2.6).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Collection {
    /// `<LST>`: a list or array.
    List(Vec<PsValue>),
    /// `<STK>`: a stack.
    Stack(Vec<PsValue>),
    /// `<QUE>`: a queue.
    Queue(Vec<PsValue>),
    /// `<IE>`: any other enumerable.
    Enumerable(Vec<PsValue>),
    /// `<DCT>`: a dictionary of `<En>` entries with `Key` and `Value` (§2.2.5.2.6.3).
    Dictionary(Vec<(PsValue, PsValue)>),
}

impl Collection {
    /// The items of a list, stack, queue or enumerable; `None` for a dictionary.
    pub fn items(&self) -> Option<&[PsValue]> {
        match self {
            Collection::List(v)
            | Collection::Stack(v)
            | Collection::Queue(v)
            | Collection::Enumerable(v) => Some(v),
            Collection::Dictionary(_) => None,
        }
    }
}

/// A complex object ([MS-PSRP] §2.2.5.2).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct PsObject {
    /// Type names, most derived first (`<TN>`/`<TNRef>`, §2.2.5.2.3); shared because
    /// objects of one type repeat the same list.
    pub type_names: Arc<[String]>,
    /// `<ToString>` (§2.2.5.2.4).
    pub to_string: Option<String>,
    /// The primitive value the object wraps, e.g. an enum's number (§2.2.5.2.5).
    pub value: Option<PsValue>,
    /// The collection the object holds (§2.2.5.2.6).
    pub collection: Option<Collection>,
    /// Adapted properties, `<Props>` (§2.2.5.2.8), in document order.
    pub adapted: Vec<(String, PsValue)>,
    /// Extended properties, `<MS>` (§2.2.5.2.9), in document order.
    pub extended: Vec<(String, PsValue)>,
}

impl PsObject {
    /// An object with no type names and nothing in it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the type names (most derived first).
    #[must_use]
    pub fn with_type_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.type_names = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the type names to a shared list: a list built once (a `static`) and given
    /// to every object of the type costs no allocation per object, and the writer
    /// recognises it as the list it wrote before without comparing the names.
    #[must_use]
    pub fn with_shared_type_names(mut self, names: Arc<[String]>) -> Self {
        self.type_names = names;
        self
    }

    /// The type names of a .NET enum, most derived first: `type_name`, `System.Enum`,
    /// `System.ValueType`, `System.Object`.
    pub fn enum_type_names(type_name: &str) -> Arc<[String]> {
        [
            type_name,
            "System.Enum",
            "System.ValueType",
            "System.Object",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    }

    /// Sets the `ToString` text.
    #[must_use]
    pub fn with_to_string(mut self, text: impl Into<String>) -> Self {
        self.to_string = Some(text.into());
        self
    }

    /// Sets the wrapped primitive value.
    #[must_use]
    pub fn with_value(mut self, value: PsValue) -> Self {
        self.value = Some(value);
        self
    }

    /// Sets the collection.
    #[must_use]
    pub fn with_collection(mut self, collection: Collection) -> Self {
        self.collection = Some(collection);
        self
    }

    /// Appends an extended (`<MS>`) property.
    #[must_use]
    pub fn with_property(mut self, name: impl Into<String>, value: impl Into<PsValue>) -> Self {
        self.extended.push((name.into(), value.into()));
        self
    }

    /// Appends an adapted (`<Props>`) property.
    #[must_use]
    pub fn with_adapted(mut self, name: impl Into<String>, value: impl Into<PsValue>) -> Self {
        self.adapted.push((name.into(), value.into()));
        self
    }

    /// A .NET enum value: its type name, `System.Enum`, `System.ValueType`,
    /// `System.Object`, its `ToString` and its number as `<I32>` ([MS-PSRP]
    /// §2.2.5.2.7, the form Windows and PowerShell send).
    pub fn enumeration(type_name: &str, to_string: impl Into<String>, value: i32) -> Self {
        Self::shared_enumeration(Self::enum_type_names(type_name), to_string, value)
    }

    /// [`PsObject::enumeration`] with its type names made once
    /// ([`PsObject::enum_type_names`], shared as [`PsObject::with_shared_type_names`]
    /// says).
    pub fn shared_enumeration(
        type_names: Arc<[String]>,
        to_string: impl Into<String>,
        value: i32,
    ) -> Self {
        PsObject::new()
            .with_shared_type_names(type_names)
            .with_to_string(to_string)
            .with_value(PsValue::I32(value))
    }

    /// A list (`<LST>`) with the given .NET type names.
    pub fn list<S: Into<String>>(
        type_names: impl IntoIterator<Item = S>,
        items: Vec<PsValue>,
    ) -> Self {
        PsObject::new()
            .with_type_names(type_names)
            .with_collection(Collection::List(items))
    }

    /// A dictionary (`<DCT>`) typed `System.Collections.Hashtable`.
    pub fn hashtable(entries: Vec<(PsValue, PsValue)>) -> Self {
        PsObject::new()
            .with_type_names(["System.Collections.Hashtable", "System.Object"])
            .with_collection(Collection::Dictionary(entries))
    }

    /// The property named `name`, extended properties first, then adapted ones; an
    /// exact match first, else one that differs only in ASCII case (PowerShell's
    /// member names are case-insensitive, and peers differ: pypsrp sends `CI` where
    /// the spec says `ci`).
    pub fn property(&self, name: &str) -> Option<&PsValue> {
        let all = || self.extended.iter().chain(self.adapted.iter());
        all()
            .find(|(n, _)| n == name)
            .or_else(|| all().find(|(n, _)| n.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v)
    }

    /// All properties, extended then adapted, each name once: an extended property
    /// hides an adapted one of the same name (ASCII case aside), as in PowerShell's
    /// member lookup (a
    /// serialized object can carry both, e.g. an alias in `<MS>` over `<Props>`).
    pub fn properties(&self) -> impl Iterator<Item = (&str, &PsValue)> {
        let extended = &self.extended;
        extended
            .iter()
            .chain(
                self.adapted
                    .iter()
                    .filter(move |(n, _)| !extended.iter().any(|(e, _)| e.eq_ignore_ascii_case(n))),
            )
            .map(|(n, v)| (n.as_str(), v))
    }

    /// `true` when `name` is one of the type names.
    pub fn is_type(&self, name: &str) -> bool {
        self.type_names.iter().any(|t| t == name)
    }

    /// The number of an enum value (its wrapped integer), if this object is one.
    pub fn enum_value(&self) -> Option<i64> {
        if !self.is_type("System.Enum") {
            return None;
        }
        self.value.as_ref().and_then(PsValue::as_i64)
    }
}

impl PsValue {
    /// The object, if this is one.
    pub fn as_object(&self) -> Option<&PsObject> {
        match self {
            PsValue::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The text of a string-like value (`S`, `Version`, `URI`, `DT`, `TS`, `D`, `XD`,
    /// `SBK`), or of an object's `ToString`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PsValue::String(s)
            | PsValue::Version(s)
            | PsValue::Uri(s)
            | PsValue::DateTime(s)
            | PsValue::Duration(s)
            | PsValue::Decimal(s)
            | PsValue::XmlDocument(s)
            | PsValue::ScriptBlock(s) => Some(s),
            PsValue::Object(o) => o.to_string.as_deref(),
            _ => None,
        }
    }

    /// The value of an integer (any width, or an enum object's number) as `i64`, if it
    /// fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            PsValue::I8(v) => Some(v.into()),
            PsValue::U8(v) => Some(v.into()),
            PsValue::I16(v) => Some(v.into()),
            PsValue::U16(v) => Some(v.into()),
            PsValue::I32(v) => Some(v.into()),
            PsValue::U32(v) => Some(v.into()),
            PsValue::I64(v) => Some(v),
            PsValue::U64(v) => i64::try_from(v).ok(),
            PsValue::Object(ref o) => o.value.as_ref().and_then(PsValue::as_i64),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            PsValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The items of a list-like object, if this is one.
    pub fn as_list(&self) -> Option<&[PsValue]> {
        self.as_object()?.collection.as_ref()?.items()
    }

    /// The property named `name` of an object (see [`PsObject::property`]).
    pub fn property(&self, name: &str) -> Option<&PsValue> {
        self.as_object()?.property(name)
    }

    /// `true` for `Nil`.
    pub fn is_null(&self) -> bool {
        matches!(self, PsValue::Null)
    }
}

impl From<PsObject> for PsValue {
    fn from(o: PsObject) -> Self {
        PsValue::Object(Arc::new(o))
    }
}

impl From<&str> for PsValue {
    fn from(s: &str) -> Self {
        PsValue::String(s.to_string())
    }
}

impl From<String> for PsValue {
    fn from(s: String) -> Self {
        PsValue::String(s)
    }
}

impl From<bool> for PsValue {
    fn from(b: bool) -> Self {
        PsValue::Bool(b)
    }
}

impl From<i32> for PsValue {
    fn from(v: i32) -> Self {
        PsValue::I32(v)
    }
}

impl From<i64> for PsValue {
    fn from(v: i64) -> Self {
        PsValue::I64(v)
    }
}

// The PowerShell primitive of each Rust number, as [MS-PSRP] §2.2.5.1 names them:
// `i8` `<SB>`, `u8` `<By>`, `i16` `<I16>`, `u16` `<U16>`, `u32` `<U32>`, `u64` `<U64>`,
// `f32` `<Sg>`, `f64` `<Db>` (`i32` and `i64` above).
macro_rules! from_number {
    ($($t:ty => $variant:ident),* $(,)?) => {
        $(impl From<$t> for PsValue {
            fn from(v: $t) -> Self {
                PsValue::$variant(v)
            }
        })*
    };
}

from_number!(
    i8 => I8,
    u8 => U8,
    i16 => I16,
    u16 => U16,
    u32 => U32,
    u64 => U64,
    f32 => F32,
    f64 => F64,
);

/// A list: `<Obj>` typed `System.Object[]` holding `<LST>` (as PowerShell serializes
/// an array, and as [`crate::psrp::to_value`] writes a sequence), each item converted.
/// A `Vec<u8>` is thus a list of `<By>`; for a .NET `byte[]` (`<BA>`) use
/// [`PsValue::Bytes`].
///
/// ```
/// use wsman_protocol::psrp::PsValue;
/// let v = PsValue::from(vec!["a", "b"]);
/// assert_eq!(v.as_list(), Some(&["a".into(), "b".into()][..]));
/// assert!(v.as_object().unwrap().is_type("System.Object[]"));
/// ```
impl<T: Into<PsValue>> From<Vec<T>> for PsValue {
    fn from(items: Vec<T>) -> Self {
        PsObject::list(
            super::ser::OBJECT_ARRAY,
            items.into_iter().map(Into::into).collect(),
        )
        .into()
    }
}

impl From<Uuid> for PsValue {
    fn from(v: Uuid) -> Self {
        PsValue::Guid(v)
    }
}

impl<T: Into<PsValue>> From<Option<T>> for PsValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(PsValue::Null, Into::into)
    }
}

#[cfg(test)]
mod from_tests {
    use super::*;

    #[test]
    fn rust_values_convert_to_the_primitive_powershell_uses() {
        assert_eq!(PsValue::from(-3i8), PsValue::I8(-3));
        assert_eq!(PsValue::from(200u8), PsValue::U8(200));
        assert_eq!(PsValue::from(-300i16), PsValue::I16(-300));
        assert_eq!(PsValue::from(60_000u16), PsValue::U16(60_000));
        assert_eq!(PsValue::from(4_000_000_000u32), PsValue::U32(4_000_000_000));
        assert_eq!(PsValue::from(u64::MAX), PsValue::U64(u64::MAX));
        assert_eq!(PsValue::from(1.5f32), PsValue::F32(1.5));
        assert_eq!(PsValue::from(2.25f64), PsValue::F64(2.25));
        assert_eq!(PsValue::from(None::<u64>), PsValue::Null);
        assert_eq!(PsValue::from(Some(7u32)), PsValue::U32(7));
        let list = PsValue::from(vec![1u64, 2]);
        let obj = list.as_object().unwrap();
        assert_eq!(&obj.type_names[..], &super::super::ser::OBJECT_ARRAY[..]);
        assert_eq!(
            obj.collection,
            Some(Collection::List(vec![PsValue::U64(1), PsValue::U64(2)]))
        );
        // Nested: a list of optional strings.
        let nested = PsValue::from(vec![Some("a"), None]);
        assert_eq!(
            nested.as_list(),
            Some(&[PsValue::String("a".into()), PsValue::Null][..])
        );
    }
}
