//! The adapter against a tokio speaker on a real 127.0.0.1 socket, through a
//! user-space relay (no root): `[embassy speaker, stack 10.0.0.2] -- in-memory
//! hub -- [stack 10.0.0.1: relay] <-> 127.0.0.1 <-> [tokio speaker]`.
//! The tokio side is the test-only stand-in over `embedded-io-adapters`
//! (`FromTokio`), to become corebgp-std once it exists.

mod support;

use std::net::Ipv4Addr;
use std::time::Duration as StdDuration;

use corebgp_embassy::embassy_net::tcp::TcpSocket;
use corebgp_embassy::embassy_net::{IpAddress, IpEndpoint};
use corebgp_embassy::{ActivePeer, BGP_PORT, PassivePeer, StandardSlot, accept, connect};
use embassy_futures::join::join;
use embassy_futures::select::{Either, select};
use embedded_io_adapters::tokio_1::FromTokio;
use support::net::{LanMemory, lan};
use support::speaker::{Identity, StandIn, admin_shutdown};
use support::splice::splice;
use tokio::net::{TcpListener, TcpStream};

const LIMIT: StdDuration = StdDuration::from_secs(30);
const EMBASSY: Identity = Identity {
    asn: 65001,
    bgp_id: Ipv4Addr::new(10, 0, 0, 2),
    hold_time: 30,
};
const TOKIO: Identity = Identity {
    asn: 4_200_000_000,
    bgp_id: Ipv4Addr::new(127, 0, 0, 1),
    hold_time: 60,
};

fn tokio_speaker(
    stream: TcpStream,
) -> StandIn<
    FromTokio<tokio::net::tcp::OwnedReadHalf>,
    FromTokio<tokio::net::tcp::OwnedWriteHalf>,
    Vec<u8>,
> {
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let (r, w) = stream.into_split();
    StandIn::new(FromTokio::new(r), FromTokio::new(w), vec![0u8; 4096], TOKIO)
}

/// embassy connects (active) -> relay accepts on 10.0.0.1:179 and dials the
/// tokio listener -> tokio speaker (passive). The embassy side sends the Cease.
#[test]
fn embassy_active_to_tokio_passive() {
    support::run(LIMIT, async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let tokio_addr = listener.local_addr().expect("local addr");
        let mut mem = LanMemory::<2>::new();
        let ([relay, speaker], net) = lan(&mut mem, [1, 2]);
        let (mut rrx, mut rtx) = ([0u8; 4096], [0u8; 4096]);
        let mut slot = StandardSlot::new();
        let peer = ActivePeer::new(IpAddress::v4(10, 0, 0, 1), 30);
        let app = async {
            let relay_fut = async {
                let mut s = TcpSocket::new(relay, &mut rrx, &mut rtx);
                s.accept(BGP_PORT).await.expect("relay accept");
                let out = TcpStream::connect(tokio_addr).await.expect("dial tokio");
                splice(&mut s, out).await;
            };
            let tokio_fut = async {
                let (stream, _) = listener.accept().await.expect("tokio accept");
                let mut t = tokio_speaker(stream);
                let open = t.establish().await?;
                let cease = t.expect_notification().await?;
                Ok::<_, String>((open, cease))
            };
            let embassy_fut = connect(speaker, &mut slot, &peer, async |l| {
                let mut s = StandIn::new(l.reader, l.writer, l.msg_buf, EMBASSY);
                let open = s.establish().await?;
                s.cease("embassy says bye").await?;
                Ok::<_, String>(open)
            });
            let ((_, t), e) = join(join(relay_fut, tokio_fut), embassy_fut).await;
            (t, e)
        };
        let (t, e) = match select(net, app).await {
            Either::Second(r) => r,
            Either::First(()) => unreachable!(),
        };
        let (open_seen_by_tokio, cease) = t.expect("tokio session");
        let open_seen_by_embassy = e.expect("connect").expect("embassy session");
        assert_eq!(open_seen_by_tokio.asn, 65001);
        assert_eq!(open_seen_by_tokio.bgp_id, EMBASSY.bgp_id);
        assert_eq!(open_seen_by_tokio.hold_time, 30);
        assert_eq!(cease, admin_shutdown("embassy says bye"));
        // A 4-octet AS: AS_TRANS in My AS, the real AS in the capability.
        assert_eq!(open_seen_by_embassy.my_as_field, 23456);
        assert_eq!(open_seen_by_embassy.asn, 4_200_000_000);
        assert_eq!(open_seen_by_embassy.hold_time, 60);
    });
}

/// tokio dials (active) the relay's 127.0.0.1 port forward -> relay connects
/// to 10.0.0.2:179 -> embassy accepts (passive, expects 10.0.0.1). The tokio
/// side sends the Cease.
#[test]
fn tokio_active_to_embassy_passive() {
    support::run(LIMIT, async {
        let forward = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let forward_addr = forward.local_addr().expect("local addr");
        let mut mem = LanMemory::<2>::new();
        let ([relay, speaker], net) = lan(&mut mem, [1, 2]);
        let (mut rrx, mut rtx) = ([0u8; 4096], [0u8; 4096]);
        let mut slot = StandardSlot::new();
        let peer = PassivePeer::new(IpAddress::v4(10, 0, 0, 1), 30);
        let app = async {
            let relay_fut = async {
                let (inbound, _) = forward.accept().await.expect("forward accept");
                let mut s = TcpSocket::new(relay, &mut rrx, &mut rtx);
                s.connect(IpEndpoint::new(IpAddress::v4(10, 0, 0, 2), BGP_PORT))
                    .await
                    .expect("relay dial");
                splice(&mut s, inbound).await;
            };
            let tokio_fut = async {
                let mut t = tokio_speaker(
                    TcpStream::connect(forward_addr)
                        .await
                        .expect("dial forward"),
                );
                let open = t.establish().await?;
                t.cease("tokio says bye").await?;
                Ok::<_, String>(open)
            };
            let embassy_fut = accept(speaker, &mut slot, BGP_PORT, &peer, async |l| {
                let remote = l.remote;
                let mut s = StandIn::new(l.reader, l.writer, l.msg_buf, EMBASSY);
                let open = s.establish().await?;
                let cease = s.expect_notification().await?;
                Ok::<_, String>((open, cease, remote))
            });
            let ((_, t), e) = join(join(relay_fut, tokio_fut), embassy_fut).await;
            (t, e)
        };
        let (t, e) = match select(net, app).await {
            Either::Second(r) => r,
            Either::First(()) => unreachable!(),
        };
        let open_seen_by_tokio = t.expect("tokio session");
        let (open_seen_by_embassy, cease, remote) = e.expect("accept").expect("embassy session");
        assert_eq!(open_seen_by_tokio.asn, 65001);
        assert_eq!(open_seen_by_embassy.asn, 4_200_000_000);
        assert_eq!(cease, admin_shutdown("tokio says bye"));
        assert_eq!(remote.addr, IpAddress::v4(10, 0, 0, 1));
    });
}
