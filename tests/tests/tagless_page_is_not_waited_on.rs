//! A page without the tag never answers the worker's asks: the worker
//! waits for it once (at most `PAGE_ACK_MS`, 1 s), then sends its listed
//! assets straight to the network, without asking it again. Here the
//! visitor has a peer (so the worker asks pages rather than going direct)
//! and then views a copy of the plates page without the tag.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::check::images_match_files;
use peerhost_tests::server::TestServer;
use peerhost_tests::visit::seed_plates;

const TAG: &str = "<script src=\"/peerhost/peerhost.js\"";

/// Milliseconds one fetch of `path` takes in the page, and its status.
const TIMED_FETCH: &str = "async (path) => { const t0 = performance.now(); const r = await fetch(path, {cache: 'no-store'}); await r.arrayBuffer(); return {ms: performance.now() - t0, status: r.status}; }";

#[test]
fn tagless_page_is_not_waited_on() {
    if !browser_tests_enabled("tagless_page_is_not_waited_on") {
        return;
    }
    let server = TestServer::demo();
    let html = std::fs::read_to_string(server.site_dir().join("plates.html")).expect("plates");
    let start = html.find(TAG).expect("tag");
    let end = start + html[start..].find("</script>").expect("tag ends") + "</script>".len();
    std::fs::write(
        server.site_dir().join("plain-plates.html"),
        format!("{}{}", &html[..start], &html[end..]),
    )
    .expect("untagged copy");

    let mut browser = Browser::launch();
    browser.open("b");
    seed_plates(&mut browser, &server, "b", "/plates.html");
    browser.open("a");
    seed_plates(&mut browser, &server, "a", "/plates.html");
    browser
        .wait(
            "a",
            "peerhost.stats().peers >= 1 && !peerhost.stats().originOnly",
            Duration::from_secs(20),
        )
        .expect("a has a peer, so its worker asks pages rather than going direct");
    browser.goto("a", &server.url("/plain-plates.html"));
    images_match_files(&server.site_dir(), &browser.images("a"));
    assert_eq!(browser.eval("a", "typeof window.peerhost"), "undefined");
    // Every later listed request goes straight to the network.
    for path in ["/img/lichen.jpg", "/img/salt-wind.jpg", "/style.css"] {
        let timed = browser.eval("a", &format!("({TIMED_FETCH})('{path}')"));
        assert_eq!(timed["status"], 200, "{path}: {timed}");
        let ms = timed["ms"].as_f64().unwrap_or(f64::MAX);
        assert!(
            ms < 700.0,
            "{path} waited on the tag-less page: {ms:.0} ms (an ask waits 1000 ms)"
        );
    }
}
