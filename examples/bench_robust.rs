//! What Robust Connections cost and what they buy, against the embedded simulator, in one
//! process (figures are ratios of runs made side by side, alternating, so the machine's
//! noise falls on both):
//!
//! - W1: commands one at a time (open a shell, `echo hello`, read, close), with
//!   `p:OperationID` on every request against without (`robust_connections(false)`);
//! - W2: 256 MiB of stdout (`sim-gen`) streamed, the same two ways;
//! - recovery: a command streaming through the fault-injecting proxy of the test suite,
//!   with one Receive in 20 cut in the middle of its response; the time from each cut
//!   to the next output byte the consumer reads (retransmission on a fresh connection,
//!   answered from the server's cache).
//!
//! `cargo run --release --example bench_robust` prints a Markdown
//! section (`ROUNDS=N` sets the rounds, default 5).

#[path = "../tests/support/fault_proxy.rs"]
mod fault_proxy;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fault_proxy::{Fault, FaultProxy};
use futures_util::StreamExt;
use tokio_winrm::{Auth, Client, CommandEvent};
use winrm_simulator::{SimConfig, Simulator};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn client(url: String, sim: &Simulator, robust: bool) -> Res<Client> {
    Ok(Client::builder(url)
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .max_envelope_size(512_000)
        .max_response_bytes(8 * 1024 * 1024)
        .robust_connections(robust)
        .build()?)
}

async fn w1(c: &Client, n: usize) -> Res<f64> {
    let start = Instant::now();
    for _ in 0..n {
        let out = c.run("echo", &["hello"]).await?;
        assert_eq!(out.code, Some(0));
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

async fn w2(c: &Client, mib: u64) -> Res<f64> {
    let shell = c.shell().open().await?;
    let start = Instant::now();
    let mut cmd = shell
        .command("sim-gen")
        .arg("--mib")
        .arg(mib.to_string())
        .start()
        .await?;
    let mut bytes = 0u64;
    while let Some(ev) = cmd.next().await {
        if let CommandEvent::Stdout(b) = ev? {
            bytes += b.len() as u64;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    shell.close().await?;
    assert_eq!(bytes, mib * 1024 * 1024);
    Ok(bytes as f64 / secs / 1e6)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn recovery(sim: &Simulator) -> Res<Vec<Duration>> {
    let proxy = FaultProxy::start(sim.addr()).await;
    let c = client(proxy.url(), sim, true)?;
    // Learn that the server supports Robust Connections for shells.
    c.shell().open().await?.close().await?;
    let seen = Arc::new(AtomicU64::new(0));
    let s = Arc::clone(&seen);
    proxy.on_match(
        move |body| body.contains("<rsp:Receive") && s.fetch_add(1, Ordering::SeqCst) % 20 == 19,
        Fault::CutMidResponse,
        usize::MAX,
    );
    let shell = c.shell().open().await?;
    let mut cmd = shell
        .command("sim-gen")
        .arg("--mib")
        .arg("256")
        .start()
        .await?;
    let mut faults_seen = 0;
    let mut latencies = Vec::new();
    while let Some(ev) = cmd.next().await {
        if let CommandEvent::Stdout(_) = ev? {
            let faults = proxy.stats().faults.load(Ordering::SeqCst);
            if faults > faults_seen {
                faults_seen = faults;
                if let Some(at) = *proxy.stats().last_fault_at.lock().unwrap() {
                    latencies.push(at.elapsed());
                }
            }
        }
    }
    shell.close().await?;
    Ok(latencies)
}

fn main() -> Res<()> {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        // SIM_ROBUST=0: a simulator that ignores OperationIDs, to see the client's own
        // share of the cost.
        let sim_robust = std::env::var("SIM_ROBUST").map_or(true, |v| v != "0");
        let sim = Simulator::start_with(SimConfig {
            max_shells_per_user: 1000,
            robust_connections: sim_robust,
            log_requests: false,
            ..SimConfig::default()
        })
        .await?;
        let on = client(sim.endpoint(), &sim, true)?;
        let off = client(sim.endpoint(), &sim, false)?;
        w1(&on, 200).await?;
        w1(&off, 200).await?;
        let (mut w1_on, mut w1_off, mut w2_on, mut w2_off) = (vec![], vec![], vec![], vec![]);
        for r in 0..rounds {
            // Alternate which goes first.
            if r % 2 == 0 {
                w1_on.push(w1(&on, 1000).await?);
                w1_off.push(w1(&off, 1000).await?);
                w2_on.push(w2(&on, 256).await?);
                w2_off.push(w2(&off, 256).await?);
            } else {
                w1_off.push(w1(&off, 1000).await?);
                w1_on.push(w1(&on, 1000).await?);
                w2_off.push(w2(&off, 256).await?);
                w2_on.push(w2(&on, 256).await?);
            }
        }
        let mut rec = if sim_robust {
            recovery(&sim).await?
        } else {
            Vec::new()
        };
        rec.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let (a, b, c, d) = (
            median(&mut w1_on),
            median(&mut w1_off),
            median(&mut w2_on),
            median(&mut w2_off),
        );
        println!("## Robust Connections: cost and recovery");
        println!();
        println!(
            "`cargo run --release --example bench_robust` ({rounds} alternating rounds, medians; \
             simulator in the same process). With: `p:OperationID` on every request and the simulator keeping \
             every response in its OperationMessages table; without: `robust_connections(false)`."
        );
        println!();
        let verdict = |r: f64| if r >= 0.95 { "met" } else { "missed" };
        println!("| workload | with OperationID | without | with / without | target >= 0.95 |");
        println!("| --- | ---: | ---: | ---: | --- |");
        println!(
            "| W1 commands/s (one at a time) | {a:.0} | {b:.0} | {:.3} | {} |",
            a / b,
            verdict(a / b)
        );
        println!(
            "| W2 MB/s (256 MiB stdout) | {c:.0} | {d:.0} | {:.3} | {} |",
            c / d,
            verdict(c / d)
        );
        println!();
        if rec.is_empty() {
            println!("Recovery: no cut was measured.");
        } else {
            println!(
                "Recovery through the fault-injecting proxy (a Receive cut mid-response, retransmitted on a fresh \
                 connection, answered from the cache): {} cuts, time from the cut to the next output byte read \
                 p50 {:.2} ms, max {:.2} ms.",
                rec.len(),
                ms(rec[rec.len() / 2]),
                ms(rec[rec.len() - 1])
            );
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
