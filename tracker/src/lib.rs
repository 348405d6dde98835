//! peerhost tracker.
