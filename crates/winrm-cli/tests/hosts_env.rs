//! `--hosts` with `WINRM_ENDPOINT` exported (for single-host use): the variable is set
//! aside with a note, not taken for a conflicting `--endpoint`; one typed on the command
//! line still is a usage error.

mod support;

/// Nothing listens on port 9 of loopback (discard is not served here): a connect error.
const UNREACHABLE: &str = "http://127.0.0.1:9/wsman";

#[test]
fn an_exported_endpoint_is_set_aside_for_hosts() {
    for args in [
        &["run", "--hosts", UNREACHABLE, "--", "hostname"][..],
        &["cp", "--hosts", UNREACHABLE, "Cargo.toml", "C:\\Temp\\x"],
    ] {
        let out = support::command(args)
            .env("WINRM_ENDPOINT", "http://127.0.0.1:10/wsman")
            .env("WINRM_PASSWORD", "not-used")
            .output()
            .expect("runs winrm");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("WINRM_ENDPOINT is ignored with --hosts"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("give one"), "{args:?}: {stderr}");
        // The host itself fails (nothing listens): exit 1, not a usage error.
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    }
}

#[test]
fn a_typed_endpoint_with_hosts_is_still_a_usage_error() {
    let out = support::command(&[
        "run",
        "--endpoint",
        UNREACHABLE,
        "--hosts",
        UNREACHABLE,
        "--",
        "hostname",
    ])
    .env("WINRM_ENDPOINT", "http://127.0.0.1:10/wsman")
    .output()
    .expect("runs winrm");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--hosts and --endpoint: give one"),
        "{stderr}"
    );
}

/// A wrong password under `--hosts` gets the hint single-host mode gives, once, under
/// the summary, with how many hosts it concerns.
#[test]
fn a_wrong_password_across_hosts_gets_one_hint() {
    use std::io::BufRead;
    let mut sim = support::command(&["sim", "--addr", "127.0.0.1:0", "--ignore-stdin"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts winrm sim");
    let mut url = String::new();
    std::io::BufReader::new(sim.stdout.take().expect("stdout"))
        .read_line(&mut url)
        .expect("reads the URL");
    let url = url.trim();
    let hosts = format!("{url},{url}");
    let out = support::command(&[
        "run",
        "--hosts",
        &hosts,
        "--user",
        "vagrant",
        "--password",
        "wrong",
        "--",
        "hostname",
    ])
    .output()
    .expect("runs winrm");
    let _ = sim.kill();
    let _ = sim.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("hint (2 hosts): the user name or password is wrong"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("the user name or password is wrong").count(),
        1,
        "once, not per host: {stderr}"
    );
}
