//! The simulator's response body: one buffer, or several sent back to back, so that
//! large WinRS output goes out from the buffers its base64 text already lives in
//! instead of being copied into one envelope string per response.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// A response body of known length made of buffers.
#[derive(Debug, Default)]
pub(crate) struct SimBody {
    parts: VecDeque<Bytes>,
    len: u64,
}

impl SimBody {
    /// A body of these buffers, in order (empty ones skipped).
    pub(crate) fn from_parts(parts: impl IntoIterator<Item = Bytes>) -> SimBody {
        let parts: VecDeque<Bytes> = parts.into_iter().filter(|p| !p.is_empty()).collect();
        let len = parts.iter().map(|p| p.len() as u64).sum();
        SimBody { parts, len }
    }
}

impl SimBody {
    /// The buffers, in order (cheap: shared).
    pub(crate) fn into_parts(self) -> Vec<Bytes> {
        self.parts.into()
    }

    /// The first buffer.
    pub(crate) fn first_part(&self) -> Option<&Bytes> {
        self.parts.front()
    }

    /// A copy of the buffers, in order (cheap: shared).
    pub(crate) fn parts(&self) -> Vec<Bytes> {
        self.parts.iter().cloned().collect()
    }
}

impl From<Bytes> for SimBody {
    fn from(b: Bytes) -> SimBody {
        SimBody::from_parts([b])
    }
}

impl From<String> for SimBody {
    fn from(s: String) -> SimBody {
        SimBody::from(Bytes::from(s))
    }
}

impl Body for SimBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let Some(part) = self.parts.pop_front() else {
            return Poll::Ready(None);
        };
        self.len -= part.len() as u64;
        Poll::Ready(Some(Ok(Frame::data(part))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

/// Builds a body from text and shared buffers: text is gathered into one buffer until
/// a shared buffer comes, which is sent as it is.
#[derive(Debug, Default)]
pub(crate) struct BodyBuilder {
    parts: Vec<Bytes>,
    text: String,
}

impl BodyBuilder {
    pub(crate) fn text(&mut self, s: &str) {
        self.text.push_str(s);
    }

    pub(crate) fn shared(&mut self, b: Bytes) {
        self.flush();
        self.parts.push(b);
    }

    fn flush(&mut self) {
        if !self.text.is_empty() {
            self.parts.push(Bytes::from(std::mem::take(&mut self.text)));
        }
    }

    pub(crate) fn finish(mut self) -> SimBody {
        self.flush();
        SimBody::from_parts(self.parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn parts_are_sent_in_order_with_an_exact_length() {
        let mut b = BodyBuilder::default();
        b.text("<a>");
        b.text("<b>");
        b.shared(Bytes::from_static(b"shared"));
        b.shared(Bytes::new());
        b.text("</b></a>");
        let body = b.finish();
        assert_eq!(body.size_hint().exact(), Some(20));
        assert_eq!(body.parts.len(), 3);
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"<a><b>shared</b></a>");
    }
}
