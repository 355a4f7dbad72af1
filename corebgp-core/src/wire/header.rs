//! The 19-byte message header (RFC 4271 §4.1) and its checks (§6.1).

use super::notification::{HeaderSubcode, Notification, NotificationCode, NotificationData};
use super::{EncodeError, Writer};

/// Length of the fixed header: marker (16), length (2), type (1).
pub const HEADER_LEN: usize = 19;
/// The all-ones marker (RFC 4271 §4.1).
pub const MARKER: [u8; 16] = [0xff; 16];
/// Largest message without RFC 8654 Extended Messages.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Largest message with RFC 8654 Extended Messages.
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;
/// A complete KEEPALIVE message (RFC 4271 §4.4).
pub const KEEPALIVE: [u8; HEADER_LEN] = {
    let mut m = [0xff; HEADER_LEN];
    m[16] = 0;
    m[17] = HEADER_LEN as u8;
    m[18] = MessageType::Keepalive as u8;
    m
};

/// The BGP message types this implementation understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum MessageType {
    /// OPEN (RFC 4271 §4.2).
    Open = 1,
    /// UPDATE (RFC 4271 §4.3).
    Update = 2,
    /// NOTIFICATION (RFC 4271 §4.5).
    Notification = 3,
    /// KEEPALIVE (RFC 4271 §4.4).
    Keepalive = 4,
    /// ROUTE-REFRESH (RFC 2918).
    RouteRefresh = 5,
}

impl MessageType {
    /// The type for a type byte, if it is one of ours.
    pub const fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::Open,
            2 => Self::Update,
            3 => Self::Notification,
            4 => Self::Keepalive,
            5 => Self::RouteRefresh,
            _ => return None,
        })
    }

    /// Smallest legal length of a message of this type, header included
    /// (RFC 4271 §4.2-§4.5, RFC 2918 §3).
    pub const fn min_len(self) -> usize {
        match self {
            Self::Open => 29,
            Self::Update => 23,
            Self::Notification => 21,
            Self::Keepalive => 19,
            Self::RouteRefresh => 23,
        }
    }

    /// Largest legal length of a message of this type given the session's
    /// limit. OPEN and KEEPALIVE stay within 4096 even with Extended Messages
    /// (RFC 8654 §4); a KEEPALIVE is exactly 19 bytes (RFC 4271 §4.4).
    pub const fn max_len(self, session_max: usize) -> usize {
        match self {
            Self::Keepalive => HEADER_LEN,
            Self::Open => {
                if session_max < MAX_MESSAGE_LEN {
                    session_max
                } else {
                    MAX_MESSAGE_LEN
                }
            }
            _ => session_max,
        }
    }
}

/// A validated header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Header {
    /// Total message length, header included.
    pub length: u16,
    /// Message type.
    pub msg_type: MessageType,
}

/// A header that fails RFC 4271 §6.1; the session answers with
/// [`HeaderError::notification`] and closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HeaderError {
    /// The marker is not all ones: 1/1, no data.
    ConnectionNotSynchronized,
    /// The length is out of range (overall or for the type): 1/2, data =
    /// the two-byte length field.
    BadMessageLength(u16),
    /// The type is unknown: 1/3, data = the type byte.
    BadMessageType(u8),
}

impl HeaderError {
    /// The NOTIFICATION RFC 4271 §6.1 requires for this error.
    pub fn notification(&self) -> Notification<'static> {
        match *self {
            Self::ConnectionNotSynchronized => Notification::new(NotificationCode::MessageHeader(
                HeaderSubcode::ConnectionNotSynchronized,
            )),
            Self::BadMessageLength(len) => Notification {
                code: NotificationCode::MessageHeader(HeaderSubcode::BadMessageLength),
                data: NotificationData::u16(len),
            },
            Self::BadMessageType(t) => Notification {
                code: NotificationCode::MessageHeader(HeaderSubcode::BadMessageType),
                data: NotificationData::byte(t),
            },
        }
    }
}

impl core::fmt::Display for HeaderError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::ConnectionNotSynchronized => {
                f.write_str("connection not synchronized (bad marker)")
            }
            Self::BadMessageLength(l) => write!(f, "bad message length {l}"),
            Self::BadMessageType(t) => write!(f, "bad message type {t}"),
        }
    }
}

impl core::error::Error for HeaderError {}

impl Header {
    /// Checks a header in RFC 4271 §6.1 order: marker, overall length, type,
    /// then the length bounds of that type. `max_len` is 4096, or up to 65535
    /// once RFC 8654 Extended Messages were negotiated.
    // Inlined on hosts: it runs once per received message.
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn parse(bytes: &[u8; HEADER_LEN], max_len: usize) -> Result<Self, HeaderError> {
        let (marker, rest) = bytes
            .split_first_chunk::<16>()
            .ok_or(HeaderError::ConnectionNotSynchronized)?;
        // All ones (`MARKER`) as one 128-bit compare: `*marker != MARKER`
        // calls memcmp, which may be the only use of it in a firmware image,
        // and a byte loop is 40% slower in `Message::parse` on x86-64.
        if u128::from_ne_bytes(*marker) != u128::MAX {
            return Err(HeaderError::ConnectionNotSynchronized);
        }
        let [hi, lo, ty] = *rest else {
            return Err(HeaderError::ConnectionNotSynchronized);
        };
        let length = u16::from_be_bytes([hi, lo]);
        let len = usize::from(length);
        if !(HEADER_LEN..=max_len).contains(&len) {
            return Err(HeaderError::BadMessageLength(length));
        }
        let msg_type = MessageType::from_u8(ty).ok_or(HeaderError::BadMessageType(ty))?;
        if len < msg_type.min_len() || len > msg_type.max_len(max_len) {
            return Err(HeaderError::BadMessageLength(length));
        }
        Ok(Self { length, msg_type })
    }
}

/// The first `N` bytes of a message of `len` bytes: the header, then zeros
/// for the caller's fixed fields. Built whole and stored at once, which is
/// smaller than field-by-field bounds-checked writes.
#[inline]
pub(crate) fn head<const N: usize>(len: u16, ty: MessageType) -> [u8; N] {
    const { assert!(N >= HEADER_LEN) };
    let mut h = [0; N];
    let [hi, lo] = len.to_be_bytes();
    if let Some((marker, [l0, l1, t, ..])) = h.split_first_chunk_mut::<16>() {
        *marker = MARKER;
        (*l0, *l1, *t) = (hi, lo, ty as u8);
    }
    h
}

pub(crate) fn write_header(w: &mut Writer<'_>, len: u16, ty: MessageType) {
    w.put(&head::<HEADER_LEN>(len, ty));
}

/// Writes a header for a message of `len` bytes (header included).
pub fn encode_header(buf: &mut [u8], len: u16, ty: MessageType) -> Result<usize, EncodeError> {
    put_head(buf, &head::<HEADER_LEN>(len, ty))
}

/// Writes a KEEPALIVE (19 bytes).
pub fn encode_keepalive(buf: &mut [u8]) -> Result<usize, EncodeError> {
    put_head(buf, &KEEPALIVE)
}

/// Stores `bytes` at the front of `buf`, or reports that they do not fit.
fn put_head(buf: &mut [u8], bytes: &[u8; HEADER_LEN]) -> Result<usize, EncodeError> {
    let available = buf.len();
    match buf.first_chunk_mut::<HEADER_LEN>() {
        Some(dst) => {
            *dst = *bytes;
            Ok(HEADER_LEN)
        }
        None => Err(EncodeError::BufferTooSmall {
            needed: HEADER_LEN,
            available,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(len: u16, ty: u8) -> [u8; HEADER_LEN] {
        let mut h = [0xff; HEADER_LEN];
        h[16..18].copy_from_slice(&len.to_be_bytes());
        h[18] = ty;
        h
    }

    #[test]
    fn keepalive_constant_is_a_valid_keepalive() {
        assert_eq!(
            Header::parse(&KEEPALIVE, MAX_MESSAGE_LEN),
            Ok(Header {
                length: 19,
                msg_type: MessageType::Keepalive
            })
        );
        let mut buf = [0u8; 19];
        assert_eq!(encode_keepalive(&mut buf), Ok(19));
        assert_eq!(buf, KEEPALIVE);
    }

    #[test]
    fn per_type_bounds() {
        let ok = |len, ty| Header::parse(&hdr(len, ty), MAX_MESSAGE_LEN);
        assert!(ok(29, 1).is_ok());
        assert_eq!(ok(28, 1), Err(HeaderError::BadMessageLength(28)));
        assert_eq!(ok(22, 2), Err(HeaderError::BadMessageLength(22)));
        assert_eq!(ok(20, 3), Err(HeaderError::BadMessageLength(20)));
        assert_eq!(ok(20, 4), Err(HeaderError::BadMessageLength(20)));
        assert_eq!(ok(22, 5), Err(HeaderError::BadMessageLength(22)));
        assert_eq!(ok(4097, 2), Err(HeaderError::BadMessageLength(4097)));
        // Extended Messages lift the limit for UPDATE, never for OPEN.
        assert!(Header::parse(&hdr(65535, 2), MAX_EXTENDED_MESSAGE_LEN).is_ok());
        assert_eq!(
            Header::parse(&hdr(4097, 1), MAX_EXTENDED_MESSAGE_LEN),
            Err(HeaderError::BadMessageLength(4097))
        );
    }
}
