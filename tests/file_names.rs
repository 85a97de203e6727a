//! File copy and Windows' names (a newcomer trial's findings): a recursive copy refuses,
//! before anything is sent, local names that are one name on Windows (they differ only
//! in case) and names Windows cannot hold; a single file's name taken on the host is
//! checked the same way, and so are the names of a remote path the caller gives (on
//! the client, and on the host after expansion); a download checks its local
//! destination before any data moves; the simulator's file store refuses the names
//! Windows refuses and compares names as NTFS does.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
        "tw-file-names-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The path and message of a transfer error of `kind`.
fn transfer_error(e: &Error, kind: TransferErrorKind) -> (String, String) {
    match e {
        Error::Transfer {
            kind: k,
            path,
            message,
        } if *k == kind => (path.clone(), message.clone()),
        other => panic!("not a {kind:?} transfer error: {other:?}"),
    }
}

#[tokio::test]
async fn a_recursive_copy_refuses_names_that_differ_only_in_case() {
    let (sim, client) = setup().await;
    // At the top: two files.
    let top = scratch("case-top").join("tree");
    std::fs::create_dir_all(top.join("sub")).unwrap();
    std::fs::write(top.join("README"), "upper").unwrap();
    std::fs::write(top.join("readme"), "lower").unwrap();
    std::fs::write(top.join("sub").join("x"), "x").unwrap();
    // Deeper: a directory and a file, non-ASCII (simple uppercase: `É` is `é`'s).
    let deep = scratch("case-deep").join("tree");
    std::fs::create_dir_all(deep.join("a").join("b").join("Été")).unwrap();
    std::fs::write(deep.join("a").join("b").join("été"), "file").unwrap();
    std::fs::write(deep.join("ok.txt"), "ok").unwrap();

    let requests = sim.counters().requests;
    for (tree, first, second) in [
        (&top, top.join("README"), top.join("readme")),
        (
            &deep,
            deep.join("a").join("b").join("Été"),
            deep.join("a").join("b").join("été"),
        ),
    ] {
        let e = within(30, client.copy(tree, r"C:\Data\tree").recursive(true))
            .await
            .unwrap_err();
        let (path, message) = transfer_error(&e, TransferErrorKind::NameCollision);
        assert_eq!(path, first.display().to_string(), "{e}");
        assert!(
            message.contains(&second.display().to_string()),
            "both paths named: {e}"
        );
        assert!(message.contains("case"), "{e}");
    }
    assert_eq!(
        sim.counters().requests,
        requests,
        "nothing sent for a refused tree"
    );
    assert!(!sim.is_dir(r"C:\Data\tree"));

    // The simple mapping keeps `ß` and `SS` apart, as NTFS does: two files.
    let two = scratch("case-two").join("tree");
    std::fs::create_dir_all(&two).unwrap();
    std::fs::write(two.join("straße"), "sharp").unwrap();
    std::fs::write(two.join("STRASSE"), "double").unwrap();
    let done = within(30, client.copy(&two, r"C:\Data\two").recursive(true))
        .await
        .unwrap();
    assert_eq!(done.files, 2);
    assert_eq!(sim.file(r"C:\Data\two\straße").unwrap(), b"sharp");
    assert_eq!(sim.file(r"C:\Data\two\STRASSE").unwrap(), b"double");
    client.shutdown().await;
}

#[tokio::test]
async fn a_recursive_copy_refuses_names_windows_cannot_hold_before_sending() {
    let (sim, client) = setup().await;
    let mut bad: Vec<std::ffi::OsString> = [
        "a*b?.txt",
        "q\"uote.txt",
        "colon:name",
        "con",
        "NUL.txt",
        "Com1.log",
        "trail.",
        "trail ",
        "back\\slash",
        "pipe|bar",
        "tab\tname",
    ]
    .iter()
    .map(Into::into)
    .collect();
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt as _;
        bad.push(std::ffi::OsStr::from_bytes(b"bad\xff").to_os_string());
    }
    let requests = sim.counters().requests;
    for name in bad {
        let tree = scratch("bad-name").join("tree");
        std::fs::create_dir_all(tree.join("sub")).unwrap();
        std::fs::write(tree.join("a-first.txt"), "first").unwrap();
        let path = tree.join("sub").join(&name);
        std::fs::write(&path, "x").unwrap();
        let e = within(30, client.copy(&tree, r"C:\Data\tree").recursive(true))
            .await
            .unwrap_err();
        let (p, message) = transfer_error(&e, TransferErrorKind::InvalidName);
        assert_eq!(p, path.display().to_string(), "{name:?}: {e}");
        assert!(!message.is_empty(), "{name:?}: says why");
    }
    assert_eq!(sim.counters().requests, requests, "nothing sent");
    assert!(
        !sim.is_dir(r"C:\Data\tree"),
        "no part of a tree on the host"
    );
    client.shutdown().await;
}

#[tokio::test]
async fn a_single_files_own_name_on_the_host_is_checked() {
    let (sim, client) = setup().await;
    sim.create_dir(r"C:\Data").unwrap();
    let dir = scratch("own-name");
    let src = dir.join("a*b.txt");
    std::fs::write(&src, "payload").unwrap();
    // The remote path surely names a directory: refused before anything is sent.
    let requests = sim.counters().requests;
    for remote in [r"C:\Data\", "C:", r"C:\Data\."] {
        let e = within(30, client.copy(&src, remote)).await.unwrap_err();
        let (p, _) = transfer_error(&e, TransferErrorKind::InvalidName);
        assert_eq!(p, src.display().to_string(), "{remote}: {e}");
    }
    assert_eq!(sim.counters().requests, requests, "nothing sent");
    // A directory the host finds: the same error, and no file there.
    let e = within(30, client.copy(&src, r"C:\Data")).await.unwrap_err();
    let (p, _) = transfer_error(&e, TransferErrorKind::InvalidName);
    assert_eq!(p, src.display().to_string(), "{e}");
    assert!(sim.list_files(r"C:\Data").is_empty());
    // An explicit name: the local one plays no part.
    within(30, client.copy(&src, r"C:\Data\ok.txt"))
        .await
        .unwrap();
    assert_eq!(sim.file(r"C:\Data\ok.txt").unwrap(), b"payload");
    client.shutdown().await;
}

#[tokio::test]
async fn remote_paths_with_names_windows_refuses_are_refused() {
    let (sim, client) = setup().await;
    sim.put_file(r"C:\Data\x.txt", "x").unwrap();
    let dir = scratch("remote-names");
    let src = dir.join("local.txt");
    std::fs::write(&src, "payload").unwrap();
    let requests = sim.counters().requests;
    for (remote, name) in [
        (r"C:\Data\a*b?.txt", "a*b?.txt"),
        (r#"C:\Data\q"uote.txt"#, "q\"uote.txt"),
        (r"C:\Data\con", "con"),
        (r"C:\Data\colon:name", "colon:name"),
        (r"C:\Data\trail. ", "trail. "),
        (r"C:\Data\nul.txt\x", "nul.txt"),
    ] {
        let e = within(30, client.copy(&src, remote)).await.unwrap_err();
        let (p, message) = transfer_error(&e, TransferErrorKind::InvalidName);
        assert_eq!(p, remote, "{e}");
        assert!(message.contains(name), "names the name: {e}");
        let e = within(30, client.fetch(remote, dir.join("back")))
            .await
            .unwrap_err();
        transfer_error(&e, TransferErrorKind::InvalidName);
    }
    assert_eq!(sim.counters().requests, requests, "nothing sent");
    // The drive's colon, `$env:` and `%VAR%` are no names: these reach the host.
    within(30, client.copy(&src, r"C:\Data\%USERNAME%.txt"))
        .await
        .unwrap();
    assert!(sim.file(&format!(r"C:\Data\{}.txt", sim.user())).is_some());
    // After expansion, on the host: an unknown variable stays as written, and its
    // colon is no name's (on NTFS it would open an alternate data stream).
    let e = within(30, client.copy(&src, r"C:\Data\$env:NO_SUCH_VAR.txt"))
        .await
        .unwrap_err();
    let (_, message) = transfer_error(&e, TransferErrorKind::InvalidName);
    assert!(message.contains("$env:NO_SUCH_VAR.txt"), "{e}");
    assert!(
        sim.list_files(r"C:\Data")
            .iter()
            .all(|n| !n.contains(':') && !n.contains(".tw-")),
        "{:?}",
        sim.list_files(r"C:\Data")
    );
    client.shutdown().await;
}

#[tokio::test]
async fn a_download_checks_its_local_destination_before_data_moves() {
    let (sim, client) = setup().await;
    sim.put_file(r"C:\data\x.txt", b"hello").unwrap();
    let dir = scratch("fetch-dest");
    std::fs::write(dir.join("file.txt"), "keep").unwrap();
    std::fs::create_dir_all(dir.join("adir")).unwrap();
    let requests = sim.counters().requests;
    let slash = std::path::MAIN_SEPARATOR;
    for (local, named, why) in [
        (
            format!("{}{slash}newdir{slash}", dir.display()),
            None,
            "does not exist",
        ),
        (
            format!("{}{slash}file.txt{slash}", dir.display()),
            None,
            "it is a file",
        ),
        (
            format!("{}{slash}missing{slash}sub{slash}file", dir.display()),
            Some(dir.join("missing").join("sub")),
            "does not exist",
        ),
        (
            format!("{}{slash}file.txt{slash}inner", dir.display()),
            Some(dir.join("file.txt")),
            "is a file",
        ),
    ] {
        let e = within(30, client.fetch(r"C:\data\x.txt", &local))
            .await
            .unwrap_err();
        let (path, message) = transfer_error(&e, TransferErrorKind::LocalNotFound);
        let named = named.map_or_else(|| local.clone(), |p| p.display().to_string());
        assert_eq!(path, named, "{local}: {e}");
        assert!(message.contains("director"), "{local}: {e}");
        assert!(message.contains(why), "{local}: {e}");
    }
    assert_eq!(sim.counters().requests, requests, "nothing sent");
    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["adir", "file.txt"]);
    assert_eq!(std::fs::read(dir.join("file.txt")).unwrap(), b"keep");
    // An existing directory, with or without the separator: the file goes in.
    for local in [
        format!("{}{slash}adir{slash}", dir.display()),
        dir.join("adir").display().to_string(),
    ] {
        let done = within(30, client.fetch(r"C:\data\x.txt", &local))
            .await
            .unwrap();
        assert_eq!(Path::new(&done.destination), dir.join("adir").join("x.txt"));
    }
    assert_eq!(
        std::fs::read(dir.join("adir").join("x.txt")).unwrap(),
        b"hello"
    );
    client.shutdown().await;
}

#[tokio::test]
async fn the_simulators_file_store_refuses_what_windows_refuses() {
    let sim = Simulator::start().await.unwrap();
    for bad in [
        r"C:\Data\a*b?.txt",
        r#"C:\Data\q"uote.txt"#,
        r"C:\Data\con",
        r"C:\Data\CON.txt",
        r"C:\Data\colon:name",
        r"C:\Data\lpt1\x.txt",
        r"C:\Data\trail.",
    ] {
        let e = sim.put_file(bad, "x").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{bad}: {e}");
        assert!(sim.file(bad).is_none(), "{bad}");
        assert!(sim.create_dir(bad).is_err(), "{bad}");
    }
    assert!(sim.list_files(r"C:\Data").is_empty());
    // Names differing only in case are one file.
    sim.put_file(r"C:\Data\README", "upper").unwrap();
    sim.put_file(r"C:\Data\readme", "lower").unwrap();
    assert_eq!(
        sim.list_files(r"C:\Data"),
        ["README"],
        "the first name kept"
    );
    assert_eq!(sim.file(r"C:\DATA\ReadMe").unwrap(), b"lower");
    // As NTFS compares them: `ß` is not `SS`, the Kelvin sign is not `K`.
    sim.put_file(r"C:\Data\straße", "1").unwrap();
    sim.put_file(r"C:\Data\STRASSE", "2").unwrap();
    sim.put_file("C:\\Data\\\u{212A}", "3").unwrap();
    sim.put_file(r"C:\Data\k", "4").unwrap();
    assert_eq!(sim.list_files(r"C:\Data").len(), 5);
    assert_eq!(sim.file(r"C:\Data\K").unwrap(), b"4");
    // `İ` lowercases to two characters: listing under it still names its entries.
    sim.put_file("C:\\İİ\\a.txt", "5").unwrap();
    assert_eq!(sim.list_files("C:\\İİ"), ["a.txt"]);
}
