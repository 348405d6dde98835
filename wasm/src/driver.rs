//! The browser driver loop around [`peerhost_core::client::Client`].
//!
//! Every browser callback (tracker message, data-channel message, fetch
//! completion, timer) sends a [`PageEvent`] into the driver's [`Sink`]; the
//! sink borrows the one [`PageDriver`], feeds the client through
//! [`PageDriver::handle`] (with the page's own calls below it, the only
//! place that gives the client input) and calls [`PageDriver::pump`], which
//! performs every output and re-arms the timer for the client's next
//! deadline. The sink holds only a `Weak` to the driver, so dropping the
//! [`crate::Peerhost`] handle tears everything down: peer connections
//! close, sockets close, closures drop with their owners.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;
use js_sys::{Promise, Uint8Array};
use peerhost_core::client::{
    Client, CloseReason, Event, HashJob, Input, ManifestSource, Output, SignatureJob, Ticket,
};
use peerhost_core::manifest::{SIGNATURE_LEN, SignedManifest, SiteKey};
use peerhost_core::piece::Digest;
use peerhost_core::scheduler::{ConnId, RequestId};
use peerhost_core::signal::{ClientMessage, MAX_JSON_LEN, ServerMessage, SignalError};
use peerhost_core::time::{Instant, UnixTime};
use peerhost_core::vec_map::VecMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::event::{PageEvent, Sink};
use crate::js::{js_text, now_ms, subtle};
use crate::peer_conn::{self, PeerConn};
use crate::timer::Timer;
use crate::tracker_socket::TrackerSocket;
use crate::{json, origin};

/// The handle the page's [`crate::Peerhost`] keeps.
pub type Shared = Rc<RefCell<PageDriver>>;

/// A page's pending `peerhost.fetch`.
pub struct Pending {
    pub resolve: js_sys::Function,
    pub reject: js_sys::Function,
}

/// Everything the page side of peerhost owns: the client, its tracker
/// socket and peer connections, and the page's waiting promises.
pub struct PageDriver {
    pub client: Client,
    /// Where callbacks report; holds only a `Weak` to this driver.
    sink: Sink,
    epoch_ms: f64,
    tracker: Option<TrackerSocket>,
    tracker_url: Option<String>,
    tracker_retries: u32,
    peers: VecMap<ConnId, PeerConn>,
    pending: VecMap<Ticket, Pending>,
    /// Tickets handed out so far (the next one's number).
    tickets_issued: u64,
    /// `loadManifest` promises waiting for their signature check, and
    /// whether the manifest is the page's first.
    manifest_loads: VecMap<SignatureJob, (Pending, bool)>,
    /// The `loadManifest` promise being settled by the input just fed (the
    /// verdict comes out of the client as an event, or first as a
    /// signature request), and whether the manifest is the page's first.
    loading: Option<(Pending, bool)>,
    /// The armed timer and the deadline it is for.
    timer: Option<(Instant, Timer)>,
    reconnect: Option<Timer>,
    /// Log lines for `stats()` (bounded).
    pub log: VecDeque<String>,
    pub banned: u64,
}

impl PageDriver {
    /// A driver for `client`; `epoch_ms` is `performance.now()` at start.
    pub fn new(client: Client, epoch_ms: f64, tracker_url: Option<String>) -> Shared {
        Rc::new_cyclic(|me: &std::rc::Weak<RefCell<PageDriver>>| {
            let me = me.clone();
            let sink = Sink::new(move |event| {
                let Some(rc) = me.upgrade() else { return };
                // A callback may fire while the driver is busy in another (it
                // cannot in a single-threaded event loop, but a borrow
                // failure must never panic).
                let Ok(mut d) = rc.try_borrow_mut() else {
                    return;
                };
                let now = d.now();
                d.handle(now, event);
                d.pump();
            });
            RefCell::new(PageDriver {
                client,
                sink,
                epoch_ms,
                tracker: None,
                tracker_url,
                tracker_retries: 0,
                peers: VecMap::new(),
                pending: VecMap::new(),
                tickets_issued: 0,
                manifest_loads: VecMap::new(),
                loading: None,
                timer: None,
                reconnect: None,
                log: VecDeque::new(),
                banned: 0,
            })
        })
    }

    /// The core's clock: milliseconds since the driver started.
    pub fn now(&self) -> Instant {
        Instant((now_ms() - self.epoch_ms).max(0.0) as u64)
    }

    /// Wall clock for manifest validity.
    fn wall() -> UnixTime {
        UnixTime((js_sys::Date::now() / 1000.0) as u64)
    }

    fn note(&mut self, line: String) {
        if self.log.len() >= 64 {
            self.log.pop_front();
        }
        self.log.push_back(line);
    }

    /// Feeds one event to the client. With the page's calls below
    /// (`load_manifest`, `want`, `add_asset`, `set_leech_only`), this is
    /// where the client gets its input.
    fn handle(&mut self, now: Instant, event: PageEvent) {
        match event {
            PageEvent::TrackerOpen => {
                self.tracker_retries = 0;
                self.client.handle_input(now, Input::TrackerConnected);
            }
            PageEvent::TrackerMessage(text) => self.tracker_message(now, &text),
            PageEvent::TrackerClosed => self.tracker_lost(now),
            PageEvent::Reconnect => self.connect_tracker(),
            PageEvent::Timeout => {
                // This timer has fired: the next pump must arm a new one.
                self.timer = None;
                self.client.handle_input(now, Input::Timeout);
            }
            PageEvent::LocalSdp { conn, sdp } => match sdp {
                Ok(sdp) => self.client.handle_input(now, Input::LocalSdp { conn, sdp }),
                Err(e) => {
                    self.note(e);
                    peer_conn::retire(self.peers.remove(&conn));
                    self.client
                        .handle_input(now, Input::LocalSdpFailed { conn });
                }
            },
            PageEvent::DataChannel { conn, channel } => {
                if let Some(pc) = self.peers.get(&conn) {
                    pc.attach(channel, conn, self.sink.clone());
                }
            }
            PageEvent::PeerOpen(conn) => self.client.handle_input(now, Input::PeerOpen { conn }),
            PageEvent::PeerFrame(conn, bytes) => self.client.handle_input(
                now,
                Input::PeerData {
                    conn,
                    data: Bytes::from(bytes),
                },
            ),
            PageEvent::PeerClosed(conn) => {
                peer_conn::retire(self.peers.remove(&conn));
                self.client.handle_input(now, Input::PeerClosed { conn });
            }
            PageEvent::Origin { request, result } => self.client.handle_input(
                now,
                Input::Origin {
                    request: RequestId(request.0),
                    result: result.map(Bytes::from),
                },
            ),
            PageEvent::PieceHashed { job, digest } => self
                .client
                .handle_input(now, Input::PieceHashed { job, digest }),
            PageEvent::SignatureChecked { job, verdict } => {
                self.signature_checked(now, job, verdict)
            }
        }
    }

    /// Verifies a signed manifest (the page's `loadManifest`): a promise of
    /// the current version. On the first success the tracker is contacted.
    pub fn load_manifest(&mut self, signed: &SignedManifest) -> Result<Promise, JsError> {
        let now = self.now();
        let first = self.client.manifest().is_none();
        let mut slot = None;
        let promise = Promise::new(&mut |resolve, reject| slot = Some(Pending { resolve, reject }));
        self.loading = Some((slot.expect("promise executor runs at once"), first));
        self.client.handle_input(
            now,
            Input::Manifest {
                manifest: Box::new(signed.clone()),
                source: ManifestSource::Origin,
                wall: Self::wall(),
            },
        );
        self.pump();
        // Neither refused nor waiting for a check: the current manifest.
        self.settle_load(Ok(()));
        Ok(promise)
    }

    /// A promise for the asset at `path` (from peers or the origin).
    pub fn want(&mut self, path: &str) -> Result<Promise, JsValue> {
        let now = self.now();
        let ticket = Ticket(self.tickets_issued);
        self.tickets_issued += 1;
        let mut slot = None;
        let promise = Promise::new(&mut |resolve, reject| slot = Some(Pending { resolve, reject }));
        self.pending
            .insert(ticket, slot.expect("promise executor runs at once"));
        // A refusal (no manifest, not listed) rejects the promise at once.
        self.client.handle_input(
            now,
            Input::Want {
                ticket,
                path: path.to_owned(),
            },
        );
        self.pump();
        Ok(promise)
    }

    /// Offers bytes the page already has; returns the pieces of the asset
    /// now held.
    pub fn add_asset(&mut self, path: &str, bytes: Vec<u8>) -> usize {
        let now = self.now();
        self.client.handle_input(
            now,
            Input::AssetHeld {
                path: path.to_owned(),
                bytes: Bytes::from(bytes),
            },
        );
        self.pump();
        self.client
            .asset_progress(path)
            .map_or(0, |(held, _)| held as usize)
    }

    /// Stops or resumes uploading.
    pub fn set_leech_only(&mut self, on: bool) {
        let now = self.now();
        self.client.handle_input(now, Input::LeechOnly(on));
        self.pump();
    }

    /// Use relayed candidates only (or not) for connections made from now on.
    pub fn set_relay_only(&mut self, on: bool) {
        let now = self.now();
        self.client.handle_input(now, Input::RelayOnly(on));
        self.pump();
    }

    /// Closes the tracker socket and every connection.
    pub fn close(&mut self) {
        self.tracker = None;
        for (_, pc) in self.peers.take_all() {
            peer_conn::retire(Some(pc));
        }
    }

    /// Opens the tracker socket (again), or tells the core there is none.
    fn connect_tracker(&mut self) {
        let now = self.now();
        match self.tracker_url.clone() {
            Some(url) => match TrackerSocket::open(&url, self.sink.clone()) {
                Ok(sock) => self.tracker = Some(sock),
                Err(e) => {
                    self.note(format!("tracker {url}: {e}"));
                    self.client.handle_input(now, Input::TrackerClosed);
                }
            },
            None => self.client.handle_input(now, Input::TrackerClosed),
        }
    }

    /// The tracker socket closed: tell the core, retry with backoff and jitter.
    fn tracker_lost(&mut self, now: Instant) {
        self.tracker = None;
        self.client.handle_input(now, Input::TrackerClosed);
        if self.tracker_url.is_none() {
            return;
        }
        self.tracker_retries += 1;
        let base = 1000.0 * 2f64.powi(self.tracker_retries.min(8) as i32);
        let delay = base.min(300_000.0) * (0.5 + js_sys::Math::random() * 0.5);
        let sink = self.sink.clone();
        self.reconnect = Timer::after(delay, move || sink.send(PageEvent::Reconnect));
    }

    fn tracker_message(&mut self, now: Instant, text: &str) {
        // Parsed by the browser (`JSON.parse`): no JSON parser in this module.
        let msg = if text.len() > MAX_JSON_LEN {
            Err(SignalError::TooLarge(text.len()))
        } else {
            json::parse(text)
                .map_err(SignalError::Malformed)
                .and_then(|v| ServerMessage::from_value(&v))
        };
        match msg {
            Ok(msg) => self.client.handle_input(now, Input::Tracker(msg)),
            Err(e) => self.note(format!("tracker sent something unreadable: {e}")),
        }
    }

    /// Performs every output of the client, then re-arms the timer.
    pub fn pump(&mut self) {
        while let Some(out) = self.client.poll_output() {
            self.perform(out);
        }
        let next = self.client.poll_timeout();
        // Most inputs leave the deadline where it was: keep that timer
        // rather than clearing and setting one per data-channel message.
        if next.is_some() && next == self.timer.as_ref().map(|(at, _)| *at) {
            return;
        }
        self.timer = next.and_then(|t| {
            let delay = t.as_millis().saturating_sub(self.now().as_millis()) as f64;
            let sink = self.sink.clone();
            let timer = Timer::after(delay, move || sink.send(PageEvent::Timeout))?;
            Some((t, timer))
        });
    }

    fn send_tracker(&mut self, msg: &ClientMessage) {
        if let Some(sock) = &self.tracker {
            sock.send(&json::stringify(&msg.to_value()));
        }
    }

    fn perform(&mut self, out: Output) {
        match out {
            Output::Tracker(msg) => self.send_tracker(&msg),
            Output::CreateOffer { conn, ice } => {
                match PeerConn::offer(conn, &ice, self.sink.clone()) {
                    Ok(pc) => {
                        self.peers.insert(conn, pc);
                    }
                    Err(e) => {
                        let sdp = Err(format!("cannot create a peer connection: {}", js_text(&e)));
                        let now = self.now();
                        self.handle(now, PageEvent::LocalSdp { conn, sdp });
                    }
                }
            }
            Output::AcceptOffer { conn, offer, ice } => {
                match PeerConn::answer(conn, &offer.sdp, &ice, self.sink.clone()) {
                    Ok(pc) => {
                        self.peers.insert(conn, pc);
                    }
                    Err(e) => {
                        let sdp = Err(format!("cannot answer an offer: {}", js_text(&e)));
                        let now = self.now();
                        self.handle(now, PageEvent::LocalSdp { conn, sdp });
                    }
                }
            }
            Output::ApplyAnswer { conn, answer } => {
                if let Some(pc) = self.peers.get(&conn) {
                    pc.apply_answer(&answer.sdp);
                }
            }
            Output::SendPeer { conn, frame } => {
                if let Some(pc) = self.peers.get_mut(&conn)
                    && pc.send(frame.encode()).is_err()
                {
                    // It does not read: drop it (reported as any close).
                    self.note(format!(
                        "closed peer {}: over {} bytes waiting to be sent",
                        conn.0,
                        peer_conn::MAX_OUTBOX_BYTES
                    ));
                    self.sink.send(PageEvent::PeerClosed(conn));
                }
            }
            Output::HashPiece { job, data } => self.hash_piece(job, &data),
            Output::VerifySignature {
                job,
                site_key,
                message,
                signature,
            } => {
                // The page's manifest waits for this check.
                if let Some(load) = self.loading.take() {
                    self.manifest_loads.insert(job, load);
                }
                self.verify_signature(job, &site_key, &message, &signature)
            }
            Output::ClosePeer { conn, reason } => {
                if let Some(pc) = self.peers.remove(&conn) {
                    self.note(format!("closed peer {}: {}", conn.0, close_text(&reason)));
                    peer_conn::retire(Some(pc));
                }
            }
            Output::FetchOrigin {
                request,
                path,
                range,
            } => {
                let sink = self.sink.clone();
                origin::fetch_range(path, range, move |result| {
                    sink.send(PageEvent::Origin { request, result });
                });
            }
            Output::Deliver {
                ticket,
                content_type,
                body,
                ..
            } => {
                if let Some(p) = self.pending.remove(&ticket) {
                    // One copy, piece by piece, straight into JS memory.
                    let out = Uint8Array::new_with_length(body.len() as u32);
                    let mut at = 0u32;
                    for piece in body.pieces() {
                        let end = at + piece.len() as u32;
                        out.subarray(at, end).copy_from(piece);
                        at = end;
                    }
                    let obj = js_sys::Object::new();
                    let _ = js_sys::Reflect::set(&obj, &"body".into(), &out);
                    let _ = js_sys::Reflect::set(&obj, &"contentType".into(), &content_type.into());
                    let _ = p.resolve.call1(&JsValue::NULL, &obj);
                }
            }
            Output::Failed { ticket, error } => {
                if let Some(p) = self.pending.remove(&ticket) {
                    let _ = p
                        .reject
                        .call1(&JsValue::NULL, &JsError::new(&error.to_string()).into());
                }
            }
            Output::Event(ev) => {
                match &ev {
                    Event::PeerBanned { .. } => self.banned += 1,
                    Event::ManifestAccepted {
                        source: ManifestSource::Origin,
                        ..
                    } => self.settle_load(Ok(())),
                    Event::ManifestRefused {
                        source: ManifestSource::Origin,
                        error,
                    } => self.settle_load(Err(error.to_string())),
                    _ => {}
                }
                self.note(event_line(&ev));
            }
        }
    }

    /// Hashes a piece with `crypto.subtle.digest` (the browser's own
    /// SHA-256, off the main thread and ~3x faster than SHA-256 in WASM)
    /// and reports the digest; see `ClientConfig::deferred_hashing`. Only
    /// used where `crypto.subtle` exists (secure contexts).
    fn hash_piece(&mut self, job: HashJob, data: &[u8]) {
        let digest = subtle().and_then(|s| s.digest_with_str_and_u8_array("SHA-256", data).ok());
        let Some(promise) = digest else {
            // Cannot happen where deferred hashing was chosen; an all-zero
            // digest fails verification, so the piece is refused, never trusted.
            let now = self.now();
            let digest = Digest([0; 32]);
            self.handle(now, PageEvent::PieceHashed { job, digest });
            return;
        };
        let sink = self.sink.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let digest = match wasm_bindgen_futures::JsFuture::from(promise).await {
                Ok(buf) => {
                    let bytes = Uint8Array::new(&buf);
                    let mut d = [0u8; 32];
                    if bytes.length() == 32 {
                        bytes.copy_to(&mut d);
                    }
                    Digest(d)
                }
                Err(_) => Digest([0; 32]),
            };
            sink.send(PageEvent::PieceHashed { job, digest });
        });
    }

    /// Checks a manifest signature with WebCrypto Ed25519 (`crypto.subtle`,
    /// Chromium 137+, Firefox 129+, Safari 17+) and reports the verdict;
    /// see `ClientConfig::deferred_signatures`. A browser without it
    /// answers `false`: the manifest is refused and the page stands down.
    fn verify_signature(
        &mut self,
        job: SignatureJob,
        key: &SiteKey,
        message: &[u8],
        signature: &[u8; SIGNATURE_LEN],
    ) {
        let started = subtle().ok_or(JsValue::UNDEFINED).and_then(|s| {
            let usages = js_sys::Array::of1(&"verify".into());
            let raw = Uint8Array::from(&key.as_bytes()[..]);
            let import = s.import_key_with_str("raw", &raw, "Ed25519", false, &usages)?;
            Ok((s, import))
        });
        let (subtle, import) = match started {
            Ok(v) => v,
            Err(e) => {
                let now = self.now();
                let verdict = Err(js_text(&e));
                self.handle(now, PageEvent::SignatureChecked { job, verdict });
                return;
            }
        };
        // Copied into JS now: the check finishes after this borrow ends.
        let message = Uint8Array::from(message);
        let signature = Uint8Array::from(&signature[..]);
        let sink = self.sink.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let verdict = async {
                let key: web_sys::CryptoKey = JsFuture::from(import).await?.unchecked_into();
                let check = subtle.verify_with_str_and_js_u8_array_and_js_u8_array(
                    "Ed25519", &key, &signature, &message,
                )?;
                Ok::<_, JsValue>(JsFuture::from(check).await?.as_bool() == Some(true))
            }
            .await
            .map_err(|e| js_text(&e));
            sink.send(PageEvent::SignatureChecked { job, verdict });
        });
    }

    /// The verdict of a signature check (`Err`: WebCrypto could not check,
    /// which the core is told as `false`); settles a waiting `loadManifest`.
    fn signature_checked(
        &mut self,
        now: Instant,
        job: SignatureJob,
        verdict: Result<bool, String>,
    ) {
        if let Err(e) = &verdict {
            self.note(format!("WebCrypto Ed25519 unavailable: {e}"));
        }
        self.loading = self.manifest_loads.remove(&job);
        self.client.handle_input(
            now,
            Input::SignatureChecked {
                job,
                valid: *verdict.as_ref().unwrap_or(&false),
            },
        );
        if let Err(e) = verdict {
            self.settle_load(Err(format!("WebCrypto Ed25519 unavailable: {e}")));
        }
        // The verdict comes out as an event, which settles the page's
        // promise (see `perform`); none comes for an unchanged manifest.
        self.pump();
        self.settle_load(Ok(()));
    }

    /// Settles the `loadManifest` promise in progress, if any: `Ok` with the
    /// current version (connecting to the tracker the first time), or
    /// rejected with why.
    fn settle_load(&mut self, result: Result<(), String>) {
        let Some((p, first)) = self.loading.take() else {
            return;
        };
        match result {
            Ok(()) => {
                if first {
                    self.connect_tracker();
                }
                let version = self.client.manifest().map_or(0, |m| m.version()) as f64;
                let _ = p.resolve.call1(&JsValue::NULL, &version.into());
            }
            Err(e) => {
                let _ = p.reject.call1(&JsValue::NULL, &JsError::new(&e).into());
            }
        }
    }
}

/// A log line for an event (Display only: Debug formatting of the core's
/// types would cost the bundle more than it tells).
fn event_line(ev: &Event) -> String {
    let from = |s: &ManifestSource| match s {
        ManifestSource::Origin => "the origin".to_owned(),
        ManifestSource::Tracker => "the tracker".to_owned(),
        ManifestSource::Peer(c) => format!("peer {}", c.0),
        ManifestSource::Storage => "storage".to_owned(),
    };
    match ev {
        Event::ManifestAccepted { version, source } => {
            format!("ManifestAccepted: version {version} from {}", from(source))
        }
        Event::ManifestRefused { source, error } => {
            format!("ManifestRefused from {}: {error}", from(source))
        }
        Event::PeerConnected { conn } => format!("PeerConnected: peer {}", conn.0),
        Event::PeerBanned { conn, reason, .. } => {
            format!("PeerBanned: peer {}: {reason}", conn.0)
        }
    }
}

fn close_text(reason: &CloseReason) -> String {
    match reason {
        CloseReason::Misbehaved(m) => format!("misbehaved: {m}"),
        CloseReason::WrongSite => "another site's peer".into(),
        CloseReason::Timeout => "timed out".into(),
        CloseReason::Unresponsive => "unresponsive".into(),
        CloseReason::Leaving => "leaving".into(),
        CloseReason::Duplicate => "duplicate".into(),
        CloseReason::TrackerLost => "tracker lost".into(),
    }
}
