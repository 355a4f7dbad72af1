//! Capabilities advertised in OPEN (RFC 5492) as typed values; unknown ones
//! are kept as raw code and bytes.

use super::Reader;
use super::notification::{Notification, NotificationCode, OpenSubcode};
use super::types::{Afi, AfiSafi, Safi, open_enum};

open_enum! {
    /// Capability codes (IANA "Capability Codes").
    pub enum CapabilityCode: u8 {
        /// Multiprotocol Extensions (RFC 4760).
        MultiProtocol = 1,
        /// Route Refresh (RFC 2918).
        RouteRefresh = 2,
        /// Outbound Route Filtering (RFC 5291).
        OutboundRouteFiltering = 3,
        /// Extended Next Hop Encoding (RFC 8950).
        ExtendedNextHop = 5,
        /// Extended Message (RFC 8654).
        ExtendedMessage = 6,
        /// BGPsec (RFC 8205).
        BgpSec = 7,
        /// Multiple Labels (RFC 8277).
        MultipleLabels = 8,
        /// BGP Role (RFC 9234).
        Role = 9,
        /// Graceful Restart (RFC 4724).
        GracefulRestart = 64,
        /// Support for 4-octet AS numbers (RFC 6793).
        FourOctetAs = 65,
        /// Dynamic Capability.
        DynamicCapability = 67,
        /// Multisession BGP.
        Multisession = 68,
        /// ADD-PATH (RFC 7911).
        AddPath = 69,
        /// Enhanced Route Refresh (RFC 7313).
        EnhancedRouteRefresh = 70,
        /// Long-Lived Graceful Restart (RFC 9494).
        LongLivedGracefulRestart = 71,
        /// FQDN (draft-walton-bgp-hostname-capability).
        Fqdn = 73,
        /// BFD strict mode.
        BfdStrictMode = 74,
        /// Software Version.
        SoftwareVersion = 75,
    }
}

/// A fixed-size entry of a capability that lists several (ADD-PATH, Graceful
/// Restart families, …).
pub trait ListItem: Copy + Sized {
    /// Encoded size in bytes; must not be zero (checked at compile time).
    const LEN: usize;
    /// Decodes one entry from exactly `LEN` bytes; `None` if invalid.
    fn read(b: &[u8]) -> Option<Self>;
    /// Encodes into exactly `LEN` bytes.
    fn write(&self, out: &mut [u8]);
}

/// A list of entries: still on the wire (decoded lazily, never copied) or a
/// slice of typed items (for encoding). Both iterate the same way.
#[derive(Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum List<'a, T> {
    /// Validated wire bytes.
    Wire(&'a [u8]),
    /// Typed items.
    Items(&'a [T]),
}

impl<'a, T: ListItem> List<'a, T> {
    /// Validates wire bytes: a whole number of valid entries.
    pub fn from_wire(b: &'a [u8]) -> Option<Self> {
        const { assert!(T::LEN > 0, "ListItem::LEN must not be zero") };
        if !b.len().is_multiple_of(T::LEN) || b.chunks_exact(T::LEN).any(|c| T::read(c).is_none()) {
            return None;
        }
        Some(Self::Wire(b))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        const { assert!(T::LEN > 0, "ListItem::LEN must not be zero") };
        match self {
            Self::Wire(b) => b.len() / T::LEN,
            Self::Items(i) => i.len(),
        }
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries.
    pub fn iter(&self) -> ListIter<'a, T> {
        const { assert!(T::LEN > 0, "ListItem::LEN must not be zero") };
        match *self {
            Self::Wire(b) => ListIter::Wire(b.chunks_exact(T::LEN)),
            Self::Items(i) => ListIter::Items(i.iter()),
        }
    }

    fn encoded_len(&self) -> usize {
        self.len() * T::LEN
    }
}

impl<'a, T: ListItem> IntoIterator for List<'a, T> {
    type Item = T;
    type IntoIter = ListIter<'a, T>;
    fn into_iter(self) -> ListIter<'a, T> {
        self.iter()
    }
}

impl<T: ListItem + PartialEq> PartialEq for List<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: ListItem + Eq> Eq for List<'_, T> {}

impl<T: ListItem + core::fmt::Debug> core::fmt::Debug for List<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over a [`List`].
#[derive(Debug, Clone)]
pub enum ListIter<'a, T> {
    /// Over wire bytes.
    Wire(core::slice::ChunksExact<'a, u8>),
    /// Over typed items.
    Items(core::slice::Iter<'a, T>),
}

impl<T: ListItem> Iterator for ListIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        match self {
            // Wire lists are validated on construction; an invalid entry in a
            // hand-built one is skipped rather than trusted.
            Self::Wire(c) => c.by_ref().find_map(T::read),
            Self::Items(i) => i.next().copied(),
        }
    }
}

fn afi_safi(r: &mut Reader<'_>) -> Option<AfiSafi> {
    let afi = Afi::from_raw(r.u16()?);
    let safi = Safi::from_raw(r.u8()?);
    Some(AfiSafi::new(afi, safi))
}

fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(d) = out.get_mut(at..at + bytes.len()) {
        d.copy_from_slice(bytes);
    }
}

/// ADD-PATH Send/Receive (RFC 7911 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AddPathDirection {
    /// 1: able to receive multiple paths.
    Receive = 1,
    /// 2: able to send multiple paths.
    Send = 2,
    /// 3: both.
    Both = 3,
}

impl AddPathDirection {
    /// Decodes the Send/Receive field.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Receive),
            2 => Some(Self::Send),
            3 => Some(Self::Both),
            _ => None,
        }
    }
    /// Whether this includes receiving.
    pub const fn receives(self) -> bool {
        matches!(self, Self::Receive | Self::Both)
    }
    /// Whether this includes sending.
    pub const fn sends(self) -> bool {
        matches!(self, Self::Send | Self::Both)
    }
}

/// One ADD-PATH entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AddPathEntry {
    /// The address family.
    pub family: AfiSafi,
    /// What the sender of the capability can do.
    pub direction: AddPathDirection,
}

impl ListItem for AddPathEntry {
    const LEN: usize = 4;
    fn read(b: &[u8]) -> Option<Self> {
        let mut r = Reader::new(b);
        let family = afi_safi(&mut r)?;
        let direction = AddPathDirection::from_u8(r.u8()?)?;
        Some(Self { family, direction })
    }
    fn write(&self, out: &mut [u8]) {
        put(out, 0, &self.family.afi.to_raw().to_be_bytes());
        put(out, 2, &[self.family.safi.to_raw(), self.direction as u8]);
    }
}

/// One Extended Next Hop Encoding entry (RFC 8950 §3): NLRI of `family` may
/// carry next hops of `next_hop_afi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExtendedNextHopEntry {
    /// NLRI AFI and SAFI (the SAFI is two bytes on the wire).
    pub family: AfiSafi,
    /// Next hop address family.
    pub next_hop_afi: Afi,
}

impl ListItem for ExtendedNextHopEntry {
    const LEN: usize = 6;
    fn read(b: &[u8]) -> Option<Self> {
        let mut r = Reader::new(b);
        let afi = Afi::from_raw(r.u16()?);
        let safi = u8::try_from(r.u16()?).ok()?;
        let next_hop_afi = Afi::from_raw(r.u16()?);
        Some(Self {
            family: AfiSafi::new(afi, Safi::from_raw(safi)),
            next_hop_afi,
        })
    }
    fn write(&self, out: &mut [u8]) {
        put(out, 0, &self.family.afi.to_raw().to_be_bytes());
        put(out, 2, &u16::from(self.family.safi.to_raw()).to_be_bytes());
        put(out, 4, &self.next_hop_afi.to_raw().to_be_bytes());
    }
}

/// One Graceful Restart address family (RFC 4724 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GracefulRestartEntry {
    /// The address family.
    pub family: AfiSafi,
    /// F bit: forwarding state was preserved.
    pub forwarding_preserved: bool,
}

impl ListItem for GracefulRestartEntry {
    const LEN: usize = 4;
    fn read(b: &[u8]) -> Option<Self> {
        let mut r = Reader::new(b);
        let family = afi_safi(&mut r)?;
        let flags = r.u8()?;
        Some(Self {
            family,
            forwarding_preserved: flags & 0x80 != 0,
        })
    }
    fn write(&self, out: &mut [u8]) {
        put(out, 0, &self.family.afi.to_raw().to_be_bytes());
        put(
            out,
            2,
            &[
                self.family.safi.to_raw(),
                if self.forwarding_preserved { 0x80 } else { 0 },
            ],
        );
    }
}

/// One Long-Lived Graceful Restart address family (RFC 9494 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LlgrEntry {
    /// The address family.
    pub family: AfiSafi,
    /// F bit: forwarding state was preserved.
    pub forwarding_preserved: bool,
    /// Long-lived stale time in seconds (24 bits).
    pub stale_time: u32,
}

impl ListItem for LlgrEntry {
    const LEN: usize = 7;
    fn read(b: &[u8]) -> Option<Self> {
        let mut r = Reader::new(b);
        let family = afi_safi(&mut r)?;
        let flags = r.u8()?;
        let [a, b, c] = r.array::<3>()?;
        Some(Self {
            family,
            forwarding_preserved: flags & 0x80 != 0,
            stale_time: u32::from_be_bytes([0, a, b, c]),
        })
    }
    fn write(&self, out: &mut [u8]) {
        put(out, 0, &self.family.afi.to_raw().to_be_bytes());
        put(
            out,
            2,
            &[
                self.family.safi.to_raw(),
                if self.forwarding_preserved { 0x80 } else { 0 },
            ],
        );
        let [_, a, b, c] = self.stale_time.min(0x00ff_ffff).to_be_bytes();
        put(out, 4, &[a, b, c]);
    }
}

/// The Graceful Restart capability (RFC 4724 §3, N bit from RFC 8538).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GracefulRestart<'a> {
    /// R bit: the sender has restarted.
    pub restart_state: bool,
    /// N bit: the sender supports graceful NOTIFICATION handling (RFC 8538).
    pub notification: bool,
    /// Restart time in seconds (12 bits).
    pub restart_time: u16,
    /// Address families with their forwarding state.
    pub families: List<'a, GracefulRestartEntry>,
}

open_enum! {
    /// A BGP Role (RFC 9234 §4.1).
    pub enum Role: u8 {
        /// Provider.
        Provider = 0,
        /// Route server.
        RouteServer = 1,
        /// Route server client.
        RouteServerClient = 2,
        /// Customer.
        Customer = 3,
        /// Lateral peer.
        Peer = 4,
    }
}

impl Role {
    /// The role the peer must have for the session to come up (RFC 9234 §4.2
    /// table), or `None` for an unknown role.
    pub const fn expected_peer_role(self) -> Option<Self> {
        match self {
            Self::Provider => Some(Self::Customer),
            Self::Customer => Some(Self::Provider),
            Self::RouteServer => Some(Self::RouteServerClient),
            Self::RouteServerClient => Some(Self::RouteServer),
            Self::Peer => Some(Self::Peer),
            Self::Unknown(_) => None,
        }
    }
}

/// A capability as typed value. Decoded capabilities borrow the OPEN; ones to
/// send may borrow the caller's slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Capability<'a> {
    /// Multiprotocol Extensions for one AFI/SAFI (RFC 4760 §8).
    MultiProtocol(AfiSafi),
    /// Route Refresh (RFC 2918).
    RouteRefresh,
    /// Extended Next Hop Encoding (RFC 8950).
    ExtendedNextHop(List<'a, ExtendedNextHopEntry>),
    /// Extended Message (RFC 8654).
    ExtendedMessage,
    /// BGP Role (RFC 9234).
    Role(Role),
    /// Graceful Restart (RFC 4724).
    GracefulRestart(GracefulRestart<'a>),
    /// 4-octet AS number support with the speaker's AS (RFC 6793).
    FourOctetAs(u32),
    /// ADD-PATH (RFC 7911).
    AddPath(List<'a, AddPathEntry>),
    /// Enhanced Route Refresh (RFC 7313).
    EnhancedRouteRefresh,
    /// Long-Lived Graceful Restart (RFC 9494).
    LongLivedGracefulRestart(List<'a, LlgrEntry>),
    /// FQDN: host and domain name (bytes as sent; usually ASCII).
    Fqdn {
        /// Host name.
        hostname: &'a [u8],
        /// Domain name.
        domain: &'a [u8],
    },
    /// Any other capability, kept as read.
    Unknown {
        /// Capability code.
        code: u8,
        /// Capability value.
        value: &'a [u8],
    },
}

/// A capability TLV whose value does not fit its code's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MalformedCapability<'a> {
    /// The capability as read.
    pub raw: RawCapability<'a>,
}

impl MalformedCapability<'_> {
    /// 2/0: RFC 5492 names no subcode for a malformed capability.
    pub fn notification(&self) -> Notification<'static> {
        Notification::new(NotificationCode::Open(OpenSubcode::Unspecific))
    }
}

/// A capability TLV as read: code and value bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RawCapability<'a> {
    /// Capability code.
    pub code: u8,
    /// Capability value.
    pub value: &'a [u8],
}

/// An FQDN capability value: host name and domain name, each with its
/// length byte, and nothing after.
pub(crate) fn fqdn_well_formed(v: &[u8]) -> bool {
    let n = v.len();
    let hl = v.first().map_or(n, |&l| usize::from(l));
    let dl = v.get(1 + hl).map_or(n, |&l| usize::from(l));
    2 + hl + dl == n
}

impl<'a> RawCapability<'a> {
    /// Whether the value fits its code's format: exactly when
    /// [`parse`](Self::parse) succeeds, without building the typed value
    /// (the session's negotiation needs only this and a few fields, and a
    /// firmware then links no typed decoder).
    pub fn is_well_formed(&self) -> bool {
        let v = self.value;
        let n = v.len();
        match CapabilityCode::from_raw(self.code) {
            CapabilityCode::MultiProtocol | CapabilityCode::FourOctetAs => n == 4,
            CapabilityCode::RouteRefresh
            | CapabilityCode::ExtendedMessage
            | CapabilityCode::EnhancedRouteRefresh => n == 0,
            CapabilityCode::Role => n == 1,
            // RFC 4724 §3: restart flags and time, then 4-byte families.
            CapabilityCode::GracefulRestart => {
                n >= 2 && (n - 2).is_multiple_of(GracefulRestartEntry::LEN)
            }
            CapabilityCode::ExtendedNextHop => List::<ExtendedNextHopEntry>::from_wire(v).is_some(),
            CapabilityCode::AddPath => List::<AddPathEntry>::from_wire(v).is_some(),
            CapabilityCode::LongLivedGracefulRestart => n.is_multiple_of(LlgrEntry::LEN),
            // Host name and domain name, each with its length byte, and
            // nothing after.
            CapabilityCode::Fqdn => fqdn_well_formed(v),
            _ => true,
        }
    }

    /// Decodes the value by its code. Unknown codes give
    /// [`Capability::Unknown`]; a known code with a malformed value is an error.
    pub fn parse(self) -> Result<Capability<'a>, MalformedCapability<'a>> {
        let bad = MalformedCapability { raw: self };
        let v = self.value;
        let mut r = Reader::new(v);
        let cap = match CapabilityCode::from_raw(self.code) {
            CapabilityCode::MultiProtocol if v.len() == 4 => {
                let afi = Afi::from_raw(r.u16().ok_or(bad)?);
                let _reserved = r.u8();
                let safi = Safi::from_raw(r.u8().ok_or(bad)?);
                Capability::MultiProtocol(AfiSafi::new(afi, safi))
            }
            CapabilityCode::RouteRefresh if v.is_empty() => Capability::RouteRefresh,
            CapabilityCode::ExtendedMessage if v.is_empty() => Capability::ExtendedMessage,
            CapabilityCode::EnhancedRouteRefresh if v.is_empty() => {
                Capability::EnhancedRouteRefresh
            }
            CapabilityCode::ExtendedNextHop => {
                Capability::ExtendedNextHop(List::from_wire(v).ok_or(bad)?)
            }
            CapabilityCode::Role if v.len() == 1 => {
                Capability::Role(Role::from_raw(r.u8().ok_or(bad)?))
            }
            CapabilityCode::GracefulRestart if v.len() >= 2 => {
                let head = r.u16().ok_or(bad)?;
                Capability::GracefulRestart(GracefulRestart {
                    restart_state: head & 0x8000 != 0,
                    notification: head & 0x4000 != 0,
                    restart_time: head & 0x0fff,
                    families: List::from_wire(r.rest()).ok_or(bad)?,
                })
            }
            CapabilityCode::FourOctetAs if v.len() == 4 => {
                Capability::FourOctetAs(r.u32().ok_or(bad)?)
            }
            CapabilityCode::AddPath => Capability::AddPath(List::from_wire(v).ok_or(bad)?),
            CapabilityCode::LongLivedGracefulRestart => {
                Capability::LongLivedGracefulRestart(List::from_wire(v).ok_or(bad)?)
            }
            CapabilityCode::Fqdn => {
                let hl = r.u8().ok_or(bad)?;
                let hostname = r.take(usize::from(hl)).ok_or(bad)?;
                let dl = r.u8().ok_or(bad)?;
                let domain = r.take(usize::from(dl)).ok_or(bad)?;
                if !r.is_empty() {
                    return Err(bad);
                }
                Capability::Fqdn { hostname, domain }
            }
            CapabilityCode::MultiProtocol
            | CapabilityCode::RouteRefresh
            | CapabilityCode::ExtendedMessage
            | CapabilityCode::EnhancedRouteRefresh
            | CapabilityCode::Role
            | CapabilityCode::GracefulRestart
            | CapabilityCode::FourOctetAs => return Err(bad),
            _ => Capability::Unknown {
                code: self.code,
                value: v,
            },
        };
        Ok(cap)
    }
}

impl Capability<'_> {
    /// The capability code.
    #[inline(always)]
    pub fn code(&self) -> u8 {
        let c = match self {
            Self::MultiProtocol(_) => CapabilityCode::MultiProtocol,
            Self::RouteRefresh => CapabilityCode::RouteRefresh,
            Self::ExtendedNextHop(_) => CapabilityCode::ExtendedNextHop,
            Self::ExtendedMessage => CapabilityCode::ExtendedMessage,
            Self::Role(_) => CapabilityCode::Role,
            Self::GracefulRestart(_) => CapabilityCode::GracefulRestart,
            Self::FourOctetAs(_) => CapabilityCode::FourOctetAs,
            Self::AddPath(_) => CapabilityCode::AddPath,
            Self::EnhancedRouteRefresh => CapabilityCode::EnhancedRouteRefresh,
            Self::LongLivedGracefulRestart(_) => CapabilityCode::LongLivedGracefulRestart,
            Self::Fqdn { .. } => CapabilityCode::Fqdn,
            Self::Unknown { code, .. } => return *code,
        };
        c.to_raw()
    }

    /// Length of the value (without code and length bytes).
    #[inline(always)]
    pub fn value_len(&self) -> usize {
        match self {
            Self::MultiProtocol(_) | Self::FourOctetAs(_) => 4,
            Self::RouteRefresh | Self::ExtendedMessage | Self::EnhancedRouteRefresh => 0,
            Self::ExtendedNextHop(l) => l.encoded_len(),
            Self::Role(_) => 1,
            Self::GracefulRestart(g) => 2 + g.families.encoded_len(),
            Self::AddPath(l) => l.encoded_len(),
            Self::LongLivedGracefulRestart(l) => l.encoded_len(),
            Self::Fqdn { hostname, domain } => 2 + hostname.len() + domain.len(),
            Self::Unknown { value, .. } => value.len(),
        }
    }

    /// Writes code, length and value into `out`, which must hold exactly
    /// `2 + value_len()` bytes. `false` if the value is over 255 bytes or a
    /// length-prefixed name is over 255.
    #[inline(always)]
    pub(crate) fn write(&self, out: &mut [u8]) -> bool {
        let Ok(len) = u8::try_from(self.value_len()) else {
            return false;
        };
        put(out, 0, &[self.code(), len]);
        let Some(v) = out.get_mut(2..) else {
            return false;
        };
        match self {
            Self::MultiProtocol(f) => {
                put(v, 0, &f.afi.to_raw().to_be_bytes());
                put(v, 2, &[0, f.safi.to_raw()]);
            }
            Self::FourOctetAs(asn) => put(v, 0, &asn.to_be_bytes()),
            Self::RouteRefresh | Self::ExtendedMessage | Self::EnhancedRouteRefresh => {}
            Self::ExtendedNextHop(l) => write_list(v, l),
            Self::Role(r) => put(v, 0, &[r.to_raw()]),
            Self::GracefulRestart(g) => {
                let head = (u16::from(g.restart_state) << 15)
                    | (u16::from(g.notification) << 14)
                    | (g.restart_time & 0x0fff);
                put(v, 0, &head.to_be_bytes());
                if let Some(rest) = v.get_mut(2..) {
                    write_list(rest, &g.families);
                }
            }
            Self::AddPath(l) => write_list(v, l),
            Self::LongLivedGracefulRestart(l) => write_list(v, l),
            Self::Fqdn { hostname, domain } => {
                let (Ok(hl), Ok(dl)) = (u8::try_from(hostname.len()), u8::try_from(domain.len()))
                else {
                    return false;
                };
                put(v, 0, &[hl]);
                put(v, 1, hostname);
                put(v, 1 + hostname.len(), &[dl]);
                put(v, 2 + hostname.len(), domain);
            }
            Self::Unknown { value, .. } => put(v, 0, value),
        }
        true
    }
}

fn write_list<T: ListItem>(out: &mut [u8], l: &List<'_, T>) {
    for (item, chunk) in l.iter().zip(out.chunks_exact_mut(T::LEN)) {
        item.write(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(c: Capability<'_>) {
        let mut buf = [0u8; 300];
        let n = 2 + c.value_len();
        assert!(c.write(&mut buf[..n]));
        let raw = RawCapability {
            code: buf[0],
            value: &buf[2..n],
        };
        assert_eq!(usize::from(buf[1]), n - 2);
        assert_eq!(raw.parse().unwrap(), c);
    }

    #[test]
    fn typed_round_trips() {
        round_trip(Capability::MultiProtocol(AfiSafi::IPV6_UNICAST));
        round_trip(Capability::RouteRefresh);
        round_trip(Capability::EnhancedRouteRefresh);
        round_trip(Capability::ExtendedMessage);
        round_trip(Capability::FourOctetAs(4_200_000_000));
        round_trip(Capability::Role(Role::Customer));
        round_trip(Capability::AddPath(List::Items(&[
            AddPathEntry {
                family: AfiSafi::IPV4_UNICAST,
                direction: AddPathDirection::Both,
            },
            AddPathEntry {
                family: AfiSafi::IPV6_UNICAST,
                direction: AddPathDirection::Receive,
            },
        ])));
        round_trip(Capability::ExtendedNextHop(List::Items(&[
            ExtendedNextHopEntry {
                family: AfiSafi::IPV4_UNICAST,
                next_hop_afi: Afi::Ipv6,
            },
        ])));
        round_trip(Capability::GracefulRestart(GracefulRestart {
            restart_state: true,
            notification: true,
            restart_time: 120,
            families: List::Items(&[GracefulRestartEntry {
                family: AfiSafi::IPV4_UNICAST,
                forwarding_preserved: true,
            }]),
        }));
        round_trip(Capability::LongLivedGracefulRestart(List::Items(&[
            LlgrEntry {
                family: AfiSafi::IPV6_UNICAST,
                forwarding_preserved: false,
                stale_time: 0x00ab_cdef,
            },
        ])));
        round_trip(Capability::Fqdn {
            hostname: b"r1",
            domain: b"example.net",
        });
        round_trip(Capability::Unknown {
            code: 200,
            value: &[1, 2, 3],
        });
    }

    #[test]
    fn malformed_known_capabilities_are_errors() {
        for (code, value) in [
            (1u8, &[0u8, 1, 0][..]),
            (2, &[0]),
            (65, &[0, 0, 1]),
            (69, &[0, 1, 1, 4]),
            (69, &[0, 1, 1]),
            (9, &[]),
            (64, &[0]),
            (64, &[0, 0, 0]),
            (73, &[5, b'a']),
            (5, &[0, 1, 1, 0, 0, 2]), // SAFI over 255
        ] {
            let raw = RawCapability { code, value };
            assert_eq!(raw.parse(), Err(MalformedCapability { raw }), "code {code}");
        }
    }

    #[test]
    fn is_well_formed_agrees_with_parse() {
        let values: [&[u8]; 16] = [
            &[],
            &[0],
            &[0, 1],
            &[0, 1, 1],
            &[0, 1, 0, 1],
            &[0, 1, 1, 4],
            &[0, 1, 1, 3, 0, 2, 1, 2],
            &[0, 1, 0, 1, 0, 2],
            &[0, 1, 1, 0, 0, 2],
            &[0, 1, 1, 0, 0, 2, 0, 1],
            &[0, 1, 1, 0x80, 0, 0, 5],
            &[2, b'r', b'1', 0],
            &[2, b'r', b'1', 1, b'x'],
            &[2, b'r', b'1', 1, b'x', 0],
            &[5, b'a'],
            &[1, b'a', 2, b'b'],
        ];
        for code in 0..=255u8 {
            for value in values {
                let raw = RawCapability { code, value };
                assert_eq!(
                    raw.is_well_formed(),
                    raw.parse().is_ok(),
                    "{code} {value:?}"
                );
            }
        }
    }

    #[test]
    fn role_table() {
        assert_eq!(Role::Provider.expected_peer_role(), Some(Role::Customer));
        assert_eq!(
            Role::RouteServer.expected_peer_role(),
            Some(Role::RouteServerClient)
        );
        assert_eq!(Role::Peer.expected_peer_role(), Some(Role::Peer));
        assert_eq!(Role::Unknown(9).expected_peer_role(), None);
    }
}
