//! Footprint baseline: the board and its embassy-net stack, no TCP, no BGP.
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_time::Timer;
use firmware_qemu_mps2::{executor, info};

#[embassy_executor::task]
async fn app(spawner: Spawner) -> ! {
    let stack = firmware_qemu_mps2::init_network(&spawner);
    stack.wait_config_up().await;
    info!("network up: {:?}", stack.config_v4().map(|c| c.address));
    loop {
        Timer::after_secs(60).await;
    }
}

#[cortex_m_rt::entry]
fn main() -> ! {
    executor::run(|spawner| {
        if let Ok(token) = app(spawner) {
            spawner.spawn(token);
        }
    })
}
