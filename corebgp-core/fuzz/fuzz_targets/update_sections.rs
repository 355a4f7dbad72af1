//! UPDATE section split: never panics; sections add up to the body.
#![no_main]

use corebgp_core::wire::UpdateSections;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = UpdateSections::parse(data) {
        assert_eq!(
            4 + s.withdrawn.len() + s.attributes.len() + s.nlri.len(),
            data.len()
        );
    }
});
