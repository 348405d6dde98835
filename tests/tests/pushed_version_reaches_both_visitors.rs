//! Two visitors online; the site owner publishes a new version that changes
//! one image and pushes it once: both visitors switch to it without asking
//! the origin, the changed image comes from the origin at most once (the
//! second visitor gets it from the first), the unchanged images not at all,
//! and a reload shows the new image.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::server::TestServer;
use sha2::{Digest as _, Sha256};

const CHANGED: &str = "/img/lichen.jpg";

/// The same JPEG with a comment segment after its start marker: a valid
/// image whose every piece differs from the old one.
fn new_image(old: &[u8]) -> Vec<u8> {
    let comment = b"peerhost: version 2 of this plate";
    let len = (comment.len() + 2) as u16;
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xFE];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(comment);
    out.extend_from_slice(&old[2..]);
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const SHA_OF_FETCH: &str = "async (p) => { const r = await peerhost.fetch(p); const b = await r.arrayBuffer(); \
    return Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', b))).map(x => x.toString(16).padStart(2, '0')).join(''); }";

#[test]
fn pushed_version_reaches_both_visitors() {
    if !browser_tests_enabled("pushed_version_reaches_both_visitors") {
        return;
    }
    let server = TestServer::demo();
    let base = server.url("");
    let mut browser = Browser::launch();
    for v in ["a", "b"] {
        browser.open(v);
        browser.visit_via_worker(v, &base, "/about.html", "/plates.html");
        assert_eq!(browser.images(v).len(), 5);
    }
    for v in ["a", "b"] {
        browser
            .wait(
                v,
                "peerhost.stats().peers > 0 && peerhost.stats().assetsHeld >= 6",
                Duration::from_secs(30),
            )
            .unwrap_or_else(|e| panic!("{v} is connected and holds the page: {e}"));
    }
    let before = server.counters().snapshot();
    let old = std::fs::read(server.site_dir().join(CHANGED.trim_start_matches('/'))).unwrap();
    let new = new_image(&old);
    let v2 = server.republish(&[(CHANGED.trim_start_matches('/'), new.clone())]);
    assert_eq!(v2.manifest().version, 2);
    let pushed_at = std::time::Instant::now();
    assert_eq!(server.push(&v2), Ok(2));
    for v in ["a", "b"] {
        browser
            .wait(v, "peerhost.stats().version === 2", Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{v} switched to version 2: {e}"));
    }
    eprintln!(
        "both visitors on version 2 {} ms after the push",
        pushed_at.elapsed().as_millis()
    );
    let after_switch = server.counters().snapshot();
    assert_eq!(
        after_switch.get("/peerhost.json").map(|c| c.requests),
        before.get("/peerhost.json").map(|c| c.requests),
        "nobody asked the origin for the manifest: it was pushed"
    );

    // The page asks for the changed image: the first visitor gets it (from
    // the origin once), the second from the first.
    let want = hex(&Sha256::digest(&new));
    let got_a = browser.eval("a", &format!("({SHA_OF_FETCH})('{CHANGED}')"));
    assert_eq!(got_a, want.as_str());
    browser
        .wait("b", "peerhost.stats().peers > 0", Duration::from_secs(10))
        .expect("b still has a peer");
    let got_b = browser.eval("b", &format!("({SHA_OF_FETCH})('{CHANGED}')"));
    assert_eq!(got_b, want.as_str());

    let now = server.counters().snapshot();
    let delta = |path: &str| {
        let n = now.get(path).copied().unwrap_or_default();
        let b = before.get(path).copied().unwrap_or_default();
        (n.requests - b.requests, n.bytes - b.bytes)
    };
    let (reqs, bytes) = delta(CHANGED);
    eprintln!(
        "origin for {CHANGED}: {reqs} requests, {bytes} bytes (file {} bytes)",
        new.len()
    );
    assert!(
        bytes <= new.len() as u64,
        "the changed image came from the origin at most once: {bytes} bytes"
    );
    for path in before
        .keys()
        .filter(|p| p.starts_with("/img/") && p.as_str() != CHANGED)
    {
        assert_eq!(
            delta(path),
            (0, 0),
            "{path} is unchanged and was not fetched again"
        );
    }
    let stats_b = browser.eval("b", "peerhost.stats()");
    eprintln!("b: {stats_b}");

    // A reload of b's page shows the new plate, still without the origin's images.
    browser.goto("b", &server.url("/plates.html"));
    let images = browser.images("b");
    let lichen = images
        .iter()
        .find(|i| i["path"] == CHANGED)
        .expect("the plate is on the page");
    assert_eq!(lichen["sha256"], want.as_str());
    assert!(
        lichen["naturalWidth"].as_u64().unwrap_or(0) > 0,
        "the new image renders"
    );
    let end = server.counters().snapshot();
    for path in before
        .keys()
        .filter(|p| p.starts_with("/img/") && p.as_str() != CHANGED)
    {
        assert_eq!(
            end.get(path),
            before.get(path),
            "{path} not fetched on reload"
        );
    }
}
