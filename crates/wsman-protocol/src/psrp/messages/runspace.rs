//! Runspace pool messages: SESSION_CAPABILITY (§2.2.2.1), INIT_RUNSPACEPOOL (§2.2.2.2),
//! SET_MAX/MIN_RUNSPACES (§2.2.2.6-7), RUNSPACE_AVAILABILITY (§2.2.2.8),
//! RUNSPACEPOOL_STATE (§2.2.2.9) and APPLICATION_PRIVATE_DATA (§2.2.2.13), with the
//! types inside them (§2.2.3).

use super::{ErrorRecord, ProtocolVersion, boolean, int, non_null, object, ps_enum, required};
use crate::psrp::clixml::{Collection, PsObject, PsValue};
use crate::psrp::error::{Error, Result};

const PRIMITIVE_DICTIONARY: [&str; 3] = [
    "System.Management.Automation.PSPrimitiveDictionary",
    "System.Collections.Hashtable",
    "System.Object",
];

/// SESSION_CAPABILITY ([MS-PSRP] §2.2.2.1): the versions each side speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionCapability {
    /// `protocolversion` (e.g. `2.3`).
    pub protocol_version: String,
    /// `PSVersion` (`2.0`).
    pub ps_version: String,
    /// `SerializationVersion` (`1.1.0.1`).
    pub serialization_version: String,
    /// `TimeZone`: a .NET binary-serialized time zone, optional and opaque.
    pub time_zone: Option<Vec<u8>>,
}

impl Default for SessionCapability {
    /// Protocol 2.3, PSVersion 2.0, serialization 1.1.0.1, no time zone (what Windows
    /// PowerShell and pypsrp send).
    fn default() -> Self {
        SessionCapability {
            protocol_version: ProtocolVersion::V2_3.to_string(),
            ps_version: "2.0".into(),
            serialization_version: "1.1.0.1".into(),
            time_zone: None,
        }
    }
}

impl SessionCapability {
    /// The protocol version, parsed.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] when it is not `major.minor`.
    pub fn protocol(&self) -> Result<ProtocolVersion> {
        self.protocol_version.parse()
    }

    /// The message body.
    pub fn to_value(&self) -> PsValue {
        let mut o = PsObject::new()
            .with_property(
                "protocolversion",
                PsValue::Version(self.protocol_version.clone()),
            )
            .with_property("PSVersion", PsValue::Version(self.ps_version.clone()))
            .with_property(
                "SerializationVersion",
                PsValue::Version(self.serialization_version.clone()),
            );
        if let Some(tz) = &self.time_zone {
            o = o.with_property("TimeZone", PsValue::Bytes(tz.clone()));
        }
        o.into()
    }

    /// Parses the message body.
    ///
    /// # Errors
    ///
    /// [`Error::MissingProperty`] or [`Error::WrongType`].
    pub fn from_value(v: &PsValue) -> Result<Self> {
        const M: &str = "SESSION_CAPABILITY";
        let o = object(v, M)?;
        let version = |p: &'static str| -> Result<String> {
            required(o, M, p)?
                .as_str()
                .map(str::to_string)
                .ok_or(Error::WrongType {
                    message: M,
                    property: p,
                    expected: "a version",
                })
        };
        Ok(SessionCapability {
            protocol_version: version("protocolversion")?,
            ps_version: version("PSVersion")?,
            serialization_version: version("SerializationVersion")?,
            time_zone: match o.property("TimeZone") {
                Some(PsValue::Bytes(b)) => Some(b.clone()),
                _ => None,
            },
        })
    }
}

ps_enum! {
    /// `PSThreadOptions` ([MS-PSRP] §2.2.3.6).
    PsThreadOptions, "System.Management.Automation.Runspaces.PSThreadOptions", {
        /// Default.
        Default = 0 => "Default",
        /// UseNewThread.
        UseNewThread = 1 => "UseNewThread",
        /// ReuseThread.
        ReuseThread = 2 => "ReuseThread",
        /// UseCurrentThread.
        UseCurrentThread = 3 => "UseCurrentThread",
    }
}

ps_enum! {
    /// `ApartmentState` ([MS-PSRP] §2.2.3.7).
    ApartmentState, "System.Management.Automation.Runspaces.ApartmentState", {
        /// STA.
        Sta = 0 => "STA",
        /// MTA.
        Mta = 1 => "MTA",
        /// Unknown (the default PowerShell sends), `ToString` `UNKNOWN`.
        UnknownState = 2 => "UNKNOWN",
    }
}

ps_enum! {
    /// `RunspacePoolState` ([MS-PSRP] §2.2.3.4).
    RunspacePoolState, "System.Management.Automation.Runspaces.RunspacePoolState", {
        /// BeforeOpen.
        BeforeOpen = 0 => "BeforeOpen",
        /// Opening.
        Opening = 1 => "Opening",
        /// Opened: pipelines may run.
        Opened = 2 => "Opened",
        /// Closed.
        Closed = 3 => "Closed",
        /// Closing.
        Closing = 4 => "Closing",
        /// Broken: the pool failed; an error record says why.
        Broken = 5 => "Broken",
        /// NegotiationSent.
        NegotiationSent = 6 => "NegotiationSent",
        /// NegotiationSucceeded.
        NegotiationSucceeded = 7 => "NegotiationSucceeded",
        /// Connecting.
        Connecting = 8 => "Connecting",
        /// Disconnected.
        Disconnected = 9 => "Disconnected",
    }
}

/// `HostInfo` ([MS-PSRP] §2.2.3.14): whether the client has a host, and its defaults.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HostInfo {
    /// `_isHostNull`.
    pub is_host_null: bool,
    /// `_isHostUINull`.
    pub is_host_ui_null: bool,
    /// `_isHostRawUINull`.
    pub is_host_raw_ui_null: bool,
    /// `_useRunspaceHost`.
    pub use_runspace_host: bool,
    /// `_hostDefaultData`: the host's default values (§2.2.3.13), when it has a host.
    pub host_default_data: Option<PsValue>,
}

impl Default for HostInfo {
    /// No host: every host call fails on the server side ("not interactive").
    fn default() -> Self {
        HostInfo::none()
    }
}

impl HostInfo {
    /// No host at all (what pypsrp sends without a host): the server answers host calls
    /// itself with errors.
    pub fn none() -> Self {
        HostInfo {
            is_host_null: true,
            is_host_ui_null: true,
            is_host_raw_ui_null: true,
            use_runspace_host: true,
            host_default_data: None,
        }
    }

    /// A host without UI and raw UI: the server sends host calls (`SetShouldExit`,
    /// `GetName`...) to the client.
    pub fn without_ui() -> Self {
        HostInfo {
            is_host_null: false,
            use_runspace_host: false,
            ..Self::none()
        }
    }

    /// The `HostInfo` object.
    pub fn to_value(&self) -> PsValue {
        let mut o = PsObject::new();
        if let Some(d) = &self.host_default_data {
            o = o.with_property("_hostDefaultData", d.clone());
        }
        o.with_property("_isHostNull", self.is_host_null)
            .with_property("_isHostUINull", self.is_host_ui_null)
            .with_property("_isHostRawUINull", self.is_host_raw_ui_null)
            .with_property("_useRunspaceHost", self.use_runspace_host)
            .into()
    }

    /// [`HostInfo::to_value`] written directly, as property `name`.
    pub(crate) fn write_to(&self, w: &mut crate::psrp::clixml::DirectWriter, name: &str) {
        w.start_object(Some(name), None);
        w.markup("<MS>");
        if let Some(d) = &self.host_default_data {
            w.value(Some("_hostDefaultData"), d);
        }
        w.boolean("_isHostNull", self.is_host_null);
        w.boolean("_isHostUINull", self.is_host_ui_null);
        w.boolean("_isHostRawUINull", self.is_host_raw_ui_null);
        w.boolean("_useRunspaceHost", self.use_runspace_host);
        w.markup("</MS>");
        w.end_object();
    }

    /// Parses a `HostInfo` object.
    ///
    /// # Errors
    ///
    /// [`Error::MissingProperty`] or [`Error::WrongType`].
    pub fn from_value(v: &PsValue) -> Result<Self> {
        const M: &str = "HostInfo";
        let o = object(v, M)?;
        Ok(HostInfo {
            is_host_null: boolean(o, M, "_isHostNull")?,
            is_host_ui_null: boolean(o, M, "_isHostUINull")?,
            is_host_raw_ui_null: boolean(o, M, "_isHostRawUINull")?,
            use_runspace_host: boolean(o, M, "_useRunspaceHost")?,
            host_default_data: non_null(o, "_hostDefaultData"),
        })
    }
}

/// INIT_RUNSPACEPOOL ([MS-PSRP] §2.2.2.2): the pool the client asks for.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct InitRunspacePool {
    /// `MinRunspaces`.
    pub min_runspaces: i32,
    /// `MaxRunspaces`: how many pipelines may run at once.
    pub max_runspaces: i32,
    /// `PSThreadOptions`.
    pub thread_options: PsThreadOptions,
    /// `ApartmentState`.
    pub apartment_state: ApartmentState,
    /// `HostInfo`.
    pub host_info: HostInfo,
    /// `ApplicationArguments`: a primitive dictionary the session configuration sees as
    /// `$PSSenderInfo.ApplicationArguments` (§2.2.3.18), or none.
    pub application_arguments: Option<Vec<(PsValue, PsValue)>>,
}

impl Default for InitRunspacePool {
    /// One runspace, default threading, unknown apartment, no host, no arguments.
    fn default() -> Self {
        InitRunspacePool {
            min_runspaces: 1,
            max_runspaces: 1,
            thread_options: PsThreadOptions::Default,
            apartment_state: ApartmentState::UnknownState,
            host_info: HostInfo::none(),
            application_arguments: None,
        }
    }
}

impl InitRunspacePool {
    /// A pool of `min..=max` runspaces with the other defaults.
    pub fn new(min_runspaces: i32, max_runspaces: i32) -> Self {
        InitRunspacePool {
            min_runspaces,
            max_runspaces,
            ..Self::default()
        }
    }

    /// The message body.
    pub fn to_value(&self) -> PsValue {
        let args = match &self.application_arguments {
            Some(entries) => PsObject::new()
                .with_type_names(PRIMITIVE_DICTIONARY)
                .with_collection(Collection::Dictionary(entries.clone()))
                .into(),
            None => PsValue::Null,
        };
        PsObject::new()
            .with_property("MinRunspaces", self.min_runspaces)
            .with_property("MaxRunspaces", self.max_runspaces)
            .with_property("PSThreadOptions", self.thread_options.to_ps_value())
            .with_property("ApartmentState", self.apartment_state.to_ps_value())
            .with_property("HostInfo", self.host_info.to_value())
            .with_property("ApplicationArguments", args)
            .into()
    }

    /// Parses the message body (the server side).
    ///
    /// # Errors
    ///
    /// [`Error::MissingProperty`] or [`Error::WrongType`].
    pub fn from_value(v: &PsValue) -> Result<Self> {
        const M: &str = "INIT_RUNSPACEPOOL";
        let o = object(v, M)?;
        let small = |p: &'static str| -> Result<i32> {
            i32::try_from(int(o, M, p)?).map_err(|_| Error::WrongType {
                message: M,
                property: p,
                expected: "a 32-bit integer",
            })
        };
        let application_arguments = match o.property("ApplicationArguments") {
            Some(PsValue::Object(a)) => match &a.collection {
                Some(Collection::Dictionary(d)) => Some(d.clone()),
                _ => None,
            },
            _ => None,
        };
        Ok(InitRunspacePool {
            min_runspaces: small("MinRunspaces")?,
            max_runspaces: small("MaxRunspaces")?,
            thread_options: PsThreadOptions::from_value(int(o, M, "PSThreadOptions")?),
            apartment_state: ApartmentState::from_value(int(o, M, "ApartmentState")?),
            host_info: HostInfo::from_value(required(o, M, "HostInfo")?)?,
            application_arguments,
        })
    }
}

/// SET_MAX_RUNSPACES ([MS-PSRP] §2.2.2.6): body with `MaxRunspaces` and call id `ci`.
pub fn set_max_runspaces(max_runspaces: i32, call_id: i64) -> PsValue {
    PsObject::new()
        .with_property("MaxRunspaces", max_runspaces)
        .with_property("ci", call_id)
        .into()
}

/// SET_MIN_RUNSPACES ([MS-PSRP] §2.2.2.7): body with `MinRunspaces` and call id `ci`.
pub fn set_min_runspaces(min_runspaces: i32, call_id: i64) -> PsValue {
    PsObject::new()
        .with_property("MinRunspaces", min_runspaces)
        .with_property("ci", call_id)
        .into()
}

/// GET_AVAILABLE_RUNSPACES ([MS-PSRP] §2.2.2.11): body with call id `ci`.
pub fn get_available_runspaces(call_id: i64) -> PsValue {
    PsObject::new().with_property("ci", call_id).into()
}

/// RESET_RUNSPACE_STATE ([MS-PSRP] §2.2.2.31): body with call id `ci`.
pub fn reset_runspace_state(call_id: i64) -> PsValue {
    PsObject::new().with_property("ci", call_id).into()
}

/// The call id `ci` of a SET_MAX_RUNSPACES, SET_MIN_RUNSPACES, GET_AVAILABLE_RUNSPACES
/// or RESET_RUNSPACE_STATE body, and its `MaxRunspaces`/`MinRunspaces` if any (the
/// server side).
///
/// # Errors
///
/// [`Error::MissingProperty`] or [`Error::WrongType`] when `ci` is missing.
pub fn call_id(v: &PsValue) -> Result<i64> {
    int(object(v, "runspace pool call")?, "runspace pool call", "ci")
}

/// CONNECT_RUNSPACEPOOL ([MS-PSRP] §2.2.2.29): the pool size to reconnect with, or
/// an empty string for the pool as it was (what pypsrp sends).
pub fn connect_runspace_pool(size: Option<(i32, i32)>) -> PsValue {
    match size {
        Some((min, max)) => PsObject::new()
            .with_property("MinRunspaces", min)
            .with_property("MaxRunspaces", max)
            .into(),
        None => PsValue::String(String::new()),
    }
}

/// RUNSPACEPOOL_INIT_DATA ([MS-PSRP] §2.2.2.30): the size of the pool a client
/// connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunspacePoolInitData {
    /// `MinRunspaces`.
    pub min_runspaces: i32,
    /// `MaxRunspaces`.
    pub max_runspaces: i32,
}

impl RunspacePoolInitData {
    /// The message body.
    pub fn to_value(&self) -> PsValue {
        PsObject::new()
            .with_property("MinRunspaces", self.min_runspaces)
            .with_property("MaxRunspaces", self.max_runspaces)
            .into()
    }

    /// Parses the message body.
    ///
    /// # Errors
    ///
    /// [`Error::MissingProperty`] or [`Error::WrongType`].
    pub fn from_value(v: &PsValue) -> Result<Self> {
        const M: &str = "RUNSPACEPOOL_INIT_DATA";
        let o = object(v, M)?;
        let small = |p: &'static str| -> Result<i32> {
            i32::try_from(int(o, M, p)?).map_err(|_| Error::WrongType {
                message: M,
                property: p,
                expected: "a 32-bit integer",
            })
        };
        Ok(RunspacePoolInitData {
            min_runspaces: small("MinRunspaces")?,
            max_runspaces: small("MaxRunspaces")?,
        })
    }
}

/// RUNSPACE_AVAILABILITY ([MS-PSRP] §2.2.2.8): the answer to a call `ci`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RunspaceAvailability {
    /// The call id `ci` it answers.
    pub call_id: i64,
    /// `SetMinMaxRunspacesResponse`: a boolean for SET_MAX/MIN_RUNSPACES and
    /// RESET_RUNSPACE_STATE, a count (`I64`) for GET_AVAILABLE_RUNSPACES.
    pub response: PsValue,
}

impl RunspaceAvailability {
    /// The message body.
    pub fn to_value(&self) -> PsValue {
        PsObject::new()
            .with_property("SetMinMaxRunspacesResponse", self.response.clone())
            .with_property("ci", self.call_id)
            .into()
    }

    /// Parses the message body.
    ///
    /// # Errors
    ///
    /// [`Error::MissingProperty`] or [`Error::WrongType`].
    pub fn from_value(v: &PsValue) -> Result<Self> {
        const M: &str = "RUNSPACE_AVAILABILITY";
        let o = object(v, M)?;
        Ok(RunspaceAvailability {
            call_id: int(o, M, "ci")?,
            response: required(o, M, "SetMinMaxRunspacesResponse")?.clone(),
        })
    }
}

/// RUNSPACEPOOL_STATE ([MS-PSRP] §2.2.2.9): the pool's state, and the error when it
/// broke.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RunspacePoolStateInfo {
    /// `RunspaceState`.
    pub state: RunspacePoolState,
    /// `ExceptionAsErrorRecord`, when present.
    pub error: Option<ErrorRecord>,
}

impl RunspacePoolStateInfo {
    /// A state without an error.
    pub fn new(state: RunspacePoolState) -> Self {
        RunspacePoolStateInfo { state, error: None }
    }

    /// The message body.
    pub fn to_value(&self) -> PsValue {
        let mut o = PsObject::new().with_property("RunspaceState", self.state.value());
        if let Some(e) = &self.error {
            o = o.with_property("ExceptionAsErrorRecord", e.to_value());
        }
        o.into()
    }

    /// Parses the message body.
    ///
    /// # Errors
    ///
    /// [`Error::MissingProperty`] or [`Error::WrongType`].
    pub fn from_value(v: &PsValue) -> Result<Self> {
        const M: &str = "RUNSPACEPOOL_STATE";
        let o = object(v, M)?;
        Ok(RunspacePoolStateInfo {
            state: RunspacePoolState::from_value(int(o, M, "RunspaceState")?),
            error: non_null(o, "ExceptionAsErrorRecord")
                .map(|e| ErrorRecord::from_value(&e))
                .transpose()?,
        })
    }
}

/// APPLICATION_PRIVATE_DATA ([MS-PSRP] §2.2.2.13): the session configuration's private
/// data, with `PSVersionTable` among it on Windows.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ApplicationPrivateData {
    /// `ApplicationPrivateData`: a primitive dictionary, or `Nil`.
    pub data: PsValue,
}

impl ApplicationPrivateData {
    /// Wraps a dictionary entries list.
    pub fn new(entries: Vec<(PsValue, PsValue)>) -> Self {
        ApplicationPrivateData {
            data: PsObject::new()
                .with_type_names(PRIMITIVE_DICTIONARY)
                .with_collection(Collection::Dictionary(entries))
                .into(),
        }
    }

    /// The entry named `key`.
    pub fn get(&self, key: &str) -> Option<&PsValue> {
        dictionary_get(&self.data, key)
    }

    /// `PSVersionTable.PSVersion`, as Windows reports it (e.g. `5.1.14393.2248`).
    pub fn ps_version(&self) -> Option<&str> {
        dictionary_get(self.get("PSVersionTable")?, "PSVersion")?.as_str()
    }

    /// The message body.
    pub fn to_value(&self) -> PsValue {
        PsObject::new()
            .with_property("ApplicationPrivateData", self.data.clone())
            .into()
    }

    /// Parses the message body.
    ///
    /// # Errors
    ///
    /// [`Error::MissingProperty`] or [`Error::WrongType`].
    pub fn from_value(v: &PsValue) -> Result<Self> {
        const M: &str = "APPLICATION_PRIVATE_DATA";
        let o = object(v, M)?;
        Ok(ApplicationPrivateData {
            data: required(o, M, "ApplicationPrivateData")?.clone(),
        })
    }
}

/// The value of `key` in a dictionary object.
pub(crate) fn dictionary_get<'a>(dict: &'a PsValue, key: &str) -> Option<&'a PsValue> {
    match &dict.as_object()?.collection {
        Some(Collection::Dictionary(entries)) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}
