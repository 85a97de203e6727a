//! The `_xHHHH_` encoding of strings and property names ([MS-PSRP] §2.2.5.1.1):
//! characters XML cannot carry (controls, lone surrogates) and characters outside the
//! Basic Multilingual Plane become UTF-16 code units written as `_x` four hex digits `_`;
//! an underscore that would start such a sequence is itself written `_x005F_`.
//!
//! Both directions follow Windows. PowerShell's serializer (`InternalSerializer.
//! EncodeString` in System.Management.Automation's `serialization.cs`) writes `_x005F_`
//! for every `_` followed by `x` or `X`, whatever comes after, and its deserializer
//! decodes with .NET's `XmlConvert.DecodeName`, whose pattern is
//! `_[Xx][0-9a-fA-F]{4}(?:_|[0-9a-fA-F]{4}_)`: the `x` in either case, four hex digits
//! (one UTF-16 code unit) or eight (a code point, `_x0001F600_`). An `_X0041_` left
//! as it is would reach PowerShell as `A`.

use std::borrow::Cow;

/// What an escape sequence at some position stands for.
enum Seq {
    /// UTF-16 code units: one, or a surrogate pair from an eight-digit code point.
    Units(u16, Option<u16>),
    /// An eight-digit sequence beyond U+10FFFF: .NET matches it but leaves it as it is.
    Literal,
}

/// Resolves `_xHHHH_` and `_xHHHHHHHH_` sequences, `x` in either case, as .NET's
/// `XmlConvert.DecodeName` does. Consecutive sequences forming a surrogate pair become
/// one character; a lone surrogate becomes U+FFFD (a Rust string cannot hold it).
pub fn decode(s: &str) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    let mut out: Option<String> = None;
    let mut units: Vec<u16> = Vec::new();
    let mut plain_from = 0;
    let mut i = 0;
    while let Some(found) = memchr::memchr(b'_', &bytes[i..]) {
        let at = i + found;
        match seq_at(bytes, at) {
            None => i = at + 1,
            Some((Seq::Literal, len)) => i = at + len,
            Some((Seq::Units(first, second), len)) => {
                let out = out.get_or_insert_with(|| String::with_capacity(s.len()));
                out.push_str(&s[plain_from..at]);
                units.clear();
                units.push(first);
                units.extend(second);
                let mut j = at + len;
                while let Some((Seq::Units(first, second), len)) = seq_at(bytes, j) {
                    units.push(first);
                    units.extend(second);
                    j += len;
                }
                out.extend(
                    char::decode_utf16(units.iter().copied()).map(|r| r.unwrap_or('\u{FFFD}')),
                );
                plain_from = j;
                i = j;
            }
        }
    }
    match out {
        None => Cow::Borrowed(s),
        Some(mut out) => {
            out.push_str(&s[plain_from..]);
            Cow::Owned(out)
        }
    }
}

/// The escape sequence starting at `i`, and its length in bytes.
fn seq_at(bytes: &[u8], i: usize) -> Option<(Seq, usize)> {
    let head = bytes.get(i..i + 7)?;
    if head[0] != b'_' || !matches!(head[1], b'x' | b'X') {
        return None;
    }
    let high = hex(&head[2..6])?;
    if head[6] == b'_' {
        return Some((Seq::Units(high as u16, None), 7));
    }
    let tail = bytes.get(i + 6..i + 11)?;
    if tail[4] != b'_' {
        return None;
    }
    let code = (high << 16) | hex(&tail[..4])?;
    let seq = match code {
        0..=0xFFFF => Seq::Units(code as u16, None),
        0x1_0000..=0x10_FFFF => {
            let mut buf = [0u16; 2];
            // Not a surrogate (those are below 0x10000): a valid char.
            match char::from_u32(code) {
                Some(c) => {
                    c.encode_utf16(&mut buf);
                    Seq::Units(buf[0], Some(buf[1]))
                }
                None => Seq::Literal,
            }
        }
        _ => Seq::Literal,
    };
    Some((seq, 11))
}

/// Four ASCII hex digits, either case.
fn hex(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = char::from(d).to_digit(16)?;
        Some((acc << 4) | v)
    })
}

fn needs_escape(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1F}' | '\u{7F}'..='\u{9F}' | '\u{FFFE}' | '\u{FFFF}')
        || u32::from(c) > 0xFFFF
}

/// Applies the encoding, as PowerShell does for `<S>` text and `N` attributes: every
/// `_` followed by `x` or `X` becomes `_x005F_`, and the characters XML cannot carry
/// `_xHHHH_` per UTF-16 code unit. XML markup escaping (`&lt;` ...) is the writer's job
/// and comes after.
pub fn encode(s: &str) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    let special = |(i, c): (usize, char)| {
        needs_escape(c) || (c == '_' && matches!(bytes.get(i + 1), Some(b'x' | b'X')))
    };
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

    /// An `_X` is escaped as an `_x` is, whatever follows it, as PowerShell's
    /// `EncodeString` does: .NET decodes `_X0041_` as `A`.
    #[test]
    fn an_underscore_before_upper_case_x_is_escaped() {
        assert_eq!(encode("a_X0041_b"), "a_x005F_X0041_b");
        assert_eq!(encode("a_x0041_b"), "a_x005F_x0041_b");
        assert_eq!(
            encode("Get-ADComputer SRV_X1234_01"),
            "Get-ADComputer SRV_x005F_X1234_01"
        );
        assert_eq!(encode("my_Xylophone _X"), "my_x005F_Xylophone _x005F_X");
        assert_eq!(encode("_Y _ x"), "_Y _ x");
        assert_eq!(decode(&encode("a_X0041_b")), "a_X0041_b");
    }

    /// The decoder takes what .NET's `XmlConvert.DecodeName` takes: `x` in either case,
    /// hex digits in either case, four digits (a UTF-16 unit) or eight (a code point).
    #[test]
    fn decodes_as_dotnet_decode_name() {
        assert_eq!(decode("a_X0041_b"), "aAb");
        assert_eq!(decode("_x004a__X004A_"), "JJ");
        assert_eq!(decode("_x0001F600_"), "\u{1F600}");
        assert_eq!(decode("_X0001f600_!"), "\u{1F600}!");
        assert_eq!(decode("_x00000041_"), "A");
        // An eight-digit code point pairs with four-digit surrogates around it.
        assert_eq!(decode("_xD83D__xDE00__x0001F600_"), "\u{1F600}\u{1F600}");
        // Beyond U+10FFFF: matched and left as it is; the `_x0041_` inside it is not a
        // sequence of its own.
        assert_eq!(decode("_x00110000_x0041_"), "_x00110000_x0041_");
        // Neither four digits then `_` nor eight then `_`.
        assert_eq!(decode("_x00410_ _x004_ _y0041_"), "_x00410_ _x004_ _y0041_");
        assert_eq!(decode("_x0041_x0042_"), "Ax0042_");
        assert!(matches!(decode("no_escape _x _X"), Cow::Borrowed(_)));
    }
}
