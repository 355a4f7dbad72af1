//! The adapter between embassy-net stacks linked in memory: no root, no
//! kernel networking. BGP traffic comes from the test-only stand-in speaker
//! (`support/speaker.rs`) until corebgp-core's driver lands.

mod support;

use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use corebgp_core::wire::AfiSafi;
use corebgp_embassy::embassy_net::tcp::{ConnectError, TcpSocket};
use corebgp_embassy::embassy_net::{IpAddress, IpEndpoint};
use corebgp_embassy::{
    ActivePeer, BGP_PORT, Error, ExtendedSlot, Link, PassivePeer, Slot, StandardSlot, accept,
    connect, serve_passive,
};
use embassy_futures::join::join;
use embassy_futures::select::{Either, select};
use embassy_time::{Duration, Timer, with_timeout};
use support::net::{LanMemory, lan, v6};
use support::speaker::{Identity, PeerOpen, Received, StandIn, admin_shutdown};

const LIMIT: StdDuration = StdDuration::from_secs(30);

fn ident(host: u8) -> Identity {
    Identity {
        asn: 65000 + u32::from(host),
        bgp_id: Ipv4Addr::new(10, 255, 0, host),
        hold_time: 30,
    }
}

fn v4(host: u8) -> IpAddress {
    IpAddress::v4(10, 0, 0, host)
}

/// The OPEN the stand-in of `host` sends, as its peer sees it.
fn open_of(host: u8) -> PeerOpen {
    let id = ident(host);
    PeerOpen {
        my_as_field: id.asn as u16,
        asn: id.asn,
        hold_time: 30,
        bgp_id: id.bgp_id,
        four_octet_as: Some(id.asn),
        multiprotocol: vec![AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST],
    }
}

/// What the passive side saw: the peer's OPEN, its Cease, its endpoint.
type PassiveOutcome = Result<(PeerOpen, Received, IpEndpoint), String>;

/// Passive side: establish, then wait for the peer's Cease.
async fn passive_session(link: Link<'_>, host: u8) -> PassiveOutcome {
    let remote = link.remote;
    let mut s = StandIn::new(link.reader, link.writer, link.msg_buf, ident(host));
    let open = s.establish().await?;
    let cease = s.expect_notification().await?;
    Ok((open, cease, remote))
}

/// Active side: establish, then send a Cease.
async fn active_session(
    link: Link<'_>,
    host: u8,
    msg: &str,
) -> Result<(PeerOpen, IpEndpoint), String> {
    let remote = link.remote;
    let mut s = StandIn::new(link.reader, link.writer, link.msg_buf, ident(host));
    let open = s.establish().await?;
    s.cease(msg).await?;
    Ok((open, remote))
}

/// One session between two stacks, over IPv4 or IPv6 transport.
fn session_between_two_stacks(passive_addr: IpAddress, active_addr: IpAddress) {
    support::run(LIMIT, async {
        let mut mem = LanMemory::<2>::new();
        let ([a, b], net) = lan(&mut mem, [1, 2]);
        let mut slot_a = StandardSlot::new();
        let mut slot_b = StandardSlot::new();
        let (pp, ap) = (
            PassivePeer::new(active_addr, 30),
            ActivePeer::new(passive_addr, 30),
        );
        let app = async {
            let passive = accept(a, &mut slot_a, BGP_PORT, &pp, async |l| {
                passive_session(l, 1).await
            });
            let active = connect(b, &mut slot_b, &ap, async |l| {
                active_session(l, 2, "maintenance").await
            });
            join(passive, active).await
        };
        let (p, a) = match select(net, app).await {
            Either::First(()) => unreachable!("the network future never ends"),
            Either::Second(r) => r,
        };
        let (open_seen_by_a, cease, remote_of_b) = p.expect("accept").expect("passive session");
        let (open_seen_by_b, remote_of_a) = a.expect("connect").expect("active session");
        assert_eq!(open_seen_by_a, open_of(2));
        assert_eq!(open_seen_by_b, open_of(1));
        assert_eq!(cease, admin_shutdown("maintenance"));
        assert_eq!(remote_of_b.addr, active_addr);
        assert_eq!(remote_of_a, IpEndpoint::new(passive_addr, BGP_PORT));
        assert_ne!(
            remote_of_b.port, BGP_PORT,
            "the active side uses an ephemeral port"
        );
    });
}

#[test]
fn active_and_passive_establish_and_cease_over_ipv4() {
    session_between_two_stacks(v4(1), v4(2));
}

#[test]
fn active_and_passive_establish_and_cease_over_ipv6() {
    session_between_two_stacks(IpAddress::Ipv6(v6(1)), IpAddress::Ipv6(v6(2)));
}

/// Four stacks on one hub: stack 1 serves two configured peers (2 and 3)
/// with two listening sockets in one future; stack 4 is a stranger.
#[test]
fn serve_passive_matches_configured_peers_and_resets_strangers() {
    support::run(LIMIT, async {
        let mut mem = LanMemory::<4>::new();
        let ([server, p2, p3, stranger], net) = lan(&mut mem, [1, 2, 3, 4]);
        let mut slots = [StandardSlot::new(), StandardSlot::new()];
        let peers = [PassivePeer::new(v4(2), 30), PassivePeer::new(v4(3), 30)];
        let sessions: RefCell<Vec<(usize, PassiveOutcome)>> = RefCell::new(Vec::new());
        let server_fut = serve_passive(server, &mut slots, BGP_PORT, &peers, async |i, link| {
            let r = passive_session(link, 1).await;
            sessions.borrow_mut().push((i, r));
        });
        let (mut s2, mut s3, mut s4) = (
            StandardSlot::new(),
            StandardSlot::new(),
            StandardSlot::new(),
        );
        let clients = async {
            // The stranger's handshake completes (smoltcp answers SYNs on a
            // listening socket), then the adapter resets it.
            let stranger_read = connect(
                stranger,
                &mut s4,
                &ActivePeer::new(v4(1), 30),
                async |mut l| {
                    let mut buf = [0u8; 64];
                    with_timeout(Duration::from_secs(5), l.reader.read(&mut buf)).await
                },
            )
            .await;
            // Both configured peers, concurrently.
            let (r2, r3) = join(
                connect(p2, &mut s2, &ActivePeer::new(v4(1), 30), async |l| {
                    active_session(l, 2, "two").await
                }),
                connect(p3, &mut s3, &ActivePeer::new(v4(1), 30), async |l| {
                    active_session(l, 3, "three").await
                }),
            )
            .await;
            // Let the server read both Ceases.
            while sessions.borrow().len() < 2 {
                Timer::after_millis(10).await;
            }
            (stranger_read, r2, r3)
        };
        let (stranger_read, r2, r3) = match select(net, select(server_fut, clients)).await {
            Either::Second(Either::Second(r)) => r,
            Either::Second(Either::First(r)) => panic!("serve_passive returned: {r:?}"),
            Either::First(()) => unreachable!(),
        };
        match stranger_read {
            Ok(Ok(Err(_reset))) => {}
            other => panic!("the stranger must be reset, got {other:?}"),
        }
        assert_eq!(r2.expect("connect 2").expect("session 2").0, open_of(1));
        assert_eq!(r3.expect("connect 3").expect("session 3").0, open_of(1));
        let mut got = sessions.into_inner();
        got.sort_by_key(|(i, _)| *i);
        assert_eq!(
            got.len(),
            2,
            "exactly the two configured peers had sessions"
        );
        let (i0, r0) = &got[0];
        let (i1, r1) = &got[1];
        assert_eq!((*i0, *i1), (0, 1), "peer indexes follow the configuration");
        let (open, cease, remote) = r0.as_ref().expect("server session with peer 2");
        assert_eq!(
            (open, cease, remote.addr),
            (&open_of(2), &admin_shutdown("two"), v4(2))
        );
        let (open, cease, remote) = r1.as_ref().expect("server session with peer 3");
        assert_eq!(
            (open, cease, remote.addr),
            (&open_of(3), &admin_shutdown("three"), v4(3))
        );
    });
}

/// Refused and black-holed connects end with typed errors within the
/// configured bound, and the slot is reusable afterwards.
#[test]
fn connect_errors_are_bounded_and_typed() {
    support::run(LIMIT, async {
        let mut mem = LanMemory::<2>::new();
        let ([a, b], net) = lan(&mut mem, [1, 2]);
        let mut slot = Slot::<1024, 1024, 4096>::new();
        let app = async {
            // Nobody listens on 10.0.0.1:179: RST.
            let t = StdInstant::now();
            let refused = connect(b, &mut slot, &ActivePeer::new(v4(1), 30), async |_| ()).await;
            let refused_after = t.elapsed();
            // Nobody has 10.0.0.99: SYNs go unanswered.
            let mut hole = ActivePeer::new(v4(99), 30);
            hole.connect_timeout = Duration::from_millis(800);
            let t = StdInstant::now();
            let timed_out = connect(b, &mut slot, &hole, async |_| ()).await;
            let timed_out_after = t.elapsed();
            // The same slot then connects fine.
            let mut rx = [0u8; 1024];
            let mut tx = [0u8; 1024];
            let mut listener = TcpSocket::new(a, &mut rx, &mut tx);
            let server = async {
                let r = listener.accept(BGP_PORT).await;
                listener.close(); // our FIN lets the client's close complete at once
                r
            };
            let (accepted, ok) = join(server, async {
                connect(b, &mut slot, &ActivePeer::new(v4(1), 30), async |l| {
                    l.remote
                })
                .await
            })
            .await;
            (
                refused,
                refused_after,
                timed_out,
                timed_out_after,
                accepted,
                ok,
            )
        };
        let (refused, refused_after, timed_out, timed_out_after, accepted, ok) =
            match select(net, app).await {
                Either::Second(r) => r,
                Either::First(()) => unreachable!(),
            };
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
        assert_eq!(accepted, Ok(()));
        assert_eq!(ok, Ok(IpEndpoint::new(v4(1), BGP_PORT)));
    });
}

#[test]
fn slot_sizes() {
    assert_eq!(StandardSlot::RAM, 12 * 1024);
    assert_eq!(ExtendedSlot::RAM, 8 * 1024 + 65535);
    assert_eq!(size_of::<StandardSlot>(), StandardSlot::RAM);
}
