//! Shared by tests/logs.rs and tests/kerberos.rs: a TRACE capture of every `tracing`
//! event of the process, a tee proxy that records the bytes between client and server,
//! and the credential material to look for in the capture.

#![allow(dead_code, reason = "each test file uses a part")]

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use md4::{Digest, Md4};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The process-wide capture of every event and span at TRACE level.
#[derive(Clone)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once) a global subscriber that records everything at TRACE, with span
/// fields and span events, into a buffer.
pub fn capture() -> Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let buf = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&buf);
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
                .with_writer(move || Writer(Arc::clone(&sink)))
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in this test binary");
            Capture(buf)
        })
        .clone()
}

/// The bytes of one direction of one connection.
type Stream = Arc<Mutex<Vec<u8>>>;

/// A TCP proxy that records each direction of each connection.
pub struct TeeProxy {
    addr: SocketAddr,
    wire: Arc<Mutex<Vec<Stream>>>,
}

impl TeeProxy {
    pub async fn start(target: SocketAddr) -> TeeProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let wire: Arc<Mutex<Vec<Stream>>> = Arc::default();
        let streams = Arc::clone(&wire);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let up = Arc::new(Mutex::new(Vec::new()));
                let down = Arc::new(Mutex::new(Vec::new()));
                streams
                    .lock()
                    .unwrap()
                    .extend([Arc::clone(&up), Arc::clone(&down)]);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(tee(cr, sw, up));
                tokio::spawn(tee(sr, cw, down));
            }
        });
        TeeProxy { addr, wire }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}/wsman", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The recorded bytes: one entry per direction of each connection.
    pub fn wire(&self) -> Vec<Vec<u8>> {
        self.wire
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.lock().unwrap().clone())
            .collect()
    }
}

async fn tee(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    record: Stream,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                record.lock().unwrap().extend_from_slice(&buf[..n]);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// Credential material, each with a label that says what it is (the label, not the
/// secret, goes into a failure message).
#[derive(Default)]
pub struct Secrets {
    needles: Vec<(String, String)>,
    tokens: usize,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `Debug` of a byte slice, without the brackets: `1, 2, 3`.
fn debug_list(bytes: &[u8]) -> String {
    let s = format!("{bytes:?}");
    s[1..s.len() - 1].to_string()
}

impl Secrets {
    /// The password, and its NT hash (MD4 of the UTF-16LE password) in hex and as bytes.
    pub fn of_password(password: &str) -> Secrets {
        let mut s = Secrets::default();
        s.push("the password", password.to_string());
        let utf16: Vec<u8> = password
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes())
            .collect();
        let nt = Md4::digest(&utf16);
        s.push("the NT hash (hex)", hex(&nt));
        s.push("the NT hash (HEX)", hex(&nt).to_uppercase());
        s.push("the NT hash (bytes)", debug_list(&nt));
        s.push(
            "the NT hash (base64)",
            base64::engine::general_purpose::STANDARD.encode(nt),
        );
        s
    }

    fn push(&mut self, label: &str, needle: String) {
        self.needles.push((label.to_string(), needle));
    }

    /// A raw token: base64, hex, and windows of it as hex and as `Debug` bytes (a log
    /// line may hold part of a token, or a token inside a larger buffer).
    pub fn add_token(&mut self, kind: &str, raw: &[u8]) {
        self.tokens += 1;
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        self.push(&format!("a {kind} token (base64)"), b64);
        self.push(&format!("a {kind} token (hex)"), hex(raw));
        self.push(&format!("a {kind} token (HEX)"), hex(raw).to_uppercase());
        const WINDOW: usize = 12;
        for start in (0..raw.len().saturating_sub(WINDOW)).step_by(WINDOW / 2) {
            let w = &raw[start..start + WINDOW];
            // Only windows distinctive enough not to match by chance (not runs of zeros).
            if w.iter().collect::<BTreeSet<_>>().len() < 8 {
                continue;
            }
            self.push(
                &format!("{WINDOW} bytes of a {kind} token (bytes)"),
                debug_list(w),
            );
            self.push(&format!("{WINDOW} bytes of a {kind} token (hex)"), hex(w));
            self.push(
                &format!("{WINDOW} bytes of a {kind} token (HEX)"),
                hex(w).to_uppercase(),
            );
        }
    }

    /// The tokens of every `Authorization` and `WWW-Authenticate` header on the wire.
    pub fn add_wire(&mut self, streams: &[Vec<u8>]) {
        for stream in streams {
            let text = String::from_utf8_lossy(stream);
            for line in text.lines() {
                let lower = line.to_ascii_lowercase();
                let value = if lower.starts_with("authorization:")
                    || lower.starts_with("www-authenticate:")
                {
                    line.split_once(':').map(|(_, v)| v.trim()).unwrap_or("")
                } else {
                    continue;
                };
                let mut words = value.split_whitespace();
                let (Some(scheme), Some(token)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(token) else {
                    continue;
                };
                self.push(&format!("a {scheme} header value"), token.to_string());
                self.add_token(scheme, &raw);
            }
        }
    }

    /// Every byte of `streams` (e.g. KDC messages) as token material.
    pub fn add_raw_streams(&mut self, kind: &str, streams: &[Vec<u8>]) {
        for stream in streams.iter().filter(|s| !s.is_empty()) {
            self.add_token(kind, stream);
        }
    }

    /// Tokens added so far.
    pub fn tokens(&self) -> usize {
        self.tokens
    }

    /// Panics naming the first kind of credential material found in `text`.
    pub fn assert_absent_from(&self, text: &str) {
        assert!(
            text.len() > 1000,
            "the capture is nearly empty ({} bytes): is tracing captured at all?",
            text.len()
        );
        for (label, needle) in &self.needles {
            assert!(
                !text.contains(needle.as_str()),
                "{label} appears in the TRACE log capture"
            );
        }
    }
}
