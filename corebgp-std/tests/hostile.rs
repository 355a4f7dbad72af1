//! Hostile input over real TCP (issue 15, part 3): a raw client drives a
//! corebgp-std [`Server`] through malformed and adversarial messages and
//! checks the exact bytes it answers with (RFC 4271 §6, RFC 6608, RFC 7313,
//! RFC 7606 through a plugin, RFC 8654, RFC 9003), that the server goes on
//! serving, and that a healthy peer on the same server never flaps.
//!
//! Each test has its own server on loopback 127.77.N.1 with one listener, a
//! healthy peer (another corebgp-std server on 127.77.N.2 that dials it and
//! must stay Established throughout), and passive hostile peers on
//! 127.77.N.10 and up, one per configuration ([`Host`]). The client
//! connects from the hostile peer's address, so every case is a fresh
//! connection to a server that is reused across a family of cases.
//!
//! Unless a case is about timers, the client proposes hold time 0, so the
//! server sends nothing but its answers and every byte can be asserted.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use corebgp_core::plugin::Plugin;
use corebgp_core::session::{
    CapabilitySet, DefaultHooks, DownReason, Event, Negotiated, OpenHooks, PeerConfig, StateKind,
};
use corebgp_core::update::{Action, Update, UpdateConfig};
use corebgp_core::wire::{
    AfiSafi, KEEPALIVE, Notification, NotificationCode, Role, RouteRefresh, UpdateSections,
};
use corebgp_std::{PeerOptions, Server, UpdateQueue, UpdateWriter, update_queue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// How long any one thing may take on a busy machine.
const T: Duration = Duration::from_secs(20);
/// The server's AS.
const S_AS: u32 = 65001;
/// The healthy peer's AS.
const G_AS: u32 = 65002;

// ---------------------------------------------------------------------------
// The plugin: records what the server's session tells it.

/// What the plugin made of one UPDATE (decoded with RFC 7606 verdicts).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Verdict {
    /// The most severe approach, `None` for a clean UPDATE.
    action: Option<Action>,
    /// Code, subcode and data of the NOTIFICATION that goes with it.
    error: Option<(u8, u8, Vec<u8>)>,
    announced: usize,
    /// Type codes of the attributes left out.
    discarded: Vec<u8>,
}

#[derive(Default, Debug)]
struct Log {
    established: usize,
    hold_times: Vec<u16>,
    cfg: UpdateConfig,
    updates: Vec<Verdict>,
    refreshes: Vec<(u16, u8, u8)>,
    /// NOTIFICATIONs from the peer: code, subcode, data.
    received: Vec<(u8, u8, Vec<u8>)>,
    /// NOTIFICATIONs the session sent: code, subcode.
    sent: Vec<(u8, u8)>,
    closed: Vec<DownReason>,
    damped: usize,
}

/// The plugin of every peer here: DefaultHooks' capabilities (IPv4 and
/// IPv6 unicast, Route Refresh); UPDATEs decoded with
/// `Update::from_sections`, the session reset only where RFC 7606 says so.
#[derive(Clone, Default)]
struct Recorder {
    log: Arc<Mutex<Log>>,
    queue: Option<Arc<UpdateQueue>>,
}

impl Recorder {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }
}

fn triple(n: &Notification<'_>) -> (u8, u8, Vec<u8>) {
    (n.code.code(), n.code.subcode(), n.data.as_bytes().to_vec())
}

impl OpenHooks for Recorder {
    fn capabilities(&mut self, peer: &PeerConfig, caps: &mut CapabilitySet) {
        DefaultHooks.capabilities(peer, caps)
    }
}

impl Plugin for Recorder {
    async fn on_established(&mut self, peer: &PeerConfig, n: &Negotiated) {
        let mut l = self.log();
        l.established += 1;
        l.hold_times.push(n.hold_time);
        l.cfg = n.update_config(peer);
    }

    async fn on_update<'m>(
        &mut self,
        _: &PeerConfig,
        u: UpdateSections<'m>,
    ) -> Result<(), Notification<'m>> {
        let cfg = self.log().cfg;
        let (verdict, reset) = match Update::from_sections(u, &cfg) {
            Err(e) => (
                Verdict {
                    action: Some(e.action),
                    error: Some(triple(&e.notification)),
                    ..Verdict::default()
                },
                Some(e.notification),
            ),
            Ok(u) => {
                let e = u
                    .afi_safi_disable()
                    .next()
                    .or(u.treat_as_withdraw())
                    .or(u.attribute_discard());
                let v = Verdict {
                    action: u.action(),
                    error: e.map(|e| triple(&e.notification)),
                    announced: u.announced_count(),
                    discarded: u.discarded().iter().collect(),
                };
                (v, None)
            }
        };
        self.log().updates.push(verdict);
        match reset {
            Some(n) => Err(n),
            None => Ok(()),
        }
    }

    fn on_route_refresh(&mut self, _: &PeerConfig, rr: &RouteRefresh<'_>) {
        self.log().refreshes.push((
            rr.family.afi.to_raw(),
            rr.family.safi.to_raw(),
            rr.subtype.to_raw(),
        ));
    }

    fn on_notification(&mut self, _: &PeerConfig, n: &Notification<'_>) {
        self.log().received.push(triple(n));
    }

    fn on_event(&mut self, _: &PeerConfig, e: &Event) {
        match e {
            Event::NotificationSent { code, .. } => {
                self.log().sent.push((code.code(), code.subcode()))
            }
            Event::Damped { .. } => self.log().damped += 1,
            _ => {}
        }
    }

    fn on_close(&mut self, _: &PeerConfig, reason: DownReason) {
        self.log().closed.push(reason);
    }
}

// ---------------------------------------------------------------------------
// Messages, built by hand as bytes.

/// A message with any length field.
fn raw(len: u16, ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&len.to_be_bytes());
    m.push(ty);
    m.extend_from_slice(body);
    m
}

/// A message whose length field is right.
fn msg(ty: u8, body: &[u8]) -> Vec<u8> {
    raw(u16::try_from(19 + body.len()).unwrap(), ty, body)
}

fn notification(code: u8, subcode: u8, data: &[u8]) -> Vec<u8> {
    let mut b = vec![code, subcode];
    b.extend_from_slice(data);
    msg(3, &b)
}

fn open_msg(version: u8, my_as: u16, hold: u16, id: Ipv4Addr, params: &[u8]) -> Vec<u8> {
    let mut b = vec![version];
    b.extend_from_slice(&my_as.to_be_bytes());
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&id.octets());
    b.push(u8::try_from(params.len()).unwrap());
    b.extend_from_slice(params);
    msg(1, &b)
}

/// One capabilities optional parameter (RFC 5492 §4).
fn cap_param(caps: &[u8]) -> Vec<u8> {
    let mut p = vec![2, u8::try_from(caps.len()).unwrap()];
    p.extend_from_slice(caps);
    p
}

/// The 4-octet AS capability (RFC 6793).
fn as4(asn: u32) -> Vec<u8> {
    let mut c = vec![65, 4];
    c.extend_from_slice(&asn.to_be_bytes());
    c
}

const MP_V4: [u8; 6] = [1, 4, 0, 1, 0, 1];
const MP_V6: [u8; 6] = [1, 4, 0, 2, 0, 1];
const ROUTE_REFRESH: [u8; 2] = [2, 0];
const EXTENDED_MESSAGE: [u8; 2] = [6, 0];

fn route_refresh(afi: u16, subtype: u8, safi: u8) -> Vec<u8> {
    let [a, b] = afi.to_be_bytes();
    msg(5, &[a, b, subtype, safi])
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const ORIGIN: &str = "40010100";
const NEXT_HOP: &str = "400304 c0000201";
const V6_REACH: &str = "900e001c 0002 01 10 20010db8000000000000000000000001 00 30 20010db80001";

fn as_path(asn: u32) -> String {
    format!("400206 0201 {asn:08x}")
}

/// An UPDATE without withdrawn routes: `attrs` (hex, in order), then `nlri`.
fn update(attrs: &[&str], nlri: &[u8]) -> Vec<u8> {
    let a = hex(&attrs.join(" "));
    let mut b = vec![0, 0];
    b.extend_from_slice(&u16::try_from(a.len()).unwrap().to_be_bytes());
    b.extend_from_slice(&a);
    b.extend_from_slice(nlri);
    msg(2, &b)
}

/// The i-th of a set of distinct /24s under 10/8.
fn nlri24(i: usize) -> [u8; 4] {
    [24, 10, (i >> 8) as u8, i as u8]
}

/// A valid UPDATE of exactly `len` bytes announcing as many /24s as fit
/// (padded with an unknown optional transitive attribute); with the count.
fn update_of_len(len: usize, asn: u32) -> (Vec<u8>, usize) {
    let path = as_path(asn);
    let rest = len - 19 - 4 - 20;
    let (pad, k) = if rest.is_multiple_of(4) {
        (String::new(), rest / 4)
    } else {
        let p = (rest - 3) % 4;
        (format!("c063{p:02x}{}", "ab".repeat(p)), (rest - 3 - p) / 4)
    };
    let nlri: Vec<u8> = (0..k).flat_map(nlri24).collect();
    let u = update(&[ORIGIN, &path, NEXT_HOP, &pad], &nlri);
    assert_eq!(u.len(), len);
    (u, k)
}

fn clean(announced: usize) -> Verdict {
    Verdict {
        announced,
        ..Verdict::default()
    }
}

fn verdict(action: Action, error: (u8, u8, &str), announced: usize, discarded: &[u8]) -> Verdict {
    Verdict {
        action: Some(action),
        error: Some((error.0, error.1, hex(error.2))),
        announced,
        discarded: discarded.to_vec(),
    }
}

// ---------------------------------------------------------------------------
// The hostile peers.

/// A hostile peer of the server: its address is 127.77.N.(the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Host {
    /// eBGP, AS 65010, the server proposes hold time 90.
    Main = 10,
    /// iBGP (AS 65001 on both sides).
    Ibgp = 11,
    /// The server advertises RFC 8654 Extended Messages.
    Ext = 12,
    /// The server proposes hold time 3.
    Hold = 13,
    /// The server is a Provider (RFC 9234) in strict mode.
    Role = 14,
    /// Peer oscillation damping on (off for the others, so that every case
    /// can reconnect at once).
    Damp = 15,
}

const HOSTS: [Host; 6] = [
    Host::Main,
    Host::Ibgp,
    Host::Ext,
    Host::Hold,
    Host::Role,
    Host::Damp,
];

impl Host {
    fn asn(self) -> u32 {
        match self {
            Host::Ibgp => S_AS,
            h => 65000 + h as u32,
        }
    }

    /// The client's BGP Identifier.
    fn id(self) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, self as u8)
    }

    fn server_hold(self) -> u16 {
        match self {
            Host::Hold => 3,
            _ => 90,
        }
    }

    fn options(self) -> PeerOptions {
        let o = PeerOptions::new()
            .passive(true)
            .hold_time(self.server_hold())
            .damping(self == Host::Damp);
        match self {
            Host::Ext => o.extended_messages(true),
            Host::Role => o.role(Some(Role::Provider), true),
            _ => o,
        }
    }

    /// What a well-behaved client advertises to this peer's server.
    fn client_caps(self) -> Vec<u8> {
        let mut c = as4(self.asn());
        c.extend_from_slice(&MP_V4);
        c.extend_from_slice(&MP_V6);
        c.extend_from_slice(&ROUTE_REFRESH);
        match self {
            Host::Ext => c.extend_from_slice(&EXTENDED_MESSAGE),
            // RFC 9234: Customer (3), what a Provider expects.
            Host::Role => c.extend_from_slice(&[9, 1, 3]),
            _ => {}
        }
        c
    }
}

/// A well-formed OPEN from the client of `h` proposing `hold`.
fn good_open(h: Host, hold: u16) -> Vec<u8> {
    open_msg(
        4,
        h.asn() as u16,
        hold,
        h.id(),
        &cap_param(&h.client_caps()),
    )
}

/// The OPEN the server of test `n` sends `h`: the session's own
/// capabilities (4-octet AS, then Extended Message or Role when
/// configured), then the plugin's.
fn server_open(n: u8, h: Host) -> Vec<u8> {
    let mut caps = as4(S_AS);
    match h {
        Host::Ext => caps.extend_from_slice(&EXTENDED_MESSAGE),
        Host::Role => caps.extend_from_slice(&[9, 1, Role::Provider.to_raw()]),
        _ => {}
    }
    caps.extend_from_slice(&MP_V4);
    caps.extend_from_slice(&MP_V6);
    caps.extend_from_slice(&ROUTE_REFRESH);
    open_msg(
        4,
        S_AS as u16,
        h.server_hold(),
        Ipv4Addr::new(127, 77, n, 1),
        &cap_param(&caps),
    )
}

// ---------------------------------------------------------------------------
// The raw client.

#[derive(Debug, PartialEq, Eq)]
enum Got {
    /// One whole message, header included.
    Msg(Vec<u8>),
    /// The server closed the connection (between messages).
    Closed,
}

fn is_keepalive(g: &Got) -> bool {
    matches!(g, Got::Msg(m) if m[..] == KEEPALIVE)
}

struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(from: Ipv4Addr, to: SocketAddr) -> Self {
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
        let s = tokio::time::timeout(T, sock.connect(to))
            .await
            .expect("connected in time")
            .expect("connected");
        s.set_nodelay(true).unwrap();
        Self { s, buf: Vec::new() }
    }

    async fn send(&mut self, b: &[u8]) {
        tokio::time::timeout(T, self.s.write_all(b))
            .await
            .expect("written in time")
            .expect("written");
    }

    /// A write the server may cut short: it stops reading at a bad header.
    async fn send_lossy(&mut self, b: &[u8]) {
        let _ = tokio::time::timeout(T, self.s.write_all(b)).await;
    }

    fn take(&mut self) -> Option<Vec<u8>> {
        let head = self.buf.get(..19)?;
        assert_eq!(head[..16], [0xff; 16], "the server's marker");
        let len = usize::from(u16::from_be_bytes([head[16], head[17]]));
        assert!(len >= 19, "the server's length field {len}");
        (self.buf.len() >= len).then(|| self.buf.drain(..len).collect())
    }

    /// The next message or the end of the connection, `None` if nothing
    /// arrived `within`.
    async fn next(&mut self, within: Duration) -> Option<Got> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(m) = self.take() {
                return Some(Got::Msg(m));
            }
            let mut tmp = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.s.read(&mut tmp)).await {
                Err(_) => return None,
                Ok(Ok(0) | Err(_)) => {
                    assert!(
                        self.buf.is_empty(),
                        "closed in the middle of a message: {:02x?}",
                        self.buf
                    );
                    return Some(Got::Closed);
                }
                Ok(Ok(n)) => self.buf.extend_from_slice(&tmp[..n]),
            }
        }
    }

    async fn recv(&mut self) -> Got {
        self.next(T).await.expect("an answer in time")
    }
}

// ---------------------------------------------------------------------------
// The lab: the server under test, its healthy peer, its hostile peers.

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < T, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[derive(Debug, Clone, Copy)]
enum Stage {
    /// The server's OPEN is in; ours is not sent.
    OpenSent,
    /// OPENs exchanged, the server's KEEPALIVE is in; ours is not sent.
    OpenConfirm,
    Established,
}

struct Lab {
    n: u8,
    s: Server,
    g: Server,
    listener: SocketAddr,
    /// The server's plugin for the healthy peer.
    healthy: Recorder,
    /// The healthy peer's plugin (its own server's).
    g_side: Recorder,
    hostile: Vec<Recorder>,
    /// NOTIFICATIONs the server was seen to send each hostile peer.
    sent: Vec<usize>,
    probes: usize,
    cases: usize,
}

impl Lab {
    async fn new(n: u8) -> Self {
        let ip = |h: u8| Ipv4Addr::new(127, 77, n, h);
        let l = TcpListener::bind((ip(1), 0)).await.unwrap();
        let listener = l.local_addr().unwrap();
        let s = Server::new(ip(1)).unwrap();
        let g = Server::new(ip(2)).unwrap();
        let healthy = Recorder::default();
        let g_side = Recorder {
            queue: Some(update_queue()),
            ..Recorder::default()
        };
        let fast = || {
            PeerOptions::new()
                .hold_time(9)
                .idle_hold_time(Duration::from_millis(200))
                .connect_retry_time(Duration::from_secs(1))
        };
        let cfg = |remote: u8, local_as, remote_as| PeerConfig {
            remote_address: IpAddr::V4(ip(remote)),
            local_as,
            remote_as,
        };
        s.add_peer(cfg(2, S_AS, G_AS), healthy.clone(), fast().passive(true))
            .unwrap();
        g.add_peer(
            cfg(1, G_AS, S_AS),
            g_side.clone(),
            fast()
                .port(listener.port())
                .local_address(IpAddr::V4(ip(2)))
                .update_queue(g_side.queue.clone().unwrap()),
        )
        .unwrap();
        let mut hostile = Vec::new();
        for h in HOSTS {
            let r = Recorder::default();
            s.add_peer(cfg(h as u8, S_AS, h.asn()), r.clone(), h.options())
                .unwrap();
            hostile.push(r);
        }
        let (ss, gs) = (s.clone(), g.clone());
        tokio::spawn(async move { ss.serve(vec![l]).await });
        tokio::spawn(async move { gs.serve(vec![]).await });
        let lab = Self {
            n,
            s,
            g,
            listener,
            healthy,
            g_side,
            hostile,
            sent: vec![0; HOSTS.len()],
            probes: 0,
            cases: 0,
        };
        wait_for("the healthy session", || {
            lab.healthy.log().established == 1 && lab.g_side.log().established == 1
        })
        .await;
        lab
    }

    fn ip(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, 77, self.n, host)
    }

    fn rec(&self, h: Host) -> &Recorder {
        &self.hostile[h as usize - Host::Main as usize]
    }

    fn state(&self, h: Host) -> StateKind {
        self.s.get_peer(IpAddr::V4(self.ip(h as u8))).unwrap().state
    }

    async fn wait_state(&self, h: Host, want: StateKind) {
        wait_for(&format!("{h:?} to be {want:?}"), || self.state(h) == want).await
    }

    async fn connect(&self, h: Host) -> Client {
        Client::connect(self.ip(h as u8), self.listener).await
    }

    /// Connected; the server's OPEN (exactly as expected) is in.
    async fn open_sent(&self, h: Host) -> Client {
        let mut c = self.connect(h).await;
        assert_eq!(c.recv().await, Got::Msg(server_open(self.n, h)), "{h:?}");
        c
    }

    /// And our `open` answered with a KEEPALIVE.
    async fn open_confirm(&self, h: Host, open: &[u8]) -> Client {
        let mut c = self.open_sent(h).await;
        c.send(open).await;
        assert_eq!(c.recv().await, Got::Msg(KEEPALIVE.to_vec()), "{h:?}");
        c
    }

    /// And our KEEPALIVE sent: the plugin heard of the session.
    async fn established(&self, h: Host, open: &[u8]) -> Client {
        let before = self.rec(h).log().established;
        let mut c = self.open_confirm(h, open).await;
        c.send(&KEEPALIVE).await;
        wait_for(&format!("{h:?} to be up"), || {
            self.rec(h).log().established == before + 1
        })
        .await;
        assert_eq!(self.state(h), StateKind::Established);
        c
    }

    async fn reach(&self, h: Host, stage: Stage) -> Client {
        match stage {
            Stage::OpenSent => self.open_sent(h).await,
            Stage::OpenConfirm => self.open_confirm(h, &good_open(h, 0)).await,
            Stage::Established => self.established(h, &good_open(h, 0)).await,
        }
    }

    /// The session's plugin heard that it sent (code, subcode), once more.
    async fn sent_once_more(&mut self, h: Host, code: u8, subcode: u8) {
        let i = h as usize - Host::Main as usize;
        self.sent[i] += 1;
        let want = self.sent[i];
        wait_for(&format!("{h:?}'s NOTIFICATION event"), || {
            self.rec(h).log().sent.len() >= want
        })
        .await;
        let l = self.rec(h).log();
        assert_eq!(l.sent.len(), want, "{l:?}");
        assert_eq!(l.sent.last(), Some(&(code, subcode)));
    }

    /// The next bytes on `c` are exactly this NOTIFICATION, then the server
    /// closes; the peer is ready for the next connection.
    async fn refused(&mut self, what: &str, h: Host, c: &mut Client, want: (u8, u8, &[u8])) {
        let (code, subcode, data) = want;
        assert_eq!(
            c.recv().await,
            Got::Msg(notification(code, subcode, data)),
            "{what}"
        );
        assert_eq!(c.recv().await, Got::Closed, "{what}: closed after it");
        self.sent_once_more(h, code, subcode).await;
        self.wait_state(h, StateKind::Active).await;
        self.cases += 1;
    }

    /// `bytes` at `stage` are answered with `want` and the connection closes.
    async fn case(
        &mut self,
        what: &str,
        h: Host,
        stage: Stage,
        bytes: &[u8],
        want: (u8, u8, &[u8]),
    ) {
        let mut c = self.reach(h, stage).await;
        c.send_lossy(bytes).await;
        self.refused(what, h, &mut c, want).await;
    }

    /// `n` (a NOTIFICATION) ends the connection without a word back; the
    /// plugin hears it; the peer takes the next connection.
    async fn silent_close(&mut self, what: &str, h: Host, c: &mut Client, n: &[u8]) {
        let before = self.rec(h).log().received.len();
        c.send(n).await;
        assert_eq!(c.recv().await, Got::Closed, "{what}: closed without a word");
        wait_for(&format!("{what}: the plugin to hear it"), || {
            self.rec(h).log().received.len() == before + 1
        })
        .await;
        let heard = self.rec(h).log().received.last().cloned().unwrap();
        let heard = msg(3, &[&[heard.0, heard.1][..], &heard.2].concat());
        assert_eq!(heard, n, "{what}: the plugin heard it whole");
        self.wait_state(h, StateKind::Active).await;
        self.cases += 1;
    }

    /// An UPDATE (or a few) on an Established connection: the plugin's
    /// verdicts, and the session stays up.
    async fn verdicts(
        &mut self,
        what: &str,
        h: Host,
        c: &mut Client,
        bytes: &[u8],
        want: &[Verdict],
    ) {
        let before = self.rec(h).log().updates.len();
        c.send(bytes).await;
        wait_for(&format!("{what}: verdicts"), || {
            self.rec(h).log().updates.len() >= before + want.len()
        })
        .await;
        assert_eq!(self.rec(h).log().updates[before..], *want, "{what}");
        assert_eq!(self.state(h), StateKind::Established, "{what}");
        self.cases += 1;
    }

    /// The healthy peer has been Established since the start on both sides,
    /// and the server still serves it: an UPDATE from it arrives.
    async fn healthy_check(&mut self) {
        let (s_ip, g_ip) = (IpAddr::V4(self.ip(1)), IpAddr::V4(self.ip(2)));
        assert_eq!(self.s.get_peer(g_ip).unwrap().state, StateKind::Established);
        assert_eq!(self.g.get_peer(s_ip).unwrap().state, StateKind::Established);
        for (who, r) in [("server", &self.healthy), ("healthy peer", &self.g_side)] {
            let l = r.log();
            assert_eq!(l.established, 1, "{who}: up once, never flapped: {l:?}");
            assert!(
                l.closed.is_empty() && l.sent.is_empty() && l.received.is_empty(),
                "{who}: no close, no NOTIFICATION: {l:?}"
            );
        }
        self.probes += 1;
        let probes = self.probes;
        let w = UpdateWriter::new(self.g_side.queue.clone().unwrap()).expect("still Established");
        let u = update(
            &[ORIGIN, &as_path(G_AS), NEXT_HOP],
            &[24, 10, 99, probes as u8],
        );
        tokio::time::timeout(T, w.send(&u))
            .await
            .expect("queued in time")
            .expect("queued");
        wait_for("the healthy peer's UPDATE at the server", || {
            self.healthy.log().updates.len() == probes
        })
        .await;
        assert_eq!(self.healthy.log().updates.last(), Some(&clean(1)));
    }

    /// Final checks: the healthy peer, every hostile peer back to waiting
    /// with exactly the NOTIFICATIONs the cases saw; then both servers close.
    async fn finish(mut self, name: &str) {
        self.healthy_check().await;
        for (i, h) in HOSTS.into_iter().enumerate() {
            self.wait_state(h, StateKind::Active).await;
            let l = self.rec(h).log();
            assert_eq!(
                l.sent.len(),
                self.sent[i],
                "{h:?}: no other NOTIFICATION: {l:?}"
            );
        }
        assert_eq!(
            self.s.list_peers().len(),
            1 + HOSTS.len(),
            "every peer is still there"
        );
        eprintln!("{name}: {} cases", self.cases);
        self.s.close().await;
        self.g.close().await;
    }
}

// ---------------------------------------------------------------------------
// The cases.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_errors_are_1_x_with_the_bad_field_rfc4271_6_1() {
    use Host::*;
    use Stage::*;
    let mut lab = Lab::new(1).await;
    let mut bad = KEEPALIVE.to_vec();
    bad[0] = 0xfe;
    lab.case("marker, first byte", Main, OpenSent, &bad, (1, 1, &[]))
        .await;
    let mut bad = KEEPALIVE.to_vec();
    bad[15] = 0;
    lab.case("marker, last byte", Main, Established, &bad, (1, 1, &[]))
        .await;
    let mut zeros = [0u8; 19];
    zeros[17] = 19;
    zeros[18] = 4;
    lab.case("marker of zeros", Main, OpenConfirm, &zeros, (1, 1, &[]))
        .await;

    // Length out of range overall (data: the length field).
    lab.case("length 0", Main, OpenSent, &raw(0, 4, &[]), (1, 2, &[0, 0]))
        .await;
    lab.case(
        "length 18",
        Main,
        Established,
        &raw(18, 4, &[]),
        (1, 2, &[0, 18]),
    )
    .await;
    let body = [0u8; 64];
    lab.case(
        "UPDATE of 4097 bytes without Extended Messages",
        Main,
        Established,
        &raw(4097, 2, &body),
        (1, 2, &[0x10, 0x01]),
    )
    .await;
    lab.case(
        "length 65535",
        Main,
        OpenSent,
        &raw(65535, 2, &body),
        (1, 2, &[0xff, 0xff]),
    )
    .await;

    // Length wrong for the type.
    lab.case(
        "KEEPALIVE of 20",
        Main,
        Established,
        &msg(4, &[0]),
        (1, 2, &[0, 20]),
    )
    .await;
    lab.case(
        "KEEPALIVE of 4096",
        Main,
        Established,
        &raw(4096, 4, &body),
        (1, 2, &[0x10, 0]),
    )
    .await;
    let open = good_open(Main, 0);
    lab.case(
        "OPEN of 28",
        Main,
        OpenSent,
        &msg(1, &open[19..28]),
        (1, 2, &[0, 28]),
    )
    .await;
    lab.case("OPEN of 19", Main, OpenSent, &msg(1, &[]), (1, 2, &[0, 19]))
        .await;
    lab.case(
        "UPDATE of 22",
        Main,
        Established,
        &msg(2, &[0, 0, 0]),
        (1, 2, &[0, 22]),
    )
    .await;
    lab.case(
        "UPDATE of 19",
        Main,
        OpenSent,
        &msg(2, &[]),
        (1, 2, &[0, 19]),
    )
    .await;
    lab.case(
        "NOTIFICATION of 20",
        Main,
        Established,
        &msg(3, &[6]),
        (1, 2, &[0, 20]),
    )
    .await;
    lab.case(
        "NOTIFICATION of 19",
        Main,
        OpenSent,
        &msg(3, &[]),
        (1, 2, &[0, 19]),
    )
    .await;
    lab.case(
        "ROUTE-REFRESH of 22",
        Main,
        Established,
        &msg(5, &[0, 1, 0]),
        (1, 2, &[0, 22]),
    )
    .await;

    // Unknown types (data: the type byte).
    lab.case("type 0", Main, OpenSent, &raw(19, 0, &[]), (1, 3, &[0]))
        .await;
    lab.case("type 6", Main, Established, &raw(19, 6, &[]), (1, 3, &[6]))
        .await;
    lab.case(
        "type 255",
        Main,
        OpenConfirm,
        &raw(19, 255, &[]),
        (1, 3, &[255]),
    )
    .await;
    lab.case(
        "type 128 with a body",
        Main,
        Established,
        &raw(25, 128, &[1; 6]),
        (1, 3, &[128]),
    )
    .await;
    let mut two = KEEPALIVE.to_vec();
    two.extend_from_slice(&raw(19, 7, &[]));
    lab.case(
        "a KEEPALIVE then type 7 in one write",
        Main,
        Established,
        &two,
        (1, 3, &[7]),
    )
    .await;
    // A header dripped a byte at a time is framed all the same.
    let mut c = lab.established(Main, &good_open(Main, 0)).await;
    for b in raw(19, 9, &[]) {
        c.send(&[b]).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    lab.refused("type 9, byte by byte", Main, &mut c, (1, 3, &[9]))
        .await;

    // RFC 8654 §4: Extended Messages never apply to OPEN and KEEPALIVE.
    lab.case(
        "OPEN of 4097 with Extended Messages",
        Ext,
        Established,
        &raw(4097, 1, &body),
        (1, 2, &[0x10, 0x01]),
    )
    .await;
    lab.case(
        "KEEPALIVE of 4097 with Extended Messages",
        Ext,
        Established,
        &raw(4097, 4, &body),
        (1, 2, &[0x10, 0x01]),
    )
    .await;
    lab.finish("header").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_errors_are_2_x_with_the_rfc_data_rfc4271_6_2() {
    use Host::*;
    let mut lab = Lab::new(2).await;
    let caps = cap_param(&Main.client_caps());
    let open = |version, my_as, id, params: &[u8]| open_msg(version, my_as, 0, id, params);
    let s = Stage::OpenSent;

    // RFC 4271 §6.2: the data is the version we support, 4, as 2 bytes.
    for v in [3, 5, 255] {
        let o = open(v, 65010, Main.id(), &caps);
        lab.case(&format!("version {v}"), Main, s, &o, (2, 1, &[0, 4]))
            .await;
    }

    // Bad peer AS.
    let mut wrong = as4(65099);
    wrong.extend_from_slice(&MP_V4);
    lab.case(
        "another AS",
        Main,
        s,
        &open(4, 65099, Main.id(), &cap_param(&wrong)),
        (2, 2, &[]),
    )
    .await;
    lab.case(
        "My AS right, 4-octet AS capability wrong (RFC 6793 §4.1)",
        Main,
        s,
        &open(4, 65010, Main.id(), &cap_param(&wrong)),
        (2, 2, &[]),
    )
    .await;
    let mut zero = as4(0);
    zero.extend_from_slice(&MP_V4);
    lab.case(
        "AS 0 (RFC 7607)",
        Main,
        s,
        &open(4, 0, Main.id(), &cap_param(&zero)),
        (2, 2, &[]),
    )
    .await;
    lab.case(
        "AS_TRANS without the 4-octet AS capability",
        Main,
        s,
        &open(4, 23456, Main.id(), &[]),
        (2, 2, &[]),
    )
    .await;

    // Bad BGP Identifier (RFC 6286 §2.2).
    lab.case(
        "identifier 0.0.0.0",
        Main,
        s,
        &open(4, 65010, Ipv4Addr::UNSPECIFIED, &caps),
        (2, 3, &[]),
    )
    .await;
    let ours = lab.ip(1);
    lab.case(
        "our identifier from an internal peer",
        Ibgp,
        s,
        &open(4, S_AS as u16, ours, &cap_param(&Ibgp.client_caps())),
        (2, 3, &[]),
    )
    .await;
    // ... but from an external peer it is fine, as is a multicast-looking
    // one (CoreBGP refuses those).
    for id in [ours, Ipv4Addr::new(224, 0, 0, 1)] {
        let mut c = lab.open_confirm(Main, &open(4, 65010, id, &caps)).await;
        lab.silent_close(
            &format!("identifier {id} accepted"),
            Main,
            &mut c,
            &notification(6, 2, &[]),
        )
        .await;
    }

    // Unsupported optional parameters (no data defined).
    lab.case(
        "optional parameter 1 (authentication, deprecated)",
        Main,
        s,
        &open(4, 65010, Main.id(), &[1, 1, 0]),
        (2, 4, &[]),
    )
    .await;
    lab.case(
        "optional parameter 3 after the capabilities",
        Main,
        s,
        &open(4, 65010, Main.id(), &[&caps[..], &[3, 0]].concat()),
        (2, 4, &[]),
    )
    .await;

    // The 4-octet AS capability is required (RFC 5492 §5: the data is the
    // missing capability, with the AS we expect).
    let missing = as4(65010);
    lab.case(
        "no optional parameters at all",
        Main,
        s,
        &open(4, 65010, Main.id(), &[]),
        (2, 7, &missing),
    )
    .await;
    lab.case(
        "capabilities without the 4-octet AS one",
        Main,
        s,
        &open(
            4,
            65010,
            Main.id(),
            &cap_param(&[&MP_V4[..], &ROUTE_REFRESH].concat()),
        ),
        (2, 7, &missing),
    )
    .await;

    // Malformed optional parameters and capabilities: 2/0 (the library's
    // tables; no RFC names a subcode).
    lab.case(
        "4-octet AS capability of 3 bytes",
        Main,
        s,
        &open(4, 65010, Main.id(), &cap_param(&[65, 3, 0, 0, 0xfd])),
        (2, 0, &[]),
    )
    .await;
    // The fixed part of an OPEN from Main, up to its Optional Parameters
    // Length byte.
    let fixed = |opt_len: u8| {
        let mut b = vec![4, 0xfd, 0xf2, 0, 0];
        b.extend_from_slice(&Main.id().octets());
        b.push(opt_len);
        b
    };
    lab.case(
        "optional parameters length past the end",
        Main,
        s,
        &msg(1, &[fixed(4), vec![2, 0]].concat()),
        (2, 0, &[]),
    )
    .await;
    // RFC 9072: Non-Ext OP Len 255, Non-Ext OP Type 255, a two-byte
    // length, then parameters with two-byte lengths.
    let param = [&[2u8, 0, 6][..], &as4(65010)].concat();
    let rfc9072 = |len: usize| {
        let len = u16::try_from(len).unwrap().to_be_bytes();
        msg(
            1,
            &[fixed(255), vec![255], len.to_vec(), param.clone()].concat(),
        )
    };
    lab.case(
        "RFC 9072 extended length that does not add up",
        Main,
        s,
        &rfc9072(param.len() + 1),
        (2, 0, &[]),
    )
    .await;
    // ... and the right RFC 9072 form is accepted.
    let mut c = lab.open_confirm(Main, &rfc9072(param.len())).await;
    lab.silent_close(
        "RFC 9072 OPEN accepted",
        Main,
        &mut c,
        &notification(6, 2, &[]),
    )
    .await;
    // Unknown capabilities are accepted (RFC 5492 §5).
    let with_unknown = [&Main.client_caps()[..], &[200, 3, 1, 2, 3]].concat();
    let mut c = lab
        .open_confirm(Main, &open(4, 65010, Main.id(), &cap_param(&with_unknown)))
        .await;
    lab.silent_close(
        "unknown capability accepted",
        Main,
        &mut c,
        &notification(6, 2, &[]),
    )
    .await;

    // RFC 9234 §4.2: strict mode wants a role, and the right one.
    let role = |r: &[u8]| {
        let mut c = as4(Role.asn());
        c.extend_from_slice(&MP_V4);
        c.extend_from_slice(r);
        open_msg(4, Role.asn() as u16, 0, Role.id(), &cap_param(&c))
    };
    lab.case("no role in strict mode", Role, s, &role(&[]), (2, 11, &[]))
        .await;
    lab.case(
        "provider to a provider",
        Role,
        s,
        &role(&[9, 1, 0]),
        (2, 11, &[]),
    )
    .await;
    let mut c = lab.open_confirm(Role, &role(&[9, 1, 3])).await;
    lab.silent_close("customer accepted", Role, &mut c, &notification(6, 2, &[]))
        .await;
    lab.finish("open").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_time_0_and_3_are_honoured_and_1_and_2_refused_rfc4271_4_2() {
    use Host::*;
    let mut lab = Lab::new(3).await;
    // RFC 4271 §6.2: 1 and 2 MUST be refused.
    for h in [1, 2] {
        let o = good_open(Main, h);
        lab.case(
            &format!("hold time {h}"),
            Main,
            Stage::OpenSent,
            &o,
            (2, 6, &[]),
        )
        .await;
    }

    // 0 against the server's 3: no keepalives and no hold timer, so a
    // silence longer than 3 s leaves the session up (with 3 negotiated a
    // KEEPALIVE would come after 1 s and 4/0 after 3 s).
    let mut c = lab.established(Hold, &good_open(Hold, 0)).await;
    assert_eq!(lab.rec(Hold).log().hold_times.last(), Some(&0));
    assert_eq!(
        c.next(Duration::from_millis(3500)).await,
        None,
        "hold time 0: nothing at all from the server"
    );
    assert_eq!(lab.state(Hold), StateKind::Established);
    lab.healthy_check().await;
    c.send(&good_open(Hold, 0)).await;
    lab.refused(
        "still Established after the silence",
        Hold,
        &mut c,
        (5, 3, &[1]),
    )
    .await;

    // The smaller proposal wins: 90 against the server's 3 is 3, 65535
    // against the server's 90 is 90.
    let mut c = lab.established(Hold, &good_open(Hold, 90)).await;
    assert_eq!(lab.rec(Hold).log().hold_times.last(), Some(&3));
    assert!(
        is_keepalive(&c.recv().await),
        "a KEEPALIVE within the hold time"
    );
    lab.silent_close(
        "hold time 3 from 90",
        Hold,
        &mut c,
        &notification(6, 2, &[]),
    )
    .await;
    let mut c = lab.established(Main, &good_open(Main, 65535)).await;
    assert_eq!(lab.rec(Main).log().hold_times.last(), Some(&90));
    lab.silent_close(
        "hold time 90 from 65535",
        Main,
        &mut c,
        &notification(6, 2, &[]),
    )
    .await;

    // 3: KEEPALIVEs every second (RFC 4271 §4.4: a third of the hold time)
    // while ours keep the session up; then we go quiet and get 4/0.
    let up = lab.rec(Main).log().established;
    let mut c = lab.open_sent(Main).await;
    let opened = Instant::now();
    c.send(&good_open(Main, 3)).await;
    assert_eq!(c.recv().await, Got::Msg(KEEPALIVE.to_vec()));
    c.send(&KEEPALIVE).await;
    let mut last_sent = Instant::now();
    wait_for("Main to be up", || {
        lab.rec(Main).log().established == up + 1
    })
    .await;
    assert_eq!(lab.rec(Main).log().hold_times.last(), Some(&3));
    let mut got = Vec::new();
    while got.len() < 3 {
        assert!(opened.elapsed() < T, "three KEEPALIVEs in time");
        let due = last_sent + Duration::from_secs(1);
        if Instant::now() >= due {
            c.send(&KEEPALIVE).await;
            last_sent = Instant::now();
            continue;
        }
        match c.next(due - Instant::now()).await {
            None => {}
            Some(g) => {
                assert!(is_keepalive(&g), "only KEEPALIVEs: {g:?}");
                got.push(opened.elapsed());
            }
        }
    }
    // The third one after the OPEN's: at least 3 s after our OPEN (the
    // timer starts when the server gets it), well before 3 × 3 s.
    assert!(
        got[2] >= Duration::from_millis(2900) && got[2] < Duration::from_secs(8),
        "KEEPALIVEs at 1 s: {got:?}"
    );
    assert_eq!(lab.state(Main), StateKind::Established);
    let quiet = last_sent;
    let n = loop {
        match c.recv().await {
            g if is_keepalive(&g) => continue,
            g => break g,
        }
    };
    assert_eq!(n, Got::Msg(notification(4, 0, &[])), "Hold Timer Expired");
    assert!(
        quiet.elapsed() >= Duration::from_millis(2900),
        "not before the hold time: {:?}",
        quiet.elapsed()
    );
    assert_eq!(c.recv().await, Got::Closed);
    lab.sent_once_more(Main, 4, 0).await;
    assert_eq!(
        lab.rec(Main).log().closed.last(),
        Some(&DownReason::NotificationSent(
            NotificationCode::HOLD_TIMER_EXPIRED
        ))
    );
    lab.cases += 1;
    lab.finish("hold time").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unexpected_messages_are_fsm_errors_with_the_type_rfc6608() {
    use Host::*;
    use Stage::*;
    let mut lab = Lab::new(4).await;
    let eor = update(&[], &[]);
    let one = update(&[ORIGIN, &as_path(65010), NEXT_HOP], &nlri24(1));
    let rr = route_refresh(1, 0, 1);
    let open = good_open(Main, 0);
    // Malformed ones are no more expected (RFC 4271 §8.2.2: UpdateMsgErr and
    // OpenMsgErr out of their state are "any other event"), so they get the
    // same FSM error, not their message's own error code.
    let bad_update = msg(2, &[0xbb; 40]);
    let bad_rr = msg(5, &[0, 1, 1, 1, 0]);
    let mut bad_open = open.clone();
    bad_open[19] = 3;
    let cases: [(&str, Stage, &[u8], u8, u8); 12] = [
        ("malformed UPDATE in OpenSent", OpenSent, &bad_update, 1, 2),
        (
            "malformed UPDATE in OpenConfirm",
            OpenConfirm,
            &bad_update,
            2,
            2,
        ),
        (
            "malformed ROUTE-REFRESH in OpenConfirm",
            OpenConfirm,
            &bad_rr,
            2,
            5,
        ),
        (
            "OPEN of version 3 in Established",
            Established,
            &bad_open,
            3,
            1,
        ),
        ("KEEPALIVE in OpenSent", OpenSent, &KEEPALIVE, 1, 4),
        ("End-of-RIB in OpenSent", OpenSent, &eor, 1, 2),
        ("UPDATE in OpenSent", OpenSent, &one, 1, 2),
        ("ROUTE-REFRESH in OpenSent", OpenSent, &rr, 1, 5),
        ("OPEN in OpenConfirm", OpenConfirm, &open, 2, 1),
        ("UPDATE in OpenConfirm", OpenConfirm, &one, 2, 2),
        ("ROUTE-REFRESH in OpenConfirm", OpenConfirm, &rr, 2, 5),
        ("OPEN in Established", Established, &open, 3, 1),
    ];
    for (what, stage, bytes, sub, ty) in cases {
        lab.case(what, Main, stage, bytes, (5, sub, &[ty])).await;
    }
    // Another OPEN, differing from the first, is no better.
    let other = open_msg(
        4,
        65010,
        180,
        Ipv4Addr::new(10, 9, 9, 9),
        &cap_param(&as4(65010)),
    );
    lab.case(
        "a second, different OPEN",
        Main,
        Established,
        &other,
        (5, 3, &[1]),
    )
    .await;
    // Pipelined in one write: OPEN, KEEPALIVE, OPEN.
    let mut c = lab.open_sent(Main).await;
    c.send(&[&open[..], &KEEPALIVE, &open].concat()).await;
    assert_eq!(c.recv().await, Got::Msg(KEEPALIVE.to_vec()));
    lab.refused(
        "OPEN, KEEPALIVE, OPEN in one write",
        Main,
        &mut c,
        (5, 3, &[1]),
    )
    .await;
    // OPEN then UPDATE before our KEEPALIVE.
    let mut c = lab.open_sent(Main).await;
    c.send(&[&open[..], &one].concat()).await;
    assert_eq!(c.recv().await, Got::Msg(KEEPALIVE.to_vec()));
    lab.refused("OPEN, UPDATE in one write", Main, &mut c, (5, 2, &[2]))
        .await;
    // With Extended Messages negotiated in the OPENs, a 5000-byte UPDATE
    // in OpenConfirm passes the header check and is an FSM error.
    let (big, _) = update_of_len(5000, Ext.asn());
    lab.case(
        "5000-byte UPDATE in OpenConfirm",
        Ext,
        OpenConfirm,
        &big,
        (5, 2, &[2]),
    )
    .await;
    lab.finish("fsm").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_errors_reset_withdraw_or_discard_as_rfc7606_says() {
    use Action::*;
    use Host::*;
    let mut lab = Lab::new(5).await;
    let p = as_path(65010);
    let p = p.as_str();
    let nlri = nlri24(7);
    let mut c = lab.established(Main, &good_open(Main, 0)).await;
    // Errors that leave the session up: the plugin sees the verdict.
    let up: [(&str, Vec<&str>, &[u8], Verdict); 10] = [
        ("clean", vec![ORIGIN, p, NEXT_HOP], &nlri, clean(1)),
        (
            "ORIGIN 3: treat-as-withdraw (§7.1)",
            vec!["40010103", p, NEXT_HOP],
            &nlri,
            verdict(TreatAsWithdraw, (3, 6, "40010103"), 1, &[]),
        ),
        (
            "NEXT_HOP missing: treat-as-withdraw (§3 d)",
            vec![ORIGIN, p],
            &nlri,
            Verdict {
                action: Some(TreatAsWithdraw),
                error: Some((3, 3, vec![3])),
                announced: 1,
                discarded: vec![],
            },
        ),
        (
            "AS 0 in AS_PATH: treat-as-withdraw (RFC 7607)",
            vec![ORIGIN, "400206 0201 00000000", NEXT_HOP],
            &nlri,
            verdict(TreatAsWithdraw, (3, 11, ""), 1, &[]),
        ),
        (
            "COMMUNITIES of 5 bytes: treat-as-withdraw (§7.8)",
            vec![ORIGIN, p, NEXT_HOP, "c00805 fde9006401"],
            &nlri,
            verdict(TreatAsWithdraw, (3, 5, "c00805fde9006401"), 1, &[]),
        ),
        (
            "ORIGIN flagged optional: treat-as-withdraw (§3 c)",
            vec!["c0010100", p, NEXT_HOP],
            &nlri,
            verdict(TreatAsWithdraw, (3, 4, "c0010100"), 1, &[]),
        ),
        (
            "ATOMIC_AGGREGATE of 1 byte: attribute discard (§7.6)",
            vec![ORIGIN, p, NEXT_HOP, "40060101"],
            &nlri,
            verdict(AttributeDiscard, (3, 5, "40060101"), 1, &[6]),
        ),
        (
            "AGGREGATOR with AS 0: attribute discard (RFC 7607)",
            vec![ORIGIN, p, NEXT_HOP, "c00708 00000000 c0000201"],
            &nlri,
            verdict(AttributeDiscard, (3, 9, "c0070800000000c0000201"), 1, &[7]),
        ),
        (
            "unknown optional attribute kept",
            vec![ORIGIN, p, NEXT_HOP, "c06302 abcd"],
            &nlri,
            clean(1),
        ),
        (
            "IPv6 next hop of 5 bytes: AFI/SAFI disable (§7.11)",
            vec!["800e11 0002 01 05 0102030405 00 30 20010db80001", ORIGIN, p],
            &[],
            verdict(
                AfiSafiDisable(AfiSafi::IPV6_UNICAST),
                (3, 9, "800e11000201050102030405003020010db80001"),
                0,
                &[],
            ),
        ),
    ];
    for (what, attrs, nlri, want) in up {
        let u = update(&attrs, nlri);
        lab.verdicts(what, Main, &mut c, &u, &[want]).await;
    }
    lab.healthy_check().await;
    // Session resets: the plugin's verdict, and the exact NOTIFICATION.
    // What, attributes, NLRI, and the NOTIFICATION (data in hex).
    type Reset<'a> = (&'a str, Vec<&'a str>, &'a [u8], (u8, u8, &'a str));
    let resets: [Reset<'_>; 5] = [
        (
            "unrecognized well-known attribute (RFC 4271 §6.3)",
            vec![ORIGIN, p, NEXT_HOP, "406302 abcd"],
            &nlri,
            (3, 2, "406302abcd"),
        ),
        (
            "bad ORIGIN length without NLRI (§5.2)",
            vec!["4001020000", p, NEXT_HOP],
            &[],
            (3, 5, "4001020000"),
        ),
        (
            "NLRI prefix length 33 (§5.3)",
            vec![ORIGIN, p, NEXT_HOP],
            &[33, 10, 0, 0, 0, 0],
            (3, 10, ""),
        ),
        (
            "MP_REACH_NLRI twice (§3 g)",
            vec![V6_REACH, ORIGIN, p, V6_REACH],
            &[],
            (3, 1, ""),
        ),
        (
            "MP_REACH_NLRI AFI/SAFI unreadable (§7.11)",
            vec!["800e02 0002", ORIGIN, p],
            &[],
            (3, 9, "800e020002"),
        ),
    ];
    for (i, (what, attrs, nlri, (code, sub, data))) in resets.into_iter().enumerate() {
        if i > 0 {
            c = lab.established(Main, &good_open(Main, 0)).await;
        }
        let before = lab.rec(Main).log().updates.len();
        c.send(&update(&attrs, nlri)).await;
        let data = hex(data);
        lab.refused(what, Main, &mut c, (code, sub, &data)).await;
        let l = lab.rec(Main).log();
        assert_eq!(l.updates.len(), before + 1);
        let v = l.updates.last().unwrap();
        assert_eq!(
            (v.action, v.error.clone()),
            (Some(SessionReset), Some((code, sub, data))),
            "{what}"
        );
        assert_eq!(
            l.closed.last(),
            Some(&DownReason::NotificationSent(NotificationCode::from_raw(
                code, sub
            ))),
            "{what}"
        );
    }
    // Section lengths that do not add up are the session's to refuse
    // (3/1, RFC 7606 §3 a); the plugin never sees them.
    for (what, body) in [
        ("withdrawn length past the end", "0005 0000"),
        ("attribute length past the end", "0000 00ff 40010100"),
        ("withdrawn routes eat the attribute length", "0001 18 00"),
    ] {
        let before = lab.rec(Main).log().updates.len();
        lab.case(
            what,
            Main,
            Stage::Established,
            &msg(2, &hex(body)),
            (3, 1, &[]),
        )
        .await;
        assert_eq!(lab.rec(Main).log().updates.len(), before, "{what}");
    }
    lab.finish("update").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_and_message_size_limits_rfc4271_rfc8654() {
    use Host::*;
    let mut lab = Lab::new(6).await;
    let p = as_path(65010);
    let one = |i: usize| update(&[ORIGIN, &p, NEXT_HOP], &nlri24(i));

    // An OPEN and 3000 KEEPALIVEs in one write: up, and staying up.
    let mut c = lab.open_sent(Main).await;
    let mut burst = good_open(Main, 0);
    burst.extend_from_slice(&KEEPALIVE.repeat(3000));
    c.send(&burst).await;
    assert_eq!(c.recv().await, Got::Msg(KEEPALIVE.to_vec()));
    wait_for("Main to be up", || lab.rec(Main).log().established == 1).await;
    lab.verdicts(
        "OPEN and 3000 KEEPALIVEs, then an UPDATE",
        Main,
        &mut c,
        &one(1),
        &[clean(1)],
    )
    .await;
    // 5000 more KEEPALIVEs, then an UPDATE: handled in order.
    let burst = [KEEPALIVE.repeat(5000), one(2)].concat();
    lab.verdicts(
        "5000 KEEPALIVEs, then an UPDATE",
        Main,
        &mut c,
        &burst,
        &[clean(1)],
    )
    .await;
    // 1000 UPDATEs in one write.
    let burst: Vec<u8> = (0..1000).flat_map(one).collect();
    lab.verdicts(
        "1000 UPDATEs in one write",
        Main,
        &mut c,
        &burst,
        &vec![clean(1); 1000],
    )
    .await;
    // The largest message without Extended Messages: 4096 bytes.
    let (max, k) = update_of_len(4096, 65010);
    lab.verdicts("a 4096-byte UPDATE", Main, &mut c, &max, &[clean(k)])
        .await;
    assert_eq!(lab.rec(Main).log().closed, vec![], "never went down");
    lab.healthy_check().await;
    // One byte more: 1/2 with the length.
    let (over, _) = update_of_len(4097, 65010);
    c.send_lossy(&over).await;
    lab.refused("a 4097-byte UPDATE", Main, &mut c, (1, 2, &[0x10, 0x01]))
        .await;
    // RFC 8654 §4: a server that did not advertise Extended Messages
    // refuses them even from a client that did.
    let with_ext = [&Main.client_caps()[..], &EXTENDED_MESSAGE].concat();
    let o = open_msg(4, 65010, 0, Main.id(), &cap_param(&with_ext));
    let mut c = lab.established(Main, &o).await;
    let (big, _) = update_of_len(5000, 65010);
    c.send_lossy(&big).await;
    lab.refused(
        "5000 bytes to a server without Extended Messages",
        Main,
        &mut c,
        (1, 2, &[0x13, 0x88]),
    )
    .await;
    // An OPEN dripped a byte at a time.
    let mut c = lab.open_sent(Main).await;
    for b in good_open(Main, 0) {
        c.send(&[b]).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(
        c.recv().await,
        Got::Msg(KEEPALIVE.to_vec()),
        "OPEN byte by byte"
    );
    lab.silent_close("OPEN byte by byte", Main, &mut c, &notification(6, 2, &[]))
        .await;

    // Both advertise Extended Messages: 4097 and 65535 bytes are fine.
    let mut c = lab.established(Ext, &good_open(Ext, 0)).await;
    for len in [4097, 65535] {
        let (u, k) = update_of_len(len, Ext.asn());
        lab.verdicts(
            &format!("a {len}-byte UPDATE, extended"),
            Ext,
            &mut c,
            &u,
            &[clean(k)],
        )
        .await;
    }
    lab.silent_close("extended session", Ext, &mut c, &notification(6, 2, &[]))
        .await;
    lab.finish("bursts and sizes").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_refresh_errors_and_unnegotiated_families_rfc2918_rfc7313() {
    use Host::*;
    let mut lab = Lab::new(7).await;
    let mut c = lab.established(Main, &good_open(Main, 0)).await;
    let heard = |lab: &Lab| lab.rec(Main).log().refreshes.clone();
    c.send(&route_refresh(1, 0, 1)).await;
    wait_for("IPv4 unicast refresh", || heard(&lab).len() == 1).await;
    lab.cases += 1;
    // Ignored (RFC 2918 §4, RFC 7313 §5): a family we did not negotiate,
    // an unknown AFI, an unknown subtype, a BoRR without Enhanced Route
    // Refresh. The IPv6 request after them is delivered: they were read.
    let ignored = [
        route_refresh(1, 0, 2),
        route_refresh(99, 0, 1),
        route_refresh(1, 9, 1),
        route_refresh(1, 1, 1),
    ];
    c.send(&ignored.concat()).await;
    c.send(&route_refresh(2, 0, 1)).await;
    wait_for("IPv6 unicast refresh", || heard(&lab).len() == 2).await;
    assert_eq!(heard(&lab), vec![(1, 1, 0), (2, 1, 0)]);
    assert_eq!(lab.state(Main), StateKind::Established);
    lab.cases += ignored.len() + 1;
    // RFC 7313 §5: a BoRR or EoRR whose body is not 4 bytes is 7/1 with
    // the whole message as data.
    let borr = msg(5, &[0, 1, 1, 1, 0xaa]);
    c.send(&borr).await;
    lab.refused("BoRR of 5 bytes", Main, &mut c, (7, 1, &borr))
        .await;
    let eorr = msg(5, &[0, 2, 2, 1, 0, 0, 0, 0]);
    lab.case(
        "EoRR of 8 bytes",
        Main,
        Stage::Established,
        &eorr,
        (7, 1, &eorr),
    )
    .await;
    // Shorter than the AFI, subtype and SAFI: a header error.
    lab.case(
        "ROUTE-REFRESH of 21",
        Main,
        Stage::Established,
        &msg(5, &[0, 1]),
        (1, 2, &[0, 21]),
    )
    .await;
    // From a client that did not advertise Route Refresh: no error, the
    // session stays up. Whether the plugin should hear it is open (RFC 2918
    // §3 lets a speaker send it once it has received our capability; the
    // session delivers it only when both advertised), so not asserted.
    let caps = [&as4(65010)[..], &MP_V4].concat();
    let o = open_msg(4, 65010, 0, Main.id(), &cap_param(&caps));
    let mut c = lab.established(Main, &o).await;
    c.send(&route_refresh(1, 0, 1)).await;
    let u = update(&[ORIGIN, &as_path(65010), NEXT_HOP], &nlri24(3));
    lab.verdicts(
        "ROUTE-REFRESH without the capability, then an UPDATE",
        Main,
        &mut c,
        &u,
        &[clean(1)],
    )
    .await;
    lab.silent_close("after the refresh", Main, &mut c, &notification(6, 2, &[]))
        .await;
    lab.finish("route refresh").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_received_close_silently_and_the_peer_comes_back() {
    use Host::*;
    let mut lab = Lab::new(8).await;
    let shutdown = |sub: u8, text: &str| {
        let mut d = vec![u8::try_from(text.len()).unwrap()];
        d.extend_from_slice(text.as_bytes());
        notification(6, sub, &d)
    };
    // RFC 4271 §6.4 / §8.2.2: a NOTIFICATION closes the connection, with
    // nothing sent back, in every state; the peer takes the next one.
    let cases: [(&str, Stage, Vec<u8>); 9] = [
        (
            "Cease with a shutdown communication in OpenSent (RFC 9003)",
            Stage::OpenSent,
            shutdown(2, "maintenance"),
        ),
        (
            "Hold Timer Expired in OpenSent",
            Stage::OpenSent,
            notification(4, 0, &[]),
        ),
        (
            "OPEN error in OpenConfirm",
            Stage::OpenConfirm,
            notification(2, 2, &[]),
        ),
        (
            "Cease 6/5 in OpenConfirm",
            Stage::OpenConfirm,
            notification(6, 5, &[]),
        ),
        (
            "Cease 6/4 with a shutdown communication in Established",
            Stage::Established,
            shutdown(4, "rebooting, back in 5 minutes ✓"),
        ),
        (
            "a truncated shutdown communication (RFC 9003 §4)",
            Stage::Established,
            notification(6, 2, &[50, b'a', b'b', b'c']),
        ),
        (
            "a shutdown communication that is not UTF-8",
            Stage::Established,
            notification(6, 2, &[2, 0xff, 0xfe]),
        ),
        (
            "an unknown code 9/9",
            Stage::Established,
            notification(9, 9, b"whatever"),
        ),
        (
            "a NOTIFICATION of 4096 bytes",
            Stage::Established,
            notification(3, 1, &[0x5a; 4096 - 21]),
        ),
    ];
    for (what, stage, n) in cases {
        let closed = lab.rec(Main).log().closed.len();
        let mut c = lab.reach(Main, stage).await;
        lab.silent_close(what, Main, &mut c, &n).await;
        if let Stage::Established = stage {
            let l = lab.rec(Main).log();
            assert_eq!(l.closed.len(), closed + 1, "{what}: on_close once");
            assert_eq!(
                l.closed.last(),
                Some(&DownReason::NotificationReceived(
                    NotificationCode::from_raw(n[19], n[20])
                )),
                "{what}"
            );
        }
        // The peer comes back at once (damping is off for Main).
        drop(lab.open_sent(Main).await);
    }
    // The same error twice in a row changes nothing.
    for _ in 0..2 {
        let mut c = lab.reach(Main, Stage::Established).await;
        lab.silent_close("Cease 6/2 again", Main, &mut c, &notification(6, 2, &[]))
            .await;
    }

    // With damping (RFC 4271 §8.1.1): a Cease does not count, the peer
    // comes back at once; an error does, and the next connection is closed
    // without a word while the peer is held down. The other peers are not
    // affected.
    let mut c = lab.reach(Damp, Stage::OpenSent).await;
    lab.silent_close("Cease with damping", Damp, &mut c, &notification(6, 3, &[]))
        .await;
    let mut bad = KEEPALIVE.to_vec();
    bad[3] = 0;
    lab.case(
        "bad marker with damping",
        Damp,
        Stage::OpenSent,
        &bad,
        (1, 1, &[]),
    )
    .await;
    assert_eq!(lab.rec(Damp).log().damped, 1);
    let mut c = lab.connect(Damp).await;
    assert_eq!(
        c.recv().await,
        Got::Closed,
        "held down: closed without an OPEN"
    );
    lab.cases += 1;
    drop(lab.open_sent(Main).await);
    lab.finish("notification").await;
}
