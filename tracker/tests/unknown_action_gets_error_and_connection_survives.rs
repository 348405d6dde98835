//! Unknown actions and malformed JSON get a protocol error; the connection
//! keeps working.

mod common;

use common::*;
use peerhost_core::signal::{AnnounceEvent, ServerMessage};
use peerhost_tracker::config::Config;
use peerhost_tracker::metrics::Reason;

#[tokio::test]
async fn unknown_action_gets_error_and_connection_survives() {
    let t = Tracker::start(Config::default()).await;
    let mut c = t.client().await;

    c.send_text(r#"{"action":"frobnicate","x":1}"#.into()).await;
    match c.recv().await {
        ServerMessage::Error {
            action,
            failure_reason,
            ..
        } => {
            assert_eq!(action, "frobnicate");
            assert_eq!(failure_reason, "unknown action");
        }
        m => panic!("expected an error, got {m:?}"),
    }
    c.send_text("not json at all".into()).await;
    assert!(matches!(c.recv().await, ServerMessage::Error { .. }));
    c.send_text(r#"{"action":"announce","info_hash":"short","peer_id":"x"}"#.into())
        .await;
    assert!(matches!(c.recv().await, ServerMessage::Error { .. }));

    c.send(&announce(swarm(6), peer(1), AnnounceEvent::Started, &[]))
        .await;
    expect_announce_response(&mut c, swarm(6)).await;
    assert_eq!(t.state.metrics().rejects(Reason::UnknownAction), 1);
    assert_eq!(t.state.metrics().rejects(Reason::Malformed), 2);
    t.stop().await;
}
