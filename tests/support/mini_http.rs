//! A tiny scripted HTTP/1.1 server for integration tests: it reads each request
//! (request line, headers, a `Content-Length` body), records it, and answers with
//! whatever the test's handler says, byte for byte. Plain TCP or TLS.
//!
//! Include with `#[path = "support/mini_http.rs"] mod mini_http;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Captured {
    /// `POST`.
    pub method: String,
    /// The request target, e.g. `/wsman`.
    pub path: String,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Which accepted connection (0-based) carried it.
    pub connection: usize,
}

impl Captured {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What to do with one request.
pub enum Reply {
    /// Write these bytes, then keep the connection open for the next request.
    Bytes(Vec<u8>),
    /// Write these bytes, then close the connection.
    BytesThenClose(Vec<u8>),
    /// Never answer (the connection stays open until the server is dropped).
    Hang,
    /// Wait for this future, then do what it yields (lets a test hold a reply until
    /// other requests have been answered).
    Later(std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send>>),
}

/// A complete response with `Content-Length`.
pub fn response(
    status: u16,
    content_type: &str,
    body: &[u8],
    extra_headers: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        reason(status),
        body.len()
    );
    for (k, v) in extra_headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// A SOAP response (`application/soap+xml`) with `Content-Length`.
pub fn soap(status: u16, body: &str) -> Vec<u8> {
    response(
        status,
        "application/soap+xml;charset=UTF-8",
        body.as_bytes(),
        &[],
    )
}

/// A response with `Transfer-Encoding: chunked`, the body cut in `chunk`-byte pieces.
pub fn chunked(status: u16, content_type: &str, body: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\r\n",
        reason(status)
    )
    .into_bytes();
    for piece in body.chunks(chunk.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        401 => "Unauthorized",
        413 => "Request Entity Too Large",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

type Handler = dyn Fn(usize, &Captured) -> Reply + Send + Sync;

/// A running server; dropping it stops accepting and closes every connection.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Captured>>>,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Something that turns an accepted TCP stream into the stream to speak HTTP on.
pub type Acceptor = Arc<
    dyn Fn(
            tokio::net::TcpStream,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Box<dyn Io>>> + Send>>
        + Send
        + Sync,
>;

/// A bidirectional byte stream.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Server {
    /// Starts a plain-TCP server on 127.0.0.1:0. `handler(i, request)` gets the 0-based
    /// index of the request across all connections.
    pub async fn start(
        handler: impl Fn(usize, &Captured) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let plain: Acceptor =
            Arc::new(|tcp| Box::pin(async move { Some(Box::new(tcp) as Box<dyn Io>) }));
        Server::start_with(plain, handler).await
    }

    /// Starts a server whose accepted streams go through `acceptor` first (e.g. TLS).
    pub async fn start_with(
        acceptor: Acceptor,
        handler: impl Fn(usize, &Captured) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let (reqs, conns) = (Arc::clone(&requests), Arc::clone(&connections));
        let task = tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let conn_no = conns.fetch_add(1, Ordering::SeqCst);
                let (acceptor, handler, reqs) = (
                    Arc::clone(&acceptor),
                    Arc::clone(&handler),
                    Arc::clone(&reqs),
                );
                tasks.spawn(async move {
                    if let Some(io) = acceptor(tcp).await {
                        serve(io, conn_no, handler, reqs).await;
                    }
                });
            }
        });
        Server {
            addr,
            requests,
            connections,
            task,
        }
    }

    /// `http://127.0.0.1:PORT/wsman`.
    pub fn url(&self) -> String {
        format!("http://{}/wsman", self.addr)
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Captured> {
        self.requests.lock().expect("requests lock").clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn serve(
    mut io: Box<dyn Io>,
    conn_no: usize,
    handler: Arc<Handler>,
    reqs: Arc<Mutex<Vec<Captured>>>,
) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let Some(req) = read_request(&mut io, &mut buf, conn_no).await else {
            return;
        };
        let index = {
            let mut all = reqs.lock().expect("requests lock");
            all.push(req.clone());
            all.len() - 1
        };
        let mut reply = handler(index, &req);
        while let Reply::Later(later) = reply {
            reply = later.await;
        }
        match reply {
            Reply::Later(_) => return,
            Reply::Bytes(b) => {
                if io.write_all(&b).await.is_err() || io.flush().await.is_err() {
                    return;
                }
            }
            Reply::BytesThenClose(b) => {
                let _ = io.write_all(&b).await;
                let _ = io.flush().await;
                let _ = io.shutdown().await;
                return;
            }
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads one request; None on EOF or anything this little server does not speak.
async fn read_request(io: &mut Box<dyn Io>, buf: &mut Vec<u8>, conn_no: usize) -> Option<Captured> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let mut chunk = [0u8; 8192];
        let n = io.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let body_start = head_end + 4;
    while buf.len() < body_start + len {
        let mut chunk = [0u8; 8192];
        let n = io.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[body_start..body_start + len].to_vec();
    buf.drain(..body_start + len);
    Some(Captured {
        method,
        path,
        headers,
        body,
        connection: conn_no,
    })
}
