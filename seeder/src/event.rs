//! What a site's tasks report to its [`crate::driver::SiteSeeder`]: the
//! tracker socket, peer connections, origin fetches, manifest re-reads and
//! the cache writer each send [`SeederEvent`]s on one bounded channel, so
//! they depend on this type and not on the seeder that consumes them.

use bytes::Bytes;
use peerhost_core::client::OriginError;
use peerhost_core::scheduler::{ConnId, RequestId};
use peerhost_core::signal::Sdp;
use tokio::sync::mpsc;

/// Where a task sends its events. Bounded, so a fast peer waits for the
/// seeder instead of filling memory.
pub(crate) type EventTx = mpsc::Sender<SeederEvent>;

/// Something that happened, for the site's seeder to feed to its client.
#[derive(Debug)]
pub(crate) enum SeederEvent {
    /// The tracker socket is up.
    TrackerUp,
    /// The tracker socket failed or could not be opened.
    TrackerDown,
    /// One text frame from the tracker.
    Tracker(String),
    /// The SDP a connection was asked for, or why there is none.
    LocalSdp {
        /// The connection.
        conn: ConnId,
        /// Offer or answer, with every candidate.
        sdp: Result<Sdp, String>,
    },
    /// A data channel opened.
    PeerOpen(ConnId),
    /// One data-channel message.
    PeerFrame(ConnId, Bytes),
    /// A connection died on its own (not closed by us).
    PeerClosed(ConnId),
    /// An origin fetch finished.
    Origin {
        /// The core's id for it.
        request: RequestId,
        /// The bytes of the range, or why not.
        result: Result<Vec<u8>, OriginError>,
    },
    /// A manifest document re-read from the origin or the site directory.
    ManifestText(Result<String, String>),
    /// The cache writer finished a write.
    Written {
        /// The version written to.
        version: u64,
        /// The asset, or `None` for the manifest.
        path: Option<String>,
        /// Whether it worked.
        result: Result<(), String>,
    },
}
