//! A validly signed but older (or equal) manifest is refused and not pushed (T2).

mod common;

use common::*;
use peerhost_core::signal::{ClientMessage, ServerMessage};
use peerhost_tracker::config::Config;
use peerhost_tracker::metrics::Reason;

#[tokio::test]
async fn rollback_publish_is_refused() {
    let t = Tracker::start(Config::default()).await;
    let mut sub = t.client().await;
    sub.send(&ClientMessage::SubscribeManifest {
        site_key: site(7),
        have_version: 0,
    })
    .await;
    assert_eq!(
        sub.round_trip().await,
        vec![],
        "subscribed, nothing held yet"
    );

    let mut publisher = Client::connect(&format!("ws://{}/publish", t.addr)).await;
    publisher
        .send(&ClientMessage::PublishManifest {
            manifest: signed_manifest(7, 5),
        })
        .await;
    assert_eq!(
        publisher.recv().await,
        ServerMessage::PublishResult { version: 5 }
    );
    assert!(matches!(
        sub.recv().await,
        ServerMessage::ManifestPush { version: 5, .. }
    ));

    for old in [4, 5, 1] {
        publisher
            .send(&ClientMessage::PublishManifest {
                manifest: signed_manifest(7, old),
            })
            .await;
        match publisher.recv().await {
            ServerMessage::Error {
                action,
                failure_reason,
                ..
            } => {
                assert_eq!(action, "peerhost_publish");
                assert!(failure_reason.contains("not newer"), "{failure_reason}");
            }
            m => panic!("expected a refusal, got {m:?}"),
        }
    }
    // The refusals are answered, so a push would already be queued.
    assert_eq!(sub.round_trip().await, vec![], "nothing pushed");
    assert_eq!(t.state.metrics().rejects(Reason::ManifestRollback), 3);

    // A tampered manifest is refused as invalid.
    let mut bad = signed_manifest(7, 9);
    let n = bad.len();
    bad[n - 1] ^= 1;
    publisher
        .send(&ClientMessage::PublishManifest { manifest: bad })
        .await;
    assert!(matches!(
        publisher.recv().await,
        ServerMessage::Error { .. }
    ));
    assert_eq!(t.state.metrics().rejects(Reason::ManifestInvalid), 1);
    t.stop().await;
}
