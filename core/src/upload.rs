//! The visitor's upload budget: a rate (token bucket) and a total per visit.
//!
//! Visitors seed without noticing, so what they upload is bounded. A piece
//! is sent only when the bucket holds its size; past the total the client
//! rejects every request (with the same `Reject` as for a piece it lacks).

use std::time::Duration;

use crate::time::Instant;

/// Limits on what one client uploads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadLimits {
    /// Sustained rate in bytes per second; `None` for unlimited.
    pub bytes_per_sec: Option<u64>,
    /// Bucket size in bytes (burst); at least one piece.
    pub burst: u64,
    /// Most bytes uploaded in this client's life (one visit); `None` for no cap.
    pub total: Option<u64>,
}

impl Default for UploadLimits {
    /// 1 MiB/s, 256 KiB burst, 64 MiB per visit.
    fn default() -> Self {
        UploadLimits {
            bytes_per_sec: Some(1024 * 1024),
            burst: 256 * 1024,
            total: Some(64 * 1024 * 1024),
        }
    }
}

impl UploadLimits {
    /// No limits (a native seeder on a server).
    pub fn unlimited() -> Self {
        UploadLimits {
            bytes_per_sec: None,
            burst: u64::MAX,
            total: None,
        }
    }
}

/// Whether a send of some size may happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    /// Send now (the bytes were taken from the budget).
    Now,
    /// Not before this instant.
    Later(Instant),
    /// Never: the total for this visit is spent.
    Never,
}

/// Token bucket plus running total.
#[derive(Debug, Clone)]
pub struct UploadBudget {
    limits: UploadLimits,
    tokens: u64,
    refilled_at: Instant,
    used: u64,
}

impl UploadBudget {
    /// A full bucket at `now`.
    pub fn new(limits: UploadLimits, now: Instant) -> Self {
        UploadBudget {
            tokens: limits.burst,
            limits,
            refilled_at: now,
            used: 0,
        }
    }

    /// Bytes uploaded so far.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Whether the per-visit total is spent.
    pub fn exhausted(&self) -> bool {
        self.limits.total.is_some_and(|t| self.used >= t)
    }

    /// Takes `n` bytes from the budget if it allows a send now.
    pub fn take(&mut self, now: Instant, n: u64) -> Allowance {
        if self.limits.total.is_some_and(|t| self.used + n > t) {
            return Allowance::Never;
        }
        let Some(rate) = self.limits.bytes_per_sec else {
            self.used += n;
            return Allowance::Now;
        };
        let elapsed = now.saturating_since(self.refilled_at).as_millis() as u64;
        let refill = elapsed.saturating_mul(rate) / 1000;
        if refill > 0 {
            self.tokens = self.tokens.saturating_add(refill).min(self.limits.burst);
            self.refilled_at = now;
        }
        let need = n.min(self.limits.burst.max(1));
        if self.tokens >= need {
            self.tokens -= need;
            self.used += n;
            Allowance::Now
        } else {
            let missing = need - self.tokens;
            let wait_ms = (missing * 1000).div_ceil(rate.max(1));
            Allowance::Later(self.refilled_at + Duration::from_millis(wait_ms.max(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_and_total_caps() {
        let limits = UploadLimits {
            bytes_per_sec: Some(16_000),
            burst: 16_000,
            total: Some(40_000),
        };
        let mut b = UploadBudget::new(limits, Instant(0));
        assert_eq!(b.take(Instant(0), 16_000), Allowance::Now);
        let Allowance::Later(t) = b.take(Instant(0), 16_000) else {
            panic!("bucket should be empty");
        };
        assert_eq!(t, Instant(1000));
        assert_eq!(
            b.take(Instant(500), 16_000),
            Allowance::Later(Instant(1000))
        );
        assert_eq!(b.take(Instant(1000), 16_000), Allowance::Now);
        // 32 000 used; another 16 000 would pass the 40 000 total.
        assert_eq!(b.take(Instant(5000), 16_000), Allowance::Never);
        assert_eq!(b.take(Instant(5000), 8_000), Allowance::Now);
        assert!(b.exhausted());
    }
}
