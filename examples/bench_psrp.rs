//! Small PSRP pipelines per second in one opened pool (`Get-Date`), sequentially and 32
//! at once, with the client's CPU time; JSON lines on stdout. Run in release against a
//! simulator in another process, so that the CPU time is the client's alone:
//!
//! ```text
//! winrm sim --ignore-stdin &      # prints its endpoint
//! WINRM_ENDPOINT=http://127.0.0.1:PORT/wsman cargo run --release --example bench_psrp
//! ```
//!
//! Without `WINRM_ENDPOINT` an in-process simulator is used (its CPU then counts too).
//! `SEQ` (default 2000) and `CONC_OPS` (default 4000) set the counts, `THREADS=1` runs
//! on a current-thread runtime (default: 2 worker threads), `SPAWN=1` runs the workload in
//! a spawned task instead of on the `block_on` thread;
//! `bench/peers/psrp_pipelines.py` runs the same workload through pypsrp.

use std::time::{Duration, Instant};

use tokio_winrm::{Auth, Client};

/// Client CPU seconds so far (user + system, all threads), from `/proc/self/stat`.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // THREADS=1: a current-thread runtime; otherwise a multi-thread one with 2 workers
    // (as bench_client's W1).
    let rt = if std::env::var("THREADS").is_ok_and(|v| v == "1") {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    }
    .unwrap();
    // SPAWN=1: the workload runs in a task on the runtime's workers rather than in
    // `block_on` on the main thread (as `#[tokio::main]` runs `main`'s body).
    if std::env::var("SPAWN").is_ok_and(|v| v == "1") {
        rt.block_on(async { tokio::spawn(run()).await.unwrap() });
    } else {
        rt.block_on(run());
    }
}

async fn run() {
    let seq = count("SEQ", 2000);
    let conc_ops = count("CONC_OPS", 4000);
    let (endpoint, user, password, _sim) = match std::env::var("WINRM_ENDPOINT") {
        Ok(e) => (
            e,
            std::env::var("WINRM_USER").unwrap_or_else(|_| "vagrant".into()),
            std::env::var("WINRM_PASSWORD").unwrap_or_else(|_| "vagrant".into()),
            None,
        ),
        Err(_) => {
            let sim = winrm_simulator::Simulator::start().await.unwrap();
            (
                sim.endpoint(),
                sim.user().to_string(),
                sim.password().to_string(),
                Some(sim),
            )
        }
    };
    let client = Client::builder(endpoint)
        .auth(Auth::basic(user, password))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let pool = client
        .runspace_pool()
        .max_runspaces(32)
        .open()
        .await
        .unwrap();
    // Warm-up: connections and the first pipelines.
    for _ in 0..20 {
        pool.pipeline().command("Get-Date").invoke().await.unwrap();
    }
    let requests0 = client.transport_stats().requests;
    let (cpu0, t0) = (cpu_secs(), Instant::now());
    for _ in 0..seq {
        let got = pool.pipeline().command("Get-Date").invoke().await.unwrap();
        assert_eq!(got.output.len(), 1);
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_secs() - cpu0);
    let requests = client.transport_stats().requests - requests0;
    println!(
        r#"{{"workload":"psrp_seq","client":"tokio-winrm","ops":{seq},"wall_s":{wall:.4},"cpu_s":{cpu:.3},"requests":{requests}}}"#
    );
    let (cpu0, t0) = (cpu_secs(), Instant::now());
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (pool_ref, next) = (&pool, next.clone());
        tasks.push(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < conc_ops {
                let got = pool_ref
                    .pipeline()
                    .command("Get-Date")
                    .invoke()
                    .await
                    .unwrap();
                assert_eq!(got.output.len(), 1);
            }
        });
    }
    futures_util::future::join_all(tasks).await;
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_secs() - cpu0);
    println!(
        r#"{{"workload":"psrp_32","client":"tokio-winrm","ops":{conc_ops},"wall_s":{wall:.4},"cpu_s":{cpu:.3}}}"#
    );
    pool.close().await.unwrap();
    client.shutdown().await;
}
