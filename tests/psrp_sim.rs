//! The PowerShell Remoting client against the simulator's PSRP endpoint: pools, pipelines
//! of built-in and registered cmdlets, typed output, input, several pipelines at once,
//! cancel (stop signal at the server, buffered output delivered, `Stopped` last), host
//! calls, failures, small envelopes, disconnect/reconnect and connect from another
//! client.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio_winrm::psrp::{
    ErrorRecord, HostCall, HostMethod, PipelineEnd, PsEvent, PsHost, PsObject, PsValue,
};
use tokio_winrm::{Auth, CancelReason, Client, Error};
use winrm_simulator::{CmdletContext, Simulator};

async fn within<T>(secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test step timed out")
}

async fn setup() -> (Simulator, Client) {
    let sim = Simulator::start().await.unwrap();
    let client = client_of(&sim, 153_600);
    (sim, client)
}

fn client_of(sim: &Simulator, max_envelope: u32) -> Client {
    Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(5))
        .max_envelope_size(max_envelope)
        .build()
        .unwrap()
}

async fn drain(p: tokio_winrm::psrp::Pipeline) -> Vec<PsEvent> {
    within(20, p.collect::<Vec<_>>())
        .await
        .into_iter()
        .map(|e| e.expect("event"))
        .collect()
}

fn outputs(evs: &[PsEvent]) -> Vec<PsValue> {
    evs.iter()
        .filter_map(|e| match e {
            PsEvent::Output(v) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

fn the_end(evs: &[PsEvent]) -> &PipelineEnd {
    let n = evs
        .iter()
        .filter(|e| matches!(e, PsEvent::State(_)))
        .count();
    assert_eq!(n, 1, "exactly one final state: {evs:?}");
    match evs.last() {
        Some(PsEvent::State(s)) => s,
        other => panic!("the final state is not last: {other:?}"),
    }
}

#[derive(Debug, serde::Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct Service {
    name: String,
    status: String,
}

#[tokio::test]
async fn open_run_typed_output_and_close() {
    let (sim, c) = setup().await;
    let pool = within(10, c.runspace_pool().open()).await.expect("open");
    assert_eq!(pool.protocol_version().to_string(), "2.3");
    assert!(pool.application_private_data().is_some());
    let got = within(
        10,
        pool.pipeline()
            .command("Get-Service")
            .param("Name", "WinRM")
            .invoke_as::<Service>(),
    )
    .await
    .expect("invoke");
    assert_eq!(got.output.len(), 1, "{got:?}");
    assert_eq!(got.output[0].name, "WinRM");
    assert!(!got.had_errors());
    // An object that does not fit: the error names its place and PowerShell type.
    let e = within(
        10,
        pool.pipeline()
            .command("Get-Service")
            .param("Name", "WinRM")
            .invoke_as::<u32>(),
    )
    .await
    .expect_err("a service is not a number");
    let text = e.to_string();
    assert!(matches!(e, tokio_winrm::Error::Psrp(_)), "{e:?}");
    assert!(
        text.contains("output object 0") && text.contains("ServiceController"),
        "{text}"
    );
    // Piped commands and a script.
    let inv = within(
        10,
        pool.pipeline()
            .command("Get-Service")
            .command("Select-Object")
            .param("First", 2)
            .statement()
            .script("Write-Output 'after'")
            .invoke(),
    )
    .await
    .expect("two statements");
    assert_eq!(inv.output.len(), 3, "{inv:?}");
    assert_eq!(inv.output[2].as_str(), Some("after"));
    // Each finished pipeline's command is released on the server (Signal terminate, on
    // a task of its own) while the pool stays open.
    let released = async {
        while sim.counters().running_commands != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    within(10, released).await;
    assert!(sim.counters().signals >= 3, "{:?}", sim.counters());
    assert_eq!(sim.counters().open_shells, 1, "the pool stays open");
    within(10, pool.close()).await.expect("close");
    c.shutdown().await;
    assert_eq!(sim.counters().open_shells, 0, "the pool's shell is deleted");
}

#[tokio::test]
async fn streams_arrive_as_their_records() {
    let (_sim, c) = setup().await;
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let p = within(
        10,
        pool.pipeline()
            .script("Write-Warning 'w'; Write-Verbose 'v' -Verbose; Write-Error 'e'; Write-Information 'i'; Write-Output 'o'")
            .start(),
    )
    .await
    .unwrap();
    let evs = drain(p).await;
    assert!(
        evs.iter()
            .any(|e| matches!(e, PsEvent::Warning(r) if r.message == "w")),
        "{evs:?}"
    );
    assert!(
        evs.iter()
            .any(|e| matches!(e, PsEvent::Error(r) if r.message == "e")),
        "{evs:?}"
    );
    assert!(
        evs.iter()
            .any(|e| matches!(e, PsEvent::Information(r) if r.message() == Some("i"))),
        "{evs:?}"
    );
    assert_eq!(outputs(&evs), [PsValue::from("o")]);
    assert_eq!(the_end(&evs), &PipelineEnd::Completed);
    // Merged: the error record arrives as output.
    let inv = within(
        10,
        pool.pipeline()
            .command("Write-Error")
            .param("Message", "merged")
            .merge_error_to_output()
            .invoke(),
    )
    .await
    .unwrap();
    assert!(inv.errors.is_empty(), "{inv:?}");
    assert_eq!(inv.output.len(), 1);
    assert!(ErrorRecord::from_value(&inv.output[0]).is_ok_and(|e| e.message == "merged"));
    pool.close().await.unwrap();
}

#[tokio::test]
async fn input_objects_given_up_front_or_streamed() {
    let (sim, c) = setup().await;
    sim.register_cmdlet("Double-It", |mut ctx: CmdletContext| async move {
        while let Some(v) = ctx.next_input().await {
            let n = v.as_i64().unwrap_or(0);
            ctx.write_output(PsValue::from(n * 2)).await;
        }
        Ok(())
    });
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let inv = within(
        10,
        pool.pipeline()
            .command("Double-It")
            .input([1, 2, 3])
            .invoke(),
    )
    .await
    .unwrap();
    let got: Vec<i64> = inv.output.iter().filter_map(PsValue::as_i64).collect();
    assert_eq!(got, [2, 4, 6]);
    // Streamed by the caller, with serde, while output comes back.
    let mut p = within(
        10,
        pool.pipeline()
            .command("Double-It")
            .streaming_input()
            .start(),
    )
    .await
    .unwrap();
    for n in 0..50i64 {
        within(10, p.send_input_as(&n)).await.unwrap();
    }
    within(10, p.end_input()).await.unwrap();
    let mut got = Vec::new();
    while let Some(ev) = within(10, p.next()).await {
        match ev.unwrap() {
            PsEvent::Output(v) => got.push(v.as_i64().unwrap()),
            PsEvent::State(s) => assert_eq!(s, PipelineEnd::Completed),
            _ => {}
        }
    }
    assert_eq!(got, (0..50).map(|n| n * 2).collect::<Vec<_>>());
    pool.close().await.unwrap();
}

#[tokio::test]
async fn several_pipelines_run_at_once_up_to_max_runspaces() {
    let (sim, c) = setup().await;
    // Each call waits until three are running at once: they finish only if the pool
    // runs three pipelines together.
    let barrier = Arc::new(tokio::sync::Barrier::new(3));
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    {
        let (barrier, running, peak) = (barrier.clone(), running.clone(), peak.clone());
        sim.register_cmdlet("Meet", move |ctx: CmdletContext| {
            let (barrier, running, peak) = (barrier.clone(), running.clone(), peak.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                barrier.wait().await;
                running.fetch_sub(1, Ordering::SeqCst);
                ctx.write_output("met").await;
                Ok(())
            }
        });
    }
    let pool = within(10, c.runspace_pool().max_runspaces(3).open())
        .await
        .unwrap();
    assert_eq!(pool.max_runspaces(), 3);
    let runs = (0..3).map(|_| pool.pipeline().command("Meet").invoke());
    let results = within(20, futures_util::future::join_all(runs)).await;
    for r in results {
        assert_eq!(r.unwrap().output, [PsValue::from("met")]);
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    // With every runspace busy, the next start() waits for one.
    let sleepers: Vec<_> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(
                within(
                    10,
                    pool.pipeline()
                        .command("Start-Sleep")
                        .param("Milliseconds", 300)
                        .start(),
                )
                .await
                .unwrap(),
            );
        }
        v
    };
    assert_eq!(pool.available_runspaces(), 0);
    let waiting = pool.pipeline().command("Get-Date").start();
    tokio::pin!(waiting);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), &mut waiting)
            .await
            .is_err(),
        "a fourth pipeline started with three runspaces busy"
    );
    for s in sleepers {
        assert_eq!(the_end(&drain(s).await), &PipelineEnd::Completed);
    }
    let late = within(10, waiting).await.unwrap();
    assert_eq!(the_end(&drain(late).await), &PipelineEnd::Completed);
    pool.close().await.unwrap();
}

#[tokio::test]
async fn cancel_stops_at_the_server_delivers_what_arrived_and_ends_stopped() {
    let (sim, c) = setup().await;
    sim.register_cmdlet("Emit-Then-Hang", |ctx: CmdletContext| async move {
        for n in 1..=3 {
            ctx.write_output(PsValue::from(n)).await;
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    });
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let mut p = within(10, pool.pipeline().command("Emit-Then-Hang").start())
        .await
        .unwrap();
    // The first output is here; its Receive is answered and the next is pending.
    let first = within(10, p.next()).await.unwrap().unwrap();
    assert_eq!(first, PsEvent::Output(PsValue::from(1)));
    assert_eq!(sim.counters().pipeline_stops, 0);
    p.cancel();
    let rest = drain(p).await;
    assert_eq!(
        the_end(&rest),
        &PipelineEnd::Stopped {
            reason: Some(CancelReason::User)
        }
    );
    // Everything before the final state is output that had arrived.
    assert!(
        rest[..rest.len() - 1]
            .iter()
            .all(|e| matches!(e, PsEvent::Output(_))),
        "{rest:?}"
    );
    // The stop signal reaches the server (without waiting for the hour).
    within(10, async {
        while sim.counters().pipeline_stops == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(sim.last_pipeline_stop_at().is_some());
    // The pool is still usable.
    let inv = within(10, pool.pipeline().command("Get-Date").invoke())
        .await
        .unwrap();
    assert_eq!(inv.output.len(), 1);
    within(10, pool.close()).await.unwrap();
    within(10, c.shutdown()).await;
}

#[tokio::test]
async fn a_deadline_stops_the_pipeline_with_reason_timeout_and_drop_stops_it_too() {
    let (sim, c) = setup().await;
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let err = within(
        10,
        pool.pipeline()
            .command("Start-Sleep")
            .param("Seconds", 3600)
            .deadline(Duration::from_millis(200))
            .invoke(),
    )
    .await
    .expect_err("stopped by its deadline");
    assert!(
        matches!(
            err,
            Error::Cancelled {
                reason: CancelReason::Timeout
            }
        ),
        "{err:?}"
    );
    assert!(err.is_timeout());
    let p = within(
        10,
        pool.pipeline()
            .command("Start-Sleep")
            .param("Seconds", 3600)
            .start(),
    )
    .await
    .unwrap();
    drop(p);
    within(10, c.shutdown()).await; // waits for the stop signal of the dropped pipeline
    assert_eq!(sim.counters().pipeline_stops, 2);
    pool.close().await.unwrap();
}

#[tokio::test]
async fn read_host_is_answered_not_interactive_or_by_an_installed_host() {
    let (_sim, c) = setup().await;
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let err = within(
        10,
        pool.pipeline()
            .command("Read-Host")
            .param("Prompt", "Name")
            .invoke(),
    )
    .await
    .expect_err("no one to ask");
    match &err {
        Error::PipelineFailed { error } => {
            assert!(error.message.contains("not interactive"), "{error:?}")
        }
        other => panic!("{other:?}"),
    }
    pool.close().await.unwrap();

    struct Typist(AtomicUsize);
    impl PsHost for Typist {
        fn call(&self, call: &HostCall) -> Result<PsValue, Box<ErrorRecord>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            match call.method {
                HostMethod::ReadLine => Ok("Ada".into()),
                _ => Ok(PsValue::Null),
            }
        }
    }
    let pool = within(
        10,
        c.runspace_pool().host(Typist(AtomicUsize::new(0))).open(),
    )
    .await
    .unwrap();
    let inv = within(
        10,
        pool.pipeline()
            .command("Read-Host")
            .param("Prompt", "Name")
            .invoke(),
    )
    .await
    .unwrap();
    assert_eq!(inv.output, [PsValue::from("Ada")]);
    pool.close().await.unwrap();
}

#[tokio::test]
async fn failures_are_typed() {
    let (sim, c) = setup().await;
    sim.register_cmdlet("Throw-It", |_ctx: CmdletContext| async move {
        Err(ErrorRecord::new(
            "it broke",
            "ItBroke",
            tokio_winrm::psrp::ErrorCategory::InvalidOperation,
        ))
    });
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let p = within(10, pool.pipeline().command("Throw-It").start())
        .await
        .unwrap();
    let evs = drain(p).await;
    match the_end(&evs) {
        PipelineEnd::Failed(e) => assert_eq!(e.message, "it broke"),
        other => panic!("{other:?}"),
    }
    let err = within(10, pool.pipeline().command("Get-NoSuchThing").invoke())
        .await
        .expect_err("no such command");
    match &err {
        Error::PipelineFailed { error } => assert!(
            error
                .fully_qualified_error_id
                .as_deref()
                .is_some_and(|id| id.starts_with("CommandNotFoundException")),
            "{error:?}"
        ),
        other => panic!("{other:?}"),
    }
    // A configuration the host does not have is a fault on the Create.
    let e = within(
        10,
        c.runspace_pool().configuration("No.Such.Endpoint").open(),
    )
    .await
    .expect_err("no such configuration");
    assert!(e.fault().is_some(), "{e:?}");
    pool.close().await.unwrap();
}

#[tokio::test]
async fn small_envelopes_fragment_both_ways() {
    let sim = Simulator::start().await.unwrap();
    let c = client_of(&sim, 8_192);
    sim.register_cmdlet("Echo-Big", |mut ctx: CmdletContext| async move {
        while let Some(v) = ctx.next_input().await {
            ctx.write_output(v).await;
        }
        Ok(())
    });
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let big = "x".repeat(40_000);
    let script = format!("Write-Output '{big}'");
    let inv = within(10, pool.pipeline().script(script).invoke())
        .await
        .unwrap();
    assert_eq!(inv.output, [PsValue::from(big.clone())]);
    let obj: PsValue = PsObject::new()
        .with_property("Blob", big.clone())
        .with_property("N", 7)
        .into();
    let inv = within(
        10,
        pool.pipeline()
            .command("Echo-Big")
            .input([obj, PsValue::from(big.clone())])
            .invoke(),
    )
    .await
    .unwrap();
    assert_eq!(inv.output.len(), 2);
    assert_eq!(
        inv.output[0].property("Blob").and_then(PsValue::as_str),
        Some(big.as_str())
    );
    assert_eq!(inv.output[1].as_str(), Some(big.as_str()));
    pool.close().await.unwrap();
}

#[tokio::test]
async fn a_pipeline_survives_disconnect_and_is_read_after_reconnect_or_connect() {
    let (sim, c) = setup().await;
    let gate = Arc::new(tokio::sync::Notify::new());
    {
        let gate = gate.clone();
        sim.register_cmdlet("Wait-Then-Emit", move |ctx: CmdletContext| {
            let gate = gate.clone();
            async move {
                ctx.write_output("before").await;
                gate.notified().await;
                ctx.write_output("after").await;
                Ok(())
            }
        });
    }
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let mut p = within(10, pool.pipeline().command("Wait-Then-Emit").start())
        .await
        .unwrap();
    assert_eq!(
        within(10, p.next()).await.unwrap().unwrap(),
        PsEvent::Output("before".into())
    );
    let command_id = p.id().to_string();
    let gone = within(20, pool.disconnect(None)).await.expect("disconnect");
    match within(10, p.next()).await {
        Some(Err(Error::Disconnected { command_id: id, .. })) => {
            assert!(id.eq_ignore_ascii_case(&command_id))
        }
        other => panic!("{other:?}"),
    }
    gate.notify_one();
    let pool = within(10, gone.reconnect()).await.expect("reconnect");
    let p = within(10, pool.resume_pipeline(&command_id)).await.unwrap();
    let evs = drain(p).await;
    assert_eq!(outputs(&evs), [PsValue::from("after")]);
    assert_eq!(the_end(&evs), &PipelineEnd::Completed);

    // Another client connects to a disconnected pool and reads its pipeline.
    let mut p = within(10, pool.pipeline().command("Wait-Then-Emit").start())
        .await
        .unwrap();
    assert!(matches!(
        within(10, p.next()).await,
        Some(Ok(PsEvent::Output(_)))
    ));
    let command_id = p.id().to_string();
    let gone = within(20, pool.disconnect(None)).await.expect("disconnect");
    drop(p);
    let shell_id = gone.shell_id().to_string();
    gate.notify_one();
    let other = client_of(&sim, 153_600);
    let pool = within(10, other.runspace_pool().connect(shell_id))
        .await
        .expect("connect");
    let p = within(10, pool.attach_pipeline(&command_id)).await.unwrap();
    let evs = drain(p).await;
    assert_eq!(outputs(&evs), [PsValue::from("after")]);
    within(10, pool.close()).await.unwrap();
    other.shutdown().await;
    c.shutdown().await;
    assert_eq!(sim.counters().open_shells, 0);
}

#[tokio::test]
async fn a_slow_reader_holds_back_the_receives() {
    let (sim, c) = setup().await;
    sim.register_cmdlet("Count-To", |ctx: CmdletContext| async move {
        for n in 0..20_000i64 {
            ctx.write_output(PsValue::from(n)).await;
        }
        Ok(())
    });
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let mut p = within(
        10,
        pool.pipeline().command("Count-To").event_buffer(16).start(),
    )
    .await
    .unwrap();
    assert!(matches!(
        within(10, p.next()).await,
        Some(Ok(PsEvent::Output(_)))
    ));
    // The buffer is full and nothing reads it: no further Receive goes out.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = c.transport_stats().requests;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        c.transport_stats().requests,
        before,
        "Receives went on while nobody read"
    );
    let rest = drain(p).await;
    assert_eq!(outputs(&rest).len(), 19_999);
    assert_eq!(the_end(&rest), &PipelineEnd::Completed);
    pool.close().await.unwrap();
}

#[tokio::test]
async fn pools_pipelines_and_their_futures_can_move_between_tasks() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let (_sim, c) = setup().await;
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    send_sync(&pool);
    let fut = pool.pipeline().command("Get-Date").invoke();
    send(&fut);
    drop(fut);
    let pool = Arc::new(pool);
    let p2 = Arc::clone(&pool);
    let got = tokio::spawn(async move {
        let p = p2.pipeline().command("Get-Date").start().await.unwrap();
        send(&p);
        p.invoke().await.unwrap()
    })
    .await
    .unwrap();
    assert_eq!(got.output.len(), 1);
    Arc::try_unwrap(pool).unwrap().close().await.unwrap();
}

#[tokio::test]
async fn an_unknown_parameter_fails_the_pipeline_as_windows_does() {
    let (_sim, c) = setup().await;
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let err = within(
        10,
        pool.pipeline()
            .command("Get-Service")
            .param("Nme", "WinRM")
            .invoke(),
    )
    .await
    .expect_err("no parameter Nme");
    match &err {
        Error::PipelineFailed { error } => {
            assert_eq!(
                error.message,
                "A parameter cannot be found that matches parameter name 'Nme'."
            );
            assert_eq!(
                error.fully_qualified_error_id.as_deref(),
                Some("NamedParameterNotFound,Microsoft.PowerShell.Commands.GetServiceCommand")
            );
            assert_eq!(
                error.category,
                tokio_winrm::psrp::ErrorCategory::InvalidArgument
            );
            assert_eq!(
                error.exception_type.as_deref(),
                Some("System.Management.Automation.ParameterBindingException")
            );
        }
        other => panic!("{other:?}"),
    }
    // A prefix of a parameter, any case, and the common parameters bind.
    let got = within(
        10,
        pool.pipeline()
            .command("Get-Service")
            .param("na", "WinRM")
            .param("ErrorAction", "Stop")
            .invoke_as::<Service>(),
    )
    .await
    .unwrap();
    assert_eq!(got.output.len(), 1);
    assert_eq!(got.output[0].name, "WinRM");
    // In a script, the statement fails and the next one runs.
    let got = within(
        10,
        pool.pipeline()
            .script("Get-Process -Bogus 1\nWrite-Output 'next'")
            .invoke(),
    )
    .await
    .unwrap();
    assert_eq!(got.output, vec![PsValue::from("next")]);
    assert_eq!(got.errors.len(), 1);
    assert_eq!(
        got.errors[0].fully_qualified_error_id.as_deref(),
        Some("NamedParameterNotFound,Microsoft.PowerShell.Commands.GetProcessCommand")
    );
    // A registered cmdlet takes any parameter.
    _sim.register_cmdlet("Get-Widget", |ctx: CmdletContext| async move {
        let n = ctx.parameter("Anything").cloned().unwrap_or(PsValue::Null);
        ctx.write_output(n).await;
        Ok(())
    });
    let got = within(
        10,
        pool.pipeline()
            .command("Get-Widget")
            .param("Anything", 7)
            .invoke(),
    )
    .await
    .unwrap();
    assert_eq!(got.output, vec![PsValue::I32(7)]);
    // One that declared its parameters refuses others, naming itself.
    _sim.declare_cmdlet_parameters("Get-Widget", &["Anything", "Count"]);
    let err = within(
        10,
        pool.pipeline()
            .command("Get-Widget")
            .param("Colour", 7)
            .invoke(),
    )
    .await
    .expect_err("no parameter Colour");
    match &err {
        Error::PipelineFailed { error } => assert_eq!(
            error.fully_qualified_error_id.as_deref(),
            Some("NamedParameterNotFound,Get-Widget")
        ),
        other => panic!("{other:?}"),
    }
    let got = within(
        10,
        pool.pipeline()
            .command("Get-Widget")
            .param("any", 8)
            .invoke(),
    )
    .await
    .unwrap();
    assert_eq!(got.output, vec![PsValue::I32(8)]);
    pool.close().await.unwrap();
}

#[derive(Debug, serde::Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct Proc {
    name: String,
    id: i64,
    working_set64: i64,
    #[serde(rename = "CPU")]
    cpu: f64,
    path: Option<String>,
}

#[tokio::test]
async fn invoke_as_reads_many_objects_straight_into_structs_and_locates_a_misfit() {
    let sim = Simulator::start_with(winrm_simulator::SimConfig {
        psrp_synthetic_processes: 3000,
        ..Default::default()
    })
    .await
    .unwrap();
    let c = client_of(&sim, 153_600);
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let got = within(
        20,
        pool.pipeline().command("Get-Process").invoke_as::<Proc>(),
    )
    .await
    .unwrap();
    assert_eq!(got.output.len(), 3000);
    // The same objects as the owned path reads them.
    for (i, p) in got.output.iter().enumerate() {
        let v = winrm_simulator::synthetic_process(i);
        let want: Proc = tokio_winrm::psrp::from_value(&v).unwrap();
        assert_eq!(p, &want);
    }
    assert_eq!(got.output[7].name, "svchost7");
    assert_eq!(got.output[7].id, 1007);
    assert_eq!(
        got.output[7].path.as_deref(),
        Some("C:\\Windows\\System32\\Path-7")
    );
    // A filter on the synthetic processes.
    let got = within(
        10,
        pool.pipeline()
            .command("Get-Process")
            .param("Name", "svchost12")
            .invoke_as::<Proc>(),
    )
    .await
    .unwrap();
    assert_eq!(got.output.len(), 1);
    // An object that does not fit: its place and type in the error.
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Wrong {
        #[serde(rename = "Name")]
        name: i64,
    }
    let err = within(
        20,
        pool.pipeline().command("Get-Process").invoke_as::<Wrong>(),
    )
    .await
    .expect_err("a name is not a number");
    let text = err.to_string();
    assert!(
        text.contains("output object 0 (System.Diagnostics.Process)"),
        "{text}"
    );
    pool.close().await.unwrap();
}

#[tokio::test]
async fn the_server_counts_the_free_runspaces_of_the_pool() {
    let (sim, c) = setup().await;
    sim.register_cmdlet("Wait-Forever", |_ctx: CmdletContext| async move {
        std::future::pending::<()>().await;
        Ok(())
    });
    let pool = within(10, c.runspace_pool().max_runspaces(3).open())
        .await
        .unwrap();
    assert_eq!(
        within(10, pool.query_available_runspaces()).await.unwrap(),
        3
    );
    let busy = within(10, pool.pipeline().command("Wait-Forever").start())
        .await
        .unwrap();
    // The pipeline holds a runspace at the server once it runs.
    let mut free = 3;
    for _ in 0..100 {
        free = within(10, pool.query_available_runspaces()).await.unwrap();
        if free == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(free, 2);
    // A larger pool at the server, and here.
    assert!(within(10, pool.set_max_runspaces(5)).await.unwrap());
    assert_eq!(pool.max_runspaces(), 5);
    assert_eq!(pool.available_runspaces(), 4);
    assert_eq!(
        within(10, pool.query_available_runspaces()).await.unwrap(),
        4
    );
    // Shrinking below what runs waits for enough of it to end.
    let busy2 = within(10, pool.pipeline().command("Wait-Forever").start())
        .await
        .unwrap();
    {
        let shrink = pool.set_max_runspaces(1);
        tokio::pin!(shrink);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), &mut shrink)
                .await
                .is_err(),
            "shrinking to 1 waits while two pipelines run"
        );
        drop(busy);
        assert!(within(10, shrink).await.unwrap());
    }
    assert_eq!(pool.max_runspaces(), 1);
    drop(busy2);
    let mut free = 0;
    for _ in 0..100 {
        free = pool.available_runspaces();
        if free == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(free, 1);
    // 0 is refused before anything is sent (at the first poll), not taken as 1.
    let zero = futures_util::FutureExt::now_or_never(pool.set_max_runspaces(0));
    assert!(
        matches!(zero, Some(Err(tokio_winrm::Error::Config(_)))),
        "{zero:?}"
    );
    assert_eq!(pool.max_runspaces(), 1);
    pool.close().await.unwrap();
}

#[tokio::test]
async fn get_process_reads_the_ids_and_counters_of_the_process_table() {
    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct P {
        name: String,
        id: i64,
        handles: i64,
    }
    let (sim, c) = setup().await;
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    // Win32_Process holds ProcessId 4 for System, as Windows does.
    let got = within(
        10,
        pool.pipeline()
            .command("Get-Process")
            .param("Id", 4)
            .invoke_as::<P>(),
    )
    .await
    .unwrap();
    assert_eq!(got.output.len(), 1, "{:?}", got.errors);
    assert_eq!(
        (got.output[0].name.as_str(), got.output[0].id),
        ("System", 4)
    );
    assert!(got.output[0].handles > 0, "{:?}", got.output[0]);
    // Each svchost its own id, as Get-Process shows them.
    let got = within(
        10,
        pool.pipeline()
            .command("Get-Process")
            .param("Name", "svchost")
            .invoke_as::<P>(),
    )
    .await
    .unwrap();
    let mut ids: Vec<i64> = got.output.iter().map(|p| p.id).collect();
    assert!(ids.len() > 1, "{ids:?}");
    assert!(ids.iter().all(|&i| i > 0), "{ids:?}");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), got.output.len());
    pool.close().await.unwrap();
    c.shutdown().await;
    assert_eq!(sim.counters().open_shells, 0);
}

#[tokio::test]
async fn secure_strings_go_both_ways_after_a_key_exchange_made_on_first_use() {
    use secrecy::ExposeSecret as _;
    use tokio_winrm::psrp::SessionKey;
    // A host that types a password: ReadLineAsSecureString needs the session key, so
    // the pool exchanges it in the middle of the pipeline, before asking the host.
    struct Typist(Arc<AtomicUsize>);
    impl PsHost for Typist {
        fn call(&self, _: &HostCall) -> Result<PsValue, Box<ErrorRecord>> {
            panic!("a host that overrides call_with_session_key is called through it")
        }
        fn call_with_session_key(
            &self,
            call: &HostCall,
            key: Option<&SessionKey>,
        ) -> Result<PsValue, Box<ErrorRecord>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            match call.method {
                HostMethod::ReadLineAsSecureString => Ok(PsValue::SecureString(
                    key.expect("exchanged first").encrypt("s3cret pässword"),
                )),
                _ => Ok(PsValue::Null),
            }
        }
    }
    let (sim, c) = setup().await;
    sim.register_cmdlet("Show-Secret", |ctx: CmdletContext| async move {
        let v = ctx.parameter("Secret").cloned().unwrap_or(PsValue::Null);
        ctx.write_output(v).await;
        Ok(())
    });
    let typed = Arc::new(AtomicUsize::new(0));
    let pool = within(
        10,
        c.runspace_pool().host(Typist(Arc::clone(&typed))).open(),
    )
    .await
    .unwrap();
    let inv = within(
        10,
        pool.pipeline()
            .command("Read-Host")
            .switch("AsSecureString")
            .invoke(),
    )
    .await
    .unwrap();
    assert_eq!(typed.load(Ordering::SeqCst), 1);
    assert_eq!(inv.output.len(), 1, "{inv:?}");
    let PsValue::SecureString(typed) = &inv.output[0] else {
        panic!("{:?}", inv.output[0]);
    };
    assert_eq!(
        pool.decrypt(typed).unwrap().expose_secret(),
        "s3cret pässword"
    );
    // A parameter: encrypted with the key already exchanged (no second exchange).
    let secret = within(10, pool.secure_string("from the client"))
        .await
        .unwrap();
    within(10, pool.exchange_keys()).await.unwrap();
    let inv = within(
        10,
        pool.pipeline()
            .command("Show-Secret")
            .param("Secret", secret.clone())
            .invoke(),
    )
    .await
    .unwrap();
    assert_eq!(inv.output, [secret]);
    let PsValue::SecureString(back) = &inv.output[0] else {
        panic!("{:?}", inv.output[0]);
    };
    assert_eq!(
        pool.decrypt(back).unwrap().expose_secret(),
        "from the client"
    );
    // Another pool has another key: this pool's SecureString means nothing there.
    let other = within(10, c.runspace_pool().open()).await.unwrap();
    within(10, other.exchange_keys()).await.unwrap();
    assert!(
        other
            .decrypt(back)
            .map_or(true, |t| t.expose_secret() != "from the client")
    );
    pool.close().await.unwrap();
    other.close().await.unwrap();
}

/// `throw` is a terminating error, as on Windows: the pipeline stops at it (what ran
/// before it is delivered, nothing after it runs) and ends Failed with the record
/// Windows sends (pypsrp's `test_client_fetch_file_fail_missing.yml`): a
/// `RuntimeException` with the thrown text as its message and error id, category
/// OperationStopped; a bare `throw` is `ScriptHalted`.
#[tokio::test]
async fn throw_ends_the_pipeline_failed_with_a_runtime_exception() {
    let (_sim, c) = setup().await;
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let p = within(
        10,
        pool.pipeline()
            .script("Write-Output a; throw 'bad'; Write-Output b")
            .start(),
    )
    .await
    .unwrap();
    let evs = drain(p).await;
    assert_eq!(outputs(&evs), [PsValue::from("a")]);
    assert!(
        !evs.iter().any(|e| matches!(e, PsEvent::Error(_))),
        "a thrown error is not written to the error stream: {evs:?}"
    );
    match the_end(&evs) {
        PipelineEnd::Failed(e) => {
            assert_eq!(e.message, "bad");
            assert_eq!(e.fully_qualified_error_id.as_deref(), Some("bad"));
            assert_eq!(
                e.exception_type.as_deref(),
                Some("System.Management.Automation.RuntimeException")
            );
            assert_eq!(
                e.category,
                tokio_winrm::psrp::ErrorCategory::OperationStopped
            );
            assert_eq!(
                e.category_message.as_deref(),
                Some("OperationStopped: (bad:String) [], RuntimeException")
            );
            assert_eq!(e.target_object, Some(PsValue::from("bad")));
        }
        other => panic!("{other:?}"),
    }

    // invoke() returns the failure, not Ok with an error record.
    let err = within(10, pool.pipeline().script("throw 'bad'").invoke())
        .await
        .expect_err("a thrown error fails the pipeline");
    match &err {
        Error::PipelineFailed { error } => {
            assert_eq!(error.message, "bad");
            assert_eq!(error.fully_qualified_error_id.as_deref(), Some("bad"));
        }
        other => panic!("{other:?}"),
    }

    // A bare throw halts the script; a long message is shortened in the category
    // message as Windows does (first 15 characters, ..., last 15).
    let err = within(10, pool.pipeline().script("throw").invoke())
        .await
        .expect_err("bare throw");
    match &err {
        Error::PipelineFailed { error } => {
            assert_eq!(error.message, "ScriptHalted");
            assert_eq!(
                error.fully_qualified_error_id.as_deref(),
                Some("ScriptHalted")
            );
            assert_eq!(
                error.category_message.as_deref(),
                Some("OperationStopped: (:) [], RuntimeException")
            );
            assert_eq!(error.target_object, None);
        }
        other => panic!("{other:?}"),
    }
    let err = within(
        10,
        pool.pipeline()
            .script("throw \"The path at 'C:\\fakefile.txt' does not exist\"")
            .invoke(),
    )
    .await
    .expect_err("throw");
    match &err {
        Error::PipelineFailed { error } => assert_eq!(
            error.category_message.as_deref(),
            Some(
                "OperationStopped: (The path at 'C:... does not exist:String) [], RuntimeException"
            )
        ),
        other => panic!("{other:?}"),
    }

    // A script the simulator does not implement says so, naming the construct; a
    // real syntax error keeps PowerShell's parser message.
    let err = within(
        10,
        pool.pipeline()
            .script("Get-Service | Where-Object { $_.Status -eq 'Running' }")
            .invoke(),
    )
    .await
    .expect_err("not supported");
    match &err {
        Error::PipelineFailed { error } => {
            assert!(
                error
                    .message
                    .starts_with("Script blocks are not supported by the simulator: {"),
                "{error:?}"
            );
            assert_eq!(
                error.fully_qualified_error_id.as_deref(),
                Some("ParseException")
            );
        }
        other => panic!("{other:?}"),
    }
    let err = within(10, pool.pipeline().script("Where-Object { 'a' ").invoke())
        .await
        .expect_err("syntax error");
    match &err {
        Error::PipelineFailed { error } => {
            assert_eq!(
                error.message,
                "Missing closing '}' in statement block or type definition."
            );
            assert_eq!(
                error.exception_type.as_deref(),
                Some("System.Management.Automation.ParseException")
            );
        }
        other => panic!("{other:?}"),
    }
    pool.close().await.unwrap();
}

fn is_pool_closed(e: &Error) -> bool {
    matches!(e, Error::State(m) if m == "the runspace pool is closed")
}

/// After `close()`, a pipeline still being read ends with the closed-pool error (after
/// what it had received), not with the server's fault for the deleted shell; a builder
/// made before the close fails to start with that error and sends nothing; nor does a
/// running pipeline's input go out.
#[tokio::test]
async fn a_closed_pool_fails_its_pipelines_and_builders_without_asking_the_server() {
    let (sim, c) = setup().await;
    sim.register_cmdlet("Trickle", |ctx: CmdletContext| async move {
        ctx.write_output("first").await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        ctx.write_output("never").await;
        Ok(())
    });
    let pool = within(10, c.runspace_pool().max_runspaces(3).open())
        .await
        .unwrap();
    // Being read when close() runs.
    let mut reading = within(10, pool.pipeline().command("Trickle").start())
        .await
        .unwrap();
    match within(10, reading.next()).await {
        Some(Ok(PsEvent::Output(v))) => assert_eq!(v, PsValue::from("first")),
        other => panic!("{other:?}"),
    }
    let reader = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Some(item) = reading.next().await {
            rest.push(item);
        }
        rest
    });
    // Not being read when close() runs: a pipeline that takes input.
    let idle = within(
        10,
        pool.pipeline().command("Trickle").streaming_input().start(),
    )
    .await
    .unwrap();
    let builder = pool.pipeline().command("Get-Date");
    // Let the reader's Receive reach the server.
    tokio::time::sleep(Duration::from_millis(200)).await;
    within(10, pool.close()).await.unwrap();

    let rest = within(10, reader).await.unwrap();
    match rest.as_slice() {
        [Err(e)] => assert!(is_pool_closed(e), "{e:?}"),
        other => panic!("expected only the closed-pool error: {other:?}"),
    }
    let before = sim.counters();
    let e = within(10, builder.start())
        .await
        .expect_err("a pipeline of a closed pool");
    assert!(is_pool_closed(&e), "{e:?}");
    let e = within(10, idle.send_input("x"))
        .await
        .expect_err("input to a closed pool");
    assert!(is_pool_closed(&e), "{e:?}");
    let e = within(10, idle.invoke())
        .await
        .expect_err("reading a pipeline of a closed pool");
    assert!(is_pool_closed(&e), "{e:?}");
    let after = sim.counters();
    assert_eq!(
        after.requests, before.requests,
        "nothing is sent for a closed pool: {before:?} {after:?}"
    );
    assert_eq!(after.open_shells, 0, "{after:?}");
}

/// A `start()` dropped, or cancelled, while its Command is in flight leaves nothing
/// running on the server: the guard finishes the Command on a cleanup task, then sends
/// the stop signal and the Signal terminate for the pipeline it created.
#[tokio::test]
async fn a_start_abandoned_during_its_command_stops_the_pipeline_it_created() {
    use winrm_simulator::{Injection, Operation};
    let (sim, client) = setup().await;
    let pool = within(10, client.runspace_pool().open()).await.unwrap();
    for cancel in [false, true] {
        let before = sim.counters();
        // The Command reaches the server and waits there 300 ms; the caller gives up
        // after 50 ms (drops the future, or cancels its token).
        sim.inject(Injection::on(Operation::Command).delay(Duration::from_millis(300)));
        let token = tokio_util::sync::CancellationToken::new();
        let start = pool
            .pipeline()
            .script("Start-Sleep -Seconds 30")
            .cancellation(token.clone())
            .start();
        if cancel {
            let t = token.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                t.cancel();
            });
            let r = within(10, start).await;
            assert!(
                matches!(r, Err(Error::Cancelled { .. })),
                "cancelled start: {:?}",
                r.map(|_| ())
            );
        } else {
            let r = tokio::time::timeout(Duration::from_millis(50), start).await;
            assert!(
                r.is_err(),
                "the start should still be waiting for its Command"
            );
        }
        // The pipeline was created (the Command was answered), and stopped and released.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let now = sim.counters();
            if now.commands_started > before.commands_started
                && now.terminate_signals > before.terminate_signals
                && now.running_commands == 0
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "cancel={cancel}: the abandoned pipeline was not stopped: before {before:?}, now {now:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The pool still runs pipelines (its runspace came back).
        let out = within(10, pool.pipeline().script("Write-Output ok").invoke())
            .await
            .unwrap();
        assert_eq!(out.output.len(), 1);
    }
    within(10, pool.close()).await.unwrap();
    assert_eq!(sim.counters().open_shells, 0);
}
