//! Sanity checks on the third-party recordings in `fixtures/recorded` and on
//! the loader in `tests/support/recorded.rs`.

#[path = "support/recorded.rs"]
mod recorded;

use recorded::{StatusSource, load, response_is_fault};

/// (origin/stem, number of exchanges), counted from the files themselves.
const EXCHANGE_COUNTS: &[(&str, usize)] = &[
    ("WinRMSharp/ProtocolGetCommandStateBeforeRun", 2),
    ("WinRMSharp/ProtocolIdentify", 1),
    ("WinRMSharp/ProtocolOpenCloseShell", 2),
    ("WinRMSharp/ProtocolRunCommandExceedingOperationTimeout", 5),
    ("WinRMSharp/ProtocolRunCommandWithCommandInput", 6),
    ("WinRMSharp/ProtocolRunCommandWithCommandTimeout", 5),
    ("WinRb-WinRM/soap_fault_v1", 1),
    ("WinRb-WinRM/soap_fault_v2", 1),
    ("WinRb-WinRM/wmi_error_v2", 1),
    ("pypsrp/test_psrp_disconnect_runspaces", 20),
    ("pypsrp/test_psrp_is_alive_invalid_selectors", 5),
    ("pypsrp/test_psrp_is_alive_other_wsman_error", 5),
    ("pypsrp/test_psrp_multiple_invocations", 10),
    ("pypsrp/test_psrp_nested_command", 8),
    ("pypsrp/test_psrp_receive_failure", 5),
    ("pypsrp/test_winrs_bad_cmd_id", 5),
    ("pypsrp/test_winrs_environment", 5),
    ("pypsrp/test_winrs_extra_opts", 5),
    ("pypsrp/test_winrs_fail_poll_process", 3),
    ("pypsrp/test_winrs_no_cmd_shell", 6),
    ("pypsrp/test_winrs_noprofile", 5),
    ("pypsrp/test_winrs_operation_timeout", 8),
    ("pypsrp/test_winrs_send", 7),
    ("pypsrp/test_winrs_standard", 5),
    ("pypsrp/test_winrs_stderr_rc", 5),
    ("pypsrp/test_winrs_unicode", 5),
    ("pypsrp/test_wsman_update_envelope_size_4096", 1),
];

#[test]
fn all_recordings_load_with_known_shape() {
    let all = recorded::all();
    assert_eq!(
        all.len(),
        27,
        "27 recordings (fixtures/SOURCES.md is not one)"
    );
    for origin in recorded::ORIGINS {
        let n = all.iter().filter(|r| r.origin == origin).count();
        let expected = match origin {
            "pypsrp" => 18,
            "WinRMSharp" => 6,
            "WinRb-WinRM" => 3,
            _ => unreachable!(),
        };
        assert_eq!(n, expected, "{origin}");
    }

    let got: Vec<(String, usize)> = all.iter().map(|r| (r.key(), r.exchanges.len())).collect();
    let want: Vec<(String, usize)> = EXCHANGE_COUNTS
        .iter()
        .map(|(k, n)| (k.to_string(), *n))
        .collect();
    assert_eq!(got, want);
    let total: usize = all.iter().map(|r| r.exchanges.len()).sum();
    assert_eq!(total, 137);

    let mut faults = 0;
    for r in &all {
        for (i, x) in r.exchanges.iter().enumerate() {
            let at = format!("{}[{i}]", r.key());
            let resp = x.response.trim_start();
            assert!(
                resp.starts_with('<'),
                "{at}: response does not start with `<`"
            );
            assert!(
                resp.starts_with("<s:Envelope") || resp.starts_with("<?xml version=\"1.0\"?>"),
                "{at}: unexpected response start {:?}",
                &resp[..resp.len().min(40)]
            );
            if r.origin == "WinRb-WinRM" {
                assert!(x.request.is_empty(), "{at}");
            } else {
                assert!(x.request.trim_start().starts_with('<'), "{at}: request");
            }
            assert!(x.status == 200 || x.status == 500, "{at}: {}", x.status);
            // The recorded/declared status agrees with the body everywhere:
            // pypsrp transport_error, WinRMSharp StatusCode, WinRb (all faults).
            assert_eq!(
                x.status == 500,
                response_is_fault(&x.response),
                "{at}: status {} vs body",
                x.status
            );
            // YAML folding normalises the CRLF files; no CR survives.
            assert!(
                !x.request.contains('\r') && !x.response.contains('\r'),
                "{at}"
            );
            if x.status == 500 {
                faults += 1;
            }
        }
    }
    assert_eq!(faults, 13, "8 pypsrp + 2 WinRMSharp + 3 WinRb faults");
}

#[test]
fn pypsrp_operation_timeout_has_two_timed_out_receives() {
    let r = load("pypsrp/test_winrs_operation_timeout");
    assert_eq!(r.origin, "pypsrp");
    assert_eq!(r.name, "test_winrs_operation_timeout");
    let statuses: Vec<u16> = r.exchanges.iter().map(|x| x.status).collect();
    assert_eq!(statuses, [200, 200, 200, 500, 500, 200, 200, 200]);
    for x in &r.exchanges[3..5] {
        assert_eq!(x.status_source, StatusSource::TransportError);
        assert!(x.request.contains("/windows/shell/Receive</wsa:Action>"));
        assert!(x.response.contains("<s:Value>w:TimedOut</s:Value>"));
        assert!(x.response.contains("Code=\"2150858793\""));
    }
    assert_eq!(r.exchanges[0].status_source, StatusSource::Inferred);
    // The third Receive completes the command.
    assert!(r.exchanges[5].response.contains("CommandState/Done"));
}

#[test]
fn pypsrp_overrides_are_exposed() {
    let r = load("pypsrp/test_winrs_bad_cmd_id");
    let with: Vec<usize> = (0..r.exchanges.len())
        .filter(|&i| !r.exchanges[i].overrides.is_empty())
        .collect();
    assert_eq!(with, [2]);
    let x = &r.exchanges[2];
    assert_eq!(x.status, 500);
    assert!(x.response.contains("w:InvalidSelectors"));
    assert_eq!(x.overrides.len(), 1);
    assert_eq!(x.overrides[0].path, "s:Body/rsp:Receive/rsp:DesiredStream");
    assert_eq!(
        x.overrides[0]
            .attributes
            .get("CommandId")
            .map(String::as_str),
        Some("87E77BEB-6761-4C48-9D70-A00266B8459A")
    );
}

#[test]
fn pypsrp_unicode_request_is_utf8_text() {
    let r = load("pypsrp/test_winrs_unicode");
    assert!(r.exchanges[0].request.contains("WINRS_CODEPAGE\">65001"));
    assert!(
        r.exchanges
            .iter()
            .any(|x| x.request.contains("Write-Host こんにちは"))
    );
}

#[test]
fn winrmsharp_bodies_keep_utf16_declaration_and_statuses() {
    let r = load("WinRMSharp/ProtocolIdentify");
    assert_eq!(r.exchanges.len(), 1);
    let x = &r.exchanges[0];
    assert_eq!((x.status, x.status_source), (200, StatusSource::Recorded));
    // Folded block: the blank line after the declaration folds to one '\n'.
    assert!(
        x.request
            .starts_with("<?xml version=\"1.0\" encoding=\"utf-16\"?>\n<env:Envelope")
    );
    assert!(x.request.contains("<wsmid:Identify />"));
    assert!(
        x.response
            .contains("<wsmid:ProductVendor>Microsoft Corporation<")
    );

    let r = load("WinRMSharp/ProtocolRunCommandExceedingOperationTimeout");
    let statuses: Vec<u16> = r.exchanges.iter().map(|x| x.status).collect();
    assert_eq!(statuses, [200, 200, 500, 200, 200]);
    assert!(r.exchanges[2].response.contains("w:TimedOut"));

    let r = load("WinRMSharp/ProtocolGetCommandStateBeforeRun");
    let statuses: Vec<u16> = r.exchanges.iter().map(|x| x.status).collect();
    assert_eq!(statuses, [200, 500]);
    assert!(r.exchanges[1].response.contains("w:InvalidSelectors"));
}

#[test]
fn winrb_stubs_are_single_fault_responses() {
    for stem in ["soap_fault_v1", "soap_fault_v2", "wmi_error_v2"] {
        let r = load(&format!("WinRb-WinRM/{stem}"));
        assert_eq!(r.origin, "WinRb-WinRM");
        assert_eq!(r.exchanges.len(), 1);
        let x = &r.exchanges[0];
        assert_eq!((x.status, x.status_source), (500, StatusSource::Assumed));
        assert!(x.request.is_empty());
    }
    let v2 = load("WinRb-WinRM/soap_fault_v2");
    assert!(
        v2.exchanges[0]
            .response
            .starts_with("<?xml version=\"1.0\"?>")
    );
    let wmi = load("WinRb-WinRM/wmi_error_v2");
    assert!(wmi.exchanges[0].response.contains("w:QuotaLimit"));
}

#[test]
fn fixtures_dir_has_sources_and_recordings() {
    let dir = recorded::fixtures_dir();
    assert!(dir.join("SOURCES.md").is_file());
    assert!(
        dir.join("recorded/pypsrp/test_winrs_standard.yml")
            .is_file()
    );
}
