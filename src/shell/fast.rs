//! The WinRS responses read straight from XML events ([`crate::soap::xml::Scanner`]):
//! the ShellId of a CreateResponse, the CommandId of a CommandResponse, the streams and
//! CommandState of a ReceiveResponse, and the empty answers to Signal and Delete,
//! without building an element tree. Only the usual form is read here: a fault, an
//! HTTP status other than 200, a document the tree reader would refuse, and anything
//! this reader is not sure of (a second `s:Body`, a stream split by markup, an EPR
//! instead of `rsp:Shell`, ...) make it answer `None`, and the caller reads the
//! response with the tree reader, whose answers and errors are the reference
//! (`tests` below pin the two against each other).

use std::borrow::Cow;

use bytes::Bytes;

use super::command::ExitStatus;
use super::messages::{self, Received, StreamName, slice_of, stream_of_attrs};
use crate::client::{Client, body as body_of, read_envelope_with};
use crate::error::Result;
use crate::soap::ns;
use crate::soap::xml::{NoSink, ParseError, Scanner, Step, decode_text};
use crate::transport::{HttpResponse, RequestKind};

/// Sends one WinRS request and reads what `want` names from its response: with the
/// event reader when it can, else with the tree reader (faults, HTTP errors and
/// unexpected responses come from there, as typed as ever).
pub(crate) async fn exchange(
    c: &Client,
    kind: RequestKind,
    envelope: String,
    want: Want<'_>,
) -> Result<Reply> {
    exchange_within(c, kind, envelope, c.inner.operation_timeout, want).await
}

/// [`exchange`] with the request's own OperationTimeout.
async fn exchange_within(
    c: &Client,
    kind: RequestKind,
    envelope: String,
    operation_timeout: std::time::Duration,
    want: Want<'_>,
) -> Result<Reply> {
    let resp = c
        .exchange_response(kind, envelope, operation_timeout)
        .await?;
    if let Some(reply) = read(resp.status, &resp.body, want) {
        return Ok(reply);
    }
    tree_reply(resp, want)
}

/// [`exchange`] for a CreateResponse's ShellId.
pub(crate) async fn exchange_shell_id(c: &Client, envelope: String) -> Result<String> {
    match exchange(c, RequestKind::Write, envelope, Want::ShellId).await? {
        Reply::ShellId(id) => Ok(id),
        _ => Err(ParseError::Missing("the ShellId of the CreateResponse").into()),
    }
}

/// [`exchange`] for a CommandResponse's CommandId.
pub(crate) async fn exchange_command_id(c: &Client, envelope: String) -> Result<String> {
    match exchange(c, RequestKind::Write, envelope, Want::CommandId).await? {
        Reply::CommandId(id) => Ok(id),
        _ => Err(ParseError::Missing("rsp:CommandResponse/rsp:CommandId").into()),
    }
}

/// [`exchange`] for a ReceiveResponse of command `id` (a long poll).
pub(crate) async fn exchange_receive(c: &Client, envelope: String, id: &str) -> Result<Received> {
    exchange_receive_within(c, envelope, c.inner.operation_timeout, id).await
}

/// [`exchange_receive`] with its own OperationTimeout (a PSRP pool's Receive).
pub(crate) async fn exchange_receive_within(
    c: &Client,
    envelope: String,
    operation_timeout: std::time::Duration,
    id: &str,
) -> Result<Received> {
    let want = Want::Receive(id);
    match exchange_within(c, RequestKind::LongPoll, envelope, operation_timeout, want).await? {
        Reply::Received(r) => Ok(r),
        _ => Err(ParseError::Missing("rsp:ReceiveResponse").into()),
    }
}

/// [`exchange`] for a request answered by an empty body (Signal, Delete, Send).
pub(crate) async fn exchange_ack(c: &Client, envelope: String) -> Result<()> {
    exchange(c, RequestKind::Write, envelope, Want::Ack)
        .await
        .map(|_| ())
}

/// The tree reader's reading of a response: the reference for [`read`].
pub(crate) fn tree_reply(resp: HttpResponse, want: Want<'_>) -> Result<Reply> {
    if let Want::Receive(id) = want {
        let mut sink = messages::StreamSink::new(id);
        let root = read_envelope_with(resp, &mut sink)?;
        return Ok(Reply::Received(messages::read_receive(
            body_of(&root),
            sink,
        )?));
    }
    let root = read_envelope_with(resp, &mut NoSink)?;
    let b = body_of(&root);
    Ok(match want {
        Want::ShellId => Reply::ShellId(messages::read_shell_id(b)?),
        Want::CommandId => Reply::CommandId(messages::read_command_id(b)?),
        Want::Receive(_) | Want::Ack => Reply::Ack,
    })
}

/// What the caller needs from a response.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Want<'a> {
    /// `rsp:Shell/rsp:ShellId` of a CreateResponse.
    ShellId,
    /// `rsp:CommandResponse/rsp:CommandId`.
    CommandId,
    /// A ReceiveResponse, for the command with this id.
    Receive(&'a str),
    /// Nothing but a SOAP envelope with a body and no fault (Signal, Delete, Send).
    Ack,
}

/// What the reader found.
#[derive(Debug, PartialEq)]
pub(crate) enum Reply {
    ShellId(String),
    CommandId(String),
    Received(Received),
    Ack,
}

/// The role of an open element, for the elements this reader looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Envelope,
    Body,
    /// The first `rsp:Shell`, `rsp:CommandResponse` or `rsp:ReceiveResponse` of the body.
    Answer,
    /// A field whose direct text is read (ShellId, CommandId, ExitCode).
    Field,
    /// A stream of the command, by name.
    Stream(StreamName),
    /// A `rsp:CommandState` that says Done.
    Done,
    /// A `rsp:CommandState` that does not.
    State,
    Other,
}

/// How deep the roles above go: Envelope, Body, answer, field (or stream, state),
/// ExitCode.
const ROLES: usize = 5;

/// Reads `body` for `want`; `None` when the tree reader must read it (see the module
/// documentation).
pub(crate) fn read(status: u16, body: &Bytes, want: Want<'_>) -> Option<Reply> {
    if status != 200 {
        return None;
    }
    let text = decode_text(body).ok()?;
    let text: &str = match &text {
        Cow::Borrowed(t) => t,
        Cow::Owned(_) => return None,
    };
    let mut s = Scanner::new(text);
    let mut roles = [Role::Other; ROLES];
    let mut bodies = 0;
    let mut answers = 0;
    let mut r = Fields::default();
    let mut exit_codes = 0;
    loop {
        match s.next_step().ok()? {
            Step::Start { local, empty } => {
                let depth = s.depth();
                let parent = if depth >= 2 {
                    roles.get(depth - 2).copied().unwrap_or(Role::Other)
                } else {
                    Role::Other
                };
                let role = match (depth, parent) {
                    (1, _) if local == "Envelope" && s.ns() == Some(ns::SOAP) => Role::Envelope,
                    (1, _) => return None,
                    (2, Role::Envelope) if local == "Body" && s.ns() == Some(ns::SOAP) => {
                        bodies += 1;
                        if bodies > 1 {
                            return None;
                        }
                        Role::Body
                    }
                    (3, Role::Body) if local == "Fault" && s.ns() == Some(ns::SOAP) => {
                        return None;
                    }
                    (3, Role::Body)
                        if answer_name(want) == Some(local) && s.ns() == Some(ns::SHELL) =>
                    {
                        answers += 1;
                        match (answers, want) {
                            (1, _) => Role::Answer,
                            // Streams of a second ReceiveResponse: the tree reader's
                            // business.
                            (_, Want::Receive(_)) => return None,
                            _ => Role::Other,
                        }
                    }
                    (4, Role::Answer) if s.ns() == Some(ns::SHELL) => match (want, local) {
                        (Want::ShellId, "ShellId") | (Want::CommandId, "CommandId")
                            if r.found.is_none() && r.field.is_none() =>
                        {
                            Role::Field
                        }
                        (Want::Receive(id), "Stream") => {
                            match stream_of_attrs(s.attr("CommandId"), s.attr("Name"), id) {
                                Some(name) => Role::Stream(name),
                                None => Role::Other,
                            }
                        }
                        (Want::Receive(_), "CommandState") => {
                            if s.attr("State").unwrap_or("").ends_with("/Done") {
                                r.exit_code = None;
                                exit_codes = 0;
                                Role::Done
                            } else {
                                Role::State
                            }
                        }
                        _ => Role::Other,
                    },
                    (5, Role::Done) if local == "ExitCode" && s.ns() == Some(ns::SHELL) => {
                        exit_codes += 1;
                        if exit_codes == 1 {
                            Role::Field
                        } else {
                            Role::Other
                        }
                    }
                    // Markup inside a stream or a field: the tree reader's business.
                    (_, Role::Stream(_) | Role::Field) => return None,
                    _ => Role::Other,
                };
                if !empty && matches!(role, Role::Other | Role::State) {
                    // Nothing inside is read (its elements are all `Other`): passed
                    // over, still checked.
                    s.skip().ok()?;
                    continue;
                }
                if !empty
                    && matches!(role, Role::Field | Role::Stream(_))
                    && let Some(text) = s.leaf()
                {
                    // A plain leaf: its text and end at once, as its steps would give.
                    if !text.is_empty() {
                        if r.field.is_some() {
                            return None;
                        }
                        r.field = Some(Cow::Borrowed(text));
                    }
                    r.end(role, depth, body)?;
                    if role == Role::Field && depth == 4 {
                        // The ShellId or CommandId: nothing else of the answer is read.
                        s.skip_rest().ok()?;
                    }
                    continue;
                }
                if let Some(slot) = roles.get_mut(depth - 1) {
                    *slot = role;
                }
                if empty {
                    r.end(role, depth, body)?;
                }
            }
            Step::Text(t) => {
                let depth = s.depth();
                let role = depth
                    .checked_sub(1)
                    .and_then(|d| roles.get(d))
                    .copied()
                    .unwrap_or(Role::Other);
                if matches!(role, Role::Field | Role::Stream(_)) {
                    match &mut r.field {
                        None => r.field = Some(t),
                        // Text in pieces (a comment or reference between): rare, left
                        // to the tree reader.
                        Some(_) => return None,
                    }
                }
            }
            Step::End => {
                // The element that ended was at depth + 1.
                let depth = s.depth() + 1;
                let role = roles.get(depth - 1).copied().unwrap_or(Role::Other);
                r.end(role, depth, body)?;
                if role == Role::Field && depth == 4 {
                    s.skip_rest().ok()?;
                }
            }
            Step::Eof => break,
        }
    }
    if bodies == 0 {
        return None;
    }
    match want {
        Want::ShellId => r.found.map(Reply::ShellId),
        Want::CommandId => r.found.map(Reply::CommandId),
        Want::Receive(_) if answers == 0 => None,
        Want::Receive(_) => Some(Reply::Received(Received {
            chunks: r.chunks,
            done: r.done,
        })),
        Want::Ack => Some(Reply::Ack),
    }
}

/// The answer element `want` reads.
fn answer_name(want: Want<'_>) -> Option<&'static str> {
    match want {
        Want::ShellId => Some("Shell"),
        Want::CommandId => Some("CommandResponse"),
        Want::Receive(_) => Some("ReceiveResponse"),
        Want::Ack => None,
    }
}

/// What a response's reading has found so far.
#[derive(Default)]
struct Fields<'t> {
    /// The text of the field or stream being read.
    field: Option<Cow<'t, str>>,
    /// ShellId or CommandId.
    found: Option<String>,
    chunks: Vec<(StreamName, Bytes)>,
    done: Option<ExitStatus>,
    /// ExitCode of a Done state, until the state ends.
    exit_code: Option<Cow<'t, str>>,
}

impl<'t> Fields<'t> {
    /// An element of `role` at `depth` ended: takes what it held.
    fn end(&mut self, role: Role, depth: usize, document: &Bytes) -> Option<()> {
        match role {
            Role::Field if depth == 5 => {
                // ExitCode of a Done state.
                self.exit_code = Some(self.field.take().unwrap_or(Cow::Borrowed("")));
            }
            Role::Field => {
                self.found = Some(self.field.take().unwrap_or_default().trim().to_string());
            }
            Role::Stream(name) => {
                let text = self.field.take().unwrap_or_default();
                let text = text.trim();
                if !text.is_empty() {
                    self.chunks
                        .push((name, slice_of(document, text.as_bytes())));
                }
            }
            Role::Done => {
                // An absent (or empty) ExitCode is not 0: the outcome is unknown.
                self.done = Some(match self.exit_code.take().as_deref().map(str::trim) {
                    None | Some("") => ExitStatus::ExitedWithoutCode,
                    // A code that is no number: the tree reader's error.
                    Some(code) => ExitStatus::Exited(code.parse().ok()?),
                });
            }
            _ => {}
        }
        Some(())
    }
}

#[cfg(test)]
#[path = "../../tests/support/recorded.rs"]
mod recorded;

#[cfg(test)]
mod tests {
    use super::*;

    /// What the tree reader makes of a response (its error as text).
    pub(crate) fn tree(status: u16, body: &Bytes, want: Want<'_>) -> Result<Reply, String> {
        let resp = HttpResponse {
            status,
            body: body.clone(),
        };
        tree_reply(resp, want).map_err(|e| e.to_string())
    }

    /// The event reader agrees with the tree reader: the same reply, or it leaves the
    /// response to the tree reader.
    pub(crate) fn agree(status: u16, body: &Bytes, want: Want<'_>) -> bool {
        match read(status, body, want) {
            None => true,
            Some(fast) => {
                let t = tree(status, body, want);
                assert_eq!(
                    t.as_ref(),
                    Ok(&fast),
                    "the event reader read {:?} as {fast:?}",
                    String::from_utf8_lossy(body)
                );
                true
            }
        }
    }

    const ENV: &str = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header><a:Action>x</a:Action></s:Header><s:Body>"#;

    fn doc(body: &str) -> Bytes {
        Bytes::from(format!("{ENV}{body}</s:Body></s:Envelope>"))
    }

    #[test]
    fn reads_the_usual_responses() {
        let create =
            doc("<rsp:Shell><rsp:ShellId> S-1 </rsp:ShellId><rsp:State>x</rsp:State></rsp:Shell>");
        assert_eq!(
            read(200, &create, Want::ShellId),
            Some(Reply::ShellId("S-1".into()))
        );
        let command =
            doc("<rsp:CommandResponse><rsp:CommandId>C-1</rsp:CommandId></rsp:CommandResponse>");
        assert_eq!(
            read(200, &command, Want::CommandId),
            Some(Reply::CommandId("C-1".into()))
        );
        let receive = doc(
            r#"<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C-1">aGk=</rsp:Stream><rsp:Stream Name="stderr" CommandId="c-1"> ZXJy </rsp:Stream><rsp:Stream Name="stdout" CommandId="C-2">eA==</rsp:Stream><rsp:Stream Name="stdout" CommandId="C-1" End="true"/><rsp:CommandState CommandId="C-1" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"><rsp:ExitCode>7</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>"#,
        );
        let Some(Reply::Received(r)) = read(200, &receive, Want::Receive("C-1")) else {
            panic!("not read")
        };
        assert_eq!(
            r.chunks,
            [
                (StreamName::Stdout, Bytes::from_static(b"aGk=")),
                (StreamName::Stderr, Bytes::from_static(b"ZXJy"))
            ]
        );
        // Slices of the response, not copies.
        assert!(receive.as_ptr_range().contains(&r.chunks[0].1.as_ptr()));
        assert_eq!(r.done, Some(ExitStatus::Exited(7)));
        assert_eq!(read(200, &doc(""), Want::Ack), Some(Reply::Ack));
        for (b, w) in [
            (&create, Want::ShellId),
            (&command, Want::CommandId),
            (&receive, Want::Receive("C-1")),
        ] {
            assert!(agree(200, b, w));
        }
    }

    #[test]
    fn leaves_faults_and_the_unusual_to_the_tree_reader() {
        let fault = doc(
            r#"<s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason><s:Text xml:lang="en-US">no</s:Text></s:Reason></s:Fault>"#,
        );
        for want in [Want::Ack, Want::ShellId, Want::Receive("C")] {
            assert_eq!(read(200, &fault, want), None);
            assert_eq!(read(500, &fault, want), None);
        }
        assert_eq!(read(500, &doc(""), Want::Ack), None);
        // (body, want, whether the tree reader reads it)
        for (body, want, tree_reads) in [
            // The EPR form of a CreateResponse.
            (
                "<x:ResourceCreated xmlns:x=\"http://schemas.xmlsoap.org/ws/2004/09/transfer\" xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\"><a:Address>h</a:Address><a:ReferenceParameters><w:ResourceURI>u</w:ResourceURI><w:SelectorSet><w:Selector Name=\"ShellId\">S-2</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>",
                Want::ShellId,
                true,
            ),
            ("<rsp:CommandResponse/>", Want::CommandId, false),
            (
                "<rsp:CommandResponse><rsp:CommandId>a<!-- -->b</rsp:CommandId></rsp:CommandResponse>",
                Want::CommandId,
                true,
            ),
            (
                "<rsp:ReceiveResponse><rsp:Stream Name=\"stdout\">a<b/></rsp:Stream></rsp:ReceiveResponse>",
                Want::Receive("C"),
                true,
            ),
            (
                "<rsp:ReceiveResponse/><rsp:ReceiveResponse/>",
                Want::Receive("C"),
                true,
            ),
            (
                "<rsp:ReceiveResponse><rsp:CommandState State=\"x/Done\"><rsp:ExitCode>zero</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>",
                Want::Receive("C"),
                false,
            ),
            ("", Want::Receive("C"), false),
        ] {
            let b = doc(body);
            assert_eq!(read(200, &b, want), None, "{body}");
            assert_eq!(tree(200, &b, want).is_ok(), tree_reads, "{body}");
        }
        let two_bodies = Bytes::from(format!("{ENV}</s:Body><s:Body></s:Body></s:Envelope>"));
        assert_eq!(read(200, &two_bodies, Want::Ack), None);
        assert_eq!(read(200, &Bytes::from_static(b"<html/>"), Want::Ack), None);
        assert_eq!(read(200, &Bytes::from_static(b"not xml"), Want::Ack), None);
    }

    /// The ids a Receive could be for: every `CommandId="..."` of the document, and one
    /// that is none of them.
    fn command_ids(body: &str) -> Vec<String> {
        let mut ids = vec!["no-such-command".to_string()];
        for part in body.split("CommandId=\"").skip(1) {
            if let Some(end) = part.find('"') {
                ids.push(part[..end].to_string());
            }
        }
        ids.dedup();
        ids
    }

    /// Every want for `body`: agreement with the tree reader, and which wants the
    /// event reader read itself.
    fn agree_all(status: u16, body: &Bytes) -> Vec<&'static str> {
        let text = String::from_utf8_lossy(body).into_owned();
        // The scanner accepts exactly the documents the tree reader accepts.
        if let Ok(doc) = decode_text(body) {
            let mut s = Scanner::new(&doc);
            let scanned = loop {
                match s.next_step() {
                    Ok(Step::Eof) => break Ok(()),
                    Ok(_) => {}
                    Err(e) => break Err(e),
                }
            };
            let tree = crate::soap::xml::parse(body);
            assert_eq!(
                scanned.is_ok(),
                tree.is_ok(),
                "scanner {scanned:?}, tree {:?}, for {text:?}",
                tree.as_ref().err()
            );
        }
        let mut read_by_events = Vec::new();
        for (name, want) in [
            ("ShellId", Want::ShellId),
            ("CommandId", Want::CommandId),
            ("Ack", Want::Ack),
        ] {
            assert!(agree(status, body, want));
            if read(status, body, want).is_some() {
                read_by_events.push(name);
            }
        }
        for id in command_ids(&text) {
            assert!(agree(status, body, Want::Receive(&id)));
            if read(status, body, Want::Receive(&id)).is_some() {
                read_by_events.push("Receive");
            }
        }
        read_by_events
    }

    #[test]
    fn the_event_reader_reads_the_recorded_winrs_responses_as_the_tree_reader_does() {
        let mut read_by_events = std::collections::BTreeMap::<&str, usize>::new();
        let mut faults_left = 0;
        for rec in recorded::all() {
            for ex in &rec.exchanges {
                let body = Bytes::from(ex.response.clone());
                let got = agree_all(ex.status, &body);
                for w in &got {
                    *read_by_events.entry(w).or_default() += 1;
                }
                if ex.response.contains(":Fault>") {
                    assert!(
                        got.is_empty(),
                        "a fault of {} was read by the event reader",
                        rec.key()
                    );
                    faults_left += 1;
                }
            }
        }
        // Not vacuous: the recordings hold every kind of WinRS answer, and faults.
        for kind in ["ShellId", "CommandId", "Receive", "Ack"] {
            assert!(
                read_by_events.get(kind).copied().unwrap_or(0) >= 3,
                "{kind}: {read_by_events:?}"
            );
        }
        assert!(faults_left >= 5, "{faults_left}");
    }

    /// PowerShell Remoting reads its pipelines' and its pool's Receives (the pool's
    /// without a CommandId) with this reader too: every PSRP recording, pool Receives
    /// included, reads the same as with the tree reader.
    #[test]
    fn the_event_reader_reads_the_psrp_recordings_as_the_tree_reader_does() {
        let dir = recorded::fixtures_dir().join("psrp");
        let mut stems: Vec<String> = std::fs::read_dir(&dir)
            .expect("fixtures/psrp")
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".yml").map(str::to_string)
            })
            .collect();
        stems.sort();
        let (mut pipelines, mut pools) = (0, 0);
        for stem in &stems {
            for ex in recorded::load_psrp(stem).exchanges {
                let body = Bytes::from(ex.response.clone());
                for w in agree_all(ex.status, &body) {
                    pipelines += usize::from(w == "Receive");
                }
                assert!(agree(ex.status, &body, Want::Receive("")), "{stem}");
                if ex.request.contains("shell/Receive<")
                    && !ex.request.contains("CommandId=")
                    && read(ex.status, &body, Want::Receive("")).is_some_and(
                        |r| matches!(r, Reply::Received(ref r) if !r.chunks.is_empty()),
                    )
                {
                    pools += 1;
                }
            }
        }
        // Not vacuous: pipelines' and pools' Receives with data were read by events.
        assert!(
            pipelines >= 20,
            "{pipelines} pipeline Receives in {stems:?}"
        );
        assert!(pools >= 10, "{pools} pool Receives");
    }

    /// Mutations of real responses: the event reader gives what the tree reader gives,
    /// or leaves the response to it (whose answer is then the typed error); never a
    /// panic.
    fn mutate(body: &[u8], edits: &[(usize, u8, u8)]) -> Bytes {
        let mut b = body.to_vec();
        for &(at, kind, byte) in edits {
            if b.is_empty() {
                break;
            }
            let at = at % b.len();
            const MARKUP: &[u8] = b"<>/&\"'=: ;x#!?-[]";
            let markup = MARKUP[usize::from(byte) % MARKUP.len()];
            match kind % 5 {
                0 => {
                    b.remove(at);
                }
                1 => b.insert(at, markup),
                2 => b[at] = markup,
                3 => b.truncate(at),
                _ => b[at] = byte,
            }
        }
        Bytes::from(b)
    }

    fn samples() -> &'static [(u16, Bytes)] {
        static SAMPLES: std::sync::OnceLock<Vec<(u16, Bytes)>> = std::sync::OnceLock::new();
        SAMPLES.get_or_init(|| {
            let mut out = Vec::new();
            for key in [
                "pypsrp/test_winrs_standard",
                "pypsrp/test_winrs_stderr_rc",
                "WinRMSharp/ProtocolOpenCloseShell",
                "WinRMSharp/ProtocolRunCommandWithCommandInput",
            ] {
                for ex in recorded::load(key).exchanges {
                    out.push((ex.status, Bytes::from(ex.response)));
                }
            }
            out
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        #[test]
        fn mutated_responses_are_read_as_the_tree_reader_reads_them_or_left_to_it(
            pick in 0usize..1000,
            edits in proptest::collection::vec((0usize..100_000, 0u8..5, proptest::num::u8::ANY), 1..4),
        ) {
            let samples = samples();
            let (status, body) = &samples[pick % samples.len()];
            let mutated = mutate(body, &edits);
            agree_all(*status, &mutated);
        }
    }
}
