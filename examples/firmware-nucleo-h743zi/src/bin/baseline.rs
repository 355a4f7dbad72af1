//! Footprint baseline: the board and its embassy-net stack, no TCP, no BGP.
#![no_std]
#![no_main]

use defmt::info;
use embassy_executor::Spawner;
use embassy_time::Timer;
use {defmt_rtt as _, panic_probe as _};

#[embassy_executor::main]
async fn main(spawner: Spawner) -> ! {
    let stack = firmware_nucleo_h743zi::init_network(&spawner);
    stack.wait_config_up().await;
    info!("network up: {}", stack.config_v4().map(|c| c.address));
    loop {
        Timer::after_secs(60).await;
    }
}
