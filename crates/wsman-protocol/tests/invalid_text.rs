//! Finding the characters XML 1.0 cannot carry, which the client refuses in the text it
//! writes (selectors, values, queries, command lines), and the CLIXML writer, which
//! encodes them instead.

use proptest::prelude::*;
use wsman_protocol::envelope::{
    Selector, check_selectors, check_text, first_invalid_xml_byte, first_invalid_xml_char,
};
use wsman_protocol::psrp::PsValue;
use wsman_protocol::psrp::clixml;

/// XML 1.0's `Char` production.
fn xml_char(c: char) -> bool {
    matches!(u32::from(c), 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x1_0000..=0x10_FFFF)
}

fn mixed() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<char>().prop_map(String::from),
        "[\\x00-\\x1F]",
        Just("\u{FFFD}\u{FFFE}\u{FFFF}\u{10000}".to_string()),
        Just("é😀\u{EF}\u{BF}".to_string()),
        "[ -~]{0,6}",
    ];
    prop::collection::vec(piece, 0..10).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// The byte scan finds the first character outside `Char`, at its position in
    /// characters.
    #[test]
    fn finds_the_first_character_outside_xml_char(pad in "[ -~]{0,150}", s in mixed()) {
        // Past the first blocks of 64 bytes, and across their boundaries.
        let s = pad + &s;
        let want = s.chars().enumerate().find(|&(_, c)| !xml_char(c));
        prop_assert_eq!(first_invalid_xml_char(&s), want);
        let byte = want.map(|(n, _)| s.char_indices().nth(n).unwrap().0);
        prop_assert_eq!(first_invalid_xml_byte(s.as_bytes()), byte);
        prop_assert_eq!(check_text("selector", "Name", &s).is_ok(), want.is_none());
    }

    /// CLIXML needs no such refusal: the writer encodes those characters, so its
    /// documents never hold one.
    #[test]
    fn clixml_documents_hold_only_xml_characters(s in mixed()) {
        let doc = clixml::to_string(&PsValue::String(s));
        prop_assert_eq!(first_invalid_xml_char(&doc), None, "{}", doc);
    }
}

#[test]
fn the_error_names_the_selector_and_the_character_not_the_value() {
    let e = check_selectors(&[Selector::new("Id", "ok"), Selector::new("Name", "pw\u{0}")])
        .unwrap_err();
    assert_eq!(
        (e.what, e.name.as_str(), e.character, e.offset),
        ("selector", "Name", '\0', 2)
    );
    let shown = e.to_string();
    assert!(!shown.contains("pw"), "{shown}");
    assert_eq!(
        shown,
        "selector \"Name\" holds U+0000 at character 2 (counting from 0), which XML 1.0 cannot \
         carry, not even as a character reference; nothing was sent"
    );
}
