//! The stand-alone programs of the simulator: `ping` (a reply per configured interval),
//! `timeout`, `findstr` and `more` reading stdin, and the output generator `gen N` /
//! `sim-gen --mib N` used by throughput benchmarks.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use super::commands::Sh;
use super::process::Encoded;

/// The value after a flag like `-n`, parsed.
fn flag_value<T: std::str::FromStr>(args: &[String], names: &[&str]) -> Option<T> {
    let i = args
        .iter()
        .position(|a| names.iter().any(|n| a.eq_ignore_ascii_case(n)))?;
    args.get(i + 1)?.parse().ok()
}

pub(super) async fn ping(sh: &mut Sh, args: &[String]) -> i32 {
    let forever = args
        .iter()
        .any(|a| a.eq_ignore_ascii_case("-t") || a.eq_ignore_ascii_case("/t"));
    let count: u64 = flag_value(args, &["-n", "/n"]).unwrap_or(4);
    let mut skip = false;
    let mut host = None;
    for a in args {
        if skip {
            skip = false;
        } else if a.starts_with(['-', '/']) {
            skip = ["-n", "/n", "-w", "/w", "-l", "/l", "-i", "/i"]
                .iter()
                .any(|f| a.eq_ignore_ascii_case(f));
        } else {
            host = Some(a.as_str());
        }
    }
    let Some(host) = host else {
        sh.io.print(true, "IP address must be specified.\r\n").await;
        return 1;
    };
    let addr = if host.parse::<IpAddr>().is_ok() {
        host.to_string()
    } else {
        "127.0.0.1".to_string()
    };
    let head = if addr == host {
        format!("\r\nPinging {addr} with 32 bytes of data:\r\n")
    } else {
        format!("\r\nPinging {host} [{addr}] with 32 bytes of data:\r\n")
    };
    sh.io.print(false, &head).await;
    let reply = format!("Reply from {addr}: bytes=32 time<1ms TTL=128\r\n");
    let mut sent = 0u64;
    while forever || sent < count {
        if sent > 0 {
            tokio::time::sleep(sh.ping_interval).await;
        }
        sh.io.print(false, &reply).await;
        sent += 1;
    }
    let stats = format!(
        "\r\nPing statistics for {addr}:\r\n    Packets: Sent = {sent}, Received = {sent}, Lost = 0 (0% loss),\r\nApproximate round trip times in milli-seconds:\r\n    Minimum = 0ms, Maximum = 0ms, Average = 0ms\r\n"
    );
    sh.io.print(false, &stats).await;
    0
}

pub(super) async fn timeout(sh: &mut Sh, args: &[String]) -> i32 {
    let secs: i64 = flag_value(args, &["/t", "-t"])
        .or_else(|| args.iter().find_map(|a| a.parse().ok()))
        .unwrap_or(0);
    sh.io
        .print(
            false,
            &format!("\r\nWaiting for {secs} seconds, press a key to continue ..."),
        )
        .await;
    if secs < 0 {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(Duration::from_secs(secs.unsigned_abs().min(86_400 * 365))).await;
    sh.io.print(false, "\r\n").await;
    0
}

pub(super) async fn findstr(sh: &mut Sh, args: &[String]) -> i32 {
    let mut ignore_case = false;
    let mut invert = false;
    let mut needles = Vec::new();
    for a in args {
        let lower = a.to_ascii_lowercase();
        if lower.starts_with("/c:") {
            needles.push(a.get(3..).unwrap_or("").to_string());
        } else if lower.starts_with('/') && lower.len() <= 3 {
            ignore_case |= lower.contains('i');
            invert |= lower.contains('v');
        } else {
            needles.extend(a.split_whitespace().map(str::to_string));
        }
    }
    if needles.is_empty() {
        sh.io.print(true, "FINDSTR: Bad command line\r\n").await;
        return 2;
    }
    if ignore_case {
        needles.iter_mut().for_each(|n| *n = n.to_lowercase());
    }
    let mut found = false;
    loop {
        let line = sh.io.stdin.lock().await.line().await;
        let Some(mut line) = line else { break };
        let text = String::from_utf8_lossy(&line);
        let text = if ignore_case {
            text.to_lowercase()
        } else {
            text.into_owned()
        };
        if needles.iter().any(|n| text.contains(n.as_str())) != invert {
            found = true;
            if !line.ends_with(b"\n") {
                line.extend_from_slice(b"\r\n");
            }
            sh.io.write(false, &line).await;
        }
    }
    if found { 0 } else { 1 }
}

pub(super) async fn more(sh: &mut Sh) -> i32 {
    loop {
        let line = sh.io.stdin.lock().await.line().await;
        let Some(line) = line else { return 0 };
        let mut body = line.strip_suffix(b"\n").unwrap_or(&line).to_vec();
        if body.ends_with(b"\r") {
            body.pop();
        }
        body.extend_from_slice(b"\r\n");
        sh.io.write(false, &body).await;
    }
}

/// 64 KiB of printable lines, written repeatedly by the generator.
fn gen_block() -> &'static [u8] {
    static BLOCK: OnceLock<Vec<u8>> = OnceLock::new();
    BLOCK.get_or_init(|| {
        let line = b"sim-gen 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n";
        line.iter().copied().cycle().take(64 * 1024).collect()
    })
}

/// `gen N` (MiB) or `sim-gen --mib N | --kib N | --bytes N [--stderr]`.
pub(super) async fn generate(sh: &mut Sh, args: &[String]) -> i32 {
    let total: Option<u64> = if let Some(n) = flag_value::<u64>(args, &["--mib"]) {
        n.checked_mul(1024 * 1024)
    } else if let Some(n) = flag_value::<u64>(args, &["--kib"]) {
        n.checked_mul(1024)
    } else if let Some(n) = flag_value::<u64>(args, &["--bytes"]) {
        Some(n)
    } else {
        args.iter()
            .find_map(|a| a.parse::<u64>().ok())
            .and_then(|n| n.checked_mul(1024 * 1024))
    };
    let Some(mut left) = total else {
        sh.io
            .print(
                true,
                "usage: sim-gen --mib N | --kib N | --bytes N [--stderr]\r\n",
            )
            .await;
        return 1;
    };
    let err = args.iter().any(|a| a.eq_ignore_ascii_case("--stderr"));
    // The whole block is encoded once: a generator's output costs the simulator no
    // base64 work, so a throughput benchmark measures the client.
    static ENCODED: OnceLock<Encoded> = OnceLock::new();
    let block = gen_block();
    let encoded = ENCODED.get_or_init(|| Encoded::new(block));
    while left > 0 {
        let n = usize::try_from(left.min(block.len() as u64)).unwrap_or(block.len());
        if n == block.len() {
            sh.io.write_encoded(err, encoded.clone()).await;
        } else {
            sh.io.write(err, &block[..n]).await;
        }
        left -= n as u64;
    }
    0
}
