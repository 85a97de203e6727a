//! A fault-injecting HTTP/1.1 proxy for tests: it sits between the client and a server
//! (the simulator), one upstream connection per client connection (so connection-bound
//! authentication stays bound), and applies scripted faults to the requests that match
//! a rule: cut the connection before the request reaches the server, after the server
//! answered it (the response is lost), after half of the response body, stall the
//! response, or answer 503 itself.
//!
//! Rules match the request body as sent (so tests use Basic over HTTP, where bodies are
//! plain SOAP). Each rule applies to a number of matching requests, then is spent.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to a matching request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Read the request, forward nothing, close the client's connection.
    CutBeforeRequest,
    /// Forward the request, read the server's whole response (so the server has acted),
    /// then close the client's connection without a byte of it.
    CutAfterRequest,
    /// Forward the request, send the client the head and half of the response body, then
    /// close.
    CutMidResponse,
    /// Forward the request, hold the response this long, then deliver it.
    Stall(Duration),
    /// Answer `503 Service Unavailable` (text/html) without forwarding.
    Status503,
}

type Matcher = Box<dyn Fn(&str) -> bool + Send + Sync>;

struct Rule {
    matches: Matcher,
    fault: Fault,
    remaining: usize,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
}

/// Counters of the proxy.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Client connections accepted.
    pub connections: AtomicU64,
    /// Requests read from clients.
    pub requests: AtomicU64,
    /// Faults applied.
    pub faults: AtomicU64,
    /// When the last fault was applied (for recovery-time figures).
    pub last_fault_at: Mutex<Option<std::time::Instant>>,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    stats: Arc<ProxyStats>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 in front of `upstream` (`host:port`).
    pub async fn start(upstream: std::net::SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stats = Arc::new(ProxyStats::default());
        let (st, stt) = (Arc::clone(&state), Arc::clone(&stats));
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                stt.connections.fetch_add(1, Ordering::Relaxed);
                let (st, stt) = (Arc::clone(&st), Arc::clone(&stt));
                conns.spawn(async move {
                    let _ = serve(client, upstream, st, stt).await;
                });
            }
        });
        FaultProxy {
            addr,
            state,
            stats,
            task,
        }
    }

    /// The endpoint URL clients use.
    pub fn url(&self) -> String {
        format!("http://{}/wsman", self.addr)
    }

    /// Applies `fault` to the next `times` requests whose body contains `needle`.
    pub fn on(&self, needle: &'static str, fault: Fault, times: usize) {
        self.on_match(move |body| body.contains(needle), fault, times);
    }

    /// Applies `fault` to the next `times` requests whose body `matches`.
    pub fn on_match(
        &self,
        matches: impl Fn(&str) -> bool + Send + Sync + 'static,
        fault: Fault,
        times: usize,
    ) {
        self.state.lock().unwrap().rules.push(Rule {
            matches: Box::new(matches),
            fault,
            remaining: times,
        });
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.state.lock().unwrap().rules.clear();
    }

    /// The counters.
    pub fn stats(&self) -> &ProxyStats {
        &self.stats
    }

    fn fault_for(state: &Mutex<State>, body: &str) -> Option<Fault> {
        let mut s = state.lock().unwrap();
        let rule = s
            .rules
            .iter_mut()
            .find(|r| r.remaining > 0 && (r.matches)(body))?;
        rule.remaining -= 1;
        Some(rule.fault)
    }
}

/// One HTTP message read whole: its head and body as received, and where the body starts.
struct Message {
    raw: Vec<u8>,
    body_start: usize,
}

impl Message {
    fn body(&self) -> &[u8] {
        &self.raw[self.body_start..]
    }
}

async fn serve(
    mut client: TcpStream,
    upstream: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    stats: Arc<ProxyStats>,
) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    let (mut cbuf, mut sbuf) = (Vec::new(), Vec::new());
    loop {
        let Some(req) = read_message(&mut client, &mut cbuf, true).await? else {
            return Ok(());
        };
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let text = String::from_utf8_lossy(req.body()).into_owned();
        let fault = FaultProxy::fault_for(&state, &text);
        let note_fault = || {
            *stats.last_fault_at.lock().unwrap() = Some(std::time::Instant::now());
            stats.faults.fetch_add(1, Ordering::Relaxed);
        };
        if matches!(fault, Some(Fault::CutBeforeRequest | Fault::Status503)) {
            note_fault();
        }
        match fault {
            Some(Fault::CutBeforeRequest) => return Ok(()),
            Some(Fault::Status503) => {
                let body = "<html><body><h1>503 Service Unavailable</h1></body></html>";
                let head = format!(
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                client.write_all(head.as_bytes()).await?;
                client.write_all(body.as_bytes()).await?;
                continue;
            }
            _ => {}
        }
        server.write_all(&req.raw).await?;
        let Some(resp) = read_message(&mut server, &mut sbuf, false).await? else {
            return Ok(());
        };
        match fault {
            Some(Fault::CutAfterRequest) => {
                note_fault();
                return Ok(());
            }
            Some(Fault::CutMidResponse) => {
                let cut = resp.body_start + resp.body().len() / 2;
                client.write_all(&resp.raw[..cut]).await?;
                client.flush().await?;
                note_fault();
                return Ok(());
            }
            Some(Fault::Stall(d)) => {
                note_fault();
                tokio::time::sleep(d).await;
            }
            _ => {}
        }
        client.write_all(&resp.raw).await?;
    }
}

/// Reads one HTTP/1.1 message (Content-Length or chunked body; a request without either
/// has no body). `None` at a clean end of stream before a message.
async fn read_message(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    request: bool,
) -> std::io::Result<Option<Message>> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if !fill(s, buf).await? {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    let mut raw = Vec::new();
    if let Some(len) = header("content-length:").and_then(|v| v.parse::<usize>().ok()) {
        while buf.len() < head_end + len {
            if !fill(s, buf).await? {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        raw.extend(buf.drain(..head_end + len));
        return Ok(Some(Message {
            raw,
            body_start: head_end,
        }));
    }
    if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
        // Passed through as received; the body offset is the first chunk's.
        let mut pos = head_end;
        loop {
            let line_end = loop {
                if let Some(i) = find(&buf[pos..], b"\r\n") {
                    break pos + i;
                }
                if !fill(s, buf).await? {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            };
            let size_text = String::from_utf8_lossy(&buf[pos..line_end]).to_string();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                .map_err(|_| std::io::Error::other("bad chunk size"))?;
            let next = line_end + 2 + size + 2;
            while buf.len() < next {
                if !fill(s, buf).await? {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
            pos = next;
            if size == 0 {
                break;
            }
        }
        raw.extend(buf.drain(..pos));
        return Ok(Some(Message {
            raw,
            body_start: head_end,
        }));
    }
    if !request {
        return Err(std::io::Error::other("response without a length"));
    }
    raw.extend(buf.drain(..head_end));
    Ok(Some(Message {
        raw,
        body_start: head_end,
    }))
}

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    let n = s.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
