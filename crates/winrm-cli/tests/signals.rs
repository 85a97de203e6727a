//! SIGTERM and SIGHUP (`timeout`, a service manager, a cancelled CI job, a closed
//! terminal) cancel the remote operation as Ctrl-C does, instead of killing the tool with
//! the operation left running on the server: the command gets its Signal terminate and
//! its shell is deleted, the enumeration is released, the pipeline is stopped; the exit
//! status is 128 plus the signal's number. And a closed stderr never turns the tool's
//! exit status into a panic's 101.
#![cfg(unix)]

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod support;

/// Starts `winrm args...` against `sim`, waits for its first line of stdout (the
/// operation is then running on the server) and returns the child.
fn started(sim: &winrm_simulator::Simulator, args: &[&str]) -> Child {
    let (child, mut stdout) = support::started_at(sim, args);
    // The rest of stdout keeps draining, so that the tool never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    child
}

/// Sends `signal` (a `kill` name: TERM, HUP) to `child` and returns its exit status and
/// stderr.
fn signalled(mut child: Child, signal: &str) -> (Option<i32>, String) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("runs kill");
    assert!(status.success(), "kill -{signal} failed");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("reads stderr");
    let code = child.wait().expect("waits for winrm").code();
    (code, stderr)
}

/// Waits (at most 10 s) for `done` on the simulator's counters.
fn eventually(
    sim: &winrm_simulator::Simulator,
    done: impl Fn(&winrm_simulator::CounterSnapshot) -> bool,
) -> winrm_simulator::CounterSnapshot {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let c = sim.counters();
        if done(&c) || Instant::now() > until {
            return c;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_and_sighup_terminate_the_remote_command_and_delete_its_shell() {
    let (_runtime, sim) = support::simulator();
    for (signal, expected) in [("TERM", 143), ("HUP", 129)] {
        let before = sim.counters();
        let child = started(&sim, &["run", "ping", "-n", "100", "localhost"]);
        let (code, stderr) = signalled(child, signal);
        assert_eq!(code, Some(expected), "SIG{signal}: {stderr}");
        assert!(!stderr.contains("panicked"), "SIG{signal}: {stderr}");
        assert!(
            stderr.contains(&format!("SIG{signal}: cancelling")),
            "SIG{signal}: {stderr}"
        );
        let c = eventually(&sim, |c| c.open_shells == 0 && c.running_commands == 0);
        assert!(
            c.terminate_signals > before.terminate_signals,
            "SIG{signal}: no Signal terminate; {stderr}"
        );
        assert_eq!(c.running_commands, 0, "SIG{signal}: {stderr}");
        assert_eq!(c.open_shells, 0, "SIG{signal}: {stderr}");
    }
}

#[test]
fn sigterm_releases_the_enumeration_and_stops_the_pipeline() {
    let (_runtime, sim) = support::simulator();
    let before = sim.counters();
    let child = started(&sim, &["wql", "SELECT Name FROM Sim_Item"]);
    let (code, stderr) = signalled(child, "TERM");
    // The enumeration may also have ended before the signal arrived (10,000 rows).
    let c = eventually(&sim, |c| c.open_enumerations == 0);
    assert!(
        code == Some(143) || code == Some(0),
        "wql: exit {code:?}; {stderr}"
    );
    if code == Some(143) {
        assert!(c.releases > before.releases, "wql: no Release; {stderr}");
    }
    assert_eq!(c.open_enumerations, 0, "wql: {stderr}");

    let before = sim.counters();
    let child = started(
        &sim,
        &["pwsh", "Write-Output started; Start-Sleep -Seconds 100"],
    );
    let (code, stderr) = signalled(child, "TERM");
    assert_eq!(code, Some(143), "pwsh: {stderr}");
    let c = eventually(&sim, |c| c.pipeline_stops > before.pipeline_stops);
    assert!(
        c.pipeline_stops > before.pipeline_stops,
        "pwsh: no stop signal; {stderr}"
    );
}

#[test]
fn a_closed_stderr_leaves_the_exit_status_as_it_is() {
    for (args, expected) in [
        // A fault: 1, with its message written to a stderr nobody reads.
        (
            &["get", "wmicimv2/Win32_Service", "--selector", "Name=Nope"][..],
            1,
        ),
        // A remote exit code that does not fit 0-255: 1, with a note on stderr.
        (&["run", "exit /b 300"], 1),
    ] {
        let mut child = support::command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs winrm");
        drop(child.stderr.take());
        let code = child.wait().expect("waits for winrm").code();
        assert_eq!(code, Some(expected), "{args:?}");
    }
}
