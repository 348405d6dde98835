//! What the NAT tests share: the demo on the public address of a
//! simulated internet (`peerhost_testenv::topology`), Chromium visitors in
//! its homes, pages tagged with ICE settings, and what the visitors' peer
//! connections used, read from `RTCPeerConnection.getStats()`.

use std::time::Duration;

use peerhost_testenv::topology::{Topology, TopologyOptions};
use serde_json::Value;

use crate::browser::Browser;
use crate::server::TestServer;

/// Chromium flags for visitors in homes: host candidates with their real
/// (LAN) addresses instead of mDNS names, so what was gathered and sent is
/// readable.
pub const VISITOR_FLAGS: &[&str] = &["--disable-features=WebRtcHideLocalIpsWithMdns"];

/// Where the tracker answers STUN, on the public address.
pub const STUN_PORT: u16 = 3478;
/// Where coturn listens, on the public address.
pub const TURN_PORT: u16 = 3479;
/// coturn's `static-auth-secret`, shared with the tracker that mints
/// credentials for it.
pub const TURN_SECRET: &str = "peerhost-nat-test-secret";

/// Which ICE servers the tracker hands the visitors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ice {
    /// The tracker's own STUN responder.
    Stun,
    /// STUN, and coturn with credentials the tracker mints per visitor.
    StunAndTurn,
}

/// The demo on `topology`'s public address, its tracker answering STUN
/// there and handing out `ice` in its announce answers.
pub fn demo_with_ice(topology: &Topology, ice: Ice) -> peerhost_site::demo::DemoOptions {
    let public = topology.public_ip();
    let mut tracker = peerhost_tracker::config::Config::default();
    tracker.stun.listen = Some((public, STUN_PORT).into());
    tracker.ice_servers = vec![peerhost_core::ice::IceServer {
        urls: vec![format!("stun:{public}:{STUN_PORT}")],
        username: None,
        credential: None,
    }];
    if ice == Ice::StunAndTurn {
        tracker.turn.urls = vec![format!("turn:{public}:{TURN_PORT}?transport=udp")];
        tracker.turn.secret = Some(TURN_SECRET.to_owned());
    }
    peerhost_site::demo::DemoOptions {
        tracker_config: tracker,
        ..Default::default()
    }
}

/// coturn on `topology`'s public address ([`TURN_PORT`], [`TURN_SECRET`]).
pub fn start_coturn(topology: &Topology) -> peerhost_testenv::coturn::Coturn {
    peerhost_testenv::coturn::Coturn::start(topology.public_ip().into(), TURN_PORT, TURN_SECRET)
}

/// A test-only init script: wraps `RTCPeerConnection` so the page's own
/// connections are recorded in `window.__peerhostTest`: the configuration
/// each was built with, every local
/// candidate gathered, the selected candidate pair of each connection when
/// it connects (types and addresses, from `getStats()`), and when the first
/// data-channel message arrived (ms since the page's time origin).
pub const PEER_CONNECTION_RECORDER: &str = r#"(() => {
  const Native = window.RTCPeerConnection;
  if (!Native) return;
  const t = { pcs: [], configs: [], events: [], pairs: [], localCandidates: [], firstMessageMs: null };
  window.__peerhostTest = t;
  const watch = (ch) => ch.addEventListener('message', () => {
    if (t.firstMessageMs === null) t.firstMessageMs = performance.now();
  });
  const record = async (pc) => {
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((r) => {
      if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId);
    });
    if (!pair) stats.forEach((r) => {
      if (!pair && r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') pair = r;
    });
    if (!pair) { t.pairs.push({ error: 'no selected pair' }); return; }
    const l = stats.get(pair.localCandidateId) || {};
    const r = stats.get(pair.remoteCandidateId) || {};
    t.pairs.push({
      local: l.candidateType, remote: r.candidateType,
      localAddress: `${l.address}:${l.port}`, remoteAddress: `${r.address}:${r.port}`,
      relayProtocol: l.relayProtocol || null, connectedMs: performance.now(),
    });
  };
  class Recorded extends Native {
    constructor(...args) {
      super(...args);
      t.pcs.push(this);
      t.configs.push(JSON.stringify(args[0] || null));
      t.events.push(`${Math.round(performance.now())} created`);
      this.addEventListener('datachannel', (e) => watch(e.channel));
      this.addEventListener('icecandidate', (e) => {
        if (e.candidate && e.candidate.candidate) t.localCandidates.push(e.candidate.candidate);
      });
      this.addEventListener('icegatheringstatechange', () => {
        t.events.push(`${Math.round(performance.now())} gathering ${this.iceGatheringState}`);
      });
      this.addEventListener('iceconnectionstatechange', () => {
        t.events.push(`${Math.round(performance.now())} ice ${this.iceConnectionState}`);
      });
      this.addEventListener('connectionstatechange', () => {
        if (this.connectionState === 'connected') record(this);
      });
    }
    createDataChannel(...args) {
      const ch = super.createDataChannel(...args);
      watch(ch);
      return ch;
    }
  }
  window.RTCPeerConnection = Recorded;
})();"#;

/// The demo on the public address of a topology of NAT'd homes.
pub struct NatWorld {
    /// The demo (origin, tracker, client) on the public address.
    pub server: TestServer,
    /// Dropped after the server (field order), so the address stays until it closes.
    pub topology: Topology,
}

impl NatWorld {
    /// Builds `options`' topology and starts the demo on its public address
    /// with what `demo` makes of the topology (servers bind to its public
    /// address); `None` (after a SKIPPED line) outside the loopback-only
    /// namespace, a panic there under CI or when a tool is missing.
    pub fn start(
        test: &str,
        options: TopologyOptions,
        demo: impl FnOnce(&Topology) -> peerhost_site::demo::DemoOptions,
    ) -> Option<NatWorld> {
        if !peerhost_testenv::netns_or_skip(test, "NAT tests (namespaces, nftables, Chromium)") {
            return None;
        }
        let topology = Topology::build(options).unwrap_or_else(|e| panic!("{test}: {e}"));
        let server = TestServer::start_on(topology.public_ip(), demo(&topology));
        Some(NatWorld { server, topology })
    }

    /// A browser driver whose Chromium visitors live in home `i`.
    pub fn browser_in(&self, i: usize) -> Browser {
        Browser::launch_in(self.topology.home(i))
    }

    /// `http://PUBLIC:PORT`.
    pub fn base(&self) -> String {
        self.server.url("")
    }
}

/// Writes copies of the demo's about and plates pages whose tag carries
/// `attrs` (e.g. `data-ice-servers='[…]'`), as `about-NAME.html` and
/// `plates-NAME.html`; returns their paths.
pub fn tagged_pages(server: &TestServer, name: &str, attrs: &str) -> (String, String) {
    let about = format!("/about-{name}.html");
    let plates = format!("/plates-{name}.html");
    crate::visit::tagged_copy(server, "about.html", about.trim_start_matches('/'), attrs);
    crate::visit::tagged_copy(server, "plates.html", plates.trim_start_matches('/'), attrs);
    (about, plates)
}

/// Points the tag of each page of `pages` (paths as returned by
/// [`tagged_pages`]) at the tracker `url` instead of the demo's own.
pub fn retarget_tracker(server: &TestServer, pages: &[&str], url: &str) {
    for page in pages {
        let path = server.site_dir().join(page.trim_start_matches('/'));
        let html = std::fs::read_to_string(&path).expect("tagged page");
        let retargeted = html.replace(
            "data-tracker=\"/tracker/announce\"",
            &format!("data-tracker=\"{url}\""),
        );
        assert_ne!(html, retargeted, "{page} names the demo's tracker");
        std::fs::write(&path, retargeted).expect("write page");
    }
}

/// Opens `visitor` with [`VISITOR_FLAGS`] and [`PEER_CONNECTION_RECORDER`].
/// `base` (the demo's `http://PUBLIC:PORT`) is treated as a secure context:
/// Service Workers and WebCrypto need one, and only loopback is one over
/// plain HTTP.
pub fn open_recorded(browser: &mut Browser, visitor: &str, base: &str) {
    let secure = format!("--unsafely-treat-insecure-origin-as-secure={base}");
    let mut flags = VISITOR_FLAGS.to_vec();
    flags.push(&secure);
    browser.open_scripted(visitor, &flags, Some(PEER_CONNECTION_RECORDER));
}

/// `visitor` views `about` then `plates` through the Service Worker and
/// waits until it holds the plates page's assets and the tracker knows it.
pub fn seed_pages(browser: &mut Browser, base: &str, visitor: &str, about: &str, plates: &str) {
    browser.visit_via_worker(visitor, base, about, plates);
    browser
        .wait(
            visitor,
            "peerhost.stats().assetsHeld >= 6 && peerhost.stats().announced",
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| {
            panic!(
                "{visitor} does not hold the plates page's assets or never announced: {e}\n{:#?}",
                browser.logs(visitor)
            )
        });
}

/// What `visitor`'s recorder saw: `{pcs, pairs, localCandidates, firstMessageMs}`.
pub fn recorded(browser: &mut Browser, visitor: &str) -> Value {
    browser.eval(
        visitor,
        "({ pcs: __peerhostTest.pcs.length, configs: __peerhostTest.configs, events: __peerhostTest.events, pairs: __peerhostTest.pairs, \
           localCandidates: __peerhostTest.localCandidates, firstMessageMs: __peerhostTest.firstMessageMs })",
    )
}

/// Waits (bounded) until `visitor` recorded a selected pair for a
/// connection, then returns every recorded pair as (local type, remote type).
pub fn selected_pairs(browser: &mut Browser, visitor: &str) -> Vec<(String, String)> {
    browser
        .wait(
            visitor,
            "__peerhostTest.pairs.length > 0",
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| {
            let seen = recorded(browser, visitor);
            let stats = browser.eval(visitor, "peerhost.stats()");
            panic!(
                "{visitor} never connected a peer: {e}\nrecorded: {seen}\nstats: {stats}\nlogs: {:#?}",
                browser.logs(visitor)
            )
        });
    let rec = recorded(browser, visitor);
    rec["pairs"]
        .as_array()
        .expect("pairs")
        .iter()
        .map(|p| {
            (
                p["local"].as_str().unwrap_or("?").to_owned(),
                p["remote"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

/// The candidate types (`typ X`) of every `a=candidate` line in `sdp`.
pub fn candidate_types(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "typ")?;
            words.next().map(str::to_owned)
        })
        .collect()
}

/// What the second of two visitors in two homes got (see [`share_between_homes`]).
#[derive(Debug)]
pub struct Shared {
    /// Total size of the plates page's images (every one checked byte-exact).
    pub image_bytes: u64,
    /// Image bytes the origin served to the second visitor (its counters).
    pub origin_image_bytes: u64,
    /// The second visitor's `peerhost.stats()`.
    pub stats: Value,
    /// Its recorder: `{pcs, pairs, localCandidates, firstMessageMs}`.
    pub recorded: Value,
    /// Its connections' selected pairs: (local type, remote type).
    pub pairs: Vec<(String, String)>,
}

impl Shared {
    /// Bytes the second visitor got from peers (its own count).
    pub fn from_peers(&self) -> u64 {
        self.stats["bytesFromPeers"].as_u64().unwrap_or(0)
    }

    /// When its first data-channel message arrived, ms after its plates
    /// page started loading.
    pub fn first_message_ms(&self) -> Option<f64> {
        self.recorded["firstMessageMs"].as_f64()
    }

    /// Asserts the second visitor got at least 90% of the image bytes from
    /// peers, by its own count and by the origin's.
    pub fn assert_mostly_from_peers(&self) {
        let total = self.image_bytes;
        assert!(
            self.origin_image_bytes * 10 <= total,
            "the origin served {} of {total} image bytes to the second visitor (more than 10%)",
            self.origin_image_bytes
        );
        assert!(
            self.from_peers() * 10 >= total * 9,
            "the second visitor got {} of {total} image bytes from peers",
            self.from_peers()
        );
    }
}

/// This namespace's UDP receive-buffer drops so far (`/proc/net/snmp`):
/// the public servers' (coturn's) sockets overflowing.
pub fn udp_receive_buffer_errors() -> String {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return "no Udp counters".into();
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .map(|(n, v)| format!("public side UDP {n} {v}"))
        .unwrap_or_default()
}

/// Visitor `a` in home 0 views `about` then `plates` (from the origin) and
/// holds the assets; visitor `b` in home 1 then views them too. Returns
/// what `b` got, every image checked byte-exact against the site's files.
pub fn share_between_homes(world: &NatWorld, about: &str, plates: &str) -> Shared {
    let base = world.base();
    let mut home_a = world.browser_in(0);
    open_recorded(&mut home_a, "a", &base);
    seed_pages(&mut home_a, &base, "a", about, plates);
    let after_a = world.server.image_bytes_served();

    let mut home_b = world.browser_in(1);
    open_recorded(&mut home_b, "b", &base);
    home_b.visit_via_worker("b", &base, about, plates);
    let images = home_b.images("b");
    let origin_image_bytes = world.server.image_bytes_served() - after_a;
    let stats = home_b.eval("b", "peerhost.stats()");
    assert_eq!(images.len(), 5, "the plates page shows five images");
    let image_bytes = crate::check::images_match_files(&world.server.site_dir(), &images);
    let pairs = selected_pairs(&mut home_b, "b");
    let recorded = recorded(&mut home_b, "b");
    Shared {
        image_bytes,
        origin_image_bytes,
        stats,
        recorded,
        pairs,
    }
}

/// Whether a candidate type is server-reflexive (learnt from STUN, or
/// from a peer's check through a NAT).
pub fn reflexive(kind: &str) -> bool {
    kind == "srflx" || kind == "prflx"
}
