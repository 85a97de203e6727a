//! `winrm fetch REMOTE -` writes the file's bytes to stdout (as `pwsh -` reads stdin),
//! byte for byte, with the summary on stderr; no local file named `-` is made.

use std::process::Stdio;

mod support;

#[test]
fn fetch_to_dash_writes_the_bytes_to_stdout() {
    let (_runtime, sim) = support::simulator();
    let endpoint = sim.endpoint();
    let dir = std::env::temp_dir().join(format!("tw-cli-fetch-stdout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Every byte value, line ends of both kinds, and more than one read's worth.
    let mut bytes: Vec<u8> = (0..=255u8).collect();
    bytes.extend_from_slice(b"line\r\nnext\n\0end");
    bytes.extend((0..300_000u32).map(|i| (i * 7 % 251) as u8));
    std::fs::write(dir.join("blob.bin"), &bytes).unwrap();
    let with_sim = |args: &[&str]| {
        let mut c = support::command(args);
        c.args(["--endpoint", &endpoint, "--user", sim.user()])
            .env("WINRM_PASSWORD", sim.password())
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.output().expect("runs winrm")
    };
    let out = with_sim(&["cp", "blob.bin", r"C:\Windows\TEMP\blob.bin"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = with_sim(&["fetch", r"C:\Windows\TEMP\blob.bin", "-"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        out.stdout == bytes,
        "stdout differs from the file; {stderr}"
    );
    assert!(stderr.contains("into stdout"), "{stderr}");
    assert!(!dir.join("-").exists(), "a local file named - was written");

    // A tree or a JSON summary cannot share stdout with the bytes: usage errors.
    for args in [
        &["fetch", "-r", r"C:\Windows\TEMP", "-"][..],
        &["--json", "fetch", r"C:\Windows\TEMP\blob.bin", "-"],
    ] {
        let out = with_sim(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!dir.join("-").exists(), "{args:?}: a local file named -");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
