//! `Client::cancel_all()` and `Client::shutdown()` return only once the cleanups of the
//! operations they cover have been sent and answered: Signal terminate for commands,
//! Release for enumerations, the PSRP stop signal for pipelines, Delete for the shells
//! of `Client::run`. Counted from each operation's start, so that an operation whose
//! driver has not run since the cancel (its stream not being read, or its task not
//! polled yet) is not missed: a program may return from `main` right after the call.
//! Each case runs on a multi-thread and on a current-thread runtime, with the simulator
//! on a runtime of its own (the client's runtime ends right after, as a program's does).
//!
//! Also: after `cancel_all`, opening a shell fails at once (nothing is created), and a
//! `run` waiting for a `max_shells` slot is woken with `Cancelled`.

use std::time::Duration;

use futures_util::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tokio_winrm::{Auth, CancelReason, Client, Error};
use winrm_simulator::{CommandContext, CounterSnapshot, SimConfig, Simulator};

/// The simulator, on a multi-thread runtime of its own that outlives the client's.
struct Sim {
    sim: Simulator,
    _runtime: tokio::runtime::Runtime,
}

fn sim() -> Sim {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sim = runtime.block_on(async {
        let sim = Simulator::start_with(SimConfig {
            max_shells_per_user: 1000,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        // A line at once, then 30 s of nothing.
        sim.register_command("slow", |ctx: CommandContext| async move {
            ctx.print("first\r\n").await;
            tokio::time::sleep(Duration::from_secs(30)).await;
            0
        });
        sim
    });
    Sim {
        sim,
        _runtime: runtime,
    }
}

fn client(sim: &Simulator) -> Client {
    Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

const FLAVOURS: [&str; 2] = ["multi_thread", "current_thread"];

/// Runs `f` on a fresh runtime of `flavour`, which is dropped right after (as when a
/// program returns from `main`).
fn on_runtime<F: std::future::Future<Output = ()>>(flavour: &str, f: F) {
    let runtime = match flavour {
        "current_thread" => tokio::runtime::Builder::new_current_thread(),
        _ => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(2);
            b
        }
    }
    .enable_all()
    .build()
    .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), f)
            .await
            .expect("the case did not finish within 60 s")
    });
}

/// Awaits `f`, which must finish well within the cleanups' bounds.
async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not return within 20 s"))
}

fn delta(now: &CounterSnapshot, before: &CounterSnapshot) -> String {
    format!(
        "open_shells {} running {} terminate_signals +{} open_enumerations {} releases +{} \
         pipeline_stops +{}",
        now.open_shells,
        now.running_commands,
        now.terminate_signals - before.terminate_signals,
        now.open_enumerations,
        now.releases - before.releases,
        now.pipeline_stops - before.pipeline_stops,
    )
}

#[test]
fn cancel_all_returns_after_the_signals_of_running_commands_read_or_not() {
    let s = sim();
    let sim = &s.sim;
    for flavour in FLAVOURS {
        on_runtime(flavour, async {
            let c = client(sim);
            let shell = c.shell().open().await.unwrap();
            let mut read = shell.command("slow").start().await.unwrap();
            let unread = shell.command("slow").start().await.unwrap();
            let mut once = shell.command("slow").start().await.unwrap();
            // One read by a task of its own, one read once and then left, one never read.
            assert!(once.next().await.is_some());
            let reader = tokio::spawn(async move { while read.next().await.is_some() {} });
            tokio::time::sleep(Duration::from_millis(200)).await;
            let before = sim.counters();
            assert_eq!(before.running_commands, 3, "{flavour}: {before:?}");
            within("cancel_all", c.cancel_all()).await;
            let now = sim.counters();
            let seen = delta(&now, &before);
            assert_eq!(now.running_commands, 0, "{flavour}: {seen}");
            assert_eq!(
                now.terminate_signals - before.terminate_signals,
                3,
                "{flavour}: {seen}"
            );
            // The streams still end with their final status.
            within("the read stream's end", reader).await.unwrap();
            drop((unread, once));
            within("close", shell.close()).await.unwrap();
        });
    }
}

#[test]
fn cancel_all_returns_after_the_shells_of_run_calls_are_deleted() {
    let s = sim();
    let sim = &s.sim;
    for flavour in FLAVOURS {
        let before = sim.counters();
        on_runtime(flavour, async {
            let c = client(sim);
            let runs: Vec<_> = (0..3)
                .map(|_| {
                    let c = c.clone();
                    tokio::spawn(async move { c.run("slow", &[]).await })
                })
                .collect();
            // Every command runs.
            for _ in 0..100 {
                if sim.counters().running_commands - before.running_commands == 3 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(sim.counters().running_commands, 3, "{flavour}");
            within("cancel_all", c.cancel_all()).await;
            let now = sim.counters();
            let seen = delta(&now, &before);
            assert_eq!(now.running_commands, 0, "{flavour}: {seen}");
            assert_eq!(now.open_shells, 0, "{flavour}: {seen}");
            assert_eq!(
                now.terminate_signals - before.terminate_signals,
                3,
                "{flavour}: {seen}"
            );
            // The program returns from `main` here: the runs are left unpolled.
            drop(runs);
        });
        let now = sim.counters();
        assert_eq!(now.open_shells, 0, "{flavour}: {}", delta(&now, &before));
    }
}

/// Cancelled by their handle, their token and their deadline (a dropped command was
/// waited for already: its drop registered its cleanup).
#[test]
fn shutdown_waits_for_commands_cancelled_before_it_and_only_those() {
    let s = sim();
    let sim = &s.sim;
    for flavour in FLAVOURS {
        on_runtime(flavour, async {
            let c = client(sim);
            let shell = c.shell().open().await.unwrap();
            let by_handle = shell.command("slow").start().await.unwrap();
            let token = CancellationToken::new();
            let by_token = shell
                .command("slow")
                .cancellation(token.clone())
                .start()
                .await
                .unwrap();
            let mut left = shell.command("slow").start().await.unwrap();
            let by_deadline = shell
                .command("slow")
                .deadline(Duration::from_millis(400))
                .start()
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            let before = sim.counters();
            // The deadline passes while this thread does not yield (on the
            // current-thread runtime, the driver cannot see it before `shutdown`).
            std::thread::sleep(Duration::from_millis(300));
            by_handle.cancel();
            token.cancel();
            // No await between the cancels and the call: no driver has run since.
            within("shutdown", c.shutdown()).await;
            let now = sim.counters();
            let seen = delta(&now, &before);
            assert_eq!(
                now.terminate_signals - before.terminate_signals,
                3,
                "{flavour}: {seen}"
            );
            // The command nobody cancelled goes on.
            assert_eq!(now.running_commands, 1, "{flavour}: {seen}");
            assert!(left.next().await.is_some());
            drop((by_handle, by_token, by_deadline));
            left.cancel();
            within("close", shell.close()).await.unwrap();
            within("shutdown", c.shutdown()).await;
            assert_eq!(sim.counters().running_commands, 0, "{flavour}");
        });
    }
}

#[test]
fn shutdown_after_the_client_token_is_cancelled_waits_for_every_command() {
    let s = sim();
    let sim = &s.sim;
    for flavour in FLAVOURS {
        on_runtime(flavour, async {
            let token = CancellationToken::new();
            let c = Client::builder(sim.endpoint())
                .auth(Auth::basic(sim.user(), sim.password()))
                .allow_insecure_basic(true)
                .cancellation(token.clone())
                .build()
                .unwrap();
            let shell = c.shell().open().await.unwrap();
            let mut commands = Vec::new();
            for _ in 0..3 {
                commands.push(shell.command("slow").start().await.unwrap());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let before = sim.counters();
            token.cancel();
            within("shutdown", c.shutdown()).await;
            let now = sim.counters();
            let seen = delta(&now, &before);
            assert_eq!(now.running_commands, 0, "{flavour}: {seen}");
            assert_eq!(
                now.terminate_signals - before.terminate_signals,
                3,
                "{flavour}: {seen}"
            );
            drop(commands);
            // Not even the shell's drop: the caller relied on shutdown for the commands.
            std::mem::forget(shell);
        });
    }
}

#[test]
fn cancel_all_returns_after_the_releases_of_enumerations_not_read() {
    let s = sim();
    let sim = &s.sim;
    for flavour in FLAVOURS {
        on_runtime(flavour, async {
            let c = client(sim);
            let mut enumerations = Vec::new();
            for _ in 0..3 {
                let mut e = c
                    .wql("root/cimv2", "SELECT * FROM Win32_Service")
                    .max_elements(2)
                    .start();
                assert!(matches!(
                    e.next().await,
                    Some(Ok(tokio_winrm::EnumEvent::Item(_)))
                ));
                enumerations.push(e);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let before = sim.counters();
            assert_eq!(before.open_enumerations, 3, "{flavour}: {before:?}");
            within("cancel_all", c.cancel_all()).await;
            let now = sim.counters();
            let seen = delta(&now, &before);
            assert_eq!(now.open_enumerations, 0, "{flavour}: {seen}");
            assert_eq!(now.releases - before.releases, 3, "{flavour}: {seen}");
            drop(enumerations);
        });
    }
}

#[test]
fn cancel_all_returns_after_the_stop_signals_of_pipelines_read_or_not() {
    let s = sim();
    let sim = &s.sim;
    for flavour in FLAVOURS {
        on_runtime(flavour, async {
            let c = client(sim);
            let pool = c.runspace_pool().max_runspaces(4).open().await.unwrap();
            let sleep = || {
                pool.pipeline()
                    .command("Start-Sleep")
                    .param("Seconds", 30)
                    .start()
            };
            let mut read = sleep().await.unwrap();
            let unread = sleep().await.unwrap();
            let mut with_input = pool
                .pipeline()
                .command("Start-Sleep")
                .param("Seconds", 30)
                .streaming_input()
                .start()
                .await
                .unwrap();
            let reader = tokio::spawn(async move { while read.next().await.is_some() {} });
            tokio::time::sleep(Duration::from_millis(300)).await;
            let before = sim.counters();
            assert_eq!(before.running_commands, 3, "{flavour}: {before:?}");
            within("cancel_all", c.cancel_all()).await;
            let now = sim.counters();
            let seen = delta(&now, &before);
            assert_eq!(
                now.pipeline_stops - before.pipeline_stops,
                3,
                "{flavour}: {seen}"
            );
            assert_eq!(now.running_commands, 0, "{flavour}: {seen}");
            within("the read stream's end", reader).await.unwrap();
            // The stopped stream still ends with its final state.
            let mut last = None;
            while let Some(ev) = within("the unread stream", with_input.next()).await {
                last = Some(ev);
            }
            assert!(
                matches!(
                    last,
                    Some(Ok(tokio_winrm::psrp::PsEvent::State(
                        tokio_winrm::psrp::PipelineEnd::Stopped {
                            reason: Some(CancelReason::Shutdown)
                        }
                    )))
                ),
                "{flavour}: {last:?}"
            );
            drop((unread, with_input));
            drop(pool);
            within("shutdown", c.shutdown()).await;
            assert_eq!(sim.counters().open_shells, 0, "{flavour}");
        });
    }
}

#[test]
fn after_cancel_all_a_shell_is_not_opened() {
    let s = sim();
    let sim = &s.sim;
    for flavour in FLAVOURS {
        on_runtime(flavour, async {
            let c = client(sim);
            within("cancel_all", c.cancel_all()).await;
            let before = sim.counters();
            let r = within("open", c.shell().open()).await;
            assert!(
                matches!(
                    r,
                    Err(Error::Cancelled {
                        reason: CancelReason::Shutdown
                    })
                ),
                "{flavour}: {r:?}"
            );
            let r = within("run", c.run("echo", &["hi"])).await;
            assert!(
                matches!(r, Err(Error::Cancelled { .. })),
                "{flavour}: {r:?}"
            );
            assert_eq!(
                sim.counters().shells_created,
                before.shells_created,
                "{flavour}"
            );
        });
    }
}

#[test]
fn cancel_all_wakes_a_run_waiting_for_a_shell_slot() {
    let s = sim();
    let sim = &s.sim;
    for flavour in FLAVOURS {
        on_runtime(flavour, async {
            let c = Client::builder(sim.endpoint())
                .auth(Auth::basic(sim.user(), sim.password()))
                .allow_insecure_basic(true)
                .max_shells(1)
                .build()
                .unwrap();
            let held = c.shell().open().await.unwrap();
            let created = sim.counters().shells_created;
            let waiting = tokio::spawn({
                let c = c.clone();
                async move { c.run("echo", &["x"]).await }
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(!waiting.is_finished(), "{flavour}: the run did not wait");
            within("cancel_all", c.cancel_all()).await;
            let r = within("the waiting run", waiting).await.unwrap();
            assert!(
                matches!(
                    r,
                    Err(Error::Cancelled {
                        reason: CancelReason::Shutdown
                    })
                ),
                "{flavour}: {r:?}"
            );
            assert_eq!(sim.counters().shells_created, created, "{flavour}");
            within("close", held.close()).await.unwrap();
        });
    }
}
