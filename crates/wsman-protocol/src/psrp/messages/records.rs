//! The records of a pipeline's streams: ErrorRecord (§2.2.3.15), the informational
//! records of the warning, verbose and debug streams (§2.2.3.16), InformationRecord
//! (protocol 2.3, §2.2.2.26) and ProgressRecord (§2.2.2.25).
//!
//! Each keeps the whole object it came from (`raw`) besides the typed fields, so
//! nothing the server said is lost.

use super::{int, non_null, object, ps_enum, text};
use crate::psrp::clixml::{PsObject, PsValue};
use crate::psrp::error::Result;

const ERROR_RECORD_TYPES: [&str; 2] = ["System.Management.Automation.ErrorRecord", "System.Object"];

ps_enum! {
    /// `ErrorCategory` ([MS-PSRP] §2.2.3.15, `ErrorCategory_Category`).
    ErrorCategory, "System.Management.Automation.ErrorCategory", {
        /// NotSpecified.
        NotSpecified = 0 => "NotSpecified",
        /// OpenError.
        OpenError = 1 => "OpenError",
        /// CloseError.
        CloseError = 2 => "CloseError",
        /// DeviceError.
        DeviceError = 3 => "DeviceError",
        /// DeadlockDetected.
        DeadlockDetected = 4 => "DeadlockDetected",
        /// InvalidArgument.
        InvalidArgument = 5 => "InvalidArgument",
        /// InvalidData.
        InvalidData = 6 => "InvalidData",
        /// InvalidOperation.
        InvalidOperation = 7 => "InvalidOperation",
        /// InvalidResult.
        InvalidResult = 8 => "InvalidResult",
        /// InvalidType.
        InvalidType = 9 => "InvalidType",
        /// MetadataError.
        MetadataError = 10 => "MetadataError",
        /// NotImplemented.
        NotImplemented = 11 => "NotImplemented",
        /// NotInstalled.
        NotInstalled = 12 => "NotInstalled",
        /// ObjectNotFound.
        ObjectNotFound = 13 => "ObjectNotFound",
        /// OperationStopped.
        OperationStopped = 14 => "OperationStopped",
        /// OperationTimeout.
        OperationTimeout = 15 => "OperationTimeout",
        /// SyntaxError.
        SyntaxError = 16 => "SyntaxError",
        /// ParserError.
        ParserError = 17 => "ParserError",
        /// PermissionDenied.
        PermissionDenied = 18 => "PermissionDenied",
        /// ResourceBusy.
        ResourceBusy = 19 => "ResourceBusy",
        /// ResourceExists.
        ResourceExists = 20 => "ResourceExists",
        /// ResourceUnavailable.
        ResourceUnavailable = 21 => "ResourceUnavailable",
        /// ReadError.
        ReadError = 22 => "ReadError",
        /// WriteError.
        WriteError = 23 => "WriteError",
        /// FromStdErr.
        FromStdErr = 24 => "FromStdErr",
        /// SecurityError.
        SecurityError = 25 => "SecurityError",
        /// ProtocolError.
        ProtocolError = 26 => "ProtocolError",
        /// ConnectionError.
        ConnectionError = 27 => "ConnectionError",
        /// AuthenticationError.
        AuthenticationError = 28 => "AuthenticationError",
        /// LimitsExceeded.
        LimitsExceeded = 29 => "LimitsExceeded",
        /// QuotaExceeded.
        QuotaExceeded = 30 => "QuotaExceeded",
        /// NotEnabled.
        NotEnabled = 31 => "NotEnabled",
    }
}

/// An error record ([MS-PSRP] §2.2.3.15): the error stream's items and the reason a
/// pipeline or pool failed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ErrorRecord {
    /// What went wrong, for people: `ErrorDetails_Message` when set, else the
    /// exception's `Message`, else the record's `ToString`.
    pub message: String,
    /// `FullyQualifiedErrorId`, e.g. `CommandNotFoundException`.
    pub fully_qualified_error_id: Option<String>,
    /// `ErrorCategory_Category`.
    pub category: ErrorCategory,
    /// `ErrorCategory_Message`, e.g. `ObjectNotFound: (x:String) [], CommandNotFoundException`.
    pub category_message: Option<String>,
    /// `ErrorCategory_Activity`.
    pub activity: Option<String>,
    /// `ErrorCategory_Reason`.
    pub reason: Option<String>,
    /// `ErrorCategory_TargetName`.
    pub target_name: Option<String>,
    /// The exception's most derived type name.
    pub exception_type: Option<String>,
    /// `TargetObject`.
    pub target_object: Option<PsValue>,
    /// `ErrorDetails_ScriptStackTrace`.
    pub script_stack_trace: Option<String>,
    /// `InvocationInfo.PositionMessage`: where in the script it happened.
    pub position_message: Option<String>,
    /// The whole object.
    pub raw: PsValue,
}

impl ErrorRecord {
    /// A record with a message, an error id and a category (the server side; the
    /// exception is a `System.Exception` with that message).
    pub fn new(
        message: impl Into<String>,
        fully_qualified_error_id: impl Into<String>,
        category: ErrorCategory,
    ) -> Self {
        let message = message.into();
        let id = fully_qualified_error_id.into();
        let exception: PsValue = PsObject::new()
            .with_type_names(["System.Exception", "System.Object"])
            .with_to_string(format!("System.Exception: {message}"))
            .with_adapted("Message", message.clone())
            .with_adapted("HResult", -2_146_233_088_i32)
            .into();
        let category_message = format!("{}: (:) [], Exception", category.name());
        let raw = PsObject::new()
            .with_type_names(ERROR_RECORD_TYPES)
            .with_to_string(message.clone())
            .with_property("Exception", exception)
            .with_property("TargetObject", PsValue::Null)
            .with_property("FullyQualifiedErrorId", id.clone())
            .with_property("InvocationInfo", PsValue::Null)
            .with_property("ErrorCategory_Category", category.value())
            .with_property("ErrorCategory_Activity", "")
            .with_property("ErrorCategory_Reason", "Exception")
            .with_property("ErrorCategory_TargetName", "")
            .with_property("ErrorCategory_TargetType", "")
            .with_property("ErrorCategory_Message", category_message.clone())
            .with_property("SerializeExtendedInfo", false)
            .into();
        ErrorRecord {
            message,
            fully_qualified_error_id: Some(id),
            category,
            category_message: Some(category_message),
            activity: Some(String::new()),
            reason: Some("Exception".into()),
            target_name: Some(String::new()),
            exception_type: Some("System.Exception".into()),
            target_object: None,
            script_stack_trace: None,
            position_message: None,
            raw,
        }
    }

    /// The record as an object (its `raw` form).
    pub fn to_value(&self) -> PsValue {
        self.raw.clone()
    }

    /// Reads a record from its object.
    ///
    /// # Errors
    ///
    /// [`crate::psrp::Error::WrongType`] when the value is not an object.
    pub fn from_value(v: &PsValue) -> Result<Self> {
        let o = object(v, "ErrorRecord")?;
        let exception = o.property("Exception").and_then(PsValue::as_object);
        let exception_message = exception.and_then(|e| text(e, "Message"));
        let message = text(o, "ErrorDetails_Message")
            .filter(|m| !m.is_empty())
            .or(exception_message)
            .or_else(|| o.to_string.clone())
            .unwrap_or_default();
        let position_message = o
            .property("InvocationInfo")
            .and_then(PsValue::as_object)
            .and_then(|i| text(i, "PositionMessage"))
            .or_else(|| text(o, "InvocationInfo_PositionMessage"))
            .filter(|m| !m.is_empty());
        Ok(ErrorRecord {
            message,
            fully_qualified_error_id: text(o, "FullyQualifiedErrorId"),
            category: o
                .property("ErrorCategory_Category")
                .and_then(PsValue::as_i64)
                .map_or(ErrorCategory::NotSpecified, ErrorCategory::from_value),
            category_message: text(o, "ErrorCategory_Message"),
            activity: text(o, "ErrorCategory_Activity"),
            reason: text(o, "ErrorCategory_Reason"),
            target_name: text(o, "ErrorCategory_TargetName"),
            exception_type: exception.and_then(|e| e.type_names.first().cloned()),
            target_object: non_null(o, "TargetObject"),
            script_stack_trace: text(o, "ErrorDetails_ScriptStackTrace"),
            position_message,
            raw: v.clone(),
        })
    }

    /// `true` when the object is an error record by its type names (how an error
    /// merged into the output stream is told apart from output).
    pub fn is_error_record(v: &PsValue) -> bool {
        v.as_object().is_some_and(|o| {
            o.is_type("System.Management.Automation.ErrorRecord")
                || o.is_type("Deserialized.System.Management.Automation.ErrorRecord")
        })
    }
}

impl std::fmt::Display for ErrorRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(id) = &self.fully_qualified_error_id {
            write!(f, " ({id})")?;
        }
        Ok(())
    }
}

/// A warning, verbose or debug record ([MS-PSRP] §2.2.3.16).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct InformationalRecord {
    /// `InformationalRecord_Message`.
    pub message: String,
    /// The whole object.
    pub raw: PsValue,
}

impl InformationalRecord {
    /// A record of `kind` (`"Warning"`, `"Verbose"` or `"Debug"`) with a message, as the
    /// server writes it (no invocation info).
    pub fn new(kind: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let raw = PsObject::new()
            .with_type_names([
                format!("System.Management.Automation.{kind}Record"),
                "System.Management.Automation.InformationalRecord".to_string(),
                "System.Object".to_string(),
            ])
            .with_to_string(message.clone())
            .with_property("InformationalRecord_Message", message.clone())
            .with_property("InformationalRecord_SerializeInvocationInfo", false)
            .into();
        InformationalRecord { message, raw }
    }

    /// The record as an object.
    pub fn to_value(&self) -> PsValue {
        self.raw.clone()
    }

    /// Reads a record from its object (or from a bare string).
    ///
    /// # Errors
    ///
    /// None today; kept fallible for future checks.
    pub fn from_value(v: &PsValue) -> Result<Self> {
        let message = v
            .as_object()
            .and_then(|o| text(o, "InformationalRecord_Message"))
            .or_else(|| v.as_str().map(str::to_string))
            .unwrap_or_default();
        Ok(InformationalRecord {
            message,
            raw: v.clone(),
        })
    }
}

/// An information record (the information stream, protocol 2.3; `Write-Information`
/// and `Write-Host`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct InformationRecord {
    /// `MessageData`: any object; a string for `Write-Host`.
    pub message_data: PsValue,
    /// `Source`, e.g. `Write-Information`.
    pub source: Option<String>,
    /// `TimeGenerated`, as sent.
    pub time_generated: Option<String>,
    /// `Tags`.
    pub tags: Vec<String>,
    /// `User`.
    pub user: Option<String>,
    /// `Computer`.
    pub computer: Option<String>,
    /// `ProcessId`.
    pub process_id: Option<i64>,
    /// The whole object.
    pub raw: PsValue,
}

impl InformationRecord {
    /// The message as text: `MessageData` when it is a string (or has a `ToString`).
    pub fn message(&self) -> Option<&str> {
        self.message_data.as_str()
    }

    /// A record carrying `message_data` from `source`, as the server writes it.
    pub fn new(message_data: impl Into<PsValue>, source: impl Into<String>) -> Self {
        let message_data = message_data.into();
        let source = source.into();
        let raw = PsObject::new()
            .with_type_names([
                "System.Management.Automation.InformationRecord",
                "System.Object",
            ])
            .with_to_string(message_data.as_str().unwrap_or_default().to_string())
            .with_adapted("MessageData", message_data.clone())
            .with_adapted("Source", source.clone())
            .with_adapted(
                "Tags",
                PsObject::list(
                    [
                        "System.Collections.Generic.List`1[[System.String]]",
                        "System.Object",
                    ],
                    vec![],
                ),
            )
            .into();
        InformationRecord {
            message_data,
            source: Some(source),
            time_generated: None,
            tags: Vec::new(),
            user: None,
            computer: None,
            process_id: None,
            raw,
        }
    }

    /// The record as an object.
    pub fn to_value(&self) -> PsValue {
        self.raw.clone()
    }

    /// Reads a record from its object.
    ///
    /// # Errors
    ///
    /// [`crate::psrp::Error::WrongType`] when the value is not an object.
    pub fn from_value(v: &PsValue) -> Result<Self> {
        let o = object(v, "InformationRecord")?;
        let tags = match o.property("Tags").and_then(PsValue::as_object) {
            Some(t) => match &t.collection {
                Some(c) => c
                    .items()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect(),
                None => Vec::new(),
            },
            None => Vec::new(),
        };
        Ok(InformationRecord {
            message_data: o.property("MessageData").cloned().unwrap_or(PsValue::Null),
            source: text(o, "Source"),
            time_generated: text(o, "TimeGenerated"),
            tags,
            user: text(o, "User"),
            computer: text(o, "Computer"),
            process_id: o.property("ProcessId").and_then(PsValue::as_i64),
            raw: v.clone(),
        })
    }
}

ps_enum! {
    /// `ProgressRecordType`.
    ProgressRecordType, "System.Management.Automation.ProgressRecordType", {
        /// Processing.
        Processing = 0 => "Processing",
        /// Completed.
        Completed = 1 => "Completed",
    }
}

/// A progress record (PROGRESS_RECORD, [MS-PSRP] §2.2.2.25).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProgressRecord {
    /// `Activity`.
    pub activity: String,
    /// `ActivityId`.
    pub activity_id: i32,
    /// `StatusDescription`.
    pub status_description: String,
    /// `CurrentOperation`.
    pub current_operation: Option<String>,
    /// `ParentActivityId` (-1: none).
    pub parent_activity_id: i32,
    /// `PercentComplete` (-1: unknown).
    pub percent_complete: i32,
    /// `Type`.
    pub record_type: ProgressRecordType,
    /// `SecondsRemaining` (-1: unknown).
    pub seconds_remaining: i32,
}

impl ProgressRecord {
    /// A processing record for `activity` with a status.
    pub fn new(activity: impl Into<String>, activity_id: i32, status: impl Into<String>) -> Self {
        ProgressRecord {
            activity: activity.into(),
            activity_id,
            status_description: status.into(),
            current_operation: None,
            parent_activity_id: -1,
            percent_complete: -1,
            record_type: ProgressRecordType::Processing,
            seconds_remaining: -1,
        }
    }

    /// The message body.
    pub fn to_value(&self) -> PsValue {
        PsObject::new()
            .with_property("Activity", self.activity.clone())
            .with_property("ActivityId", self.activity_id)
            .with_property("StatusDescription", self.status_description.clone())
            .with_property("CurrentOperation", self.current_operation.clone())
            .with_property("ParentActivityId", self.parent_activity_id)
            .with_property("PercentComplete", self.percent_complete)
            .with_property("Type", self.record_type.to_ps_value())
            .with_property("SecondsRemaining", self.seconds_remaining)
            .into()
    }

    /// Parses the message body.
    ///
    /// # Errors
    ///
    /// [`crate::psrp::Error::MissingProperty`] or [`crate::psrp::Error::WrongType`].
    pub fn from_value(v: &PsValue) -> Result<Self> {
        const M: &str = "PROGRESS_RECORD";
        let o = object(v, M)?;
        let small =
            |p: &'static str| -> Result<i32> { Ok(i32::try_from(int(o, M, p)?).unwrap_or(-1)) };
        Ok(ProgressRecord {
            activity: text(o, "Activity").unwrap_or_default(),
            activity_id: small("ActivityId")?,
            status_description: text(o, "StatusDescription").unwrap_or_default(),
            current_operation: text(o, "CurrentOperation"),
            parent_activity_id: small("ParentActivityId")?,
            percent_complete: small("PercentComplete")?,
            record_type: ProgressRecordType::from_value(int(o, M, "Type")?),
            seconds_remaining: small("SecondsRemaining")?,
        })
    }
}
