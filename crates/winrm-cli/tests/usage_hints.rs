//! What a newcomer meets against the embedded simulator: `get` on a class without
//! `--selector` gets a hint naming it (`attach` to a gone shell another one), and
//! `ps -` reads its script from stdin as `pwsh -` does.

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

/// `attach` to a shell that is gone: InvalidSelectors there means the shell or command
/// no longer exists, not a missing `--selector`.
#[test]
fn attach_to_a_gone_shell_hints_that_it_no_longer_exists() {
    let (_runtime, sim) = support::simulator();
    let out = support::command(&[
        "attach",
        "11111111-2222-3333-4444-555555555555",
        "AAAAAAAA-2222-3333-4444-555555555555",
    ])
    .args(["--endpoint", &sim.endpoint(), "--user", sim.user()])
    .env("WINRM_PASSWORD", sim.password())
    .output()
    .expect("runs winrm");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
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
