//! A swarm of two browser engines: one visitor seeds the demo's plates
//! page, a visitor in the other engine gets it from there.

use std::time::Duration;

use serde_json::Value;

use crate::browser::{Browser, Engine};
use crate::server::TestServer;

/// What the second visitor got: its stats, the image bytes the origin
/// counted for it, and the images' total size (every image checked byte
/// for byte against the published file).
pub struct SecondVisit {
    /// `peerhost.stats()` of the second visitor.
    pub stats: Value,
    /// Image bytes the origin served while the second visitor loaded.
    pub origin_image_bytes: u64,
    /// Bytes of the five images.
    pub image_bytes: u64,
}

impl SecondVisit {
    /// Asserts the second visitor (`who`, for messages) got every image
    /// byte from peers: the origin counted none for it, and it has a peer.
    pub fn assert_all_images_from_peers(&self, who: &str) {
        let from_peers = self.stats["bytesFromPeers"].as_u64().unwrap_or(0);
        assert_eq!(
            self.origin_image_bytes, 0,
            "the origin served {} of {} image bytes to the {who} visitor",
            self.origin_image_bytes, self.image_bytes
        );
        assert!(
            from_peers >= self.image_bytes,
            "the {who} visitor got {from_peers} bytes from peers, less than the {} image bytes",
            self.image_bytes
        );
        assert!(
            self.stats["peers"].as_u64().unwrap_or(0) >= 1,
            "{}",
            self.stats
        );
    }
}

fn open(browser: &mut Browser, engine: Engine, visitor: &str) {
    match engine {
        Engine::Chromium => browser.open(visitor),
        Engine::Firefox => browser.open_firefox(visitor),
    }
}

/// `first` (in `first_engine`) views the plates page alone, loads every
/// image (lazy ones too) and holds all ten assets of its two page views;
/// then `second` (in `second_engine`) views the same pages.
pub fn second_visit_across_engines(
    server: &TestServer,
    browser: &mut Browser,
    (first, first_engine): (&str, Engine),
    (second, second_engine): (&str, Engine),
) -> SecondVisit {
    let base = server.url("");
    open(browser, first_engine, first);
    browser.visit_via_worker(first, &base, "/about.html", "/plates.html");
    // Below the fold, Firefox loads lazy images only when scrolled to:
    // load them all, so the first visitor holds what the second will ask.
    assert_eq!(
        browser.images(first).len(),
        5,
        "the plates page shows five images"
    );
    // about.html, plates.html, style.css, overlay.js, favicon.svg and the
    // five images: every listed asset the two page views loaded, taken
    // from the HTTP cache (the worker sent them straight to the origin).
    browser
        .wait(
            first,
            "peerhost.stats().assetsHeld >= 10 && peerhost.stats().announced",
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| {
            let stats = browser.eval(first, "peerhost.stats()");
            panic!(
                "{first} does not hold the ten assets it loaded: {e}\n{stats}\n{:#?}",
                browser.logs(first)
            )
        });
    let before = server.image_bytes_served();

    open(browser, second_engine, second);
    browser.visit_via_worker(second, &base, "/about.html", "/plates.html");
    let images = browser.images(second);
    let stats = browser.eval(second, "peerhost.stats()");
    let origin_image_bytes = server.image_bytes_served() - before;
    let image_bytes = crate::check::images_match_files(&server.site_dir(), &images);
    eprintln!(
        "{second} ({second_engine:?}) after {first} ({first_engine:?}): {image_bytes} image bytes, \
         {origin_image_bytes} from the origin; stats {stats}\nlogs of {first}: {:#?}\nlogs of {second}: {:#?}",
        browser.logs(first),
        browser.logs(second)
    );
    SecondVisit {
        stats,
        origin_image_bytes,
        image_bytes,
    }
}
