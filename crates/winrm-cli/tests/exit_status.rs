//! The tool's exit status and error output: `run`, `ps` and `attach` exit with the remote
//! command's code, so an error of the tool or the connection there exits 255 (as ssh's
//! does) and cannot be taken for the command's own 1; with `--json` an error is one JSON
//! object on stderr.

mod support;
use support::{command, winrm};

/// An endpoint where nothing listens: a port bound and closed again.
fn refused_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = l.local_addr().expect("has an address").port();
    drop(l);
    format!("http://127.0.0.1:{port}/wsman")
}

/// `winrm --endpoint URL --user u --password p global... args...` against
/// [`refused_endpoint`].
fn at_refused(global: &[&str], args: &[&str]) -> std::process::Output {
    let url = refused_endpoint();
    let mut argv = vec!["--endpoint", url.as_str(), "--user", "u", "--password", "p"];
    argv.extend_from_slice(global);
    argv.extend_from_slice(args);
    command(&argv).output().expect("runs winrm")
}

/// The last line of stderr, read as JSON.
fn json_error(stderr: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn a_remote_exit_code_of_1_is_the_commands_own() {
    let out = winrm(&["run", "exit", "1"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = winrm(&["run", "exit", "3"]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn an_error_of_the_connection_in_run_ps_and_attach_exits_255() {
    for args in [
        &["run", "hostname"][..],
        &["ps", "Get-Date"],
        &["attach", "S", "C"],
    ] {
        let out = at_refused(&[], args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{args:?}: {err}");
        assert!(err.contains("error: "), "{args:?}: {err}");
    }
    // Subcommands whose status is not a remote command's keep 1.
    let out = at_refused(&[], &["identify"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn with_json_an_error_is_one_json_object_on_stderr() {
    let out = at_refused(&["--json"], &["run", "hostname"]);
    assert_eq!(out.status.code(), Some(255));
    let v = json_error(&out.stderr);
    let e = &v["error"];
    assert_eq!(e["kind"], "connect", "{v}");
    assert_eq!(e["retryable"], true, "{v}");
    assert_eq!(e["may_have_executed"], false, "{v}");
    assert!(e["fault"].is_null(), "{v}");
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("connect")),
        "{v}"
    );
    assert!(out.stdout.is_empty());

    // A fault from the (embedded) server: its code and subcode as values.
    let out = winrm(&[
        "--json",
        "get",
        "wmicimv2/Win32_Service",
        "--selector",
        "Name=NoSuchService",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = json_error(&out.stderr);
    let e = &v["error"];
    assert_eq!(e["kind"], "fault", "{v}");
    assert!(e["fault"]["code"].as_u64().is_some(), "{v}");
    assert!(e["fault"]["subcode"].is_string(), "{v}");
    assert!(
        e["hint"].is_string(),
        "a selector that matches nothing gets its hint: {v}"
    );
}
