//! The per-IP connection cap refuses the next connection from that address
//! only, and frees the slot when a connection closes.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::*;
use peerhost_core::signal::AnnounceEvent;
use peerhost_tracker::config::Config;
use peerhost_tracker::metrics::Reason;

#[tokio::test]
async fn per_ip_connection_cap_holds() {
    let mut cfg = Config::default();
    cfg.connection.max_connections_per_ip = 2;
    let t = Tracker::start(cfg).await;
    let one = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    let two = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    let a = Client::connect_from(t.addr, one).await.unwrap();
    let mut b = Client::connect_from(t.addr, one).await.unwrap();
    assert!(
        Client::connect_from(t.addr, one).await.is_err(),
        "third from 127.0.0.1 refused"
    );
    assert_eq!(t.state.metrics().rejects(Reason::ConnectionsPerIp), 1);

    // Another address is unaffected.
    let mut c = Client::connect_from(t.addr, two).await.unwrap();
    c.send(&announce(swarm(5), peer(3), AnnounceEvent::Started, &[]))
        .await;
    expect_announce_response(&mut c, swarm(5)).await;

    // Existing connections keep working; closing one frees a slot.
    b.send(&announce(swarm(5), peer(2), AnnounceEvent::Started, &[]))
        .await;
    expect_announce_response(&mut b, swarm(5)).await;
    drop(a);
    let mut again = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Ok(cl) = Client::connect_from(t.addr, one).await {
            again = Some(cl);
            break;
        }
    }
    assert!(again.is_some(), "slot freed after close");
    t.stop().await;
}
