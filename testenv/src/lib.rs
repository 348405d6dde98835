//! Where a test runs, and what follows for tests that need real parts.
//!
//! Browser, WebRTC and interop tests run only inside the loopback-only
//! network namespace that `cargo xtask test` creates (`PEERHOST_NETNS=1`):
//! there every ICE candidate is 127.0.0.1 and nothing can leave the machine.
//! The rule, in one place for every test crate: such a test never passes by
//! not running. Under CI (`CI` set and not `false`) a missing namespace
//! fails it; elsewhere (a developer's bare `cargo test`) it says loudly that
//! it skipped and was not passed.
//!
//! Inside that namespace, [`topology`] builds a simulated internet: homes
//! behind real nftables NAT routers, each its own namespace, with the test
//! process as the public side.

pub mod coturn;

/// Whether this run is CI's (`CI` set, not empty and not `false`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

/// Whether the loopback-only namespace is here, so `test` (which needs it
/// for `what`, e.g. "WebRTC tests") may run: `true` inside it; a panic
/// under CI outside it; `false` with a `SKIPPED` line elsewhere.
pub fn netns_or_skip(test: &str, what: &str) -> bool {
    if std::env::var("PEERHOST_NETNS").as_deref() == Ok("1") {
        return true;
    }
    assert!(
        !under_ci(),
        "{test} must run under CI, but this is not the loopback-only network namespace \
         (PEERHOST_NETNS=1): run the suite with `cargo xtask test`"
    );
    eprintln!(
        "SKIPPED {test} (not passed): {what} run only in the loopback-only network namespace \
         of `cargo xtask test` (PEERHOST_NETNS=1)"
    );
    false
}

pub mod topology;
