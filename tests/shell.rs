//! WinRS shells and commands end to end against the embedded simulator: streaming,
//! stdin, exit codes, and the MI_Operation_Cancel contract.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_winrm::{Auth, CancelReason, Client, CommandEvent, Error, ExitStatus};
use winrm_simulator::{SimConfig, Simulator};

const T: Duration = Duration::from_secs(20);

async fn sim_with(cfg: SimConfig) -> (Simulator, Client) {
    let sim = Simulator::start_with(cfg).await.unwrap();
    let client = Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(5))
        .max_channels(256)
        .build()
        .unwrap();
    (sim, client)
}

fn fast_ping() -> SimConfig {
    SimConfig {
        ping_interval: Duration::from_millis(40),
        max_shells_per_user: 1000,
        ..SimConfig::default()
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < T, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn assert_clean(sim: &Simulator) {
    let c = sim.counters();
    assert_eq!(c.open_shells, 0, "shells left: {c:?}");
    assert_eq!(c.running_commands, 0, "commands left: {c:?}");
}

#[tokio::test]
async fn run_collects_stdout_and_exit_code() {
    let (sim, client) = sim_with(fast_ping()).await;
    let out = tokio::time::timeout(T, client.run("echo", &["hello", "world"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.stdout_text(), "hello world\r\n");
    assert!(out.stderr.is_empty());
    assert_eq!(out.code, Some(0));
    let out = client
        .run("cmd.exe", &["/c", "exit", "/b", "3"])
        .await
        .unwrap();
    assert_eq!(out.code, Some(3));
    assert!(!out.success());
    assert_clean(&sim);
    let c = sim.counters();
    assert_eq!(c.shells_created, 2);
    assert!(
        c.terminate_signals >= 2,
        "Signal terminate after a normal finish: {c:?}"
    );
}

#[tokio::test]
async fn stderr_and_unknown_command() {
    let (sim, client) = sim_with(fast_ping()).await;
    let out = client.run("nosuchprogram", &[]).await.unwrap();
    assert_eq!(
        out.code,
        Some(9009),
        "cmd.exe's exit code for an unknown program"
    );
    assert!(
        out.stderr_text().contains("is not recognized"),
        "{:?}",
        out.stderr_text()
    );
    assert_clean(&sim);
}

#[tokio::test]
async fn stdin_reaches_the_command() {
    let (sim, client) = sim_with(fast_ping()).await;
    let shell = client.shell().open().await.unwrap();
    let cmd = shell.command("findstr").arg("apple").start().await.unwrap();
    cmd.send(b"apple pie\r\nbanana\r\n").await.unwrap();
    cmd.close_stdin(b"green apple\r\n").await.unwrap();
    let out = tokio::time::timeout(T, cmd.collect())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "apple pie\r\ngreen apple\r\n"
    );
    assert_eq!(out.code, Some(0));
    shell.close().await.unwrap();
    assert_clean(&sim);
}

/// A client that asks for responses larger than the host takes requests
/// (`max_envelope_size` above the host's 500 KB `MaxEnvelopeSizekb`) still sends its
/// stdin in envelopes the host takes.
#[tokio::test]
async fn stdin_fits_the_hosts_limit_whatever_max_envelope_size_says() {
    let sim = Simulator::start_with(fast_ping()).await.unwrap();
    let client = Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(5))
        .max_envelope_size(4_000_000)
        .build()
        .unwrap();
    let shell = client.shell().open().await.unwrap();
    let cmd = shell.command("findstr").arg("apple").start().await.unwrap();
    // 1.5 MB of lines: one envelope of it would be over 2 MB.
    let line = b"green apple and some more words to make the line longer\r\n";
    let big: Vec<u8> = line
        .iter()
        .copied()
        .cycle()
        .take(line.len() * 26_000)
        .collect();
    cmd.close_stdin(&big).await.unwrap();
    let out = tokio::time::timeout(T, cmd.collect())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.stdout.len(), big.len());
    assert_eq!(out.code, Some(0));
    shell.close().await.unwrap();
    assert_clean(&sim);
}

#[tokio::test]
async fn output_streams_as_it_arrives_in_order() {
    let (sim, client) = sim_with(fast_ping()).await;
    let shell = client.shell().open().await.unwrap();
    let mut cmd = shell
        .command("ping")
        .args(["-n", "4", "localhost"])
        .start()
        .await
        .unwrap();
    let mut text = String::new();
    let mut chunks = 0;
    let mut exit = None;
    while let Some(ev) = tokio::time::timeout(T, cmd.next()).await.unwrap() {
        match ev.unwrap() {
            CommandEvent::Stdout(b) => {
                chunks += 1;
                text.push_str(&String::from_utf8_lossy(&b));
            }
            CommandEvent::Stderr(b) => panic!("unexpected stderr {b:?}"),
            CommandEvent::Exit(s) => exit = Some(s),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(exit, Some(ExitStatus::Exited(0)));
    assert!(
        chunks >= 2,
        "ping output should arrive over several Receives, got {chunks}"
    );
    assert_eq!(text.matches("Reply from").count(), 4, "{text}");
    shell.close().await.unwrap();
    assert_clean(&sim);
}

/// A user-registered command that prints `line N` every 20 ms until it is stopped.
fn register_counter(sim: &Simulator) {
    sim.register_command("counter", |ctx| {
        Box::pin(async move {
            for i in 0u64.. {
                ctx.print(&format!("line {i}\r\n")).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            0
        })
    });
}

/// The heart of the project: cancel while a Receive is pending.
#[tokio::test]
async fn cancel_mid_stream_signals_at_once_and_keeps_received_output() {
    let (sim, client) = sim_with(fast_ping()).await;
    register_counter(&sim);
    let shell = client.shell().open().await.unwrap();
    let mut cmd = shell.command("counter").start().await.unwrap();
    let cancel = cmd.cancel_handle();
    // Read until at least three lines have arrived.
    let mut received = String::new();
    while received.matches("line ").count() < 3 {
        match tokio::time::timeout(T, cmd.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            CommandEvent::Stdout(b) => received.push_str(&String::from_utf8_lossy(&b)),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Make sure a Receive is pending on the server, then cancel.
    wait_for("a pending Receive", || sim.counters().receives_pending >= 1).await;
    let before = sim.counters();
    cancel.cancel();
    cancel.cancel(); // idempotent
    let mut rest = String::new();
    let mut exits = Vec::new();
    while let Some(ev) = tokio::time::timeout(T, cmd.next()).await.unwrap() {
        match ev.unwrap() {
            CommandEvent::Stdout(b) => {
                assert!(exits.is_empty(), "output after the final status");
                rest.push_str(&String::from_utf8_lossy(&b));
            }
            CommandEvent::Stderr(_) => panic!("unexpected stderr"),
            CommandEvent::Exit(s) => exits.push(s),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        exits,
        vec![ExitStatus::Cancelled {
            reason: CancelReason::User
        }]
    );
    // The final status does not wait for the Signal's answer; the Signal is on its way
    // and Client::shutdown waits for it.
    client.shutdown().await;
    let after = sim.counters();
    assert_eq!(after.terminate_signals, before.terminate_signals + 1);
    assert!(
        after.signals_while_receive_pending > before.signals_while_receive_pending,
        "Signal terminate must arrive while the Receive is still pending: {after:?}"
    );
    // Every chunk received before the cancel is delivered in order, exactly once: the
    // lines read are 0, 1, 2, ... with no gap and no repeat.
    let all = received + &rest;
    let numbers: Vec<u64> = all
        .lines()
        .map(|l| {
            l.strip_prefix("line ")
                .expect("only counter lines")
                .parse()
                .unwrap()
        })
        .collect();
    assert!(numbers.len() >= 3);
    assert_eq!(numbers, (0..numbers.len() as u64).collect::<Vec<_>>());
    shell.close().await.unwrap();
    wait_for("no running commands", || {
        sim.counters().running_commands == 0
    })
    .await;
    assert_clean(&sim);
}

#[tokio::test]
async fn cancelled_output_still_buffered_is_delivered() {
    // Output the driver already received but the consumer has not read yet is still
    // yielded after cancel(), before the final status.
    let (sim, client) = sim_with(fast_ping()).await;
    register_counter(&sim);
    let shell = client.shell().open().await.unwrap();
    let mut cmd = shell.command("counter").start().await.unwrap();
    wait_for("buffered output", || {
        cmd.buffered_bytes() >= "line 0\r\nline 1\r\nline 2\r\n".len()
    })
    .await;
    let buffered = cmd.buffered_bytes();
    cmd.cancel();
    let mut bytes = 0;
    let mut last = None;
    while let Some(ev) = tokio::time::timeout(T, cmd.next()).await.unwrap() {
        match ev.unwrap() {
            CommandEvent::Stdout(b) => bytes += b.len(),
            CommandEvent::Stderr(_) => panic!("unexpected stderr"),
            CommandEvent::Exit(s) => last = Some(s),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        bytes >= buffered,
        "{bytes} delivered, {buffered} were buffered at cancel"
    );
    assert_eq!(
        last,
        Some(ExitStatus::Cancelled {
            reason: CancelReason::User
        })
    );
    shell.close().await.unwrap();
    assert_clean(&sim);
}

#[tokio::test]
async fn deadline_cancels_with_reason_timeout() {
    let (sim, client) = sim_with(fast_ping()).await;
    let shell = client.shell().open().await.unwrap();
    let started = std::time::Instant::now();
    let cmd = shell
        .command("timeout")
        .args(["/t", "30"])
        .deadline(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let err = tokio::time::timeout(T, cmd.collect())
        .await
        .unwrap()
        .unwrap_err();
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
    assert!(started.elapsed() < Duration::from_secs(5));
    shell.close().await.unwrap();
    assert_clean(&sim);
}

#[tokio::test]
async fn timed_out_long_polls_are_silent() {
    let (sim, client) = sim_with(fast_ping()).await;
    let client2 = Client::builder(client.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let out = tokio::time::timeout(T, client2.run("timeout", &["/t", "1"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.code, Some(0));
    assert!(
        sim.counters().faults >= 2,
        "the server answered TimedOut at least twice"
    );
    assert_clean(&sim);
}

#[tokio::test]
async fn dropping_command_and_shell_leaves_nothing_after_shutdown() {
    let (sim, client) = sim_with(fast_ping()).await;
    let shell = client.shell().open().await.unwrap();
    let mut cmd = shell
        .command("ping")
        .args(["-n", "1000", "localhost"])
        .start()
        .await
        .unwrap();
    let _ = tokio::time::timeout(T, cmd.next()).await.unwrap();
    assert_eq!(sim.counters().open_shells, 1);
    drop(cmd);
    drop(shell);
    tokio::time::timeout(T, client.shutdown()).await.unwrap();
    assert_clean(&sim);
    assert!(sim.counters().terminate_signals >= 1);
}

#[tokio::test]
async fn slow_consumer_bounds_client_memory() {
    let (sim, client) = sim_with(fast_ping()).await;
    let shell = client
        .shell()
        .output_buffer(64 * 1024)
        .open()
        .await
        .unwrap();
    let mut cmd = shell
        .command("sim-gen")
        .args(["--mib", "8"])
        .start()
        .await
        .unwrap();
    let first = tokio::time::timeout(T, cmd.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(first, CommandEvent::Stdout(_)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let buffered = cmd.buffered_bytes();
    assert!(
        buffered <= 64 * 1024 + 1024 * 1024,
        "buffered {buffered} bytes"
    );
    let mut total = match first {
        CommandEvent::Stdout(b) => b.len(),
        _ => 0,
    };
    while let Some(ev) = tokio::time::timeout(T, cmd.next()).await.unwrap() {
        match ev.unwrap() {
            CommandEvent::Stdout(b) => total += b.len(),
            CommandEvent::Stderr(_) => {}
            CommandEvent::Exit(s) => assert_eq!(s, ExitStatus::Exited(0)),
            other => panic!("unexpected {other:?}"),
        }
        assert!(cmd.buffered_bytes() <= 64 * 1024 + 1024 * 1024);
    }
    assert_eq!(total, 8 * 1024 * 1024);
    shell.close().await.unwrap();
    assert_clean(&sim);
}

#[tokio::test]
async fn powershell_output_and_clixml_errors() {
    let (sim, client) = sim_with(fast_ping()).await;
    let out = client
        .run_ps("Write-Output 'hi there'; Write-Error 'boom'")
        .await
        .unwrap();
    assert_eq!(out.stdout_text().trim_end(), "hi there");
    let err = out.stderr_text();
    assert!(err.contains("boom"), "{err:?}");
    assert!(!err.contains("CLIXML"), "{err:?}");
    assert_clean(&sim);
}

#[tokio::test]
async fn unicode_codepage_65001() {
    let (sim, client) = sim_with(fast_ping()).await;
    let out = client.run("echo", &["héllo", "こんにちは"]).await.unwrap();
    assert_eq!(out.codepage, 65001);
    assert_eq!(out.stdout_text(), "héllo こんにちは\r\n");
    assert_clean(&sim);
}

#[tokio::test]
async fn two_hundred_commands_cancelled_at_random_moments() {
    let (sim, client) = sim_with(fast_ping()).await;
    let mut shells = Vec::new();
    for _ in 0..20 {
        shells.push(std::sync::Arc::new(client.shell().open().await.unwrap()));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200u64 {
        let shell = std::sync::Arc::clone(&shells[(i % 20) as usize]);
        tasks.spawn(async move {
            // A cheap deterministic spread of cancel moments, 0-150 ms.
            let delay = Duration::from_millis((i * 7919) % 150);
            let mut cmd = shell
                .command("ping")
                .args(["-n", "1000", "localhost"])
                .start()
                .await
                .unwrap();
            let cancel = cmd.cancel_handle();
            let canceller = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                cancel.cancel();
            });
            let mut exits = 0;
            while let Some(ev) = cmd.next().await {
                if let CommandEvent::Exit(s) = ev.unwrap() {
                    assert_eq!(
                        s,
                        ExitStatus::Cancelled {
                            reason: CancelReason::User
                        }
                    );
                    exits += 1;
                }
            }
            canceller.await.unwrap();
            assert_eq!(exits, 1);
        });
    }
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
    })
    .await
    .expect("200 cancelled commands finish");
    for s in shells {
        std::sync::Arc::into_inner(s)
            .unwrap()
            .close()
            .await
            .unwrap();
    }
    client.shutdown().await;
    assert_clean(&sim);
    assert_eq!(sim.counters().commands_started, 200);
}

#[tokio::test]
async fn output_held_by_the_consumer_stays_intact_across_responses() {
    // Responses reuse their buffers once nothing holds them: chunks kept by the consumer
    // must never be overwritten by later responses, and chunks dropped at once (buffers
    // reused) must still carry exactly what was written.
    let (sim, client) = sim_with(fast_ping()).await;
    let line = b"sim-gen 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n";
    let block: Vec<u8> = line.iter().copied().cycle().take(64 * 1024).collect();
    let expected = block.repeat(64);
    for hold in [true, false] {
        let shell = client.shell().open().await.unwrap();
        let mut cmd = shell
            .command("sim-gen")
            .args(["--mib", "4"])
            .start()
            .await
            .unwrap();
        let mut held = Vec::new();
        let mut offset = 0;
        while let Some(ev) = tokio::time::timeout(T, cmd.next()).await.unwrap() {
            match ev.unwrap() {
                CommandEvent::Stdout(b) => {
                    assert!(
                        expected[offset..].starts_with(&b),
                        "chunk at {offset} differs"
                    );
                    offset += b.len();
                    if hold {
                        held.push(b);
                    }
                }
                CommandEvent::Stderr(b) => panic!("unexpected stderr {b:?}"),
                CommandEvent::Exit(s) => assert_eq!(s, ExitStatus::Exited(0)),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(offset, expected.len());
        if hold {
            assert!(held.len() > 20, "{} chunks", held.len());
            let got: Vec<u8> = held.iter().flat_map(|b| b.iter().copied()).collect();
            assert!(got == expected, "held output was overwritten");
        }
        shell.close().await.unwrap();
    }
    assert_clean(&sim);
}

/// `$LASTEXITCODE` in a `run_ps` script is the exit code of the last program it ran
/// (`$null` before any), as in PowerShell: `exit $LASTEXITCODE` passes a native
/// command's failure on, and a double-quoted string shows it (a single-quoted one
/// does not).
#[tokio::test]
async fn run_ps_sees_lastexitcode() {
    let (_sim, client) = sim_with(fast_ping()).await;
    let out = client.run_ps("exit $LASTEXITCODE").await.unwrap();
    assert_eq!(out.code, Some(0), "$null before any program ran");
    let out = client
        .run_ps("cmd /c exit 3; Write-Output \"code=$LASTEXITCODE\" 'raw=$LASTEXITCODE'; exit $LASTEXITCODE")
        .await
        .unwrap();
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(out.stdout_text(), "code=3\r\nraw=$LASTEXITCODE\r\n");
    let out = client
        .run_ps("cmd /c exit 4; cmd /c exit 0; exit $LASTEXITCODE")
        .await
        .unwrap();
    assert_eq!(out.code, Some(0), "the last program's code: {out:?}");
}
