//! The `_xHHHH_` encoding of strings and property names ([MS-PSRP] §2.2.5.1.1):
//! characters XML cannot carry (controls, lone surrogates) and characters outside the
//! Basic Multilingual Plane become UTF-16 code units written as `_x` four hex digits `_`;
//! an underscore that would start such a sequence is itself written `_x005F_`.

use std::borrow::Cow;

/// Resolves `_xHHHH_` sequences. Consecutive sequences forming a surrogate pair become
/// one character; a lone surrogate becomes U+FFFD.
pub fn decode(s: &str) -> Cow<'_, str> {
    if !s.contains("_x") {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut units: Vec<u16> = Vec::new();
    let mut i = 0;
    let mut plain_from = 0;
    while i < bytes.len() {
        if let Some(unit) = unit_at(bytes, i) {
            out.push_str(&s[plain_from..i]);
            units.clear();
            units.push(unit);
            i += 7;
            while let Some(unit) = unit_at(bytes, i) {
                units.push(unit);
                i += 7;
            }
            out.extend(char::decode_utf16(units.iter().copied()).map(|r| r.unwrap_or('\u{FFFD}')));
            plain_from = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&s[plain_from..]);
    Cow::Owned(out)
}

fn unit_at(bytes: &[u8], i: usize) -> Option<u16> {
    let seq = bytes.get(i..i + 7)?;
    if seq[0] != b'_' || seq[1] != b'x' || seq[6] != b'_' {
        return None;
    }
    let hex = std::str::from_utf8(&seq[2..6]).ok()?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(hex, 16).ok()
}

fn needs_escape(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1F}' | '\u{7F}'..='\u{9F}' | '\u{FFFE}' | '\u{FFFF}')
        || u32::from(c) > 0xFFFF
}

/// Applies the encoding, as PowerShell does for `<S>` text and `N` attributes. XML
/// markup escaping (`&lt;` ...) is the writer's job and comes after.
pub fn encode(s: &str) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    let special =
        |(i, c): (usize, char)| needs_escape(c) || (c == '_' && bytes.get(i + 1) == Some(&b'x'));
    if !s.char_indices().any(special) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for (i, c) in s.char_indices() {
        if special((i, c)) {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("_x{unit:04X}_"));
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_windows_sent() {
        // From test_psrp_multiple_commands.yml.
        assert_eq!(
            decode("actual_x005F_x000A_string_x000A_newline: _xD801__xDC37_"),
            "actual_x000A_string\nnewline: \u{10437}"
        );
        assert_eq!(decode("no escapes_here"), "no escapes_here");
        assert_eq!(decode("_x12_ _xZZZZ_ _x0041"), "_x12_ _xZZZZ_ _x0041");
        assert_eq!(decode("_xD801_"), "\u{FFFD}");
    }

    #[test]
    fn encode_round_trips() {
        for s in [
            "plain",
            "a\nb\tc\r",
            "_x000A_ literal",
            "under_score _x",
            "\u{10437} astral",
            "\u{0}\u{1F}\u{7F}",
        ] {
            assert_eq!(decode(&encode(s)), s, "{s:?}");
        }
        assert_eq!(encode("a\nb"), "a_x000A_b");
        assert_eq!(encode("_x"), "_x005F_x");
        assert_eq!(encode("\u{10437}"), "_xD801__xDC37_");
    }
}
