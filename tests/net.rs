//! Unique loopback addresses and ports for tests.
//!
//! Every address in 127.0.0.0/8 works on Linux loopback without any
//! configuration. Each call to [`unique_loopback`] returns an address that no
//! other test of this process gets; the second octet is derived from the
//! process id so that test binaries running at the same time do not collide
//! either. Nothing but loopback is ever used.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A loopback address (127.A.B.C) used by no other caller in this process.
///
/// `A` is in 64..=223 and derived from the process id; `B.C` come from a
/// process-wide counter (C in 10..=209), giving 200 * 256 addresses per
/// process.
pub fn unique_loopback() -> Ipv4Addr {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let a = 64 + (std::process::id() % 160) as u8;
    let b = ((n / 200) % 256) as u8;
    let c = (n % 200) as u8 + 10;
    Ipv4Addr::new(127, a, b, c)
}

/// A TCP port that is free on `addr` right now (chosen by the kernel).
///
/// The address comes from [`unique_loopback`], so nobody else binds it
/// between this call and the daemon's bind.
///
/// Ports are also unique within this process, so that a daemon that binds a
/// wildcard address by mistake cannot collide with another test's port.
pub fn free_port(addr: Ipv4Addr) -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let l = TcpListener::bind(SocketAddrV4::new(addr, 0))
            .unwrap_or_else(|e| panic!("cannot bind {addr}:0 to pick a free port: {e}"));
        let port = l
            .local_addr()
            .expect("local_addr of a bound listener")
            .port();
        if GIVEN.lock().unwrap_or_else(|e| e.into_inner()).insert(port) {
            return port;
        }
    }
}

/// A fresh loopback address with a free port on it.
pub fn unique_endpoint() -> SocketAddrV4 {
    let addr = unique_loopback();
    SocketAddrV4::new(addr, free_port(addr))
}
