//! The one-call typed view of an UPDATE, with RFC 7606 verdicts.

use core::net::Ipv4Addr;

use super::attr::{AttrFlags, AttrSet, AttrType, Attributes, RawAttribute, split_attribute};
use super::config::{PeerType, UpdateConfig};
use super::error::{Action, ErrorKind, UpdateError};
use super::nlri::{self, Checked, Ipv4Prefixes, Nlri, Prefixes};
use super::values::{
    AS_TRANS, Aggregator, Aigp, AsPath, ClusterList, Communities, ExtCommunities,
    Ipv6ExtCommunities, LargeCommunities, MpReach, MpUnreach, Origin, check_path, family_is_v6,
};
use crate::wire::{AfiSafi, Notification, NotificationCode, NotificationData, UpdateSections};

const WK: u8 = AttrFlags::TRANSITIVE;
const OT: u8 = AttrFlags::OPTIONAL | AttrFlags::TRANSITIVE;
const ON: u8 = AttrFlags::OPTIONAL;

/// A decoded UPDATE: every known attribute checked and typed, every NLRI
/// field checked, and the RFC 7606 verdict. Borrows the message.
///
/// Attributes with an error whose verdict is attribute discard, duplicates
/// (RFC 7606 §3 g) and attributes to be ignored (LOCAL_PREF from an external
/// peer, AS4_PATH between 4-octet speakers) read as absent; their type codes
/// are in [`discarded`](Self::discarded).
#[derive(Debug, Clone)]
pub struct Update<'a> {
    sections: UpdateSections<'a>,
    cfg: UpdateConfig,
    withdrawn_count: u32,
    nlri_count: u32,
    mp_reach_count: u32,
    mp_unreach_count: u32,
    /// Path lengths (RFC 6793 §4.2.3 counting) of AS_PATH and AS4_PATH, by slot.
    path_counts: [u32; 2],
    origin: Option<Origin>,
    /// The values of the other attributes kept (checked), by [`Slot`]:
    /// typed on access, so a getter nobody calls costs nothing.
    vals: [Kept<'a>; SLOTS],
    mp_reach: Option<MpReach<'a>>,
    mp_unreach: Option<MpUnreach<'a>>,
    seen: AttrSet,
    discarded: AttrSet,
    withdraw: Option<UpdateError<'a>>,
    disable: [Option<UpdateError<'a>>; 2],
    discard: Option<UpdateError<'a>>,
}

/// The approach a failed attribute check calls for. An AFI/SAFI disable,
/// which carries the family, is noted by `decode_mp` itself: one byte, so
/// that a [`Fail`] is returned in a register rather than through memory.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Discard,
    Withdraw,
    Reset,
}

/// An attribute's verdict before it is dressed as an [`UpdateError`]: two
/// bytes to return from every check, one place that builds the error.
type Fail = (Verdict, ErrorKind);

/// The [`UpdateError`] of an error of `kind` found in attribute type `t`
/// (`raw`: the whole attribute), or in no attribute for the kinds that
/// concern none. The subcode follows from the kind (RFC 4271 §6.3), and so
/// does the data: the attribute, except for 3/11 Malformed AS_PATH, which
/// RFC 4271 §6.3 sends without data, and 3/3 Missing Well-known Attribute,
/// whose data is the type code. One builder for every error of the
/// decoder: each site passes four words.
// Outlined on bare-metal targets (one copy of the stores); hosted targets
// inline it, as they did `UpdateError::new`, for decode speed.
#[cfg_attr(target_os = "none", inline(never))]
fn update_error<'a>(action: Action, kind: ErrorKind, t: u8, raw: &'a [u8]) -> UpdateError<'a> {
    let type_code = match kind {
        ErrorKind::SectionLengths | ErrorKind::AttributeList | ErrorKind::InvalidNetworkField => {
            None
        }
        _ => Some(t),
    };
    let data = match kind {
        ErrorKind::MalformedAsPath => NotificationData::EMPTY,
        ErrorKind::MissingWellKnown => NotificationData::byte(t),
        _ => NotificationData::Borrowed(raw),
    };
    UpdateError {
        action,
        kind,
        type_code,
        notification: Notification {
            code: NotificationCode::Update(kind.subcode()),
            data,
        },
    }
}

/// RFC 7606 §3 c: Optional/Transitive bits in conflict → treat-as-withdraw;
/// RFC 4271 §6.3: 3/4 Attribute Flags Error, data = the attribute.
#[inline(always)]
fn flags(a: &RawAttribute<'_>, want: u8) -> Result<(), Fail> {
    if a.flags.0 & (AttrFlags::OPTIONAL | AttrFlags::TRANSITIVE) == want {
        Ok(())
    } else {
        Err((Verdict::Withdraw, ErrorKind::Flags))
    }
}

/// RFC 4271 §6.3: 3/5 Attribute Length Error, data = the attribute.
#[inline(always)]
const fn length(action: Verdict) -> Fail {
    (action, ErrorKind::Length)
}

/// A kept value on hosted targets: its offset in the path attributes and
/// its length, a quarter of the room of a slice in a struct that is built
/// and moved once per UPDATE (the copies showed in a full table's
/// profile). Offset 0 means absent (a value follows its attribute's
/// header, so never starts at 0); path attributes are shorter than 65535
/// bytes. Bare-metal targets keep the slice: less code.
#[cfg(not(target_os = "none"))]
#[derive(Debug, Clone, Copy)]
struct Kept<'a>(u16, u16, core::marker::PhantomData<&'a [u8]>);
#[cfg(not(target_os = "none"))]
const ABSENT: Kept<'static> = Kept(0, 0, core::marker::PhantomData);
#[cfg(target_os = "none")]
type Kept<'a> = Option<&'a [u8]>;
#[cfg(target_os = "none")]
const ABSENT: Kept<'static> = None;

/// Where [`Update`] keeps an attribute's value: an index into its `vals`.
type Slot = usize;
const AS_PATH: Slot = 0;
const AS4_PATH: Slot = 1;
const NEXT_HOP: Slot = 2;
const MED: Slot = 3;
const LOCAL_PREF: Slot = 4;
const ATOMIC_AGGREGATE: Slot = 5;
const AGGREGATOR: Slot = 6;
const AS4_AGGREGATOR: Slot = 7;
const COMMUNITIES: Slot = 8;
const ORIGINATOR_ID: Slot = 9;
const CLUSTER_LIST: Slot = 10;
const EXT_COMMUNITIES: Slot = 11;
const IPV6_EXT_COMMUNITIES: Slot = 12;
const AIGP: Slot = 13;
const LARGE_COMMUNITY: Slot = 14;
const OTC: Slot = 15;
const SLOTS: usize = 16;
/// Checked, not kept (ATTR_SET).
const NO_SLOT: Slot = SLOTS;

/// The length an attribute must have (RFC 7606 §7 and the attribute RFCs).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Len {
    /// Exactly this many bytes.
    Exact(u8),
    /// A non-zero multiple of this many bytes.
    Multiple(u8),
    /// At least this many bytes.
    AtLeast(u8),
}

/// How an attribute whose verdict follows from its flags and length alone
/// is checked and kept: one code path for all of them. Packed in a word
/// so that each caller passes a constant in a register.
#[derive(Clone, Copy)]
struct Rule(u32);

impl Rule {
    // Byte 0: the Optional and Transitive bits it must have (RFC 7606 §3 c);
    // byte 1: the length's n; byte 2: the length's kind and the flags
    // below; byte 3: the slot.
    const EXACT: u32 = 0;
    const MULTIPLE: u32 = 1;
    const AT_LEAST: u32 = 2;
    /// A wrong length is an attribute discard, not a treat-as-withdraw.
    const DISCARD: u32 = 1 << 2;
    /// An aggregator: an AS of 0 is an attribute discard (RFC 7607 §2).
    const AGGREGATOR: u32 = 1 << 3;
    /// Ignored (read as absent), whatever its flags, from an external peer
    /// (RFC 7606 §7.5: LOCAL_PREF).
    const IGNORE_EXTERNAL: u32 = 1 << 4;
    /// Ignored, once its flags are right, between 4-octet speakers
    /// (RFC 6793 §3: AS4_AGGREGATOR).
    const IGNORE_FOUR_OCTET: u32 = 1 << 5;

    const fn new(flags: u8, len: Len, on_len: Verdict, slot: Slot) -> Self {
        let (kind, n) = match len {
            Len::Exact(n) => (Self::EXACT, n),
            Len::Multiple(n) => (Self::MULTIPLE, n),
            Len::AtLeast(n) => (Self::AT_LEAST, n),
        };
        let discard = match on_len {
            Verdict::Discard => Self::DISCARD,
            _ => 0,
        };
        Self(flags as u32 | (n as u32) << 8 | (kind | discard) << 16 | (slot as u32) << 24)
    }

    const fn with(self, flag: u32) -> Self {
        Self(self.0 | flag << 16)
    }

    const fn has(self, flag: u32) -> bool {
        (self.0 >> 16) & flag != 0
    }
}

#[inline(always)]
fn u32_of(v: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(v).ok().map(u32::from_be_bytes)
}

impl<'a> Update<'a> {
    /// Decodes an UPDATE body (the bytes after the 19-byte header).
    ///
    /// `Err` means session reset: send the error's NOTIFICATION. `Ok` may
    /// still carry a treat-as-withdraw, AFI/SAFI-disable or attribute-discard
    /// verdict: see [`treat_as_withdraw`](Self::treat_as_withdraw),
    /// [`afi_safi_disable`](Self::afi_safi_disable) and
    /// [`attribute_discard`](Self::attribute_discard).
    pub fn parse(body: &'a [u8], cfg: &UpdateConfig) -> Result<Self, UpdateError<'a>> {
        // RFC 7606 §3 a / RFC 4271 §6.3: section overruns → 3/1.
        let sections = UpdateSections::parse(body)
            .map_err(|_| update_error(Action::SessionReset, ErrorKind::SectionLengths, 0, &[]))?;
        Self::from_sections(sections, cfg)
    }

    /// Decodes an UPDATE already split into sections.
    // Inlined on hosted targets: returned from a call, the `Update` (a few
    // hundred bytes) was built on the callee's stack and copied out (a
    // memcpy per message, 6–10 % of a 3-prefix table's decode); inlined, it
    // is built where the caller keeps it. Bare-metal targets keep the call.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    pub fn from_sections(
        sections: UpdateSections<'a>,
        cfg: &UpdateConfig,
    ) -> Result<Self, UpdateError<'a>> {
        let add_path_v4 = cfg.add_path_rx.contains(AfiSafi::IPV4_UNICAST);
        // RFC 7606 §5.3: a syntax error in the IPv4 fields → session reset;
        // RFC 4271 §6.3: 3/10 Invalid Network Field.
        let withdrawn_count = nlri::validate(sections.withdrawn, false, add_path_v4);
        let nlri_count = nlri::validate(sections.nlri, false, add_path_v4);
        if withdrawn_count == nlri::MALFORMED || nlri_count == nlri::MALFORMED {
            return Err(update_error(
                Action::SessionReset,
                ErrorKind::InvalidNetworkField,
                0,
                &[],
            ));
        }
        let mut u = Update {
            sections,
            cfg: *cfg,
            withdrawn_count,
            nlri_count,
            mp_reach_count: 0,
            mp_unreach_count: 0,
            path_counts: [0; 2],
            origin: None,
            vals: [ABSENT; SLOTS],
            mp_reach: None,
            mp_unreach: None,
            seen: AttrSet::EMPTY,
            discarded: AttrSet::EMPTY,
            withdraw: None,
            disable: [None, None],
            discard: None,
        };
        let mut rest = sections.attributes;
        let mut broken = false;
        while !rest.is_empty() {
            let Some((a, r)) = split_attribute(rest) else {
                // RFC 7606 §4: a cut header or an overrun → treat-as-withdraw,
                // the NLRI field located by the Total Path Attribute Length.
                // RFC 4271 §6.3 fallback: 3/1 Malformed Attribute List.
                u.note(Action::TreatAsWithdraw, ErrorKind::AttributeList, 0, &[]);
                broken = true;
                break;
            };
            rest = r;
            let t = a.type_code;
            if !u.seen.insert(t) {
                // RFC 7606 §3 g: a second MP_REACH/MP_UNREACH → 3/1 reset; any
                // other repeated attribute: keep the first, discard the rest.
                if t == AttrType::MP_REACH_NLRI || t == AttrType::MP_UNREACH_NLRI {
                    return Err(update_error(
                        Action::SessionReset,
                        ErrorKind::DuplicateMpAttribute,
                        t,
                        &[],
                    ));
                }
                u.discarded.insert(t);
                continue;
            }
            if let Err((verdict, kind)) = u.attribute(&a) {
                let action = match verdict {
                    Verdict::Discard => Action::AttributeDiscard,
                    Verdict::Withdraw => Action::TreatAsWithdraw,
                    Verdict::Reset => {
                        return Err(update_error(Action::SessionReset, kind, t, a.raw));
                    }
                };
                u.note(action, kind, t, a.raw);
            }
        }

        let reachable = !u.sections.nlri.is_empty() || u.seen.contains(AttrType::MP_REACH_NLRI);
        if reachable && !broken {
            // RFC 7606 §3 d: a missing well-known mandatory attribute →
            // treat-as-withdraw; RFC 4271 §6.3: 3/3, data = the type code.
            // NEXT_HOP is mandatory only with IPv4 NLRI (RFC 4760 §3).
            // The lowest type code missing first, as ORIGIN, AS_PATH, NEXT_HOP
            // are checked in turn: one mask test rather than three lookups.
            let need = 1 << AttrType::ORIGIN
                | 1 << AttrType::AS_PATH
                | u32::from(!u.sections.nlri.is_empty()) << AttrType::NEXT_HOP;
            if let Some(t) = u.seen.first_absent(need) {
                u.note(Action::TreatAsWithdraw, ErrorKind::MissingWellKnown, t, &[]);
            }
        }
        if !reachable {
            // RFC 7606 §5.2: attributes other than MP_UNREACH_NLRI and no
            // reachable NLRI: any error stronger than attribute discard means
            // session reset.
            let only_unreach = u.seen.without(AttrType::MP_UNREACH_NLRI).is_empty();
            if broken || !only_unreach {
                let worst = u.withdraw.or(u.disable[0]);
                if let Some(mut e) = worst {
                    e.action = Action::SessionReset;
                    return Err(e);
                }
            }
        }
        Ok(u)
    }

    /// Keeps the first error of each action (see [`update_error`] for
    /// the arguments); a discarded attribute also goes to `discarded`.
    #[inline]
    fn note(&mut self, action: Action, kind: ErrorKind, t: u8, raw: &'a [u8]) {
        // One store of the error, into the slot its action picks.
        let slot = match action {
            Action::AttributeDiscard => {
                self.discarded.insert(t);
                &mut self.discard
            }
            Action::TreatAsWithdraw => &mut self.withdraw,
            // At most one per MP attribute: the first free slot.
            Action::AfiSafiDisable(_) if self.disable[0].is_none() => &mut self.disable[0],
            Action::AfiSafiDisable(_) => &mut self.disable[1],
            Action::SessionReset => return,
        };
        if slot.is_none() {
            *slot = Some(update_error(action, kind, t, raw));
        }
    }

    /// Checks and stores one attribute (first occurrence).
    // Inlined into the attribute loop on hosted targets (decode speed: about
    // 9% on the 1M-prefix benchmark); a call on bare-metal ones, where the
    // inlined copy costs 132 bytes of flash.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline(never))]
    fn attribute(&mut self, a: &RawAttribute<'a>) -> Result<(), Fail> {
        use Len::{AtLeast, Exact, Multiple};
        use Verdict::{Discard, Withdraw as Taw};
        let v = a.value;
        // Each arm calls `simple` with its own constant rule: on hosted
        // targets, where `simple` is inlined, the checks fold per arm.
        match a.type_code {
            AttrType::ORIGIN => {
                flags(a, WK)?;
                // RFC 7606 §7.1: length ≠ 1 or undefined value → treat-as-withdraw
                // (RFC 4271 §6.3: 3/5, 3/6).
                let [o] = *v else { return Err(length(Taw)) };
                let o = Origin::from_u8(o).ok_or((Taw, ErrorKind::InvalidOrigin))?;
                self.origin = Some(o);
                Ok(())
            }
            AttrType::AS_PATH => {
                flags(a, WK)?;
                // RFC 7606 §7.2: malformed segments → treat-as-withdraw (3/11);
                // RFC 7607 §2: AS 0 makes it malformed; RFC 5065 §5.2 / RFC 7606
                // §7.2: confederation segments from an external peer too.
                let four = self.cfg.four_octet_as;
                let external = self.cfg.peer == PeerType::External;
                self.path(
                    a,
                    AS_PATH,
                    four,
                    external,
                    (Taw, ErrorKind::MalformedAsPath),
                )
            }
            // RFC 7606 §7.3: length ≠ 4 → treat-as-withdraw (3/5). RFC 4760
            // §3: without IPv4 NLRI the attribute is ignored, so a bad one
            // is only discarded.
            AttrType::NEXT_HOP => self.simple(
                a,
                Rule::new(
                    WK,
                    Exact(4),
                    if self.sections.nlri.is_empty() {
                        Discard
                    } else {
                        Taw
                    },
                    NEXT_HOP,
                ),
            ),
            // RFC 7606 §7.4.
            AttrType::MED => self.simple(a, Rule::new(ON, Exact(4), Taw, MED)),
            // RFC 7606 §7.5: from an external peer → attribute discard.
            AttrType::LOCAL_PREF => self.simple(
                a,
                Rule::new(WK, Exact(4), Taw, LOCAL_PREF).with(Rule::IGNORE_EXTERNAL),
            ),
            // Well-known discretionary (RFC 4271 §5.1.6): flags 0x40.
            // RFC 7606 §7.6: length ≠ 0 → attribute discard.
            AttrType::ATOMIC_AGGREGATE => {
                self.simple(a, Rule::new(WK, Exact(0), Discard, ATOMIC_AGGREGATE))
            }
            // RFC 7606 §7.7: length ≠ 6 (2-octet) / 8 (4-octet) → discard.
            AttrType::AGGREGATOR => self.simple(
                a,
                Rule::new(
                    OT,
                    Exact(if self.cfg.four_octet_as { 8 } else { 6 }),
                    Discard,
                    AGGREGATOR,
                )
                .with(Rule::AGGREGATOR),
            ),
            // RFC 7606 §7.8: not a non-zero multiple of 4 → treat-as-withdraw.
            AttrType::COMMUNITIES => self.simple(a, Rule::new(OT, Multiple(4), Taw, COMMUNITIES)),
            // RFC 7606 §7.9: length ≠ 4 → treat-as-withdraw.
            AttrType::ORIGINATOR_ID => self.simple(a, Rule::new(ON, Exact(4), Taw, ORIGINATOR_ID)),
            // RFC 7606 §7.10: not a non-zero multiple of 4 → treat-as-withdraw.
            AttrType::CLUSTER_LIST => self.simple(a, Rule::new(ON, Multiple(4), Taw, CLUSTER_LIST)),
            AttrType::MP_REACH_NLRI => self.decode_mp(a, true),
            AttrType::MP_UNREACH_NLRI => self.decode_mp(a, false),
            // RFC 7606 §7.14: not a non-zero multiple of 8 → treat-as-withdraw.
            AttrType::EXTENDED_COMMUNITIES => {
                self.simple(a, Rule::new(OT, Multiple(8), Taw, EXT_COMMUNITIES))
            }
            AttrType::AS4_PATH => {
                flags(a, OT)?;
                // RFC 6793 §3: between 4-octet speakers AS4_PATH is not used;
                // a received one is ignored.
                if self.cfg.four_octet_as {
                    self.discarded.insert(a.type_code);
                    return Ok(());
                }
                // RFC 6793 §6: malformed (as AS_PATH, or with confederation
                // segments; RFC 7607: AS 0) → attribute discard.
                self.path(
                    a,
                    AS4_PATH,
                    true,
                    true,
                    (Discard, ErrorKind::MalformedOptional),
                )
            }
            // RFC 6793 §3: ignored between 4-octet speakers; §6: length ≠ 8
            // → attribute discard; RFC 7607: AS 0 too.
            AttrType::AS4_AGGREGATOR => self.simple(
                a,
                Rule::new(OT, Exact(8), Discard, AS4_AGGREGATOR)
                    .with(Rule::AGGREGATOR | Rule::IGNORE_FOUR_OCTET),
            ),
            // RFC 7606 §7.15: not a non-zero multiple of 20 → treat-as-withdraw.
            AttrType::IPV6_EXTENDED_COMMUNITIES => {
                self.simple(a, Rule::new(OT, Multiple(20), Taw, IPV6_EXT_COMMUNITIES))
            }
            AttrType::AIGP => {
                flags(a, ON)?;
                // RFC 7311 §3.4: a malformed AIGP is ignored, i.e. attribute discard.
                Aigp::parse(v).ok_or((Discard, ErrorKind::MalformedOptional))?;
                self.keep(AIGP, v);
                Ok(())
            }
            // RFC 8092 §6: not a non-zero multiple of 12 → treat-as-withdraw.
            AttrType::LARGE_COMMUNITY => {
                self.simple(a, Rule::new(OT, Multiple(12), Taw, LARGE_COMMUNITY))
            }
            // RFC 9234 §5: length ≠ 4 → treat-as-withdraw.
            AttrType::OTC => self.simple(a, Rule::new(OT, Exact(4), Taw, OTC)),
            // RFC 7606 §7.16 / RFC 6368 §5: shorter than its Origin AS → treat-as-withdraw.
            AttrType::ATTR_SET => self.simple(a, Rule::new(OT, AtLeast(4), Taw, NO_SLOT)),
            _ if !a.flags.optional() => {
                // RFC 4271 §6.3: an unrecognised well-known attribute → 3/2,
                // data = the attribute; RFC 7606 does not relax this.
                Err((Verdict::Reset, ErrorKind::UnrecognizedWellKnown))
            }
            // Optional attributes we do not decode: kept raw (RFC 4271 §5).
            _ => Ok(()),
        }
    }

    /// Checks AS_PATH or AS4_PATH (`slot`) of `four`-octet ASes and keeps it
    /// with its length: malformed (`bad`) on a structural error, AS 0, or a
    /// confederation segment if `no_confed`.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn path(
        &mut self,
        a: &RawAttribute<'a>,
        slot: Slot,
        four: bool,
        no_confed: bool,
        bad: Fail,
    ) -> Result<(), Fail> {
        let c = check_path(a.value, four).ok_or(bad)?;
        if c.zero || (c.confed && no_confed) {
            return Err(bad);
        }
        self.keep(slot, a.value);
        if let Some(n) = self.path_counts.get_mut(slot) {
            *n = c.count;
        }
        Ok(())
    }

    /// Checks an attribute against its [`Rule`] and keeps its value.
    // A call with a constant rule from each arm on bare-metal targets, one
    // copy of the checks; inlined and specialised per arm on hosted ones,
    // where the length checks fold to constants (no division).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline(never))]
    fn simple(&mut self, a: &RawAttribute<'a>, r: Rule) -> Result<(), Fail> {
        let [want, n, _, slot] = r.0.to_le_bytes();
        if r.has(Rule::IGNORE_EXTERNAL) && self.cfg.peer == PeerType::External {
            self.discarded.insert(a.type_code);
            return Ok(());
        }
        flags(a, want)?;
        if r.has(Rule::IGNORE_FOUR_OCTET) && self.cfg.four_octet_as {
            self.discarded.insert(a.type_code);
            return Ok(());
        }
        let v = a.value;
        let (l, n) = (v.len(), usize::from(n));
        let ok = if r.has(Rule::MULTIPLE) {
            l != 0 && l.is_multiple_of(n)
        } else if r.has(Rule::AT_LEAST) {
            l >= n
        } else {
            l == n
        };
        if !ok {
            let action = if r.has(Rule::DISCARD) {
                Verdict::Discard
            } else {
                Verdict::Withdraw
            };
            return Err(length(action));
        }
        // The AS before the 4-byte address (RFC 4271 §5.1.7).
        if r.has(Rule::AGGREGATOR) && v.iter().rev().skip(4).all(|&b| b == 0) {
            return Err((Verdict::Discard, ErrorKind::MalformedOptional));
        }
        self.keep(usize::from(slot), v);
        Ok(())
    }

    /// MP_REACH_NLRI (RFC 4760 §3, RFC 7606 §7.11) if `reach`, else
    /// MP_UNREACH_NLRI (RFC 4760 §4, RFC 7606 §7.12): one copy of the
    /// family read and the NLRI check. Errors are 3/9 Optional Attribute
    /// Error, data = the attribute (RFC 4760 §7).
    fn decode_mp(&mut self, a: &RawAttribute<'a>, reach: bool) -> Result<(), Fail> {
        let Some(MpUnreach {
            family,
            withdrawn: nlri,
            add_path,
        }) = MpUnreach::parse(a.value, &self.cfg)
        else {
            // The family is unknown, so the NLRI cannot be located: RFC 7606 §3 j
            // → session reset; RFC 4760 §7: 3/9, data = the attribute.
            return Err((Verdict::Reset, ErrorKind::MalformedOptional));
        };
        match self.mp_nlri(family, nlri, add_path, reach) {
            Ok(()) => flags(a, ON),
            // Noted here, where the family is known: a [`Fail`] stays small.
            Err(kind) => {
                self.note(Action::AfiSafiDisable(family), kind, a.type_code, a.raw);
                Ok(())
            }
        }
    }

    /// The rest of [`decode_mp`](Self::decode_mp) once the family is read:
    /// checks and keeps the next hop (if `reach`) and the NLRI of `family`;
    /// `Err` is an AFI/SAFI-disable error.
    #[inline(always)]
    fn mp_nlri(
        &mut self,
        family: AfiSafi,
        mut nlri: &'a [u8],
        add_path: bool,
        reach: bool,
    ) -> Result<(), ErrorKind> {
        let v6 = family_is_v6(family);
        let mut next_hop: &[u8] = &[];
        if reach {
            // RFC 7606 §7.11: a next hop overrunning the attribute → AFI/SAFI
            // disable; RFC 4760 §3: then one Reserved octet, ignored.
            let (nh, rest) = nlri
                .split_first()
                .and_then(|(&l, r)| r.split_at_checked(usize::from(l)))
                .ok_or(ErrorKind::MalformedOptional)?;
            let (_, rest) = rest.split_first().ok_or(ErrorKind::MalformedOptional)?;
            (next_hop, nlri) = (nh, rest);
            if let Some(v6) = v6 {
                // RFC 7606 §7.11: a next-hop length not valid for the family.
                let ok = match nh.len() {
                    4 => !v6,
                    // RFC 2545 §3: global, or global + link-local; RFC 8950 §3:
                    // an IPv6 next hop for IPv4 NLRI once negotiated.
                    16 | 32 => v6 || self.cfg.extended_next_hop.contains(family),
                    _ => false,
                };
                if !ok {
                    return Err(ErrorKind::NextHopLength);
                }
            }
        }
        // RFC 7606 §5.3 / §7.11: malformed NLRI → AFI/SAFI disable. Other
        // families' NLRI are not read.
        let count = match v6 {
            Some(v6) => match nlri::validate(nlri, v6, add_path) {
                nlri::MALFORMED => return Err(ErrorKind::InvalidMpNlri),
                n => n,
            },
            None => 0,
        };
        if reach {
            self.mp_reach_count = count;
            self.mp_reach = Some(MpReach {
                family,
                next_hop,
                nlri,
                add_path,
            });
        } else {
            self.mp_unreach_count = count;
            self.mp_unreach = Some(MpUnreach {
                family,
                withdrawn: nlri,
                add_path,
            });
        }
        Ok(())
    }

    // ---- verdicts ----

    /// The treat-as-withdraw error, if any (the first one found): handle
    /// every route of the NLRI field and of MP_REACH_NLRI as withdrawn.
    pub fn treat_as_withdraw(&self) -> Option<&UpdateError<'a>> {
        self.withdraw.as_ref()
    }

    /// AFI/SAFI-disable errors (at most one per MP attribute): disable those
    /// families, or reset the session with the error's NOTIFICATION.
    pub fn afi_safi_disable(&self) -> impl Iterator<Item = &UpdateError<'a>> {
        self.disable.iter().flatten()
    }

    /// The first attribute-discard error, if any (for logging: the
    /// attribute is already absent from this view).
    pub fn attribute_discard(&self) -> Option<&UpdateError<'a>> {
        self.discard.as_ref()
    }

    /// The most severe verdict, `None` for a clean UPDATE.
    pub fn action(&self) -> Option<Action> {
        self.disable[0]
            .map(|e| e.action)
            .or(self.withdraw.map(|e| e.action))
            .or(self.discard.map(|e| e.action))
    }

    /// Type codes of the attributes present (first occurrences, including malformed ones).
    pub fn seen(&self) -> AttrSet {
        self.seen
    }

    /// Type codes of attributes left out of this view (discarded, repeated or ignored).
    pub fn discarded(&self) -> AttrSet {
        self.discarded
    }

    // ---- sections and NLRI ----

    /// The raw sections.
    pub fn sections(&self) -> &UpdateSections<'a> {
        &self.sections
    }

    /// The config it was decoded with.
    pub fn config(&self) -> &UpdateConfig {
        &self.cfg
    }

    /// The raw path attributes, in wire order.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes::new(self.sections.attributes)
    }

    /// Withdrawn Routes field (IPv4 unicast).
    pub fn withdrawn(&self) -> Checked<Ipv4Prefixes<'a>> {
        let ap = self.cfg.add_path_rx.contains(AfiSafi::IPV4_UNICAST);
        Checked::new(
            Ipv4Prefixes::new(self.sections.withdrawn, ap),
            self.withdrawn_count,
        )
    }

    /// NLRI field (IPv4 unicast).
    pub fn nlri(&self) -> Checked<Ipv4Prefixes<'a>> {
        let ap = self.cfg.add_path_rx.contains(AfiSafi::IPV4_UNICAST);
        Checked::new(Ipv4Prefixes::new(self.sections.nlri, ap), self.nlri_count)
    }

    /// MP_REACH_NLRI, if present and well formed enough to split.
    pub fn mp_reach(&self) -> Option<&MpReach<'a>> {
        self.mp_reach.as_ref()
    }

    /// MP_UNREACH_NLRI, if present.
    pub fn mp_unreach(&self) -> Option<&MpUnreach<'a>> {
        self.mp_unreach.as_ref()
    }

    /// Prefixes of MP_REACH_NLRI (none for families not decoded here).
    pub fn mp_reach_nlri(&self) -> Checked<Prefixes<'a>> {
        match &self.mp_reach {
            Some(m) => Checked::new(m.prefixes(), self.mp_reach_count),
            None => Checked::new(Prefixes::Other, 0),
        }
    }

    /// Prefixes of MP_UNREACH_NLRI (none for families not decoded here).
    pub fn mp_unreach_nlri(&self) -> Checked<Prefixes<'a>> {
        match &self.mp_unreach {
            Some(m) => Checked::new(m.prefixes(), self.mp_unreach_count),
            None => Checked::new(Prefixes::Other, 0),
        }
    }

    /// Every announced route with its family: the NLRI field, then MP_REACH_NLRI.
    // Inlined on hosts: out of line it took the address of the caller's
    // `Update`, and LLVM then copied the `Update` (472 bytes) twice per
    // UPDATE rather than building it where the caller keeps it (see
    // `from_sections`): a sixth of a decoding handler's time on a
    // 3-per-UPDATE table.
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn announced(&self) -> impl Iterator<Item = (AfiSafi, Nlri)> + 'a {
        let mp = self.mp_reach.map(|m| (m.family, m.nlri, m.add_path));
        Routes::new(&self.cfg, self.sections.nlri, mp, self.announced_count())
    }

    /// Every withdrawn route with its family: the Withdrawn Routes field,
    /// then MP_UNREACH_NLRI.
    // Inlined on hosts: out of line it took the address of the caller's
    // `Update`, and LLVM then copied the `Update` (472 bytes) twice per
    // UPDATE rather than building it where the caller keeps it (see
    // `from_sections`): a sixth of a decoding handler's time on a
    // 3-per-UPDATE table.
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn withdrawals(&self) -> impl Iterator<Item = (AfiSafi, Nlri)> + 'a {
        let mp = self.mp_unreach.map(|m| (m.family, m.withdrawn, m.add_path));
        Routes::new(
            &self.cfg,
            self.sections.withdrawn,
            mp,
            self.withdrawn_count(),
        )
    }

    /// Number of announced prefixes (NLRI field plus MP_REACH_NLRI).
    pub fn announced_count(&self) -> usize {
        self.nlri_count as usize + self.mp_reach_count as usize
    }

    /// Number of withdrawn prefixes (Withdrawn Routes plus MP_UNREACH_NLRI).
    pub fn withdrawn_count(&self) -> usize {
        self.withdrawn_count as usize + self.mp_unreach_count as usize
    }

    /// The family this UPDATE is an End-of-RIB marker for (RFC 4724 §2).
    // Inlined on hosts: a handler asks for every UPDATE, and the answer for
    // one that carries routes is two length checks on values the caller
    // has just built.
    #[cfg_attr(not(target_os = "none"), inline)]
    pub fn end_of_rib(&self) -> Option<AfiSafi> {
        end_of_rib_sections(&self.sections)
    }

    // ---- attributes ----

    /// ORIGIN.
    pub fn origin(&self) -> Option<Origin> {
        self.origin
    }

    /// The AS path: AS_PATH, merged with AS4_PATH when the peer is a
    /// 2-octet speaker (RFC 6793 §4.2.3).
    pub fn as_path(&self) -> Option<AsPath<'a>> {
        let p = self.val(AS_PATH)?;
        match self.val(AS4_PATH) {
            Some(p4)
                // RFC 6793 §4.2.3: an AGGREGATOR whose AS is not AS_TRANS means
                // AS4_PATH (and AS4_AGGREGATOR) are ignored; so does an
                // AS4_PATH longer than AS_PATH.
                if self.aggregator_raw().is_none_or(|g| g.asn == AS_TRANS)
                    && self.path_counts[AS_PATH] >= self.path_counts[AS4_PATH] =>
            {
                let [n, n4] = self.path_counts;
                Some(AsPath::merged(p, n - n4, p4))
            }
            _ => Some(AsPath::new(p, self.cfg.four_octet_as)),
        }
    }

    /// AS_PATH as received (2- or 4-octet as negotiated), without AS4_PATH.
    pub fn as_path_raw(&self) -> Option<AsPath<'a>> {
        self.val(AS_PATH)
            .map(|p| AsPath::new(p, self.cfg.four_octet_as))
    }

    /// AS4_PATH as received (only from a 2-octet speaker).
    pub fn as4_path(&self) -> Option<AsPath<'a>> {
        self.val(AS4_PATH).map(|p| AsPath::new(p, true))
    }

    /// NEXT_HOP.
    pub fn next_hop(&self) -> Option<Ipv4Addr> {
        self.u32_at(NEXT_HOP).map(Ipv4Addr::from_bits)
    }

    /// MULTI_EXIT_DISC.
    pub fn med(&self) -> Option<u32> {
        self.u32_at(MED)
    }

    /// LOCAL_PREF.
    pub fn local_pref(&self) -> Option<u32> {
        self.u32_at(LOCAL_PREF)
    }

    /// Whether ATOMIC_AGGREGATE is present.
    pub fn atomic_aggregate(&self) -> bool {
        self.val(ATOMIC_AGGREGATE).is_some()
    }

    /// The aggregator: AGGREGATOR, or AS4_AGGREGATOR when AGGREGATOR carries
    /// AS_TRANS (RFC 6793 §4.2.3).
    pub fn aggregator(&self) -> Option<Aggregator> {
        let g4 = self.val(AS4_AGGREGATOR).and_then(Aggregator::parse);
        match (self.aggregator_raw(), g4) {
            (Some(g), Some(g4)) if g.asn == AS_TRANS => Some(g4),
            (g, _) => g,
        }
    }

    /// COMMUNITIES.
    pub fn communities(&self) -> Option<Communities<'a>> {
        self.val(COMMUNITIES).map(Communities::of_checked)
    }

    /// LARGE_COMMUNITY.
    pub fn large_communities(&self) -> Option<LargeCommunities<'a>> {
        self.val(LARGE_COMMUNITY).map(LargeCommunities::of_checked)
    }

    /// EXTENDED COMMUNITIES.
    pub fn ext_communities(&self) -> Option<ExtCommunities<'a>> {
        self.val(EXT_COMMUNITIES).map(ExtCommunities::of_checked)
    }

    /// IPv6 Address Specific Extended Communities.
    pub fn ipv6_ext_communities(&self) -> Option<Ipv6ExtCommunities<'a>> {
        self.val(IPV6_EXT_COMMUNITIES)
            .map(Ipv6ExtCommunities::of_checked)
    }

    /// ORIGINATOR_ID.
    pub fn originator_id(&self) -> Option<Ipv4Addr> {
        self.u32_at(ORIGINATOR_ID).map(Ipv4Addr::from_bits)
    }

    /// CLUSTER_LIST.
    pub fn cluster_list(&self) -> Option<ClusterList<'a>> {
        self.val(CLUSTER_LIST).map(ClusterList::of_checked)
    }

    /// Only to Customer (RFC 9234).
    pub fn otc(&self) -> Option<u32> {
        self.u32_at(OTC)
    }

    /// AIGP (RFC 7311).
    pub fn aigp(&self) -> Option<Aigp<'a>> {
        self.val(AIGP).and_then(Aigp::parse)
    }

    /// Keeps the value of the attribute in `slot` (none for [`NO_SLOT`]).
    #[inline(always)]
    fn keep(&mut self, slot: Slot, v: &'a [u8]) {
        #[cfg(not(target_os = "none"))]
        let kept = {
            // `v` lies within the path attributes (every attribute is
            // split from them): its offset is the distance between starts.
            let off = v
                .as_ptr()
                .addr()
                .wrapping_sub(self.sections.attributes.as_ptr().addr());
            match (u16::try_from(off), u16::try_from(v.len())) {
                (Ok(off), Ok(len)) => Kept(off, len, core::marker::PhantomData),
                _ => return,
            }
        };
        #[cfg(target_os = "none")]
        let kept = Some(v);
        if let Some(s) = self.vals.get_mut(slot) {
            *s = kept;
        }
    }

    /// The value kept in `slot`.
    #[inline(always)]
    fn val(&self, slot: Slot) -> Option<&'a [u8]> {
        #[cfg(not(target_os = "none"))]
        {
            let Kept(off, len, _) = *self.vals.get(slot)?;
            let off = usize::from(off);
            if off == 0 {
                return None;
            }
            self.sections.attributes.get(off..off + usize::from(len))
        }
        #[cfg(target_os = "none")]
        self.vals.get(slot).copied().flatten()
    }

    /// A kept 4-byte value as a number.
    fn u32_at(&self, slot: Slot) -> Option<u32> {
        self.val(slot).and_then(u32_of)
    }

    /// AGGREGATOR as received.
    fn aggregator_raw(&self) -> Option<Aggregator> {
        self.val(AGGREGATOR).and_then(Aggregator::parse)
    }

    /// Attributes this module does not decode, first occurrences only, with
    /// their flags (to pass on: RFC 4271 §5 — optional transitive ones with
    /// the Partial bit set).
    pub fn unknown_attributes(&self) -> impl Iterator<Item = RawAttribute<'a>> + 'a {
        let mut seen = AttrSet::EMPTY;
        self.attributes()
            .map_while(Result::ok)
            .filter(move |a| seen.insert(a.type_code) && !is_decoded(a.type_code))
    }
}

/// Two checked NLRI fields in turn, each with its family: what
/// [`Update::announced`] and [`Update::withdrawals`] return. One iterator
/// over plain fields for both, rather than a chain of two iterator types,
/// keeps one copy of the prefix decoding in an image.
struct Routes<'a> {
    cur: Field<'a>,
    next: Field<'a>,
    remaining: usize,
}

/// One NLRI field to read: its family, what is left of it, and how to read it.
#[derive(Clone, Copy)]
struct Field<'a> {
    family: AfiSafi,
    rest: &'a [u8],
    add_path: bool,
    v6: bool,
}

impl<'a> Routes<'a> {
    /// The IPv4 unicast field `v4`, then the MP field (family, NLRI,
    /// ADD-PATH), whose NLRI are read only for the families decoded here.
    fn new(
        cfg: &UpdateConfig,
        v4: &'a [u8],
        mp: Option<(AfiSafi, &'a [u8], bool)>,
        remaining: usize,
    ) -> Self {
        let (family, rest, add_path) = mp.unwrap_or((AfiSafi::IPV4_UNICAST, &[], false));
        let v6 = family_is_v6(family);
        Routes {
            cur: Field {
                family: AfiSafi::IPV4_UNICAST,
                rest: v4,
                add_path: cfg.add_path_rx.contains(AfiSafi::IPV4_UNICAST),
                v6: false,
            },
            next: Field {
                family,
                rest: if v6.is_some() { rest } else { &[] },
                add_path,
                v6: v6 == Some(true),
            },
            remaining,
        }
    }
}

impl Iterator for Routes<'_> {
    type Item = (AfiSafi, Nlri);

    // Inlined into the caller's loop on hosted targets, as `nlri()`'s
    // iterator is: a call per prefix cost `announced()` 15 %.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    fn next(&mut self) -> Option<(AfiSafi, Nlri)> {
        loop {
            let f = &mut self.cur;
            // A checked field has no malformed entry; were there one, the
            // field would end there, as with `Checked`.
            if let Some((n, rest)) = read(f) {
                f.rest = rest;
                self.remaining = self.remaining.saturating_sub(1);
                return Some((f.family, n));
            }
            if self.next.rest.is_empty() {
                return None;
            }
            self.cur = self.next;
            self.next.rest = &[];
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

/// The next entry of a checked field. Hosted targets read an IPv4 entry as
/// [`Update::nlri`] does (a word, no 16-byte address to fill): `announced()`
/// is then as fast as `nlri()`. Bare-metal ones keep one byte-wise read for
/// both families, which is smaller.
#[inline(always)]
fn read<'a>(f: &Field<'a>) -> Option<(Nlri, &'a [u8])> {
    #[cfg(not(target_os = "none"))]
    if !f.v6 {
        let (path_id, rest) = if f.add_path {
            let (id, r) = f.rest.split_first_chunk::<4>()?;
            (Some(u32::from_be_bytes(*id)), r)
        } else {
            (None, f.rest)
        };
        let (p, rest) = nlri::split_v4(rest).ok()?;
        return Some((
            Nlri {
                path_id,
                prefix: p.into(),
            },
            rest,
        ));
    }
    nlri::read_entry(f.rest, f.add_path, f.v6)
}

/// Whether [`Update`] decodes the type into a typed field.
pub(crate) const fn is_decoded(t: u8) -> bool {
    matches!(t, 1..=10 | 14..=18 | 25 | 26 | 32 | 35)
}

#[cfg_attr(not(target_os = "none"), inline)]
fn end_of_rib_sections(s: &UpdateSections<'_>) -> Option<AfiSafi> {
    if !s.withdrawn.is_empty() || !s.nlri.is_empty() {
        return None;
    }
    if s.attributes.is_empty() {
        return Some(AfiSafi::IPV4_UNICAST);
    }
    // RFC 4724 §2: only an MP_UNREACH_NLRI with no withdrawn routes.
    let (a, rest) = split_attribute(s.attributes)?;
    match *a.value {
        [a0, a1, safi] if rest.is_empty() && a.type_code == AttrType::MP_UNREACH_NLRI => Some(
            AfiSafi::new(u16::from_be_bytes([a0, a1]).into(), safi.into()),
        ),
        _ => None,
    }
}

/// The family an UPDATE body is an End-of-RIB marker for (RFC 4724 §2),
/// without decoding anything else.
pub fn end_of_rib(body: &[u8]) -> Option<AfiSafi> {
    end_of_rib_sections(&UpdateSections::parse(body).ok()?)
}
