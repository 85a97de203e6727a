//! Reads the PSRP recordings in `fixtures/psrp/` (pypsrp's YAML: a list of
//! request/response SOAP envelopes) and pulls out the PSRP payloads: the base64 of
//! `creationXml`, `connectXml`, `connectResponseXml`, `rsp:Arguments` and `rsp:Stream`,
//! in the order they were sent.

#![allow(dead_code)]

use base64::Engine as _;
use bytes::Bytes;
use wsman_protocol::psrp::{Defragmenter, Message};
use wsman_protocol::xml::{self, Element};

/// Who sent a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// The client (pypsrp), in a request.
    Client,
    /// The server (Windows), in a response.
    Server,
}

/// One base64 payload of one envelope.
#[derive(Debug, Clone)]
pub struct Payload {
    /// Who sent it.
    pub dir: Dir,
    /// The exchange's index in the recording.
    pub exchange: usize,
    /// The element's local name (`creationXml`, `Arguments`, `Stream`).
    pub element: String,
    /// The decoded bytes: one or more whole fragments.
    pub bytes: Bytes,
}

#[derive(serde::Deserialize)]
struct Recording {
    messages: Vec<Exchange>,
}

#[derive(serde::Deserialize)]
struct Exchange {
    request: String,
    response: String,
}

/// The path of a fixture.
pub fn path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/psrp")
        .join(name)
}

/// Every fixture in `fixtures/psrp/`, and the PSRP recordings (`test_psrp_*`) that
/// `fixtures/recorded/pypsrp/` holds for the WS-Management tests, as names `path`
/// resolves.
pub fn all() -> Vec<String> {
    let list = |dir: &str, prefix: &str| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(path(dir))
            .expect("fixture directory exists")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|n| n.ends_with(".yml") && n.starts_with(prefix))
            .map(|n| format!("{dir}{n}"))
            .collect();
        names.sort();
        names
    };
    let mut names = list("", "");
    names.extend(list("../recorded/pypsrp/", "test_psrp_"));
    names
}

fn collect(e: &Element, out: &mut Vec<(String, String)>) {
    if matches!(
        e.name.as_str(),
        "creationXml" | "Arguments" | "Stream" | "connectXml" | "connectResponseXml"
    ) && !e.text.trim().is_empty()
    {
        out.push((e.name.clone(), e.text.trim().to_string()));
    }
    for c in &e.children {
        collect(c, out);
    }
}

/// The PSRP payloads of a recording, in order.
pub fn payloads(name: &str) -> Vec<Payload> {
    let text = std::fs::read_to_string(path(name)).expect("fixture readable");
    let rec: Recording = serde_yaml::from_str(&text).expect("fixture is pypsrp YAML");
    let mut out = Vec::new();
    for (i, ex) in rec.messages.iter().enumerate() {
        for (dir, body) in [(Dir::Client, &ex.request), (Dir::Server, &ex.response)] {
            let Ok(env) = xml::parse(body.as_bytes()) else {
                continue;
            };
            let mut found = Vec::new();
            collect(&env, &mut found);
            for (element, b64) in found {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .expect("payload is base64");
                out.push(Payload {
                    dir,
                    exchange: i,
                    element,
                    bytes: Bytes::from(bytes),
                });
            }
        }
    }
    out
}

/// The messages each side sent, defragmented.
pub fn messages(name: &str) -> (Vec<Message>, Vec<Message>) {
    let mut client = Defragmenter::new();
    let mut server = Defragmenter::new();
    let (mut requests, mut responses) = (Vec::new(), Vec::new());
    for p in payloads(name) {
        match p.dir {
            Dir::Client => requests.extend(client.push_messages(&p.bytes).expect(name)),
            Dir::Server => responses.extend(server.push_messages(&p.bytes).expect(name)),
        }
    }
    assert_eq!(
        client.in_progress(),
        0,
        "{name}: client object left incomplete"
    );
    assert_eq!(
        server.in_progress(),
        0,
        "{name}: server object left incomplete"
    );
    (requests, responses)
}
