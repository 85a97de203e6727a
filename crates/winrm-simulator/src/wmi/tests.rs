use super::*;
use crate::soap::xml::parse;

fn wmi(seed: u64) -> Wmi {
    Wmi::new(&SimConfig {
        seed,
        ..SimConfig::default()
    })
}

fn request(selectors: &str, body: &str) -> SimRequest {
    let xml = format!(
        concat!(
            "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\">",
            "<s:Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action><a:MessageID>uuid:1</a:MessageID>",
            "<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>",
            "<w:SelectorSet>{}</w:SelectorSet></s:Header><s:Body>{}</s:Body></s:Envelope>"
        ),
        selectors, body
    );
    SimRequest::parse(xml.as_bytes()).unwrap()
}

#[test]
fn every_instance_has_the_schema_properties_in_order() {
    let w = wmi(42);
    for class in w.builtins() {
        for i in [0, class.count() / 2, class.count() - 1] {
            let inst = class.instance(i);
            let names: Vec<&str> = inst.properties.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, class.properties(), "{} #{i}", class.name());
            for k in class.keys() {
                assert!(
                    inst.get_str(k).is_some_and(|v| !v.is_empty()),
                    "{} key {k}",
                    class.name()
                );
            }
        }
    }
    assert_eq!(w.class("win32_service").unwrap().count(), 200);
    assert_eq!(
        w.class("Win32_Process").unwrap().count(),
        process::BASE_PROCESSES as u64
    );
    assert!(w.class("Win32_Nope").is_none());
    let names = w.class_names();
    assert_eq!(
        names[..3],
        ["Win32_OperatingSystem", "Win32_Service", "Win32_Process"]
    );
}

#[test]
fn generated_data_is_deterministic_per_seed() {
    let (a, b, c) = (wmi(7), wmi(7), wmi(8));
    let svc = |w: &Wmi, i| w.class("Win32_Service").unwrap().instance(i);
    let proc_ = |w: &Wmi, i| w.class("Win32_Process").unwrap().instance(i);
    for i in [0, 30, 199] {
        assert_eq!(svc(&a, i), svc(&b, i));
        assert_eq!(proc_(&a, i % 80), proc_(&b, i % 80));
    }
    assert_ne!(
        proc_(&a, 40),
        proc_(&c, 40),
        "another seed, other process ids"
    );
    let pids: std::collections::HashSet<_> = (0..80)
        .map(|i| proc_(&a, i).get_str("Handle").unwrap().to_string())
        .collect();
    assert_eq!(pids.len(), 80, "process ids are unique");
}

#[test]
fn services_have_real_names_first_then_generated_ones() {
    let w = wmi(42);
    let s = &w.services;
    assert_eq!(s.index_of("winrm"), Some(0));
    assert_eq!(s.index_of("SimSvc0001"), Some(classes_real_len()));
    assert_eq!(s.index_of("simsvc1"), None, "only the canonical spelling");
    assert_eq!(s.index_of("SimSvc9999"), None, "beyond service_count");
    assert_eq!(s.index_of("Nope"), None);
    let winrm = s.instance(0);
    assert_eq!(winrm.get_str("State"), Some("Running"));
    assert_eq!(
        winrm.get_str("DisplayName"),
        Some("Windows Remote Management (WS-Management)")
    );
    assert!(winrm.get("InstallDate").unwrap().is_null());
    let last = s.instance(199);
    assert_eq!(
        last.get_str("Name"),
        Some(format!("SimSvc{:04}", 200 - classes_real_len()).as_str())
    );
}

fn classes_real_len() -> u64 {
    (0..)
        .find(|&i| wmi(42).services.instance(i).get_str("Name") == Some("SimSvc0001"))
        .unwrap()
}

#[test]
fn service_control_follows_windows_return_codes() {
    let w = wmi(42);
    let s = &w.services;
    let spooler = s.index_of("Spooler").unwrap();
    assert_eq!(s.control(spooler, false), classes::Control::Done);
    assert_eq!(s.instance(spooler).get_str("State"), Some("Stopped"));
    assert_eq!(s.instance(spooler).get("ProcessId"), Some(&Value::UInt(0)));
    assert_eq!(s.control(spooler, false), classes::Control::NotActive);
    assert_eq!(s.control(spooler, true), classes::Control::Done);
    assert_eq!(s.control(spooler, true), classes::Control::AlreadyRunning);
    let rpc = s.index_of("RpcSs").unwrap();
    assert_eq!(s.control(rpc, false), classes::Control::CannotAccept);
    let ras = s.index_of("RemoteAccess").unwrap();
    assert_eq!(s.control(ras, true), classes::Control::Disabled);
}

#[test]
fn selectors_are_checked_against_the_keys() {
    let w = wmi(42);
    let svc = w.class("Win32_Service").unwrap();
    let os = w.class("Win32_OperatingSystem").unwrap();
    let sel = |n: &str, v: &str| format!("<w:Selector Name=\"{n}\">{v}</w:Selector>");
    let found = resolve(&*svc, &request(&sel("Name", "WINRM"), "")).unwrap();
    assert_eq!(found.get_str("Name"), Some("WinRM"));
    let with_ns = format!(
        "{}{}",
        sel("Name", "Spooler"),
        sel("__cimnamespace", "root/cimv2")
    );
    assert!(resolve(&*svc, &request(&with_ns, "")).is_ok());
    for bad in [
        sel("Nmae", "WinRM"),
        sel("Name", "Nope"),
        String::new(),
        format!("{}{}", sel("Name", "WinRM"), sel("X", "1")),
    ] {
        let f = resolve(&*svc, &request(&bad, "")).unwrap_err();
        assert_eq!(
            f.wsman_code,
            Some(crate::soap::fault::code::INVALID_SELECTORS),
            "{bad}"
        );
    }
    assert_eq!(
        resolve(&*os, &request("", "")).unwrap().get_str("Version"),
        Some("10.0.20348")
    );
    assert!(resolve(&*os, &request(&sel("Name", "x"), "")).is_err());
    let pid = w
        .processes
        .instance(5)
        .get_str("Handle")
        .unwrap()
        .to_string();
    assert!(resolve(&w.processes, &request(&sel("Handle", &pid), "")).is_ok());
}

#[test]
fn uris_and_methods() {
    let w = wmi(1);
    assert!(w.class_for_uri(&class_uri("Win32_Service")).is_some());
    assert!(
        w.class_for_uri("http://schemas.microsoft.com/wbem/wsman/1/wmi/ROOT/CIMV2/win32_process")
            .is_some()
    );
    assert!(
        w.class_for_uri("http://schemas.microsoft.com/wbem/wsman/1/wmi/root/default/Win32_Service")
            .is_none()
    );
    assert!(w.class_for_uri("http://example/Win32_Service").is_none());
    let uri = class_uri("Win32_Service");
    assert_eq!(
        method_of(&format!("{uri}/StopService"), &uri),
        Some("StopService")
    );
    assert_eq!(method_of(&format!("{uri}/"), &uri), None);
    assert_eq!(method_of(ns::action::GET, &uri), None);
    assert_eq!(method_of("x", &uri), None);
}

#[test]
fn instances_written_read_back() {
    let w = wmi(42);
    let os = w.class("Win32_OperatingSystem").unwrap().instance(0);
    let mut x = XmlWriter::default();
    write_instance(
        &mut x,
        "Win32_OperatingSystem",
        &class_uri("Win32_OperatingSystem"),
        &os,
    );
    let el = parse(x.as_str().as_bytes()).unwrap();
    assert_eq!(
        el.attr_ns(ns::XSI, "type"),
        Some("p:Win32_OperatingSystem_Type")
    );
    let back = Instance::from_element(&el);
    assert_eq!(back.class_name, "Win32_OperatingSystem");
    assert_eq!(back.get_str("BuildNumber"), Some("20348"));
    assert!(back.get("CSDVersion").unwrap().is_null());
    let boot = back.get("LastBootUpTime").unwrap().as_datetime().unwrap();
    assert_eq!(
        (boot.year, boot.month, boot.nanos, boot.offset_minutes),
        (2025, 3, 500_000_000, Some(0))
    );
    assert_eq!(back.get("Primary").unwrap().as_bool(), Some(true));
}

#[test]
fn property_values_are_written_exactly() {
    let inst = Instance {
        class_name: "X".into(),
        namespace: None,
        properties: vec![
            ("B".into(), Value::Bool(true)),
            ("I".into(), Value::Int(-5)),
            ("U".into(), Value::UInt(18_446_744_073_709_551_615)),
            ("R".into(), Value::Real(1.5)),
            ("S".into(), Value::String("a<b & \"c\"".into())),
            ("N".into(), Value::Null),
            (
                "A".into(),
                Value::Array(vec![Value::UInt(1), Value::String("two".into())]),
            ),
        ],
    };
    let mut x = XmlWriter::default();
    write_instance(&mut x, "X", "http://u/X", &inst);
    assert_eq!(
        x.as_str(),
        concat!(
            "<p:X xmlns:p=\"http://u/X\" xmlns:cim=\"http://schemas.dmtf.org/wbem/wscim/1/common\"",
            " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"p:X_Type\">",
            "<p:B>true</p:B><p:I>-5</p:I><p:U>18446744073709551615</p:U><p:R>1.5</p:R>",
            "<p:S>a&lt;b &amp; \"c\"</p:S><p:N xsi:nil=\"true\"/><p:A>1</p:A><p:A>two</p:A></p:X>"
        )
    );
}

#[test]
fn datetimes() {
    assert_eq!(datetime(0, 0).as_str(), Some("1970-01-01T00:00:00.000000Z"));
    assert_eq!(
        datetime(951_782_400 + 3661, 42).as_str(),
        Some("2000-02-29T01:01:01.000042Z")
    );
    assert_eq!(
        datetime(-1, 0).as_str(),
        Some("1969-12-31T23:59:59.000000Z")
    );
    assert!(matches!(datetime(1_740_787_200, 0), Value::DateTime(_)));
}

#[test]
fn paths() {
    assert!(is_windows_path("C:\\Temp"));
    assert!(is_windows_path("d:"));
    assert!(!is_windows_path("Temp"));
    assert!(!is_windows_path("1:\\"));
}
