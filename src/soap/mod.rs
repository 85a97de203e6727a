//! Pure SOAP / WS-Management message layer: envelope writer, response reader, faults,
//! CIM values. No IO and no tokio here; everything is a function from bytes to values
//! or from values to bytes, so it is unit-tested without a network.

pub mod cim;
pub mod de;
pub mod envelope;
pub mod fault;
pub mod ns;
pub mod xml;

pub use cim::{CimDateTime, Instance, Value};
pub use envelope::{Envelope, OptionItem, Selector};
pub use fault::{Fault, ProviderFault, WmiError};
pub use xml::{Element, ParseError};
