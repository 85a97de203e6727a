//! WS-Enumeration on the simulated WMI classes ([MS-WSMV] §3.1.4.8-10): Enumerate with
//! a WQL or selector filter, `OptimizeEnumeration`, `MaxElements` (capped by
//! `max_batch_items` and by the request's `MaxEnvelopeSize`), the three enumeration
//! modes, Pull (the same context id each time, as Windows does; held for `pull_delay` when set, as a long
//! poll), Release, and contexts that expire after `enumeration_timeout` unused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::response::envelope;
use super::wmi::ClassRef;
use super::wmi::{self, class_uri_in};
use super::wql::{self, Query, WqlValue};
use super::{ClassSource, HandlerResult, SimFault, SimRequest, State};
use crate::soap::envelope::{XmlWriter, format_duration};
use crate::soap::xml::Element;
use crate::soap::{Instance, Value, ns};

/// 0x8033801B: the enumeration context is not valid (ended, released or expired).
const INVALID_ENUMERATION_CONTEXT: u32 = 2_150_858_779;
/// Room for the envelope around the items.
const ENVELOPE_OVERHEAD: usize = 2048;
const ENUM_FAULT_ACTION: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/fault";

/// What an enumeration walks: a class, filtered.
struct Source {
    class: String,
    namespace: String,
    uri: String,
    query: Option<Query>,
    selectors: Vec<(String, String)>,
    mode: Mode,
    /// Items written when the enumeration began, served instead of a class's instances
    /// (the shell list).
    snapshot: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Objects,
    References,
    Both,
}

/// One open enumeration context.
struct Ctx {
    source: Arc<Source>,
    next: u64,
    expires: Instant,
    busy: bool,
    pulls_pending: u32,
    released: CancellationToken,
}

/// The open enumeration contexts of one simulator.
#[derive(Default)]
pub(crate) struct Enumerations {
    open: Mutex<HashMap<String, Ctx>>,
    ids: AtomicU64,
}

impl std::fmt::Debug for Enumerations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enumerations")
            .field("open", &self.lock().len())
            .finish()
    }
}

impl Enumerations {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Ctx>> {
        wmi::lock(&self.open)
    }

    fn new_id(&self) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        format!(
            "uuid:{}-{n:012X}",
            &uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase()[..23]
        )
    }

    /// Drops expired contexts that no request is using.
    fn sweep(&self, state: &State, now: Instant) {
        let mut open = self.lock();
        let before = open.len();
        open.retain(|_, c| c.busy || c.pulls_pending > 0 || c.expires > now);
        let gone = (before - open.len()) as u64;
        if gone > 0 {
            state
                .counters
                .open_enumerations
                .fetch_sub(gone, Ordering::SeqCst);
        }
    }
}

/// Handles Enumerate, Pull and Release.
pub(crate) async fn handle(state: &Arc<State>, req: &SimRequest) -> HandlerResult {
    state.enumerations.sweep(state, Instant::now());
    match req.action.as_str() {
        ns::action::ENUMERATE => enumerate(state, req),
        ns::action::PULL => pull(state, req).await,
        ns::action::RELEASE => release(state, req),
        other => Err(SimFault::action_not_supported(other)),
    }
}

fn invalid_context() -> SimFault {
    let mut f = SimFault::new(
        "s:Receiver",
        "n:InvalidEnumerationContext",
        "The WS-Enumeration context in the enumeration is not valid. Enumeration may have been completed or canceled. You cannot use this enumeration context anymore. Start a new enumeration.",
        Some(INVALID_ENUMERATION_CONTEXT),
    );
    f.action = ENUM_FAULT_ACTION;
    f
}

fn body<'a>(req: &'a SimRequest, name: &'static str) -> Result<&'a Element, SimFault> {
    req.body
        .child(ns::ENUMERATION, name)
        .ok_or_else(|| SimFault::malformed(&format!("the body must be an n:{name} element")))
}

fn context_of(el: &Element) -> Result<String, SimFault> {
    el.child_text(ns::ENUMERATION, "EnumerationContext")
        .map(str::to_string)
        .ok_or_else(invalid_context)
}

fn max_elements(el: &Element, nss: &str, default: u64) -> Result<u64, SimFault> {
    match el.child_text(nss, "MaxElements") {
        None => Ok(default),
        Some(t) => match t.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(SimFault::invalid_parameter(&format!(
                "MaxElements {t:?} is not a positive integer."
            ))),
        },
    }
}

/// The namespace and class a resource URI names: `.../wmi/<namespace>/<Class>`, or
/// `None` for `*`.
fn class_of_uri<'s>(
    state: &'s State,
    uri: &str,
) -> Result<(String, Option<ClassRef<'s>>), SimFault> {
    let rest = uri
        .strip_prefix(ns::WMI_BASE)
        .or_else(|| uri.strip_prefix(ns::CIM_SCHEMA_BASE))
        .ok_or_else(|| SimFault::not_found(uri))?;
    let (namespace, class) = rest.rsplit_once('/').unwrap_or((wmi::NAMESPACE, rest));
    if !state.wmi.has_namespace(namespace) {
        return Err(SimFault::not_found(uri));
    }
    if class == "*" {
        return Ok((namespace.to_string(), None));
    }
    let class = state
        .wmi
        .class_in(namespace, class)
        .ok_or_else(|| SimFault::not_found(uri))?;
    Ok((namespace.to_string(), Some(class)))
}

fn no_such_class() -> SimFault {
    SimFault::cannot_process_filter("The specified class does not exist in the given namespace. ")
}

fn enumerate(state: &State, req: &SimRequest) -> HandlerResult {
    let el = body(req, "Enumerate")?;
    let uri = req
        .resource_uri
        .as_deref()
        .ok_or_else(|| SimFault::missing_header("ResourceURI"))?;
    if uri.eq_ignore_ascii_case(ns::SHELL) {
        return shell_list(state, req, el);
    }
    let (namespace, by_uri) = class_of_uri(state, uri)?;
    let filter = el
        .child(ns::WSMAN, "Filter")
        .or_else(|| el.child(ns::ENUMERATION, "Filter"));
    let mut query = None;
    let mut selectors = Vec::new();
    let class = match filter {
        None => by_uri.ok_or_else(|| {
            SimFault::cannot_process_filter("A query is required to enumerate '*'.")
        })?,
        Some(f) => match f.attr("Dialect").unwrap_or(ns::DIALECT_WQL) {
            ns::DIALECT_WQL => {
                let q = wql::parse(f.text.trim())
                    .map_err(|e| SimFault::cannot_process_filter(&format!("{e}. ")))?;
                let class = state
                    .wmi
                    .class_in(&namespace, &q.class)
                    .ok_or_else(no_such_class)?;
                if by_uri.is_some_and(|c| !c.name().eq_ignore_ascii_case(class.name())) {
                    return Err(no_such_class());
                }
                q.validate_properties(&class.properties())
                    .map_err(|e| SimFault::cannot_process_filter(&format!("{}. ", e.message)))?;
                query = Some(q);
                class
            }
            ns::DIALECT_SELECTOR => {
                let class = by_uri.ok_or_else(SimFault::invalid_selectors)?;
                let set = f
                    .child(ns::WSMAN, "SelectorSet")
                    .ok_or_else(SimFault::invalid_selectors)?;
                for s in crate::soap::cim::read_selector_set(set) {
                    let known = class
                        .properties()
                        .iter()
                        .any(|p| p.eq_ignore_ascii_case(&s.name));
                    match s.text() {
                        Some(t) if known => selectors.push((s.name.clone(), t.to_string())),
                        _ => return Err(SimFault::invalid_selectors()),
                    }
                }
                class
            }
            other => {
                let mut f = SimFault::new(
                    "s:Sender",
                    "n:FilterDialectRequestedUnavailable",
                    format!("The filter dialect {other} is not supported."),
                    Some(2_150_858_777),
                );
                f.action = ENUM_FAULT_ACTION;
                return Err(f);
            }
        },
    };
    let mode = match el.child_text(ns::WSMAN, "EnumerationMode") {
        None => Mode::Objects,
        Some("EnumerateEPR") => Mode::References,
        Some("EnumerateObjectAndEPR") => Mode::Both,
        Some(other) => {
            return Err(SimFault::invalid_parameter(&format!(
                "The enumeration mode {other:?} is not supported."
            )));
        }
    };
    let optimize = el.child(ns::WSMAN, "OptimizeEnumeration").is_some();
    let max = max_elements(el, ns::WSMAN, 1)?;
    let source = Arc::new(Source {
        class: class.name().to_string(),
        namespace: class.namespace().to_string(),
        uri: class_uri_in(class.namespace(), class.name()),
        query,
        selectors,
        mode,
        snapshot: None,
    });
    begin(state, req, source, optimize, max)
}

/// The shell list: every open shell as an `rsp:Shell` item, as Windows answers an
/// Enumerate of `.../windows/shell` (no filter; objects only).
fn shell_list(state: &State, req: &SimRequest, el: &Element) -> HandlerResult {
    if el.child(ns::WSMAN, "Filter").is_some() || el.child(ns::ENUMERATION, "Filter").is_some() {
        return Err(SimFault::cannot_process_filter(
            "The simulator's shell list takes no filter. ",
        ));
    }
    if el
        .child_text(ns::WSMAN, "EnumerationMode")
        .is_some_and(|m| m != "EnumerateObjects")
    {
        return Err(SimFault::invalid_parameter(
            "The shell list is enumerated as objects only.",
        ));
    }
    let optimize = el.child(ns::WSMAN, "OptimizeEnumeration").is_some();
    let max = max_elements(el, ns::WSMAN, 1)?;
    let source = Arc::new(Source {
        class: "Shell".into(),
        namespace: String::new(),
        uri: ns::SHELL.into(),
        query: None,
        selectors: Vec::new(),
        mode: Mode::Objects,
        snapshot: Some(state.winrs.shell_list_items()),
    });
    begin(state, req, source, optimize, max)
}

/// The EnumerateResponse of a new enumeration of `source`: its first batch when
/// `optimize`, and a context unless that batch ended it.
fn begin(
    state: &State,
    req: &SimRequest,
    source: Arc<Source>,
    optimize: bool,
    max: u64,
) -> HandlerResult {
    let (items, next, end) = if optimize {
        batch(state, req, &source, 0, max)
    } else {
        (String::new(), 0, false)
    };
    let id = if end {
        String::new()
    } else {
        let id = state.enumerations.new_id();
        let ctx = Ctx {
            source,
            next,
            expires: Instant::now() + state.config.enumeration_timeout,
            busy: false,
            pulls_pending: 0,
            released: CancellationToken::new(),
        };
        state.enumerations.lock().insert(id.clone(), ctx);
        state
            .counters
            .open_enumerations
            .fetch_add(1, Ordering::SeqCst);
        id
    };
    Ok(envelope(
        ns::action::ENUMERATE_RESPONSE,
        req.message_id.as_deref(),
        |w| {
            w.raw("<n:EnumerateResponse>");
            w.element("n:EnumerationContext", &id);
            if optimize {
                w.reserve(items.len() + 512);
                w.raw("<w:Items>");
                w.raw(&items);
                w.raw("</w:Items>");
                if end {
                    w.raw("<w:EndOfSequence/>");
                }
            }
            w.raw("</n:EnumerateResponse>");
        },
    ))
}

/// Counts a pending Pull for as long as it is held.
struct Pending<'a>(&'a State, String);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.counters.pulls_pending.fetch_sub(1, Ordering::SeqCst);
        if let Some(c) = self.0.enumerations.lock().get_mut(&self.1) {
            c.pulls_pending = c.pulls_pending.saturating_sub(1);
        }
    }
}

async fn pull(state: &State, req: &SimRequest) -> HandlerResult {
    let el = body(req, "Pull")?;
    let id = context_of(el)?;
    let max = max_elements(el, ns::ENUMERATION, 1)?;
    let delay = state.config.pull_delay;
    if !delay.is_zero() {
        let released = {
            let mut open = state.enumerations.lock();
            let ctx = open.get_mut(&id).ok_or_else(invalid_context)?;
            ctx.pulls_pending += 1;
            ctx.released.clone()
        };
        state.counters.pulls_pending.fetch_add(1, Ordering::SeqCst);
        let _pending = Pending(state, id.clone());
        let timeout = req.operation_timeout.unwrap_or(Duration::from_secs(60));
        tokio::select! {
            () = released.cancelled() => return Err(invalid_context()),
            () = state.shutdown.cancelled() => return Err(invalid_context()),
            () = tokio::time::sleep(delay.min(timeout)) => {}
        }
        if delay > timeout {
            return Err(SimFault::timed_out());
        }
    }
    let (source, start) = {
        let mut open = state.enumerations.lock();
        let ctx = open
            .get_mut(&id)
            .filter(|c| !c.busy)
            .ok_or_else(invalid_context)?;
        ctx.busy = true;
        (Arc::clone(&ctx.source), ctx.next)
    };
    // Instances are made outside the lock; a Release meanwhile removes the context.
    let (items, next, end) = batch(state, req, &source, start, max);
    // Windows keeps one context id for the life of an enumeration; so do we. A Release
    // sent after an abandoned Pull then still names the live context.
    let new_id = {
        let mut open = state.enumerations.lock();
        if end {
            if open.remove(&id).is_none() {
                return Err(invalid_context());
            }
            state
                .counters
                .open_enumerations
                .fetch_sub(1, Ordering::SeqCst);
            None
        } else {
            let Some(ctx) = open.get_mut(&id) else {
                return Err(invalid_context());
            };
            ctx.busy = false;
            ctx.next = next;
            ctx.expires = Instant::now() + state.config.enumeration_timeout;
            Some(id.clone())
        }
    };
    Ok(envelope(
        ns::action::PULL_RESPONSE,
        req.message_id.as_deref(),
        |w| {
            w.raw("<n:PullResponse>");
            if let Some(id) = &new_id {
                w.element("n:EnumerationContext", id);
            }
            w.reserve(items.len() + 512);
            w.raw("<n:Items>");
            w.raw(&items);
            w.raw("</n:Items>");
            if end {
                w.raw("<n:EndOfSequence/>");
            }
            w.raw("</n:PullResponse>");
        },
    ))
}

fn release(state: &State, req: &SimRequest) -> HandlerResult {
    state.counters.releases.fetch_add(1, Ordering::SeqCst);
    let id = context_of(body(req, "Release")?)?;
    let ctx = state
        .enumerations
        .lock()
        .remove(&id)
        .ok_or_else(invalid_context)?;
    state
        .counters
        .open_enumerations
        .fetch_sub(1, Ordering::SeqCst);
    if ctx.pulls_pending > 0 {
        state
            .counters
            .releases_while_pull_pending
            .fetch_add(1, Ordering::SeqCst);
    }
    ctx.released.cancel();
    Ok(envelope(
        ns::action::RELEASE_RESPONSE,
        req.message_id.as_deref(),
        |_| {},
    ))
}

/// The items from index `start` on: at most `max` (and `max_batch_items`), within the
/// request's `MaxEnvelopeSize` (at least one item). Returns the items' XML, the next
/// index and whether the class is exhausted.
fn batch(
    state: &State,
    req: &SimRequest,
    src: &Source,
    start: u64,
    max: u64,
) -> (String, u64, bool) {
    let max = max.min(state.config.max_batch_items.max(1) as u64);
    let budget =
        (req.max_envelope_size.unwrap_or(153_600) as usize).saturating_sub(ENVELOPE_OVERHEAD);
    if let Some(items) = &src.snapshot {
        let mut out = String::new();
        let mut i = start;
        while let Some(item) = usize::try_from(i).ok().and_then(|i| items.get(i)) {
            if (i - start) >= max || (i > start && out.len() + item.len() > budget) {
                break;
            }
            out.push_str(item);
            i += 1;
        }
        return (out, i, i >= items.len() as u64);
    }
    let Some(class) = state.wmi.class_in(&src.namespace, &src.class) else {
        return (String::new(), start, true);
    };
    // Items are written straight into the batch (sized once), and the last one taken back
    // when it overflows the budget.
    let mut out = XmlWriter::with_capacity(budget.min(1 << 20) + 4096);
    let mut n = 0u64;
    let mut i = start;
    let count = class.count();
    // Every instance, whole: the class may write it without building it.
    let plain = src.mode == Mode::Objects && src.selectors.is_empty() && src.query.is_none();
    while i < count && n < max {
        let mark = out.len();
        if !(plain && class.write_instance_xml(&mut out, &src.uri, i)) {
            let inst = class.instance(i);
            if !selected(src, &inst) {
                i += 1;
                continue;
            }
            write_item(&mut out, src, &*class, &inst);
        }
        if n > 0 && out.len() > budget {
            out.truncate(mark);
            break;
        }
        n += 1;
        i += 1;
    }
    (out.into_string(), i, i >= count)
}

fn selected(src: &Source, inst: &Instance) -> bool {
    let sel_ok = src.selectors.iter().all(|(k, v)| {
        inst.get(k)
            .and_then(text_of)
            .is_some_and(|t| t.eq_ignore_ascii_case(v))
    });
    sel_ok
        && src
            .query
            .as_ref()
            .is_none_or(|q| q.matches(&|p| inst.get(p).and_then(to_wql)))
}

/// A scalar value's text, as selectors and keys compare it.
pub(crate) fn text_of(v: &Value) -> Option<String> {
    Some(match v {
        Value::String(s) => s.clone(),
        Value::DateTime(d) => d.raw.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Real(r) => r.to_string(),
        Value::Interval(d) => format_duration(*d),
        _ => return None,
    })
}

fn to_wql(v: &Value) -> Option<WqlValue> {
    Some(match v {
        Value::Null => WqlValue::Null,
        Value::Bool(b) => WqlValue::Bool(*b),
        Value::Int(i) => WqlValue::Int(*i),
        Value::UInt(u) => i64::try_from(*u).map_or(WqlValue::Real(*u as f64), WqlValue::Int),
        Value::Real(r) => WqlValue::Real(*r),
        Value::Array(_) | Value::Reference(_) | Value::Instance(_) => return None,
        other => WqlValue::Str(text_of(other)?),
    })
}

/// One item as Windows writes it for the enumeration's mode and projection.
fn write_item(w: &mut XmlWriter, src: &Source, class: &dyn ClassSource, inst: &Instance) {
    let fragment = src.query.as_ref().is_some_and(|q| q.properties.is_some());
    let object = |w: &mut XmlWriter| {
        if fragment {
            write_fragment(w, src, inst);
        } else {
            wmi::write_instance(w, class.name(), &src.uri, inst);
        }
    };
    match src.mode {
        Mode::Objects => object(w),
        Mode::References => write_epr(w, src, class, inst),
        Mode::Both => {
            w.raw("<w:Item>");
            object(w);
            write_epr(w, src, class, inst);
            w.raw("</w:Item>");
        }
    }
}

/// `w:XmlFragment` with the selected properties, unqualified, as WMI answers a query
/// with a property list.
fn write_fragment(w: &mut XmlWriter, src: &Source, inst: &Instance) {
    w.raw("<w:XmlFragment xmlns:xsi=\"");
    w.raw(ns::XSI);
    w.raw("\" xmlns:cim=\"");
    w.raw(ns::CIM_COMMON);
    w.raw("\">");
    for (name, value) in &inst.properties {
        if !src.query.as_ref().is_some_and(|q| q.selects(name)) {
            continue;
        }
        for v in value.as_slice() {
            match v {
                Value::DateTime(d) => {
                    w.raw(&format!("<{name}>"));
                    w.element("cim:Datetime", &d.raw);
                    w.raw(&format!("</{name}>"));
                }
                other => w.element(name, &text_of(other).unwrap_or_default()),
            }
        }
        if value.is_null() {
            w.raw("<");
            w.raw(name);
            w.raw(" xsi:nil=\"true\"/>");
        }
    }
    w.raw("</w:XmlFragment>");
}

fn write_epr(w: &mut XmlWriter, src: &Source, class: &dyn ClassSource, inst: &Instance) {
    w.raw("<a:EndpointReference><a:Address>");
    w.raw(ns::ANONYMOUS);
    w.raw("</a:Address><a:ReferenceParameters><w:ResourceURI>");
    w.text(&src.uri);
    w.raw("</w:ResourceURI><w:SelectorSet>");
    for key in class.keys() {
        if let Some(t) = inst.get(key).and_then(text_of) {
            w.raw("<w:Selector Name=\"");
            w.attr_text(key);
            w.raw("\">");
            w.text(&t);
            w.raw("</w:Selector>");
        }
    }
    w.raw("</w:SelectorSet></a:ReferenceParameters></a:EndpointReference>");
}
