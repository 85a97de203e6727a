//! `winrm pwsh`: a PowerShell script run as a PowerShell Remoting pipeline. Output
//! objects are printed as tables (or JSON lines with `--json`), the error, warning,
//! verbose, debug and information streams go to stderr with their labels, Ctrl-C stops
//! the pipeline remotely (the PSRP stop signal) and exits 130 after printing what
//! arrived.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Map, Value as Json};
use tokio::time::Instant;
use tokio_winrm::psrp::{ErrorRecord, PipelineEnd, PsEvent, PsObject, PsValue};
use tokio_winrm::{CancelReason, Client};

use crate::Failure;
use crate::stream::{
    Opening, begin_cleanup, cleanup_left, not_started_deadline, not_started_interrupted, opening,
    watch_ctrl_c,
};

/// Exit status after Ctrl-C (128 + SIGINT).
/// Exit status when the deadline passed (as `timeout(1)`).
const EXIT_DEADLINE: u8 = 124;
/// How deep objects are followed when printed.
const MAX_DEPTH: usize = 6;
/// The widest a table cell gets.
const MAX_CELL: usize = 48;

/// Runs `script` (`-`: read from stdin) in a fresh runspace pool and prints what it
/// yields; the pool is always closed.
pub async fn run(
    client: &Client,
    script: &str,
    json: bool,
    deadline: Option<Duration>,
) -> Result<ExitCode, Failure> {
    let script = if script == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::Message(format!("reading the script from stdin: {e}"), 2))?;
        text
    } else {
        script.to_string()
    };
    let mut interrupts = watch_ctrl_c();
    // The interrupts and the deadline cover the whole run, from the logon and the
    // pool's creation on.
    let until = deadline.map(|d| Instant::now() + d);
    let pool = match opening(client.runspace_pool().open(), &mut interrupts, until).await {
        Opening::Done(pool) => pool?,
        Opening::Interrupted => {
            return Ok(not_started_interrupted(
                "before the runspace pool was opened",
                "the script was not started",
            ));
        }
        Opening::DeadlinePassed => {
            return Ok(not_started_deadline(
                deadline,
                "before the runspace pool was opened",
                "the script was not started",
            ));
        }
    };
    let mut builder = pool.pipeline().script(script);
    if let Some(t) = until {
        // What is left of the whole run's deadline.
        builder = builder.deadline(t.saturating_duration_since(Instant::now()));
    }
    const STARTING: &str = "while the pipeline was being started";
    const STOPPED: &str =
        "closing the runspace pool, which stops the pipeline if the server had started it";
    let exit = match opening(builder.start(), &mut interrupts, None).await {
        Opening::Done(Ok(p)) => Ok(p),
        Opening::Done(Err(tokio_winrm::Error::Cancelled {
            reason: CancelReason::Timeout,
        })) => Err(Ok(not_started_deadline(deadline, STARTING, STOPPED))),
        Opening::Done(Err(e)) => Err(Err(e)),
        Opening::Interrupted | Opening::DeadlinePassed => {
            Err(Ok(not_started_interrupted(STARTING, STOPPED)))
        }
    };
    let mut pipeline = match exit {
        Ok(p) => p,
        Err(r) => {
            if r.is_ok() {
                let _ = tokio::time::timeout(cleanup_left(), pool.close()).await;
            } else {
                let _ = pool.close().await;
            }
            return r.map_err(Failure::from);
        }
    };
    let cancel = pipeline.cancel_handle();
    let mut table = Table::default();
    let mut errors = 0usize;
    let mut end = None;
    let mut failure = None;
    loop {
        let ev = tokio::select! {
            ev = pipeline.next() => ev,
            Some(()) = interrupts.recv() => {
                if cancel.is_cancelled() {
                    eprintln!("interrupted again: exiting without waiting for the server");
                    std::process::exit(crate::stream::interrupted_code().into());
                }
                eprintln!("{}: stopping the pipeline (PSRP stop signal); press Ctrl-C again to quit at once", crate::stream::interrupt_name());
                cancel.cancel();
                continue;
            }
        };
        let Some(ev) = ev else { break };
        match ev {
            Ok(PsEvent::Output(v)) => {
                if json {
                    crate::out::outln!("{}", to_json(&v, 0));
                } else {
                    table.push(&v);
                }
                // stdout's reader went away (`| head`): nothing more can be shown, so
                // the pipeline is stopped on the server, as on Ctrl-C.
                if crate::out::closed() && !cancel.is_cancelled() {
                    cancel.cancel();
                }
            }
            Ok(PsEvent::Error(e)) => {
                errors += 1;
                print_error(&e);
            }
            Ok(PsEvent::Warning(r)) => eprintln!("WARNING: {}", r.message),
            Ok(PsEvent::Verbose(r)) => eprintln!("VERBOSE: {}", r.message),
            Ok(PsEvent::Debug(r)) => eprintln!("DEBUG: {}", r.message),
            // What Write-Host writes (tagged PSHOST) is for the console: plain text on
            // stdout, as Invoke-Command and powershell.exe show it (stderr with --json,
            // where stdout holds only JSON lines).
            Ok(PsEvent::Information(r)) => {
                let text = r.message().unwrap_or_default();
                if !r.tags.iter().any(|t| t == "PSHOST") {
                    eprintln!("INFO: {text}");
                } else if json {
                    eprintln!("{text}");
                } else {
                    crate::out::outln!("{text}");
                }
            }
            Ok(PsEvent::Progress(_)) => {}
            Ok(PsEvent::State(s)) => end = Some(s),
            Ok(_) => {}
            Err(e) => failure = Some(e),
        }
    }
    table.flush();
    crate::out::flush();
    let stopped = matches!(end, Some(PipelineEnd::Stopped { .. }) | None);
    let closed = if stopped {
        begin_cleanup();
        tokio::time::timeout(cleanup_left(), pool.close())
            .await
            .unwrap_or(Ok(()))
    } else {
        pool.close().await
    };
    if let Some(e) = failure {
        return Err(e.into());
    }
    if let Err(e) = closed {
        eprintln!("warning: closing the runspace pool failed: {e}");
    }
    Ok(match end {
        Some(PipelineEnd::Completed) if errors == 0 => ExitCode::SUCCESS,
        Some(PipelineEnd::Completed) => ExitCode::from(1),
        Some(PipelineEnd::Failed(e)) => {
            print_error(&e);
            ExitCode::from(1)
        }
        Some(PipelineEnd::Stopped {
            reason: Some(CancelReason::Timeout),
        }) => {
            let secs = crate::stream::seconds(deadline);
            eprintln!(
                "error: the pipeline did not finish within its deadline of {secs} s: it was stopped on the server"
            );
            ExitCode::from(EXIT_DEADLINE)
        }
        // Stopped because stdout's reader went away: 141, as a closed pipe ends `run`.
        Some(PipelineEnd::Stopped { reason: Some(_) }) if crate::out::closed() => {
            crate::out::exit_code().unwrap_or(ExitCode::from(1))
        }
        Some(PipelineEnd::Stopped { reason: Some(_) }) => {
            eprintln!("interrupted: the pipeline was stopped on the server");
            ExitCode::from(crate::stream::interrupted_code())
        }
        Some(PipelineEnd::Stopped { reason: None }) => {
            eprintln!("error: the pipeline was stopped on the server");
            ExitCode::from(1)
        }
        Some(_) | None => {
            eprintln!("error: the pipeline ended without a final state");
            ExitCode::from(1)
        }
    })
}

/// A value as JSON: primitives as themselves, lists as arrays, dictionaries and
/// objects with properties as objects, enums and other objects as their text. As .NET's
/// JSON writers do: a byte array (`<BA>`) is its base64 text, and NaN and the
/// infinities are the strings `"NaN"`, `"Infinity"` and `"-Infinity"` (JSON numbers
/// cannot hold them), so that no value becomes `null` or a summary.
pub fn to_json(v: &PsValue, depth: usize) -> Json {
    match v {
        PsValue::Null => Json::Null,
        PsValue::Bool(b) => Json::Bool(*b),
        PsValue::Object(o) => object_json(o, depth),
        PsValue::F32(f) => float_json(f64::from(*f)),
        PsValue::F64(f) => float_json(*f),
        PsValue::Bytes(b) => {
            use base64::Engine as _;
            Json::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        PsValue::U64(n) => Json::from(*n),
        other => match other.as_i64() {
            Some(n) => Json::from(n),
            None => Json::String(text(other)),
        },
    }
}

/// A float as JSON: a number, or the text .NET writes for NaN and the infinities.
fn float_json(f: f64) -> Json {
    match serde_json::Number::from_f64(f) {
        Some(n) => Json::Number(n),
        None if f.is_nan() => Json::String("NaN".into()),
        None if f > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}

fn object_json(o: &PsObject, depth: usize) -> Json {
    if depth >= MAX_DEPTH {
        return Json::String(o.to_string.clone().unwrap_or_default());
    }
    if o.is_type("System.Enum") {
        return Json::String(o.to_string.clone().unwrap_or_default());
    }
    // A primitive with notes (a DateTime with its DisplayHint): the primitive.
    if let (Some(v), None) = (&o.value, &o.collection) {
        return to_json(v, depth + 1);
    }
    if let Some(c) = &o.collection {
        if let Some(items) = c.items() {
            return Json::Array(items.iter().map(|i| to_json(i, depth + 1)).collect());
        }
        if let tokio_winrm::psrp::Collection::Dictionary(entries) = c {
            let mut m = Map::new();
            for (k, v) in entries {
                m.insert(text(k), to_json(v, depth + 1));
            }
            return Json::Object(m);
        }
    }
    let mut m = Map::new();
    for (name, value) in o.properties() {
        m.insert(name.to_string(), to_json(value, depth + 1));
    }
    if m.is_empty() {
        return match &o.value {
            Some(v) => to_json(v, depth + 1),
            None => o.to_string.clone().map_or(Json::Null, Json::String),
        };
    }
    Json::Object(m)
}

/// A value as one line of text, as a table cell or a line of output shows it.
pub fn text(v: &PsValue) -> String {
    match v {
        PsValue::Null => String::new(),
        PsValue::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        PsValue::Char(c) => char::from_u32(u32::from(*c))
            .map(String::from)
            .unwrap_or_default(),
        PsValue::F32(f) => f.to_string(),
        PsValue::F64(f) => f.to_string(),
        PsValue::U64(n) => n.to_string(),
        PsValue::Guid(g) => g.to_string(),
        PsValue::Bytes(b) => format!("{{{} bytes}}", b.len()),
        PsValue::SecureString(_) => "System.Security.SecureString".to_string(),
        PsValue::Object(o) => match (&o.to_string, o.collection.as_ref().and_then(|c| c.items())) {
            (_, Some(items)) => format!(
                "{{{}}}",
                items.iter().map(text).collect::<Vec<_>>().join(", ")
            ),
            (Some(s), None) => s.clone(),
            // A primitive with notes and no ToString (Get-Date as Windows sends it: a
            // <DT> with a DisplayHint member): the primitive.
            (None, None) => match &o.value {
                Some(v) => text(v),
                None => o.type_names.first().cloned().unwrap_or_default(),
            },
        },
        other => match other.as_i64() {
            Some(n) => n.to_string(),
            None => other.as_str().unwrap_or_default().to_string(),
        },
    }
}

/// Prints an error record on stderr: its message, where it happened, and a hint when
/// the script asked for input this tool cannot give.
fn print_error(e: &ErrorRecord) {
    eprintln!("ERROR: {}", e.message);
    if let Some(p) = &e.position_message {
        eprintln!("{p}");
    }
    if let Some(h) = error_hint(e) {
        eprintln!("{h}");
    }
}

/// A `hint:` line for an error record, if one helps.
fn error_hint(e: &ErrorRecord) -> Option<&'static str> {
    // The message of tokio_winrm::psrp::NotInteractive, as the host call's answer or as
    // the script's error once PowerShell wrapped it.
    e.message.contains("The host is not interactive").then_some(
        "hint: winrm pwsh does not answer prompts (Read-Host, Get-Credential, confirmations); \
         pass the values as parameters or variables in the script, or add -Confirm:$false",
    )
}

/// Output rows: consecutive objects with the same properties form one table; other
/// values are lines.
#[derive(Default)]
pub struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Adds one output value: a row of a table when the object has a default view or
    /// at most four properties, otherwise a list of its properties (PowerShell's own
    /// rule when no format view applies).
    pub fn push(&mut self, v: &PsValue) {
        let o = match v.as_object() {
            // Objects that wrap a primitive (a DateTime with notes, an enum) are lines.
            Some(o) if o.collection.is_none() && o.value.is_none() => o,
            _ => {
                self.flush();
                crate::out::outln!("{}", text(v));
                return;
            }
        };
        let Some(columns) = columns_of(o) else {
            self.flush();
            crate::out::out!("{}", render_list(o));
            return;
        };
        if columns.is_empty() {
            self.flush();
            crate::out::outln!("{}", text(v));
            return;
        }
        if columns != self.columns {
            self.flush();
            self.columns = columns;
        }
        self.rows
            .push(self.columns.iter().map(|c| column_text(o, c)).collect());
    }

    /// Prints the pending rows.
    pub fn flush(&mut self) {
        if self.rows.is_empty() {
            self.columns.clear();
            return;
        }
        crate::out::out!("{}", self.render());
        self.rows.clear();
        self.columns.clear();
    }

    /// The pending rows as text: a header, a rule, the rows, then a blank line.
    pub fn render(&self) -> String {
        let cell = |s: &str| -> String {
            let one_line = s.replace(['\r', '\n'], " ");
            if one_line.chars().count() > MAX_CELL {
                let cut: String = one_line.chars().take(MAX_CELL - 1).collect();
                format!("{cut}…")
            } else {
                one_line
            }
        };
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|c| cell(c)).collect())
            .collect();
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                rows.iter()
                    .map(|r| r[i].chars().count())
                    .chain([column_header(c).chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| -> String {
            let mut l = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join(" ");
            l.truncate(l.trim_end().len());
            l.push('\n');
            l
        };
        let mut out = String::from("\n");
        let headers: Vec<String> = self
            .columns
            .iter()
            .map(|c| column_header(c).to_string())
            .collect();
        out.push_str(&line(&headers));
        let rule: Vec<String> = headers
            .iter()
            .map(|c| "-".repeat(c.chars().count()))
            .collect();
        out.push_str(&line(&rule));
        for r in &rows {
            out.push_str(&line(r));
        }
        out.push('\n');
        out
    }
}

/// The default table views of Windows PowerShell's format data for the types people
/// meet most, by .NET type name: the columns `Get-Service`, `Get-Process` and
/// `Get-ChildItem` show on a Windows console.
/// A column is a property name, or `HEADER=Property` (`/1024`: a size shown in KiB, as
/// the process view's `NPM(K)`, `PM(K)`, `WS(K)`).
const VIEWS: &[(&str, &[&str])] = &[
    (
        "System.ServiceProcess.ServiceController",
        &["Status", "Name", "DisplayName"],
    ),
    (
        "System.Diagnostics.Process",
        &[
            "Handles",
            "NPM(K)=NPM/1024",
            "PM(K)=PM/1024",
            "WS(K)=WS/1024",
            "CPU(s)=CPU",
            "Id",
            "SI",
            "ProcessName",
        ],
    ),
    (
        "System.IO.DirectoryInfo",
        &["Mode", "LastWriteTime", "Length", "Name"],
    ),
    (
        "System.IO.FileInfo",
        &["Mode", "LastWriteTime", "Length", "Name"],
    ),
];

/// The most properties an object without a view may have to be shown as a table row
/// (PowerShell shows objects with five or more as lists).
const MAX_TABLE_PROPERTIES: usize = 4;

/// The table columns for `o`: its type's view (the columns it has), or all its
/// properties when there are at most four; `None` when it is to be shown as a list.
fn columns_of(o: &PsObject) -> Option<Vec<String>> {
    let view = o.type_names.iter().find_map(|t| {
        let t = t.strip_prefix("Deserialized.").unwrap_or(t);
        VIEWS.iter().find(|(name, _)| *name == t).map(|(_, c)| *c)
    });
    if let Some(view) = view {
        let present: Vec<String> = view
            .iter()
            .filter(|c| o.property(column_property(c).0).is_some())
            .map(|c| c.to_string())
            .collect();
        if !present.is_empty() {
            return Some(present);
        }
    }
    let all: Vec<String> = o.properties().map(|(n, _)| n.to_string()).collect();
    (all.len() <= MAX_TABLE_PROPERTIES).then_some(all)
}

/// A column's property and whether it is shown in KiB.
fn column_property(column: &str) -> (&str, bool) {
    let property = column.split_once('=').map_or(column, |(_, p)| p);
    match property.strip_suffix("/1024") {
        Some(p) => (p, true),
        None => (property, false),
    }
}

/// A column's header.
fn column_header(column: &str) -> &str {
    column.split_once('=').map_or(column, |(h, _)| h)
}

/// The cell of `column` for `o`.
fn column_text(o: &PsObject, column: &str) -> String {
    let (property, kib) = column_property(column);
    match o.property(property) {
        Some(v) if kib => v
            .as_i64()
            .map_or_else(|| text(v), |n| (n / 1024).to_string()),
        Some(v) => text(v),
        None => String::new(),
    }
}

/// An object as a list: a blank line, then one `Name : value` line per property with
/// the names aligned, as `Format-List` prints it.
fn render_list(o: &PsObject) -> String {
    let width = o
        .properties()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::from("\n");
    for (name, value) in o.properties() {
        let value = text(value).replace(['\r', '\n'], " ");
        let line = format!("{name:<width$} : {value}");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_byte_arrays_and_non_finite_numbers() {
        assert_eq!(
            to_json(&PsValue::Bytes(vec![0, 1, 254, 255]), 0),
            Json::String("AAH+/w==".into())
        );
        assert_eq!(
            to_json(&PsValue::F64(f64::NAN), 0),
            Json::String("NaN".into())
        );
        assert_eq!(
            to_json(&PsValue::F64(f64::INFINITY), 0),
            Json::String("Infinity".into())
        );
        assert_eq!(
            to_json(&PsValue::F32(f32::NEG_INFINITY), 0),
            Json::String("-Infinity".into())
        );
        assert_eq!(to_json(&PsValue::F64(1.5), 0), serde_json::json!(1.5));
    }

    fn service(name: &str, status: &str) -> PsValue {
        PsObject::new()
            .with_type_names(["System.ServiceProcess.ServiceController", "System.Object"])
            .with_to_string(name)
            .with_adapted("Name", name)
            .with_adapted("Status", status)
            .into()
    }

    #[test]
    fn objects_become_a_table_with_aligned_columns() {
        let mut t = Table::default();
        let point = |x: i32, y: i32| -> PsValue {
            PsObject::new()
                .with_type_names(["System.Management.Automation.PSCustomObject"])
                .with_property("Name", format!("p{x}"))
                .with_property("X", x)
                .with_property("Y", y)
                .into()
        };
        t.push(&point(1, 20));
        t.push(&point(300, 4));
        assert_eq!(
            t.render(),
            "\nName X   Y\n---- -   -\np1   1   20\np300 300 4\n\n"
        );
    }

    #[test]
    fn a_service_shows_its_default_view_not_every_property() {
        let full = |name: &str, status: &str| -> PsValue {
            let mut o = PsObject::new()
                .with_type_names([
                    "Deserialized.System.ServiceProcess.ServiceController",
                    "Deserialized.System.ComponentModel.Component",
                    "Deserialized.System.Object",
                ])
                .with_adapted("Name", name)
                .with_adapted("DisplayName", format!("The {name} service"))
                .with_adapted("Status", status);
            for i in 0..20 {
                o = o.with_adapted(format!("Other{i}"), i);
            }
            o.into()
        };
        let mut t = Table::default();
        t.push(&full("WinRM", "Running"));
        assert_eq!(
            t.render(),
            "\nStatus  Name  DisplayName\n------  ----  -----------\nRunning WinRM The WinRM service\n\n"
        );
        // A service object with only some of the view's columns shows those.
        let mut t = Table::default();
        t.push(&service("WinRM", "Running"));
        assert_eq!(t.columns, ["Status", "Name"]);
    }

    #[test]
    fn a_process_shows_sizes_in_kib_under_the_windows_headers() {
        let p: PsValue = PsObject::new()
            .with_type_names(["Deserialized.System.Diagnostics.Process"])
            .with_adapted("ProcessName", "svchost")
            .with_adapted("Id", 812)
            .with_property("Handles", 420)
            .with_property("WS", PsValue::I64(10 * 1024 * 1024 + 5))
            .with_property("CPU", PsValue::F64(1.5))
            .into();
        let mut t = Table::default();
        t.push(&p);
        assert_eq!(
            t.render(),
            "\nHandles WS(K) CPU(s) Id  ProcessName\n------- ----- ------ --  -----------\n420     10240 1.5    812 svchost\n\n"
        );
    }

    #[test]
    fn a_prompt_the_tool_cannot_answer_gets_a_hint() {
        let call = ErrorRecord::new(
            "The host is not interactive: ReadLine cannot be answered (tokio-winrm runs without a user; install a PsHost to answer host calls).",
            "HostNotInteractive",
            tokio_winrm::psrp::ErrorCategory::NotImplemented,
        );
        assert!(error_hint(&call).is_some_and(|h| h.contains("Read-Host")));
        let other = ErrorRecord::new(
            "Cannot find path",
            "PathNotFound",
            tokio_winrm::psrp::ErrorCategory::ObjectNotFound,
        );
        assert_eq!(error_hint(&other), None);
    }

    #[test]
    fn objects_with_five_or_more_properties_and_no_view_are_lists() {
        let mut o = PsObject::new().with_type_names(["Selected.System.Object"]);
        for (n, v) in [("A", 1), ("Bee", 2), ("C", 3), ("D", 4), ("E", 5)] {
            o = o.with_property(n, v);
        }
        let o = o.with_property("Text", "two\nlines");
        assert_eq!(columns_of(&o), None);
        assert_eq!(
            render_list(&o),
            "\nA    : 1\nBee  : 2\nC    : 3\nD    : 4\nE    : 5\nText : two lines\n"
        );
        let mut t = Table::default();
        t.push(&o.into());
        assert!(t.rows.is_empty() && t.columns.is_empty());
    }

    #[test]
    fn a_date_as_windows_sends_it_is_its_value() {
        // <Obj><DT>..</DT><MS><Obj N="DisplayHint">..</Obj></MS></Obj>: no ToString, no
        // type names.
        let hint: PsValue = PsObject::new()
            .with_to_string("DateTime")
            .with_value(PsValue::from(2))
            .into();
        let date: PsValue = PsObject::new()
            .with_value(PsValue::DateTime("2026-11-29T14:50:00Z".into()))
            .with_property("DisplayHint", hint)
            .into();
        assert_eq!(text(&date), "2026-11-29T14:50:00Z");
        assert_eq!(
            to_json(&date, 0),
            Json::String("2026-11-29T14:50:00Z".into())
        );
        let mut t = Table::default();
        t.push(&date);
        assert!(t.rows.is_empty() && t.columns.is_empty());
    }

    #[test]
    fn wrapped_primitives_are_lines_not_tables() {
        let date: PsValue = PsObject::new()
            .with_type_names(["System.DateTime", "System.ValueType", "System.Object"])
            .with_to_string("11/29/2026 14:50:00")
            .with_value(PsValue::DateTime("2026-11-29T14:50:00Z".into()))
            .with_property("DisplayHint", "DateTime")
            .into();
        let mut t = Table::default();
        t.push(&date);
        assert!(t.rows.is_empty() && t.columns.is_empty());
        assert_eq!(text(&date), "11/29/2026 14:50:00");
    }

    #[test]
    fn values_become_json() {
        assert_eq!(
            to_json(&service("WinRM", "Running"), 0).to_string(),
            r#"{"Name":"WinRM","Status":"Running"}"#
        );
        assert_eq!(to_json(&PsValue::from(3), 0), Json::from(3));
        let list: PsValue =
            PsObject::list(["System.Object[]"], vec!["a".into(), PsValue::Bool(true)]).into();
        assert_eq!(to_json(&list, 0).to_string(), r#"["a",true]"#);
        let dict: PsValue = PsObject::hashtable(vec![("k".into(), 1.into())]).into();
        assert_eq!(to_json(&dict, 0).to_string(), r#"{"k":1}"#);
        assert_eq!(text(&list), "{a, True}");
    }
}
