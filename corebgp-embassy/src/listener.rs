//! Passive opens: listening sockets on port 179 shared by several peers.

use core::cell::RefCell;
use core::future::poll_fn;
use core::task::Poll;

use embassy_futures::select::select_array;
use embassy_net::IpEndpoint;
use embassy_sync::waitqueue::MultiWakerRegistration;

use crate::Error;
use crate::fmt::debug;
use crate::socket::{Connection, PassivePeer, Socket, accept_from, reclaim, tune};

/// Accepts connections on one port for a set of configured peers, with `N`
/// listening sockets, in one future ([`Listener::run`]), without
/// allocation.
///
/// smoltcp hands a SYN to whichever socket listens first, so sockets are not
/// bound to peers: each accepted connection is matched against the peers by
/// source address (strangers are reset) and parked for that peer's
/// [`crate::EmbassyConnector`], which takes it when the driver accepts. A
/// socket listens again once the connection lent to the driver is closed.
/// Give it one socket per peer (each peer holds at most one inbound
/// connection); a spare socket keeps the port open while all are in use.
///
/// A second connection from a peer whose first one was not taken yet
/// replaces it (the older one is reset).
pub struct Listener<'s, 'a, const N: usize> {
    sockets: &'s [Socket<'a>; N],
    port: u16,
    peers: &'s [PassivePeer],
    waiters: RefCell<MultiWakerRegistration<4>>,
}

impl<'s, 'a, const N: usize> Listener<'s, 'a, N> {
    /// Listens on `port` (normally [`crate::BGP_PORT`]) with `sockets` for
    /// `peers`.
    pub fn new(sockets: &'s [Socket<'a>; N], port: u16, peers: &'s [PassivePeer]) -> Self {
        Self {
            sockets,
            port,
            peers,
            waiters: RefCell::new(MultiWakerRegistration::new()),
        }
    }

    /// The inbound side of peer `index` (its position in `peers`), for its
    /// connector.
    pub fn inbound(&self, index: usize) -> Inbound<'_, 'a> {
        Inbound {
            sockets: self.sockets,
            waiters: &self.waiters,
            peer: index,
        }
    }

    /// Listens forever, in the same task as the drivers (`join` or `select`
    /// it with them). Returns only on a configuration error
    /// ([`Error::Accept`]: port 0).
    pub async fn run(&self) -> Error {
        select_array(self.sockets.each_ref().map(|s| self.serve(s)))
            .await
            .0
    }

    async fn serve(&self, home: &'s Socket<'a>) -> Error {
        loop {
            home.wait_free().await;
            let placeholder = IpEndpoint::new(crate::embassy_net::IpAddress::v4(0, 0, 0, 0), 0);
            let Some(mut guard) = home.lend(placeholder) else {
                continue;
            };
            let Some(socket) = guard.socket_mut() else {
                continue;
            };
            reclaim(socket).await;
            let (i, _remote) = match accept_from(socket, self.port, self.peers).await {
                Ok(x) => x,
                Err(e) => return e,
            };
            if let Some(p) = self.peers.get(i) {
                tune(socket, &p.tuning);
            }
            // A connection of this peer still waiting is superseded.
            for other in self.sockets.iter() {
                if other.claimed.get() == Some(i)
                    && let Some(mut s) = other.take()
                {
                    debug!("newer connection from {} replaces a waiting one", _remote);
                    other.claimed.set(None);
                    s.abort();
                    other.put(s);
                }
            }
            if let Some(s) = guard.into_socket() {
                home.claimed.set(Some(i));
                home.put(s);
            }
            if let Ok(mut w) = self.waiters.try_borrow_mut() {
                w.wake();
            }
        }
    }
}

/// One peer's view of a [`Listener`]: where its connector picks up the
/// connections the listener accepted from that peer.
#[derive(Clone, Copy)]
pub struct Inbound<'l, 'a> {
    sockets: &'l [Socket<'a>],
    waiters: &'l RefCell<MultiWakerRegistration<4>>,
    peer: usize,
}

impl<'l, 'a> Inbound<'l, 'a> {
    /// Completes with the next connection accepted for this peer.
    /// Cancel-safe: a connection stays parked until taken.
    pub async fn next(&self) -> Connection<'l, 'a> {
        poll_fn(|cx| {
            for home in self.sockets {
                if home.claimed.get() == Some(self.peer)
                    && let Some(socket) = home.take()
                {
                    home.claimed.set(None);
                    return Poll::Ready(Connection::accepted(socket, home));
                }
            }
            if let Ok(mut w) = self.waiters.try_borrow_mut() {
                w.register(cx.waker());
            }
            Poll::Pending
        })
        .await
    }
}
