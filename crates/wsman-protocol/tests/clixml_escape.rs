//! The `_xHHHH_` encoding of CLIXML strings and names against a model of what Windows
//! does with them: PowerShell decodes what it receives with .NET's
//! `XmlConvert.DecodeName` (pattern `_[Xx][0-9a-fA-F]{4}(?:_|[0-9a-fA-F]{4}_)`, on
//! UTF-16 text). Whatever the client writes must come out of that decoding as the
//! caller's text: an `_X0041_` written as it is would reach PowerShell as `A`.

use proptest::prelude::*;
use wsman_protocol::psrp::clixml::{self, PsObject, PsValue, decode_name, encode_name};
use wsman_protocol::psrp::messages::{
    Argument, Command, CreatePipeline, PowerShell, ProtocolVersion,
};

/// A model of .NET's `XmlConvert.DecodeName` on UTF-16 code units, written from its
/// documented behaviour: leftmost non-overlapping matches of the pattern above; four
/// digits are one code unit, eight a code point (two units past U+FFFF); a code point
/// beyond U+10FFFF is matched and left as it is.
fn dotnet_decode_name(units: &[u16]) -> Vec<u16> {
    let is_hex = |u: u16| u < 0x80 && (u as u8).is_ascii_hexdigit();
    let hex = |s: &[u16]| {
        s.iter().fold(0u32, |acc, &u| {
            acc * 16 + char::from(u as u8).to_digit(16).unwrap()
        })
    };
    let us = u16::from(b'_');
    let mut out = Vec::with_capacity(units.len());
    let mut i = 0;
    while i < units.len() {
        let at = &units[i..];
        let head = at.len() >= 7
            && at[0] == us
            && (at[1] == u16::from(b'x') || at[1] == u16::from(b'X'))
            && at[2..6].iter().all(|&u| is_hex(u));
        if head && at[6] == us {
            out.push(hex(&at[2..6]) as u16);
            i += 7;
        } else if head && at.len() >= 11 && at[6..10].iter().all(|&u| is_hex(u)) && at[10] == us {
            let code = hex(&at[2..10]);
            match char::from_u32(code) {
                Some(c) if code <= 0x10FFFF => {
                    let mut buf = [0u16; 2];
                    out.extend_from_slice(c.encode_utf16(&mut buf));
                }
                // A surrogate code point below U+10000: one unit.
                None if code <= 0xFFFF => out.push(code as u16),
                _ => out.extend_from_slice(&at[..11]),
            }
            i += 11;
        } else {
            out.push(units[i]);
            i += 1;
        }
    }
    out
}

fn utf16(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

/// Strings rich in what the encoding is about: underscores, `x` and `X`, hex digits,
/// controls, characters outside the BMP, the noncharacters XML refuses.
fn tricky() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("_".to_string()),
        Just("x".to_string()),
        Just("X".to_string()),
        Just("_x".to_string()),
        Just("_X".to_string()),
        Just("_x0041_".to_string()),
        Just("_X0041_".to_string()),
        Just("_x005F_".to_string()),
        Just("_X0001F600_".to_string()),
        Just("_xD83D__xDE00_".to_string()),
        "[0-9a-fA-F]{1,8}",
        Just("\u{0}".to_string()),
        Just("\u{1}\t\n\r".to_string()),
        Just("\u{85}\u{9F}\u{7F}".to_string()),
        Just("\u{1F600}".to_string()),
        Just("\u{FFFE}\u{FFFF}".to_string()),
        Just("<&>\"'".to_string()),
        any::<char>().prop_map(String::from),
        "[ -~]{0,4}",
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

/// The text of the first `<S ...>` element of a document, XML escapes resolved (the
/// writer uses `&lt;`, `&gt;`, `&amp;`, `&quot;` and `&apos;` only).
fn s_text(doc: &str) -> String {
    let start = doc.find("<S").expect("an S element");
    let rest = &doc[start..];
    if rest[..rest.find('>').unwrap()].ends_with('/') {
        return String::new();
    }
    let open = rest.find('>').unwrap() + 1;
    let close = rest.find("</S>").unwrap();
    xml_unescape(&rest[open..close])
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// What the encoder writes, .NET decodes back to the original text; so does this
    /// crate's decoder.
    #[test]
    fn encoded_text_decodes_back_as_dotnet_decodes_it(s in tricky()) {
        let encoded = encode_name(&s);
        prop_assert_eq!(dotnet_decode_name(&utf16(&encoded)), utf16(&s), "{:?}", encoded);
        prop_assert_eq!(decode_name(&encoded), s.as_str());
    }

    /// The decoder reads any text as .NET's `DecodeName` does (a lone surrogate, which
    /// a Rust string cannot hold, as U+FFFD).
    #[test]
    fn decoding_matches_dotnet(s in tricky()) {
        let want = String::from_utf16_lossy(&dotnet_decode_name(&utf16(&s)));
        prop_assert_eq!(decode_name(&s), want.as_str());
    }

    /// A string and a property name written by the CLIXML writer: the text on the wire
    /// decodes, as .NET decodes it, to the caller's text, and the reader reads both back.
    #[test]
    fn written_strings_and_names_reach_windows_unchanged(s in tricky(), name in tricky()) {
        let doc = clixml::to_string(&PsValue::String(s.clone()));
        let wire = s_text(&doc);
        prop_assert_eq!(dotnet_decode_name(&utf16(&wire)), utf16(&s), "{}", doc);
        prop_assert_eq!(clixml::from_str(&doc).unwrap(), PsValue::String(s.clone()));

        let object: PsValue = PsObject::new().with_property(name.clone(), s.clone()).into();
        let doc = clixml::to_string(&object);
        let n_start = doc.find(" N=\"").expect("an N attribute") + 4;
        let n_end = n_start + doc[n_start..].find('"').unwrap();
        let wire_name = xml_unescape(&doc[n_start..n_end]);
        prop_assert_eq!(dotnet_decode_name(&utf16(&wire_name)), utf16(&name), "{}", doc);
        prop_assert_eq!(clixml::from_str(&doc).unwrap(), object);
    }
}

/// The exact encoding of an `_X` sequence, and the CREATE_PIPELINE message the client
/// writes without building the object tree: script text and parameter values with
/// `_X` hex `_` in them reach PowerShell as written.
#[test]
fn upper_case_x_sequences_are_escaped_in_create_pipeline() {
    assert_eq!(encode_name("a_X0041_b"), "a_x005F_X0041_b");
    let script = "Get-ADComputer SRV_X1234_01";
    let ps = PowerShell::new(vec![
        Command::script(script),
        Command::new("Get-Item")
            .arg(Argument::named("Path", "C:\\data\\LOG_X0041_.txt"))
            .arg(Argument::named("Filter_X0041_", "x")),
    ]);
    let doc = CreatePipeline::new(ps).to_clixml(ProtocolVersion::V2_3);
    assert!(doc.contains("SRV_x005F_X1234_01"), "{doc}");
    assert!(doc.contains("LOG_x005F_X0041_.txt"), "{doc}");
    assert!(doc.contains("Filter_x005F_X0041_"), "{doc}");
    // Every S text in the message decodes (as .NET decodes it) to what was given.
    let texts: Vec<String> = doc
        .match_indices("<S N=\"")
        .map(|(i, _)| s_text(&doc[i..]))
        .map(|t| String::from_utf16(&dotnet_decode_name(&utf16(&t))).unwrap())
        .collect();
    for given in [script, "C:\\data\\LOG_X0041_.txt", "Filter_X0041_"] {
        assert!(
            texts.iter().any(|t| t == given),
            "{given:?} not in {texts:?}"
        );
    }
}
