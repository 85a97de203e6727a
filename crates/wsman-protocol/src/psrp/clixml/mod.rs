//! CLIXML, the PowerShell serialization of objects ([MS-PSRP] §2.2.5): the value model,
//! a bounded reader, a writer, and serde between values and the caller's types.

mod de;
mod de_common;
mod escape;
mod fast;
mod pull;
mod reader;
mod ser;
mod value;
mod writer;

pub use de::from_value;
pub use escape::{decode as decode_name, encode as encode_name};
pub use fast::from_str_as;
pub use reader::{ReadLimits, from_str, from_str_all, from_str_streams, from_str_with};
pub use ser::to_value;
pub use value::{Collection, EncryptedString, PsObject, PsValue};
pub(crate) use writer::DirectWriter;
pub use writer::to_string;

#[cfg(test)]
mod tests;
