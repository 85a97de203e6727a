//! `winrm run --hosts FILE|H1,H2 -- COMMAND`: one command on many hosts at once.
//!
//! Each host gets its own [`Client`] (built with the global auth and TLS options when
//! its turn comes, dropped when it is done), at most `--concurrency` at a time: a host's
//! task is spawned only when a slot is free, so memory follows the concurrency, not
//! the length of the list. Output is collected, not streamed, so nothing interleaves: a progress bar
//! on stderr (only when stderr is a terminal) while it runs, then a per-host summary in
//! input order, a table or JSON lines.
//!
//! Ctrl-C cancels one token that every command holds
//! ([`tokio_winrm::CommandBuilder::cancellation`]), so every running command gets its
//! Signal terminate and its shell is deleted; a host still logging on or creating its
//! shell stops at once (the library deletes a shell whose Create was in flight when the
//! server answers); hosts not yet started are not started. A host whose cleanup has not
//! finished when the grace ends (or a second Ctrl-C stops the wait) is `abandoned`: its
//! row says so, with how long it ran. `--deadline` counts per host from its start, the
//! logon and the shell's creation included.
//!
//! Memory per host in flight is what a host holds while its command runs (see
//! bench/FANOUT_MEMORY.md): the task of a host keeps only what it needs then (its URL is
//! borrowed from the shared list, and the futures of the shell's creation, the
//! command's start and the shell's deletion are on the heap only while they run).
//! Cleanups get [`CANCEL_GRACE`] in all; the summary is printed either way (exit 130).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_winrm::shell::text;
use tokio_winrm::{Auth, CancelReason, Client, CommandEvent, ExitStatus};

use crate::stream::Words;
use crate::{Failure, Global};

/// How long all cleanups together (Signal terminate, shell Delete) may take after Ctrl-C.
pub const CANCEL_GRACE: Duration = Duration::from_secs(5);
/// How much of each host's stdout the JSON summary keeps.
const STDOUT_KEPT: usize = 4096;
/// How much of each host's stderr is kept to find its first line.
const STDERR_KEPT: usize = 1024;

/// The fan-out options of `run --hosts`.
pub struct Options {
    /// Hosts running at once.
    pub concurrency: usize,
    /// Per-host `--deadline`.
    pub deadline: Option<Duration>,
    /// How the words reach the remote side.
    pub words: Words,
    /// `--skip-cmd-shell`: the program runs without cmd.exe.
    pub skip_cmd_shell: bool,
}

/// One line of `--hosts`: what the summary calls it and the URL connected to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The entry as written (a URL's `#label` fragment included).
    pub label: String,
    /// The endpoint URL (without the fragment).
    pub url: String,
}

/// Reads `--hosts`: an existing file (one host per line, `#` at the start of a line or
/// after a blank starts a comment) or a comma-separated list. Duplicates are kept (each
/// entry is one run); tell them apart with a `#label` fragment.
///
/// A value that names a file (it has a `/` or `\\` but no `://`, or ends in `.txt`,
/// `.csv`, `.lst` or `.list`) must exist: a missing hosts file is an error, not a host
/// name.
pub fn parse_hosts(spec: &str) -> Result<Vec<Target>, String> {
    let path = std::path::Path::new(spec);
    if !path.is_file() && names_a_file(spec) {
        let why = match std::fs::metadata(path) {
            Ok(_) => "not a file".to_string(),
            Err(e) => e.to_string(),
        };
        return Err(format!(
            "--hosts {spec}: {why} (a hosts file, one host per line; or give the hosts as \
             a comma-separated list)"
        ));
    }
    let entries: Vec<String> = if path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --hosts {spec}: {e}"))?;
        // A byte order mark, as Notepad and Windows PowerShell 5 write UTF-8 files.
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        text.lines()
            .map(strip_comment)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    } else {
        spec.split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    if entries.is_empty() {
        return Err(format!("--hosts {spec}: no hosts listed"));
    }
    entries.iter().map(|e| target(e)).collect()
}

/// Whether a `--hosts` value can only be a file's name (no host or URL looks so).
fn names_a_file(spec: &str) -> bool {
    if spec.contains(',') || spec.contains("://") {
        return false;
    }
    let lower = spec.to_ascii_lowercase();
    spec.contains('/')
        || spec.contains('\\')
        || [".txt", ".csv", ".lst", ".list"]
            .iter()
            .any(|ext| lower.ends_with(ext))
}

fn strip_comment(line: &str) -> &str {
    let line = line.trim();
    if line.starts_with('#') {
        return "";
    }
    match line.find(" #").or_else(|| line.find("\t#")) {
        Some(i) => line[..i].trim(),
        None => line,
    }
}

/// `https://h:5986/wsman` as is; `host[:port]` (IPv6 as `[addr]:port`) as
/// `http://host:5985/wsman`, https:// when the port is 5986.
fn target(entry: &str) -> Result<Target, String> {
    if entry.chars().any(char::is_whitespace) {
        return Err(format!("--hosts: {entry:?} is not a host"));
    }
    if entry.contains("://") {
        let url = entry.split_once('#').map_or(entry, |(u, _)| u);
        return Ok(Target {
            label: entry.to_string(),
            url: url.to_string(),
        });
    }
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("--hosts: {entry:?}: missing ']'"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("--hosts: {entry:?}: expected [addr]:port")),
        };
        (format!("[{addr}]"), port)
    } else {
        match entry.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (entry.to_string(), None),
        }
    };
    let port: u16 = match port {
        Some(p) => p
            .parse()
            .map_err(|_| format!("--hosts: {entry:?}: {p:?} is not a port"))?,
        None => 5985,
    };
    if host.is_empty() || host == "[]" {
        return Err(format!("--hosts: {entry:?}: no host name"));
    }
    if host.contains(['/', '\\']) {
        return Err(format!(
            "--hosts: {entry:?} is not a host (write host, host:port or a URL)"
        ));
    }
    let scheme = if port == 5986 { "https" } else { "http" };
    Ok(Target {
        label: entry.to_string(),
        url: format!("{scheme}://{host}:{port}/wsman"),
    })
}

/// How one host ended.
#[derive(Debug)]
enum Outcome {
    /// The command exited with this code.
    Exited(i64),
    /// The server reported it done without an exit code.
    NoCode,
    /// Cancelled (Ctrl-C, or its deadline).
    Cancelled(CancelReason),
    /// Ctrl-C came before its turn: nothing was sent to it.
    NotStarted,
    /// Cancelled, but its cleanup had not finished when the tool stopped waiting.
    Abandoned(Abandoned),
    /// An error (connection, authentication, fault, ...).
    Error(String),
}

/// Why the tool stopped waiting for a cancelled host's cleanup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abandoned {
    /// The grace after Ctrl-C ([`CANCEL_GRACE`]) ended.
    GraceEnded,
    /// A second Ctrl-C.
    InterruptedAgain,
}

impl Abandoned {
    /// The row's error: what did not happen, and what becomes of it.
    fn text(self) -> String {
        let why = match self {
            Abandoned::GraceEnded => format!(
                "its cleanup (Signal terminate, shell deletion) did not finish within the {} s grace",
                CANCEL_GRACE.as_secs()
            ),
            Abandoned::InterruptedAgain => {
                "a second interrupt stopped the wait for its cleanup (Signal terminate, shell deletion)"
                    .to_string()
            }
        };
        format!(
            "cancelled, but {why}: a shell left behind is deleted by the server when its idle timeout passes"
        )
    }
}

/// One row of the summary.
struct Row {
    target: Target,
    outcome: Outcome,
    duration: Duration,
    stderr_first_line: Option<String>,
    stdout: String,
}

/// How one host's run went: a [`Row`] without its target (which the task of a host
/// borrows from the shared list rather than holding a copy).
struct Ran {
    outcome: Outcome,
    duration: Duration,
    stderr_first_line: Option<String>,
    stdout: String,
}

impl Ran {
    fn new(outcome: Outcome) -> Ran {
        Ran {
            outcome,
            duration: Duration::ZERO,
            stderr_first_line: None,
            stdout: String::new(),
        }
    }

    fn into_row(self, target: Target) -> Row {
        Row {
            target,
            outcome: self.outcome,
            duration: self.duration,
            stderr_first_line: self.stderr_first_line,
            stdout: self.stdout,
        }
    }
}

impl Row {
    fn succeeded(&self) -> bool {
        matches!(self.outcome, Outcome::Exited(0))
    }

    /// The text table's DETAIL: the error, else the first line of stderr, else the
    /// first non-empty line of stdout (`hostname`, `sc query`), so a text run shows
    /// more than exit codes.
    fn detail(&self) -> String {
        match &self.outcome {
            Outcome::Error(e) => e.clone(),
            Outcome::Abandoned(why) => why.text(),
            _ => self.stderr_first_line.clone().unwrap_or_else(|| {
                self.stdout
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .unwrap_or("")
                    .to_string()
            }),
        }
    }
}

/// Runs `words` on every host of `spec` and prints the summary.
pub async fn run(
    g: &Global,
    spec: &str,
    words: &[String],
    opts: Options,
) -> Result<ExitCode, Failure> {
    if g.endpoint.is_some() {
        return Err(Failure::Message(
            "--hosts and --endpoint: give one (each --hosts entry is an endpoint)".into(),
            2,
        ));
    }
    let targets = parse_hosts(spec).map_err(|m| Failure::Message(m, 2))?;
    crate::check_kerberos(g, true)?;
    let auth = crate::endpoint_auth(g)?;
    if let Some(t) = targets
        .iter()
        .find(|t| t.url.to_ascii_lowercase().starts_with("http://"))
    {
        crate::refuse_clear_basic(g, &t.url, &auth)?;
    }
    let shared = Arc::new(Shared {
        global: g.clone(),
        auth,
        ca: crate::read_ca(g)?,
        words: words.to_vec(),
        deadline: opts.deadline,
        mode: opts.words,
        skip_cmd_shell: opts.skip_cmd_shell,
        hint: std::sync::Mutex::new(None),
    });

    let total = targets.len();
    let targets: Arc<[Target]> = targets.into();
    let bar = progress_bar(total as u64);
    let cancel = CancellationToken::new();
    // Hosts are started as slots free up, so that only `concurrency` hosts (their
    // clients, connections and futures) exist at a time, however long the list.
    let mut pending = 0..total;
    let mut tasks = JoinSet::new();
    let mut rows: Vec<Option<Ran>> = (0..total).map(|_| None).collect();
    // The hosts in flight: index and start, by task (for the rows of hosts still
    // cleaning up when the tool stops waiting, and of a task that panicked).
    let mut in_flight: std::collections::HashMap<tokio::task::Id, (usize, Instant)> =
        std::collections::HashMap::new();
    let mut interrupts = crate::stream::watch_ctrl_c();
    let mut grace_end: Option<tokio::time::Instant> = None;
    let mut abandoned = Abandoned::GraceEnded;
    let mut failed = 0usize;
    loop {
        while !cancel.is_cancelled() && tasks.len() < opts.concurrency {
            let Some(i) = pending.next() else { break };
            let (shared, targets, cancel) = (shared.clone(), targets.clone(), cancel.clone());
            let task =
                tasks.spawn(async move { (i, one_host(&shared, &targets[i].url, &cancel).await) });
            in_flight.insert(task.id(), (i, Instant::now()));
        }
        let grace = async {
            match grace_end {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            next = tasks.join_next_with_id() => match next {
                Some(Ok((id, (i, row)))) => {
                    in_flight.remove(&id);
                    if !matches!(row.outcome, Outcome::Exited(0)) {
                        failed += 1;
                        bar.set_message(format!("{failed} failed"));
                    }
                    rows[i] = Some(row);
                    bar.inc(1);
                }
                Some(Err(e)) => {
                    bar.suspend(|| eprintln!("warning: a host's task ended abnormally: {e}"));
                    if let Some((i, started)) = in_flight.remove(&e.id()) {
                        let mut ran = Ran::new(Outcome::Error(format!("the host's task ended abnormally: {e}")));
                        ran.duration = started.elapsed();
                        rows[i] = Some(ran);
                        failed += 1;
                        bar.inc(1);
                    }
                }
                None if cancel.is_cancelled() => break,
                None => {
                    if pending.is_empty() {
                        break;
                    }
                }
            },
            Some(()) = interrupts.recv() => {
                if grace_end.is_some() {
                    bar.suspend(|| eprintln!("interrupted again: not waiting for the remaining cleanups"));
                    abandoned = Abandoned::InterruptedAgain;
                    break;
                }
                bar.suspend(|| eprintln!("{}: cancelling every host (Signal terminate, shells deleted; up to {} s); press Ctrl-C again to stop waiting", crate::stream::interrupt_name(),
                    CANCEL_GRACE.as_secs()
                ));
                cancel.cancel();
                grace_end = Some(tokio::time::Instant::now() + CANCEL_GRACE);
            }
            () = grace => {
                bar.suspend(|| eprintln!(
                    "warning: cleanups still running after {} s: not waiting for them (the servers delete idle shells when their idle timeout passes)",
                    CANCEL_GRACE.as_secs()
                ));
                break;
            }
        }
    }
    tasks.abort_all();
    bar.finish_and_clear();
    // Hosts still cleaning up when the tool stopped waiting: how long they ran, and why
    // their rows have no result.
    for (i, started) in in_flight.into_values() {
        let mut ran = Ran::new(Outcome::Abandoned(abandoned));
        ran.duration = started.elapsed();
        rows[i] = Some(ran);
    }

    let rows: Vec<Row> = rows
        .into_iter()
        .zip(targets.iter().cloned())
        // Never spawned: Ctrl-C came first.
        .map(|(ran, target)| {
            ran.unwrap_or_else(|| Ran::new(Outcome::NotStarted))
                .into_row(target)
        })
        .collect();
    print_summary(&rows, g.json);
    let failed = rows.iter().filter(|r| !r.succeeded()).count();
    eprintln!("{}", summary_line(&tally(&rows), cancel.is_cancelled()));
    let hint = shared
        .hint
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some((h, n)) = hint {
        let hosts = if n == 1 {
            "1 host".to_string()
        } else {
            format!("{n} hosts")
        };
        eprintln!("hint ({hosts}): {}", h.strip_prefix("hint: ").unwrap_or(&h));
    }
    Ok(if cancel.is_cancelled() {
        ExitCode::from(crate::stream::interrupted_code())
    } else if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// How the hosts of a fan-out ended, for [`summary_line`].
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    total: usize,
    succeeded: usize,
    failed: usize,
    /// Stopped by Ctrl-C while running.
    cancelled: usize,
    /// Stopped by Ctrl-C, its cleanup unfinished when the tool stopped waiting.
    abandoned: usize,
    /// Never started: Ctrl-C came first.
    not_started: usize,
}

/// Counts the rows: hosts Ctrl-C cancelled or kept from starting did not fail, so they
/// are counted apart (a `--deadline` that passed is a failure).
fn tally(rows: &[Row]) -> Tally {
    let mut t = Tally {
        total: rows.len(),
        ..Tally::default()
    };
    for r in rows {
        match &r.outcome {
            Outcome::Exited(0) => t.succeeded += 1,
            Outcome::NotStarted => t.not_started += 1,
            Outcome::Cancelled(reason) if *reason != CancelReason::Timeout => t.cancelled += 1,
            Outcome::Abandoned(_) => t.abandoned += 1,
            _ => t.failed += 1,
        }
    }
    t
}

/// `1 host`, `2 hosts`.
pub fn hosts(n: usize) -> String {
    if n == 1 {
        "1 host".into()
    } else {
        format!("{n} hosts")
    }
}

/// The tool's last line on stderr: how many hosts succeeded, failed and (after Ctrl-C)
/// were cancelled or never started.
fn summary_line(t: &Tally, interrupted: bool) -> String {
    let mut line = format!(
        "{}: {} succeeded, {} failed",
        hosts(t.total),
        t.succeeded,
        t.failed
    );
    if t.cancelled > 0 {
        line.push_str(&format!(", {} cancelled", t.cancelled));
    }
    if t.abandoned > 0 {
        line.push_str(&format!(", {} abandoned", t.abandoned));
    }
    if t.not_started > 0 {
        line.push_str(&format!(", {} not started", t.not_started));
    }
    if interrupted {
        line.push_str(" (interrupted)");
    }
    line
}

/// What every host's task needs.
struct Shared {
    global: Global,
    auth: Auth,
    ca: Option<Vec<u8>>,
    words: Vec<String>,
    deadline: Option<Duration>,
    mode: Words,
    skip_cmd_shell: bool,
    /// The first hint an error gave (as single-host mode prints after its error), and
    /// how many hosts' errors gave one: printed once under the summary.
    hint: std::sync::Mutex<Option<(String, usize)>>,
}

impl Shared {
    /// Keeps the hint for `e` at `url`, if the error has one.
    fn note_hint(&self, e: &tokio_winrm::Error, url: &str) {
        let g = &self.global;
        let cx = crate::render::HintContext {
            endpoint: Some(url),
            auth: format!("{:?}", g.auth).to_ascii_lowercase(),
            user_given: g.user.is_some(),
            shell: true,
            selectors_given: false,
        };
        if let Some(h) = crate::render::hint(e, &cx) {
            let mut slot = self
                .hint
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match slot.as_mut() {
                Some((_, n)) => *n += 1,
                None => *slot = Some((h, 1)),
            }
        }
    }
}

fn progress_bar(len: u64) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} hosts, {elapsed} {msg}") {
        bar.set_style(style);
    }
    bar
}

/// One host, from waiting for its turn to its shell's deletion.
async fn one_host(shared: &Shared, url: &str, cancel: &CancellationToken) -> Ran {
    let mut row = Ran::new(Outcome::NotStarted);
    if cancel.is_cancelled() {
        return row;
    }
    let started = Instant::now();
    let client = match crate::build_client(
        &shared.global,
        url.to_string(),
        shared.auth.clone(),
        shared.global.allow_http_basic,
        shared.ca.as_deref(),
    ) {
        Ok(c) => c,
        Err(f) => {
            row.outcome = Outcome::Error(failure_text(&f));
            return row;
        }
    };
    let mut stderr = Vec::new();
    let mut stdout = Vec::new();
    // `--deadline` counts from here: the logon and the shell's creation are part of it.
    let until = shared
        .deadline
        .map(|d| tokio::time::Instant::from_std(started) + d);
    row.outcome = match run_on(&client, shared, cancel, until, &mut stdout, &mut stderr).await {
        Ok(o) => o,
        Err(e) => {
            shared.note_hint(&e, url);
            Outcome::Error(crate::render::describe_error_line(&e))
        }
    };
    // Background cleanups (a shell deleted by Drop, a cancelled command's Signal, a
    // Create finished after its cancel): bounded, briefly after a cancel or deadline.
    let grace = if cancel.is_cancelled() || matches!(row.outcome, Outcome::Cancelled(_)) {
        crate::stream::CLEANUP_GRACE
    } else {
        Duration::from_secs(10)
    };
    let _ = tokio::time::timeout(grace, Box::pin(client.shutdown())).await;
    row.duration = started.elapsed();
    row.stderr_first_line = text::decode(&stderr, 65001)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string);
    row.stdout = text::decode(&stdout, 65001).into_owned();
    row
}

/// Opens a shell, runs the command, collects a bounded part of its output, deletes the
/// shell. A cancel or the deadline (`until`) while the shell is being created drops the
/// creation (the library finishes a Create in flight on a background task and deletes
/// the shell it made; [`one_host`] waits for that within the cleanup grace); a cancel
/// before the command starts closes the shell at once.
///
/// The futures of the steps before and after the command's run (the shell's creation,
/// the command's start, the shell's deletion) are boxed: inline they would make this
/// future (and so every host's task) as large as the largest of them for as long as the
/// command runs, which is when all hosts in flight hold one.
async fn run_on(
    client: &Client,
    shared: &Shared,
    cancel: &CancellationToken,
    until: Option<tokio::time::Instant>,
    stdout: &mut Vec<u8>,
    stderr: &mut Vec<u8>,
) -> Result<Outcome, tokio_winrm::Error> {
    let open = Box::pin(async {
        let deadline = async {
            match until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(CancelReason::User),
            () = deadline => Err(CancelReason::Timeout),
            shell = client.shell().codepage(65001).open() => Ok(shell),
        }
    });
    let shell = match open.await {
        Ok(shell) => shell?,
        Err(reason) => return Ok(Outcome::Cancelled(reason)),
    };
    if cancel.is_cancelled() {
        let _ = tokio::time::timeout(crate::stream::CLEANUP_GRACE, Box::pin(shell.close())).await;
        return Ok(Outcome::Cancelled(CancelReason::User));
    }
    let (command, args) = shared
        .words
        .split_first()
        .expect("clap requires the command");
    let mut builder = args
        .iter()
        .fold(
            shell.command(command).skip_cmd_shell(shared.skip_cmd_shell),
            |b, a| match shared.mode {
                Words::CommandLine => b.raw_arg(a.clone()),
                Words::Arguments => b.arg(a.clone()),
            },
        )
        // The fan-out's token itself (not a child of it: one tree node less per host);
        // the command only watches it.
        .cancellation(cancel.clone());
    if let Some(t) = until {
        // What is left of the host's deadline.
        builder = builder.deadline(t.saturating_duration_since(tokio::time::Instant::now()));
    }
    let result = async {
        let mut cmd = Box::pin(builder.start()).await?;
        loop {
            match cmd.next().await {
                Some(Ok(CommandEvent::Stdout(b))) => keep(stdout, &b, STDOUT_KEPT),
                Some(Ok(CommandEvent::Stderr(b))) => keep(stderr, &b, STDERR_KEPT),
                Some(Ok(CommandEvent::Exit(status))) => break Ok(status),
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(e),
                None => {
                    break Err(tokio_winrm::Error::Cancelled {
                        reason: CancelReason::User,
                    });
                }
            }
        }
    }
    .await;
    let closed = if cancel.is_cancelled() {
        tokio::time::timeout(crate::stream::CLEANUP_GRACE, Box::pin(shell.close()))
            .await
            .unwrap_or(Ok(()))
    } else {
        Box::pin(shell.close()).await
    };
    let outcome = match result {
        Ok(ExitStatus::Exited(code)) => Outcome::Exited(code),
        Ok(ExitStatus::ExitedWithoutCode) => Outcome::NoCode,
        Ok(ExitStatus::Cancelled { reason }) => Outcome::Cancelled(reason),
        Ok(other) => Outcome::Error(format!("unknown exit status {other:?}")),
        Err(tokio_winrm::Error::Cancelled { reason }) => Outcome::Cancelled(reason),
        Err(e) => return Err(e),
    };
    if let (Outcome::Exited(_), Err(e)) = (&outcome, closed) {
        stderr_note(stderr, &format!("closing the shell failed: {e}"));
    }
    Ok(outcome)
}

fn keep(buf: &mut Vec<u8>, b: &[u8], cap: usize) {
    let room = cap.saturating_sub(buf.len());
    buf.extend_from_slice(&b[..b.len().min(room)]);
}

fn stderr_note(stderr: &mut Vec<u8>, note: &str) {
    if stderr.is_empty() {
        stderr.extend_from_slice(note.as_bytes());
    }
}

fn failure_text(f: &Failure) -> String {
    match f {
        Failure::Winrm(e) => crate::render::describe_error_line(e),
        Failure::Message(m, _) => m.clone(),
    }
}

impl Outcome {
    /// The RESULT column and the JSON `status`.
    fn status(&self) -> &'static str {
        match self {
            Outcome::Exited(_) => "exited",
            Outcome::NoCode => "no_exit_code",
            Outcome::Cancelled(CancelReason::Timeout) => "deadline",
            Outcome::Cancelled(_) => "cancelled",
            Outcome::NotStarted => "not_started",
            Outcome::Abandoned(_) => "abandoned",
            Outcome::Error(_) => "error",
        }
    }

    fn short(&self) -> String {
        match self {
            Outcome::Exited(c) => format!("exit {c}"),
            Outcome::NoCode => "no exit code".into(),
            Outcome::Cancelled(CancelReason::Timeout) => "deadline".into(),
            Outcome::Cancelled(_) => "cancelled".into(),
            Outcome::NotStarted => "not started".into(),
            Outcome::Abandoned(_) => "abandoned".into(),
            Outcome::Error(_) => "error".into(),
        }
    }
}

fn print_summary(rows: &[Row], json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        for r in rows {
            let (code, error) = match &r.outcome {
                Outcome::Exited(c) => (Some(*c), None),
                Outcome::Error(e) => (None, Some(e.clone())),
                Outcome::Abandoned(why) => (None, Some(why.text())),
                _ => (None, None),
            };
            let line = serde_json::json!({
                "host": r.target.label,
                "endpoint": r.target.url,
                "status": r.outcome.status(),
                "exit_code": code,
                "error": error,
                "duration_ms": r.duration.as_millis() as u64,
                "stderr_first_line": r.stderr_first_line,
                "stdout": r.stdout,
            });
            if writeln!(out, "{line}").is_err() {
                return;
            }
        }
        let _ = out.flush();
        return;
    }
    let width = rows
        .iter()
        .map(|r| r.target.label.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 60);
    let _ = writeln!(
        out,
        "{:<width$}  {:<12}  {:>8}  DETAIL",
        "HOST", "RESULT", "TIME"
    );
    for r in rows {
        let detail = r.detail();
        let host: String = r.target.label.chars().take(60).collect();
        let line = format!(
            "{host:<width$}  {:<12}  {:>7.1}s  {}",
            r.outcome.short(),
            r.duration.as_secs_f64(),
            detail.chars().take(200).collect::<String>()
        );
        if writeln!(out, "{}", line.trim_end()).is_err() {
            return;
        }
    }
    let _ = out.flush();
}

/// Prints VmHWM (this process's peak resident set size) from /proc on stderr.
pub fn report_peak_rss() {
    match std::fs::read_to_string("/proc/self/status") {
        Ok(s) => match s.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
            Some(v) => eprintln!("peak RSS: {}", v.trim()),
            None => eprintln!("peak RSS: unknown (no VmHWM in /proc/self/status)"),
        },
        Err(e) => eprintln!("peak RSS: unknown ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_hosts_file_is_an_error_not_a_host_name() {
        for spec in ["lists/prod.txt", "nofile.txt", "C:\\hosts.csv", "./hosts"] {
            let e = parse_hosts(spec).expect_err(spec);
            assert!(e.starts_with(&format!("--hosts {spec}: ")), "{spec}: {e}");
            assert!(e.contains("comma-separated"), "{spec}: {e}");
        }
        // Host names, lists and URLs are still hosts.
        for spec in [
            "web1",
            "web1,web2",
            "web1.corp.example:5986",
            "https://h:5986/wsman",
        ] {
            parse_hosts(spec).expect(spec);
        }
        let e = parse_hosts("web1,a/b").expect_err("a/b");
        assert!(e.contains("is not a host"), "{e}");
    }

    #[test]
    fn a_hosts_file_may_start_with_a_byte_order_mark() {
        let path = std::env::temp_dir().join(format!("winrm-bom-{}.txt", std::process::id()));
        std::fs::write(&path, "\u{feff}http://a:5985/wsman\r\nb:5986\r\n").expect("writes");
        let targets = parse_hosts(path.to_str().expect("UTF-8")).expect("parses");
        let _ = std::fs::remove_file(&path);
        let urls: Vec<&str> = targets.iter().map(|t| t.url.as_str()).collect();
        assert_eq!(urls, ["http://a:5985/wsman", "https://b:5986/wsman"]);
    }

    fn row_of(outcome: Outcome) -> Row {
        Row {
            target: target("web1").unwrap(),
            outcome,
            duration: Duration::ZERO,
            stderr_first_line: None,
            stdout: String::new(),
        }
    }

    #[test]
    fn the_summary_counts_hosts_never_started_apart_from_failures() {
        let t = Tally {
            total: 10,
            succeeded: 3,
            failed: 1,
            cancelled: 0,
            abandoned: 0,
            not_started: 6,
        };
        assert_eq!(
            summary_line(&t, true),
            "10 hosts: 3 succeeded, 1 failed, 6 not started (interrupted)"
        );
        let t = Tally {
            total: 2,
            succeeded: 2,
            ..Tally::default()
        };
        assert_eq!(summary_line(&t, false), "2 hosts: 2 succeeded, 0 failed");
        let one = Tally {
            total: 1,
            succeeded: 1,
            ..t
        };
        assert_eq!(summary_line(&one, false), "1 host: 1 succeeded, 0 failed");
    }

    /// Hosts Ctrl-C stopped while running are "cancelled", not "failed", and those
    /// whose cleanup was not waited for "abandoned", as their rows say; a deadline that
    /// passed, an error and a non-zero exit are failures.
    #[test]
    fn the_summary_counts_cancelled_hosts_apart_from_failures() {
        let rows: Vec<Row> = [
            Outcome::Exited(0),
            Outcome::Exited(3),
            Outcome::Error("refused".into()),
            Outcome::Cancelled(CancelReason::Timeout),
            Outcome::Cancelled(CancelReason::User),
            Outcome::Cancelled(CancelReason::User),
            Outcome::Abandoned(Abandoned::GraceEnded),
            Outcome::NotStarted,
        ]
        .into_iter()
        .map(row_of)
        .collect();
        let t = tally(&rows);
        assert_eq!(
            t,
            Tally {
                total: 8,
                succeeded: 1,
                failed: 3,
                cancelled: 2,
                abandoned: 1,
                not_started: 1,
            }
        );
        assert_eq!(
            summary_line(&t, true),
            "8 hosts: 1 succeeded, 3 failed, 2 cancelled, 1 abandoned, 1 not started (interrupted)"
        );
    }

    #[test]
    fn detail_is_the_error_else_stderr_else_stdout() {
        let row = |outcome, stderr: Option<&str>, stdout: &str| Row {
            target: target("web1").unwrap(),
            outcome,
            duration: Duration::ZERO,
            stderr_first_line: stderr.map(String::from),
            stdout: stdout.into(),
        };
        assert_eq!(
            row(Outcome::Exited(0), None, "\r\n  WEB1  \r\nmore\r\n").detail(),
            "WEB1"
        );
        assert_eq!(
            row(Outcome::Exited(1), Some("denied"), "out").detail(),
            "denied"
        );
        assert_eq!(
            row(Outcome::Error("refused".into()), Some("x"), "out").detail(),
            "refused"
        );
        assert_eq!(row(Outcome::Exited(0), None, "").detail(), "");
    }

    #[test]
    fn host_forms() {
        let t = target("web1").unwrap();
        assert_eq!(t.url, "http://web1:5985/wsman");
        assert_eq!(target("web1:5986").unwrap().url, "https://web1:5986/wsman");
        assert_eq!(target("[::1]:8080").unwrap().url, "http://[::1]:8080/wsman");
        let t = target("http://h:1/wsman#7").unwrap();
        assert_eq!(
            (t.label.as_str(), t.url.as_str()),
            ("http://h:1/wsman#7", "http://h:1/wsman")
        );
        assert!(target("web1:x").is_err());
        assert!(target(":5985").is_err());
        assert_eq!(strip_comment("  # all"), "");
        assert_eq!(strip_comment("h1 # web"), "h1");
        assert_eq!(strip_comment("http://h/wsman#3"), "http://h/wsman#3");
    }
}
