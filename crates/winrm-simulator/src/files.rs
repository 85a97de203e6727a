//! A simulated host's file system, with Windows' path rules (drive letters, `\` and
//! `/`, case-insensitive names, `.` and `..`, the names Windows refuses), read-only
//! files, and the environment variables of the user a session runs as (`%TEMP%`,
//! `$env:TEMP`).
//!
//! It lives in memory, or with file contents in a directory of the machine running the
//! simulator ([`Simulator::back_files_with`], for large files). The file-copy scripts
//! of tokio-winrm (`Client::copy` / `Client::fetch`) run natively on it: the PowerShell
//! engine recognises them by their first line (`# tokio-winrm:<verb> v1`).
//!
//! Tests put files with [`Simulator::put_file`], look at what arrived with
//! [`Simulator::file`], and make files read-only with [`Simulator::set_read_only`].

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};

use crate::soap::psrp::messages::{ErrorCategory, ErrorRecord};
use crate::soap::psrp::{PsObject, PsValue};
use crate::winrs::{CmdletContext, CmdletFn};
use crate::{Simulator, State};

/// The first-line marker of tokio-winrm's file-transfer scripts.
pub(crate) const MARKER: &str = "# tokio-winrm:";

/// Why a path operation failed, as the scripts report it (the `TokioWinrm.<id>` error
/// ids the client maps to its typed errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    NotFound,
    IsDirectory,
    NotDirectory,
    AccessDenied,
    AlreadyExists,
    PathRefused,
    InvalidName,
    HashMismatch,
    Io,
}

impl Fail {
    fn id(self) -> &'static str {
        match self {
            Fail::NotFound => "NotFound",
            Fail::IsDirectory => "IsDirectory",
            Fail::NotDirectory => "NotDirectory",
            Fail::AccessDenied => "AccessDenied",
            Fail::AlreadyExists => "AlreadyExists",
            Fail::PathRefused => "PathRefused",
            Fail::InvalidName => "InvalidName",
            Fail::HashMismatch => "HashMismatch",
            Fail::Io => "Io",
        }
    }

    fn category(self) -> ErrorCategory {
        match self {
            Fail::NotFound => ErrorCategory::ObjectNotFound,
            Fail::AccessDenied => ErrorCategory::PermissionDenied,
            Fail::AlreadyExists => ErrorCategory::ResourceExists,
            Fail::PathRefused | Fail::InvalidName | Fail::IsDirectory | Fail::NotDirectory => {
                ErrorCategory::InvalidArgument
            }
            Fail::HashMismatch => ErrorCategory::InvalidResult,
            Fail::Io => ErrorCategory::WriteError,
        }
    }

    fn record(self, message: impl Into<String>) -> ErrorRecord {
        ErrorRecord::new(
            message,
            format!("TokioWinrm.{}", self.id()),
            self.category(),
        )
    }
}

type FsResult<T> = Result<T, (Fail, String)>;

/// Where a file's bytes are.
#[derive(Debug)]
enum Content {
    Mem(Vec<u8>),
    Disk(PathBuf),
}

#[derive(Debug)]
enum Kind {
    Dir,
    File { content: Content, read_only: bool },
}

#[derive(Debug)]
struct Node {
    /// The path as it was created (its case kept).
    path: String,
    kind: Kind,
}

/// One simulated host's files.
#[derive(Debug, Default)]
pub(crate) struct Files {
    nodes: Mutex<BTreeMap<String, Node>>,
    backing: Mutex<Option<PathBuf>>,
    next_blob: AtomicU64,
    /// Transfers still to corrupt (fault injection).
    corrupt: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The lookup key of a normalized path: case-insensitive, as NTFS names are
/// ([`wsman_protocol::windows_names::case_key`]: `README` and `readme` are one file).
fn key(path: &str) -> String {
    wsman_protocol::windows_names::case_key(path)
}

/// Why Windows refuses `name` (one path component) as a file or directory name
/// ([`wsman_protocol::windows_names::name_problem`]), in the words of the simulator's
/// errors.
fn invalid_name(name: &str) -> Option<&'static str> {
    use wsman_protocol::windows_names::NameProblem as P;
    Some(match wsman_protocol::windows_names::name_problem(name)? {
        // An empty component (`a\\b`) is not a name; paths skip them.
        P::Empty => return None,
        P::Control(_) | P::Forbidden(_) => "a character Windows forbids in file names",
        P::TrailingDotOrSpace => "a trailing dot or space, which Windows drops",
        P::DeviceName => "a reserved device name",
    })
}

/// The first name of `path` (an expanded, not yet normalized path, as the scripts'
/// `Resolve-TwPath` checks it) that Windows refuses, with why. Skipped: a device path
/// (`\\?\`, `\\.\`: literal names), the server and share of a UNC path, the drive
/// (`C:`, or a PowerShell drive before a separator), empty names, `.` and `..`.
fn refused_name(path: &str) -> Option<(String, &'static str)> {
    let b = path.as_bytes();
    let sep = |i: usize| matches!(b.get(i), Some(b'\\' | b'/'));
    if sep(0) && sep(1) && matches!(b.get(2), Some(b'?' | b'.')) && sep(3) {
        return None;
    }
    let mut parts: Vec<&str> = path.split(['\\', '/']).collect();
    let mut skip = 0;
    let several = parts.len() > 1;
    if sep(0) && sep(1) {
        skip = 4;
    } else if let Some(first) = parts.first_mut() {
        let f = first.as_bytes();
        if f.len() >= 2 && f[0].is_ascii_alphabetic() && f[1] == b':' {
            *first = &first[2..];
        } else if several
            && let Some(drive) = first.strip_suffix(':')
            && drive.starts_with(|c: char| c.is_ascii_alphabetic())
            && drive.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            *first = "";
        }
    }
    parts
        .into_iter()
        .skip(skip)
        .filter(|p| !p.is_empty() && *p != "." && *p != "..")
        .find_map(|p| invalid_name(p).map(|why| (p.to_string(), why)))
}

/// [`refused_name`] as the scripts' `Test-TwName` reports it.
fn check_names(path: &str) -> Result<(), ErrorRecord> {
    match refused_name(path) {
        Some((name, why)) => Err(Fail::InvalidName.record(format!(
            "Not a valid Windows file name ({why}): '{name}' in {path}"
        ))),
        None => Ok(()),
    }
}

/// [`refused_name`] as Windows' file APIs report it (`ERROR_INVALID_NAME`), for the
/// simulator's own methods.
fn io_check_names(path: &str) -> std::io::Result<()> {
    match refused_name(path) {
        Some((name, why)) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "The filename, directory name, or volume label syntax is incorrect ({why}): \
                 '{name}' in {path}"
            ),
        )),
        None => Ok(()),
    }
}

/// Normalizes a Windows path: `/` to `\`, a drive-relative or relative path made
/// absolute (`cwd`), `.` and `..` resolved, repeated and trailing separators dropped.
/// UNC and device paths (`\\server\share`, `\\.\`, `\\?\`) are kept as UNC (`Err`).
pub(crate) fn normalize(path: &str, cwd: &str) -> Result<String, String> {
    let p = path.replace('/', "\\");
    if p.starts_with("\\\\") {
        return Err(p);
    }
    let bytes = p.as_bytes();
    let (drive, rest) = if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        let d = (bytes[0] as char).to_ascii_uppercase();
        let rest = &p[2..];
        if rest.starts_with('\\') {
            (d, rest.to_string())
        } else if cwd.starts_with(d) || cwd.starts_with(d.to_ascii_lowercase()) {
            // `C:rel` (and `C:` alone): relative to the drive's current directory, as
            // PowerShell resolves it; the session's is `cwd`.
            (d, format!("{}\\{rest}", cwd.get(2..).unwrap_or_default()))
        } else {
            // Another drive: its current directory is its root in a new session.
            (d, format!("\\{rest}"))
        }
    } else if p.starts_with('\\') {
        let d = cwd.chars().next().unwrap_or('C');
        (d, p.clone())
    } else {
        return normalize(&format!("{cwd}\\{p}"), "C:\\");
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in rest.split('\\') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    // Windows drops trailing dots and spaces of names.
    let parts: Vec<String> = parts
        .iter()
        .map(|s| s.trim_end_matches(['.', ' ']).to_string())
        .filter(|s| !s.is_empty())
        .collect();
    Ok(format!("{drive}:\\{}", parts.join("\\")))
}

/// The parent of a normalized path (`None` for a drive root).
fn parent(path: &str) -> Option<&str> {
    let i = path.rfind('\\')?;
    if i + 1 == path.len() {
        return None;
    }
    if i == 2 {
        Some(&path[..3])
    } else {
        Some(&path[..i])
    }
}

#[cfg(test)]
fn leaf(path: &str) -> &str {
    path.rsplit('\\').next().unwrap_or(path)
}

fn is_root(path: &str) -> bool {
    path.len() == 3 && path.ends_with(":\\")
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('\\') {
        format!("{dir}{name}")
    } else {
        format!("{dir}\\{name}")
    }
}

/// Expands `%VAR%` (as `[Environment]::ExpandEnvironmentVariables`) and `$env:VAR` /
/// `${env:VAR}` (as PowerShell) with `env`; unknown names stay as written.
pub(crate) fn expand(path: &str, env: &[(String, String)]) -> String {
    let get = |name: &str| {
        env.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    // $env:NAME and ${env:NAME} first (PowerShell's string), then %NAME%.
    let mut out = String::new();
    let mut rest = path;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let lower = tail.to_ascii_lowercase();
        if lower.starts_with("${env:")
            && let Some(end) = tail.find('}')
        {
            let name = &tail[6..end];
            match get(name) {
                Some(v) => out.push_str(&v),
                None => out.push_str(&tail[..=end]),
            }
            rest = &tail[end + 1..];
        } else if lower.starts_with("$env:") {
            let len = tail[5..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len() - 5);
            let name = &tail[5..5 + len];
            match get(name) {
                Some(v) if !name.is_empty() => out.push_str(&v),
                _ => out.push_str(&tail[..5 + len]),
            }
            rest = &tail[5 + len..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    let mut result = String::new();
    let mut rest = out.as_str();
    while let Some(i) = rest.find('%') {
        result.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        match tail.find('%') {
            Some(end) => match get(&tail[..end]) {
                Some(v) if end > 0 => {
                    result.push_str(&v);
                    rest = &tail[end + 1..];
                }
                _ => {
                    result.push('%');
                    rest = tail;
                }
            },
            None => {
                result.push('%');
                rest = tail;
            }
        }
    }
    result.push_str(rest);
    result
}

/// A file being written (a temporary name the copy script renames at the end).
struct Writer {
    key: String,
    disk: Option<std::fs::File>,
}

/// A file being read by the fetch script.
enum Reader {
    Mem { key: String, offset: usize },
    Disk(std::fs::File),
}

impl Files {
    pub(crate) fn new() -> Files {
        let f = Files::default();
        for d in [
            "C:\\Windows",
            "C:\\Windows\\TEMP",
            "C:\\Users",
            "C:\\Users\\Public",
        ] {
            let _ = f.create_dir_all(d);
        }
        // The files `type` shows on every host, so that fetch finds them too.
        for path in [
            "C:\\Windows\\win.ini",
            "C:\\Windows\\System32\\drivers\\etc\\hosts",
            "C:\\sim\\hello.txt",
        ] {
            if let (Some(bytes), Some(dir)) = (
                crate::winrs::builtin_file(&path.to_ascii_lowercase()),
                parent(path),
            ) {
                let _ = f.create_dir_all(dir);
                let _ = f.insert_file(path, Content::Mem(bytes.to_vec()));
            }
        }
        f
    }

    fn get_kind<R>(&self, path: &str, f: impl FnOnce(Option<&Node>) -> R) -> R {
        let nodes = lock(&self.nodes);
        f(nodes.get(&key(path)))
    }

    fn is_dir(&self, path: &str) -> bool {
        is_root(path)
            || self.get_kind(path, |n| {
                matches!(
                    n,
                    Some(Node {
                        kind: Kind::Dir,
                        ..
                    })
                )
            })
    }

    fn is_file(&self, path: &str) -> bool {
        self.get_kind(path, |n| {
            matches!(
                n,
                Some(Node {
                    kind: Kind::File { .. },
                    ..
                })
            )
        })
    }

    /// The path as it was created (case kept), for a normalized `path`.
    fn display(&self, path: &str) -> String {
        self.get_kind(path, |n| {
            n.map_or_else(|| path.to_string(), |n| n.path.clone())
        })
    }

    fn create_dir_all(&self, path: &str) -> FsResult<()> {
        if is_root(path) {
            return Ok(());
        }
        if let Some(p) = parent(path) {
            self.create_dir_all(p)?;
        }
        let mut nodes = lock(&self.nodes);
        match nodes.get(&key(path)) {
            Some(Node {
                kind: Kind::Dir, ..
            }) => Ok(()),
            Some(_) => Err((
                Fail::NotDirectory,
                format!("A file exists where a directory was expected: {path}"),
            )),
            None => {
                nodes.insert(
                    key(path),
                    Node {
                        path: path.to_string(),
                        kind: Kind::Dir,
                    },
                );
                Ok(())
            }
        }
    }

    fn blob_path(&self) -> Option<PathBuf> {
        let dir = lock(&self.backing).clone()?;
        let n = self.next_blob.fetch_add(1, Ordering::SeqCst);
        Some(dir.join(format!("blob-{n}.bin")))
    }

    /// Creates `path` (its parent must exist) with `bytes`, replacing a file there.
    fn write_all(&self, path: &str, bytes: &mut dyn Read) -> FsResult<()> {
        let io = |e: std::io::Error| (Fail::Io, e.to_string());
        let content = match self.blob_path() {
            Some(p) => {
                let mut f = std::fs::File::create(&p).map_err(io)?;
                std::io::copy(bytes, &mut f).map_err(io)?;
                Content::Disk(p)
            }
            None => {
                let mut v = Vec::new();
                bytes.read_to_end(&mut v).map_err(io)?;
                Content::Mem(v)
            }
        };
        self.insert_file(path, content)
    }

    fn insert_file(&self, path: &str, content: Content) -> FsResult<()> {
        let dir = parent(path).unwrap_or(path);
        if !self.is_dir(dir) {
            return Err((
                Fail::NotFound,
                format!("Could not find a part of the path '{path}'."),
            ));
        }
        let mut nodes = lock(&self.nodes);
        if let Some(Node {
            kind: Kind::Dir, ..
        }) = nodes.get(&key(path))
        {
            return Err((Fail::IsDirectory, format!("'{path}' is a directory.")));
        }
        // Replacing a file keeps its name as it was created (NTFS opens `readme` as the
        // existing `README`).
        let name = nodes
            .get(&key(path))
            .map_or_else(|| path.to_string(), |n| n.path.clone());
        if let Some(old) = nodes.insert(
            key(path),
            Node {
                path: name,
                kind: Kind::File {
                    content,
                    read_only: false,
                },
            },
        ) {
            remove_blob(old);
        }
        Ok(())
    }

    fn remove(&self, path: &str) -> bool {
        let old = lock(&self.nodes).remove(&key(path));
        match old {
            Some(n) => {
                remove_blob(n);
                true
            }
            None => false,
        }
    }

    /// Opens a new file for writing (`CreateNew`).
    fn create_new(&self, path: &str) -> FsResult<Writer> {
        if self.is_file(path) || self.is_dir(path) {
            return Err((
                Fail::AlreadyExists,
                format!("The file '{path}' already exists."),
            ));
        }
        let (content, disk) = match self.blob_path() {
            Some(p) => {
                let f = std::fs::File::create(&p).map_err(|e| (Fail::Io, e.to_string()))?;
                (Content::Disk(p), Some(f))
            }
            None => (Content::Mem(Vec::new()), None),
        };
        self.insert_file(path, content)?;
        Ok(Writer {
            key: key(path),
            disk,
        })
    }

    fn append(&self, w: &mut Writer, bytes: &[u8]) -> FsResult<()> {
        if let Some(f) = &mut w.disk {
            return f.write_all(bytes).map_err(|e| (Fail::Io, e.to_string()));
        }
        let mut nodes = lock(&self.nodes);
        match nodes.get_mut(&w.key) {
            Some(Node {
                kind:
                    Kind::File {
                        content: Content::Mem(v),
                        ..
                    },
                ..
            }) => {
                v.extend_from_slice(bytes);
                Ok(())
            }
            _ => Err((
                Fail::Io,
                "The file was removed while it was written.".into(),
            )),
        }
    }

    /// Moves `from` over `to` (`[IO.File]::Replace` / `Move`): refused for a read-only
    /// `to`.
    fn rename(&self, from: &str, to: &str) -> FsResult<()> {
        let mut nodes = lock(&self.nodes);
        match nodes.get(&key(to)) {
            Some(Node {
                kind: Kind::File {
                    read_only: true, ..
                },
                ..
            }) => {
                return Err((
                    Fail::AccessDenied,
                    format!("Access to the path '{to}' is denied."),
                ));
            }
            Some(Node {
                kind: Kind::Dir, ..
            }) => {
                return Err((Fail::IsDirectory, format!("'{to}' is a directory.")));
            }
            _ => {}
        }
        let Some(mut node) = nodes.remove(&key(from)) else {
            return Err((Fail::NotFound, format!("Could not find file '{from}'.")));
        };
        // `[IO.File]::Replace` keeps the replaced file's name; `Move` gives the new one.
        node.path = nodes
            .get(&key(to))
            .map_or_else(|| to.to_string(), |n| n.path.clone());
        if let Some(old) = nodes.insert(key(to), node) {
            remove_blob(old);
        }
        Ok(())
    }

    fn open_read(&self, path: &str) -> FsResult<(Reader, u64)> {
        let nodes = lock(&self.nodes);
        match nodes.get(&key(path)) {
            Some(Node {
                kind: Kind::File { content, .. },
                ..
            }) => match content {
                Content::Mem(v) => Ok((
                    Reader::Mem {
                        key: key(path),
                        offset: 0,
                    },
                    v.len() as u64,
                )),
                Content::Disk(p) => {
                    let f = std::fs::File::open(p).map_err(|e| (Fail::Io, e.to_string()))?;
                    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                    Ok((Reader::Disk(f), len))
                }
            },
            Some(_) => Err((Fail::IsDirectory, format!("'{path}' is a directory."))),
            None => Err((
                Fail::NotFound,
                format!("Cannot find path '{path}' because it does not exist."),
            )),
        }
    }

    fn read_chunk(&self, r: &mut Reader, max: usize) -> FsResult<Vec<u8>> {
        match r {
            Reader::Disk(f) => {
                let mut buf = vec![0u8; max];
                let mut n = 0;
                while n < max {
                    let k = f
                        .read(&mut buf[n..])
                        .map_err(|e| (Fail::Io, e.to_string()))?;
                    if k == 0 {
                        break;
                    }
                    n += k;
                }
                buf.truncate(n);
                Ok(buf)
            }
            Reader::Mem { key, offset } => {
                let nodes = lock(&self.nodes);
                let Some(Node {
                    kind:
                        Kind::File {
                            content: Content::Mem(v),
                            ..
                        },
                    ..
                }) = nodes.get(key.as_str())
                else {
                    return Err((Fail::Io, "The file was removed while it was read.".into()));
                };
                let start = (*offset).min(v.len());
                let end = (start + max).min(v.len());
                *offset = end;
                Ok(v[start..end].to_vec())
            }
        }
    }

    /// Every entry under `root` (normalized), as (relative path, is a directory, length).
    fn list(&self, root: &str) -> Vec<(String, bool, u64)> {
        let prefix = key(&join(root, ""));
        // A key has its path's characters (one for one): the relative part of a path
        // starts after as many characters as the prefix has.
        let skip = prefix.chars().count();
        let nodes = lock(&self.nodes);
        nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, n)| {
                let rel: String = n.path.chars().skip(skip).collect();
                match &n.kind {
                    Kind::Dir => (rel, true, 0),
                    Kind::File { content, .. } => (rel, false, content_len(content)),
                }
            })
            .collect()
    }

    /// The whole contents of the file at `path` (any form `normalize` takes; a relative
    /// path is taken from `C:\`), or `None` when there is no such file.
    pub(crate) fn read_file(&self, path: &str) -> Option<Vec<u8>> {
        let p = normalize(path, "C:\\").ok()?;
        let (mut r, _) = self.open_read(&p).ok()?;
        let mut out = Vec::new();
        loop {
            let chunk = self.read_chunk(&mut r, 1 << 20).ok()?;
            if chunk.is_empty() {
                return Some(out);
            }
            out.extend_from_slice(&chunk);
        }
    }

    /// Whether a file or directory is at `path` (as [`Files::read_file`] takes it).
    pub(crate) fn exists(&self, path: &str) -> bool {
        normalize(path, "C:\\").is_ok_and(|p| self.is_dir(&p) || self.is_file(&p))
    }

    /// The entries directly in directory `dir`, directories first (as `dir` and
    /// `Get-ChildItem` show them): names as created, and lengths (`None` for a
    /// directory), each group sorted case-insensitively. `None` when `dir` is not a
    /// directory.
    pub(crate) fn entries_in(&self, dir: &str) -> Option<Vec<(String, Option<usize>)>> {
        let d = normalize(dir, "C:\\").ok()?;
        if !self.is_dir(&d) {
            return None;
        }
        let mut entries: Vec<(String, Option<usize>)> = self
            .list(&d)
            .into_iter()
            .filter(|(rel, _, _)| !rel.is_empty() && !rel.contains('\\'))
            .map(|(rel, is_dir, len)| {
                let len = (!is_dir).then(|| usize::try_from(len).unwrap_or(usize::MAX));
                (rel, len)
            })
            .collect();
        entries.sort_by_key(|(name, len)| (len.is_some(), name.to_ascii_lowercase()));
        Some(entries)
    }

    fn take_corruption(&self) -> bool {
        self.corrupt
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

fn content_len(c: &Content) -> u64 {
    match c {
        Content::Mem(v) => v.len() as u64,
        Content::Disk(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
    }
}

fn remove_blob(n: Node) {
    if let Kind::File {
        content: Content::Disk(p),
        ..
    } = n.kind
    {
        let _ = std::fs::remove_file(p);
    }
}

/// What a test reads about one simulated file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimFileInfo {
    /// The path as it was created.
    pub path: String,
    /// Its length in bytes.
    pub len: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
    /// The read-only attribute.
    pub read_only: bool,
}

impl Simulator {
    fn files(&self) -> &Files {
        &self.state.files
    }

    /// Keeps the contents of files written from now on in `dir` (a directory of this
    /// machine) instead of memory: for large transfers. Names and attributes stay in
    /// memory.
    ///
    /// # Errors
    /// When `dir` cannot be created.
    pub fn back_files_with(&self, dir: impl Into<PathBuf>) -> std::io::Result<()> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        *lock(&self.files().backing) = Some(dir);
        Ok(())
    }

    /// The contents of the simulated file at `path` (Windows rules: `C:\x\y.txt`,
    /// case-insensitive), or `None` when there is no such file. Give the full path: a
    /// relative one is taken from `C:\`, while a client's relative remote path is the
    /// session's directory (`C:\Users\<user>\Documents`); a transfer's
    /// `TransferSummary::destination` is the full path to ask for.
    pub fn file(&self, path: &str) -> Option<Vec<u8>> {
        self.files().read_file(path)
    }

    /// The length, SHA-256 and attributes of the simulated file at `path`, without
    /// reading it into memory.
    pub fn file_info(&self, path: &str) -> Option<SimFileInfo> {
        let p = normalize(path, "C:\\").ok()?;
        let (mut r, len) = self.files().open_read(&p).ok()?;
        let mut h = Sha256::new();
        loop {
            let chunk = self.files().read_chunk(&mut r, 1 << 20).ok()?;
            if chunk.is_empty() {
                break;
            }
            h.update(&chunk);
        }
        let read_only = self.files().get_kind(&p, |n| {
            matches!(
                n,
                Some(Node {
                    kind: Kind::File {
                        read_only: true,
                        ..
                    },
                    ..
                })
            )
        });
        Some(SimFileInfo {
            path: self.files().display(&p),
            len,
            sha256: hex(&h.finalize()),
            read_only,
        })
    }

    /// Whether `path` is a directory of the simulated host.
    pub fn is_dir(&self, path: &str) -> bool {
        normalize(path, "C:\\").is_ok_and(|p| self.files().is_dir(&p))
    }

    /// Every file and directory under `dir`, relative to it (`a\b.txt`), sorted
    /// case-insensitively.
    pub fn list_files(&self, dir: &str) -> Vec<String> {
        normalize(dir, "C:\\")
            .map(|p| {
                self.files()
                    .list(&p)
                    .into_iter()
                    .map(|(r, _, _)| r)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Puts a file on the simulated host (its directories are created), replacing one
    /// that is there. The host has one file system: file copy (`Client::copy` /
    /// `Client::fetch`), [`Simulator::file`], `type`, `dir`, `Get-Item` and
    /// `powershell -File` all see it, as they see [`Simulator::register_file`]'s files.
    ///
    /// # Errors
    /// A directory at `path`, an unusable path (a name Windows refuses, as
    /// `Client::copy` finds it: `<>:"/\|?*`, `CON`, a trailing dot), or an I/O error
    /// of the backing directory.
    pub fn put_file(&self, path: &str, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
        self.put_file_from(path, &mut bytes.as_ref())
    }

    /// Puts a file read from `reader` (streamed into the backing directory when there is
    /// one).
    ///
    /// # Errors
    /// As [`Simulator::put_file`].
    pub fn put_file_from(&self, path: &str, reader: &mut dyn Read) -> std::io::Result<()> {
        io_check_names(path)?;
        let p = normalize(path, "C:\\")
            .map_err(|p| std::io::Error::other(format!("not a local path: {p}")))?;
        if let Some(d) = parent(&p) {
            self.files()
                .create_dir_all(d)
                .map_err(|(_, m)| std::io::Error::other(m))?;
        }
        self.files()
            .write_all(&p, reader)
            .map_err(|(_, m)| std::io::Error::other(m))
    }

    /// Creates a directory (and its parents) on the simulated host.
    ///
    /// # Errors
    /// A file where a directory is needed, or an unusable path (a name Windows
    /// refuses).
    pub fn create_dir(&self, path: &str) -> std::io::Result<()> {
        io_check_names(path)?;
        let p = normalize(path, "C:\\")
            .map_err(|p| std::io::Error::other(format!("not a local path: {p}")))?;
        self.files()
            .create_dir_all(&p)
            .map_err(|(_, m)| std::io::Error::other(m))
    }

    /// Sets or clears the read-only attribute of a simulated file; `false` when there is
    /// no such file.
    pub fn set_read_only(&self, path: &str, read_only: bool) -> bool {
        let Ok(p) = normalize(path, "C:\\") else {
            return false;
        };
        let mut nodes = lock(&self.files().nodes);
        match nodes.get_mut(&key(&p)) {
            Some(Node {
                kind: Kind::File { read_only: r, .. },
                ..
            }) => {
                *r = read_only;
                true
            }
            _ => false,
        }
    }

    /// Corrupts the next `n` file transfers: a copy writes one byte wrong (so the
    /// remote hash check fails), a fetch sends one byte wrong (so the client's does).
    pub fn inject_file_corruption(&self, n: u64) {
        self.files().corrupt.store(n, Ordering::SeqCst);
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The native implementation of a tokio-winrm file script, if `script` is one.
pub(crate) fn native_script(script: &str) -> Option<CmdletFn> {
    if let Some(f) = pypsrp_script(script) {
        return Some(f);
    }
    let first = script.lines().next()?.trim();
    let verb = first.strip_prefix(MARKER)?.split_whitespace().next()?;
    let f: CmdletFn = match verb {
        "copy" => Arc::new(|ctx| -> BoxFuture<'static, _> { Box::pin(copy(ctx)) }),
        "fetch" => Arc::new(|ctx| -> BoxFuture<'static, _> { Box::pin(fetch(ctx)) }),
        "list" => Arc::new(|ctx| -> BoxFuture<'static, _> { Box::pin(list(ctx)) }),
        "mkdir" => Arc::new(|ctx| -> BoxFuture<'static, _> { Box::pin(mkdir(ctx)) }),
        "cleanup" => Arc::new(|ctx| -> BoxFuture<'static, _> { Box::pin(cleanup(ctx)) }),
        _ => return None,
    };
    Some(f)
}

/// What every script does first: the path parameter expanded (`-Expand`), refused when
/// UNC or a device path (unless `-AllowUnc`), made absolute.
fn resolve(ctx: &CmdletContext, state: &State) -> Result<String, ErrorRecord> {
    let raw = ctx.parameter_str("Path").unwrap_or_default();
    let user = ctx.user().to_string();
    let env = crate::winrs::session_env(&user);
    let p = if ctx.parameter("Expand").and_then(PsValue::as_bool) == Some(true) {
        expand(&raw, &env)
    } else {
        raw
    };
    let home = format!("C:\\Users\\{user}");
    for d in [
        format!("{home}\\Documents"),
        format!("{home}\\AppData\\Local\\Temp"),
    ] {
        let _ = state.files.create_dir_all(&d);
    }
    let allow = ctx.parameter("AllowUnc").and_then(PsValue::as_bool) == Some(true);
    let unc = p.starts_with(['\\', '/']) && p[1..].starts_with(['\\', '/']);
    if allow || !unc {
        check_names(&p)?;
    }
    match normalize(&p, &format!("{home}\\Documents")) {
        Ok(p) => Ok(p),
        Err(unc) if !allow => {
            Err(Fail::PathRefused.record(format!("UNC and device paths are refused: {unc}")))
        }
        Err(unc) => Err(Fail::NotFound.record(format!("The network path was not found: {unc}"))),
    }
}

/// As PowerShell binds a script's `param()` block: a named argument the block does not
/// declare fails the pipeline (`NamedParameterNotFound`).
fn check_params(ctx: &CmdletContext, declared: &[&str]) -> Result<(), ErrorRecord> {
    for a in ctx.arguments() {
        if let Some(n) = &a.name
            && !declared.iter().any(|d| d.eq_ignore_ascii_case(n))
        {
            let mut e = ErrorRecord::new(
                format!("A parameter cannot be found that matches parameter name '{n}'."),
                "NamedParameterNotFound",
                ErrorCategory::InvalidArgument,
            );
            e.exception_type =
                Some("System.Management.Automation.ParameterBindingException".into());
            return Err(e);
        }
    }
    Ok(())
}

fn fail((f, m): (Fail, String)) -> ErrorRecord {
    f.record(m)
}

/// The copy script's target: `Path`, or `Path\Name` when `Path` is a directory.
fn copy_target(ctx: &CmdletContext, files: &Files, path: String) -> Result<String, ErrorRecord> {
    if files.is_dir(&path) {
        match ctx.parameter_str("Name").filter(|n| !n.is_empty()) {
            Some(name) => {
                if let Some(why) = invalid_name(&name) {
                    return Err(Fail::InvalidName.record(format!(
                        "Not a valid Windows file name ({why}): '{name}' in {path}"
                    )));
                }
                let t = join(&path, &name);
                if files.is_dir(&t) {
                    return Err(Fail::IsDirectory.record(format!("The target is a directory: {t}")));
                }
                Ok(t)
            }
            None => Err(Fail::IsDirectory.record(format!("The target is a directory: {path}"))),
        }
    } else {
        Ok(path)
    }
}

async fn copy(mut ctx: CmdletContext) -> Result<(), ErrorRecord> {
    check_params(
        &ctx,
        &["Path", "Name", "Temp", "Overwrite", "Expand", "AllowUnc"],
    )?;
    let state = Arc::clone(ctx.sim_state());
    let files = &state.files;
    let path = resolve(&ctx, &state)?;
    // `X\` names a directory: the script's `GetDirectoryName` of it is `X`, which must
    // exist (the file then goes in under its own name); a file is never made of it.
    let raw = ctx.parameter_str("Path").unwrap_or_default();
    if raw.ends_with(['\\', '/']) && !files.is_dir(&path) {
        return Err(Fail::NotFound.record(format!("The target's directory does not exist: {path}")));
    }
    let target = copy_target(&ctx, files, path)?;
    let dir = parent(&target).unwrap_or(&target).to_string();
    if !files.is_dir(&dir) {
        return Err(Fail::NotFound.record(format!("The target's directory does not exist: {dir}")));
    }
    if files.is_file(&target) {
        if ctx.parameter("Overwrite").and_then(PsValue::as_bool) != Some(true) {
            return Err(Fail::AlreadyExists.record(format!("The target exists: {target}")));
        }
        let ro = files.get_kind(&target, |n| {
            matches!(
                n,
                Some(Node {
                    kind: Kind::File {
                        read_only: true,
                        ..
                    },
                    ..
                })
            )
        });
        if ro {
            return Err(Fail::AccessDenied.record(format!("The target is read-only: {target}")));
        }
    }
    let temp = ctx.parameter_str("Temp").unwrap_or_default();
    if temp.is_empty() || temp.contains(['\\', '/']) {
        return Err(Fail::Io.record("-Temp must be a file name"));
    }
    let tmp = join(&dir, &temp);
    let mut w = files.create_new(&tmp).map_err(fail)?;
    let mut sha = Sha256::new();
    let mut expected: Option<String> = None;
    let mut length: u64 = 0;
    let corrupt = files.take_corruption();
    while let Some(v) = ctx.next_input().await {
        let Some(text) = crate::winrs::text_of(&v) else {
            continue;
        };
        if let Some(h) = text.strip_prefix("sha256:") {
            expected = Some(h.to_string());
            continue;
        }
        use base64::Engine as _;
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| Fail::Io.record(format!("Exception calling \"FromBase64String\": {e}")))?;
        if corrupt && length == 0 && !bytes.is_empty() {
            bytes[0] ^= 0xff;
        }
        sha.update(&bytes);
        files.append(&mut w, &bytes).map_err(fail)?;
        length += bytes.len() as u64;
    }
    if corrupt && length == 0 {
        sha.update([0u8]);
        files.append(&mut w, &[0u8]).map_err(fail)?;
        length = 1;
    }
    if let Some(f) = w.disk.take() {
        drop(f);
    }
    let actual = hex(&sha.finalize());
    if expected.as_deref() != Some(actual.as_str()) {
        files.remove(&tmp);
        return Err(Fail::HashMismatch.record(format!(
            "SHA-256 mismatch for {target}: sent {}, written {actual}",
            expected.as_deref().unwrap_or("(none)")
        )));
    }
    files.rename(&tmp, &target).map_err(|e| {
        files.remove(&tmp);
        fail(e)
    })?;
    let out = PsObject::new()
        .with_property("Path", files.display(&target))
        .with_property("Length", PsValue::I64(length as i64))
        .with_property("Sha256", actual);
    ctx.write_output(out).await;
    Ok(())
}

async fn fetch(ctx: CmdletContext) -> Result<(), ErrorRecord> {
    check_params(&ctx, &["Path", "Expand", "AllowUnc", "ChunkSize"])?;
    let state = Arc::clone(ctx.sim_state());
    let files = &state.files;
    let src = resolve(&ctx, &state)?;
    if files.is_dir(&src) {
        return Err(Fail::IsDirectory.record(format!("The path is a directory: {src}")));
    }
    // `F\` is no file on Windows (`File.Exists` is false for it), whatever `F` is.
    let raw = ctx.parameter_str("Path").unwrap_or_default();
    if raw.ends_with(['\\', '/']) {
        return Err(Fail::NotFound.record(format!(
            "Cannot find path '{raw}' because it does not exist."
        )));
    }
    let (mut r, len) = files.open_read(&src).map_err(fail)?;
    let chunk = ctx
        .parameter("ChunkSize")
        .and_then(PsValue::as_i64)
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n > 0)
        .unwrap_or(65536)
        .min(16 << 20);
    ctx.write_output(
        PsObject::new()
            .with_property("Path", files.display(&src))
            .with_property("Length", PsValue::I64(len as i64)),
    )
    .await;
    let mut sha = Sha256::new();
    let mut corrupt = files.take_corruption();
    loop {
        let mut bytes = files.read_chunk(&mut r, chunk).map_err(fail)?;
        if bytes.is_empty() {
            break;
        }
        sha.update(&bytes);
        if corrupt {
            bytes[0] ^= 0xff;
            corrupt = false;
        }
        use base64::Engine as _;
        ctx.write_output(base64::engine::general_purpose::STANDARD.encode(&bytes))
            .await;
    }
    ctx.write_output(PsObject::new().with_property("Sha256", hex(&sha.finalize())))
        .await;
    Ok(())
}

async fn list(ctx: CmdletContext) -> Result<(), ErrorRecord> {
    check_params(&ctx, &["Path", "Expand", "AllowUnc"])?;
    let state = Arc::clone(ctx.sim_state());
    let files = &state.files;
    let root = resolve(&ctx, &state)?;
    let is_dir = files.is_dir(&root);
    if !is_dir && !files.is_file(&root) {
        return Err(Fail::NotFound.record(format!(
            "Cannot find path '{root}' because it does not exist."
        )));
    }
    ctx.write_output(
        PsObject::new()
            .with_property("Root", files.display(&root))
            .with_property("Directory", is_dir),
    )
    .await;
    if is_dir {
        for (rel, dir, len) in files.list(&root) {
            ctx.write_output(
                PsObject::new()
                    .with_property("Path", rel)
                    .with_property("Directory", dir)
                    .with_property("Length", PsValue::I64(len as i64)),
            )
            .await;
        }
    }
    Ok(())
}

async fn mkdir(mut ctx: CmdletContext) -> Result<(), ErrorRecord> {
    check_params(&ctx, &["Path", "Expand", "AllowUnc"])?;
    let state = Arc::clone(ctx.sim_state());
    let files = &state.files;
    let root = resolve(&ctx, &state)?;
    files.create_dir_all(&root).map_err(fail)?;
    ctx.write_output(PsObject::new().with_property("Root", files.display(&root)))
        .await;
    while let Some(v) = ctx.next_input().await {
        if let Some(rel) = crate::winrs::text_of(&v) {
            if let Some((name, why)) = rel
                .split(['\\', '/'])
                .filter(|n| !n.is_empty())
                .find_map(|n| invalid_name(n).map(|why| (n, why)))
            {
                return Err(Fail::InvalidName.record(format!(
                    "Not a valid Windows file name ({why}): '{name}' in {root}"
                )));
            }
            let p = normalize(&rel, &root).map_err(|p| {
                Fail::PathRefused.record(format!("UNC and device paths are refused: {p}"))
            })?;
            files.create_dir_all(&p).map_err(fail)?;
        }
    }
    Ok(())
}

async fn cleanup(ctx: CmdletContext) -> Result<(), ErrorRecord> {
    check_params(&ctx, &["Path", "Temp", "Expand", "AllowUnc"])?;
    let state = Arc::clone(ctx.sim_state());
    let files = &state.files;
    let path = resolve(&ctx, &state)?;
    let dir = if files.is_dir(&path) {
        path
    } else {
        parent(&path).unwrap_or(&path).to_string()
    };
    let temp = ctx.parameter_str("Temp").unwrap_or_default();
    let removed = !temp.is_empty()
        && !temp.contains(['\\', '/'])
        && files.is_file(&join(&dir, &temp))
        && files.remove(&join(&dir, &temp));
    ctx.write_output(removed).await;
    Ok(())
}

/// pypsrp's `Client.copy` / `Client.fetch` scripts (its `pwsh_scripts/copy.ps1` and
/// `fetch.ps1`, recognised by what they do: SHA-1 over a temporary file, or over a source
/// path from `$MyInvocation.UnboundArguments`), run natively with the same inputs,
/// outputs and failures as on Windows.
fn pypsrp_script(script: &str) -> Option<CmdletFn> {
    if !script.contains("SHA1CryptoServiceProvider") {
        return None;
    }
    if script.contains("GetTempFileName()") && script.contains("MaximumAllowedMemory") {
        return Some(Arc::new(|ctx| -> BoxFuture<'static, _> {
            Box::pin(pypsrp_copy(ctx))
        }));
    }
    if script.contains("$raw_src_path") {
        return Some(Arc::new(|ctx| -> BoxFuture<'static, _> {
            Box::pin(pypsrp_fetch(ctx))
        }));
    }
    None
}

/// A `throw "message"` of a script, as PowerShell records it: a `RuntimeException`
/// (on the wire too), the message as the error id, category `OperationStopped`.
fn thrown(message: String) -> ErrorRecord {
    crate::winrs::psrp::engine::thrown(Some(message.into()))
}

/// pypsrp's path argument: `%VAR%` expanded when the second argument is `$true`
/// (`[Environment]::ExpandEnvironmentVariables`, so not `$env:VAR`), made absolute.
fn pypsrp_path(ctx: &CmdletContext, state: &State) -> Result<String, ErrorRecord> {
    let raw = ctx
        .positional(0)
        .and_then(crate::winrs::text_of)
        .unwrap_or_default();
    let user = ctx.user().to_string();
    let p = if ctx.positional(1).and_then(PsValue::as_bool) == Some(true) {
        // Only %VAR%: `$` is kept by escaping it from `expand`.
        let env = crate::winrs::session_env(&user);
        let protected = raw.replace('$', "\u{0}");
        expand(&protected, &env).replace('\u{0}', "$")
    } else {
        raw
    };
    if let Some((name, _)) = refused_name(&p) {
        return Err(thrown(format!(
            "The filename, directory name, or volume label syntax is incorrect. : '{name}'"
        )));
    }
    let home = format!("C:\\Users\\{user}");
    let _ = state.files.create_dir_all(&format!("{home}\\Documents"));
    let _ = state
        .files
        .create_dir_all(&format!("{home}\\AppData\\Local\\Temp"));
    normalize(&p, &format!("{home}\\Documents"))
        .map_err(|unc| thrown(format!("The network path was not found: {unc}")))
}

async fn pypsrp_copy(mut ctx: CmdletContext) -> Result<(), ErrorRecord> {
    use sha1::Sha1;
    let state = Arc::clone(ctx.sim_state());
    let files = &state.files;
    let temp_dir = format!("C:\\Users\\{}\\AppData\\Local\\Temp", ctx.user());
    let _ = files.create_dir_all(&temp_dir);
    let tmp = join(
        &temp_dir,
        &format!(
            "tmp{:X}.tmp",
            files.next_blob.fetch_add(1, Ordering::SeqCst) & 0xffff
        ),
    );
    files.remove(&tmp);
    let mut w = files.create_new(&tmp).map_err(fail)?;
    let mut sha = Sha1::new();
    let corrupt = files.take_corruption();
    let mut previous: Option<Vec<u8>> = None;
    let mut written = 0u64;
    let result = async {
        use base64::Engine as _;
        while let Some(v) = ctx.next_input().await {
            let text = crate::winrs::text_of(&v).unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|e| thrown(format!("Exception calling \"FromBase64String\": {e}")))?;
            if let Some(mut b) = previous.replace(bytes) {
                if corrupt && written == 0 && !b.is_empty() {
                    b[0] ^= 0xff;
                }
                sha.update(&b);
                files.append(&mut w, &b).map_err(fail)?;
                written += b.len() as u64;
            }
        }
        drop(w.disk.take());
        let expected = String::from_utf8_lossy(&previous.unwrap_or_default()).into_owned();
        let dest = pypsrp_path(&ctx, &state)?;
        let actual = hex(&sha.finalize());
        if actual != expected {
            return Err(thrown(format!(
                "Transport failure, hash mismatch\r\nActual: {actual}\r\nExpected: {expected}"
            )));
        }
        if files.is_dir(&dest) {
            return Err(thrown(format!(
                "Exception calling \"Delete\" with \"1\" argument(s): \"Access to the path '{dest}' is denied.\""
            )));
        }
        files.rename(&tmp, &dest).map_err(|(_, m)| {
            thrown(format!("Exception calling \"Delete\" with \"1\" argument(s): \"{m}\""))
        })?;
        ctx.write_output(files.display(&dest)).await;
        Ok(())
    }
    .await;
    // `finally { [System.IO.File]::Delete($path) }`.
    files.remove(&tmp);
    result
}

async fn pypsrp_fetch(ctx: CmdletContext) -> Result<(), ErrorRecord> {
    use sha1::Sha1;
    let state = Arc::clone(ctx.sim_state());
    let files = &state.files;
    let src = pypsrp_path(&ctx, &state)?;
    if files.is_dir(&src) {
        return Err(thrown(format!(
            "The path at '{src}' is a directory, src must be a file"
        )));
    }
    if !files.is_file(&src) {
        return Err(thrown(format!("The path at '{src}' does not exist")));
    }
    let (mut r, len) = files.open_read(&src).map_err(fail)?;
    // The script reads the whole file in one piece and writes one base64 string.
    let mut bytes = files
        .read_chunk(&mut r, usize::try_from(len).unwrap_or(usize::MAX))
        .map_err(fail)?;
    if bytes.is_empty() {
        // The read loop never ran: `$bytes` is `$null` when the script hashes it.
        return Err(thrown(
            "Exception calling \"TransformFinalBlock\" with \"3\" argument(s): \"Value cannot be null.\r\nParameter name: inputBuffer\"".into(),
        ));
    }
    let digest = hex(&Sha1::digest(&bytes));
    if files.take_corruption()
        && let Some(b) = bytes.first_mut()
    {
        *b ^= 0xff;
    }
    {
        use base64::Engine as _;
        ctx.write_output(base64::engine::general_purpose::STANDARD.encode(&bytes))
            .await;
    }
    ctx.write_output(digest).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_paths() {
        let cwd = "C:\\Users\\u\\Documents";
        assert_eq!(normalize("c:/a//b/./c/../d\\", cwd).unwrap(), "C:\\a\\b\\d");
        assert_eq!(
            normalize("x.txt", cwd).unwrap(),
            "C:\\Users\\u\\Documents\\x.txt"
        );
        assert_eq!(normalize("\\t\\x", cwd).unwrap(), "C:\\t\\x");
        assert_eq!(normalize("C:\\..\\..", cwd).unwrap(), "C:\\");
        assert!(normalize("\\\\server\\share\\x", cwd).is_err());
        assert!(normalize("//?/C:/x", cwd).is_err());
        // A drive without a separator is the drive's current directory (PowerShell's
        // resolution): the session's on its own drive, the root on another.
        assert_eq!(normalize("C:", cwd).unwrap(), cwd);
        assert_eq!(normalize("c:x.txt", cwd).unwrap(), format!("{cwd}\\x.txt"));
        assert_eq!(normalize("D:x.txt", cwd).unwrap(), "D:\\x.txt");
        assert_eq!(parent("C:\\a"), Some("C:\\"));
        assert_eq!(parent("C:\\a\\b"), Some("C:\\a"));
        assert_eq!(parent("C:\\"), None);
        assert_eq!(leaf("C:\\a\\b.txt"), "b.txt");
    }

    #[test]
    fn expansion() {
        let env = vec![("TEMP".to_string(), "C:\\T".to_string())];
        assert_eq!(expand("%temp%\\x", &env), "C:\\T\\x");
        assert_eq!(expand("$env:TEMP\\x", &env), "C:\\T\\x");
        assert_eq!(expand("${env:Temp}\\x", &env), "C:\\T\\x");
        assert_eq!(expand("%NOPE%\\100%", &env), "%NOPE%\\100%");
        assert_eq!(expand("$env:NOPE\\$x", &env), "$env:NOPE\\$x");
    }

    #[test]
    fn names_windows_refuses() {
        for bad in [
            r"C:\x\a*b?.txt",
            r#"C:\x\q"uote.txt"#,
            r"C:\x\con",
            r"C:\x\Nul.tar.gz",
            r"C:\x\com¹",
            r"C:\x\colon:name",
            r"C:\x\trail.",
            r"C:\x\trail ",
            "C:\\x\\tab\there",
            r"\\server\share\a|b",
            "colon:name",
        ] {
            assert!(refused_name(bad).is_some(), "{bad}");
        }
        for good in [
            r"C:\x\a b.txt",
            r"c:x.txt",
            r"C:\x\..\.\y",
            r"\\server\share\x",
            r"\\?\C:\trail.",
            r"Temp:\x",
            r"C:\x\console",
            r"C:\x\com10",
            r"C:\x\%USERNAME%.txt",
        ] {
            assert_eq!(refused_name(good), None, "{good}");
        }
    }

    #[test]
    fn names_compare_as_ntfs_does() {
        assert_eq!(key("C:\\Data\\readme"), key("c:\\DATA\\README"));
        assert_eq!(key("ᾀ"), key("ᾈ"));
        assert_ne!(key("straße"), key("STRASSE"));
        assert_ne!(key("\u{212A}"), key("k"));
        assert_ne!(key("\u{10428}"), key("\u{10400}"));
        assert_eq!(key("İ").chars().count(), 1);
    }

    #[test]
    fn case_insensitive_names_and_rename() {
        let f = Files::new();
        f.create_dir_all("C:\\Data").unwrap();
        f.write_all("C:\\Data\\A.txt", &mut &b"x"[..]).unwrap();
        assert!(f.is_file("C:\\data\\a.TXT"));
        f.rename("C:\\Data\\a.txt", "C:\\Data\\B.txt").unwrap();
        assert!(!f.is_file("C:\\Data\\A.txt"));
        assert_eq!(f.display("C:\\data\\b.txt"), "C:\\Data\\B.txt");
        assert_eq!(f.list("C:\\Data"), vec![("B.txt".to_string(), false, 1)]);
    }
}
