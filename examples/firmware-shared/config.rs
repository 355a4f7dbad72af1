//! What a deployment edits: addresses, AS numbers, the peer; the same for
//! both boards (each board's `config.rs` includes this file and adds its MAC
//! address).

use core::net::Ipv4Addr;

use embassy_net::{Config, Ipv4Address, Ipv4Cidr, StaticConfigV4};

/// This board's address on the peering LAN.
pub const LOCAL_ADDR: Ipv4Address = Ipv4Address::new(192, 168, 1, 2);
/// Prefix length of the peering LAN.
pub const PREFIX_LEN: u8 = 24;
/// The router.
pub const PEER_ADDR: Ipv4Address = Ipv4Address::new(192, 168, 1, 1);
/// This board's AS.
pub const LOCAL_AS: u32 = 65001;
/// The router's AS.
pub const PEER_AS: u32 = 65000;
/// BGP Identifier.
pub const BGP_ID: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 2);
/// Proposed hold time (s); the session uses the smaller of both proposals.
pub const HOLD_TIME: u16 = 90;
/// Seconds between connection attempts of `tcp_baseline` (the BGP image
/// uses the session's ConnectRetryTimer).
pub const CONNECT_RETRY_S: u64 = 5;
/// The prefix this board announces.
pub const ANNOUNCE: (Ipv4Addr, u8) = (Ipv4Addr::new(198, 51, 100, 0), 24);
/// TCP receive buffer (the window): the driver reads whole messages into its
/// own buffers, so this need not hold a 4096-byte message.
pub const SOCKET_RX: usize = 2048;
/// TCP transmit buffer: messages stream through it.
pub const SOCKET_TX: usize = 1024;
/// Largest UPDATE this board sends (one prefix needs < 100 bytes); also the
/// outbox's capacity.
pub const MAX_UPDATE_OUT: usize = 512;
/// Stack socket entries: one BGP peer + one spare.
pub const SOCKETS: usize = 2;

/// Static IPv4 configuration (no DHCP: a router peer wants a fixed address).
pub fn net_config() -> Config {
    Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(LOCAL_ADDR, PREFIX_LEN),
        gateway: Some(PEER_ADDR),
        dns_servers: Default::default(),
    })
}
