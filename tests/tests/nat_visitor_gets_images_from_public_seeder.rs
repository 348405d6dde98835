//! NAT case 4 (issue 13): a visitor behind a port-restricted NAT gets the
//! site's images from a native seeder (`peerhost seed`, webrtc-rs) on the
//! public side while the origin refuses every image. The seeder's host
//! candidate is public, so no STUN is needed: the visitor's checks reach it
//! through the NAT, and the answers tell the visitor its mapped address
//! (a peer-reflexive local candidate, as the selected pair shows).

use std::time::{Duration, Instant};

use peerhost_seeder::{SeedArgs, Seeder, SiteStatus};
use peerhost_testenv::topology::TopologyOptions;
use peerhost_tests::nat::{self, NatWorld};

fn seeder_status(seeder: &Seeder) -> SiteStatus {
    seeder.status().into_iter().next().expect("one site")
}

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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let args = SeedArgs {
        sites: vec![world.server.site_dir()],
        manifest_urls: Vec::new(),
        site_keys: vec![peerhost_site::demo::demo_site_key()],
        cache: None,
        origin: None,
        tracker: format!("{}/tracker/announce", base.replacen("http://", "ws://", 1)),
        max_peers: 32,
        upload_rate: None,
        metrics: None,
        udp_addrs: vec![format!("{public}:0")],
        sctp_window: 64 * 1024,
        max_queued_bytes_per_peer: peerhost_seeder::MAX_QUEUED_BYTES_PER_PEER,
        max_queued_bytes: peerhost_seeder::MAX_QUEUED_BYTES,
        refresh_secs: 60,
        // The seeder is public: its host candidate is all a visitor needs.
        ice_servers: Vec::new(),
        ice_username: None,
        ice_credential: None,
        relay_only: false,
    };
    let seeder = rt.block_on(Seeder::start(&args)).expect("seeder starts");
    assert!(seeder_status(&seeder).complete, "the seeder holds the site");
    let joined = Instant::now();
    while !seeder_status(&seeder).tracker_connected {
        assert!(
            joined.elapsed() < Duration::from_secs(20),
            "the seeder did not reach the tracker"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    world.server.set_assets_down(true);
    let mut home = world.browser_in(0);
    nat::open_recorded(&mut home, "v", &base);
    home.visit_via_worker("v", &base, "/about.html", "/plates.html");
    let images = home.images("v");
    let stats = home.eval("v", "peerhost.stats()");
    let pairs = nat::selected_pairs(&mut home, "v");
    let recorded = nat::recorded(&mut home, "v");
    let seeded = seeder_status(&seeder);
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
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(15), seeder.shutdown())
            .await
            .expect("seeder shuts down");
    });
    rt.shutdown_timeout(Duration::from_secs(5));
}
