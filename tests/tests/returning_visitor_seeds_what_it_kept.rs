//! A returning visitor keeps the verified assets of its last visit and
//! seeds them from its own storage: on a visit to a page without images it
//! holds every image again, without a byte of them from the origin, and a
//! new visitor gets the images from it.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::server::TestServer;

#[test]
fn returning_visitor_seeds_what_it_kept() {
    if !browser_tests_enabled("returning_visitor_seeds_what_it_kept") {
        return;
    }
    let server = TestServer::demo();
    let base = server.url("");
    let mut browser = Browser::launch();

    browser.open("a");
    browser.visit_via_worker("a", &base, "/about.html", "/plates.html");
    browser.images("a");
    browser
        .wait(
            "a",
            "peerhost.stats().assetsHeld >= 6",
            Duration::from_secs(20),
        )
        .expect("a holds the plates page's assets");
    browser.close("a");

    // Back another day: same profile, a page without images.
    let before = server.image_bytes_served();
    browser.reopen("a");
    browser.goto("a", &server.url("/about.html"));
    browser
        .wait(
            "a",
            "window.peerhost && peerhost.stats().assetsHeld >= 6",
            Duration::from_secs(20),
        )
        .expect("the returning visitor restored its assets from storage");
    // Restoring can finish before the tracker has heard from a: a visitor
    // arriving in between finds nobody (and rightly goes to the origin).
    browser
        .wait("a", "peerhost.stats().announced", Duration::from_secs(20))
        .expect("a announced itself to the tracker");
    assert_eq!(
        server.image_bytes_served(),
        before,
        "no image byte came from the origin"
    );

    // A new visitor gets the images from the returning one.
    browser.open("b");
    browser.visit_via_worker("b", &base, "/about.html", "/plates.html");
    let images = browser.images("b");
    assert_eq!(images.len(), 5);
    let stats = browser.eval("b", "peerhost.stats()");
    eprintln!("b: {stats}");
    assert_eq!(
        server.image_bytes_served(),
        before,
        "b's images came from a, not the origin"
    );
    assert!(
        stats["bytesFromPeers"].as_u64().unwrap_or(0) > 2_000_000,
        "{stats}"
    );
}
