//! WMI-like classes behind `http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/<Class>`:
//! Get (by key selectors), Put (echoes the changed instance) and Invoke
//! (`Win32_Process.Create`, `Win32_Service.StartService`/`StopService`), with the
//! instance XML Windows writes (`p:Class` typed `p:Class_Type`, nil and datetimes).

#![allow(
    clippy::result_large_err,
    reason = "SimFault (response.rs) is one per failed request; boxing it buys nothing"
)]

mod classes;
mod process;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use self::classes::{Host, OperatingSystem, Services};
use self::process::Processes;
use super::response::{SimFault, envelope};
use super::{ClassSource, HandlerResult, SimConfig, SimRequest, State};
use crate::soap::envelope::{XmlWriter, format_duration, write_epr};
use crate::soap::{CimDateTime, Instance, Value, ns};

/// The one WMI namespace the simulator serves.
pub(crate) const NAMESPACE: &str = "root/cimv2";

/// The resource URI of a class of `root/cimv2`.
pub(crate) fn class_uri(class: &str) -> String {
    class_uri_in(NAMESPACE, class)
}

/// The resource URI of a class of `namespace`.
pub(crate) fn class_uri_in(namespace: &str, class: &str) -> String {
    format!("{}{namespace}/{class}", ns::WMI_BASE)
}

/// Locks a mutex, ignoring poisoning: the data behind these locks stays consistent
/// (every update is a single insert or push).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A stateless seeded generator: `at(i)` is the i-th value of a SplitMix64 stream.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rng(u64);

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(splitmix(seed))
    }
    /// An independent stream for another purpose.
    pub(crate) fn fork(&self, salt: u64) -> Rng {
        Rng(splitmix(self.0 ^ salt.wrapping_mul(0xD6E8_FEB8_6659_FD93)))
    }
    /// The value at position `i`.
    pub(crate) fn at(&self, i: u64) -> u64 {
        splitmix(self.0 ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}

/// `secs` after the Unix epoch (UTC) as a `cim:Datetime` value,
/// e.g. `2025-03-04T06:12:41.500000Z`.
pub(crate) fn datetime(secs: i64, micros: u32) -> Value {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let text = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        micros % 1_000_000
    );
    CimDateTime::parse(&text).map_or(Value::String(text), Value::DateTime)
}

/// The classes of the simulated `root/cimv2`.
pub(crate) struct Wmi {
    os: OperatingSystem,
    services: Services,
    processes: Processes,
    /// Sim_Item, the synthetic enumeration class (`src/sim/synthetic.rs`).
    items: super::synthetic::SimItems,
    /// Classes users registered (`Simulator::register_class`).
    registered: RwLock<Vec<Arc<super::SimClass>>>,
}

/// A class found by name: a built-in one, or a registered one (shared, so a
/// registration during a request does not disturb it).
pub(crate) enum ClassRef<'a> {
    Builtin(&'a dyn ClassSource),
    Registered(Arc<super::SimClass>),
}

impl<'a> std::ops::Deref for ClassRef<'a> {
    type Target = dyn ClassSource + 'a;
    fn deref(&self) -> &Self::Target {
        match self {
            ClassRef::Builtin(c) => *c,
            ClassRef::Registered(c) => &**c,
        }
    }
}

impl std::fmt::Debug for Wmi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wmi")
            .field("classes", &self.class_names())
            .finish()
    }
}

/// Whether the registered class `c` is `name` in `namespace` (case-insensitive).
fn is_class(c: &super::SimClass, name: &str, namespace: &str) -> bool {
    c.name().eq_ignore_ascii_case(name) && ClassSource::namespace(c).eq_ignore_ascii_case(namespace)
}

impl Wmi {
    /// Builds the classes from the simulator's seed and sizes.
    pub(crate) fn new(config: &SimConfig) -> Wmi {
        let rng = Rng::new(config.seed);
        let host = Host::new(&rng);
        let processes = Processes::new(&rng, &host);
        Wmi {
            os: OperatingSystem::new(&rng, &host, process::BASE_PROCESSES as u64),
            services: Services::new(&rng, &host, config.service_count),
            processes,
            items: super::synthetic::SimItems::new(config.seed, config.synthetic_count),
            registered: RwLock::new(Vec::new()),
        }
    }

    /// Every built-in class, in a fixed order.
    fn builtins(&self) -> Vec<&dyn ClassSource> {
        vec![&self.os, &self.services, &self.processes, &self.items]
    }

    /// Stores a Put to an instance of a registered class (`name` in `namespace`); false
    /// when the class is not a registered one (the built-in classes echo a Put without
    /// keeping it) or no instance has the keys.
    pub(crate) fn put_registered(
        &self,
        name: &str,
        namespace: &str,
        original: &Instance,
        changed: &Instance,
    ) -> bool {
        let mut list = self
            .registered
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(slot) = list.iter_mut().find(|c| is_class(c, name, namespace)) else {
            return false;
        };
        match slot.with_put(original, changed) {
            Some(next) => {
                *slot = Arc::new(next);
                true
            }
            None => false,
        }
    }

    /// Adds a registered class, replacing one of the same name.
    pub(crate) fn register(&self, class: Arc<super::SimClass>) {
        let mut list = self
            .registered
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        list.retain(|c| !is_class(c, class.name(), ClassSource::namespace(&*class)));
        list.push(class);
    }

    /// The class of `root/cimv2` called `name` (case-insensitive).
    #[cfg(test)]
    pub(crate) fn class(&self, name: &str) -> Option<ClassRef<'_>> {
        self.class_in(NAMESPACE, name)
    }

    /// Whether any class lives in `namespace` (case-insensitive).
    pub(crate) fn has_namespace(&self, namespace: &str) -> bool {
        namespace.eq_ignore_ascii_case(NAMESPACE)
            || self
                .registered
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .any(|c| ClassSource::namespace(&**c).eq_ignore_ascii_case(namespace))
    }

    /// The class of `namespace` called `name` (both case-insensitive); registered
    /// classes first.
    pub(crate) fn class_in(&self, namespace: &str, name: &str) -> Option<ClassRef<'_>> {
        let registered = self
            .registered
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|c| {
                c.name().eq_ignore_ascii_case(name)
                    && ClassSource::namespace(&***c).eq_ignore_ascii_case(namespace)
            })
            .cloned();
        if let Some(c) = registered {
            return Some(ClassRef::Registered(c));
        }
        if !namespace.eq_ignore_ascii_case(NAMESPACE) {
            return None;
        }
        self.builtins()
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
            .map(ClassRef::Builtin)
    }

    /// The names of all classes.
    pub(crate) fn class_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .builtins()
            .into_iter()
            .map(|c| c.name().to_string())
            .collect();
        let registered = self
            .registered
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        names.extend(registered.iter().map(|c| c.name().to_string()));
        names
    }

    /// The class a WMI resource URI names: `.../wmi/root/cimv2/<Class>`
    /// (namespace and class case-insensitive).
    pub(crate) fn class_for_uri(&self, uri: &str) -> Option<ClassRef<'_>> {
        let rest = uri.strip_prefix(ns::WMI_BASE)?;
        let (namespace, class) = rest.rsplit_once('/')?;
        self.class_in(namespace, class)
    }
}

/// The instance the request's selectors name: singleton classes need none, keyed
/// classes exactly their keys. Anything else is `w:InvalidSelectors` (2150858843).
pub(crate) fn resolve(class: &dyn ClassSource, req: &SimRequest) -> Result<Instance, SimFault> {
    let mut pairs = Vec::with_capacity(req.selectors.len());
    for sel in &req.selectors {
        if sel.name.eq_ignore_ascii_case("__cimnamespace") {
            match sel.text() {
                Some(n) if n.replace('\\', "/").eq_ignore_ascii_case(class.namespace()) => {
                    continue;
                }
                _ => return Err(SimFault::invalid_selectors()),
            }
        }
        let text = sel.text().ok_or_else(SimFault::invalid_selectors)?;
        pairs.push((sel.name.clone(), text.to_string()));
    }
    let keys = class.keys();
    if keys.is_empty() && pairs.is_empty() {
        return (class.count() > 0)
            .then(|| class.instance(0))
            .ok_or_else(SimFault::invalid_selectors);
    }
    let known = pairs
        .iter()
        .all(|(n, _)| keys.iter().any(|k| k.eq_ignore_ascii_case(n)));
    let complete = keys
        .iter()
        .all(|k| pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(k)));
    if !(keys.is_empty() || (known && complete)) {
        return Err(SimFault::invalid_selectors());
    }
    class.find(&pairs).ok_or_else(SimFault::invalid_selectors)
}

/// The method of an Invoke action (`<resource uri>/<Method>`), if the action is one.
fn method_of<'a>(action: &'a str, uri: &str) -> Option<&'a str> {
    let prefix = action.get(..uri.len())?;
    let method = action.get(uri.len()..)?.strip_prefix('/')?;
    (prefix.eq_ignore_ascii_case(uri) && !method.is_empty() && !method.contains('/'))
        .then_some(method)
}

/// Get, Put and Invoke on a WMI resource.
pub(crate) fn handle(state: &Arc<State>, req: &SimRequest) -> HandlerResult {
    let uri = req.resource_uri.as_deref().unwrap_or_default();
    let wmi = &state.wmi;
    let class = wmi
        .class_for_uri(uri)
        .ok_or_else(|| SimFault::not_found(uri))?;
    let canonical = class_uri_in(class.namespace(), class.name());
    let relates = req.message_id.as_deref();
    match req.action.as_str() {
        ns::action::GET => {
            let inst = resolve(&*class, req)?;
            Ok(envelope(ns::action::GET_RESPONSE, relates, |w| {
                write_instance(w, class.name(), &canonical, &inst);
            }))
        }
        ns::action::PUT => {
            state.counters.puts.fetch_add(1, Ordering::SeqCst);
            let original = resolve(&*class, req)?;
            let mut inst = original.clone();
            let given = req
                .body_element()
                .map(Instance::from_element)
                .ok_or_else(|| {
                    SimFault::invalid_parameter("The Put request carries no instance.")
                })?;
            for (name, value) in given.properties {
                let Some(prop) = class
                    .properties()
                    .into_iter()
                    .find(|p| p.eq_ignore_ascii_case(&name))
                else {
                    return Err(SimFault::invalid_parameter(&format!(
                        "The property {name} does not exist on class {}.",
                        class.name()
                    )));
                };
                match inst.properties.iter_mut().find(|(n, _)| n == prop) {
                    Some(slot) => slot.1 = value,
                    None => inst.properties.push((prop.to_string(), value)),
                }
            }
            // A registered class keeps the change; a built-in one only echoes it.
            wmi.put_registered(class.name(), class.namespace(), &original, &inst);
            Ok(envelope(ns::action::PUT_RESPONSE, relates, |w| {
                write_instance(w, class.name(), &canonical, &inst);
            }))
        }
        action => match method_of(action, uri).or_else(|| method_of(action, &canonical)) {
            Some(method) => {
                state.counters.invokes.fetch_add(1, Ordering::SeqCst);
                wmi.invoke(class.name(), method, req, &canonical)
            }
            None => Err(SimFault::action_not_supported(action)),
        },
    }
}

impl Wmi {
    fn invoke(&self, class: &str, method: &str, req: &SimRequest, uri: &str) -> HandlerResult {
        let input = req
            .body_element()
            .map(Instance::from_element)
            .unwrap_or_default();
        let output: Vec<(&str, Value)>;
        let method_name: &str;
        if class == "Win32_Process" && method.eq_ignore_ascii_case("Create") {
            method_name = "Create";
            let command_line = input.get_str("CommandLine").map_or("", str::trim);
            let cwd_ok = input
                .get_str("CurrentDirectory")
                .map(str::trim)
                .is_none_or(|d| d.is_empty() || is_windows_path(d));
            output = match (
                command_line.is_empty() || !cwd_ok,
                self.processes.spawn(command_line),
            ) {
                (true, _) => vec![("ProcessId", Value::Null), ("ReturnValue", Value::UInt(9))],
                (false, None) => vec![("ProcessId", Value::Null), ("ReturnValue", Value::UInt(8))],
                (false, Some(pid)) => vec![
                    ("ProcessId", Value::UInt(pid)),
                    ("ReturnValue", Value::UInt(0)),
                ],
            };
        } else if class == "Win32_Service"
            && (method.eq_ignore_ascii_case("StopService")
                || method.eq_ignore_ascii_case("StartService"))
        {
            let run = method.eq_ignore_ascii_case("StartService");
            method_name = if run { "StartService" } else { "StopService" };
            let inst = resolve(&self.services, req)?;
            let index = inst
                .get_str("Name")
                .and_then(|n| self.services.index_of(n))
                .ok_or_else(SimFault::invalid_selectors)?;
            let code = self.services.control(index, run) as u64;
            output = vec![("ReturnValue", Value::UInt(code))];
        } else {
            return Err(SimFault::action_not_supported(&req.action));
        }
        let action = format!("{uri}/{method_name}Response");
        Ok(envelope(&action, req.message_id.as_deref(), |w| {
            let element = format!("{method_name}_OUTPUT");
            w.raw("<p:");
            w.raw(&element);
            w.raw(" xmlns:p=\"");
            w.attr_text(uri);
            w.raw("\" xmlns:xsi=\"");
            w.raw(ns::XSI);
            w.raw("\">");
            for (name, value) in &output {
                write_property(w, name, value);
            }
            w.raw("</p:");
            w.raw(&element);
            w.raw(">");
        }))
    }
}

/// A drive-rooted path such as `C:\Temp` (the simulator's idea of one that exists).
fn is_windows_path(p: &str) -> bool {
    let b = p.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[1] == b':'
        && (b.len() == 2 || b[2] == b'\\' || b[2] == b'/')
}

/// Writes `inst` as Windows does in a Get, Put or enumeration response:
/// `<p:Class xmlns:p="uri" xmlns:cim=".." xmlns:xsi=".." xsi:type="p:Class_Type">`,
/// properties in order, nil as `xsi:nil="true"`, datetimes as `cim:Datetime`.
pub(crate) fn write_instance(w: &mut XmlWriter, class: &str, uri: &str, inst: &Instance) {
    w.raw("<p:");
    w.raw(class);
    w.raw(" xmlns:p=\"");
    w.attr_text(uri);
    w.raw("\" xmlns:cim=\"");
    w.raw(ns::CIM_COMMON);
    w.raw("\" xmlns:xsi=\"");
    w.raw(ns::XSI);
    w.raw("\" xsi:type=\"p:");
    w.raw(class);
    w.raw("_Type\">");
    for (name, value) in &inst.properties {
        write_property(w, name, value);
    }
    w.raw("</p:");
    w.raw(class);
    w.raw(">");
}

pub(crate) fn write_property(w: &mut XmlWriter, name: &str, value: &Value) {
    let open = |w: &mut XmlWriter| {
        w.raw("<p:");
        w.raw(name);
        w.raw(">");
    };
    let close = |w: &mut XmlWriter| {
        w.raw("</p:");
        w.raw(name);
        w.raw(">");
    };
    match value {
        Value::Array(items) => items.iter().for_each(|v| write_property(w, name, v)),
        Value::DateTime(d) => {
            open(w);
            w.element("cim:Datetime", &d.raw);
            close(w);
        }
        Value::Interval(d) => {
            open(w);
            w.element("cim:Interval", &format_duration(*d));
            close(w);
        }
        Value::Reference(epr) => {
            open(w);
            write_epr(w, epr);
            close(w);
        }
        Value::Instance(inner) => {
            open(w);
            inner
                .properties
                .iter()
                .for_each(|(n, v)| write_property(w, n, v));
            close(w);
        }
        // Written in place: no string per property (enumerations of many instances).
        Value::Bool(b) => {
            open(w);
            w.raw(if *b { "true" } else { "false" });
            close(w);
        }
        Value::Int(v) => {
            open(w);
            w.display(v);
            close(w);
        }
        Value::UInt(v) => {
            open(w);
            w.display(v);
            close(w);
        }
        Value::Real(v) => {
            open(w);
            w.text(&v.to_string());
            close(w);
        }
        Value::String(s) => {
            open(w);
            w.text(s);
            close(w);
        }
        // Null, and any kind of value a later wsman-protocol adds: nil.
        _ => {
            w.raw("<p:");
            w.raw(name);
            w.raw(" xsi:nil=\"true\"/>");
        }
    }
}

#[cfg(test)]
mod tests;
