//! The browser's rollback floor holds the manifest's digest, not only its
//! version: after a visit on version 2, a different version 2 signed with
//! the same key (a stolen key, or a publishing mistake) is refused on the
//! next page view, and the page says why; the stored floor is unchanged.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::server::TestServer;
use serde_json::Value;

const FLOOR: &str = "localStorage.getItem('peerhost.floor.' + document.querySelector('script[data-site-key]').dataset.siteKey)";

#[test]
fn same_version_with_other_contents_is_refused() {
    if !browser_tests_enabled("same_version_with_other_contents_is_refused") {
        return;
    }
    let server = TestServer::demo();
    let mut plate = std::fs::read(server.site_dir().join("img/lichen.jpg")).unwrap();
    plate.extend_from_slice(b"version 2");
    let v2 = server.republish(&[("img/lichen.jpg", plate.clone())]);
    assert_eq!(v2.manifest().version, 2);

    let mut browser = Browser::launch();
    browser.open("a");
    browser.visit_via_worker("a", &server.url(""), "/about.html", "/plates.html");
    browser
        .wait(
            "a",
            "peerhost.stats().version === 2",
            Duration::from_secs(20),
        )
        .expect("a is on version 2");
    let floor_before = browser.eval("a", FLOOR);

    // The same version again is fine (a plain reload).
    browser.goto("a", &server.url("/about.html"));
    assert_eq!(browser.eval("a", "peerhost.ready"), true);

    // Another version 2, same key, other contents.
    plate.extend_from_slice(b" but other");
    let other = server.republish_as(&[("img/lichen.jpg", plate)], 2);
    assert_eq!(other.manifest().version, 2);
    assert_ne!(other.digest(), v2.digest());

    browser.goto("a", &server.url("/about.html"));
    assert_eq!(
        browser.eval("a", "peerhost.ready"),
        false,
        "the other version 2 was accepted"
    );
    let stats = browser.eval("a", "peerhost.stats()");
    assert_eq!(stats["running"], false, "{stats}");
    let reason = stats["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("version 2 differs from the accepted manifest"),
        "{stats}"
    );
    let logs = browser.logs("a");
    assert!(
        logs.iter().any(|l| l.contains("refused the manifest")),
        "{logs:#?}"
    );
    // What the floor holds: the version and its manifest's digest, as
    // before the refusal.
    assert_eq!(
        browser.eval("a", FLOOR),
        floor_before,
        "the floor is unchanged"
    );
    let floor: Value = serde_json::from_str(floor_before.as_str().expect("a stored floor"))
        .expect("floor is JSON");
    assert_eq!(floor["version"], 2, "{floor}");
    assert_eq!(floor["digest"], v2.digest().to_hex().as_str(), "{floor}");
}
