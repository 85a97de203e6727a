//! Where a pipeline's Receive loop runs: in the stream's own polls while the consumer
//! waits on it, on a task of its own as soon as it has work while the consumer is away
//! (took an item and went on, abandoned a poll, has not polled yet), and `invoke()`
//! called from a thread outside the runtime's workers (`block_on`, as `#[tokio::main]`)
//! running the whole pipeline on one task. Whichever it is, the cancel contract holds:
//! the stop signal reaches the server without the stream being polled, what arrived is
//! delivered, `Stopped` comes last.

use std::time::Duration;

use futures_util::StreamExt as _;
use tokio_winrm::psrp::{PipelineEnd, PsEvent, PsValue};
use tokio_winrm::{Auth, CancelReason, Client, Error};
use winrm_simulator::{CmdletContext, Simulator};

async fn within<T>(secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test step timed out")
}

/// Waits (without touching any pipeline) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting for {what}");
}

/// Drops `pipeline` (a future that never ends: it runs `Emit-Slowly-Then-Hang`) after
/// 300 ms, then waits for the stop signal the drop sends.
async fn dropped_hang_sends_the_stop<T>(
    sim: &Simulator,
    pipeline: impl std::future::Future<Output = T>,
) {
    let stops = sim.counters().pipeline_stops;
    let dropped = tokio::time::timeout(Duration::from_millis(300), pipeline).await;
    assert!(
        dropped.is_err(),
        "the pipeline hangs: its future was dropped"
    );
    until("the stop signal", || {
        sim.counters().pipeline_stops == stops + 1
    })
    .await;
}

async fn setup() -> (Simulator, Client) {
    let sim = Simulator::start().await.unwrap();
    sim.register_cmdlet("Emit-Slowly-Then-Hang", |ctx: CmdletContext| async move {
        for n in 1..=3 {
            ctx.write_output(PsValue::from(n)).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    });
    let client = Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    (sim, client)
}

/// The rest of a stream: its outputs and its final state (which must come last, once).
async fn rest(p: tokio_winrm::psrp::Pipeline) -> (Vec<PsValue>, PipelineEnd) {
    let evs: Vec<PsEvent> = within(10, p.collect::<Vec<_>>())
        .await
        .into_iter()
        .map(|e| e.expect("event"))
        .collect();
    let mut outputs = Vec::new();
    let mut end = None;
    for ev in evs {
        assert!(end.is_none(), "an event after the final state: {ev:?}");
        match ev {
            PsEvent::Output(v) => outputs.push(v),
            PsEvent::State(s) => end = Some(s),
            other => panic!("unexpected {other:?}"),
        }
    }
    (outputs, end.expect("a final state"))
}

const USER_STOPPED: PipelineEnd = PipelineEnd::Stopped {
    reason: Some(CancelReason::User),
};

#[tokio::test]
async fn a_consumer_that_went_on_holds_back_neither_the_receives_nor_the_stop_signal() {
    let (sim, c) = setup().await;
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let mut p = within(10, pool.pipeline().command("Emit-Slowly-Then-Hang").start())
        .await
        .unwrap();
    let first = within(10, p.next()).await.unwrap().unwrap();
    assert_eq!(first, PsEvent::Output(PsValue::from(1)));
    // Nobody polls `p` from here: its Receives go on (the next objects arrive one
    // Receive each), ...
    let before = c.transport_stats().requests;
    until("further Receives", || {
        c.transport_stats().requests >= before + 2 && sim.counters().receives_pending == 1
    })
    .await;
    // ... and a cancel from another handle sends the stop signal at once.
    let handle = p.cancel_handle();
    std::thread::spawn(move || handle.cancel()).join().unwrap();
    until("the stop signal", || sim.counters().pipeline_stops == 1).await;
    let (outputs, end) = rest(p).await;
    assert_eq!(outputs, [PsValue::from(2), PsValue::from(3)]);
    assert_eq!(end, USER_STOPPED);
    within(10, pool.close()).await.unwrap();
    within(10, c.shutdown()).await;
}

#[tokio::test]
async fn a_poll_abandoned_while_pending_does_not_hold_back_a_cancel_or_a_deadline() {
    let (sim, c) = setup().await;
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    for deadline in [false, true] {
        let stops = sim.counters().pipeline_stops;
        let mut b = pool
            .pipeline()
            .command("Start-Sleep")
            .param("Seconds", 3600);
        if deadline {
            b = b.deadline(Duration::from_millis(300));
        }
        let mut p = within(10, b.start()).await.unwrap();
        // The stream is polled (its Receive goes out in that poll), then left.
        tokio::select! {
            ev = p.next() => panic!("an event from a sleeping pipeline: {ev:?}"),
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        if !deadline {
            p.cancel_handle().cancel();
        }
        until("the stop signal", || {
            sim.counters().pipeline_stops == stops + 1
        })
        .await;
        let (outputs, end) = rest(p).await;
        assert!(outputs.is_empty());
        let reason = if deadline {
            CancelReason::Timeout
        } else {
            CancelReason::User
        };
        assert_eq!(
            end,
            PipelineEnd::Stopped {
                reason: Some(reason)
            }
        );
    }
    // A stream never polled, then dropped: stopped too.
    let p = within(
        10,
        pool.pipeline()
            .command("Start-Sleep")
            .param("Seconds", 3600)
            .start(),
    )
    .await
    .unwrap();
    let stops = sim.counters().pipeline_stops;
    drop(p);
    until("the stop signal", || {
        sim.counters().pipeline_stops == stops + 1
    })
    .await;
    within(10, pool.close()).await.unwrap();
    within(10, c.shutdown()).await;
}

/// `#[tokio::test(flavor = "multi_thread")]` runs the body in `block_on`, outside the
/// workers, as `#[tokio::main]` does: `invoke()` runs the pipeline on a task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_from_outside_the_workers_gives_the_same_results_and_cancel_contract() {
    let (sim, c) = setup().await;
    let pool = within(10, c.runspace_pool().max_runspaces(4).open())
        .await
        .unwrap();
    let terminates = sim.counters().terminate_signals;
    for _ in 0..20 {
        let inv = within(10, pool.pipeline().command("Get-Date").invoke())
            .await
            .unwrap();
        assert_eq!(inv.output.len(), 1);
    }
    // Each finished pipeline's command is released (Signal terminate), without the
    // result having waited for it.
    until("20 Signal terminate", || {
        sim.counters().terminate_signals >= terminates + 20
    })
    .await;
    // Errors come back as they did.
    let err = within(10, pool.pipeline().command("No-Such-Cmdlet").invoke())
        .await
        .expect_err("an unknown command fails");
    assert!(matches!(err, Error::PipelineFailed { .. }), "{err:?}");
    // A deadline stops it; dropping the future stops it too.
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
    assert!(err.is_timeout(), "{err:?}");
    dropped_hang_sends_the_stop(
        &sim,
        pool.pipeline().command("Emit-Slowly-Then-Hang").invoke(),
    )
    .await;
    // All four runspaces are free again.
    until("the runspaces", || pool.available_runspaces() == 4).await;
    within(10, pool.close()).await.unwrap();
    within(10, c.shutdown()).await;
}

/// Wakes a parked thread: a minimal executor outside any Tokio runtime.
struct ThreadWaker(std::thread::Thread);

impl std::task::Wake for ThreadWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_polled_outside_any_runtime_is_driven_by_the_runtime_it_started_on() {
    let (sim, c) = setup().await;
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let terminates = sim.counters().terminate_signals;
    let mut p = within(10, pool.pipeline().command("Get-Date").start())
        .await
        .unwrap();
    let evs = std::thread::spawn(move || {
        let waker =
            std::task::Waker::from(std::sync::Arc::new(ThreadWaker(std::thread::current())));
        let mut cx = std::task::Context::from_waker(&waker);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut evs = Vec::new();
        loop {
            match futures_util::Stream::poll_next(std::pin::Pin::new(&mut p), &mut cx) {
                std::task::Poll::Ready(Some(ev)) => evs.push(ev.expect("event")),
                std::task::Poll::Ready(None) => return evs,
                std::task::Poll::Pending => {
                    assert!(std::time::Instant::now() < deadline, "no progress");
                    std::thread::park_timeout(Duration::from_millis(100));
                }
            }
        }
    })
    .join()
    .expect("no panic outside the runtime");
    assert_eq!(evs.len(), 2, "{evs:?}");
    assert!(matches!(evs[0], PsEvent::Output(_)), "{evs:?}");
    assert_eq!(evs[1], PsEvent::State(PipelineEnd::Completed));
    // Its command is released on the server all the same (the Signal terminate goes
    // out from the runtime's task, not from the foreign thread).
    until("the Signal terminate", || {
        sim.counters().terminate_signals == terminates + 1
    })
    .await;
    within(10, pool.close()).await.unwrap();
    within(10, c.shutdown()).await;
}

/// As `invoke()`, `invoke_as()` called from outside the workers runs the whole
/// pipeline (and the reading of each object into the caller's type) on a task: the
/// same objects, errors and misfits, and a dropped future still stops the pipeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_as_from_outside_the_workers_gives_the_same_results_and_cancel_contract() {
    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Proc {
        name: String,
        id: i64,
        path: Option<String>,
    }
    let (sim, c) = setup().await;
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let synthetic = Simulator::start_with(winrm_simulator::SimConfig {
        psrp_synthetic_processes: 500,
        ..Default::default()
    })
    .await
    .unwrap();
    let sc = Client::builder(synthetic.endpoint())
        .auth(Auth::basic(synthetic.user(), synthetic.password()))
        .allow_insecure_basic(true)
        .max_envelope_size(153_600)
        .build()
        .unwrap();
    let spool = within(10, sc.runspace_pool().open()).await.unwrap();
    let got = within(
        20,
        spool.pipeline().command("Get-Process").invoke_as::<Proc>(),
    )
    .await
    .unwrap();
    assert_eq!(got.output.len(), 500);
    for (i, p) in got.output.iter().enumerate() {
        let want: Proc =
            tokio_winrm::psrp::from_value(&winrm_simulator::synthetic_process(i)).unwrap();
        assert_eq!(p, &want);
    }
    // A misfit is located as on the caller's thread.
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Wrong {
        #[serde(rename = "Name")]
        name: i64,
    }
    let err = within(
        20,
        spool.pipeline().command("Get-Process").invoke_as::<Wrong>(),
    )
    .await
    .expect_err("a name is not a number");
    assert!(
        err.to_string()
            .contains("output object 0 (System.Diagnostics.Process)"),
        "{err}"
    );
    within(10, spool.close()).await.unwrap();
    within(10, sc.shutdown()).await;
    // Each object is read into `T` on the runtime's thread, not on the caller's.
    static READ_ON: std::sync::Mutex<Vec<std::thread::ThreadId>> =
        std::sync::Mutex::new(Vec::new());
    struct Where(i64);
    impl<'de> serde::Deserialize<'de> for Where {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let n = i64::deserialize(d)?;
            READ_ON.lock().unwrap().push(std::thread::current().id());
            Ok(Where(n))
        }
    }
    sim.register_cmdlet("Emit-Three", |ctx: CmdletContext| async move {
        for n in 1..=3 {
            ctx.write_output(PsValue::from(n)).await;
        }
        Ok(())
    });
    let got = within(
        10,
        pool.pipeline().command("Emit-Three").invoke_as::<Where>(),
    )
    .await
    .unwrap();
    assert_eq!(
        got.output.iter().map(|w| w.0).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let read_on = READ_ON.lock().unwrap().clone();
    assert_eq!(read_on.len(), 3);
    assert!(
        !read_on.contains(&std::thread::current().id()),
        "read on the caller's thread"
    );
    // An object the client cannot read (nested deeper than the reader's limit): its
    // typed error, and the pipeline is stopped on the server.
    sim.register_cmdlet("Emit-Too-Deep-Then-Hang", |ctx: CmdletContext| async move {
        let mut v = PsValue::from(1);
        for _ in 0..100 {
            v = tokio_winrm::psrp::PsObject::new()
                .with_property("Inner", v)
                .into();
        }
        ctx.write_output(v).await;
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    });
    let stops = sim.counters().pipeline_stops;
    let err = within(
        10,
        pool.pipeline()
            .command("Emit-Too-Deep-Then-Hang")
            .invoke_as::<i64>(),
    )
    .await
    .expect_err("too deep to read");
    assert!(matches!(err, Error::Psrp(_)), "{err:?}");
    until("the stop signal", || {
        sim.counters().pipeline_stops == stops + 1
    })
    .await;
    // A failed pipeline's error, and a dropped future stops the pipeline.
    let err = within(
        10,
        pool.pipeline().command("No-Such-Cmdlet").invoke_as::<i64>(),
    )
    .await
    .expect_err("an unknown command fails");
    assert!(matches!(err, Error::PipelineFailed { .. }), "{err:?}");
    dropped_hang_sends_the_stop(
        &sim,
        pool.pipeline()
            .command("Emit-Slowly-Then-Hang")
            .invoke_as::<i64>(),
    )
    .await;
    within(10, pool.close()).await.unwrap();
    within(10, c.shutdown()).await;
}

/// A stopped pipeline's command is released on the server (the stop signal, then
/// Signal terminate), as a finished one is: cancelled, failed or dropped pipelines do
/// not gather in a long-lived pool against the per-user quotas.
#[tokio::test]
async fn stopped_pipelines_are_released_on_the_server_as_finished_ones_are() {
    let (sim, c) = setup().await;
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    // Cancelled by handle after their first object, and dropped mid-stream.
    for _ in 0..3 {
        let mut p = within(10, pool.pipeline().command("Emit-Slowly-Then-Hang").start())
            .await
            .unwrap();
        let first = within(10, p.next()).await.unwrap().unwrap();
        assert_eq!(first, PsEvent::Output(PsValue::from(1)));
        p.cancel_handle().cancel();
        let (_, end) = rest(p).await;
        assert_eq!(end, USER_STOPPED);
    }
    let mut p = within(10, pool.pipeline().command("Emit-Slowly-Then-Hang").start())
        .await
        .unwrap();
    within(10, p.next()).await.unwrap().unwrap();
    drop(p);
    // And a finished one, for comparison.
    within(10, pool.pipeline().command("Get-Date").invoke())
        .await
        .unwrap();
    until("every command released", || {
        sim.counters().running_commands == 0
    })
    .await;
    let c2 = sim.counters();
    assert_eq!(c2.pipeline_stops, 4, "{c2:?}");
    assert_eq!(c2.terminate_signals, 5, "{c2:?}");
    within(10, pool.close()).await.unwrap();
    within(10, c.shutdown()).await;
}
