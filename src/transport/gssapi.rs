//! Kerberos through the system GSSAPI (feature `gssapi`): the user's ticket cache (after
//! `kinit`; `KRB5CCNAME` honoured) or a client keytab, as pywinrm and pypsrp users have
//! them, on the libgssapi crate (MIT krb5 or Heimdal underneath).
//!
//! - One credential handle per client ([`GssCredential`], kept in the client's ticket
//!   cache): every connection's context is initiated from it, and the GSSAPI library
//!   keeps the ticket-granting ticket and the service tickets in its credential cache,
//!   so N connections cost one TGS exchange per service (the first handshake runs alone,
//!   see `logon.rs`; the others find its service ticket in the cache).
//! - A keytab logon keeps its tickets in a private in-memory cache (`MEMORY:`) of the
//!   client unless [`KerberosOptions::ccache`] names one: the user's own cache is not
//!   written to.
//! - The token is the krb5 mechanism's AP-REQ (RFC 1964 framing) under the HTTP
//!   `Kerberos` scheme, as the password path sends sspi's; the AP-REP is verified
//!   (mutual authentication); over HTTPS the context is bound to the channel
//!   (`tls-server-end-point` as the application data of the channel bindings).
//! - Message encryption ([MS-WSMV] §2.2.9.1, `application/HTTP-Kerberos-session-encrypted`):
//!   `gss_wrap_iov` with HEADER | DATA | PADDING and no TRAILER buffer, so that the
//!   trailer goes into the header and the token is rotated (RRC) exactly as Windows'
//!   `EncryptMessage` lays it out: the header is the signature, the encrypted data has
//!   the length of the plaintext (plus padding, none for AES). Unsealing is
//!   `gss_unwrap_iov` with HEADER | DATA | DATA, as pyspnego does for MIT.
//!
//! Errors are [`Error::Kerberos`] with a [`KerberosErrorKind`]: an expired ticket, no
//! credential cache, an unknown or mismatched principal, a missing keytab. No key
//! material reaches an error, a log line or `Debug`. The kinds are told apart by MIT
//! krb5's minor status codes; with Heimdal only the GSSAPI routine errors (expired,
//! no credentials) are, the rest is [`KerberosErrorKind::Other`] with the library's text.
//!
//! `gss_acquire_cred_from` (a credential store naming the cache and the client keytab)
//! has no safe wrapper in libgssapi: it is called in [`acquire_from`], the one unsafe
//! function of this crate.

use std::ffi::CString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext};
use libgssapi::credential::Cred;
use libgssapi::error::MajorFlags;
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_KRB5, GSS_MECH_SPNEGO, GSS_NT_KRB5_PRINCIPAL};
use libgssapi::util::{GssIov, GssIovType};

use super::kerberos::{KdcError, KerberosCredentials, KerberosOptions};
use crate::error::{Error, KerberosErrorKind, Result};

/// Where a GSSAPI logon takes its credentials from.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum GssSource {
    /// The ticket cache ([`KerberosOptions::ccache`], else `KRB5CCNAME`, else the
    /// default); its default principal, or this one from the cache collection.
    Cache { principal: Option<String> },
    /// A client keytab: initial tickets for `principal` from its key.
    Keytab { principal: String, path: PathBuf },
}

impl fmt::Debug for GssSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GssSource::Cache { principal } => f
                .debug_struct("TicketCache")
                .field("principal", principal)
                .finish(),
            // The path is not secret; the key in the file never leaves the library.
            GssSource::Keytab { principal, path } => f
                .debug_struct("Keytab")
                .field("principal", principal)
                .field("path", path)
                .finish(),
        }
    }
}

/// The one credential handle of a client, acquired at its first logon.
#[derive(Default)]
pub(crate) struct GssCredential {
    cred: Mutex<Option<Cred>>,
    /// The `MEMORY:` cache of a keytab logon (one per client, named once).
    memory_ccache: Mutex<Option<String>>,
}

impl fmt::Debug for GssCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GssCredential { .. }")
    }
}

impl GssCredential {
    fn get(&self, source: &GssSource, options: &KerberosOptions) -> Result<Cred> {
        let mut guard = self.cred.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cred) = guard.as_ref() {
            // A handle whose tickets ran out is acquired again (after a new kinit).
            if cred.lifetime().is_ok_and(|l| !l.is_zero()) {
                return Ok(cred.clone());
            }
        }
        let ccache = match (source, &options.ccache) {
            (_, Some(c)) => Some(c.clone()),
            (GssSource::Keytab { .. }, None) => Some(
                self.memory_ccache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert_with(|| format!("MEMORY:tokio-winrm-{}", uuid::Uuid::new_v4()))
                    .clone(),
            ),
            (GssSource::Cache { .. }, None) => None,
        };
        let cred = acquire(source, ccache.as_deref())?;
        *guard = Some(cred.clone());
        Ok(cred)
    }

    /// Forgets the handle: the next logon acquires a new one.
    pub(crate) fn clear(&self) {
        *self.cred.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// MIT krb5's error codes (`krb5/krb5.h`, and the `k5g` table of its GSSAPI mechanism),
/// as the minor status of a GSSAPI error.
mod code {
    pub const C_PRINCIPAL_UNKNOWN: i64 = -1765328378;
    pub const S_PRINCIPAL_UNKNOWN: i64 = -1765328377;
    pub const CLIENT_REVOKED: i64 = -1765328366;
    pub const KEY_EXPIRED: i64 = -1765328361;
    pub const PREAUTH_FAILED: i64 = -1765328360;
    pub const TKT_EXPIRED: i64 = -1765328352;
    pub const CC_NOTFOUND: i64 = -1765328243;
    pub const REALM_UNKNOWN: i64 = -1765328230;
    pub const KDC_UNREACH: i64 = -1765328228;
    pub const KT_NOTFOUND: i64 = -1765328203;
    pub const FCC_NOFILE: i64 = -1765328189;
    pub const REALM_CANT_RESOLVE: i64 = -1765328164;
    /// The base of the `k5g` table (MIT's krb5 GSSAPI mechanism).
    const K5G: i64 = 39756032;
    /// `KG_CCACHE_NOMATCH`: no cache in the collection holds the principal.
    pub const KG_CCACHE_NOMATCH: i64 = K5G;
    /// `KG_KEYTAB_NOMATCH`: no key in the keytab for the principal.
    pub const KG_KEYTAB_NOMATCH: i64 = K5G + 1;
    /// `KG_TGT_MISSING`: the cache has no ticket-granting ticket.
    pub const KG_TGT_MISSING: i64 = K5G + 2;
    /// `KG_EMPTY_CCACHE`: the cache holds no tickets.
    pub const KG_EMPTY_CCACHE: i64 = K5G + 12;
}

/// A GSSAPI failure as a typed error: `what` is the step, `who` the principal.
fn gss_error(e: &libgssapi::error::Error, what: &str, who: &str, keytab: bool) -> (Error, bool) {
    // The library's text (gss_display_status; MIT keeps the detailed text per thread,
    // so this runs on the thread of the failed call).
    let text = e.to_string().trim().to_string();
    let minor = i64::from(e.minor as i32);
    // The routine error is a number in bits 16-23 of the major status (RFC 2744 §3.9.1).
    let routine = (e.major.bits() >> 16) & 0xff;
    let (kind, refused, hint) = match minor {
        code::TKT_EXPIRED => (
            KerberosErrorKind::TicketExpired,
            false,
            "the Kerberos ticket has expired: run kinit to get a new one",
        ),
        code::FCC_NOFILE | code::CC_NOTFOUND | code::KG_EMPTY_CCACHE | code::KG_TGT_MISSING => (
            KerberosErrorKind::NoCredentialCache,
            false,
            "no Kerberos ticket cache with tickets: run kinit first (or set KRB5CCNAME), \
             or use a keytab",
        ),
        code::KG_CCACHE_NOMATCH => (
            KerberosErrorKind::UnknownPrincipal,
            false,
            "no ticket cache holds this principal: run kinit for it",
        ),
        code::C_PRINCIPAL_UNKNOWN => (
            KerberosErrorKind::UnknownPrincipal,
            true,
            "the KDC does not know this client principal",
        ),
        code::S_PRINCIPAL_UNKNOWN => (
            KerberosErrorKind::UnknownService,
            false,
            "the KDC does not know the service principal: check the host name, \
             KerberosOptions::spn (winrm --spn) or DNS canonicalisation",
        ),
        code::KT_NOTFOUND | code::KG_KEYTAB_NOMATCH => (
            KerberosErrorKind::UnknownPrincipal,
            false,
            "the keytab holds no usable key for this principal (klist -k FILE lists them)",
        ),
        code::PREAUTH_FAILED | code::CLIENT_REVOKED | code::KEY_EXPIRED => (
            KerberosErrorKind::Refused,
            true,
            "the KDC refused the credentials",
        ),
        code::KDC_UNREACH | code::REALM_UNKNOWN | code::REALM_CANT_RESOLVE => (
            KerberosErrorKind::KdcUnreachable,
            false,
            "no KDC of the realm could be reached",
        ),
        // GSS_S_CREDENTIALS_EXPIRED, GSS_S_CONTEXT_EXPIRED.
        _ if routine == 11 || routine == 12 => (
            KerberosErrorKind::TicketExpired,
            false,
            "the Kerberos ticket has expired: run kinit to get a new one",
        ),
        // GSS_S_NO_CRED.
        _ if routine == 7 => (
            KerberosErrorKind::NoCredentialCache,
            false,
            "no Kerberos credentials: run kinit first (or set KRB5CCNAME), or use a keytab",
        ),
        _ => (KerberosErrorKind::Other, false, ""),
    };
    // From a keytab the cache is the client's own: when it cannot be filled, the
    // keytab has no key for the principal (MIT then reports the empty cache).
    let (kind, hint) = if keytab && kind == KerberosErrorKind::NoCredentialCache {
        (
            KerberosErrorKind::UnknownPrincipal,
            "the keytab holds no usable key for this principal (klist -k FILE lists them)",
        )
    } else {
        (kind, hint)
    };
    let message = if hint.is_empty() {
        format!("{what} for {who}: {text}")
    } else {
        format!("{hint} ({what} for {who}: {text})")
    };
    (Error::Kerberos { kind, message }, refused)
}

fn principal_name(principal: &str) -> Result<Name> {
    Name::new(principal.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL)).map_err(|e| {
        Error::Config(format!(
            "invalid Kerberos principal name {principal:?}: {e}"
        ))
    })
}

/// The credential handle of `source`; `ccache` names the cache to read (or, for a
/// keytab, to fill).
fn acquire(source: &GssSource, ccache: Option<&str>) -> Result<Cred> {
    let (principal, keytab) = match source {
        GssSource::Cache { principal } => (principal.as_deref(), None),
        GssSource::Keytab { principal, path } => {
            if !path.is_file() {
                return Err(Error::Kerberos {
                    kind: KerberosErrorKind::KeytabMissing,
                    message: format!("the keytab {} does not exist", path.display()),
                });
            }
            (Some(principal.as_str()), Some(path.as_path()))
        }
    };
    let name = principal.map(principal_name).transpose()?;
    let who = principal.unwrap_or("the cache's default principal");
    acquire_from(name.as_ref(), ccache, keytab).map_err(|e| {
        let what = if keytab.is_some() {
            "acquiring credentials from the keytab"
        } else {
            "reading the ticket cache"
        };
        gss_error(&e, what, who, keytab.is_some()).0
    })
}

/// `gss_acquire_cred_from` for initiating, with the credential store `{ccache,
/// client_keytab}` (both optional: without either it is `gss_acquire_cred`).
#[allow(unsafe_code)]
fn acquire_from(
    name: Option<&Name>,
    ccache: Option<&str>,
    client_keytab: Option<&Path>,
) -> std::result::Result<Cred, libgssapi::error::Error> {
    use libgssapi_sys as sys;
    let bad = || libgssapi::error::Error {
        major: MajorFlags::GSS_S_FAILURE,
        minor: 0,
    };
    let keys = [
        (c"ccache", ccache.map(str::to_string)),
        (
            c"client_keytab",
            client_keytab.map(|p| p.to_string_lossy().into_owned()),
        ),
    ];
    let mut values = Vec::new();
    for (key, value) in keys {
        if let Some(v) = value {
            values.push((key, CString::new(v).map_err(|_| bad())?));
        }
    }
    let mut elements: Vec<sys::gss_key_value_element_desc> = values
        .iter()
        .map(|(k, v)| sys::gss_key_value_element_desc {
            key: k.as_ptr(),
            value: v.as_ptr(),
        })
        .collect();
    let store = sys::gss_key_value_set_desc {
        count: elements.len() as sys::OM_uint32,
        elements: elements.as_mut_ptr(),
    };
    // The desired name: exported from libgssapi's Name and imported again as a raw
    // handle (libgssapi does not hand out its own).
    let mut raw_name: sys::gss_name_t = std::ptr::null_mut();
    let mut minor: sys::OM_uint32 = 0;
    if let Some(name) = name {
        // An exported name is a mechanism name: canonicalised for krb5 first.
        let exported = name.canonicalize(Some(GSS_MECH_KRB5))?.export()?;
        let bytes: &[u8] = &exported;
        let mut buf = sys::gss_buffer_desc {
            length: bytes.len(),
            value: bytes.as_ptr() as *mut std::ffi::c_void,
        };
        // GSS_C_NT_EXPORT_NAME: 1.3.6.1.5.6.4.
        let mut oid_bytes = *b"\x2b\x06\x01\x05\x06\x04";
        let mut oid = sys::gss_OID_desc {
            length: oid_bytes.len() as sys::OM_uint32,
            elements: oid_bytes.as_mut_ptr().cast(),
        };
        // SAFETY: every pointer is valid for the call; gss_import_name copies the buffer.
        let major = unsafe { sys::gss_import_name(&mut minor, &mut buf, &mut oid, &mut raw_name) };
        if major != sys::GSS_S_COMPLETE {
            return Err(libgssapi::error::Error {
                major: MajorFlags::from_bits_retain(major),
                minor,
            });
        }
    }
    let mut cred: sys::gss_cred_id_t = std::ptr::null_mut();
    // SAFETY: `raw_name` is null or a name imported above; the store and its strings
    // (`elements`, `values`) outlive the call; the outputs we do not want are null.
    let major = unsafe {
        sys::gss_acquire_cred_from(
            &mut minor,
            raw_name,
            sys::_GSS_C_INDEFINITE,
            std::ptr::null_mut(),
            sys::GSS_C_INITIATE as sys::gss_cred_usage_t,
            &store,
            &mut cred,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if !raw_name.is_null() {
        let mut m = 0;
        // SAFETY: `raw_name` came from gss_import_name and is released once.
        unsafe { sys::gss_release_name(&mut m, &mut raw_name) };
    }
    if major != sys::GSS_S_COMPLETE {
        return Err(libgssapi::error::Error {
            major: MajorFlags::from_bits_retain(major),
            minor,
        });
    }
    // SAFETY: a credential handle just acquired, owned by the returned Cred from here.
    Ok(unsafe { Cred::from_c(cred) })
}

/// A GSSAPI krb5 client context of one connection.
pub(crate) struct GssContext {
    ctx: ClientCtx,
    channel_binding: Option<Vec<u8>>,
    /// Negotiated through SPNEGO (`KerberosOptions::spnego`).
    spnego: bool,
}

impl fmt::Debug for GssContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GssContext { .. }")
    }
}

fn flags() -> CtxFlags {
    CtxFlags::GSS_C_MUTUAL_FLAG
        | CtxFlags::GSS_C_CONF_FLAG
        | CtxFlags::GSS_C_INTEG_FLAG
        | CtxFlags::GSS_C_SEQUENCE_FLAG
        | CtxFlags::GSS_C_REPLAY_FLAG
}

impl GssContext {
    /// The first step for `spn` (`HTTP/host`): the AP-REQ token, after a TGS exchange
    /// when the cache has no ticket for the service yet. Blocking (the KDC): call it on
    /// a blocking thread. The error says whether the KDC refused the client's own
    /// credentials (which closes the logon gate).
    pub(crate) fn client(
        creds: &KerberosCredentials,
        source: &GssSource,
        spn: &str,
        channel_binding: Option<&[u8]>,
        store: &GssCredential,
    ) -> std::result::Result<(GssContext, Vec<u8>), KdcError> {
        let cred = store.get(source, &creds.options)?;
        let target = principal_name(spn)?;
        let spnego = creds.options.spnego;
        let mech = if spnego {
            GSS_MECH_SPNEGO
        } else {
            GSS_MECH_KRB5
        };
        let mut ctx = ClientCtx::new(Some(cred), target, flags(), Some(mech));
        let who = match source {
            GssSource::Cache { principal: Some(p) } | GssSource::Keytab { principal: p, .. } => {
                p.clone()
            }
            GssSource::Cache { principal: None } => "the cache's default principal".into(),
        };
        match ctx.step(None, channel_binding) {
            Ok(Some(token)) => Ok((
                GssContext {
                    ctx,
                    channel_binding: channel_binding.map(<[u8]>::to_vec),
                    spnego,
                },
                token.to_vec(),
            )),
            Ok(None) => Err(Error::Auth(
                "Kerberos (GSSAPI): the context completed without a token".into(),
            )
            .into()),
            Err(e) => {
                let (error, refused) = gss_error(
                    &e,
                    &format!("getting a service ticket for {spn}"),
                    &who,
                    matches!(source, GssSource::Keytab { .. }),
                );
                if matches!(
                    &error,
                    Error::Kerberos {
                        kind: KerberosErrorKind::TicketExpired
                            | KerberosErrorKind::NoCredentialCache,
                        ..
                    }
                ) {
                    store.clear();
                }
                Err(KdcError { error, refused })
            }
        }
    }

    /// Whether the context was negotiated through SPNEGO (its messages are framed as
    /// `application/HTTP-SPNEGO-session-encrypted`).
    pub(crate) fn spnego(&self) -> bool {
        self.spnego
    }

    /// Verifies the server's AP-REP (mutual authentication; with SPNEGO, inside its
    /// final NegTokenResp).
    pub(crate) fn finish(&mut self, ap_rep: &[u8]) -> Result<()> {
        match self.ctx.step(Some(ap_rep), self.channel_binding.as_deref()) {
            Ok(None) if self.ctx.is_complete() => Ok(()),
            Ok(_) => Err(Error::Auth(
                "Kerberos (GSSAPI): the server's AP-REP did not complete the context".into(),
            )),
            Err(e) => Err(Error::Auth(format!(
                "Kerberos (GSSAPI): the server's AP-REP does not verify: {}",
                e.to_string().trim()
            ))),
        }
    }

    /// Seals `plain`: the wrap token's header (the signature) and the encrypted data.
    pub(crate) fn seal(&mut self, plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
        let mut data = plain.to_vec();
        let mut iov = [
            GssIov::new_alloc(GssIovType::Header),
            GssIov::new(GssIovType::Data, &mut data),
            GssIov::new_alloc(GssIovType::Padding),
        ];
        self.ctx.wrap_iov(true, &mut iov).map_err(|e| {
            Error::Auth(format!(
                "Kerberos (GSSAPI): sealing a message: {}",
                e.to_string().trim()
            ))
        })?;
        let header = iov[0].to_vec();
        let padding = iov[2].to_vec();
        drop(iov);
        data.extend_from_slice(&padding);
        Ok((header, data))
    }

    /// Unseals and verifies a message; any failure is an [`Error::Auth`].
    pub(crate) fn unseal(&mut self, signature: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        let mut header = signature.to_vec();
        let mut data = sealed.to_vec();
        let mut empty: [u8; 0] = [];
        let mut iov = [
            GssIov::new(GssIovType::Header, &mut header),
            GssIov::new(GssIovType::Data, &mut data),
            GssIov::new(GssIovType::Data, &mut empty),
        ];
        self.ctx.unwrap_iov(&mut iov).map_err(|e| {
            Error::Auth(format!(
                "Kerberos (GSSAPI): message signature verification failed: {}",
                e.to_string().trim()
            ))
        })?;
        drop(iov);
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gss(routine: u32, minor: i64) -> libgssapi::error::Error {
        libgssapi::error::Error {
            major: MajorFlags::from_bits_retain(routine << 16),
            minor: minor as i32 as u32,
        }
    }

    #[test]
    fn errors_are_typed_and_say_what_to_do() {
        let kind = |e: &Error| e.kerberos_kind().unwrap();
        let (e, refused) = gss_error(&gss(11, code::TKT_EXPIRED), "x", "alice@R", false);
        assert_eq!(kind(&e), KerberosErrorKind::TicketExpired);
        assert!(e.is_ticket_expired() && e.is_auth() && !refused);
        let text = e.to_string();
        assert!(text.contains("expired") && text.contains("kinit"), "{text}");
        assert!(text.contains("alice@R"), "{text}");
        // The GSSAPI routine error alone is enough.
        let (e, _) = gss_error(&gss(11, 0), "x", "alice@R", false);
        assert!(e.is_ticket_expired(), "{e}");
        let (e, _) = gss_error(&gss(7, code::FCC_NOFILE), "x", "alice@R", false);
        assert_eq!(kind(&e), KerberosErrorKind::NoCredentialCache);
        assert!(e.to_string().contains("kinit"), "{e}");
        // From a keytab, an unfillable cache means the keytab lacks the key.
        let (e, _) = gss_error(&gss(7, code::FCC_NOFILE), "x", "alice@R", true);
        assert_eq!(kind(&e), KerberosErrorKind::UnknownPrincipal, "{e}");
        let (e, _) = gss_error(&gss(7, code::KG_CCACHE_NOMATCH), "x", "bob@R", false);
        assert_eq!(kind(&e), KerberosErrorKind::UnknownPrincipal);
        let (e, refused) = gss_error(&gss(13, code::C_PRINCIPAL_UNKNOWN), "x", "bob@R", true);
        assert_eq!(kind(&e), KerberosErrorKind::UnknownPrincipal);
        assert!(
            refused,
            "the KDC's verdict on the client closes the logon gate"
        );
        let (e, refused) = gss_error(&gss(13, code::PREAUTH_FAILED), "x", "bob@R", true);
        assert_eq!(kind(&e), KerberosErrorKind::Refused);
        assert!(refused);
        let (e, refused) = gss_error(&gss(13, code::S_PRINCIPAL_UNKNOWN), "x", "bob@R", false);
        assert_eq!(kind(&e), KerberosErrorKind::UnknownService);
        assert!(!refused && e.to_string().contains("spn"), "{e}");
        let (e, _) = gss_error(&gss(13, 12345), "x", "bob@R", false);
        assert_eq!(kind(&e), KerberosErrorKind::Other);
    }

    #[test]
    fn a_missing_keytab_is_named_before_the_library_is_asked() {
        let source = GssSource::Keytab {
            principal: "svc@TOKIO.TEST".into(),
            path: PathBuf::from("/nonexistent/tokio-winrm/client.keytab"),
        };
        let e = acquire(&source, Some("MEMORY:tokio-winrm-test")).unwrap_err();
        assert_eq!(e.kerberos_kind(), Some(KerberosErrorKind::KeytabMissing));
        assert!(
            e.to_string()
                .contains("/nonexistent/tokio-winrm/client.keytab"),
            "{e}"
        );
    }

    #[test]
    fn debug_names_the_source_and_no_secret() {
        let a = crate::Auth::kerberos_keytab("svc@TOKIO.TEST", "/etc/svc.keytab");
        let d = format!("{a:?}");
        assert!(d.contains("Keytab") && d.contains("svc@TOKIO.TEST"), "{d}");
        assert!(d.contains("/etc/svc.keytab"), "{d}");
        assert_eq!(a.user(), Some("svc@TOKIO.TEST"));
        assert!(a.seals(false) && !a.seals(true));
        let a = crate::Auth::kerberos_ticket_cache(None);
        assert!(format!("{a:?}").contains("TicketCache"), "{a:?}");
        assert_eq!(a.user(), None);
        assert_eq!(a.scheme(), "Kerberos");
    }
}
