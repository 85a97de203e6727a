//! The intended differences between this client's WinRS requests and the ones pypsrp and
//! WinRMSharp sent in the recordings (`fixtures/recorded`), each a documented, minimal
//! rewrite for the comparator of `support/compare.rs`. A replay test grants exactly the
//! ones it needs, and fails if it grants one that changes nothing.
//!
//! Include with `#[path = "support/winrs_differences.rs"] mod winrs_differences;` next
//! to `mod compare;`.
#![allow(dead_code)]

use wsman_protocol::ns;
use wsman_protocol::xml::Element;

use crate::compare::{Allowance, Side, body_mut, header_mut, remove_headers, set_attr, walk_mut};

/// Every difference, for review in one place.
pub static INTENDED_DIFFERENCES: &[&Allowance] = &[
    &BOOL_OPTION_CASE,
    &SIGNAL_TERMINATE_AFTER_DONE,
    &CODEPAGE_MUST_COMPLY,
    &SHELL_SCHEMA_ORDER,
    &SHELL_NAME_LIFETIME_UNSUPPORTED,
    &SEND_END_ATTRIBUTE,
    &BAD_COMMAND_ID_OVERRIDE,
    &WINRMSHARP_MUST_UNDERSTAND,
    &EMPTY_OPTION_SET,
    &NO_SESSION_ID,
    &OPTION_SET_MUST_UNDERSTAND,
    &RECEIVE_KEEPALIVE,
    &COMMAND_TIMEOUT_IS_A_DEADLINE,
    &DEFAULT_CODEPAGE_STATED,
];

/// The header differences every WinRMSharp request has.
pub static WINRMSHARP_HEADERS: &[&Allowance] = &[
    &WINRMSHARP_MUST_UNDERSTAND,
    &EMPTY_OPTION_SET,
    &NO_SESSION_ID,
];

pub static BOOL_OPTION_CASE: Allowance = Allowance {
    name: "bool-option-case",
    reason: "pypsrp writes boolean option values as Python prints them (True/False); this \
             client writes TRUE/FALSE as winrs.exe and the MS-WSMV examples do. Windows \
             reads both; only the case of a true/false value is forgiven.",
    side: Side::Recorded,
    apply: upper_bool_options,
};

pub static SIGNAL_TERMINATE_AFTER_DONE: Allowance = Allowance {
    name: "signal-terminate-after-done",
    reason: "after CommandState Done pypsrp signals ctrl_c; MS-WSMV (3.1.4.14, and \
             DESIGN.md 3) says the client sends Signal terminate to release the command, \
             which is what this client sends.",
    side: Side::Recorded,
    apply: ctrl_c_to_terminate,
};

pub static CODEPAGE_MUST_COMPLY: Allowance = Allowance {
    name: "codepage-must-comply",
    reason: "this client sends WINRS_CODEPAGE with MustComply=\"true\" so that a server that \
             cannot honour the code page faults instead of returning output in another \
             page that would then be decoded wrongly; pypsrp leaves MustComply out.",
    side: Side::Recorded,
    apply: codepage_must_comply,
};

pub static DEFAULT_CODEPAGE_STATED: Allowance = Allowance {
    name: "default-codepage-stated",
    reason: "a shell opened without a code page is created with WINRS_CODEPAGE 437 stated \
             (MustComply), as pywinrm does: the text helpers decode with 437, so the host \
             must not pick its own OEM page (866, 932, ...), which the client cannot know; \
             the recorded client left the option out. Only a Create without the option \
             is rewritten.",
    side: Side::Recorded,
    apply: state_default_codepage,
};

pub static SHELL_SCHEMA_ORDER: Allowance = Allowance {
    name: "shell-schema-order",
    reason: "pypsrp writes rsp:InputStreams/OutputStreams before Environment, IdleTimeOut \
             and WorkingDirectory; rsp:Shell is an xs:sequence (MS-WSMV 2.2.4.37) in which \
             they come after, the order this client writes and Windows' own responses use. \
             The recorded children are put in schema order, so ours must be in it.",
    side: Side::Recorded,
    apply: shell_schema_order,
};

pub static SHELL_NAME_LIFETIME_UNSUPPORTED: Allowance = Allowance {
    name: "shell-name-lifetime-unsupported",
    reason: "known gap, not a choice: ShellBuilder has no setter for rsp:Name or \
             rsp:Lifetime, so those two recorded elements are dropped; IdleTimeOut and \
             WorkingDirectory of the same request are still compared.",
    side: Side::Recorded,
    apply: drop_name_lifetime,
};

pub static SEND_END_ATTRIBUTE: Allowance = Allowance {
    name: "send-end-attribute",
    reason: "rsp:Stream/@End is an xs:boolean defaulting to false; this client writes it \
             only on the last chunk, as End=\"true\"; pypsrp writes End=\"False\"/\"True\" \
             and WinRMSharp End=\"false\" on every chunk.",
    side: Side::Recorded,
    apply: canonical_send_end,
};

pub static BAD_COMMAND_ID_OVERRIDE: Allowance = Allowance {
    name: "bad-command-id-override",
    reason: "pypsrp polled a random CommandId on purpose (its harness override patches it); \
             the public Command API only polls its own command, so the recorded Receive is \
             compared with the CommandId of the recorded CommandResponse; the fault that \
             answers it is replayed unchanged.",
    side: Side::Recorded,
    apply: bad_command_id,
};

pub static WINRMSHARP_MUST_UNDERSTAND: Allowance = Allowance {
    name: "winrmsharp-must-understand",
    reason: "WinRMSharp's serializer puts mustUnderstand unqualified or in the addressing \
             namespace; the SOAP 1.2 attribute is s:mustUnderstand, which this client \
             writes. Values are still compared.",
    side: Side::Recorded,
    apply: must_understand_to_soap,
};

pub static EMPTY_OPTION_SET: Allowance = Allowance {
    name: "empty-option-set",
    reason: "WinRMSharp sends an empty w:OptionSet when it has no options; this client \
             leaves the header out, which means the same.",
    side: Side::Recorded,
    apply: drop_empty_option_set,
};

pub static NO_SESSION_ID: Allowance = Allowance {
    name: "no-session-id",
    reason: "WinRMSharp sends no SessionId; this client sends the optional \
             p:SessionId (mustUnderstand=false) on every request, as pypsrp and winrs do.",
    side: Side::Captured,
    apply: drop_session_id,
};

pub static OPTION_SET_MUST_UNDERSTAND: Allowance = Allowance {
    name: "option-set-must-understand",
    reason: "this client marks a non-empty w:OptionSet s:mustUnderstand=\"true\" (as pypsrp \
             does) so options are never silently ignored; WinRMSharp leaves it unmarked.",
    side: Side::Recorded,
    apply: option_set_must_understand,
};

pub static RECEIVE_KEEPALIVE: Allowance = Allowance {
    name: "receive-keepalive",
    reason: "this client's Receive carries WSMAN_CMDSHELL_OPTION_KEEPALIVE=TRUE (as winrs \
             and pypsrp do) so a long poll keeps the shell alive; WinRMSharp sends no \
             options on Receive. Only an OptionSet holding exactly that option is removed.",
    side: Side::Captured,
    apply: drop_keepalive,
};

pub static COMMAND_TIMEOUT_IS_A_DEADLINE: Allowance = Allowance {
    name: "command-timeout-is-a-deadline",
    reason: "WinRMSharp sends its command timeout (15 s) as the OperationTimeout of Command \
             and Receive; this client keeps one OperationTimeout per client (5 s, as \
             recorded elsewhere) and expresses the command timeout as .deadline(), never \
             confusing the long-poll timeout with the whole command's (DESIGN.md 1).",
    side: Side::Recorded,
    apply: operation_timeout_15_to_5,
};

// ---- the rewrites ----------------------------------------------------------------

fn options_mut(root: &mut Element) -> impl Iterator<Item = &mut Element> {
    header_mut(root)
        .into_iter()
        .flat_map(|h| h.children.iter_mut())
        .filter(|c| c.is(ns::WSMAN, "OptionSet"))
        .flat_map(|set| set.children.iter_mut())
        .filter(|o| o.is(ns::WSMAN, "Option"))
}

fn upper_bool_options(root: &mut Element) -> bool {
    let mut changed = false;
    for o in options_mut(root) {
        let t = o.text.trim();
        let is_bool = t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false");
        if is_bool && t != t.to_ascii_uppercase() {
            o.text = t.to_ascii_uppercase();
            changed = true;
        }
    }
    changed
}

fn codepage_must_comply(root: &mut Element) -> bool {
    let mut changed = false;
    for o in options_mut(root) {
        if o.attr("Name") == Some("WINRS_CODEPAGE") {
            changed |= set_attr(o, None, "MustComply", "true");
        }
    }
    changed
}

fn state_default_codepage(root: &mut Element) -> bool {
    let is_create = root
        .children
        .iter()
        .find(|c| c.is(ns::SOAP, "Body"))
        .is_some_and(|b| b.children.iter().any(|c| c.is(ns::SHELL, "Shell")));
    if !is_create || options_mut(root).any(|o| o.attr("Name") == Some("WINRS_CODEPAGE")) {
        return false;
    }
    let option = format!(
        r#"<w:Option xmlns:w="{}" Name="WINRS_CODEPAGE" MustComply="true">437</w:Option>"#,
        ns::WSMAN
    );
    let option = wsman_protocol::xml::parse(option.as_bytes()).expect("a well-formed option");
    let Some(header) = header_mut(root) else {
        return false;
    };
    if let Some(set) = header
        .children
        .iter_mut()
        .find(|c| c.is(ns::WSMAN, "OptionSet"))
    {
        set.children.push(option);
    } else {
        let set = format!(
            r#"<w:OptionSet xmlns:w="{}" xmlns:s="{}" s:mustUnderstand="true"/>"#,
            ns::WSMAN,
            ns::SOAP
        );
        let mut set = wsman_protocol::xml::parse(set.as_bytes()).expect("a well-formed set");
        set.children.push(option);
        header.children.push(set);
    }
    true
}

fn ctrl_c_to_terminate(root: &mut Element) -> bool {
    let Some(body) = body_mut(root) else {
        return false;
    };
    let mut changed = false;
    for sig in body
        .children
        .iter_mut()
        .filter(|c| c.is(ns::SHELL, "Signal"))
    {
        for code in sig.children.iter_mut().filter(|c| c.is(ns::SHELL, "Code")) {
            if code.text.trim() == ns::signal::CTRL_C {
                code.text = ns::signal::TERMINATE.to_string();
                changed = true;
            }
        }
    }
    changed
}

/// MS-WSMV 2.2.4.37, the xs:sequence of rsp:Shell.
const SHELL_SEQUENCE: &[&str] = &[
    "ShellId",
    "Name",
    "ResourceUri",
    "Owner",
    "ClientIP",
    "ProcessId",
    "Environment",
    "WorkingDirectory",
    "Lifetime",
    "IdleTimeOut",
    "InputStreams",
    "OutputStreams",
    "MaxIdleTimeOut",
    "Locale",
    "DataLocale",
    "CompressionMode",
    "ProfileLoaded",
    "Encoding",
    "BufferMode",
    "State",
    "ShellRunTime",
    "ShellInactivity",
];

fn shell_schema_order(root: &mut Element) -> bool {
    let Some(body) = body_mut(root) else {
        return false;
    };
    let mut changed = false;
    for shell in body
        .children
        .iter_mut()
        .filter(|c| c.is(ns::SHELL, "Shell"))
    {
        let rank = |e: &Element| {
            let known = e.ns.as_deref() == Some(ns::SHELL);
            let pos = SHELL_SEQUENCE.iter().position(|n| *n == e.name);
            // Unknown elements (the open content model) keep their place at the end.
            if known {
                pos.unwrap_or(SHELL_SEQUENCE.len())
            } else {
                SHELL_SEQUENCE.len()
            }
        };
        let before: Vec<String> = shell.children.iter().map(|c| c.name.clone()).collect();
        shell.children.sort_by_key(|c| rank(c));
        changed |= shell.children.iter().map(|c| &c.name).ne(before.iter());
    }
    changed
}

fn drop_name_lifetime(root: &mut Element) -> bool {
    let Some(body) = body_mut(root) else {
        return false;
    };
    let mut changed = false;
    for shell in body
        .children
        .iter_mut()
        .filter(|c| c.is(ns::SHELL, "Shell"))
    {
        let before = shell.children.len();
        shell
            .children
            .retain(|c| !(c.is(ns::SHELL, "Name") || c.is(ns::SHELL, "Lifetime")));
        changed |= shell.children.len() != before;
    }
    changed
}

fn canonical_send_end(root: &mut Element) -> bool {
    let Some(body) = body_mut(root) else {
        return false;
    };
    let mut changed = false;
    for send in body.children.iter_mut().filter(|c| c.is(ns::SHELL, "Send")) {
        for stream in send
            .children
            .iter_mut()
            .filter(|c| c.is(ns::SHELL, "Stream"))
        {
            let before = stream.attrs.clone();
            stream.attrs.retain(|a| {
                !(a.ns.is_none() && a.name == "End" && a.value.eq_ignore_ascii_case("false"))
            });
            for a in stream
                .attrs
                .iter_mut()
                .filter(|a| a.ns.is_none() && a.name == "End")
            {
                if a.value.eq_ignore_ascii_case("true") {
                    a.value = "true".to_string();
                }
            }
            changed |= stream.attrs != before;
        }
    }
    changed
}

fn bad_command_id(root: &mut Element) -> bool {
    const POLLED: &str = "87E77BEB-6761-4C48-9D70-A00266B8459A";
    const STARTED: &str = "644983A8-4292-4922-97E9-D569C2170784";
    let Some(body) = body_mut(root) else {
        return false;
    };
    let mut changed = false;
    for recv in body
        .children
        .iter_mut()
        .filter(|c| c.is(ns::SHELL, "Receive"))
    {
        for ds in recv
            .children
            .iter_mut()
            .filter(|c| c.is(ns::SHELL, "DesiredStream"))
        {
            if ds.attr("CommandId") == Some(POLLED) {
                changed |= set_attr(ds, None, "CommandId", STARTED);
            }
        }
    }
    changed
}

fn must_understand_to_soap(root: &mut Element) -> bool {
    let Some(h) = header_mut(root) else {
        return false;
    };
    walk_mut(h, &mut |el| {
        let mut changed = false;
        for a in el.attrs.iter_mut().filter(|a| a.name == "mustUnderstand") {
            if a.ns.as_deref() != Some(ns::SOAP) {
                a.ns = Some(std::borrow::Cow::Borrowed(ns::SOAP));
                changed = true;
            }
        }
        changed
    })
}

fn drop_empty_option_set(root: &mut Element) -> bool {
    remove_headers(root, |c| {
        c.is(ns::WSMAN, "OptionSet") && c.children.is_empty()
    })
}

fn drop_session_id(root: &mut Element) -> bool {
    remove_headers(root, |c| c.is(ns::WSMV, "SessionId"))
}

fn option_set_must_understand(root: &mut Element) -> bool {
    let Some(h) = header_mut(root) else {
        return false;
    };
    let mut changed = false;
    for set in h
        .children
        .iter_mut()
        .filter(|c| c.is(ns::WSMAN, "OptionSet") && !c.children.is_empty())
    {
        changed |= set_attr(set, Some(ns::SOAP), "mustUnderstand", "true");
    }
    changed
}

fn drop_keepalive(root: &mut Element) -> bool {
    let is_receive = root
        .child(ns::SOAP, "Body")
        .is_some_and(|b| b.child(ns::SHELL, "Receive").is_some());
    is_receive
        && remove_headers(root, |c| {
            c.is(ns::WSMAN, "OptionSet")
                && c.children.len() == 1
                && c.children[0].attr("Name") == Some("WSMAN_CMDSHELL_OPTION_KEEPALIVE")
                && c.children[0].text.trim() == "TRUE"
        })
}

fn operation_timeout_15_to_5(root: &mut Element) -> bool {
    let Some(h) = header_mut(root) else {
        return false;
    };
    let mut changed = false;
    for t in h
        .children
        .iter_mut()
        .filter(|c| c.is(ns::WSMAN, "OperationTimeout"))
    {
        if t.text.trim() == "PT15S" {
            t.text = "PT5S".to_string();
            changed = true;
        }
    }
    changed
}
