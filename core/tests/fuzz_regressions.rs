//! Bugs the fuzz targets in `fuzz/` found, each kept as a plain test so
//! that stable CI guards it without a fuzzer. Each test names the target
//! and says what the crashing input did.

use peerhost_core::client::{Client, ClientConfig, Input, ManifestSource, Output};
use peerhost_core::manifest::{Asset, Manifest, SiteSecret};
use peerhost_core::time::{Instant, UnixTime};

const WALL: u64 = 1_800_000_000;

fn visitor() -> Client {
    let secret = SiteSecret::from_seed([7; 32]);
    let manifest = Manifest {
        site_key: secret.site_key(),
        version: 1,
        issued_at: WALL - 60,
        expires_at: WALL + 3600,
        flags: 0,
        assets: vec![Asset::from_bytes("/a.txt", "text/plain", 1024, &[1; 2500])],
    }
    .sign(&secret)
    .unwrap();
    let mut c = Client::new(ClientConfig::default(), secret.site_key(), 0, 1, Instant(0));
    c.handle_input(
        Instant(0),
        Input::Manifest {
            manifest: Box::new(manifest),
            source: ManifestSource::Origin,
            wall: UnixTime(WALL),
        },
    );
    c
}

fn drain(c: &mut Client) -> Vec<Output> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

/// `client_session`: the tracker reported connected twice while the first
/// announce was still waiting for the driver's offers. The second
/// `TrackerConnected` set the next announce to "now", which `drive` does
/// not act on while an announce is drafted, yet `poll_timeout` returned it:
/// a deadline in the past after `Timeout`, so the driver's loop spun until
/// the draft's own deadline (5 s).
#[test]
fn second_tracker_connected_while_drafting_leaves_no_past_deadline() {
    let mut c = visitor();
    c.handle_input(Instant(0), Input::TrackerConnected);
    assert!(
        drain(&mut c)
            .iter()
            .any(|o| matches!(o, Output::CreateOffer { .. })),
        "the first announce asks for offers"
    );
    c.handle_input(Instant(0), Input::TrackerConnected);
    drain(&mut c);
    c.handle_input(Instant(1), Input::Timeout);
    drain(&mut c);
    let next = c.poll_timeout().expect("the draft's deadline is pending");
    assert!(
        next > Instant(1),
        "after a timeout at 1 ms, poll_timeout() is {next:?}"
    );
}
