//! How a client is tuned: [`ClientConfig`], whose defaults suit a browser
//! visitor.

use std::time::Duration;

use crate::ice::IceServer;
use crate::scheduler::SchedulerConfig;
use crate::upload::UploadLimits;

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
    /// Hand piece hashing to the driver ([`Output::HashPiece`](super::Output::HashPiece) /
    /// [`Input::PieceHashed`](super::Input::PieceHashed)) instead of hashing inline; see the
    /// module doc.
    pub deferred_hashing: bool,
    /// Hand the ed25519 check of manifest signatures to the driver
    /// ([`Output::VerifySignature`](super::Output::VerifySignature) / [`Input::SignatureChecked`](super::Input::SignatureChecked)) instead
    /// of checking inline; see the module doc. Without the core's `dalek`
    /// feature signatures are always checked this way.
    pub deferred_signatures: bool,
    /// Bytes of pieces one peer may have waiting in our upload queue (its
    /// requests the upload budget has not let out yet). A request past it
    /// is answered with `Reject`. Default [`MAX_QUEUED_UPLOAD_BYTES_PER_PEER`].
    pub max_queued_upload_bytes_per_peer: u64,
    /// Bytes of pieces waiting in the upload queues of all peers together;
    /// a request past it is answered with `Reject`. Default
    /// [`MAX_QUEUED_UPLOAD_BYTES`].
    pub max_queued_upload_bytes: u64,
    /// Bytes of partly received manifest offers held across all peers. A
    /// chunk that would pass it drops that peer's partial manifest (not a
    /// ban: the offer may be honest; the origin and the tracker still bring
    /// new versions). Default [`MAX_PARTIAL_MANIFEST_BYTES`].
    pub max_partial_manifest_bytes: usize,
    /// STUN/TURN servers of the site's tag or the seeder's flags, used
    /// before the tracker's (`ice_servers` of its announce answers).
    /// Default none: no third party is contacted unless configured.
    pub ice_servers: Vec<IceServer>,
    /// Use relayed (TURN) candidates only (`iceTransportPolicy: "relay"`):
    /// peers never learn this client's addresses. Default off.
    pub relay_only: bool,
}

/// Default [`ClientConfig::max_queued_upload_bytes_per_peer`]: 1 MiB, what
/// [`MAX_REQUESTS_IN_FLIGHT`](crate::wire::MAX_REQUESTS_IN_FLIGHT) requests
/// for pieces of the largest size come to.
pub const MAX_QUEUED_UPLOAD_BYTES_PER_PEER: u64 = 1024 * 1024;

/// Default [`ClientConfig::max_queued_upload_bytes`]: 4 MiB, four peers'
/// full queues. At the browser's 1 MiB/s upload rate that is 4 s of sending;
/// a queue longer than that only makes requesters time out.
pub const MAX_QUEUED_UPLOAD_BYTES: u64 = 4 * 1024 * 1024;

/// Default [`ClientConfig::max_partial_manifest_bytes`]: one manifest of
/// the largest size ([`MAX_MANIFEST_LEN`](crate::wire::MAX_MANIFEST_LEN), 8 MiB).
/// Real manifests are a few KiB, so many honest offers fit at once.
pub const MAX_PARTIAL_MANIFEST_BYTES: usize = crate::wire::MAX_MANIFEST_LEN;

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
            max_queued_upload_bytes_per_peer: MAX_QUEUED_UPLOAD_BYTES_PER_PEER,
            max_queued_upload_bytes: MAX_QUEUED_UPLOAD_BYTES,
            max_partial_manifest_bytes: MAX_PARTIAL_MANIFEST_BYTES,
            ice_servers: Vec::new(),
            relay_only: false,
        }
    }
}
