//! Cancelling an enumeration at an arbitrary moment, with Pulls really in flight (no
//! artificial delay), never leaves a context open on the server.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_winrm::{Auth, Client, EnumEnd, EnumEvent};
use winrm_simulator::{SimConfig, Simulator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_a_live_pull_leaves_no_context() {
    let sim = Simulator::start_with(SimConfig {
        synthetic_count: 1_000_000,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let client = Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .build()
        .unwrap();
    let mut cancelled = 0;
    for round in 0..20u64 {
        let mut e = client
            .wql("root/cimv2", "SELECT Name FROM Sim_Item")
            .max_elements(2000)
            .start();
        // Consume a varying number of items, then cancel with the next Pull in flight.
        let take = 100 + (round * 397) % 3000;
        let mut n = 0;
        while n < take {
            match tokio::time::timeout(Duration::from_secs(20), e.next())
                .await
                .unwrap()
            {
                Some(Ok(EnumEvent::Item(_))) => n += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        e.cancel();
        let mut ends = Vec::new();
        while let Some(ev) = tokio::time::timeout(Duration::from_secs(20), e.next())
            .await
            .unwrap()
        {
            if let EnumEvent::End(end) = ev.unwrap() {
                ends.push(end);
            }
        }
        assert_eq!(ends.len(), 1);
        if matches!(ends[0], EnumEnd::Cancelled { .. }) {
            cancelled += 1;
        }
    }
    assert!(cancelled >= 15, "most rounds end cancelled: {cancelled}");
    tokio::time::timeout(Duration::from_secs(20), client.shutdown())
        .await
        .unwrap();
    // Release requests may still be in the simulator's hands for a moment.
    let start = std::time::Instant::now();
    while sim.counters().open_enumerations != 0 && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sim.counters().open_enumerations, 0, "{:?}", sim.counters());
    assert!(sim.counters().releases >= 15);
}
