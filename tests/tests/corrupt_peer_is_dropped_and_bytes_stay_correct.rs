//! A peer that flips bytes in every piece it serves: the other visitor
//! still ends with correct images, drops the liar and reports it.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::server::TestServer;

/// Flips the last byte of every outgoing `peerhost/1` piece frame (type 3).
const LIAR: &str = r#"
(() => {
  const send = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (data) {
    let bytes = null;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data.slice(0));
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    if (bytes && bytes.length > 5 && bytes[0] === 3) {
      bytes[bytes.length - 1] ^= 0x5a;
      return send.call(this, bytes);
    }
    return send.call(this, data);
  };
})();
"#;

#[test]
fn corrupt_peer_is_dropped_and_bytes_stay_correct() {
    if !browser_tests_enabled("corrupt_peer_is_dropped_and_bytes_stay_correct") {
        return;
    }
    let server = TestServer::demo();
    let base = server.url("");
    let mut browser = Browser::launch();

    browser.open_scripted("liar", &[], Some(LIAR));
    browser.visit_via_worker("liar", &base, "/about.html", "/plates.html");
    assert_eq!(browser.images("liar").len(), 5);

    browser.open("victim");
    browser.visit_via_worker("victim", &base, "/about.html", "/plates.html");
    let images = browser.images("victim");
    assert_eq!(images.len(), 5);
    peerhost_tests::check::images_match_files(&server.site_dir(), &images);
    let stats = browser.eval("victim", "peerhost.stats()");
    eprintln!("victim stats: {stats}");
    assert!(
        stats["piecesRejected"].as_u64().unwrap_or(0) >= 1,
        "the corrupt pieces were seen: {stats}"
    );
    assert_eq!(
        stats["peersBanned"].as_u64(),
        Some(1),
        "the liar was dropped: {stats}"
    );
    let log = stats["log"].to_string();
    assert!(
        log.contains("PeerBanned") && log.contains("failed verification"),
        "the ban is reported: {log}"
    );
    // The liar is not connected any more.
    browser
        .wait(
            "victim",
            "peerhost.stats().peers === 0",
            Duration::from_secs(10),
        )
        .expect("no connection to the liar remains");
}
