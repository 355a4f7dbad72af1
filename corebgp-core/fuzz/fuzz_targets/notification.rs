//! NOTIFICATION body decoding and shutdown communications: never panics.
#![no_main]

use corebgp_core::wire::Notification;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(n) = Notification::parse(data) {
        let _ = n.shutdown_communication();
        let mut buf = [0u8; 4096];
        let _ = n.encode(&mut buf);
    }
});
