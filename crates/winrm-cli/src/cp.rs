//! `winrm cp LOCAL REMOTE` and `winrm fetch REMOTE LOCAL`: file copy over PowerShell
//! Remoting ([`tokio_winrm::Client::copy`] / [`tokio_winrm::Client::fetch`]), a progress
//! bar on stderr, a final line with size, time and rate (a JSON object on stdout with
//! `--json`). Ctrl-C stops the transfer, removes the partial file and exits 130. `cp
//! --hosts` copies to every host of a list.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_winrm::{Client, Error, TransferSummary};

use crate::stream::watch_ctrl_c;
use crate::{Failure, Global};

/// The options `cp` and `fetch` share.
#[derive(Debug, Clone, clap::Args)]
pub struct TransferArgs {
    /// Copy a directory tree (empty directories included); the destination is the
    /// root of the copy.
    #[arg(short = 'r', long)]
    pub recursive: bool,
    /// Fail instead of replacing an existing destination file.
    #[arg(long)]
    pub no_clobber: bool,
    /// Allow UNC and device paths on the host (\\server\share, \\?\): they reach
    /// other machines with your credentials.
    #[arg(long)]
    pub allow_unc: bool,
    /// Take %VAR% and $env:VAR in the remote path literally.
    #[arg(long)]
    pub no_expand: bool,
}

/// Which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Upload.
    Copy,
    /// Download.
    Fetch,
}

fn bar() -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(0), target);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {wide_msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Runs one transfer with `client`, cancelled by `token`.
async fn transfer(
    client: &Client,
    dir: Direction,
    local: &std::path::Path,
    remote: &str,
    a: &TransferArgs,
    token: CancellationToken,
    bar: Option<ProgressBar>,
) -> Result<TransferSummary, Error> {
    let progress = move |p: &tokio_winrm::TransferProgress| {
        if let Some(b) = &bar {
            b.set_length(p.bytes_total);
            b.set_position(p.bytes_done);
            b.set_message(p.path.clone());
        }
    };
    match dir {
        Direction::Copy => {
            client
                .copy(local, remote)
                .recursive(a.recursive)
                .overwrite(!a.no_clobber)
                .allow_unc(a.allow_unc)
                .expand_variables(!a.no_expand)
                .cancellation(token)
                .progress(progress)
                .await
        }
        Direction::Fetch => {
            client
                .fetch(remote, local)
                .recursive(a.recursive)
                .overwrite(!a.no_clobber)
                .allow_unc(a.allow_unc)
                .expand_variables(!a.no_expand)
                .cancellation(token)
                .progress(progress)
                .await
        }
    }
}

/// Human sizes: `12.3 MiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

fn summary_line(dir: Direction, s: &TransferSummary) -> String {
    let what = if s.files == 1 && s.directories == 0 {
        String::new()
    } else {
        format!(" ({} files, {} directories)", s.files, s.directories)
    };
    format!(
        "{} {}{what} {} {} in {:.2} s, {}/s",
        if dir == Direction::Copy {
            "copied"
        } else {
            "fetched"
        },
        size(s.bytes),
        if dir == Direction::Copy { "to" } else { "into" },
        s.destination,
        s.elapsed.as_secs_f64(),
        size(s.rate() as u64)
    )
}

fn summary_json(dir: Direction, s: &TransferSummary, host: Option<&str>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "operation": if dir == Direction::Copy { "copy" } else { "fetch" },
        "destination": s.destination,
        "bytes": s.bytes,
        "files": s.files,
        "directories": s.directories,
        "seconds": s.elapsed.as_secs_f64(),
        "bytes_per_second": s.rate(),
        "sha256": s.sha256,
    });
    if let Some(h) = host {
        // A row of `cp --hosts --json`: a failed host's row carries "failed" (and its
        // "error") instead.
        v["host"] = h.into();
        v["status"] = "copied".into();
    }
    v
}

/// `winrm cp` / `winrm fetch` move every chunk through a few 150-200 kB buffers (the
/// file's bytes, their base64, the CLIXML, the PSRP message, the envelope). With
/// glibc's default, dynamic thresholds each of them was given back to the system when
/// freed (`brk` shrinking, `munmap`) and faulted in again for the next chunk: about a
/// fifth of an upload's CPU (`perf`; 256 MiB up: 1.4-1.5 s of CPU, 1.0-1.2 s with
/// these settings, peak RSS unchanged at 11 MB). Buffers up to 4 MiB now come from the
/// heap and up to 32 MiB of free heap is kept; one arena, as for `run --hosts`. The
/// memory kept is what the transfer itself used at its peak. Elsewhere (other C
/// libraries) nothing is changed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_transfer_buffers() {
    // SAFETY: mallopt only sets allocator parameters; it is called from `main` before
    // the runtime (or anything else) has started another thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 32 << 20);
    }
}

/// See the glibc version: nothing to do elsewhere.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_transfer_buffers() {}

/// `winrm cp` / `winrm fetch` on one host.
pub async fn run(
    client: &Client,
    dir: Direction,
    local: PathBuf,
    remote: String,
    a: &TransferArgs,
    json: bool,
) -> Result<ExitCode, Failure> {
    if dir == Direction::Fetch && local.as_os_str() == "-" {
        return fetch_to_stdout(client, &remote, a, json).await;
    }
    let s = match interruptible(client, dir, &local, &remote, a).await? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    if json {
        crate::out::outln!("{}", summary_json(dir, &s, None));
    } else {
        eprintln!("{}", summary_line(dir, &s));
    }
    Ok(ExitCode::SUCCESS)
}

/// One transfer with a progress bar and Ctrl-C as its cancel: its summary, or the exit
/// status of an interrupted transfer.
async fn interruptible(
    client: &Client,
    dir: Direction,
    local: &std::path::Path,
    remote: &str,
    a: &TransferArgs,
) -> Result<Result<TransferSummary, ExitCode>, Failure> {
    let token = CancellationToken::new();
    let bar = bar();
    let mut interrupts = watch_ctrl_c();
    let work = transfer(
        client,
        dir,
        local,
        remote,
        a,
        token.clone(),
        Some(bar.clone()),
    );
    tokio::pin!(work);
    let result = loop {
        tokio::select! {
            r = &mut work => break r,
            Some(()) = interrupts.recv() => {
                if token.is_cancelled() {
                    bar.suspend(|| eprintln!("interrupted again: not waiting for the cleanup"));
                    bar.finish_and_clear();
                    return Ok(Err(ExitCode::from(crate::stream::interrupted_code())));
                }
                bar.suspend(|| eprintln!("{}: stopping the transfer and removing the partial file; press Ctrl-C again to stop waiting", crate::stream::interrupt_name()));
                token.cancel();
            }
        }
    };
    bar.finish_and_clear();
    match result {
        Ok(s) => Ok(Ok(s)),
        Err(e) if e.is_cancelled() && token.is_cancelled() => {
            eprintln!("interrupted: nothing partial was left");
            Ok(Err(ExitCode::from(crate::stream::interrupted_code())))
        }
        Err(e) => Err(Failure::Winrm(e)),
    }
}

/// `winrm fetch REMOTE -`: the file's bytes on stdout, as they are (the summary line
/// on stderr). The library writes a fetch to a path (whole and checked, then renamed),
/// so the file goes to a private temporary directory first, is copied to stdout, and
/// is removed.
async fn fetch_to_stdout(
    client: &Client,
    remote: &str,
    a: &TransferArgs,
    json: bool,
) -> Result<ExitCode, Failure> {
    if a.recursive {
        return Err(Failure::Message(
            "fetch -r REMOTE -: a directory tree cannot be written to stdout; name a local \
             directory instead of `-`"
                .into(),
            2,
        ));
    }
    if json {
        return Err(Failure::Message(
            "fetch REMOTE - writes the file's bytes to stdout, where --json would print its \
             summary: leave out --json (the summary goes to stderr)"
                .into(),
            2,
        ));
    }
    let tmp = private_temp_dir()?;
    let result = async {
        let file = tmp.join("fetched");
        let mut s = match interruptible(client, Direction::Fetch, &file, remote, a).await? {
            Ok(s) => s,
            Err(code) => return Ok(code),
        };
        copy_to_stdout(&file)?;
        if !crate::out::closed() {
            s.destination = "stdout".into();
            eprintln!("{}", summary_line(Direction::Fetch, &s));
        }
        Ok(ExitCode::SUCCESS)
    }
    .await;
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

/// A new directory under the system's temporary directory that only this user can
/// read (on Unix).
fn private_temp_dir() -> Result<PathBuf, Failure> {
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut last = None;
    for i in 0..16u32 {
        let dir = base.join(format!(
            "winrm-fetch-{}-{nanos:08x}-{i}",
            std::process::id()
        ));
        let mut b = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        match b.create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                last = Some(e);
                break;
            }
        }
    }
    Err(Failure::Message(
        format!(
            "cannot create a temporary directory in {} for fetch REMOTE -: {}",
            base.display(),
            last.map_or_else(String::new, |e| e.to_string())
        ),
        1,
    ))
}

/// Copies a file's bytes to stdout; stops early when stdout's reader went away.
fn copy_to_stdout(path: &std::path::Path) -> Result<(), Failure> {
    use std::io::Read as _;
    let mut file = std::fs::File::open(path)
        .map_err(|e| Failure::Message(format!("cannot read the fetched file: {e}"), 1))?;
    let mut buf = vec![0u8; 256 * 1024];
    while !crate::out::closed() {
        let n = file
            .read(&mut buf)
            .map_err(|e| Failure::Message(format!("cannot read the fetched file: {e}"), 1))?;
        if n == 0 {
            break;
        }
        crate::out::write_bytes(&buf[..n]);
    }
    crate::out::flush();
    Ok(())
}

/// `winrm cp --hosts`: the same upload to every host, `concurrency` at a time; a line
/// per host, exit 0 when every copy succeeded, 1 when any failed, 130 after Ctrl-C.
pub async fn fan_out(
    g: &Global,
    spec: &str,
    concurrency: usize,
    local: PathBuf,
    remote: String,
    a: &TransferArgs,
) -> Result<ExitCode, Failure> {
    if g.endpoint.is_some() {
        return Err(Failure::Message(
            "--hosts and --endpoint: give one (each --hosts entry is an endpoint)".into(),
            2,
        ));
    }
    let targets = crate::fanout::parse_hosts(spec).map_err(|m| Failure::Message(m, 2))?;
    crate::check_kerberos(g, true)?;
    let auth = crate::endpoint_auth(g)?;
    if let Some(t) = targets
        .iter()
        .find(|t| t.url.to_ascii_lowercase().starts_with("http://"))
    {
        crate::refuse_clear_basic(g, &t.url, &auth)?;
    }
    let ca = crate::read_ca(g)?;
    let shared = Arc::new((g.clone(), auth, ca, local, remote, a.clone()));
    let cancel = CancellationToken::new();
    let total = targets.len();
    let hosts = ProgressBar::with_draw_target(
        Some(total as u64),
        if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} hosts, {elapsed} {msg}") {
        hosts.set_style(style);
    }
    let mut pending = targets.into_iter();
    let mut tasks = JoinSet::new();
    let mut interrupts = watch_ctrl_c();
    let (mut failed, mut done) = (0usize, 0usize);
    let started = Instant::now();
    loop {
        while !cancel.is_cancelled() && tasks.len() < concurrency.max(1) {
            let Some(t) = pending.next() else { break };
            let (shared, cancel) = (Arc::clone(&shared), cancel.clone());
            tasks.spawn(async move {
                let (g, auth, ca, local, remote, a) = &*shared;
                let r = match crate::build_client(
                    g,
                    t.url.clone(),
                    auth.clone(),
                    g.allow_http_basic,
                    ca.as_deref(),
                ) {
                    Ok(client) => {
                        let r = transfer(
                            &client,
                            Direction::Copy,
                            local,
                            remote,
                            a,
                            cancel.child_token(),
                            None,
                        )
                        .await;
                        // Background cleanups (a Create finished after the cancel, the
                        // partial file's removal): briefly after Ctrl-C, when the server
                        // may be what stalled.
                        let grace = if cancel.is_cancelled() {
                            crate::stream::CLEANUP_GRACE
                        } else {
                            Duration::from_secs(10)
                        };
                        let _ = tokio::time::timeout(grace, client.shutdown()).await;
                        r.map_err(|e| crate::render::describe_error_line(&e))
                    }
                    Err(Failure::Winrm(e)) => Err(crate::render::describe_error_line(&e)),
                    Err(Failure::Message(m, _)) => Err(m),
                };
                (t.label, r)
            });
        }
        // stdout's reader went away: the rest is stopped, as on Ctrl-C (partial files
        // removed), and the tool exits 141.
        if crate::out::closed() && !cancel.is_cancelled() {
            cancel.cancel();
        }
        tokio::select! {
            next = tasks.join_next() => match next {
                Some(Ok((label, r))) => {
                    done += 1;
                    hosts.inc(1);
                    match r {
                        Ok(s) => hosts.suspend(|| {
                            if g.json {
                                crate::out::outln!("{}", summary_json(Direction::Copy, &s, Some(&label)));
                            } else {
                                crate::out::outln!("{label}: {}", summary_line(Direction::Copy, &s));
                            }
                        }),
                        Err(e) => {
                            failed += 1;
                            let first = e;
                            hosts.suspend(|| {
                                if g.json {
                                    crate::out::outln!("{}", serde_json::json!({"host": label, "status": "failed", "error": first}));
                                } else {
                                    crate::out::outln!("{label}: FAILED: {first}");
                                }
                            });
                        }
                    }
                }
                Some(Err(e)) => hosts.suspend(|| eprintln!("warning: a host's task ended abnormally: {e}")),
                None => break,
            },
            Some(()) = interrupts.recv() => {
                if cancel.is_cancelled() {
                    break;
                }
                hosts.suspend(|| eprintln!("{}: stopping every copy (partial files removed); press Ctrl-C again to stop waiting", crate::stream::interrupt_name()));
                cancel.cancel();
            }
        }
    }
    tasks.abort_all();
    hosts.finish_and_clear();
    eprintln!(
        "{}: {} copied, {failed} failed{} in {:.2} s",
        crate::fanout::hosts(total),
        done - failed,
        if cancel.is_cancelled() {
            " (interrupted)"
        } else {
            ""
        },
        started.elapsed().as_secs_f64()
    );
    Ok(if let Some(code) = crate::out::exit_code() {
        code
    } else if cancel.is_cancelled() {
        ExitCode::from(crate::stream::interrupted_code())
    } else if failed > 0 || done < total {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(100 << 20), "100.0 MiB");
    }
}
