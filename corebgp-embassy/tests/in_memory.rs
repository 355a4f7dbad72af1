//! corebgp-core's driver on the adapter, between embassy-net stacks linked
//! in memory: no root, no kernel networking.

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use corebgp_core::session::{DialOnly, DownReason, Peer, SessionConfig};
use corebgp_core::wire::{AfiSafi, CeaseSubcode, NotificationCode};
use corebgp_embassy::embassy_net::tcp::{ConnectError, TcpSocket};
use corebgp_embassy::embassy_net::{IpAddress, IpEndpoint};
use corebgp_embassy::{
    ActivePeer, BGP_PORT, EmbassyConnector, Error, ExtendedBuffers, Listener, PassivePeer,
    SessionBuffers, Socket, SocketBuffers, StandardBuffers, run_peer,
};
use embassy_futures::join::{join, join3};
use embassy_futures::select::{Either, select};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::signal::Signal;
use embassy_time::{Duration, with_timeout};
use std::future::Future;

use support::bgp::{Announce, Outbox, Recorder, Route, session, until};
use support::net::{LanMemory, lan, v6};

const LIMIT: StdDuration = StdDuration::from_secs(60);

type SockBufs = SocketBuffers<2048, 2048>;
type Stop = Signal<NoopRawMutex, CeaseSubcode>;

fn v4(host: u8) -> IpAddress {
    IpAddress::v4(10, 0, 0, host)
}

fn std_ip(a: IpAddress) -> IpAddr {
    match a {
        IpAddress::Ipv4(a) => IpAddr::V4(a),
        IpAddress::Ipv6(a) => IpAddr::V6(a),
    }
}

fn announce(host: u8) -> Announce {
    Announce {
        v4: vec![(Ipv4Addr::new(192, 0, host, 0), 24)],
        v6: vec![(
            Ipv6Addr::new(0x2001, 0xdb8, u16::from(host), 0, 0, 0, 0, 0),
            48,
        )],
        next_hop_v4: Some(Ipv4Addr::new(10, 0, 0, host)),
        next_hop_v6: Some(v6(host)),
    }
}

/// The routes `host` announces, as its peer decodes them.
fn routes_of(host: u8) -> Vec<Route> {
    let asn = 65000 + u32::from(host);
    vec![
        Route {
            family: AfiSafi::IPV4_UNICAST,
            prefix: format!("192.0.{host}.0/24"),
            as_path: vec![asn],
            next_hop: format!("10.0.0.{host}"),
        },
        Route {
            family: AfiSafi::IPV6_UNICAST,
            prefix: format!("2001:db8:{host}::/48"),
            as_path: vec![asn],
            next_hop: format!("fd00::{host}"),
        },
    ]
}

fn config(me: u8, remote: IpAddress, remote_host: u8, passive: bool, hold: u16) -> SessionConfig {
    session(
        std_ip(remote),
        65000 + u32::from(me),
        65000 + u32::from(remote_host),
        Ipv4Addr::new(10, 255, 0, me),
        passive,
        hold,
    )
}

fn peer(me: u8, remote: IpAddress, remote_host: u8, passive: bool, hold: u16) -> Peer {
    Peer::new(config(me, remote, remote_host, passive, hold))
}

/// An active peer without the accept path (the firmware's kind).
fn dialling_peer(me: u8, remote: IpAddress, remote_host: u8, hold: u16) -> Peer<DialOnly> {
    Peer::dial_only(config(me, remote, remote_host, false, hold))
}

fn cease(sub: CeaseSubcode) -> (u8, u8) {
    let c = NotificationCode::Cease(sub);
    (c.code(), c.subcode())
}

fn bufs() -> Box<StandardBuffers> {
    Box::new(SessionBuffers::new())
}

/// Runs `app` with the network; the network never ends.
async fn with_net<T>(net: impl Future<Output = ()>, app: impl Future<Output = T>) -> T {
    match select(net, app).await {
        Either::First(()) => unreachable!("the network future never ends"),
        Either::Second(v) => v,
    }
}

/// A (host 1, passive, behind a listener) and B (host 2, a dial-only peer) over IPv4
/// or IPv6 transport: establish, exchange an IPv4 and an IPv6 UPDATE each
/// way (built with `UpdateBuilder`, decoded with `Update`) and End-of-RIB,
/// then A closes with a Cease that B receives.
fn exchange_and_cease(a_addr: IpAddress, b_addr: IpAddress) {
    support::run(LIMIT, || async {
        let mut mem = LanMemory::<2>::new();
        let ([sa, sb], net, _) = lan(&mut mem, [1, 2]);
        let (mut la, mut lb) = (SockBufs::new(), SockBufs::new());
        let a_sockets = [Socket::new(sa, &mut la)];
        let a_peers = [PassivePeer::new(b_addr, 30)];
        let listener = Listener::new(&a_sockets, BGP_PORT, &a_peers);
        let ca = EmbassyConnector::passive(listener.inbound(0));
        let b_socket = Socket::new(sb, &mut lb);
        let cb = EmbassyConnector::active(&b_socket, ActivePeer::new(a_addr, 30));

        let (mut a, mut b) = (
            peer(1, b_addr, 2, true, 30),
            dialling_peer(2, a_addr, 1, 30),
        );
        let (oa, ob) = (Outbox::new(), Outbox::new());
        let (mut pa, mut pb) = (
            Recorder::new(&oa, announce(1), true),
            Recorder::new(&ob, announce(2), true),
        );
        let (loga, logb) = (pa.log.clone(), pb.log.clone());
        let (stop_a, stop_b) = (Stop::new(), Stop::new());
        let (mut ba, mut bb) = (bufs(), bufs());
        let script = async {
            until(|| {
                let (a, b) = (loga.borrow(), logb.borrow());
                a.routes.len() == 2
                    && b.routes.len() == 2
                    && a.end_of_rib.len() == 2
                    && b.end_of_rib.len() == 2
            })
            .await;
            stop_a.signal(CeaseSubcode::AdministrativeShutdown);
            until(|| !logb.borrow().received.is_empty()).await;
            stop_b.signal(CeaseSubcode::AdministrativeShutdown);
        };
        let speakers = join3(
            run_peer(&mut a, &ca, &mut pa, &oa, &mut ba, stop_a.wait()),
            run_peer(&mut b, &cb, &mut pb, &ob, &mut bb, stop_b.wait()),
            script,
        );
        match with_net(net, select(listener.run(), speakers)).await {
            Either::First(e) => panic!("listener failed: {e}"),
            Either::Second(_) => {}
        }
        let (a, b) = (loga.borrow(), logb.borrow());
        assert_eq!(a.routes, routes_of(2), "A decoded B's routes");
        assert_eq!(b.routes, routes_of(1), "B decoded A's routes");
        assert_eq!(a.end_of_rib, [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST]);
        assert_eq!(b.end_of_rib, [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST]);
        assert_eq!((a.established, b.established), (1, 1));
        assert_eq!((a.decode_errors, b.decode_errors), (0, 0));
        assert_eq!(a.sent, [cease(CeaseSubcode::AdministrativeShutdown)]);
        let (code, sub, _) = b.received[0].clone();
        assert_eq!((code, sub), cease(CeaseSubcode::AdministrativeShutdown));
        assert_eq!(a.closed, [DownReason::Stopped]);
        assert_eq!(
            b.closed,
            [DownReason::NotificationReceived(NotificationCode::Cease(
                CeaseSubcode::AdministrativeShutdown
            ))]
        );
    });
}

#[test]
fn two_speakers_exchange_ipv4_and_ipv6_updates_over_ipv4_then_cease() {
    exchange_and_cease(v4(1), v4(2));
}

#[test]
fn two_speakers_exchange_ipv4_and_ipv6_updates_over_ipv6_then_cease() {
    exchange_and_cease(IpAddress::Ipv6(v6(1)), IpAddress::Ipv6(v6(2)));
}

/// Hold-timer expiry on the embassy side: the wire is cut after
/// Established, both hold timers (3 s) expire (each side sends its Hold
/// Timer Expired NOTIFICATION into the void), the wire comes back, the
/// active side reconnects and both reach Established again.
#[test]
fn hold_timer_expiry_then_reconnect() {
    support::run(LIMIT, || async {
        let mut mem = LanMemory::<2>::new();
        let ([sa, sb], net, cut) = lan(&mut mem, [1, 2]);
        let (mut la0, mut la1, mut lb) = (SockBufs::new(), SockBufs::new(), SockBufs::new());
        let a_sockets = [Socket::new(sa, &mut la0), Socket::new(sa, &mut la1)];
        let a_peers = [PassivePeer::new(v4(2), 3)];
        let listener = Listener::new(&a_sockets, BGP_PORT, &a_peers);
        let ca = EmbassyConnector::passive(listener.inbound(0));
        let b_socket = Socket::new(sb, &mut lb);
        let cb = EmbassyConnector::active(&b_socket, ActivePeer::new(v4(1), 3));
        let (mut a, mut b) = (peer(1, v4(2), 2, true, 3), dialling_peer(2, v4(1), 1, 3));
        let (oa, ob) = (Outbox::new(), Outbox::new());
        let (mut pa, mut pb) = (
            Recorder::new(&oa, Announce::default(), false),
            Recorder::new(&ob, Announce::default(), false),
        );
        let (loga, logb) = (pa.log.clone(), pb.log.clone());
        let (stop_a, stop_b) = (Stop::new(), Stop::new());
        let (mut ba, mut bb) = (bufs(), bufs());
        let script = async {
            until(|| loga.borrow().established == 1 && logb.borrow().established == 1).await;
            cut.set(true);
            let t = StdInstant::now();
            until(|| !loga.borrow().closed.is_empty() && !logb.borrow().closed.is_empty()).await;
            let expired_after = t.elapsed();
            cut.set(false);
            until(|| loga.borrow().established == 2 && logb.borrow().established == 2).await;
            stop_a.signal(CeaseSubcode::AdministrativeShutdown);
            stop_b.signal(CeaseSubcode::AdministrativeShutdown);
            expired_after
        };
        let speakers = join3(
            run_peer(&mut a, &ca, &mut pa, &oa, &mut ba, stop_a.wait()),
            run_peer(&mut b, &cb, &mut pb, &ob, &mut bb, stop_b.wait()),
            script,
        );
        let expired_after = match with_net(net, select(listener.run(), speakers)).await {
            Either::First(e) => panic!("listener failed: {e}"),
            Either::Second((_, _, t)) => t,
        };
        assert!(
            (StdDuration::from_millis(2500)..StdDuration::from_millis(4500))
                .contains(&expired_after),
            "hold timers of 3 s expired after {expired_after:?}"
        );
        let hold_expired = NotificationCode::HOLD_TIMER_EXPIRED;
        for log in [&loga, &logb] {
            let log = log.borrow();
            assert_eq!(log.closed[0], DownReason::NotificationSent(hold_expired));
            assert_eq!(log.sent[0], (hold_expired.code(), hold_expired.subcode()));
            assert_eq!(log.established, 2);
        }
    });
}

/// Peer reset: the remote speaker resets the session (Cease, Administrative
/// Reset) and restarts; later it vanishes without a NOTIFICATION (its
/// connection just closes) and restarts again. The embassy side (passive)
/// sees both, and is Established again each time.
#[test]
fn peer_reset_and_reconnect() {
    support::run(LIMIT, || async {
        let mut mem = LanMemory::<2>::new();
        let ([sa, sb], net, _) = lan(&mut mem, [1, 2]);
        let (mut la0, mut la1, mut lb) = (SockBufs::new(), SockBufs::new(), SockBufs::new());
        let a_sockets = [Socket::new(sa, &mut la0), Socket::new(sa, &mut la1)];
        let a_peers = [PassivePeer::new(v4(2), 30)];
        let listener = Listener::new(&a_sockets, BGP_PORT, &a_peers);
        let ca = EmbassyConnector::passive(listener.inbound(0));
        let b_socket = Socket::new(sb, &mut lb);
        let cb = EmbassyConnector::active(&b_socket, ActivePeer::new(v4(1), 30));
        let mut a = peer(1, v4(2), 2, true, 30);
        let (oa, ob) = (Outbox::new(), Outbox::new());
        let mut pa = Recorder::new(&oa, announce(1), false);
        let loga = pa.log.clone();
        let stop_a = Stop::new();
        let (mut ba, mut bb) = (bufs(), bufs());
        let remote = async {
            // 1. Established, then B resets the session with a Cease.
            let mut pb = Recorder::new(&ob, announce(2), false);
            let logb = pb.log.clone();
            let stop_b = Stop::new();
            let mut b = peer(2, v4(1), 1, false, 30);
            join(
                run_peer(&mut b, &cb, &mut pb, &ob, &mut bb, stop_b.wait()),
                async {
                    until(|| logb.borrow().routes.len() == 1).await;
                    stop_b.signal(CeaseSubcode::AdministrativeReset);
                },
            )
            .await;
            until(|| loga.borrow().closed.len() == 1).await;
            // 2. B restarts; Established again; then B vanishes.
            let mut pb = Recorder::new(&ob, announce(2), false);
            let logb = pb.log.clone();
            let mut b = peer(2, v4(1), 1, false, 30);
            let never = core::future::pending::<CeaseSubcode>();
            select(
                run_peer(&mut b, &cb, &mut pb, &ob, &mut bb, never),
                until(|| loga.borrow().established == 2 && logb.borrow().routes.len() == 1),
            )
            .await;
            until(|| loga.borrow().closed.len() == 2).await;
            // 3. B restarts once more.
            let mut pb = Recorder::new(&ob, announce(2), false);
            let logb = pb.log.clone();
            let stop_b = Stop::new();
            let mut b = peer(2, v4(1), 1, false, 30);
            join(
                run_peer(&mut b, &cb, &mut pb, &ob, &mut bb, stop_b.wait()),
                async {
                    until(|| loga.borrow().established == 3 && logb.borrow().routes.len() == 1)
                        .await;
                    stop_a.signal(CeaseSubcode::AdministrativeShutdown);
                    until(|| !logb.borrow().received.is_empty()).await;
                    stop_b.signal(CeaseSubcode::AdministrativeShutdown);
                },
            )
            .await;
        };
        let speakers = join(
            run_peer(&mut a, &ca, &mut pa, &oa, &mut ba, stop_a.wait()),
            remote,
        );
        if let Either::First(e) = with_net(net, select(listener.run(), speakers)).await {
            panic!("listener failed: {e}");
        }
        let a = loga.borrow();
        assert_eq!(a.established, 3);
        assert_eq!(
            a.closed,
            [
                DownReason::NotificationReceived(NotificationCode::Cease(
                    CeaseSubcode::AdministrativeReset
                )),
                DownReason::TransportClosed,
                DownReason::Stopped,
            ]
        );
        assert_eq!(a.received.len(), 1);
        let b_route = routes_of(2).swap_remove(0);
        assert_eq!(a.routes, [b_route.clone(), b_route.clone(), b_route]);
    });
}

/// Four stacks on one hub: stack 1 serves two configured peers (2 and 3)
/// through one listener with three sockets (one spare, so that a stranger
/// finds one listening) and two drivers, all in one future; stack 4 is a
/// stranger: its handshake completes, then it is reset.
#[test]
fn one_listener_serves_two_peers_and_resets_strangers() {
    support::run(LIMIT, || async {
        let mut mem = LanMemory::<4>::new();
        let ([server, s2, s3, stranger], net, _) = lan(&mut mem, [1, 2, 3, 4]);
        let (mut l0, mut l1, mut l2, mut b2, mut b3) = (
            SockBufs::new(),
            SockBufs::new(),
            SockBufs::new(),
            SockBufs::new(),
            SockBufs::new(),
        );
        let sockets = [
            Socket::new(server, &mut l0),
            Socket::new(server, &mut l1),
            Socket::new(server, &mut l2),
        ];
        let peers = [PassivePeer::new(v4(2), 30), PassivePeer::new(v4(3), 30)];
        let listener = Listener::new(&sockets, BGP_PORT, &peers);
        let (c12, c13) = (
            EmbassyConnector::passive(listener.inbound(0)),
            EmbassyConnector::passive(listener.inbound(1)),
        );
        let (sock2, sock3) = (Socket::new(s2, &mut b2), Socket::new(s3, &mut b3));
        let c2 = EmbassyConnector::active(&sock2, ActivePeer::new(v4(1), 30));
        let c3 = EmbassyConnector::active(&sock3, ActivePeer::new(v4(1), 30));
        let (mut p12, mut p13) = (peer(1, v4(2), 2, true, 30), peer(1, v4(3), 3, true, 30));
        let (mut p2, mut p3) = (peer(2, v4(1), 1, false, 30), peer(3, v4(1), 1, false, 30));
        let outboxes: [Outbox; 4] = std::array::from_fn(|_| Outbox::new());
        let [o12, o13, o2, o3] = &outboxes;
        let mut r12 = Recorder::new(o12, Announce::default(), false);
        let mut r13 = Recorder::new(o13, Announce::default(), false);
        let mut r2 = Recorder::new(o2, announce(2), false);
        let mut r3 = Recorder::new(o3, announce(3), false);
        let (log12, log13) = (r12.log.clone(), r13.log.clone());
        let stops: [Stop; 4] = std::array::from_fn(|_| Stop::new());
        let mut memory: [Box<StandardBuffers>; 4] = std::array::from_fn(|_| bufs());
        let [m12, m13, m2, m3] = &mut memory;
        let script = async {
            // The stranger's handshake completes (smoltcp answers SYNs on a
            // listening socket), then the adapter resets it.
            let (mut rx, mut tx) = ([0u8; 256], [0u8; 256]);
            let mut s = TcpSocket::new(stranger, &mut rx, &mut tx);
            s.connect(IpEndpoint::new(v4(1), BGP_PORT))
                .await
                .expect("stranger's handshake");
            let mut buf = [0u8; 64];
            let stranger_read = with_timeout(Duration::from_secs(5), s.read(&mut buf)).await;
            until(|| log12.borrow().routes.len() == 1 && log13.borrow().routes.len() == 1).await;
            for s in &stops {
                s.signal(CeaseSubcode::AdministrativeShutdown);
            }
            stranger_read
        };
        let [st12, st13, st2, st3] = &stops;
        let drivers = join(
            join(
                run_peer(&mut p12, &c12, &mut r12, o12, m12, st12.wait()),
                run_peer(&mut p13, &c13, &mut r13, o13, m13, st13.wait()),
            ),
            join(
                run_peer(&mut p2, &c2, &mut r2, o2, m2, st2.wait()),
                run_peer(&mut p3, &c3, &mut r3, o3, m3, st3.wait()),
            ),
        );
        let stranger_read = match with_net(net, select(listener.run(), join(drivers, script))).await
        {
            Either::First(e) => panic!("listener failed: {e}"),
            Either::Second((_, r)) => r,
        };
        assert!(
            matches!(stranger_read, Ok(Err(_)) | Ok(Ok(0))),
            "the stranger must be reset, got {stranger_read:?}"
        );
        assert_eq!(log12.borrow().routes, [routes_of(2).swap_remove(0)]);
        assert_eq!(log13.borrow().routes, [routes_of(3).swap_remove(0)]);
        assert_eq!(log12.borrow().established, 1);
        assert_eq!(log13.borrow().established, 1);
    });
}

/// Refused and black-holed connects end with typed errors within the
/// configured bound, and the socket is reusable afterwards.
#[test]
fn connect_errors_are_bounded_and_typed() {
    support::run(LIMIT, || async {
        let mut mem = LanMemory::<2>::new();
        let ([a, b], net, _) = lan(&mut mem, [1, 2]);
        let mut mb = SocketBuffers::<1024, 1024>::new();
        let socket = Socket::new(b, &mut mb);
        let app = async {
            // Nobody listens on 10.0.0.1:179: RST.
            let t = StdInstant::now();
            let refused = socket.connect(&ActivePeer::new(v4(1), 30)).await.map(drop);
            let refused_after = t.elapsed();
            // Nobody has 10.0.0.99: SYNs go unanswered.
            let mut hole = ActivePeer::new(v4(99), 30);
            hole.connect_timeout = Duration::from_millis(800);
            let t = StdInstant::now();
            let timed_out = socket.connect(&hole).await.map(drop);
            let timed_out_after = t.elapsed();
            let idle = socket.is_idle();
            // The same socket then connects fine.
            let (mut rx, mut tx) = ([0u8; 1024], [0u8; 1024]);
            let mut listener = TcpSocket::new(a, &mut rx, &mut tx);
            let server = async {
                let r = listener.accept(BGP_PORT).await;
                listener.close();
                r
            };
            let (accepted, ok) = join(server, async {
                let c = socket.connect(&ActivePeer::new(v4(1), 30)).await?;
                // While lent out, the socket is busy.
                let busy = socket.connect(&ActivePeer::new(v4(1), 30)).await.map(drop);
                Ok::<_, Error>((c.remote(), busy))
            })
            .await;
            (
                refused,
                refused_after,
                timed_out,
                timed_out_after,
                idle,
                accepted,
                ok,
            )
        };
        let (refused, refused_after, timed_out, timed_out_after, idle, accepted, ok) =
            with_net(net, app).await;
        assert_eq!(refused, Err(Error::Connect(ConnectError::ConnectionReset)));
        assert!(
            refused_after < StdDuration::from_millis(500),
            "refusal took {refused_after:?}"
        );
        assert_eq!(timed_out, Err(Error::ConnectTimeout));
        assert!(
            (StdDuration::from_millis(790)..StdDuration::from_millis(2000))
                .contains(&timed_out_after),
            "timeout took {timed_out_after:?}"
        );
        assert!(idle, "a failed connect puts the socket back");
        assert_eq!(accepted, Ok(()));
        assert_eq!(
            ok,
            Ok((IpEndpoint::new(v4(1), BGP_PORT), Err(Error::SocketBusy)))
        );
    });
}

#[test]
fn buffer_sizes() {
    assert_eq!(StandardBuffers::RAM, 3 * 4096);
    assert_eq!(size_of::<StandardBuffers>(), StandardBuffers::RAM);
    assert_eq!(ExtendedBuffers::RAM, 3 * 65535);
    assert_eq!(SocketBuffers::<2048, 2048>::RAM, 4096);
    assert_eq!(size_of::<SocketBuffers<2048, 1024>>(), 3072);
}
