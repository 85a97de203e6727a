//! Channel binding `tls-server-end-point` (RFC 5929 §4): the hash of the server's TLS
//! certificate, bound into the NTLM AUTHENTICATE message so that a relayed handshake
//! fails (Windows' `CbtHardeningLevel`, Extended Protection for Authentication).

use sha2::{Digest, Sha256, Sha384, Sha512};

/// Which hash the certificate's signature algorithm calls for; MD5 and SHA-1 map to
/// SHA-256 as RFC 5929 says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// Reads one DER TLV header: (tag, header length, content length).
fn tlv(der: &[u8]) -> Option<(u8, usize, usize)> {
    let tag = *der.first()?;
    let first = *der.get(1)?;
    if first < 0x80 {
        return Some((tag, 2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let mut len = 0usize;
    for b in der.get(2..2 + n)? {
        len = (len << 8) | usize::from(*b);
    }
    Some((tag, 2 + n, len))
}

/// The OID of the outer `signatureAlgorithm` of an X.509 certificate.
fn signature_oid(cert: &[u8]) -> Option<&[u8]> {
    let (tag, h, _) = tlv(cert)?; // Certificate ::= SEQUENCE
    if tag != 0x30 {
        return None;
    }
    let inner = cert.get(h..)?;
    let (_, th, tl) = tlv(inner)?; // tbsCertificate
    let alg = inner.get(th.checked_add(tl)?..)?;
    let (tag, ah, _) = tlv(alg)?; // AlgorithmIdentifier ::= SEQUENCE
    if tag != 0x30 {
        return None;
    }
    let oid = alg.get(ah..)?;
    let (tag, oh, ol) = tlv(oid)?;
    if tag != 0x06 {
        return None;
    }
    oid.get(oh..oh.checked_add(ol)?)
}

fn hash_for(cert: &[u8]) -> Hash {
    // sha384WithRSAEncryption 1.2.840.113549.1.1.12, sha512WithRSAEncryption ...1.13,
    // ecdsa-with-SHA384 1.2.840.10045.4.3.3, ecdsa-with-SHA512 ...4.3.4.
    const RSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
    const RSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
    const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    const ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
    match signature_oid(cert) {
        Some(o) if o == RSA_SHA384 || o == ECDSA_SHA384 => Hash::Sha384,
        Some(o) if o == RSA_SHA512 || o == ECDSA_SHA512 => Hash::Sha512,
        _ => Hash::Sha256,
    }
}

/// The channel-binding application data for a server certificate (DER):
/// `tls-server-end-point:` followed by the certificate hash.
pub(crate) fn tls_server_end_point(cert_der: &[u8]) -> Vec<u8> {
    let mut out = b"tls-server-end-point:".to_vec();
    match hash_for(cert_der) {
        Hash::Sha256 => out.extend_from_slice(&Sha256::digest(cert_der)),
        Hash::Sha384 => out.extend_from_slice(&Sha384::digest(cert_der)),
        Hash::Sha512 => out.extend_from_slice(&Sha512::digest(cert_der)),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_hash_of_the_signature_algorithm() {
        // Certificate { tbs: SEQUENCE {}, sigAlg: SEQUENCE { OID ecdsa-with-SHA384 } }
        let cert = [
            0x30, 0x0e, 0x30, 0x00, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04,
            0x03, 0x03,
        ];
        assert_eq!(hash_for(&cert), Hash::Sha384);
        let cb = tls_server_end_point(&cert);
        assert_eq!(cb.len(), 21 + 48);
        assert!(cb.starts_with(b"tls-server-end-point:"));
        // Anything unreadable falls back to SHA-256 and never panics.
        for cut in 0..cert.len() {
            assert_eq!(hash_for(&cert[..cut]), Hash::Sha256);
        }
        assert_eq!(tls_server_end_point(b"").len(), 21 + 32);
    }
}
