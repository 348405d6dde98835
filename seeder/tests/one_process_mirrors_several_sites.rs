//! A cooperating host mirrors several sites in one process: `--manifest-url`
//! repeated, each site from its own origin, each kept in its own part of the
//! cache (named after its manifest URL), each verified under its own key.
//! `--origin` with several manifest URLs is a usage error.

mod common;

use std::time::Duration;

use common::{Origin, TestSite, args, free_addr, start, wait_for, within};
use peerhost_seeder::{Seeder, StartError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_mirrors_several_sites() {
    common::init_tracing();
    let a = TestSite::generate(21, &[120_000, 30_000], 1);
    let b = TestSite::generate(22, &[90_000, 5_000, 40_000], 1);
    assert_ne!(a.key(), b.key());
    let (origin_a, origin_b) = (Origin::start(&a).await, Origin::start(&b).await);
    // The tracker is down: both sites come from their origins.
    let tracker = format!("ws://{}/", free_addr().await);
    let cache = tempfile::tempdir().unwrap();
    let (url_a, url_b) = (
        origin_a.url("/peerhost.json"),
        origin_b.url("/peerhost.json"),
    );
    let (key_a, key_b) = (a.key(), b.key());
    let argv = [
        "--manifest-url",
        url_a.as_str(),
        "--manifest-url",
        url_b.as_str(),
        "--site-key",
        key_a.as_str(),
        "--site-key",
        key_b.as_str(),
        "--cache",
        cache.path().to_str().unwrap(),
        "--tracker",
        tracker.as_str(),
    ];
    let mirror = start(&argv).await;
    wait_for("both sites mirrored", Duration::from_secs(30), || {
        let st = mirror.status();
        st.len() == 2
            && st
                .iter()
                .all(|s| s.complete && s.mirrored_version == Some(1))
    })
    .await;
    let mut keys: Vec<String> = mirror.status().iter().map(|s| s.site_key.clone()).collect();
    keys.sort();
    let mut want = vec![key_a.clone(), key_b.clone()];
    want.sort();
    assert_eq!(keys, want);
    // Each in its own directory, named after its manifest URL.
    for (site, origin, url) in [(&a, &origin_a, &url_a), (&b, &origin_b, &url_b)] {
        let name: String = url
            .trim_start_matches("http://")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        site.assert_files_in(&cache.path().join(name).join("1"));
        assert_eq!(origin.served_assets(), site.total());
    }
    within("shutdown", Duration::from_secs(15), mirror.shutdown()).await;

    // One --origin cannot serve two manifest URLs.
    let mut with_origin = args(&argv);
    with_origin.origin = Some(origin_a.url(""));
    let err = Seeder::start(&with_origin).await.unwrap_err();
    assert!(matches!(err, StartError::Usage(_)), "{err}");
    assert!(err.to_string().contains("--origin"), "{err}");
}
