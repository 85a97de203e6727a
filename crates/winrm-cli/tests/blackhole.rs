//! A host that accepts the connection and never answers: interrupts (Ctrl-C, SIGTERM,
//! SIGHUP) and `--deadline` act at once while the tool is logging on and creating the
//! shell, the runspace pool or the enumeration, not only once the command runs, instead
//! of waiting out the HTTP timeout (30 s here). And what the tool says then is true: no
//! "Release was sent" for an enumeration the server never answered.
#![cfg(unix)]

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

mod support;

/// Well below the HTTP timeout the commands are given (30 s): what "at once" allows,
/// the cleanup grace (2 s for a Create still in flight) included.
const PROMPT: Duration = Duration::from_millis(4500);

/// `winrm --endpoint HOLE --user u --auth ntlm --http-timeout 30 args...` (the password
/// in the environment), started, returned once the black hole has accepted its
/// connection (the tool's signal handling is installed by then).
fn hanging(args: &[&str]) -> Child {
    spawn_hanging(|url| {
        let mut argv = vec!["--endpoint".to_string(), url.to_string()];
        argv.extend(args.iter().map(|a| a.to_string()));
        argv
    })
}

/// Starts `winrm --user u --auth ntlm --http-timeout 30 ARGS`, ARGS made by `args` from
/// a black hole's URL, and returns it once the black hole has accepted its connection.
fn spawn_hanging(args: impl FnOnce(&str) -> Vec<String>) -> Child {
    let (url, accepted) = support::black_hole();
    let args = args(&url);
    let mut child = support::command(&["--user", "u", "--auth", "ntlm", "--http-timeout", "30"])
        .args(&args)
        .env("WINRM_PASSWORD", "p")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs winrm");
    if accepted.recv_timeout(Duration::from_secs(10)).is_err() {
        let _ = child.kill();
        panic!("{args:?}: winrm never connected");
    }
    // The request goes out right after the connection is made.
    std::thread::sleep(Duration::from_millis(200));
    child
}

fn kill(child: &Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("runs kill");
    assert!(status.success(), "kill -{signal} failed");
}

/// Waits for `child` (killing it after 60 s, past the HTTP timeout): exit code, stdout,
/// stderr, and how long it took from `since`.
fn finish(mut child: Child, since: Instant) -> (Option<i32>, String, String, Duration) {
    while child.try_wait().expect("polls winrm").is_none() {
        if since.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = since.elapsed();
    let out = child.wait_with_output().expect("waits for winrm");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        took,
    )
}

#[test]
fn an_interrupt_while_logging_on_exits_at_once_with_the_signals_code() {
    for (args, signal, expected) in [
        (&["run", "hostname"][..], "INT", 130),
        (&["ps", "Get-Date"], "TERM", 143),
        (&["pwsh", "Get-Date"], "HUP", 129),
        (&["attach", "SHELL", "COMMAND"], "INT", 130),
    ] {
        let child = hanging(args);
        let signalled = Instant::now();
        kill(&child, signal);
        let (code, _, stderr, took) = finish(child, signalled);
        assert_eq!(code, Some(expected), "{args:?} SIG{signal}: {stderr}");
        assert!(
            took < PROMPT,
            "{args:?} SIG{signal}: exited after {took:?}; {stderr}"
        );
        assert!(!stderr.contains("error:"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_deadline_covers_the_shells_and_the_pools_creation() {
    for args in [
        &["run", "--deadline", "1", "hostname"][..],
        &["ps", "--deadline", "1", "Get-Date"],
        &["pwsh", "--deadline", "1", "Get-Date"],
    ] {
        let started = Instant::now();
        let child = hanging(args);
        let (code, _, stderr, took) = finish(child, started);
        assert_eq!(code, Some(124), "{args:?}: {stderr}");
        assert!(
            took < Duration::from_secs(1) + PROMPT,
            "{args:?}: exited after {took:?}; {stderr}"
        );
        assert!(stderr.contains("deadline of 1 s"), "{args:?}: {stderr}");
    }
}

#[test]
fn an_interrupted_query_the_server_never_answered_claims_no_release() {
    let child = hanging(&["wql", "SELECT Name FROM Win32_Service"]);
    let signalled = Instant::now();
    kill(&child, "INT");
    let (code, stdout, stderr, took) = finish(child, signalled);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(took < PROMPT, "exited after {took:?}; {stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(!stderr.contains("Release was sent"), "{stderr}");
    assert!(stderr.contains("after 0 rows"), "{stderr}");
    assert!(stderr.contains("not released"), "{stderr}");
}

/// The one JSON row of a fan-out over one host.
fn the_row(stdout: &str) -> serde_json::Value {
    let mut lines = stdout.lines();
    let row = serde_json::from_str(lines.next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(lines.next(), None, "{stdout}");
    row
}

/// `winrm --json run --hosts HOLE extra... -- hostname`, started.
fn fan_out(extra: &[&str]) -> Child {
    spawn_hanging(|url| {
        let mut argv: Vec<String> = ["--json", "run", "--hosts", url]
            .iter()
            .map(|a| a.to_string())
            .collect();
        argv.extend(extra.iter().map(|a| a.to_string()));
        argv.extend(["--".to_string(), "hostname".to_string()]);
        argv
    })
}

#[test]
fn a_fan_out_deadline_covers_the_shells_creation() {
    let started = Instant::now();
    let child = fan_out(&["--deadline", "1"]);
    let (code, stdout, stderr, took) = finish(child, started);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        took < Duration::from_secs(1) + PROMPT,
        "exited after {took:?}; {stderr}"
    );
    let row = the_row(&stdout);
    assert_eq!(row["status"], "deadline", "{row}");
    assert!(row["duration_ms"].as_u64() >= Some(1000), "{row}");
    assert!(stderr.contains("1 host: 0 succeeded, 1 failed"), "{stderr}");
}

#[test]
fn ctrl_c_cancels_a_fan_out_host_that_is_still_logging_on() {
    let child = fan_out(&[]);
    let signalled = Instant::now();
    kill(&child, "INT");
    let (code, stdout, stderr, took) = finish(child, signalled);
    assert_eq!(code, Some(130), "{stderr}");
    // Within the 2 s a cancelled host's cleanup gets, not the fan-out's 5 s grace.
    assert!(took < PROMPT, "exited after {took:?}; {stderr}");
    let row = the_row(&stdout);
    assert_eq!(row["status"], "cancelled", "{row}");
    assert!(row["duration_ms"].as_u64() >= Some(200), "{row}");
    assert!(
        stderr.contains("1 host: 0 succeeded, 0 failed, 1 cancelled"),
        "{stderr}"
    );
}

/// A second Ctrl-C stops waiting for the cleanups: the host's row says that its cleanup
/// did not finish (status `abandoned`, how long it ran, why), and the summary counts it
/// as such.
#[test]
fn a_fan_out_host_whose_cleanup_was_not_waited_for_says_so() {
    let child = fan_out(&[]);
    let signalled = Instant::now();
    kill(&child, "INT");
    std::thread::sleep(Duration::from_millis(300));
    kill(&child, "INT");
    let (code, stdout, stderr, took) = finish(child, signalled);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        took < Duration::from_secs(2),
        "exited after {took:?}; {stderr}"
    );
    let row = the_row(&stdout);
    assert_eq!(row["status"], "abandoned", "{row}");
    assert!(row["duration_ms"].as_u64() >= Some(500), "{row}");
    let error = row["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {row}"));
    assert!(error.contains("cleanup"), "{error}");
    assert!(
        stderr.contains("1 host: 0 succeeded, 0 failed, 1 abandoned"),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_stops_a_fan_out_copy_to_a_host_that_is_still_logging_on() {
    let file = std::env::temp_dir().join(format!("winrm-blackhole-{}.txt", std::process::id()));
    std::fs::write(&file, "x").expect("writes the file to copy");
    let local = file.to_str().expect("UTF-8").to_string();
    let child = spawn_hanging(|url| {
        ["cp", "--hosts", url, &local, "C:\\f.txt"]
            .iter()
            .map(|a| a.to_string())
            .collect()
    });
    let signalled = Instant::now();
    kill(&child, "INT");
    let (code, _, stderr, took) = finish(child, signalled);
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(took < PROMPT, "exited after {took:?}; {stderr}");
}
