//! The tokio-winrm side of `bench/compare.sh`: one workload per invocation, each printing
//! one JSON line (`{"client":"tokio-winrm","workload":...}`) on stdout.
//!
//! ```text
//! bench_client w1 URL OPS CONCURRENCY [basic|ntlm]   open shell, echo, read, close
//! bench_client w2 URL MIB                            stdout throughput (sim-gen) + raw rate
//! bench_client w3 URL COUNT                          enumerate Sim_Item into a struct
//! bench_client w3raw URL COUNT                       same responses by raw HTTP; quick-xml rate
//! bench_client w4 RUNS                               cancel latency (embedded simulator)
//! bench_client w5 URL[,URL...] PER_ENDPOINT SECS     fan-out of `timeout /t SECS`
//! bench_client ceiling URL SECS THREADS              the simulator's ceiling, raw HTTP
//! ```
//!
//! CPU time is this process's own (`/proc/self/stat` utime + stime), measured around
//! the workload only. `THREADS=1` in the environment selects a current-thread runtime
//! (used under callgrind); the default is a two-worker runtime.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::StreamExt;
use quick_xml::events::Event;
use serde::Deserialize;
use tokio_winrm::{Auth, Client, CommandEvent, EnumEnd, EnumEvent, Resource};
use winrm_simulator::{SimConfig, Simulator};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Client CPU seconds so far (user + system, all threads).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat(5); `after` starts at field 3. USER_HZ is 100 on Linux.
    (tick(11) + tick(12)) / 100.0
}

/// A `/proc/self/status` field in KiB (`VmHWM`, `VmRSS`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}

fn client(url: &str, ntlm: bool, channels: usize) -> Res<Client> {
    let auth = if ntlm {
        Auth::ntlm("vagrant", "vagrant")
    } else {
        Auth::basic("vagrant", "vagrant")
    };
    Ok(Client::builder(url)
        .auth(auth)
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(60))
        .max_channels(channels)
        .build()?)
}

/// One W1 operation: open a shell, run `echo`, read its output, close the shell.
async fn echo_round_trip(c: &Client) -> Res<()> {
    let shell = c.shell().open().await?;
    let out = shell
        .command("echo")
        .arg("hello")
        .start()
        .await?
        .collect()
        .await;
    let closed = shell.close().await;
    let out = out?;
    closed?;
    if out.stdout != b"hello\r\n" || out.code != Some(0) {
        return Err(format!(
            "unexpected echo output {:?} code {:?}",
            out.stdout, out.code
        )
        .into());
    }
    Ok(())
}

async fn w1(url: &str, ops: usize, conc: usize, ntlm: bool) -> Res<String> {
    let c = client(url, ntlm, conc * 2 + 4)?;
    for _ in 0..conc.min(8) {
        echo_round_trip(&c).await?;
    }
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let (cpu0, t0) = (cpu_secs(), Instant::now());
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (c, next, failures) = (c.clone(), Arc::clone(&next), Arc::clone(&failures));
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < ops {
                if let Err(e) = echo_round_trip(&c).await {
                    eprintln!("w1: {e}");
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_secs() - cpu0);
    c.shutdown().await;
    let auth = if ntlm { "ntlm" } else { "basic" };
    let st = c.transport_stats();
    Ok(format!(
        r#"{{"workload":"w1","auth":"{auth}","concurrency":{conc},"ops":{ops},"wall_s":{wall:.4},"cpu_s":{cpu:.3},"connects":{},"requests":{},"failures":{}}}"#,
        st.connects,
        st.requests,
        failures.load(Ordering::Relaxed)
    ))
}

/// ReceiveResponse bodies shaped like the simulator's: base64 stream elements of up to
/// `raw_per_response` bytes each (as `examples/bench_winrs.rs`).
fn receive_responses(total: usize, raw_per_response: usize) -> Vec<Vec<u8>> {
    let line = b"sim-gen 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n";
    let block: Vec<u8> = (0..raw_per_response)
        .map(|i| line[i % line.len()])
        .collect();
    let id = "0D6FCA9D-2D40-44C3-B691-E665BE7AA687";
    let mut out = Vec::new();
    let mut left = total;
    while left > 0 {
        let n = left.min(raw_per_response);
        left -= n;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&block[..n]);
        out.push(format!(
            "<s:Envelope xml:lang=\"en-US\" xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" xmlns:rsp=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell\"><s:Header><a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse</a:Action><a:MessageID>uuid:2131383B-EFAE-46DE-92BB-343BE18B7EAD</a:MessageID><a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To><a:RelatesTo>uuid:FC40E3CD-53E9-4315-B486-6D538B25D1F5</a:RelatesTo></s:Header><s:Body><rsp:ReceiveResponse><rsp:Stream Name=\"stdout\" CommandId=\"{id}\">{b64}</rsp:Stream><rsp:CommandState CommandId=\"{id}\" State=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running\"></rsp:CommandState></rsp:ReceiveResponse></s:Body></s:Envelope>"
        ).into_bytes());
    }
    out
}

/// The floor: quick-xml namespace-aware events plus base64 decoding of the stream text.
fn raw_parse_decode(bodies: &[Vec<u8>]) -> Res<usize> {
    let mut decoded = 0;
    let mut buf = Vec::with_capacity(256 * 1024);
    let mut out = Vec::with_capacity(256 * 1024);
    for b in bodies {
        let mut r = quick_xml::NsReader::from_reader(&b[..]);
        let mut in_stream = false;
        loop {
            match r.read_event_into(&mut buf)? {
                Event::Start(s) => in_stream = s.local_name().as_ref() == b"Stream",
                Event::Text(t) if in_stream => {
                    out.clear();
                    base64::engine::general_purpose::STANDARD.decode_vec(&*t, &mut out)?;
                    decoded += out.len();
                }
                Event::Eof => break,
                _ => in_stream = false,
            }
            buf.clear();
        }
    }
    Ok(decoded)
}

async fn w2(url: &str, mib: usize) -> Res<String> {
    let c = client(url, false, 8)?;
    // Three runs; the one with the median wall time is reported (the first run of a
    // process also pays for its heap's first page faults).
    let mut runs = Vec::new();
    for _ in 0..3 {
        let shell = c.shell().open().await?;
        let (cpu0, t0) = (cpu_secs(), Instant::now());
        let mut cmd = shell
            .command("sim-gen")
            .args(["--mib", &mib.to_string()])
            .start()
            .await?;
        let mut bytes = 0usize;
        while let Some(ev) = cmd.next().await {
            if let CommandEvent::Stdout(b) = ev? {
                bytes += b.len();
            }
        }
        let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_secs() - cpu0);
        shell.close().await?;
        if bytes != mib << 20 {
            return Err(format!("received {bytes} bytes, expected {}", mib << 20).into());
        }
        runs.push((wall, cpu));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (wall, cpu) = runs[1];
    let bytes = mib << 20;
    // The same responses: the default MaxEnvelopeSize (150 KiB), as the simulator fills it.
    let raw_per = (tokio_winrm::DEFAULT_MAX_ENVELOPE_SIZE as usize - 2048) * 3 / 4;
    // NO_RAW=1 skips the raw baseline (to profile or count page faults of the client alone).
    let raw_runs = if std::env::var_os("NO_RAW").is_some() {
        0
    } else {
        3
    };
    let bodies = receive_responses(if raw_runs == 0 { 0 } else { mib << 20 }, raw_per);
    let mut raw_best = if raw_runs == 0 { 0.0 } else { f64::MAX };
    for _ in 0..raw_runs {
        let t = Instant::now();
        let n = raw_parse_decode(&bodies)?;
        raw_best = raw_best.min(t.elapsed().as_secs_f64());
        if n != mib << 20 {
            return Err("raw decode lost bytes".into());
        }
    }
    Ok(format!(
        r#"{{"workload":"w2","bytes":{bytes},"wall_s":{wall:.4},"cpu_s":{cpu:.3},"raw_s":{raw_best:.4},"failures":0}}"#
    ))
}

/// What a caller would deserialize `Sim_Item` into.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)]
struct Item {
    name: String,
    index: u64,
    display_name: String,
    state: String,
    start_mode: String,
    process_id: u32,
    started: bool,
    install_date: Option<String>,
}

/// Envelope size used by every client in W3 (pypsrp gets the same).
const W3_ENVELOPE: u32 = 512_000;

async fn w3(url: &str, count: u64) -> Res<String> {
    let c = Client::builder(url)
        .auth(Auth::basic("vagrant", "vagrant"))
        .allow_insecure_basic(true)
        .max_envelope_size(W3_ENVELOPE)
        .build()?;
    let rss0 = status_kib("VmRSS:");
    let (cpu0, t0) = (cpu_secs(), Instant::now());
    let mut stream = c
        .enumerate_as::<Item>(&Resource::wmi("root/cimv2", "Sim_Item"))
        .start();
    let mut n = 0u64;
    while let Some(ev) = stream.next().await {
        match ev? {
            EnumEvent::Item(item) => {
                if item.index != n {
                    return Err(format!("item {} out of order", item.index).into());
                }
                n += 1;
            }
            EnumEvent::End(EnumEnd::Complete) => break,
            EnumEvent::End(other) => return Err(format!("ended early: {other:?}").into()),
            other => return Err(format!("unexpected {other:?}").into()),
        }
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_secs() - cpu0);
    let failures = u64::from(n != count);
    Ok(format!(
        r#"{{"workload":"w3","items":{n},"wall_s":{wall:.4},"cpu_s":{cpu:.3},"rss_before_kib":{rss0},"peak_rss_kib":{},"failures":{failures}}}"#,
        status_kib("VmHWM:")
    ))
}

/// A minimal blocking HTTP/1.1 client with Basic auth: one keep-alive connection.
struct Raw {
    stream: TcpStream,
    host: String,
    path: String,
    buf: Vec<u8>,
    seq: u64,
}

const NS: &str = r#"xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell""#;
const CMD_URI: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";
const SHELL_NS: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
const TRANSFER: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer";
const ENUM: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration";

impl Raw {
    fn connect(url: &str) -> Res<Raw> {
        let rest = url.strip_prefix("http://").ok_or("http:// URL expected")?;
        let (host, path) = rest.split_once('/').ok_or("URL without path")?;
        let stream = TcpStream::connect(host)?;
        stream.set_nodelay(true)?;
        Ok(Raw {
            stream,
            host: host.into(),
            path: format!("/{path}"),
            buf: Vec::new(),
            seq: 0,
        })
    }

    /// POSTs `body`; returns the response body of a 200.
    fn post(&mut self, body: &str) -> Res<Vec<u8>> {
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic dmFncmFudDp2YWdyYW50\r\nContent-Type: application/soap+xml;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
            self.path,
            self.host,
            body.len()
        );
        self.stream.write_all(head.as_bytes())?;
        self.stream.write_all(body.as_bytes())?;
        self.buf.clear();
        let mut chunk = [0u8; 64 * 1024];
        let (header_end, len) = loop {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..p]).to_ascii_lowercase();
                if !head.starts_with("http/1.1 200") {
                    return Err(
                        format!("HTTP status: {}", head.lines().next().unwrap_or("")).into(),
                    );
                }
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .ok_or("response without Content-Length")?;
                break (p + 4, len);
            }
        };
        while self.buf.len() < header_end + len {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err("connection closed mid-body".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        Ok(self.buf[header_end..header_end + len].to_vec())
    }

    fn envelope(&mut self, action: &str, uri: &str, selector: Option<&str>, body: &str) -> String {
        self.seq += 1;
        let sel = selector.map_or(String::new(), |id| {
            format!(
                r#"<w:SelectorSet><w:Selector Name="ShellId">{id}</w:Selector></w:SelectorSet>"#
            )
        });
        format!(
            r#"<s:Envelope {NS}><s:Header><a:To>http://{}{}</a:To><w:ResourceURI s:mustUnderstand="true">{uri}</w:ResourceURI><a:ReplyTo><a:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo><a:Action s:mustUnderstand="true">{action}</a:Action><w:MaxEnvelopeSize s:mustUnderstand="true">{W3_ENVELOPE}</w:MaxEnvelopeSize><a:MessageID>uuid:00000000-0000-4000-8000-{:012x}</a:MessageID><w:OperationTimeout>PT60S</w:OperationTimeout>{sel}</s:Header><s:Body>{body}</s:Body></s:Envelope>"#,
            self.host, self.path, self.seq
        )
    }

    /// The text after the first `marker` up to the next `<` (an ID or context).
    fn text_after(resp: &[u8], marker: &str) -> Res<String> {
        let s = String::from_utf8_lossy(resp);
        let at = s
            .find(marker)
            .ok_or_else(|| format!("no {marker} in response"))?;
        let rest = &s[at + marker.len()..];
        let start = rest.find('>').ok_or("truncated")? + 1;
        let end = rest[start..].find('<').ok_or("truncated")?;
        Ok(rest[start..start + end].trim().to_string())
    }

    /// The W1 exchange by hand: Create, Command, Receive until Done, Signal, Delete.
    fn echo(&mut self) -> Res<()> {
        let e = self.envelope(
            &format!("{TRANSFER}/Create"),
            CMD_URI,
            None,
            "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>",
        );
        let shell = Self::text_after(&self.post(&e)?, "ShellId")?;
        let e = self.envelope(
            &format!("{SHELL_NS}/Command"),
            CMD_URI,
            Some(&shell),
            "<rsp:CommandLine><rsp:Command>echo</rsp:Command><rsp:Arguments>hello</rsp:Arguments></rsp:CommandLine>",
        );
        let cmd = Self::text_after(&self.post(&e)?, "CommandId")?;
        loop {
            let body = format!(
                r#"<rsp:Receive><rsp:DesiredStream CommandId="{cmd}">stdout stderr</rsp:DesiredStream></rsp:Receive>"#
            );
            let e = self.envelope(&format!("{SHELL_NS}/Receive"), CMD_URI, Some(&shell), &body);
            let r = self.post(&e)?;
            if r.windows(14).any(|w| w == b"CommandState/D") {
                break;
            }
        }
        let body = format!(
            r#"<rsp:Signal CommandId="{cmd}"><rsp:Code>{SHELL_NS}/signal/terminate</rsp:Code></rsp:Signal>"#
        );
        let e = self.envelope(&format!("{SHELL_NS}/Signal"), CMD_URI, Some(&shell), &body);
        self.post(&e)?;
        let e = self.envelope(&format!("{TRANSFER}/Delete"), CMD_URI, Some(&shell), "");
        self.post(&e)?;
        Ok(())
    }
}

/// The same Enumerate/Pull responses the W3 client gets, fetched by raw HTTP, then the
/// best of three passes of quick-xml's borrowing event reader over them.
fn w3raw(url: &str, count: u64) -> Res<String> {
    let mut raw = Raw::connect(url)?;
    let uri = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Sim_Item";
    let max = tokio_winrm::DEFAULT_MAX_ELEMENTS;
    let e = raw.envelope(
        &format!("{ENUM}/Enumerate"),
        uri,
        None,
        &format!("<n:Enumerate><w:OptimizeEnumeration/><w:MaxElements>{max}</w:MaxElements></n:Enumerate>"),
    );
    let t_fetch = Instant::now();
    let mut bodies = vec![raw.post(&e)?];
    while !bodies
        .last()
        .is_some_and(|b| b.windows(13).any(|w| w == b"EndOfSequence"))
    {
        let ctx = Raw::text_after(bodies.last().ok_or("no response")?, "EnumerationContext")?;
        let e = raw.envelope(
            &format!("{ENUM}/Pull"),
            uri,
            None,
            &format!("<n:Pull><n:EnumerationContext>{ctx}</n:EnumerationContext><n:MaxElements>{max}</n:MaxElements></n:Pull>"),
        );
        bodies.push(raw.post(&e)?);
    }
    let fetch_s = t_fetch.elapsed().as_secs_f64();
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let mut best = f64::MAX;
    let mut events = 0u64;
    for _ in 0..3 {
        let t = Instant::now();
        events = 0;
        for b in &bodies {
            let mut r = quick_xml::Reader::from_reader(&b[..]);
            loop {
                match r.read_event()? {
                    Event::Eof => break,
                    e => {
                        std::hint::black_box(e);
                        events += 1;
                    }
                }
            }
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(format!(
        r#"{{"workload":"w3raw","items":{count},"responses":{},"bytes":{bytes},"events":{events},"raw_s":{best:.4},"fetch_s":{fetch_s:.4}}}"#,
        bodies.len()
    ))
}

/// The simulator's ceiling: `threads` blocking raw-HTTP clients running the W1 exchange.
fn ceiling(url: &str, secs: f64, threads: usize) -> Res<String> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..threads {
        let mut raw = Raw::connect(url)?;
        let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
        handles.push(std::thread::spawn(move || -> Res<()> {
            while !stop.load(Ordering::Relaxed) {
                raw.echo()?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    let (cpu0, t0) = (cpu_secs(), Instant::now());
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let mut failures = 0;
    for h in handles {
        if !matches!(h.join(), Ok(Ok(()))) {
            failures += 1;
        }
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_secs() - cpu0);
    Ok(format!(
        r#"{{"workload":"ceiling","concurrency":{threads},"ops":{},"wall_s":{wall:.4},"cpu_s":{cpu:.3},"failures":{failures}}}"#,
        done.load(Ordering::Relaxed)
    ))
}

/// Cancel latency with a Receive pending, against an embedded simulator (it timestamps
/// the Signal's arrival), as `examples/bench_winrs.rs`.
async fn w4(runs: usize) -> Res<String> {
    let sim = Arc::new(
        Simulator::start_with(SimConfig {
            log_requests: false,
            ..SimConfig::default()
        })
        .await?,
    );
    sim.register_command("forever", |ctx| {
        Box::pin(async move {
            ctx.print("started\r\n").await;
            std::future::pending::<()>().await;
            0
        })
    });
    let c = client(&sim.endpoint(), false, 8)?;
    let shell = c.shell().open().await?;
    let (mut sig, mut fin) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        let mut cmd = shell.command("forever").start().await?;
        let _ = cmd.next().await;
        while sim.counters().receives_pending == 0 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let before = sim.counters().terminate_signals;
        let t0 = Instant::now();
        cmd.cancel();
        let mut last = None;
        while let Some(ev) = cmd.next().await {
            last = Some(ev?);
        }
        let t_final = Instant::now();
        // The stream ends at once on a cancel; the Signal terminate goes out at the same
        // moment on another request and may reach the simulator a little after the final
        // Exit was read. The simulator timestamps it as its handler runs (no watcher
        // thread competing for the two cores).
        let waited = Instant::now();
        while sim.counters().terminate_signals == before
            && waited.elapsed() < Duration::from_secs(5)
        {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        if sim.counters().terminate_signals != before + 1 {
            return Err("no Signal terminate reached the simulator".into());
        }
        let t_signal = sim
            .last_terminate_signal_at()
            .ok_or("no Signal terminate timestamp")?;
        if !matches!(last, Some(CommandEvent::Exit(_))) {
            return Err("no final exit status".into());
        }
        sig.push((t_signal.saturating_duration_since(t0)).as_secs_f64() * 1e3);
        fin.push((t_final - t0).as_secs_f64() * 1e3);
    }
    shell.close().await?;
    Ok(format!(
        r#"{{"workload":"w4","runs":{runs},"signal_p50_ms":{:.3},"signal_p99_ms":{:.3},"final_p50_ms":{:.3},"final_p99_ms":{:.3},"failures":0}}"#,
        percentile(&mut sig, 0.5),
        percentile(&mut sig, 0.99),
        percentile(&mut fin, 0.5),
        percentile(&mut fin, 0.99)
    ))
}

/// 10,000 commands in flight at once: every task opens a shell and starts
/// `timeout /t SECS`, all wait at a barrier (so every command is running and its
/// Receive pending at the same moment), then each reads its command to the end.
async fn w5(urls: &str, per: usize, secs: u64) -> Res<String> {
    let urls: Vec<&str> = urls.split(',').collect();
    let total = urls.len() * per;
    let rss0 = status_kib("VmRSS:");
    let barrier = Arc::new(tokio::sync::Barrier::new(total + 1));
    let failures = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (cpu0, t0) = (cpu_secs(), Instant::now());
    let mut tasks = Vec::with_capacity(total);
    let mut clients = Vec::new();
    for url in &urls {
        let c = client(url, false, per + 64)?;
        clients.push(c.clone());
        for _ in 0..per {
            let (c, barrier, failures) = (c.clone(), Arc::clone(&barrier), Arc::clone(&failures));
            let (in_flight, peak) = (Arc::clone(&in_flight), Arc::clone(&peak));
            tasks.push(tokio::spawn(async move {
                let started = async {
                    let shell = c.shell().open().await?;
                    let cmd = shell.command("timeout").args(["/t", &secs.to_string()]).start().await?;
                    Ok::<_, tokio_winrm::Error>((shell, cmd))
                }
                .await;
                if started.is_ok() {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                }
                barrier.wait().await;
                let ok = match started {
                    Ok((shell, cmd)) => {
                        let out = cmd.collect().await;
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        let closed = shell.close().await;
                        matches!(out, Ok(o) if o.code == Some(0) && o.stdout.starts_with(b"\r\nWaiting for")) && closed.is_ok()
                    }
                    Err(e) => {
                        eprintln!("w5: {e}");
                        false
                    }
                };
                if !ok {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
    }
    barrier.wait().await;
    let started_s = t0.elapsed().as_secs_f64();
    let rss_all = status_kib("VmRSS:");
    for t in tasks {
        t.await?;
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_secs() - cpu0);
    for c in clients {
        c.shutdown().await;
    }
    Ok(format!(
        r#"{{"workload":"w5","endpoints":{},"ops":{total},"timeout_s":{secs},"all_started_s":{started_s:.3},"wall_s":{wall:.3},"cpu_s":{cpu:.3},"peak_in_flight":{},"rss_before_kib":{rss0},"rss_all_in_flight_kib":{rss_all},"peak_rss_kib":{},"failures":{}}}"#,
        urls.len(),
        peak.load(Ordering::SeqCst),
        status_kib("VmHWM:"),
        failures.load(Ordering::SeqCst)
    ))
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Res<T> {
    args.get(i)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("argument {i} ({what}) missing or invalid").into())
}

fn main() -> Res<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let which = a.first().map(String::as_str).unwrap_or("");
    let one_thread = std::env::var("THREADS").is_ok_and(|v| v == "1");
    let rt = if one_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
    };
    let url = a.get(1).cloned().unwrap_or_default();
    let line = match which {
        "w1" => {
            let ntlm = a.get(4).is_some_and(|v| v == "ntlm");
            rt.block_on(w1(
                &url,
                arg(&a, 2, "OPS")?,
                arg(&a, 3, "CONCURRENCY")?,
                ntlm,
            ))?
        }
        "w2" => rt.block_on(w2(&url, arg(&a, 2, "MIB")?))?,
        "w3" => rt.block_on(w3(&url, arg(&a, 2, "COUNT")?))?,
        "w3raw" => w3raw(&url, arg(&a, 2, "COUNT")?)?,
        "w4" => rt.block_on(w4(arg(&a, 1, "RUNS")?))?,
        "w5" => rt.block_on(w5(&url, arg(&a, 2, "PER_ENDPOINT")?, arg(&a, 3, "SECS")?))?,
        "ceiling" => ceiling(&url, arg(&a, 2, "SECS")?, arg(&a, 3, "THREADS")?)?,
        _ => {
            return Err(
                "usage: bench_client w1|w2|w3|w3raw|w4|w5|ceiling ... (see the file's doc)".into(),
            );
        }
    };
    println!("{{\"client\":\"tokio-winrm\",{}", &line[1..]);
    Ok(())
}
