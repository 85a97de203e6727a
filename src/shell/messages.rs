//! WinRS message bodies and response readers ([MS-WSMV] §3.1.4.11-14). Pure.

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::command::ExitStatus;
use crate::soap::envelope::{XmlWriter, format_duration};
use crate::soap::ns;
use crate::soap::xml::{Element, ParseError, TextSink};

/// What a shell is created with.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ShellSpec {
    pub working_directory: Option<String>,
    pub environment: Vec<(String, String)>,
    pub idle_timeout: Option<Duration>,
    pub input_streams: String,
    pub output_streams: String,
}

pub(crate) fn write_create(w: &mut XmlWriter, spec: &ShellSpec) {
    w.raw("<rsp:Shell xmlns:rsp=\"");
    w.raw(ns::SHELL);
    w.raw("\">");
    if !spec.environment.is_empty() {
        w.raw("<rsp:Environment>");
        for (k, v) in &spec.environment {
            w.raw("<rsp:Variable Name=\"");
            w.attr_text(k);
            w.raw("\">");
            w.text(v);
            w.raw("</rsp:Variable>");
        }
        w.raw("</rsp:Environment>");
    }
    if let Some(dir) = &spec.working_directory {
        w.element("rsp:WorkingDirectory", dir);
    }
    if let Some(t) = spec.idle_timeout {
        w.element("rsp:IdleTimeOut", &format_duration(t));
    }
    w.element("rsp:InputStreams", &spec.input_streams);
    w.element("rsp:OutputStreams", &spec.output_streams);
    w.raw("</rsp:Shell>");
}

/// Reads the ShellId from a CreateResponse body (rsp:Shell/rsp:ShellId, or the EPR's
/// ShellId selector).
pub(crate) fn read_shell_id(body: &Element) -> Result<String, ParseError> {
    if let Some(id) = body
        .child(ns::SHELL, "Shell")
        .and_then(|s| s.child_text(ns::SHELL, "ShellId"))
    {
        return Ok(id.to_string());
    }
    body.child(ns::TRANSFER, "ResourceCreated")
        .and_then(crate::soap::cim::EndpointReference::from_element)
        .and_then(|epr| epr.selector("ShellId").map(str::to_string))
        .ok_or(ParseError::Missing("the ShellId of the CreateResponse"))
}

pub(crate) fn write_command(w: &mut XmlWriter, command: &str, args: &[String]) {
    w.raw("<rsp:CommandLine xmlns:rsp=\"");
    w.raw(ns::SHELL);
    w.raw("\">");
    w.element("rsp:Command", command);
    for a in args {
        w.element("rsp:Arguments", a);
    }
    w.raw("</rsp:CommandLine>");
}

pub(crate) fn read_command_id(body: &Element) -> Result<String, ParseError> {
    body.child(ns::SHELL, "CommandResponse")
        .and_then(|r| r.child_text(ns::SHELL, "CommandId"))
        .map(str::to_string)
        .ok_or(ParseError::Missing("rsp:CommandResponse/rsp:CommandId"))
}

pub(crate) fn write_send(w: &mut XmlWriter, command_id: &str, data: &[u8], end: bool) {
    w.raw("<rsp:Send xmlns:rsp=\"");
    w.raw(ns::SHELL);
    w.raw("\"><rsp:Stream Name=\"stdin\" CommandId=\"");
    w.attr_text(command_id);
    w.raw("\"");
    if end {
        w.raw(" End=\"true\"");
    }
    w.raw(">");
    w.base64(data);
    w.raw("</rsp:Stream></rsp:Send>");
}

pub(crate) fn write_receive(w: &mut XmlWriter, command_id: &str, sequence_id: Option<u64>) {
    w.raw("<rsp:Receive xmlns:rsp=\"");
    w.raw(ns::SHELL);
    w.raw("\"");
    if let Some(seq) = sequence_id {
        w.raw(" SequenceId=\"");
        w.display(seq);
        w.raw("\"");
    }
    w.raw("><rsp:DesiredStream CommandId=\"");
    w.attr_text(command_id);
    w.raw("\">stdout stderr</rsp:DesiredStream></rsp:Receive>");
}

pub(crate) fn write_signal(w: &mut XmlWriter, command_id: &str, code: &str) {
    w.raw("<rsp:Signal xmlns:rsp=\"");
    w.raw(ns::SHELL);
    w.raw("\" CommandId=\"");
    w.attr_text(command_id);
    w.raw("\"><rsp:Code>");
    w.text(code);
    w.raw("</rsp:Code></rsp:Signal>");
}

/// Which output stream a chunk belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamName {
    Stdout,
    Stderr,
}

/// One parsed ReceiveResponse.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Received {
    /// Output chunks in document order, still base64 ([`decode_into`] decodes them);
    /// empty End markers skipped.
    pub chunks: Vec<(StreamName, Bytes)>,
    /// Set when CommandState is Done: [`ExitStatus::Exited`] with its `ExitCode`, or
    /// [`ExitStatus::ExitedWithoutCode`] when the state carries none.
    pub done: Option<ExitStatus>,
}

/// Collects the output of one command from a ReceiveResponse while it is parsed: the
/// base64 text of each `rsp:Stream` stays a slice of the response bytes, never copied
/// into the element tree, and is decoded later by [`decode_into`].
#[derive(Debug)]
pub(crate) struct StreamSink<'c> {
    command_id: &'c str,
    document: Bytes,
    chunks: Vec<(StreamName, Bytes)>,
}

impl<'c> StreamSink<'c> {
    pub(crate) fn new(command_id: &'c str) -> Self {
        StreamSink {
            command_id,
            document: Bytes::new(),
            chunks: Vec::new(),
        }
    }
}

/// Which output a `rsp:Stream` element carries, if it belongs to `command_id`.
fn stream_of(el: &Element, command_id: &str) -> Option<StreamName> {
    stream_of_attrs(el.attr("CommandId"), el.attr("Name"), command_id)
}

/// [`stream_of`] from the stream's `CommandId` and `Name` attributes.
pub(crate) fn stream_of_attrs(
    id: Option<&str>,
    name: Option<&str>,
    command_id: &str,
) -> Option<StreamName> {
    if id.is_some_and(|id| !id.eq_ignore_ascii_case(command_id)) {
        return None;
    }
    match name {
        Some("stdout") => Some(StreamName::Stdout),
        Some("stderr") => Some(StreamName::Stderr),
        _ => None,
    }
}

/// `part` as a slice of `document` when it lies inside it, else a copy.
pub(crate) fn slice_of(document: &Bytes, part: &[u8]) -> Bytes {
    let start = part.as_ptr().addr().checked_sub(document.as_ptr().addr());
    match start {
        Some(s)
            if s.checked_add(part.len())
                .is_some_and(|e| e <= document.len()) =>
        {
            document.slice(s..s + part.len())
        }
        _ => Bytes::copy_from_slice(part),
    }
}

impl TextSink for StreamSink<'_> {
    fn claim(&mut self, open: &[Element]) -> bool {
        // s:Envelope / s:Body / rsp:ReceiveResponse / rsp:Stream
        matches!(open, [env, body, resp, stream]
            if stream.is(ns::SHELL, "Stream")
                && resp.is(ns::SHELL, "ReceiveResponse")
                && body.is(ns::SOAP, "Body")
                && env.is(ns::SOAP, "Envelope")
                && stream_of(stream, self.command_id).is_some())
    }

    fn document(&mut self, bytes: &Bytes) {
        self.document = bytes.clone();
    }

    fn take(&mut self, el: &Element, text: &str) -> Result<(), ParseError> {
        let Some(name) = stream_of(el, self.command_id) else {
            return Ok(());
        };
        let text = text.trim();
        if text.is_empty() {
            return Ok(());
        }
        self.chunks
            .push((name, slice_of(&self.document, text.as_bytes())));
        Ok(())
    }
}

/// How many bytes a chunk of (valid, padded) base64 text decodes to.
pub(crate) fn decoded_len(text: &[u8]) -> usize {
    let padding = text
        .iter()
        .rev()
        .take(2)
        .take_while(|&&b| b == b'=')
        .count();
    (text.len() / 4 * 3).saturating_sub(padding)
}

/// Decodes a chunk of stream text.
#[cfg(test)]
pub(crate) fn decode(text: &[u8]) -> Result<Bytes, ParseError> {
    decode_into(text, &mut BytesMut::new())
}

/// Decodes a chunk of stream text into `arena` and returns it as a slice of the arena:
/// once nothing holds that slice any more, the next chunk reuses the allocation (no
/// allocation, free and fresh page faults per chunk while a consumer keeps up).
pub(crate) fn decode_into(text: &[u8], arena: &mut BytesMut) -> Result<Bytes, ParseError> {
    let room = text.len().div_ceil(4) * 3;
    arena.clear();
    arena.reserve(room);
    arena.resize(room, 0);
    // base64-simd: the same strict standard alphabet and padding as base64's STANDARD
    // (canonical trailing bits), several times faster on long streams.
    use base64_simd::AsOut as _;
    let n = base64_simd::STANDARD
        .decode(text, arena[..].as_out())
        .map_err(|_| ParseError::invalid("base64 stream data", &String::from_utf8_lossy(text)))?
        .len();
    arena.truncate(n);
    Ok(arena.split().freeze())
}

/// Reads a ReceiveResponse for the command of `sink`, whose body was parsed with it.
pub(crate) fn read_receive(body: &Element, sink: StreamSink<'_>) -> Result<Received, ParseError> {
    let resp = body
        .child(ns::SHELL, "ReceiveResponse")
        .ok_or(ParseError::Missing("rsp:ReceiveResponse"))?;
    let mut out = Received {
        chunks: sink.chunks,
        done: None,
    };
    for c in resp.children_named(ns::SHELL, "CommandState") {
        let state = c.attr("State").unwrap_or("");
        if state.ends_with("/Done") {
            // An absent (or empty) ExitCode is not 0: the outcome is unknown.
            let status = match c.child_text(ns::SHELL, "ExitCode").map(str::trim) {
                None | Some("") => ExitStatus::ExitedWithoutCode,
                Some(code) => ExitStatus::Exited(
                    code.parse()
                        .map_err(|_| ParseError::invalid("ExitCode", code))?,
                ),
            };
            out.done = Some(status);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::xml::{parse, parse_with};

    fn receive(xml: &[u8], id: &str) -> Result<Received, ParseError> {
        let mut sink = StreamSink::new(id);
        let xml = Bytes::copy_from_slice(xml);
        sink.document(&xml);
        let root = parse_with(&xml, &mut sink)?;
        let mut r = read_receive(root.child(ns::SOAP, "Body").unwrap(), sink)?;
        for (_, chunk) in &mut r.chunks {
            *chunk = decode(chunk)?;
        }
        Ok(r)
    }

    #[test]
    fn receive_response_with_streams_and_done() {
        let xml = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Body><rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C1">aGk=</rsp:Stream><rsp:Stream Name="stderr" CommandId="C1">ZXJy</rsp:Stream><rsp:Stream Name="stdout" CommandId="C1" End="true"></rsp:Stream><rsp:CommandState CommandId="C1" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"><rsp:ExitCode>3</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse></s:Body></s:Envelope>"#;
        let r = receive(xml, "c1").unwrap();
        assert_eq!(
            r.chunks,
            vec![
                (StreamName::Stdout, Bytes::from_static(b"hi")),
                (StreamName::Stderr, Bytes::from_static(b"err"))
            ]
        );
        assert_eq!(r.done, Some(ExitStatus::Exited(3)));
    }

    #[test]
    fn done_without_exit_code_is_not_exit_code_0() {
        let done = |state_body: &str| {
            let xml = format!(
                r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Body><rsp:ReceiveResponse><rsp:CommandState CommandId="C1" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done">{state_body}</rsp:CommandState></rsp:ReceiveResponse></s:Body></s:Envelope>"#
            );
            receive(xml.as_bytes(), "C1").map(|r| r.done)
        };
        assert_eq!(done(""), Ok(Some(ExitStatus::ExitedWithoutCode)));
        assert_eq!(
            done("<rsp:ExitCode></rsp:ExitCode>"),
            Ok(Some(ExitStatus::ExitedWithoutCode))
        );
        assert_eq!(
            done("<rsp:ExitCode> 0 </rsp:ExitCode>"),
            Ok(Some(ExitStatus::Exited(0)))
        );
        assert_eq!(
            done("<rsp:ExitCode>-1073741510</rsp:ExitCode>"),
            Ok(Some(ExitStatus::Exited(-1_073_741_510)))
        );
        assert!(matches!(
            done("<rsp:ExitCode>zero</rsp:ExitCode>"),
            Err(ParseError::Invalid { .. })
        ));
    }

    #[test]
    fn stream_text_stays_a_slice_of_the_response() {
        let xml = Bytes::from_static(br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Body><rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C1"> aGk= </rsp:Stream></rsp:ReceiveResponse></s:Body></s:Envelope>"#);
        let mut sink = StreamSink::new("C1");
        sink.document(&xml);
        let root = parse_with(&xml, &mut sink).unwrap();
        let r = read_receive(root.child(ns::SOAP, "Body").unwrap(), sink).unwrap();
        let (name, text) = &r.chunks[0];
        assert_eq!((*name, &text[..]), (StreamName::Stdout, &b"aGk="[..]));
        assert!(xml.as_ptr_range().contains(&text.as_ptr()));
        assert_eq!(decoded_len(text), 2);
        assert_eq!((decoded_len(b"YQ=="), decoded_len(b"YWJj")), (1, 3));
        assert_eq!(&decode(text).unwrap()[..], b"hi");
    }

    /// base64-simd accepts and refuses what base64's STANDARD engine does, with the same
    /// bytes: every length of random data, and texts with edits (bad symbols, padding in
    /// the middle, non-canonical trailing bits, white space, cuts).
    #[test]
    fn stream_decoding_agrees_with_the_base64_crate() {
        use base64::Engine as _;
        let reference = |t: &[u8]| base64::engine::general_purpose::STANDARD.decode(t).ok();
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut arena = BytesMut::new();
        for len in 0..600 {
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let text = base64::engine::general_purpose::STANDARD.encode(&data);
            let got = decode_into(text.as_bytes(), &mut arena).unwrap();
            assert_eq!(&got[..], &data[..]);
            let mut bad = text.clone().into_bytes();
            if !bad.is_empty() {
                let at = next() as usize % bad.len();
                bad[at] = b"=-_ \n*A/+\0"[next() as usize % 10];
                if next() % 3 == 0 {
                    bad.truncate(next() as usize % bad.len());
                }
            }
            assert_eq!(
                decode_into(&bad, &mut arena).ok().map(|b| b.to_vec()),
                reference(&bad),
                "{}",
                String::from_utf8_lossy(&bad)
            );
        }
        // Non-canonical trailing bits ("QR==" for "A" is "QQ=="), refused by both.
        for t in [&b"QR=="[..], b"QUJ=", b"QQ", b"Q===", b"=QQ="] {
            assert_eq!(
                decode_into(t, &mut arena).ok().map(|b| b.to_vec()),
                reference(t)
            );
        }
    }

    #[test]
    fn decoding_reuses_the_arena_only_when_nothing_holds_the_last_chunk() {
        let mut arena = BytesMut::new();
        let a = decode_into(b"aGVsbG8gd29ybGQ=", &mut arena).unwrap();
        assert_eq!(&a[..], b"hello world");
        let a_ptr = a.as_ptr();
        drop(a);
        let b = decode_into(b"Zm9vYmFy", &mut arena).unwrap();
        assert_eq!(&b[..], b"foobar");
        assert_eq!(b.as_ptr(), a_ptr, "the arena was not reused");
        // Held: the next chunk goes elsewhere and the held one is untouched.
        let c = decode_into(b"YWJj", &mut arena).unwrap();
        assert_eq!((&b[..], &c[..]), (&b"foobar"[..], &b"abc"[..]));
        assert!(matches!(
            decode_into(b"not base64!", &mut arena),
            Err(ParseError::Invalid { .. })
        ));
        assert_eq!(&b[..], b"foobar");
    }

    #[test]
    fn stream_text_in_pieces_references_and_cdata_is_decoded_whole() {
        // "hello world" is aGVsbG8gd29ybGQ=; split by a comment, a character reference,
        // a CDATA section and whitespace around it.
        let xml = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:r="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Body><r:ReceiveResponse><r:Stream Name="stdout" CommandId="C1">
 aGVsb<!-- x -->G8g&#100;29<![CDATA[ybG]]>Q= </r:Stream><r:Stream Name="stdout" CommandId="C2">Zm9v</r:Stream><r:CommandState CommandId="C1" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"/></r:ReceiveResponse></s:Body></s:Envelope>"#;
        let r = receive(xml, "C1").unwrap();
        assert_eq!(
            r.chunks,
            vec![(StreamName::Stdout, Bytes::from_static(b"hello world"))]
        );
        assert_eq!(r.done, None);
        // The tree keeps the text of streams the sink did not claim (another command's).
        let mut sink = StreamSink::new("C1");
        let root = parse_with(xml, &mut sink).unwrap();
        let resp = root
            .path(&[(ns::SOAP, "Body"), (ns::SHELL, "ReceiveResponse")])
            .unwrap();
        let texts: Vec<&str> = resp
            .children_named(ns::SHELL, "Stream")
            .map(|s| s.text.as_str())
            .collect();
        assert_eq!(texts, ["", "Zm9v"]);
    }

    #[test]
    fn streams_outside_a_receive_response_are_not_claimed() {
        let xml = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Body><rsp:Other><rsp:Stream Name="stdout" CommandId="C1">aGk=</rsp:Stream></rsp:Other></s:Body></s:Envelope>"#;
        let mut sink = StreamSink::new("C1");
        let root = parse_with(xml, &mut sink).unwrap();
        assert!(sink.chunks.is_empty());
        assert!(matches!(
            read_receive(root.child(ns::SOAP, "Body").unwrap(), sink),
            Err(ParseError::Missing(_))
        ));
        // Same bytes through the plain tree parser: the text stays in the tree.
        let root = parse(xml).unwrap();
        let other = root
            .path(&[(ns::SOAP, "Body"), (ns::SHELL, "Other")])
            .unwrap();
        assert_eq!(other.child_text(ns::SHELL, "Stream"), Some("aGk="));
    }

    #[test]
    fn bad_base64_is_a_typed_error() {
        let xml = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Body><rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C1">!!!</rsp:Stream></rsp:ReceiveResponse></s:Body></s:Envelope>"#;
        assert!(matches!(
            receive(xml, "C1"),
            Err(ParseError::Invalid { .. })
        ));
    }

    #[test]
    fn malformed_xml_around_claimed_text_is_still_a_syntax_error() {
        let xml = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Body><rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C1">aGk=</rsp:Strea></rsp:ReceiveResponse></s:Body></s:Envelope>"#;
        assert!(matches!(receive(xml, "C1"), Err(ParseError::Syntax { .. })));
    }
}
