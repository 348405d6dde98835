//! The origin serves files with the right headers, honours `Range`, and
//! counts exactly the body bytes it sends: a 100-byte range counts 100.
//! A real server on 127.0.0.1:0 and a real HTTP client.

mod common;

use std::fs;
use std::sync::Arc;

use peerhost_cli::origin::{self, OriginCounters, PathCount};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT_RANGES, CACHE_CONTROL, CONTENT_RANGE, CONTENT_TYPE, RANGE};

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
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{base}/img/a.jpg");

    // A 100-byte range: 206, the right slice, and 100 bytes counted.
    let r = client
        .get(&url)
        .header(RANGE, "bytes=1000-1099")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        r.headers()[CONTENT_RANGE],
        format!("bytes 1000-1099/{SIZE}")
    );
    assert_eq!(r.headers()[CONTENT_TYPE], "image/jpeg");
    let got = r.bytes().await.unwrap();
    assert_eq!(&got[..], &body[1000..1100]);
    assert_eq!(counters.bytes_served(), 100);
    assert_eq!(counters.requests(), 1);
    assert_eq!(
        counters.path("/img/a.jpg"),
        PathCount {
            requests: 1,
            bytes: 100
        }
    );

    // An open-ended suffix range.
    let r = client
        .get(&url)
        .header(RANGE, "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(&r.bytes().await.unwrap()[..], &body[SIZE - 10..]);
    assert_eq!(counters.bytes_served(), 110);

    // The whole file.
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[ACCEPT_RANGES], "bytes");
    assert_eq!(r.bytes().await.unwrap().len(), SIZE);
    assert_eq!(counters.bytes_served(), 110 + SIZE as u64);

    // HEAD sends headers only.
    let r = client.head(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(counters.bytes_served(), 110 + SIZE as u64);

    // Unsatisfiable: 416, and no file bytes sent.
    let r = client
        .get(&url)
        .header(RANGE, format!("bytes={}-", SIZE + 5))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let sent = r.bytes().await.unwrap().len() as u64;
    assert_eq!(counters.bytes_served(), 110 + SIZE as u64 + sent);
    assert!(sent < 100, "an error body, not the file");
    assert_eq!(
        counters.path("/img/a.jpg"),
        PathCount {
            requests: 5,
            bytes: 110 + SIZE as u64 + sent
        }
    );

    // The manifest is always revalidated; pages are not marked.
    let r = client
        .get(format!("{base}/peerhost.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CACHE_CONTROL], "no-cache");
    assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
    let r = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get(CACHE_CONTROL).is_none());
    assert_eq!(r.headers()[CONTENT_TYPE], "text/html");
    assert_eq!(r.text().await.unwrap(), "<h1>home</h1>");

    let r = client
        .get(format!("{base}/missing.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

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
