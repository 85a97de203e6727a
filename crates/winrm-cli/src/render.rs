//! How the `winrm` tool shows results: text in the style of `winrm.cmd`, or JSON
//! (instances as objects, arrays as arrays, nil as null), and errors with fault details.

use std::fmt::Write as _;
use std::time::Duration;

use serde::ser::{Serialize, SerializeMap, Serializer};
use tokio_winrm::{EndpointReference, Error, IdentifyResponse, Instance, TransferErrorKind, Value};
use wsman_protocol::envelope::SelectorValue;

/// Prints an Identify response.
pub fn print_identify(id: &IdentifyResponse, as_json: bool) {
    if as_json {
        #[derive(serde::Serialize)]
        struct Identify<'a> {
            protocol_version: &'a str,
            product_vendor: &'a str,
            product_version: &'a str,
            security_profiles: &'a [String],
        }
        let v = Identify {
            protocol_version: &id.protocol_version,
            product_vendor: &id.product_vendor,
            product_version: &id.product_version,
            security_profiles: &id.security_profiles,
        };
        crate::out::outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return;
    }
    crate::out::outln!("IdentifyResponse");
    crate::out::outln!("    ProtocolVersion = {}", id.protocol_version);
    crate::out::outln!("    ProductVendor = {}", id.product_vendor);
    crate::out::outln!("    ProductVersion = {}", id.product_version);
    if !id.security_profiles.is_empty() {
        crate::out::outln!("    SecurityProfiles");
        for p in &id.security_profiles {
            crate::out::outln!("        SecurityProfileName = {p}");
        }
    }
}

/// Prints an instance (Get or Invoke result).
pub fn print_instance(inst: &Instance, as_json: bool) {
    if as_json {
        let text = serde_json::to_string_pretty(&JsonInstance(inst))
            .unwrap_or_else(|_| instance_json_line(inst));
        crate::out::outln!("{text}");
    } else {
        crate::out::out!("{}", instance_text(inst, 0));
    }
}

/// An instance as text: the class name, then `Name = value` lines, indented.
pub fn instance_text(inst: &Instance, indent: usize) -> String {
    let mut out = String::new();
    let pad = " ".repeat(indent);
    let name = if inst.class_name.is_empty() {
        "(instance)"
    } else {
        &inst.class_name
    };
    let _ = writeln!(out, "{pad}{name}");
    for (k, v) in &inst.properties {
        property_text(&mut out, k, v, indent + 4);
    }
    out
}

fn property_text(out: &mut String, name: &str, v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Array(items) if items.is_empty() => {
            let _ = writeln!(out, "{pad}{name} = (empty)");
        }
        // Like winrm.cmd: an array is its property repeated.
        Value::Array(items) => {
            for item in items {
                property_text(out, name, item, indent);
            }
        }
        Value::Instance(inner) => {
            let _ = writeln!(out, "{pad}{name}");
            for (k, v) in &inner.properties {
                property_text(out, k, v, indent + 4);
            }
        }
        other => {
            let _ = writeln!(out, "{pad}{name} = {}", scalar_text(other));
        }
    }
}

/// One value on one line.
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Real(r) => r.to_string(),
        Value::String(s) => s.clone(),
        Value::DateTime(d) => d.raw.clone(),
        Value::Interval(d) => xs_duration(*d),
        Value::Reference(epr) => reference_text(epr),
        Value::Instance(i) => {
            let props: Vec<String> = i
                .properties
                .iter()
                .map(|(k, v)| format!("{k}={}", scalar_text(v)))
                .collect();
            format!("{}{{{}}}", i.class_name, props.join(", "))
        }
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(scalar_text).collect();
            format!("[{}]", parts.join(", "))
        }
        other => format!("{other:?}"),
    }
}

/// Prints an endpoint reference (Create's result).
pub fn print_reference(epr: &EndpointReference, as_json: bool) {
    if as_json {
        crate::out::outln!(
            "{}",
            serde_json::to_string_pretty(&JsonReference(epr)).unwrap_or_default()
        );
    } else {
        crate::out::outln!("ResourceCreated");
        crate::out::outln!("    Address = {}", epr.address);
        crate::out::outln!("    {}", reference_text(epr));
    }
}

fn reference_text(epr: &EndpointReference) -> String {
    let sel: Vec<String> = epr
        .selectors
        .iter()
        .map(|s| match &s.value {
            SelectorValue::Text(t) => format!("{}={t}", s.name),
            SelectorValue::Reference(r) => format!("{}=<{}>", s.name, reference_text(r)),
        })
        .collect();
    if sel.is_empty() {
        epr.resource_uri.clone()
    } else {
        format!("{} [{}]", epr.resource_uri, sel.join(", "))
    }
}

/// `xs:duration` text of a duration, e.g. `PT1.5S`.
fn xs_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("PT{}S", d.as_secs())
    } else {
        let s = format!("{:.9}", d.as_secs_f64());
        format!("PT{}S", s.trim_end_matches('0'))
    }
}

/// One JSON line (no pretty printing) for an instance, properties in document order.
pub fn instance_json_line(inst: &Instance) -> String {
    serde_json::to_string(&JsonInstance(inst)).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Serializes an instance as an object, keeping the property order (serde_json's own
/// `Map` would sort the keys).
struct JsonInstance<'a>(&'a Instance);
struct JsonValue<'a>(&'a Value);
struct JsonReference<'a>(&'a EndpointReference);

impl Serialize for JsonInstance<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.properties.len()))?;
        for (k, v) in &self.0.properties {
            m.serialize_entry(k, &JsonValue(v))?;
        }
        m.end()
    }
}

impl Serialize for JsonValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_none(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::UInt(u) => s.serialize_u64(*u),
            Value::Real(r) => s.serialize_f64(*r),
            Value::String(t) => s.serialize_str(t),
            Value::DateTime(d) => s.serialize_str(&d.raw),
            Value::Interval(d) => s.serialize_str(&xs_duration(*d)),
            Value::Reference(epr) => JsonReference(epr).serialize(s),
            Value::Instance(i) => JsonInstance(i).serialize(s),
            Value::Array(items) => s.collect_seq(items.iter().map(JsonValue)),
            other => s.serialize_str(&format!("{other:?}")),
        }
    }
}

impl Serialize for JsonReference<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Selectors<'a>(&'a EndpointReference);
        impl Serialize for Selectors<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(self.0.selectors.len()))?;
                for sel in &self.0.selectors {
                    match &sel.value {
                        SelectorValue::Text(t) => m.serialize_entry(&sel.name, t)?,
                        SelectorValue::Reference(r) => {
                            m.serialize_entry(&sel.name, &JsonReference(r))?
                        }
                    }
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("address", &self.0.address)?;
        m.serialize_entry("resource_uri", &self.0.resource_uri)?;
        m.serialize_entry("selectors", &Selectors(self.0))?;
        m.end()
    }
}

/// `run --argv`'s refusal of a word ([`Error::InvalidArgument`]) in the tool's terms:
/// the library's reason ends with what a program would call (`skip_cmd_shell(true)`,
/// `raw_arg`); a user of the tool has `--skip-cmd-shell` and `run` without `--argv`.
fn argv_refusal(index: usize, reason: &str) -> String {
    let (why, advice) = match reason.split_once("; use ") {
        Some((why, advice)) => (why, Some(advice)),
        None => (reason, None),
    };
    let mut out = format!(
        "word #{} after the program cannot be passed as one argument (--argv): {why}",
        index + 1
    );
    let mut ways = Vec::new();
    if advice.is_some_and(|a| a.contains("skip_cmd_shell")) {
        ways.push("add --skip-cmd-shell to start the program without cmd.exe");
    }
    if advice.is_some_and(|a| a.contains("raw_arg")) {
        ways.push("leave out --argv to give cmd.exe the words as typed (it then expands them)");
    }
    if !ways.is_empty() {
        out.push_str("; ");
        out.push_str(&ways.join(", or "));
    }
    out
}

/// The library's errors name its builder methods; the tool's user knows its options.
const TOOL_TERMS: [(&str, &str); 6] = [
    ("ClientBuilder::add_root_certificate_pem", "--ca FILE"),
    ("ClientBuilder::os_roots", "--os-roots"),
    ("ClientBuilder::pin_sha256", "--pin SHA256"),
    ("ClientBuilder::danger_accept_invalid_certs", "--insecure"),
    ("danger_accept_invalid_certs", "--insecure"),
    (
        "give the credentials with ClientBuilder::auth",
        "give the credentials with --user and --password (or WINRM_USER and WINRM_PASSWORD)",
    ),
];

/// `text` with the library's builder methods named as the tool's options.
pub fn in_tool_terms(text: &str) -> String {
    let mut out = text.to_string();
    for (api, option) in TOOL_TERMS {
        if out.contains(api) {
            out = out.replace(api, option);
        }
    }
    out
}

/// One line for an error, for the rows of a fan-out: the message, or for a fault its code
/// in decimal and hex, meaning and the server's message (the first line of
/// [`describe_error`] for a fault says only that it is one).
pub fn describe_error_line(e: &Error) -> String {
    let Some(f) = e.fault() else {
        let text = describe_error(e);
        let line = text.lines().next().unwrap_or("").trim();
        return line.strip_prefix("error: ").unwrap_or(line).to_string();
    };
    let mut out = String::from("WS-Management fault");
    if let Some(c) = f.code() {
        let _ = write!(out, " {c} (0x{c:08X})");
    } else if let Some(sub) = &f.subcode {
        let _ = write!(out, " {sub}");
    }
    if let Some(m) = fault_meaning(f) {
        let _ = write!(out, ", {m}");
    }
    let message = f.message();
    let message = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if !message.is_empty() {
        let _ = write!(out, ": {message}");
    }
    out
}

/// A failure as one JSON object, for `--json`: `{"error": {"message", "kind", "fault",
/// "may_have_executed", "retryable", "hint"}}`. `kind` is the first of `cancelled`,
/// `timeout`, `auth`, `connect`, `quota`, `fault` that the error is, else `error`
/// (`usage` for a usage error of the tool); `fault` is the server's fault (`code`,
/// `subcode`, `message`, `machine`) or null.
pub fn error_json(f: &crate::Failure, hint: Option<&str>) -> String {
    let value = match f {
        crate::Failure::Message(m, code) => serde_json::json!({
            "message": m,
            "kind": if *code == 2 { "usage" } else { "error" },
            "fault": null,
            "may_have_executed": false,
            "retryable": false,
            "hint": hint,
        }),
        crate::Failure::Winrm(e) => {
            let kind = if e.is_cancelled() {
                "cancelled"
            } else if e.is_timeout() {
                "timeout"
            } else if e.is_auth() {
                "auth"
            } else if e.is_connect() {
                "connect"
            } else if e.is_quota() {
                "quota"
            } else if e.fault().is_some() {
                "fault"
            } else {
                "error"
            };
            let fault = e.fault().map(|f| {
                serde_json::json!({
                    "code": f.code(),
                    "subcode": f.subcode_name(),
                    "message": f.message().trim(),
                    "machine": f.machine,
                })
            });
            let message = if e.fault().is_some() {
                describe_error_line(e)
            } else {
                let text = describe_error(e);
                match text.strip_prefix("error: ") {
                    Some(rest) => rest.to_string(),
                    None => text,
                }
            };
            serde_json::json!({
                "message": message,
                "kind": kind,
                "fault": fault,
                "may_have_executed": e.may_have_executed(),
                "retryable": e.is_retryable(),
                "hint": hint,
            })
        }
    };
    serde_json::json!({ "error": value }).to_string()
}

/// The text the tool prints for an error: `error: <message>`, and for a fault its code in
/// decimal and hex, meaning, subcode, machine and the server's message.
pub fn describe_error(e: &Error) -> String {
    if let Error::InvalidArgument { index, reason } = e {
        return format!("error: {}", argv_refusal(*index, reason));
    }
    let Some(f) = e.fault() else {
        return format!("error: {}", in_tool_terms(&e.to_string()));
    };
    let mut out = String::from("error: the server answered with a WS-Management fault");
    match f.code() {
        Some(c) => {
            let _ = write!(out, "\n  code:    {c} (0x{c:08X})");
        }
        None => out.push_str("\n  code:    (none)"),
    }
    if let Some(m) = fault_meaning(f) {
        let _ = write!(out, "\n  meaning: {m}");
    }
    let sub = f.subcode.as_deref().unwrap_or("(none)");
    let _ = write!(out, "\n  subcode: {sub} (SOAP code {})", f.code);
    if let Some(m) = &f.machine {
        let _ = write!(out, "\n  machine: {m}");
    }
    let _ = write!(out, "\n  message: {}", f.message().trim());
    if let Some(p) = &f.provider {
        let code = p
            .code
            .map(|c| format!("{c} (0x{c:08X}) "))
            .unwrap_or_default();
        let name = p.provider.as_deref().unwrap_or("provider");
        let _ = write!(
            out,
            "\n  {name}: {code}{}",
            p.message.as_deref().unwrap_or("").trim()
        );
    }
    if let Some(m) = f.wmi_error.as_ref().and_then(|w| w.message.as_ref()) {
        let _ = write!(out, "\n  WMI:     {}", m.trim());
    }
    out
}

/// The meaning of a fault: its WS-Management code's, else its provider's code (an
/// Invoke's fault often carries only a WMI code).
fn fault_meaning(f: &tokio_winrm::Fault) -> Option<&'static str> {
    if let Some(m) = f.meaning() {
        return Some(m);
    }
    if f.code() == Some(0x8033_8033) || f.subcode_name() == Some("ActionNotSupported") {
        return Some(
            "the action is not supported by this resource (for invoke: no such method of the class)",
        );
    }
    let code = f
        .provider
        .as_ref()
        .and_then(|p| p.code)
        .or_else(|| f.wmi_error.as_ref().and_then(|w| w.error_code))?;
    wsman_protocol::fault::code::meaning(code).or_else(|| wmi_meaning(code))
}

/// Common WMI (`WBEM_E_*`) codes.
fn wmi_meaning(code: u32) -> Option<&'static str> {
    Some(match code {
        0x8004_1001 => "WMI: generic failure",
        0x8004_1002 => "WMI: not found (no such instance)",
        0x8004_1003 => "WMI: access denied",
        0x8004_1005 => "WMI: type mismatch (a parameter has the wrong type)",
        0x8004_1008 => "WMI: invalid parameter",
        0x8004_100C => "WMI: not supported",
        0x8004_1010 => "WMI: invalid class",
        0x8004_1017 => "WMI: invalid query",
        0x8004_1024 => "WMI: the provider does not support this operation",
        0x8004_1055 => "WMI: the method is not implemented",
        _ => return None,
    })
}

/// What [`hint`] needs to know of the command line.
pub struct HintContext<'a> {
    /// `--endpoint` (`None`: the embedded simulator).
    pub endpoint: Option<&'a str>,
    /// `--auth`, lower case.
    pub auth: String,
    /// Whether credentials were given.
    pub user_given: bool,
    /// Whether the command works in a WinRS shell (run, ps, attach, pwsh, cp, fetch),
    /// where InvalidSelectors means the shell or command is gone, not a missing key.
    pub shell: bool,
    /// Whether `--selector` was given (get, put, delete, invoke).
    pub selectors_given: bool,
}

/// A `hint:` paragraph for the common causes of an error, printed after it.
pub fn hint(e: &Error, cx: &HintContext<'_>) -> Option<String> {
    let endpoint = cx.endpoint.unwrap_or("");
    let lower = endpoint.trim_start().to_ascii_lowercase();
    let plain_http = lower.starts_with("http://");
    let text = match e {
        Error::Unauthorized { offered } if !cx.user_given => format!(
            "no --user was given (nor WINRM_USER): pass --user and a password; the server offers {}",
            list(offered)
        ),
        Error::Unauthorized { offered } => {
            let ours = cx.auth.as_str();
            let accepted = offered.iter().any(|o| {
                o.eq_ignore_ascii_case(ours)
                    || (ours == "ntlm" && o.eq_ignore_ascii_case("negotiate"))
            });
            if accepted || offered.is_empty() {
                "the user name or password is wrong (or the account may not log on remotely); \
                 a domain user is written DOMAIN\\user or user@domain"
                    .to_string()
            } else {
                format!(
                    "either the user name or password is wrong, or the server does not accept --auth {ours}: it offers {} (choose one with --auth)",
                    list(offered)
                )
            }
        }
        // The library's wording names its builder; a tool user has flags instead.
        Error::Config(m) if m.contains("carries user information") => {
            "give the account with --user and --password (or WINRM_USER and WINRM_PASSWORD, \
             or --password-stdin), not in the URL"
                .to_string()
        }
        Error::Config(m) if m.contains("has no realm") => {
            "with --auth kerberos give --user as user@REALM (the realm in capitals, as \
             krb5.conf names it) or REALM\\user"
                .to_string()
        }
        e if cx.shell
            && e.fault()
                .and_then(|f| f.subcode_name())
                .is_some_and(|s| s == "InvalidSelectors") =>
        {
            "the shell or command no longer exists on the server: it was deleted (by another \
             client, or by attach, which deletes it at the end), or it was left unused past \
             its idle timeout (run --detach --idle-timeout SECS keeps it longer)"
                .to_string()
        }
        e if cx.selectors_given
            && e.fault()
                .and_then(|f| f.subcode_name())
                .is_some_and(|s| s == "InvalidSelectors") =>
        {
            "no instance has these selectors, or they are not the class's keys: check the \
             values (enumerate the class to see them: winrm enumerate RESOURCE) and give \
             every key of the class, once each"
                .to_string()
        }
        e if e
            .fault()
            .and_then(|f| f.subcode_name())
            .is_some_and(|s| s == "InvalidSelectors") =>
        {
            "for get, put, delete or invoke on a class, name the instance with --selector \
             KEY=VALUE, once per key (e.g. --selector Name=Spooler for Win32_Service)"
                .to_string()
        }
        Error::ClientCertificateRefused { .. } => {
            "on the host, certificate authentication must be on \
             (winrm set winrm/config/service/auth @{Certificate=\"true\"}), the certificate's \
             issuer trusted, and the certificate mapped to a user \
             (winrm create winrm/config/service/certmapping?...)"
                .to_string()
        }
        Error::NotSoap { .. } => {
            "this is not a WS-Management answer (an HTML page, for instance): \
             a proxy or captive portal answered, or the port or path is wrong \
             (WinRM listens on http://HOST:5985/wsman and https://HOST:5986/wsman)"
                .to_string()
        }
        Error::Proxy { proxy, message, .. } if message.contains("407") => format!(
            "the proxy {proxy} wants credentials (or refused the ones given): \
             --proxy http://USER:PASSWORD@{proxy} (or socks5://...)"
        ),
        Error::Proxy { proxy, .. } if e.is_retryable() => format!(
            "the proxy {proxy} could not be reached: check the --proxy address \
             (or HTTP_PROXY/HTTPS_PROXY/ALL_PROXY with --proxy-from-env)"
        ),
        Error::Http { status: 404, .. } => "nothing answers at this path: WinRM's path is /wsman \
             (http://HOST:5985/wsman, https://HOST:5986/wsman), unless the listener was \
             configured with another URLPrefix"
            .to_string(),
        Error::Http { status: 413, .. } | Error::ResponseTooLarge { .. } => {
            "the message is larger than a limit: raise the server's MaxEnvelopeSizekb \
             (winrm set winrm/config @{MaxEnvelopeSizekb=\"8192\"}) or, in a program, \
             ClientBuilder::max_envelope_size / max_response_bytes; for wql/enumerate, \
             fewer items per page"
                .to_string()
        }
        Error::Http {
            status: 500,
            excerpt,
        } if excerpt.trim().is_empty() && plain_http => {
            format!(
                "an empty HTTP 500 over http:// is what a server that refuses unencrypted \
                 traffic (AllowUnencrypted=false) answers: use --auth ntlm or negotiate \
                 (messages are sealed; now: --auth {}) or https://",
                cx.auth
            )
        }
        // A body, but not SOAP (an HTML error page, e.g. of a web server that does not
        // take POST): something other than WinRM listens there.
        Error::Http { excerpt, .. }
            if !excerpt.trim().is_empty() && !excerpt.contains("Envelope") =>
        {
            "not a WinRM endpoint? check host, port and path (/wsman): WinRM listens on \
             http://HOST:5985/wsman and https://HOST:5986/wsman"
                .to_string()
        }
        Error::Tls { message, source }
            if lower.starts_with("https://") && {
                let all = format!(
                    "{message} {}",
                    source.as_ref().map(|s| s.to_string()).unwrap_or_default()
                );
                all.contains("InvalidContentType") || all.contains("corrupt message")
            } =>
        {
            format!(
                "the port answered in plain HTTP, not TLS: use http://{} (WinRM's plain-HTTP port is 5985, its HTTPS port 5986)",
                endpoint.trim_start()[8..].trim()
            )
        }
        Error::Connection { source } | Error::ResponseLost { source }
            if plain_http && error_chain(source.as_ref()).contains("invalid HTTP version") =>
        {
            format!(
                "the port answered with something that is not HTTP, as a TLS (HTTPS) port does \
                 to plain HTTP: use https://{} (WinRM's HTTPS port is 5986, its plain-HTTP \
                 port 5985)",
                endpoint.trim_start()[7..].trim()
            )
        }
        Error::HttpTimeout(d) => format!(
            "the server accepted the connection but did not answer within {} s: check that \
             host and port are a WinRM listener (http://HOST:5985/wsman, \
             https://HOST:5986/wsman); for a slow server, raise the limit with --http-timeout \
             SECS (keep it above --operation-timeout)",
            d.as_secs_f64()
        ),
        Error::PinMismatch { presented, .. } => format!(
            "the server's certificate is not the pinned one (--pin): it was renewed, or \
             someone is in the way. Check {presented} against the host's certificate \
             (PowerShell: Get-ChildItem Cert:\\LocalMachine\\My | ForEach-Object \
             {{ $_.GetCertHashString('SHA256') }}) before pinning it"
        ),
        Error::Tls { message, .. }
            if message.contains("is a CA certificate (basic constraints") =>
        {
            "the server presents a CA certificate as its own (a self-signed lab certificate, \
             for instance): pin it with --pin SHA256 after checking its fingerprint on the \
             host, or give the server a certificate issued by a CA"
                .to_string()
        }
        e if e.is_unknown_ca() => "the server's certificate comes from a CA this client does \
             not trust: pass that CA with --ca FILE, use the system's trust store with \
             --os-roots (if the CA is installed there), or pin the certificate with --pin \
             SHA256 after checking its fingerprint on the host"
            .to_string(),
        Error::Config(m) if m.contains("must start with http:// or https://") => {
            "write the endpoint as a URL: http://HOST:5985/wsman (plain HTTP, messages \
             sealed by NTLM or Kerberos) or https://HOST:5986/wsman"
                .to_string()
        }
        Error::Transfer { kind, .. } => match kind {
            TransferErrorKind::LocalIsDirectory | TransferErrorKind::RemoteIsDirectory => {
                "to copy a directory tree, pass -r".to_string()
            }
            TransferErrorKind::PathRefused => "UNC and device paths reach other machines with \
                 your credentials; pass --allow-unc to allow them"
                .to_string(),
            _ => return None,
        },
        _ => return None,
    };
    Some(format!("hint: {text}"))
}

/// An error and its sources, `: `-joined (hyper's parse error may sit under another).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        text.push_str(": ");
        text.push_str(&s.to_string());
        next = s.source();
    }
    text
}

fn list(offered: &[String]) -> String {
    if offered.is_empty() {
        "no scheme".into()
    } else {
        offered.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_builder_methods_are_named_as_the_tools_options() {
        let said = in_tool_terms(
            "add that CA (ClientBuilder::add_root_certificate_pem), trust the operating \
             system's store (ClientBuilder::os_roots), or pin the certificate \
             (ClientBuilder::pin_sha256); certificate checks are off \
             (danger_accept_invalid_certs)",
        );
        assert_eq!(
            said,
            "add that CA (--ca FILE), trust the operating system's store (--os-roots), or \
             pin the certificate (--pin SHA256); certificate checks are off (--insecure)"
        );
        let e = Error::Config(
            "endpoint \"http://u:***@h/wsman\" carries user information (user:password@): \
             give the credentials with ClientBuilder::auth instead"
                .into(),
        );
        let said = describe_error(&e);
        assert!(said.contains("with --user and --password"), "{said}");
        assert!(!said.contains("ClientBuilder"), "{said}");
    }

    fn cx<'a>(endpoint: &'a str, auth: &str) -> HintContext<'a> {
        HintContext {
            endpoint: Some(endpoint),
            auth: auth.into(),
            user_given: true,
            shell: false,
            selectors_given: false,
        }
    }

    #[test]
    fn proxy_errors_hint_at_credentials_or_the_address() {
        let e = Error::Proxy {
            proxy: "proxy:3128".into(),
            message: "CONNECT refused: HTTP/1.1 407 Proxy Authentication Required".into(),
            source: None,
        };
        let h = hint(&e, &cx("http://h:5985/wsman", "ntlm")).unwrap();
        assert!(h.contains("credentials") && h.contains("proxy:3128"), "{h}");
        let e = Error::Proxy {
            proxy: "proxy:3128".into(),
            message: "cannot connect".into(),
            source: Some(Box::new(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            ))),
        };
        let h = hint(&e, &cx("http://h:5985/wsman", "ntlm")).unwrap();
        assert!(h.contains("could not be reached"), "{h}");
    }

    #[test]
    fn credentials_in_the_url_are_pointed_to_the_flags() {
        let e = tokio_winrm::Client::builder("http://user:secret@h:5985/wsman")
            .build()
            .expect_err("user information in the URL is refused");
        let h = hint(&e, &cx("http://user:secret@h:5985/wsman", "basic")).unwrap();
        assert!(h.contains("--user") && h.contains("--password"), "{h}");
        assert!(
            !h.contains("secret") && !e.to_string().contains("secret"),
            "{h} {e}"
        );
    }

    #[test]
    fn a_404_hints_at_the_wsman_path() {
        let e = Error::Http {
            status: 404,
            excerpt: "Not Found".into(),
        };
        let h = hint(&e, &cx("http://h:5985/wman", "ntlm")).unwrap();
        assert!(h.contains("/wsman"), "{h}");
    }

    #[test]
    fn pin_mismatch_hint_names_the_fingerprint_and_other_tls_errors_get_none() {
        let e = Error::PinMismatch {
            endpoint: "h:5986".into(),
            presented: "AB:CD".into(),
        };
        let h = hint(&e, &cx("https://h:5986/wsman", "negotiate")).unwrap();
        assert!(h.contains("--pin") && h.contains("AB:CD"), "{h}");
        assert!(describe_error(&e).contains("AB:CD"));
        let e = Error::Tls {
            message: "TLS handshake with h:5986 failed: expired".into(),
            source: None,
        };
        assert!(!e.is_unknown_ca());
        assert_eq!(hint(&e, &cx("https://h:5986/wsman", "negotiate")), None);
    }

    #[test]
    fn transfer_and_endpoint_hints_name_the_flags() {
        let t = |kind| Error::Transfer {
            kind,
            path: r"C:\x".into(),
            message: String::new(),
        };
        let c = cx("http://h:5985/wsman", "ntlm");
        for kind in [
            TransferErrorKind::LocalIsDirectory,
            TransferErrorKind::RemoteIsDirectory,
        ] {
            assert!(hint(&t(kind), &c).unwrap().contains("-r"));
        }
        let h = hint(&t(TransferErrorKind::PathRefused), &c).unwrap();
        assert!(h.contains("--allow-unc"), "{h}");
        assert!(hint(&t(TransferErrorKind::RemoteNotFound), &c).is_none());
        let e = Error::Config("endpoint \"host:5985\" must start with http:// or https://".into());
        let h = hint(&e, &cx("host:5985", "negotiate")).unwrap();
        assert!(h.contains("http://HOST:5985/wsman"), "{h}");
    }

    #[test]
    fn hints() {
        let e = Error::Unauthorized {
            offered: vec!["Negotiate".into(), "Kerberos".into()],
        };
        let h = hint(&e, &cx("https://h:5986/wsman", "basic")).unwrap();
        assert!(
            h.contains("does not accept --auth basic") && h.contains("Negotiate, Kerberos"),
            "{h}"
        );
        let h = hint(&e, &cx("https://h:5986/wsman", "negotiate")).unwrap();
        assert!(
            h.contains("password is wrong") && !h.contains("does not accept"),
            "{h}"
        );
        let none = HintContext {
            endpoint: Some("http://h"),
            auth: "negotiate".into(),
            user_given: false,
            shell: false,
            selectors_given: false,
        };
        assert!(hint(&e, &none).unwrap().contains("no --user"));
        let e = Error::ClientCertificateRefused {
            reason: "HTTP 401".into(),
        };
        let h = hint(&e, &cx("https://h:5986/wsman", "certificate")).unwrap();
        assert!(
            h.contains("certmapping") && h.contains("Certificate"),
            "{h}"
        );

        let e = Error::Http {
            status: 500,
            excerpt: String::new(),
        };
        assert!(
            hint(&e, &cx("http://h:5985/wsman", "basic"))
                .unwrap()
                .contains("AllowUnencrypted")
        );
        assert!(hint(&e, &cx("https://h:5986/wsman", "basic")).is_none());

        let e = Error::Http {
            status: 413,
            excerpt: "x".into(),
        };
        assert!(
            hint(&e, &cx("http://h", "ntlm"))
                .unwrap()
                .contains("MaxEnvelopeSizekb")
        );

        let e = Error::NotSoap {
            status: 200,
            content_type: Some("text/html".into()),
            excerpt: "<html>".into(),
        };
        assert!(hint(&e, &cx("http://h", "ntlm")).unwrap().contains("proxy"));

        let e = Error::Tls {
            message: "received corrupt message of type InvalidContentType".into(),
            source: None,
        };
        let h = hint(&e, &cx("https://h:5985/wsman", "ntlm")).unwrap();
        assert!(
            h.contains("plain HTTP") && h.contains("http://h:5985/wsman"),
            "{h}"
        );
    }

    #[test]
    fn wmi_codes_have_a_meaning() {
        assert_eq!(
            wmi_meaning(0x8004_1002),
            Some("WMI: not found (no such instance)")
        );
        assert_eq!(wmi_meaning(1), None);
    }

    #[test]
    fn durations() {
        assert_eq!(xs_duration(Duration::from_secs(60)), "PT60S");
        assert_eq!(xs_duration(Duration::from_millis(1500)), "PT1.5S");
    }
}
