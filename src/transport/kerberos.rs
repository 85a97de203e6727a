//! Kerberos (feature `kerberos`) through sspi's Kerberos package: the client side (a
//! password-based AS exchange and a TGS exchange with the KDC over TCP, then the AP-REQ
//! under the HTTP `Kerberos` scheme), the acceptor side the simulator uses, and WinRM
//! message encryption with a Kerberos context ([MS-WSMV] §2.2.9.1,
//! `application/HTTP-Kerberos-session-encrypted`: the signature is the head of the
//! RFC 4121 wrap token, the sealed data its tail).
//!
//! The KDC exchange runs on a blocking thread: sspi drives it as a generator that asks
//! for one network round trip at a time, answered here over std TCP (RFC 4120 §7.2.2,
//! each message prefixed by its 4-byte big-endian length). sspi's `network_client`
//! feature (reqwest) is not used. One exchange serves every connection of a client
//! ([`TicketCache`]); a KDC refusal of the credentials is told apart from an
//! unreachable KDC ([`KdcError`]), so that the logon gate stops only on the former.
//!
//! A KDC that cannot be reached (no connection, or no answer within [`KDC_TIMEOUT`]) is
//! remembered by the client for [`KDC_RETRY_AFTER`]: meanwhile its Kerberos logons
//! fail at once with [`KerberosErrorKind::KdcUnreachable`] and its SPNEGO logons offer
//! NTLM alone, instead of every new connection waiting for the KDC again.
//!
//! [`KerberosErrorKind::KdcUnreachable`]: crate::KerberosErrorKind::KdcUnreachable

use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use secrecy::ExposeSecret;
use sspi::network_client::NetworkClient;
use sspi::{
    AuthIdentity, KerberosConfig, NetworkProtocol, NetworkRequest, SecurityStatus, Username,
};
pub(crate) use wsman_protocol::security::kerberos::{
    KERBEROS_CONTENT_TYPE, KerberosContext, frame, parse,
};
use wsman_protocol::security::ntlm::NtlmContext;
use wsman_protocol::security::spnego::{Mechanism, SpnegoContext};

use super::auth::SspiCredentials;
use super::sealing;
use crate::error::{Error, KerberosErrorKind, Result};
/// How long the KDC has to accept a TCP connection, and then to answer each read.
const KDC_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client remembers that its KDC could not be reached, and so does not ask
/// it (unless fresh tickets make the KDC unnecessary). Long enough that a fan-out or a
/// busy session does not wait [`KDC_TIMEOUT`] per new connection; short enough that a
/// KDC that is back is used again within a minute. Windows' DC locator keeps its
/// failures for 45 seconds (Netlogon's `NegativeCachePeriod`).
const KDC_RETRY_AFTER: Duration = Duration::from_secs(60);
/// A KDC answer larger than this is refused.
const MAX_KDC_REPLY: usize = 1 << 20;

/// Where the KDC is and which realm the user belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KerberosOptions {
    /// The KDC: `host:port`, or `tcp://host:port`. `None`: looked up for the realm in
    /// the krb5.conf that `KRB5_CONFIG` names (as MIT Kerberos does).
    pub kdc: Option<String>,
    /// The realm of a user given without one (`user`); `user@REALM` and `REALM\user`
    /// carry their own.
    pub realm: Option<String>,
    /// The service principal; `HTTP/<endpoint host>` when `None`, as WinRM registers it.
    /// `HTTP/host@REALM` names the realm too (the GSSAPI path; without it the default
    /// realm of krb5.conf).
    pub spn: Option<String>,
    /// Feature `gssapi`: the credential cache, e.g. `FILE:/tmp/krb5cc_alice` or
    /// `KCM:`. For `Auth::kerberos_ticket_cache` the cache to read (`None`: the one
    /// `KRB5CCNAME` names, else the system default); for `Auth::kerberos_keytab` the
    /// cache to keep the tickets in (`None`: a private in-memory cache of the client).
    /// Ignored by the password path.
    pub ccache: Option<String>,
    /// Ask for the ticket of `HTTP/<canonical name>`: the endpoint's host name is
    /// resolved first and its canonical name (the end of its CNAME chain, as
    /// `getaddrinfo` reports it) is used. Off by default: a DNS answer then decides
    /// which service the client authenticates to, and DNS is not authenticated (an
    /// attacker who can spoof it can steer the client to a service whose key they
    /// hold, RFC 4120 §1.3); on, it makes an alias (`winrm.corp` → `host17.corp`)
    /// work without an SPN override, as MIT's `dns_canonicalize_hostname` does. It
    /// does not apply when [`spn`](Self::spn) is set, nor to IP addresses.
    pub canonicalize_host: bool,
    /// Feature `gssapi`: send the token SPNEGO-wrapped under `Authorization: Negotiate`
    /// (the GSSAPI's SPNEGO mechanism negotiating Kerberos), as Windows' own clients do,
    /// instead of the bare AP-REQ under the `Kerberos` scheme; sealed messages are then
    /// `application/HTTP-SPNEGO-session-encrypted`. Both are accepted by WinRM (its
    /// `Auth/Kerberos` and `Auth/Negotiate` settings). The password path does not do it
    /// (a configuration error): for SPNEGO with a password use
    /// [`Auth::negotiate`]`(..).`[`spnego(true)`](crate::Auth::spnego), which tries
    /// Kerberos first with these options and falls back to NTLM.
    ///
    /// [`Auth::negotiate`]: crate::Auth::negotiate
    pub spnego: bool,
}

impl KerberosOptions {
    /// Options with a KDC address and a realm.
    pub fn new(kdc: impl Into<String>, realm: impl Into<String>) -> KerberosOptions {
        KerberosOptions {
            kdc: Some(kdc.into()),
            realm: Some(realm.into()),
            ..KerberosOptions::default()
        }
    }
}

/// The credentials and options of a Kerberos login.
#[derive(Clone)]
pub struct KerberosCredentials {
    pub(crate) sspi: SspiCredentials,
    pub(crate) options: KerberosOptions,
    /// Feature `gssapi`: the ticket cache or keytab (no password then).
    #[cfg(feature = "gssapi")]
    pub(crate) gss: Option<super::gssapi::GssSource>,
}

impl KerberosCredentials {
    pub(crate) fn new(sspi: SspiCredentials) -> KerberosCredentials {
        KerberosCredentials {
            sspi,
            options: KerberosOptions::default(),
            #[cfg(feature = "gssapi")]
            gss: None,
        }
    }

    /// The service principal for an endpoint on `host`: [`KerberosOptions::spn`], else
    /// `HTTP/<host>` (its canonical name with [`KerberosOptions::canonicalize_host`]).
    /// Blocking (DNS) when canonicalising.
    pub(crate) fn service_principal(&self, host: &str) -> String {
        service_principal(&self.options, host, |h| {
            dns_lookup::getaddrinfo(
                Some(h),
                None,
                Some(dns_lookup::AddrInfoHints {
                    flags: AI_CANONNAME,
                    ..dns_lookup::AddrInfoHints::default()
                }),
            )
            .ok()?
            .filter_map(std::result::Result::ok)
            .find_map(|a| a.canonname)
        })
    }

    /// The user name as given.
    pub fn user(&self) -> &str {
        &self.sspi.user
    }

    /// The KDC and realm settings.
    pub fn options(&self) -> &KerberosOptions {
        &self.options
    }
}

impl fmt::Debug for KerberosCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("KerberosCredentials");
        d.field("sspi", &self.sspi).field("options", &self.options);
        #[cfg(feature = "gssapi")]
        d.field("gss", &self.gss);
        d.finish()
    }
}

/// getaddrinfo's `AI_CANONNAME` flag: 2 in glibc, musl, the BSDs, macOS and Windows.
const AI_CANONNAME: i32 = 2;

/// The SPN for `host`: the override, else `HTTP/<host>`, canonicalised through
/// `canonical` when asked (host names only: an IP address stays as it is).
fn service_principal(
    options: &KerberosOptions,
    host: &str,
    canonical: impl FnOnce(&str) -> Option<String>,
) -> String {
    if let Some(spn) = &options.spn {
        return spn.clone();
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if options.canonicalize_host && bare.parse::<std::net::IpAddr>().is_err() {
        match canonical(bare) {
            Some(name) if !name.is_empty() => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                tracing::debug!(host = bare, canonical = %name, "Kerberos: canonical host name");
                return format!("HTTP/{name}");
            }
            _ => tracing::debug!(
                host = bare,
                "Kerberos: no canonical name; using the host as given"
            ),
        }
    }
    format!("HTTP/{host}")
}

/// The KDC of a Kerberos or SPNEGO logon, for an error: `the KDC host:port`, or `the
/// KDC of the realm` when it is looked up in krb5.conf.
pub(crate) fn kdc_name(auth: &crate::Auth) -> String {
    let options = match auth {
        crate::Auth::Kerberos(k) => Some(&k.options),
        other => other.sspi().and_then(|c| c.kerberos.as_deref()),
    };
    match options.and_then(|o| o.kdc.as_deref()) {
        Some(kdc) => format!("the KDC {kdc}"),
        None => "the KDC of the realm".to_string(),
    }
}

/// `(account, REALM)` of a user name: `user@REALM`, `REALM\user`, or `user` with the
/// configured realm.
fn principal(user: &str, realm: Option<&str>) -> Result<(String, String)> {
    let (account, domain) = if let Some((d, u)) = user.split_once('\\') {
        (u, Some(d))
    } else if let Some((u, d)) = user.rsplit_once('@') {
        (u, Some(d))
    } else {
        (user, realm)
    };
    let domain = domain.or(realm).filter(|d| !d.is_empty()).ok_or_else(|| {
        Error::Config(format!(
            "Kerberos user {user:?} has no realm: use user@REALM or set KerberosOptions::realm"
        ))
    })?;
    if account.is_empty() {
        return Err(Error::Config("empty Kerberos user name".into()));
    }
    Ok((account.to_string(), domain.to_ascii_uppercase()))
}

/// sspi's network client: the KDC over TCP, std sockets, with timeouts.
struct KdcTcp;

impl KdcTcp {
    /// One request and its reply. A KDC that could not be reached or did not answer is
    /// [`KdcFailure::Unreachable`].
    fn exchange(request: &NetworkRequest) -> std::result::Result<Vec<u8>, KdcFailure> {
        let url = &request.url;
        let host = url.host_str().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port().unwrap_or(88);
        let unreachable = |what: String| KdcFailure::Unreachable(format!("the KDC {url} {what}"));
        let silent = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => unreachable(format!(
                "accepted the connection but did not answer within {KDC_TIMEOUT:?}"
            )),
            std::io::ErrorKind::UnexpectedEof => {
                unreachable("closed the connection without an answer".into())
            }
            _ => unreachable(format!("failed during the exchange: {e}")),
        };
        let addrs = (host, port)
            .to_socket_addrs()
            .map_err(|e| unreachable(format!("cannot be resolved: {e}")))?;
        let mut last = unreachable("resolves to no address".into());
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, KDC_TIMEOUT) {
                Ok(mut s) => {
                    s.set_read_timeout(Some(KDC_TIMEOUT)).map_err(silent)?;
                    s.set_write_timeout(Some(KDC_TIMEOUT)).map_err(silent)?;
                    // sspi's TCP messages already carry their length prefix.
                    s.write_all(&request.data).map_err(silent)?;
                    let mut len = [0u8; 4];
                    s.read_exact(&mut len).map_err(silent)?;
                    let n = u32::from_be_bytes(len) as usize;
                    if n > MAX_KDC_REPLY {
                        return Err(KdcFailure::Invalid(format!(
                            "the KDC {url} announced a reply of {n} bytes (at most {MAX_KDC_REPLY})"
                        )));
                    }
                    let mut reply = vec![0u8; 4 + n];
                    reply[..4].copy_from_slice(&len);
                    s.read_exact(&mut reply[4..]).map_err(silent)?;
                    return Ok(reply);
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    last = unreachable(format!(
                        "did not accept a connection within {KDC_TIMEOUT:?}"
                    ));
                }
                Err(e) => last = unreachable(format!("cannot be connected to: {e}")),
            }
        }
        Err(last)
    }

    fn forward(request: &NetworkRequest) -> std::result::Result<Vec<u8>, KdcFailure> {
        if request.protocol != NetworkProtocol::Tcp {
            return Err(KdcFailure::Invalid(format!(
                "only tcp:// KDCs are supported, not {:?}",
                request.protocol
            )));
        }
        KdcTcp::exchange(request)
    }
}

/// A KDC round trip that failed.
#[derive(Debug)]
enum KdcFailure {
    /// No connection, or no answer within [`KDC_TIMEOUT`]: what happened, naming the KDC.
    Unreachable(String),
    /// Anything else (a reply too large, a protocol other than TCP).
    Invalid(String),
}

impl From<KdcFailure> for sspi::Error {
    fn from(f: KdcFailure) -> Self {
        let (KdcFailure::Unreachable(m) | KdcFailure::Invalid(m)) = f;
        sspi::Error::new(sspi::ErrorKind::NoAuthenticatingAuthority, m)
    }
}

impl NetworkClient for KdcTcp {
    fn send(&self, request: &NetworkRequest) -> sspi::Result<Vec<u8>> {
        Ok(KdcTcp::forward(request)?)
    }
}

/// How long the tickets of one exchange are reused. Well under the shortest ticket
/// lifetime a domain allows (10 minutes for service tickets in Active Directory; the
/// default is 10 hours): the tickets' own end times are inside their encrypted parts.
const TICKET_REUSE: Duration = Duration::from_secs(5 * 60);

/// The KDC message types (RFC 4120 §5.10, the first byte after the TCP length prefix).
const AS_REQ: u8 = 0x6a;
const TGS_REQ: u8 = 0x6c;
const AS_REP: u8 = 0x6b;
const KRB_ERROR: u8 = 0x7e;

/// KDC errors that refuse the credentials themselves (RFC 4120 §7.5.9): retrying
/// them is what locks an account.
const REFUSALS: &[(u32, &str)] = &[
    (6, "KDC_ERR_C_PRINCIPAL_UNKNOWN"),
    (12, "KDC_ERR_POLICY"),
    (18, "KDC_ERR_CLIENT_REVOKED"),
    (23, "KDC_ERR_KEY_EXPIRED"),
    (24, "KDC_ERR_PREAUTH_FAILED"),
    (31, "KRB_AP_ERR_BAD_INTEGRITY"),
];

/// The error code of a KRB-ERROR reply (with its TCP length prefix).
fn krb_error_code(reply: &[u8]) -> Option<u32> {
    if reply.get(4) != Some(&KRB_ERROR) {
        return None;
    }
    let e: picky_krb::messages::KrbError = picky_asn1_der::from_bytes(&reply[4..]).ok()?;
    Some(e.0.error_code.0)
}

/// The KDC's answers to the client's one successful ticket exchange: the AS exchange
/// (the ticket-granting ticket) and the TGS exchange (the service ticket).
#[derive(Clone)]
struct Tickets {
    as_replies: Vec<Vec<u8>>,
    tgs_replies: Vec<Vec<u8>>,
    since: Instant,
}

/// The tickets of one client, shared by all its connections: one ticket-granting
/// exchange per client, not one per connection.
///
/// sspi keeps its tickets inside one security context and has no API to start another
/// context from them. What it does expose is the network client that carries its
/// KDC messages, and it does not tie a KDC reply to the request it answers (no nonce
/// check). So the KDC's replies of the first successful exchange are kept here and
/// given to later contexts in place of the KDC's: sspi decrypts the same
/// ticket-granting ticket with the same password, the same service ticket with the
/// same session key, and builds a fresh AP-REQ (a new authenticator, sub-key and
/// sequence number) for each connection. Nothing here is usable without the password.
#[derive(Default)]
pub(crate) struct TicketCache {
    tickets: Mutex<Option<Tickets>>,
    /// Held while a context talks to the KDC, so that contexts started meanwhile wait
    /// and reuse its tickets (or learn that the KDC is unreachable) instead of running
    /// exchanges of their own.
    exchange: Mutex<()>,
    /// The KDC could not be reached: when, and the error (see [`KDC_RETRY_AFTER`]).
    kdc_down: Mutex<Option<(Instant, String)>>,
    /// Feature `gssapi`: the client's one GSSAPI credential handle.
    #[cfg(feature = "gssapi")]
    pub(crate) gss: super::gssapi::GssCredential,
}

impl fmt::Debug for TicketCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TicketCache { .. }")
    }
}

impl TicketCache {
    fn fresh(&self) -> Option<Tickets> {
        let guard = self.tickets.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|t| t.since.elapsed() < TICKET_REUSE)
            .cloned()
    }

    fn put(&self, tickets: Tickets) {
        *self.tickets.lock().unwrap_or_else(|p| p.into_inner()) = Some(tickets);
        *self.kdc_down.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The KDC could not be reached (`message`, the error's text): not asked again for
    /// [`KDC_RETRY_AFTER`].
    fn kdc_unreachable(&self, message: &str) {
        tracing::debug!(
            %message,
            retry_after = ?KDC_RETRY_AFTER,
            "Kerberos: the KDC could not be reached; not asked again for a while"
        );
        *self.kdc_down.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), message.to_string()));
    }

    /// The remembered failure to reach the KDC, while it is recent: the error to fail
    /// with instead of asking the KDC again.
    fn kdc_down(&self) -> Option<Error> {
        let guard = self.kdc_down.lock().unwrap_or_else(|p| p.into_inner());
        let (since, message) = guard.as_ref()?;
        let ago = since.elapsed();
        (ago < KDC_RETRY_AFTER).then(|| Error::Kerberos {
            kind: KerberosErrorKind::KdcUnreachable,
            message: format!(
                "{message} (this client's attempt {}s ago; it asks the KDC again {}s after \
                 that, and fails at once until then)",
                ago.as_secs(),
                KDC_RETRY_AFTER.as_secs()
            ),
        })
    }

    /// Forgets the tickets: the next context asks the KDC.
    pub(crate) fn clear(&self) {
        *self.tickets.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// The network client of one context: the KDC, or the cached replies.
struct KdcClient {
    replay: Option<Tickets>,
    state: Mutex<KdcState>,
}

#[derive(Default)]
struct KdcState {
    as_replies: Vec<Vec<u8>>,
    tgs_replies: Vec<Vec<u8>>,
    /// The KDC refused the credentials: the error's name and code.
    refused: Option<(&'static str, u32)>,
    /// The KDC could not be reached: what happened, naming the KDC.
    unreachable: Option<String>,
}

impl KdcState {
    /// The error of a failed first step: the KDC's refusal of `who`'s credentials when
    /// it said so (a refusal that closes the logon gate), [`KerberosErrorKind::KdcUnreachable`]
    /// when it could not be reached, else `error`.
    fn failure(&self, who: &str, error: Error) -> KdcError {
        match (self.refused, &self.unreachable) {
            (Some((name, code)), _) => KdcError {
                error: Error::Auth(format!(
                    "Kerberos: the KDC refused the credentials of {who} ({name}, {code})"
                )),
                refused: true,
            },
            (None, Some(why)) => kdc_unreachable_error(who, why).into(),
            (None, None) => error.into(),
        }
    }

    /// The KDC's replies as tickets for reuse, when they came from the KDC (`replayed`
    /// false) and the last is an AS-REP.
    fn fresh_tickets(self, replayed: bool) -> Option<Tickets> {
        (!replayed && self.as_replies.last().and_then(|r| r.get(4)) == Some(&AS_REP)).then(|| {
            Tickets {
                as_replies: self.as_replies,
                tgs_replies: self.tgs_replies,
                since: Instant::now(),
            }
        })
    }
}

impl KdcClient {
    fn new(replay: Option<Tickets>) -> KdcClient {
        KdcClient {
            replay,
            state: Mutex::new(KdcState::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, KdcState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl NetworkClient for KdcClient {
    fn send(&self, request: &NetworkRequest) -> sspi::Result<Vec<u8>> {
        let kind = request.data.get(4).copied();
        if let Some(replay) = &self.replay {
            let mut st = self.state();
            let (cached, seen) = match kind {
                Some(AS_REQ) => (&replay.as_replies, &mut st.as_replies),
                Some(TGS_REQ) => (&replay.tgs_replies, &mut st.tgs_replies),
                _ => (&replay.tgs_replies, &mut Vec::new()),
            };
            let Some(reply) = cached.get(seen.len()) else {
                return Err(sspi::Error::new(
                    sspi::ErrorKind::InternalError,
                    "the cached tickets do not fit this exchange",
                ));
            };
            seen.push(Vec::new());
            return Ok(reply.clone());
        }
        let reply = KdcTcp::forward(request).map_err(|f| {
            if let KdcFailure::Unreachable(why) = &f {
                self.state().unreachable = Some(why.clone());
            }
            sspi::Error::from(f)
        })?;
        let mut st = self.state();
        match kind {
            Some(AS_REQ) => {
                if let Some(code) = krb_error_code(&reply)
                    && let Some(&(_, name)) = REFUSALS.iter().find(|(c, _)| *c == code)
                {
                    st.refused = Some((name, code));
                }
                st.as_replies.push(reply.clone());
            }
            Some(TGS_REQ) => st.tgs_replies.push(reply.clone()),
            _ => {}
        }
        Ok(reply)
    }
}

/// A failed client logon: the error, and whether the KDC refused the credentials
/// (rather than being unreachable, or the tickets not fitting).
#[derive(Debug)]
pub(crate) struct KdcError {
    pub error: Error,
    pub refused: bool,
}

impl KdcError {
    /// The KDC could not be reached: [`KerberosErrorKind::KdcUnreachable`].
    fn unreachable(&self) -> bool {
        self.error.kerberos_kind() == Some(KerberosErrorKind::KdcUnreachable)
    }
}

impl From<Error> for KdcError {
    fn from(error: Error) -> Self {
        KdcError {
            error,
            refused: false,
        }
    }
}

/// [`KerberosErrorKind::KdcUnreachable`]: `who`'s logon could not reach the KDC (`why`
/// names it and says how).
fn kdc_unreachable_error(who: &str, why: &str) -> Error {
    Error::Kerberos {
        kind: KerberosErrorKind::KdcUnreachable,
        message: kdc_unreachable_message(who, why),
    }
}

fn kdc_unreachable_message(who: &str, why: &str) -> String {
    format!("no ticket for {who}: {why}; nothing was sent to the WinRM server")
}

/// The message of an [`Error::Kerberos`] (what the KDC memory keeps), else the error's text.
fn kerberos_message(e: &Error) -> String {
    match e {
        Error::Kerberos { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// The client side of a Kerberos context: the KDC exchanges (with the client's ticket
/// cache) and the AP-REP check, over [`KdcTcp`].
pub(crate) struct KerberosClient;

impl KerberosClient {
    /// Client: the AS and TGS exchanges with the KDC, then the AP-REQ token (GSS-API
    /// framed) for `HTTP/<host>`. The exchanges run once per client: while `tickets`
    /// holds fresh tickets, they are reused and the KDC is not asked (the flag in the
    /// answer says so). Over HTTPS, `channel_binding` is the connection's
    /// `tls-server-end-point` data: it goes into the AP-REQ (see
    /// [`KerberosContext::set_channel_bindings`]). Blocking (network): call it on a
    /// blocking thread.
    pub(crate) fn client(
        creds: &KerberosCredentials,
        host: &str,
        channel_binding: Option<&[u8]>,
        tickets: &TicketCache,
    ) -> std::result::Result<(KerberosContext, Vec<u8>, bool), KdcError> {
        if let Some(cached) = tickets.fresh() {
            match KerberosClient::client_with(creds, host, channel_binding, Some(cached)) {
                Ok((ctx, token, _)) => return Ok((ctx, token, true)),
                Err(e) => {
                    tracing::debug!(error = %e.error, "cached Kerberos tickets refused; asking the KDC");
                    tickets.clear();
                }
            }
        }
        if let Some(e) = tickets.kdc_down() {
            return Err(e.into());
        }
        // One exchange at a time per client; a context that waited here reuses the
        // tickets of the one before it, or its failure to reach the KDC.
        let _exchange = tickets.exchange.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cached) = tickets.fresh()
            && let Ok((ctx, token, _)) =
                KerberosClient::client_with(creds, host, channel_binding, Some(cached))
        {
            return Ok((ctx, token, true));
        }
        if let Some(e) = tickets.kdc_down() {
            return Err(e.into());
        }
        let (ctx, token, fresh) = KerberosClient::client_with(creds, host, channel_binding, None)
            .inspect_err(|f| {
            if f.unreachable() {
                tickets.kdc_unreachable(&kerberos_message(&f.error));
            }
        })?;
        if let Some(fresh) = fresh {
            tickets.put(fresh);
        }
        Ok((ctx, token, false))
    }

    /// A client context for `HTTP/<host>` (or the configured SPN), bound to the
    /// channel when `channel_binding` is given; with the account and realm. No network.
    fn context(
        creds: &KerberosCredentials,
        host: &str,
        channel_binding: Option<&[u8]>,
    ) -> Result<(KerberosContext, String, String)> {
        let (account, realm) = principal(&creds.sspi.user, creds.options.realm.as_deref())?;
        let username = Username::new_down_level_logon_name(&account, &realm)
            .map_err(|e| Error::Config(format!("invalid Kerberos user name: {e}")))?;
        let identity = AuthIdentity {
            username,
            password: creds.sspi.password.expose_secret().to_string().into(),
        };
        let config = match &creds.options.kdc {
            Some(kdc) => KerberosConfig::new_with_kdc_url(kdc, "tokio-winrm".into()),
            None => KerberosConfig {
                kdc_resolution: sspi::KdcResolution::KdcUrl(None),
                client_computer_name: "tokio-winrm".into(),
            },
        };
        let spn = creds.service_principal(host);
        let mut ctx = KerberosContext::client(config, identity, spn).map_err(Error::from)?;
        if let Some(cb) = channel_binding {
            ctx.set_channel_bindings(cb);
        }
        Ok((ctx, account, realm))
    }

    /// One client context: from the KDC (`replay` None; the answer carries the KDC's
    /// replies for reuse) or from cached replies.
    fn client_with(
        creds: &KerberosCredentials,
        host: &str,
        channel_binding: Option<&[u8]>,
        replay: Option<Tickets>,
    ) -> std::result::Result<(KerberosContext, Vec<u8>, Option<Tickets>), KdcError> {
        let (mut ctx, account, realm) = KerberosClient::context(creds, host, channel_binding)?;
        let kdc = KdcClient::new(replay);
        let first = ctx.initialize(&[], &kdc).map_err(Error::from);
        let st = std::mem::take(&mut *kdc.state());
        let (status, token) = first.map_err(|e| st.failure(&format!("{account}@{realm}"), e))?;
        if status != SecurityStatus::ContinueNeeded || token.is_empty() {
            return Err(Error::Auth(format!(
                "Kerberos: no AP-REQ after the KDC exchange ({status:?})"
            ))
            .into());
        }
        let fresh = st.fresh_tickets(kdc.replay.is_some());
        Ok((ctx, token, fresh))
    }

    /// Client: verifies the server's AP-REP (mutual authentication).
    pub(crate) fn finish(ctx: &mut KerberosContext, ap_rep: &[u8]) -> Result<()> {
        Ok(ctx.finish(ap_rep, &KdcTcp)?)
    }
}

/// How a SPNEGO Negotiate login tries Kerberos: the context's configuration, the
/// identity (its user name with the realm) and the service principal. `None`: Kerberos
/// is not possible (no realm, no KDC known for it, or an IP address as the service
/// principal), and the login offers NTLM alone.
fn spnego_kerberos_plan(
    sspi: &SspiCredentials,
    host: &str,
) -> Option<(KerberosConfig, AuthIdentity, String)> {
    let options = sspi.kerberos.as_deref().cloned().unwrap_or_default();
    let (account, realm) = principal(&sspi.user, options.realm.as_deref()).ok()?;
    let kdc = match &options.kdc {
        Some(kdc) => Some(kdc.clone()),
        None => sspi::detect_kdc_url(&realm).map(|u| u.to_string()),
    };
    let Some(kdc) = kdc else {
        tracing::debug!(%realm, "SPNEGO: no KDC known for the realm; offering NTLM alone");
        return None;
    };
    let mut k = KerberosCredentials::new(sspi.clone());
    k.options = options;
    let spn = k.service_principal(host);
    let target = spn.split('@').next().unwrap_or(&spn);
    let target_host = target.rsplit('/').next().unwrap_or(target);
    let bare = target_host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        tracing::debug!(%spn, "SPNEGO: the service principal is an IP address; offering NTLM alone");
        return None;
    }
    let username = Username::new_down_level_logon_name(&account, &realm).ok()?;
    let identity = AuthIdentity {
        username,
        password: sspi.password.expose_secret().to_string().into(),
    };
    Some((
        KerberosConfig::new_with_kdc_url(&kdc, "tokio-winrm".into()),
        identity,
        spn,
    ))
}

/// Client: the first step of a SPNEGO Negotiate login ([`crate::Auth::spnego`]): the
/// context and its `NegTokenInit`, and whether the Kerberos tickets came from the
/// client's cache. Kerberos first when possible (the KDC exchanges once per client, as
/// [`KerberosClient::client`]), sspi falling back to NTLM on its own before anything
/// is sent; NTLM alone otherwise. Blocking (network): call it on a blocking thread.
pub(crate) fn spnego_client(
    sspi: &SspiCredentials,
    host: &str,
    channel_binding: Option<&[u8]>,
    tickets: &TicketCache,
) -> std::result::Result<(SpnegoContext, Vec<u8>, bool), KdcError> {
    let Some((config, identity, spn)) = spnego_kerberos_plan(sspi, host) else {
        let (ctx, token) = super::channel::spnego_ntlm_client(sspi, channel_binding)?;
        return Ok((ctx, token, false));
    };
    let attempt = |replay: Option<Tickets>| {
        let mut ctx = SpnegoContext::kerberos_client(config.clone(), identity.clone(), spn.clone())
            .map_err(Error::from)?;
        if let Some(cb) = channel_binding {
            ctx.set_channel_bindings(cb);
        }
        let kdc = KdcClient::new(replay);
        let first = ctx.initialize(&[], &kdc);
        let mut st = std::mem::take(&mut *kdc.state());
        let (_, token) = first.map_err(|e| st.failure(&sspi.user, Error::from(e)))?;
        let unreachable = st.unreachable.take();
        let fresh = if ctx.mechanism() == Mechanism::Kerberos {
            st.fresh_tickets(kdc.replay.is_some())
        } else {
            None
        };
        Ok::<_, KdcError>((ctx, token, fresh, unreachable))
    };
    // NTLM alone, the KDC being unreachable: as the user sspi's own fallback to NTLM
    // names (the account in the realm), so that every connection logs on alike.
    let ntlm = || {
        tracing::debug!("SPNEGO: the KDC could not be reached a moment ago; offering NTLM alone");
        let (ctx, token) =
            super::channel::spnego_ntlm_client_as(identity.clone(), channel_binding)?;
        Ok((ctx, token, false))
    };
    if let Some(cached) = tickets.fresh() {
        match attempt(Some(cached)) {
            Ok((ctx, token, _, _)) if ctx.mechanism() == Mechanism::Kerberos => {
                return Ok((ctx, token, true));
            }
            _ => {
                tracing::debug!("cached Kerberos tickets not usable for SPNEGO; asking the KDC");
                tickets.clear();
            }
        }
    }
    if tickets.kdc_down().is_some() {
        return ntlm();
    }
    // One exchange at a time per client; a context that waited here reuses the tickets
    // of the one before it, or its failure to reach the KDC.
    let _exchange = tickets.exchange.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(cached) = tickets.fresh()
        && let Ok((ctx, token, _, _)) = attempt(Some(cached))
        && ctx.mechanism() == Mechanism::Kerberos
    {
        return Ok((ctx, token, true));
    }
    if tickets.kdc_down().is_some() {
        return ntlm();
    }
    let (ctx, token, fresh, unreachable) = match attempt(None) {
        Err(f) if f.unreachable() => {
            tickets.kdc_unreachable(&kerberos_message(&f.error));
            return ntlm();
        }
        other => other?,
    };
    if ctx.mechanism() == Mechanism::Ntlm {
        tracing::debug!("SPNEGO: Kerberos not possible; NTLM inside SPNEGO");
        if let Some(why) = unreachable {
            tickets.kdc_unreachable(&kdc_unreachable_message(&sspi.user, &why));
        }
    }
    if let Some(fresh) = fresh {
        tickets.put(fresh);
    }
    Ok((ctx, token, false))
}

/// The security context of a channel: NTLM or Kerberos.
#[derive(Debug)]
pub(crate) enum Security {
    Ntlm(Box<NtlmContext>),
    /// Negotiate with SPNEGO: Kerberos or NTLM inside.
    Spnego(Box<SpnegoContext>),
    Kerberos(Box<KerberosContext>),
    /// Kerberos through the system GSSAPI (feature `gssapi`).
    #[cfg(feature = "gssapi")]
    Gssapi(Box<super::gssapi::GssContext>),
}

impl From<NtlmContext> for Security {
    fn from(c: NtlmContext) -> Self {
        Security::Ntlm(Box::new(c))
    }
}

/// Seals and frames a request: its content type and body.
pub(crate) fn seal_message(ctx: &mut Security, plain: &[u8]) -> Result<(&'static str, Bytes)> {
    match ctx {
        Security::Ntlm(c) => {
            let (signature, sealed) = c.seal(plain)?;
            Ok((
                sealing::SPNEGO_CONTENT_TYPE,
                sealing::frame(plain.len(), &signature, &sealed),
            ))
        }
        Security::Kerberos(c) => {
            let (signature, sealed) = c.seal(plain)?;
            Ok((
                KERBEROS_CONTENT_TYPE,
                frame(plain.len(), &signature, &sealed),
            ))
        }
        Security::Spnego(c) => {
            let (signature, sealed) = c.seal(plain)?;
            Ok((
                sealing::SPNEGO_CONTENT_TYPE,
                sealing::frame(plain.len(), &signature, &sealed),
            ))
        }
        #[cfg(feature = "gssapi")]
        Security::Gssapi(c) => {
            let (signature, sealed) = c.seal(plain)?;
            Ok(if c.spnego() {
                (
                    sealing::SPNEGO_CONTENT_TYPE,
                    sealing::frame(plain.len(), &signature, &sealed),
                )
            } else {
                (
                    KERBEROS_CONTENT_TYPE,
                    frame(plain.len(), &signature, &sealed),
                )
            })
        }
    }
}

/// Parses and unseals a sealed body: the plaintext and its declared length.
pub(crate) fn open_message(ctx: &mut Security, body: &[u8]) -> Result<(Vec<u8>, usize)> {
    match ctx {
        Security::Ntlm(c) => {
            let parts = sealing::parse(body).map_err(|e| Error::Auth(e.to_string()))?;
            Ok((c.unseal(parts.signature, parts.data)?, parts.original_len))
        }
        Security::Kerberos(c) => {
            let (len, signature, data) = parse(body)
                .map_err(|e| Error::Auth(format!("malformed multipart/encrypted body: {e}")))?;
            Ok((c.unseal(signature, data)?, len))
        }
        Security::Spnego(c) => {
            let parts = sealing::parse(body).map_err(|e| Error::Auth(e.to_string()))?;
            Ok((c.unseal(parts.signature, parts.data)?, parts.original_len))
        }
        #[cfg(feature = "gssapi")]
        Security::Gssapi(c) => {
            let (len, signature, data) = if c.spnego() {
                let p = sealing::parse(body).map_err(|e| Error::Auth(e.to_string()))?;
                (p.original_len, p.signature, p.data)
            } else {
                parse(body)
                    .map_err(|e| Error::Auth(format!("malformed multipart/encrypted body: {e}")))?
            };
            Ok((c.unseal(signature, data)?, len))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals() {
        assert_eq!(
            principal("vagrant", Some("tokio.test")).unwrap(),
            ("vagrant".into(), "TOKIO.TEST".into())
        );
        assert_eq!(
            principal("vagrant@TOKIO.TEST", None).unwrap(),
            ("vagrant".into(), "TOKIO.TEST".into())
        );
        assert_eq!(
            principal("CORP\\bob", Some("X")).unwrap(),
            ("bob".into(), "CORP".into())
        );
        assert!(principal("vagrant", None).is_err());
    }

    #[test]
    fn tickets_are_reused_for_a_while_then_forgotten() {
        let cache = TicketCache::default();
        assert!(cache.fresh().is_none());
        let tickets = |age: Duration| Tickets {
            as_replies: vec![vec![1]],
            tgs_replies: vec![vec![2]],
            since: Instant::now().checked_sub(age).unwrap(),
        };
        cache.put(tickets(Duration::ZERO));
        assert!(cache.fresh().is_some());
        cache.put(tickets(TICKET_REUSE + Duration::from_secs(1)));
        assert!(cache.fresh().is_none(), "stale tickets are not reused");
        cache.put(tickets(Duration::ZERO));
        cache.clear();
        assert!(cache.fresh().is_none());
    }

    #[test]
    fn an_unreachable_kdc_is_remembered_for_a_while() {
        let cache = TicketCache::default();
        assert!(cache.kdc_down().is_none());
        cache.kdc_unreachable("no ticket for u@R: the KDC tcp://kdc:88 did not answer");
        let e = cache.kdc_down().expect("remembered");
        assert_eq!(e.kerberos_kind(), Some(KerberosErrorKind::KdcUnreachable));
        let text = e.to_string();
        assert!(
            text.starts_with("Kerberos: no ticket for u@R: the KDC tcp://kdc:88")
                && text.contains("asks the KDC again 60s after"),
            "{text}"
        );
        // Forgotten after a while.
        *cache.kdc_down.lock().unwrap() = Some((
            Instant::now().checked_sub(KDC_RETRY_AFTER).unwrap(),
            "old".into(),
        ));
        assert!(cache.kdc_down().is_none());
        // And at once when tickets come (the KDC answered after all).
        cache.kdc_unreachable("again");
        cache.put(Tickets {
            as_replies: vec![vec![1]],
            tgs_replies: vec![vec![2]],
            since: Instant::now(),
        });
        assert!(cache.kdc_down().is_none());
    }

    #[test]
    fn kdc_error_codes_never_panic() {
        assert_eq!(krb_error_code(b""), None);
        assert_eq!(krb_error_code(&[0, 0, 0, 2, AS_REP, 0]), None);
        let mut junk = vec![0, 0, 0, 9, KRB_ERROR];
        for i in 0..64u8 {
            junk.push(i.wrapping_mul(37));
            assert_eq!(krb_error_code(&junk), None);
        }
    }

    #[test]
    fn the_channel_binding_is_handed_to_the_context() {
        let creds = match crate::Auth::kerberos("vagrant", "pw")
            .kerberos_options(KerberosOptions::new("127.0.0.1:88", "TOKIO.TEST"))
        {
            crate::Auth::Kerberos(k) => k,
            _ => unreachable!(),
        };
        // What an HTTPS connection computes from the server's certificate.
        let cbt = crate::transport::cbt::tls_server_end_point(b"certificate");
        let (ctx, account, realm) =
            KerberosClient::context(&creds, "host.tokio.test", Some(&cbt)).unwrap();
        assert_eq!(
            (account.as_str(), realm.as_str()),
            ("vagrant", "TOKIO.TEST")
        );
        let bound = ctx.channel_bindings().expect("bound to the channel");
        let parsed = sspi::channel_bindings::ChannelBindings::from_bytes(bound).unwrap();
        assert_eq!(parsed.application_data, cbt);
        // Plain HTTP: no channel, no binding.
        let (ctx, _, _) = KerberosClient::context(&creds, "host.tokio.test", None).unwrap();
        assert!(ctx.channel_bindings().is_none());
    }

    #[test]
    fn service_principal_override_and_canonicalisation() {
        let no_lookup = |_: &str| -> Option<String> { panic!("no DNS lookup expected") };
        let mut o = KerberosOptions::default();
        assert_eq!(service_principal(&o, "web01", no_lookup), "HTTP/web01");
        o.canonicalize_host = true;
        let alias = |h: &str| {
            assert_eq!(h, "winrm.corp.example");
            Some("Host17.Corp.Example.".to_string())
        };
        assert_eq!(
            service_principal(&o, "winrm.corp.example", alias),
            "HTTP/host17.corp.example"
        );
        // IP addresses are not canonicalised; an unresolvable name stays as given.
        assert_eq!(
            service_principal(&o, "10.1.2.3", no_lookup),
            "HTTP/10.1.2.3"
        );
        assert_eq!(service_principal(&o, "[::1]", no_lookup), "HTTP/[::1]");
        assert_eq!(service_principal(&o, "gone", |_| None), "HTTP/gone");
        // The override wins over both.
        o.spn = Some("HTTP/web01.corp.example@CORP.EXAMPLE".into());
        assert_eq!(
            service_principal(&o, "winrm.corp.example", no_lookup),
            "HTTP/web01.corp.example@CORP.EXAMPLE"
        );
        // The system resolver: localhost is its own canonical name everywhere.
        let creds = match crate::Auth::kerberos("u@R", "p").kerberos_options(KerberosOptions {
            canonicalize_host: true,
            ..KerberosOptions::default()
        }) {
            crate::Auth::Kerberos(k) => k,
            _ => unreachable!(),
        };
        assert_eq!(creds.service_principal("localhost"), "HTTP/localhost");
    }

    #[test]
    fn debug_hides_the_password() {
        let a = crate::Auth::kerberos("vagrant", "hunter2-secret")
            .kerberos_options(KerberosOptions::new("127.0.0.1:88", "TOKIO.TEST"));
        let d = format!("{a:?} {a:#?}");
        assert!(d.contains("vagrant") && d.contains("TOKIO.TEST"), "{d}");
        assert!(!d.contains("hunter2"), "{d}");
        assert_eq!(a.scheme(), "Kerberos");
        assert!(a.seals(false) && !a.seals(true));
    }
}
