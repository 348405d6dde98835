//! What goes into a [`Client`](super::Client) and what comes out: the one
//! input type, the outputs and events, and the small types they carry.
//! Every driver speaks exactly this vocabulary (see the driver loop in the
//! module doc of [`client`](super)).

use std::fmt;
use std::ops::Range;

use bytes::Bytes;

use crate::ice::IceConfig;
use crate::manifest::{ManifestError, SIGNATURE_LEN, SignedManifest, SiteKey};
use crate::piece::{Digest, PieceIndex};
use crate::scheduler::{ConnId, OriginReasons, RequestId};
use crate::signal::{ClientMessage, PeerId, Sdp, ServerMessage};
use crate::time::UnixTime;
use crate::vec_map::VecMap;
use crate::wire::{Frame, FrameError};

/// Everything that can happen to a client, fed through
/// [`Client::handle_input`](super::Client::handle_input): the only way in.
/// Verdicts are never returned; they come out as [`Output`]s.
#[derive(Debug, Clone)]
pub enum Input {
    /// A signed manifest from the origin or the driver's storage. `wall` is
    /// the wall clock, for its validity window (it also sets the client's
    /// wall clock, as [`Input::WallClock`]). The verdict comes as
    /// [`Event::ManifestAccepted`] or [`Event::ManifestRefused`]; with
    /// deferred signatures first as [`Output::VerifySignature`].
    Manifest {
        /// The manifest (boxed: it is the largest input by far, and inputs
        /// queue in simulators by the million).
        manifest: Box<SignedManifest>,
        /// Where it came from.
        source: ManifestSource,
        /// The wall clock now.
        wall: UnixTime,
    },
    /// The driver's answer to [`Output::VerifySignature`]: whether the
    /// signature is valid. Unknown jobs are ignored.
    SignatureChecked {
        /// The job.
        job: SignatureJob,
        /// Whether the signature is valid.
        valid: bool,
    },
    /// The SHA-256 of the bytes of [`Output::HashPiece`] `job`. Unknown jobs
    /// (already answered, or of a version the client left) are ignored.
    PieceHashed {
        /// The job.
        job: HashJob,
        /// The digest of exactly the bytes given.
        digest: Digest,
    },
    /// Bytes of a whole asset the driver already holds (a seeder's files,
    /// the browser's cache). Pieces that fail their hash are ignored; see
    /// [`Client::asset_progress`](super::Client::asset_progress) for what
    /// was taken.
    AssetHeld {
        /// Asset path.
        path: String,
        /// Its bytes.
        bytes: Bytes,
    },
    /// The page wants the asset at `path`. The answer is [`Output::Deliver`]
    /// or [`Output::Failed`] with this ticket; tickets are the driver's to
    /// choose, and lower ones are served first.
    Want {
        /// The driver's ticket.
        ticket: Ticket,
        /// Asset path.
        path: String,
    },
    /// The tracker connection is up.
    TrackerConnected,
    /// The tracker connection failed or closed, or the driver has none (feed
    /// this once at start then). Connections already set up stay; ones
    /// waiting on signalling are closed; pieces no connected peer has go to
    /// the origin without waiting for discovery.
    TrackerClosed,
    /// A message from the tracker.
    Tracker(ServerMessage),
    /// The wall clock (feed it when it changes a lot, or periodically;
    /// manifests from the tracker and peers are checked against it).
    WallClock(UnixTime),
    /// The offer or answer asked for ([`Output::CreateOffer`],
    /// [`Output::AcceptOffer`]) is ready.
    LocalSdp {
        /// The connection.
        conn: ConnId,
        /// Our SDP.
        sdp: Sdp,
    },
    /// The SDP asked for could not be created.
    LocalSdpFailed {
        /// The connection.
        conn: ConnId,
    },
    /// The data channel of `conn` opened (reporting it twice is harmless).
    PeerOpen {
        /// The connection.
        conn: ConnId,
    },
    /// The connection closed (remote close, ICE failure, channel error).
    PeerClosed {
        /// The connection.
        conn: ConnId,
    },
    /// One data-channel message from `conn`, as received.
    PeerData {
        /// The connection.
        conn: ConnId,
        /// The message.
        data: Bytes,
    },
    /// One frame from `conn` passed as a value by an in-memory driver (the
    /// simulator): checked against the decoder's limits, then handled as
    /// [`Input::PeerData`] would be. Piece data is kept, not copied.
    PeerFrame {
        /// The connection.
        conn: ConnId,
        /// The frame.
        frame: Frame,
    },
    /// The origin answered [`Output::FetchOrigin`] `request` with the bytes
    /// of its range, or failed.
    Origin {
        /// The request.
        request: RequestId,
        /// The bytes, or why there are none.
        result: Result<Bytes, OriginError>,
    },
    /// A deadline ([`Client::poll_timeout`](super::Client::poll_timeout)) passed.
    Timeout,
    /// Stop (or resume) uploading: the tab was hidden for long, the
    /// connection became metered, the visitor opted out. Queued requests are
    /// rejected at once.
    LeechOnly(bool),
    /// Use relayed (TURN) candidates only, or not, for connections made
    /// from now on (the visitor's choice; connections already up stay).
    RelayOnly(bool),
    /// Leave politely: a `stopped` announce for the swarm we are in and a
    /// close for every connection. The client can be dropped afterwards.
    Leave,
}

/// Identifies one piece-hashing job ([`Output::HashPiece`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HashJob(pub u64);

/// Identifies one signature check ([`Output::VerifySignature`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignatureJob(pub u64);

/// An asset's verified bytes, as the pieces that make it up: shared with
/// the client's store, not copied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    pub(super) pieces: Vec<Bytes>,
    pub(super) len: usize,
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
    /// No manifest has been accepted yet.
    #[error("no manifest yet")]
    NoManifest,
    /// The path is not a listed asset: it is never fetched through peerhost.
    #[error("{0} is not listed in the manifest")]
    NotListed(String),
    /// The ticket is already waiting for an asset (that request goes on).
    #[error("ticket {0} is already in use")]
    TicketInUse(u64),
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
    /// We are leaving ([`Input::Leave`]).
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
    /// [`Input::LocalSdp`].
    CreateOffer {
        /// The new connection.
        conn: ConnId,
        /// The ICE servers and policy to build it with.
        ice: IceConfig,
    },
    /// Create a peer connection from a remote offer and an answer to it;
    /// report the answer with [`Input::LocalSdp`].
    AcceptOffer {
        /// The new connection.
        conn: ConnId,
        /// The remote offer.
        offer: Sdp,
        /// The ICE servers and policy to build it with.
        ice: IceConfig,
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
    /// [`Input::PeerFrame`]).
    SendPeer {
        /// The connection.
        conn: ConnId,
        /// The frame.
        frame: Frame,
    },
    /// Compute the SHA-256 of `data` and report it with
    /// [`Input::PieceHashed`] (only with
    /// [`ClientConfig::deferred_hashing`]).
    HashPiece {
        /// Id to answer with.
        job: HashJob,
        /// The bytes to hash.
        data: Bytes,
    },
    /// Check the ed25519 `signature` over `message` under `site_key` and
    /// report whether it is valid with [`Input::SignatureChecked`] (only
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
    /// origin, without credentials, and report with [`Input::Origin`].
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

impl fmt::Display for Input {
    /// One line for logs; payloads are summarised, never dumped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Manifest {
                manifest, source, ..
            } => write!(
                f,
                "manifest v{} from {source:?}",
                manifest.manifest().version
            ),
            Input::SignatureChecked { job, valid } => {
                write!(f, "signature job {} checked: valid={valid}", job.0)
            }
            Input::PieceHashed { job, .. } => write!(f, "piece hash job {} done", job.0),
            Input::AssetHeld { path, bytes } => {
                write!(f, "held asset {path} ({} bytes)", bytes.len())
            }
            Input::Want { ticket, path } => write!(f, "want {path} (ticket {})", ticket.0),
            Input::TrackerConnected => f.write_str("tracker connected"),
            Input::TrackerClosed => f.write_str("tracker closed"),
            Input::Tracker(msg) => write!(f, "tracker message {}", server_message_kind(msg)),
            Input::WallClock(t) => write!(f, "wall clock {}", t.0),
            Input::LocalSdp { conn, .. } => write!(f, "local sdp for conn {}", conn.0),
            Input::LocalSdpFailed { conn } => write!(f, "local sdp failed for conn {}", conn.0),
            Input::PeerOpen { conn } => write!(f, "conn {} open", conn.0),
            Input::PeerClosed { conn } => write!(f, "conn {} closed", conn.0),
            Input::PeerData { conn, data } => {
                write!(f, "{} bytes from conn {}", data.len(), conn.0)
            }
            Input::PeerFrame { conn, frame } => {
                write!(f, "{} from conn {}", frame_kind(frame), conn.0)
            }
            Input::Origin { request, result } => match result {
                Ok(b) => write!(f, "origin request {}: {} bytes", request.0, b.len()),
                Err(e) => write!(f, "origin request {} failed: {e}", request.0),
            },
            Input::Timeout => f.write_str("timeout"),
            Input::LeechOnly(on) => write!(f, "leech only: {on}"),
            Input::RelayOnly(on) => write!(f, "relay only: {on}"),
            Input::Leave => f.write_str("leave"),
        }
    }
}

impl fmt::Display for Output {
    /// One line for logs; payloads are summarised, never dumped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Tracker(msg) => write!(f, "to tracker: {}", client_message_kind(msg)),
            Output::CreateOffer { conn, .. } => write!(f, "create offer for conn {}", conn.0),
            Output::AcceptOffer { conn, .. } => write!(f, "accept offer on conn {}", conn.0),
            Output::ApplyAnswer { conn, .. } => write!(f, "apply answer on conn {}", conn.0),
            Output::SendPeer { conn, frame } => {
                write!(f, "send {} to conn {}", frame_kind(frame), conn.0)
            }
            Output::HashPiece { job, data } => {
                write!(f, "hash job {} ({} bytes)", job.0, data.len())
            }
            Output::VerifySignature { job, .. } => write!(f, "verify signature job {}", job.0),
            Output::ClosePeer { conn, reason } => {
                write!(f, "close conn {}: {reason:?}", conn.0)
            }
            Output::FetchOrigin {
                request,
                path,
                range,
            } => write!(
                f,
                "fetch {path} bytes {}..{} (request {})",
                range.start, range.end, request.0
            ),
            Output::Deliver {
                ticket,
                path,
                body,
                version,
                ..
            } => write!(
                f,
                "deliver {path} v{version} ({} bytes, ticket {})",
                body.len(),
                ticket.0
            ),
            Output::Failed { ticket, error } => {
                write!(f, "ticket {} failed: {error}", ticket.0)
            }
            Output::Event(e) => e.fmt(f),
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::ManifestAccepted { version, source } => {
                write!(f, "manifest v{version} accepted from {source:?}")
            }
            Event::ManifestRefused { source, error } => {
                write!(f, "manifest from {source:?} refused: {error}")
            }
            Event::PeerConnected { conn } => write!(f, "conn {} connected", conn.0),
            Event::PeerBanned { conn, reason, .. } => {
                write!(f, "conn {} banned: {reason}", conn.0)
            }
        }
    }
}

fn frame_kind(frame: &Frame) -> &'static str {
    match frame {
        Frame::Handshake { .. } => "handshake",
        Frame::Have { .. } => "have",
        Frame::Request { .. } => "request",
        Frame::Piece { .. } => "piece",
        Frame::Cancel { .. } => "cancel",
        Frame::Reject { .. } => "reject",
        Frame::ManifestOffer { .. } => "manifest offer",
    }
}

fn client_message_kind(msg: &ClientMessage) -> &'static str {
    match msg {
        ClientMessage::Announce(_) => "announce",
        ClientMessage::Answer(_) => "answer",
        ClientMessage::Scrape { .. } => "scrape",
        ClientMessage::PublishManifest { .. } => "publish",
        ClientMessage::SubscribeManifest { .. } => "subscribe",
    }
}

fn server_message_kind(msg: &ServerMessage) -> &'static str {
    match msg {
        ServerMessage::AnnounceResponse { .. } => "announce response",
        ServerMessage::Offer(_) => "offer",
        ServerMessage::Answer(_) => "answer",
        ServerMessage::ScrapeResponse { .. } => "scrape response",
        ServerMessage::Error { .. } => "error",
        ServerMessage::ManifestPush { .. } => "manifest push",
        ServerMessage::PublishResult { .. } => "publish result",
    }
}
