//! How the `winrm` tool shows results: text in the style of `winrm.cmd`, or JSON
//! (instances as objects, arrays as arrays, nil as null), and errors with fault details.

use std::fmt::Write as _;
use std::time::Duration;

use serde::ser::{Serialize, SerializeMap, Serializer};
use tokio_winrm::soap::envelope::SelectorValue;
use tokio_winrm::{EndpointReference, Error, IdentifyResponse, Instance, Value};

/// Prints an Identify response.
pub fn print_identify(id: &IdentifyResponse, as_json: bool) {
    if as_json {
        #[derive(serde::Serialize)]
        struct Identify<'a> {
            protocol_version: &'a str,
            product_vendor: &'a str,
            product_version: &'a str,
            security_profiles: &'a [String],
        }
        let v = Identify {
            protocol_version: &id.protocol_version,
            product_vendor: &id.product_vendor,
            product_version: &id.product_version,
            security_profiles: &id.security_profiles,
        };
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    println!("IdentifyResponse");
    println!("    ProtocolVersion = {}", id.protocol_version);
    println!("    ProductVendor = {}", id.product_vendor);
    println!("    ProductVersion = {}", id.product_version);
    if !id.security_profiles.is_empty() {
        println!("    SecurityProfiles");
        for p in &id.security_profiles {
            println!("        SecurityProfileName = {p}");
        }
    }
}

/// Prints an instance (Get or Invoke result).
pub fn print_instance(inst: &Instance, as_json: bool) {
    if as_json {
        let text = serde_json::to_string_pretty(&JsonInstance(inst))
            .unwrap_or_else(|_| instance_json_line(inst));
        println!("{text}");
    } else {
        print!("{}", instance_text(inst, 0));
    }
}

/// An instance as text: the class name, then `Name = value` lines, indented.
pub fn instance_text(inst: &Instance, indent: usize) -> String {
    let mut out = String::new();
    let pad = " ".repeat(indent);
    let name = if inst.class_name.is_empty() {
        "(instance)"
    } else {
        &inst.class_name
    };
    let _ = writeln!(out, "{pad}{name}");
    for (k, v) in &inst.properties {
        property_text(&mut out, k, v, indent + 4);
    }
    out
}

fn property_text(out: &mut String, name: &str, v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Array(items) if items.is_empty() => {
            let _ = writeln!(out, "{pad}{name} = (empty)");
        }
        // Like winrm.cmd: an array is its property repeated.
        Value::Array(items) => {
            for item in items {
                property_text(out, name, item, indent);
            }
        }
        Value::Instance(inner) => {
            let _ = writeln!(out, "{pad}{name}");
            for (k, v) in &inner.properties {
                property_text(out, k, v, indent + 4);
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{name} = {}", scalar_text(other));
        }
    }
}

/// One value on one line.
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Real(r) => r.to_string(),
        Value::String(s) => s.clone(),
        Value::DateTime(d) => d.raw.clone(),
        Value::Interval(d) => xs_duration(*d),
        Value::Reference(epr) => reference_text(epr),
        Value::Instance(i) => {
            let props: Vec<String> = i
                .properties
                .iter()
                .map(|(k, v)| format!("{k}={}", scalar_text(v)))
                .collect();
            format!("{}{{{}}}", i.class_name, props.join(", "))
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(scalar_text).collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

fn reference_text(epr: &EndpointReference) -> String {
    let sel: Vec<String> = epr
        .selectors
        .iter()
        .map(|s| match &s.value {
            SelectorValue::Text(t) => format!("{}={t}", s.name),
            SelectorValue::Reference(r) => format!("{}=<{}>", s.name, reference_text(r)),
        })
        .collect();
    if sel.is_empty() {
        epr.resource_uri.clone()
    } else {
        format!("{} [{}]", epr.resource_uri, sel.join(", "))
    }
}

/// `xs:duration` text of a duration, e.g. `PT1.5S`.
fn xs_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("PT{}S", d.as_secs())
    } else {
        let s = format!("{:.9}", d.as_secs_f64());
        format!("PT{}S", s.trim_end_matches('0'))
    }
}

/// One JSON line (no pretty printing) for an instance, properties in document order.
pub fn instance_json_line(inst: &Instance) -> String {
    serde_json::to_string(&JsonInstance(inst)).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Serializes an instance as an object, keeping the property order (serde_json's own
/// `Map` would sort the keys).
struct JsonInstance<'a>(&'a Instance);
struct JsonValue<'a>(&'a Value);
struct JsonReference<'a>(&'a EndpointReference);

impl Serialize for JsonInstance<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.properties.len()))?;
        for (k, v) in &self.0.properties {
            m.serialize_entry(k, &JsonValue(v))?;
        }
        m.end()
    }
}

impl Serialize for JsonValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_none(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::UInt(u) => s.serialize_u64(*u),
            Value::Real(r) => s.serialize_f64(*r),
            Value::String(t) => s.serialize_str(t),
            Value::DateTime(d) => s.serialize_str(&d.raw),
            Value::Interval(d) => s.serialize_str(&xs_duration(*d)),
            Value::Reference(epr) => JsonReference(epr).serialize(s),
            Value::Instance(i) => JsonInstance(i).serialize(s),
            Value::Array(items) => s.collect_seq(items.iter().map(JsonValue)),
        }
    }
}

impl Serialize for JsonReference<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Selectors<'a>(&'a EndpointReference);
        impl Serialize for Selectors<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.selectors.len()))?;
                for sel in &self.0.selectors {
                    match &sel.value {
                        SelectorValue::Text(t) => m.serialize_entry(&sel.name, t)?,
                        SelectorValue::Reference(r) => {
                            m.serialize_entry(&sel.name, &JsonReference(r))?
                        }
                    }
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("address", &self.0.address)?;
        m.serialize_entry("resource_uri", &self.0.resource_uri)?;
        m.serialize_entry("selectors", &Selectors(self.0))?;
        m.end()
    }
}

/// The text the tool prints for an error: `error: <message>`, and for a fault its code in
/// decimal and hex, meaning, subcode, machine and the server's message.
pub fn describe_error(e: &Error) -> String {
    let Some(f) = e.fault() else {
        return format!("error: {e}");
    };
    let mut out = String::from("error: the server answered with a WS-Management fault");
    match f.code() {
        Some(c) => {
            let _ = write!(out, "\n  code:    {c} (0x{c:08X})");
        }
        None => out.push_str("\n  code:    (none)"),
    }
    if let Some(m) = f.meaning() {
        let _ = write!(out, "\n  meaning: {m}");
    }
    let sub = f.subcode.as_deref().unwrap_or("(none)");
    let _ = write!(out, "\n  subcode: {sub} (SOAP code {})", f.code);
    if let Some(m) = &f.machine {
        let _ = write!(out, "\n  machine: {m}");
    }
    let _ = write!(out, "\n  message: {}", f.message().trim());
    if let Some(p) = &f.provider {
        let code = p
            .code
            .map(|c| format!("{c} (0x{c:08X}) "))
            .unwrap_or_default();
        let name = p.provider.as_deref().unwrap_or("provider");
        let _ = write!(
            out,
            "\n  {name}: {code}{}",
            p.message.as_deref().unwrap_or("").trim()
        );
    }
    if let Some(m) = f.wmi_error.as_ref().and_then(|w| w.message.as_ref()) {
        let _ = write!(out, "\n  WMI:     {}", m.trim());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(xs_duration(Duration::from_secs(60)), "PT60S");
        assert_eq!(xs_duration(Duration::from_millis(1500)), "PT1.5S");
    }
}
