//! A guided tour of tokio-winrm against the embedded simulator: identify, get, a typed
//! fault, invoke, a streamed command, a cancelled command, a WQL query, a cancelled
//! enumeration, and PowerShell Remoting: objects read into a struct and a cancelled
//! pipeline.
//!
//! ```text
//! cargo run --example demo
//! ```

use std::error::Error as StdError;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_winrm::psrp::{PipelineEnd, PsEvent};
use tokio_winrm::shell::text;
use tokio_winrm::{Auth, Client, CommandEvent, EnumEvent, ExitStatus, Instance, Resource};
use winrm_simulator::{SimConfig, Simulator};

type Result<T> = std::result::Result<T, Box<dyn StdError + Send + Sync>>;

/// How long one `ping` interval lasts in the simulator (Windows: 1 s).
const PING_INTERVAL: Duration = Duration::from_millis(150);

fn heading(n: u32, title: &str) {
    println!("\n== {n}. {title} ==");
}

fn show(inst: &Instance, names: &[&str]) {
    for n in names {
        let v = inst.get_str(n).unwrap_or("(not set)");
        println!("  {n:<16} {v}");
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let started = Instant::now();
    let sim = Simulator::start_with(SimConfig {
        ping_interval: PING_INTERVAL,
        ..SimConfig::default()
    })
    .await?;
    println!(
        "tokio-winrm demo: an embedded WS-Management simulator is listening at {}",
        sim.endpoint()
    );
    let client = Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true) // the simulator speaks plain HTTP on loopback
        .operation_timeout(Duration::from_secs(5))
        .build()?;

    heading(1, "Identify: what is at the other end?");
    let id = client.identify().await?;
    println!("  vendor           {}", id.product_vendor);
    println!("  version          {}", id.product_version);
    println!("  protocol         {}", id.protocol_version);

    heading(2, "Get Win32_OperatingSystem (WS-Transfer Get)");
    let os = client
        .get(&Resource::new("wmicimv2/Win32_OperatingSystem"))
        .await?;
    show(
        &os,
        &[
            "Caption",
            "Version",
            "BuildNumber",
            "CSName",
            "OSArchitecture",
        ],
    );

    heading(3, "Get Win32_Service with selector Name=WinRM");
    let winrm = Resource::new("wmicimv2/Win32_Service").selector("Name", "WinRM");
    let svc = client.get(&winrm).await?;
    show(
        &svc,
        &["Name", "DisplayName", "State", "StartMode", "ProcessId"],
    );

    heading(4, "A wrong selector gives a typed fault");
    let missing = Resource::new("wmicimv2/Win32_Service").selector("Name", "NoSuchService");
    match client.get(&missing).await {
        Ok(inst) => println!("  unexpected: got an instance of {}", inst.class_name),
        Err(e) => match e.fault() {
            Some(f) => {
                let code = f.code().unwrap_or(0);
                println!("  code             {code} (0x{code:08X})");
                println!("  meaning          {}", f.meaning().unwrap_or("(unknown)"));
                println!(
                    "  subcode          {}",
                    f.subcode.as_deref().unwrap_or("(none)")
                );
                println!("  is_gone()        {}", f.is_gone());
                println!("  server says      {}", f.message().trim());
            }
            None => println!("  error (not a fault): {e}"),
        },
    }

    heading(5, "Invoke Win32_Process.Create");
    let input = Instance::new("Create_INPUT").with("CommandLine", "notepad.exe");
    let out = client
        .invoke(&Resource::new("wmicimv2/Win32_Process"), "Create", &input)
        .await?;
    show(&out, &["ReturnValue", "ProcessId"]);

    heading(
        6,
        "Run `ping -n 3 localhost`, output streamed as it arrives",
    );
    stream_ping(&client).await?;

    heading(
        7,
        "Cancel `ping -n 100` after two replies (MI_Operation_Cancel)",
    );
    cancel_ping(&client, &sim).await?;

    heading(8, "A WQL query, rows streamed (WS-Enumeration)");
    wql(&client).await?;

    heading(
        9,
        "Cancel an enumeration of 10,000 instances after 250 (Release)",
    );
    cancel_wql(&client, &sim).await?;

    heading(10, "PowerShell Remoting: Get-Service objects into a struct");
    pwsh_services(&client).await?;

    heading(
        11,
        "Cancel a PowerShell pipeline mid-way (PSRP stop signal)",
    );
    pwsh_cancel(&client, &sim).await?;

    client.shutdown().await;
    println!("\ndone in {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}

async fn stream_ping(client: &Client) -> Result<()> {
    let shell = client.shell().codepage(65001).open().await?;
    let t0 = Instant::now();
    let mut cmd = shell
        .command("ping")
        .args(["-n", "3", "localhost"])
        .start()
        .await?;
    while let Some(ev) = cmd.next().await {
        match ev? {
            CommandEvent::Stdout(b) => print_chunk(t0, "stdout", &b, cmd.codepage()),
            CommandEvent::Stderr(b) => print_chunk(t0, "stderr", &b, cmd.codepage()),
            CommandEvent::Exit(status) => println!(
                "  [{:5.2}s] exit   | {status:?}",
                t0.elapsed().as_secs_f64()
            ),
            other => println!("  {other:?}"),
        }
    }
    shell.close().await?;
    println!("  shell closed (WS-Transfer Delete)");
    Ok(())
}

async fn cancel_ping(client: &Client, sim: &Simulator) -> Result<()> {
    let before = sim.counters();
    let shell = client.shell().codepage(65001).open().await?;
    let t0 = Instant::now();
    let mut cmd = shell
        .command("ping")
        .args(["-n", "100", "localhost"])
        .start()
        .await?;
    let cancel = cmd.cancel_handle(); // cheap clone; cancel() is sync and idempotent
    let mut replies = 0;
    let mut cancel_scheduled = false;
    let mut end = None;
    while let Some(ev) = cmd.next().await {
        match ev? {
            CommandEvent::Stdout(b) => {
                print_chunk(t0, "stdout", &b, cmd.codepage());
                replies += text::decode(&b, cmd.codepage())
                    .matches("Reply from")
                    .count();
                if replies >= 2 && !cancel_scheduled {
                    // Cancel a moment later, while the next Receive (a long poll) is
                    // waiting on the server: it is abandoned, not waited out.
                    cancel_scheduled = true;
                    let cancel = cancel.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(PING_INTERVAL / 3).await;
                        println!(
                            "  [{:5.2}s] cancel | cancel_handle.cancel()",
                            t0.elapsed().as_secs_f64()
                        );
                        cancel.cancel();
                    });
                }
            }
            CommandEvent::Stderr(b) => print_chunk(t0, "stderr", &b, cmd.codepage()),
            CommandEvent::Exit(status) => {
                println!(
                    "  [{:5.2}s] exit   | {status:?}",
                    t0.elapsed().as_secs_f64()
                );
                end = Some(status);
            }
            other => println!("  {other:?}"),
        }
    }
    if !matches!(end, Some(ExitStatus::Cancelled { .. })) {
        println!("  (the command finished before the cancel took effect)");
    }
    shell.close().await?;
    // The simulator's own view: Signal terminate arrived, and nothing is left running.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut c = sim.counters();
    while (c.running_commands > 0 || c.open_shells > 0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        c = sim.counters();
    }
    println!("  simulator counters:");
    println!(
        "    Signal terminate received        {}",
        c.terminate_signals - before.terminate_signals
    );
    println!(
        "    ... while a Receive was pending  {}",
        c.signals_while_receive_pending - before.signals_while_receive_pending
    );
    println!(
        "    commands running now             {}",
        c.running_commands
    );
    println!("    shells open now                  {}", c.open_shells);
    Ok(())
}

fn print_chunk(t0: Instant, stream: &str, bytes: &[u8], codepage: u32) {
    let t = t0.elapsed().as_secs_f64();
    for line in text::decode(bytes, codepage)
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        println!("  [{t:5.2}s] {stream} | {line}");
    }
}

async fn wql(client: &Client) -> Result<()> {
    let query = "SELECT Name, State FROM Win32_Service WHERE StartMode = 'Auto'";
    println!("  {query}");
    let mut rows = client.wql("root/cimv2", query).start();
    let mut n = 0;
    while let Some(ev) = rows.next().await {
        match ev? {
            EnumEvent::Item(item) => {
                n += 1;
                if let (Some(inst), true) = (item.instance(), n <= 5) {
                    let name = inst.get_str("Name").unwrap_or("?");
                    println!("  {name:<24} {}", inst.get_str("State").unwrap_or("?"));
                }
            }
            EnumEvent::End(end) => println!("  ... {n} rows, then {end:?}"),
            other => println!("  {other:?}"),
        }
    }
    Ok(())
}

async fn cancel_wql(client: &Client, sim: &Simulator) -> Result<()> {
    let before = sim.counters();
    let mut items = client
        .wql("root/cimv2", "SELECT Name FROM Sim_Item")
        .max_elements(100) // batches of 100; the stream stays one batch ahead
        .start();
    let cancel = items.cancel_handle();
    let mut n = 0;
    while let Some(ev) = items.next().await {
        match ev? {
            EnumEvent::Item(_) => {
                n += 1;
                if n == 250 {
                    println!("  item 250 received: cancel_handle.cancel()");
                    cancel.cancel();
                }
            }
            EnumEvent::End(end) => println!("  {n} items delivered in all, then {end:?}"),
            other => println!("  {other:?}"),
        }
    }
    items.close().await?; // waits for the Release's answer
    let c = sim.counters();
    println!("  simulator counters:");
    println!(
        "    Release received                 {}",
        c.releases - before.releases
    );
    println!(
        "    enumeration contexts open now    {}",
        c.open_enumerations
    );
    Ok(())
}

/// The three properties the demo reads from each service object; the rest of the
/// object's properties are ignored by serde.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Service {
    name: String,
    display_name: String,
    status: String,
}

async fn pwsh_services(client: &Client) -> Result<()> {
    // A runspace pool is a WinRS shell of the PowerShell resource; it runs many
    // pipelines, each a Command and its Receives.
    let pool = client.runspace_pool().open().await?;
    println!(
        "  runspace pool opened (protocol {}), shell {}",
        pool.protocol_version(),
        pool.shell_id()
    );
    let got = pool
        .pipeline()
        .script("Get-Service | Select-Object -First 3")
        .invoke_as::<Service>()
        .await?;
    for s in &got.output {
        println!("  {:<10} {:<8} {}", s.name, s.status, s.display_name);
    }
    pool.close().await?;
    Ok(())
}

async fn pwsh_cancel(client: &Client, sim: &Simulator) -> Result<()> {
    let before = sim.counters();
    let pool = client.runspace_pool().open().await?;
    let t0 = Instant::now();
    let mut pipeline = pool
        .pipeline()
        .script("Write-Output 'first'; Write-Output 'second'; Start-Sleep -Seconds 60")
        .start()
        .await?;
    let mut outputs = 0;
    while let Some(ev) = pipeline.next().await {
        match ev? {
            PsEvent::Output(v) => {
                println!(
                    "  [{:5.2}s] output | {}",
                    t0.elapsed().as_secs_f64(),
                    v.as_str().unwrap_or("(not a string)")
                );
                outputs += 1;
                if outputs == 2 {
                    // The pipeline now sleeps on the server with a Receive pending.
                    println!(
                        "  [{:5.2}s] cancel | pipeline.cancel()",
                        t0.elapsed().as_secs_f64()
                    );
                    pipeline.cancel();
                }
            }
            PsEvent::State(end) => {
                println!("  [{:5.2}s] state  | {end:?}", t0.elapsed().as_secs_f64());
                if !matches!(end, PipelineEnd::Stopped { .. }) {
                    println!("  (the pipeline ended before the cancel took effect)");
                }
            }
            other => println!("  {other:?}"),
        }
    }
    pool.close().await?;
    let c = sim.counters();
    println!(
        "  simulator: PSRP stop signals received {}, commands running now {}",
        c.pipeline_stops - before.pipeline_stops,
        c.running_commands
    );
    Ok(())
}
