//! A site that drops peerhost (its pages lose the tag, its manifest is
//! gone: 404) loses the worker too: a returning visitor's pages load
//! straight from the origin without waiting on a page that will never
//! answer, the worker deletes what it kept and unregisters itself, and
//! the next page view is not controlled at all.

use std::time::{Duration, Instant};

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::check::images_match_files;
use peerhost_tests::server::TestServer;
use peerhost_tests::worker::{registered_scripts, wait_true};

const TAG: &str = "<script src=\"/peerhost/peerhost.js\"";

/// Removes the peerhost tag from a page of the site.
fn drop_tag(server: &TestServer, page: &str) {
    let path = server.site_dir().join(page);
    let html = std::fs::read_to_string(&path).expect("page");
    let start = html.find(TAG).expect("the page has the tag");
    let end = start + html[start..].find("</script>").expect("tag closes") + "</script>".len();
    std::fs::write(&path, format!("{}{}", &html[..start], &html[end..])).expect("write page");
}

#[test]
fn worker_leaves_when_the_site_drops_peerhost() {
    if !browser_tests_enabled("worker_leaves_when_the_site_drops_peerhost") {
        return;
    }
    let server = TestServer::demo();
    let base = server.url("");
    let mut browser = Browser::launch();
    browser.open("a");
    browser.visit_via_worker("a", &base, "/about.html", "/plates.html");
    assert_eq!(browser.images("a").len(), 5);
    assert_eq!(registered_scripts(&mut browser, "a"), ["/peerhost-sw.js"]);

    // The site drops peerhost.
    for page in ["index.html", "about.html", "plates.html"] {
        drop_tag(&server, page);
    }
    std::fs::remove_file(server.site_dir().join("peerhost.json")).expect("remove manifest");
    let started = Instant::now();
    let load_ms = browser.goto("a", &server.url("/plates.html"));
    let images = browser.images("a");
    let took = started.elapsed();
    assert_eq!(images.len(), 5);
    images_match_files(&server.site_dir(), &images);
    assert_eq!(
        browser.eval("a", "typeof window.peerhost"),
        "undefined",
        "the page no longer runs peerhost"
    );
    // No ask to a page without a loader holds anything up for long: the
    // whole page with its images, through the worker still in place.
    assert!(
        took < Duration::from_secs(8) && load_ms < 5000,
        "the page waited: load {load_ms} ms, images after {took:?}"
    );

    wait_true(
        &mut browser,
        "a",
        "navigator.serviceWorker.getRegistrations().then(rs => rs.length === 0)",
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| {
        panic!(
            "the worker stayed: {e} {:?}",
            registered_scripts(&mut browser, "a")
        )
    });
    wait_true(
        &mut browser,
        "a",
        "caches.keys().then(ks => !ks.some(k => k.startsWith('peerhost-')))",
        Duration::from_secs(10),
    )
    .expect("the worker deleted what it kept");

    // The next page view: from the origin, as without peerhost. Chromium
    // may still hand it to the unregistered worker while the page it
    // controlled is alive (back/forward cache); the worker passes it
    // through and unregisters again.
    browser.goto("a", &server.url("/about.html"));
    assert_eq!(browser.eval("a", "typeof window.peerhost"), "undefined");
    let title = browser.eval("a", "document.title");
    assert!(title.as_str().unwrap_or("").starts_with("About"), "{title}");
    wait_true(
        &mut browser,
        "a",
        "navigator.serviceWorker.getRegistrations().then(rs => rs.length === 0)",
        Duration::from_secs(30),
    )
    .expect("no worker registered after the next page view");
    assert_eq!(
        browser.eval(
            "a",
            "caches.keys().then(ks => ks.filter(k => k.startsWith('peerhost-')))"
        ),
        serde_json::json!([]),
        "nothing kept came back"
    );
}
