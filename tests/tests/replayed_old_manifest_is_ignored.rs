//! A replayed older manifest does not take a visitor back: someone pushes
//! the validly signed version 1 to a tracker that never saw version 2 (a
//! restarted tracker); the tracker stores it but never pushes it to a
//! visitor that holds version 2, which keeps version 2 and then takes the
//! genuine version 3. A forged newer manifest does not get through the
//! tracker at all.

use std::time::Duration;

use peerhost_core::manifest::SignedManifest;
use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::server::TestServer;
use sha2::{Digest as _, Sha256};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn replayed_old_manifest_is_ignored() {
    if !browser_tests_enabled("replayed_old_manifest_is_ignored") {
        return;
    }
    let server = TestServer::demo();
    let v1 = server.manifest();
    // Version 2 goes to the origin only; the tracker has never seen a version.
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
    // Subscribed to pushes (the subscription goes before the announce on
    // the same socket): a push sent earlier may reach only the tracker
    // connection of the page a left, not yet closed (seen in a full run).
    browser
        .wait("a", "peerhost.stats().announced", Duration::from_secs(20))
        .expect("a announced itself to the tracker");

    // The replay: the tracker takes it (it knows nothing newer), but a
    // connection that said it holds version 2 is never pushed anything at
    // or below 2 (docs/security.md, "Tracker"), so it stops there. (A page
    // that does receive a replay, from a foreign tracker, refuses it: the
    // core's version_switch and deferred_signatures tests.)
    assert_eq!(server.push(&v1), Ok(1));
    // Proof of absence by a round trip, not a silence window: pushes to one
    // connection arrive in order, so once version 3 (the same files) has
    // arrived, the replay would have arrived before it.
    let v3 = server.republish(&[]);
    assert_eq!(v3.manifest().version, 3);
    assert_eq!(server.push(&v3), Ok(3));
    browser
        .wait(
            "a",
            "peerhost.stats().version === 3",
            Duration::from_secs(20),
        )
        .expect("the newer push reached the page");
    let stats = browser.eval("a", "peerhost.stats()");
    let refusals: Vec<String> = stats["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str().map(str::to_owned))
        .filter(|l| l.contains("ManifestRefused"))
        .collect();
    assert!(
        refusals.is_empty(),
        "the replay never reached the page: {refusals:?}"
    );
    // The persisted floor never went back (it is written as the page
    // persists it, so 2 or 3 here, never 1).
    // (It is stored as JSON with its manifest's digest.)
    let floor = browser.eval("a", "JSON.parse(localStorage.getItem('peerhost.floor.' + document.querySelector('script[data-site-key]').dataset.siteKey)).version");
    assert!(floor == 2 || floor == 3, "floor {floor}");

    // The page still shows version 2's plate (version 3 has the same files).
    let images = browser.images("a");
    let lichen = images
        .iter()
        .find(|i| i["path"] == "/img/lichen.jpg")
        .unwrap();
    assert_eq!(lichen["sha256"], hex(&Sha256::digest(&plate)).as_str());

    // A forged "version 3" (version 2 with a flipped signature bit) is refused.
    let mut forged = v2.to_bytes();
    let n = forged.len();
    forged[n - 1] ^= 1;
    let forged = SignedManifest::from_bytes(&forged).unwrap();
    let refused = server.push(&forged).unwrap_err();
    assert!(refused.contains("refused"), "{refused}");
    assert_eq!(browser.eval("a", "peerhost.stats().version"), 3);
}
