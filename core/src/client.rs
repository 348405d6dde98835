//! One visitor (or seeder): the only type drivers talk to.
//!
//! [`Client`] composes the manifest guard, the piece store, the peers, the
//! scheduler, the upload budget and the tracker conversation into one state
//! machine. It never waits and never reads a clock.
//!
//! # The driver loop
//! Every driver (browser, native seeder, simulator, tests) runs the same
//! loop:
//!
//! ```text
//! loop {
//!     feed one input:   handle_manifest / handle_tracker / handle_tracker_connected
//!                       handle_local_sdp / handle_peer_open / handle_peer_closed
//!                       handle_peer_frame / handle_origin / want / handle_timeout
//!     drain outputs:    while let Some(o) = client.poll_output() { perform o }
//!     sleep until:      client.poll_timeout() or the next input, whichever first;
//!                       on the deadline call handle_timeout(now)
//! }
//! ```
//!
//! Outputs ask the driver to act: send a tracker message, create a WebRTC
//! offer or answer (SDP creation is asynchronous everywhere, so the core asks
//! and is told the result through [`Client::handle_local_sdp`]), send bytes
//! on a data channel, close a connection, fetch a byte range from the origin,
//! hand an asset to the page. Who connects to whom is the core's decision.
//!
//! # Verifying pieces: inline or deferred
//! Every piece is checked against its SHA-256 in the signed manifest. By
//! default the client hashes inline, inside the input that brought the
//! piece. With [`ClientConfig::deferred_hashing`] it instead emits
//! [`Output::HashPiece`] with a job id and the piece's bytes, keeps the
//! piece aside, and goes on when the driver reports the digest through
//! [`Client::handle_piece_hash`]. Nothing else changes: the piece is stored,
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
//! [`Client::handle_signature`] and a bool (the browser: WebCrypto
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

use std::collections::VecDeque;
use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;

use crate::manifest::{
    Accepted, ManifestError, ManifestGuard, SIGNATURE_LEN, SignedManifest, SiteKey,
    VerifiedManifest,
};
use crate::piece::{Bitfield, Digest, PieceIndex, PieceMap};
use crate::rng::Rng;
use crate::scheduler::{Action, ConnId, OriginReasons, RequestId, Scheduler, SchedulerConfig};
use crate::signal::{
    Announce, AnnounceEvent, AnswerMsg, ClientMessage, InfoHash, Offer, OfferId, PeerId,
    RelayedAnswer, RelayedOffer, Sdp, ServerMessage, swarm_id,
};
use crate::time::{Instant, UnixTime};
use crate::upload::{Allowance, UploadBudget, UploadLimits};
use crate::vec_map::{VecMap, VecSet};
use crate::wire::{
    Frame, FrameError, MAX_MANIFEST_LEN, MAX_REQUESTS_IN_FLIGHT, manifest_offer_frames,
};

/// Everything a client can be tuned by. Defaults suit a browser visitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Piece selection and deadlines.
    pub scheduler: SchedulerConfig,
    /// Piece selection and deadlines while the manifest marks the origin as
    /// under pressure ([`crate::manifest::FLAG_ORIGIN_UNDER_PRESSURE`]).
    pub scheduler_under_pressure: SchedulerConfig,
    /// Most peer connections, including ones being set up.
    pub max_peers: usize,
    /// Connections others may open beyond `max_peers` (we make offers
    /// only up to `max_peers`). The tracker relays a newcomer's offers to
    /// random members of the swarm; when every member is full, newcomers
    /// meet nobody and each fetch a whole copy from the origin (8 of the
    /// simulated flash crowd's 1000 visitors did, docs/sim.md).
    pub inbound_headroom: usize,
    /// Offers sent with one announce (WebTorrent sends up to 5).
    pub offers_per_announce: usize,
    /// Regular re-announce interval when the tracker names none.
    pub announce_interval: Duration,
    /// Shortest gap between two announces (re-announce after losing peers).
    pub min_announce_gap: Duration,
    /// How long an unanswered offer's connection is kept.
    pub offer_timeout: Duration,
    /// From answer to open data channel and handshake.
    pub connect_timeout: Duration,
    /// What this client uploads at most.
    pub upload: UploadLimits,
    /// Never upload (Save-Data, metered connection, opt-out).
    pub leech_only: bool,
    /// Tries per piece at the origin before the asset fails.
    pub origin_attempts: u32,
    /// Longest a newer manifest waits for the page's open requests (one
    /// page load) to finish on the version they started with, so a load
    /// never mixes two versions; after that they are moved to the new
    /// version. Zero switches at once (the site allows mixing).
    pub max_switch_delay: Duration,
    /// Hand piece hashing to the driver ([`Output::HashPiece`] /
    /// [`Client::handle_piece_hash`]) instead of hashing inline; see the
    /// module doc.
    pub deferred_hashing: bool,
    /// Hand the ed25519 check of manifest signatures to the driver
    /// ([`Output::VerifySignature`] / [`Client::handle_signature`]) instead
    /// of checking inline; see the module doc. Without the core's `dalek`
    /// feature signatures are always checked this way.
    pub deferred_signatures: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            scheduler: SchedulerConfig::default(),
            scheduler_under_pressure: SchedulerConfig::origin_under_pressure(),
            max_peers: 8,
            inbound_headroom: 4,
            offers_per_announce: 5,
            announce_interval: Duration::from_secs(120),
            min_announce_gap: Duration::from_secs(5),
            offer_timeout: Duration::from_secs(50),
            connect_timeout: Duration::from_secs(20),
            upload: UploadLimits::default(),
            leech_only: false,
            origin_attempts: 3,
            max_switch_delay: Duration::from_secs(10),
            deferred_hashing: false,
            deferred_signatures: false,
        }
    }
}

/// Identifies one piece-hashing job ([`Output::HashPiece`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashJob(pub u64);

/// Identifies one signature check ([`Output::VerifySignature`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignatureJob(pub u64);

/// What [`Client::handle_manifest`] did with a manifest it did not refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestStatus {
    /// Every check passed (inline signature check).
    Checked(Accepted),
    /// Waiting for the driver's signature check ([`Output::VerifySignature`]);
    /// nothing has changed yet. The verdict is what
    /// [`Client::handle_signature`] returns for this job (and an event).
    AwaitingSignature(SignatureJob),
}

/// An asset's verified bytes, as the pieces that make it up: shared with
/// the client's store, not copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    pieces: Vec<Bytes>,
    len: usize,
}

impl Body {
    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the asset is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pieces, in order.
    pub fn pieces(&self) -> &[Bytes] {
        &self.pieces
    }

    /// The bytes in one contiguous buffer (one copy).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for p in &self.pieces {
            out.extend_from_slice(p);
        }
        out
    }
}

/// A page's request for one asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(pub u64);

/// Why [`Client::want`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WantError {
    /// No manifest has been accepted yet.
    #[error("no manifest yet")]
    NoManifest,
    /// The path is not a listed asset: it is never fetched through peerhost.
    #[error("{0} is not listed in the manifest")]
    NotListed(String),
}

/// Why an asset could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssetError {
    /// The origin failed or served bytes that do not match the manifest,
    /// and no peer had the pieces.
    #[error("{path}: origin failed ({reason}) and no peer had the data")]
    Unavailable {
        /// The asset.
        path: String,
        /// The last origin failure.
        reason: String,
    },
    /// A newer manifest no longer lists the asset.
    #[error("{0} is not listed in the current manifest")]
    NoLongerListed(String),
}

/// What a driver reports about an origin fetch that did not produce bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OriginError(pub String);

/// Where a manifest came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestSource {
    /// Fetched from the site's origin.
    Origin,
    /// Pushed by the tracker.
    Tracker,
    /// Passed on by a peer.
    Peer(ConnId),
    /// Restored from the client's own storage.
    Storage,
}

/// Why a peer was dropped for misbehaving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Misbehaviour {
    /// Sent bytes that fail the manifest's hash.
    #[error("piece {0} failed verification")]
    BadPiece(PieceIndex),
    /// Sent a piece nobody asked it for.
    #[error("unrequested piece {0}")]
    UnrequestedPiece(PieceIndex),
    /// Sent bytes that are not a frame.
    #[error("malformed frame: {0}")]
    MalformedFrame(FrameError),
    /// Broke the conversation (no handshake first, wrong bitfield, piece
    /// index out of range, manifest chunks out of order).
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    /// Offered a manifest that fails verification.
    #[error("invalid manifest: {0}")]
    BadManifest(ManifestError),
}

/// Why the client closes a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer misbehaved (also reported as [`Event::PeerBanned`]).
    Misbehaved(Misbehaviour),
    /// Another site's peer.
    WrongSite,
    /// Offer never answered, channel never opened, or no handshake in time.
    Timeout,
    /// It kept letting requests time out.
    Unresponsive,
    /// We are leaving ([`Client::leave`]).
    Leaving,
    /// Already connected to that peer through another connection.
    Duplicate,
    /// The tracker connection went away before this one was set up.
    TrackerLost,
}

/// Something the driver may want to show or log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A manifest became current.
    ManifestAccepted {
        /// Its version.
        version: u64,
        /// Where it came from.
        source: ManifestSource,
    },
    /// A manifest was refused.
    ManifestRefused {
        /// Where it came from.
        source: ManifestSource,
        /// Why.
        error: ManifestError,
    },
    /// A data channel finished its handshake.
    PeerConnected {
        /// The connection.
        conn: ConnId,
    },
    /// A misbehaving peer was dropped; report it.
    PeerBanned {
        /// The connection.
        conn: ConnId,
        /// Its tracker id, if known.
        peer: Option<PeerId>,
        /// What it did.
        reason: Misbehaviour,
    },
}

/// An action for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this message to the tracker.
    Tracker(ClientMessage),
    /// Create a peer connection with a data channel labelled
    /// [`crate::wire::CHANNEL_LABEL`] and an offer; report it with
    /// [`Client::handle_local_sdp`].
    CreateOffer {
        /// The new connection.
        conn: ConnId,
    },
    /// Create a peer connection from a remote offer and an answer to it;
    /// report the answer with [`Client::handle_local_sdp`].
    AcceptOffer {
        /// The new connection.
        conn: ConnId,
        /// The remote offer.
        offer: Sdp,
    },
    /// Apply the remote answer to the connection we offered.
    ApplyAnswer {
        /// The connection.
        conn: ConnId,
        /// The remote answer.
        answer: Sdp,
    },
    /// Send one frame on the data channel (as one message:
    /// [`Frame::encode`]; in-memory drivers may pass the value itself to
    /// [`Client::handle_peer_message`]).
    SendPeer {
        /// The connection.
        conn: ConnId,
        /// The frame.
        frame: Frame,
    },
    /// Compute the SHA-256 of `data` and report it with
    /// [`Client::handle_piece_hash`] (only with
    /// [`ClientConfig::deferred_hashing`]).
    HashPiece {
        /// Id to answer with.
        job: HashJob,
        /// The bytes to hash.
        data: Bytes,
    },
    /// Check the ed25519 `signature` over `message` under `site_key` and
    /// report whether it is valid with [`Client::handle_signature`] (only
    /// with deferred signatures: see [`ClientConfig::deferred_signatures`]).
    VerifySignature {
        /// Id to answer with.
        job: SignatureJob,
        /// The public key (32 bytes of an ed25519 point).
        site_key: SiteKey,
        /// The signed bytes (the manifest's canonical encoding).
        message: Bytes,
        /// The signature.
        signature: [u8; SIGNATURE_LEN],
    },
    /// Close and forget the connection.
    ClosePeer {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
    },
    /// Fetch `range` (byte offsets, end exclusive) of `path` from the
    /// origin, without credentials, and report with [`Client::handle_origin`].
    FetchOrigin {
        /// Id to answer with.
        request: RequestId,
        /// Asset path.
        path: String,
        /// Byte range within the asset.
        range: Range<u64>,
    },
    /// The verified asset for a ticket.
    Deliver {
        /// The page's ticket.
        ticket: Ticket,
        /// Asset path.
        path: String,
        /// Its content type.
        content_type: String,
        /// Every byte, verified.
        body: Body,
        /// The manifest version the bytes were verified against (a page
        /// load finishes on the version it started with, even after a
        /// newer one was accepted).
        version: u64,
    },
    /// The asset for a ticket cannot be had.
    Failed {
        /// The page's ticket.
        ticket: Ticket,
        /// Why.
        error: AssetError,
    },
    /// Something to show or log.
    Event(Event),
}

/// Running figures of one client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Verified bytes received from peers.
    pub bytes_from_peers: u64,
    /// Verified bytes received from the origin.
    pub bytes_from_origin: u64,
    /// Bytes of pieces sent to peers.
    pub bytes_uploaded: u64,
    /// Pieces that failed verification (from peers or the origin).
    pub pieces_rejected: u64,
    /// Peers dropped for misbehaving.
    pub peers_banned: u64,
    /// Requests we timed out on.
    pub request_timeouts: u64,
    /// Pieces sent to the origin, by why.
    pub origin_reasons: OriginReasons,
    /// Per asset path: (bytes from peers, bytes from origin).
    pub per_asset: VecMap<String, (u64, u64)>,
}

/// How a connection is being set up, or that it is up.
#[derive(Debug, Clone)]
enum Phase {
    /// We asked the driver for an offer.
    MakingOffer,
    /// Our offer is at the tracker, waiting for an answer.
    Offered { offer_id: OfferId, expires: Instant },
    /// We asked the driver to answer a remote offer.
    MakingAnswer {
        remote: PeerId,
        offer_id: OfferId,
        info_hash: InfoHash,
    },
    /// SDP exchanged; waiting for the channel to open.
    Connecting { deadline: Instant },
    /// Channel open; our handshake sent, theirs awaited.
    AwaitingHandshake { deadline: Instant },
    /// Handshaken.
    Active { version: u64 },
}

#[derive(Debug)]
struct Peer {
    remote: Option<PeerId>,
    phase: Phase,
    /// Pieces we cancelled: a late copy is ignored, not a violation.
    cancelled: VecSet<PieceIndex>,
    /// Their requests, queued until the upload budget allows.
    uploads: VecDeque<PieceIndex>,
    /// A newer manifest they are sending us: version, total length, bytes.
    manifest_in: Option<(u64, u32, Vec<u8>)>,
    /// What they hold of their own version (kept when it differs from ours,
    /// so that switching to it needs no new handshake from them).
    their_have: Option<Bitfield>,
    /// What our last handshake to them said we hold, until theirs on our
    /// version arrives (pieces stored in between are announced then).
    told: Option<Bitfield>,
}

impl Peer {
    fn new(remote: Option<PeerId>, phase: Phase) -> Peer {
        Peer {
            remote,
            phase,
            cancelled: VecSet::new(),
            uploads: VecDeque::new(),
            manifest_in: None,
            their_have: None,
            told: None,
        }
    }
    fn is_open(&self) -> bool {
        matches!(
            self.phase,
            Phase::AwaitingHandshake { .. } | Phase::Active { .. }
        )
    }

    /// Answered (or answering) and not yet past the handshake.
    fn on_the_way(&self) -> bool {
        matches!(
            self.phase,
            Phase::MakingAnswer { .. } | Phase::Connecting { .. } | Phase::AwaitingHandshake { .. }
        )
    }
}

/// The pieces of the current manifest version.
#[derive(Debug)]
struct Site {
    manifest: VerifiedManifest,
    map: PieceMap,
    store: Vec<Option<Bytes>>,
    scheduler: Scheduler,
    info_hash: InfoHash,
    origin_attempts: VecMap<PieceIndex, u32>,
    origin_requests: VecMap<RequestId, OriginFetch>,
    /// Added to the scheduler's request ids, which restart at 0 with each
    /// version, so a late answer for an older version is never taken for
    /// one of this version.
    request_base: u64,
}

/// An origin request: its pieces, and, once answered, the pieces still
/// being hashed and the first failure.
#[derive(Debug)]
struct OriginFetch {
    pieces: Range<PieceIndex>,
    hashing: u32,
    bad: Option<String>,
}

/// Whose piece is being hashed.
#[derive(Debug, Clone, Copy)]
enum HashFor {
    Peer {
        conn: ConnId,
        remote: Option<PeerId>,
    },
    Origin(RequestId),
}

/// A manifest waiting for the driver's signature check.
#[derive(Debug)]
struct PendingSignature {
    job: u64,
    signed: SignedManifest,
    source: ManifestSource,
    /// The wall clock when it arrived: the validity window is judged then.
    wall: UnixTime,
    /// The tracker id of the peer that sent it, to ban it even if gone.
    remote: Option<PeerId>,
}

/// Most manifests waiting for a signature check at once; beyond, manifests
/// from peers are dropped unchecked (as if never sent).
pub const MAX_PENDING_SIGNATURES: usize = 16;

/// A piece waiting for its digest from the driver.
#[derive(Debug)]
struct PendingHash {
    job: u64,
    version: u64,
    piece: PieceIndex,
    data: Bytes,
    from: HashFor,
}

impl Site {
    fn version(&self) -> u64 {
        self.manifest.version()
    }
    fn have(&self) -> &Bitfield {
        self.scheduler.done()
    }
}

/// An announce waiting for the offers the driver is still creating.
#[derive(Debug)]
struct AnnounceDraft {
    waiting: VecSet<ConnId>,
    offers: Vec<Offer>,
    deadline: Instant,
}

#[derive(Debug, Default)]
struct TrackerLink {
    connected: bool,
    /// The driver reported the tracker unreachable (or has none).
    unavailable: bool,
    /// The swarm we announced to and have not left.
    joined: Option<InfoHash>,
    next_announce: Option<Instant>,
    last_announce: Option<Instant>,
    interval: Option<Duration>,
    draft: Option<AnnounceDraft>,
    offers: VecMap<OfferId, ConnId>,
    /// Offers in the last announce, and answers to them so far.
    offers_sent: u64,
    answers: u64,
    /// Answers to expect: our offers, or fewer if the swarm is smaller.
    expected_answers: Option<u64>,
}

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
    next_ticket: u64,
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
            next_ticket: 0,
            next_request: 0,
            wall_offset: None,
        }
    }

    /// Stops (or resumes) uploading: the tab was hidden for long, the
    /// connection became metered, the visitor opted out. Queued requests are
    /// rejected at once.
    pub fn set_leech_only(&mut self, now: Instant, on: bool) {
        self.config.leech_only = on;
        if on {
            self.reject_queued_uploads();
        }
        self.drive(now);
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

    /// The verified bytes of a whole asset, if every piece is held.
    pub fn asset_bytes(&self, path: &str) -> Option<Vec<u8>> {
        let site = self.site.as_ref()?;
        let (i, _) = site.manifest.manifest().asset(path)?;
        assemble(site, i as u32).map(|b| b.to_vec())
    }

    /// Next output for the driver, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When to call [`Client::handle_timeout`] next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let fixed = [
            self.site.as_ref().and_then(|s| s.scheduler.next_deadline()),
            self.tracker.next_announce,
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

    // ----------------------------------------------------------------- inputs

    /// A signed manifest arrived (from the origin, the tracker, storage).
    /// `wall` is the wall clock, for the validity window.
    ///
    /// With deferred signatures (see the module doc) a manifest for our
    /// site key is not judged yet: the answer is
    /// [`ManifestStatus::AwaitingSignature`] and the verdict comes from
    /// [`Client::handle_signature`].
    pub fn handle_manifest(
        &mut self,
        now: Instant,
        wall: UnixTime,
        signed: &SignedManifest,
        source: ManifestSource,
    ) -> Result<ManifestStatus, ManifestError> {
        self.wall_offset = Some((now, wall));
        #[cfg(feature = "dalek")]
        if !self.config.deferred_signatures {
            let result = self.guard.accept(signed, wall);
            self.manifest_checked(now, source, &result);
            self.drive(now);
            return result.map(ManifestStatus::Checked);
        }
        // The site key first, as inline: another site's manifest is refused
        // without asking for a signature check.
        let expected = *self.guard.site_key();
        let found = signed.manifest().site_key;
        if found != expected {
            let result = Err(ManifestError::WrongSiteKey { expected, found });
            self.manifest_checked(now, source, &result);
            self.drive(now);
            return result.map(ManifestStatus::Checked);
        }
        let job = self.next_signature_job;
        self.next_signature_job += 1;
        let remote = match source {
            ManifestSource::Peer(conn) => self.peers.get(&conn).and_then(|p| p.remote),
            _ => None,
        };
        self.signatures.push_back(PendingSignature {
            job,
            signed: signed.clone(),
            source,
            wall,
            remote,
        });
        self.outputs.push_back(Output::VerifySignature {
            job: SignatureJob(job),
            site_key: expected,
            message: Bytes::copy_from_slice(signed.signed_bytes()),
            signature: *signed.signature(),
        });
        Ok(ManifestStatus::AwaitingSignature(SignatureJob(job)))
    }

    /// Whether the driver checks signatures (see the module doc).
    fn defers_signatures(&self) -> bool {
        self.config.deferred_signatures || cfg!(not(feature = "dalek"))
    }

    /// The driver's answer to signature check `job` ([`Output::VerifySignature`]):
    /// whether the signature is valid. Runs every other check of the
    /// manifest and returns the verdict (`None` for an unknown job: already
    /// answered). A `false` answer refuses the manifest, and a peer that
    /// sent it is banned.
    pub fn handle_signature(
        &mut self,
        now: Instant,
        job: SignatureJob,
        valid: bool,
    ) -> Option<Result<Accepted, ManifestError>> {
        let k = self.signatures.iter().position(|p| p.job == job.0)?;
        let p = self.signatures.remove(k).expect("found");
        // The job names exactly these bytes, key and signature.
        let result = self.guard.accept_with(&p.signed, p.wall, |_, _, _| valid);
        self.manifest_checked(now, p.source, &result);
        if let (
            ManifestSource::Peer(conn),
            Err(
                e @ (ManifestError::BadSignature
                | ManifestError::WrongSiteKey { .. }
                | ManifestError::Malformed(_)),
            ),
        ) = (p.source, &result)
        {
            // Signed by someone else, or forged: the peer lied (as inline).
            if self.peers.contains_key(&conn) {
                self.ban(conn, Misbehaviour::BadManifest(e.clone()));
            } else if let Some(id) = p.remote {
                // Gone before its manifest was judged: never again.
                self.banned.insert(id);
            }
        }
        self.drive(now);
        Some(result)
    }

    /// A manifest was judged: make it current (now or after the page load)
    /// or report the refusal.
    fn manifest_checked(
        &mut self,
        now: Instant,
        source: ManifestSource,
        result: &Result<Accepted, ManifestError>,
    ) {
        match result {
            Ok(Accepted::Newer { .. }) => {
                let verified = self.guard.current().expect("just accepted").clone();
                self.outputs
                    .push_back(Output::Event(Event::ManifestAccepted {
                        version: verified.version(),
                        source,
                    }));
                // A page load that already got assets of this version
                // finishes on it (see `drive`); otherwise switch now: open
                // tickets that got nothing yet simply move along.
                if self.site.is_some()
                    && !self.tickets.is_empty()
                    && self.load_delivered
                    && !self.config.max_switch_delay.is_zero()
                {
                    let at = self
                        .pending_switch
                        .as_ref()
                        .map_or(now + self.config.max_switch_delay, |(_, at)| *at);
                    self.pending_switch = Some((verified, at));
                } else {
                    self.pending_switch = None;
                    self.switch_site(now, verified);
                }
            }
            Ok(Accepted::Unchanged) => {}
            Err(error) => {
                self.outputs
                    .push_back(Output::Event(Event::ManifestRefused {
                        source,
                        error: error.clone(),
                    }));
            }
        }
    }

    /// Offers the client verified bytes of a whole asset it already holds
    /// (a seeder's files, the browser's cache). Pieces that fail their hash
    /// are ignored; returns how many pieces were taken.
    pub fn add_asset(&mut self, now: Instant, path: &str, bytes: &[u8]) -> usize {
        let Some(site) = &self.site else { return 0 };
        let Some((ai, _)) = site.manifest.manifest().asset(path) else {
            return 0;
        };
        let mut taken = 0;
        for piece in site.map.asset_pieces(ai as u32) {
            let p = self.piece_ref(piece);
            let start = p.offset as usize;
            let Some(data) = bytes.get(start..start + p.len as usize) else {
                continue;
            };
            if self
                .site
                .as_ref()
                .expect("site")
                .map
                .verify(piece, data)
                .is_ok()
                && self.store_piece(now, piece, Bytes::copy_from_slice(data), None)
            {
                taken += 1;
            }
        }
        self.drive(now);
        taken
    }

    /// The page wants the asset at `path`. The answer comes as
    /// [`Output::Deliver`] or [`Output::Failed`] with the returned ticket.
    pub fn want(&mut self, now: Instant, path: &str) -> Result<Ticket, WantError> {
        let site = self.site.as_mut().ok_or(WantError::NoManifest)?;
        let (ai, _) = site
            .manifest
            .manifest()
            .asset(path)
            .ok_or_else(|| WantError::NotListed(path.to_owned()))?;
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        self.tickets.insert(ticket, (path.to_owned(), ai as u32));
        for piece in site.map.asset_pieces(ai as u32) {
            site.scheduler.want(piece, ticket.0, now);
        }
        self.deliver_ready(None);
        self.drive(now);
        Ok(ticket)
    }

    /// The tracker connection is up.
    pub fn handle_tracker_connected(&mut self, now: Instant) {
        self.tracker.connected = true;
        self.tracker.unavailable = false;
        self.tracker.joined = None;
        self.outputs
            .push_back(Output::Tracker(ClientMessage::SubscribeManifest {
                site_key: *self.guard.site_key(),
                have_version: self.guard.floor(),
            }));
        if let Some(site) = &mut self.site {
            self.tracker.next_announce = Some(now);
            // Discovery starts now, not when the manifest arrived.
            site.scheduler.restart_grace(now);
        }
        self.drive(now);
    }

    /// Leaves politely: a `stopped` announce for the swarm we are in and a
    /// close for every connection. The client can be dropped afterwards.
    pub fn leave(&mut self) {
        if let (true, Some(info_hash)) = (self.tracker.connected, self.tracker.joined.take()) {
            let msg = self.stopped(info_hash);
            self.outputs.push_back(msg);
        }
        self.tracker.next_announce = None;
        self.tracker.draft = None;
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for conn in conns {
            self.close(conn, CloseReason::Leaving);
        }
    }

    /// Whether every piece of the asset at `path` is held and verified.
    pub fn asset_complete(&self, path: &str) -> bool {
        let Some(site) = &self.site else { return false };
        site.manifest
            .manifest()
            .asset(path)
            .is_some_and(|(i, _)| site.map.asset_pieces(i as u32).all(|p| site.have().has(p)))
    }

    /// The tracker connection failed or closed — or the driver has no
    /// tracker at all (call this once at start then). Connections already
    /// set up stay; ones waiting on signalling are closed; pieces no
    /// connected peer has go to the origin without waiting for discovery.
    pub fn handle_tracker_closed(&mut self, now: Instant) {
        self.tracker.connected = false;
        self.tracker.unavailable = true;
        self.tracker.joined = None;
        self.tracker.next_announce = None;
        self.tracker.draft = None;
        self.tracker.offers.clear();
        let waiting: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                matches!(
                    p.phase,
                    Phase::MakingOffer | Phase::Offered { .. } | Phase::MakingAnswer { .. }
                )
            })
            .map(|(c, _)| *c)
            .collect();
        for conn in waiting {
            self.close(conn, CloseReason::TrackerLost);
        }
        if let Some(s) = &mut self.site {
            s.scheduler.end_grace();
        }
        self.drive(now);
    }

    /// A message from the tracker.
    pub fn handle_tracker(&mut self, now: Instant, msg: ServerMessage) {
        match msg {
            ServerMessage::AnnounceResponse {
                info_hash,
                interval,
                complete,
                incomplete,
            } => {
                if Some(info_hash) == self.tracker.joined {
                    let interval = Duration::from_secs(interval.clamp(10, 3600));
                    self.tracker.interval = Some(interval);
                    self.tracker.next_announce = Some(now + interval);
                    // The counts include us. Alone: nothing to wait for. With
                    // others, wait for the answers to our offers (the
                    // offer-less first announce does not settle anything).
                    let others = (complete + incomplete).saturating_sub(1);
                    if others == 0 {
                        self.tracker.expected_answers = Some(0);
                    } else if self.tracker.offers_sent > 0 {
                        self.tracker.expected_answers = Some(self.tracker.offers_sent.min(others));
                    }
                }
            }
            ServerMessage::Offer(offer) => self.on_remote_offer(offer),
            ServerMessage::Answer(answer) => self.on_remote_answer(answer),
            ServerMessage::ManifestPush { manifest, .. } => {
                match SignedManifest::from_bytes(&manifest) {
                    Ok(signed) => {
                        // A newer push replaces one still being checked.
                        self.signatures
                            .retain(|p| p.source != ManifestSource::Tracker);
                        let wall = self.wall_estimate(now);
                        let _ = self.handle_manifest(now, wall, &signed, ManifestSource::Tracker);
                    }
                    Err(error) => self
                        .outputs
                        .push_back(Output::Event(Event::ManifestRefused {
                            source: ManifestSource::Tracker,
                            error,
                        })),
                }
            }
            ServerMessage::Error { .. }
            | ServerMessage::ScrapeResponse { .. }
            | ServerMessage::PublishResult { .. } => {}
        }
        self.drive(now);
    }

    /// Wall clock extrapolated from the last one the driver gave us.
    fn wall_estimate(&self, now: Instant) -> UnixTime {
        match self.wall_offset {
            Some((at, wall)) => UnixTime(wall.0 + now.saturating_since(at).as_secs()),
            None => UnixTime(0),
        }
    }

    /// Tells the client the wall clock (call when it changes a lot, or
    /// periodically; manifests from the tracker and peers are checked
    /// against it).
    pub fn set_wall_clock(&mut self, now: Instant, wall: UnixTime) {
        self.wall_offset = Some((now, wall));
    }

    /// The driver finished creating the offer or answer it was asked for.
    pub fn handle_local_sdp(&mut self, now: Instant, conn: ConnId, sdp: Sdp) {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        match peer.phase.clone() {
            Phase::MakingOffer => {
                let offer_id = OfferId(self.rng.alphanumeric::<20>());
                peer.phase = Phase::Offered {
                    offer_id,
                    expires: now + self.config.offer_timeout,
                };
                self.tracker.offers.insert(offer_id, conn);
                if let Some(d) = &mut self.tracker.draft
                    && d.waiting.remove(&conn)
                {
                    d.offers.push(Offer {
                        offer_id,
                        offer: sdp,
                    });
                }
                self.maybe_send_announce(now, false);
            }
            Phase::MakingAnswer {
                remote,
                offer_id,
                info_hash,
            } => {
                peer.phase = Phase::Connecting {
                    deadline: now + self.config.connect_timeout,
                };
                self.outputs
                    .push_back(Output::Tracker(ClientMessage::Answer(AnswerMsg {
                        info_hash,
                        peer_id: self.peer_id,
                        to_peer_id: remote,
                        offer_id,
                        answer: sdp,
                    })));
            }
            _ => {}
        }
        self.drive(now);
    }

    /// The driver could not create the SDP it was asked for.
    pub fn handle_local_sdp_failed(&mut self, now: Instant, conn: ConnId) {
        if let Some(d) = &mut self.tracker.draft {
            d.waiting.remove(&conn);
        }
        self.forget(conn);
        self.maybe_send_announce(now, false);
        self.drive(now);
    }

    /// The data channel of `conn` opened.
    pub fn handle_peer_open(&mut self, now: Instant, conn: ConnId) {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        if peer.is_open() {
            // Reported twice (an answerer may see its channel already open
            // and then get the open event too): one handshake is enough.
            return;
        }
        peer.phase = Phase::AwaitingHandshake {
            deadline: now + self.config.connect_timeout,
        };
        if let Some(frame) = self.handshake_frame() {
            self.send(conn, frame);
            self.remember_told(conn);
        }
        self.drive(now);
    }

    /// The connection closed (remote close, ICE failure, channel error).
    pub fn handle_peer_closed(&mut self, now: Instant, conn: ConnId) {
        self.forget(conn);
        self.reannounce_if_lonely(now);
        self.drive(now);
    }

    /// One data-channel message from `conn`.
    pub fn handle_peer_frame(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        if !self.peers.get(&conn).is_some_and(Peer::is_open) {
            return;
        }
        match Frame::decode(bytes) {
            Ok(frame) => self.on_checked_frame(now, conn, frame),
            Err(e) => self.ban(conn, Misbehaviour::MalformedFrame(e)),
        }
        self.drive(now);
    }

    /// One frame from `conn`, passed as a value by an in-memory driver (the
    /// simulator): checked against the decoder's limits, then handled as
    /// [`Client::handle_peer_frame`] would. Piece data is kept, not copied.
    pub fn handle_peer_message(&mut self, now: Instant, conn: ConnId, frame: Frame) {
        if !self.peers.get(&conn).is_some_and(Peer::is_open) {
            return;
        }
        match frame.check() {
            Ok(()) => self.on_checked_frame(now, conn, frame),
            Err(e) => self.ban(conn, Misbehaviour::MalformedFrame(e)),
        }
        self.drive(now);
    }

    fn on_checked_frame(&mut self, now: Instant, conn: ConnId, frame: Frame) {
        if let Err(m) = self.on_frame(now, conn, frame) {
            self.ban(conn, m);
        }
    }

    /// The SHA-256 of the bytes of hashing job `job` ([`Output::HashPiece`]).
    /// Unknown jobs (already answered, or of a version the client left)
    /// are ignored.
    pub fn handle_piece_hash(&mut self, now: Instant, job: HashJob, digest: Digest) {
        let Some(k) = self.hashing.iter().position(|h| h.job == job.0) else {
            return;
        };
        let h = self.hashing.remove(k).expect("found");
        let Some(site) = &self.site else { return };
        if site.version() != h.version {
            return;
        }
        let ok = site.map.get(h.piece).is_some_and(|p| p.hash == digest);
        self.piece_checked(now, h.piece, h.data, h.from, ok);
        self.drive(now);
    }

    /// Checks `data` against the manifest, inline or through the driver.
    fn verify_piece(&mut self, now: Instant, piece: PieceIndex, data: Bytes, from: HashFor) {
        let site = self.site.as_ref().expect("site");
        let Some(p) = site.map.get(piece) else {
            return self.piece_checked(now, piece, data, from, false);
        };
        if data.len() != p.len as usize {
            return self.piece_checked(now, piece, data, from, false);
        }
        if !self.config.deferred_hashing {
            let ok = Digest::of(&data) == p.hash;
            return self.piece_checked(now, piece, data, from, ok);
        }
        let job = self.next_job;
        self.next_job += 1;
        self.hashing.push_back(PendingHash {
            job,
            version: site.version(),
            piece,
            data: data.clone(),
            from,
        });
        self.outputs.push_back(Output::HashPiece {
            job: HashJob(job),
            data,
        });
    }

    /// A piece's hash was checked: store it, or refuse it and blame its sender.
    fn piece_checked(
        &mut self,
        now: Instant,
        piece: PieceIndex,
        data: Bytes,
        from: HashFor,
        ok: bool,
    ) {
        let len = data.len() as u64;
        let asset = self
            .site
            .as_ref()
            .and_then(|s| s.map.get(piece))
            .map(|p| p.asset);
        match from {
            HashFor::Peer { conn, remote } => {
                if ok && let Some(asset) = asset {
                    // A copy that lost a race (endgame, or the origin too)
                    // while both were being hashed counts for nothing.
                    if self.store_piece(now, piece, data, Some(conn)) {
                        self.stats.bytes_from_peers += len;
                        self.count_asset(asset, len, 0);
                    }
                } else {
                    self.stats.pieces_rejected += 1;
                    if self.peers.contains_key(&conn) {
                        self.ban(conn, Misbehaviour::BadPiece(piece));
                    } else if let Some(id) = remote {
                        // Gone before its bytes were judged: never again.
                        self.banned.insert(id);
                    }
                }
            }
            HashFor::Origin(request) => {
                if ok && let Some(asset) = asset {
                    if self.store_piece(now, piece, data, None) {
                        self.stats.bytes_from_origin += len;
                        self.count_asset(asset, 0, len);
                    }
                } else {
                    self.stats.pieces_rejected += 1;
                    self.origin_failed(piece);
                }
                self.origin_piece_done(request, (!ok).then_some("bytes do not match the manifest"));
            }
        }
    }

    /// One piece of an origin answer was judged; the request is finished
    /// when the last one is.
    fn origin_piece_done(&mut self, request: RequestId, bad: Option<&str>) {
        let Some(site) = &mut self.site else { return };
        let Some(fetch) = site.origin_requests.get_mut(&request) else {
            return;
        };
        if fetch.bad.is_none() {
            fetch.bad = bad.map(str::to_owned);
        }
        fetch.hashing = fetch.hashing.saturating_sub(1);
        if fetch.hashing > 0 {
            return;
        }
        let fetch = site.origin_requests.remove(&request).expect("present");
        site.scheduler
            .origin_finished(RequestId(request.0 - site.request_base));
        if let Some(reason) = fetch.bad {
            self.fail_exhausted(&reason);
        }
    }

    /// The origin answered the fetch `request` with the bytes of its range,
    /// or failed.
    pub fn handle_origin(
        &mut self,
        now: Instant,
        request: RequestId,
        result: Result<Vec<u8>, OriginError>,
    ) {
        let Some(site) = &mut self.site else { return };
        let Some(fetch) = site.origin_requests.get_mut(&request) else {
            return;
        };
        if fetch.hashing > 0 {
            return; // answered twice
        }
        let pieces = fetch.pieces.clone();
        match result {
            Ok(body) => {
                let body = Bytes::from(body);
                fetch.hashing = pieces.len() as u32;
                let base = site.map.get(pieces.start).map_or(0, |p| p.offset);
                for piece in pieces {
                    let p = self.piece_ref(piece);
                    let from = (p.offset - base) as usize;
                    let to = from + p.len as usize;
                    let data = if to <= body.len() {
                        body.slice(from..to)
                    } else {
                        Bytes::new()
                    };
                    self.verify_piece(now, piece, data, HashFor::Origin(request));
                }
            }
            Err(e) => {
                site.origin_requests.remove(&request);
                site.scheduler
                    .origin_finished(RequestId(request.0 - site.request_base));
                for piece in pieces {
                    self.origin_failed(piece);
                }
                self.fail_exhausted(&e.0);
            }
        }
        self.drive(now);
    }

    /// A deadline passed.
    pub fn handle_timeout(&mut self, now: Instant) {
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

    // ----------------------------------------------------------- the engine

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
        if self.tracker.connected
            && self.site.is_some()
            && self.tracker.draft.is_none()
            && self.tracker.next_announce.is_some_and(|t| t <= now)
        {
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

    /// Whether waiting longer would not meet more peers: the tracker is
    /// unreachable, or every offer it could relay was answered and every
    /// connection in progress has opened or failed.
    fn discovery_settled(&self) -> bool {
        if self.tracker.unavailable {
            return true;
        }
        let Some(expected) = self.tracker.expected_answers else {
            return false;
        };
        self.tracker.answers >= expected && !self.peers.values().any(Peer::on_the_way)
    }

    fn schedule(&mut self, now: Instant) {
        let Some(site) = &mut self.site else { return };
        let actions = site.scheduler.poll(now, &site.map, &mut self.rng);
        for action in actions {
            match action {
                Action::Request { conn, piece } => {
                    if let Some(p) = self.peers.get_mut(&conn) {
                        p.cancelled.remove(&piece);
                    }
                    self.send(conn, Frame::Request { piece });
                }
                Action::Cancel { conn, piece } => {
                    self.stats.request_timeouts += 1;
                    self.cancel(conn, piece);
                }
                Action::Drop { conn } => self.close(conn, CloseReason::Unresponsive),
                Action::Origin {
                    request,
                    pieces,
                    reasons,
                } => {
                    self.stats.origin_reasons.add(&reasons);
                    let site = self.site.as_mut().expect("site");
                    let first = *site.map.get(pieces.start).expect("piece");
                    let last = *site.map.get(pieces.end - 1).expect("piece");
                    let asset = &site.manifest.manifest().assets[first.asset as usize];
                    let request = RequestId(site.request_base + request.0);
                    site.origin_requests.insert(
                        request,
                        OriginFetch {
                            pieces: pieces.clone(),
                            hashing: 0,
                            bad: None,
                        },
                    );
                    self.next_request = self.next_request.max(request.0 + 1);
                    self.outputs.push_back(Output::FetchOrigin {
                        request,
                        path: asset.path.clone(),
                        range: first.offset..last.offset + u64::from(last.len),
                    });
                }
            }
        }
    }

    fn cancel(&mut self, conn: ConnId, piece: PieceIndex) {
        if let Some(p) = self.peers.get_mut(&conn) {
            p.cancelled.insert(piece);
        }
        self.send(conn, Frame::Cancel { piece });
    }

    fn start_announce(&mut self, now: Instant) {
        let site = self.site.as_ref().expect("announce needs a site");
        let info_hash = site.info_hash;
        if let Some(old) = self.tracker.joined.filter(|h| *h != info_hash) {
            let msg = self.stopped(old);
            self.outputs.push_back(msg);
            self.tracker.joined = None;
        }
        if self.tracker.joined != Some(info_hash) {
            // Join at once without offers: the answer tells the swarm's size
            // while WebRTC offers are still being made, so a visitor who is
            // alone stops waiting for peers a round trip after connecting.
            let left = site.map.len() - site.have().count();
            self.outputs
                .push_back(Output::Tracker(ClientMessage::Announce(Announce {
                    info_hash,
                    peer_id: self.peer_id,
                    numwant: Some(0),
                    uploaded: self.stats.bytes_uploaded,
                    downloaded: self.stats.bytes_from_peers,
                    left: Some(u64::from(left)),
                    event: AnnounceEvent::Started,
                    offers: Vec::new(),
                })));
            self.tracker.joined = Some(info_hash);
            self.tracker.offers_sent = 0;
        }
        // Offers from the previous announce that nobody answered are stale.
        let stale: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| matches!(p.phase, Phase::MakingOffer | Phase::Offered { .. }))
            .map(|(c, _)| *c)
            .collect();
        for conn in stale {
            self.close(conn, CloseReason::Timeout);
        }
        let busy = self.peers.len();
        let n = self
            .config
            .offers_per_announce
            .min(self.config.max_peers.saturating_sub(busy));
        let mut waiting = VecSet::new();
        for _ in 0..n {
            let conn = self.new_conn(None, Phase::MakingOffer);
            waiting.insert(conn);
            self.outputs.push_back(Output::CreateOffer { conn });
        }
        self.tracker.draft = Some(AnnounceDraft {
            waiting,
            offers: Vec::new(),
            deadline: now + Duration::from_secs(5),
        });
        self.tracker.next_announce = None;
        self.maybe_send_announce(now, false);
    }

    /// A `stopped` announce leaving the swarm `info_hash`.
    fn stopped(&self, info_hash: InfoHash) -> Output {
        Output::Tracker(ClientMessage::Announce(Announce {
            info_hash,
            peer_id: self.peer_id,
            numwant: Some(0),
            uploaded: self.stats.bytes_uploaded,
            downloaded: self.stats.bytes_from_peers,
            left: None,
            event: AnnounceEvent::Stopped,
            offers: Vec::new(),
        }))
    }

    /// Sends the drafted announce once every offer is in (or `force`).
    fn maybe_send_announce(&mut self, now: Instant, force: bool) {
        let Some(draft) = &self.tracker.draft else {
            return;
        };
        if !draft.waiting.is_empty() && !force {
            return;
        }
        let draft = self.tracker.draft.take().expect("checked");
        for conn in draft.waiting {
            // Offers that did not arrive in time are abandoned.
            self.close(conn, CloseReason::Timeout);
        }
        let Some(site) = &self.site else { return };
        let first = self.tracker.joined != Some(site.info_hash);
        let left = site.map.len() - site.have().count();
        let msg = Announce {
            info_hash: site.info_hash,
            peer_id: self.peer_id,
            numwant: Some(draft.offers.len() as u64),
            uploaded: self.stats.bytes_uploaded,
            downloaded: self.stats.bytes_from_peers,
            left: Some(u64::from(left)),
            event: if first {
                AnnounceEvent::Started
            } else {
                AnnounceEvent::Update
            },
            offers: draft.offers,
        };
        self.tracker.offers_sent = msg.offers.len() as u64;
        self.tracker.answers = 0;
        self.tracker.expected_answers = None;
        self.tracker.joined = Some(site.info_hash);
        self.tracker.last_announce = Some(now);
        // Until the tracker answers with its interval, retry on ours.
        self.tracker.next_announce = Some(
            now + self
                .tracker
                .interval
                .unwrap_or(self.config.announce_interval),
        );
        self.outputs
            .push_back(Output::Tracker(ClientMessage::Announce(msg)));
    }

    /// After losing peers, announce again soon (never more often than the
    /// minimum gap) to meet new ones.
    fn reannounce_if_lonely(&mut self, now: Instant) {
        if !self.tracker.connected
            || self.site.is_none()
            || self.peers.len() * 2 >= self.config.max_peers
        {
            return;
        }
        let earliest = self
            .tracker
            .last_announce
            .map_or(now, |t| t + self.config.min_announce_gap);
        let at = earliest.max(now);
        if self.tracker.next_announce.is_none_or(|t| t > at) && self.tracker.draft.is_none() {
            self.tracker.next_announce = Some(at);
        }
    }

    fn on_remote_offer(&mut self, offer: RelayedOffer) {
        let Some(site) = &self.site else { return };
        if offer.info_hash != site.info_hash
            || offer.peer_id == self.peer_id
            || self.banned.contains(&offer.peer_id)
            || self.connected_or_connecting()
                >= self.config.max_peers + self.config.inbound_headroom
            || self.peers.values().any(|p| p.remote == Some(offer.peer_id))
        {
            return;
        }
        let conn = self.new_conn(
            Some(offer.peer_id),
            Phase::MakingAnswer {
                remote: offer.peer_id,
                offer_id: offer.offer_id,
                info_hash: offer.info_hash,
            },
        );
        self.outputs.push_back(Output::AcceptOffer {
            conn,
            offer: offer.offer,
        });
    }

    fn on_remote_answer(&mut self, answer: RelayedAnswer) {
        // One-shot: an offer id is answered at most once.
        let Some(conn) = self.tracker.offers.remove(&answer.offer_id) else {
            return;
        };
        self.tracker.answers += 1;
        if self.banned.contains(&answer.peer_id) {
            self.close(conn, CloseReason::Duplicate);
            return;
        }
        // Glare: both peers offered at once and each also accepted the
        // other's offer. Both sides keep the connection offered by the
        // lower peer id, so exactly one survives.
        let other = self
            .peers
            .iter()
            .find(|(c, p)| **c != conn && p.remote == Some(answer.peer_id))
            .map(|(c, _)| *c);
        if let Some(other) = other {
            if self.peer_id < answer.peer_id {
                self.close(other, CloseReason::Duplicate);
            } else {
                self.close(conn, CloseReason::Duplicate);
                return;
            }
        }
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        if !matches!(peer.phase, Phase::Offered { .. }) {
            return;
        }
        peer.remote = Some(answer.peer_id);
        // The deadline counts from the answer: the channel should open soon.
        let deadline = match peer.phase {
            Phase::Offered { expires, .. } => expires,
            _ => unreachable!(),
        };
        peer.phase = Phase::Connecting { deadline };
        self.outputs.push_back(Output::ApplyAnswer {
            conn,
            answer: answer.answer,
        });
    }

    /// Connections past the offer stage: our own unanswered offers do not
    /// keep others from connecting to us.
    fn connected_or_connecting(&self) -> usize {
        self.peers
            .values()
            .filter(|p| !matches!(p.phase, Phase::MakingOffer | Phase::Offered { .. }))
            .count()
    }

    fn new_conn(&mut self, remote: Option<PeerId>, phase: Phase) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.peers.insert(conn, Peer::new(remote, phase));
        conn
    }

    /// Notes what the handshake just sent to `conn` said we hold.
    fn remember_told(&mut self, conn: ConnId) {
        let have = self.site.as_ref().map(|s| s.have().clone());
        if let Some(p) = self.peers.get_mut(&conn) {
            p.told = have;
        }
    }

    fn handshake_frame(&self) -> Option<Frame> {
        let site = self.site.as_ref()?;
        Some(Frame::Handshake {
            site_key: *self.guard.site_key().as_bytes(),
            version: site.version(),
            piece_count: site.map.len(),
            have: site.have().as_bytes().to_vec(),
        })
    }

    fn send(&mut self, conn: ConnId, frame: Frame) {
        if self.peers.get(&conn).is_some_and(Peer::is_open) {
            self.outputs.push_back(Output::SendPeer { conn, frame });
        }
    }

    /// Removes a connection without telling the driver (it told us).
    fn forget(&mut self, conn: ConnId) {
        if let Some(peer) = self.peers.remove(&conn) {
            if let Phase::Offered { offer_id, .. } = peer.phase {
                self.tracker.offers.remove(&offer_id);
            }
            if let Some(s) = &mut self.site {
                s.scheduler.peer_left(conn);
            }
        }
    }

    fn close(&mut self, conn: ConnId, reason: CloseReason) {
        if self.peers.contains_key(&conn) {
            self.forget(conn);
            self.outputs.push_back(Output::ClosePeer { conn, reason });
        }
    }

    fn ban(&mut self, conn: ConnId, reason: Misbehaviour) {
        let peer = self.peers.get(&conn).and_then(|p| p.remote);
        if let Some(id) = peer {
            self.banned.insert(id);
        }
        self.stats.peers_banned += 1;
        self.outputs.push_back(Output::Event(Event::PeerBanned {
            conn,
            peer,
            reason: reason.clone(),
        }));
        self.close(conn, CloseReason::Misbehaved(reason));
    }

    fn on_frame(&mut self, now: Instant, conn: ConnId, frame: Frame) -> Result<(), Misbehaviour> {
        let peer = self.peers.get(&conn).expect("open peer");
        let active_version = match peer.phase {
            Phase::Active { version } => Some(version),
            _ => None,
        };
        if active_version.is_none() && !matches!(frame, Frame::Handshake { .. }) {
            return Err(Misbehaviour::Protocol("frame before handshake"));
        }
        let site_version = self.site.as_ref().map(Site::version);
        let same_version = active_version.is_some() && active_version == site_version;
        match frame {
            Frame::Handshake {
                site_key,
                version,
                piece_count,
                have,
            } => {
                if site_key != *self.guard.site_key().as_bytes() {
                    self.close(conn, CloseReason::WrongSite);
                    return Ok(());
                }
                let have = Bitfield::from_bytes(piece_count, &have)
                    .ok_or(Misbehaviour::Protocol("bad bitfield"))?;
                let site = self.site.as_mut().expect("handshakes only with a site");
                // A repeated handshake replaces what we knew of the peer;
                // answers to requests already sent are still welcome.
                let in_flight: Vec<PieceIndex> = site
                    .scheduler
                    .peer_requests()
                    .into_iter()
                    .filter(|(c, _)| *c == conn)
                    .map(|(_, p)| p)
                    .collect();
                site.scheduler.peer_left(conn);
                self.peers
                    .get_mut(&conn)
                    .expect("open peer")
                    .cancelled
                    .extend(in_flight);
                let site = self.site.as_mut().expect("site");
                if version == site.version() {
                    if piece_count != site.map.len() {
                        return Err(Misbehaviour::Protocol(
                            "piece count differs from the manifest",
                        ));
                    }
                    site.scheduler.peer_joined(conn, have.clone());
                    // Pieces we stored after our handshake but before theirs
                    // were announced on no connection of this peer (`Have`
                    // goes to peers on our version): the first time they are
                    // on our version, announce those.
                    let told = self.peers.get_mut(&conn).and_then(|p| p.told.take());
                    if active_version != Some(version)
                        && let Some(told) = told.filter(|t| t.len() == site.map.len())
                    {
                        let news: Vec<PieceIndex> = (0..told.len())
                            .filter(|i| site.have().has(*i) && !told.has(*i))
                            .collect();
                        for piece in news {
                            self.send(conn, Frame::Have { piece });
                        }
                    }
                } else if version < site.version() {
                    let bytes = site.manifest.signed().to_bytes();
                    for f in manifest_offer_frames(site.version(), &bytes) {
                        self.send(conn, f);
                    }
                }
                self.peers.get_mut(&conn).expect("open peer").their_have = Some(have);
                let peer = self.peers.get_mut(&conn).expect("open peer");
                let first = active_version.is_none();
                peer.phase = Phase::Active { version };
                if first {
                    self.outputs
                        .push_back(Output::Event(Event::PeerConnected { conn }));
                }
            }
            Frame::Have { piece } => {
                let peer = self.peers.get_mut(&conn).expect("open peer");
                let theirs = peer.their_have.as_mut().expect("set by the handshake");
                if piece >= theirs.len() {
                    return Err(Misbehaviour::Protocol("have beyond the manifest"));
                }
                theirs.set(piece);
                if same_version {
                    self.site
                        .as_mut()
                        .expect("site")
                        .scheduler
                        .peer_has(conn, piece);
                }
            }
            Frame::Request { piece } => self.on_request(now, conn, piece, same_version),
            Frame::Cancel { piece } => {
                let peer = self.peers.get_mut(&conn).expect("open peer");
                peer.uploads.retain(|p| *p != piece);
            }
            Frame::Reject { piece } => {
                let site = self.site.as_mut().expect("site");
                if site.scheduler.is_requested_from(conn, piece) {
                    site.scheduler.rejected(conn, piece);
                } else {
                    self.peers
                        .get_mut(&conn)
                        .expect("open peer")
                        .cancelled
                        .remove(&piece);
                }
            }
            Frame::Piece { piece, data } => self.on_piece(now, conn, piece, data, same_version)?,
            Frame::ManifestOffer {
                version,
                total_len,
                offset,
                chunk,
            } => self.on_manifest_chunk(now, conn, version, total_len, offset, chunk)?,
        }
        Ok(())
    }

    fn on_request(&mut self, now: Instant, conn: ConnId, piece: PieceIndex, same_version: bool) {
        let holds = same_version && self.site.as_ref().is_some_and(|s| s.have().has(piece));
        let peer = self.peers.get_mut(&conn).expect("open peer");
        if !holds
            || self.config.leech_only
            || self.upload.exhausted()
            || peer.uploads.len() >= MAX_REQUESTS_IN_FLIGHT
        {
            self.send(conn, Frame::Reject { piece });
            return;
        }
        if !peer.uploads.contains(&piece) {
            peer.uploads.push_back(piece);
        }
        self.pump_uploads(now);
    }

    /// Sends queued pieces, one per peer in turn, while the budget allows.
    fn pump_uploads(&mut self, now: Instant) {
        if self.upload_wake.is_some_and(|t| now < t)
            || self.peers.values().all(|p| p.uploads.is_empty())
        {
            return;
        }
        self.upload_wake = None;
        loop {
            let mut sent_any = false;
            let conns: Vec<ConnId> = self
                .peers
                .iter()
                .filter(|(_, p)| !p.uploads.is_empty())
                .map(|(c, _)| *c)
                .collect();
            for conn in conns {
                let Some(site) = &self.site else { return };
                let piece = *self.peers[&conn].uploads.front().expect("non-empty");
                let len = site.map.get(piece).map_or(0, |p| u64::from(p.len));
                match self.upload.take(now, len) {
                    Allowance::Now => {
                        self.peers.get_mut(&conn).expect("peer").uploads.pop_front();
                        // The stored buffer itself: shared, not copied.
                        let data = site.store[piece as usize]
                            .clone()
                            .expect("held pieces are stored");
                        self.stats.bytes_uploaded += len;
                        self.send(conn, Frame::Piece { piece, data });
                        sent_any = true;
                    }
                    Allowance::Later(t) => {
                        self.upload_wake = Some(t);
                        return;
                    }
                    Allowance::Never => {
                        self.reject_queued_uploads();
                        return;
                    }
                }
            }
            if !sent_any {
                return;
            }
        }
    }

    /// Where a piece of the current manifest lives (callers hold a valid index).
    fn piece_ref(&self, piece: PieceIndex) -> crate::piece::PieceRef {
        *self
            .site
            .as_ref()
            .and_then(|s| s.map.get(piece))
            .expect("a piece of the current manifest")
    }

    fn reject_queued_uploads(&mut self) {
        let queued: Vec<(ConnId, Vec<PieceIndex>)> = self
            .peers
            .iter_mut()
            .map(|(c, p)| (*c, p.uploads.drain(..).collect()))
            .collect();
        for (conn, pieces) in queued {
            for piece in pieces {
                self.send(conn, Frame::Reject { piece });
            }
        }
    }

    fn on_piece(
        &mut self,
        now: Instant,
        conn: ConnId,
        piece: PieceIndex,
        data: Bytes,
        same_version: bool,
    ) -> Result<(), Misbehaviour> {
        let site = self.site.as_mut().expect("site");
        let requested = same_version && site.scheduler.is_requested_from(conn, piece);
        let peer = self.peers.get_mut(&conn).expect("open peer");
        if !requested {
            if peer.cancelled.remove(&piece) {
                return Ok(()); // a late answer to a cancelled request
            }
            return Err(Misbehaviour::UnrequestedPiece(piece));
        }
        let remote = peer.remote;
        self.verify_piece(now, piece, data, HashFor::Peer { conn, remote });
        Ok(())
    }

    fn on_manifest_chunk(
        &mut self,
        now: Instant,
        conn: ConnId,
        version: u64,
        total_len: u32,
        offset: u32,
        chunk: Vec<u8>,
    ) -> Result<(), Misbehaviour> {
        // Only a newer version is worth assembling; older offers are ignored.
        if version <= self.guard.floor() {
            return Ok(());
        }
        let peer = self.peers.get_mut(&conn).expect("open peer");
        if offset == 0 {
            peer.manifest_in = Some((
                version,
                total_len,
                Vec::with_capacity((total_len as usize).min(MAX_MANIFEST_LEN)),
            ));
        }
        let Some((v, total, buf)) = &mut peer.manifest_in else {
            return Err(Misbehaviour::Protocol("manifest chunk without a start"));
        };
        if *v != version || *total != total_len || buf.len() != offset as usize {
            return Err(Misbehaviour::Protocol("manifest chunks out of order"));
        }
        buf.extend_from_slice(&chunk);
        if buf.len() < *total as usize {
            return Ok(());
        }
        let (_, _, bytes) = peer.manifest_in.take().expect("assembling");
        let signed = SignedManifest::from_bytes(&bytes).map_err(Misbehaviour::BadManifest)?;
        if signed.manifest().version != version {
            return Err(Misbehaviour::Protocol(
                "manifest version differs from its offer",
            ));
        }
        // Deferred checks: its first manifest is judged before it may send
        // another (so a liar is banned), and the queue stays bounded.
        if self.defers_signatures()
            && (self.signatures.len() >= MAX_PENDING_SIGNATURES
                || self
                    .signatures
                    .iter()
                    .any(|p| p.source == ManifestSource::Peer(conn)))
        {
            return Ok(());
        }
        let wall = self.wall_estimate(now);
        match self.handle_manifest(now, wall, &signed, ManifestSource::Peer(conn)) {
            Ok(_) => Ok(()),
            // Signed by someone else, or forged: the peer lied.
            Err(
                e @ (ManifestError::BadSignature
                | ManifestError::WrongSiteKey { .. }
                | ManifestError::Malformed(_)),
            ) => Err(Misbehaviour::BadManifest(e)),
            // Stale or from a skewed clock: not proof of malice; ignored (and reported as refused).
            Err(_) => Ok(()),
        }
    }

    /// Stores a verified piece, tells peers, delivers finished assets.
    /// Returns whether the piece was new.
    fn store_piece(
        &mut self,
        now: Instant,
        piece: PieceIndex,
        data: Bytes,
        from: Option<ConnId>,
    ) -> bool {
        let site = self.site.as_mut().expect("site");
        if site.have().has(piece) {
            return false;
        }
        let asset = site.map.get(piece).map(|p| p.asset);
        site.store[piece as usize] = Some(data);
        site.origin_attempts.remove(&piece);
        let losers = site.scheduler.piece_verified(piece, from, now);
        let version = site.version();
        for conn in losers {
            self.cancel(conn, piece);
        }
        // A peer that holds the piece already has no use for the news: on a
        // transfer from a seed this halves the messages flowing back.
        let targets: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| matches!(p.phase, Phase::Active { version: v } if v == version))
            .filter(|(_, p)| !p.their_have.as_ref().is_some_and(|h| h.has(piece)))
            .map(|(c, _)| *c)
            .collect();
        for conn in targets {
            self.send(conn, Frame::Have { piece });
        }
        self.deliver_ready(asset);
        true
    }

    fn count_asset(&mut self, asset: u32, peers: u64, origin: u64) {
        let Some(site) = &self.site else { return };
        let path = &site.manifest.manifest().assets[asset as usize].path;
        // Look up before inserting: no path allocation per piece.
        if !self.stats.per_asset.contains_key(path) {
            self.stats.per_asset.insert(path.clone(), (0, 0));
        }
        let e = self.stats.per_asset.get_mut(path).expect("inserted");
        e.0 += peers;
        e.1 += origin;
    }

    fn origin_failed(&mut self, piece: PieceIndex) {
        if let Some(site) = &mut self.site {
            *site.origin_attempts.get_or_insert_with(piece, || 0) += 1;
        }
    }

    /// Fails the tickets whose pieces the origin could not give in
    /// `origin_attempts` tries.
    fn fail_exhausted(&mut self, reason: &str) {
        let Some(site) = &mut self.site else { return };
        let limit = self.config.origin_attempts;
        let dead: VecSet<u32> = site
            .origin_attempts
            .iter()
            .filter(|(_, n)| **n >= limit)
            .filter_map(|(p, _)| site.map.get(*p).map(|r| r.asset))
            .collect();
        if dead.is_empty() {
            return;
        }
        let failed: Vec<(Ticket, String)> = self
            .tickets
            .iter()
            .filter(|(_, (_, a))| dead.contains(a))
            .map(|(t, (p, _))| (*t, p.clone()))
            .collect();
        for (ticket, path) in failed {
            self.tickets.remove(&ticket);
            self.outputs.push_back(Output::Failed {
                ticket,
                error: AssetError::Unavailable {
                    path,
                    reason: reason.to_owned(),
                },
            });
        }
        // Stop fetching pieces nobody waits for any more.
        let still: VecSet<u32> = self.tickets.values().map(|(_, a)| *a).collect();
        let site = self.site.as_mut().expect("site");
        for asset in dead.iter().filter(|a| !still.contains(a)) {
            for piece in site.map.asset_pieces(*asset) {
                site.origin_attempts.remove(&piece);
            }
        }
        let (map, sched) = (&site.map, &mut site.scheduler);
        for asset in dead.iter().filter(|a| !still.contains(a)) {
            for piece in map.asset_pieces(*asset) {
                sched.unwant(piece);
            }
        }
    }

    /// Delivers the tickets whose asset is complete (only those for `asset`
    /// if given: the one a new piece belongs to).
    fn deliver_ready(&mut self, asset: Option<u32>) {
        let Some(site) = &self.site else { return };
        let ready: Vec<(Ticket, String, u32)> = self
            .tickets
            .iter()
            .filter(|(_, (_, a))| asset.is_none_or(|x| x == *a))
            .filter(|(_, (_, a))| site.map.asset_pieces(*a).all(|p| site.have().has(p)))
            .map(|(t, (p, a))| (*t, p.clone(), *a))
            .collect();
        for (ticket, path, asset) in ready {
            self.tickets.remove(&ticket);
            self.load_delivered = true;
            let body = assemble(site, asset).expect("all pieces held");
            let content_type = site.manifest.manifest().assets[asset as usize]
                .content_type
                .clone();
            self.outputs.push_back(Output::Deliver {
                ticket,
                path,
                content_type,
                body,
                version: site.manifest.version(),
            });
        }
    }

    /// Makes `verified` the current version: reuses pieces whose hash did
    /// not change, re-targets the page's open tickets (only when the page
    /// load outlived `max_switch_delay`; otherwise none are open), re-handshakes
    /// peers and moves to the new version's swarm.
    fn switch_site(&mut self, now: Instant, verified: VerifiedManifest) {
        // Queued uploads name pieces of the old version: refuse them before
        // the new handshake (indices mean other bytes, or nothing, after it).
        self.reject_queued_uploads();
        let map = PieceMap::new(verified.manifest());
        let mut tuning = if verified.manifest().origin_under_pressure() {
            self.config.scheduler_under_pressure.clone()
        } else {
            self.config.scheduler.clone()
        };
        let new_version = verified.version();
        // A live update: the peers we are connected to got the same push and
        // are switching too (some may be on the new version already). Pieces
        // nobody has yet wait out the discovery grace for them (and for
        // seeders, who fetch at once) instead of every client asking the
        // origin in the same instant.
        let switching: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| matches!(p.phase, Phase::Active { version } if version < new_version))
            .map(|(c, _)| *c)
            .collect();
        // A page still waiting for an earlier version's asset has waited
        // long enough: no second grace.
        let live_update = self.site.is_some()
            && self.tickets.is_empty()
            && self
                .peers
                .values()
                .any(|p| matches!(p.phase, Phase::Active { .. }));
        if live_update {
            tuning.await_swarm = true;
        }
        let mut scheduler = Scheduler::new(tuning, map.len(), now);
        let mut store: Vec<Option<Bytes>> = vec![None; map.len() as usize];
        if let Some(old) = self.site.take() {
            // Answers to the old version's requests may still arrive: expect them.
            for (conn, piece) in old.scheduler.peer_requests() {
                self.cancel(conn, piece);
            }
            // Sorted once, searched per new piece: n log n for big sites.
            let mut by_hash: Vec<(Digest, &Bytes)> = (0..old.map.len())
                .filter_map(|i| Some((old.map.get(i)?.hash, old.store[i as usize].as_ref()?)))
                .collect();
            by_hash.sort_unstable_by_key(|(h, _)| *h);
            for i in 0..map.len() {
                let p = map.get(i).expect("in range");
                let held = by_hash
                    .binary_search_by_key(&p.hash, |(h, _)| *h)
                    .ok()
                    .map(|j| by_hash[j].1);
                if let Some(data) = held.filter(|d| d.len() == p.len as usize) {
                    store[i as usize] = Some(data.clone());
                    scheduler.piece_verified(i, None, now);
                }
            }
            // Until their handshake on the new version they hold nothing of it
            // (peers already on it are added with what they hold, below).
            for conn in &switching {
                scheduler.peer_joined(*conn, Bitfield::new(map.len()));
            }
        }
        if self.tracker.unavailable {
            scheduler.end_grace();
        }
        for (conn, peer) in &self.peers {
            if let (Phase::Active { version }, Some(have)) = (&peer.phase, &peer.their_have)
                && *version == new_version
                && have.len() == map.len()
            {
                scheduler.peer_joined(*conn, have.clone());
            }
        }
        let info_hash = swarm_id(self.guard.site_key(), verified.version());
        // Pieces being hashed belong to the old version.
        self.hashing.clear();
        self.site = Some(Site {
            manifest: verified,
            map,
            store,
            scheduler,
            info_hash,
            origin_attempts: VecMap::new(),
            origin_requests: VecMap::new(),
            request_base: self.next_request,
        });
        // Re-target tickets by path.
        let tickets: Vec<(Ticket, String)> = self
            .tickets
            .iter()
            .map(|(t, (p, _))| (*t, p.clone()))
            .collect();
        for (ticket, path) in tickets {
            let site = self.site.as_mut().expect("site");
            match site.manifest.manifest().asset(&path) {
                Some((ai, _)) => {
                    self.tickets.insert(ticket, (path, ai as u32));
                    for piece in site.map.asset_pieces(ai as u32) {
                        site.scheduler.want(piece, ticket.0, now);
                    }
                }
                None => {
                    self.tickets.remove(&ticket);
                    self.outputs.push_back(Output::Failed {
                        ticket,
                        error: AssetError::NoLongerListed(path),
                    });
                }
            }
        }
        self.deliver_ready(None);
        // Tell open peers: a new handshake, and the manifest to those behind.
        let open: Vec<(ConnId, Option<u64>)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.is_open())
            .map(|(c, p)| {
                (
                    *c,
                    if let Phase::Active { version } = p.phase {
                        Some(version)
                    } else {
                        None
                    },
                )
            })
            .collect();
        let handshake = self.handshake_frame().expect("site set");
        let site = self.site.as_ref().expect("site");
        let version = site.version();
        let offer = manifest_offer_frames(version, &site.manifest.signed().to_bytes());
        for (conn, their) in open {
            self.send(conn, handshake.clone());
            self.remember_told(conn);
            if their.is_some_and(|v| v < version) {
                for f in &offer {
                    self.send(conn, f.clone());
                }
            }
            // Their bitfield for the new version comes with their next handshake.
        }
        if self.tracker.connected {
            self.tracker.next_announce = Some(now);
            self.tracker.draft = None;
        }
    }
}

fn assemble(site: &Site, asset: u32) -> Option<Body> {
    let range = site.map.asset_pieces(asset);
    let mut pieces = Vec::with_capacity(range.len());
    let mut len = 0;
    for piece in range {
        let p = site.store[piece as usize].clone()?;
        len += p.len();
        pieces.push(p);
    }
    Some(Body { pieces, len })
}
