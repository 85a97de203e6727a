//! The simulator's PSRP endpoint, driven with raw WS-Management envelopes carrying
//! PSRP fragments built by the message layer (`wsman_protocol::psrp`): opening a pool,
//! pipelines of built-in and registered cmdlets, scripts, input, fragmentation at a
//! small MaxEnvelopeSize, stop, unknown commands, disconnect/reconnect, counters.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;
use winrm_simulator::{CmdletContext, Simulator};
use wsman_protocol::envelope::{Envelope, OptionItem, Selector};
use wsman_protocol::ns;
use wsman_protocol::psrp::messages::{
    Argument, ClientMessage, Command, CreatePipeline, ErrorCategory, ErrorRecord, InitRunspacePool,
    PipelineState, PowerShell, ProtocolVersion, RunspacePoolState, ServerMessage,
    SessionCapability, end_of_pipeline_input, pipeline_input,
};
use wsman_protocol::psrp::{
    Defragmenter, Destination, Fragmenter, Message, MessageType, PsObject, PsValue, max_blob_size,
};
use wsman_protocol::xml::{Element, parse};

const SHELL: &str = ns::SHELL;
const PS_URI: &str = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell";
const PS_STOP: &str = "powershell/signal/crtl_c";

async fn within<T>(secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test step timed out")
}

/// One POST on its own connection; the HTTP status and the parsed envelope.
async fn post(sim: &Simulator, body: &str) -> (u16, Element) {
    let mut s = TcpStream::connect(sim.addr()).await.unwrap();
    let head = format!(
        "POST /wsman HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic dmFncmFudDp2YWdyYW50\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        sim.addr(),
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, parse(&body).expect("response is not XML"))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 4 + size..];
    }
}

fn body(root: &Element) -> &Element {
    root.child(ns::SOAP, "Body").expect("no Body")
}

fn fault_text(root: &Element) -> String {
    format!("{root:?}")
}

/// A raw PSRP client of one pool.
struct Driver<'a> {
    sim: &'a Simulator,
    uri: String,
    shell: String,
    pool: Uuid,
    max_envelope: u32,
    out: Fragmenter,
    inbound: Defragmenter,
    version: ProtocolVersion,
}

impl<'a> Driver<'a> {
    fn request(
        &self,
        action: &str,
        shell: bool,
        options: &[OptionItem],
        body: impl FnOnce(&mut wsman_protocol::envelope::XmlWriter),
    ) -> String {
        let to = self.sim.endpoint();
        let selectors = if shell {
            vec![Selector::new("ShellId", self.shell.clone())]
        } else {
            vec![]
        };
        let env = Envelope {
            resource_uri: Some(&self.uri),
            operation_timeout: Some(Duration::from_secs(20)),
            max_envelope_size: Some(self.max_envelope),
            selectors: &selectors,
            options,
            namespaces: &[("rsp", SHELL)],
            ..Envelope::new(action, &to)
        };
        env.write(body)
    }

    fn message(&self, t: MessageType, pipeline: Option<Uuid>, v: &PsValue) -> Message {
        Message::from_value(Destination::Server, t, self.pool, pipeline, v)
    }

    fn pack(&mut self, messages: &[Message]) -> Vec<String> {
        self.out
            .pack(messages)
            .into_iter()
            .map(|p| STANDARD.encode(p))
            .collect()
    }

    /// Creates the pool; Err(fault envelope) when refused.
    async fn create(
        sim: &'a Simulator,
        uri: &str,
        max_envelope: u32,
        version: &str,
    ) -> Result<Driver<'a>, Element> {
        let pool = Uuid::new_v4();
        let blob = max_blob_size(max_envelope as usize, 2_000).unwrap();
        let mut d = Driver {
            sim,
            uri: uri.to_string(),
            shell: pool.hyphenated().to_string().to_ascii_uppercase(),
            pool,
            max_envelope,
            out: Fragmenter::new(blob),
            inbound: Defragmenter::new(),
            version: ProtocolVersion::V2_3,
        };
        let mut caps = SessionCapability::default();
        caps.protocol_version = version.to_string();
        let msgs = [
            d.message(MessageType::SessionCapability, None, &caps.to_value()),
            d.message(
                MessageType::InitRunspacePool,
                None,
                &InitRunspacePool::new(1, 2).to_value(),
            ),
        ];
        d.out.set_max_blob(1_000_000);
        let creation = d.pack(&msgs).concat();
        d.out.set_max_blob(blob);
        let shell_id = d.shell.clone();
        let opts = [OptionItem::must_comply("protocolversion", version)];
        let xml = d.request(ns::action::CREATE, false, &opts, |w| {
            w.raw(&format!("<rsp:Shell ShellId=\"{shell_id}\"><rsp:InputStreams>stdin pr</rsp:InputStreams><rsp:OutputStreams>stdout</rsp:OutputStreams><creationXml xmlns=\"http://schemas.microsoft.com/powershell\">{creation}</creationXml></rsp:Shell>"));
        });
        let (status, root) = post(sim, &xml).await;
        if status != 200 {
            return Err(root);
        }
        let id = body(&root)
            .path(&[(SHELL, "Shell"), (SHELL, "ShellId")])
            .unwrap()
            .text
            .clone();
        assert_eq!(id, d.shell, "the shell takes the client's ShellId");
        Ok(d)
    }

    /// Receives once on the pool (`None`) or a pipeline: the messages and whether the
    /// command is done.
    async fn receive(&mut self, command: Option<&str>) -> (Vec<Message>, bool) {
        let attr = command
            .map(|c| format!(" CommandId=\"{c}\""))
            .unwrap_or_default();
        let opts = [OptionItem::new("WSMAN_CMDSHELL_OPTION_KEEPALIVE", "True")];
        let xml = self.request(ns::action::RECEIVE, true, &opts, |w| {
            w.raw(&format!(
                "<rsp:Receive><rsp:DesiredStream{attr}>stdout</rsp:DesiredStream></rsp:Receive>"
            ));
        });
        let text_len = xml.len();
        assert!(text_len < 8_000);
        let (status, root) = post(self.sim, &xml).await;
        assert_eq!(status, 200, "{}", fault_text(&root));
        let resp = body(&root).child(SHELL, "ReceiveResponse").unwrap();
        let mut msgs = Vec::new();
        for s in resp.children_named(SHELL, "Stream") {
            if s.text.is_empty() {
                continue;
            }
            let bytes = Bytes::from(STANDARD.decode(s.text.as_bytes()).unwrap());
            msgs.extend(self.inbound.push_messages(&bytes).unwrap());
        }
        let done = resp
            .child(SHELL, "CommandState")
            .and_then(|c| c.attr("State"))
            .is_some_and(|s| s.ends_with("/Done"));
        (msgs, done)
    }

    /// Receives on the pool until RUNSPACEPOOL_STATE Opened; the messages decoded.
    async fn open(&mut self) -> Vec<ServerMessage> {
        let mut all = Vec::new();
        loop {
            let (msgs, _) = within(10, self.receive(None)).await;
            for m in msgs {
                let d = ServerMessage::decode(&m).unwrap();
                if let ServerMessage::SessionCapability(c) = &d {
                    self.version = c.protocol().unwrap();
                }
                let opened = matches!(&d, ServerMessage::RunspacePoolState(s) if s.state == RunspacePoolState::Opened);
                all.push(d);
                if opened {
                    return all;
                }
            }
        }
    }

    /// Starts a pipeline; its CommandId.
    async fn start(&mut self, ps: PowerShell, no_input: bool) -> String {
        let pid = Uuid::new_v4();
        let mut create = CreatePipeline::new(ps);
        create.no_input = no_input;
        let msg = self.message(
            MessageType::CreatePipeline,
            Some(pid),
            &create.to_value(self.version),
        );
        let mut payloads = self.pack(&[msg]);
        let first = payloads.remove(0);
        let id = pid.hyphenated().to_string().to_ascii_uppercase();
        let xml = self.request(ns::action::COMMAND, true, &[], |w| {
            w.raw(&format!("<rsp:CommandLine CommandId=\"{id}\"><rsp:Command></rsp:Command><rsp:Arguments>{first}</rsp:Arguments></rsp:CommandLine>"));
        });
        let (status, root) = post(self.sim, &xml).await;
        assert_eq!(status, 200, "{}", fault_text(&root));
        let got = body(&root)
            .path(&[(SHELL, "CommandResponse"), (SHELL, "CommandId")])
            .unwrap()
            .text
            .clone();
        assert_eq!(got, id);
        for p in payloads {
            self.send_raw(Some(&id), &p).await;
        }
        id
    }

    async fn send_raw(&self, command: Option<&str>, payload: &str) {
        let (attr, stream) = match command {
            Some(c) => (format!(" CommandId=\"{c}\""), "stdin"),
            None => (String::new(), "pr"),
        };
        let xml = self.request(ns::action::SEND, true, &[], |w| {
            w.raw(&format!(
                "<rsp:Send><rsp:Stream Name=\"{stream}\"{attr}>{payload}</rsp:Stream></rsp:Send>"
            ));
        });
        let (status, root) = post(self.sim, &xml).await;
        assert_eq!(status, 200, "{}", fault_text(&root));
    }

    /// Sends messages on a pipeline's stdin.
    async fn send(&mut self, command: &str, messages: &[Message]) {
        for p in self.pack(messages) {
            self.send_raw(Some(command), &p).await;
        }
    }

    /// Receives a pipeline's messages until it is done.
    async fn collect(&mut self, command: &str) -> Vec<ServerMessage> {
        let mut all = Vec::new();
        loop {
            let (msgs, done) = within(20, self.receive(Some(command))).await;
            all.extend(msgs.iter().map(|m| ServerMessage::decode(m).unwrap()));
            if done {
                return all;
            }
        }
    }

    async fn signal(&self, command: &str, code: &str) -> (u16, Element) {
        let xml = self.request(ns::action::SIGNAL, true, &[], |w| {
            w.raw(&format!(
                "<rsp:Signal CommandId=\"{command}\"><rsp:Code>{code}</rsp:Code></rsp:Signal>"
            ));
        });
        post(self.sim, &xml).await
    }

    async fn delete(&self) {
        let xml = self.request(ns::action::DELETE, true, &[], |_| {});
        let (status, root) = post(self.sim, &xml).await;
        assert_eq!(status, 200, "{}", fault_text(&root));
    }
}

fn outputs(msgs: &[ServerMessage]) -> Vec<PsValue> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMessage::Output(v) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

fn final_state(msgs: &[ServerMessage]) -> (PipelineState, Option<ErrorRecord>) {
    let states: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            ServerMessage::PipelineState(s) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(states.len(), 1, "exactly one PIPELINE_STATE: {msgs:?}");
    assert!(
        matches!(msgs.last(), Some(ServerMessage::PipelineState(_))),
        "the state comes last"
    );
    (states[0].state, states[0].error.clone())
}

fn cmd(name: &str) -> Command {
    Command::new(name)
}

#[tokio::test]
async fn open_run_close_counters_back_to_zero() {
    let sim = Simulator::start().await.unwrap();
    let mut d = Driver::create(&sim, PS_URI, 153_600, "2.3").await.unwrap();
    let opened = d.open().await;
    assert!(matches!(opened[0], ServerMessage::SessionCapability(_)));
    assert!(opened.iter().any(
        |m| matches!(m, ServerMessage::ApplicationPrivateData(a) if a.ps_version().is_some())
    ));
    assert_eq!(sim.counters().open_shells, 1);

    let id = d
        .start(
            PowerShell::new(vec![cmd("Write-Output").arg(Argument::positional(
                PsObject::list(
                    ["System.Object[]"],
                    vec![PsValue::I32(1), PsValue::I32(2), PsValue::I32(3)],
                ),
            ))]),
            true,
        )
        .await;
    let msgs = d.collect(&id).await;
    assert_eq!(
        outputs(&msgs),
        [PsValue::I32(1), PsValue::I32(2), PsValue::I32(3)]
    );
    assert_eq!(final_state(&msgs).0, PipelineState::Completed);

    // Get-Date: a DateTime with its DisplayHint.
    let id = d.start(PowerShell::new(vec![cmd("Get-Date")]), true).await;
    let msgs = d.collect(&id).await;
    let out = outputs(&msgs);
    assert_eq!(out.len(), 1);
    let date = out[0].as_object().unwrap();
    assert!(matches!(date.value, Some(PsValue::DateTime(_))), "{date:?}");
    assert!(date.property("DisplayHint").is_some());
    assert_eq!(final_state(&msgs).0, PipelineState::Completed);
    assert_eq!(
        sim.counters().running_commands,
        2,
        "kept until terminate or Delete"
    );

    let (status, _) = d
        .signal(
            &id,
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate",
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(sim.counters().running_commands, 1);
    d.delete().await;
    let c = sim.counters();
    assert_eq!(
        (c.open_shells, c.running_commands, c.receives_pending),
        (0, 0, 0)
    );
}
