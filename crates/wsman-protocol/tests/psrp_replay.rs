//! Replay conformance for the PSRP message layer: the recorded traffic of real Windows
//! hosts answering pypsrp (`fixtures/psrp/`, see `fixtures/SOURCES.md`) is
//! defragmented and decoded message by message, with the values Windows sent; the
//! client's recorded requests are rebuilt with this crate's types and compared byte
//! for byte where they are deterministic.

#[path = "support/psrp_fixtures.rs"]
mod fixtures;

use bytes::Bytes;
use fixtures::{Dir, messages, payloads};
use uuid::Uuid;
use wsman_protocol::psrp::clixml;
use wsman_protocol::psrp::messages::{
    ApartmentState, ClientMessage, CreatePipeline, ErrorCategory, HostCall, HostMethod,
    HostResponse, InitRunspacePool, PipelineResultTypes, PipelineState, ProgressRecordType,
    ProtocolVersion, PsThreadOptions, RunspacePoolState, ServerMessage, SessionCapability,
};
use wsman_protocol::psrp::{
    Destination, Fragmenter, Message, MessageType, PsObject, PsValue, from_value,
};

use MessageType as T;

fn types(ms: &[Message]) -> Vec<MessageType> {
    ms.iter().map(|m| m.message_type).collect()
}

fn decode_all(ms: &[Message]) -> Vec<ServerMessage> {
    ms.iter()
        .map(|m| ServerMessage::decode(m).unwrap_or_else(|e| panic!("{:?}: {e}", m.message_type)))
        .collect()
}

fn outputs(ms: &[ServerMessage]) -> Vec<&PsValue> {
    ms.iter()
        .filter_map(|m| match m {
            ServerMessage::Output(v) => Some(v),
            _ => None,
        })
        .collect()
}

fn final_state(ms: &[ServerMessage]) -> &wsman_protocol::psrp::messages::PipelineStateInfo {
    match ms.last() {
        Some(ServerMessage::PipelineState(s)) => s,
        other => panic!("last message is not PIPELINE_STATE: {other:?}"),
    }
}

#[test]
fn every_recorded_message_decodes() {
    let all = fixtures::all();
    assert!(all.len() >= 20, "{all:?}");
    for name in all {
        let (requests, responses) = messages(&name);
        assert!(!requests.is_empty() && !responses.is_empty(), "{name}");
        for m in &requests {
            assert_eq!(m.destination, Destination::Server, "{name}");
            // The server side: every request decodes into what the simulator acts on.
            let decoded = ClientMessage::decode(m)
                .unwrap_or_else(|e| panic!("{name} {:?}: {e}", m.message_type));
            let typed = !matches!(decoded, ClientMessage::Other(..));
            let expect_typed = !matches!(m.message_type, T::PublicKey | T::GetCommandMetadata);
            assert_eq!(typed, expect_typed, "{name} {:?}", m.message_type);
        }
        for m in &responses {
            assert_eq!(m.destination, Destination::Client, "{name}");
            assert!(!matches!(m.message_type, T::Unknown(_)), "{name}");
            ServerMessage::decode(m).unwrap_or_else(|e| panic!("{name} {:?}: {e}", m.message_type));
        }
    }
}

#[test]
fn open_runspace_pool() {
    let (requests, responses) = messages("test_psrp_open_runspace.yml");
    assert_eq!(
        types(&requests),
        [T::SessionCapability, T::InitRunspacePool]
    );
    assert_eq!(
        types(&responses),
        [
            T::SessionCapability,
            T::ApplicationPrivateData,
            T::RunspacePoolState
        ]
    );

    // pypsrp writes the RFC 4122 byte order of the id it uses as ShellId; read as the
    // .NET GUID the spec defines, that is the byte-swapped form. Windows echoes the bytes.
    let shell_id: Uuid = "76056A84-51DC-4F24-9262-CA2A55464B2B".parse().unwrap();
    let rpid = Uuid::from_bytes_le(*shell_id.as_bytes());
    assert!(
        requests
            .iter()
            .all(|m| m.runspace_pool_id == rpid && m.pipeline_id.is_none())
    );
    assert_eq!(responses[1].runspace_pool_id, rpid);
    assert_eq!(responses[0].runspace_pool_id, Uuid::nil());

    let caps = SessionCapability::from_value(&requests[0].value().unwrap()).unwrap();
    assert_eq!(caps, SessionCapability::default());
    let init = InitRunspacePool::from_value(&requests[1].value().unwrap()).unwrap();
    assert_eq!(init, InitRunspacePool::default());
    assert_eq!(init.thread_options, PsThreadOptions::Default);
    assert_eq!(init.apartment_state, ApartmentState::UnknownState);

    let decoded = decode_all(&responses);
    let ServerMessage::SessionCapability(server) = &decoded[0] else {
        panic!()
    };
    assert_eq!(server.protocol().unwrap(), ProtocolVersion::V2_3);
    let ServerMessage::ApplicationPrivateData(data) = &decoded[1] else {
        panic!()
    };
    assert_eq!(data.ps_version(), Some("5.1.14393.2248"));
    let ServerMessage::RunspacePoolState(state) = &decoded[2] else {
        panic!()
    };
    assert_eq!(state.state, RunspacePoolState::Opened);
    assert!(state.error.is_none());
}

#[test]
fn creation_xml_is_rebuilt_byte_for_byte() {
    let recorded = payloads("test_psrp_open_runspace.yml");
    let creation = recorded
        .iter()
        .find(|p| p.element == "creationXml")
        .unwrap();
    let (requests, _) = messages("test_psrp_open_runspace.yml");
    let rpid = requests[0].runspace_pool_id;
    let ours = [
        Message::from_value(
            Destination::Server,
            T::SessionCapability,
            rpid,
            None,
            &SessionCapability::default().to_value(),
        ),
        Message::from_value(
            Destination::Server,
            T::InitRunspacePool,
            rpid,
            None,
            &InitRunspacePool::default().to_value(),
        ),
    ];
    let mut fragmenter = Fragmenter::new(100_000);
    let packed = fragmenter.pack(&ours);
    assert_eq!(packed.len(), 1);
    assert_eq!(Bytes::from(packed[0].clone()), creation.bytes);
}

#[test]
fn application_arguments_are_rebuilt_and_echoed() {
    let (requests, responses) = messages("test_psrp_application_args.yml");
    let init = InitRunspacePool::from_value(&requests[1].value().unwrap()).unwrap();
    assert_eq!(
        init.application_arguments,
        Some(vec![("test_var".into(), "abcdef12345".into())])
    );
    assert_eq!(
        clixml::to_string(&init.to_value()),
        requests[1].data_str().unwrap()
    );
    let decoded = decode_all(&responses);
    let out = outputs(&decoded);
    assert_eq!(out.len(), 1);
    let map: std::collections::HashMap<String, String> = from_value(out[0]).unwrap();
    assert_eq!(map["test_var"], "abcdef12345");
    assert_eq!(final_state(&decoded).state, PipelineState::Completed);
}

#[test]
fn multiple_commands_outputs_are_the_recorded_values() {
    let (requests, responses) = messages("test_psrp_multiple_commands.yml");
    assert_eq!(
        types(&requests),
        [
            T::SessionCapability,
            T::InitRunspacePool,
            T::PublicKey,
            T::CreatePipeline
        ]
    );
    let create = CreatePipeline::from_value(&requests[3].value().unwrap()).unwrap();
    assert!(create.no_input);
    let statements = &create.powershell.statements;
    assert!(statements.len() > 1, "{statements:?}");
    let first = &statements[0][0];
    assert_eq!(first.cmd, "Set-Variable");
    assert!(!first.is_script);
    assert_eq!(first.args[0].name.as_deref(), Some("Name"));
    assert_eq!(first.args[0].value, PsValue::from("sec_string"));
    assert!(matches!(first.args[1].value, PsValue::SecureString(_)));
    // Rebuilding the body gives the recorded CLIXML, ExtraCmds, RefIds and TNRefs included.
    assert_eq!(
        clixml::to_string(&create.to_value(ProtocolVersion::V2_3)),
        requests[3].data_str().unwrap()
    );

    let decoded = decode_all(&responses);
    assert!(matches!(
        decoded[3],
        ServerMessage::Other(T::EncryptedSessionKey, _)
    ));
    let out = outputs(&decoded);
    assert_eq!(out.len(), 7);
    assert_eq!(out[0], &PsValue::from("Hello World"));
    match out[1] {
        PsValue::SecureString(s) => assert_eq!(s.ciphertext().len(), 16),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        from_value::<String>(out[1]).unwrap_err().to_string(),
        "SecureString needs the PSRP session key to be decrypted"
    );
    assert_eq!(
        out[2],
        &PsValue::from("こんにちは - actual_x000A_string\nnewline: \u{10437}")
    );
    assert_eq!(out[3], &PsValue::from("hi\""));
    assert_eq!(out[4], &PsValue::from("win-nnmu24vvkj0\\vagrant"));
    assert_eq!(out[5], &PsValue::I32(123));
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Service {
        name: String,
        status: String,
        display_name: String,
        required_services: Vec<String>,
    }
    let svc: Service = from_value(out[6]).unwrap();
    assert_eq!(svc.name, "winrm");
    assert_eq!(svc.status, "Running");
    assert_eq!(
        svc.display_name,
        "Windows Remote Management (WS-Management)"
    );
    assert_eq!(svc.required_services, ["RPCSS", "HTTP"]);
    assert_eq!(final_state(&decoded).state, PipelineState::Completed);
}

#[test]
fn pipeline_input_and_streams() {
    let (requests, responses) = messages("test_psrp_with_input.yml");
    assert_eq!(
        types(&requests)[2..],
        [
            T::CreatePipeline,
            T::PipelineInput,
            T::PipelineInput,
            T::PipelineInput,
            T::PipelineInput,
            T::EndOfPipelineInput
        ]
    );
    let pid = requests[2].pipeline_id.expect("pipeline id");
    let command_id: Uuid = "69743726-6FB3-4E5A-AD9E-0650B745173F".parse().unwrap();
    assert_eq!(pid, Uuid::from_bytes_le(*command_id.as_bytes()));
    assert!(requests[7].data.is_empty());
    let create = CreatePipeline::from_value(&requests[2].value().unwrap()).unwrap();
    assert!(!create.no_input);
    // The input objects, rebuilt with serde and the writer, are what pypsrp sent.
    assert_eq!(
        clixml::to_string(&wsman_protocol::psrp::to_value(&["a", "b"]).unwrap()),
        requests[6].data_str().unwrap()
    );
    assert_eq!(
        clixml::to_string(&PsObject::hashtable(vec![("a".into(), "b".into())]).into()),
        requests[5].data_str().unwrap()
    );

    let decoded = decode_all(&responses);
    assert_eq!(
        types(&responses)[3..],
        [
            T::ProgressRecord,
            T::DebugRecord,
            T::PipelineOutput,
            T::PipelineOutput,
            T::PipelineOutput,
            T::PipelineOutput,
            T::DebugRecord,
            T::PipelineState
        ]
    );
    let ServerMessage::Progress(p) = &decoded[3] else {
        panic!()
    };
    assert_eq!(p.activity, "Preparing modules for first use.");
    assert_eq!(
        (p.activity_id, p.parent_activity_id, p.percent_complete),
        (0, -1, -1)
    );
    assert_eq!(p.record_type, ProgressRecordType::Completed);
    assert_eq!(p.current_operation, None);
    let ServerMessage::Debug(d) = &decoded[4] else {
        panic!()
    };
    assert_eq!(d.message, "Start Block");
    let ServerMessage::Debug(d) = &decoded[9] else {
        panic!()
    };
    assert_eq!(d.message, "End Block");
    let out = outputs(&decoded);
    assert_eq!(out[0], &PsValue::from("1"));
    assert_eq!(out[1], &PsValue::I32(2));
    let map: std::collections::HashMap<String, String> = from_value(out[2]).unwrap();
    assert_eq!(map["a"], "b");
    assert_eq!(
        out[2].as_object().unwrap().type_names[0],
        "Deserialized.System.Collections.Hashtable"
    );
    assert_eq!(from_value::<Vec<String>>(out[3]).unwrap(), ["a", "b"]);
    assert_eq!(final_state(&decoded).state, PipelineState::Completed);
}

#[test]
fn small_envelopes_fragment_like_the_recording() {
    let name = "test_psrp_small_msg_size.yml";
    let recorded = payloads(name);
    let (requests, responses) = messages(name);
    let client: Vec<_> = recorded.iter().filter(|p| p.dir == Dir::Client).collect();
    assert_eq!(
        client
            .iter()
            .map(|p| p.element.as_str())
            .collect::<Vec<_>>(),
        ["creationXml", "Arguments", "Stream", "Stream"]
    );
    // One fragmenter for the pool, as a client keeps it: object ids 1..5 in order.
    let mut f = Fragmenter::new(100_000);
    assert_eq!(f.pack(&requests[..2]), vec![client[0].bytes.to_vec()]);
    f.set_max_blob(23_305);
    let create: Vec<Vec<u8>> = f
        .fragment(&requests[2])
        .iter()
        .map(|x| x.encode())
        .collect();
    assert_eq!(create, [client[1].bytes.to_vec(), client[2].bytes.to_vec()]);
    assert_eq!(f.pack(&requests[3..]), vec![client[3].bytes.to_vec()]);
    assert_eq!(f.next_object_id(), 6);

    let decoded = decode_all(&responses);
    let out = outputs(&decoded);
    assert_eq!(out[0], &PsValue::from("input"));
    assert_eq!(out[1], &PsValue::String("a".repeat(20_000)));
    assert_eq!(out[2], &PsValue::String("a".repeat(10_000)));
    assert_eq!(final_state(&decoded).state, PipelineState::Completed);
}

#[test]
fn protocol_versions_shape_create_pipeline() {
    for (file, version, merges) in [
        (
            "test_psrp_run_protocol_version_2.1.yml",
            ProtocolVersion::V2_1,
            false,
        ),
        (
            "test_psrp_run_protocol_version_2.2.yml",
            ProtocolVersion::V2_2,
            true,
        ),
        (
            "test_psrp_run_protocol_version_2.3.yml",
            ProtocolVersion::V2_3,
            true,
        ),
    ] {
        let (requests, responses) = messages(file);
        let decoded = decode_all(&responses);
        let ServerMessage::SessionCapability(caps) = &decoded[0] else {
            panic!()
        };
        assert_eq!(caps.protocol().unwrap(), version, "{file}");
        let body = requests[2]
            .expect(T::CreatePipeline)
            .unwrap()
            .value()
            .unwrap();
        let create = CreatePipeline::from_value(&body).unwrap();
        let cmd = &create.powershell.statements[0][0];
        assert!(cmd.is_script);
        assert_eq!(cmd.merge_my_result, PipelineResultTypes::Error);
        assert_eq!(cmd.merge_to_result, PipelineResultTypes::Output);
        let expected_error = if merges {
            PipelineResultTypes::Output
        } else {
            PipelineResultTypes::None
        };
        assert_eq!(cmd.merge_error, expected_error, "{file}");
        assert_eq!(
            clixml::to_string(&create.to_value(version)),
            requests[2].data_str().unwrap(),
            "{file}"
        );
        // The error merged into the output stream is an ErrorRecord object.
        let out = outputs(&decoded);
        let err = out
            .iter()
            .find(|v| wsman_protocol::psrp::messages::ErrorRecord::is_error_record(v))
            .expect("merged error record");
        let err = wsman_protocol::psrp::messages::ErrorRecord::from_value(err).unwrap();
        assert_eq!(err.message, "error", "{file}");
        assert_eq!(
            err.fully_qualified_error_id.as_deref(),
            Some("Microsoft.PowerShell.Commands.WriteErrorException")
        );
        assert_eq!(err.category, ErrorCategory::NotSpecified);
        assert_eq!(
            err.exception_type.as_deref(),
            Some("Microsoft.PowerShell.Commands.WriteErrorException")
        );
        assert_eq!(final_state(&decoded).state, PipelineState::Completed);
    }
}

#[test]
fn merged_and_separate_streams() {
    let (_, responses) = messages("test_psrp_merge_commands.yml");
    let decoded = decode_all(&responses);
    let kinds: Vec<&str> = decoded
        .iter()
        .map(|m| match m {
            ServerMessage::Output(_) => "out",
            ServerMessage::Error(_) => "error",
            ServerMessage::Warning(_) => "warning",
            ServerMessage::Verbose(_) => "verbose",
            ServerMessage::Debug(_) => "debug",
            ServerMessage::Information(_) => "info",
            ServerMessage::Progress(_) => "progress",
            ServerMessage::PipelineState(_) => "state",
            _ => "pool",
        })
        .collect();
    assert_eq!(
        kinds[3..],
        [
            "progress", "out", "out", "out", "out", "out", "out", "debug", "verbose", "error",
            "out", "warning", "info", "state"
        ]
    );
    let ServerMessage::Error(e) = &decoded[12] else {
        panic!()
    };
    assert_eq!(e.message, "error stream");
    assert_eq!(e.activity.as_deref(), Some("Write-Error"));
    let ServerMessage::Warning(w) = &decoded[14] else {
        panic!()
    };
    assert_eq!(w.message, "warning stream");
    let ServerMessage::Verbose(v) = &decoded[11] else {
        panic!()
    };
    assert_eq!(v.message, "verbose stream");
    let ServerMessage::Information(i) = &decoded[15] else {
        panic!()
    };
    assert_eq!(i.message(), Some("information stream"));
    assert_eq!(i.source.as_deref(), Some("Write-Information"));
    assert_eq!(i.user.as_deref(), Some("WIN-NNMU24VVKJ0\\vagrant"));
    assert_eq!(i.process_id, Some(2636));
    assert_eq!(
        i.time_generated.as_deref(),
        Some("2018-06-13T23:46:28.00516+00:00")
    );
    // Merged into the output stream: the same records as objects.
    let out = outputs(&decoded);
    let merged_debug =
        wsman_protocol::psrp::messages::InformationalRecord::from_value(out[0]).unwrap();
    assert_eq!(merged_debug.message, "debug stream");
    assert!(
        out[0]
            .as_object()
            .unwrap()
            .is_type("System.Management.Automation.DebugRecord")
    );
    assert_eq!(out[3], &PsValue::from("output stream"));
    assert_eq!(final_state(&decoded).state, PipelineState::Completed);
}

#[test]
fn host_call_set_should_exit() {
    let (requests, responses) = messages("test_psrp_pshost_methods.yml");
    let create = CreatePipeline::from_value(&requests[2].value().unwrap()).unwrap();
    assert!(!create.host_info.is_host_null);
    assert!(!create.host_info.use_runspace_host);
    let decoded = decode_all(&responses);
    let call = decoded
        .iter()
        .find_map(|m| match m {
            ServerMessage::HostCall(c) => Some(c),
            _ => None,
        })
        .expect("a host call");
    assert_eq!(call.call_id, -100);
    assert_eq!(call.method, HostMethod::SetShouldExit);
    assert!(call.method.is_void() && !call.method.is_interactive());
    assert_eq!(call.parameters, [PsValue::I32(1)]);
    let culture = outputs(&decoded)[0].as_object().unwrap();
    assert_eq!(culture.to_string.as_deref(), Some("en-US"));
    assert_eq!(culture.property("LCID"), Some(&PsValue::I32(1033)));
    assert_eq!(final_state(&decoded).state, PipelineState::Completed);
}

#[test]
fn failed_pipeline_carries_its_error_record() {
    let (_, responses) = messages("test_client_execute_ps_failure.yml");
    let decoded = decode_all(&responses);
    let state = final_state(&decoded);
    assert_eq!(state.state, PipelineState::Failed);
    assert!(state.state.is_terminal());
    let err = state.error.as_ref().expect("ExceptionAsErrorRecord");
    assert!(
        err.message
            .starts_with("The term 'Get-ServiceTypo' is not recognized as the name of a cmdlet"),
        "{}",
        err.message
    );
    assert_eq!(
        err.fully_qualified_error_id.as_deref(),
        Some("CommandNotFoundException,Microsoft.PowerShell.Commands.InvokeExpressionCommand")
    );
    assert_eq!(err.category, ErrorCategory::ObjectNotFound);
    assert_eq!(
        err.exception_type.as_deref(),
        Some("System.Management.Automation.CommandNotFoundException")
    );
    assert_eq!(err.target_object, Some(PsValue::from("Get-ServiceTypo")));
}

#[test]
fn host_calls_and_the_recorded_responses() {
    let (requests, responses) = messages("test_psrp_pshost_ui_mocked_methods.yml");
    let calls: Vec<HostCall> = decode_all(&responses)
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::HostCall(c) => Some(c),
            _ => None,
        })
        .collect();
    let methods: Vec<HostMethod> = calls.iter().map(|c| c.method).collect();
    for m in [
        HostMethod::ReadLine,
        HostMethod::ReadLineAsSecureString,
        HostMethod::Write2,
        HostMethod::WriteLine3,
        HostMethod::WriteProgress,
        HostMethod::Prompt,
        HostMethod::PromptForCredential2,
        HostMethod::PromptForChoice,
    ] {
        assert!(methods.contains(&m), "{m:?} in {methods:?}");
    }
    // Void calls carry ci -100 and get no response; the others are answered.
    for c in &calls {
        assert_eq!(c.call_id == -100, c.method.is_void(), "{c:?}");
    }
    let write2 = calls
        .iter()
        .find(|c| c.method == HostMethod::Write2)
        .unwrap();
    assert_eq!(
        write2.parameters,
        [PsValue::I32(9), PsValue::I32(15), PsValue::from("Write2")]
    );
    let answered: Vec<&Message> = requests
        .iter()
        .filter(|m| m.message_type == T::PipelineHostResponse)
        .collect();
    let interactive: Vec<&HostCall> = calls.iter().filter(|c| !c.method.is_void()).collect();
    assert_eq!(answered.len(), interactive.len());
    for (msg, call) in answered.iter().zip(&interactive) {
        let recorded = HostResponse::from_value(&msg.value().unwrap()).unwrap();
        assert_eq!(recorded.call_id, call.call_id);
        assert_eq!(recorded.method, call.method);
        assert!(call.method.is_interactive(), "{:?}", call.method);
        // The response built from the call and the value is what pypsrp sent.
        let ours = HostResponse::returning(call, recorded.result.clone().unwrap());
        assert_eq!(clixml::to_string(&ours.to_value()), msg.data_str().unwrap());
    }
    let first = HostResponse::from_value(&answered[0].value().unwrap()).unwrap();
    assert_eq!(first.result, Some(PsValue::from("ReadLine response")));
}

#[test]
fn runspace_counts_and_availability() {
    use wsman_protocol::psrp::messages::{
        RunspaceAvailability, call_id, get_available_runspaces, set_max_runspaces,
        set_min_runspaces,
    };
    let (requests, responses) = messages("test_psrp_set_runspaces.yml");
    assert_eq!(
        types(&requests)[2..],
        [
            T::GetAvailableRunspaces,
            T::SetMaxRunspaces,
            T::GetAvailableRunspaces,
            T::SetMinRunspaces,
            T::SetMinRunspaces,
            T::SetMaxRunspaces
        ]
    );
    let body = |i: usize| requests[i].data_str().unwrap().to_string();
    assert_eq!(clixml::to_string(&get_available_runspaces(0)), body(2));
    // pypsrp names the call id `CI`; the spec (§2.2.2.6-7) and this crate say `ci`, and
    // Windows reads either (PowerShell property names are case-insensitive).
    let spec_case = |s: String| s.replace("N=\"CI\"", "N=\"ci\"");
    assert_eq!(
        clixml::to_string(&set_max_runspaces(5, 1)),
        spec_case(body(3))
    );
    assert_eq!(
        clixml::to_string(&set_min_runspaces(2, 3)),
        spec_case(body(5))
    );
    assert_eq!(call_id(&requests[3].value().unwrap()).unwrap(), 1);
    let answers: Vec<RunspaceAvailability> = decode_all(&responses)
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::RunspaceAvailability(a) => Some(a),
            _ => None,
        })
        .collect();
    let got: Vec<(i64, PsValue)> = answers
        .into_iter()
        .map(|a| (a.call_id, a.response))
        .collect();
    assert_eq!(
        got,
        [
            (0, PsValue::I32(1)),
            (1, PsValue::Bool(true)),
            (2, PsValue::I32(5)),
            (3, PsValue::Bool(true)),
            (4, PsValue::Bool(false)),
            (5, PsValue::Bool(false)),
        ]
    );
}

#[test]
fn connect_to_disconnected_pool() {
    use wsman_protocol::psrp::messages::connect_runspace_pool;
    let name = "test_psrp_disconnected_commands.yml";
    let recorded = payloads(name);
    let connect = recorded.iter().find(|p| p.element == "connectXml").unwrap();
    let reply = recorded
        .iter()
        .find(|p| p.element == "connectResponseXml")
        .unwrap();
    let mut d = wsman_protocol::psrp::Defragmenter::new();
    let sent = d.push_messages(&connect.bytes).unwrap();
    assert_eq!(types(&sent), [T::SessionCapability, T::ConnectRunspacePool]);
    assert_eq!(sent[1].data_str().unwrap(), "<S />");
    // Rebuilt: the same two messages in the same fragments.
    let rpid = sent[0].runspace_pool_id;
    let ours = [
        Message::from_value(
            Destination::Server,
            T::SessionCapability,
            rpid,
            None,
            &SessionCapability::default().to_value(),
        ),
        Message::from_value(
            Destination::Server,
            T::ConnectRunspacePool,
            rpid,
            None,
            &connect_runspace_pool(None),
        ),
    ];
    assert_eq!(
        Fragmenter::new(100_000).pack(&ours),
        vec![connect.bytes.to_vec()]
    );
    let got = decode_all(&d.push_messages(&reply.bytes).unwrap());
    assert!(matches!(&got[0], ServerMessage::SessionCapability(c) if c.protocol_version == "2.3"));
    let ServerMessage::RunspacePoolInitData(init) = &got[1] else {
        panic!("{got:?}")
    };
    assert_eq!((init.min_runspaces, init.max_runspaces), (1, 1));
    // After connecting, the command's buffered output arrives as recorded.
    let (_, responses) = messages(name);
    let decoded = decode_all(&responses);
    let out = outputs(&decoded);
    assert!(out.contains(&&PsValue::from("a")) && out.contains(&&PsValue::from("b")));
    assert_eq!(final_state(&decoded).state, PipelineState::Completed);
}
