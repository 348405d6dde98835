//! Firefox to Firefox: a Firefox visitor gets the demo images from
//! another Firefox visitor over WebRTC, byte for byte, and the origin's own
//! counters show 0 image bytes for the second visitor.

use peerhost_tests::browser::{Browser, Engine, browser_tests_enabled};
use peerhost_tests::mixed::second_visit_across_engines;
use peerhost_tests::server::TestServer;

#[test]
fn firefox_visitor_gets_images_from_firefox() {
    if !browser_tests_enabled("firefox_visitor_gets_images_from_firefox") {
        return;
    }
    let server = TestServer::demo();
    let mut browser = Browser::launch();
    let got = second_visit_across_engines(
        &server,
        &mut browser,
        ("first", Engine::Firefox),
        ("second", Engine::Firefox),
    );
    got.assert_all_images_from_peers("Firefox");
}
