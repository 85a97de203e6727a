//! The simulator's HTTP side: accept loop, one hyper HTTP/1.1 connection per socket
//! (keep-alive on), the checks Windows' HTTP.sys and WinRM make before any SOAP is read
//! (path, method, Basic credentials, body size, content type), and the dispatch of a
//! parsed request to the resource handlers.

#![allow(
    clippy::result_large_err,
    reason = "SimFault (response.rs) is one per failed request; boxing it buys nothing"
)]

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use futures_util::FutureExt as _;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;

use super::body::SimBody;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use super::inject::Effect;
use super::response::SimFault;
use super::robust::{self, Admission, Cached};
use super::{SimRequest, State, config, enumeration, ntlm, winrs, wmi};
use crate::soap::envelope::XmlWriter;
use crate::soap::ns;

/// The content type of every SOAP answer.
pub(crate) const SOAP_CONTENT_TYPE: &str = "application/soap+xml;charset=UTF-8";
/// A request body over the limit is still read (and thrown away) up to this many bytes,
/// so the client reads the 413 instead of a reset; past it the connection is closed.
const DRAIN_CAP: usize = 64 * 1024 * 1024;
/// How long the server waits for the rest of a request body.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long open connections get to finish their request when the simulator stops.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);
/// How long a client gets to finish the TLS handshake (HTTPS mode).
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// `E_FAIL`, sent when a handler panics.
const E_FAIL: u32 = 0x8000_4005;

/// Serves connections from `listener` until `state.shutdown` is cancelled.
pub(crate) async fn serve(listener: TcpListener, state: Arc<State>) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = state.shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let id = state.counters.connections.fetch_add(1, Ordering::SeqCst) + 1;
                let _ = stream.set_nodelay(true);
                match state.tls.clone() {
                    None => {
                        tokio::spawn(serve_connection(
                            stream,
                            Arc::clone(&state),
                            ConnId(id),
                            None,
                        ));
                    }
                    Some(acceptor) => {
                        tokio::spawn(serve_tls(acceptor, stream, Arc::clone(&state), ConnId(id)));
                    }
                }
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Marks a response the connection must be closed instead of (an injected drop).
#[derive(Debug, Clone, Copy)]
pub(super) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injection")
    }
}

impl std::error::Error for DropConnection {}

/// The number of the connection a request came on (a request extension), for the
/// OperationMessages table's primary connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnId(pub u64);

/// HTTPS mode: the TLS handshake (under a timeout), then the connection, its requests
/// tagged with what the client's certificate maps to (src/tls.rs).
async fn serve_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    state: Arc<State>,
    conn_id: ConnId,
) {
    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "simulator TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!("simulator TLS handshake timed out");
            return;
        }
    };
    let client = state
        .config
        .tls
        .as_ref()
        .map(|t| super::tls::ClientCert::of(t, stream.get_ref().1.peer_certificates()));
    serve_connection(stream, state, conn_id, client).await;
}

async fn serve_connection<I>(
    stream: I,
    state: Arc<State>,
    conn_id: ConnId,
    client_cert: Option<super::tls::ClientCert>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let shutdown = state.shutdown.clone();
    let session = Arc::new(ntlm::Session::default()); // NTLM: one context per connection
    let kerberos = Arc::new(super::kerberos::Session::default()); // Kerberos: likewise
    let credssp = Arc::new(super::credssp::Session::default()); // CredSSP: likewise
    let svc = service_fn(move |req| {
        let state = Arc::clone(&state);
        let session = Arc::clone(&session);
        let mut req: Request<Incoming> = req;
        req.extensions_mut().insert(conn_id);
        req.extensions_mut().insert(Arc::clone(&kerberos));
        req.extensions_mut().insert(Arc::clone(&credssp));
        if let Some(c) = &client_cert {
            req.extensions_mut().insert(c.clone());
        }
        async move {
            let resp = handle(state, &session, req).await;
            if resp.extensions().get::<DropConnection>().is_some() {
                // An error from the service makes hyper close the connection unanswered.
                return Err(DropConnection);
            }
            Ok(resp)
        }
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        // A request read in full is answered even if the client has gone (as HTTP.sys
        // does): an abandoned Invoke may still run.
        .half_close(true)
        .serve_connection(TokioIo::new(stream), svc);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "simulator connection ended");
            }
        }
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
        }
    }
}

fn plain(status: StatusCode, text: &str) -> Response<SimBody> {
    let mut resp = Response::new(SimBody::from(Bytes::from(text.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain;charset=UTF-8"),
    );
    resp
}

fn soap(status: StatusCode, body: impl Into<SimBody>) -> Response<SimBody> {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SOAP_CONTENT_TYPE),
    );
    resp
}

fn fault_response(state: &State, fault: &SimFault, relates_to: Option<&str>) -> Response<SimBody> {
    state.counters.faults.fetch_add(1, Ordering::SeqCst);
    let status =
        StatusCode::from_u16(fault.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    soap(status, fault.to_envelope(relates_to))
}

fn unauthorized(state: &State) -> Response<SimBody> {
    state.counters.auth_failures.fetch_add(1, Ordering::SeqCst);
    let mut resp = plain(StatusCode::UNAUTHORIZED, "");
    let h = resp.headers_mut();
    h.append(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Negotiate"),
    );
    if state.config.allow_basic {
        h.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"WSMAN\""),
        );
    }
    if state.config.credssp {
        h.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("CredSSP"),
        );
    }
    resp
}

/// The request body, read whole; `None` when it exceeds `limit` (the rest is drained
/// when that is cheap). The flag says whether the body was read to its end.
async fn read_body(body: Incoming, limit: usize) -> (Option<Bytes>, bool) {
    let mut body = body;
    let mut buf = BytesMut::new();
    let mut seen = 0usize;
    let read = async {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            if let Some(data) = frame.data_ref() {
                seen = seen.saturating_add(data.len());
                if seen > DRAIN_CAP {
                    return false;
                }
                if seen <= limit {
                    buf.extend_from_slice(data);
                }
            }
        }
        true
    };
    let complete = tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .unwrap_or(false);
    if seen > limit {
        return (None, complete);
    }
    (Some(buf.freeze()), complete)
}

/// The user whose Basic credentials are valid, if any.
fn basic_user(state: &State, headers: &HeaderMap) -> Option<String> {
    if !state.config.allow_basic {
        return None;
    }
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("Basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    state
        .config
        .users
        .iter()
        .find(|(u, p)| u.eq_ignore_ascii_case(user) && p == password)
        .map(|(u, _)| u.clone())
}

/// The user a certificate logon maps to: the request asks for one (the `mutual`
/// `Authorization` header) on an HTTPS connection whose client certificate is mapped.
fn certificate_user(state: &State, parts: &http::request::Parts) -> Option<String> {
    if state.tls.is_none() || !super::tls::asks_for_certificate_logon(&parts.headers) {
        return None;
    }
    parts
        .extensions
        .get::<super::tls::ClientCert>()?
        .user
        .clone()
}

/// Whether the request tried a certificate logon with a certificate (a failed logon
/// when it is not mapped).
fn offers_certificate(parts: &http::request::Parts) -> bool {
    super::tls::asks_for_certificate_logon(&parts.headers)
        && parts
            .extensions
            .get::<super::tls::ClientCert>()
            .is_some_and(|c| c.presented)
}

/// Whether the request carries Basic credentials the server would check (a logon).
fn offers_basic(state: &State, headers: &HeaderMap) -> bool {
    state.config.allow_basic
        && headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("Basic"))
}

fn is_soap_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/soap+xml"))
}

/// Answers one HTTP request. Never panics: a panicking handler becomes a fault.
async fn handle(
    state: Arc<State>,
    session: &ntlm::Session,
    req: Request<Incoming>,
) -> Response<SimBody> {
    state.counters.requests.fetch_add(1, Ordering::SeqCst);
    let (mut parts, body) = req.into_parts();
    let (body, complete) = read_body(body, state.config.max_request_bytes).await;
    // CredSSP handshake, decryption and encryption: src/credssp.rs.
    let body = match super::credssp::handle(&state, &mut parts, body).await {
        Ok(mut resp) => {
            if !complete {
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            return resp;
        }
        Err(body) => body,
    };
    // Kerberos handshake, unsealing and sealing: src/sim/kerberos.rs.
    let body = match super::kerberos::handle(&state, &mut parts, body).await {
        Ok(mut resp) => {
            if !complete {
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            return resp;
        }
        Err(body) => body,
    };
    // NTLM/Negotiate handshake, unsealing and sealing: src/sim/ntlm.rs.
    let mut resp = match ntlm::authenticate(&state, session, &mut parts, body) {
        ntlm::Outcome::Respond(resp) => resp,
        ntlm::Outcome::Continue {
            body,
            sealed: false,
        } => check_and_dispatch(&state, &parts, body).await,
        ntlm::Outcome::Continue { body, sealed: true } => {
            let resp = check_and_dispatch(&state, &parts, body).await;
            if resp.extensions().get::<DropConnection>().is_some() {
                return resp;
            }
            ntlm::seal_response(&state, session, resp).await
        }
    };
    if let Some(ntlm::FinalToken(v)) = parts.extensions.get::<ntlm::FinalToken>() {
        // The request that completed a SPNEGO exchange: the acceptor's last token.
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, v.clone());
    }
    if !complete {
        // The rest of the body is still on the wire: this connection cannot go on.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

pub(super) async fn check_and_dispatch(
    state: &Arc<State>,
    parts: &http::request::Parts,
    body: Option<Bytes>,
) -> Response<SimBody> {
    if !parts.uri.path().eq_ignore_ascii_case("/wsman") {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    }
    if parts.method != Method::POST {
        let mut resp = plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    let user = ntlm::user(parts)
        .or_else(|| basic_user(state, &parts.headers))
        .or_else(|| certificate_user(state, parts));
    let unauthenticated_identify = state.config.allow_unauthenticated_identify
        && parts
            .headers
            .get("WSMANIDENTIFY")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("unauthenticated"));
    if user.is_none() && !unauthenticated_identify {
        if offers_basic(state, &parts.headers) || offers_certificate(parts) {
            state.counters.failed_logons.fetch_add(1, Ordering::SeqCst);
        }
        return unauthorized(state);
    }
    let Some(body) = body else {
        return plain(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    };
    if !is_soap_content_type(&parts.headers) {
        return plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported Media Type");
    }
    let req = match SimRequest::parse(&body) {
        Ok(r) => r,
        Err(f) => {
            if state.config.log_requests && user.is_some() {
                state.requests.record_refused(&body, &f.reason);
            }
            return fault_response(state, &f, None);
        }
    };
    if user.is_none() && !req.identify {
        // WSMANIDENTIFY: unauthenticated admits nothing but Identify.
        if offers_basic(state, &parts.headers) {
            state.counters.failed_logons.fetch_add(1, Ordering::SeqCst);
        }
        return unauthorized(state);
    }
    if state.config.log_requests {
        state.requests.record(&req, &body);
    }
    if req.identify {
        return soap(StatusCode::OK, identify_response(state, user.is_some()));
    }
    if let Some(effect) = state.injections.take(&req) {
        state.counters.injected.fetch_add(1, Ordering::SeqCst);
        match effect {
            Effect::Delay(d) => tokio::time::sleep(d).await,
            Effect::Fault(f) => return fault_response(state, &f, req.message_id.as_deref()),
            Effect::HttpStatus(code) => {
                let status =
                    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return plain(status, "");
            }
            Effect::Drop => {
                let mut resp = plain(StatusCode::INTERNAL_SERVER_ERROR, "");
                resp.extensions_mut().insert(DropConnection);
                return resp;
            }
        }
    }
    let user = user.unwrap_or_default();
    let mut req = req;
    match robust_operation(state, &mut req) {
        Some(id) => {
            let conn = parts.extensions.get::<ConnId>().map_or(0, |c| c.0);
            robust_respond(state, req, user, body.len(), id, conn).await
        }
        None => respond(state, &req, &user, body.len()).await,
    }
}

/// The OperationID of a request that takes part in Robust Connections: one that carries
/// it, for a shell (WinRS or PowerShell: PowerShell 3 and later rely on Robust
/// Connections for their sessions) or a CIM object, on a simulator that supports them.
fn robust_operation(state: &State, req: &mut SimRequest) -> Option<Arc<str>> {
    if !state.config.robust_connections {
        return None;
    }
    let uri = req.resource_uri.as_deref()?;
    if !(uri.starts_with(ns::SHELL) || uri.starts_with(ns::WMI_BASE) || winrs::psrp::is_ps_uri(uri))
    {
        return None;
    }
    // Taken: only the table and the echo need it from here on.
    req.operation_id.take().map(Arc::from)
}

/// Answers a request that carries an OperationID through the OperationMessages table
/// (src/sim/robust.rs). The request runs on a task of its own, so that it completes and
/// its response is kept even when the connection it came on is gone.
async fn robust_respond(
    state: &Arc<State>,
    req: SimRequest,
    user: String,
    body_len: usize,
    id: Arc<str>,
    conn: u64,
) -> Response<SimBody> {
    if let Some(seq) = req.sequence_id.as_deref()
        && seq.trim() != "1"
    {
        return fault_response(
            state,
            &SimFault::invalid_header("SequenceId", seq),
            req.message_id.as_deref(),
        );
    }
    match state.operations.admit(state, &id, req.retransmission, conn) {
        Admission::Reused => {
            state
                .counters
                .robust_refusals
                .fetch_add(1, Ordering::SeqCst);
            fault_response(
                state,
                &SimFault::invalid_header(
                    "OperationID",
                    "an OperationID in use, on a request not marked as a retransmission",
                ),
                req.message_id.as_deref(),
            )
        }
        Admission::Replay(slot) => {
            state.counters.robust_replays.fetch_add(1, Ordering::SeqCst);
            let Some(cached) = slot.response().await else {
                return fault_response(
                    state,
                    &SimFault::internal("The original request did not complete.", E_FAIL),
                    req.message_id.as_deref(),
                );
            };
            robust::ensure_echo(cached.response(), &id)
        }
        Admission::Run(completion) => {
            // The envelope is written with the echo (kept in the row with it).
            // A long poll (Receive, Pull) waits, often for as long as the network is
            // out: should its connection go, it goes on as a task of its own, so that it
            // completes and its response is kept. Other requests complete at once, in
            // place (nothing moved or boxed); should their connection drop in that
            // instant, the row has no response and a retransmission is refused with a
            // fault (never carried out twice).
            let resp = if matches!(req.action.as_str(), ns::action::RECEIVE | ns::action::PULL) {
                let (st, echo) = (Arc::clone(state), Arc::clone(&id));
                let run = async move {
                    let resp = super::response::ECHO
                        .scope(echo, respond(&st, &req, &user, body_len))
                        .await;
                    keep(completion, resp)
                };
                match robust::Detached::new(run).await {
                    Ok(resp) => resp,
                    Err(()) => return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
                }
            } else {
                let resp = super::response::ECHO
                    .scope(Arc::clone(&id), respond(state, &req, &user, body_len))
                    .await;
                keep(completion, resp)
            };
            robust::ensure_echo(resp, &id)
        }
    }
}

/// Keeps `resp` in its row of the OperationMessages table, and returns it.
fn keep(completion: robust::Completion, resp: Response<SimBody>) -> Response<SimBody> {
    let (parts, body) = resp.into_parts();
    completion.complete(Cached::of(&parts, &body));
    Response::from_parts(parts, body)
}

/// Carries out an authenticated, parsed request.
async fn respond(
    state: &Arc<State>,
    req: &SimRequest,
    user: &str,
    body_len: usize,
) -> Response<SimBody> {
    if let Some(kb) = state.winrm_config.max_envelope_size_kb()
        && body_len > (kb as usize).saturating_mul(1024)
    {
        return fault_response(
            state,
            &envelope_too_large(body_len, kb),
            req.message_id.as_deref(),
        );
    }
    let result = AssertUnwindSafe(dispatch(state, req, user))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            Err(SimFault::internal(
                "The simulator failed while handling the request.",
                E_FAIL,
            ))
        });
    match result {
        Ok(envelope) => soap(StatusCode::OK, envelope),
        Err(f) => fault_response(state, &f, req.message_id.as_deref()),
    }
}

/// A request larger than the live `MaxEnvelopeSizekb` ([MS-WSMV] §3.1.4.1.5).
fn envelope_too_large(len: usize, kb: u32) -> SimFault {
    let mut f = SimFault::new(
        "s:Sender",
        "w:EncodingLimit",
        format!(
            "The WS-Management service cannot process the request because the request packet ({len} bytes) is larger than the maximum envelope size of {kb} KB."
        ),
        Some(crate::soap::fault::code::ENCODING_LIMIT),
    );
    f.fault_detail =
        Some("http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/ServiceEnvelopeLimit".into());
    f
}

fn is_enumeration_action(action: &str) -> bool {
    [ns::action::ENUMERATE, ns::action::PULL, ns::action::RELEASE].contains(&action)
}

/// Routes a request by action and resource URI.
async fn dispatch(state: &Arc<State>, req: &SimRequest, user: &str) -> Result<SimBody, SimFault> {
    if is_enumeration_action(&req.action) {
        return enumeration::handle(state, req).await.map(SimBody::from);
    }
    let Some(uri) = req.resource_uri.as_deref() else {
        return Err(SimFault::missing_header("ResourceURI"));
    };
    if uri.starts_with(ns::SHELL) || winrs::psrp::is_ps_uri(uri) {
        return winrs::handle(state, req, user).await;
    }
    if config::is_config_uri(uri) {
        return config::handle(state, req).map(SimBody::from);
    }
    if uri.starts_with(ns::WMI_BASE) {
        return wmi::handle(state, req).map(SimBody::from);
    }
    Err(SimFault::not_found(uri))
}

/// The IdentifyResponse; SecurityProfiles only for an authenticated request, as Windows.
fn identify_response(state: &State, authenticated: bool) -> String {
    let mut w = XmlWriter::with_capacity(768);
    w.raw("<s:Envelope xml:lang=\"en-US\" xmlns:s=\"");
    w.raw(ns::SOAP);
    w.raw("\"><s:Header/><s:Body><wsmid:IdentifyResponse xmlns:wsmid=\"");
    w.raw(ns::IDENTITY);
    w.raw("\">");
    w.element("wsmid:ProtocolVersion", ns::WSMAN);
    w.element("wsmid:ProductVendor", "Microsoft Corporation");
    w.element("wsmid:ProductVersion", "OS: 10.0.20348 SP: 0.0 Stack: 3.0");
    if authenticated {
        w.raw("<wsmid:SecurityProfiles>");
        if state.config.allow_basic {
            w.element(
                "wsmid:SecurityProfileName",
                "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/basic",
            );
        }
        w.element(
            "wsmid:SecurityProfileName",
            "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/spnego-kerberos",
        );
        w.raw("</wsmid:SecurityProfiles>");
    }
    w.raw("</wsmid:IdentifyResponse></s:Body></s:Envelope>");
    w.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_soap_content_type(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/SOAP+xml; charset=utf-8"),
        );
        assert!(is_soap_content_type(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/encrypted;protocol=x"),
        );
        assert!(!is_soap_content_type(&h));
    }

    #[test]
    fn enumeration_actions() {
        assert!(is_enumeration_action(ns::action::PULL));
        assert!(!is_enumeration_action(ns::action::GET));
    }
}
