//! Robust Connections ([MS-WSMV] §3.1.4.1.39), issue 11: through the fault-injecting
//! proxy, against the simulator's OperationMessages table. Requests cut after the server
//! read them are retransmitted with the same OperationID and answered from the cache
//! (Create, Command, Invoke run exactly once); a command's 64 MiB output arrives
//! byte-exact through cuts at random points; a cancel during retransmissions is prompt;
//! the table refuses a reused OperationID and keeps to its limits. Without Robust
//! Connections, a cut is a typed error and no shell is left.

#[path = "support/fault_proxy.rs"]
mod fault_proxy;
#[path = "support/raw_http.rs"]
mod raw_http;

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use fault_proxy::{Fault, FaultProxy};
use futures_util::StreamExt;
use tokio_winrm::{
    Auth, CancelReason, Client, ClientBuilder, CommandEvent, Error, ExitStatus, Instance, Resource,
};
use winrm_simulator::{SimConfig, Simulator};

const T: Duration = Duration::from_secs(60);

/// Bytes of the counting sequence: byte `i` of the stream is `seq_byte(i)`, a pattern
/// in which no 8-byte window repeats within 2^64 bytes (each 8-byte word is its index),
/// so any duplicated, lost or reordered piece shows.
fn seq_block(word: u64, words: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(words * 8);
    for w in word..word + words as u64 {
        v.extend_from_slice(&w.to_le_bytes());
    }
    v
}

async fn sim(robust: bool) -> Simulator {
    let sim = Simulator::start_with(SimConfig {
        max_shells_per_user: 1000,
        robust_connections: robust,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    // `counting MiB CODE`: MiB of the counting sequence in 64 KiB writes, exit CODE.
    sim.register_command("counting", |ctx| {
        Box::pin(async move {
            let mib: u64 = ctx.args.first().and_then(|a| a.parse().ok()).unwrap_or(1);
            let code: i32 = ctx.args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
            let words_per_block = 8 * 1024;
            let blocks = mib * 1024 * 1024 / (words_per_block as u64 * 8);
            for b in 0..blocks {
                ctx.write_stdout(&seq_block(b * words_per_block as u64, words_per_block))
                    .await;
            }
            code
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
        .operation_timeout(Duration::from_secs(5))
        .max_envelope_size(512_000)
        .max_response_bytes(8 * 1024 * 1024)
}

async fn within<F: IntoFuture>(f: F) -> F::Output {
    tokio::time::timeout(T, f.into_future())
        .await
        .expect("the operation hung")
}

fn process_resource() -> Resource {
    Resource::new("wmicimv2/Win32_Process")
}

/// Makes the client see the simulator's OperationID echo for the shell and process
/// resources (support is learnt per resource URI).
async fn learn_support(client: &Client) {
    let shell = within(client.shell().open()).await.unwrap();
    within(shell.close()).await.unwrap();
    let _ = within(client.get(&process_resource().selector("Handle", "0"))).await;
}

#[tokio::test]
async fn create_command_and_invoke_cut_after_the_server_read_them_run_exactly_once() {
    let sim = sim(true).await;
    let proxy = FaultProxy::start(sim.addr()).await;
    let client = builder(proxy.url(), &sim).build().unwrap();
    learn_support(&client).await;
    let created_before = sim.counters().shells_created;

    proxy.on("<rsp:Shell", Fault::CutAfterRequest, 1);
    let shell = within(client.shell().open())
        .await
        .expect("the Create is answered from the server's cache");
    assert_eq!(
        sim.counters().shells_created,
        created_before + 1,
        "Create ran once"
    );

    proxy.on("<rsp:CommandLine", Fault::CutAfterRequest, 1);
    let cmd = within(shell.command("counting").arg("1").arg("4").start())
        .await
        .expect("the Command is answered from the cache");
    assert_eq!(sim.counters().commands_started, 1, "Command ran once");
    let out = within(cmd.collect()).await.unwrap();
    assert_eq!(out.code, Some(4));
    assert_eq!(out.stdout, seq_block(0, 128 * 1024));

    proxy.on("Win32_Process/Create", Fault::CutAfterRequest, 1);
    let result = within(client.invoke(
        &process_resource(),
        "Create",
        &Instance::new("Create_INPUT").with("CommandLine", "notepad.exe"),
    ))
    .await
    .expect("the Invoke is answered from the cache");
    assert!(result.get("ReturnValue").is_some(), "{result:?}");
    assert_eq!(sim.counters().invokes, 1, "the Create ran exactly once");

    assert_eq!(proxy.stats().faults.load(Ordering::Relaxed), 3);
    assert_eq!(sim.counters().robust_replays, 3);
    within(shell.close()).await.unwrap();
    within(client.shutdown()).await;
    let c = sim.counters();
    assert_eq!((c.open_shells, c.running_commands), (0, 0), "{c:?}");
}

/// A tiny deterministic generator for the cut points.
fn chance(state: &AtomicU64, one_in: u64) -> bool {
    let mut x = state.load(Ordering::SeqCst);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    state.store(x, Ordering::SeqCst);
    x.is_multiple_of(one_in)
}

#[tokio::test]
async fn a_64_mib_stream_through_random_cuts_arrives_byte_exact() {
    let sim = sim(true).await;
    let proxy = FaultProxy::start(sim.addr()).await;
    let client = builder(proxy.url(), &sim).build().unwrap();
    learn_support(&client).await;
    let shell = within(client.shell().open()).await.unwrap();
    // About one Receive in six is cut, half after the server answered, half in the
    // middle of the response body.
    for (seed, fault) in [
        (0x9E37_79B9_7F4A_7C15u64, Fault::CutAfterRequest),
        (0xD1B5_4A32_D192_ED03u64, Fault::CutMidResponse),
    ] {
        let rng = Arc::new(AtomicU64::new(seed));
        proxy.on_match(
            move |body| body.contains("<rsp:Receive") && chance(&rng, 12),
            fault,
            usize::MAX,
        );
    }
    let mut cmd = within(shell.command("counting").arg("64").arg("7").start())
        .await
        .unwrap();
    let mut word = 0u64;
    let mut pending: Vec<u8> = Vec::new();
    let mut exit = None;
    while let Some(ev) = within(cmd.next()).await {
        match ev.expect("no error through the cuts") {
            CommandEvent::Stdout(b) => {
                pending.extend_from_slice(&b);
                let whole = pending.len() / 8 * 8;
                for chunk in pending[..whole].chunks_exact(8) {
                    let got = u64::from_le_bytes(chunk.try_into().unwrap());
                    assert_eq!(got, word, "byte {} of the output", word * 8);
                    word += 1;
                }
                pending.drain(..whole);
            }
            CommandEvent::Stderr(b) => panic!("stderr: {b:?}"),
            CommandEvent::Exit(s) => exit = Some(s),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pending.is_empty());
    assert_eq!(word * 8, 64 * 1024 * 1024, "every byte, once");
    assert_eq!(exit, Some(ExitStatus::Exited(7)));
    let cuts = proxy.stats().faults.load(Ordering::Relaxed);
    assert!(cuts >= 10, "only {cuts} cuts: the test would not show much");
    assert_eq!(
        sim.counters().robust_replays,
        cuts,
        "each cut answered from the cache"
    );
    proxy.clear();
    within(shell.close()).await.unwrap();
    within(client.shutdown()).await;
    let c = sim.counters();
    assert_eq!(
        (c.open_shells, c.running_commands, c.receives_pending),
        (0, 0, 0),
        "{c:?}"
    );
}

#[tokio::test]
async fn a_cancel_during_retransmissions_is_prompt_and_still_signals() {
    let sim = sim(true).await;
    let proxy = FaultProxy::start(sim.addr()).await;
    let client = builder(proxy.url(), &sim).build().unwrap();
    learn_support(&client).await;
    let shell = within(client.shell().open()).await.unwrap();
    let mut cmd = within(shell.command("chatty").start()).await.unwrap();
    within(cmd.next()).await.unwrap().unwrap();
    // From now on every Receive is lost: the client keeps retransmitting.
    proxy.on("<rsp:Receive", Fault::CutAfterRequest, usize::MAX);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let cancelled = Instant::now();
    cmd.cancel();
    let mut exit = None;
    while let Some(ev) = within(cmd.next()).await {
        if let CommandEvent::Exit(s) = ev.unwrap() {
            exit = Some(s);
        }
    }
    assert!(
        cancelled.elapsed() < Duration::from_secs(1),
        "{:?}",
        cancelled.elapsed()
    );
    assert_eq!(
        exit,
        Some(ExitStatus::Cancelled {
            reason: CancelReason::User
        })
    );
    within(client.shutdown()).await;
    assert_eq!(sim.counters().terminate_signals, 1);
    within(shell.close()).await.unwrap();
    assert_eq!(sim.counters().open_shells, 0);
}

#[tokio::test]
async fn without_robust_connections_a_cut_is_a_typed_error_and_no_shell_is_left() {
    let sim = sim(false).await;
    let proxy = FaultProxy::start(sim.addr()).await;
    let client = builder(proxy.url(), &sim).build().unwrap();
    learn_support(&client).await;
    let seen = Arc::new(AtomicU64::new(0));
    let s = Arc::clone(&seen);
    proxy.on_match(
        move |body| body.contains("<rsp:Receive") && s.fetch_add(1, Ordering::SeqCst) == 3,
        Fault::CutMidResponse,
        1,
    );
    let err = within(client.run("counting", &["16", "0"]))
        .await
        .expect_err("a lost Receive without Robust Connections");
    assert!(matches!(err, Error::ResponseLost { .. }), "{err:?}");
    within(client.shutdown()).await;
    let c = sim.counters();
    assert_eq!((c.open_shells, c.running_commands), (0, 0), "{c:?}");
    assert_eq!(c.robust_replays, 0);
}

/// One request written by hand, with the OperationID header as given.
fn raw_get(operation_id: &str, must_understand: bool, sequence: u32) -> String {
    format!(
        concat!(
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"><s:Header>"#,
            r#"<a:To>http://localhost/wsman</a:To><w:ResourceURI s:mustUnderstand="true">http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service</w:ResourceURI>"#,
            r#"<a:ReplyTo><a:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>"#,
            r#"<a:Action s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</a:Action>"#,
            r#"<a:MessageID>uuid:{msg}</a:MessageID>"#,
            r#"<p:OperationID s:mustUnderstand="{mu}">uuid:{op}</p:OperationID><p:SequenceId s:mustUnderstand="false">{seq}</p:SequenceId>"#,
            r#"<w:SelectorSet><w:Selector Name="Name">WinRM</w:Selector></w:SelectorSet></s:Header><s:Body/></s:Envelope>"#
        ),
        msg = uuid_like(),
        mu = must_understand,
        op = operation_id,
        seq = sequence
    )
}

fn uuid_like() -> String {
    static N: AtomicU64 = AtomicU64::new(1);
    format!(
        "00000000-0000-0000-0000-{:012}",
        N.fetch_add(1, Ordering::SeqCst)
    )
}

async fn post(sim: &Simulator, body: String) -> raw_http::Raw {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        sim.user(),
        sim.password()
    ));
    raw_http::send(
        sim.addr(),
        "POST",
        "/wsman",
        &[
            ("Authorization", format!("Basic {auth}")),
            (
                "Content-Type",
                "application/soap+xml;charset=UTF-8".to_string(),
            ),
        ],
        body.as_bytes(),
    )
    .await
}

#[tokio::test]
async fn the_operation_table_refuses_reuse_replays_retransmissions_and_keeps_its_limits() {
    let sim = Simulator::start_with(SimConfig {
        operation_cache_entries: 4,
        operation_retention: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let op = "11111111-2222-3333-4444-555555555555";
    let first = post(&sim, raw_get(op, false, 1)).await;
    assert_eq!(first.status, 200);
    let text = String::from_utf8_lossy(&first.body).to_string();
    assert!(
        text.contains(&format!("uuid:{op}</p:OperationID>")),
        "echo: {text}"
    );
    // The same OperationID, not marked as a retransmission: refused.
    let reused = post(&sim, raw_get(op, false, 1)).await;
    let reused_text = String::from_utf8_lossy(&reused.body).to_string();
    assert_eq!(reused.status, 500, "{reused_text}");
    assert!(
        reused_text.contains("InvalidMessageInformationHeader"),
        "{reused_text}"
    );
    assert_eq!(sim.counters().robust_refusals, 1);
    // Marked as a retransmission: the kept response.
    let replayed = post(&sim, raw_get(op, true, 1)).await;
    assert_eq!(replayed.status, 200);
    assert_eq!(sim.counters().robust_replays, 1);
    let body = |r: &raw_http::Raw| {
        let t = String::from_utf8_lossy(&r.body).to_string();
        t[t.find("<s:Body>").unwrap()..].to_string()
    };
    assert_eq!(body(&replayed), body(&first), "the same answer");
    // A SequenceId other than 1 is refused.
    let bad_seq = post(
        &sim,
        raw_get("99999999-2222-3333-4444-555555555555", false, 2),
    )
    .await;
    assert!(String::from_utf8_lossy(&bad_seq.body).contains("InvalidMessageInformationHeader"));
    // At most 4 rows (each request came on a connection of its own).
    for i in 0..10 {
        let id = format!("AAAAAAAA-2222-3333-4444-{i:012}");
        assert_eq!(post(&sim, raw_get(&id, false, 1)).await.status, 200);
        assert!(sim.cached_operations() <= 4, "{}", sim.cached_operations());
    }
    // Kept no longer than the retention time.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sim.cached_operations(), 0);
}

/// The table's byte budget: rows go, oldest first, once the responses kept pass
/// `operation_cache_bytes`, whatever the number of rows allows.
#[tokio::test]
async fn the_operation_table_keeps_to_its_byte_budget() {
    const BUDGET: usize = 8 * 1024;
    let sim = Simulator::start_with(SimConfig {
        operation_cache_bytes: BUDGET,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut largest = 0;
    for i in 0..20 {
        let id = format!("BBBBBBBB-2222-3333-4444-{i:012}");
        // Each on a connection of its own, which then closes: no request of the same
        // connection removes its row.
        let r = post(&sim, raw_get(&id, false, 1)).await;
        assert_eq!(r.status, 200);
        largest = largest.max(r.body.len());
        let kept = sim.cached_operation_bytes();
        assert!(
            kept <= BUDGET + largest + 256,
            "{kept} bytes kept after {} requests",
            i + 1
        );
    }
    let rows = sim.cached_operations();
    assert!(
        (1..20).contains(&rows),
        "rows went for the budget, not all: {rows}"
    );
    assert!(sim.cached_operation_bytes() > 0);
}

#[tokio::test]
async fn a_client_learns_support_per_resource_and_only_from_the_echo() {
    // Without support the OperationID goes out but nothing is retransmitted (a Get is
    // still sent again as a new operation, being a read).
    for robust in [true, false] {
        let sim = sim(robust).await;
        let proxy = FaultProxy::start(sim.addr()).await;
        let client = builder(proxy.url(), &sim).build().unwrap();
        learn_support(&client).await;
        proxy.on("<rsp:CommandLine", Fault::CutAfterRequest, 1);
        let shell = within(client.shell().open()).await.unwrap();
        let r = within(shell.command("counting").arg("1").start()).await;
        if robust {
            r.expect("answered from the cache");
        } else {
            let err = r.expect_err("no support: a typed error");
            assert!(matches!(err, Error::ResponseLost { .. }), "{err:?}");
        }
        assert_eq!(sim.counters().commands_started, 1);
        within(shell.close()).await.unwrap();
    }
}

#[tokio::test]
async fn sealed_ntlm_stream_through_random_cuts_of_any_request_arrives_byte_exact() {
    // NTLM with message encryption: the proxy cannot read the bodies, so it cuts any
    // request at random (handshake legs included). Each retransmission goes on a fresh,
    // re-authenticated connection and is sealed anew.
    let sim = sim(true).await;
    let proxy = FaultProxy::start(sim.addr()).await;
    let client = Client::builder(proxy.url())
        .auth(Auth::ntlm(sim.user(), sim.password()))
        .operation_timeout(Duration::from_secs(5))
        .max_envelope_size(512_000)
        .max_response_bytes(8 * 1024 * 1024)
        .build()
        .unwrap();
    learn_support(&client).await;
    let shell = within(client.shell().open()).await.unwrap();
    let rng = Arc::new(AtomicU64::new(0x2545_F491_4F6C_DD1D));
    let r = Arc::clone(&rng);
    // Requests of the stream (handshakes included) are cut at random after the server
    // answered; the Receive bodies are sealed, so nothing tells them apart.
    proxy.on_match(move |_| chance(&r, 10), Fault::CutAfterRequest, 40);
    let mut cmd = within(shell.command("counting").arg("8").arg("0").start())
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut exit = None;
    while let Some(ev) = within(cmd.next()).await {
        match ev.expect("no error through the cuts") {
            CommandEvent::Stdout(b) => out.extend_from_slice(&b),
            CommandEvent::Exit(s) => exit = Some(s),
            other => panic!("unexpected {other:?}"),
        }
    }
    proxy.clear();
    assert_eq!(exit, Some(ExitStatus::Exited(0)));
    assert!(out == seq_block(0, 1024 * 1024), "the 8 MiB differ");
    let cuts = proxy.stats().faults.load(Ordering::Relaxed);
    assert!(cuts >= 3, "only {cuts} cuts");
    assert!(sim.counters().sealed_messages > 0, "the traffic was sealed");
    within(shell.close()).await.unwrap();
    within(client.shutdown()).await;
    let c = sim.counters();
    assert_eq!((c.open_shells, c.running_commands), (0, 0), "{c:?}");
}

/// A host that goes away while a command runs: the Receive in flight is lost, its
/// retransmissions cannot connect, and the error says the operation may have been
/// carried out (it was: the command ran), never "could not connect, safe to retry".
/// Under a retry policy too, and the command is not started again.
#[tokio::test]
async fn a_host_gone_mid_command_is_not_reported_as_safe_to_retry() {
    let sim = sim(true).await;
    // The host as the client sees it: dropping the proxy cuts every connection and
    // refuses new ones, as a host that died does (the simulator behind it counts).
    let proxy = FaultProxy::start(sim.addr()).await;
    let client = builder(proxy.url(), &sim)
        .retry_policy(tokio_winrm::RetryPolicy::default())
        .build()
        .unwrap();
    learn_support(&client).await;
    let shell = within(client.shell().open()).await.unwrap();
    let mut cmd = within(shell.command("chatty").start()).await.unwrap();
    // Output is flowing: the command runs.
    let first = within(cmd.next()).await.expect("an event");
    assert!(first.is_ok(), "{first:?}");
    let started = sim.counters().commands_started;
    drop(proxy);
    let err = loop {
        match within(cmd.next()).await {
            Some(Ok(_)) => continue,
            Some(Err(e)) => break e,
            None => panic!("the stream ended without an error"),
        }
    };
    assert!(err.may_have_executed(), "{err:?}");
    assert!(!err.is_retryable() && !err.is_connect(), "{err:?}");
    assert_eq!(
        sim.counters().commands_started,
        started,
        "not started again"
    );
}

/// A registered cmdlet for the PowerShell tests: echoes each input object, then writes
/// 0..200 in order.
fn register_echo_then_count(sim: &Simulator) {
    sim.register_cmdlet(
        "Echo-Then-Count",
        |mut ctx: winrm_simulator::CmdletContext| async move {
            while let Some(v) = ctx.next_input().await {
                ctx.write_output(v).await;
            }
            for n in 0..200i64 {
                ctx.write_output(n).await;
            }
            Ok(())
        },
    );
}

#[tokio::test]
async fn a_powershell_pipeline_survives_lost_receives_and_sends() {
    use tokio_winrm::psrp::{PipelineEnd, PsEvent};
    use winrm_simulator::{Injection, Operation};

    let sim = sim(true).await;
    register_echo_then_count(&sim);
    let proxy = FaultProxy::start(sim.addr()).await;
    let client = builder(proxy.url(), &sim).build().unwrap();
    // The pool's Create learns the support for the PowerShell resource URI.
    let pool = within(client.runspace_pool().open()).await.unwrap();
    let expected: Vec<i64> = (1000..1003).chain(0..200).collect();
    let run = |pool: &tokio_winrm::psrp::RunspacePool| {
        let p = pool.pipeline().command("Echo-Then-Count").streaming_input();
        async move {
            let mut p = within(p.start()).await.unwrap();
            for n in 1000..1003i64 {
                within(p.send_input_as(&n)).await.unwrap();
            }
            within(p.end_input()).await.unwrap();
            let (mut got, mut end) = (Vec::new(), Vec::new());
            while let Some(ev) = within(p.next()).await {
                match ev.expect("no error through the lost responses") {
                    PsEvent::Output(v) => got.push(v.as_i64().unwrap()),
                    PsEvent::State(s) => end.push(s),
                    other => panic!("unexpected {other:?}"),
                }
            }
            (got, end)
        }
    };

    // The connection of the first Receive is dropped before the server reads it.
    sim.inject(Injection::on(Operation::Receive).drop_connection());
    let (got, end) = run(&pool).await;
    assert_eq!(sim.counters().injected, 1);
    assert_eq!(got, expected, "every object, once, in order");
    assert_eq!(end, [PipelineEnd::Completed]);

    // Cut after the server carried them out: answered from the OperationMessages table.
    let replays = sim.counters().robust_replays;
    proxy.on("<rsp:Receive", Fault::CutAfterRequest, 2);
    proxy.on("<rsp:Send", Fault::CutAfterRequest, 2);
    let (got, end) = run(&pool).await;
    assert_eq!(got, expected, "every object, once, in order");
    assert_eq!(end, [PipelineEnd::Completed]);
    let cuts = proxy.stats().faults.load(Ordering::Relaxed);
    assert_eq!(cuts, 4);
    assert_eq!(
        sim.counters().robust_replays - replays,
        cuts,
        "each cut answered from the cache"
    );
    proxy.clear();
    within(pool.close()).await.unwrap();
}
