//! ICE configuration from the tag reaches the browser's peer connections:
//! `data-ice-servers` and `data-relay-only` show in `peerhost.stats()` and
//! `peerhost.disclosure()`, every RTCPeerConnection the page makes gets
//! `iceTransportPolicy: "relay"` and the servers, and with no TURN server
//! no candidate other than a relayed one ever appears (so peers never learn
//! the visitor's address). The page still loads its images byte-exact from
//! the origin. A bad `data-ice-servers` is ignored with a console warning
//! and peerhost runs as without it. The visitor's own choice
//! (`setRelayOnly`) is remembered.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::check::images_match_files;
use peerhost_tests::server::TestServer;
use peerhost_tests::visit::{seed_plates, tagged_copy};

/// Records every RTCPeerConnection's configuration and every local ICE
/// candidate the page's peer connections gather.
const RECORD_PEER_CONNECTIONS: &str = r#"(() => {
  const Orig = window.RTCPeerConnection;
  if (!Orig) return;
  window.__pcConfigs = [];
  window.__candidates = [];
  const Wrapped = function (cfg) {
    const pc = new Orig(cfg);
    window.__pcConfigs.push({
      policy: cfg && cfg.iceTransportPolicy,
      servers: cfg && cfg.iceServers ? cfg.iceServers.length : 0,
    });
    pc.addEventListener('icecandidate', (e) => {
      if (e.candidate && e.candidate.candidate) window.__candidates.push(e.candidate.candidate);
    });
    return pc;
  };
  Wrapped.prototype = Orig.prototype;
  window.RTCPeerConnection = Wrapped;
})();"#;

const ICE_SERVERS: &str = r#"data-ice-servers='[{"urls":"stun:127.0.0.1:9"}]' data-relay-only"#;

#[test]
fn relay_only_visitor_offers_no_direct_candidates() {
    if !browser_tests_enabled("relay_only_visitor_offers_no_direct_candidates") {
        return;
    }
    let server = TestServer::demo();
    tagged_copy(&server, "about.html", "about-relay.html", ICE_SERVERS);
    tagged_copy(&server, "plates.html", "plates-relay.html", ICE_SERVERS);
    tagged_copy(
        &server,
        "plates.html",
        "plates-bad-ice.html",
        r#"data-ice-servers="[{urls: nope""#,
    );
    let mut browser = Browser::launch();

    // a: a bad list is ignored with a warning; a seeds directly as usual.
    browser.open("a");
    seed_plates(&mut browser, &server, "a", "/plates-bad-ice.html");
    let a = browser.eval("a", "peerhost.stats()");
    assert_eq!(a["iceServers"], 0, "a bad list is ignored: {a}");
    assert_eq!(a["iceMode"], "direct");
    let logs = browser.logs("a");
    assert!(
        logs.iter()
            .any(|l| l.starts_with("warning:") && l.contains("data-ice-servers ignored")),
        "a console warning names the attribute: {logs:#?}"
    );

    // b: relay-only, one STUN server, no TURN.
    let before = server.image_bytes_served();
    browser.open_scripted("b", &[], Some(RECORD_PEER_CONNECTIONS));
    browser.visit_via_worker(
        "b",
        &server.url(""),
        "/about-relay.html",
        "/plates-relay.html",
    );
    let total = images_match_files(&server.site_dir(), &browser.images("b"));
    assert!(
        server.image_bytes_served() - before >= total,
        "b's images came from the origin"
    );
    browser
        .wait(
            "b",
            "window.__pcConfigs.length > 0",
            Duration::from_secs(30),
        )
        .expect("b made peer connections (a is in the swarm)");
    let b = browser.eval("b", "peerhost.stats()");
    assert_eq!(b["iceMode"], "relay-only", "{b}");
    assert_eq!(b["iceServers"], 1, "{b}");
    assert_eq!(b["bytesFromPeers"], 0, "no peer connection could form: {b}");
    let configs = browser.eval("b", "window.__pcConfigs");
    for c in configs.as_array().expect("a list") {
        assert_eq!(
            c["policy"], "relay",
            "every connection is relay-only: {configs}"
        );
        assert_eq!(c["servers"], 1, "with the tag's server: {configs}");
    }
    let candidates = browser.eval("b", "window.__candidates");
    let direct: Vec<_> = candidates
        .as_array()
        .expect("a list")
        .iter()
        .filter(|c| !c.as_str().unwrap_or_default().contains(" typ relay"))
        .collect();
    assert!(
        direct.is_empty(),
        "non-relay candidates appeared: {direct:?}"
    );
    eprintln!(
        "b: {} connections, candidates {candidates}",
        configs.as_array().map_or(0, Vec::len)
    );

    let d = browser.eval("b", "peerhost.disclosure()");
    assert_eq!(d["mode"], "seeding", "{d}");
    assert_eq!(d["relayOnly"], true, "{d}");
    assert_eq!(d["running"], true, "{d}");
    assert!(d["assetsHeld"].as_u64().is_some(), "{d}");
    assert_eq!(d["uploadedBytes"], b["bytesUploaded"], "{d}");
    assert_eq!(d["iceServers"], 1, "a count, never credentials: {d}");

    // The visitor's choice wins over the tag, and is remembered.
    browser.eval("b", "peerhost.setRelayOnly(false)");
    let b = browser.eval("b", "peerhost.stats()");
    assert_eq!(b["iceMode"], "direct", "{b}");
    assert_eq!(browser.eval("b", "peerhost.disclosure().relayOnly"), false);
    assert_eq!(
        browser.eval("b", "localStorage.getItem('peerhost.relayOnly')"),
        "0"
    );
    browser.eval("b", "peerhost.optOut()");
    assert_eq!(browser.eval("b", "peerhost.disclosure().mode"), "opted-out");
}
