//! Whole-message decoding: never panics; every error's NOTIFICATION encodes;
//! every decoded message re-encodes to the same bytes.
#![no_main]

use corebgp_core::wire::{MAX_EXTENDED_MESSAGE_LEN, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = vec![0u8; 65535];
    match Message::parse(data, MAX_EXTENDED_MESSAGE_LEN) {
        Ok(m) => {
            let n = m
                .encode(&mut buf, MAX_EXTENDED_MESSAGE_LEN)
                .expect("decoded messages re-encode");
            assert_eq!(&buf[..n], data);
        }
        Err(e) => {
            e.notification()
                .encode(&mut buf)
                .expect("NOTIFICATIONs always encode");
        }
    }
});
