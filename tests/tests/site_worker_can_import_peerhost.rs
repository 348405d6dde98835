//! A site with its own Service Worker at `/` keeps it and still gets
//! peerhost: its `/sw.js` imports `/peerhost-sw.js` (docs/browser.md, "A
//! site that has its own Service Worker") and the tag says `data-sw`. The
//! site's own route answers, peerhost's part serves the listed assets and
//! limited mode; `optOut()` leaves the site's worker registered and only
//! peerhost's part stands down.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::check::images_match_files;
use peerhost_tests::server::TestServer;
use peerhost_tests::visit::tagged_copy;
use peerhost_tests::worker::{registered_scripts, wait_kept, wait_true};

const SITE_WORKER: &str = r#"
self.PEERHOST_SW_MANUAL = true;
importScripts('/peerhost-sw.js');
self.addEventListener('fetch', function (e) {
  if (new URL(e.request.url).pathname === '/site-worker/hello') {
    e.respondWith(new Response('hello from the site worker', { headers: { 'content-type': 'text/plain' } }));
    return;
  }
  self.peerhostWorker.onFetch(e);
});
"#;

const HELLO: &str = "fetch('/site-worker/hello').then(r => r.text())";
const API: &str = "fetch('/api/now').then(r => ({status: r.status, limited: r.headers.get('x-peerhost-limited')}))";

#[test]
fn site_worker_can_import_peerhost() {
    if !browser_tests_enabled("site_worker_can_import_peerhost") {
        return;
    }
    let server = TestServer::demo();
    std::fs::write(server.site_dir().join("sw.js"), SITE_WORKER).expect("site worker");
    tagged_copy(
        &server,
        "about.html",
        "about-sw.html",
        r#"data-sw="/sw.js""#,
    );
    tagged_copy(
        &server,
        "plates.html",
        "plates-sw.html",
        r#"data-sw="/sw.js""#,
    );

    let mut browser = Browser::launch();
    browser.open("a");
    browser.visit_via_worker("a", &server.url(""), "/about-sw.html", "/plates-sw.html");
    assert_eq!(registered_scripts(&mut browser, "a"), ["/sw.js"]);
    assert_eq!(
        browser.eval(
            "a",
            "navigator.serviceWorker.controller.scriptURL.endsWith('/sw.js')"
        ),
        true
    );
    assert_eq!(browser.eval("a", HELLO), "hello from the site worker");
    images_match_files(&server.site_dir(), &browser.images("a"));
    wait_kept(&mut browser, "a", "/img/lichen.jpg");

    // peerhost's part of the site's worker: kept assets and limited mode.
    server.set_origin_down(true);
    let lichen = browser.eval(
        "a",
        "fetch('/img/lichen.jpg').then(async r => ({status: r.status, size: (await r.arrayBuffer()).byteLength}))",
    );
    let size = std::fs::metadata(server.site_dir().join("img/lichen.jpg"))
        .expect("lichen")
        .len();
    assert_eq!(lichen["status"], 200, "{lichen}");
    assert_eq!(lichen["size"], size, "{lichen}");
    let api = browser.eval("a", API);
    assert_eq!(api["status"], 503, "{api}");
    assert_eq!(api["limited"], "1", "{api}");
    server.set_origin_down(false);

    // Opting out: the site's worker stays, peerhost's part stands down.
    browser.eval("a", "peerhost.optOut()");
    wait_true(
        &mut browser,
        "a",
        "caches.keys().then(ks => !ks.includes('peerhost-meta'))",
        Duration::from_secs(10),
    )
    .expect("peerhost's part deleted what it kept");
    assert_eq!(registered_scripts(&mut browser, "a"), ["/sw.js"]);
    assert_eq!(browser.eval("a", HELLO), "hello from the site worker");
    server.set_origin_down(true);
    let api = browser.eval("a", API);
    assert_eq!(api["status"], 503, "{api}");
    assert_eq!(
        api["limited"],
        serde_json::Value::Null,
        "peerhost no longer answers: {api}"
    );
}
