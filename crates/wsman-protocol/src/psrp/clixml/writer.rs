//! The CLIXML writer: [`PsValue`] to text, as PowerShell writes it: every `Obj` gets a
//! `RefId`, a type-name list repeated in one document is written once as `TN` and then
//! referred to with `TNRef` ([MS-PSRP] §2.2.5.2.3), strings and names carry the
//! `_xHHHH_` encoding (§2.2.5.1.1).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;

use super::escape;
use super::value::{Collection, PsObject, PsValue};

/// Writes `value` as a CLIXML document (no XML declaration, no byte order mark).
pub fn to_string(value: &PsValue) -> String {
    let mut w = Writer {
        // Room for a small message without growing; a large one grows a few times.
        out: String::with_capacity(1024),
        ..Writer::default()
    };
    w.value(None, value);
    w.out
}

#[derive(Default)]
struct Writer {
    out: String,
    next_ref: u32,
    /// The type-name lists written so far, by `RefId` (index). A document usually holds
    /// a few: they are looked up in order (a shared list matches by pointer) until
    /// there are more than [`TYPE_NAMES_SCANNED`]; then by hash.
    seen: Vec<Arc<[String]>>,
    by_names: HashMap<Arc<[String]>, u32>,
}

/// How many type-name lists [`Writer::type_name_ref`] looks up in order.
const TYPE_NAMES_SCANNED: usize = 16;

impl Writer {
    fn open(&mut self, tag: &str, name: Option<&str>) {
        self.out.push('<');
        self.out.push_str(tag);
        if let Some(name) = name {
            self.out.push_str(" N=\"");
            if plain_name(name) {
                // Most names (`NoInput`, `Cmd`, property names): nothing to encode.
                self.out.push_str(name);
            } else {
                self.out
                    .push_str(&quick_xml::escape::escape(escape::encode(name).as_ref()));
            }
            self.out.push('"');
        }
    }

    /// `<tag N="name">value</tag>` for a number (never empty, nothing to escape),
    /// formatted in place.
    fn number(&mut self, tag: &str, name: Option<&str>, value: impl itoa::Integer) {
        self.open(tag, name);
        self.out.push('>');
        self.out.push_str(itoa::Buffer::new().format(value));
        self.close(tag);
    }

    /// `</tag>`.
    fn close(&mut self, tag: &str) {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
    }

    /// `<tag>` (`empty`: `<tag />`).
    fn start(&mut self, tag: &str, empty: bool) {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push_str(if empty { " />" } else { ">" });
    }

    /// `<tag RefId="id"` then `tail`.
    fn ref_id(&mut self, tag: &str, id: u32, tail: &str) {
        self.out.push('<');
        self.out.push_str(tag);
        self.out.push_str(" RefId=\"");
        self.out.push_str(itoa::Buffer::new().format(id));
        self.out.push('"');
        self.out.push_str(tail);
    }

    /// The `RefId` of a type-name list written before, or `None` after recording it as
    /// the next one.
    fn type_name_ref(&mut self, names: &Arc<[String]>) -> Option<u32> {
        if self.seen.len() <= TYPE_NAMES_SCANNED {
            // `Arc`'s equality tries the pointer first: a shared list matches at once.
            if let Some(i) = self.seen.iter().position(|n| n == names) {
                return Some(i as u32);
            }
        } else if let Some(&i) = self.by_names.get(names) {
            return Some(i);
        }
        let id = self.seen.len() as u32;
        self.seen.push(Arc::clone(names));
        if self.seen.len() > TYPE_NAMES_SCANNED {
            if self.by_names.is_empty() {
                for (i, n) in self.seen.iter().enumerate() {
                    self.by_names.entry(Arc::clone(n)).or_insert(i as u32);
                }
            } else {
                self.by_names.entry(Arc::clone(names)).or_insert(id);
            }
        }
        None
    }

    /// `<tag N="name">text</tag>`, `text` XML-escaped.
    fn element(&mut self, tag: &str, name: Option<&str>, text: &str) {
        let plain = plain(text);
        self.write_element(tag, name, text, plain);
    }

    /// `text` is `plain(text)`: it is copied as is, without an escaping pass.
    fn write_element(&mut self, tag: &str, name: Option<&str>, text: &str, plain: bool) {
        self.open(tag, name);
        if text.is_empty() {
            self.out.push_str(" />");
            return;
        }
        self.out.push('>');
        if plain {
            self.out.push_str(text);
        } else {
            self.out.push_str(&quick_xml::escape::partial_escape(text));
        }
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
    }

    /// [`Writer::element`] with the `_xHHHH_` encoding first.
    fn encoded(&mut self, tag: &str, name: Option<&str>, text: &str) {
        if plain(text) {
            // Nothing to encode nor escape (base64 chunks of a file, most strings): one
            // scan, one copy.
            self.write_element(tag, name, text, true);
        } else {
            self.element(tag, name, &escape::encode(text));
        }
    }

    fn value(&mut self, name: Option<&str>, value: &PsValue) {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        match value {
            PsValue::Null => self.element("Nil", name, ""),
            PsValue::Bool(b) => self.element("B", name, if *b { "true" } else { "false" }),
            PsValue::Char(c) => self.element("C", name, &c.to_string()),
            PsValue::I8(v) => self.number("SB", name, *v),
            PsValue::U8(v) => self.number("By", name, *v),
            PsValue::I16(v) => self.number("I16", name, *v),
            PsValue::U16(v) => self.number("U16", name, *v),
            PsValue::I32(v) => self.number("I32", name, *v),
            PsValue::U32(v) => self.number("U32", name, *v),
            PsValue::I64(v) => self.number("I64", name, *v),
            PsValue::U64(v) => self.number("U64", name, *v),
            PsValue::F32(v) => self.element("Sg", name, &float(f64::from(*v), v.to_string())),
            PsValue::F64(v) => self.element("Db", name, &float(*v, v.to_string())),
            PsValue::Decimal(s) => self.element("D", name, s),
            PsValue::String(s) => self.encoded("S", name, s),
            PsValue::DateTime(s) => self.element("DT", name, s),
            PsValue::Duration(s) => self.element("TS", name, s),
            PsValue::Bytes(b) => self.element("BA", name, &b64(b)),
            PsValue::Guid(g) => self.element("G", name, &g.hyphenated().to_string()),
            PsValue::Uri(s) => self.encoded("URI", name, s),
            PsValue::Version(s) => self.element("Version", name, s),
            PsValue::XmlDocument(s) => self.encoded("XD", name, s),
            PsValue::ScriptBlock(s) => self.encoded("SBK", name, s),
            PsValue::SecureString(s) => self.element("SS", name, &b64(s.ciphertext())),
            PsValue::Object(o) => self.object(name, o),
        }
    }

    /// `<Obj N="name" RefId="n">` and the type names (`TN`, or `TNRef` to a list
    /// written before; nothing for an empty list).
    fn object_head(&mut self, name: Option<&str>, type_names: Option<&Arc<[String]>>) {
        self.open("Obj", name);
        self.out.push_str(" RefId=\"");
        self.out.push_str(itoa::Buffer::new().format(self.next_ref));
        self.out.push_str("\">");
        self.next_ref += 1;
        if let Some(type_names) = type_names.filter(|t| !t.is_empty()) {
            if let Some(id) = self.type_name_ref(type_names) {
                self.ref_id("TNRef", id, " />");
            } else {
                let id = self.seen.len() as u32 - 1;
                self.ref_id("TN", id, ">");
                for t in type_names.iter() {
                    self.encoded("T", None, t);
                }
                self.out.push_str("</TN>");
            }
        }
    }

    fn object(&mut self, name: Option<&str>, o: &PsObject) {
        self.object_head(name, Some(&o.type_names));
        if let Some(s) = &o.to_string {
            self.encoded("ToString", None, s);
        }
        if let Some(v) = &o.value {
            self.value(None, v);
        }
        match &o.collection {
            Some(Collection::List(v)) => self.list("LST", v),
            Some(Collection::Stack(v)) => self.list("STK", v),
            Some(Collection::Queue(v)) => self.list("QUE", v),
            Some(Collection::Enumerable(v)) => self.list("IE", v),
            Some(Collection::Dictionary(entries)) => {
                self.out.push_str("<DCT>");
                for (k, v) in entries {
                    self.out.push_str("<En>");
                    self.value(Some("Key"), k);
                    self.value(Some("Value"), v);
                    self.out.push_str("</En>");
                }
                self.out.push_str("</DCT>");
            }
            None => {}
        }
        if !o.adapted.is_empty() {
            self.properties("Props", &o.adapted);
        }
        if !o.extended.is_empty() {
            self.properties("MS", &o.extended);
        }
        self.out.push_str("</Obj>");
    }

    fn list(&mut self, tag: &str, items: &[PsValue]) {
        if items.is_empty() {
            self.start(tag, true);
            return;
        }
        self.start(tag, false);
        for v in items {
            self.value(None, v);
        }
        self.close(tag);
    }

    fn properties(&mut self, tag: &str, props: &[(String, PsValue)]) {
        self.start(tag, false);
        for (n, v) in props {
            self.value(Some(n), v);
        }
        self.close(tag);
    }
}

/// Writes a document piece by piece, for messages of a fixed shape that the client
/// sends often (CREATE_PIPELINE): the same text as building the [`PsValue`] and
/// [`to_string`], without building the tree (RefIds, type-name references and escaping
/// are the writer's own).
pub(crate) struct DirectWriter(Writer);

impl DirectWriter {
    pub(crate) fn new() -> Self {
        DirectWriter(Writer {
            out: String::with_capacity(2048),
            ..Writer::default()
        })
    }

    /// `<Obj N="name" RefId="n">` with its type names (none for `None` or an empty
    /// list); the caller writes the rest and [`DirectWriter::end_object`].
    pub(crate) fn start_object(&mut self, name: Option<&str>, type_names: Option<&Arc<[String]>>) {
        self.0.object_head(name, type_names);
    }

    /// Markup written as is: `<MS>`, `</MS>`, `<LST>`, `</LST>`, `<LST />`.
    pub(crate) fn markup(&mut self, text: &'static str) {
        self.0.out.push_str(text);
    }

    pub(crate) fn end_object(&mut self) {
        self.0.out.push_str("</Obj>");
    }

    pub(crate) fn value(&mut self, name: Option<&str>, value: &PsValue) {
        self.0.value(name, value);
    }

    pub(crate) fn boolean(&mut self, name: &str, b: bool) {
        self.0
            .write_element("B", Some(name), if b { "true" } else { "false" }, true);
    }

    /// A string, or `Nil` for `None`.
    pub(crate) fn string(&mut self, name: &str, s: Option<&str>) {
        match s {
            Some(s) => self.0.encoded("S", Some(name), s),
            None => self.0.write_element("Nil", Some(name), "", true),
        }
    }

    /// A Boolean, or `Nil` for `None`.
    pub(crate) fn opt_boolean(&mut self, name: &str, b: Option<bool>) {
        match b {
            Some(b) => self.boolean(name, b),
            None => self.0.write_element("Nil", Some(name), "", true),
        }
    }

    /// An enum object, as [`PsObject::shared_enumeration`] makes it.
    pub(crate) fn enumeration(
        &mut self,
        name: &str,
        type_names: &Arc<[String]>,
        to_string: &str,
        value: i32,
    ) {
        self.0.object_head(Some(name), Some(type_names));
        self.0.encoded("ToString", None, to_string);
        self.0.number("I32", None, value);
        self.end_object();
    }

    pub(crate) fn finish(self) -> String {
        self.0.out
    }
}

/// True when the attribute value `name` needs neither the `_xHHHH_` encoding nor XML
/// escaping: printable ASCII other than `<`, `>`, `&`, `"` and `'`, with no `_` before an
/// `x` or `X` (`_isHostNull` is plain; names are short, so one pass with a table).
fn plain_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.iter().enumerate().all(|(i, &c)| {
        NAME_PLAIN[c as usize] && (c != b'_' || !matches!(b.get(i + 1), Some(b'x' | b'X')))
    })
}

const NAME_PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0x20;
    while c < 0x7F {
        t[c] = !matches!(c as u8, b'<' | b'>' | b'&' | b'"' | b'\'');
        c += 1;
    }
    t
};

/// True when `text` needs neither the `_xHHHH_` encoding nor XML escaping: printable
/// ASCII other than `<`, `>`, `&` and `_` (so base64, numbers, most names). Checked in
/// blocks without an early exit inside them, which the compiler vectorizes; the answer
/// only picks the fast path, the bytes written are the same either way.
fn plain(text: &str) -> bool {
    text.as_bytes().chunks(64).all(|block| {
        block.iter().fold(true, |ok, &b| {
            ok & (0x20..0x7F).contains(&b) & (b != b'<') & (b != b'>') & (b != b'&') & (b != b'_')
        })
    })
}

fn float(v: f64, display: String) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "INF".into() } else { "-INF".into() }
    } else {
        display
    }
}

#[cfg(test)]
mod fast_path_tests {
    use super::*;

    /// What the writer wrote before its fast path: the `_xHHHH_` encoding, then
    /// quick-xml's escaping, for every string.
    fn slow(tag: &str, text: &str) -> String {
        let text = quick_xml::escape::partial_escape(escape::encode(text).as_ref()).into_owned();
        if text.is_empty() {
            format!("<{tag} />")
        } else {
            format!("<{tag}>{text}</{tag}>")
        }
    }

    /// Type-name lists are written once and referred to afterwards, whether the same
    /// shared list comes again or an equal one built anew, past the lists looked up in
    /// order and into those looked up by hash; the reader reads every object's names
    /// back.
    #[test]
    fn repeated_type_names_become_references_in_order_and_by_hash() {
        let lists: Vec<Arc<[String]>> = (0..3 * TYPE_NAMES_SCANNED)
            .map(|i| [format!("T{i}"), "System.Object".to_string()].into())
            .collect();
        let object =
            |names: Arc<[String]>| PsValue::from(PsObject::new().with_shared_type_names(names));
        let mut items: Vec<PsValue> = lists.iter().map(|l| object(Arc::clone(l))).collect();
        // Again: the shared lists, then equal lists built anew, in another order.
        items.extend(lists.iter().rev().map(|l| object(Arc::clone(l))));
        items.extend(lists.iter().map(|l| object(l.iter().cloned().collect())));
        let doc = to_string(&PsObject::list(["L"], items.clone()).into());
        let n = lists.len();
        assert_eq!(doc.matches("<TN RefId=").count(), n + 1, "{doc}");
        assert_eq!(doc.matches("<TNRef RefId=").count(), 2 * n, "{doc}");
        for (i, _) in lists.iter().enumerate() {
            // The (i+1)th list written (after the outer list's) is referred to by its id.
            let id = i + 1;
            assert_eq!(doc.matches(&format!("<TNRef RefId=\"{id}\" />")).count(), 2);
        }
        let back = super::super::reader::from_str(&doc).expect("reads back");
        assert_eq!(back.as_list().expect("a list"), &items[..]);
    }

    /// A name the plain path copies is exactly one the encoding and escaping leave as
    /// it is.
    #[test]
    fn plain_names_are_those_encoding_and_escaping_leave_alone() {
        let chars = [
            'a', 'x', 'X', '_', '<', '&', '"', '\'', '>', ' ', '\t', '\u{7F}', 'é', '5',
        ];
        let mut names = vec![String::new()];
        for a in chars {
            for b in chars {
                for c in chars {
                    names.push([a, b, c].iter().collect());
                }
            }
        }
        for n in names {
            let slow = quick_xml::escape::escape(escape::encode(&n).as_ref()).into_owned();
            if plain_name(&n) {
                assert_eq!(slow, n, "{n:?}");
            }
            let mut w = Writer::default();
            w.open("S", Some(&n));
            assert_eq!(w.out, format!("<S N=\"{slow}\""), "{n:?}");
        }
        assert!(plain_name("_isHostNull") && !plain_name("a_xb") && !plain_name("a\"b"));
        assert!(!plain_name("a_Xb") && plain_name("a_Yb"));
    }

    #[test]
    fn fast_path_writes_the_same_bytes() {
        let base64 =
            base64::engine::general_purpose::STANDARD.encode((0..=255u8).collect::<Vec<_>>());
        let mut samples = vec![String::new(), base64.clone(), "sha256:0a1b".to_string()];
        // Every ASCII character and a few others, alone, inside base64 text and at the
        // end of a block of the scan.
        let others = [
            '\u{80}',
            '\u{9F}',
            '\u{A0}',
            'é',
            '\u{FFFE}',
            '\u{FFFF}',
            '\u{10437}',
        ];
        for c in (0..0x80u8).map(char::from).chain(others) {
            samples.push(c.to_string());
            samples.push(format!("{base64}{c}{base64}"));
            samples.push(format!("{}{c}", &base64[..63]));
            samples.push(format!("_{c}"));
        }
        for s in samples {
            let got = to_string(&PsValue::String(s.clone()));
            assert_eq!(got, slow("S", &s), "{s:?}");
            let b = PsValue::Bytes(s.clone().into_bytes());
            assert_eq!(
                to_string(&b),
                slow(
                    "BA",
                    &base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
                )
            );
        }
        assert!(plain(&base64));
        assert!(!plain("a_xb") && !plain("a<b") && !plain("a\tb") && !plain("é"));
    }
}
