//! The site owner publishes version 2 to the tracker; the tracker pushes it
//! to the mirror, which verifies it, fetches only the changed file, writes
//! version 2 to its cache and prunes version 1.

mod common;

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use peerhost_core::signal::{ClientMessage, ServerMessage};
use tokio_tungstenite::tungstenite::Message;

use common::{Origin, TestSite, Tracker, sign, start, status, wait_for, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_follows_version_pushed_by_tracker() {
    if !common::netns_or_skip("mirror_follows_version_pushed_by_tracker") {
        return;
    }
    common::init_tracing();
    let tracker = Tracker::start().await;
    let url = tracker.url();
    let site = TestSite::generate(8, &[200_000, 100_000, 30_000], 1);
    let origin = Origin::start(&site).await;
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
    wait_for("version 1 in the cache", Duration::from_secs(60), || {
        status(&mirror).mirrored_version == Some(1) && status(&mirror).tracker_connected
    })
    .await;

    // Version 2 changes one file; the origin serves the new bytes, but its
    // peerhost.json still says version 1: only the tracker tells of version 2.
    let mut files = site.files.clone();
    files[1].1[77] ^= 0x55;
    let v2 = sign(&site.secret, &files, 2);
    origin.set(&files[1].0, files[1].1.clone());
    origin.reset_counters();
    let publish = format!("ws://{}/publish", tracker.addr);
    let (mut ws, _) = within(
        "publish connect",
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(publish),
    )
    .await
    .unwrap();
    let msg = ClientMessage::PublishManifest {
        manifest: v2.to_bytes(),
    };
    ws.send(Message::text(msg.to_json())).await.unwrap();
    let reply = within("publish result", Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap();
    let reply = ServerMessage::from_json(reply.to_text().unwrap()).unwrap();
    assert_eq!(reply, ServerMessage::PublishResult { version: 2 });

    wait_for("version 2 in the cache", Duration::from_secs(60), || {
        status(&mirror).mirrored_version == Some(2)
    })
    .await;
    let v2_dir = cache.path().join("2");
    for (path, data) in &files {
        let got = std::fs::read(v2_dir.join(path.trim_start_matches('/'))).unwrap();
        assert!(got == *data, "{path} differs");
    }
    assert!(v2_dir.join("peerhost.json").is_file());
    // Unchanged pieces were reused: at most the changed piece came again.
    assert!(
        origin.served_assets() <= 16 * 1024,
        "served {}",
        origin.served_assets()
    );
    wait_for("version 1 pruned", Duration::from_secs(10), || {
        !cache.path().join("1").exists()
    })
    .await;
    assert_eq!(status(&mirror).version, Some(2));

    within(
        "mirror shutdown",
        Duration::from_secs(15),
        mirror.shutdown(),
    )
    .await;
    tracker.stop().await;
}
