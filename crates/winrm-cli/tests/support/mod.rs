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
