//! A CLIXML pull reader for the usual shape of PSRP output objects, without quick-xml:
//! texts and attribute values scanned eight bytes at a time (`memchr` for long ones),
//! names of ASCII letters and digits matched by their bytes, the `N="..."` and
//! `RefId="..."` attributes, text with entity references and `_xHHHH_` escapes, end tags
//! written exactly. It builds the same borrowed tree as the quick-xml borrowing reader
//! (`fast.rs`), which serde then reads the same way.
//!
//! It takes only documents it reads completely: anything else (an XML declaration,
//! comments, processing instructions, CDATA, namespace prefixes, other attributes or
//! quoting, spacing around `=`, an end tag with spaces, a `Ref`, a progress record, an
//! unknown entity, any malformation, an exceeded limit) makes it give up on the
//! document, which then goes through the quick-xml readers, whose answer (a value or a
//! typed error) is the reference. So it only changes how fast a value is read, never
//! what it reads as; `from_str_as_agrees_*` in `tests/psrp_props.rs` and this module's
//! tests pin that on the recorded fixtures and on mutations of them.

use std::borrow::Cow;

use serde::de::DeserializeOwned;

use super::fast::{MAX_TYPE_IDS, Obj, Val, decoded};
use super::reader::{ReadLimits, base64};
use super::value::{EncryptedString, PsValue};
use crate::psrp::error::Result;

/// The document is not one this reader takes; the quick-xml readers decide.
#[derive(Debug)]
pub(super) struct GiveUp;

type Pulled<T> = std::result::Result<T, GiveUp>;

/// Reads `text` into a `T` if this reader takes the document: `Err(GiveUp)` if not,
/// else serde's answer over the tree (the same as the quick-xml borrowing reader's, as
/// the tree is the same).
pub(super) fn read<T: DeserializeOwned>(text: &str) -> Pulled<Result<T>> {
    let limits = ReadLimits::default();
    if text.len() > limits.max_len {
        return Err(GiveUp);
    }
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut p = Pull {
        doc: text,
        b: text.as_bytes(),
        pos: 0,
        limits,
        depth: 0,
        values: 0,
        type_ids: Vec::new(),
    };
    p.skip_blank();
    if p.byte(0)? != b'<' {
        return Err(GiveUp);
    }
    p.pos += 1;
    let tag = p.tag()?;
    let v = p.value(&tag)?.1;
    p.skip_blank();
    if p.pos != p.b.len() {
        return Err(GiveUp);
    }
    Ok(T::deserialize(&v))
}

/// A start tag: its name, `N` and `RefId` attributes, and whether it is empty (`/>`).
struct Tag<'t> {
    name: &'t str,
    n: Option<&'t str>,
    /// `n` has no `_` (so no `_xHHHH_` escape to resolve).
    n_plain: bool,
    ref_id: Option<&'t str>,
    empty: bool,
}

/// A piece of text: its bytes up to the stop byte, and whether it holds a `&` (an
/// entity reference), a `_` (perhaps an `_xHHHH_` escape) or a `<`.
struct Span {
    end: usize,
    amp: bool,
    underscore: bool,
    lt: bool,
}

/// How far the word loop looks before handing a long text to `memchr` (most texts and
/// attribute values of an object are short: a call costs more than the loop).
const SHORT: usize = 48;

/// Eight bytes of one value each.
const LOW: u64 = 0x0101_0101_0101_0101;
const SEVEN: u64 = 0x7F7F_7F7F_7F7F_7F7F;

/// The high bit of each byte of `x` that is `c`, no other bit (exact: no carry crosses
/// a byte).
#[inline]
fn bytes_equal(x: u64, c: u8) -> u64 {
    let y = x ^ (LOW * u64::from(c));
    !(((y & SEVEN) + SEVEN) | y | SEVEN)
}

/// The bytes up to `stop` (`<` for text, `"` for an attribute value) from `from`, with
/// what they hold; `None` if there is no `stop`. Eight bytes at a time (little-endian
/// words: the lowest bit marks the first byte), then byte by byte, then `memchr`.
#[inline]
fn scan(b: &[u8], from: usize, stop: u8) -> Option<Span> {
    // Texts stop at `<`, so no `<` comes before their stop: not looked for.
    if stop == b'<' {
        scan_in::<true>(b, from, stop)
    } else {
        scan_in::<false>(b, from, stop)
    }
}

/// [`scan`]; `TEXT`: `stop` is `<`.
#[inline]
fn scan_in<const TEXT: bool>(b: &[u8], from: usize, stop: u8) -> Option<Span> {
    let (mut amp, mut underscore, mut lt) = (false, false, false);
    let short = b.len().min(from.saturating_add(SHORT));
    let mut i = from;
    while i + 8 <= short {
        let Some(word) = b.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) else {
            break;
        };
        let x = u64::from_le_bytes(word);
        let (found, a, u, l) = (
            bytes_equal(x, stop),
            bytes_equal(x, b'&'),
            bytes_equal(x, b'_'),
            if TEXT { 0 } else { bytes_equal(x, b'<') },
        );
        if found != 0 {
            let first = found.trailing_zeros();
            // The high bits of the bytes before the stop byte.
            let before = (1u64 << first) - 1;
            return Some(Span {
                end: i + (first / 8) as usize,
                amp: amp || a & before != 0,
                underscore: underscore || u & before != 0,
                lt: lt || l & before != 0,
            });
        }
        amp |= a != 0;
        underscore |= u != 0;
        lt |= l != 0;
        i += 8;
    }
    while i < short {
        let c = b[i];
        if c == stop {
            return Some(Span {
                end: i,
                amp,
                underscore,
                lt,
            });
        }
        amp |= c == b'&';
        underscore |= c == b'_';
        lt |= c == b'<';
        i += 1;
    }
    let rest = b.get(i..)?;
    let end = i + memchr::memchr(stop, rest)?;
    let long = &b[i..end];
    Some(Span {
        end,
        amp: amp || memchr::memchr(b'&', long).is_some(),
        underscore: underscore || memchr::memchr(b'_', long).is_some(),
        lt: !TEXT && (lt || memchr::memchr(b'<', long).is_some()),
    })
}

/// `s.trim()`, without a search when `s` starts and ends with a printable ASCII byte
/// (no white space there: the usual number, date or duration).
#[inline]
fn trimmed(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(f), Some(l)) if f.is_ascii_graphic() && l.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// `text` with its `_xHHHH_` escapes resolved; `plain`: it has no `_`.
#[inline]
fn unescaped_name<'t>(text: &'t str, plain: bool) -> Cow<'t, str> {
    if plain {
        Cow::Borrowed(text)
    } else {
        decoded(Cow::Borrowed(text))
    }
}

struct Pull<'t> {
    doc: &'t str,
    b: &'t [u8],
    pos: usize,
    limits: ReadLimits,
    depth: usize,
    values: usize,
    /// The `RefId`s of the `TN`s read so far (a `TNRef` must name one).
    type_ids: Vec<&'t str>,
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

impl<'t> Pull<'t> {
    /// The byte `ahead` bytes after the position.
    #[inline]
    fn byte(&self, ahead: usize) -> Pulled<u8> {
        self.b.get(self.pos + ahead).copied().ok_or(GiveUp)
    }

    #[inline]
    fn str(&self, from: usize, to: usize) -> Pulled<&'t str> {
        self.doc.get(from..to).ok_or(GiveUp)
    }

    #[inline]
    fn skip_blank(&mut self) {
        while self
            .b
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    /// A name of ASCII letters and digits at the position (none: give up).
    #[inline]
    fn name(&mut self) -> Pulled<&'t str> {
        let start = self.pos;
        while self.b.get(self.pos).is_some_and(|&b| is_name_byte(b)) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(GiveUp);
        }
        self.str(start, self.pos)
    }

    /// The rest of a start tag, the position just after its `<`.
    fn tag(&mut self) -> Pulled<Tag<'t>> {
        let name = self.name()?;
        let mut tag = Tag {
            name,
            n: None,
            n_plain: true,
            ref_id: None,
            empty: false,
        };
        // The usual shape first: ` N="..."` right after the name.
        if self.b.get(self.pos..self.pos + 4) == Some(b" N=\"") {
            self.pos += 4;
            let (value, plain) = self.attribute_value()?;
            tag.n = Some(value);
            tag.n_plain = plain;
        }
        loop {
            match self.byte(0)? {
                b'>' => {
                    self.pos += 1;
                    return Ok(tag);
                }
                b'/' => {
                    if self.byte(1)? != b'>' {
                        return Err(GiveUp);
                    }
                    self.pos += 2;
                    tag.empty = true;
                    return Ok(tag);
                }
                b' ' | b'\t' | b'\r' | b'\n' => {
                    // XML's white space only (quick-xml's; not form feed).
                    while matches!(self.byte(0)?, b' ' | b'\t' | b'\r' | b'\n') {
                        self.pos += 1;
                    }
                    if matches!(self.byte(0)?, b'>' | b'/') {
                        continue;
                    }
                    let key = self.name()?;
                    if self.byte(0)? != b'=' || self.byte(1)? != b'"' {
                        return Err(GiveUp);
                    }
                    self.pos += 2;
                    let (value, plain) = self.attribute_value()?;
                    let slot = match key.as_bytes() {
                        [b'N'] => {
                            tag.n_plain = plain;
                            &mut tag.n
                        }
                        [b'R', b'e', b'f', b'I', b'd'] => &mut tag.ref_id,
                        _ => return Err(GiveUp),
                    };
                    if slot.replace(value).is_some() {
                        return Err(GiveUp);
                    }
                }
                _ => return Err(GiveUp),
            }
        }
    }

    /// An attribute value from the position (just after its opening `"`) to its closing
    /// `"`, which must be followed by a space, `>` or `/>`; and whether it has no `_`.
    /// A value with `<` or `&` is given up on.
    #[inline]
    fn attribute_value(&mut self) -> Pulled<(&'t str, bool)> {
        let span = scan(self.b, self.pos, b'"').ok_or(GiveUp)?;
        let value = self.str(self.pos, span.end)?;
        self.pos = span.end + 1;
        if span.lt || span.amp {
            return Err(GiveUp);
        }
        if !matches!(self.byte(0)?, b'>' | b'/' | b' ' | b'\t' | b'\r' | b'\n') {
            return Err(GiveUp);
        }
        Ok((value, !span.underscore))
    }

    /// `</name>` at the position, exactly.
    #[inline]
    fn end(&mut self, name: &str) -> Pulled<()> {
        let rest = &self.b[self.pos..];
        let n = name.len();
        // Names are short: compared byte by byte, not by a call to `memcmp`.
        if rest.len() < n + 3
            || rest[0] != b'<'
            || rest[1] != b'/'
            || rest[2 + n] != b'>'
            || !rest[2..2 + n]
                .iter()
                .zip(name.bytes())
                .all(|(a, b)| *a == b)
        {
            return Err(GiveUp);
        }
        self.pos += n + 3;
        Ok(())
    }

    /// The text of the element `tag` (opened), up to and including its end tag; entity
    /// references resolved, `_xHHHH_` escapes not.
    fn text(&mut self, tag: &Tag<'t>) -> Pulled<Cow<'t, str>> {
        Ok(self.text_and_plain(tag)?.0)
    }

    /// As [`Pull::text`], and whether the text has no `_` (so no `_xHHHH_` escape).
    #[inline]
    fn text_and_plain(&mut self, tag: &Tag<'t>) -> Pulled<(Cow<'t, str>, bool)> {
        if tag.empty {
            return Ok((Cow::Borrowed(""), true));
        }
        let span = scan(self.b, self.pos, b'<').ok_or(GiveUp)?;
        let raw = self.str(self.pos, span.end)?;
        self.pos = span.end;
        self.end(tag.name)?;
        if span.amp {
            return unescape(raw).map(|s| (Cow::Owned(s), false));
        }
        Ok((Cow::Borrowed(raw), !span.underscore))
    }

    /// Text with `_xHHHH_` escapes resolved (`S`, `ToString`, ...).
    #[inline]
    fn decoded_text(&mut self, tag: &Tag<'t>) -> Pulled<Cow<'t, str>> {
        let (text, plain) = self.text_and_plain(tag)?;
        Ok(if plain { text } else { decoded(text) })
    }

    /// The next child element of the element `parent` (opened), or `None` at its end tag
    /// (read).
    #[inline]
    fn child(&mut self, parent: &Tag<'t>) -> Pulled<Option<Tag<'t>>> {
        if parent.empty {
            return Ok(None);
        }
        self.skip_blank();
        if self.byte(0)? != b'<' {
            return Err(GiveUp);
        }
        if self.byte(1)? == b'/' {
            self.end(parent.name)?;
            return Ok(None);
        }
        self.pos += 1;
        self.tag().map(Some)
    }

    fn count(&mut self) -> Pulled<()> {
        self.values += 1;
        if self.values > self.limits.max_values {
            return Err(GiveUp);
        }
        Ok(())
    }

    fn value(&mut self, tag: &Tag<'t>) -> Pulled<(Option<Cow<'t, str>>, Val<'t>)> {
        self.count()?;
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(GiveUp);
        }
        let v = self.body(tag)?;
        self.depth -= 1;
        Ok((tag.n.map(|n| unescaped_name(n, tag.n_plain)), v))
    }

    fn body(&mut self, tag: &Tag<'t>) -> Pulled<Val<'t>> {
        macro_rules! parse {
            ($variant:ident) => {{
                let text = self.text(tag)?;
                Val::Prim(PsValue::$variant(
                    trimmed(&text).parse().map_err(|_| GiveUp)?,
                ))
            }};
        }
        // By the bytes of the name: a decision on its length, then its bytes.
        Ok(match tag.name.as_bytes() {
            [b'N', b'i', b'l'] => {
                self.text(tag)?;
                Val::Prim(PsValue::Null)
            }
            [b'S'] | [b'U', b'R', b'I'] | [b'X', b'D'] | [b'S', b'B', b'K'] => {
                Val::Str(self.decoded_text(tag)?)
            }
            [b'D', b'T'] | [b'T', b'S'] | [b'V', b'e', b'r', b's', b'i', b'o', b'n'] => {
                Val::Str(match self.text(tag)? {
                    Cow::Borrowed(b) => Cow::Borrowed(trimmed(b)),
                    Cow::Owned(o) => Cow::Owned(o.trim().to_string()),
                })
            }
            [b'B'] => match trimmed(&self.text(tag)?) {
                "true" | "1" => Val::Prim(PsValue::Bool(true)),
                "false" | "0" => Val::Prim(PsValue::Bool(false)),
                _ => return Err(GiveUp),
            },
            [b'C'] => parse!(Char),
            [b'S', b'B'] => parse!(I8),
            [b'B', b'y'] => parse!(U8),
            [b'I', b'1', b'6'] => parse!(I16),
            [b'U', b'1', b'6'] => parse!(U16),
            [b'I', b'3', b'2'] => parse!(I32),
            [b'U', b'3', b'2'] => parse!(U32),
            [b'I', b'6', b'4'] => parse!(I64),
            [b'U', b'6', b'4'] => parse!(U64),
            [b'S', b'g'] => parse!(F32),
            [b'D', b'b'] => parse!(F64),
            [b'G'] => parse!(Guid),
            [b'D'] => Val::Prim(PsValue::Decimal(self.text(tag)?.trim().to_string())),
            [b'B', b'A'] => Val::Prim(PsValue::Bytes(
                base64(&self.text(tag)?, "BA").map_err(|_| GiveUp)?,
            )),
            [b'S', b'S'] => Val::Prim(PsValue::SecureString(EncryptedString(
                base64(&self.text(tag)?, "SS").map_err(|_| GiveUp)?,
            ))),
            [b'O', b'b', b'j'] => Val::Obj(Box::new(self.object(tag)?)),
            // `Ref` (an earlier object again), `PR` and anything else: the other paths.
            _ => return Err(GiveUp),
        })
    }

    fn object(&mut self, tag: &Tag<'t>) -> Pulled<Obj<'t>> {
        let mut obj = Obj::default();
        while let Some(child) = self.child(tag)? {
            match child.name.as_bytes() {
                [b'T', b'N'] => {
                    self.type_names(&child)?;
                    if let Some(id) = child.ref_id {
                        if self.type_ids.len() >= MAX_TYPE_IDS {
                            return Err(GiveUp);
                        }
                        self.type_ids.push(id);
                    }
                }
                [b'T', b'N', b'R', b'e', b'f'] => {
                    let id = child.ref_id.unwrap_or_default();
                    self.text(&child)?;
                    if !self.type_ids.contains(&id) {
                        return Err(GiveUp);
                    }
                }
                [b'T', b'o', b'S', b't', b'r', b'i', b'n', b'g'] => {
                    obj.to_string = Some(self.decoded_text(&child)?)
                }
                [b'L', b'S', b'T'] | [b'I', b'E'] | [b'Q', b'U', b'E'] | [b'S', b'T', b'K'] => {
                    obj.entries = None;
                    obj.items = Some(self.items(&child)?);
                }
                [b'D', b'C', b'T'] => {
                    obj.items = None;
                    obj.entries = Some(self.dictionary(&child)?);
                }
                [b'P', b'r', b'o', b'p', b's'] => self.properties(&child, &mut obj.adapted)?,
                [b'M', b'S'] => self.properties(&child, &mut obj.extended)?,
                _ => obj.value = Some(self.value(&child)?.1),
            }
        }
        Ok(obj)
    }

    fn type_names(&mut self, tag: &Tag<'t>) -> Pulled<()> {
        while let Some(child) = self.child(tag)? {
            if child.name != "T" {
                return Err(GiveUp);
            }
            self.count()?;
            self.text(&child)?;
        }
        Ok(())
    }

    fn items(&mut self, tag: &Tag<'t>) -> Pulled<Vec<Val<'t>>> {
        let mut items = Vec::new();
        while let Some(child) = self.child(tag)? {
            items.push(self.value(&child)?.1);
        }
        Ok(items)
    }

    fn properties(&mut self, tag: &Tag<'t>, out: &mut Vec<(Cow<'t, str>, Val<'t>)>) -> Pulled<()> {
        while let Some(child) = self.child(tag)? {
            let (n, v) = self.value(&child)?;
            if out.is_empty() {
                // Objects of many properties are the common case: one allocation.
                out.reserve(32);
            }
            out.push((n.unwrap_or_default(), v));
        }
        Ok(())
    }

    fn dictionary(&mut self, tag: &Tag<'t>) -> Pulled<Vec<(Val<'t>, Val<'t>)>> {
        let mut entries = Vec::new();
        while let Some(entry) = self.child(tag)? {
            if entry.name != "En" || entry.empty {
                return Err(GiveUp);
            }
            let (mut key, mut value) = (None, None);
            while let Some(child) = self.child(&entry)? {
                let (n, v) = self.value(&child)?;
                match n.as_deref() {
                    Some("Key") => key = Some(v),
                    _ => value = Some(v),
                }
            }
            entries.push((
                key.ok_or(GiveUp)?,
                value.unwrap_or(Val::Prim(PsValue::Null)),
            ));
        }
        Ok(entries)
    }
}

/// Text with its entity references resolved: the five predefined entities and
/// character references (`&#N;`, `&#xH;`, not 0, a Unicode scalar value), as quick-xml
/// resolves them; anything else: give up.
fn unescape(raw: &str) -> Pulled<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after.find(';').ok_or(GiveUp)?;
        let name = &after[..semi];
        match name {
            "lt" => out.push('<'),
            "gt" => out.push('>'),
            "amp" => out.push('&'),
            "apos" => out.push('\''),
            "quot" => out.push('"'),
            _ => {
                let num = name.strip_prefix('#').ok_or(GiveUp)?;
                let (digits, radix) = match num.strip_prefix('x') {
                    Some(hex) => (hex, 16),
                    None => (num, 10),
                };
                if !digits.bytes().all(|b| b.is_ascii_hexdigit())
                    || (radix == 10 && !digits.bytes().all(|b| b.is_ascii_digit()))
                {
                    return Err(GiveUp);
                }
                let code = u32::from_str_radix(digits, radix).map_err(|_| GiveUp)?;
                if code == 0 {
                    return Err(GiveUp);
                }
                out.push(char::from_u32(code).ok_or(GiveUp)?);
            }
        }
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::psrp::clixml::{from_str, from_value};
    use std::collections::BTreeMap;

    /// What the pull reader takes it reads as the owned reader does; what it gives up on
    /// the owned reader still reads (or refuses) on its own.
    fn same(doc: &str) -> bool {
        let pulled = read::<BTreeMap<String, Option<String>>>(doc);
        let owned = from_str(doc).and_then(|v| from_value::<BTreeMap<String, Option<String>>>(&v));
        match pulled {
            Ok(Ok(m)) => {
                assert_eq!(Some(&m), owned.as_ref().ok(), "{doc}");
                true
            }
            Ok(Err(_)) => {
                assert!(owned.is_err(), "{doc}");
                true
            }
            Err(GiveUp) => false,
        }
    }

    #[test]
    fn the_usual_shapes_are_read_here() {
        for doc in [
            r#"<Obj RefId="0"><TN RefId="0"><T>A</T></TN><MS><S N="Name">x</S><I32 N="Id">7</I32><Nil N="P" /><Nil N="Q"/></MS></Obj>"#,
            "\u{FEFF} <Obj>\n <MS>\r\n\t<S N=\"ab\">x &lt;y&gt; &#65;&#x42; &quot;&apos;</S> </MS></Obj>\n",
            r#"<Obj><MS><S N="_x0041_b">_x0041_</S><B N="T"> true </B><Db N="D">1.5</Db></MS></Obj>"#,
            r#"<Obj><TN RefId="7"><T>A</T></TN><MS><Obj N="I"><TNRef RefId="7" /><ToString>t</ToString><I32>1</I32></Obj></MS></Obj>"#,
            r#"<Obj N="x"  RefId="1"  ><MS ><S N="k" >v</S></MS></Obj>"#,
            r#"<Obj><MS><S N="a>b/">x>y</S><S N="c'd">]]></S><Nil N="e" /></MS></Obj>"#,
            "<Obj><MS><S N=\"\u{e9}\u{10437}\">\u{e9}\r\n\u{10437}</S></MS></Obj>",
        ] {
            assert!(same(doc), "given up: {doc}");
        }
        // Entities in names: not taken here (the quick-xml reader unescapes them).
        assert!(!same(r#"<Obj><MS><S N="a&amp;b">x</S></MS></Obj>"#));
    }

    #[test]
    fn unusual_or_malformed_documents_are_left_to_the_quick_xml_readers() {
        for doc in [
            r#"<?xml version="1.0"?><Obj><MS><S N="a">x</S></MS></Obj>"#,
            r#"<Obj><MS><!-- c --><S N="a">x</S></MS></Obj>"#,
            r#"<Obj><MS><S N="a"><![CDATA[x]]></S></MS></Obj>"#,
            r#"<Obj><MS><p:S N="a">x</p:S></MS></Obj>"#,
            r#"<Obj><MS><S N='a'>x</S></MS></Obj>"#,
            r#"<Obj><MS><S N = "a">x</S></MS></Obj>"#,
            r#"<Obj><MS><S N="a" S="b">x</S></MS></Obj>"#,
            r#"<Obj><MS><S N="a" N="b">x</S></MS></Obj>"#,
            r#"<Obj><MS><S N="a"RefId="b">x</S></MS></Obj>"#,
            r#"<Obj><MS><S N="a">x</S ></MS></Obj>"#,
            r#"<Obj><MS><S N="a">x</T></MS></Obj>"#,
            r#"<Obj><MS><S N="a">x &bogus; y</S></MS></Obj>"#,
            r#"<Obj><MS><S N="a">x &#0; y</S></MS></Obj>"#,
            r#"<Obj><MS><S N="a">x &#xD800; y</S></MS></Obj>"#,
            r#"<Obj><MS><S N="a">x &#+65; y</S></MS></Obj>"#,
            r#"<Obj><MS><S N="a">x & y</S></MS></Obj>"#,
            r#"<Obj><MS><S N="a">x</S></MS></Obj><Obj/>"#,
            r#"<Obj><MS><S N="a">x</S></MS></Obj>text"#,
            r#"<Obj><MS><S N="a">x</S></MS>"#,
            r#"<Obj><MS>text<S N="a">x</S></MS></Obj>"#,
            r#"<Obj><MS><Ref N="a" RefId="0"/></MS></Obj>"#,
            r#"<Obj><MS><I32 N="a">x</I32></MS></Obj>"#,
            r#"<Obj><TNRef RefId="9"/></Obj>"#,
            r#"<Obj><DCT><En><S N="Value">v</S></En></DCT></Obj>"#,
            "",
            "<",
            "<Obj",
        ] {
            assert!(!same(doc), "taken: {doc}");
        }
    }

    /// Every message's CLIXML in the PSRP recordings (`fixtures/psrp/*.yml` and
    /// `fixtures/recorded/pypsrp/test_psrp_*.yml`), both directions.
    fn recorded_docs() -> Vec<String> {
        let mut docs = Vec::new();
        for name in crate::psrp_fixtures::all() {
            let (requests, responses) = crate::psrp_fixtures::messages(&name);
            for m in requests.iter().chain(&responses) {
                if let Ok(t) = m.data_str()
                    && !t.is_empty()
                {
                    docs.push(t.to_string());
                }
            }
        }
        docs
    }

    /// The pull reader's answer for `doc` against the quick-xml borrowing reader's
    /// (`fast`) and the owned reader's, read as a generic value, a text and a number:
    /// where it takes the document, the same value or an error where they give one.
    /// Returns whether it took the document.
    fn agrees(doc: &str) -> bool {
        fn one<T: DeserializeOwned + std::fmt::Debug>(doc: &str) -> bool {
            let quick = format!("{:?}", super::super::fast::fast::<T>(doc).ok());
            let owned = from_str(doc).and_then(|v| from_value::<T>(&v));
            match read::<T>(doc) {
                Ok(Ok(v)) => {
                    assert_eq!(format!("{:?}", Some(&v)), quick, "{doc}");
                    assert_eq!(
                        format!("{:?}", Some(&v)),
                        format!("{:?}", owned.ok()),
                        "{doc}"
                    );
                    true
                }
                Ok(Err(_)) => {
                    assert_eq!(quick, "None", "{doc}");
                    assert!(owned.is_err(), "{doc}");
                    true
                }
                Err(GiveUp) => false,
            }
        }
        let taken = one::<serde_yaml::Value>(doc);
        one::<Option<String>>(doc);
        one::<Option<i64>>(doc);
        taken
    }

    #[test]
    fn recorded_clixml_reads_as_the_quick_xml_readers_read_it() {
        let docs = recorded_docs();
        assert!(docs.len() > 200, "{} documents", docs.len());
        let taken = docs.iter().filter(|d| agrees(d)).count();
        let quick = docs
            .iter()
            .filter(|d| super::super::fast::fast::<serde_yaml::Value>(d).is_ok())
            .count();
        // Recorded messages are in the usual shape: most are taken here.
        assert!(taken * 10 >= quick * 9, "{taken} of {quick} taken");
    }

    /// Seeded random edits of recorded documents (markup characters, references,
    /// escapes, elements, cuts): never a panic, and what is taken agrees.
    #[test]
    fn mutated_recorded_clixml_reads_as_the_quick_xml_readers_read_it() {
        let docs = recorded_docs();
        let pieces = [
            "<",
            ">",
            "/",
            "\"",
            "'",
            "&",
            "&amp;",
            "&#65;",
            "&#0;",
            "&lt",
            "_x",
            "_x0041_",
            "_xD800_",
            " ",
            "\t",
            "\u{c}",
            "=",
            "Obj",
            "Ref",
            "RefId=\"0\"",
            "N=\"a\"",
            "",
            "\u{10437}",
            "<Nil/>",
            "<S>1</S>",
            "<D>2.5</D>",
            "<!-- c -->",
            "<![CDATA[x]]>",
            "</S>",
            "</Obj>",
            "<MS>",
            "p:",
            "<TNRef RefId=\"0\"/>",
        ];
        // A fixed xorshift sequence: the same cases on every run.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let (mut taken, mut cases) = (0, 0);
        for _ in 0..3000 {
            let mut doc = docs[next(docs.len())].clone();
            for _ in 0..=next(3) {
                let mut at = next(doc.len() + 1);
                while !doc.is_char_boundary(at) {
                    at -= 1;
                }
                let end = doc[at..].chars().next().map_or(at, |c| at + c.len_utf8());
                match next(4) {
                    0 => doc.truncate(at),
                    1 => doc.replace_range(at..at, pieces[next(pieces.len())]),
                    _ => doc.replace_range(at..end, pieces[next(pieces.len())]),
                }
            }
            cases += 1;
            if agrees(&doc) {
                taken += 1;
            }
        }
        // Some mutations leave the document in the usual shape (some 7%); those are
        // read here and compared.
        assert!(taken * 20 > cases, "{taken} of {cases} taken");
    }

    /// Short texts are scanned byte by byte, long ones with `memchr`: the same answer,
    /// wherever the `&`, `_` or `<` is.
    #[test]
    fn short_and_long_texts_scan_alike() {
        // Every length up to three times the word loop's reach, every position of one
        // marked byte, from every offset into an eight-byte word, both stops; a second
        // stop byte after the first changes nothing.
        for len in 0..3 * SHORT {
            for at in 0..len.max(1) {
                for c in [b'&', b'_', b'<', b'"', 0xC3] {
                    for (stop, from) in [(b'"', 0), (b'"', 3), (b'<', 5)] {
                        if c == stop {
                            continue;
                        }
                        let mut text = vec![b'a'; from + len];
                        if len > 0 {
                            text[from + at] = c;
                        }
                        text.push(stop);
                        text.extend_from_slice(b"&_<\"tail\"<");
                        let span = scan(&text, from, stop).unwrap();
                        let marked = len > 0;
                        assert_eq!(span.end, from + len, "{len} {at} {c}");
                        assert_eq!(span.amp, marked && c == b'&', "{len} {at} {c}");
                        assert_eq!(span.underscore, marked && c == b'_', "{len} {at} {c}");
                        assert_eq!(span.lt, marked && c == b'<', "{len} {at} {c}");
                        assert!(scan(&text[..from + len], from, stop).is_none());
                    }
                }
            }
        }
        let long = "_x0041_ &amp; ".repeat(10);
        let doc = format!(
            r#"<Obj><MS><S N="{}">{long}</S></MS></Obj>"#,
            "n".repeat(100)
        );
        assert!(same(&doc));
    }

    #[test]
    fn entity_references_resolve_as_quick_xml_resolves_them() {
        assert_eq!(
            unescape("a&lt;&gt;&amp;&apos;&quot;&#65;&#x1F600;b").unwrap(),
            "a<>&'\"A\u{1F600}b"
        );
        for bad in [
            "&",
            "&x;",
            "&#;",
            "&#x;",
            "&#-1;",
            "&#xG;",
            "&#1a;",
            "&#99999999999;",
        ] {
            assert!(unescape(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// `trimmed` is `str::trim`, on texts with ASCII and Unicode white space (a
        /// no-break space, a line separator) and multi-byte characters at either end.
        #[test]
        fn trimmed_is_trim(s in "[ \t\r\n\u{A0}\u{2028}\u{85}a-z0-9.:+\u{E9}\u{1F600}-]{0,12}") {
            proptest::prop_assert_eq!(trimmed(&s), s.trim());
        }
    }
}
