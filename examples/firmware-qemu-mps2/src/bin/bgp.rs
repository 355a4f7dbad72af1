//! BGP on QEMU's MPS2 (AN500 Cortex-M7 by default): the BGP application of
//! `examples/firmware-shared/bgp_app.rs` (shared with the NUCLEO-H743ZI
//! firmware) on this board's LAN9118, logging to the serial port.
#![no_std]
#![no_main]

use bgp_app::PeerMemory;
use embassy_executor::Spawner;
use firmware_qemu_mps2::{config, executor, info};
use static_cell::ConstStaticCell;

// The shared application, compiled into this binary (as in the NUCLEO
// firmware). It finds `crate::config` and `crate::log` here.
#[path = "../../../firmware-shared/bgp_app.rs"]
mod bgp_app;

/// The logging macros the shared application uses: plain text on the UART.
mod log {
    pub use firmware_qemu_mps2::{info, warn};
}

#[embassy_executor::task]
async fn app(spawner: Spawner) -> ! {
    let stack = firmware_qemu_mps2::init_network(&spawner);
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

#[cortex_m_rt::entry]
fn main() -> ! {
    executor::run(|spawner| {
        if let Ok(token) = app(spawner) {
            spawner.spawn(token);
        }
    })
}
