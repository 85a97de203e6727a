//! WinRS figures, printed (run in release):
//!
//! ```text
//! cargo run --release --example bench_winrs
//! ```
//!
//! 1. Cancel latency: time from `cancel()` to the Signal terminate arriving at the
//!    simulator while a Receive is pending on a 60 s OperationTimeout, and to the final
//!    `Exit(Cancelled)` item (p50/p99 over N runs).
//! 2. Stdout throughput: 256 MiB of output through the whole client (HTTP, XML, base64)
//!    in MB/s, beside the raw rate of parsing (quick-xml events) and base64-decoding
//!    the same ReceiveResponse bytes, measured in the same process.
//!
//! `RUNS` (cancel runs, default 200), `MIB` (default 256), `REPEAT` (throughput runs per
//! envelope size, median reported, default 3) and `ENVELOPES` (MaxEnvelopeSize in KiB,
//! comma-separated, default `150,500`) change the sizes.
//!
//! The raw baseline's responses carry one stream element each; the simulator's carry
//! one per 64 KiB the command wrote, which costs the client a little more per byte:
//! the baseline is, if anything, flattering to itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::StreamExt;
use quick_xml::events::Event;
use tokio_winrm::{Auth, Client, CommandEvent};
use winrm_simulator::{SimConfig, Simulator};

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

async fn cancel_latency(
    sim: &Arc<Simulator>,
    client: &Client,
    runs: usize,
) -> (Vec<f64>, Vec<f64>) {
    sim.register_command("forever", |ctx| {
        Box::pin(async move {
            ctx.print("started\r\n").await;
            std::future::pending::<()>().await;
            0
        })
    });
    let shell = client.shell().open().await.unwrap();
    let mut to_signal = Vec::with_capacity(runs);
    let mut to_final = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut cmd = shell.command("forever").start().await.unwrap();
        // First output, then wait until the next Receive is pending at the simulator.
        let _ = cmd.next().await;
        while sim.counters().receives_pending == 0 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let before = sim.counters().terminate_signals;
        let t0 = Instant::now();
        cmd.cancel();
        let mut last = None;
        while let Some(ev) = cmd.next().await {
            last = Some(ev.unwrap());
        }
        let t_final = Instant::now();
        // The stream ends at once on a cancel; the Signal terminate goes out at the same
        // moment on another request and may reach the simulator a little after the final
        // Exit was read. The simulator timestamps it when its handler runs.
        let waited = Instant::now();
        while sim.counters().terminate_signals == before
            && waited.elapsed() < Duration::from_secs(5)
        {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        assert_eq!(sim.counters().terminate_signals, before + 1);
        let t_signal = sim.last_terminate_signal_at().expect("a Signal terminate");
        assert!(t_signal >= t0);
        assert!(matches!(last, Some(CommandEvent::Exit(_))));
        to_signal.push((t_signal - t0).as_secs_f64() * 1e3);
        to_final.push((t_final - t0).as_secs_f64() * 1e3);
    }
    shell.close().await.unwrap();
    (to_signal, to_final)
}

/// ReceiveResponse bodies shaped like the simulator's (and Windows'): base64 stream
/// elements of up to `raw_per_response` bytes each.
fn receive_responses(total: usize, raw_per_response: usize) -> Vec<Vec<u8>> {
    let block: Vec<u8> = (0..raw_per_response)
        .map(|i| b"0123456789abcdefghijklmnopqrstuvwxyz\r\n"[i % 38])
        .collect();
    let id = "0D6FCA9D-2D40-44C3-B691-E665BE7AA687";
    let mut out = Vec::new();
    let mut left = total;
    while left > 0 {
        let n = left.min(raw_per_response);
        left -= n;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&block[..n]);
        out.push(format!(
            "<s:Envelope xml:lang=\"en-US\" xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" xmlns:rsp=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell\"><s:Header><a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse</a:Action><a:MessageID>uuid:2131383B-EFAE-46DE-92BB-343BE18B7EAD</a:MessageID><a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To><a:RelatesTo>uuid:FC40E3CD-53E9-4315-B486-6D538B25D1F5</a:RelatesTo></s:Header><s:Body><rsp:ReceiveResponse><rsp:Stream Name=\"stdout\" CommandId=\"{id}\">{b64}</rsp:Stream><rsp:CommandState CommandId=\"{id}\" State=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running\"></rsp:CommandState></rsp:ReceiveResponse></s:Body></s:Envelope>"
        ).into_bytes());
    }
    out
}

/// The floor: quick-xml events plus base64 decoding of the stream text, nothing else.
fn raw_parse_decode(bodies: &[Vec<u8>]) -> usize {
    let mut decoded = 0;
    let mut buf = Vec::with_capacity(256 * 1024);
    // One output buffer for the whole run: the floor allocates nothing per response.
    let mut out = Vec::with_capacity(512 * 1024);
    for b in bodies {
        let mut r = quick_xml::NsReader::from_reader(&b[..]);
        let mut in_stream = false;
        loop {
            match r.read_event_into(&mut buf).unwrap() {
                Event::Start(e) => in_stream = e.local_name().as_ref() == b"Stream",
                Event::End(_) => in_stream = false,
                Event::Text(t) if in_stream => {
                    out.clear();
                    base64::engine::general_purpose::STANDARD
                        .decode_vec(&*t, &mut out)
                        .unwrap();
                    decoded += out.len();
                }
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
    }
    decoded
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mib: usize = std::env::var("MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let sim = Arc::new(
        Simulator::start_with(SimConfig {
            log_requests: false,
            ..SimConfig::default()
        })
        .await
        .unwrap(),
    );
    let client = Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(60))
        .build()
        .unwrap();

    let (mut sig, mut fin) = cancel_latency(&sim, &client, runs).await;
    println!(
        "cancel -> Signal at simulator (ms, {runs} runs, Receive pending on PT60S): p50 {:.3}  p99 {:.3}  max {:.3}",
        percentile(&mut sig, 0.5),
        percentile(&mut sig, 0.99),
        percentile(&mut sig, 1.0)
    );
    println!(
        "cancel -> final Exit(Cancelled) (ms):                           p50 {:.3}  p99 {:.3}  max {:.3}",
        percentile(&mut fin, 0.5),
        percentile(&mut fin, 0.99),
        percentile(&mut fin, 1.0)
    );

    let repeat: usize = std::env::var("REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let envelopes: Vec<u32> = std::env::var("ENVELOPES")
        .ok()
        .map(|v| v.split(',').filter_map(|k| k.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![150, 500]);
    for envelope_kb in envelopes {
        let client = Client::builder(sim.endpoint())
            .auth(Auth::basic(sim.user(), sim.password()))
            .allow_insecure_basic(true)
            .max_envelope_size(envelope_kb * 1024)
            .max_response_bytes(8 << 20)
            .build()
            .unwrap();
        // Median of REPEAT runs of each, alternating: the machine is shared and noisy.
        let raw_per = (envelope_kb as usize * 1024 - 2048) * 3 / 4;
        let bodies = receive_responses(mib << 20, raw_per);
        let mut client_rates = Vec::new();
        let mut raw_rates = Vec::new();
        for _ in 0..repeat {
            let shell = client.shell().open().await.unwrap();
            let t = Instant::now();
            let mut cmd = shell
                .command("sim-gen")
                .args(["--mib", &mib.to_string()])
                .start()
                .await
                .unwrap();
            let mut bytes = 0usize;
            while let Some(ev) = cmd.next().await {
                if let CommandEvent::Stdout(b) = ev.unwrap() {
                    bytes += b.len();
                }
            }
            let secs = t.elapsed().as_secs_f64();
            shell.close().await.unwrap();
            assert_eq!(bytes, mib << 20);
            client_rates.push(bytes as f64 / 1e6 / secs);

            let t = Instant::now();
            let n = raw_parse_decode(&bodies);
            let raw_secs = t.elapsed().as_secs_f64();
            assert_eq!(n, mib << 20);
            raw_rates.push(n as f64 / 1e6 / raw_secs);
        }
        drop(bodies);
        let runs: Vec<String> = client_rates.iter().map(|r| format!("{r:.0}")).collect();
        let client_mbs = percentile(&mut client_rates, 0.5);
        let raw_mbs = percentile(&mut raw_rates, 0.5);
        println!(
            "stdout {mib} MiB, MaxEnvelopeSize {envelope_kb} KiB (median of {repeat}): client end to end {client_mbs:.0} MB/s; raw quick-xml + base64 over the same responses {raw_mbs:.0} MB/s; ratio {:.0}% (client runs in order: {} MB/s)",
            100.0 * client_mbs / raw_mbs,
            runs.join(", ")
        );
    }
}
