//! Writes responses and faults the way Windows does (prefixes `s`, `a`, `x`, `w`, `n`,
//! `p`, `rsp` on the root; HTTP 500 for faults).

use crate::soap::envelope::XmlWriter;
use crate::soap::fault::code;
use crate::soap::ns;

/// A fault the simulator answers with.
#[derive(Debug, Clone, PartialEq)]
pub struct SimFault {
    /// HTTP status (500 for SOAP faults as Windows sends them).
    pub http_status: u16,
    /// `s:Sender` or `s:Receiver`.
    pub code: &'static str,
    /// Subcode QName with Windows' prefixes, e.g. `w:InvalidSelectors`.
    pub subcode: String,
    /// Reason text.
    pub reason: String,
    /// WSManFault code.
    pub wsman_code: Option<u32>,
    /// `w:FaultDetail` URI.
    pub fault_detail: Option<String>,
    /// The `wsa:Action` of the fault message.
    pub action: &'static str,
    /// `(provider, path)` of a nested ProviderFault.
    pub provider: Option<(String, String)>,
    /// `f:Message` text when it differs from the reason (WinRS does this).
    pub message: Option<String>,
}

const MACHINE: &str = "sim.local";

impl SimFault {
    /// A fault with the generic WS-Management fault action.
    pub fn new(
        code: &'static str,
        subcode: &str,
        reason: impl Into<String>,
        wsman_code: Option<u32>,
    ) -> SimFault {
        SimFault {
            http_status: 500,
            code,
            subcode: subcode.to_string(),
            reason: reason.into(),
            wsman_code,
            fault_detail: None,
            action: ns::action::FAULT,
            provider: None,
            message: None,
        }
    }

    /// Unparseable request.
    pub fn malformed(detail: &str) -> SimFault {
        SimFault::new(
            "s:Sender",
            "w:SchemaValidationError",
            format!(
                "The SOAP XML in the message does not match the corresponding XML schema definition. {detail}"
            ),
            Some(2150858791),
        )
    }

    /// A required addressing header is missing ([MS-WSMV] §3.1.4.1).
    pub fn missing_header(name: &str) -> SimFault {
        let mut f = SimFault::new(
            "s:Sender",
            "a:MessageInformationHeaderRequired",
            format!(
                "The WS-Management service cannot process the request because the header {name} is missing."
            ),
            Some(code::INVALID_HEADER),
        );
        f.action = ns::action::ADDRESSING_FAULT;
        f
    }

    /// An addressing header is invalid.
    pub fn invalid_header(name: &str, value: &str) -> SimFault {
        let mut f = SimFault::new(
            "s:Sender",
            "a:InvalidMessageInformationHeader",
            format!(
                "The WS-Management service cannot process the request because the {name} header value {value:?} is invalid."
            ),
            Some(code::INVALID_HEADER),
        );
        f.action = ns::action::ADDRESSING_FAULT;
        f
    }

    /// MaxEnvelopeSize under 8192.
    pub fn encoding_limit(size: u32) -> SimFault {
        let mut f = SimFault::new(
            "s:Sender",
            "w:EncodingLimit",
            format!(
                "The WS-Management service cannot process the request because the MaxEnvelopeSize {size} is smaller than the minimum of 8192 bytes."
            ),
            Some(code::ENCODING_LIMIT),
        );
        f.fault_detail = Some(
            "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/MinimumEnvelopeLimit".into(),
        );
        f
    }

    /// Unknown selector / instance gone (2150858843).
    pub fn invalid_selectors() -> SimFault {
        let mut f = SimFault::new(
            "s:Sender",
            "w:InvalidSelectors",
            "The WS-Management service cannot process the request because the request contained invalid selectors for the resource. ",
            Some(code::INVALID_SELECTORS),
        );
        f.fault_detail = Some(
            "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors".into(),
        );
        f
    }

    /// Unknown resource URI.
    pub fn not_found(uri: &str) -> SimFault {
        let mut f = SimFault::new(
            "s:Sender",
            "a:DestinationUnreachable",
            format!(
                "The WS-Management service cannot process the request. The resource URI ({uri}) was not found in the WS-Management catalog."
            ),
            Some(code::RESOURCE_NOT_FOUND),
        );
        f.action = ns::action::ADDRESSING_FAULT;
        f
    }

    /// An action the resource does not support.
    pub fn action_not_supported(action: &str) -> SimFault {
        let mut f = SimFault::new(
            "s:Sender",
            "a:ActionNotSupported",
            format!("The action {action} is not supported by the service."),
            Some(2150858803),
        );
        f.action = ns::action::ADDRESSING_FAULT;
        f
    }

    /// The long poll timed out: poll again (2150858793).
    pub fn timed_out() -> SimFault {
        SimFault::new(
            "s:Receiver",
            "w:TimedOut",
            "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  ",
            Some(code::OPERATION_TIMEOUT),
        )
    }

    /// MaxShellsPerUser exceeded (2150859173).
    pub fn max_shells(limit: usize) -> SimFault {
        SimFault::new(
            "s:Sender",
            "w:QuotaLimit",
            format!(
                "The WS-Management service cannot process the request. This user is allowed a maximum number of {limit} concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. "
            ),
            Some(code::MAX_SHELLS),
        )
    }

    /// Bad WQL or unknown class in a filter (2150858778).
    pub fn cannot_process_filter(message: &str) -> SimFault {
        let mut f = SimFault::new(
            "s:Sender",
            "n:CannotProcessFilter",
            "The data source could not process the filter. The filter might be missing or it might be invalid. Change the filter and try the request again.  ",
            Some(code::CANNOT_PROCESS_FILTER),
        );
        f.action = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/fault";
        f.provider = Some((
            "WMI Provider".into(),
            format!("%systemroot%\\system32\\WsmWmiPl.dll|{message}"),
        ));
        f
    }

    /// Invalid parameter (87).
    pub fn invalid_parameter(message: &str) -> SimFault {
        SimFault::new(
            "s:Sender",
            "w:InvalidParameter",
            message.to_string(),
            Some(code::INVALID_PARAMETER),
        )
    }

    /// Internal error with a Win32 / HRESULT code.
    pub fn internal(message: &str, wsman_code: u32) -> SimFault {
        SimFault::new(
            "s:Receiver",
            "w:InternalError",
            message.to_string(),
            Some(wsman_code),
        )
    }

    /// Writes the fault envelope.
    pub fn to_envelope(&self, relates_to: Option<&str>) -> String {
        envelope(self.action, relates_to, |w| {
            w.raw("<s:Fault><s:Code><s:Value>");
            w.text(self.code);
            w.raw("</s:Value><s:Subcode><s:Value>");
            w.text(&self.subcode);
            w.raw("</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang=\"en-US\">");
            w.text(&self.reason);
            w.raw("</s:Text></s:Reason><s:Detail>");
            if let Some(d) = &self.fault_detail {
                w.element("w:FaultDetail", d);
            }
            if let Some(c) = self.wsman_code {
                w.raw(&format!(
                    "<f:WSManFault xmlns:f=\"{}\" Code=\"{c}\" Machine=\"{MACHINE}\"><f:Message>",
                    ns::WSMAN_FAULT
                ));
                match &self.provider {
                    Some((provider, path_and_msg)) => {
                        let (path, msg) = path_and_msg
                            .split_once('|')
                            .unwrap_or((path_and_msg, &self.reason));
                        w.raw("<f:ProviderFault provider=\"");
                        w.attr_text(provider);
                        w.raw("\" path=\"");
                        w.attr_text(path);
                        w.raw(&format!("\"><f:WSManFault xmlns:f=\"{}\" Code=\"{c}\" Machine=\"{MACHINE}\"><f:Message>", ns::WSMAN_FAULT));
                        w.text(msg);
                        w.raw("</f:Message></f:WSManFault></f:ProviderFault>");
                    }
                    None => w.text(self.message.as_deref().unwrap_or(&self.reason)),
                }
                w.raw("</f:Message></f:WSManFault>");
            }
            w.raw("</s:Detail></s:Fault>");
        })
    }
}

/// Writes a response envelope with Windows' namespace prefixes and the addressing
/// headers (Action, MessageID, To anonymous, RelatesTo).
pub fn envelope(
    action: &str,
    relates_to: Option<&str>,
    body: impl FnOnce(&mut XmlWriter),
) -> String {
    let mut w = XmlWriter::with_capacity(1024);
    write_head(&mut w, action, relates_to);
    body(&mut w);
    w.raw(ENVELOPE_TAIL);
    w.into_string()
}

/// What closes an envelope begun by [`envelope_head`].
pub(crate) const ENVELOPE_TAIL: &str = "</s:Body></s:Envelope>";

/// An envelope up to and including `<s:Body>`, for a body sent in parts.
pub(crate) fn envelope_head(action: &str, relates_to: Option<&str>) -> String {
    let mut w = XmlWriter::with_capacity(1024);
    write_head(&mut w, action, relates_to);
    w.into_string()
}

/// How every envelope of the simulator begins, up to and including `<s:Header>` (with
/// `p` declared on the root): where the Robust Connections echo goes in.
pub(crate) const ENVELOPE_OPEN: &str = concat!(
    "<s:Envelope xml:lang=\"en-US\" xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"",
    " xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\"",
    " xmlns:x=\"http://schemas.xmlsoap.org/ws/2004/09/transfer\"",
    " xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\"",
    " xmlns:n=\"http://schemas.xmlsoap.org/ws/2004/09/enumeration\"",
    " xmlns:rsp=\"http://schemas.microsoft.com/wbem/wsman/1/windows/shell\"",
    " xmlns:p=\"http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd\">",
    "<s:Header>"
);

tokio::task_local! {
    /// The OperationID that the envelopes written in this task echo (Robust Connections,
    /// [MS-WSMV] §3.1.4.1.39): set around carrying out a request that has a row in the
    /// OperationMessages table, so that the echo is written with the envelope rather
    /// than spliced into it afterwards (`robust::echo` remains for any other response).
    pub(crate) static ECHO: std::sync::Arc<str>;
}

/// The opening of the echo, right after [`ENVELOPE_OPEN`].
pub(crate) const ECHO_OPEN: &str = "<p:OperationID s:mustUnderstand=\"false\">";

fn write_head(w: &mut XmlWriter, action: &str, relates_to: Option<&str>) {
    w.raw(ENVELOPE_OPEN);
    let _ = ECHO.try_with(|id| {
        w.raw(ECHO_OPEN);
        if memchr::memchr3(b'&', b'<', b'>', id.as_bytes()).is_some() {
            w.text(id);
        } else {
            w.raw(id);
        }
        w.raw("</p:OperationID><p:SequenceId>1</p:SequenceId>");
    });
    w.raw("<a:Action>");
    w.text(action);
    w.raw("</a:Action><a:MessageID>uuid:");
    w.raw(&uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase());
    w.raw("</a:MessageID><a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>");
    if let Some(r) = relates_to {
        w.element("a:RelatesTo", r);
    }
    w.raw("</s:Header><s:Body>");
}
