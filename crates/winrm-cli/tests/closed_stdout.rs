//! A reader that goes away before the results are written (`winrm config | head -0`)
//! ends the tool with 141 (128 + SIGPIPE), as it ends `run`, never with a panic; a
//! pipeline still streaming is stopped on the server first.

use std::process::Stdio;

mod support;

/// Runs `winrm args...` against its embedded simulator with stdout closed before the
/// tool writes anything: the exit status and what it said on stderr.
fn with_stdout_closed(args: &[&str]) -> (Option<i32>, String) {
    let mut child = support::command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs winrm");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("waits for winrm");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn results_written_to_a_closed_stdout_end_the_tool_with_141() {
    for args in [
        &["config"][..],
        &["identify"],
        &["--json", "get", "win32_operatingsystem"],
        &["pwsh", "Get-Process"],
        &["--json", "pwsh", "Get-Process"],
    ] {
        let (code, stderr) = with_stdout_closed(args);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(code, Some(141), "{args:?}: {stderr}");
        assert!(!stderr.contains("interrupted"), "{args:?}: {stderr}");
    }
}

/// `winrm wql ... | head -1` and `winrm enumerate ... | head -1`: the enumeration is
/// released on the server (no context left open) before the tool exits with 141.
#[test]
fn a_reader_leaving_early_releases_the_enumeration() {
    let (_runtime, sim) = support::simulator();
    for args in [
        &["wql", "SELECT Name FROM Sim_Item"][..],
        &["enumerate", "wmicimv2/Sim_Item"],
        &["--json", "wql", "SELECT * FROM Sim_Item"],
    ] {
        let releases = sim.counters().releases;
        let (child, stdout) = support::started_at(&sim, args);
        drop(stdout);
        let out = child.wait_with_output().expect("waits for winrm");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        let c = sim.counters();
        assert_eq!(c.open_enumerations, 0, "{args:?}: {stderr}");
        assert!(c.releases > releases, "{args:?}: no Release; {stderr}");
    }
}
