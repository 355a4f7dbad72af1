//! The BGP side of the tests: session configurations and a recording plugin
//! that announces routes built with corebgp-core's `UpdateBuilder` and
//! decodes what it receives with `Update`.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::rc::Rc;

use corebgp_core::outbox::UpdateChannel;
use corebgp_core::plugin::LocalPlugin;
use corebgp_core::session::{
    CapabilitySet, DownReason, Duration, Event, Negotiated, OpenHooks, PeerConfig, SessionConfig,
};
use corebgp_core::update::{
    AsSegment, Ipv4Prefix, Ipv6Prefix, NextHop, Nlri, Origin, PathAttributes, SegmentType, Update,
    UpdateBuilder, UpdateConfig, encode_end_of_rib,
};
use corebgp_core::wire::{AfiSafi, Capability, Notification, UpdateSections};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;

/// The outbox every test speaker writes to.
pub type Outbox = UpdateChannel<NoopRawMutex, 4096>;

/// A session configuration for tests: short timers, no damping.
pub fn session(
    remote: IpAddr,
    local_as: u32,
    remote_as: u32,
    router_id: Ipv4Addr,
    passive: bool,
    hold: u16,
) -> SessionConfig {
    SessionConfig::new(
        PeerConfig {
            remote_address: remote,
            local_as,
            remote_as,
        },
        router_id,
    )
    .with_passive(passive)
    .with_hold_time(hold)
    .with_connect_retry_time(Duration::from_millis(1000))
    .with_idle_hold_time(Duration::from_millis(300))
    .with_damping(false)
}

/// A route as the receiving plugin decoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Family.
    pub family: AfiSafi,
    /// Prefix, as text.
    pub prefix: String,
    /// AS_PATH.
    pub as_path: Vec<u32>,
    /// Next hop (NEXT_HOP or the MP_REACH_NLRI one), as text.
    pub next_hop: String,
}

/// What a plugin saw.
#[derive(Debug, Default)]
pub struct Log {
    /// Times the session reached Established.
    pub established: u32,
    /// Why it went down, each time.
    pub closed: Vec<DownReason>,
    /// Routes received (decoded).
    pub routes: Vec<Route>,
    /// End-of-RIB markers received.
    pub end_of_rib: Vec<AfiSafi>,
    /// NOTIFICATIONs received: code, subcode, shutdown communication.
    pub received: Vec<(u8, u8, Option<String>)>,
    /// NOTIFICATIONs sent: code, subcode.
    pub sent: Vec<(u8, u8)>,
    /// UPDATEs that failed to decode.
    pub decode_errors: u32,
}

/// Routes to announce on Established.
#[derive(Debug, Clone, Default)]
pub struct Announce {
    /// IPv4 unicast prefixes (NLRI field).
    pub v4: Vec<(Ipv4Addr, u8)>,
    /// IPv6 unicast prefixes (MP_REACH_NLRI).
    pub v6: Vec<(Ipv6Addr, u8)>,
    /// IPv4 next hop.
    pub next_hop_v4: Option<Ipv4Addr>,
    /// IPv6 next hop.
    pub next_hop_v6: Option<Ipv6Addr>,
}

/// A plugin that records everything, advertises IPv4 (and optionally IPv6)
/// unicast, and announces [`Announce`] (then End-of-RIB) on Established.
pub struct Recorder<'c> {
    /// The log, shared with the test.
    pub log: Rc<RefCell<Log>>,
    outbox: &'c Outbox,
    announce: Announce,
    ipv6: bool,
    cfg: UpdateConfig,
}

impl<'c> Recorder<'c> {
    /// A recorder writing to `outbox`.
    pub fn new(outbox: &'c Outbox, announce: Announce, ipv6: bool) -> Self {
        Self {
            log: Rc::default(),
            outbox,
            announce,
            ipv6,
            cfg: UpdateConfig::default(),
        }
    }
}

impl OpenHooks for Recorder<'_> {
    fn capabilities(&mut self, _: &PeerConfig, caps: &mut CapabilitySet) {
        let _ = caps.push(&Capability::MultiProtocol(AfiSafi::IPV4_UNICAST));
        if self.ipv6 {
            let _ = caps.push(&Capability::MultiProtocol(AfiSafi::IPV6_UNICAST));
        }
        let _ = caps.push(&Capability::RouteRefresh);
    }
}

impl LocalPlugin for Recorder<'_> {
    async fn on_established(&mut self, peer: &PeerConfig, n: &Negotiated) {
        self.log.borrow_mut().established += 1;
        self.cfg = n.update_config(peer);
        let Ok(w) = self.outbox.writer() else { return };
        let path = [AsSegment {
            kind: SegmentType::Sequence,
            asns: &[peer.local_as],
        }];
        let mut buf = [0u8; 4096];
        if !self.announce.v4.is_empty() && n.has_family(AfiSafi::IPV4_UNICAST) {
            let routes: Vec<Nlri<Ipv4Prefix>> = self
                .announce
                .v4
                .iter()
                .map(|&(a, l)| Nlri::new(Ipv4Prefix::new(a, l).expect("valid v4 prefix")))
                .collect();
            let attrs = PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(&path),
                next_hop: self.announce.next_hop_v4.map(NextHop::V4),
                ..Default::default()
            };
            let mut b = UpdateBuilder::new(&mut buf, &self.cfg).expect("builder");
            let took = b
                .announce(&attrs, AfiSafi::IPV4_UNICAST, &routes)
                .expect("announce v4");
            assert_eq!(took, routes.len());
            let len = b.finish().expect("finish");
            let _ = w.send(&buf[..len]).await;
            let len = encode_end_of_rib(&mut buf, AfiSafi::IPV4_UNICAST).expect("EoR");
            let _ = w.send(&buf[..len]).await;
        }
        if !self.announce.v6.is_empty() && n.has_family(AfiSafi::IPV6_UNICAST) {
            let routes: Vec<Nlri<Ipv6Prefix>> = self
                .announce
                .v6
                .iter()
                .map(|&(a, l)| Nlri::new(Ipv6Prefix::new(a, l).expect("valid v6 prefix")))
                .collect();
            let attrs = PathAttributes {
                origin: Some(Origin::Igp),
                as_path: Some(&path),
                next_hop: self.announce.next_hop_v6.map(|global| NextHop::V6 {
                    global,
                    link_local: None,
                }),
                ..Default::default()
            };
            let mut b = UpdateBuilder::new(&mut buf, &self.cfg).expect("builder");
            let took = b
                .announce(&attrs, AfiSafi::IPV6_UNICAST, &routes)
                .expect("announce v6");
            assert_eq!(took, routes.len());
            let len = b.finish().expect("finish");
            let _ = w.send(&buf[..len]).await;
            let len = encode_end_of_rib(&mut buf, AfiSafi::IPV6_UNICAST).expect("EoR");
            let _ = w.send(&buf[..len]).await;
        }
    }

    async fn on_update<'m>(
        &mut self,
        _: &PeerConfig,
        sections: UpdateSections<'m>,
    ) -> Result<(), Notification<'m>> {
        let mut log = self.log.borrow_mut();
        let u = match Update::from_sections(sections, &self.cfg) {
            Ok(u) => u,
            Err(_) => {
                log.decode_errors += 1;
                return Ok(());
            }
        };
        if let Some(f) = u.end_of_rib() {
            log.end_of_rib.push(f);
            return Ok(());
        }
        let as_path: Vec<u32> = u.as_path().map(|p| p.asns().collect()).unwrap_or_default();
        for (family, nlri) in u.announced() {
            let next_hop = if family == AfiSafi::IPV4_UNICAST {
                u.next_hop().map(|a| a.to_string())
            } else {
                u.mp_reach().and_then(|m| m.next_hop()).map(|h| match h {
                    NextHop::V4(a) => a.to_string(),
                    NextHop::V6 { global, .. } => global.to_string(),
                })
            };
            log.routes.push(Route {
                family,
                prefix: nlri.prefix.to_string(),
                as_path: as_path.clone(),
                next_hop: next_hop.unwrap_or_default(),
            });
        }
        Ok(())
    }

    fn on_notification(&mut self, _: &PeerConfig, n: &Notification<'_>) {
        self.log.borrow_mut().received.push((
            n.code.code(),
            n.code.subcode(),
            n.shutdown_communication()
                .and_then(Result::ok)
                .map(str::to_owned),
        ));
    }

    fn on_event(&mut self, _: &PeerConfig, e: &Event) {
        if let Event::NotificationSent { code, .. } = e {
            self.log
                .borrow_mut()
                .sent
                .push((code.code(), code.subcode()));
        }
    }

    fn on_close(&mut self, _: &PeerConfig, reason: DownReason) {
        self.log.borrow_mut().closed.push(reason);
    }
}

/// Polls `cond` every 10 ms until it holds.
pub async fn until(mut cond: impl FnMut() -> bool) {
    while !cond() {
        embassy_time::Timer::after_millis(10).await;
    }
}
