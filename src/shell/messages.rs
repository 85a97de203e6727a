//! WinRS message bodies and response readers ([MS-WSMV] §3.1.4.11-14). Pure.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;

use crate::soap::envelope::{XmlWriter, format_duration};
use crate::soap::ns;
use crate::soap::xml::{Element, ParseError};

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
    w.raw(&base64::engine::general_purpose::STANDARD.encode(data));
    w.raw("</rsp:Stream></rsp:Send>");
}

pub(crate) fn write_receive(w: &mut XmlWriter, command_id: &str, sequence_id: Option<u64>) {
    w.raw("<rsp:Receive xmlns:rsp=\"");
    w.raw(ns::SHELL);
    w.raw("\"");
    if let Some(seq) = sequence_id {
        w.raw(&format!(" SequenceId=\"{seq}\""));
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
    /// Output chunks in document order (empty End markers skipped).
    pub chunks: Vec<(StreamName, Bytes)>,
    /// `Some(code)` when CommandState is Done.
    pub done: Option<i64>,
}

/// Reads a ReceiveResponse for `command_id`.
pub(crate) fn read_receive(body: &Element, command_id: &str) -> Result<Received, ParseError> {
    let resp = body
        .child(ns::SHELL, "ReceiveResponse")
        .ok_or(ParseError::Missing("rsp:ReceiveResponse"))?;
    let mut out = Received::default();
    for c in &resp.children {
        if c.is(ns::SHELL, "Stream") {
            if c.attr("CommandId")
                .is_some_and(|id| !id.eq_ignore_ascii_case(command_id))
            {
                continue;
            }
            let name = match c.attr("Name") {
                Some("stdout") => StreamName::Stdout,
                Some("stderr") => StreamName::Stderr,
                _ => continue,
            };
            let text = c.text.trim();
            if text.is_empty() {
                continue;
            }
            let data = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| ParseError::invalid("base64 stream data", text))?;
            out.chunks.push((name, Bytes::from(data)));
        } else if c.is(ns::SHELL, "CommandState") {
            let state = c.attr("State").unwrap_or("");
            if state.ends_with("/Done") {
                let code = c.child_text(ns::SHELL, "ExitCode").unwrap_or("0");
                let code: i64 = code
                    .parse()
                    .map_err(|_| ParseError::invalid("ExitCode", code))?;
                out.done = Some(code);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::xml::parse;

    #[test]
    fn receive_response_with_streams_and_done() {
        let xml = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Body><rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C1">aGk=</rsp:Stream><rsp:Stream Name="stderr" CommandId="C1">ZXJy</rsp:Stream><rsp:Stream Name="stdout" CommandId="C1" End="true"></rsp:Stream><rsp:CommandState CommandId="C1" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"><rsp:ExitCode>3</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse></s:Body></s:Envelope>"#;
        let root = parse(xml).unwrap();
        let r = read_receive(root.child(ns::SOAP, "Body").unwrap(), "c1").unwrap();
        assert_eq!(
            r.chunks,
            vec![
                (StreamName::Stdout, Bytes::from_static(b"hi")),
                (StreamName::Stderr, Bytes::from_static(b"err"))
            ]
        );
        assert_eq!(r.done, Some(3));
    }

    #[test]
    fn bad_base64_is_a_typed_error() {
        let xml = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Body><rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C1">!!!</rsp:Stream></rsp:ReceiveResponse></s:Body></s:Envelope>"#;
        let root = parse(xml).unwrap();
        assert!(matches!(
            read_receive(root.child(ns::SOAP, "Body").unwrap(), "C1"),
            Err(ParseError::Invalid { .. })
        ));
    }
}
