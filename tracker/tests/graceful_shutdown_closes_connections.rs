//! Shutdown (SIGINT/SIGTERM in `peerhost tracker`) closes every WebSocket
//! with 1001 "going away" and stops accepting.

mod common;

use std::time::Duration;

use common::*;
use futures_util::StreamExt as _;
use peerhost_core::signal::AnnounceEvent;
use peerhost_tracker::config::Config;
use peerhost_tracker::server::{AppState, serve};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn graceful_shutdown_closes_connections() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(Config::default());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state.clone(), async {
        let _ = stop_rx.await;
    }));

    let mut c = Client::connect(&format!("ws://{addr}/")).await;
    c.send(&announce(swarm(9), peer(1), AnnounceEvent::Started, &[]))
        .await;
    expect_announce_response(&mut c, swarm(9)).await;

    stop_tx.send(()).unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match c.ws.next().await {
                Some(Ok(Message::Close(f))) => return f,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("close within 5 s");
    assert_eq!(frame.map(|f| f.code), Some(CloseCode::Away));
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns")
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}
