//! Bad input for the response reader, as property tests: random bytes, and the real
//! recorded responses truncated, mutated, or with XML-ish fragments spliced in, fed to
//! `soap::xml::parse`, `Fault`, `Instance`, `Value`, `EndpointReference`,
//! `IdentifyResponse` and `from_instance`. Never a panic: a value or a typed error.
//! Plus the hostile shapes: deep nesting, huge attribute and namespace counts.

#[path = "support/recorded.rs"]
mod recorded;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::Index;
use tokio_winrm::{EndpointReference, IdentifyResponse, Instance, Value, from_instance};
use wsman_protocol::Fault;
use wsman_protocol::xml::{Element, MAX_ATTRIBUTES, MAX_DEPTH, ParseError, parse};

/// Every recorded response and request (requests are WS-Man XML too).
fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut v = Vec::new();
        for rec in recorded::all() {
            for ex in rec.exchanges {
                v.push(ex.response.into_bytes());
                if !ex.request.is_empty() {
                    v.push(ex.request.into_bytes());
                }
            }
        }
        v
    })
}

/// Runs every reader on every element of the tree.
fn read_everything(el: &Element) {
    let _ = Fault::from_fault_element(el);
    let _ = IdentifyResponse::from_body(el).map(|r| r.stack_version().map(str::len));
    let _ = EndpointReference::from_element(el);
    let v = Value::from_element(el);
    let _ = (
        v.as_bool(),
        v.as_i64(),
        v.as_u64(),
        v.as_f64(),
        v.as_datetime(),
        v.as_slice().len(),
    );
    let inst = Instance::from_element(el);
    let _ = from_instance::<serde_json::Value>(&inst);
    let _ = from_instance::<std::collections::HashMap<String, String>>(&inst);
    for c in &el.children {
        read_everything(c);
    }
}

/// Feeds `bytes` to the reader: Ok or a typed error whose message renders.
fn exercise(bytes: &[u8]) {
    match parse(bytes) {
        Ok(root) => {
            if let Some(f) = Fault::from_envelope(&root) {
                let _ = (
                    f.to_string(),
                    f.is_gone(),
                    f.is_quota(),
                    f.is_timed_out(),
                    f.meaning(),
                );
            }
            read_everything(&root);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// XML-ish fragments that reach the reader's corners faster than random bytes do.
const FRAGMENTS: &[&str] = &[
    "<",
    ">",
    "/>",
    "</",
    "&",
    "&amp;",
    "&#x0;",
    "&#xD800;",
    "&#99999999;",
    "&bogus;",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "<?xml version=\"1.0\"?>",
    "<!DOCTYPE x>",
    "\"",
    "'",
    "=",
    "xmlns=\"\"",
    " xmlns:s=\"urn:other\"",
    " xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"",
    "</s:Body>",
    "<s:Fault>",
    "<f:WSManFault Code=\"-1\">",
    "Code=\"0xFFFFFFFFFF\"",
    " xsi:nil=\"true\"",
    "<cim:Datetime>9999-99-99T99:99:99.9999999999+99:99</cim:Datetime>",
    "<cim:Interval>P999999999999W999999999999W999999999999W</cim:Interval>",
    "\u{feff}",
    "\0",
    "\u{10ffff}",
    "é",
    "\r\n",
    "a:b:c",
    ":",
    "<a:Address>",
    "<w:ResourceURI>",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise(&bytes);
    }

    #[test]
    fn random_text_with_markup(parts in proptest::collection::vec(
        prop_oneof![proptest::sample::select(FRAGMENTS).prop_map(str::to_string), "[a-zA-Z:= ]{0,8}"],
        0..64,
    )) {
        exercise(parts.concat().as_bytes());
    }

    #[test]
    fn truncated_responses(which in any::<Index>(), at in any::<Index>()) {
        let doc = which.get(corpus());
        let cut = at.index(doc.len() + 1);
        exercise(&doc[..cut]);
    }

    #[test]
    fn mutated_responses(
        which in any::<Index>(),
        edits in proptest::collection::vec((any::<Index>(), any::<u8>(), 0..3u8), 1..16),
    ) {
        let mut doc = which.get(corpus()).clone();
        for (at, byte, op) in edits {
            match op {
                0 if !doc.is_empty() => {
                    let i = at.index(doc.len());
                    doc[i] = byte;
                }
                1 => {
                    let i = at.index(doc.len() + 1);
                    doc.insert(i, byte);
                }
                _ if !doc.is_empty() => {
                    let i = at.index(doc.len());
                    doc.remove(i);
                }
                _ => {}
            }
        }
        exercise(&doc);
    }

    #[test]
    fn responses_with_spliced_fragments(
        which in any::<Index>(),
        splices in proptest::collection::vec((any::<Index>(), proptest::sample::select(FRAGMENTS)), 1..8),
    ) {
        let mut doc = which.get(corpus()).clone();
        for (at, frag) in splices {
            let i = at.index(doc.len() + 1);
            doc.splice(i..i, frag.bytes());
        }
        exercise(&doc);
    }
}

/// Runs `f` and fails if it takes longer than `limit` (hostile input must stay cheap).
fn quick<T>(limit: Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    assert!(start.elapsed() < limit, "took {:?}", start.elapsed());
    out
}

#[test]
fn deep_nesting_is_refused_without_exhausting_the_stack() {
    for depth in [MAX_DEPTH + 1, 10_000, 1_000_000] {
        let doc = "<a>".repeat(depth) + &"</a>".repeat(depth);
        let r = quick(Duration::from_secs(5), || parse(doc.as_bytes()));
        assert_eq!(r.unwrap_err(), ParseError::TooDeep, "depth {depth}");
        // Unclosed, too.
        assert_eq!(
            parse("<a>".repeat(depth).as_bytes()).unwrap_err(),
            ParseError::TooDeep
        );
    }
    // At the limit it parses, and every reader walks it.
    let env = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="5"><f:Message>"#;
    let close = "</f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>";
    let inner = MAX_DEPTH - 6;
    let doc = format!(
        "{env}{}deep{}{close}",
        "<f:ProviderFault>".repeat(inner),
        "</f:ProviderFault>".repeat(inner)
    );
    let root = parse(doc.as_bytes()).unwrap();
    let f = Fault::from_envelope(&root).unwrap();
    assert_eq!(f.code(), Some(5));
    exercise(doc.as_bytes());
}

#[test]
fn huge_attribute_counts_are_refused_quickly() {
    for n in [MAX_ATTRIBUTES + 1, 50_000, 400_000] {
        let attrs: String = (0..n).map(|i| format!(" a{i}=\"v\"")).collect();
        let doc = format!("<r{attrs}/>");
        let r = quick(Duration::from_secs(5), || parse(doc.as_bytes()));
        assert!(
            matches!(r, Err(ParseError::Syntax { .. })),
            "{n} attributes: {r:?}"
        );
    }
    // Duplicates are an error, not a silent overwrite.
    assert!(matches!(
        parse(br#"<r a="1" a="2"/>"#),
        Err(ParseError::Syntax { .. })
    ));
    // Many namespace declarations, and many elements resolving against them.
    for n in [300, 50_000] {
        let decls: String = (0..n).map(|i| format!(" xmlns:p{i}=\"urn:{i}\"")).collect();
        let uses: String = (0..n).map(|i| format!("<p{i}:x/>")).collect();
        let doc = format!("<r{decls}>{uses}</r>");
        let r = quick(Duration::from_secs(5), || parse(doc.as_bytes()));
        assert!(
            matches!(r, Err(ParseError::Syntax { .. })),
            "{n} declarations: {r:?}"
        );
    }
    // A wide but legitimate document (many siblings, each with its own declarations,
    // as enumeration pages are) still parses.
    let item = r#"<p:Item xmlns:p="urn:item" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" a="1" b="2"><p:Name>x</p:Name></p:Item>"#;
    let doc = format!("<r>{}</r>", item.repeat(20_000));
    let root = quick(Duration::from_secs(10), || parse(doc.as_bytes())).unwrap();
    assert_eq!(root.children.len(), 20_000);
}

#[test]
fn huge_text_and_many_siblings_stay_linear() {
    let doc = format!("<a>{}</a>", "x&amp;".repeat(500_000));
    let root = quick(Duration::from_secs(5), || parse(doc.as_bytes())).unwrap();
    assert_eq!(root.text.len(), 1_000_000);
    let props: String = (0..50_000)
        .map(|i| format!("<p:P{}>{i}</p:P{}>", i % 3, i % 3))
        .collect();
    let doc = format!(r#"<p:C xmlns:p="urn:c">{props}</p:C>"#);
    let inst = quick(Duration::from_secs(10), || {
        Instance::from_element(&parse(doc.as_bytes()).unwrap())
    });
    assert_eq!(
        inst.properties.len(),
        50_000,
        "non-adjacent repeats stay separate properties"
    );
}

#[test]
fn hostile_values_are_values_not_panics() {
    let w = "999999999999W".repeat(40);
    let doc = format!(
        r#"<p:X xmlns:p="urn:x" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common"><p:I><cim:Interval>P{w}</cim:Interval></p:I><p:D><cim:Datetime>+999-+1-+1T+1:+1:+1.99999999999999999999+99:99</cim:Datetime></p:D><p:E><cim:Datetime>99999999999999.999999+999</cim:Datetime></p:E></p:X>"#
    );
    let inst = Instance::from_element(&parse(doc.as_bytes()).unwrap());
    assert_eq!(
        inst.get_str("I"),
        Some(format!("P{w}").as_str()),
        "an unrepresentable interval stays text"
    );
    assert!(inst.get("D").is_some() && inst.get("E").is_some());
    exercise(doc.as_bytes());
}
