//! The adapter against a tokio speaker on a real 127.0.0.1 socket, through a
//! user-space relay (no root): `[embassy speaker, stack 10.0.0.2] -- in-memory
//! hub -- [stack 10.0.0.1: relay] <-> 127.0.0.1 <-> [tokio speaker]`.
//! Both speakers run corebgp-core's shared driver: the embassy one through
//! this adapter, the tokio one over tokio TCP (`support/tokio_side.rs`).

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration as StdDuration;

use corebgp_core::driver::run;
use corebgp_core::session::{DownReason, Peer};
use corebgp_core::wire::{AfiSafi, CeaseSubcode, NotificationCode};
use corebgp_embassy::embassy_net::tcp::TcpSocket;
use corebgp_embassy::embassy_net::{IpAddress, IpEndpoint};
use corebgp_embassy::{
    ActivePeer, BGP_PORT, EmbassyConnector, Listener, PassivePeer, SessionBuffers, Socket,
    SocketBuffers, StandardBuffers, run_peer,
};
use embassy_futures::join::join3;
use embassy_futures::select::{Either, select};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::signal::Signal;
use support::bgp::{Announce, Outbox, Recorder, Route, session, until};
use support::net::{LanMemory, lan};
use support::splice::splice;
use support::tokio_side::{TokioClock, TokioConnector};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: StdDuration = StdDuration::from_secs(30);
const EMBASSY_AS: u32 = 65001;
const TOKIO_AS: u32 = 4_200_000_000;

type Stop = Signal<NoopRawMutex, CeaseSubcode>;

fn embassy_peer(passive: bool) -> Peer {
    Peer::new(session(
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        EMBASSY_AS,
        TOKIO_AS,
        Ipv4Addr::new(10, 0, 0, 2),
        passive,
        30,
    ))
}

fn tokio_peer(passive: bool) -> Peer {
    Peer::new(session(
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        TOKIO_AS,
        EMBASSY_AS,
        Ipv4Addr::new(127, 0, 0, 1),
        passive,
        60,
    ))
}

fn announce(third: u8) -> Announce {
    Announce {
        v4: vec![(Ipv4Addr::new(198, 51, third, 0), 24)],
        next_hop_v4: Some(Ipv4Addr::new(10, 0, 0, third)),
        ..Announce::default()
    }
}

fn route(third: u8, asn: u32) -> Route {
    Route {
        family: AfiSafi::IPV4_UNICAST,
        prefix: format!("198.51.{third}.0/24"),
        as_path: vec![asn],
        next_hop: format!("10.0.0.{third}"),
    }
}

/// One session embassy <-> tokio; `embassy_dials` picks the direction. The
/// dialling side closes with a Cease once both have the other's route.
fn embassy_and_tokio(embassy_dials: bool) {
    support::run(LIMIT, || async move {
        let tokio_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let tokio_addr = tokio_listener.local_addr().expect("local addr");
        let mut mem = LanMemory::<2>::new();
        let ([relay, speaker], net, _) = lan(&mut mem, [1, 2]);
        let (mut rrx, mut rtx) = ([0u8; 4096], [0u8; 4096]);
        let (mut listen_mem, mut dial_mem) = (
            SocketBuffers::<2048, 2048>::new(),
            SocketBuffers::<2048, 2048>::new(),
        );
        let sock = [Socket::new(speaker, &mut listen_mem)];
        let dial_sock = Socket::new(speaker, &mut dial_mem);
        let passive_peers = [PassivePeer::new(IpAddress::v4(10, 0, 0, 1), 30)];
        let listener = Listener::new(&sock, BGP_PORT, &passive_peers);
        // One connector type for both directions, chosen at run time.
        let connector = if embassy_dials {
            let peer = ActivePeer::new(IpAddress::v4(10, 0, 0, 1), 30);
            EmbassyConnector::new(Some((&dial_sock, peer)), None)
        } else {
            EmbassyConnector::new(None, Some(listener.inbound(0)))
        };
        // The tokio side: passive on its listener, or dialling the relay's
        // 127.0.0.1 forward.
        let (tokio_connector, forward) = if embassy_dials {
            let c = TokioConnector {
                dial: None,
                listen: Some(tokio_listener),
            };
            (c, None)
        } else {
            let c = TokioConnector {
                dial: Some(tokio_addr),
                listen: None,
            };
            (c, Some(tokio_listener))
        };
        let relay_fut = async {
            let mut s = TcpSocket::new(relay, &mut rrx, &mut rtx);
            match forward {
                None => {
                    // embassy -> 10.0.0.1:179 -> relay -> tokio listener
                    s.accept(BGP_PORT).await.expect("relay accept");
                    let out = TcpStream::connect(tokio_addr).await.expect("dial tokio");
                    splice(&mut s, out).await;
                }
                Some(fwd) => {
                    // tokio -> 127.0.0.1 forward -> relay -> 10.0.0.2:179
                    let (inbound, _) = fwd.accept().await.expect("forward accept");
                    s.connect(IpEndpoint::new(IpAddress::v4(10, 0, 0, 2), BGP_PORT))
                        .await
                        .expect("relay dial");
                    splice(&mut s, inbound).await;
                }
            }
            std::future::pending::<()>().await
        };

        let (mut ep, mut tp) = (embassy_peer(!embassy_dials), tokio_peer(embassy_dials));
        let (eo, to) = (Outbox::new(), Outbox::new());
        let mut eplug = Recorder::new(&eo, announce(2), false);
        let mut tplug = Recorder::new(&to, announce(1), false);
        let (elog, tlog) = (eplug.log.clone(), tplug.log.clone());
        let (estop, tstop) = (Stop::new(), Stop::new());
        let mut ebufs: Box<StandardBuffers> = Box::new(SessionBuffers::new());
        let (mut trx0, mut trx1, mut ttx) = (vec![0u8; 4096], vec![0u8; 4096], vec![0u8; 4096]);
        let tclock = TokioClock::new();
        let (dialler, listener_side) = if embassy_dials {
            (&estop, &tstop)
        } else {
            (&tstop, &estop)
        };
        let script = async {
            until(|| elog.borrow().routes.len() == 1 && tlog.borrow().routes.len() == 1).await;
            dialler.signal(CeaseSubcode::AdministrativeShutdown);
            let other = if embassy_dials { &tlog } else { &elog };
            until(|| !other.borrow().received.is_empty()).await;
            listener_side.signal(CeaseSubcode::AdministrativeShutdown);
        };
        let speakers = join3(
            run_peer(
                &mut ep,
                &connector,
                &mut eplug,
                &eo,
                &mut ebufs,
                estop.wait(),
            ),
            async {
                tp.start(corebgp_core::session::Instant::ZERO);
                let bufs = corebgp_core::driver::Buffers {
                    rx: [&mut trx0, &mut trx1],
                    tx: &mut ttx,
                };
                run(
                    &mut tp,
                    &tokio_connector,
                    &tclock,
                    &mut tplug,
                    &to,
                    bufs,
                    tstop.wait(),
                )
                .await
            },
            script,
        );
        let app = select(relay_fut, select(listener.run(), speakers));
        match select(net, app).await {
            Either::Second(Either::Second(Either::Second(_))) => {}
            Either::Second(Either::Second(Either::First(e))) => panic!("listener: {e}"),
            _ => unreachable!("network and relay never end"),
        }
        let (e, t) = (elog.borrow(), tlog.borrow());
        assert_eq!(
            e.routes,
            [route(1, TOKIO_AS)],
            "embassy decoded tokio's route"
        );
        assert_eq!(
            t.routes,
            [route(2, EMBASSY_AS)],
            "tokio decoded embassy's route"
        );
        assert_eq!((e.established, t.established), (1, 1));
        let received = if embassy_dials {
            &t.received
        } else {
            &e.received
        };
        let c = NotificationCode::Cease(CeaseSubcode::AdministrativeShutdown);
        assert_eq!((received[0].0, received[0].1), (c.code(), c.subcode()));
        let closed = if embassy_dials { &t.closed } else { &e.closed };
        assert_eq!(closed[0], DownReason::NotificationReceived(c));
    });
}

/// embassy dials (active) -> relay on 10.0.0.1:179 -> tokio listener
/// (passive). The embassy side sends the Cease.
#[test]
fn embassy_active_to_tokio_passive() {
    embassy_and_tokio(true);
}

/// tokio dials (active) the relay's 127.0.0.1 forward -> relay connects to
/// 10.0.0.2:179 -> embassy listener (passive). The tokio side sends the
/// Cease.
#[test]
fn tokio_active_to_embassy_passive() {
    embassy_and_tokio(false);
}
