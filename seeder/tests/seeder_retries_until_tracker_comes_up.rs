//! A seeder whose tracker is down at start keeps retrying (backoff with
//! jitter) and, once the tracker comes up, joins the swarm and serves a
//! mirror over WebRTC.

mod common;

use std::time::Duration;

use common::{Origin, TestSite, Tracker, free_addr, start, status, wait_for, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeder_retries_until_tracker_comes_up() {
    if !common::netns_or_skip("seeder_retries_until_tracker_comes_up") {
        return;
    }
    common::init_tracing();
    let addr = free_addr().await;
    let url = format!("ws://{addr}/");
    let site = TestSite::generate(2, &[300_000, 200_000, 30_000], 1);
    let dir = tempfile::tempdir().unwrap();
    site.write_to(dir.path());
    let origin = Origin::start(&site).await;

    let seeder = start(&["--site", dir.path().to_str().unwrap(), "--tracker", &url]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = status(&seeder);
    assert!(!s.tracker_connected && s.tracker_connects == 0);

    let tracker = Tracker::start_on(addr).await;
    wait_for(
        "the seeder to reach the tracker",
        Duration::from_secs(30),
        || status(&seeder).tracker_connected,
    )
    .await;
    wait_for(
        "the seeder to join the swarm",
        Duration::from_secs(30),
        || tracker.peers() >= 1,
    )
    .await;

    let cache = tempfile::tempdir().unwrap();
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
    site.assert_files_in(&cache.path().join("1"));
    assert!(
        origin.served() * 10 <= site.total(),
        "origin served {}",
        origin.served()
    );
    assert!(status(&seeder).bytes_uploaded > 0);

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
