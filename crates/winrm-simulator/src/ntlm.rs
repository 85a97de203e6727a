//! The simulator's NTLM acceptor (sspi's server side) and message encryption: one
//! security context per TCP connection, as HTTP.sys and WinRM keep it.
//!
//! Windows behaviour modelled here:
//! - `WWW-Authenticate: Negotiate <token>` carries the CHALLENGE; raw NTLMSSP tokens
//!   under the `Negotiate` scheme are accepted (SPNEGO-wrapped tokens are not: the
//!   simulator answers them with a plain 401).
//! - A wrong password is a 401 with the bare `Negotiate` (and `Basic` when enabled).
//! - An AUTHENTICATE request with an empty body is answered 200 with an empty body
//!   (pywinrm and pypsrp set up encryption that way).
//! - After the handshake, requests on the same connection need no `Authorization`
//!   header; sealed ones (`multipart/encrypted`) are unsealed and their answers sealed.
//! - `AllowUnencrypted=false` (the default, as on Windows): a clear-text request on an
//!   NTLM-authenticated connection is refused with HTTP 500 and an empty body. Reports
//!   differ on what Windows sends here: pywinrm issue #129 (Kerberos) saw 500 with the
//!   event log naming an unencrypted message; packer issue #6205 (NTLM) saw 401s. The
//!   simulator sends 500 so that a client cannot mistake it for a credentials problem.
//!   Basic is governed by `allow_basic` alone (the simulator's test convenience).
//! - A sealed message that fails verification is refused with HTTP 400 and the context
//!   is dropped.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use super::body::SimBody;
use super::encryption::{self, SimSealing, empty};

use super::State;
use wsman_protocol::encryption as sealing;
use wsman_protocol::security::ntlm::{self as ctx, NtlmContext};

/// Switches shared by all connections of one simulator (test hooks).
#[derive(Debug, Default)]
pub(crate) struct Control {
    /// Contexts from an older epoch are forgotten (a 401 on their next request).
    epoch: AtomicU64,
    /// Flip a bit of the signature of the next sealed response.
    tamper_next: AtomicBool,
    /// Refuse every NTLM login from now on (a password changed or an account locked
    /// in mid-session).
    refuse_logins: AtomicBool,
}

impl Control {
    pub(crate) fn forget_contexts(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn tamper_next(&self) {
        self.tamper_next.store(true, Ordering::SeqCst);
    }

    pub(crate) fn refuse_logins(&self, yes: bool) {
        self.refuse_logins.store(yes, Ordering::SeqCst);
    }
}

/// The authenticated user of a request, stored in its extensions.
#[derive(Debug, Clone)]
pub(crate) struct NtlmUser(pub String);

struct Established {
    ctx: NtlmContext,
    user: String,
    epoch: u64,
}

impl SimSealing for NtlmContext {
    const CONTENT_TYPE: &'static str = sealing::SPNEGO_CONTENT_TYPE;

    fn split(body: &[u8]) -> Result<(usize, &[u8], &[u8]), String> {
        let p = sealing::parse(body).map_err(|e| e.to_string())?;
        Ok((p.original_len, p.signature, p.data))
    }

    fn open(
        &mut self,
        signature: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, wsman_protocol::security::SecurityError> {
        self.unseal(signature, data)
    }

    fn seal_framed(
        &mut self,
        plain: &[u8],
        tamper: &AtomicBool,
    ) -> Result<Bytes, wsman_protocol::security::SecurityError> {
        let (mut signature, sealed) = self.seal(plain)?;
        if tamper.swap(false, Ordering::SeqCst) {
            signature[6] ^= 0x01;
        }
        Ok(sealing::frame(plain.len(), &signature, &sealed))
    }
}

/// The NTLM state of one TCP connection.
#[derive(Default)]
pub(crate) struct Session {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    pending: Option<NtlmContext>,
    established: Option<Established>,
}

/// What [`authenticate`] decided.
pub(crate) enum Outcome {
    /// Answer with this response now.
    Respond(Response<SimBody>),
    /// Go on with this body; `sealed` says whether the answer must be sealed.
    Continue { body: Option<Bytes>, sealed: bool },
}

fn unauthorized(state: &State, token: Option<&[u8]>) -> Response<SimBody> {
    let mut resp = empty(StatusCode::UNAUTHORIZED);
    let h = resp.headers_mut();
    match token {
        Some(t) => {
            let v = format!(
                "Negotiate {}",
                base64::engine::general_purpose::STANDARD.encode(t)
            );
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.append(header::WWW_AUTHENTICATE, v);
            }
        }
        None => {
            state.counters.auth_failures.fetch_add(1, Ordering::SeqCst);
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
        }
    }
    resp
}

/// `Some(token)` for `Authorization: <scheme> <token>` (`Some(None)`: undecodable).
pub(super) fn auth_token(parts: &http::request::Parts, wanted: &str) -> Option<Option<Vec<u8>>> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case(wanted) {
        return None;
    }
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .ok(),
    )
}

/// Compares user names without their domain part (`DOMAIN\user`, `user@domain`).
fn same_user(a: &str, b: &str) -> bool {
    let bare = |s: &str| {
        let s = s.rsplit_once('\\').map_or(s, |(_, u)| u);
        s.split_once('@').map_or(s, |(u, _)| u).to_ascii_lowercase()
    };
    bare(a) == bare(b)
}

/// The NTLM step of a request: handshake legs, unsealing, the AllowUnencrypted check.
/// On success the authenticated user is put in the request's extensions and, for a
/// sealed request, its `Content-Type` becomes the original one.
pub(crate) fn authenticate(
    state: &State,
    session: &Session,
    parts: &mut http::request::Parts,
    body: Option<Bytes>,
) -> Outcome {
    let mut inner = session.inner.lock().unwrap_or_else(|p| p.into_inner());
    let epoch = state.ntlm.epoch.load(Ordering::SeqCst);
    if inner.established.as_ref().is_some_and(|e| e.epoch != epoch) {
        inner.established = None;
    }
    if let Some(token) = auth_token(parts, "Negotiate") {
        let Some(token) = token else {
            return Outcome::Respond(unauthorized(state, None));
        };
        match ctx::message_type(&token) {
            Some(1) => {
                inner.established = None;
                let mut server = NtlmContext::server();
                return match server.accept(&token, None) {
                    Ok(challenge) => {
                        inner.pending = Some(server);
                        Outcome::Respond(unauthorized(state, Some(&challenge)))
                    }
                    Err(_) => Outcome::Respond(unauthorized(state, None)),
                };
            }
            Some(3) => {
                let Some(mut server) = inner.pending.take() else {
                    return Outcome::Respond(unauthorized(state, None));
                };
                // A refused AUTHENTICATE is a failed logon (what counts toward a lockout).
                let failed = || {
                    state.counters.failed_logons.fetch_add(1, Ordering::SeqCst);
                    Outcome::Respond(unauthorized(state, None))
                };
                if state.ntlm.refuse_logins.load(Ordering::SeqCst) {
                    return failed();
                }
                let wire_user = ctx::authenticate_user(&token).unwrap_or_default();
                let Some((user, password)) = state
                    .config
                    .users
                    .iter()
                    .find(|(u, _)| same_user(u, &wire_user))
                else {
                    return failed();
                };
                if server.accept(&token, Some(password)).is_err() {
                    return failed();
                }
                state
                    .counters
                    .ntlm_handshakes
                    .fetch_add(1, Ordering::SeqCst);
                inner.established = Some(Established {
                    ctx: server,
                    user: user.clone(),
                    epoch,
                });
                if body.as_ref().is_some_and(Bytes::is_empty) {
                    return Outcome::Respond(empty(StatusCode::OK));
                }
            }
            _ => return Outcome::Respond(unauthorized(state, None)),
        }
    } else if parts.headers.contains_key(header::AUTHORIZATION) {
        // Basic (or another scheme): the server's own checks decide.
        return Outcome::Continue {
            body,
            sealed: false,
        };
    }
    let Some(est) = inner.established.as_mut() else {
        return Outcome::Continue {
            body,
            sealed: false,
        };
    };
    if !sealing::is_encrypted(encryption::content_type(parts)) {
        if !state.config.allow_unencrypted {
            return Outcome::Respond(empty(StatusCode::INTERNAL_SERVER_ERROR));
        }
        parts.extensions.insert(NtlmUser(est.user.clone()));
        return Outcome::Continue {
            body,
            sealed: false,
        };
    }
    let Some(raw) = body else {
        return Outcome::Continue {
            body: None,
            sealed: false,
        }; // too large: the 413 path
    };
    let counters = [
        &state.counters.sealed_messages,
        &state.counters.unseal_failures,
    ];
    match encryption::open_request(&mut est.ctx, parts, &est.user, &raw, counters) {
        Ok(plain) => Outcome::Continue {
            body: Some(plain),
            sealed: true,
        },
        Err(e) => {
            tracing::debug!(error = %e, "simulator: a sealed request failed verification");
            inner.established = None;
            Outcome::Respond(empty(StatusCode::BAD_REQUEST))
        }
    }
}

/// The NTLM user of a request, if [`authenticate`] found one.
pub(crate) fn user(parts: &http::request::Parts) -> Option<String> {
    parts.extensions.get::<NtlmUser>().map(|u| u.0.clone())
}

/// Seals the answer to a sealed request (a 401 or an empty body stays as it is; so
/// does any answer once the connection's context is gone).
pub(crate) async fn seal_response(
    state: &State,
    session: &Session,
    resp: Response<SimBody>,
) -> Response<SimBody> {
    encryption::seal_response(
        resp,
        &session.inner,
        |inner| inner.established.as_mut().map(|est| &mut est.ctx),
        true,
        &state.ntlm.tamper_next,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_compare_without_domains() {
        assert!(same_user("vagrant", "VAGRANT"));
        assert!(same_user("CORP\\vagrant", "vagrant"));
        assert!(same_user("vagrant", "vagrant@corp.example"));
        assert!(!same_user("vagrant", "alice"));
    }
}
