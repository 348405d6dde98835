//! Subscribing again to a site, even with `have_version: 0`, does not make
//! the tracker send the whole manifest again: a connection gets each
//! version at most once (issue 12: a 100-byte message must not buy a
//! 1 MiB reply over and over).

mod common;

use common::*;
use peerhost_core::signal::{AnnounceEvent, ClientMessage, ServerMessage};
use peerhost_tracker::config::Config;

#[tokio::test]
async fn repeated_subscribe_pushes_nothing_new() {
    let t = Tracker::start(Config::default()).await;
    let mut publisher = Client::connect(&format!("ws://{}/publish", t.addr)).await;
    publish_ok(&mut publisher, 7, 1).await;

    let subscribe = ClientMessage::SubscribeManifest {
        site_key: site(7),
        have_version: 0,
    };
    let mut sub = t.client().await;
    sub.send(&subscribe).await;
    assert!(matches!(
        sub.recv().await,
        ServerMessage::ManifestPush { version: 1, .. }
    ));
    for _ in 0..5 {
        sub.send(&subscribe).await;
    }
    // A round trip on the same socket: the announce response comes next,
    // so none of the five repeats was answered with a push.
    let ih = swarm(1);
    sub.send(&announce(ih, peer(1), AnnounceEvent::Started, &[]))
        .await;
    expect_announce_response(&mut sub, ih).await;

    // A new version is pushed once, and a repeat after it again pushes nothing.
    publish_ok(&mut publisher, 7, 2).await;
    assert!(matches!(
        sub.recv().await,
        ServerMessage::ManifestPush { version: 2, .. }
    ));
    sub.send(&subscribe).await;
    sub.send(&announce(ih, peer(1), AnnounceEvent::Update, &[]))
        .await;
    expect_announce_response(&mut sub, ih).await;
    t.stop().await;
}
