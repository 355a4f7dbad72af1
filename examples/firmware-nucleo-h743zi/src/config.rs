//! What a deployment edits: the NUCLEO-H743ZI's MAC address here, addresses, AS
//! numbers and the peer in `examples/firmware-shared/config.rs` (one
//! configuration for both boards).

#[path = "../../firmware-shared/config.rs"]
mod shared;
pub use shared::*;

/// MAC address of the board (locally administered).
pub const MAC: [u8; 6] = [0x02, 0x00, 0xc0, 0xbe, 0xb6, 0x01];
