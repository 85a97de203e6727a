//! Running the `winrm` binary in the tests: no endpoint or account from the environment
//! (so each command uses its own embedded simulator), no stdin.

use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};

/// `winrm args...`, not started yet.
pub fn command<S: AsRef<OsStr>>(args: &[S]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_winrm"));
    c.args(args)
        .env_remove("WINRM_ENDPOINT")
        .env_remove("WINRM_USER")
        .env_remove("WINRM_PASSWORD")
        .stdin(Stdio::null());
    c
}

/// Runs `winrm args...` to its end.
#[allow(dead_code)] // not every test file uses both
pub fn winrm<S: AsRef<OsStr>>(args: &[S]) -> Output {
    command(args).output().expect("runs winrm")
}

/// A simulator of the test's own, on a runtime the caller keeps alive (dropping the
/// runtime stops the simulator).
#[allow(dead_code)] // not every test file starts one
pub fn simulator() -> (tokio::runtime::Runtime, winrm_simulator::Simulator) {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    let sim = rt
        .block_on(winrm_simulator::Simulator::start())
        .expect("starts the simulator");
    (rt, sim)
}

/// `winrm --endpoint URL --user USER args...` against `sim`, its password in the
/// environment (the global options first: `run` takes the rest of the line).
#[allow(dead_code)] // not every test file talks to a simulator of its own
pub fn command_at<S: AsRef<OsStr>>(sim: &winrm_simulator::Simulator, args: &[S]) -> Command {
    let endpoint = sim.endpoint();
    let mut c = command(&["--endpoint", endpoint.as_str(), "--user", sim.user()]);
    c.args(args).env("WINRM_PASSWORD", sim.password());
    c
}

/// [`command_at`] started with stdout and stderr piped, returned once its first line of
/// stdout has come (the operation is then under way on the server): the child, and the
/// rest of its stdout.
#[allow(dead_code)] // not every test file needs it
pub fn started_at(
    sim: &winrm_simulator::Simulator,
    args: &[&str],
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStdout>,
) {
    use std::io::BufRead as _;
    let mut child = command_at(sim, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs winrm");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("reads a line");
    assert!(!first.is_empty(), "{args:?}: no output");
    (child, stdout)
}

/// A host that hangs: a TCP listener on 127.0.0.1 that accepts connections and never
/// reads or answers. Its endpoint URL, and a receiver that gets one message per
/// connection it accepted (the tool is then logging on: its first request is in flight).
#[allow(dead_code)] // not every test file needs one
pub fn black_hole() -> (String, std::sync::mpsc::Receiver<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let url = format!(
        "http://{}/wsman",
        listener.local_addr().expect("has an address")
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
            let _ = tx.send(());
        }
    });
    (url, rx)
}
