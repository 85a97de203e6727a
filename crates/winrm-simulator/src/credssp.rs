//! The simulator's CredSSP acceptor ([MS-CSSP]; `SimConfig::credssp`): sspi's CredSSP
//! server with a rustls server over memory buffers as the inner TLS channel, SPNEGO
//! (NTLM) or raw NTLM inside it, one context per TCP connection, and CredSSP message
//! encryption (`application/HTTP-CredSSP-session-encrypted`, [MS-WSMV] §2.2.9.1.3).
//!
//! Behaviour, as Windows with `Service/Auth/CredSSP=true`:
//! - A request without credentials gets 401 offering `CredSSP` (beside `Negotiate`).
//! - Each leg is `Authorization: CredSSP <token>` answered 401 with
//!   `WWW-Authenticate: CredSSP <token>` until the client sends its `TSCredentials`
//!   (the delegation); that request is then served (an empty body: 200, empty).
//! - A wrong password is one failed logon: 401 with the bare `CredSSP`.
//! - Afterwards, requests on that connection need no `Authorization`; encrypted ones
//!   (`multipart/encrypted`, or `multipart/x-multi-encrypted` in 16 KiB parts) are
//!   decrypted, and their answers encrypted the same way (several parts past 16 KiB);
//!   a clear-text one is served as over HTTPS, unless the simulator is on plain HTTP
//!   and `allow_unencrypted` is false (then 500). A part that fails decryption is 400
//!   and the context is dropped.
//!
//! Accounts: each of `SimConfig::users` as `user`, `SIM\user` or `user@sim.test`.
//!
//! The inner TLS identity is a built-in self-signed RSA certificate
//! (`credssp_identity.pem`, like the one WinRM's CredSSP makes for itself; RSA because
//! pywinrm's CredSSP binds PKCS#1 keys only). Its private key is a test key of this
//! simulator and protects nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use super::State;
use super::body::SimBody;
use super::encryption::{self, empty};
use super::ntlm::NtlmUser;
use wsman_protocol::encryption as sealing;
use wsman_protocol::security::credssp::{
    Accounts, CredSspServerContext, Delegated, ServerFailure, ServerStep, ServerTls, TRAILER_LEN,
};

const IDENTITY: &[u8] = include_bytes!("credssp_identity.pem");

/// Counters and the record of delegations, shared by all connections.
#[derive(Default)]
pub(crate) struct Control {
    pub handshakes: AtomicU64,
    pub sealed_messages: AtomicU64,
    pub failures: AtomicU64,
    /// Requests and responses encrypted in more than one part.
    pub multi_part_requests: AtomicU64,
    pub multi_part_responses: AtomicU64,
    /// Flip a bit of the next encrypted response (a test hook).
    pub tamper_next: std::sync::atomic::AtomicBool,
    pub delegations: Mutex<Vec<Delegated>>,
    tls: Option<ServerTls>,
}

impl Control {
    /// The acceptor's state; `enabled`: build the inner TLS identity.
    pub(crate) fn new(enabled: bool) -> std::io::Result<Control> {
        let tls = if enabled {
            let chain = CertificateDer::pem_slice_iter(IDENTITY)
                .collect::<Result<Vec<_>, _>>()
                .map_err(std::io::Error::other)?;
            let key = PrivateKeyDer::from_pem_slice(IDENTITY).map_err(std::io::Error::other)?;
            Some(
                wsman_protocol::security::credssp::server_config(chain, key)
                    .map_err(std::io::Error::other)?,
            )
        } else {
            None
        };
        Ok(Control {
            tls,
            ..Control::default()
        })
    }
}

struct Established {
    ctx: CredSspServerContext,
    user: String,
}

/// The CredSSP state of one TCP connection.
#[derive(Default)]
pub(crate) struct Session {
    pending: Mutex<Option<CredSspServerContext>>,
    established: Mutex<Option<Established>>,
}

fn challenge(token: &[u8]) -> Response<SimBody> {
    let mut resp = empty(StatusCode::UNAUTHORIZED);
    let v = format!(
        "CredSSP {}",
        base64::engine::general_purpose::STANDARD.encode(token)
    );
    if let Ok(v) = HeaderValue::from_str(&v) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

fn refused(state: &State) -> Response<SimBody> {
    state.counters.auth_failures.fetch_add(1, Ordering::SeqCst);
    state.credssp.failures.fetch_add(1, Ordering::SeqCst);
    let mut resp = empty(StatusCode::UNAUTHORIZED);
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("CredSSP"),
    );
    resp
}

/// The accounts as a client may name them: `user`, `SIM\user` (the simulator's machine
/// name, as a standalone Windows host takes its own name as the domain) and
/// `user@sim.test` (its DNS suffix); a user configured with a domain, as configured.
fn accounts(state: &State) -> Accounts {
    let mut all = Vec::new();
    for (user, password) in &state.config.users {
        if user.contains('\\') || user.contains('@') {
            all.push((user.clone(), password.clone()));
        } else {
            for name in [
                user.clone(),
                format!("SIM\\{user}"),
                format!("{user}@sim.test"),
            ] {
                all.push((name, password.clone()));
            }
        }
    }
    Accounts(all)
}

/// Compares user names without their domain part.
fn same_user(a: &str, b: &str) -> bool {
    let bare = |s: &str| {
        let s = s.rsplit_once('\\').map_or(s, |(_, u)| u);
        s.split_once('@').map_or(s, |(u, _)| u).to_ascii_lowercase()
    };
    bare(a) == bare(b)
}

/// The CredSSP step of a request: handshake legs, decryption, dispatch and encryption of
/// the answer. `Err(body)` when CredSSP has nothing to do with the request.
pub(super) async fn handle(
    state: &Arc<State>,
    parts: &mut http::request::Parts,
    body: Option<Bytes>,
) -> Result<Response<SimBody>, Option<Bytes>> {
    let (Some(tls), Some(session)) = (
        state.credssp.tls.as_ref(),
        parts.extensions.get::<Arc<Session>>().cloned(),
    ) else {
        return Err(body);
    };
    if let Some(token) = super::ntlm::auth_token(parts, "CredSSP") {
        let Some(token) = token else {
            return Ok(refused(state));
        };
        let mut pending = session.pending.lock().unwrap_or_else(|p| p.into_inner());
        let mut ctx = match pending.take() {
            Some(ctx) => ctx,
            None => {
                // A new logon on this connection.
                *session
                    .established
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = None;
                match CredSspServerContext::new(tls, accounts(state)) {
                    Ok(ctx) => ctx,
                    Err(_) => return Ok(empty(StatusCode::INTERNAL_SERVER_ERROR)),
                }
            }
        };
        match ctx.step(&token) {
            Ok(ServerStep::Continue(out)) => {
                *pending = Some(ctx);
                return Ok(challenge(&out));
            }
            Ok(ServerStep::Done(delegated)) => {
                drop(pending);
                let known = state.config.users.iter().find(|(u, p)| {
                    same_user(u, &delegated.user)
                        && secrecy::ExposeSecret::expose_secret(&delegated.password) == p
                });
                let Some((user, _)) = known else {
                    // Authenticated, but the delegated password is not the account's.
                    state.counters.failed_logons.fetch_add(1, Ordering::SeqCst);
                    return Ok(refused(state));
                };
                state.credssp.handshakes.fetch_add(1, Ordering::SeqCst);
                state
                    .credssp
                    .delegations
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(delegated);
                *session
                    .established
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(Established {
                    ctx,
                    user: user.clone(),
                });
                if body.as_ref().is_some_and(Bytes::is_empty) {
                    return Ok(empty(StatusCode::OK));
                }
            }
            Err(ServerFailure::Refused(e)) => {
                tracing::debug!(error = %e, "simulator: CredSSP logon refused");
                state.counters.failed_logons.fetch_add(1, Ordering::SeqCst);
                return Ok(refused(state));
            }
            Err(ServerFailure::Failed(e)) => {
                tracing::debug!(error = %e, "simulator: CredSSP exchange failed");
                return Ok(refused(state));
            }
        }
    } else if parts.headers.contains_key(header::AUTHORIZATION) {
        return Err(body);
    }
    let sealed = sealing::is_encrypted(encryption::content_type(parts));
    let body = {
        let mut guard = session
            .established
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let Some(est) = guard.as_mut() else {
            return Err(body);
        };
        if !sealed {
            if state.tls.is_none() && !state.config.allow_unencrypted {
                return Ok(empty(StatusCode::INTERNAL_SERVER_ERROR));
            }
            parts.extensions.insert(NtlmUser(est.user.clone()));
            body
        } else {
            let Some(raw) = body else {
                return Ok(empty(StatusCode::PAYLOAD_TOO_LARGE));
            };
            match open(&mut est.ctx, &raw) {
                Ok((plain, count)) => {
                    if count > 1 {
                        state
                            .credssp
                            .multi_part_requests
                            .fetch_add(1, Ordering::SeqCst);
                    }
                    state.credssp.sealed_messages.fetch_add(1, Ordering::SeqCst);
                    parts.extensions.insert(NtlmUser(est.user.clone()));
                    parts.headers.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static(sealing::SOAP_TYPE),
                    );
                    Some(Bytes::from(plain))
                }
                Err(e) => {
                    tracing::debug!(error = %e, "simulator: a CredSSP-encrypted request failed");
                    state.credssp.failures.fetch_add(1, Ordering::SeqCst);
                    *guard = None;
                    return Ok(empty(StatusCode::BAD_REQUEST));
                }
            }
        }
    };
    let resp = super::server::check_and_dispatch(state, parts, body).await;
    if !sealed
        || resp.status() == StatusCode::UNAUTHORIZED
        || resp
            .extensions()
            .get::<super::server::DropConnection>()
            .is_some()
    {
        return Ok(resp);
    }
    let (mut rparts, rbody) = resp.into_parts();
    let plain = rbody
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    if plain.is_empty() {
        return Ok(Response::from_parts(rparts, SimBody::from(plain)));
    }
    let mut guard = session
        .established
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let Some(est) = guard.as_mut() else {
        return Ok(empty(StatusCode::INTERNAL_SERVER_ERROR));
    };
    let Ok((content_type, mut sealed)) = seal(&mut est.ctx, &plain) else {
        return Ok(empty(StatusCode::INTERNAL_SERVER_ERROR));
    };
    if state.credssp.tamper_next.swap(false, Ordering::SeqCst) {
        // A bit of the first TLS record's ciphertext (after the framing header).
        let mut body = sealed.to_vec();
        if let Some(at) = body.windows(4).position(|w| w == TRAILER_LEN.to_le_bytes())
            && let Some(b) = body.get_mut(at + 4 + 5 + 8 + 2)
        {
            *b ^= 0x01;
        }
        sealed = Bytes::from(body);
    }
    if content_type == sealing::CREDSSP_MULTI_CONTENT_TYPE {
        state
            .credssp
            .multi_part_responses
            .fetch_add(1, Ordering::SeqCst);
    }
    rparts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    rparts.headers.remove(header::CONTENT_LENGTH);
    Ok(Response::from_parts(rparts, SimBody::from(sealed)))
}

/// Decrypts every part and checks each part's declared length.
/// Returns the plaintext and the number of parts.
fn open(ctx: &mut CredSspServerContext, body: &[u8]) -> Result<(Vec<u8>, usize), String> {
    let parts = sealing::parse_parts(body, sealing::CREDSSP_PROTOCOL).map_err(|e| e.to_string())?;
    let count = parts.len();
    let mut plain = Vec::new();
    for p in parts {
        let chunk = ctx.unseal(p.data).map_err(|e| e.to_string())?;
        if chunk.len() != p.original_len {
            return Err("length mismatch".into());
        }
        plain.extend_from_slice(&chunk);
    }
    Ok((plain, count))
}

/// Encrypts in 16 KiB parts: its content type and body.
fn seal(ctx: &mut CredSspServerContext, plain: &[u8]) -> Result<(&'static str, Bytes), String> {
    let mut sealed = Vec::new();
    for chunk in plain.chunks(sealing::CREDSSP_CHUNK) {
        sealed.push((chunk.len(), ctx.seal(chunk).map_err(|e| e.to_string())?));
    }
    let content_type = if sealed.len() > 1 {
        sealing::CREDSSP_MULTI_CONTENT_TYPE
    } else {
        sealing::CREDSSP_CONTENT_TYPE
    };
    let body = sealing::frame_parts(
        sealing::CREDSSP_PROTOCOL,
        sealed.iter().map(|(n, d)| (*n, TRAILER_LEN, &d[..])),
    );
    Ok((content_type, body))
}
