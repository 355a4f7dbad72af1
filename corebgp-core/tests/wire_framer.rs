//! The framer fed real message streams split at every possible boundary.

use core::net::Ipv4Addr;

use corebgp_core::wire::*;

fn stream() -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut msgs = Vec::new();
    let caps = [
        Capability::MultiProtocol(AfiSafi::IPV4_UNICAST),
        Capability::MultiProtocol(AfiSafi::IPV6_UNICAST),
        Capability::RouteRefresh,
        Capability::FourOctetAs(65001),
    ];
    let mut buf = [0u8; 4096];
    let open = OpenBuilder {
        my_as: 65001,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(192, 0, 2, 1),
        capabilities: &caps,
        force_extended_parameters: false,
    };
    let n = open.encode(&mut buf).unwrap();
    msgs.push(buf[..n].to_vec());
    msgs.push(KEEPALIVE.to_vec());
    let attrs = [
        0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9, 0x40, 3, 4, 192, 0, 2, 1,
    ];
    let u = UpdateSections {
        withdrawn: &[],
        attributes: &attrs,
        nlri: &[16, 10, 0, 24, 192, 0, 2],
    };
    let n = encode_update_sections(&u, &mut buf, MAX_MESSAGE_LEN).unwrap();
    msgs.push(buf[..n].to_vec());
    let n = RouteRefresh::request(AfiSafi::IPV6_UNICAST)
        .encode(&mut buf)
        .unwrap();
    msgs.push(buf[..n].to_vec());
    msgs.push(KEEPALIVE.to_vec());
    let n =
        Notification::encode_shutdown(CeaseSubcode::AdministrativeReset, "bye", &mut buf).unwrap();
    msgs.push(buf[..n].to_vec());
    (msgs.concat(), msgs)
}

fn drain(f: &mut Framer<[u8; 4096]>, out: &mut Vec<Vec<u8>>) {
    while let Some(m) = f.next_message() {
        out.push(m.expect("valid stream").to_vec());
    }
}

#[test]
fn every_single_split() {
    let (bytes, msgs) = stream();
    for i in 0..=bytes.len() {
        let mut f = Framer::new([0u8; 4096]);
        let mut out = Vec::new();
        assert_eq!(f.feed(&bytes[..i]), i);
        drain(&mut f, &mut out);
        assert_eq!(f.feed(&bytes[i..]), bytes.len() - i);
        drain(&mut f, &mut out);
        assert_eq!(out, msgs, "split at {i}");
        assert_eq!(f.buffered(), 0);
    }
}

#[test]
fn every_pair_of_splits() {
    let (bytes, msgs) = stream();
    for i in 0..=bytes.len() {
        for j in i..=bytes.len() {
            let mut f = Framer::new([0u8; 4096]);
            let mut out = Vec::new();
            for part in [&bytes[..i], &bytes[i..j], &bytes[j..]] {
                assert_eq!(f.feed(part), part.len());
                drain(&mut f, &mut out);
            }
            assert_eq!(out, msgs, "splits at {i}, {j}");
        }
    }
}

#[test]
fn read_buf_and_commit_in_every_chunk_size() {
    let (bytes, msgs) = stream();
    for chunk in 1..=bytes.len() {
        let mut f = Framer::new([0u8; 4096]);
        let mut out = Vec::new();
        for part in bytes.chunks(chunk) {
            let dst = f.read_buf();
            dst[..part.len()].copy_from_slice(part);
            f.commit(part.len());
            drain(&mut f, &mut out);
        }
        assert_eq!(out, msgs, "chunk {chunk}");
    }
}

#[test]
fn full_size_messages_fill_the_buffer_exactly() {
    // Two 4096-byte UPDATEs through a 4096-byte buffer, split at many points:
    // the framer never needs more than one maximum-size message of room.
    let nlri = vec![0u8; 4096 - 23];
    let u = UpdateSections {
        withdrawn: &[],
        attributes: &[],
        nlri: &nlri,
    };
    let mut one = vec![0u8; 4096];
    encode_update_sections(&u, &mut one, MAX_MESSAGE_LEN).unwrap();
    let bytes = [one.clone(), one.clone()].concat();
    for i in (0..=bytes.len()).step_by(61) {
        let mut f = Framer::new([0u8; 4096]);
        let mut got = 0;
        let mut rest: &[u8] = &bytes;
        let mut first = true;
        while !rest.is_empty() {
            let take = if first { i.min(rest.len()) } else { rest.len() };
            first = false;
            let n = f.feed(&rest[..take]);
            rest = &rest[n..];
            while let Some(m) = f.next_message() {
                assert_eq!(m.unwrap(), &one[..]);
                got += 1;
            }
        }
        assert_eq!(got, 2, "split at {i}");
    }
}

#[test]
fn header_error_mid_stream_after_good_messages() {
    let (mut bytes, msgs) = stream();
    let at = bytes.len();
    bytes.extend_from_slice(&KEEPALIVE);
    bytes[at + 18] = 9;
    let mut f = Framer::new([0u8; 4096]);
    let mut out = Vec::new();
    let mut err = None;
    for b in &bytes {
        f.feed(core::slice::from_ref(b));
        while let Some(m) = f.next_message() {
            match m {
                Ok(m) => out.push(m.to_vec()),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        if err.is_some() {
            break;
        }
    }
    assert_eq!(out, msgs);
    assert_eq!(err, Some(HeaderError::BadMessageType(9)));
}
