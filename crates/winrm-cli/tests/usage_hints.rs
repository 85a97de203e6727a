//! What a newcomer meets against the embedded simulator: `get` on a class without
//! `--selector` gets a hint naming it (`attach` to a gone shell another one), and
//! `ps -` reads its script from stdin as `pwsh -` does. Credentials without an endpoint
//! and blank commands, queries and paths are usage errors; a WMI namespace may be
//! written with backslashes.

use std::io::Write;
use std::process::Stdio;

mod support;

#[test]
fn get_without_a_selector_hints_at_selector() {
    let out = support::winrm(&["get", "wmicimv2/Win32_Service"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("InvalidSelectors"), "{stderr}");
    assert!(stderr.contains("--selector KEY=VALUE"), "{stderr}");
}

/// `get` with a selector no instance has: the hint is about the values and the keys,
/// not about giving `--selector` (which was given).
#[test]
fn get_with_a_selector_that_matches_nothing_hints_at_the_values() {
    let out = support::winrm(&["get", "wmicimv2/Win32_Service", "--selector", "Name=Nope"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("InvalidSelectors"), "{stderr}");
    assert!(
        stderr.contains("hint: no instance has these selectors"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("name the instance with --selector"),
        "{stderr}"
    );
}

/// `attach` to a shell that is gone: InvalidSelectors there means the shell or command
/// no longer exists, not a missing `--selector`.
#[test]
fn attach_to_a_gone_shell_hints_that_it_no_longer_exists() {
    let (_runtime, sim) = support::simulator();
    let out = support::command_at(
        &sim,
        &[
            "attach",
            "11111111-2222-3333-4444-555555555555",
            "AAAAAAAA-2222-3333-4444-555555555555",
        ],
    )
    .output()
    .expect("runs winrm");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // attach exits with the command's code, so an error of its own is 255.
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert!(stderr.contains("InvalidSelectors"), "{stderr}");
    assert!(
        stderr.contains("hint: the shell or command no longer exists")
            && stderr.contains("idle timeout"),
        "{stderr}"
    );
    assert!(!stderr.contains("--selector"), "{stderr}");
}

#[test]
fn ps_dash_reads_the_script_from_stdin() {
    let mut child = support::command(&["ps", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs winrm");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"Write-Output 'from stdin'\n")
        .expect("writes the script");
    let out = child.wait_with_output().expect("waits for winrm");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim_end(), "from stdin");
}

/// `winrm sim` stops at the end of its stdin; started where stdin is closed at once (in
/// the background, `winrm sim &`), it says how to keep it serving.
#[test]
fn a_simulator_stopped_by_closed_stdin_names_ignore_stdin() {
    let out = support::winrm(&["sim", "--addr", "127.0.0.1:0"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.starts_with("http://127.0.0.1:"), "{stdout}");
    assert!(stderr.contains("stdin closed, stopping"), "{stderr}");
    assert!(stderr.contains("--ignore-stdin"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// Credentials with no endpoint (a mistyped or unset `WINRM_ENDPOINT` in a script) are
/// refused, rather than the command run on the embedded simulator with its own account
/// and reported a success.
#[test]
fn credentials_without_an_endpoint_are_a_usage_error() {
    let flags = support::winrm(&["--user", "bob", "--password", "x", "run", "hostname"]);
    let env = support::command(&["run", "hostname"])
        .env("WINRM_USER", "bob")
        .output()
        .expect("runs winrm");
    let password_only = support::command(&["identify"])
        .env("WINRM_PASSWORD", "x")
        .output()
        .expect("runs winrm");
    for (what, out) in [
        ("flags", flags),
        ("WINRM_USER", env),
        ("WINRM_PASSWORD", password_only),
    ] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.contains("without an endpoint"), "{what}: {stderr}");
        assert!(stderr.contains("--endpoint URL"), "{what}: {stderr}");
        assert!(out.stdout.is_empty(), "{what}: ran anyway");
    }
}

/// Blank arguments are caught before anything is sent: an empty command, an empty WQL
/// query, an empty remote path (which would otherwise land a file in the user's
/// Documents folder).
#[test]
fn blank_commands_queries_and_remote_paths_are_usage_errors() {
    let file = std::env::temp_dir().join(format!("winrm-blank-{}.txt", std::process::id()));
    std::fs::write(&file, b"x").expect("writes a file");
    let local = file.to_str().expect("a UTF-8 path");
    for args in [
        &["run", ""][..],
        &["run", "  ", "x"],
        &["wql", ""],
        &["cp", local, ""],
        &["fetch", "", local],
    ] {
        let out = support::winrm(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("embedded simulator"),
            "{args:?}: sent anyway: {stderr}"
        );
    }
    let _ = std::fs::remove_file(&file);
}

/// `--namespace` as WMI writes it, with backslashes.
#[test]
fn a_wmi_namespace_with_backslashes_is_accepted() {
    let out = support::winrm(&[
        "wql",
        "--namespace",
        "root\\cimv2",
        "SELECT Name FROM Win32_Service",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!out.stdout.is_empty(), "no rows: {stderr}");
}

/// Options the client or the simulator refuse are usage errors (exit 2) that name the
/// option or the file: a malformed pin, a `--ca` file without certificates, a server
/// certificate and key that do not belong together.
#[test]
fn malformed_tls_options_are_usage_errors_that_name_them() {
    let dir = std::env::temp_dir().join(format!("winrm-tls-options-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let not_pem = dir.join("not-a-ca.pem");
    std::fs::write(&not_pem, b"hello\n").expect("writes");
    let out = support::winrm(&[
        "--endpoint",
        "https://127.0.0.1:1/wsman",
        "--pin",
        "00:11",
        "identify",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("pin \"00:11\""), "{stderr}");
    let ca = not_pem.to_str().expect("a UTF-8 path");
    let out = support::winrm(&[
        "--endpoint",
        "https://127.0.0.1:1/wsman",
        "--ca",
        ca,
        "identify",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(ca) && stderr.contains("no certificate"),
        "{stderr}"
    );

    // A certificate for one key, served with another.
    let key = rcgen::KeyPair::generate().expect("a key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("a certificate");
    let (cert_file, other_key) = (dir.join("server.pem"), dir.join("other.key"));
    std::fs::write(&cert_file, cert.pem()).expect("writes");
    let other = rcgen::KeyPair::generate().expect("another key");
    std::fs::write(&other_key, other.serialize_pem()).expect("writes");
    let out = support::winrm(&[
        "sim",
        "--ignore-stdin",
        "--tls-cert",
        cert_file.to_str().expect("UTF-8"),
        "--tls-key",
        other_key.to_str().expect("UTF-8"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("certificate and key"), "{stderr}");
    assert!(!stderr.contains("cannot listen"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `pwsh`: what `Write-Host` writes goes to stdout as plain text (as Invoke-Command and
/// powershell.exe show it); with `--json` to stderr, so that stdout holds only JSON.
#[test]
fn pwsh_shows_write_host_on_stdout() {
    let out = support::winrm(&["pwsh", "Write-Host hello; Write-Output 'out'"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.lines().any(|l| l == "hello"), "{stdout}");
    assert!(!stderr.contains("hello"), "{stderr}");

    let out = support::winrm(&["--json", "pwsh", "Write-Host hello; Write-Output 'out'"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stdout.contains("hello"), "{stdout}");
    assert!(stdout.contains("\"out\""), "{stdout}");
    assert!(stderr.lines().any(|l| l == "hello"), "{stderr}");
}

/// `ps` with a script too long for cmd.exe's 8,191-character line (its base64 is about
/// 16,000 characters) runs powershell.exe without cmd.exe and succeeds.
#[test]
fn ps_runs_a_script_too_long_for_cmd_exe() {
    let script = format!("Write-Output '{}'\n", "x".repeat(6_000));
    let mut child = support::command(&["ps", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs winrm");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("writes the script");
    let out = child.wait_with_output().expect("waits for winrm");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim_end(), "x".repeat(6_000));
}
