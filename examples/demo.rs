//! corebgp demo: two BGP speakers in one process, talking over a real TCP
//! connection on loopback.
//!
//! * `rr` (AS 65002) listens; `edge` (AS 4200000001, a 4-octet AS) dials.
//! * Each runs corebgp-core's one driver (the same loop corebgp-std and
//!   corebgp-embassy run) over a tokio socket.
//! * `edge` announces IPv4 and IPv6 routes built with the UPDATE builder,
//!   then End-of-RIB; `rr` decodes them with the zero-copy decoder and prints
//!   them; then `edge` shuts the session down with a Cease.
//!
//! Run: `cargo run --example demo`

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration as StdDuration;

use corebgp_core::driver::{Buffers, Clock, Connector, run};
use corebgp_core::outbox::{NoopRawMutex, UpdateChannel};
use corebgp_core::plugin::LocalPlugin;
use corebgp_core::session::{
    CapabilitySet, DownReason, Event, Instant, Negotiated, OpenHooks, Peer, PeerConfig,
    SessionConfig,
};
use corebgp_core::update::{
    AsSegment, Community, Ipv4Prefix, Ipv6Prefix, NextHop, Nlri, Origin, PathAttributes,
    SegmentType, Update, UpdateBuilder, UpdateConfig, encode_end_of_rib,
};
use corebgp_core::wire::{AfiSafi, Capability, CeaseSubcode, Notification, Open, UpdateSections};
use embedded_io_adapters::tokio_1::FromTokio;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, oneshot};

type Channel = UpdateChannel<NoopRawMutex, 16384>;

/// Time for the core, from tokio's monotonic clock.
struct TokioClock(tokio::time::Instant);

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        Instant::from_millis(self.0.elapsed().as_millis() as u64)
    }
    async fn sleep_until(&self, deadline: Instant) {
        tokio::time::sleep_until(self.0 + StdDuration::from_millis(deadline.as_millis())).await
    }
}

/// Sockets for one peer: dial `remote`, or take connections from `listener`
/// whose source is `remote`'s address (anything else is closed at once).
struct Sockets {
    remote: SocketAddr,
    listener: Option<TcpListener>,
    dials: bool,
}

impl Connector for Sockets {
    type Transport = FromTokio<TcpStream>;
    async fn connect(&self) -> Option<Self::Transport> {
        if !self.dials {
            return None;
        }
        let s = TcpStream::connect(self.remote).await.ok()?;
        s.set_nodelay(true).ok()?;
        Some(FromTokio::new(s))
    }
    async fn accept(&self) -> Self::Transport {
        let Some(l) = &self.listener else {
            return std::future::pending().await;
        };
        loop {
            if let Ok((s, from)) = l.accept().await
                && from.ip() == self.remote.ip()
            {
                let _ = s.set_nodelay(true);
                return FromTokio::new(s);
            }
        }
    }
}

/// `edge`: advertises IPv4 and IPv6 unicast, announces its routes once
/// Established.
struct Edge<'c> {
    channel: &'c Channel,
}

impl OpenHooks for Edge<'_> {
    fn capabilities(&mut self, _: &PeerConfig, caps: &mut CapabilitySet) {
        let _ = caps.push(&Capability::MultiProtocol(AfiSafi::IPV4_UNICAST));
        let _ = caps.push(&Capability::MultiProtocol(AfiSafi::IPV6_UNICAST));
        let _ = caps.push(&Capability::RouteRefresh);
    }
}

impl LocalPlugin for Edge<'_> {
    async fn on_established(&mut self, peer: &PeerConfig, n: &Negotiated) {
        println!(
            "[edge] Established with AS {} ({}), hold time {} s",
            n.peer_as, n.peer_id, n.hold_time
        );
        let cfg = n.update_config(peer);
        let writer = self.channel.writer().expect("Established");
        let mut buf = [0u8; 4096];
        let path = [AsSegment {
            kind: SegmentType::Sequence,
            asns: &[4_200_000_001, 64512],
        }];
        let communities = [Community(0xfde9_0001), Community::NO_EXPORT];
        let v4 = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(&path),
            next_hop: Some(NextHop::V4(Ipv4Addr::new(192, 0, 2, 1))),
            med: Some(10),
            communities: &communities,
            ..Default::default()
        };
        let routes: Vec<Nlri<Ipv4Prefix>> = [
            (203, 0, 113, 0, 24),
            (198, 51, 100, 0, 24),
            (192, 0, 2, 128, 25),
        ]
        .iter()
        .filter_map(|&(a, b, c, d, l)| Ipv4Prefix::new(Ipv4Addr::new(a, b, c, d), l).map(Nlri::new))
        .collect();
        let mut b = UpdateBuilder::new(&mut buf, &cfg).expect("buffer");
        b.announce(&v4, AfiSafi::IPV4_UNICAST, &routes)
            .expect("fits");
        let len = b.finish().expect("fits");
        writer.send(&buf[..len]).await.expect("queued");

        let v6 = PathAttributes {
            next_hop: Some(NextHop::V6 {
                global: "2001:db8::1".parse().expect("address"),
                link_local: None,
            }),
            ..v4
        };
        let routes6: Vec<Nlri<Ipv6Prefix>> =
            Ipv6Prefix::new("2001:db8:100::".parse::<Ipv6Addr>().expect("address"), 48)
                .map(Nlri::new)
                .into_iter()
                .collect();
        let mut b = UpdateBuilder::new(&mut buf, &cfg).expect("buffer");
        b.announce(&v6, AfiSafi::IPV6_UNICAST, &routes6)
            .expect("fits");
        let len = b.finish().expect("fits");
        writer.send(&buf[..len]).await.expect("queued");

        for family in [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST] {
            let len = encode_end_of_rib(&mut buf, family).expect("fits");
            writer.send(&buf[..len]).await.expect("queued");
        }
        println!("[edge] announced 3 IPv4 routes, 1 IPv6 route and End-of-RIB for both");
    }

    async fn on_update<'m>(
        &mut self,
        _: &PeerConfig,
        _: UpdateSections<'m>,
    ) -> Result<(), Notification<'m>> {
        Ok(())
    }

    fn on_close(&mut self, _: &PeerConfig, reason: DownReason) {
        println!("[edge] session down: {reason:?}");
    }
}

/// `rr`: checks the peer's OPEN, decodes and prints every route.
struct Rr {
    cfg: UpdateConfig,
    end_of_rib: usize,
    done: Option<oneshot::Sender<()>>,
}

impl OpenHooks for Rr {
    fn capabilities(&mut self, _: &PeerConfig, caps: &mut CapabilitySet) {
        let _ = caps.push(&Capability::MultiProtocol(AfiSafi::IPV4_UNICAST));
        let _ = caps.push(&Capability::MultiProtocol(AfiSafi::IPV6_UNICAST));
    }
    fn check_open(
        &mut self,
        _: &PeerConfig,
        open: &Open<'_>,
        n: &Negotiated,
    ) -> Result<(), Notification<'static>> {
        println!(
            "[rr]   OPEN from AS {} (My AS field {}), {} capabilities; negotiated families {:?}",
            open.asn(),
            open.my_as,
            open.raw_capabilities().count(),
            n.families
        );
        Ok(())
    }
}

impl LocalPlugin for Rr {
    async fn on_established(&mut self, peer: &PeerConfig, n: &Negotiated) {
        self.cfg = n.update_config(peer);
        println!("[rr]   Established");
    }

    async fn on_update<'m>(
        &mut self,
        _: &PeerConfig,
        sections: UpdateSections<'m>,
    ) -> Result<(), Notification<'m>> {
        let u = match Update::from_sections(sections, &self.cfg) {
            Ok(u) => u,
            // RFC 7606: a session reset, with the NOTIFICATION it names.
            Err(e) => return Err(e.notification),
        };
        if let Some(family) = u.end_of_rib() {
            println!("[rr]   End-of-RIB {:?}/{:?}", family.afi, family.safi);
            self.end_of_rib += 1;
            if self.end_of_rib == 2
                && let Some(done) = self.done.take()
            {
                let _ = done.send(());
            }
            return Ok(());
        }
        let path: Vec<String> = u
            .as_path()
            .map(|p| p.asns().map(|a| a.to_string()).collect())
            .unwrap_or_default();
        let communities: Vec<String> = u
            .communities()
            .map(|c| {
                c.into_iter()
                    .map(|v| format!("{}:{}", v.0 >> 16, v.0 & 0xffff))
                    .collect()
            })
            .unwrap_or_default();
        let next_hop = u
            .next_hop()
            .map(|a| a.to_string())
            .or_else(|| match u.mp_reach().and_then(|m| m.next_hop()) {
                Some(NextHop::V6 { global, .. }) => Some(global.to_string()),
                Some(NextHop::V4(a)) => Some(a.to_string()),
                _ => None,
            })
            .unwrap_or_default();
        for (_, nlri) in u.announced() {
            println!(
                "[rr]   route {:<20} via {next_hop}  AS path [{}]  MED {:?}  communities [{}]",
                nlri.prefix.to_string(),
                path.join(" "),
                u.med(),
                communities.join(" ")
            );
        }
        Ok(())
    }

    fn on_notification(&mut self, _: &PeerConfig, n: &Notification<'_>) {
        println!("[rr]   NOTIFICATION received: {n}");
    }

    fn on_event(&mut self, _: &PeerConfig, e: &Event) {
        if let Event::StateChanged { from, to, .. } = e {
            println!("[rr]   {from:?} -> {to:?}");
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let rr_addr = listener.local_addr().expect("address");
    println!("rr listens on {rr_addr}; edge dials it\n");

    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let edge_cfg = SessionConfig::new(
        PeerConfig {
            remote_address: loopback,
            local_as: 4_200_000_001,
            remote_as: 65002,
        },
        Ipv4Addr::new(192, 0, 2, 1),
    )
    .with_hold_time(9);
    let rr_cfg = SessionConfig::new(
        PeerConfig {
            remote_address: loopback,
            local_as: 65002,
            remote_as: 4_200_000_001,
        },
        Ipv4Addr::new(192, 0, 2, 2),
    )
    .with_passive(true);

    let clock = TokioClock(tokio::time::Instant::now());
    let (edge_chan, rr_chan) = (Channel::new(), Channel::new());
    let (done_tx, done_rx) = oneshot::channel();
    let (stop_edge, stop_edge_rx) = oneshot::channel::<CeaseSubcode>();
    let stop_rr = Mutex::new(None::<oneshot::Sender<CeaseSubcode>>);

    let edge = async {
        let mut peer = Peer::new(edge_cfg);
        peer.start(clock.now());
        let sockets = Sockets {
            remote: rr_addr,
            listener: None,
            dials: true,
        };
        let mut plugin = Edge {
            channel: &edge_chan,
        };
        let (mut a, mut b, mut t) = ([0u8; 4096], [0u8; 4096], [0u8; 4096]);
        let bufs = Buffers {
            rx: [&mut a, &mut b],
            tx: &mut t,
        };
        let stop = async {
            stop_edge_rx
                .await
                .unwrap_or(CeaseSubcode::AdministrativeShutdown)
        };
        run(
            &mut peer,
            &sockets,
            &clock,
            &mut plugin,
            &edge_chan,
            bufs,
            stop,
        )
        .await;
    };
    let rr = async {
        let mut peer = Peer::new(rr_cfg);
        peer.start(clock.now());
        let sockets = Sockets {
            remote: SocketAddr::new(loopback, 0),
            listener: Some(listener),
            dials: false,
        };
        let mut plugin = Rr {
            cfg: UpdateConfig::new(),
            end_of_rib: 0,
            done: Some(done_tx),
        };
        let (mut a, mut b, mut t) = ([0u8; 4096], [0u8; 4096], [0u8; 4096]);
        let bufs = Buffers {
            rx: [&mut a, &mut b],
            tx: &mut t,
        };
        let (tx, rx) = oneshot::channel();
        *stop_rr.lock().await = Some(tx);
        let stop = async { rx.await.unwrap_or(CeaseSubcode::AdministrativeShutdown) };
        run(
            &mut peer,
            &sockets,
            &clock,
            &mut plugin,
            &rr_chan,
            bufs,
            stop,
        )
        .await;
    };
    let script = async {
        let got_all = tokio::time::timeout(StdDuration::from_secs(10), done_rx).await;
        assert!(
            matches!(got_all, Ok(Ok(()))),
            "the routes did not arrive in 10 s"
        );
        println!("\nedge shuts the session down (Cease, administrative shutdown)\n");
        let _ = stop_edge.send(CeaseSubcode::AdministrativeShutdown);
        tokio::time::sleep(StdDuration::from_millis(200)).await;
        if let Some(tx) = stop_rr.lock().await.take() {
            let _ = tx.send(CeaseSubcode::AdministrativeShutdown);
        }
    };
    tokio::join!(edge, rr, script);
    println!("\nboth speakers stopped");
}
