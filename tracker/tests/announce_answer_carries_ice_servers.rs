//! A tracker configured with static ICE servers and a TURN shared secret
//! hands both to every client in its announce answers: the static entry as
//! configured, and a TURN entry whose credential is the coturn REST HMAC
//! of a username that expires `ttl` seconds from now and names the
//! connection, not the client's address. Two connections get two different
//! usernames; a tracker without the configuration sends no field at all.

mod common;

use common::*;
use peerhost_core::ice::IceServer;
use peerhost_core::signal::{AnnounceEvent, ServerMessage};
use peerhost_tracker::config::Config;
use peerhost_tracker::ice::{TurnConfig, turn_credential};

const TURN_URL: &str = "turn:192.0.2.10:3478?transport=udp";

fn configured() -> Config {
    Config {
        ice_servers: vec![IceServer::url("stun:192.0.2.10:3478")],
        turn: TurnConfig {
            urls: vec![TURN_URL.into()],
            secret: Some("tracker-secret".into()),
            ttl_secs: 600,
            ..TurnConfig::default()
        },
        ..Config::default()
    }
}

async fn answer_servers(c: &mut Client, n: u8) -> Vec<IceServer> {
    let ih = swarm(7);
    c.send(&announce(ih, peer(n), AnnounceEvent::Started, &[]))
        .await;
    match c.recv().await {
        ServerMessage::AnnounceResponse { ice_servers, .. } => ice_servers,
        other => panic!("expected an announce response, got {other:?}"),
    }
}

#[tokio::test]
async fn announce_answer_carries_configured_and_minted_servers() {
    let t = Tracker::start(configured()).await;
    let (mut a, mut b) = (t.client().await, t.client().await);
    let before = unix_now();
    let first = answer_servers(&mut a, 1).await;
    let second = answer_servers(&mut b, 2).await;
    let after = unix_now();

    assert_eq!(first.len(), 2, "static + minted: {first:?}");
    assert_eq!(first[0], IceServer::url("stun:192.0.2.10:3478"));
    let turn = &first[1];
    assert_eq!(turn.urls, vec![TURN_URL.to_owned()]);
    let username = turn.username.clone().expect("a minted username");
    let (expiry, id) = username.split_once(':').expect("EXPIRY:ID");
    let expiry: u64 = expiry.parse().expect("expiry in Unix seconds");
    assert!(
        (before + 600..=after + 600).contains(&expiry),
        "expires ttl from now: {expiry} not in {}..={}",
        before + 600,
        after + 600
    );
    assert!(!id.contains("127.0.0.1"), "the id is not the address");
    assert_eq!(
        turn.credential.as_deref(),
        Some(turn_credential(b"tracker-secret", &username).as_str())
    );
    assert_ne!(
        second[1].username, turn.username,
        "each connection gets its own username"
    );
    t.stop().await;

    let plain = Tracker::start(Config::default()).await;
    let mut c = plain.client().await;
    assert!(answer_servers(&mut c, 3).await.is_empty());
    plain.stop().await;
}
