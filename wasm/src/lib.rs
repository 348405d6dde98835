//! peerhost-wasm: the browser driver of the peerhost core.
//!
//! The loader script (`js/peerhost.js`, the one tag a site adds) creates a
//! [`Peerhost`] with the site key from the tag, feeds it the site's signed
//! manifest, and asks it for assets on behalf of the Service Worker
//! (`js/peerhost-sw.js`). Everything else — the tracker WebSocket, the
//! WebRTC data channels, origin `Range` fetches, timers — is driven here
//! around the sans-IO [`peerhost_core::client::Client`] (see
//! [`driver`] for the loop). The connections (`tracker_socket`,
//! `peer_conn`, `origin`, `timer`) report [`event`]s into a sink and never
//! reach into the driver; `js` and `json` are small helpers over JS values.

mod driver;
mod event;
mod js;
mod json;
mod origin;
mod peer_conn;
mod timer;
mod tracker_socket;

use js_sys::Promise;
use peerhost_core::client::{Client, ClientConfig};
use peerhost_core::manifest::{MAX_MANIFEST_LEN, SignedManifest, SiteKey};
use peerhost_core::upload::UploadLimits;
use wasm_bindgen::prelude::*;

use driver::{PageDriver, Shared};
use js::{now_ms, opt_bool, opt_f64, opt_str, set};

/// One site's peerhost client in this page.
#[wasm_bindgen]
pub struct Peerhost {
    driver: Shared,
}

#[wasm_bindgen]
impl Peerhost {
    /// Starts a client. `options`: `siteKey` (required, base64url), and
    /// optionally `tracker` (ws:// URL), `floorVersion` (highest version
    /// seen on an earlier visit), `maxPeers`, `uploadBytesPerSec`,
    /// `uploadTotalBytes`, `leechOnly`, `switchDelaySecs`, `iceServers`
    /// (JSON text: a list of `RTCIceServer` dictionaries; a bad list is
    /// ignored with a console warning) and `relayOnly`.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<Peerhost, JsError> {
        let site_key: SiteKey = opt_str(&options, "siteKey")
            .ok_or_else(|| JsError::new("peerhost: siteKey is required"))?
            .parse()
            .map_err(|e| JsError::new(&format!("peerhost: {e}")))?;
        let mut config = ClientConfig::default();
        if let Some(n) = opt_f64(&options, "maxPeers") {
            config.max_peers = (n as usize).clamp(1, 64);
        }
        let mut upload = UploadLimits::default();
        if let Some(r) = opt_f64(&options, "uploadBytesPerSec") {
            upload.bytes_per_sec = Some(r.max(0.0) as u64);
        }
        if let Some(t) = opt_f64(&options, "uploadTotalBytes") {
            upload.total = Some(t.max(0.0) as u64);
        }
        config.upload = upload;
        config.leech_only = opt_bool(&options, "leechOnly").unwrap_or(false);
        if let Some(text) = opt_str(&options, "iceServers") {
            match ice_servers(&text) {
                Ok(servers) => config.ice_servers = servers,
                Err(e) => web_sys::console::warn_1(
                    &format!("peerhost: data-ice-servers ignored: {e}").into(),
                ),
            }
        }
        config.relay_only = opt_bool(&options, "relayOnly").unwrap_or(false);
        // Manifest signatures (WebCrypto Ed25519: there is no ed25519 code in
        // this module) and pieces (SHA-256) are checked by the browser.
        if js::subtle().is_none() {
            return Err(JsError::new(
                "peerhost: needs crypto.subtle (https:// or localhost)",
            ));
        }
        config.deferred_hashing = true;
        config.deferred_signatures = true;
        if let Some(s) = opt_f64(&options, "switchDelaySecs") {
            config.max_switch_delay = std::time::Duration::from_secs_f64(s.clamp(0.0, 60.0));
        }
        let floor = opt_f64(&options, "floorVersion").unwrap_or(0.0) as u64;
        let mut seed = [0u8; 8];
        // Randomness for ids and tie-breaks; not for secrets.
        for b in &mut seed {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
        let epoch = now_ms();
        let client = Client::new(
            config,
            site_key,
            floor,
            u64::from_le_bytes(seed),
            peerhost_core::time::Instant(0),
        );
        let driver = PageDriver::new(client, epoch, opt_str(&options, "tracker"));
        Ok(Peerhost { driver })
    }

    /// Verifies the signed manifest (`peerhost.json` text) with the site key
    /// (the signature with WebCrypto Ed25519); a promise of the current
    /// version, rejected if the manifest is refused. On the first success
    /// the tracker is contacted.
    #[wasm_bindgen(js_name = loadManifest)]
    pub fn load_manifest(&self, json: &str) -> Result<Promise, JsError> {
        // Parsed by the browser (`JSON.parse`): no JSON parser in this module.
        if json.len() > 4 * MAX_MANIFEST_LEN {
            return Err(JsError::new("malformed manifest: manifest JSON too large"));
        }
        let value = json::parse(json)
            .map_err(|e| JsError::new(&format!("malformed manifest: JSON: {e}")))?;
        let signed =
            SignedManifest::from_value(&value).map_err(|e| JsError::new(&e.to_string()))?;
        self.driver.borrow_mut().load_manifest(&signed)
    }

    /// The current manifest as `peerhost.json` text (for the Service Worker
    /// to start peerhost again when the origin is down), or `undefined`.
    #[wasm_bindgen(js_name = manifestJson)]
    pub fn manifest_json(&self) -> Option<String> {
        let d = self.driver.borrow();
        d.client
            .manifest()
            .map(|m| json::stringify(&m.signed().to_value()))
    }

    /// Paths of the assets the current manifest lists.
    #[wasm_bindgen(js_name = listedPaths)]
    pub fn listed_paths(&self) -> js_sys::Array {
        let d = self.driver.borrow();
        d.client
            .manifest()
            .map(|m| {
                m.manifest()
                    .assets
                    .iter()
                    .map(|a| JsValue::from_str(&a.path))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A promise of `{ body: Uint8Array, contentType }` for a listed asset,
    /// from peers or the origin, verified. Rejects for unlisted paths.
    pub fn fetch(&self, path: &str) -> Result<Promise, JsValue> {
        self.driver.borrow_mut().want(path)
    }

    /// Offers bytes the page already has (browser cache) for seeding;
    /// only pieces matching the manifest are taken. Returns the pieces of
    /// the asset now held.
    #[wasm_bindgen(js_name = addAsset)]
    pub fn add_asset(&self, path: &str, bytes: Vec<u8>) -> usize {
        self.driver.borrow_mut().add_asset(path, bytes)
    }

    /// Stop or resume uploading (hidden tab, metered network, opt-out).
    #[wasm_bindgen(js_name = setLeechOnly)]
    pub fn set_leech_only(&self, on: bool) {
        self.driver.borrow_mut().set_leech_only(on);
    }

    /// Use relayed (TURN) candidates only, or not, for connections made
    /// from now on (the visitor's choice).
    #[wasm_bindgen(js_name = setRelayOnly)]
    pub fn set_relay_only(&self, on: bool) {
        self.driver.borrow_mut().set_relay_only(on);
    }

    /// Highest manifest version accepted: persist it to refuse rollbacks on
    /// the next visit.
    #[wasm_bindgen(js_name = versionFloor)]
    pub fn version_floor(&self) -> f64 {
        self.driver.borrow().client.version_floor() as f64
    }

    /// Figures for people and tests, as a plain object.
    pub fn stats(&self) -> JsValue {
        let d = self.driver.borrow();
        let s = d.client.stats();
        let per_asset = js_sys::Object::new();
        for (path, (peers, origin)) in &s.per_asset {
            let o = js_sys::Object::new();
            set(&o, "peers", *peers as f64);
            set(&o, "origin", *origin as f64);
            set(&per_asset, path, o);
        }
        let now = d.now();
        let manifest = d.client.manifest();
        let v = js_sys::Object::new();
        set(
            &v,
            "version",
            manifest.map_or(JsValue::NULL, |m| (m.version() as f64).into()),
        );
        set(&v, "originOnly", d.client.origin_only(now));
        set(&v, "leechOnly", d.client.leech_only());
        set(&v, "announced", d.client.announced());
        // How peers are reached; a count, never the servers' credentials.
        let ice = d.client.ice_config();
        let mode = if ice.relay_only() {
            "relay-only"
        } else {
            "direct"
        };
        set(&v, "iceMode", mode);
        set(&v, "iceServers", ice.servers.len() as f64);
        let held = manifest.map_or(0, |m| {
            m.manifest()
                .assets
                .iter()
                .filter(|a| d.client.asset_complete(&a.path))
                .count()
        });
        set(&v, "assetsHeld", held as f64);
        set(&v, "peers", d.client.active_peers() as f64);
        set(&v, "bytesFromPeers", s.bytes_from_peers as f64);
        set(&v, "bytesFromOrigin", s.bytes_from_origin as f64);
        set(&v, "bytesUploaded", s.bytes_uploaded as f64);
        set(&v, "piecesRejected", s.pieces_rejected as f64);
        set(&v, "peersBanned", s.peers_banned as f64);
        set(&v, "requestTimeouts", s.request_timeouts as f64);
        set(&v, "perAsset", per_asset);
        let log = js_sys::Array::new();
        for line in &d.log {
            log.push(&line.as_str().into());
        }
        set(&v, "log", log);
        v.into()
    }

    /// Closes every connection and stops.
    pub fn close(self) {
        self.driver.borrow_mut().close();
    }
}

/// The tag's `data-ice-servers`: JSON text of a list of `RTCIceServer`s,
/// parsed by the browser and checked by the core.
fn ice_servers(text: &str) -> Result<Vec<peerhost_core::ice::IceServer>, String> {
    if text.len() > 16 * 1024 {
        return Err("longer than 16 KiB".into());
    }
    let value = json::parse(text).map_err(|e| format!("not JSON: {e}"))?;
    peerhost_core::ice::servers_from_value(&value).map_err(|e| e.to_string())
}

/// Hashes `data` in 16 KiB pieces with the core's verifier, as verifying a
/// download does (for measurements). Returns the XOR of the digests' first
/// words, so the work cannot be optimised away.
#[wasm_bindgen(js_name = hashPieces)]
pub fn hash_pieces(data: &[u8]) -> u32 {
    data.chunks(peerhost_core::manifest::DEFAULT_PIECE_SIZE as usize)
        .map(|c| {
            let d = peerhost_core::piece::Digest::of(c);
            u32::from_le_bytes([d.0[0], d.0[1], d.0[2], d.0[3]])
        })
        .fold(0, |a, b| a ^ b)
}
