//! One simulated process: the pipe its output goes through (bounded, so a fast writer
//! waits for Receives like a program writing to a full console pipe), its stdin, its
//! exit code, and the [`CommandContext`] that command implementations use.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

/// Output bytes a process may have buffered before its writes wait for a Receive.
const PIPE_LIMIT: usize = 1024 * 1024;

/// A command implementation registered with
/// [`Simulator::register_command`](crate::Simulator::register_command): called
/// with the context of one run, returns the exit code.
pub type CommandFn = Arc<dyn Fn(CommandContext) -> BoxFuture<'static, i32> + Send + Sync>;

/// Locks a std mutex, ignoring poisoning (no code here panics while holding one).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An output stream of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    Stdout,
    Stderr,
}

impl StreamKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        }
    }
}

/// Where a command's stdout or stderr goes (after `>&2`, `2>&1`, `>nul`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Stream(StreamKind),
    Null,
}

/// The streams a Receive asked for (`rsp:DesiredStream`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Desired {
    pub stdout: bool,
    pub stderr: bool,
}

impl Desired {
    /// Parses `stdout stderr`; an empty or unknown list means both.
    pub(crate) fn parse(text: &str) -> Desired {
        let mut d = Desired {
            stdout: false,
            stderr: false,
        };
        for name in text.split_whitespace() {
            d.stdout |= name.eq_ignore_ascii_case("stdout");
            d.stderr |= name.eq_ignore_ascii_case("stderr");
        }
        if !d.stdout && !d.stderr {
            d = Desired {
                stdout: true,
                stderr: true,
            };
        }
        d
    }

    fn wants(self, kind: StreamKind) -> bool {
        match kind {
            StreamKind::Stdout => self.stdout,
            StreamKind::Stderr => self.stderr,
        }
    }
}

/// Output in the pipe, already base64-encoded: the writer encodes as it writes (as a
/// console's output is produced while no Receive is pending), so a Receive only slices
/// text. Slices start on a 3-byte boundary of the output, so they decode on their own.
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    text: Bytes,
    raw: usize,
}

impl Encoded {
    pub(crate) fn new(bytes: &[u8]) -> Encoded {
        Encoded {
            text: Bytes::from(STANDARD.encode(bytes)),
            raw: bytes.len(),
        }
    }

    /// The base64 text (ASCII).
    pub(crate) fn text(&self) -> &Bytes {
        &self.text
    }

    /// Splits off the first `raw` output bytes (a multiple of 3, less than the whole).
    fn split_raw(&mut self, raw: usize) -> Encoded {
        debug_assert!(raw.is_multiple_of(3) && raw < self.raw);
        let head = Encoded {
            text: self.text.split_to(raw / 3 * 4),
            raw,
        };
        self.raw -= raw;
        head
    }
}

/// What one Receive takes from a process.
#[derive(Debug)]
pub(crate) struct Batch {
    /// Output chunks in the order they were written.
    pub chunks: Vec<(StreamKind, Encoded)>,
    /// The exit code once the process ended and all its output is in this batch.
    pub done: Option<u32>,
    /// The process asked for its end to be reported without an `ExitCode`.
    pub without_code: bool,
}

#[derive(Default)]
struct Inner {
    chunks: VecDeque<(StreamKind, Encoded)>,
    /// Output bytes (not base64 text) in `chunks`.
    buffered: usize,
    exit: Option<u32>,
    removed: bool,
    /// Report the end as `CommandState Done` without `ExitCode`.
    without_code: bool,
}

/// A command's process: output pipe, stdin, exit code, task.
pub(crate) struct Proc {
    pub(crate) id: String,
    inner: Mutex<Inner>,
    /// Bumped on output, exit and removal (wakes pending Receives).
    changed: watch::Sender<u64>,
    /// Bumped when a Receive takes output (wakes blocked writers).
    drained: watch::Sender<u64>,
    stdin: Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    task: Mutex<Option<AbortHandle>>,
    receivers: AtomicUsize,
}

impl Proc {
    /// A new process and the receiving end of its stdin.
    pub(crate) fn new(id: String) -> (Arc<Proc>, mpsc::UnboundedReceiver<Vec<u8>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let proc = Proc {
            id,
            inner: Mutex::new(Inner::default()),
            changed: watch::channel(0).0,
            drained: watch::channel(0).0,
            stdin: Mutex::new(Some(tx)),
            task: Mutex::new(None),
            receivers: AtomicUsize::new(0),
        };
        (Arc::new(proc), rx)
    }

    pub(crate) fn set_task(&self, handle: AbortHandle) {
        *lock(&self.task) = Some(handle);
    }

    /// Appends output, waiting while the pipe is full. Output after the end is dropped.
    pub(crate) async fn write(&self, kind: StreamKind, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.write_encoded(kind, Encoded::new(bytes)).await;
    }

    /// [`Proc::write`] of output already encoded.
    pub(crate) async fn write_encoded(&self, kind: StreamKind, data: Encoded) {
        if data.raw == 0 {
            return;
        }
        let len = data.raw;
        let mut data = Some(data);
        loop {
            let mut drained = self.drained.subscribe();
            {
                let mut g = lock(&self.inner);
                if g.exit.is_some() || g.removed {
                    return;
                }
                if g.buffered == 0 || g.buffered + len <= PIPE_LIMIT {
                    g.buffered += len;
                    if let Some(data) = data.take() {
                        g.chunks.push_back((kind, data));
                    }
                    drop(g);
                    self.changed.send_modify(|v| *v += 1);
                    return;
                }
            }
            if drained.changed().await.is_err() {
                return;
            }
        }
    }

    /// The process ended with `code` (the first end wins). Closes stdin.
    pub(crate) fn finish(&self, code: u32) {
        {
            let mut g = lock(&self.inner);
            if g.exit.is_none() {
                g.exit = Some(code);
            }
        }
        lock(&self.stdin).take();
        self.changed.send_modify(|v| *v += 1);
        self.drained.send_modify(|v| *v += 1);
    }

    /// Makes the Receive that reports this process's end leave out the `ExitCode`
    /// (`CommandState Done` alone, as some servers send it).
    pub(crate) fn omit_exit_code(&self) {
        lock(&self.inner).without_code = true;
    }

    /// Stops the task; the process ends with `code` unless it already ended.
    pub(crate) fn kill(&self, code: u32) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
        self.finish(code);
    }

    /// Kills and marks the command removed: a pending Receive returns Done at once.
    pub(crate) fn remove(&self, code: u32) {
        lock(&self.inner).removed = true;
        self.kill(code);
    }

    /// True once the process ended.
    pub(crate) fn exited(&self) -> bool {
        lock(&self.inner).exit.is_some()
    }

    /// Feeds stdin; `end` closes it. Data after the close is dropped.
    pub(crate) fn send_stdin(&self, data: Vec<u8>, end: bool) {
        let mut tx = lock(&self.stdin);
        if let Some(sender) = tx.as_ref()
            && !data.is_empty()
        {
            // A send error means the command stopped reading: like a closed pipe.
            let _ = sender.send(data);
        }
        if end {
            tx.take();
        }
    }

    /// A watch that changes on output, exit or removal; check [`Proc::ready`] after
    /// subscribing.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// True when a Receive would not wait: output buffered, or the process ended.
    pub(crate) fn ready(&self) -> bool {
        let g = lock(&self.inner);
        g.buffered > 0 || g.exit.is_some() || g.removed
    }

    /// Receives waiting on this process now.
    pub(crate) fn receivers(&self) -> usize {
        self.receivers.load(Ordering::SeqCst)
    }

    /// Takes output for one Receive response of at most `budget` bytes of XML.
    /// Streams not desired are discarded. Done once the process ended and everything
    /// was taken; for a removed command, Done with what fits.
    pub(crate) fn take(&self, budget: usize, desired: Desired, id_len: usize) -> Batch {
        // Per element: `<rsp:Stream Name="stdout" CommandId="..."></rsp:Stream>`.
        let overhead = 64 + id_len;
        let mut left = budget;
        let mut chunks = Vec::new();
        let mut g = lock(&self.inner);
        let mut took = false;
        while let Some((kind, mut data)) = g.chunks.pop_front() {
            took = true;
            g.buffered -= data.raw;
            if !desired.wants(kind) {
                continue;
            }
            let cost = overhead + data.text.len();
            if cost <= left {
                left -= cost;
                chunks.push((kind, data));
                continue;
            }
            let fits = left.saturating_sub(overhead) / 4 * 3;
            if fits > 0 {
                chunks.push((kind, data.split_raw(fits)));
            }
            g.buffered += data.raw;
            g.chunks.push_front((kind, data));
            break;
        }
        let done = if g.chunks.is_empty() || g.removed {
            g.exit
        } else {
            None
        };
        let without_code = g.without_code;
        drop(g);
        if took {
            self.drained.send_modify(|v| *v += 1);
        }
        Batch {
            chunks,
            done,
            without_code,
        }
    }
}

/// Counts a Receive as pending (globally, on its shell and on its command) while alive.
pub(crate) struct PendingGuard<'a> {
    counters: [&'a AtomicUsize; 2],
    global: &'a AtomicU64,
}

impl<'a> PendingGuard<'a> {
    pub(crate) fn new(global: &'a AtomicU64, shell: &'a AtomicUsize, proc: &'a Proc) -> Self {
        global.fetch_add(1, Ordering::SeqCst);
        shell.fetch_add(1, Ordering::SeqCst);
        proc.receivers.fetch_add(1, Ordering::SeqCst);
        PendingGuard {
            counters: [shell, &proc.receivers],
            global,
        }
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        for c in self.counters {
            c.fetch_sub(1, Ordering::SeqCst);
        }
        self.global.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The stdin of a process as a reader.
pub(crate) struct StdinReader {
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    buf: Vec<u8>,
    eof: bool,
}

impl StdinReader {
    pub(crate) fn new(rx: mpsc::UnboundedReceiver<Vec<u8>>) -> Self {
        StdinReader {
            rx,
            buf: Vec::new(),
            eof: false,
        }
    }

    async fn fill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        match self.rx.recv().await {
            Some(data) => {
                self.buf.extend_from_slice(&data);
                true
            }
            None => {
                self.eof = true;
                false
            }
        }
    }

    /// The next bytes, or None at the end.
    pub(crate) async fn chunk(&mut self) -> Option<Vec<u8>> {
        if self.buf.is_empty() && !self.fill().await {
            return None;
        }
        Some(std::mem::take(&mut self.buf))
    }

    /// The next line with its terminator (the last one may have none), or None.
    pub(crate) async fn line(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let rest = self.buf.split_off(i + 1);
                return Some(std::mem::replace(&mut self.buf, rest));
            }
            if !self.fill().await {
                return (!self.buf.is_empty()).then(|| std::mem::take(&mut self.buf));
            }
        }
    }
}

/// The output and input handles of a running command.
#[derive(Clone)]
pub(crate) struct Io {
    pub proc: Arc<Proc>,
    pub stdin: Arc<tokio::sync::Mutex<StdinReader>>,
    pub out: Target,
    pub err: Target,
    pub codepage: u32,
}

impl Io {
    /// Writes to the command's stdout (`err` false) or stderr, following redirections.
    pub(crate) async fn write(&self, err: bool, bytes: &[u8]) {
        match if err { self.err } else { self.out } {
            Target::Stream(kind) => self.proc.write(kind, bytes).await,
            Target::Null => {}
        }
    }

    /// [`Io::write`] of output already base64-encoded.
    pub(crate) async fn write_encoded(&self, err: bool, data: Encoded) {
        match if err { self.err } else { self.out } {
            Target::Stream(kind) => self.proc.write_encoded(kind, data).await,
            Target::Null => {}
        }
    }

    /// Writes text encoded in the shell's code page.
    pub(crate) async fn print(&self, err: bool, text: &str) {
        self.write(err, &encode(self.codepage, text)).await;
    }
}

/// Encodes output text the way a console with `codepage` would: UTF-8 for 65001, the
/// OEM table for 437/850/…, else an `encoding_rs` encoding; unmappable characters
/// become `?`.
pub(crate) fn encode(codepage: u32, text: &str) -> Vec<u8> {
    if codepage == 65001 || text.is_ascii() {
        return text.as_bytes().to_vec();
    }
    let Ok(cp) = u16::try_from(codepage) else {
        return text.as_bytes().to_vec();
    };
    if let Some(table) = oem_cp::code_table::ENCODING_TABLE_CP_MAP.get(&cp) {
        return oem_cp::encode_string_lossy(text, table);
    }
    match codepage::to_encoding_no_replacement(cp) {
        Some(enc) => {
            let mut out = Vec::with_capacity(text.len());
            for ch in text.chars() {
                let mut tmp = [0u8; 4];
                let (bytes, _, unmappable) = enc.encode(ch.encode_utf8(&mut tmp));
                if unmappable {
                    out.push(b'?');
                } else {
                    out.extend_from_slice(&bytes);
                }
            }
            out
        }
        None => text.as_bytes().to_vec(),
    }
}

/// What a registered command sees of its run: its command line, the shell's
/// environment, working directory and code page, and its stdin and output streams.
pub struct CommandContext {
    /// The program as the client named it, e.g. `deploy` or `C:\tools\deploy.exe`.
    pub program: String,
    /// The arguments, split as Windows splits a command line (quotes removed).
    pub args: Vec<String>,
    /// The argument text as written after the program name.
    pub arg_text: String,
    /// The environment: Windows defaults, the shell's `rsp:Environment`, and `set`s.
    pub env: Vec<(String, String)>,
    /// The working directory.
    pub working_directory: String,
    /// The shell's output code page (`WINRS_CODEPAGE`).
    pub codepage: u32,
    /// The user that owns the shell.
    pub user: String,
    /// The shell id.
    pub shell_id: String,
    /// The command id.
    pub command_id: String,
    pub(crate) io: Io,
}

impl std::fmt::Debug for CommandContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandContext")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("working_directory", &self.working_directory)
            .field("codepage", &self.codepage)
            .field("shell_id", &self.shell_id)
            .field("command_id", &self.command_id)
            .finish_non_exhaustive()
    }
}

impl CommandContext {
    /// Writes raw bytes to stdout; waits while the client has 1 MiB unreceived.
    ///
    /// # Cancel safety
    /// A dropped call may have written part of the bytes (never out of order).
    pub async fn write_stdout(&self, bytes: &[u8]) {
        self.io.write(false, bytes).await;
    }

    /// Writes raw bytes to stderr.
    ///
    /// # Cancel safety
    /// A dropped call may have written part of the bytes (never out of order).
    pub async fn write_stderr(&self, bytes: &[u8]) {
        self.io.write(true, bytes).await;
    }

    /// Writes text to stdout, encoded in the shell's code page.
    ///
    /// # Cancel safety
    /// A dropped call may have written part of the bytes (never out of order).
    pub async fn print(&self, text: &str) {
        self.io.print(false, text).await;
    }

    /// Writes text to stderr, encoded in the shell's code page.
    ///
    /// # Cancel safety
    /// A dropped call may have written part of the bytes (never out of order).
    pub async fn eprint(&self, text: &str) {
        self.io.print(true, text).await;
    }

    /// The next bytes sent to stdin, or None once the client closed it.
    ///
    /// # Cancel safety
    /// Dropping the call loses nothing that was not yet returned.
    pub async fn read_stdin(&self) -> Option<Vec<u8>> {
        self.io.stdin.lock().await.chunk().await
    }

    /// The next stdin line without its line end (lossy UTF-8), or None at the end.
    ///
    /// # Cancel safety
    /// Dropping the call may lose a line read in part.
    pub async fn read_line(&self) -> Option<String> {
        let line = self.io.stdin.lock().await.line().await?;
        let text = String::from_utf8_lossy(&line);
        Some(text.trim_end_matches(['\r', '\n']).to_string())
    }

    /// All of stdin until the client closes it.
    ///
    /// # Cancel safety
    /// Dropping the call loses what it had read so far.
    pub async fn read_to_end(&self) -> Vec<u8> {
        let mut reader = self.io.stdin.lock().await;
        let mut all = Vec::new();
        while let Some(chunk) = reader.chunk().await {
            all.extend_from_slice(&chunk);
        }
        all
    }

    /// An environment variable (names compare case-insensitively, as on Windows).
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
