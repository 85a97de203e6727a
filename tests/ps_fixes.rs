//! Fixes from the newcomer trial around PowerShell: `PsValue` conversions reaching a
//! cmdlet, runspace limits checked before anything is sent, `run_ps` without cmd.exe's
//! 8,191-character line limit, and Robust Connections for PowerShell pipelines.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_winrm::psrp::PsValue;
use tokio_winrm::{Auth, Client};
use winrm_simulator::{CmdletContext, Simulator};

async fn within<T>(secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test step timed out")
}

fn client_of(sim: &Simulator) -> Client {
    Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_vec_parameter_reaches_the_cmdlet_as_a_list() {
    let sim = Simulator::start().await.unwrap();
    let c = client_of(&sim);
    let seen: Arc<Mutex<Vec<Option<PsValue>>>> = Arc::default();
    let s = Arc::clone(&seen);
    sim.register_cmdlet("Take-List", move |ctx: CmdletContext| {
        let s = Arc::clone(&s);
        async move {
            let mut s = s.lock().unwrap();
            s.push(ctx.parameter("List").cloned());
            s.push(ctx.parameter("N").cloned());
            s.push(ctx.parameter("X").cloned());
            Ok(())
        }
    });
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let inv = within(
        10,
        pool.pipeline()
            .command("Take-List")
            .param("List", vec!["a", "b"])
            .param("N", 5u64)
            .param("X", 0.5f64)
            .invoke(),
    )
    .await
    .unwrap();
    assert!(inv.errors.is_empty(), "{inv:?}");
    let seen = seen.lock().unwrap().clone();
    let list = seen[0].as_ref().expect("-List reached the cmdlet");
    assert_eq!(
        list.as_list(),
        Some(&[PsValue::String("a".into()), PsValue::String("b".into())][..])
    );
    assert_eq!(seen[1], Some(PsValue::U64(5)));
    assert_eq!(seen[2], Some(PsValue::F64(0.5)));
    pool.close().await.unwrap();
}

#[tokio::test]
async fn runspace_limits_powershell_refuses_are_refused_before_anything_is_sent() {
    let sim = Simulator::start().await.unwrap();
    let c = client_of(&sim);
    for (min, max) in [(3, 1), (1, 0), (0, 2), (0, 0)] {
        let err = within(
            10,
            c.runspace_pool()
                .min_runspaces(min)
                .max_runspaces(max)
                .open(),
        )
        .await
        .expect_err("refused");
        assert!(
            matches!(&err, tokio_winrm::Error::Config(m) if m.contains("max_runspaces")),
            "({min}, {max}): {err:?}"
        );
    }
    assert_eq!(sim.counters().requests, 0, "nothing was sent");
    // Limits PowerShell accepts are kept as given.
    let pool = within(
        10,
        c.runspace_pool().min_runspaces(2).max_runspaces(3).open(),
    )
    .await
    .unwrap();
    assert_eq!(pool.max_runspaces(), 3);
    pool.close().await.unwrap();
}
