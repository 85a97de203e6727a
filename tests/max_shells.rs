//! `ClientBuilder::max_shells`: a client keeps at most that many shells (WinRS shells
//! and runspace pools) open on the host, so that many operations at once wait for one
//! another instead of failing with the host's MaxShellsPerUser quota fault.

use std::time::Duration;

use tokio_winrm::{Auth, Client};
use winrm_simulator::{SimConfig, Simulator};

async fn sim(quota: usize) -> Simulator {
    Simulator::start_with(SimConfig {
        max_shells_per_user: quota,
        ping_interval: Duration::from_millis(20),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

fn client(sim: &Simulator, max_shells: Option<usize>) -> Client {
    let b = Client::builder(sim.endpoint())
        .auth(Auth::ntlm(sim.user(), sim.password()))
        .max_channels(64);
    match max_shells {
        Some(n) => b.max_shells(n),
        None => b,
    }
    .build()
    .unwrap()
}

/// Eight commands and two runspace pools at once against a host that allows a user two
/// shells.
async fn ten_at_once(c: &Client) -> (usize, usize) {
    let runs = (0..8).map(|_| {
        let c = c.clone();
        tokio::spawn(async move { c.run("ping", &["-n", "3", "localhost"]).await.map(|_| ()) })
    });
    let pools = (0..2).map(|_| {
        let c = c.clone();
        tokio::spawn(async move {
            let pool = c.runspace_pool().open().await?;
            pool.pipeline().command("Get-Date").invoke().await?;
            pool.close().await
        })
    });
    let all: Vec<_> = runs.chain(pools).collect();
    let (mut ok, mut quota) = (0, 0);
    for t in all {
        match tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .unwrap()
            .unwrap()
        {
            Ok(()) => ok += 1,
            Err(e) if e.is_quota() => quota += 1,
            Err(e) => panic!("{e}"),
        }
    }
    (ok, quota)
}

#[tokio::test]
async fn operations_beyond_the_bound_wait_instead_of_failing_with_the_quota() {
    // Without the bound, the host's quota refuses some of them ...
    let s = sim(2).await;
    let (_, quota) = ten_at_once(&client(&s, None)).await;
    assert!(quota > 0, "the host's quota was never reached");
    // ... with it, every one goes through, and nothing is left open.
    let s = sim(2).await;
    let c = client(&s, Some(2));
    assert_eq!(ten_at_once(&c).await, (10, 0));
    tokio::time::timeout(Duration::from_secs(20), c.shutdown())
        .await
        .unwrap();
    assert_eq!(s.counters().open_shells, 0);
    assert_eq!(s.counters().shells_created, 10);
}

#[tokio::test]
async fn dropped_shells_and_abandoned_waits_give_their_place_back() {
    let s = sim(30).await;
    let c = client(&s, Some(1));
    // A shell dropped without close(): its Delete runs in the background, and the next
    // open goes on once it is answered.
    let first = c.shell().open().await.unwrap();
    drop(first);
    let second = tokio::time::timeout(Duration::from_secs(10), c.shell().open())
        .await
        .expect("the dropped shell's place came back")
        .unwrap();
    // An open that waits for a place and is dropped takes nothing.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), c.shell().open())
            .await
            .is_err(),
        "a second shell opened past the bound"
    );
    second.close().await.unwrap();
    let third = tokio::time::timeout(Duration::from_secs(10), c.shell().open())
        .await
        .expect("the closed shell's place came back")
        .unwrap();
    third.close().await.unwrap();
    assert_eq!(s.counters().shells_created, 3);
    assert_eq!(s.counters().open_shells, 0);
}
