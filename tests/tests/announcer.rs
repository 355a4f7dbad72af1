//! The `announcer` tool as an operator runs it: a process announcing to
//! BIRD 2, FRR 8, the `collector` tool and an in-test IPv6 peer on
//! loopback, checked in their tables, logs and JSON lines: attributes and
//! End-of-RIB, SIGTERM (withdraw, then Cease), the health check, SIGHUP
//! reloads, ROUTE-REFRESH, reconnects, passive mode, RFC 8950 next hops
//! and every kind of bad input.
//!
//! Needs the examples built (`cargo build -p corebgp-examples --examples`;
//! `cargo test --workspace` does it). Each test starts its own daemon and
//! tools on their own loopback addresses and ports; everything is killed
//! when the test ends, also on failure. Conditions are waited for with
//! generous timeouts, never by sleeping.

// The route syntax, packing and health counter, unit-tested here (the
// examples crate has no test harness of its own).
#[path = "../../examples/tools/routes.rs"]
mod routes;

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::path::Path;
use std::time::Duration;

use corebgp_tests::daemons::{Bird, Daemon, DaemonConfig, Frr};
use corebgp_tests::net;
use corebgp_tests::tools::{Tool, run_tool};
use corebgp_tests::wait::wait_for;
use serde_json::Value;

const OUR_AS: u32 = 65001;
const DAEMON_AS: u32 = 65000;
/// Time for a session to come up or a route to arrive on a busy machine
/// (daemons retry every 1 to 2 s).
const T: Duration = Duration::from_secs(60);
/// Time for a tool to exit after a signal (withdrawals, then the server's
/// bounded close).
const EXIT: Duration = Duration::from_secs(30);

const V4: &str = "198.51.100.0/24";
const V4_OTHER: &str = "203.0.113.0/24";
const V6: &str = "2001:db8:100::/48";
/// IPv6 next hop for IPv6 routes on IPv4 sessions (the test machine may
/// have no global IPv6 address).
const NEXT_HOP6: &str = "2001:db8::1";
/// A next hop FRR does not reject as martian (127/8 is).
const DOC_NEXT_HOP4: &str = "192.0.2.1";

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The announcer's flags toward `c`'s daemon (which is passive).
fn session_args(c: &DaemonConfig) -> Vec<String> {
    s(&[
        "--router-id",
        &c.peer_address.to_string(),
        "--local-as",
        &OUR_AS.to_string(),
        "--remote-as",
        &DAEMON_AS.to_string(),
        "--peer",
        &c.address.to_string(),
        "--port",
        &c.port.to_string(),
        "--local-address",
        &c.peer_address.to_string(),
        "--hold-time",
        "9",
        "--next-hop6",
        NEXT_HOP6,
    ])
}

fn daemon_config() -> DaemonConfig {
    DaemonConfig::new(DAEMON_AS, OUR_AS)
        .passive(true)
        .hold_time(9)
}

fn spawn(args: Vec<String>) -> Tool {
    Tool::spawn("announcer", &args)
}

fn context(t: &Tool, d: &dyn Daemon) -> String {
    format!("{}\n{}", t.diagnostics(), d.diagnostics())
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn is_event(v: &Value, e: &str) -> bool {
    v["event"] == e
}

// ---------------------------------------------------------------- BIRD

/// `birdc show route all protocol corebgp table TABLE`: prefix → the
/// route's `Key: value` lines (BGP.next_hop, BGP.community, …).
fn bird_routes(b: &Bird, ipv6: bool) -> BTreeMap<String, BTreeMap<String, String>> {
    let table = if ipv6 { "master6" } else { "master4" };
    let out = b
        .birdc(&format!("show route all protocol corebgp table {table}"))
        .unwrap_or_default();
    let mut routes: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in out.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if !line.starts_with(char::is_whitespace) && first.contains('/') {
            current = Some(first.to_owned());
            routes.entry(first.to_owned()).or_default();
        } else if let Some(p) = &current
            && let Some((k, v)) = line.trim().split_once(':')
            && k.starts_with("BGP.")
            && let Some(r) = routes.get_mut(p)
        {
            r.insert(k.to_owned(), v.trim().to_owned());
        }
    }
    routes
}

/// Waits until BIRD's table for the family of `prefix` satisfies `pred`.
fn wait_bird(
    b: &Bird,
    t: &Tool,
    what: &str,
    ipv6: bool,
    pred: impl Fn(&BTreeMap<String, BTreeMap<String, String>>) -> bool,
) -> BTreeMap<String, BTreeMap<String, String>> {
    wait_for(
        what,
        T,
        || {
            let r = bird_routes(b, ipv6);
            pred(&r).then_some(r)
        },
        || {
            format!(
                "BIRD's table: {:?}\n{}",
                bird_routes(b, ipv6),
                context(t, b)
            )
        },
    )
}

fn bird_log(b: &Bird) -> String {
    b.log()
}

/// A line of BIRD's route trace, `corebgp.ipv4 > removed [sole] PREFIX …`,
/// about `prefix`, whose action starts with `what` ("" for any).
fn bird_change(line: &str, what: &str, prefix: &str) -> bool {
    line.split_once(" > ").is_some_and(|(head, rest)| {
        head.contains("corebgp.")
            && rest.starts_with(what)
            && rest.split_whitespace().any(|w| w == prefix)
    })
}

/// Test 1 and 2 with BIRD: routes with their attributes and End-of-RIB;
/// SIGTERM withdraws them before the Cease; exit 0.
#[test]
fn bird_receives_routes_and_withdrawals_before_the_cease() {
    let b = Bird::start(daemon_config());
    let c = b.config().clone();
    let mut args = session_args(&c);
    args.extend(s(&[
        &format!("{V4} communities 65001:1,65001:2 large-communities 65001:1:2,65001:3:4 med 10"),
        &format!("{V4_OTHER} next-hop {DOC_NEXT_HOP4} as-path \"65010\""),
        &format!("{V6} communities 65001:7 large-communities 65001:7:8"),
    ]));
    let mut t = spawn(args);
    b.wait_established(T);
    let v4 = wait_bird(&b, &t, "both IPv4 routes in BIRD", false, |r| {
        r.contains_key(V4) && r.contains_key(V4_OTHER)
    });
    let r = &v4[V4];
    assert_eq!(r["BGP.next_hop"], c.peer_address.to_string(), "{r:?}");
    assert_eq!(r["BGP.as_path"], OUR_AS.to_string(), "{r:?}");
    assert_eq!(r["BGP.origin"], "IGP", "{r:?}");
    assert_eq!(r["BGP.med"], "10", "{r:?}");
    assert_eq!(r["BGP.community"], "(65001,1) (65001,2)", "{r:?}");
    assert_eq!(
        r["BGP.large_community"], "(65001, 1, 2) (65001, 3, 4)",
        "{r:?}"
    );
    let r = &v4[V4_OTHER];
    assert_eq!(r["BGP.next_hop"], DOC_NEXT_HOP4, "{r:?}");
    assert_eq!(r["BGP.as_path"], "65001 65010", "{r:?}");
    assert!(!r.contains_key("BGP.community"), "{r:?}");
    let v6 = wait_bird(&b, &t, "the IPv6 route in BIRD", true, |r| {
        r.contains_key(V6)
    });
    let r = &v6[V6];
    assert!(r["BGP.next_hop"].starts_with(NEXT_HOP6), "{r:?}");
    assert_eq!(r["BGP.community"], "(65001,7)", "{r:?}");
    assert_eq!(r["BGP.large_community"], "(65001, 7, 8)", "{r:?}");
    // Both End-of-RIBs (BIRD's trace does not name the family).
    wait_for(
        "BIRD to log our two End-of-RIBs",
        T,
        || (b.end_of_rib_received().len() >= 2).then_some(()),
        || context(&t, &b),
    );
    t.wait_json(
        "established",
        T,
        |v| is_event(v, "established"),
        || b.diagnostics(),
    );

    t.signal(libc::SIGTERM);
    let status = t.wait_exit(EXIT);
    assert_eq!(status.code(), Some(0), "{}", context(&t, &b));
    b.wait_notification(T, &|n| {
        n.direction == corebgp_tests::Direction::Received && (n.code, n.subcode) == (6, 2)
    });
    let log = bird_log(&b);
    let cease = log
        .lines()
        .position(|l| l.contains("corebgp: Received: Administrative shutdown"))
        .unwrap_or_else(|| panic!("no Cease in BIRD's log\n{}", context(&t, &b)));
    for p in [V4, V4_OTHER, V6] {
        let removed = log
            .lines()
            .position(|l| bird_change(l, "removed", p))
            .unwrap_or_else(|| panic!("BIRD logged no removal of {p}\n{}", context(&t, &b)));
        assert!(
            removed < cease,
            "{p} was removed at line {removed}, after the Cease at line {cease}\n{log}"
        );
    }
    assert!(!t.stderr().contains("panicked"), "{}", t.stderr());
}

/// Test 3: the health check withdraws and re-announces while the session
/// stays up; a session that comes up while the check fails gets
/// End-of-RIB only.
#[test]
fn health_check_withdraws_and_reannounces_with_bird() {
    let b = Bird::start(daemon_config());
    let dir = tempfile::tempdir().expect("temp dir");
    let flag = dir.path().join("healthy");
    let mut args = session_args(b.config());
    args.extend(s(&[
        "--health-check",
        &format!("test -e '{}'", flag.display()),
        "--interval",
        "0.3",
        "--rise",
        "2",
        "--fall",
        "2",
        V4,
        V6,
    ]));
    // The flag file is missing: the first check fails.
    let mut t = spawn(args);
    let health =
        |status: &'static str| move |v: &Value| is_event(v, "health") && v["status"] == status;
    let down = t.wait_json("health down", T, health("down"), || b.diagnostics());
    assert_eq!(
        (down["checks"].as_u64(), down["routes"].as_u64()),
        (Some(1), Some(2)),
        "{down}"
    );
    b.wait_established(T);
    // End-of-RIB for both families, and nothing before them.
    wait_for(
        "BIRD to log our two End-of-RIBs",
        T,
        || (b.end_of_rib_received().len() >= 2).then_some(()),
        || context(&t, &b),
    );
    assert!(
        bird_routes(&b, false).is_empty() && bird_routes(&b, true).is_empty(),
        "{}",
        context(&t, &b)
    );

    // Healthy: announced after `rise` checks.
    write(&flag, "");
    let up = t.wait_json("health up", T, health("up"), || b.diagnostics());
    assert_eq!(up["checks"].as_u64(), Some(2), "{up}");
    wait_bird(&b, &t, "the IPv4 route announced", false, |r| {
        r.contains_key(V4)
    });
    wait_bird(&b, &t, "the IPv6 route announced", true, |r| {
        r.contains_key(V6)
    });

    // Unhealthy: withdrawn after `fall` checks, the session stays.
    std::fs::remove_file(&flag).expect("remove the flag file");
    t.wait_json_nth("health down again", 2, T, health("down"), || {
        b.diagnostics()
    });
    wait_bird(&b, &t, "the IPv4 route withdrawn", false, |r| {
        !r.contains_key(V4)
    });
    wait_bird(&b, &t, "the IPv6 route withdrawn", true, |r| {
        !r.contains_key(V6)
    });
    assert!(b.is_established(), "{}", context(&t, &b));

    // Healthy again: announced again.
    write(&flag, "");
    t.wait_json_nth("health up again", 2, T, health("up"), || b.diagnostics());
    wait_bird(&b, &t, "the IPv4 route announced again", false, |r| {
        r.contains_key(V4)
    });
    assert!(b.is_established(), "{}", context(&t, &b));
    let json = t.json();
    assert!(
        !json.iter().any(|v| is_event(v, "closed")),
        "the session went down: {}",
        context(&t, &b)
    );
    assert_eq!(
        json.iter().filter(|v| is_event(v, "established")).count(),
        1
    );
    t.signal(libc::SIGTERM);
    assert_eq!(t.wait_exit(EXIT).code(), Some(0), "{}", context(&t, &b));
}

/// A check that outlives `--timeout` is killed and counts as failed; the
/// health state is decided without any session.
#[test]
fn health_check_timeout_counts_as_failure() {
    let nobody = net::unique_loopback();
    let mut t = spawn(s(&[
        "--router-id",
        "10.86.50.3",
        "--local-as",
        &OUR_AS.to_string(),
        "--remote-as",
        &DAEMON_AS.to_string(),
        "--peer",
        &nobody.to_string(),
        "--port",
        &net::free_port(nobody).to_string(),
        "--health-check",
        "sleep 30",
        "--interval",
        "0.2",
        "--timeout",
        "0.3",
        V4,
    ]));
    let down = t.wait_json(
        "health down",
        T,
        |v| is_event(v, "health") && v["status"] == "down",
        String::new,
    );
    assert_eq!(down["checks"].as_u64(), Some(1), "{down}");
    wait_for(
        "the timeout in the log",
        T,
        || t.stderr().contains("timed out after").then_some(()),
        || t.diagnostics(),
    );
    t.signal(libc::SIGTERM);
    assert_eq!(t.wait_exit(EXIT).code(), Some(0), "{}", t.diagnostics());
}

/// Test 4: SIGHUP re-reads --file: the removed route is withdrawn, the new
/// and the changed ones announced, the unchanged one not sent again; a bad
/// file keeps the routes.
#[test]
fn sighup_reloads_the_route_file_with_bird() {
    const A: &str = "192.0.2.0/24";
    const B: &str = "198.51.100.0/24";
    const C: &str = "203.0.113.0/24";
    let b = Bird::start(daemon_config());
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("routes.txt");
    write(
        &file,
        &format!("# anycast\n{A} communities 65001:1\n{B} med 1\n\n{C}\n"),
    );
    let mut args = session_args(b.config());
    args.extend(s(&["--file", &file.to_string_lossy()]));
    let mut t = spawn(args);
    wait_bird(&b, &t, "the file's three routes", false, |r| {
        [A, B, C].iter().all(|p| r.contains_key(*p))
    });

    write(
        &file,
        &format!("{A} communities 65001:1\n{B} med 2\n{V6}\n"),
    );
    t.signal(libc::SIGHUP);
    let r = t.wait_json("reload", T, |v| is_event(v, "reload"), || b.diagnostics());
    assert_eq!(
        (
            r["announced"].as_u64(),
            r["withdrawn"].as_u64(),
            r["unchanged"].as_u64()
        ),
        (Some(2), Some(1), Some(1)),
        "{r}"
    );
    wait_bird(&b, &t, "the new IPv6 route", true, |r| r.contains_key(V6));
    let v4 = wait_bird(&b, &t, "C withdrawn and B's new MED", false, |r| {
        !r.contains_key(C)
            && r.get(B)
                .is_some_and(|x| x.get("BGP.med").map(String::as_str) == Some("2"))
    });
    assert_eq!(v4[A]["BGP.community"], "(65001,1)", "{v4:?}");
    // The IPv6 route went out after A would have (the table is sent in
    // prefix order): A was received once only (BIRD traces a route sent
    // again unchanged as "ignored").
    let log = bird_log(&b);
    let traced = log.lines().filter(|l| bird_change(l, "", A)).count();
    assert_eq!(traced, 1, "A was sent again on reload\n{log}");

    // A bad file: an error naming the line, the routes stay.
    write(&file, &format!("{A}\n{B} med banana\n"));
    t.signal(libc::SIGHUP);
    let want = format!("{}:2:", file.display());
    wait_for(
        "the reload error on stderr",
        T,
        || t.stderr().contains(&want).then_some(()),
        || context(&t, &b),
    );
    let v4 = bird_routes(&b, false);
    assert!(
        v4.contains_key(A) && v4.contains_key(B),
        "{v4:?}\n{}",
        context(&t, &b)
    );
    assert!(bird_routes(&b, true).contains_key(V6));
    assert_eq!(t.json().iter().filter(|v| is_event(v, "reload")).count(), 1);
    // Still running: SIGTERM ends it cleanly.
    t.signal(libc::SIGTERM);
    assert_eq!(t.wait_exit(EXIT).code(), Some(0), "{}", context(&t, &b));
}

/// After the daemon restarts, the new session gets everything again.
#[test]
fn reconnect_reannounces_to_bird() {
    let mut b = Bird::start(daemon_config());
    let mut args = session_args(b.config());
    args.push(V4.into());
    let mut t = spawn(args);
    wait_bird(&b, &t, "the route", false, |r| r.contains_key(V4));
    b.restart();
    t.wait_json_nth(
        "a second session",
        2,
        T,
        |v| is_event(v, "established"),
        || b.diagnostics(),
    );
    wait_bird(&b, &t, "the route again", false, |r| r.contains_key(V4));
    t.signal(libc::SIGINT);
    assert_eq!(t.wait_exit(EXIT).code(), Some(0), "{}", context(&t, &b));
}

/// `--passive --listen`: BIRD dials; the next hop is the address the
/// connection came to.
#[test]
fn passive_announcer_is_dialled_by_bird() {
    let b = Bird::start(
        DaemonConfig::new(DAEMON_AS, OUR_AS)
            .passive(false)
            .hold_time(9),
    );
    let c = b.config().clone();
    let mut args = session_args(&c);
    args.extend(s(&[
        "--passive",
        "--listen",
        &c.peer_endpoint().to_string(),
        V4,
    ]));
    let mut t = spawn(args);
    let v4 = wait_bird(&b, &t, "the route", false, |r| r.contains_key(V4));
    assert_eq!(v4[V4]["BGP.next_hop"], c.peer_address.to_string(), "{v4:?}");
    t.signal(libc::SIGTERM);
    assert_eq!(t.wait_exit(EXIT).code(), Some(0), "{}", context(&t, &b));
}

// ---------------------------------------------------------------- FRR

/// `show bgp FAMILY unicast PREFIX json`: the path learned from us.
fn frr_path(f: &Frr, prefix: &str) -> Option<Value> {
    let fam = if prefix.contains(':') { "ipv6" } else { "ipv4" };
    let out = f
        .vtysh(&format!("show bgp {fam} unicast {prefix} json"))
        .ok()?;
    let v: Value = serde_json::from_str(&out).ok()?;
    let peer = f.config().peer_address.to_string();
    v["paths"]
        .as_array()?
        .iter()
        .find(|p| p["peer"]["peerId"] == peer.as_str())
        .cloned()
}

fn wait_frr(f: &Frr, t: &Tool, prefix: &str) -> Value {
    wait_for(
        &format!("FRR to have {prefix} from us"),
        T,
        || frr_path(f, prefix),
        || context(t, f),
    )
}

/// Test 1 and 2 with FRR: routes, attributes, End-of-RIB; a ROUTE-REFRESH
/// is answered; SIGTERM withdraws before the Cease.
#[test]
fn frr_receives_routes_and_withdrawals_before_the_cease() {
    let f = Frr::start(daemon_config());
    let c = f.config().clone();
    let mut args = session_args(&c);
    // FRR answers a 127/8 next hop with NOTIFICATION 3/8 ("martian"):
    // the IPv4 routes get a documentation address.
    args.extend(s(&[
        "--next-hop4",
        DOC_NEXT_HOP4,
        &format!("{V4} communities 65001:1,65001:2 large-communities 65001:1:2 med 10"),
        &format!("{V6} communities 65001:7 large-communities 65001:7:8"),
    ]));
    let mut t = spawn(args);
    f.wait_established(T);
    let p = wait_frr(&f, &t, V4);
    assert_eq!(p["nexthops"][0]["ip"], DOC_NEXT_HOP4, "{p}");
    assert_eq!(p["aspath"]["string"], OUR_AS.to_string(), "{p}");
    assert_eq!(p["metric"], 10, "{p}");
    assert_eq!(p["community"]["string"], "65001:1 65001:2", "{p}");
    assert_eq!(p["largeCommunity"]["string"], "65001:1:2", "{p}");
    let p = wait_frr(&f, &t, V6);
    assert_eq!(p["nexthops"][0]["ip"], NEXT_HOP6, "{p}");
    assert_eq!(p["community"]["string"], "65001:7", "{p}");
    assert_eq!(p["largeCommunity"]["string"], "65001:7:8", "{p}");
    let eors = wait_for(
        "FRR to log our two End-of-RIBs",
        T,
        || {
            let e = f.end_of_rib_received();
            (e.len() >= 2).then_some(e)
        },
        || context(&t, &f),
    );
    assert_eq!(
        eors,
        [
            corebgp_tests::EndOfRib::Ipv4Unicast,
            corebgp_tests::EndOfRib::Ipv6Unicast
        ]
    );

    // A ROUTE-REFRESH (`clear … soft in`) re-announces the family.
    f.vtysh(&format!(
        "clear bgp ipv4 unicast {} soft in",
        c.peer_address
    ))
    .unwrap_or_else(|e| panic!("{e}\n{}", context(&t, &f)));
    wait_for(
        "the announcer to answer the ROUTE-REFRESH",
        T,
        || {
            t.stderr()
                .contains("ROUTE-REFRESH ipv4-unicast: re-announced 1 routes")
                .then_some(())
        },
        || context(&t, &f),
    );
    let again = format!("rcvd {V4} IPv4 unicast...duplicate ignored");
    wait_for(
        "FRR to receive the route again",
        T,
        || f.log().contains(&again).then_some(()),
        || context(&t, &f),
    );

    t.signal(libc::SIGTERM);
    assert_eq!(t.wait_exit(EXIT).code(), Some(0), "{}", context(&t, &f));
    f.wait_notification(T, &|n| {
        n.direction == corebgp_tests::Direction::Received && (n.code, n.subcode) == (6, 2)
    });
    // bgpd's `debug bgp updates in`: "… rcvd UPDATE about PREFIX … -- withdrawn".
    let log = f.log();
    let cease = log
        .lines()
        .position(|l| {
            l.contains("%NOTIFICATION") && l.contains("received from neighbor") && l.contains("6/2")
        })
        .unwrap_or_else(|| panic!("no Cease in FRR's log\n{}", context(&t, &f)));
    for p in [V4, V6] {
        let withdrawn = log
            .lines()
            .position(|l| {
                l.contains("rcvd UPDATE about ") && l.contains(p) && l.ends_with("-- withdrawn")
            })
            .unwrap_or_else(|| panic!("FRR logged no withdrawal of {p}\n{}", context(&t, &f)));
        assert!(
            withdrawn < cease,
            "{p} withdrawn at line {withdrawn}, after the Cease at line {cease}\n{log}"
        );
    }
}

// ---------------------------------------------------------- collector

/// A collector listening for the announcer (both as processes).
struct Pair {
    collector: Tool,
    announcer: Tool,
}

fn pair(ibgp: bool, routes: &[&str]) -> Pair {
    let col = net::unique_loopback();
    let port = net::free_port(col);
    let ann = net::unique_loopback();
    let col_as = if ibgp { OUR_AS } else { DAEMON_AS };
    let collector = Tool::spawn(
        "collector",
        &s(&[
            "--router-id",
            &col.to_string(),
            "--local-as",
            &col_as.to_string(),
            "--remote-as",
            &OUR_AS.to_string(),
            "--peer",
            &ann.to_string(),
            "--passive",
            "--listen",
            &SocketAddrV4::new(col, port).to_string(),
            "--hold-time",
            "9",
        ]),
    );
    wait_for(
        "the collector to listen",
        T,
        || collector.stderr().contains("listening").then_some(()),
        || collector.diagnostics(),
    );
    let mut args = s(&[
        "--router-id",
        &ann.to_string(),
        "--local-as",
        &OUR_AS.to_string(),
        "--remote-as",
        &col_as.to_string(),
        "--peer",
        &col.to_string(),
        "--port",
        &port.to_string(),
        "--local-address",
        &ann.to_string(),
        "--hold-time",
        "9",
        "--next-hop6",
        NEXT_HOP6,
    ]);
    args.extend(s(routes));
    Pair {
        collector,
        announcer: spawn(args),
    }
}

impl Pair {
    fn context(&self) -> String {
        format!(
            "{}\n{}",
            self.announcer.diagnostics(),
            self.collector.diagnostics()
        )
    }

    /// Waits for End-of-RIB of both families; returns the `update` lines
    /// before them and the two `end_of_rib` lines.
    fn initial_table(&self) -> (Vec<Value>, Vec<Value>) {
        let ctx = || self.context();
        for afi in ["ipv4", "ipv6"] {
            self.collector.wait_json(
                &format!("End-of-RIB {afi}"),
                T,
                |v| is_event(v, "end_of_rib") && v["afi"] == afi,
                ctx,
            );
        }
        let json = self.collector.json();
        let updates = json
            .iter()
            .filter(|v| is_event(v, "update"))
            .cloned()
            .collect();
        let eors = json
            .iter()
            .filter(|v| is_event(v, "end_of_rib"))
            .cloned()
            .collect();
        (updates, eors)
    }
}

/// The announced prefixes of `update` lines, each with its line.
fn by_prefix(updates: &[Value]) -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    for u in updates {
        for r in u["announced"].as_array().into_iter().flatten() {
            let p = r["prefix"].as_str().unwrap_or_default().to_owned();
            assert!(
                m.insert(p.clone(), u.clone()).is_none(),
                "{p} announced twice"
            );
        }
    }
    m
}

/// Test 5: announcer → collector (eBGP): the prefixes with their
/// attributes, equal attributes sharing an UPDATE, End-of-RIB counts; on
/// SIGTERM the collector sees the withdrawals before the Cease.
#[test]
fn collector_sees_what_the_announcer_sends() {
    let mut p = pair(
        false,
        &[
            &format!("{V4} communities 65001:1,65001:2 large-communities 65001:1:2 med 10"),
            &format!("{V4_OTHER} communities 65001:1,65001:2 large-communities 65001:1:2 med 10"),
            "192.0.2.0/24 next-hop 192.0.2.1 as-path \"65001 65010\"",
            V6,
        ],
    );
    let (updates, eors) = p.initial_table();
    let routes = by_prefix(&updates);
    assert_eq!(routes.len(), 4, "{routes:?}\n{}", p.context());
    let ours = p.announcer.json();
    let local = ours
        .iter()
        .find(|v| is_event(v, "established"))
        .map(|v| v["local_address"].clone())
        .expect("an established line");
    let a = &routes[V4]["attributes"];
    assert_eq!(a["next_hop"], local, "{a}");
    assert_eq!(a["origin"], "igp", "{a}");
    assert_eq!(a["as_path"], serde_json::json!([OUR_AS]), "{a}");
    assert_eq!(a["med"], 10, "{a}");
    assert_eq!(a["local_pref"], Value::Null, "{a}");
    assert_eq!(
        a["communities"],
        serde_json::json!(["65001:1", "65001:2"]),
        "{a}"
    );
    assert_eq!(
        a["large_communities"],
        serde_json::json!(["65001:1:2"]),
        "{a}"
    );
    // Equal attributes, one UPDATE.
    assert_eq!(routes[V4], routes[V4_OTHER], "{}", p.context());
    let a = &routes["192.0.2.0/24"]["attributes"];
    assert_eq!(a["next_hop"], "192.0.2.1", "{a}");
    // Our AS is not prepended twice.
    assert_eq!(a["as_path"], serde_json::json!([OUR_AS, 65010]), "{a}");
    assert_eq!(routes[V6]["attributes"]["next_hop"], NEXT_HOP6);
    let count = |afi: &str| {
        eors.iter()
            .find(|e| e["afi"] == afi)
            .and_then(|e| e["prefixes"].as_u64())
    };
    assert_eq!(
        (count("ipv4"), count("ipv6")),
        (Some(3), Some(1)),
        "{eors:?}"
    );

    p.announcer.signal(libc::SIGTERM);
    assert_eq!(
        p.announcer.wait_exit(EXIT).code(),
        Some(0),
        "{}",
        p.context()
    );
    p.collector.wait_json(
        "the Cease",
        T,
        |v| is_event(v, "notification") && v["code"] == 6 && v["subcode"] == 2,
        String::new,
    );
    let json = p.collector.json();
    let cease = json
        .iter()
        .position(|v| is_event(v, "notification"))
        .expect("notification");
    let withdrawn: Vec<&str> = json[..cease]
        .iter()
        .filter(|v| is_event(v, "update"))
        .flat_map(|v| v["withdrawn"].as_array().into_iter().flatten())
        .filter_map(|r| r["prefix"].as_str())
        .collect();
    for pfx in [V4, V4_OTHER, "192.0.2.0/24", V6] {
        assert!(
            withdrawn.contains(&pfx),
            "{pfx} not withdrawn before the Cease\n{}",
            p.context()
        );
    }
    p.collector.signal(libc::SIGTERM);
    assert_eq!(p.collector.wait_exit(EXIT).code(), Some(0));
}

/// iBGP: the path as given (empty without one), LOCAL_PREF 100 unless set.
#[test]
fn collector_sees_ibgp_attributes() {
    let mut p = pair(
        true,
        &[V4, "192.0.2.0/24 as-path \"65010\" local-pref 200", V6],
    );
    let (updates, _) = p.initial_table();
    let routes = by_prefix(&updates);
    let a = &routes[V4]["attributes"];
    assert_eq!(a["as_path"], serde_json::json!([]), "{a}");
    assert_eq!(a["local_pref"], 100, "{a}");
    let a = &routes["192.0.2.0/24"]["attributes"];
    assert_eq!(a["as_path"], serde_json::json!([65010]), "{a}");
    assert_eq!(a["local_pref"], 200, "{a}");
    assert_eq!(routes[V6]["attributes"]["local_pref"], 100);
    p.announcer.signal(libc::SIGTERM);
    assert_eq!(
        p.announcer.wait_exit(EXIT).code(),
        Some(0),
        "{}",
        p.context()
    );
}

// ---------------------------------------------------------- bad input

/// Runs the announcer with `args`; asserts the exit code, a message
/// containing `want`, one line, no panic.
fn bad(args: &[&str], code: i32, want: &str) {
    let (status, stdout, stderr) = run_tool("announcer", args, Duration::from_secs(30));
    assert_eq!(status.code(), Some(code), "{args:?}: {stderr}");
    assert!(
        stderr.contains(want),
        "{args:?}: wanted '{want}' in: {stderr}"
    );
    assert!(
        stderr.starts_with("announcer: error: "),
        "{args:?}: {stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(stdout.is_empty(), "{args:?}: {stdout}");
}

/// Test 6: every kind of bad input: one line on stderr, exit 2 for usage
/// errors and 1 for runtime ones.
#[test]
fn bad_input_is_one_line_and_an_exit_code() {
    let ok = [
        "--router-id",
        "10.0.0.1",
        "--local-as",
        "65001",
        "--remote-as",
        "65000",
        "--peer",
        "127.0.0.1",
    ];
    let with =
        |extra: &[&str]| -> Vec<String> { ok.iter().chain(extra).map(|x| x.to_string()).collect() };
    let run = |extra: &[&str], code: i32, want: &str| {
        let a = with(extra);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        bad(&a, code, want);
    };
    bad(
        &[
            "--router-id",
            "10.0.0.1",
            "--local-as",
            "banana",
            "--peer",
            "127.0.0.1",
            V4,
        ],
        2,
        "banana",
    );
    bad(
        &[
            "--local-as",
            "65001",
            "--remote-as",
            "65000",
            "--peer",
            "127.0.0.1",
            V4,
        ],
        2,
        "--router-id",
    );
    run(&["--hold-time", "2", V4], 2, "hold time 2");
    run(
        &["192.0.2.1/24"],
        2,
        "host bits set (did you mean 192.0.2.0/24?)",
    );
    run(&["banana"], 2, "'banana' is not a prefix");
    run(&[V4, "med", "x"], 2, "med 'x'");
    run(&[], 2, "nothing to announce");
    run(&["--interval", "1", V4], 2, "need --health-check");
    run(
        &["--health-check", "true", "--interval", "0", V4],
        2,
        "--interval 0",
    );
    run(&["--next-hop4", "0.0.0.0", V4], 2, "--next-hop4 0.0.0.0");
    run(&["--next-hop6", "banana", V4], 2, "banana");

    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("routes.txt");
    write(&file, &format!("# ok\n{V4}\n{V6} communities 65001:x\n"));
    let f = file.to_string_lossy().into_owned();
    run(&["--file", &f], 2, &format!("{f}:3: "));
    write(&file, &format!("{V4}\n{V4} med 1\n"));
    run(&["--file", &f], 2, &format!("{f}:2: "));
    write(&file, &format!("{V4}\n"));
    run(&["--file", &f, V4], 2, "given twice");
    let missing = dir.path().join("missing.txt");
    run(&["--file", &missing.to_string_lossy()], 1, "cannot read");

    // A port in use for --listen.
    let addr = net::unique_loopback();
    let taken = std::net::TcpListener::bind((addr, 0)).expect("bind");
    let listen = taken.local_addr().expect("local addr").to_string();
    run(
        &["--listen", &listen, V4],
        1,
        &format!("cannot listen on {listen}"),
    );
}

// ------------------------------------------------------ RFC 8950 on IPv6

mod ipv6_peer {
    //! An in-test corebgp-std peer on [::1] that records what it receives,
    //! with or without the Extended Next Hop capability (RFC 8950) for
    //! IPv4 unicast (neither daemon config here enables it).

    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::sync::{Arc, Mutex};

    use corebgp_core::plugin::Plugin;
    use corebgp_core::session::{CapabilitySet, Negotiated, OpenHooks, PeerConfig};
    use corebgp_core::update::{NextHop, Update, UpdateConfig};
    use corebgp_core::wire::{
        Afi, AfiSafi, Capability, ExtendedNextHopEntry, List, Notification, UpdateSections,
    };
    use corebgp_std::{PeerOptions, Server};

    /// "PREFIX via NEXT_HOP" per announced route, "eor FAMILY" per End-of-RIB.
    pub type Seen = Arc<Mutex<Vec<String>>>;

    struct Recorder {
        seen: Seen,
        enh: bool,
        cfg: UpdateConfig,
    }

    impl OpenHooks for Recorder {
        fn capabilities(&mut self, _: &PeerConfig, caps: &mut CapabilitySet) {
            const ENH: [ExtendedNextHopEntry; 1] = [ExtendedNextHopEntry {
                family: AfiSafi::IPV4_UNICAST,
                next_hop_afi: Afi::Ipv6,
            }];
            let _ = caps.push(&Capability::MultiProtocol(AfiSafi::IPV4_UNICAST));
            let _ = caps.push(&Capability::MultiProtocol(AfiSafi::IPV6_UNICAST));
            if self.enh {
                let _ = caps.push(&Capability::ExtendedNextHop(List::Items(&ENH)));
            }
        }
    }

    impl Plugin for Recorder {
        async fn on_established(&mut self, peer: &PeerConfig, n: &Negotiated) {
            self.cfg = n.update_config(peer);
        }

        async fn on_update<'m>(
            &mut self,
            _: &PeerConfig,
            u: UpdateSections<'m>,
        ) -> Result<(), Notification<'m>> {
            let u = Update::from_sections(u, &self.cfg).map_err(|e| e.notification)?;
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(f) = u.end_of_rib() {
                seen.push(format!("eor {:?}", f.afi));
                return Ok(());
            }
            let nh = match (u.next_hop(), u.mp_reach().and_then(|m| m.next_hop())) {
                (_, Some(NextHop::V6 { global, .. })) => global.to_string(),
                (_, Some(NextHop::V4(a))) | (Some(a), None) => a.to_string(),
                (None, None) => String::new(),
            };
            for (_, n) in u.announced() {
                seen.push(format!("{} via {nh}", n.prefix));
            }
            Ok(())
        }
    }

    /// A passive peer for AS `remote_as` at ::1; `None` without IPv6
    /// loopback. Keep the runtime: dropping it stops the peer.
    pub fn start(
        local_as: u32,
        remote_as: u32,
        enh: bool,
    ) -> Option<(tokio::runtime::Runtime, u16, Seen)> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)))
            .ok()?;
        let port = listener.local_addr().ok()?.port();
        let seen = Seen::default();
        let server = Server::new(Ipv4Addr::new(10, 86, 50, 1)).expect("server");
        server
            .add_peer(
                PeerConfig {
                    remote_address: IpAddr::V6(Ipv6Addr::LOCALHOST),
                    local_as,
                    remote_as,
                },
                Recorder {
                    seen: seen.clone(),
                    enh,
                    cfg: UpdateConfig::new(),
                },
                PeerOptions::new().passive(true).hold_time(9),
            )
            .expect("add_peer");
        rt.spawn(async move { server.serve(vec![listener]).await });
        Some((rt, port, seen))
    }
}

fn ipv6_session(enh: bool) -> (tokio::runtime::Runtime, Tool, ipv6_peer::Seen) {
    // Nothing is skipped silently: without IPv6 on loopback this fails.
    let Some((rt, port, seen)) = ipv6_peer::start(DAEMON_AS, OUR_AS, enh) else {
        panic!(
            "cannot listen on [::1]: these tests need IPv6 on the loopback interface \
             (sysctl net.ipv6.conf.lo.disable_ipv6=0)"
        );
    };
    let t = spawn(s(&[
        "--router-id",
        "10.86.50.2",
        "--local-as",
        &OUR_AS.to_string(),
        "--remote-as",
        &DAEMON_AS.to_string(),
        "--peer",
        "::1",
        "--port",
        &port.to_string(),
        "--local-address",
        "::1",
        "--hold-time",
        "9",
        V4,
        V6,
    ]));
    (rt, t, seen)
}

fn wait_seen(t: &Tool, seen: &ipv6_peer::Seen, n_eor: usize) -> Vec<String> {
    wait_for(
        "both End-of-RIBs at the IPv6 peer",
        T,
        || {
            let v = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
            (v.iter().filter(|x| x.starts_with("eor")).count() >= n_eor).then_some(v)
        },
        || {
            format!(
                "seen: {:?}\n{}",
                seen.lock().map(|v| v.clone()),
                t.diagnostics()
            )
        },
    )
}

/// On an IPv6 session whose peer supports RFC 8950, IPv4 routes go out
/// with our IPv6 address as next hop; IPv6 routes with it too.
#[test]
fn ipv4_routes_over_ipv6_use_extended_next_hop() {
    let (_rt, mut t, seen) = ipv6_session(true);
    let v = wait_seen(&t, &seen, 2);
    assert!(
        v.contains(&format!("{V4} via ::1")),
        "{v:?}\n{}",
        t.diagnostics()
    );
    assert!(
        v.contains(&format!("{V6} via ::1")),
        "{v:?}\n{}",
        t.diagnostics()
    );
    t.signal(libc::SIGTERM);
    assert_eq!(t.wait_exit(EXIT).code(), Some(0), "{}", t.diagnostics());
}

/// Without RFC 8950 (and no --next-hop4) the IPv4 routes cannot go out:
/// an error names them, the rest goes, and End-of-RIB for both families.
#[test]
fn ipv4_routes_over_ipv6_without_extended_next_hop_are_an_error() {
    let (_rt, mut t, seen) = ipv6_session(false);
    let v = wait_seen(&t, &seen, 2);
    assert!(
        v.contains(&format!("{V6} via ::1")),
        "{v:?}\n{}",
        t.diagnostics()
    );
    assert!(!v.iter().any(|x| x.starts_with(V4)), "{v:?}");
    let err = t.stderr();
    assert!(
        err.contains("1 routes not announced") && err.contains(V4) && err.contains("RFC 8950"),
        "{err}"
    );
    t.signal(libc::SIGTERM);
    assert_eq!(t.wait_exit(EXIT).code(), Some(0), "{}", t.diagnostics());
}
