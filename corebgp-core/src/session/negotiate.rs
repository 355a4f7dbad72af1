//! Capabilities we send, the checks a received OPEN must pass (RFC 4271
//! §6.2 in CoreBGP's order, with RFC 5492, 6286, 6793, 7607, 9234), and
//! what the two OPENs negotiate.

use core::net::Ipv4Addr;

use heapless::Vec;

use super::config::{PeerConfig, SessionConfig};
use super::time::{Duration, Instant};
use crate::update::{PeerType, UpdateConfig};
use crate::wire::{
    AS_TRANS, AddPathDirection, AddPathEntry, Afi, AfiSafi, Capability, CapabilityCode,
    ExtendedNextHopEntry, InlineData, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN,
    MalformedCapability, Notification, NotificationData, Open, OpenError, RawCapability, Role,
    Safi,
};
use crate::wire::{GracefulRestartEntry, ListItem, LlgrEntry, fqdn_well_formed};

/// The synchronous part of a plugin that the state machine consults while
/// OPENs are exchanged. Neither needs I/O, so neither is async.
pub trait OpenHooks {
    /// Capabilities to advertise in the next OPEN (CoreBGP's
    /// `GetCapabilities`). The session adds its own 4-octet AS (and, when
    /// configured, Extended Message and Role) and drops the plugin's copies.
    fn capabilities(&mut self, peer: &PeerConfig, caps: &mut CapabilitySet);

    /// The peer's OPEN passed the session's checks (CoreBGP's
    /// `OnOpenMessage`): return a NOTIFICATION to refuse it. RFC 5492 asks
    /// to refuse only for a missing required capability.
    fn check_open(
        &mut self,
        peer: &PeerConfig,
        open: &Open<'_>,
        negotiated: &Negotiated,
    ) -> Result<(), Notification<'static>> {
        let _ = (peer, open, negotiated);
        Ok(())
    }
}

/// Hooks that advertise IPv4 and IPv6 unicast and Route Refresh and accept
/// every OPEN that passes the session's checks.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultHooks;

impl OpenHooks for DefaultHooks {
    fn capabilities(&mut self, _: &PeerConfig, caps: &mut CapabilitySet) {
        let _ = caps.push(&Capability::MultiProtocol(AfiSafi::IPV4_UNICAST));
        let _ = caps.push(&Capability::MultiProtocol(AfiSafi::IPV6_UNICAST));
        let _ = caps.push(&Capability::RouteRefresh);
    }
}

/// Room for the capabilities of one OPEN. 256 bytes hold far more than
/// real speakers send (BIRD and FRR send under 100); it bounds the memory
/// every peer's state carries.
pub const MAX_CAPABILITIES_LEN: usize = 256;
/// Address families remembered per session.
pub const MAX_FAMILIES: usize = 8;

/// The capabilities of an OPEN we are about to send, encoded as they are
/// pushed (no borrowing, no allocation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapabilitySet {
    bytes: Vec<u8, MAX_CAPABILITIES_LEN>,
}

/// The capability set is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CapabilitySetFull;

impl CapabilitySet {
    /// An empty set.
    pub const fn new() -> Self {
        Self { bytes: Vec::new() }
    }

    /// Appends a capability. A capability of our own making that the set
    /// already has (4-octet AS, Extended Message, Role) is replaced by the
    /// session's, so a plugin cannot contradict the configuration.
    ///
    /// Inlined: a call with a constant capability compiles to the bytes of
    /// that one variant (a firmware pushing two capabilities does not carry
    /// the encoder of every variant).
    #[inline(always)]
    pub fn push(&mut self, cap: &Capability<'_>) -> Result<(), CapabilitySetFull> {
        let n = 2 + cap.value_len();
        // A short one (all but lists and names) is encoded on the stack and
        // appended by the one out-of-line copy: a handful of stores per call
        // rather than a resize and its checks.
        let mut short = [0; 8];
        if let Some(dst) = short.get_mut(..n) {
            if !cap.write(dst) {
                return Err(CapabilitySetFull);
            }
            return self
                .bytes
                .extend_from_slice(dst)
                .map_err(|_| CapabilitySetFull);
        }
        let start = self.bytes.len();
        self.bytes
            .resize(start + n, 0)
            .map_err(|_| CapabilitySetFull)?;
        let ok = match self.bytes.get_mut(start..) {
            Some(dst) => cap.write(dst),
            None => false,
        };
        if !ok {
            self.bytes.truncate(start);
            return Err(CapabilitySetFull);
        }
        Ok(())
    }

    /// Appends a capability already encoded: its code and value (at most
    /// 255 bytes), copied as they are. Unlike [`push`](Self::push) this
    /// does not check the value against the capability's RFC.
    pub fn push_raw(&mut self, code: u8, value: &[u8]) -> Result<(), CapabilitySetFull> {
        let len = u8::try_from(value.len()).map_err(|_| CapabilitySetFull)?;
        // Room checked once for both parts, so neither append can fail.
        if MAX_CAPABILITIES_LEN - self.bytes.len() < 2 + value.len() {
            return Err(CapabilitySetFull);
        }
        let _ = self.bytes.extend_from_slice(&[code, len]);
        let _ = self.bytes.extend_from_slice(value);
        Ok(())
    }

    /// Removes every capability with this code.
    pub fn remove(&mut self, code: u8) {
        let mut out: Vec<u8, MAX_CAPABILITIES_LEN> = Vec::new();
        for c in self.raw() {
            if c.code != code {
                // Cannot overflow: `out` only shrinks relative to `self`.
                let _ = out.extend_from_slice(&[c.code, c.value.len() as u8]);
                let _ = out.extend_from_slice(c.value);
            }
        }
        self.bytes = out;
    }

    /// Whether a capability with this code is in the set.
    pub fn contains(&self, code: u8) -> bool {
        self.raw().any(|c| c.code == code)
    }

    /// The encoded TLVs.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The capabilities, raw.
    pub fn raw(&self) -> impl Iterator<Item = RawCapability<'_>> {
        let mut rest: &[u8] = &self.bytes;
        core::iter::from_fn(move || {
            let (&code, r) = rest.split_first()?;
            let (&len, r) = r.split_first()?;
            let (value, r) = r.split_at_checked(usize::from(len))?;
            rest = r;
            Some(RawCapability { code, value })
        })
    }

    /// The capabilities, typed (what we push is well-formed, so malformed
    /// entries cannot occur; they would be skipped).
    pub fn iter(&self) -> impl Iterator<Item = Capability<'_>> {
        self.raw().filter_map(|c| c.parse().ok())
    }
}

/// What our OPEN advertised, kept for negotiation once the peer's arrives
/// (a summary: the encoded set itself is not kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Advertised {
    /// Multiprotocol families (IPv4 unicast if none was advertised).
    pub families: Vec<AfiSafi, MAX_FAMILIES>,
    /// ADD-PATH entries.
    pub add_path: Vec<AddPathEntry, MAX_FAMILIES>,
    /// Extended next hop entries.
    pub extended_next_hop: Vec<ExtendedNextHopEntry, MAX_FAMILIES>,
    /// Route Refresh.
    pub route_refresh: bool,
    /// Enhanced Route Refresh.
    pub enhanced_route_refresh: bool,
    /// Extended Message.
    pub extended_message: bool,
}

impl Advertised {
    /// Summarises a capability set.
    pub fn new(caps: &CapabilitySet) -> Self {
        // Malformed entries (possible through `push_raw`) are skipped, as the
        // typed decoder would.
        let mut s = Summary::default();
        for c in caps.raw() {
            s.add(&c);
        }
        s.default_family();
        s.adv
    }
}

/// A family from its AFI and SAFI as sent. Out of line: multiprotocol,
/// ADD-PATH and extended next hop entries share it.
#[inline(never)]
fn family(afi: [u8; 2], safi: u8) -> AfiSafi {
    AfiSafi::new(Afi::from_raw(u16::from_be_bytes(afi)), Safi::from_raw(safi))
}

/// What negotiation needs of one side's capabilities, gathered in one pass
/// over the raw TLVs (no typed decoding: only these few are looked at).
#[derive(Default)]
struct Summary {
    /// The lists and flags our own OPEN's summary keeps; its flags count a
    /// capability present at all (well-formed or not, as
    /// `CapabilitySet::contains` and `Open::has_capability` see them).
    adv: Advertised,
    graceful_restart: Option<u16>,
    role: Option<Role>,
    four_octet_as: Option<u32>,
}

impl Summary {
    /// Adds one capability; a malformed one is skipped (`false`).
    ///
    /// Checks and reads in one match: the same rules as
    /// [`RawCapability::is_well_formed`] (a test holds them equal), without
    /// a second dispatch on the code.
    fn add(&mut self, c: &RawCapability<'_>) -> bool {
        let v = c.value;
        match CapabilityCode::from_raw(c.code) {
            CapabilityCode::MultiProtocol => {
                // RFC 4760 §8: AFI, reserved, SAFI.
                let Ok([a, b, _, safi]) = <[u8; 4]>::try_from(v) else {
                    return false;
                };
                let f = family([a, b], safi);
                if !self.adv.families.contains(&f) {
                    let _ = self.adv.families.push(f);
                }
            }
            // The first one, as `Open::four_octet_as` finds it.
            CapabilityCode::FourOctetAs => {
                let Ok(asn) = <[u8; 4]>::try_from(v) else {
                    return false;
                };
                if self.four_octet_as.is_none() {
                    self.four_octet_as = Some(u32::from_be_bytes(asn));
                }
            }
            // Presence counts even when malformed (as `contains` and
            // `has_capability` see it).
            CapabilityCode::RouteRefresh => {
                self.adv.route_refresh = true;
                return v.is_empty();
            }
            CapabilityCode::EnhancedRouteRefresh => {
                self.adv.enhanced_route_refresh = true;
                return v.is_empty();
            }
            CapabilityCode::ExtendedMessage => {
                self.adv.extended_message = true;
                return v.is_empty();
            }
            CapabilityCode::Role => {
                let &[r] = v else {
                    return false;
                };
                if self.role.is_none() {
                    self.role = Some(Role::from_raw(r));
                }
            }
            // RFC 4724 §3: restart flags and time (low 12 bits), then 4-byte
            // families.
            CapabilityCode::GracefulRestart => {
                let Some((&head, rest)) = v.split_first_chunk::<2>() else {
                    return false;
                };
                if !rest.len().is_multiple_of(GracefulRestartEntry::LEN) {
                    return false;
                }
                if self.graceful_restart.is_none() {
                    self.graceful_restart = Some(u16::from_be_bytes(head) & 0x0fff);
                }
            }
            // RFC 7911 §4: AFI, SAFI and Send/Receive (1 to 3) per entry.
            // Both lists are decoded by hand, through one `family`: the
            // generic `ListItem` readers, once per entry type, cost more.
            // Nothing of a malformed list is kept.
            CapabilityCode::AddPath => {
                let (entries, []) = v.as_chunks::<4>() else {
                    return false;
                };
                let list = &mut self.adv.add_path;
                let before = list.len();
                for &[a, b, safi, d] in entries {
                    let Some(direction) = AddPathDirection::from_u8(d) else {
                        list.truncate(before);
                        return false;
                    };
                    let _ = list.push(AddPathEntry {
                        family: family([a, b], safi),
                        direction,
                    });
                }
            }
            // RFC 8950 §3: AFI, a two-byte SAFI (at most 255, as `Safi`
            // holds), next hop AFI per entry; checked whole first.
            CapabilityCode::ExtendedNextHop => {
                let (entries, []) = v.as_chunks::<6>() else {
                    return false;
                };
                if entries.iter().any(|&[_, _, safi_high, ..]| safi_high != 0) {
                    return false;
                }
                for &[a, b, _, safi, na, nb] in entries {
                    let _ = self.adv.extended_next_hop.push(ExtendedNextHopEntry {
                        family: family([a, b], safi),
                        next_hop_afi: Afi::from_raw(u16::from_be_bytes([na, nb])),
                    });
                }
            }
            CapabilityCode::LongLivedGracefulRestart => {
                return v.len().is_multiple_of(LlgrEntry::LEN);
            }
            CapabilityCode::Fqdn => return fqdn_well_formed(v),
            _ => {}
        }
        true
    }

    /// IPv4 unicast if no family was advertised (RFC 4760 §1: a speaker
    /// without the capability does IPv4 unicast).
    fn default_family(&mut self) {
        if self.adv.families.is_empty() {
            let _ = self.adv.families.push(AfiSafi::IPV4_UNICAST);
        }
    }
}

/// What an established session agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Negotiated {
    /// The peer's AS (from the 4-octet AS capability).
    pub peer_as: u32,
    /// The peer's BGP Identifier.
    pub peer_id: Ipv4Addr,
    /// Hold time in seconds: the smaller of both proposals; 0 = no hold
    /// timer and no keepalives (RFC 4271 §4.2).
    pub hold_time: u16,
    /// Both sides support 4-octet AS numbers (RFC 6793).
    pub four_octet_as: bool,
    /// Both sides support Route Refresh (RFC 2918).
    pub route_refresh: bool,
    /// Both sides support Enhanced Route Refresh (RFC 7313).
    pub enhanced_route_refresh: bool,
    /// Both sides support Extended Messages (RFC 8654).
    pub extended_message: bool,
    /// Address families both sides support (RFC 4760; IPv4 unicast when a
    /// side sends no multiprotocol capability).
    pub families: Vec<AfiSafi, MAX_FAMILIES>,
    /// ADD-PATH (RFC 7911) per family, from our point of view: `Receive`
    /// means we may receive path identifiers, `Send` that we may send them.
    pub add_path: Vec<AddPathEntry, MAX_FAMILIES>,
    /// Extended next hop encodings both sides support (RFC 8950).
    pub extended_next_hop: Vec<ExtendedNextHopEntry, MAX_FAMILIES>,
    /// The peer's Graceful Restart restart time, if it advertised the
    /// capability (RFC 4724).
    pub peer_graceful_restart: Option<u16>,
    /// The peer's BGP Role (RFC 9234).
    pub peer_role: Option<Role>,
}

impl Negotiated {
    /// Largest message either side may send (RFC 8654).
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            MAX_EXTENDED_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        }
    }

    /// KeepaliveTimer interval: a third of the hold time (RFC 4271 §10),
    /// `None` when the hold time is 0.
    pub fn keepalive_interval(&self) -> Option<Duration> {
        (self.hold_time != 0).then(|| Duration::from_secs(u64::from(self.hold_time)) / 3)
    }

    /// When the hold timer started at `now` expires, [`Instant::NEVER`] when
    /// the hold time is 0. The same instant as `now + hold_duration()`, in
    /// whole milliseconds: `Duration` arithmetic at each timer restart cost
    /// flash.
    #[inline(always)]
    pub(crate) fn hold_deadline(&self, now: Instant) -> Instant {
        timer_deadline(self.hold_time, false, now)
    }

    /// When the KeepaliveTimer started at `now` expires, [`Instant::NEVER`]
    /// when the hold time is 0: `now + keepalive_interval()`, in whole
    /// milliseconds (a third of the hold time, rounded down as the
    /// `Duration` division and its conversion to milliseconds do).
    #[inline(always)]
    pub(crate) fn keepalive_deadline(&self, now: Instant) -> Instant {
        timer_deadline(self.hold_time, true, now)
    }

    /// Hold time as a duration, `None` when 0.
    pub fn hold_duration(&self) -> Option<Duration> {
        (self.hold_time != 0).then(|| Duration::from_secs(u64::from(self.hold_time)))
    }

    /// Whether a family was negotiated.
    pub fn has_family(&self, f: AfiSafi) -> bool {
        self.families.contains(&f)
    }

    /// The settings the UPDATE codec needs for this session (RFC 6793 AS
    /// size, RFC 7911 ADD-PATH per family and direction, RFC 8950 next hops,
    /// internal or external peer, RFC 8654 message size).
    pub fn update_config(&self, peer: &PeerConfig) -> UpdateConfig {
        let mut cfg = UpdateConfig::new();
        cfg.four_octet_as = self.four_octet_as;
        for e in &self.add_path {
            if e.direction.receives() {
                cfg.add_path_rx = cfg.add_path_rx.with(e.family);
            }
            if e.direction.sends() {
                cfg.add_path_tx = cfg.add_path_tx.with(e.family);
            }
        }
        for e in &self.extended_next_hop {
            if e.next_hop_afi == crate::wire::Afi::Ipv6 {
                cfg.extended_next_hop = cfg.extended_next_hop.with(e.family);
            }
        }
        cfg.peer = if peer.is_ibgp() {
            PeerType::Internal
        } else {
            PeerType::External
        };
        cfg.max_message_len = self.max_message_len().min(usize::from(u16::MAX)) as u16;
        cfg
    }

    /// ADD-PATH direction we may use for a family, if any.
    pub fn add_path(&self, f: AfiSafi) -> Option<AddPathDirection> {
        self.add_path
            .iter()
            .find(|e| e.family == f)
            .map(|e| e.direction)
    }
}

/// Checks a received OPEN against the configuration and our capabilities
/// and, if it passes, computes what was negotiated.
///
/// Order (CoreBGP's, with its bugs fixed): version (already checked by
/// [`Open::parse`], 2/1), peer AS (2/2, RFC 6793 AS_TRANS handling, RFC 7607
/// AS 0), hold time (2/6), BGP Identifier (2/3, RFC 6286), malformed
/// capabilities (2/0), the 4-octet AS capability required (2/7 with the
/// capability as data, also for an OPEN without optional parameters), then
/// BGP Role (2/11, RFC 9234).
pub fn check_open<'a>(
    config: &SessionConfig,
    ours: &Advertised,
    open: &Open<'a>,
) -> Result<Negotiated, OpenError<'a>> {
    let peer = &config.peer;
    // One pass over the peer's capabilities; the checks below still run in
    // the order above.
    let mut theirs = Summary::default();
    let mut malformed = None;
    for c in open.raw_capabilities() {
        if !theirs.add(&c) && malformed.is_none() {
            malformed = Some(c);
        }
    }
    let four = theirs.four_octet_as;
    // RFC 6793 §4.1: the 4-octet AS capability carries the real AS; My AS
    // is AS_TRANS when it needs more than two octets.
    let asn = match four {
        Some(a) => {
            let consistent = if a > u32::from(u16::MAX) {
                open.my_as == AS_TRANS
            } else {
                u32::from(open.my_as) == a || open.my_as == AS_TRANS
            };
            if !consistent {
                return Err(OpenError::BadPeerAs);
            }
            a
        }
        None => u32::from(open.my_as),
    };
    // RFC 7607: AS 0 is never acceptable.
    if asn == 0 || asn != peer.remote_as {
        return Err(OpenError::BadPeerAs);
    }
    // RFC 4271 §6.2: 1 and 2 are refused; local policy may refuse more.
    if open.hold_time != 0 && (open.hold_time < 3 || open.hold_time < config.min_hold_time) {
        return Err(OpenError::UnacceptableHoldTime(open.hold_time));
    }
    // RFC 6286 §2.2: only zero, or our own identifier from an internal peer,
    // is bad (multicast-looking identifiers are fine: CoreBGP got this wrong).
    if open.bgp_id.is_unspecified() || (peer.is_ibgp() && open.bgp_id == config.router_id) {
        return Err(OpenError::BadBgpIdentifier);
    }
    if let Some(raw) = malformed {
        return Err(OpenError::MalformedCapability(MalformedCapability { raw }));
    }
    if four.is_none() {
        // RFC 5492 §5: the data carries the capability that is missing, as
        // the peer should have sent it (its AS).
        let mut tlv = [CapabilityCode::FourOctetAs.to_raw(), 4, 0, 0, 0, 0];
        if let Some(v) = tlv.get_mut(2..) {
            v.copy_from_slice(&peer.remote_as.to_be_bytes());
        }
        return Err(OpenError::UnsupportedCapability(NotificationData::Inline(
            InlineData::new(&tlv),
        )));
    }
    let peer_role = theirs.role;
    // RFC 9234 §4.2: a role pair not in the table, or a missing role in
    // strict mode, is a Role Mismatch.
    if let Some(our_role) = config.role {
        match peer_role {
            Some(r) if Some(r) != our_role.expected_peer_role() => {
                return Err(OpenError::RoleMismatch);
            }
            None if config.strict_role => return Err(OpenError::RoleMismatch),
            _ => {}
        }
    }

    theirs.default_family();
    // Filled in place: the lists are not built elsewhere and copied in.
    let mut n = Negotiated {
        peer_as: asn,
        peer_id: open.bgp_id,
        hold_time: open.hold_time.min(config.hold_time),
        four_octet_as: true,
        route_refresh: ours.route_refresh && theirs.adv.route_refresh,
        enhanced_route_refresh: ours.enhanced_route_refresh && theirs.adv.enhanced_route_refresh,
        extended_message: ours.extended_message && theirs.adv.extended_message,
        families: Vec::new(),
        add_path: Vec::new(),
        extended_next_hop: Vec::new(),
        peer_graceful_restart: theirs.graceful_restart,
        peer_role,
    };
    for f in &theirs.adv.families {
        if ours.families.contains(f) {
            let _ = n.families.push(*f);
        }
    }
    // RFC 7911 §4: we receive paths for a family if we said Receive and they
    // said Send, and send them if we said Send and they said Receive.
    let their_ap = &theirs.adv.add_path;
    for &ours_e in &ours.add_path {
        let Some(t) = their_ap.iter().find(|t| t.family == ours_e.family) else {
            continue;
        };
        let Some(direction) = add_path_direction(ours_e.direction, t.direction) else {
            continue;
        };
        if n.families.contains(&ours_e.family) {
            let _ = n.add_path.push(AddPathEntry {
                family: ours_e.family,
                direction,
            });
        }
    }
    for e in &theirs.adv.extended_next_hop {
        if ours.extended_next_hop.contains(e) {
            let _ = n.extended_next_hop.push(*e);
        }
    }
    Ok(n)
}

/// The hold (or, with `third`, the keepalive) deadline for a hold time of
/// `hold_time` seconds. One out-of-line body for both: they differ only in
/// the division. `now` comes last so that all three arguments travel in
/// registers on a 32-bit core (a 64-bit argument takes an even pair).
/// Out of line on bare metal only: on hosts it is on the KEEPALIVE path.
#[cfg_attr(target_os = "none", inline(never))]
fn timer_deadline(hold_time: u16, third: bool, now: Instant) -> Instant {
    if hold_time == 0 {
        return Instant::NEVER;
    }
    let ms = u32::from(hold_time) * 1000;
    now.add_millis(u64::from(if third { ms / 3 } else { ms }))
}

/// RFC 7911 §4 for one family: we receive paths if we said Receive and
/// they said Send, and send them if we said Send and they said Receive;
/// `None` when neither.
fn add_path_direction(
    ours: AddPathDirection,
    theirs: AddPathDirection,
) -> Option<AddPathDirection> {
    // On the RFC's bits (1 Receive, 2 Send): ours against theirs with Send
    // and Receive swapped (no branching on the four cases).
    let t = theirs as u8;
    AddPathDirection::from_u8(ours as u8 & (((t & 1) << 1) | (t >> 1)))
}

/// Builds the capability set of our next OPEN: the session's own
/// capabilities (4-octet AS, and Extended Message and Role when configured)
/// first, then the plugin's, whose copies of the session's are dropped.
pub fn our_capabilities(config: &SessionConfig, hooks: &mut dyn OpenHooks) -> CapabilitySet {
    let mut plugin = CapabilitySet::new();
    hooks.capabilities(&config.peer, &mut plugin);
    let mut set = CapabilitySet::new();
    // Raw TLVs: no per-variant encoder is linked for the session's own.
    let _ = set.push_raw(
        CapabilityCode::FourOctetAs.to_raw(),
        &config.peer.local_as.to_be_bytes(),
    );
    if config.extended_messages {
        let _ = set.push_raw(CapabilityCode::ExtendedMessage.to_raw(), &[]);
    }
    if let Some(r) = config.role {
        let _ = set.push_raw(CapabilityCode::Role.to_raw(), &[r.to_raw()]);
    }
    // The plugin's copies of the session's own are skipped while copying
    // (one pass, not a `remove` per code).
    const FOUR_OCTET_AS: u8 = CapabilityCode::FourOctetAs.to_raw();
    const EXTENDED_MESSAGE: u8 = CapabilityCode::ExtendedMessage.to_raw();
    const ROLE: u8 = CapabilityCode::Role.to_raw();
    for c in plugin.raw() {
        if !matches!(c.code, FOUR_OCTET_AS | EXTENDED_MESSAGE | ROLE) {
            let _ = set.push_raw(c.code, c.value);
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_add_checks_as_is_well_formed() {
        let values: [&[u8]; 17] = [
            &[],
            &[0],
            &[0, 1],
            &[0, 1, 1],
            &[0, 1, 0, 1],
            &[0, 1, 1, 4],
            &[0, 1, 1, 3, 0, 2, 1, 2],
            &[0, 1, 0, 1, 0, 2],
            &[0, 1, 1, 0, 0, 2],
            &[0, 1, 0, 1, 0, 2, 0, 1, 1, 1, 0, 2],
            &[0, 1, 1, 0x80, 0, 0, 5],
            &[2, b'r', b'1', 1, b'x'],
            &[2, b'r', b'1', 1, b'x', 0],
            &[5, b'a'],
            &[0, 1, 1, 3, 0, 2, 1, 4],
            // Unknown AFIs and SAFIs and every direction, kept as sent.
            &[0x40, 4, 0x47, 1, 0, 25, 0x85, 2, 0x12, 0x34, 0xff, 3],
            &[0x40, 4, 0, 0x47, 0x12, 0x34, 0, 2, 0, 0xff, 0, 1],
        ];
        for code in 0..=255u8 {
            for value in values {
                let raw = RawCapability { code, value };
                let mut s = Summary::default();
                assert_eq!(s.add(&raw), raw.is_well_formed(), "{code} {value:?}");
                if !raw.is_well_formed() {
                    // Nothing of a malformed list is kept.
                    assert!(s.adv.add_path.is_empty() && s.adv.extended_next_hop.is_empty());
                }
                // The entries kept are the typed decoder's, in order.
                let (mut add_path, mut next_hop) = (Vec::<_, 8>::new(), Vec::<_, 8>::new());
                match raw.parse() {
                    Ok(Capability::AddPath(l)) => add_path.extend(l),
                    Ok(Capability::ExtendedNextHop(l)) => next_hop.extend(l),
                    Ok(Capability::MultiProtocol(f)) => assert_eq!(s.adv.families, [f]),
                    _ => {}
                }
                assert_eq!(s.adv.add_path, add_path, "{code} {value:?}");
                assert_eq!(s.adv.extended_next_hop, next_hop, "{code} {value:?}");
            }
        }
    }

    #[test]
    fn a_malformed_list_keeps_the_entries_of_earlier_ones() {
        let mut s = Summary::default();
        let good = RawCapability {
            code: 69,
            value: &[0, 1, 1, 3],
        };
        assert!(s.add(&good));
        assert!(!s.add(&RawCapability {
            code: 69,
            value: &[0, 2, 1, 1, 0, 2, 1, 0]
        }));
        let good = RawCapability {
            code: 5,
            value: &[0, 1, 0, 1, 0, 2],
        };
        assert!(s.add(&good));
        assert!(!s.add(&RawCapability {
            code: 5,
            value: &[0, 2, 0, 1, 0, 2, 0, 2, 1, 1, 0, 2]
        }));
        let ap = AddPathEntry {
            family: AfiSafi::IPV4_UNICAST,
            direction: AddPathDirection::Both,
        };
        assert_eq!(s.adv.add_path, [ap]);
        let nh = ExtendedNextHopEntry {
            family: AfiSafi::IPV4_UNICAST,
            next_hop_afi: Afi::Ipv6,
        };
        assert_eq!(s.adv.extended_next_hop, [nh]);
    }

    #[test]
    fn deadlines_match_the_duration_arithmetic() {
        let peer = PeerConfig {
            remote_address: core::net::Ipv4Addr::new(192, 0, 2, 1).into(),
            local_as: 65001,
            remote_as: 65002,
        };
        let now = Instant::from_millis(123_456);
        for hold_time in (0..=1000).chain([65_533, 65_534, u16::MAX]) {
            let n = Negotiated {
                peer_as: peer.remote_as,
                peer_id: core::net::Ipv4Addr::new(192, 0, 2, 1),
                hold_time,
                four_octet_as: true,
                route_refresh: false,
                enhanced_route_refresh: false,
                extended_message: false,
                families: Vec::new(),
                add_path: Vec::new(),
                extended_next_hop: Vec::new(),
                peer_graceful_restart: None,
                peer_role: None,
            };
            assert_eq!(
                n.hold_deadline(now).deadline(),
                n.hold_duration().map(|h| now + h)
            );
            assert_eq!(
                n.keepalive_deadline(now).deadline(),
                n.keepalive_interval().map(|k| now + k)
            );
        }
    }

    #[test]
    fn add_path_bits_match_rfc_7911_rules() {
        use AddPathDirection::*;
        for ours in [Receive, Send, Both] {
            for theirs in [Receive, Send, Both] {
                let got = add_path_direction(ours, theirs);
                let rx = ours.receives() && theirs.sends();
                let tx = ours.sends() && theirs.receives();
                let want = match (rx, tx) {
                    (true, true) => Some(Both),
                    (true, false) => Some(Receive),
                    (false, true) => Some(Send),
                    (false, false) => None,
                };
                assert_eq!(got, want, "{ours:?} {theirs:?}");
            }
        }
    }

    #[test]
    fn push_raw_appends_the_tlv_as_given() {
        let mut set = CapabilitySet::new();
        set.push_raw(65, &[0, 0, 0xfd, 0xe9]).unwrap();
        set.push_raw(2, &[]).unwrap();
        assert_eq!(set.as_bytes(), &[65, 4, 0, 0, 0xfd, 0xe9, 2, 0]);
        // The same bytes as the typed encoder.
        let mut typed = CapabilitySet::new();
        typed.push(&Capability::FourOctetAs(65001)).unwrap();
        typed.push(&Capability::RouteRefresh).unwrap();
        assert_eq!(set, typed);
    }

    #[test]
    fn push_raw_refuses_what_does_not_fit_and_keeps_the_set() {
        let mut set = CapabilitySet::new();
        assert_eq!(set.push_raw(1, &[0; 256]), Err(CapabilitySetFull));
        assert!(set.as_bytes().is_empty());
        set.push_raw(1, &[0; 253]).unwrap();
        // 255 of 256 bytes used: a 2-byte header no longer fits.
        assert_eq!(set.push_raw(2, &[]), Err(CapabilitySetFull));
        assert_eq!(set.as_bytes().len(), 255);
        // A TLV that fills the set exactly fits; one byte more does not,
        // and leaves no header behind.
        let mut set = CapabilitySet::new();
        set.push_raw(1, &[0; 248]).unwrap();
        assert_eq!(set.push_raw(3, &[7; 5]), Err(CapabilitySetFull));
        assert_eq!(set.as_bytes().len(), 250);
        set.push_raw(3, &[7; 4]).unwrap();
        assert_eq!(&set.as_bytes()[250..], &[3, 4, 7, 7, 7, 7]);
        assert_eq!(set.push_raw(2, &[]), Err(CapabilitySetFull));
    }

    #[test]
    fn push_appends_short_and_long_capabilities_whole_or_not_at_all() {
        use crate::wire::List;
        let entries = [
            AddPathEntry {
                family: AfiSafi::IPV4_UNICAST,
                direction: AddPathDirection::Both,
            },
            AddPathEntry {
                family: AfiSafi::IPV6_UNICAST,
                direction: AddPathDirection::Send,
            },
        ];
        // 6 bytes (encoded on the stack) and 10 (encoded in place).
        let short = Capability::MultiProtocol(AfiSafi::IPV6_UNICAST);
        let long = Capability::AddPath(List::Items(&entries));
        let mut set = CapabilitySet::new();
        set.push_raw(1, &[0; 244]).unwrap();
        set.push(&short).unwrap();
        let at = set.as_bytes().len();
        assert_eq!(at, 252);
        assert_eq!(&set.as_bytes()[246..], &[1, 4, 0, 2, 0, 1]);
        // 4 bytes left: neither fits, and the set is as it was.
        assert_eq!(set.push(&short), Err(CapabilitySetFull));
        assert_eq!(set.push(&long), Err(CapabilitySetFull));
        assert_eq!(set.as_bytes().len(), at);
        set.push(&Capability::RouteRefresh).unwrap();
        set.push(&Capability::ExtendedMessage).unwrap();
        assert_eq!(&set.as_bytes()[at..], &[2, 0, 6, 0]);
        assert_eq!(set.push(&Capability::RouteRefresh), Err(CapabilitySetFull));

        let mut set = CapabilitySet::new();
        set.push(&long).unwrap();
        assert_eq!(set.as_bytes(), &[69, 8, 0, 1, 1, 3, 0, 2, 1, 2]);
    }

    #[test]
    fn our_capabilities_put_the_sessions_first_and_drop_the_plugins_copies() {
        struct Hooks;
        impl OpenHooks for Hooks {
            fn capabilities(&mut self, _: &PeerConfig, caps: &mut CapabilitySet) {
                caps.push(&Capability::FourOctetAs(1)).unwrap();
                caps.push(&Capability::MultiProtocol(AfiSafi::IPV4_UNICAST))
                    .unwrap();
            }
        }
        let peer = PeerConfig {
            remote_address: core::net::Ipv4Addr::new(192, 0, 2, 1).into(),
            local_as: 65001,
            remote_as: 65002,
        };
        let cfg = SessionConfig::new(peer, core::net::Ipv4Addr::new(192, 0, 2, 2));
        let set = our_capabilities(&cfg, &mut Hooks);
        assert_eq!(set.as_bytes(), &[65, 4, 0, 0, 0xfd, 0xe9, 1, 4, 0, 1, 0, 1]);
    }
}
