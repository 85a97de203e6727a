//! Copying files to and from Windows hosts over PowerShell Remoting: [`Client::copy`]
//! uploads, [`Client::fetch`] downloads (also on an open [`RunspacePool`]).
//!
//! ```no_run
//! # async fn f(client: tokio_winrm::Client) -> tokio_winrm::Result<()> {
//! let up = client.copy("setup.msi", r"%TEMP%\setup.msi").await?;
//! println!("{} bytes in {:?}", up.bytes, up.elapsed);
//! client
//!     .fetch(r"C:\Logs", "./logs")
//!     .recursive(true)
//!     .progress(|p| eprintln!("{}/{} bytes", p.bytes_done, p.bytes_total))
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! How it works: a pipeline runs a script of this crate on the host. An upload streams
//! the file as pipeline input in chunks sized to the envelope (the file is never read
//! whole into memory; each Send waits for the host's answer), the host writes it to a
//! temporary name in the target's directory, hashes it with SHA-256 and, when its hash is
//! the client's, renames it over the target; a download streams the file as output
//! chunks into a temporary local file, renamed when the hashes agree. So a failed,
//! cancelled or dropped transfer leaves no partial file on either side (a dropped
//! upload's host side is cleaned up on the client's cleanup tasks, which
//! [`Client::shutdown`] waits for), and an overwritten target keeps its previous version
//! until the new one is complete.
//!
//! Remote paths: `%VAR%` and `$env:VAR` expand on the host ([`CopyBuilder::expand_variables`],
//! on by default); relative paths are relative to the session's directory (the user's
//! Documents); UNC and device paths (`\\server\share`, `\\.\`, `\\?\`) are refused with
//! [`TransferErrorKind::PathRefused`] unless allowed ([`CopyBuilder::allow_unc`]): they
//! reach shares with the caller's credentials.
//!
//! Names: what Windows cannot hold is refused before anything is sent, with
//! [`TransferErrorKind::InvalidName`] naming the path and why: a name that is not valid
//! Unicode, has a character Windows forbids in file names (`<>:"/\|?*`,
//! U+0000–U+001F; in a remote path a `:` only as the drive's, `C:`), is a reserved
//! device name (`CON`, `PRN`, `AUX`, `NUL`, `COM0`–`COM9`, `LPT0`–`LPT9`, also with an
//! extension: `nul.txt`), or ends with a dot or a space (Windows drops them, so the file
//! would get another name). That applies to the local names a copy gives remote files
//! (every name of a recursive copy; a single file's own name when the remote path is a
//! directory: refused before anything is sent when the path says so, `C:\Data\` or
//! `C:`, else when the host finds the directory, before it writes anything) and to the
//! remote path's names (past the drive, `C:` or a PowerShell drive such as `Temp:\`,
//! and a UNC path's server and share; the host checks them again after expanding
//! variables). A device path allowed by [`CopyBuilder::allow_unc`] (`\\?\`)
//! is taken literally and not checked.
//!
//! Directories ([`CopyBuilder::recursive`]): the destination path is the root of the
//! copied tree (created when missing, merged when it exists); empty directories are
//! kept. Windows compares names case-insensitively: two local names of one directory
//! that differ only in case (`README` and `readme`, at any depth, files or
//! directories) would be one file on the host, so such a tree is refused before
//! anything is sent ([`TransferErrorKind::NameCollision`], naming both paths). Names
//! are compared as NTFS does, by the Unicode simple uppercase mapping of each UTF-16
//! code unit (`ß` and `SS` are two names; characters outside the Basic Multilingual
//! Plane compare as they are).
//!
//! A download checks its local destination before anything is sent: an existing
//! directory, or a name in an existing directory; a path ending with a separator
//! (`newdir/`) names a directory, which must exist
//! ([`TransferErrorKind::LocalNotFound`] otherwise).

mod names;
mod scripts;

use std::future::{Future, IntoFuture};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{FutureExt as _, StreamExt as _};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::{Error, Result, TransferErrorKind};
use crate::operation::CancelReason;
use crate::psrp::{Pipeline, PipelineEnd, PsEvent, PsValue, RunspacePool};
use crate::{Client, psrp::ErrorRecord};

/// Where a transfer is: bytes done and to do, for a progress callback.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TransferProgress {
    /// Bytes sent or received so far (file contents).
    pub bytes_done: u64,
    /// Bytes of the whole transfer (every file of a directory).
    pub bytes_total: u64,
    /// Time since the transfer started.
    pub elapsed: Duration,
    /// The file being transferred (local path for an upload, remote for a download).
    pub path: String,
}

impl TransferProgress {
    /// Bytes per second so far.
    pub fn rate(&self) -> f64 {
        rate(self.bytes_done, self.elapsed)
    }
}

/// What a finished transfer did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransferSummary {
    /// Bytes of file contents transferred.
    pub bytes: u64,
    /// Files transferred.
    pub files: u64,
    /// Directories created (recursive transfers).
    pub directories: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// The destination as the receiver resolved it (the host's full path for an
    /// upload, the local path for a download).
    pub destination: String,
    /// The SHA-256 (lowercase hex) of a single file both sides agreed on.
    pub sha256: Option<String>,
}

impl TransferSummary {
    /// Bytes per second.
    pub fn rate(&self) -> f64 {
        rate(self.bytes, self.elapsed)
    }
}

fn rate(bytes: u64, d: Duration) -> f64 {
    let s = d.as_secs_f64();
    if s > 0.0 { bytes as f64 / s } else { 0.0 }
}

type ProgressFn = Arc<dyn Fn(&TransferProgress) + Send + Sync>;

/// Where the pipelines run: a pool opened for the transfer, or the caller's.
enum Via<'a> {
    Client(Client),
    Pool(&'a RunspacePool),
}

#[derive(Clone)]
struct Options {
    overwrite: bool,
    allow_unc: bool,
    expand: bool,
    recursive: bool,
    chunk_size: Option<usize>,
    progress: Option<ProgressFn>,
    token: CancellationToken,
    deadline: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            overwrite: true,
            allow_unc: false,
            expand: true,
            recursive: false,
            chunk_size: None,
            progress: None,
            token: CancellationToken::new(),
            deadline: None,
        }
    }
}

/// The timer of a transfer's deadline: it cancels the transfer's own token (a child of
/// the caller's) when the deadline passes; dropped with the transfer.
struct DeadlineTimer {
    fired: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::AbortHandle,
    caller: CancellationToken,
}

impl DeadlineTimer {
    /// Gives `opts` a token the timer cancels at its deadline, if it has one.
    fn arm(opts: &mut Options) -> Option<DeadlineTimer> {
        let d = opts.deadline?;
        let caller = opts.token.clone();
        let token = caller.child_token();
        opts.token = token.clone();
        let fired = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let task = tokio::spawn({
            let fired = Arc::clone(&fired);
            async move {
                tokio::time::sleep(d).await;
                fired.store(true, std::sync::atomic::Ordering::SeqCst);
                token.cancel();
            }
        })
        .abort_handle();
        Some(DeadlineTimer {
            fired,
            task,
            caller,
        })
    }

    /// A cancel the deadline caused (not the caller's token) reads as
    /// [`CancelReason::Timeout`].
    fn reason<T>(timer: Option<&DeadlineTimer>, r: Result<T>) -> Result<T> {
        match (timer, r) {
            (
                Some(t),
                Err(Error::Cancelled {
                    reason: CancelReason::User,
                }),
            ) if t.fired.load(std::sync::atomic::Ordering::SeqCst) && !t.caller.is_cancelled() => {
                Err(Error::Cancelled {
                    reason: CancelReason::Timeout,
                })
            }
            (_, r) => r,
        }
    }
}

impl Drop for DeadlineTimer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

macro_rules! builder_options {
    ($t:ident) => {
        impl<'a> $t<'a> {
            /// Replace an existing destination file (default `true`); with `false`, an
            /// existing file fails the transfer with [`TransferErrorKind::AlreadyExists`].
            pub fn overwrite(mut self, yes: bool) -> Self {
                self.opts.overwrite = yes;
                self
            }

            /// Allow UNC and device paths on the host (`\\server\share`, `\\.\`,
            /// `\\?\`; default `false`: refused with [`TransferErrorKind::PathRefused`]).
            /// They reach other machines with the caller's credentials.
            pub fn allow_unc(mut self, yes: bool) -> Self {
                self.opts.allow_unc = yes;
                self
            }

            /// Expand `%VAR%` and `$env:VAR` / `${env:VAR}` in the remote path with the
            /// host session's environment (default `true`).
            ///
            /// Expansion makes names that differ in the call one name on the host: for
            /// the user `vagrant`, `C:\Data\$env:USERNAME.txt`, `C:\Data\%USERNAME%.txt`
            /// and `C:\Data\vagrant.txt` are the same file (`$` and `%` are legal in
            /// Windows names, so a name that only looks like a variable is expanded
            /// too), and so are `%TEMP%\a` and `$env:TMP\a` on most hosts. With
            /// [`overwrite`](Self::overwrite) `true` (the default) a later transfer then
            /// replaces an earlier one's file without an error, and nothing on the client
            /// can see it (the values are the host's). Where that matters, turn
            /// expansion off (names are then literal) or overwrite off (an existing file
            /// fails with [`TransferErrorKind::AlreadyExists`]). An expanded path's names
            /// are checked on the host ([`TransferErrorKind::InvalidName`]).
            pub fn expand_variables(mut self, yes: bool) -> Self {
                self.opts.expand = yes;
                self
            }

            /// Transfer a directory tree, empty directories included (default `false`:
            /// a directory fails with `LocalIsDirectory` / `RemoteIsDirectory`).
            pub fn recursive(mut self, yes: bool) -> Self {
                self.opts.recursive = yes;
                self
            }

            /// The file-content bytes per pipeline object, at most what fits in one
            /// envelope (the default, derived from
            /// [`ClientBuilder::max_envelope_size`](crate::ClientBuilder::max_envelope_size),
            /// which requests never exceed beyond the host's default 500 KB).
            pub fn chunk_size(mut self, bytes: usize) -> Self {
                self.opts.chunk_size = Some(bytes.max(1));
                self
            }

            /// Called after every chunk, and once at the start and the end.
            pub fn progress(
                mut self,
                f: impl Fn(&TransferProgress) + Send + Sync + 'static,
            ) -> Self {
                self.opts.progress = Some(Arc::new(f));
                self
            }

            /// Cancels the transfer when `token` is cancelled: the pipeline is stopped
            /// ([MS-PSRP] stop signal), the host's temporary file removed, and the
            /// transfer ends with [`Error::Cancelled`].
            pub fn cancellation(mut self, token: CancellationToken) -> Self {
                self.opts.token = token;
                self
            }

            /// Cancels the transfer when `d` has passed since `run()` was called, as
            /// [`cancellation`](Self::cancellation) does: it then ends with
            /// [`Error::Cancelled`] and [`CancelReason::Timeout`], with nothing partial
            /// left (see `run`'s cancel safety).
            pub fn deadline(mut self, d: Duration) -> Self {
                self.opts.deadline = Some(d);
                self
            }
        }
    };
}

/// An upload, from [`Client::copy`] or [`RunspacePool::copy`]: set options, then
/// `.await` it (or call [`CopyBuilder::run`]).
#[must_use = "a transfer does nothing until awaited"]
pub struct CopyBuilder<'a> {
    via: Via<'a>,
    local: PathBuf,
    remote: String,
    opts: Options,
}

/// A download, from [`Client::fetch`] or [`RunspacePool::fetch`]: set options, then
/// `.await` it (or call [`FetchBuilder::run`]).
#[must_use = "a transfer does nothing until awaited"]
pub struct FetchBuilder<'a> {
    via: Via<'a>,
    remote: String,
    local: PathBuf,
    opts: Options,
}

builder_options!(CopyBuilder);
builder_options!(FetchBuilder);

impl std::fmt::Debug for CopyBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyBuilder")
            .field("local", &self.local)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for FetchBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchBuilder")
            .field("remote", &self.remote)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Uploads the local file (or, with [`CopyBuilder::recursive`], directory) `local`
    /// to `remote` on the host, over a runspace pool opened for it. A `remote` that is
    /// an existing directory receives the file under its own name. Await the builder
    /// (or call [`CopyBuilder::run`], whose docs give the errors and cancel safety).
    pub fn copy(&self, local: impl AsRef<Path>, remote: impl Into<String>) -> CopyBuilder<'static> {
        CopyBuilder {
            via: Via::Client(self.clone()),
            local: local.as_ref().to_path_buf(),
            remote: remote.into(),
            opts: Options::default(),
        }
    }

    /// Downloads the host's file (or, with [`FetchBuilder::recursive`], directory)
    /// `remote` to `local`, over a runspace pool opened for it. A `local` that is an
    /// existing directory receives the file under its remote name. Await the builder
    /// (or call [`FetchBuilder::run`], whose docs give the errors and cancel safety).
    pub fn fetch(
        &self,
        remote: impl Into<String>,
        local: impl AsRef<Path>,
    ) -> FetchBuilder<'static> {
        FetchBuilder {
            via: Via::Client(self.clone()),
            remote: remote.into(),
            local: local.as_ref().to_path_buf(),
            opts: Options::default(),
        }
    }
}

impl RunspacePool {
    /// The file bytes per pipeline object of this pool's transfers (the largest whose
    /// message fits one envelope), unless [`CopyBuilder::chunk_size`] asks for fewer.
    pub fn file_chunk_size(&self) -> usize {
        chunk_limit(self, None)
    }

    /// [`Client::copy`] on this pool (one of its runspaces at a time).
    pub fn copy(&self, local: impl AsRef<Path>, remote: impl Into<String>) -> CopyBuilder<'_> {
        CopyBuilder {
            via: Via::Pool(self),
            local: local.as_ref().to_path_buf(),
            remote: remote.into(),
            opts: Options::default(),
        }
    }

    /// [`Client::fetch`] on this pool (one of its runspaces at a time).
    pub fn fetch(&self, remote: impl Into<String>, local: impl AsRef<Path>) -> FetchBuilder<'_> {
        FetchBuilder {
            via: Via::Pool(self),
            remote: remote.into(),
            local: local.as_ref().to_path_buf(),
            opts: Options::default(),
        }
    }
}

/// Runs `f` on the pool of `via`: the caller's, or one opened (and closed) for it.
async fn with_pool<T>(
    via: Via<'_>,
    token: &CancellationToken,
    f: impl AsyncFnOnce(&RunspacePool) -> Result<T>,
) -> Result<T> {
    match via {
        Via::Pool(p) => f(p).await,
        Via::Client(c) => {
            let pool = c
                .runspace_pool()
                .max_runspaces(1)
                .cancellation(token.clone())
                .open()
                .await?;
            let r = f(&pool).await;
            let closed = pool.close().await;
            let out = r?;
            closed?;
            Ok(out)
        }
    }
}

impl<'a> CopyBuilder<'a> {
    /// Runs the upload.
    ///
    /// # Errors
    /// [`Error::Transfer`] with [`TransferErrorKind::LocalNotFound`],
    /// `LocalIsDirectory` (not recursive), `RemoteNotFound` (the target's directory),
    /// `RemoteIsDirectory`, `AccessDenied` (a read-only target, or no right to write),
    /// `AlreadyExists` (no overwrite), `PathRefused` (UNC/device path), `InvalidName` (a
    /// name Windows cannot hold), `NameCollision` (two local names of a tree that are
    /// one name on Windows; these two and `LocalNotFound` before anything is sent); a
    /// [`Error::HashMismatch`] (the target keeps its previous version);
    /// [`Error::Cancelled`]; PSRP and transport errors.
    ///
    /// # Cancel safety
    /// The target is never partial: an overwritten target keeps its previous version
    /// until the new one is complete and verified. Cancel with
    /// [`CopyBuilder::cancellation`] to see the end: the pipeline is stopped and the
    /// host's temporary file (`.tw-<uuid>.tmp` next to the target) removed before the
    /// error returns. Dropping the future does the same on the client's cleanup tasks
    /// (which [`Client::shutdown`] waits for; bounded to 90 s, failures logged): the
    /// pipeline is stopped and read to its end, then a cleanup pipeline removes the
    /// temporary file. Nothing already sent is sent again. A recursive copy keeps the
    /// directories it created.
    pub async fn run(mut self) -> Result<TransferSummary> {
        let timer = DeadlineTimer::arm(&mut self.opts);
        let r = self.run_armed().await;
        DeadlineTimer::reason(timer.as_ref(), r)
    }

    async fn run_armed(self) -> Result<TransferSummary> {
        let start = Instant::now();
        let CopyBuilder {
            via,
            local,
            remote,
            opts,
        } = self;
        refuse_unc(&remote, opts.allow_unc)?;
        check_remote_names(&remote, opts.expand)?;
        let meta = std::fs::metadata(&local).map_err(|e| local_error(&local, e))?;
        let mut plan = Vec::new();
        let mut dirs = Vec::new();
        // A single file's own name, which it takes in a remote directory: withheld
        // (with the reason) when Windows cannot hold it.
        let mut own_name = None;
        if meta.is_dir() {
            if !opts.recursive {
                return Err(transfer(
                    TransferErrorKind::LocalIsDirectory,
                    &local.display().to_string(),
                    "",
                ));
            }
            walk(&local, &mut Vec::new(), &mut plan, &mut dirs)?;
        } else {
            match local_name(&local) {
                Ok(name) => own_name = Some(name),
                Err(e) if names::names_a_directory(&remote) => return Err(e),
                Err(_) => {}
            }
        }
        let pool_token = opts.token.clone();
        let token = opts.token.clone();
        with_pool(via, &pool_token, async move |pool| {
            let chunk = chunk_limit(pool, opts.chunk_size);
            let mut meter = Meter::new(&opts, start);
            if !meta.is_dir() {
                meter.total = meta.len();
                meter.emit(&local.display().to_string());
                let (dest, sha) = copy_file(
                    pool,
                    &local,
                    &remote,
                    own_name.as_deref(),
                    &opts,
                    opts.expand,
                    chunk,
                    &mut meter,
                )
                .await
                .map_err(|e| match (&own_name, e.transfer_kind()) {
                    // The remote path is a directory: the file would have taken the
                    // name that was withheld.
                    (None, Some(TransferErrorKind::RemoteIsDirectory)) => {
                        local_name(&local).err().unwrap_or(e)
                    }
                    _ => e,
                })?;
                return Ok(TransferSummary {
                    bytes: meter.done,
                    files: 1,
                    directories: 0,
                    elapsed: start.elapsed(),
                    destination: dest,
                    sha256: Some(sha),
                });
            }
            meter.total = plan.iter().map(|(_, len)| *len).sum();
            meter.emit(&local.display().to_string());
            let rel_dirs: Vec<PsValue> = dirs
                .iter()
                .map(|d: &Vec<String>| PsValue::from(d.join("\\")))
                .collect();
            let mk = pool
                .pipeline()
                .script(scripts::MKDIR)
                .param("Path", remote.as_str())
                .param("Expand", opts.expand)
                .param("AllowUnc", opts.allow_unc)
                .input(rel_dirs)
                .cancellation(token.clone())
                .invoke()
                .await
                .map_err(|e| map_failure(e, &remote))?;
            let root = mk
                .output
                .first()
                .and_then(|v| v.property("Root"))
                .and_then(PsValue::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    Error::State("the host did not say where it created the directory".into())
                })?;
            let mut files = 0;
            for (rel, _) in &plan {
                let mut src = local.clone();
                rel.iter().for_each(|c| src.push(c));
                let dest = format!("{}\\{}", root.trim_end_matches('\\'), rel.join("\\"));
                copy_file(pool, &src, &dest, None, &opts, false, chunk, &mut meter).await?;
                files += 1;
            }
            Ok(TransferSummary {
                bytes: meter.done,
                files,
                directories: dirs.len() as u64 + 1,
                elapsed: start.elapsed(),
                destination: root,
                sha256: None,
            })
        })
        .await
    }
}

impl<'a> IntoFuture for CopyBuilder<'a> {
    type Output = Result<TransferSummary>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<TransferSummary>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl<'a> FetchBuilder<'a> {
    /// Runs the download.
    ///
    /// # Errors
    /// [`Error::Transfer`] with [`TransferErrorKind::RemoteNotFound`],
    /// `RemoteIsDirectory` (not recursive), `AccessDenied`, `AlreadyExists` (no
    /// overwrite), `PathRefused` (a UNC/device path, or a name from the host that would
    /// leave the destination), `InvalidName` (a remote name Windows cannot hold),
    /// `LocalNotFound` (the destination's directory, named in the error, checked before
    /// anything is sent), `Io` (local); [`Error::HashMismatch`];
    /// [`Error::Cancelled`]; PSRP and transport errors.
    ///
    /// # Cancel safety
    /// Cancel safe: the file is written under a temporary name (`.tw-<uuid>.part` next
    /// to the destination) that is removed when the transfer fails, is cancelled, or
    /// the future is dropped; the destination is only replaced by a complete, verified
    /// file. A download writes nothing on the host (its pipelines only read), so a
    /// dropped one leaves nothing there; its pipeline is stopped on a background task.
    pub async fn run(mut self) -> Result<TransferSummary> {
        let timer = DeadlineTimer::arm(&mut self.opts);
        let r = self.run_armed().await;
        DeadlineTimer::reason(timer.as_ref(), r)
    }

    async fn run_armed(self) -> Result<TransferSummary> {
        let start = Instant::now();
        let FetchBuilder {
            via,
            remote,
            local,
            opts,
        } = self;
        refuse_unc(&remote, opts.allow_unc)?;
        check_remote_names(&remote, opts.expand)?;
        if !opts.recursive {
            check_fetch_destination(&local)?;
        }
        let pool_token = opts.token.clone();
        let token = opts.token.clone();
        with_pool(via, &pool_token, async move |pool| {
            let chunk = chunk_limit(pool, opts.chunk_size);
            let mut meter = Meter::new(&opts, start);
            if !opts.recursive {
                let (dest, sha) = fetch_file(
                    pool,
                    &remote,
                    &local,
                    true,
                    &opts,
                    opts.expand,
                    chunk,
                    &mut meter,
                )
                .await?;
                return Ok(TransferSummary {
                    bytes: meter.done,
                    files: 1,
                    directories: 0,
                    elapsed: start.elapsed(),
                    destination: dest.display().to_string(),
                    sha256: Some(sha),
                });
            }
            let listed = pool
                .pipeline()
                .script(scripts::LIST)
                .param("Path", remote.as_str())
                .param("Expand", opts.expand)
                .param("AllowUnc", opts.allow_unc)
                .cancellation(token.clone())
                .invoke()
                .await
                .map_err(|e| map_failure(e, &remote))?;
            let mut items = listed.output.iter();
            let head = items
                .next()
                .ok_or_else(|| Error::State("the host listed nothing".into()))?;
            let root = head
                .property("Root")
                .and_then(PsValue::as_str)
                .unwrap_or(&remote)
                .to_string();
            if head.property("Directory").and_then(PsValue::as_bool) != Some(true) {
                check_fetch_destination(&local)?;
                let (dest, sha) =
                    fetch_file(pool, &root, &local, true, &opts, false, chunk, &mut meter).await?;
                return Ok(TransferSummary {
                    bytes: meter.done,
                    files: 1,
                    directories: 0,
                    elapsed: start.elapsed(),
                    destination: dest.display().to_string(),
                    sha256: Some(sha),
                });
            }
            let mut entries = Vec::new();
            for v in items {
                let rel = v.property("Path").and_then(PsValue::as_str).unwrap_or("");
                let parts = safe_relative(rel)?;
                let is_dir = v.property("Directory").and_then(PsValue::as_bool) == Some(true);
                let len = v
                    .property("Length")
                    .and_then(PsValue::as_i64)
                    .unwrap_or(0)
                    .max(0) as u64;
                entries.push((rel.to_string(), parts, is_dir, len));
            }
            meter.total = entries.iter().filter(|e| !e.2).map(|e| e.3).sum();
            meter.emit(&root);
            std::fs::create_dir_all(&local).map_err(|e| local_error(&local, e))?;
            let (mut files, mut directories) = (0, 1);
            for (rel, parts, is_dir, _) in &entries {
                let mut dest = local.clone();
                parts.iter().for_each(|c| dest.push(c));
                if *is_dir {
                    std::fs::create_dir_all(&dest).map_err(|e| local_error(&dest, e))?;
                    directories += 1;
                } else {
                    if let Some(parent) = dest.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| local_error(parent, e))?;
                    }
                    let src = format!("{}\\{}", root.trim_end_matches('\\'), rel);
                    fetch_file(pool, &src, &dest, false, &opts, false, chunk, &mut meter).await?;
                    files += 1;
                }
            }
            Ok(TransferSummary {
                bytes: meter.done,
                files,
                directories,
                elapsed: start.elapsed(),
                destination: local.display().to_string(),
                sha256: None,
            })
        })
        .await
    }
}

impl<'a> IntoFuture for FetchBuilder<'a> {
    type Output = Result<TransferSummary>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<TransferSummary>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// Progress bookkeeping.
struct Meter {
    done: u64,
    total: u64,
    start: Instant,
    f: Option<ProgressFn>,
}

impl Meter {
    fn new(o: &Options, start: Instant) -> Meter {
        Meter {
            done: 0,
            total: 0,
            start,
            f: o.progress.clone(),
        }
    }

    fn add(&mut self, n: usize, path: &str) {
        self.done += n as u64;
        self.emit(path);
    }

    fn emit(&self, path: &str) {
        if let Some(f) = &self.f {
            f(&TransferProgress {
                bytes_done: self.done,
                bytes_total: self.total.max(self.done),
                elapsed: self.start.elapsed(),
                path: path.to_string(),
            });
        }
    }
}

fn transfer(kind: TransferErrorKind, path: &str, message: &str) -> Error {
    Error::Transfer {
        kind,
        path: path.to_string(),
        message: message.to_string(),
    }
}

fn local_error(path: &Path, e: std::io::Error) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => TransferErrorKind::LocalNotFound,
        std::io::ErrorKind::PermissionDenied => TransferErrorKind::AccessDenied,
        std::io::ErrorKind::AlreadyExists => TransferErrorKind::AlreadyExists,
        _ => TransferErrorKind::Io,
    };
    transfer(kind, &path.display().to_string(), &e.to_string())
}

/// The error of creating the temporary file in `dir`: it names the destination's
/// directory (what the user gave), not the temporary name.
fn temp_open_error(dir: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        return transfer(
            TransferErrorKind::LocalNotFound,
            &dir.display().to_string(),
            "the destination's directory does not exist",
        );
    }
    local_error(dir, e)
}

/// Whether `path` is a UNC or device path (`\\server\share`, `\\.\`, `\\?\`, either
/// slash).
pub(crate) fn is_unc(path: &str) -> bool {
    let mut c = path.trim_start().chars();
    matches!((c.next(), c.next()), (Some('\\' | '/'), Some('\\' | '/')))
}

fn refuse_unc(remote: &str, allow: bool) -> Result<()> {
    if remote.trim().is_empty() {
        // On the host an empty path would mean the session's current directory (the
        // user's Documents): never what a caller meant.
        return Err(transfer(
            TransferErrorKind::PathRefused,
            remote,
            "the remote path is empty",
        ));
    }
    if !allow && is_unc(remote) {
        return Err(transfer(
            TransferErrorKind::PathRefused,
            remote,
            "UNC and device paths are refused unless allowed (allow_unc)",
        ));
    }
    Ok(())
}

/// The relative path a host listed, as local components: refused when it would leave
/// the destination (`..`, a root, a drive).
fn safe_relative(rel: &str) -> Result<Vec<String>> {
    let parts: Vec<String> = rel.split(['\\', '/']).map(str::to_string).collect();
    let bad = rel.is_empty()
        || parts
            .iter()
            .any(|p| p.is_empty() || p == "." || p == ".." || p.contains(':') || p.contains('\0'));
    if bad {
        return Err(transfer(
            TransferErrorKind::PathRefused,
            rel,
            "the host listed a path outside the directory",
        ));
    }
    Ok(parts)
}

/// The local tree under `dir`: files (relative components, length) and directories.
fn walk(
    dir: &Path,
    rel: &mut Vec<String>,
    files: &mut Vec<(Vec<String>, u64)>,
    dirs: &mut Vec<Vec<String>>,
) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| local_error(dir, e))?
        .collect::<std::io::Result<_>>()
        .map_err(|e| local_error(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    // The names of this directory as Windows compares them, and whose they are.
    let mut seen: std::collections::HashMap<String, PathBuf> = std::collections::HashMap::new();
    for e in entries {
        let path = e.path();
        let name = local_name(&path)?;
        if let Some(first) = seen.insert(names::case_key(&name), path.clone()) {
            return Err(transfer(
                TransferErrorKind::NameCollision,
                &first.display().to_string(),
                &format!(
                    "{} and {} differ only in case: Windows compares names \
                     case-insensitively (Unicode simple uppercase mapping, as NTFS), so \
                     one file would overwrite the other on the host",
                    first.display(),
                    path.display()
                ),
            ));
        }
        let meta = std::fs::metadata(&path).map_err(|err| local_error(&path, err))?;
        rel.push(name);
        if meta.is_dir() {
            dirs.push(rel.clone());
            walk(&path, rel, files, dirs)?;
        } else {
            files.push((rel.clone(), meta.len()));
        }
        rel.pop();
    }
    Ok(())
}

/// The last name of local `path` if Windows can hold it, else the typed error
/// ([`TransferErrorKind::InvalidName`]) naming the path and why.
fn local_name(path: &Path) -> Result<String> {
    let refused = |why: &str| {
        transfer(
            TransferErrorKind::InvalidName,
            &path.display().to_string(),
            why,
        )
    };
    let Some(name) = path.file_name() else {
        return Err(refused("the path has no file name"));
    };
    let Some(name) = name.to_str() else {
        return Err(refused(
            "the name is not valid Unicode (UTF-8): Windows names are Unicode text, and \
             names differing only in their invalid bytes would become one name",
        ));
    };
    match names::invalid_name(name) {
        Some(why) => Err(refused(&why)),
        None => Ok(name.to_string()),
    }
}

/// The names of a remote path the caller gave ([`names::check_remote_path`]).
fn check_remote_names(remote: &str, expand: bool) -> Result<()> {
    names::check_remote_path(remote, expand).map_err(|(name, why)| {
        transfer(
            TransferErrorKind::InvalidName,
            remote,
            &format!("`{name}`: {why}"),
        )
    })
}

/// Where a single downloaded file will go, checked before anything is sent: an
/// existing directory (the file takes its remote name), or a file name in an existing
/// directory. A path ending in a separator names a directory, which must exist.
fn check_fetch_destination(local: &Path) -> Result<()> {
    let text = local.as_os_str().to_string_lossy();
    let names_dir = text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR);
    let not_found = |p: &Path, why: &str| {
        transfer(
            TransferErrorKind::LocalNotFound,
            &p.display().to_string(),
            why,
        )
    };
    if names_dir {
        // Without the separator: `file/` fails on a file with "not a directory".
        let bare: PathBuf = local.components().collect();
        return match std::fs::metadata(&bare) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(not_found(
                local,
                "the path ends with a separator, so it names a directory, but it is a file",
            )),
            Err(_) => Err(not_found(
                local,
                "the destination directory does not exist; a path ending with a separator \
                 names a directory",
            )),
        };
    }
    if std::fs::metadata(local).is_ok() {
        return Ok(());
    }
    let dir = match local.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(not_found(dir, "the destination's directory is a file")),
        Err(_) => Err(not_found(dir, "the destination's directory does not exist")),
    }
}

/// File bytes per pipeline object: a base64 string of them, in a PIPELINE_INPUT
/// message, fits one fragment of the pool.
fn chunk_limit(pool: &RunspacePool, wanted: Option<usize>) -> usize {
    let blob = pool
        .inner
        .out
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .max_blob();
    // Message header (40 bytes), BOM and `<S></S>`, with room to spare.
    let max = (blob.saturating_sub(256) / 4 * 3).max(768);
    wanted.unwrap_or(max).min(max)
}

/// The error of a failed script: its `TokioWinrm.<Id>`, or the Windows error it let
/// through ([`TransferErrorKind::of_error_record`]), as a typed error.
fn map_failure(e: Error, path: &str) -> Error {
    let Error::PipelineFailed { error } = &e else {
        return e;
    };
    if let Some(kind) = tagged(error) {
        return kind_error(kind, path, error);
    }
    match TransferErrorKind::of_error_record(error) {
        Some(kind) => transfer(kind, path, &error.message),
        None => e,
    }
}

/// .NET exception type names (without namespace) and the kind they mean.
const EXCEPTION_KINDS: &[(&str, TransferErrorKind)] = &[
    (
        "UnauthorizedAccessException",
        TransferErrorKind::AccessDenied,
    ),
    ("SecurityException", TransferErrorKind::AccessDenied),
    ("FileNotFoundException", TransferErrorKind::RemoteNotFound),
    (
        "DirectoryNotFoundException",
        TransferErrorKind::RemoteNotFound,
    ),
    ("DriveNotFoundException", TransferErrorKind::RemoteNotFound),
    ("ItemNotFoundException", TransferErrorKind::RemoteNotFound),
    ("PathTooLongException", TransferErrorKind::PathRefused),
];

impl TransferErrorKind {
    /// The kind of file-transfer failure a PowerShell error record describes, for the
    /// errors Windows itself raises (not only the `TokioWinrm.<Id>` ones of this
    /// crate's scripts), in the order of what is surest:
    ///
    /// 1. the exception's type (`System.UnauthorizedAccessException`,
    ///    `System.Management.Automation.ItemNotFoundException`, ...);
    /// 2. the first part of `FullyQualifiedErrorId` or the category's reason, which
    ///    name the .NET exception when a script's call of a .NET method failed
    ///    (PowerShell wraps it in a `MethodInvocationException` whose error id is the
    ///    inner type: `Exception calling "Open" ...`, id `UnauthorizedAccessException`);
    /// 3. the category: `PermissionDenied` is [`AccessDenied`](Self::AccessDenied),
    ///    `ObjectNotFound` is [`RemoteNotFound`](Self::RemoteNotFound) unless what was
    ///    not found is a command (`CommandNotFoundException`, a broken script, not a
    ///    missing file), `ResourceExists` is [`AlreadyExists`](Self::AlreadyExists).
    ///
    /// Then `IOException` is [`Io`](Self::Io). `None` for anything else, e.g. a script's own `throw "text"` (a
    /// `RuntimeException` of category `OperationStopped`, as pypsrp's scripts fail):
    /// its text is for people, and no kind is guessed from words.
    pub fn of_error_record(error: &ErrorRecord) -> Option<TransferErrorKind> {
        let short = |name: &str| -> Option<TransferErrorKind> {
            let name = name.rsplit('.').next().unwrap_or(name);
            EXCEPTION_KINDS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, k)| *k)
        };
        if let Some(kind) = error.exception_type.as_deref().and_then(short) {
            return Some(kind);
        }
        let id = error
            .fully_qualified_error_id
            .as_deref()
            .map(|id| id.split(',').next().unwrap_or(id).trim());
        if let Some(kind) = id
            .and_then(short)
            .or_else(|| error.reason.as_deref().and_then(short))
        {
            return Some(kind);
        }
        let command_not_found =
            |s: Option<&str>| s.is_some_and(|s| s.contains("CommandNotFoundException"));
        match error.category {
            crate::psrp::ErrorCategory::PermissionDenied => Some(TransferErrorKind::AccessDenied),
            crate::psrp::ErrorCategory::ObjectNotFound
                if !command_not_found(error.exception_type.as_deref())
                    && !command_not_found(error.reason.as_deref())
                    && !command_not_found(id) =>
            {
                Some(TransferErrorKind::RemoteNotFound)
            }
            crate::psrp::ErrorCategory::ResourceExists => Some(TransferErrorKind::AlreadyExists),
            // The generic I/O failure (a file in use, a full disk), after the category
            // that may say more (`New-Item` on an existing file: `IOException`,
            // `ResourceExists`).
            _ => [error.exception_type.as_deref(), id, error.reason.as_deref()]
                .into_iter()
                .flatten()
                .any(|n| n.rsplit('.').next() == Some("IOException"))
                .then_some(TransferErrorKind::Io),
        }
    }
}

fn kind_error(id: &str, path: &str, error: &ErrorRecord) -> Error {
    let kind = match id {
        "NotFound" => TransferErrorKind::RemoteNotFound,
        "IsDirectory" => TransferErrorKind::RemoteIsDirectory,
        "NotDirectory" => TransferErrorKind::RemoteNotDirectory,
        "AccessDenied" => TransferErrorKind::AccessDenied,
        "AlreadyExists" => TransferErrorKind::AlreadyExists,
        "PathRefused" => TransferErrorKind::PathRefused,
        "InvalidName" => TransferErrorKind::InvalidName,
        "HashMismatch" => {
            let mut words = error.message.split_whitespace().rev();
            let actual = words.next().unwrap_or("").to_string();
            let expected = error
                .message
                .split("sent ")
                .nth(1)
                .and_then(|s| s.split(',').next())
                .unwrap_or("")
                .to_string();
            return Error::HashMismatch {
                path: path.to_string(),
                expected,
                actual,
            };
        }
        _ => TransferErrorKind::Io,
    };
    transfer(kind, path, &error.message)
}

/// The `<Id>` of a `TokioWinrm.<Id>` error id.
fn tagged(error: &ErrorRecord) -> Option<&str> {
    let id = error.fully_qualified_error_id.as_deref()?;
    let rest = &id[id.find("TokioWinrm.")? + "TokioWinrm.".len()..];
    Some(rest.split([',', ' ']).next().unwrap_or(rest))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Reads up to `n` bytes (fewer only at the end) on a blocking thread.
async fn read_chunk(file: &mut Option<std::fs::File>, n: usize) -> std::io::Result<Vec<u8>> {
    let mut f = file
        .take()
        .ok_or_else(|| std::io::Error::other("file closed"))?;
    let (f, r) = tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let mut buf = vec![0u8; n];
        let mut got = 0;
        while got < n {
            match f.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return (f, Err(e)),
            }
        }
        buf.truncate(got);
        (f, Ok(buf))
    })
    .await
    .map_err(std::io::Error::other)?;
    *file = Some(f);
    r
}

/// Writes `bytes` on a blocking thread.
async fn write_chunk(file: &mut Option<std::fs::File>, bytes: Vec<u8>) -> std::io::Result<()> {
    let mut f = file
        .take()
        .ok_or_else(|| std::io::Error::other("file closed"))?;
    let (f, r) = tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let r = f.write_all(&bytes);
        (f, r)
    })
    .await
    .map_err(std::io::Error::other)?;
    *file = Some(f);
    r
}

/// The reason of a cancelled transfer: the pipeline's, else the caller's.
fn stopped(reason: Option<CancelReason>) -> Error {
    match reason {
        Some(reason) => Error::Cancelled { reason },
        None => Error::PipelineStopped,
    }
}

/// Reads a pipeline to its final state (output objects to `on_output`).
async fn drain(p: &mut Pipeline, mut on_output: impl FnMut(PsValue)) -> Result<PipelineEnd> {
    while let Some(ev) = p.next().await {
        match ev? {
            PsEvent::Output(v) => on_output(v),
            PsEvent::State(end) => return Ok(end),
            _ => {}
        }
    }
    Err(Error::State(
        "the pipeline's stream ended without a final state".into(),
    ))
}

/// Uploads one file; returns the host's path and the agreed hash.
///
/// From the Command on, the host may have the temporary file: if this future is
/// dropped before it ends, an [`UploadGuard`] stops the pipeline and removes the file on
/// the client's cleanup tasks.
#[allow(clippy::too_many_arguments)]
async fn copy_file(
    pool: &RunspacePool,
    local: &Path,
    remote: &str,
    name: Option<&str>,
    o: &Options,
    expand: bool,
    chunk: usize,
    meter: &mut Meter,
) -> Result<(String, String)> {
    let file = std::fs::File::open(local).map_err(|e| local_error(local, e))?;
    let temp = format!(".tw-{}.tmp", Uuid::new_v4().simple());
    let mut guard = UploadGuard {
        starting: None,
        pipeline: None,
        cleanup: Some((
            pool.inner.shell.client.clone(),
            cleanup_pipeline(pool, remote, &temp, expand, o.allow_unc),
            temp.clone(),
        )),
    };
    let r = upload(
        pool, &mut guard, file, &temp, local, remote, name, o, expand, chunk, meter,
    )
    .await;
    // Ended (either way) rather than dropped: every path of `upload` left the host
    // clean or ran the cleanup itself.
    guard.cleanup = None;
    r
}

/// [`copy_file`]'s work, with the pipeline kept in `guard`.
#[allow(clippy::too_many_arguments)]
async fn upload(
    pool: &RunspacePool,
    guard: &mut UploadGuard,
    file: std::fs::File,
    temp: &str,
    local: &Path,
    remote: &str,
    name: Option<&str>,
    o: &Options,
    expand: bool,
    chunk: usize,
    meter: &mut Meter,
) -> Result<(String, String)> {
    let label = local.display().to_string();
    let token = &o.token;
    // Started on a task of its own: a drop of this future never abandons the Command
    // half way (the pipeline would be on the host with nobody to stop it); the guard
    // takes the task over instead.
    let start = pool
        .pipeline()
        .script(scripts::COPY)
        .param("Path", remote)
        .param("Name", name.unwrap_or(""))
        .param("Temp", temp)
        .param("Overwrite", o.overwrite)
        .param("Expand", expand)
        .param("AllowUnc", o.allow_unc)
        .streaming_input()
        // No token here: a cancel stops the pipeline below (`p.cancel()`), so that the
        // cleanup runs once the pipeline has ended.
        .start();
    let starting = guard.starting.insert(tokio::spawn(start));
    let started = joined(starting.await);
    guard.starting = None;
    let p = guard.pipeline.insert(started?);
    let mut sha = Sha256::new();
    let mut file = Some(file);
    let mut outputs = Vec::new();
    let mut early: Option<PipelineEnd> = None;
    // Stream the chunks; stop early when the pipeline ends (a failure in `begin`) or
    // the caller cancels.
    let sent: Result<()> = async {
        loop {
            let buf = tokio::select! {
                biased;
                () = token.cancelled() => return Err(Error::Cancelled { reason: CancelReason::User }),
                r = read_chunk(&mut file, chunk) => r.map_err(|e| local_error(local, e))?,
            };
            if buf.is_empty() {
                break;
            }
            sha.update(&buf);
            // base64-simd: the standard padded alphabet, as base64's STANDARD writes it.
            let text = base64_simd::STANDARD.encode_to_string(&buf);
            tokio::select! {
                biased;
                () = token.cancelled() => return Err(Error::Cancelled { reason: CancelReason::User }),
                r = p.send_input(text) => r?,
            }
            meter.add(buf.len(), &label);
            while let Some(Some(ev)) = p.next().now_or_never() {
                match ev? {
                    PsEvent::Output(v) => outputs.push(v),
                    PsEvent::State(end) => {
                        early = Some(end);
                        return Ok(());
                    }
                    _ => {}
                }
            }
        }
        let digest = hex(&sha.clone().finalize());
        tokio::select! {
            biased;
            () = token.cancelled() => return Err(Error::Cancelled { reason: CancelReason::User }),
            r = p.send_input(format!("sha256:{digest}")) => r?,
        }
        tokio::select! {
            biased;
            () = token.cancelled() => Err(Error::Cancelled { reason: CancelReason::User }),
            r = p.end_input() => r,
        }
    }
    .await;
    let digest = hex(&sha.finalize());
    if sent.is_err() {
        p.cancel();
    }
    let end = match early {
        Some(end) => Ok(end),
        None => drain(p, |v| outputs.push(v)).await,
    };
    match end {
        // The host has the whole file and its hash, checked and in place: a Send that
        // failed or was cancelled after that changes nothing.
        Ok(PipelineEnd::Completed) => {}
        // The pipeline's own failure explains a failed Send best.
        Ok(PipelineEnd::Failed(error)) => {
            return Err(map_failure(Error::PipelineFailed { error }, remote));
        }
        Ok(PipelineEnd::Stopped { reason }) => {
            cleanup(
                &pool.inner.shell.client,
                cleanup_pipeline(pool, remote, temp, expand, o.allow_unc),
                temp,
            )
            .await;
            return Err(sent.err().unwrap_or_else(|| {
                stopped(reason.or_else(|| token.is_cancelled().then_some(CancelReason::User)))
            }));
        }
        Err(e) => return Err(sent.err().unwrap_or(e)),
    }
    let result = outputs
        .iter()
        .rev()
        .find(|v| v.property("Sha256").is_some());
    let Some(result) = result else {
        return Err(Error::State(
            "the host did not report the file's hash".into(),
        ));
    };
    let dest = result
        .property("Path")
        .and_then(PsValue::as_str)
        .unwrap_or(remote)
        .to_string();
    let theirs = result
        .property("Sha256")
        .and_then(PsValue::as_str)
        .unwrap_or("");
    if !theirs.eq_ignore_ascii_case(&digest) {
        return Err(Error::HashMismatch {
            path: dest,
            expected: digest,
            actual: theirs.to_string(),
        });
    }
    meter.emit(&label);
    Ok((dest, digest))
}

/// How long the cleanup of a dropped upload may take, in all: the end of its pipeline,
/// then the cleanup pipeline.
const DROPPED_UPLOAD_CLEANUP: Duration = Duration::from_secs(90);

/// The upload pipeline of one file and, while armed, the cleanup to schedule when the
/// future running it is dropped: on the client's cleanup tasks
/// ([`Client::shutdown`] waits for them), the pipeline is stopped and read to its end,
/// then the cleanup pipeline removes the temporary file, as after a cancel. Nothing is
/// sent again: the stop signal and a new pipeline that only deletes the temporary name
/// of this upload (harmless when there is none: a finished upload renamed it).
struct UploadGuard {
    /// The task starting the pipeline, until it has.
    starting: Option<tokio::task::JoinHandle<Result<Pipeline>>>,
    pipeline: Option<Pipeline>,
    cleanup: Option<(Client, crate::psrp::PipelineBuilder, String)>,
}

/// The result of a task's future (a panic goes on in the caller).
fn joined<T>(r: std::result::Result<Result<T>, tokio::task::JoinError>) -> Result<T> {
    match r {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Aborted by the runtime's shutdown.
        Err(_) => Err(Error::Cancelled {
            reason: CancelReason::Shutdown,
        }),
    }
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        let Some((client, builder, temp)) = self.cleanup.take() else {
            return;
        };
        let starting = self.starting.take();
        let mut pipeline = self.pipeline.take();
        let spawner = client.clone();
        spawner.spawn_cleanup(async move {
            let work = async {
                if let Some(start) = starting {
                    match joined(start.await) {
                        Ok(p) => pipeline = Some(p),
                        // Not started: as without the drop (`start` stops a pipeline
                        // it created).
                        Err(_) => return,
                    }
                }
                if let Some(mut p) = pipeline {
                    // Stopped first, so that no Send of the dropped upload lands after
                    // the cleanup (the pool's runspace is free again, too).
                    p.cancel();
                    let _ = drain(&mut p, |_| {}).await;
                }
                cleanup(&client, builder, &temp).await;
            };
            if tokio::time::timeout(DROPPED_UPLOAD_CLEANUP, work)
                .await
                .is_err()
            {
                tracing::warn!(
                    temp,
                    "the cleanup of a dropped upload timed out; the temporary file may remain"
                );
            }
        });
    }
}

/// The pipeline that removes the temporary file `temp` of an upload to `remote` (best
/// effort, with its own deadline: the caller's token, or the client's own after
/// `cancel_all`, is cancelled by then).
fn cleanup_pipeline(
    pool: &RunspacePool,
    remote: &str,
    temp: &str,
    expand: bool,
    allow_unc: bool,
) -> crate::psrp::PipelineBuilder {
    pool.pipeline()
        .script(scripts::CLEANUP)
        .param("Path", remote)
        .param("Temp", temp)
        .param("Expand", expand)
        .param("AllowUnc", allow_unc)
        .deadline(Duration::from_secs(60))
        .outliving_client()
}

/// Runs a [`cleanup_pipeline`] after a stopped upload; failures are logged. The
/// client's `shutdown` (and `cancel_all`) waits for it.
async fn cleanup(client: &Client, pipeline: crate::psrp::PipelineBuilder, temp: &str) {
    let _cleaning = client.cleanup_token();
    if let Err(e) = pipeline.invoke().await {
        tracing::warn!(error = %e, temp, "could not remove the temporary file of a stopped upload");
    }
}

/// A local temporary file, removed on drop unless committed.
struct TempFile {
    path: Option<PathBuf>,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The last component of a Windows path.
fn remote_leaf(path: &str) -> &str {
    path.trim_end_matches(['\\', '/'])
        .rsplit(['\\', '/'])
        .next()
        .unwrap_or(path)
}

/// Downloads one file; returns the local path and the agreed hash. `into_dir`: a
/// `local` that is a directory receives the file under its remote name.
#[allow(clippy::too_many_arguments)]
async fn fetch_file(
    pool: &RunspacePool,
    remote: &str,
    local: &Path,
    into_dir: bool,
    o: &Options,
    expand: bool,
    chunk: usize,
    meter: &mut Meter,
) -> Result<(PathBuf, String)> {
    let token = &o.token;
    let mut p = pool
        .pipeline()
        .script(scripts::FETCH)
        .param("Path", remote)
        .param("Expand", expand)
        .param("AllowUnc", o.allow_unc)
        .param("ChunkSize", i32::try_from(chunk).unwrap_or(i32::MAX))
        .cancellation(token.clone())
        .start()
        .await?;
    let mut sha = Sha256::new();
    let mut dest: Option<PathBuf> = None;
    let mut temp = TempFile { path: None };
    let mut file: Option<std::fs::File> = None;
    let mut theirs: Option<String> = None;
    let mut label = remote.to_string();
    let end = loop {
        // A cancel ends the download at once: dropping the pipeline stops it (on a
        // background task) and `temp` removes the partial file.
        let ev = tokio::select! {
            biased;
            () = token.cancelled() => return Err(Error::Cancelled { reason: CancelReason::User }),
            ev = p.next() => ev,
        };
        let Some(ev) = ev else {
            return Err(Error::State(
                "the pipeline's stream ended without a final state".into(),
            ));
        };
        match ev? {
            PsEvent::Output(PsValue::String(text)) => {
                if file.is_none() {
                    return Err(Error::State(
                        "the host sent data before the file's header".into(),
                    ));
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text.trim())
                    .map_err(|e| {
                        Error::State(format!("the host sent a chunk that is not base64: {e}"))
                    })?;
                sha.update(&bytes);
                let n = bytes.len();
                let path = temp.path.clone().unwrap_or_default();
                write_chunk(&mut file, bytes)
                    .await
                    .map_err(|e| local_error(&path, e))?;
                meter.add(n, &label);
            }
            PsEvent::Output(v) => {
                if let Some(h) = v.property("Sha256").and_then(PsValue::as_str) {
                    theirs = Some(h.to_string());
                } else if let Some(path) = v.property("Path").and_then(PsValue::as_str) {
                    if file.is_some() {
                        continue;
                    }
                    label = path.to_string();
                    let len = v
                        .property("Length")
                        .and_then(PsValue::as_i64)
                        .unwrap_or(0)
                        .max(0) as u64;
                    if meter.total == 0 {
                        meter.total = len;
                        meter.emit(&label);
                    }
                    let mut target = local.to_path_buf();
                    if into_dir && target.is_dir() {
                        let leaf = remote_leaf(path);
                        safe_relative(leaf)?;
                        target.push(leaf);
                    }
                    if !o.overwrite && target.exists() {
                        return Err(transfer(
                            TransferErrorKind::AlreadyExists,
                            &target.display().to_string(),
                            "",
                        ));
                    }
                    if target.is_dir() {
                        return Err(transfer(
                            TransferErrorKind::Io,
                            &target.display().to_string(),
                            "the destination is a directory",
                        ));
                    }
                    let dir = match target.parent() {
                        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                        _ => PathBuf::from("."),
                    };
                    let tmp = dir.join(format!(".tw-{}.part", Uuid::new_v4().simple()));
                    let f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&tmp)
                        .map_err(|e| temp_open_error(&dir, e))?;
                    temp.path = Some(tmp);
                    file = Some(f);
                    dest = Some(target);
                }
            }
            PsEvent::State(end) => break end,
            _ => {}
        }
    };
    match end {
        PipelineEnd::Completed => {}
        PipelineEnd::Stopped { reason } => return Err(stopped(reason)),
        PipelineEnd::Failed(error) => {
            return Err(map_failure(Error::PipelineFailed { error }, remote));
        }
    }
    let (Some(dest), Some(f), Some(theirs)) = (dest, file.take(), theirs) else {
        return Err(Error::State(
            "the host did not send the whole file (header, data, hash)".into(),
        ));
    };
    let ours = hex(&sha.finalize());
    if !theirs.eq_ignore_ascii_case(&ours) {
        return Err(Error::HashMismatch {
            path: dest.display().to_string(),
            expected: theirs,
            actual: ours,
        });
    }
    let tmp = temp.path.clone().unwrap_or_default();
    let d = dest.clone();
    tokio::task::spawn_blocking(move || {
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &d)
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|r| r)
    .map_err(|e| local_error(&dest, e))?;
    temp.path = None;
    meter.emit(&label);
    Ok((dest, ours))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unc_and_device_paths() {
        for p in [
            r"\\server\share\x",
            r"\\.\pipe\x",
            r"\\?\C:\x",
            "//server/share",
        ] {
            assert!(is_unc(p), "{p}");
        }
        for p in [r"C:\x", r"\x", "x", r"%TEMP%\x", r"$env:TEMP\x"] {
            assert!(!is_unc(p), "{p}");
        }
        assert_eq!(
            refuse_unc(r"\\s\x", false).unwrap_err().transfer_kind(),
            Some(TransferErrorKind::PathRefused)
        );
        assert!(refuse_unc(r"\\s\x", true).is_ok());
    }

    #[test]
    fn listed_paths_stay_inside() {
        assert_eq!(safe_relative(r"a\b.txt").unwrap(), vec!["a", "b.txt"]);
        for bad in ["", r"..\x", r"a\..\..\x", r"C:\x", r"\x", "a\\\\b"] {
            assert!(safe_relative(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scripts_start_with_their_marker() {
        for (s, verb) in [
            (scripts::COPY, "copy"),
            (scripts::FETCH, "fetch"),
            (scripts::LIST, "list"),
            (scripts::MKDIR, "mkdir"),
            (scripts::CLEANUP, "cleanup"),
        ] {
            assert_eq!(
                s.lines().next(),
                Some(format!("# tokio-winrm:{verb} v1").as_str())
            );
        }
    }

    /// Windows fails a script given a named parameter its `param()` block lacks: every
    /// parameter the client passes is declared.
    #[test]
    fn scripts_declare_the_parameters_they_are_given() {
        for (s, given) in [
            (
                scripts::COPY,
                &["Path", "Name", "Temp", "Overwrite", "Expand", "AllowUnc"][..],
            ),
            (
                scripts::FETCH,
                &["Path", "Expand", "AllowUnc", "ChunkSize"][..],
            ),
            (scripts::LIST, &["Path", "Expand", "AllowUnc"][..]),
            (scripts::MKDIR, &["Path", "Expand", "AllowUnc"][..]),
            (
                scripts::CLEANUP,
                &["Path", "Temp", "Expand", "AllowUnc"][..],
            ),
        ] {
            let block = s.lines().nth(1).unwrap();
            assert!(block.starts_with("param("), "{block}");
            for p in given {
                assert!(
                    block.contains(&format!("${p},")) || block.contains(&format!("${p})")),
                    "{p} in {block}"
                );
            }
            assert_eq!(block.matches('$').count(), given.len(), "{block}");
        }
        let src = include_str!("mod.rs");
        for (script, params) in [
            ("COPY", 6),
            ("FETCH", 4),
            ("LIST", 3),
            ("MKDIR", 3),
            ("CLEANUP", 4),
        ] {
            let at = src.find(&format!(".script(scripts::{script})")).unwrap();
            let rest = &src[at..];
            let end = rest
                .find(".invoke()")
                .into_iter()
                .chain(rest.find(".start()"))
                .min()
                .unwrap();
            assert_eq!(rest[..end].matches(".param(").count(), params, "{script}");
        }
    }

    #[test]
    fn script_failures_become_typed_errors() {
        use crate::psrp::ErrorCategory;
        let failed = |id: &str, message: &str, exception: Option<&str>| {
            let mut e = ErrorRecord::new(message, id, ErrorCategory::NotSpecified);
            e.exception_type = exception.map(str::to_string);
            map_failure(Error::PipelineFailed { error: Box::new(e) }, r"C:\x")
        };
        let kind = |e: Error| e.transfer_kind();
        assert_eq!(
            kind(failed("TokioWinrm.NotFound", "m", None)),
            Some(TransferErrorKind::RemoteNotFound)
        );
        assert_eq!(
            kind(failed("TokioWinrm.IsDirectory,Fail", "m", None)),
            Some(TransferErrorKind::RemoteIsDirectory)
        );
        assert_eq!(
            kind(failed("TokioWinrm.AccessDenied", "m", None)),
            Some(TransferErrorKind::AccessDenied)
        );
        assert_eq!(
            kind(failed("TokioWinrm.PathRefused", "m", None)),
            Some(TransferErrorKind::PathRefused)
        );
        assert_eq!(
            kind(failed("TokioWinrm.InvalidName", "m", None)),
            Some(TransferErrorKind::InvalidName)
        );
        let e = failed(
            "TokioWinrm.HashMismatch",
            r"SHA-256 mismatch for C:\x: sent abc, written def",
            None,
        );
        let Error::HashMismatch {
            expected, actual, ..
        } = e
        else {
            panic!("{e:?}")
        };
        assert_eq!((expected.as_str(), actual.as_str()), ("abc", "def"));
        assert_eq!(
            kind(failed(
                "x",
                "denied",
                Some("System.UnauthorizedAccessException")
            )),
            Some(TransferErrorKind::AccessDenied)
        );
        assert_eq!(
            kind(failed(
                "PathNotFound",
                "m",
                Some("System.Management.Automation.ItemNotFoundException")
            )),
            Some(TransferErrorKind::RemoteNotFound)
        );
        // A .NET method's failure: PowerShell's MethodInvocationException, the inner
        // exception's type as the error id.
        assert_eq!(
            kind(failed(
                "UnauthorizedAccessException",
                "Exception calling \"Open\" with \"3\" argument(s): \"Access to the path is denied.\"",
                Some("System.Management.Automation.MethodInvocationException")
            )),
            Some(TransferErrorKind::AccessDenied)
        );
        assert!(matches!(
            failed("Other", "m", None),
            Error::PipelineFailed { .. }
        ));
        // Not a pipeline failure: unchanged.
        assert!(matches!(
            map_failure(Error::PipelineStopped, "x"),
            Error::PipelineStopped
        ));
    }

    #[test]
    fn leaf_of_remote_paths() {
        assert_eq!(remote_leaf(r"C:\a\b.txt"), "b.txt");
        assert_eq!(remote_leaf("C:/a/b.txt"), "b.txt");
        assert_eq!(remote_leaf(r"C:\a\dir\"), "dir");
    }
}
