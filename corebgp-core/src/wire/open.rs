//! OPEN messages (RFC 4271 §4.2) with optional parameters, RFC 9072 extended
//! optional parameters length, and capabilities (RFC 5492).

use core::net::Ipv4Addr;

use super::capability::{Capability, CapabilityCode, MalformedCapability, RawCapability};
use super::header::{HEADER_LEN, MAX_MESSAGE_LEN, MessageType, write_header};
use super::notification::{Notification, NotificationCode, NotificationData, OpenSubcode};
use super::{EncodeError, Reader, Writer};

/// The BGP version this implementation speaks.
pub const BGP_VERSION: u8 = 4;
/// AS_TRANS (RFC 6793 §9): the 2-octet stand-in for a 4-octet AS.
pub const AS_TRANS: u16 = 23456;
/// Optional parameter type of capabilities (RFC 5492 §4).
pub const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072 marker: Non-Ext OP Type 255.
const PARAM_EXTENDED_LENGTH: u8 = 255;
/// Fixed part of an OPEN body: version, my AS, hold time, BGP ID, opt len.
const FIXED_LEN: usize = 10;

/// A decoded OPEN: the fixed fields, and the optional parameters as borrowed
/// bytes decoded on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Open<'a> {
    /// Version (always 4 after a successful parse).
    pub version: u8,
    /// My Autonomous System (AS_TRANS when the sender's AS needs 4 octets).
    pub my_as: u16,
    /// Proposed hold time in seconds.
    pub hold_time: u16,
    /// BGP Identifier.
    pub bgp_id: Ipv4Addr,
    params: &'a [u8],
    extended: bool,
}

/// An OPEN that fails RFC 4271 §6.2 (or RFC 5492, 6793, 9234). The variants
/// whose check needs session context (peer AS, own identifier, hold-time
/// policy, required capabilities, roles) are produced by the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum OpenError<'a> {
    /// The body is shorter than the fixed fields: 2/0.
    Truncated,
    /// Version other than 4: 2/1, data = the supported version as two bytes.
    UnsupportedVersion(u8),
    /// My AS (or the 4-octet AS capability) is not the expected AS: 2/2.
    BadPeerAs,
    /// BGP Identifier unacceptable (RFC 6286 §2.2): 2/3.
    BadBgpIdentifier,
    /// An optional parameter type other than capabilities: 2/4.
    UnsupportedOptionalParameter(u8),
    /// Hold time 1 or 2, or refused by policy: 2/6.
    UnacceptableHoldTime(u16),
    /// A required capability is missing: 2/7, data = the capability TLVs
    /// that are required.
    UnsupportedCapability(NotificationData<'a>),
    /// BGP Roles do not match (RFC 9234 §4.2): 2/11.
    RoleMismatch,
    /// Optional parameters whose lengths do not add up: 2/0.
    MalformedParameters,
    /// A capability TLV malformed for its code: 2/0.
    MalformedCapability(MalformedCapability<'a>),
}

impl<'a> OpenError<'a> {
    /// The NOTIFICATION RFC 4271 §6.2 (and RFC 5492, 9234) require.
    pub fn notification(&self) -> Notification<'a> {
        let sub = match self {
            Self::Truncated | Self::MalformedParameters | Self::MalformedCapability(_) => {
                OpenSubcode::Unspecific
            }
            Self::UnsupportedVersion(_) => {
                return Notification {
                    code: NotificationCode::Open(OpenSubcode::UnsupportedVersionNumber),
                    data: NotificationData::u16(u16::from(BGP_VERSION)),
                };
            }
            Self::BadPeerAs => OpenSubcode::BadPeerAs,
            Self::BadBgpIdentifier => OpenSubcode::BadBgpIdentifier,
            Self::UnsupportedOptionalParameter(_) => OpenSubcode::UnsupportedOptionalParameter,
            Self::UnacceptableHoldTime(_) => OpenSubcode::UnacceptableHoldTime,
            Self::UnsupportedCapability(data) => {
                return Notification {
                    code: NotificationCode::Open(OpenSubcode::UnsupportedCapability),
                    data: *data,
                };
            }
            Self::RoleMismatch => OpenSubcode::RoleMismatch,
        };
        Notification::new(NotificationCode::Open(sub))
    }
}

impl core::fmt::Display for OpenError<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated => f.write_str("OPEN truncated"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported BGP version {v}"),
            Self::BadPeerAs => f.write_str("bad peer AS"),
            Self::BadBgpIdentifier => f.write_str("bad BGP identifier"),
            Self::UnsupportedOptionalParameter(t) => {
                write!(f, "unsupported optional parameter {t}")
            }
            Self::UnacceptableHoldTime(h) => write!(f, "unacceptable hold time {h}"),
            Self::UnsupportedCapability(_) => f.write_str("required capability missing"),
            Self::RoleMismatch => f.write_str("BGP role mismatch"),
            Self::MalformedParameters => f.write_str("malformed optional parameters"),
            Self::MalformedCapability(c) => write!(f, "malformed capability {}", c.raw.code),
        }
    }
}

impl core::error::Error for OpenError<'_> {}

/// One optional parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OptionalParameter<'a> {
    /// Parameter type.
    pub param_type: u8,
    /// Parameter value.
    pub value: &'a [u8],
}

/// Iterator over optional parameters (validated by [`Open::parse`]).
#[derive(Debug, Clone)]
pub struct Parameters<'a> {
    r: Reader<'a>,
    extended: bool,
}

impl<'a> Iterator for Parameters<'a> {
    type Item = OptionalParameter<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        let param_type = self.r.u8()?;
        let len = if self.extended {
            self.r.u16()?
        } else {
            u16::from(self.r.u8()?)
        };
        let value = self.r.take(usize::from(len))?;
        Some(OptionalParameter { param_type, value })
    }
}

/// Iterator over every capability TLV of every capabilities parameter, in
/// wire order.
#[derive(Debug, Clone)]
pub struct RawCapabilities<'a> {
    params: Parameters<'a>,
    current: Reader<'a>,
}

impl<'a> Iterator for RawCapabilities<'a> {
    type Item = RawCapability<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if !self.current.is_empty() {
                let code = self.current.u8()?;
                let len = self.current.u8()?;
                let value = self.current.take(usize::from(len))?;
                return Some(RawCapability { code, value });
            }
            let p = self.params.find(|p| p.param_type == PARAM_CAPABILITIES)?;
            self.current = Reader::new(p.value);
        }
    }
}

/// Iterator over typed capabilities, in wire order.
#[derive(Debug, Clone)]
pub struct Capabilities<'a>(RawCapabilities<'a>);

impl<'a> Iterator for Capabilities<'a> {
    type Item = Result<Capability<'a>, MalformedCapability<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(RawCapability::parse)
    }
}

/// Checks a capabilities parameter: a sequence of whole TLVs.
fn check_capability_tlvs(mut r: Reader<'_>) -> bool {
    while !r.is_empty() {
        let (Some(_code), Some(len)) = (r.u8(), r.u8()) else {
            return false;
        };
        if r.take(usize::from(len)).is_none() {
            return false;
        }
    }
    true
}

impl<'a> Open<'a> {
    /// Decodes an OPEN body (the bytes after the header). Checks the version
    /// first (RFC 4271 §6.2), then that the optional parameters are whole and
    /// of the capabilities type, with RFC 9072 extended lengths recognised.
    pub fn parse(body: &'a [u8]) -> Result<Self, OpenError<'a>> {
        let mut r = Reader::new(body);
        let version = r.u8().ok_or(OpenError::Truncated)?;
        if version != BGP_VERSION {
            return Err(OpenError::UnsupportedVersion(version));
        }
        let (Some(my_as), Some(hold_time), Some(id), Some(opt_len)) =
            (r.u16(), r.u16(), r.u32(), r.u8())
        else {
            return Err(OpenError::Truncated);
        };
        let mut rest = r;
        // RFC 9072 §2: Non-Ext OP Len 255 followed by Non-Ext OP Type 255
        // announces a two-byte length and two-byte parameter lengths.
        let extended = opt_len == 255 && rest.rest().first() == Some(&PARAM_EXTENDED_LENGTH);
        let params = if extended {
            let _ = rest.u8();
            let len = rest.u16().ok_or(OpenError::MalformedParameters)?;
            if usize::from(len) != rest.rest().len() {
                return Err(OpenError::MalformedParameters);
            }
            rest.rest()
        } else {
            if usize::from(opt_len) != rest.rest().len() {
                return Err(OpenError::MalformedParameters);
            }
            rest.rest()
        };
        // Validate every parameter once so the iterators can trust the bytes.
        let mut pr = Reader::new(params);
        while !pr.is_empty() {
            let ptype = pr.u8().ok_or(OpenError::MalformedParameters)?;
            let plen = if extended {
                pr.u16()
            } else {
                pr.u8().map(u16::from)
            };
            let value = plen
                .and_then(|l| pr.take(usize::from(l)))
                .ok_or(OpenError::MalformedParameters)?;
            if ptype != PARAM_CAPABILITIES {
                return Err(OpenError::UnsupportedOptionalParameter(ptype));
            }
            if !check_capability_tlvs(Reader::new(value)) {
                return Err(OpenError::MalformedParameters);
            }
        }
        Ok(Self {
            version,
            my_as,
            hold_time,
            bgp_id: Ipv4Addr::from_bits(id),
            params,
            extended,
        })
    }

    /// Whether the parameters used the RFC 9072 extended format.
    pub fn uses_extended_parameters(&self) -> bool {
        self.extended
    }

    /// The optional parameters bytes.
    pub fn parameters_bytes(&self) -> &'a [u8] {
        self.params
    }

    /// The optional parameters.
    pub fn parameters(&self) -> Parameters<'a> {
        Parameters {
            r: Reader::new(self.params),
            extended: self.extended,
        }
    }

    /// Every capability TLV, raw.
    pub fn raw_capabilities(&self) -> RawCapabilities<'a> {
        RawCapabilities {
            params: self.parameters(),
            current: Reader::new(&[]),
        }
    }

    /// Every capability, typed.
    pub fn capabilities(&self) -> Capabilities<'a> {
        Capabilities(self.raw_capabilities())
    }

    /// Whether any capability has this code.
    pub fn has_capability(&self, code: u8) -> bool {
        self.raw_capabilities().any(|c| c.code == code)
    }

    /// Re-encodes this OPEN with its optional parameters copied verbatim.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let head = if self.extended { 3 } else { 0 };
        let len = HEADER_LEN + FIXED_LEN + head + self.params.len();
        if len > MAX_MESSAGE_LEN {
            return Err(EncodeError::MessageTooLong {
                len,
                max: MAX_MESSAGE_LEN,
            });
        }
        super::buf::check_room(buf, len)?;
        let mut w = Writer::new(buf);
        write_header(&mut w, len as u16, MessageType::Open);
        w.u8(self.version);
        w.u16(self.my_as);
        w.u16(self.hold_time);
        w.u32(self.bgp_id.to_bits());
        if self.extended {
            w.u8(255);
            w.u8(PARAM_EXTENDED_LENGTH);
            w.u16(self.params.len() as u16);
        } else {
            let Ok(l) = u8::try_from(self.params.len()) else {
                return Err(EncodeError::FieldTooLong);
            };
            w.u8(l);
        }
        w.put(self.params);
        w.finish()
    }

    /// The AS of the first well-formed 4-octet AS capability (RFC 6793).
    pub fn four_octet_as(&self) -> Option<u32> {
        // Raw: the first well-formed one (4 bytes), as the typed decoder
        // would find it, without linking that decoder.
        self.raw_capabilities().find_map(|c| {
            if c.code != CapabilityCode::FourOctetAs.to_raw() {
                return None;
            }
            <[u8; 4]>::try_from(c.value).ok().map(u32::from_be_bytes)
        })
    }

    /// The sender's AS: the 4-octet AS capability when present, otherwise
    /// My AS (RFC 6793 §4.1).
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }
}

/// Encodes an OPEN.
#[derive(Debug, Clone, Copy)]
pub struct OpenBuilder<'c> {
    /// My AS field: the AS, or [`AS_TRANS`] for a 4-octet AS (see
    /// [`OpenBuilder::my_as_field`]).
    pub my_as: u16,
    /// Hold time in seconds.
    pub hold_time: u16,
    /// BGP Identifier.
    pub bgp_id: Ipv4Addr,
    /// Capabilities, sent in one capabilities parameter.
    pub capabilities: &'c [Capability<'c>],
    /// Use the RFC 9072 format even when the parameters fit in 255 bytes.
    pub force_extended_parameters: bool,
}

impl<'c> OpenBuilder<'c> {
    /// An OPEN from `asn` (My AS becomes AS_TRANS above 65535; put the
    /// 4-octet AS capability in `capabilities`, RFC 6793 §4.1), in the
    /// standard optional-parameter format unless the parameters need RFC 9072.
    pub const fn new(
        asn: u32,
        hold_time: u16,
        bgp_id: Ipv4Addr,
        capabilities: &'c [Capability<'c>],
    ) -> Self {
        Self {
            my_as: Self::my_as_field(asn),
            hold_time,
            bgp_id,
            capabilities,
            force_extended_parameters: false,
        }
    }

    /// The My AS field for `asn`: itself, or AS_TRANS above 65535 (RFC 6793 §4.1).
    pub const fn my_as_field(asn: u32) -> u16 {
        if asn > u16::MAX as u32 {
            AS_TRANS
        } else {
            asn as u16
        }
    }

    fn capabilities_len(&self) -> usize {
        self.capabilities.iter().map(|c| 2 + c.value_len()).sum()
    }

    fn extended(&self) -> bool {
        self.force_extended_parameters || self.capabilities_len() + 2 > 255
    }

    /// Length of the encoded message, header included.
    pub fn encoded_len(&self) -> usize {
        let caps = self.capabilities_len();
        let params = match (caps, self.extended()) {
            (0, false) => 0,
            (_, false) => 2 + caps,
            // Non-Ext OP Type, Extended Opt. Parm. Length, then one parameter
            // with a two-byte length (RFC 9072 §2).
            (_, true) => 3 + 3 + caps,
        };
        HEADER_LEN + FIXED_LEN + params
    }

    /// Writes the whole message (header included).
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let caps = self.capabilities_len();
        write_open(self, caps, self.extended(), buf, |dst| {
            let mut pos = 0;
            for c in self.capabilities {
                let n = 2 + c.value_len();
                let Some(d) = dst.get_mut(pos..pos + n) else {
                    return false;
                };
                if !c.write(d) {
                    return false;
                }
                pos += n;
            }
            true
        })
    }

    /// Writes the whole message with `tlvs` (already-encoded capability
    /// TLVs, e.g. from a capability set) instead of
    /// [`OpenBuilder::capabilities`].
    pub fn encode_with_raw_capabilities(
        &self,
        tlvs: &[u8],
        buf: &mut [u8],
    ) -> Result<usize, EncodeError> {
        let extended = self.force_extended_parameters || tlvs.len() + 2 > 255;
        write_open(self, tlvs.len(), extended, buf, |dst| {
            // `copy`: one shared panic location on firmware, not one more.
            super::buf::copy(dst, tlvs);
            true
        })
    }
}

/// Writes an OPEN whose capability TLVs (`caps` bytes in all) are written
/// by `write_caps` into the exact slice they occupy.
fn write_open(
    b: &OpenBuilder<'_>,
    caps: usize,
    extended: bool,
    buf: &mut [u8],
    write_caps: impl FnOnce(&mut [u8]) -> bool,
) -> Result<usize, EncodeError> {
    let params = match (caps, extended) {
        (0, false) => 0,
        (_, false) => 2 + caps,
        // Non-Ext OP Type, Extended Opt. Parm. Length, then one parameter
        // with a two-byte length (RFC 9072 §2).
        (_, true) => 3 + 3 + caps,
    };
    let len = HEADER_LEN + FIXED_LEN + params;
    if len > MAX_MESSAGE_LEN {
        return Err(EncodeError::MessageTooLong {
            len,
            max: MAX_MESSAGE_LEN,
        });
    }
    super::buf::check_room(buf, len)?;
    let mut w = Writer::new(buf);
    write_header(&mut w, len as u16, MessageType::Open);
    w.u8(BGP_VERSION);
    w.u16(b.my_as);
    w.u16(b.hold_time);
    w.u32(b.bgp_id.to_bits());
    if extended {
        // Non-Ext OP Len and Non-Ext OP Type both 255 (RFC 9072 §2).
        w.u16(u16::from_be_bytes([255, PARAM_EXTENDED_LENGTH]));
        w.u16((3 + caps) as u16);
        w.u8(PARAM_CAPABILITIES);
        w.u16(caps as u16);
    } else {
        // Opt Parm Len: 0 without capabilities.
        w.u8(params as u8);
        if caps > 0 {
            w.u8(PARAM_CAPABILITIES);
            w.u8(caps as u8);
        }
    }
    let pos = w.pos();
    w.finish()?;
    let Some(dst) = buf.get_mut(pos..pos + caps) else {
        return Err(EncodeError::BufferTooSmall {
            needed: len,
            available: buf.len(),
        });
    };
    if !write_caps(dst) {
        return Err(EncodeError::FieldTooLong);
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{AfiSafi, HEADER_LEN};

    /// CoreBGP's verified OPEN body (corebgp-go.md §3.2): AS 65001, hold 90,
    /// id 1.1.1.1, one capability parameter with 4-octet AS 65001.
    const COREBGP_OPEN_BODY: &[u8] = &[
        4, 0xfd, 0xe9, 0, 0x5a, 1, 1, 1, 1, 8, 2, 6, 0x41, 4, 0, 0, 0xfd, 0xe9,
    ];

    #[test]
    fn known_answer_both_directions() {
        let caps = [Capability::FourOctetAs(65001)];
        let b = OpenBuilder {
            my_as: 65001,
            hold_time: 90,
            bgp_id: Ipv4Addr::new(1, 1, 1, 1),
            capabilities: &caps,
            force_extended_parameters: false,
        };
        let mut buf = [0u8; 128];
        let n = b.encode(&mut buf).unwrap();
        assert_eq!(n, HEADER_LEN + COREBGP_OPEN_BODY.len());
        assert_eq!(&buf[HEADER_LEN..n], COREBGP_OPEN_BODY);
        let o = Open::parse(COREBGP_OPEN_BODY).unwrap();
        assert_eq!((o.version, o.my_as, o.hold_time), (4, 65001, 90));
        assert_eq!(o.bgp_id, Ipv4Addr::new(1, 1, 1, 1));
        assert_eq!(o.four_octet_as(), Some(65001));
        assert!(!o.uses_extended_parameters());
    }

    #[test]
    fn rfc9072_extended_parameters() {
        let caps = [
            Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
            Capability::FourOctetAs(4_200_000_001),
        ];
        let b = OpenBuilder {
            my_as: AS_TRANS,
            hold_time: 180,
            bgp_id: Ipv4Addr::new(10, 0, 0, 1),
            capabilities: &caps,
            force_extended_parameters: true,
        };
        let mut buf = [0u8; 128];
        let n = b.encode(&mut buf).unwrap();
        // opt len 255, type 255, ext len 15, param type 2, param len 12.
        assert_eq!(
            &buf[HEADER_LEN + 9..HEADER_LEN + 16],
            &[255, 255, 0, 15, 2, 0, 12]
        );
        let o = Open::parse(&buf[HEADER_LEN..n]).unwrap();
        assert!(o.uses_extended_parameters());
        assert_eq!(o.asn(), 4_200_000_001);
        let got: std::vec::Vec<_> = o.capabilities().map(|c| c.unwrap()).collect();
        assert_eq!(got, caps);
    }

    #[test]
    fn large_capability_sets_switch_to_extended_format() {
        let values = [[7u8; 200], [8u8; 200]];
        let caps = [
            Capability::Unknown {
                code: 130,
                value: &values[0],
            },
            Capability::Unknown {
                code: 131,
                value: &values[1],
            },
        ];
        let b = OpenBuilder {
            my_as: 1,
            hold_time: 90,
            bgp_id: Ipv4Addr::new(1, 2, 3, 4),
            capabilities: &caps,
            force_extended_parameters: false,
        };
        let mut buf = [0u8; 1024];
        let n = b.encode(&mut buf).unwrap();
        let o = Open::parse(&buf[HEADER_LEN..n]).unwrap();
        assert!(o.uses_extended_parameters());
        assert_eq!(o.raw_capabilities().count(), 2);
        let too_long = [0u8; 256];
        let caps = [Capability::Unknown {
            code: 130,
            value: &too_long,
        }];
        let b = OpenBuilder {
            capabilities: &caps,
            ..b
        };
        assert_eq!(b.encode(&mut buf), Err(EncodeError::FieldTooLong));
    }

    #[test]
    fn new_puts_as_trans_for_four_octet_asns() {
        let caps = [Capability::FourOctetAs(4_200_000_000)];
        let b = OpenBuilder::new(4_200_000_000, 90, Ipv4Addr::new(1, 1, 1, 1), &caps);
        assert_eq!(b.my_as, AS_TRANS);
        assert!(!b.force_extended_parameters);
        assert_eq!(
            OpenBuilder::new(65001, 90, Ipv4Addr::new(1, 1, 1, 1), &caps).my_as,
            65001
        );
    }

    #[test]
    fn no_optional_parameters_parses() {
        let body = [4, 0, 1, 0, 90, 1, 2, 3, 4, 0];
        let o = Open::parse(&body).unwrap();
        assert_eq!(o.raw_capabilities().count(), 0);
        assert_eq!(o.asn(), 1);
    }

    #[test]
    fn several_capability_parameters_are_concatenated() {
        let body = [4, 0, 1, 0, 90, 1, 2, 3, 4, 8, 2, 2, 2, 0, 2, 2, 70, 0];
        let o = Open::parse(&body).unwrap();
        let codes: std::vec::Vec<u8> = o.raw_capabilities().map(|c| c.code).collect();
        assert_eq!(codes, [2, 70]);
        assert_eq!(o.parameters().count(), 2);
    }
}
