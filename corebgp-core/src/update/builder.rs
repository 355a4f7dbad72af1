//! The UPDATE builder: writes into a caller buffer, packs prefixes up to the
//! negotiated maximum message length and says where it stopped.

use core::net::Ipv4Addr;

use super::attr::{AttrFlags, AttrType, RawAttribute};
use super::config::UpdateConfig;
use super::nlri::{Ipv4Prefix, Nlri, Prefix};
use super::values::{
    AS_TRANS, Aggregator, AsSegment, Community, ExtCommunity, Ipv6ExtCommunity, LargeCommunity,
    NextHop, Origin, SegmentType,
};
use crate::wire::{
    Afi, AfiSafi, EncodeError, HEADER_LEN, MessageType, Safi, Writer, encode_header,
};

/// Why the builder refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BuildError {
    /// The buffer or the maximum message length cannot hold what was asked
    /// (not even the attributes, or not even an empty UPDATE).
    Encode(EncodeError),
    /// Calls out of order: `withdraw`, then `withdraw_mp`, then `announce`,
    /// each at most once.
    Order,
    /// A prefix of the wrong address family for the AFI/SAFI.
    Family,
    /// No usable next hop: IPv4 unicast NLRI need an IPv4 next hop (or an
    /// IPv6 one with RFC 8950 negotiated); MP_REACH_NLRI needs one.
    NextHop,
    /// An AS_SET or AS_CONFED_SET with more than 255 members.
    SetTooLong,
}

impl From<EncodeError> for BuildError {
    fn from(e: EncodeError) -> Self {
        Self::Encode(e)
    }
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Encode(e) => e.fmt(f),
            Self::Order => f.write_str("UPDATE builder calls out of order"),
            Self::Family => f.write_str("prefix of the wrong address family"),
            Self::NextHop => f.write_str("no usable next hop for the family"),
            Self::SetTooLong => f.write_str("AS_SET with more than 255 members"),
        }
    }
}

impl core::error::Error for BuildError {}

/// The path attributes to write. Empty slices and `None` are left out.
/// NEXT_HOP (IPv4 unicast) or the MP_REACH_NLRI next hop both come from
/// `next_hop`. AS4_PATH and AS4_AGGREGATOR are generated when the session
/// is 2-octet (RFC 6793 §4.2.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PathAttributes<'a> {
    /// ORIGIN.
    pub origin: Option<Origin>,
    /// AS_PATH; `Some(&[])` is an empty AS_PATH (iBGP origination).
    pub as_path: Option<&'a [AsSegment<'a>]>,
    /// The next hop.
    pub next_hop: Option<NextHop>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// ATOMIC_AGGREGATE.
    pub atomic_aggregate: bool,
    /// AGGREGATOR.
    pub aggregator: Option<Aggregator>,
    /// COMMUNITIES.
    pub communities: &'a [Community],
    /// ORIGINATOR_ID.
    pub originator_id: Option<Ipv4Addr>,
    /// CLUSTER_LIST.
    pub cluster_list: &'a [Ipv4Addr],
    /// EXTENDED COMMUNITIES.
    pub ext_communities: &'a [ExtCommunity],
    /// IPv6 Address Specific Extended Communities.
    pub ipv6_ext_communities: &'a [Ipv6ExtCommunity],
    /// AIGP metric.
    pub aigp: Option<u64>,
    /// LARGE_COMMUNITY.
    pub large_communities: &'a [LargeCommunity],
    /// Only to Customer.
    pub otc: Option<u32>,
    /// Further attributes written as given (flags, type, value), e.g.
    /// unknown transitive ones passed on.
    pub other: &'a [RawAttribute<'a>],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Withdrawn,
    Attributes,
    Done,
}

/// Writes one UPDATE into a caller buffer.
///
/// Call [`withdraw`](Self::withdraw) (IPv4 unicast Withdrawn Routes),
/// [`withdraw_mp`](Self::withdraw_mp) (MP_UNREACH_NLRI),
/// [`announce`](Self::announce) (attributes plus NLRI or MP_REACH_NLRI), each
/// optional and at most once, in this order, then [`finish`](Self::finish).
/// Each packing call returns how many entries fit; the caller sends the
/// message and starts the next one from there.
///
/// ```
/// use corebgp_core::update::*;
/// use core::net::Ipv4Addr;
///
/// let routes: Vec<Nlri<Ipv4Prefix>> = (0..2000u32)
///     .map(|i| Nlri::new(Ipv4Prefix::new(Ipv4Addr::from_bits(0x0a00_0000 | (i << 8)), 24).unwrap()))
///     .collect();
/// let attrs = PathAttributes {
///     origin: Some(Origin::Igp),
///     as_path: Some(&[AsSegment { kind: SegmentType::Sequence, asns: &[65001] }]),
///     next_hop: Some(NextHop::V4(Ipv4Addr::new(192, 0, 2, 1))),
///     ..Default::default()
/// };
/// let cfg = UpdateConfig::default();
/// let mut buf = [0u8; 4096];
/// let mut rest = &routes[..];
/// let mut messages = 0;
/// while !rest.is_empty() {
///     let mut b = UpdateBuilder::new(&mut buf, &cfg).unwrap();
///     let n = b.announce(&attrs, AfiSafi::IPV4_UNICAST, rest).unwrap();
///     let len = b.finish().unwrap();
///     // send &buf[..len]
///     rest = &rest[n..];
///     messages += 1;
/// }
/// assert_eq!(messages, 2); // 1013 /24s fit in 4096 bytes
/// # use corebgp_core::wire::AfiSafi;
/// ```
#[derive(Debug)]
pub struct UpdateBuilder<'b> {
    buf: &'b mut [u8],
    cfg: UpdateConfig,
    limit: usize,
    pos: usize,
    attr_len_at: usize,
    stage: Stage,
    mp_unreach_done: bool,
}

const WITHDRAWN_LEN_AT: usize = HEADER_LEN;

#[inline]
/// Packs as many of `routes` as fit before `room` bytes of `w` (all of one
/// address family: IPv6 when `v6`); returns how many were written.
fn pack<P: Into<Prefix> + Copy>(
    w: &mut Writer<'_>,
    routes: &[Nlri<P>],
    add_path: bool,
    room: usize,
    v6: bool,
) -> Result<usize, BuildError> {
    let mut n = 0;
    for r in routes {
        let p: Prefix = r.prefix.into();
        if p.is_ipv6() != v6 {
            return Err(BuildError::Family);
        }
        if w.pos() + nlri_len(&p, add_path) > room {
            break;
        }
        put_nlri(w, r.path_id, add_path, &p);
        n += 1;
    }
    Ok(n)
}

fn nlri_len(p: &Prefix, add_path: bool) -> usize {
    usize::from(add_path) * 4 + 1 + usize::from(p.len()).div_ceil(8)
}

#[inline]
fn put_nlri(w: &mut Writer<'_>, path_id: Option<u32>, add_path: bool, p: &Prefix) {
    if add_path {
        w.u32(path_id.unwrap_or(0));
    }
    let (bytes, n) = p.wire_bytes();
    w.u8(p.len());
    w.put(bytes.get(..n).unwrap_or(&[]));
}

fn too_long(len: usize, max: usize) -> BuildError {
    BuildError::Encode(EncodeError::MessageTooLong { len, max })
}

fn put_hdr(w: &mut Writer<'_>, flags: u8, ty: u8, len: usize) -> Result<(), BuildError> {
    let len = u16::try_from(len).map_err(|_| BuildError::Encode(EncodeError::FieldTooLong))?;
    match u8::try_from(len) {
        Ok(l) => {
            w.u8(flags & !AttrFlags::EXTENDED_LENGTH);
            w.u8(ty);
            w.u8(l);
        }
        Err(_) => {
            w.u8(flags | AttrFlags::EXTENDED_LENGTH);
            w.u8(ty);
            w.u16(len);
        }
    }
    Ok(())
}

/// Writes the segments of one AS_PATH/AS4_PATH encoding; `four`: 4-octet AS
/// numbers; `as4`: the AS4_PATH form (confederation segments left out,
/// RFC 6793 §3).
fn put_path(
    w: &mut Writer<'_>,
    segs: &[AsSegment<'_>],
    four: bool,
    as4: bool,
) -> Result<(), BuildError> {
    for s in segs {
        if as4 && s.kind.is_confed() {
            continue;
        }
        if matches!(s.kind, SegmentType::Set | SegmentType::ConfedSet) && s.asns.len() > 255 {
            return Err(BuildError::SetTooLong);
        }
        // Longer sequences are split into segments of at most 255; an empty
        // one is still written, as an empty segment.
        let mut asns = s.asns;
        loop {
            let (c, rest) = asns
                .split_at_checked(asns.len().min(255))
                .unwrap_or((asns, &[]));
            w.u8(s.kind as u8);
            w.u8(c.len() as u8);
            for &a in c {
                if four {
                    w.u32(a);
                } else {
                    w.u16(u16::try_from(a).unwrap_or(AS_TRANS as u16));
                }
            }
            asns = rest;
            if asns.is_empty() {
                break;
            }
        }
    }
    Ok(())
}

/// Writes an AS_PATH or AS4_PATH attribute. The value is written once into
/// an empty buffer to learn its length (the writer counts what does not
/// fit), so one loop serves both measuring and writing.
fn put_path_attr(
    w: &mut Writer<'_>,
    flags: u8,
    ty: u8,
    segs: &[AsSegment<'_>],
    four: bool,
    as4: bool,
) -> Result<(), BuildError> {
    let mut count = Writer::new(&mut []);
    put_path(&mut count, segs, four, as4)?;
    put_hdr(w, flags, ty, count.pos())?;
    put_path(w, segs, four, as4)
}

/// Writes every attribute but the MP ones; with `next_hop`, NEXT_HOP too.
fn put_attributes(
    w: &mut Writer<'_>,
    a: &PathAttributes<'_>,
    cfg: &UpdateConfig,
    next_hop: Option<Ipv4Addr>,
) -> Result<(), BuildError> {
    const WK: u8 = AttrFlags::TRANSITIVE;
    const OT: u8 = AttrFlags::OPTIONAL | AttrFlags::TRANSITIVE;
    const ON: u8 = AttrFlags::OPTIONAL;
    let four = cfg.four_octet_as;
    if let Some(o) = a.origin {
        put_hdr(w, WK, AttrType::ORIGIN, 1)?;
        w.u8(o as u8);
    }
    let mut need_as4_path = false;
    if let Some(segs) = a.as_path {
        put_path_attr(w, WK, AttrType::AS_PATH, segs, four, false)?;
        // RFC 6793 §4.2.2: AS4_PATH only when the path has a 4-octet AS.
        need_as4_path = !four
            && segs
                .iter()
                .any(|s| !s.kind.is_confed() && s.asns.iter().any(|&x| x > 0xffff));
    }
    if let Some(nh) = next_hop {
        put_hdr(w, WK, AttrType::NEXT_HOP, 4)?;
        w.put(&nh.octets());
    }
    if let Some(m) = a.med {
        put_hdr(w, ON, AttrType::MED, 4)?;
        w.u32(m);
    }
    if let Some(l) = a.local_pref {
        put_hdr(w, WK, AttrType::LOCAL_PREF, 4)?;
        w.u32(l);
    }
    if a.atomic_aggregate {
        put_hdr(w, WK, AttrType::ATOMIC_AGGREGATE, 0)?;
    }
    if let Some(g) = a.aggregator {
        if four {
            put_hdr(w, OT, AttrType::AGGREGATOR, 8)?;
            w.u32(g.asn);
        } else {
            put_hdr(w, OT, AttrType::AGGREGATOR, 6)?;
            w.u16(u16::try_from(g.asn).unwrap_or(AS_TRANS as u16));
        }
        w.put(&g.addr.octets());
    }
    if !a.communities.is_empty() {
        put_hdr(w, OT, AttrType::COMMUNITIES, a.communities.len() * 4)?;
        for c in a.communities {
            w.u32(c.0);
        }
    }
    if let Some(o) = a.originator_id {
        put_hdr(w, ON, AttrType::ORIGINATOR_ID, 4)?;
        w.put(&o.octets());
    }
    if !a.cluster_list.is_empty() {
        put_hdr(w, ON, AttrType::CLUSTER_LIST, a.cluster_list.len() * 4)?;
        for c in a.cluster_list {
            w.put(&c.octets());
        }
    }
    if !a.ext_communities.is_empty() {
        put_hdr(
            w,
            OT,
            AttrType::EXTENDED_COMMUNITIES,
            a.ext_communities.len() * 8,
        )?;
        for c in a.ext_communities {
            w.put(&c.0);
        }
    }
    if need_as4_path && let Some(segs) = a.as_path {
        put_path_attr(w, OT, AttrType::AS4_PATH, segs, true, true)?;
    }
    if let Some(g) = a.aggregator
        && !four
        && g.asn > 0xffff
    {
        put_hdr(w, OT, AttrType::AS4_AGGREGATOR, 8)?;
        w.u32(g.asn);
        w.put(&g.addr.octets());
    }
    if !a.ipv6_ext_communities.is_empty() {
        put_hdr(
            w,
            OT,
            AttrType::IPV6_EXTENDED_COMMUNITIES,
            a.ipv6_ext_communities.len() * 20,
        )?;
        for c in a.ipv6_ext_communities {
            w.put(&c.0);
        }
    }
    if let Some(m) = a.aigp {
        // RFC 7311 §3: one AIGP TLV, type 1, length 11.
        put_hdr(w, ON, AttrType::AIGP, 11)?;
        w.u8(1);
        w.u16(11);
        w.put(&m.to_be_bytes());
    }
    if !a.large_communities.is_empty() {
        put_hdr(
            w,
            OT,
            AttrType::LARGE_COMMUNITY,
            a.large_communities.len() * 12,
        )?;
        for c in a.large_communities {
            w.u32(c.global_admin);
            w.u32(c.local_data1);
            w.u32(c.local_data2);
        }
    }
    if let Some(o) = a.otc {
        put_hdr(w, OT, AttrType::OTC, 4)?;
        w.u32(o);
    }
    for r in a.other {
        put_hdr(w, r.flags.0, r.type_code, r.value.len())?;
        w.put(r.value);
    }
    Ok(())
}

impl<'b> UpdateBuilder<'b> {
    /// Starts an UPDATE in `buf`. The message will not exceed
    /// `cfg.max_message_len` nor the buffer.
    pub fn new(buf: &'b mut [u8], cfg: &UpdateConfig) -> Result<Self, BuildError> {
        let limit = buf.len().min(usize::from(cfg.max_message_len));
        let min = HEADER_LEN + 4;
        if limit < min {
            return Err(if buf.len() < min {
                EncodeError::BufferTooSmall {
                    needed: min,
                    available: buf.len(),
                }
            } else {
                EncodeError::MessageTooLong {
                    len: min,
                    max: limit,
                }
            }
            .into());
        }
        Ok(Self {
            buf,
            cfg: *cfg,
            limit,
            pos: WITHDRAWN_LEN_AT + 2,
            attr_len_at: 0,
            stage: Stage::Withdrawn,
            mp_unreach_done: false,
        })
    }

    /// Length of the message so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing has been added yet.
    pub fn is_empty(&self) -> bool {
        self.pos == WITHDRAWN_LEN_AT + 2
    }

    fn patch_u16(&mut self, at: usize, v: usize) {
        if let Some(d) = self.buf.get_mut(at..at + 2) {
            d.copy_from_slice(&(v as u16).to_be_bytes());
        }
    }

    /// Ends the Withdrawn Routes field and opens the attributes.
    fn close_withdrawn(&mut self) {
        if self.stage == Stage::Withdrawn {
            let wlen = self.pos - WITHDRAWN_LEN_AT - 2;
            self.patch_u16(WITHDRAWN_LEN_AT, wlen);
            self.attr_len_at = self.pos;
            self.pos += 2;
            self.stage = Stage::Attributes;
        }
    }

    /// Packs IPv4 unicast withdrawals into the Withdrawn Routes field;
    /// returns how many fit.
    pub fn withdraw(&mut self, routes: &[Nlri<Ipv4Prefix>]) -> Result<usize, BuildError> {
        if self.stage != Stage::Withdrawn {
            return Err(BuildError::Order);
        }
        let ap = self.cfg.add_path_tx.contains(AfiSafi::IPV4_UNICAST);
        // Room for the Total Path Attribute Length field.
        let end = self.limit - 2;
        let Some(out) = self.buf.get_mut(self.pos..end) else {
            return Ok(0);
        };
        let mut w = Writer::new(out);
        let n = pack(&mut w, routes, ap, end - self.pos, false)?;
        self.pos += w.finish()?;
        Ok(n)
    }

    /// Packs withdrawals of `family` into MP_UNREACH_NLRI (RFC 4760 §4); with
    /// no routes, this makes the family's End-of-RIB marker (RFC 4724 §2) if
    /// nothing else is added. Returns how many fit; when none fits nothing is
    /// written (send this message, start the next).
    pub fn withdraw_mp<P: Into<Prefix> + Copy>(
        &mut self,
        family: AfiSafi,
        routes: &[Nlri<P>],
    ) -> Result<usize, BuildError> {
        self.close_withdrawn();
        if self.stage != Stage::Attributes || self.mp_unreach_done {
            return Err(BuildError::Order);
        }
        let v6 = family.afi == Afi::Ipv6;
        let ap = self.cfg.add_path_tx.contains(family);
        let start = self.pos;
        let Some(out) = self.buf.get_mut(start..self.limit) else {
            return Ok(0);
        };
        let room = out.len();
        let mut w = Writer::new(out);
        if routes.is_empty() {
            // The compact form, as End-of-RIB markers are usually sent.
            put_hdr(&mut w, AttrFlags::OPTIONAL, AttrType::MP_UNREACH_NLRI, 3)?;
            w.u16(family.afi.to_raw());
            w.u8(family.safi.to_raw());
            self.pos += w.finish().map_err(|_| too_long(start + 6, self.limit))?;
            self.mp_unreach_done = true;
            return Ok(0);
        }
        put_hdr(
            &mut w,
            AttrFlags::OPTIONAL | AttrFlags::EXTENDED_LENGTH,
            AttrType::MP_UNREACH_NLRI,
            256,
        )?;
        w.u16(family.afi.to_raw());
        w.u8(family.safi.to_raw());
        let n = pack(&mut w, routes, ap, room, v6)?;
        if n == 0 {
            // Nothing fits: nothing written (an empty MP_UNREACH_NLRI would
            // read as End-of-RIB).
            return Ok(0);
        }
        let len = w.finish()?;
        self.patch_u16(start + 2, len - 4);
        self.pos += len;
        self.mp_unreach_done = true;
        Ok(n)
    }

    /// Writes the path attributes and packs announcements of `family`: IPv4
    /// unicast with an IPv4 next hop into the NLRI field, anything else into
    /// MP_REACH_NLRI (written as the first attribute, RFC 7606 §5.1). Returns
    /// how many fit. When routes are given but none fits, nothing is written
    /// and 0 is returned (send this message, start the next); with no routes,
    /// attributes that do not fit are an error.
    pub fn announce<P: Into<Prefix> + Copy>(
        &mut self,
        attrs: &PathAttributes<'_>,
        family: AfiSafi,
        routes: &[Nlri<P>],
    ) -> Result<usize, BuildError> {
        self.close_withdrawn();
        if self.stage != Stage::Attributes {
            return Err(BuildError::Order);
        }
        let v6 = family.afi == Afi::Ipv6;
        let ap = self.cfg.add_path_tx.contains(family);
        let classic_nh = match (is_ipv4_unicast(family), attrs.next_hop) {
            (true, Some(NextHop::V4(a))) => Some(a),
            _ => None,
        };
        let start = self.pos;
        let limit = self.limit;
        let too_long = |len| BuildError::Encode(EncodeError::MessageTooLong { len, max: limit });
        let out = self.buf.get_mut(start..limit).ok_or(too_long(start))?;
        let room = out.len();
        let mut w = Writer::new(out);
        put_attributes(&mut w, attrs, &self.cfg, classic_nh)?;
        let attrs_len = w.pos();
        if attrs_len > room {
            return if routes.is_empty() {
                Err(too_long(start + attrs_len))
            } else {
                Ok(0)
            };
        }
        let n;
        if classic_nh.is_some() {
            // The NLRI field follows the attributes.
            n = pack(&mut w, routes, ap, room, false)?;
            if n == 0 && !routes.is_empty() {
                return Ok(0);
            }
            let len = w.finish()?;
            self.patch_u16(
                self.attr_len_at,
                self.pos + attrs_len - self.attr_len_at - 2,
            );
            self.pos += len;
        } else {
            let nh = attrs.next_hop.ok_or(BuildError::NextHop)?;
            let nh_ok = match (v6, nh) {
                (false, NextHop::V4(_)) | (true, NextHop::V6 { .. }) => true,
                (false, NextHop::V6 { .. }) => self.cfg.extended_next_hop.contains(family),
                (true, NextHop::V4(_)) => false,
            };
            if !nh_ok {
                return Err(BuildError::NextHop);
            }
            // MP_REACH_NLRI after the other attributes, then rotated to the front.
            let mp_at = w.pos();
            put_hdr(
                &mut w,
                AttrFlags::OPTIONAL | AttrFlags::EXTENDED_LENGTH,
                AttrType::MP_REACH_NLRI,
                256,
            )?;
            w.u16(family.afi.to_raw());
            w.u8(family.safi.to_raw());
            w.u8(nh.wire_len() as u8);
            match nh {
                NextHop::V4(a) => w.put(&a.octets()),
                NextHop::V6 { global, link_local } => {
                    w.put(&global.octets());
                    if let Some(l) = link_local {
                        w.put(&l.octets());
                    }
                }
            }
            w.u8(0); // Reserved (RFC 4760 §3).
            if w.pos() > room {
                return if routes.is_empty() {
                    Err(too_long(start + w.pos()))
                } else {
                    Ok(0)
                };
            }
            n = pack(&mut w, routes, ap, room, v6)?;
            if n == 0 && !routes.is_empty() {
                return Ok(0);
            }
            let len = w.finish()?;
            let mp_len = len - mp_at;
            self.patch_u16(start + mp_at + 2, mp_len - 4);
            if let Some(region) = self.buf.get_mut(start..start + len) {
                region.rotate_right(mp_len);
            }
            self.patch_u16(self.attr_len_at, self.pos + len - self.attr_len_at - 2);
            self.pos += len;
        }
        self.stage = Stage::Done;
        Ok(n)
    }

    /// Closes the message: writes the header and the section lengths.
    /// Returns the message length.
    pub fn finish(mut self) -> Result<usize, BuildError> {
        self.close_withdrawn();
        if self.stage == Stage::Attributes {
            self.patch_u16(self.attr_len_at, self.pos - self.attr_len_at - 2);
        }
        encode_header(self.buf, self.pos as u16, MessageType::Update)?;
        Ok(self.pos)
    }
}

/// Whether `family` is IPv4 unicast, as `==` would say. A pattern rather
/// than the derived `PartialEq`, which an image may keep as a call: a
/// constant family then folds, and the code for the others goes.
const fn is_ipv4_unicast(family: AfiSafi) -> bool {
    matches!((family.afi, family.safi), (Afi::Ipv4, Safi::Unicast))
}

/// Writes the End-of-RIB marker of `family` (RFC 4724 §2): an empty UPDATE
/// for IPv4 unicast, an UPDATE with an empty MP_UNREACH_NLRI otherwise.
pub fn encode_end_of_rib(buf: &mut [u8], family: AfiSafi) -> Result<usize, BuildError> {
    let cfg = UpdateConfig::new();
    let mut b = UpdateBuilder::new(buf, &cfg)?;
    if !is_ipv4_unicast(family) {
        b.withdraw_mp::<Prefix>(family, &[])?;
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 600 ASes go out as segments of 255, 255 and 90; an empty sequence as
    /// an empty segment.
    #[test]
    fn long_and_empty_sequences_are_split_as_rfc4271_allows() {
        let asns: [u32; 600] = core::array::from_fn(|i| 65000 + i as u32);
        let segs = [
            AsSegment {
                kind: SegmentType::Sequence,
                asns: &asns,
            },
            AsSegment {
                kind: SegmentType::Sequence,
                asns: &[],
            },
        ];
        let mut buf = [0u8; 4096];
        let mut w = Writer::new(&mut buf);
        put_path(&mut w, &segs, true, false).unwrap();
        let len = w.finish().unwrap();
        assert_eq!(len, 3 * 2 + 600 * 4 + 2);
        let mut at = 0;
        for (n, first) in [(255usize, 65000u32), (255, 65255), (90, 65510), (0, 0)] {
            assert_eq!(buf[at..at + 2], [2, n as u8]);
            if n > 0 {
                assert_eq!(buf[at + 2..at + 6], first.to_be_bytes());
            }
            at += 2 + n * 4;
        }
    }
}
