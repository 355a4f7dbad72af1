//! What a deployment edits: addresses, AS numbers, the peer.

use core::net::Ipv4Addr;

use embassy_net::{Config, Ipv4Address, Ipv4Cidr, StaticConfigV4};

/// MAC address of the board (locally administered).
pub const MAC: [u8; 6] = [0x02, 0x00, 0xc0, 0xbe, 0xb6, 0x01];
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
/// Proposed hold time (s).
pub const HOLD_TIME: u16 = 90;
/// Seconds between connection attempts (until the core's ConnectRetryTimer
/// takes this over).
pub const CONNECT_RETRY_S: u64 = 5;
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
