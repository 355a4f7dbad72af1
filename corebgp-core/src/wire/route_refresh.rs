//! ROUTE-REFRESH (RFC 2918) with the Enhanced Route Refresh subtypes
//! (RFC 7313).

use super::header::{HEADER_LEN, MessageType, write_header};
use super::notification::{Notification, NotificationCode, RouteRefreshSubcode};
use super::types::{Afi, AfiSafi, Safi, open_enum};
use super::{EncodeError, Reader, Writer};

open_enum! {
    /// Message Subtype (RFC 7313 §3.2; "Reserved" in RFC 2918).
    pub enum RouteRefreshSubtype: u8 {
        /// 0: a normal route refresh request.
        Normal = 0,
        /// 1: Beginning of Route Refresh (BoRR).
        BeginningOfRouteRefresh = 1,
        /// 2: End of Route Refresh (EoRR).
        EndOfRouteRefresh = 2,
    }
}

/// A ROUTE-REFRESH message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RouteRefresh<'a> {
    /// The address family to refresh.
    pub family: AfiSafi,
    /// Message subtype. RFC 7313 §5: a subtype other than 0-2 is ignored by
    /// the receiver; the session does that.
    pub subtype: RouteRefreshSubtype,
    /// Bytes after the fixed four (Outbound Route Filtering entries,
    /// RFC 5291); empty otherwise.
    pub orf: &'a [u8],
}

/// A ROUTE-REFRESH that fails RFC 7313 §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RouteRefreshError<'a> {
    /// A BoRR or EoRR whose body is not 4 bytes (or any body under 4):
    /// 7/1, data = the complete message.
    InvalidMessageLength(&'a [u8]),
}

impl<'a> RouteRefreshError<'a> {
    /// The NOTIFICATION RFC 7313 §5 requires.
    pub fn notification(&self) -> Notification<'a> {
        let Self::InvalidMessageLength(msg) = *self;
        Notification::with_data(
            NotificationCode::RouteRefresh(RouteRefreshSubcode::InvalidMessageLength),
            msg,
        )
    }
}

impl<'a> RouteRefresh<'a> {
    /// A normal refresh request for `family`.
    pub const fn request(family: AfiSafi) -> Self {
        Self {
            family,
            subtype: RouteRefreshSubtype::Normal,
            orf: &[],
        }
    }

    /// Decodes a whole ROUTE-REFRESH message (header included, so that an
    /// error can carry it as RFC 7313 asks).
    pub fn parse(message: &'a [u8]) -> Result<Self, RouteRefreshError<'a>> {
        let bad = RouteRefreshError::InvalidMessageLength(message);
        let body = message.get(HEADER_LEN..).ok_or(bad)?;
        let mut r = Reader::new(body);
        let (Some(afi), Some(subtype), Some(safi)) = (r.u16(), r.u8(), r.u8()) else {
            return Err(bad);
        };
        let subtype = RouteRefreshSubtype::from_raw(subtype);
        let orf = r.rest();
        if !orf.is_empty()
            && matches!(
                subtype,
                RouteRefreshSubtype::BeginningOfRouteRefresh
                    | RouteRefreshSubtype::EndOfRouteRefresh
            )
        {
            return Err(bad);
        }
        Ok(Self {
            family: AfiSafi::new(Afi::from_raw(afi), Safi::from_raw(safi)),
            subtype,
            orf,
        })
    }

    /// Length of the encoded message, header included.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + 4 + self.orf.len()
    }

    /// Writes the whole message.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let len = self.encoded_len();
        let len16 =
            u16::try_from(len).map_err(|_| EncodeError::MessageTooLong { len, max: 65535 })?;
        super::buf::check_room(buf, len)?;
        let mut w = Writer::new(buf);
        write_header(&mut w, len16, MessageType::RouteRefresh);
        w.u16(self.family.afi.to_raw());
        w.u8(self.subtype.to_raw());
        w.u8(self.family.safi.to_raw());
        w.put(self.orf);
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        let rr = RouteRefresh {
            family: AfiSafi::IPV6_UNICAST,
            subtype: RouteRefreshSubtype::EndOfRouteRefresh,
            orf: &[],
        };
        let mut buf = [0u8; 32];
        let n = rr.encode(&mut buf).unwrap();
        assert_eq!(&buf[16..n], &[0, 23, 5, 0, 2, 2, 1]);
        assert_eq!(RouteRefresh::parse(&buf[..n]), Ok(rr));
    }

    #[test]
    fn borr_with_extra_bytes_is_7_1_with_the_message() {
        let mut msg = [0xffu8; 24];
        msg[16..].copy_from_slice(&[0, 24, 5, 0, 1, 1, 1, 9]);
        let e = RouteRefresh::parse(&msg).unwrap_err();
        let n = e.notification();
        assert_eq!((n.code.code(), n.code.subcode()), (7, 1));
        assert_eq!(n.data.as_bytes(), &msg[..]);
        // A normal request may carry ORF entries.
        msg[21] = 0;
        assert_eq!(RouteRefresh::parse(&msg).unwrap().orf, &[9]);
    }
}
