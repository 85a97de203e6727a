//! The runspace pool's own stream (a Receive on the pool's shell with no CommandId)
//! while pipelines run, against the simulator: the server's PUBLIC_KEY_REQUEST when a
//! pipeline outputs a SecureString and no key was exchanged, a pool-level host call, a
//! Broken pool ending its running pipelines, and the reader's interplay with pool
//! calls, disconnect/reconnect, close, drop, cancel and a small channel budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio_winrm::psrp::{
    ErrorCategory, ErrorRecord, HostCall, HostMethod, PipelineEnd, PsEvent, PsHost, PsValue,
    SessionKey,
};
use tokio_winrm::{Auth, Client, Error};
use winrm_simulator::{CmdletContext, Simulator};

async fn within<T>(secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test step timed out")
}

fn client_of(sim: &Simulator, max_channels: usize, operation_timeout: u64) -> Client {
    Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(operation_timeout))
        .max_channels(max_channels)
        .build()
        .unwrap()
}

async fn setup() -> (Simulator, Client) {
    let sim = Simulator::start().await.unwrap();
    let c = client_of(&sim, 32, 5);
    (sim, c)
}

/// A cmdlet that writes "started", then waits until the test opens `gate`, then "done".
fn register_gated(sim: &Simulator, name: &str) -> Arc<tokio::sync::Notify> {
    let gate = Arc::new(tokio::sync::Notify::new());
    let g = Arc::clone(&gate);
    sim.register_cmdlet(name, move |ctx: CmdletContext| {
        let g = Arc::clone(&g);
        async move {
            ctx.write_output("started").await;
            g.notified().await;
            ctx.write_output("done").await;
            Ok(())
        }
    });
    gate
}

/// Waits until the simulator has `n` Receives pending (the pipelines' and the pool's,
/// which is read once a pipeline's Receive timed out: the OperationTimeout, 5 s here).
async fn receives_pending(sim: &Simulator, n: u64) {
    within(20, async {
        while sim.counters().receives_pending < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

fn secure(v: &PsValue) -> &tokio_winrm::psrp::EncryptedString {
    match v {
        PsValue::SecureString(s) => s,
        other => panic!("not a SecureString: {other:?}"),
    }
}

#[tokio::test]
async fn a_secure_string_output_gets_the_key_the_server_asks_for_and_decrypts() {
    use secrecy::ExposeSecret as _;
    let (sim, c) = setup().await;
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    // The server must send a SecureString and has no session key: it asks for one on
    // the pool's stream (PUBLIC_KEY_REQUEST) and holds the output until it has it.
    let inv = within(
        30,
        pool.pipeline()
            .script("ConvertTo-SecureString 'pässw0rd' -AsPlainText -Force")
            .invoke(),
    )
    .await
    .unwrap();
    assert_eq!(inv.output.len(), 1, "{inv:?}");
    assert!(inv.errors.is_empty(), "{:?}", inv.errors);
    assert_eq!(
        pool.decrypt(secure(&inv.output[0]))
            .unwrap()
            .expose_secret(),
        "pässw0rd"
    );
    // The key stays: the next one comes at once, with the same key.
    let started = std::time::Instant::now();
    let inv = within(
        10,
        pool.pipeline()
            .command("ConvertTo-SecureString")
            .param("String", "second")
            .switch("AsPlainText")
            .switch("Force")
            .invoke(),
    )
    .await
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        pool.decrypt(secure(&inv.output[0]))
            .unwrap()
            .expose_secret(),
        "second"
    );
    within(10, pool.close()).await.unwrap();
    c.shutdown().await;
    assert_eq!(sim.counters().open_shells, 0);
}

/// A host that answers ReadLine, and ReadLineAsSecureString with the session key.
struct Answers(Arc<AtomicUsize>);

impl PsHost for Answers {
    fn call(&self, call: &HostCall) -> Result<PsValue, Box<ErrorRecord>> {
        self.call_with_session_key(call, None)
    }

    fn call_with_session_key(
        &self,
        call: &HostCall,
        key: Option<&SessionKey>,
    ) -> Result<PsValue, Box<ErrorRecord>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        match call.method {
            HostMethod::ReadLine => Ok("typed at the pool".into()),
            HostMethod::ReadLineAsSecureString => Ok(PsValue::SecureString(
                key.expect("the key is exchanged first")
                    .encrypt("pool secret"),
            )),
            _ => Ok(PsValue::Null),
        }
    }
}

fn register_pool_ask(sim: &Simulator) {
    sim.register_cmdlet("Ask-Pool", |ctx: CmdletContext| async move {
        let method = if ctx.switch("AsSecureString") {
            HostMethod::ReadLineAsSecureString
        } else {
            HostMethod::ReadLine
        };
        let answer = ctx.pool_host_call(method, vec![]).await?;
        ctx.write_output(answer.unwrap_or(PsValue::Null)).await;
        Ok(())
    });
}

#[tokio::test]
async fn a_pool_level_host_call_is_answered_by_the_pools_host() {
    use secrecy::ExposeSecret as _;
    let (sim, c) = setup().await;
    register_pool_ask(&sim);
    let calls = Arc::new(AtomicUsize::new(0));
    let pool = within(
        10,
        c.runspace_pool().host(Answers(Arc::clone(&calls))).open(),
    )
    .await
    .unwrap();
    let inv = within(30, pool.pipeline().command("Ask-Pool").invoke())
        .await
        .unwrap();
    assert_eq!(inv.output, [PsValue::from("typed at the pool")]);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // An answer holding a SecureString: the key is exchanged first, while the pool's
    // stream is being read.
    let inv = within(
        30,
        pool.pipeline()
            .command("Ask-Pool")
            .switch("AsSecureString")
            .invoke(),
    )
    .await
    .unwrap();
    assert_eq!(
        pool.decrypt(secure(&inv.output[0]))
            .unwrap()
            .expose_secret(),
        "pool secret"
    );
    within(10, pool.close()).await.unwrap();

    // The default host answers "not interactive" at pool level too.
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    match within(30, pool.pipeline().command("Ask-Pool").invoke()).await {
        Err(Error::PipelineFailed { error }) => {
            assert!(error.message.contains("not interactive"), "{error:?}")
        }
        other => panic!("{other:?}"),
    }
    within(10, pool.close()).await.unwrap();
    c.shutdown().await;
    assert_eq!(sim.counters().open_shells, 0);
}

#[tokio::test]
async fn a_broken_pool_ends_its_running_pipelines_with_a_typed_error() {
    let (sim, c) = setup().await;
    let _gate = register_gated(&sim, "Wait-Long");
    sim.register_cmdlet("Break-Pool", |ctx: CmdletContext| async move {
        ctx.write_output("breaking").await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        ctx.break_runspace_pool(ErrorRecord::new(
            "The pool's process ended.",
            "PoolBroken",
            ErrorCategory::OperationStopped,
        ));
        std::future::pending::<()>().await;
        Ok(())
    });
    let pool = within(10, c.runspace_pool().max_runspaces(2).open())
        .await
        .unwrap();
    let waiting = within(10, pool.pipeline().command("Wait-Long").start())
        .await
        .unwrap();
    let breaking = within(10, pool.pipeline().command("Break-Pool").start())
        .await
        .unwrap();
    for p in [waiting, breaking] {
        let mut evs = within(20, p.collect::<Vec<_>>()).await;
        match evs.pop() {
            Some(Err(Error::RunspacePoolBroken { state, error })) => {
                assert_eq!(state, "Broken");
                let error = error.expect("the server's record");
                assert_eq!(error.message, "The pool's process ended.");
            }
            other => panic!("{other:?}"),
        }
        assert!(evs.iter().all(|e| matches!(e, Ok(PsEvent::Output(_)))));
    }
    // Pool calls fail at once, with the same error.
    assert!(matches!(
        within(5, pool.query_available_runspaces()).await,
        Err(Error::RunspacePoolBroken { .. })
    ));
    within(10, pool.close()).await.unwrap();
    c.shutdown().await;
    assert_eq!(sim.counters().open_shells, 0);
}

#[tokio::test]
async fn pool_calls_are_answered_while_the_pools_stream_is_read_for_pipelines() {
    let (sim, c) = setup().await;
    let gate = register_gated(&sim, "Wait-Long");
    let pool = within(10, c.runspace_pool().max_runspaces(2).open())
        .await
        .unwrap();
    let mut p = within(10, pool.pipeline().command("Wait-Long").start())
        .await
        .unwrap();
    assert_eq!(
        within(10, p.next()).await.unwrap().unwrap(),
        PsEvent::Output("started".into())
    );
    // The pipeline runs on: once its Receive timed out the pool's stream is read too.
    receives_pending(&sim, 2).await;
    let (a, b) = within(10, async {
        tokio::join!(pool.query_available_runspaces(), pool.set_max_runspaces(3))
    })
    .await;
    assert_eq!(a.unwrap(), 1);
    assert!(b.unwrap());
    assert_eq!(pool.max_runspaces(), 3);
    gate.notify_one();
    let rest: Vec<_> = within(10, p.collect::<Vec<_>>()).await;
    assert!(matches!(
        rest.last(),
        Some(Ok(PsEvent::State(PipelineEnd::Completed)))
    ));
    within(10, pool.close()).await.unwrap();
    c.shutdown().await;
    let counters = sim.counters();
    assert_eq!((counters.open_shells, counters.receives_pending), (0, 0));
}

#[tokio::test]
async fn cancel_signals_stop_at_once_while_the_pools_stream_is_read() {
    let (sim, c) = setup().await;
    let _gate = register_gated(&sim, "Wait-Long");
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let mut p = within(10, pool.pipeline().command("Wait-Long").start())
        .await
        .unwrap();
    within(10, p.next()).await.unwrap().unwrap();
    receives_pending(&sim, 2).await;
    let cancelled = std::time::Instant::now();
    p.cancel();
    within(5, async {
        while sim.counters().pipeline_stops == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(cancelled.elapsed() < Duration::from_secs(1));
    let rest: Vec<_> = within(5, p.collect::<Vec<_>>()).await;
    assert!(matches!(
        rest.last(),
        Some(Ok(PsEvent::State(PipelineEnd::Stopped { reason: Some(_) })))
    ));
    within(10, pool.close()).await.unwrap();
    c.shutdown().await;
    assert_eq!(sim.counters().open_shells, 0);
}

#[tokio::test]
async fn disconnect_and_reconnect_with_the_pools_stream_read() {
    let (sim, c) = setup().await;
    let gate = register_gated(&sim, "Wait-Long");
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let mut p = within(10, pool.pipeline().command("Wait-Long").start())
        .await
        .unwrap();
    within(10, p.next()).await.unwrap().unwrap();
    receives_pending(&sim, 2).await;
    let command_id = p.id().to_string();
    let gone = within(20, pool.disconnect(None)).await.expect("disconnect");
    // No Receive of this client is left at the server: the pool's stopped too.
    assert_eq!(sim.counters().receives_pending, 0);
    assert!(matches!(
        within(10, p.next()).await,
        Some(Err(Error::Disconnected { .. }))
    ));
    let pool = within(10, gone.reconnect()).await.expect("reconnect");
    let p = within(10, pool.resume_pipeline(&command_id)).await.unwrap();
    // Read again after the reconnection: the pool's stream as well.
    receives_pending(&sim, 2).await;
    gate.notify_one();
    let evs: Vec<_> = within(10, p.collect::<Vec<_>>()).await;
    assert!(matches!(
        evs.last(),
        Some(Ok(PsEvent::State(PipelineEnd::Completed)))
    ));
    within(10, pool.close()).await.unwrap();
    c.shutdown().await;
    let counters = sim.counters();
    assert_eq!((counters.open_shells, counters.receives_pending), (0, 0));
}

#[tokio::test]
async fn close_and_drop_leave_no_receive_and_no_pool() {
    let (sim, c) = setup().await;
    let _gate = register_gated(&sim, "Wait-Long");
    // close() with the pool's stream being read.
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let mut p = within(10, pool.pipeline().command("Wait-Long").start())
        .await
        .unwrap();
    within(10, p.next()).await.unwrap().unwrap();
    receives_pending(&sim, 2).await;
    within(10, pool.close()).await.unwrap();
    drop(p);
    within(10, c.shutdown()).await;
    assert_eq!(sim.counters().open_shells, 0);
    // Dropped pool and pipeline: the pool is deleted in the background.
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let mut p = within(10, pool.pipeline().command("Wait-Long").start())
        .await
        .unwrap();
    within(10, p.next()).await.unwrap().unwrap();
    receives_pending(&sim, 2).await;
    drop(p);
    drop(pool);
    within(10, c.shutdown()).await;
    within(10, async {
        while sim.counters().open_shells != 0 || sim.counters().receives_pending != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn two_channels_share_between_a_pipeline_and_the_pools_stream() {
    use secrecy::ExposeSecret as _;
    // Two channels: one long poll at a time. The pool's stream is read in the gaps of
    // the pipeline's Receives, briefly, so neither waits for the other for long.
    let sim = Simulator::start().await.unwrap();
    let c = client_of(&sim, 2, 2);
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let inv = within(
        40,
        pool.pipeline()
            .script("ConvertTo-SecureString 'narrow' -AsPlainText -Force")
            .invoke(),
    )
    .await
    .unwrap();
    assert_eq!(
        pool.decrypt(secure(&inv.output[0]))
            .unwrap()
            .expose_secret(),
        "narrow"
    );
    // Small pipelines in a row are not held back by the pool's stream.
    let started = std::time::Instant::now();
    for _ in 0..20 {
        within(10, pool.pipeline().command("Get-Date").invoke())
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    within(10, pool.close()).await.unwrap();
    c.shutdown().await;
}
