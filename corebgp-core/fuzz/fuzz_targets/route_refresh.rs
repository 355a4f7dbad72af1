//! ROUTE-REFRESH decoding: never panics; errors carry the whole message.
#![no_main]

use corebgp_core::wire::RouteRefresh;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = RouteRefresh::parse(data) {
        assert_eq!(e.notification().data.as_bytes(), data);
    }
});
