//! Sealing cost, printed as figures: sequential Get round trips per second with NTLM and
//! message encryption beside the same workload over Basic, against the simulator in the
//! same run (target: sealed >= 70% of Basic), and seal + frame + parse + unseal MB/s.
//!
//! `cargo bench --bench sealing` (`SEALING_BENCH_ROUNDS` sets the round
//! trips per measurement, default 2000).

use std::time::{Duration, Instant};

use tokio_winrm::{Auth, Client, Resource};
use winrm_simulator::{SimConfig, Simulator};
use wsman_protocol::encryption as sealing;
use wsman_protocol::security::ntlm::NtlmContext;

async fn round_trips(endpoint: &str, auth: Auth, rounds: usize) -> f64 {
    let client = Client::builder(endpoint)
        .auth(auth)
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let res = Resource::wmi("root/cimv2", "Win32_OperatingSystem");
    for _ in 0..50 {
        client.get(&res).await.expect("warm-up get");
    }
    let start = Instant::now();
    for _ in 0..rounds {
        client.get(&res).await.expect("get");
    }
    rounds as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let rounds: usize = std::env::var("SEALING_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sim = Simulator::start_with(SimConfig {
            log_requests: false,
            ..SimConfig::default()
        })
        .await
        .expect("simulator");
        let (user, password) = (sim.user().to_string(), sim.password().to_string());
        let mut basic = Vec::new();
        let mut sealed = Vec::new();
        // Interleaved, three times each, so drift affects both alike; best of three.
        for _ in 0..3 {
            basic.push(round_trips(&sim.endpoint(), Auth::basic(&user, &password), rounds).await);
            sealed.push(round_trips(&sim.endpoint(), Auth::ntlm(&user, &password), rounds).await);
        }
        let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        let (b, s) = (best(&basic), best(&sealed));
        println!("round trips (sequential Get, {rounds} per run, best of 3):");
        println!("  basic/http:        {b:10.0} /s");
        println!(
            "  ntlm sealed/http:  {s:10.0} /s  ({:.0}% of basic; target >= 70%)",
            100.0 * s / b
        );
    });
    println!("seal + frame + parse + unseal:");
    for size in [1024usize, 16 * 1024, 150 * 1024, 1024 * 1024] {
        let message = vec![b'x'; size];
        let rounds = (64 * 1024 * 1024 / size).max(16);
        let elapsed = bench_seal_unseal(&message, rounds);
        let mb = (size * rounds) as f64 / (1024.0 * 1024.0);
        println!(
            "  {:>8} bytes: {:8.1} MB/s",
            size,
            mb / elapsed.as_secs_f64()
        );
    }
}

/// Benchmark support: authenticates a client and a server context in memory, then
/// `rounds` times seals `message` (client), frames it, parses the frame and unseals it
/// (server). Returns the elapsed time of the rounds. Panics if any step fails.
fn bench_seal_unseal(message: &[u8], rounds: usize) -> std::time::Duration {
    let password = secrecy::SecretString::from("bench".to_string());
    let (mut client, t1) = NtlmContext::client("bench", &password, None).expect("client context");
    let mut server = NtlmContext::server();
    let t2 = server.accept(&t1, None).expect("challenge");
    let t3 = client.respond(&t2).expect("authenticate");
    server.accept(&t3, Some("bench")).expect("accepted");
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let (signature, sealed) = client.seal(message).expect("seal");
        let body = sealing::frame(message.len(), &signature, &sealed);
        let parts = sealing::parse(&body).expect("frame");
        let plain = server.unseal(parts.signature, parts.data).expect("unseal");
        assert_eq!(plain.len(), message.len());
    }
    start.elapsed()
}
