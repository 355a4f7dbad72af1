//! BGP on a NUCLEO-H743ZI: the BGP application of
//! `examples/firmware-shared/bgp_app.rs` (shared with the QEMU MPS2
//! firmware): peers with the router of `config` through corebgp-core's
//! shared driver on corebgp-embassy, announces `config::ANNOUNCE` (built
//! with `UpdateBuilder`) and logs every route it receives (decoded with
//! `Update`) with defmt.
#![no_std]
#![no_main]

use bgp_app::PeerMemory;
use defmt::info;
use embassy_executor::Spawner;
use firmware_nucleo_h743zi::config;
use static_cell::ConstStaticCell;
use {defmt_rtt as _, panic_probe as _};

// The shared application, compiled into this binary (as a module of the
// library it costs ~700 B more flash: the library is optimised before LTO
// sees the binary). It finds `crate::config` and `crate::log` here.
#[path = "../../../firmware-shared/bgp_app.rs"]
mod bgp_app;

/// The logging macros the shared application uses: defmt over RTT.
mod log {
    pub use defmt::{info, warn};
}

#[embassy_executor::main]
async fn main(spawner: Spawner) -> ! {
    let stack = firmware_nucleo_h743zi::init_network(&spawner);
    // Zeroed in .bss at link time: no 8 KiB value built on the stack and
    // copied in at boot.
    static MEMORY: ConstStaticCell<PeerMemory> = ConstStaticCell::new(PeerMemory::new());
    let mem = MEMORY.take();
    stack.wait_config_up().await;
    info!(
        "network up, peering with {} (AS {})",
        config::PEER_ADDR,
        config::PEER_AS
    );
    bgp_app::run(stack, mem).await
}
