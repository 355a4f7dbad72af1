//! The BGP application both firmwares run (one application, two boards):
//! peers with the router of `crate::config` through corebgp-core's shared
//! driver on corebgp-embassy, announces `config::ANNOUNCE` (built with
//! `UpdateBuilder`) and its End-of-RIB when the session is Established, and
//! logs every route it receives (decoded with `Update`), every End-of-RIB,
//! every NOTIFICATION from the peer and every session end.
//!
//! Included as a module (`#[path = "../../firmware-shared/bgp_app.rs"] pub
//! mod bgp_app;`) by each firmware, which provides:
//! * `crate::config`: `LOCAL_ADDR`, `PEER_ADDR`, `LOCAL_AS`, `PEER_AS`,
//!   `BGP_ID`, `HOLD_TIME`, `ANNOUNCE`, `SOCKET_RX`, `SOCKET_TX`,
//!   `MAX_UPDATE_OUT` (consts, so the compiler folds them into the code);
//! * `crate::log::{info, warn}`: logging macros taking format strings that
//!   both `defmt` and `core::fmt` accept (`{}` on values with `Display` and
//!   `defmt::Format`, `{:?}` on values with `Debug` and `defmt::Format`).

use core::net::IpAddr;

use corebgp_embassy::corebgp_core::outbox::UpdateChannel;
use corebgp_embassy::corebgp_core::plugin::LocalPlugin;
use corebgp_embassy::corebgp_core::session::{
    CapabilitySet, DownReason, Negotiated, OpenHooks, Peer, PeerConfig, SessionConfig,
};
use corebgp_embassy::corebgp_core::update::{
    AsSegment, BuildError, Ipv4Prefix, NextHop, Nlri, Origin, PathAttributes, SegmentType, Update,
    UpdateBuilder, UpdateConfig, encode_end_of_rib,
};
use corebgp_embassy::corebgp_core::wire::{AfiSafi, Capability, Notification, UpdateSections};
use corebgp_embassy::{
    ActivePeer, EmbassyConnector, SessionBuffers, Socket, SocketBuffers, run_peer,
};
use embassy_net::Stack;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_time::Timer;

use crate::config;
use crate::log::{info, warn};

type Outbox = UpdateChannel<NoopRawMutex, { config::MAX_UPDATE_OUT }>;

/// All of one peer's memory, in one static: build it with [`PeerMemory::new`]
/// in a `ConstStaticCell`, so it is zeroed in .bss at link time rather than
/// built on the stack and copied in at boot.
pub struct PeerMemory {
    socket: SocketBuffers<{ config::SOCKET_RX }, { config::SOCKET_TX }>,
    // One connection at a time: a dialling peer needs no collision buffer.
    session: SessionBuffers<4096, { config::MAX_UPDATE_OUT }, 1>,
    outbox: Outbox,
}

impl PeerMemory {
    /// Empty buffers.
    pub const fn new() -> Self {
        Self {
            socket: SocketBuffers::new(),
            session: SessionBuffers::new(),
            outbox: UpdateChannel::new(),
        }
    }
}

impl Default for PeerMemory {
    fn default() -> Self {
        Self::new()
    }
}

/// Announces our prefix on Established, logs received routes.
struct Router<'c> {
    outbox: &'c Outbox,
    cfg: UpdateConfig,
}

/// Builds the UPDATE announcing `prefix` into `buf`; returns its length.
/// A plain function, not part of the async hook: its locals stay off the
/// hook's future, so the compiler folds the attributes left at their
/// defaults out of the builder (about 0.9 KB of flash).
fn announcement(
    buf: &mut [u8],
    cfg: &UpdateConfig,
    prefix: Ipv4Prefix,
) -> Result<usize, BuildError> {
    let path = [AsSegment {
        kind: SegmentType::Sequence,
        asns: &[config::LOCAL_AS],
    }];
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(&path),
        next_hop: Some(NextHop::V4(config::LOCAL_ADDR)),
        ..Default::default()
    };
    let mut b = UpdateBuilder::new(buf, cfg)?;
    b.announce(&attrs, AfiSafi::IPV4_UNICAST, &[Nlri::new(prefix)])?;
    b.finish()
}

impl OpenHooks for Router<'_> {
    fn capabilities(&mut self, _: &PeerConfig, caps: &mut CapabilitySet) {
        let _ = caps.push(&Capability::MultiProtocol(AfiSafi::IPV4_UNICAST));
        let _ = caps.push(&Capability::RouteRefresh);
    }
}

impl LocalPlugin for Router<'_> {
    async fn on_established(&mut self, peer: &PeerConfig, n: &Negotiated) {
        info!("session established: AS {} id {}", n.peer_as, n.peer_id);
        self.cfg = n.update_config(peer);
        let Ok(writer) = self.outbox.writer() else {
            return;
        };
        let (addr, len) = config::ANNOUNCE;
        let Some(prefix) = Ipv4Prefix::new(addr, len) else {
            return;
        };
        let mut buf = [0u8; 128];
        match announcement(&mut buf, &self.cfg, prefix) {
            Ok(n) => {
                if writer.send(buf.get(..n).unwrap_or(&[])).await.is_ok() {
                    info!("announced {}", prefix);
                }
            }
            Err(e) => warn!("UPDATE not built: {}", e),
        }
        if let Ok(n) = encode_end_of_rib(&mut buf, AfiSafi::IPV4_UNICAST) {
            let _ = writer.send(buf.get(..n).unwrap_or(&[])).await;
        }
    }

    async fn on_update<'m>(
        &mut self,
        _: &PeerConfig,
        sections: UpdateSections<'m>,
    ) -> Result<(), Notification<'m>> {
        // RFC 7606: `Err` is a session reset, with its NOTIFICATION.
        let update = match Update::from_sections(sections, &self.cfg) {
            Ok(u) => u,
            Err(e) => {
                warn!("malformed UPDATE, session reset: {:?}", e.kind);
                return Err(e.notification);
            }
        };
        // This router keeps no per-family state to disable, so an
        // AFI/SAFI-disable verdict resets the session (RFC 7606 §2).
        if let Some(e) = update.afi_safi_disable().next() {
            warn!("malformed UPDATE, session reset: {:?}", e.kind);
            return Err(e.notification);
        }
        if let Some(family) = update.end_of_rib() {
            info!("End-of-RIB {:?}", family);
        }
        // Treat-as-withdraw: the announced routes count as withdrawn.
        let withdraw = update.treat_as_withdraw();
        if let Some(e) = withdraw {
            warn!("malformed UPDATE, treated as withdraw: {:?}", e.kind);
        }
        for (_, nlri) in update.announced() {
            if withdraw.is_some() {
                info!("withdrawn {}", nlri.prefix);
            } else {
                info!("route {} next hop {:?}", nlri.prefix, update.next_hop());
            }
        }
        for (_, nlri) in update.withdrawals() {
            info!("withdrawn {}", nlri.prefix);
        }
        Ok(())
    }

    fn on_notification(&mut self, _: &PeerConfig, n: &Notification<'_>) {
        warn!("NOTIFICATION from peer: {}", n.code);
    }

    fn on_close(&mut self, _: &PeerConfig, reason: DownReason) {
        warn!("session down: {}", reason);
    }
}

/// The BGP speaker, run by `main` itself: a task of its own would only add
/// a second task and a second idle loop. Never returns: the driver
/// reconnects on its own (ConnectRetry, IdleHold).
pub async fn run(stack: Stack<'static>, mem: &'static mut PeerMemory) -> ! {
    let PeerMemory {
        socket,
        session,
        outbox,
    } = mem;
    let socket = Socket::new(stack, socket);
    // Single-hop eBGP to a directly connected router: TTL 1.
    let mut remote = ActivePeer::new(config::PEER_ADDR.into(), config::HOLD_TIME);
    remote.tuning = remote.tuning.with_hop_limit(1);
    let connector = EmbassyConnector::active(&socket, remote);
    let mut peer = Peer::dial_only(
        SessionConfig::new(
            PeerConfig {
                remote_address: IpAddr::V4(config::PEER_ADDR),
                local_as: config::LOCAL_AS,
                remote_as: config::PEER_AS,
            },
            config::BGP_ID,
        )
        .with_hold_time(config::HOLD_TIME),
    );
    let mut plugin = Router {
        outbox,
        cfg: UpdateConfig::default(),
    };
    // run_peer only returns when the shutdown future completes, which here
    // it never does.
    run_peer(
        &mut peer,
        &connector,
        &mut plugin,
        &*outbox,
        session,
        core::future::pending(),
    )
    .await;
    loop {
        Timer::after_secs(3600).await;
    }
}
