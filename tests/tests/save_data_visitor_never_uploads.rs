//! A visitor on a metered or data-saving connection (`Save-Data`, cellular)
//! downloads through peerhost but never uploads: a second visitor gets
//! nothing from it and goes to the origin.
//!
//! The connection type is the browser's to report; headless Chromium has no
//! cellular link, so the first visitor's `navigator.connection` is replaced
//! by one that says `saveData: true` before any page script runs.

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::check::images_match_files;
use peerhost_tests::server::TestServer;
use peerhost_tests::visit::seed_plates;

const SAVE_DATA: &str = r#"
Object.defineProperty(Navigator.prototype, 'connection', {
  configurable: true,
  get() { return { saveData: true, type: 'wifi', effectiveType: '4g', addEventListener() {} }; },
});
"#;

#[test]
fn save_data_visitor_never_uploads() {
    if !browser_tests_enabled("save_data_visitor_never_uploads") {
        return;
    }
    let server = TestServer::demo();
    let mut browser = Browser::launch();

    browser.open_scripted("saver", &[], Some(SAVE_DATA));
    seed_plates(&mut browser, &server, "saver", "/plates.html");
    let saver = browser.eval("saver", "peerhost.stats()");
    assert_eq!(
        saver["leechOnly"], true,
        "Save-Data means leech-only: {saver}"
    );

    let before = server.image_bytes_served();
    browser.open("b");
    browser.visit_via_worker("b", &server.url(""), "/about.html", "/plates.html");
    let images = browser.images("b");
    let total = images_match_files(&server.site_dir(), &images);
    let b = browser.eval("b", "peerhost.stats()");
    let saver = browser.eval("saver", "peerhost.stats()");
    eprintln!("saver: {saver}\nb: {b}");
    assert_eq!(saver["bytesUploaded"], 0, "the saver uploaded nothing");
    assert_eq!(b["bytesFromPeers"], 0, "b got nothing from peers");
    assert!(
        server.image_bytes_served() - before >= total,
        "b's images all came from the origin"
    );
}
