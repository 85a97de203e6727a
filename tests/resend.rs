//! Never harm the host (issue 10, classes 1, 4 and 5), through a fault-injecting proxy
//! between the client and a simulator without Robust Connections: a request that may have reached the server is
//! never sent twice (Invoke, shell Create, Command run exactly once; a lost Receive is a
//! typed error after a clean prefix of the output, not silent loss); reads are sent
//! again; a cancel is final at once even when the server stalls; short requests are
//! served while long polls hold every channel; an Enumerate cancelled in flight still
//! has its context released; the opt-in retry policy waits out a quota.

#[path = "support/fault_proxy.rs"]
mod fault_proxy;

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fault_proxy::{Fault, FaultProxy};
use futures_util::StreamExt;
use tokio_winrm::{
    Auth, CancelReason, Client, ClientBuilder, CommandEvent, EnumEnd, EnumEvent, Error, ExitStatus,
    Instance, Resource, RetryPolicy,
};
use winrm_simulator::{SimConfig, Simulator};

const T: Duration = Duration::from_secs(20);

/// A simulator without Robust Connections (as Windows before 8 / Server 2012): what
/// the client does when the server cannot answer a retransmission from a cache.
/// tests/robust.rs has the same faults against a server that can.
async fn sim() -> Simulator {
    let sim = Simulator::start_with(SimConfig {
        max_shells_per_user: 1000,
        robust_connections: false,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    sim.register_command("lines", |ctx| {
        Box::pin(async move {
            for i in 0..10 {
                ctx.print(&format!("line {i}\r\n")).await;
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            0
        })
    });
    sim.register_command("chatty", |ctx| {
        Box::pin(async move {
            for i in 0u64.. {
                ctx.print(&format!("tick {i}\r\n")).await;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            0
        })
    });
    sim
}

fn builder(url: String, sim: &Simulator) -> ClientBuilder {
    Client::builder(url)
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(20))
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < T, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn within<F: IntoFuture>(f: F) -> F::Output {
    tokio::time::timeout(T, f.into_future())
        .await
        .expect("the operation hung")
}

#[tokio::test]
async fn an_invoke_whose_response_is_lost_ran_once_and_says_so() {
    let sim = sim().await;
    let proxy = FaultProxy::start(sim.addr()).await;
    let client = builder(proxy.url(), &sim).build().unwrap();
    // A kept-alive connection first, as in the measured case.
    within(client.identify()).await.unwrap();
    proxy.on("Win32_Process/Create", Fault::CutAfterRequest, 1);
    let err = within(client.invoke(
        &Resource::new("wmicimv2/Win32_Process"),
        "Create",
        &Instance::new("Create_INPUT").with("CommandLine", "notepad.exe"),
    ))
    .await
    .expect_err("the response was lost");
    assert!(matches!(err, Error::ResponseLost { .. }), "{err:?}");
    assert!(err.may_have_executed(), "{err}");
    assert!(err.to_string().contains("may have carried it out"), "{err}");
    assert_eq!(proxy.stats().faults.load(Ordering::Relaxed), 1);
    assert_eq!(sim.counters().invokes, 1, "the Create ran exactly once");
    // The client goes on working.
    within(client.identify()).await.unwrap();
    assert_eq!(sim.counters().invokes, 1);
}

#[tokio::test]
async fn shell_create_and_command_whose_responses_are_lost_run_once() {
    let sim = sim().await;
    let proxy = FaultProxy::start(sim.addr()).await;
    let client = builder(proxy.url(), &sim).build().unwrap();
    within(client.identify()).await.unwrap();

    proxy.on("<rsp:Shell", Fault::CutAfterRequest, 1);
    let err = within(client.shell().open()).await.expect_err("lost");
    assert!(matches!(err, Error::ResponseLost { .. }), "{err:?}");
    assert_eq!(sim.counters().shells_created, 1, "Create ran exactly once");

    let shell = within(client.shell().open()).await.unwrap();
    assert_eq!(sim.counters().shells_created, 2);
    proxy.on("<rsp:CommandLine", Fault::CutAfterRequest, 1);
    let err = within(shell.command("lines").start())
        .await
        .expect_err("lost");
    assert!(matches!(err, Error::ResponseLost { .. }), "{err:?}");
    assert_eq!(
        sim.counters().commands_started,
        1,
        "Command ran exactly once"
    );
    within(shell.close()).await.unwrap();
    // The shell whose Create response was lost is the one left (its id never reached
    // us); nothing else is.
    assert_eq!(sim.counters().open_shells, 1);
}

#[tokio::test]
async fn a_receive_cut_while_pending_is_an_error_after_a_clean_prefix() {
    for fault in [Fault::CutAfterRequest, Fault::CutMidResponse] {
        let sim = sim().await;
        let proxy = FaultProxy::start(sim.addr()).await;
        let client = builder(proxy.url(), &sim).build().unwrap();
        let shell = within(client.shell().open()).await.unwrap();
        // The third Receive is lost.
        let seen = Arc::new(AtomicUsize::new(0));
        let s = Arc::clone(&seen);
        proxy.on_match(
            move |body| body.contains("<rsp:Receive") && s.fetch_add(1, Ordering::SeqCst) == 2,
            fault,
            1,
        );
        let mut cmd = within(shell.command("lines").start()).await.unwrap();
        let mut out = String::new();
        let mut end = None;
        while let Some(ev) = within(cmd.next()).await {
            match ev {
                Ok(CommandEvent::Stdout(b)) => out.push_str(&String::from_utf8_lossy(&b)),
                Ok(other) => {
                    end = Some(Ok(other));
                    break;
                }
                Err(e) => {
                    end = Some(Err(e));
                    break;
                }
            }
        }
        let end = end.expect("the stream ended without a final item");
        let err = end.expect_err("a lost Receive must not end in an exit status");
        assert!(
            matches!(err, Error::ResponseLost { .. }),
            "{fault:?}: {err:?}"
        );
        assert!(
            within(cmd.next()).await.is_none(),
            "nothing after the error"
        );
        // What arrived is a clean prefix: lines 0..k in order, none twice, none missing.
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines.len() < 10,
            "{fault:?}: the cut lost nothing? {lines:?}"
        );
        for (i, l) in lines.iter().enumerate() {
            assert_eq!(*l, format!("line {i}"), "{fault:?}: {lines:?}");
        }
        // Signal terminate still goes out, tracked for shutdown.
        client.shutdown().await;
        assert_eq!(sim.counters().terminate_signals, 1, "{fault:?}");
        within(shell.close()).await.unwrap();
        assert_eq!(sim.counters().open_shells, 0);
    }
}

#[tokio::test]
async fn a_get_whose_response_is_lost_is_sent_again() {
    let sim = sim().await;
    let proxy = FaultProxy::start(sim.addr()).await;
    let client = builder(proxy.url(), &sim).build().unwrap();
    within(client.identify()).await.unwrap();
    proxy.on("transfer/Get<", Fault::CutMidResponse, 1);
    let winrm =
        within(client.get(&Resource::new("wmicimv2/Win32_Service").selector("Name", "WinRM")))
            .await
            .unwrap();
    assert_eq!(winrm.get_str("Name"), Some("WinRM"));
    assert_eq!(proxy.stats().faults.load(Ordering::Relaxed), 1);
    assert_eq!(client.transport_stats().reconnects, 1);
}

#[tokio::test]
async fn a_cancel_is_final_at_once_when_the_server_stalls() {
    let sim = sim().await;
    let proxy = FaultProxy::start(sim.addr()).await;
    let client = builder(proxy.url(), &sim)
        .http_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let shell = within(client.shell().open()).await.unwrap();
    let mut cmd = within(shell.command("chatty").start()).await.unwrap();
    let first = within(cmd.next()).await.unwrap().unwrap();
    assert!(matches!(first, CommandEvent::Stdout(_)), "{first:?}");
    // Every Signal's answer stalls far past the cancel.
    proxy.on("signal/terminate", Fault::Stall(Duration::from_secs(30)), 1);
    let cancelled = Instant::now();
    cmd.cancel();
    let mut exit = None;
    while let Some(ev) = within(cmd.next()).await {
        if let CommandEvent::Exit(s) = ev.unwrap() {
            exit = Some(s);
        }
    }
    let latency = cancelled.elapsed();
    assert_eq!(
        exit,
        Some(ExitStatus::Cancelled {
            reason: CancelReason::User
        })
    );
    // Not the Signal's HTTP timeout (3 s): the final status does not wait for the server.
    assert!(latency < Duration::from_millis(1500), "{latency:?}");
    // The Signal did go out, and shutdown waits for it (its HTTP timeout ends the wait).
    wait_for("Signal terminate", || sim.counters().terminate_signals == 1).await;
    within(client.shutdown()).await;
    drop(shell);
    within(client.shutdown()).await;
}

#[tokio::test]
async fn short_requests_are_served_while_long_polls_hold_every_channel() {
    let sim = sim().await;
    let client = builder(sim.endpoint(), &sim)
        .max_channels(8)
        .build()
        .unwrap();
    // Eight chatty commands: their Receives come back every 25 ms and go out again at
    // once, and there are more of them than channels.
    let mut shells = Vec::new();
    let mut cmds = Vec::new();
    for _ in 0..8 {
        let shell = within(client.shell().open()).await.unwrap();
        cmds.push(within(shell.command("chatty").start()).await.unwrap());
        shells.push(shell);
    }
    let readers: Vec<_> = cmds
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut n = 0;
                while let Some(Ok(CommandEvent::Stdout(_))) = c.next().await {
                    n += 1;
                }
                n
            })
        })
        .collect();
    wait_for("long polls on 7 channels", || {
        sim.counters().receives_pending >= 7
    })
    .await;
    // Gets and Identifies are served promptly while the Receives keep cycling.
    for _ in 0..20 {
        let started = Instant::now();
        let r = within(
            client
                .get(&Resource::new("wmicimv2/Win32_Service").selector("Name", "WinRM"))
                .deadline(Duration::from_secs(5)),
        )
        .await;
        r.unwrap_or_else(|e| panic!("a Get was not served in time: {e:?}"));
        within(client.identify().deadline(Duration::from_secs(5)))
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    assert!(
        client.transport_stats().connects <= 8,
        "{:?}",
        client.transport_stats()
    );
    for r in &readers {
        r.abort();
    }
    for r in readers {
        let _ = r.await;
    }
    for s in shells {
        within(s.close()).await.unwrap();
    }
    within(client.shutdown()).await;
    let c = sim.counters();
    assert_eq!((c.open_shells, c.running_commands), (0, 0), "{c:?}");
}

#[tokio::test]
async fn an_enumerate_cancelled_in_flight_has_its_context_released() {
    let sim = sim().await;
    let proxy = FaultProxy::start(sim.addr()).await;
    let client = builder(proxy.url(), &sim).build().unwrap();
    for _ in 0..5 {
        proxy.on("<n:Enumerate>", Fault::Stall(Duration::from_millis(300)), 1);
        let mut e = client
            .wql("root/cimv2", "SELECT * FROM Sim_Item")
            .max_elements(10)
            .start();
        let waiting = Instant::now();
        wait_for("the Enumerate at the proxy", || {
            proxy.stats().faults.load(Ordering::Relaxed) > 0
        })
        .await;
        e.cancel();
        let ev = within(e.next()).await.unwrap().unwrap();
        assert!(
            matches!(
                ev,
                EnumEvent::End(EnumEnd::Cancelled {
                    reason: CancelReason::User
                })
            ),
            "{ev:?}"
        );
        assert!(
            waiting.elapsed() < Duration::from_millis(300),
            "the cancel waited"
        );
        drop(e);
        within(client.shutdown()).await;
        let c = sim.counters();
        assert_eq!(c.open_enumerations, 0, "a context was left: {c:?}");
        proxy.clear();
        proxy.stats().faults.store(0, Ordering::Relaxed);
    }
    assert_eq!(sim.counters().releases, 5);
}

#[tokio::test]
async fn the_retry_policy_waits_out_the_shell_quota() {
    let sim = Simulator::start_with(SimConfig {
        max_shells_per_user: 2,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let plain = builder(sim.endpoint(), &sim).build().unwrap();
    let a = within(plain.shell().open()).await.unwrap();
    let b = within(plain.shell().open()).await.unwrap();
    let err = within(plain.shell().open())
        .await
        .expect_err("over the quota");
    assert!(err.is_quota() && err.is_retryable(), "{err:?}");

    let patient = builder(sim.endpoint(), &sim)
        .retry_policy(
            RetryPolicy::new()
                .max_attempts(20)
                .initial_backoff(Duration::from_millis(50))
                .max_backoff(Duration::from_millis(200)),
        )
        .build()
        .unwrap();
    let opening = tokio::spawn(async move { patient.shell().open().await.map(|s| (s, patient)) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!opening.is_finished(), "the open must wait for a free slot");
    let faults_before = sim.counters().faults;
    assert!(faults_before >= 2, "the quota was hit again while waiting");
    within(a.close()).await.unwrap();
    let (c, patient) = within(opening).await.unwrap().unwrap();
    within(c.close()).await.unwrap();
    within(b.close()).await.unwrap();
    drop(patient);

    // A policy with few attempts gives up with the quota fault.
    let a = within(plain.shell().open()).await.unwrap();
    let b = within(plain.shell().open()).await.unwrap();
    let brief = builder(sim.endpoint(), &sim)
        .retry_policy(
            RetryPolicy::new()
                .max_attempts(3)
                .initial_backoff(Duration::from_millis(10)),
        )
        .build()
        .unwrap();
    let before = sim.counters().shells_created;
    let err = within(brief.shell().open())
        .await
        .expect_err("still over the quota");
    assert!(err.is_quota(), "{err:?}");
    assert_eq!(sim.counters().shells_created, before);
    within(a.close()).await.unwrap();
    within(b.close()).await.unwrap();
}

#[tokio::test]
async fn connect_failures_keep_the_io_error() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let client = Client::builder(format!("http://{addr}/wsman"))
        .build()
        .unwrap();
    let err = within(client.identify()).await.unwrap_err();
    let Error::Connect { source, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(err.is_connect() && err.is_retryable() && !err.may_have_executed());
    let io = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .expect("the io::Error is the source");
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
}
