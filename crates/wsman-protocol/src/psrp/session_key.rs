//! The PSRP session key ([MS-PSRP] §3.1.5.4.3): the client sends the public half of an
//! RSA key pair in PUBLIC_KEY (§2.2.2.3); the server answers with ENCRYPTED_SESSION_KEY
//! (§2.2.2.4), a 256-bit AES key wrapped with that public key; SecureStrings (`<SS>`,
//! §2.2.5.1.24) are then the UTF-16LE text under AES-256-CBC with that key, a zero IV
//! and PKCS#7 padding, as Windows' clients and pypsrp do.
//!
//! The blobs are Windows CryptoAPI key blobs: PUBLIC_KEY's `PublicKey` is the base64 of
//! a `PUBLICKEYBLOB` (`BLOBHEADER` type 6, version 2, `CALG_RSA_KEYX`; `RSAPUBKEY`
//! magic `RSA1`, bit length, exponent; the modulus little-endian), and
//! ENCRYPTED_SESSION_KEY's `EncryptedSessionKey` the base64 of a `SIMPLEBLOB`
//! (`BLOBHEADER` type 1, `CALG_AES_256`; the wrapping algorithm `CALG_RSA_KEYX`; the
//! PKCS#1 v1.5 ciphertext little-endian).
//!
//! Nothing here prints key material: the `Debug` of [`ExchangeKey`] and [`SessionKey`]
//! shows no key bytes, and errors name the step, never a value.

use std::fmt;

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use base64::Engine as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{BoxedUint, Pkcs1v15Encrypt, RsaPrivateKey, RsaPublicKey};
use secrecy::SecretString;
use zeroize::Zeroizing;

use super::clixml::EncryptedString;
use super::error::{Error, Result};

/// The RSA modulus size of the key pairs this module makes (what PowerShell and pypsrp
/// use).
pub const EXCHANGE_KEY_BITS: usize = 2048;

/// `BLOBHEADER` of a `PUBLICKEYBLOB` for `CALG_RSA_KEYX`, then `RSAPUBKEY`'s magic.
const PUBLIC_KEY_HEADER: [u8; 12] = [
    0x06, 0x02, 0x00, 0x00, 0x00, 0xa4, 0x00, 0x00, b'R', b'S', b'A', b'1',
];
/// `BLOBHEADER` of a `SIMPLEBLOB` holding a `CALG_AES_256` key, then the wrapping
/// algorithm `CALG_RSA_KEYX`.
const SESSION_KEY_HEADER: [u8; 12] = [
    0x01, 0x02, 0x00, 0x00, 0x10, 0x66, 0x00, 0x00, 0x00, 0xa4, 0x00, 0x00,
];

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

fn b64() -> &'static base64::engine::GeneralPurpose {
    &base64::engine::general_purpose::STANDARD
}

/// The client's RSA key pair of the exchange: its public half goes out in PUBLIC_KEY,
/// its private half unwraps the session key. One pair may serve many runspace pools
/// (making one takes a noticeable fraction of a second).
#[derive(Clone)]
pub struct ExchangeKey {
    private: RsaPrivateKey,
}

impl fmt::Debug for ExchangeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExchangeKey({} bits, private)", self.private.size() * 8)
    }
}

impl ExchangeKey {
    /// A fresh 2048-bit key pair from the operating system's random source (CPU-bound:
    /// run it off an async executor's worker threads).
    ///
    /// # Errors
    /// [`Error::SessionKey`] if the key could not be made.
    pub fn generate() -> Result<Self> {
        let private = RsaPrivateKey::new(&mut rand::rng(), EXCHANGE_KEY_BITS)
            .map_err(|_| Error::SessionKey("could not generate an RSA key pair"))?;
        Ok(ExchangeKey { private })
    }

    /// A key pair from its PKCS#1 `RSAPrivateKey` DER encoding (e.g. a key kept from an
    /// earlier run). The modulus must be 2048 bits, as the PUBLIC_KEY blob says.
    ///
    /// # Errors
    /// [`Error::SessionKey`] for DER that is not an RSA private key of 2048 bits.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self> {
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        let private = RsaPrivateKey::from_pkcs1_der(der)
            .map_err(|_| Error::SessionKey("not a PKCS#1 RSA private key"))?;
        if private.size() * 8 != EXCHANGE_KEY_BITS {
            return Err(Error::SessionKey("the RSA key is not 2048 bits"));
        }
        Ok(ExchangeKey { private })
    }

    /// The `PublicKey` property of PUBLIC_KEY ([MS-PSRP] §2.2.2.3): the base64 of the
    /// public key's `PUBLICKEYBLOB`.
    pub fn public_key_blob(&self) -> String {
        let public = self.private.to_public_key();
        let mut blob = Vec::with_capacity(20 + EXCHANGE_KEY_BITS / 8);
        blob.extend_from_slice(&PUBLIC_KEY_HEADER);
        blob.extend_from_slice(&u32::try_from(EXCHANGE_KEY_BITS).unwrap_or(0).to_le_bytes());
        let e = public.e_bytes();
        let mut exponent = [0u8; 4];
        for (i, b) in e.iter().rev().take(4).enumerate() {
            exponent[i] = *b;
        }
        blob.extend_from_slice(&exponent);
        let n = public.n_bytes();
        let mut modulus = vec![0u8; EXCHANGE_KEY_BITS / 8];
        for (i, b) in n.iter().rev().take(modulus.len()).enumerate() {
            modulus[i] = *b;
        }
        blob.extend_from_slice(&modulus);
        b64().encode(blob)
    }

    /// Unwraps the session key of ENCRYPTED_SESSION_KEY ([MS-PSRP] §2.2.2.4): the
    /// `EncryptedSessionKey` property's base64 `SIMPLEBLOB`.
    ///
    /// # Errors
    /// [`Error::SessionKey`] for a blob of the wrong form, one that does not decrypt with
    /// this key, or a key that is not 32 bytes.
    pub fn decrypt_session_key(&self, encrypted_session_key: &str) -> Result<SessionKey> {
        let blob = b64()
            .decode(encrypted_session_key.trim())
            .map_err(|_| Error::SessionKey("EncryptedSessionKey is not base64"))?;
        let Some(wrapped) = blob.strip_prefix(&SESSION_KEY_HEADER[..]) else {
            return Err(Error::SessionKey(
                "EncryptedSessionKey is not a SIMPLEBLOB of an AES-256 key wrapped with RSA",
            ));
        };
        let ciphertext: Vec<u8> = wrapped.iter().rev().copied().collect();
        let key = Zeroizing::new(
            self.private
                .decrypt(Pkcs1v15Encrypt, &ciphertext)
                .map_err(|_| Error::SessionKey("EncryptedSessionKey does not decrypt"))?,
        );
        let key: [u8; 32] = key
            .as_slice()
            .try_into()
            .map_err(|_| Error::SessionKey("the session key is not 256 bits"))?;
        Ok(SessionKey(Zeroizing::new(key)))
    }
}

/// The AES-256 session key of a runspace pool: encrypts and decrypts SecureStrings
/// ([MS-PSRP] §2.2.5.1.24). Its `Debug` shows no key bytes; the bytes are zeroed on
/// drop.
#[derive(Clone)]
pub struct SessionKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(AES-256, redacted)")
    }
}

impl SessionKey {
    /// A fresh random key (what a server makes for ENCRYPTED_SESSION_KEY).
    pub fn generate() -> Self {
        use rand::Rng as _;
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(key.as_mut());
        SessionKey(key)
    }

    /// The server's half of the exchange: this key wrapped with the client's public key
    /// (PUBLIC_KEY's `PublicKey` property), as ENCRYPTED_SESSION_KEY's
    /// `EncryptedSessionKey` property.
    ///
    /// # Errors
    /// [`Error::SessionKey`] for a `PublicKey` that is not a 2048-bit RSA `PUBLICKEYBLOB`.
    pub fn encrypt_for(&self, public_key_blob: &str) -> Result<String> {
        let blob = b64()
            .decode(public_key_blob.trim())
            .map_err(|_| Error::SessionKey("PublicKey is not base64"))?;
        let bad = Error::SessionKey("PublicKey is not a 2048-bit RSA PUBLICKEYBLOB");
        let Some(rest) = blob.strip_prefix(&PUBLIC_KEY_HEADER[..]) else {
            return Err(bad);
        };
        if rest.len() != 8 + EXCHANGE_KEY_BITS / 8
            || rest[..4] != u32::try_from(EXCHANGE_KEY_BITS).unwrap_or(0).to_le_bytes()
        {
            return Err(bad);
        }
        let exponent: Vec<u8> = rest[4..8].iter().rev().copied().collect();
        let modulus: Vec<u8> = rest[8..].iter().rev().copied().collect();
        let n = BoxedUint::from_be_slice_vartime(&modulus);
        let e = BoxedUint::from_be_slice_vartime(&exponent);
        let public = RsaPublicKey::new(n, e).map_err(|_| bad.clone())?;
        let wrapped = public
            .encrypt(&mut rand::rng(), Pkcs1v15Encrypt, self.0.as_ref())
            .map_err(|_| bad)?;
        let mut out = Vec::with_capacity(SESSION_KEY_HEADER.len() + wrapped.len());
        out.extend_from_slice(&SESSION_KEY_HEADER);
        out.extend(wrapped.iter().rev());
        Ok(b64().encode(out))
    }

    /// `text` as a SecureString: its UTF-16LE code units under AES-256-CBC, zero IV,
    /// PKCS#7 padding. The same text under the same key gives the same ciphertext (as
    /// the protocol defines it).
    pub fn encrypt(&self, text: &str) -> EncryptedString {
        let plain = Zeroizing::new(
            text.encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>(),
        );
        let iv = [0u8; 16];
        let enc = Aes256CbcEnc::new((&*self.0).into(), &iv.into());
        EncryptedString::from_ciphertext(enc.encrypt_padded_vec::<Pkcs7>(&plain))
    }

    /// The text of a SecureString made with this key.
    ///
    /// # Errors
    /// [`Error::SessionKey`] when the ciphertext does not decrypt to padded UTF-16 under
    /// this key (another pool's key, or damaged data).
    pub fn decrypt(&self, secure: &EncryptedString) -> Result<SecretString> {
        let iv = [0u8; 16];
        let dec = Aes256CbcDec::new((&*self.0).into(), &iv.into());
        let plain = Zeroizing::new(
            dec.decrypt_padded_vec::<Pkcs7>(secure.ciphertext())
                .map_err(|_| Error::SessionKey("the SecureString does not decrypt"))?,
        );
        if plain.len() % 2 != 0 {
            return Err(Error::SessionKey("the SecureString is not UTF-16"));
        }
        let units = Zeroizing::new(
            plain
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect::<Vec<u16>>(),
        );
        let text = String::from_utf16(&units)
            .map_err(|_| Error::SessionKey("the SecureString is not UTF-16"))?;
        Ok(SecretString::from(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    /// One pair for the tests of this module (generating one takes a while).
    fn pair() -> &'static ExchangeKey {
        static KEY: std::sync::OnceLock<ExchangeKey> = std::sync::OnceLock::new();
        KEY.get_or_init(|| ExchangeKey::generate().expect("an RSA key"))
    }

    #[test]
    fn a_public_key_blob_has_the_cryptoapi_form() {
        let blob = b64().decode(pair().public_key_blob()).unwrap();
        assert_eq!(blob.len(), 276);
        assert_eq!(&blob[..12], &PUBLIC_KEY_HEADER);
        assert_eq!(&blob[12..16], &2048u32.to_le_bytes());
        assert_eq!(&blob[16..20], &65537u32.to_le_bytes());
        // The modulus is little-endian: its last byte is the top of a 2048-bit number.
        assert!(blob[275] & 0x80 != 0, "{:#x}", blob[275]);
    }

    #[test]
    fn the_server_half_and_the_client_half_agree_on_the_key() {
        let server = SessionKey::generate();
        let wrapped = server.encrypt_for(&pair().public_key_blob()).unwrap();
        let blob = b64().decode(&wrapped).unwrap();
        assert_eq!(blob.len(), 12 + 256);
        assert_eq!(&blob[..12], &SESSION_KEY_HEADER);
        let client = pair().decrypt_session_key(&wrapped).unwrap();
        let ss = server.encrypt("pässwörd 𐐷");
        assert_eq!(client.decrypt(&ss).unwrap().expose_secret(), "pässwörd 𐐷");
        // Deterministic: the same text under the same key is the same ciphertext.
        assert_eq!(client.encrypt("pässwörd 𐐷"), ss);
        // 11 UTF-16 units (22 bytes) pad to two blocks.
        assert_eq!(ss.ciphertext().len(), 32);
        assert_eq!(client.encrypt("").ciphertext().len(), 16);
    }

    #[test]
    fn wrong_forms_and_wrong_keys_are_typed_errors() {
        let k = pair();
        assert!(matches!(
            k.decrypt_session_key("not base64!"),
            Err(Error::SessionKey(_))
        ));
        assert!(matches!(
            k.decrypt_session_key(&b64().encode([0u8; 268])),
            Err(Error::SessionKey(m)) if m.contains("SIMPLEBLOB")
        ));
        let mut garbage = SESSION_KEY_HEADER.to_vec();
        garbage.extend([7u8; 256]);
        assert!(matches!(
            k.decrypt_session_key(&b64().encode(&garbage)),
            Err(Error::SessionKey(_))
        ));
        assert!(SessionKey::generate().encrypt_for("AAAA").is_err());
        // The right form around numbers that are no RSA key: a zero modulus, a zero or
        // even exponent, a tiny modulus.
        for (e, n) in [
            (0u32, [0u8; 256]),
            (65537, [0u8; 256]),
            (2, [0xFF; 256]),
            (65537, {
                let mut n = [0u8; 256];
                n[0] = 15;
                n
            }),
        ] {
            let mut blob = PUBLIC_KEY_HEADER.to_vec();
            blob.extend(2048u32.to_le_bytes());
            blob.extend(e.to_le_bytes());
            blob.extend(n);
            assert!(
                matches!(
                    SessionKey::generate().encrypt_for(&b64().encode(&blob)),
                    Err(Error::SessionKey(_))
                ),
                "e={e}"
            );
        }
        let ss = SessionKey::generate().encrypt("secret");
        let other = SessionKey::generate();
        // Another key: PKCS#7 padding almost never checks out; if it does, the text
        // differs.
        match other.decrypt(&ss) {
            Err(e) => assert!(matches!(e, Error::SessionKey(_))),
            Ok(t) => assert_ne!(t.expose_secret(), "secret"),
        }
        assert!(
            other
                .decrypt(&EncryptedString::from_ciphertext(vec![1, 2, 3]))
                .is_err()
        );
        assert!(ExchangeKey::from_pkcs1_der(b"\x30\x03\x02\x01\x00").is_err());
    }

    /// What Windows sent pypsrp in `fixtures/psrp/test_psrp_multiple_commands.yml`, with
    /// pypsrp's test key (`fixtures/psrp/pypsrp_exchange_key.pem`).
    #[test]
    fn the_recorded_windows_exchange_unwraps_and_its_secure_strings_match() {
        let pem = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/psrp/pypsrp_exchange_key.pem"
        ))
        .unwrap();
        let der = b64()
            .decode(
                pem.lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .unwrap();
        let pypsrp = ExchangeKey::from_pkcs1_der(&der).unwrap();
        // The PUBLIC_KEY pypsrp sent (object 3 of the recording).
        assert!(pypsrp.public_key_blob().starts_with(
            "BgIAAACkAABSU0ExAAgAAAEAAQBvH62/q5haEUStHGs+p3e5TIR1xaL+Ab9pYjd1pB4oYN1Rbru+"
        ));
        assert!(pypsrp.public_key_blob().ends_with("S1P3RsRdsqa0YpnD"));
        let key = pypsrp
            .decrypt_session_key(
                "AQIAABBmAAAApAAAyiHuF/hQKKq/XcqpzNRoVsSjI3deLpXbcwpKWdlsxSKS/5c0Mw3d0Wj3YGCZRjbQXbY2mG8/KyrXgt0sK7891btBvIO1rlMzRmiyv5IygUtBOHm3cknyCPNEJ68JK93m01lo4UPe7bLcINFWla4dOPl55cFlKqo7JnWpzD3jp8rYCjtJlM4fUG2GUt+doHJVL9uZV3jxSatwQnSMe3QFuZWYbUU0pCutdb/SQiByM4KIch3Tq5N1mFjVnBLJUClwZL/a4fU4VwGqPmhw8f60EdJP6iaixln/iyZ0WZse6dd0ys1WdidLVl5jVR5EbUC/oLmEfx1xb4p5Dck1DBb5cw==",
            )
            .unwrap();
        let ss = |t: &str| EncryptedString::from_ciphertext(b64().decode(t).unwrap());
        // pypsrp's SecureString parameter, and ConvertTo-SecureString's output.
        let hello = ss("GXD6gSYvWjfp54Vgl3jLpuNMBhNdfWFRbM1QdeUNYFU=");
        assert_eq!(key.decrypt(&hello).unwrap().expose_secret(), "Hello World");
        assert_eq!(key.encrypt("Hello World"), hello);
        let abc = ss("rTm4n3bxaFOIgdjhDDV5OA==");
        assert_eq!(key.decrypt(&abc).unwrap().expose_secret(), "abc");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Bytes from the network (a server's EncryptedSessionKey, a client's PublicKey,
        /// a SecureString) never panic: a value or a typed error.
        #[test]
        fn random_blobs_are_values_or_typed_errors(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            headed in proptest::prelude::any::<bool>(),
        ) {
            let mut session = if headed { SESSION_KEY_HEADER.to_vec() } else { Vec::new() };
            session.extend(&bytes);
            let _ = pair().decrypt_session_key(&b64().encode(&session));
            let mut public = if headed { PUBLIC_KEY_HEADER.to_vec() } else { Vec::new() };
            public.extend(&bytes);
            let _ = SessionKey::generate().encrypt_for(&b64().encode(&public));
            let _ = SessionKey::generate().decrypt(&EncryptedString::from_ciphertext(bytes));
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        let k = SessionKey(Zeroizing::new([0xAB; 32]));
        let shown = format!("{k:?} {:?}", pair());
        assert!(
            !shown.contains("171") && !shown.to_lowercase().contains("ab, "),
            "{shown}"
        );
        assert_eq!(format!("{k:?}"), "SessionKey(AES-256, redacted)");
        assert_eq!(format!("{:?}", pair()), "ExchangeKey(2048 bits, private)");
    }
}
