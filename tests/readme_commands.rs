//! The commands the README, the demo and the tool's help show are answered by the
//! simulator as Windows would answer them (`ipconfig /all`, `dir`, `Get-Service`, ...).

use std::time::Duration;

use tokio_winrm::{Auth, Client};
use winrm_simulator::Simulator;

async fn client(sim: &Simulator) -> Client {
    Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .build()
        .unwrap()
}

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("hung")
}

#[tokio::test]
async fn ipconfig_dir_and_get_service_are_answered() {
    let sim = Simulator::start().await.unwrap();
    let c = client(&sim).await;

    let out = within(c.run("ipconfig", &["/all"])).await.unwrap();
    assert_eq!(out.code, Some(0));
    let text = out.stdout_text();
    assert!(text.contains("Windows IP Configuration"), "{text}");
    assert!(text.contains("IPv4 Address"), "{text}");
    assert!(text.contains("Physical Address"), "/all shows more: {text}");
    let short = within(c.run("ipconfig", &[])).await.unwrap();
    assert!(!short.stdout_text().contains("Physical Address"));

    // dir lists the files the simulator knows in the working directory.
    let shell = within(
        c.shell()
            .codepage(65001)
            .working_directory("C:\\sim")
            .open(),
    )
    .await
    .unwrap();
    let out = within(shell.command("dir").start())
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(out.code, Some(0));
    assert!(
        out.stdout_text().contains("hello.txt"),
        "{}",
        out.stdout_text()
    );
    assert!(
        out.stdout_text().contains("1 File(s)"),
        "{}",
        out.stdout_text()
    );
    within(shell.close()).await.unwrap();

    let ps = within(c.run_ps("Get-Service WinRM")).await.unwrap();
    assert_eq!(ps.code, Some(0), "{}", ps.stderr_text());
    assert!(
        ps.stdout_text().contains("Running  WinRM"),
        "{}",
        ps.stdout_text()
    );
    let missing = within(c.run_ps("Get-Service NoSuchService")).await.unwrap();
    assert_ne!(missing.code, Some(0));
    assert!(
        missing
            .stderr_text()
            .contains("Cannot find any service with service name 'NoSuchService'"),
        "{}",
        missing.stderr_text()
    );
    c.shutdown().await;
    assert_eq!(sim.counters().open_shells, 0);
}
