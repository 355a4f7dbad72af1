//! BGP on QEMU's MPS2 (AN500 Cortex-M7 by default): the BGP application of
//! `examples/firmware-shared/bgp_app.rs` (shared with the NUCLEO-H743ZI
//! firmware) on this board's LAN9118, logging to the serial port.
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use firmware_qemu_mps2::bgp_app::{self, PeerMemory};
use firmware_qemu_mps2::{config, executor, info};
use static_cell::ConstStaticCell;

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
