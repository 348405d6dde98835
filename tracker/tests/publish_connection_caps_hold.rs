//! `/publish` has its own connection caps, total and per IP, below the
//! tracker's: a stranger cannot open many connections that may each hold a
//! 2 MiB message, and the tracker's own endpoint is unaffected (issue 12).

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::*;
use peerhost_core::signal::{AnnounceEvent, ClientMessage, ServerMessage};
use peerhost_tracker::config::Config;
use peerhost_tracker::metrics::Reason;

#[tokio::test]
async fn publish_connection_caps_hold() {
    let mut cfg = Config::default();
    cfg.connection.max_publish_connections = 2;
    cfg.connection.max_publish_connections_per_ip = 1;
    let t = Tracker::start(cfg).await;
    let ip = |n| IpAddr::V4(Ipv4Addr::new(127, 0, 0, n));

    let mut a = Client::connect_from_to(t.addr, ip(1), "/publish")
        .await
        .unwrap();
    assert!(
        Client::connect_from_to(t.addr, ip(1), "/publish")
            .await
            .is_err(),
        "second /publish from 127.0.0.1 refused"
    );
    assert_eq!(
        t.state.metrics().rejects(Reason::PublishConnectionsPerIp),
        1
    );
    let _b = Client::connect_from_to(t.addr, ip(2), "/publish")
        .await
        .unwrap();
    assert!(
        Client::connect_from_to(t.addr, ip(3), "/publish")
            .await
            .is_err(),
        "third /publish in all refused"
    );
    assert_eq!(
        t.state.metrics().rejects(Reason::PublishConnectionsTotal),
        1
    );

    // The tracker endpoint from the same address is not capped by it.
    let mut c = Client::connect_from(t.addr, ip(1)).await.unwrap();
    c.send(&announce(swarm(5), peer(3), AnnounceEvent::Started, &[]))
        .await;
    expect_announce_response(&mut c, swarm(5)).await;

    // The admitted publisher works; closing it frees its slot.
    a.send(&ClientMessage::PublishManifest {
        manifest: signed_manifest(7, 1),
    })
    .await;
    assert_eq!(a.recv().await, ServerMessage::PublishResult { version: 1 });
    drop(a);
    let mut again = None;
    for _ in 0..100 {
        if let Ok(cl) = Client::connect_from_to(t.addr, ip(1), "/publish").await {
            again = Some(cl);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "slot freed after close");
    t.stop().await;
}
