//! corebgp demo: encode a BGP conversation with corebgp-core's wire codec,
//! push it through the stream framer in awkward TCP-sized chunks, decode
//! every message and print what a peer would see.
//!
//! Run: `cargo run --example demo`

use core::net::Ipv4Addr;

use corebgp_core::wire::*;

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let mut stream = Vec::new();
    let mut buf = [0u8; 4096];

    // OPEN from AS 4200000001 (4-octet, so My AS is AS_TRANS).
    let caps = [
        Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
        Capability::MultiProtocol(AfiSafi::IPV6_UNICAST),
        Capability::RouteRefresh,
        Capability::EnhancedRouteRefresh,
        Capability::FourOctetAs(4_200_000_001),
        Capability::AddPath(List::Items(&[AddPathEntry {
            family: AfiSafi::IPV4_UNICAST,
            direction: AddPathDirection::Receive,
        }])),
        Capability::Fqdn {
            hostname: b"demo",
            domain: b"example.net",
        },
    ];
    let open = OpenBuilder {
        my_as: OpenBuilder::my_as_field(4_200_000_001),
        hold_time: 90,
        bgp_id: Ipv4Addr::new(192, 0, 2, 1),
        capabilities: &caps,
        force_extended_parameters: false,
    };
    let n = open.encode(&mut buf).expect("OPEN fits");
    stream.extend_from_slice(&buf[..n]);
    stream.extend_from_slice(&KEEPALIVE);

    // UPDATE: ORIGIN IGP, AS_PATH [4200000001], NEXT_HOP 192.0.2.1,
    // NLRI 203.0.113.0/24 (attributes written by hand until the builder).
    let attrs = [
        0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0xfa, 0x56, 0xea, 0x01, 0x40, 3, 4, 192, 0, 2, 1,
    ];
    let update = UpdateSections {
        withdrawn: &[],
        attributes: &attrs,
        nlri: &[24, 203, 0, 113],
    };
    let n = encode_update_sections(&update, &mut buf, MAX_MESSAGE_LEN).expect("UPDATE fits");
    stream.extend_from_slice(&buf[..n]);
    // End-of-RIB for IPv4 unicast, then a route refresh request for IPv6.
    let n = encode_update_sections(&UpdateSections::default(), &mut buf, MAX_MESSAGE_LEN)
        .expect("fits");
    stream.extend_from_slice(&buf[..n]);
    let n = RouteRefresh::request(AfiSafi::IPV6_UNICAST)
        .encode(&mut buf)
        .expect("fits");
    stream.extend_from_slice(&buf[..n]);
    // Goodbye, with an RFC 9003 shutdown communication.
    let n = Notification::encode_shutdown(
        CeaseSubcode::AdministrativeShutdown,
        "maintenance, back at 02:00",
        &mut buf,
    )
    .expect("fits");
    stream.extend_from_slice(&buf[..n]);
    println!("encoded a {}-byte BGP conversation\n", stream.len());

    // Feed it through the framer 7 bytes at a time, as a slow TCP would.
    let mut framer = Framer::new([0u8; MAX_MESSAGE_LEN]);
    for chunk in stream.chunks(7) {
        framer.feed(chunk);
        while let Some(frame) = framer.next_message() {
            let frame = frame.expect("well-formed stream");
            match Message::parse(frame, MAX_MESSAGE_LEN).expect("well-formed message") {
                Message::Open(o) => {
                    println!(
                        "OPEN  version {} AS {} hold {}s id {}",
                        o.version,
                        o.asn(),
                        o.hold_time,
                        o.bgp_id
                    );
                    for c in o.capabilities() {
                        println!("      capability {:?}", c.expect("well-formed capability"));
                    }
                }
                Message::Keepalive => println!("KEEPALIVE"),
                Message::Update(u) if u.is_ipv4_end_of_rib() => {
                    println!("UPDATE End-of-RIB (IPv4 unicast)")
                }
                Message::Update(u) => println!(
                    "UPDATE withdrawn [{}] attributes [{}] nlri [{}]",
                    hex(u.withdrawn),
                    hex(u.attributes),
                    hex(u.nlri)
                ),
                Message::RouteRefresh(r) => {
                    println!("ROUTE-REFRESH {:?} {:?}", r.family, r.subtype)
                }
                Message::Notification(n) => println!("NOTIFICATION {n}"),
            }
        }
    }

    // What a session would answer to a bad marker.
    let mut bad = KEEPALIVE;
    bad[0] = 0;
    let err = Message::parse(&bad, MAX_MESSAGE_LEN).expect_err("bad marker");
    let n = err.notification().encode(&mut buf).expect("fits");
    println!(
        "\na bad marker is answered with {} = [{}]",
        err.notification(),
        hex(&buf[..n])
    );
}
