//! A mirror fills its cache from the origin (the tracker is down, so no
//! WebRTC is involved), serves metrics, and after a restart seeds from the
//! cache: it fetches the manifest again but no file, except the one piece
//! that was damaged on disk meanwhile.

mod common;

use std::time::Duration;

use common::{Origin, TestSite, free_addr, http_get, start, status, wait_for, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_restarts_from_cache_without_refetching() {
    common::init_tracing();
    let site = TestSite::generate(5, &[300_000, 100_000, 50_000, 7_000], 1);
    let origin = Origin::start(&site).await;
    // Nothing listens there: the tracker is down for the whole test.
    let tracker = format!("ws://{}/", free_addr().await);
    let cache = tempfile::tempdir().unwrap();
    let key = site.key();
    let manifest_url = origin.url("/peerhost.json");
    let argv = [
        "--manifest-url",
        manifest_url.as_str(),
        "--site-key",
        key.as_str(),
        "--cache",
        cache.path().to_str().unwrap(),
        "--tracker",
        tracker.as_str(),
        "--metrics",
        "127.0.0.1:0",
    ];

    let mirror = start(&argv).await;
    wait_for(
        "the mirror to fill its cache",
        Duration::from_secs(30),
        || status(&mirror).mirrored_version == Some(1),
    )
    .await;
    let version_dir = cache.path().join("1");
    site.assert_files_in(&version_dir);
    assert!(version_dir.join("peerhost.json").is_file());
    assert_eq!(origin.served_assets(), site.total());
    let st = status(&mirror);
    assert_eq!(st.bytes_from_origin, site.total());
    assert!(st.complete && !st.tracker_connected);

    let page = http_get(mirror.metrics_addr().unwrap(), "/metrics").await;
    let line = format!(
        "peerhost_seeder_downloaded_bytes_total{{site=\"{key}\",from=\"origin\"}} {}",
        site.total()
    );
    assert!(page.contains(&line), "{page}");
    assert!(page.contains(&format!(
        "peerhost_seeder_mirrored_version{{site=\"{key}\"}} 1"
    )));
    within("shutdown", Duration::from_secs(15), mirror.shutdown()).await;

    // Restart on the full cache: nothing but the manifest is fetched.
    origin.reset_counters();
    let mirror = start(&argv).await;
    wait_for("the restarted mirror", Duration::from_secs(30), || {
        status(&mirror).mirrored_version == Some(1)
    })
    .await;
    assert!(status(&mirror).complete);
    assert_eq!(
        origin.served_assets(),
        0,
        "a full cache needs no file from the origin"
    );
    within("shutdown", Duration::from_secs(15), mirror.shutdown()).await;

    // Damage one byte of one file: only that piece comes from the origin again.
    let damaged = version_dir.join("asset/00.bin");
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[20_000] ^= 0xff;
    std::fs::write(&damaged, &bytes).unwrap();
    origin.reset_counters();
    let mirror = start(&argv).await;
    wait_for("the repaired file", Duration::from_secs(30), || {
        std::fs::read(&damaged).ok().as_deref() == Some(&site.files[0].1[..])
    })
    .await;
    assert_eq!(
        origin.served_assets(),
        16 * 1024,
        "exactly the damaged piece"
    );
    site.assert_files_in(&version_dir);
    within("shutdown", Duration::from_secs(15), mirror.shutdown()).await;
}
