//! `collector --nats` into NATS JetStream and `rib-from-stream` out of it,
//! run as an operator runs them, with `nats-server -js` started by each
//! test on loopback with a store of its own (tests/daemons/nats.rs):
//!
//! 1. one collector fed by BIRD (IPv4 + IPv6), in both formats: the
//!    consumer's RIB holds BIRD's routes with their attributes, exactly
//!    the collector's own JSON;
//! 2. three collectors (BIRD, GoBGP, a corebgp announcer) into one stream:
//!    the consumer holds the exact union, each route once;
//! 3. a three-node JetStream cluster, stream with 3 replicas: the node the
//!    collector is connected to is killed during a 100,000-prefix feed and
//!    brought back: every prefix exactly once, the BGP session never down,
//!    and the fast feed went out in batches (fewer messages than UPDATEs);
//! 4. JetStream stopped for longer than the collector's window takes to
//!    fill, then restarted: the session stays Established (the collector's
//!    KEEPALIVEs are counted meanwhile), nothing lost, nothing twice; and
//!    before that, one UPDATE alone under no load is one message at once;
//! 5. bad input: an unreachable URL, bad credentials, a stream with other
//!    subjects: one error line, exit 1, no hang;
//!
//! and JetStream away for longer than `--nats-retry-for`: the session is
//! closed with Cease 6/8 (out of resources) and an error line.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use corebgp_core::wire::AfiSafi;
use corebgp_tests::daemons::{
    self, DAEMON_NEXT_HOP_V4, DAEMON_NEXT_HOP_V6, DaemonConfig, DaemonKind, Nats, NatsAuth,
};
use corebgp_tests::net;
use corebgp_tests::speaker::{self, Speaker};
use corebgp_tests::tools::{Tool, run_tool};
use corebgp_tests::update;
use corebgp_tests::wait::wait_for;
use serde_json::Value;

/// The collectors' AS.
const OUR_AS: u32 = 65001;
/// BIRD's and GoBGP's AS (4-octet).
const DAEMON_AS: u32 = 4_200_000_002;
/// The announcer's AS.
const ANNOUNCER_AS: u32 = 65003;
/// The raw speaker's AS.
const SPEAKER_AS: u32 = 65002;
/// Sessions: BIRD reconnects every 1–2 s; the machine may be busy.
const SESSION: Duration = Duration::from_secs(60);
/// A process exiting after SIGTERM or a bad flag.
const EXIT: Duration = Duration::from_secs(30);
/// A big feed through JetStream on a busy machine (generous: the work is
/// 100,000 prefixes; this bounds a hang, it measures nothing).
const FEED: Duration = Duration::from_secs(180);

const COMMUNITIES: [&str; 2] = ["65001:1", "64512:300"];
const LARGE_COMMUNITIES: [&str; 1] = ["65001:1:2"];

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

/// The flags that make a collector publish to `urls` as `id`.
fn nats_flags(urls: &str, id: &str, raw: bool) -> Vec<String> {
    strings(&[
        "--nats",
        urls,
        "--collector-id",
        id,
        "--nats-format",
        if raw { "raw" } else { "json" },
        "--stats",
        "--stats-interval",
        "0.2",
    ])
}

/// A collector dialling daemon `c` (which waits for it).
fn collector_for(c: &DaemonConfig, urls: &str, id: &str, raw: bool) -> Tool {
    let mut a = strings(&[
        "--router-id",
        "192.0.2.1",
        "--local-as",
        &OUR_AS.to_string(),
        "--remote-as",
        &c.asn.to_string(),
        "--peer",
        &c.address.to_string(),
        "--port",
        &c.port.to_string(),
        "--local-address",
        &c.peer_address.to_string(),
    ]);
    a.extend(nats_flags(urls, id, raw));
    Tool::spawn("collector", &a)
}

/// A passive daemon originating `v4` and `v6` with communities.
fn originating(v4: &[&str], v6: &[&str]) -> DaemonConfig {
    let mut c = DaemonConfig::new(DAEMON_AS, OUR_AS).passive(true);
    for p in v4 {
        c = c.ipv4_route(p);
    }
    for p in v6 {
        c = c.ipv6_route(p);
    }
    c.communities(&COMMUNITIES)
        .large_communities(&LARGE_COMMUNITIES)
}

/// Waits for the collector's End-of-RIB line of `afi` from `peer`.
fn wait_end_of_rib(t: &Tool, peer: IpAddr, afi: &str, timeout: Duration, ctx: &dyn Fn() -> String) {
    t.wait_json(
        &format!("end_of_rib {afi} from {peer}"),
        timeout,
        |v| v["event"] == "end_of_rib" && v["afi"] == afi && v["peer"] == peer.to_string(),
        ctx,
    );
}

/// Waits until the collector's `nats` line says everything published was
/// acknowledged (and at least `min` messages were); returns that line.
fn wait_all_acked(t: &Tool, min: u64, timeout: Duration, ctx: &dyn Fn() -> String) -> Value {
    t.wait_json(
        &format!("every published message acknowledged (at least {min})"),
        timeout,
        |v| {
            v["event"] == "nats"
                && v["inflight"] == 0
                && v["acked"].as_u64() >= Some(min)
                && v["acked"] == v["published"]
        },
        ctx,
    )
}

/// The last `nats` line.
fn last_nats(t: &Tool) -> Option<Value> {
    t.json().into_iter().rev().find(|v| v["event"] == "nats")
}

/// SIGTERM, then exit 0.
fn stop(t: &mut Tool) {
    t.signal(libc::SIGTERM);
    let status = t.wait_exit(EXIT);
    assert_eq!(status.code(), Some(0), "{status}\n{}", t.diagnostics());
    assert!(!t.stderr().contains("panicked"), "{}", t.diagnostics());
}

/// `rib-from-stream` on `urls`.
fn consumer(urls: &str, routes: bool) -> Tool {
    let mut a = strings(&["--nats", urls, "--durable", "test-rib"]);
    if routes {
        a.push("--routes".into());
    }
    let c = Tool::spawn("rib-from-stream", &a);
    // SIGUSR1 before its handler is installed would end it.
    wait_for(
        "rib-from-stream reading the stream",
        SESSION,
        || c.stderr().contains("reading the stream").then_some(()),
        || c.diagnostics(),
    );
    c
}

/// Asks the consumer (SIGUSR1) for `rib` lines until one satisfies
/// `pred`, and returns it.
fn wait_rib(
    c: &Tool,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Value) -> bool,
    ctx: &dyn Fn() -> String,
) -> Value {
    let count = |c: &Tool| c.json().iter().filter(|v| v["event"] == "rib").count();
    let mut asked: Option<(usize, Instant)> = None;
    wait_for(
        &format!("rib-from-stream: {what}"),
        timeout,
        || {
            let lines = c.json();
            let ribs: Vec<&Value> = lines.iter().filter(|v| v["event"] == "rib").collect();
            if let Some(last) = ribs.last()
                && pred(last)
            {
                return Some((*last).clone());
            }
            // One question at a time: again once answered (or after 2 s).
            let n = ribs.len();
            if asked.is_none_or(|(seen, at)| n > seen || at.elapsed() > Duration::from_secs(2)) {
                asked = Some((count(c), Instant::now()));
                c.signal(libc::SIGUSR1);
            }
            None
        },
        || format!("{}\n{}", c.diagnostics(), ctx()),
    )
}

/// The peers of a `rib` line.
fn peers(rib: &Value) -> &Vec<Value> {
    rib["peers"].as_array().expect("peers")
}

/// The peer `peer` of collector `id` in a `rib` line.
fn peer<'a>(rib: &'a Value, id: &str, peer: IpAddr) -> Option<&'a Value> {
    peers(rib)
        .iter()
        .find(|p| p["collector"] == id && p["peer"] == peer.to_string())
}

/// Nothing applied twice, nothing missing, nothing unreadable.
fn assert_exactly_once(rib: &Value, ctx: &dyn Fn() -> String) {
    assert_eq!(
        rib["duplicates"],
        0,
        "messages the stream holds twice\n{rib}\n{}",
        ctx()
    );
    assert_eq!(rib["invalid"], 0, "unreadable messages\n{rib}\n{}", ctx());
    for p in peers(rib) {
        assert_eq!(
            p["gaps"],
            0,
            "messages missing in a session: {p}\n{}",
            ctx()
        );
    }
}

fn sorted(v: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = v.into_iter().collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// 1. One collector, BIRD, IPv4 + IPv6: attribute for attribute.

const V4: [&str; 2] = ["203.0.113.0/24", "198.51.100.128/25"];
const V6: [&str; 2] = ["2001:db8:1::/48", "2001:db8:2:3::/64"];

fn bird_rib(raw: bool) {
    let nats = Nats::start();
    let d = daemons::start(DaemonKind::Bird, originating(&V4, &V6));
    let bird = IpAddr::V4(d.config().address);
    // The collector prints its `update` lines too (no --stats here): the
    // consumer must hold exactly those attributes.
    let mut args = strings(&[
        "--router-id",
        "192.0.2.1",
        "--local-as",
        &OUR_AS.to_string(),
        "--remote-as",
        &DAEMON_AS.to_string(),
        "--peer",
        &bird.to_string(),
        "--port",
        &d.config().port.to_string(),
        "--local-address",
        &d.config().peer_address.to_string(),
        "--nats",
        &nats.url(),
        "--collector-id",
        "c1",
        "--nats-format",
        if raw { "raw" } else { "json" },
    ]);
    args.extend(strings(&["--log-level", "debug"]));
    let mut t = Tool::spawn("collector", &args);
    let ctx = || {
        format!(
            "{}\n{}\n--- nats:\n{}",
            t.diagnostics(),
            d.diagnostics(),
            nats.log()
        )
    };
    wait_end_of_rib(&t, bird, "ipv4", SESSION, &ctx);
    wait_end_of_rib(&t, bird, "ipv6", SESSION, &ctx);

    let c = consumer(&nats.url(), true);
    let all: Vec<String> = sorted(V4.iter().chain(&V6).map(|s| (*s).to_owned()));
    let rib = wait_rib(
        &c,
        "BIRD's four routes",
        SESSION,
        |r| r["pending"] == 0 && peer(r, "c1", bird).is_some_and(|p| p["prefixes"] == 4),
        &ctx,
    );
    assert_exactly_once(&rib, &ctx);
    assert_eq!(peers(&rib).len(), 1, "{rib}");
    let p = peer(&rib, "c1", bird).expect("the peer");
    assert_eq!(p["peer_as"], DAEMON_AS);
    let routes = p["routes"].as_array().expect("routes");
    let got = sorted(
        routes
            .iter()
            .map(|r| r["prefix"].as_str().expect("prefix").to_owned()),
    );
    assert_eq!(got, all, "{rib}");
    // The collector's own `update` lines, by prefix.
    let printed: Vec<(String, Value)> = t
        .json()
        .into_iter()
        .filter(|v| v["event"] == "update")
        .flat_map(|v| {
            let a = v["attributes"].clone();
            v["announced"]
                .as_array()
                .expect("announced")
                .iter()
                .map(|r| (r["prefix"].as_str().expect("prefix").to_owned(), a.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    for r in routes {
        let prefix = r["prefix"].as_str().expect("prefix");
        let a = &r["attributes"];
        let v6 = prefix.contains(':');
        // BIRD's routes as configured (tests/daemons/bird.rs).
        assert_eq!(r["path_id"], Value::Null);
        assert_eq!(a["origin"], "igp", "{r}");
        assert_eq!(a["as_path"], serde_json::json!([DAEMON_AS]), "{r}");
        let nh = if v6 {
            DAEMON_NEXT_HOP_V6.to_owned()
        } else {
            DAEMON_NEXT_HOP_V4.to_string()
        };
        assert_eq!(a["next_hop"], nh, "{r}");
        let comms = sorted(
            a["communities"]
                .as_array()
                .expect("communities")
                .iter()
                .map(|c| c.as_str().expect("str").to_owned()),
        );
        assert_eq!(
            comms,
            sorted(COMMUNITIES.iter().map(|s| (*s).to_owned())),
            "{r}"
        );
        assert_eq!(
            a["large_communities"],
            serde_json::json!(LARGE_COMMUNITIES),
            "{r}"
        );
        assert_eq!(a["med"], Value::Null, "{r}");
        assert_eq!(a["local_pref"], Value::Null, "{r}");
        assert_eq!(a["unknown"], serde_json::json!([]), "{r}");
        // Attribute for attribute what the collector printed.
        let mine: Vec<&Value> = printed
            .iter()
            .filter(|(p, _)| p == prefix)
            .map(|(_, a)| a)
            .collect();
        assert_eq!(
            mine,
            vec![a],
            "{prefix}: the stream's attributes are the printed ones"
        );
    }
    // The session's end reaches the consumer: the peer's routes are gone.
    stop(&mut t);
    let ctx = || format!("{}\n--- nats:\n{}", d.diagnostics(), nats.log());
    let rib = wait_rib(
        &c,
        "the peer's routes cleared by its closed session",
        SESSION,
        |r| r["pending"] == 0 && peer(r, "c1", bird).is_some_and(|p| p["prefixes"] == 0),
        &ctx,
    );
    assert_exactly_once(&rib, &ctx);
    let mut c = c;
    stop(&mut c);
}

#[test]
fn bird_routes_through_jetstream_json() {
    bird_rib(false);
}

#[test]
fn bird_routes_through_jetstream_raw() {
    bird_rib(true);
}

// ---------------------------------------------------------------------------
// 2. Three collectors, three speakers, one stream.

#[test]
fn three_collectors_one_stream_exact_union() {
    let nats = Nats::start();
    let url = nats.url();
    let bird = daemons::start(
        DaemonKind::Bird,
        originating(&["203.0.113.0/24"], &["2001:db8:1::/48"]),
    );
    let gobgp = daemons::start(
        DaemonKind::GoBgp,
        originating(&["198.51.100.0/24", "192.0.2.128/25"], &["2001:db8:2::/48"]),
    );
    let mut c1 = collector_for(bird.config(), &url, "c1", false);
    let mut c2 = collector_for(gobgp.config(), &url, "c2", true);
    // The announcer dials the third collector.
    let col3 = net::unique_endpoint();
    let ann = net::unique_loopback();
    let mut a3 = strings(&[
        "--router-id",
        "192.0.2.3",
        "--local-as",
        &OUR_AS.to_string(),
        "--remote-as",
        &ANNOUNCER_AS.to_string(),
        "--peer",
        &ann.to_string(),
        "--passive",
        "--listen",
        &col3.to_string(),
    ]);
    a3.extend(nats_flags(&url, "c3", false));
    let mut c3 = Tool::spawn("collector", &a3);
    let announced3 = ["10.3.0.0/16", "10.4.4.0/24", "2001:db8:3::/48"];
    let mut aa = strings(&[
        "--router-id",
        "192.0.2.33",
        "--local-as",
        &ANNOUNCER_AS.to_string(),
        "--remote-as",
        &OUR_AS.to_string(),
        "--peer",
        &col3.ip().to_string(),
        "--port",
        &col3.port().to_string(),
        "--local-address",
        &ann.to_string(),
        "--next-hop6",
        "2001:db8::33",
    ]);
    aa.extend(strings(&announced3));
    let mut announcer = Tool::spawn("announcer", &aa);
    let ctx = || {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}",
            c1.diagnostics(),
            c2.diagnostics(),
            c3.diagnostics(),
            announcer.diagnostics(),
            bird.diagnostics(),
            gobgp.diagnostics(),
            nats.log()
        )
    };
    let (pb, pg, pa) = (
        IpAddr::V4(bird.config().address),
        IpAddr::V4(gobgp.config().address),
        IpAddr::V4(ann),
    );
    for (t, p) in [(&c1, pb), (&c2, pg), (&c3, pa)] {
        wait_end_of_rib(t, p, "ipv4", SESSION, &ctx);
        wait_end_of_rib(t, p, "ipv6", SESSION, &ctx);
    }
    let want: [(&str, IpAddr, Vec<&str>); 3] = [
        ("c1", pb, vec!["203.0.113.0/24", "2001:db8:1::/48"]),
        (
            "c2",
            pg,
            vec!["198.51.100.0/24", "192.0.2.128/25", "2001:db8:2::/48"],
        ),
        ("c3", pa, announced3.to_vec()),
    ];
    let c = consumer(&url, true);
    let rib = wait_rib(
        &c,
        "the three peers' routes",
        SESSION,
        |r| {
            r["pending"] == 0
                && want
                    .iter()
                    .all(|(id, p, w)| peer(r, id, *p).is_some_and(|x| x["prefixes"] == w.len()))
        },
        &ctx,
    );
    assert_exactly_once(&rib, &ctx);
    assert_eq!(peers(&rib).len(), 3, "only the three peers\n{rib}");
    let mut union = BTreeSet::new();
    for (id, p, w) in &want {
        let x = peer(&rib, id, *p).expect("peer");
        let got = sorted(
            x["routes"]
                .as_array()
                .expect("routes")
                .iter()
                .map(|r| r["prefix"].as_str().expect("prefix").to_owned()),
        );
        assert_eq!(
            got,
            sorted(w.iter().map(|s| (*s).to_owned())),
            "{id}\n{rib}"
        );
        for g in got {
            assert!(union.insert(g.clone()), "{g} held twice\n{rib}");
        }
    }
    assert_eq!(union.len(), 2 + 3 + 3);
    // Every message the stream holds was applied once.
    let (messages, _) = nats.stream_state("BGP").expect("stream BGP");
    assert_eq!(rib["applied"], messages, "{rib}");
    let mut c = c;
    for t in [&mut c1, &mut c2, &mut c3, &mut announcer, &mut c] {
        stop(t);
    }
}

// ---------------------------------------------------------------------------
// 3 and 4: a raw speaker sending a big table.

/// `n` IPv4 /24s from 10.0.0.0, three per UPDATE, as whole messages.
fn table(n: u32, from: u32) -> Vec<Vec<u8>> {
    let prefixes: Vec<String> = (from..from + n)
        .map(|i| {
            let a = Ipv4Addr::from(0x0a00_0000u32 + (i << 8));
            format!("{a}/24")
        })
        .collect();
    let attrs = [
        update::origin_igp(),
        update::as_path_sequence(&[SPEAKER_AS]),
        update::next_hop(Ipv4Addr::new(192, 0, 2, 2)),
    ]
    .concat();
    prefixes
        .chunks(3)
        .map(|c| {
            let refs: Vec<&str> = c.iter().map(String::as_str).collect();
            let nlri = update::encode_prefixes(&refs);
            let mut body = Vec::new();
            body.extend_from_slice(&0u16.to_be_bytes());
            body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
            body.extend_from_slice(&attrs);
            body.extend_from_slice(&nlri);
            let mut m = vec![0xff; 16];
            m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
            m.push(2);
            m.extend_from_slice(&body);
            m
        })
        .collect()
}

/// The IPv4 End-of-RIB (RFC 4724 §2: an empty UPDATE).
fn end_of_rib() -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&23u16.to_be_bytes());
    m.extend_from_slice(&[2, 0, 0, 0, 0]);
    m
}

/// Sends `msgs` from a thread, in runs of whole messages under the
/// speaker's write lock (its KEEPALIVEs go between runs).
fn send_in_background(s: &Speaker, msgs: Vec<Vec<u8>>) -> std::thread::JoinHandle<()> {
    let w = s.writer();
    std::thread::spawn(move || {
        for run in msgs.chunks(200) {
            let bytes = run.concat();
            let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
            if w.write_all(&bytes).is_err() {
                return;
            }
        }
    })
}

/// A collector dialling a raw speaker (which proposes `hold` seconds),
/// with `extra` flags; the session is Established on return. Started again
/// while the stream cannot be created yet (a cluster still electing).
fn collector_and_speaker(
    urls: &str,
    raw: bool,
    extra: &[&str],
    hold: u16,
) -> (Tool, Speaker, IpAddr) {
    let ep = net::unique_endpoint();
    let ours = net::unique_loopback();
    let listener = speaker::listen(ep);
    let mut args = strings(&[
        "--router-id",
        "192.0.2.1",
        "--local-as",
        &OUR_AS.to_string(),
        "--remote-as",
        &SPEAKER_AS.to_string(),
        "--peer",
        &ep.ip().to_string(),
        "--port",
        &ep.port().to_string(),
        "--local-address",
        &ours.to_string(),
    ]);
    args.extend(nats_flags(urls, "c1", raw));
    args.extend(strings(extra));
    let deadline = Instant::now() + SESSION;
    let t = loop {
        let mut t = Tool::spawn("collector", &args);
        let up = wait_for(
            "the collector publishing, or failing to create the stream",
            SESSION,
            || {
                if t.stderr().contains("publishing to NATS JetStream") {
                    return Some(true);
                }
                t.stderr().contains("cannot create stream").then_some(false)
            },
            || t.diagnostics(),
        );
        if up {
            break t;
        }
        t.wait_exit(EXIT);
        assert!(
            Instant::now() < deadline,
            "the stream was never created\n{}",
            t.diagnostics()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut s = Speaker::accept(&listener, SESSION)
        .unwrap_or_else(|e| panic!("the collector's connection: {e}\n{}", t.diagnostics()));
    s.handshake_as_router(SPEAKER_AS, &[AfiSafi::IPV4_UNICAST], hold, SESSION, &|| {
        t.diagnostics()
    });
    s.start_keepalives(Duration::from_secs(u64::from(hold / 3).max(1)));
    t.wait_json(
        "established",
        SESSION,
        |v| v["event"] == "established",
        String::new,
    );
    (t, s, IpAddr::V4(*ep.ip()))
}

/// The session was never lost: one `established`, no `closed`.
fn assert_one_session(t: &Tool) {
    let lines = t.json();
    let est = lines.iter().filter(|v| v["event"] == "established").count();
    let closed = lines.iter().filter(|v| v["event"] == "closed").count();
    assert_eq!(
        (est, closed),
        (1, 0),
        "one session, never closed\n{}",
        t.diagnostics()
    );
}

#[test]
fn cluster_node_killed_during_a_feed_loses_nothing() {
    const PREFIXES: u32 = 100_000;
    let mut nodes = Nats::cluster(3);
    let urls = nodes.iter().map(Nats::url).collect::<Vec<_>>().join(",");
    let (mut t, mut s, peer_ip) = collector_and_speaker(&urls, true, &["--nats-replicas", "3"], 90);
    let log = |nodes: &[Nats]| {
        nodes
            .iter()
            .map(|n| format!("--- {}:\n{}", n.name, n.log()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut msgs = table(PREFIXES, 0);
    let updates = msgs.len() as u64;
    // The feed in two halves, the second sent only after the kill: the
    // node goes while the feed is being published however fast the
    // machine publishes the first half.
    let mut second = msgs.split_off(msgs.len() / 2);
    second.push(end_of_rib());
    let first = send_in_background(&s, msgs);
    // A node goes while the feed is being published: the one the
    // collector is connected to.
    let acked = |t: &Tool| last_nats(t).and_then(|v| v["acked"].as_u64()).unwrap_or(0);
    wait_for(
        "5,000 messages acknowledged",
        FEED,
        || (acked(&t) >= 5_000).then_some(()),
        || t.diagnostics(),
    );
    let victim = wait_for(
        "the node the collector is connected to",
        SESSION,
        || {
            nodes
                .iter()
                .position(|n| n.has_client("corebgp collector c1"))
        },
        || log(&nodes),
    );
    nodes[victim].kill();
    let at_kill = acked(&t);
    first.join().expect("sender, first half");
    let sender = send_in_background(&s, second);
    // Publishing goes on without it, then it comes back.
    wait_for(
        "5,000 more messages acknowledged with a node down",
        FEED,
        || (acked(&t) >= (at_kill + 5_000).min(updates)).then_some(()),
        || format!("{}\n{}", t.diagnostics(), log(&nodes)),
    );
    nodes[victim].restart();
    let ctx = || format!("{}\n{}", t.diagnostics(), log(&nodes));
    wait_end_of_rib(&t, peer_ip, "ipv4", FEED, &ctx);
    let done = wait_all_acked(&t, updates, FEED, &ctx);
    sender.join().expect("sender");
    // The kill took the collector's connection (what was in flight at that
    // moment, if anything, went again); nothing was given up.
    assert!(
        t.stderr().contains("NATS: disconnected"),
        "the collector lost its node\n{}",
        ctx()
    );
    assert_eq!(done["failed"], 0, "{done}");
    let c = consumer(&urls, false);
    let rib = wait_rib(
        &c,
        "every prefix",
        FEED,
        |r| r["pending"] == 0 && peer(r, "c1", peer_ip).is_some_and(|p| p["prefixes"] == PREFIXES),
        &ctx,
    );
    assert_exactly_once(&rib, &ctx);
    assert_eq!(peers(&rib).len(), 1, "{rib}");
    // A fast feed is batched: fewer NATS messages than UPDATEs, as the
    // collector counted them and as the stream holds them (every message
    // of the stream was read: its last sequence is their number).
    let messages = done["messages"].as_u64().expect("messages");
    assert!(
        messages < updates,
        "{messages} NATS messages for {updates} UPDATEs\n{done}"
    );
    let stream_messages = rib["stream_seq"].as_u64().expect("stream_seq");
    assert!(
        stream_messages < updates,
        "the stream holds {stream_messages} messages for {updates} UPDATEs\n{rib}"
    );
    assert!(
        rib["records"].as_u64() > Some(updates),
        "every UPDATE and event applied as a record\n{rib}"
    );
    assert_one_session(&t);
    // The speaker saw no NOTIFICATION: only KEEPALIVEs came.
    while let Ok(m) = s.recv(Duration::from_millis(200)) {
        assert_eq!(m[18], 4, "only KEEPALIVEs: {}", speaker::describe(&m));
    }
    let mut c = c;
    stop(&mut c);
    stop(&mut t);
}

#[test]
fn jetstream_away_longer_than_the_window_holds_the_session() {
    const WINDOW: u64 = 64;
    let mut nats = Nats::start();
    // Hold time 3 s: the collector sends a KEEPALIVE every second.
    let (mut t, mut s, peer_ip) = collector_and_speaker(
        &nats.url(),
        false,
        &["--nats-max-inflight", &WINDOW.to_string()],
        3,
    );
    let ctx = || format!("{}\n--- nats:\n{}", t.diagnostics(), nats.log());
    // No load: one UPDATE goes out alone, without waiting for company
    // (the collector sends nothing else meanwhile, so it is published as
    // soon as it is there, as one message of one record).
    let idle = wait_all_acked(&t, 1, FEED, &ctx);
    let (stream_before, _) = nats.stream_state("BGP").expect("stream BGP");
    send_in_background(&s, table(1, 40_000))
        .join()
        .expect("sender");
    let one = wait_all_acked(&t, idle["acked"].as_u64().expect("acked") + 1, FEED, &ctx);
    assert_eq!(
        (one["messages"].as_u64(), one["published"].as_u64()),
        (
            idle["messages"].as_u64().map(|m| m + 1),
            idle["published"].as_u64().map(|m| m + 1)
        ),
        "one UPDATE, one message\n{idle}\n{one}"
    );
    let (stream_after, _) = nats.stream_state("BGP").expect("stream BGP");
    assert_eq!(stream_after, stream_before + 1, "{one}");
    let first = table(3_000, 0);
    let first_n = first.len() as u64;
    send_in_background(&s, first).join().expect("sender");
    wait_all_acked(&t, 1 + first_n, FEED, &ctx);
    nats.kill();
    let ctx = || format!("{}\n--- nats (killed):\n{}", t.diagnostics(), nats.log());
    let before = last_nats(&t).expect("nats line");
    // Far more UPDATEs than the window holds.
    let second = table(30_000, 3_000);
    let second_n = second.len() as u64;
    let mut msgs = second;
    msgs.push(end_of_rib());
    let sender = send_in_background(&s, msgs);
    t.wait_json(
        "a full window",
        FEED,
        |v| v["event"] == "nats" && v["inflight"] == WINDOW,
        ctx,
    );
    // The collector keeps its side of the session up meanwhile: count its
    // KEEPALIVEs over more than a hold time.
    let mut keepalives = 0;
    let started = Instant::now();
    while keepalives < 5 {
        match s.recv(SESSION) {
            Ok(m) if m[18] == 4 => keepalives += 1,
            Ok(m) => panic!(
                "{} while JetStream is away\n{}",
                speaker::describe(&m),
                ctx()
            ),
            Err(e) => panic!("{e:?} while JetStream is away\n{}", ctx()),
        }
    }
    assert!(
        started.elapsed() > Duration::from_secs(3),
        "five KEEPALIVEs in {:?}",
        started.elapsed()
    );
    // Nothing got through all that time.
    let during = last_nats(&t).expect("nats line");
    assert_eq!(during["acked"], before["acked"], "{during}");
    assert_eq!(during["inflight"], WINDOW, "{during}");
    nats.restart();
    let ctx = || format!("{}\n--- nats:\n{}", t.diagnostics(), nats.log());
    wait_end_of_rib(&t, peer_ip, "ipv4", FEED, &ctx);
    let done = wait_all_acked(&t, 1 + first_n + second_n, FEED, &ctx);
    sender.join().expect("sender");
    assert!(done["retries"].as_u64() > Some(0), "{done}");
    assert_eq!(done["failed"], 0, "{done}");
    let c = consumer(&nats.url(), false);
    let rib = wait_rib(
        &c,
        "every prefix",
        FEED,
        |r| r["pending"] == 0 && peer(r, "c1", peer_ip).is_some_and(|p| p["prefixes"] == 33_001),
        &ctx,
    );
    assert_exactly_once(&rib, &ctx);
    assert_one_session(&t);
    let mut c = c;
    stop(&mut c);
    stop(&mut t);
}

// ---------------------------------------------------------------------------
// 5. Bad input: one line, exit 1, at once.

fn fails_with(tool: &str, args: &[&str], code: i32, contains: &str) {
    let started = Instant::now();
    let (status, stdout, stderr) = run_tool(tool, args, EXIT);
    let ctx = format!("{tool} {args:?}\nstdout: {stdout}\nstderr: {stderr}");
    assert_eq!(status.code(), Some(code), "{ctx}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one error line\n{ctx}");
    assert!(lines[0].starts_with(&format!("{tool}: error: ")), "{ctx}");
    assert!(lines[0].contains(contains), "expected '{contains}'\n{ctx}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}\n{ctx}",
        started.elapsed()
    );
}

const PEER_ARGS: [&str; 8] = [
    "--router-id",
    "192.0.2.1",
    "--local-as",
    "65001",
    "--remote-as",
    "65002",
    "--peer",
    "127.0.0.1",
];

fn with_peer(more: &[&str]) -> Vec<String> {
    PEER_ARGS
        .iter()
        .chain(more)
        .map(|s| (*s).to_owned())
        .collect()
}

#[test]
fn bad_nats_inputs_fail_at_start_with_one_line() {
    let nothing = format!("nats://127.0.0.1:{}", net::free_port(Ipv4Addr::LOCALHOST));
    let a = with_peer(&["--nats", &nothing]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    fails_with("collector", &a, 1, "cannot connect to NATS");
    fails_with(
        "rib-from-stream",
        &["--nats", &nothing],
        1,
        "cannot connect to NATS",
    );

    let auth = NatsAuth {
        user: "collector".into(),
        password: "right".into(),
    };
    let locked = Nats::start_with(Some(auth));
    let a = with_peer(&[
        "--nats",
        &locked.url(),
        "--nats-user",
        "collector",
        "--nats-password",
        "wrong",
    ]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    fails_with("collector", &a, 1, "authorization violation");

    // A stream BGP made for other subjects, by a first collector.
    let nats = Nats::start();
    let mut first = Tool::spawn(
        "collector",
        &with_peer(&["--nats", &nats.url(), "--nats-subject", "other"]),
    );
    wait_for(
        "stream BGP created for other.>",
        SESSION,
        || nats.stream_state("BGP").map(|_| ()),
        || first.diagnostics(),
    );
    stop(&mut first);
    let a = with_peer(&["--nats", &nats.url()]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    fails_with(
        "collector",
        &a,
        1,
        "stream BGP exists with subjects [\"other.>\"]",
    );
    fails_with(
        "rib-from-stream",
        &["--nats", &nats.url(), "--nats-stream", "NONE"],
        1,
        "stream NONE",
    );

    // Usage errors: exit 2.
    let a = with_peer(&["--nats-format", "raw"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    fails_with("collector", &a, 2, "--nats");
    let a = with_peer(&["--nats", &nats.url(), "--collector-id", "a.b"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    fails_with("collector", &a, 2, "--collector-id 'a.b'");
    let a = with_peer(&["--nats", &nats.url(), "--nats-max-inflight", "0"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    fails_with("collector", &a, 2, "--nats-max-inflight");
    let a = with_peer(&["--nats", &nats.url(), "--nats-batch", "0"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    fails_with("collector", &a, 2, "--nats-batch");
    // A batch the server could not take (its max_payload is 1 MiB).
    let a = with_peer(&["--nats", &nats.url(), "--nats-batch-bytes", "2000000"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    fails_with(
        "collector",
        &a,
        1,
        "--nats-batch-bytes 2000000: more than the server's max_payload",
    );
    let a = with_peer(&["--nats", "nats://[::1"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    fails_with("collector", &a, 2, "not a NATS URL");
}

// ---------------------------------------------------------------------------
// Giving up: JetStream away for longer than --nats-retry-for.

#[test]
fn publish_given_up_closes_the_session_with_cease_out_of_resources() {
    let mut nats = Nats::start();
    let (mut t, mut s, _) = collector_and_speaker(
        &nats.url(),
        false,
        &["--nats-max-inflight", "16", "--nats-retry-for", "1"],
        90,
    );
    nats.kill();
    let sender = send_in_background(&s, table(3_000, 0));
    // RFC 4486: Cease, Out of Resources.
    let n = loop {
        match s.recv(FEED) {
            Ok(m) if m[18] == 4 => continue,
            Ok(m) => break m,
            Err(e) => panic!("{e:?} instead of a NOTIFICATION\n{}", t.diagnostics()),
        }
    };
    assert_eq!(
        (n[18], n[19], n[20]),
        (3, 6, 8),
        "a Cease 6/8: {}\n{}",
        speaker::describe(&n),
        t.diagnostics()
    );
    t.wait_json(
        "the notification line of the Cease 6/8 sent",
        SESSION,
        |v| {
            v["event"] == "notification"
                && v["direction"] == "sent"
                && v["code"] == 6
                && v["subcode"] == 8
        },
        || t.diagnostics(),
    );
    assert!(
        t.stderr().contains("not acknowledged") && t.stderr().contains("Cease 6/8"),
        "a clear error\n{}",
        t.diagnostics()
    );
    s.close();
    let _ = sender.join();
    // Stopping with messages it cannot deliver: exit 1 and one line saying so.
    t.signal(libc::SIGTERM);
    let status = t.wait_exit(EXIT);
    assert_eq!(status.code(), Some(1), "{status}\n{}", t.diagnostics());
    let last = t.stderr().lines().last().unwrap_or_default().to_owned();
    assert!(
        last.starts_with("collector: error: --nats: ")
            && last.contains("not acknowledged by JetStream at the stop"),
        "{last}\n{}",
        t.diagnostics()
    );
}
