//! A `/publish` message trickled in slowly is cut at the frame deadline,
//! not held (up to 2 MiB) until the idle timer; a publish sent at normal
//! speed on the same tracker still works (issue 12, slowloris (b)).

mod common;

use std::time::{Duration, Instant};

use common::*;
use peerhost_core::signal::{ClientMessage, ServerMessage};
use peerhost_tracker::config::Config;
use peerhost_tracker::metrics::Reason;
use tokio::io::AsyncWriteExt as _;
use tokio_tungstenite::MaybeTlsStream;

#[tokio::test]
async fn slow_publish_frame_is_cut() {
    let mut cfg = Config::default();
    cfg.connection.publish_frame_timeout_secs = 1;
    let t = Tracker::start(cfg).await;
    let url = format!("ws://{}/publish", t.addr);

    let mut good = Client::connect(&url).await;
    good.send(&ClientMessage::PublishManifest {
        manifest: signed_manifest(7, 1),
    })
    .await;
    assert_eq!(
        good.recv().await,
        ServerMessage::PublishResult { version: 1 }
    );

    let mut slow = Client::connect(&url).await;
    // A masked text frame announcing 1 MiB, of which 16 bytes ever arrive.
    let mut head = vec![0x81, 0xff];
    head.extend_from_slice(&(1u64 << 20).to_be_bytes());
    head.extend_from_slice(&[1, 2, 3, 4]);
    head.extend_from_slice(&[b'x'; 16]);
    let MaybeTlsStream::Plain(tcp) = slow.ws.get_mut() else {
        panic!("plain TCP expected")
    };
    tcp.write_all(&head).await.unwrap();
    tcp.flush().await.unwrap();
    let started = Instant::now();
    assert!(
        slow.closed_within(Duration::from_secs(5)).await,
        "the slow frame was cut"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(t.state.metrics().rejects(Reason::FrameTimeout), 1);

    // The publisher that sent whole messages idles past the deadline and
    // still publishes: only an unfinished message starts the clock.
    good.send(&ClientMessage::PublishManifest {
        manifest: signed_manifest(7, 2),
    })
    .await;
    assert_eq!(
        good.recv().await,
        ServerMessage::PublishResult { version: 2 }
    );
    assert_eq!(t.state.metrics().rejects(Reason::FrameTimeout), 1);
    t.stop().await;
}
