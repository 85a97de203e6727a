//! WMI classes users register on a simulator ([`Simulator::register_class`]): a fixed
//! list of instances served under `root/cimv2` (or another namespace) like the built-in classes (Get by key
//! selectors, Put storing the change, Enumerate with or without WQL, EPRs).

use std::sync::Arc;

use super::{ClassSource, Simulator};
use crate::soap::{Instance, Value};

/// A WMI class to add to a simulator with [`Simulator::register_class`], served in the
/// `root/cimv2` namespace (resource URI
/// `http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/<Name>`) or the one
/// [`namespace`](SimClass::namespace) names.
///
/// Properties are declared in schema order by [`key`](SimClass::key) and
/// [`property`](SimClass::property); an instance's property not declared yet is
/// declared when the instance is added, and a declared property an instance lacks is
/// written as nil (`xsi:nil="true"`), as Windows writes a null.
///
/// ```
/// use winrm_simulator::SimClass;
/// use tokio_winrm::Value;
///
/// let widgets = SimClass::new("Acme_Widget")
///     .key("Name")
///     .property("Size")
///     .instance([("Name", Value::from("gear")), ("Size", Value::from(3u64))])
///     .instance([("Name", Value::from("cog")), ("Size", Value::from(5u64))]);
/// assert_eq!(widgets.name(), "Acme_Widget");
/// ```
#[derive(Debug, Clone)]
pub struct SimClass {
    name: String,
    namespace: String,
    keys: Vec<String>,
    properties: Vec<String>,
    instances: Vec<Vec<(String, Value)>>,
}

impl SimClass {
    /// A class called `name` (e.g. `Acme_Widget`) with no properties or instances yet.
    pub fn new(name: impl Into<String>) -> SimClass {
        SimClass {
            name: name.into(),
            namespace: super::wmi::NAMESPACE.to_string(),
            keys: Vec::new(),
            properties: Vec::new(),
            instances: Vec::new(),
        }
    }

    /// The class name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Serves the class in `namespace` instead of `root/cimv2`, e.g.
    /// `root/StandardCimv2` (`\\` is read as `/`; compared case-insensitively). The
    /// built-in classes stay in `root/cimv2`.
    #[must_use]
    pub fn namespace(mut self, namespace: &str) -> SimClass {
        self.namespace = namespace.trim_matches(['/', '\\']).replace('\\', "/");
        self
    }

    /// Declares a key property (a selector of Get, Put and EPRs). A class without keys
    /// is a singleton: Get without selectors returns its first instance.
    #[must_use]
    pub fn key(mut self, name: impl Into<String>) -> SimClass {
        let name = name.into();
        self.declare(&name);
        if !self.keys.iter().any(|k| k.eq_ignore_ascii_case(&name)) {
            self.keys.push(name);
        }
        self
    }

    /// Declares a (non-key) property.
    #[must_use]
    pub fn property(mut self, name: impl Into<String>) -> SimClass {
        self.declare(&name.into());
        self
    }

    /// Adds an instance from `(property, value)` pairs; values convert from strings,
    /// integers, booleans and [`Value`].
    #[must_use]
    pub fn instance<I, K, V>(mut self, properties: I) -> SimClass
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Value>,
    {
        let props: Vec<(String, Value)> = properties
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        for (name, _) in &props {
            self.declare(name);
        }
        self.instances.push(props);
        self
    }

    fn declare(&mut self, name: &str) {
        if !self.properties.iter().any(|p| p.eq_ignore_ascii_case(name)) {
            self.properties.push(name.to_string());
        }
    }
}

impl ClassSource for SimClass {
    fn name(&self) -> &str {
        &self.name
    }
    fn namespace(&self) -> &str {
        &self.namespace
    }
    fn properties(&self) -> Vec<&str> {
        self.properties.iter().map(String::as_str).collect()
    }
    fn keys(&self) -> Vec<&str> {
        self.keys.iter().map(String::as_str).collect()
    }
    fn count(&self) -> u64 {
        self.instances.len() as u64
    }
    fn instance(&self, index: u64) -> Instance {
        let given = usize::try_from(index)
            .ok()
            .and_then(|i| self.instances.get(i));
        let properties = self
            .properties
            .iter()
            .map(|p| {
                let value = given
                    .and_then(|g| g.iter().find(|(n, _)| n.eq_ignore_ascii_case(p)))
                    .map_or(Value::Null, |(_, v)| v.clone());
                (p.clone(), value)
            })
            .collect();
        Instance {
            class_name: self.name.clone(),
            namespace: Some(super::wmi::class_uri_in(&self.namespace, &self.name)),
            properties,
        }
    }
}

impl SimClass {
    /// This class with the instance that has `original`'s keys (the first instance of a
    /// class without keys) updated to `changed`'s values: what a WS-Transfer Put stores.
    /// `None` when no instance has those keys.
    pub(crate) fn with_put(&self, original: &Instance, changed: &Instance) -> Option<SimClass> {
        let same = |given: &Vec<(String, Value)>| {
            self.keys.iter().all(|k| {
                let mine = given
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .and_then(|(_, v)| super::enumeration::text_of(v));
                let theirs = original
                    .properties
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .and_then(|(_, v)| super::enumeration::text_of(v));
                mine.is_some()
                    && mine.as_deref().map(str::to_lowercase)
                        == theirs.as_deref().map(str::to_lowercase)
            })
        };
        let index = self.instances.iter().position(same)?;
        let mut next = self.clone();
        next.instances[index] = changed
            .properties
            .iter()
            .filter(|(n, _)| self.properties.iter().any(|p| p.eq_ignore_ascii_case(n)))
            .cloned()
            .collect();
        Some(next)
    }
}

impl Simulator {
    /// Adds a WMI class with its instances (see [`SimClass`]), or replaces the one
    /// registered before under the same name (case-insensitive). A registered class
    /// hides a built-in class of the same name. A WS-Transfer Put to one of its
    /// instances stores the change: a later Get or enumeration returns it.
    pub fn register_class(&self, class: SimClass) {
        self.state.wmi.register(Arc::new(class));
    }
}
