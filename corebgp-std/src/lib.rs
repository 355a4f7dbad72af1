//! corebgp-std: the tokio BGP server built on [`corebgp_core`] — CoreBGP's
//! `Server` API in Rust.
//!
//! The server owns sockets, listeners, time and tasks; everything the
//! protocol decides happens in corebgp-core's session, run by its one
//! driver ([`corebgp_core::driver::run`]), one tokio task per peer while
//! it has something to do. A passive peer waiting for a connection has no
//! task, session or buffers (well under a kilobyte per configured peer);
//! its first connection starts them, and they go when it is over. Passive
//! peers run corebgp-core's [`AcceptOnly`](corebgp_core::session::AcceptOnly)
//! session, which has no room for a dialled connection.
//!
//! A server holds a socket per connected peer: call
//! [`raise_open_file_limit`] at startup, as the benchmarks, the collector
//! and the demo do, or the usual soft limit of 1,024 open files stops it
//! near a thousand peers.
//!
//! | CoreBGP (Go) | corebgp-std |
//! |---|---|
//! | `NewServer(routerID)` | [`Server::new`]`(router_id)` |
//! | `s.AddPeer(cfg, plugin, opts...)` | [`Server::add_peer`]`(cfg, plugin, PeerOptions)` |
//! | `s.DeletePeer(ip)` (Cease 6/0, may hang) | [`Server::delete_peer`]`(ip).await` (Cease 6/3, bounded) |
//! | `s.GetPeer(ip)`, `s.ListPeers()` | [`Server::get_peer`], [`Server::list_peers`] (with the state) |
//! | `s.Serve([]net.Listener)` | [`Server::serve`]`(Vec<TcpListener>).await` |
//! | `s.Close()` | [`Server::close`]`().await` (Cease 6/2, bounded) |
//! | `WithPassive`, `WithHoldTime`, `WithIdleHoldTime`, `WithConnectRetryTime`, `WithPort`, `WithLocalAddress`, `WithDialerControl` | [`PeerOptions`]`::passive`, `hold_time`, `idle_hold_time`, `connect_retry_time`, `port`, `local_address`, `socket_hook` |
//! | `SetTCPMD5Signature` on dialer and listener by hand | [`PeerOptions::md5_key`] (both, RFC 2385) |
//! | — | [`PeerOptions::ttl_security`] (GTSM, RFC 5082), [`PeerOptions::nodelay`] |
//! | `OnEstablished(peer, writer)` | [`Plugin::on_established`](corebgp_core::plugin::Plugin::on_established) + a writer from the peer's [`UpdateQueue`] |
//!
//! # UPDATE writers
//!
//! A peer that sends UPDATEs gets an [`UpdateQueue`] ([`update_queue`]):
//! the plugin keeps one `Arc` of it, [`PeerOptions::update_queue`] hands
//! the server another. When the session is Established the plugin makes an
//! [`UpdateWriter`] from its `Arc` — a handle that may move to other tasks
//! and fails with [`WriteError::Closed`](corebgp_core::outbox::WriteError)
//! once that Established episode is over.
//!
//! ```no_run
//! use std::net::Ipv4Addr;
//! use std::sync::Arc;
//! use corebgp_std::core::plugin::Plugin;
//! use corebgp_std::core::session::{
//!     CapabilitySet, DefaultHooks, Negotiated, OpenHooks, PeerConfig,
//! };
//! use corebgp_std::core::update::{
//!     encode_end_of_rib, AsSegment, Ipv4Prefix, NextHop, Nlri, Origin, PathAttributes,
//!     SegmentType, Update, UpdateBuilder,
//! };
//! use corebgp_std::core::wire::{AfiSafi, Notification, UpdateSections};
//! use corebgp_std::{PeerOptions, Server, UpdateQueue, UpdateWriter, update_queue};
//!
//! struct MyPlugin {
//!     updates: Arc<UpdateQueue>,
//! }
//!
//! impl OpenHooks for MyPlugin {
//!     fn capabilities(&mut self, peer: &PeerConfig, caps: &mut CapabilitySet) {
//!         DefaultHooks.capabilities(peer, caps) // IPv4 + IPv6 unicast, Route Refresh
//!     }
//! }
//!
//! impl Plugin for MyPlugin {
//!     async fn on_established(&mut self, peer: &PeerConfig, negotiated: &Negotiated) {
//!         let Ok(writer) = UpdateWriter::new(self.updates.clone()) else { return };
//!         let cfg = negotiated.update_config(peer);
//!         let route = [Nlri::new(Ipv4Prefix::new(Ipv4Addr::new(198, 51, 100, 0), 24).unwrap())];
//!         let attrs = PathAttributes {
//!             origin: Some(Origin::Igp),
//!             as_path: Some(&[AsSegment { kind: SegmentType::Sequence, asns: &[peer.local_as] }]),
//!             next_hop: Some(NextHop::V4(Ipv4Addr::new(192, 0, 2, 1))),
//!             ..Default::default()
//!         };
//!         let mut buf = [0u8; 4096];
//!         let mut b = UpdateBuilder::new(&mut buf, &cfg).unwrap();
//!         b.announce(&attrs, AfiSafi::IPV4_UNICAST, &route).unwrap();
//!         let n = b.finish().unwrap();
//!         let _ = writer.send(&buf[..n]).await;
//!         let n = encode_end_of_rib(&mut buf, AfiSafi::IPV4_UNICAST).unwrap();
//!         let _ = writer.send(&buf[..n]).await;
//!     }
//!     async fn on_update<'m>(
//!         &mut self,
//!         _peer: &PeerConfig,
//!         update: UpdateSections<'m>,
//!     ) -> Result<(), Notification<'m>> {
//!         match Update::from_sections(update, &Default::default()) {
//!             Ok(u) => {
//!                 for (family, nlri) in u.announced() {
//!                     let _ = (family, nlri.prefix);
//!                 }
//!             }
//!             // RFC 7606: only some errors reset the session.
//!             Err(e) if e.is_session_reset() => return Err(e.notification),
//!             Err(_) => {} // treat-as-withdraw, attribute discard
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # async fn main_() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::new(Ipv4Addr::new(192, 0, 2, 1))?;
//! let updates = update_queue();
//! server.add_peer(
//!     PeerConfig { remote_address: "192.0.2.2".parse()?, local_as: 65001, remote_as: 65002 },
//!     MyPlugin { updates: updates.clone() },
//!     PeerOptions::new().update_queue(updates).md5_key(b"secret"),
//! )?;
//! let v4 = tokio::net::TcpListener::bind("0.0.0.0:179").await?;
//! let v6 = tokio::net::TcpListener::bind("[::]:179").await?;
//! let s = server.clone();
//! tokio::spawn(async move { s.serve(vec![v4, v6]).await });
//! // ...
//! server.close().await;
//! # Ok(()) }
//! ```
//!
//! # Logging
//!
//! With [`tracing`]: a span `peer{addr=…}` around each peer's task, state
//! changes at `debug`, Established/down at `info`, NOTIFICATIONs at
//! `warn`/`info`. The library prints nothing.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub use corebgp_core as core;

mod error;
mod mutex;
mod options;
mod pages;
mod server;
mod sockopt;

use std::sync::Arc;

use corebgp_core::outbox::SwapChannel;

pub use error::{Error, OptionError};
pub use mutex::StdRawMutex;
pub use options::{MD5_MAX_KEY_LEN, PeerOptions, SocketHook, SocketKind};
pub use server::{PeerInfo, STOP_GRACE, Server};

/// Bytes each of an [`UpdateQueue`]'s two buffers holds: sixteen
/// 4096-byte UPDATEs, or one RFC 8654 Extended Message. Writers fill one
/// while the peer's session writes the other to the socket.
pub const UPDATE_QUEUE_LEN: usize = 64 * 1024;

/// The queue a peer's UPDATEs go through, from any task to the peer's
/// session (corebgp-core's bounded, allocation-free [`SwapChannel`]),
/// behind a lock of its own ([`StdRawMutex`]). Its two buffers are pages
/// mapped for it, resident only where UPDATEs were written, and given back
/// to the system whenever the session goes down; the session writes from
/// the one it holds, traded for the other when drained, so an UPDATE is
/// copied once (by the writer), not again on its way to the socket.
pub type UpdateQueue = SwapChannel<StdRawMutex>;

/// A writer on an [`UpdateQueue`] that may move between tasks (CoreBGP's
/// `UpdateMessageWriter`).
pub type UpdateWriter = corebgp_core::outbox::UpdateWriter<Arc<UpdateQueue>>;

/// Raises this process's soft limit on open files to the hard limit and
/// returns the new soft limit (`None`: unlimited). A server holds one
/// socket per connected peer (two during a collision) plus its listeners:
/// the usual soft limit of 1,024 stops it near a thousand peers, while the
/// hard limit (20,000 on the project's test machine) is what the system
/// allows. Call it once at startup, before the peers connect.
pub fn raise_open_file_limit() -> std::io::Result<Option<u64>> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut l = getrlimit(Resource::Nofile);
    if l.current != l.maximum {
        l.current = l.maximum;
        setrlimit(Resource::Nofile, l)?;
    }
    Ok(l.current)
}

/// A new, closed [`UpdateQueue`] for [`PeerOptions::update_queue`].
pub fn update_queue() -> Arc<UpdateQueue> {
    Arc::new(SwapChannel::with_recycle(
        queue_buffer(),
        queue_buffer(),
        recycle_queue_buffer,
    ))
}

/// Buffers of dropped queues, for the next ones: mapped pages are never
/// unmapped, so a server that adds and removes peers reuses them rather
/// than mapping 128 KiB more each time.
static SPARE_QUEUE_BUFFERS: std::sync::Mutex<Vec<&'static mut [u8]>> =
    std::sync::Mutex::new(Vec::new());

/// An [`UPDATE_QUEUE_LEN`]-byte queue buffer: a spare one, or new pages.
pub(crate) fn queue_buffer() -> &'static mut [u8] {
    let spare = SPARE_QUEUE_BUFFERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop();
    spare.unwrap_or_else(|| pages::map(UPDATE_QUEUE_LEN))
}

/// A dropped queue's buffer: its pages go back to the system, the buffer
/// to the spares.
fn recycle_queue_buffer(b: &'static mut [u8]) {
    pages::release(b);
    SPARE_QUEUE_BUFFERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(b);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_dropped_queues_buffers_serve_the_next_queue() {
        let q = super::update_queue();
        let mut addrs = vec![];
        q.free_buffers(|b| addrs.push(b.as_ptr() as usize));
        assert_eq!(addrs.len(), 2);
        drop(q);
        // Other tests may take spares meanwhile: look for ours among a few.
        let qs: Vec<_> = (0..8).map(|_| super::update_queue()).collect();
        let mut again = vec![];
        for q in &qs {
            q.free_buffers(|b| again.push(b.as_ptr() as usize));
        }
        assert!(
            addrs.iter().all(|a| again.contains(a)),
            "{addrs:x?} not reused in {again:x?}"
        );
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        use rustix::process::{Resource, getrlimit};
        let got = super::raise_open_file_limit().unwrap();
        let l = getrlimit(Resource::Nofile);
        assert_eq!(l.current, l.maximum);
        assert_eq!(got, l.maximum);
    }
}
