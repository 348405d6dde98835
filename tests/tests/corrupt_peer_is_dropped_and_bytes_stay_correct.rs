//! A peer that flips bytes in every piece it serves: the other visitor
//! still ends with correct images, drops the liar and reports it.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::server::TestServer;
use sha2::{Digest as _, Sha256};

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
    for img in &images {
        let path = img["path"].as_str().expect("path");
        let file =
            std::fs::read(server.site_dir().join(path.trim_start_matches('/'))).expect("file");
        let want: String = Sha256::digest(&file)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(
            img["naturalWidth"].as_u64().unwrap_or(0) > 0,
            "{path} rendered"
        );
        assert_eq!(
            img["sha256"].as_str(),
            Some(want.as_str()),
            "{path}: no corrupt byte reached the page"
        );
    }
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
