//! A shell's Create cancelled while in flight leaves nothing behind: the caller gets its
//! answer at once, the Create is finished on a cleanup task, and the shell (or the
//! runspace pool) the server created is deleted, rather than kept against the user's
//! MaxShellsPerUser quota until its IdleTimeOut. `Client::shutdown` waits for it.

use std::time::Duration;

use tokio_winrm::{Auth, CancelReason, Client, Error};
use winrm_simulator::{Injection, Operation, Simulator};

/// The simulator answers every Create after `delay`.
async fn slow_creates(delay: Duration) -> (Simulator, Client) {
    let sim = Simulator::start().await.unwrap();
    sim.inject(
        Injection::on(Operation::Create)
            .delay(delay)
            .times(u32::MAX),
    );
    let client = Client::builder(sim.endpoint())
        .auth(Auth::ntlm(sim.user(), sim.password()))
        .build()
        .unwrap();
    (sim, client)
}

/// After `shutdown()`: every shell the server created was deleted.
async fn assert_nothing_left(sim: &Simulator, client: Client, created: u64, what: &str) {
    tokio::time::timeout(Duration::from_secs(20), client.shutdown())
        .await
        .unwrap_or_else(|_| panic!("{what}: shutdown did not finish"));
    let c = sim.counters();
    assert_eq!(c.shells_created, created, "{what}: {c:?}");
    assert_eq!(c.open_shells, 0, "{what}: shells left open: {c:?}");
}

#[tokio::test]
async fn a_shell_whose_open_is_dropped_in_flight_is_deleted() {
    let (sim, client) = slow_creates(Duration::from_millis(400)).await;
    let started = std::time::Instant::now();
    let dropped = tokio::time::timeout(Duration::from_millis(100), client.shell().open()).await;
    assert!(
        dropped.is_err(),
        "the Create was answered before the timeout"
    );
    assert!(
        started.elapsed() < Duration::from_millis(350),
        "the drop waited for the Create"
    );
    assert_nothing_left(&sim, client, 1, "shell().open()").await;
}

#[tokio::test]
async fn a_run_dropped_while_its_shell_is_created_leaves_no_shell() {
    let (sim, client) = slow_creates(Duration::from_millis(400)).await;
    let dropped =
        tokio::time::timeout(Duration::from_millis(100), client.run("echo", &["x"])).await;
    assert!(dropped.is_err(), "the run finished before the timeout");
    assert_nothing_left(&sim, client, 1, "run()").await;
}

#[tokio::test]
async fn a_runspace_pool_whose_open_is_cancelled_in_flight_is_deleted() {
    let (sim, client) = slow_creates(Duration::from_millis(400)).await;
    let started = std::time::Instant::now();
    let r = client
        .runspace_pool()
        .deadline(Duration::from_millis(100))
        .open()
        .await;
    assert!(
        matches!(
            r,
            Err(Error::Cancelled {
                reason: CancelReason::Timeout
            })
        ),
        "{r:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(350),
        "the cancel waited for the Create"
    );
    assert_nothing_left(&sim, client, 1, "runspace_pool().open()").await;
}

#[tokio::test]
async fn an_open_that_completes_is_not_deleted() {
    let (sim, client) = slow_creates(Duration::ZERO).await;
    let shell = client.shell().open().await.unwrap();
    let pool = client.runspace_pool().open().await.unwrap();
    let c = sim.counters();
    assert_eq!((c.shells_created, c.open_shells), (2, 2), "{c:?}");
    shell.close().await.unwrap();
    pool.close().await.unwrap();
    assert_nothing_left(&sim, client, 2, "completed opens").await;
}
