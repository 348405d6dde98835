//! Without a tracker, without peers, with WebRTC blocked, or with the WASM
//! module failing to start, the page still
//! loads everything from the origin, about as fast as without the tag.
//! Each run is a fresh visitor landing on /about.html and then browsing to
//! the plates page (the view that goes through peerhost's Service Worker).
//! Load times are printed, not asserted tightly: the machine is noisy.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::server::TestServer;

const RUNS: usize = 5;
const TAG_START: &str = "<script src=\"/peerhost/peerhost.js\"";

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Writes copies of the pages without the peerhost tag (not listed in the
/// manifest, served by the origin as any file).
fn write_untagged_pages(server: &TestServer) {
    for page in ["about", "plates"] {
        let html =
            std::fs::read_to_string(server.site_dir().join(format!("{page}.html"))).expect("page");
        let start = html.find(TAG_START).expect("the page has the tag");
        let end = start + html[start..].find("</script>").expect("closed") + "</script>".len();
        let untagged = format!("{}{}", &html[..start], &html[end..])
            .replace("/about.html", "/about-untagged.html");
        std::fs::write(
            server.site_dir().join(format!("{page}-untagged.html")),
            untagged,
        )
        .expect("write");
    }
}

/// `RUNS` fresh visitors: land on `first`, wait for peerhost (if `tagged`
/// and it can run), browse to `then`; images must render. Median load of `then`.
fn load_times(
    browser: &mut Browser,
    server: &TestServer,
    name: &str,
    pages: (&str, &str),
    init: Option<&str>,
    wait_worker: bool,
) -> u64 {
    let mut times = Vec::new();
    for i in 0..RUNS {
        let visitor = format!("{name}-{i}");
        browser.open_scripted(&visitor, &[], init);
        browser.goto(&visitor, &server.url(pages.0));
        if wait_worker {
            browser
                .wait(
                    &visitor,
                    "navigator.serviceWorker.controller !== null",
                    Duration::from_secs(20),
                )
                .expect("the worker controls the page");
        }
        times.push(browser.goto(&visitor, &server.url(pages.1)));
        let images = browser.images(&visitor);
        assert_eq!(images.len(), 5, "{name}: five plates");
        for img in &images {
            assert!(
                img["naturalWidth"].as_u64().unwrap_or(0) > 0,
                "{name}: {img} rendered"
            );
        }
        browser.close(&visitor);
    }
    median(times)
}

#[test]
fn page_loads_from_origin_without_tracker_peers_or_webrtc() {
    if !browser_tests_enabled("page_loads_from_origin_without_tracker_peers_or_webrtc") {
        return;
    }
    let mut browser = Browser::launch();
    let tagged = ("/about.html", "/plates.html");
    let untagged = ("/about-untagged.html", "/plates-untagged.html");

    // No tracker: the tag's tracker URL answers nothing.
    let no_tracker = TestServer::start(peerhost_site::demo::DemoOptions {
        tracker: false,
        ..Default::default()
    });
    write_untagged_pages(&no_tracker);
    let without_tag = load_times(&mut browser, &no_tracker, "plain", untagged, None, false);
    let no_tracker_ms = load_times(&mut browser, &no_tracker, "notracker", tagged, None, true);
    // A tracker but nobody else (each visitor closes before the next comes).
    let alone = TestServer::demo();
    let before = alone.counters().bytes_served();
    let alone_ms = load_times(&mut browser, &alone, "alone", tagged, None, true);
    let served = alone.counters().bytes_served() - before;
    // WebRTC blocked by the browser: the loader stands down, no worker.
    let no_rtc = "delete window.RTCPeerConnection; delete window.RTCDataChannel;";
    let blocked_ms = load_times(&mut browser, &alone, "nortc", tagged, Some(no_rtc), false);
    // The WASM module cannot be compiled (a broken deploy, a strict CSP).
    let no_wasm = "WebAssembly.instantiate = WebAssembly.instantiateStreaming = \
                   () => Promise.reject(new Error('blocked for the test'));";
    let no_wasm_ms = load_times(&mut browser, &alone, "nowasm", tagged, Some(no_wasm), false);

    assert!(served > 0, "every alone visitor was served by the origin");
    let pct = |ms: u64| (ms as f64 / without_tag.max(1) as f64 - 1.0) * 100.0;
    eprintln!(
        "FIGURES median load of the plates page over {RUNS} fresh visitors: without the tag {without_tag} ms; \
         no tracker {no_tracker_ms} ms ({:+.0}%); alone with a tracker {alone_ms} ms ({:+.0}%); \
         WebRTC blocked {blocked_ms} ms ({:+.0}%); WASM failing {no_wasm_ms} ms ({:+.0}%)",
        pct(no_tracker_ms),
        pct(alone_ms),
        pct(blocked_ms),
        pct(no_wasm_ms)
    );
}
