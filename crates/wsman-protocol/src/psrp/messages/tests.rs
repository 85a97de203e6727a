//! Typed message bodies: each builds its value and parses it back; decoding by type.

use uuid::Uuid;

use super::*;
use crate::psrp::clixml;
use crate::psrp::message::{Destination, Message, MessageType};

fn round_trip(v: &PsValue) -> PsValue {
    clixml::from_str(&clixml::to_string(v)).unwrap()
}

#[test]
fn protocol_versions_parse_and_order() {
    assert_eq!(
        "2.3".parse::<ProtocolVersion>().unwrap(),
        ProtocolVersion::V2_3
    );
    assert!(ProtocolVersion::V2_1 < ProtocolVersion::V2_2);
    assert_eq!(ProtocolVersion::V2_2.to_string(), "2.2");
    assert!("2".parse::<ProtocolVersion>().is_err());
    assert!("x.y".parse::<ProtocolVersion>().is_err());
}

#[test]
fn enums_keep_unknown_numbers() {
    assert_eq!(RunspacePoolState::from_value(2), RunspacePoolState::Opened);
    assert_eq!(
        RunspacePoolState::from_value(42),
        RunspacePoolState::Unknown(42)
    );
    assert_eq!(RunspacePoolState::Unknown(42).value(), 42);
    assert_eq!(ApartmentState::UnknownState.name(), "UNKNOWN");
    assert_eq!(
        HostMethod::from_value(56),
        HostMethod::PromptForChoiceMultipleSelection
    );
    assert!(HostMethod::ReadLine.is_interactive() && !HostMethod::ReadLine.is_void());
    assert!(HostMethod::WriteLine2.is_void());
    let v = PipelineResultTypes::Warning.to_ps_value();
    let o = v.as_object().unwrap();
    assert_eq!(o.enum_value(), Some(3));
    assert_eq!(o.to_string.as_deref(), Some("Warning"));
    assert_eq!(
        &o.type_names[..],
        [
            "System.Management.Automation.Runspaces.PipelineResultTypes",
            "System.Enum",
            "System.ValueType",
            "System.Object"
        ]
    );
}

#[test]
fn runspace_pool_bodies_round_trip() {
    let caps = SessionCapability {
        time_zone: Some(vec![1, 2, 3]),
        ..SessionCapability::default()
    };
    assert_eq!(
        SessionCapability::from_value(&round_trip(&caps.to_value())).unwrap(),
        caps
    );

    let mut init = InitRunspacePool::new(1, 4);
    init.thread_options = PsThreadOptions::ReuseThread;
    init.host_info = HostInfo::without_ui();
    init.application_arguments = Some(vec![("k".into(), PsValue::I32(1))]);
    assert_eq!(
        InitRunspacePool::from_value(&round_trip(&init.to_value())).unwrap(),
        init
    );

    let mut state = RunspacePoolStateInfo::new(RunspacePoolState::Broken);
    state.error = Some(ErrorRecord::new("no", "Broken", ErrorCategory::OpenError));
    let back = RunspacePoolStateInfo::from_value(&round_trip(&state.to_value())).unwrap();
    assert_eq!(back.state, RunspacePoolState::Broken);
    assert_eq!(back.error.unwrap().message, "no");

    let data = ApplicationPrivateData::new(vec![(
        "PSVersionTable".into(),
        PsObject::hashtable(vec![("PSVersion".into(), PsValue::Version("5.1".into()))]).into(),
    )]);
    let back = ApplicationPrivateData::from_value(&round_trip(&data.to_value())).unwrap();
    assert_eq!(back.ps_version(), Some("5.1"));

    let avail = RunspaceAvailability {
        call_id: 7,
        response: PsValue::Bool(true),
    };
    assert_eq!(
        RunspaceAvailability::from_value(&round_trip(&avail.to_value())).unwrap(),
        avail
    );
    let max = round_trip(&set_max_runspaces(5, 7));
    assert_eq!(max.property("MaxRunspaces"), Some(&PsValue::I32(5)));
    assert_eq!(max.property("ci"), Some(&PsValue::I64(7)));
    assert_eq!(
        round_trip(&set_min_runspaces(2, 8)).property("MinRunspaces"),
        Some(&PsValue::I32(2))
    );
}

#[test]
fn create_pipeline_round_trips_per_protocol_version() {
    let stmt1 = vec![
        Command::new("Get-Service")
            .arg(Argument::named("Name", "winrm"))
            .arg(Argument::switch("ErrorAction"))
            .arg(Argument::positional(PsValue::I32(3))),
        Command::new("Select-Object").arg(Argument::named("First", 1)),
    ];
    let stmt2 = vec![Command::script("Get-Date").merge_error_to_output()];
    let mut ps = PowerShell::new(stmt1.clone());
    ps.statements.push(stmt2);
    let mut create = CreatePipeline::new(ps);
    create.no_input = false;
    let v23 = create.to_value(ProtocolVersion::V2_3);
    assert_eq!(
        CreatePipeline::from_value(&round_trip(&v23)).unwrap(),
        create
    );

    // Protocol 2.1 has no per-stream merges: they read back as None.
    let v21 = create.to_value(ProtocolVersion::V2_1);
    let text = clixml::to_string(&v21);
    assert!(
        !text.contains("MergeError") && !text.contains("MergeInformation"),
        "{text}"
    );
    let back = CreatePipeline::from_value(&round_trip(&v21)).unwrap();
    assert_eq!(
        back.powershell.statements[1][0].merge_error,
        PipelineResultTypes::None
    );
    assert_eq!(
        back.powershell.statements[1][0].merge_my_result,
        PipelineResultTypes::Error
    );
    let v22 = clixml::to_string(&create.to_value(ProtocolVersion::V2_2));
    assert!(v22.contains("MergeDebug") && !v22.contains("MergeInformation"));

    // One statement: ExtraCmds is Nil.
    let single = CreatePipeline::new(PowerShell::new(stmt1));
    let text = clixml::to_string(&single.to_value(ProtocolVersion::V2_3));
    assert!(text.contains("<Nil N=\"ExtraCmds\" />"), "{text}");
    assert!(text.contains("<Nil N=\"V\" />"), "switch parameter: {text}");
    assert!(
        text.contains("<Nil N=\"N\" />"),
        "positional parameter: {text}"
    );
}

#[test]
fn pipeline_state_and_records_round_trip() {
    let mut s = PipelineStateInfo::new(PipelineState::Failed);
    s.error = Some(ErrorRecord::new(
        "boom",
        "Oops,My.Cmd",
        ErrorCategory::InvalidOperation,
    ));
    let back = PipelineStateInfo::from_value(&round_trip(&s.to_value())).unwrap();
    assert_eq!(back.state, PipelineState::Failed);
    let e = back.error.unwrap();
    assert_eq!(e.message, "boom");
    assert_eq!(e.fully_qualified_error_id.as_deref(), Some("Oops,My.Cmd"));
    assert_eq!(e.category, ErrorCategory::InvalidOperation);
    assert_eq!(e.exception_type.as_deref(), Some("System.Exception"));
    assert_eq!(e.to_string(), "boom (Oops,My.Cmd)");
    assert!(ErrorRecord::is_error_record(&e.raw));

    let w = InformationalRecord::new("Warning", "careful");
    let back = InformationalRecord::from_value(&round_trip(&w.to_value())).unwrap();
    assert_eq!(back.message, "careful");
    assert!(
        back.raw
            .as_object()
            .unwrap()
            .is_type("System.Management.Automation.WarningRecord")
    );

    let i = InformationRecord::new("hello", "Write-Host");
    let back = InformationRecord::from_value(&round_trip(&i.to_value())).unwrap();
    assert_eq!(back.message(), Some("hello"));
    assert_eq!(back.source.as_deref(), Some("Write-Host"));

    let mut p = ProgressRecord::new("Copying", 1, "file 1 of 3");
    p.percent_complete = 33;
    assert_eq!(
        ProgressRecord::from_value(&round_trip(&p.to_value())).unwrap(),
        p
    );
}

#[test]
fn host_calls_and_responses_round_trip() {
    let call = HostCall::new(-5, HostMethod::ReadLine, vec![]);
    assert_eq!(
        HostCall::from_value(&round_trip(&call.to_value())).unwrap(),
        call
    );
    let not_interactive = ErrorRecord::new(
        "the host is not interactive",
        "HostNotInteractive",
        ErrorCategory::NotImplemented,
    );
    let resp = HostResponse::failing(&call, &not_interactive);
    let back = HostResponse::from_value(&round_trip(&resp.to_value())).unwrap();
    assert_eq!(back.call_id, -5);
    assert_eq!(back.method, HostMethod::ReadLine);
    assert!(back.result.is_none());
    assert_eq!(
        ErrorRecord::from_value(back.error.as_ref().unwrap())
            .unwrap()
            .message,
        "the host is not interactive"
    );
    let ok = HostResponse::returning(&call, "typed".into());
    let back = HostResponse::from_value(&round_trip(&ok.to_value())).unwrap();
    assert_eq!(back.result, Some(PsValue::from("typed")));
}

#[test]
fn server_messages_decode_by_type() {
    let rpid = Uuid::from_u128(1);
    let pid = Some(Uuid::from_u128(2));
    let msg = |t, v: &PsValue| Message::from_value(Destination::Client, t, rpid, pid, v);
    let cases = [
        msg(
            MessageType::PipelineState,
            &PipelineStateInfo::new(PipelineState::Completed).to_value(),
        ),
        msg(MessageType::PipelineOutput, &PsValue::I32(5)),
        msg(
            MessageType::WarningRecord,
            &InformationalRecord::new("Warning", "w").to_value(),
        ),
        msg(
            MessageType::PipelineHostCall,
            &HostCall::new(1, HostMethod::WriteLine2, vec!["x".into()]).to_value(),
        ),
        msg(MessageType::UserEvent, &PsValue::Null),
    ];
    let decoded: Vec<ServerMessage> = cases
        .iter()
        .map(|m| ServerMessage::decode(m).unwrap())
        .collect();
    assert!(
        matches!(&decoded[0], ServerMessage::PipelineState(s) if s.state == PipelineState::Completed)
    );
    assert_eq!(decoded[1], ServerMessage::Output(PsValue::I32(5)));
    assert!(matches!(&decoded[2], ServerMessage::Warning(w) if w.message == "w"));
    assert!(
        matches!(&decoded[3], ServerMessage::HostCall(c) if c.method == HostMethod::WriteLine2)
    );
    assert_eq!(
        decoded[4],
        ServerMessage::Other(MessageType::UserEvent, PsValue::Null)
    );
    // A body missing what its type requires is a typed error.
    let bad = msg(MessageType::PipelineState, &PsObject::new().into());
    assert_eq!(
        ServerMessage::decode(&bad).unwrap_err(),
        Error::MissingProperty {
            message: "PIPELINE_STATE",
            property: "PipelineState"
        }
    );
    let bad = msg(MessageType::RunspacePoolState, &PsValue::I32(1));
    assert!(matches!(
        ServerMessage::decode(&bad).unwrap_err(),
        Error::WrongType { .. }
    ));
}

#[test]
fn input_messages() {
    let rpid = Uuid::from_u128(1);
    let pid = Uuid::from_u128(2);
    let m = pipeline_input(rpid, pid, &PsValue::from("x"));
    assert_eq!(m.message_type, MessageType::PipelineInput);
    assert_eq!(m.data_str().unwrap(), "<S>x</S>");
    let end = end_of_pipeline_input(rpid, pid);
    assert_eq!(end.message_type, MessageType::EndOfPipelineInput);
    assert!(end.data.is_empty());
    assert_eq!(end.pipeline_id, Some(pid));
}

#[test]
fn client_messages_decode_by_type() {
    let rpid = Uuid::from_u128(1);
    let pid = Some(Uuid::from_u128(2));
    let msg = |t, v: &PsValue| Message::from_value(Destination::Server, t, rpid, pid, v);
    // pypsrp's spelling of the call id.
    let pypsrp_max: PsValue = PsObject::new()
        .with_property("MaxRunspaces", 5)
        .with_property("CI", 1_i64)
        .into();
    assert_eq!(
        ClientMessage::decode(&msg(MessageType::SetMaxRunspaces, &pypsrp_max)).unwrap(),
        ClientMessage::SetMaxRunspaces {
            max_runspaces: 5,
            call_id: 1
        }
    );
    assert_eq!(
        ClientMessage::decode(&msg(MessageType::SetMinRunspaces, &set_min_runspaces(2, 3)))
            .unwrap(),
        ClientMessage::SetMinRunspaces {
            min_runspaces: 2,
            call_id: 3
        }
    );
    assert_eq!(
        ClientMessage::decode(&msg(
            MessageType::ResetRunspaceState,
            &reset_runspace_state(9)
        ))
        .unwrap(),
        ClientMessage::ResetRunspaceState { call_id: 9 }
    );
    assert_eq!(
        ClientMessage::decode(&end_of_pipeline_input(rpid, Uuid::from_u128(2))).unwrap(),
        ClientMessage::EndOfPipelineInput
    );
    assert_eq!(
        ClientMessage::decode(&pipeline_input(rpid, Uuid::from_u128(2), &PsValue::I32(4))).unwrap(),
        ClientMessage::PipelineInput(PsValue::I32(4))
    );
    let create = CreatePipeline::new(PowerShell::new(vec![Command::new("Get-Date")]));
    assert_eq!(
        ClientMessage::decode(&msg(
            MessageType::CreatePipeline,
            &create.to_value(ProtocolVersion::V2_3)
        ))
        .unwrap(),
        ClientMessage::CreatePipeline(Box::new(create))
    );
    assert_eq!(
        ClientMessage::decode(&msg(MessageType::GetAvailableRunspaces, &PsValue::Null))
            .unwrap_err(),
        Error::WrongType {
            message: "runspace pool call",
            property: "(body)",
            expected: "an object"
        }
    );
}

mod create_pipeline_direct {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        // Plain names, markup, the `_xHHHH_` escape's own characters, control characters
        // and non-ASCII text.
        prop_oneof![
            "[A-Za-z-]{0,12}",
            proptest::collection::vec(
                proptest::sample::select(vec![
                    'a',
                    '_',
                    'x',
                    '<',
                    '&',
                    '"',
                    '\n',
                    '\u{1}',
                    'é',
                    '\u{10437}'
                ]),
                0..10
            )
            .prop_map(|c| c.into_iter().collect()),
        ]
    }

    fn value() -> impl Strategy<Value = PsValue> {
        let leaf = prop_oneof![
            Just(PsValue::Null),
            any::<bool>().prop_map(PsValue::Bool),
            any::<i32>().prop_map(PsValue::I32),
            any::<i64>().prop_map(PsValue::I64),
            text().prop_map(PsValue::String),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(|items| PsObject::list(
                    ["System.Object[]", "System.Array"],
                    items
                )
                .into()),
                (text(), inner).prop_map(|(n, v)| PsObject::new().with_property(n, v).into()),
            ]
        })
    }

    fn merge() -> impl Strategy<Value = PipelineResultTypes> {
        (0i64..6).prop_map(PipelineResultTypes::from_value)
    }

    fn command() -> impl Strategy<Value = Command> {
        (
            text(),
            any::<bool>(),
            proptest::option::of(any::<bool>()),
            proptest::collection::vec((proptest::option::of(text()), value()), 0..3),
            proptest::collection::vec(merge(), 8),
        )
            .prop_map(|(cmd, is_script, local, args, m)| {
                let mut c = if is_script {
                    Command::script(cmd)
                } else {
                    Command::new(cmd)
                };
                c.use_local_scope = local;
                for (name, value) in args {
                    c = c.arg(match name {
                        Some(n) => Argument::named(n, value),
                        None => Argument::positional(value),
                    });
                }
                c.merge_my_result = m[0];
                c.merge_to_result = m[1];
                c.merge_previous_results = m[2];
                c.merge_error = m[3];
                c.merge_warning = m[4];
                c.merge_verbose = m[5];
                c.merge_debug = m[6];
                c.merge_information = m[7];
                c
            })
    }

    proptest! {
        /// The CREATE_PIPELINE written directly is the text of its object tree, for every
        /// protocol version, statement count, argument and host.
        #[test]
        fn to_clixml_writes_what_to_value_serializes(
            statements in proptest::collection::vec(proptest::collection::vec(command(), 0..3), 0..3),
            flags in any::<[bool; 6]>(),
            history in proptest::option::of(text()),
            options in prop_oneof![Just(0), Just(15), 0i32..16],
            host_data in proptest::option::of(value()),
            version in proptest::sample::select(vec![ProtocolVersion::V2_1, ProtocolVersion::V2_2, ProtocolVersion::V2_3]),
        ) {
            let mut ps = PowerShell::new(Vec::new());
            ps.statements = statements;
            ps.is_nested = flags[0];
            ps.history = history;
            ps.redirect_shell_error_output_pipe = flags[1];
            let mut create = CreatePipeline::new(ps);
            create.no_input = flags[2];
            create.add_to_history = flags[3];
            create.is_nested = flags[4];
            create.remote_stream_options = RemoteStreamOptions(options);
            if flags[5] {
                create.apartment_state = ApartmentState::from_value(1);
            }
            create.host_info.host_default_data = host_data;
            let want = clixml::to_string(&create.to_value(version));
            prop_assert_eq!(create.to_clixml(version), want);
        }
    }
}
