//! Visits several end-to-end tests make.

use std::time::Duration;

use crate::browser::Browser;
use crate::server::TestServer;

/// `visitor` views `page` through the Service Worker (landing on
/// `/about.html` first) and waits until it holds every asset of the demo's
/// plates page (five images and the stylesheet) and the tracker knows it:
/// ready to seed them to whoever comes next.
pub fn seed_plates(browser: &mut Browser, server: &TestServer, visitor: &str, page: &str) {
    browser.visit_via_worker(visitor, &server.url(""), "/about.html", page);
    browser
        .wait(
            visitor,
            "peerhost.stats().assetsHeld >= 6",
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{visitor} does not hold the plates page's assets: {e}"));
    browser
        .wait(
            visitor,
            "peerhost.stats().announced",
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{visitor} never announced itself to the tracker: {e}"));
}

/// Writes a copy of the demo page `from` as `to`, with `attrs` added to the
/// peerhost script tag (e.g. `data-hidden-stop="1"`). Pages are not listed
/// in the manifest, so no republish is needed.
pub fn tagged_copy(server: &TestServer, from: &str, to: &str, attrs: &str) {
    let html = std::fs::read_to_string(server.site_dir().join(from)).expect("demo page");
    assert!(html.contains("data-manifest="), "{from} has the tag");
    std::fs::write(
        server.site_dir().join(to),
        html.replace("data-manifest=", &format!("{attrs} data-manifest=")),
    )
    .expect("write page copy");
}
