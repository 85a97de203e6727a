//! A host's row in `run --hosts` and `cp --hosts` carries what went wrong: for a fault
//! its code, meaning and the server's message, not only that it was a fault.

mod support;

#[test]
fn a_faulted_hosts_row_carries_the_faults_code_and_message() {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let sim = rt
        .block_on(winrm_simulator::Simulator::start_with(
            winrm_simulator::SimConfig {
                max_shells_per_user: 0,
                ..Default::default()
            },
        ))
        .expect("starts the simulator");
    let hosts = format!("{}#quota", sim.endpoint());
    let out = support::command(&["--user", sim.user(), "--auth", "ntlm", "--json"])
        .args(["run", "--hosts", &hosts, "--", "hostname"])
        .env("WINRM_PASSWORD", sim.password())
        .output()
        .expect("runs winrm");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let row: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON row on stdout");
    assert_eq!(row["status"], "error", "{row}");
    let error = row["error"].as_str().expect("an error text");
    assert!(error.starts_with("WS-Management fault "), "{error}");
    // The code in decimal and hex, and the server's own message.
    assert!(error.contains("(0x"), "{error}");
    assert!(error.to_ascii_lowercase().contains("shell"), "{error}");
    assert!(stderr.contains("1 host: 0 succeeded, 1 failed"), "{stderr}");
}
