//! A published manifest is pushed once to every subscriber of its site and
//! to nobody else.

mod common;

use std::time::Duration;

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

    // Subscriptions are processed in order; publish after they are in.
    tokio::time::sleep(Duration::from_millis(100)).await;
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
        assert!(
            c.try_recv(Duration::from_millis(100)).await.is_none(),
            "pushed once"
        );
    }
    assert!(other.try_recv(Duration::from_millis(200)).await.is_none());
    assert!(
        bystander
            .try_recv(Duration::from_millis(200))
            .await
            .is_none()
    );
    assert!(
        publisher
            .try_recv(Duration::from_millis(100))
            .await
            .is_none()
    );

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
