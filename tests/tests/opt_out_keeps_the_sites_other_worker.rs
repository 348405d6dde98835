//! `peerhost.optOut()` unregisters peerhost's own worker and nothing else:
//! a Service Worker the site registered itself (here `/app/sw.js` for
//! `/app/`) stays registered, also after a reload.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::server::TestServer;
use peerhost_tests::visit::seed_plates;
use peerhost_tests::worker::{registered_scripts, wait_true};

#[test]
fn opt_out_keeps_the_sites_other_worker() {
    if !browser_tests_enabled("opt_out_keeps_the_sites_other_worker") {
        return;
    }
    let server = TestServer::demo();
    let app = server.site_dir().join("app");
    std::fs::create_dir_all(&app).expect("app dir");
    std::fs::write(
        app.join("sw.js"),
        "self.addEventListener('install', () => self.skipWaiting());\n",
    )
    .expect("site worker");

    let mut browser = Browser::launch();
    browser.open("a");
    seed_plates(&mut browser, &server, "a", "/plates.html");
    browser.eval(
        "a",
        "navigator.serviceWorker.register('/app/sw.js', {scope: '/app/'}).then(() => true)",
    );
    wait_true(
            &mut browser,
            "a",
            "navigator.serviceWorker.getRegistrations().then(rs => rs.length === 2 && rs.every(r => r.active))",
            Duration::from_secs(10),
        )
        .expect("the site's own worker is registered beside peerhost's");
    assert_eq!(
        registered_scripts(&mut browser, "a"),
        ["/app/sw.js", "/peerhost-sw.js"]
    );

    browser.eval("a", "peerhost.optOut()");
    wait_true(
            &mut browser,
            "a",
            "navigator.serviceWorker.getRegistrations().then(rs => !rs.some(r => (r.active || r.waiting || r.installing || {scriptURL: ''}).scriptURL.endsWith('/peerhost-sw.js')))",
            Duration::from_secs(10),
        )
        .expect("opting out unregisters peerhost's worker");
    assert_eq!(
        registered_scripts(&mut browser, "a"),
        ["/app/sw.js"],
        "the site's own worker stays"
    );
    wait_true(
        &mut browser,
        "a",
        "caches.keys().then(ks => !ks.includes('peerhost-meta'))",
        Duration::from_secs(10),
    )
    .expect("peerhost's worker deleted what it kept");

    browser.goto("a", &server.url("/about.html"));
    assert_eq!(browser.eval("a", "peerhost.ready"), false);
    assert_eq!(registered_scripts(&mut browser, "a"), ["/app/sw.js"]);
}
