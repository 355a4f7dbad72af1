//! The stream framer: TCP bytes in, whole BGP messages out.

use super::header::{HEADER_LEN, Header, HeaderError, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN};
use super::message::{Message, MessageError};

/// Turns a TCP byte stream into whole messages.
///
/// The framer owns no memory of its own: it works in the caller's buffer `B`
/// (an array, a `&mut [u8]`, a `Box<[u8]>`), so its footprint is exactly that
/// buffer. Size it to the largest message you accept: 4096 bytes, or 65535
/// with RFC 8654 Extended Messages. A larger buffer lets one read gather
/// several messages.
///
/// Feed it either by reading into [`Framer::read_buf`] then calling
/// [`Framer::commit`], or by copying with [`Framer::feed`]; take messages
/// with [`Framer::next_message`]. Bytes may arrive in any chunks, one at a
/// time included. After a header error the framer stays failed: the session
/// sends the NOTIFICATION and closes.
#[derive(Debug, Clone)]
pub struct Framer<B> {
    buf: B,
    start: usize,
    end: usize,
    max_len: usize,
    failed: Option<HeaderError>,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Framer<B> {
    /// A framer over `buf`, accepting messages of up to 4096 bytes (or the
    /// buffer's length if smaller).
    pub fn new(buf: B) -> Self {
        let max_len = buf.as_ref().len().min(MAX_MESSAGE_LEN);
        Self {
            buf,
            start: 0,
            end: 0,
            max_len,
            failed: None,
        }
    }

    /// Sets the largest acceptable message (4096, or up to 65535 once RFC 8654
    /// Extended Messages were negotiated), capped at the buffer's length.
    pub fn set_max_message_len(&mut self, len: usize) {
        self.max_len = len
            .min(MAX_EXTENDED_MESSAGE_LEN)
            .min(self.buf.as_ref().len());
    }

    /// The largest message currently accepted.
    pub fn max_message_len(&self) -> usize {
        self.max_len
    }

    /// Bytes received but not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> B {
        self.buf
    }

    /// Forgets buffered bytes and any error (for a new connection).
    pub fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
        self.failed = None;
    }

    /// Space to read into. Moves any partial message to the front first, so
    /// the returned slice is never empty while a message is incomplete.
    pub fn read_buf(&mut self) -> &mut [u8] {
        if self.start > 0 {
            let (start, end) = (self.start, self.end);
            self.buf.as_mut().copy_within(start..end, 0);
            self.end -= start;
            self.start = 0;
        }
        let end = self.end;
        self.buf.as_mut().get_mut(end..).unwrap_or(&mut [])
    }

    /// Records that `n` bytes were written at the front of [`Framer::read_buf`].
    pub fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.as_ref().len());
    }

    /// Copies as much of `bytes` as fits; returns how many were taken.
    pub fn feed(&mut self, bytes: &[u8]) -> usize {
        let dst = self.read_buf();
        let n = dst.len().min(bytes.len());
        if let (Some(d), Some(s)) = (dst.get_mut(..n), bytes.get(..n)) {
            d.copy_from_slice(s);
        }
        self.commit(n);
        n
    }

    /// The next whole message (header included), a header error, or `None`
    /// when more bytes are needed. The message stays valid until the next
    /// call that takes `&mut self`.
    // Out of line: the driver calls this from its async poll, where inlined
    // code cost more flash (spills across awaits) than the call.
    #[inline(never)]
    pub fn next_message(&mut self) -> Option<Result<&[u8], HeaderError>> {
        Some(self.next_frame()?.map(|(_, m)| m))
    }

    /// The next whole message decoded ([`Message::parse`] with
    /// [`Framer::max_message_len`]), a header or body error, or `None` when
    /// more bytes are needed. The header is checked once, here, rather than
    /// again by [`Message::parse`].
    // Out of line on bare metal: see `next_message`. Inlined on hosts, where
    // flash is no concern: the message is then not copied out of the call
    // (one of the per-message moves `perf` finds on a streamed table).
    #[cfg_attr(target_os = "none", inline(never))]
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub fn next_decoded(&mut self) -> Option<Result<Message<'_>, MessageError<'_>>> {
        Some(match self.next_frame()? {
            Ok((h, msg)) => {
                Message::parse_body(h.msg_type, msg.get(HEADER_LEN..).unwrap_or(&[]), msg)
            }
            Err(e) => Err(MessageError::Header(e)),
        })
    }

    /// The next whole message with its checked header (the driver's own
    /// dispatch on hosts; see [`Framer::next_decoded`]).
    #[inline(always)]
    pub(crate) fn next_frame(&mut self) -> Option<Result<(Header, &[u8]), HeaderError>> {
        if let Some(e) = self.failed {
            return Some(Err(e));
        }
        let avail = self.buf.as_ref().get(self.start..self.end)?;
        let header: &[u8; HEADER_LEN] = avail.first_chunk()?;
        let header = match Header::parse(header, self.max_len) {
            Ok(h) => h,
            Err(e) => {
                self.failed = Some(e);
                return Some(Err(e));
            }
        };
        let len = usize::from(header.length);
        if avail.len() < len {
            return None;
        }
        let start = self.start;
        self.start += len;
        if self.start == self.end {
            // Rewind for free when the buffer drains, avoiding a later copy.
            self.start = 0;
            self.end = 0;
        }
        let msg = self.buf.as_ref().get(start..start + len)?;
        Some(Ok((header, msg)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::KEEPALIVE;

    #[test]
    fn one_byte_at_a_time() {
        let mut f = Framer::new([0u8; 4096]);
        for _ in 0..3 {
            for (i, b) in KEEPALIVE.iter().enumerate() {
                assert_eq!(f.feed(&[*b]), 1);
                let m = f.next_message();
                if i + 1 < KEEPALIVE.len() {
                    assert!(m.is_none());
                } else {
                    assert_eq!(m, Some(Ok(&KEEPALIVE[..])));
                }
            }
        }
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn header_error_is_sticky() {
        let mut f = Framer::new([0u8; 64]);
        let mut bad = KEEPALIVE;
        bad[3] = 0;
        f.feed(&bad);
        assert_eq!(
            f.next_message(),
            Some(Err(HeaderError::ConnectionNotSynchronized))
        );
        f.feed(&KEEPALIVE);
        assert_eq!(
            f.next_message(),
            Some(Err(HeaderError::ConnectionNotSynchronized))
        );
        f.reset();
        f.feed(&KEEPALIVE);
        assert_eq!(f.next_message(), Some(Ok(&KEEPALIVE[..])));
    }

    #[test]
    fn small_buffer_caps_the_message_length() {
        let mut f = Framer::new([0u8; 100]);
        assert_eq!(f.max_message_len(), 100);
        f.set_max_message_len(65535);
        assert_eq!(f.max_message_len(), 100);
        let mut h = KEEPALIVE;
        h[17] = 101;
        h[18] = 2;
        f.feed(&h);
        assert_eq!(
            f.next_message(),
            Some(Err(HeaderError::BadMessageLength(101)))
        );
    }
}
