//! Two browser engines, one swarm: a Chromium visitor gets the demo images from a Firefox visitor over
//! WebRTC, byte for byte, and the origin's own counters show 0 image bytes
//! for the second visitor.

use peerhost_tests::browser::{Browser, Engine, browser_tests_enabled};
use peerhost_tests::mixed::second_visit_across_engines;
use peerhost_tests::server::TestServer;

#[test]
fn chromium_visitor_gets_images_from_firefox() {
    if !browser_tests_enabled("chromium_visitor_gets_images_from_firefox") {
        return;
    }
    let server = TestServer::demo();
    let mut browser = Browser::launch();
    let got = second_visit_across_engines(
        &server,
        &mut browser,
        ("firefox", Engine::Firefox),
        ("chromium", Engine::Chromium),
    );
    let from_peers = got.stats["bytesFromPeers"].as_u64().unwrap_or(0);
    assert_eq!(
        got.origin_image_bytes, 0,
        "the origin served {} of {} image bytes to the Chromium visitor",
        got.origin_image_bytes, got.image_bytes
    );
    assert!(
        from_peers >= got.image_bytes,
        "the Chromium visitor got {from_peers} bytes from peers, less than the {} image bytes",
        got.image_bytes
    );
    assert!(
        got.stats["peers"].as_u64().unwrap_or(0) >= 1,
        "{}",
        got.stats
    );
}
