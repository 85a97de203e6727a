//! An async WS-Management (WinRM) client on tokio, where every operation is cancellable
//! with the semantics of Microsoft's MI API (`MI_Operation_Cancel`).
//!
//! Layers (arrows point down): [`Client`] and the operations (identify, WS-Transfer,
//! Invoke, WinRS [`shell`]s, enumerations, PowerShell Remoting in [`psrp`], file copy
//! in [`file_transfer`]) → [`operation`] (cancellation scope) → the `wsman-protocol`
//! crate (pure message writing and reading: SOAP envelopes, faults, PSRP fragments and
//! CLIXML) and `transport` (connection-bound HTTP channels).
//!
//! For tests and demos, the `winrm-simulator` crate (a separate crate in this
//! workspace, used as a dev-dependency) is a WS-Management server that behaves like a
//! Windows endpoint: WinRS, PowerShell Remoting with user-registered cmdlets, WMI
//! classes and files.
//!
//! Cargo features: `kerberos` (Kerberos with a password, on sspi; pure Rust) and
//! `gssapi` (Kerberos from the user's ticket cache or a client keytab through the system
//! GSSAPI, `Auth::kerberos_ticket_cache` and `Auth::kerberos_keytab`; it implies
//! `kerberos` and needs the GSSAPI headers and libclang to build, e.g. Debian's
//! `libkrb5-dev` and `libclang-dev`).
#![deny(missing_docs)]
#![warn(clippy::missing_errors_doc)]
// One unsafe function, with feature `gssapi` only: gss_acquire_cred_from, which
// libgssapi does not wrap (src/transport/gssapi.rs).
#![cfg_attr(not(feature = "gssapi"), forbid(unsafe_code))]
#![cfg_attr(feature = "gssapi", deny(unsafe_code))]

mod client;
mod enumerate;
mod error;
pub mod file_transfer;
mod identify;
mod invoke;
pub mod operation;
pub mod psrp;
mod resource;
pub mod shell;
/// The protocol layer: `wsman-protocol`, under the name the modules here use.
use wsman_protocol as soap;
mod transfer;
mod transport;

/// The README's Rust blocks, as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use client::{
    Call, Client, ClientBuilder, DEFAULT_MAX_ENVELOPE_SIZE, DEFAULT_MAX_OUTPUT,
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_OPERATION_TIMEOUT,
};
pub use enumerate::{
    DEFAULT_MAX_ELEMENTS, EnumEnd, EnumEvent, EnumItem, EnumerateBuilder, Enumeration,
    EnumerationMode, Filter, Page, Wql, parse_page_as,
};
pub use error::BoxError;
pub use error::{Error, KerberosErrorKind, Result, TransferErrorKind};
pub use file_transfer::{CopyBuilder, FetchBuilder, TransferProgress, TransferSummary};
pub use identify::IdentifyResponse;
pub use operation::{CancelHandle, CancelReason};
pub use resource::{Resource, expand_alias};
pub use shell::{
    Command, CommandBuilder, CommandEvent, DisconnectedShell, ExitStatus, Output, Shell,
    ShellBuilder,
};
pub use soap::cim::{CimDateTime, EndpointReference, Instance, InvalidName, Value};
pub use soap::de::from_instance;
pub use soap::envelope::InvalidText;
pub use soap::fault::{Fault, code as fault_code};
pub use transport::Proxy;
pub use transport::{
    Auth, ClientCertificate, Encryption, Endpoint, RetryPolicy, SspiCredentials, TlsOptions,
    TransportStats,
};
#[cfg(feature = "kerberos")]
pub use transport::{KerberosCredentials, KerberosOptions};
