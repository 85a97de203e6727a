//! CIM values as WS-Management carries them: instances with ordered properties,
//! strings, numbers, booleans, arrays, nil, embedded instances, references (EPRs),
//! datetimes and intervals. Read from response XML, written into request bodies.

use std::fmt;
use std::time::Duration;

use super::envelope::{Selector, SelectorValue, XmlWriter, write_epr};
use super::ns;
use super::xml::Element;

/// An endpoint reference: how WS-Management names an instance (`a:Address` plus
/// `a:ReferenceParameters` with ResourceURI and SelectorSet). Usable for Get and Invoke.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EndpointReference {
    /// `a:Address`.
    pub address: String,
    /// `w:ResourceURI`.
    pub resource_uri: String,
    /// `w:SelectorSet`.
    pub selectors: Vec<Selector>,
}

impl EndpointReference {
    /// Reads an EPR from an element holding `a:Address` and `a:ReferenceParameters`
    /// (or `a:ReferenceProperties`).
    pub fn from_element(el: &Element) -> Option<EndpointReference> {
        let address = el.child(ns::ADDRESSING, "Address")?.text.trim().to_string();
        let params = el
            .child(ns::ADDRESSING, "ReferenceParameters")
            .or_else(|| el.child(ns::ADDRESSING, "ReferenceProperties"))?;
        let resource_uri = params.child_text(ns::WSMAN, "ResourceURI")?.to_string();
        let selectors = params
            .child(ns::WSMAN, "SelectorSet")
            .map(read_selector_set)
            .unwrap_or_default();
        Some(EndpointReference {
            address,
            resource_uri,
            selectors,
        })
    }

    /// The text value of selector `name` (case-insensitive).
    pub fn selector(&self, name: &str) -> Option<&str> {
        self.selectors
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(name))
            .and_then(Selector::text)
    }
}

/// Reads a `w:SelectorSet` element.
pub fn read_selector_set(set: &Element) -> Vec<Selector> {
    set.children_named(ns::WSMAN, "Selector")
        .map(|s| Selector {
            name: s.attr("Name").unwrap_or("").to_string(),
            value: match s
                .children
                .iter()
                .find(|c| c.is(ns::ADDRESSING, "EndpointReference"))
                .and_then(EndpointReference::from_element)
                .or_else(|| EndpointReference::from_element(s))
            {
                Some(epr) => SelectorValue::Reference(Box::new(epr)),
                None => SelectorValue::Text(s.text.trim().to_string()),
            },
        })
        .collect()
}

/// A name given for an XML element (a class, property or method name) that is not an
/// XML `NCName`, refused before anything is written or sent.
///
/// Instance, property and method names become element names in Put, Create and Invoke
/// bodies (`<p:Win32_Service>`, `<p:StartMode>`, `<p:Create_INPUT>`); written as given,
/// `"Start Mode"` would break the request and `"A>x</p:A><p:B"` would add markup to it.
/// Values, selector names and option names are escaped text and need no such check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} {name:?} is not a valid XML element name (an XML 1.0 NCName: a letter or `_` first, then letters, digits, `_`, `-` or `.`; no spaces or `:`)"
)]
pub struct InvalidName {
    /// What the name is for: `"property name"`, `"class name"` or `"method name"`.
    pub what: &'static str,
    /// The name as given.
    pub name: String,
}

/// Whether `c` may start an XML 1.0 (fifth edition) `NCName`: `NameStartChar` without `:`.
fn is_name_start_char(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

/// Whether `c` may follow in an XML 1.0 (fifth edition) `NCName`: `NameChar` without `:`.
fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Whether `name` is an XML `NCName` (Namespaces in XML 1.0): an XML 1.0 (fifth
/// edition) name without `:`. In ASCII: a letter or `_` first, then letters, digits,
/// `_`, `-` and `.`. Non-ASCII letters are accepted as XML 1.0 allows them (CIM
/// identifiers may hold them too); spaces, `:`, markup characters and an empty name
/// are not.
pub fn is_ncname(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
}

/// `Ok` when `name` is an XML `NCName` ([`is_ncname`]), else [`InvalidName`] naming it.
///
/// # Errors
/// [`InvalidName`] with `what` and the name.
pub fn check_name(what: &'static str, name: &str) -> Result<(), InvalidName> {
    if is_ncname(name) {
        Ok(())
    } else {
        Err(InvalidName {
            what,
            name: name.to_string(),
        })
    }
}

/// A CIM datetime (`cim:Datetime`, xs:dateTime, or the DMTF `yyyymmddHHMMSS.mmmmmmsUUU`
/// form), kept as written with its parsed parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CimDateTime {
    /// The text as received.
    pub raw: String,
    /// Year.
    pub year: i32,
    /// Month 1-12.
    pub month: u8,
    /// Day 1-31.
    pub day: u8,
    /// Hour.
    pub hour: u8,
    /// Minute.
    pub minute: u8,
    /// Second.
    pub second: u8,
    /// Nanoseconds.
    pub nanos: u32,
    /// Offset from UTC in minutes, when given.
    pub offset_minutes: Option<i32>,
}

impl CimDateTime {
    /// Parses `2024-01-31T12:34:56.123456Z`, `...+01:00`, or DMTF `20240131123456.123456+060`.
    pub fn parse(s: &str) -> Option<CimDateTime> {
        let t = s.trim();
        if t.len() >= 19 && t.as_bytes().get(4) == Some(&b'-') {
            Self::parse_xs(t)
        } else if t.len() >= 14 && t.as_bytes()[..14].iter().all(u8::is_ascii_digit) {
            Self::parse_dmtf(t)
        } else {
            None
        }
    }

    fn parse_xs(t: &str) -> Option<CimDateTime> {
        let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<u32>().ok();
        let b = t.as_bytes();
        if b.get(7) != Some(&b'-') || b.get(10) != Some(&b'T') || b.get(13) != Some(&b':') {
            return None;
        }
        let (year, month, day) = (num(0..4)? as i32, num(5..7)? as u8, num(8..10)? as u8);
        let (hour, minute, second) = (num(11..13)? as u8, num(14..16)? as u8, num(17..19)? as u8);
        let mut rest = t.get(19..)?;
        let mut nanos = 0u32;
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            let f = &frac[..digits];
            for (i, c) in f.bytes().take(9).enumerate() {
                nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
            }
            rest = &frac[digits..];
        }
        let offset_minutes = match rest {
            "" => None,
            "Z" => Some(0),
            o if (o.starts_with('+') || o.starts_with('-')) && o.len() == 6 => {
                let h: i32 = o.get(1..3)?.parse().ok()?;
                let m: i32 = o.get(4..6)?.parse().ok()?;
                let v = h * 60 + m;
                Some(if o.starts_with('-') { -v } else { v })
            }
            _ => return None,
        };
        let dt = CimDateTime {
            raw: t.to_string(),
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos,
            offset_minutes,
        };
        dt.valid().then_some(dt)
    }

    fn parse_dmtf(t: &str) -> Option<CimDateTime> {
        let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<u32>().ok();
        let mut nanos = 0;
        if t.as_bytes().get(14) == Some(&b'.') {
            nanos = num(15..21)? * 1000;
        }
        let offset_minutes = match t.get(21..22) {
            Some(sign @ ("+" | "-")) => {
                let v: i32 = t.get(22..25)?.parse().ok()?;
                Some(if sign == "-" { -v } else { v })
            }
            _ => None,
        };
        let dt = CimDateTime {
            raw: t.to_string(),
            year: num(0..4)? as i32,
            month: num(4..6)? as u8,
            day: num(6..8)? as u8,
            hour: num(8..10)? as u8,
            minute: num(10..12)? as u8,
            second: num(12..14)? as u8,
            nanos,
            offset_minutes,
        };
        dt.valid().then_some(dt)
    }

    fn valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second < 61
    }
}

impl fmt::Display for CimDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Parses an `xs:duration` such as `PT60S`, `P1DT2H3M4.5S`, `PT7200.000S`.
/// Years and months are refused (they have no fixed length).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total = Duration::ZERO;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let (_, secs) = units.iter().find(|(u, _)| *u == c)?;
                let v: f64 = num.parse().ok()?;
                if !v.is_finite() || !(0.0..=1e12).contains(&v) {
                    return None;
                }
                // Repeated units ("P9W9W9W...") must not overflow: refuse, never panic.
                total = total.checked_add(Duration::try_from_secs_f64(v * secs).ok()?)?;
                num.clear();
                any = true;
            }
        }
        num.is_empty().then_some(())
    };
    take(date, &[('D', 86400.0), ('W', 604800.0)])?;
    if let Some(t) = time {
        if t.is_empty() {
            return None;
        }
        take(t, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    any.then_some(total)
}

/// A CIM property value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// `xsi:nil="true"`.
    Null,
    /// A boolean (when writing; responses carry text).
    Bool(bool),
    /// A signed integer (when writing).
    Int(i64),
    /// An unsigned integer (when writing).
    UInt(u64),
    /// A real number (when writing).
    Real(f64),
    /// Text. Responses carry every scalar as text; the typed accessors parse it.
    String(String),
    /// A datetime.
    DateTime(CimDateTime),
    /// A time interval.
    Interval(Duration),
    /// A reference to another instance.
    Reference(Box<EndpointReference>),
    /// An embedded instance.
    Instance(Box<Instance>),
    /// An array (repeated property elements).
    Array(Vec<Value>),
}

impl Value {
    /// The text of a scalar value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            Value::DateTime(d) => Some(&d.raw),
            _ => None,
        }
    }

    /// The value as a boolean (`true`/`false`, case-insensitive, or 1/0).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::String(s) => match s.trim() {
                t if t.eq_ignore_ascii_case("true") || t == "1" => Some(true),
                t if t.eq_ignore_ascii_case("false") || t == "0" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// The value as a signed integer.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            Value::UInt(v) => i64::try_from(*v).ok(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as an unsigned integer.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::UInt(v) => Some(*v),
            Value::Int(v) => u64::try_from(*v).ok(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as a real number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Real(v) => Some(*v),
            Value::Int(v) => Some(*v as f64),
            Value::UInt(v) => Some(*v as f64),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as a datetime (parsing text when needed).
    pub fn as_datetime(&self) -> Option<CimDateTime> {
        match self {
            Value::DateTime(d) => Some(d.clone()),
            Value::String(s) => CimDateTime::parse(s),
            _ => None,
        }
    }

    /// The embedded instance.
    pub fn as_instance(&self) -> Option<&Instance> {
        match self {
            Value::Instance(i) => Some(i),
            _ => None,
        }
    }

    /// The reference.
    pub fn as_reference(&self) -> Option<&EndpointReference> {
        match self {
            Value::Reference(r) => Some(r),
            _ => None,
        }
    }

    /// The elements of an array; a scalar is an array of one (WS-Management sends a
    /// one-element array as a single element).
    pub fn as_slice(&self) -> &[Value] {
        match self {
            Value::Array(v) => v,
            Value::Null => &[],
            other => std::slice::from_ref(other),
        }
    }

    /// True for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    fn text_for_xml(&self) -> Option<String> {
        Some(match self {
            Value::Bool(b) => b.to_string(),
            Value::Int(v) => v.to_string(),
            Value::UInt(v) => v.to_string(),
            Value::Real(v) => v.to_string(),
            Value::String(s) => s.clone(),
            _ => return None,
        })
    }

    /// Reads one property element: nil, datetime/interval/reference wrappers, embedded
    /// instance, or text.
    pub fn from_element(el: &Element) -> Value {
        if el.is_nil() {
            return Value::Null;
        }
        if el.children.is_empty() {
            return Value::String(el.text.clone());
        }
        if let Some(d) = el
            .child(ns::CIM_COMMON, "Datetime")
            .or_else(|| el.child(ns::CIM_COMMON, "Date"))
        {
            return match CimDateTime::parse(&d.text) {
                Some(dt) => Value::DateTime(dt),
                None => Value::String(d.text.trim().to_string()),
            };
        }
        if let Some(i) = el.child(ns::CIM_COMMON, "Interval") {
            return match parse_duration(&i.text) {
                Some(d) => Value::Interval(d),
                None => Value::String(i.text.trim().to_string()),
            };
        }
        if let Some(epr) = EndpointReference::from_element(el) {
            return Value::Reference(Box::new(epr));
        }
        if el.children.len() == 1
            && el.children[0].children.is_empty()
            && el.children[0].ns.as_deref() == Some(ns::CIM_COMMON)
        {
            return Value::String(el.children[0].text.clone());
        }
        Value::Instance(Box::new(Instance::from_element(el)))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(v.into())
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::UInt(v.into())
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::UInt(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

/// A CIM instance: a class name, the resource namespace, and properties in document order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Instance {
    /// Class name, e.g. `Win32_Service` (the element name, `_Type`/`_INPUT` suffixes kept).
    pub class_name: String,
    /// The namespace URI of the instance element (usually the resource URI).
    pub namespace: Option<String>,
    /// Properties in document order; repeated elements are folded into arrays.
    pub properties: Vec<(String, Value)>,
}

impl Instance {
    /// An empty instance of `class_name`.
    pub fn new(class_name: impl Into<String>) -> Self {
        Instance {
            class_name: class_name.into(),
            ..Default::default()
        }
    }

    /// Builder: adds a property.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.properties.push((name.into(), value.into()));
        self
    }

    /// The property `name` (exact match first, then case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.properties
            .iter()
            .find(|(n, _)| n == name)
            .or_else(|| {
                self.properties
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
            })
            .map(|(_, v)| v)
    }

    /// The text of property `name`.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Value::as_str)
    }

    /// Reads an instance element (`p:Win32_Service`, `w:XmlFragment`, ...).
    pub fn from_element(el: &Element) -> Instance {
        let mut properties: Vec<(String, Value)> = Vec::with_capacity(el.children.len());
        for c in &el.children {
            let v = Value::from_element(c);
            // Repeated property elements are an array; they are adjacent in practice.
            match properties.last_mut() {
                Some((name, prev)) if *name == c.name => match prev {
                    Value::Array(items) => items.push(v),
                    _ => {
                        let first = std::mem::replace(prev, Value::Null);
                        *prev = Value::Array(vec![first, v]);
                    }
                },
                _ => properties.push((c.name.clone(), v)),
            }
        }
        let class_name = el
            .name
            .strip_suffix("_Type")
            .unwrap_or(&el.name)
            .to_string();
        Instance {
            class_name,
            namespace: el.ns.as_deref().map(str::to_string),
            properties,
        }
    }

    /// Checks every name [`Instance::write`] would write as an element name: `element_name`
    /// (the class name, or `{method}_INPUT`) and the property names, those of embedded
    /// instances (in arrays too) included. Call it before writing: `write` writes names
    /// as given.
    ///
    /// # Errors
    /// [`InvalidName`] for the first name that is not an XML `NCName` ([`is_ncname`]).
    pub fn check_names(&self, element_name: &str) -> Result<(), InvalidName> {
        check_name("class name", element_name)?;
        self.check_property_names()
    }

    /// Checks the property names of this instance and of the instances embedded in it
    /// (the class name is not written for an embedded instance, nor for Invoke input).
    ///
    /// # Errors
    /// [`InvalidName`] for the first property name that is not an XML `NCName`.
    pub fn check_property_names(&self) -> Result<(), InvalidName> {
        fn check_value(v: &Value) -> Result<(), InvalidName> {
            match v {
                Value::Instance(i) => i.check_property_names(),
                Value::Array(items) => items.iter().try_for_each(check_value),
                _ => Ok(()),
            }
        }
        self.properties.iter().try_for_each(|(name, v)| {
            check_name("property name", name)?;
            check_value(v)
        })
    }

    /// Writes this instance as `<p:Class xmlns:p="uri">...</p:Class>` with the given
    /// element name (for Put, Create and Invoke input).
    ///
    /// Names are written as given: check them first with [`Instance::check_names`]
    /// (the client does before Put, Create and Invoke).
    pub fn write(&self, w: &mut XmlWriter, element_name: &str, uri: &str) {
        w.raw("<p:");
        w.raw(element_name);
        w.raw(" xmlns:p=\"");
        w.attr_text(uri);
        w.raw("\" xmlns:xsi=\"");
        w.raw(ns::XSI);
        w.raw("\" xmlns:cim=\"");
        w.raw(ns::CIM_COMMON);
        w.raw("\">");
        self.write_properties(w);
        w.raw("</p:");
        w.raw(element_name);
        w.raw(">");
    }

    fn write_properties(&self, w: &mut XmlWriter) {
        for (name, value) in &self.properties {
            write_value(w, name, value);
        }
    }
}

fn write_value(w: &mut XmlWriter, name: &str, value: &Value) {
    let open = |w: &mut XmlWriter, extra: &str| {
        w.raw("<p:");
        w.raw(name);
        w.raw(extra);
        w.raw(">");
    };
    let close = |w: &mut XmlWriter| {
        w.raw("</p:");
        w.raw(name);
        w.raw(">");
    };
    match value {
        Value::Null => {
            w.raw("<p:");
            w.raw(name);
            w.raw(" xsi:nil=\"true\"/>");
        }
        Value::Array(items) => {
            for v in items {
                write_value(w, name, v);
            }
        }
        Value::DateTime(d) => {
            open(w, "");
            w.element("cim:Datetime", &d.raw);
            close(w);
        }
        Value::Interval(d) => {
            open(w, "");
            w.element("cim:Interval", &super::envelope::format_duration(*d));
            close(w);
        }
        Value::Reference(epr) => {
            open(w, "");
            write_epr(w, epr);
            close(w);
        }
        Value::Instance(inst) => {
            open(w, "");
            inst.write_properties(w);
            close(w);
        }
        scalar => {
            open(w, "");
            w.text(&scalar.text_for_xml().unwrap_or_default());
            close(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    #[test]
    fn instance_with_arrays_nil_datetime_reference_and_embedded() {
        let xml = br#"<p:Win32_Service xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">
          <p:Name>WinRM</p:Name><p:Started>true</p:Started><p:ProcessId>1234</p:ProcessId>
          <p:Desc xsi:nil="true"/><p:Deps>RPCSS</p:Deps><p:Deps>HTTP</p:Deps>
          <p:InstallDate><cim:Datetime>2024-01-31T12:34:56.5+01:00</cim:Datetime></p:InstallDate>
          <p:Up><cim:Interval>P1DT2H0.5S</cim:Interval></p:Up>
          <p:Ref><a:Address>http://h/wsman</a:Address><a:ReferenceParameters><w:ResourceURI>http://r</w:ResourceURI><w:SelectorSet><w:Selector Name="Name">x</w:Selector></w:SelectorSet></a:ReferenceParameters></p:Ref>
          <p:Inner><p:A>1</p:A></p:Inner>
        </p:Win32_Service>"#;
        let inst = Instance::from_element(&parse(xml).unwrap());
        assert_eq!(inst.class_name, "Win32_Service");
        assert_eq!(inst.get_str("Name"), Some("WinRM"));
        assert_eq!(inst.get("started").unwrap().as_bool(), Some(true));
        assert_eq!(inst.get("ProcessId").unwrap().as_u64(), Some(1234));
        assert!(inst.get("Desc").unwrap().is_null());
        assert_eq!(inst.get("Deps").unwrap().as_slice().len(), 2);
        let dt = inst.get("InstallDate").unwrap().as_datetime().unwrap();
        assert_eq!(
            (dt.year, dt.month, dt.second, dt.nanos, dt.offset_minutes),
            (2024, 1, 56, 500_000_000, Some(60))
        );
        assert_eq!(
            inst.get("Up"),
            Some(&Value::Interval(Duration::from_millis(93_600_500)))
        );
        assert_eq!(
            inst.get("Ref")
                .unwrap()
                .as_reference()
                .unwrap()
                .selector("name"),
            Some("x")
        );
        assert_eq!(
            inst.get("Inner")
                .unwrap()
                .as_instance()
                .unwrap()
                .get_str("A"),
            Some("1")
        );
        let names: Vec<_> = inst.properties.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "Name",
                "Started",
                "ProcessId",
                "Desc",
                "Deps",
                "InstallDate",
                "Up",
                "Ref",
                "Inner"
            ]
        );
    }

    #[test]
    fn ncnames() {
        for good in [
            "StartMode",
            "_x",
            "Create_INPUT",
            "a-b.c_1",
            "x1",
            "Ünïcode",
            "名前",
            "a\u{B7}b",
            "xmlLike",
        ] {
            assert!(is_ncname(good), "{good:?}");
            assert_eq!(check_name("property name", good), Ok(()));
        }
        for bad in [
            "",
            "Start Mode",
            "1st",
            "-x",
            ".x",
            "p:x",
            "a>b",
            "a<b",
            "a&b",
            "a\"b",
            "a'b",
            "a/b",
            "a\tb",
            "a\nb",
            "a=b",
            "\u{B7}a",
            "\u{300}a",
            "a\u{D7}b",
            "a\u{FFFE}",
            "StartMode>Manual</p:StartMode><p:State",
        ] {
            assert!(!is_ncname(bad), "{bad:?}");
            let e = check_name("method name", bad).unwrap_err();
            assert_eq!((e.what, e.name.as_str()), ("method name", bad));
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn check_names_covers_class_properties_and_embedded_instances() {
        let ok = Instance::new("Win32_Service")
            .with("StartMode", "Manual <x> & \"y\"")
            .with(
                "Inner",
                Value::Array(vec![
                    Value::Null,
                    Value::Instance(Box::new(Instance::new("ignored name").with("A", 1i64))),
                ]),
            );
        assert_eq!(ok.check_names("Win32_Service"), Ok(()));
        assert_eq!(ok.check_property_names(), Ok(()));
        let e = ok.check_names("Win32 Service").unwrap_err();
        assert_eq!((e.what, e.name.as_str()), ("class name", "Win32 Service"));

        let flat = Instance::new("C").with("Start Mode", "Manual");
        let e = flat.check_names("C").unwrap_err();
        assert_eq!((e.what, e.name.as_str()), ("property name", "Start Mode"));

        let deep = Instance::new("C").with(
            "Outer",
            Value::Instance(Box::new(Instance::new("D").with(
                "Mid",
                Value::Array(vec![Value::Instance(Box::new(
                    Instance::new("E").with("x>y", "1"),
                ))]),
            ))),
        );
        assert_eq!(deep.check_property_names().unwrap_err().name, "x>y");

        // Every checked name written is read back as the same element: no markup added.
        let mut w = XmlWriter::default();
        ok.write(&mut w, "Win32_Service", "http://r");
        let back = Instance::from_element(&parse(w.as_str().as_bytes()).unwrap());
        assert_eq!(back.get_str("StartMode"), Some("Manual <x> & \"y\""));
        assert_eq!(back.properties.len(), 2);
    }

    #[test]
    fn datetimes_and_durations() {
        let d = CimDateTime::parse("20240131123456.123456+060").unwrap();
        assert_eq!(
            (d.year, d.day, d.nanos, d.offset_minutes),
            (2024, 31, 123_456_000, Some(60))
        );
        assert!(CimDateTime::parse("2024-13-01T00:00:00Z").is_none());
        assert!(CimDateTime::parse("garbage").is_none());
        assert_eq!(
            parse_duration("PT7200.000S"),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(parse_duration("P0DT0H0M0S"), Some(Duration::ZERO));
        assert_eq!(parse_duration("PT"), None);
        assert_eq!(parse_duration("P1Y"), None);
        assert_eq!(parse_duration("PT1e400S"), None);
        assert_eq!(
            parse_duration(&format!("P{}", "999999999999W".repeat(40))),
            None
        );
    }

    #[test]
    fn writes_and_reads_back() {
        let inst = Instance::new("Win32_Process")
            .with("CommandLine", "notepad <x>")
            .with("Flags", 3u32)
            .with("Nothing", Value::Null)
            .with("List", Value::Array(vec![1i64.into(), 2i64.into()]));
        let mut w = XmlWriter::default();
        inst.write(&mut w, "Create_INPUT", "http://r/Win32_Process");
        let back = Instance::from_element(&parse(w.as_str().as_bytes()).unwrap());
        assert_eq!(back.class_name, "Create_INPUT");
        assert_eq!(back.get_str("CommandLine"), Some("notepad <x>"));
        assert_eq!(back.get("Flags").unwrap().as_u64(), Some(3));
        assert!(back.get("Nothing").unwrap().is_null());
        assert_eq!(back.get("List").unwrap().as_slice().len(), 2);
    }
}
