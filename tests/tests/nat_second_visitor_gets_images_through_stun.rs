//! NAT case 1 (issue 13): two visitors behind two different port-restricted
//! NATs, the tracker's STUN responder on the public address handed to
//! them in its announce answers. The second visitor gets at least 90% of
//! the demo's image bytes from the first (the origin's counters say so),
//! every image byte-exact, and its connection's selected candidate pair is
//! reflexive on at least one side — no relay, not host to host: STUN (and
//! the NATs' mappings) did the work.

use peerhost_testenv::topology::{NatKind, TopologyOptions};
use peerhost_tests::nat::{self, NatWorld};

#[test]
fn nat_second_visitor_gets_images_through_stun() {
    let Some(world) = NatWorld::start(
        "nat_second_visitor_gets_images_through_stun",
        TopologyOptions {
            homes: 2,
            nat: NatKind::PortRestricted,
            drop_udp_between_homes: false,
        },
        |t| nat::demo_with_ice(t, nat::Ice::Stun),
    ) else {
        return;
    };
    let shared = nat::share_between_homes(&world, "/about.html", "/plates.html");
    eprintln!(
        "FIGURES nat case 1 (STUN, two port-restricted NATs): image bytes {}, from peers {}, \
         origin served b {}; selected pairs {:?}; first data-channel message at {:?} ms",
        shared.image_bytes,
        shared.from_peers(),
        shared.origin_image_bytes,
        shared.pairs,
        shared.first_message_ms()
    );
    shared.assert_mostly_from_peers();
    assert!(!shared.pairs.is_empty());
    for (local, remote) in &shared.pairs {
        assert!(
            local != "relay" && remote != "relay",
            "no relay without TURN: {:?}",
            shared.pairs
        );
        assert!(
            nat::reflexive(local) || nat::reflexive(remote),
            "between two NATs a pair is reflexive on one side at least: {:?}",
            shared.pairs
        );
    }
}
