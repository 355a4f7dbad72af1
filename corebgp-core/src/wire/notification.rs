//! NOTIFICATION messages (RFC 4271 §4.5, §6) with every error code and
//! subcode registered at IANA, and shutdown communications (RFC 9003).

use super::buf::{copy, message_out};
use super::header::{HEADER_LEN, MAX_MESSAGE_LEN, MessageType, head};
use super::types::open_enum;
use super::{EncodeError, Reader};

open_enum! {
    /// Message Header Error subcodes (RFC 4271 §4.5).
    pub enum HeaderSubcode: u8 {
        /// Unspecific.
        Unspecific = 0,
        /// The marker is not all ones.
        ConnectionNotSynchronized = 1,
        /// The length field is out of range for the message; data: the length field.
        BadMessageLength = 2,
        /// The type is not recognised; data: the type byte.
        BadMessageType = 3,
    }
}

open_enum! {
    /// OPEN Message Error subcodes (RFC 4271 §4.5, RFC 5492, RFC 9234).
    pub enum OpenSubcode: u8 {
        /// Unspecific.
        Unspecific = 0,
        /// Data: the largest supported version, two bytes.
        UnsupportedVersionNumber = 1,
        /// The peer's AS is not the configured one.
        BadPeerAs = 2,
        /// The BGP Identifier is not acceptable (RFC 6286).
        BadBgpIdentifier = 3,
        /// An optional parameter is not recognised.
        UnsupportedOptionalParameter = 4,
        /// Deprecated (RFC 4271 Appendix A).
        AuthenticationFailure = 5,
        /// Hold time 1 or 2, or not acceptable to the local policy.
        UnacceptableHoldTime = 6,
        /// A required capability is missing (RFC 5492); data: the capabilities.
        UnsupportedCapability = 7,
        /// The BGP Role capabilities do not match (RFC 9234).
        RoleMismatch = 11,
    }
}

open_enum! {
    /// UPDATE Message Error subcodes (RFC 4271 §4.5).
    pub enum UpdateSubcode: u8 {
        /// Unspecific.
        Unspecific = 0,
        /// Section lengths do not add up, or an attribute appears twice.
        MalformedAttributeList = 1,
        /// A well-known attribute is not recognised.
        UnrecognizedWellKnownAttribute = 2,
        /// A mandatory well-known attribute is missing; data: its type code.
        MissingWellKnownAttribute = 3,
        /// Attribute flags conflict with the type.
        AttributeFlagsError = 4,
        /// Attribute length is wrong for the type.
        AttributeLengthError = 5,
        /// ORIGIN has an undefined value.
        InvalidOriginAttribute = 6,
        /// Deprecated (RFC 4271 Appendix A).
        AsRoutingLoop = 7,
        /// NEXT_HOP is syntactically incorrect.
        InvalidNextHopAttribute = 8,
        /// An optional attribute is malformed.
        OptionalAttributeError = 9,
        /// NLRI field is malformed.
        InvalidNetworkField = 10,
        /// AS_PATH is malformed.
        MalformedAsPath = 11,
    }
}

open_enum! {
    /// Finite State Machine Error subcodes (RFC 6608).
    pub enum FsmSubcode: u8 {
        /// Unspecified error.
        Unspecified = 0,
        /// Unexpected message in OpenSent; data: the message type.
        UnexpectedMessageInOpenSent = 1,
        /// Unexpected message in OpenConfirm; data: the message type.
        UnexpectedMessageInOpenConfirm = 2,
        /// Unexpected message in Established; data: the message type.
        UnexpectedMessageInEstablished = 3,
    }
}

open_enum! {
    /// Cease subcodes (RFC 4486, RFC 8538, RFC 9384).
    pub enum CeaseSubcode: u8 {
        /// No subcode (reserved at IANA, widely sent).
        Unspecific = 0,
        /// Maximum number of prefixes reached.
        MaxPrefixesReached = 1,
        /// Administrative shutdown; data may carry a shutdown communication.
        AdministrativeShutdown = 2,
        /// Peer de-configured.
        PeerDeconfigured = 3,
        /// Administrative reset; data may carry a shutdown communication.
        AdministrativeReset = 4,
        /// Connection rejected.
        ConnectionRejected = 5,
        /// Other configuration change.
        OtherConfigurationChange = 6,
        /// Connection collision resolution (RFC 4271 §6.8).
        ConnectionCollisionResolution = 7,
        /// Out of resources.
        OutOfResources = 8,
        /// Hard reset (RFC 8538).
        HardReset = 9,
        /// BFD down (RFC 9384).
        BfdDown = 10,
    }
}

open_enum! {
    /// ROUTE-REFRESH Message Error subcodes (RFC 7313).
    pub enum RouteRefreshSubcode: u8 {
        /// Reserved.
        Reserved = 0,
        /// A BoRR/EoRR ROUTE-REFRESH whose length is not 4; data: the message.
        InvalidMessageLength = 1,
    }
}

/// A NOTIFICATION error code with its subcode (IANA "BGP Error (Notification)
/// Codes" and the subcode registries). Unknown values are kept as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
// Discriminants are the error codes, so that `code()` is a tag load (and
// `Unknown`, next after the last, keeps the defmt index a fixed offset).
#[repr(u8)]
pub enum NotificationCode {
    /// 1: Message Header Error.
    MessageHeader(HeaderSubcode) = 1,
    /// 2: OPEN Message Error.
    Open(OpenSubcode) = 2,
    /// 3: UPDATE Message Error.
    Update(UpdateSubcode) = 3,
    /// 4: Hold Timer Expired (no subcodes are defined; the raw one is kept).
    HoldTimerExpired(u8) = 4,
    /// 5: Finite State Machine Error (RFC 6608).
    Fsm(FsmSubcode) = 5,
    /// 6: Cease (RFC 4486).
    Cease(CeaseSubcode) = 6,
    /// 7: ROUTE-REFRESH Message Error (RFC 7313).
    RouteRefresh(RouteRefreshSubcode) = 7,
    /// 8: Send Hold Timer Expired (RFC 9687).
    SendHoldTimerExpired(u8) = 8,
    /// Any other code.
    Unknown {
        /// Error code.
        code: u8,
        /// Error subcode.
        subcode: u8,
    },
}

impl NotificationCode {
    /// Hold Timer Expired with subcode 0.
    pub const HOLD_TIMER_EXPIRED: Self = Self::HoldTimerExpired(0);
    /// Send Hold Timer Expired with subcode 0 (RFC 9687).
    pub const SEND_HOLD_TIMER_EXPIRED: Self = Self::SendHoldTimerExpired(0);

    /// Decodes a code and subcode pair.
    pub const fn from_raw(code: u8, subcode: u8) -> Self {
        match code {
            1 => Self::MessageHeader(HeaderSubcode::from_raw(subcode)),
            2 => Self::Open(OpenSubcode::from_raw(subcode)),
            3 => Self::Update(UpdateSubcode::from_raw(subcode)),
            4 => Self::HoldTimerExpired(subcode),
            5 => Self::Fsm(FsmSubcode::from_raw(subcode)),
            6 => Self::Cease(CeaseSubcode::from_raw(subcode)),
            7 => Self::RouteRefresh(RouteRefreshSubcode::from_raw(subcode)),
            8 => Self::SendHoldTimerExpired(subcode),
            _ => Self::Unknown { code, subcode },
        }
    }

    /// The error code byte.
    pub const fn code(self) -> u8 {
        match self {
            Self::MessageHeader(_) => 1,
            Self::Open(_) => 2,
            Self::Update(_) => 3,
            Self::HoldTimerExpired(_) => 4,
            Self::Fsm(_) => 5,
            Self::Cease(_) => 6,
            Self::RouteRefresh(_) => 7,
            Self::SendHoldTimerExpired(_) => 8,
            Self::Unknown { code, .. } => code,
        }
    }

    /// The error subcode byte.
    pub const fn subcode(self) -> u8 {
        match self {
            Self::MessageHeader(s) => s.to_raw(),
            Self::Open(s) => s.to_raw(),
            Self::Update(s) => s.to_raw(),
            Self::HoldTimerExpired(s) | Self::SendHoldTimerExpired(s) => s,
            Self::Fsm(s) => s.to_raw(),
            Self::Cease(s) => s.to_raw(),
            Self::RouteRefresh(s) => s.to_raw(),
            Self::Unknown { subcode, .. } => subcode,
        }
    }

    /// Whether this is a Cease (code 6).
    pub const fn is_cease(self) -> bool {
        matches!(self, Self::Cease(_))
    }

    /// The IANA name of the error code.
    pub const fn code_name(self) -> &'static str {
        match self {
            Self::MessageHeader(_) => "Message Header Error",
            Self::Open(_) => "OPEN Message Error",
            Self::Update(_) => "UPDATE Message Error",
            Self::HoldTimerExpired(_) => "Hold Timer Expired",
            Self::Fsm(_) => "Finite State Machine Error",
            Self::Cease(_) => "Cease",
            Self::RouteRefresh(_) => "ROUTE-REFRESH Message Error",
            Self::SendHoldTimerExpired(_) => "Send Hold Timer Expired",
            Self::Unknown { .. } => "Unknown",
        }
    }
}

impl core::fmt::Display for NotificationCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} ({}/{})",
            self.code_name(),
            self.code(),
            self.subcode()
        )
    }
}

/// Data bytes produced by the codec itself (a length field, a type byte, a
/// version), stored inline so that errors need no buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InlineData {
    len: u8,
    buf: [u8; InlineData::CAPACITY],
}

impl InlineData {
    /// How many bytes fit inline.
    pub const CAPACITY: usize = 8;

    /// Copies up to [`Self::CAPACITY`] bytes (extra bytes are dropped).
    pub fn new(bytes: &[u8]) -> Self {
        let mut buf = [0; Self::CAPACITY];
        // A byte loop: `copy_from_slice` brings a length check and a call.
        for (d, s) in buf.iter_mut().zip(bytes) {
            *d = *s;
        }
        Self {
            len: bytes.len().min(Self::CAPACITY) as u8,
            buf,
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

/// The Data field of a NOTIFICATION: borrowed from a message or held inline.
#[derive(Debug, Clone, Copy, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NotificationData<'a> {
    /// Borrowed bytes (a received message, or an offending attribute).
    Borrowed(&'a [u8]),
    /// A few bytes made by the codec.
    Inline(InlineData),
}

impl<'a> NotificationData<'a> {
    /// No data.
    pub const EMPTY: Self = Self::Borrowed(&[]);

    /// One byte (a message type, an attribute type code).
    pub fn byte(b: u8) -> Self {
        // Built in place rather than copied through `InlineData::new`.
        Self::Inline(InlineData {
            len: 1,
            buf: [b, 0, 0, 0, 0, 0, 0, 0],
        })
    }

    /// Two big-endian bytes (a length field, a version).
    pub fn u16(v: u16) -> Self {
        let [hi, lo] = v.to_be_bytes();
        Self::Inline(InlineData {
            len: 2,
            buf: [hi, lo, 0, 0, 0, 0, 0, 0],
        })
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Borrowed(b) => b,
            Self::Inline(i) => i.as_bytes(),
        }
    }
}

impl PartialEq for NotificationData<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

// By the bytes, as `PartialEq` compares: equal data hash alike however held.
impl core::hash::Hash for NotificationData<'_> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl core::ops::Deref for NotificationData<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Default for NotificationData<'_> {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// Longest shutdown communication (RFC 9003 §2).
pub const MAX_SHUTDOWN_COMMUNICATION_LEN: usize = 255;

/// Why a Cease's shutdown communication could not be read (RFC 9003 §3: log
/// it, do not reset anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ShutdownCommunicationError {
    /// The length byte claims more bytes than the data holds.
    Truncated,
    /// The message is not valid UTF-8.
    InvalidUtf8,
}

/// A NOTIFICATION: an error code, subcode and data. The same type describes a
/// received NOTIFICATION and one to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Notification<'a> {
    /// Code and subcode.
    pub code: NotificationCode,
    /// Data field (may be empty).
    pub data: NotificationData<'a>,
}

impl<'a> Notification<'a> {
    /// A NOTIFICATION without data.
    pub const fn new(code: NotificationCode) -> Self {
        Self {
            code,
            data: NotificationData::EMPTY,
        }
    }

    /// A NOTIFICATION with borrowed data.
    pub const fn with_data(code: NotificationCode, data: &'a [u8]) -> Self {
        Self {
            code,
            data: NotificationData::Borrowed(data),
        }
    }

    /// A Cease with the given subcode and no data.
    pub const fn cease(subcode: CeaseSubcode) -> Self {
        Self::new(NotificationCode::Cease(subcode))
    }

    /// An FSM Error (RFC 6608): the subcode names the state, the one data
    /// byte is the type of the unexpected message.
    pub fn fsm_error(subcode: FsmSubcode, unexpected: super::MessageType) -> Self {
        Self {
            code: NotificationCode::Fsm(subcode),
            data: NotificationData::byte(unexpected as u8),
        }
    }

    /// Reads a NOTIFICATION body (the bytes after the 19-byte header).
    /// `None` when the body is shorter than its two fixed bytes (the framer
    /// reports that as 1/2 Bad Message Length before it gets here).
    pub fn parse(body: &'a [u8]) -> Option<Self> {
        let mut r = Reader::new(body);
        let code = r.u8()?;
        let subcode = r.u8()?;
        Some(Self {
            code: NotificationCode::from_raw(code, subcode),
            data: NotificationData::Borrowed(r.rest()),
        })
    }

    /// Re-borrows with the lifetime of `self` (useful to store inline data).
    pub fn as_ref(&self) -> Notification<'_> {
        *self
    }

    /// The shutdown communication of a Cease 2 or 4 (RFC 9003), if the data
    /// carries one. `None` for any other NOTIFICATION and for empty data.
    pub fn shutdown_communication(&self) -> Option<Result<&str, ShutdownCommunicationError>> {
        match self.code {
            NotificationCode::Cease(
                CeaseSubcode::AdministrativeShutdown | CeaseSubcode::AdministrativeReset,
            ) => {}
            _ => return None,
        }
        let mut r = Reader::new(self.data.as_bytes());
        let len = r.u8()?;
        Some(
            r.take(usize::from(len))
                .ok_or(ShutdownCommunicationError::Truncated)
                .and_then(|b| {
                    core::str::from_utf8(b).map_err(|_| ShutdownCommunicationError::InvalidUtf8)
                }),
        )
    }

    /// Length of the whole encoded message (header included) before any
    /// truncation.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + 2 + self.data.len()
    }

    /// Writes the whole message (header included) into `buf`, truncating the
    /// data so the message is at most 4096 bytes.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        self.encode_with_max(buf, MAX_MESSAGE_LEN)
    }

    /// Writes the whole message, truncating the data so the message is at
    /// most `max_len` bytes (RFC 8654 §4: data is cut to fit the peer's limit).
    pub fn encode_with_max(&self, buf: &mut [u8], max_len: usize) -> Result<usize, EncodeError> {
        let room = max_len.saturating_sub(HEADER_LEN + 2);
        let data = self.data.as_bytes();
        let data = data.get(..room.min(data.len())).unwrap_or(&[]);
        let len = HEADER_LEN + 2 + data.len();
        let (fixed, rest) = message_out::<{ HEADER_LEN + 2 }>(buf, len)?;
        let mut h = head(len as u16, MessageType::Notification);
        (h[19], h[20]) = (self.code.code(), self.code.subcode());
        *fixed = h;
        copy(rest, data);
        Ok(len)
    }

    /// Writes a Cease (subcode 2 or 4 in practice) whose data is the RFC 9003
    /// shutdown communication `message` (at most 255 bytes of UTF-8).
    pub fn encode_shutdown(
        subcode: CeaseSubcode,
        message: &str,
        buf: &mut [u8],
    ) -> Result<usize, EncodeError> {
        if message.len() > MAX_SHUTDOWN_COMMUNICATION_LEN {
            return Err(EncodeError::FieldTooLong);
        }
        let len = HEADER_LEN + 3 + message.len();
        let (fixed, rest) = message_out::<{ HEADER_LEN + 3 }>(buf, len)?;
        let mut h = head(len as u16, MessageType::Notification);
        (h[19], h[20], h[21]) = (6, subcode.to_raw(), message.len() as u8);
        *fixed = h;
        copy(rest, message.as_bytes());
        Ok(len)
    }
}

impl core::fmt::Display for Notification<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(Ok(msg)) = self.shutdown_communication() {
            write!(f, " \"{msg}\"")?;
        } else if !self.data.is_empty() {
            f.write_str(" data")?;
            for b in self.data.iter() {
                write!(f, " {b:02x}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_data_hashes_alike_borrowed_or_inline() {
        use core::hash::BuildHasher;
        // One RandomState for all, so the hashes are comparable.
        let rs = std::hash::RandomState::new();
        let hash = |d: &NotificationData<'_>| rs.hash_one(d);
        let (b, i) = (NotificationData::Borrowed(&[1]), NotificationData::byte(1));
        assert_eq!(b, i);
        assert_eq!(hash(&b), hash(&i));
        assert_ne!(hash(&b), hash(&NotificationData::byte(2)));
    }

    #[test]
    fn every_code_and_subcode_round_trips() {
        for code in 0..=u8::MAX {
            for subcode in 0..=u8::MAX {
                let c = NotificationCode::from_raw(code, subcode);
                assert_eq!((c.code(), c.subcode()), (code, subcode));
            }
        }
    }

    #[test]
    fn registered_values_get_named_variants() {
        use NotificationCode as C;
        assert_eq!(
            C::from_raw(1, 2),
            C::MessageHeader(HeaderSubcode::BadMessageLength)
        );
        assert_eq!(C::from_raw(2, 11), C::Open(OpenSubcode::RoleMismatch));
        assert_eq!(
            C::from_raw(3, 11),
            C::Update(UpdateSubcode::MalformedAsPath)
        );
        assert_eq!(
            C::from_raw(5, 3),
            C::Fsm(FsmSubcode::UnexpectedMessageInEstablished)
        );
        assert_eq!(C::from_raw(6, 10), C::Cease(CeaseSubcode::BfdDown));
        assert_eq!(
            C::from_raw(7, 1),
            C::RouteRefresh(RouteRefreshSubcode::InvalidMessageLength)
        );
        assert_eq!(C::from_raw(8, 0), C::SEND_HOLD_TIMER_EXPIRED);
        assert!(matches!(
            C::from_raw(9, 1),
            C::Unknown {
                code: 9,
                subcode: 1
            }
        ));
        assert!(matches!(
            C::from_raw(6, 11),
            C::Cease(CeaseSubcode::Unknown(11))
        ));
    }

    #[test]
    fn one_byte_data_is_kept_on_the_wire() {
        // CoreBGP drops one-byte data (packet.go:213); RFC 6608 needs it.
        let n =
            Notification::fsm_error(FsmSubcode::UnexpectedMessageInOpenSent, MessageType::Update);
        let mut buf = [0u8; 64];
        let len = n.encode(&mut buf).unwrap();
        assert_eq!(len, 22);
        assert_eq!(&buf[16..len], &[0, 22, 3, 5, 1, 2]);
        let back = Notification::parse(&buf[19..len]).unwrap();
        assert_eq!(back, n);
        assert_eq!(back.data.as_bytes(), &[2]);
    }

    #[test]
    fn shutdown_communication_round_trip() {
        let mut buf = [0u8; 512];
        let len = Notification::encode_shutdown(
            CeaseSubcode::AdministrativeShutdown,
            "maintenance ✓",
            &mut buf,
        )
        .unwrap();
        let n = Notification::parse(&buf[19..len]).unwrap();
        assert_eq!(n.shutdown_communication(), Some(Ok("maintenance ✓")));
        let long = [b'x'; 256];
        let long = core::str::from_utf8(&long).unwrap();
        assert_eq!(
            Notification::encode_shutdown(CeaseSubcode::AdministrativeReset, long, &mut buf),
            Err(EncodeError::FieldTooLong)
        );
        // Truncated and invalid UTF-8 are reported, not fatal.
        let bad = Notification::with_data(
            NotificationCode::Cease(CeaseSubcode::AdministrativeReset),
            &[5, b'a'],
        );
        assert_eq!(
            bad.shutdown_communication(),
            Some(Err(ShutdownCommunicationError::Truncated))
        );
        let bad = Notification::with_data(
            NotificationCode::Cease(CeaseSubcode::AdministrativeReset),
            &[1, 0xff],
        );
        assert_eq!(
            bad.shutdown_communication(),
            Some(Err(ShutdownCommunicationError::InvalidUtf8))
        );
        let other = Notification::with_data(NotificationCode::HOLD_TIMER_EXPIRED, &[1, b'a']);
        assert_eq!(other.shutdown_communication(), None);
    }

    #[test]
    fn data_is_truncated_to_the_limit() {
        let data = [0xabu8; 5000];
        let n = Notification::with_data(
            NotificationCode::Update(UpdateSubcode::MalformedAttributeList),
            &data,
        );
        let mut buf = [0u8; 8192];
        assert_eq!(n.encode(&mut buf).unwrap(), 4096);
        assert_eq!(n.encode_with_max(&mut buf, 8192).unwrap(), 21 + 5000);
        let mut small = [0u8; 10];
        assert!(matches!(
            n.encode(&mut small),
            Err(EncodeError::BufferTooSmall { .. })
        ));
    }
}
