//! `winrm sim`: the WS-Management simulator (the `winrm-simulator` crate) as a standalone
//! server, for clients in other processes (this tool with `--endpoint`, pywinrm, pypsrp,
//! a test suite).
//!
//! ```text
//! winrm sim --addr 127.0.0.1:5985
//! ```
//!
//! The first line on stdout is the endpoint URL (`http://127.0.0.1:PORT/wsman`); the
//! user name goes to stderr. The server runs until Ctrl-C, SIGTERM, or end of stdin (so
//! a parent process can stop it by closing the pipe).

use std::io::{IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use winrm_simulator::{SimConfig, Simulator};

/// The options of `winrm sim`.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Interval between `ping -n N` lines, in milliseconds (Windows: 1000).
    #[arg(long, value_name = "MS")]
    ping_interval_ms: Option<u64>,
    /// MaxShellsPerUser quota.
    #[arg(long, value_name = "N")]
    max_shells: Option<usize>,
    /// Number of instances of the synthetic class Sim_Item.
    #[arg(long, value_name = "N")]
    synthetic_count: Option<u64>,
    /// Keep running when stdin reaches end of input (only Ctrl-C or SIGTERM stop it).
    #[arg(long)]
    ignore_stdin: bool,
}

/// Runs the simulator until Ctrl-C, SIGTERM, or end of stdin (unless `--ignore-stdin`),
/// accepting `user` and `password` (Basic, NTLM and Negotiate logons).
pub async fn serve(o: SimArgs, user: String, password: String) -> std::process::ExitCode {
    let mut cfg = SimConfig {
        addr: o.addr,
        users: vec![(user, password)],
        // Nobody in this process reads the request log.
        log_requests: false,
        ..SimConfig::default()
    };
    if let Some(ms) = o.ping_interval_ms {
        cfg.ping_interval = Duration::from_millis(ms);
    }
    if let Some(n) = o.max_shells {
        cfg.max_shells_per_user = n;
    }
    if let Some(n) = o.synthetic_count {
        cfg.synthetic_count = n;
    }
    let sim = match Simulator::start_with(cfg).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", o.addr);
            return std::process::ExitCode::from(1);
        }
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", sim.endpoint());
        let _ = out.flush();
    }
    let stop = if o.ignore_stdin {
        "stop with Ctrl-C or SIGTERM"
    } else {
        "stop with Ctrl-C, SIGTERM or by closing stdin"
    };
    eprintln!(
        "simulator listening on {} (user {:?}); {stop}",
        sim.endpoint(),
        sim.user()
    );

    let stdin_eof = async {
        if o.ignore_stdin || std::io::stdin().is_terminal() {
            return std::future::pending::<()>().await;
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // A plain thread: a blocking read must not hold up the runtime at exit.
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut stdin = std::io::stdin().lock();
            while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
            let _ = tx.send(());
        });
        let _ = rx.await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => eprintln!("simulator: interrupted, stopping"),
        _ = terminated() => eprintln!("simulator: terminated, stopping"),
        () = stdin_eof => eprintln!("simulator: stdin closed, stopping"),
    }
    let c = sim.counters();
    eprintln!(
        "simulator: {} requests, {} shells created ({} open), {} commands, {} open enumerations",
        c.requests, c.shells_created, c.open_shells, c.commands_started, c.open_enumerations
    );
    sim.stop();
    std::process::ExitCode::SUCCESS
}

#[cfg(unix)]
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminated() {
    std::future::pending().await
}
