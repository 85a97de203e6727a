//! 300 W1 commands (open a shell, `echo hello`, close) against the in-process simulator,
//! with Robust Connections on or off (`MODE=on|off`), for counting instructions, which
//! unlike wall time is repeatable on a shared machine:
//!
//! ```sh
//! cargo build --release --example robust_instructions
//! for m in on off; do MODE=$m valgrind --tool=callgrind --callgrind-out-file=cg.$m \
//!     target/release/examples/robust_instructions; done
//! ```
//! The ratio of the two "Collected" totals is the instruction cost of OperationIDs,
//! client and simulator together (BENCHMARKS.md, Robust Connections).

use tokio_winrm::{Auth, Client};
use winrm_simulator::{SimConfig, Simulator};

fn main() {
    let on = std::env::var("MODE").map_or(true, |m| m == "on");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let sim = Simulator::start_with(SimConfig {
            max_shells_per_user: 1000,
            log_requests: false,
            ..SimConfig::default()
        })
        .await
        .expect("the simulator starts");
        let c = Client::builder(sim.endpoint())
            .auth(Auth::basic(sim.user(), sim.password()))
            .allow_insecure_basic(true)
            .robust_connections(on)
            .build()
            .expect("a client");
        for _ in 0..300 {
            let out = c.run("echo", &["hello"]).await.expect("a command");
            assert_eq!(out.code, Some(0));
        }
    });
}
