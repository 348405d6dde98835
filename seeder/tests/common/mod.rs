//! Shared test parts: a real tracker and a real HTTP origin on 127.0.0.1,
//! generated signed sites, and bounded waits.
#![allow(dead_code, missing_docs)]

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use clap::Parser;
use peerhost_core::manifest::{Asset, Manifest, SignedManifest, SiteSecret};
use peerhost_core::rng::Rng;
use peerhost_seeder::{SeedArgs, Seeder, SiteStatus};
use peerhost_tracker::config::Config;
use peerhost_tracker::server::{AppState, serve};

/// Whether WebRTC tests may run here (see `peerhost_testenv`).
pub fn netns_or_skip(test: &str) -> bool {
    peerhost_testenv::netns_or_skip(test, "WebRTC tests")
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "peerhost_seeder=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// `peerhost seed` arguments, parsed as the CLI would.
pub fn args(argv: &[&str]) -> SeedArgs {
    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        seed: SeedArgs,
    }
    let mut full = vec!["seed"];
    full.extend_from_slice(argv);
    Cmd::try_parse_from(full).expect("valid arguments").seed
}

pub async fn start(argv: &[&str]) -> Seeder {
    Seeder::start(&args(argv)).await.expect("seeder starts")
}

/// Waits until `done` holds, polling; panics after `limit`.
pub async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Bounds a future (a shutdown, a request).
pub async fn within<T>(what: &str, limit: Duration, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {limit:?}: {what}"))
}

pub fn status(s: &Seeder) -> SiteStatus {
    s.status().into_iter().next().expect("one site")
}

// ------------------------------------------------------------------ tracker

pub struct Tracker {
    pub addr: SocketAddr,
    pub state: AppState,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Tracker {
    pub async fn start() -> Tracker {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    pub async fn start_on(addr: SocketAddr) -> Tracker {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind tracker");
        let addr = listener.local_addr().unwrap();
        let state = AppState::new(Config::default());
        let task = tokio::spawn(serve(listener, state.clone(), std::future::pending()));
        Tracker { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Peers in all swarms.
    pub fn peers(&self) -> usize {
        self.state.gauges().peers
    }

    pub async fn stop(self) {
        self.state.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// A loopback address nothing listens on (yet).
pub async fn free_addr() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

// -------------------------------------------------------------------- sites

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A generated site: its key, files and signed manifest.
pub struct TestSite {
    pub secret: SiteSecret,
    pub files: Vec<(String, Vec<u8>)>,
    pub signed: SignedManifest,
}

impl TestSite {
    /// Files of the given sizes with seeded random content, signed as `version`.
    pub fn generate(seed: u64, sizes: &[usize], version: u64) -> TestSite {
        let secret = SiteSecret::from_seed([seed as u8; 32]);
        let mut rng = Rng::new(seed);
        let files: Vec<(String, Vec<u8>)> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let data: Vec<u8> = (0..*n).map(|_| rng.next_u64() as u8).collect();
                (format!("/asset/{i:02}.bin"), data)
            })
            .collect();
        let signed = sign(&secret, &files, version);
        TestSite {
            secret,
            files,
            signed,
        }
    }

    pub fn key(&self) -> String {
        self.secret.site_key().to_string()
    }

    pub fn total(&self) -> u64 {
        self.files.iter().map(|(_, d)| d.len() as u64).sum()
    }

    /// Writes the files and `peerhost.json` under `dir`, as `peerhost publish` does.
    pub fn write_to(&self, dir: &Path) {
        for (path, data) in &self.files {
            let file = dir.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, data).unwrap();
        }
        std::fs::write(dir.join("peerhost.json"), self.signed.to_json()).unwrap();
    }

    /// Panics unless every file under `dir` equals the site's.
    pub fn assert_files_in(&self, dir: &Path) {
        for (path, data) in &self.files {
            let file = dir.join(path.trim_start_matches('/'));
            let got = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert!(
                got == *data,
                "{} differs from the site's file",
                file.display()
            );
        }
    }
}

pub fn sign(secret: &SiteSecret, files: &[(String, Vec<u8>)], version: u64) -> SignedManifest {
    let assets = files
        .iter()
        .map(|(p, d)| Asset::from_bytes(p, "application/octet-stream", 16 * 1024, d))
        .collect();
    let now = unix_now();
    Manifest {
        site_key: secret.site_key(),
        version,
        issued_at: now - 60,
        expires_at: now + 24 * 3600,
        flags: 0,
        assets,
    }
    .sign(secret)
    .expect("valid manifest")
}

/// `signed`'s JSON with its signature replaced by `other`'s: a manifest
/// that claims the site but fails verification.
pub fn with_signature_of(signed: &SignedManifest, other: &SignedManifest) -> String {
    let mut doc: serde_json::Value = serde_json::from_str(&signed.to_json()).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(&other.to_json()).unwrap();
    doc["signature"] = theirs["signature"].clone();
    serde_json::to_string_pretty(&doc).unwrap()
}

// ------------------------------------------------------------------- origin

/// A static HTTP origin with `Range` support that counts the bytes it serves.
#[derive(Clone)]
pub struct Origin {
    pub addr: SocketAddr,
    inner: Arc<OriginState>,
}

#[derive(Default)]
struct OriginState {
    files: RwLock<HashMap<String, Vec<u8>>>,
    /// Body bytes served, all paths.
    served: AtomicU64,
    /// Body bytes served for paths other than manifests (`*.json`).
    served_assets: AtomicU64,
}

impl Origin {
    /// Serves `site`'s files and its manifest at `/peerhost.json`.
    pub async fn start(site: &TestSite) -> Origin {
        let state = Arc::new(OriginState::default());
        {
            let mut files = state.files.write().unwrap();
            for (p, d) in &site.files {
                files.insert(p.clone(), d.clone());
            }
            files.insert("/peerhost.json".into(), site.signed.to_json().into_bytes());
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().fallback(serve_file).with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Origin { addr, inner: state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, path: &str, body: impl Into<Vec<u8>>) {
        self.inner
            .files
            .write()
            .unwrap()
            .insert(path.into(), body.into());
    }

    pub fn served(&self) -> u64 {
        self.inner.served.load(Ordering::SeqCst)
    }

    pub fn served_assets(&self) -> u64 {
        self.inner.served_assets.load(Ordering::SeqCst)
    }

    pub fn reset_counters(&self) {
        self.inner.served.store(0, Ordering::SeqCst);
        self.inner.served_assets.store(0, Ordering::SeqCst);
    }
}

async fn serve_file(State(s): State<Arc<OriginState>>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_owned();
    let Some(data) = s.files.read().unwrap().get(&path).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let len = data.len() as u64;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
    let (status, body, content_range) = match range {
        Some((a, b)) if a <= b && b < len => (
            StatusCode::PARTIAL_CONTENT,
            data[a as usize..=b as usize].to_vec(),
            Some(format!("bytes {a}-{b}/{len}")),
        ),
        Some(_) => return StatusCode::RANGE_NOT_SATISFIABLE.into_response(),
        None => (StatusCode::OK, data, None),
    };
    s.served.fetch_add(body.len() as u64, Ordering::SeqCst);
    if !path.ends_with(".json") {
        s.served_assets
            .fetch_add(body.len() as u64, Ordering::SeqCst);
    }
    let mut resp = (status, body).into_response();
    if let Some(cr) = content_range {
        resp.headers_mut()
            .insert(header::CONTENT_RANGE, cr.parse().unwrap());
    }
    resp
}

/// A plain HTTP/1.0 GET on loopback, for `/metrics`.
pub async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    within("metrics request", Duration::from_secs(10), async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    })
    .await
}
