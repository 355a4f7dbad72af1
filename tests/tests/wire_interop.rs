//! Wire-level interoperability: corebgp-core's codec against BIRD 2, GoBGP 3,
//! FRR 8 and ExaBGP 4, through the blocking test speaker of
//! `corebgp_tests::speaker` (a test stand-in, not the session FSM).
//!
//! Every daemon runs on its own loopback addresses and ports, started and
//! killed by the test. A missing daemon fails the test with the command that
//! installs it.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use corebgp_core::wire::{
    AS_TRANS, AfiSafi, Capability, CeaseSubcode, GracefulRestart, HeaderSubcode, List,
    MAX_MESSAGE_LEN, Message, Notification, NotificationCode, OpenBuilder, RouteRefresh,
    UpdateSections, encode_update_sections,
};
use corebgp_tests::daemons::{self, Daemon, DaemonConfig, DaemonKind, Direction};
use corebgp_tests::speaker::{self, RecvError, Speaker};
use corebgp_tests::update::{self, decode_update};

/// Our AS (2-octet, so AS_PATHs carry it in 4-octet form after negotiation).
const OUR_AS: u32 = 65001;
/// The daemons' AS: 4-octet, so their OPEN carries AS_TRANS.
const DAEMON_AS: u32 = 4_200_000_002;
/// Short enough that keepalives are actually exchanged during a test.
const HOLD: u16 = 9;
const T: Duration = Duration::from_secs(20);

const DAEMON_V4: &str = "203.0.113.0/24";
const DAEMON_V6: &str = "2001:db8:1::/48";
const OUR_V4: &str = "198.51.100.0/24";
const OUR_V6: &str = "2001:db8:100::/48";
/// GoBGP treats 127.x next hops as invalid: use documentation addresses.
const OUR_NEXT_HOP_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const OUR_NEXT_HOP_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const SHUTDOWN_TEXT: &str = "corebgp interop test: goodbye";

fn our_capabilities() -> [Capability<'static>; 5] {
    [
        Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
        Capability::MultiProtocol(AfiSafi::IPV6_UNICAST),
        Capability::FourOctetAs(OUR_AS),
        Capability::RouteRefresh,
        // Graceful Restart with no families (RFC 4724 §3): we want End-of-RIB
        // markers without restart semantics.
        Capability::GracefulRestart(GracefulRestart {
            restart_state: false,
            notification: false,
            restart_time: 0,
            families: List::Items(&[]),
        }),
    ]
}

fn our_open<'c>(caps: &'c [Capability<'c>], router_id: Ipv4Addr) -> OpenBuilder<'c> {
    OpenBuilder {
        my_as: OpenBuilder::my_as_field(OUR_AS),
        hold_time: HOLD,
        bgp_id: router_id,
        capabilities: caps,
        force_extended_parameters: false,
    }
}

fn config() -> DaemonConfig {
    DaemonConfig::new(DAEMON_AS, OUR_AS)
        .hold_time(HOLD)
        .ipv4_route(DAEMON_V4)
        .ipv6_route(DAEMON_V6)
}

fn our_router_id(cfg: &DaemonConfig) -> Ipv4Addr {
    let [_, a, b, c] = cfg.peer_address.octets();
    Ipv4Addr::new(10, a, b, c)
}

/// Establishes the TCP connection in the requested direction.
fn connect(d: &dyn Daemon) -> Speaker {
    let c = d.config();
    if c.passive {
        Speaker::connect(c.peer_address, c.endpoint(), None, T)
            .unwrap_or_else(|e| panic!("connecting to {}: {e}\n{}", c.endpoint(), d.diagnostics()))
    } else {
        unreachable!("active daemons are accepted from a listener bound before the daemon starts")
    }
}

/// Asserts the daemon's OPEN, as parsed by corebgp-core.
fn check_open(kind: DaemonKind, msg: &[u8], cfg: &DaemonConfig) {
    let Message::Open(o) = speaker::parse(msg) else {
        panic!("not an OPEN: {msg:02x?}")
    };
    assert_eq!(o.version, 4, "{kind:?}");
    assert_eq!(
        o.my_as, AS_TRANS,
        "{kind:?}: a 4-octet AS is sent as AS_TRANS in My AS"
    );
    assert_eq!(o.four_octet_as(), Some(DAEMON_AS), "{kind:?}");
    assert_eq!(o.asn(), DAEMON_AS, "{kind:?}");
    assert_eq!(o.bgp_id, cfg.router_id, "{kind:?}");
    assert_eq!(o.hold_time, cfg.hold_time, "{kind:?}");
    let caps: Vec<Capability<'_>> = o
        .capabilities()
        .map(|c| c.unwrap_or_else(|e| panic!("{kind:?}: corebgp-core rejects a capability: {e:?}")))
        .collect();
    for want in [
        Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
        Capability::MultiProtocol(AfiSafi::IPV6_UNICAST),
        Capability::FourOctetAs(DAEMON_AS),
        Capability::RouteRefresh,
    ] {
        assert!(
            caps.contains(&want),
            "{kind:?}: {want:?} missing from {caps:?}"
        );
    }
    // The typed view and the raw view agree.
    assert_eq!(o.raw_capabilities().count(), caps.len(), "{kind:?}");
    assert!(o.has_capability(65), "{kind:?}");
}

/// What arrived from the daemon up to its End-of-RIB markers.
#[derive(Default, Debug)]
struct Received {
    v4: Vec<String>,
    v6: Vec<String>,
    next_hops_v6: Vec<Ipv6Addr>,
    as_paths: Vec<Vec<u32>>,
    eor_v4: bool,
    eor_v6: bool,
    keepalives: usize,
}

fn receive_initial_table(kind: DaemonKind, s: &mut Speaker, d: &dyn Daemon) -> Received {
    let mut r = Received::default();
    let ctx = || d.diagnostics();
    s.recv_until(
        T,
        "the daemon's routes and both End-of-RIB markers",
        &ctx,
        |m| {
            match speaker::parse(m) {
                Message::Update(u) => {
                    let du = decode_update(&u, true)
                        .unwrap_or_else(|e| panic!("{kind:?}: bad UPDATE {e}: {m:02x?}"));
                    match du.end_of_rib {
                        Some((1, 1)) => r.eor_v4 = true,
                        Some((2, 1)) => r.eor_v6 = true,
                        Some(other) => {
                            panic!("{kind:?}: End-of-RIB for unexpected family {other:?}")
                        }
                        None => {
                            r.v4.extend(du.announced_v4);
                            r.v6.extend(du.announced_v6);
                            r.next_hops_v6.extend(du.next_hop_v6);
                            r.as_paths.push(du.as_path);
                        }
                    }
                }
                Message::Keepalive => r.keepalives += 1,
                Message::Notification(n) => {
                    panic!("{kind:?} sent NOTIFICATION {n}\n{}", d.diagnostics())
                }
                other => panic!("{kind:?}: unexpected {other:?}"),
            }
            (r.eor_v4 && r.eor_v6).then_some(())
        },
    );
    r
}

fn send_update(s: &mut Speaker, sections: &UpdateSections<'_>) {
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = encode_update_sections(sections, &mut buf, MAX_MESSAGE_LEN).expect("encode UPDATE");
    // The codec reads back what it wrote.
    match speaker::parse(&buf[..n]) {
        Message::Update(u) => assert_eq!(&u, sections),
        other => panic!("re-parsed as {other:?}"),
    }
    s.send(&buf[..n]).expect("send UPDATE");
}

fn send_our_routes(s: &mut Speaker) {
    let mut attrs = update::origin_igp();
    attrs.extend(update::as_path_sequence(&[OUR_AS]));
    attrs.extend(update::next_hop(OUR_NEXT_HOP_V4));
    let nlri = update::encode_prefixes(&[OUR_V4]);
    send_update(
        s,
        &UpdateSections {
            withdrawn: &[],
            attributes: &attrs,
            nlri: &nlri,
        },
    );

    let mut attrs6 = update::origin_igp();
    attrs6.extend(update::as_path_sequence(&[OUR_AS]));
    attrs6.extend(update::mp_reach_ipv6(OUR_NEXT_HOP_V6, &[OUR_V6]));
    send_update(
        s,
        &UpdateSections {
            withdrawn: &[],
            attributes: &attrs6,
            nlri: &[],
        },
    );

    send_update(s, &UpdateSections::default());
    let eor6 = update::mp_unreach_end_of_rib(2, 1);
    send_update(
        s,
        &UpdateSections {
            withdrawn: &[],
            attributes: &eor6,
            nlri: &[],
        },
    );
}

/// Our Cease 6/2: with an RFC 9003 shutdown communication, except for
/// ExaBGP 4.2, which cannot decode one (see `exabgp_rejects_shutdown_communication`).
fn encode_cease(kind: DaemonKind, buf: &mut [u8]) -> usize {
    if kind == DaemonKind::ExaBgp {
        let n = Notification::cease(CeaseSubcode::AdministrativeShutdown)
            .encode(buf)
            .expect("encode Cease");
        assert_eq!(&buf[16..n], &[0, 21, 3, 6, 2]);
        return n;
    }
    let n = Notification::encode_shutdown(CeaseSubcode::AdministrativeShutdown, SHUTDOWN_TEXT, buf)
        .expect("encode shutdown");
    match speaker::parse(&buf[..n]) {
        Message::Notification(n) => assert_eq!(n.shutdown_communication(), Some(Ok(SHUTDOWN_TEXT))),
        other => panic!("{other:?}"),
    }
    n
}

/// The whole exchange: OPEN, KEEPALIVE, the daemon's table and End-of-RIBs,
/// our UPDATEs into the daemon's RIB, then Cease 6/2 with a shutdown
/// communication.
fn full_exchange(kind: DaemonKind, daemon_passive: bool) {
    let cfg = config().passive(daemon_passive);
    let listener = (!daemon_passive).then(|| speaker::listen(cfg.peer_endpoint()));
    let d = daemons::start(kind, cfg.clone());
    let d = d.as_ref();
    let ctx = || d.diagnostics();
    let mut s = match &listener {
        Some(l) => Speaker::accept(l, T)
            .unwrap_or_else(|e| panic!("{kind:?} did not dial us: {e}\n{}", ctx())),
        None => connect(d),
    };
    assert_eq!(*s.local_addr().ip(), cfg.peer_address);
    assert_eq!(*s.peer_addr().ip(), cfg.address);

    let caps = our_capabilities();
    let theirs = s.handshake(&our_open(&caps, our_router_id(&cfg)), T, &ctx);
    check_open(kind, &theirs, &cfg);
    s.start_keepalives(Duration::from_secs(u64::from(HOLD / 3)));
    d.wait_established(T);

    let r = receive_initial_table(kind, &mut s, d);
    assert_eq!(r.v4, [DAEMON_V4], "{kind:?}: {r:?}");
    assert_eq!(r.v6, [DAEMON_V6], "{kind:?}: {r:?}");
    assert!(
        !r.next_hops_v6.is_empty(),
        "{kind:?}: IPv6 routes need an MP_REACH next hop"
    );
    for p in &r.as_paths {
        assert_eq!(
            p,
            &[DAEMON_AS],
            "{kind:?}: eBGP AS_PATH is the daemon's (4-octet) AS"
        );
    }

    // ROUTE-REFRESH (RFC 2918) encoded by corebgp-core: the daemon sends its
    // IPv4 table again.
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = RouteRefresh::request(AfiSafi::IPV4_UNICAST)
        .encode(&mut buf)
        .expect("encode ROUTE-REFRESH");
    assert_eq!(&buf[16..n], &[0, 23, 5, 0, 1, 0, 1]);
    s.send(&buf[..n]).expect("send ROUTE-REFRESH");
    s.recv_until(
        T,
        "the IPv4 route again after ROUTE-REFRESH",
        &ctx,
        |m| match speaker::parse(m) {
            Message::Update(u) => {
                let du = decode_update(&u, true).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
                du.announced_v4.iter().any(|p| p == DAEMON_V4).then_some(())
            }
            Message::Keepalive => None,
            other => panic!(
                "{kind:?}: unexpected {other:?} after ROUTE-REFRESH\n{}",
                ctx()
            ),
        },
    );

    send_our_routes(&mut s);
    let v4 = d.wait_route(OUR_V4, T);
    assert_eq!(v4.next_hop, OUR_NEXT_HOP_V4.to_string(), "{kind:?}: {v4:?}");
    assert!(v4.as_path.contains(&OUR_AS.to_string()), "{kind:?}: {v4:?}");
    let v6 = d.wait_route(OUR_V6, T);
    assert_eq!(v6.next_hop, OUR_NEXT_HOP_V6.to_string(), "{kind:?}: {v6:?}");

    // A KEEPALIVE arrives after the initial exchange (hold time 9 → every 3 s).
    s.recv_until(T, "a periodic KEEPALIVE", &ctx, |m| {
        matches!(speaker::parse(m), Message::Keepalive).then_some(())
    });

    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = encode_cease(kind, &mut buf);
    s.send(&buf[..n]).expect("send NOTIFICATION");
    s.stop_keepalives();
    // The daemon closes the connection (possibly after a last KEEPALIVE).
    loop {
        match s.recv(T) {
            Ok(m) => match speaker::parse(&m) {
                Message::Keepalive | Message::Update(_) => continue,
                other => panic!("{kind:?}: after our Cease got {other:?}\n{}", ctx()),
            },
            Err(RecvError::Closed { .. }) => break,
            Err(RecvError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "{kind:?}: waiting for the close after our Cease: {e:?}\n{}\n{}",
                s.transcript(),
                ctx()
            ),
        }
    }
    let n = d.wait_notification(T, &|n| {
        n.direction == Direction::Received && (n.code, n.subcode) == (6, 2)
    });
    // Every daemon that can decode a shutdown communication shows its text.
    let want = (kind != DaemonKind::ExaBgp).then_some(SHUTDOWN_TEXT);
    assert_eq!(n.message.as_deref(), want, "{kind:?}: {n:?}");
    d.wait_not_established(T);
}

/// Connects and sends `bytes` (a broken message) instead of our OPEN;
/// returns the NOTIFICATION the daemon answers with (code, data), skipping
/// the daemon's own OPEN, and the daemon's own report of what it sent.
///
/// GoBGP logs the NOTIFICATIONs it sends without code and subcode ("sent
/// notification" with only a description), so there is no daemon-side
/// report for GoBGP (`None`); the wire-level check still applies.
fn send_malformed(
    kind: DaemonKind,
    bytes: &[u8],
) -> (
    NotificationCode,
    Vec<u8>,
    Option<daemons::NotificationReport>,
) {
    let d = daemons::start(kind, config());
    let d = d.as_ref();
    let ctx = || d.diagnostics();
    let mut s = connect(d);
    s.send(bytes).expect("send malformed message");
    let (code, data) = s.recv_until(T, "a NOTIFICATION", &ctx, |m| match speaker::parse(m) {
        Message::Open(_) => None, // some daemons send their OPEN first
        Message::Notification(n) => Some((n.code, n.data.as_bytes().to_vec())),
        other => panic!(
            "{kind:?}: expected a NOTIFICATION, got {other:?}\n{}",
            ctx()
        ),
    });
    let rep = (kind != DaemonKind::GoBgp)
        .then(|| d.wait_notification(T, &|n| n.direction == Direction::Sent));
    (code, data, rep)
}

fn our_open_bytes() -> Vec<u8> {
    let caps = our_capabilities();
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = our_open(&caps, Ipv4Addr::new(10, 0, 0, 1))
        .encode(&mut buf)
        .expect("encode OPEN");
    buf[..n].to_vec()
}

/// An OPEN with a broken marker gets NOTIFICATION 1/1 (Connection Not
/// Synchronized), which corebgp-core parses.
fn bad_marker(kind: DaemonKind) {
    let mut open = our_open_bytes();
    open[5] = 0x00; // inside the all-ones marker
    let (code, data, rep) = send_malformed(kind, &open);
    assert_eq!(
        code,
        NotificationCode::MessageHeader(HeaderSubcode::ConnectionNotSynchronized),
        "{kind:?}: data {data:02x?}"
    );
    let rep = rep.expect("GoBGP has its own test");
    assert_eq!((rep.code, rep.subcode), (1, 1), "{kind:?}: {rep:?}");
}

/// A header whose length is below the minimum (18 < 19) gets NOTIFICATION
/// 1/2 (Bad Message Length) carrying the erroneous length (RFC 4271 §6.1).
fn bad_length(kind: DaemonKind) {
    let mut open = our_open_bytes();
    open[16..18].copy_from_slice(&18u16.to_be_bytes());
    let (code, data, rep) = send_malformed(kind, &open);
    assert_eq!(
        code,
        NotificationCode::MessageHeader(HeaderSubcode::BadMessageLength),
        "{kind:?}: data {data:02x?}"
    );
    match kind {
        // ExaBGP puts a description where RFC 4271 wants the Length field.
        DaemonKind::ExaBgp => {
            let text = String::from_utf8_lossy(&data);
            assert!(
                text.contains("invalid message length of 18"),
                "ExaBGP: {text:?}"
            );
        }
        // GoBGP sends no data at all.
        DaemonKind::GoBgp => assert_eq!(data, [0u8; 0], "GoBGP"),
        _ => assert_eq!(
            data,
            [0, 18],
            "{kind:?}: the data is the erroneous Length field"
        ),
    }
    if let Some(rep) = rep {
        assert_eq!((rep.code, rep.subcode), (1, 2), "{kind:?}: {rep:?}");
    }
}

/// A passive daemon with an Established session to our speaker.
fn establish(kind: DaemonKind, cfg: DaemonConfig) -> (Box<dyn Daemon>, Speaker) {
    let d = daemons::start(kind, cfg.clone());
    let mut s = connect(d.as_ref());
    let caps = our_capabilities();
    let ctx = || d.diagnostics();
    let theirs = s.handshake(&our_open(&caps, our_router_id(&cfg)), T, &ctx);
    check_open(kind, &theirs, &cfg);
    s.start_keepalives(Duration::from_secs(u64::from(HOLD / 3)));
    d.wait_established(T);
    (d, s)
}

/// SIGSTOP/SIGCONT and kill/restart through the harness: a paused daemon's
/// kernel still accepts our connection but no OPEN comes until it resumes; a
/// killed daemon's connection closes; a restarted one takes a new session.
fn process_control(kind: DaemonKind) {
    let cfg = config();
    let mut d = daemons::start(kind, cfg.clone());
    d.pause();
    let mut s = connect(d.as_ref());
    let caps = our_capabilities();
    let open = our_open(&caps, our_router_id(&cfg));
    s.send_open(&open).expect("send OPEN");
    match s.recv(Duration::from_millis(1500)) {
        Err(RecvError::Timeout) => {}
        other => panic!(
            "{kind:?} answered while stopped: {other:?}\n{}",
            d.diagnostics()
        ),
    }
    d.resume();
    let theirs = s.expect_message(T, "the resumed daemon's OPEN", &|| d.diagnostics());
    check_open(kind, &theirs, &cfg);
    s.send_keepalive().expect("send KEEPALIVE");
    d.wait_established(T);

    let pid = d.process().pid().expect("running");
    d.kill();
    assert!(d.process().pid().is_none());
    loop {
        match s.recv(T) {
            Ok(_) => continue, // KEEPALIVE/UPDATEs sent before the kill
            Err(RecvError::Closed { .. }) => break,
            Err(RecvError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("{kind:?}: expected the connection to close after SIGKILL, got {e:?}"),
        }
    }
    d.restart();
    assert_ne!(d.process().pid(), Some(pid));
    let mut s = connect(d.as_ref());
    let ctx = || d.diagnostics();
    let theirs = s.handshake(&open, T, &ctx);
    check_open(kind, &theirs, &cfg);
    d.wait_established(T);
}

macro_rules! per_daemon {
    ($($name:ident: $kind:expr;)*) => {$(
        mod $name {
            use super::*;

            #[test]
            fn daemon_passive_full_exchange() {
                full_exchange($kind, true);
            }

            #[test]
            fn daemon_active_full_exchange() {
                full_exchange($kind, false);
            }

            #[test]
            fn pause_resume_kill_restart() {
                process_control($kind);
            }

            #[test]
            fn bad_length_gets_1_2() {
                bad_length($kind);
            }
        }
    )*};
}

mod bad_marker {
    use super::*;

    #[test]
    fn bird() {
        bad_marker(DaemonKind::Bird);
    }

    #[test]
    fn frr() {
        bad_marker(DaemonKind::Frr);
    }

    #[test]
    fn exabgp() {
        bad_marker(DaemonKind::ExaBgp);
    }

    /// GoBGP does not check the marker at all: an OPEN with a broken marker
    /// is accepted and answered with a KEEPALIVE (OpenConfirm). Recorded here
    /// so that a change in GoBGP shows up.
    #[test]
    fn gobgp_does_not_check_the_marker() {
        let d = daemons::start(DaemonKind::GoBgp, config());
        let d = d.as_ref();
        let ctx = || d.diagnostics();
        let mut s = connect(d);
        let mut open = our_open_bytes();
        open[5] = 0x00;
        s.send(&open).expect("send");
        s.recv_until(T, "GoBGP's KEEPALIVE", &ctx, |m| match speaker::parse(m) {
            Message::Open(_) => None,
            Message::Keepalive => Some(()),
            other => {
                panic!("GoBGP now answers a broken marker with {other:?}: use bad_marker() for it")
            }
        });
        assert_eq!(d.session_state(), "OPENCONFIRM");
    }
}

per_daemon! {
    bird: DaemonKind::Bird;
    gobgp: DaemonKind::GoBgp;
    frr: DaemonKind::Frr;
    exabgp: DaemonKind::ExaBgp;
}

/// ExaBGP 4.2.21 cannot decode a Cease carrying an RFC 9003 shutdown
/// communication and answers it with NOTIFICATION 1/0; corebgp-core parses
/// that answer. Recorded so that a fixed ExaBGP shows up here.
#[test]
fn exabgp_rejects_shutdown_communication() {
    let (d, mut s) = establish(DaemonKind::ExaBgp, config());
    let ctx = || d.diagnostics();
    let mut buf = [0u8; MAX_MESSAGE_LEN];
    let n = Notification::encode_shutdown(
        CeaseSubcode::AdministrativeShutdown,
        SHUTDOWN_TEXT,
        &mut buf,
    )
    .expect("encode shutdown");
    s.send(&buf[..n]).expect("send");
    s.stop_keepalives();
    let (code, data) = s.recv_until(T, "ExaBGP's NOTIFICATION", &ctx, |m| {
        match speaker::parse(m) {
            Message::Notification(n) => Some((n.code, n.data.as_bytes().to_vec())),
            _ => None,
        }
    });
    assert_eq!(
        code,
        NotificationCode::MessageHeader(HeaderSubcode::Unspecific)
    );
    let text = String::from_utf8_lossy(&data);
    assert!(
        text.contains("can not decode update message of type \"3\""),
        "{text:?}"
    );
    let rep = d.wait_notification(T, &|n| n.direction == Direction::Sent);
    assert_eq!((rep.code, rep.subcode), (1, 0), "{rep:?}");
}

/// TCP MD5 (RFC 2385) with BIRD: the right key gives a session; a wrong key
/// or none gets no TCP connection at all (the kernel drops the SYNs).
#[test]
fn bird_md5_session() {
    const KEY: &str = "corebgp-md5-key";
    let cfg = config().md5_password(KEY);
    let d = daemons::start(DaemonKind::Bird, cfg.clone());
    for key in [Some("wrong-key"), None] {
        match Speaker::connect(
            cfg.peer_address,
            cfg.endpoint(),
            key,
            Duration::from_secs(2),
        ) {
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("key {key:?}: expected a connect timeout, got {e}"),
            Ok(_) => panic!(
                "key {key:?}: connected without the right MD5 key\n{}",
                d.diagnostics()
            ),
        }
    }
    let mut s = Speaker::connect(cfg.peer_address, cfg.endpoint(), Some(KEY), T)
        .unwrap_or_else(|e| panic!("connect with the right key: {e}\n{}", d.diagnostics()));
    let caps = our_capabilities();
    let ctx = || d.diagnostics();
    let theirs = s.handshake(&our_open(&caps, our_router_id(&cfg)), T, &ctx);
    check_open(DaemonKind::Bird, &theirs, &cfg);
    d.wait_established(T);
}
