//! Driving one connection by hand through the typestate API: every step is
//! a method of the state it starts from, and consumes it.

use core::net::{IpAddr, Ipv4Addr};

use corebgp_core::session::{
    Connected, Cx, DefaultHooks, Direction, Event, Events, Idle, Link, OpenReceived, PeerConfig,
    SessionConfig, StateKind,
};
use corebgp_core::wire::{
    AfiSafi, Capability, CeaseSubcode, Framer, Message, OpenBuilder, UpdateSections,
    encode_update_sections,
};

fn sent(link: &mut Link) -> Vec<Vec<u8>> {
    let bytes = link.pending().to_vec();
    link.consume(bytes.len());
    let mut f = Framer::new(vec![0u8; 4096].into_boxed_slice());
    f.feed(&bytes);
    let mut out = Vec::new();
    while let Some(m) = f.next_message() {
        out.push(m.expect("well-formed").to_vec());
    }
    out
}

#[test]
fn idle_to_established_and_back_by_hand() {
    let peer = PeerConfig {
        remote_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        local_as: 65001,
        remote_as: 65002,
    };
    let config = SessionConfig::new(peer, Ipv4Addr::new(10, 0, 0, 1)).with_hold_time(30);
    let (mut link, mut events) = (Link::new(), Events::new());
    let mut now = corebgp_core::session::Instant::from_millis(1_000);
    macro_rules! cx {
        () => {
            Cx {
                now,
                config: &config,
                link: &mut link,
                events: &mut events,
                direction: Direction::Outbound,
            }
        };
    }

    // Idle --ManualStart--> Connect (asks to dial).
    let connect = Idle::new().start(&mut cx!());
    assert!(link.take_dial());
    // Connect --TCP up--> OpenSent, with our OPEN on the wire.
    let Connected::OpenSent(open_sent) = connect.connected(&mut cx!(), &mut DefaultHooks) else {
        panic!("no DelayOpen configured")
    };
    let out = sent(&mut link);
    assert_eq!(out.len(), 1);
    let Ok(Message::Open(ours)) = Message::parse(&out[0], 4096) else {
        panic!("not an OPEN")
    };
    assert_eq!(
        (ours.my_as, ours.hold_time, ours.four_octet_as()),
        (65001, 30, Some(65001))
    );

    // OpenSent --their OPEN--> OpenConfirm, KEEPALIVE sent.
    let caps = [
        Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
        Capability::FourOctetAs(65002),
    ];
    let mut buf = [0u8; 256];
    let n = OpenBuilder::new(65002, 9, Ipv4Addr::new(10, 0, 0, 2), &caps)
        .encode(&mut buf)
        .unwrap();
    let Ok(Message::Open(theirs)) = Message::parse(&buf[..n], 4096) else {
        panic!()
    };
    let OpenReceived::OpenConfirm(confirm) =
        open_sent.receive_open(&mut cx!(), &theirs, &mut DefaultHooks)
    else {
        panic!("refused")
    };
    assert_eq!(confirm.negotiated().hold_time, 9, "the smaller hold time");
    assert_eq!(sent(&mut link).len(), 1, "a KEEPALIVE");

    // OpenConfirm --KEEPALIVE--> Established.
    now = corebgp_core::session::Instant::from_millis(2_000);
    let mut established = confirm.receive_keepalive(&mut cx!());
    // Next: the KeepaliveTimer started in OpenConfirm (1 s + 9 s / 3); the
    // hold timer restarted on the KEEPALIVE runs to 2 s + 9 s.
    assert_eq!(
        established.deadline(),
        Some(corebgp_core::session::Instant::from_millis(1_000 + 3_000))
    );

    // An UPDATE goes out through the writer the Established state lends.
    let mut msg = [0u8; 64];
    let n = encode_update_sections(&UpdateSections::default(), &mut msg, 4096).unwrap();
    {
        let mut cx = cx!();
        let mut w = established.update_writer(&mut cx);
        assert_eq!(w.max_message_len(), 4096);
        w.write(&msg[..n]).unwrap();
    }

    // Established --ManualStop--> Idle, with a Cease.
    let idle = established.stop(&mut cx!(), CeaseSubcode::AdministrativeShutdown);
    assert!(idle.reason().is_some());
    let out = sent(&mut link);
    let Ok(Message::Notification(cease)) = Message::parse(&out[0], 4096) else {
        panic!()
    };
    assert_eq!((cease.code.code(), cease.code.subcode()), (6, 2));
    assert!(link.wants_close());

    // The events tell the same story.
    let mut states = vec![];
    while let Some(e) = events.pop() {
        if let Event::StateChanged { to, .. } = e {
            states.push(to);
        }
    }
    assert_eq!(
        states,
        [
            StateKind::Connect,
            StateKind::OpenSent,
            StateKind::OpenConfirm,
            StateKind::Established,
            StateKind::Idle
        ]
    );
}
