//! Raw path attributes (RFC 4271 §4.3): flags, type code, value.

/// Path attribute type codes (IANA "BGP Path Attributes").
#[derive(Debug, Clone, Copy)]
pub struct AttrType;

impl AttrType {
    /// ORIGIN (RFC 4271).
    pub const ORIGIN: u8 = 1;
    /// AS_PATH (RFC 4271).
    pub const AS_PATH: u8 = 2;
    /// NEXT_HOP (RFC 4271).
    pub const NEXT_HOP: u8 = 3;
    /// MULTI_EXIT_DISC (RFC 4271).
    pub const MED: u8 = 4;
    /// LOCAL_PREF (RFC 4271).
    pub const LOCAL_PREF: u8 = 5;
    /// ATOMIC_AGGREGATE (RFC 4271).
    pub const ATOMIC_AGGREGATE: u8 = 6;
    /// AGGREGATOR (RFC 4271).
    pub const AGGREGATOR: u8 = 7;
    /// COMMUNITIES (RFC 1997).
    pub const COMMUNITIES: u8 = 8;
    /// ORIGINATOR_ID (RFC 4456).
    pub const ORIGINATOR_ID: u8 = 9;
    /// CLUSTER_LIST (RFC 4456).
    pub const CLUSTER_LIST: u8 = 10;
    /// MP_REACH_NLRI (RFC 4760).
    pub const MP_REACH_NLRI: u8 = 14;
    /// MP_UNREACH_NLRI (RFC 4760).
    pub const MP_UNREACH_NLRI: u8 = 15;
    /// EXTENDED COMMUNITIES (RFC 4360).
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    /// AS4_PATH (RFC 6793).
    pub const AS4_PATH: u8 = 17;
    /// AS4_AGGREGATOR (RFC 6793).
    pub const AS4_AGGREGATOR: u8 = 18;
    /// Traffic Engineering (RFC 5543).
    pub const TRAFFIC_ENGINEERING: u8 = 24;
    /// IPv6 Address Specific Extended Community (RFC 5701).
    pub const IPV6_EXTENDED_COMMUNITIES: u8 = 25;
    /// AIGP (RFC 7311).
    pub const AIGP: u8 = 26;
    /// LARGE_COMMUNITY (RFC 8092).
    pub const LARGE_COMMUNITY: u8 = 32;
    /// Only to Customer (RFC 9234).
    pub const OTC: u8 = 35;
    /// ATTR_SET (RFC 6368).
    pub const ATTR_SET: u8 = 128;
}

/// The Attribute Flags octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AttrFlags(pub u8);

impl AttrFlags {
    /// Optional bit.
    pub const OPTIONAL: u8 = 0x80;
    /// Transitive bit.
    pub const TRANSITIVE: u8 = 0x40;
    /// Partial bit.
    pub const PARTIAL: u8 = 0x20;
    /// Extended Length bit.
    pub const EXTENDED_LENGTH: u8 = 0x10;

    /// Well-known: transitive, not optional.
    pub const WELL_KNOWN: Self = Self(Self::TRANSITIVE);
    /// Optional transitive.
    pub const OPTIONAL_TRANSITIVE: Self = Self(Self::OPTIONAL | Self::TRANSITIVE);
    /// Optional non-transitive.
    pub const OPTIONAL_NON_TRANSITIVE: Self = Self(Self::OPTIONAL);

    /// Optional bit set.
    pub const fn optional(self) -> bool {
        self.0 & Self::OPTIONAL != 0
    }
    /// Transitive bit set.
    pub const fn transitive(self) -> bool {
        self.0 & Self::TRANSITIVE != 0
    }
    /// Partial bit set.
    pub const fn partial(self) -> bool {
        self.0 & Self::PARTIAL != 0
    }
    /// Extended Length bit set.
    pub const fn extended_length(self) -> bool {
        self.0 & Self::EXTENDED_LENGTH != 0
    }
}

/// One path attribute as found on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RawAttribute<'a> {
    /// Flags.
    pub flags: AttrFlags,
    /// Type code.
    pub type_code: u8,
    /// Value (after the length field).
    pub value: &'a [u8],
    /// The whole attribute: flags, type, length and value (the NOTIFICATION
    /// data of RFC 4271 §6.3). For a builder input, may be empty.
    pub raw: &'a [u8],
}

impl<'a> RawAttribute<'a> {
    /// An attribute to hand to the builder: written as flags, type, length
    /// (the Extended Length bit is set as the length needs), value.
    pub const fn new(flags: AttrFlags, type_code: u8, value: &'a [u8]) -> Self {
        Self {
            flags,
            type_code,
            value,
            raw: &[],
        }
    }
}

/// Reads one attribute off the front of `bytes`. `None` when the header is cut
/// short or the value overruns (RFC 7606 §4).
#[inline(always)]
pub(crate) fn split_attribute(bytes: &[u8]) -> Option<(RawAttribute<'_>, &[u8])> {
    let (&[flags, type_code], after) = bytes.split_first_chunk::<2>()?;
    let (len, after) = if flags & AttrFlags::EXTENDED_LENGTH != 0 {
        let (l, a) = after.split_first_chunk::<2>()?;
        (usize::from(u16::from_be_bytes(*l)), a)
    } else {
        let (&l, a) = after.split_first()?;
        (usize::from(l), a)
    };
    let (value, rest) = after.split_at_checked(len)?;
    let raw = bytes.get(..bytes.len() - rest.len())?;
    Some((
        RawAttribute {
            flags: AttrFlags(flags),
            type_code,
            value,
            raw,
        },
        rest,
    ))
}

/// An iterator over the path attributes. Yields `Err(rest)` once, with the
/// unparseable remainder, if an attribute header is cut short or a length
/// overruns the section (RFC 7606 §4), then stops.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Attributes<'a> {
    /// Iterates over a Path Attributes section.
    pub const fn new(attributes: &'a [u8]) -> Self {
        Self { rest: attributes }
    }

    /// The first attribute of type `type_code`, if the list is well formed up
    /// to it (RFC 7606 §3 g: only the first occurrence counts).
    pub fn find(self, type_code: u8) -> Option<RawAttribute<'a>> {
        self.map_while(Result::ok)
            .find(|a| a.type_code == type_code)
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<RawAttribute<'a>, &'a [u8]>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match split_attribute(self.rest) {
            Some((a, rest)) => {
                self.rest = rest;
                Some(Ok(a))
            }
            None => Some(Err(core::mem::take(&mut self.rest))),
        }
    }
}

/// A set of attribute type codes (256 bits).
// Eight 32-bit words rather than two u128: a 32-bit target tests and sets a
// bit in one word instead of shifting across four.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AttrSet([u32; 8]);

impl AttrSet {
    /// The empty set.
    pub const EMPTY: Self = Self([0; 8]);

    /// Whether `type_code` is in the set.
    #[inline]
    pub const fn contains(&self, type_code: u8) -> bool {
        // `get` is not const; the split is, and folds to an indexed load.
        match self
            .0
            .as_slice()
            .split_at_checked((type_code >> 5) as usize)
        {
            Some((_, [w, ..])) => *w & (1 << (type_code & 31)) != 0,
            _ => false,
        }
    }

    /// Adds `type_code`; returns whether it was new.
    #[inline]
    pub fn insert(&mut self, type_code: u8) -> bool {
        let bit = 1u32 << (type_code & 31);
        let Some(word) = self.0.get_mut(usize::from(type_code >> 5)) else {
            return false;
        };
        let new = *word & bit == 0;
        *word |= bit;
        new
    }

    /// Whether the set is empty.
    pub const fn is_empty(&self) -> bool {
        // An OR of the words: Cortex-M has no popcount instruction.
        let [a, b, c, d, e, f, g, h] = self.0;
        a | b | c | d | e | f | g | h == 0
    }

    /// The lowest of the type codes below 32 set in `wanted` (a mask, bit
    /// `t` for type `t`) that is not in the set.
    #[inline]
    pub(crate) const fn first_absent(&self, wanted: u32) -> Option<u8> {
        let absent = wanted & !self.0[0];
        if absent == 0 {
            None
        } else {
            Some(absent.trailing_zeros() as u8)
        }
    }

    /// The set without `type_code`.
    pub(crate) fn without(mut self, type_code: u8) -> Self {
        if let Some(word) = self.0.get_mut(usize::from(type_code >> 5)) {
            *word &= !(1u32 << (type_code & 31));
        }
        self
    }

    /// Number of type codes in the set.
    pub const fn len(&self) -> u32 {
        let [a, b, c, d, e, f, g, h] = self.0;
        a.count_ones()
            + b.count_ones()
            + c.count_ones()
            + d.count_ones()
            + e.count_ones()
            + f.count_ones()
            + g.count_ones()
            + h.count_ones()
    }

    /// The type codes, ascending.
    pub fn iter(self) -> impl Iterator<Item = u8> {
        (0..=255u8).filter(move |&t| self.contains(t))
    }
}
