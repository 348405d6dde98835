//! A client that stops reading while large offers are queued to it is
//! closed when its outbound queue passes `outbound_queue_bytes`, long
//! before the message cap or the send timeout would, and the close is
//! counted in /metrics (issue 12).

mod common;

use std::time::{Duration, Instant};

use common::*;
use peerhost_core::signal::AnnounceEvent;
use peerhost_tracker::config::Config;
use peerhost_tracker::metrics::Reason;

#[tokio::test]
async fn slow_reader_is_closed_at_the_byte_cap() {
    let mut cfg = Config::default();
    // Only the byte cap can close the reader within this test.
    cfg.connection.outbound_queue_len = 100_000;
    cfg.connection.outbound_queue_bytes = 64 * 1024;
    cfg.connection.send_timeout_secs = 600;
    cfg.connection.messages_per_sec = 100_000.0;
    cfg.connection.message_burst = 100_000.0;
    let t = Tracker::start(cfg).await;
    let ih = swarm(3);
    let mut sink = Client::connect_small_window(t.addr).await;
    sink.send(&announce(ih, peer(1), AnnounceEvent::Started, &[]))
        .await;
    expect_announce_response(&mut sink, ih).await;
    // From here on `sink` never reads.

    let mut offerer = t.client().await;
    // Close to the 8 KiB SDP cap.
    let big_sdp = format!(
        "{SDP}{}",
        "a=x-pad:0123456789abcdef0123456789abcdef0123456789abcdef\r\n".repeat(130)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut rounds = 0u32;
    // The kernel buffers take a few MiB before the tracker's queue grows;
    // 4000 offers of 8 KiB are 32 MiB.
    while rounds < 4000 && Instant::now() < deadline {
        relay_one_offer(&mut offerer, ih, rounds, &big_sdp).await;
        rounds += 1;
        if t.state.metrics().rejects(Reason::OutboundBytes) > 0 {
            break;
        }
    }
    let m = t.state.metrics();
    assert_eq!(m.rejects(Reason::OutboundBytes), 1, "after {rounds} offers");
    assert_eq!(m.rejects(Reason::SlowConsumer), 0);
    assert_eq!(m.rejects(Reason::SendTimeout), 0);

    // /metrics shows it.
    let body = http_get(t.addr, "/metrics").await;
    assert!(
        body.contains("rejects_total{reason=\"outbound_bytes\"} 1"),
        "{body}"
    );
    drop(sink);
    t.stop().await;
}

/// A plain HTTP/1.0 GET, read to the end.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut body))
        .await
        .unwrap()
        .unwrap();
    body
}
