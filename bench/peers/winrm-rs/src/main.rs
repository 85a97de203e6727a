//! The winrm-rs side of `bench/compare.sh`: the workloads of `examples/bench_client.rs`
//! through winrm-rs's public API (`WinrmClient`, `Shell`), one per invocation, each
//! printing one JSON line (`{"client":"winrm-rs","workload":...}`) on stdout.
//!
//! ```text
//! winrm-rs-peer w1 URL OPS CONCURRENCY [basic|ntlm]   run_command("echo", ["hello"])
//! winrm-rs-peer w2 URL MIB                            stdout of `sim-gen --mib N`, streamed
//! winrm-rs-peer w4 RUNS                               run_command_with_cancel (embedded simulator)
//! winrm-rs-peer ntlm OPS                              W1 over NTLM against an embedded simulator:
//!                                                     what its counters saw
//! ```
//!
//! Failures are counted and reported (with the first error's text), never fatal. CPU is
//! this process's own (`/proc/self/stat` utime + stime), measured around the workload
//! only, on a two-worker runtime as `bench_client`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

// The winrm-rs release under test: feature `v1` (1.1.2, the default) or `v2` (2.0.1).
#[cfg(all(feature = "v1", feature = "v2"))]
compile_error!("features v1 and v2 select one winrm-rs release each: enable one");
#[cfg(not(feature = "v2"))]
use winrm_rs as winrm;
#[cfg(feature = "v2")]
use winrm_rs2 as winrm;

use winrm::{
    AuthMethod, CancellationToken, EncryptionMode, WinrmClient, WinrmConfig, WinrmCredentials,
    WinrmError,
};

/// The winrm-rs version under test.
const VERSION: &str = if cfg!(feature = "v2") {
    "2.0.1"
} else {
    "1.1.2"
};
use winrm_simulator::{CounterSnapshot, SimConfig, Simulator};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The host part winrm-rs wants (it builds `http://HOST:PORT/wsman` itself).
const HOST: &str = "127.0.0.1";

/// Client CPU seconds so far (user + system, all threads).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat(5); `after` starts at field 3. USER_HZ is 100 on Linux.
    (tick(11) + tick(12)) / 100.0
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}

/// A JSON string literal.
fn js(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars().take(300) {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The port of `http://127.0.0.1:PORT/wsman`.
fn port_of(url: &str) -> Res<u16> {
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let port = hostport.rsplit_once(':').ok_or("URL without a port")?.1;
    Ok(port.parse()?)
}

fn client(port: u16, ntlm: bool) -> Res<WinrmClient> {
    let config = WinrmConfig {
        #[cfg(not(feature = "v2"))]
        port,
        #[cfg(feature = "v2")]
        port: Some(port),
        // http:// (2.x defaults to HTTPS).
        use_tls: false,
        auth_method: if ntlm {
            AuthMethod::Ntlm
        } else {
            AuthMethod::Basic
        },
        // NTLM: EncryptionMode::Auto (the default), sealed over http://. Basic: Never
        // (2.x refuses Basic over http:// otherwise; 1.x ignores it for Basic).
        encryption: if ntlm {
            EncryptionMode::Auto
        } else {
            EncryptionMode::Never
        },
        operation_timeout_secs: 60,
        max_output_bytes: None,
        ..WinrmConfig::default()
    };
    Ok(WinrmClient::new(
        config,
        WinrmCredentials::new("vagrant", "vagrant", ""),
    )?)
}

/// Failures: how many, and the first one's text.
#[derive(Default)]
struct Failures {
    count: AtomicUsize,
    first: std::sync::Mutex<Option<String>>,
}

impl Failures {
    fn add(&self, e: &dyn std::fmt::Display) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(e.to_string());
        }
    }

    fn first(&self) -> Option<String> {
        self.first.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `"failures":N,"first_error":...`, the names prefixed with `p`.
    fn json(&self, p: &str) -> String {
        let first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        format!(
            r#""{p}failures":{},"{p}first_error":{}"#,
            self.count.load(Ordering::Relaxed),
            first.as_deref().map_or("null".to_string(), js)
        )
    }
}

/// One W1 operation: `run_command` opens a shell, runs the command, reads its output to
/// the end, signals terminate and deletes the shell (winrm-rs's one-call path).
async fn echo(c: &WinrmClient) -> Res<()> {
    let out = c.run_command(HOST, "echo", &["hello"]).await?;
    if out.stdout != b"hello\r\n" || out.exit_code != 0 {
        return Err(format!(
            "unexpected echo output {:?} code {}",
            out.stdout, out.exit_code
        )
        .into());
    }
    Ok(())
}

async fn w1(url: &str, ops: usize, conc: usize, ntlm: bool) -> Res<String> {
    let c = Arc::new(client(port_of(url)?, ntlm)?);
    let (warmup, failures) = (Failures::default(), Arc::new(Failures::default()));
    for _ in 0..conc.min(8) {
        if let Err(e) = echo(&c).await {
            warmup.add(&format!("warm-up: {e}"));
        }
    }
    let next = Arc::new(AtomicUsize::new(0));
    let (cpu0, t0) = (cpu_secs(), Instant::now());
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (c, next, failures) = (Arc::clone(&c), Arc::clone(&next), Arc::clone(&failures));
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < ops {
                if let Err(e) = echo(&c).await {
                    failures.add(&e);
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_secs() - cpu0);
    let auth = if ntlm { "ntlm" } else { "basic" };
    // The first error of the run, else of the warm-up.
    let first = failures.first().or_else(|| warmup.first());
    Ok(format!(
        r#"{{"workload":"w1","auth":"{auth}","concurrency":{conc},"ops":{ops},"wall_s":{wall:.4},"cpu_s":{cpu:.3},"failures":{},"warmup_failures":{},"first_error":{}}}"#,
        failures.count.load(Ordering::Relaxed),
        warmup.count.load(Ordering::Relaxed),
        first.as_deref().map_or("null".to_string(), js)
    ))
}

/// W2 streamed: `Shell::start_command` and `Shell::receive_next` until done, counting
/// the stdout bytes (nothing kept), then `Shell::close`.
async fn w2(url: &str, mib: usize) -> Res<String> {
    let c = client(port_of(url)?, false)?;
    let want = mib << 20;
    let failures = Failures::default();
    let (cpu0, t0) = (cpu_secs(), Instant::now());
    let mut got = 0usize;
    let shell = c.open_shell(HOST).await?;
    match shell
        .start_command("sim-gen", &["--mib", &mib.to_string()])
        .await
    {
        Ok(id) => loop {
            match shell.receive_next(&id).await {
                Ok(out) => {
                    got += out.stdout.len();
                    if out.done {
                        break;
                    }
                }
                Err(e) => {
                    failures.add(&e);
                    break;
                }
            }
        },
        Err(e) => failures.add(&e),
    }
    shell.close().await?;
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_secs() - cpu0);
    if got != want {
        failures.add(&format!("{got} bytes, not {want}"));
    }
    Ok(format!(
        r#"{{"workload":"w2","bytes":{got},"wall_s":{wall:.4},"cpu_s":{cpu:.3},{}}}"#,
        failures.json("")
    ))
}

async fn wait_for(sim: &Simulator, what: impl Fn(&CounterSnapshot) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !what(&sim.counters()) {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    true
}

/// A simulator in this process with a `forever` command (prints a line, never ends)
/// and room for every shell the runs leave (the default quota is 30 per user).
async fn forever_sim(shells: usize) -> Res<Simulator> {
    let sim = Simulator::start_with(SimConfig {
        log_requests: false,
        max_shells_per_user: shells + 100,
        ..SimConfig::default()
    })
    .await?;
    sim.register_command("forever", |ctx| async move {
        ctx.print("started\r\n").await;
        std::future::pending::<()>().await;
        0
    });
    Ok(sim)
}

/// The cancel figures of one variant, as JSON fields prefixed with `p`.
struct CancelRuns {
    ret_ms: Vec<f64>,
    failures: Failures,
    cancelled: usize,
}

impl CancelRuns {
    fn json(mut self, p: &str, sim: &Simulator, c0: &CounterSnapshot) -> String {
        let c = sim.counters();
        format!(
            r#""{p}runs":{},"{p}cancelled":{},"{p}return_p50_ms":{:.3},"{p}return_p99_ms":{:.3},"{p}signals_sent":{},"{p}terminate_signals":{},"{p}shells_left_open":{},"{p}commands_left_running":{},"{p}receives_left_pending":{},{}"#,
            self.ret_ms.len(),
            self.cancelled,
            percentile(&mut self.ret_ms, 0.5),
            percentile(&mut self.ret_ms, 0.99),
            c.signals - c0.signals,
            c.terminate_signals - c0.terminate_signals,
            c.open_shells - c0.open_shells,
            c.running_commands - c0.running_commands,
            c.receives_pending,
            self.failures.json(p),
        )
    }
}

/// W4: cancel with the command's Receive pending. Two variants, each against its own
/// embedded simulator: `WinrmClient::run_command_with_cancel` (a shell per command)
/// and `Shell::run_command_with_cancel` in one shell. The figures: the time from
/// `cancel()` to the call returning, and what the simulator's counters show 200 ms after
/// the last run: Signals received, shells still open, commands still running.
async fn w4(runs: usize) -> Res<String> {
    // Variant 1: the client's one-call path.
    let sim = forever_sim(runs).await?;
    let c = Arc::new(client(sim.addr().port(), false)?);
    let c0 = sim.counters();
    let mut r1 = CancelRuns {
        ret_ms: Vec::with_capacity(runs),
        failures: Failures::default(),
        cancelled: 0,
    };
    for _ in 0..runs {
        let (started, pending) = {
            let s = sim.counters();
            (s.commands_started, s.receives_pending)
        };
        let token = CancellationToken::new();
        let (cc, t) = (Arc::clone(&c), token.clone());
        let task =
            tokio::spawn(async move { cc.run_command_with_cancel(HOST, "forever", &[], t).await });
        if !wait_for(&sim, |s| s.commands_started > started).await
            || !wait_for(&sim, |s| s.receives_pending > pending).await
        {
            r1.failures.add(&"the command did not start");
            token.cancel();
            let _ = task.await;
            continue;
        }
        let t0 = Instant::now();
        token.cancel();
        let res = task.await?;
        r1.ret_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        match res {
            Err(WinrmError::Cancelled) => r1.cancelled += 1,
            Err(e) => r1.failures.add(&e),
            Ok(_) => r1.failures.add(&"the command ended"),
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let j1 = r1.json("", &sim, &c0);
    drop(c);
    drop(sim);

    // Variant 2: one shell, `Shell::run_command_with_cancel` (documented as sending
    // Ctrl+C on cancel).
    let sim = forever_sim(runs).await?;
    let c = client(sim.addr().port(), false)?;
    let c0 = sim.counters();
    let shell = c.open_shell(HOST).await?;
    let mut r2 = CancelRuns {
        ret_ms: Vec::with_capacity(runs),
        failures: Failures::default(),
        cancelled: 0,
    };
    for _ in 0..runs {
        let started = sim.counters().commands_started;
        let pending = sim.counters().receives_pending;
        let token = CancellationToken::new();
        let run = shell.run_command_with_cancel("forever", &[], token.clone());
        tokio::pin!(run);
        let ready = async {
            wait_for(&sim, |s| s.commands_started > started).await
                && wait_for(&sim, |s| s.receives_pending > pending).await
        };
        // Drive the call until its Receive is pending at the simulator.
        let ok = tokio::select! {
            ok = ready => ok,
            res = &mut run => {
                r2.failures.add(&format!("ended before the cancel: {:?}", res.err()));
                continue;
            }
        };
        if !ok {
            r2.failures.add(&"the command did not start");
            continue;
        }
        let t0 = Instant::now();
        token.cancel();
        let res = run.await;
        r2.ret_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        match res {
            Err(WinrmError::Cancelled) => r2.cancelled += 1,
            Err(e) => r2.failures.add(&e),
            Ok(_) => r2.failures.add(&"the command ended"),
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The shell itself is still open here (closed below): count it out.
    let mut j2 = r2.json("shell_", &sim, &c0);
    j2 = j2.replacen(
        &format!(
            r#""shell_shells_left_open":{}"#,
            sim.counters().open_shells - c0.open_shells
        ),
        &format!(
            r#""shell_shells_left_open":{}"#,
            (sim.counters().open_shells - c0.open_shells).saturating_sub(1)
        ),
        1,
    );
    let _ = shell.close().await;
    Ok(format!(r#"{{"workload":"w4",{j1},{j2}}}"#))
}

/// W1 over NTLM (sealing: `EncryptionMode::Auto` over http://) against an embedded
/// simulator, once with `AllowUnencrypted` false (Windows' default) and once true: what
/// the simulator's counters saw (handshakes, sealed requests unsealed, sealed requests
/// refused, requests) and how many commands failed.
async fn ntlm_probe(ops: usize) -> Res<String> {
    let mut out = Vec::new();
    for allow in [false, true] {
        let sim = Simulator::start_with(SimConfig {
            log_requests: false,
            allow_unencrypted: allow,
            ..SimConfig::default()
        })
        .await?;
        let c = client(sim.addr().port(), true)?;
        let failures = Failures::default();
        for _ in 0..ops {
            if let Err(e) = echo(&c).await {
                failures.add(&e);
            }
        }
        let s = sim.counters();
        let p = if allow { "allow_" } else { "" };
        out.push(format!(
            r#""{p}requests":{},"{p}connections":{},"{p}ntlm_handshakes":{},"{p}sealed_messages":{},"{p}unseal_failures":{},"{p}shells_left_open":{},{}"#,
            s.requests,
            s.connections,
            s.ntlm_handshakes,
            s.sealed_messages,
            s.unseal_failures,
            s.open_shells,
            failures.json(p)
        ));
    }
    Ok(format!(
        r#"{{"workload":"ntlm_probe","ops":{ops},{}}}"#,
        out.join(",")
    ))
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Res<T> {
    args.get(i)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("argument {i} ({what}) missing or invalid").into())
}

fn main() -> Res<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let which = a.first().map(String::as_str).unwrap_or("");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let url = a.get(1).cloned().unwrap_or_default();
    let line = match which {
        "w1" => {
            let ntlm = a.get(4).is_some_and(|v| v == "ntlm");
            rt.block_on(w1(
                &url,
                arg(&a, 2, "OPS")?,
                arg(&a, 3, "CONCURRENCY")?,
                ntlm,
            ))?
        }
        "w2" => rt.block_on(w2(&url, arg(&a, 2, "MIB")?))?,
        "w4" => rt.block_on(w4(arg(&a, 1, "RUNS")?))?,
        "ntlm" => rt.block_on(ntlm_probe(arg(&a, 1, "OPS")?))?,
        _ => return Err("usage: winrm-rs-peer w1|w2|w4|ntlm ... (see the file's doc)".into()),
    };
    println!(
        "{{\"client\":\"winrm-rs\",\"version\":\"{VERSION}\",{}",
        &line[1..]
    );
    Ok(())
}
