//! The client has no ed25519 code of its own: it checks the manifest's
//! signature with WebCrypto Ed25519. In a browser without it (Chromium
//! before 137) the tag stands down after asking, no manifest is accepted,
//! no worker is registered, and the page loads from the origin exactly as
//! without the tag.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::server::TestServer;
use serde_json::Value;

/// An older browser: WebCrypto without Ed25519 (what Chromium < 137 says).
const NO_ED25519: &str = r#"(() => {
  const s = crypto.subtle, importKey = s.importKey.bind(s), verify = s.verify.bind(s);
  const ed = a => (typeof a === 'string' ? a : a && a.name) === 'Ed25519';
  const no = () => Promise.reject(new DOMException('Algorithm: Unrecognized name', 'NotSupportedError'));
  s.importKey = (f, k, a, e, u) => { if (ed(a)) { window.__ed25519Asked = true; return no(); } return importKey(f, k, a, e, u); };
  s.verify = (a, k, sig, d) => ed(a) ? no() : verify(a, k, sig, d);
})();"#;

#[test]
fn page_loads_from_origin_without_webcrypto_ed25519() {
    if !browser_tests_enabled("page_loads_from_origin_without_webcrypto_ed25519") {
        return;
    }
    let server = TestServer::demo();
    let mut browser = Browser::launch();
    browser.open_scripted("old", &[], Some(NO_ED25519));
    browser.goto("old", &server.url("/plates.html"));
    let ready = browser.eval("old", "peerhost.ready");
    assert_eq!(ready, Value::Bool(false), "the tag stands down");
    assert_eq!(
        browser.eval("old", "window.__ed25519Asked === true"),
        Value::Bool(true),
        "it stood down because the signature could not be checked"
    );
    assert_eq!(
        browser.eval("old", "peerhost.stats().running"),
        Value::Bool(false)
    );
    assert_eq!(
        browser.eval(
            "old",
            "navigator.serviceWorker.getRegistrations().then(r => r.length)"
        ),
        Value::from(0),
        "no worker registered"
    );
    let images = browser.images("old");
    assert_eq!(images.len(), 5, "the plates page shows five images");
    let total = peerhost_tests::check::images_match_files(&server.site_dir(), &images);
    assert!(
        server.image_bytes_served() >= total,
        "the origin served every image ({} of {total} bytes)",
        server.image_bytes_served()
    );
    // The page keeps working from the origin as it would without the tag.
    browser
        .wait(
            "old",
            "document.readyState === 'complete'",
            Duration::from_secs(5),
        )
        .expect("loaded");
}
