//! What the page's connections and callbacks report to its
//! [`crate::driver::PageDriver`]: each holds a [`Sink`] and sends
//! [`PageEvent`]s into it, so they depend on this module and never reach
//! into the driver, its client or its peer table.

use std::rc::Rc;

use peerhost_core::client::{HashJob, OriginError, SignatureJob};
use peerhost_core::piece::Digest;
use peerhost_core::scheduler::{ConnId, RequestId};
use peerhost_core::signal::Sdp;
use web_sys::RtcDataChannel;

/// Something that happened in the browser, for the driver to feed to its
/// client.
pub enum PageEvent {
    /// The tracker socket opened.
    TrackerOpen,
    /// One text frame from the tracker.
    TrackerMessage(String),
    /// The tracker socket closed (or never opened).
    TrackerClosed,
    /// The delay before reconnecting to the tracker is over.
    Reconnect,
    /// The client's deadline has come.
    Timeout,
    /// The SDP a connection was asked for, or why there is none.
    LocalSdp {
        /// The connection.
        conn: ConnId,
        /// Offer or answer with every candidate, or a log line saying why not.
        sdp: Result<Sdp, String>,
    },
    /// The answering side received the remote peer's data channel.
    DataChannel {
        /// The connection.
        conn: ConnId,
        /// The `peerhost/1` channel, to attach to the connection.
        channel: RtcDataChannel,
    },
    /// A data channel opened.
    PeerOpen(ConnId),
    /// One data-channel message.
    PeerFrame(ConnId, Vec<u8>),
    /// A connection or its channel closed or failed.
    PeerClosed(ConnId),
    /// An origin fetch finished.
    Origin {
        /// The core's id for it.
        request: RequestId,
        /// The bytes of the range, or why not.
        result: Result<Vec<u8>, OriginError>,
    },
    /// `crypto.subtle.digest` hashed a piece.
    PieceHashed {
        /// The core's id for it.
        job: HashJob,
        /// The SHA-256 (all zeros if the browser could not hash).
        digest: Digest,
    },
    /// WebCrypto checked a manifest signature (`Err`: it could not).
    SignatureChecked {
        /// The core's id for it.
        job: SignatureJob,
        /// Whether the signature is valid.
        verdict: Result<bool, String>,
    },
}

/// Where callbacks send their events: the driver, if it is still alive and
/// not busy (a callback never runs inside another in a single-threaded
/// event loop, but a failed borrow must never panic).
#[derive(Clone)]
pub struct Sink(Rc<dyn Fn(PageEvent)>);

impl Sink {
    /// A sink that hands every event to `f`.
    pub fn new(f: impl Fn(PageEvent) + 'static) -> Sink {
        Sink(Rc::new(f))
    }

    /// Reports one event.
    pub fn send(&self, event: PageEvent) {
        (self.0)(event);
    }
}
