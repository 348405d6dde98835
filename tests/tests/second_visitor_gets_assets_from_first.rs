//! The point of peerhost: a second visitor gets the images from the first
//! over WebRTC, and the origin's own counters prove it.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::server::TestServer;

#[test]
fn second_visitor_gets_images_from_the_first_over_webrtc() {
    if !browser_tests_enabled("second_visitor_gets_images_from_the_first_over_webrtc") {
        return;
    }
    let server = TestServer::demo();
    let base = server.url("");
    let mut browser = Browser::launch();

    // Visitor A is alone: everything comes from the origin.
    browser.open("a");
    browser.visit_via_worker("a", &base, "/about.html", "/plates.html");
    let a_images = browser.images("a");
    assert_eq!(a_images.len(), 5, "the plates page shows five images");
    // Alone, a's worker sends listed assets straight to the origin; the page
    // then seeds them from the HTTP cache (verified piece by piece).
    browser
        .wait(
            "a",
            "peerhost.stats().assetsHeld >= 6",
            Duration::from_secs(20),
        )
        .expect("visitor a holds the five images and the stylesheet");
    let after_a = server.image_bytes_served();

    // Visitor B: another browser process and profile.
    browser.open("b");
    browser.visit_via_worker("b", &base, "/about.html", "/plates.html");
    let images = browser.images("b");
    let b_stats = browser.eval("b", "peerhost.stats()");
    let b_origin_images = server.image_bytes_served() - after_a;

    let total = peerhost_tests::check::images_match_files(&server.site_dir(), &images);
    let from_peers = b_stats["bytesFromPeers"].as_u64().unwrap_or(0);
    eprintln!(
        "image bytes: {total}; visitor b from peers {from_peers}, from origin (origin's counter) {b_origin_images}; stats {b_stats}"
    );
    assert!(
        b_origin_images * 10 <= total,
        "origin served {b_origin_images} of {total} image bytes to the second visitor (more than 10%)"
    );
    assert!(
        from_peers * 10 >= total * 9,
        "second visitor got {from_peers} of {total} bytes from peers"
    );
}
