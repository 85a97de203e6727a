//! What a pipeline yields: [`PsEvent`] items, then one [`PipelineEnd`]; and what
//! [`Pipeline::invoke`](super::Pipeline::invoke) collects.

use wsman_protocol::psrp::PsValue;
use wsman_protocol::psrp::messages::{
    ErrorRecord, InformationRecord, InformationalRecord, ProgressRecord,
};

use crate::operation::CancelReason;

/// One item of a pipeline's stream ([MS-PSRP] §2.2.2.19-2.2.2.26).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PsEvent {
    /// PIPELINE_OUTPUT: one output object (read it into your type with
    /// [`from_value`](crate::psrp::from_value)).
    Output(PsValue),
    /// ERROR_RECORD: a non-terminating error.
    Error(ErrorRecord),
    /// WARNING_RECORD.
    Warning(InformationalRecord),
    /// VERBOSE_RECORD.
    Verbose(InformationalRecord),
    /// DEBUG_RECORD.
    Debug(InformationalRecord),
    /// INFORMATION_RECORD (protocol 2.3): `Write-Information`, and `Write-Host` on a
    /// host-less pool.
    Information(InformationRecord),
    /// PROGRESS_RECORD.
    Progress(ProgressRecord),
    /// The final item: how the pipeline ended.
    State(PipelineEnd),
}

/// How a pipeline ended: the last item of its stream, exactly once.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PipelineEnd {
    /// PIPELINE_STATE Completed.
    Completed,
    /// PIPELINE_STATE Failed: a terminating error (a `throw`, a parse error, a
    /// command that does not exist).
    Failed(Box<ErrorRecord>),
    /// Stopped: by this client ([`Pipeline::cancel`](super::Pipeline::cancel), a
    /// deadline, the client's [`cancellation_token`](crate::Client::cancellation_token)
    /// cancelled: `reason` says which), or on the server by
    /// someone else (`reason` `None`).
    Stopped {
        /// Why this client stopped it; `None` when the server reported `Stopped` on its
        /// own.
        reason: Option<CancelReason>,
    },
}

/// Everything a pipeline yielded, collected by
/// [`Pipeline::invoke`](super::Pipeline::invoke) (`T` = [`PsValue`]) or
/// [`Pipeline::invoke_as`](super::Pipeline::invoke_as).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Invocation<T = PsValue> {
    /// The output objects, in order.
    pub output: Vec<T>,
    /// Non-terminating errors.
    pub errors: Vec<ErrorRecord>,
    /// Warnings.
    pub warnings: Vec<InformationalRecord>,
    /// Verbose messages.
    pub verbose: Vec<InformationalRecord>,
    /// Debug messages.
    pub debug: Vec<InformationalRecord>,
    /// Information records.
    pub information: Vec<InformationRecord>,
}

impl<T> Default for Invocation<T> {
    fn default() -> Self {
        Invocation {
            output: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            verbose: Vec::new(),
            debug: Vec::new(),
            information: Vec::new(),
        }
    }
}

impl<T> Invocation<T> {
    /// True when the pipeline wrote at least one (non-terminating) error record.
    pub fn had_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}
