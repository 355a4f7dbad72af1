//! TEST-ONLY STAND-IN SPEAKER, to be replaced by corebgp-core's shared driver.
//!
//! The driver (sans-IO typestate session + async loop + plugin) is being
//! written in corebgp-core. Until it lands, the adapter's tests need BGP
//! traffic on their connections, so this speaker produces it with the core's
//! wire codec only: OPEN / KEEPALIVE exchange, asserting the peer's OPEN,
//! hand-built UPDATEs, and a Cease. It runs no FSM and no timers: every test
//! using it finishes well inside the hold time. When the driver lands, the
//! tests call the driver instead and this file goes.

use std::net::Ipv4Addr;

use corebgp_core::wire::{
    AfiSafi, Capability, CeaseSubcode, Framer, KEEPALIVE, MAX_MESSAGE_LEN, Message, Notification,
    NotificationCode, OpenBuilder, UpdateSections, encode_update_sections,
};
use embedded_io_async::{Error as _, Read, Write};

/// Who the stand-in is.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    /// AS number (4-octet capable).
    pub asn: u32,
    /// BGP Identifier.
    pub bgp_id: Ipv4Addr,
    /// Proposed hold time.
    pub hold_time: u16,
}

/// What the peer's OPEN said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerOpen {
    /// My AS field of the OPEN.
    pub my_as_field: u16,
    /// The peer's AS (4-octet AS capability, else My AS).
    pub asn: u32,
    /// Proposed hold time.
    pub hold_time: u16,
    /// BGP Identifier.
    pub bgp_id: Ipv4Addr,
    /// The 4-octet AS capability, if sent.
    pub four_octet_as: Option<u32>,
    /// Multiprotocol capabilities sent.
    pub multiprotocol: Vec<AfiSafi>,
}

/// A received NOTIFICATION.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Code and subcode.
    pub code: NotificationCode,
    /// RFC 9003 shutdown communication, when present and valid.
    pub communication: Option<String>,
}

/// The stand-in speaker over any `embedded-io-async` transport; its framer
/// works in `B` (the adapter's slot buffer, or a `Vec`).
pub struct StandIn<R, W, B> {
    r: R,
    w: W,
    framer: Framer<B>,
    me: Identity,
}

impl<R: Read, W: Write, B: AsRef<[u8]> + AsMut<[u8]>> StandIn<R, W, B> {
    /// A speaker on `r`/`w` with framer buffer `buf`.
    pub fn new(r: R, w: W, buf: B, me: Identity) -> Self {
        Self {
            r,
            w,
            framer: Framer::new(buf),
            me,
        }
    }

    /// Writes bytes and flushes.
    pub async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.w
            .write_all(bytes)
            .await
            .map_err(|e| format!("write: {:?}", e.kind()))?;
        self.w
            .flush()
            .await
            .map_err(|e| format!("flush: {:?}", e.kind()))
    }

    /// The next whole message (header included), copied out.
    pub async fn recv(&mut self) -> Result<Vec<u8>, String> {
        loop {
            if let Some(m) = self.framer.next_message() {
                return m.map(<[u8]>::to_vec).map_err(|e| format!("framing: {e}"));
            }
            let n = self
                .r
                .read(self.framer.read_buf())
                .await
                .map_err(|e| format!("read: {:?}", e.kind()))?;
            if n == 0 {
                return Err("EOF".into());
            }
            self.framer.commit(n);
        }
    }

    /// Sends OPEN (IPv4 + IPv6 unicast, route refresh, 4-octet AS), expects
    /// the peer's OPEN, sends KEEPALIVE, expects KEEPALIVE: both sides are
    /// Established. Returns the peer's OPEN.
    pub async fn establish(&mut self) -> Result<PeerOpen, String> {
        let caps = [
            Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
            Capability::MultiProtocol(AfiSafi::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(self.me.asn),
        ];
        let open = OpenBuilder {
            my_as: OpenBuilder::my_as_field(self.me.asn),
            hold_time: self.me.hold_time,
            bgp_id: self.me.bgp_id,
            capabilities: &caps,
            force_extended_parameters: false,
        };
        let mut buf = [0u8; 128];
        let n = open
            .encode(&mut buf)
            .map_err(|e| format!("encode OPEN: {e:?}"))?;
        self.send(&buf[..n]).await?;

        let msg = self.recv().await?;
        let peer = match Message::parse(&msg, MAX_MESSAGE_LEN) {
            Ok(Message::Open(o)) => PeerOpen {
                my_as_field: o.my_as,
                asn: o.asn(),
                hold_time: o.hold_time,
                bgp_id: o.bgp_id,
                four_octet_as: o.four_octet_as(),
                multiprotocol: o
                    .capabilities()
                    .filter_map(|c| match c {
                        Ok(Capability::MultiProtocol(af)) => Some(af),
                        _ => None,
                    })
                    .collect(),
            },
            Ok(Message::Notification(n)) => {
                return Err(format!("NOTIFICATION instead of OPEN: {n}"));
            }
            other => return Err(format!("expected OPEN, got {other:?}")),
        };
        self.send(&KEEPALIVE).await?;
        let msg = self.recv().await?;
        match Message::parse(&msg, MAX_MESSAGE_LEN) {
            Ok(Message::Keepalive) => Ok(peer),
            Ok(Message::Notification(n)) => Err(format!("NOTIFICATION instead of KEEPALIVE: {n}")),
            other => Err(format!("expected KEEPALIVE, got {other:?}")),
        }
    }

    /// Sends an IPv4 UPDATE announcing `prefix`/`len` with ORIGIN IGP,
    /// AS_PATH = [own AS] (4-octet) and NEXT_HOP `next_hop`. Hand-built
    /// attributes until the core's UPDATE builder is used here.
    pub async fn announce_v4(
        &mut self,
        prefix: [u8; 4],
        len: u8,
        next_hop: Ipv4Addr,
    ) -> Result<(), String> {
        let mut attrs = vec![0x40, 1, 1, 0]; // ORIGIN IGP
        attrs.extend_from_slice(&[0x40, 2, 6, 2, 1]); // AS_PATH: one AS_SEQUENCE of one AS
        attrs.extend_from_slice(&self.me.asn.to_be_bytes());
        attrs.extend_from_slice(&[0x40, 3, 4]); // NEXT_HOP
        attrs.extend_from_slice(&next_hop.octets());
        let mut nlri = vec![len];
        nlri.extend_from_slice(&prefix[..usize::from(len).div_ceil(8)]);
        let sections = UpdateSections {
            withdrawn: &[],
            attributes: &attrs,
            nlri: &nlri,
        };
        let mut buf = [0u8; 256];
        let n = encode_update_sections(&sections, &mut buf, MAX_MESSAGE_LEN)
            .map_err(|e| format!("encode UPDATE: {e:?}"))?;
        self.send(&buf[..n]).await
    }

    /// Receives until an UPDATE whose NLRI is non-empty; returns the NLRI
    /// bytes. KEEPALIVEs and End-of-RIB markers are skipped.
    pub async fn next_announcement(&mut self) -> Result<Vec<u8>, String> {
        loop {
            let msg = self.recv().await?;
            match Message::parse(&msg, MAX_MESSAGE_LEN) {
                Ok(Message::Keepalive) => {}
                Ok(Message::Update(u)) if u.nlri.is_empty() => {}
                Ok(Message::Update(u)) => return Ok(u.nlri.to_vec()),
                Ok(Message::Notification(n)) => return Err(format!("NOTIFICATION: {n}")),
                other => return Err(format!("expected UPDATE, got {other:?}")),
            }
        }
    }

    /// Sends a Cease / Administrative Shutdown with an RFC 9003 message.
    pub async fn cease(&mut self, communication: &str) -> Result<(), String> {
        let mut buf = [0u8; 512];
        let n = Notification::encode_shutdown(
            CeaseSubcode::AdministrativeShutdown,
            communication,
            &mut buf,
        )
        .map_err(|e| format!("encode Cease: {e:?}"))?;
        self.send(&buf[..n]).await
    }

    /// Receives until a NOTIFICATION (KEEPALIVEs and UPDATEs skipped).
    pub async fn expect_notification(&mut self) -> Result<Received, String> {
        loop {
            let msg = self.recv().await?;
            match Message::parse(&msg, MAX_MESSAGE_LEN) {
                Ok(Message::Keepalive | Message::Update(_)) => {}
                Ok(Message::Notification(n)) => {
                    return Ok(Received {
                        code: n.code,
                        communication: n
                            .shutdown_communication()
                            .and_then(Result::ok)
                            .map(str::to_owned),
                    });
                }
                other => return Err(format!("expected NOTIFICATION, got {other:?}")),
            }
        }
    }
}

/// The Cease every test expects after [`StandIn::cease`].
pub fn admin_shutdown(communication: &str) -> Received {
    Received {
        code: NotificationCode::Cease(CeaseSubcode::AdministrativeShutdown),
        communication: Some(communication.to_owned()),
    }
}
