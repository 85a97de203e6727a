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
    /// Checks the address, resource URI and selectors with
    /// [`check_text`](crate::envelope::check_text).
    ///
    /// # Errors
    /// [`InvalidText`](crate::envelope::InvalidText) for the first text XML cannot
    /// carry.
    pub fn check_text(&self) -> Result<(), crate::envelope::InvalidText> {
        use crate::envelope::check_text;
        check_text("endpoint reference address", "", &self.address)?;
        check_text("endpoint reference resource URI", "", &self.resource_uri)?;
        crate::envelope::check_selectors(&self.selectors)
    }

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
                None => SelectorValue::Text(s.text.clone()),
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
/// Values, selector names and option names are escaped text and need no such check,
/// only that of the characters XML cannot carry at all
/// ([`InvalidText`](crate::envelope::InvalidText)).
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

/// A CIM datetime or date, kept as written with its parsed parts: `cim:Datetime`
/// (an `xs:dateTime`, or the DMTF `yyyymmddHHMMSS.mmmmmmsUUU` form) or `cim:Date` (an
/// `xs:date`: a day without a time of day, see [`CimDateTime::is_date`]).
///
/// Parsing refuses impossible values: months 1-12, days within the month (29 February
/// in leap years only), hours 0-23, minutes and seconds 0-59 (`xs:dateTime` has no
/// leap second 60, and Windows never writes one), time zones within ±14:00. Values are
/// written back as [`CimDateTime::raw`], so a round trip is exact.
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
    /// Hour (0 for a date).
    pub hour: u8,
    /// Minute (0 for a date).
    pub minute: u8,
    /// Second (0 for a date).
    pub second: u8,
    /// Nanoseconds (0 for a date).
    pub nanos: u32,
    /// Offset from UTC in minutes, when given.
    pub offset_minutes: Option<i32>,
}

/// The value of the ASCII digits `t[r]`, `None` for anything else (no sign, no space).
fn digits(t: &str, r: std::ops::Range<usize>) -> Option<u32> {
    let d = t.get(r)?;
    if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    d.parse().ok()
}

/// The days of `month` (1-12) in `year` (proleptic Gregorian calendar).
fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

impl CimDateTime {
    /// Parses an `xs:dateTime` (`2024-01-31T12:34:56.123456Z`, `...+01:00`, no zone),
    /// an `xs:date` (`2024-01-31`, `2024-01-31Z`, `2024-01-31+02:00`), or the DMTF
    /// form (`20240131123456.123456+060`). `None` for anything else, impossible dates
    /// and times included (`2024-02-30`, `24:00:00`, `12:00:60`).
    pub fn parse(s: &str) -> Option<CimDateTime> {
        let t = s.trim();
        if t.as_bytes().get(4) == Some(&b'-') {
            Self::parse_xs(t)
        } else if t.len() >= 14 && t.as_bytes()[..14].iter().all(u8::is_ascii_digit) {
            Self::parse_dmtf(t)
        } else {
            None
        }
    }

    /// True for a date (`xs:date`, written as `cim:Date`): a day without a time of day,
    /// whose hour, minute, second and nanos are 0 and mean nothing.
    pub fn is_date(&self) -> bool {
        let b = self.raw.as_bytes();
        b.get(4) == Some(&b'-') && b.get(10) != Some(&b'T')
    }

    fn parse_xs(t: &str) -> Option<CimDateTime> {
        let b = t.as_bytes();
        if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
            return None;
        }
        let year = digits(t, 0..4)? as i32;
        let (month, day) = (digits(t, 5..7)? as u8, digits(t, 8..10)? as u8);
        let (mut hour, mut minute, mut second, mut nanos) = (0, 0, 0, 0u32);
        let mut rest = t.get(10..)?;
        if let Some(time) = rest.strip_prefix('T') {
            let tb = time.as_bytes();
            if tb.get(2) != Some(&b':') || tb.get(5) != Some(&b':') {
                return None;
            }
            hour = digits(time, 0..2)? as u8;
            minute = digits(time, 3..5)? as u8;
            second = digits(time, 6..8)? as u8;
            rest = time.get(8..)?;
            if let Some(frac) = rest.strip_prefix('.') {
                let n = frac.bytes().take_while(u8::is_ascii_digit).count();
                if n == 0 {
                    return None;
                }
                for (i, c) in frac.bytes().take(n.min(9)).enumerate() {
                    nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
                }
                rest = &frac[n..];
            }
        }
        let offset_minutes = match rest {
            "" => None,
            "Z" => Some(0),
            o if (o.starts_with('+') || o.starts_with('-'))
                && o.len() == 6
                && o.as_bytes()[3] == b':' =>
            {
                let (h, m) = (digits(o, 1..3)? as i32, digits(o, 4..6)? as i32);
                if m >= 60 || h * 60 + m > 14 * 60 {
                    return None;
                }
                Some(if o.starts_with('-') {
                    -(h * 60 + m)
                } else {
                    h * 60 + m
                })
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

    /// `yyyymmddHHMMSS`, then optionally `.mmmmmm`, then optionally `+UUU`/`-UUU` (minutes).
    fn parse_dmtf(t: &str) -> Option<CimDateTime> {
        let mut nanos = 0;
        let mut rest = t.get(14..)?;
        if let Some(frac) = rest.strip_prefix('.') {
            nanos = digits(frac, 0..6)? * 1000;
            rest = frac.get(6..)?;
        }
        let offset_minutes = match rest.as_bytes().first() {
            None => None,
            Some(sign @ (b'+' | b'-')) if rest.len() == 4 => {
                let v = digits(rest, 1..4)? as i32;
                Some(if *sign == b'-' { -v } else { v })
            }
            _ => return None,
        };
        let dt = CimDateTime {
            raw: t.to_string(),
            year: digits(t, 0..4)? as i32,
            month: digits(t, 4..6)? as u8,
            day: digits(t, 6..8)? as u8,
            hour: digits(t, 8..10)? as u8,
            minute: digits(t, 10..12)? as u8,
            second: digits(t, 12..14)? as u8,
            nanos,
            offset_minutes,
        };
        dt.valid().then_some(dt)
    }

    fn valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && (1..=days_in_month(self.year, self.month)).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60
    }
}

impl fmt::Display for CimDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Parses an `xs:duration` such as `PT60S`, `P1DT2H3M4.5S`, `PT7200.000S`.
/// Years and months are refused (they have no fixed length). Exact to the nanosecond
/// (decimal arithmetic, no floating point: `PT259205.1234567S` is 259205 s and
/// 123456700 ns), a fraction finer than that rounded to the nearest nanosecond.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let rest = s.strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut total: u128 = 0;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, u64)]| -> Option<()> {
        let mut from = 0;
        for (i, c) in part.char_indices() {
            if c.is_ascii_digit() || c == '.' {
                continue;
            }
            let (_, secs) = units.iter().find(|(u, _)| *u == c)?;
            // Repeated units ("P9W9W9W...") must not overflow: refuse, never panic.
            total = total.checked_add(duration_part_nanos(&part[from..i], *secs)?)?;
            from = i + c.len_utf8();
            any = true;
        }
        (from == part.len()).then_some(())
    };
    take(date, &[('D', 86400), ('W', 604_800)])?;
    if let Some(t) = time {
        if t.is_empty() {
            return None;
        }
        take(t, &[('H', 3600), ('M', 60), ('S', 1)])?;
    }
    if !any {
        return None;
    }
    let secs = u64::try_from(total / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Nanoseconds in `number` (decimal digits with at most one `.`, at most 10^12) units
/// of `unit_secs` seconds, rounded to the nearest nanosecond.
fn duration_part_nanos(number: &str, unit_secs: u64) -> Option<u128> {
    const NANOS: u128 = 1_000_000_000;
    const MAX_WHOLE: u128 = 1_000_000_000_000;
    /// Fraction digits taken into account: enough for a nanosecond of a week.
    const MAX_DIGITS: usize = 18;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let whole_value = whole.bytes().try_fold(0u128, |acc, b| {
        let v = acc * 10 + u128::from(b - b'0');
        (v <= MAX_WHOLE).then_some(v)
    })?;
    let fraction = &fraction[..fraction.len().min(MAX_DIGITS)];
    if whole_value == MAX_WHOLE && fraction.bytes().any(|b| b != b'0') {
        return None;
    }
    let fraction_value = fraction
        .bytes()
        .fold(0u128, |acc, b| acc * 10 + u128::from(b - b'0'));
    let unit = u128::from(unit_secs) * NANOS;
    let scale = 10u128.pow(fraction.len() as u32);
    // Rounded half up: (2fu + scale) / 2scale.
    let fraction_nanos = (2 * fraction_value * unit + scale) / (2 * scale);
    Some(whole_value * unit + fraction_nanos)
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
    /// An array (repeated property elements). An empty one has no element to write, so
    /// in a Put, Create or Invoke it leaves the property out (what a Put then does with
    /// it is the provider's; the simulator keeps the old value): to clear a property,
    /// write [`Value::Null`] (`xsi:nil`). Read back, an array property that is absent or nil
    /// is not an array either: use `#[serde(default)]` for a `Vec` field.
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
///
/// An array property is as many elements as it has items: one item reads as a scalar,
/// none as no property at all. Deserializing with serde ([`crate::de::from_instance`]),
/// mark `Vec` fields `#[serde(default)]` (see [`crate::de`], "Empty arrays").
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

    /// Checks every text [`Instance::write`] would write that XML could fail to carry:
    /// property values (of embedded instances and in arrays too, the values of
    /// references included) and the namespace URI. Names are [`Instance::check_names`]'
    /// business.
    ///
    /// # Errors
    /// [`InvalidText`](crate::envelope::InvalidText) for the first value holding a
    /// character XML 1.0 cannot carry, named by its property (`Outer.Inner`, `Name[2]`).
    pub fn check_text(&self) -> Result<(), crate::envelope::InvalidText> {
        fn check_value(v: &Value) -> Result<(), crate::envelope::InvalidText> {
            match v {
                Value::String(s) => crate::envelope::check_text("property", "", s),
                Value::DateTime(d) => crate::envelope::check_text("property", "", &d.raw),
                Value::Reference(epr) => epr.check_text(),
                Value::Instance(i) => i.check_text(),
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .try_for_each(|(n, v)| check_value(v).map_err(|e| e.within(&format!("[{n}]")))),
                _ => Ok(()),
            }
        }
        if let Some(uri) = &self.namespace {
            crate::envelope::check_text("namespace URI", "", uri)?;
        }
        self.properties
            .iter()
            .try_for_each(|(name, v)| check_value(v).map_err(|e| e.within(name)))
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
            // As read: a date is a `cim:Date`, anything else a `cim:Datetime`.
            w.element(
                if d.is_date() {
                    "cim:Date"
                } else {
                    "cim:Datetime"
                },
                &d.raw,
            );
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
    fn datetime_table() {
        // (text, year, month, day, hour, minute, second, nanos, offset, is_date)
        type Row = (
            &'static str,
            i32,
            u8,
            u8,
            u8,
            u8,
            u8,
            u32,
            Option<i32>,
            bool,
        );
        let valid: &[Row] = &[
            (
                "2024-01-31T12:34:56Z",
                2024,
                1,
                31,
                12,
                34,
                56,
                0,
                Some(0),
                false,
            ),
            ("2024-02-29T00:00:00", 2024, 2, 29, 0, 0, 0, 0, None, false),
            (
                "2000-02-29T23:59:59.999999999-14:00",
                2000,
                2,
                29,
                23,
                59,
                59,
                999_999_999,
                Some(-840),
                false,
            ),
            (
                "2023-12-31T00:00:00.1234567891+05:30",
                2023,
                12,
                31,
                0,
                0,
                0,
                123_456_789,
                Some(330),
                false,
            ),
            (
                "2024-04-30T10:00:00+14:00",
                2024,
                4,
                30,
                10,
                0,
                0,
                0,
                Some(840),
                false,
            ),
            ("2024-01-31", 2024, 1, 31, 0, 0, 0, 0, None, true),
            ("2024-01-31Z", 2024, 1, 31, 0, 0, 0, 0, Some(0), true),
            ("2024-01-31+02:00", 2024, 1, 31, 0, 0, 0, 0, Some(120), true),
            (
                " 2024-02-29-05:00 ",
                2024,
                2,
                29,
                0,
                0,
                0,
                0,
                Some(-300),
                true,
            ),
            (
                "20240229123456.123456+060",
                2024,
                2,
                29,
                12,
                34,
                56,
                123_456_000,
                Some(60),
                false,
            ),
            (
                "20240131123456.000000-300",
                2024,
                1,
                31,
                12,
                34,
                56,
                0,
                Some(-300),
                false,
            ),
            ("20240131123456", 2024, 1, 31, 12, 34, 56, 0, None, false),
        ];
        for &(text, y, mo, d, h, mi, se, n, off, date) in valid {
            let dt = CimDateTime::parse(text).unwrap_or_else(|| panic!("{text:?}"));
            assert_eq!(
                (
                    dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.nanos
                ),
                (y, mo, d, h, mi, se, n),
                "{text:?}"
            );
            assert_eq!((dt.offset_minutes, dt.is_date()), (off, date), "{text:?}");
            assert_eq!(dt.raw, text.trim());
        }
        for bad in [
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29",
            "2024-04-31",
            "2024-06-31T00:00:00",
            "2024-09-31Z",
            "2024-11-31+01:00",
            "2024-00-10",
            "2024-13-01T00:00:00Z",
            "2024-01-00",
            "2024-01-32",
            "2024-01-31T24:00:00Z",
            "2024-01-31T23:60:00Z",
            "2024-01-31T23:59:60Z",
            "2024-01-31T23:59:59.Z",
            "2024-01-31T23:59Z",
            "2024-01-31T",
            "2024-01-31T+1:00:00",
            "2024-+1-31",
            "2024-01-31+15:00",
            "2024-01-31+02:60",
            "2024-01-31+0200",
            "2024-01-31 12:00:00",
            "2024-01-31x",
            "2024-1-31",
            "2024-01",
            "2024-01-3é",
            "20240230000000.000000+000",
            "20240131240000.000000+000",
            "20240131235960.000000+000",
            "20240131123456.123+060",
            "20240131123456.123456+06",
            "20240131123456.123456:000",
            "20240131123456.123456+060x",
            "00000001123456.000000:000",
            "garbage",
            "",
        ] {
            assert_eq!(CimDateTime::parse(bad), None, "{bad:?}");
        }
    }

    /// The date of day `z` after 1970-01-01 (proleptic Gregorian): an oracle for which
    /// dates exist, computed unlike `days_in_month`.
    fn civil_from_days(z: i64) -> (i64, u32, u32) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (yoe + era * 400 + i64::from(m <= 2), m, d)
    }

    fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = i64::from((m + 9) % 12);
        let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// A date-time parses exactly when its day exists (the day round-trips
            /// through a day count) and its time is within 23:59:59; a date alike.
            #[test]
            fn parses_exactly_the_possible_datetimes(
                y in 1i32..=9999, mo in 0u32..=13, d in 0u32..=32,
                h in 0u32..=25, mi in 0u32..=61, se in 0u32..=61,
                zone in prop::sample::select(vec!["", "Z", "+01:00", "-14:00", "+14:01"]),
            ) {
                let day_exists = (1..=12).contains(&mo) && (1..=31).contains(&d)
                    && civil_from_days(days_from_civil(y.into(), mo, d)) == (y.into(), mo, d);
                let zone_ok = zone != "+14:01";
                let time_ok = h < 24 && mi < 60 && se < 60;
                let dt = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{se:02}{zone}");
                prop_assert_eq!(CimDateTime::parse(&dt).is_some(), day_exists && time_ok && zone_ok, "{}", dt);
                let date = format!("{y:04}-{mo:02}-{d:02}{zone}");
                let parsed = CimDateTime::parse(&date);
                prop_assert_eq!(parsed.is_some(), day_exists && zone_ok, "{}", date);
                prop_assert!(parsed.is_none_or(|p| p.is_date()));
                let dmtf = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{se:02}.000000+000");
                prop_assert_eq!(CimDateTime::parse(&dmtf).is_some(), day_exists && time_ok, "{}", dmtf);
            }

            /// What was read is written back as it was read: the same text in the same
            /// element (`cim:Date` for a date, `cim:Datetime` otherwise).
            #[test]
            fn datetimes_and_dates_round_trip(
                day in 0i64..2_932_897, secs in 0u32..86_400, frac in 0u32..1_000_000,
                form in 0u8..4,
                zone in prop::sample::select(vec!["", "Z", "+02:00", "-05:30"]),
            ) {
                let (y, m, d) = civil_from_days(day - 719_162);
                let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
                let (text, element) = match form {
                    0 => (format!("{y:04}-{m:02}-{d:02}{zone}"), "Date"),
                    1 => (format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{zone}"), "Datetime"),
                    2 => (format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:06}{zone}"), "Datetime"),
                    _ => (format!("{y:04}{m:02}{d:02}{h:02}{mi:02}{s:02}.{frac:06}+060"), "Datetime"),
                };
                let xml = format!(
                    "<p:C xmlns:p=\"http://r\" xmlns:cim=\"{}\"><p:When><cim:{element}>{text}</cim:{element}></p:When></p:C>",
                    ns::CIM_COMMON
                );
                let read = Instance::from_element(&parse(xml.as_bytes()).unwrap());
                let dt = read.get("When").unwrap().as_datetime().unwrap();
                prop_assert_eq!(&dt.raw, &text);
                prop_assert_eq!((dt.year, u32::from(dt.month), u32::from(dt.day)), (y as i32, m, d));
                prop_assert_eq!(dt.is_date(), element == "Date");
                let mut w = XmlWriter::default();
                read.write(&mut w, "C", "http://r");
                let open = format!("<cim:{element}>{text}</cim:{element}>");
                prop_assert!(w.as_str().contains(&open), "{}", w.as_str());
                let again = Instance::from_element(&parse(w.as_str().as_bytes()).unwrap());
                prop_assert_eq!(again.get("When"), read.get("When"));
            }
        }
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
