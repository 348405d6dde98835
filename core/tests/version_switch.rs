//! Switching to a newer manifest: a page load that already got assets
//! finishes on the version it started with (no load mixes two versions),
//! one that got nothing yet moves at once, unchanged pieces are reused, and
//! a load that takes too long is moved to the new version.

use std::time::Duration;

use bytes::Bytes;
use peerhost_core::client::{
    Client, ClientConfig, Event, Input, ManifestSource, OriginError, Output, Ticket,
};
use peerhost_core::manifest::{Asset, Manifest, SignedManifest, SiteSecret};
use peerhost_core::scheduler::RequestId;
use peerhost_core::time::{Instant, UnixTime};

const WALL: u64 = 1_800_000_000;

fn secret() -> SiteSecret {
    SiteSecret::from_seed([3; 32])
}

fn sign(files: &[(&str, Vec<u8>)], version: u64) -> SignedManifest {
    Manifest {
        site_key: secret().site_key(),
        version,
        issued_at: WALL - 60,
        expires_at: WALL + 3600,
        flags: 0,
        assets: files
            .iter()
            .map(|(p, d)| Asset::from_bytes(p, "text/plain", 16 * 1024, d))
            .collect(),
    }
    .sign(&secret())
    .unwrap()
}

fn v1() -> Vec<(&'static str, Vec<u8>)> {
    vec![("/a.txt", vec![1; 20_000]), ("/b.txt", vec![2; 5_000])]
}

fn v2() -> Vec<(&'static str, Vec<u8>)> {
    vec![("/a.txt", vec![1; 20_000]), ("/b.txt", vec![9; 5_000])]
}

/// A visitor with version 1 and no tracker (so no wait for peers).
fn client(config: ClientConfig) -> Client {
    let mut c = Client::new(config, secret().site_key(), 0, 1, Instant(0));
    c.handle_input(
        Instant(0),
        Input::Manifest {
            manifest: Box::new(sign(&v1(), 1)),
            source: ManifestSource::Origin,
            wall: UnixTime(WALL),
        },
    );
    c.handle_input(Instant(0), Input::TrackerClosed);
    drain(&mut c);
    c
}

fn drain(c: &mut Client) -> Vec<Output> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

/// Whether the outputs report a refused manifest.
fn refused(out: &[Output]) -> bool {
    out.iter()
        .any(|o| matches!(o, Output::Event(Event::ManifestRefused { .. })))
}

/// The page of `c` asks for `path`; tickets count up per test process, so
/// they are unique per client and in the order asked.
fn want(c: &mut Client, now: Instant, path: &str) -> Ticket {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let ticket = Ticket(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    c.handle_input(
        now,
        Input::Want {
            ticket,
            path: path.into(),
        },
    );
    ticket
}

fn origin_fetches(out: &[Output]) -> Vec<(RequestId, String)> {
    out.iter()
        .filter_map(|o| match o {
            Output::FetchOrigin { request, path, .. } => Some((*request, path.clone())),
            _ => None,
        })
        .collect()
}

/// Opens a load of /a.txt and /b.txt and lets /a.txt arrive from the
/// origin; returns the open ticket and origin request of /b.txt.
fn half_loaded(c: &mut Client) -> (Ticket, RequestId) {
    let ta = want(c, Instant(10), "/a.txt");
    let tb = want(c, Instant(10), "/b.txt");
    let fetch = origin_fetches(&drain(c));
    assert_eq!(fetch.len(), 2, "{fetch:?}");
    let (a, b) = if fetch[0].1 == "/a.txt" {
        (fetch[0].0, fetch[1].0)
    } else {
        (fetch[1].0, fetch[0].0)
    };
    c.handle_input(
        Instant(15),
        Input::Origin {
            request: a,
            result: Ok(Bytes::from(vec![1; 20_000])),
        },
    );
    assert_eq!(delivered(&drain(c), ta), Some(vec![1; 20_000]));
    (tb, b)
}

fn delivered(out: &[Output], ticket: Ticket) -> Option<Vec<u8>> {
    out.iter().find_map(|o| match o {
        Output::Deliver {
            ticket: t, body, ..
        } if *t == ticket => Some(body.to_vec()),
        _ => None,
    })
}

#[test]
fn a_load_in_progress_finishes_on_its_version_then_switches() {
    let mut c = client(ClientConfig::default());
    let (t, request) = half_loaded(&mut c);
    // Version 2 arrives while /b.txt of version 1 is on its way.
    c.handle_input(
        Instant(20),
        Input::Manifest {
            manifest: Box::new(sign(&v2(), 2)),
            source: ManifestSource::Tracker,
            wall: UnixTime(WALL),
        },
    );
    drain(&mut c);
    assert_eq!(
        c.manifest().unwrap().version(),
        1,
        "the load keeps version 1"
    );
    assert_eq!(
        c.version_floor(),
        2,
        "but nothing older than 2 is taken again"
    );
    c.handle_input(
        Instant(30),
        Input::Origin {
            request,
            result: Ok(Bytes::from(vec![2; 5_000])),
        },
    );
    let out = drain(&mut c);
    assert_eq!(delivered(&out, t), Some(vec![2; 5_000]), "version 1 bytes");
    assert_eq!(
        c.manifest().unwrap().version(),
        2,
        "switched once the load was done"
    );
    // /a.txt did not change: kept. /b.txt of version 2 is fetched anew.
    let ta = want(&mut c, Instant(40), "/a.txt");
    assert_eq!(delivered(&drain(&mut c), ta), Some(vec![1; 20_000]));
    let t = want(&mut c, Instant(40), "/b.txt");
    let fetch = origin_fetches(&drain(&mut c));
    c.handle_input(
        Instant(50),
        Input::Origin {
            request: fetch[0].0,
            result: Ok(Bytes::from(vec![9; 5_000])),
        },
    );
    assert_eq!(delivered(&drain(&mut c), t), Some(vec![9; 5_000]));
}

#[test]
fn unchanged_pieces_are_reused_across_a_switch() {
    let mut c = client(ClientConfig::default());
    c.handle_input(
        Instant(5),
        Input::AssetHeld {
            path: "/a.txt".into(),
            bytes: Bytes::copy_from_slice(&[1; 20_000]),
        },
    );
    c.handle_input(
        Instant(5),
        Input::AssetHeld {
            path: "/b.txt".into(),
            bytes: Bytes::copy_from_slice(&[2; 5_000]),
        },
    );
    drain(&mut c);
    c.handle_input(
        Instant(20),
        Input::Manifest {
            manifest: Box::new(sign(&v2(), 2)),
            source: ManifestSource::Peer(peerhost_core::scheduler::ConnId(0)),
            wall: UnixTime(WALL),
        },
    );
    drain(&mut c);
    assert_eq!(c.manifest().unwrap().version(), 2, "no load open: at once");
    let t = want(&mut c, Instant(30), "/a.txt");
    let out = drain(&mut c);
    assert!(origin_fetches(&out).is_empty(), "{out:?}");
    assert_eq!(delivered(&out, t), Some(vec![1; 20_000]));
    assert!(
        c.asset_bytes("/b.txt").is_none(),
        "the changed file is not kept"
    );
}

#[test]
fn a_load_that_takes_too_long_moves_to_the_new_version() {
    let mut c = client(ClientConfig::default());
    let (t, first) = half_loaded(&mut c);
    c.handle_input(
        Instant(20),
        Input::Manifest {
            manifest: Box::new(sign(&v2(), 2)),
            source: ManifestSource::Tracker,
            wall: UnixTime(WALL),
        },
    );
    drain(&mut c);
    let limit = Instant(20) + Duration::from_secs(10);
    assert!(c.poll_timeout().is_some_and(|t| t <= limit));
    c.handle_input(limit, Input::Timeout);
    let out = drain(&mut c);
    assert_eq!(c.manifest().unwrap().version(), 2);
    // The late answer for version 1 is ignored; the ticket is served at version 2.
    c.handle_input(
        limit,
        Input::Origin {
            request: first,
            result: Err(OriginError("late".into())),
        },
    );
    let mut out = [out, drain(&mut c)].concat();
    let fetch = origin_fetches(&out);
    assert_eq!(fetch.len(), 1, "{out:?}");
    c.handle_input(
        limit,
        Input::Origin {
            request: fetch[0].0,
            result: Ok(Bytes::from(vec![9; 5_000])),
        },
    );
    out = drain(&mut c);
    assert_eq!(delivered(&out, t), Some(vec![9; 5_000]));
}

#[test]
fn a_load_that_got_nothing_yet_moves_at_once() {
    let mut c = client(ClientConfig::default());
    let t = want(&mut c, Instant(10), "/b.txt");
    drain(&mut c);
    c.handle_input(
        Instant(20),
        Input::Manifest {
            manifest: Box::new(sign(&v2(), 2)),
            source: ManifestSource::Tracker,
            wall: UnixTime(WALL),
        },
    );
    assert_eq!(c.manifest().unwrap().version(), 2);
    let fetch = origin_fetches(&drain(&mut c));
    assert_eq!(fetch.len(), 1, "the ticket moved to version 2");
    c.handle_input(
        Instant(30),
        Input::Origin {
            request: fetch[0].0,
            result: Ok(Bytes::from(vec![9; 5_000])),
        },
    );
    assert_eq!(delivered(&drain(&mut c), t), Some(vec![9; 5_000]));
}

#[test]
fn a_site_that_allows_mixing_switches_at_once() {
    let mut c = client(ClientConfig {
        max_switch_delay: Duration::ZERO,
        ..ClientConfig::default()
    });
    let _ = half_loaded(&mut c);
    c.handle_input(
        Instant(20),
        Input::Manifest {
            manifest: Box::new(sign(&v2(), 2)),
            source: ManifestSource::Tracker,
            wall: UnixTime(WALL),
        },
    );
    assert_eq!(c.manifest().unwrap().version(), 2);
}

#[test]
fn older_and_forged_manifests_never_switch() {
    let mut c = client(ClientConfig::default());
    c.handle_input(
        Instant(20),
        Input::Manifest {
            manifest: Box::new(sign(&v2(), 2)),
            source: ManifestSource::Tracker,
            wall: UnixTime(WALL),
        },
    );
    drain(&mut c);
    c.handle_input(
        Instant(30),
        Input::Manifest {
            manifest: Box::new(sign(&v1(), 1)),
            source: ManifestSource::Tracker,
            wall: UnixTime(WALL),
        },
    );
    assert!(refused(&drain(&mut c)));
    let mut forged = sign(&v2(), 3).to_bytes();
    let n = forged.len();
    forged[n - 1] ^= 1;
    let forged = SignedManifest::from_bytes(&forged).unwrap();
    c.handle_input(
        Instant(40),
        Input::Manifest {
            manifest: Box::new(forged),
            source: ManifestSource::Tracker,
            wall: UnixTime(WALL),
        },
    );
    assert!(refused(&drain(&mut c)));
    assert_eq!(c.manifest().unwrap().version(), 2);
}
