//! SPNEGO (RFC 4178, [MS-SPNG]) as Windows' WinRM listener speaks it under
//! `Authorization: Negotiate`: the client's `NegTokenInit` (in the GSS-API
//! InitialContextToken framing, OID 1.3.6.1.5.5.2) lists its mechanisms and carries an
//! optimistic token for the first; the acceptor answers with a `NegTokenResp`. The
//! simulator accepts a Kerberos mechanism token (krb5 or Microsoft's krb5 OID) and
//! answers `accept-completed` with the AP-REP. SPNEGO carrying NTLM goes to sspi's
//! Negotiate acceptor (see `ntlm.rs`). The ASN.1 types are picky-krb's. Never panics
//! on any input.

use picky_asn1::wrapper::{
    ExplicitContextTag0, ExplicitContextTag1, ExplicitContextTag2, OctetStringAsn1, Optional,
};
use picky_asn1_der::Asn1RawDer;
use picky_asn1_x509::oids;
use picky_krb::gss_api::{GssApiNegInit, MechType, NegTokenTarg, NegTokenTarg1};

/// The Kerberos token of a SPNEGO `NegTokenInit` whose first mechanism is Kerberos:
/// `(the mechanism's OID as offered, its token)`. `None` for anything else (another
/// mechanism first, no optimistic token, not SPNEGO at all).
pub(crate) fn kerberos_token(token: &[u8]) -> Option<(MechType, Vec<u8>)> {
    // [APPLICATION 0] IMPLICIT SEQUENCE { thisMech OID, [0] NegTokenInit }: read as a
    // SEQUENCE (what picky-krb's ApplicationTag0 does, without its unwrap).
    if token.first() != Some(&0x60) {
        return None;
    }
    let mut raw = token.to_vec();
    raw[0] = 0x30;
    let init: GssApiNegInit = picky_asn1_der::from_bytes(&raw).ok()?;
    if init.oid.0 != oids::spnego() {
        return None;
    }
    let init = init.neg_token_init.0;
    let first = init.mech_types.0.as_ref()?.0.0.first()?.clone();
    if first.0 != oids::krb5() && first.0 != oids::ms_krb5() {
        return None;
    }
    let mech_token = init.mech_token.0.as_ref()?.0.0.clone();
    Some((first, mech_token))
}

/// `NegTokenResp { negState accept-completed, supportedMech, responseToken }`.
pub(crate) fn accept_completed(mech: MechType, response_token: Vec<u8>) -> Vec<u8> {
    let resp: NegTokenTarg1 = ExplicitContextTag1::from(NegTokenTarg {
        // ENUMERATED accept-completed (0).
        neg_result: Optional::from(Some(ExplicitContextTag0::from(Asn1RawDer(vec![
            0x0a, 0x01, 0x00,
        ])))),
        supported_mech: Optional::from(Some(ExplicitContextTag1::from(mech))),
        response_token: Optional::from(Some(ExplicitContextTag2::from(OctetStringAsn1::from(
            response_token,
        )))),
        mech_list_mic: Optional::from(None),
    });
    picky_asn1_der::to_vec(&resp).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    use picky_asn1::wrapper::{Asn1SequenceOf, ObjectIdentifierAsn1};
    use picky_krb::gss_api::NegTokenInit;

    /// A `NegTokenInit` in its InitialContextToken framing, as a client sends it.
    fn neg_token_init(mechs: &[oid::ObjectIdentifier], mech_token: &[u8]) -> Vec<u8> {
        let init = GssApiNegInit {
            oid: ObjectIdentifierAsn1::from(oids::spnego()),
            neg_token_init: ExplicitContextTag0::from(NegTokenInit {
                mech_types: Optional::from(Some(ExplicitContextTag0::from(Asn1SequenceOf::from(
                    mechs
                        .iter()
                        .cloned()
                        .map(ObjectIdentifierAsn1::from)
                        .collect::<Vec<_>>(),
                )))),
                req_flags: Optional::from(None),
                mech_token: Optional::from(Some(ExplicitContextTag2::from(OctetStringAsn1::from(
                    mech_token.to_vec(),
                )))),
                mech_list_mic: Optional::from(None),
            }),
        };
        let mut der = picky_asn1_der::to_vec(&init).unwrap();
        der[0] = 0x60;
        der
    }

    #[test]
    fn kerberos_first_is_taken_anything_else_is_not() {
        let t = neg_token_init(
            &[oids::krb5(), oids::ms_krb5(), oids::ntlm_ssp()],
            b"ap-req",
        );
        let (mech, token) = kerberos_token(&t).unwrap();
        assert_eq!(mech.0, oids::krb5());
        assert_eq!(token, b"ap-req");
        let t = neg_token_init(&[oids::ms_krb5(), oids::ntlm_ssp()], b"ap-req");
        assert_eq!(kerberos_token(&t).unwrap().0.0, oids::ms_krb5());
        assert!(
            kerberos_token(&neg_token_init(&[oids::ntlm_ssp(), oids::krb5()], b"ntlm")).is_none()
        );
        assert!(kerberos_token(b"NTLMSSP\0\x01\0\0\0").is_none());
        for cut in 0..t.len() {
            assert!(kerberos_token(&t[..cut]).is_none()); // never panics
        }
    }

    #[test]
    fn kerberos_first_with_an_unusable_token_gets_ntlm_selected() {
        use wsman_protocol::security::spnego::SpnegoContext;
        // As a Windows client offers it: Kerberos first with an optimistic AP-REQ (here
        // junk: the NTLM acceptor cannot use it), NTLM after.
        let t = neg_token_init(
            &[oids::ms_krb5(), oids::krb5(), oids::ntlm_ssp()],
            b"an AP-REQ the acceptor cannot use",
        );
        let mut server = SpnegoContext::ntlm_server(Vec::new()).unwrap();
        let (status, resp) = server.accept(&t, None).unwrap();
        assert_eq!(status, sspi::SecurityStatus::ContinueNeeded);
        let back: NegTokenTarg1 = picky_asn1_der::from_bytes(&resp).unwrap();
        // accept-incomplete, NTLM selected, no token: the client sends its NEGOTIATE.
        assert_eq!(back.0.neg_result.0.as_ref().unwrap().0.0, vec![0x0a, 1, 1]);
        assert_eq!(
            back.0.supported_mech.0.as_ref().unwrap().0.0,
            oids::ntlm_ssp()
        );
        assert!(back.0.response_token.0.is_none());
        // Kerberos alone is refused (no Kerberos acceptor here).
        let t = neg_token_init(&[oids::krb5()], b"ap-req");
        let mut server = SpnegoContext::ntlm_server(Vec::new()).unwrap();
        assert!(server.accept(&t, None).is_err());
    }

    #[test]
    fn the_answer_is_a_neg_token_resp() {
        let resp = accept_completed(ObjectIdentifierAsn1::from(oids::krb5()), b"ap-rep".to_vec());
        // [1] { SEQUENCE { [0] ENUMERATED 0, [1] OID, [2] OCTET STRING } }
        assert_eq!(resp[0], 0xa1);
        let back: NegTokenTarg1 = picky_asn1_der::from_bytes(&resp).unwrap();
        assert_eq!(
            back.0.response_token.0.as_ref().unwrap().0.0,
            b"ap-rep".to_vec()
        );
        assert_eq!(back.0.neg_result.0.as_ref().unwrap().0.0, vec![0x0a, 1, 0]);
    }
}
