//! A pull reader over quick-xml events that checks a document as [`super::parse`] does
//! (well-formedness, namespace declarations, the `MAX_*` limits, references, no
//! DOCTYPE) but builds no element tree: element names come back resolved against the
//! declarations in scope, and attributes and character data as slices of the document.
//! For readers of a few fields of a hot response (WinRS); it accepts exactly what the tree
//! reader accepts (its checks are the tree reader's), so a caller may fall back to the
//! tree reader for the detailed error.
//!
//! Tags and text in their plain forms (most of a WinRS response: a plain name, attributes
//! ` name="value"` without `<` or `&`, end tags written exactly, text without references)
//! are read here without quick-xml's tokenizer, which costs several hundred instructions
//! per event; anything else goes through quick-xml. End tags are matched against the
//! scanner's own stack of open elements, for both.

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::reader::Reader;
use smallvec::SmallVec;

use super::{
    MAX_ATTRIBUTES, MAX_DEPTH, MAX_NAMESPACES_IN_SCOPE, ParseError, XMLNS_NS, excerpt, split_qname,
};
use crate::ns;

/// A prefix (None: unprefixed), the [`Bindings::generation`] it was resolved in, and
/// its namespace.
type Resolved<'t> = (Option<&'t [u8]>, u64, Option<&'t str>);

/// Attributes split by [`plain_attributes`]: (qualified name, value).
type Pairs<'a> = SmallVec<[(&'a [u8], &'a [u8]); 12]>;

/// A plain leaf: its qualified name, attributes (raw), text and length in bytes.
type Leaf<'a> = (&'a [u8], &'a [u8], &'a [u8], usize);

/// One step of a [`Scanner`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<'t> {
    /// An element opened (`empty`: it was `<x/>`, and no [`Step::End`] follows). Its
    /// namespace is [`Scanner::ns`], its attributes [`Scanner::attr`].
    Start {
        /// Local name.
        local: &'t str,
        /// The element was written `<x/>`.
        empty: bool,
    },
    /// The innermost open element closed.
    End,
    /// A piece of character data of the innermost open element: text (borrowed from
    /// the document), a CDATA section or a resolved reference.
    Text(Cow<'t, str>),
    /// The document ended, well-formed.
    Eof,
}

/// The pull reader; see the module documentation.
pub struct Scanner<'t> {
    reader: Reader<&'t [u8]>,
    text: &'t str,
    scope: Bindings<'t>,
    /// Per open element: the bindings in scope before it, its declarations and its
    /// qualified name (end tags are checked against it here, not by quick-xml, as some
    /// tags never go through quick-xml).
    frames: SmallVec<[(usize, usize, &'t [u8]); 16]>,
    in_scope: usize,
    root_done: bool,
    /// After an empty element: the bindings to drop before the next step.
    pending_truncate: Option<usize>,
    /// The last opened element: its prefix (its namespace is resolved when asked for)
    /// and attributes (qualified name, value).
    prefix: Option<&'t [u8]>,
    /// The last namespace [`Scanner::ns`] resolved: for which prefix, with which
    /// declarations in scope ([`Bindings::generation`]).
    ns_cache: std::cell::Cell<Option<Resolved<'t>>>,
    attrs: SmallVec<[(&'t str, Cow<'t, str>); 4]>,
    /// The attributes of a start tag in the usual form (see [`plain_attributes`]).
    plain: Pairs<'t>,
    /// The last event was a tag (or nothing was read yet), so the reader stands right
    /// before the next token.
    after_tag: bool,
    /// The tokenizer has read an event (it drops a byte order mark at its first read,
    /// wherever it then stands).
    tokenized: bool,
    /// A plain leaf taken past the reader (see [`plain_leaf`]): its text, then its end.
    leaf_text: Option<&'t str>,
    leaf_end: bool,
}

impl std::fmt::Debug for Scanner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("depth", &self.frames.len())
            .finish_non_exhaustive()
    }
}

impl<'t> Scanner<'t> {
    /// A scanner over a document already decoded to text ([`super::decode_text`]).
    pub fn new(text: &'t str) -> Scanner<'t> {
        let mut reader = Reader::from_str(text);
        {
            let cfg = reader.config_mut();
            cfg.check_end_names = false;
            cfg.allow_unmatched_ends = true;
            cfg.expand_empty_elements = false;
        }
        Scanner {
            reader,
            text,
            scope: Bindings::new(),
            frames: SmallVec::new(),
            in_scope: 0,
            root_done: false,
            pending_truncate: None,
            prefix: None,
            ns_cache: std::cell::Cell::new(None),
            attrs: SmallVec::new(),
            plain: SmallVec::new(),
            after_tag: true,
            tokenized: false,
            leaf_text: None,
            leaf_end: false,
        }
    }

    /// How many elements are open (after a [`Step::Start`], the new one included; an
    /// empty element is counted until the next step).
    #[inline]
    pub fn depth(&self) -> usize {
        self.frames.len() + usize::from(self.pending_truncate.is_some())
    }

    /// The namespace of the last opened element (resolved when asked for: most elements
    /// a reader passes over are never asked).
    #[inline]
    pub fn ns(&self) -> Option<&'t str> {
        // Mostly the same prefix as the last time, with the same declarations in scope.
        let generation = self.scope.generation;
        if let Some((prefix, at, ns)) = self.ns_cache.get()
            && at == generation
            && match (prefix, self.prefix) {
                (Some(a), Some(b)) => same(a, b),
                (None, None) => true,
                _ => false,
            }
        {
            return ns;
        }
        let ns = self.scope.resolve(self.prefix, true);
        self.ns_cache.set(Some((self.prefix, generation, ns)));
        ns
    }

    /// An attribute of the last opened element by local name, as
    /// [`super::Element::attr`] finds it: an attribute without a namespace first, else
    /// any with that local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        let local = |q: &'t str| -> (Option<&[u8]>, &[u8]) { split_qname(q.as_bytes()) };
        self.attrs
            .iter()
            .find(|(q, _)| {
                let (prefix, l) = local(q);
                l == name.as_bytes()
                    && (prefix.is_none() || self.scope.resolve(prefix, false).is_none())
            })
            .or_else(|| {
                self.attrs
                    .iter()
                    .find(|(q, _)| local(q).1 == name.as_bytes())
            })
            .map(|(_, v)| v.as_ref())
    }

    fn syntax(&self, message: String) -> ParseError {
        ParseError::Syntax {
            position: self.reader.buffer_position(),
            message: excerpt(&message, 200),
        }
    }

    /// One attribute (the `count`th) of the element being opened: a namespace
    /// declaration goes into scope (its value as written, as namespace names are
    /// compared), any other is kept, unescaped. The checks of the tree reader.
    fn attribute(
        &mut self,
        count: usize,
        key: &'t str,
        value: Cow<'t, str>,
        first: usize,
        decls: &mut usize,
    ) -> Result<(), ParseError> {
        if count >= MAX_ATTRIBUTES {
            return Err(self.syntax(format!(
                "more than {MAX_ATTRIBUTES} attributes on one element"
            )));
        }
        let declared = match key.as_bytes().strip_prefix(b"xmlns") {
            Some([]) => Some(&[][..]),
            Some([b':', prefix @ ..]) => Some(prefix),
            _ => None,
        };
        if let Some(prefix) = declared {
            *decls += 1;
            if self.in_scope + *decls > MAX_NAMESPACES_IN_SCOPE {
                return Err(self.syntax(format!(
                    "more than {MAX_NAMESPACES_IN_SCOPE} namespace declarations in scope"
                )));
            }
            // A declaration's value is never unescaped (namespace names are compared as
            // written), so it is a slice of the document either way.
            let uri = match value {
                Cow::Borrowed(v) => v,
                Cow::Owned(_) => return Err(self.syntax("unexpected declaration value".into())),
            };
            if let Err(m) = self.scope.declare(prefix, uri, first) {
                return Err(self.syntax(m));
            }
            return Ok(());
        }
        if self
            .attrs
            .iter()
            .any(|(q, _)| same(q.as_bytes(), key.as_bytes()))
        {
            return Err(self.syntax(format!("duplicate attribute {}", excerpt(key, 40))));
        }
        self.attrs.push((key, value));
        Ok(())
    }

    /// Opens a plain leaf with the first `n` attributes of `self.plain`: the checks of
    /// any start tag.
    fn open(&mut self, qname: &'t [u8], n: usize, empty: bool) -> Result<Step<'t>, ParseError> {
        if self.root_done {
            return Err(self.syntax("content after the root element".into()));
        }
        if self.frames.len() >= MAX_DEPTH {
            return Err(ParseError::TooDeep);
        }
        self.attrs.clear();
        let first = self.scope.len();
        let mut decls = 0;
        for i in 0..n {
            let (key, value) = self.plain[i];
            let key = within(self.text, key)?;
            let value = within(self.text, value)?;
            self.attribute(i, key, Cow::Borrowed(value), first, &mut decls)?;
        }
        self.opened(qname, first, decls, empty)
    }

    /// The element `qname` opened, with the bindings before its declarations at `first`.
    fn opened(
        &mut self,
        qname: &'t [u8],
        first: usize,
        decls: usize,
        empty: bool,
    ) -> Result<Step<'t>, ParseError> {
        let (prefix, local) = split_qname(qname);
        let local = within(self.text, local)?;
        self.prefix = prefix;
        if empty {
            if self.frames.is_empty() {
                self.root_done = true;
            }
            self.pending_truncate = Some(first);
        } else {
            self.frames.push((first, decls, qname));
            self.in_scope += decls;
        }
        Ok(Step::Start { local, empty })
    }

    /// The innermost open element closed, by an end tag named `name` when the
    /// tokenizer read it (else its name was checked already).
    fn close(&mut self, name: Option<&[u8]>) -> Result<Step<'t>, ParseError> {
        let Some(&(first, decls, qname)) = self.frames.last() else {
            return Err(self.syntax("unmatched end tag".into()));
        };
        if let Some(name) = name
            && name != qname
        {
            return Err(self.syntax(format!(
                "expected `</{}>`, found `</{}>`",
                String::from_utf8_lossy(qname),
                String::from_utf8_lossy(name)
            )));
        }
        self.frames.pop();
        if decls > 0 {
            self.scope.truncate(first);
        }
        self.in_scope = self.in_scope.saturating_sub(decls);
        if self.frames.is_empty() {
            self.root_done = true;
        }
        self.after_tag = true;
        Ok(Step::End)
    }

    /// The root's start tag at the start of the document, when it is the one last
    /// read on this thread ([`ROOT`]): opened with what reading that one gave (the same
    /// bytes read from the same state give the same), without reading it again.
    fn cached_root(&mut self) -> Result<Option<Step<'t>>, ParseError> {
        let rest: &'t [u8] = self.reader.get_ref();
        let text: &'t str = self.text;
        let first = self.scope.len();
        // (None also while the thread's locals are being torn down.)
        let hit = ROOT.try_with(|root| {
            let Ok(root) = root.try_borrow() else {
                return None;
            };
            let root = root.as_ref()?;
            if !rest.starts_with(&root.tag) {
                return None;
            }
            let at = |(start, end): Span| text.get(start..end);
            self.attrs.clear();
            for &(key, value) in &root.attrs {
                self.attrs.push((at(key)?, Cow::Borrowed(at(value)?)));
            }
            for &(prefix, uri) in &root.bindings {
                let uri = match uri {
                    Some(uri) => Some(at(uri)?),
                    None => None,
                };
                self.scope.list.push((at(prefix)?.as_bytes(), uri));
            }
            self.scope.generation += 1;
            Some((at(root.qname)?, root.tag.len(), root.decls, root.empty))
        });
        let hit = hit.ok().flatten();
        let Some((qname, len, decls, empty)) = hit else {
            self.scope.truncate(first);
            return Ok(None);
        };
        *self.reader.get_mut() = &rest[len..];
        self.opened(qname.as_bytes(), first, decls, empty).map(Some)
    }

    /// Keeps the root's start tag `tag` (just opened, at the start of the document) and
    /// what reading it gave, for [`Scanner::cached_root`].
    fn remember_root(&self, tag: &[u8], qname: &[u8], empty: bool) {
        if tag.len() > MAX_CACHED_ROOT {
            return;
        }
        let base = tag.as_ptr().addr();
        // Where a slice of the tag lies (an empty one anywhere: at 0).
        let span = |s: &[u8]| -> Option<Span> {
            if s.is_empty() {
                return Some((0, 0));
            }
            let start = s.as_ptr().addr().checked_sub(base)?;
            let end = start.checked_add(s.len())?;
            (end <= tag.len()).then_some((start, end))
        };
        let Some(bindings) = self
            .scope
            .list
            .get(2..)
            .unwrap_or(&[])
            .iter()
            .map(|(prefix, uri)| {
                let uri = match uri {
                    Some(uri) => Some(span(uri.as_bytes())?),
                    None => None,
                };
                Some((span(prefix)?, uri))
            })
            .collect::<Option<Vec<_>>>()
        else {
            return;
        };
        let Some(attrs) = self
            .attrs
            .iter()
            .map(|(key, value)| match value {
                Cow::Borrowed(v) => Some((span(key.as_bytes())?, span(v.as_bytes())?)),
                Cow::Owned(_) => None,
            })
            .collect::<Option<Vec<_>>>()
        else {
            return;
        };
        let Some(qname) = span(qname) else {
            return;
        };
        // An empty root leaves no frame (its declarations go at the next step).
        let decls = match self.frames.last() {
            Some(&(_, decls, _)) if !empty => decls,
            _ if empty => 0,
            _ => return,
        };
        let _ = ROOT.try_with(|root| {
            if let Ok(mut root) = root.try_borrow_mut() {
                *root = Some(RootTag {
                    tag: tag.to_vec(),
                    qname,
                    bindings,
                    attrs,
                    decls,
                    empty,
                });
            }
        });
    }

    /// After a [`Step::Start`] of a leaf in its plainest form (`<name>text</name>`,
    /// taken without the tokenizer): its text (possibly empty), the element closed (no
    /// [`Step::Text`] or [`Step::End`] of it follows). Anything else: `None`, and the
    /// steps go on as before. For a reader of a field, in one call instead of two steps.
    #[inline]
    pub fn leaf(&mut self) -> Option<&'t str> {
        if !self.leaf_end {
            return None;
        }
        let text = self.leaf_text.take().unwrap_or("");
        self.leaf_end = false;
        // A leaf's frame is on the stack: closing it cannot fail.
        self.close(None).ok()?;
        Some(text)
    }

    /// Passes over the rest of the element that the last [`Step::Start`] opened, up to
    /// and including its end, with every check [`Scanner::next_step`] makes (so the
    /// scanner still accepts exactly what the tree reader accepts); after an empty
    /// element, nothing. For a reader that does not look inside an element: leaves in
    /// their plainest form without namespace declarations are passed over without a
    /// step of their own.
    ///
    /// # Errors
    /// As [`Scanner::next_step`].
    pub fn skip(&mut self) -> Result<(), ParseError> {
        if self.pending_truncate.is_some() {
            return Ok(());
        }
        self.skip_rest()
    }

    /// Passes over the rest of the innermost open element (after an empty element,
    /// its parent), up to and including its end, as [`Scanner::skip`] does: for a
    /// reader that has read what it needs of an element.
    ///
    /// # Errors
    /// As [`Scanner::next_step`].
    pub fn skip_rest(&mut self) -> Result<(), ParseError> {
        if let Some(first) = self.pending_truncate.take() {
            self.scope.truncate(first);
        }
        if self.leaf_end {
            self.leaf_text = None;
            self.leaf_end = false;
            self.close(None)?;
            return Ok(());
        }
        let Some(until) = self.frames.len().checked_sub(1) else {
            return Ok(());
        };
        while self.frames.len() > until {
            if self.after_tag && self.pending_truncate.is_none() && self.frames.len() < MAX_DEPTH {
                let rest: &'t [u8] = self.reader.get_ref();
                if let Some((_, attributes, _, len)) = plain_leaf(rest)
                    && (attributes.is_empty()
                        || plain_attributes(attributes, &mut self.plain)
                            .is_some_and(|n| plain_without_declarations(&self.plain[..n])))
                {
                    *self.reader.get_mut() = &rest[len..];
                    continue;
                }
            }
            if self.next_step()? == Step::Eof {
                break;
            }
        }
        Ok(())
    }

    /// The next step.
    ///
    /// # Errors
    /// What [`super::parse`] refuses: [`ParseError::Syntax`], [`ParseError::TooDeep`],
    /// [`ParseError::Empty`], [`ParseError::Encoding`].
    pub fn next_step(&mut self) -> Result<Step<'t>, ParseError> {
        if let Some(first) = self.pending_truncate.take() {
            self.scope.truncate(first);
        }
        if self.leaf_end {
            if let Some(text) = self.leaf_text.take() {
                return Ok(Step::Text(Cow::Borrowed(text)));
            }
            self.leaf_end = false;
            return self.close(None);
        }
        // Tags and text in their plain forms (most of a WinRS response) are taken
        // without the tokenizer; they are well-formed by their form. So is the root's
        // start tag when the document begins with it.
        if self.after_tag && (!self.frames.is_empty() || !self.root_done) {
            let rest: &'t [u8] = self.reader.get_ref();
            let at_start = self.frames.is_empty() && rest.as_ptr() == self.text.as_ptr();
            if at_start && let Some(step) = self.cached_root()? {
                return Ok(step);
            }
            let open = self.frames.last().map_or(&[][..], |f| f.2);
            match plain_token(rest, open) {
                Some(Token::End(len)) => {
                    *self.reader.get_mut() = &rest[len..];
                    return self.close(None);
                }
                Some(Token::Start {
                    qname,
                    attributes,
                    empty,
                    len,
                }) => {
                    if let Some(n) = plain_attributes(attributes, &mut self.plain) {
                        // A leaf in its plainest form (most of a WinRS response): its
                        // text and end tag are taken with it, for the next two steps.
                        let leaf = if empty {
                            None
                        } else {
                            leaf_rest(&rest[len..], qname)
                        };
                        let step = self.open(qname, n, empty)?;
                        match leaf {
                            Some((text, leaf_len)) => {
                                *self.reader.get_mut() = &rest[len + leaf_len..];
                                self.leaf_text =
                                    Some(within(self.text, text)?).filter(|t| !t.is_empty());
                                self.leaf_end = true;
                            }
                            None => *self.reader.get_mut() = &rest[len..],
                        }
                        if at_start {
                            self.remember_root(&rest[..len], qname, empty);
                        }
                        return Ok(step);
                    }
                }
                Some(Token::Text(text)) if !self.frames.is_empty() => {
                    *self.reader.get_mut() = &rest[text.len()..];
                    return Ok(Step::Text(Cow::Borrowed(within(self.text, text)?)));
                }
                _ => {}
            }
        }
        if self.after_tag && self.root_done && self.frames.is_empty() {
            // The document ends right after the root: nothing for the tokenizer to read.
            let rest: &'t [u8] = self.reader.get_ref();
            if rest.is_empty() {
                return Ok(Step::Eof);
            }
        }
        if !self.tokenized {
            // The tokenizer's first read drops a byte order mark where it stands: past
            // what was taken here, one is character data, as the tree reader reads it.
            let rest: &'t [u8] = self.reader.get_ref();
            if rest.as_ptr() != self.text.as_ptr() && rest.starts_with(BOM.as_bytes()) {
                if self.frames.is_empty() {
                    return Err(self.syntax("text outside the root element".into()));
                }
                *self.reader.get_mut() = &rest[BOM.len()..];
                return Ok(Step::Text(Cow::Borrowed(BOM)));
            }
            self.tokenized = true;
        }
        loop {
            let ev = self
                .reader
                .read_event()
                .map_err(|e| self.syntax(e.to_string()))?;
            self.after_tag = matches!(ev, Event::Start(_) | Event::Empty(_) | Event::End(_));
            match ev {
                Event::Start(ref start) | Event::Empty(ref start) => {
                    let empty = matches!(ev, Event::Empty(_));
                    if self.root_done {
                        return Err(self.syntax("content after the root element".into()));
                    }
                    if self.frames.len() >= MAX_DEPTH {
                        return Err(ParseError::TooDeep);
                    }
                    let first = self.scope.len();
                    let mut decls = 0usize;
                    self.attrs.clear();
                    let raw_attributes = within(self.text, start.attributes_raw())?;
                    if let Some(n) = plain_attributes(raw_attributes.as_bytes(), &mut self.plain) {
                        // The usual form, split without the byte-by-byte attribute
                        // reader; nothing to unescape.
                        for i in 0..n {
                            let (key, value) = self.plain[i];
                            let key = within(self.text, key)?;
                            let value = within(self.text, value)?;
                            self.attribute(i, key, Cow::Borrowed(value), first, &mut decls)?;
                        }
                    } else {
                        for (count, a) in start.attributes().with_checks(false).enumerate() {
                            let a = a.map_err(|e| self.syntax(e.to_string()))?;
                            let key = within(self.text, a.key.as_ref())?;
                            let raw = within(self.text, &a.value)?;
                            let value = if raw.contains('&') && !is_declaration(key.as_bytes()) {
                                Cow::Owned(
                                    a.unescape_value()
                                        .map_err(|e| self.syntax(e.to_string()))?
                                        .into_owned(),
                                )
                            } else {
                                Cow::Borrowed(raw)
                            };
                            self.attribute(count, key, value, first, &mut decls)?;
                        }
                    }
                    let qname = within(self.text, start.name().into_inner())?;
                    return self.opened(qname.as_bytes(), first, decls, empty);
                }
                Event::End(e) => return self.close(Some(e.name().into_inner())),
                Event::Text(t) => {
                    let s = within(self.text, &t)?;
                    if !self.frames.is_empty() {
                        return Ok(Step::Text(Cow::Borrowed(s)));
                    }
                    if !s.trim().is_empty() {
                        return Err(self.syntax("text outside the root element".into()));
                    }
                }
                Event::CData(c) => {
                    let s = c.decode().map_err(|e| self.syntax(e.to_string()))?;
                    if self.frames.is_empty() {
                        return Err(self.syntax("CDATA outside the root element".into()));
                    }
                    return Ok(Step::Text(Cow::Owned(s.into_owned())));
                }
                Event::GeneralRef(r) => {
                    if self.frames.is_empty() {
                        return Err(self.syntax("reference outside the root element".into()));
                    }
                    return match r.resolve_char_ref() {
                        Ok(Some(ch)) => Ok(Step::Text(Cow::Owned(ch.to_string()))),
                        Ok(None) => {
                            let name = r.decode().map_err(|e| self.syntax(e.to_string()))?;
                            match quick_xml::escape::resolve_predefined_entity(&name) {
                                Some(s) => Ok(Step::Text(Cow::Borrowed(s))),
                                None => {
                                    Err(self
                                        .syntax(format!("unknown entity &{};", excerpt(&name, 20))))
                                }
                            }
                        }
                        Err(e) => Err(self.syntax(e.to_string())),
                    };
                }
                Event::DocType(_) => {
                    return Err(self.syntax("DOCTYPE is not allowed in SOAP messages".into()));
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
                Event::Eof => {
                    if !self.frames.is_empty() {
                        return Err(self.syntax("unexpected end of document".into()));
                    }
                    if !self.root_done {
                        return Err(ParseError::Empty);
                    }
                    return Ok(Step::Eof);
                }
            }
        }
    }
}

/// Whether two short names are the same: their lengths and first bytes compared
/// before the bytes.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.first() == b.first() && a == b
}

/// The longest root start tag kept by [`Scanner::remember_root`].
const MAX_CACHED_ROOT: usize = 4096;

/// Where a slice lies in a [`RootTag`]: start and end.
type Span = (usize, usize);

/// A root start tag in the plain form and what reading it gave, as spans of the tag:
/// its qualified name, the bindings its declarations made, its other attributes, how
/// many declarations it carries, and whether it was `<x/>`.
struct RootTag {
    tag: Vec<u8>,
    qname: Span,
    bindings: Vec<(Span, Option<Span>)>,
    attrs: Vec<(Span, Span)>,
    decls: usize,
    empty: bool,
}

thread_local! {
    /// The root start tag last read on this thread: every response of a server
    /// begins with the same one (the same eight or so namespace declarations), which
    /// is then taken by comparing its bytes instead of reading it again.
    static ROOT: std::cell::RefCell<Option<RootTag>> = const { std::cell::RefCell::new(None) };
}

/// A byte order mark.
const BOM: &str = "\u{FEFF}";

/// The namespace declarations in scope, innermost last, as slices of the document:
/// the prefix (empty for the default namespace) and the namespace (None when undeclared
/// by `xmlns=""`). Nothing is interned or copied: a namespace is compared as written,
/// as [`super::Scope`] compares it, and only when a reader asks for it.
struct Bindings<'t> {
    list: SmallVec<[(&'t [u8], Option<&'t str>); 16]>,
    /// Counts the changes to the list (for the last resolution kept by the scanner).
    generation: u64,
}

impl<'t> Bindings<'t> {
    fn new() -> Bindings<'t> {
        let mut list = SmallVec::new();
        list.push((&b"xml"[..], Some(ns::XML)));
        list.push((&b"xmlns"[..], Some(XMLNS_NS)));
        Bindings {
            list,
            generation: 0,
        }
    }

    fn len(&self) -> usize {
        self.list.len()
    }

    /// Drops the bindings from index `len` on.
    fn truncate(&mut self, len: usize) {
        if len < self.list.len() {
            self.list.truncate(len);
            self.generation += 1;
        }
    }

    /// The namespace of `prefix` (None: unprefixed), as [`super::Scope::resolve`]:
    /// unprefixed element names take the default namespace, unprefixed attribute names
    /// none; an unknown prefix has none.
    #[inline]
    fn resolve(&self, prefix: Option<&[u8]>, element: bool) -> Option<&'t str> {
        let wanted: &[u8] = match prefix {
            None if element => b"",
            None => return None,
            Some([]) => return None,
            Some(p) => p,
        };
        // Prefixes are short and mostly differ in their length or first byte: those
        // are compared before the bytes.
        self.list
            .iter()
            .rev()
            .find(|(p, _)| same(p, wanted))
            .and_then(|(_, ns)| *ns)
    }

    /// Adds the declaration `xmlns[:prefix]="uri"` of an element whose bindings begin
    /// at `first`, with [`super::Scope::declare`]'s checks: a prefix declared twice on
    /// one element, the reserved prefixes or namespaces bound otherwise.
    fn declare(&mut self, prefix: &'t [u8], uri: &'t str, first: usize) -> Result<(), String> {
        if self
            .list
            .get(first..)
            .unwrap_or(&[])
            .iter()
            .any(|(p, _)| same(p, prefix))
        {
            return Err("duplicate namespace declaration".into());
        }
        let reserved = uri == ns::XML || uri == XMLNS_NS;
        match prefix {
            b"xml" if uri == ns::XML => return Ok(()),
            b"xml" | b"xmlns" => return Err("the xml and xmlns prefixes cannot be rebound".into()),
            [_, ..] if reserved => {
                return Err("a reserved namespace cannot be bound to another prefix".into());
            }
            _ => {}
        }
        self.list.push((prefix, (!uri.is_empty()).then_some(uri)));
        self.generation += 1;
        Ok(())
    }
}

/// Per byte: 2 for a letter or `_` (a name may begin with it), 1 for a digit, `.`, `-`
/// or `:` (a name may go on with it), 0 for anything else (the plain forms end there).
const NAME: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphabetic() || c == b'_' {
            2
        } else if c.is_ascii_digit() || c == b'.' || c == b'-' || c == b':' {
            1
        } else {
            0
        };
        b += 1;
    }
    t
};

/// The length of the plain name at the start of `bytes` (see [`NAME`]), when something
/// follows it.
#[inline]
fn name_len(bytes: &[u8]) -> Option<usize> {
    if NAME[usize::from(*bytes.first()?)] != 2 {
        return None;
    }
    bytes.iter().position(|&b| NAME[usize::from(b)] == 0)
}

/// A token in its plain form (see [`plain_token`]).
enum Token<'a> {
    /// The end tag of the element `open`, and its length.
    End(usize),
    /// A start tag (`empty`: `<x/>`) with its attributes (unchecked), and its length.
    Start {
        qname: &'a [u8],
        attributes: &'a [u8],
        empty: bool,
        len: usize,
    },
    /// Text up to the next `<`, without references.
    Text(&'a [u8]),
}

/// The token at the start of `rest` in its plain form: `</open>` written exactly, a
/// start tag with a plain name whose attributes (if any) follow a space and hold no `>`,
/// or text without `&` up to a `<`. Anything else (comments, CDATA, references, other
/// spacing) is None, for the tokenizer.
fn plain_token<'a>(rest: &'a [u8], open: &[u8]) -> Option<Token<'a>> {
    match rest {
        [b'<', b'/', end @ ..] => {
            let n = open.len();
            (!open.is_empty() && end.get(..n) == Some(open) && end.get(n) == Some(&b'>'))
                .then_some(Token::End(2 + n + 1))
        }
        [b'<', after @ ..] => {
            let name_len = name_len(after)?;
            let tag_end = match after[name_len] {
                b'>' => name_len,
                b' ' | b'/' => name_len + memchr::memchr(b'>', &after[name_len..])?,
                _ => return None,
            };
            let segment = &after[name_len..tag_end];
            let (attributes, empty) = match segment.strip_suffix(b"/") {
                Some(a) => (a, true),
                None => (segment, false),
            };
            Some(Token::Start {
                qname: &after[..name_len],
                attributes,
                empty,
                len: 1 + tag_end + 1,
            })
        }
        [] => None,
        _ => {
            let end = memchr::memchr2(b'<', b'&', rest)?;
            (rest[end] == b'<').then_some(Token::Text(&rest[..end]))
        }
    }
}

/// Whether attributes split by [`plain_attributes`] can be passed over without their
/// element being opened: no namespace declaration among them, no duplicate, not more
/// than the tree reader takes (anything else is opened, whose checks decide).
fn plain_without_declarations(attributes: &[(&[u8], &[u8])]) -> bool {
    attributes.len() <= 8
        && attributes.iter().enumerate().all(|(i, (key, _))| {
            !is_declaration(key) && attributes[..i].iter().all(|(other, _)| other != key)
        })
}

/// Whether an attribute name declares a namespace (`xmlns`, `xmlns:p`).
fn is_declaration(key: &[u8]) -> bool {
    matches!(key.strip_prefix(b"xmlns"), Some([] | [b':', ..]))
}

/// Splits the attributes of a start tag in the usual form: each one space, a name of
/// ASCII letters, digits and `_ . - :` beginning with a letter or `_`, `=`, and a value
/// in double or single quotes without `<` or `&`; then at most spaces. Returns how many
/// it put into `out` (cleared first); anything else is None, for quick-xml's reader.
fn plain_attributes<'a>(raw: &'a [u8], out: &mut Pairs<'a>) -> Option<usize> {
    out.clear();
    let mut rest = raw;
    loop {
        let after_space = match rest.strip_prefix(b" ") {
            Some(r) => r,
            None if rest.is_empty() => return Some(out.len()),
            None => return None,
        };
        let first = match after_space.first() {
            None => return Some(out.len()),
            Some(&b) => b,
        };
        if first == b' ' && after_space.iter().all(|&b| b == b' ') {
            return Some(out.len());
        }
        let name_len = name_len(after_space)?;
        let quote = *after_space.get(name_len + 1)?;
        if after_space[name_len] != b'=' || !matches!(quote, b'"' | b'\'') {
            return None;
        }
        let value_at = name_len + 2;
        // The closing quote, unless a `<` or `&` comes first (then not the usual form).
        let value_and_rest = after_space.get(value_at..)?;
        let len = memchr::memchr3(quote, b'<', b'&', value_and_rest)?;
        if value_and_rest[len] != quote {
            return None;
        }
        let value = &after_space[value_at..value_at + len];
        out.push((&after_space[..name_len], value));
        rest = &after_space[value_at + len + 1..];
    }
}

/// A leaf element in its plainest form at the start of `rest`: `<name attributes>text</name>`,
/// the name of ASCII letters, digits and `_ . - :` (beginning with a letter or `_`),
/// the attributes (if any) after a space and without `>` (the caller checks their
/// form with [`plain_attributes`]), the text without markup or references, the end tag
/// written exactly. Returns the qualified name, the attributes, the text and the length.
/// Anything else is None, for the tokenizer.
fn plain_leaf(rest: &[u8]) -> Option<Leaf<'_>> {
    let after = rest.strip_prefix(b"<")?;
    let name_len = name_len(after)?;
    let name = &after[..name_len];
    // The attributes (if any) up to the first `>`: one inside a value cuts it short, and
    // the attributes are then not in the plain form.
    let tag_end = match after[name_len] {
        b'>' => name_len,
        b' ' => name_len + memchr::memchr(b'>', &after[name_len..])?,
        _ => return None,
    };
    let attributes = &after[name_len..tag_end];
    let (text, len) = leaf_rest(&after[tag_end + 1..], name)?;
    Some((name, attributes, text, 1 + tag_end + 1 + len))
}

/// What follows the start tag of a leaf in its plainest form: text without markup or
/// references, then `</name>` written exactly. Returns the text and the length of both.
#[inline]
fn leaf_rest<'a>(content: &'a [u8], name: &[u8]) -> Option<(&'a [u8], usize)> {
    let end = memchr::memchr2(b'<', b'&', content)?;
    let close = &content[end..];
    if close.first() != Some(&b'<')
        || close.get(1) != Some(&b'/')
        || close.get(2..2 + name.len()) != Some(name)
        || close.get(2 + name.len()) != Some(&b'>')
    {
        return None;
    }
    Some((&content[..end], end + 2 + name.len() + 1))
}

/// The slice of `text` that `bytes` borrows (the reader hands out nothing else for a
/// document read from a `&str`; anything else is refused).
fn within<'t>(text: &'t str, bytes: &[u8]) -> Result<&'t str, ParseError> {
    bytes
        .as_ptr()
        .addr()
        .checked_sub(text.as_ptr().addr())
        .and_then(|start| text.get(start..start.checked_add(bytes.len())?))
        .ok_or_else(|| ParseError::Encoding("text outside the document".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns;

    /// Every step of `xml`, or the first error.
    fn steps(xml: &str) -> Result<Vec<String>, ParseError> {
        let mut s = Scanner::new(xml);
        let mut out = Vec::new();
        loop {
            match s.next_step()? {
                Step::Start { local, empty } => out.push(format!(
                    "<{{{}}}{local}{}{}>",
                    s.ns().unwrap_or(""),
                    s.attr("Name")
                        .map(|v| format!(" Name={v}"))
                        .unwrap_or_default(),
                    if empty { "/" } else { "" }
                )),
                Step::End => out.push("</>".into()),
                Step::Text(t) => out.push(t.into_owned()),
                Step::Eof => return Ok(out),
            }
        }
    }

    #[test]
    fn resolves_names_and_attributes_as_the_tree_does() {
        let xml = r#"<s:E xmlns:s="http://www.w3.org/2003/05/soap-envelope"><x:A xmlns:x="urn:x" x:Name="p" Name="a&amp;b"/><B u:Name="q">t&lt;<![CDATA[c]]>&#65;</B></s:E>"#;
        assert_eq!(
            steps(xml).unwrap(),
            [
                format!("<{{{}}}E>", ns::SOAP),
                "<{urn:x}A Name=a&b/>".into(),
                // An attribute with an unbound prefix has no namespace, as in the tree.
                "<{}B Name=q>".into(),
                "t".into(),
                "<".into(),
                "c".into(),
                "A".into(),
                "</>".into(),
                "</>".into(),
            ]
        );
    }

    #[test]
    fn a_prefix_follows_its_declarations_in_and_out_of_scope() {
        let xml = "<r xmlns:p='u1'><p:a/><p:b xmlns:p='u2'><p:c/><p:e>t</p:e></p:b><p:d>t</p:d><p:f xmlns:p='u3'/><p:g/></r>";
        assert_eq!(
            steps(xml).unwrap(),
            [
                "<{}r>", "<{u1}a/>", "<{u2}b>", "<{u2}c/>", "<{u2}e>", "t", "</>", "</>",
                "<{u1}d>", "t", "</>", "<{u3}f/>", "<{u1}g/>", "</>"
            ]
        );
        let tree = crate::xml::parse_str(xml).unwrap();
        let names: Vec<_> = tree.children.iter().map(|c| c.describe()).collect();
        assert_eq!(names, ["{u1}a", "{u2}b", "{u1}d", "{u3}f", "{u1}g"]);
    }

    #[test]
    fn plain_leaves_read_as_the_tokenizer_reads_them() {
        let xml = "<r xmlns:c='urn:c'><b>t</b><c:d>x y</c:d><e></e><f>a&amp;b</f><g >x</g><h>1</h ><i><j>2</j></i></r>";
        assert_eq!(
            steps(xml).unwrap(),
            [
                "<{}r>",
                "<{}b>",
                "t",
                "</>",
                "<{urn:c}d>",
                "x y",
                "</>",
                "<{}e>",
                "</>",
                "<{}f>",
                "a",
                "&",
                "b",
                "</>",
                "<{}g>",
                "x",
                "</>",
                "<{}h>",
                "1",
                "</>",
                "<{}i>",
                "<{}j>",
                "2",
                "</>",
                "</>",
                "</>"
            ]
        );
        assert_eq!(
            plain_leaf(b"<a>x</a>rest"),
            Some((&b"a"[..], &b""[..], &b"x"[..], 8))
        );
        assert_eq!(
            plain_leaf(b"<a b='1'>x</a>rest"),
            Some((&b"a"[..], &b" b='1'"[..], &b"x"[..], 14))
        );
        for not_plain in [
            &b"<a>x</b>"[..],
            b"<a>x</a",
            b"<a\tx='1'>x</a>",
            b"<a>x<!-- -->y</a>",
            b"<1a>x</1a>",
            b"<a>x",
            b"<a/>",
        ] {
            assert_eq!(
                plain_leaf(not_plain),
                None,
                "{:?}",
                String::from_utf8_lossy(not_plain)
            );
        }
        let mut out = Pairs::new();
        assert_eq!(
            plain_attributes(b" xml:lang=\"en-US\" xmlns:s='u' Name=\"\"  ", &mut out),
            Some(3)
        );
        assert_eq!(
            out[..],
            [
                (&b"xml:lang"[..], &b"en-US"[..]),
                (&b"xmlns:s"[..], &b"u"[..]),
                (&b"Name"[..], &b""[..])
            ]
        );
        assert_eq!(plain_attributes(b"", &mut out), Some(0));
        for not_plain in [
            &b" a=\"x&amp;\""[..],
            b" a=\"<\"",
            b"\ta=\"1\"",
            b" a = \"1\"",
            b" a=1",
            b" a=\"1",
            b" a=\"1\"b=\"2\"",
            b" 1a=\"1\"",
        ] {
            assert_eq!(
                plain_attributes(not_plain, &mut out),
                None,
                "{:?}",
                String::from_utf8_lossy(not_plain)
            );
        }
        // Both forms of one element read alike.
        let tag = |sep: &str| format!("<r xmlns:p=\"urn:p\"{sep}p:Name=\"v\" Other='w'/>");
        assert_eq!(steps(&tag(" ")).unwrap(), steps(&tag("\n")).unwrap());
        // Leaves with attributes: declarations on the leaf itself, a `>` in a value.
        let xml = "<r><k Name='n'>v</k><q:l xmlns:q='urn:q' Name=\"m\">w</q:l><q:o/><m Name='>'>z</m></r>";
        assert_eq!(
            steps(xml).unwrap(),
            [
                "<{}r>",
                "<{}k Name=n>",
                "v",
                "</>",
                "<{urn:q}l Name=m>",
                "w",
                "</>",
                "<{}o/>",
                "<{}m Name=>>",
                "z",
                "</>",
                "</>"
            ]
        );
        assert!(steps("<r><n a='1' a='2'>x</n></r>").is_err());
        assert!(steps("<r><n xmlns:xml='urn:x'>x</n></r>").is_err());
        // A mismatched end tag after a leaf is still refused.
        assert!(steps("<r><a>x</a></s>").is_err());
    }

    #[test]
    fn plain_tags_and_text_read_as_the_tokenizer_reads_them() {
        // The same document with the plain forms, and with line breaks in every tag
        // (which only the tokenizer reads).
        let plain = "<r xmlns:p='urn:p'><p:a x=\"1\" xmlns:q='urn:q'><b/> t <q:c y='2'/><d><e>v</e></d></p:a><p:f/>tail</r>";
        let spaced = "<r xmlns:p='urn:p'><p:a\nx=\"1\" xmlns:q='urn:q'\n><b\n/> t <q:c\ny='2'/><d\n><e>v</e\n></d\n></p:a\n><p:f\n/>tail</r\n>";
        let want = [
            "<{}r>",
            "<{urn:p}a>",
            "<{}b/>",
            " t ",
            "<{urn:q}c/>",
            "<{}d>",
            "<{}e>",
            "v",
            "</>",
            "</>",
            "</>",
            "<{urn:p}f/>",
            "tail",
            "</>",
        ];
        assert_eq!(steps(plain).unwrap(), want);
        assert_eq!(steps(spaced).unwrap(), want);
        for bad in [
            "<r><a></b></r>",
            "<r><a><b>x</b></c></r>",
            "<r></r></r>",
            "<r><a>",
            "<r><a x='1' x='2'/></r>",
            "<r><a xmlns:p='u' xmlns:p='v'></a></r>",
            "<r><a>x</a\x0c></r>",
            "<r><p:a></a></r>",
        ] {
            assert!(steps(bad).is_err(), "{bad:?} was accepted");
            assert!(crate::xml::parse_str(bad).is_err(), "{bad:?}");
        }
    }

    /// Every step of `xml`, the elements named `skipped` passed over by
    /// [`Scanner::skip`] right after their start.
    fn steps_skipping(xml: &str, skipped: &str) -> Result<Vec<String>, ParseError> {
        let mut s = Scanner::new(xml);
        let mut out = Vec::new();
        loop {
            match s.next_step()? {
                Step::Start { local, empty } => {
                    out.push(format!(
                        "<{{{}}}{local}{}>",
                        s.ns().unwrap_or(""),
                        if empty { "/" } else { "" }
                    ));
                    if local == skipped {
                        s.skip()?;
                        out.push(format!("skipped to depth {}", s.depth()));
                    }
                }
                Step::End => out.push("</>".into()),
                Step::Text(t) => out.push(t.into_owned()),
                Step::Eof => return Ok(out),
            }
        }
    }

    #[test]
    fn leaf_gives_a_plain_leafs_text_and_end_at_once() {
        let xml = "<r><a>x</a><b></b><c><d>y</d></c><e>t&amp;</e><f/><g\n>z</g></r>";
        let mut s = Scanner::new(xml);
        let mut out = Vec::new();
        loop {
            match s.next_step().unwrap() {
                Step::Start { local, .. } => match s.leaf() {
                    Some(t) => out.push(format!("{local}={t} at depth {}", s.depth())),
                    None => out.push(format!("<{local}>")),
                },
                Step::End => out.push("</>".into()),
                Step::Text(t) => out.push(t.into_owned()),
                Step::Eof => break,
            }
        }
        assert_eq!(
            out,
            [
                "<r>",
                "a=x at depth 1",
                "b= at depth 1",
                "<c>",
                "d=y at depth 2",
                "</>",
                "<e>",
                "t",
                "&",
                "</>",
                "<f>",
                "<g>",
                "z",
                "</>",
                "</>"
            ]
        );
        // Its end is still checked against what follows.
        let mut s = Scanner::new("<r><a>x</a></s>");
        assert!(matches!(s.next_step(), Ok(Step::Start { .. })));
        assert!(matches!(s.next_step(), Ok(Step::Start { .. })));
        assert_eq!(s.leaf(), Some("x"));
        assert!(s.next_step().is_err());
    }

    #[test]
    fn skip_passes_over_an_element_with_every_check() {
        let xml = "<r xmlns:p='urn:p'><h><p:a>1</p:a><b x='1' y='2'>2</b><c><d>3</d></c><e/><f xmlns:q='urn:q'>4</f></h><p:k>v</p:k><h/><h>t</h><h><h>u</h></h></r>";
        assert_eq!(
            steps_skipping(xml, "h").unwrap(),
            [
                "<{}r>",
                "<{}h>",
                "skipped to depth 1",
                "<{urn:p}k>",
                "v",
                "</>",
                "<{}h/>",
                "skipped to depth 2",
                "<{}h>",
                "skipped to depth 1",
                "<{}h>",
                "skipped to depth 1",
                "</>"
            ]
        );
        // The declarations of a skipped element are out of scope after it.
        assert_eq!(
            steps_skipping("<r><h xmlns:p='urn:p'><p:a>1</p:a></h><p:b/></r>", "h").unwrap(),
            ["<{}r>", "<{}h>", "skipped to depth 1", "<{}b/>", "</>"]
        );
        let deep = format!(
            "<r><h>{}x{}</h></r>",
            "<a>".repeat(MAX_DEPTH),
            "</a>".repeat(MAX_DEPTH)
        );
        let many: String = (0..=MAX_ATTRIBUTES).map(|i| format!(" a{i}='1'")).collect();
        for bad in [
            "<r><h><a x='1' x='2'>1</a></h></r>".to_string(),
            "<r><h><a x='1' y='2' x='3'>1</a></h></r>".into(),
            "<r><h><a xmlns:p='u' xmlns:p='v'>1</a></h></r>".into(),
            "<r><h><a xmlns:xml='urn:x'>1</a></h></r>".into(),
            "<r><h><a xmlns:p='http://www.w3.org/2000/xmlns/'>1</a></h></r>".into(),
            "<r><h><a>1</b></h></r>".into(),
            "<r><h><a>1</a></r>".into(),
            "<r><h><a>1</a>".into(),
            "<r><h><a>&bogus;</a></h></r>".into(),
            format!("<r><h><a{many}>1</a></h></r>"),
            deep,
        ] {
            assert!(steps(&bad).is_err(), "{bad:?}");
            assert!(steps_skipping(&bad, "h").is_err(), "{bad:?} was accepted");
        }
        for good in [
            "<r><h><a xmlns:p='u'>1</a><p:b xmlns:p='u'/><c xml:lang='en'>2</c></h></r>",
            "<r><h><a xmlns:xml='http://www.w3.org/XML/1998/namespace'>1</a></h></r>",
            "<r><h>t<!-- c --><![CDATA[d]]>&amp;<a\n>1</a\n></h></r>",
        ] {
            assert!(steps(good).is_ok(), "{good:?}");
            assert!(steps_skipping(good, "h").is_ok(), "{good:?}");
        }
    }

    #[test]
    fn skip_rest_passes_over_the_rest_of_the_innermost_open_element() {
        // (document, the local name after whose start the rest is skipped, whether the
        // element is first passed over itself, steps)
        for (xml, at, whole, want) in [
            (
                "<r><a><b>1</b><c>2</c><d/></a><e/></r>",
                "b",
                true,
                &["<r>", "<a>", "<b>", "rest", "<e/>", "</>"][..],
            ),
            (
                "<r><a><b/><c>2</c></a><e/></r>",
                "b",
                true,
                &["<r>", "<a>", "<b/>", "rest", "<e/>", "</>"][..],
            ),
            (
                "<r><a><b>x<c/>y</b><d/></a></r>",
                "c",
                false,
                &[
                    "<r>", "<a>", "<b>", "x", "<c/>", "rest", "<d/>", "</>", "</>",
                ][..],
            ),
            (
                "<r><a>1</a><b/></r>",
                "a",
                true,
                &["<r>", "<a>", "rest"][..],
            ),
            // Right after a leaf's start, the leaf is the innermost open element.
            (
                "<r><a>1</a><b/></r>",
                "a",
                false,
                &["<r>", "<a>", "rest", "<b/>", "</>"][..],
            ),
        ] {
            let mut s = Scanner::new(xml);
            let mut out = Vec::new();
            loop {
                match s.next_step().unwrap() {
                    Step::Start { local, empty } => {
                        out.push(format!("<{local}{}>", if empty { "/" } else { "" }));
                        if local == at {
                            if whole {
                                s.skip().unwrap();
                            }
                            s.skip_rest().unwrap();
                            out.push("rest".into());
                        }
                    }
                    Step::End => out.push("</>".into()),
                    Step::Text(t) => out.push(t.into_owned()),
                    Step::Eof => break,
                }
            }
            assert_eq!(out, want, "{xml}");
        }
        // Still every check.
        for bad in [
            "<r><a><b>1</b><c x='1' x='2'>2</c></a></r>",
            "<r><a><b>1</b><c>2</d></a></r>",
            "<r><a><b>1</b><c xmlns:xml='urn:x'/></a></r>",
        ] {
            let mut s = Scanner::new(bad);
            let skipped = loop {
                match s.next_step() {
                    Ok(Step::Start { local: "b", .. }) => {
                        break s.skip().and_then(|()| s.skip_rest());
                    }
                    Ok(_) => {}
                    Err(e) => break Err(e),
                }
            };
            assert!(skipped.is_err(), "{bad:?} was accepted");
            assert!(crate::xml::parse_str(bad).is_err(), "{bad:?}");
        }
        // A namespace kept from the last resolution follows the declarations in scope
        // (the same number of them, another binding).
        assert_eq!(
            steps("<r><p:a xmlns:p='u1'/><p:b xmlns:p='u2'/><p:c xmlns:p='u3'>t</p:c><p:d/></r>")
                .unwrap(),
            [
                "<{}r>", "<{u1}a/>", "<{u2}b/>", "<{u3}c>", "t", "</>", "<{}d/>", "</>"
            ]
        );
    }

    #[test]
    fn a_root_read_again_reads_as_the_first_time() {
        let roots = [
            "<s:E xmlns:s='urn:s' xmlns:a='urn:a' xml:lang='en' Name='n'>",
            "<E xmlns='urn:d' xmlns:xml='http://www.w3.org/XML/1998/namespace' xmlns:e='' Name=\"m\">",
            "<s:E xmlns:s='urn:s'/>",
            "<E Name='x' xmlns:p='urn:p'/>",
        ];
        let bodies = [
            "<a:x Name='q'>1</a:x><e:y/><z>2</z>",
            "<a:x><e:y>&amp;</e:y></a:x>",
            "",
        ];
        for root in roots {
            let close = if root.ends_with("/>") {
                String::new()
            } else {
                format!("</{}>", &root[1..root.find(' ').unwrap_or(root.len())])
            };
            for body in bodies {
                let xml = if close.is_empty() {
                    root.to_string()
                } else {
                    format!("{root}{body}{close}")
                };
                let first = steps(&xml);
                // Taken from the thread's cache the second time (not vacuous).
                let cached = ROOT.with(|r| r.borrow().as_ref().map(|t| t.tag.clone()));
                assert_eq!(cached.as_deref(), Some(root.as_bytes()));
                assert_eq!(steps(&xml), first, "{xml}");
                assert_eq!(first.is_ok(), crate::xml::parse_str(&xml).is_ok(), "{xml}");
            }
        }
        // A root taken from the cache still has its checks: what follows it is read.
        let good = "<s:E xmlns:s='urn:s'><s:B>1</s:B></s:E>";
        assert!(steps(good).is_ok());
        for bad in [
            "<s:E xmlns:s='urn:s'><s:B>1</s:E>",
            "<s:E xmlns:s='urn:s'><s:B>1</s:B></s:E><x/>",
            "<s:E xmlns:s='urn:s'>",
        ] {
            assert!(steps(bad).is_err(), "{bad:?} was accepted");
            assert!(crate::xml::parse_str(bad).is_err(), "{bad:?}");
        }
        // A root that only begins like the cached one is read afresh.
        assert_eq!(
            steps("<s:E xmlns:s='urn:s' xmlns:t='urn:t'><t:B/></s:E>").unwrap(),
            ["<{urn:s}E>", "<{urn:t}B/>", "</>"]
        );
    }

    #[test]
    fn a_byte_order_mark_past_the_plain_tags_is_text() {
        // The tokenizer drops one at its first read, wherever it stands.
        let xml = "<r><a>x</a>\u{FEFF}&amp;</r>";
        assert_eq!(
            steps(xml).unwrap(),
            ["<{}r>", "<{}a>", "x", "</>", "\u{FEFF}", "&", "</>"]
        );
        assert_eq!(crate::xml::parse_str(xml).unwrap().text, "\u{FEFF}&");
        for bad in ["<r/>\u{FEFF}", "<r><a>x</a></r>\u{FEFF}"] {
            assert!(steps(bad).is_err(), "{bad:?} was accepted");
            assert!(crate::xml::parse_str(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refuses_what_the_tree_reader_refuses() {
        for bad in [
            "",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "x<a/>",
            "<a x='1' x='2'/>",
            "<a xmlns:p='u' xmlns:p='v'/>",
            "<a xmlns:xml='urn:other'/>",
            "<!DOCTYPE a><a/>",
            "<a>&bogus;</a>",
            "<a b='&bogus;'/>",
            "<a><![CDATA[x]]></a><![CDATA[y]]>",
        ] {
            assert!(steps(bad).is_err(), "{bad:?} was accepted");
            assert!(crate::xml::parse_str(bad).is_err(), "{bad:?}");
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(steps(&deep), Err(ParseError::TooDeep));
        let attrs: String = (0..=MAX_ATTRIBUTES).map(|i| format!(" a{i}='1'")).collect();
        assert!(matches!(
            steps(&format!("<a{attrs}/>")),
            Err(ParseError::Syntax { .. })
        ));
    }
}
