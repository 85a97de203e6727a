//! Running the `winrm` binary in the tests: no endpoint or account from the environment
//! (so each command uses its own embedded simulator), no stdin.

use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};

/// Runs `winrm args...` to its end.
pub fn winrm<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_winrm"))
        .args(args)
        .env_remove("WINRM_ENDPOINT")
        .env_remove("WINRM_USER")
        .env_remove("WINRM_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .expect("runs winrm")
}
