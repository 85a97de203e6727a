//! `Sim_Item`: a synthetic WMI class of `SimConfig::synthetic_count` instances (up to
//! 1,000,000), each made on demand from its index and the seed, never stored. Its 27
//! properties have the shape of `Win32_Service` (names, types, text lengths), so it is
//! also the enumeration throughput workload.

use super::ClassSource;
use super::wmi::{self, Rng, datetime};
use crate::soap::envelope::XmlWriter;
use crate::soap::{Instance, Value, ns};

/// The most instances the class may have.
pub(crate) const MAX_COUNT: u64 = 1_000_000;

const PROPERTIES: &[&str] = &[
    "AcceptPause",
    "AcceptStop",
    "Caption",
    "CheckPoint",
    "CreationClassName",
    "DelayedAutoStart",
    "Description",
    "DesktopInteract",
    "DisplayName",
    "ErrorControl",
    "ExitCode",
    "Index",
    "InstallDate",
    "Name",
    "PathName",
    "ProcessId",
    "ServiceSpecificExitCode",
    "ServiceType",
    "Started",
    "StartMode",
    "StartName",
    "State",
    "Status",
    "SystemCreationClassName",
    "SystemName",
    "TagId",
    "WaitHint",
];

const START_MODES: [&str; 3] = ["Auto", "Manual", "Disabled"];
const ACCOUNTS: [&str; 3] = [
    "LocalSystem",
    "NT AUTHORITY\\LocalService",
    "NT AUTHORITY\\NetworkService",
];

/// The synthetic class.
pub(crate) struct SimItems {
    count: u64,
    rng: Rng,
}

impl SimItems {
    /// `count` instances (capped at [`MAX_COUNT`]) generated from `seed`.
    pub(crate) fn new(seed: u64, count: u64) -> SimItems {
        SimItems {
            count: count.min(MAX_COUNT),
            rng: Rng::new(seed).fork(0x51_17E4),
        }
    }

    /// The key of instance `index`.
    pub(crate) fn name_of(index: u64) -> String {
        format!("Item{index:07}")
    }

    /// The index named by `name` (`Item0000042`, case-insensitive), if it exists.
    pub(crate) fn index_of(&self, name: &str) -> Option<u64> {
        let digits = name
            .get(..4)
            .filter(|p| p.eq_ignore_ascii_case("Item"))
            .and(name.get(4..))?;
        if digits.len() != 7 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u64>().ok().filter(|i| *i < self.count)
    }
}

impl ClassSource for SimItems {
    fn name(&self) -> &str {
        "Sim_Item"
    }

    fn properties(&self) -> Vec<&str> {
        PROPERTIES.to_vec()
    }

    fn keys(&self) -> Vec<&str> {
        ["Name"].to_vec()
    }

    fn count(&self) -> u64 {
        self.count
    }

    fn instance(&self, index: u64) -> Instance {
        let r = self.rng.at(index);
        let mode = START_MODES[(r % 3) as usize];
        let running = mode == "Auto" && !(r >> 8).is_multiple_of(10);
        let name = SimItems::name_of(index);
        let display = format!("Synthetic Service Item {index:07}");
        let s = |v: &str| Value::String(v.to_string());
        let properties: Vec<(String, Value)> = vec![
            ("AcceptPause", Value::Bool(running && (r >> 12).is_multiple_of(7))),
            ("AcceptStop", Value::Bool(running)),
            ("Caption", s(&display)),
            ("CheckPoint", Value::UInt(0)),
            ("CreationClassName", s("Sim_Item")),
            ("DelayedAutoStart", Value::Bool((r >> 16).is_multiple_of(5))),
            (
                "Description",
                Value::String(format!("Synthetic instance {index} of the tokio-winrm simulator, shaped like a Windows service.")),
            ),
            ("DesktopInteract", Value::Bool(false)),
            ("DisplayName", Value::String(display)),
            ("ErrorControl", s(if (r >> 20).is_multiple_of(4) { "Ignore" } else { "Normal" })),
            ("ExitCode", Value::UInt(if running { 0 } else { 1077 })),
            ("Index", Value::UInt(index)),
            (
                "InstallDate",
                if (r >> 24).is_multiple_of(3) { datetime(1_600_000_000 + (r % 100_000_000) as i64, 0) } else { Value::Null },
            ),
            ("Name", Value::String(name)),
            ("PathName", Value::String(format!("C:\\Program Files\\Sim\\item.exe -k Item{index:07}"))),
            ("ProcessId", Value::UInt(if running { 1000 + ((r >> 28) % 60_000) * 4 } else { 0 })),
            ("ServiceSpecificExitCode", Value::UInt(0)),
            ("ServiceType", s(if (r >> 32).is_multiple_of(2) { "Own Process" } else { "Share Process" })),
            ("Started", Value::Bool(running)),
            ("StartMode", s(mode)),
            ("StartName", s(ACCOUNTS[((r >> 36) % 3) as usize])),
            ("State", s(if running { "Running" } else { "Stopped" })),
            ("Status", s("OK")),
            ("SystemCreationClassName", s("Win32_ComputerSystem")),
            ("SystemName", s("SIM-HOST")),
            ("TagId", Value::UInt((r >> 40) % 64)),
            ("WaitHint", Value::UInt(0)),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
        Instance {
            class_name: "Sim_Item".into(),
            namespace: None,
            properties,
        }
    }

    /// The same XML as [`wmi::write_instance`] over [`SimItems::instance`], written
    /// straight from the index: no instance, no string per property (the enumeration
    /// throughput workload spends its time here). The item is put together in one string
    /// (tags are constants, appended inline) and handed to the writer at once. Every
    /// text written is digits or one of the constants above, none of which needs escaping.
    fn write_instance_xml(&self, w: &mut XmlWriter, uri: &str, index: u64) -> bool {
        let r = self.rng.at(index);
        let mode = START_MODES[(r % 3) as usize];
        let running = mode == "Auto" && !(r >> 8).is_multiple_of(10);
        let mut s = String::with_capacity(2048);
        let flag = |v: bool| if v { "true" } else { "false" };
        // `prop!(s, "Name", parts...)`: `<p:Name>` parts `</p:Name>`.
        macro_rules! prop {
            ($name:literal, $($part:expr),*) => {{
                s.push_str(concat!("<p:", $name, ">"));
                $( s.push_str($part); )*
                s.push_str(concat!("</p:", $name, ">"));
            }};
        }
        // `num!("Name", n, width)`: a number, zero-padded to `width` digits.
        macro_rules! num {
            ($name:literal, $v:expr, $width:expr) => {{
                s.push_str(concat!("<p:", $name, ">"));
                push_u64(&mut s, $v, $width);
                s.push_str(concat!("</p:", $name, ">"));
            }};
        }
        s.push_str("<p:Sim_Item xmlns:p=\"");
        if uri
            .bytes()
            .any(|b| matches!(b, b'<' | b'>' | b'&' | b'"' | b'\r' | b'\t' | b'\n'))
        {
            let mut escaped = XmlWriter::default();
            escaped.attr_text(uri);
            s.push_str(escaped.as_str());
        } else {
            s.push_str(uri);
        }
        s.push_str("\" xmlns:cim=\"");
        s.push_str(ns::CIM_COMMON);
        s.push_str("\" xmlns:xsi=\"");
        s.push_str(ns::XSI);
        s.push_str("\" xsi:type=\"p:Sim_Item_Type\">");
        prop!("AcceptPause", flag(running && (r >> 12).is_multiple_of(7)));
        prop!("AcceptStop", flag(running));
        s.push_str("<p:Caption>Synthetic Service Item ");
        push_u64(&mut s, index, 7);
        s.push_str(
            "</p:Caption><p:CheckPoint>0</p:CheckPoint>\
             <p:CreationClassName>Sim_Item</p:CreationClassName>",
        );
        prop!("DelayedAutoStart", flag((r >> 16).is_multiple_of(5)));
        s.push_str("<p:Description>Synthetic instance ");
        push_u64(&mut s, index, 1);
        s.push_str(
            " of the tokio-winrm simulator, shaped like a Windows service.</p:Description>\
             <p:DesktopInteract>false</p:DesktopInteract>\
             <p:DisplayName>Synthetic Service Item ",
        );
        push_u64(&mut s, index, 7);
        s.push_str("</p:DisplayName>");
        prop!(
            "ErrorControl",
            if (r >> 20).is_multiple_of(4) {
                "Ignore"
            } else {
                "Normal"
            }
        );
        num!("ExitCode", if running { 0 } else { 1077 }, 1);
        num!("Index", index, 1);
        if (r >> 24).is_multiple_of(3) {
            match datetime(1_600_000_000 + (r % 100_000_000) as i64, 0) {
                Value::DateTime(d) => {
                    prop!("InstallDate", "<cim:Datetime>", &d.raw, "</cim:Datetime>")
                }
                other => {
                    // Not reached (the text above always parses); the general writer then.
                    w.raw(&s);
                    s.clear();
                    wmi::write_property(w, "InstallDate", &other);
                }
            }
        } else {
            s.push_str("<p:InstallDate xsi:nil=\"true\"/>");
        }
        s.push_str("<p:Name>Item");
        push_u64(&mut s, index, 7);
        s.push_str("</p:Name><p:PathName>C:\\Program Files\\Sim\\item.exe -k Item");
        push_u64(&mut s, index, 7);
        s.push_str("</p:PathName>");
        num!(
            "ProcessId",
            if running {
                1000 + ((r >> 28) % 60_000) * 4
            } else {
                0
            },
            1
        );
        s.push_str("<p:ServiceSpecificExitCode>0</p:ServiceSpecificExitCode>");
        prop!(
            "ServiceType",
            if (r >> 32).is_multiple_of(2) {
                "Own Process"
            } else {
                "Share Process"
            }
        );
        prop!("Started", flag(running));
        prop!("StartMode", mode);
        prop!("StartName", ACCOUNTS[((r >> 36) % 3) as usize]);
        prop!("State", if running { "Running" } else { "Stopped" });
        s.push_str(
            "<p:Status>OK</p:Status>\
             <p:SystemCreationClassName>Win32_ComputerSystem</p:SystemCreationClassName>\
             <p:SystemName>SIM-HOST</p:SystemName>",
        );
        num!("TagId", (r >> 40) % 64, 1);
        s.push_str("<p:WaitHint>0</p:WaitHint></p:Sim_Item>");
        w.raw(&s);
        true
    }

    fn find(&self, selectors: &[(String, String)]) -> Option<Instance> {
        let (_, name) = selectors
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Name"))?;
        self.index_of(name).map(|i| self.instance(i))
    }
}

/// Appends `v` in decimal, zero-padded to at least `width` digits (at most 20).
fn push_u64(w: &mut String, mut v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    while v > 0 || buf.len() - i < width.clamp(1, 20) {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    w.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_are_deterministic_keyed_and_shaped_like_services() {
        let c = SimItems::new(42, 2_000_000);
        assert_eq!(c.count(), MAX_COUNT);
        let a = c.instance(123_456);
        assert_eq!(a, c.instance(123_456));
        assert_eq!(a.properties.len(), PROPERTIES.len());
        let names: Vec<_> = a.properties.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, PROPERTIES);
        assert_eq!(a.get_str("Name"), Some("Item0123456"));
        assert_eq!(c.index_of("item0123456"), Some(123_456));
        assert_eq!(c.index_of("Item123"), None);
        assert_eq!(c.index_of("Item9999999"), None);
        assert_eq!(
            c.find(&[("name".into(), "Item0000007".into())])
                .unwrap()
                .get("Index"),
            Some(&Value::UInt(7))
        );
        let small = SimItems::new(42, 10);
        // The direct writer gives what the general one gives for the built instance.
        // Both resource URIs: one written as it is, one that needs escaping.
        let uris = [
            "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Sim_Item",
            "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Sim_Item?a=1&b=\"2\"",
        ];
        for (uri, i) in uris.into_iter().flat_map(|u| {
            [0, 1, 2, 3, 7, 9, 10, 99, 1_000, 123_456, 999_999]
                .into_iter()
                .chain(0..300)
                .map(move |i| (u, i))
        }) {
            let (mut fast, mut general) = (XmlWriter::default(), XmlWriter::default());
            assert!(c.write_instance_xml(&mut fast, uri, i));
            wmi::write_instance(&mut general, "Sim_Item", uri, &c.instance(i));
            assert_eq!(fast.as_str(), general.as_str(), "instance {i} under {uri}");
        }
        // Both kinds of InstallDate (a datetime, nil) were among them.
        let dated = (0..300).filter(|&i| c.instance(i).get("InstallDate") != Some(&Value::Null));
        assert!((1..300).contains(&dated.count()));
        let mut w = String::new();
        push_u64(&mut w, 0, 1);
        push_u64(&mut w, 42, 7);
        push_u64(&mut w, u64::MAX, 1);
        assert_eq!(w, "0000004218446744073709551615");
        assert!(
            small
                .find(&[("Name".into(), "Item0000010".into())])
                .is_none()
        );
    }
}
