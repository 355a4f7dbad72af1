//! The framer fed arbitrary bytes in arbitrary chunks: never panics, and
//! every message it yields has the length its header claims.
#![no_main]

use corebgp_core::wire::{Framer, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte: chunk size and the extended-message switch.
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(ctl & 0x3f) + 1;
    let max = if ctl & 0x40 != 0 { 65535 } else { 4096 };
    let mut f = Framer::new(vec![0u8; 65535].into_boxed_slice());
    f.set_max_message_len(max);
    for part in rest.chunks(chunk) {
        let mut part = part;
        while !part.is_empty() {
            let n = f.feed(part);
            part = &part[n..];
            while let Some(m) = f.next_message() {
                match m {
                    Ok(m) => {
                        assert_eq!(usize::from(u16::from_be_bytes([m[16], m[17]])), m.len());
                        let _ = Message::parse(m, max);
                    }
                    Err(e) => {
                        let _ = e.notification();
                        return;
                    }
                }
            }
            if n == 0 {
                return;
            }
        }
    }
});
