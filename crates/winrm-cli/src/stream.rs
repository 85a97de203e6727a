//! `winrm run` and `winrm ps`: a remote command whose output is streamed to the tool's
//! stdout/stderr as it arrives, with the tool's stdin passed through when it is not a
//! terminal, Ctrl-C as a remote cancel (exit 130) and `--deadline` (exit 124). Stderr
//! goes through the library's CLIXML decoder, so PowerShell's error records read as the
//! console shows them, for `run` as for `ps`.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_winrm::shell::text;
use tokio_winrm::{CancelReason, Client, CommandEvent, ExitStatus};

use crate::Failure;

/// Exit status after Ctrl-C (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;
/// Exit status when the deadline passed (as `timeout(1)`).
const EXIT_DEADLINE: u8 = 124;
/// Exit status when stdout was closed by its reader (128 + SIGPIPE).
const EXIT_BROKEN_PIPE: u8 = 141;
/// Exit status when the server reported the command done without an exit code: the
/// outcome is unknown, which is not success.
pub const EXIT_NO_CODE: u8 = 125;

/// How long cleanup (Delete, the Signal of a cancelled command) may take after a cancel
/// before the tool exits anyway.
pub const CLEANUP_GRACE: Duration = Duration::from_secs(2);

/// Runs `command args` in a fresh UTF-8 shell and streams it; the shell is always closed.
///
/// The interrupts and `deadline` cover the whole run, from the logon and the shell's
/// creation on: against a host that does not answer, Ctrl-C exits 130 and the deadline
/// 124 at once, not after the HTTP timeout.
pub async fn run(
    client: &Client,
    command: &str,
    args: &[String],
    deadline: Option<Duration>,
    words: Words,
    skip_cmd_shell: bool,
) -> Result<ExitCode, Failure> {
    let mut interrupts = watch_ctrl_c();
    let until = deadline.map(|d| Instant::now() + d);
    let open = client.shell().codepage(65001).open();
    let shell = match opening(open, &mut interrupts, until).await {
        Opening::Done(shell) => shell?,
        Opening::Interrupted => {
            return Ok(not_started_interrupted(
                "before the shell was created",
                "the command was not started",
            ));
        }
        Opening::DeadlinePassed => {
            return Ok(not_started_deadline(
                deadline,
                "before the shell was created",
                "the command was not started",
            ));
        }
    };
    let result = drive(
        &shell,
        command,
        args,
        until,
        words,
        skip_cmd_shell,
        interrupts,
    )
    .await;
    // After a cancel (deadline, Ctrl-C, closed stdout) the server may be what stalled:
    // the Delete gets a short grace, not a whole HTTP timeout. A shell it could not
    // delete in time is removed by the server when its idle timeout passes.
    let cancelled = match &result {
        Ok(ran) => ran.stdout_broken || matches!(ran.status, ExitStatus::Cancelled { .. }),
        Err(_) => true,
    };
    let closed = if cancelled {
        begin_cleanup();
        match tokio::time::timeout(cleanup_left(), shell.close()).await {
            Ok(r) => r.map_err(Some),
            Err(_) => Err(None),
        }
    } else {
        shell.close().await.map_err(Some)
    };
    let Ran {
        status,
        stdout_broken,
        started,
    } = result?;
    match closed {
        Ok(()) => {}
        Err(Some(e)) => eprintln!("warning: closing the shell failed: {e}"),
        Err(None) => eprintln!(
            "warning: the server did not confirm the shell's deletion within {} s; it deletes the shell when its idle timeout passes",
            CLEANUP_GRACE.as_secs()
        ),
    }
    if stdout_broken {
        // Our reader went away (e.g. `| head`) and the command was cancelled: exit as a
        // program killed by SIGPIPE would.
        return Ok(ExitCode::from(EXIT_BROKEN_PIPE));
    }
    Ok(match status {
        ExitStatus::Exited(code) => exit_code(code),
        ExitStatus::ExitedWithoutCode => {
            eprintln!(
                "error: the server reported the command done without an exit code; exiting with {EXIT_NO_CODE}"
            );
            ExitCode::from(EXIT_NO_CODE)
        }
        ExitStatus::Cancelled {
            reason: CancelReason::Timeout,
        } if !started => not_started_deadline(
            deadline,
            "while the command was being started",
            "closing its shell ends the command if the server had started it",
        ),
        ExitStatus::Cancelled { reason } if !started && reason == CancelReason::User => {
            not_started_interrupted(
                "while the command was being started",
                "closing its shell ends the command if the server had started it",
            )
        }
        ExitStatus::Cancelled {
            reason: CancelReason::Timeout,
        } => {
            let secs = seconds(deadline);
            eprintln!(
                "error: the command did not finish within its deadline of {secs} s: it was cancelled on the server"
            );
            ExitCode::from(EXIT_DEADLINE)
        }
        ExitStatus::Cancelled { reason } => {
            let why = if reason == CancelReason::User {
                "interrupted".to_string()
            } else {
                reason.to_string()
            };
            eprintln!(
                "{why}: the remote command was terminated (Signal terminate) and its shell closed"
            );
            ExitCode::from(interrupted_code())
        }
        other => {
            eprintln!("error: the command ended with a status this tool does not know: {other:?}");
            ExitCode::from(crate::EXIT_CLIENT_ERROR)
        }
    })
}

/// `--deadline`'s seconds as the messages show them.
pub fn seconds(deadline: Option<Duration>) -> f64 {
    deadline.map_or(0.0, |d| d.as_secs_f64())
}

/// Reports an operation interrupted before it started (`when`: where it was; `so`: what
/// that means for the remote side) and gives the interrupt's exit code.
pub fn not_started_interrupted(when: &str, so: &str) -> ExitCode {
    begin_cleanup();
    eprintln!("{}: interrupted {when}: {so}", interrupt_name());
    ExitCode::from(interrupted_code())
}

/// Reports a `--deadline` that passed before the operation started and gives 124.
pub fn not_started_deadline(deadline: Option<Duration>, when: &str, so: &str) -> ExitCode {
    begin_cleanup();
    eprintln!(
        "error: the deadline of {} s passed {when}: {so}",
        seconds(deadline)
    );
    ExitCode::from(EXIT_DEADLINE)
}

/// How the first steps of an operation (the logon and the shell's or runspace pool's
/// creation, a Connect) ended, raced against the interrupts and the deadline.
pub enum Opening<T> {
    /// The step ended, well or not.
    Done(T),
    /// An interrupt came first (the step was dropped).
    Interrupted,
    /// The deadline passed first (the step was dropped).
    DeadlinePassed,
}

/// Awaits `step` unless an interrupt comes or `until` passes first; then `step` is
/// dropped. The library's steps are cancel-safe to drop: a shell or pool whose Create was
/// in flight is deleted on a background task once the server answers
/// ([`Client::shutdown`], which the tool waits for within [`cleanup_left`]).
pub async fn opening<F: std::future::Future>(
    step: F,
    interrupts: &mut mpsc::UnboundedReceiver<()>,
    until: Option<Instant>,
) -> Opening<F::Output> {
    let deadline = async {
        match until {
            Some(t) => tokio::time::sleep_until(t).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        Some(()) = interrupts.recv() => Opening::Interrupted,
        () = deadline => Opening::DeadlinePassed,
        r = step => Opening::Done(r),
    }
}

/// When the cleanups after a cancel began ([`begin_cleanup`]).
static CLEANUP_FROM: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Starts the cleanup grace: from the first call on, the cleanups that follow a cancel
/// (a shell's Delete, a Release, a Create finished in the background) get
/// [`CLEANUP_GRACE`] in all, however many steps wait for them.
pub fn begin_cleanup() {
    CLEANUP_FROM.get_or_init(std::time::Instant::now);
}

/// What is left of the cleanup grace ([`CLEANUP_GRACE`] when it has not begun).
pub fn cleanup_left() -> Duration {
    CLEANUP_FROM
        .get()
        .map_or(CLEANUP_GRACE, |t| CLEANUP_GRACE.saturating_sub(t.elapsed()))
}

/// A remote exit code as this process's exit status; codes that do not fit (Windows
/// NTSTATUS values such as 0xC000013A) become 1, with a note.
pub fn exit_code(code: i64) -> ExitCode {
    match u8::try_from(code) {
        Ok(c) => ExitCode::from(c),
        Err(_) => {
            eprintln!(
                "note: remote exit code {code} (0x{:08X}) does not fit an exit status; exiting with 1",
                code as u32
            );
            ExitCode::from(1)
        }
    }
}

/// The exit code after an interrupt: 128 plus the number of the last signal that
/// cancelled the operation (130 for Ctrl-C's SIGINT, 143 for SIGTERM, 129 for SIGHUP).
static INTERRUPT_EXIT: std::sync::atomic::AtomicU8 =
    std::sync::atomic::AtomicU8::new(EXIT_INTERRUPTED);

/// The exit code of a run cancelled by [`watch_ctrl_c`]'s signals: 130 after Ctrl-C
/// (SIGINT), 143 after SIGTERM (`timeout`, systemd, a CI job cancelled), 129 after
/// SIGHUP (the terminal closed).
pub fn interrupted_code() -> u8 {
    INTERRUPT_EXIT.load(std::sync::atomic::Ordering::Relaxed)
}

/// How the messages name the last interrupt: `^C` for SIGINT, else the signal's name.
pub fn interrupt_name() -> &'static str {
    match interrupted_code() {
        143 => "SIGTERM",
        129 => "SIGHUP",
        _ => "^C",
    }
}

/// Interrupts, as a channel: Ctrl-C (SIGINT), and on Unix SIGTERM and SIGHUP too, so
/// that `timeout`, a service manager or a closed terminal cancel the remote operation
/// (Signal terminate, Release, the PSRP stop signal) instead of killing the tool with
/// the operation left running on the server. The first cancels; a second one exits at
/// once. [`interrupted_code`] gives the exit code.
pub fn watch_ctrl_c() -> mpsc::UnboundedReceiver<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    // One listener for the whole run, installed before returning, so that every signal
    // is reported exactly once.
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        for (kind, number) in [
            (SignalKind::interrupt(), 2u8),
            (SignalKind::terminate(), 15),
            (SignalKind::hangup(), 1),
        ] {
            let Ok(mut listener) = signal(kind) else {
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                while listener.recv().await.is_some() {
                    INTERRUPT_EXIT.store(128 + number, std::sync::atomic::Ordering::Relaxed);
                    if tx.send(()).is_err() {
                        break;
                    }
                }
            });
        }
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads the tool's own stdin on a plain thread (a blocking read cannot be cancelled, so
/// it must not hold up the runtime at exit). `None` marks end of input.
fn read_stdin() -> mpsc::Receiver<Option<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(4);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => {
                    let _ = tx.blocking_send(None);
                    return;
                }
                Ok(n) => {
                    if tx.blocking_send(Some(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("warning: reading stdin failed: {e}; closing the remote stdin");
                    let _ = tx.blocking_send(None);
                    return;
                }
            }
        }
    });
    rx
}

/// How the words after the program reach the remote side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Words {
    /// ssh-like: the words form one remote command line, verbatim (shell syntax works).
    CommandLine,
    /// `--argv`: each word is one argument of the program, quoted for the Windows rules.
    Arguments,
}

/// How [`drive`] ended.
struct Ran {
    status: ExitStatus,
    /// Stdout's reader went away (the command was cancelled for it).
    stdout_broken: bool,
    /// The server confirmed the command's start (else the status is a cancel that came
    /// while it was being started).
    started: bool,
}

/// Starts the command and streams it until its exit status, `until` its deadline.
async fn drive(
    shell: &tokio_winrm::Shell,
    command: &str,
    args: &[String],
    until: Option<Instant>,
    words: Words,
    skip_cmd_shell: bool,
    mut interrupts: mpsc::UnboundedReceiver<()>,
) -> Result<Ran, Failure> {
    let mut builder = args.iter().fold(
        shell.command(command).skip_cmd_shell(skip_cmd_shell),
        |b, a| match words {
            Words::CommandLine => b.raw_arg(a.clone()),
            Words::Arguments => b.arg(a.clone()),
        },
    );
    if let Some(t) = until {
        // What is left of the whole run's deadline (the shell's creation took the rest).
        builder = builder.deadline(t.saturating_duration_since(Instant::now()));
    }
    let not_started = |reason| Ran {
        status: ExitStatus::Cancelled { reason },
        stdout_broken: false,
        started: false,
    };
    let mut cmd = tokio::select! {
        r = builder.start() => match r {
            Ok(cmd) => cmd,
            Err(tokio_winrm::Error::Cancelled { reason }) => return Ok(not_started(reason)),
            Err(e) => return Err(e.into()),
        },
        Some(()) = interrupts.recv() => return Ok(not_started(CancelReason::User)),
    };
    let cancel = cmd.cancel_handle();
    // After --password-stdin the rest of stdin is not the command's: its stdin is closed
    // at once (end of input), so that a program reading it ends.
    let mut stdin = if crate::STDIN_CONSUMED.load(std::sync::atomic::Ordering::SeqCst) {
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(None);
        Some(rx)
    } else {
        (!std::io::stdin().is_terminal()).then(read_stdin)
    };
    let mut out = Output::new(cmd.codepage());
    let status = loop {
        tokio::select! {
            ev = cmd.next() => match ev {
                Some(Ok(CommandEvent::Stdout(b))) => {
                    if out.stdout(&b).is_err() {
                        // Our reader went away (e.g. `| head`): stop the remote side too.
                        cancel.cancel();
                    }
                }
                Some(Ok(CommandEvent::Stderr(b))) => out.stderr(&b),
                Some(Ok(CommandEvent::Exit(status))) => break status,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    out.finish();
                    return Err(e.into());
                }
                None => {
                    out.finish();
                    return Err(Failure::Message("the output stream ended without an exit status".into(), 1));
                }
            },
            Some(()) = interrupts.recv() => {
                if cancel.is_cancelled() {
                    eprintln!("interrupted again: exiting without waiting for the server");
                    std::process::exit(interrupted_code().into());
                }
                eprintln!("{}: cancelling the remote command (Signal terminate); press Ctrl-C again to quit at once", crate::stream::interrupt_name());
                cancel.cancel();
            }
            chunk = next_stdin(&mut stdin) => {
                let r = match &chunk {
                    Some(data) => cmd.send(data).await,
                    None => {
                        stdin = None;
                        cmd.close_stdin(&[]).await
                    }
                };
                if let Err(e) = r {
                    // The command may have ended without reading its input: not an error.
                    if !e.fault().is_some_and(|f| f.is_gone()) && !cancel.is_cancelled() {
                        eprintln!("warning: sending stdin failed: {e}");
                    }
                    stdin = None;
                }
            }
        }
    };
    out.finish();
    Ok(Ran {
        status,
        stdout_broken: out.stdout_broken,
        started: true,
    })
}

async fn next_stdin(rx: &mut Option<mpsc::Receiver<Option<Vec<u8>>>>) -> Option<Vec<u8>> {
    match rx {
        Some(r) => r.recv().await.flatten(),
        None => std::future::pending().await,
    }
}

/// Writes output as it arrives: stdout as the raw bytes, stderr decoded from the shell's
/// code page and through [`text::ClixmlDecoder`] (plain text at once, a CLIXML block as
/// readable text once its `</Objs>` has arrived).
struct Output {
    stderr_text: text::StreamDecoder,
    clixml: text::ClixmlDecoder,
    stdout_broken: bool,
}

impl Output {
    fn new(codepage: u32) -> Output {
        Output {
            stderr_text: text::StreamDecoder::new(codepage),
            clixml: text::ClixmlDecoder::new(),
            stdout_broken: false,
        }
    }

    fn stdout(&mut self, b: &Bytes) -> std::io::Result<()> {
        if self.stdout_broken {
            return Ok(());
        }
        let mut o = std::io::stdout().lock();
        let r = o.write_all(b).and_then(|()| o.flush());
        if r.is_err() {
            self.stdout_broken = true;
        }
        r
    }

    fn stderr(&mut self, b: &Bytes) {
        let shown = self.clixml.decode_chunk(&self.stderr_text.decode_chunk(b));
        write_stderr(shown.as_bytes());
    }

    /// Writes what the decoders still hold (an unfinished CLIXML block comes out raw).
    fn finish(&mut self) {
        let mut shown = self.clixml.decode_chunk(&self.stderr_text.finish());
        shown.push_str(&self.clixml.finish());
        write_stderr(shown.as_bytes());
    }
}

fn write_stderr(b: &[u8]) {
    if b.is_empty() {
        return;
    }
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(b).and_then(|()| e.flush());
}
