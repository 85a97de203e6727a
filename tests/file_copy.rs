//! File copy over PowerShell Remoting (`Client::copy`, `Client::fetch`) against the
//! simulator's file system: sizes around the chunk size, non-ASCII names, env-var
//! expansion, read-only targets, missing files, injected hash mismatches, directory
//! trees, UNC refusal, progress, and cancel at random points (nothing partial left on
//! either side, the previous version kept).

use std::future::IntoFuture as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tokio_winrm::{Auth, Client, Error, TransferErrorKind};
use winrm_simulator::Simulator;

async fn within<T>(secs: u64, f: impl std::future::IntoFuture<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f.into_future())
        .await
        .expect("test step timed out")
}

async fn setup() -> (Simulator, Client) {
    let sim = Simulator::start().await.unwrap();
    let client = Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    (sim, client)
}

/// A fresh local directory for one test.
fn scratch(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "tw-file-copy-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Deterministic bytes.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) as u8
        })
        .collect()
}

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Temporary names of either side left in a listing.
fn temps(names: impl IntoIterator<Item = String>) -> Vec<String> {
    names.into_iter().filter(|n| n.contains(".tw-")).collect()
}

/// `cmdlet -Path path` run in `pool`, its whole output.
async fn on_path(
    pool: &tokio_winrm::psrp::RunspacePool,
    cmdlet: &str,
    path: &str,
) -> tokio_winrm::psrp::Invocation {
    within(
        10,
        pool.pipeline().command(cmdlet).param("Path", path).invoke(),
    )
    .await
    .unwrap()
}

fn local_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn sizes_around_the_chunk_round_trip() {
    let (sim, client) = setup().await;
    let pool = within(10, client.runspace_pool().open()).await.unwrap();
    let chunk = pool.file_chunk_size();
    assert!(
        chunk > 50_000,
        "a 150 KiB envelope carries big chunks: {chunk}"
    );
    let dir = scratch("sizes");
    sim.create_dir(r"C:\In").unwrap();
    for (i, n) in [0, 1, chunk, chunk + 1, 3 * chunk - 1]
        .into_iter()
        .enumerate()
    {
        let data = bytes(n, i as u64);
        let src = dir.join(format!("f{n}.bin"));
        std::fs::write(&src, &data).unwrap();
        let remote = format!(r"C:\In\f{n}.bin");
        let up = within(30, pool.copy(&src, &remote)).await.unwrap();
        assert_eq!(up.bytes, n as u64);
        assert_eq!(up.destination, remote);
        assert_eq!(up.sha256.as_deref(), Some(sha(&data).as_str()));
        assert_eq!(sim.file(&remote).unwrap(), data, "{n} bytes arrived intact");
        let back = dir.join(format!("back{n}.bin"));
        let down = within(30, pool.fetch(&remote, &back)).await.unwrap();
        assert_eq!(down.bytes, n as u64);
        assert_eq!(
            std::fs::read(&back).unwrap(),
            data,
            "{n} bytes came back intact"
        );
    }
    assert!(temps(sim.list_files(r"C:\In")).is_empty());
    assert!(temps(local_names(&dir)).is_empty());
    within(10, pool.close()).await.unwrap();
}

#[tokio::test]
async fn client_methods_open_their_own_pool_and_report_progress() {
    let (sim, client) = setup().await;
    let dir = scratch("progress");
    let data = bytes(200_000, 7);
    let src = dir.join("p.bin");
    std::fs::write(&src, &data).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let up = within(
        30,
        client
            .copy(&src, r"C:\Windows\TEMP\p.bin")
            .chunk_size(10_000)
            .progress(move |p| s.lock().unwrap().push((p.bytes_done, p.bytes_total))),
    )
    .await
    .unwrap();
    assert_eq!(up.bytes, 200_000);
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 20, "a call per chunk: {}", seen.len());
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "monotonic");
    assert_eq!(seen.last(), Some(&(200_000, 200_000)));
    assert!(seen.iter().all(|&(_, t)| t == 200_000));
    assert_eq!(sim.file(r"c:\windows\temp\P.BIN").unwrap(), data);
    // Into an existing local directory: the remote name is kept.
    let down = within(30, client.fetch(r"C:\Windows\TEMP\p.bin", &dir)).await;
    let down = down.unwrap();
    assert!(down.destination.ends_with("p.bin"));
    // Into an existing remote directory: the local name is kept.
    within(30, client.copy(&src, r"C:\Windows")).await.unwrap();
    assert_eq!(sim.file(r"C:\Windows\p.bin").unwrap(), data);
    assert_eq!(sim.counters().open_shells, 0, "the pools were closed");
}

#[tokio::test]
async fn non_ascii_names_and_env_vars() {
    let (sim, client) = setup().await;
    let dir = scratch("names");
    let src = dir.join("Données ✓ 日本.txt");
    std::fs::write(&src, "héllo").unwrap();
    let temp = format!(r"C:\Users\{}\AppData\Local\Temp", sim.user());
    within(30, client.copy(&src, r"%TEMP%\Grüße ✓.txt"))
        .await
        .unwrap();
    assert_eq!(
        sim.file(&format!(r"{temp}\grüße ✓.txt")).unwrap(),
        "héllo".as_bytes()
    );
    let up = within(30, client.copy(&src, r"$env:TEMP\b.txt"))
        .await
        .unwrap();
    assert_eq!(up.destination, format!(r"{temp}\b.txt"));
    within(30, client.copy(&src, r"${env:temp}\"))
        .await
        .unwrap();
    assert!(sim.file(&format!(r"{temp}\Données ✓ 日本.txt")).is_some());
    // Expansion off: the name is literal (and the directory does not exist).
    let e = within(
        30,
        client.copy(&src, r"%TEMP%\c.txt").expand_variables(false),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.transfer_kind(),
        Some(TransferErrorKind::RemoteNotFound),
        "{e}"
    );
    let back = dir.join("ß.txt");
    within(
        30,
        client.fetch(r"%TEMP%\GRÜSSE ✓.txt".replace("SS", "ß").as_str(), &back),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(std::fs::read(&back).unwrap(), "héllo".as_bytes());
}

#[tokio::test]
async fn refusals_and_failures_are_typed() {
    let (sim, client) = setup().await;
    let dir = scratch("failures");
    let src = dir.join("a.txt");
    std::fs::write(&src, "new").unwrap();
    // Missing local source.
    let e = within(10, client.copy(dir.join("nope"), r"C:\x"))
        .await
        .unwrap_err();
    assert_eq!(
        e.transfer_kind(),
        Some(TransferErrorKind::LocalNotFound),
        "{e}"
    );
    // A local directory without recursive.
    let e = within(10, client.copy(&dir, r"C:\x")).await.unwrap_err();
    assert_eq!(
        e.transfer_kind(),
        Some(TransferErrorKind::LocalIsDirectory),
        "{e}"
    );
    // UNC and device paths, unless allowed.
    for p in [
        r"\\server\share\a.txt",
        r"\\?\C:\a.txt",
        r"\\.\C:\a.txt",
        "//server/share/a",
    ] {
        let e = within(10, client.copy(&src, p)).await.unwrap_err();
        assert_eq!(
            e.transfer_kind(),
            Some(TransferErrorKind::PathRefused),
            "{p}: {e}"
        );
        let e = within(10, client.fetch(p, dir.join("u")))
            .await
            .unwrap_err();
        assert_eq!(
            e.transfer_kind(),
            Some(TransferErrorKind::PathRefused),
            "{p}: {e}"
        );
    }
    let e = within(
        10,
        client.copy(&src, r"\\server\share\a.txt").allow_unc(true),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.transfer_kind(),
        Some(TransferErrorKind::RemoteNotFound),
        "{e}"
    );
    // Remote file missing, remote directory where a file was expected.
    let e = within(10, client.fetch(r"C:\missing.txt", dir.join("m")))
        .await
        .unwrap_err();
    assert_eq!(
        e.transfer_kind(),
        Some(TransferErrorKind::RemoteNotFound),
        "{e}"
    );
    let e = within(10, client.fetch(r"C:\Windows", dir.join("w")))
        .await
        .unwrap_err();
    assert_eq!(
        e.transfer_kind(),
        Some(TransferErrorKind::RemoteIsDirectory),
        "{e}"
    );
    // The target's directory is missing.
    let e = within(10, client.copy(&src, r"C:\No\Such\a.txt"))
        .await
        .unwrap_err();
    assert_eq!(
        e.transfer_kind(),
        Some(TransferErrorKind::RemoteNotFound),
        "{e}"
    );
    // A read-only target keeps its contents.
    sim.put_file(r"C:\Data\ro.txt", "old").unwrap();
    assert!(sim.set_read_only(r"C:\Data\ro.txt", true));
    let e = within(10, client.copy(&src, r"C:\Data\ro.txt"))
        .await
        .unwrap_err();
    assert_eq!(
        e.transfer_kind(),
        Some(TransferErrorKind::AccessDenied),
        "{e}"
    );
    assert_eq!(sim.file(r"C:\Data\ro.txt").unwrap(), b"old");
    assert!(sim.file_info(r"C:\Data\ro.txt").unwrap().read_only);
    // No overwrite: refused on both sides.
    sim.put_file(r"C:\Data\rw.txt", "old").unwrap();
    let e = within(10, client.copy(&src, r"C:\Data\rw.txt").overwrite(false))
        .await
        .unwrap_err();
    assert_eq!(
        e.transfer_kind(),
        Some(TransferErrorKind::AlreadyExists),
        "{e}"
    );
    assert_eq!(sim.file(r"C:\Data\rw.txt").unwrap(), b"old");
    let e = within(10, client.fetch(r"C:\Data\rw.txt", &src).overwrite(false))
        .await
        .unwrap_err();
    assert_eq!(
        e.transfer_kind(),
        Some(TransferErrorKind::AlreadyExists),
        "{e}"
    );
    assert_eq!(std::fs::read(&src).unwrap(), b"new");
    assert_eq!(temps(sim.list_files(r"C:\Data")), Vec::<String>::new());
    assert_eq!(temps(local_names(&dir)), Vec::<String>::new());
}

#[tokio::test]
async fn injected_hash_mismatch_keeps_the_previous_version() {
    let (sim, client) = setup().await;
    let dir = scratch("mismatch");
    let src = dir.join("a.bin");
    let data = bytes(100_000, 3);
    std::fs::write(&src, &data).unwrap();
    sim.put_file(r"C:\Data\a.bin", "previous").unwrap();
    sim.inject_file_corruption(1);
    let e = within(30, client.copy(&src, r"C:\Data\a.bin"))
        .await
        .unwrap_err();
    let Error::HashMismatch {
        expected, actual, ..
    } = &e
    else {
        panic!("expected a hash mismatch, got {e:?}")
    };
    assert_eq!(expected, &sha(&data));
    assert_ne!(actual, expected);
    assert_eq!(sim.file(r"C:\Data\a.bin").unwrap(), b"previous");
    assert_eq!(sim.list_files(r"C:\Data"), vec!["a.bin".to_string()]);
    // Now it goes through.
    within(30, client.copy(&src, r"C:\Data\a.bin"))
        .await
        .unwrap();
    assert_eq!(sim.file(r"C:\Data\a.bin").unwrap(), data);
    // A download with a corrupted byte leaves the local file as it was.
    let local = dir.join("b.bin");
    std::fs::write(&local, "mine").unwrap();
    sim.inject_file_corruption(1);
    let e = within(30, client.fetch(r"C:\Data\a.bin", &local))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::HashMismatch { .. }), "{e:?}");
    assert_eq!(std::fs::read(&local).unwrap(), b"mine");
    assert!(temps(local_names(&dir)).is_empty());
}

#[tokio::test]
async fn directory_trees_round_trip_with_empty_directories() {
    let (sim, client) = setup().await;
    let dir = scratch("tree");
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("a/b/c")).unwrap();
    std::fs::create_dir_all(src.join("empty")).unwrap();
    std::fs::create_dir_all(src.join("a/empty too")).unwrap();
    std::fs::write(src.join("top.txt"), "top").unwrap();
    std::fs::write(src.join("a/one.bin"), bytes(70_000, 1)).unwrap();
    std::fs::write(src.join("a/b/c/deep ✓.txt"), "deep").unwrap();
    std::fs::write(src.join("a/b/zero"), "").unwrap();
    let up = within(60, client.copy(&src, r"C:\Tree").recursive(true))
        .await
        .unwrap();
    assert_eq!(up.files, 4);
    assert_eq!(up.bytes, 3 + 70_000 + 4);
    assert_eq!(up.destination, r"C:\Tree");
    let mut listed = sim.list_files(r"C:\Tree");
    listed.sort();
    let mut want: Vec<String> = [
        "a",
        r"a\b",
        r"a\b\c",
        r"a\b\c\deep ✓.txt",
        r"a\b\zero",
        r"a\empty too",
        r"a\one.bin",
        "empty",
        "top.txt",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    want.sort();
    assert_eq!(listed, want);
    assert_eq!(sim.file(r"C:\Tree\a\b\c\deep ✓.txt").unwrap(), b"deep");
    let back = dir.join("back");
    let down = within(60, client.fetch(r"C:\Tree", &back).recursive(true))
        .await
        .unwrap();
    assert_eq!(down.files, 4);
    assert!(back.join("empty").is_dir());
    assert!(back.join("a/empty too").is_dir());
    assert_eq!(
        std::fs::read(back.join("a/one.bin")).unwrap(),
        bytes(70_000, 1)
    );
    assert_eq!(
        std::fs::read(back.join("a/b/c/deep ✓.txt")).unwrap(),
        b"deep"
    );
    assert_eq!(std::fs::read(back.join("a/b/zero")).unwrap(), b"");
    // A recursive fetch of a file is a fetch of that file.
    let one = dir.join("one.bin");
    within(30, client.fetch(r"C:\Tree\a\one.bin", &one).recursive(true))
        .await
        .unwrap();
    assert_eq!(std::fs::read(&one).unwrap(), bytes(70_000, 1));
    // Missing remote tree.
    let e = within(
        30,
        client.fetch(r"C:\NoTree", dir.join("x")).recursive(true),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.transfer_kind(),
        Some(TransferErrorKind::RemoteNotFound),
        "{e}"
    );
}

#[tokio::test]
async fn cancel_at_random_points_leaves_nothing_partial() {
    let (sim, client) = setup().await;
    let pool = within(10, client.runspace_pool().max_runspaces(2).open())
        .await
        .unwrap();
    let dir = scratch("cancel");
    let data = bytes(600_000, 9);
    let src = dir.join("big.bin");
    std::fs::write(&src, &data).unwrap();
    sim.put_file(r"C:\Data\big.bin", "previous version")
        .unwrap();
    sim.put_file(r"C:\Data\remote.bin", &data).unwrap();
    let local = dir.join("local.bin");
    let mut cancelled = (0, 0);
    // Thresholds spread over the file (and one before anything is sent).
    for (i, at) in [0u64, 1, 30_000, 123_457, 300_000, 480_000, 599_999]
        .into_iter()
        .enumerate()
    {
        // Upload over an existing file.
        let token = CancellationToken::new();
        let t = token.clone();
        let r = within(
            30,
            pool.copy(&src, r"C:\Data\big.bin")
                .chunk_size(8_192)
                .cancellation(token)
                .progress(move |p| {
                    if p.bytes_done >= at {
                        t.cancel();
                    }
                }),
        )
        .await;
        let now = sim.file(r"C:\Data\big.bin").unwrap();
        match r {
            Err(e) if e.is_cancelled() => {
                cancelled.0 += 1;
                assert_eq!(now, b"previous version", "#{i}: the previous version stays");
            }
            Ok(_) => assert_eq!(now, data, "#{i}: a finished copy is whole"),
            Err(e) => panic!("#{i}: {e}"),
        }
        assert_eq!(
            temps(sim.list_files(r"C:\Data")),
            Vec::<String>::new(),
            "#{i}"
        );
        // Download over an existing local file.
        std::fs::write(&local, "mine").unwrap();
        let token = CancellationToken::new();
        let t = token.clone();
        let r = within(
            30,
            pool.fetch(r"C:\Data\remote.bin", &local)
                .chunk_size(8_192)
                .cancellation(token)
                .progress(move |p| {
                    if p.bytes_done >= at {
                        t.cancel();
                    }
                }),
        )
        .await;
        let now = std::fs::read(&local).unwrap();
        match r {
            Err(e) if e.is_cancelled() => {
                cancelled.1 += 1;
                assert_eq!(now, b"mine", "#{i}: the local file stays");
            }
            Ok(_) => assert_eq!(now, data, "#{i}: a finished fetch is whole"),
            Err(e) => panic!("#{i}: {e}"),
        }
        assert_eq!(temps(local_names(&dir)), Vec::<String>::new(), "#{i}");
        // A cancel from a timer, at a time instead of a byte count.
        let token = CancellationToken::new();
        let t = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(3 * i as u64)).await;
            t.cancel();
        });
        let r = within(
            30,
            pool.copy(&src, r"C:\Data\timed.bin")
                .chunk_size(8_192)
                .cancellation(token),
        )
        .await;
        match (r, sim.file(r"C:\Data\timed.bin")) {
            (Err(e), _) if !e.is_cancelled() => panic!("#{i}: {e}"),
            (_, Some(now)) => assert_eq!(now, data, "#{i}: whole or absent"),
            (_, None) => {}
        }
        assert_eq!(
            temps(sim.list_files(r"C:\Data")),
            Vec::<String>::new(),
            "#{i}"
        );
    }
    assert!(
        cancelled.0 >= 5 && cancelled.1 >= 5,
        "most were cancelled: {cancelled:?}"
    );
    // The pool is still usable.
    within(30, pool.copy(&src, r"C:\Data\big.bin"))
        .await
        .unwrap();
    assert_eq!(sim.file(r"C:\Data\big.bin").unwrap(), data);
    within(10, pool.close()).await.unwrap();
}

#[tokio::test]
async fn fetch_into_a_missing_local_directory_names_that_directory() {
    let (sim, client) = setup().await;
    sim.put_file(r"C:\data\a.txt", b"a").unwrap();
    let dir = scratch("missing-dest");
    let missing = dir.join("no-such-dir");
    let e = within(10, client.fetch(r"C:\data\a.txt", missing.join("a.txt")))
        .await
        .unwrap_err();
    assert_eq!(
        e.transfer_kind(),
        Some(TransferErrorKind::LocalNotFound),
        "{e}"
    );
    // The error names the directory the user gave, not the temporary file.
    match &e {
        Error::Transfer { path, .. } => assert_eq!(path, &missing.display().to_string()),
        other => panic!("not a transfer error: {other:?}"),
    }
    assert!(!e.to_string().contains(".tw-"), "{e}");
    assert!(!missing.exists());
    client.shutdown().await;
    assert_eq!(sim.counters().open_shells, 0);
}

#[tokio::test]
async fn the_files_type_shows_on_every_host_can_be_fetched() {
    let (sim, client) = setup().await;
    let hosts = r"C:\Windows\System32\drivers\etc\hosts";
    let typed = within(10, client.run("type", &[hosts])).await.unwrap();
    assert_eq!(typed.code, Some(0));
    assert_eq!(sim.file(hosts).as_deref(), Some(&typed.stdout[..]));
    let dir = scratch("builtin");
    let got = within(10, client.fetch(hosts, dir.join("hosts")))
        .await
        .unwrap();
    assert_eq!(got.bytes, typed.stdout.len() as u64);
    assert_eq!(std::fs::read(dir.join("hosts")).unwrap(), typed.stdout);
    client.shutdown().await;
}

/// Dropping an upload's future (instead of cancelling it with the token) at points
/// spread over the transfer: once the client's cleanup tasks have run, the host has no
/// temporary file and the target is its previous version or the whole new file, on a
/// caller's pool and on a pool `Client::copy` opened for itself.
#[tokio::test]
async fn dropping_an_upload_cleans_up_the_host() {
    let (sim, client) = setup().await;
    let pool = within(10, client.runspace_pool().max_runspaces(2).open())
        .await
        .unwrap();
    let dir = scratch("drop");
    let data = bytes(600_000, 11);
    let src = dir.join("big.bin");
    std::fs::write(&src, &data).unwrap();
    sim.put_file(r"C:\Data\big.bin", "previous version")
        .unwrap();
    let check = |i: &str| {
        assert_eq!(
            temps(sim.list_files(r"C:\Data")),
            Vec::<String>::new(),
            "{i}: no temporary file left"
        );
        let now = sim.file(r"C:\Data\big.bin").unwrap();
        assert!(
            now == b"previous version" || now == data,
            "{i}: previous version or whole ({} bytes)",
            now.len()
        );
        now == data
    };
    let mut dropped = 0;
    // At a byte count: the progress callback wakes a `select!` that drops the copy.
    for at in [0u64, 1, 30_000, 123_457, 300_000, 480_000, 599_999] {
        let reached = Arc::new(tokio::sync::Notify::new());
        let r = Arc::clone(&reached);
        let copy = pool
            .copy(&src, r"C:\Data\big.bin")
            .chunk_size(8_192)
            .progress(move |p| {
                if p.bytes_done >= at {
                    r.notify_one();
                }
            });
        let finished = within(30, async {
            tokio::select! {
                r = copy => { r.unwrap(); true }
                () = reached.notified() => false,
            }
        })
        .await;
        dropped += usize::from(!finished);
        within(30, client.shutdown()).await;
        let whole = check(&format!("at {at} bytes"));
        assert!(
            finished || !whole || at >= 599_999,
            "at {at}: dropped mid-way"
        );
        sim.put_file(r"C:\Data\big.bin", "previous version")
            .unwrap();
    }
    // At a time, on the caller's pool and on a pool of the copy's own (`Client::copy`),
    // over an existing target and to a new one.
    for ms in [0u64, 1, 2, 5, 10, 20, 40] {
        for own_pool in [false, true] {
            let copy = if own_pool {
                client.copy(&src, r"C:\Data\big.bin")
            } else {
                pool.copy(&src, r"C:\Data\big.bin")
            };
            let r = tokio::time::timeout(
                Duration::from_millis(ms),
                copy.chunk_size(8_192).into_future(),
            )
            .await;
            match r {
                Ok(r) => {
                    r.unwrap();
                }
                Err(_) => dropped += 1,
            }
            within(30, client.shutdown()).await;
            check(&format!("after {ms} ms, own pool {own_pool}"));
            sim.put_file(r"C:\Data\big.bin", "previous version")
                .unwrap();
        }
        let new = format!(r"C:\Data\new-{ms}.bin");
        let r = tokio::time::timeout(
            Duration::from_millis(ms),
            pool.copy(&src, &new).chunk_size(8_192).into_future(),
        )
        .await;
        if r.is_err() {
            dropped += 1;
        }
        within(30, client.shutdown()).await;
        assert_eq!(
            temps(sim.list_files(r"C:\Data")),
            Vec::<String>::new(),
            "new file after {ms} ms"
        );
        if let Some(now) = sim.file(&new) {
            assert_eq!(now, data, "new file after {ms} ms: whole or absent");
        }
    }
    assert!(dropped >= 15, "most copies were dropped mid-way: {dropped}");
    // The pool is still usable.
    within(30, pool.copy(&src, r"C:\Data\big.bin"))
        .await
        .unwrap();
    assert_eq!(sim.file(r"C:\Data\big.bin").unwrap(), data);
    within(10, pool.close()).await.unwrap();
}

/// The simulated host has one file system: a file the client copied is what `type`,
/// `dir` (WinRS) and `Get-Content`, `Get-Item`, `Get-ChildItem`, `Test-Path` (PSRP)
/// read, and a file put with `Simulator::register_file` can be fetched.
#[tokio::test]
async fn copied_files_are_read_by_commands_and_registered_files_fetched() {
    let (sim, client) = setup().await;
    let dir = scratch("one-store");
    let src = dir.join("notes.txt");
    std::fs::write(&src, b"first line\r\nsecond line\r\n").unwrap();
    sim.create_dir(r"C:\Data").unwrap();
    within(30, client.copy(&src, r"C:\Data\notes.txt"))
        .await
        .unwrap();

    let typed = within(10, client.run("type", &[r"C:\Data\notes.txt"]))
        .await
        .unwrap();
    assert_eq!(
        typed.code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&typed.stderr)
    );
    assert_eq!(typed.stdout, b"first line\r\nsecond line\r\n");
    let listed = within(10, client.run("cd /d C:\\Data && dir", &[]))
        .await
        .unwrap();
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(listing.contains("notes.txt"), "{listing}");

    let pool = within(10, client.runspace_pool().open()).await.unwrap();
    let lines = on_path(&pool, "Get-Content", r"c:\data\NOTES.txt").await;
    let lines: Vec<&str> = lines.output.iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(lines, ["first line", "second line"]);
    let item = on_path(&pool, "Get-Item", r"C:\Data\notes.txt").await;
    assert!(item.errors.is_empty(), "{:?}", item.errors);
    assert_eq!(
        item.output[0].property("Length").and_then(|v| v.as_i64()),
        Some(25)
    );
    let children = on_path(&pool, "Get-ChildItem", r"C:\Data").await;
    let names: Vec<&str> = children
        .output
        .iter()
        .filter_map(|o| o.property("Name").and_then(|v| v.as_str()))
        .collect();
    assert_eq!(names, ["notes.txt"]);
    let tested = within(
        10,
        pool.pipeline()
            .command("Test-Path")
            .param("Path", r"C:\Data\notes.txt")
            .statement()
            .command("Test-Path")
            .param("Path", r"C:\Data\missing.txt")
            .invoke(),
    )
    .await
    .unwrap();
    let tested: Vec<Option<bool>> = tested.output.iter().map(|v| v.as_bool()).collect();
    assert_eq!(tested, [Some(true), Some(false)]);
    within(10, pool.close()).await.unwrap();

    // The other way: a registered file is fetched and seen by `Simulator::file`.
    sim.register_file(r"C:\Reports\daily.csv", "a,b\r\n1,2\r\n");
    assert_eq!(
        sim.file(r"c:\reports\DAILY.csv").as_deref(),
        Some(&b"a,b\r\n1,2\r\n"[..])
    );
    let got = within(
        10,
        client.fetch(r"C:\Reports\daily.csv", dir.join("daily.csv")),
    )
    .await
    .unwrap();
    assert_eq!(got.bytes, 10);
    assert_eq!(
        std::fs::read(dir.join("daily.csv")).unwrap(),
        b"a,b\r\n1,2\r\n"
    );
    client.shutdown().await;
}

/// Directories of the simulator's file store are seen as Windows shows them: `dir PATH`
/// lists that directory (sub-directories as `<DIR>`, not the current one), `dir FILE`
/// that file, `Get-Item` gives a directory's `DirectoryInfo` and `Get-ChildItem` lists
/// sub-directories before files.
#[tokio::test]
async fn directories_are_listed_by_dir_get_item_and_get_child_item() {
    let (sim, client) = setup().await;
    sim.create_dir(r"C:\Data").unwrap();
    sim.create_dir(r"C:\Data\logs").unwrap();
    sim.put_file(r"C:\Data\notes.txt", "abc").unwrap();

    let listed = within(10, client.run("dir", &[r"C:\Data"])).await.unwrap();
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(listed.code, Some(0), "{listing}");
    assert!(listing.contains(r"Directory of C:\Data"), "{listing}");
    let logs = listing
        .find("<DIR>          logs")
        .expect("the sub-directory");
    let notes = listing
        .find(" 3 notes.txt")
        .expect("the file and its length");
    assert!(logs < notes, "directories first: {listing}");
    assert!(
        listing.contains("1 File(s)") && listing.contains("1 Dir(s)"),
        "{listing}"
    );
    let one = within(10, client.run("dir", &[r"C:\Data\notes.txt"]))
        .await
        .unwrap();
    let one = String::from_utf8_lossy(&one.stdout);
    assert!(one.contains("notes.txt") && !one.contains("logs"), "{one}");
    let missing = within(10, client.run("dir", &[r"C:\Data\nothing"]))
        .await
        .unwrap();
    assert_eq!(missing.code, Some(1));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        "File Not Found\r\n"
    );

    let pool = within(10, client.runspace_pool().open()).await.unwrap();
    let item = on_path(&pool, "Get-Item", r"C:\Data\logs").await;
    assert!(item.errors.is_empty(), "{:?}", item.errors);
    let o = item.output[0].as_object().expect("an object");
    assert_eq!(o.type_names[0], "System.IO.DirectoryInfo");
    assert_eq!(
        item.output[0]
            .property("PSIsContainer")
            .and_then(|v| v.as_bool()),
        Some(true)
    );
    assert_eq!(
        item.output[0].property("FullName").and_then(|v| v.as_str()),
        Some(r"C:\Data\logs")
    );
    let children = on_path(&pool, "Get-ChildItem", r"C:\Data").await;
    let listed: Vec<(&str, Option<bool>)> = children
        .output
        .iter()
        .map(|o| {
            (
                o.property("Name").and_then(|v| v.as_str()).unwrap_or(""),
                o.property("PSIsContainer").and_then(|v| v.as_bool()),
            )
        })
        .collect();
    assert_eq!(listed, [("logs", Some(true)), ("notes.txt", Some(false))]);
    within(10, pool.close()).await.unwrap();
    client.shutdown().await;
}

/// `.deadline(d)` on a copy and a fetch: past it the transfer ends as a cancel does,
/// with [`CancelReason::Timeout`], the previous versions kept and nothing partial on
/// either side; a deadline that does not pass changes nothing.
#[tokio::test]
async fn a_transfer_past_its_deadline_ends_as_a_timeout_with_nothing_partial() {
    use tokio_winrm::CancelReason;
    let (sim, client) = setup().await;
    let dir = scratch("deadline");
    let data = bytes(4_000_000, 7);
    let src = dir.join("big.bin");
    std::fs::write(&src, &data).unwrap();
    sim.put_file(r"C:\Data\big.bin", "previous version")
        .unwrap();
    sim.put_file(r"C:\Data\remote.bin", &data).unwrap();
    let timeout = |r: Result<_, Error>| {
        matches!(
            r,
            Err(Error::Cancelled {
                reason: CancelReason::Timeout
            })
        )
    };
    // The third Send of the upload is held 2 s: the deadline passes mid-way.
    sim.inject(
        winrm_simulator::Injection::on(winrm_simulator::Operation::Send)
            .delay(Duration::from_secs(2))
            .after(2),
    );
    let r = within(
        30,
        client
            .copy(&src, r"C:\Data\big.bin")
            .chunk_size(4_096)
            .deadline(Duration::from_millis(150)),
    )
    .await;
    sim.clear_injections();
    assert!(timeout(r.map(|_| ())), "copy past its deadline");
    assert_eq!(sim.file(r"C:\Data\big.bin").unwrap(), b"previous version");
    let local = dir.join("local.bin");
    std::fs::write(&local, "mine").unwrap();
    // The third Receive of the fetch is held 2 s, so that the deadline passes mid-way
    // whatever the machine's speed (4 MB can arrive in under 150 ms).
    sim.inject(
        winrm_simulator::Injection::on(winrm_simulator::Operation::Receive)
            .delay(Duration::from_secs(2))
            .after(2),
    );
    let r = within(
        30,
        client
            .fetch(r"C:\Data\remote.bin", &local)
            .chunk_size(4_096)
            .deadline(Duration::from_millis(150)),
    )
    .await;
    sim.clear_injections();
    assert!(timeout(r.map(|_| ())), "fetch past its deadline");
    assert_eq!(std::fs::read(&local).unwrap(), b"mine");
    within(20, client.shutdown()).await;
    assert_eq!(temps(sim.list_files(r"C:\Data")), Vec::<String>::new());
    assert_eq!(temps(local_names(&dir)), Vec::<String>::new());
    assert_eq!(sim.counters().open_shells, 0);

    // A deadline that does not pass.
    let (sim, client) = setup().await;
    sim.put_file(r"C:\Data\big.bin", "previous version")
        .unwrap();
    within(
        30,
        client
            .copy(&src, r"C:\Data\big.bin")
            .deadline(Duration::from_secs(60)),
    )
    .await
    .unwrap();
    assert_eq!(sim.file(r"C:\Data\big.bin").unwrap(), data);
}

/// Cancelling the whole client (`cancel_all`, a service shutting down) stops an upload
/// as its own token does: the temporary file is removed on the host before
/// `cancel_all` returns, and the previous version stays. The same through the client's
/// own token (`ClientBuilder::cancellation`) and through a dropped client.
#[tokio::test]
async fn cancelling_the_client_leaves_no_temporary_file() {
    let dir = scratch("cancel-all");
    let data = bytes(400_000, 21);
    let src = dir.join("big.bin");
    std::fs::write(&src, &data).unwrap();
    for how in ["cancel_all", "client token"] {
        let sim = Simulator::start().await.unwrap();
        let token = CancellationToken::new();
        let client = Client::builder(sim.endpoint())
            .auth(Auth::basic(sim.user(), sim.password()))
            .allow_insecure_basic(true)
            .operation_timeout(Duration::from_secs(5))
            .cancellation(token.clone())
            .build()
            .unwrap();
        sim.put_file(r"C:\Data\big.bin", "previous version")
            .unwrap();
        let started = Arc::new(tokio::sync::Notify::new());
        let s = Arc::clone(&started);
        let copy = {
            let client = client.clone();
            let src = src.clone();
            tokio::spawn(async move {
                client
                    .copy(&src, r"C:\Data\big.bin")
                    .chunk_size(1_000)
                    .progress(move |p| {
                        if p.bytes_done >= 20_000 {
                            s.notify_one();
                        }
                    })
                    .await
            })
        };
        within(30, started.notified()).await;
        match how {
            "cancel_all" => within(60, client.cancel_all()).await,
            _ => {
                token.cancel();
                within(60, client.shutdown()).await;
            }
        }
        let r = within(30, copy).await.unwrap();
        assert!(r.as_ref().is_err_and(Error::is_cancelled), "{how}: {r:?}");
        assert_eq!(
            temps(sim.list_files(r"C:\Data")),
            Vec::<String>::new(),
            "{how}: the temporary file is removed"
        );
        assert_eq!(
            sim.file(r"C:\Data\big.bin").unwrap(),
            b"previous version",
            "{how}"
        );
    }
}

/// Raising `max_envelope_size` (for large WMI results) does not make uploads too large
/// for a host with Windows' default `MaxEnvelopeSizekb` of 500 KB: the request
/// fragments stay within it, and a copy and a fetch of 1.5 MB succeed.
#[tokio::test]
async fn a_large_max_envelope_size_does_not_break_uploads() {
    let dir = scratch("big-envelope");
    let data = bytes(1_500_000, 33);
    let src = dir.join("big.bin");
    std::fs::write(&src, &data).unwrap();
    for size in [1_000_000u32, 4_000_000] {
        let sim = Simulator::start().await.unwrap();
        let client = Client::builder(sim.endpoint())
            .auth(Auth::basic(sim.user(), sim.password()))
            .allow_insecure_basic(true)
            .operation_timeout(Duration::from_secs(5))
            .max_envelope_size(size)
            .max_response_bytes(16 << 20)
            .build()
            .unwrap();
        sim.put_file(r"C:\Temp\other.txt", "x").unwrap();
        within(60, client.copy(&src, r"C:\Temp\big.bin"))
            .await
            .unwrap_or_else(|e| panic!("copy with max_envelope_size {size}: {e}"));
        assert_eq!(sim.file(r"C:\Temp\big.bin").unwrap(), data, "{size}");
        let back = dir.join(format!("back-{size}.bin"));
        within(60, client.fetch(r"C:\Temp\big.bin", &back))
            .await
            .unwrap_or_else(|e| panic!("fetch with max_envelope_size {size}: {e}"));
        assert_eq!(std::fs::read(&back).unwrap(), data, "{size}");
    }
}

/// Remote paths as the scripts resolve them on Windows: `X\` names a directory (an
/// upload into a missing one fails, never making a file `X`; into an existing one the
/// file keeps its name), a file path with a trailing separator is no file, `C:` alone is
/// the session's current directory (Documents), and an empty path is refused before
/// anything is sent.
#[tokio::test]
async fn remote_paths_resolve_as_on_windows() {
    let (sim, client) = setup().await;
    let dir = scratch("paths");
    let src = dir.join("local.txt");
    std::fs::write(&src, "payload").unwrap();
    sim.put_file(r"C:\Data\a.bin", "A").unwrap();

    let e = within(30, client.copy(&src, r"C:\Data\new\"))
        .await
        .unwrap_err();
    assert_eq!(
        e.transfer_kind(),
        Some(TransferErrorKind::RemoteNotFound),
        "{e}"
    );
    assert!(
        sim.file(r"C:\Data\new").is_none(),
        "no file made of a directory name"
    );
    assert!(temps(sim.list_files(r"C:\Data")).is_empty());

    within(30, client.copy(&src, r"C:\Data\")).await.unwrap();
    assert_eq!(sim.file(r"C:\Data\local.txt").unwrap(), b"payload");

    within(30, client.copy(&src, "C:")).await.unwrap();
    assert_eq!(
        sim.file(r"C:\Users\vagrant\Documents\local.txt").unwrap(),
        b"payload"
    );
    assert!(sim.file(r"C:\local.txt").is_none());

    let e = within(30, client.fetch(r"C:\Data\a.bin\", dir.join("a.bin")))
        .await
        .unwrap_err();
    assert_eq!(
        e.transfer_kind(),
        Some(TransferErrorKind::RemoteNotFound),
        "{e}"
    );

    let requests = sim.counters().requests;
    for blank in ["", "  "] {
        let e = within(30, client.copy(&src, blank)).await.unwrap_err();
        assert_eq!(
            e.transfer_kind(),
            Some(TransferErrorKind::PathRefused),
            "{e}"
        );
        let e = within(30, client.fetch(blank, dir.join("x")))
            .await
            .unwrap_err();
        assert_eq!(
            e.transfer_kind(),
            Some(TransferErrorKind::PathRefused),
            "{e}"
        );
    }
    assert_eq!(
        sim.counters().requests,
        requests,
        "nothing sent for a blank path"
    );
}
