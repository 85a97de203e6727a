//! PSRP fragments ([MS-PSRP] §2.2.4): how a message is cut into pieces that fit a
//! WS-Management envelope, and put back together.
//!
//! A fragment is `ObjectId` (u64), `FragmentId` (u64), one byte of flags (`0x1` start,
//! `0x2` end), `BlobLength` (u32) and the blob, all integers big-endian. The fragments of
//! one message share its object id and count up from fragment id 0. The base64 text of
//! a `creationXml`, `rsp:Arguments` or `rsp:Stream` element decodes to one or more
//! whole fragments back to back.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use super::error::{Error, Result};
use super::message::Message;

/// Length of a fragment header: object id, fragment id, flags, blob length.
pub const FRAGMENT_HEADER_LEN: usize = 8 + 8 + 1 + 4;

const FLAG_START: u8 = 0x1;
const FLAG_END: u8 = 0x2;

/// One fragment of a PSRP message ([MS-PSRP] §2.2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// The id of the message (object) this fragment belongs to; unique per sender.
    pub object_id: u64,
    /// The position of this fragment in its object, from 0.
    pub fragment_id: u64,
    /// The `S` flag: this is the first fragment of the object.
    pub start: bool,
    /// The `E` flag: this is the last fragment of the object.
    pub end: bool,
    /// The bytes of the message this fragment carries.
    pub blob: Bytes,
}

impl Fragment {
    /// Appends this fragment's wire form to `out`.
    ///
    /// A blob longer than `u32::MAX` bytes cannot be framed; the [`Fragmenter`] never
    /// makes one, and this method writes the length saturated (callers building fragments
    /// by hand keep blobs small).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(FRAGMENT_HEADER_LEN + self.blob.len());
        out.extend_from_slice(&self.object_id.to_be_bytes());
        out.extend_from_slice(&self.fragment_id.to_be_bytes());
        let mut flags = 0;
        if self.start {
            flags |= FLAG_START;
        }
        if self.end {
            flags |= FLAG_END;
        }
        out.push(flags);
        let len = u32::try_from(self.blob.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.blob);
    }

    /// This fragment's wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Reads the fragment at the start of `input` and returns it with the number of bytes
    /// it took. The blob shares `input`'s buffer.
    ///
    /// # Errors
    ///
    /// [`Error::FragmentTruncated`] when the header or the blob runs past the input.
    pub fn decode(input: &Bytes) -> Result<(Fragment, usize)> {
        let header = input
            .get(..FRAGMENT_HEADER_LEN)
            .ok_or(Error::FragmentTruncated {
                needed: FRAGMENT_HEADER_LEN,
                available: input.len(),
            })?;
        let object_id = u64::from_be_bytes(header[0..8].try_into().unwrap_or_default());
        let fragment_id = u64::from_be_bytes(header[8..16].try_into().unwrap_or_default());
        let flags = header[16];
        let len = u32::from_be_bytes(header[17..21].try_into().unwrap_or_default()) as usize;
        let total = FRAGMENT_HEADER_LEN.saturating_add(len);
        if input.len() < total {
            return Err(Error::FragmentTruncated {
                needed: total,
                available: input.len(),
            });
        }
        Ok((
            Fragment {
                object_id,
                fragment_id,
                start: flags & FLAG_START != 0,
                end: flags & FLAG_END != 0,
                blob: input.slice(FRAGMENT_HEADER_LEN..total),
            },
            total,
        ))
    }

    /// Reads all the fragments in `input` (the decoded base64 of one stream element).
    ///
    /// # Errors
    ///
    /// [`Error::FragmentTruncated`] when the last fragment is cut short.
    pub fn decode_all(input: &Bytes) -> Result<Vec<Fragment>> {
        let mut rest = input.clone();
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (fragment, used) = Fragment::decode(&rest)?;
            out.push(fragment);
            rest = rest.slice(used..);
        }
        Ok(out)
    }
}

/// The largest fragment blob that fits, base64-encoded, in an envelope of
/// `max_envelope_size` bytes (the `wsman:MaxEnvelopeSize` the server accepts, 153600 by
/// default; see [MS-WSMV] §3.1.4.1.7) whose other content already takes `envelope_len`
/// bytes.
///
/// `envelope_len` is the length of the same request (a Create with an empty
/// `creationXml`, or a Send with an empty `rsp:Stream`) serialized without any payload;
/// the caller measures it once with the envelope writer. What is left holds base64,
/// which carries 3 bytes per 4 characters; each fragment takes a
/// [`FRAGMENT_HEADER_LEN`]-byte header. `None` when not even a 1-byte blob fits.
///
/// ```
/// use wsman_protocol::psrp::max_blob_size;
/// // 153600-byte envelopes with 1600 bytes of headers and body around the payload:
/// assert_eq!(max_blob_size(153_600, 1_600), Some(113_979));
/// assert_eq!(max_blob_size(1_000, 990), None);
/// ```
pub fn max_blob_size(max_envelope_size: usize, envelope_len: usize) -> Option<usize> {
    let base64_chars = max_envelope_size.checked_sub(envelope_len)?;
    let bytes = base64_chars / 4 * 3;
    bytes.checked_sub(FRAGMENT_HEADER_LEN).filter(|&n| n > 0)
}

/// Splits messages into fragments whose blobs hold at most a given number of bytes, and
/// numbers objects from 1.
///
/// One fragmenter per sender and runspace pool keeps object ids unique ([MS-PSRP]
/// §2.2.4); pypsrp and Windows number the objects of a pool from 1 across the pool's
/// and its pipelines' messages.
#[derive(Debug, Clone)]
pub struct Fragmenter {
    max_blob: usize,
    next_object_id: u64,
}

impl Fragmenter {
    /// A fragmenter whose blobs hold at most `max_blob` bytes (at least 1; see
    /// [`max_blob_size`]).
    pub fn new(max_blob: usize) -> Self {
        Fragmenter {
            max_blob: max_blob.max(1),
            next_object_id: 1,
        }
    }

    /// The largest blob this fragmenter makes.
    pub fn max_blob(&self) -> usize {
        self.max_blob
    }

    /// Changes the blob limit for the next messages (after the server's
    /// MaxEnvelopeSize is known).
    pub fn set_max_blob(&mut self, max_blob: usize) {
        self.max_blob = max_blob.max(1);
    }

    /// The object id the next message gets.
    pub fn next_object_id(&self) -> u64 {
        self.next_object_id
    }

    /// Splits the bytes of one encoded message into fragments under a new object id.
    pub fn fragment_bytes(&mut self, message: Bytes) -> Vec<Fragment> {
        let object_id = self.next_object_id;
        self.next_object_id = self.next_object_id.wrapping_add(1);
        if message.is_empty() {
            return vec![Fragment {
                object_id,
                fragment_id: 0,
                start: true,
                end: true,
                blob: message,
            }];
        }
        let count = message.len().div_ceil(self.max_blob);
        (0..count)
            .map(|i| {
                let from = i * self.max_blob;
                let to = (from + self.max_blob).min(message.len());
                Fragment {
                    object_id,
                    fragment_id: i as u64,
                    start: i == 0,
                    end: i + 1 == count,
                    blob: message.slice(from..to),
                }
            })
            .collect()
    }

    /// Encodes `message` and splits it into fragments under a new object id.
    pub fn fragment(&mut self, message: &Message) -> Vec<Fragment> {
        self.fragment_bytes(Bytes::from(message.encode()))
    }

    /// Encodes and fragments `messages`, and packs the fragments' wire bytes into
    /// payloads of at most `max_blob + FRAGMENT_HEADER_LEN` bytes each, one payload per
    /// envelope (a Send's `rsp:Stream` or a Create's `creationXml`), as many fragments
    /// per payload as fit, as [MS-PSRP] §3.1.5.1.1 asks.
    pub fn pack(&mut self, messages: &[Message]) -> Vec<Vec<u8>> {
        let limit = self.max_blob + FRAGMENT_HEADER_LEN;
        let mut payloads: Vec<Vec<u8>> = Vec::new();
        let mut current: Vec<u8> = Vec::new();
        for message in messages {
            let encoded = Bytes::from(message.encode());
            let object_id = self.next_object_id;
            self.next_object_id = self.next_object_id.wrapping_add(1);
            let mut fragment_id = 0u64;
            let mut offset = 0usize;
            loop {
                let room = limit.saturating_sub(current.len());
                if room <= FRAGMENT_HEADER_LEN {
                    payloads.push(std::mem::take(&mut current));
                    continue;
                }
                let take = (room - FRAGMENT_HEADER_LEN).min(encoded.len() - offset);
                let fragment = Fragment {
                    object_id,
                    fragment_id,
                    start: fragment_id == 0,
                    end: offset + take == encoded.len(),
                    blob: encoded.slice(offset..offset + take),
                };
                fragment.encode_into(&mut current);
                offset += take;
                fragment_id += 1;
                if offset == encoded.len() {
                    break;
                }
                payloads.push(std::mem::take(&mut current));
            }
        }
        if !current.is_empty() {
            payloads.push(current);
        }
        payloads
    }
}

/// Limits of a [`Defragmenter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DefragmentLimits {
    /// The largest message (all fragments of one object) accepted, in bytes.
    pub max_message_size: usize,
    /// How many objects may be in progress at once.
    pub max_objects_in_progress: usize,
}

impl DefragmentLimits {
    /// Limits with the given largest message size and the default object count.
    pub fn with_max_message_size(max_message_size: usize) -> Self {
        DefragmentLimits {
            max_message_size,
            ..Self::default()
        }
    }
}

impl Default for DefragmentLimits {
    /// 64 MiB per message (Windows caps a PSRP object at 50 MB by default,
    /// `MaximumReceivedObjectSizeMB`), 16 objects in progress.
    fn default() -> Self {
        DefragmentLimits {
            max_message_size: 64 << 20,
            max_objects_in_progress: 16,
        }
    }
}

#[derive(Debug)]
struct Partial {
    next_fragment_id: u64,
    data: BytesMut,
}

/// Puts fragments back together into whole messages.
///
/// Feed it the decoded bytes of each stream element in the order they arrived; an
/// object may span several elements and several Receive responses, but a fragment never
/// does ([MS-PSRP] §2.2.4: "an individual fragment MUST be sent in a single WS-MAN
/// packet"), so a cut fragment is an error, not a wait for more. Memory stays bounded
/// by [`DefragmentLimits`]: at most `max_objects_in_progress` partial objects of at most
/// `max_message_size` bytes each.
#[derive(Debug, Default)]
pub struct Defragmenter {
    limits: DefragmentLimits,
    partial: HashMap<u64, Partial>,
}

impl Defragmenter {
    /// An assembler with the default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// An assembler with the given limits.
    pub fn with_limits(limits: DefragmentLimits) -> Self {
        Defragmenter {
            limits,
            partial: HashMap::new(),
        }
    }

    /// How many objects are started but not finished.
    pub fn in_progress(&self) -> usize {
        self.partial.len()
    }

    /// Adds one fragment; returns the whole message's bytes when this was its last
    /// fragment.
    ///
    /// # Errors
    ///
    /// [`Error::FragmentOutOfOrder`], [`Error::FragmentMissingEnd`],
    /// [`Error::MessageTooLarge`] or [`Error::TooManyObjects`]. The object the
    /// offending fragment belongs to is dropped; others in progress are kept.
    pub fn push_fragment(&mut self, fragment: Fragment) -> Result<Option<Bytes>> {
        let Fragment {
            object_id,
            fragment_id,
            start,
            end,
            blob,
        } = fragment;
        if start {
            if self.partial.remove(&object_id).is_some() {
                return Err(Error::FragmentMissingEnd { object_id });
            }
            if fragment_id != 0 {
                return Err(Error::FragmentOutOfOrder {
                    object_id,
                    expected: Some(0),
                    got: fragment_id,
                });
            }
            if blob.len() > self.limits.max_message_size {
                return Err(Error::MessageTooLarge {
                    object_id,
                    limit: self.limits.max_message_size,
                });
            }
            if end {
                return Ok(Some(blob));
            }
            if self.partial.len() >= self.limits.max_objects_in_progress {
                return Err(Error::TooManyObjects {
                    limit: self.limits.max_objects_in_progress,
                });
            }
            let mut data = BytesMut::with_capacity(blob.len().saturating_mul(2));
            data.extend_from_slice(&blob);
            self.partial.insert(
                object_id,
                Partial {
                    next_fragment_id: 1,
                    data,
                },
            );
            return Ok(None);
        }
        let Some(partial) = self.partial.get_mut(&object_id) else {
            return Err(Error::FragmentOutOfOrder {
                object_id,
                expected: None,
                got: fragment_id,
            });
        };
        if partial.next_fragment_id != fragment_id {
            let expected = Some(partial.next_fragment_id);
            self.partial.remove(&object_id);
            return Err(Error::FragmentOutOfOrder {
                object_id,
                expected,
                got: fragment_id,
            });
        }
        if partial.data.len().saturating_add(blob.len()) > self.limits.max_message_size {
            self.partial.remove(&object_id);
            return Err(Error::MessageTooLarge {
                object_id,
                limit: self.limits.max_message_size,
            });
        }
        partial.data.extend_from_slice(&blob);
        partial.next_fragment_id = partial.next_fragment_id.wrapping_add(1);
        if end {
            let done = self.partial.remove(&object_id).map(|p| p.data.freeze());
            return Ok(done);
        }
        Ok(None)
    }

    /// Adds the fragments in `input` (the decoded base64 of one stream element) and
    /// returns the bytes of each message they complete, in order.
    ///
    /// # Errors
    ///
    /// As [`Fragment::decode`] and [`Defragmenter::push_fragment`]; the messages
    /// completed before the error are lost with it, so callers treat an error as the end
    /// of the stream.
    pub fn push(&mut self, input: &Bytes) -> Result<Vec<Bytes>> {
        let mut rest = input.clone();
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (fragment, used) = Fragment::decode(&rest)?;
            rest = rest.slice(used..);
            if let Some(message) = self.push_fragment(fragment)? {
                out.push(message);
            }
        }
        Ok(out)
    }

    /// As [`Defragmenter::push`], then decodes each completed message's header.
    ///
    /// # Errors
    ///
    /// As [`Defragmenter::push`] and [`Message::decode`].
    pub fn push_messages(&mut self, input: &Bytes) -> Result<Vec<Message>> {
        self.push(input)?.into_iter().map(Message::decode).collect()
    }

    /// As [`Defragmenter::push_messages`], appending the messages to `out` (a vector
    /// the caller keeps from one stream element to the next, so that reading a stream
    /// allocates no vector per element).
    ///
    /// # Errors
    ///
    /// As [`Defragmenter::push_messages`]; `out` is then as it was before the call
    /// (the messages completed before the error are lost with it).
    pub fn push_messages_into(&mut self, input: &Bytes, out: &mut Vec<Message>) -> Result<()> {
        let before = out.len();
        // As `push_messages`: every fragment is pushed first, so a fragment's error
        // wins over a message header's.
        let mut bad_header = None;
        let mut rest = input.clone();
        while !rest.is_empty() {
            let pushed = Fragment::decode(&rest).and_then(|(fragment, used)| {
                bytes::Buf::advance(&mut rest, used);
                self.push_fragment(fragment)
            });
            match pushed {
                Ok(Some(message)) if bad_header.is_none() => match Message::decode(message) {
                    Ok(m) => out.push(m),
                    Err(e) => bad_header = Some(e),
                },
                Ok(_) => {}
                Err(e) => {
                    out.truncate(before);
                    return Err(e);
                }
            }
        }
        if let Some(e) = bad_header {
            out.truncate(before);
            return Err(e);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(object_id: u64, fragment_id: u64, start: bool, end: bool, blob: &[u8]) -> Fragment {
        Fragment {
            object_id,
            fragment_id,
            start,
            end,
            blob: Bytes::copy_from_slice(blob),
        }
    }

    #[test]
    fn fragment_wire_form_is_big_endian_with_flags() {
        let bytes = frag(1, 2, true, true, b"ab").encode();
        assert_eq!(
            bytes,
            [
                0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 3, 0, 0, 0, 2, b'a', b'b'
            ]
        );
        let (back, used) = Fragment::decode(&Bytes::from(bytes)).unwrap();
        assert_eq!(used, 23);
        assert_eq!(back, frag(1, 2, true, true, b"ab"));
    }

    #[test]
    fn truncated_header_and_blob_are_typed_errors() {
        let bytes = Bytes::from(frag(1, 0, true, true, b"abc").encode());
        assert_eq!(
            Fragment::decode(&bytes.slice(..10)).unwrap_err(),
            Error::FragmentTruncated {
                needed: 21,
                available: 10
            }
        );
        assert_eq!(
            Fragment::decode(&bytes.slice(..22)).unwrap_err(),
            Error::FragmentTruncated {
                needed: 24,
                available: 22
            }
        );
    }

    #[test]
    fn fragmenter_splits_and_defragmenter_joins() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut fragmenter = Fragmenter::new(300);
        let fragments = fragmenter.fragment_bytes(Bytes::from(data.clone()));
        assert_eq!(fragments.len(), 4);
        assert!(fragments[0].start && !fragments[0].end);
        assert!(!fragments[3].start && fragments[3].end);
        assert!(
            fragments
                .iter()
                .all(|f| f.object_id == 1 && f.blob.len() <= 300)
        );
        assert_eq!(fragmenter.next_object_id(), 2);
        let mut wire = Vec::new();
        for f in &fragments {
            f.encode_into(&mut wire);
        }
        let mut defrag = Defragmenter::new();
        // Two stream elements: the object spans them.
        let wire = Bytes::from(wire);
        let cut = 2 * (FRAGMENT_HEADER_LEN + 300);
        assert!(defrag.push(&wire.slice(..cut)).unwrap().is_empty());
        assert_eq!(defrag.in_progress(), 1);
        let done = defrag.push(&wire.slice(cut..)).unwrap();
        assert_eq!(done, vec![Bytes::from(data)]);
        assert_eq!(defrag.in_progress(), 0);
    }

    /// `push_messages_into` gives what `push_messages` gives, in a vector kept from one
    /// stream element to the next: the same messages (whole, in several fragments and
    /// elements), the same errors, and `out` as it was after an error.
    #[test]
    fn push_messages_into_agrees_with_push_messages() {
        use super::super::message::{Destination, MessageType};
        let rpid = uuid::Uuid::from_u128(7);
        let messages: Vec<Message> = (0..6u8)
            .map(|i| {
                let data: Vec<u8> = (0..=255u8)
                    .cycle()
                    .skip(i.into())
                    .take(50 + 90 * usize::from(i))
                    .collect();
                Message::new(
                    Destination::Client,
                    MessageType::PipelineOutput,
                    rpid,
                    None,
                    data,
                )
            })
            .collect();
        let mut fragmenter = Fragmenter::new(120);
        let payloads = fragmenter.pack(&messages);
        assert!(payloads.len() > 2, "several stream elements");
        let (mut old, mut new) = (Defragmenter::new(), Defragmenter::new());
        let mut out = Vec::new();
        let mut all_old = Vec::new();
        for p in &payloads {
            let p = Bytes::copy_from_slice(p);
            all_old.extend(old.push_messages(&p).unwrap());
            new.push_messages_into(&p, &mut out).unwrap();
            assert_eq!(old.in_progress(), new.in_progress());
        }
        assert_eq!(out, all_old);
        assert_eq!(out, messages);
        // Errors: a cut fragment, a fragment out of order, a message too short for its
        // header; `out` keeps what it held before the call.
        let whole = Bytes::from(frag(40, 0, true, true, &messages[0].encode()).encode());
        let short_header = Bytes::from(frag(41, 0, true, true, b"abc").encode());
        let mut both = whole.to_vec();
        both.extend_from_slice(&short_header);
        let stray = Bytes::from(frag(42, 3, false, true, b"x").encode());
        let mut header_then_cut = short_header.to_vec();
        header_then_cut.extend_from_slice(&whole[..whole.len() - 1]);
        for input in [
            whole.slice(..whole.len() - 1),
            Bytes::from(both),
            stray,
            Bytes::from(header_then_cut),
        ] {
            let (mut old, mut new) = (Defragmenter::new(), Defragmenter::new());
            let expected = old.push_messages(&input).unwrap_err();
            let before = out.len();
            assert_eq!(
                new.push_messages_into(&input, &mut out).unwrap_err(),
                expected
            );
            assert_eq!(out.len(), before);
            assert_eq!(old.in_progress(), new.in_progress());
        }
    }

    #[test]
    fn out_of_order_and_missing_fragments_are_typed_errors() {
        let mut d = Defragmenter::new();
        assert_eq!(
            d.push_fragment(frag(5, 1, false, true, b"x")).unwrap_err(),
            Error::FragmentOutOfOrder {
                object_id: 5,
                expected: None,
                got: 1
            }
        );
        assert!(
            d.push_fragment(frag(5, 0, true, false, b"x"))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            d.push_fragment(frag(5, 2, false, true, b"x")).unwrap_err(),
            Error::FragmentOutOfOrder {
                object_id: 5,
                expected: Some(1),
                got: 2
            }
        );
        assert_eq!(d.in_progress(), 0);
        assert!(
            d.push_fragment(frag(6, 0, true, false, b"x"))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            d.push_fragment(frag(6, 0, true, true, b"y")).unwrap_err(),
            Error::FragmentMissingEnd { object_id: 6 }
        );
        assert_eq!(
            d.push_fragment(frag(7, 3, true, true, b"y")).unwrap_err(),
            Error::FragmentOutOfOrder {
                object_id: 7,
                expected: Some(0),
                got: 3
            }
        );
    }

    #[test]
    fn message_size_and_object_count_are_bounded() {
        let mut d = Defragmenter::with_limits(DefragmentLimits {
            max_message_size: 4,
            max_objects_in_progress: 2,
        });
        assert!(
            d.push_fragment(frag(1, 0, true, false, b"abc"))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            d.push_fragment(frag(1, 1, false, true, b"de")).unwrap_err(),
            Error::MessageTooLarge {
                object_id: 1,
                limit: 4
            }
        );
        assert_eq!(
            d.push_fragment(frag(2, 0, true, true, b"abcde"))
                .unwrap_err(),
            Error::MessageTooLarge {
                object_id: 2,
                limit: 4
            }
        );
        d.push_fragment(frag(3, 0, true, false, b"a")).unwrap();
        d.push_fragment(frag(4, 0, true, false, b"a")).unwrap();
        assert_eq!(
            d.push_fragment(frag(5, 0, true, false, b"a")).unwrap_err(),
            Error::TooManyObjects { limit: 2 }
        );
        // Interleaved objects still complete.
        assert_eq!(
            d.push_fragment(frag(4, 1, false, true, b"b")).unwrap(),
            Some(Bytes::from_static(b"ab"))
        );
    }

    #[test]
    fn max_blob_size_accounts_for_base64_and_header() {
        assert_eq!(max_blob_size(153_600, 1_600), Some(152_000 / 4 * 3 - 21));
        assert_eq!(max_blob_size(1_000, 2_000), None);
        assert_eq!(max_blob_size(1_000, 968), Some(3));
        // 32 base64 chars -> 24 bytes - 21 = 3 bytes; the fragment's base64 fits exactly.
        let f = frag(1, 0, true, true, b"abc").encode();
        assert_eq!(f.len(), 24);
    }

    #[test]
    fn pack_fills_payloads_and_round_trips() {
        use super::super::message::{Destination, MessageType};
        let rpid = uuid::Uuid::from_u128(0x1234);
        let messages: Vec<Message> = (0..5)
            .map(|i| {
                Message::new(
                    Destination::Server,
                    MessageType::PipelineInput,
                    rpid,
                    None,
                    vec![b'x'; 50 + i * 40],
                )
            })
            .collect();
        let mut f = Fragmenter::new(100);
        let payloads = f.pack(&messages);
        assert!(payloads.len() > 1);
        assert!(
            payloads
                .iter()
                .all(|p| p.len() <= 100 + FRAGMENT_HEADER_LEN)
        );
        let mut d = Defragmenter::new();
        let mut back = Vec::new();
        for p in payloads {
            back.extend(d.push_messages(&Bytes::from(p)).unwrap());
        }
        assert_eq!(back, messages);
        assert_eq!(f.next_object_id(), 6);
    }
}
