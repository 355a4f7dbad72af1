//! The server end to end: corebgp-std servers talking to each other over
//! loopback (addresses 127.41.N.x, one N per test, so tests run in
//! parallel), plus the API's errors.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corebgp_core::driver::SHUTDOWN_LINGER;
use corebgp_core::plugin::Plugin;
use corebgp_core::session::{
    CapabilitySet, ConfigError, DefaultHooks, Negotiated, OpenHooks, PeerConfig, StateKind,
};
use corebgp_core::update::{
    AsSegment, Ipv4Prefix, NextHop, Nlri, Origin, PathAttributes, SegmentType, Update,
    UpdateBuilder, encode_end_of_rib,
};
use corebgp_core::wire::{AfiSafi, Notification, NotificationCode, UpdateSections};
use corebgp_std::{
    Error, OptionError, PeerOptions, STOP_GRACE, Server, SocketKind, UpdateQueue, UpdateWriter,
    update_queue,
};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

const T: Duration = Duration::from_secs(15);

fn addr(test: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 41, test, host)
}

#[derive(Default, Debug)]
struct Log {
    established: usize,
    prefixes: usize,
    eor: usize,
    received: Vec<(u8, u8)>,
    sent: Vec<(u8, u8)>,
    closed: usize,
}

#[derive(Clone, Default)]
struct TestPlugin {
    log: Arc<Mutex<Log>>,
    queue: Option<Arc<UpdateQueue>>,
    /// /24s to announce on Established, then End-of-RIB.
    routes: u32,
    /// Size of each UPDATE sent after the table, forever (to wedge a peer).
    flood: bool,
    /// Never return from `on_update` (a peer that stops reading).
    hang: bool,
}

impl TestPlugin {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }
}

impl OpenHooks for TestPlugin {
    fn capabilities(&mut self, peer: &PeerConfig, caps: &mut CapabilitySet) {
        DefaultHooks.capabilities(peer, caps)
    }
}

async fn send_table(w: &UpdateWriter, peer: &PeerConfig, n: &Negotiated, routes: u32) {
    let cfg = n.update_config(peer);
    let prefixes: Vec<Nlri<Ipv4Prefix>> = (0..routes)
        .map(|i| {
            Nlri::new(Ipv4Prefix::new(Ipv4Addr::from_bits(0x0a00_0000 | (i << 8)), 24).unwrap())
        })
        .collect();
    let asns = [peer.local_as];
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
    let mut buf = vec![0u8; 4096];
    let mut rest = &prefixes[..];
    while !rest.is_empty() {
        let mut b = UpdateBuilder::new(&mut buf, &cfg).unwrap();
        let k = b.announce(&attrs, AfiSafi::IPV4_UNICAST, rest).unwrap();
        let len = b.finish().unwrap();
        if w.send(&buf[..len]).await.is_err() {
            return;
        }
        rest = &rest[k..];
    }
    let len = encode_end_of_rib(&mut buf, AfiSafi::IPV4_UNICAST).unwrap();
    let _ = w.send(&buf[..len]).await;
}

impl Plugin for TestPlugin {
    async fn on_established(&mut self, peer: &PeerConfig, n: &Negotiated) {
        self.log().established += 1;
        let Some(q) = &self.queue else { return };
        let w = UpdateWriter::new(q.clone()).unwrap();
        let (peer, n, routes, flood) = (*peer, n.clone(), self.routes, self.flood);
        // The writer moves to a task of its own.
        tokio::spawn(async move {
            send_table(&w, &peer, &n, routes).await;
            while flood && !w.is_closed() {
                send_table(&w, &peer, &n, 1000).await;
            }
        });
    }

    async fn on_update<'m>(
        &mut self,
        _: &PeerConfig,
        u: UpdateSections<'m>,
    ) -> Result<(), Notification<'m>> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        let u = Update::from_sections(u, &Default::default())
            .map_err(|e| Notification::new(e.notification.code))?;
        let mut log = self.log();
        if u.end_of_rib().is_some() {
            log.eor += 1;
        }
        log.prefixes += u.announced_count();
        Ok(())
    }

    fn on_notification(&mut self, _: &PeerConfig, n: &Notification<'_>) {
        self.log().received.push((n.code.code(), n.code.subcode()));
    }

    fn on_event(&mut self, _: &PeerConfig, e: &corebgp_core::session::Event) {
        if let corebgp_core::session::Event::NotificationSent { code, .. } = e {
            self.log().sent.push((code.code(), code.subcode()));
        }
    }

    fn on_close(&mut self, _: &PeerConfig, _: corebgp_core::session::DownReason) {
        self.log().closed += 1;
    }
}

fn peer(remote: IpAddr, local_as: u32, remote_as: u32) -> PeerConfig {
    PeerConfig {
        remote_address: remote,
        local_as,
        remote_as,
    }
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !f() {
        assert!(start.elapsed() < T, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_state(s: &Server, a: IpAddr, want: StateKind) {
    wait_for(&format!("{a} to be {want:?}"), || {
        s.get_peer(a).is_ok_and(|p| p.state == want)
    })
    .await
}

/// Two servers: `a` on `addr(t,1)` dialling, `b` on `addr(t,2)` listening.
struct Pair {
    a: Server,
    b: Server,
    a_addr: IpAddr,
    b_addr: IpAddr,
    pa: TestPlugin,
    pb: TestPlugin,
}

async fn pair(t: u8, pa: TestPlugin, pb: TestPlugin, opts: PeerOptions) -> Pair {
    let (a_addr, b_addr) = (IpAddr::V4(addr(t, 1)), IpAddr::V4(addr(t, 2)));
    let lb = TcpListener::bind(SocketAddr::new(b_addr, 0)).await.unwrap();
    let port = lb.local_addr().unwrap().port();
    let a = Server::new(addr(t, 1)).unwrap();
    let b = Server::new(addr(t, 2)).unwrap();
    let mut oa = opts.clone().port(port).local_address(a_addr);
    if let Some(q) = &pa.queue {
        oa = oa.update_queue(q.clone());
    }
    let mut ob = opts.passive(true);
    if let Some(q) = &pb.queue {
        ob = ob.update_queue(q.clone());
    }
    a.add_peer(peer(b_addr, 65001, 65002), pa.clone(), oa)
        .unwrap();
    b.add_peer(peer(a_addr, 65002, 65001), pb.clone(), ob)
        .unwrap();
    let (sa, sb) = (a.clone(), b.clone());
    tokio::spawn(async move { sa.serve(vec![]).await });
    tokio::spawn(async move { sb.serve(vec![lb]).await });
    Pair {
        a,
        b,
        a_addr,
        b_addr,
        pa,
        pb,
    }
}

fn fast() -> PeerOptions {
    PeerOptions::new()
        .hold_time(9)
        .idle_hold_time(Duration::from_millis(200))
        .connect_retry_time(Duration::from_secs(1))
}

#[tokio::test]
async fn options_and_router_id_are_validated() {
    assert!(matches!(
        Server::new(Ipv4Addr::UNSPECIFIED),
        Err(Error::InvalidOption(OptionError::Session(
            ConfigError::RouterId
        )))
    ));
    let s = Server::new(addr(1, 1)).unwrap();
    let p = peer(IpAddr::V4(addr(1, 2)), 65001, 65002);
    let bad = |o: PeerOptions, p: PeerConfig| match s.add_peer(p, TestPlugin::default(), o) {
        Err(Error::InvalidOption(e)) => e,
        other => panic!("expected an invalid option, got {other:?}"),
    };
    for h in [1, 2] {
        assert_eq!(
            bad(PeerOptions::new().hold_time(h), p),
            OptionError::Session(ConfigError::HoldTime)
        );
    }
    assert_eq!(bad(PeerOptions::new().port(0), p), OptionError::Port);
    assert_eq!(
        bad(PeerOptions::new().connect_retry_time(Duration::ZERO), p),
        OptionError::Session(ConfigError::ConnectRetryTime)
    );
    assert_eq!(
        bad(PeerOptions::new(), peer(p.remote_address, 0, 65002)),
        OptionError::Session(ConfigError::ZeroAs),
        "AS 0 is refused with or without a local address (unlike CoreBGP)"
    );
    assert_eq!(
        bad(PeerOptions::new().local_address("::1".parse().unwrap()), p),
        OptionError::AddressFamily
    );
    assert_eq!(
        bad(PeerOptions::new().md5_key(&[b'k'; 81]), p),
        OptionError::Md5KeyLength
    );
    assert_eq!(
        bad(PeerOptions::new(), peer("224.0.0.5".parse().unwrap(), 1, 2)),
        OptionError::RemoteAddress
    );
    // Hold time 0 is valid (RFC 4271 §4.2; CoreBGP crashes on it).
    s.add_peer(p, TestPlugin::default(), PeerOptions::new().hold_time(0))
        .unwrap();
    assert!(s.list_peers().len() == 1);
}

#[tokio::test]
async fn peers_exist_once_and_a_closed_server_takes_nothing() {
    let s = Server::new(addr(2, 1)).unwrap();
    let a = IpAddr::V4(addr(2, 2));
    s.add_peer(peer(a, 1, 2), TestPlugin::default(), PeerOptions::new())
        .unwrap();
    // The same peer written as an IPv4-mapped IPv6 address is the same peer.
    let mapped = IpAddr::V6(addr(2, 2).to_ipv6_mapped());
    assert!(matches!(
        s.add_peer(peer(mapped, 1, 2), TestPlugin::default(), PeerOptions::new()),
        Err(Error::PeerExists(x)) if x == a
    ));
    let info = s.get_peer(mapped).unwrap();
    assert_eq!(info.config.remote_address, a);
    assert_eq!(info.state, StateKind::Idle, "not serving yet");
    let other = IpAddr::V4(addr(2, 3));
    assert!(matches!(s.get_peer(other), Err(Error::NoSuchPeer(x)) if x == other));
    assert!(matches!(
        s.delete_peer(other).await,
        Err(Error::NoSuchPeer(_))
    ));
    s.delete_peer(a).await.unwrap();
    assert!(s.list_peers().is_empty());

    s.close().await;
    s.close().await; // idempotent
    assert!(matches!(
        s.add_peer(peer(a, 1, 2), TestPlugin::default(), PeerOptions::new()),
        Err(Error::ServerClosed)
    ));
    assert!(matches!(s.serve(vec![]).await, Err(Error::ServerClosed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_establish_exchange_updates_then_cease() {
    let pa = TestPlugin {
        queue: Some(update_queue()),
        routes: 3000,
        ..Default::default()
    };
    let p = pair(3, pa, TestPlugin::default(), fast()).await;
    wait_state(&p.a, p.b_addr, StateKind::Established).await;
    wait_state(&p.b, p.a_addr, StateKind::Established).await;
    wait_for("3000 prefixes and End-of-RIB at b", || {
        let l = p.pb.log();
        l.prefixes == 3000 && l.eor == 1
    })
    .await;
    let listed = p.a.list_peers();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, StateKind::Established);
    assert_eq!(listed[0].session.hold_time, 9);

    // a deletes b: Cease 6/3 (RFC 4486) reaches b.
    p.a.delete_peer(p.b_addr).await.unwrap();
    wait_for("b to receive 6/3", || p.pb.log().received.contains(&(6, 3))).await;
    assert_eq!(p.pa.log().sent, vec![(6, 3)]);
    assert_eq!(
        p.pa.log().closed,
        1,
        "on_close once, 1:1 with on_established"
    );
    wait_state(&p.b, p.a_addr, StateKind::Active).await;

    // Added again, it comes back; closing a sends 6/2.
    let pa2 = TestPlugin::default();
    // The port a dialled, read back from its earlier options.
    let port = listed[0].options.port_number();
    p.a.add_peer(
        peer(p.b_addr, 65001, 65002),
        pa2.clone(),
        fast().port(port).local_address(p.a_addr),
    )
    .unwrap();
    wait_state(&p.a, p.b_addr, StateKind::Established).await;
    p.a.close().await;
    wait_for("b to receive 6/2", || p.pb.log().received.contains(&(6, 2))).await;
    assert_eq!(pa2.log().sent, vec![(6, 2)]);
    p.b.close().await;
}

#[tokio::test]
async fn unknown_peers_and_wrong_local_addresses_are_closed_at_once() {
    let (known, unknown, other_local) = (addr(4, 1), addr(4, 9), addr(4, 3));
    let s = Server::new(addr(4, 2)).unwrap();
    let l1 = TcpListener::bind((addr(4, 2), 0)).await.unwrap();
    let l2 = TcpListener::bind((other_local, 0)).await.unwrap();
    let (p1, p2) = (l1.local_addr().unwrap(), l2.local_addr().unwrap());
    s.add_peer(
        peer(IpAddr::V4(known), 65002, 65001),
        TestPlugin::default(),
        fast().passive(true).local_address(IpAddr::V4(addr(4, 2))),
    )
    .unwrap();
    let sv = s.clone();
    let serving = tokio::spawn(async move { sv.serve(vec![l1, l2]).await });

    async fn closed_without_a_word(from: Ipv4Addr, to: SocketAddr) {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind((from, 0).into()).unwrap();
        let mut c: TcpStream = sock.connect(to).await.unwrap();
        let mut b = [0u8; 64];
        let n = tokio::time::timeout(T, c.read(&mut b))
            .await
            .expect("closed, not left open")
            .unwrap_or(0);
        assert_eq!(n, 0, "closed without an OPEN");
    }
    closed_without_a_word(unknown, p1).await;
    // Known peer, but to a local address other than the strict one.
    closed_without_a_word(known, p2).await;
    // Known peer to the right address: the session answers with an OPEN.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind((known, 0).into()).unwrap();
    let mut c = sock.connect(p1).await.unwrap();
    let mut b = [0u8; 19];
    tokio::time::timeout(T, c.read_exact(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((b[..16] == [0xff; 16], b[18]), (true, 1), "an OPEN");
    drop(c);
    s.close().await;
    serving.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_mapped_connections_on_a_dual_stack_listener_match_ipv4_peers() {
    let (a_ip, b_ip) = (addr(5, 1), addr(5, 2));
    let Ok(l6) = TcpListener::bind("[::]:0").await else {
        panic!("this test needs IPv6 (a dual-stack [::] listener); enable IPv6 on loopback");
    };
    let port = l6.local_addr().unwrap().port();
    let a = Server::new(a_ip).unwrap();
    let b = Server::new(b_ip).unwrap();
    let (pa, pb) = (TestPlugin::default(), TestPlugin::default());
    a.add_peer(
        peer(IpAddr::V4(b_ip), 65001, 65002),
        pa,
        fast().port(port).local_address(IpAddr::V4(a_ip)),
    )
    .unwrap();
    b.add_peer(
        peer(IpAddr::V4(a_ip), 65002, 65001),
        pb,
        fast().passive(true),
    )
    .unwrap();
    let (sa, sb) = (a.clone(), b.clone());
    tokio::spawn(async move { sa.serve(vec![]).await });
    tokio::spawn(async move { sb.serve(vec![l6]).await });
    wait_state(&b, IpAddr::V4(a_ip), StateKind::Established).await;
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_peers() {
    let Ok(l6) = TcpListener::bind("[::1]:0").await else {
        panic!("this test needs IPv6 on loopback (::1)");
    };
    let port = l6.local_addr().unwrap().port();
    let a = Server::new(addr(6, 1)).unwrap();
    let b = Server::new(addr(6, 2)).unwrap();
    let v6: IpAddr = "::1".parse().unwrap();
    let pb = TestPlugin::default();
    let pa = TestPlugin {
        queue: Some(update_queue()),
        routes: 10,
        ..Default::default()
    };
    a.add_peer(
        peer(v6, 65001, 65002),
        pa.clone(),
        fast().port(port).update_queue(pa.queue.clone().unwrap()),
    )
    .unwrap();
    b.add_peer(peer(v6, 65002, 65001), pb.clone(), fast().passive(true))
        .unwrap();
    let (sa, sb) = (a.clone(), b.clone());
    tokio::spawn(async move { sa.serve(vec![]).await });
    tokio::spawn(async move { sb.serve(vec![l6]).await });
    wait_for("10 prefixes over IPv6 transport", || {
        pb.log().prefixes == 10
    })
    .await;
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_dial_and_the_collision_arbiter_keeps_one_session() {
    let (a_ip, b_ip) = (addr(7, 1), addr(7, 2));
    let la = TcpListener::bind((a_ip, 0)).await.unwrap();
    let lb = TcpListener::bind((b_ip, 0)).await.unwrap();
    let (pa_port, pb_port) = (
        la.local_addr().unwrap().port(),
        lb.local_addr().unwrap().port(),
    );
    let a = Server::new(a_ip).unwrap();
    let b = Server::new(b_ip).unwrap();
    let (pa, pb) = (TestPlugin::default(), TestPlugin::default());
    a.add_peer(
        peer(IpAddr::V4(b_ip), 65001, 65002),
        pa.clone(),
        fast().port(pb_port).local_address(IpAddr::V4(a_ip)),
    )
    .unwrap();
    b.add_peer(
        peer(IpAddr::V4(a_ip), 65002, 65001),
        pb.clone(),
        fast().port(pa_port).local_address(IpAddr::V4(b_ip)),
    )
    .unwrap();
    let (sa, sb) = (a.clone(), b.clone());
    tokio::spawn(async move { sa.serve(vec![la]).await });
    tokio::spawn(async move { sb.serve(vec![lb]).await });
    // The legal outcomes (RFC 4271 §6.8). Usually the two arbiters agree
    // at once: both keep the connection the higher identifier (b) dialled
    // and close the other with Cease 6/7, and no session flaps. But one
    // interleaving tears down an Established session, and the RFC leaves no
    // room to avoid it: a (lower id) is in OpenConfirm on its own dial X,
    // having sent its KEEPALIVE there, when b's OPEN arrives on b's dial Y;
    // a keeps Y and closes X with 6/7 as §6.8 says. b, though, got that
    // KEEPALIVE on X before a's OPEN on Y, so X is already Established at
    // b, and "a connection collision with an existing BGP connection that
    // is in the Established state causes closing of the newly created
    // connection": b closes Y. Both connections are gone, b's session
    // flapped, and the next dial brings it up. a cannot tell, when it
    // decides, whether b has reached Established on X (b's KEEPALIVE on X
    // only says b reached OpenConfirm), so keeping X instead would flap the
    // other interleaving. So: every session that went down went down to a
    // collision Cease, and the pair settles on one Established session that
    // stays up. (A load-dependent run showed the flap: `established: 2,
    // received: [(6, 7)], closed: 1` on b.) Every interleaving is played
    // deterministically in corebgp-core/tests/session_collision.rs
    // (`every_interleaving_of_a_two_dial_collision_ends_as_rfc4271_6_8_allows`).
    let (ra, rb) = (IpAddr::V4(b_ip), IpAddr::V4(a_ip));
    wait_state(&a, ra, StateKind::Established).await;
    wait_state(&b, rb, StateKind::Established).await;
    let settled = || {
        let (la_, lb_) = (pa.log(), pb.log());
        la_.established == la_.closed + 1
            && lb_.established == lb_.closed + 1
            && a.get_peer(ra).unwrap().state == StateKind::Established
            && b.get_peer(rb).unwrap().state == StateKind::Established
    };
    wait_for("both sides to settle on one Established session", &settled).await;
    let before = (pa.log().closed, pb.log().closed);
    // Stays up: nothing is left to resolve.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(settled(), "a: {:?}, b: {:?}", *pa.log(), *pb.log());
    assert_eq!((pa.log().closed, pb.log().closed), before);
    for (name, log) in [("a", pa.log()), ("b", pb.log())] {
        for n in log.sent.iter().chain(log.received.iter()) {
            assert_eq!(*n, (6, 7), "{name}: only collision Ceases: {log:?}");
        }
        let ceases = log.sent.len() + log.received.len();
        assert!(
            log.closed <= ceases,
            "{name}: every flap is a collision Cease: {log:?}"
        );
    }
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_close_return_in_bounded_time_when_a_peer_stops_reading() {
    // a floods b with UPDATEs; b's plugin never returns from on_update, so
    // b stops reading and a's writes wedge (small socket buffers, set with
    // the socket hook, make that quick).
    let hook_calls = Arc::new(AtomicUsize::new(0));
    let hc = hook_calls.clone();
    let small_buffers: corebgp_std::SocketHook =
        Arc::new(move |fd: BorrowedFd<'_>, kind: SocketKind| {
            hc.fetch_add(1, Ordering::Relaxed);
            let s = socket2::SockRef::from(&fd);
            match kind {
                SocketKind::Outbound => s.set_send_buffer_size(4096),
                _ => s.set_recv_buffer_size(4096),
            }
        });
    let pa = TestPlugin {
        queue: Some(update_queue()),
        routes: 1000,
        flood: true,
        ..Default::default()
    };
    let pb = TestPlugin {
        hang: true,
        ..Default::default()
    };
    let p = pair(8, pa, pb, fast().hold_time(90).socket_hook(small_buffers)).await;
    wait_state(&p.a, p.b_addr, StateKind::Established).await;
    // Wedged: the queue stays full because nothing drains.
    let q = p.pa.queue.clone().unwrap();
    wait_for("a's UPDATE queue to back up", || q.queued() > 0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(q.queued() > 0, "still backed up");
    assert!(hook_calls.load(Ordering::Relaxed) >= 1);

    let bound = Duration::from_millis(SHUTDOWN_LINGER.as_millis() as u64) + STOP_GRACE;
    tokio::time::timeout(bound + Duration::from_secs(2), p.a.delete_peer(p.b_addr))
        .await
        .expect("delete_peer is bounded with a wedged peer (CoreBGP PR #69)")
        .unwrap();
    // b's plugin never returns: close aborts its task after the grace period.
    tokio::time::timeout(bound + Duration::from_secs(2), p.b.close())
        .await
        .expect("close is bounded with a plugin that never returns");
    assert!(p.b.list_peers().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_sessions_need_the_same_key_and_gtsm_sessions_come_up() {
    // Same key on both sides: up.
    let p = pair(
        9,
        TestPlugin::default(),
        TestPlugin::default(),
        fast().md5_key(b"corebgp-secret").ttl_security(true),
    )
    .await;
    wait_state(&p.a, p.b_addr, StateKind::Established).await;
    p.a.close().await;
    p.b.close().await;

    // Different keys: the kernel drops the segments; never up.
    let (a_ip, b_ip) = (IpAddr::V4(addr(10, 1)), IpAddr::V4(addr(10, 2)));
    let lb = TcpListener::bind(SocketAddr::new(b_ip, 0)).await.unwrap();
    let port = lb.local_addr().unwrap().port();
    let a = Server::new(addr(10, 1)).unwrap();
    let b = Server::new(addr(10, 2)).unwrap();
    a.add_peer(
        peer(b_ip, 65001, 65002),
        TestPlugin::default(),
        fast().port(port).local_address(a_ip).md5_key(b"one"),
    )
    .unwrap();
    b.add_peer(
        peer(a_ip, 65002, 65001),
        TestPlugin::default(),
        fast().passive(true).md5_key(b"two"),
    )
    .unwrap();
    let (sa, sb) = (a.clone(), b.clone());
    tokio::spawn(async move { sa.serve(vec![]).await });
    tokio::spawn(async move { sb.serve(vec![lb]).await });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(a.get_peer(b_ip).unwrap().state < StateKind::OpenSent);
    assert_eq!(b.get_peer(a_ip).unwrap().state, StateKind::Active);
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_update_sends_the_plugins_notification() {
    // b refuses a's UPDATE (a malformed one: IPv4 NLRI without NEXT_HOP is
    // only treat-as-withdraw, so send a broken prefix length → 3/10).
    struct Refuse(Arc<Mutex<Log>>);
    impl OpenHooks for Refuse {
        fn capabilities(&mut self, p: &PeerConfig, c: &mut CapabilitySet) {
            DefaultHooks.capabilities(p, c)
        }
    }
    impl Plugin for Refuse {
        async fn on_established(&mut self, _: &PeerConfig, _: &Negotiated) {}
        async fn on_update<'m>(
            &mut self,
            _: &PeerConfig,
            _: UpdateSections<'m>,
        ) -> Result<(), Notification<'m>> {
            Err(Notification::new(NotificationCode::Update(
                corebgp_core::wire::UpdateSubcode::OptionalAttributeError,
            )))
        }
        fn on_event(&mut self, _: &PeerConfig, e: &corebgp_core::session::Event) {
            if let corebgp_core::session::Event::NotificationSent { code, .. } = e {
                self.0
                    .lock()
                    .unwrap()
                    .sent
                    .push((code.code(), code.subcode()));
            }
        }
    }
    let pa = TestPlugin {
        queue: Some(update_queue()),
        routes: 1,
        ..Default::default()
    };
    let (a_addr, b_addr) = (IpAddr::V4(addr(11, 1)), IpAddr::V4(addr(11, 2)));
    let lb = TcpListener::bind(SocketAddr::new(b_addr, 0)).await.unwrap();
    let port = lb.local_addr().unwrap().port();
    let a = Server::new(addr(11, 1)).unwrap();
    let b = Server::new(addr(11, 2)).unwrap();
    a.add_peer(
        peer(b_addr, 65001, 65002),
        pa.clone(),
        fast()
            .port(port)
            .local_address(a_addr)
            .update_queue(pa.queue.clone().unwrap()),
    )
    .unwrap();
    let blog = Arc::new(Mutex::new(Log::default()));
    b.add_peer(
        peer(a_addr, 65002, 65001),
        Refuse(blog.clone()),
        fast().passive(true),
    )
    .unwrap();
    let (sa, sb) = (a.clone(), b.clone());
    tokio::spawn(async move { sa.serve(vec![]).await });
    tokio::spawn(async move { sb.serve(vec![lb]).await });
    wait_for("a to receive 3/9", || pa.log().received.contains(&(3, 9))).await;
    assert_eq!(blog.lock().unwrap().sent.first(), Some(&(3, 9)));
    a.close().await;
    b.close().await;
}
