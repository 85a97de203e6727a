//! Property tests of the PSRP fragment assembler and the CLIXML reader: random bytes,
//! truncated and mutated recorded fragments and documents give a value or a typed
//! error, never a panic; memory stays bounded; writer and fragmenter round-trip.

#[path = "support/psrp_fixtures.rs"]
mod fixtures;

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::Index;
use uuid::Uuid;
use wsman_protocol::psrp::clixml::{self, Collection, EncryptedString, ReadLimits};
use wsman_protocol::psrp::messages::ServerMessage;
use wsman_protocol::psrp::{
    DefragmentLimits, Defragmenter, Destination, Error, Fragment, Fragmenter, Message, MessageType,
    PsObject, PsValue,
};

/// Every recorded payload (whole fragments), and every recorded message's CLIXML.
fn recorded() -> &'static (Vec<Bytes>, Vec<String>) {
    static DATA: OnceLock<(Vec<Bytes>, Vec<String>)> = OnceLock::new();
    DATA.get_or_init(|| {
        let mut payloads = Vec::new();
        let mut docs = Vec::new();
        for name in fixtures::all() {
            payloads.extend(fixtures::payloads(&name).into_iter().map(|p| p.bytes));
            let (req, resp) = fixtures::messages(&name);
            docs.extend(
                req.iter()
                    .chain(&resp)
                    .filter_map(|m| m.data_str().ok().map(str::to_string))
                    .filter(|d| !d.is_empty()),
            );
        }
        (payloads, docs)
    })
}

/// Runs everything a client does with received bytes; any outcome but a panic is fine.
fn consume(d: &mut Defragmenter, bytes: &Bytes) {
    if let Ok(messages) = d.push(bytes) {
        for m in messages {
            if let Ok(m) = Message::decode(m) {
                let _ = ServerMessage::decode(&m);
            }
        }
    }
}

fn small_limits() -> DefragmentLimits {
    let mut l = DefragmentLimits::with_max_message_size(64 << 10);
    l.max_objects_in_progress = 4;
    l
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..6)) {
        let mut d = Defragmenter::with_limits(small_limits());
        for c in chunks {
            consume(&mut d, &Bytes::from(c));
            prop_assert!(d.in_progress() <= 4);
        }
    }

    #[test]
    fn random_fragment_headers_never_panic(
        frags in prop::collection::vec((0u64..4, 0u64..4, any::<bool>(), any::<bool>(), prop::collection::vec(any::<u8>(), 0..80)), 1..30)
    ) {
        let mut d = Defragmenter::with_limits(small_limits());
        for (object_id, fragment_id, start, end, blob) in frags {
            let f = Fragment { object_id, fragment_id, start, end, blob: Bytes::from(blob) };
            match d.push_fragment(f) {
                Ok(Some(m)) => { let _ = Message::decode(m); }
                Ok(None) => {}
                Err(e) => prop_assert!(e.is_fragment(), "{e:?}"),
            }
            prop_assert!(d.in_progress() <= 4);
        }
    }

    #[test]
    fn truncated_recorded_payloads_are_typed_errors(i in any::<Index>(), cut in any::<Index>()) {
        let (payloads, _) = recorded();
        let p = &payloads[i.index(payloads.len())];
        let at = cut.index(p.len());
        let mut d = Defragmenter::new();
        match d.push(&p.slice(..at)) {
            Ok(_) => {}
            Err(e) => prop_assert!(matches!(e, Error::FragmentTruncated { .. } | Error::FragmentOutOfOrder { .. }), "{e:?}"),
        }
    }

    #[test]
    fn mutated_recorded_payloads_never_panic(
        i in any::<Index>(),
        edits in prop::collection::vec((any::<Index>(), any::<u8>()), 1..8),
    ) {
        let (payloads, _) = recorded();
        let mut bytes = payloads[i.index(payloads.len())].to_vec();
        for (at, b) in edits {
            let at = at.index(bytes.len());
            bytes[at] = b;
        }
        let mut d = Defragmenter::with_limits(small_limits());
        consume(&mut d, &Bytes::from(bytes));
    }

    #[test]
    fn mutated_recorded_clixml_never_panics(
        i in any::<Index>(),
        edits in prop::collection::vec((any::<Index>(), prop::sample::select(vec!["<", ">", "/", "\"", "&", "_x", "Obj", "Ref", "RefId=\"0\"", "", "\u{10437}"])), 1..6),
    ) {
        let (_, docs) = recorded();
        let mut doc = docs[i.index(docs.len())].clone();
        for (at, piece) in edits {
            let mut at = at.index(doc.len() + 1);
            while !doc.is_char_boundary(at) { at -= 1; }
            // Replace one character (or insert at the end) with the piece.
            let end = doc[at..].chars().next().map_or(at, |c| at + c.len_utf8());
            doc.replace_range(at..end, piece);
        }
        let limits = ReadLimits::default();
        let _ = clixml::from_str_with(&doc, limits);
    }

    #[test]
    fn random_text_never_panics(s in "\\PC{0,200}", t in "(<[A-Za-z]{1,4}( N=\"[a-z_x0-9]{0,6}\")?( RefId=\"[0-9]\")?/?>|</[A-Za-z]{1,4}>|[a-z0-9_ ]{0,5}){0,40}") {
        let _ = clixml::from_str(&s);
        let _ = clixml::from_str(&t);
    }

    #[test]
    fn writer_reader_round_trip(v in ps_value()) {
        let text = clixml::to_string(&v);
        prop_assert_eq!(clixml::from_str(&text).unwrap(), v);
    }

    #[test]
    fn from_str_as_agrees_with_the_owned_path(v in ps_value()) {
        let text = clixml::to_string(&v);
        same_either_way(&text)?;
    }

    #[test]
    fn from_str_as_agrees_on_mutated_recorded_clixml(
        i in any::<Index>(),
        edits in prop::collection::vec((any::<Index>(), prop::sample::select(vec!["<", ">", "/", "\"", "&", "_x", "Obj", "Ref", "RefId=\"0\"", "", "\u{10437}", "<Nil/>", "<S>1</S>", "<D>2.5</D>"])), 0..4),
    ) {
        let (_, docs) = recorded();
        let mut doc = docs[i.index(docs.len())].clone();
        for (at, piece) in edits {
            let mut at = at.index(doc.len() + 1);
            while !doc.is_char_boundary(at) { at -= 1; }
            let end = doc[at..].chars().next().map_or(at, |c| at + c.len_utf8());
            doc.replace_range(at..end, piece);
        }
        same_either_way(&doc)?;
    }

    #[test]
    fn fragmenter_defragmenter_round_trip(
        datas in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 1..6),
        max_blob in 1usize..300,
        cuts in prop::collection::vec(any::<Index>(), 0..4),
    ) {
        let rpid = Uuid::from_u128(7);
        let messages: Vec<Message> = datas
            .into_iter()
            .map(|d| Message::new(Destination::Client, MessageType::PipelineOutput, rpid, Some(Uuid::from_u128(9)), d))
            .collect();
        let mut f = Fragmenter::new(max_blob);
        let mut wire = Vec::new();
        for m in &messages {
            for frag in f.fragment(m) {
                prop_assert!(frag.blob.len() <= max_blob);
                frag.encode_into(&mut wire);
            }
        }
        // Cut the stream only at fragment boundaries, as stream elements do.
        let mut bounds = vec![0];
        let all = Fragment::decode_all(&Bytes::from(wire.clone())).unwrap();
        let mut pos = 0;
        let mut ends = Vec::new();
        for frag in &all { pos += 21 + frag.blob.len(); ends.push(pos); }
        for c in cuts { bounds.push(ends[c.index(ends.len())]); }
        bounds.push(wire.len());
        bounds.sort_unstable();
        let wire = Bytes::from(wire);
        let mut d = Defragmenter::new();
        let mut back = Vec::new();
        for w in bounds.windows(2) {
            back.extend(d.push_messages(&wire.slice(w[0]..w[1])).unwrap());
        }
        prop_assert_eq!(back, messages);
        prop_assert_eq!(d.in_progress(), 0);
    }

    #[test]
    fn packed_payloads_fit_and_round_trip(
        sizes in prop::collection::vec(0usize..500, 1..8),
        max_blob in 1usize..200,
    ) {
        let messages: Vec<Message> = sizes
            .into_iter()
            .map(|n| Message::new(Destination::Server, MessageType::PipelineInput, Uuid::nil(), None, vec![b'z'; n]))
            .collect();
        let mut f = Fragmenter::new(max_blob);
        let mut d = Defragmenter::new();
        let mut back = Vec::new();
        for p in f.pack(&messages) {
            prop_assert!(p.len() <= max_blob + 21);
            back.extend(d.push_messages(&Bytes::from(p)).unwrap());
        }
        prop_assert_eq!(back, messages);
    }
}

/// A stream of any length keeps the assembler's memory flat: after each complete
/// object nothing is held, and a stream of unfinished objects is cut off at the limit.
#[test]
fn long_object_streams_hold_bounded_memory() {
    let mut f = Fragmenter::new(50);
    let mut d = Defragmenter::with_limits(small_limits());
    let msg = Message::from_value(
        Destination::Client,
        MessageType::PipelineOutput,
        Uuid::nil(),
        Some(Uuid::from_u128(1)),
        &PsValue::from("x".repeat(120)),
    );
    for _ in 0..20_000 {
        let mut wire = Vec::new();
        for frag in f.fragment(&msg) {
            frag.encode_into(&mut wire);
        }
        let got = d.push_messages(&Bytes::from(wire)).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(d.in_progress(), 0);
    }
    // Starts without ends: refused past the limit, never accumulated.
    let mut refused = 0;
    for id in 0..1000u64 {
        let start = Fragment {
            object_id: 1_000_000 + id,
            fragment_id: 0,
            start: true,
            end: false,
            blob: Bytes::from_static(b"abc"),
        };
        if d.push_fragment(start).is_err() {
            refused += 1;
        }
        assert!(d.in_progress() <= 4);
    }
    assert_eq!(refused, 996);
    // One object growing without end is cut at the message size limit.
    let mut big = Defragmenter::with_limits(DefragmentLimits::with_max_message_size(1000));
    let chunk = Bytes::from(vec![0u8; 100]);
    let mut err = None;
    for i in 0..100u64 {
        let frag = Fragment {
            object_id: 1,
            fragment_id: i,
            start: i == 0,
            end: false,
            blob: chunk.clone(),
        };
        if let Err(e) = big.push_fragment(frag) {
            err = Some(e);
            break;
        }
    }
    assert_eq!(
        err,
        Some(Error::MessageTooLarge {
            object_id: 1,
            limit: 1000
        })
    );
    assert_eq!(big.in_progress(), 0);
}

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-zA-Z0-9 _]{0,12}",
        "\\PC{0,12}",
        prop::collection::vec(any::<char>(), 0..8).prop_map(|v| v.into_iter().collect()),
    ]
    .boxed()
}

fn primitive() -> impl Strategy<Value = PsValue> {
    prop_oneof![
        Just(PsValue::Null),
        any::<bool>().prop_map(PsValue::Bool),
        any::<u16>().prop_map(PsValue::Char),
        any::<i8>().prop_map(PsValue::I8),
        any::<u8>().prop_map(PsValue::U8),
        any::<i16>().prop_map(PsValue::I16),
        any::<u16>().prop_map(PsValue::U16),
        any::<i32>().prop_map(PsValue::I32),
        any::<u32>().prop_map(PsValue::U32),
        any::<i64>().prop_map(PsValue::I64),
        any::<u64>().prop_map(PsValue::U64),
        any::<f32>()
            .prop_filter("NaN", |f| !f.is_nan())
            .prop_map(PsValue::F32),
        any::<f64>()
            .prop_filter("NaN", |f| !f.is_nan())
            .prop_map(PsValue::F64),
        "-?[0-9]{1,20}(\\.[0-9]{1,5})?".prop_map(PsValue::Decimal),
        text().prop_map(PsValue::String),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(PsValue::Bytes),
        any::<u128>().prop_map(|n| PsValue::Guid(Uuid::from_u128(n))),
        "[0-9]{1,3}(\\.[0-9]{1,3}){1,3}".prop_map(PsValue::Version),
        text().prop_map(PsValue::ScriptBlock),
        prop::collection::vec(any::<u8>(), 1..20)
            .prop_map(|b| PsValue::SecureString(EncryptedString::from_ciphertext(b))),
    ]
}

/// A typed target with the shapes scripts use (text, numbers, options, lists, enums).
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)]
struct Typed {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    id: Option<i64>,
    #[serde(default)]
    cpu: Option<f64>,
    #[serde(default)]
    items: Vec<String>,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    flag: Option<bool>,
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
enum Status {
    Running,
    Stopped,
}

/// `clixml::from_str_as` gives what `from_value` over `from_str` gives (the value, or
/// the same error), for a generic value, a struct, a text and a number.
fn same_either_way(text: &str) -> Result<(), TestCaseError> {
    fn owned<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Error> {
        clixml::from_value(&clixml::from_str(text)?)
    }
    prop_assert_eq!(
        format!("{:?}", clixml::from_str_as::<serde_yaml::Value>(text)),
        format!("{:?}", owned::<serde_yaml::Value>(text))
    );
    prop_assert_eq!(
        format!("{:?}", clixml::from_str_as::<Typed>(text)),
        format!("{:?}", owned::<Typed>(text))
    );
    prop_assert_eq!(
        format!("{:?}", clixml::from_str_as::<Vec<String>>(text)),
        format!("{:?}", owned::<Vec<String>>(text))
    );
    prop_assert_eq!(
        format!("{:?}", clixml::from_str_as::<Option<i64>>(text)),
        format!("{:?}", owned::<Option<i64>>(text))
    );
    Ok(())
}

fn ps_value() -> impl Strategy<Value = PsValue> {
    primitive().prop_recursive(4, 48, 6, |inner| {
        let names = prop::collection::vec(text(), 0..3);
        let props = prop::collection::vec((text(), inner.clone()), 0..4);
        let items = prop::collection::vec(inner.clone(), 0..4);
        let dict = prop::collection::vec((inner.clone(), inner.clone()), 0..3);
        (
            names,
            prop::option::of(text()),
            prop::option::of(primitive()),
            prop_oneof![
                Just(None),
                items.clone().prop_map(|v| Some(Collection::List(v))),
                items.clone().prop_map(|v| Some(Collection::Stack(v))),
                items.clone().prop_map(|v| Some(Collection::Queue(v))),
                items.prop_map(|v| Some(Collection::Enumerable(v))),
                dict.prop_map(|v| Some(Collection::Dictionary(v))),
            ],
            props.clone(),
            props,
        )
            .prop_map(|(names, to_string, value, collection, adapted, extended)| {
                let mut o = PsObject::new().with_type_names(names);
                o.to_string = to_string;
                o.value = value;
                o.collection = collection;
                o.adapted = adapted;
                o.extended = extended;
                PsValue::Object(Arc::new(o))
            })
    })
}
