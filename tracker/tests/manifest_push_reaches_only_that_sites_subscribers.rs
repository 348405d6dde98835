//! A published manifest is pushed once to every subscriber of its site and
//! to nobody else.

mod common;

use common::*;
use peerhost_core::signal::{ClientMessage, ServerMessage};
use peerhost_tracker::config::Config;

#[tokio::test]
async fn manifest_push_reaches_only_that_sites_subscribers() {
    let t = Tracker::start(Config::default()).await;
    let mut subs = Vec::new();
    for _ in 0..3 {
        let mut c = t.client().await;
        c.send(&ClientMessage::SubscribeManifest {
            site_key: site(7),
            have_version: 0,
        })
        .await;
        subs.push(c);
    }
    let mut other = t.client().await;
    other
        .send(&ClientMessage::SubscribeManifest {
            site_key: site(8),
            have_version: 0,
        })
        .await;
    let mut bystander = t.client().await;

    // Publish only once every subscription is in (a round trip each).
    for c in subs.iter_mut().chain([&mut other]) {
        assert_eq!(c.round_trip().await, vec![]);
    }
    let mut publisher = Client::connect(&format!("ws://{}/publish", t.addr)).await;
    let bytes = signed_manifest(7, 3);
    publisher
        .send(&ClientMessage::PublishManifest {
            manifest: bytes.clone(),
        })
        .await;
    assert_eq!(
        publisher.recv().await,
        ServerMessage::PublishResult { version: 3 }
    );

    for c in &mut subs {
        match c.recv().await {
            ServerMessage::ManifestPush {
                site_key,
                version,
                manifest,
            } => {
                assert_eq!((site_key, version), (site(7), 3));
                assert_eq!(manifest, bytes);
            }
            m => panic!("expected a push, got {m:?}"),
        }
        assert_eq!(c.round_trip().await, vec![], "pushed once");
    }
    // The publish was answered, so every push it made is queued already.
    assert_eq!(
        other.round_trip().await,
        vec![],
        "another site's subscriber"
    );
    assert_eq!(bystander.round_trip().await, vec![], "not subscribed");
    assert_eq!(publisher.round_trip().await, vec![], "the publisher");

    // A late subscriber behind the current version gets it at once.
    let mut late = t.client().await;
    late.send(&ClientMessage::SubscribeManifest {
        site_key: site(7),
        have_version: 2,
    })
    .await;
    assert!(matches!(
        late.recv().await,
        ServerMessage::ManifestPush { version: 3, .. }
    ));
    t.stop().await;
}
