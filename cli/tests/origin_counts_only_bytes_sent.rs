//! The origin serves files with the right headers, honours `Range`, and
//! counts exactly the body bytes it sends: a 100-byte range counts 100.
//! A real server on 127.0.0.1:0 and a real HTTP client.

mod common;

use std::fs;
use std::sync::Arc;

use common::{get, http};
use peerhost_site::origin::{self, OriginCounters, PathCount};

const SIZE: usize = 100_000;

#[tokio::test]
async fn origin_counts_only_the_bytes_it_sends() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("img")).unwrap();
    let body = common::pattern(SIZE, 9);
    fs::write(tmp.path().join("img/a.jpg"), &body).unwrap();
    fs::write(tmp.path().join("index.html"), "<h1>home</h1>").unwrap();
    fs::write(tmp.path().join("peerhost.json"), "{}").unwrap();

    let counters = Arc::new(OriginCounters::new());
    let app = origin::router(tmp.path().to_owned(), counters.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("{base}/img/a.jpg");

    // A 100-byte range: 206, the right slice, and 100 bytes counted.
    let r = http("GET", &url, &[("range", "bytes=1000-1099")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), format!("bytes 1000-1099/{SIZE}"));
    assert_eq!(r.header("content-type"), "image/jpeg");
    assert_eq!(&r.body[..], &body[1000..1100]);
    assert_eq!(counters.bytes_served(), 100);
    assert_eq!(counters.requests(), 1);
    assert_eq!(
        counters.path("/img/a.jpg"),
        PathCount {
            requests: 1,
            bytes: 100
        }
    );

    // A suffix range.
    let r = http("GET", &url, &[("range", "bytes=-10")]).await;
    assert_eq!(r.status, 206);
    assert_eq!(&r.body[..], &body[SIZE - 10..]);
    assert_eq!(counters.bytes_served(), 110);

    // The whole file.
    let r = get(&url).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("accept-ranges"), "bytes");
    assert_eq!(r.body.len(), SIZE);
    assert_eq!(counters.bytes_served(), 110 + SIZE as u64);

    // HEAD sends headers only.
    let r = http("HEAD", &url, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(counters.bytes_served(), 110 + SIZE as u64);

    // Unsatisfiable: 416, and no file bytes sent.
    let range = format!("bytes={}-", SIZE + 5);
    let r = http("GET", &url, &[("range", &range)]).await;
    assert_eq!(r.status, 416);
    let sent = r.body.len() as u64;
    assert!(sent < 100, "an error body, not the file");
    assert_eq!(counters.bytes_served(), 110 + SIZE as u64 + sent);
    assert_eq!(
        counters.path("/img/a.jpg"),
        PathCount {
            requests: 5,
            bytes: 110 + SIZE as u64 + sent
        }
    );

    // The manifest is always revalidated; pages are not marked.
    let r = get(&format!("{base}/peerhost.json")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), "no-cache");
    assert_eq!(r.header("content-type"), "application/json");
    let r = get(&format!("{base}/")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), "");
    assert_eq!(r.header("content-type"), "text/html");
    assert_eq!(r.body, b"<h1>home</h1>");

    assert_eq!(get(&format!("{base}/missing.css")).await.status, 404);

    let snapshot = counters.snapshot();
    assert_eq!(
        snapshot["/peerhost.json"],
        PathCount {
            requests: 1,
            bytes: 2
        }
    );
    assert_eq!(
        snapshot["/"],
        PathCount {
            requests: 1,
            bytes: 13
        }
    );
    assert_eq!(snapshot["/missing.css"].requests, 1);
    assert_eq!(counters.requests(), 8);

    counters.reset();
    assert_eq!((counters.requests(), counters.bytes_served()), (0, 0));
    assert!(counters.snapshot().is_empty());
    server.abort();
}
