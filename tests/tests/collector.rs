//! The `collector` tool (examples/collector.rs) run as an operator runs it:
//! against BIRD 2 and GoBGP 3, dialling and listening; with `--mrt` files
//! read back by bgpdump and bgpkit-parser, one file and rotated ones; in
//! `--stats` mode; with a `--config` file of two peers; against a raw
//! speaker sending RFC 7606 malformed UPDATEs; with stdout closed under it;
//! and with bad command lines.
//!
//! Every stdout line is parsed into [`Line`], a strict copy of the schema of
//! examples/tools/schema.rs (unknown fields, missing fields and unknown
//! values fail), so the schema cannot drift without this file noticing.
//!
//! Each test starts its own daemons and collector on its own loopback
//! addresses; daemons and collectors are killed when a test fails.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use corebgp_core::wire::{AfiSafi, Message};
use corebgp_tests::daemons::{
    self, DAEMON_NEXT_HOP_V4, DAEMON_NEXT_HOP_V6, Daemon, DaemonConfig, DaemonKind, Direction,
};
use corebgp_tests::net;
use corebgp_tests::speaker::{self, Speaker};
use corebgp_tests::tools::{Tool, example_binary, run_tool};
use corebgp_tests::wait::{poll, wait_for};
use serde::{Deserialize, Deserializer};

/// The collector's AS.
const OUR_AS: u32 = 65001;
/// The daemons' AS: 4-octet, so AS paths and MRT records need 4-octet ASNs.
const DAEMON_AS: u32 = 4_200_000_002;
/// The collector's BGP identifier.
const ROUTER_ID: &str = "192.0.2.1";
/// Sessions: BIRD reconnects every 1–2 s, an active gobgpd first dials
/// after 5–10 s, and the machine may be busy.
const SESSION: Duration = Duration::from_secs(60);
/// A process exiting after SIGTERM or a bad flag.
const EXIT: Duration = Duration::from_secs(30);

const V4: [&str; 2] = ["203.0.113.0/24", "198.51.100.128/25"];
const V6: [&str; 2] = ["2001:db8:1::/48", "2001:db8:2:3::/64"];
const COMMUNITIES: [&str; 2] = ["65001:1", "64512:300"];
const LARGE_COMMUNITIES: [&str; 2] = ["65001:1:2", "4200000002:0:4294967295"];

// ---------------------------------------------------------------------------
// The JSON lines, strictly.

/// One stdout line (`{"event": …}`), as documented in examples/tools/schema.rs.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    State {
        peer: IpAddr,
        connection: Connection,
        from: FsmState,
        to: FsmState,
        at: f64,
    },
    Established {
        peer: IpAddr,
        peer_as: u32,
        peer_id: Ipv4Addr,
        hold_time: u16,
        capabilities: Vec<String>,
        families: Vec<String>,
        #[serde(deserialize_with = "nullable")]
        local_address: Option<IpAddr>,
        at: f64,
    },
    Update(Box<UpdateLine>),
    EndOfRib {
        peer: IpAddr,
        afi: String,
        safi: String,
        prefixes: u64,
        at: f64,
    },
    Notification {
        peer: IpAddr,
        direction: NotificationDirection,
        code: u8,
        subcode: u8,
        name: String,
        data: String,
        #[serde(deserialize_with = "nullable")]
        message: Option<String>,
        at: f64,
    },
    Closed {
        peer: IpAddr,
        reason: CloseReason,
        #[serde(deserialize_with = "nullable")]
        code: Option<u8>,
        #[serde(deserialize_with = "nullable")]
        subcode: Option<u8>,
        at: f64,
    },
    Stats {
        at: f64,
        peers: Vec<PeerStats>,
    },
}

/// A field that must be present, possibly `null` (serde lets a plain
/// `Option` field be absent).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Connection {
    Inbound,
    Outbound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FsmState {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum NotificationDirection {
    Received,
    Sent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CloseReason {
    NotificationSent,
    NotificationReceived,
    TransportClosed,
    ConnectFailed,
    Stopped,
    Collision,
    Dropped,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateLine {
    peer: IpAddr,
    at: f64,
    announced: Vec<Route>,
    withdrawn: Vec<Route>,
    attributes: Attributes,
    /// Absent unless RFC 7606 treat-as-withdraw applied.
    #[serde(default)]
    treat_as_withdraw: Option<String>,
    /// Absent unless RFC 7606 attribute discard applied.
    #[serde(default)]
    discarded: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Route {
    prefix: String,
    #[serde(deserialize_with = "nullable")]
    path_id: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Attributes {
    #[serde(deserialize_with = "nullable")]
    origin: Option<OriginName>,
    #[serde(deserialize_with = "nullable")]
    as_path: Option<Vec<PathElem>>,
    #[serde(deserialize_with = "nullable")]
    next_hop: Option<IpAddr>,
    /// Absent unless MP_REACH_NLRI carries a link-local next hop.
    #[serde(default)]
    next_hop_link_local: Option<Ipv6Addr>,
    #[serde(deserialize_with = "nullable")]
    med: Option<u32>,
    #[serde(deserialize_with = "nullable")]
    local_pref: Option<u32>,
    communities: Vec<String>,
    large_communities: Vec<String>,
    ext_communities: Vec<String>,
    ipv6_ext_communities: Vec<String>,
    atomic_aggregate: bool,
    #[serde(deserialize_with = "nullable")]
    aggregator: Option<Aggregator>,
    #[serde(deserialize_with = "nullable")]
    originator_id: Option<Ipv4Addr>,
    cluster_list: Vec<Ipv4Addr>,
    #[serde(deserialize_with = "nullable")]
    otc: Option<u32>,
    #[serde(deserialize_with = "nullable")]
    aigp: Option<u64>,
    unknown: Vec<UnknownAttribute>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum OriginName {
    Igp,
    Egp,
    Incomplete,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum PathElem {
    Asn(u32),
    Set(Vec<u32>),
    ConfedSequence { confed_sequence: Vec<u32> },
    ConfedSet { confed_set: Vec<u32> },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Aggregator {
    #[allow(dead_code)]
    asn: u32,
    #[allow(dead_code)]
    address: Ipv4Addr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnknownAttribute {
    #[serde(rename = "type")]
    #[allow(dead_code)]
    type_code: u8,
    #[allow(dead_code)]
    flags: u8,
    #[allow(dead_code)]
    value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum PeerState {
    Established,
    Down,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerStats {
    peer: IpAddr,
    state: PeerState,
    updates: u64,
    announced: u64,
    withdrawn: u64,
    bytes: u64,
}

impl Line {
    fn at(&self) -> f64 {
        match self {
            Line::State { at, .. }
            | Line::Established { at, .. }
            | Line::EndOfRib { at, .. }
            | Line::Notification { at, .. }
            | Line::Closed { at, .. }
            | Line::Stats { at, .. } => *at,
            Line::Update(u) => u.at,
        }
    }
}

/// Every stdout line of `t`, each parsed strictly (a line that does not
/// parse fails the test with the line and the tool's output).
fn lines(t: &Tool) -> Vec<Line> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    t.lines()
        .iter()
        .map(|l| {
            let line: Line = serde_json::from_str(l).unwrap_or_else(|e| {
                panic!(
                    "a stdout line does not match the schema ({e}):\n{l}\n{}",
                    t.diagnostics()
                )
            });
            let at = line.at();
            assert!(
                at > now - 3600.0 && at < now + 60.0,
                "`at` is not the Unix time in seconds: {l}"
            );
            line
        })
        .collect()
}

#[test]
fn the_schema_types_are_strict() {
    let eor = r#"{"event":"end_of_rib","peer":"127.0.0.1","afi":"ipv4","safi":"unicast","prefixes":2,"at":1.5}"#;
    assert!(serde_json::from_str::<Line>(eor).is_ok());
    const UPDATE: &str = r#"{"event":"update","peer":"127.0.0.1","at":1.5,"announced":[{"prefix":"10.0.0.0/8","path_id":null}],"withdrawn":[],"attributes":{"origin":"igp","as_path":[1,[2,3],{"confed_sequence":[4]}],"next_hop":"192.0.2.1","med":null,"local_pref":null,"communities":[],"large_communities":[],"ext_communities":[],"ipv6_ext_communities":[],"atomic_aggregate":false,"aggregator":null,"originator_id":null,"cluster_list":[],"otc":null,"aigp":null,"unknown":[]}}"#;
    let u = serde_json::from_str::<Line>(UPDATE).expect("a valid update line");
    let Line::Update(u) = u else { panic!("{u:?}") };
    assert_eq!(
        u.attributes.as_path,
        Some(vec![
            PathElem::Asn(1),
            PathElem::Set(vec![2, 3]),
            PathElem::ConfedSequence {
                confed_sequence: vec![4]
            }
        ])
    );
    for bad in [
        // An unknown field.
        r#"{"event":"end_of_rib","peer":"127.0.0.1","afi":"ipv4","safi":"unicast","prefixes":2,"at":1.5,"x":1}"#,
        // A missing field.
        r#"{"event":"end_of_rib","peer":"127.0.0.1","afi":"ipv4","safi":"unicast","at":1.5}"#,
        // A missing nullable field.
        r#"{"event":"closed","peer":"127.0.0.1","reason":"stopped","code":null,"at":1.5}"#,
        // An unknown value.
        r#"{"event":"closed","peer":"127.0.0.1","reason":"tired","code":null,"subcode":null,"at":1.5}"#,
        // An unknown event (announcer's are not the collector's).
        r#"{"event":"health","status":"up","checks":1,"routes":1,"at":1.5}"#,
        // An unknown field in an update line's attributes.
        &UPDATE.replace(r#""unknown":[]"#, r#""unknown":[],"x":1"#),
        // A missing attribute.
        &UPDATE.replace(r#""otc":null,"#, ""),
        // An unknown field in a nested struct.
        r#"{"event":"stats","at":1.5,"peers":[{"peer":"127.0.0.1","state":"down","updates":0,"announced":0,"withdrawn":0,"bytes":0,"x":0}]}"#,
    ] {
        assert!(
            serde_json::from_str::<Line>(bad).is_err(),
            "accepted: {bad}"
        );
    }
}

// ---------------------------------------------------------------------------
// Running the collector.

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

/// The flags for one collector peering with the daemon of `c`: dialling it
/// from `c.peer_address`, or (`passive`) listening where the daemon dials
/// (without `--local-address`: the collector learns its address from the
/// accepted connection).
fn collector_args(c: &DaemonConfig, passive: bool) -> Vec<String> {
    let mut a = strings(&[
        "--router-id",
        ROUTER_ID,
        "--local-as",
        &OUR_AS.to_string(),
        "--remote-as",
        &DAEMON_AS.to_string(),
        "--peer",
        &c.address.to_string(),
        "--port",
        &c.port.to_string(),
    ]);
    if passive {
        a.extend(strings(&[
            "--passive",
            "--listen",
            &c.peer_endpoint().to_string(),
        ]));
    } else {
        a.extend(strings(&["--local-address", &c.peer_address.to_string()]));
    }
    a
}

/// A daemon originating [`V4`] and [`V6`] with [`COMMUNITIES`] and
/// [`LARGE_COMMUNITIES`]; it dials the collector when the collector is
/// passive, else waits for it.
fn daemon_config(collector_passive: bool) -> DaemonConfig {
    originating(!collector_passive, &V4, &V6)
}

/// A daemon (passive or not) originating `v4` and `v6` with
/// [`COMMUNITIES`] and [`LARGE_COMMUNITIES`].
fn originating(passive: bool, v4: &[&str], v6: &[&str]) -> DaemonConfig {
    let mut c = DaemonConfig::new(DAEMON_AS, OUR_AS).passive(passive);
    for p in v4 {
        c = c.ipv4_route(p);
    }
    for p in v6 {
        c = c.ipv6_route(p);
    }
    c.communities(&COMMUNITIES)
        .large_communities(&LARGE_COMMUNITIES)
}

fn peer_ip(d: &dyn Daemon) -> IpAddr {
    IpAddr::V4(d.config().address)
}

/// Waits for the End-of-RIB lines of both families from `peer`.
fn wait_end_of_ribs(t: &Tool, peer: IpAddr, ctx: &dyn Fn() -> String) {
    for afi in ["ipv4", "ipv6"] {
        t.wait_json(
            &format!("end_of_rib {afi}/unicast from {peer}"),
            SESSION,
            |v| {
                v["event"] == "end_of_rib"
                    && v["afi"] == afi
                    && v["peer"].as_str() == Some(&peer.to_string())
            },
            ctx,
        );
    }
}

/// SIGTERM, then exit 0 within [`EXIT`].
fn stop(t: &mut Tool) {
    t.signal(libc::SIGTERM);
    let status = t.wait_exit(EXIT);
    assert_eq!(
        status.code(),
        Some(0),
        "collector after SIGTERM: {status}\n{}",
        t.diagnostics()
    );
    assert!(
        !t.stderr().contains("panicked"),
        "collector panicked:\n{}",
        t.diagnostics()
    );
}

/// The daemon logs the Cease 6/2 (Administrative Shutdown) of a stopping
/// collector.
fn wait_cease_received(d: &dyn Daemon) {
    d.wait_notification(SESSION, &|n| {
        n.direction == Direction::Received && (n.code, n.subcode) == (6, 2)
    });
}

/// The next hop the daemon puts on its routes towards the collector: the
/// one it was configured with (BIRD's `next hop address`, the `nexthop` of
/// `gobgp global rib add`; GoBGP does not rewrite it to itself).
fn expected_next_hop(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(DAEMON_NEXT_HOP_V6.parse().expect("v6"))
    } else {
        IpAddr::V4(DAEMON_NEXT_HOP_V4)
    }
}

/// The ORIGIN of the daemon's routes: BIRD's static routes are IGP; GoBGP
/// originates `gobgp global rib add` routes as INCOMPLETE.
fn expected_origin(kind: DaemonKind) -> OriginName {
    match kind {
        DaemonKind::GoBgp => OriginName::Incomplete,
        _ => OriginName::Igp,
    }
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

/// Checks the `update` and `end_of_rib` lines from `d`: exactly `v4` and
/// `v6` announced once each with the daemon's attributes, nothing
/// withdrawn, and one End-of-RIB per family with the right count.
fn check_routes(
    lines: &[Line],
    d: &dyn Daemon,
    v4: &[&str],
    v6: &[&str],
    ctx: &dyn Fn() -> String,
) {
    let peer = peer_ip(d);
    let mut announced = Vec::new();
    for l in lines {
        let Line::Update(u) = l else { continue };
        if u.peer != peer {
            continue;
        }
        assert!(
            u.withdrawn.is_empty() && u.treat_as_withdraw.is_none() && u.discarded.is_empty(),
            "{u:?}\n{}",
            ctx()
        );
        assert!(!u.announced.is_empty(), "an empty update line: {u:?}");
        let a = &u.attributes;
        for r in &u.announced {
            let v6 = r.prefix.contains(':');
            assert_eq!(r.path_id, None, "{u:?}");
            assert_eq!(a.origin, Some(expected_origin(d.kind())), "{u:?}");
            assert_eq!(
                a.as_path,
                Some(vec![PathElem::Asn(DAEMON_AS)]),
                "{u:?}\n{}",
                ctx()
            );
            assert_eq!(
                a.next_hop,
                Some(expected_next_hop(v6)),
                "next hop of {}: {u:?}\n{}",
                r.prefix,
                ctx()
            );
            let mut comms = a.communities.clone();
            comms.sort();
            assert_eq!(comms, sorted(&COMMUNITIES), "{u:?}");
            let mut large = a.large_communities.clone();
            large.sort();
            assert_eq!(large, sorted(&LARGE_COMMUNITIES), "{u:?}");
            assert_eq!(a.local_pref, None, "no LOCAL_PREF over eBGP: {u:?}");
            assert_eq!(a.med, None, "{u:?}");
            assert_eq!(a.next_hop_link_local, None, "{u:?}");
            assert!(
                a.ext_communities.is_empty()
                    && a.ipv6_ext_communities.is_empty()
                    && !a.atomic_aggregate
                    && a.aggregator.is_none()
                    && a.originator_id.is_none()
                    && a.cluster_list.is_empty()
                    && a.otc.is_none()
                    && a.aigp.is_none()
                    && a.unknown.is_empty(),
                "{u:?}"
            );
            announced.push(r.prefix.clone());
        }
    }
    let mut want: Vec<String> = v4.iter().chain(v6).map(|s| (*s).to_owned()).collect();
    want.sort();
    announced.sort();
    assert_eq!(announced, want, "announced prefixes\n{}", ctx());
    let eors: Vec<(String, String, u64)> = lines
        .iter()
        .filter_map(|l| match l {
            Line::EndOfRib {
                peer: p,
                afi,
                safi,
                prefixes,
                ..
            } if *p == peer => Some((afi.clone(), safi.clone(), *prefixes)),
            _ => None,
        })
        .collect();
    let mut eors_sorted = eors.clone();
    eors_sorted.sort();
    assert_eq!(
        eors_sorted,
        [
            ("ipv4".to_owned(), "unicast".to_owned(), v4.len() as u64),
            ("ipv6".to_owned(), "unicast".to_owned(), v6.len() as u64),
        ],
        "one end_of_rib per family, with its prefix count\n{}",
        ctx()
    );
}

/// Checks the `established` and `state` lines of the session with `d`.
fn check_established(lines: &[Line], d: &dyn Daemon, passive: bool, ctx: &dyn Fn() -> String) {
    let peer = peer_ip(d);
    let c = d.config();
    let est: Vec<&Line> = lines
        .iter()
        .filter(|l| matches!(l, Line::Established { peer: p, .. } if *p == peer))
        .collect();
    assert_eq!(est.len(), 1, "one established line\n{}", ctx());
    let Line::Established {
        peer_as,
        peer_id,
        hold_time,
        capabilities,
        families,
        local_address,
        ..
    } = est[0]
    else {
        unreachable!()
    };
    assert_eq!(*peer_as, DAEMON_AS);
    assert_eq!(*peer_id, c.router_id);
    assert!(*hold_time == 0 || *hold_time >= 3, "{hold_time}");
    for cap in [
        "multiprotocol:ipv4-unicast",
        "multiprotocol:ipv6-unicast",
        "four-octet-as",
        "graceful-restart",
    ] {
        assert!(
            capabilities.iter().any(|c| c == cap),
            "{cap} missing from {capabilities:?}"
        );
    }
    let fams: BTreeSet<&str> = families.iter().map(String::as_str).collect();
    assert_eq!(
        fams,
        BTreeSet::from(["ipv4-unicast", "ipv6-unicast"]),
        "{families:?}"
    );
    assert_eq!(*local_address, Some(IpAddr::V4(c.peer_address)));
    let want = if passive {
        Connection::Inbound
    } else {
        Connection::Outbound
    };
    assert!(
        lines.iter().any(|l| matches!(
            l,
            Line::State { peer: p, connection, from: FsmState::OpenConfirm, to: FsmState::Established, .. }
                if *p == peer && *connection == want
        )),
        "a state line openconfirm → established on the {want:?} connection\n{}",
        ctx()
    );
}

// ---------------------------------------------------------------------------
// 1. Routes with communities from BIRD and GoBGP, both directions.

fn routes_from(kind: DaemonKind, passive: bool) {
    let d = daemons::start(kind, daemon_config(passive));
    let mut t = Tool::spawn("collector", &collector_args(d.config(), passive));
    let ctx = || d.diagnostics();
    wait_end_of_ribs(&t, peer_ip(&*d), &ctx);
    d.wait_established(SESSION);
    let all = lines(&t);
    let ctx = || format!("{}\n{}", t.diagnostics(), d.diagnostics());
    check_established(&all, &*d, passive, &ctx);
    check_routes(&all, &*d, &V4, &V6, &ctx);
    assert!(
        !all.iter()
            .any(|l| matches!(l, Line::Notification { .. } | Line::Closed { .. })),
        "no NOTIFICATION or close while up\n{}",
        ctx()
    );
    stop(&mut t);
    wait_cease_received(&*d);
    // The collector reports the Cease it sent on the way out.
    let all = lines(&t);
    assert!(
        all.iter().any(|l| matches!(
            l,
            Line::Notification {
                direction: NotificationDirection::Sent,
                code: 6,
                subcode: 2,
                ..
            }
        )),
        "a notification line for the Cease 6/2 sent\n{}",
        t.diagnostics()
    );
}

#[test]
fn bird_routes_collector_active() {
    routes_from(DaemonKind::Bird, false);
}

#[test]
fn bird_routes_collector_passive() {
    routes_from(DaemonKind::Bird, true);
}

#[test]
fn gobgp_routes_collector_active() {
    routes_from(DaemonKind::GoBgp, false);
}

#[test]
fn gobgp_routes_collector_passive() {
    routes_from(DaemonKind::GoBgp, true);
}

// ---------------------------------------------------------------------------
// 2. MRT, read back by bgpdump and bgpkit-parser.

fn bgpdump_binary() -> PathBuf {
    corebgp_tests::process::find_binary("bgpdump").unwrap_or_else(|| {
        panic!("required program `bgpdump` not found; install with: apt-get install -y bgpdump")
    })
}

/// `bgpdump -m FILE`: its lines, or a failure with its stderr.
fn bgpdump(path: &Path) -> Vec<String> {
    let out = Command::new(bgpdump_binary())
        .arg("-m")
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run bgpdump");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bgpdump -m {}: {}\n{stderr}",
        path.display(),
        out.status
    );
    // bgpdump reports a record it cannot read on stderr and goes on.
    for l in stderr.lines() {
        let l = l.to_ascii_lowercase();
        assert!(
            !(l.contains("error")
                || l.contains("warn")
                || l.contains("unknown")
                || l.contains("invalid")),
            "bgpdump -m {} complained: {stderr}",
            path.display()
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// What bgpdump saw: announced prefixes with their AS path and communities
/// fields, withdrawn prefixes, and state changes (old, new).
#[derive(Debug, Default)]
struct Dumped {
    announced: Vec<String>,
    paths: Vec<String>,
    communities: Vec<String>,
    withdrawn: Vec<String>,
    states: Vec<(u16, u16)>,
}

fn parse_bgpdump(lines: &[String], peer: IpAddr, peer_as: u32) -> Dumped {
    let mut d = Dumped::default();
    for l in lines {
        let f: Vec<&str> = l.split('|').collect();
        assert!(f.len() >= 7, "bgpdump line: {l}");
        assert_eq!(f[0], "BGP4MP_ET", "bgpdump line: {l}");
        assert_eq!(f[3], peer.to_string(), "peer in {l}");
        assert_eq!(f[4], peer_as.to_string(), "peer AS in {l}");
        match f[2] {
            "A" => {
                assert!(f.len() >= 12, "bgpdump line: {l}");
                d.announced.push(f[5].to_owned());
                d.paths.push(f[6].to_owned());
                d.communities.push(f[11].to_owned());
            }
            "W" => d.withdrawn.push(f[5].to_owned()),
            "STATE" => d.states.push((
                f[5].parse().expect("old state"),
                f[6].parse().expect("new state"),
            )),
            other => panic!("unexpected bgpdump record type {other}: {l}"),
        }
    }
    d
}

/// What bgpkit-parser saw.
#[derive(Debug, Default)]
struct Parsed {
    /// Announced prefixes, with the AS path and the (sorted) communities
    /// and large communities of each.
    announced: Vec<String>,
    paths: Vec<String>,
    communities: Vec<(Vec<String>, Vec<String>)>,
    withdrawn: Vec<String>,
    states: Vec<(u16, u16)>,
    opens: usize,
    /// Code, subcode and data of each NOTIFICATION.
    notifications: Vec<(u8, u8, Vec<u8>)>,
    /// BGP4MP subtypes of the message records (4: MESSAGE_AS4, 1: MESSAGE).
    message_subtypes: BTreeSet<u16>,
    /// BGP4MP subtypes of the state change records.
    state_subtypes: BTreeSet<u16>,
    /// The local addresses of every record.
    local_ips: BTreeSet<IpAddr>,
}

fn parse_bgpkit(path: &Path, peer: IpAddr, peer_as: u32) -> Parsed {
    use bgpkit_parser::BgpkitParser;
    use bgpkit_parser::models::{
        Bgp4MpEnum, BgpMessage, ElemType, EntryType, MetaCommunity, MrtMessage,
    };
    let mut p = Parsed::default();
    let open = || std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for r in BgpkitParser::from_reader(open()).into_fallible_record_iter() {
        let r = r.unwrap_or_else(|e| panic!("bgpkit-parser, {}: {e}", path.display()));
        assert_eq!(r.common_header.entry_type, EntryType::BGP4MP_ET, "{r:?}");
        let subtype = r.common_header.entry_subtype;
        match r.message {
            MrtMessage::Bgp4Mp(Bgp4MpEnum::StateChange(s)) => {
                assert_eq!(s.peer_ip, peer);
                assert_eq!(u32::from(s.peer_asn), peer_as);
                assert_eq!(u32::from(s.local_asn), OUR_AS);
                p.states.push((s.old_state as u16, s.new_state as u16));
                p.state_subtypes.insert(subtype);
                p.local_ips.insert(s.local_addr);
            }
            MrtMessage::Bgp4Mp(Bgp4MpEnum::Message(m)) => {
                assert_eq!(m.peer_ip, peer);
                assert_eq!(u32::from(m.peer_asn), peer_as);
                assert_eq!(u32::from(m.local_asn), OUR_AS);
                p.message_subtypes.insert(subtype);
                p.local_ips.insert(m.local_ip);
                match m.bgp_message {
                    BgpMessage::Open(_) => p.opens += 1,
                    BgpMessage::Notification(n) => {
                        let (c, sc) = n.error.get_codes();
                        p.notifications.push((c, sc, n.data.clone()));
                    }
                    _ => {}
                }
            }
            other => panic!("unexpected MRT record {other:?}"),
        }
    }
    for e in BgpkitParser::from_reader(open()).into_fallible_elem_iter() {
        let e = e.unwrap_or_else(|e| panic!("bgpkit-parser, {}: {e}", path.display()));
        assert_eq!(e.peer_ip, peer);
        match e.elem_type {
            ElemType::ANNOUNCE => {
                let mut plain = Vec::new();
                let mut large = Vec::new();
                for c in e.communities.iter().flatten() {
                    match c {
                        MetaCommunity::Plain(c) => plain.push(c.to_string()),
                        MetaCommunity::Large(c) => large.push(c.to_string()),
                        other => panic!("unexpected community {other:?}"),
                    }
                }
                plain.sort();
                large.sort();
                p.announced.push(e.prefix.to_string());
                p.paths.push(
                    e.as_path
                        .as_ref()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                );
                p.communities.push((plain, large));
            }
            ElemType::WITHDRAW => p.withdrawn.push(e.prefix.to_string()),
        }
    }
    p
}

/// The UPDATE messages of an MRT file of BGP4MP_ET records (read here by
/// hand, RFC 6396 §3 and §4.4): their count and bytes, headers included.
fn mrt_updates(path: &Path) -> (u64, u64) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut n, mut bytes, mut at) = (0, 0, 0);
    while at < b.len() {
        let h = &b[at..at + 12];
        let (ty, sub) = (
            u16::from_be_bytes([h[4], h[5]]),
            u16::from_be_bytes([h[6], h[7]]),
        );
        let len = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
        assert_eq!(ty, 17, "BGP4MP_ET");
        // The microseconds, then the peer and local AS, interface, AFI.
        let body = &b[at + 16..at + 12 + len];
        let asn = if sub == 1 { 2 } else { 4 };
        if sub == 1 || sub == 4 {
            let afi = u16::from_be_bytes([body[2 * asn + 2], body[2 * asn + 3]]);
            let addrs = if afi == 1 { 8 } else { 32 };
            let msg = &body[2 * asn + 4 + addrs..];
            let mlen = u16::from_be_bytes([msg[16], msg[17]]);
            assert_eq!(usize::from(mlen), msg.len(), "one BGP message per record");
            if msg[18] == 2 {
                n += 1;
                bytes += u64::from(mlen);
            }
        }
        at += 12 + len;
    }
    (n, bytes)
}

/// The daemon's routes as the MRT readers saw them: exactly [`V4`] and
/// [`V6`] (`prefixes`), each with the daemon's AS path and communities.
fn check_mrt_routes(dumped: &Dumped, parsed: &Parsed, prefixes: &[String]) {
    let mut got = dumped.announced.clone();
    got.sort();
    assert_eq!(got, prefixes, "bgpdump: {dumped:?}");
    assert!(dumped.withdrawn.is_empty(), "bgpdump: {dumped:?}");
    for (path, c) in dumped.paths.iter().zip(&dumped.communities) {
        assert_eq!(path, &DAEMON_AS.to_string(), "bgpdump: {dumped:?}");
        let mut c: Vec<&str> = c.split(' ').collect();
        c.sort();
        assert_eq!(c, sorted(&COMMUNITIES), "bgpdump: {dumped:?}");
    }
    let mut got = parsed.announced.clone();
    got.sort();
    assert_eq!(got, prefixes, "bgpkit-parser: {parsed:?}");
    assert!(parsed.withdrawn.is_empty(), "bgpkit-parser: {parsed:?}");
    for (path, (plain, large)) in parsed.paths.iter().zip(&parsed.communities) {
        assert_eq!(path, &DAEMON_AS.to_string(), "bgpkit-parser: {parsed:?}");
        assert_eq!(plain, &sorted(&COMMUNITIES), "bgpkit-parser: {parsed:?}");
        assert_eq!(
            large,
            &sorted(&LARGE_COMMUNITIES),
            "bgpkit-parser: {parsed:?}"
        );
    }
}

fn all_prefixes() -> Vec<String> {
    let mut v: Vec<String> = V4.iter().chain(&V6).map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

#[test]
fn mrt_file_is_read_back_by_bgpdump_and_bgpkit() {
    bgpdump_binary();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("updates.mrt");
    let d = daemons::start(DaemonKind::Bird, daemon_config(false));
    let mut args = collector_args(d.config(), false);
    args.extend(strings(&["--mrt", &file.to_string_lossy()]));
    let mut t = Tool::spawn("collector", &args);
    let ctx = || d.diagnostics();
    wait_end_of_ribs(&t, peer_ip(&*d), &ctx);
    stop(&mut t);
    wait_cease_received(&*d);
    let peer = peer_ip(&*d);

    let dumped = parse_bgpdump(&bgpdump(&file), peer, DAEMON_AS);
    let parsed = parse_bgpkit(&file, peer, DAEMON_AS);
    check_mrt_routes(&dumped, &parsed, &all_prefixes());
    // Up to Established (6) and, after SIGTERM, back to Idle (1).
    assert!(
        dumped.states.iter().any(|s| s.1 == 6),
        "bgpdump: {dumped:?}"
    );
    assert_eq!(dumped.states.last(), Some(&(6, 1)), "bgpdump: {dumped:?}");
    assert_eq!(parsed.states, dumped.states, "bgpkit-parser and bgpdump");
    assert_eq!(parsed.opens, 1, "the daemon's OPEN: {parsed:?}");
    assert!(parsed.notifications.is_empty(), "{parsed:?}");
    // A 4-octet AS session: MESSAGE_AS4 and STATE_CHANGE_AS4.
    assert_eq!(parsed.message_subtypes, BTreeSet::from([4]), "{parsed:?}");
    assert_eq!(parsed.state_subtypes, BTreeSet::from([5]), "{parsed:?}");
    let ours = IpAddr::V4(d.config().peer_address);
    assert_eq!(parsed.local_ips, BTreeSet::from([ours]), "{parsed:?}");
}

#[test]
fn rotated_mrt_files_are_complete_and_hold_every_prefix() {
    bgpdump_binary();
    let dir = tempfile::tempdir().expect("temp dir");
    let template = dir.path().join("updates.mrt");
    // The collector listens here: the MRT records carry the local address
    // of the accepted connection.
    let d = daemons::start(DaemonKind::GoBgp, daemon_config(true));
    let mut args = collector_args(d.config(), true);
    args.extend(strings(&[
        "--mrt",
        &template.to_string_lossy(),
        "--mrt-rotate",
        "1",
    ]));
    let mut t = Tool::spawn("collector", &args);
    let ctx = || d.diagnostics();
    wait_end_of_ribs(&t, peer_ip(&*d), &ctx);
    let names = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        v.sort();
        v
    };
    // At least two rotations after the routes arrived.
    wait_for(
        "three complete MRT files",
        SESSION,
        || {
            let n = names(dir.path());
            (n.iter().filter(|n| !n.starts_with('.')).count() >= 3).then_some(())
        },
        || format!("{:?}\n{}", names(dir.path()), t.diagnostics()),
    );
    stop(&mut t);
    wait_cease_received(&*d);
    let files = names(dir.path());
    let peer = peer_ip(&*d);
    let mut union = BTreeSet::new();
    let mut states = Vec::new();
    for f in &files {
        assert!(
            !f.starts_with('.') && !f.ends_with(".partial"),
            "a partial file left after exit: {files:?}"
        );
        // updates.YYYYMMDD.HHMMSS.mrt
        let parts: Vec<&str> = f.split('.').collect();
        assert!(
            parts.len() == 4
                && parts[0] == "updates"
                && parts[1].len() == 8
                && parts[2].len() == 6
                && parts[3] == "mrt"
                && parts[1..3]
                    .iter()
                    .all(|p| p.bytes().all(|b| b.is_ascii_digit())),
            "rotated file name {f}"
        );
        let path = dir.path().join(f);
        let dumped = parse_bgpdump(&bgpdump(&path), peer, DAEMON_AS);
        let parsed = parse_bgpkit(&path, peer, DAEMON_AS);
        let mut here = dumped.announced.clone();
        here.sort();
        check_mrt_routes(&dumped, &parsed, &here);
        assert_eq!(
            parsed.states, dumped.states,
            "{f}: bgpkit-parser and bgpdump"
        );
        let ours = IpAddr::V4(d.config().peer_address);
        assert!(
            parsed.local_ips.iter().all(|a| *a == ours),
            "{f}: {parsed:?}"
        );
        states.extend(dumped.states.iter().copied());
        union.extend(dumped.announced.iter().cloned());
    }
    assert_eq!(
        union.into_iter().collect::<Vec<_>>(),
        all_prefixes(),
        "{files:?}"
    );
    assert!(states.iter().any(|s| s.1 == 6), "{states:?}");
    assert_eq!(states.last(), Some(&(6, 1)), "{states:?}");
}

// ---------------------------------------------------------------------------
// 3. --stats

#[test]
fn stats_mode_counts_what_the_daemon_sent() {
    let d = daemons::start(DaemonKind::Bird, daemon_config(false));
    let dir = tempfile::tempdir().expect("temp dir");
    let mrt = dir.path().join("updates.mrt");
    let mut args = collector_args(d.config(), false);
    args.extend(strings(&[
        "--stats",
        "--stats-interval",
        "1",
        "--mrt",
        &mrt.to_string_lossy(),
    ]));
    let mut t = Tool::spawn("collector", &args);
    let peer = peer_ip(&*d);
    let ctx = || d.diagnostics();
    wait_end_of_ribs(&t, peer, &ctx);
    // A stats line printed after both End-of-RIBs (each second).
    let eor_lines = t.lines().len();
    let stats_after = |t: &Tool| -> Vec<PeerStats> {
        lines(t)
            .into_iter()
            .skip(eor_lines)
            .filter_map(|l| match l {
                Line::Stats { peers, .. } => Some(peers),
                _ => None,
            })
            .map(|p| {
                assert_eq!(p.len(), 1, "{p:?}");
                p.into_iter().next().expect("one peer")
            })
            .collect()
    };
    let s = wait_for(
        "two stats lines after the End-of-RIBs",
        SESSION,
        || {
            let s = stats_after(&t);
            (s.len() >= 2).then(|| s[1].clone())
        },
        || t.diagnostics(),
    );
    // What BIRD's packet trace says it sent: each UPDATE and each
    // End-of-RIB (an UPDATE too).
    let log = d.log();
    let sent_updates = log
        .lines()
        .filter(|l| {
            l.contains("corebgp: Sending UPDATE") || l.contains("corebgp: Sending END-OF-RIB")
        })
        .count() as u64;
    let ctx = || format!("{}\n{}", t.diagnostics(), d.diagnostics());
    assert_eq!(s.peer, peer);
    assert_eq!(s.state, PeerState::Established, "{s:?}");
    assert_eq!(
        s.announced,
        (V4.len() + V6.len()) as u64,
        "{s:?}\n{}",
        ctx()
    );
    assert_eq!(s.withdrawn, 0, "{s:?}");
    assert!(
        sent_updates >= 4,
        "BIRD's trace: {sent_updates} UPDATEs\n{}",
        ctx()
    );
    assert_eq!(s.updates, sent_updates, "{s:?}\n{}", ctx());
    stop(&mut t);
    // The bytes: those of the UPDATEs archived in the MRT file (which
    // bgpdump reads back in the MRT tests), headers included.
    assert_eq!(mrt_updates(&mrt), (s.updates, s.bytes), "{s:?}");
    let all = lines(&t);
    assert!(
        !all.iter().any(|l| matches!(l, Line::Update(_))),
        "no update line in --stats mode\n{}",
        t.diagnostics()
    );
    // The End-of-RIB lines are still there, with their counts.
    let eors: Vec<(String, u64)> = all
        .iter()
        .filter_map(|l| match l {
            Line::EndOfRib { afi, prefixes, .. } => Some((afi.clone(), *prefixes)),
            _ => None,
        })
        .collect();
    assert_eq!(
        eors,
        [
            ("ipv4".to_owned(), V4.len() as u64),
            ("ipv6".to_owned(), V6.len() as u64)
        ]
    );
    // A last stats line on the way out, the session down, the same counters.
    let last = match all.last() {
        Some(Line::Stats { peers, .. }) => peers[0].clone(),
        other => panic!("the last line is not stats: {other:?}\n{}", t.diagnostics()),
    };
    assert_eq!(last.state, PeerState::Down, "{last:?}");
    assert_eq!(
        (last.updates, last.announced, last.withdrawn, last.bytes),
        (s.updates, s.announced, s.withdrawn, s.bytes)
    );
}

// ---------------------------------------------------------------------------
// 4. RFC 7606 over TCP, from a raw speaker.

const SPEAKER_AS: u32 = 65002;

/// One path attribute.
fn attr(flags: u8, ty: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![flags, ty, value.len() as u8];
    v.extend_from_slice(value);
    v
}

/// A whole UPDATE message.
fn update_message(attrs: &[Vec<u8>], nlri: &[&str]) -> Vec<u8> {
    let attrs: Vec<u8> = attrs.concat();
    let nlri = corebgp_tests::update::encode_prefixes(nlri);
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
}

fn origin() -> Vec<u8> {
    attr(0x40, 1, &[0])
}

fn as_path() -> Vec<u8> {
    let mut v = vec![2, 1];
    v.extend_from_slice(&SPEAKER_AS.to_be_bytes());
    attr(0x40, 2, &v)
}

fn next_hop() -> Vec<u8> {
    attr(0x40, 3, &[192, 0, 2, 9])
}

/// MP_REACH_NLRI, IPv6 unicast, next hop 2001:db8::9.
fn mp_reach_v6(prefixes: &[&str]) -> Vec<u8> {
    let mut v = vec![0, 2, 1, 16];
    v.extend_from_slice(&"2001:db8::9".parse::<Ipv6Addr>().expect("v6").octets());
    v.push(0);
    v.extend(corebgp_tests::update::encode_prefixes(prefixes));
    attr(0x80, 14, &v)
}

fn route_prefixes(r: &[Route]) -> Vec<&str> {
    r.iter().map(|r| r.prefix.as_str()).collect()
}

/// A collector dialling a raw speaker of AS [`SPEAKER_AS`]; returns both
/// after the handshake, and the speaker's address.
fn collector_and_speaker() -> (Tool, Speaker, IpAddr) {
    let ep = net::unique_endpoint();
    let ours = net::unique_loopback();
    let listener = speaker::listen(ep);
    let args = strings(&[
        "--router-id",
        ROUTER_ID,
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
    let t = Tool::spawn("collector", &args);
    let mut s = Speaker::accept(&listener, SESSION)
        .unwrap_or_else(|e| panic!("the collector's connection: {e}\n{}", t.diagnostics()));
    s.handshake_as_router(
        SPEAKER_AS,
        &[AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST],
        90,
        SESSION,
        &|| t.diagnostics(),
    );
    s.start_keepalives(Duration::from_secs(10));
    t.wait_json(
        "established",
        SESSION,
        |v| v["event"] == "established",
        String::new,
    );
    (t, s, IpAddr::V4(*ep.ip()))
}

#[test]
fn rfc7606_verdicts_over_tcp() {
    let (mut t, mut s, peer) = collector_and_speaker();
    let diag = || t.diagnostics();

    // Sends `msg` and returns the update line that lists `prefix`.
    let exchange = |s: &mut Speaker, msg: Vec<u8>, prefix: &str| -> UpdateLine {
        s.send(&msg).expect("send UPDATE");
        t.wait_json(
            &format!("the update line of {prefix}"),
            SESSION,
            |v| {
                v["event"] == "update"
                    && ["announced", "withdrawn"].iter().any(|k| {
                        v[k].as_array()
                            .is_some_and(|a| a.iter().any(|r| r["prefix"] == prefix))
                    })
            },
            String::new,
        );
        let found = lines(&t).into_iter().find_map(|l| match l {
            Line::Update(u)
                if u.announced
                    .iter()
                    .chain(&u.withdrawn)
                    .any(|r| r.prefix == prefix) =>
            {
                Some(*u)
            }
            _ => None,
        });
        let u = found.expect("the line just seen");
        assert_eq!(u.peer, peer);
        u
    };

    // A valid UPDATE first.
    let u = exchange(
        &mut s,
        update_message(
            &[
                origin(),
                as_path(),
                next_hop(),
                attr(0xc0, 8, &[0xfd, 0xea, 0, 7]),
            ],
            &["10.0.0.0/24"],
        ),
        "10.0.0.0/24",
    );
    assert_eq!(route_prefixes(&u.announced), ["10.0.0.0/24"]);
    assert!(u.withdrawn.is_empty() && u.treat_as_withdraw.is_none() && u.discarded.is_empty());
    assert_eq!(u.attributes.communities, ["65002:7"]);
    assert_eq!(u.attributes.as_path, Some(vec![PathElem::Asn(SPEAKER_AS)]));
    assert_eq!(
        u.attributes.next_hop,
        Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)))
    );

    // Treat-as-withdraw (RFC 7606 §7.4, §7.8, §7.2): every announced route
    // is listed as withdrawn, none as announced.
    // What, the attributes, the prefixes, the attribute named.
    type Case<'a> = (&'a str, Vec<Vec<u8>>, Vec<&'a str>, &'a str);
    let taw: [Case; 3] = [
        (
            "a MED of 3 bytes",
            vec![origin(), as_path(), next_hop(), attr(0x80, 4, &[0, 0, 1])],
            vec!["10.1.0.0/16", "10.2.0.0/16"],
            "med",
        ),
        (
            "COMMUNITIES of 6 bytes, IPv6 routes",
            vec![
                origin(),
                as_path(),
                mp_reach_v6(&["2001:db8:a::/48"]),
                attr(0xc0, 8, &[0, 1, 0, 2, 0, 3]),
            ],
            vec!["2001:db8:a::/48"],
            "communities",
        ),
        (
            "an AS_PATH segment longer than the attribute",
            vec![
                origin(),
                attr(0x40, 2, &[2, 3, 0, 0, 0xfd, 0xea]),
                next_hop(),
            ],
            vec!["10.3.0.0/16"],
            "as_path",
        ),
    ];
    for (what, attrs, prefixes, name) in taw {
        let msg = if prefixes[0].contains(':') {
            update_message(&attrs, &[])
        } else {
            update_message(&attrs, &prefixes)
        };
        let u = exchange(&mut s, msg, prefixes[0]);
        assert!(u.announced.is_empty(), "{what}: {u:?}");
        assert_eq!(route_prefixes(&u.withdrawn), prefixes, "{what}: {u:?}");
        let why = u
            .treat_as_withdraw
            .as_deref()
            .unwrap_or_else(|| panic!("{what}: {u:?}"));
        assert!(why.contains(name), "{what}: treat_as_withdraw {why:?}");
        assert!(u.discarded.is_empty(), "{what}: {u:?}");
    }

    // Attribute discard (RFC 7606 §7.6, §7.7): routes announced without
    // the attribute, which is named.
    let discard: [(&str, Vec<u8>, &str, &str); 2] = [
        (
            "ATOMIC_AGGREGATE of 1 byte",
            attr(0x40, 6, &[0]),
            "10.4.0.0/16",
            "atomic_aggregate",
        ),
        (
            "AGGREGATOR of 5 bytes",
            attr(0xc0, 7, &[0, 0, 0xfd, 0xea, 1]),
            "10.5.0.0/16",
            "aggregator",
        ),
    ];
    for (what, bad, prefix, name) in discard {
        let u = exchange(
            &mut s,
            update_message(&[origin(), as_path(), next_hop(), bad], &[prefix]),
            prefix,
        );
        assert_eq!(route_prefixes(&u.announced), [prefix], "{what}: {u:?}");
        assert!(
            u.withdrawn.is_empty() && u.treat_as_withdraw.is_none(),
            "{what}: {u:?}"
        );
        assert_eq!(u.discarded, [name], "{what}: {u:?}");
        assert!(
            !u.attributes.atomic_aggregate && u.attributes.aggregator.is_none(),
            "{what}: {u:?}"
        );
        assert_eq!(
            u.attributes.next_hop,
            Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)))
        );
    }
    assert!(
        !lines(&t)
            .iter()
            .any(|l| matches!(l, Line::Notification { .. } | Line::Closed { .. })),
        "the session stays up through treat-as-withdraw and discard\n{}",
        t.diagnostics()
    );

    // Session reset (RFC 4271 §6.3, not relaxed by RFC 7606): an
    // unrecognised well-known attribute → 3/2, data = the attribute.
    let unknown_wk = attr(0x40, 99, &[0xde, 0xad]);
    s.send(&update_message(
        &[origin(), as_path(), next_hop(), unknown_wk.clone()],
        &["10.6.0.0/16"],
    ))
    .expect("send UPDATE");
    let n = s.recv_until(SESSION, "the collector's NOTIFICATION", &diag, |m| {
        matches!(speaker::parse(m), Message::Notification(_)).then(|| m.to_vec())
    });
    let mut want = vec![0xff; 16];
    want.extend_from_slice(&((21 + unknown_wk.len()) as u16).to_be_bytes());
    want.extend_from_slice(&[3, 3, 2]);
    want.extend_from_slice(&unknown_wk);
    assert_eq!(n, want, "the NOTIFICATION, byte for byte");
    let data = unknown_wk
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    t.wait_json(
        "the closed line",
        SESSION,
        |v| v["event"] == "closed",
        String::new,
    );
    let all = lines(&t);
    let notes: Vec<&Line> = all
        .iter()
        .filter(|l| matches!(l, Line::Notification { .. }))
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    let Line::Notification {
        peer: p,
        direction,
        code,
        subcode,
        data: d,
        message,
        name,
        ..
    } = notes[0]
    else {
        unreachable!()
    };
    assert_eq!(
        (*p, *direction, *code, *subcode, d.as_str(), message),
        (
            peer,
            NotificationDirection::Sent,
            3,
            2,
            data.as_str(),
            &None
        ),
        "{name}"
    );
    let pos = |f: &dyn Fn(&Line) -> bool| all.iter().position(f).expect("present");
    let closed = pos(&|l| matches!(l, Line::Closed { .. }));
    assert!(pos(&|l| matches!(l, Line::Notification { .. })) < closed);
    assert!(
        matches!(
            &all[closed],
            Line::Closed { peer: p, reason: CloseReason::NotificationSent, code: Some(3), subcode: Some(2), .. }
                if *p == peer
        ),
        "{:?}",
        all[closed]
    );
    assert!(
        !all.iter().any(|l| matches!(l, Line::Update(u)
            if u.announced.iter().chain(&u.withdrawn).any(|r| r.prefix == "10.6.0.0/16"))),
        "no update line for the UPDATE that reset the session"
    );
    s.close();
    stop(&mut t);
}

/// The daemon ends the session (`birdc disable` with an RFC 9003 shutdown
/// communication): a `notification` line "received" with the text, a
/// `closed` line, and the NOTIFICATION in the MRT file.
#[test]
fn notification_from_the_daemon() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("updates.mrt");
    let bird = daemons::Bird::start(daemon_config(false));
    let d: &dyn Daemon = &bird;
    let mut args = collector_args(d.config(), false);
    args.extend(strings(&["--mrt", &file.to_string_lossy()]));
    let mut t = Tool::spawn("collector", &args);
    let peer = peer_ip(d);
    wait_end_of_ribs(&t, peer, &|| d.diagnostics());
    let text = "maintenance window";
    // "corebgp": the name of the BGP protocol in the helper's bird.conf.
    bird.birdc(&format!("disable corebgp \"{text}\""))
        .unwrap_or_else(|e| panic!("birdc disable: {e}\n{}", d.diagnostics()));
    t.wait_json(
        "the closed line",
        SESSION,
        |v| v["event"] == "closed",
        || d.diagnostics(),
    );
    let all = lines(&t);
    let notes: Vec<&Line> = all
        .iter()
        .filter(|l| matches!(l, Line::Notification { .. }))
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}\n{}", t.diagnostics());
    let Line::Notification {
        peer: p,
        direction,
        code,
        subcode,
        data,
        message,
        name,
        ..
    } = notes[0]
    else {
        unreachable!()
    };
    // RFC 9003: a length octet, then the UTF-8 text.
    let mut want_data = vec![text.len() as u8];
    want_data.extend_from_slice(text.as_bytes());
    let hex: String = want_data.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        (
            *p,
            *direction,
            *code,
            *subcode,
            data.as_str(),
            message.as_deref()
        ),
        (
            peer,
            NotificationDirection::Received,
            6,
            2,
            hex.as_str(),
            Some(text)
        ),
        "{name}"
    );
    assert!(
        all.iter().any(|l| matches!(
            l,
            Line::Closed { peer: p, reason: CloseReason::NotificationReceived, code: Some(6), subcode: Some(2), .. }
                if *p == peer
        )),
        "{}",
        t.diagnostics()
    );
    stop(&mut t);
    let parsed = parse_bgpkit(&file, peer, DAEMON_AS);
    assert_eq!(parsed.notifications, [(6, 2, want_data)], "{parsed:?}");
    let dumped = parse_bgpdump(&bgpdump(&file), peer, DAEMON_AS);
    assert_eq!(parsed.states, dumped.states, "bgpkit-parser and bgpdump");
    assert_eq!(dumped.states.last(), Some(&(6, 1)), "{dumped:?}");
}

// ---------------------------------------------------------------------------
// 5. --config with two peers.

#[test]
fn config_file_with_two_peers() {
    let bird_v4 = ["203.0.113.0/24"];
    let bird_v6 = ["2001:db8:1::/48"];
    let gobgp_v4 = ["198.51.100.0/24", "192.0.2.128/25"];
    let gobgp_v6 = ["2001:db8:2::/48"];
    let cfg = |v4: &[&str], v6: &[&str]| originating(true, v4, v6);
    let bird = daemons::start(DaemonKind::Bird, cfg(&bird_v4, &bird_v6));
    let gobgp = daemons::start(DaemonKind::GoBgp, cfg(&gobgp_v4, &gobgp_v6));
    let dir = tempfile::tempdir().expect("temp dir");
    let (b, g) = (bird.config(), gobgp.config());
    // Top-level defaults, one peer with an integer AS and one with asdot
    // (64086.59906 = 4200000002).
    let toml = format!(
        "router-id = \"{ROUTER_ID}\"\nlocal-as = {OUR_AS}\n\n\
         [[peer]]\naddress = \"{}\"\nremote-as = {DAEMON_AS}\nport = {}\nlocal-address = \"{}\"\n\n\
         [[peer]]\naddress = \"{}\"\nremote-as = \"64086.59906\"\nport = {}\nlocal-address = \"{}\"\nhold-time = 30\n",
        b.address, b.port, b.peer_address, g.address, g.port, g.peer_address,
    );
    let file = dir.path().join("collector.toml");
    std::fs::write(&file, toml).expect("write config");
    let mut t = Tool::spawn(
        "collector",
        &strings(&["--config", &file.to_string_lossy()]),
    );
    let ctx = || format!("{}\n{}", bird.diagnostics(), gobgp.diagnostics());
    wait_end_of_ribs(&t, peer_ip(&*bird), &ctx);
    wait_end_of_ribs(&t, peer_ip(&*gobgp), &ctx);
    bird.wait_established(SESSION);
    gobgp.wait_established(SESSION);
    let all = lines(&t);
    let ctx = || format!("{}\n{}", t.diagnostics(), ctx());
    check_established(&all, &*bird, false, &ctx);
    check_established(&all, &*gobgp, false, &ctx);
    check_routes(&all, &*bird, &bird_v4, &bird_v6, &ctx);
    check_routes(&all, &*gobgp, &gobgp_v4, &gobgp_v6, &ctx);
    let hold = all.iter().find_map(|l| match l {
        Line::Established {
            peer, hold_time, ..
        } if *peer == peer_ip(&*gobgp) => Some(*hold_time),
        _ => None,
    });
    assert_eq!(
        hold,
        Some(30),
        "the table's hold-time is proposed (and lower than GoBGP's 90)"
    );
    stop(&mut t);
    wait_cease_received(&*bird);
    wait_cease_received(&*gobgp);
}

// ---------------------------------------------------------------------------
// 6. stdout closed under the collector (`collector … | head -1`).

#[test]
fn closed_stdout_ends_the_collector_cleanly() {
    let d = daemons::start(DaemonKind::Bird, daemon_config(false));
    let mut child = Command::new(example_binary("collector"))
        .args(collector_args(d.config(), false))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start collector");
    let mut stderr = child.stderr.take().expect("stderr");
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut first = String::new();
    {
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        out.read_line(&mut first).expect("first line");
        // `out` dropped: the read end of the pipe is closed, like `head -1`.
    }
    let first: Line = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert!(matches!(first, Line::State { .. }), "{first:?}");
    let status = poll(EXIT, || child.try_wait().expect("try_wait"));
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the collector did not exit after its stdout closed\n{}",
            err.join().unwrap_or_default()
        );
    };
    let stderr = err.join().expect("stderr reader");
    assert_eq!(status.code(), Some(0), "{status}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !stderr.contains("stdout:"),
        "a closed pipe is not an error: {stderr}"
    );
}

// ---------------------------------------------------------------------------
// 7. Bad inputs: exit 2 (usage) or 1 (runtime) with one line, no panic.

/// Runs the collector with `args` and checks the exit code and that stderr
/// is one line `collector: error: …` containing every one of `contains`.
fn bad_input(args: &[&str], code: i32, contains: &[&str]) {
    let (status, stdout, stderr) = run_tool("collector", args, EXIT);
    let ctx = format!("collector {args:?}: {status}\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}");
    assert_eq!(status.code(), Some(code), "{ctx}");
    assert!(!stderr.contains("panicked"), "{ctx}");
    assert!(stdout.is_empty(), "{ctx}");
    let l: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(l.len(), 1, "one line on stderr\n{ctx}");
    assert!(l[0].starts_with("collector: error: "), "{ctx}");
    for c in contains {
        assert!(l[0].contains(c), "{c:?} missing\n{ctx}");
    }
}

#[test]
fn bad_inputs_exit_with_one_line() {
    let peer = net::unique_loopback().to_string();
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v = strings(&[
            "--router-id",
            ROUTER_ID,
            "--local-as",
            "65001",
            "--remote-as",
            "65002",
            "--peer",
            &peer,
        ]);
        v.extend(strings(extra));
        v
    };
    let run = |args: Vec<String>, code: i32, contains: &[&str]| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        bad_input(&a, code, contains);
    };

    // Usage errors: 2.
    run(
        strings(&[
            "--router-id",
            ROUTER_ID,
            "--local-as",
            "banana",
            "--remote-as",
            "65002",
            "--peer",
            &peer,
        ]),
        2,
        &["--local-as", "banana"],
    );
    run(
        strings(&[
            "--router-id",
            ROUTER_ID,
            "--local-as",
            "65001",
            "--remote-as",
            "65002",
            "--peer",
            "300.1.2.3",
        ]),
        2,
        &["--peer", "300.1.2.3"],
    );
    run(base(&["--hold-time", "2"]), 2, &["hold time 2"]);
    run(
        strings(&[
            "--local-as",
            "65001",
            "--remote-as",
            "65002",
            "--peer",
            &peer,
        ]),
        2,
        &["--router-id"],
    );
    let key = "k".repeat(81);
    run(base(&["--md5-key", &key]), 2, &["MD5 key", "80"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let toml = dir.path().join("bad.toml");
    std::fs::write(&toml, "router-id = \"192.0.2.1\"\n[[peer]]\naddress = \n").expect("write");
    run(
        strings(&["--config", &toml.to_string_lossy()]),
        2,
        &["bad.toml", "line 3"],
    );

    // Runtime errors: 1.
    let missing = dir.path().join("no-such.toml");
    run(
        strings(&["--config", &missing.to_string_lossy()]),
        1,
        &["cannot read", "no-such.toml"],
    );
    run(
        strings(&["--config", &dir.path().to_string_lossy()]),
        1,
        &["cannot read", "Is a directory"],
    );
    let mrt = dir.path().join("no-such-dir").join("updates.mrt");
    run(
        base(&["--mrt", &mrt.to_string_lossy()]),
        1,
        &["--mrt", "no-such-dir"],
    );
    let busy = std::net::TcpListener::bind(net::unique_endpoint()).expect("bind");
    let addr: SocketAddr = busy.local_addr().expect("addr");
    // A failed start leaves no MRT file, not even a hidden partial one.
    let mrt_dir = dir.path().join("mrt");
    std::fs::create_dir(&mrt_dir).expect("mkdir");
    let mrt = mrt_dir.join("updates.mrt");
    run(
        base(&[
            "--passive",
            "--listen",
            &addr.to_string(),
            "--mrt",
            &mrt.to_string_lossy(),
            "--mrt-rotate",
            "60",
        ]),
        1,
        &["cannot listen on", &addr.to_string()],
    );
    let left: Vec<_> = std::fs::read_dir(&mrt_dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "left after a failed start: {left:?}");

    // An MRT write that fails at run time stops the collector with exit 1
    // and one line, whatever the log level (RUST_LOG=off here).
    let full = Path::new("/dev/full");
    if full.exists() {
        let a = base(&["--mrt", "/dev/full"]);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let (status, stdout, stderr) = run_tool("collector", &a, EXIT);
        let ctx = format!("{status}\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}");
        assert_eq!(status.code(), Some(1), "{ctx}");
        assert_eq!(
            stderr.trim(),
            "collector: error: --mrt /dev/full: No space left on device (os error 28)",
            "{ctx}"
        );
    }

    // Out-of-range numbers are usage errors, not panics.
    run(
        base(&["--stats", "--stats-interval", "1e20"]),
        2,
        &["--stats-interval"],
    );
    run(base(&["--stats-interval", "0"]), 2, &["--stats-interval"]);
}

/// Values at the edge of what the flags accept run and stop cleanly:
/// `--mrt-rotate` of u64::MAX seconds (an interval that never ends), a
/// sub-second `--stats-interval`.
#[test]
fn extreme_flag_values_run_and_stop_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let template = dir.path().join("updates.mrt");
    // Nobody listens there: the collector only retries its connection.
    let peer = net::unique_loopback().to_string();
    let mut t = Tool::spawn(
        "collector",
        &strings(&[
            "--router-id",
            ROUTER_ID,
            "--local-as",
            "65001",
            "--remote-as",
            "65002",
            "--peer",
            &peer,
            "--mrt",
            &template.to_string_lossy(),
            "--mrt-rotate",
            &u64::MAX.to_string(),
            "--stats",
            "--stats-interval",
            "0.2",
        ]),
    );
    t.wait_json_nth(
        "a stats line",
        5,
        EXIT,
        |v| v["event"] == "stats",
        String::new,
    );
    stop(&mut t);
    // Lines closer than a second apart (a one-second ticker would not).
    let at: Vec<f64> = lines(&t)
        .iter()
        .filter_map(|l| match l {
            Line::Stats { at, .. } => Some(*at),
            _ => None,
        })
        .collect();
    let min_gap = at
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(f64::INFINITY, f64::min);
    assert!(min_gap < 0.9, "stats lines at {at:?}");
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].starts_with("updates.") && files[0].ends_with(".mrt"),
        "{files:?}"
    );
}

/// A TOML error at the start of a line names that line (not the one
/// before: the line is the number of newlines before the error, plus one).
#[test]
fn toml_error_at_the_start_of_a_line_names_that_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let toml = dir.path().join("bad.toml");
    std::fs::write(&toml, "router-id = \"192.0.2.1\"\nbogus = 1\n").expect("write");
    bad_input(
        &["--config", &toml.to_string_lossy()],
        2,
        &["bad.toml line 2:", "bogus"],
    );
}
