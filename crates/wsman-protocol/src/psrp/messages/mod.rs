//! Typed bodies of the PSRP messages a runspace pool and its pipelines exchange
//! ([MS-PSRP] §2.2.2) and the complex types inside them (§2.2.3): each type builds its
//! CLIXML value ([`to_value`](SessionCapability::to_value) style) and parses it back
//! (`from_value`), so a client and a server (the simulator) share one definition.
//!
//! [`ServerMessage::decode`] turns any message a server sends into one typed event, and
//! [`ClientMessage::decode`] any message a client sends (the simulator's side).

mod decode;
mod host;
mod pipeline;
mod records;
mod runspace;

use std::fmt;
use std::str::FromStr;

pub use decode::{ClientMessage, ServerMessage};
pub use host::{HostCall, HostMethod, HostResponse};
pub use pipeline::{
    Argument, Command, CreatePipeline, PipelineResultTypes, PipelineState, PipelineStateInfo,
    PowerShell, RemoteStreamOptions, end_of_pipeline_input, pipeline_input,
};
pub use records::{
    ErrorCategory, ErrorRecord, InformationRecord, InformationalRecord, ProgressRecord,
    ProgressRecordType,
};
pub use runspace::{
    ApartmentState, ApplicationPrivateData, HostInfo, InitRunspacePool, PsThreadOptions,
    RunspaceAvailability, RunspacePoolInitData, RunspacePoolState, RunspacePoolStateInfo,
    SessionCapability, call_id, connect_runspace_pool, get_available_runspaces,
    reset_runspace_state, set_max_runspaces, set_min_runspaces,
};

use super::clixml::{PsObject, PsValue};
use super::error::{Error, Result};

/// A PSRP protocol version ([MS-PSRP] §3.1.5.3.1): `2.1` (Windows 7 / PowerShell 2),
/// `2.2` (merge options per stream), `2.3` (the information stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion {
    /// Major version (2).
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

impl ProtocolVersion {
    /// 2.1.
    pub const V2_1: Self = ProtocolVersion { major: 2, minor: 1 };
    /// 2.2.
    pub const V2_2: Self = ProtocolVersion { major: 2, minor: 2 };
    /// 2.3, what current Windows speaks and this crate offers.
    pub const V2_3: Self = ProtocolVersion { major: 2, minor: 3 };
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for ProtocolVersion {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let mut parts = s.trim().split('.');
        let mut next = || parts.next().and_then(|p| p.parse::<u16>().ok());
        match (next(), next()) {
            (Some(major), Some(minor)) => Ok(ProtocolVersion { major, minor }),
            _ => Err(Error::invalid("Version", s)),
        }
    }
}

// Property access shared by the message types.

pub(crate) fn object<'a>(v: &'a PsValue, message: &'static str) -> Result<&'a PsObject> {
    v.as_object().ok_or(Error::WrongType {
        message,
        property: "(body)",
        expected: "an object",
    })
}

pub(crate) fn required<'a>(
    o: &'a PsObject,
    message: &'static str,
    property: &'static str,
) -> Result<&'a PsValue> {
    o.property(property)
        .ok_or(Error::MissingProperty { message, property })
}

pub(crate) fn int(o: &PsObject, message: &'static str, property: &'static str) -> Result<i64> {
    required(o, message, property)?
        .as_i64()
        .ok_or(Error::WrongType {
            message,
            property,
            expected: "an integer",
        })
}

pub(crate) fn boolean(o: &PsObject, message: &'static str, property: &'static str) -> Result<bool> {
    required(o, message, property)?
        .as_bool()
        .ok_or(Error::WrongType {
            message,
            property,
            expected: "a boolean",
        })
}

pub(crate) fn text(o: &PsObject, property: &str) -> Option<String> {
    o.property(property)
        .and_then(PsValue::as_str)
        .map(str::to_string)
}

pub(crate) fn non_null(o: &PsObject, property: &str) -> Option<PsValue> {
    o.property(property).filter(|v| !v.is_null()).cloned()
}

/// Defines a .NET enum carried as an enum object ([MS-PSRP] §2.2.5.2.7): variants with
/// their numbers and `ToString` texts, an `Unknown` fallback, and the conversions.
macro_rules! ps_enum {
    (
        $(#[$doc:meta])*
        $name:ident, $type_name:literal,
        { $($(#[$vdoc:meta])* $variant:ident = $num:literal => $text:literal,)* }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// A value this crate does not know, kept with its number.
            Unknown(i32),
        }

        impl $name {
            /// The .NET type name.
            pub const TYPE_NAME: &'static str = $type_name;

            /// The number on the wire.
            pub fn value(self) -> i32 {
                match self {
                    $($name::$variant => $num,)*
                    $name::Unknown(n) => n,
                }
            }

            /// The variant with this number.
            pub fn from_value(n: i64) -> Self {
                match n {
                    $($num => $name::$variant,)*
                    other => $name::Unknown(i32::try_from(other).unwrap_or(i32::MIN)),
                }
            }

            /// The .NET `ToString` of the value.
            pub fn name(self) -> String {
                match self {
                    $($name::$variant => $text.to_string(),)*
                    $name::Unknown(n) => n.to_string(),
                }
            }

            /// The enum's type names, made once and shared by its objects.
            #[allow(dead_code)]
            pub(crate) fn type_names() -> &'static ::std::sync::Arc<[String]> {
                static TYPE_NAMES: ::std::sync::OnceLock<::std::sync::Arc<[String]>> =
                    ::std::sync::OnceLock::new();
                TYPE_NAMES
                    .get_or_init(|| $crate::psrp::PsObject::enum_type_names(Self::TYPE_NAME))
            }

            /// The value as an enum object with its type names.
            pub fn to_ps_value(self) -> $crate::psrp::PsValue {
                $crate::psrp::PsObject::shared_enumeration(
                    ::std::sync::Arc::clone(Self::type_names()),
                    self.name(),
                    self.value(),
                )
                .into()
            }

            /// The value written as an enum object by a direct writer.
            #[allow(dead_code)]
            pub(crate) fn write_to(self, w: &mut $crate::psrp::clixml::DirectWriter, name: &str) {
                match self {
                    $($name::$variant => w.enumeration(name, Self::type_names(), $text, $num),)*
                    $name::Unknown(n) => w.enumeration(name, Self::type_names(), &n.to_string(), n),
                }
            }
        }
    };
}
pub(crate) use ps_enum;

#[cfg(test)]
mod tests;
