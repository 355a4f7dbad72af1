//! Typed views of attribute values. Each borrows the value bytes; building
//! one costs at most a length check.

use core::net::{Ipv4Addr, Ipv6Addr};

use super::config::{Families, UpdateConfig};
use super::nlri::{Ipv4Prefixes, Ipv6Prefixes, Prefixes};
use crate::wire::{Afi, AfiSafi, Safi};

/// AS_TRANS (RFC 6793 §9): stands in for a 4-octet AS in 2-octet fields.
pub const AS_TRANS: u32 = 23456;

/// ORIGIN values (RFC 4271 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Origin {
    /// 0: IGP.
    Igp = 0,
    /// 1: EGP.
    Egp = 1,
    /// 2: INCOMPLETE.
    Incomplete = 2,
}

impl Origin {
    /// From the wire value; `None` for undefined values.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Igp),
            1 => Some(Self::Egp),
            2 => Some(Self::Incomplete),
            _ => None,
        }
    }
}

/// AS_PATH segment types (RFC 4271 §4.3, RFC 5065 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SegmentType {
    /// 1: AS_SET.
    Set = 1,
    /// 2: AS_SEQUENCE.
    Sequence = 2,
    /// 3: AS_CONFED_SEQUENCE.
    ConfedSequence = 3,
    /// 4: AS_CONFED_SET.
    ConfedSet = 4,
}

impl SegmentType {
    /// From the wire value; `None` for undefined types.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Set),
            2 => Some(Self::Sequence),
            3 => Some(Self::ConfedSequence),
            4 => Some(Self::ConfedSet),
            _ => None,
        }
    }
    /// Whether this is a confederation segment.
    pub const fn is_confed(self) -> bool {
        matches!(self, Self::ConfedSequence | Self::ConfedSet)
    }
}

/// AS numbers of one segment, 2- or 4-octet on the wire.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Asns<'a> {
    bytes: &'a [u8],
    four: bool,
}

impl<'a> Asns<'a> {
    /// AS numbers packed in `bytes`, `four`-octet or 2-octet.
    pub const fn new(bytes: &'a [u8], four: bool) -> Self {
        Self { bytes, four }
    }
    /// Number of AS numbers left.
    pub const fn count(&self) -> usize {
        if self.four {
            self.bytes.len() / 4
        } else {
            self.bytes.len() / 2
        }
    }
}

impl Iterator for Asns<'_> {
    type Item = u32;
    #[inline]
    fn next(&mut self) -> Option<u32> {
        if self.four {
            let (a, rest) = self.bytes.split_first_chunk::<4>()?;
            self.bytes = rest;
            Some(u32::from_be_bytes(*a))
        } else {
            let (a, rest) = self.bytes.split_first_chunk::<2>()?;
            self.bytes = rest;
            Some(u32::from(u16::from_be_bytes(*a)))
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = Asns::count(self);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Asns<'_> {}

impl PartialEq for Asns<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.clone().eq(other.clone())
    }
}
impl Eq for Asns<'_> {}

/// One AS_PATH segment as read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Segment<'a> {
    /// Segment type.
    pub kind: SegmentType,
    /// Its AS numbers.
    pub asns: Asns<'a>,
}

/// One AS_PATH segment to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AsSegment<'a> {
    /// Segment type.
    pub kind: SegmentType,
    /// Its AS numbers (at most 255).
    pub asns: &'a [u32],
}

/// What a structural check of an AS path found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PathCheck {
    /// Path length as RFC 6793 §4.2.3 counts it (SET = 1, confed = 0).
    pub count: u32,
    pub confed: bool,
    pub zero: bool,
}

/// RFC 7606 §7.2: malformed on an unknown segment type, a zero segment
/// length, an overrun, or a lone trailing octet.
pub(crate) fn check_path(mut v: &[u8], four: bool) -> Option<PathCheck> {
    let w = if four { 4 } else { 2 };
    let mut c = PathCheck {
        count: 0,
        confed: false,
        zero: false,
    };
    while let Some((&[ty, n], rest)) = v.split_first_chunk::<2>() {
        let kind = SegmentType::from_u8(ty)?;
        if n == 0 {
            return None;
        }
        let (body, rest) = rest.split_at_checked(usize::from(n) * w)?;
        c.zero |= if four {
            body.as_chunks::<4>().0.contains(&[0; 4])
        } else {
            body.as_chunks::<2>().0.contains(&[0; 2])
        };
        match kind {
            SegmentType::Set => c.count += 1,
            SegmentType::Sequence => c.count += u32::from(n),
            _ => c.confed = true,
        }
        v = rest;
    }
    v.is_empty().then_some(c)
}

/// An AS path: the AS_PATH attribute, or AS_PATH merged with AS4_PATH
/// (RFC 6793 §4.2.3) as [`Update::as_path`](super::Update::as_path) returns
/// it when the peer is a 2-octet speaker.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AsPath<'a> {
    head: &'a [u8],
    four: bool,
    take: u32,
    tail: &'a [u8],
}

impl<'a> AsPath<'a> {
    /// A view of an AS_PATH (or AS4_PATH, with `four_octet`) value. Iteration
    /// stops at the first malformed segment.
    pub const fn new(value: &'a [u8], four_octet: bool) -> Self {
        Self {
            head: value,
            four: four_octet,
            take: u32::MAX,
            tail: &[],
        }
    }

    /// AS_PATH merged with AS4_PATH (RFC 6793 §4.2.3): the leading `take`
    /// ASes (RFC 4271 §9.1.2.2 counting) of the 2-octet path, then AS4_PATH.
    pub(crate) const fn merged(head: &'a [u8], take: u32, as4_path: &'a [u8]) -> Self {
        Self {
            head,
            four: false,
            take,
            tail: as4_path,
        }
    }

    /// The segments.
    pub fn segments(&self) -> Segments<'a> {
        Segments {
            head: self.head,
            four: self.four,
            take: self.take,
            tail: self.tail,
        }
    }

    /// All AS numbers, left to right, segments flattened.
    pub fn asns(&self) -> impl Iterator<Item = u32> + 'a {
        self.segments().flat_map(|s| s.asns)
    }

    /// Path length for route selection (RFC 4271 §9.1.2.2, RFC 5065 §5.3):
    /// an AS_SET counts 1, confederation segments 0.
    pub fn path_len(&self) -> u32 {
        self.segments()
            .map(|s| match s.kind {
                SegmentType::Sequence => s.asns.count() as u32,
                SegmentType::Set => 1,
                _ => 0,
            })
            .sum()
    }

    /// The leftmost AS of the path (the neighbour AS for an eBGP route).
    pub fn first_as(&self) -> Option<u32> {
        self.segments()
            .find(|s| !s.kind.is_confed())
            .and_then(|mut s| s.asns.next())
    }

    /// The origin AS: the last AS of the path if it ends in an AS_SEQUENCE.
    pub fn origin_as(&self) -> Option<u32> {
        match self.segments().last() {
            Some(s) if s.kind == SegmentType::Sequence => s.asns.last(),
            _ => None,
        }
    }

    /// Whether the path has no segment.
    pub fn is_empty(&self) -> bool {
        self.segments().next().is_none()
    }

    /// Whether `asn` appears anywhere in the path (loop detection, RFC 4271 §9.1.2).
    pub fn contains(&self, asn: u32) -> bool {
        self.asns().any(|a| a == asn)
    }
}

impl PartialEq for AsPath<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.segments().eq(other.segments())
    }
}
impl Eq for AsPath<'_> {}

/// Iterator over the segments of an [`AsPath`].
#[derive(Debug, Clone)]
pub struct Segments<'a> {
    head: &'a [u8],
    four: bool,
    take: u32,
    tail: &'a [u8],
}

#[inline]
fn split_segment(v: &[u8], four: bool) -> Option<(SegmentType, u8, &[u8], &[u8])> {
    let (&[ty, n], rest) = v.split_first_chunk::<2>()?;
    let kind = SegmentType::from_u8(ty)?;
    let w = if four { 4 } else { 2 };
    let (body, rest) = rest.split_at_checked(usize::from(n) * w)?;
    Some((kind, n, body, rest))
}

impl<'a> Iterator for Segments<'a> {
    type Item = Segment<'a>;

    #[inline]
    fn next(&mut self) -> Option<Segment<'a>> {
        if !self.head.is_empty() {
            match split_segment(self.head, self.four) {
                Some((kind, _, body, rest)) if self.take == u32::MAX || kind.is_confed() => {
                    self.head = rest;
                    return Some(Segment {
                        kind,
                        asns: Asns::new(body, self.four),
                    });
                }
                Some((kind, n, body, rest)) if self.take > 0 => {
                    let count = if kind == SegmentType::Set {
                        1
                    } else {
                        u32::from(n)
                    };
                    if count <= self.take {
                        self.take -= count;
                        self.head = rest;
                        return Some(Segment {
                            kind,
                            asns: Asns::new(body, false),
                        });
                    }
                    let keep = body.get(..self.take as usize * 2).unwrap_or(body);
                    self.take = 0;
                    self.head = &[];
                    return Some(Segment {
                        kind,
                        asns: Asns::new(keep, false),
                    });
                }
                _ => self.head = &[],
            }
        }
        match split_segment(self.tail, true) {
            Some((kind, _, body, rest)) => {
                self.tail = rest;
                Some(Segment {
                    kind,
                    asns: Asns::new(body, true),
                })
            }
            None => {
                self.tail = &[];
                None
            }
        }
    }
}

/// AGGREGATOR / AS4_AGGREGATOR (RFC 4271 §5.1.7, RFC 6793).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Aggregator {
    /// The aggregating AS.
    pub asn: u32,
    /// The aggregating speaker's address.
    pub addr: Ipv4Addr,
}

impl Aggregator {
    /// From a 6-byte (2-octet AS) or 8-byte (4-octet AS) value.
    pub fn parse(value: &[u8]) -> Option<Self> {
        match *value {
            [a, b, c, d, e, f] => Some(Self {
                asn: u32::from(u16::from_be_bytes([a, b])),
                addr: Ipv4Addr::new(c, d, e, f),
            }),
            [a, b, c, d, e, f, g, h] => Some(Self {
                asn: u32::from_be_bytes([a, b, c, d]),
                addr: Ipv4Addr::new(e, f, g, h),
            }),
            _ => None,
        }
    }
}

/// A community (RFC 1997).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Community(pub u32);

impl Community {
    /// NO_EXPORT (RFC 1997).
    pub const NO_EXPORT: Self = Self(0xFFFF_FF01);
    /// NO_ADVERTISE (RFC 1997).
    pub const NO_ADVERTISE: Self = Self(0xFFFF_FF02);
    /// NO_EXPORT_SUBCONFED (RFC 1997).
    pub const NO_EXPORT_SUBCONFED: Self = Self(0xFFFF_FF03);
    /// NOPEER (RFC 3765).
    pub const NO_PEER: Self = Self(0xFFFF_FF04);
    /// GRACEFUL_SHUTDOWN (RFC 8326).
    pub const GRACEFUL_SHUTDOWN: Self = Self(0xFFFF_0000);
    /// BLACKHOLE (RFC 7999).
    pub const BLACKHOLE: Self = Self(0xFFFF_029A);
    /// LLGR_STALE (RFC 9494).
    pub const LLGR_STALE: Self = Self(0xFFFF_0006);
    /// NO_LLGR (RFC 9494).
    pub const NO_LLGR: Self = Self(0xFFFF_0007);

    /// From `asn:value` notation.
    pub const fn new(asn: u16, value: u16) -> Self {
        Self(((asn as u32) << 16) | value as u32)
    }
    /// The high 16 bits (by convention an AS number).
    pub const fn asn(self) -> u16 {
        (self.0 >> 16) as u16
    }
    /// The low 16 bits.
    pub const fn value(self) -> u16 {
        self.0 as u16
    }
}

/// A large community (RFC 8092).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LargeCommunity {
    /// Global Administrator (an AS number).
    pub global_admin: u32,
    /// Local Data Part 1.
    pub local_data1: u32,
    /// Local Data Part 2.
    pub local_data2: u32,
}

/// An extended community (RFC 4360), 8 octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ExtCommunity(pub [u8; 8]);

impl ExtCommunity {
    /// Type high octet.
    pub const fn type_high(&self) -> u8 {
        self.0[0]
    }
    /// Sub-type octet (for the regular types).
    pub const fn subtype(&self) -> u8 {
        self.0[1]
    }
    /// Whether the community is transitive across ASes (RFC 4360 §2: the T bit clear).
    pub const fn is_transitive(&self) -> bool {
        self.0[0] & 0x40 == 0
    }
    /// Whether the IANA authority bit is set.
    pub const fn is_iana(&self) -> bool {
        self.0[0] & 0x80 == 0
    }
    /// The 8 octets as an integer.
    pub const fn to_u64(&self) -> u64 {
        u64::from_be_bytes(self.0)
    }
}

/// An IPv6 Address Specific Extended Community (RFC 5701), 20 octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ipv6ExtCommunity(pub [u8; 20]);

impl Ipv6ExtCommunity {
    /// Type high octet.
    pub const fn type_high(&self) -> u8 {
        self.0[0]
    }
    /// Sub-type octet.
    pub const fn subtype(&self) -> u8 {
        self.0[1]
    }
    /// Global Administrator: an IPv6 address.
    pub fn global_admin(&self) -> Ipv6Addr {
        let [_, _, a @ .., _, _] = self.0;
        Ipv6Addr::from(a)
    }
    /// Local Administrator.
    pub const fn local_admin(&self) -> u16 {
        u16::from_be_bytes([self.0[18], self.0[19]])
    }
}

macro_rules! chunk_view {
    ($(#[$m:meta])* $name:ident, $n:literal, $item:ty, |$a:ident| $conv:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub struct $name<'a>(&'a [[u8; $n]]);

        impl<'a> $name<'a> {
            #[doc = concat!("A view of a value; `None` unless its length is a multiple of ", stringify!($n), ".")]
            #[inline]
            pub fn new(value: &'a [u8]) -> Option<Self> {
                match value.as_chunks::<$n>() {
                    (c, []) => Some(Self(c)),
                    _ => None,
                }
            }
            /// A view of a value already checked to be a multiple of the
            /// entry size (what [`Update`](super::Update) keeps): no check,
            /// no branch in the getter.
            #[inline]
            pub(crate) fn of_checked(value: &'a [u8]) -> Self {
                Self(value.as_chunks::<$n>().0)
            }
            /// Number of entries.
            pub const fn len(&self) -> usize {
                self.0.len()
            }
            /// Whether there is no entry.
            pub const fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
            /// The entries.
            #[inline]
            pub fn iter(&self) -> impl ExactSizeIterator<Item = $item> + DoubleEndedIterator + Clone + 'a {
                self.0.iter().map(|$a: &[u8; $n]| $conv)
            }
        }

        impl<'a> IntoIterator for $name<'a> {
            type Item = $item;
            type IntoIter = core::iter::Map<core::slice::Iter<'a, [u8; $n]>, fn(&[u8; $n]) -> $item>;
            fn into_iter(self) -> Self::IntoIter {
                fn f($a: &[u8; $n]) -> $item {
                    $conv
                }
                self.0.iter().map(f as fn(&[u8; $n]) -> $item)
            }
        }
    };
}

chunk_view!(
    /// COMMUNITIES value (RFC 1997).
    Communities, 4, Community, |a| Community(u32::from_be_bytes(*a))
);
chunk_view!(
    /// LARGE_COMMUNITY value (RFC 8092).
    LargeCommunities, 12, LargeCommunity, |a| {
        let [a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3] = *a;
        LargeCommunity {
            global_admin: u32::from_be_bytes([a0, a1, a2, a3]),
            local_data1: u32::from_be_bytes([b0, b1, b2, b3]),
            local_data2: u32::from_be_bytes([c0, c1, c2, c3]),
        }
    }
);
chunk_view!(
    /// EXTENDED COMMUNITIES value (RFC 4360).
    ExtCommunities, 8, ExtCommunity, |a| ExtCommunity(*a)
);
chunk_view!(
    /// IPv6 Address Specific Extended Community value (RFC 5701).
    Ipv6ExtCommunities, 20, Ipv6ExtCommunity, |a| Ipv6ExtCommunity(*a)
);
chunk_view!(
    /// CLUSTER_LIST value (RFC 4456).
    ClusterList, 4, Ipv4Addr, |a| Ipv4Addr::from(*a)
);

/// AIGP value (RFC 7311 §3): TLVs; type 1 carries the metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Aigp<'a> {
    /// The AIGP TLV's metric, if present.
    pub metric: Option<u64>,
    /// The whole value.
    pub value: &'a [u8],
}

impl<'a> Aigp<'a> {
    /// Parses the TLVs. `None` if malformed (RFC 7311 §3.2: a TLV overruns,
    /// a length below 3, an AIGP TLV whose length is not 11, or two AIGP TLVs).
    pub fn parse(value: &'a [u8]) -> Option<Self> {
        let mut rest = value;
        let mut metric = None;
        while let Some((&[ty, l0, l1], r)) = rest.split_first_chunk::<3>() {
            let len = usize::from(u16::from_be_bytes([l0, l1])).checked_sub(3)?;
            let (body, r) = r.split_at_checked(len)?;
            if ty == 1 {
                if metric.is_some() {
                    return None;
                }
                metric = Some(u64::from_be_bytes(*<&[u8; 8]>::try_from(body).ok()?));
            }
            rest = r;
        }
        rest.is_empty().then_some(Self { metric, value })
    }
}

/// A next hop in MP_REACH_NLRI (RFC 4760 §3, RFC 2545 §3, RFC 8950 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NextHop {
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 global address and optionally a link-local one.
    V6 {
        /// Global address.
        global: Ipv6Addr,
        /// Link-local address (32-byte next hop).
        link_local: Option<Ipv6Addr>,
    },
}

impl NextHop {
    /// From a 4-, 16- or 32-byte field.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        if let Ok(a) = <[u8; 4]>::try_from(bytes) {
            return Some(Self::V4(Ipv4Addr::from(a)));
        }
        if let Ok(a) = <[u8; 16]>::try_from(bytes) {
            return Some(Self::V6 {
                global: Ipv6Addr::from(a),
                link_local: None,
            });
        }
        let (g, l) = bytes.split_first_chunk::<16>()?;
        let l = <[u8; 16]>::try_from(l).ok()?;
        Some(Self::V6 {
            global: Ipv6Addr::from(*g),
            link_local: Some(Ipv6Addr::from(l)),
        })
    }
    /// Length on the wire.
    pub const fn wire_len(&self) -> usize {
        match self {
            Self::V4(_) => 4,
            Self::V6 {
                link_local: None, ..
            } => 16,
            Self::V6 { .. } => 32,
        }
    }
}

/// Whether the family's NLRI is IPv4 (`Some(false)`), IPv6 (`Some(true)`),
/// or not decoded here (`None`).
// Through the bit `Families` gives each of the four families: one copy of
// the family match in an image.
pub(crate) const fn family_is_v6(f: AfiSafi) -> Option<bool> {
    match Families::bit(f) {
        0 => None,
        b => Some(b >= Families::IPV6_UNICAST_BIT),
    }
}

pub(crate) fn prefixes_of(family: AfiSafi, nlri: &[u8], add_path: bool) -> Prefixes<'_> {
    match family_is_v6(family) {
        Some(false) => Prefixes::V4(Ipv4Prefixes::new(nlri, add_path)),
        Some(true) => Prefixes::V6(Ipv6Prefixes::new(nlri, add_path)),
        None => Prefixes::Other,
    }
}

/// MP_REACH_NLRI (RFC 4760 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MpReach<'a> {
    /// Family.
    pub family: AfiSafi,
    /// Next hop field, raw.
    pub next_hop: &'a [u8],
    /// NLRI field, raw.
    pub nlri: &'a [u8],
    /// Whether the NLRI carry ADD-PATH identifiers (as negotiated).
    pub add_path: bool,
}

impl<'a> MpReach<'a> {
    /// Splits a value. `None` when it is too short for its fixed fields or
    /// the next hop overruns. `add_path` is looked up in `cfg.add_path_rx`.
    pub fn parse(value: &'a [u8], cfg: &UpdateConfig) -> Option<Self> {
        let (&[a0, a1, safi, nhl], rest) = value.split_first_chunk::<4>()?;
        let family = AfiSafi::new(
            Afi::from_raw(u16::from_be_bytes([a0, a1])),
            Safi::from_raw(safi),
        );
        let (next_hop, rest) = rest.split_at_checked(usize::from(nhl))?;
        // RFC 4760 §3: one Reserved octet, ignored on receipt.
        let (_, nlri) = rest.split_first()?;
        Some(Self {
            family,
            next_hop,
            nlri,
            add_path: cfg.add_path_rx.contains(family),
        })
    }
    /// The next hop, if 4, 16 or 32 bytes long.
    pub fn next_hop(&self) -> Option<NextHop> {
        NextHop::parse(self.next_hop)
    }
    /// The prefixes (IPv4/IPv6 unicast and multicast).
    pub fn prefixes(&self) -> Prefixes<'a> {
        prefixes_of(self.family, self.nlri, self.add_path)
    }
}

/// MP_UNREACH_NLRI (RFC 4760 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MpUnreach<'a> {
    /// Family.
    pub family: AfiSafi,
    /// Withdrawn Routes field, raw.
    pub withdrawn: &'a [u8],
    /// Whether the NLRI carry ADD-PATH identifiers (as negotiated).
    pub add_path: bool,
}

impl<'a> MpUnreach<'a> {
    /// Splits a value; `None` if shorter than AFI + SAFI.
    pub fn parse(value: &'a [u8], cfg: &UpdateConfig) -> Option<Self> {
        let (&[a0, a1, safi], withdrawn) = value.split_first_chunk::<3>()?;
        let family = AfiSafi::new(
            Afi::from_raw(u16::from_be_bytes([a0, a1])),
            Safi::from_raw(safi),
        );
        Some(Self {
            family,
            withdrawn,
            add_path: cfg.add_path_rx.contains(family),
        })
    }
    /// The withdrawn prefixes (IPv4/IPv6 unicast and multicast).
    pub fn prefixes(&self) -> Prefixes<'a> {
        prefixes_of(self.family, self.withdrawn, self.add_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read through `Families::bit`: the four families, and no other.
    #[test]
    fn family_is_v6_for_the_four_families_only() {
        for (f, want) in [
            (AfiSafi::IPV4_UNICAST, Some(false)),
            (AfiSafi::IPV4_MULTICAST, Some(false)),
            (AfiSafi::IPV6_UNICAST, Some(true)),
            (AfiSafi::IPV6_MULTICAST, Some(true)),
            (AfiSafi::new(Afi::Ipv6, Safi::MplsVpn), None),
            (AfiSafi::new(Afi::L2vpn, Safi::Evpn), None),
            (AfiSafi::new(Afi::Unknown(3), Safi::Unicast), None),
        ] {
            assert_eq!(family_is_v6(f), want, "{f:?}");
        }
    }
}
