//! A `stopped` naming another connection's peer_id does not evict it (T3).

mod common;

use common::*;
use peerhost_core::signal::{AnnounceEvent, ServerMessage};
use peerhost_tracker::config::Config;
use peerhost_tracker::metrics::Reason;

#[tokio::test]
async fn spoofed_stopped_is_ignored() {
    let t = Tracker::start(Config::default()).await;
    let ih = swarm(2);
    let (mut victim, mut attacker) = (t.client().await, t.client().await);

    victim
        .send(&announce(ih, peer(1), AnnounceEvent::Started, &[]))
        .await;
    expect_announce_response(&mut victim, ih).await;

    attacker
        .send(&announce(ih, peer(1), AnnounceEvent::Stopped, &[]))
        .await;
    match attacker.recv().await {
        ServerMessage::Error { info_hash, .. } => assert_eq!(info_hash, Some(ih)),
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(t.state.gauges().peers, 1, "victim still in the swarm");
    assert_eq!(t.state.metrics().rejects(Reason::PeerIdTaken), 1);

    // The victim still receives offers from a newcomer.
    let mut newcomer = t.client().await;
    newcomer
        .send(&announce(ih, peer(3), AnnounceEvent::Started, &[5]))
        .await;
    expect_announce_response(&mut newcomer, ih).await;
    assert!(matches!(victim.recv().await, ServerMessage::Offer(o) if o.peer_id == peer(3)));

    // Its own stopped works.
    victim
        .send(&announce(ih, peer(1), AnnounceEvent::Stopped, &[]))
        .await;
    expect_announce_response(&mut victim, ih).await;
    assert_eq!(t.state.gauges().peers, 1);
    t.stop().await;
}
