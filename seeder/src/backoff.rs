//! Reconnect delays: exponential backoff with full jitter.
//!
//! The n-th retry waits a uniformly random time in `0..=min(cap, base·2ⁿ)`
//! ("full jitter"), so many seeders that lost the same tracker do not come
//! back in lockstep, and a tracker that stays down is asked at most about
//! once per `cap`.

use std::time::Duration;

use peerhost_core::rng::Rng;

/// Delays between attempts to reach something that is down.
#[derive(Debug)]
pub(crate) struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    rng: Rng,
}

impl Backoff {
    /// Delays starting below `base`, doubling, never above `cap`.
    pub(crate) fn new(base: Duration, cap: Duration, seed: u64) -> Backoff {
        Backoff {
            base,
            cap,
            attempt: 0,
            rng: Rng::new(seed),
        }
    }

    /// The connection worked: start again from `base`.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The longest the next delay can be.
    pub(crate) fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling().as_millis() as u64;
        self.attempt = self.attempt.saturating_add(1);
        Duration::from_millis(self.rng.below(ceiling + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap_and_delays_stay_below_them() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(60), 7);
        let mut ceilings = Vec::new();
        for _ in 0..12 {
            let c = b.ceiling();
            let d = b.next_delay();
            assert!(d <= c, "{d:?} above {c:?}");
            ceilings.push(c.as_millis());
        }
        assert_eq!(
            ceilings,
            [
                500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000, 60000
            ]
        );
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(500));
    }

    #[test]
    fn delays_are_spread_over_the_whole_window() {
        let mut b = Backoff::new(Duration::from_secs(60), Duration::from_secs(60), 1);
        let delays: Vec<u128> = (0..200).map(|_| b.next_delay().as_millis()).collect();
        assert!(delays.iter().any(|d| *d < 15_000));
        assert!(delays.iter().any(|d| *d > 45_000));
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(60), 3);
        for _ in 0..1000 {
            assert!(b.next_delay() <= Duration::from_secs(60));
        }
    }
}
