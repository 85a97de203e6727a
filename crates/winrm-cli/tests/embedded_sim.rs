//! Without --endpoint each command starts its own embedded simulator: `winrm cp` says
//! on stderr that the file went to a simulator that stops with it, and a failed
//! `winrm fetch` says why an earlier copy's file is not there.

mod support;
use support::winrm;

#[test]
fn cp_and_fetch_say_the_embedded_simulator_is_their_own() {
    let dir = std::env::temp_dir().join(format!("tw-cli-embedded-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("notes.txt");
    std::fs::write(&file, b"hello").unwrap();
    let os = |s: &str| std::ffi::OsString::from(s);

    let out = winrm(&[
        &os("cp"),
        file.as_os_str(),
        &os(r"C:\Windows\TEMP\notes.txt"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("own embedded simulator, which stops with it"),
        "{err}"
    );
    assert!(err.contains("winrm sim"), "{err}");

    // The next command's simulator does not have it.
    let out = winrm(&[
        &os("fetch"),
        &os(r"C:\Windows\TEMP\notes.txt"),
        dir.join("back.txt").as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("each command starts its own embedded simulator"),
        "{err}"
    );

    // A fetch that works says nothing about it.
    let out = winrm(&[
        &os("fetch"),
        &os(r"C:\Windows\win.ini"),
        dir.join("win.ini").as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("own embedded simulator"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
