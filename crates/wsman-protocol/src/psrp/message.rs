//! The PSRP message ([MS-PSRP] §2.2.1): a 40-byte header (destination, message type,
//! runspace pool id, pipeline id) and the data, UTF-8 CLIXML for every type this crate
//! builds.
//!
//! The ids are .NET GUIDs in their packet form (`Guid.ToByteArray`): the first three
//! fields little-endian, the last eight bytes as they are ([MS-DTYP] §2.3.4.2).

use bytes::Bytes;
use uuid::Uuid;

use super::clixml::{self, PsValue};
use super::error::{Error, Result};

/// Length of the message header: destination, type, RPID, PID.
pub const MESSAGE_HEADER_LEN: usize = 4 + 4 + 16 + 16;

/// The UTF-8 byte order mark Windows puts before the CLIXML of the messages it sends.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Who a message is for ([MS-PSRP] §2.2.1, `Destination`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Destination {
    /// `0x00000001`: the client.
    Client,
    /// `0x00000002`: the server.
    Server,
}

impl Destination {
    /// The wire value.
    pub fn code(self) -> u32 {
        match self {
            Destination::Client => 1,
            Destination::Server => 2,
        }
    }
}

macro_rules! message_types {
    ($($(#[$doc:meta])* $name:ident = $code:literal,)*) => {
        /// The type of a PSRP message ([MS-PSRP] §2.2.1, `MessageType`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum MessageType {
            $($(#[$doc])* $name,)*
            /// A type this crate does not know, kept with its code.
            Unknown(u32),
        }

        impl MessageType {
            /// The wire value.
            pub fn code(self) -> u32 {
                match self {
                    $(MessageType::$name => $code,)*
                    MessageType::Unknown(code) => code,
                }
            }

            /// The type with this wire value ([`MessageType::Unknown`] if none).
            pub fn from_code(code: u32) -> Self {
                match code {
                    $($code => MessageType::$name,)*
                    other => MessageType::Unknown(other),
                }
            }
        }
    };
}

message_types! {
    /// `SESSION_CAPABILITY` (§2.2.2.1), both directions.
    SessionCapability = 0x0001_0002,
    /// `INIT_RUNSPACEPOOL` (§2.2.2.2), client to server.
    InitRunspacePool = 0x0001_0004,
    /// `PUBLIC_KEY` (§2.2.2.3), client to server.
    PublicKey = 0x0001_0005,
    /// `ENCRYPTED_SESSION_KEY` (§2.2.2.4), server to client.
    EncryptedSessionKey = 0x0001_0006,
    /// `PUBLIC_KEY_REQUEST` (§2.2.2.5), server to client.
    PublicKeyRequest = 0x0001_0007,
    /// `CONNECT_RUNSPACEPOOL` (§2.2.2.29), client to server.
    ConnectRunspacePool = 0x0001_0008,
    /// `RUNSPACEPOOL_INIT_DATA` (§2.2.2.30), server to client.
    RunspacePoolInitData = 0x0002_100B,
    /// `RESET_RUNSPACE_STATE` (§2.2.2.31), client to server.
    ResetRunspaceState = 0x0002_100C,
    /// `SET_MAX_RUNSPACES` (§2.2.2.6), client to server.
    SetMaxRunspaces = 0x0002_1002,
    /// `SET_MIN_RUNSPACES` (§2.2.2.7), client to server.
    SetMinRunspaces = 0x0002_1003,
    /// `RUNSPACE_AVAILABILITY` (§2.2.2.8), server to client.
    RunspaceAvailability = 0x0002_1004,
    /// `RUNSPACEPOOL_STATE` (§2.2.2.9), server to client.
    RunspacePoolState = 0x0002_1005,
    /// `CREATE_PIPELINE` (§2.2.2.10), client to server.
    CreatePipeline = 0x0002_1006,
    /// `GET_AVAILABLE_RUNSPACES` (§2.2.2.11), client to server.
    GetAvailableRunspaces = 0x0002_1007,
    /// `USER_EVENT` (§2.2.2.12), server to client.
    UserEvent = 0x0002_1008,
    /// `APPLICATION_PRIVATE_DATA` (§2.2.2.13), server to client.
    ApplicationPrivateData = 0x0002_1009,
    /// `GET_COMMAND_METADATA` (§2.2.2.14), client to server.
    GetCommandMetadata = 0x0002_100A,
    /// `RUNSPACEPOOL_HOST_CALL` (§2.2.2.15), server to client.
    RunspacePoolHostCall = 0x0002_1100,
    /// `RUNSPACEPOOL_HOST_RESPONSE` (§2.2.2.16), client to server.
    RunspacePoolHostResponse = 0x0002_1101,
    /// `PIPELINE_INPUT` (§2.2.2.17), client to server.
    PipelineInput = 0x0004_1002,
    /// `END_OF_PIPELINE_INPUT` (§2.2.2.18), client to server.
    EndOfPipelineInput = 0x0004_1003,
    /// `PIPELINE_OUTPUT` (§2.2.2.19), server to client.
    PipelineOutput = 0x0004_1004,
    /// `ERROR_RECORD` (§2.2.2.20), server to client.
    ErrorRecord = 0x0004_1005,
    /// `PIPELINE_STATE` (§2.2.2.21), server to client.
    PipelineState = 0x0004_1006,
    /// `DEBUG_RECORD` (§2.2.2.22), server to client.
    DebugRecord = 0x0004_1007,
    /// `VERBOSE_RECORD` (§2.2.2.23), server to client.
    VerboseRecord = 0x0004_1008,
    /// `WARNING_RECORD` (§2.2.2.24), server to client.
    WarningRecord = 0x0004_1009,
    /// `PROGRESS_RECORD` (§2.2.2.25), server to client.
    ProgressRecord = 0x0004_1010,
    /// `INFORMATION_RECORD` (§2.2.2.26), server to client (protocol 2.3).
    InformationRecord = 0x0004_1011,
    /// `PIPELINE_HOST_CALL` (§2.2.2.27), server to client.
    PipelineHostCall = 0x0004_1100,
    /// `PIPELINE_HOST_RESPONSE` (§2.2.2.28), client to server.
    PipelineHostResponse = 0x0004_1101,
}

/// One PSRP message: the header fields and the data ([MS-PSRP] §2.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Who the message is for.
    pub destination: Destination,
    /// What the message is.
    pub message_type: MessageType,
    /// The runspace pool the message is about (`RPID`).
    pub runspace_pool_id: Uuid,
    /// The pipeline the message is about (`PID`); `None` on the wire is the nil GUID.
    pub pipeline_id: Option<Uuid>,
    /// The data: UTF-8 CLIXML (a leading byte order mark allowed) for every type this
    /// crate builds.
    pub data: Bytes,
}

impl Message {
    /// A message with the given header and data.
    pub fn new(
        destination: Destination,
        message_type: MessageType,
        runspace_pool_id: Uuid,
        pipeline_id: Option<Uuid>,
        data: impl Into<Bytes>,
    ) -> Self {
        Message {
            destination,
            message_type,
            runspace_pool_id,
            pipeline_id,
            data: data.into(),
        }
    }

    /// A message whose data is `value` serialized as CLIXML (without a byte order mark,
    /// as the PowerShell client sends).
    pub fn from_value(
        destination: Destination,
        message_type: MessageType,
        runspace_pool_id: Uuid,
        pipeline_id: Option<Uuid>,
        value: &PsValue,
    ) -> Self {
        Message::new(
            destination,
            message_type,
            runspace_pool_id,
            pipeline_id,
            clixml::to_string(value).into_bytes(),
        )
    }

    /// The wire form: header, then data.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MESSAGE_HEADER_LEN + self.data.len());
        out.extend_from_slice(&self.destination.code().to_le_bytes());
        out.extend_from_slice(&self.message_type.code().to_le_bytes());
        out.extend_from_slice(&self.runspace_pool_id.to_bytes_le());
        out.extend_from_slice(&self.pipeline_id.unwrap_or(Uuid::nil()).to_bytes_le());
        out.extend_from_slice(&self.data);
        out
    }

    /// Reads a message from its wire form; the data shares `bytes`' buffer.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTruncated`] or [`Error::InvalidDestination`].
    pub fn decode(bytes: Bytes) -> Result<Message> {
        if bytes.len() < MESSAGE_HEADER_LEN {
            return Err(Error::MessageTruncated(bytes.len()));
        }
        let u32_at = |i: usize| {
            let mut b = [0u8; 4];
            b.copy_from_slice(&bytes[i..i + 4]);
            u32::from_le_bytes(b)
        };
        let guid_at = |i: usize| {
            let mut b = [0u8; 16];
            b.copy_from_slice(&bytes[i..i + 16]);
            Uuid::from_bytes_le(b)
        };
        let destination = match u32_at(0) {
            1 => Destination::Client,
            2 => Destination::Server,
            other => return Err(Error::InvalidDestination(other)),
        };
        let pipeline_id = Some(guid_at(24)).filter(|id| !id.is_nil());
        Ok(Message {
            destination,
            message_type: MessageType::from_code(u32_at(4)),
            runspace_pool_id: guid_at(8),
            pipeline_id,
            data: bytes.slice(MESSAGE_HEADER_LEN..),
        })
    }

    /// The data as text, without a leading byte order mark.
    ///
    /// # Errors
    ///
    /// [`Error::NotUtf8`].
    pub fn data_str(&self) -> Result<&str> {
        let data = self.data.strip_prefix(UTF8_BOM).unwrap_or(&self.data);
        crate::xml::utf8(data).map_err(|_| Error::NotUtf8)
    }

    /// The data read as one CLIXML value, with the default reader limits.
    ///
    /// # Errors
    ///
    /// [`Error::NotUtf8`] or any CLIXML error of [`clixml::from_str`].
    pub fn value(&self) -> Result<PsValue> {
        clixml::from_str(self.data_str()?)
    }

    /// Fails with [`Error::UnexpectedMessage`] unless this message is of type `expected`.
    ///
    /// # Errors
    ///
    /// As described.
    pub fn expect(&self, expected: MessageType) -> Result<&Self> {
        if self.message_type == expected {
            Ok(self)
        } else {
            Err(Error::UnexpectedMessage {
                expected,
                got: self.message_type,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_types_round_trip_their_codes() {
        for code in [0x0001_0002, 0x0002_1005, 0x0004_1011, 0x0004_1101] {
            let t = MessageType::from_code(code);
            assert!(!matches!(t, MessageType::Unknown(_)));
            assert_eq!(t.code(), code);
        }
        assert_eq!(MessageType::from_code(0x4242), MessageType::Unknown(0x4242));
        assert_eq!(MessageType::Unknown(0x4242).code(), 0x4242);
        assert_eq!(MessageType::PipelineOutput.code(), 0x0004_1004);
        assert_eq!(MessageType::ProgressRecord.code(), 0x0004_1010);
    }

    #[test]
    fn header_is_little_endian_with_dotnet_guids() {
        let rpid: Uuid = "00112233-4455-6677-8899-aabbccddeeff".parse().unwrap();
        let m = Message::new(
            Destination::Server,
            MessageType::SessionCapability,
            rpid,
            None,
            &b"<S>x</S>"[..],
        );
        let wire = m.encode();
        assert_eq!(&wire[..8], &[2, 0, 0, 0, 2, 0, 1, 0]);
        assert_eq!(
            &wire[8..24],
            &[
                0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff
            ]
        );
        assert_eq!(&wire[24..40], &[0; 16]);
        assert_eq!(Message::decode(Bytes::from(wire)).unwrap(), m);
    }

    #[test]
    fn short_messages_and_bad_destinations_are_typed_errors() {
        assert_eq!(
            Message::decode(Bytes::from_static(&[1; 39])).unwrap_err(),
            Error::MessageTruncated(39)
        );
        let mut wire = vec![0u8; 40];
        wire[0] = 7;
        assert_eq!(
            Message::decode(Bytes::from(wire)).unwrap_err(),
            Error::InvalidDestination(7)
        );
    }

    #[test]
    fn data_str_strips_the_bom() {
        let mut data = UTF8_BOM.to_vec();
        data.extend_from_slice(b"<S>hi</S>");
        let m = Message::new(
            Destination::Client,
            MessageType::PipelineOutput,
            Uuid::nil(),
            Some(Uuid::from_u128(9)),
            data,
        );
        assert_eq!(m.data_str().unwrap(), "<S>hi</S>");
        assert_eq!(m.value().unwrap(), PsValue::String("hi".into()));
        assert!(m.expect(MessageType::PipelineOutput).is_ok());
        assert_eq!(
            m.expect(MessageType::PipelineState).unwrap_err(),
            Error::UnexpectedMessage {
                expected: MessageType::PipelineState,
                got: MessageType::PipelineOutput
            }
        );
    }
}
