//! Decoding a whole message by its type: [`ServerMessage`] for what a client receives,
//! [`ClientMessage`] for what a server receives.

use super::*;
use crate::psrp::clixml::PsValue;
use crate::psrp::error::Result;
use crate::psrp::message::{Message, MessageType};

/// A message a server sends, decoded ([MS-PSRP] §2.2.2).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerMessage {
    /// SESSION_CAPABILITY: the server's versions.
    SessionCapability(SessionCapability),
    /// APPLICATION_PRIVATE_DATA.
    ApplicationPrivateData(ApplicationPrivateData),
    /// RUNSPACEPOOL_STATE.
    RunspacePoolState(RunspacePoolStateInfo),
    /// RUNSPACEPOOL_INIT_DATA: the size of a pool connected to.
    RunspacePoolInitData(RunspacePoolInitData),
    /// RUNSPACE_AVAILABILITY: the answer to a SET_MAX/MIN_RUNSPACES,
    /// GET_AVAILABLE_RUNSPACES or RESET_RUNSPACE_STATE call.
    RunspaceAvailability(RunspaceAvailability),
    /// RUNSPACEPOOL_HOST_CALL or PIPELINE_HOST_CALL.
    HostCall(HostCall),
    /// PIPELINE_OUTPUT: one output object.
    Output(PsValue),
    /// ERROR_RECORD.
    Error(ErrorRecord),
    /// WARNING_RECORD.
    Warning(InformationalRecord),
    /// VERBOSE_RECORD.
    Verbose(InformationalRecord),
    /// DEBUG_RECORD.
    Debug(InformationalRecord),
    /// INFORMATION_RECORD.
    Information(InformationRecord),
    /// PROGRESS_RECORD.
    Progress(ProgressRecord),
    /// PIPELINE_STATE.
    PipelineState(PipelineStateInfo),
    /// Any other type (ENCRYPTED_SESSION_KEY, PUBLIC_KEY_REQUEST, USER_EVENT, unknown
    /// types): the data as a value, for the caller to interpret.
    Other(MessageType, PsValue),
}

impl ServerMessage {
    /// Decodes a message from a server by its type.
    ///
    /// # Errors
    ///
    /// CLIXML errors, or [`Error::MissingProperty`] / [`Error::WrongType`] when the
    /// body lacks what its type requires.
    pub fn decode(message: &Message) -> Result<ServerMessage> {
        let value = message.value()?;
        Ok(match message.message_type {
            MessageType::SessionCapability => {
                ServerMessage::SessionCapability(SessionCapability::from_value(&value)?)
            }
            MessageType::ApplicationPrivateData => {
                ServerMessage::ApplicationPrivateData(ApplicationPrivateData::from_value(&value)?)
            }
            MessageType::RunspacePoolState => {
                ServerMessage::RunspacePoolState(RunspacePoolStateInfo::from_value(&value)?)
            }
            MessageType::RunspacePoolInitData => {
                ServerMessage::RunspacePoolInitData(RunspacePoolInitData::from_value(&value)?)
            }
            MessageType::RunspaceAvailability => {
                ServerMessage::RunspaceAvailability(RunspaceAvailability::from_value(&value)?)
            }
            MessageType::RunspacePoolHostCall | MessageType::PipelineHostCall => {
                ServerMessage::HostCall(HostCall::from_value(&value)?)
            }
            MessageType::PipelineOutput => ServerMessage::Output(value),
            MessageType::ErrorRecord => ServerMessage::Error(ErrorRecord::from_value(&value)?),
            MessageType::WarningRecord => {
                ServerMessage::Warning(InformationalRecord::from_value(&value)?)
            }
            MessageType::VerboseRecord => {
                ServerMessage::Verbose(InformationalRecord::from_value(&value)?)
            }
            MessageType::DebugRecord => {
                ServerMessage::Debug(InformationalRecord::from_value(&value)?)
            }
            MessageType::InformationRecord => {
                ServerMessage::Information(InformationRecord::from_value(&value)?)
            }
            MessageType::ProgressRecord => {
                ServerMessage::Progress(ProgressRecord::from_value(&value)?)
            }
            MessageType::PipelineState => {
                ServerMessage::PipelineState(PipelineStateInfo::from_value(&value)?)
            }
            other => ServerMessage::Other(other, value),
        })
    }
}

/// A message a client sends, decoded ([MS-PSRP] §2.2.2): what a server (the simulator)
/// acts on.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientMessage {
    /// SESSION_CAPABILITY: the client's versions.
    SessionCapability(SessionCapability),
    /// INIT_RUNSPACEPOOL.
    InitRunspacePool(InitRunspacePool),
    /// CONNECT_RUNSPACEPOOL: the body as sent (an empty string or a pool size).
    ConnectRunspacePool(PsValue),
    /// SET_MAX_RUNSPACES with its call id.
    SetMaxRunspaces {
        /// `MaxRunspaces`.
        max_runspaces: i64,
        /// `ci`.
        call_id: i64,
    },
    /// SET_MIN_RUNSPACES with its call id.
    SetMinRunspaces {
        /// `MinRunspaces`.
        min_runspaces: i64,
        /// `ci`.
        call_id: i64,
    },
    /// GET_AVAILABLE_RUNSPACES with its call id.
    GetAvailableRunspaces {
        /// `ci`.
        call_id: i64,
    },
    /// RESET_RUNSPACE_STATE with its call id.
    ResetRunspaceState {
        /// `ci`.
        call_id: i64,
    },
    /// CREATE_PIPELINE.
    CreatePipeline(Box<CreatePipeline>),
    /// PIPELINE_INPUT: one input object.
    PipelineInput(PsValue),
    /// END_OF_PIPELINE_INPUT.
    EndOfPipelineInput,
    /// RUNSPACEPOOL_HOST_RESPONSE or PIPELINE_HOST_RESPONSE.
    HostResponse(HostResponse),
    /// Any other type (PUBLIC_KEY, GET_COMMAND_METADATA, unknown types): the data as a
    /// value (`Nil` when empty).
    Other(MessageType, PsValue),
}

impl ClientMessage {
    /// Decodes a message from a client by its type.
    ///
    /// # Errors
    ///
    /// CLIXML errors, or [`crate::psrp::Error::MissingProperty`] /
    /// [`crate::psrp::Error::WrongType`] when the body lacks what its type requires.
    pub fn decode(message: &Message) -> Result<ClientMessage> {
        if message.message_type == MessageType::EndOfPipelineInput {
            return Ok(ClientMessage::EndOfPipelineInput);
        }
        let value = if message.data.is_empty() {
            PsValue::Null
        } else {
            message.value()?
        };
        let count = |property: &'static str| -> Result<(i64, i64)> {
            let o = object(&value, "runspace count")?;
            Ok((
                int(o, "runspace count", property)?,
                int(o, "runspace count", "ci")?,
            ))
        };
        Ok(match message.message_type {
            MessageType::SessionCapability => {
                ClientMessage::SessionCapability(SessionCapability::from_value(&value)?)
            }
            MessageType::InitRunspacePool => {
                ClientMessage::InitRunspacePool(InitRunspacePool::from_value(&value)?)
            }
            MessageType::ConnectRunspacePool => ClientMessage::ConnectRunspacePool(value),
            MessageType::SetMaxRunspaces => {
                let (max_runspaces, call_id) = count("MaxRunspaces")?;
                ClientMessage::SetMaxRunspaces {
                    max_runspaces,
                    call_id,
                }
            }
            MessageType::SetMinRunspaces => {
                let (min_runspaces, call_id) = count("MinRunspaces")?;
                ClientMessage::SetMinRunspaces {
                    min_runspaces,
                    call_id,
                }
            }
            MessageType::GetAvailableRunspaces => ClientMessage::GetAvailableRunspaces {
                call_id: call_id(&value)?,
            },
            MessageType::ResetRunspaceState => ClientMessage::ResetRunspaceState {
                call_id: call_id(&value)?,
            },
            MessageType::CreatePipeline => {
                ClientMessage::CreatePipeline(Box::new(CreatePipeline::from_value(&value)?))
            }
            MessageType::PipelineInput => ClientMessage::PipelineInput(value),
            MessageType::RunspacePoolHostResponse | MessageType::PipelineHostResponse => {
                ClientMessage::HostResponse(HostResponse::from_value(&value)?)
            }
            other => ClientMessage::Other(other, value),
        })
    }
}
