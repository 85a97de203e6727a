//! WS-Management messages without IO: what a WinRM client and a WinRM server both need
//! to speak the protocol, as functions from values to bytes and back.
//!
//! - [`envelope`]: the SOAP envelope writer, with the WS-Addressing and WS-Management
//!   headers of [MS-WSMV] §2.2.4 (including the Robust Connection headers of
//!   §3.1.4.1.39);
//! - [`xml`]: a small element tree reader with size and depth limits, for responses and
//!   requests;
//! - [`fault`]: SOAP faults with their WS-Management and WMI details ([MS-WSMV] §2.2.5);
//! - [`cim`] and [`de`]: CIM instances and values, and serde over them;
//! - [`ns`]: the namespaces, actions and resource URIs;
//! - [`encryption`] and [`security`]: HTTP message encryption ([MS-WSMV] §2.2.9.1,
//!   `multipart/encrypted`) and the NTLM and Kerberos security contexts behind it;
//! - [`psrp`]: PowerShell Remoting Protocol messages ([MS-PSRP]): fragments, message
//!   headers, CLIXML objects with serde, and the typed runspace pool and pipeline
//!   messages.
//!
//! No tokio and no sockets: `tokio-winrm` (the client) and `winrm-simulator` (the
//! server) both build on this crate, and neither depends on the other.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::missing_errors_doc)]

pub mod cim;
pub mod de;
pub mod encryption;
pub mod envelope;
pub mod fault;
pub mod ns;
pub mod psrp;
pub mod security;
pub mod windows_names;
pub mod xml;

// The integration tests' reader of the PSRP recordings, for the unit tests as well (it
// names this crate `wsman_protocol`, as they do).
#[cfg(test)]
extern crate self as wsman_protocol;
#[cfg(test)]
#[path = "../tests/support/psrp_fixtures.rs"]
mod psrp_fixtures;

pub use cim::{CimDateTime, Instance, Value};
pub use envelope::{Envelope, OptionItem, Selector};
pub use fault::{Fault, ProviderFault, WmiError};
pub use xml::{Element, ParseError};
