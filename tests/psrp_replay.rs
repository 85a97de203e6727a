//! Replay conformance for the PowerShell Remoting client (issue 14): the real `Client`
//! opens runspace pools and runs pipelines against a server that answers with what
//! Windows answered pypsrp (`fixtures/psrp/`). Each captured request must be equivalent
//! to the recorded one (`support/compare.rs`), PSRP payloads compared as decoded
//! messages, up to the intended differences of `support/psrp_differences.rs`; the
//! recorded responses must come out as the recorded objects, records and states.

#[path = "support/compare.rs"]
mod compare;
#[path = "support/mini_http.rs"]
mod mini_http;
#[path = "support/psrp_differences.rs"]
mod psrp_differences;
#[path = "support/recorded.rs"]
mod recorded;
#[path = "support/replay_server.rs"]
mod replay_server;
#[path = "support/winrs_differences.rs"]
mod winrs_differences;

use std::time::Duration;

use compare::Allowance;
use futures_util::StreamExt as _;
use psrp_differences::*;
use replay_server::{Replay, steps_of};
use tokio_winrm::psrp::{
    ErrorCategory, ErrorRecord, HostCall, HostMethod, NotInteractive, PipelineEnd, PsEvent, PsHost,
    PsObject, PsValue, RunspacePool,
};
use winrs_differences::BOOL_OPTION_CASE;
use wsman_protocol::psrp::messages::{HostResponse, PipelineState, PipelineStateInfo};
use wsman_protocol::psrp::{Collection, Destination, Fragmenter, Message, MessageType};

const PT20S: Duration = Duration::from_secs(20);

/// What every PSRP replay grants.
const COMMON: &[&Allowance] = &[
    &PSRP_PAYLOADS_RECORDED,
    &PSRP_PAYLOADS_OURS,
    &PSRP_IDS_RECORDED,
    &PSRP_IDS_OURS,
    &BOOL_OPTION_CASE,
];

fn allowances(extra: &[&'static Allowance]) -> Vec<&'static Allowance> {
    COMMON
        .iter()
        .copied()
        .chain(extra.iter().copied())
        .collect()
}

async fn open(replay: &Replay, b: tokio_winrm::psrp::RunspacePoolBuilder) -> RunspacePool {
    replay.within("open", b.open()).await.expect("open")
}

async fn events(replay: &Replay, p: tokio_winrm::psrp::Pipeline) -> Vec<PsEvent> {
    replay
        .within("pipeline", p.collect::<Vec<_>>())
        .await
        .into_iter()
        .map(|e| e.expect("event"))
        .collect()
}

/// A replay of `rec` granting the common allowances and the raised MaxEnvelopeSize.
async fn start_raised(rec: &recorded::Recording) -> Replay {
    Replay::start(
        rec,
        steps_of(rec, &allowances(&[&MAX_ENVELOPE_SIZE_RAISED])),
    )
    .await
}

/// Closes the pool, waits for the client's background work, and checks the replay.
async fn close_and_finish(replay: &Replay, pool: RunspacePool, c: &tokio_winrm::Client) {
    replay.within("close", pool.close()).await.expect("close");
    replay.within("shutdown", c.shutdown()).await;
    replay.finish();
}

fn outputs(evs: &[PsEvent]) -> Vec<PsValue> {
    evs.iter()
        .filter_map(|e| match e {
            PsEvent::Output(v) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

fn last_state(evs: &[PsEvent]) -> &PipelineEnd {
    let states: Vec<_> = evs
        .iter()
        .filter(|e| matches!(e, PsEvent::State(_)))
        .collect();
    assert_eq!(states.len(), 1, "exactly one final state: {evs:?}");
    match evs.last() {
        Some(PsEvent::State(s)) => s,
        other => panic!("the last event is not the state: {other:?}"),
    }
}

#[tokio::test]
async fn open_runspace_reports_version_and_private_data_then_closes() {
    let rec = recorded::load_psrp("test_psrp_open_runspace");
    let replay = start_raised(&rec).await;
    let c = replay.client(PT20S);
    let pool = open(&replay, c.runspace_pool()).await;
    assert_eq!(pool.protocol_version().to_string(), "2.3");
    let data = pool.application_private_data().expect("private data");
    assert!(data.get("PSVersionTable").is_some(), "{data:?}");
    assert_eq!(pool.max_runspaces(), 1);
    // Builder mistakes fail before anything is sent (the replay has no step for them).
    let e = pool
        .pipeline()
        .param("Name", "x")
        .command("Get-Service")
        .start()
        .await;
    assert!(
        matches!(e, Err(tokio_winrm::Error::State(ref m)) if m.contains("command first")),
        "{e:?}"
    );
    let e = pool.pipeline().statement().start().await;
    assert!(matches!(e, Err(tokio_winrm::Error::State(_))), "{e:?}");
    close_and_finish(&replay, pool, &c).await;
}

#[tokio::test]
async fn input_objects_stream_through_a_script_with_debug_records() {
    let rec = recorded::load_psrp("test_psrp_with_input");
    let replay = start_raised(&rec).await;
    let c = replay.client(PT20S);
    let pool = open(&replay, c.runspace_pool()).await;
    let hashtable: PsValue = PsObject::new()
        .with_type_names(["System.Collections.Hashtable", "System.Object"])
        .with_collection(Collection::Dictionary(vec![("a".into(), "b".into())]))
        .into();
    let list: PsValue = PsObject::list(
        ["System.Object[]", "System.Array", "System.Object"],
        vec!["a".into(), "b".into()],
    )
    .into();
    let script = "begin {\n                $DebugPreference = 'Continue'\n                Write-Debug \"Start Block\"\n            }\n            process {\n                $input\n            }\n            end {\n                Write-Debug \"End Block\"\n            }";
    let p = replay
        .within(
            "start",
            pool.pipeline()
                .script(script)
                .input([PsValue::from("1"), PsValue::from(2), hashtable, list])
                .start(),
        )
        .await
        .expect("start");
    let evs = events(&replay, p).await;
    let out = outputs(&evs);
    assert_eq!(out.len(), 4, "{evs:?}");
    assert_eq!(out[0].as_str(), Some("1"));
    assert_eq!(out[1].as_i64(), Some(2));
    let debug: Vec<&str> = evs
        .iter()
        .filter_map(|e| match e {
            PsEvent::Debug(r) => Some(r.message.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(debug, ["Start Block", "End Block"]);
    assert!(evs.iter().any(|e| matches!(e, PsEvent::Progress(_))));
    assert_eq!(last_state(&evs), &PipelineEnd::Completed);
    close_and_finish(&replay, pool, &c).await;
}

#[tokio::test]
async fn application_arguments_reach_the_session() {
    let rec = recorded::load_psrp("test_psrp_application_args");
    let replay = start_raised(&rec).await;
    let c = replay.client(PT20S);
    let pool = open(
        &replay,
        c.runspace_pool()
            .application_argument("test_var", "abcdef12345"),
    )
    .await;
    let inv = replay
        .within(
            "invoke",
            pool.pipeline()
                .script("$PSSenderInfo.ApplicationArguments")
                .invoke(),
        )
        .await
        .expect("invoke");
    assert_eq!(inv.output.len(), 1, "{inv:?}");
    let args = inv.output[0].as_object().expect("a dictionary");
    let found = format!("{args:?}");
    assert!(found.contains("abcdef12345"), "{found}");
    close_and_finish(&replay, pool, &c).await;
}

#[tokio::test]
async fn void_host_calls_get_no_answer_and_output_arrives() {
    let rec = recorded::load_psrp("test_psrp_pshost_methods");
    let replay = start_raised(&rec).await;
    let c = replay.client(PT20S);
    let pool = open(&replay, c.runspace_pool()).await;
    let p = replay
        .within(
            "start",
            pool.pipeline()
                .script("$host.CurrentCulture; $host.SetShouldExit(1)")
                .start(),
        )
        .await
        .expect("start");
    let evs = events(&replay, p).await;
    let out = outputs(&evs);
    assert_eq!(out.len(), 1, "{evs:?}");
    assert_eq!(
        out[0]
            .as_object()
            .and_then(|o| o.property("Name"))
            .and_then(PsValue::as_str),
        Some("en-US")
    );
    assert_eq!(last_state(&evs), &PipelineEnd::Completed);
    close_and_finish(&replay, pool, &c).await;
}

#[tokio::test]
async fn a_terminating_error_is_a_failed_state_with_its_record() {
    let rec = recorded::load_psrp("test_client_execute_ps_failure");
    let replay = start_raised(&rec).await;
    let c = replay.client(PT20S);
    let pool = open(&replay, c.runspace_pool()).await;
    let err = replay
        .within(
            "invoke",
            pool.pipeline()
                .command("Invoke-Expression")
                .param("Command", "Get-ServiceTypo -Name winrm")
                .command("Out-String")
                .switch("Stream")
                .invoke(),
        )
        .await
        .expect_err("the pipeline failed");
    match &err {
        tokio_winrm::Error::PipelineFailed { error } => {
            assert!(
                error
                    .message
                    .contains("'Get-ServiceTypo' is not recognized"),
                "{error:?}"
            );
            assert_eq!(
                error.fully_qualified_error_id.as_deref(),
                Some(
                    "CommandNotFoundException,Microsoft.PowerShell.Commands.InvokeExpressionCommand"
                )
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("Get-ServiceTypo"), "{err}");
    close_and_finish(&replay, pool, &c).await;
}

#[tokio::test]
async fn a_2_1_server_gets_the_2_1_pipeline_and_merged_errors_come_as_output() {
    let rec = recorded::load_psrp("test_psrp_run_protocol_version_2.1");
    let replay = Replay::start(&rec, steps_of(&rec, COMMON)).await;
    let c = replay.client(PT20S);
    let pool = open(&replay, c.runspace_pool()).await;
    assert_eq!(pool.protocol_version().to_string(), "2.1");
    let script = "begin {\n    $DebugPreference = 'Continue'\n    Write-Debug \"Start Block\"\n    Write-Error \"error\"\n}\nprocess {\n    $input\n}\nend {\n    Write-Debug \"End Block\"\n}";
    let list: PsValue = PsObject::list(
        ["System.Object[]", "System.Array", "System.Object"],
        vec!["3".into(), 3.into()],
    )
    .into();
    let inv = replay
        .within(
            "invoke",
            pool.pipeline()
                .script(script)
                .merge_error_to_output()
                .input([PsValue::from("message 1"), PsValue::from(2), list])
                .invoke(),
        )
        .await
        .expect("invoke");
    assert_eq!(inv.output.len(), 4, "{inv:?}");
    assert!(
        tokio_winrm::psrp::ErrorRecord::from_value(&inv.output[0])
            .is_ok_and(|e| e.message == "error"),
        "the merged error record comes first: {:?}",
        inv.output[0]
    );
    assert_eq!(inv.output[1].as_str(), Some("message 1"));
    assert_eq!(inv.debug.len(), 2);
    assert!(inv.errors.is_empty());
    close_and_finish(&replay, pool, &c).await;
}

/// A recorded ReceiveResponse with its body replaced: `messages` (to the client) as
/// `stdout` streams of `command_id`, and the command still running.
fn receive_response_with(recorded: &str, command_id: &str, messages: &[Message]) -> String {
    use base64::Engine as _;
    let mut out = Fragmenter::new(32_000);
    let streams: String = out
        .pack(messages)
        .iter()
        .map(|p| {
            format!(
                r#"<rsp:Stream Name="stdout" CommandId="{command_id}">{}</rsp:Stream>"#,
                base64::engine::general_purpose::STANDARD.encode(p)
            )
        })
        .collect();
    let (head, _) = recorded.split_once("<s:Body>").expect("a body");
    format!(
        r#"{head}<s:Body><rsp:ReceiveResponse>{streams}<rsp:CommandState CommandId="{command_id}" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"></rsp:CommandState></rsp:ReceiveResponse></s:Body></s:Envelope>"#
    )
}

#[tokio::test]
async fn cancel_abandons_the_receive_signals_stop_at_once_and_delivers_what_arrived() {
    let rec = recorded::load_psrp("test_psrp_pshost_methods");
    let granted = allowances(&[&MAX_ENVELOPE_SIZE_RAISED]);
    let mut steps = steps_of(&rec, &granted);
    // 0 Create, 1-2 Receive (open), 3 Command, 4 Receive, 5 Delete.
    let delete = steps.pop().expect("Delete");
    let receive = &mut steps[4];
    let command_id = {
        let root = wsman_protocol::xml::parse(receive.recorded_request.as_bytes()).unwrap();
        let body = root.child(wsman_protocol::ns::SOAP, "Body").unwrap();
        let r = body.child(wsman_protocol::ns::SHELL, "Receive").unwrap();
        r.child(wsman_protocol::ns::SHELL, "DesiredStream")
            .and_then(|d| d.attr("CommandId"))
            .unwrap()
            .to_string()
    };
    let (pool_id, pipeline_id) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let sent: Vec<Message> = (1..=3)
        .map(|n| {
            Message::from_value(
                Destination::Client,
                MessageType::PipelineOutput,
                pool_id,
                Some(pipeline_id),
                &PsValue::from(n),
            )
        })
        .collect();
    receive.response = receive_response_with(&receive.response, &command_id, &sent);
    let held = replay_server::Step {
        label: "held pipeline Receive".into(),
        hold: true,
        ..clone_step(&steps[4])
    };
    let signal_request = steps[4]
        .recorded_request
        .replace(
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive<",
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal<",
        )
        .replace(
            r#"<wsman:OptionSet s:mustUnderstand="true"><wsman:Option Name="WSMAN_CMDSHELL_OPTION_KEEPALIVE">True</wsman:Option></wsman:OptionSet>"#,
            "",
        );
    let signal_request = {
        let (head, _) = signal_request.split_once("<s:Body>").unwrap();
        format!(
            r#"{head}<s:Body><rsp:Signal CommandId="{command_id}"><rsp:Code>powershell/signal/crtl_c</rsp:Code></rsp:Signal></s:Body></s:Envelope>"#
        )
    };
    let signal_response = {
        let (head, _) = steps[4].response.split_once("<s:Body>").unwrap();
        format!("{head}<s:Body><rsp:SignalResponse/></s:Body></s:Envelope>")
    };
    let signal = replay_server::Step {
        label: "stop signal".into(),
        action: "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal".into(),
        recorded_request: signal_request,
        response: signal_response,
        ..clone_step(&steps[4])
    };
    steps.extend([held, signal, delete]);
    let replay = Replay::start(&rec, steps).await;
    let c = replay.client(PT20S);
    let pool = open(&replay, c.runspace_pool()).await;
    let p = replay
        .within(
            "start",
            pool.pipeline()
                .script("$host.CurrentCulture; $host.SetShouldExit(1)")
                .start(),
        )
        .await
        .expect("start");
    // The second Receive is in flight: the three outputs are buffered, unread.
    replay.requested(5).await;
    p.cancel();
    // The stop signal goes out while the Receive is still pending (never answered).
    replay.requested(6).await;
    let evs = events(&replay, p).await;
    let values: Vec<i64> = outputs(&evs).iter().filter_map(PsValue::as_i64).collect();
    assert_eq!(values, [1, 2, 3], "{evs:?}");
    assert_eq!(
        last_state(&evs),
        &PipelineEnd::Stopped {
            reason: Some(tokio_winrm::CancelReason::User)
        }
    );
    close_and_finish(&replay, pool, &c).await;
}

fn clone_step(s: &replay_server::Step) -> replay_server::Step {
    replay_server::Step {
        label: s.label.clone(),
        action: s.action.clone(),
        recorded_request: s.recorded_request.clone(),
        status: s.status,
        response: s.response.clone(),
        hold: s.hold,
        allowances: s.allowances.clone(),
    }
}

/// A step made from `base` (a recorded pipeline Receive) with another action and body.
fn crafted(
    base: &replay_server::Step,
    label: &str,
    action: &str,
    body: &str,
    response_body: &str,
) -> replay_server::Step {
    let request = base
        .recorded_request
        .replace(
            "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive<",
            &format!("{action}<"),
        )
        .replace(
            r#"<wsman:OptionSet s:mustUnderstand="true"><wsman:Option Name="WSMAN_CMDSHELL_OPTION_KEEPALIVE">True</wsman:Option></wsman:OptionSet>"#,
            "",
        );
    let (head, _) = request.split_once("<s:Body>").unwrap();
    let (rhead, _) = base.response.split_once("<s:Body>").unwrap();
    replay_server::Step {
        label: label.into(),
        action: action.into(),
        recorded_request: format!("{head}<s:Body>{body}</s:Body></s:Envelope>"),
        response: format!("{rhead}<s:Body>{response_body}</s:Body></s:Envelope>"),
        ..clone_step(base)
    }
}

/// The pshost_methods recording with the pipeline's Receive answered by a ReadLine host
/// call, then (after the host response the test expects on `pr`) a Receive answered with
/// `then`; returns the steps and the host call.
fn host_call_script(
    expected_answer: impl FnOnce(&HostCall) -> HostResponse,
    then: &[Message],
) -> (recorded::Recording, Vec<replay_server::Step>) {
    use base64::Engine as _;
    let rec = recorded::load_psrp("test_psrp_pshost_methods");
    let mut steps = steps_of(&rec, &allowances(&[&MAX_ENVELOPE_SIZE_RAISED]));
    let delete = steps.pop().expect("Delete");
    let command_id = "58955C51-F72D-43D9-A2B8-DEEEA3B64869";
    let (pool_id, pipeline_id) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let call = HostCall::new(1, HostMethod::ReadLine, Vec::new());
    let call_msg = Message::from_value(
        Destination::Client,
        MessageType::PipelineHostCall,
        pool_id,
        Some(pipeline_id),
        &call.to_value(),
    );
    let base = clone_step(&steps[4]);
    steps[4].response = receive_response_with(&base.response, command_id, &[call_msg]);
    // What this client must send: objects 1-2 opened the pool, 3 created the pipeline.
    let mut out = Fragmenter::new(32_000);
    out.pack(&[
        call_msg_placeholder(),
        call_msg_placeholder(),
        call_msg_placeholder(),
    ]);
    let answer = Message::from_value(
        Destination::Server,
        MessageType::PipelineHostResponse,
        pool_id,
        Some(pipeline_id),
        &expected_answer(&call).to_value(),
    );
    let payload = base64::engine::general_purpose::STANDARD.encode(&out.pack(&[answer])[0]);
    steps.push(crafted(
        &base,
        "host response on pr",
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send",
        &format!(r#"<rsp:Send><rsp:Stream Name="pr">{payload}</rsp:Stream></rsp:Send>"#),
        "<rsp:SendResponse/>",
    ));
    let mut last = clone_step(&base);
    last.label = "Receive after the host response".into();
    last.response = receive_response_with(&base.response, command_id, then);
    steps.push(last);
    steps.push(delete);
    (rec, steps)
}

/// The script of the pshost_methods recording; the crafted answers make it act as
/// `Read-Host` would.
const RECORDED_SCRIPT: &str = "$host.CurrentCulture; $host.SetShouldExit(1)";

fn call_msg_placeholder() -> Message {
    Message::new(
        Destination::Server,
        MessageType::PipelineInput,
        uuid::Uuid::nil(),
        None,
        bytes::Bytes::new(),
    )
}

fn state_message(state: PipelineStateInfo) -> Message {
    Message::from_value(
        Destination::Client,
        MessageType::PipelineState,
        uuid::Uuid::new_v4(),
        Some(uuid::Uuid::new_v4()),
        &state.to_value(),
    )
}

#[tokio::test]
async fn read_host_gets_a_not_interactive_error_at_once() {
    let mut failed = PipelineStateInfo::new(PipelineState::Failed);
    failed.error = Some(ErrorRecord::new(
        "The host is not interactive",
        "HostNotInteractive",
        ErrorCategory::NotImplemented,
    ));
    let (rec, steps) = host_call_script(
        |call| HostResponse::failing(call, &NotInteractive::error(call)),
        &[state_message(failed)],
    );
    let replay = Replay::start(&rec, steps).await;
    let c = replay.client(PT20S);
    let pool = open(&replay, c.runspace_pool()).await;
    let err = replay
        .within("invoke", pool.pipeline().script(RECORDED_SCRIPT).invoke())
        .await
        .expect_err("Read-Host fails");
    assert!(
        matches!(&err, tokio_winrm::Error::PipelineFailed { error } if error.message.contains("not interactive")),
        "{err:?}"
    );
    close_and_finish(&replay, pool, &c).await;
}

#[tokio::test]
async fn an_installed_host_answers_read_host() {
    struct Answers;
    impl PsHost for Answers {
        fn call(&self, call: &HostCall) -> Result<PsValue, Box<ErrorRecord>> {
            assert_eq!(call.method, HostMethod::ReadLine);
            Ok("typed by the host".into())
        }
    }
    let echoed = Message::from_value(
        Destination::Client,
        MessageType::PipelineOutput,
        uuid::Uuid::new_v4(),
        Some(uuid::Uuid::new_v4()),
        &PsValue::from("typed by the host"),
    );
    let (rec, steps) = host_call_script(
        |call| HostResponse::returning(call, "typed by the host".into()),
        &[
            echoed,
            state_message(PipelineStateInfo::new(PipelineState::Completed)),
        ],
    );
    let replay = Replay::start(&rec, steps).await;
    let c = replay.client(PT20S);
    let pool = open(&replay, c.runspace_pool().host(Answers)).await;
    let inv = replay
        .within("invoke", pool.pipeline().script(RECORDED_SCRIPT).invoke())
        .await
        .expect("invoke");
    assert_eq!(inv.output, [PsValue::from("typed by the host")]);
    close_and_finish(&replay, pool, &c).await;
}

/// The whole messages of the PSRP payloads in `requests` (base64 of `rsp:Arguments`
/// and `rsp:Stream`), reassembled in order.
fn client_messages(requests: &[String]) -> Vec<Message> {
    use base64::Engine as _;
    let mut inbound = wsman_protocol::psrp::Defragmenter::new();
    let mut out = Vec::new();
    for r in requests {
        let root = wsman_protocol::xml::parse(r.as_bytes()).expect("request parses");
        let mut texts = Vec::new();
        collect_payloads(&root, &mut texts);
        for t in texts {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(t.trim())
                .expect("base64");
            out.extend(
                inbound
                    .push_messages(&bytes::Bytes::from(bytes))
                    .expect("fragments"),
            );
        }
    }
    out
}

fn collect_payloads(el: &wsman_protocol::xml::Element, out: &mut Vec<String>) {
    use wsman_protocol::ns;
    if el.is(ns::SHELL, "Arguments") || el.is(ns::SHELL, "Stream") {
        out.push(el.text.clone());
    }
    for c in &el.children {
        collect_payloads(c, out);
    }
}

#[tokio::test]
async fn small_envelopes_split_create_pipeline_across_arguments_and_sends() {
    let rec = recorded::load_psrp("test_psrp_small_msg_size");
    let granted = allowances(&[]);
    // Step 0 is pypsrp's Get of the WS-Management configuration (MaxEnvelopeSizekb 32),
    // which this client does not send: it is built with that size.
    let steps: Vec<_> = steps_of(&rec, &granted).into_iter().skip(1).collect();
    let recorded_script = {
        let requests: Vec<String> = rec.exchanges.iter().map(|e| e.request.clone()).collect();
        let create = client_messages(&requests)
            .into_iter()
            .find(|m| m.message_type == MessageType::CreatePipeline)
            .expect("the recording creates a pipeline");
        match wsman_protocol::psrp::messages::ClientMessage::decode(&create).unwrap() {
            wsman_protocol::psrp::messages::ClientMessage::CreatePipeline(p) => {
                p.powershell.statements[0][0].cmd.clone()
            }
            other => panic!("{other:?}"),
        }
    };
    assert!(
        recorded_script.len() > 20_000,
        "a script larger than one envelope"
    );
    let replay = Replay::start(&rec, steps).await;
    let c = tokio_winrm::Client::builder(replay.client(PT20S).endpoint())
        .auth(tokio_winrm::Auth::basic("vagrant", "Secr3t!"))
        .allow_insecure_basic(true)
        .operation_timeout(PT20S)
        .max_envelope_size(32_768)
        .build()
        .unwrap();
    let pool = open(&replay, c.runspace_pool()).await;
    let inv = replay
        .within(
            "invoke",
            pool.pipeline()
                .script(recorded_script.clone())
                .input(["input"])
                .invoke(),
        )
        .await
        .expect("invoke");
    assert_eq!(inv.output.len(), 3, "{inv:?}");
    assert_eq!(inv.output[0].as_str(), Some("input"));
    let big = inv.output[1].as_str().expect("a string");
    assert!(
        big.len() >= 20_000 && big.bytes().all(|b| b == b'a'),
        "{}",
        big.len()
    );
    replay.within("close", pool.close()).await.expect("close");
    replay.within("shutdown", c.shutdown()).await;
    let captured = replay.finish();
    for r in &captured {
        assert!(
            r.body.len() <= 32_768,
            "an envelope of {} bytes",
            r.body.len()
        );
    }
    // Reassembled, the client's CREATE_PIPELINE carries the whole script.
    let ours = client_messages(&captured.iter().map(|r| r.text()).collect::<Vec<_>>());
    let create = ours
        .iter()
        .find(|m| m.message_type == MessageType::CreatePipeline)
        .expect("CREATE_PIPELINE");
    match wsman_protocol::psrp::messages::ClientMessage::decode(create).unwrap() {
        wsman_protocol::psrp::messages::ClientMessage::CreatePipeline(p) => {
            assert_eq!(p.powershell.statements[0][0].cmd, recorded_script);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_pool_disconnects_reconnects_and_is_closed_while_disconnected() {
    let rec = recorded::load("pypsrp/test_psrp_disconnect_runspaces");
    let granted = allowances(&[&MAX_ENVELOPE_SIZE_RAISED]);
    let all = steps_of(&rec, &granted);
    // 0 Create, 1-3 Receive, 4 Disconnect, 5 Reconnect, 6 Disconnect; 18 Delete of
    // that pool (the rest is a second pool and Connect from another client).
    let steps: Vec<_> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| *i <= 6 || *i == 18)
        .map(|(_, s)| clone_step(s))
        .collect();
    let replay = Replay::start(&rec, steps).await;
    let c = replay.client(PT20S);
    let pool = open(&replay, c.runspace_pool()).await;
    let shell_id = pool.shell_id().to_string();
    let gone = replay
        .within("disconnect", pool.disconnect(None))
        .await
        .expect("disconnect");
    assert_eq!(gone.shell_id(), shell_id);
    let pool = replay
        .within("reconnect", gone.reconnect())
        .await
        .expect("reconnect");
    assert_eq!(pool.protocol_version().to_string(), "2.3");
    assert!(pool.application_private_data().is_some());
    let gone = replay
        .within("disconnect", pool.disconnect(None))
        .await
        .expect("disconnect again");
    replay.within("close", gone.close()).await.expect("close");
    replay.within("shutdown", c.shutdown()).await;
    replay.finish();
}

#[tokio::test]
async fn another_client_connects_to_a_disconnected_pool_and_reads_its_pipeline() {
    let rec = recorded::load_psrp("test_psrp_disconnected_commands");
    // No Create and no Command here: no fresh ids to set aside.
    let granted = [
        &PSRP_PAYLOADS_RECORDED,
        &PSRP_PAYLOADS_OURS,
        &BOOL_OPTION_CASE,
        &MAX_ENVELOPE_SIZE_RAISED,
    ];
    let all = steps_of(&rec, &granted);
    // pypsrp opened two pools, started a pipeline in each and disconnected (0-9), listed
    // the shells (10-12); then it connected to the second pool (13), read its private
    // data (14), connected to its pipeline (15) and read it (16-17); 24 deletes it.
    let steps: Vec<_> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| (13..=17).contains(i) || *i == 24)
        .map(|(_, s)| clone_step(s))
        .collect();
    let replay = Replay::start(&rec, steps).await;
    let c = replay.client(PT20S);
    let pool = replay
        .within(
            "connect",
            c.runspace_pool()
                .connect("BCEF62AD-380E-4314-B2A4-EB6748019B41"),
        )
        .await
        .expect("connect");
    assert_eq!(pool.protocol_version().to_string(), "2.3");
    assert_eq!(pool.max_runspaces(), 1);
    assert!(pool.application_private_data().is_some());
    let p = replay
        .within(
            "attach",
            pool.attach_pipeline("DB4E8DCF-51CC-423F-A7DF-5D0EA0D6FA08"),
        )
        .await
        .expect("attach");
    let evs = events(&replay, p).await;
    let out: Vec<String> = outputs(&evs)
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    assert_eq!(out, ["a", "b"]);
    assert_eq!(last_state(&evs), &PipelineEnd::Completed);
    close_and_finish(&replay, pool, &c).await;
}

/// pypsrp's fixed RSA key of these recordings (`fixtures/psrp/pypsrp_exchange_key.pem`,
/// see `fixtures/SOURCES.md`): with it this client's PUBLIC_KEY is the recorded one and
/// the recorded ENCRYPTED_SESSION_KEY unwraps to the session key Windows made.
fn pypsrp_exchange_key() -> tokio_winrm::psrp::ExchangeKey {
    use base64::Engine as _;
    let pem = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/psrp/pypsrp_exchange_key.pem"),
    )
    .expect("the key fixture");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM base64");
    tokio_winrm::psrp::ExchangeKey::from_pkcs1_der(&der).expect("an RSA key")
}

/// The CREATE_PIPELINE among `requests`' PSRP payloads.
fn create_pipeline_in(requests: &[String]) -> wsman_protocol::psrp::messages::CreatePipeline {
    let create = client_messages(requests)
        .into_iter()
        .find(|m| m.message_type == MessageType::CreatePipeline)
        .expect("CREATE_PIPELINE");
    match wsman_protocol::psrp::messages::ClientMessage::decode(&create).unwrap() {
        wsman_protocol::psrp::messages::ClientMessage::CreatePipeline(p) => *p,
        other => panic!("{other:?}"),
    }
}

fn ciphertext(v: &PsValue) -> Vec<u8> {
    match v {
        PsValue::SecureString(s) => s.ciphertext().to_vec(),
        other => panic!("not a SecureString: {other:?}"),
    }
}

#[tokio::test]
async fn key_exchange_secure_strings_and_several_statements_in_one_pipeline() {
    use secrecy::ExposeSecret as _;
    let rec = recorded::load_psrp("test_psrp_multiple_commands");
    let replay = start_raised(&rec).await;
    let c = replay.client(PT20S);
    let pool = open(
        &replay,
        c.runspace_pool().exchange_key(pypsrp_exchange_key()),
    )
    .await;
    // A SecureString before the exchange cannot be read.
    let early = pool.decrypt(&tokio_winrm::psrp::EncryptedString::from_ciphertext(vec![
        0;
        16
    ]));
    assert!(
        matches!(early, Err(tokio_winrm::Error::State(_))),
        "{early:?}"
    );
    // PUBLIC_KEY on the pool's stdin, ENCRYPTED_SESSION_KEY on its output; once.
    replay
        .within("exchange", pool.exchange_keys())
        .await
        .expect("key exchange");
    replay
        .within("exchange again", pool.exchange_keys())
        .await
        .expect("no second exchange");
    let secret = replay
        .within("secure string", pool.secure_string("Hello World"))
        .await
        .expect("a SecureString");
    let unicode = "こんにちは - actual_x000A_string\nnewline: \u{10437}";
    let p = replay
        .within(
            "start",
            pool.pipeline()
                .command("Set-Variable")
                .param("Name", "sec_string")
                .param("Value", secret)
                .statement()
                .script("[System.Runtime.InteropServices.marshal]::PtrToStringAuto([System.Runtime.InteropServices.marshal]::SecureStringToBSTR($sec_string))")
                .statement()
                .command("ConvertTo-SecureString")
                .param("String", "abc")
                .switch("AsPlainText")
                .switch("Force")
                .statement()
                .command("Set-Variable")
                .param("Name", "unicode_string")
                .param("Value", unicode)
                .statement()
                .script("$unicode_string")
                .statement()
                .command("cmd.exe")
                .arg("/c echo hi")
                .statement()
                .command("whoami.exe")
                .statement()
                .command("Set-Variable")
                .param("Name", "integer")
                .param("Value", 123)
                .statement()
                .script("$integer")
                .statement()
                .command("Get-Service")
                .param("Name", "winrm")
                .start(),
        )
        .await
        .expect("start");
    let evs = events(&replay, p).await;
    assert_eq!(last_state(&evs), &PipelineEnd::Completed);
    let out = outputs(&evs);
    assert_eq!(out.len(), 7, "{evs:?}");
    assert_eq!(evs.len(), 8, "seven outputs and the state: {evs:?}");
    // The SecureString sent went through Windows' SecureStringToBSTR intact.
    assert_eq!(out[0].as_str(), Some("Hello World"));
    // The one Windows made (ConvertTo-SecureString) decrypts with the exchanged key.
    let PsValue::SecureString(abc) = &out[1] else {
        panic!("not a SecureString: {:?}", out[1]);
    };
    assert_eq!(pool.decrypt(abc).expect("decrypts").expose_secret(), "abc");
    // _x005F_ (a literal underscore escape), _x000A_ (a newline) and a surrogate pair
    // written as two escapes come back as the text sent.
    assert_eq!(out[2].as_str(), Some(unicode));
    assert_eq!(out[3].as_str(), Some("hi\""));
    assert_eq!(out[4].as_str(), Some("win-nnmu24vvkj0\\vagrant"));
    assert_eq!(out[5], PsValue::I32(123));
    let svc = out[6].as_object().expect("a ServiceController");
    assert_eq!(
        &*svc.type_names,
        [
            "System.ServiceProcess.ServiceController",
            "System.ComponentModel.Component",
            "System.MarshalByRefObject",
            "System.Object"
        ]
    );
    assert_eq!(svc.to_string.as_deref(), Some("winrm"));
    let adapted = |n: &str| svc.adapted.iter().find(|(k, _)| k == n).map(|(_, v)| v);
    assert_eq!(
        adapted("DisplayName").and_then(PsValue::as_str),
        Some("Windows Remote Management (WS-Management)")
    );
    assert_eq!(
        adapted("ServiceName").and_then(PsValue::as_str),
        Some("winrm")
    );
    assert_eq!(adapted("CanStop").and_then(PsValue::as_bool), Some(true));
    assert_eq!(
        adapted("CanPauseAndContinue").and_then(PsValue::as_bool),
        Some(false)
    );
    assert!(adapted("Site").is_some_and(PsValue::is_null));
    let extended = |n: &str| svc.extended.iter().find(|(k, _)| k == n).map(|(_, v)| v);
    assert_eq!(extended("Name").and_then(PsValue::as_str), Some("winrm"));
    // `<Ref N="RequiredServices" RefId="2">` is the ServicesDependedOn list, with its
    // TNRef'd type names.
    let depends: Vec<&str> = adapted("ServicesDependedOn")
        .and_then(PsValue::as_list)
        .expect("a list")
        .iter()
        .filter_map(PsValue::as_str)
        .collect();
    assert_eq!(depends, ["RPCSS", "HTTP"]);
    assert_eq!(extended("RequiredServices"), adapted("ServicesDependedOn"));
    let required = extended("RequiredServices")
        .and_then(PsValue::as_object)
        .expect("an object");
    assert!(required.is_type("System.ServiceProcess.ServiceController[]"));
    assert!(
        adapted("DependentServices")
            .and_then(PsValue::as_object)
            .is_some_and(|o| o.is_type("System.ServiceProcess.ServiceController[]")),
        "the TNRef'd type names"
    );
    replay.within("close", pool.close()).await.expect("close");
    replay.within("shutdown", c.shutdown()).await;
    let captured = replay.finish();
    // The decoded comparison shows a SecureString by its length only: the ciphertexts
    // themselves must be pypsrp's (same session key, zero IV: deterministic).
    let ours = create_pipeline_in(&captured.iter().map(|r| r.text()).collect::<Vec<_>>());
    let theirs = create_pipeline_in(
        &rec.exchanges
            .iter()
            .map(|e| e.request.clone())
            .collect::<Vec<_>>(),
    );
    let sent = ciphertext(&ours.powershell.statements[0][0].args[1].value);
    assert_eq!(
        sent,
        ciphertext(&theirs.powershell.statements[0][0].args[1].value)
    );
    assert_eq!(sent.len(), 32);
    assert_eq!(ours.powershell.statements.len(), 10);
    assert_eq!(ours.powershell, theirs.powershell);
}

/// The script of the merge recording, with the indentation pypsrp sent.
const STREAMS_SCRIPT: &str = "$DebugPreference = 'Continue'\n            $VerbosePreference = 'Continue'\n            Write-Debug 'debug stream'\n            Write-Verbose 'verbose stream'\n            Write-Error 'error stream'\n            Write-Output 'output stream'\n            Write-Warning 'warning stream'\n            Write-Information 'information stream'\n            ";

#[tokio::test]
async fn merged_streams_come_as_output_records_then_unmerged_as_their_streams() {
    let rec = recorded::load_psrp("test_psrp_merge_commands");
    let replay = start_raised(&rec).await;
    let c = replay.client(PT20S);
    let pool = open(&replay, c.runspace_pool()).await;
    let p = replay
        .within(
            "start",
            pool.pipeline()
                .script(STREAMS_SCRIPT)
                .merge_all_to_output()
                .merge_previous_results()
                .statement()
                .script(STREAMS_SCRIPT)
                .start(),
        )
        .await
        .expect("start");
    let evs = events(&replay, p).await;
    // What arrived, in order, as (kind, text).
    let seen: Vec<(&str, String)> = evs
        .iter()
        .map(|e| match e {
            PsEvent::Output(v) => match v.as_object() {
                None => ("output", v.as_str().expect("a string").to_string()),
                Some(o) => (
                    "output object",
                    format!(
                        "{}: {}",
                        o.type_names[0],
                        o.to_string.as_deref().unwrap_or_default()
                    ),
                ),
            },
            PsEvent::Error(r) => ("error", r.message.clone()),
            PsEvent::Warning(r) => ("warning", r.message.clone()),
            PsEvent::Verbose(r) => ("verbose", r.message.clone()),
            PsEvent::Debug(r) => ("debug", r.message.clone()),
            PsEvent::Information(r) => (
                "information",
                r.message_data.as_str().unwrap_or_default().to_string(),
            ),
            PsEvent::Progress(r) => ("progress", format!("{} {:?}", r.activity, r.record_type)),
            PsEvent::State(s) => ("state", format!("{s:?}")),
            other => ("other", format!("{other:?}")),
        })
        .collect();
    let expected: Vec<(&str, String)> = [
        ("progress", "Preparing modules for first use. Completed"),
        // The first statement merged every stream into its output: records as objects.
        (
            "output object",
            "System.Management.Automation.DebugRecord: debug stream",
        ),
        (
            "output object",
            "System.Management.Automation.VerboseRecord: verbose stream",
        ),
        (
            "output object",
            "System.Management.Automation.ErrorRecord: error stream",
        ),
        ("output", "output stream"),
        (
            "output object",
            "System.Management.Automation.WarningRecord: warning stream",
        ),
        (
            "output object",
            "System.Management.Automation.InformationRecord: information stream",
        ),
        // The second merged nothing: each record on its own stream.
        ("debug", "debug stream"),
        ("verbose", "verbose stream"),
        ("error", "error stream"),
        ("output", "output stream"),
        ("warning", "warning stream"),
        ("information", "information stream"),
        ("state", "Completed"),
    ]
    .into_iter()
    .map(|(k, t)| (k, t.to_string()))
    .collect();
    assert_eq!(seen, expected);
    // The merged records read as the records they are.
    let out = outputs(&evs);
    assert!(ErrorRecord::is_error_record(&out[2]));
    let merged_error = ErrorRecord::from_value(&out[2]).expect("an error record");
    let error = evs
        .iter()
        .find_map(|e| match e {
            PsEvent::Error(r) => Some(r),
            _ => None,
        })
        .expect("the error record");
    for r in [&merged_error, error] {
        assert_eq!(r.message, "error stream");
        assert_eq!(
            r.fully_qualified_error_id.as_deref(),
            Some("Microsoft.PowerShell.Commands.WriteErrorException")
        );
        assert_eq!(r.category, ErrorCategory::NotSpecified);
        assert_eq!(
            r.category_message.as_deref(),
            Some("NotSpecified: (:) [Write-Error], WriteErrorException")
        );
        assert_eq!(r.activity.as_deref(), Some("Write-Error"));
        assert_eq!(r.reason.as_deref(), Some("WriteErrorException"));
        assert_eq!(
            r.exception_type.as_deref(),
            Some("Microsoft.PowerShell.Commands.WriteErrorException")
        );
        assert_eq!(
            r.script_stack_trace.as_deref(),
            Some("at <ScriptBlock>, <No file>: line 5")
        );
    }
    let merged_info =
        tokio_winrm::psrp::InformationRecord::from_value(&out[5]).expect("an information record");
    let info = evs
        .iter()
        .find_map(|e| match e {
            PsEvent::Information(r) => Some(r),
            _ => None,
        })
        .expect("the information record");
    for (r, thread) in [
        (&merged_info, "2018-06-13T23:46:27.9270288+00:00"),
        (info, "2018-06-13T23:46:28.00516+00:00"),
    ] {
        assert_eq!(r.message_data.as_str(), Some("information stream"));
        assert_eq!(r.source.as_deref(), Some("Write-Information"));
        assert_eq!(r.time_generated.as_deref(), Some(thread));
        assert_eq!(r.user.as_deref(), Some("WIN-NNMU24VVKJ0\\vagrant"));
        assert_eq!(r.computer.as_deref(), Some("WIN-NNMU24VVKJ0"));
        assert_eq!(r.process_id, Some(2636));
        assert!(r.tags.is_empty());
    }
    // The unmerged records carry invocation info (RemoteStreamOptions
    // AddInvocationInfo): the debug record names the script it came from.
    let debug = evs
        .iter()
        .find_map(|e| match e {
            PsEvent::Debug(r) => Some(r),
            _ => None,
        })
        .expect("the debug record");
    let raw = debug.raw.as_object().expect("an object");
    assert_eq!(
        raw.property("InformationalRecord_SerializeInvocationInfo")
            .and_then(PsValue::as_bool),
        Some(true)
    );
    assert_eq!(
        raw.property("CommandInfo_Definition")
            .and_then(PsValue::as_str),
        Some(STREAMS_SCRIPT)
    );
    close_and_finish(&replay, pool, &c).await;
}

/// The host of the UI recording: answers as pypsrp's mocked host did and keeps every
/// call it got.
#[derive(Clone, Default)]
struct MockedUi {
    calls: std::sync::Arc<std::sync::Mutex<Vec<HostCall>>>,
}

impl PsHost for MockedUi {
    fn call(&self, call: &HostCall) -> Result<PsValue, Box<ErrorRecord>> {
        self.call_with_session_key(call, None)
    }

    fn call_with_session_key(
        &self,
        call: &HostCall,
        key: Option<&tokio_winrm::psrp::SessionKey>,
    ) -> Result<PsValue, Box<ErrorRecord>> {
        self.calls.lock().unwrap().push(call.clone());
        let key = || key.expect("the pool exchanged the session key first");
        Ok(match call.method {
            HostMethod::ReadLine => "ReadLine response".into(),
            HostMethod::ReadLineAsSecureString => {
                PsValue::SecureString(key().encrypt("ReadLineAsSecureString response"))
            }
            HostMethod::Prompt => {
                PsObject::hashtable(vec![("prompt field".into(), "prompt response".into())]).into()
            }
            HostMethod::PromptForCredential2 => {
                tokio_winrm::psrp::ps_credential("username", key().encrypt("password"))
            }
            HostMethod::PromptForChoice => PsValue::I32(1),
            m if m.is_void() => PsValue::Null,
            other => panic!("the recording has no {other:?} call"),
        })
    }
}

/// The script of the UI recording (`$host.UI` methods one after the other).
fn ui_script(rec: &recorded::Recording) -> String {
    let theirs = create_pipeline_in(
        &rec.exchanges
            .iter()
            .map(|e| e.request.clone())
            .collect::<Vec<_>>(),
    );
    let script = theirs.powershell.statements[0][0].cmd.clone();
    assert!(script.starts_with("$host.UI.ReadLine()\n$host.UI.ReadLineAsSecureString()\n"));
    script
}

#[tokio::test]
async fn an_installed_host_answers_every_ui_call_as_the_recorded_host_did() {
    use secrecy::ExposeSecret as _;
    let rec = recorded::load_psrp("test_psrp_pshost_ui_mocked_methods");
    let replay = start_raised(&rec).await;
    let c = replay.client(PT20S);
    let host = MockedUi::default();
    let pool = open(
        &replay,
        c.runspace_pool()
            .host(host.clone())
            .exchange_key(pypsrp_exchange_key()),
    )
    .await;
    replay
        .within("exchange", pool.exchange_keys())
        .await
        .expect("key exchange");
    let p = replay
        .within("start", pool.pipeline().script(ui_script(&rec)).start())
        .await
        .expect("start");
    let evs = events(&replay, p).await;
    assert_eq!(last_state(&evs), &PipelineEnd::Completed);
    // The calls, in order, with their ids (-100: a void call, no answer) and
    // parameters.
    let calls = host.calls.lock().unwrap().clone();
    let methods: Vec<(i64, HostMethod)> = calls.iter().map(|c| (c.call_id, c.method)).collect();
    assert_eq!(
        methods,
        [
            (1, HostMethod::ReadLine),
            (2, HostMethod::ReadLineAsSecureString),
            (-100, HostMethod::Write1),
            (-100, HostMethod::Write2),
            (-100, HostMethod::WriteLine1),
            (-100, HostMethod::WriteLine2),
            (-100, HostMethod::WriteLine3),
            (-100, HostMethod::WriteErrorLine),
            (-100, HostMethod::WriteDebugLine),
            (-100, HostMethod::WriteProgress),
            (-100, HostMethod::WriteProgress),
            (-100, HostMethod::WriteVerboseLine),
            (-100, HostMethod::WriteWarningLine),
            (3, HostMethod::Prompt),
            (4, HostMethod::PromptForCredential2),
            (5, HostMethod::PromptForChoice),
        ]
    );
    let params = |i: usize| -> &[PsValue] { &calls[i].parameters };
    assert!(params(0).is_empty());
    assert_eq!(params(2), [PsValue::from("Write1")]);
    // Write2 and WriteLine3: ConsoleColor numbers (Blue 9 on White 15, Gray 7 on
    // Green 10), then the text.
    assert_eq!(
        params(3),
        [PsValue::I32(9), PsValue::I32(15), PsValue::from("Write2")]
    );
    assert!(params(4).is_empty());
    assert_eq!(params(5), [PsValue::from("WriteLine2")]);
    assert_eq!(
        params(6),
        [
            PsValue::I32(7),
            PsValue::I32(10),
            PsValue::from("WriteLine3")
        ]
    );
    assert_eq!(params(7), [PsValue::from("WriteErrorLine")]);
    assert_eq!(params(8), [PsValue::from("WriteDebugLine")]);
    // WriteProgress(sourceId, record).
    assert_eq!(params(10)[0], PsValue::I64(1));
    let progress = tokio_winrm::psrp::ProgressRecord::from_value(&params(10)[1]).expect("a record");
    assert_eq!(
        (
            progress.activity.as_str(),
            progress.activity_id,
            progress.status_description.as_str()
        ),
        ("activity", 2, "description")
    );
    assert_eq!(params(11), [PsValue::from("WriteVerboseLine")]);
    assert_eq!(params(12), [PsValue::from("WriteWarningLine")]);
    // Prompt(caption, message, [FieldDescription]).
    assert_eq!(params(13)[0].as_str(), Some("Prompt caption"));
    assert_eq!(params(13)[1].as_str(), Some("Prompt message"));
    let fields = params(13)[2].as_list().expect("the fields");
    assert_eq!(fields.len(), 1);
    let field = fields[0].as_object().expect("a FieldDescription");
    assert_eq!(
        field.property("name").and_then(PsValue::as_str),
        Some("prompt field")
    );
    assert_eq!(
        field.property("label").and_then(PsValue::as_str),
        Some("PromptLabel")
    );
    assert_eq!(
        field
            .property("parameterTypeFullName")
            .and_then(PsValue::as_str),
        Some("System.String")
    );
    assert_eq!(
        field.property("isMandatory").and_then(PsValue::as_bool),
        Some(true)
    );
    // PromptForCredential2(caption, message, user, target, allowed types 3, options 1).
    let texts: Vec<&str> = params(14)[..4].iter().filter_map(PsValue::as_str).collect();
    assert_eq!(
        texts,
        [
            "PromptForCredential caption",
            "PromptForCredential message",
            "PromptForCredential user",
            "PromptForCredential target"
        ]
    );
    assert_eq!(params(14)[4..], [PsValue::I32(3), PsValue::I32(1)]);
    // PromptForChoice(caption, message, [ChoiceDescription], default 0).
    let choices: Vec<(&str, &str)> = params(15)[2]
        .as_list()
        .expect("the choices")
        .iter()
        .map(|c| {
            let o = c.as_object().expect("a ChoiceDescription");
            (
                o.property("label").and_then(PsValue::as_str).unwrap(),
                o.property("helpMessage").and_then(PsValue::as_str).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        choices,
        [
            ("Prompt1 label", "Prompt1 help"),
            ("Prompt2 label", "Prompt2 help")
        ]
    );
    assert_eq!(params(15)[3], PsValue::I32(0));

    // What the script wrote back: each answer, echoed as output; the debug, verbose
    // and warning lines also as records, and the progress as progress records.
    let out = outputs(&evs);
    assert_eq!(out.len(), 5, "{evs:?}");
    assert_eq!(out[0], PsValue::from("ReadLine response"));
    let PsValue::SecureString(line) = &out[1] else {
        panic!("{:?}", out[1]);
    };
    assert_eq!(
        pool.decrypt(line).expect("decrypts").expose_secret(),
        "ReadLineAsSecureString response"
    );
    let prompt = out[2].as_object().expect("the Prompt's dictionary");
    assert!(prompt.type_names[0].starts_with("System.Collections.Generic.Dictionary`2"));
    assert_eq!(
        prompt.collection,
        Some(tokio_winrm::psrp::Collection::Dictionary(vec![(
            "prompt field".into(),
            "prompt response".into()
        )]))
    );
    let cred = out[3].as_object().expect("a PSCredential");
    assert!(cred.is_type("System.Management.Automation.PSCredential"));
    assert_eq!(
        cred.property("UserName").and_then(PsValue::as_str),
        Some("username")
    );
    let Some(PsValue::SecureString(password)) = cred.property("Password") else {
        panic!("{cred:?}");
    };
    assert_eq!(pool.decrypt(password).unwrap().expose_secret(), "password");
    assert_eq!(out[4], PsValue::I32(1));
    let records: Vec<String> = evs
        .iter()
        .filter_map(|e| match e {
            PsEvent::Debug(r) => Some(format!("debug: {}", r.message)),
            PsEvent::Verbose(r) => Some(format!("verbose: {}", r.message)),
            PsEvent::Warning(r) => Some(format!("warning: {}", r.message)),
            PsEvent::Progress(p) => Some(format!("progress: {} {:?}", p.activity, p.record_type)),
            PsEvent::Error(r) => Some(format!("error: {}", r.message)),
            _ => None,
        })
        .collect();
    assert_eq!(
        records,
        [
            "debug: WriteDebugLine",
            "progress: Preparing modules for first use. Completed",
            "progress: activity Processing",
            "verbose: WriteVerboseLine",
            "warning: WriteWarningLine",
        ]
    );
    replay.within("close", pool.close()).await.expect("close");
    replay.within("shutdown", c.shutdown()).await;
    let captured = replay.finish();
    // The host responses went out as pypsrp's did, SecureStrings included (the decoded
    // comparison shows those by length only).
    let responses = |requests: &[String]| -> Vec<wsman_protocol::psrp::messages::HostResponse> {
        client_messages(requests)
            .iter()
            .filter(|m| m.message_type == MessageType::PipelineHostResponse)
            .map(
                |m| match wsman_protocol::psrp::messages::ClientMessage::decode(m).unwrap() {
                    wsman_protocol::psrp::messages::ClientMessage::HostResponse(r) => r,
                    other => panic!("{other:?}"),
                },
            )
            .collect()
    };
    let ours = responses(&captured.iter().map(|r| r.text()).collect::<Vec<_>>());
    let theirs = responses(
        &rec.exchanges
            .iter()
            .map(|e| e.request.clone())
            .collect::<Vec<_>>(),
    );
    assert_eq!(ours.len(), 5);
    assert_eq!(ours, theirs);
    assert_eq!(
        ciphertext(ours[1].result.as_ref().unwrap()),
        ciphertext(theirs[1].result.as_ref().unwrap())
    );
}
