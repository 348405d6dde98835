//! `peerhost demo`: the whole system on one machine, in one process.
//!
//! Writes the embedded demo site (`demo-site/` in the repository, built
//! into the binary) to a temporary directory, publishes it with the
//! well-known, **not secret** demo key, and serves it from a counting
//! [`origin`](crate::origin) until Ctrl-C.
//!
//! Everything the process serves is assembled in [`app`] and every
//! background task is started in [`serve`]: the tracker joins there.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use indicatif::ProgressBar;
use peerhost_core::manifest::{SiteKey, SiteSecret};
use peerhost_core::piece::Digest;
use tokio::net::TcpListener;
use tower_http::services::{ServeDir, ServeFile};

use crate::fmt::fmt_bytes;
use crate::origin::{self, OriginCounters};
use crate::publish;

/// The phrase whose SHA-256 is the demo key's seed. The demo key is
/// public knowledge: anyone can sign manifests for the demo site, so it
/// must never be used for a real one.
pub const DEMO_KEY_PHRASE: &str = "peerhost demo site key — not secret";

/// The files of `demo-site/`: (`/`-separated relative path, contents).
pub static DEMO_SITE: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/demo_site.rs"));

/// Serve the demo site locally: publish it with the built-in (public) demo
/// key and serve it over HTTP until Ctrl-C.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
}

/// The demo site's secret key: seed = SHA-256 of [`DEMO_KEY_PHRASE`].
pub fn demo_secret() -> SiteSecret {
    SiteSecret::from_seed(Digest::of(DEMO_KEY_PHRASE.as_bytes()).0)
}

/// The demo site's public key.
pub fn demo_site_key() -> SiteKey {
    demo_secret().site_key()
}

/// Writes the embedded demo site under `dir`.
pub fn write_demo_site(dir: &Path) -> io::Result<()> {
    for (rel, bytes) in DEMO_SITE {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes)?;
    }
    Ok(())
}

/// The demo site written to a temporary directory and published; the
/// directory is deleted when this is dropped.
#[derive(Debug)]
pub struct DemoSite {
    dir: tempfile::TempDir,
    report: publish::Report,
}

impl DemoSite {
    /// Writes and publishes the demo site with the demo key.
    pub fn prepare() -> anyhow::Result<DemoSite> {
        let dir = tempfile::Builder::new()
            .prefix("peerhost-demo-")
            .tempdir()
            .context("cannot create a temporary directory for the demo site")?;
        write_demo_site(dir.path()).context("cannot write the demo site")?;
        let report = publish::publish(
            dir.path(),
            &demo_secret(),
            &publish::Options::default(),
            &ProgressBar::hidden(),
        )?;
        Ok(DemoSite { dir, report })
    }

    /// Where the published site is.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What publishing produced.
    pub fn report(&self) -> &publish::Report {
        &self.report
    }
}

/// What the demo runs; `peerhost demo` uses the defaults and tests vary them.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The browser client files (`cargo xtask build-web`); `None` for
    /// [`default_web_dir`]. Without them the site is served without peerhost.
    pub web_dir: Option<PathBuf>,
    /// Run the tracker at `/tracker` (off: the tag's tracker URL fails).
    pub tracker: bool,
    /// More origin routes, answered before the site's files and behind the
    /// same down switch (tests add dynamic endpoints: a cookie-bearing API,
    /// a page served `no-store`).
    pub extra_routes: Option<Router>,
    /// The tracker's configuration (its `listen` is unused: it is served on
    /// the demo's address). With `stun.listen` set, the demo also answers
    /// STUN there; `ice_servers` and `turn` reach every visitor in the
    /// announce answers.
    pub tracker_config: peerhost_tracker::config::Config,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            web_dir: None,
            tracker: true,
            extra_routes: None,
            tracker_config: peerhost_tracker::config::Config::default(),
        }
    }
}

/// Where `cargo xtask build-web` writes the browser client, unless
/// `PEERHOST_WEB_DIR` says otherwise.
pub fn default_web_dir() -> PathBuf {
    std::env::var_os("PEERHOST_WEB_DIR").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/peerhost-web"
            ))
        },
        PathBuf::from,
    )
}

/// Whether the origin serves site files or answers 503 (to test that the
/// site survives its origin). Client files and the tracker stay up.
#[derive(Debug, Default)]
pub struct OriginSwitch(AtomicBool, AssetsSwitch);

/// "Assets down": the origin still serves the pages and the loader but
/// answers 503 for every other site file, so the assets can only come from
/// peers. The loader is what a visitor needs to start peerhost: the client
/// files under `/peerhost/`, the Service Worker `/peerhost-sw.js` and the
/// signed manifest `/peerhost.json`; pages are `*.html` and directory
/// indexes (`/`). Everything else — images, the stylesheet, scripts, the
/// icon — is refused.
#[derive(Debug, Default)]
struct AssetsSwitch(AtomicBool);

/// Whether the origin serves `path` while its assets are down.
pub fn served_while_assets_down(path: &str) -> bool {
    path.ends_with('/')
        || path.ends_with(".html")
        || path.strip_prefix('/') == Some(peerhost_core::manifest::FILE_NAME)
}

/// Everything the demo serves on its one address: the counting origin for
/// the site, the browser client under `/peerhost/` plus its Service Worker
/// at `/peerhost-sw.js`, and the tracker under `/tracker`.
pub fn app(
    site_dir: PathBuf,
    counters: Arc<OriginCounters>,
    web_dir: Option<&Path>,
    tracker: Option<peerhost_tracker::AppState>,
    switch: Arc<OriginSwitch>,
    extra_routes: Option<Router>,
) -> Router {
    let mut site = origin::router(site_dir, counters).route(API_NOW, axum::routing::get(api_now));
    if let Some(extra) = extra_routes {
        site = site.merge(extra);
    }
    let site = site.layer(middleware::from_fn_with_state(switch, origin_gate));
    let mut app = Router::new();
    if let Some(web) = web_dir {
        app = app
            .nest_service("/peerhost", ServeDir::new(web))
            .route_service(
                "/peerhost-sw.js",
                ServeFile::new(web.join("peerhost-sw.js")),
            );
    }
    if let Some(state) = tracker {
        app = app.nest("/tracker", peerhost_tracker::app(state));
    }
    app.fallback_service(site)
}

/// The demo's one dynamic endpoint (not in the manifest): the origin's
/// clock as JSON. When the origin is down, the Service Worker answers it
/// with its limited-mode JSON, and the demo pages say so.
pub const API_NOW: &str = "/api/now";

async fn api_now() -> Response {
    let body = format!(
        "{{\"now\":{},\"from\":\"origin\"}}",
        crate::clock::unix_now().0
    );
    (
        [
            (axum::http::header::CONTENT_TYPE, "application/json"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn origin_gate(
    State(switch): State<Arc<OriginSwitch>>,
    req: Request,
    next: Next,
) -> Response {
    let assets_down =
        switch.1.0.load(Ordering::Relaxed) && !served_while_assets_down(req.uri().path());
    if switch.0.load(Ordering::Relaxed) || assets_down {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "origin down (peerhost demo switch)\n",
        )
            .into_response();
    }
    next.run(req).await
}

/// Serves `app` on `listener` until `shutdown` completes, then lets
/// requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// A demo serving in the background (see [`start`]).
pub struct RunningDemo {
    /// The bound address.
    pub addr: SocketAddr,
    /// What the origin served.
    pub counters: Arc<OriginCounters>,
    /// The published site as served.
    pub site_dir: PathBuf,
    /// Whether the browser client is served (it was built).
    pub with_client: bool,
    switch: Arc<OriginSwitch>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<io::Result<()>>,
    housekeeping: Option<tokio::task::JoinHandle<()>>,
    _site: DemoSite,
}

impl RunningDemo {
    /// Makes the origin answer 503 for every site file, or serve again.
    pub fn set_origin_down(&self, down: bool) {
        self.switch.0.store(down, Ordering::Relaxed);
    }

    /// Makes the origin answer 503 for every site file except the pages and
    /// the manifest (see [`served_while_assets_down`]), or serve again.
    pub fn set_assets_down(&self, down: bool) {
        self.switch.1.0.store(down, Ordering::Relaxed);
    }

    /// Stops serving and waits for requests in flight.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Some(h) = self.housekeeping {
            h.abort();
        }
        let _ = self.server.await;
    }
}

/// Publishes the demo site and serves it (origin, client, tracker) on
/// `options.listen` in the background of the current tokio runtime.
pub async fn start(options: DemoOptions) -> anyhow::Result<RunningDemo> {
    let site = tokio::task::spawn_blocking(DemoSite::prepare)
        .await
        .context("publishing the demo site panicked")??;
    let listener = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let addr = listener.local_addr()?;
    let web_dir = options.web_dir.unwrap_or_else(default_web_dir);
    let with_client = web_dir.join("peerhost.js").exists();
    let stun = match (options.tracker, options.tracker_config.stun.listen) {
        (true, Some(at)) => Some(
            tokio::net::UdpSocket::bind(at)
                .await
                .with_context(|| format!("cannot answer STUN on {at}"))?,
        ),
        _ => None,
    };
    let tracker = options
        .tracker
        .then(|| peerhost_tracker::AppState::new(options.tracker_config.clone()));
    if let (Some(socket), Some(state)) = (stun, &tracker) {
        tokio::spawn(peerhost_tracker::stun::serve_stun(socket, state.clone()));
    }
    let housekeeping = tracker
        .clone()
        .map(peerhost_tracker::server::spawn_housekeeping);
    let counters = Arc::new(OriginCounters::new());
    let switch = Arc::new(OriginSwitch::default());
    let router = app(
        site.dir().to_owned(),
        counters.clone(),
        with_client.then_some(web_dir.as_path()),
        tracker,
        switch.clone(),
        options.extra_routes,
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, router, async {
        let _ = stopped.await;
    }));
    Ok(RunningDemo {
        addr,
        counters,
        site_dir: site.dir().to_owned(),
        with_client,
        switch,
        stop,
        server,
        housekeeping,
        _site: site,
    })
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // Without a SIGTERM handler, wait for Ctrl-C alone.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// The URL to print for a bound address: `0.0.0.0` is not browsable.
fn browse_url(addr: SocketAddr) -> String {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}/")
}

/// Runs the command.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let demo = start(DemoOptions {
            listen: args.listen,
            ..DemoOptions::default()
        })
        .await?;
        let manifest = std::fs::read_to_string(demo.site_dir.join(peerhost_core::manifest::FILE_NAME))?;
        let signed = peerhost_core::manifest::SignedManifest::from_json(&manifest)?;
        let m = signed.manifest();
        println!(
            "peerhost demo: published {} assets ({}), manifest version {}, in {}",
            m.assets.len(),
            fmt_bytes(m.total_size()),
            m.version,
            demo.site_dir.display()
        );
        println!(
            "site key: {} (the public demo key: never use it for a real site)",
            m.site_key
        );
        println!("tracker: ws://{}/tracker/announce", demo.addr);
        if !demo.with_client {
            println!(
                "note: the browser client is not built ({} is missing), so pages load from the origin only; \
                 `cargo xtask demo` builds it first",
                default_web_dir().join("peerhost.js").display()
            );
        }
        println!("Open {}", browse_url(demo.addr));
        println!("Press Ctrl-C to stop.");
        shutdown_signal().await;
        let counters = demo.counters.clone();
        demo.stop().await;
        println!(
            "stopped; the origin served {} requests, {}",
            counters.requests(),
            fmt_bytes(counters.bytes_served())
        );
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_key_is_the_documented_one() {
        let seed = Digest::of("peerhost demo site key — not secret".as_bytes()).0;
        assert_eq!(demo_secret().seed(), seed);
    }

    #[test]
    fn demo_pages_carry_the_demo_site_key() {
        let key = demo_site_key().to_string();
        for (path, bytes) in DEMO_SITE.iter().filter(|(p, _)| p.ends_with(".html")) {
            let html = String::from_utf8_lossy(bytes);
            assert!(
                html.contains(&format!("data-site-key=\"{key}\"")),
                "{path} has the demo key in its tag"
            );
        }
    }

    #[test]
    fn assets_down_serves_only_pages_and_the_manifest() {
        for served in ["/", "/about.html", "/docs/", "/peerhost.json"] {
            assert!(served_while_assets_down(served), "{served}");
        }
        for refused in [
            "/img/lichen.jpg",
            "/style.css",
            "/overlay.js",
            "/favicon.svg",
            "/x/peerhost.json",
        ] {
            assert!(!served_while_assets_down(refused), "{refused}");
        }
    }

    #[test]
    fn demo_site_is_embedded() {
        assert!(DEMO_SITE.iter().any(|(p, _)| *p == "index.html"));
        assert!(!DEMO_SITE.iter().any(|(p, _)| *p == "peerhost.json"));
    }

    #[test]
    fn unspecified_address_browses_to_localhost() {
        assert_eq!(
            browse_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080/"
        );
    }
}
