//! Peak memory of an enumeration does not depend on the size of its result: enumerates
//! 10,000 and then 1,000,000 `Sim_Item` instances (Win32_Service-shaped, 27 properties)
//! into a serde struct and prints the peak RSS (`VmHWM`) of each.
//!
//! Each measurement runs in its own process: a simulator process serves the class, and a
//! client process enumerates it and reports its own peak RSS, so neither the server's
//! memory nor the other run's is counted.
//!
//! `cargo run --release --example enum_memory`

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Deserialize;
use tokio_winrm::{Auth, Client, EnumEnd, EnumEvent, Resource};
use winrm_simulator::{SimConfig, Simulator};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)]
struct Item {
    name: String,
    index: u64,
    display_name: String,
    state: String,
    start_mode: String,
    process_id: u32,
    started: bool,
    install_date: Option<String>,
}

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// `VmHWM` (peak resident set) of this process, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Serves `count` instances; prints the endpoint, then runs until stdin closes.
async fn serve(count: u64) -> Res<()> {
    let sim = Simulator::start_with(SimConfig {
        synthetic_count: count,
        ..SimConfig::default()
    })
    .await?;
    println!("{} {} {}", sim.endpoint(), sim.user(), sim.password());
    std::io::stdout().flush()?;
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin()
            .read_line(&mut sink)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
    })
    .await?;
    Ok(())
}

/// Enumerates everything; prints `items peak_kib seconds`.
async fn enumerate(endpoint: &str, user: &str, password: &str) -> Res<()> {
    let client = Client::builder(endpoint)
        .auth(Auth::basic(user, password))
        .allow_insecure_basic(true)
        .max_envelope_size(512_000)
        .build()?;
    let start = Instant::now();
    let mut stream = client
        .enumerate_as::<Item>(&Resource::wmi("root/cimv2", "Sim_Item"))
        .start();
    let mut n = 0u64;
    while let Some(ev) = stream.next().await {
        match ev? {
            EnumEvent::Item(item) => {
                if item.index != n {
                    return Err(format!("item {} out of order (expected {n})", item.index).into());
                }
                n += 1;
            }
            EnumEvent::End(EnumEnd::Complete) => break,
            EnumEvent::End(other) => return Err(format!("ended early: {other:?}").into()),
            other => return Err(format!("unexpected {other:?}").into()),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{n} {} {secs:.2}", peak_rss_kib().unwrap_or(0));
    Ok(())
}

/// One measurement: a server process and a client process.
fn measure(count: u64) -> Res<(u64, u64, f64)> {
    let exe = std::env::current_exe()?;
    let mut server = Command::new(&exe)
        .args(["--serve", &count.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(server.stdout.take().ok_or("no server stdout")?).read_line(&mut line)?;
    let args: Vec<&str> = line.split_whitespace().collect();
    if args.len() != 3 {
        let _ = server.kill();
        return Err(format!("unexpected server output {line:?}").into());
    }
    let out = Command::new(&exe).arg("--enumerate").args(&args).output();
    drop(server.stdin.take());
    let _ = server.wait();
    let out = out?;
    if !out.status.success() {
        return Err(format!("client failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.split_whitespace().collect();
    match f.as_slice() {
        [n, kib, secs] => Ok((n.parse()?, kib.parse()?, secs.parse()?)),
        _ => Err(format!("unexpected client output {text:?}").into()),
    }
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
    };
    match args.first().map(String::as_str) {
        Some("--serve") => {
            let count = args.get(1).ok_or("--serve COUNT")?.parse()?;
            return rt()?.block_on(serve(count));
        }
        Some("--enumerate") => {
            let [_, endpoint, user, password] = args.as_slice() else {
                return Err("--enumerate ENDPOINT USER PASSWORD".into());
            };
            return rt()?.block_on(enumerate(endpoint, user, password));
        }
        _ => {}
    }
    let mut results = Vec::new();
    for count in [10_000u64, 1_000_000] {
        let (n, kib, secs) = measure(count)?;
        if n != count {
            return Err(format!("enumerated {n} of {count} instances").into());
        }
        println!(
            "{count:>9} instances: peak RSS {:>7.1} MiB, {secs:>6.2} s ({:.0} items/s)",
            kib as f64 / 1024.0,
            n as f64 / secs.max(1e-9)
        );
        results.push(kib);
        std::thread::sleep(Duration::from_millis(100));
    }
    let diff = results[1] as f64 / 1024.0 - results[0] as f64 / 1024.0;
    println!("difference: {diff:+.1} MiB (target: within 20 MiB)");
    Ok(())
}
