//! Bounds-checked cursors: the only way the codec touches bytes, so that no
//! input can make it index out of bounds.

/// Why an encoder could not write a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is smaller than the encoded message.
    BufferTooSmall {
        /// Bytes the message needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// The message would exceed the maximum message length in force
    /// (4096, or 65535 with RFC 8654 Extended Messages).
    MessageTooLong {
        /// Length the message would have.
        len: usize,
        /// The limit in force.
        max: usize,
    },
    /// A length-prefixed field does not fit its length field (e.g. a capability
    /// value over 255 bytes, a shutdown communication over 255 bytes).
    FieldTooLong,
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BufferTooSmall { needed, available } => {
                write!(f, "buffer too small: need {needed} bytes, have {available}")
            }
            Self::MessageTooLong { len, max } => {
                write!(f, "message of {len} bytes exceeds the maximum of {max}")
            }
            Self::FieldTooLong => f.write_str("field too long for its length prefix"),
        }
    }
}

impl core::error::Error for EncodeError {}

/// A read cursor over borrowed bytes. Every accessor returns `None` instead of
/// panicking when the input is short.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    #[inline]
    pub(crate) const fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }
    #[inline]
    pub(crate) fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(b)
    }
    #[inline]
    pub(crate) fn u16(&mut self) -> Option<u16> {
        let (b, rest) = self.buf.split_first_chunk::<2>()?;
        self.buf = rest;
        Some(u16::from_be_bytes(*b))
    }
    #[inline]
    pub(crate) fn u32(&mut self) -> Option<u32> {
        let (b, rest) = self.buf.split_first_chunk::<4>()?;
        self.buf = rest;
        Some(u32::from_be_bytes(*b))
    }
    #[inline]
    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (b, rest) = self.buf.split_first_chunk::<N>()?;
        self.buf = rest;
        Some(*b)
    }
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.buf.split_at_checked(n)?;
        self.buf = rest;
        Some(head)
    }
    #[inline]
    pub(crate) const fn rest(&self) -> &'a [u8] {
        self.buf
    }
    #[inline]
    pub(crate) const fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// A write cursor over a caller buffer. Writes past the end are dropped and
/// remembered, so encoders can write unconditionally and check once.
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
    overflow: bool,
}

impl<'b> Writer<'b> {
    #[inline]
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            overflow: false,
        }
    }
    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
    // Not `#[inline]` on bare-metal: an inline function is instantiated
    // again in each crate that calls it (the outbox's generic code is
    // compiled in the firmware's), and fat LTO keeps both copies.
    #[cfg_attr(not(target_os = "none"), inline)]
    pub(crate) fn put(&mut self, bytes: &[u8]) {
        let end = self.pos.saturating_add(bytes.len());
        match self.buf.get_mut(self.pos..end) {
            // `copy`, not `copy_from_slice`: the lengths are equal, and
            // `copy` shares one panic location instead of one more.
            Some(dst) => copy(dst, bytes),
            None => self.overflow = true,
        }
        self.pos = end;
    }
    #[inline]
    pub(crate) fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    #[inline]
    pub(crate) fn u16(&mut self, v: u16) {
        self.put(&v.to_be_bytes());
    }
    #[inline]
    pub(crate) fn u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }
    /// Bytes written, or `BufferTooSmall` if anything did not fit.
    #[inline]
    pub(crate) fn finish(self) -> Result<usize, EncodeError> {
        if self.overflow {
            Err(EncodeError::BufferTooSmall {
                needed: self.pos,
                available: self.buf.len(),
            })
        } else {
            Ok(self.pos)
        }
    }
}

/// The first `len` bytes of `buf`, for a message of that length, split after
/// its fixed head of `N` bytes (`len >= N`): encoders store the head whole
/// and copy the variable part, with one bounds check for the message.
#[inline]
pub(crate) fn message_out<const N: usize>(
    buf: &mut [u8],
    len: usize,
) -> Result<(&mut [u8; N], &mut [u8]), EncodeError> {
    let available = buf.len();
    buf.get_mut(..len)
        .and_then(|m| m.split_first_chunk_mut::<N>())
        .ok_or(EncodeError::BufferTooSmall {
            needed: len,
            available,
        })
}

/// Copies `src` to the front of `dst`; callers size `dst` to fit, so the
/// check folds away without a panic path. Not `#[inline]` on bare-metal
/// (one copy, not one per calling crate: see [`Writer::put`]).
#[cfg_attr(not(target_os = "none"), inline)]
pub(crate) fn copy(dst: &mut [u8], src: &[u8]) {
    if let Some(d) = dst.get_mut(..src.len()) {
        d.copy_from_slice(src);
    }
}

/// Fails early, before writing, when `needed` bytes do not fit.
#[inline]
pub(crate) fn check_room(buf: &[u8], needed: usize) -> Result<(), EncodeError> {
    if buf.len() < needed {
        Err(EncodeError::BufferTooSmall {
            needed,
            available: buf.len(),
        })
    } else {
        Ok(())
    }
}
