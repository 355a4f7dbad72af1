//! corebgp demo: two BGP speakers in one process, each a corebgp-std
//! `Server`, talking over a real TCP connection on loopback.
//!
//! * `rr` (AS 65002, 127.0.0.2) listens; `edge` (AS 4200000001, a 4-octet
//!   AS, 127.0.0.3) dials it.
//! * `edge`'s plugin announces IPv4 and IPv6 routes built with the UPDATE
//!   builder, then End-of-RIB, through its UPDATE writer.
//! * `rr`'s plugin checks the OPEN, decodes every UPDATE with the zero-copy
//!   decoder and prints the routes; then `edge` removes its peer, which
//!   sends a Cease (6/3, peer de-configured), and both servers close.
//!
//! Run: `cargo run --example demo`

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corebgp_std::core::plugin::Plugin;
use corebgp_std::core::session::{
    CapabilitySet, DownReason, Event, Negotiated, OpenHooks, PeerConfig,
};
use corebgp_std::core::update::{
    AsSegment, Community, Ipv4Prefix, Ipv6Prefix, NextHop, Nlri, Origin, PathAttributes,
    SegmentType, Update, UpdateBuilder, UpdateConfig, encode_end_of_rib,
};
use corebgp_std::core::wire::{AfiSafi, Capability, Notification, Open, UpdateSections};
use corebgp_std::{PeerOptions, Server, UpdateQueue, UpdateWriter, update_queue};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const RR: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const EDGE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// `edge`: advertises IPv4 and IPv6 unicast, announces its routes once
/// Established.
struct Edge {
    updates: Arc<UpdateQueue>,
}

impl OpenHooks for Edge {
    fn capabilities(&mut self, _: &PeerConfig, caps: &mut CapabilitySet) {
        let _ = caps.push(&Capability::MultiProtocol(AfiSafi::IPV4_UNICAST));
        let _ = caps.push(&Capability::MultiProtocol(AfiSafi::IPV6_UNICAST));
        let _ = caps.push(&Capability::RouteRefresh);
    }
}

/// The UPDATEs `edge` announces (built outside the async hook).
fn edge_updates(cfg: &UpdateConfig) -> Vec<Vec<u8>> {
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
    let v6 = PathAttributes {
        next_hop: Some(NextHop::V6 {
            global: "2001:db8::1".parse().expect("address"),
            link_local: None,
        }),
        ..v4
    };
    let routes: Vec<Nlri<Ipv4Prefix>> = [
        (203, 0, 113, 0, 24),
        (198, 51, 100, 0, 24),
        (192, 0, 2, 128, 25),
    ]
    .iter()
    .filter_map(|&(a, b, c, d, l)| Ipv4Prefix::new(Ipv4Addr::new(a, b, c, d), l).map(Nlri::new))
    .collect();
    let routes6: Vec<Nlri<Ipv6Prefix>> =
        Ipv6Prefix::new("2001:db8:100::".parse::<Ipv6Addr>().expect("address"), 48)
            .map(Nlri::new)
            .into_iter()
            .collect();

    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let mut b = UpdateBuilder::new(&mut buf, cfg).expect("buffer");
    b.announce(&v4, AfiSafi::IPV4_UNICAST, &routes)
        .expect("fits");
    let n = b.finish().expect("fits");
    out.push(buf[..n].to_vec());
    let mut b = UpdateBuilder::new(&mut buf, cfg).expect("buffer");
    b.announce(&v6, AfiSafi::IPV6_UNICAST, &routes6)
        .expect("fits");
    let n = b.finish().expect("fits");
    out.push(buf[..n].to_vec());
    for family in [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST] {
        let n = encode_end_of_rib(&mut buf, family).expect("fits");
        out.push(buf[..n].to_vec());
    }
    out
}

impl Plugin for Edge {
    async fn on_established(&mut self, peer: &PeerConfig, n: &Negotiated) {
        println!(
            "[edge] Established with AS {} ({}), hold time {} s",
            n.peer_as, n.peer_id, n.hold_time
        );
        let updates = edge_updates(&n.update_config(peer));
        // CoreBGP's UpdateMessageWriter: could move to another task.
        let Ok(writer) = UpdateWriter::new(self.updates.clone()) else {
            return;
        };
        for u in &updates {
            if let Err(e) = writer.send(u).await {
                println!("[edge] could not send: {e}");
                return;
            }
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
    done: Arc<Mutex<Option<oneshot::Sender<()>>>>,
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
        let families: Vec<String> = n
            .families
            .iter()
            .map(|f| format!("{:?}/{:?}", f.afi, f.safi))
            .collect();
        println!(
            "[rr]   OPEN from AS {} (My AS field {}), {} capabilities; negotiated {}",
            open.asn(),
            open.my_as,
            open.raw_capabilities().count(),
            families.join(", ")
        );
        Ok(())
    }
}

/// One line per announced route.
fn print_routes(u: &Update<'_>) {
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
            "[rr]   route {:<20} via {next_hop:<12} AS path [{}]  MED {}  communities [{}]",
            nlri.prefix.to_string(),
            path.join(" "),
            u.med().map_or("-".into(), |m| m.to_string()),
            communities.join(" ")
        );
    }
}

impl Plugin for Rr {
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
                && let Some(done) = self.done.lock().ok().and_then(|mut d| d.take())
            {
                let _ = done.send(());
            }
            return Ok(());
        }
        print_routes(&u);
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
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A server holds a socket per peer: as a server with many peers would,
    // raise the soft open-file limit to the hard one first.
    corebgp_std::raise_open_file_limit()?;
    let listener = TcpListener::bind((RR, 0)).await?;
    let port = listener.local_addr()?.port();
    println!("rr listens on {RR}:{port}; edge dials it from {EDGE}\n");

    let (done_tx, done_rx) = oneshot::channel();
    let rr = Server::new(RR)?;
    rr.add_peer(
        PeerConfig {
            remote_address: IpAddr::V4(EDGE),
            local_as: 65002,
            remote_as: 4_200_000_001,
        },
        Rr {
            cfg: UpdateConfig::new(),
            end_of_rib: 0,
            done: Arc::new(Mutex::new(Some(done_tx))),
        },
        PeerOptions::new().passive(true),
    )?;

    let edge = Server::new(EDGE)?;
    let queue = update_queue();
    edge.add_peer(
        PeerConfig {
            remote_address: IpAddr::V4(RR),
            local_as: 4_200_000_001,
            remote_as: 65002,
        },
        Edge {
            updates: queue.clone(),
        },
        PeerOptions::new()
            .port(port)
            .local_address(IpAddr::V4(EDGE))
            .hold_time(9)
            .update_queue(queue),
    )?;

    let (rr2, edge2) = (rr.clone(), edge.clone());
    let serving = tokio::spawn(async move {
        let _ = tokio::join!(rr2.serve(vec![listener]), edge2.serve(vec![]));
    });

    tokio::time::timeout(Duration::from_secs(10), done_rx)
        .await
        .map_err(|_| "the routes did not arrive in 10 s")??;
    println!("\nedge removes its peer (Cease 6/3, peer de-configured)\n");
    edge.delete_peer(IpAddr::V4(RR)).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    edge.close().await;
    rr.close().await;
    serving.await?;
    println!("\nboth servers closed");
    Ok(())
}
