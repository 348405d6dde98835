//! Only assets listed in the signed manifest travel between peers. A file
//! the site serves but did not list (added after publishing) always comes
//! from the origin, through the worker and through `peerhost.fetch`, and no
//! visitor ever counts, stores or uploads a byte of it.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::server::TestServer;

const SECRET_PATH: &str = "/private/notes.txt";

#[test]
fn unlisted_assets_are_never_shared() {
    if !browser_tests_enabled("unlisted_assets_are_never_shared") {
        return;
    }
    let server = TestServer::demo();
    std::fs::create_dir_all(server.site_dir().join("private")).expect("dir");
    std::fs::write(
        server.site_dir().join("private/notes.txt"),
        "not for sharing\n",
    )
    .expect("write");
    let base = server.url("");
    let mut browser = Browser::launch();
    let fetch_secret = format!(
        "Promise.all([fetch('{SECRET_PATH}', {{cache: 'no-store'}}).then(r => r.text()), \
         peerhost.fetch('{SECRET_PATH}', {{cache: 'no-store'}}).then(r => r.text())])"
    );

    browser.open("a");
    browser.visit_via_worker("a", &base, "/about.html", "/plates.html");
    browser.images("a");
    let before = server.counters().path(SECRET_PATH).requests;
    let texts = browser.eval("a", &fetch_secret);
    assert_eq!(texts[0], "not for sharing\n");
    assert_eq!(texts[1], "not for sharing\n");
    assert_eq!(
        server.counters().path(SECRET_PATH).requests,
        before + 2,
        "both went to the origin"
    );

    browser.open("b");
    browser.visit_via_worker("b", &base, "/about.html", "/plates.html");
    browser.images("b");
    browser
        .wait(
            "b",
            "peerhost.stats().bytesFromPeers > 0",
            Duration::from_secs(20),
        )
        .expect("b got listed assets from a");
    let texts = browser.eval("b", &fetch_secret);
    assert_eq!(texts[1], "not for sharing\n");
    assert_eq!(
        server.counters().path(SECRET_PATH).requests,
        before + 4,
        "b's requests went to the origin too"
    );

    let listed: Vec<String> = serde_json_paths(&browser.eval("b", "peerhost.stats().perAsset"));
    for visitor in ["a", "b"] {
        let per_asset = browser.eval(visitor, "peerhost.stats().perAsset");
        for path in serde_json_paths(&per_asset) {
            assert_ne!(
                path, SECRET_PATH,
                "{visitor} never handled the unlisted file"
            );
        }
    }
    let a = browser.eval("a", "peerhost.stats()");
    let b = browser.eval("b", "peerhost.stats()");
    assert_eq!(
        a["bytesUploaded"], b["bytesFromPeers"],
        "everything a uploaded is what b received as listed assets ({listed:?})"
    );
}

fn serde_json_paths(v: &serde_json::Value) -> Vec<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}
