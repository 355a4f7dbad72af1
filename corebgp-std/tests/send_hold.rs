//! RFC 9687 over real TCP (issue 15, part 4): a peer that completes OPEN
//! and KEEPALIVE, then never reads again, while the server pushes a full
//! table to it through an [`UpdateWriter`]. With small socket buffers on
//! both sides the server's writes stop moving at once; when the send hold
//! timer expires the session ends with NOTIFICATION 8/0 ("Send Hold Timer
//! Expired"), the plugin hears that reason, the server closes its socket
//! itself (RFC 9687 §1: the local system closes the connection, not relying
//! on the remote), the peer takes new connections again, and another peer
//! of the same server stays Established throughout.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use corebgp_core::plugin::Plugin;
use corebgp_core::session::{
    CapabilitySet, DefaultHooks, DownReason, Event, Negotiated, OpenHooks, PeerConfig, StateKind,
};
use corebgp_core::update::{
    AsSegment, Ipv4Prefix, NextHop, Nlri, Origin, PathAttributes, SegmentType, UpdateBuilder,
};
use corebgp_core::wire::{AfiSafi, KEEPALIVE, Notification, NotificationCode, UpdateSections};
use corebgp_std::{PeerOptions, Server, SocketKind, UpdateQueue, UpdateWriter, update_queue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// How long any one thing may take on a busy machine.
const T: Duration = Duration::from_secs(30);
/// The send hold time of the stalled peer (short, to keep the test short;
/// RFC 9687 §3's default is max(8 minutes, 2 × hold time)).
const SEND_HOLD: Duration = Duration::from_secs(2);
/// Socket buffers on both ends of the stalled connection: the server's
/// writes block after a few UPDATEs.
const SMALL_BUF: usize = 4096;
/// "A full table": this many /24s, about 1,100 UPDATEs of 4096 bytes.
const FULL_TABLE: u32 = 1_000_000;
const S_AS: u32 = 65001;
const G_AS: u32 = 65002;
const X_AS: u32 = 65010;

#[derive(Default, Debug)]
struct Log {
    established: usize,
    /// NOTIFICATIONs the session sent: code, subcode.
    sent: Vec<(u8, u8)>,
    received: usize,
    closed: Vec<DownReason>,
    /// Prefixes in the UPDATEs received (the liveness probes).
    updates: usize,
}

#[derive(Clone, Default)]
struct Recorder {
    log: Arc<Mutex<Log>>,
    queue: Option<Arc<UpdateQueue>>,
    /// Push a full table on Established: the UPDATEs queued so far.
    feed: Option<Arc<AtomicUsize>>,
}

impl Recorder {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }
}

impl OpenHooks for Recorder {
    fn capabilities(&mut self, peer: &PeerConfig, caps: &mut CapabilitySet) {
        DefaultHooks.capabilities(peer, caps)
    }
}

/// UPDATEs of as many /24s as fit, from 1.0.0.0 on, `total` in all; each
/// handed to `send` until it refuses.
async fn push_table(w: UpdateWriter, total: u32, queued: Arc<AtomicUsize>) {
    let asns = [S_AS];
    let seg = [AsSegment {
        kind: SegmentType::Sequence,
        asns: &asns,
    }];
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(&seg),
        next_hop: Some(NextHop::V4(Ipv4Addr::new(192, 0, 2, 1))),
        ..Default::default()
    };
    let cfg = corebgp_core::update::UpdateConfig::default();
    let mut next = 0u32;
    let mut buf = vec![0u8; 4096];
    while next < total {
        let batch: Vec<Nlri<Ipv4Prefix>> = (next..total.min(next + 1200))
            .map(|i| {
                Nlri::new(Ipv4Prefix::new(Ipv4Addr::from_bits((1 << 24) + (i << 8)), 24).unwrap())
            })
            .collect();
        let mut b = UpdateBuilder::new(&mut buf, &cfg).unwrap();
        let n = b.announce(&attrs, AfiSafi::IPV4_UNICAST, &batch).unwrap();
        let len = b.finish().unwrap();
        if w.send(&buf[..len]).await.is_err() {
            return;
        }
        queued.fetch_add(1, Ordering::Relaxed);
        next += n as u32;
    }
}

impl Plugin for Recorder {
    async fn on_established(&mut self, _: &PeerConfig, _: &Negotiated) {
        self.log().established += 1;
        if let (Some(q), Some(feed)) = (&self.queue, &self.feed) {
            let w = UpdateWriter::new(q.clone()).unwrap();
            tokio::spawn(push_table(w, FULL_TABLE, feed.clone()));
        }
    }

    async fn on_update<'m>(
        &mut self,
        _: &PeerConfig,
        _: UpdateSections<'m>,
    ) -> Result<(), Notification<'m>> {
        self.log().updates += 1;
        Ok(())
    }

    fn on_notification(&mut self, _: &PeerConfig, _: &Notification<'_>) {
        self.log().received += 1;
    }

    fn on_event(&mut self, _: &PeerConfig, e: &Event) {
        if let Event::NotificationSent { code, .. } = e {
            self.log().sent.push((code.code(), code.subcode()))
        }
    }

    fn on_close(&mut self, _: &PeerConfig, reason: DownReason) {
        self.log().closed.push(reason);
    }
}

async fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn msg(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&u16::try_from(19 + body.len()).unwrap().to_be_bytes());
    m.push(ty);
    m.extend_from_slice(body);
    m
}

/// The stalled client's OPEN: AS 65010, hold time 0 (so that nothing but
/// its silence can end the session), IPv4 unicast and 4-octet AS.
fn client_open() -> Vec<u8> {
    let mut caps = vec![1, 4, 0, 1, 0, 1, 65, 4];
    caps.extend_from_slice(&X_AS.to_be_bytes());
    let mut b = vec![4];
    b.extend_from_slice(&(X_AS as u16).to_be_bytes());
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(&[10, 0, 0, 10]);
    b.push(2 + caps.len() as u8);
    b.extend_from_slice(&[2, caps.len() as u8]);
    b.extend_from_slice(&caps);
    msg(1, &b)
}

/// Reads one whole message (the header's length) within [`T`].
async fn read_msg(s: &mut TcpStream) -> Vec<u8> {
    let mut head = [0u8; 19];
    tokio::time::timeout(T, s.read_exact(&mut head))
        .await
        .expect("a message in time")
        .expect("a message");
    let len = usize::from(u16::from_be_bytes([head[16], head[17]]));
    let mut m = head.to_vec();
    m.resize(len, 0);
    tokio::time::timeout(T, s.read_exact(&mut m[19..]))
        .await
        .expect("a message body in time")
        .expect("a message body");
    m
}

/// The kernel's TCP state of the socket from `local` to `remote` (hex code
/// of /proc/net/tcp: 01 ESTABLISHED, 04 FIN_WAIT1, …), `None` once gone.
fn tcp_state(local: SocketAddr, remote: SocketAddr) -> Option<u8> {
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(a) => format!(
            "{:08X}:{:04X}",
            u32::from_le_bytes(a.ip().octets()),
            a.port()
        ),
        SocketAddr::V6(_) => unreachable!("IPv4 only here"),
    };
    let (l, r) = (hex(local), hex(remote));
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.get(1) == Some(&l.as_str()) && f.get(2) == Some(&r.as_str()))
            .then(|| u8::from_str_radix(f[3], 16).unwrap())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_is_closed_with_8_0_when_the_send_hold_timer_expires_rfc9687() {
    let ip = |h: u8| Ipv4Addr::new(127, 78, 1, h);
    let l = TcpListener::bind((ip(1), 0)).await.unwrap();
    let listener = l.local_addr().unwrap();
    let s = Server::new(ip(1)).unwrap();
    let g = Server::new(ip(2)).unwrap();
    let cfg = |remote: u8, local_as, remote_as| PeerConfig {
        remote_address: IpAddr::V4(ip(remote)),
        local_as,
        remote_as,
    };
    let fast = || {
        PeerOptions::new()
            .hold_time(9)
            .idle_hold_time(Duration::from_millis(200))
            .connect_retry_time(Duration::from_secs(1))
    };

    // The healthy peer: another corebgp-std server that dials ours.
    let healthy = Recorder::default();
    let g_side = Recorder {
        queue: Some(update_queue()),
        ..Recorder::default()
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

    // The stalled peer: a full table is pushed to it once Established.
    let fed = Arc::new(AtomicUsize::new(0));
    let stalled = Recorder {
        queue: Some(update_queue()),
        feed: Some(fed.clone()),
        ..Recorder::default()
    };
    let small_sndbuf: corebgp_std::SocketHook = Arc::new(|fd, kind| {
        if kind == SocketKind::Inbound {
            socket2::SockRef::from(&fd).set_send_buffer_size(SMALL_BUF)?;
        }
        Ok(())
    });
    s.add_peer(
        cfg(10, S_AS, X_AS),
        stalled.clone(),
        PeerOptions::new()
            .passive(true)
            .damping(false)
            .send_hold_time(Some(SEND_HOLD))
            .socket_hook(small_sndbuf)
            .update_queue(stalled.queue.clone().unwrap()),
    )
    .unwrap();

    let (ss, gs) = (s.clone(), g.clone());
    tokio::spawn(async move { ss.serve(vec![l]).await });
    tokio::spawn(async move { gs.serve(vec![]).await });
    wait_for("the healthy session", T, || {
        healthy.log().established == 1 && g_side.log().established == 1
    })
    .await;
    let x_ip = IpAddr::V4(ip(10));
    wait_for("the stalled peer to listen", T, || {
        s.get_peer(x_ip).unwrap().state == StateKind::Active
    })
    .await;

    // OPEN, KEEPALIVE both ways with a small receive buffer, then silence.
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(SMALL_BUF as u32).unwrap();
    sock.bind(SocketAddr::new(x_ip, 0)).unwrap();
    let mut c = tokio::time::timeout(T, sock.connect(listener))
        .await
        .expect("connected in time")
        .expect("connected");
    let me = c.local_addr().unwrap();
    assert_eq!(read_msg(&mut c).await[18], 1, "the server's OPEN");
    c.write_all(&client_open()).await.unwrap();
    assert_eq!(read_msg(&mut c).await, KEEPALIVE, "the server's KEEPALIVE");
    c.write_all(&KEEPALIVE).await.unwrap();
    wait_for("the stalled session to be up", T, || {
        stalled.log().established == 1
    })
    .await;
    let rcvbuf = socket2::SockRef::from(&c).recv_buffer_size().unwrap();
    assert!(rcvbuf <= 4 * SMALL_BUF, "a small receive buffer ({rcvbuf})");
    let up = Instant::now();

    // From here on the client reads nothing. The server blocks after a
    // few UPDATEs and, SEND_HOLD later, gives up with 8/0.
    let send_hold_expired = DownReason::NotificationSent(NotificationCode::SEND_HOLD_TIMER_EXPIRED);
    wait_for(
        "the send hold timer to end the session",
        SEND_HOLD + T,
        || !stalled.log().closed.is_empty(),
    )
    .await;
    let took = up.elapsed();
    let queued = fed.load(Ordering::Relaxed);
    {
        let l = stalled.log();
        assert_eq!(l.closed, [send_hold_expired], "{l:?}");
        assert_eq!(l.sent, [(8, 0)], "one NOTIFICATION, 8/0: {l:?}");
        assert_eq!(l.established, 1);
    }
    assert!(took >= SEND_HOLD, "not before the send hold time: {took:?}");
    assert!(
        queued < 1000,
        "the writes blocked early ({queued} UPDATEs of the table queued)"
    );

    // The server closes its end without waiting for the peer to read: the
    // socket leaves ESTABLISHED (FIN queued, then closed), and the session
    // takes a new connection again.
    let server_end = c.peer_addr().unwrap();
    wait_for("the server to close its socket", T, || {
        tcp_state(server_end, me) != Some(0x01)
    })
    .await;
    wait_for("the stalled peer to listen again", T, || {
        s.get_peer(x_ip).unwrap().state == StateKind::Active
    })
    .await;

    // What the client finds when it reads at last: UPDATEs, then the end
    // of the connection (no endless stream, no other message type).
    let mut rest = Vec::new();
    let mut tmp = vec![0u8; 65536];
    loop {
        match tokio::time::timeout(T, c.read(&mut tmp)).await {
            Err(_) => panic!("the stalled connection never ended"),
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => rest.extend_from_slice(&tmp[..n]),
        }
    }
    let mut at = 0;
    let mut updates = 0;
    while rest.len() >= at + 19 {
        let len = usize::from(u16::from_be_bytes([rest[at + 16], rest[at + 17]]));
        if rest.len() < at + len {
            break;
        }
        match rest[at + 18] {
            2 => updates += 1,
            // Written only if the socket took it before closing.
            3 => assert_eq!(rest[at + 19..at + len], [8, 0], "the NOTIFICATION"),
            t => panic!("unexpected message type {t}"),
        }
        at += len;
    }
    assert!(updates > 0, "some of the table arrived");
    drop(c);
    eprintln!(
        "send hold: closed {took:?} after Established ({SEND_HOLD:?} configured), {queued} UPDATEs queued, {updates} read afterwards"
    );

    // The healthy peer never noticed: Established on both sides since the
    // start, and an UPDATE from it still arrives.
    assert_eq!(
        s.get_peer(IpAddr::V4(ip(2))).unwrap().state,
        StateKind::Established
    );
    for (who, r) in [("server", &healthy), ("healthy peer", &g_side)] {
        let l = r.log();
        assert_eq!(l.established, 1, "{who}: up once: {l:?}");
        assert!(
            l.closed.is_empty() && l.sent.is_empty() && l.received == 0,
            "{who}: no close, no NOTIFICATION: {l:?}"
        );
    }
    let w = UpdateWriter::new(g_side.queue.clone().unwrap()).expect("still Established");
    let probe = {
        let mut b = vec![0, 0];
        let attrs = [
            0x40, 1, 1, 0, // ORIGIN IGP
            0x40, 2, 6, 2, 1, 0, 0, 0xfe, 0x02, // AS_PATH 65002
            0x40, 3, 4, 192, 0, 2, 2, // NEXT_HOP
        ];
        b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        b.extend_from_slice(&attrs);
        b.extend_from_slice(&[24, 10, 99, 1]);
        msg(2, &b)
    };
    tokio::time::timeout(T, w.send(&probe))
        .await
        .expect("queued in time")
        .expect("queued");
    wait_for("the healthy peer's UPDATE", T, || {
        healthy.log().updates == 1
    })
    .await;
    s.close().await;
    g.close().await;
}
