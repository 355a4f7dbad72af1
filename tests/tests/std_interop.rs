//! corebgp-std's server against BIRD 2, GoBGP 3, FRR 8 and ExaBGP 4 on
//! loopback: sessions in both directions, IPv4 and IPv6 unicast routes and
//! End-of-RIB both ways (ours read from each daemon's log or API output),
//! NOTIFICATIONs from our hooks, hold timer expiry on a stopped daemon,
//! reconnection after a restart, TCP MD5 with BIRD, RFC 9687's send hold
//! timer on a stopped BIRD, and a failing listener that takes neither the
//! server nor the other peers down.
//!
//! Every test starts its own daemon on its own addresses and ports (killed
//! when the test ends, also on failure) and its own server on a tokio
//! runtime in the background; the test thread makes the blocking daemon
//! queries. A missing daemon fails the test with the command installing it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use corebgp_core::plugin::Plugin;
use corebgp_core::session::{
    CapabilitySet, DownReason, Event, Negotiated, OpenHooks, PeerConfig, StateKind,
};
use corebgp_core::update::{
    AsSegment, Ipv4Prefix, Ipv6Prefix, NextHop, Nlri, Origin, PathAttributes, SegmentType, Update,
    UpdateBuilder, UpdateConfig, encode_end_of_rib,
};
use corebgp_core::wire::{
    AfiSafi, Capability, GracefulRestart, List, Notification, NotificationCode, Open,
    UpdateSections,
};
use corebgp_std::{PeerOptions, Server, UpdateQueue, UpdateWriter, update_queue};
use corebgp_tests::daemons::{self, Daemon, DaemonConfig, DaemonKind, Direction, EndOfRib};
use corebgp_tests::wait::wait_for;

const OUR_AS: u32 = 65001;
const DAEMON_AS: u32 = 4_200_000_002;
const HOLD: u16 = 9;
const T: Duration = Duration::from_secs(30);

const DAEMON_V4: &str = "203.0.113.0/24";
const DAEMON_V6: &str = "2001:db8:1::/48";
const OUR_V4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 0);
const OUR_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0);
/// GoBGP treats 127.x next hops as invalid: documentation addresses.
const OUR_NEXT_HOP_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const OUR_NEXT_HOP_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

/// What our plugin saw.
#[derive(Default, Debug)]
struct Log {
    established: usize,
    v4: Vec<String>,
    v6: Vec<String>,
    eor: Vec<AfiSafi>,
    sent: Vec<(u8, u8)>,
    received: Vec<(u8, u8)>,
    closed: Vec<DownReason>,
}

#[derive(Clone, Default)]
struct Behaviour {
    /// Refuse the peer's OPEN with this NOTIFICATION.
    refuse_open: Option<(u8, u8)>,
    /// Refuse the first UPDATE with this NOTIFICATION.
    refuse_update: Option<(u8, u8)>,
    /// Announce our routes and End-of-RIB when Established.
    announce: bool,
}

struct InteropPlugin {
    log: Arc<Mutex<Log>>,
    queue: Arc<UpdateQueue>,
    how: Behaviour,
    cfg: UpdateConfig,
}

fn lock(l: &Mutex<Log>) -> MutexGuard<'_, Log> {
    l.lock().unwrap_or_else(|e| e.into_inner())
}

fn notification(c: (u8, u8)) -> Notification<'static> {
    Notification::new(NotificationCode::from_raw(c.0, c.1))
}

impl OpenHooks for InteropPlugin {
    fn capabilities(&mut self, _: &PeerConfig, caps: &mut CapabilitySet) {
        for c in [
            Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
            Capability::MultiProtocol(AfiSafi::IPV6_UNICAST),
            Capability::RouteRefresh,
            // Graceful Restart without families (RFC 4724 §3): End-of-RIB
            // markers without restart semantics.
            Capability::GracefulRestart(GracefulRestart {
                restart_state: false,
                notification: false,
                restart_time: 0,
                families: List::Items(&[]),
            }),
        ] {
            caps.push(&c).expect("room for four capabilities");
        }
    }

    fn check_open(
        &mut self,
        _: &PeerConfig,
        _: &Open<'_>,
        _: &Negotiated,
    ) -> Result<(), Notification<'static>> {
        self.how
            .refuse_open
            .map_or(Ok(()), |c| Err(notification(c)))
    }
}

async fn announce(w: &UpdateWriter, cfg: &UpdateConfig) {
    let asns = [OUR_AS];
    let seg = [AsSegment {
        kind: SegmentType::Sequence,
        asns: &asns,
    }];
    let mut buf = [0u8; 4096];
    let mut attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(&seg),
        next_hop: Some(NextHop::V4(OUR_NEXT_HOP_V4)),
        ..Default::default()
    };
    let v4 = [Nlri::new(Ipv4Prefix::new(OUR_V4, 24).expect("prefix"))];
    let mut b = UpdateBuilder::new(&mut buf, cfg).expect("builder");
    assert_eq!(
        b.announce(&attrs, AfiSafi::IPV4_UNICAST, &v4).expect("v4"),
        1
    );
    let n = b.finish().expect("finish");
    w.send(&buf[..n]).await.expect("queue v4 UPDATE");

    attrs.next_hop = Some(NextHop::V6 {
        global: OUR_NEXT_HOP_V6,
        link_local: None,
    });
    let v6 = [Nlri::new(Ipv6Prefix::new(OUR_V6, 48).expect("prefix"))];
    let mut b = UpdateBuilder::new(&mut buf, cfg).expect("builder");
    assert_eq!(
        b.announce(&attrs, AfiSafi::IPV6_UNICAST, &v6).expect("v6"),
        1
    );
    let n = b.finish().expect("finish");
    w.send(&buf[..n]).await.expect("queue v6 UPDATE");

    for f in [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST] {
        let n = encode_end_of_rib(&mut buf, f).expect("EoR");
        w.send(&buf[..n]).await.expect("queue End-of-RIB");
    }
}

impl Plugin for InteropPlugin {
    async fn on_established(&mut self, peer: &PeerConfig, n: &Negotiated) {
        self.cfg = n.update_config(peer);
        lock(&self.log).established += 1;
        if self.how.announce {
            let w = UpdateWriter::new(self.queue.clone()).expect("open while Established");
            let cfg = self.cfg;
            tokio::spawn(async move { announce(&w, &cfg).await });
        }
    }

    async fn on_update<'m>(
        &mut self,
        _: &PeerConfig,
        u: UpdateSections<'m>,
    ) -> Result<(), Notification<'m>> {
        if let Some(c) = self.how.refuse_update.take() {
            return Err(notification(c));
        }
        let u = match Update::from_sections(u, &self.cfg) {
            Ok(u) => u,
            Err(e) => panic!("daemon sent an UPDATE we cannot decode: {e}"),
        };
        let mut log = lock(&self.log);
        if let Some(f) = u.end_of_rib() {
            log.eor.push(f);
        }
        for (family, nlri) in u.announced() {
            if family == AfiSafi::IPV4_UNICAST {
                log.v4.push(nlri.prefix.to_string());
            } else if family == AfiSafi::IPV6_UNICAST {
                log.v6.push(nlri.prefix.to_string());
            }
        }
        Ok(())
    }

    fn on_notification(&mut self, _: &PeerConfig, n: &Notification<'_>) {
        lock(&self.log)
            .received
            .push((n.code.code(), n.code.subcode()));
    }

    fn on_event(&mut self, _: &PeerConfig, e: &Event) {
        if let Event::NotificationSent { code, .. } = e {
            lock(&self.log).sent.push((code.code(), code.subcode()));
        }
    }

    fn on_close(&mut self, _: &PeerConfig, reason: DownReason) {
        lock(&self.log).closed.push(reason);
    }
}

/// Our side of one test: a server on a background runtime.
struct Us {
    rt: tokio::runtime::Runtime,
    server: Server,
    daemon_addr: IpAddr,
    log: Arc<Mutex<Log>>,
    /// The peer's UPDATE queue (the plugin holds the other handle).
    queue: Arc<UpdateQueue>,
}

impl Us {
    /// Starts our server toward `d`: active (dials the daemon) if the daemon
    /// is passive, else passive on `d.config().peer_endpoint()`.
    fn start(
        d: &dyn Daemon,
        how: Behaviour,
        opts: impl FnOnce(PeerOptions) -> PeerOptions,
    ) -> Self {
        let c = d.config();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let [_, a, b, x] = c.peer_address.octets();
        let server = Server::new(Ipv4Addr::new(10, a, b, x)).expect("server");
        let log = Arc::new(Mutex::new(Log::default()));
        let queue = update_queue();
        let plugin = InteropPlugin {
            log: log.clone(),
            queue: queue.clone(),
            how,
            cfg: UpdateConfig::default(),
        };
        let ours = IpAddr::V4(c.peer_address);
        let base = PeerOptions::new()
            .hold_time(HOLD)
            .idle_hold_time(Duration::from_millis(500))
            .connect_retry_time(Duration::from_secs(2))
            .port(c.port)
            .local_address(ours)
            .passive(!c.passive)
            .update_queue(queue.clone());
        let daemon_addr = IpAddr::V4(c.address);
        server
            .add_peer(
                PeerConfig {
                    remote_address: daemon_addr,
                    local_as: OUR_AS,
                    remote_as: DAEMON_AS,
                },
                plugin,
                opts(base),
            )
            .expect("add_peer");
        let listeners = if c.passive {
            vec![]
        } else {
            let ep = SocketAddr::from(c.peer_endpoint());
            vec![
                rt.block_on(tokio::net::TcpListener::bind(ep))
                    .unwrap_or_else(|e| panic!("cannot listen on {ep}: {e}")),
            ]
        };
        let s = server.clone();
        rt.spawn(async move { s.serve(listeners).await });
        Self {
            rt,
            server,
            daemon_addr,
            log,
            queue,
        }
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        lock(&self.log)
    }

    fn state(&self) -> StateKind {
        self.server
            .get_peer(self.daemon_addr)
            .map(|p| p.state)
            .unwrap_or(StateKind::Idle)
    }

    fn wait(&self, d: &dyn Daemon, what: &str, f: impl Fn(&Log, StateKind) -> bool) {
        wait_for(
            what,
            T,
            || f(&self.log(), self.state()).then_some(()),
            || {
                format!(
                    "our log: {:?}, state {:?}\n{}",
                    self.log(),
                    self.state(),
                    d.diagnostics()
                )
            },
        )
    }

    fn close(self) {
        self.rt.block_on(self.server.close());
    }
}

fn config(passive_daemon: bool) -> DaemonConfig {
    DaemonConfig::new(DAEMON_AS, OUR_AS)
        .passive(passive_daemon)
        .hold_time(HOLD)
        .ipv4_route(DAEMON_V4)
        .ipv6_route(DAEMON_V6)
}

/// (1) and (2): the session comes up; routes and End-of-RIB flow both ways.
fn session_and_routes(kind: DaemonKind, we_dial: bool) {
    let d = daemons::start(kind, config(we_dial));
    let us = Us::start(
        &*d,
        Behaviour {
            announce: true,
            ..Default::default()
        },
        |o| o,
    );
    d.wait_established(T);
    us.wait(&*d, "our session Established", |_, s| {
        s == StateKind::Established
    });
    us.wait(
        &*d,
        "the daemon's IPv4 and IPv6 routes and both End-of-RIBs",
        |l, _| {
            l.v4.iter().any(|p| p == DAEMON_V4)
                && l.v6.iter().any(|p| p == DAEMON_V6)
                && l.eor.contains(&AfiSafi::IPV4_UNICAST)
                && l.eor.contains(&AfiSafi::IPV6_UNICAST)
        },
    );
    let r4 = d.wait_route("198.51.100.0/24", T);
    assert_eq!(r4.next_hop, OUR_NEXT_HOP_V4.to_string(), "{r4:?}");
    assert!(r4.as_path.contains("65001"), "{r4:?}");
    let r6 = d.wait_route("2001:db8:100::/48", T);
    assert_eq!(r6.next_hop, OUR_NEXT_HOP_V6.to_string(), "{r6:?}");
    // Our End-of-RIBs, IPv4 then IPv6, as the daemon reports them.
    let eors = wait_for(
        &format!("{} to report our two End-of-RIBs", kind.name()),
        T,
        || {
            let e = d.end_of_rib_received();
            (e.len() >= 2).then_some(e)
        },
        || {
            format!(
                "reported: {:?}\n{}",
                d.end_of_rib_received(),
                d.diagnostics()
            )
        },
    );
    let want = if kind == DaemonKind::Bird {
        // BIRD's packet trace does not name the family: both are counted.
        vec![EndOfRib::Unnamed; 2]
    } else {
        vec![EndOfRib::Ipv4Unicast, EndOfRib::Ipv6Unicast]
    };
    assert_eq!(eors, want, "{}", d.diagnostics());
    let l = us.log();
    assert_eq!(l.established, 1, "{l:?}");
    assert!(l.sent.is_empty() && l.received.is_empty(), "{l:?}");
    drop(l);
    us.close();
    d.wait_notification(T, &|n| {
        n.direction == Direction::Received && (n.code, n.subcode) == (6, 2)
    });
}

/// (3) A NOTIFICATION from our OPEN hook reaches the daemon.
fn open_hook_notification(kind: DaemonKind) {
    let d = daemons::start(kind, config(true));
    let code = (2, 0);
    let us = Us::start(
        &*d,
        Behaviour {
            refuse_open: Some(code),
            ..Default::default()
        },
        |o| o,
    );
    us.wait(&*d, "our 2/0", |l, _| l.sent.first() == Some(&code));
    if kind == DaemonKind::GoBgp {
        // GoBGP 3 is in OpenConfirm when our NOTIFICATION arrives (it has our
        // OPEN) and there it drops the session as "invalid-msg" without
        // logging the NOTIFICATION's code; only its counters see it:
        // `gobgp neighbor` "Notifications: <sent> <received>".
        wait_for(
            "GoBGP to count a received NOTIFICATION",
            T,
            || {
                d.log().lines().find_map(|l| {
                    let mut w = l.split_whitespace();
                    (w.next() == Some("Notifications:"))
                        .then(|| w.nth(1).and_then(|r| r.parse::<u32>().ok()))
                        .flatten()
                        .filter(|&r| r >= 1)
                })
            },
            || d.diagnostics(),
        );
    } else {
        let n = d.wait_notification(T, &|n| n.direction == Direction::Received);
        assert_eq!((n.code, n.subcode), code, "{n:?}\n{}", d.diagnostics());
    }
    assert_eq!(us.log().established, 0);
    us.close();
}

/// (3) A NOTIFICATION from our UPDATE handler reaches the daemon.
fn update_handler_notification(kind: DaemonKind) {
    let d = daemons::start(kind, config(true));
    let code = (3, 1);
    let us = Us::start(
        &*d,
        Behaviour {
            refuse_update: Some(code),
            ..Default::default()
        },
        |o| o,
    );
    let n = d.wait_notification(T, &|n| n.direction == Direction::Received);
    assert_eq!((n.code, n.subcode), code, "{n:?}\n{}", d.diagnostics());
    us.wait(&*d, "our 3/1", |l, _| l.sent.first() == Some(&code));
    us.close();
}

/// (4) Killed and restarted: we reconnect by ourselves. Stopped
/// (SIGSTOP): our hold timer expires and we send 4/0.
fn restart_then_hold_timer(kind: DaemonKind) {
    let hold = 3;
    let mut d = daemons::start(kind, config(true).hold_time(hold));
    let us = Us::start(&*d, Behaviour::default(), |o| o.hold_time(hold));
    d.wait_established(T);
    us.wait(&*d, "Established", |_, s| s == StateKind::Established);

    d.kill();
    us.wait(&*d, "our session down after the kill", |l, _| {
        l.closed.len() == 1
    });
    d.restart();
    d.wait_established(T);
    us.wait(&*d, "re-established by ourselves", |l, s| {
        s == StateKind::Established && l.established == 2
    });

    d.pause();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        us.wait(&*d, "our hold timer to expire and send 4/0", |l, _| {
            l.sent.contains(&(4, 0))
        })
    }));
    d.resume();
    if let Err(e) = r {
        std::panic::resume_unwind(e);
    }
    assert_eq!(
        us.log().closed.last(),
        Some(&DownReason::NotificationSent(
            NotificationCode::HOLD_TIMER_EXPIRED
        ))
    );
    us.close();
}

macro_rules! for_each_daemon {
    ($($mod:ident: $kind:expr;)*) => {$(
        mod $mod {
            use super::*;
            #[test]
            fn session_and_routes_we_dial() {
                session_and_routes($kind, true)
            }
            #[test]
            fn session_and_routes_daemon_dials() {
                session_and_routes($kind, false)
            }
            #[test]
            fn notification_from_open_hook() {
                open_hook_notification($kind)
            }
            #[test]
            fn notification_from_update_handler() {
                update_handler_notification($kind)
            }
            #[test]
            fn reconnect_after_restart_and_hold_timer_expiry() {
                restart_then_hold_timer($kind)
            }
        }
    )*};
}

for_each_daemon! {
    bird: DaemonKind::Bird;
    gobgp: DaemonKind::GoBgp;
    frr: DaemonKind::Frr;
    exabgp: DaemonKind::ExaBgp;
}

/// UPDATEs of as many /24s as fit (from 1.0.0.0 on, wrapping) until the
/// session refuses them; counts those queued.
async fn push_until_closed(w: UpdateWriter, cfg: UpdateConfig, queued: Arc<AtomicUsize>) {
    let asns = [OUR_AS];
    let seg = [AsSegment {
        kind: SegmentType::Sequence,
        asns: &asns,
    }];
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(&seg),
        next_hop: Some(NextHop::V4(OUR_NEXT_HOP_V4)),
        ..Default::default()
    };
    let mut buf = [0u8; 4096];
    let mut next = 0u32;
    loop {
        let batch: Vec<Nlri<Ipv4Prefix>> = (next..next + 1200)
            .map(|i| {
                let a = Ipv4Addr::from_bits((1 << 24) + ((i % (1 << 22)) << 8));
                Nlri::new(Ipv4Prefix::new(a, 24).expect("prefix"))
            })
            .collect();
        let mut b = UpdateBuilder::new(&mut buf, &cfg).expect("builder");
        let n = b
            .announce(&attrs, AfiSafi::IPV4_UNICAST, &batch)
            .expect("announce");
        let len = b.finish().expect("finish");
        if w.send(&buf[..len]).await.is_err() {
            return;
        }
        queued.fetch_add(1, Ordering::Relaxed);
        next += n as u32;
    }
}

/// RFC 9687 with a real peer: BIRD is stopped (SIGSTOP) while we push an
/// endless table at it. Once its receive buffer and our (4 KiB) send
/// buffer are full, our writes stop; 2 s later (`send_hold_time`) the
/// session ends with 8/0 — not the hold timer's 4/0: the hold time is 90 s
/// — and the plugin hears that reason; the server gives the connection up
/// without BIRD reading and dials again.
#[test]
fn bird_stopped_under_a_table_is_dropped_by_the_send_hold_timer_rfc9687() {
    let hold = 90;
    let send_hold = Duration::from_secs(2);
    let d = daemons::start(DaemonKind::Bird, config(true).hold_time(hold));
    let small_sndbuf: corebgp_std::SocketHook = Arc::new(|fd, _| {
        socket2::SockRef::from(&fd).set_send_buffer_size(4096)?;
        Ok(())
    });
    let us = Us::start(&*d, Behaviour::default(), |o| {
        o.hold_time(hold)
            .damping(false)
            .send_hold_time(Some(send_hold))
            .socket_hook(small_sndbuf)
    });
    d.wait_established(T);
    us.wait(&*d, "Established", |_, s| s == StateKind::Established);
    let cfg = UpdateConfig::default();

    d.pause();
    let stopped = std::time::Instant::now();
    let queued = Arc::new(AtomicUsize::new(0));
    let w = UpdateWriter::new(us.queue.clone()).expect("Established");
    us.rt.spawn(push_until_closed(w, cfg, queued.clone()));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        us.wait(&*d, "the send hold timer to end the session", |l, _| {
            !l.closed.is_empty()
        });
        // Still stopped, BIRD reads nothing: that we dial again (and the
        // kernel completes the handshake, so our OPEN goes out) shows the
        // stuck connection was given up.
        us.wait(&*d, "a new connection, our OPEN sent", |_, s| {
            s == StateKind::OpenSent
        })
    }));
    let took = stopped.elapsed();
    d.resume();
    if let Err(e) = r {
        std::panic::resume_unwind(e);
    }
    let log = us.log();
    assert_eq!(
        log.closed,
        [DownReason::NotificationSent(
            NotificationCode::SEND_HOLD_TIMER_EXPIRED
        )],
        "{log:?}"
    );
    assert_eq!(log.sent, [(8, 0)], "{log:?}");
    assert!(took >= send_hold, "{took:?}");
    eprintln!(
        "BIRD stopped: 8/0, the connection given up and a new one open {took:?} after the stop; {} UPDATEs queued before the writes stopped",
        queued.load(Ordering::Relaxed)
    );
    drop(log);
    us.close();
}

/// (5) TCP MD5 (RFC 2385) with BIRD: up with the right key, never with a
/// wrong one.
#[test]
fn bird_md5_right_key() {
    let d = daemons::start(DaemonKind::Bird, config(true).md5_password("corebgp-md5"));
    let us = Us::start(&*d, Behaviour::default(), |o| o.md5_key(b"corebgp-md5"));
    d.wait_established(T);
    us.wait(&*d, "Established with MD5", |_, s| {
        s == StateKind::Established
    });
    us.close();
}

#[test]
fn bird_md5_wrong_key() {
    let d = daemons::start(DaemonKind::Bird, config(true).md5_password("corebgp-md5"));
    let us = Us::start(&*d, Behaviour::default(), |o| o.md5_key(b"not-the-key"));
    // Our dials carry a wrong signature: the daemon's kernel drops them.
    std::thread::sleep(Duration::from_secs(6));
    assert!(!d.is_established(), "{}", d.diagnostics());
    assert!(us.state() < StateKind::OpenSent, "state {:?}", us.state());
    assert_eq!(us.log().established, 0);
    us.close();
}

/// A listener whose `accept` fails takes neither the server, nor the other
/// listener, nor any session down. Two BIRDs dial us, each on a listener of
/// its own; the first listener is then shut down under the server (its
/// `accept` fails at once with EINVAL, every time — the server logs it and
/// retries after a pause). The session accepted on it earlier stays up,
/// the other session stays up, and the other listener still accepts: the
/// second BIRD, restarted, comes back through it.
#[test]
fn failing_listener_leaves_the_server_and_other_peers_alone() {
    use std::os::fd::AsFd;

    let a = daemons::start(DaemonKind::Bird, config(false));
    let mut b = daemons::start(DaemonKind::Bird, config(false));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let [_, x, y, z] = a.config().peer_address.octets();
    let server = Server::new(Ipv4Addr::new(10, x, y, z)).expect("server");
    let logs: Vec<Arc<Mutex<Log>>> = [&*a, &*b]
        .iter()
        .map(|d| {
            let c = d.config();
            let log = Arc::new(Mutex::new(Log::default()));
            server
                .add_peer(
                    PeerConfig {
                        remote_address: IpAddr::V4(c.address),
                        local_as: OUR_AS,
                        remote_as: DAEMON_AS,
                    },
                    InteropPlugin {
                        log: log.clone(),
                        queue: update_queue(),
                        how: Behaviour::default(),
                        cfg: UpdateConfig::default(),
                    },
                    PeerOptions::new()
                        .hold_time(HOLD)
                        .passive(true)
                        .port(c.port)
                        .local_address(IpAddr::V4(c.peer_address)),
                )
                .expect("add_peer");
            log
        })
        .collect();
    let listen = |d: &dyn Daemon| {
        let ep = SocketAddr::from(d.config().peer_endpoint());
        rt.block_on(tokio::net::TcpListener::bind(ep))
            .unwrap_or_else(|e| panic!("cannot listen on {ep}: {e}"))
    };
    let (la, lb) = (listen(&*a), listen(&*b));
    // A second descriptor of the first listener, to break it from outside.
    let la_fd = la.as_fd().try_clone_to_owned().expect("dup listener");
    let s = server.clone();
    let serving = rt.spawn(async move { s.serve(vec![la, lb]).await });

    let state = |d: &dyn Daemon| {
        server
            .get_peer(IpAddr::V4(d.config().address))
            .map(|p| p.state)
            .unwrap_or(StateKind::Idle)
    };
    let established = |d: &dyn Daemon, log: &Mutex<Log>, times: usize| {
        d.wait_established(T);
        wait_for(
            &format!(
                "our session with {} Established ({times})",
                d.config().address
            ),
            T,
            || (state(d) == StateKind::Established && lock(log).established == times).then_some(()),
            || format!("our log: {:?}\n{}", lock(log), d.diagnostics()),
        );
    };
    established(&*a, &logs[0], 1);
    established(&*b, &logs[1], 1);

    let sock = socket2::SockRef::from(&la_fd);
    sock.shutdown(std::net::Shutdown::Both)
        .expect("shut the listener down");
    match sock.accept() {
        Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => {}
        r => panic!("the shut-down listener should fail to accept: {r:?}"),
    }
    // Many failed accepts (one per ACCEPT_BACKOFF) later:
    std::thread::sleep(Duration::from_secs(3));
    assert!(!serving.is_finished(), "serve returned");
    for (d, log) in [(&*a, &logs[0]), (&*b, &logs[1])] {
        assert!(d.is_established(), "{}", d.diagnostics());
        assert_eq!(state(d), StateKind::Established);
        let l = lock(log);
        assert!(l.closed.is_empty() && l.sent.is_empty(), "{l:?}");
    }

    // The other listener still accepts.
    b.restart();
    established(&*b, &logs[1], 2);
    assert!(a.is_established(), "{}", a.diagnostics());
    assert_eq!(lock(&logs[0]).established, 1);
    assert_eq!(server.list_peers().len(), 2);

    rt.block_on(server.close());
    rt.block_on(serving)
        .expect("serve task")
        .expect("serve returns Ok after close");
}
