//! The intended differences between this client's PowerShell Remoting requests and the
//! ones pypsrp sent in `fixtures/psrp/`, as rewrites for `support/compare.rs`, and the
//! reader that turns PSRP payloads (base64 fragments in `creationXml`,
//! `rsp:Arguments` and `rsp:Stream`) into comparable text.
//!
//! Include with `#[path = "support/psrp_differences.rs"] mod psrp_differences;` next to
//! `mod compare;`.
#![allow(dead_code)]

use base64::Engine as _;
use bytes::Bytes;
use wsman_protocol::ns;
use wsman_protocol::psrp::messages::{ClientMessage, HostInfo};
use wsman_protocol::psrp::{Fragment, Message};
use wsman_protocol::xml::Element;

use crate::compare::{Allowance, Side, header_mut, walk_mut};

const PS_NS: &str = "http://schemas.microsoft.com/powershell";

pub static PSRP_PAYLOADS_RECORDED: Allowance = Allowance {
    name: "psrp-payloads-recorded",
    reason: "PSRP payloads carry per-run runspace pool and pipeline ids: both sides' \
             payloads are compared as their decoded messages (object id, fragment flags, \
             destination, type, whether a pipeline id is set, and the typed body), ids \
             aside.",
    side: Side::Recorded,
    apply: |root| decode_payloads(root, false),
};

pub static PSRP_PAYLOADS_OURS: Allowance = Allowance {
    name: "psrp-payloads-ours",
    reason: "as psrp-payloads-recorded, on this client's side; and this client announces a \
             host with a UI in INIT_RUNSPACEPOOL and CREATE_PIPELINE (HostInfo \
             _isHostNull/_isHostUINull false) so that Read-Host and Get-Credential come to \
             its PsHost and get a clear answer, where pypsrp announces the host it was \
             given (none, or one without a UI): HostInfo is not compared.",
    side: Side::Captured,
    apply: |root| decode_payloads(root, true),
};

pub static PSRP_IDS_RECORDED: Allowance = Allowance {
    name: "psrp-ids-recorded",
    reason: "the ShellId of rsp:Shell and the CommandId of rsp:CommandLine are the pool's \
             and the pipeline's fresh ids (Windows echoes them); not compared.",
    side: Side::Recorded,
    apply: blank_ids,
};

pub static PSRP_IDS_OURS: Allowance = Allowance {
    name: "psrp-ids-ours",
    reason: "as psrp-ids-recorded, on this client's side.",
    side: Side::Captured,
    apply: blank_ids,
};

pub static MAX_ENVELOPE_SIZE_RAISED: Allowance = Allowance {
    name: "max-envelope-size-raised",
    reason: "after opening a pool pypsrp raises its MaxEnvelopeSize to the server's \
             (512000 read from the WS-Management configuration); this client keeps the one \
             it was built with (153600 by default) for every request.",
    side: Side::Recorded,
    apply: envelope_153600,
};

fn blank_ids(root: &mut Element) -> bool {
    walk_mut(root, &mut |el| {
        let attr = if el.is(ns::SHELL, "Shell") {
            "ShellId"
        } else if el.is(ns::SHELL, "CommandLine") {
            "CommandId"
        } else {
            return false;
        };
        let mut changed = false;
        for a in el.attrs.iter_mut() {
            if a.ns.is_none() && a.name == attr && a.value != "(id)" {
                a.value = "(id)".into();
                changed = true;
            }
        }
        changed
    })
}

fn envelope_153600(root: &mut Element) -> bool {
    let Some(h) = header_mut(root) else {
        return false;
    };
    let mut changed = false;
    for c in h.children.iter_mut() {
        if c.is(ns::WSMAN, "MaxEnvelopeSize") && c.text.trim() != "153600" {
            c.text = "153600".into();
            changed = true;
        }
    }
    changed
}

fn decode_payloads(root: &mut Element, ours: bool) -> bool {
    walk_mut(root, &mut |el| {
        let payload = el.is(PS_NS, "creationXml")
            || el.is(PS_NS, "connectXml")
            || el.is(ns::SHELL, "Arguments")
            || el.is(ns::SHELL, "Stream");
        if !payload {
            return false;
        }
        let text = el.text.trim();
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(text) else {
            return false;
        };
        el.text = describe(&bytes, ours);
        true
    })
}

/// The fragments of one payload as text: whole messages decoded, partial fragments by
/// their numbers only.
pub fn describe(payload: &[u8], ours: bool) -> String {
    let fragments = match Fragment::decode_all(&Bytes::copy_from_slice(payload)) {
        Ok(f) => f,
        Err(e) => return format!("(not PSRP fragments: {e})"),
    };
    let mut out = Vec::new();
    for f in fragments {
        if !(f.start && f.end) {
            out.push(format!(
                "object {} fragment {} start={} end={}",
                f.object_id, f.fragment_id, f.start, f.end
            ));
            continue;
        }
        let m = match Message::decode(f.blob.clone()) {
            Ok(m) => m,
            Err(e) => {
                out.push(format!("object {}: (not a message: {e})", f.object_id));
                continue;
            }
        };
        let body = match ClientMessage::decode(&m) {
            Ok(mut c) => {
                // HostInfo is what each client announces of its own host: not compared
                // (see psrp-payloads-ours).
                let _ = ours;
                normalize_host(&mut c);
                format!("{c:?}")
            }
            Err(e) => format!("(undecodable: {e})"),
        };
        out.push(format!(
            "object {} {:?} {:?} pipeline={} {body}",
            f.object_id,
            m.destination,
            m.message_type,
            m.pipeline_id.is_some()
        ));
    }
    out.join("; ")
}

fn normalize_host(c: &mut ClientMessage) {
    match c {
        ClientMessage::InitRunspacePool(i) => i.host_info = HostInfo::none(),
        ClientMessage::CreatePipeline(p) => p.host_info = HostInfo::none(),
        _ => {}
    }
}
