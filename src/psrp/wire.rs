//! The WinRS bodies a runspace pool and its pipelines send ([MS-PSRP] §3.1.5.3), in the
//! shapes Windows' own clients use (as pypsrp's recordings of Windows hosts show). Pure.

use uuid::Uuid;

use std::time::Duration;

use crate::soap::envelope::{XmlWriter, format_duration};
use crate::soap::ns;

/// The namespace of `creationXml` and `connectXml`.
pub(crate) const PS_NS: &str = "http://schemas.microsoft.com/powershell";

/// The resource URI prefix of PowerShell session configurations.
pub(crate) const RESOURCE_PREFIX: &str = "http://schemas.microsoft.com/powershell/";

/// The signal code that stops a pipeline ([MS-PSRP] §3.1.5.3.9; `crtl` as the spec and
/// Windows spell it).
pub(crate) const STOP_SIGNAL: &str = "powershell/signal/crtl_c";

/// The `protocolversion` option of Create and Connect ([MS-PSRP] §3.1.5.3.2).
pub(crate) const PROTOCOL_VERSION_OPTION: &str = "protocolversion";

/// The resource URI of a session configuration: `Microsoft.PowerShell`, a JEA endpoint's
/// name, or a whole URI.
pub(crate) fn resource_uri(configuration: &str) -> String {
    if configuration.contains("://") {
        configuration.to_string()
    } else {
        format!("{RESOURCE_PREFIX}{configuration}")
    }
}

/// The guid as Windows writes it in ShellId and CommandId attributes.
pub(crate) fn guid(id: Uuid) -> String {
    id.hyphenated()
        .encode_upper(&mut Uuid::encode_buffer())
        .to_string()
}

/// The Create body: the pool id as ShellId, streams `stdin pr` in and `stdout` out, and
/// the first PSRP fragments in `creationXml`.
pub(crate) fn write_create(
    w: &mut XmlWriter,
    pool: Uuid,
    idle_timeout: Option<Duration>,
    creation: &[u8],
) {
    w.raw("<rsp:Shell xmlns:rsp=\"");
    w.raw(ns::SHELL);
    w.raw("\" ShellId=\"");
    w.raw(&guid(pool));
    w.raw("\">");
    if let Some(t) = idle_timeout {
        w.element("rsp:IdleTimeOut", &format_duration(t));
    }
    w.raw("<rsp:InputStreams>stdin pr</rsp:InputStreams><rsp:OutputStreams>stdout</rsp:OutputStreams><creationXml xmlns=\"");
    w.raw(PS_NS);
    w.raw("\">");
    w.base64(creation);
    w.raw("</creationXml></rsp:Shell>");
}

/// The Command body of a pipeline: its id as CommandId, an empty command, and the first
/// CREATE_PIPELINE fragments as the arguments.
pub(crate) fn write_command(w: &mut XmlWriter, pipeline: Uuid, arguments: &[u8]) {
    w.raw("<rsp:CommandLine xmlns:rsp=\"");
    w.raw(ns::SHELL);
    w.raw("\" CommandId=\"");
    w.raw(&guid(pipeline));
    w.raw("\"><rsp:Command/><rsp:Arguments>");
    w.base64(arguments);
    w.raw("</rsp:Arguments></rsp:CommandLine>");
}

/// Which input stream a Send writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// `stdin`: PSRP messages (fragments of CREATE_PIPELINE, PIPELINE_INPUT...).
    Stdin,
    /// `pr`: host responses.
    Pr,
}

/// A Send of one payload of fragments, to the pool (`command` none) or a pipeline.
pub(crate) fn write_send(w: &mut XmlWriter, stream: Input, command: Option<&str>, payload: &[u8]) {
    w.raw("<rsp:Send xmlns:rsp=\"");
    w.raw(ns::SHELL);
    w.raw("\"><rsp:Stream Name=\"");
    w.raw(match stream {
        Input::Stdin => "stdin",
        Input::Pr => "pr",
    });
    w.raw("\"");
    if let Some(id) = command {
        w.raw(" CommandId=\"");
        w.attr_text(id);
        w.raw("\"");
    }
    w.raw(">");
    // Base64 text needs no escaping: written straight into the envelope.
    w.base64(payload);
    w.raw("</rsp:Stream></rsp:Send>");
}

/// A Receive of the `stdout` stream of the pool (`command` none) or of a pipeline.
pub(crate) fn write_receive(w: &mut XmlWriter, command: Option<&str>) {
    w.raw("<rsp:Receive xmlns:rsp=\"");
    w.raw(ns::SHELL);
    w.raw("\"><rsp:DesiredStream");
    if let Some(id) = command {
        w.raw(" CommandId=\"");
        w.attr_text(id);
        w.raw("\"");
    }
    w.raw(">stdout</rsp:DesiredStream></rsp:Receive>");
}

/// A Connect to a disconnected pool from any client ([MS-PSRP] §3.1.5.3.13): the first
/// PSRP fragments (SESSION_CAPABILITY, CONNECT_RUNSPACEPOOL) in `connectXml`.
pub(crate) fn write_connect(w: &mut XmlWriter, payload: &[u8]) {
    w.raw("<rsp:Connect xmlns:rsp=\"");
    w.raw(ns::SHELL);
    w.raw("\"><connectXml xmlns=\"");
    w.raw(PS_NS);
    w.raw("\">");
    w.base64(payload);
    w.raw("</connectXml></rsp:Connect>");
}

/// A Connect to one pipeline of a connected pool, to go on reading it.
pub(crate) fn write_connect_command(w: &mut XmlWriter, command_id: &str) {
    w.raw("<rsp:Connect xmlns:rsp=\"");
    w.raw(ns::SHELL);
    w.raw("\" CommandId=\"");
    w.attr_text(command_id);
    w.raw("\"/>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut XmlWriter)) -> String {
        let mut w = XmlWriter::with_capacity(256);
        f(&mut w);
        w.into_string()
    }

    #[test]
    fn bodies_have_the_recorded_shapes() {
        let pool = Uuid::parse_str("c189b341-bb56-44ca-bb69-05f0cac14125").unwrap();
        let create = written(|w| write_create(w, pool, None, b"\x01\x02"));
        assert!(create.contains(r#"ShellId="C189B341-BB56-44CA-BB69-05F0CAC14125""#));
        assert!(create.contains("<rsp:InputStreams>stdin pr</rsp:InputStreams><rsp:OutputStreams>stdout</rsp:OutputStreams>"));
        assert!(create.contains(
            r#"<creationXml xmlns="http://schemas.microsoft.com/powershell">AQI=</creationXml>"#
        ));
        let cmd = written(|w| write_command(w, pool, b"\x01"));
        assert!(cmd.contains(r#"CommandId="C189B341-BB56-44CA-BB69-05F0CAC14125"><rsp:Command/><rsp:Arguments>AQ==</rsp:Arguments>"#));
        let send = written(|w| write_send(w, Input::Pr, None, b"\x01"));
        assert!(send.ends_with(r#"<rsp:Stream Name="pr">AQ==</rsp:Stream></rsp:Send>"#));
        let send = written(|w| {
            write_send(
                w,
                Input::Stdin,
                Some("C189B341-BB56-44CA-BB69-05F0CAC14125"),
                b"",
            )
        });
        assert!(send.contains(r#"<rsp:Stream Name="stdin" CommandId="C189B341-BB56-44CA-BB69-05F0CAC14125"></rsp:Stream>"#));
        let recv = written(|w| write_receive(w, None));
        assert!(recv.ends_with("<rsp:DesiredStream>stdout</rsp:DesiredStream></rsp:Receive>"));
        assert_eq!(
            resource_uri("Microsoft.PowerShell"),
            "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
        );
        assert_eq!(resource_uri("http://x/y"), "http://x/y");
    }
}
