//! A cooperating host's native seeder (webrtc-rs) serves a real Chromium
//! visitor while the origin refuses every asset: the origin answers only
//! the pages and the loader (client files, Service Worker, signed
//! manifest) and 503 for everything else. Every image renders, its bytes
//! are the file's, the origin served none of them, and the seeder's own
//! counter shows it uploaded them. This is also the Chromium ↔ webrtc-rs
//! interop test.

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::seeder::DemoSeeder;
use peerhost_tests::server::TestServer;
use sha2::{Digest as _, Sha256};

#[test]
fn browser_gets_assets_from_native_seeder_while_origin_refuses() {
    if !browser_tests_enabled("browser_gets_assets_from_native_seeder_while_origin_refuses") {
        return;
    }
    let server = TestServer::demo();
    let base = server.url("");
    let tracker = format!("{}/tracker/announce", base.replacen("http://", "ws://", 1));

    // The seeder: `peerhost seed --site DIR` on the published demo site.
    let seeder = DemoSeeder::start(&server.site_dir(), &tracker, "127.0.0.1:0");

    server.set_assets_down(true);
    let mut browser = Browser::launch();
    browser.open("v");
    browser.visit_via_worker("v", &base, "/about.html", "/plates.html");
    let images = browser.images("v");
    let stats = browser.eval("v", "peerhost.stats()");
    let seeded = seeder.status();
    let counters = server.counters();
    eprintln!(
        "visitor stats {stats}; seeder uploaded {} bytes to {} peers; origin: {:?}",
        seeded.bytes_uploaded,
        seeded.peers,
        counters.snapshot()
    );

    assert_eq!(images.len(), 5, "the plates page shows five images");
    let mut total = 0u64;
    for img in &images {
        let path = img["path"].as_str().expect("path");
        let file =
            std::fs::read(server.site_dir().join(path.trim_start_matches('/'))).expect("file");
        total += file.len() as u64;
        assert!(
            img["naturalWidth"].as_u64().unwrap_or(0) > 0,
            "{path} rendered: {img}\n{:#?}",
            browser.logs("v")
        );
        let want: String = Sha256::digest(&file)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            img["sha256"].as_str(),
            Some(want.as_str()),
            "{path} bytes match the file"
        );
    }
    assert_eq!(
        server.image_bytes_served(),
        0,
        "the origin served no image bytes"
    );
    assert!(
        seeded.bytes_uploaded >= total,
        "the seeder uploaded {} bytes, less than the {total} image bytes the visitor shows",
        seeded.bytes_uploaded
    );
    let from_peers = stats["bytesFromPeers"].as_u64().unwrap_or(0);
    assert!(
        from_peers >= total,
        "the visitor got {from_peers} bytes from peers, less than {total}"
    );
    assert_eq!(
        stats["bytesFromOrigin"].as_u64(),
        Some(0),
        "the visitor got nothing from the origin"
    );

    drop(browser);
    seeder.shutdown();
}
