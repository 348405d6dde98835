//! `peerhost.optOut()` stops peerhost at once and for good (persisted, also
//! across a browser restart): no peer connection, no upload, no Service
//! Worker; the site loads from the origin as if the tag were absent.
//! `peerhost.optIn()` undoes it.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::check::images_match_files;
use peerhost_tests::server::TestServer;
use peerhost_tests::visit::seed_plates;
use peerhost_tests::worker::wait_true;

const WORKERS: &str = "navigator.serviceWorker.getRegistrations().then(r => r.length)";

#[test]
fn opted_out_visitor_runs_nothing() {
    if !browser_tests_enabled("opted_out_visitor_runs_nothing") {
        return;
    }
    let server = TestServer::demo();
    let base = server.url("");
    let mut browser = Browser::launch();

    browser.open("a");
    seed_plates(&mut browser, &server, "a", "/plates.html");
    browser.eval("a", "peerhost.optOut()");
    wait_true(
        &mut browser,
        "a",
        &format!("{WORKERS}.then(n => n === 0)"),
        Duration::from_secs(10),
    )
    .expect("opting out unregisters the Service Worker");

    // After a browser restart the choice holds and the page still works.
    browser.close("a");
    browser.reopen("a");
    browser.goto("a", &format!("{base}/plates.html"));
    assert_eq!(
        browser.eval("a", "peerhost.ready"),
        false,
        "peerhost did not start"
    );
    assert_eq!(browser.eval("a", "peerhost.stats().running"), false);
    images_match_files(&server.site_dir(), &browser.images("a"));
    assert_eq!(browser.eval("a", WORKERS), 0, "no Service Worker came back");

    // Nobody gets anything from a.
    let before = server.image_bytes_served();
    browser.open("b");
    browser.visit_via_worker("b", &base, "/about.html", "/plates.html");
    let total = images_match_files(&server.site_dir(), &browser.images("b"));
    let b = browser.eval("b", "peerhost.stats()");
    eprintln!("b: {b}");
    assert_eq!(b["bytesFromPeers"], 0);
    // At least one copy (the browser may re-request a lazy image).
    assert!(server.image_bytes_served() - before >= total);

    // Opting in again: the next page view runs peerhost.
    browser.eval("a", "peerhost.optIn()");
    browser.goto("a", &format!("{base}/about.html"));
    assert_eq!(
        browser.eval("a", "peerhost.ready"),
        true,
        "peerhost runs again"
    );
}
