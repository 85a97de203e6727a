//! CredSSP on a channel ([MS-CSSP]; [`Auth::CredSsp`](crate::Auth::CredSsp)): the
//! exchange of `Authorization: CredSSP` tokens on empty-bodied POSTs (as pywinrm and
//! PowerShell do), ending with the delegation of the credentials, and then messages
//! encrypted with the inner TLS session as `multipart/encrypted`, or
//! `multipart/x-multi-encrypted` in parts of 16 KiB of plaintext when larger
//! ([MS-WSMV] §2.2.9.1.3). The security context is in
//! `wsman_protocol::security::credssp`; it dies with the connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, header};
use wsman_protocol::security::SecurityError;
use wsman_protocol::security::credssp::{ClientStep, CredSspClientContext};

use super::{
    Channel, Failure, HttpResponse, Raw, SOAP_CONTENT_TYPE, UNSENT_ATTEMPTS, classify,
    looks_like_soap, offered, unexpected_handshake_answer,
};
use crate::error::{Error, Result};
use crate::transport::sealing;

/// The token of a `WWW-Authenticate: CredSSP <base64>` header.
fn credssp_token(headers: &http::HeaderMap) -> Option<Vec<u8>> {
    headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("CredSSP") {
                return None;
            }
            base64::engine::general_purpose::STANDARD
                .decode(token.trim())
                .ok()
        })
}

fn credssp_header(token: &[u8]) -> Result<HeaderValue> {
    let value = format!(
        "CredSSP {}",
        base64::engine::general_purpose::STANDARD.encode(token)
    );
    let mut v = HeaderValue::from_str(&value).map_err(|e| Error::Auth(e.to_string()))?;
    v.set_sensitive(true);
    Ok(v)
}

/// Encrypts `plain` in parts of at most 16 KiB: the content type and the body.
fn seal(ctx: &mut CredSspClientContext, plain: &[u8]) -> Result<(&'static str, Bytes)> {
    let mut parts = Vec::with_capacity(plain.len() / sealing::CREDSSP_CHUNK + 1);
    for chunk in plain.chunks(sealing::CREDSSP_CHUNK) {
        parts.push((chunk.len(), ctx.seal(chunk)?));
    }
    let content_type = if parts.len() > 1 {
        sealing::CREDSSP_MULTI_CONTENT_TYPE
    } else {
        sealing::CREDSSP_CONTENT_TYPE
    };
    let trailer = ctx.trailer_len();
    let body = sealing::frame_parts(
        sealing::CREDSSP_PROTOCOL,
        parts.iter().map(|(n, d)| (*n, trailer, &d[..])),
    );
    Ok((content_type, body))
}

/// Decrypts every part of an encrypted body, checking each part's declared length.
fn open_parts(ctx: &mut CredSspClientContext, body: &[u8]) -> Result<Vec<u8>> {
    let parts = sealing::parse_parts(body, sealing::CREDSSP_PROTOCOL)
        .map_err(|e| Error::Auth(e.to_string()))?;
    let mut plain = Vec::with_capacity(parts.iter().map(|p| p.original_len).sum());
    for p in parts {
        let chunk = ctx.unseal(p.data)?;
        if chunk.len() != p.original_len {
            return Err(Error::Auth(format!(
                "CredSSP-encrypted part length {} does not match its OriginalContent Length {}",
                chunk.len(),
                p.original_len
            )));
        }
        plain.extend_from_slice(&chunk);
    }
    Ok(plain)
}

impl Channel {
    /// CredSSP: the exchange when the connection has no context (new, reconnected, or
    /// refused with 401 mid-session: once), then the request, encrypted per the policy
    /// under the context of this attempt (anew on every attempt).
    pub(super) async fn send_credssp(&mut self, plain: Bytes) -> Result<HttpResponse> {
        let seal_it = self.config.auth.seals(self.config.endpoint.https);
        let mut attempts = 0;
        let mut reauthenticated = false;
        loop {
            attempts += 1;
            self.ensure_connected().await?;
            let step = async {
                if self.conn.as_ref().is_some_and(|c| c.credssp.is_none()) {
                    self.credssp_handshake()
                        .await
                        .map_err(|f| Failure::Fatal(f.for_handshake()))?;
                }
                let req = if seal_it {
                    let ctx = self
                        .conn
                        .as_mut()
                        .and_then(|c| c.credssp.as_mut())
                        .ok_or_else(|| {
                            Error::State("no CredSSP context after the exchange".into())
                        })?;
                    let (content_type, body) = seal(ctx, &plain)?;
                    self.request(content_type, body, None, false)?
                } else {
                    self.request(SOAP_CONTENT_TYPE, plain.clone(), None, false)?
                };
                self.round_trip(req).await
            };
            let raw = match step.await {
                Ok(raw) => raw,
                Err(Failure::Unsent(e)) if attempts < UNSENT_ATTEMPTS => {
                    tracing::debug!(error = %e, "request not sent; encrypting it anew for a fresh connection");
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(f) => return Err(f.for_request()),
            };
            if raw.status == 401 {
                if let Some(c) = self.conn.as_mut() {
                    c.credssp = None;
                }
                if reauthenticated {
                    return Err(Error::Unauthorized {
                        offered: offered(&raw.headers),
                    });
                }
                reauthenticated = true;
                tracing::debug!("401 on a CredSSP channel; authenticating again");
                continue;
            }
            let result = self.open_credssp(raw, seal_it);
            if result.is_err() {
                // A failed decryption leaves the TLS session unusable.
                self.conn = None;
            }
            return result;
        }
    }

    /// Decrypts a CredSSP-encrypted response and judges it.
    fn open_credssp(&mut self, raw: Raw, sealed_request: bool) -> Result<HttpResponse> {
        let content_type = raw
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !sealing::is_encrypted(content_type) {
            if sealed_request
                && raw.status == 200
                && looks_like_soap(raw.headers.get(header::CONTENT_TYPE), &raw.body)
            {
                return Err(Error::Auth(
                    "the server answered an encrypted request in clear text".into(),
                ));
            }
            return classify(raw);
        }
        let ctx = self
            .conn
            .as_mut()
            .and_then(|c| c.credssp.as_mut())
            .ok_or_else(|| {
                Error::Auth("an encrypted response on a connection without CredSSP".into())
            })?;
        let plain = open_parts(ctx, &raw.body)?;
        let mut headers = raw.headers;
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SOAP_CONTENT_TYPE),
        );
        classify(Raw {
            status: raw.status,
            headers,
            body: Bytes::from(plain),
        })
    }

    /// The CredSSP exchange on the current connection: the inner TLS handshake, the
    /// SPNEGO (NTLM) legs, the public-key binding and the delegation, each token on an
    /// empty-bodied POST answered 401 with the server's token, the last (the delegated
    /// credentials) answered 200. A wrong password is refused with a bare 401 (or a
    /// failed exchange) once the NTLM AUTHENTICATE has gone: an error at once, and the
    /// client's logon gate is closed (see `logon.rs`): no further logon.
    async fn credssp_handshake(&mut self) -> Result<(), Failure> {
        let creds = self
            .config
            .auth
            .credssp_credentials()
            .ok_or_else(|| Error::State("CredSSP exchange without CredSSP credentials".into()))?
            .clone();
        let logon = Arc::clone(&self.config.logon);
        let _probe = logon.before_handshake().await?;
        tracing::debug!(user = %creds.user, "CredSSP logon: TLS ClientHello sent");
        let (mut ctx, mut token) =
            CredSspClientContext::new(&creds.user, &creds.password, &self.config.endpoint.host)
                .map_err(Error::from)?;
        let mut last = false;
        let mut legs = 0u32;
        loop {
            legs += 1;
            let req = self.request(
                SOAP_CONTENT_TYPE,
                Bytes::new(),
                Some(credssp_header(&token)?),
                false,
            )?;
            let raw = self.round_trip(req).await?;
            // Past the TLS handshake (the first two legs), a refusal is the verdict on
            // the credentials.
            let authenticating = legs > 2;
            match (raw.status, last) {
                (200, true) => break,
                (401, _) => {}
                _ => return Err(unexpected_handshake_answer(raw).into()),
            }
            let refusal = |logon: &super::super::Logon, e: Error| {
                if authenticating {
                    tracing::debug!("CredSSP logon refused");
                    logon.refused(&e);
                }
                e
            };
            let Some(answer) = credssp_token(&raw.headers).filter(|_| !last) else {
                let e = Error::Unauthorized {
                    offered: offered(&raw.headers),
                };
                return Err(refusal(&logon, e).into());
            };
            // A refusal that arrived meanwhile (another connection's) stops this logon.
            logon.check()?;
            match ctx.step(&answer) {
                Ok(ClientStep::Continue(t)) => token = t,
                Ok(ClientStep::Final(t)) => {
                    token = t;
                    last = true;
                }
                Err(SecurityError::Refused(why)) => {
                    // A wrong password, said in the exchange (NTSTATUS in a TSRequest).
                    tracing::debug!(reason = %why, "CredSSP logon refused in the exchange");
                    let e = Error::Unauthorized {
                        offered: offered(&raw.headers),
                    };
                    return Err(refusal(&logon, e).into());
                }
                Err(e) => return Err(refusal(&logon, Error::from(e)).into()),
            }
        }
        logon.succeeded();
        tracing::debug!("CredSSP logon accepted, credentials delegated");
        if let Some(c) = self.conn.as_mut() {
            c.credssp = Some(Box::new(ctx));
        }
        self.stats.handshakes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
