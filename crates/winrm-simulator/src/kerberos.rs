//! The simulator's Kerberos acceptor: sspi's Kerberos server with
//! the service key from a keytab, one context per TCP connection, and Kerberos message
//! encryption (`application/HTTP-Kerberos-session-encrypted`, [MS-WSMV] §2.2.9.1).
//!
//! Behaviour, as Windows with `Service/Auth/Kerberos=true`:
//! - `Authorization: Kerberos <AP-REQ>` on an empty-bodied POST is answered 200 with
//!   `WWW-Authenticate: Kerberos <AP-REP>`; `Authorization: Negotiate <SPNEGO
//!   NegTokenInit>` with a Kerberos token first is answered 200 with `WWW-Authenticate:
//!   Negotiate <NegTokenResp>` (accept-completed, the AP-REP), and that connection's
//!   messages are then framed as `application/HTTP-SPNEGO-session-encrypted`; a token that does not verify (wrong service
//!   key, replay, expired ticket) or names an unknown user gets 401.
//! - After the handshake, requests on that connection need no `Authorization`; sealed
//!   ones are unsealed and their answers sealed; a clear-text one is refused with 500
//!   unless `allow_unencrypted`; one that fails verification gets 400 and the context
//!   is dropped.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use super::State;
use super::body::SimBody;
use super::encryption::{self, SimSealing, empty};
use super::ntlm::NtlmUser;
use wsman_protocol::encryption as sealing;
use wsman_protocol::security::kerberos::{self as krb, KerberosContext};

/// The service principal and its long-term key, for the simulator's acceptor.
#[derive(Clone)]
pub struct SimKerberos {
    service: Vec<String>,
    key: Vec<u8>,
}

impl std::fmt::Debug for SimKerberos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimKerberos")
            .field("service", &self.service.join("/"))
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The aes256-cts-hmac-sha1-96 encryption type (RFC 3962).
const AES256_CTS_HMAC_SHA1_96: u16 = 18;

impl SimKerberos {
    /// An acceptor for `service` (`HTTP/host`, without the realm) with its
    /// aes256-cts-hmac-sha1-96 key.
    pub fn new(service: &str, key: Vec<u8>) -> SimKerberos {
        SimKerberos {
            service: service.split('/').map(str::to_string).collect(),
            key,
        }
    }

    /// Reads the newest aes256-cts-hmac-sha1-96 key of `service` (`HTTP/host`, without
    /// the realm) from an MIT keytab file (format 0x502).
    ///
    /// # Errors
    /// When the file cannot be read, is not a keytab, or holds no such key.
    pub fn from_keytab(path: impl AsRef<Path>, service: &str) -> std::io::Result<SimKerberos> {
        let data = std::fs::read(path)?;
        let key = keytab_key(&data, service).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("no aes256-cts-hmac-sha1-96 key for {service} in the keytab"),
            )
        })?;
        Ok(SimKerberos::new(service, key))
    }
}

/// A keytab reader over a byte slice: never panics.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn counted(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

/// The key of the entry for `service` with the highest version number.
fn keytab_key(data: &[u8], service: &str) -> Option<Vec<u8>> {
    let mut r = Reader(data);
    if r.u16()? != 0x0502 {
        return None;
    }
    let mut best: Option<(u32, Vec<u8>)> = None;
    while !r.0.is_empty() {
        let size = r.u32()? as i32;
        let entry = r.take(size.unsigned_abs() as usize)?;
        if size <= 0 {
            continue; // a hole
        }
        let mut e = Reader(entry);
        let parse = |e: &mut Reader<'_>| -> Option<(String, u32, u16, Vec<u8>)> {
            let n = e.u16()?;
            let _realm = e.counted()?;
            let mut parts = Vec::new();
            for _ in 0..n {
                parts.push(String::from_utf8_lossy(e.counted()?).into_owned());
            }
            let _name_type = e.u32()?;
            let _timestamp = e.u32()?;
            let vno8 = u32::from(e.take(1)?[0]);
            let enctype = e.u16()?;
            let key = e.counted()?.to_vec();
            let vno = if e.0.len() >= 4 { e.u32()? } else { vno8 };
            Some((parts.join("/"), vno, enctype, key))
        };
        let Some((name, vno, enctype, key)) = parse(&mut e) else {
            continue;
        };
        if name.eq_ignore_ascii_case(service)
            && enctype == AES256_CTS_HMAC_SHA1_96
            && best.as_ref().is_none_or(|(v, _)| vno > *v)
        {
            best = Some((vno, key));
        }
    }
    best.map(|(_, k)| k)
}

/// Kerberos counters shared by all connections of one simulator.
#[derive(Debug, Default)]
pub(crate) struct Control {
    pub handshakes: AtomicU64,
    pub sealed_messages: AtomicU64,
    pub failures: AtomicU64,
    /// Of the handshakes, those that came SPNEGO-wrapped under `Negotiate`.
    pub spnego_handshakes: AtomicU64,
    /// Flip a bit of the signature of the next sealed response.
    pub tamper_next: AtomicBool,
}

struct Established {
    ctx: SimKrb,
    user: String,
}

/// A connection's Kerberos context, and how its messages are framed: under the
/// `Kerberos` scheme `application/HTTP-Kerberos-session-encrypted`, under `Negotiate`
/// (SPNEGO) `application/HTTP-SPNEGO-session-encrypted`, as Windows does.
enum SimKrb {
    Raw(KerberosContext),
    Spnego(SpnegoKerberos),
}

/// A Kerberos context negotiated through SPNEGO: the same wrap tokens, SPNEGO framing.
struct SpnegoKerberos(KerberosContext);

impl SimSealing for SpnegoKerberos {
    const CONTENT_TYPE: &'static str = sealing::SPNEGO_CONTENT_TYPE;

    fn split(body: &[u8]) -> Result<(usize, &[u8], &[u8]), String> {
        encryption::split_spnego(body)
    }

    fn open(
        &mut self,
        signature: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, wsman_protocol::security::SecurityError> {
        self.0.unseal(signature, data)
    }

    fn seal_framed(
        &mut self,
        plain: &[u8],
        tamper: &AtomicBool,
    ) -> Result<Bytes, wsman_protocol::security::SecurityError> {
        let (mut signature, sealed) = self.0.seal(plain)?;
        encryption::tamper_with(signature.last_mut(), tamper);
        Ok(sealing::frame(plain.len(), &signature, &sealed))
    }
}

impl SimSealing for KerberosContext {
    const CONTENT_TYPE: &'static str = krb::KERBEROS_CONTENT_TYPE;

    fn split(body: &[u8]) -> Result<(usize, &[u8], &[u8]), String> {
        krb::parse(body)
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
        encryption::tamper_with(signature.last_mut(), tamper);
        Ok(krb::frame(plain.len(), &signature, &sealed))
    }
}

/// The Kerberos state of one TCP connection (carried in the request extensions).
#[derive(Default)]
pub(crate) struct Session {
    established: Mutex<Option<Established>>,
}

/// A refused AP-REQ (a failed logon).
fn refused(state: &State) -> Response<SimBody> {
    state.kerberos.failures.fetch_add(1, Ordering::SeqCst);
    state.counters.auth_failures.fetch_add(1, Ordering::SeqCst);
    state.counters.failed_logons.fetch_add(1, Ordering::SeqCst);
    let mut resp = empty(StatusCode::UNAUTHORIZED);
    for scheme in ["Negotiate", "Kerberos"] {
        resp.headers_mut()
            .append(header::WWW_AUTHENTICATE, HeaderValue::from_static(scheme));
    }
    resp
}

/// The Kerberos step of a request. `Ok(response)` when Kerberos answered it (the
/// handshake, or a request on a Kerberos-authenticated connection, dispatched and
/// sealed here); `Err(body)` hands the request on to the NTLM/Basic path.
pub(super) async fn handle(
    state: &Arc<State>,
    parts: &mut http::request::Parts,
    body: Option<Bytes>,
) -> Result<Response<SimBody>, Option<Bytes>> {
    let (Some(config), Some(session)) = (
        state.config.kerberos.as_ref(),
        parts.extensions.get::<Arc<Session>>().cloned(),
    ) else {
        return Err(body);
    };
    let mut ap_rep = None;
    // `Kerberos <AP-REQ>`, or `Negotiate <SPNEGO NegTokenInit>` with a Kerberos token
    // (any other Negotiate token is NTLM's).
    let offered = match super::ntlm::auth_token(parts, "Kerberos") {
        Some(token) => Some((token, None)),
        None => match super::ntlm::auth_token(parts, "Negotiate") {
            Some(Some(token)) => {
                super::spnego::kerberos_token(&token).map(|(mech, token)| (Some(token), Some(mech)))
            }
            _ => None,
        },
    };
    if let Some((token, spnego_mech)) = offered {
        let Some(token) = token else {
            return Ok(refused(state));
        };
        let service: Vec<&str> = config.service.iter().map(String::as_str).collect();
        let accepted = KerberosContext::server(&service, config.key.clone())
            .and_then(|mut ctx| ctx.accept(&token).map(|(rep, user)| (ctx, rep, user)));
        let (ctx, rep, wire_user) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "simulator: Kerberos AP-REQ refused");
                return Ok(refused(state));
            }
        };
        let Some((user, _)) = state
            .config
            .users
            .iter()
            .find(|(u, _)| u.eq_ignore_ascii_case(&wire_user))
        else {
            return Ok(refused(state));
        };
        state.kerberos.handshakes.fetch_add(1, Ordering::SeqCst);
        let b64 = |t: &[u8]| base64::engine::general_purpose::STANDARD.encode(t);
        let (ctx, value) = match spnego_mech {
            Some(mech) => {
                state
                    .kerberos
                    .spnego_handshakes
                    .fetch_add(1, Ordering::SeqCst);
                let resp = super::spnego::accept_completed(mech, rep);
                (
                    SimKrb::Spnego(SpnegoKerberos(ctx)),
                    format!("Negotiate {}", b64(&resp)),
                )
            }
            None => (SimKrb::Raw(ctx), format!("Kerberos {}", b64(&rep))),
        };
        *session
            .established
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Established {
            ctx,
            user: user.clone(),
        });
        ap_rep = HeaderValue::from_str(&value).ok();
        if body.as_ref().is_some_and(Bytes::is_empty) {
            let mut resp = empty(StatusCode::OK);
            if let Some(v) = ap_rep {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            return Ok(resp);
        }
    } else if parts.headers.contains_key(header::AUTHORIZATION) {
        // Another scheme: a new login on this connection.
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
            // Over HTTPS the channel is encrypted (AllowUnencrypted governs plain HTTP).
            if state.tls.is_none() && !state.config.allow_unencrypted {
                return Ok(empty(StatusCode::INTERNAL_SERVER_ERROR));
            }
            parts.extensions.insert(NtlmUser(est.user.clone()));
            body
        } else {
            let Some(raw) = body else {
                return Ok(empty(StatusCode::PAYLOAD_TOO_LARGE));
            };
            let counters = [&state.kerberos.sealed_messages, &state.kerberos.failures];
            let opened = match &mut est.ctx {
                SimKrb::Raw(c) => encryption::open_request(c, parts, &est.user, &raw, counters),
                SimKrb::Spnego(c) => encryption::open_request(c, parts, &est.user, &raw, counters),
            };
            match opened {
                Ok(plain) => Some(plain),
                Err(e) => {
                    tracing::debug!(error = %e, "simulator: a Kerberos-sealed request failed");
                    *guard = None;
                    return Ok(empty(StatusCode::BAD_REQUEST));
                }
            }
        }
    };
    let mut resp = super::server::check_and_dispatch(state, parts, body).await;
    if sealed
        && resp
            .extensions()
            .get::<super::server::DropConnection>()
            .is_none()
    {
        // Sealed with the connection's context; an answer once that is gone is a 500.
        let spnego = matches!(
            session
                .established
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map(|e| &e.ctx),
            Some(SimKrb::Spnego(_))
        );
        let tamper = &state.kerberos.tamper_next;
        resp = if spnego {
            encryption::seal_response(
                resp,
                &session.established,
                |est| match est.as_mut().map(|est| &mut est.ctx) {
                    Some(SimKrb::Spnego(c)) => Some(c),
                    _ => None,
                },
                false,
                tamper,
            )
            .await
        } else {
            encryption::seal_response(
                resp,
                &session.established,
                |est| match est.as_mut().map(|est| &mut est.ctx) {
                    Some(SimKrb::Raw(c)) => Some(c),
                    _ => None,
                },
                false,
                tamper,
            )
            .await
        };
    }
    if let Some(v) = ap_rep {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &[&str], vno: u8, enctype: u16, key: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        e.extend_from_slice(&(name.len() as u16).to_be_bytes());
        for s in std::iter::once(&"TOKIO.TEST").chain(name) {
            e.extend_from_slice(&(s.len() as u16).to_be_bytes());
            e.extend_from_slice(s.as_bytes());
        }
        e.extend_from_slice(&1u32.to_be_bytes());
        e.extend_from_slice(&0u32.to_be_bytes());
        e.push(vno);
        e.extend_from_slice(&enctype.to_be_bytes());
        e.extend_from_slice(&(key.len() as u16).to_be_bytes());
        e.extend_from_slice(key);
        let mut out = (e.len() as u32).to_be_bytes().to_vec();
        out.extend(e);
        out
    }

    #[test]
    fn keytab_entries() {
        let mut kt = vec![5u8, 2];
        kt.extend(entry(&["HTTP", "localhost"], 1, 18, &[1; 32]));
        kt.extend(entry(&["HTTP", "localhost"], 3, 17, &[2; 16]));
        kt.extend(entry(&["HTTP", "localhost"], 2, 18, &[3; 32]));
        kt.extend(entry(&["HTTP", "other"], 9, 18, &[4; 32]));
        assert_eq!(keytab_key(&kt, "HTTP/localhost"), Some(vec![3; 32]));
        assert_eq!(keytab_key(&kt, "HTTP/nope"), None);
        for cut in 0..kt.len() {
            let _ = keytab_key(&kt[..cut], "HTTP/localhost"); // never panics
        }
        assert_eq!(keytab_key(b"\x05\x01", "HTTP/localhost"), None);
    }
}
