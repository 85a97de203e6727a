//! CredSSP on a channel ([MS-CSSP]; [`Auth::CredSsp`](crate::Auth::CredSsp)): the
//! exchange of `Authorization: CredSSP` tokens on empty-bodied POSTs (as pywinrm and
//! PowerShell do), ending with the delegation of the credentials, and then messages
//! encrypted with the inner TLS session as `multipart/encrypted`, or
//! `multipart/x-multi-encrypted` in parts of 16 KiB of plaintext when larger
//! ([MS-WSMV] §2.2.9.1.3). The security context is in
//! `wsman_protocol::security::credssp`; it dies with the connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use wsman_protocol::security::SecurityError;
use wsman_protocol::security::credssp::{ClientStep, CredSspClientContext, SCHEME};

use super::{Channel, Failure, offered, scheme_header, scheme_token, unexpected_handshake_answer};
use crate::error::{Error, Result};
use crate::transport::sealing;

/// Encrypts `plain` in parts of at most 16 KiB: the content type and the body.
pub(super) fn seal(ctx: &mut CredSspClientContext, plain: &[u8]) -> Result<(&'static str, Bytes)> {
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
pub(super) fn open_parts(ctx: &mut CredSspClientContext, body: &[u8]) -> Result<Vec<u8>> {
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
    /// The CredSSP exchange on the current connection: the inner TLS handshake, the
    /// SPNEGO (NTLM) legs, the public-key binding and the delegation, each token on an
    /// empty-bodied POST answered 401 with the server's token, the last (the delegated
    /// credentials) answered 200. A wrong password is refused with a bare 401 (or a
    /// failed exchange) once the NTLM AUTHENTICATE has gone: an error at once, and the
    /// client's logon gate is closed (see `logon.rs`): no further logon.
    pub(super) async fn credssp_handshake(&mut self) -> Result<(), Failure> {
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
            let raw = self.handshake_leg(scheme_header(SCHEME, &token)?).await?;
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
            let Some(answer) = scheme_token(&raw.headers, SCHEME).filter(|_| !last) else {
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
