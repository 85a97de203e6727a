//! The CLIXML reader: text to [`PsValue`], with `RefId`/`Ref` and `TN`/`TNRef`
//! resolved ([MS-PSRP] §2.2.5.2.2, §2.2.5.2.3) and limits on depth, value count and
//! length, so hostile input ends in a typed error, never a panic or unbounded memory.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use super::escape;
use super::value::{Collection, EncryptedString, PsObject, PsValue};
use crate::psrp::error::{Error, Result};

/// How many attributes one CLIXML element may carry (`N`, `RefId`, `S`, namespace
/// declarations); more is refused as malformed.
const MAX_ATTRIBUTES: usize = 16;

/// Limits of the CLIXML reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadLimits {
    /// How deeply values may nest (an object in a property of an object ... ).
    pub max_depth: usize,
    /// How many values (primitives and objects, `Ref`s included) one document may hold.
    pub max_values: usize,
    /// The longest document accepted, in bytes.
    pub max_len: usize,
}

impl Default for ReadLimits {
    /// Depth 64 (PowerShell's own serialization depth rarely passes 10), 4 million values,
    /// 64 MiB.
    fn default() -> Self {
        ReadLimits {
            max_depth: 64,
            max_values: 4 << 20,
            max_len: 64 << 20,
        }
    }
}

/// Reads one CLIXML value (a PSRP message's data) with the default limits.
///
/// # Errors
///
/// Any CLIXML [`Error`]: malformed XML, unknown elements, invalid primitive text,
/// undefined references, exceeded limits.
pub fn from_str(text: &str) -> Result<PsValue> {
    from_str_with(text, ReadLimits::default())
}

/// Reads one CLIXML value with the given limits.
///
/// # Errors
///
/// As [`from_str`].
pub fn from_str_with(text: &str, limits: ReadLimits) -> Result<PsValue> {
    let mut values = read(text, limits, false)?;
    values.pop().map(|(_, v)| v).ok_or(Error::Empty)
}

/// Reads an `<Objs>` document (as `Export-Clixml` writes) into its values; a document
/// that is a single value gives a list of one.
///
/// # Errors
///
/// As [`from_str`].
pub fn from_str_all(text: &str, limits: ReadLimits) -> Result<Vec<PsValue>> {
    Ok(read(text, limits, true)?
        .into_iter()
        .map(|(_, v)| v)
        .collect())
}

/// As [`from_str_all`], with each top-level value's stream: the `S` attribute
/// (`Error`, `progress`, `Warning`, ...) that `powershell.exe` puts on the values it
/// writes to stderr after `#< CLIXML` (the caller strips that line).
///
/// # Errors
///
/// As [`from_str`].
pub fn from_str_streams(text: &str, limits: ReadLimits) -> Result<Vec<(Option<String>, PsValue)>> {
    read(text, limits, true)
}

fn read(
    text: &str,
    limits: ReadLimits,
    allow_objs: bool,
) -> Result<Vec<(Option<String>, PsValue)>> {
    if text.len() > limits.max_len {
        return Err(Error::TooLong(limits.max_len));
    }
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    let cfg = reader.config_mut();
    cfg.check_end_names = true;
    cfg.expand_empty_elements = false;
    cfg.trim_text(false);
    let mut parser = Parser {
        reader,
        limits,
        depth: 0,
        values: 0,
        objects: HashMap::new(),
        type_names: HashMap::new(),
    };
    let mut out = Vec::new();
    loop {
        match parser.next()? {
            Event::Start(e) if allow_objs && e.local_name().as_ref() == b"Objs" => {
                parser.read_streams_into(&mut out)?;
            }
            Event::Empty(e) if allow_objs && e.local_name().as_ref() == b"Objs" => {}
            Event::Start(e) if out.is_empty() || allow_objs => {
                let stream = parser.attrs(&e)?.stream;
                out.push((stream, parser.read_value(&e, false)?.1));
            }
            Event::Empty(e) if out.is_empty() || allow_objs => {
                let stream = parser.attrs(&e)?.stream;
                out.push((stream, parser.read_value(&e, true)?.1));
            }
            Event::Start(e) | Event::Empty(e) => {
                return Err(Error::UnexpectedElement {
                    element: name_of(&e),
                    context: "document after its value",
                });
            }
            Event::Text(t) if is_blank(&t) => {}
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                return Err(Error::UnexpectedElement {
                    element: "#text".into(),
                    context: "document",
                });
            }
            Event::Eof => break,
            Event::End(e) => {
                return Err(parser.syntax(format!(
                    "unexpected </{}>",
                    String::from_utf8_lossy(e.local_name().as_ref())
                )));
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if out.is_empty() && !allow_objs {
        return Err(Error::Empty);
    }
    Ok(out)
}

fn is_blank(t: &[u8]) -> bool {
    t.iter().all(u8::is_ascii_whitespace)
}

fn name_of(e: &BytesStart<'_>) -> String {
    crate::xml::excerpt(&String::from_utf8_lossy(e.local_name().as_ref()), 40)
}

struct Parser<'t> {
    reader: Reader<&'t [u8]>,
    limits: ReadLimits,
    depth: usize,
    values: usize,
    objects: HashMap<String, Arc<PsObject>>,
    type_names: HashMap<String, Arc<[String]>>,
}

/// The attributes a value element may carry.
#[derive(Default)]
struct Attrs {
    name: Option<String>,
    ref_id: Option<String>,
    stream: Option<String>,
}

impl<'t> Parser<'t> {
    fn syntax(&self, message: String) -> Error {
        Error::Xml {
            position: self.reader.buffer_position(),
            message: crate::xml::excerpt(&message, 200),
        }
    }

    fn next(&mut self) -> Result<Event<'t>> {
        self.reader.read_event().map_err(|e| Error::Xml {
            position: self.reader.buffer_position(),
            message: crate::xml::excerpt(&e.to_string(), 200),
        })
    }

    fn attrs(&self, e: &BytesStart<'_>) -> Result<Attrs> {
        let mut out = Attrs::default();
        for (count, a) in e.attributes().with_checks(false).enumerate() {
            // CLIXML elements carry two or three attributes; the cap keeps hostile
            // input from making attribute scanning expensive.
            if count >= MAX_ATTRIBUTES {
                return Err(self.syntax(format!(
                    "more than {MAX_ATTRIBUTES} attributes on one element"
                )));
            }
            let a = a.map_err(|err| self.syntax(err.to_string()))?;
            let which = match a.key.local_name().as_ref() {
                b"N" => &mut out.name,
                b"RefId" => &mut out.ref_id,
                b"S" => &mut out.stream,
                _ => continue,
            };
            let v = a
                .unescape_value()
                .map_err(|err| self.syntax(err.to_string()))?;
            *which = Some(v.into_owned());
        }
        Ok(out)
    }

    /// Reads the character data up to the end of the element just opened, borrowed from
    /// the input when it is one piece without entity references.
    fn read_text(&mut self, empty: bool) -> Result<Cow<'t, str>> {
        let mut out: Cow<'t, str> = Cow::Borrowed("");
        if empty {
            return Ok(out);
        }
        loop {
            match self.next()? {
                Event::Text(t) => {
                    let piece = match t.into_inner() {
                        Cow::Borrowed(b) => {
                            Cow::Borrowed(crate::xml::utf8(b).map_err(|_| Error::NotUtf8)?)
                        }
                        Cow::Owned(v) => {
                            Cow::Owned(String::from_utf8(v).map_err(|_| Error::NotUtf8)?)
                        }
                    };
                    append(&mut out, piece);
                }
                Event::CData(c) => {
                    let s = c.decode().map_err(|e| self.syntax(e.to_string()))?;
                    append(&mut out, Cow::Owned(s.into_owned()));
                }
                Event::GeneralRef(r) => match r.resolve_char_ref() {
                    Ok(Some(ch)) => out.to_mut().push(ch),
                    Ok(None) => {
                        let name = r.decode().map_err(|e| self.syntax(e.to_string()))?;
                        match quick_xml::escape::resolve_predefined_entity(&name) {
                            Some(s) => out.to_mut().push_str(s),
                            None => return Err(self.syntax(format!("unknown entity &{name};"))),
                        }
                    }
                    Err(e) => return Err(self.syntax(e.to_string())),
                },
                Event::End(_) => return Ok(out),
                Event::Start(e) | Event::Empty(e) => {
                    return Err(Error::UnexpectedElement {
                        element: name_of(&e),
                        context: "a primitive value",
                    });
                }
                Event::Eof => return Err(self.syntax("unexpected end of document".into())),
                Event::Comment(_) | Event::PI(_) | Event::Decl(_) | Event::DocType(_) => {}
            }
        }
    }

    /// Reads over the content of the element just opened, refusing nested elements.
    fn skip(&mut self, empty: bool) -> Result<()> {
        self.read_text(empty).map(drop)
    }

    fn count(&mut self) -> Result<()> {
        self.values += 1;
        if self.values > self.limits.max_values {
            return Err(Error::TooManyValues(self.limits.max_values));
        }
        Ok(())
    }

    /// Reads the value element `e` (already opened) and returns its `N` and value.
    fn read_value(&mut self, e: &BytesStart<'_>, empty: bool) -> Result<(Option<String>, PsValue)> {
        self.count()?;
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(Error::TooDeep(self.limits.max_depth));
        }
        let attrs = self.attrs(e)?;
        let value = self.read_value_body(e, empty, attrs.ref_id)?;
        self.depth -= 1;
        Ok((attrs.name.map(decoded), value))
    }

    fn read_value_body(
        &mut self,
        e: &BytesStart<'_>,
        empty: bool,
        ref_id: Option<String>,
    ) -> Result<PsValue> {
        let tag = e.local_name();
        let tag = tag.as_ref();
        macro_rules! parse {
            ($variant:ident, $name:literal) => {{
                let text = self.read_text(empty)?;
                let t = text.trim();
                PsValue::$variant(t.parse().map_err(|_| Error::invalid($name, t))?)
            }};
        }
        Ok(match tag {
            b"Nil" => {
                self.skip(empty)?;
                PsValue::Null
            }
            b"S" => PsValue::String(decoded(self.read_text(empty)?)),
            b"B" => {
                let text = self.read_text(empty)?;
                match text.trim() {
                    "true" | "1" => PsValue::Bool(true),
                    "false" | "0" => PsValue::Bool(false),
                    other => return Err(Error::invalid("B", other)),
                }
            }
            b"C" => parse!(Char, "C"),
            b"SB" => parse!(I8, "SB"),
            b"By" => parse!(U8, "By"),
            b"I16" => parse!(I16, "I16"),
            b"U16" => parse!(U16, "U16"),
            b"I32" => parse!(I32, "I32"),
            b"U32" => parse!(U32, "U32"),
            b"I64" => parse!(I64, "I64"),
            b"U64" => parse!(U64, "U64"),
            b"Sg" => parse!(F32, "Sg"),
            b"Db" => parse!(F64, "Db"),
            b"G" => parse!(Guid, "G"),
            b"D" => PsValue::Decimal(self.read_text(empty)?.trim().to_string()),
            b"DT" => PsValue::DateTime(self.read_text(empty)?.trim().to_string()),
            b"TS" => PsValue::Duration(self.read_text(empty)?.trim().to_string()),
            b"Version" => PsValue::Version(self.read_text(empty)?.trim().to_string()),
            b"URI" => PsValue::Uri(decoded(self.read_text(empty)?)),
            b"XD" => PsValue::XmlDocument(decoded(self.read_text(empty)?)),
            b"SBK" => PsValue::ScriptBlock(decoded(self.read_text(empty)?)),
            b"BA" => PsValue::Bytes(base64(&self.read_text(empty)?, "BA")?),
            b"SS" => PsValue::SecureString(EncryptedString(base64(&self.read_text(empty)?, "SS")?)),
            b"Obj" => PsValue::Object(self.read_object(empty, ref_id)?),
            b"PR" => PsValue::Object(Arc::new(self.read_progress(empty)?)),
            b"Ref" => {
                self.skip(empty)?;
                let id = ref_id.unwrap_or_default();
                match self.objects.get(&id) {
                    Some(o) => PsValue::Object(o.clone()),
                    None => {
                        return Err(Error::UnknownRef {
                            kind: "Ref",
                            ref_id: crate::xml::excerpt(&id, 40),
                        });
                    }
                }
            }
            _ => {
                return Err(Error::UnexpectedElement {
                    element: name_of(e),
                    context: "a value",
                });
            }
        })
    }

    fn read_object(&mut self, empty: bool, ref_id: Option<String>) -> Result<Arc<PsObject>> {
        let mut obj = PsObject::new();
        if !empty {
            loop {
                let (e, child_empty) = match self.next()? {
                    Event::Start(e) => (e, false),
                    Event::Empty(e) => (e, true),
                    Event::End(_) => break,
                    Event::Text(t) if is_blank(&t) => continue,
                    Event::Comment(_) | Event::PI(_) => continue,
                    Event::Eof => return Err(self.syntax("unexpected end of document".into())),
                    _ => {
                        return Err(Error::UnexpectedElement {
                            element: "#text".into(),
                            context: "Obj",
                        });
                    }
                };
                match e.local_name().as_ref() {
                    b"TN" => {
                        let id = self.attrs(&e)?.ref_id;
                        let names: Arc<[String]> = self.read_type_names(child_empty)?.into();
                        if let Some(id) = id {
                            self.type_names.insert(id, names.clone());
                        }
                        obj.type_names = names;
                    }
                    b"TNRef" => {
                        let id = self.attrs(&e)?.ref_id.unwrap_or_default();
                        self.skip(child_empty)?;
                        obj.type_names =
                            self.type_names
                                .get(&id)
                                .cloned()
                                .ok_or_else(|| Error::UnknownRef {
                                    kind: "TNRef",
                                    ref_id: crate::xml::excerpt(&id, 40),
                                })?;
                    }
                    b"ToString" => obj.to_string = Some(decoded(self.read_text(child_empty)?)),
                    b"LST" => {
                        obj.collection =
                            Some(Collection::List(self.read_items(child_empty, "LST")?))
                    }
                    b"IE" => {
                        obj.collection =
                            Some(Collection::Enumerable(self.read_items(child_empty, "IE")?))
                    }
                    b"QUE" => {
                        obj.collection =
                            Some(Collection::Queue(self.read_items(child_empty, "QUE")?))
                    }
                    b"STK" => {
                        obj.collection =
                            Some(Collection::Stack(self.read_items(child_empty, "STK")?))
                    }
                    b"DCT" => {
                        obj.collection =
                            Some(Collection::Dictionary(self.read_dictionary(child_empty)?))
                    }
                    b"Props" => self.read_properties(child_empty, &mut obj.adapted)?,
                    b"MS" => self.read_properties(child_empty, &mut obj.extended)?,
                    _ => obj.value = Some(self.read_value(&e, child_empty)?.1),
                }
            }
        }
        let obj = Arc::new(obj);
        if let Some(id) = ref_id {
            self.objects.insert(id, obj.clone());
        }
        Ok(obj)
    }

    /// Reads a `<PR>` progress record (§2.2.5.1.25) into an object with the
    /// `ProgressRecord` property names: `AV` Activity, `AI` ActivityId, `CO`/`Nil`
    /// CurrentOperation, `PI` ParentActivityId, `PC` PercentComplete, `T` Type, `SR`
    /// SecondsRemaining, `SD` StatusDescription.
    fn read_progress(&mut self, empty: bool) -> Result<PsObject> {
        let mut o = PsObject::new().with_type_names([
            "System.Management.Automation.ProgressRecord",
            "System.Object",
        ]);
        if empty {
            return Ok(o);
        }
        loop {
            let (e, child_empty) = match self.next()? {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(_) => return Ok(o),
                Event::Text(t) if is_blank(&t) => continue,
                Event::Comment(_) | Event::PI(_) => continue,
                Event::Eof => return Err(self.syntax("unexpected end of document".into())),
                _ => {
                    return Err(Error::UnexpectedElement {
                        element: "#text".into(),
                        context: "PR",
                    });
                }
            };
            self.count()?;
            let tag = e.local_name();
            let (name, int) = match tag.as_ref() {
                b"AV" => ("Activity", false),
                b"AI" => ("ActivityId", true),
                b"CO" | b"Nil" => ("CurrentOperation", false),
                b"PI" => ("ParentActivityId", true),
                b"PC" => ("PercentComplete", true),
                b"T" => ("Type", false),
                b"SR" => ("SecondsRemaining", true),
                b"SD" => ("StatusDescription", false),
                _ => {
                    return Err(Error::UnexpectedElement {
                        element: name_of(&e),
                        context: "PR",
                    });
                }
            };
            let is_nil = tag.as_ref() == b"Nil";
            let text = decoded(self.read_text(child_empty)?);
            let value = if is_nil {
                PsValue::Null
            } else if int {
                PsValue::I32(
                    text.trim()
                        .parse()
                        .map_err(|_| Error::invalid("PR", &text))?,
                )
            } else {
                PsValue::String(text)
            };
            o.extended.push((name.to_string(), value));
        }
    }

    fn read_type_names(&mut self, empty: bool) -> Result<Vec<String>> {
        let mut names = Vec::new();
        if empty {
            return Ok(names);
        }
        loop {
            match self.next()? {
                Event::Start(e) if e.local_name().as_ref() == b"T" => {
                    self.count()?;
                    names.push(decoded(self.read_text(false)?));
                }
                Event::Empty(e) if e.local_name().as_ref() == b"T" => {
                    self.count()?;
                    names.push(String::new());
                }
                Event::Start(e) | Event::Empty(e) => {
                    return Err(Error::UnexpectedElement {
                        element: name_of(&e),
                        context: "TN",
                    });
                }
                Event::End(_) => return Ok(names),
                Event::Text(t) if is_blank(&t) => {}
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => return Err(self.syntax("unexpected end of document".into())),
                _ => {
                    return Err(Error::UnexpectedElement {
                        element: "#text".into(),
                        context: "TN",
                    });
                }
            }
        }
    }

    /// Reads child value elements up to the end of the current element, calling `each`
    /// with each one's name and value.
    fn read_children(
        &mut self,
        empty: bool,
        context: &'static str,
        each: &mut dyn FnMut(Option<String>, PsValue),
    ) -> Result<()> {
        if empty {
            return Ok(());
        }
        loop {
            match self.next()? {
                Event::Start(e) => {
                    let (n, v) = self.read_value(&e, false)?;
                    each(n, v);
                }
                Event::Empty(e) => {
                    let (n, v) = self.read_value(&e, true)?;
                    each(n, v);
                }
                Event::End(_) => return Ok(()),
                Event::Text(t) if is_blank(&t) => {}
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => return Err(self.syntax("unexpected end of document".into())),
                _ => {
                    return Err(Error::UnexpectedElement {
                        element: "#text".into(),
                        context,
                    });
                }
            }
        }
    }

    fn read_items(&mut self, empty: bool, context: &'static str) -> Result<Vec<PsValue>> {
        let mut items = Vec::new();
        self.read_children(empty, context, &mut |_, v| items.push(v))?;
        Ok(items)
    }

    /// Reads the values of an `<Objs>` element with their `S` stream attributes.
    fn read_streams_into(&mut self, out: &mut Vec<(Option<String>, PsValue)>) -> Result<()> {
        loop {
            let (e, empty) = match self.next()? {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(_) => return Ok(()),
                Event::Text(t) if is_blank(&t) => continue,
                Event::Comment(_) | Event::PI(_) => continue,
                Event::Eof => return Err(self.syntax("unexpected end of document".into())),
                _ => {
                    return Err(Error::UnexpectedElement {
                        element: "#text".into(),
                        context: "Objs",
                    });
                }
            };
            let stream = self.attrs(&e)?.stream;
            let value = self.read_value(&e, empty)?.1;
            out.push((stream, value));
        }
    }

    fn read_properties(&mut self, empty: bool, out: &mut Vec<(String, PsValue)>) -> Result<()> {
        self.read_children(empty, "a property set", &mut |n, v| {
            out.push((n.unwrap_or_default(), v));
        })
    }

    fn read_dictionary(&mut self, empty: bool) -> Result<Vec<(PsValue, PsValue)>> {
        let mut entries = Vec::new();
        if empty {
            return Ok(entries);
        }
        loop {
            match self.next()? {
                Event::Start(e) if e.local_name().as_ref() == b"En" => {
                    let mut key = None;
                    let mut value = None;
                    self.read_children(false, "En", &mut |n, v| match n.as_deref() {
                        Some("Key") => key = Some(v),
                        _ => value = Some(v),
                    })?;
                    let key = key.ok_or(Error::MissingProperty {
                        message: "dictionary entry",
                        property: "Key",
                    })?;
                    entries.push((key, value.unwrap_or(PsValue::Null)));
                }
                Event::Start(e) | Event::Empty(e) => {
                    return Err(Error::UnexpectedElement {
                        element: name_of(&e),
                        context: "DCT",
                    });
                }
                Event::End(_) => return Ok(entries),
                Event::Text(t) if is_blank(&t) => {}
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => return Err(self.syntax("unexpected end of document".into())),
                _ => {
                    return Err(Error::UnexpectedElement {
                        element: "#text".into(),
                        context: "DCT",
                    });
                }
            }
        }
    }
}

/// `s` with its `_xHHHH_` escapes resolved, owned.
fn decoded(s: impl Into<String> + AsRef<str>) -> String {
    match escape::decode(s.as_ref()) {
        Cow::Borrowed(_) => s.into(),
        Cow::Owned(o) => o,
    }
}

fn append<'t>(out: &mut Cow<'t, str>, piece: Cow<'t, str>) {
    if out.is_empty() {
        *out = piece;
    } else {
        out.to_mut().push_str(&piece);
    }
}

pub(super) fn base64(text: &str, element: &'static str) -> Result<Vec<u8>> {
    let compact: Cow<'_, str> = if text.bytes().any(|b| b.is_ascii_whitespace()) {
        Cow::Owned(text.chars().filter(|c| !c.is_ascii_whitespace()).collect())
    } else {
        Cow::Borrowed(text)
    };
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| Error::invalid(element, text))
}
