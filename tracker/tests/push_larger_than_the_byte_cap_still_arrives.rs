//! The outbound byte cap refuses to queue more once it is reached, but one
//! message may cross it: a manifest push larger than the cap still reaches
//! a client that reads (issue 12).

mod common;

use common::*;
use peerhost_core::signal::{AnnounceEvent, ClientMessage, ServerMessage};
use peerhost_tracker::config::Config;
use peerhost_tracker::metrics::Reason;

#[tokio::test]
async fn push_larger_than_the_byte_cap_still_arrives() {
    let mut cfg = Config::default();
    cfg.connection.outbound_queue_bytes = 64;
    let t = Tracker::start(cfg).await;
    let mut sub = t.client().await;
    sub.send(&ClientMessage::SubscribeManifest {
        site_key: site(7),
        have_version: 0,
    })
    .await;
    // A round trip, so the subscription is in before the publish.
    let ih = swarm(1);
    sub.send(&announce(ih, peer(1), AnnounceEvent::Started, &[]))
        .await;
    expect_announce_response(&mut sub, ih).await;

    let mut publisher = Client::connect(&format!("ws://{}/publish", t.addr)).await;
    publish_ok(&mut publisher, 7, 1).await;
    assert!(matches!(
        sub.recv().await,
        ServerMessage::ManifestPush { version: 1, .. }
    ));
    assert_eq!(t.state.metrics().rejects(Reason::OutboundBytes), 0);
    t.stop().await;
}
