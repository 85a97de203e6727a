//! Objects per second through a PSRP pipeline into serde structs, beside the raw rate
//! of parsing the same CLIXML with quick-xml events in the same process; printed (run in
//! release):
//!
//! ```text
//! cargo run --release --example bench_psrp_objects
//! ```
//!
//! A cmdlet registered in an in-process simulator writes `COUNT` (default 100,000)
//! `Get-Process`-shaped objects (25 properties); the client reads the pipeline's stream
//! and deserializes each output into a struct. The simulator's own work (building and
//! serializing the objects) shares the process and its cores, so the end-to-end rate is,
//! if anything, unflattering. The raw baseline is quick-xml's event reader over the
//! CLIXML of the same objects, concatenated, counting top-level `Obj` ends.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use tokio_winrm::psrp::{PsEvent, PsObject, PsValue, from_value};
use tokio_winrm::{Auth, Client};
use winrm_simulator::{CmdletContext, Simulator};

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

fn process_object(i: usize) -> PsValue {
    let mut o = PsObject::new()
        .with_type_names([
            "System.Diagnostics.Process",
            "System.ComponentModel.Component",
            "System.Object",
        ])
        .with_to_string(format!("System.Diagnostics.Process (svchost{i})"))
        .with_property("Name", format!("svchost{i}"))
        .with_property("Id", 1000 + i as i32)
        .with_property("Handles", 300 + (i % 50) as i32);
    for n in [
        "WorkingSet64",
        "PagedMemorySize64",
        "PrivateMemorySize64",
        "VirtualMemorySize64",
        "PeakWorkingSet64",
        "NonpagedSystemMemorySize64",
    ] {
        o = o.with_property(n, 12_345_678_i64 + i as i64);
    }
    o = o
        .with_property("CPU", PsValue::F64((i % 100) as f64 + 0.015625))
        .with_property(
            "StartTime",
            PsValue::DateTime("2018-06-13T23:46:27.9270288+00:00".into()),
        )
        .with_property("TotalProcessorTime", PsValue::Duration("PT1.5S".into()));
    for n in [
        "Path",
        "Company",
        "Description",
        "FileVersion",
        "ProductVersion",
        "Product",
        "MainWindowTitle",
        "ProcessName",
        "MachineName",
        "PriorityClass",
        "SessionId",
        "BasePriority",
        "HandleCount",
    ] {
        o = o.with_property(n, format!("C:\\Windows\\System32\\{n}-{i}"));
    }
    o.into()
}

fn raw_rate(count: usize) -> (f64, usize) {
    let mut doc = String::new();
    for i in 0..count {
        doc.push_str(&wsman_protocol::psrp::clixml::to_string(&process_object(i)));
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

#[tokio::main]
async fn main() {
    let count: usize = std::env::var("COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let sim = Simulator::start().await.unwrap();
    sim.register_cmdlet("Get-ManyProcesses", move |ctx: CmdletContext| async move {
        for i in 0..count {
            ctx.write_output(process_object(i)).await;
        }
        Ok(())
    });
    let client = Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(20))
        .max_envelope_size(512_000)
        .build()
        .unwrap();
    let pool = client.runspace_pool().open().await.unwrap();
    let t0 = Instant::now();
    let mut p = pool
        .pipeline()
        .command("Get-ManyProcesses")
        .start()
        .await
        .unwrap();
    let mut got = 0usize;
    while let Some(ev) = p.next().await {
        if let PsEvent::Output(v) = ev.unwrap() {
            let proc: Process = from_value(&v).unwrap();
            assert!(proc.name.starts_with("svchost"));
            got += 1;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    assert_eq!(got, count);
    let end_to_end = count as f64 / wall;
    let (raw, bytes) = raw_rate(count);
    println!(
        "{count} Get-Process-shaped objects ({:.1} MB of CLIXML): end to end into serde structs {:.0} objects/s ({wall:.2} s); raw quick-xml events over the same CLIXML {:.0} objects/s; ratio {:.0}%",
        bytes as f64 / 1e6,
        end_to_end,
        raw,
        100.0 * end_to_end / raw
    );
    pool.close().await.unwrap();
    client.shutdown().await;
}
