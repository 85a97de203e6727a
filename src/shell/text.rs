//! Pure text helpers for WinRS command output and PowerShell.
//!
//! * [`decode`] / [`StreamDecoder`] turn the raw bytes of a `Receive`
//!   stream into text according to the shell's code page (the
//!   `WINRS_CODEPAGE` option: 437 / 850 / … for OEM consoles, 65001 for UTF-8).
//! * [`encode_powershell`] builds the argument of `powershell -EncodedCommand`.
//! * [`decode_clixml`] turns the `#< CLIXML` records that PowerShell writes on
//!   stderr back into the text a console would have shown; [`ClixmlDecoder`]
//!   does the same for stderr that arrives in chunks.
//!
//! Nothing here does IO; everything is deterministic and never panics on
//! malformed input.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oem_cp::code_table::DECODING_TABLE_CP_MAP;
use oem_cp::code_table_type::TableType;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;

/// Code page number of UTF-8.
pub const CP_UTF8: u32 = 65001;

/// The character substituted for bytes that have no mapping.
const REPLACEMENT: char = char::REPLACEMENT_CHARACTER;

// ---------------------------------------------------------------------------
// Code pages
// ---------------------------------------------------------------------------

/// How the bytes of one code page are turned into text.
#[derive(Clone, Copy)]
enum Codec {
    /// UTF-8 (65001) or a code page we do not know, decoded as lossy UTF-8.
    Utf8,
    /// A single-byte DOS/OEM code page (437, 850, 852, …): ASCII below 0x80,
    /// a 128-entry table above.
    Oem(&'static TableType),
    /// Anything `encoding_rs` implements (Windows-125x, 866, 932, 936, …).
    Encoding(&'static encoding_rs::Encoding),
}

/// Picks the codec for `codepage`; `None` when the code page is unknown.
fn codec(codepage: u32) -> Option<Codec> {
    if codepage == CP_UTF8 {
        return Some(Codec::Utf8);
    }
    let cp = u16::try_from(codepage).ok()?;
    // The OEM tables come first: they are the DOS pages a console really
    // uses, and 437/850/852/… are not in the Encoding Standard at all.
    if let Some(table) = DECODING_TABLE_CP_MAP.get(&cp) {
        return Some(Codec::Oem(table));
    }
    codepage::to_encoding_no_replacement(cp).map(Codec::Encoding)
}

/// Returns `true` when [`decode`] knows `codepage` and does not merely fall
/// back to lossy UTF-8.
///
/// Supported are 65001 (UTF-8), the single-byte OEM pages (437, 720, 737,
/// 775, 850, 852, 855, 857, 858, 860–866, 869, 874) and every Windows code
/// page that has an Encoding Standard equivalent (1250–1258, 932, 936, 949,
/// 950, 20866, 28591–28605, 54936, 1200/1201, …).
#[must_use]
pub fn is_supported(codepage: u32) -> bool {
    codec(codepage).is_some()
}

/// Decodes `bytes` written in Windows code page `codepage`.
///
/// 65001 is decoded as UTF-8, OEM pages (437, 850, …) and Windows pages
/// (1252, 866, 932, …) through their tables, and unknown code pages fall back
/// to UTF-8. Invalid or unmapped bytes become U+FFFD; the function never
/// fails. Pure-ASCII input (and valid UTF-8 for 65001) is borrowed, not copied.
///
/// This treats `bytes` as a complete text: a multi-byte character split across
/// two `Receive` chunks decodes as replacement characters. Use
/// [`StreamDecoder`] for a stream of chunks.
#[must_use]
pub fn decode(bytes: &[u8], codepage: u32) -> Cow<'_, str> {
    match codec(codepage).unwrap_or(Codec::Utf8) {
        Codec::Utf8 => match wsman_protocol::xml::utf8(bytes) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(bytes),
        },
        Codec::Oem(table) => decode_oem(bytes, table),
        Codec::Encoding(encoding) => encoding.decode_without_bom_handling(bytes).0,
    }
}

/// Decodes a single-byte OEM code page.
fn decode_oem<'a>(bytes: &'a [u8], table: &TableType) -> Cow<'a, str> {
    if bytes.is_ascii()
        && let Ok(text) = std::str::from_utf8(bytes)
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 2);
    push_oem(&mut out, bytes, table);
    Cow::Owned(out)
}

/// Appends the OEM decoding of `bytes` to `out`.
fn push_oem(out: &mut String, bytes: &[u8], table: &TableType) {
    for &byte in bytes {
        let ch = match byte.checked_sub(0x80) {
            None => char::from(byte),
            Some(high) => match table {
                TableType::Complete(chars) => chars[usize::from(high)],
                TableType::Incomplete(chars) => chars[usize::from(high)].unwrap_or(REPLACEMENT),
            },
        };
        out.push(ch);
    }
}

/// Incremental decoder for a stream of output chunks in one code page.
///
/// WinRS hands out stdout/stderr in arbitrary slices, so a UTF-8 or DBCS
/// (932, 936, …) character can be split between two `Receive` responses.
/// This decoder keeps the incomplete tail of one chunk and completes it with
/// the next. Code pages are handled exactly as by [`decode`].
pub struct StreamDecoder {
    inner: StreamInner,
}

/// The state behind [`StreamDecoder`].
enum StreamInner {
    /// Single-byte OEM pages need no state.
    Oem(&'static TableType),
    /// Everything else, UTF-8 included, goes through `encoding_rs`.
    Encoding(encoding_rs::Decoder),
}

impl StreamDecoder {
    /// Creates a decoder for `codepage`; unknown code pages decode as UTF-8.
    #[must_use]
    pub fn new(codepage: u32) -> Self {
        let inner = match codec(codepage).unwrap_or(Codec::Utf8) {
            Codec::Oem(table) => StreamInner::Oem(table),
            Codec::Utf8 => {
                StreamInner::Encoding(encoding_rs::UTF_8.new_decoder_without_bom_handling())
            }
            Codec::Encoding(encoding) => {
                StreamInner::Encoding(encoding.new_decoder_without_bom_handling())
            }
        };
        Self { inner }
    }

    /// Decodes the next chunk. Bytes of a character that is not complete yet
    /// are kept for the next call.
    pub fn decode_chunk(&mut self, chunk: &[u8]) -> String {
        self.run(chunk, false)
    }

    /// Ends the stream: whatever incomplete character is still pending comes
    /// out as U+FFFD. The decoder can be reused for a new stream afterwards.
    pub fn finish(&mut self) -> String {
        self.run(&[], true)
    }

    fn run(&mut self, mut input: &[u8], last: bool) -> String {
        let decoder = match &mut self.inner {
            StreamInner::Oem(table) => {
                let mut out = String::with_capacity(input.len());
                push_oem(&mut out, input, table);
                return out;
            }
            StreamInner::Encoding(decoder) => decoder,
        };
        let mut out = String::new();
        loop {
            // `max_utf8_buffer_length` only fails on arithmetic overflow;
            // the loop below copes with any capacity anyway.
            let want = decoder
                .max_utf8_buffer_length(input.len())
                .unwrap_or(input.len().saturating_add(16));
            out.reserve(want.max(4));
            let (result, read, _) = decoder.decode_to_string(input, &mut out, last);
            input = &input[read..];
            if result == encoding_rs::CoderResult::InputEmpty {
                break;
            }
        }
        if last {
            // encoding_rs decoders must not be used after `last`; start anew.
            *decoder = decoder.encoding().new_decoder_without_bom_handling();
        }
        out
    }
}

// ---------------------------------------------------------------------------
// PowerShell -EncodedCommand
// ---------------------------------------------------------------------------

/// Encodes `script` for `powershell.exe -EncodedCommand`: standard base64 of
/// the script's UTF-16LE bytes (no BOM).
#[must_use]
pub fn encode_powershell(script: &str) -> String {
    let utf16le: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    STANDARD.encode(utf16le)
}

// ---------------------------------------------------------------------------
// CLIXML on stderr
// ---------------------------------------------------------------------------

/// The header PowerShell writes before each serialized block on stderr.
const CLIXML_MARKER: &str = "#< CLIXML";

/// Namespace of PowerShell's serialization format.
const PS_NAMESPACE: &[u8] = b"http://schemas.microsoft.com/powershell/2004/04";

/// Decodes the CLIXML that PowerShell writes on stderr when it is redirected
/// (for instance under WinRS with `-EncodedCommand`):
///
/// ```text
/// #< CLIXML
/// <Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">
///   <Obj S="progress" RefId="0">…</Obj>
///   <S S="Error">boom_x000D__x000A_</S>
/// </Objs>
/// ```
///
/// This is [`ClixmlDecoder`] run over one complete text. It returns `None` when
/// `stderr` holds no `#< CLIXML` block that decodes (plain stderr, or only
/// malformed blocks): the caller shows the raw text. Otherwise it returns the
/// text the PowerShell console would have shown, possibly empty (a block with
/// only progress records gives `Some("")`):
///
/// * a block starts with a `#< CLIXML` marker at the start of a line (a UTF-8
///   BOM right before it is dropped); text before it, such as the stderr of a
///   native program the script ran, is kept verbatim;
/// * `<S>` records are taken in order, their `_xHHHH_` escapes decoded (UTF-16
///   code units, surrogate pairs included, so `_x000D__x000A_` is CRLF);
/// * Error records are kept as they are; Warning, Verbose and Debug records
///   get the console's `WARNING: `, `VERBOSE: ` and `DEBUG: ` prefixes;
///   Information records, like on the console, get none; stream names are
///   compared case-insensitively (PowerShell 5.1 writes `warning`);
/// * each record ends a line: a record without a line break gets a CRLF;
/// * progress records and any other objects (`<Obj …>`) are dropped;
/// * several blocks are all decoded; text after a block's `</Objs>` is kept
///   verbatim, without the whitespace that directly follows the block;
/// * a block that is malformed or cut off is kept as the raw text it was
///   (marker included), never dropped; the blocks after it are still decoded.
///
/// Only elements in PowerShell's namespace are recognised. This function never
/// panics.
#[must_use]
pub fn decode_clixml(stderr: &str) -> Option<String> {
    let mut decoder = ClixmlDecoder::with_block_limit(usize::MAX);
    let mut out = decoder.decode_chunk(stderr);
    out.push_str(&decoder.finish());
    (decoder.decoded > 0).then_some(out)
}

/// The most text a [`ClixmlDecoder`] holds for one unfinished block (16 MiB);
/// past it the block is given out raw.
const MAX_CLIXML_BLOCK: usize = 16 << 20;

/// Incremental CLIXML decoder for stderr that arrives in chunks (as it does
/// from a running command).
///
/// It applies the rules of [`decode_clixml`] to a stream of text: plain text
/// is handed back as soon as it arrives, except a line start that could still
/// become a `#< CLIXML` marker (at most 12 bytes, until the next chunk says);
/// a block is held from its marker until its closing `</Objs>` and then given
/// out decoded, so a block split over several chunks decodes as if it came
/// whole. A block that turns out malformed is given out raw as soon as that is
/// certain (or at [`finish`](Self::finish), or once it holds more than 16 MiB
/// of it).
///
/// It works on text: decode the bytes first, for instance with a
/// [`StreamDecoder`] for the shell's code page.
///
/// ```
/// use tokio_winrm::shell::text::ClixmlDecoder;
///
/// let mut stderr = ClixmlDecoder::new();
/// let mut shown = stderr.decode_chunk("native.exe: warning\r\n\u{feff}#< CLIXML\r\n<Objs ");
/// shown += &stderr.decode_chunk(
///     "xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><S S=\"Error\">boom</S></Objs>",
/// );
/// shown += &stderr.finish();
/// assert_eq!(shown, "native.exe: warning\r\nboom\r\n");
/// ```
#[derive(Debug)]
pub struct ClixmlDecoder {
    /// Text not given out yet: a possible marker at a line start, or a block.
    pending: String,
    mode: Mode,
    /// Bytes of a block's `pending` already searched for `Objs` and markers.
    scanned: usize,
    /// Blocks decoded so far.
    decoded: usize,
    /// Past this many bytes an unfinished block is given out raw.
    block_limit: usize,
}

/// Where a [`ClixmlDecoder`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Plain text; `line_start` when `pending` (or the next text) begins a line.
    Plain { line_start: bool },
    /// Right after a block: whitespace is dropped until other text comes.
    AfterBlock,
    /// Inside a block: `pending` holds the text after its marker.
    Block,
}

impl Default for ClixmlDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ClixmlDecoder {
    /// A decoder at the start of a stream.
    #[must_use]
    pub fn new() -> Self {
        Self::with_block_limit(MAX_CLIXML_BLOCK)
    }

    fn with_block_limit(block_limit: usize) -> Self {
        ClixmlDecoder {
            pending: String::new(),
            mode: Mode::Plain { line_start: true },
            scanned: 0,
            decoded: 0,
            block_limit,
        }
    }

    /// Takes the next chunk of stderr text and returns what can be shown now.
    pub fn decode_chunk(&mut self, text: &str) -> String {
        self.pending.push_str(text);
        let mut out = String::new();
        self.run(&mut out, false);
        out
    }

    /// Ends the stream: returns everything still held (an unfinished block as
    /// its raw text). The decoder can be reused for a new stream afterwards.
    pub fn finish(&mut self) -> String {
        let mut out = String::new();
        self.run(&mut out, true);
        out.push_str(&self.pending);
        self.pending.clear();
        self.mode = Mode::Plain { line_start: true };
        self.scanned = 0;
        out
    }

    fn run(&mut self, out: &mut String, last: bool) {
        loop {
            let progressed = match self.mode {
                Mode::Plain { line_start } => self.plain(out, line_start, last),
                Mode::AfterBlock => {
                    let text = self.pending.trim_start();
                    let skip = self.pending.len() - text.len();
                    self.pending.drain(..skip);
                    if self.pending.is_empty() {
                        false
                    } else {
                        self.mode = Mode::Plain { line_start: true };
                        true
                    }
                }
                Mode::Block => self.block(out, last),
            };
            if !progressed {
                return;
            }
        }
    }

    /// Gives out plain text up to a marker (then enters the block, returning
    /// `true`) or up to a line start that may still become one.
    fn plain(&mut self, out: &mut String, line_start: bool, last: bool) -> bool {
        let mut at = 0;
        let mut at_line_start = line_start;
        loop {
            if at_line_start {
                let rest = &self.pending[at..];
                let body = rest.strip_prefix('\u{feff}').unwrap_or(rest);
                if body.starts_with(CLIXML_MARKER) {
                    out.push_str(&self.pending[..at]);
                    let skip = at + (rest.len() - body.len()) + CLIXML_MARKER.len();
                    self.pending.drain(..skip);
                    self.mode = Mode::Block;
                    self.scanned = 0;
                    return true;
                }
                if !last && CLIXML_MARKER.starts_with(body) {
                    out.push_str(&self.pending[..at]);
                    self.pending.drain(..at);
                    self.mode = Mode::Plain { line_start: true };
                    return false;
                }
            }
            match self.pending[at..].find('\n') {
                Some(i) => {
                    at += i + 1;
                    at_line_start = true;
                }
                None => {
                    let line_start = if self.pending.is_empty() {
                        line_start
                    } else {
                        self.pending.ends_with('\n')
                    };
                    out.push_str(&self.pending);
                    self.pending.clear();
                    self.mode = Mode::Plain { line_start };
                    return false;
                }
            }
        }
    }

    /// Decodes the block in `pending` once it is complete, or gives it out raw
    /// once it cannot be; `true` when it did either.
    fn block(&mut self, out: &mut String, last: bool) -> bool {
        let bytes = self.pending.as_bytes();
        let from = self.scanned.saturating_sub(CLIXML_MARKER.len());
        let next_marker = find(&bytes[from..], CLIXML_MARKER.as_bytes()).map(|i| from + i);
        let worth_trying = last
            || next_marker.is_some()
            || find(&bytes[from..], b"Objs").is_some()
            || bytes.len() > self.block_limit;
        self.scanned = bytes.len();
        if !worth_trying {
            return false;
        }
        let raw_end = match decode_clixml_block(&self.pending, out) {
            Ok(end) => {
                self.pending.drain(..end);
                self.decoded += 1;
                self.mode = Mode::AfterBlock;
                return true;
            }
            // A new block began: this one is over, and malformed.
            Err(_) if next_marker.is_some() => next_marker.unwrap_or(0),
            Err(BlockError::Malformed) => self.pending.len(),
            Err(BlockError::Incomplete) if last || self.pending.len() > self.block_limit => {
                self.pending.len()
            }
            Err(BlockError::Incomplete) => return false,
        };
        out.push_str(CLIXML_MARKER);
        out.push_str(&self.pending[..raw_end]);
        self.pending.drain(..raw_end);
        // What follows is the next block's marker, taken as a line start, or
        // nothing yet.
        let line_start = !self.pending.is_empty() || out.ends_with('\n');
        self.mode = Mode::Plain { line_start };
        true
    }
}

/// The first position of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Marker error of the helpers below: the XML is malformed.
struct Malformed;

/// Why a block did not decode.
enum BlockError {
    /// The text ended inside the block: more text may complete it.
    Incomplete,
    /// The block can never decode.
    Malformed,
}

impl From<Malformed> for BlockError {
    fn from(_: Malformed) -> Self {
        BlockError::Malformed
    }
}

/// Whether a reader error may only mean that the text was cut off.
fn read_error(e: &quick_xml::Error) -> BlockError {
    use quick_xml::errors::IllFormedError;
    match e {
        quick_xml::Error::Syntax(_)
        | quick_xml::Error::IllFormed(
            IllFormedError::UnclosedReference | IllFormedError::MissingEndTag(_),
        ) => BlockError::Incomplete,
        _ => BlockError::Malformed,
    }
}

/// Which stream an `<S>` record belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    /// Kept, with the given prefix (empty for Error, Information, unknown).
    Keep(&'static str),
    /// Progress records: dropped.
    Drop,
}

impl Stream {
    fn from_attr(name: Option<&str>) -> Self {
        let Some(name) = name else {
            return Self::Keep("");
        };
        let prefix = match name.to_ascii_lowercase().as_str() {
            "progress" => return Self::Drop,
            "warning" => "WARNING: ",
            "verbose" => "VERBOSE: ",
            "debug" => "DEBUG: ",
            _ => "",
        };
        Self::Keep(prefix)
    }
}

/// What the parser is currently inside of.
enum State {
    /// Before the root `<Objs>`.
    Prolog,
    /// Inside `<Objs>`, between records.
    Root,
    /// Inside an `<S>` record at depth 2; `depth` counts nested elements.
    Record {
        stream: Stream,
        text: String,
        depth: usize,
    },
    /// Inside some other child of `<Objs>` (a progress `<Obj>` …).
    Skip { depth: usize },
}

/// Decodes one block (the text after a `#< CLIXML` marker, and possibly more
/// after it) into `out` and returns where its root element ends. On an error
/// `out` is left as it was.
fn decode_clixml_block(block: &str, out: &mut String) -> Result<usize, BlockError> {
    let start = out.len();
    let result = decode_block_into(block, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// [`decode_clixml_block`] without the clean-up on errors.
fn decode_block_into(block: &str, out: &mut String) -> Result<usize, BlockError> {
    let mut reader = NsReader::from_str(block);
    let mut state = State::Prolog;
    let end = |reader: &NsReader<&[u8]>| {
        usize::try_from(reader.buffer_position())
            .unwrap_or(block.len())
            .min(block.len())
    };
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| read_error(&e))?;
        let in_ps_ns = matches!(ns, ResolveResult::Bound(Namespace(uri)) if uri == PS_NAMESPACE);
        match (&mut state, event) {
            (_, Event::Eof) => return Err(BlockError::Incomplete),

            // Prolog: skip the declaration, comments, whitespace; find <Objs>.
            (State::Prolog, Event::Start(e)) if in_ps_ns && e.local_name().as_ref() == b"Objs" => {
                state = State::Root;
            }
            (State::Prolog, Event::Empty(e)) if in_ps_ns && e.local_name().as_ref() == b"Objs" => {
                return Ok(end(&reader));
            }
            (State::Prolog, Event::Start(_) | Event::Empty(_) | Event::End(_)) => {
                return Err(BlockError::Malformed);
            }
            (State::Prolog, _) => {}

            // Root: records and other objects.
            (State::Root, Event::Start(e)) => {
                state = if in_ps_ns && e.local_name().as_ref() == b"S" {
                    State::Record {
                        stream: Stream::from_attr(stream_attr(&e)?.as_deref()),
                        text: String::new(),
                        depth: 0,
                    }
                } else {
                    State::Skip { depth: 0 }
                };
            }
            (State::Root, Event::End(_)) => {
                return Ok(end(&reader));
            }
            (State::Root, _) => {}

            // Inside a record: collect its text.
            (State::Record { depth, .. }, Event::Start(_)) => *depth += 1,
            (State::Record { depth, .. }, Event::End(_)) if *depth > 0 => *depth -= 1,
            (State::Record { stream, text, .. }, Event::End(_)) => {
                push_record(out, *stream, text);
                state = State::Root;
            }
            (State::Record { text, depth: 0, .. }, Event::Text(t)) => {
                text.push_str(&t.xml10_content().map_err(|_| Malformed)?);
            }
            (State::Record { text, depth: 0, .. }, Event::CData(t)) => {
                text.push_str(&t.xml10_content().map_err(|_| Malformed)?);
            }
            (State::Record { text, depth: 0, .. }, Event::GeneralRef(r)) => {
                push_reference(text, &r)?;
            }
            (State::Record { .. }, _) => {}

            // Inside an object we do not keep.
            (State::Skip { depth }, Event::Start(_)) => *depth += 1,
            (State::Skip { depth }, Event::End(_)) if *depth > 0 => *depth -= 1,
            (State::Skip { .. }, Event::End(_)) => state = State::Root,
            (State::Skip { .. }, _) => {}
        }
    }
}

/// Reads the `S` (stream) attribute of a record, if any.
fn stream_attr<'a>(start: &'a BytesStart<'_>) -> Result<Option<Cow<'a, str>>, Malformed> {
    for attr in start.attributes() {
        let attr = attr.map_err(|_| Malformed)?;
        if attr.key.as_ref() == b"S" {
            return attr.unescape_value().map(Some).map_err(|_| Malformed);
        }
    }
    Ok(None)
}

/// Appends the text of an entity or character reference (`&amp;`, `&#xD;`).
fn push_reference(text: &mut String, reference: &BytesRef<'_>) -> Result<(), Malformed> {
    if let Some(ch) = reference.resolve_char_ref().map_err(|_| Malformed)? {
        text.push(ch);
        return Ok(());
    }
    let name = reference.decode().map_err(|_| Malformed)?;
    match quick_xml::escape::resolve_predefined_entity(&name) {
        Some(value) => text.push_str(value),
        // PowerShell only uses the predefined entities; keep anything else.
        None => {
            text.push('&');
            text.push_str(&name);
            text.push(';');
        }
    }
    Ok(())
}

/// Appends one finished `<S>` record.
fn push_record(out: &mut String, stream: Stream, raw: &str) {
    let Stream::Keep(prefix) = stream else {
        return;
    };
    let text = decode_escapes(raw);
    if !text.is_empty() {
        push_line(out, prefix, &text);
    }
}

/// Appends `text` as (at least) one line, prefixed unless it already starts
/// with the prefix.
fn push_line(out: &mut String, prefix: &str, text: &str) {
    let has_prefix = text
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix));
    if !has_prefix {
        out.push_str(prefix);
    }
    out.push_str(text);
    if !text.ends_with('\n') {
        out.push_str("\r\n");
    }
}

/// Decodes the `_xHHHH_` escapes of PowerShell's serializer (the scheme of
/// .NET's `XmlConvert.DecodeName`). Each escape is one UTF-16 code unit, so a
/// character outside the BMP is a pair of escapes; lone surrogates become
/// U+FFFD. `_x005F_` is how a literal underscore before `x` is protected.
#[must_use]
pub fn decode_escapes(text: &str) -> Cow<'_, str> {
    if !text.contains("_x") {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut units: Vec<u16> = Vec::new();
    let mut literal_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match escape_at(bytes, i) {
            Some(unit) => {
                if literal_start < i {
                    flush_units(&mut units, &mut out);
                    out.push_str(&text[literal_start..i]);
                }
                units.push(unit);
                i += ESCAPE_LEN;
                literal_start = i;
            }
            None => i += 1,
        }
    }
    flush_units(&mut units, &mut out);
    out.push_str(&text[literal_start..]);
    Cow::Owned(out)
}

/// Length of `_xHHHH_`.
const ESCAPE_LEN: usize = 7;

/// The code unit of an `_xHHHH_` escape starting at `bytes[at]`, if there is one.
fn escape_at(bytes: &[u8], at: usize) -> Option<u16> {
    let candidate = bytes.get(at..at + ESCAPE_LEN)?;
    if candidate[0] != b'_' || candidate[1] != b'x' || candidate[6] != b'_' {
        return None;
    }
    candidate[2..6].iter().try_fold(0u16, |acc, &digit| {
        let value = u16::try_from(char::from(digit).to_digit(16)?).ok()?;
        Some((acc << 4) | value)
    })
}

/// Moves the pending UTF-16 code units into `out`.
fn flush_units(units: &mut Vec<u16>, out: &mut String) {
    out.extend(char::decode_utf16(units.drain(..)).map(|r| r.unwrap_or(REPLACEMENT)));
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OBJS: &str =
        r#"<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">"#;

    /// What PowerShell 5.1 writes on stderr for `Write-Error "boom"` run with
    /// `-EncodedCommand`: a "Preparing modules" progress record, then one
    /// `<S S="Error">` per console line.
    fn write_error_boom() -> String {
        format!(
            "#< CLIXML\r\n{OBJS}\
             <Obj S=\"progress\" RefId=\"0\"><TN RefId=\"0\">\
             <T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN>\
             <MS><I64 N=\"SourceId\">1</I64><PR N=\"Record\">\
             <AV>Preparing modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI>\
             <PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj>\
             <S S=\"Error\">Write-Error \"boom\" : boom_x000D__x000A_</S>\
             <S S=\"Error\">    + CategoryInfo          : NotSpecified: (:) [Write-Error], \
             WriteErrorException_x000D__x000A_</S>\
             <S S=\"Error\">    + FullyQualifiedErrorId : \
             Microsoft.PowerShell.Commands.WriteErrorException_x000D__x000A_</S>\
             <S S=\"Error\"> _x000D__x000A_</S>\
             </Objs>"
        )
    }

    // --- code pages -------------------------------------------------------

    #[test]
    fn cp437_box_drawing_and_accents() {
        let bytes = [0xDA, 0xC4, 0xBF, b' ', 0x82, 0x9C, 0xE3, 0xB3];
        assert_eq!(decode(&bytes, 437), "┌─┐ é£π│");
        assert_eq!(decode(&[0xC4], 437), "─");
        assert_eq!(decode(&[0x82], 437), "é");
    }

    #[test]
    fn cp850_differs_from_437() {
        assert_eq!(decode(&[0x82], 850), "é");
        assert_eq!(decode(&[0xD5], 850), "ı");
        // 0x9B is ¢ in 437 but ø in 850.
        assert_eq!(decode(&[0x9B], 437), "¢");
        assert_eq!(decode(&[0x9B], 850), "ø");
        // 858 is 850 with the euro sign in place of the dotless i.
        assert_eq!(decode(&[0xD5], 858), "€");
    }

    #[test]
    fn other_common_pages() {
        // 852 (Central European DOS): 0xA5 is ą.
        assert_eq!(decode(&[0xA5], 852), "ą");
        // 866 (Cyrillic DOS): "Привет".
        assert_eq!(decode(&[0x8F, 0xE0, 0xA8, 0xA2, 0xA5, 0xE2], 866), "Привет");
        // 1252: euro, smart quotes, é.
        assert_eq!(decode(&[0x80, 0x93, b'x', 0x94, 0xE9], 1252), "€“x”é");
        // 1251: "Да".
        assert_eq!(decode(&[0xC4, 0xE0], 1251), "Да");
        // 1250: ł.
        assert_eq!(decode(&[0xB3], 1250), "ł");
        // 932 (Shift-JIS): 日本.
        assert_eq!(decode(&[0x93, 0xFA, 0x96, 0x7B], 932), "日本");
    }

    #[test]
    fn utf8_multibyte_and_lossy() {
        let text = "dir C:\\Users\\Jürgen → 日本語 😀";
        assert_eq!(decode(text.as_bytes(), 65001), text);
        assert!(matches!(decode(text.as_bytes(), 65001), Cow::Borrowed(_)));
        assert_eq!(decode(&[b'a', 0xFF, b'b'], 65001), "a\u{FFFD}b");
        // A truncated sequence becomes one replacement character.
        assert_eq!(decode(&[b'a', 0xE2, 0x86], 65001), "a\u{FFFD}");
    }

    #[test]
    fn unknown_codepage_falls_back_to_utf8() {
        assert!(!is_supported(12345));
        assert!(!is_supported(u32::MAX));
        assert_eq!(decode("héllo".as_bytes(), 12345), "héllo");
        assert_eq!(decode(&[0x82], 99_999), "\u{FFFD}");
    }

    #[test]
    fn supported_pages() {
        for cp in [
            65001, 437, 850, 852, 858, 866, 874, 1250, 1251, 1252, 1253, 932, 936, 949,
        ] {
            assert!(is_supported(cp), "{cp} should be supported");
        }
        assert!(!is_supported(0));
    }

    #[test]
    fn ascii_is_borrowed() {
        for cp in [437, 850, 1252, 65001, 4242] {
            assert!(matches!(
                decode(b"plain ascii\r\n", cp),
                Cow::Borrowed("plain ascii\r\n")
            ));
        }
    }

    #[test]
    fn incomplete_oem_table_yields_replacement() {
        // 874 leaves 0xDB undefined.
        assert_eq!(decode(&[b'0', 0xDB], 874), "0\u{FFFD}");
    }

    #[test]
    fn stream_decoder_joins_split_characters() {
        let text = "é→日本😀";
        let bytes = text.as_bytes();
        for split in 0..=bytes.len() {
            let mut dec = StreamDecoder::new(65001);
            let mut got = dec.decode_chunk(&bytes[..split]);
            got += &dec.decode_chunk(&bytes[split..]);
            got += &dec.finish();
            assert_eq!(got, text, "split at {split}");
        }
        // Shift-JIS split inside a double-byte character.
        let mut dec = StreamDecoder::new(932);
        let mut got = dec.decode_chunk(&[0x93]);
        got += &dec.decode_chunk(&[0xFA, 0x96]);
        got += &dec.decode_chunk(&[0x7B]);
        assert_eq!(got + &dec.finish(), "日本");
        // OEM pages are stateless.
        let mut dec = StreamDecoder::new(437);
        assert_eq!(dec.decode_chunk(&[0xC4, 0x82]), "─é");
    }

    #[test]
    fn stream_decoder_finish_flushes_and_resets() {
        let mut dec = StreamDecoder::new(65001);
        assert_eq!(dec.decode_chunk(&[b'a', 0xE2, 0x86]), "a");
        assert_eq!(dec.finish(), "\u{FFFD}");
        assert_eq!(dec.decode_chunk("ok→".as_bytes()), "ok→");
        assert_eq!(dec.finish(), "");
    }

    // --- -EncodedCommand --------------------------------------------------

    #[test]
    fn encode_powershell_known_vector() {
        // `powershell -EncodedCommand ZABpAHIA` runs `dir`.
        assert_eq!(encode_powershell("dir"), "ZABpAHIA");
        assert_eq!(encode_powershell(""), "");
    }

    fn decode_base64_utf16le(encoded: &str) -> String {
        let bytes = STANDARD.decode(encoded).expect("valid base64");
        assert_eq!(bytes.len() % 2, 0);
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        String::from_utf16(&units).expect("valid UTF-16")
    }

    #[test]
    fn encode_powershell_round_trips() {
        for script in [
            "Write-Output hi",
            "Get-ChildItem 'C:\\Zürich' | % { $_ } # 😀\r\n",
        ] {
            let encoded = encode_powershell(script);
            assert!(
                encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
            );
            assert_eq!(decode_base64_utf16le(&encoded), script);
        }
        assert_eq!(
            STANDARD
                .decode(encode_powershell("Write-Output hi"))
                .unwrap()[..4],
            [b'W', 0, b'r', 0]
        );
    }

    // --- CLIXML -----------------------------------------------------------

    #[test]
    fn not_clixml_is_none() {
        assert_eq!(decode_clixml(""), None);
        assert_eq!(decode_clixml("plain error text\r\n"), None);
        assert_eq!(decode_clixml("error before #< CLIXML\r\n<Objs/>"), None);
    }

    #[test]
    fn write_error_record() {
        let got = decode_clixml(&write_error_boom()).expect("is CLIXML");
        assert_eq!(
            got,
            "Write-Error \"boom\" : boom\r\n    + CategoryInfo          : NotSpecified: (:) \
             [Write-Error], WriteErrorException\r\n    + FullyQualifiedErrorId : \
             Microsoft.PowerShell.Commands.WriteErrorException\r\n \r\n"
        );
        assert!(!got.contains("Preparing modules"));
        assert!(!got.contains('<'));
    }

    #[test]
    fn progress_only_is_empty() {
        let stderr = format!(
            "#< CLIXML\r\n{OBJS}<Obj S=\"progress\" RefId=\"0\"><TN RefId=\"0\">\
             <T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN>\
             <MS><I64 N=\"SourceId\">1</I64><PR N=\"Record\"><AV>Preparing modules for \
             first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR>\
             <SD> </SD></PR></MS></Obj><Obj S=\"progress\" RefId=\"1\"><TNRef RefId=\"0\" />\
             <MS><I64 N=\"SourceId\">2</I64><PR N=\"Record\"><AV>Copying</AV><AI>0</AI><Nil />\
             <PI>-1</PI><PC>40</PC><T>Processing</T><SR>-1</SR><SD>file.txt</SD></PR></MS>\
             </Obj></Objs>"
        );
        assert_eq!(decode_clixml(&stderr).as_deref(), Some(""));
        assert_eq!(
            decode_clixml(&format!("#< CLIXML\r\n{OBJS}</Objs>")).as_deref(),
            Some("")
        );
        assert_eq!(
            decode_clixml(
                "#< CLIXML\r\n<Objs xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"/>"
            )
            .as_deref(),
            Some("")
        );
    }

    #[test]
    fn other_streams_get_console_prefixes() {
        let stderr = format!(
            "#< CLIXML\r\n{OBJS}<S S=\"warning\">disk almost full</S>\
             <S S=\"verbose\">connecting</S><S S=\"Debug\">DEBUG: already prefixed</S>\
             <S S=\"information\">note_x000D__x000A_</S><S S=\"progress\">10%</S>\
             <S S=\"Error\">bad &amp; worse &lt;x&gt; &#x263A;_x000D__x000A_</S></Objs>"
        );
        assert_eq!(
            decode_clixml(&stderr).unwrap(),
            "WARNING: disk almost full\r\nVERBOSE: connecting\r\nDEBUG: already prefixed\r\n\
             note\r\nbad & worse <x> ☺\r\n"
        );
    }

    #[test]
    fn nested_strings_inside_objects_are_ignored() {
        // An <S> inside an object is a property, not a stream record.
        let stderr = format!(
            "#< CLIXML\r\n{OBJS}<Obj S=\"progress\"><MS><S N=\"Activity\">hidden</S></MS></Obj>\
             <S S=\"Error\">shown</S></Objs>"
        );
        assert_eq!(decode_clixml(&stderr).unwrap(), "shown\r\n");
    }

    #[test]
    fn foreign_namespace_is_not_powershell() {
        let stderr = "#< CLIXML\r\n<Objs xmlns=\"urn:other\"><S S=\"Error\">x</S></Objs>";
        assert_eq!(decode_clixml(stderr), None);
        // Without any namespace the root is not PowerShell's either.
        assert_eq!(
            decode_clixml("#< CLIXML\r\n<Objs><S S=\"Error\">x</S></Objs>"),
            None
        );
        // A prefixed PowerShell namespace is fine.
        let prefixed = "#< CLIXML\r\n<ps:Objs xmlns:ps=\"http://schemas.microsoft.com/powershell/2004/04\">\
                        <ps:S S=\"Error\">ok</ps:S><S S=\"Error\">unbound</S></ps:Objs>";
        assert_eq!(decode_clixml(prefixed).unwrap(), "ok\r\n");
    }

    #[test]
    fn several_blocks_and_trailing_text() {
        let stderr = format!(
            "#< CLIXML\r\n{OBJS}<S S=\"Error\">first_x000D__x000A_</S></Objs>\
             #< CLIXML\r\n{OBJS}<Obj S=\"progress\"><MS/></Obj></Objs>\r\n\
             #< CLIXML\r\n{OBJS}<S S=\"warning\">second</S></Objs>\r\nnative.exe: oops\r\n"
        );
        assert_eq!(
            decode_clixml(&stderr).unwrap(),
            "first\r\nWARNING: second\r\nnative.exe: oops\r\n"
        );
    }

    #[test]
    fn escapes_and_surrogate_pairs() {
        assert_eq!(decode_escapes("a_x000D__x000A_b"), "a\r\nb");
        assert_eq!(decode_escapes("_xD83D__xDE00_"), "😀");
        assert_eq!(decode_escapes("x_xd83d__xde00_y"), "x😀y");
        // A lone surrogate, high or low, is a replacement character.
        assert_eq!(decode_escapes("_xD83D_x"), "\u{FFFD}x");
        assert_eq!(decode_escapes("_xDE00_"), "\u{FFFD}");
        assert_eq!(decode_escapes("_xD83D_ _xDE00_"), "\u{FFFD} \u{FFFD}");
        // `_x005F_` protects an underscore; not-quite escapes stay as they are.
        assert_eq!(decode_escapes("_x005F_x000D_"), "_x000D_");
        assert_eq!(
            decode_escapes("_x00G1_ _x12_ my_xvar _x0041"),
            "_x00G1_ _x12_ my_xvar _x0041"
        );
        assert_eq!(decode_escapes("ü_x0041_ü"), "üAü");
        assert_eq!(decode_escapes("_x001B_[31m"), "\u{1b}[31m");
        assert!(matches!(decode_escapes("no escapes"), Cow::Borrowed(_)));

        let stderr =
            format!("#< CLIXML\r\n{OBJS}<S S=\"Error\">smile _xD83D__xDE00__x000A_</S></Objs>");
        assert_eq!(decode_clixml(&stderr).unwrap(), "smile 😀\n");
    }

    #[test]
    fn malformed_or_cut_blocks_are_kept_raw() {
        // Cut off in the middle of the second record: nothing is lost, the
        // whole block comes out as the raw text it was.
        let full = write_error_boom();
        let cut = &full[..full.find("    + FullyQualifiedErrorId").unwrap()];
        assert_eq!(decode_clixml(cut), None);
        let mut stream = ClixmlDecoder::new();
        let shown = stream.decode_chunk(cut) + &stream.finish();
        assert_eq!(shown, cut);
        // Nothing decodable at all: None, the caller shows the raw text.
        for bad in [
            "#< CLIXML",
            "#< CLIXML\r\n",
            "#< CLIXML\r\nnot xml",
            "#< CLIXML\r\n<Objs",
            "#< CLIXML\r\n<Objs xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><S S=\"Error\">x</Obj></Objs>",
        ] {
            assert_eq!(decode_clixml(bad), None, "{bad:?}");
            let mut stream = ClixmlDecoder::new();
            assert_eq!(stream.decode_chunk(bad) + &stream.finish(), bad);
        }
        // A broken block is kept raw and does not hide the good one after it.
        let broken = format!("#< CLIXML\r\n{OBJS}<S S=\"Error\">a</X>\r\n");
        let stderr = format!("{broken}#< CLIXML\r\n{OBJS}<S S=\"Error\">b</S></Objs>");
        assert_eq!(decode_clixml(&stderr).unwrap(), format!("{broken}b\r\n"));
        // A block known to be malformed is given out at once, not at the end.
        let mut stream = ClixmlDecoder::new();
        let wrong = "#< CLIXML\r\n<Objs xmlns=\"urn:other\"><S>x</S>";
        assert_eq!(stream.decode_chunk(wrong), wrong);
        assert_eq!(
            stream.decode_chunk("</Objs>\r\nnext\r\n"),
            "</Objs>\r\nnext\r\n"
        );
        assert_eq!(stream.finish(), "");
    }

    /// Feeds `text` to a fresh [`ClixmlDecoder`] in the given pieces.
    fn stream_in(pieces: &[&str]) -> String {
        let mut d = ClixmlDecoder::new();
        let mut out = String::new();
        for p in pieces {
            out += &d.decode_chunk(p);
        }
        out + &d.finish()
    }

    /// Every way of cutting `text` in two (and in three around the middle)
    /// gives what decoding it whole gives.
    fn assert_split_invariant(text: &str) {
        let whole = stream_in(&[text]);
        let cuts: Vec<usize> = (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        for &i in &cuts {
            assert_eq!(stream_in(&[&text[..i], &text[i..]]), whole, "cut at {i}");
        }
        for &i in &cuts {
            let j = cuts[cuts.len() / 2].max(i);
            assert_eq!(
                stream_in(&[&text[..i], &text[i..j], &text[j..]]),
                whole,
                "cuts at {i} and {j}"
            );
        }
    }

    #[test]
    fn bom_before_the_marker() {
        // PowerShell started by a native tool (or `powershell -Command` under
        // some hosts) writes a UTF-8 BOM before its first block.
        let stderr = format!("\u{feff}{}", write_error_boom());
        let got = decode_clixml(&stderr).expect("decoded");
        assert!(
            got.starts_with("Write-Error \"boom\" : boom\r\n"),
            "{got:?}"
        );
        assert!(!got.contains('<') && !got.contains('\u{feff}'), "{got:?}");
        assert_eq!(Some(stream_in(&[&stderr])), decode_clixml(&stderr));
        assert_split_invariant(&stderr);
    }

    #[test]
    fn native_stderr_then_clixml() {
        // A script that ran a native program which wrote to stderr first.
        let stderr = format!(
            "git : fatal: not a git repository\r\n\u{feff}#< CLIXML\r\n{OBJS}\
             <S S=\"Error\">Write-Error : failed_x000D__x000A_</S></Objs>"
        );
        assert_eq!(
            decode_clixml(&stderr).unwrap(),
            "git : fatal: not a git repository\r\nWrite-Error : failed\r\n"
        );
        assert_split_invariant(&stderr);
        // Plain lines come out at once; only a line start that may become a
        // marker is held.
        let mut d = ClixmlDecoder::new();
        assert_eq!(d.decode_chunk("native: one\r\nnat"), "native: one\r\nnat");
        assert_eq!(d.decode_chunk("ive: two\r\n#< CL"), "ive: two\r\n");
        assert_eq!(d.decode_chunk("IXML\r\n"), "");
        assert_eq!(d.decode_chunk(OBJS), "");
        assert_eq!(
            d.decode_chunk("<S S=\"Error\">bad</S></Objs>\r\nafter"),
            "bad\r\nafter"
        );
        assert_eq!(d.finish(), "");
        // A held prefix that does not become a marker is plain text after all.
        let mut d = ClixmlDecoder::new();
        assert_eq!(d.decode_chunk("#<"), "");
        assert_eq!(d.decode_chunk(" C not it\r\n"), "#< C not it\r\n");
        assert_eq!(d.decode_chunk("#"), "");
        assert_eq!(d.finish(), "#");
        // The marker is only one at the start of a line.
        let inline = format!("see #< CLIXML\r\n{OBJS}<S S=\"Error\">x</S></Objs>");
        assert_eq!(decode_clixml(&inline), None);
        assert_eq!(stream_in(&[&inline]), inline);
    }

    #[test]
    fn progress_only_streams_to_nothing() {
        let stderr = format!(
            "\u{feff}#< CLIXML\r\n{OBJS}<Obj S=\"progress\" RefId=\"0\"><TN RefId=\"0\">\
             <T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN><MS>\
             <I64 N=\"SourceId\">1</I64><PR N=\"Record\"><AV>Preparing modules for first use.\
             </AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD>\
             </PR></MS></Obj></Objs>\r\n"
        );
        assert_eq!(decode_clixml(&stderr).as_deref(), Some(""));
        assert_eq!(stream_in(&[&stderr]), "");
        assert_split_invariant(&stderr);
    }

    #[test]
    fn blocks_split_over_many_chunks() {
        let stderr = format!(
            "{}\r\n#< CLIXML\r\n{OBJS}<S S=\"warning\">low_x000D__x000A_</S></Objs>",
            write_error_boom()
        );
        let whole = decode_clixml(&stderr).unwrap();
        assert!(whole.ends_with(" \r\nWARNING: low\r\n"), "{whole:?}");
        for size in [1, 2, 3, 7, 64] {
            let bytes = stderr.as_bytes();
            let pieces: Vec<&str> = bytes
                .chunks(size)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            assert_eq!(stream_in(&pieces), whole, "chunks of {size}");
        }
        // Nothing of a block comes out before its end, and all of it then.
        let mut d = ClixmlDecoder::new();
        let (head, tail) = stderr.split_at(stderr.find("</Objs>").unwrap());
        assert_eq!(d.decode_chunk(head), "");
        assert!(d.decode_chunk(tail).starts_with("Write-Error"));
    }

    #[test]
    fn an_endless_block_is_given_out_raw_past_the_limit() {
        let mut d = ClixmlDecoder::with_block_limit(1000);
        let start = format!("#< CLIXML\r\n{OBJS}<S S=\"Error\">");
        assert_eq!(d.decode_chunk(&start), "");
        let filler = "x".repeat(2000);
        assert_eq!(d.decode_chunk(&filler), format!("{start}{filler}"));
        assert_eq!(d.decode_chunk("</S></Objs>"), "</S></Objs>");
        assert_eq!(d.finish(), "");
    }

    proptest! {
        #[test]
        fn decode_clixml_never_panics(body in ".{0,200}") {
            let _ = decode_clixml(&body);
            let _ = decode_clixml(&format!("#< CLIXML\r\n{body}"));
        }

        #[test]
        fn decode_clixml_never_panics_on_mutated_records(
            cut in 0usize..600,
            junk in "[<>&;/_x0-9A-F\"= SObjs#]{0,20}",
        ) {
            let full = write_error_boom();
            let mut cut = cut.min(full.len());
            while !full.is_char_boundary(cut) {
                cut -= 1;
            }
            let mutated = format!("{}{junk}{}", &full[..cut], &full[cut..]);
            let _ = decode_clixml(&mutated);
            let _ = decode_clixml(&full[..cut]);
        }

        #[test]
        fn clixml_stream_matches_whole_decoding(
            lead in "(native: [a-z ]{0,10}\\r\\n)?\u{feff}?",
            cuts in proptest::collection::vec(0usize..700, 0..6),
        ) {
            let text = format!(
                "{lead}{}\r\nplain\r\n#< CLIXML\r\n{OBJS}<S S=\"Error\">b</S></Objs>",
                write_error_boom()
            );
            let mut cuts: Vec<usize> = cuts
                .into_iter()
                .map(|c| c.min(text.len()))
                .filter(|&c| text.is_char_boundary(c))
                .collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut at = 0;
            for c in cuts {
                pieces.push(&text[at..c]);
                at = c;
            }
            pieces.push(&text[at..]);
            let whole = decode_clixml(&text).unwrap();
            prop_assert!(whole.ends_with("plain\r\nb\r\n"), "{}", whole);
            prop_assert_eq!(stream_in(&pieces), whole);
        }

        #[test]
        fn decode_escapes_never_panics(text in "(_x[0-9a-fA-FDG]{0,5}_?|.){0,40}") {
            let _ = decode_escapes(&text);
        }

        #[test]
        fn decode_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64), pick in 0usize..8) {
            let cp = [437u32, 850, 852, 866, 874, 932, 1252, 65001][pick];
            let whole = decode(&bytes, cp).into_owned();
            let mut stream = StreamDecoder::new(cp);
            let mut chunked = String::new();
            for chunk in bytes.chunks(3) {
                chunked += &stream.decode_chunk(chunk);
            }
            chunked += &stream.finish();
            prop_assert_eq!(chunked, whole);
        }

        #[test]
        fn single_byte_pages_keep_length(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            for cp in [437u32, 850, 852, 866, 1252] {
                prop_assert_eq!(decode(&bytes, cp).chars().count(), bytes.len());
            }
        }

        #[test]
        fn encode_powershell_round_trips_any(script in any::<String>()) {
            prop_assert_eq!(decode_base64_utf16le(&encode_powershell(&script)), script);
        }
    }
}
