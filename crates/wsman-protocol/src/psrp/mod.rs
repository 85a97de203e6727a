//! PowerShell Remoting Protocol messages without IO ([MS-PSRP]): what a PSRP client and
//! a PSRP server both need, as functions from values to bytes and back.
//!
//! Layers, bottom up:
//! - [`fragment`]: fragments (§2.2.4), the [`Fragmenter`] that cuts messages to fit
//!   `MaxEnvelopeSize` ([`max_blob_size`]) and the bounded [`Defragmenter`];
//! - [`message`]: the message header (§2.2.1): [`Destination`], [`MessageType`],
//!   runspace pool and pipeline ids;
//! - [`clixml`]: the object serialization (§2.2.5): [`PsValue`], [`PsObject`], the
//!   reader, the writer, and serde ([`from_value`], [`to_value`]);
//! - [`messages`]: typed bodies of the messages a runspace pool and a pipeline exchange
//!   (§2.2.2, §2.2.3);
//! - [`session_key`]: the PUBLIC_KEY / ENCRYPTED_SESSION_KEY exchange and SecureString
//!   encryption (§3.1.5.4.3, §2.2.5.1.24).
//!
//! The WS-Management side (the shell resource, `creationXml`, `rsp:Stream`, the stop
//! signal) stays with the envelope writer and the client.
//!
//! How the pieces fit, for one pipeline (the client's side; a server mirrors it):
//!
//! ```
//! use bytes::Bytes;
//! use uuid::Uuid;
//! use wsman_protocol::psrp::messages::{
//!     Argument, Command, CreatePipeline, PipelineState, PipelineStateInfo, PowerShell,
//!     ProtocolVersion, ServerMessage,
//! };
//! use wsman_protocol::psrp::{
//!     Defragmenter, Destination, Fragmenter, Message, MessageType, max_blob_size,
//! };
//!
//! let (pool, pipeline) = (Uuid::new_v4(), Uuid::new_v4());
//! // One fragmenter per pool numbers every message the client sends in it.
//! let mut out = Fragmenter::new(max_blob_size(153_600, 2_000).unwrap());
//! let create = CreatePipeline::new(PowerShell::new(vec![
//!     Command::new("Get-Service").arg(Argument::named("Name", "winrm")),
//! ]));
//! let body = create.to_value(ProtocolVersion::V2_3); // the version the server announced
//! let msg = Message::from_value(
//!     Destination::Server, MessageType::CreatePipeline, pool, Some(pipeline), &body,
//! );
//! let payloads = out.pack(&[msg]); // base64 of payloads[0] goes into rsp:Arguments
//! assert_eq!(payloads.len(), 1);
//!
//! // What the server streams back, as the decoded base64 of each rsp:Stream:
//! let done = PipelineStateInfo::new(PipelineState::Completed).to_value();
//! let reply = Message::from_value(
//!     Destination::Client, MessageType::PipelineState, pool, Some(pipeline), &done,
//! );
//! let mut inbound = Defragmenter::new();
//! for stream in Fragmenter::new(32_000).pack(&[reply]) {
//!     for m in inbound.push_messages(&Bytes::from(stream)).unwrap() {
//!         assert_eq!(m.pipeline_id, Some(pipeline));
//!         match ServerMessage::decode(&m).unwrap() {
//!             ServerMessage::PipelineState(s) => assert_eq!(s.state, PipelineState::Completed),
//!             other => panic!("{other:?}"),
//!         }
//!     }
//! }
//! ```
//!
//! Ids: [`Message`] writes the runspace pool and pipeline ids in the .NET GUID byte
//! order the spec defines (what PowerShell sends); pypsrp writes the RFC 4122 order.
//! Windows echoes either as it came, so a client that uses the same [`uuid::Uuid`] for
//! the `ShellId` and the messages sees its own id in the replies.

pub mod clixml;
mod error;
pub mod fragment;
pub mod message;
pub mod messages;
pub mod session_key;

pub use clixml::{Collection, PsObject, PsValue, from_value, to_value};
pub use error::{Error, Result};
pub use fragment::{DefragmentLimits, Defragmenter, Fragment, Fragmenter, max_blob_size};
pub use message::{Destination, Message, MessageType};
pub use session_key::{ExchangeKey, SessionKey};
