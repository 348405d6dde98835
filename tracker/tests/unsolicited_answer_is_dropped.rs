//! An answer that matches no outstanding relayed offer is never delivered (T5).

mod common;

use std::time::Duration;

use common::*;
use peerhost_core::signal::{AnnounceEvent, OfferId, ServerMessage};
use peerhost_tracker::config::Config;
use peerhost_tracker::metrics::Reason;

#[tokio::test]
async fn unsolicited_answer_is_dropped() {
    let t = Tracker::start(Config::default()).await;
    let ih = swarm(3);
    let (mut target, mut sender) = (t.client().await, t.client().await);
    target
        .send(&announce(ih, peer(1), AnnounceEvent::Started, &[]))
        .await;
    expect_announce_response(&mut target, ih).await;
    sender
        .send(&announce(ih, peer(2), AnnounceEvent::Started, &[]))
        .await;
    expect_announce_response(&mut sender, ih).await;

    // No offer was ever relayed from 1 to 2.
    sender
        .send(&answer(ih, peer(2), peer(1), OfferId([9; 20])))
        .await;
    assert!(matches!(sender.recv().await, ServerMessage::Error { .. }));
    assert!(
        target.try_recv(Duration::from_millis(300)).await.is_none(),
        "nothing delivered"
    );
    assert_eq!(t.state.metrics().rejects(Reason::UnsolicitedAnswer), 1);

    // A real offer, answered twice: only the first answer is delivered.
    target
        .send(&announce(ih, peer(1), AnnounceEvent::Update, &[4]))
        .await;
    expect_announce_response(&mut target, ih).await;
    let ServerMessage::Offer(o) = sender.recv().await else {
        panic!("offer expected")
    };
    sender.send(&answer(ih, peer(2), peer(1), o.offer_id)).await;
    assert!(matches!(target.recv().await, ServerMessage::Answer(_)));
    sender.send(&answer(ih, peer(2), peer(1), o.offer_id)).await;
    assert!(matches!(sender.recv().await, ServerMessage::Error { .. }));
    assert!(target.try_recv(Duration::from_millis(300)).await.is_none());
    assert_eq!(t.state.metrics().rejects(Reason::UnsolicitedAnswer), 2);
    t.stop().await;
}
