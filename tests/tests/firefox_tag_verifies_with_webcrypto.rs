//! The tag's crypto in Firefox: the manifest's signature is checked by
//! Firefox's WebCrypto Ed25519 (Firefox 129+) and every piece from a peer
//! by its `crypto.subtle.digest("SHA-256")`; a signature that does not
//! verify there makes the tag stand down.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::server::TestServer;
use serde_json::json;

/// Counts what the page asks of WebCrypto, passing every call through.
const COUNT_CRYPTO: &str = r#"(() => {
  const s = crypto.subtle, verify = s.verify.bind(s), digest = s.digest.bind(s);
  const name = a => typeof a === 'string' ? a : a && a.name;
  window.__crypto = { ed25519True: 0, ed25519False: 0, sha256: 0 };
  s.verify = (a, k, sig, d) => verify(a, k, sig, d).then((ok) => {
    if (name(a) === 'Ed25519') window.__crypto[ok ? 'ed25519True' : 'ed25519False'] += 1;
    return ok;
  });
  s.digest = (a, d) => { if (name(a) === 'SHA-256') window.__crypto.sha256 += 1; return digest(a, d); };
})();"#;

/// Flips one bit of every Ed25519 signature before Firefox checks it.
const FLIP_SIGNATURE: &str = r#"(() => {
  const s = crypto.subtle, verify = s.verify.bind(s);
  window.__flipped = 0;
  s.verify = (a, k, sig, d) => {
    if ((typeof a === 'string' ? a : a && a.name) !== 'Ed25519') return verify(a, k, sig, d);
    const bad = new Uint8Array(sig.buffer ? new Uint8Array(sig.buffer, sig.byteOffset, sig.byteLength) : sig);
    bad[0] ^= 1;
    window.__flipped += 1;
    return verify(a, k, bad, d);
  };
})();"#;

#[test]
fn firefox_verifies_manifest_and_pieces_with_webcrypto() {
    if !browser_tests_enabled("firefox_verifies_manifest_and_pieces_with_webcrypto") {
        return;
    }
    let server = TestServer::demo();
    let base = server.url("");
    let mut browser = Browser::launch();
    browser.open("seed");
    peerhost_tests::visit::seed_plates(&mut browser, &server, "seed", "/plates.html");

    browser.open_firefox_with("v", json!({}), Some(COUNT_CRYPTO));
    browser.visit_via_worker("v", &base, "/about.html", "/plates.html");
    let images = browser.images("v");
    let total = peerhost_tests::check::images_match_files(&server.site_dir(), &images);
    browser
        .wait(
            "v",
            "peerhost.stats().bytesFromPeers >= 2444463",
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("the images did not come from the seed: {e}"));
    let stats = browser.eval("v", "peerhost.stats()");
    let calls = browser.eval("v", "window.__crypto");
    eprintln!("{total} image bytes; WebCrypto calls {calls}; stats {stats}");
    assert!(stats["version"].as_u64().unwrap_or(0) >= 1, "{stats}");
    // The plates page (the counter is per page) loaded and verified it.
    assert!(
        calls["ed25519True"].as_u64().unwrap_or(0) >= 1,
        "Firefox's Ed25519 verified the manifest: {calls}"
    );
    assert_eq!(calls["ed25519False"], 0, "{calls}");
    // Every 16 KiB piece from the seed was hashed by Firefox's SHA-256.
    let pieces = total.div_ceil(16 * 1024);
    assert!(
        calls["sha256"].as_u64().unwrap_or(0) >= pieces,
        "at least {pieces} pieces hashed with crypto.subtle: {calls}"
    );
    assert_eq!(stats["piecesRejected"], 0, "{stats}");
}

#[test]
fn firefox_refuses_a_manifest_whose_signature_does_not_verify() {
    if !browser_tests_enabled("firefox_refuses_a_manifest_whose_signature_does_not_verify") {
        return;
    }
    let server = TestServer::demo();
    let mut browser = Browser::launch();
    browser.open_firefox_with("v", json!({}), Some(FLIP_SIGNATURE));
    browser.goto("v", &server.url("/plates.html"));
    assert_eq!(
        browser.eval("v", "peerhost.ready"),
        false,
        "the tag stands down"
    );
    assert!(
        browser.eval("v", "window.__flipped").as_u64().unwrap_or(0) >= 1,
        "the signature went to Firefox's Ed25519"
    );
    assert_eq!(browser.eval("v", "peerhost.stats().running"), false);
    let images = browser.images("v");
    assert_eq!(images.len(), 5);
    let total = peerhost_tests::check::images_match_files(&server.site_dir(), &images);
    // At least once (the test's re-read of each image may reach it again).
    let origin = server.image_bytes_served();
    assert!(
        origin >= total,
        "the origin served {origin} of {total} image bytes"
    );
}
