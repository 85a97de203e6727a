//! Many requests in flight at once against the simulator: `calls` commands that can
//! only finish once the server holds `calls` pending Receives at the same time, so the
//! client must have opened `calls` connections (each with its own logon).
#![allow(dead_code, reason = "each test file uses a part")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_winrm::{Client, Output};
use winrm_simulator::Simulator;

/// Registers `wait-for-all` on `sim`, runs it `calls` times at once through `c`,
/// releases them all once every Receive is pending, and returns their outputs.
pub async fn run_all_at_once(sim: &Simulator, c: &Client, calls: usize) -> Vec<Output> {
    let release = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&release);
    sim.register_command("wait-for-all", move |ctx| {
        let flag = Arc::clone(&flag);
        Box::pin(async move {
            while !flag.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            ctx.print("released\r\n").await;
            0
        })
    });
    let runs: Vec<_> = (0..calls)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.run("wait-for-all", &[]).await })
        })
        .collect();
    while sim.counters().receives_pending < calls as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    release.store(true, Ordering::SeqCst);
    let mut outputs = Vec::with_capacity(calls);
    for run in runs {
        outputs.push(run.await.unwrap().unwrap());
    }
    outputs
}
