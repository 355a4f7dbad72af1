//! What was negotiated on the session, as far as UPDATE encoding cares.

use crate::wire::{Afi, AfiSafi, Safi};

/// A set of the address families whose NLRI this module decodes into
/// prefixes: IPv4 and IPv6, unicast and multicast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Families(u8);

impl Families {
    /// No family.
    pub const NONE: Self = Self(0);
    /// All four families.
    pub const ALL: Self = Self(0b1111);

    /// The bit of IPv6 unicast; IPv6 multicast's is above it, the IPv4
    /// families' below.
    pub(crate) const IPV6_UNICAST_BIT: u8 = 4;

    /// The family's bit in the set; 0 for the families not decoded here.
    pub(crate) const fn bit(family: AfiSafi) -> u8 {
        match (family.afi, family.safi) {
            (Afi::Ipv4, Safi::Unicast) => 1,
            (Afi::Ipv4, Safi::Multicast) => 2,
            (Afi::Ipv6, Safi::Unicast) => Self::IPV6_UNICAST_BIT,
            (Afi::Ipv6, Safi::Multicast) => 8,
            _ => 0,
        }
    }

    /// This set plus `family` (families other than the four are ignored).
    #[must_use]
    pub const fn with(self, family: AfiSafi) -> Self {
        Self(self.0 | Self::bit(family))
    }

    /// Whether `family` is in the set.
    #[inline]
    pub const fn contains(self, family: AfiSafi) -> bool {
        let b = Self::bit(family);
        b != 0 && self.0 & b != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// The relation to the peer, where RFC 7606 makes the verdict depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PeerType {
    /// Not known (e.g. decoding an MRT dump): no check that depends on the
    /// peer is made.
    #[default]
    Unspecified,
    /// An internal (iBGP) peer.
    Internal,
    /// An external peer outside our confederation: LOCAL_PREF is discarded
    /// (RFC 7606 §7.5) and confederation segments make the AS_PATH malformed
    /// (RFC 7606 §7.2, RFC 5065 §5).
    External,
    /// An external peer in the same confederation (RFC 5065).
    ConfederationExternal,
}

/// The negotiated session parameters the UPDATE codec needs. Small and
/// `Copy`: build one when the session reaches Established and keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UpdateConfig {
    /// Both sides advertised the 4-octet AS capability (RFC 6793): AS_PATH
    /// and AGGREGATOR carry 4-octet AS numbers, AS4_PATH/AS4_AGGREGATOR are
    /// neither sent nor used.
    pub four_octet_as: bool,
    /// Families for which we receive ADD-PATH identifiers (RFC 7911 §4: we
    /// advertised Receive and the peer Send).
    pub add_path_rx: Families,
    /// Families for which we send ADD-PATH identifiers (we advertised Send and
    /// the peer Receive).
    pub add_path_tx: Families,
    /// IPv4 families for which an IPv6 next hop is allowed (RFC 8950).
    pub extended_next_hop: Families,
    /// The relation to the peer.
    pub peer: PeerType,
    /// Maximum message length for the builder: 4096, or up to 65535 with
    /// RFC 8654 Extended Messages.
    pub max_message_len: u16,
}

impl Default for UpdateConfig {
    /// 4-octet AS, no ADD-PATH, no extended next hop, peer unspecified,
    /// 4096-byte messages.
    fn default() -> Self {
        Self::new()
    }
}

impl UpdateConfig {
    /// The default: 4-octet AS, no ADD-PATH, no extended next hop, peer
    /// unspecified, 4096-byte messages.
    pub const fn new() -> Self {
        Self {
            four_octet_as: true,
            add_path_rx: Families::NONE,
            add_path_tx: Families::NONE,
            extended_next_hop: Families::NONE,
            peer: PeerType::Unspecified,
            max_message_len: crate::wire::MAX_MESSAGE_LEN as u16,
        }
    }
}
