//! The README's simulator example, kept compiling and true: a registered custom command
//! run through the client, with nothing left open on the simulator.
#![cfg(feature = "sim")]

use std::time::Duration;

use tokio_winrm::sim::{CommandContext, SimConfig, Simulator};
use tokio_winrm::{Auth, Client};

#[tokio::test]
async fn readme_custom_command() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let sim = Simulator::start_with(SimConfig::default()).await.unwrap(); // 127.0.0.1:0
        sim.register_command("deploy", |ctx: CommandContext| async move {
            ctx.print(&format!("deploying {}\r\n", ctx.args.join(" ")))
                .await;
            0 // the exit code
        });
        let client = Client::builder(sim.endpoint())
            .auth(Auth::basic(sim.user(), sim.password()))
            .allow_insecure_basic(true) // plain HTTP on loopback
            .build()
            .unwrap();
        let out = client.run("deploy", &["v2"]).await.unwrap();
        assert_eq!(out.stdout_text(), "deploying v2\r\n");
        assert_eq!(out.code, Some(0));
        client.shutdown().await;
        // The simulator ends a terminated command's task asynchronously.
        let mut c = sim.counters();
        for _ in 0..200 {
            if c.open_shells == 0 && c.running_commands == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            c = sim.counters();
        }
        assert_eq!((c.open_shells, c.running_commands), (0, 0), "{c:?}");
    })
    .await
    .expect("the README example hangs");
}

/// The README's API tour, compiled (not run: it needs a Windows host).
#[allow(dead_code, unused_variables)]
async fn readme_api_tour(password: String) -> tokio_winrm::Result<()> {
    use futures_util::StreamExt;
    use tokio_winrm::{CommandEvent, EnumEvent, ExitStatus, Instance, Resource};

    let (mut out, mut err) = (Vec::new(), Vec::new());
    let client = Client::builder("https://host:5986/wsman")
        .auth(Auth::basic("DOMAIN\\user", password))
        .operation_timeout(Duration::from_secs(20))
        .build()?;

    let winrm = client
        .get(&Resource::new("wmicimv2/Win32_Service").selector("Name", "WinRM"))
        .await?;
    println!("{:?}", winrm.get_str("State"));
    let created = client
        .invoke(
            &Resource::new("wmicimv2/Win32_Process"),
            "Create",
            &Instance::new("Create_INPUT").with("CommandLine", "notepad.exe"),
        )
        .deadline(Duration::from_secs(30))
        .await?;

    let shell = client.shell().codepage(65001).open().await?;
    let mut cmd = shell.command("ipconfig").arg("/all").start().await?;
    let cancel = cmd.cancel_handle();
    while let Some(event) = cmd.next().await {
        match event? {
            CommandEvent::Stdout(bytes) => out.extend_from_slice(&bytes),
            CommandEvent::Stderr(bytes) => err.extend_from_slice(&bytes),
            CommandEvent::Exit(ExitStatus::Exited(code)) => println!("exit {code}"),
            CommandEvent::Exit(ExitStatus::ExitedWithoutCode) => {
                println!("done, exit code unknown")
            }
            CommandEvent::Exit(ExitStatus::Cancelled { reason }) => println!("cancelled: {reason}"),
        }
    }
    shell.close().await?;

    let out = client.run("ipconfig", &["/all"]).await?;
    let ps = client.run_ps("Get-Service WinRM").await?;
    println!("{}", ps.stderr_text());

    let mut services = client
        .wql("root/cimv2", "SELECT Name, State FROM Win32_Service")
        .start();
    while let Some(event) = services.next().await {
        match event? {
            EnumEvent::Item(item) => {
                println!("{:?}", item.instance().and_then(|i| i.get_str("Name")))
            }
            EnumEvent::End(end) => println!("{end:?}"),
        }
    }

    client.shutdown().await;
    Ok(())
}
