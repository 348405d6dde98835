//! A seeder serving a published directory and a mirror starting from an
//! empty cache meet through a real tracker; the mirror ends with every file
//! byte-identical, and the origin served at most 10% of the site: the rest
//! came from the seeder over WebRTC on 127.0.0.1.

mod common;

use std::time::{Duration, Instant};

use common::{Origin, TestSite, Tracker, start, status, wait_for, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_gets_site_from_seeder_not_origin() {
    if !common::netns_or_skip("mirror_gets_site_from_seeder_not_origin") {
        return;
    }
    common::init_tracing();
    let tracker = Tracker::start().await;
    let url = tracker.url();
    let site = TestSite::generate(1, &[400_000, 300_000, 200_000, 100_000, 20_000], 1);
    let dir = tempfile::tempdir().unwrap();
    site.write_to(dir.path());
    let origin = Origin::start(&site).await;

    let seeder = start(&["--site", dir.path().to_str().unwrap(), "--tracker", &url]).await;
    assert!(status(&seeder).complete);
    wait_for(
        "the seeder to join the swarm",
        Duration::from_secs(30),
        || tracker.peers() >= 1,
    )
    .await;

    let cache = tempfile::tempdir().unwrap();
    let began = Instant::now();
    let mirror = start(&[
        "--manifest-url",
        &origin.url("/peerhost.json"),
        "--site-key",
        &site.key(),
        "--cache",
        cache.path().to_str().unwrap(),
        "--tracker",
        &url,
    ])
    .await;
    wait_for("the mirror to finish", Duration::from_secs(60), || {
        status(&mirror).mirrored_version == Some(1)
    })
    .await;
    let took = began.elapsed();

    site.assert_files_in(&cache.path().join("1"));
    let total = site.total();
    let served = origin.served();
    let m = status(&mirror);
    let s = status(&seeder);
    eprintln!(
        "figures: mirrored {total} bytes in {:.2} s ({:.2} MB/s end to end); {} from peers, {} from the origin; \
         origin served {served} bytes incl. the manifest; seeder uploaded {}",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64() / 1e6,
        m.bytes_from_peers,
        m.bytes_from_origin,
        s.bytes_uploaded
    );
    assert!(
        served * 10 <= total,
        "the origin served {served} of {total} bytes"
    );
    assert!(m.bytes_from_peers * 10 >= total * 9);
    assert!(s.bytes_uploaded >= m.bytes_from_peers);
    assert_eq!(m.pieces_rejected + s.pieces_rejected, 0);

    within(
        "mirror shutdown",
        Duration::from_secs(15),
        mirror.shutdown(),
    )
    .await;
    within(
        "seeder shutdown",
        Duration::from_secs(15),
        seeder.shutdown(),
    )
    .await;
    tracker.stop().await;
}
