//! Loader for the third-party WinRM recordings under `fixtures/recorded/`
//! (provenance and licences: `fixtures/SOURCES.md`).
//!
//! Include from an integration test with
//! `#[path = "support/recorded.rs"] mod recorded;`.
//!
//! Three on-disk formats are normalised into [`Recording`] / [`Exchange`]:
//!
//! * `pypsrp/*.yml`: `messages: [{request, response, transport_error?, overrides?}]`.
//!   There is no HTTP status; pypsrp's harness marks failing exchanges with
//!   `transport_error: {protocol: http, code: 500}`. `status` is that code
//!   when present, otherwise it is inferred from the body (500 if the response
//!   holds a SOAP 1.2 `Fault`, else 200). `overrides` are the harness's
//!   request patches (e.g. a CommandId attribute it rewrites before
//!   comparing).
//! * `WinRMSharp/*.yml`: a list of `{Request: {Method, Url, Headers, Body},
//!   Response: {StatusCode, Headers, Body}}`. Bodies are YAML folded blocks;
//!   the text is kept exactly as YAML yields it (request bodies start with
//!   `<?xml version="1.0" encoding="utf-16"?>` even though they are UTF-8 text).
//! * `WinRb-WinRM/*.xml`: one bare SOAP fault response body each; no request
//!   (`request` is empty) and `status` is 500.
//!
//! Every file is parsed strictly (`deny_unknown_fields`), so a new key in the
//! data makes loading panic rather than be silently dropped.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// SOAP 1.2 envelope namespace (the one WinRM uses).
pub const SOAP_ENV_NS: &str = "http://www.w3.org/2003/05/soap-envelope";

/// The origin projects, i.e. the sub-directories of `fixtures/recorded`.
pub const ORIGINS: [&str; 3] = ["pypsrp", "WinRMSharp", "WinRb-WinRM"];

/// How [`Exchange::status`] was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusSource {
    /// WinRMSharp `Response.StatusCode`.
    Recorded,
    /// pypsrp `transport_error.code`.
    TransportError,
    /// pypsrp exchange without `transport_error`: inferred from the body.
    Inferred,
    /// WinRb-WinRM response stubs: always fault bodies, fixed to 500.
    Assumed,
}

/// A pypsrp request override (`overrides:` list entry): the harness patches
/// the element at `path` in the *expected* request before comparing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub path: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Exchange {
    /// SOAP request XML; empty for WinRb-WinRM (responses only).
    pub request: String,
    /// SOAP response XML as stored.
    pub response: String,
    /// HTTP status: 200 or 500.
    pub status: u16,
    pub status_source: StatusSource,
    /// pypsrp request overrides; empty for other origins.
    pub overrides: Vec<Override>,
}

#[derive(Debug, Clone)]
pub struct Recording {
    /// File stem, e.g. `test_winrs_standard`.
    pub name: String,
    /// `"pypsrp" | "WinRMSharp" | "WinRb-WinRM"`.
    pub origin: &'static str,
    pub exchanges: Vec<Exchange>,
}

impl Recording {
    /// `origin/name`, the key accepted by [`load`].
    pub fn key(&self) -> String {
        format!("{}/{}", self.origin, self.name)
    }
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub fn recorded_dir() -> PathBuf {
    fixtures_dir().join("recorded")
}

/// Load one recording by `origin/stem`, e.g. `load("pypsrp/test_winrs_standard")`.
pub fn load(origin_and_stem: &str) -> Recording {
    let (origin, stem) = origin_and_stem
        .split_once('/')
        .unwrap_or_else(|| panic!("expected `origin/stem`, got {origin_and_stem:?}"));
    let origin = static_origin(origin);
    let dir = recorded_dir().join(origin);
    let ext = if origin == "WinRb-WinRM" {
        "xml"
    } else {
        "yml"
    };
    let path = dir.join(format!("{stem}.{ext}"));
    assert!(path.is_file(), "no recording at {}", path.display());
    load_path(origin, &path)
}

/// Load one PowerShell Remoting recording of `fixtures/psrp/` (pypsrp's) by stem, e.g.
/// `load_psrp("test_psrp_with_input")`.
pub fn load_psrp(stem: &str) -> Recording {
    let path = fixtures_dir().join("psrp").join(format!("{stem}.yml"));
    assert!(path.is_file(), "no recording at {}", path.display());
    load_path("pypsrp", &path)
}

/// Every recording under `fixtures/recorded`, sorted by origin then name.
/// Panics on a file or directory it does not know how to read.
pub fn all() -> Vec<Recording> {
    let root = recorded_dir();
    let mut out = Vec::new();
    for dir in read_dir_sorted(&root) {
        assert!(dir.is_dir(), "unexpected file {}", dir.display());
        let name = dir.file_name().unwrap().to_str().unwrap();
        let origin = static_origin(name);
        for path in read_dir_sorted(&dir) {
            out.push(load_path(origin, &path));
        }
    }
    out
}

/// True if `xml` contains an element `Fault` in the SOAP 1.2 envelope
/// namespace (namespace-resolved, so any prefix works).
pub fn response_is_fault(xml: &str) -> bool {
    use quick_xml::events::Event;
    use quick_xml::name::{Namespace, ResolveResult};
    let mut reader = quick_xml::NsReader::from_str(xml);
    loop {
        match reader.read_resolved_event() {
            Ok((ResolveResult::Bound(Namespace(ns)), Event::Start(e) | Event::Empty(e)))
                if ns == SOAP_ENV_NS.as_bytes() && e.local_name().as_ref() == b"Fault" =>
            {
                return true;
            }
            Ok((_, Event::Eof)) => return false,
            Ok(_) => {}
            Err(err) => panic!("response is not well-formed XML: {err}"),
        }
    }
}

fn static_origin(name: &str) -> &'static str {
    ORIGINS
        .iter()
        .copied()
        .find(|o| *o == name)
        .unwrap_or_else(|| panic!("unknown recording origin {name:?}; expected one of {ORIGINS:?}"))
}

fn read_dir_sorted(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn load_path(origin: &'static str, path: &Path) -> Recording {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let exchanges = match (origin, ext) {
        ("pypsrp", "yml") => parse_pypsrp(&text, path),
        ("WinRMSharp", "yml") => parse_winrmsharp(&text, path),
        ("WinRb-WinRM", "xml") => vec![Exchange {
            request: String::new(),
            response: text,
            status: 500,
            status_source: StatusSource::Assumed,
            overrides: Vec::new(),
        }],
        _ => panic!("unexpected file {} for origin {origin}", path.display()),
    };
    Recording {
        name,
        origin,
        exchanges,
    }
}

// ---- pypsrp ---------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PypsrpFile {
    messages: Vec<PypsrpMessage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PypsrpMessage {
    request: String,
    response: String,
    #[serde(default)]
    transport_error: Option<PypsrpTransportError>,
    #[serde(default)]
    overrides: Vec<Override>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PypsrpTransportError {
    protocol: String,
    code: u16,
}

fn parse_pypsrp(text: &str, path: &Path) -> Vec<Exchange> {
    let file: PypsrpFile =
        serde_yaml::from_str(text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    file.messages
        .into_iter()
        .map(|m| {
            let (status, status_source) = match m.transport_error {
                Some(te) => {
                    assert_eq!(te.protocol, "http", "{}", path.display());
                    (te.code, StatusSource::TransportError)
                }
                None => (
                    if response_is_fault(&m.response) {
                        500
                    } else {
                        200
                    },
                    StatusSource::Inferred,
                ),
            };
            Exchange {
                request: m.request,
                response: m.response,
                status,
                status_source,
                overrides: m.overrides,
            }
        })
        .collect()
}

// ---- WinRMSharp -----------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct SharpEntry {
    request: SharpRequest,
    response: SharpResponse,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct SharpRequest {
    method: String,
    #[allow(dead_code)]
    url: String,
    #[allow(dead_code)]
    headers: BTreeMap<String, String>,
    body: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct SharpResponse {
    status_code: u16,
    #[allow(dead_code)]
    headers: BTreeMap<String, String>,
    body: String,
}

fn parse_winrmsharp(text: &str, path: &Path) -> Vec<Exchange> {
    let entries: Vec<SharpEntry> =
        serde_yaml::from_str(text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
    entries
        .into_iter()
        .map(|e| {
            assert_eq!(e.request.method, "POST", "{}", path.display());
            Exchange {
                request: e.request.body,
                response: e.response.body,
                status: e.response.status_code,
                status_source: StatusSource::Recorded,
                overrides: Vec::new(),
            }
        })
        .collect()
}
