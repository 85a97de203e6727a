//! One channel: an owned HTTP/1.1 connection (TCP or TLS) and its security context.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;
use tokio_util::either::Either;

use super::{Stats, TransportConfig};
use crate::error::{Error, Result};

const EXCERPT_BYTES: usize = 256;
const SOAP_CONTENT_TYPE: &str = "application/soap+xml;charset=UTF-8";

/// A response the SOAP layer should read: 200, or a status that carries a SOAP body
/// (faults come with 500, some with 400).
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub status: u16,
    pub body: Bytes,
}

struct Conn {
    sender: SendRequest<Full<Bytes>>,
    task: JoinHandle<()>,
    requests: u64,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Close the socket at once: an abandoned long poll must not linger.
        self.task.abort();
    }
}

pub(crate) struct Channel {
    config: Arc<TransportConfig>,
    conn: Option<Conn>,
    in_flight: bool,
    stats: Arc<Stats>,
    _permit: OwnedSemaphorePermit,
}

fn excerpt(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(EXCERPT_BYTES)];
    String::from_utf8_lossy(cut).trim().to_string()
}

fn looks_like_soap(content_type: Option<&HeaderValue>, body: &[u8]) -> bool {
    let ct_soap = content_type
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("soap+xml"));
    ct_soap || (body.trim_ascii_start().starts_with(b"<") && memfind(body, b"Envelope"))
}

fn memfind(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).take(4096).any(|w| w == needle)
}

impl Channel {
    pub(crate) fn new(config: Arc<TransportConfig>, permit: OwnedSemaphorePermit, stats: Arc<Stats>) -> Channel {
        Channel {
            config,
            conn: None,
            in_flight: false,
            stats,
            _permit: permit,
        }
    }

    /// Idle and its connection (if any) still open.
    pub(crate) fn is_usable(&self) -> bool {
        !self.in_flight && self.conn.as_ref().is_none_or(|c| !c.sender.is_closed())
    }

    /// May go back to the pool: no request half-done.
    pub(crate) fn is_reusable(&self) -> bool {
        self.is_usable()
    }

    async fn connect(&mut self) -> Result<()> {
        let ep = &self.config.endpoint;
        let authority = ep.authority();
        let tcp = tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(&authority))
            .await
            .map_err(|_| Error::Connect {
                endpoint: authority.clone(),
                message: format!("timed out after {:?}", self.config.connect_timeout),
            })?
            .map_err(|e| Error::Connect {
                endpoint: authority.clone(),
                message: e.to_string(),
            })?;
        let _ = tcp.set_nodelay(true);
        let io = match &self.config.tls {
            Some(tls) => {
                let name = super::tls::server_name(&ep.host)?;
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(tls));
                let stream = tokio::time::timeout(self.config.connect_timeout, connector.connect(name, tcp))
                    .await
                    .map_err(|_| Error::Tls("TLS handshake timed out".into()))?
                    .map_err(|e| Error::Tls(e.to_string()))?;
                Either::Right(stream)
            }
            None => Either::Left(tcp),
        };
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| Error::Connection(e.to_string()))?;
        let task = tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        self.conn = Some(Conn {
            sender,
            task,
            requests: 0,
        });
        Ok(())
    }

    fn build_request(&self, body: Bytes, unauthenticated_identify: bool) -> Result<Request<Full<Bytes>>> {
        let ep = &self.config.endpoint;
        let mut b = Request::post(ep.path.as_str())
            .header(header::HOST, ep.authority())
            .header(header::CONTENT_TYPE, SOAP_CONTENT_TYPE)
            .header(header::USER_AGENT, concat!("tokio-winrm/", env!("CARGO_PKG_VERSION")))
            .header(header::CONTENT_LENGTH, body.len());
        if unauthenticated_identify {
            b = b.header("WSMANIDENTIFY", "unauthenticated");
        } else if let Some(v) = self.config.auth.basic_header() {
            b = b.header(header::AUTHORIZATION, v);
        }
        b.body(Full::new(body)).map_err(|e| Error::Config(e.to_string()))
    }

    /// Sends one SOAP request and reads the whole (capped) response.
    pub(crate) async fn send(&mut self, body: Bytes, unauthenticated_identify: bool) -> Result<HttpResponse> {
        for attempt in 0..2 {
            if self.conn.as_ref().is_none_or(|c| c.sender.is_closed()) {
                self.conn = None;
                self.connect().await?;
            }
            let req = self.build_request(body.clone(), unauthenticated_identify)?;
            let conn = self.conn.as_mut().expect("connected above");
            let reused = conn.requests > 0;
            conn.requests += 1;
            self.in_flight = true;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            if conn.sender.ready().await.is_err() {
                self.in_flight = false;
                self.conn = None;
                if reused && attempt == 0 {
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                return Err(Error::Connection("connection closed".into()));
            }
            let resp = match conn.sender.send_request(req).await {
                Ok(r) => r,
                Err(e) => {
                    self.in_flight = false;
                    self.conn = None;
                    // A reused connection the server closed between requests: the request
                    // never reached it, so send it once more on a fresh connection.
                    if reused && attempt == 0 && (e.is_canceled() || e.is_closed() || e.is_incomplete_message()) {
                        self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(error = %e, "reused connection was closed; reconnecting");
                        continue;
                    }
                    return Err(Error::Connection(e.to_string()));
                }
            };
            let result = self.read_response(resp).await;
            self.in_flight = false;
            if result.is_err() {
                self.conn = None;
            }
            return result;
        }
        Err(Error::Connection("connection closed twice".into()))
    }

    async fn read_response(&mut self, resp: http::Response<hyper::body::Incoming>) -> Result<HttpResponse> {
        let status = resp.status().as_u16();
        let limit = self.config.max_response_bytes;
        let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
        let offered: Vec<String> = resp
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let declared = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let mut body = resp.into_body();
        let mut buf = BytesMut::with_capacity(declared.map_or(8192, |d| d.min(limit as u64) as usize));
        let too_large = |buf: &BytesMut| Error::ResponseTooLarge {
            status,
            limit,
            excerpt: excerpt(buf),
        };
        if declared.is_some_and(|d| d > limit as u64) {
            if let Some(Ok(frame)) = body.frame().await
                && let Some(data) = frame.data_ref()
            {
                buf.extend_from_slice(&data[..data.len().min(EXCERPT_BYTES)]);
            }
            self.conn = None;
            return Err(too_large(&buf));
        }
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::Connection(format!("reading the response body: {e}")))?;
            if let Some(data) = frame.data_ref() {
                if buf.len() + data.len() > limit {
                    let room = EXCERPT_BYTES.saturating_sub(buf.len());
                    buf.extend_from_slice(&data[..data.len().min(room)]);
                    self.conn = None;
                    return Err(too_large(&buf));
                }
                buf.extend_from_slice(data);
            }
        }
        let body = buf.freeze();
        match status {
            200 => Ok(HttpResponse { status, body }),
            401 => Err(Error::Unauthorized { offered }),
            400 | 500 if looks_like_soap(content_type.as_ref(), &body) => Ok(HttpResponse { status, body }),
            _ => Err(Error::Http {
                status,
                excerpt: excerpt(&body),
            }),
        }
    }
}

/// The HTTP timeout of one request: the operation timeout plus a margin, so the server's
/// own timeout fault arrives before the client gives up.
pub(crate) fn http_timeout_for(operation_timeout: Duration, configured: Option<Duration>) -> Duration {
    configured.unwrap_or(operation_timeout + Duration::from_secs(10))
}
