//! A visitor who has been to the site once keeps it: with the origin down
//! (503 for every site file, HTML too), a reload shows the page and every
//! image, byte for byte, from the Service Worker's copy and peerhost; the
//! dynamic endpoint `/api/now` answers with the limited-mode JSON, the
//! demo page shows the notice, and an unlisted page gets the site's
//! limited-mode page instead of a browser error.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::server::TestServer;
use peerhost_tests::worker::wait_true;
use sha2::{Digest as _, Sha256};

#[test]
fn site_stays_up_when_origin_is_down() {
    if !browser_tests_enabled("site_stays_up_when_origin_is_down") {
        return;
    }
    let server = TestServer::demo();
    let base = server.url("");
    let mut browser = Browser::launch();

    browser.open("a");
    browser.visit_via_worker("a", &base, "/about.html", "/plates.html");
    assert_eq!(browser.images("a").len(), 5);
    wait_true(
            &mut browser,
            "a",
            "caches.open('peerhost-assets').then(c => Promise.all(['/plates.html', '/img/lichen.jpg', '/style.css'].map(p => c.match(p)))).then(rs => rs.every(Boolean))",
            Duration::from_secs(20),
        )
        .expect("the page and its assets are kept");
    let api = browser.eval("a", "fetch('/api/now').then(r => r.json())");
    assert!(api["now"].as_u64().is_some(), "origin up: {api}");

    server.set_origin_down(true);
    let down = browser.eval("a", "fetch('/peerhost.json', {cache: 'no-store', headers: {range: 'bytes=0-'}}).then(r => r.status)");
    assert_eq!(down, 503, "the origin is really down");

    browser.goto("a", &server.url("/plates.html"));
    let title = browser.eval("a", "document.title");
    assert!(
        title.as_str().unwrap_or("").contains("The Plates"),
        "the page itself came from the kept copy: {title}"
    );
    let images = browser.images("a");
    assert_eq!(images.len(), 5, "{images:?}");
    for img in &images {
        let path = img["path"].as_str().unwrap();
        let file = std::fs::read(server.site_dir().join(path.trim_start_matches('/'))).unwrap();
        assert!(img["naturalWidth"].as_u64().unwrap_or(0) > 0, "{img}");
        assert_eq!(
            img["sha256"].as_str().unwrap(),
            hex(&Sha256::digest(&file)),
            "{path} is byte for byte the published file"
        );
    }
    browser
        .wait(
            "a",
            "window.peerhost && peerhost.stats().version > 0",
            Duration::from_secs(20),
        )
        .expect("peerhost itself starts with the origin down (kept manifest)");

    // The dynamic part says why it is limited.
    let api = browser.eval(
        "a",
        "fetch('/api/now').then(async r => ({status: r.status, limited: r.headers.get('x-peerhost-limited'), body: await r.json()}))",
    );
    assert_eq!(api["status"], 503, "{api}");
    assert_eq!(api["limited"], "1", "{api}");
    assert_eq!(api["body"]["peerhost"], "limited", "{api}");
    browser
        .wait(
            "a",
            "(document.getElementById('peerhost-api') || {}).className === 'limited'",
            Duration::from_secs(15),
        )
        .expect("the demo page shows the limited-mode notice");

    // A page the manifest does not list: the site's own limited-mode page
    // (the demo provides /peerhost-limited.html), not a browser error page.
    browser.goto("a", &server.url("/not-published.html"));
    let text = browser.eval("a", "document.title + ' | ' + document.body.innerText");
    let text = text.as_str().unwrap_or("");
    assert!(
        text.starts_with("Limited mode") && text.contains("Our server cannot be reached"),
        "{text}"
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
