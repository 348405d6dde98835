//! The origin: a plain static-file HTTP server for a published site, which
//! counts what it serves.
//!
//! It stands for the site's real web server in the demo, the end-to-end
//! tests and the benchmarks; the counters are how a test proves that
//! visitors fetched pieces from each other rather than from the origin.
//! Files are served by tower-http's `ServeDir` (content types, `Range`
//! with 206/416, `HEAD`, `index.html` for directories); a middleware
//! counts requests and the body bytes actually handed to the connection.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::http::header::CACHE_CONTROL;
use axum::middleware::{self, Next};
use axum::response::Response;
use http_body::{Frame, SizeHint};
use peerhost_core::manifest;
use tower_http::services::ServeDir;

/// Requests and body bytes served for one URL path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathCount {
    /// Requests for the path (any method, any status).
    pub requests: u64,
    /// Response body bytes sent for the path.
    pub bytes: u64,
}

/// What the origin served since it started (or since [`OriginCounters::reset`]).
///
/// Bytes are counted as the server hands each body chunk to the connection,
/// so a `Range` request for 100 bytes counts 100 and a `HEAD` counts 0.
#[derive(Debug, Default)]
pub struct OriginCounters {
    requests: AtomicU64,
    bytes: AtomicU64,
    per_path: Mutex<BTreeMap<String, PathCount>>,
}

impl OriginCounters {
    /// Zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests received, all paths.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Body bytes served, all paths.
    pub fn bytes_served(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }

    /// Counts for one URL path (as requested, e.g. `/img/a.jpg`).
    pub fn path(&self, path: &str) -> PathCount {
        self.map().get(path).copied().unwrap_or_default()
    }

    /// Counts for every path requested so far.
    pub fn snapshot(&self) -> BTreeMap<String, PathCount> {
        self.map().clone()
    }

    /// Sets every counter back to zero.
    pub fn reset(&self) {
        let mut map = self.map();
        map.clear();
        self.requests.store(0, Ordering::SeqCst);
        self.bytes.store(0, Ordering::SeqCst);
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, PathCount>> {
        // Counters stay usable even if a holder panicked: they are plain numbers.
        self.per_path.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record_request(&self, path: &str) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.map().entry(path.to_owned()).or_default().requests += 1;
    }

    fn record_bytes(&self, path: &str, n: u64) {
        self.bytes.fetch_add(n, Ordering::SeqCst);
        self.map().entry(path.to_owned()).or_default().bytes += n;
    }
}

/// A router serving the files under `dir`, counting into `counters`.
///
/// `peerhost.json` is served with `Cache-Control: no-cache` so visitors
/// always revalidate the manifest; other files get no caching headers.
pub fn router(dir: PathBuf, counters: Arc<OriginCounters>) -> Router {
    Router::new()
        .fallback_service(ServeDir::new(dir))
        .layer(middleware::from_fn_with_state(counters, count))
}

async fn count(State(counters): State<Arc<OriginCounters>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    counters.record_request(&path);
    let mut resp = next.run(req).await;
    if path.strip_prefix('/') == Some(manifest::FILE_NAME) {
        resp.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    resp.map(|inner| {
        Body::new(CountingBody {
            inner,
            counters,
            path,
        })
    })
}

/// A response body that adds each data frame's length to the counters as
/// it is polled, i.e. as it is handed to the connection.
struct CountingBody {
    inner: Body,
    counters: Arc<OriginCounters>,
    path: String,
}

impl http_body::Body for CountingBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            this.counters.record_bytes(&this.path, data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
