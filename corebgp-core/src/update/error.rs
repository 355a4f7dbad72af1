//! RFC 7606 verdicts.

use crate::wire::{AfiSafi, Notification, UpdateSubcode};

/// The error-handling approach RFC 7606 §2 prescribes, least severe first
/// (so `Ord` ranks them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Action {
    /// The malformed attribute is ignored; the routes are processed without it.
    AttributeDiscard,
    /// Every route of the UPDATE (NLRI field and MP_REACH_NLRI) is handled as
    /// withdrawn; MP_UNREACH_NLRI and withdrawn routes are processed as usual.
    TreatAsWithdraw,
    /// The family is disabled for the session (RFC 4760 §7): its routes from
    /// this peer are deleted and further ones ignored.
    AfiSafiDisable(AfiSafi),
    /// The session is reset with the NOTIFICATION of the error.
    SessionReset,
}

/// What was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorKind {
    /// Section lengths overrun the body (RFC 4271 §6.3).
    SectionLengths,
    /// An attribute header is cut short, or an attribute runs past the path
    /// attributes (RFC 7606 §4).
    AttributeList,
    /// MP_REACH_NLRI or MP_UNREACH_NLRI appears twice (RFC 7606 §3 g).
    DuplicateMpAttribute,
    /// Optional/Transitive flags conflict with the type (RFC 7606 §3 c).
    Flags,
    /// The length is wrong for the type.
    Length,
    /// ORIGIN value undefined.
    InvalidOrigin,
    /// AS_PATH segment structure, AS 0 (RFC 7607), or confederation segments
    /// from an external peer.
    MalformedAsPath,
    /// A well-known attribute we do not know.
    UnrecognizedWellKnown,
    /// A mandatory attribute is missing.
    MissingWellKnown,
    /// A malformed optional attribute (structure, AS 0, ...).
    MalformedOptional,
    /// The next hop of MP_REACH_NLRI has a length not valid for the family.
    NextHopLength,
    /// A prefix in the Withdrawn Routes or NLRI field is malformed (RFC 7606 §5.3).
    InvalidNetworkField,
    /// A prefix in MP_REACH_NLRI / MP_UNREACH_NLRI is malformed.
    InvalidMpNlri,
}

impl ErrorKind {
    /// The RFC 4271 §6.3 subcode of an error of this kind (RFC 4760 §7:
    /// 3/9 for the MP attributes).
    pub(crate) fn subcode(self) -> UpdateSubcode {
        use UpdateSubcode as S;
        // By kind, in declaration order: one table load, not a branch per kind.
        const SUBCODE: [u8; 13] = [
            S::MalformedAttributeList.to_raw(),         // SectionLengths
            S::MalformedAttributeList.to_raw(),         // AttributeList
            S::MalformedAttributeList.to_raw(),         // DuplicateMpAttribute
            S::AttributeFlagsError.to_raw(),            // Flags
            S::AttributeLengthError.to_raw(),           // Length
            S::InvalidOriginAttribute.to_raw(),         // InvalidOrigin
            S::MalformedAsPath.to_raw(),                // MalformedAsPath
            S::UnrecognizedWellKnownAttribute.to_raw(), // UnrecognizedWellKnown
            S::MissingWellKnownAttribute.to_raw(),      // MissingWellKnown
            S::OptionalAttributeError.to_raw(),         // MalformedOptional
            S::OptionalAttributeError.to_raw(),         // NextHopLength
            S::InvalidNetworkField.to_raw(),            // InvalidNetworkField
            S::OptionalAttributeError.to_raw(),         // InvalidMpNlri
        ];
        S::from_raw(SUBCODE.get(self as usize).copied().unwrap_or(0))
    }
}

/// One error found in an UPDATE: the approach to take, what was wrong, the
/// attribute concerned and the NOTIFICATION (the one to send on reset, or the
/// RFC 4271 one an implementation without RFC 7606 would send).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UpdateError<'a> {
    /// The approach.
    pub action: Action,
    /// What was wrong.
    pub kind: ErrorKind,
    /// The attribute type code, when an attribute is concerned.
    pub type_code: Option<u8>,
    /// The NOTIFICATION.
    pub notification: Notification<'a>,
}

impl UpdateError<'_> {
    /// Whether the session must be reset.
    // Inline: out of line, asking it of an `Err` took the address of the
    // caller's `Result<Update, _>`, which kept LLVM from building the
    // `Update` in place (a copy of it per UPDATE).
    #[inline]
    pub fn is_session_reset(&self) -> bool {
        self.action == Action::SessionReset
    }
}

impl core::fmt::Display for UpdateError<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?} ({:?}", self.kind, self.action)?;
        if let Some(t) = self.type_code {
            write!(f, ", attribute {t}")?;
        }
        write!(f, "): {}", self.notification.code)
    }
}

impl core::error::Error for UpdateError<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The subcode table is indexed by declaration order: every kind, by name.
    #[test]
    fn each_kind_has_its_rfc4271_subcode() {
        use ErrorKind as K;
        use UpdateSubcode as S;
        let want = [
            (K::SectionLengths, S::MalformedAttributeList),
            (K::AttributeList, S::MalformedAttributeList),
            (K::DuplicateMpAttribute, S::MalformedAttributeList),
            (K::Flags, S::AttributeFlagsError),
            (K::Length, S::AttributeLengthError),
            (K::InvalidOrigin, S::InvalidOriginAttribute),
            (K::MalformedAsPath, S::MalformedAsPath),
            (K::UnrecognizedWellKnown, S::UnrecognizedWellKnownAttribute),
            (K::MissingWellKnown, S::MissingWellKnownAttribute),
            (K::MalformedOptional, S::OptionalAttributeError),
            (K::NextHopLength, S::OptionalAttributeError),
            (K::InvalidNetworkField, S::InvalidNetworkField),
            (K::InvalidMpNlri, S::OptionalAttributeError),
        ];
        for (kind, subcode) in want {
            assert_eq!(kind.subcode().to_raw(), subcode.to_raw(), "{kind:?}");
        }
    }
}
