//! `peerhost push` against a real tracker on 127.0.0.1:0: an accepted push
//! reaches a subscribed visitor once; every refusal (rollback, wrong key,
//! tampered manifest, publishing disabled, unreachable tracker, bad URL) is
//! one `error:` line and exit code 1.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Run, keygen, peerhost, publish, write_site};
use futures_util::{SinkExt as _, StreamExt as _};
use peerhost_core::manifest::SiteKey;
use peerhost_core::signal::{ClientMessage, ServerMessage};
use peerhost_tracker::config::Config;
use peerhost_tracker::server::{AppState, serve};
use tokio_tungstenite::tungstenite::Message;

async fn tracker(cfg: Config) -> (String, AppState) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(cfg);
    tokio::spawn(serve(listener, state.clone(), std::future::pending()));
    (format!("ws://{addr}/announce"), state)
}

/// Runs `peerhost push DIR --tracker URL --key KEY` off the async runtime.
async fn push(dir: &Path, url: &str, key: &Path) -> Run {
    let mut cmd = peerhost();
    cmd.arg("push")
        .arg(dir)
        .arg("--tracker")
        .arg(url)
        .arg("--key")
        .arg(key)
        .args(["--timeout", "5"]);
    tokio::task::spawn_blocking(move || cmd.output().expect("run peerhost push").into())
        .await
        .unwrap()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn subscriber(url: &str, site: SiteKey) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let sub = ClientMessage::SubscribeManifest {
        site_key: site,
        have_version: 0,
    };
    ws.send(Message::text(sub.to_json())).await.unwrap();
    // A round trip: the subscription is in before anything is pushed.
    assert_eq!(pushes_before_round_trip(&mut ws).await, Vec::<u64>::new());
    ws
}

/// Sends a scrape and returns the versions pushed before its answer. The
/// tracker handles a connection's messages in order and queues its
/// replies and pushes in one queue, so this is a barrier, and a push that
/// a finished `peerhost push` caused is in the list (no silence window).
async fn pushes_before_round_trip(ws: &mut Ws) -> Vec<u64> {
    let scrape = ClientMessage::Scrape {
        info_hashes: vec![peerhost_core::signal::InfoHash([0; 20])],
    };
    ws.send(Message::text(scrape.to_json())).await.unwrap();
    let mut pushed = Vec::new();
    for _ in 0..16 {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("the tracker answers a scrape within 5 s")
            .expect("connection open")
            .expect("a frame");
        let Message::Text(t) = frame else { continue };
        match ServerMessage::from_json(&t).expect("valid JSON") {
            ServerMessage::ScrapeResponse { .. } => return pushed,
            ServerMessage::ManifestPush { version, .. } => pushed.push(version),
            _ => {}
        }
    }
    panic!("no scrape answer")
}

async fn next_push(ws: &mut Ws, wait: Duration) -> Option<u64> {
    loop {
        let frame = tokio::time::timeout(wait, ws.next()).await.ok()??.ok()?;
        if let Message::Text(t) = frame
            && let Ok(ServerMessage::ManifestPush { version, .. }) = ServerMessage::from_json(&t)
        {
            return Some(version);
        }
    }
}

#[tokio::test]
async fn push_reaches_subscribers_once_and_refusals_are_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write_site(&site);
    let (key, site_key) = keygen(tmp.path());
    let site_key: SiteKey = site_key
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .expect("keygen prints the site key");
    assert!(publish(&site, &key, &[]).ok());

    let (url, state) = tracker(Config::default()).await;
    let mut visitor = subscriber(&url, site_key).await;

    let r = push(&site, &url, &key).await;
    assert!(r.ok(), "{r:#?}");
    assert!(r.stdout.contains("pushed version 1"), "{r:#?}");
    assert_eq!(
        next_push(&mut visitor, Duration::from_secs(5)).await,
        Some(1)
    );

    // The same version again is a replay: refused, nothing pushed.
    let line = push(&site, &url, &key).await.one_line_error().to_owned();
    assert!(
        line.contains("refused version 1") && line.contains("not newer"),
        "{line}"
    );
    assert_eq!(
        pushes_before_round_trip(&mut visitor).await,
        Vec::<u64>::new()
    );

    // A new publish goes through and is pushed once.
    std::fs::write(site.join("index.html"), "<!doctype html><h1>v2</h1>\n").unwrap();
    assert!(publish(&site, &key, &[]).ok());
    let r = push(&site, &url, &key).await;
    assert!(r.stdout.contains("pushed version 2"), "{r:#?}");
    assert_eq!(
        next_push(&mut visitor, Duration::from_secs(5)).await,
        Some(2)
    );
    assert_eq!(
        pushes_before_round_trip(&mut visitor).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        state
            .metrics()
            .rejects(peerhost_tracker::metrics::Reason::ManifestRollback),
        1
    );

    // Another site's key: caught locally.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let (other_key, _) = keygen(&other);
    let line = push(&site, &url, &other_key)
        .await
        .one_line_error()
        .to_owned();
    assert!(line.contains("but the key is for site"), "{line}");

    // A tampered manifest: caught locally.
    let tampered = tmp.path().join("tampered");
    common::copy_tree(&site, &tampered);
    let json = std::fs::read_to_string(tampered.join("peerhost.json")).unwrap();
    std::fs::write(
        tampered.join("peerhost.json"),
        json.replace("\"version\": 2", "\"version\": 3"),
    )
    .unwrap();
    let line = push(&tampered, &url, &key)
        .await
        .one_line_error()
        .to_owned();
    assert!(line.contains("signature does not verify"), "{line}");

    // No manifest at all.
    let line = push(&other, &url, &key).await.one_line_error().to_owned();
    assert!(line.contains("run `peerhost publish` first"), "{line}");

    // Publishing disabled on the tracker.
    let mut cfg = Config::default();
    cfg.manifests.enabled = false;
    let (off_url, _) = tracker(cfg).await;
    let line = push(&site, &off_url, &key)
        .await
        .one_line_error()
        .to_owned();
    assert!(line.contains("disabled"), "{line}");

    // Nobody listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let line = push(&site, &format!("ws://{closed}/announce"), &key)
        .await
        .one_line_error()
        .to_owned();
    assert!(line.contains("unreachable"), "{line}");

    let line = push(&site, "http://example.invalid/", &key)
        .await
        .one_line_error()
        .to_owned();
    assert!(line.contains("not a ws:// or wss:// URL"), "{line}");
}
