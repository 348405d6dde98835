//! The wall clock, read in one place: manifests are signed and checked
//! against Unix seconds (the core takes `now` as a parameter).

use std::time::{SystemTime, UNIX_EPOCH};

use peerhost_core::time::UnixTime;

/// The current wall-clock time.
pub fn unix_now() -> UnixTime {
    // A clock before 1970 is a broken machine; treat it as the epoch.
    UnixTime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}
