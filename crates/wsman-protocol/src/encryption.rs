//! WinRM message encryption over HTTP ([MS-WSMV] §2.2.9.1): the `multipart/encrypted`
//! framing of a sealed SOAP message, shared by the client and the simulator. Pure: no IO.
//!
//! A sealed body is
//!
//! ```text
//! --Encrypted Boundary\r\n
//! \tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n
//! \tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=N\r\n
//! --Encrypted Boundary\r\n
//! \tContent-Type: application/octet-stream\r\n
//! <u32 LE signature length><signature><sealed data>--Encrypted Boundary--\r\n
//! ```

use bytes::{BufMut, Bytes, BytesMut};

/// The protocol of NTLM/SPNEGO session encryption.
pub const SPNEGO_PROTOCOL: &str = "application/HTTP-SPNEGO-session-encrypted";
/// The `Content-Type` of a sealed NTLM/SPNEGO message.
pub const SPNEGO_CONTENT_TYPE: &str = "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary=\"Encrypted Boundary\"";
/// The type of the message inside.
pub const SOAP_TYPE: &str = "application/soap+xml;charset=UTF-8";
/// A signature longer than this is not a signature (NTLM: 16 bytes; Kerberos: ~60).
const MAX_SIGNATURE: usize = 4096;

/// Why a body is not a well-formed sealed message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed multipart/encrypted body: {0}")]
pub struct FrameError(pub &'static str);

/// The parts of a sealed message, borrowed from the body.
#[derive(Debug, PartialEq, Eq)]
pub struct Sealed<'a> {
    /// `Length=` of `OriginalContent`: the length of the plaintext.
    pub original_len: usize,
    /// The signature (NTLM: 16 bytes).
    pub signature: &'a [u8],
    /// The sealed data.
    pub data: &'a [u8],
}

/// True when a `Content-Type` names `multipart/encrypted` or
/// `multipart/x-multi-encrypted` (CredSSP's chunked form, [MS-WSMV] §2.2.9.1.3).
pub fn is_encrypted(content_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|t| {
        let t = t.trim();
        t.eq_ignore_ascii_case("multipart/encrypted")
            || t.eq_ignore_ascii_case("multipart/x-multi-encrypted")
    })
}

/// The protocol of CredSSP session encryption ([MS-WSMV] §2.2.9.1.3).
pub const CREDSSP_PROTOCOL: &str = "application/HTTP-CredSSP-session-encrypted";
/// The `Content-Type` of a CredSSP-encrypted message of one part.
pub const CREDSSP_CONTENT_TYPE: &str = "multipart/encrypted;protocol=\"application/HTTP-CredSSP-session-encrypted\";boundary=\"Encrypted Boundary\"";
/// The `Content-Type` of a CredSSP-encrypted message of several parts (a plaintext
/// over [`CREDSSP_CHUNK`] bytes).
pub const CREDSSP_MULTI_CONTENT_TYPE: &str = "multipart/x-multi-encrypted;protocol=\"application/HTTP-CredSSP-session-encrypted\";boundary=\"Encrypted Boundary\"";
/// The most plaintext one CredSSP-encrypted part carries: 16 KiB (one TLS record).
pub const CREDSSP_CHUNK: usize = 16 * 1024;

/// One encrypted part of a `multipart/encrypted` or `multipart/x-multi-encrypted` body.
#[derive(Debug, PartialEq, Eq)]
pub struct Part<'a> {
    /// `Length=` of `OriginalContent`: the length of this part's plaintext.
    pub original_len: usize,
    /// The u32 before the encrypted data (CredSSP: the TLS trailer length).
    pub prefix: u32,
    /// The encrypted data (CredSSP: whole TLS records).
    pub data: &'a [u8],
}

/// Frames encrypted parts, each `(plaintext length, prefix, data)`, as one body: the
/// parts one after the other and the closing boundary. With one part this is the
/// layout of [`frame_as`] (whose prefix is the signature length).
pub fn frame_parts<'a>(
    protocol: &str,
    parts: impl IntoIterator<Item = (usize, u32, &'a [u8])>,
) -> Bytes {
    let mut b = BytesMut::new();
    for (original_len, prefix, data) in parts {
        b.reserve(data.len() + 200);
        b.put_slice(b"--Encrypted Boundary\r\n\tContent-Type: ");
        b.put_slice(protocol.as_bytes());
        b.put_slice(b"\r\n\tOriginalContent: type=");
        b.put_slice(SOAP_TYPE.as_bytes());
        b.put_slice(format!(";Length={original_len}\r\n").as_bytes());
        b.put_slice(b"--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n");
        b.put_u32_le(prefix);
        b.put_slice(data);
    }
    b.put_slice(b"--Encrypted Boundary--\r\n");
    b.freeze()
}

/// Splits a body of one or more encrypted parts of `protocol` ([`frame_parts`]). A part
/// ends where the next part's header (boundary, `Content-Type` and protocol) starts, or
/// at the closing boundary. Never panics on any input.
///
/// # Errors
/// [`FrameError`] naming what is wrong: the body does not end with the closing boundary, a
/// part does not start with `protocol`'s header, a part lacks its `OriginalContent` length,
/// its `application/octet-stream` part or the length before the encrypted data, or there is
/// no part at all.
pub fn parse_parts<'a>(body: &'a [u8], protocol: &str) -> Result<Vec<Part<'a>>, FrameError> {
    const OPEN: &[u8] = b"--Encrypted Boundary\r\n";
    const CLOSE: &[u8] = b"--Encrypted Boundary--";
    let mut head = Vec::with_capacity(OPEN.len() + protocol.len() + 20);
    head.extend_from_slice(OPEN);
    head.extend_from_slice(b"\tContent-Type: ");
    head.extend_from_slice(protocol.as_bytes());
    head.extend_from_slice(b"\r\n");
    let body = body.strip_suffix(b"\r\n").unwrap_or(body);
    let mut rest = body
        .strip_suffix(CLOSE)
        .ok_or(FrameError("does not end with the closing boundary"))?;
    let mut parts = Vec::new();
    while !rest.is_empty() {
        if rest.len() < head.len() || !rest[..head.len()].eq_ignore_ascii_case(&head) {
            return Err(FrameError(
                "a part does not start with the protocol's header",
            ));
        }
        let after = &rest[head.len()..];
        let second = find(after, OPEN).ok_or(FrameError("no second part"))?;
        let original_len = original_len(&after[..second])?;
        let part = &after[second + OPEN.len()..];
        let line_end =
            find(part, b"\r\n").ok_or(FrameError("no header line in the second part"))?;
        if find_ci(&part[..line_end], b"application/octet-stream").is_none() {
            return Err(FrameError(
                "the second part is not application/octet-stream",
            ));
        }
        let payload = &part[line_end + 2..];
        let end = find(payload, &head).unwrap_or(payload.len());
        let (prefix, data) = payload[..end]
            .split_first_chunk::<4>()
            .ok_or(FrameError("no length before the encrypted data"))?;
        parts.push(Part {
            original_len,
            prefix: u32::from_le_bytes(*prefix),
            data,
        });
        rest = &payload[end..];
    }
    if parts.is_empty() {
        return Err(FrameError("no encrypted part"));
    }
    Ok(parts)
}

/// Frames a sealed message.
pub fn frame(original_len: usize, signature: &[u8], data: &[u8]) -> Bytes {
    frame_as(SPNEGO_PROTOCOL, original_len, signature, data)
}

/// Frames a sealed message whose first part names `protocol` (the same layout for
/// NTLM/SPNEGO and Kerberos session encryption).
pub fn frame_as(protocol: &str, original_len: usize, signature: &[u8], data: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(data.len() + signature.len() + 256);
    b.put_slice(b"--Encrypted Boundary\r\n\tContent-Type: ");
    b.put_slice(protocol.as_bytes());
    b.put_slice(b"\r\n\tOriginalContent: type=");
    b.put_slice(SOAP_TYPE.as_bytes());
    b.put_slice(format!(";Length={original_len}\r\n").as_bytes());
    b.put_slice(b"--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n");
    b.put_u32_le(u32::try_from(signature.len()).unwrap_or(u32::MAX));
    b.put_slice(signature);
    b.put_slice(data);
    b.put_slice(b"--Encrypted Boundary--\r\n");
    b.freeze()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Where `needle` first stands in `hay`, ASCII case ignored.
pub fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

/// Splits a sealed body into its parts. Never panics on any input.
///
/// # Errors
/// [`FrameError`] naming what is missing or wrong: the opening boundary, the second part,
/// the `HTTP-SPNEGO-session-encrypted` protocol, the `OriginalContent` length, the
/// `application/octet-stream` part, the closing boundary or the signature length.
pub fn parse(body: &[u8]) -> Result<Sealed<'_>, FrameError> {
    const OPEN: &[u8] = b"--Encrypted Boundary\r\n";
    let rest = body
        .strip_prefix(OPEN)
        .ok_or(FrameError("does not start with the boundary"))?;
    let second = find(rest, OPEN).ok_or(FrameError("no second part"))?;
    let header = &rest[..second];
    if find_ci(header, SPNEGO_PROTOCOL.as_bytes()).is_none() {
        return Err(FrameError(
            "the first part is not HTTP-SPNEGO-session-encrypted",
        ));
    }
    let original_len = original_len(header)?;
    let part = &rest[second + OPEN.len()..];
    let line_end = find(part, b"\r\n").ok_or(FrameError("no header line in the second part"))?;
    if find_ci(&part[..line_end], b"application/octet-stream").is_none() {
        return Err(FrameError(
            "the second part is not application/octet-stream",
        ));
    }
    let (signature, data) = split_payload(&part[line_end + 2..])?;
    Ok(Sealed {
        original_len,
        signature,
        data,
    })
}

/// The `Length=` of the first part's `OriginalContent` header.
///
/// # Errors
/// [`FrameError`] when the header has no `Length=` or its value is not a decimal number
/// that fits `usize`.
pub fn original_len(header: &[u8]) -> Result<usize, FrameError> {
    let at = find_ci(header, b"Length=").ok_or(FrameError("no OriginalContent Length"))?;
    let digits: Vec<u8> = header[at + 7..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits)
        .ok()
        .and_then(|d| d.parse::<usize>().ok())
        .ok_or(FrameError("OriginalContent Length is not a number"))
}

/// Splits the second part's content, from after its header line to the end of the body
/// (the closing boundary), into the signature and the sealed data.
///
/// # Errors
/// [`FrameError`] when the payload does not end with the closing boundary, has no 4-byte
/// signature length, or the length is larger than the payload or than a signature can be.
pub fn split_payload(payload: &[u8]) -> Result<(&[u8], &[u8]), FrameError> {
    const CLOSE: &[u8] = b"--Encrypted Boundary--";
    let payload = payload.strip_suffix(b"\r\n").unwrap_or(payload);
    let payload = payload
        .strip_suffix(CLOSE)
        .ok_or(FrameError("does not end with the closing boundary"))?;
    let (len, payload) = payload
        .split_first_chunk::<4>()
        .ok_or(FrameError("no signature length"))?;
    let sig_len = u32::from_le_bytes(*len) as usize;
    if sig_len > MAX_SIGNATURE || sig_len > payload.len() {
        return Err(FrameError("signature length out of range"));
    }
    Ok(payload.split_at(sig_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_exact_bytes() {
        let body = frame(5, &[7u8; 16], b"abcde");
        let mut expected = b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=5\r\n--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n\x10\x00\x00\x00".to_vec();
        expected.extend_from_slice(&[7u8; 16]);
        expected.extend_from_slice(b"abcde--Encrypted Boundary--\r\n");
        assert_eq!(&body[..], &expected[..]);
        let p = parse(&body).unwrap();
        assert_eq!(p.original_len, 5);
        assert_eq!(p.signature, &[7u8; 16]);
        assert_eq!(p.data, b"abcde");
    }

    #[test]
    fn data_may_contain_the_boundary() {
        let data = b"x--Encrypted Boundary--\r\ny";
        let body = frame(data.len(), &[1u8; 16], data);
        assert_eq!(parse(&body).unwrap().data, data);
    }

    #[test]
    fn credssp_parts_round_trip() {
        let a = vec![0xAAu8; 300];
        let b = b"--Encrypted Boundary--\r\nxyz".to_vec();
        let body = frame_parts(CREDSSP_PROTOCOL, [(100, 16, &a[..]), (7, 16, &b[..])]);
        assert!(body.starts_with(b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-CredSSP-session-encrypted\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=100\r\n--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n\x10\0\0\0"));
        let parts = parse_parts(&body, CREDSSP_PROTOCOL).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].original_len, parts[0].prefix, parts[0].data),
            (100, 16, &a[..])
        );
        assert_eq!(
            (parts[1].original_len, parts[1].prefix, parts[1].data),
            (7, 16, &b[..])
        );
        let one = frame_parts(CREDSSP_PROTOCOL, [(5, 16, &b"abcde"[..])]);
        assert_eq!(parse_parts(&one, CREDSSP_PROTOCOL).unwrap().len(), 1);
        for cut in 0..body.len() {
            let _ = parse_parts(&body[..cut], CREDSSP_PROTOCOL); // never panics
        }
        assert!(parse_parts(&body, SPNEGO_PROTOCOL).is_err());
        assert!(parse_parts(b"--Encrypted Boundary--\r\n", CREDSSP_PROTOCOL).is_err());
        assert!(is_encrypted(CREDSSP_MULTI_CONTENT_TYPE));
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let good = frame(3, &[0u8; 16], b"abc");
        for cut in 0..good.len() - 2 {
            let _ = parse(&good[..cut]); // never panics
        }
        assert!(parse(b"").is_err());
        assert!(parse(b"<s:Envelope/>").is_err());
        let mut big = good.to_vec();
        let at = find(&big, b"\x10\x00\x00\x00").unwrap();
        big[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            parse(&big),
            Err(FrameError("signature length out of range"))
        );
        assert!(is_encrypted(SPNEGO_CONTENT_TYPE));
        assert!(is_encrypted("Multipart/Encrypted; x"));
        assert!(!is_encrypted("application/soap+xml;charset=UTF-8"));
    }
}
