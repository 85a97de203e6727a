//! PSRP cancel latency, printed (run in release):
//!
//! ```text
//! cargo run --release --example bench_psrp_cancel
//! ```
//!
//! A pipeline writes three objects and then runs forever; the client reads the first,
//! waits until its next Receive is pending at the simulator (OperationTimeout 60 s),
//! and cancels. Measured per run: `cancel()` to the PSRP stop signal
//! (`powershell/signal/crtl_c`) reaching the simulator's handler, and to the stream's
//! final `State(Stopped)`. Each run also checks that the objects already received were
//! delivered and that `Stopped` came last, exactly once. `RUNS` (default 200) sets the
//! number of runs.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_winrm::psrp::{PipelineEnd, PsEvent, PsValue};
use tokio_winrm::{Auth, CancelReason, Client};
use winrm_simulator::{CmdletContext, SimConfig, Simulator};

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let sim = Simulator::start_with(SimConfig {
        log_requests: false,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    sim.register_cmdlet("Emit-Forever", |ctx: CmdletContext| async move {
        for n in 1..=3 {
            ctx.write_output(PsValue::from(n)).await;
        }
        std::future::pending::<()>().await;
        Ok(())
    });
    let client = Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let pool = client.runspace_pool().open().await.unwrap();
    let (mut to_signal, mut to_final) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        let mut p = pool
            .pipeline()
            .command("Emit-Forever")
            .start()
            .await
            .unwrap();
        let mut outputs = 0;
        if let Some(Ok(PsEvent::Output(_))) = p.next().await {
            outputs += 1;
        }
        // The next Receive is pending at the simulator.
        while sim.counters().receives_pending == 0 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let before = sim.counters().pipeline_stops;
        let t0 = Instant::now();
        p.cancel();
        let mut states = Vec::new();
        while let Some(ev) = p.next().await {
            match ev.unwrap() {
                PsEvent::Output(_) => {
                    assert!(states.is_empty(), "output after the final state");
                    outputs += 1;
                }
                PsEvent::State(s) => states.push(s),
                _ => {}
            }
        }
        let t_final = Instant::now();
        assert_eq!(
            states,
            [PipelineEnd::Stopped {
                reason: Some(CancelReason::User)
            }]
        );
        assert_eq!(
            outputs, 3,
            "the objects received before the cancel are delivered"
        );
        // The stop signal goes out at once; wait for its handler's timestamp.
        let mut waited = 0;
        while sim.counters().pipeline_stops == before && waited < 5_000 {
            tokio::time::sleep(Duration::from_millis(1)).await;
            waited += 1;
        }
        let t_signal = sim.last_pipeline_stop_at().expect("a stop signal");
        to_signal.push(t_signal.saturating_duration_since(t0).as_secs_f64() * 1e3);
        to_final.push(t_final.saturating_duration_since(t0).as_secs_f64() * 1e3);
    }
    println!(
        "cancel -> PSRP stop signal at simulator (ms, {runs} runs, Receive pending on PT60S): p50 {:.3}  p99 {:.3}  max {:.3}",
        percentile(&mut to_signal, 0.5),
        percentile(&mut to_signal, 0.99),
        percentile(&mut to_signal, 1.0)
    );
    println!(
        "cancel -> final State(Stopped) (ms): p50 {:.3}  p99 {:.3}  max {:.3}",
        percentile(&mut to_final, 0.5),
        percentile(&mut to_final, 0.99),
        percentile(&mut to_final, 1.0)
    );
    // The same figures as one JSON line, last (for bench/compare.sh).
    println!(
        r#"{{"workload":"psrp_cancel","runs":{runs},"signal_p50_ms":{:.3},"signal_p99_ms":{:.3},"final_p50_ms":{:.3},"final_p99_ms":{:.3}}}"#,
        percentile(&mut to_signal, 0.5),
        percentile(&mut to_signal, 0.99),
        percentile(&mut to_final, 0.5),
        percentile(&mut to_final, 0.99)
    );
    pool.close().await.unwrap();
    client.shutdown().await;
}
