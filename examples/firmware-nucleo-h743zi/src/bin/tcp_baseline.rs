//! Footprint baseline with TCP: the board, its stack and one plain TCP
//! connection to the router's port 179 (sends nothing, logs what arrives).
//! corebgp's own increment is measured against this image.
#![no_std]
#![no_main]

use defmt::info;
use embassy_executor::Spawner;
use embassy_net::tcp::TcpSocket;
use embassy_time::{Duration, Timer};
use firmware_nucleo_h743zi::config;
use {defmt_rtt as _, panic_probe as _};

#[embassy_executor::main]
async fn main(spawner: Spawner) -> ! {
    let stack = firmware_nucleo_h743zi::init_network(&spawner);
    stack.wait_config_up().await;
    // The same socket buffers as the BGP image.
    let mut rx = [0u8; config::SOCKET_RX];
    let mut tx = [0u8; config::SOCKET_TX];
    loop {
        let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
        socket.set_timeout(Some(Duration::from_secs(10)));
        if socket.connect((config::PEER_ADDR, 179)).await.is_ok() {
            let mut buf = [0u8; 512];
            while let Ok(n @ 1..) = socket.read(&mut buf).await {
                info!("{} bytes", n);
            }
        }
        socket.abort();
        let _ = socket.flush().await;
        drop(socket);
        Timer::after_secs(config::CONNECT_RETRY_S).await;
    }
}
