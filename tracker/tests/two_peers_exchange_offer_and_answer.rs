//! Two peers meet through the tracker: A's offer reaches B, B's answer reaches A.

mod common;

use common::*;
use peerhost_core::signal::{AnnounceEvent, OfferId, ServerMessage};
use peerhost_tracker::config::Config;

#[tokio::test]
async fn two_peers_exchange_offer_and_answer() {
    let t = Tracker::start(Config::default()).await;
    let ih = swarm(1);
    let (mut a, mut b) = (t.client().await, t.client().await);

    b.send(&announce(ih, peer(2), AnnounceEvent::Started, &[]))
        .await;
    assert_eq!(expect_announce_response(&mut b, ih).await, (0, 1));

    a.send(&announce(ih, peer(1), AnnounceEvent::Started, &[11, 12]))
        .await;
    assert_eq!(expect_announce_response(&mut a, ih).await, (0, 2));

    // Only one other peer: exactly one of A's two offers is relayed, to B.
    let ServerMessage::Offer(offer) = b.recv().await else {
        panic!("B expected an offer")
    };
    assert_eq!(offer.peer_id, peer(1));
    assert_eq!(offer.info_hash, ih);
    assert_eq!(offer.offer.sdp, SDP);
    assert_eq!(offer.offer_id, OfferId([11; 20]));

    b.send(&answer(ih, peer(2), peer(1), offer.offer_id)).await;
    let ServerMessage::Answer(ans) = a.recv().await else {
        panic!("A expected an answer")
    };
    assert_eq!(ans.peer_id, peer(2));
    assert_eq!(ans.offer_id, OfferId([11; 20]));
    assert_eq!(ans.answer.sdp, SDP);

    // No announce response for an answer, nothing else queued.
    assert!(
        b.try_recv(std::time::Duration::from_millis(200))
            .await
            .is_none()
    );
    let m = t.state.metrics().snapshot(t.state.gauges());
    assert_eq!((m.offers_relayed, m.answers_relayed), (1, 1));
    t.stop().await;
}
