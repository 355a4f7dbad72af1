//! Encoders that store a fixed head whole and then copy the variable part:
//! a buffer of exactly the message length is enough, one byte less is
//! `BufferTooSmall` with the full length, and bytes past the message are
//! left alone.

use core::net::Ipv4Addr;

use corebgp_core::wire::*;

/// Encodes into buffers of every length from 0 to `len + 2` (pre-filled with
/// 0xa5) and checks each result against the encoding into a large buffer.
fn check_fit(len: usize, encode: impl Fn(&mut [u8]) -> Result<usize, EncodeError>) -> Vec<u8> {
    let mut big = vec![0xa5u8; len + 64];
    assert_eq!(encode(&mut big), Ok(len));
    assert!(big[len..].iter().all(|&b| b == 0xa5));
    let want = big[..len].to_vec();
    for size in 0..=len + 2 {
        let mut buf = vec![0xa5u8; size];
        let r = encode(&mut buf);
        if size < len {
            assert_eq!(
                r,
                Err(EncodeError::BufferTooSmall {
                    needed: len,
                    available: size
                }),
                "size {size}"
            );
        } else {
            assert_eq!(r, Ok(len), "size {size}");
            assert_eq!(buf[..len], want[..], "size {size}");
            assert!(buf[len..].iter().all(|&b| b == 0xa5), "size {size}");
        }
    }
    want
}

#[test]
fn header_and_keepalive() {
    let h = check_fit(HEADER_LEN, |b| {
        encode_header(b, 0x1234, MessageType::Update)
    });
    assert_eq!(h[..16], MARKER);
    assert_eq!(h[16..], [0x12, 0x34, 2]);
    let k = check_fit(HEADER_LEN, encode_keepalive);
    assert_eq!(k, KEEPALIVE);
}

#[test]
fn notification_with_and_without_data() {
    let n = Notification::new(NotificationCode::Cease(CeaseSubcode::PeerDeconfigured));
    let m = check_fit(21, |b| n.encode(b));
    assert_eq!(m[16..], [0, 21, 3, 6, 3]);
    let data = [9u8, 8, 7, 6, 5];
    let n = Notification::with_data(NotificationCode::Open(OpenSubcode::Unknown(200)), &data[..]);
    let m = check_fit(26, |b| n.encode(b));
    assert_eq!(m[..16], MARKER);
    assert_eq!(m[16..], [0, 26, 3, 2, 200, 9, 8, 7, 6, 5]);
    // Data cut to the limit: the head stays whole.
    let m = check_fit(23, |b| n.encode_with_max(b, 23));
    assert_eq!(m[16..], [0, 23, 3, 2, 200, 9, 8]);
    let n = Notification::with_data(
        NotificationCode::Unknown {
            code: 77,
            subcode: 88,
        },
        &data[..],
    );
    let m = check_fit(21, |b| n.encode_with_max(b, 0));
    assert_eq!(m[16..], [0, 21, 3, 77, 88]);
}

#[test]
fn shutdown_communication() {
    let m = check_fit(25, |b| {
        Notification::encode_shutdown(CeaseSubcode::AdministrativeReset, "bye", b)
    });
    assert_eq!(m[..16], MARKER);
    assert_eq!(m[16..], [0, 25, 3, 6, 4, 3, b'b', b'y', b'e']);
    let m = check_fit(22, |b| {
        Notification::encode_shutdown(CeaseSubcode::AdministrativeShutdown, "", b)
    });
    assert_eq!(m[16..], [0, 22, 3, 6, 2, 0]);
}

#[test]
fn open_in_every_parameter_format() {
    let id = Ipv4Addr::new(192, 0, 2, 1);
    let fixed = [4, 0xfd, 0xe9, 0, 90, 192, 0, 2, 1];
    // No capabilities: Opt Parm Len 0.
    let b = OpenBuilder::new(65001, 90, id, &[]);
    let m = check_fit(29, |buf| b.encode(buf));
    assert_eq!(m[..16], MARKER);
    assert_eq!(m[16..19], [0, 29, 1]);
    assert_eq!(m[19..28], fixed);
    assert_eq!(m[28..], [0]);
    // One capabilities parameter in the RFC 5492 format.
    let caps = [Capability::RouteRefresh];
    let b = OpenBuilder::new(65001, 90, id, &caps);
    let m = check_fit(33, |buf| b.encode(buf));
    assert_eq!(m[16..19], [0, 33, 1]);
    assert_eq!(m[19..28], fixed);
    assert_eq!(m[28..], [4, 2, 2, 2, 0]);
    let m = check_fit(33, |buf| b.encode_with_raw_capabilities(&[2, 0], buf));
    assert_eq!(m[28..], [4, 2, 2, 2, 0]);
    // RFC 9072 format, forced and needed.
    let b = OpenBuilder {
        force_extended_parameters: true,
        ..b
    };
    let m = check_fit(37, |buf| b.encode(buf));
    assert_eq!(m[16..19], [0, 37, 1]);
    assert_eq!(m[19..28], fixed);
    assert_eq!(m[28..], [255, 255, 0, 5, 2, 0, 2, 2, 0]);
    let b = OpenBuilder {
        force_extended_parameters: false,
        ..b
    };
    let tlvs = [[0x47u8, 1, 0]; 100].concat();
    let m = check_fit(35 + 300, |buf| b.encode_with_raw_capabilities(&tlvs, buf));
    assert_eq!(m[16..19], [1, 0x4f, 1]);
    assert_eq!(m[28..35], [255, 255, 0x01, 0x2f, 2, 0x01, 0x2c]);
    assert_eq!(m[35..], tlvs[..]);
    // Each decodes back to what was encoded.
    let Ok(Message::Open(o)) = Message::parse(&m, MAX_MESSAGE_LEN) else {
        panic!("not an OPEN");
    };
    assert!(o.uses_extended_parameters());
    assert_eq!(o.raw_capabilities().count(), 100);
}
