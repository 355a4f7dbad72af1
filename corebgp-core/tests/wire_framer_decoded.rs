//! `Framer::next_decoded` checks each header once; it must answer exactly as
//! `next_message` followed by `Message::parse` with the framer's limit, for
//! any bytes in any chunks, errors (and their NOTIFICATIONs) included.

use proptest::prelude::*;

use corebgp_core::wire::*;

/// What one call reports, owned so that both paths can be compared.
#[derive(Debug, PartialEq)]
enum Step {
    Need,
    Msg(String),
    Err(String, (u8, u8, Vec<u8>)),
}

fn note(n: Notification<'_>) -> (u8, u8, Vec<u8>) {
    (n.code.code(), n.code.subcode(), n.data.as_bytes().to_vec())
}

fn old_step(f: &mut Framer<Vec<u8>>) -> Step {
    let max = f.max_message_len();
    match f.next_message() {
        None => Step::Need,
        Some(Err(e)) => Step::Err(
            format!("{:?}", MessageError::Header(e)),
            note(e.notification()),
        ),
        Some(Ok(raw)) => match Message::parse(raw, max) {
            Ok(m) => Step::Msg(format!("{m:?}")),
            Err(e) => Step::Err(format!("{e:?}"), note(e.notification())),
        },
    }
}

fn new_step(f: &mut Framer<Vec<u8>>) -> Step {
    match f.next_decoded() {
        None => Step::Need,
        Some(Ok(m)) => Step::Msg(format!("{m:?}")),
        Some(Err(e)) => Step::Err(format!("{e:?}"), note(e.notification())),
    }
}

/// Feeds `bytes` in `chunks` to two framers and compares every step.
fn same(bytes: &[u8], chunks: &[usize], buf_len: usize, max: usize) {
    let mut a = Framer::new(vec![0u8; buf_len]);
    let mut b = Framer::new(vec![0u8; buf_len]);
    a.set_max_message_len(max);
    b.set_max_message_len(max);
    let mut rest = bytes;
    let mut sizes = chunks.iter().copied().cycle();
    let mut last = Step::Need;
    loop {
        let (x, y) = (old_step(&mut a), new_step(&mut b));
        assert_eq!(x, y);
        // A header error is sticky: seen twice, it is all there is.
        if matches!(x, Step::Err(..)) && x == last {
            break;
        }
        if x == Step::Need {
            if rest.is_empty() {
                break;
            }
            let n = sizes.next().unwrap_or(1).max(1).min(rest.len());
            let taken = a.feed(&rest[..n]);
            assert_eq!(b.feed(&rest[..n]), taken);
            if taken == 0 {
                break;
            }
            rest = &rest[taken..];
        }
        assert_eq!(a.buffered(), b.buffered());
        last = x;
    }
}

/// A message of type `ty` with `body`, optionally with a wrong length field.
fn message(ty: u8, body: &[u8], len_delta: i32) -> Vec<u8> {
    let len = (HEADER_LEN + body.len()) as i32 + len_delta;
    let mut m = MARKER.to_vec();
    m.extend_from_slice(&(len.clamp(0, 65535) as u16).to_be_bytes());
    m.push(ty);
    m.extend_from_slice(body);
    m
}

fn any_message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Well-formed headers (bodies of any content).
        8 => (1u8..=5, prop::collection::vec(any::<u8>(), 0..80))
            .prop_map(|(ty, body)| message(ty, &body, 0)),
        // Plausible OPEN and NOTIFICATION bodies.
        2 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|mut b| {
            b.splice(0..0, [4, 0xfd, 0xe9, 0, 90, 192, 0, 2, 1]);
            message(1, &b, 0)
        }),
        // Bad type, bad length, bad marker.
        1 => (any::<u8>(), prop::collection::vec(any::<u8>(), 0..8), -3i32..3)
            .prop_map(|(ty, body, d)| message(ty, &body, d)),
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ]
}

proptest! {
    #[test]
    fn next_decoded_matches_next_message_then_parse(
        msgs in prop::collection::vec(any_message(), 1..8),
        chunks in prop::collection::vec(1usize..64, 1..8),
        buf_len in prop_oneof![Just(4096usize), 19usize..200],
        max in prop_oneof![Just(MAX_MESSAGE_LEN), Just(MAX_EXTENDED_MESSAGE_LEN), 19usize..100],
    ) {
        same(&msgs.concat(), &chunks, buf_len, max);
    }
}

#[test]
fn keepalive_stream_and_sticky_error() {
    let mut bytes = KEEPALIVE.repeat(3);
    bytes.extend_from_slice(&message(9, &[], 0));
    bytes.extend_from_slice(&KEEPALIVE);
    same(&bytes, &[1], 4096, MAX_MESSAGE_LEN);
    let mut f = Framer::new([0u8; 64]);
    f.feed(&KEEPALIVE);
    assert_eq!(f.next_decoded(), Some(Ok(Message::Keepalive)));
    assert_eq!(f.next_decoded(), None);
    f.feed(&message(9, &[], 0));
    let e = Err(MessageError::Header(HeaderError::BadMessageType(9)));
    assert_eq!(f.next_decoded(), Some(e));
    f.feed(&KEEPALIVE);
    assert_eq!(f.next_decoded(), Some(e));
}
