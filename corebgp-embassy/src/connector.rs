//! corebgp-core's [`Connector`] on embassy-net, the driver's memory, and
//! the per-peer entry point.

use core::future::Future;

use corebgp_core::driver::{self, Buffers, Clock as _, Connector};
use corebgp_core::outbox::Outbox;
use corebgp_core::plugin::LocalPlugin;
use corebgp_core::session::{DialOnly, Peer, PeerMode};
use corebgp_core::wire::CeaseSubcode;

use crate::EmbassyClock;
use crate::listener::Inbound;
use crate::socket::{ActivePeer, Connection, Socket, dial};

/// How the driver of one peer gets its connections: dials with its own
/// [`Socket`] (active), takes what a [`crate::Listener`] accepted for it
/// (passive), or both (RFC 4271 collision detection between the two is the
/// session's).
///
/// `I` is where accepted connections come from: [`Inbound`] (the default),
/// or [`DialOnly`] for a peer that only dials ([`EmbassyConnector::active`]).
/// A dial-only connector can never hand the driver an accepted connection,
/// so the compiler drops its accept path (about 0.6 KB of flash on a
/// Cortex-M); pair it with a [`Peer::dial_only`] to drop the session's
/// and the driver's too.
pub struct EmbassyConnector<'s, 'a, I = Inbound<'s, 'a>> {
    active: Option<(&'s Socket<'a>, ActivePeer)>,
    inbound: Option<I>,
}

/// Where an [`EmbassyConnector`] takes accepted connections from.
pub trait Accept<'s, 'a: 's> {
    /// Completes with the next connection accepted for this peer;
    /// cancel-safe.
    fn next(&self) -> impl Future<Output = Connection<'s, 'a>>;
}

impl<'s, 'a: 's> Accept<'s, 'a> for Inbound<'s, 'a> {
    fn next(&self) -> impl Future<Output = Connection<'s, 'a>> {
        Inbound::next(self)
    }
}

// The accept side of a dial-only connector: `DialOnly` has no values, so
// such a connector provably never accepts.
impl<'s, 'a: 's> Accept<'s, 'a> for DialOnly {
    async fn next(&self) -> Connection<'s, 'a> {
        match *self {}
    }
}

impl<'s, 'a> EmbassyConnector<'s, 'a, DialOnly> {
    /// Dials `peer` with `socket`; never accepts.
    pub fn active(socket: &'s Socket<'a>, peer: ActivePeer) -> Self {
        Self {
            active: Some((socket, peer)),
            inbound: None,
        }
    }
}

impl<'s, 'a> EmbassyConnector<'s, 'a> {
    /// Takes connections accepted for this peer; never dials.
    pub fn passive(inbound: Inbound<'s, 'a>) -> Self {
        Self {
            active: None,
            inbound: Some(inbound),
        }
    }

    /// Dials with `socket` and takes accepted connections.
    pub fn both(socket: &'s Socket<'a>, peer: ActivePeer, inbound: Inbound<'s, 'a>) -> Self {
        Self {
            active: Some((socket, peer)),
            inbound: Some(inbound),
        }
    }

    /// Either or both, chosen at run time (one type for active and passive
    /// peers; [`EmbassyConnector::active`] is smaller for a peer that only
    /// dials).
    pub fn new(
        active: Option<(&'s Socket<'a>, ActivePeer)>,
        inbound: Option<Inbound<'s, 'a>>,
    ) -> Self {
        Self { active, inbound }
    }
}

impl<'s, 'a: 's, I: Accept<'s, 'a>> Connector for EmbassyConnector<'s, 'a, I> {
    type Transport = Connection<'s, 'a>;

    fn connect(&self) -> impl Future<Output = Option<Connection<'s, 'a>>> {
        dial(self.active.as_ref().map(|(s, p)| (*s, p)), Result::ok)
    }

    async fn accept(&self) -> Connection<'s, 'a> {
        match &self.inbound {
            Some(i) => i.next().await,
            None => core::future::pending().await,
        }
    }
}

/// The memory the driver works in for one peer: two message buffers (two
/// connections only meet during a collision) of `MSG` bytes — the largest
/// message accepted: 4096 (RFC 4271) or 65535 (RFC 8654 Extended Messages)
/// — and one `OUT`-byte buffer where a queued UPDATE waits while it is
/// written (as large as the largest UPDATE this side sends).
pub struct SessionBuffers<const MSG: usize = 4096, const OUT: usize = 4096, const CONNS: usize = 2>
{
    rx: [[u8; MSG]; CONNS],
    tx: [u8; OUT],
}

/// Buffers for RFC 4271 messages and two connections (a collision can be
/// resolved): 12 KiB.
pub type StandardBuffers = SessionBuffers<4096, 4096, 2>;
/// Buffers for one connection at a time, receiving 4096-byte messages and
/// sending UPDATEs of up to 1024 bytes: 5 KiB. A second connection from the
/// peer waits until the first is over (collisions resolve by retrying).
pub type CompactBuffers = SessionBuffers<4096, 1024, 1>;
/// Buffers for RFC 8654 Extended Messages (receiving and sending 65535-byte
/// UPDATEs): 192 KiB.
pub type ExtendedBuffers = SessionBuffers<65535, 65535, 2>;

impl<const MSG: usize, const OUT: usize, const CONNS: usize> SessionBuffers<MSG, OUT, CONNS> {
    /// Bytes of RAM these buffers occupy.
    pub const RAM: usize = CONNS * MSG + OUT;

    /// Zeroed buffers (`const`: usable in a `static` initialiser).
    pub const fn new() -> Self {
        const { assert!(CONNS == 1 || CONNS == 2, "one or two connections") };
        Self {
            rx: [[0; MSG]; CONNS],
            tx: [0; OUT],
        }
    }

    /// Lends them to the driver (an empty second receive buffer when
    /// `CONNS` is 1).
    pub fn buffers(&mut self) -> Buffers<'_> {
        let mut rx = self.rx.iter_mut();
        let first: &mut [u8] = rx.next().map_or(&mut [], |b| &mut b[..]);
        let second: &mut [u8] = rx.next().map_or(&mut [], |b| &mut b[..]);
        Buffers {
            rx: [first, second],
            tx: &mut self.tx,
        }
    }
}

impl<const MSG: usize, const OUT: usize, const CONNS: usize> Default
    for SessionBuffers<MSG, OUT, CONNS>
{
    fn default() -> Self {
        Self::new()
    }
}

/// Runs one configured peer on corebgp-core's shared driver
/// ([`corebgp_core::driver::run`]) with an [`EmbassyClock`], until
/// `shutdown` completes with the Cease subcode to send; starts the peer,
/// if it was not started, when called (the driver's future is returned
/// as is: no state machine around it on flash).
///
/// `peer` is a [`Peer`] (dials and accepts) or a [`Peer::dial_only`]
/// (smaller, for a peer that only dials: give it an
/// [`EmbassyConnector::active`]; a dial-only peer never takes what a
/// connector accepts).
///
/// Serve several peers from one task without allocation by joining their
/// `run_peer` futures (and the [`crate::Listener`]'s `run`) with
/// `embassy_futures::join`.
pub fn run_peer<'s, 'a, I, M, P, O, S, const MSG: usize, const OUT: usize, const CONNS: usize>(
    peer: &mut Peer<M>,
    connector: &EmbassyConnector<'s, 'a, I>,
    plugin: &mut P,
    outbox: &O,
    buffers: &mut SessionBuffers<MSG, OUT, CONNS>,
    shutdown: S,
) -> impl Future<Output = ()>
where
    I: Accept<'s, 'a>,
    M: PeerMode,
    P: LocalPlugin,
    O: Outbox,
    S: Future<Output = CeaseSubcode>,
{
    if !peer.is_started() {
        peer.start(EmbassyClock.now());
    }
    driver::run(
        peer,
        connector,
        &EmbassyClock,
        plugin,
        outbox,
        buffers.buffers(),
        shutdown,
    )
}
