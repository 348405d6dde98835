//! A tab hidden for longer than `data-hidden-stop` seconds stops uploading
//! (battery and data the visitor is not looking at), and resumes when shown.
//!
//! Headless Chromium never hides a tab, so the test sets what the page sees
//! (`document.hidden`, `visibilityState`) and fires `visibilitychange`, the
//! same event a real tab switch sends.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::check::images_match_files;
use peerhost_tests::server::TestServer;
use peerhost_tests::visit::{seed_plates, tagged_copy};

fn set_hidden(hidden: bool) -> String {
    format!(
        "(() => {{ const h = {hidden};
  Object.defineProperty(document, 'hidden', {{ configurable: true, get: () => h }});
  Object.defineProperty(document, 'visibilityState', {{ configurable: true, get: () => h ? 'hidden' : 'visible' }});
  document.dispatchEvent(new Event('visibilitychange')); return true; }})()"
    )
}

#[test]
fn hidden_tab_stops_uploading() {
    if !browser_tests_enabled("hidden_tab_stops_uploading") {
        return;
    }
    let server = TestServer::demo();
    tagged_copy(
        &server,
        "plates.html",
        "plates-hide1.html",
        r#"data-hidden-stop="1""#,
    );
    let mut browser = Browser::launch();

    browser.open("a");
    seed_plates(&mut browser, &server, "a", "/plates-hide1.html");
    browser.eval("a", &set_hidden(true));
    browser
        .wait(
            "a",
            "peerhost.stats().leechOnly === true",
            Duration::from_secs(5),
        )
        .expect("a hidden for 1 s stops uploading");

    // b finds only a hidden tab: everything from the origin.
    let before = server.image_bytes_served();
    browser.open("b");
    browser.visit_via_worker("b", &server.url(""), "/about.html", "/plates.html");
    let total = images_match_files(&server.site_dir(), &browser.images("b"));
    let a = browser.eval("a", "peerhost.stats()");
    let b = browser.eval("b", "peerhost.stats()");
    eprintln!("hidden a: {a}\nb: {b}");
    assert_eq!(a["bytesUploaded"], 0, "a hidden tab uploads nothing");
    assert_eq!(b["bytesFromPeers"], 0);
    // At least one copy (the browser may re-request a lazy image).
    assert!(server.image_bytes_served() - before >= total);

    // Shown again, a seeds: c gets images from peers (a, and b by now).
    browser.eval("a", &set_hidden(false));
    browser
        .wait(
            "a",
            "peerhost.stats().leechOnly === false",
            Duration::from_secs(5),
        )
        .expect("a shown again uploads again");
    browser.close("b");
    let before = server.image_bytes_served();
    browser.open("c");
    browser.visit_via_worker("c", &server.url(""), "/about.html", "/plates.html");
    let total = images_match_files(&server.site_dir(), &browser.images("c"));
    let c = browser.eval("c", "peerhost.stats()");
    let a = browser.eval("a", "peerhost.stats()");
    eprintln!("shown a: {a}\nc: {c}");
    assert!(
        a["bytesUploaded"].as_u64().unwrap_or(0) > 0,
        "a uploads once shown"
    );
    assert!(
        (server.image_bytes_served() - before) * 10 <= total,
        "c got at least 90% of its image bytes from peers"
    );
}
