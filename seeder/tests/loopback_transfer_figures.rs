//! Figures for docs/seeder.md, not a pass/fail timing: how fast a mirror
//! pulls a site from one seeder over WebRTC on 127.0.0.1, per SCTP receive
//! window. Ignored by default; run inside the loopback namespace with
//! `PEERHOST_NETNS=1 cargo test -p peerhost-seeder --test loopback_transfer_figures -- --ignored --nocapture`.

mod common;

use std::time::{Duration, Instant};

use common::{Origin, TestSite, Tracker, start, status, wait_for, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "prints figures; run by hand"]
async fn loopback_transfer_figures() {
    if !common::netns_or_skip("loopback_transfer_figures") {
        return;
    }
    common::init_tracing();
    let tracker = Tracker::start().await;
    let url = tracker.url();
    let mb = 16usize;
    let site = TestSite::generate(9, &vec![1 << 20; mb], 1);
    let dir = tempfile::tempdir().unwrap();
    site.write_to(dir.path());
    let origin = Origin::start(&site).await;
    let seeder = start(&["--site", dir.path().to_str().unwrap(), "--tracker", &url]).await;
    wait_for("the seeder to join", Duration::from_secs(30), || {
        tracker.peers() >= 1
    })
    .await;

    for window in ["65536", "131072", "1048576"] {
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
            "--sctp-window",
            window,
        ])
        .await;
        let mut first_byte = None;
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let st = status(&mirror);
            if first_byte.is_none() && st.bytes_from_peers > 0 {
                first_byte = Some(Instant::now());
            }
            if st.complete {
                break;
            }
            assert!(Instant::now() < deadline, "mirror did not finish");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let done = Instant::now();
        let st = status(&mirror);
        let first = first_byte.unwrap_or(began);
        let secs = done.duration_since(first).as_secs_f64();
        eprintln!(
            "figures: window {window}: {mb} MiB in {:.2} s from start ({:.2} s to first byte); \
             {:.1} MiB/s after the first byte; {} bytes from peers, {} from the origin",
            done.duration_since(began).as_secs_f64(),
            first.duration_since(began).as_secs_f64(),
            st.bytes_from_peers as f64 / secs / f64::from(1 << 20),
            st.bytes_from_peers,
            st.bytes_from_origin
        );
        wait_for("the cache", Duration::from_secs(60), || {
            status(&mirror).mirrored_version == Some(1)
        })
        .await;
        site.assert_files_in(&cache.path().join("1"));
        within(
            "mirror shutdown",
            Duration::from_secs(15),
            mirror.shutdown(),
        )
        .await;
    }
    within(
        "seeder shutdown",
        Duration::from_secs(15),
        seeder.shutdown(),
    )
    .await;
    tracker.stop().await;
}
