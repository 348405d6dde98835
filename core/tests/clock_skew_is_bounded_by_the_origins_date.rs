//! Expiry is judged on the visitor's clock unless it is more than
//! `MAX_CLOCK_SKEW_SECS` behind the origin's `Date`; then the origin's
//! clock decides (core/src/client/clock.rs has the rule and why a fast
//! clock is left alone). The first test fails on a client that trusts the
//! visitor's clock alone.

use peerhost_core::client::{
    Client, ClientConfig, Event, Input, MAX_CLOCK_SKEW_SECS, ManifestSource, Output,
};
use peerhost_core::manifest::{Asset, Manifest, ManifestError, SignedManifest, SiteSecret};
use peerhost_core::time::{Instant, UnixTime};

/// The true time, as the origin's `Date` says.
const NOW: u64 = 1_800_000_000;
const DAY: u64 = 86_400;

fn manifest(secret: &SiteSecret, issued_at: u64, expires_at: u64) -> SignedManifest {
    Manifest {
        site_key: secret.site_key(),
        version: 1,
        issued_at,
        expires_at,
        flags: 0,
        assets: vec![Asset::from_bytes("/a.txt", "text/plain", 1024, &[1; 2500])],
    }
    .sign(secret)
    .unwrap()
}

/// Feeds the origin's date (if any), then the manifest read with the
/// visitor's clock at `visitor_clock`; returns the verdict.
fn verdict(
    server_date: Option<u64>,
    visitor_clock: u64,
    m: SignedManifest,
    secret: &SiteSecret,
) -> Result<u64, ManifestError> {
    let mut c = Client::new(ClientConfig::default(), secret.site_key(), 0, 1, Instant(0));
    if let Some(d) = server_date {
        c.handle_input(Instant(0), Input::ServerDate(UnixTime(d)));
    }
    c.handle_input(
        Instant(5),
        Input::Manifest {
            manifest: Box::new(m),
            source: ManifestSource::Origin,
            wall: UnixTime(visitor_clock),
        },
    );
    while let Some(o) = c.poll_output() {
        match o {
            Output::Event(Event::ManifestAccepted { version, .. }) => return Ok(version),
            Output::Event(Event::ManifestRefused { error, .. }) => return Err(error),
            _ => {}
        }
    }
    panic!("no verdict")
}

#[test]
fn a_visitor_clock_set_back_does_not_revive_an_expired_manifest() {
    let secret = SiteSecret::from_seed([3; 32]);
    // Expired a day ago; "valid" on a clock two days slow.
    let expired = manifest(&secret, NOW - 5 * DAY, NOW - DAY);
    let slow = NOW - 2 * DAY;
    assert!(
        verdict(None, slow, expired.clone(), &secret).is_ok(),
        "without the origin's date the visitor's clock decides"
    );
    let v = verdict(Some(NOW), slow, expired, &secret);
    assert!(
        matches!(v, Err(ManifestError::Expired { .. })),
        "refused as expired on the origin's clock: {v:?}"
    );
}

#[test]
fn an_old_date_from_a_kept_copy_does_not_turn_a_correct_clock_back() {
    let secret = SiteSecret::from_seed([4; 32]);
    // Expired a day ago. A manifest response kept by the Service Worker
    // three days ago carries that day's `Date`; the visitor's clock is right.
    let expired = manifest(&secret, NOW - 5 * DAY, NOW - DAY);
    let v = verdict(Some(NOW - 3 * DAY), NOW, expired, &secret);
    assert!(matches!(v, Err(ManifestError::Expired { .. })), "{v:?}");
}

#[test]
fn a_skew_within_the_bound_keeps_the_visitors_clock() {
    let secret = SiteSecret::from_seed([5; 32]);
    // Expired 10 s before the origin's now: a visitor up to the bound
    // behind still sees it valid, and that is its clock's call to make.
    let m = manifest(&secret, NOW - DAY, NOW - 10);
    assert_eq!(
        verdict(Some(NOW), NOW - MAX_CLOCK_SKEW_SECS, m.clone(), &secret),
        Ok(1)
    );
    let v = verdict(Some(NOW), NOW - MAX_CLOCK_SKEW_SECS - 1, m, &secret);
    assert!(matches!(v, Err(ManifestError::Expired { .. })), "{v:?}");
}
