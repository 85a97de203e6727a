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
    Argument, Command, CreatePipeline, ErrorCategory, ErrorRecord, InitRunspacePool, PipelineState,
    PowerShell, ProtocolVersion, RunspacePoolState, ServerMessage, SessionCapability,
    end_of_pipeline_input, pipeline_input,
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
    let (status, root, _) = post_len(sim, body).await;
    (status, root)
}

/// [`post`], with the length of the response body.
async fn post_len(sim: &Simulator, body: &str) -> (u16, Element, usize) {
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
    let len = body.len();
    (status, parse(&body).expect("response is not XML"), len)
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
    /// The largest Receive response body seen, and the most streams in one.
    largest_response: usize,
    most_streams: usize,
    /// The OperationTimeout of the requests (a Receive's long poll).
    op_timeout: Duration,
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
            operation_timeout: Some(self.op_timeout),
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
        Driver::create_with(sim, uri, max_envelope, version, InitRunspacePool::new(1, 2)).await
    }

    /// [`Driver::create`] with this INIT_RUNSPACEPOOL.
    async fn create_with(
        sim: &'a Simulator,
        uri: &str,
        max_envelope: u32,
        version: &str,
        init: InitRunspacePool,
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
            largest_response: 0,
            most_streams: 0,
            op_timeout: Duration::from_secs(20),
        };
        let mut caps = SessionCapability::default();
        caps.protocol_version = version.to_string();
        let msgs = [
            d.message(MessageType::SessionCapability, None, &caps.to_value()),
            d.message(MessageType::InitRunspacePool, None, &init.to_value()),
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
        let (status, root, len) = post_len(self.sim, &xml).await;
        assert_eq!(status, 200, "{}", fault_text(&root));
        self.largest_response = self.largest_response.max(len);
        let resp = body(&root).child(SHELL, "ReceiveResponse").unwrap();
        self.most_streams = self
            .most_streams
            .max(resp.children_named(SHELL, "Stream").count());
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
    // SESSION_CAPABILITY (with a nil pool id), APPLICATION_PRIVATE_DATA and
    // RUNSPACEPOOL_STATE Opened, one per Receive (Windows splits them by timing).
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let (msgs, _) = within(10, d.receive(None)).await;
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        kinds.push(msgs[0].message_type);
        match ServerMessage::decode(&msgs[0]).unwrap() {
            ServerMessage::SessionCapability(c) => {
                assert!(msgs[0].runspace_pool_id.is_nil());
                assert_eq!(c.protocol_version, "2.3");
            }
            ServerMessage::ApplicationPrivateData(a) => {
                assert_eq!(msgs[0].runspace_pool_id, d.pool);
                assert!(a.ps_version().is_some());
            }
            ServerMessage::RunspacePoolState(s) => {
                assert_eq!(s.state, RunspacePoolState::Opened);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        kinds,
        [
            MessageType::SessionCapability,
            MessageType::ApplicationPrivateData,
            MessageType::RunspacePoolState
        ]
    );
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

fn errors(msgs: &[ServerMessage]) -> Vec<ErrorRecord> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMessage::Error(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

async fn opened(sim: &Simulator, max_envelope: u32) -> Driver<'_> {
    let mut d = Driver::create(sim, PS_URI, max_envelope, "2.3")
        .await
        .unwrap();
    d.open().await;
    d
}

#[tokio::test]
async fn input_objects_stream_through_a_pipeline() {
    let sim = Simulator::start().await.unwrap();
    let mut d = opened(&sim, 153_600).await;
    let ps = PowerShell::new(vec![
        cmd("Write-Output"),
        cmd("Select-Object").arg(Argument::named("First", 3)),
    ]);
    let id = d.start(ps, false).await;
    let pid = Uuid::parse_str(&id).unwrap();
    let table = PsObject::hashtable(vec![("k".into(), "v".into())]);
    let mut msgs: Vec<Message> = [
        PsValue::from("a"),
        PsValue::I32(2),
        table.into(),
        PsValue::from("dropped by -First 3"),
    ]
    .iter()
    .map(|v| pipeline_input(d.pool, pid, v))
    .collect();
    msgs.push(end_of_pipeline_input(d.pool, pid));
    d.send(&id, &msgs).await;
    let got = d.collect(&id).await;
    let out = outputs(&got);
    assert_eq!(out.len(), 3, "{out:?}");
    assert_eq!(out[..2], [PsValue::from("a"), PsValue::I32(2)]);
    // Input objects come back as Windows writes deserialized objects.
    let t = out[2].as_object().unwrap();
    assert_eq!(t.type_names[0], "Deserialized.System.Collections.Hashtable");
    assert_eq!(final_state(&got).0, PipelineState::Completed);
    d.delete().await;
}

#[tokio::test]
async fn small_envelopes_fragment_both_ways() {
    let sim = Simulator::start().await.unwrap();
    let mut d = opened(&sim, 8_192).await;
    let big_in = "i".repeat(30_000);
    let big_out = "o".repeat(50_000);
    let id = d
        .start(
            PowerShell::new(vec![
                cmd("Write-Output").arg(Argument::positional(big_out.clone())),
            ]),
            false,
        )
        .await;
    let pid = Uuid::parse_str(&id).unwrap();
    let msgs = [
        pipeline_input(d.pool, pid, &PsValue::from(big_in.clone())),
        end_of_pipeline_input(d.pool, pid),
    ];
    // The input message spans several Sends.
    d.send(&id, &msgs).await;
    let got = d.collect(&id).await;
    assert_eq!(
        outputs(&got),
        [PsValue::from(big_out), PsValue::from(big_in)]
    );
    assert!(
        d.largest_response <= 8_192,
        "a Receive response of {} bytes exceeds MaxEnvelopeSize",
        d.largest_response
    );
    assert!(
        d.most_streams >= 2,
        "fragments are packed into one response"
    );
    assert_eq!(final_state(&got).0, PipelineState::Completed);
    d.delete().await;
}

#[tokio::test]
async fn stop_signal_ends_a_pipeline_with_a_receive_pending() {
    let sim = Simulator::start().await.unwrap();
    let mut d = opened(&sim, 153_600).await;
    let id = d
        .start(
            PowerShell::new(vec![Command::script(
                "Write-Output before; Start-Sleep -Seconds 60; Write-Output after",
            )]),
            true,
        )
        .await;
    // The first Receive returns `before`; the next one waits on the sleep.
    let (first, done) = within(10, d.receive(Some(&id))).await;
    assert!(!done);
    let first: Vec<ServerMessage> = first
        .iter()
        .map(|m| ServerMessage::decode(m).unwrap())
        .collect();
    assert_eq!(outputs(&first), [PsValue::from("before")]);
    let d2 = Driver {
        sim: &sim,
        uri: d.uri.clone(),
        shell: d.shell.clone(),
        pool: d.pool,
        max_envelope: d.max_envelope,
        out: Fragmenter::new(1_000),
        inbound: Defragmenter::new(),
        version: d.version,
        largest_response: 0,
        most_streams: 0,
        op_timeout: Duration::from_secs(20),
    };
    let stopper = async {
        while sim.counters().receives_pending == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (status, root) = d2.signal(&id, PS_STOP).await;
        assert_eq!(status, 200, "{}", fault_text(&root));
    };
    let started = std::time::Instant::now();
    let (rest, ()) = tokio::join!(within(10, d.collect(&id)), stopper);
    assert!(started.elapsed() < Duration::from_secs(5));
    let (state, error) = final_state(&rest);
    assert_eq!(state, PipelineState::Stopped);
    assert_eq!(
        error.unwrap().fully_qualified_error_id.as_deref(),
        Some("PipelineStopped")
    );
    assert!(outputs(&rest).is_empty(), "nothing after the stop");
    let c = sim.counters();
    assert_eq!((c.pipeline_stops, c.signals_while_receive_pending), (1, 1));
    assert!(sim.last_pipeline_stop_at().is_some());
    d.delete().await;
    assert_eq!(sim.counters().running_commands, 0);
}

#[tokio::test]
async fn unknown_commands_fail_a_command_and_write_an_error_in_a_script() {
    let sim = Simulator::start().await.unwrap();
    let mut d = opened(&sim, 153_600).await;
    let id = d
        .start(PowerShell::new(vec![cmd("Get-Nothing")]), true)
        .await;
    let got = d.collect(&id).await;
    let (state, error) = final_state(&got);
    assert_eq!(state, PipelineState::Failed);
    let e = error.unwrap();
    assert_eq!(
        e.fully_qualified_error_id.as_deref(),
        Some("CommandNotFoundException")
    );
    assert_eq!(e.category, ErrorCategory::ObjectNotFound);
    assert!(
        e.message
            .starts_with("The term 'Get-Nothing' is not recognized"),
        "{}",
        e.message
    );

    // In a script the error is written and the next statement runs.
    let id = d
        .start(
            PowerShell::new(vec![Command::script("Get-Nothing; Write-Output next")]),
            true,
        )
        .await;
    let got = d.collect(&id).await;
    assert_eq!(outputs(&got), [PsValue::from("next")]);
    let errs = errors(&got);
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].fully_qualified_error_id.as_deref(),
        Some("CommandNotFoundException")
    );
    assert_eq!(final_state(&got).0, PipelineState::Completed);

    // A script the simulator cannot read fails with a ParseException.
    let id = d
        .start(
            PowerShell::new(vec![Command::script("Write-Output (1 + 2)")]),
            true,
        )
        .await;
    let got = d.collect(&id).await;
    let (state, error) = final_state(&got);
    assert_eq!(state, PipelineState::Failed);
    assert_eq!(
        error.unwrap().fully_qualified_error_id.as_deref(),
        Some("ParseException")
    );
    d.delete().await;
}

#[tokio::test]
async fn streams_services_and_json() {
    let sim = Simulator::start().await.unwrap();
    let mut d = opened(&sim, 153_600).await;
    let id = d
        .start(
            PowerShell::new(vec![Command::script(
                "Write-Warning 'careful'; Write-Verbose quiet; Write-Verbose loud -Verbose; Write-Information info; Write-Progress -Activity act -Status half -PercentComplete 50; Write-Error boom; Get-Service -Name WinRM, NoSuchService",
            )]),
            true,
        )
        .await;
    let got = d.collect(&id).await;
    let mut kinds = Vec::new();
    for m in &got {
        match m {
            ServerMessage::Warning(w) => kinds.push(format!("warning {}", w.message)),
            ServerMessage::Verbose(v) => kinds.push(format!("verbose {}", v.message)),
            ServerMessage::Information(i) => {
                kinds.push(format!("information {}", i.message().unwrap_or("?")))
            }
            ServerMessage::Progress(p) => {
                kinds.push(format!("progress {} {}", p.activity, p.percent_complete))
            }
            ServerMessage::Error(e) => kinds.push(format!("error {}", e.message)),
            ServerMessage::Output(v) => kinds.push(format!(
                "output {}",
                v.property("Name").and_then(PsValue::as_str).unwrap_or("?")
            )),
            _ => {}
        }
    }
    assert_eq!(
        kinds,
        [
            "warning careful",
            "verbose loud",
            "information info",
            "progress act 50",
            "error boom",
            "output WinRM",
            "error Cannot find any service with service name 'NoSuchService'.",
        ]
    );
    let svc = outputs(&got)[0].clone();
    let o = svc.as_object().unwrap();
    assert_eq!(o.type_names[0], "System.ServiceProcess.ServiceController");
    assert_eq!(
        o.property("Status")
            .and_then(|s| s.as_object())
            .and_then(|s| s.to_string.clone())
            .as_deref(),
        Some("Running")
    );

    let id = d
        .start(
            PowerShell::new(vec![Command::script(
                "Write-Output 1,'two' | ConvertTo-Json -Compress",
            )]),
            true,
        )
        .await;
    let got = d.collect(&id).await;
    assert_eq!(outputs(&got), [PsValue::from(r#"[1,"two"]"#)]);
    d.delete().await;
}

#[tokio::test]
async fn registered_cmdlets_get_parameters_and_input() {
    let sim = Simulator::start().await.unwrap();
    sim.register_cmdlet("Get-Widget", |ctx: CmdletContext| async move {
        let name = ctx.parameter_str("Name");
        if name.as_deref() == Some("broken") {
            return Err(ErrorRecord::new(
                "The widget is broken.",
                "WidgetBroken",
                ErrorCategory::InvalidOperation,
            ));
        }
        for w in ["gear", "cog"] {
            if name.as_deref().is_none_or(|n| n == w) {
                ctx.write_output(
                    PsObject::new()
                        .with_type_names(["Acme.Widget", "System.Object"])
                        .with_property("Name", w),
                )
                .await;
            }
        }
        Ok(())
    });
    sim.register_cmdlet("Stop-Widget", |mut ctx: CmdletContext| async move {
        let force = ctx.switch("Force");
        while let Some(w) = ctx.next_input().await {
            let name = w
                .property("Name")
                .and_then(PsValue::as_str)
                .unwrap_or("?")
                .to_string();
            ctx.write_output(format!("stopped {name} force={force}"))
                .await;
        }
        Ok(())
    });
    let mut d = opened(&sim, 153_600).await;
    // As pypsrp's add_cmdlet().add_parameter() sends it.
    let id = d
        .start(
            PowerShell::new(vec![
                cmd("get-widget").arg(Argument::named("Name", "gear")),
                cmd("Stop-Widget").arg(Argument::switch("Force")),
            ]),
            true,
        )
        .await;
    let got = d.collect(&id).await;
    assert_eq!(outputs(&got), [PsValue::from("stopped gear force=true")]);
    // As a script.
    let id = d
        .start(
            PowerShell::new(vec![Command::script("Get-Widget | Stop-Widget")]),
            true,
        )
        .await;
    let got = d.collect(&id).await;
    assert_eq!(
        outputs(&got),
        [
            PsValue::from("stopped gear force=false"),
            PsValue::from("stopped cog force=false")
        ]
    );
    // A terminating error fails the pipeline with the cmdlet's record.
    let id = d
        .start(
            PowerShell::new(vec![
                cmd("Get-Widget").arg(Argument::named("Name", "broken")),
            ]),
            true,
        )
        .await;
    let got = d.collect(&id).await;
    let (state, error) = final_state(&got);
    assert_eq!(state, PipelineState::Failed);
    assert_eq!(error.unwrap().message, "The widget is broken.");
    d.delete().await;
}

#[tokio::test]
async fn disconnect_and_reconnect_keep_a_running_pipeline_s_output() {
    let sim = Simulator::start().await.unwrap();
    let mut d = opened(&sim, 153_600).await;
    let id = d
        .start(
            PowerShell::new(vec![Command::script(
                "Start-Sleep -Milliseconds 300; Write-Output after",
            )]),
            true,
        )
        .await;
    let xml = d.request(ns::action::DISCONNECT, true, &[], |w| {
        w.raw("<rsp:Disconnect><rsp:IdleTimeOut>PT60S</rsp:IdleTimeOut></rsp:Disconnect>");
    });
    let (status, root) = post(&sim, &xml).await;
    assert_eq!(status, 200, "{}", fault_text(&root));
    assert_eq!(sim.counters().disconnected_shells, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let xml = d.request(ns::action::RECONNECT, true, &[], |w| {
        w.raw("<rsp:Reconnect/>");
    });
    let (status, root) = post(&sim, &xml).await;
    assert_eq!(status, 200, "{}", fault_text(&root));
    let xml = d.request(ns::action::CONNECT, true, &[], |w| {
        w.raw(&format!("<rsp:Connect CommandId=\"{id}\"/>"));
    });
    let (status, root) = post(&sim, &xml).await;
    assert_eq!(status, 200, "{}", fault_text(&root));
    let got = d.collect(&id).await;
    assert_eq!(outputs(&got), [PsValue::from("after")]);
    assert_eq!(final_state(&got).0, PipelineState::Completed);
    d.delete().await;
    let c = sim.counters();
    assert_eq!(
        (c.open_shells, c.disconnected_shells, c.running_commands),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn another_client_connects_with_connect_xml() {
    let sim = Simulator::start().await.unwrap();
    let d = opened(&sim, 153_600).await;
    let xml = d.request(ns::action::DISCONNECT, true, &[], |w| {
        w.raw("<rsp:Disconnect/>");
    });
    assert_eq!(post(&sim, &xml).await.0, 200);
    // A new client: its own fragmenter, SESSION_CAPABILITY + CONNECT_RUNSPACEPOOL.
    let mut other = Driver {
        sim: &sim,
        uri: d.uri.clone(),
        shell: d.shell.clone(),
        pool: d.pool,
        max_envelope: 153_600,
        out: Fragmenter::new(100_000),
        inbound: Defragmenter::new(),
        version: ProtocolVersion::V2_3,
        largest_response: 0,
        most_streams: 0,
        op_timeout: Duration::from_secs(20),
    };
    let msgs = [
        other.message(
            MessageType::SessionCapability,
            None,
            &SessionCapability::default().to_value(),
        ),
        other.message(
            MessageType::ConnectRunspacePool,
            None,
            &wsman_protocol::psrp::messages::connect_runspace_pool(None),
        ),
    ];
    let payload = other.pack(&msgs).concat();
    let xml = other.request(ns::action::CONNECT, true, &[], |w| {
        w.raw(&format!("<rsp:Connect><connectXml xmlns=\"http://schemas.microsoft.com/powershell\">{payload}</connectXml></rsp:Connect>"));
    });
    let (status, root) = post(&sim, &xml).await;
    assert_eq!(status, 200, "{}", fault_text(&root));
    let text = body(&root)
        .path(&[
            (SHELL, "ConnectResponse"),
            (
                "http://schemas.microsoft.com/powershell",
                "connectResponseXml",
            ),
        ])
        .expect("connectResponseXml")
        .text
        .clone();
    let reply = other
        .inbound
        .push_messages(&Bytes::from(STANDARD.decode(text).unwrap()))
        .unwrap();
    let kinds: Vec<MessageType> = reply.iter().map(|m| m.message_type).collect();
    assert_eq!(
        kinds,
        [
            MessageType::SessionCapability,
            MessageType::RunspacePoolInitData
        ]
    );
    match ServerMessage::decode(&reply[1]).unwrap() {
        ServerMessage::RunspacePoolInitData(i) => {
            assert_eq!((i.min_runspaces, i.max_runspaces), (1, 2))
        }
        other => panic!("{other:?}"),
    }
    let rest = other.open().await;
    assert!(
        rest.iter()
            .any(|m| matches!(m, ServerMessage::ApplicationPrivateData(_)))
    );
    let id = other
        .start(PowerShell::new(vec![cmd("Get-Date")]), true)
        .await;
    assert_eq!(outputs(&other.collect(&id).await).len(), 1);
    other.delete().await;
    assert_eq!(sim.counters().open_shells, 0);
}

#[tokio::test]
async fn configurations_and_protocol_versions() {
    let sim = Simulator::start().await.unwrap();
    let refused = Driver::create(
        &sim,
        "http://schemas.microsoft.com/powershell/Acme.Ops",
        153_600,
        "2.3",
    )
    .await
    .err()
    .expect("an unknown configuration is refused");
    let text = fault_text(&refused);
    assert!(text.contains("2150858811"), "{text}");
    assert!(
        text.contains("The resource URI (http://schemas.microsoft.com/powershell/Acme.Ops) was not found in the WS-Management catalog."),
        "{text}"
    );
    sim.register_ps_configuration("Acme.Ops");
    let mut d = Driver::create(
        &sim,
        "http://schemas.microsoft.com/powershell/Acme.Ops",
        153_600,
        "2.3",
    )
    .await
    .unwrap();
    d.open().await;
    d.delete().await;

    // A 2.1 client: the server answers 2.1, and the information stream does not exist.
    let mut d = Driver::create(&sim, PS_URI, 153_600, "2.1").await.unwrap();
    let opened = d.open().await;
    match &opened[0] {
        ServerMessage::SessionCapability(c) => assert_eq!(c.protocol_version, "2.1"),
        other => panic!("{other:?}"),
    }
    assert_eq!(d.version, ProtocolVersion::V2_1);
    let id = d
        .start(
            PowerShell::new(vec![Command::script(
                "Write-Information hidden; Write-Output shown",
            )]),
            true,
        )
        .await;
    let got = d.collect(&id).await;
    assert_eq!(outputs(&got), [PsValue::from("shown")]);
    assert!(
        !got.iter()
            .any(|m| matches!(m, ServerMessage::Information(_)))
    );
    d.delete().await;
}

#[tokio::test]
async fn runspace_counts_are_answered() {
    let sim = Simulator::start().await.unwrap();
    let mut d = opened(&sim, 153_600).await;
    let msgs = [
        d.message(
            MessageType::SetMaxRunspaces,
            None,
            &wsman_protocol::psrp::messages::set_max_runspaces(5, 1),
        ),
        d.message(
            MessageType::GetAvailableRunspaces,
            None,
            &wsman_protocol::psrp::messages::get_available_runspaces(2),
        ),
    ];
    for p in d.pack(&msgs) {
        d.send_raw(None, &p).await;
    }
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let (msgs, _) = within(10, d.receive(None)).await;
        for m in msgs {
            if let ServerMessage::RunspaceAvailability(a) = ServerMessage::decode(&m).unwrap() {
                answers.push((a.call_id, a.response));
            }
        }
    }
    assert_eq!(answers, [(1, PsValue::Bool(true)), (2, PsValue::I64(5))]);
    d.delete().await;
}

#[tokio::test]
async fn read_host_calls_the_client_s_host() {
    use wsman_protocol::psrp::messages::{HostInfo, HostMethod, HostResponse};
    let sim = Simulator::start().await.unwrap();
    let mut d = opened(&sim, 153_600).await;
    // Without a host: PowerShell's NonInteractive error.
    let id = d.start(PowerShell::new(vec![cmd("Read-Host")]), true).await;
    let got = d.collect(&id).await;
    let (state, error) = final_state(&got);
    assert_eq!(state, PipelineState::Failed);
    assert!(error.unwrap().message.contains("NonInteractive mode"));

    // With a host: Write1 (the prompt), then ReadLine answered by the client.
    let pid = Uuid::new_v4();
    let mut create = CreatePipeline::new(PowerShell::new(vec![
        cmd("Read-Host").arg(Argument::named("Prompt", "Name")),
    ]));
    let mut host = HostInfo::without_ui();
    host.is_host_ui_null = false;
    host.is_host_raw_ui_null = false;
    create.host_info = host;
    let msg = d.message(
        MessageType::CreatePipeline,
        Some(pid),
        &create.to_value(d.version),
    );
    let payload = d.pack(&[msg]).concat();
    let id = pid.hyphenated().to_string().to_ascii_uppercase();
    let xml = d.request(ns::action::COMMAND, true, &[], |w| {
        w.raw(&format!("<rsp:CommandLine CommandId=\"{id}\"><rsp:Command/><rsp:Arguments>{payload}</rsp:Arguments></rsp:CommandLine>"));
    });
    assert_eq!(post(&sim, &xml).await.0, 200);
    let mut calls = Vec::new();
    let mut all = Vec::new();
    loop {
        let (msgs, done) = within(10, d.receive(Some(&id))).await;
        for m in msgs {
            let decoded = ServerMessage::decode(&m).unwrap();
            if let ServerMessage::HostCall(call) = &decoded {
                calls.push((call.method, call.parameters.clone()));
                if call.method == HostMethod::ReadLine {
                    assert_eq!(m.message_type, MessageType::PipelineHostCall);
                    let r = HostResponse::returning(call, PsValue::from("Ada"));
                    let reply =
                        d.message(MessageType::PipelineHostResponse, Some(pid), &r.to_value());
                    for p in d.pack(&[reply]) {
                        d.send_raw(None, &p).await;
                    }
                }
            }
            all.push(decoded);
        }
        if done {
            break;
        }
    }
    assert_eq!(
        calls,
        [
            (HostMethod::Write1, vec![PsValue::from("Name: ")]),
            (HostMethod::ReadLine, vec![]),
        ]
    );
    assert_eq!(outputs(&all), [PsValue::from("Ada")]);
    assert_eq!(final_state(&all).0, PipelineState::Completed);
    d.delete().await;
}

#[tokio::test]
async fn a_stop_sent_to_the_pool_stops_its_pipelines() {
    let sim = Simulator::start().await.unwrap();
    let mut d = opened(&sim, 153_600).await;
    let sleep = || PowerShell::new(vec![cmd("Start-Sleep").arg(Argument::named("Seconds", 60))]);
    let a = d.start(sleep(), true).await;
    let b = d.start(sleep(), true).await;
    // No CommandId: [MS-PSRP] §3.1.5.3.9's signal to the RunspacePool.
    let xml = d.request(ns::action::SIGNAL, true, &[], |w| {
        w.raw(&format!(
            "<rsp:Signal><rsp:Code>{PS_STOP}</rsp:Code></rsp:Signal>"
        ));
    });
    let (status, root) = post(&sim, &xml).await;
    assert_eq!(status, 200, "{}", fault_text(&root));
    for id in [a, b] {
        let got = d.collect(&id).await;
        assert_eq!(final_state(&got).0, PipelineState::Stopped);
    }
    assert_eq!(sim.counters().pipeline_stops, 1);
    d.delete().await;
}

#[tokio::test]
async fn command_metadata_items_and_processes() {
    let sim = Simulator::start().await.unwrap();
    sim.register_cmdlet("Get-Widget", |_ctx: CmdletContext| async move { Ok(()) });
    sim.register_file("C:\\data\\report.txt", "12345");
    let mut d = opened(&sim, 153_600).await;

    // GET_COMMAND_METADATA instead of CREATE_PIPELINE in the Command.
    let pid = Uuid::new_v4();
    let names: PsValue = PsObject::list(
        ["System.String[]", "System.Array", "System.Object"],
        vec!["Get-S*".into(), "get-widget".into()],
    )
    .into();
    let request = PsObject::new()
        .with_property("Name", names)
        .with_property("CommandType", PsValue::I32(511))
        .with_property("Namespace", PsValue::Null)
        .with_property("ArgumentList", PsValue::Null);
    let msg = d.message(MessageType::GetCommandMetadata, Some(pid), &request.into());
    let payload = d.pack(&[msg]).concat();
    let id = pid.hyphenated().to_string().to_ascii_uppercase();
    let xml = d.request(ns::action::COMMAND, true, &[], |w| {
        w.raw(&format!("<rsp:CommandLine CommandId=\"{id}\"><rsp:Command/><rsp:Arguments>{payload}</rsp:Arguments></rsp:CommandLine>"));
    });
    assert_eq!(post(&sim, &xml).await.0, 200);
    let got = d.collect(&id).await;
    let out = outputs(&got);
    assert_eq!(out[0].property("Count"), Some(&PsValue::I32(2)));
    let names: Vec<&str> = out[1..]
        .iter()
        .map(|o| o.property("Name").and_then(PsValue::as_str).unwrap())
        .collect();
    assert_eq!(names, ["Get-Service", "Get-Widget"]);
    assert_eq!(final_state(&got).0, PipelineState::Completed);

    // Get-Item of a registered file, and of a missing one.
    let id = d
        .start(
            PowerShell::new(vec![Command::script(
                "Get-Item C:\\data\\report.txt, C:\\missing.txt",
            )]),
            true,
        )
        .await;
    let got = d.collect(&id).await;
    let out = outputs(&got);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].property("Length"), Some(&PsValue::I64(5)));
    assert_eq!(
        out[0].property("Name").and_then(PsValue::as_str),
        Some("report.txt")
    );
    let errs = errors(&got);
    assert_eq!(
        errs[0].fully_qualified_error_id.as_deref(),
        Some("PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand")
    );

    // Get-Process: System.Diagnostics.Process objects from the simulated process table.
    let id = d
        .start(
            PowerShell::new(vec![
                cmd("Get-Process"),
                cmd("Select-Object").arg(Argument::named("First", 2)),
            ]),
            true,
        )
        .await;
    let got = d.collect(&id).await;
    let out = outputs(&got);
    assert_eq!(out.len(), 2);
    let p = out[0].as_object().unwrap();
    assert_eq!(p.type_names[0], "System.Diagnostics.Process");
    assert!(p.property("Id").and_then(PsValue::as_i64).is_some());
    assert!(
        p.property("ProcessName")
            .and_then(PsValue::as_str)
            .is_some()
    );
    d.delete().await;
}

#[tokio::test]
async fn pipelines_wait_for_a_free_runspace() {
    let sim = Simulator::start().await.unwrap();
    // The driver's pools have max 2 runspaces; make it 1.
    let mut d = opened(&sim, 153_600).await;
    let msgs = [d.message(
        MessageType::SetMaxRunspaces,
        None,
        &wsman_protocol::psrp::messages::set_max_runspaces(1, 1),
    )];
    for p in d.pack(&msgs) {
        d.send_raw(None, &p).await;
    }
    let a = d
        .start(
            PowerShell::new(vec![cmd("Start-Sleep").arg(Argument::named("Seconds", 60))]),
            true,
        )
        .await;
    let b = d
        .start(
            PowerShell::new(vec![cmd("Write-Output").arg(Argument::positional("b"))]),
            true,
        )
        .await;
    let msgs = [d.message(
        MessageType::GetAvailableRunspaces,
        None,
        &wsman_protocol::psrp::messages::get_available_runspaces(2),
    )];
    for p in d.pack(&msgs) {
        d.send_raw(None, &p).await;
    }
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let (msgs, _) = within(10, d.receive(None)).await;
        for m in msgs {
            if let ServerMessage::RunspaceAvailability(a) = ServerMessage::decode(&m).unwrap() {
                answers.push((a.call_id, a.response));
            }
        }
    }
    assert_eq!(answers, [(1, PsValue::Bool(true)), (2, PsValue::I64(0))]);
    // b is queued behind a: a Receive on it times out with nothing.
    d.op_timeout = Duration::from_millis(500);
    let xml = d.request(ns::action::RECEIVE, true, &[], |w| {
        w.raw(&format!(
            "<rsp:Receive><rsp:DesiredStream CommandId=\"{b}\">stdout</rsp:DesiredStream></rsp:Receive>"
        ));
    });
    let (status, root) = post(&sim, &xml).await;
    assert_eq!(
        status,
        500,
        "b ran without a runspace: {}",
        fault_text(&root)
    );
    assert!(fault_text(&root).contains("TimedOut"));
    d.op_timeout = Duration::from_secs(20);
    let (status, _) = d.signal(&a, PS_STOP).await;
    assert_eq!(status, 200);
    assert_eq!(final_state(&d.collect(&a).await).0, PipelineState::Stopped);
    let got = d.collect(&b).await;
    assert_eq!(outputs(&got), [PsValue::from("b")]);
    d.delete().await;
}

/// A small deterministic generator (splitmix64) for the mutation test.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Truncated, bit-flipped and random fragments in Command and Send: every request gets
/// a response (a reply or a fault), and the pool still runs pipelines afterwards.
#[tokio::test]
async fn mutated_fragments_get_faults_not_panics() {
    let sim = Simulator::start().await.unwrap();
    let d = opened(&sim, 153_600).await;
    let mut rng = Mix(7);
    let pid = Uuid::new_v4();
    let create = CreatePipeline::new(PowerShell::new(vec![Command::script(
        "Write-Output 1 | Select-Object -First 1",
    )]));
    let good = d
        .out
        .clone()
        .pack(&[d.message(
            MessageType::CreatePipeline,
            Some(pid),
            &create.to_value(d.version),
        )])
        .concat();
    for round in 0..60 {
        let mut bytes = good.clone();
        match round % 3 {
            0 => bytes.truncate((rng.next() as usize) % bytes.len()),
            1 => {
                for _ in 0..1 + rng.next() % 8 {
                    let i = (rng.next() as usize) % bytes.len();
                    bytes[i] ^= 1 << (rng.next() % 8);
                }
            }
            _ => bytes = (0..rng.next() % 300).map(|_| rng.next() as u8).collect(),
        }
        let payload = STANDARD.encode(&bytes);
        let id = Uuid::new_v4().hyphenated().to_string().to_ascii_uppercase();
        let xml = d.request(ns::action::COMMAND, true, &[], |w| {
            w.raw(&format!("<rsp:CommandLine CommandId=\"{id}\"><rsp:Command/><rsp:Arguments>{payload}</rsp:Arguments></rsp:CommandLine>"));
        });
        let (status, _) = within(10, post(&sim, &xml)).await;
        assert!(
            status == 200 || status == 500,
            "round {round}: HTTP {status}"
        );
        let xml = d.request(ns::action::SEND, true, &[], |w| {
            w.raw(&format!(
                "<rsp:Send><rsp:Stream Name=\"stdin\" CommandId=\"{id}\">{payload}</rsp:Stream></rsp:Send>"
            ));
        });
        let (status, _) = within(10, post(&sim, &xml)).await;
        assert!(
            status == 200 || status == 500,
            "round {round}: HTTP {status}"
        );
    }
    // A mutated Create is refused too.
    let xml = d.request(ns::action::CREATE, false, &[], |w| {
        w.raw("<rsp:Shell><creationXml xmlns=\"http://schemas.microsoft.com/powershell\">AAAAAAAAAAEAAAAAAAAAAAMAAADH</creationXml></rsp:Shell>");
    });
    assert_eq!(post(&sim, &xml).await.0, 500);
    // The simulator still serves pools.
    d.delete().await;
    let mut d = opened(&sim, 153_600).await;
    let id = d.start(PowerShell::new(vec![cmd("Get-Date")]), true).await;
    assert_eq!(
        final_state(&d.collect(&id).await).0,
        PipelineState::Completed
    );
    d.delete().await;
    assert_eq!(sim.counters().open_shells, 0);
}

#[tokio::test]
async fn cmdlets_see_the_pool_s_application_arguments() {
    let sim = Simulator::start().await.unwrap();
    sim.register_cmdlet("Get-Ticket", |ctx: CmdletContext| async move {
        let t = ctx
            .application_argument("ticket")
            .cloned()
            .unwrap_or(PsValue::Null);
        ctx.write_output(t).await;
        ctx.write_output(ctx.user().to_string()).await;
        Ok(())
    });
    let mut init = InitRunspacePool::new(1, 1);
    init.application_arguments = Some(vec![("Ticket".into(), PsValue::I32(42))]);
    let mut d = Driver::create_with(&sim, PS_URI, 153_600, "2.3", init)
        .await
        .unwrap();
    d.open().await;
    let id = d
        .start(PowerShell::new(vec![cmd("Get-Ticket")]), true)
        .await;
    let got = d.collect(&id).await;
    assert_eq!(outputs(&got), [PsValue::I32(42), PsValue::from(sim.user())]);
    d.delete().await;
}
