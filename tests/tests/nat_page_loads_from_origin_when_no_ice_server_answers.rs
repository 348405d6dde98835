//! NAT case 5 (issue 13): two visitors behind two port-restricted NATs,
//! their page configured with a STUN and a TURN server that never answer
//! (an address whose packets are silently dropped). No peer path can
//! exist, so the second visitor's page must still load from the origin
//! within the fallback budget, every image byte-exact — and the test checks
//! the premise: no server-reflexive or relay candidate was gathered, and no
//! connection was made.

use std::time::Duration;

use peerhost_core::scheduler::SchedulerConfig;
use peerhost_testenv::topology::TopologyOptions;
use peerhost_tests::nat::{self, NatWorld};

#[test]
fn nat_page_loads_from_origin_when_no_ice_server_answers() {
    let Some(world) = NatWorld::start(
        "nat_page_loads_from_origin_when_no_ice_server_answers",
        TopologyOptions::default(),
        |_| peerhost_site::demo::DemoOptions::default(),
    ) else {
        return;
    };
    let hole = world.topology.black_hole_ip();
    let servers = format!(
        r#"[{{"urls":"stun:{hole}:3478"}},{{"urls":"turn:{hole}:3478","username":"nobody","credential":"nothing"}}]"#
    );
    let (about, plates) = nat::tagged_pages(
        &world.server,
        "deaf-ice",
        &format!("data-ice-servers='{servers}'"),
    );
    let base = world.base();

    // Visitor a, home 0: alone, from the origin; then holds the assets.
    let mut home_a = world.browser_in(0);
    nat::open_recorded(&mut home_a, "a", &base);
    nat::seed_pages(&mut home_a, &base, "a", &about, &plates);
    let after_a = world.server.image_bytes_served();

    // Visitor b, home 1: the tracker introduces a, but no path can work.
    let mut home_b = world.browser_in(1);
    nat::open_recorded(&mut home_b, "b", &base);
    home_b.goto("b", &format!("{base}{about}"));
    home_b
        .wait(
            "b",
            "window.peerhost && peerhost.stats().version > 0 && navigator.serviceWorker.controller !== null",
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("peerhost did not start for b: {e}"));
    let load_ms = home_b.goto("b", &format!("{base}{plates}"));
    let images = home_b.images("b");
    let stats = home_b.eval("b", "peerhost.stats()");
    let seen = nat::recorded(&mut home_b, "b");
    let b_origin = world.server.image_bytes_served() - after_a;

    let config = SchedulerConfig::default();
    // The client waits for a peer at most `connecting_grace` while a
    // connection is on its way, then a busy piece at most `piece_deadline`;
    // five more seconds for a loaded two-core machine.
    let budget = config.connecting_grace + config.piece_deadline + Duration::from_secs(5);
    eprintln!(
        "FIGURES nat case 5 (no ICE server answers): plates page load {load_ms} ms (budget {} ms); \
         origin image bytes to b {b_origin}; b stats {stats}; b recorder {seen}",
        budget.as_millis()
    );

    assert_eq!(images.len(), 5, "the plates page shows five images");
    let total = peerhost_tests::check::images_match_files(&world.server.site_dir(), &images);
    assert!(
        b_origin >= total,
        "b's images came from the origin ({b_origin} of {total} bytes)"
    );
    assert!(
        u128::from(load_ms) <= budget.as_millis(),
        "b's plates page took {load_ms} ms, over the fallback budget of {} ms",
        budget.as_millis()
    );
    // The premise: nothing answered, nothing connected.
    let gathered = seen["localCandidates"].to_string();
    assert!(
        !gathered.contains("typ srflx") && !gathered.contains("typ relay"),
        "no STUN or TURN server answered, yet b gathered {gathered}"
    );
    assert_eq!(
        seen["pairs"].as_array().map(Vec::len),
        Some(0),
        "no connection could be made across two NATs without STUN or TURN"
    );
    assert_eq!(stats["bytesFromPeers"].as_u64(), Some(0));
}
