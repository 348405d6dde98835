//! /healthz, /metrics, /stats and /stats.json answer over plain HTTP, and a
//! connection that never finishes its request is closed by the deadline.

mod common;

use std::time::Duration;

use common::*;
use peerhost_tracker::config::Config;
use peerhost_tracker::metrics::Reason;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut body))
        .await
        .unwrap()
        .unwrap();
    body
}

#[tokio::test]
async fn http_endpoints_and_handshake_deadline() {
    let mut cfg = Config::default();
    cfg.connection.handshake_timeout_secs = 1;
    let t = Tracker::start(cfg).await;
    assert!(get(t.addr, "/healthz").await.ends_with("ok\n"));
    let metrics = get(t.addr, "/metrics").await;
    assert!(
        metrics.contains("peerhost_tracker_connections "),
        "{metrics}"
    );
    assert!(metrics.contains("peerhost_tracker_rejects_total{reason=\"idle\"}"));
    assert!(get(t.addr, "/stats").await.contains("<canvas"));
    assert!(
        get(t.addr, "/stats.json")
            .await
            .contains("\"offers_relayed\"")
    );
    assert!(get(t.addr, "/").await.starts_with("HTTP/1.1 426"));

    // Slowloris: half a request line, then silence.
    let mut slow = tokio::net::TcpStream::connect(t.addr).await.unwrap();
    slow.write_all(b"GET / HT").await.unwrap();
    let mut buf = [0u8; 64];
    let r = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf)).await;
    assert!(
        matches!(r, Ok(Ok(_)) | Ok(Err(_))),
        "closed by the deadline"
    );
    assert_eq!(t.state.metrics().rejects(Reason::HandshakeTimeout), 1);
    t.stop().await;
}
