//! NAT case 4 (issue 13): a visitor behind a port-restricted NAT gets the
//! site's images from a native seeder (`peerhost seed`, webrtc-rs) on the
//! public side while the origin refuses every image. The seeder's host
//! candidate is public, so no STUN is needed: the visitor's checks reach it
//! through the NAT, and the answers tell the visitor its mapped address
//! (a peer-reflexive local candidate, as the selected pair shows).

use peerhost_testenv::topology::TopologyOptions;
use peerhost_tests::nat::{self, NatWorld};
use peerhost_tests::seeder::DemoSeeder;

#[test]
fn nat_visitor_gets_images_from_public_seeder() {
    let Some(world) = NatWorld::start(
        "nat_visitor_gets_images_from_public_seeder",
        TopologyOptions {
            homes: 1,
            ..Default::default()
        },
        |_| peerhost_site::demo::DemoOptions::default(),
    ) else {
        return;
    };
    let base = world.base();
    let public = world.topology.public_ip();
    // The seeder is public: its host candidate is all a visitor needs.
    let seeder = DemoSeeder::start(
        &world.server.site_dir(),
        &format!("{}/tracker/announce", base.replacen("http://", "ws://", 1)),
        &format!("{public}:0"),
    );

    world.server.set_assets_down(true);
    let mut home = world.browser_in(0);
    nat::open_recorded(&mut home, "v", &base);
    home.visit_via_worker("v", &base, "/about.html", "/plates.html");
    let images = home.images("v");
    let stats = home.eval("v", "peerhost.stats()");
    let pairs = nat::selected_pairs(&mut home, "v");
    let recorded = nat::recorded(&mut home, "v");
    let seeded = seeder.status();
    eprintln!(
        "FIGURES nat case 4 (visitor behind NAT, seeder public): from peers {} bytes; \
         selected pairs {pairs:?}; first data-channel message at {} ms; seeder uploaded {} bytes",
        stats["bytesFromPeers"], recorded["firstMessageMs"], seeded.bytes_uploaded
    );

    assert_eq!(images.len(), 5, "the plates page shows five images");
    let total = peerhost_tests::check::images_match_files(&world.server.site_dir(), &images);
    assert_eq!(
        world.server.image_bytes_served(),
        0,
        "the origin served no image bytes"
    );
    assert!(
        seeded.bytes_uploaded >= total,
        "the seeder uploaded {} bytes, less than the {total} image bytes",
        seeded.bytes_uploaded
    );
    assert!(stats["bytesFromPeers"].as_u64().unwrap_or(0) >= total);
    assert!(!pairs.is_empty());
    for (local, remote) in &pairs {
        assert_eq!(
            remote, "host",
            "the visitor reached the seeder's public host candidate: {pairs:?}"
        );
        assert!(
            local == "host" || nat::reflexive(local),
            "the visitor's side is its own address or its mapping, no relay: {pairs:?}"
        );
    }

    drop(home);
    seeder.shutdown();
}
