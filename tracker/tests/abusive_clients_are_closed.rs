//! Flooding, idling and not reading each end in a close counted by reason,
//! while a well-behaved client on the same tracker is served (T4).

mod common;

use std::time::Duration;

use common::*;
use peerhost_core::signal::AnnounceEvent;
use peerhost_tracker::config::Config;
use peerhost_tracker::metrics::Reason;

#[tokio::test]
async fn flooding_client_is_rate_limited_then_closed() {
    let mut cfg = Config::default();
    cfg.connection.messages_per_sec = 1.0;
    cfg.connection.message_burst = 3.0;
    cfg.connection.rate_limit_strikes = 5;
    let t = Tracker::start(cfg).await;
    let mut flood = t.client().await;
    for _ in 0..20 {
        flood
            .send_text(announce(swarm(1), peer(1), AnnounceEvent::Update, &[]).to_json())
            .await;
    }
    assert!(flood.closed_within(Duration::from_secs(5)).await);
    assert!(t.state.metrics().rejects(Reason::RateLimited) >= 6);
    assert_eq!(t.state.metrics().rejects(Reason::TooManyStrikes), 1);

    let mut calm = t.client().await;
    calm.send(&announce(swarm(1), peer(2), AnnounceEvent::Started, &[]))
        .await;
    expect_announce_response(&mut calm, swarm(1)).await;
    t.stop().await;
}

#[tokio::test]
async fn idle_connection_is_closed() {
    let mut cfg = Config::default();
    cfg.connection.idle_timeout_secs = 1;
    let t = Tracker::start(cfg).await;
    let mut idle = t.client().await;
    assert!(idle.closed_within(Duration::from_secs(4)).await);
    assert_eq!(t.state.metrics().rejects(Reason::Idle), 1);
    t.stop().await;
}

#[tokio::test]
async fn client_that_never_reads_is_closed_and_memory_stays_bounded() {
    let mut cfg = Config::default();
    cfg.connection.outbound_queue_len = 4;
    cfg.connection.send_timeout_secs = 1;
    cfg.connection.messages_per_sec = 100_000.0;
    cfg.connection.message_burst = 100_000.0;
    let t = Tracker::start(cfg).await;
    let ih = swarm(2);
    let mut sink = Client::connect_small_window(t.addr).await;
    sink.send(&announce(ih, peer(1), AnnounceEvent::Started, &[]))
        .await;
    expect_announce_response(&mut sink, ih).await;
    // From here on `sink` never reads.

    let mut offerer = t.client().await;
    let big_sdp = format!(
        "{SDP}{}",
        "a=x-pad:0123456789abcdef0123456789abcdef0123456789abcdef\r\n".repeat(120)
    );
    let mut closed = false;
    // Bounded by time, not rounds: the close comes a send timeout (1 s)
    // after the sink's socket stops taking bytes, and a fast machine sends
    // 3000 offers in less than that.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    for round in 0..200_000u32 {
        if std::time::Instant::now() > deadline {
            break;
        }
        relay_one_offer(&mut offerer, ih, round, &big_sdp).await;
        let m = t.state.metrics();
        if m.rejects(Reason::SlowConsumer) + m.rejects(Reason::SendTimeout) > 0 {
            closed = true;
            break;
        }
    }
    assert!(closed, "the non-reading client was closed");
    drop(sink);
    t.stop().await;
}
