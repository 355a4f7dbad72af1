//! Registry values shared by several messages: AFI and SAFI.

/// Declares an "open" enum over an integer registry: named variants for the
/// registered values and `Unknown(raw)` for the rest, so that no value read off
/// the wire is lost. Equality and hashing go by the raw value, so
/// `Unknown(1)` equals the variant registered as 1.
macro_rules! open_enum {
    // Each variant's discriminant is its registry value, so that `to_raw` is
    // a tag load and `from_raw` a set test rather than jump tables. `Unknown`
    // takes the next discriminant after the last variant (the compiler rejects
    // a duplicate): for a registry numbered from 0 that is also its
    // declaration index, which the defmt derive encodes.
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $repr:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[repr($repr)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant = $value, )*
            /// A value with no variant of its own, kept as read.
            Unknown($repr),
        }
        $crate::wire::types::open_enum!(@impl $name : $repr { $( $variant = $value, )* });
    };
    // `sparse`: registry values too far apart to serve as tags (the niche
    // past the largest one would make every enclosing enum's tags wide
    // immediates), so the tags stay declaration indices.
    (
        sparse;
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $repr:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value with no variant of its own, kept as read.
            Unknown($repr),
        }
        $crate::wire::types::open_enum!(@impl $name : $repr { $( $variant = $value, )* });
    };
    (@impl $name:ident : $repr:ty { $( $variant:ident = $value:expr, )* }) => {
        impl $name {
            /// The variant for a raw registry value.
            #[inline]
            pub const fn from_raw(v: $repr) -> Self {
                match v {
                    $( $value => Self::$variant, )*
                    other => Self::Unknown(other),
                }
            }
            /// The raw registry value.
            #[inline]
            pub const fn to_raw(self) -> $repr {
                match self {
                    $( Self::$variant => $value, )*
                    Self::Unknown(v) => v,
                }
            }
        }

        impl From<$repr> for $name {
            #[inline]
            fn from(v: $repr) -> Self { Self::from_raw(v) }
        }
        impl From<$name> for $repr {
            #[inline]
            fn from(v: $name) -> Self { v.to_raw() }
        }
        impl PartialEq for $name {
            #[inline]
            fn eq(&self, other: &Self) -> bool { self.to_raw() == other.to_raw() }
        }
        impl Eq for $name {}
        impl core::hash::Hash for $name {
            fn hash<H: core::hash::Hasher>(&self, state: &mut H) { self.to_raw().hash(state) }
        }
        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> { Some(self.cmp(other)) }
        }
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> core::cmp::Ordering { self.to_raw().cmp(&other.to_raw()) }
        }
    };
}
pub(crate) use open_enum;

open_enum! {
    sparse;
    /// Address Family Identifier (IANA "Address Family Numbers").
    pub enum Afi: u16 {
        /// IPv4.
        Ipv4 = 1,
        /// IPv6.
        Ipv6 = 2,
        /// Layer-2 VPN (RFC 4761, RFC 7432).
        L2vpn = 25,
        /// BGP-LS (RFC 9552).
        BgpLs = 16388,
    }
}

open_enum! {
    /// Subsequent Address Family Identifier (IANA "SAFI Values").
    pub enum Safi: u8 {
        /// Unicast forwarding (RFC 4760).
        Unicast = 1,
        /// Multicast forwarding (RFC 4760).
        Multicast = 2,
        /// NLRI with MPLS labels (RFC 8277).
        MplsLabel = 4,
        /// VPLS (RFC 4761).
        Vpls = 65,
        /// EVPN (RFC 7432).
        Evpn = 70,
        /// BGP-LS (RFC 9552).
        BgpLs = 71,
        /// MPLS-labeled VPN address (RFC 4364).
        MplsVpn = 128,
        /// Route Target constraint (RFC 4684).
        RouteTarget = 132,
        /// Flow specification (RFC 8955).
        FlowSpec = 133,
        /// VPN flow specification (RFC 8955).
        FlowSpecVpn = 134,
    }
}

/// An AFI/SAFI pair: one address family as negotiated by multiprotocol BGP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AfiSafi {
    /// Address family.
    pub afi: Afi,
    /// Subsequent address family.
    pub safi: Safi,
}

impl AfiSafi {
    /// IPv4 unicast, the family of RFC 4271's own NLRI fields.
    pub const IPV4_UNICAST: Self = Self::new(Afi::Ipv4, Safi::Unicast);
    /// IPv6 unicast.
    pub const IPV6_UNICAST: Self = Self::new(Afi::Ipv6, Safi::Unicast);
    /// IPv4 multicast.
    pub const IPV4_MULTICAST: Self = Self::new(Afi::Ipv4, Safi::Multicast);
    /// IPv6 multicast.
    pub const IPV6_MULTICAST: Self = Self::new(Afi::Ipv6, Safi::Multicast);

    /// A pair.
    #[inline]
    pub const fn new(afi: Afi, safi: Safi) -> Self {
        Self { afi, safi }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_enum_round_trips_and_compares_by_value() {
        for v in 0..=u8::MAX {
            assert_eq!(Safi::from_raw(v).to_raw(), v);
        }
        assert_eq!(Afi::Unknown(1), Afi::Ipv4);
        assert_eq!(Afi::from_raw(2), Afi::Ipv6);
        assert_eq!(Afi::from_raw(7), Afi::Unknown(7));
        assert!(matches!(Afi::from_raw(7), Afi::Unknown(7)));
        assert_eq!(u16::from(Afi::BgpLs), 16388);
        // Registry discriminants: `Unknown` still equals and orders as the
        // variant with its value.
        assert_eq!(Safi::Unknown(134), Safi::FlowSpecVpn);
        assert_eq!(Safi::Unknown(135).to_raw(), 135);
        assert!(Safi::Unknown(3) < Safi::MplsLabel && Safi::Unknown(255) > Safi::FlowSpecVpn);
        for v in 0..=u16::MAX {
            assert_eq!(Afi::from_raw(v).to_raw(), v);
        }
    }
}
