//! `Resource`: what an operation addresses (resource URI, selectors, options).

use crate::soap::cim::EndpointReference;
use crate::soap::envelope::{OptionItem, Selector};
use crate::soap::ns;

/// A WS-Management resource: a resource URI, selectors (keys) and options.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resource {
    uri: String,
    selectors: Vec<Selector>,
    options: Vec<OptionItem>,
}

/// Expands the short forms `winrm.cmd` accepts: `wmicimv2/Win32_Service`,
/// `wmi/root/cimv2/Win32_Service`, `cimv2/X`, `winrm/config[/...]`, `shell/cmd`.
pub fn expand_alias(uri: &str) -> String {
    let uri = uri.trim();
    if uri.contains("://") {
        return uri.to_string();
    }
    let lower = uri.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("wmicimv2/").map(|_| &uri[9..]) {
        return format!("{}root/cimv2/{rest}", ns::WMI_BASE);
    }
    if lower.starts_with("wmi/") {
        return format!("{}{}", ns::WMI_BASE, &uri[4..]);
    }
    if lower.starts_with("cimv2/") {
        return format!("{}root/{uri}", ns::WMI_BASE);
    }
    if lower == "winrm/config" || lower == "config" {
        return ns::CONFIG.to_string();
    }
    if lower.starts_with("winrm/config/") {
        return format!("{}/{}", ns::CONFIG, &uri[13..]);
    }
    if lower.starts_with("shell/") {
        return format!("http://schemas.microsoft.com/wbem/wsman/1/windows/{uri}");
    }
    format!("{}root/cimv2/{uri}", ns::WMI_BASE)
}

impl Resource {
    /// A resource by URI (full, or a short form: see [`expand_alias`]).
    pub fn new(uri: impl AsRef<str>) -> Resource {
        Resource {
            uri: expand_alias(uri.as_ref()),
            ..Default::default()
        }
    }

    /// A WMI class in a namespace, e.g. `wmi("root/cimv2", "Win32_Service")`. The
    /// namespace may also be written as WMI writes it, `root\cimv2`: its backslashes
    /// become the slashes of the resource URI (`.../wsman/1/wmi/root/cimv2/CLASS`).
    pub fn wmi(namespace: &str, class: &str) -> Resource {
        let namespace = namespace.replace('\\', "/");
        Resource {
            uri: format!("{}{}/{}", ns::WMI_BASE, namespace.trim_matches('/'), class),
            ..Default::default()
        }
    }

    /// The WinRM configuration resource.
    pub fn config() -> Resource {
        Resource::new(ns::CONFIG)
    }

    /// The resource an endpoint reference names (as returned by enumerations).
    pub fn from_epr(epr: &EndpointReference) -> Resource {
        Resource {
            uri: epr.resource_uri.clone(),
            selectors: epr.selectors.clone(),
            options: Vec::new(),
        }
    }

    /// Adds a selector (key).
    #[must_use]
    pub fn selector(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.selectors.push(Selector::new(name, value));
        self
    }

    /// Adds an option (`w:OptionSet`).
    #[must_use]
    pub fn option(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push(OptionItem::new(name, value));
        self
    }

    /// Adds an option the server must comply with.
    #[must_use]
    pub fn option_must_comply(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push(OptionItem::must_comply(name, value));
        self
    }

    /// The resource URI.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The selectors.
    pub fn selectors(&self) -> &[Selector] {
        &self.selectors
    }

    /// The options.
    pub fn options(&self) -> &[OptionItem] {
        &self.options
    }

    /// The last path segment of the URI: the class name for WMI resources.
    pub fn class_name(&self) -> &str {
        self.uri.rsplit('/').next().unwrap_or(&self.uri)
    }
}

impl From<&str> for Resource {
    fn from(s: &str) -> Self {
        Resource::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wmi_namespace_may_be_written_with_backslashes() {
        let uri = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service";
        for namespace in ["root/cimv2", "root\\cimv2", "/root/cimv2/", "\\root\\cimv2"] {
            assert_eq!(
                Resource::wmi(namespace, "Win32_Service").uri,
                uri,
                "{namespace}"
            );
        }
        assert_eq!(
            Resource::wmi("root\\Microsoft\\Windows\\Storage", "MSFT_Disk").uri,
            "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/Microsoft/Windows/Storage/MSFT_Disk"
        );
    }

    #[test]
    fn aliases() {
        assert_eq!(
            Resource::new("wmicimv2/Win32_Service").uri(),
            "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service"
        );
        assert_eq!(Resource::new("winrm/config").uri(), ns::CONFIG);
        assert_eq!(
            Resource::new("winrm/config/Listener").uri(),
            "http://schemas.microsoft.com/wbem/wsman/1/config/Listener"
        );
        assert_eq!(
            Resource::new("Win32_OperatingSystem").class_name(),
            "Win32_OperatingSystem"
        );
        assert_eq!(
            Resource::wmi("/root/cimv2/", "Win32_Process").uri(),
            format!("{}root/cimv2/Win32_Process", ns::WMI_BASE)
        );
        assert_eq!(Resource::new("http://x/y").uri(), "http://x/y");
    }
}
