//! The pyspnego peers (tests/peers/servers/*.py): finding a Python with `spnego`, and
//! starting a peer server that prints its endpoint on its first line of stdout and
//! stops at the end of its stdin.

use std::time::Duration;

use tokio::process::{Child, Command};

/// The interpreter for the pyspnego peer: `WINRM_PEER_PYTHON`, else the first of the
/// venvs named (under `~/.cache`) and `python3` that imports `spnego`.
pub fn peer_python(venvs: &[&str]) -> Result<String, String> {
    let home = std::env::var("HOME").unwrap_or_default();
    let candidates: Vec<String> = match std::env::var("WINRM_PEER_PYTHON") {
        Ok(p) => vec![p],
        Err(_) => venvs
            .iter()
            .map(|v| format!("{home}/.cache/{v}/bin/python"))
            .chain(["python3".to_string()])
            .collect(),
    };
    for py in &candidates {
        let ok = std::process::Command::new(py)
            .args(["-c", "import spnego"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(py.clone());
        }
    }
    Err(format!("no python with pyspnego among {candidates:?}"))
}

/// Starts `python script args..` (stderr captured when `capture_stderr`, else
/// inherited) and reads the endpoint it prints; the child is killed on drop.
pub async fn start(
    python: &str,
    script: &str,
    args: &[&std::path::Path],
    capture_stderr: bool,
) -> (Child, String) {
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    if capture_stderr {
        cmd.stderr(std::process::Stdio::piped());
    }
    let mut child = cmd.spawn().expect("start the pyspnego peer");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let endpoint = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the peer did not start in time")
        .unwrap()
        .expect("the peer printed no endpoint");
    (child, endpoint)
}

/// Stops a peer: the end of its stdin, then up to 5 s for it to exit.
pub async fn stop(child: &mut Child) {
    drop(child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
}
