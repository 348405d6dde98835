//! Which wall clock judges a manifest's validity window.
//!
//! The visitor's clock decides, unless a server's clock says it is slow by
//! more than [`MAX_CLOCK_SKEW_SECS`]. The server's clock comes from the
//! HTTP `Date` (plus `Age`) of the origin's manifest response
//! ([`Input::ServerDate`](super::Input::ServerDate)), carried forward on
//! the monotonic clock. The rule:
//!
//! - no server time yet: the visitor's clock;
//! - the visitor's clock no more than 5 minutes behind the server's, or
//!   ahead of it: the visitor's (HTTP dates have 1 s resolution and the
//!   response took some time; a visitor's small drift changes nothing);
//! - more than 5 minutes behind: the server's. A clock set back days no
//!   longer makes an expired manifest from a peer or the tracker look
//!   valid, which is the danger (stale content served as current).
//!
//! Why a fast clock is not corrected: it can only make a manifest look
//! expired (or not yet valid), so peerhost stands down or waits and the
//! page loads from the origin, which is safe. Correcting it would let an
//! old `Date` turn time back: when the origin is down, the manifest
//! response may be a copy the Service Worker kept days ago, with the
//! `Date` of then. Only moving time forward, an old `Date` changes
//! nothing for a visitor whose clock is right.
//!
//! The server is the site's own origin: the same party that serves the
//! page and the manifest, so trusting its clock adds no one to trust. A
//! tracker or a peer never sets the time.

use crate::time::{Instant, UnixTime};

/// How far the visitor's clock may be behind the origin's before the
/// origin's is used: 5 minutes.
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// The latest readings of the visitor's clock and of the server's.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct WallClock {
    /// The visitor's clock, read at that instant.
    local: Option<(Instant, UnixTime)>,
    /// The server's clock (`Date` + `Age`), received at that instant.
    server: Option<(Instant, UnixTime)>,
}

impl WallClock {
    /// The visitor's clock read `wall` at `now`.
    pub(super) fn set_local(&mut self, now: Instant, wall: UnixTime) {
        self.local = Some((now, wall));
    }

    /// A server's clock read `date` when its response arrived at `now`.
    pub(super) fn set_server(&mut self, now: Instant, date: UnixTime) {
        self.server = Some((now, date));
    }

    /// The time to judge validity windows by at `now`, the visitor's clock
    /// having just read `local` (see the module doc for the rule).
    pub(super) fn judge(&self, now: Instant, local: UnixTime) -> UnixTime {
        match self.server.map(|s| carried(s, now)) {
            Some(server) if server.0 > local.0.saturating_add(MAX_CLOCK_SKEW_SECS) => server,
            _ => local,
        }
    }

    /// The time at `now` from the latest readings, without a new one
    /// (manifests from the tracker and peers); 0 before any reading.
    pub(super) fn estimate(&self, now: Instant) -> UnixTime {
        match self.local.map(|l| carried(l, now)) {
            Some(local) => self.judge(now, local),
            None => self.server.map_or(UnixTime(0), |s| carried(s, now)),
        }
    }
}

/// A reading taken at `at`, carried forward to `now`.
fn carried((at, wall): (Instant, UnixTime), now: Instant) -> UnixTime {
    UnixTime(wall.0 + now.saturating_since(at).as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_800_000_000;

    #[test]
    fn the_visitors_clock_decides_without_a_server_time() {
        let c = WallClock::default();
        assert_eq!(c.judge(Instant(0), UnixTime(T)), UnixTime(T));
        assert_eq!(c.estimate(Instant(0)), UnixTime(0));
    }

    #[test]
    fn a_small_skew_keeps_the_visitors_clock() {
        let mut c = WallClock::default();
        c.set_server(Instant(0), UnixTime(T));
        let local = UnixTime(T + MAX_CLOCK_SKEW_SECS);
        assert_eq!(c.judge(Instant(0), local), local);
        let local = UnixTime(T - MAX_CLOCK_SKEW_SECS);
        assert_eq!(c.judge(Instant(0), local), local);
    }

    #[test]
    fn a_slow_clock_is_replaced_by_the_servers_carried_forward() {
        let mut c = WallClock::default();
        c.set_server(Instant(0), UnixTime(T));
        let ten_s = Instant(10_000);
        assert_eq!(c.judge(ten_s, UnixTime(T - 30 * 86_400)), UnixTime(T + 10));
        c.set_local(Instant(0), UnixTime(T - 86_400));
        assert_eq!(c.estimate(ten_s), UnixTime(T + 10));
    }

    #[test]
    fn an_old_server_date_never_turns_time_back() {
        let mut c = WallClock::default();
        c.set_server(Instant(0), UnixTime(T - 3 * 86_400));
        assert_eq!(c.judge(Instant(0), UnixTime(T)), UnixTime(T));
    }
}
