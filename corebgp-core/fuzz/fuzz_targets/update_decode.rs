//! UPDATE decoding on arbitrary bytes: never panics; a session reset always
//! carries an encodable 3/x NOTIFICATION; an accepted UPDATE iterates
//! exactly as many prefixes as it counted.
#![no_main]

use corebgp_core::update::{Families, PeerType, Update, UpdateConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte: the negotiated session parameters.
    let Some((&ctl, body)) = data.split_first() else {
        return;
    };
    let fam = Families::ALL;
    let cfg = UpdateConfig {
        four_octet_as: ctl & 1 != 0,
        add_path_rx: if ctl & 2 != 0 { fam } else { Families::NONE },
        extended_next_hop: if ctl & 4 != 0 { fam } else { Families::NONE },
        peer: match (ctl >> 3) & 3 {
            0 => PeerType::Unspecified,
            1 => PeerType::Internal,
            2 => PeerType::External,
            _ => PeerType::ConfederationExternal,
        },
        ..UpdateConfig::default()
    };
    match Update::parse(body, &cfg) {
        Err(e) => {
            assert!(e.is_session_reset());
            assert_eq!(e.notification.code.code(), 3);
            let mut buf = [0u8; 4096];
            e.notification.encode(&mut buf).expect("notification encodes");
        }
        Ok(u) => {
            assert_eq!(u.announced().count(), u.announced_count());
            assert_eq!(u.withdrawals().count(), u.withdrawn_count());
            if let Some(p) = u.as_path() {
                let _ = (p.asns().count(), p.path_len(), p.origin_as(), p.first_as());
            }
            for c in u.communities().into_iter().flatten() {
                let _ = c.asn();
            }
            let _ = u.large_communities().map(|c| c.iter().count());
            let _ = u.ext_communities().map(|c| c.iter().count());
            let _ = u.ipv6_ext_communities().map(|c| c.iter().map(|c| c.global_admin()).count());
            let _ = u.cluster_list().map(|c| c.iter().count());
            let _ = (u.aggregator(), u.aigp(), u.otc(), u.end_of_rib(), u.action());
            let _ = u.mp_reach().map(|m| m.next_hop());
            let _ = u.unknown_attributes().count();
            for e in u.afi_safi_disable().chain(u.treat_as_withdraw()).chain(u.attribute_discard()) {
                assert!(!e.is_session_reset());
            }
        }
    }
});
