//! Eclipse (T3): swarm ids are public, so peers from a few networks could
//! fill a swarm and receive every offer. A swarm takes at most
//! `max_peers_per_prefix` peers per /24, and its last `newcomer_slots` only
//! from networks not in it yet. Clients connect from distinct 127.x.y.z
//! addresses (Linux routes 127.0.0.0/8 to lo).

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use peerhost_core::signal::{AnnounceEvent, ServerMessage};
use peerhost_tracker::config::Config;
use peerhost_tracker::metrics::Reason;

/// Announces from `ip`; `Ok` with the client if it joined, `Err` with the
/// error text if refused.
async fn join(t: &Tracker, n: u8, net: u8, host: u8) -> Result<Client, String> {
    let ip = IpAddr::V4(Ipv4Addr::new(127, 0, net, host));
    let mut c = Client::connect_from(t.addr, ip).await.unwrap();
    c.send(&announce(swarm(1), peer(n), AnnounceEvent::Started, &[]))
        .await;
    match c.recv().await {
        ServerMessage::AnnounceResponse { .. } => Ok(c),
        ServerMessage::Error { failure_reason, .. } => Err(failure_reason),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn swarm_prefix_cap_keeps_room_for_newcomers() {
    let mut cfg = Config::default();
    cfg.swarm.max_peers_per_swarm = 6;
    cfg.swarm.max_peers_per_prefix = 3;
    cfg.swarm.newcomer_slots = 2;
    let t = Tracker::start(cfg).await;
    let mut held = Vec::new();

    // An attacker's /24 gets three peers in, not four.
    for host in 1..=3 {
        held.push(join(&t, host, 1, host).await.unwrap());
    }
    assert_eq!(
        join(&t, 4, 1, 4).await.err().as_deref(),
        Some("too many peers from your network in this swarm")
    );
    assert_eq!(t.state.metrics().rejects(Reason::SwarmPrefixFull), 1);

    // A second attacker /24 joins up to the newcomer slots, then not.
    held.push(join(&t, 5, 2, 1).await.unwrap());
    assert_eq!(
        join(&t, 6, 2, 2).await.err().as_deref(),
        Some("swarm is full")
    );
    assert_eq!(t.state.metrics().rejects(Reason::SwarmReserved), 1);

    // Newcomer networks still get in, until the swarm is really full.
    held.push(join(&t, 7, 3, 1).await.unwrap());
    held.push(join(&t, 8, 4, 1).await.unwrap());
    assert_eq!(
        join(&t, 9, 5, 1).await.err().as_deref(),
        Some("swarm is full")
    );
    assert_eq!(t.state.metrics().rejects(Reason::SwarmFull), 1);
    assert_eq!(held.len(), 6);
    t.stop().await;
}
