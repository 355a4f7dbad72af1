//! BGP on a NUCLEO-H743ZI: peers with the router of `config` over
//! corebgp-embassy.
//!
//! Today the session is the stand-in of `standin.rs` (OPEN/KEEPALIVE only);
//! when corebgp-core's driver and UPDATE builder land, only the body of the
//! `run` closure below changes: it calls the driver with a plugin that
//! announces `config`'s prefix and logs received routes with defmt.
#![no_std]
#![no_main]

use corebgp_embassy::{ActivePeer, EmbassyClock, StandardSlot, connect};
use defmt::{info, warn};
use embassy_executor::Spawner;
use embassy_net::Stack;
use embassy_time::Timer;
use firmware_nucleo_h743zi::config;
use firmware_nucleo_h743zi::standin::{self, Local};
use static_cell::StaticCell;
use {defmt_rtt as _, panic_probe as _};

const LOCAL: Local = Local {
    asn: config::LOCAL_AS,
    bgp_id: config::BGP_ID,
    hold_time: config::HOLD_TIME,
    peer_as: config::PEER_AS,
};

#[embassy_executor::task]
async fn bgp_task(stack: Stack<'static>, slot: &'static mut StandardSlot) -> ! {
    // Single-hop eBGP to a directly connected router: TTL 1.
    let mut peer = ActivePeer::new(config::PEER_ADDR.into(), config::HOLD_TIME);
    peer.tuning = peer.tuning.with_hop_limit(1);
    loop {
        let res = connect(stack, slot, &peer, async |link| {
            // >>> corebgp-core driver goes here (replaces the stand-in).
            standin::run(link, &EmbassyClock, &LOCAL).await
        })
        .await;
        match res {
            Ok(Ok(())) => info!("session ended"),
            Ok(Err(end)) => warn!("session ended: {}", end),
            Err(e) => warn!("no connection: {}", e),
        }
        // The core's ConnectRetryTimer / IdleHoldTimer will own this delay.
        Timer::after_secs(config::CONNECT_RETRY_S).await;
    }
}

#[embassy_executor::main]
async fn main(spawner: Spawner) -> ! {
    let stack = firmware_nucleo_h743zi::init_network(&spawner);
    static SLOT: StaticCell<StandardSlot> = StaticCell::new();
    let slot = SLOT.init(StandardSlot::new());
    stack.wait_config_up().await;
    info!(
        "network up, peering with {} (AS {})",
        config::PEER_ADDR,
        config::PEER_AS
    );
    spawner.spawn(defmt::unwrap!(bgp_task(stack, slot)));
    loop {
        Timer::after_secs(3600).await;
    }
}
