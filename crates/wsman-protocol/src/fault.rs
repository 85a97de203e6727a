//! Typed SOAP faults ([MS-WSMV] §2.2.4.x, `s:Fault` with `f:WSManFault` or
//! `p:MSFT_WmiError` detail), in the spirit of tonic's `Status`.

use std::fmt;

use super::ns;
use super::xml::{Element, excerpt};

/// WSManFault codes seen from Windows hosts, with their meaning.
pub mod code {
    /// 0x80338029: the operation timed out; for Receive and Pull, poll again.
    pub const OPERATION_TIMEOUT: u32 = 2150858793;
    /// 0x8033805B: invalid selectors; the shell, command or instance is gone.
    pub const INVALID_SELECTORS: u32 = 2150858843;
    /// 0x8033800F: an invalid message information header.
    pub const INVALID_HEADER: u32 = 2150858767;
    /// 0x8033801A: the data source could not process the filter (bad WQL).
    pub const CANNOT_PROCESS_FILTER: u32 = 2150858778;
    /// 0x803381A5: the maximum number of shells for the user is exceeded.
    pub const MAX_SHELLS: u32 = 2150859173;
    /// 0x803381A6: the maximum number of concurrent operations for the user is exceeded.
    pub const MAX_CONCURRENT_OPERATIONS: u32 = 2150859174;
    /// 0x80338044: the envelope is larger than MaxEnvelopeSize allows.
    pub const ENCODING_LIMIT: u32 = 2150858817;
    /// 0x8033803B: the resource URI was not found in the WS-Management catalog.
    pub const RESOURCE_NOT_FOUND: u32 = 2150858811;
    /// ERROR_OPERATION_ABORTED.
    pub const OPERATION_ABORTED: u32 = 995;
    /// ERROR_CANCELLED.
    pub const CANCELLED: u32 = 1223;
    /// ERROR_INVALID_PARAMETER.
    pub const INVALID_PARAMETER: u32 = 87;
    /// ERROR_ACCESS_DENIED.
    pub const ACCESS_DENIED: u32 = 5;
    /// HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND).
    pub const FILE_NOT_FOUND: u32 = 2147942402;
    /// `RPC_S_CALL_FAILED` (1726): the remote procedure call failed, as a WMI or shell
    /// provider reports a host process that went away.
    pub const RPC_CALL_FAILED: u32 = 1726;
    /// `E_ACCESSDENIED` (0x80070005) as an HRESULT.
    pub const E_ACCESS_DENIED: u32 = 0x8007_0005;
    /// WMI's `WBEM_E_NOT_FOUND` (0x80041002): the object (instance) was not found. WMI
    /// errors reach a client as the WSManFault code or the `MSFT_WmiError` `error_Code`
    /// of a fault from the WMI plugin.
    pub const WBEM_NOT_FOUND: u32 = 0x8004_1002;
    /// WMI's `WBEM_E_ACCESS_DENIED` (0x80041003).
    pub const WBEM_ACCESS_DENIED: u32 = 0x8004_1003;
    /// WMI's `WBEM_E_INVALID_PARAMETER` (0x80041008).
    pub const WBEM_INVALID_PARAMETER: u32 = 0x8004_1008;
    /// WMI's `WBEM_E_INVALID_NAMESPACE` (0x8004100E).
    pub const WBEM_INVALID_NAMESPACE: u32 = 0x8004_100E;
    /// WMI's `WBEM_E_INVALID_CLASS` (0x80041010).
    pub const WBEM_INVALID_CLASS: u32 = 0x8004_1010;
    /// WMI's `WBEM_E_INVALID_QUERY` (0x80041017).
    pub const WBEM_INVALID_QUERY: u32 = 0x8004_1017;

    /// A short English meaning of a known code.
    pub fn meaning(code: u32) -> Option<&'static str> {
        Some(match code {
            OPERATION_TIMEOUT => "the operation timed out (for a long poll: nothing new yet)",
            INVALID_SELECTORS => "invalid selectors: the shell, command or instance does not exist",
            INVALID_HEADER => "a message information header is invalid",
            CANNOT_PROCESS_FILTER => "the filter could not be processed (invalid query or class)",
            MAX_SHELLS => "quota: too many shells open for this user",
            MAX_CONCURRENT_OPERATIONS => "quota: too many concurrent operations for this user",
            ENCODING_LIMIT => "the envelope exceeds the maximum envelope size",
            RESOURCE_NOT_FOUND => "the resource URI was not found (unknown resource or class)",
            OPERATION_ABORTED => "the operation was aborted",
            CANCELLED => "the operation was cancelled",
            INVALID_PARAMETER => "invalid parameter",
            ACCESS_DENIED => "access denied",
            FILE_NOT_FOUND => "the system cannot find the file specified",
            RPC_CALL_FAILED => "the remote procedure call failed (the provider's host process)",
            E_ACCESS_DENIED | WBEM_ACCESS_DENIED => "access denied",
            WBEM_NOT_FOUND => "WMI: the object was not found",
            WBEM_INVALID_PARAMETER => "WMI: invalid parameter",
            WBEM_INVALID_NAMESPACE => "WMI: invalid namespace",
            WBEM_INVALID_CLASS => "WMI: invalid class (it does not exist)",
            WBEM_INVALID_QUERY => "WMI: invalid query",
            _ => return None,
        })
    }
}

/// A provider's inner fault (`f:ProviderFault`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProviderFault {
    /// The `provider` attribute, e.g. `Shell provider`.
    pub provider: Option<String>,
    /// The `path` attribute, e.g. `%systemroot%\system32\WsmSvc.dll`.
    pub path: Option<String>,
    /// Nested WSManFault code, if any.
    pub code: Option<u32>,
    /// Nested message text.
    pub message: Option<String>,
}

/// The `MSFT_WmiError` detail shape (CIM error).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WmiError {
    /// `CIMStatusCode`.
    pub cim_status_code: Option<u32>,
    /// `error_Code`.
    pub error_code: Option<u32>,
    /// `Message`.
    pub message: Option<String>,
    /// `MessageID`, e.g. `HRESULT 0x803381a5`.
    pub message_id: Option<String>,
    /// `error_Type`, e.g. `HRESULT`.
    pub error_type: Option<String>,
}

/// A SOAP fault returned by the server.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Fault {
    /// The response's `wsa:Action`, if any.
    pub action: Option<String>,
    /// SOAP code, e.g. `s:Sender` or `s:Receiver` (as written).
    pub code: String,
    /// SOAP subcode QName as written, e.g. `w:TimedOut`.
    pub subcode: Option<String>,
    /// The reason text.
    pub reason: String,
    /// `w:FaultDetail` URI, if present.
    pub fault_detail: Option<String>,
    /// The WSManFault `Code`, or the MSFT_WmiError `error_Code`.
    pub wsman_code: Option<u32>,
    /// The WSManFault `Machine` attribute.
    pub machine: Option<String>,
    /// The WSManFault message text (the outermost text, or the provider's).
    pub message: Option<String>,
    /// The nested provider fault.
    pub provider: Option<ProviderFault>,
    /// The MSFT_WmiError detail.
    pub wmi_error: Option<WmiError>,
}

fn parse_code(s: &str) -> Option<u32> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).ok();
    }
    s.parse::<u32>()
        .ok()
        .or_else(|| s.parse::<i32>().ok().map(|v| v as u32))
}

/// Concatenated text of an element and its descendants, excluding nested provider faults.
fn flat_text(el: &Element, out: &mut String) {
    out.push_str(&el.text);
    for c in &el.children {
        if c.is(ns::WSMAN_FAULT, "ProviderFault") {
            continue;
        }
        flat_text(c, out);
    }
}

fn clean(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

impl Fault {
    /// Reads a fault from a parsed envelope; None when the body holds no `s:Fault`.
    pub fn from_envelope(root: &Element) -> Option<Fault> {
        let body = root.child(ns::SOAP, "Body")?;
        let f = body.child(ns::SOAP, "Fault")?;
        let mut fault = Fault::from_fault_element(f);
        fault.action = root
            .path(&[(ns::SOAP, "Header"), (ns::ADDRESSING, "Action")])
            .map(|a| a.text.trim().to_string());
        Some(fault)
    }

    /// Reads an `s:Fault` element.
    pub fn from_fault_element(f: &Element) -> Fault {
        let mut fault = Fault::default();
        if let Some(code) = f.child(ns::SOAP, "Code") {
            fault.code = code.child_text(ns::SOAP, "Value").unwrap_or("").to_string();
            fault.subcode = code
                .path(&[(ns::SOAP, "Subcode"), (ns::SOAP, "Value")])
                .map(|v| v.text.trim().to_string());
        }
        if let Some(reason) = f.child(ns::SOAP, "Reason") {
            fault.reason = reason
                .children_named(ns::SOAP, "Text")
                .map(|t| t.text.trim())
                .next()
                .unwrap_or_else(|| reason.text.trim())
                .to_string();
        }
        if let Some(detail) = f.child(ns::SOAP, "Detail") {
            fault.fault_detail = detail
                .child_any(&[ns::WSMAN], "FaultDetail")
                .map(|d| d.text.trim().to_string());
            if let Some(wf) = detail.child(ns::WSMAN_FAULT, "WSManFault") {
                fault.wsman_code = wf.attr("Code").and_then(parse_code);
                fault.machine = wf.attr("Machine").map(str::to_string);
                if let Some(msg) = wf.child(ns::WSMAN_FAULT, "Message") {
                    let mut text = String::new();
                    flat_text(msg, &mut text);
                    fault.message = clean(text);
                    if let Some(pf) = msg.child(ns::WSMAN_FAULT, "ProviderFault") {
                        let mut p = ProviderFault {
                            provider: pf.attr("provider").map(|s| s.trim().to_string()),
                            path: pf.attr("path").map(str::to_string),
                            ..Default::default()
                        };
                        if let Some(inner) = pf.child(ns::WSMAN_FAULT, "WSManFault") {
                            p.code = inner.attr("Code").and_then(parse_code);
                            if let Some(m) = inner.child(ns::WSMAN_FAULT, "Message") {
                                let mut t = String::new();
                                flat_text(m, &mut t);
                                p.message = clean(t);
                            }
                        } else {
                            let mut t = String::new();
                            flat_text(pf, &mut t);
                            p.message = clean(t);
                        }
                        if fault.message.is_none() {
                            fault.message = p.message.clone();
                        }
                        fault.provider = Some(p);
                    }
                }
            }
            if let Some(we) = detail.children.iter().find(|c| c.name == "MSFT_WmiError") {
                let get = |n: &str| {
                    we.children
                        .iter()
                        .find(|c| c.name == n && !c.is_nil())
                        .map(|c| c.text.trim().to_string())
                };
                let w = WmiError {
                    cim_status_code: get("CIMStatusCode").and_then(|s| parse_code(&s)),
                    error_code: get("error_Code").and_then(|s| parse_code(&s)),
                    message: get("Message"),
                    message_id: get("MessageID"),
                    error_type: get("error_Type"),
                };
                if fault.wsman_code.is_none() {
                    fault.wsman_code = w.error_code;
                }
                if fault.message.is_none() {
                    fault.message = w.message.clone();
                }
                fault.wmi_error = Some(w);
            }
        }
        fault
    }

    /// The WSManFault code (or MSFT_WmiError error code).
    pub fn code(&self) -> Option<u32> {
        self.wsman_code
    }

    /// The best human message: the WSManFault message, else the reason.
    pub fn message(&self) -> &str {
        self.message.as_deref().unwrap_or(&self.reason)
    }

    /// The local part of the subcode, e.g. `TimedOut`.
    pub fn subcode_name(&self) -> Option<&str> {
        self.subcode
            .as_deref()
            .map(|s| s.rsplit_once(':').map_or(s, |(_, l)| l))
    }

    /// A short meaning of the code, when known.
    pub fn meaning(&self) -> Option<&'static str> {
        self.wsman_code.and_then(code::meaning)
    }

    fn has(&self, c: u32) -> bool {
        self.wsman_code == Some(c) || self.provider.as_ref().and_then(|p| p.code) == Some(c)
    }

    /// The long poll timed out (2150858793 / `w:TimedOut`): poll again.
    pub fn is_timed_out(&self) -> bool {
        self.has(code::OPERATION_TIMEOUT) || self.subcode_name() == Some("TimedOut")
    }

    /// A quota was exceeded (shells or concurrent operations; `w:QuotaLimit`).
    pub fn is_quota(&self) -> bool {
        self.has(code::MAX_SHELLS)
            || self.has(code::MAX_CONCURRENT_OPERATIONS)
            || self.subcode_name() == Some("QuotaLimit")
    }

    /// The target is gone, or was never there: invalid selectors (2150858843), the
    /// answer for a shell or command that no longer exists and, from the simulator, for
    /// a Get, Put or Delete of an instance its selectors do not name. [`Fault::is_not_found`]
    /// is for an unknown resource URI or class instead.
    pub fn is_gone(&self) -> bool {
        self.has(code::INVALID_SELECTORS) || self.has(code::WBEM_NOT_FOUND)
    }

    /// The operation was aborted or cancelled on the server (995, 1223).
    pub fn is_aborted(&self) -> bool {
        self.has(code::OPERATION_ABORTED) || self.has(code::CANCELLED)
    }

    /// The filter could not be processed (bad WQL; WMI's `WBEM_E_INVALID_QUERY` too).
    pub fn is_bad_filter(&self) -> bool {
        self.has(code::CANNOT_PROCESS_FILTER)
            || self.has(code::WBEM_INVALID_QUERY)
            || self.subcode_name() == Some("CannotProcessFilter")
    }

    /// The enumeration context is invalid or expired.
    pub fn is_invalid_enumeration_context(&self) -> bool {
        self.subcode_name() == Some("InvalidEnumerationContext")
    }

    /// The resource or class does not exist (`DestinationUnreachable`, 2150858811; WMI's
    /// `WBEM_E_INVALID_CLASS` and `WBEM_E_INVALID_NAMESPACE`).
    pub fn is_not_found(&self) -> bool {
        self.has(code::RESOURCE_NOT_FOUND)
            || self.has(code::WBEM_INVALID_CLASS)
            || self.has(code::WBEM_INVALID_NAMESPACE)
            || self.subcode_name() == Some("DestinationUnreachable")
    }

    /// Access was denied (5, `E_ACCESSDENIED`, WMI's `WBEM_E_ACCESS_DENIED`,
    /// `w:AccessDenied`).
    pub fn is_access_denied(&self) -> bool {
        self.has(code::ACCESS_DENIED)
            || self.has(code::E_ACCESS_DENIED)
            || self.has(code::WBEM_ACCESS_DENIED)
            || self.subcode_name() == Some("AccessDenied")
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WS-Management fault")?;
        if let Some(c) = self.wsman_code {
            write!(f, " {c} (0x{c:08X})")?;
        }
        if let Some(s) = self.subcode_name() {
            write!(f, " [{s}]")?;
        }
        if let Some(m) = self.meaning() {
            write!(f, ", {m}")?;
        }
        write!(f, ": {}", excerpt(self.message(), 400))
    }
}

impl std::error::Error for Fault {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    #[test]
    fn timed_out_fault() {
        let xml = br#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header><a:Action>http://schemas.dmtf.org/wbem/wsman/1/wsman/fault</a:Action></s:Header><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:TimedOut</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  </s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150858793" Machine="host"><f:Message>The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  </f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>"#;
        let f = Fault::from_envelope(&parse(xml).unwrap()).unwrap();
        assert!(f.is_timed_out());
        assert!(!f.is_gone());
        assert_eq!(f.code(), Some(code::OPERATION_TIMEOUT));
        assert_eq!(f.machine.as_deref(), Some("host"));
        assert_eq!(f.subcode_name(), Some("TimedOut"));
        assert_eq!(f.action.as_deref(), Some(ns::action::FAULT));
        assert!(f.to_string().contains("2150858793 (0x80338029)"));
    }

    /// A fault of the WMI plugin: its `MSFT_WmiError` `error_Code` (a WMI HRESULT) is the
    /// code when the WSManFault has none, and the predicates know WMI's codes.
    #[test]
    fn wmi_error_codes_answer_the_predicates() {
        let fault = |error_code: u32| {
            let xml = format!(
                r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:InternalError</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">x</s:Text></s:Reason><s:Detail><p:MSFT_WmiError xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/MSFT_WmiError" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common"><p:Message>WMI says no</p:Message><p:error_Code>{error_code}</p:error_Code></p:MSFT_WmiError></s:Detail></s:Fault></s:Body></s:Envelope>"#
            );
            Fault::from_envelope(&parse(xml.as_bytes()).unwrap()).unwrap()
        };
        let denied = fault(code::WBEM_ACCESS_DENIED);
        assert_eq!(denied.code(), Some(0x8004_1003));
        assert!(denied.is_access_denied() && !denied.is_gone());
        assert_eq!(denied.meaning(), Some("access denied"));
        assert!(fault(code::E_ACCESS_DENIED).is_access_denied());
        assert!(fault(code::WBEM_NOT_FOUND).is_gone());
        assert!(fault(code::WBEM_INVALID_CLASS).is_not_found());
        assert!(fault(code::WBEM_INVALID_NAMESPACE).is_not_found());
        let query = fault(code::WBEM_INVALID_QUERY);
        assert!(query.is_bad_filter() && !query.is_not_found());
        assert_eq!(query.meaning(), Some("WMI: invalid query"));
    }

    #[test]
    fn codes_parse_in_any_form() {
        assert_eq!(parse_code("0x80338029"), Some(code::OPERATION_TIMEOUT));
        assert_eq!(parse_code(" 995 "), Some(995));
        assert_eq!(parse_code("-2144108503"), Some(code::OPERATION_TIMEOUT));
        assert_eq!(parse_code("x"), None);
    }
}
