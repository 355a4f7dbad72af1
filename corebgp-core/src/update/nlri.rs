//! Prefixes in NLRI fields (RFC 4271 §4.3, RFC 4760 §5), with optional
//! ADD-PATH identifiers (RFC 7911 §3).

use core::net::{Ipv4Addr, Ipv6Addr};

/// An IPv4 prefix. Bits past the length are zero (RFC 4271 §4.3: trailing
/// bits are irrelevant; they are masked on decoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ipv4Prefix {
    addr: Ipv4Addr,
    len: u8,
}

impl Ipv4Prefix {
    /// A prefix; host bits are masked. `None` if `len > 32`.
    pub const fn new(addr: Ipv4Addr, len: u8) -> Option<Self> {
        if len > 32 {
            return None;
        }
        let bits = addr.to_bits() & mask32(len);
        Some(Self {
            addr: Ipv4Addr::from_bits(bits),
            len,
        })
    }
    /// The network address.
    pub const fn addr(&self) -> Ipv4Addr {
        self.addr
    }
    /// The prefix length.
    pub const fn len(&self) -> u8 {
        self.len
    }
    /// Whether this is the zero-length prefix (default route).
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// An IPv6 prefix, host bits masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Ipv6Prefix {
    addr: Ipv6Addr,
    len: u8,
}

impl Ipv6Prefix {
    /// A prefix; host bits are masked. `None` if `len > 128`.
    pub const fn new(addr: Ipv6Addr, len: u8) -> Option<Self> {
        if len > 128 {
            return None;
        }
        let bits = addr.to_bits() & mask128(len);
        Some(Self {
            addr: Ipv6Addr::from_bits(bits),
            len,
        })
    }
    /// The network address.
    pub const fn addr(&self) -> Ipv6Addr {
        self.addr
    }
    /// The prefix length.
    pub const fn len(&self) -> u8 {
        self.len
    }
    /// Whether this is the zero-length prefix (default route).
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// An IPv4 or IPv6 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Prefix {
    /// IPv4.
    V4(Ipv4Prefix),
    /// IPv6.
    V6(Ipv6Prefix),
}

impl Prefix {
    /// The prefix length.
    pub const fn len(&self) -> u8 {
        match self {
            Self::V4(p) => p.len,
            Self::V6(p) => p.len,
        }
    }
    /// Whether this is a zero-length prefix.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether this is an IPv6 prefix.
    pub const fn is_ipv6(&self) -> bool {
        matches!(self, Self::V6(_))
    }
    /// Bytes on the wire after the length byte.
    pub(crate) fn wire_bytes(&self) -> ([u8; 16], usize) {
        let mut out = [0u8; 16];
        let n = usize::from(self.len()).div_ceil(8);
        match self {
            Self::V4(p) => {
                if let Some(dst) = out.get_mut(..4) {
                    dst.copy_from_slice(&p.addr.octets());
                }
            }
            Self::V6(p) => out = p.addr.octets(),
        }
        (out, n)
    }
}

impl From<Ipv4Prefix> for Prefix {
    fn from(p: Ipv4Prefix) -> Self {
        Self::V4(p)
    }
}
impl From<Ipv6Prefix> for Prefix {
    fn from(p: Ipv6Prefix) -> Self {
        Self::V6(p)
    }
}

impl core::fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}
impl core::fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}
impl core::fmt::Display for Prefix {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::V4(p) => p.fmt(f),
            Self::V6(p) => p.fmt(f),
        }
    }
}

/// One NLRI entry: a prefix and, with ADD-PATH, its path identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Nlri<P = Prefix> {
    /// ADD-PATH path identifier (RFC 7911 §3), when negotiated.
    pub path_id: Option<u32>,
    /// The prefix.
    pub prefix: P,
}

impl<P> Nlri<P> {
    /// An entry without path identifier.
    pub const fn new(prefix: P) -> Self {
        Self {
            path_id: None,
            prefix,
        }
    }
}

#[inline(always)]
const fn mask32(len: u8) -> u32 {
    match u32::MAX.checked_shl(32 - len as u32) {
        Some(m) => m,
        None => 0,
    }
}

#[inline(always)]
const fn mask128(len: u8) -> u128 {
    match u128::MAX.checked_shl(128 - len as u32) {
        Some(m) => m,
        None => 0,
    }
}

/// Why an NLRI field is malformed (RFC 7606 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PrefixError {
    /// A prefix length exceeds 32 (IPv4) or 128 (IPv6).
    Length,
    /// The field ends inside a path identifier or a prefix.
    Truncated,
}

#[inline(always)]
fn split_path_id(rest: &[u8]) -> Result<(u32, &[u8]), PrefixError> {
    let (id, r) = rest
        .split_first_chunk::<4>()
        .ok_or(PrefixError::Truncated)?;
    Ok((u32::from_be_bytes(*id), r))
}

/// Reads one IPv4 prefix off the front.
#[inline(always)]
pub(crate) fn split_v4(rest: &[u8]) -> Result<(Ipv4Prefix, &[u8]), PrefixError> {
    let (&len, r) = rest.split_first().ok_or(PrefixError::Truncated)?;
    let n = (usize::from(len) + 7) >> 3;
    let (bytes, r) = r.split_at_checked(n).ok_or(PrefixError::Truncated)?;
    let bits = match *bytes {
        [] => 0,
        [a] => u32::from(a) << 24,
        [a, b] => u32::from_be_bytes([a, b, 0, 0]),
        [a, b, c] => u32::from_be_bytes([a, b, c, 0]),
        [a, b, c, d] if len <= 32 => u32::from_be_bytes([a, b, c, d]),
        _ => return Err(PrefixError::Length),
    };
    Ok((
        Ipv4Prefix {
            addr: Ipv4Addr::from_bits(bits & mask32(len)),
            len,
        },
        r,
    ))
}

/// Reads one IPv6 prefix off the front.
#[inline(always)]
pub(crate) fn split_v6(rest: &[u8]) -> Result<(Ipv6Prefix, &[u8]), PrefixError> {
    let (&len, r) = rest.split_first().ok_or(PrefixError::Truncated)?;
    if len > 128 {
        return Err(PrefixError::Length);
    }
    let n = (usize::from(len) + 7) >> 3;
    let (bytes, r) = r.split_at_checked(n).ok_or(PrefixError::Truncated)?;
    let mut o = [0u8; 16];
    if let Some(dst) = o.get_mut(..n) {
        dst.copy_from_slice(bytes);
    }
    // Host bits only in the last byte read: mask that byte rather than the
    // whole address as a u128, which a 32-bit target shifts in four words.
    if let Some(last) = o.get_mut(n.wrapping_sub(1)) {
        *last &= 0xffu8 << ((8 - len % 8) % 8);
    }
    Ok((
        Ipv6Prefix {
            addr: Ipv6Addr::from(o),
            len,
        },
        r,
    ))
}

/// What [`validate`] returns for a malformed field (RFC 7606 §5.3): a
/// count no field reaches, each entry taking at least a byte.
pub(crate) const MALFORMED: u32 = u32::MAX;

/// Checks an NLRI field and counts its entries; [`MALFORMED`] if it is not
/// well formed. A bare count rather than a `Result`: it comes back in a
/// register on 32-bit targets, not through memory.
pub(crate) fn validate(rest: &[u8], ipv6: bool, add_path: bool) -> u32 {
    count(rest, ipv6, add_path).unwrap_or(MALFORMED)
}

#[inline(always)]
fn count(mut rest: &[u8], ipv6: bool, add_path: bool) -> Option<u32> {
    let max = if ipv6 { 128 } else { 32 };
    let mut n = 0u32;
    while !rest.is_empty() {
        if add_path {
            rest = rest.get(4..)?;
        }
        let (&len, r) = rest.split_first()?;
        if len > max {
            return None;
        }
        rest = r.get(usize::from(len).div_ceil(8)..)?;
        n += 1;
    }
    Some(n)
}

macro_rules! prefix_iter {
    ($(#[$m:meta])* $name:ident, $prefix:ty, $split:ident) => {
        $(#[$m])*
        ///
        /// Yields `Err` once on a malformed entry, then stops. After
        /// [`Update::parse`](super::Update::parse) has accepted the field it
        /// yields no error.
        #[derive(Debug, Clone)]
        pub struct $name<'a> {
            rest: &'a [u8],
            add_path: bool,
        }

        impl<'a> $name<'a> {
            /// Iterates over a field; `add_path`: entries carry a 4-byte
            /// path identifier (RFC 7911 §3).
            pub const fn new(field: &'a [u8], add_path: bool) -> Self {
                Self { rest: field, add_path }
            }
            /// What is left to read.
            pub const fn remainder(&self) -> &'a [u8] {
                self.rest
            }
        }

        impl<'a> Iterator for $name<'a> {
            type Item = Result<Nlri<$prefix>, PrefixError>;

            #[inline]
            fn next(&mut self) -> Option<Self::Item> {
                if self.rest.is_empty() {
                    return None;
                }
                let mut path_id = None;
                let mut rest = self.rest;
                if self.add_path {
                    match split_path_id(rest) {
                        Ok((id, r)) => {
                            path_id = Some(id);
                            rest = r;
                        }
                        Err(e) => {
                            self.rest = &[];
                            return Some(Err(e));
                        }
                    }
                }
                match $split(rest) {
                    Ok((prefix, r)) => {
                        self.rest = r;
                        Some(Ok(Nlri { path_id, prefix }))
                    }
                    Err(e) => {
                        self.rest = &[];
                        Some(Err(e))
                    }
                }
            }
        }
    };
}

prefix_iter!(
    /// An iterator over an IPv4 NLRI field.
    Ipv4Prefixes, Ipv4Prefix, split_v4
);
prefix_iter!(
    /// An iterator over an IPv6 NLRI field.
    Ipv6Prefixes, Ipv6Prefix, split_v6
);

/// An iterator over the NLRI of any family: typed prefixes for IPv4 and
/// IPv6 (unicast and multicast), nothing for other families (their raw
/// NLRI stays available on [`MpReach`](super::MpReach)/[`MpUnreach`](super::MpUnreach)).
#[derive(Debug, Clone)]
pub enum Prefixes<'a> {
    /// IPv4.
    V4(Ipv4Prefixes<'a>),
    /// IPv6.
    V6(Ipv6Prefixes<'a>),
    /// A family whose NLRI this module does not decode.
    Other,
}

impl Iterator for Prefixes<'_> {
    type Item = Result<Nlri, PrefixError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        // One copy of the entry loop for both families; only the prefix
        // read differs.
        let (rest, add_path, v6) = match self {
            Self::V4(i) => (&mut i.rest, i.add_path, false),
            Self::V6(i) => (&mut i.rest, i.add_path, true),
            Self::Other => return None,
        };
        if rest.is_empty() {
            return None;
        }
        match split_entry(rest, add_path, v6) {
            Ok((n, r)) => {
                *rest = r;
                Some(Ok(n))
            }
            Err(e) => {
                *rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Reads one entry (path identifier if `add_path`, then an IPv4 or IPv6
/// prefix) off the front.
#[inline(always)]
fn split_entry(rest: &[u8], add_path: bool, v6: bool) -> Result<(Nlri, &[u8]), PrefixError> {
    let (path_id, rest) = if add_path {
        let (id, r) = split_path_id(rest)?;
        (Some(id), r)
    } else {
        (None, rest)
    };
    let (prefix, rest) = if v6 {
        let (p, r) = split_v6(rest)?;
        (Prefix::V6(p), r)
    } else {
        let (p, r) = split_v4(rest)?;
        (Prefix::V4(p), r)
    };
    Ok((Nlri { path_id, prefix }, rest))
}

/// Reads one entry (path identifier if `add_path`, then an IPv4 or IPv6
/// prefix) off the front of a checked field; `None` at its end (or at a
/// malformed entry). One byte-wise read for both families: the IPv4 address
/// is the first four bytes of the IPv6 one.
#[inline(always)]
pub(crate) fn read_entry(rest: &[u8], add_path: bool, v6: bool) -> Option<(Nlri, &[u8])> {
    let (path_id, rest) = if add_path {
        let (id, r) = rest.split_first_chunk::<4>()?;
        (Some(u32::from_be_bytes(*id)), r)
    } else {
        (None, rest)
    };
    let (&len, r) = rest.split_first()?;
    if len > if v6 { 128 } else { 32 } {
        return None;
    }
    let n = (usize::from(len) + 7) >> 3;
    let (bytes, r) = r.split_at_checked(n)?;
    let mut o = [0u8; 16];
    // A byte loop: no length-mismatch path, no memcpy call for a few bytes.
    for (d, s) in o.iter_mut().zip(bytes) {
        *d = *s;
    }
    // RFC 4271 §4.3: host bits are irrelevant; they are in the last byte.
    if let Some(last) = o.get_mut(n.wrapping_sub(1)) {
        *last &= 0xffu8 << ((8 - len % 8) % 8);
    }
    let prefix = if v6 {
        Prefix::V6(Ipv6Prefix {
            addr: Ipv6Addr::from(o),
            len,
        })
    } else {
        let [a, b, c, d, ..] = o;
        Prefix::V4(Ipv4Prefix {
            addr: Ipv4Addr::new(a, b, c, d),
            len,
        })
    };
    Some((Nlri { path_id, prefix }, r))
}

/// An NLRI iterator over a field already checked by
/// [`Update::parse`](super::Update::parse): yields the entries themselves
/// (it would stop at a malformed entry, which a checked field has none of).
#[derive(Debug, Clone)]
pub struct Checked<I> {
    inner: I,
    remaining: usize,
}

impl<I> Checked<I> {
    pub(crate) const fn new(inner: I, count: u32) -> Self {
        Self {
            inner,
            remaining: count as usize,
        }
    }
}

impl<T, I: Iterator<Item = Result<T, PrefixError>>> Iterator for Checked<I> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        match self.inner.next() {
            Some(Ok(v)) => {
                self.remaining = self.remaining.saturating_sub(1);
                Some(v)
            }
            _ => None,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T, I: Iterator<Item = Result<T, PrefixError>>> ExactSizeIterator for Checked<I> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_host_bits_are_masked_at_every_length() {
        for len in 0..=128u8 {
            let mut field = [0xffu8; 17];
            field[0] = len;
            let n = usize::from(len).div_ceil(8);
            let got = Ipv6Prefixes::new(&field[..=n], false)
                .next()
                .unwrap()
                .unwrap()
                .prefix;
            let want = Ipv6Prefix::new(Ipv6Addr::from_bits(u128::MAX), len).unwrap();
            assert_eq!(got, want, "/{len}");
        }
    }
}
