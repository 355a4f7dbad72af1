//! Malformed inputs, each with the exact NOTIFICATION (code, subcode, data)
//! the RFCs require.

use corebgp_core::wire::*;

/// Code, subcode and data of the expected NOTIFICATION.
type Expected = (u8, u8, Vec<u8>);

fn msg(len_field: u16, ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = MARKER.to_vec();
    m.extend_from_slice(&len_field.to_be_bytes());
    m.push(ty);
    m.extend_from_slice(body);
    m
}

fn whole(ty: u8, body: &[u8]) -> Vec<u8> {
    msg((19 + body.len()) as u16, ty, body)
}

/// An OPEN body: version 4, AS 65001, hold 90, id 1.2.3.4, then `params`
/// with the given optional parameters length byte.
fn open_body(opt_len: u8, params: &[u8]) -> Vec<u8> {
    let mut b = vec![4, 0xfd, 0xe9, 0, 90, 1, 2, 3, 4, opt_len];
    b.extend_from_slice(params);
    b
}

/// Feeds the bytes through the framer and decodes the first message, the
/// way a session does; returns the NOTIFICATION for the first error.
fn first_error(bytes: &[u8], max_len: usize) -> Option<Expected> {
    let mut f = Framer::new(vec![0u8; 65535].into_boxed_slice());
    f.set_max_message_len(max_len);
    f.feed(bytes);
    let n = match f.next_message()? {
        Err(e) => e.notification(),
        Ok(m) => match Message::parse(m, max_len) {
            Err(e) => e.notification(),
            Ok(Message::Open(o)) => match o.capabilities().find_map(Result::err) {
                Some(e) => e.notification(),
                None => return None,
            },
            Ok(_) => return None,
        },
    };
    Some((n.code.code(), n.code.subcode(), n.data.as_bytes().to_vec()))
}

#[test]
fn malformed_table() {
    let mut bad_marker = KEEPALIVE.to_vec();
    bad_marker[0] = 0xfe;
    let borr_long = whole(5, &[0, 1, 1, 1, 0xaa]);
    let cases: Vec<(&str, Vec<u8>, usize, Expected)> = vec![
        // RFC 4271 §6.1
        ("marker not all ones", bad_marker, 4096, (1, 1, vec![])),
        (
            "length below 19",
            msg(18, 4, &[]),
            4096,
            (1, 2, vec![0, 18]),
        ),
        (
            "length above 4096",
            msg(4097, 2, &[]),
            4096,
            (1, 2, vec![0x10, 0x01]),
        ),
        (
            "length above 65535 limit is impossible, 4096 without RFC 8654",
            msg(8000, 2, &[]),
            4096,
            (1, 2, vec![0x1f, 0x40]),
        ),
        ("type 0", msg(19, 0, &[]), 4096, (1, 3, vec![0])),
        ("type 6", msg(19, 6, &[]), 4096, (1, 3, vec![6])),
        ("type 255", msg(19, 255, &[]), 4096, (1, 3, vec![255])),
        (
            "KEEPALIVE longer than 19",
            whole(4, &[0]),
            4096,
            (1, 2, vec![0, 20]),
        ),
        (
            "OPEN shorter than 29",
            whole(1, &[4, 0, 1, 0, 90, 1, 2, 3, 4]),
            4096,
            (1, 2, vec![0, 28]),
        ),
        (
            "OPEN over 4096 even with extended messages",
            msg(4097, 1, &[]),
            65535,
            (1, 2, vec![0x10, 0x01]),
        ),
        (
            "UPDATE shorter than 23",
            whole(2, &[0, 0, 0]),
            4096,
            (1, 2, vec![0, 22]),
        ),
        (
            "NOTIFICATION shorter than 21",
            whole(3, &[6]),
            4096,
            (1, 2, vec![0, 20]),
        ),
        (
            "ROUTE-REFRESH shorter than 23",
            whole(5, &[0, 1, 0]),
            4096,
            (1, 2, vec![0, 22]),
        ),
        // RFC 4271 §6.2
        (
            "OPEN version 3",
            whole(1, &{
                let mut b = open_body(0, &[]);
                b[0] = 3;
                b
            }),
            4096,
            (2, 1, vec![0, 4]),
        ),
        (
            "OPEN opt len past the end",
            whole(1, &open_body(4, &[2, 0])),
            4096,
            (2, 0, vec![]),
        ),
        (
            "OPEN opt len short of the end",
            whole(1, &open_body(1, &[2, 0])),
            4096,
            (2, 0, vec![]),
        ),
        (
            "OPEN parameter type 1 (authentication)",
            whole(1, &open_body(3, &[1, 1, 0])),
            4096,
            (2, 4, vec![]),
        ),
        (
            "OPEN parameter type 255 without RFC 9072 form",
            whole(1, &open_body(2, &[255, 0])),
            4096,
            (2, 4, vec![]),
        ),
        (
            "OPEN parameter length past the end",
            whole(1, &open_body(3, &[2, 5, 2])),
            4096,
            (2, 0, vec![]),
        ),
        (
            "OPEN capability TLV truncated",
            whole(1, &open_body(4, &[2, 2, 65, 4])),
            4096,
            (2, 0, vec![]),
        ),
        (
            "OPEN RFC 9072 length mismatch",
            whole(1, &open_body(255, &[255, 0, 9, 2, 0, 2, 2, 0])),
            4096,
            (2, 0, vec![]),
        ),
        (
            "OPEN 4-octet AS capability of 3 bytes",
            whole(1, &open_body(7, &[2, 5, 65, 3, 0, 0, 1])),
            4096,
            (2, 0, vec![]),
        ),
        (
            "OPEN multiprotocol capability of 3 bytes",
            whole(1, &open_body(7, &[2, 5, 1, 3, 0, 1, 1])),
            4096,
            (2, 0, vec![]),
        ),
        // RFC 4271 §6.3
        (
            "UPDATE withdrawn length past the end",
            whole(2, &[0, 5, 0, 0]),
            4096,
            (3, 1, vec![]),
        ),
        (
            "UPDATE attribute length past the end",
            whole(2, &[0, 0, 0, 9, 0x40, 1, 1, 0]),
            4096,
            (3, 1, vec![]),
        ),
        (
            "UPDATE withdrawn eats the attribute length",
            whole(2, &[0, 1, 24, 0]),
            4096,
            (3, 1, vec![]),
        ),
        // RFC 7313 §5
        (
            "BoRR with 5-byte body",
            borr_long.clone(),
            4096,
            (7, 1, borr_long.clone()),
        ),
    ];
    for (name, bytes, max, expected) in cases {
        assert_eq!(first_error(&bytes, max), Some(expected), "{name}");
    }
}

#[test]
fn valid_edge_cases_are_not_errors() {
    // An OPEN without optional parameters is well-formed (the session, not
    // the codec, answers 2/7 for the missing 4-octet AS capability).
    assert_eq!(first_error(&whole(1, &open_body(0, &[])), 4096), None);
    // An empty capabilities parameter is tolerated.
    assert_eq!(first_error(&whole(1, &open_body(2, &[2, 0])), 4096), None);
    // Unknown capabilities are not errors (RFC 5492 §5).
    assert_eq!(
        first_error(&whole(1, &open_body(5, &[2, 3, 99, 1, 7])), 4096),
        None
    );
    // ROUTE-REFRESH with an unknown subtype is decoded for the session to ignore.
    assert_eq!(first_error(&whole(5, &[0, 1, 9, 1]), 4096), None);
    // A 4096-byte UPDATE is fine, a NOTIFICATION with one data byte too.
    let mut body = vec![0u8; 4096 - 19];
    body[3] = 0;
    assert_eq!(first_error(&whole(2, &body), 4096), None);
    assert_eq!(first_error(&whole(3, &[6, 2, 0]), 4096), None);
}
