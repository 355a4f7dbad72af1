//! OPEN body decoding and every capability accessor: never panics.
#![no_main]

use corebgp_core::wire::{Capability, Open};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(o) = Open::parse(data) {
        let _ = o.four_octet_as();
        let _ = o.parameters().count();
        for c in o.capabilities() {
            match c {
                Ok(Capability::AddPath(l)) => assert_eq!(l.iter().count(), l.len()),
                Ok(Capability::ExtendedNextHop(l)) => assert_eq!(l.iter().count(), l.len()),
                Ok(Capability::LongLivedGracefulRestart(l)) => {
                    assert_eq!(l.iter().count(), l.len())
                }
                Ok(Capability::GracefulRestart(g)) => {
                    assert_eq!(g.families.iter().count(), g.families.len())
                }
                Ok(_) => {}
                Err(e) => drop(e.notification()),
            }
        }
    }
});
