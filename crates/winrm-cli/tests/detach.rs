//! `run --detach` prints the ids of the command it left running (as JSON with --json),
//! and `attach` with those ids streams the rest and deletes the shell.

mod support;

#[test]
fn detach_with_json_prints_ids_that_attach_takes() {
    let (_runtime, sim) = support::simulator();
    let out = support::command_at(
        &sim,
        &[
            "--auth",
            "ntlm",
            "--json",
            "run",
            "--detach",
            "ping",
            "-n",
            "2",
            "localhost",
        ],
    )
    .output()
    .expect("runs winrm");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let ids: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    let shell = ids["shell_id"].as_str().expect("shell_id");
    let command = ids["command_id"].as_str().expect("command_id");
    assert_eq!(sim.counters().disconnected_shells, 1, "{stderr}");

    let out = support::command_at(&sim, &["--auth", "ntlm", "attach", shell, command])
        .output()
        .expect("runs winrm");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(sim.counters().open_shells, 0, "{stderr}");
}
