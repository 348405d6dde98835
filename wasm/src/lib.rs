//! peerhost browser driver.
