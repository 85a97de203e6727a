//! Message encryption as the simulator's NTLM and Kerberos acceptors share it: a sealed
//! request is parsed, unsealed and checked against its declared length, and the answer
//! to it is sealed with the same context. Each acceptor says how its context splits,
//! unseals and seals a message ([`SimSealing`]), which counters count it, and what a
//! failure does to the connection (the acceptor drops its context).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;

use super::body::SimBody;
use super::ntlm::NtlmUser;
use wsman_protocol::encryption as sealing;

/// A server security context that seals and unseals WinRM messages.
pub(super) trait SimSealing {
    /// The `Content-Type` of a message sealed with it.
    const CONTENT_TYPE: &'static str;
    /// Splits a sealed body: `(declared length, signature, sealed data)`.
    fn split(body: &[u8]) -> Result<(usize, &[u8], &[u8]), String>;
    /// Unseals and verifies a message.
    fn open(
        &mut self,
        signature: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, wsman_protocol::security::SecurityError>;
    /// Seals and frames `plain`; once sealed, if `tamper` is set it is cleared and a
    /// bit of the signature is flipped (a test hook).
    fn seal_framed(
        &mut self,
        plain: &[u8],
        tamper: &AtomicBool,
    ) -> Result<Bytes, wsman_protocol::security::SecurityError>;
}

/// The test hook of [`SimSealing::seal_framed`]: if `tamper` is set, clears it and
/// flips a bit of `byte` (a byte of the signature, when there is one).
pub(super) fn tamper_with(byte: Option<&mut u8>, tamper: &AtomicBool) {
    if tamper.swap(false, Ordering::SeqCst)
        && let Some(b) = byte
    {
        *b ^= 0x01;
    }
}

/// Splits a body sealed in the SPNEGO framing ([`sealing::parse`]): `(declared length,
/// signature, sealed data)`.
pub(super) fn split_spnego(body: &[u8]) -> Result<(usize, &[u8], &[u8]), String> {
    let p = sealing::parse(body).map_err(|e| e.to_string())?;
    Ok((p.original_len, p.signature, p.data))
}

/// A response with this status and an empty body.
pub(super) fn empty(status: StatusCode) -> Response<SimBody> {
    let mut resp = Response::new(SimBody::from(Bytes::new()));
    *resp.status_mut() = status;
    resp
}

/// The request's `Content-Type` (empty when it has none or it is not text).
pub(super) fn content_type(parts: &http::request::Parts) -> &str {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Unseals a sealed request body with `ctx` and checks its declared length, counting
/// the message in `unsealed` or `failed`. On success the request carries `user` and the
/// original (SOAP) `Content-Type`, and the plaintext is returned; the error says what
/// was wrong.
pub(super) fn open_request<C: SimSealing>(
    ctx: &mut C,
    parts: &mut http::request::Parts,
    user: &str,
    body: &[u8],
    [unsealed, failed]: [&AtomicU64; 2],
) -> Result<Bytes, String> {
    let opened = C::split(body).and_then(|(len, signature, data)| {
        let plain = ctx.open(signature, data).map_err(|e| e.to_string())?;
        if plain.len() == len {
            Ok(plain)
        } else {
            Err("length mismatch".to_string())
        }
    });
    let plain = match opened {
        Ok(plain) => plain,
        Err(e) => {
            failed.fetch_add(1, Ordering::SeqCst);
            return Err(e);
        }
    };
    unsealed.fetch_add(1, Ordering::SeqCst);
    parts.extensions.insert(NtlmUser(user.to_string()));
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(sealing::SOAP_TYPE),
    );
    Ok(Bytes::from(plain))
}

/// Seals the answer to a sealed request with the connection's context: the one
/// `context` finds in what `session` guards. A 401 or an empty body stays as it is; so
/// does any answer when there is no context and `clear_without_context` (NTLM), else
/// that is a 500 (Kerberos), as is a failure to seal.
pub(super) async fn seal_response<T, C: SimSealing>(
    resp: Response<SimBody>,
    session: &Mutex<T>,
    context: impl FnOnce(&mut T) -> Option<&mut C>,
    clear_without_context: bool,
    tamper: &AtomicBool,
) -> Response<SimBody> {
    if resp.status() == StatusCode::UNAUTHORIZED {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let plain = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    if plain.is_empty() {
        return Response::from_parts(parts, SimBody::from(plain));
    }
    let mut guard = session.lock().unwrap_or_else(|p| p.into_inner());
    let Some(ctx) = context(&mut guard) else {
        if clear_without_context {
            return Response::from_parts(parts, SimBody::from(plain));
        }
        return empty(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let Ok(sealed) = ctx.seal_framed(&plain, tamper) else {
        return empty(StatusCode::INTERNAL_SERVER_ERROR);
    };
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(C::CONTENT_TYPE),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, SimBody::from(sealed))
}
