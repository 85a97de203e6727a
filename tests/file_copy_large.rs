//! A 100 MiB file up and down through the simulator (its files kept in a directory),
//! streamed: the peak RSS of this test process (client and simulator together,
//! `VmHWM`) is reported and must stay under 64 MiB. Its own test binary, one test, so
//! that nothing else inflates the peak.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio_winrm::{Auth, Client};
use winrm_simulator::Simulator;

const SIZE: u64 = 100 << 20;

/// The process's peak resident set (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn hash_file(path: &std::path::Path) -> String {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_mib_up_and_down_in_bounded_memory() {
    let dir = std::env::temp_dir().join(format!("tw-file-copy-large-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The source, written in 1 MiB pieces.
    let src = dir.join("big.bin");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
        let mut x: u64 = 42;
        let mut piece = vec![0u8; 1 << 20];
        for _ in 0..(SIZE >> 20) {
            for b in piece.iter_mut() {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                *b = (x >> 33) as u8;
            }
            f.write_all(&piece).unwrap();
        }
        drop(piece);
    }
    let want = hash_file(&src);
    let sim = Simulator::start().await.unwrap();
    sim.back_files_with(dir.join("sim")).unwrap();
    let client = Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let before = peak_rss_kib();
    let t = Instant::now();
    let up = client.copy(&src, r"C:\Windows\TEMP\big.bin").await.unwrap();
    let up_time = t.elapsed();
    assert_eq!(up.bytes, SIZE);
    let info = sim.file_info(r"C:\Windows\TEMP\big.bin").unwrap();
    assert_eq!((info.len, info.sha256.as_str()), (SIZE, want.as_str()));
    let back = dir.join("back.bin");
    let t = Instant::now();
    let down = client
        .fetch(r"C:\Windows\TEMP\big.bin", &back)
        .await
        .unwrap();
    let down_time = t.elapsed();
    assert_eq!(down.bytes, SIZE);
    assert_eq!(hash_file(&back), want);
    let peak = peak_rss_kib();
    println!(
        "100 MiB: up {:.1} MB/s, down {:.1} MB/s; peak RSS {} KiB (before the transfers {} KiB)",
        SIZE as f64 / up_time.as_secs_f64() / 1e6,
        SIZE as f64 / down_time.as_secs_f64() / 1e6,
        peak,
        before
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(peak > 0, "VmHWM is readable on Linux");
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB is over 64 MiB");
}
