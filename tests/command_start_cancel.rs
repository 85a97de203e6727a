//! A command's start, stdin and shell close under cancellation (MI_Operation_Cancel):
//!
//! * `CommandBuilder::start` cancelled (token, deadline, `cancel_all`, dropped future)
//!   while the Command request is in flight answers at once with `Error::Abandoned`
//!   (the server may have started the command), finishes the Command's exchange in the
//!   background and sends Signal terminate to the command it started, so that it does
//!   not run to completion unseen; `Client::shutdown` waits for that.
//! * `Command::send` and `close_stdin` honour the command's cancellation: they return
//!   at once, `Abandoned` when a Send was in flight, `Cancelled` when nothing was sent.
//! * `Shell::close` under a command whose stream is being read ends that stream with a
//!   clear `Error::State`, not the raw fault of the deleted shell.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_winrm::{Auth, CancelReason, Client, CommandEvent, Error};
use winrm_simulator::{CommandContext, Injection, Operation, Simulator};

/// How long the simulator holds each Command request before carrying it out.
const COMMAND_DELAY: Duration = Duration::from_millis(500);

/// How long `deploy` runs before its side effect.
const DEPLOY_TIME: Duration = Duration::from_millis(1500);

/// A simulator with `deploy` (its side effect counted in the returned counter, after
/// `DEPLOY_TIME`) and `slow` (a line at once, then 30 s of silence).
async fn sim() -> (Simulator, Arc<AtomicU64>) {
    let sim = Simulator::start().await.unwrap();
    let ran = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&ran);
    sim.register_command("deploy", move |_ctx: CommandContext| {
        let counter = Arc::clone(&counter);
        async move {
            tokio::time::sleep(DEPLOY_TIME).await;
            counter.fetch_add(1, Ordering::SeqCst);
            0
        }
    });
    sim.register_command("slow", |ctx: CommandContext| async move {
        ctx.print("first\r\n").await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        ctx.print("last\r\n").await;
        0
    });
    (sim, ran)
}

fn client(sim: &Simulator) -> Client {
    Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Waits (at most 10 s) until the simulator has had `n` Signal terminate and runs no
/// command.
async fn until_terminated(sim: &Simulator, n: u64, what: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let c = sim.counters();
        if c.terminate_signals >= n && c.running_commands == 0 {
            return;
        }
        assert!(
            Instant::now() < until,
            "{what}: the command was not terminated: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// After the command would have finished: it did not run to its side effect, it was
/// started once and terminated once, and nothing is left after the shell's close.
async fn assert_stopped_before_its_effect(
    sim: &Simulator,
    client: Client,
    shell: tokio_winrm::Shell,
    ran: &AtomicU64,
    what: &str,
) {
    tokio::time::sleep(COMMAND_DELAY + DEPLOY_TIME + Duration::from_millis(300)).await;
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "{what}: the command ran to completion"
    );
    let c = sim.counters();
    assert_eq!(
        (c.commands_started, c.terminate_signals, c.running_commands),
        (1, 1, 0),
        "{what}: {c:?}"
    );
    shell.close().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), client.shutdown())
        .await
        .expect("shutdown");
    let c = sim.counters();
    assert_eq!((c.open_shells, c.running_commands), (0, 0), "{what}: {c:?}");
}

fn assert_abandoned(r: Result<tokio_winrm::Command, Error>, reason: CancelReason, what: &str) {
    match r {
        Err(ref e @ Error::Abandoned { reason: got }) => {
            assert_eq!(got, reason, "{what}: {e}");
            assert!(e.may_have_executed(), "{what}: {e}");
            assert!(e.is_cancelled(), "{what}: {e}");
        }
        other => panic!("{what}: not Abandoned: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_whose_deadline_passes_in_flight_is_abandoned_and_its_command_terminated() {
    let (sim, ran) = sim().await;
    let client = client(&sim);
    let shell = client.shell().open().await.unwrap();
    sim.inject(Injection::on(Operation::Command).delay(COMMAND_DELAY));
    let started = Instant::now();
    let r = shell
        .command("deploy")
        .deadline(Duration::from_millis(200))
        .start()
        .await;
    let took = started.elapsed();
    assert_abandoned(r, CancelReason::Timeout, "deadline");
    assert!(
        took < COMMAND_DELAY,
        "the cancel waited for the Command: {took:?}"
    );
    // The Command's answer, read in the background, is followed by Signal terminate at
    // once: the command is stopped long before its side effect.
    until_terminated(&sim, 1, "deadline").await;
    assert_stopped_before_its_effect(&sim, client, shell, &ran, "deadline").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_cancelled_by_its_token_in_flight_is_abandoned_and_one_cancelled_first_sends_nothing()
 {
    let (sim, ran) = sim().await;
    let client = client(&sim);
    let shell = client.shell().open().await.unwrap();

    // Cancelled before it is sent: nothing goes out, and the error says so.
    let token = CancellationToken::new();
    token.cancel();
    let r = shell.command("deploy").cancellation(token).start().await;
    match r {
        Err(ref e @ Error::Cancelled { reason }) => {
            assert_eq!(reason, CancelReason::User);
            assert!(!e.may_have_executed(), "{e}");
        }
        other => panic!("not Cancelled: {other:?}"),
    }
    assert_eq!(sim.counters().commands_started, 0);

    // Cancelled while the Command is in flight.
    sim.inject(Injection::on(Operation::Command).delay(COMMAND_DELAY));
    let token = CancellationToken::new();
    let canceller = {
        let token = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            token.cancel();
        })
    };
    let started = Instant::now();
    let r = shell.command("deploy").cancellation(token).start().await;
    let took = started.elapsed();
    canceller.await.unwrap();
    assert_abandoned(r, CancelReason::User, "token");
    assert!(
        took < COMMAND_DELAY,
        "the cancel waited for the Command: {took:?}"
    );
    until_terminated(&sim, 1, "token").await;
    assert_stopped_before_its_effect(&sim, client, shell, &ran, "token").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_dropped_in_flight_terminates_its_command_and_shutdown_waits_for_it() {
    let (sim, ran) = sim().await;
    let client = client(&sim);
    let shell = client.shell().open().await.unwrap();
    sim.inject(Injection::on(Operation::Command).delay(COMMAND_DELAY));
    let dropped =
        tokio::time::timeout(Duration::from_millis(200), shell.command("deploy").start()).await;
    assert!(dropped.is_err(), "the start finished before the timeout");
    // The Command is still in flight: shutdown waits for its answer and the Signal.
    tokio::time::timeout(Duration::from_secs(20), client.shutdown())
        .await
        .expect("shutdown");
    let c = sim.counters();
    assert_eq!(
        (c.commands_started, c.terminate_signals, c.running_commands),
        (1, 1, 0),
        "after shutdown: {c:?}"
    );
    assert_stopped_before_its_effect(&sim, client, shell, &ran, "dropped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_in_flight_at_cancel_all_is_abandoned_and_terminated_before_it_returns() {
    let (sim, ran) = sim().await;
    let client = client(&sim);
    let shell = client.shell().open().await.unwrap();
    sim.inject(Injection::on(Operation::Command).delay(COMMAND_DELAY));
    let start = tokio::spawn({
        let command = shell.command("deploy");
        async move { command.start().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::timeout(Duration::from_secs(20), client.cancel_all())
        .await
        .expect("cancel_all");
    // cancel_all waited for the Command's answer and the Signal terminate.
    let c = sim.counters();
    assert_eq!(
        (c.commands_started, c.terminate_signals, c.running_commands),
        (1, 1, 0),
        "after cancel_all: {c:?}"
    );
    let r = tokio::time::timeout(Duration::from_secs(5), start)
        .await
        .expect("start returned")
        .unwrap();
    assert_abandoned(r, CancelReason::Shutdown, "cancel_all");
    assert_stopped_before_its_effect(&sim, client, shell, &ran, "cancel_all").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_and_close_stdin_return_at_once_when_the_command_is_cancelled() {
    let (sim, _) = sim().await;
    let client = client(&sim);
    let shell = client.shell().open().await.unwrap();
    let mut command = shell.command("findstr").arg("h").start().await.unwrap();
    // `send` can be spawned (its future is Send).
    fn is_send<T: Send>(_: &T) {}
    let future = command.send(b"");
    is_send(&future);
    drop(future);
    sim.inject(Injection::on(Operation::Send).delay(Duration::from_secs(8)));
    let handle = command.cancel_handle();
    let injected = sim.counters().injected;
    let (r, cancelled_at) = tokio::join!(command.send(b"hello\r\n"), async {
        // Cancelled once the Send is held by the simulator.
        let until = Instant::now() + Duration::from_secs(5);
        while sim.counters().injected == injected {
            assert!(
                Instant::now() < until,
                "the Send did not reach the simulator"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        handle.cancel();
        Instant::now()
    });
    let took = cancelled_at.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "send waited after the cancel: {took:?}"
    );
    // The Send was in flight: its bytes may have reached the command.
    match r {
        Err(ref e @ Error::Abandoned { reason }) => {
            assert_eq!(reason, CancelReason::User, "{e}");
            assert!(e.may_have_executed(), "{e}");
        }
        other => panic!("send: not Abandoned: {other:?}"),
    }
    // Once cancelled, nothing more is sent: Cancelled at once, no Send on the wire.
    sim.inject(Injection::on(Operation::Send).delay(Duration::ZERO));
    for r in [
        command.send(b"more\r\n").await,
        command.close_stdin(b"").await,
    ] {
        match r {
            Err(ref e @ Error::Cancelled { reason }) => {
                assert_eq!(reason, CancelReason::User, "{e}");
                assert!(!e.may_have_executed(), "{e}");
            }
            other => panic!("after the cancel: not Cancelled: {other:?}"),
        }
    }
    assert_eq!(sim.pending_injections(), 1, "a Send reached the server");
    // The stream ends Cancelled as usual.
    let mut last = None;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(10), command.next())
        .await
        .expect("the stream ended")
    {
        last = Some(ev);
    }
    assert!(
        matches!(
            last,
            Some(Ok(CommandEvent::Exit(tokio_winrm::ExitStatus::Cancelled {
                reason: CancelReason::User
            })))
        ),
        "{last:?}"
    );
    drop(command);
    shell.close().await.unwrap();
    sim.clear_injections();
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_stdin_honours_the_commands_deadline() {
    let (sim, _) = sim().await;
    let client = client(&sim);
    let shell = client.shell().open().await.unwrap();
    let command = shell
        .command("findstr")
        .arg("h")
        .deadline(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    sim.inject(Injection::on(Operation::Send).delay(Duration::from_secs(8)));
    let started = Instant::now();
    let r = command.close_stdin(b"hello\r\n").await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "close_stdin waited: {took:?}"
    );
    match r {
        Err(ref e @ Error::Abandoned { reason }) => {
            assert_eq!(reason, CancelReason::Timeout, "{e}");
            assert!(e.is_timeout(), "{e}");
        }
        other => panic!("close_stdin: not Abandoned: {other:?}"),
    }
    drop(command);
    shell.close().await.unwrap();
    sim.clear_injections();
    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_shell_ends_a_running_commands_stream_with_a_clear_error() {
    let (sim, _) = sim().await;
    let client = client(&sim);
    let shell = client.shell().open().await.unwrap();
    let mut command = shell.command("slow").start().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), command.next())
        .await
        .expect("first output");
    assert!(
        matches!(first, Some(Ok(CommandEvent::Stdout(_)))),
        "{first:?}"
    );
    tokio::time::timeout(Duration::from_secs(10), shell.close())
        .await
        .expect("close")
        .unwrap();
    let mut rest = Vec::new();
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(10), command.next())
        .await
        .expect("the stream ended")
    {
        rest.push(ev);
    }
    match rest.last() {
        Some(Err(Error::State(message))) => {
            assert!(message.contains("closed"), "{message}");
        }
        other => panic!("the stream did not end with the shell's close: {other:?} ({rest:?})"),
    }
    assert!(
        rest.iter()
            .all(|ev| !matches!(ev, Err(e) if e.fault().is_some())),
        "a raw fault: {rest:?}"
    );
    drop(command);
    client.shutdown().await;
    let c = sim.counters();
    assert_eq!((c.open_shells, c.running_commands), (0, 0), "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_shell_under_a_command_paused_by_backpressure_ends_it_with_the_clear_error() {
    let (sim, _) = sim().await;
    let client = client(&sim);
    // A one-byte output buffer: after "first" the Receive loop waits for the reader.
    let shell = client.shell().output_buffer(1).open().await.unwrap();
    let mut command = shell.command("slow").start().await.unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while command.buffered_bytes() == 0 {
        assert!(Instant::now() < until, "no output came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shell.close().await.unwrap();
    // The output received before the close, then the clear error (before the fix, the
    // Receive sent once the reader caught up met the deleted shell: a raw fault).
    let first = tokio::time::timeout(Duration::from_secs(10), command.next())
        .await
        .expect("first output");
    assert!(
        matches!(&first, Some(Ok(CommandEvent::Stdout(b))) if b.starts_with(b"first")),
        "{first:?}"
    );
    let end = tokio::time::timeout(Duration::from_secs(10), command.next())
        .await
        .expect("the end");
    match &end {
        Some(Err(Error::State(message))) => assert!(message.contains("closed"), "{message}"),
        other => panic!("not the shell's close: {other:?}"),
    }
    assert!(command.next().await.is_none());
    drop(command);
    client.shutdown().await;
    let c = sim.counters();
    assert_eq!((c.open_shells, c.running_commands), (0, 0), "{c:?}");
}
