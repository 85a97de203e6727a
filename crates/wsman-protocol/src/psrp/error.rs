//! The one error type of the PSRP layer: every way bytes from the network can fail to
//! be fragments, messages or CLIXML, each a variant that names the step.

use super::message::MessageType;

/// Why PSRP bytes could not be split, assembled, decoded or encoded.
///
/// Input from the network never panics this layer; it fails with one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A fragment's 21-byte header or its blob runs past the end of the input
    /// ([MS-PSRP] §2.2.4).
    #[error("truncated PSRP fragment: needs {needed} bytes, {available} available")]
    FragmentTruncated {
        /// Bytes the header (or header plus blob) needs.
        needed: usize,
        /// Bytes left in the input.
        available: usize,
    },
    /// A fragment arrived for an object whose previous fragment was not the one before it,
    /// or a middle/end fragment arrived for an object that never started.
    #[error(
        "PSRP fragment out of order for object {object_id}: expected fragment {expected:?}, got {got}"
    )]
    FragmentOutOfOrder {
        /// The object the fragment belongs to.
        object_id: u64,
        /// The fragment id the assembler expected (`None`: no object in progress).
        expected: Option<u64>,
        /// The fragment id it got.
        got: u64,
    },
    /// A start fragment arrived for an object id already being assembled (the previous
    /// object's end fragment is missing).
    #[error("PSRP object {object_id} restarted before its end fragment")]
    FragmentMissingEnd {
        /// The object id.
        object_id: u64,
    },
    /// An assembled message would exceed the configured size limit.
    #[error("PSRP message of object {object_id} exceeds {limit} bytes")]
    MessageTooLarge {
        /// The object id.
        object_id: u64,
        /// The limit in bytes.
        limit: usize,
    },
    /// More objects are being assembled at once than the assembler allows.
    #[error("more than {limit} PSRP objects in progress at once")]
    TooManyObjects {
        /// The limit.
        limit: usize,
    },
    /// A message is shorter than its 40-byte header ([MS-PSRP] §2.2.1).
    #[error("PSRP message of {0} bytes is shorter than its 40-byte header")]
    MessageTruncated(usize),
    /// The destination field is neither client (1) nor server (2).
    #[error("invalid PSRP destination {0:#x}")]
    InvalidDestination(u32),
    /// A message of one type was expected, another arrived.
    #[error("expected a {expected:?} PSRP message, got {got:?}")]
    UnexpectedMessage {
        /// The type the caller asked for.
        expected: MessageType,
        /// The type that arrived.
        got: MessageType,
    },
    /// The message data is not UTF-8.
    #[error("PSRP message data is not UTF-8")]
    NotUtf8,
    /// The CLIXML is not well-formed XML.
    #[error("malformed CLIXML at byte {position}: {message}")]
    Xml {
        /// Byte offset where the reader stopped.
        position: u64,
        /// What the XML reader reported.
        message: String,
    },
    /// CLIXML nests deeper than the reader's limit.
    #[error("CLIXML nests deeper than {0} levels")]
    TooDeep(usize),
    /// CLIXML holds more values than the reader's limit.
    #[error("CLIXML holds more than {0} values")]
    TooManyValues(usize),
    /// A CLIXML document is longer than the reader's limit.
    #[error("CLIXML document exceeds {0} bytes")]
    TooLong(usize),
    /// An element the CLIXML grammar ([MS-PSRP] §2.2.5) does not allow where it is.
    #[error("unexpected CLIXML element <{element}> in {context}")]
    UnexpectedElement {
        /// The element's name.
        element: String,
        /// Where it was found.
        context: &'static str,
    },
    /// A primitive element's text is not a valid value of its type.
    #[error("invalid CLIXML <{element}> value {value:?}")]
    InvalidValue {
        /// The element (`I32`, `G`, ...).
        element: &'static str,
        /// The offending text (shortened).
        value: String,
    },
    /// A `Ref` or `TNRef` names a RefId that was not defined before it.
    #[error("CLIXML {kind} to undefined RefId {ref_id:?}")]
    UnknownRef {
        /// `Ref` or `TNRef`.
        kind: &'static str,
        /// The RefId.
        ref_id: String,
    },
    /// The document holds no value.
    #[error("empty CLIXML document")]
    Empty,
    /// A `SecureString` cannot be read as plain text without the session key
    /// ([MS-PSRP] §2.2.5.1.24; the key comes from the PUBLIC_KEY / ENCRYPTED_SESSION_KEY
    /// exchange, §2.2.2.3-4).
    #[error("SecureString needs the PSRP session key to be decrypted")]
    SecureStringWithoutKey,
    /// The session key exchange failed ([MS-PSRP] §2.2.2.3-4, §3.1.5.4.3): a
    /// PUBLIC_KEY or ENCRYPTED_SESSION_KEY blob of the wrong form, a key that does not
    /// decrypt, or a SecureString whose ciphertext is not valid under the key. The text
    /// says which; it never holds key material.
    #[error("PSRP session key: {0}")]
    SessionKey(&'static str),
    /// A message body lacks a property its type requires ([MS-PSRP] §2.2.2, §2.2.3).
    #[error("PSRP {message} lacks property {property}")]
    MissingProperty {
        /// The message or object kind.
        message: &'static str,
        /// The property name.
        property: &'static str,
    },
    /// A property has a value of the wrong type.
    #[error("PSRP {message} property {property} is not {expected}")]
    WrongType {
        /// The message or object kind.
        message: &'static str,
        /// The property name.
        property: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// serde could not map between a value and the caller's type.
    #[error("{0}")]
    Serde(String),
}

impl Error {
    /// `true` for errors about fragment framing (truncation, order, size), as opposed to
    /// the content of a complete message.
    pub fn is_fragment(&self) -> bool {
        matches!(
            self,
            Error::FragmentTruncated { .. }
                | Error::FragmentOutOfOrder { .. }
                | Error::FragmentMissingEnd { .. }
                | Error::MessageTooLarge { .. }
                | Error::TooManyObjects { .. }
        )
    }

    pub(crate) fn invalid(element: &'static str, value: &str) -> Self {
        Error::InvalidValue {
            element,
            value: crate::xml::excerpt(value, 80),
        }
    }
}

impl serde::de::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error::Serde(msg.to_string())
    }
}

impl serde::ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error::Serde(msg.to_string())
    }
}

/// Results of this layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
