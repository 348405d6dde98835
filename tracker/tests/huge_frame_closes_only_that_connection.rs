//! A 100 MiB frame closes that connection, without buffering it, while
//! another client keeps working (T4).

mod common;

use std::time::Duration;

use common::*;
use futures_util::SinkExt as _;
use peerhost_core::signal::AnnounceEvent;
use peerhost_tracker::config::Config;
use peerhost_tracker::metrics::Reason;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn huge_frame_closes_only_that_connection() {
    let t = Tracker::start(Config::default()).await;
    let ih = swarm(4);
    let mut good = t.client().await;
    good.send(&announce(ih, peer(1), AnnounceEvent::Started, &[]))
        .await;
    expect_announce_response(&mut good, ih).await;

    let mut evil = t.client().await;
    let rss_before = peerhost_tracker::metrics::rss_bytes();
    let huge = "x".repeat(100 * 1024 * 1024);
    // The write fails or completes into a closed socket; either way the tracker closes.
    let _ = tokio::time::timeout(Duration::from_secs(20), evil.ws.send(Message::text(huge))).await;
    assert!(
        evil.closed_within(Duration::from_secs(10)).await,
        "tracker closed the connection"
    );
    assert_eq!(t.state.metrics().rejects(Reason::MessageTooLarge), 1);

    good.send(&announce(ih, peer(1), AnnounceEvent::Update, &[]))
        .await;
    expect_announce_response(&mut good, ih).await;
    let rss_after = peerhost_tracker::metrics::rss_bytes();
    // The test process holds the 100 MiB string itself; the tracker must not
    // have buffered a second copy.
    assert!(
        rss_after < rss_before + 150 * 1024 * 1024,
        "rss grew from {rss_before} to {rss_after}"
    );
    t.stop().await;
}
