//! Test harness for the sans-IO session (`corebgp_core::session`).
//!
//! * [`Remote`]: one [`Peer`] driven by a test that plays the remote speaker
//!   with the wire codec: what the peer writes is framed and decoded into
//!   owned [`Msg`]s to assert on, crafted bytes go back in through a
//!   [`Framer`] exactly as an adapter would feed them.
//! * [`Pair`]: two [`Peer`]s wired back to back in memory on one simulated
//!   clock, quinn-proto style (`step()` until quiet, then advance the clock
//!   to the next `poll_timeout()`).
//!
//! Both check on every timer run that `poll_timeout()` is never in the past
//! once `handle_timeout(now)` returned, and every byte a peer writes must
//! frame and decode.
#![allow(dead_code)]

use core::net::{IpAddr, Ipv4Addr};

use corebgp_core::session::{
    AcceptOnly, Accepting, CapabilitySet, DialOnly, Direction, Duration, Event, Instant,
    Negotiated, OpenHooks, Peer, PeerConfig, PeerMode, Rejected, SessionConfig, StateKind,
};
use corebgp_core::wire::{
    AfiSafi, Capability, Framer, KEEPALIVE, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, Message,
    MessageType, Notification, NotificationCode, Open, OpenBuilder, RouteRefresh,
    RouteRefreshSubtype, UpdateSections, encode_update_sections,
};

pub const LOCAL_AS: u32 = 65001;
pub const REMOTE_AS: u32 = 65002;
pub const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(1, 1, 1, 1);
pub const REMOTE_ID: Ipv4Addr = Ipv4Addr::new(2, 2, 2, 2);
pub const OUT: Direction = Direction::Outbound;
pub const IN: Direction = Direction::Inbound;

/// An instant `s` seconds after the epoch.
pub fn at(s: u64) -> Instant {
    Instant::from_millis(s * 1000)
}
/// An instant `m` milliseconds after the epoch.
pub fn at_ms(m: u64) -> Instant {
    Instant::from_millis(m)
}
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Our configuration towards the remote (eBGP 65001 → 65002).
pub fn config() -> SessionConfig {
    SessionConfig::new(
        PeerConfig {
            remote_address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
            local_as: LOCAL_AS,
            remote_as: REMOTE_AS,
        },
        LOCAL_ID,
    )
}

/// A configuration for any pair of ASes and identifiers.
pub fn config_for(local_as: u32, remote_as: u32, id: Ipv4Addr) -> SessionConfig {
    SessionConfig::new(
        PeerConfig {
            remote_address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
            local_as,
            remote_as,
        },
        id,
    )
}

// ---------------------------------------------------------------------------
// Owned views of messages.

/// A decoded message, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    Open {
        my_as: u16,
        hold: u16,
        id: Ipv4Addr,
        /// Capability TLVs as (code, value), in order.
        caps: Vec<(u8, Vec<u8>)>,
    },
    /// An UPDATE's body (after the header).
    Update(Vec<u8>),
    Notification {
        code: u8,
        subcode: u8,
        data: Vec<u8>,
    },
    Keepalive,
    RouteRefresh {
        afi: u16,
        safi: u8,
        subtype: u8,
    },
}

impl Msg {
    pub fn from_message(m: &Message<'_>) -> Self {
        match m {
            Message::Open(o) => Self::from_open(o),
            Message::Update(u) => {
                let mut buf = vec![0u8; MAX_EXTENDED_MESSAGE_LEN];
                let n = encode_update_sections(u, &mut buf, MAX_EXTENDED_MESSAGE_LEN)
                    .expect("re-encode UPDATE");
                Self::Update(buf[19..n].to_vec())
            }
            Message::Notification(n) => Self::notif(n),
            Message::Keepalive => Self::Keepalive,
            Message::RouteRefresh(rr) => Self::RouteRefresh {
                afi: rr.family.afi.to_raw(),
                safi: rr.family.safi.to_raw(),
                subtype: rr.subtype.to_raw(),
            },
        }
    }

    pub fn from_open(o: &Open<'_>) -> Self {
        Self::Open {
            my_as: o.my_as,
            hold: o.hold_time,
            id: o.bgp_id,
            caps: o
                .raw_capabilities()
                .map(|c| (c.code, c.value.to_vec()))
                .collect(),
        }
    }

    pub fn notif(n: &Notification<'_>) -> Self {
        Self::Notification {
            code: n.code.code(),
            subcode: n.code.subcode(),
            data: n.data.as_bytes().to_vec(),
        }
    }

    /// A NOTIFICATION with this code, subcode and data.
    pub fn n(code: u8, subcode: u8, data: &[u8]) -> Self {
        Self::Notification {
            code,
            subcode,
            data: data.to_vec(),
        }
    }

    pub fn is_open(&self) -> bool {
        matches!(self, Self::Open { .. })
    }

    /// The capability value for `code` in an OPEN.
    pub fn cap(&self, code: u8) -> Option<&[u8]> {
        match self {
            Self::Open { caps, .. } => caps
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, v)| v.as_slice()),
            _ => None,
        }
    }
}

/// What a received message handed to the plugin, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    Update(Vec<u8>),
    RouteRefresh { afi: u16, safi: u8, subtype: u8 },
    Notification(Msg),
}

fn got(d: &corebgp_core::session::Delivery<'_>) -> Option<Got> {
    use corebgp_core::session::Delivery;
    match d {
        Delivery::None => None,
        Delivery::Update(u) => match Msg::from_message(&Message::Update(*u)) {
            Msg::Update(b) => Some(Got::Update(b)),
            _ => None,
        },
        Delivery::RouteRefresh(rr) => Some(Got::RouteRefresh {
            afi: rr.family.afi.to_raw(),
            safi: rr.family.safi.to_raw(),
            subtype: rr.subtype.to_raw(),
        }),
        Delivery::Notification(n) => Some(Got::Notification(Msg::notif(n))),
    }
}

// ---------------------------------------------------------------------------
// Message builders (what the test's remote speaker sends).

/// An OPEN with these fields and capabilities.
pub fn open_bytes(my_as: u16, hold: u16, id: Ipv4Addr, caps: &[Capability<'_>]) -> Vec<u8> {
    let b = OpenBuilder {
        my_as,
        hold_time: hold,
        bgp_id: id,
        capabilities: caps,
        force_extended_parameters: false,
    };
    let mut buf = vec![0u8; 4096];
    let n = b.encode(&mut buf).expect("encode OPEN");
    buf.truncate(n);
    buf
}

/// The remote's usual capabilities: 4-octet AS, IPv4 unicast, Route Refresh.
pub fn remote_caps(asn: u32) -> Vec<Capability<'static>> {
    vec![
        Capability::FourOctetAs(asn),
        Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
        Capability::RouteRefresh,
    ]
}

/// The remote's usual OPEN (AS 65002, id 2.2.2.2) with this hold time.
pub fn remote_open(hold: u16) -> Vec<u8> {
    open_bytes(REMOTE_AS as u16, hold, REMOTE_ID, &remote_caps(REMOTE_AS))
}

/// A whole message of type `ty` with this body (header computed).
pub fn raw_msg(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(ty);
    m.extend_from_slice(body);
    m
}

pub fn keepalive() -> Vec<u8> {
    KEEPALIVE.to_vec()
}

/// Path attributes: ORIGIN IGP, AS_PATH [65002] (4-octet), NEXT_HOP 192.0.2.2.
pub const ATTRS: [u8; 20] = [
    0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xea, 0x40, 3, 4, 192, 0, 2, 2,
];

/// A valid UPDATE: [`ATTRS`], NLRI 10.0.0.0/8.
pub fn update() -> Vec<u8> {
    let s = UpdateSections {
        withdrawn: &[],
        attributes: &ATTRS,
        nlri: &[8, 10],
    };
    let mut buf = vec![0u8; 4096];
    let n = encode_update_sections(&s, &mut buf, MAX_MESSAGE_LEN).expect("encode UPDATE");
    buf.truncate(n);
    buf
}

/// An UPDATE of exactly `len` bytes (NLRI padding of /8 prefixes).
pub fn update_of_len(len: usize) -> Vec<u8> {
    assert!(len >= 23);
    let nlri: Vec<u8> = (0..len - 23)
        .map(|i| if i % 2 == 0 { 8 } else { 10 })
        .collect();
    let s = UpdateSections {
        withdrawn: &[],
        attributes: &[],
        nlri: &nlri,
    };
    let mut buf = vec![0u8; MAX_EXTENDED_MESSAGE_LEN];
    let n = encode_update_sections(&s, &mut buf, MAX_EXTENDED_MESSAGE_LEN).expect("encode");
    buf.truncate(n);
    assert_eq!(n, len);
    buf
}

pub fn notification(code: NotificationCode, data: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = Notification::with_data(code, data)
        .encode(&mut buf)
        .expect("encode NOTIFICATION");
    buf.truncate(n);
    buf
}

pub fn route_refresh(family: AfiSafi, subtype: RouteRefreshSubtype) -> Vec<u8> {
    let rr = RouteRefresh {
        family,
        subtype,
        orf: &[],
    };
    let mut buf = vec![0u8; 64];
    let n = rr.encode(&mut buf).expect("encode ROUTE-REFRESH");
    buf.truncate(n);
    buf
}

/// The message type byte of a message.
pub fn ty(m: MessageType) -> u8 {
    m as u8
}

// ---------------------------------------------------------------------------
// Hooks.

/// Records every hook call; capabilities and refusal are configurable.
#[derive(Debug, Clone)]
pub struct TestHooks {
    /// Capabilities handed to the session for each OPEN.
    pub caps: Vec<Capability<'static>>,
    /// Refuse every OPEN with this NOTIFICATION.
    pub refuse: Option<Notification<'static>>,
    /// How many OPENs asked for capabilities.
    pub capability_calls: usize,
    /// (peer id, peer AS, negotiated hold time) of each OPEN checked.
    pub opens_checked: Vec<(Ipv4Addr, u32, u16)>,
}

impl Default for TestHooks {
    fn default() -> Self {
        Self {
            caps: vec![
                Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
                Capability::RouteRefresh,
            ],
            refuse: None,
            capability_calls: 0,
            opens_checked: Vec::new(),
        }
    }
}

impl OpenHooks for TestHooks {
    fn capabilities(&mut self, _: &PeerConfig, caps: &mut CapabilitySet) {
        self.capability_calls += 1;
        for c in &self.caps {
            caps.push(c).expect("capability set room");
        }
    }

    fn check_open(
        &mut self,
        _: &PeerConfig,
        _: &Open<'_>,
        n: &Negotiated,
    ) -> Result<(), Notification<'static>> {
        self.opens_checked.push((n.peer_id, n.peer_as, n.hold_time));
        match self.refuse {
            Some(r) => Err(r),
            None => Ok(()),
        }
    }
}

// ---------------------------------------------------------------------------
// Shared plumbing.

fn idx(dir: Direction) -> usize {
    match dir {
        Direction::Outbound => 0,
        Direction::Inbound => 1,
    }
}

fn new_framer() -> Framer<Vec<u8>> {
    let mut f = Framer::new(vec![0u8; MAX_EXTENDED_MESSAGE_LEN]);
    f.set_max_message_len(MAX_MESSAGE_LEN);
    f
}

/// Frames and decodes what a peer wrote. Panics if it does not parse: the
/// session must only ever write valid messages.
fn decode_all(framer: &mut Framer<Vec<u8>>, bytes: &[u8]) -> Vec<Msg> {
    let mut out = Vec::new();
    let mut rest = bytes;
    framer.set_max_message_len(MAX_EXTENDED_MESSAGE_LEN);
    loop {
        let n = framer.feed(rest);
        rest = &rest[n..];
        while let Some(m) = framer.next_message() {
            let m = m.expect("the session wrote a bad header");
            let msg = Message::parse(m, MAX_EXTENDED_MESSAGE_LEN)
                .unwrap_or_else(|e| panic!("the session wrote an undecodable message: {e}"));
            out.push(Msg::from_message(&msg));
        }
        if rest.is_empty() {
            return out;
        }
    }
}

/// Feeds bytes a peer receives on `dir` through `framer`, exactly as an
/// adapter would: each whole message to `handle_message`, a decoding error
/// to `handle_error` with its NOTIFICATION. Returns what went to the plugin
/// and the messages as they were received.
pub fn deliver<M: PeerMode>(
    peer: &mut Peer<M>,
    hooks: &mut TestHooks,
    framer: &mut Framer<Vec<u8>>,
    now: Instant,
    dir: Direction,
    bytes: &[u8],
) -> (Vec<Got>, Vec<Msg>) {
    let mut gots = Vec::new();
    let mut msgs = Vec::new();
    let mut rest = bytes;
    loop {
        let n = framer.feed(rest);
        rest = &rest[n..];
        loop {
            let max = peer
                .negotiated_on(dir)
                .map_or(MAX_MESSAGE_LEN, Negotiated::max_message_len);
            framer.set_max_message_len(max);
            let Some(m) = framer.next_message() else {
                break;
            };
            match m {
                Ok(m) => match Message::parse(m, max) {
                    Ok(msg) => {
                        msgs.push(Msg::from_message(&msg));
                        let d = peer.handle_message(now, dir, msg, hooks);
                        gots.extend(got(&d));
                    }
                    Err(e) => {
                        peer.handle_error(now, dir, &e.notification());
                        return (gots, msgs);
                    }
                },
                Err(e) => {
                    peer.handle_error(now, dir, &e.notification());
                    return (gots, msgs);
                }
            }
        }
        if rest.is_empty() {
            return (gots, msgs);
        }
    }
}

/// Runs the peer's timers up to `until`, checking that `poll_timeout` is
/// never in the past after a `handle_timeout`.
fn run_timers<M: PeerMode>(peer: &mut Peer<M>, now: &mut Instant, until: Instant) {
    let mut guard = 0;
    while let Some(t) = peer.poll_timeout() {
        if t > until {
            break;
        }
        assert!(
            t >= *now || guard == 0,
            "poll_timeout {t:?} in the past at {now:?}"
        );
        *now = (*now).max(t);
        peer.handle_timeout(*now);
        if let Some(next) = peer.poll_timeout() {
            assert!(
                next > *now,
                "after handle_timeout({now:?}) poll_timeout is {next:?} (state {:?})",
                peer.state()
            );
        }
        guard += 1;
        assert!(guard < 100_000, "timer loop does not advance");
    }
    *now = (*now).max(until);
}

// ---------------------------------------------------------------------------
// Scripted remote.

/// One peer under test; the test plays the remote speaker.
pub struct Remote<M: PeerMode = Accepting> {
    pub peer: Peer<M>,
    pub now: Instant,
    pub hooks: TestHooks,
    /// Decodes what the peer writes, per direction.
    rx: [Framer<Vec<u8>>; 2],
    /// Frames what the test sends to the peer, per direction.
    tx: [Framer<Vec<u8>>; 2],
    /// What the peer handed to the plugin.
    pub delivered: Vec<(Direction, Got)>,
}

impl Remote {
    pub fn new(config: SessionConfig) -> Self {
        config.validate().expect("valid config");
        Self::with_peer(Peer::new(config))
    }
}

impl Remote<DialOnly> {
    /// A [`Peer::dial_only`].
    #[allow(dead_code)]
    pub fn dial_only(config: SessionConfig) -> Self {
        config.validate().expect("valid config");
        Self::with_peer(Peer::dial_only(config))
    }
}

impl Remote<AcceptOnly> {
    /// A [`Peer::accept_only`].
    #[allow(dead_code)]
    pub fn accept_only(config: SessionConfig) -> Self {
        config.validate().expect("valid config");
        Self::with_peer(Peer::accept_only(config))
    }
}

impl<M: PeerMode> Remote<M> {
    fn with_peer(peer: Peer<M>) -> Self {
        Self {
            peer,
            now: Instant::ZERO,
            hooks: TestHooks::default(),
            rx: [new_framer(), new_framer()],
            tx: [new_framer(), new_framer()],
            delivered: Vec::new(),
        }
    }

    pub fn start(&mut self) {
        self.peer.start(self.now);
    }

    /// Takes the peer's dial request.
    pub fn take_dial(&mut self) -> bool {
        self.peer.link(OUT).expect("outbound link").take_dial()
    }

    /// The dial succeeds (Event 16/17).
    pub fn connected(&mut self) {
        self.rx[0].reset();
        self.tx[0].reset();
        self.peer.connected(self.now, &mut self.hooks);
    }

    /// The remote connects to us.
    pub fn accept(&mut self) -> Result<(), Rejected> {
        let r = self.peer.accept(self.now, &mut self.hooks);
        if r.is_ok() {
            self.rx[1].reset();
            self.tx[1].reset();
        }
        r
    }

    /// Everything the peer wrote on `dir` since the last call, decoded.
    pub fn sent(&mut self, dir: Direction) -> Vec<Msg> {
        let Some(link) = self.peer.link(dir) else {
            return Vec::new();
        };
        let bytes = link.pending().to_vec();
        link.consume(bytes.len());
        decode_all(&mut self.rx[idx(dir)], &bytes)
    }

    /// Sends bytes to the peer on `dir`; returns what went to the plugin.
    pub fn send(&mut self, dir: Direction, bytes: &[u8]) -> Vec<Got> {
        let (g, _) = deliver(
            &mut self.peer,
            &mut self.hooks,
            &mut self.tx[idx(dir)],
            self.now,
            dir,
            bytes,
        );
        self.delivered.extend(g.iter().cloned().map(|g| (dir, g)));
        g
    }

    /// Whether the peer asks to close `dir`.
    pub fn wants_close(&mut self, dir: Direction) -> bool {
        self.peer.link(dir).is_some_and(|l| l.wants_close())
    }

    /// Closes `dir` if the peer asks to (writes what is pending first: the
    /// caller should have read it with [`Remote::sent`]).
    pub fn close_if_asked(&mut self, dir: Direction) -> bool {
        if self.wants_close(dir) {
            self.peer.connection_closed(self.now, dir);
            true
        } else {
            false
        }
    }

    /// The TCP connection on `dir` fails (Event 18).
    pub fn fail(&mut self, dir: Direction) {
        self.peer.connection_failed(self.now, dir);
    }

    /// Advances the clock by `d`, running every timer due on the way.
    pub fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        self.advance_to(until);
    }

    pub fn advance_to(&mut self, until: Instant) {
        run_timers(&mut self.peer, &mut self.now, until);
    }

    /// Advances to the next deadline and runs it; returns it.
    pub fn next_timeout(&mut self) -> Option<Instant> {
        let t = self.peer.poll_timeout()?;
        self.advance_to(t);
        Some(t)
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.peer.poll_event()).collect()
    }

    pub fn state(&self, dir: Direction) -> Option<StateKind> {
        self.peer.state_of(dir)
    }

    /// start → dial → connected: the peer's OPEN, on OUT in OpenSent.
    pub fn reach_open_sent_out(&mut self) -> Msg {
        self.start();
        assert!(self.take_dial(), "a started active peer dials");
        self.connected();
        let s = self.sent(OUT);
        assert_eq!(s.len(), 1, "one OPEN: {s:?}");
        assert_eq!(self.state(OUT), Some(StateKind::OpenSent));
        s.into_iter().next().expect("OPEN")
    }

    /// Up to OpenConfirm on OUT with the remote's OPEN of this hold time.
    pub fn reach_open_confirm_out(&mut self, hold: u16) {
        self.reach_open_sent_out();
        self.send(OUT, &remote_open(hold));
        assert_eq!(self.sent(OUT), vec![Msg::Keepalive]);
        assert_eq!(self.state(OUT), Some(StateKind::OpenConfirm));
    }

    /// Up to Established on OUT.
    pub fn establish_out(&mut self, hold: u16) {
        self.reach_open_confirm_out(hold);
        self.send(OUT, &keepalive());
        assert_eq!(self.state(OUT), Some(StateKind::Established));
        assert_eq!(self.peer.established(), Some(OUT));
    }

    /// The remote connects; up to OpenSent on IN; returns our OPEN.
    pub fn reach_open_sent_in(&mut self) -> Msg {
        self.accept().expect("accepted");
        let s = self.sent(IN);
        assert_eq!(s.len(), 1, "one OPEN: {s:?}");
        s.into_iter().next().expect("OPEN")
    }
}

// ---------------------------------------------------------------------------
// Two peers back to back.

/// One TCP connection between the two peers: `dialer` Outbound ↔ the other
/// peer's Inbound. End 0 is the dialer's, end 1 the acceptor's.
struct Wire {
    /// Bytes in flight towards end 0 / end 1.
    to: [Vec<u8>; 2],
    /// Receive framers of end 0 / end 1.
    rx: [Framer<Vec<u8>>; 2],
    /// Whether end 0 / end 1 is finished with the connection.
    closed: [bool; 2],
    /// The acceptor has the connection, the dialer has not been told yet
    /// (a held dial, [`Pair::accept_dial`]): end 0 does nothing.
    connecting: bool,
}

impl Wire {
    fn new() -> Self {
        Self {
            to: [Vec::new(), Vec::new()],
            rx: [new_framer(), new_framer()],
            closed: [false, false],
            connecting: false,
        }
    }

    /// Whether end `end` takes part in I/O now.
    fn live(&self, end: usize) -> bool {
        let connecting = end == 0 && self.connecting;
        !self.closed[end] && !connecting
    }
}

/// Where a held dial is ([`Pair::hold_dial`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// No held dial.
    None,
    /// The dialer asked; the acceptor has not seen the connection.
    Requested,
    /// The acceptor has the connection; the dialer has not been told.
    Accepted,
}

/// A message seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub at: Instant,
    /// Sending peer (0 or 1).
    pub from: usize,
    /// The sender's direction for this connection.
    pub dir: Direction,
    pub msg: Msg,
}

/// Two peers wired back to back on one simulated clock.
pub struct Pair {
    pub now: Instant,
    pub peers: [Peer; 2],
    pub hooks: [TestHooks; 2],
    /// `wires[i]`: the connection peer `i` dialled.
    wires: [Option<Wire>; 2],
    /// A frozen peer does nothing: no timers, no reads, no writes.
    pub frozen: [bool; 2],
    /// Transport failures a frozen peer will learn about when thawed.
    pending_fail: Vec<(usize, Direction)>,
    /// Every message delivered, in order.
    pub log: Vec<Logged>,
    /// What each peer handed to its plugin.
    pub got: [Vec<Got>; 2],
    pub events: [Vec<Event>; 2],
    /// Inbound connections refused, per acceptor.
    pub rejected: [Vec<Rejected>; 2],
    /// Per-wire ordering: bytes written stay on their wire until
    /// [`Pair::deliver_next`] hands them over one message at a time
    /// (otherwise every [`Pair::step`] delivers both wires in lockstep).
    pub manual: bool,
    /// Hold peer `i`'s dials: the two ends of the TCP handshake happen when
    /// the test says ([`Pair::accept_dial`], [`Pair::connect_dial`]).
    pub hold_dial: [bool; 2],
    /// Peer `i`'s held dial.
    pub held: [Held; 2],
}

/// The end of wire `w` that belongs to `end` (0 dialer, 1 acceptor):
/// (peer index, its direction).
fn end_of(w: usize, end: usize) -> (usize, Direction) {
    if end == 0 { (w, OUT) } else { (1 - w, IN) }
}

impl Pair {
    pub fn new(a: SessionConfig, b: SessionConfig) -> Self {
        a.validate().expect("valid config a");
        b.validate().expect("valid config b");
        Self {
            now: Instant::ZERO,
            peers: [Peer::new(a), Peer::new(b)],
            hooks: [TestHooks::default(), TestHooks::default()],
            wires: [None, None],
            frozen: [false, false],
            pending_fail: Vec::new(),
            log: Vec::new(),
            got: [Vec::new(), Vec::new()],
            events: [Vec::new(), Vec::new()],
            rejected: [Vec::new(), Vec::new()],
            manual: false,
            hold_dial: [false, false],
            held: [Held::None, Held::None],
        }
    }

    /// Peer 0: AS 65001 id 1.1.1.1; peer 1: AS 65002 id 2.2.2.2.
    pub fn default_pair() -> Self {
        Self::new(
            config_for(LOCAL_AS, REMOTE_AS, LOCAL_ID),
            config_for(REMOTE_AS, LOCAL_AS, REMOTE_ID),
        )
    }

    pub fn start(&mut self, p: usize) {
        self.peers[p].start(self.now);
    }

    /// One round of I/O; whether anything happened.
    pub fn step(&mut self) -> bool {
        let now = self.now;
        let mut progress = false;
        // Thawed peers learn about transports that died meanwhile.
        let fails = std::mem::take(&mut self.pending_fail);
        for (p, dir) in fails {
            if self.frozen[p] {
                self.pending_fail.push((p, dir));
            } else {
                self.peers[p].connection_failed(now, dir);
                progress = true;
            }
        }
        // A held dial the dialer gave up (its FSM left Connect): the
        // adapter drops the socket; an acceptor that had it sees it fail.
        for i in 0..2 {
            if self.held[i] == Held::None || self.frozen[i] {
                continue;
            }
            if self.peers[i].link(OUT).is_some_and(|l| l.wants_close()) {
                self.peers[i].connection_closed(now, OUT);
                if self.held[i] == Held::Accepted
                    && let Some(w) = self.wires[i].as_mut()
                {
                    w.closed[0] = true;
                }
                self.held[i] = Held::None;
                progress = true;
            }
        }
        // Dials become accepts on the other side.
        for i in 0..2 {
            if self.frozen[i] {
                continue;
            }
            let Some(link) = self.peers[i].link(OUT) else {
                continue;
            };
            if !link.take_dial() {
                continue;
            }
            if self.hold_dial[i] {
                // A new attempt replaces a held one.
                if let Some(old) = self.wires[i].take()
                    && !old.closed[1]
                {
                    self.fail_later(1 - i, IN);
                }
                self.held[i] = Held::Requested;
                progress = true;
                continue;
            }
            progress = true;
            if let Some(old) = self.wires[i].take() {
                // The previous attempt is abandoned.
                if !old.closed[1] {
                    self.fail_later(1 - i, IN);
                }
            }
            if self.frozen[1 - i] {
                // Nobody answers: the dial hangs until ConnectRetry.
                continue;
            }
            let j = 1 - i;
            match self.peers[j].accept(now, &mut self.hooks[j]) {
                Ok(()) => {
                    self.wires[i] = Some(Wire::new());
                    self.peers[i].connected(now, &mut self.hooks[i]);
                }
                Err(r) => {
                    self.rejected[j].push(r);
                    self.peers[i].connection_failed(now, OUT);
                }
            }
        }
        // Bytes both ways, then closes.
        for w in 0..2 {
            let Some(mut wire) = self.wires[w].take() else {
                continue;
            };
            for end in 0..2 {
                let (p, dir) = end_of(w, end);
                if self.frozen[p] || !wire.live(end) {
                    continue;
                }
                if let Some(link) = self.peers[p].link(dir) {
                    let b = link.pending().to_vec();
                    if !b.is_empty() {
                        link.consume(b.len());
                        wire.to[1 - end].extend_from_slice(&b);
                        progress = true;
                    }
                }
            }
            for end in 0..2 {
                let (p, dir) = end_of(w, end);
                if self.manual || self.frozen[p] || !wire.live(end) || wire.to[end].is_empty() {
                    continue;
                }
                let bytes = std::mem::take(&mut wire.to[end]);
                progress = true;
                let (g, msgs) = deliver(
                    &mut self.peers[p],
                    &mut self.hooks[p],
                    &mut wire.rx[end],
                    now,
                    dir,
                    &bytes,
                );
                let (from, from_dir) = end_of(w, 1 - end);
                self.log.extend(msgs.into_iter().map(|msg| Logged {
                    at: now,
                    from,
                    dir: from_dir,
                    msg,
                }));
                self.got[p].extend(g);
            }
            for end in 0..2 {
                let (p, dir) = end_of(w, end);
                if self.frozen[p] || !wire.live(end) {
                    continue;
                }
                let wants = self.peers[p].link(dir).is_some_and(|l| l.wants_close());
                let pending = self.peers[p]
                    .link(dir)
                    .is_some_and(|l| !l.pending().is_empty());
                if wants && !pending {
                    wire.closed[end] = true;
                    self.peers[p].connection_closed(now, dir);
                    progress = true;
                }
            }
            if wire.closed.iter().any(|c| *c) {
                for end in 0..2 {
                    let (p, dir) = end_of(w, end);
                    if !wire.live(end) || !wire.to[end].is_empty() {
                        continue;
                    }
                    wire.closed[end] = true;
                    progress = true;
                    if self.frozen[p] {
                        self.pending_fail.push((p, dir));
                    } else {
                        self.peers[p].connection_failed(now, dir);
                    }
                }
            }
            if !wire.closed.iter().all(|c| *c) {
                self.wires[w] = Some(wire);
            }
        }
        for p in 0..2 {
            while let Some(e) = self.peers[p].poll_event() {
                self.events[p].push(e);
                progress = true;
            }
        }
        progress
    }

    fn fail_later(&mut self, p: usize, dir: Direction) {
        self.pending_fail.push((p, dir));
    }

    /// Peer `i`'s held dial reaches the other peer, which accepts it (or
    /// refuses it: the dial then fails). The dialer is not told yet.
    pub fn accept_dial(&mut self, i: usize) -> Result<(), Rejected> {
        assert_eq!(
            self.held[i],
            Held::Requested,
            "peer {i} has no dial to accept"
        );
        let j = 1 - i;
        match self.peers[j].accept(self.now, &mut self.hooks[j]) {
            Ok(()) => {
                let mut w = Wire::new();
                w.connecting = true;
                self.wires[i] = Some(w);
                self.held[i] = Held::Accepted;
                self.drive();
                Ok(())
            }
            Err(r) => {
                self.rejected[j].push(r);
                self.held[i] = Held::None;
                self.peers[i].connection_failed(self.now, OUT);
                self.drive();
                Err(r)
            }
        }
    }

    /// Peer `i` learns that its held dial, accepted by the other peer,
    /// completed (Event 16).
    pub fn connect_dial(&mut self, i: usize) {
        assert_eq!(
            self.held[i],
            Held::Accepted,
            "peer {i}'s dial was not accepted"
        );
        self.held[i] = Held::None;
        if let Some(w) = self.wires[i].as_mut() {
            w.connecting = false;
        }
        self.peers[i].connected(self.now, &mut self.hooks[i]);
        self.drive();
    }

    /// With [`Pair::manual`]: delivers the next whole message peer `from`
    /// wrote on its connection `dir`, then lets both peers write and close
    /// (no other delivery). Returns it, or `None` if nothing is in flight.
    pub fn deliver_next(&mut self, from: usize, dir: Direction) -> Option<Msg> {
        assert!(self.manual, "deliver_next needs manual delivery");
        // The wire and the receiving end.
        let (w, end) = if dir == OUT { (from, 1) } else { (1 - from, 0) };
        let now = self.now;
        let wire = self.wires[w].as_mut()?;
        let (p, pdir) = end_of(w, end);
        let q = &wire.to[end];
        if !wire.live(end) || q.len() < 19 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([q[16], q[17]]));
        let bytes: Vec<u8> = wire.to[end].drain(..len.clamp(19, q.len())).collect();
        let (g, msgs) = deliver(
            &mut self.peers[p],
            &mut self.hooks[p],
            &mut wire.rx[end],
            now,
            pdir,
            &bytes,
        );
        self.log.extend(msgs.iter().cloned().map(|msg| Logged {
            at: now,
            from,
            dir,
            msg,
        }));
        self.got[p].extend(g);
        self.drive();
        msgs.into_iter().next()
    }

    /// With [`Pair::manual`]: the messages in flight from peer `from` on
    /// its connection `dir`, not delivered.
    pub fn in_flight(&self, from: usize, dir: Direction) -> Vec<Msg> {
        let (w, end) = if dir == OUT { (from, 1) } else { (1 - from, 0) };
        match &self.wires[w] {
            Some(wire) => decode_all(&mut new_framer(), &wire.to[end]),
            None => Vec::new(),
        }
    }

    /// Steps until nothing happens.
    pub fn drive(&mut self) {
        let mut n = 0;
        while self.step() {
            n += 1;
            assert!(n < 10_000, "drive does not settle");
        }
    }

    /// The earliest deadline of the peers that are not frozen.
    pub fn next_deadline(&self) -> Option<Instant> {
        (0..2)
            .filter(|p| !self.frozen[*p])
            .filter_map(|p| self.peers[p].poll_timeout())
            .min()
    }

    /// Runs I/O and timers until `until`.
    pub fn run_until(&mut self, until: Instant) {
        let mut guard = 0;
        loop {
            self.drive();
            match self.next_deadline() {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    for p in 0..2 {
                        if self.frozen[p] {
                            continue;
                        }
                        if self.peers[p].poll_timeout().is_some_and(|t| t <= self.now) {
                            self.peers[p].handle_timeout(self.now);
                            if let Some(next) = self.peers[p].poll_timeout() {
                                assert!(
                                    next > self.now,
                                    "peer {p}: poll_timeout {next:?} not after {:?}",
                                    self.now
                                );
                            }
                        }
                    }
                }
                _ => {
                    self.now = self.now.max(until);
                    self.drive();
                    return;
                }
            }
            guard += 1;
            assert!(guard < 1_000_000, "run_until does not advance");
        }
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Runs until `f` holds (checked after each I/O round), at most `limit`.
    pub fn run_until_cond(&mut self, limit: Duration, mut f: impl FnMut(&Self) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.drive();
            if f(self) {
                return true;
            }
            match self.next_deadline() {
                Some(t) if t <= end => self.run_until(t),
                _ => {
                    self.run_until(end);
                    return f(self);
                }
            }
        }
    }

    /// Sends an UPDATE from peer `p` on its Established connection, after
    /// what the session queued (an adapter writes them in that order).
    pub fn send_update(
        &mut self,
        p: usize,
        msg: &[u8],
    ) -> Result<Direction, corebgp_core::session::SendError> {
        let dir = self.peers[p].send_update(self.now, msg)?;
        let w = if dir == OUT { p } else { 1 - p };
        let end = if dir == OUT { 0 } else { 1 };
        let wire = self.wires[w].as_mut().expect("a wire for the session");
        if let Some(link) = self.peers[p].link(dir) {
            let b = link.pending().to_vec();
            link.consume(b.len());
            wire.to[1 - end].extend_from_slice(&b);
        }
        wire.to[1 - end].extend_from_slice(msg);
        Ok(dir)
    }

    pub fn established(&self) -> [Option<Direction>; 2] {
        [self.peers[0].established(), self.peers[1].established()]
    }

    /// Messages peer `from` sent, optionally filtered.
    pub fn sent_by(&self, from: usize) -> impl Iterator<Item = &Logged> {
        self.log.iter().filter(move |l| l.from == from)
    }

    /// NOTIFICATIONs peer `from` sent as (code, subcode).
    pub fn notifications_from(&self, from: usize) -> Vec<(u8, u8)> {
        self.sent_by(from)
            .filter_map(|l| match &l.msg {
                Msg::Notification { code, subcode, .. } => Some((*code, *subcode)),
                _ => None,
            })
            .collect()
    }
}
