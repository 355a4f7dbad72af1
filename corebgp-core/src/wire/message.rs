//! A whole message, of any type.

use super::EncodeError;
use super::header::{HEADER_LEN, Header, HeaderError, MessageType, encode_keepalive};
use super::notification::Notification;
use super::open::{Open, OpenError};
use super::route_refresh::{RouteRefresh, RouteRefreshError};
use super::update::{UpdateSections, UpdateSectionsError, encode_update_sections};

/// A decoded message, borrowing the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Message<'a> {
    /// OPEN.
    Open(Open<'a>),
    /// UPDATE, split into sections.
    Update(UpdateSections<'a>),
    /// NOTIFICATION.
    Notification(Notification<'a>),
    /// KEEPALIVE.
    Keepalive,
    /// ROUTE-REFRESH.
    RouteRefresh(RouteRefresh<'a>),
}

/// Why a message could not be decoded; each maps to its NOTIFICATION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MessageError<'a> {
    /// Header check failed (RFC 4271 §6.1), or the input is not exactly one
    /// message long.
    Header(HeaderError),
    /// OPEN check failed (RFC 4271 §6.2).
    Open(OpenError<'a>),
    /// UPDATE sections do not add up (RFC 4271 §6.3).
    Update(UpdateSectionsError),
    /// ROUTE-REFRESH check failed (RFC 7313 §5).
    RouteRefresh(RouteRefreshError<'a>),
}

impl<'a> MessageError<'a> {
    /// The NOTIFICATION to send for this error.
    pub fn notification(&self) -> Notification<'a> {
        match self {
            Self::Header(e) => e.notification(),
            Self::Open(e) => e.notification(),
            Self::Update(e) => e.notification(),
            Self::RouteRefresh(e) => e.notification(),
        }
    }
}

impl core::fmt::Display for MessageError<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Header(e) => write!(f, "{e}"),
            Self::Open(e) => write!(f, "{e}"),
            Self::Update(_) => f.write_str("malformed UPDATE sections"),
            Self::RouteRefresh(_) => f.write_str("bad ROUTE-REFRESH length"),
        }
    }
}

impl core::error::Error for MessageError<'_> {}

impl<'a> Message<'a> {
    /// Decodes one whole message (as the [`super::Framer`] yields), checking
    /// its header against `max_len`.
    // Out of line: the driver calls this from its async poll, where inlined
    // code cost more flash (spills across awaits) than the call.
    #[inline(never)]
    pub fn parse(msg: &'a [u8], max_len: usize) -> Result<Self, MessageError<'a>> {
        let header: &[u8; HEADER_LEN] = msg
            .first_chunk()
            .ok_or(MessageError::Header(HeaderError::ConnectionNotSynchronized))?;
        let h = Header::parse(header, max_len).map_err(MessageError::Header)?;
        if usize::from(h.length) != msg.len() {
            return Err(MessageError::Header(HeaderError::BadMessageLength(
                h.length,
            )));
        }
        let body = msg.get(HEADER_LEN..).unwrap_or(&[]);
        Self::parse_body(h.msg_type, body, msg)
    }

    /// Decodes a body whose header was already checked. `whole` is the whole
    /// message, used as NOTIFICATION data where an RFC asks for it.
    // Inlined on hosts (once per received message): the decoded message is
    // then built where the caller keeps it, not copied out of a call.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub fn parse_body(
        ty: MessageType,
        body: &'a [u8],
        whole: &'a [u8],
    ) -> Result<Self, MessageError<'a>> {
        Ok(match ty {
            MessageType::Open => Self::Open(Open::parse(body).map_err(MessageError::Open)?),
            MessageType::Update => {
                Self::Update(UpdateSections::parse(body).map_err(MessageError::Update)?)
            }
            MessageType::Notification => Self::Notification(Notification::parse(body).ok_or(
                MessageError::Header(HeaderError::BadMessageLength(whole.len() as u16)),
            )?),
            MessageType::Keepalive => Self::Keepalive,
            MessageType::RouteRefresh => {
                Self::RouteRefresh(RouteRefresh::parse(whole).map_err(MessageError::RouteRefresh)?)
            }
        })
    }

    /// The message type.
    pub fn msg_type(&self) -> MessageType {
        match self {
            Self::Open(_) => MessageType::Open,
            Self::Update(_) => MessageType::Update,
            Self::Notification(_) => MessageType::Notification,
            Self::Keepalive => MessageType::Keepalive,
            Self::RouteRefresh(_) => MessageType::RouteRefresh,
        }
    }

    /// Re-encodes the message (an OPEN's parameters are copied verbatim).
    pub fn encode(&self, buf: &mut [u8], max_len: usize) -> Result<usize, EncodeError> {
        match self {
            Self::Open(o) => o.encode(buf),
            Self::Update(u) => encode_update_sections(u, buf, max_len),
            Self::Notification(n) => n.encode_with_max(buf, max_len),
            Self::Keepalive => encode_keepalive(buf),
            Self::RouteRefresh(r) => r.encode(buf),
        }
    }
}
