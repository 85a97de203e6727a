//! Negotiate with SPNEGO on a channel ([`Auth::spnego`](crate::Auth::spnego)): the
//! `NegTokenInit` and the `NegTokenResp`s under `Authorization: Negotiate` on
//! empty-bodied POSTs, until the server's last token (accept-completed, with its
//! `mechListMIC` when NTLM was chosen) completes the context; messages are then sealed
//! with it as `application/HTTP-SPNEGO-session-encrypted`. The context is in
//! `wsman_protocol::security::spnego`; it dies with the connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use sspi::SecurityStatus;
use wsman_protocol::security::spnego::{self, Mechanism, NoKdc};

use super::{
    Channel, Failure, Security, offered, scheme_header, scheme_token, unexpected_handshake_answer,
};
use crate::error::Error;

/// More legs than any SPNEGO exchange with Kerberos or NTLM takes (at most four: an
/// unusable optimistic Kerberos token, the NEGOTIATE, the AUTHENTICATE).
const MAX_LEGS: u32 = 6;

impl Channel {
    /// The SPNEGO exchange on the current connection. A refusal of a leg that carried
    /// credentials (an NTLM AUTHENTICATE, a Kerberos AP-REQ from fresh tickets) or of
    /// them at the KDC closes the client's logon gate (see `logon.rs`).
    pub(super) async fn spnego_handshake(&mut self) -> Result<(), Failure> {
        let creds = self
            .config
            .auth
            .sspi()
            .cloned()
            .ok_or_else(|| Error::State("SPNEGO handshake without credentials".into()))?;
        let logon = Arc::clone(&self.config.logon);
        let _probe = logon.before_handshake().await?;
        let binding = self.conn.as_ref().and_then(|c| c.channel_binding.clone());
        tracing::debug!(
            user = %creds.user,
            channel_binding = binding.is_some(),
            "Negotiate logon (SPNEGO)"
        );
        #[cfg(feature = "kerberos")]
        let (mut ctx, mut token, cached) = {
            let host = self.config.endpoint.host.clone();
            let gate = Arc::clone(&logon);
            self.wait_for_kdc(tokio::task::spawn_blocking(move || {
                crate::transport::kerberos::spnego_client(
                    &creds,
                    &host,
                    binding.as_deref(),
                    &gate.tickets,
                )
            }))
            .await
            .map_err(|e| Error::State(format!("the SPNEGO first step failed: {e}")))?
            .map_err(|f| {
                if f.refused {
                    logon.refused(&f.error);
                }
                f.error
            })?
        };
        #[cfg(not(feature = "kerberos"))]
        let (mut ctx, mut token, cached) = {
            let (ctx, token) = spnego_ntlm_client(&creds, binding.as_deref())?;
            (ctx, token, false)
        };
        tracing::debug!(mechanism = ?ctx.mechanism(), "SPNEGO: NegTokenInit sent");
        let mut legs = 0;
        loop {
            legs += 1;
            let credentials = spnego::carries_credentials(&token);
            let raw = self
                .handshake_leg(scheme_header("Negotiate", &token)?)
                .await?;
            let answer = scheme_token(&raw.headers, "Negotiate");
            match (raw.status, answer) {
                (401, Some(next)) if legs < MAX_LEGS => {
                    // A refusal that arrived meanwhile (another connection's) stops this
                    // logon too.
                    logon.check()?;
                    let (status, out) = ctx.initialize(&next, &NoKdc).map_err(Error::from)?;
                    if out.is_empty() || status == SecurityStatus::Ok {
                        return Err(Error::Auth(
                            "the server's SPNEGO token (401) left nothing to answer".into(),
                        )
                        .into());
                    }
                    token = out;
                }
                (401, _) => {
                    let e = Error::Unauthorized {
                        offered: offered(&raw.headers),
                    };
                    if credentials {
                        if cached && ctx.mechanism() == Mechanism::Kerberos {
                            // Tickets from the cache: forget them; the next logon asks
                            // the KDC again.
                            #[cfg(feature = "kerberos")]
                            logon.tickets.clear();
                        } else {
                            tracing::debug!("SPNEGO logon refused (401)");
                            logon.refused(&e);
                        }
                    }
                    return Err(e.into());
                }
                (200, Some(last)) => {
                    let (status, _) = ctx.initialize(&last, &NoKdc).map_err(Error::from)?;
                    if status != SecurityStatus::Ok {
                        return Err(Error::Auth(format!(
                            "the server ended the SPNEGO exchange but the context is not \
                             complete ({status:?})"
                        ))
                        .into());
                    }
                    break;
                }
                (200, None) => {
                    return Err(Error::Auth(
                        "the server accepted the SPNEGO exchange without its final token \
                         (the mechListMIC that protects the mechanism choice)"
                            .into(),
                    )
                    .into());
                }
                _ => return Err(unexpected_handshake_answer(raw).into()),
            }
        }
        logon.succeeded();
        tracing::debug!(
            mechanism = ?ctx.mechanism(),
            "SPNEGO logon accepted; messages sealed from here on"
        );
        if let Some(c) = self.conn.as_mut() {
            c.security = Some(Security::Spnego(Box::new(ctx)));
        }
        self.stats.handshakes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

impl Channel {
    /// Waits for `exchange`, the KDC exchange of this channel's handshake (a blocking
    /// task), marked as such for [`Channel::kdc_timed_out`] while it runs.
    #[cfg(feature = "kerberos")]
    pub(super) async fn wait_for_kdc<T>(
        &mut self,
        exchange: tokio::task::JoinHandle<T>,
    ) -> Result<T, tokio::task::JoinError> {
        self.kdc_wait = true;
        let done = exchange.await;
        self.kdc_wait = false;
        done
    }

    /// The outcome of a request under an HTTP timeout of `timeout`: an
    /// [`Error::HttpTimeout`] that struck while the handshake waited for the KDC (the
    /// KDC is slower than the HTTP timeout) becomes
    /// [`KerberosErrorKind::KdcUnreachable`](crate::KerberosErrorKind::KdcUnreachable):
    /// nothing was sent to the server (not [`Error::may_have_executed`]). The exchange
    /// goes on in the background: its tickets, or its failure to reach the KDC, serve
    /// the client's next logons.
    pub(super) fn kdc_timed_out<T>(
        &mut self,
        result: crate::error::Result<T>,
        timeout: std::time::Duration,
    ) -> crate::error::Result<T> {
        match result {
            Err(Error::HttpTimeout(_)) if std::mem::take(&mut self.kdc_wait) => {
                #[cfg(feature = "kerberos")]
                let kdc = crate::transport::kerberos::kdc_name(&self.config.auth);
                #[cfg(not(feature = "kerberos"))]
                let kdc = "the realm's KDC".to_string();
                Err(Error::Kerberos {
                    kind: crate::error::KerberosErrorKind::KdcUnreachable,
                    message: format!(
                        "{kdc} did not answer within the HTTP timeout ({timeout:?}); nothing \
                         was sent to the WinRM server"
                    ),
                })
            }
            other => other,
        }
    }
}

/// A SPNEGO client offering NTLM alone, and its `NegTokenInit`.
pub(crate) fn spnego_ntlm_client(
    creds: &crate::transport::SspiCredentials,
    channel_binding: Option<&[u8]>,
) -> crate::error::Result<(spnego::SpnegoContext, Vec<u8>)> {
    use secrecy::ExposeSecret;
    let username = sspi::Username::parse(&creds.user)
        .map_err(|e| Error::Config(format!("invalid user name {:?}: {e}", creds.user)))?;
    let identity = sspi::AuthIdentity {
        username,
        password: creds.password.expose_secret().to_string().into(),
    };
    spnego_ntlm_client_as(identity, channel_binding)
}

/// A SPNEGO client offering NTLM alone as `identity`, and its `NegTokenInit`.
pub(crate) fn spnego_ntlm_client_as(
    identity: sspi::AuthIdentity,
    channel_binding: Option<&[u8]>,
) -> crate::error::Result<(spnego::SpnegoContext, Vec<u8>)> {
    let mut ctx = spnego::SpnegoContext::ntlm_client(identity).map_err(Error::from)?;
    if let Some(cb) = channel_binding {
        ctx.set_channel_bindings(cb);
    }
    let (_, token) = ctx.initialize(&[], &NoKdc).map_err(Error::from)?;
    Ok((ctx, token))
}
