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
//! section (`ROUNDS=N` sets the length, default 5: 100 W1 blocks of 25 commands and 10 W2
//! blocks of 32 MiB per side).

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

/// Process CPU time (every thread: client and simulator), from the OS.
fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One block of work: wall time and process CPU time.
#[derive(Clone, Copy)]
struct Block {
    wall: Duration,
    cpu: Duration,
}

async fn timed<F: std::future::Future<Output = Res<()>>>(f: F) -> Res<Block> {
    let (w, c) = (Instant::now(), cpu_time());
    f.await?;
    Ok(Block {
        wall: w.elapsed(),
        cpu: cpu_time() - c,
    })
}

async fn w1(c: &Client, n: usize) -> Res<()> {
    for _ in 0..n {
        let out = c.run("echo", &["hello"]).await?;
        assert_eq!(out.code, Some(0));
    }
    Ok(())
}

async fn w2(c: &Client, mib: u64) -> Res<()> {
    let shell = c.shell().open().await?;
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
    shell.close().await?;
    assert_eq!(bytes, mib * 1024 * 1024);
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Blocks of the same work with and without OperationIDs, interleaved ABBA so that a
/// change of load on the machine falls on both; `pairs` pairs.
async fn interleaved<'a, F, Fut>(
    pairs: usize,
    on: &'a Client,
    off: &'a Client,
    work: F,
) -> Res<Vec<(Block, Block)>>
where
    F: Fn(&'a Client) -> Fut,
    Fut: std::future::Future<Output = Res<()>>,
{
    let mut out = Vec::with_capacity(pairs);
    for p in 0..pairs {
        let pair = if p % 2 == 0 {
            let a = timed(work(on)).await?;
            (a, timed(work(off)).await?)
        } else {
            let b = timed(work(off)).await?;
            (timed(work(on)).await?, b)
        };
        out.push(pair);
    }
    Ok(out)
}

/// The figures of one workload: `units` per block (commands or MB).
struct Figures {
    /// Throughput over all blocks, with and without.
    rate_on: f64,
    rate_off: f64,
    /// Median over pairs of (throughput with / throughput without).
    paired_ratio: f64,
    /// CPU time per unit (µs), with and without.
    cpu_on: f64,
    cpu_off: f64,
}

fn figures(pairs: &[(Block, Block)], units: f64) -> Figures {
    let sum =
        |f: fn(&(Block, Block)) -> Duration| pairs.iter().map(f).sum::<Duration>().as_secs_f64();
    let n = pairs.len() as f64 * units;
    let mut ratios: Vec<f64> = pairs
        .iter()
        .map(|(a, b)| b.wall.as_secs_f64() / a.wall.as_secs_f64())
        .collect();
    Figures {
        rate_on: n / sum(|p| p.0.wall),
        rate_off: n / sum(|p| p.1.wall),
        paired_ratio: median(&mut ratios),
        cpu_on: sum(|p| p.0.cpu) * 1e6 / n,
        cpu_off: sum(|p| p.1.cpu) * 1e6 / n,
    }
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
    const W1_BLOCK: usize = 25;
    const W2_BLOCK_MIB: u64 = 32;
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
        // Warm up both clients (connections, logon, Robust Connections support learnt).
        w1(&on, 200).await?;
        w1(&off, 200).await?;
        w2(&on, 16).await?;
        w2(&off, 16).await?;
        let w1_pairs = interleaved(rounds * 20, &on, &off, |c| w1(c, W1_BLOCK)).await?;
        let w2_pairs = interleaved(rounds * 2, &on, &off, |c| w2(c, W2_BLOCK_MIB)).await?;
        let mut rec = if sim_robust {
            recovery(&sim).await?
        } else {
            Vec::new()
        };
        rec.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let w1f = figures(&w1_pairs, W1_BLOCK as f64);
        let w2f = figures(&w2_pairs, W2_BLOCK_MIB as f64 * 1.048_576);
        println!("## Robust Connections: cost and recovery");
        println!();
        println!(
            "`cargo run --release --example bench_robust` (`ROUNDS={rounds}`: {} W1 blocks of {W1_BLOCK} commands \
             and {} W2 blocks of {W2_BLOCK_MIB} MiB per side, interleaved with/without/without/with; simulator in \
             the same process). With: `p:OperationID` on every request and the simulator keeping every response \
             in its OperationMessages table; without: `robust_connections(false)`. \"paired\" is the median over \
             adjacent pairs of blocks of the throughput ratio; CPU is the process's (client and simulator).",
            w1_pairs.len(),
            w2_pairs.len()
        );
        println!();
        let verdict = |r: f64| if r >= 0.95 { "met" } else { "missed" };
        println!(
            "| workload | with OperationID | without | with / without (all blocks) | paired | target >= 0.95 (paired) | CPU with | CPU without | CPU without / with |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |");
        for (name, f, unit) in [
            ("W1 commands/s (one at a time)", &w1f, "µs/command"),
            ("W2 MB/s (stdout)", &w2f, "µs/MB"),
        ] {
            println!(
                "| {name} | {:.0} | {:.0} | {:.3} | {:.3} | {} | {:.0} {unit} | {:.0} {unit} | {:.3} |",
                f.rate_on,
                f.rate_off,
                f.rate_on / f.rate_off,
                f.paired_ratio,
                verdict(f.paired_ratio),
                f.cpu_on,
                f.cpu_off,
                f.cpu_off / f.cpu_on,
            );
        }
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
