//! The response reader on every recorded response (`fixtures/recorded`): each one parses
//! into an `s:Envelope`, each fault into a typed [`Fault`] with the right code, and the
//! values the operations of the foundation read (config, Identify, shells) come out right.

#[path = "support/recorded.rs"]
mod recorded;

use tokio_winrm::{EndpointReference, IdentifyResponse, Instance, Value};
use wsman_protocol::fault::code;
use wsman_protocol::xml::{Element, parse};
use wsman_protocol::{Fault, ns};

fn body(root: &Element) -> &Element {
    root.child(ns::SOAP, "Body").expect("s:Body")
}

fn response_root(key: &str, index: usize) -> Element {
    let rec = recorded::load(key);
    let ex = &rec.exchanges[index];
    parse(ex.response.as_bytes()).unwrap_or_else(|e| panic!("{key}#{index}: {e}"))
}

#[test]
fn every_recorded_response_and_request_parses_into_an_envelope() {
    let all = recorded::all();
    assert_eq!(all.len(), 27, "recordings");
    let mut exchanges = 0;
    for rec in &all {
        for (i, ex) in rec.exchanges.iter().enumerate() {
            exchanges += 1;
            let root = parse(ex.response.as_bytes())
                .unwrap_or_else(|e| panic!("{} #{i}: response does not parse: {e}", rec.key()));
            assert!(
                root.is(ns::SOAP, "Envelope"),
                "{} #{i}: root is {}",
                rec.key(),
                root.describe()
            );
            assert!(
                root.child(ns::SOAP, "Body").is_some(),
                "{} #{i}: no s:Body",
                rec.key()
            );
            if !ex.request.is_empty() {
                let req = parse(ex.request.as_bytes())
                    .unwrap_or_else(|e| panic!("{} #{i}: request does not parse: {e}", rec.key()));
                assert!(
                    req.is(ns::SOAP, "Envelope"),
                    "{} #{i}: request root",
                    rec.key()
                );
            }
        }
    }
    assert_eq!(exchanges, 137, "exchanges");
}

/// What each recorded fault must read as.
struct Expected {
    key: &'static str,
    index: usize,
    code: u32,
    subcode: &'static str,
    check: fn(&Fault),
}

fn expected_faults() -> Vec<Expected> {
    fn gone(f: &Fault) {
        assert!(f.is_gone());
        assert!(!f.is_timed_out() && !f.is_quota());
    }
    fn timed_out(f: &Fault) {
        assert!(f.is_timed_out());
        assert!(!f.is_gone() && !f.is_quota());
        assert_eq!(f.code, "s:Receiver");
    }
    fn gone_unexpected_selectors(f: &Fault) {
        gone(f);
        assert_eq!(
            f.fault_detail.as_deref(),
            Some("http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors")
        );
        assert!(
            f.message()
                .contains("command identifier that does not exist"),
            "{}",
            f.message()
        );
    }
    fn bad_filter(f: &Fault) {
        assert!(f.is_bad_filter());
        assert_eq!(
            f.action.as_deref(),
            Some("http://schemas.xmlsoap.org/ws/2004/09/enumeration/fault")
        );
        let p = f.provider.as_ref().expect("provider fault");
        assert_eq!(p.code, Some(code::CANNOT_PROCESS_FILTER));
        assert_eq!(
            p.path.as_deref(),
            Some("%systemroot%\\system32\\WsmWmiPl.dll")
        );
        assert_eq!(
            p.message.as_deref(),
            Some("The specified class does not exist in the given namespace.")
        );
        assert_eq!(
            f.message(),
            "The specified class does not exist in the given namespace."
        );
    }
    vec![
        Expected {
            key: "WinRMSharp/ProtocolGetCommandStateBeforeRun",
            index: 1,
            code: code::INVALID_SELECTORS,
            subcode: "InvalidSelectors",
            check: |f| {
                gone_unexpected_selectors(f);
                assert_eq!(f.machine.as_deref(), Some("windows-host"));
            },
        },
        Expected {
            key: "WinRMSharp/ProtocolRunCommandExceedingOperationTimeout",
            index: 2,
            code: code::OPERATION_TIMEOUT,
            subcode: "TimedOut",
            check: timed_out,
        },
        Expected {
            key: "WinRb-WinRM/soap_fault_v1",
            index: 0,
            code: code::CANNOT_PROCESS_FILTER,
            subcode: "CannotProcessFilter",
            check: |f| {
                bad_filter(f);
                assert_eq!(f.machine.as_deref(), Some(""));
                let p = f.provider.as_ref().unwrap();
                assert_eq!(
                    p.provider.as_deref(),
                    Some("WMIv1 plugin for Windows Remote Management")
                );
            },
        },
        Expected {
            key: "WinRb-WinRM/soap_fault_v2",
            index: 0,
            code: code::CANNOT_PROCESS_FILTER,
            subcode: "CannotProcessFilter",
            check: |f| {
                bad_filter(f);
                assert_eq!(f.machine.as_deref(), Some("localhost"));
                assert_eq!(
                    f.provider.as_ref().unwrap().provider.as_deref(),
                    Some("WMI Provider")
                );
            },
        },
        Expected {
            key: "WinRb-WinRM/wmi_error_v2",
            index: 0,
            code: code::MAX_SHELLS,
            subcode: "QuotaLimit",
            check: |f| {
                assert!(f.is_quota());
                assert!(!f.is_gone() && !f.is_timed_out());
                let w = f.wmi_error.as_ref().expect("MSFT_WmiError");
                assert_eq!(w.cim_status_code, Some(27));
                assert_eq!(w.error_code, Some(code::MAX_SHELLS));
                assert_eq!(w.message_id.as_deref(), Some("HRESULT 0x803381a5"));
                assert_eq!(w.error_type.as_deref(), Some("HRESULT"));
                assert!(
                    w.message
                        .as_deref()
                        .unwrap()
                        .contains("maximum number of 30 concurrent shells")
                );
                assert!(f.message().contains("30 concurrent shells"));
                assert!(f.provider.is_none());
            },
        },
        Expected {
            key: "pypsrp/test_psrp_is_alive_invalid_selectors",
            index: 4,
            code: code::INVALID_SELECTORS,
            subcode: "InvalidSelectors",
            check: |f| {
                gone(f);
                let p = f.provider.as_ref().expect("provider fault");
                assert_eq!(p.provider.as_deref(), Some("Shell provider"));
                assert_eq!(
                    p.path.as_deref(),
                    Some("%systemroot%\\system32\\WsmSvc.dll")
                );
                assert_eq!(p.code, Some(code::INVALID_SELECTORS));
                assert!(
                    f.message().starts_with(
                        "The WS-Management service cannot process the request because"
                    )
                );
            },
        },
        Expected {
            key: "pypsrp/test_psrp_is_alive_other_wsman_error",
            index: 3,
            code: code::INVALID_HEADER,
            subcode: "InvalidMessageInformationHeader",
            check: |f| {
                assert!(!f.is_gone() && !f.is_timed_out() && !f.is_quota());
                assert_eq!(
                    f.subcode.as_deref(),
                    Some("a:InvalidMessageInformationHeader")
                );
                assert!(
                    f.message()
                        .contains("invalid timeout field in the SOAP header: PT-1S")
                );
            },
        },
        Expected {
            key: "pypsrp/test_psrp_receive_failure",
            index: 3,
            code: code::INVALID_SELECTORS,
            subcode: "InvalidSelectors",
            check: gone_unexpected_selectors,
        },
        Expected {
            key: "pypsrp/test_winrs_bad_cmd_id",
            index: 2,
            code: code::INVALID_SELECTORS,
            subcode: "InvalidSelectors",
            check: gone_unexpected_selectors,
        },
        Expected {
            key: "pypsrp/test_winrs_fail_poll_process",
            index: 1,
            code: code::INVALID_PARAMETER,
            subcode: "InvalidParameter",
            check: |f| {
                let p = f.provider.as_ref().expect("provider fault");
                assert_eq!(p.provider.as_deref(), Some("Shell cmd plugin"));
                assert_eq!(
                    p.path.as_deref(),
                    Some("%systemroot%\\system32\\winrscmd.dll")
                );
                assert_eq!(p.message.as_deref(), Some("The parameter is incorrect."));
                assert_eq!(f.message(), "The parameter is incorrect.");
                assert_eq!(f.meaning(), Some("invalid parameter"));
            },
        },
        Expected {
            key: "pypsrp/test_winrs_no_cmd_shell",
            index: 1,
            code: code::FILE_NOT_FOUND,
            subcode: "InternalError",
            check: |f| {
                assert_eq!(f.code, "s:Receiver");
                let p = f.provider.as_ref().expect("provider fault");
                assert_eq!(
                    p.path.as_deref(),
                    Some("%systemroot%\\system32\\winrscmd.dll")
                );
                assert_eq!(f.message(), "The system cannot find the file specified.");
            },
        },
        Expected {
            key: "pypsrp/test_winrs_operation_timeout",
            index: 3,
            code: code::OPERATION_TIMEOUT,
            subcode: "TimedOut",
            check: timed_out,
        },
        Expected {
            key: "pypsrp/test_winrs_operation_timeout",
            index: 4,
            code: code::OPERATION_TIMEOUT,
            subcode: "TimedOut",
            check: timed_out,
        },
    ]
}

#[test]
fn every_fault_reads_as_a_typed_fault_and_every_success_as_none() {
    let expected = expected_faults();
    let mut seen = Vec::new();
    for rec in recorded::all() {
        for (i, ex) in rec.exchanges.iter().enumerate() {
            let root = parse(ex.response.as_bytes()).unwrap();
            let fault = Fault::from_envelope(&root);
            let key = rec.key();
            match ex.status {
                200 => assert!(
                    fault.is_none(),
                    "{key} #{i}: status 200 but read as {fault:?}"
                ),
                500 => {
                    let f =
                        fault.unwrap_or_else(|| panic!("{key} #{i}: status 500 without a fault"));
                    let e = expected
                        .iter()
                        .find(|e| e.key == key && e.index == i)
                        .unwrap_or_else(|| {
                            panic!("{key} #{i}: fault not in the expected list: {f}")
                        });
                    assert_eq!(f.code(), Some(e.code), "{key} #{i}");
                    assert_eq!(f.subcode_name(), Some(e.subcode), "{key} #{i}");
                    assert!(!f.reason.is_empty(), "{key} #{i}: reason");
                    assert!(
                        f.to_string().contains(&e.code.to_string()),
                        "{key} #{i}: Display {f}"
                    );
                    (e.check)(&f);
                    seen.push((key, i));
                }
                other => panic!("{key} #{i}: unexpected status {other}"),
            }
        }
    }
    let missing: Vec<_> = expected
        .iter()
        .filter(|e| !seen.iter().any(|(k, i)| k == e.key && *i == e.index))
        .map(|e| format!("{} #{}", e.key, e.index))
        .collect();
    assert!(missing.is_empty(), "expected faults not found: {missing:?}");
    assert_eq!(seen.len(), expected.len());
}

#[test]
fn config_get_reads_max_envelope_size() {
    let root = response_root("pypsrp/test_wsman_update_envelope_size_4096", 0);
    let el = body(&root).children.first().expect("cfg:Config");
    assert!(el.is(ns::CONFIG, "Config"));
    let cfg = Instance::from_element(el);
    assert_eq!(cfg.class_name, "Config");
    assert_eq!(cfg.namespace.as_deref(), Some(ns::CONFIG));
    assert_eq!(
        cfg.get("MaxEnvelopeSizekb").and_then(Value::as_u64),
        Some(4096)
    );
    assert_eq!(cfg.get("MaxTimeoutms").and_then(Value::as_u64), Some(60000));
    assert_eq!(
        cfg.get("MaxProviderRequests").and_then(Value::as_u64),
        Some(4294967295)
    );
    let service = cfg
        .get("Service")
        .and_then(Value::as_instance)
        .expect("Service");
    assert_eq!(
        service
            .get("MaxConcurrentOperationsPerUser")
            .and_then(Value::as_u64),
        Some(1500)
    );
    assert_eq!(
        service.get("AllowUnencrypted").and_then(Value::as_bool),
        Some(false)
    );
    let auth = service
        .get("Auth")
        .and_then(Value::as_instance)
        .expect("Service/Auth");
    assert_eq!(auth.get_str("CbtHardeningLevel"), Some("Relaxed"));
    let client = cfg
        .get("Client")
        .and_then(Value::as_instance)
        .expect("Client");
    assert_eq!(client.get_str("TrustedHosts"), Some(""));
    let winrs = cfg
        .get("Winrs")
        .and_then(Value::as_instance)
        .expect("Winrs");
    assert_eq!(
        winrs.get("MaxShellsPerUser").and_then(Value::as_i64),
        Some(2147483647)
    );
    let names: Vec<&str> = cfg.properties.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "MaxEnvelopeSizekb",
            "MaxTimeoutms",
            "MaxBatchItems",
            "MaxProviderRequests",
            "Client",
            "Service",
            "Winrs"
        ]
    );
}

#[test]
fn identify_response_reads_its_fields() {
    let root = response_root("WinRMSharp/ProtocolIdentify", 0);
    let id = IdentifyResponse::from_body(body(&root)).unwrap();
    assert_eq!(
        id.protocol_version,
        "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
    );
    assert_eq!(id.product_vendor, "Microsoft Corporation");
    assert_eq!(id.product_version, "OS: 10.0.14393 SP: 0.0 Stack: 3.0");
    assert_eq!(id.stack_version(), Some("3.0"));
    assert_eq!(
        id.security_profiles,
        [
            "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/basic",
            "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/spnego-kerberos"
        ]
    );
    // Any other body is a typed error, not a default value.
    let other = response_root("pypsrp/test_wsman_update_envelope_size_4096", 0);
    assert!(IdentifyResponse::from_body(body(&other)).is_err());
}

fn check_shell(shell: &Instance, id: &str) {
    assert_eq!(shell.class_name, "Shell");
    assert_eq!(shell.namespace.as_deref(), Some(ns::SHELL));
    assert_eq!(shell.get_str("ShellId"), Some(id));
}

#[test]
fn create_response_reads_resource_created_and_the_shell() {
    let root = response_root("WinRMSharp/ProtocolRunCommandExceedingOperationTimeout", 0);
    let b = body(&root);
    let rc = b
        .child(ns::TRANSFER, "ResourceCreated")
        .expect("x:ResourceCreated");
    let epr = EndpointReference::from_element(rc).expect("EPR");
    assert_eq!(epr.address, "http://windows-host:5985/wsman");
    assert_eq!(epr.resource_uri, ns::RESOURCE_CMD);
    assert_eq!(
        epr.selector("ShellId"),
        Some("6A7CB0C1-A7B2-412E-846A-38C988AEEC3D")
    );
    let shell = Instance::from_element(b.child(ns::SHELL, "Shell").expect("rsp:Shell"));
    check_shell(&shell, "6A7CB0C1-A7B2-412E-846A-38C988AEEC3D");
    assert_eq!(shell.get_str("Owner"), Some("exampleUser"));
    assert_eq!(shell.get_str("IdleTimeOut"), Some("PT7200.000S"));
    assert_eq!(shell.get_str("OutputStreams"), Some("stdout stderr"));
    assert_eq!(shell.get_str("ShellInactivity"), Some("P0DT0H0M0S"));
}

#[test]
fn get_response_reads_the_shell_instance() {
    let root = response_root("pypsrp/test_psrp_is_alive_invalid_selectors", 3);
    let shell = Instance::from_element(body(&root).children.first().expect("rsp:Shell"));
    check_shell(&shell, "6F1903CA-E06A-4A8B-BDFC-B44203149D55");
    assert_eq!(shell.get_str("State"), Some("Connected"));
    assert_eq!(shell.get("ProcessId").and_then(Value::as_u64), Some(4384));
    assert_eq!(
        shell.get_str("ClientIP"),
        Some("fdc3:d46:8e06:cfa8:f075:80ff:fe33:2fc8")
    );
}

#[test]
fn enumerate_response_items_are_shell_instances() {
    let root = response_root("pypsrp/test_psrp_disconnect_runspaces", 11);
    let resp = body(&root)
        .child(ns::ENUMERATION, "EnumerateResponse")
        .expect("EnumerateResponse");
    let ctx = resp
        .child(ns::ENUMERATION, "EnumerationContext")
        .expect("EnumerationContext");
    assert_eq!(ctx.text.trim(), "");
    assert!(resp.child(ns::WSMAN, "EndOfSequence").is_some());
    let items = resp.child(ns::WSMAN, "Items").expect("w:Items");
    let shells: Vec<Instance> = items.children.iter().map(Instance::from_element).collect();
    assert_eq!(shells.len(), 2);
    check_shell(&shells[0], "B6631D8E-65A0-49F2-9053-A1B156C95777");
    check_shell(&shells[1], "01AA3E43-9E21-424B-A7FC-BC16AA34F4CE");
    for s in &shells {
        assert_eq!(s.get_str("State"), Some("Disconnected"));
        assert_eq!(s.get_str("Owner"), Some("WIN-NNMU24VVKJ0\\vagrant"));
        assert_eq!(
            s.get_str("ResourceUri"),
            Some("http://schemas.microsoft.com/powershell/Microsoft.PowerShell")
        );
    }
    assert_eq!(
        shells[1].get("ProcessId").and_then(Value::as_u64),
        Some(4060)
    );
    // The filtered enumerations that follow are empty and end the sequence.
    for i in [12, 13] {
        let root = response_root("pypsrp/test_psrp_disconnect_runspaces", i);
        let resp = body(&root)
            .child(ns::ENUMERATION, "EnumerateResponse")
            .unwrap();
        assert!(resp.child(ns::WSMAN, "Items").is_none());
        assert!(resp.child(ns::WSMAN, "EndOfSequence").is_some());
    }
}

#[test]
fn reader_matches_namespaces_not_prefixes() {
    // The same WSManFault under other prefixes, and a look-alike in a foreign namespace.
    let xml = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><env:Fault>
        <env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>q:InvalidSelectors</env:Value></env:Subcode></env:Code>
        <env:Reason><env:Text xml:lang="en-US">gone</env:Text></env:Reason>
        <env:Detail><x:WSManFault xmlns:x="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150858843" Machine="m"><x:Message>gone</x:Message></x:WSManFault></env:Detail>
        </env:Fault></env:Body></env:Envelope>"#;
    let f = Fault::from_envelope(&parse(xml.as_bytes()).unwrap()).unwrap();
    assert!(f.is_gone());
    assert_eq!(f.machine.as_deref(), Some("m"));
    let foreign = xml.replace("http://www.w3.org/2003/05/soap-envelope", "urn:not-soap");
    assert!(Fault::from_envelope(&parse(foreign.as_bytes()).unwrap()).is_none());
}
