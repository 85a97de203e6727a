//! The request comparator of the replay tests: is a request this client sent equivalent
//! to one a recorded client sent to a real Windows host?
//!
//! [`equivalent`] compares headers as a set and bodies in structure, attributes and text,
//! ignoring per-run values (ids, the endpoint address). [`equivalent_with`] additionally
//! takes [`Allowance`]s: documented, intended differences between this client and the
//! recorded one, each a small rewrite of one side's parsed tree. An allowance reports
//! whether it changed anything, so a test can insist that every allowance it grants is
//! actually needed.
//!
//! Include with `#[path = "support/compare.rs"] mod compare;`.
#![allow(dead_code)]

use std::collections::BTreeMap;

use wsman_protocol::ns;
use wsman_protocol::xml::{Element, parse};

/// Headers whose values change from run to run (ids, the endpoint address): both sides
/// must have them, or both lack them, but their content is not compared.
pub const PER_RUN_HEADERS: &[(&str, &str)] = &[
    (ns::ADDRESSING, "MessageID"),
    (ns::WSMV, "SessionId"),
    (ns::ADDRESSING, "To"),
];

/// Headers a recorded client adds optionally and this client does not (or the reverse),
/// per origin. Empty on purpose: for the exchanges replayed by `tests/replay.rs` this
/// client sends exactly the header set pypsrp sends (Action, To, ReplyTo, MessageID,
/// ResourceURI, OperationTimeout, MaxEnvelopeSize, Locale, DataLocale, SessionId,
/// SelectorSet), and WinRMSharp's Identify has an empty header like ours. WinRMSharp's
/// other requests differ in ways `tests/replay_winrs.rs` states as [`Allowance`]s.
pub const OPTIONAL_HEADERS: &[(&str, &str, &str)] = &[];

/// This client's Robust Connections headers ([MS-WSMV] §3.1.4.1.39), which the recorded
/// clients do not send: `p:OperationID` (a `uuid:` value, `s:mustUnderstand="false"` on
/// a first transmission) and `p:SequenceId` 1. Checked for their form, then removed from
/// the captured request before the comparison, with the Receive's `SequenceId`
/// attribute.
fn strip_robust_headers(root: &mut Element) -> Result<(), String> {
    let Some(header) = root.children.iter_mut().find(|c| c.is(ns::SOAP, "Header")) else {
        return Ok(());
    };
    let op = header.child(ns::WSMV, "OperationID");
    match op {
        None => return Ok(()),
        Some(op) => {
            if !op.text.trim().starts_with("uuid:") || op.text.trim().len() != 41 {
                return Err(format!("p:OperationID {:?} is not a uuid: value", op.text));
            }
            if op.attr_ns(ns::SOAP, "mustUnderstand") != Some("false") {
                return Err(
                    "a first transmission's p:OperationID says mustUnderstand=false".into(),
                );
            }
        }
    }
    if header.child_text(ns::WSMV, "SequenceId").map(str::trim) != Some("1") {
        return Err("p:SequenceId 1 must go with p:OperationID".into());
    }
    header
        .children
        .retain(|c| !(c.is(ns::WSMV, "OperationID") || c.is(ns::WSMV, "SequenceId")));
    // The Receive's SequenceId attribute (0, 1, 2, ... as Windows' clients send it,
    // [MS-WSMV] §3.1.4.14's example); pypsrp sends none.
    if let Some(receive) = root
        .children
        .iter_mut()
        .find(|c| c.is(ns::SOAP, "Body"))
        .and_then(|b| b.children.iter_mut().find(|c| c.is(ns::SHELL, "Receive")))
    {
        if let Some(seq) = receive.attr("SequenceId")
            && seq.parse::<u64>().is_err()
        {
            return Err(format!("Receive SequenceId {seq:?} is not a number"));
        }
        receive
            .attrs
            .retain(|a| !(a.ns.is_none() && a.name == "SequenceId"));
    }
    Ok(())
}

/// Which request an [`Allowance`] rewrites before the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The request this client sent.
    Captured,
    /// The recorded request (rewritten into what this client intends to send).
    Recorded,
}

/// A documented, intended difference between this client's request and a recorded one.
#[derive(Debug)]
pub struct Allowance {
    /// A short unique name, used in reports.
    pub name: &'static str,
    /// Why this client differs (with the spec or the behaviour it follows).
    pub reason: &'static str,
    /// Which side is rewritten.
    pub side: Side,
    /// Rewrites the envelope in place; returns true if it changed anything.
    pub apply: fn(&mut Element) -> bool,
}

/// A canonical text form of an element: namespace, local name, attributes sorted by
/// (namespace, name), text (trimmed when `trim`, else exact unless whitespace only), and
/// children in document order.
pub fn canonical(el: &Element, trim: bool) -> String {
    let mut attrs: Vec<String> = el
        .attrs
        .iter()
        .map(|a| {
            format!(
                "{{{}}}{}={:?}",
                a.ns.as_deref().unwrap_or(""),
                a.name,
                a.value
            )
        })
        .collect();
    attrs.sort();
    let text = if trim || el.text.trim().is_empty() {
        el.text.trim()
    } else {
        el.text.as_str()
    };
    let children: Vec<String> = el.children.iter().map(|c| canonical(c, trim)).collect();
    format!(
        "<{} [{}] {:?} ({})>",
        el.describe(),
        attrs.join(" "),
        text,
        children.join(", ")
    )
}

fn key(el: &Element) -> (String, String) {
    (el.ns.as_deref().unwrap_or("").to_string(), el.name.clone())
}

fn is_in(list: &[(&str, &str)], el: &Element) -> bool {
    list.iter().any(|(n, l)| el.is(n, l))
}

/// Semantic equivalence of a captured request with a recorded one:
/// - the roots are both `s:Envelope`;
/// - the headers, as a set (order ignored), are equal: each header compared as its whole
///   canonical subtree (namespace, local name, every attribute, trimmed text, children),
///   except that [`PER_RUN_HEADERS`] are only checked for presence and
///   [`OPTIONAL_HEADERS`] of `origin` are left out on both sides;
/// - the bodies are equal in structure, attributes and text (whitespace-only text aside).
pub fn equivalent(origin: &str, captured: &str, recorded: &str) -> Result<(), String> {
    equivalent_with(origin, captured, recorded, &[]).map(|_| ())
}

/// [`equivalent`] after applying `allowances` to their sides. Returns the names of the
/// allowances that changed something.
pub fn equivalent_with(
    origin: &str,
    captured: &str,
    recorded: &str,
    allowances: &[&Allowance],
) -> Result<Vec<&'static str>, String> {
    let mut ours =
        parse(captured.as_bytes()).map_err(|e| format!("captured request does not parse: {e}"))?;
    let mut theirs =
        parse(recorded.as_bytes()).map_err(|e| format!("recorded request does not parse: {e}"))?;
    for (what, root) in [("captured", &ours), ("recorded", &theirs)] {
        if !root.is(ns::SOAP, "Envelope") {
            return Err(format!("{what} root is {}", root.describe()));
        }
    }
    strip_robust_headers(&mut ours)?;
    let mut used = Vec::new();
    for a in allowances {
        let tree = match a.side {
            Side::Captured => &mut ours,
            Side::Recorded => &mut theirs,
        };
        if (a.apply)(tree) {
            used.push(a.name);
        }
    }
    let optional: Vec<(&str, &str)> = OPTIONAL_HEADERS
        .iter()
        .filter(|(o, _, _)| *o == origin)
        .map(|(_, n, l)| (*n, *l))
        .collect();
    let headers = |root: &Element| -> BTreeMap<String, usize> {
        let mut set = BTreeMap::new();
        if let Some(h) = root.child(ns::SOAP, "Header") {
            for c in h.children.iter().filter(|c| !is_in(&optional, c)) {
                let form = if is_in(PER_RUN_HEADERS, c) {
                    let (n, l) = key(c);
                    format!("{{{n}}}{l} (per-run value)")
                } else {
                    canonical(c, true)
                };
                *set.entry(form).or_insert(0) += 1;
            }
        }
        set
    };
    let (h_ours, h_theirs) = (headers(&ours), headers(&theirs));
    if h_ours != h_theirs {
        let only_ours: Vec<_> = h_ours
            .keys()
            .filter(|k| h_ours.get(*k) != h_theirs.get(*k))
            .collect();
        let only_theirs: Vec<_> = h_theirs
            .keys()
            .filter(|k| h_ours.get(*k) != h_theirs.get(*k))
            .collect();
        return Err(format!(
            "headers differ:\n  captured only: {only_ours:#?}\n  recorded only: {only_theirs:#?}"
        ));
    }
    let body = |root: &Element| root.child(ns::SOAP, "Body").map(|b| canonical(b, false));
    let (b_ours, b_theirs) = (body(&ours), body(&theirs));
    if b_ours != b_theirs {
        return Err(format!(
            "bodies differ:\n  captured: {b_ours:?}\n  recorded: {b_theirs:?}"
        ));
    }
    Ok(used)
}

// ---- helpers for writing allowances ----------------------------------------------

/// The `s:Header` of an envelope.
pub fn header_mut(root: &mut Element) -> Option<&mut Element> {
    root.children.iter_mut().find(|c| c.is(ns::SOAP, "Header"))
}

/// The `s:Body` of an envelope.
pub fn body_mut(root: &mut Element) -> Option<&mut Element> {
    root.children.iter_mut().find(|c| c.is(ns::SOAP, "Body"))
}

/// The `wsa:Action` of an envelope.
pub fn action(root: &Element) -> Option<&str> {
    root.child(ns::SOAP, "Header")
        .and_then(|h| h.child_text(ns::ADDRESSING, "Action"))
        .map(str::trim)
}

/// Calls `f` on `el` and every descendant; true if any call returned true.
pub fn walk_mut(el: &mut Element, f: &mut dyn FnMut(&mut Element) -> bool) -> bool {
    let mut changed = f(el);
    for c in &mut el.children {
        changed |= walk_mut(c, f);
    }
    changed
}

/// Removes the header children for which `pred` holds; true if any was removed.
pub fn remove_headers(root: &mut Element, pred: impl Fn(&Element) -> bool) -> bool {
    let Some(h) = header_mut(root) else {
        return false;
    };
    let before = h.children.len();
    h.children.retain(|c| !pred(c));
    h.children.len() != before
}

/// Sets `name` (namespace `ns`, None for unqualified) to `value` on `el`, adding it if
/// missing; true if anything changed.
pub fn set_attr(el: &mut Element, attr_ns: Option<&str>, name: &str, value: &str) -> bool {
    if let Some(a) = el
        .attrs
        .iter_mut()
        .find(|a| a.name == name && a.ns.as_deref() == attr_ns)
    {
        if a.value == value {
            return false;
        }
        a.value = value.to_string();
        return true;
    }
    el.attrs.push(wsman_protocol::xml::Attr {
        ns: attr_ns.map(|n| std::borrow::Cow::Owned(n.to_string())),
        name: name.to_string(),
        value: value.to_string(),
    });
    true
}
