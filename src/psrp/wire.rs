//! The WinRS bodies a runspace pool and its pipelines send ([MS-PSRP] §3.1.5.3), in the
//! shapes Windows' own clients use (as pypsrp's recordings of Windows hosts show). Pure.

use uuid::Uuid;

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::soap::envelope::{XmlWriter, format_duration};
use crate::soap::ns;
use crate::soap::xml::ParseError;

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

/// Decodes the base64 `rsp:Stream` texts of Receive responses: all those of one
/// response into one buffer, sized once, whose slices the messages then share. The
/// buffers of the last two responses are kept and used again as soon as nothing holds
/// their slices any more (the consumer has read those messages): while a consumer keeps
/// up, reading a response allocates, zeroes and faults in no fresh memory (one
/// allocation per stream element, as [`decode_into`](crate::shell::messages::decode_into)
/// in turn makes when the consumer holds its last slice, was a large part of the cost of
/// a stream of many small objects).
#[derive(Debug, Default)]
pub(crate) struct StreamArena {
    /// The buffers of earlier responses, each reused once it is the only handle left.
    kept: [Option<Bytes>; 2],
    /// Where each text's bytes went in the buffer being filled: (start, length).
    spans: Vec<(usize, usize)>,
}

impl StreamArena {
    /// Decodes `texts` (base64, in document order) into `out` (cleared first), each as a
    /// slice of one buffer. At the first text that is not base64 it stops and returns
    /// that text's error, the one [`decode_into`](crate::shell::messages::decode_into)
    /// gives, with the texts before it decoded in `out`.
    pub(crate) fn decode<'a>(
        &mut self,
        texts: impl Iterator<Item = &'a [u8]> + Clone,
        out: &mut Vec<Bytes>,
    ) -> Option<ParseError> {
        out.clear();
        self.spans.clear();
        let room = texts
            .clone()
            .fold(0usize, |n, t| n.saturating_add(t.len().div_ceil(4) * 3));
        if room == 0 {
            // Nothing but empty texts (no text at all, mostly).
            out.extend(texts.map(|_| Bytes::new()));
            return None;
        }
        let mut buf = self.take(room);
        let mut at = 0usize;
        let mut failed = None;
        for text in texts {
            let want = text.len().div_ceil(4) * 3;
            // base64-simd: the same strict standard alphabet and padding as base64's
            // STANDARD (canonical trailing bits), as `decode_into`.
            use base64_simd::AsOut as _;
            let decoded = buf
                .get_mut(at..at + want)
                .and_then(|to| base64_simd::STANDARD.decode(text, to.as_out()).ok())
                .map(|d| d.len());
            match decoded {
                Some(n) => {
                    self.spans.push((at, n));
                    at += n;
                }
                None => {
                    failed = Some(ParseError::invalid(
                        "base64 stream data",
                        &String::from_utf8_lossy(text),
                    ));
                    break;
                }
            }
        }
        let whole = buf.freeze();
        out.extend(
            self.spans
                .iter()
                .map(|&(start, len)| whole.slice(start..start + len)),
        );
        self.keep(whole);
        failed
    }

    /// A buffer of at least `room` bytes: a kept one nothing else holds, else a new one.
    fn take(&mut self, room: usize) -> BytesMut {
        for slot in &mut self.kept {
            match slot.take().map(Bytes::try_into_mut) {
                Some(Ok(mut buf)) => {
                    // Its bytes are the last response's: overwritten, not zeroed again.
                    if buf.len() < room {
                        // Grown with room to spare: responses of one pipeline differ
                        // by a few objects, and each growth zeroes the whole buffer.
                        buf.clear();
                        buf.resize(room.next_power_of_two(), 0);
                    }
                    return buf;
                }
                Some(Err(held)) => *slot = Some(held),
                None => {}
            }
        }
        BytesMut::zeroed(room)
    }

    /// Keeps `whole` for a later response, in place of the older buffer still held.
    fn keep(&mut self, whole: Bytes) {
        match self.kept.iter_mut().find(|s| s.is_none()) {
            Some(slot) => *slot = Some(whole),
            None => {
                self.kept.swap(0, 1);
                self.kept[1] = Some(whole);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut XmlWriter)) -> String {
        let mut w = XmlWriter::with_capacity(256);
        f(&mut w);
        w.into_string()
    }

    fn b64(data: &[u8]) -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .encode(data)
            .into_bytes()
    }

    /// What `decode_into` makes of each text, one by one (the reference).
    fn one_by_one(texts: &[Vec<u8>]) -> Vec<Result<Vec<u8>, String>> {
        let mut arena = BytesMut::new();
        texts
            .iter()
            .map(|t| {
                crate::shell::messages::decode_into(t, &mut arena)
                    .map(|b| b.to_vec())
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    /// Decodes `texts` with `arena` and checks the answer against `one_by_one`.
    fn decode_alike(arena: &mut StreamArena, texts: &[Vec<u8>]) -> Vec<Bytes> {
        let mut out = vec![Bytes::from_static(b"stale")];
        let failed = arena.decode(texts.iter().map(|t| &t[..]), &mut out);
        let reference = one_by_one(texts);
        let ok = reference.iter().take_while(|r| r.is_ok()).count();
        assert_eq!(out.len(), ok);
        for (got, want) in out.iter().zip(&reference) {
            assert_eq!(Ok(&got[..]), want.as_deref().map_err(String::clone));
        }
        assert_eq!(
            failed.map(|e| e.to_string()),
            reference.iter().find_map(|r| r.clone().err())
        );
        out
    }

    fn texts(seed: u8, sizes: &[usize]) -> Vec<Vec<u8>> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let data: Vec<u8> = (0..n)
                    .map(|j| (j as u8).wrapping_mul(31).wrapping_add(seed ^ i as u8))
                    .collect();
                b64(&data)
            })
            .collect()
    }

    /// A second response is decoded into the first one's buffer once its slices are
    /// dropped (the same bytes as one by one); a response larger than the kept buffers
    /// gets a larger one; a buffer whose slices are still held is never written.
    #[test]
    fn stream_arena_reuses_a_response_buffer_once_it_is_free() {
        let mut arena = StreamArena::default();
        let first = decode_alike(&mut arena, &texts(1, &[1400, 0, 1401, 1402, 5]));
        let at = first[0].as_ptr();
        drop(first);
        let second = decode_alike(&mut arena, &texts(2, &[700, 1403, 1]));
        assert_eq!(second[0].as_ptr(), at, "the free buffer is used again");
        // Held by the consumer: the next response goes elsewhere and leaves it as is.
        let copy: Vec<Vec<u8>> = second.iter().map(|b| b.to_vec()).collect();
        let third = decode_alike(&mut arena, &texts(3, &[1500, 1500]));
        assert_ne!(third[0].as_ptr(), at);
        let fourth = decode_alike(&mut arena, &texts(4, &[600]));
        let fifth = decode_alike(&mut arena, &texts(5, &[600]));
        assert_eq!(
            second.iter().map(|b| b.to_vec()).collect::<Vec<_>>(),
            copy,
            "held slices are not written over"
        );
        drop((second, third, fourth, fifth));
        // Larger than any kept buffer.
        let large = decode_alike(&mut arena, &texts(6, &[20_000, 30_000, 7]));
        assert_eq!(large[1].len(), 30_000);
        drop(large);
        // Smaller again: the large buffer serves it.
        decode_alike(&mut arena, &texts(7, &[10, 20]));
        // No texts, empty texts.
        assert!(decode_alike(&mut arena, &[]).is_empty());
        assert_eq!(decode_alike(&mut arena, &[Vec::new(), Vec::new()]).len(), 2);
    }

    /// A text that is not base64 (cut short, a stray byte, bad padding) stops the
    /// decoding with `decode_into`'s error; the texts before it are decoded.
    #[test]
    fn stream_arena_fails_as_decode_into_does() {
        let mut arena = StreamArena::default();
        let good = texts(9, &[300, 301, 302]);
        let mut cut = good[1].clone();
        cut.truncate(cut.len() - 1);
        let mut stray = good[1].clone();
        stray[10] = b'*';
        for bad in [cut, stray, b"QQ=".to_vec(), b"QR==".to_vec(), b"=".to_vec()] {
            let response = vec![good[0].clone(), bad, good[2].clone()];
            let out = decode_alike(&mut arena, &response);
            assert_eq!(out.len(), 1);
        }
        // And the buffer is fine for the next response.
        drop(decode_alike(&mut arena, &good));
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
