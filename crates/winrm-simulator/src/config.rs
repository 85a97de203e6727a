//! The WinRM configuration resource (`http://schemas.microsoft.com/wbem/wsman/1/config`
//! and its sub-resources such as `.../config/Service`): a `cfg:Config` document with the
//! Windows defaults, readable with Get and changeable with Put, as `winrm get/set
//! winrm/config` does.

#![allow(
    clippy::result_large_err,
    reason = "SimFault (response.rs) is one per failed request; boxing it buys nothing"
)]

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use super::response::{SimFault, envelope};
use super::{HandlerResult, SimConfig, SimRequest, State};
use crate::soap::envelope::XmlWriter;
use crate::soap::ns;
use crate::soap::xml::Element;

/// One setting or group of settings of the document.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    name: &'static str,
    value: NodeValue,
}

#[derive(Debug, Clone, PartialEq)]
enum NodeValue {
    Leaf(String),
    Group(Vec<Node>),
}

fn leaf(name: &'static str, value: impl ToString) -> Node {
    Node {
        name,
        value: NodeValue::Leaf(value.to_string()),
    }
}

fn group(name: &'static str, children: Vec<Node>) -> Node {
    Node {
        name,
        value: NodeValue::Group(children),
    }
}

impl Node {
    fn child_mut(&mut self, name: &str) -> Option<&mut Node> {
        match &mut self.value {
            NodeValue::Group(children) => children
                .iter_mut()
                .find(|c| c.name.eq_ignore_ascii_case(name)),
            NodeValue::Leaf(_) => None,
        }
    }

    fn child(&self, name: &str) -> Option<&Node> {
        match &self.value {
            NodeValue::Group(children) => {
                children.iter().find(|c| c.name.eq_ignore_ascii_case(name))
            }
            NodeValue::Leaf(_) => None,
        }
    }

    fn write(&self, w: &mut XmlWriter) {
        match &self.value {
            NodeValue::Leaf(v) => w.element(&format!("cfg:{}", self.name), v),
            NodeValue::Group(children) => {
                w.raw("<cfg:");
                w.raw(self.name);
                w.raw(">");
                for c in children {
                    c.write(w);
                }
                w.raw("</cfg:");
                w.raw(self.name);
                w.raw(">");
            }
        }
    }

    /// Applies the values of `el` (same shape as this node) to this node.
    fn apply(&mut self, el: &Element, path: &str) -> Result<(), SimFault> {
        match &mut self.value {
            NodeValue::Leaf(old) => {
                let new = el.text.trim();
                let numeric = old.parse::<u64>().is_ok();
                let boolean = old == "true" || old == "false";
                if !el.children.is_empty()
                    || (numeric && new.parse::<u64>().is_err())
                    || (boolean && new != "true" && new != "false")
                {
                    return Err(SimFault::invalid_parameter(&format!(
                        "The WS-Management service cannot process the request. The value {new:?} is not valid for {path}."
                    )));
                }
                *old = new.to_string();
                Ok(())
            }
            NodeValue::Group(_) => {
                for c in &el.children {
                    let sub = format!("{path}/{}", c.name);
                    let node = self.child_mut(&c.name).ok_or_else(|| {
                        SimFault::invalid_parameter(&format!(
                            "The WS-Management service cannot process the request. The configuration setting {sub} does not exist."
                        ))
                    })?;
                    node.apply(c, &sub)?;
                }
                Ok(())
            }
        }
    }
}

/// The live WinRM configuration of a simulator.
pub(crate) struct WinRmConfig {
    root: Mutex<Node>,
}

impl std::fmt::Debug for WinRmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WinRmConfig").finish_non_exhaustive()
    }
}

fn default_document(c: &SimConfig) -> Node {
    let auth_client = group(
        "Auth",
        vec![
            leaf("Basic", true),
            leaf("Digest", true),
            leaf("Kerberos", true),
            leaf("Negotiate", true),
            leaf("Certificate", true),
            leaf("CredSSP", false),
        ],
    );
    let ports = || {
        group(
            "DefaultPorts",
            vec![leaf("HTTP", 5985), leaf("HTTPS", 5986)],
        )
    };
    let client = group(
        "Client",
        vec![
            leaf("NetworkDelayms", 5000),
            leaf("URLPrefix", "wsman"),
            leaf("AllowUnencrypted", false),
            auth_client,
            ports(),
            leaf("TrustedHosts", ""),
        ],
    );
    let service = group(
        "Service",
        vec![
            leaf(
                "RootSDDL",
                "O:NSG:BAD:P(A;;GA;;;BA)(A;;GR;;;IU)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)",
            ),
            leaf("MaxConcurrentOperations", 4_294_967_295u64),
            leaf("MaxConcurrentOperationsPerUser", 1500),
            leaf("EnumerationTimeoutms", c.enumeration_timeout.as_millis()),
            leaf("MaxConnections", 300),
            leaf("MaxPacketRetrievalTimeSeconds", 120),
            // As configured: false (the default, as on Windows) refuses unsealed NTLM
            // and Kerberos messages over HTTP; Basic over HTTP is a separate switch.
            leaf("AllowUnencrypted", c.allow_unencrypted),
            group(
                "Auth",
                vec![
                    leaf("Basic", c.allow_basic),
                    leaf("Kerberos", true),
                    leaf("Negotiate", true),
                    leaf("Certificate", false),
                    leaf("CredSSP", false),
                    leaf("CbtHardeningLevel", "Relaxed"),
                ],
            ),
            ports(),
            leaf("IPv4Filter", "*"),
            leaf("IPv6Filter", "*"),
            leaf("EnableCompatibilityHttpListener", false),
            leaf("EnableCompatibilityHttpsListener", false),
            leaf("CertificateThumbprint", ""),
            leaf("AllowRemoteAccess", true),
        ],
    );
    let winrs = group(
        "Winrs",
        vec![
            leaf("AllowRemoteShellAccess", true),
            leaf("IdleTimeout", 7_200_000),
            leaf("MaxConcurrentUsers", 2_147_483_647),
            leaf("MaxShellRunTime", 2_147_483_647),
            leaf("MaxProcessesPerShell", 2_147_483_647),
            leaf("MaxMemoryPerShellMB", 2_147_483_647),
            leaf("MaxShellsPerUser", c.max_shells_per_user),
        ],
    );
    group(
        "Config",
        vec![
            leaf("MaxEnvelopeSizekb", c.max_envelope_size_kb),
            leaf("MaxTimeoutms", 60_000),
            leaf("MaxBatchItems", c.max_batch_items),
            leaf("MaxProviderRequests", 4_294_967_295u64),
            client,
            service,
            winrs,
        ],
    )
}

/// True for the config resource and its sub-resources.
pub(crate) fn is_config_uri(uri: &str) -> bool {
    uri.get(..ns::CONFIG.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(ns::CONFIG))
        && (uri.len() == ns::CONFIG.len() || uri.as_bytes()[ns::CONFIG.len()] == b'/')
}

/// The path below `.../config` (`""` for the whole document), without a trailing slash.
fn sub_path(uri: &str) -> &str {
    uri.get(ns::CONFIG.len()..).unwrap_or("").trim_matches('/')
}

impl WinRmConfig {
    /// The configuration Windows would report for these settings.
    pub(crate) fn new(config: &SimConfig) -> WinRmConfig {
        WinRmConfig {
            root: Mutex::new(default_document(config)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Node> {
        self.root
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The current value of a setting, by path below the root, e.g.
    /// `["Winrs", "MaxShellsPerUser"]` (case-insensitive). `None` for groups.
    pub(crate) fn value(&self, path: &[&str]) -> Option<String> {
        let root = self.lock();
        let mut node = &*root;
        for step in path {
            node = node.child(step)?;
        }
        match &node.value {
            NodeValue::Leaf(v) => Some(v.clone()),
            NodeValue::Group(_) => None,
        }
    }

    /// The live `MaxEnvelopeSizekb`.
    pub(crate) fn max_envelope_size_kb(&self) -> Option<u32> {
        self.value(&["MaxEnvelopeSizekb"])
            .and_then(|v| v.parse().ok())
    }

    /// Writes the node at `path` (empty: the whole document) as a response body element.
    fn write_at(&self, path: &str, w: &mut XmlWriter) -> Result<(), SimFault> {
        let root = self.lock();
        let node = find(&root, path).ok_or_else(|| SimFault::not_found(&uri_of(path)))?;
        write_document(node, &uri_of(path), w);
        Ok(())
    }

    /// Applies a Put body to the node at `path`; all or nothing.
    fn put_at(&self, path: &str, body: &Element) -> Result<(), SimFault> {
        let mut root = self.lock();
        let mut copy = find(&root, path)
            .ok_or_else(|| SimFault::not_found(&uri_of(path)))?
            .clone();
        let doc = body.children.first().ok_or_else(|| {
            SimFault::invalid_parameter("The Put request carries no configuration document.")
        })?;
        // Client::put names the element after the last URI segment (`config`), Windows
        // tools after the setting (`Config`, `Service`): both match case-insensitively.
        if !doc.name.eq_ignore_ascii_case(copy.name) {
            return Err(SimFault::invalid_parameter(&format!(
                "The WS-Management service cannot process the request: the document element {} does not match the resource.",
                doc.name
            )));
        }
        let label = if path.is_empty() {
            "Config".to_string()
        } else {
            format!("Config/{path}")
        };
        copy.apply(doc, &label)?;
        let target = find_mut(&mut root, path).ok_or_else(|| SimFault::not_found(&uri_of(path)))?;
        *target = copy;
        Ok(())
    }
}

fn uri_of(path: &str) -> String {
    if path.is_empty() {
        ns::CONFIG.to_string()
    } else {
        format!("{}/{}", ns::CONFIG, path.to_ascii_lowercase())
    }
}

fn find<'a>(root: &'a Node, path: &str) -> Option<&'a Node> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .try_fold(root, |n, step| n.child(step))
}

fn find_mut<'a>(root: &'a mut Node, path: &str) -> Option<&'a mut Node> {
    let mut node = root;
    for step in path.split('/').filter(|s| !s.is_empty()) {
        node = node.child_mut(step)?;
    }
    Some(node)
}

/// `<cfg:Name xmlns:cfg="uri">...</cfg:Name>`, the namespace being the resource URI as
/// Windows writes it (`.../config` for the root, `.../config/service` below).
fn write_document(node: &Node, uri: &str, w: &mut XmlWriter) {
    w.raw("<cfg:");
    w.raw(node.name);
    w.raw(" xmlns:cfg=\"");
    w.attr_text(uri);
    w.raw("\">");
    match &node.value {
        NodeValue::Leaf(v) => w.text(v),
        NodeValue::Group(children) => children.iter().for_each(|c| c.write(w)),
    }
    w.raw("</cfg:");
    w.raw(node.name);
    w.raw(">");
}

/// Get and Put on the config resource.
pub(crate) fn handle(state: &Arc<State>, req: &SimRequest) -> HandlerResult {
    let uri = req.resource_uri.as_deref().unwrap_or(ns::CONFIG);
    let path = sub_path(uri);
    let cfg = &state.winrm_config;
    let relates = req.message_id.as_deref();
    match req.action.as_str() {
        ns::action::GET => {
            let mut body = XmlWriter::with_capacity(2048);
            cfg.write_at(path, &mut body)?;
            Ok(envelope(ns::action::GET_RESPONSE, relates, |w| {
                w.raw(body.as_str())
            }))
        }
        ns::action::PUT => {
            state.counters.puts.fetch_add(1, Ordering::SeqCst);
            cfg.put_at(path, &req.body)?;
            let mut body = XmlWriter::with_capacity(2048);
            cfg.write_at(path, &mut body)?;
            Ok(envelope(ns::action::PUT_RESPONSE, relates, |w| {
                w.raw(body.as_str())
            }))
        }
        other => Err(SimFault::action_not_supported(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::xml::parse;

    fn doc_of(cfg: &WinRmConfig, path: &str) -> Element {
        let mut w = XmlWriter::default();
        cfg.write_at(path, &mut w).unwrap();
        parse(w.as_str().as_bytes()).unwrap()
    }

    #[test]
    fn defaults_follow_the_sim_config() {
        let sc = SimConfig {
            max_envelope_size_kb: 4096,
            allow_basic: false,
            ..SimConfig::default()
        };
        let cfg = WinRmConfig::new(&sc);
        let doc = doc_of(&cfg, "");
        assert!(doc.is(ns::CONFIG, "Config"));
        assert_eq!(
            doc.child_text(ns::CONFIG, "MaxEnvelopeSizekb"),
            Some("4096")
        );
        assert_eq!(doc.child_text(ns::CONFIG, "MaxTimeoutms"), Some("60000"));
        assert_eq!(
            cfg.value(&["service", "auth", "basic"]).as_deref(),
            Some("false")
        );
        assert_eq!(
            cfg.value(&["Winrs", "MaxShellsPerUser"]).as_deref(),
            Some("30")
        );
        let svc = doc_of(&cfg, "Service");
        assert_eq!(svc.name, "Service");
        assert_eq!(
            svc.ns.as_deref(),
            Some("http://schemas.microsoft.com/wbem/wsman/1/config/service")
        );
        assert!(cfg.write_at("Nope", &mut XmlWriter::default()).is_err());
    }

    #[test]
    fn put_is_validated_and_all_or_nothing() {
        let cfg = WinRmConfig::new(&SimConfig::default());
        let body = |xml: &str| parse(format!("<b>{xml}</b>").as_bytes()).unwrap();
        let ok = body(
            "<c:Config xmlns:c=\"x\"><c:MaxEnvelopeSizekb>8192</c:MaxEnvelopeSizekb><c:Winrs><c:IdleTimeout>60000</c:IdleTimeout></c:Winrs></c:Config>",
        );
        cfg.put_at("", &ok).unwrap();
        assert_eq!(cfg.max_envelope_size_kb(), Some(8192));
        assert_eq!(
            cfg.value(&["Winrs", "IdleTimeout"]).as_deref(),
            Some("60000")
        );
        let bad = body(
            "<Config><MaxEnvelopeSizekb>1</MaxEnvelopeSizekb><MaxTimeoutms>lots</MaxTimeoutms></Config>",
        );
        assert_eq!(cfg.put_at("", &bad).unwrap_err().wsman_code, Some(87));
        assert_eq!(
            cfg.max_envelope_size_kb(),
            Some(8192),
            "a failed Put changes nothing"
        );
        let unknown = body("<Config><Nope>1</Nope></Config>");
        assert!(cfg.put_at("", &unknown).is_err());
        let sub = body("<Service><AllowUnencrypted>false</AllowUnencrypted></Service>");
        cfg.put_at("service", &sub).unwrap();
        assert_eq!(
            cfg.value(&["Service", "AllowUnencrypted"]).as_deref(),
            Some("false")
        );
        assert!(cfg.put_at("", &body("")).is_err());
    }

    #[test]
    fn config_uris() {
        assert!(is_config_uri(ns::CONFIG));
        assert!(is_config_uri(
            "http://schemas.microsoft.com/wbem/wsman/1/config/Winrs"
        ));
        assert!(!is_config_uri(
            "http://schemas.microsoft.com/wbem/wsman/1/configX"
        ));
        assert_eq!(
            sub_path("http://schemas.microsoft.com/wbem/wsman/1/config/Service/Auth/"),
            "Service/Auth"
        );
    }
}
