//! One visitor (or seeder): the only type drivers talk to.
//!
//! [`Client`] composes the manifest guard, the piece store, the peers, the
//! scheduler, the upload budget and the tracker conversation into one state
//! machine. It never waits and never reads a clock.
//!
//! # The driver loop
//! Every driver (browser, native seeder, simulator, tests) runs the same
//! loop, with one way in and one way out:
//!
//! ```text
//! loop {
//!     feed one input:   client.handle_input(now, Input::…)
//!     drain outputs:    while let Some(o) = client.poll_output() { perform o }
//!     sleep until:      client.poll_timeout() or the next input, whichever first;
//!                       on the deadline feed Input::Timeout
//! }
//! ```
//!
//! [`Input`] lists everything that can happen to a client: a manifest, a
//! tracker message, SDP ready, a data channel opened, closed or delivering
//! a message, an origin answer, a hash or signature checked, the page
//! wanting an asset, a deadline. No input returns a verdict: every answer
//! (a delivered asset, a refused manifest, a banned peer) comes out of
//! [`Client::poll_output`]. Outputs ask the driver to act: send a tracker
//! message, create a WebRTC offer or answer (SDP creation is asynchronous
//! everywhere, so the core asks and is told the result through
//! [`Input::LocalSdp`]), send a frame on a data channel, close a connection,
//! fetch a byte range from the origin, hand an asset to the page. Who
//! connects to whom is the core's decision. The read-only queries
//! ([`Client::stats`], [`Client::manifest`], …) change nothing.
//!
//! # Rooms
//! Each part of the client owns its state and lives in its own file:
//!
//! - [`io`]: the vocabulary, [`Input`], [`Output`], [`Event`].
//! - `discovery`: the tracker link — announces, our offers and the answers
//!   to them, remote offers, the glare rule, when discovery has settled.
//! - `peer`: one remote peer — its phase, handshake, the per-peer frame
//!   protocol, its upload queue.
//! - `site`: the current manifest version — its piece store (the one owner
//!   of what we hold), the scheduler of that version, origin requests, the
//!   page's tickets being delivered, and the switch to a successor version.
//! - `checks`: pieces and manifests waiting for a hash or signature check
//!   (inline or by the driver).
//!
//! `mod.rs` holds the `Client` itself: the dispatch of inputs, the queries,
//! and `drive`, which runs whatever follows from the state after each input.
//!
//! # Verifying pieces: inline or deferred
//! Every piece is checked against its SHA-256 in the signed manifest. By
//! default the client hashes inline, inside the input that brought the
//! piece. With [`ClientConfig::deferred_hashing`] it instead emits
//! [`Output::HashPiece`] with a job id and the piece's bytes, keeps the
//! piece aside, and goes on when the driver reports the digest through
//! [`Input::PieceHashed`]. Nothing else changes: the piece is stored,
//! delivered, re-served or refused (and its sender banned) exactly as with
//! inline hashing, only later. This is the seam for
//!
//! - the browser, which hashes with `crypto.subtle.digest` (asynchronous,
//!   several times faster than SHA-256 compiled to WASM), and
//! - the simulator, which answers honest pieces it has hashed before from a
//!   memo keyed by the shared buffer, and hashes everything else for real.
//!
//! A driver must answer every job with the SHA-256 of exactly the bytes it
//! was given; answers to jobs of a manifest version the client has since
//! left are ignored. Piece data is held as shared [`Bytes`]: one allocation
//! per received piece, shared by the store, the frames that serve it onward
//! and [`Body`] deliveries.
//!
//! # Verifying manifest signatures: inline or deferred
//! The same seam exists for the ed25519 signature of a manifest. With
//! [`ClientConfig::deferred_signatures`] (and always when the core is built
//! without its `dalek` feature, as the browser client is), a manifest from
//! any source is first checked against the site key, then the client emits
//! [`Output::VerifySignature`] with the site key, the signed bytes and the
//! signature, and keeps the manifest aside. The driver answers with
//! [`Input::SignatureChecked`] and a bool (the browser: WebCrypto
//! `crypto.subtle.verify("Ed25519", …)`). Only then do the validity window,
//! rollback and equivocation checks run, exactly as inline, and only a
//! `true` answer can make the manifest current: until the answer nothing
//! changes, and a `false` answer refuses it as [`ManifestError::BadSignature`]
//! (a peer that sent it is banned, as inline). Answers to unknown jobs are
//! ignored. One manifest per peer is checked at a time (later ones it sends
//! meanwhile are dropped); a newer push from the tracker replaces the
//! tracker's pending one.
//!
//! # Trust
//! Every piece, from a peer or the origin, is checked against the signed
//! manifest before it is stored, delivered or served onward. A peer that
//! sends a bad piece, a piece it was not asked for, a malformed frame or an
//! invalid manifest is closed and reported ([`Event::PeerBanned`]) and its
//! tracker id is never connected again.

mod checks;
mod config;
mod discovery;
pub mod io;
mod peer;
mod site;

use std::collections::VecDeque;

#[cfg(doc)]
use crate::manifest::ManifestError;
use crate::manifest::{ManifestGuard, SiteKey, VerifiedManifest};
use crate::rng::Rng;
use crate::scheduler::ConnId;
use crate::signal::PeerId;
use crate::time::{Instant, UnixTime};
use crate::upload::UploadBudget;
use crate::vec_map::{VecMap, VecSet};

pub use checks::MAX_PENDING_SIGNATURES;
pub use config::{
    ClientConfig, MAX_PARTIAL_MANIFEST_BYTES, MAX_QUEUED_UPLOAD_BYTES,
    MAX_QUEUED_UPLOAD_BYTES_PER_PEER,
};
pub use io::{
    AssetError, Body, CloseReason, Event, HashJob, Input, ManifestSource, Misbehaviour,
    OriginError, Output, SignatureJob, Stats, Ticket,
};

use checks::{PendingHash, PendingSignature};
use discovery::TrackerLink;
use peer::{Peer, Phase};
use site::{Site, assemble};

/// One visitor or seeder of one site. See the module doc for the loop.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    guard: ManifestGuard,
    rng: Rng,
    peer_id: PeerId,
    site: Option<Site>,
    peers: VecMap<ConnId, Peer>,
    banned: VecSet<PeerId>,
    tickets: VecMap<Ticket, (String, u32)>,
    /// A newer verified manifest waiting for the page's open tickets, and
    /// the latest time to switch anyway.
    pending_switch: Option<(VerifiedManifest, Instant)>,
    /// The page's current load (tickets open without a break) has been
    /// given an asset: switching now could mix two versions in it.
    load_delivered: bool,
    tracker: TrackerLink,
    upload: UploadBudget,
    upload_wake: Option<Instant>,
    outputs: VecDeque<Output>,
    hashing: VecDeque<PendingHash>,
    next_job: u64,
    signatures: VecDeque<PendingSignature>,
    next_signature_job: u64,
    stats: Stats,
    next_conn: u64,
    next_request: u64,
    wall_offset: Option<(Instant, UnixTime)>,
}

/// Prefix of our tracker peer ids (Azureus style, as WebTorrent clients do).
pub const PEER_ID_PREFIX: &[u8; 8] = b"-PH0001-";

impl Client {
    /// A client for the site `site_key` that refuses manifests below
    /// `floor_version` (persisted from an earlier visit; 0 if none). All its
    /// random choices follow from `seed`.
    pub fn new(
        config: ClientConfig,
        site_key: SiteKey,
        floor_version: u64,
        seed: u64,
        now: Instant,
    ) -> Client {
        let mut rng = Rng::new(seed);
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(PEER_ID_PREFIX);
        id[8..].copy_from_slice(&rng.alphanumeric::<12>());
        Client {
            upload: UploadBudget::new(config.upload.clone(), now),
            config,
            guard: ManifestGuard::with_floor(site_key, floor_version),
            rng,
            peer_id: PeerId(id),
            site: None,
            peers: VecMap::new(),
            banned: VecSet::new(),
            tickets: VecMap::new(),
            pending_switch: None,
            load_delivered: false,
            tracker: TrackerLink::default(),
            upload_wake: None,
            outputs: VecDeque::new(),
            hashing: VecDeque::new(),
            next_job: 0,
            signatures: VecDeque::new(),
            next_signature_job: 0,
            stats: Stats::default(),
            next_conn: 0,
            next_request: 0,
            wall_offset: None,
        }
    }

    /// Feeds one input (see the module doc for the loop), then runs
    /// whatever follows from it. Answers come out of [`Client::poll_output`].
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Manifest {
                manifest,
                source,
                wall,
            } => self.handle_manifest(now, wall, &manifest, source),
            Input::SignatureChecked { job, valid } => self.handle_signature(now, job, valid),
            Input::PieceHashed { job, digest } => self.handle_piece_hash(now, job, digest),
            Input::AssetHeld { path, bytes } => self.add_asset(now, &path, &bytes),
            Input::Want { ticket, path } => self.want(now, ticket, path),
            Input::TrackerConnected => self.handle_tracker_connected(now),
            Input::TrackerClosed => self.handle_tracker_closed(now),
            Input::Tracker(msg) => self.handle_tracker(now, msg),
            Input::WallClock(wall) => self.set_wall_clock(now, wall),
            Input::LocalSdp { conn, sdp } => self.handle_local_sdp(now, conn, sdp),
            Input::LocalSdpFailed { conn } => self.handle_local_sdp_failed(now, conn),
            Input::PeerOpen { conn } => self.handle_peer_open(now, conn),
            Input::PeerClosed { conn } => self.handle_peer_closed(now, conn),
            Input::PeerData { conn, data } => self.handle_peer_frame(now, conn, &data),
            Input::PeerFrame { conn, frame } => self.handle_peer_message(now, conn, frame),
            Input::Origin { request, result } => self.handle_origin(now, request, result),
            Input::Timeout => self.handle_timeout(now),
            Input::LeechOnly(on) => self.set_leech_only(now, on),
            Input::RelayOnly(on) => self.config.relay_only = on,
            Input::Leave => self.leave(),
        }
    }

    /// Whether the tracker has answered an announce of the current swarm:
    /// from then on, visitors who arrive can be introduced to us.
    pub fn announced(&self) -> bool {
        self.tracker.connected
            && self.tracker.interval.is_some()
            && self
                .site
                .as_ref()
                .is_some_and(|s| self.tracker.joined == Some(s.info_hash))
    }

    /// Whether uploads are off (see [`Client::set_leech_only`]).
    pub fn leech_only(&self) -> bool {
        self.config.leech_only
    }

    /// Our tracker peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The current verified manifest.
    pub fn manifest(&self) -> Option<&VerifiedManifest> {
        self.site.as_ref().map(|s| &s.manifest)
    }

    /// The highest manifest version accepted, to persist across visits.
    pub fn version_floor(&self) -> u64 {
        self.guard.floor()
    }

    /// Running figures.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether no peer can help right now: none connected on our version and
    /// discovery has settled (alone in the swarm, or no tracker). Drivers may
    /// then send listed assets straight to the origin, as without peerhost.
    pub fn origin_only(&self, now: Instant) -> bool {
        self.site
            .as_ref()
            .is_some_and(|s| !s.scheduler.in_grace(now) && !s.scheduler.has_peers())
    }

    /// Connections whose handshake completed.
    pub fn active_peers(&self) -> usize {
        self.peers
            .values()
            .filter(|p| matches!(p.phase, Phase::Active { .. }))
            .count()
    }

    /// Whether every piece of the current manifest is held and verified.
    pub fn is_complete(&self) -> bool {
        self.site.as_ref().is_some_and(|s| s.have().is_full())
    }

    /// Whether every piece of the asset at `path` is held and verified.
    pub fn asset_complete(&self, path: &str) -> bool {
        let Some(site) = &self.site else { return false };
        site.manifest
            .manifest()
            .asset(path)
            .is_some_and(|(i, _)| site.map.asset_pieces(i as u32).all(|p| site.have().has(p)))
    }

    /// How many of the pieces of the asset at `path` are held, of how many
    /// (`None` if the current manifest does not list it, or there is none).
    pub fn asset_progress(&self, path: &str) -> Option<(u32, u32)> {
        let site = self.site.as_ref()?;
        let (i, _) = site.manifest.manifest().asset(path)?;
        let pieces = site.map.asset_pieces(i as u32);
        let listed = pieces.len() as u32;
        let held = pieces.filter(|p| site.have().has(*p)).count() as u32;
        Some((held, listed))
    }

    /// The verified bytes of a whole asset, if every piece is held.
    pub fn asset_bytes(&self, path: &str) -> Option<Vec<u8>> {
        let site = self.site.as_ref()?;
        let (i, _) = site.manifest.manifest().asset(path)?;
        assemble(site, i as u32).map(|b| b.to_vec())
    }

    /// Bytes of pieces waiting in all peers' upload queues (bounded by
    /// [`ClientConfig::max_queued_upload_bytes`]).
    pub fn upload_queue_bytes(&self) -> u64 {
        self.peers
            .values()
            .flat_map(|p| p.uploads.iter())
            .map(|(_, len)| u64::from(*len))
            .sum()
    }

    /// Bytes held for manifest offers being received from peers (bounded by
    /// [`ClientConfig::max_partial_manifest_bytes`]).
    pub fn partial_manifest_bytes(&self) -> usize {
        self.peers.values().map(|p| p.manifest_in.held()).sum()
    }

    /// Next output for the driver, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to call [`Client::handle_timeout`] next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let fixed = [
            self.site.as_ref().and_then(|s| s.scheduler.next_deadline()),
            self.announce_due(),
            self.tracker.draft.as_ref().map(|d| d.deadline),
            self.upload_wake,
            self.pending_switch.as_ref().map(|(_, at)| *at),
        ];
        let peers = self.peers.values().filter_map(|p| match p.phase {
            Phase::Offered { expires, .. } => Some(expires),
            Phase::Connecting { deadline } | Phase::AwaitingHandshake { deadline } => {
                Some(deadline)
            }
            _ => None,
        });
        fixed.into_iter().flatten().chain(peers).min()
    }
}

impl Client {
    /// Stops (or resumes) uploading: the tab was hidden for long, the
    /// connection became metered, the visitor opted out. Queued requests are
    /// rejected at once.
    fn set_leech_only(&mut self, now: Instant, on: bool) {
        self.config.leech_only = on;
        if on {
            self.reject_queued_uploads();
        }
        self.drive(now);
    }

    /// A deadline passed.
    fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| match p.phase {
                Phase::Offered { expires, .. } => expires <= now,
                Phase::Connecting { deadline } | Phase::AwaitingHandshake { deadline } => {
                    deadline <= now
                }
                _ => false,
            })
            .map(|(c, _)| *c)
            .collect();
        for conn in expired {
            self.close(conn, CloseReason::Timeout);
        }
        if self
            .tracker
            .draft
            .as_ref()
            .is_some_and(|d| d.deadline <= now)
        {
            self.maybe_send_announce(now, true);
        }
        if self.upload_wake.is_some_and(|t| t <= now) {
            self.upload_wake = None;
        }
        self.drive(now);
    }

    /// When the next announce starts: `next_announce`, but only while
    /// `drive` would act on it. A deadline it would not act on (say, while
    /// an announce is still drafted after a second `TrackerConnected`) must
    /// not reach [`Client::poll_timeout`], or the driver's loop would spin
    /// on a deadline in the past.
    fn announce_due(&self) -> Option<Instant> {
        self.tracker
            .next_announce
            .filter(|_| self.tracker.connected && self.site.is_some())
            .filter(|_| self.tracker.draft.is_none())
    }

    /// Runs everything that follows from the current state: announces,
    /// scheduling, uploads.
    fn drive(&mut self, now: Instant) {
        if self
            .pending_switch
            .as_ref()
            .is_some_and(|(_, at)| self.tickets.is_empty() || *at <= now)
        {
            let (verified, _) = self.pending_switch.take().expect("checked");
            self.switch_site(now, verified);
        }
        if self.tickets.is_empty() {
            self.load_delivered = false;
        }
        if self.announce_due().is_some_and(|t| t <= now) {
            self.start_announce(now);
        }
        if self.discovery_settled()
            && let Some(site) = &mut self.site
        {
            site.scheduler.discovery_settled();
        }
        if self.peers.values().any(Peer::on_the_way)
            && let Some(site) = &mut self.site
        {
            site.scheduler.peer_on_the_way(now);
        }
        self.schedule(now);
        self.pump_uploads(now);
    }
}
