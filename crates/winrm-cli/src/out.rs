//! The tool's results on stdout. A reader that goes away early (`winrm config | head`)
//! must not make the tool panic: the first failed write is remembered, later ones are
//! skipped, work that is still streaming is stopped by its caller ([`closed`]), and the
//! tool then exits 141 (128 + SIGPIPE, as `run` and `ps` do, and as a program killed by
//! SIGPIPE would), or 1 with a message for any other write error (a full disk).

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

const OPEN: u8 = 0;
const BROKEN_PIPE: u8 = 1;
const FAILED: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(OPEN);

/// Writes to stdout (`print!`'s job) unless a write already failed.
pub fn write(args: std::fmt::Arguments<'_>) {
    if closed() {
        return;
    }
    let result = std::io::stdout().lock().write_fmt(args);
    if let Err(e) = result {
        failed(&e);
    }
}

/// Writes bytes to stdout (a fetched file's, `winrm fetch REMOTE -`) as [`write`] does
/// text.
pub fn write_bytes(bytes: &[u8]) {
    if closed() {
        return;
    }
    if let Err(e) = std::io::stdout().lock().write_all(bytes) {
        failed(&e);
    }
}

/// Flushes stdout, remembering a failure as [`write`] does.
pub fn flush() {
    if closed() {
        return;
    }
    if let Err(e) = std::io::stdout().lock().flush() {
        failed(&e);
    }
}

fn failed(e: &std::io::Error) {
    let state = if e.kind() == std::io::ErrorKind::BrokenPipe {
        BROKEN_PIPE
    } else {
        FAILED
    };
    if STATE.swap(state, Ordering::Relaxed) == OPEN && state == FAILED {
        eprintln!("error: cannot write to stdout: {e}");
    }
}

/// A write to stdout failed: nothing more will be shown.
pub fn closed() -> bool {
    STATE.load(Ordering::Relaxed) != OPEN
}

/// The exit status when a write to stdout failed (it replaces the command's own).
pub fn exit_code() -> Option<std::process::ExitCode> {
    match STATE.load(Ordering::Relaxed) {
        BROKEN_PIPE => Some(std::process::ExitCode::from(141)),
        FAILED => Some(std::process::ExitCode::from(1)),
        _ => None,
    }
}

/// `print!` to stdout through [`write`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*))
    };
}

/// `println!` to stdout through [`write`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};
