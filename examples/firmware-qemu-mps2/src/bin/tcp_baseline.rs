//! Footprint baseline with TCP: the board, its stack and one plain TCP
//! connection to the router's port 179 (sends nothing, logs what arrives).
//! corebgp's own increment is measured against this image.
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_net::tcp::TcpSocket;
use embassy_time::{Duration, Timer};
use firmware_qemu_mps2::{config, executor, info};

#[embassy_executor::task]
async fn app(spawner: Spawner) -> ! {
    let stack = firmware_qemu_mps2::init_network(&spawner);
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

#[cortex_m_rt::entry]
fn main() -> ! {
    executor::run(|spawner| {
        if let Ok(token) = app(spawner) {
            spawner.spawn(token);
        }
    })
}
