//! A mirror whose origin starts serving a forged manifest — a newer version
//! whose signature does not verify, then one signed by another key — refuses
//! both, counts them in its metrics, and keeps serving the last good
//! version: a fresh peer still gets that version from it over WebRTC.

mod common;

use std::time::Duration;

use peerhost_core::manifest::SiteSecret;

use common::{
    Origin, TestSite, Tracker, http_get, sign, start, status, wait_for, with_signature_of, within,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_refuses_tampered_manifest_keeps_last_good() {
    if !common::netns_or_skip("mirror_refuses_tampered_manifest_keeps_last_good") {
        return;
    }
    common::init_tracing();
    let tracker = Tracker::start().await;
    let url = tracker.url();
    let site = TestSite::generate(6, &[300_000, 200_000, 60_000], 1);
    let origin = Origin::start(&site).await;
    // The good manifest stays reachable here for the second peer.
    origin.set("/v1.json", site.signed.to_json());

    let cache_a = tempfile::tempdir().unwrap();
    let a = start(&[
        "--manifest-url",
        &origin.url("/peerhost.json"),
        "--site-key",
        &site.key(),
        "--cache",
        cache_a.path().to_str().unwrap(),
        "--tracker",
        &url,
        "--refresh-secs",
        "1",
        "--metrics",
        "127.0.0.1:0",
    ])
    .await;
    wait_for(
        "mirror A to fill its cache",
        Duration::from_secs(60),
        || status(&a).mirrored_version == Some(1),
    )
    .await;

    // Version 2 with new content, but a signature that is not over it.
    let mut files = site.files.clone();
    files[0].1[0] ^= 1;
    let v2 = sign(&site.secret, &files, 2);
    let v3 = sign(&site.secret, &files, 3);
    origin.set("/peerhost.json", with_signature_of(&v2, &v3));
    wait_for(
        "the forged signature to be refused",
        Duration::from_secs(30),
        || status(&a).manifests_refused >= 1,
    )
    .await;
    assert_eq!(status(&a).version, Some(1));

    // Version 2 properly signed, by another site's key.
    let thief = SiteSecret::from_seed([7; 32]);
    origin.set("/peerhost.json", sign(&thief, &files, 2).to_json());
    let before = status(&a).manifests_refused;
    wait_for(
        "the foreign manifest to be refused",
        Duration::from_secs(30),
        || status(&a).manifests_refused > before,
    )
    .await;
    let st = status(&a);
    assert_eq!((st.version, st.mirrored_version), (Some(1), Some(1)));
    site.assert_files_in(&cache_a.path().join("1"));
    let page = http_get(a.metrics_addr().unwrap(), "/metrics").await;
    let refused = format!(
        "peerhost_seeder_manifests_refused_total{{site=\"{}\"}} {}",
        site.key(),
        st.manifests_refused
    );
    assert!(page.contains(&refused), "{page}");

    // A fresh peer still gets version 1 — from A, not the origin.
    origin.reset_counters();
    let cache_b = tempfile::tempdir().unwrap();
    let b = start(&[
        "--manifest-url",
        &origin.url("/v1.json"),
        "--site-key",
        &site.key(),
        "--cache",
        cache_b.path().to_str().unwrap(),
        "--tracker",
        &url,
    ])
    .await;
    wait_for("mirror B to finish", Duration::from_secs(60), || {
        status(&b).mirrored_version == Some(1)
    })
    .await;
    site.assert_files_in(&cache_b.path().join("1"));
    assert!(
        origin.served_assets() * 10 <= site.total(),
        "the origin served {} of {} bytes",
        origin.served_assets(),
        site.total()
    );
    assert!(status(&a).bytes_uploaded > 0);

    within("B shutdown", Duration::from_secs(15), b.shutdown()).await;
    within("A shutdown", Duration::from_secs(15), a.shutdown()).await;
    tracker.stop().await;
}
