//! NAT case 3 (issue 13): with `data-relay-only` on the tag, no candidate
//! other than relay ever leaves a visitor: every `a=candidate` line the
//! tracker received or relayed — recorded by a WebSocket proxy between the
//! browsers and the tracker — is `typ relay`, and so is everything each
//! page gathered. Sharing still works, through coturn: the second visitor
//! gets at least 90% of the image bytes from the first, byte-exact.

use peerhost_testenv::topology::TopologyOptions;
use peerhost_tests::nat::{self, NatWorld};
use peerhost_tests::ws_recorder::{RecordingProxy, candidate_lines};

#[test]
fn nat_relay_only_visitors_reveal_only_relay_candidates() {
    let Some(world) = NatWorld::start(
        "nat_relay_only_visitors_reveal_only_relay_candidates",
        TopologyOptions::default(),
        |t| nat::demo_with_ice(t, nat::Ice::StunAndTurn),
    ) else {
        return;
    };
    let _coturn = nat::start_coturn(&world.topology);
    let tracker = format!(
        "{}/tracker/announce",
        world.base().replacen("http://", "ws://", 1)
    );
    let proxy = RecordingProxy::start(world.topology.public_ip(), &tracker);
    let (about, plates) = nat::tagged_pages(&world.server, "relay-only", "data-relay-only");
    nat::retarget_tracker(&world.server, &[&about, &plates], &proxy.url());

    let shared = nat::share_between_homes(&world, &about, &plates);
    let frames = proxy.frames();
    let lines: Vec<String> = frames
        .iter()
        .flat_map(|f| candidate_lines(&f.text))
        .collect();
    let types = nat::candidate_types(&lines.join("\n"));
    eprintln!(
        "FIGURES nat case 3 (relay only): image bytes {}, from peers {}, origin served b {}; \
         selected pairs {:?}; {} tracker messages, candidate types through the tracker {types:?}; \
         first data-channel message at {:?} ms; b stats {}; {}",
        shared.image_bytes,
        shared.from_peers(),
        shared.origin_image_bytes,
        shared.pairs,
        frames.len(),
        shared.first_message_ms(),
        shared.stats,
        nat::udp_receive_buffer_errors()
    );

    assert_eq!(
        shared.stats["iceMode"].as_str(),
        Some("relay-only"),
        "the page runs relay-only"
    );
    assert!(
        !types.is_empty(),
        "offers and answers with candidates went through the tracker ({} messages)",
        frames.len()
    );
    assert!(
        types.iter().all(|t| t == "relay"),
        "only relay candidates went through the tracker: {lines:#?}"
    );
    let gathered = shared.recorded["localCandidates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for c in &gathered {
        let c = c.as_str().unwrap_or("");
        assert!(
            c.contains(" typ relay"),
            "b gathered a non-relay candidate: {c}"
        );
    }
    for (local, remote) in &shared.pairs {
        assert_eq!((local.as_str(), remote.as_str()), ("relay", "relay"));
    }
    shared.assert_mostly_from_peers();
}
