//! What the session and driver fuzz targets share: the configuration and
//! the messages a remote speaker sends, built from arbitrary input, and the
//! checks on what the session writes.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use arbitrary::Arbitrary;
use corebgp_core::session::{Duration, PeerConfig, SessionConfig};
use corebgp_core::wire::{
    AfiSafi, Capability, Framer, KEEPALIVE, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, Message,
    NotificationCode, OpenBuilder, Role, UpdateSections, encode_update_sections,
};

pub const LOCAL_AS: u32 = 65001;
pub const REMOTE_AS: u32 = 65002;
pub const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);

/// An identifier relative to ours (the collision arbiter compares them).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Id {
    Lower,
    Same,
    Higher,
    Zero,
    Any(u32),
}

impl Id {
    pub fn ip(self) -> Ipv4Addr {
        match self {
            Id::Lower => Ipv4Addr::new(10, 0, 0, 1),
            Id::Same => LOCAL_ID,
            Id::Higher => Ipv4Addr::new(10, 0, 0, 9),
            Id::Zero => Ipv4Addr::UNSPECIFIED,
            Id::Any(v) => Ipv4Addr::from_bits(v),
        }
    }
}

#[derive(Arbitrary, Debug)]
pub struct Cfg {
    pub hold: u8,
    pub min_hold: u8,
    pub passive: bool,
    pub delay_open: Option<u8>,
    pub send_hold: Option<u8>,
    pub damping: bool,
    pub extended: bool,
    pub role: Option<u8>,
    pub strict_role: bool,
    pub idle_hold: u8,
    pub connect_retry: u8,
    pub ibgp: bool,
    pub four_octet_remote: bool,
}

impl Cfg {
    pub fn remote_as(&self) -> u32 {
        match (self.ibgp, self.four_octet_remote) {
            (true, _) => LOCAL_AS,
            (false, true) => 4_200_000_000,
            (false, false) => REMOTE_AS,
        }
    }

    pub fn build(&self) -> SessionConfig {
        let mut c = SessionConfig::new(
            PeerConfig {
                remote_address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
                local_as: LOCAL_AS,
                remote_as: self.remote_as(),
            },
            LOCAL_ID,
        );
        c.hold_time = match self.hold % 6 {
            0 => 0,
            1 => 3,
            2 => 4,
            3 => 90,
            4 => 65535,
            _ => 3 + u16::from(self.hold),
        };
        c.min_hold_time = u16::from(self.min_hold % 8);
        c.passive = self.passive;
        c.delay_open = self
            .delay_open
            .map(|s| Duration::from_secs(u64::from(s % 16)));
        c.send_hold_time = self
            .send_hold
            .map(|s| Duration::from_secs(u64::from(s) + 1));
        c.damp_peer_oscillations = self.damping;
        c.extended_messages = self.extended;
        c.role = self.role.map(|r| Role::from_raw(r % 6));
        c.strict_role = self.strict_role && c.role.is_some();
        c.idle_hold_time = Duration::from_secs(u64::from(self.idle_hold % 8));
        c.connect_retry_time = Duration::from_secs(1 + u64::from(self.connect_retry % 64));
        c
    }
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Cap {
    Mp(u16, u8),
    V4,
    V6,
    RouteRefresh,
    Enhanced,
    Extended,
    Role(u8),
    FourOctet(u32),
    FourOctetRemote,
    Raw(u8, Vec<u8>),
}

pub fn caps_of(list: &[Cap], remote_as: u32) -> Vec<Capability<'_>> {
    list.iter()
        .map(|c| match c {
            Cap::Mp(a, s) => Capability::MultiProtocol(AfiSafi::new(
                corebgp_core::wire::Afi::from_raw(*a),
                corebgp_core::wire::Safi::from_raw(*s),
            )),
            Cap::V4 => Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
            Cap::V6 => Capability::MultiProtocol(AfiSafi::IPV6_UNICAST),
            Cap::RouteRefresh => Capability::RouteRefresh,
            Cap::Enhanced => Capability::EnhancedRouteRefresh,
            Cap::Extended => Capability::ExtendedMessage,
            Cap::Role(r) => Capability::Role(Role::from_raw(*r)),
            Cap::FourOctet(a) => Capability::FourOctetAs(*a),
            Cap::FourOctetRemote => Capability::FourOctetAs(remote_as),
            Cap::Raw(code, v) => Capability::Unknown {
                code: *code,
                value: &v[..v.len().min(255)],
            },
        })
        .collect()
}

#[derive(Arbitrary, Debug)]
pub struct OpenMsg {
    pub bad_version: Option<u8>,
    /// None: the configured remote AS (AS_TRANS above 65535).
    pub my_as: Option<u16>,
    pub hold: u16,
    pub id: Id,
    pub caps: Vec<Cap>,
    pub extended_parameters: bool,
}

#[derive(Arbitrary, Debug)]
pub enum Upd {
    Valid,
    /// An UPDATE of about this length (NLRI padding).
    Len(u16),
    /// These bytes as the UPDATE's body.
    Body(Vec<u8>),
}

pub fn update_bytes(u: &Upd) -> Vec<u8> {
    let raw_body = |body: &[u8]| {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&((19 + body.len()).min(65535) as u16).to_be_bytes());
        m.push(2);
        m.extend_from_slice(body);
        m
    };
    match u {
        Upd::Valid => {
            let attrs = [
                0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xea, 0x40, 3, 4, 192, 0, 2, 2,
            ];
            let s = UpdateSections {
                withdrawn: &[],
                attributes: &attrs,
                nlri: &[8, 10],
            };
            let mut buf = vec![0u8; 4096];
            let n = encode_update_sections(&s, &mut buf, MAX_MESSAGE_LEN).unwrap_or(0);
            buf.truncate(n);
            buf
        }
        Upd::Len(len) => {
            let len = usize::from(*len).max(23);
            let nlri: Vec<u8> = (0..len - 23)
                .map(|i| if i % 2 == 0 { 8 } else { 10 })
                .collect();
            let mut body = vec![0, 0, 0, 0];
            body.extend_from_slice(&nlri);
            raw_body(&body)
        }
        Upd::Body(b) => raw_body(&b[..b.len().min(65535 - 19)]),
    }
}

#[derive(Arbitrary, Debug)]
pub enum WireMsg {
    Open(OpenMsg),
    /// An OPEN the session accepts (unless the configuration or the hooks
    /// refuse it): the configured AS, 4-octet AS, IPv4 unicast, Route
    /// Refresh, this hold time (0 or ≥ 3) and identifier. Reaching
    /// OpenConfirm, so Established and collisions, takes one choice, not
    /// the right bytes in a dozen fields.
    GoodOpen(bool, Id),
    Keepalive,
    Update(Upd),
    Notification {
        code: u8,
        subcode: u8,
        data: Vec<u8>,
    },
    RouteRefresh {
        afi: u16,
        safi: u8,
        subtype: u8,
        extra: Vec<u8>,
    },
    /// A header with any length and type, then these bytes.
    Header {
        len: u16,
        ty: u8,
        body: Vec<u8>,
    },
    Raw(Vec<u8>),
}

pub fn wire_bytes(m: &WireMsg, remote_as: u32) -> Vec<u8> {
    let framed = |ty: u8, body: &[u8]| {
        let mut v = vec![0xff; 16];
        v.extend_from_slice(&((19 + body.len()).min(65535) as u16).to_be_bytes());
        v.push(ty);
        v.extend_from_slice(body);
        v
    };
    match m {
        WireMsg::Open(o) => {
            let caps = caps_of(&o.caps, remote_as);
            let b = OpenBuilder {
                my_as: o.my_as.unwrap_or(OpenBuilder::my_as_field(remote_as)),
                hold_time: o.hold,
                bgp_id: o.id.ip(),
                capabilities: &caps,
                force_extended_parameters: o.extended_parameters,
            };
            let mut buf = vec![0u8; 65535];
            match b.encode(&mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    if let Some(v) = o.bad_version {
                        buf[19] = v;
                    }
                    buf
                }
                Err(_) => Vec::new(),
            }
        }
        WireMsg::Keepalive => KEEPALIVE.to_vec(),
        WireMsg::Update(u) => update_bytes(u),
        WireMsg::Notification {
            code,
            subcode,
            data,
        } => {
            let mut body = vec![*code, *subcode];
            body.extend_from_slice(&data[..data.len().min(4000)]);
            framed(3, &body)
        }
        WireMsg::RouteRefresh {
            afi,
            safi,
            subtype,
            extra,
        } => {
            let mut body = afi.to_be_bytes().to_vec();
            body.push(*subtype);
            body.push(*safi);
            body.extend_from_slice(&extra[..extra.len().min(4000)]);
            framed(5, &body)
        }
        WireMsg::Header { len, ty, body } => {
            let mut v = vec![0xff; 16];
            v.extend_from_slice(&len.to_be_bytes());
            v.push(*ty);
            v.extend_from_slice(&body[..body.len().min(4096)]);
            v
        }
        WireMsg::Raw(b) => b.clone(),
        WireMsg::GoodOpen(no_hold, id) => wire_bytes(
            &WireMsg::Open(OpenMsg {
                bad_version: None,
                my_as: None,
                hold: if *no_hold { 0 } else { 90 },
                id: *id,
                caps: vec![Cap::FourOctetRemote, Cap::V4, Cap::RouteRefresh],
                extended_parameters: false,
            }),
            remote_as,
        ),
    }
}

/// Decodes what the session writes on one connection and checks it: every
/// message frames and decodes; our OPEN comes first and once; KEEPALIVE
/// and NOTIFICATION only after it (RFC 4271 §8.2.2:
/// SendNOTIFICATIONwithoutOPEN is off); an UPDATE only after our KEEPALIVE;
/// nothing after a NOTIFICATION; an FSM error carries the message type
/// (RFC 6608 §4).
pub struct Sent {
    framer: Framer<Vec<u8>>,
    pub open: bool,
    pub keepalive: bool,
    pub notification: Option<NotificationCode>,
    pub updates: u32,
}

impl Sent {
    pub fn new() -> Self {
        Self {
            framer: Framer::new(vec![0u8; MAX_EXTENDED_MESSAGE_LEN]),
            open: false,
            keepalive: false,
            notification: None,
            updates: 0,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        self.framer.set_max_message_len(MAX_EXTENDED_MESSAGE_LEN);
        loop {
            let k = self.framer.feed(rest);
            rest = &rest[k..];
            while let Some(m) = self.framer.next_message() {
                let m = m.expect("the session wrote a bad header");
                let msg = Message::parse(m, MAX_EXTENDED_MESSAGE_LEN)
                    .expect("the session wrote an undecodable message");
                assert!(
                    self.notification.is_none(),
                    "a message after our NOTIFICATION"
                );
                match msg {
                    Message::Open(_) => {
                        assert!(!self.open, "two OPENs on one connection");
                        self.open = true;
                    }
                    Message::Keepalive => {
                        assert!(self.open, "KEEPALIVE before our OPEN");
                        self.keepalive = true;
                    }
                    Message::Notification(n) => {
                        assert!(self.open, "NOTIFICATION {:?} before our OPEN", n.code);
                        if let NotificationCode::Fsm(s) = n.code
                            && (1..=3).contains(&s.to_raw())
                        {
                            let data = n.data.as_bytes();
                            assert!(
                                data.len() == 1 && (1..=5).contains(&data[0]),
                                "FSM error data {data:?}"
                            );
                        }
                        self.notification = Some(n.code);
                    }
                    Message::Update(_) => {
                        assert!(self.keepalive, "UPDATE before our KEEPALIVE");
                        self.updates += 1;
                    }
                    Message::RouteRefresh(_) => {}
                }
            }
            if rest.is_empty() {
                return;
            }
        }
    }
}

impl Sent {
    /// An UPDATE the plugin handed over, written whole between the
    /// session's own messages. The session checks its header, type and
    /// length against the negotiated maximum, not its sections: those are
    /// the plugin's (its builder's) to get right, so they are not parsed
    /// here.
    pub fn plugin_update(&mut self, msg: &[u8], max: usize) {
        assert_eq!(self.framer.buffered(), 0, "an UPDATE inside a message");
        assert!(
            self.notification.is_none(),
            "an UPDATE after our NOTIFICATION"
        );
        assert!(self.keepalive, "UPDATE before our KEEPALIVE");
        assert!(msg.len() >= 23 && msg.len() <= max && msg[18] == 2);
        assert_eq!(
            usize::from(u16::from_be_bytes([msg[16], msg[17]])),
            msg.len()
        );
        self.updates += 1;
    }
}
