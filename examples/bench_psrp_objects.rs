//! Objects per second through a PSRP pipeline into serde structs, with the client's CPU
//! time, beside the raw rate of parsing the same CLIXML with quick-xml events in the
//! same process; one JSON line on stdout. Run in release against a simulator in another
//! process, so that the CPU time is the client's alone:
//!
//! ```text
//! winrm sim --ignore-stdin --psrp-processes 100000 &      # prints its endpoint
//! WINRM_ENDPOINT=http://127.0.0.1:PORT/wsman cargo run --release --example bench_psrp_objects
//! ```
//!
//! The pipeline is `Get-Process`; such a simulator writes `COUNT` (default 100,000)
//! synthetic `Get-Process`-shaped objects (25 properties,
//! [`winrm_simulator::synthetic_process`]) and the client deserializes each into a
//! struct ([`Pipeline::invoke_as`](tokio_winrm::psrp::Pipeline::invoke_as)). `COUNT`
//! must match the simulator's `--psrp-processes`. Without `WINRM_ENDPOINT` an in-process
//! simulator is used (its CPU then counts too). The raw baseline is quick-xml's event
//! reader over the CLIXML of the same objects, concatenated, counting top-level `Obj`
//! ends (best of three, single-threaded, so its wall time is its CPU time).
//! `RAW=0` leaves the raw baseline out (to profile the pipeline alone). `ROUNDS=N`
//! (default 1) runs the pipeline N times in the same pool and reports the round with the
//! least client CPU, as the raw baseline reports its best of three (`bench/compare.sh`
//! uses 3: on a shared machine one round can be slowed by others' work).
//! `bench/peers/psrp_objects.py` runs the same pipeline through pypsrp.

use std::time::{Duration, Instant};

use quick_xml::events::Event;
use quick_xml::reader::Reader;
use tokio_winrm::{Auth, Client};

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)]
struct Process {
    name: String,
    id: i64,
    handles: i64,
    working_set64: i64,
    #[serde(rename = "CPU")]
    cpu: f64,
    path: Option<String>,
}

/// This process's CPU time (all threads, user + system).
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

fn raw_rate(count: usize) -> (f64, usize) {
    let mut doc = String::new();
    for i in 0..count {
        doc.push_str(&wsman_protocol::psrp::clixml::to_string(
            &winrm_simulator::synthetic_process(i),
        ));
    }
    let bytes = doc.len();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t0 = Instant::now();
        let mut reader = Reader::from_str(&doc);
        let (mut depth, mut objects) = (0usize, 0usize);
        loop {
            match reader.read_event() {
                Ok(Event::Start(_)) => depth += 1,
                Ok(Event::End(_)) => {
                    depth -= 1;
                    if depth == 0 {
                        objects += 1;
                    }
                }
                Ok(Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(objects, count);
        best = best.min(t0.elapsed().as_secs_f64());
    }
    (count as f64 / best, bytes)
}

fn main() {
    // As examples/bench_psrp.rs: a multi-thread runtime with 2 workers, or THREADS=1.
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
    rt.block_on(run());
}

async fn run() {
    let count: usize = std::env::var("COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let (endpoint, user, password, _sim) = match std::env::var("WINRM_ENDPOINT") {
        Ok(e) => (
            e,
            std::env::var("WINRM_USER").unwrap_or_else(|_| "vagrant".into()),
            std::env::var("WINRM_PASSWORD").unwrap_or_else(|_| "vagrant".into()),
            None,
        ),
        Err(_) => {
            let sim = winrm_simulator::Simulator::start_with(winrm_simulator::SimConfig {
                psrp_synthetic_processes: count,
                log_requests: false,
                ..Default::default()
            })
            .await
            .unwrap();
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
        .max_envelope_size(512_000)
        .build()
        .unwrap();
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let pool = client.runspace_pool().open().await.unwrap();
    // (wall, cpu) of the round with the least CPU.
    let (mut wall, mut cpu) = (0.0, f64::MAX);
    for _ in 0..rounds {
        let (cpu0, t0) = (cpu_time(), Instant::now());
        let got = pool
            .pipeline()
            .command("Get-Process")
            .invoke_as::<Process>()
            .await
            .unwrap();
        let (w, c) = (
            t0.elapsed().as_secs_f64(),
            (cpu_time() - cpu0).as_secs_f64(),
        );
        assert_eq!(got.output.len(), count);
        assert!(got.output[0].name.starts_with("svchost"));
        drop(got);
        if c < cpu {
            (wall, cpu) = (w, c);
        }
    }
    pool.close().await.unwrap();
    client.shutdown().await;
    // RAW=0 leaves the raw baseline out (to profile the pipeline alone).
    let (raw, bytes) = if std::env::var("RAW").is_ok_and(|v| v == "0") {
        (0.0, 0)
    } else {
        raw_rate(count)
    };
    println!(
        r#"{{"workload":"psrp_objects","client":"tokio-winrm","objects":{count},"rounds":{rounds},"wall_s":{wall:.3},"cpu_s":{cpu:.3},"objects_per_s":{:.0},"objects_per_cpu_s":{:.0},"raw_objects_per_s":{raw:.0},"clixml_mb":{:.1},"cpu_vs_raw":{:.3}}}"#,
        count as f64 / wall,
        count as f64 / cpu,
        bytes as f64 / 1e6,
        if raw > 0.0 {
            (count as f64 / cpu) / raw
        } else {
            0.0
        },
    );
}
