//! The JSON lines `collector` prints (and `announcer`'s health events): one
//! serde type per line, `{"event": …}` first. The README documents every
//! field; fields are only ever added, never renamed or removed.

#![allow(dead_code)]

use std::net::IpAddr;

use corebgp_std::core::update::{AsPath, Origin, SegmentType, Update};
use std::io::{BufWriter, Stdout, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use corebgp_std::core::session::DownReason;
use corebgp_std::core::wire::{Afi, AfiSafi, Notification, Safi};
use serde::Serialize;
use tokio::sync::Notify;

/// One line of output.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Record<'a> {
    /// A connection changed state (RFC 4271 §8.2.2 names, lower case).
    State {
        peer: IpAddr,
        /// Which TCP connection: "outbound" (we dialled) or "inbound".
        connection: &'static str,
        from: &'static str,
        to: &'static str,
        at: f64,
    },
    /// The session reached Established.
    Established {
        peer: IpAddr,
        peer_as: u32,
        peer_id: String,
        hold_time: u16,
        /// The capabilities the peer advertised, by name (`multiprotocol:ipv4-unicast`, …).
        capabilities: Vec<String>,
        /// The families both sides negotiated (`ipv4-unicast`, …).
        families: Vec<String>,
        /// Our address on this session.
        local_address: Option<IpAddr>,
        at: f64,
    },
    /// One UPDATE.
    Update(Box<UpdateRecord>),
    /// An End-of-RIB marker (RFC 4724 §2).
    EndOfRib {
        peer: IpAddr,
        afi: String,
        safi: String,
        /// Prefixes announced in this family since the session came up.
        prefixes: u64,
        at: f64,
    },
    /// A NOTIFICATION received from the peer or sent to it.
    Notification {
        peer: IpAddr,
        /// "received" or "sent".
        direction: &'static str,
        code: u8,
        subcode: u8,
        /// The RFC 4271 / IANA name of the code and subcode.
        name: String,
        /// The data field, hex (empty where we sent none, or where the
        /// library sent one this tool does not see, such as an OPEN error).
        data: String,
        /// The RFC 9003 shutdown communication, when one came with a Cease.
        message: Option<String>,
        at: f64,
    },
    /// The session left Established.
    Closed {
        peer: IpAddr,
        /// notification_sent, notification_received, transport_closed,
        /// connect_failed, stopped, collision, dropped.
        reason: &'static str,
        code: Option<u8>,
        subcode: Option<u8>,
        at: f64,
    },
    /// `--stats`: counters since the start, per peer.
    Stats { at: f64, peers: Vec<PeerStats> },
    /// `--stats` with `--nats`: the publisher's counters since the start.
    Nats {
        at: f64,
        /// Records (UPDATEs and events) published, and acknowledged by the stream.
        published: u64,
        acked: u64,
        /// NATS messages published (a batch of UPDATEs is one; republishes
        /// not counted).
        messages: u64,
        /// Acknowledgements of a message the stream already held (a publish again).
        duplicates: u64,
        /// Times the oldest unacknowledged message was published again.
        retries: u64,
        /// Records given up (their sessions closed with Cease 6/8).
        failed: u64,
        /// UPDATEs published and not yet acknowledged.
        inflight: u64,
        /// When the last acknowledgement came.
        last_ack_at: Option<f64>,
    },
    /// `announcer`: a route set was announced or withdrawn by the health check.
    Health {
        /// "up" (announced) or "down" (withdrawn).
        status: &'static str,
        /// Checks in a row that led here.
        checks: u32,
        routes: usize,
        at: f64,
    },
    /// `announcer`: the routes changed after SIGHUP.
    Reload {
        announced: usize,
        withdrawn: usize,
        unchanged: usize,
        at: f64,
    },
    #[serde(skip)]
    _Phantom(std::marker::PhantomData<&'a ()>),
}

/// stdout as JSON lines, shared by the tasks: buffered, flushed after
/// every line (a reader sees each event as it happens). A closed stdout
/// (`… | head -1`) stops the output; `on_broken`, if given, is told.
pub struct Output {
    w: Mutex<BufWriter<Stdout>>,
    broken: AtomicBool,
    on_broken: Option<Arc<Notify>>,
}

impl Output {
    pub fn new(on_broken: Option<Arc<Notify>>) -> Self {
        Self {
            w: Mutex::new(BufWriter::with_capacity(64 * 1024, std::io::stdout())),
            broken: AtomicBool::new(false),
            on_broken,
        }
    }

    /// Writes one line.
    pub fn line(&self, r: &Record<'_>) {
        if self.broken.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut w) = self.w.lock() else { return };
        let res = serde_json::to_writer(&mut *w, r)
            .map_err(std::io::Error::from)
            .and_then(|_| w.write_all(b"\n"))
            .and_then(|_| w.flush());
        if let Err(e) = res
            && !self.broken.swap(true, Ordering::Relaxed)
        {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                tracing::error!("stdout: {e}; no more JSON lines");
            }
            if let Some(n) = &self.on_broken {
                n.notify_one();
            }
        }
    }

    /// Flushes what is buffered (at exit).
    pub fn flush(&self) {
        if let Ok(mut w) = self.w.lock() {
            let _ = w.flush();
        }
    }
}

impl Record<'_> {
    /// A `notification` line.
    pub fn notification(peer: IpAddr, direction: &'static str, n: &Notification<'_>) -> Self {
        Record::Notification {
            peer,
            direction,
            code: n.code.code(),
            subcode: n.code.subcode(),
            name: n.code.to_string(),
            data: hex(n.data.as_bytes()),
            message: n
                .shutdown_communication()
                .and_then(Result::ok)
                .map(str::to_owned),
            at: crate::common::unix_now(),
        }
    }

    /// A `closed` line, and the reason's name (for the log).
    pub fn closed(peer: IpAddr, reason: DownReason) -> (Self, &'static str) {
        let (name, code) = match reason {
            DownReason::NotificationSent(c) => ("notification_sent", Some(c)),
            DownReason::NotificationReceived(c) => ("notification_received", Some(c)),
            DownReason::TransportClosed => ("transport_closed", None),
            DownReason::ConnectFailed => ("connect_failed", None),
            DownReason::Stopped => ("stopped", None),
            DownReason::Collision => ("collision", None),
            DownReason::Dropped(c) => ("dropped", Some(c)),
            #[allow(unreachable_patterns)]
            _ => ("other", None),
        };
        let r = Record::Closed {
            peer,
            reason: name,
            code: code.map(|c| c.code()),
            subcode: code.map(|c| c.subcode()),
            at: crate::common::unix_now(),
        };
        (r, name)
    }
}

/// Counters of one peer in a `stats` line.
#[derive(Debug, Serialize, Clone)]
pub struct PeerStats {
    pub peer: IpAddr,
    pub state: &'static str,
    pub updates: u64,
    pub announced: u64,
    pub withdrawn: u64,
    /// Bytes of UPDATE messages, headers included.
    pub bytes: u64,
}

/// An `update` line.
#[derive(Debug, Serialize)]
pub struct UpdateRecord {
    pub peer: IpAddr,
    pub at: f64,
    pub announced: Vec<Route>,
    pub withdrawn: Vec<Route>,
    pub attributes: Attributes,
    /// RFC 7606 treat-as-withdraw: why the announced routes are under
    /// `withdrawn`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub treat_as_withdraw: Option<String>,
    /// RFC 7606 attribute discard: the attributes left out, by name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub discarded: Vec<String>,
}

/// One prefix of an UPDATE.
#[derive(Debug, Serialize)]
pub struct Route {
    pub prefix: String,
    /// The ADD-PATH path identifier (RFC 7911), null without ADD-PATH.
    pub path_id: Option<u32>,
}

/// Every attribute corebgp decodes; absent ones are null (or empty lists).
#[derive(Debug, Serialize, Default)]
pub struct Attributes {
    pub origin: Option<&'static str>,
    /// AS numbers of AS_SEQUENCE segments in order; an AS_SET is a nested
    /// array; confederation segments are objects {"confed_sequence": […]}
    /// or {"confed_set": […]}. AS4_PATH is already merged (RFC 6793).
    pub as_path: Option<Vec<PathElem>>,
    /// NEXT_HOP, or MP_REACH_NLRI's (global) next hop.
    pub next_hop: Option<String>,
    /// MP_REACH_NLRI's IPv6 link-local next hop, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_hop_link_local: Option<String>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    /// "65001:1" (RFC 1997).
    pub communities: Vec<String>,
    /// "65001:1:2" (RFC 8092).
    pub large_communities: Vec<String>,
    /// 16 hex digits each (RFC 4360).
    pub ext_communities: Vec<String>,
    /// 40 hex digits each (RFC 5701).
    pub ipv6_ext_communities: Vec<String>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    pub originator_id: Option<String>,
    pub cluster_list: Vec<String>,
    /// Only to Customer (RFC 9234).
    pub otc: Option<u32>,
    /// AIGP metric (RFC 7311).
    pub aigp: Option<u64>,
    /// Attributes corebgp does not decode, as received.
    pub unknown: Vec<UnknownAttribute>,
}

/// One element of `as_path`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum PathElem {
    Asn(u32),
    Set(Vec<u32>),
    ConfedSequence { confed_sequence: Vec<u32> },
    ConfedSet { confed_set: Vec<u32> },
}

/// AGGREGATOR (AS4_AGGREGATOR merged).
#[derive(Debug, Serialize)]
pub struct Aggregator {
    pub asn: u32,
    pub address: String,
}

/// An attribute passed through undecoded.
#[derive(Debug, Serialize)]
pub struct UnknownAttribute {
    #[serde(rename = "type")]
    pub type_code: u8,
    pub flags: u8,
    /// The value, hex.
    pub value: String,
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

pub fn afi_name(a: Afi) -> String {
    match a {
        Afi::Ipv4 => "ipv4".into(),
        Afi::Ipv6 => "ipv6".into(),
        Afi::L2vpn => "l2vpn".into(),
        Afi::BgpLs => "bgp-ls".into(),
        other => other.to_raw().to_string(),
    }
}

pub fn safi_name(s: Safi) -> String {
    match s.to_raw() {
        1 => "unicast".into(),
        2 => "multicast".into(),
        4 => "mpls-label".into(),
        65 => "vpls".into(),
        70 => "evpn".into(),
        71 => "bgp-ls".into(),
        128 => "mpls-vpn".into(),
        133 => "flowspec".into(),
        n => n.to_string(),
    }
}

/// `ipv4-unicast`.
pub fn family_name(f: AfiSafi) -> String {
    format!("{}-{}", afi_name(f.afi), safi_name(f.safi))
}

/// A capability's name by code (IANA "Capability Codes").
pub fn capability_name(code: u8, value: &[u8]) -> String {
    match code {
        1 => match value {
            [a, b, _, s] => format!(
                "multiprotocol:{}",
                family_name(AfiSafi::new(
                    Afi::from_raw(u16::from_be_bytes([*a, *b])),
                    Safi::from_raw(*s)
                ))
            ),
            _ => "multiprotocol".into(),
        },
        2 => "route-refresh".into(),
        3 => "outbound-route-filtering".into(),
        5 => "extended-next-hop".into(),
        6 => "extended-message".into(),
        7 => "bgpsec".into(),
        8 => "multiple-labels".into(),
        9 => "role".into(),
        64 => "graceful-restart".into(),
        65 => "four-octet-as".into(),
        67 => "dynamic".into(),
        69 => "add-path".into(),
        70 => "enhanced-route-refresh".into(),
        71 => "long-lived-graceful-restart".into(),
        73 => "fqdn".into(),
        74 => "bfd-strict".into(),
        75 => "software-version".into(),
        128 => "route-refresh-old".into(),
        n => format!("unknown-{n}"),
    }
}

/// The names of the capabilities an OPEN carries, in wire order.
pub fn capability_names(open: &corebgp_std::core::wire::Open<'_>) -> Vec<String> {
    open.raw_capabilities()
        .map(|c| capability_name(c.code, c.value))
        .collect()
}

/// A path attribute's name by type code (IANA "BGP Path Attributes").
pub fn attribute_name(t: u8) -> String {
    match t {
        1 => "origin",
        2 => "as_path",
        3 => "next_hop",
        4 => "med",
        5 => "local_pref",
        6 => "atomic_aggregate",
        7 => "aggregator",
        8 => "communities",
        9 => "originator_id",
        10 => "cluster_list",
        14 => "mp_reach_nlri",
        15 => "mp_unreach_nlri",
        16 => "ext_communities",
        17 => "as4_path",
        18 => "as4_aggregator",
        25 => "ipv6_ext_communities",
        26 => "aigp",
        32 => "large_communities",
        35 => "otc",
        n => return format!("attribute_{n}"),
    }
    .into()
}

fn origin_name(o: Origin) -> &'static str {
    match o {
        Origin::Igp => "igp",
        Origin::Egp => "egp",
        _ => "incomplete",
    }
}

fn path_elems(p: &AsPath<'_>) -> Vec<PathElem> {
    let mut out = Vec::new();
    for seg in p.segments() {
        let asns: Vec<u32> = seg.asns.clone().collect();
        match seg.kind {
            SegmentType::Sequence => out.extend(asns.into_iter().map(PathElem::Asn)),
            SegmentType::Set => out.push(PathElem::Set(asns)),
            SegmentType::ConfedSequence => out.push(PathElem::ConfedSequence {
                confed_sequence: asns,
            }),
            _ => out.push(PathElem::ConfedSet { confed_set: asns }),
        }
    }
    out
}

/// The attributes of a decoded UPDATE, as the JSON shows them.
pub fn attributes(u: &Update<'_>) -> Attributes {
    use corebgp_std::core::update::NextHop;
    let (mut next_hop, mut link_local) = (u.next_hop().map(|a| a.to_string()), None);
    if let Some(nh) = u.mp_reach().and_then(|m| m.next_hop()) {
        match nh {
            NextHop::V4(a) => next_hop = Some(a.to_string()),
            NextHop::V6 {
                global,
                link_local: ll,
            } => {
                next_hop = Some(global.to_string());
                link_local = ll.map(|a| a.to_string());
            }
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }
    Attributes {
        origin: u.origin().map(origin_name),
        as_path: u.as_path().map(|p| path_elems(&p)),
        next_hop,
        next_hop_link_local: link_local,
        med: u.med(),
        local_pref: u.local_pref(),
        communities: u
            .communities()
            .map(|c| {
                c.iter()
                    .map(|c| format!("{}:{}", c.asn(), c.value()))
                    .collect()
            })
            .unwrap_or_default(),
        large_communities: u
            .large_communities()
            .map(|c| {
                c.iter()
                    .map(|c| format!("{}:{}:{}", c.global_admin, c.local_data1, c.local_data2))
                    .collect()
            })
            .unwrap_or_default(),
        ext_communities: u
            .ext_communities()
            .map(|c| c.iter().map(|c| hex(&c.0)).collect())
            .unwrap_or_default(),
        ipv6_ext_communities: u
            .ipv6_ext_communities()
            .map(|c| c.iter().map(|c| hex(&c.0)).collect())
            .unwrap_or_default(),
        atomic_aggregate: u.atomic_aggregate(),
        aggregator: u.aggregator().map(|g| Aggregator {
            asn: g.asn,
            address: g.addr.to_string(),
        }),
        originator_id: u.originator_id().map(|a| a.to_string()),
        cluster_list: u
            .cluster_list()
            .map(|c| c.iter().map(|a| a.to_string()).collect())
            .unwrap_or_default(),
        otc: u.otc(),
        aigp: u.aigp().and_then(|a| a.metric),
        unknown: u
            .unknown_attributes()
            .map(|a| UnknownAttribute {
                type_code: a.type_code,
                flags: a.flags.0,
                value: hex(a.value),
            })
            .collect(),
    }
}
