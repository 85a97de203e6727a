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
//!   (§2.2.2, §2.2.3).
//!
//! The WS-Management side (the shell resource, `creationXml`, `rsp:Stream`, the stop
//! signal) stays with the envelope writer and the client.

pub mod clixml;
mod error;
pub mod fragment;
pub mod message;
pub mod messages;

pub use clixml::{Collection, PsObject, PsValue, from_value, to_value};
pub use error::{Error, Result};
pub use fragment::{DefragmentLimits, Defragmenter, Fragment, Fragmenter, max_blob_size};
pub use message::{Destination, Message, MessageType};
