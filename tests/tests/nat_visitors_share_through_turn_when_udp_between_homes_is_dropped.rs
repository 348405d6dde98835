//! NAT case 2 (issue 13): UDP between the two homes' routers is dropped on
//! the public side, so no direct path exists even with STUN. The visitors
//! still share, through coturn on the public address (the tracker mints
//! its TURN REST credentials): the selected pair is relay, the drop rule
//! counted the direct attempts, every image is byte-exact, and the second
//! visitor got at least 90% of the image bytes from the first through the
//! relay. That holds because the public side has a default route, as a
//! real server does: without one, b's ICE checks from its relay candidate
//! to a's private host address failed in coturn's relay socket
//! (ENETUNREACH), coturn closed b's allocation, and the transfer stalled
//! after about half a megabyte (see docs/real-networks.md). The same with two
//! symmetric NATs (`masquerade random`), where STUN's answer is useless to
//! a peer.

use peerhost_testenv::topology::{NatKind, TopologyOptions};
use peerhost_tests::nat::{self, NatWorld};

fn shares_through_turn(test: &str, options: TopologyOptions) {
    let Some(world) = NatWorld::start(test, options, |t| {
        nat::demo_with_ice(t, nat::Ice::StunAndTurn)
    }) else {
        return;
    };
    let _coturn = nat::start_coturn(&world.topology);
    let shared = nat::share_between_homes(&world, "/about.html", "/plates.html");
    let dropped = world
        .topology
        .dropped_udp_between_homes()
        .expect("nft counter");
    eprintln!(
        "FIGURES nat case 2 ({test}): image bytes {}, from peers {}, origin served b {}; \
         selected pairs {:?}; first data-channel message at {:?} ms; direct UDP dropped {dropped}",
        shared.image_bytes,
        shared.from_peers(),
        shared.origin_image_bytes,
        shared.pairs,
        shared.first_message_ms()
    );
    eprintln!(
        "FIGURES nat case 2 ({test}): b stats {}; {}",
        shared.stats,
        nat::udp_receive_buffer_errors()
    );
    shared.assert_mostly_from_peers();
    assert!(!shared.pairs.is_empty());
    for (local, remote) in &shared.pairs {
        assert!(
            local == "relay" || remote == "relay",
            "only a relay can join these homes: {:?}",
            shared.pairs
        );
    }
    if options.drop_udp_between_homes {
        assert!(
            dropped > 0,
            "the visitors tried direct paths first (the drop rule counted none)"
        );
    }
}

#[test]
fn nat_visitors_share_through_turn_when_udp_between_homes_is_dropped() {
    shares_through_turn(
        "nat_visitors_share_through_turn_when_udp_between_homes_is_dropped",
        TopologyOptions {
            homes: 2,
            nat: NatKind::PortRestricted,
            drop_udp_between_homes: true,
        },
    );
}

#[test]
fn nat_visitors_behind_symmetric_nats_share_through_turn() {
    shares_through_turn(
        "nat_visitors_behind_symmetric_nats_share_through_turn",
        TopologyOptions {
            homes: 2,
            nat: NatKind::Symmetric,
            drop_udp_between_homes: false,
        },
    );
}
