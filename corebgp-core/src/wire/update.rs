//! UPDATE framing (RFC 4271 §4.3): the split into withdrawn routes, path
//! attributes and NLRI. Attribute decoding lives in [`crate::update`].

use super::header::{HEADER_LEN, MessageType, write_header};
use super::notification::{Notification, NotificationCode, UpdateSubcode};
use super::{EncodeError, Reader, Writer};

/// The three sections of an UPDATE body, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UpdateSections<'a> {
    /// Withdrawn Routes (IPv4 unicast prefixes).
    pub withdrawn: &'a [u8],
    /// Path Attributes.
    pub attributes: &'a [u8],
    /// Network Layer Reachability Information (IPv4 unicast prefixes).
    pub nlri: &'a [u8],
}

/// Section lengths that do not add up: RFC 4271 §6.3, 3/1 Malformed
/// Attribute List, no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UpdateSectionsError {
    /// The body is shorter than the two length fields.
    Truncated,
    /// Withdrawn Routes Length runs past the message.
    WithdrawnLength,
    /// Total Path Attribute Length runs past the message.
    AttributesLength,
}

impl UpdateSectionsError {
    /// 3/1 Malformed Attribute List (RFC 4271 §6.3).
    pub fn notification(&self) -> Notification<'static> {
        Notification::new(NotificationCode::Update(
            UpdateSubcode::MalformedAttributeList,
        ))
    }
}

impl<'a> UpdateSections<'a> {
    /// Splits an UPDATE body (the bytes after the header).
    #[inline]
    pub fn parse(body: &'a [u8]) -> Result<Self, UpdateSectionsError> {
        let mut r = Reader::new(body);
        let wlen = r.u16().ok_or(UpdateSectionsError::Truncated)?;
        let withdrawn = r
            .take(usize::from(wlen))
            .ok_or(UpdateSectionsError::WithdrawnLength)?;
        let alen = r.u16().ok_or(UpdateSectionsError::WithdrawnLength)?;
        let attributes = r
            .take(usize::from(alen))
            .ok_or(UpdateSectionsError::AttributesLength)?;
        Ok(Self {
            withdrawn,
            attributes,
            nlri: r.rest(),
        })
    }

    /// Whether this is the IPv4 unicast End-of-RIB marker: an UPDATE with
    /// nothing in it (RFC 4724 §2).
    pub fn is_ipv4_end_of_rib(&self) -> bool {
        self.withdrawn.is_empty() && self.attributes.is_empty() && self.nlri.is_empty()
    }

    /// Length of the encoded message, header included.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + 4 + self.withdrawn.len() + self.attributes.len() + self.nlri.len()
    }
}

/// Writes a whole UPDATE from its three sections, refusing a message longer
/// than `max_len` (4096, or the RFC 8654 limit once negotiated).
pub fn encode_update_sections(
    sections: &UpdateSections<'_>,
    buf: &mut [u8],
    max_len: usize,
) -> Result<usize, EncodeError> {
    let len = sections.encoded_len();
    let max = max_len.min(usize::from(u16::MAX));
    if len > max {
        return Err(EncodeError::MessageTooLong { len, max });
    }
    super::buf::check_room(buf, len)?;
    let mut w = Writer::new(buf);
    write_header(&mut w, len as u16, MessageType::Update);
    w.u16(sections.withdrawn.len() as u16);
    w.put(sections.withdrawn);
    w.u16(sections.attributes.len() as u16);
    w.put(sections.attributes);
    w.put(sections.nlri);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::MAX_MESSAGE_LEN;

    #[test]
    fn split_and_rebuild() {
        // BIRD's IPv4 UPDATE from CoreBGP's integration test: ORIGIN IGP,
        // AS_PATH [65002], NEXT_HOP 192.0.2.2, NLRI 10.0.0.0/8.
        let body = [
            0, 0, 0, 20, 0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xea, 0x40, 3, 4, 192, 0, 2,
            2, 8, 10,
        ];
        let s = UpdateSections::parse(&body).unwrap();
        assert!(s.withdrawn.is_empty());
        assert_eq!(s.attributes.len(), 20);
        assert_eq!(s.nlri, &[8, 10]);
        let mut buf = [0u8; 64];
        let n = encode_update_sections(&s, &mut buf, MAX_MESSAGE_LEN).unwrap();
        assert_eq!(&buf[19..n], &body);
        assert!(
            UpdateSections::parse(&[0, 0, 0, 0])
                .unwrap()
                .is_ipv4_end_of_rib()
        );
    }

    #[test]
    fn overruns_are_3_1() {
        for (body, err) in [
            (&[0u8][..], UpdateSectionsError::Truncated),
            (&[0, 3, 0, 0], UpdateSectionsError::WithdrawnLength),
            (&[0, 2, 0, 0], UpdateSectionsError::WithdrawnLength),
            (&[0, 0, 0, 1], UpdateSectionsError::AttributesLength),
        ] {
            assert_eq!(UpdateSections::parse(body), Err(err));
            let n = err.notification();
            assert_eq!((n.code.code(), n.code.subcode(), n.data.len()), (3, 1, 0));
        }
    }
}
