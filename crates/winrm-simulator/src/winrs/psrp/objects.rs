//! The built-in cmdlets and the objects they write, shaped as Windows PowerShell 5.1
//! serializes them (type names, adapted properties of .NET objects, enums as enum
//! objects). Services and processes come from the simulator's WMI data.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;

use super::super::super::State;
use super::engine::{CmdletContext, CmdletFn, dictionary, enumerate, sleep, text_of};
use crate::soap::psrp::messages::{
    ErrorCategory, ErrorRecord, HostMethod, ProgressRecord, ProgressRecordType,
};
use crate::soap::psrp::{Collection, PsObject, PsValue};

const STRING: &str = "System.String";
const STRINGS: &str = "System.String[]";
const INT: &str = "System.Int32";
const OBJECT: &str = "System.Object";
const OBJECTS: &str = "System.Object[]";
const SWITCH: &str = "System.Management.Automation.SwitchParameter";

/// The built-in cmdlets: name, module, parameters (name, .NET type), for
/// GET_COMMAND_METADATA.
#[allow(clippy::type_complexity)]
pub(crate) const BUILTINS: &[(&str, &str, &[(&str, &str)])] = &[
    (
        "ConvertTo-Json",
        "Microsoft.PowerShell.Utility",
        &[
            ("InputObject", OBJECT),
            ("Depth", INT),
            ("Compress", SWITCH),
        ],
    ),
    (
        "ConvertTo-SecureString",
        "Microsoft.PowerShell.Security",
        &[
            ("String", STRING),
            ("AsPlainText", SWITCH),
            ("Force", SWITCH),
        ],
    ),
    (
        "Get-ChildItem",
        "Microsoft.PowerShell.Management",
        &[("Path", STRINGS), ("LiteralPath", STRINGS)],
    ),
    (
        "Get-Content",
        "Microsoft.PowerShell.Management",
        &[("Path", STRINGS), ("LiteralPath", STRINGS), ("Raw", SWITCH)],
    ),
    ("Get-Date", "Microsoft.PowerShell.Utility", &[]),
    (
        "Get-Item",
        "Microsoft.PowerShell.Management",
        &[("Path", STRINGS), ("LiteralPath", STRINGS)],
    ),
    (
        "Get-Process",
        "Microsoft.PowerShell.Management",
        &[("Name", STRINGS), ("Id", "System.Int32[]")],
    ),
    (
        "Get-Service",
        "Microsoft.PowerShell.Management",
        &[("Name", STRINGS), ("DisplayName", STRINGS)],
    ),
    (
        "Out-Null",
        "Microsoft.PowerShell.Core",
        &[("InputObject", OBJECT)],
    ),
    (
        "Read-Host",
        "Microsoft.PowerShell.Utility",
        &[("Prompt", OBJECT), ("AsSecureString", SWITCH)],
    ),
    (
        "Select-Object",
        "Microsoft.PowerShell.Utility",
        &[
            ("InputObject", OBJECT),
            ("Property", OBJECTS),
            ("ExpandProperty", STRING),
            ("First", INT),
            ("Last", INT),
            ("Skip", INT),
        ],
    ),
    (
        "Start-Sleep",
        "Microsoft.PowerShell.Utility",
        &[("Seconds", INT), ("Milliseconds", INT)],
    ),
    (
        "Test-Path",
        "Microsoft.PowerShell.Management",
        &[("Path", STRINGS), ("LiteralPath", STRINGS)],
    ),
    (
        "Write-Debug",
        "Microsoft.PowerShell.Utility",
        &[("Message", STRING)],
    ),
    (
        "Write-Error",
        "Microsoft.PowerShell.Utility",
        &[("Message", STRING), ("ErrorId", STRING)],
    ),
    (
        "Write-Host",
        "Microsoft.PowerShell.Utility",
        &[("Object", OBJECT)],
    ),
    (
        "Write-Information",
        "Microsoft.PowerShell.Utility",
        &[("MessageData", OBJECT)],
    ),
    (
        "Write-Output",
        "Microsoft.PowerShell.Utility",
        &[("InputObject", OBJECTS), ("NoEnumerate", SWITCH)],
    ),
    (
        "Write-Progress",
        "Microsoft.PowerShell.Utility",
        &[
            ("Activity", STRING),
            ("Status", STRING),
            ("Id", INT),
            ("PercentComplete", INT),
            ("CurrentOperation", STRING),
            ("Completed", SWITCH),
        ],
    ),
    (
        "Write-Verbose",
        "Microsoft.PowerShell.Utility",
        &[("Message", STRING)],
    ),
    (
        "Write-Warning",
        "Microsoft.PowerShell.Utility",
        &[("Message", STRING)],
    ),
];

type Fut = BoxFuture<'static, Result<(), ErrorRecord>>;

fn wrap<F>(f: F) -> CmdletFn
where
    F: Fn(CmdletContext) -> Fut + Send + Sync + 'static,
{
    Arc::new(f)
}

/// The built-in cmdlet `name` (case-insensitive).
pub(crate) fn builtin(name: &str, state: &Arc<State>, user: &str) -> Option<CmdletFn> {
    let lower = name.to_ascii_lowercase();
    let state = Arc::clone(state);
    let user = user.to_string();
    Some(match lower.as_str() {
        "write-output" | "echo" => wrap(|ctx| Box::pin(write_output(ctx))),
        "write-error" => wrap(|ctx| Box::pin(write_error(ctx))),
        "convertto-securestring" => wrap(|ctx| Box::pin(convert_to_secure_string(ctx))),
        "write-warning" => wrap(|ctx| {
            Box::pin(async move {
                let m = message(&ctx, "Message");
                ctx.write_warning(&m).await;
                Ok(())
            })
        }),
        "write-verbose" => wrap(|ctx| {
            Box::pin(async move {
                if ctx.switch("Verbose") {
                    let m = message(&ctx, "Message");
                    ctx.write_verbose(&m).await;
                }
                Ok(())
            })
        }),
        "write-debug" => wrap(|ctx| {
            Box::pin(async move {
                if ctx.switch("Debug") {
                    let m = message(&ctx, "Message");
                    ctx.write_debug(&m).await;
                }
                Ok(())
            })
        }),
        "write-information" => wrap(|ctx| {
            Box::pin(async move {
                let v = ctx
                    .parameter("MessageData")
                    .or_else(|| ctx.positional(0))
                    .cloned()
                    .unwrap_or(PsValue::Null);
                ctx.write_information(v).await;
                Ok(())
            })
        }),
        "write-host" => wrap(|ctx| {
            Box::pin(async move {
                let m = message(&ctx, "Object");
                // As Windows: an information record tagged PSHOST.
                ctx.write_host(m).await;
                Ok(())
            })
        }),
        "write-progress" => wrap(|ctx| {
            Box::pin(async move {
                let activity = ctx
                    .parameter_str("Activity")
                    .or_else(|| ctx.positional(0).and_then(text_of))
                    .unwrap_or_default();
                let status = ctx
                    .parameter_str("Status")
                    .or_else(|| ctx.positional(1).and_then(text_of))
                    .unwrap_or_else(|| "Processing".into());
                let id = ctx.parameter("Id").and_then(PsValue::as_i64).unwrap_or(0) as i32;
                let mut r = ProgressRecord::new(activity, id, status);
                r.percent_complete = ctx
                    .parameter("PercentComplete")
                    .and_then(PsValue::as_i64)
                    .unwrap_or(-1) as i32;
                r.current_operation = ctx.parameter_str("CurrentOperation");
                if ctx.switch("Completed") {
                    r.record_type = ProgressRecordType::Completed;
                }
                ctx.write_progress(&r).await;
                Ok(())
            })
        }),
        "start-sleep" => wrap(|ctx| {
            Box::pin(async move {
                let ms = if let Some(v) = ctx.parameter("Milliseconds") {
                    number(v).unwrap_or(0.0)
                } else {
                    ctx.parameter("Seconds")
                        .or_else(|| ctx.positional(0))
                        .and_then(number)
                        .unwrap_or(0.0)
                        * 1000.0
                };
                sleep(Duration::from_millis(ms.clamp(0.0, 86_400_000.0) as u64)).await;
                Ok(())
            })
        }),
        "get-date" => wrap(|ctx| {
            Box::pin(async move {
                ctx.write_output(now()).await;
                Ok(())
            })
        }),
        "convertto-json" => wrap(|ctx| Box::pin(convert_to_json(ctx))),
        "select-object" => wrap(|ctx| Box::pin(select_object(ctx))),
        "out-null" => wrap(|mut ctx| {
            Box::pin(async move {
                while ctx.next_input().await.is_some() {}
                Ok(())
            })
        }),
        "get-service" => wrap(move |ctx| Box::pin(get_service(ctx, Arc::clone(&state)))),
        "get-process" => wrap(move |ctx| Box::pin(get_process(ctx, Arc::clone(&state)))),
        "get-item" | "gi" => wrap(move |ctx| Box::pin(get_item(ctx, Arc::clone(&state)))),
        "get-content" | "gc" | "cat" | "type" => {
            wrap(move |ctx| Box::pin(get_content(ctx, Arc::clone(&state))))
        }
        "test-path" => wrap(move |ctx| Box::pin(test_path(ctx, Arc::clone(&state)))),
        "get-childitem" | "gci" | "dir" | "ls" => {
            wrap(move |ctx| Box::pin(get_child_item(ctx, Arc::clone(&state))))
        }
        "read-host" => wrap(|ctx| Box::pin(read_host(ctx))),
        "whoami" | "get-username" => wrap(move |ctx| {
            let user = user.clone();
            Box::pin(async move {
                ctx.write_output(format!("sim\\{}", user.to_ascii_lowercase()))
                    .await;
                Ok(())
            })
        }),
        _ => return None,
    })
}

fn number(v: &PsValue) -> Option<f64> {
    match v {
        PsValue::F64(f) => Some(*f),
        PsValue::F32(f) => Some(f64::from(*f)),
        PsValue::String(s) => s.trim().parse().ok(),
        other => other.as_i64().map(|n| n as f64),
    }
}

/// The message of a Write-* cmdlet: the named parameter, else the positional ones
/// joined with spaces.
fn message(ctx: &CmdletContext, param: &str) -> String {
    if let Some(m) = ctx.parameter_str(param) {
        return m;
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while let Some(v) = ctx.positional(i) {
        parts.extend(enumerate(v.clone()).iter().filter_map(text_of));
        i += 1;
    }
    parts.join(" ")
}

async fn write_output(mut ctx: CmdletContext) -> Result<(), ErrorRecord> {
    let no_enumerate = ctx.switch("NoEnumerate");
    let mut values = Vec::new();
    if let Some(v) = ctx.parameter("InputObject") {
        values.push(v.clone());
    }
    let mut i = 0;
    while let Some(v) = ctx.positional(i) {
        values.push(v.clone());
        i += 1;
    }
    for v in values {
        if no_enumerate {
            ctx.write_output(v).await;
        } else {
            for item in enumerate(v) {
                ctx.write_output(item).await;
            }
        }
    }
    while let Some(v) = ctx.next_input().await {
        ctx.write_output(v).await;
    }
    Ok(())
}

async fn write_error(ctx: CmdletContext) -> Result<(), ErrorRecord> {
    let m = message(&ctx, "Message");
    let id = ctx
        .parameter_str("ErrorId")
        .map(|id| format!("{id},Microsoft.PowerShell.Commands.WriteErrorException"))
        .unwrap_or_else(|| "Microsoft.PowerShell.Commands.WriteErrorException".into());
    let mut e = ErrorRecord::new(m.clone(), id, ErrorCategory::NotSpecified);
    e.exception_type = Some("Microsoft.PowerShell.Commands.WriteErrorException".into());
    if let Some(o) = e.raw.as_object() {
        let mut o = o.clone();
        for (n, v) in o.extended.iter_mut() {
            match n.as_str() {
                "Exception" => {
                    *v = PsObject::new()
                        .with_type_names([
                            "Microsoft.PowerShell.Commands.WriteErrorException",
                            "System.SystemException",
                            "System.Exception",
                            "System.Object",
                        ])
                        .with_to_string(format!(
                            "Microsoft.PowerShell.Commands.WriteErrorException: {m}"
                        ))
                        .with_adapted("Message", m.clone())
                        .with_adapted("HResult", -2_146_233_087_i32)
                        .into();
                }
                "ErrorCategory_Reason" => *v = "WriteErrorException".into(),
                "ErrorCategory_Message" => {
                    *v = "NotSpecified: (:) [Write-Error], WriteErrorException".into()
                }
                "ErrorCategory_Activity" => *v = "Write-Error".into(),
                _ => {}
            }
        }
        e.raw = o.into();
    }
    ctx.write_error(e).await;
    Ok(())
}

/// `ConvertTo-SecureString -String text -AsPlainText -Force`: a SecureString made with
/// the pool's session key (the server asks the client for one first if there is none).
/// Only plain text is read (the DPAPI form of a standard string is not).
async fn convert_to_secure_string(ctx: CmdletContext) -> Result<(), ErrorRecord> {
    let Some(text) = ctx
        .parameter_str("String")
        .or_else(|| ctx.positional(0).and_then(text_of))
    else {
        return Err(ErrorRecord::new(
            "Cannot bind argument to parameter 'String' because it is null.",
            "ParameterArgumentValidationErrorNullNotAllowed,Microsoft.PowerShell.Commands.ConvertToSecureStringCommand",
            ErrorCategory::InvalidData,
        ));
    };
    if !ctx.switch("AsPlainText") {
        return Err(ErrorRecord::new(
            "The simulator reads only -AsPlainText strings (not the DPAPI form of a standard string).",
            "ImportSecureString_InvalidArgument,Microsoft.PowerShell.Commands.ConvertToSecureStringCommand",
            ErrorCategory::InvalidArgument,
        ));
    }
    let secure = ctx.secure_string(&text).await?;
    ctx.write_output(secure).await;
    Ok(())
}

async fn read_host(ctx: CmdletContext) -> Result<(), ErrorRecord> {
    if let Some(prompt) = ctx
        .parameter_str("Prompt")
        .or_else(|| ctx.positional(0).and_then(text_of))
    {
        ctx.host_call(HostMethod::Write1, vec![format!("{prompt}: ").into()])
            .await?;
    }
    // `-AsSecureString`: the host returns a SecureString (made with the pool's session
    // key), written out as it came.
    let method = if ctx.switch("AsSecureString") {
        HostMethod::ReadLineAsSecureString
    } else {
        HostMethod::ReadLine
    };
    let line = ctx.host_call(method, vec![]).await?;
    ctx.write_output(line.unwrap_or(PsValue::String(String::new())))
        .await;
    Ok(())
}

async fn select_object(mut ctx: CmdletContext) -> Result<(), ErrorRecord> {
    let first = ctx
        .parameter("First")
        .and_then(number)
        .map(|n| n.max(0.0) as usize);
    let last = ctx
        .parameter("Last")
        .and_then(number)
        .map(|n| n.max(0.0) as usize);
    let skip = ctx
        .parameter("Skip")
        .and_then(number)
        .map_or(0, |n| n.max(0.0) as usize);
    let props: Option<Vec<String>> = ctx
        .parameter("Property")
        .or_else(|| ctx.positional(0))
        .map(|v| enumerate(v.clone()).iter().filter_map(text_of).collect());
    let expand = ctx.parameter_str("ExpandProperty");
    let shape = |v: PsValue| -> PsValue {
        if let Some(name) = &expand {
            return v.property(name).cloned().unwrap_or(PsValue::Null);
        }
        let Some(props) = &props else { return v };
        let type_name = v
            .as_object()
            .and_then(|o| o.type_names.first().cloned())
            .unwrap_or_else(|| "System.Object".into());
        let mut o = PsObject::new().with_type_names([
            format!("Selected.{}", type_name.trim_start_matches("Deserialized.")),
            "System.Management.Automation.PSCustomObject".into(),
            "System.Object".into(),
        ]);
        for p in props {
            o = o.with_property(p.clone(), v.property(p).cloned().unwrap_or(PsValue::Null));
        }
        o.into()
    };
    if first == Some(0) {
        return Ok(());
    }
    let mut seen = 0usize;
    let mut written = 0usize;
    let mut tail = std::collections::VecDeque::new();
    while let Some(v) = ctx.next_input().await {
        seen += 1;
        if seen <= skip {
            continue;
        }
        if let Some(n) = last {
            tail.push_back(v);
            if tail.len() > n {
                tail.pop_front();
            }
            continue;
        }
        ctx.write_output(shape(v)).await;
        written += 1;
        if first.is_some_and(|n| written >= n) {
            // Done: the engine stops the commands before this one.
            return Ok(());
        }
    }
    for v in tail {
        ctx.write_output(shape(v)).await;
    }
    Ok(())
}

// ---- Get-Date ---------------------------------------------------------------------

/// Days since 1970-01-01 to a civil date (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A time as .NET serializes a local DateTime (the simulator's zone is UTC).
pub(crate) fn datetime_text(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, m, day) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:07}+00:00",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_nanos() / 100
    )
}

/// Get-Date's object: a DateTime with the DisplayHint note property.
fn now() -> PsValue {
    PsObject::new()
        .with_value(PsValue::DateTime(datetime_text(SystemTime::now())))
        .with_property(
            "DisplayHint",
            PsObject::enumeration(
                "Microsoft.PowerShell.Commands.DisplayHintType",
                "DateTime",
                2,
            ),
        )
        .into()
}

// ---- ConvertTo-Json -----------------------------------------------------------------

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '\'' | '&' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// One value as JSON, `depth` levels of objects deep (PowerShell's default is 2; deeper
/// objects become their text).
fn json(v: &PsValue, depth: usize, out: &mut String) {
    match v {
        PsValue::Null => out.push_str("null"),
        PsValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        PsValue::F64(f) => out.push_str(&f.to_string()),
        PsValue::F32(f) => out.push_str(&f.to_string()),
        PsValue::Object(o) => {
            if o.collection.is_none() && o.extended.is_empty() && o.adapted.is_empty() {
                match &o.value {
                    Some(PsValue::I32(n))
                        if o.type_names.iter().any(|t| t.ends_with("System.Enum")) =>
                    {
                        out.push_str(&n.to_string());
                    }
                    Some(inner) => json(inner, depth, out),
                    None => json_string(o.to_string.as_deref().unwrap_or(""), out),
                }
                return;
            }
            if let Some(c) = &o.collection {
                match c {
                    Collection::Dictionary(entries) => {
                        if depth == 0 {
                            json_string(&text_of(v).unwrap_or_default(), out);
                            return;
                        }
                        out.push('{');
                        for (i, (k, val)) in entries.iter().enumerate() {
                            if i > 0 {
                                out.push(',');
                            }
                            json_string(&text_of(k).unwrap_or_default(), out);
                            out.push(':');
                            json(val, depth - 1, out);
                        }
                        out.push('}');
                    }
                    _ if depth == 0 => json_string(&text_of(v).unwrap_or_default(), out),
                    other => {
                        out.push('[');
                        for (i, item) in other.items().unwrap_or_default().iter().enumerate() {
                            if i > 0 {
                                out.push(',');
                            }
                            json(item, depth - 1, out);
                        }
                        out.push(']');
                    }
                }
                return;
            }
            if depth == 0 {
                json_string(&text_of(v).unwrap_or_default(), out);
                return;
            }
            out.push('{');
            for (i, (k, val)) in o.properties().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(k, out);
                out.push(':');
                json(val, depth - 1, out);
            }
            out.push('}');
        }
        PsValue::String(s) => json_string(s, out),
        other => match other.as_i64() {
            Some(n) if !matches!(other, PsValue::Char(_)) => out.push_str(&n.to_string()),
            _ => json_string(&text_of(other).unwrap_or_default(), out),
        },
    }
}

async fn convert_to_json(mut ctx: CmdletContext) -> Result<(), ErrorRecord> {
    let depth = ctx
        .parameter("Depth")
        .and_then(number)
        .map_or(2, |d| d.clamp(0.0, 100.0) as usize);
    let mut values = Vec::new();
    if let Some(v) = ctx.parameter("InputObject").or_else(|| ctx.positional(0)) {
        values.push(v.clone());
    }
    while let Some(v) = ctx.next_input().await {
        values.push(v);
    }
    let mut out = String::new();
    match values.as_slice() {
        [] => return Ok(()),
        [one] => json(one, depth, &mut out),
        many => {
            out.push('[');
            for (i, v) in many.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json(v, depth, &mut out);
            }
            out.push(']');
        }
    }
    ctx.write_output(out).await;
    Ok(())
}

// ---- Get-Service, Get-Process, Get-Item -----------------------------------------------

/// A PowerShell wildcard match (`*`, `?`), case-insensitive.
pub(crate) fn like(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn names(ctx: &CmdletContext, param: &str) -> Option<Vec<String>> {
    ctx.parameter(param)
        .or_else(|| ctx.positional(0))
        .map(|v| enumerate(v.clone()).iter().filter_map(text_of).collect())
}

fn service_object(name: &str, display: &str, running: bool, start_mode: &str) -> PsValue {
    let status = if running {
        PsObject::enumeration(
            "System.ServiceProcess.ServiceControllerStatus",
            "Running",
            4,
        )
    } else {
        PsObject::enumeration(
            "System.ServiceProcess.ServiceControllerStatus",
            "Stopped",
            1,
        )
    };
    let (start_text, start_value) = match start_mode.to_ascii_lowercase().as_str() {
        "auto" | "automatic" => ("Automatic", 2),
        "disabled" => ("Disabled", 4),
        _ => ("Manual", 3),
    };
    PsObject::new()
        .with_type_names([
            "System.ServiceProcess.ServiceController",
            "System.ComponentModel.Component",
            "System.MarshalByRefObject",
            "System.Object",
        ])
        .with_to_string("System.ServiceProcess.ServiceController")
        .with_adapted("Name", name)
        .with_adapted("CanPauseAndContinue", false)
        .with_adapted("CanShutdown", running)
        .with_adapted("CanStop", running)
        .with_adapted("DisplayName", display)
        .with_adapted("MachineName", ".")
        .with_adapted("ServiceName", name)
        .with_adapted(
            "ServiceType",
            PsObject::enumeration(
                "System.ServiceProcess.ServiceType",
                "Win32OwnProcess, Win32ShareProcess",
                48,
            ),
        )
        .with_adapted(
            "StartType",
            PsObject::enumeration(
                "System.ServiceProcess.ServiceStartMode",
                start_text,
                start_value,
            ),
        )
        .with_adapted("Site", PsValue::Null)
        .with_adapted("Container", PsValue::Null)
        .with_adapted("Status", status)
        .into()
}

async fn get_service(ctx: CmdletContext, state: Arc<State>) -> Result<(), ErrorRecord> {
    let Some(class) = state.wmi.class_in("root/cimv2", "Win32_Service") else {
        return Ok(());
    };
    let wanted = names(&ctx, "Name");
    let display = ctx.parameter("DisplayName").map(|v| {
        enumerate(v.clone())
            .iter()
            .filter_map(text_of)
            .collect::<Vec<_>>()
    });
    let mut found = vec![false; wanted.as_ref().map_or(0, Vec::len)];
    let mut out = Vec::new();
    for i in 0..class.count() {
        let inst = class.instance(i);
        let name = inst.get_str("Name").unwrap_or_default().to_string();
        let disp = inst.get_str("DisplayName").unwrap_or_default().to_string();
        let mut keep = true;
        if let Some(w) = &wanted {
            keep = false;
            for (j, p) in w.iter().enumerate() {
                if like(p, &name) {
                    keep = true;
                    found[j] = true;
                }
            }
        }
        if let Some(d) = &display {
            keep &= d.iter().any(|p| like(p, &disp));
        }
        if keep {
            let running = inst
                .get_str("State")
                .is_some_and(|s| s.eq_ignore_ascii_case("Running"));
            let start = inst.get_str("StartMode").unwrap_or("Manual").to_string();
            out.push(service_object(&name, &disp, running, &start));
        }
    }
    // PowerShell sorts services by name.
    out.sort_by_key(|v| {
        v.property("Name")
            .and_then(text_of)
            .unwrap_or_default()
            .to_ascii_lowercase()
    });
    for v in out {
        ctx.write_output(v).await;
    }
    for (j, p) in wanted.iter().flatten().enumerate() {
        if !found[j] && !p.contains(['*', '?']) {
            let mut e = ErrorRecord::new(
                format!("Cannot find any service with service name '{p}'."),
                "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand",
                ErrorCategory::ObjectNotFound,
            );
            e.exception_type = Some("Microsoft.PowerShell.Commands.ServiceCommandException".into());
            e.target_object = Some(p.as_str().into());
            ctx.write_error(e).await;
        }
    }
    Ok(())
}

/// A process shaped as `System.Diagnostics.Process` (the properties PowerShell's
/// default view and common scripts use).
pub(crate) fn process_object(
    name: &str,
    id: i64,
    handles: i64,
    ws: i64,
    vm: i64,
    pm: i64,
    session: i64,
) -> PsValue {
    let process_name = name.strip_suffix(".exe").unwrap_or(name);
    PsObject::new()
        .with_type_names([
            "System.Diagnostics.Process",
            "System.ComponentModel.Component",
            "System.MarshalByRefObject",
            "System.Object",
        ])
        .with_to_string(format!("System.Diagnostics.Process ({process_name})"))
        .with_property("Name", process_name)
        .with_property("SI", session as i32)
        .with_property("Handles", handles as i32)
        .with_property("VM", vm)
        .with_property("WS", ws)
        .with_property("PM", pm)
        .with_property("NPM", ws / 64)
        .with_property("Path", PsValue::Null)
        .with_property("CPU", PsValue::Null)
        .with_adapted("BasePriority", 8_i32)
        .with_adapted("HandleCount", handles as i32)
        .with_adapted("Id", id as i32)
        .with_adapted("MachineName", ".")
        .with_adapted("ProcessName", process_name)
        .with_adapted("SessionId", session as i32)
        .with_adapted("WorkingSet64", ws)
        .with_adapted("VirtualMemorySize64", vm)
        .with_adapted("PrivateMemorySize64", pm)
        .into()
}

/// Synthetic process `i` as `Get-Process` writes it when
/// [`SimConfig::psrp_synthetic_processes`](crate::SimConfig::psrp_synthetic_processes) is
/// set: a `System.Diagnostics.Process`-shaped object of 25 properties (name `svchost{i}`,
/// id `1000 + i`, handles, six memory sizes, `CPU`, `StartTime`, `TotalProcessorTime`
/// and 13 strings), for throughput benchmarks; deterministic, so that a benchmark can
/// build the same CLIXML for a baseline.
pub fn synthetic_process(i: usize) -> PsValue {
    let mut o = PsObject::new()
        .with_type_names([
            "System.Diagnostics.Process",
            "System.ComponentModel.Component",
            "System.Object",
        ])
        .with_to_string(format!("System.Diagnostics.Process (svchost{i})"))
        .with_property("Name", format!("svchost{i}"))
        .with_property("Id", 1000 + i as i32)
        .with_property("Handles", 300 + (i % 50) as i32);
    for n in [
        "WorkingSet64",
        "PagedMemorySize64",
        "PrivateMemorySize64",
        "VirtualMemorySize64",
        "PeakWorkingSet64",
        "NonpagedSystemMemorySize64",
    ] {
        o = o.with_property(n, 12_345_678_i64 + i as i64);
    }
    o = o
        .with_property("CPU", PsValue::F64((i % 100) as f64 + 0.015625))
        .with_property(
            "StartTime",
            PsValue::DateTime("2018-06-13T23:46:27.9270288+00:00".into()),
        )
        .with_property("TotalProcessorTime", PsValue::Duration("PT1.5S".into()));
    for n in [
        "Path",
        "Company",
        "Description",
        "FileVersion",
        "ProductVersion",
        "Product",
        "MainWindowTitle",
        "ProcessName",
        "MachineName",
        "PriorityClass",
        "SessionId",
        "BasePriority",
        "HandleCount",
    ] {
        o = o.with_property(n, format!("C:\\Windows\\System32\\{n}-{i}"));
    }
    o.into()
}

async fn get_process(ctx: CmdletContext, state: Arc<State>) -> Result<(), ErrorRecord> {
    let synthetic = state.config.psrp_synthetic_processes;
    if synthetic > 0 {
        let wanted = names(&ctx, "Name");
        for i in 0..synthetic {
            if let Some(w) = &wanted
                && !w.iter().any(|p| like(p, &format!("svchost{i}")))
            {
                continue;
            }
            ctx.write_output(synthetic_process(i)).await;
        }
        return Ok(());
    }
    let Some(class) = state.wmi.class_in("root/cimv2", "Win32_Process") else {
        return Ok(());
    };
    let wanted = names(&ctx, "Name");
    let ids: Option<Vec<i64>> = ctx.parameter("Id").map(|v| {
        enumerate(v.clone())
            .iter()
            .filter_map(PsValue::as_i64)
            .collect()
    });
    // Typed (UInt32, ...) or text: the class holds its values typed.
    let int = |inst: &crate::soap::Instance, p: &str| {
        inst.get(p)
            .and_then(crate::soap::Value::as_i64)
            .unwrap_or(0)
    };
    let mut out = Vec::new();
    for i in 0..class.count() {
        let inst = class.instance(i);
        let name = inst.get_str("Name").unwrap_or_default().to_string();
        let base = name.strip_suffix(".exe").unwrap_or(&name).to_string();
        let id = int(&inst, "ProcessId");
        if let Some(w) = &wanted
            && !w.iter().any(|p| like(p, &base))
        {
            continue;
        }
        if let Some(ids) = &ids
            && !ids.contains(&id)
        {
            continue;
        }
        out.push((
            base.to_ascii_lowercase(),
            process_object(
                &name,
                id,
                int(&inst, "HandleCount"),
                int(&inst, "WorkingSetSize"),
                int(&inst, "VirtualSize"),
                int(&inst, "PageFileUsage") * 1024,
                int(&inst, "SessionId"),
            ),
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let empty = out.is_empty();
    for (_, v) in out {
        ctx.write_output(v).await;
    }
    if empty && let Some(w) = wanted.filter(|w| w.iter().all(|p| !p.contains(['*', '?']))) {
        for p in w {
            let mut e = ErrorRecord::new(
                format!(
                    "Cannot find a process with the name \"{p}\". Verify the process name and call the cmdlet again."
                ),
                "NoProcessFoundForGivenName,Microsoft.PowerShell.Commands.GetProcessCommand",
                ErrorCategory::ObjectNotFound,
            );
            e.target_object = Some(p.as_str().into());
            ctx.write_error(e).await;
        }
    }
    Ok(())
}

/// A path argument of a file cmdlet made absolute: relative to the session's directory
/// (`C:\\Users\\<user>\\Documents`), `/` as `\\`, `.` and `..` resolved. A UNC path stays
/// as written (the host's file system has none, so it is not found).
fn ps_path(ctx: &CmdletContext, path: &str) -> String {
    let cwd = format!("C:\\Users\\{}\\Documents", ctx.user());
    crate::files::normalize(path, &cwd).unwrap_or_else(|unc| unc)
}

/// The paths a file cmdlet was given (`-Path`, `-LiteralPath` or the first positional
/// argument), made absolute.
fn paths(ctx: &CmdletContext) -> Vec<String> {
    names(ctx, "Path")
        .or_else(|| names(ctx, "LiteralPath"))
        .unwrap_or_default()
        .iter()
        .map(|p| ps_path(ctx, p))
        .collect()
}

/// PowerShell's error for a path that does not exist, from the cmdlet `command`
/// (`GetItemCommand`, ...).
fn path_not_found(full: &str, command: &str) -> ErrorRecord {
    let mut e = ErrorRecord::new(
        format!("Cannot find path '{full}' because it does not exist."),
        format!("PathNotFound,Microsoft.PowerShell.Commands.{command}"),
        ErrorCategory::ObjectNotFound,
    );
    e.exception_type = Some("System.Management.Automation.ItemNotFoundException".into());
    e.target_object = Some(full.into());
    e
}

/// What `FileInfo` and `DirectoryInfo` share: the type names (most derived `type_name`),
/// `ToString`, the provider's `PS*` properties, then `Mode`.
fn file_system_info(
    type_name: &str,
    full: &str,
    parent: &str,
    name: &str,
    container: bool,
) -> PsObject {
    PsObject::new()
        .with_type_names([
            type_name,
            "System.IO.FileSystemInfo",
            "System.MarshalByRefObject",
            "System.Object",
        ])
        .with_to_string(full.to_string())
        .with_property(
            "PSPath",
            format!("Microsoft.PowerShell.Core\\FileSystem::{full}"),
        )
        .with_property(
            "PSParentPath",
            format!("Microsoft.PowerShell.Core\\FileSystem::{parent}"),
        )
        .with_property("PSChildName", name)
        .with_property("PSIsContainer", container)
        .with_property("Mode", if container { "d-----" } else { "-a----" })
}

/// The time every simulated file and directory was last written.
fn file_time() -> PsValue {
    PsValue::DateTime(datetime_text(
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    ))
}

/// A `System.IO.FileInfo` as `Get-Item` and `Get-ChildItem` write it.
fn file_object(full: &str, len: usize) -> PsObject {
    let (dir, name) = full.rsplit_once('\\').unwrap_or(("", full));
    let ext = name.rfind('.').map(|i| &name[i..]).unwrap_or("");
    let when = file_time();
    file_system_info("System.IO.FileInfo", full, dir, name, false)
        .with_property("BaseName", name.strip_suffix(ext).unwrap_or(name))
        .with_adapted("Name", name)
        .with_adapted("Length", len as i64)
        .with_adapted("DirectoryName", dir)
        .with_adapted("IsReadOnly", false)
        .with_adapted("Exists", true)
        .with_adapted("FullName", full.to_string())
        .with_adapted("Extension", ext)
        .with_adapted("CreationTime", when.clone())
        .with_adapted("LastWriteTime", when)
        .with_adapted(
            "Attributes",
            PsObject::enumeration("System.IO.FileAttributes", "Archive", 32),
        )
}

/// A `System.IO.DirectoryInfo` as `Get-Item` and `Get-ChildItem` write it.
fn directory_object(full: &str) -> PsObject {
    let full = if full.len() > 3 {
        full.trim_end_matches('\\')
    } else {
        full
    };
    let (parent, name) = full.rsplit_once('\\').unwrap_or(("", full));
    let name = if name.is_empty() { full } else { name };
    let when = file_time();
    file_system_info("System.IO.DirectoryInfo", full, parent, name, true)
        .with_property("BaseName", name)
        .with_adapted("Name", name)
        .with_adapted("FullName", full.to_string())
        .with_adapted("Exists", true)
        .with_adapted("Extension", "")
        .with_adapted("CreationTime", when.clone())
        .with_adapted("LastWriteTime", when)
        .with_adapted(
            "Attributes",
            PsObject::enumeration("System.IO.FileAttributes", "Directory", 16),
        )
}

/// `Get-Item -Path p`: the file's `FileInfo` or the directory's `DirectoryInfo` from the
/// host's file system (the one store of file copy and `Simulator::put_file` /
/// `register_file`).
async fn get_item(ctx: CmdletContext, state: Arc<State>) -> Result<(), ErrorRecord> {
    for full in paths(&ctx) {
        match state.files.read_file(&full) {
            Some(bytes) => ctx.write_output(file_object(&full, bytes.len())).await,
            None if state.files.entries_in(&full).is_some() => {
                ctx.write_output(directory_object(&full)).await;
            }
            None => {
                ctx.write_error(path_not_found(&full, "GetItemCommand"))
                    .await;
            }
        }
    }
    Ok(())
}

/// `Get-Content -Path p [-Raw]`: the file's lines (text decoded as UTF-8, a byte order
/// mark dropped), or with `-Raw` its whole text as one string.
async fn get_content(ctx: CmdletContext, state: Arc<State>) -> Result<(), ErrorRecord> {
    let raw = ctx.switch("Raw");
    for full in paths(&ctx) {
        let Some(bytes) = state.files.read_file(&full) else {
            ctx.write_error(path_not_found(&full, "GetContentCommand"))
                .await;
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        if raw {
            ctx.write_output(text.to_string()).await;
            continue;
        }
        let body = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(text);
        if body.is_empty() {
            continue;
        }
        for line in body.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            ctx.write_output(line.to_string()).await;
        }
    }
    Ok(())
}

/// `Test-Path -Path p`: whether a file or directory is there, one bool per path.
async fn test_path(ctx: CmdletContext, state: Arc<State>) -> Result<(), ErrorRecord> {
    for full in paths(&ctx) {
        ctx.write_output(state.files.exists(&full)).await;
    }
    Ok(())
}

/// `Get-ChildItem -Path dir`: what is directly in `dir` (the session's directory when no
/// path is given): sub-directories as `DirectoryInfo` objects, then files as `FileInfo`.
async fn get_child_item(ctx: CmdletContext, state: Arc<State>) -> Result<(), ErrorRecord> {
    let mut dirs = paths(&ctx);
    if dirs.is_empty() {
        dirs.push(ps_path(&ctx, "."));
    }
    for dir in dirs {
        if !state.files.exists(&dir) {
            ctx.write_error(path_not_found(&dir, "GetChildItemCommand"))
                .await;
            continue;
        }
        if let Some(bytes) = state.files.read_file(&dir) {
            ctx.write_output(file_object(&dir, bytes.len())).await;
            continue;
        }
        for (name, len) in state.files.entries_in(&dir).unwrap_or_default() {
            let full = format!("{}\\{name}", dir.trim_end_matches('\\'));
            match len {
                Some(len) => ctx.write_output(file_object(&full, len)).await,
                None => ctx.write_output(directory_object(&full)).await,
            }
        }
    }
    Ok(())
}

/// A hashtable's entries as text pairs (for tests and cmdlets taking `-Property @{}`).
#[allow(dead_code)]
pub(crate) fn entries(v: &PsValue) -> Vec<(String, PsValue)> {
    dictionary(v)
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| (text_of(k).unwrap_or_default(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(like("win*", "WinRM"));
        assert!(like("*rm", "WinRM"));
        assert!(like("w?nrm", "WinRM"));
        assert!(!like("win", "WinRM"));
        assert!(like("*", ""));
    }

    #[test]
    fn dates() {
        assert_eq!(
            datetime_text(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20.0000000+00:00"
        );
        assert_eq!(civil(0), (1970, 1, 1));
    }

    #[test]
    fn json_shapes() {
        let mut out = String::new();
        let o: PsValue = PsObject::new()
            .with_property("a", 1)
            .with_property("b", "x<")
            .with_property(
                "c",
                PsObject::list(
                    ["System.Object[]"],
                    vec![PsValue::Bool(true), PsValue::Null],
                ),
            )
            .into();
        json(&o, 2, &mut out);
        assert_eq!(out, r#"{"a":1,"b":"x\u003c","c":[true,null]}"#);
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn wildcards_never_panic(p in "\\PC{0,20}", t in "\\PC{0,20}") {
            let _ = super::like(&p, &t);
            prop_assert!(super::like("*", &t));
            prop_assert!(super::like(&t.replace(['*', '?'], ""), &t.replace(['*', '?'], "")));
        }
    }
}
