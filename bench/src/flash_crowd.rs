//! `peerhost bench flash-crowd`: how much of a flash crowd the origin
//! carries, with and without peers.
//!
//! One process holds the whole picture on 127.0.0.1: the demo site
//! (published with the demo key) behind an origin with a bandwidth cap (one
//! token bucket shared by every connection) and byte counters, the real
//! tracker, and N native peers — each one the seeder's mirror mode
//! ([`peerhost_seeder::Seeder`], webrtc-rs driving the same core as the
//! browser) — that all ask for every asset at once and keep seeding once
//! they have it, as visitors do. Each scenario gets a fresh origin and
//! tracker; the figures compare them with the same crowd fetching over
//! plain HTTP (origin-only) in the same run. It prints figures and never
//! asserts timings.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use futures::StreamExt as _;
use http_body_util::BodyExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use peerhost_core::manifest::{self, FLAG_ORIGIN_UNDER_PRESSURE, SignedManifest};
use peerhost_seeder::{SeedArgs, Seeder, SiteStatus};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tower_http::services::{ServeDir, ServeFile};

use crate::browser_crowd::{self, BrowserOutcome};
use peerhost_site::demo::{self, DemoSite};
use peerhost_site::fmt::fmt_bytes;
use peerhost_site::origin::{self, OriginCounters};

/// Parallel HTTP requests per origin-only visitor: what browsers allow per
/// host over HTTP/1.1 (and what the core's origin fallback uses).
const HTTP_PARALLEL: usize = 6;
/// Largest slice of a response body paced at once.
const PACE_CHUNK: usize = 16 * 1024;
/// How often the crowd's progress is sampled.
const SAMPLE: Duration = Duration::from_millis(100);
/// Bound on starting or stopping one scenario's peers.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// One crowd setting measured by the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Scenario {
    /// N plain HTTP visitors fetch every asset from the capped origin.
    OriginOnly,
    /// N peers arrive at once; nobody has the site yet.
    Peers,
    /// A cooperating host mirrors the site from the origin first (its
    /// bytes count), then the N peers arrive.
    PeersAndHost,
    /// The origin answers 503 for every asset (it serves the manifest);
    /// one seeder holds the site; the N peers arrive.
    OriginRefusing,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::OriginOnly => "origin-only",
            Scenario::Peers => "peers",
            Scenario::PeersAndHost => "peers-and-host",
            Scenario::OriginRefusing => "origin-refusing",
        }
    }
}

/// Arguments of `peerhost bench flash-crowd`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Native peers (webrtc-rs) in the crowd, all arriving at once.
    #[arg(long, default_value_t = 50)]
    pub peers: usize,
    /// The origin's bandwidth cap, shared by all its connections: a number
    /// of bytes per second, or with a unit: 10mbit, 500kbit, 1.25MB, 2MiB.
    #[arg(long, value_name = "RATE", default_value = "10mbit", value_parser = parse_rate)]
    pub origin_rate: u64,
    /// Headless Chromium visitors added to the crowd of each peer scenario
    /// (they land on /about.html, then load /plates.html through peerhost).
    /// Needs a checkout with `npm ci` and `cargo xtask build-web` done, and
    /// Debian's chromium.
    #[arg(long, default_value_t = 0)]
    pub browsers: usize,
    /// Scenarios to run, comma-separated [default: all].
    #[arg(long, value_delimiter = ',', value_enum)]
    pub scenarios: Vec<Scenario>,
    /// Peer connections per native peer (a browser's default is 8).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub peer_connections: usize,
    /// Peer connections of the host or seeder that already has the site
    /// (`peerhost seed --max-peers`; 32 is the seeder's default).
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub host_connections: usize,
    /// Publish the site with the signed "origin under pressure" flag
    /// (emergency mode): peers wait longer for each other before the origin.
    #[arg(long)]
    pub under_pressure: bool,
    /// Seconds one scenario may take before the peers still fetching are
    /// counted as not completed.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub scenario_timeout: u64,
    /// Hard limit on the whole run, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 1500)]
    pub timeout: u64,
    /// Print the figures as one JSON object on the last line, too.
    #[arg(long)]
    pub json: bool,
}

/// Parses a rate: bytes per second, or a number with a bit or byte unit
/// (decimal `k`/`m`/`g`, binary `ki`/`mi`/`gi`), with an optional `/s`;
/// `bps` means bits per second.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    // "mbps" is megabits; "/s" is decoration.
    let t = match t.strip_suffix("bps") {
        Some(prefix) => format!("{prefix}bit"),
        None => t.strip_suffix("/s").unwrap_or(&t).to_owned(),
    };
    let t = t.as_str();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a rate (try 10mbit, 500kbit or 1.25MB)"))?;
    let per_byte = match unit {
        "" | "b" => 1.0,
        "bit" => 1.0 / 8.0,
        "kbit" => 1e3 / 8.0,
        "mbit" => 1e6 / 8.0,
        "gbit" => 1e9 / 8.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?} (use bit, kbit, mbit, gbit, B, kB, MB, KiB, MiB)"
            ));
        }
    };
    let rate = value * per_byte;
    if !(rate >= 1.0 && rate.is_finite()) {
        return Err(format!("{s:?} is below one byte per second"));
    }
    Ok(rate as u64)
}

// ------------------------------------------------------------------ origin

/// A token bucket shared by every connection of the origin: each slice of
/// a body waits for its turn on one link of `rate` bytes per second, so
/// the origin as a whole never sends faster, however many clients it has.
#[derive(Debug)]
struct Pacer {
    rate: f64,
    burst: Duration,
    next: std::sync::Mutex<Instant>,
}

impl Pacer {
    fn new(rate: u64) -> Pacer {
        let rate = rate as f64;
        Pacer {
            rate,
            // Idle time banks at most this much credit: 64 KiB.
            burst: Duration::from_secs_f64(65_536.0 / rate),
            next: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// Waits until `n` more bytes may go out.
    async fn take(&self, n: usize) {
        let until = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let floor = now.checked_sub(self.burst).unwrap_or(now);
            let start = (*next).max(floor);
            *next = start + Duration::from_secs_f64(n as f64 / self.rate);
            *next
        };
        tokio::time::sleep_until(until).await;
    }
}

/// The benchmark's origin: the counting static server for the published
/// site, under a bandwidth cap, optionally refusing assets.
struct Origin {
    addr: SocketAddr,
    counters: Arc<OriginCounters>,
    refused: Arc<AtomicU64>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

#[derive(Clone)]
struct Gate {
    refuse_assets: Arc<AtomicBool>,
    /// Pages too stay up while refusing (browsers need them to start).
    serve_pages: bool,
    refused: Arc<AtomicU64>,
}

/// What browser visitors need from the origin besides the site: the
/// browser client and its Service Worker, and the tracker at `/tracker`
/// (the demo pages' tag names it on their own origin).
struct BrowserSide<'a> {
    web_dir: &'a Path,
    tracker: peerhost_tracker::AppState,
}

impl Origin {
    async fn start(
        dir: &Path,
        rate: u64,
        refuse_assets: bool,
        browsers: Option<BrowserSide<'_>>,
    ) -> anyhow::Result<Origin> {
        let counters = Arc::new(OriginCounters::new());
        let refused = Arc::new(AtomicU64::new(0));
        let gate = Gate {
            refuse_assets: Arc::new(AtomicBool::new(refuse_assets)),
            serve_pages: browsers.is_some(),
            refused: refused.clone(),
        };
        let mut app: Router = origin::router(dir.to_owned(), counters.clone())
            .layer(middleware::from_fn_with_state(
                Arc::new(Pacer::new(rate)),
                throttle,
            ))
            .layer(middleware::from_fn_with_state(gate, refuse));
        if let Some(b) = browsers {
            // Not counted and not capped: the client files are not the
            // site's, and a real site would serve them from anywhere.
            app = Router::new()
                .nest_service("/peerhost", ServeDir::new(b.web_dir))
                .route_service(
                    "/peerhost-sw.js",
                    ServeFile::new(b.web_dir.join("peerhost-sw.js")),
                )
                .nest("/tracker", peerhost_tracker::app(b.tracker))
                .fallback_service(app);
        }
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind the origin on 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(demo::serve(listener, app, async {
            let _ = stopped.await;
        }));
        Ok(Origin {
            addr,
            counters,
            refused,
            stop,
            task,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        // Paced bodies still in flight are dropped with their connections.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
    }
}

async fn refuse(State(gate): State<Gate>, req: Request, next: Next) -> Response {
    // Every listed asset, pages included (unless browsers need them): only
    // the signed manifest is served.
    let path = req.uri().path();
    let served = if gate.serve_pages {
        demo::served_while_assets_down(path)
    } else {
        path.strip_prefix('/') == Some(manifest::FILE_NAME)
    };
    if gate.refuse_assets.load(Ordering::Relaxed) && !served {
        gate.refused.fetch_add(1, Ordering::Relaxed);
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    next.run(req).await
}

async fn throttle(State(pacer): State<Arc<Pacer>>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    resp.map(|body| {
        let chunks = body.into_data_stream().flat_map(|r| {
            futures::stream::iter(match r {
                Ok(mut b) => {
                    let mut out = Vec::with_capacity(b.len() / PACE_CHUNK + 1);
                    while b.len() > PACE_CHUNK {
                        out.push(Ok(b.split_to(PACE_CHUNK)));
                    }
                    out.push(Ok(b));
                    out
                }
                Err(e) => vec![Err(e)],
            })
        });
        Body::from_stream(chunks.then(move |r: Result<Bytes, axum::Error>| {
            let pacer = pacer.clone();
            async move {
                if let Ok(b) = &r {
                    pacer.take(b.len()).await;
                }
                r
            }
        }))
    })
}

// ----------------------------------------------------------------- tracker

struct Tracker {
    url: String,
    state: peerhost_tracker::AppState,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Tracker {
    async fn start() -> anyhow::Result<Tracker> {
        let mut cfg = peerhost_tracker::config::Config::default();
        // Every peer of the crowd comes from 127.0.0.1.
        cfg.connection.max_connections_per_ip = cfg.connection.max_connections;
        cfg.swarm.max_peers_per_prefix = cfg.swarm.max_peers_per_swarm;
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind the tracker on 127.0.0.1")?;
        let url = format!("ws://{}/announce", listener.local_addr()?);
        let state = peerhost_tracker::AppState::new(cfg);
        let task = tokio::spawn(peerhost_tracker::server::serve(
            listener,
            state.clone(),
            std::future::pending::<()>(),
        ));
        Ok(Tracker { url, state, task })
    }

    async fn stop(self) {
        self.state.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

// ---------------------------------------------------------------- figures

/// What one scenario measured.
#[derive(Debug, Clone, Default)]
struct Figures {
    visitors: usize,
    completed: usize,
    /// Seconds from the crowd's start to each completed visitor's last byte.
    times: Vec<f64>,
    origin_bytes: u64,
    origin_asset_bytes: u64,
    origin_requests: u64,
    refused_requests: u64,
    /// Bytes the origin served before the crowd arrived (the host's mirror).
    origin_bytes_before_crowd: u64,
    from_peers: u64,
    from_origin: u64,
    /// Peers that had at least one peer connection at some sample.
    ever_connected: usize,
    /// Most peer connections of the crowd at one sample (each counted at both ends).
    max_connections: usize,
    cpu_secs: f64,
    wall_secs: f64,
    errors: BTreeMap<String, usize>,
    /// Headless Chromium visitors in the crowd.
    browsers: Vec<BrowserOutcome>,
}

impl Figures {
    fn percentile(&self, p: f64) -> Option<f64> {
        // A visitor that did not complete counts as slower than any that did.
        if self.visitors == 0 || self.completed == 0 {
            return None;
        }
        let rank = ((p * self.visitors as f64).ceil() as usize).clamp(1, self.visitors);
        if rank > self.completed {
            return None;
        }
        let mut t = self.times.clone();
        t.sort_by(f64::total_cmp);
        t.get(rank - 1).copied()
    }

    fn copies(&self, site: u64) -> f64 {
        self.origin_bytes as f64 / site as f64
    }

    /// Share of what the crowd received that did not come from the origin.
    fn offload(&self, site: u64) -> f64 {
        let needed = ((self.visitors + self.browsers.len()) as u64 * site) as f64;
        (1.0 - self.origin_bytes as f64 / needed).max(0.0) * 100.0
    }
}

fn cpu_secs() -> f64 {
    // utime and stime, fields 14 and 15 of /proc/self/stat, in clock ticks
    // (100 per second on Linux); the name field may hold spaces.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_owned();
            let f: Vec<&str> = rest.split_whitespace().collect();
            let u: f64 = f.get(11)?.parse().ok()?;
            let k: f64 = f.get(12)?.parse().ok()?;
            Some((u + k) / 100.0)
        })
        .unwrap_or(0.0)
}

fn asset_bytes(counters: &OriginCounters) -> u64 {
    counters
        .snapshot()
        .iter()
        .filter(|(p, _)| p.strip_prefix('/') != Some(manifest::FILE_NAME))
        .map(|(_, c)| c.bytes)
        .sum()
}

/// A progress line for logs when stderr is not a terminal (the bar is
/// hidden then): at most one every few seconds.
struct LogLine {
    bar: ProgressBar,
    last: Instant,
}

impl LogLine {
    fn new(bar: &ProgressBar) -> LogLine {
        LogLine {
            bar: bar.clone(),
            last: Instant::now(),
        }
    }

    fn update(&mut self, msg: String) {
        if self.bar.is_hidden() && self.last.elapsed() >= Duration::from_secs(5) {
            self.last = Instant::now();
            eprintln!(
                "bench: {} {}/{} complete, {msg}",
                self.bar.prefix(),
                self.bar.position(),
                self.bar.length().unwrap_or(0)
            );
        }
        self.bar.set_message(msg);
    }
}

fn progress(what: &str, total: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>16} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(what.to_owned());
    bar
}

// ------------------------------------------------------------ origin-only

async fn http_visitor(
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Empty<Bytes>,
    >,
    base: String,
    paths: Arc<Vec<String>>,
) -> Result<(), String> {
    let fetches = futures::stream::iter(paths.iter().cloned())
        .map(|path| {
            let client = client.clone();
            let url = format!("{base}{path}");
            async move {
                let uri: axum::http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
                let resp = client.get(uri).await.map_err(|e| format!("{path}: {e}"))?;
                if resp.status() != StatusCode::OK {
                    return Err(format!("{path}: HTTP {}", resp.status()));
                }
                resp.into_body()
                    .collect()
                    .await
                    .map_err(|e| format!("{path}: {e}"))?;
                Ok::<(), String>(())
            }
        })
        .buffer_unordered(HTTP_PARALLEL);
    futures::pin_mut!(fetches);
    while let Some(r) = fetches.next().await {
        r?;
    }
    Ok(())
}

async fn run_origin_only(
    site: &DemoSite,
    paths: &Arc<Vec<String>>,
    args: &Args,
    limit: Duration,
) -> anyhow::Result<Figures> {
    let origin = Origin::start(site.dir(), args.origin_rate, false, None).await?;
    let bar = progress("origin-only", args.peers);
    let mut line = LogLine::new(&bar);
    let cpu0 = cpu_secs();
    let t0 = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.peers {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let (base, paths) = (origin.url(""), paths.clone());
        tasks.spawn(async move {
            let r = http_visitor(client, base, paths).await;
            (r, t0.elapsed().as_secs_f64())
        });
    }
    let mut f = Figures {
        visitors: args.peers,
        ..Figures::default()
    };
    let deadline = t0 + limit;
    loop {
        if Instant::now() >= deadline {
            tasks.abort_all();
            break;
        }
        let next = tokio::time::timeout(Duration::from_secs(1), tasks.join_next()).await;
        match next {
            Ok(Some(Ok((Ok(()), secs)))) => {
                f.completed += 1;
                f.times.push(secs);
                bar.inc(1);
            }
            Ok(Some(Ok((Err(e), _)))) => *f.errors.entry(e).or_default() += 1,
            Ok(Some(Err(e))) => *f.errors.entry(e.to_string()).or_default() += 1,
            Ok(None) => break,
            Err(_) => {} // a second without news: report progress
        }
        line.update(format!(
            "origin sent {}",
            fmt_bytes(origin.counters.bytes_served())
        ));
    }
    bar.finish_and_clear();
    f.wall_secs = t0.elapsed().as_secs_f64();
    f.cpu_secs = cpu_secs() - cpu0;
    f.origin_bytes = origin.counters.bytes_served();
    f.origin_asset_bytes = asset_bytes(&origin.counters);
    f.origin_requests = origin.counters.requests();
    f.from_origin = f.origin_asset_bytes;
    origin.stop().await;
    Ok(f)
}

// ------------------------------------------------------------------ peers

/// `peerhost seed` arguments for one peer of the crowd (a mirror with its
/// own cache), or for the host.
fn peer_args(tracker: &str, manifest_url: &str, cache: &Path, connections: usize) -> SeedArgs {
    SeedArgs {
        sites: Vec::new(),
        manifest_urls: vec![manifest_url.to_owned()],
        site_keys: vec![demo::demo_site_key()],
        cache: Some(cache.to_owned()),
        origin: None,
        tracker: tracker.to_owned(),
        max_peers: connections,
        upload_rate: None,
        metrics: None,
        udp_addrs: vec!["127.0.0.1:0".into()],
        sctp_window: 64 * 1024,
        // A failed asset is wanted again at the next refresh.
        refresh_secs: 10,
        ice_servers: Vec::new(),
        ice_username: None,
        ice_credential: None,
        relay_only: false,
    }
}

fn seeder_status(s: &Seeder) -> SiteStatus {
    s.status().into_iter().next().unwrap_or_default()
}

async fn shutdown_all(seeders: Vec<Seeder>) {
    let all = futures::future::join_all(seeders.into_iter().map(Seeder::shutdown));
    if tokio::time::timeout(STOP_GRACE, all).await.is_err() {
        eprintln!(
            "bench: some peers did not shut down within {}s",
            STOP_GRACE.as_secs()
        );
    }
}

async fn run_peers(
    scenario: Scenario,
    site: &DemoSite,
    args: &Args,
    limit: Duration,
    web_dir: Option<&Path>,
) -> anyhow::Result<Figures> {
    let refusing = scenario == Scenario::OriginRefusing;
    let tracker = Tracker::start().await?;
    let browser_side = web_dir.map(|web_dir| BrowserSide {
        web_dir,
        tracker: tracker.state.clone(),
    });
    let origin = Origin::start(site.dir(), args.origin_rate, refusing, browser_side).await?;
    let manifest_url = origin.url(&format!("/{}", manifest::FILE_NAME));
    let scratch = tempfile::Builder::new()
        .prefix("peerhost-flash-")
        .tempdir()
        .context("cannot create a scratch directory")?;
    let mut helpers = Vec::new();
    let mut f = Figures {
        visitors: args.peers,
        ..Figures::default()
    };
    let cpu0 = cpu_secs();
    let began = Instant::now();

    // The one who already has the site.
    match scenario {
        Scenario::PeersAndHost => {
            let host = Seeder::start(&peer_args(
                &tracker.url,
                &manifest_url,
                &scratch.path().join("host"),
                args.host_connections,
            ))
            .await
            .context("the host's mirror did not start")?;
            let bar = ProgressBar::new_spinner();
            bar.set_message("host mirroring the site from the origin");
            let until = Instant::now() + limit;
            while !seeder_status(&host).complete {
                if Instant::now() > until {
                    bail!(
                        "the host did not mirror the site within {}s",
                        limit.as_secs()
                    );
                }
                bar.tick();
                tokio::time::sleep(SAMPLE).await;
            }
            bar.finish_and_clear();
            helpers.push(host);
        }
        Scenario::OriginRefusing => {
            let seeder = Seeder::start(&SeedArgs {
                sites: vec![site.dir().to_owned()],
                manifest_urls: Vec::new(),
                cache: None,
                ..peer_args(
                    &tracker.url,
                    &manifest_url,
                    scratch.path(),
                    args.host_connections,
                )
            })
            .await
            .context("the seeder did not start")?;
            helpers.push(seeder);
        }
        Scenario::Peers | Scenario::OriginOnly => {}
    }
    if let Some(h) = helpers.first() {
        let until = Instant::now() + Duration::from_secs(30);
        while !seeder_status(h).tracker_connected && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    f.origin_bytes_before_crowd = origin.counters.bytes_served();

    // The crowd, all at once.
    let bar = progress(scenario.name(), args.peers);
    let mut line = LogLine::new(&bar);
    let t0 = Instant::now();
    let browsers = web_dir.map(|_| browser_crowd::start(origin.url(""), args.browsers, limit));
    let starts = (0..args.peers).map(|i| {
        let a = peer_args(
            &tracker.url,
            &manifest_url,
            &scratch.path().join(format!("peer-{i}")),
            args.peer_connections,
        );
        async move { Seeder::start(&a).await }
    });
    let started = futures::future::join_all(starts).await;
    let mut peers = Vec::new();
    for s in started {
        match s {
            Ok(s) => peers.push(s),
            Err(e) => *f.errors.entry(e.to_string()).or_default() += 1,
        }
    }
    let mut done: Vec<Option<f64>> = vec![None; peers.len()];
    let mut connected = vec![false; peers.len()];
    let deadline = t0 + limit;
    while Instant::now() < deadline {
        let secs = t0.elapsed().as_secs_f64();
        let mut total = 0;
        for ((p, d), c) in peers.iter().zip(done.iter_mut()).zip(connected.iter_mut()) {
            let st = seeder_status(p);
            total += st.peers;
            *c |= st.peers > 0;
            if d.is_none() && st.complete {
                *d = Some(secs);
                bar.inc(1);
            }
        }
        f.max_connections = f.max_connections.max(total);
        line.update(format!(
            "origin sent {}",
            fmt_bytes(origin.counters.bytes_served() - f.origin_bytes_before_crowd)
        ));
        if done.iter().all(Option::is_some) && browsers.as_ref().is_none_or(|b| b.is_finished()) {
            break;
        }
        tokio::time::sleep(SAMPLE).await;
    }
    bar.finish_and_clear();
    if let Some(b) = browsers {
        // Each visit ends by `limit` on the driver's side.
        match tokio::task::spawn_blocking(move || b.join()).await {
            Ok(Ok(Ok(outcomes))) => f.browsers = outcomes,
            Ok(Ok(Err(e))) => *f.errors.entry(format!("browsers: {e:#}")).or_default() += 1,
            _ => {
                *f.errors
                    .entry("browsers: the driver thread panicked".into())
                    .or_default() += 1
            }
        }
    }
    f.wall_secs = began.elapsed().as_secs_f64();
    f.times = done.iter().flatten().copied().collect();
    f.ever_connected = connected.iter().filter(|c| **c).count();
    f.completed = f.times.len();
    for p in &peers {
        let s = seeder_status(p);
        f.from_peers += s.bytes_from_peers;
        f.from_origin += s.bytes_from_origin;
    }
    f.origin_bytes = origin.counters.bytes_served();
    f.origin_asset_bytes = asset_bytes(&origin.counters);
    f.origin_requests = origin.counters.requests();
    f.refused_requests = origin.refused.load(Ordering::Relaxed);
    peers.extend(helpers);
    shutdown_all(peers).await;
    f.cpu_secs = cpu_secs() - cpu0;
    tracker.stop().await;
    origin.stop().await;
    Ok(f)
}

// ----------------------------------------------------------------- report

fn fmt_secs(v: Option<f64>) -> String {
    v.map_or("—".into(), |s| format!("{s:.1} s"))
}

fn print_report(args: &Args, site: u64, results: &[(Scenario, Figures)]) -> Value {
    let base = results
        .iter()
        .find(|(s, _)| *s == Scenario::OriginOnly)
        .map(|(_, f)| f.clone());
    println!(
        "flash crowd: {} native peers{}, one copy of the site = {} ({} bytes), origin capped at {:.2} Mbit/s ({}/s){}",
        args.peers,
        if args.browsers > 0 {
            format!(" + {} browsers in the peer scenarios", args.browsers)
        } else {
            String::new()
        },
        fmt_bytes(site),
        site,
        args.origin_rate as f64 * 8.0 / 1e6,
        fmt_bytes(args.origin_rate),
        if args.under_pressure {
            ", manifest flagged origin-under-pressure"
        } else {
            ""
        }
    );
    println!(
        "{:<16} {:>9} {:>11} {:>7} {:>7} {:>8} {:>9} {:>9} {:>10} {:>10} {:>7}",
        "scenario",
        "completed",
        "origin",
        "copies",
        "assets",
        "offload",
        "p50",
        "p95",
        "p95 speed",
        "origin/base",
        "cpu s"
    );
    let mut out = serde_json::Map::new();
    for (s, f) in results {
        let (p50, p95) = (f.percentile(0.5), f.percentile(0.95));
        let base_p95 = base.as_ref().and_then(|b| b.percentile(0.95));
        let speedup = match (base_p95, p95) {
            (Some(b), Some(p)) if p > 0.0 => Some(b / p),
            _ => None,
        };
        let copy_ratio = base
            .as_ref()
            .filter(|b| b.origin_bytes > 0)
            .map(|b| f.origin_bytes as f64 / b.origin_bytes as f64);
        println!(
            "{:<16} {:>9} {:>11} {:>7.2} {:>7.2} {:>7.1}% {:>9} {:>9} {:>10} {:>10} {:>7.0}",
            s.name(),
            format!("{}/{}", f.completed, f.visitors),
            fmt_bytes(f.origin_bytes),
            f.copies(site),
            f.origin_asset_bytes as f64 / site as f64,
            f.offload(site),
            fmt_secs(p50),
            fmt_secs(p95),
            speedup.map_or("—".into(), |x| format!("{x:.2}x")),
            copy_ratio.map_or("—".into(), |x| format!("{x:.3}")),
            f.cpu_secs,
        );
        out.insert(
            s.name().into(),
            json!({
                "visitors": f.visitors,
                "completed": f.completed,
                "origin_bytes": f.origin_bytes,
                "origin_asset_bytes": f.origin_asset_bytes,
                "origin_bytes_before_crowd": f.origin_bytes_before_crowd,
                "origin_requests": f.origin_requests,
                "refused_requests": f.refused_requests,
                "origin_copies": f.copies(site),
                "offload_pct": f.offload(site),
                "p50_secs": p50,
                "p95_secs": p95,
                "p95_speedup_vs_origin_only": speedup,
                "origin_bytes_ratio_vs_origin_only": copy_ratio,
                "peer_received_from_peers": f.from_peers,
                "peer_received_from_origin": f.from_origin,
                "peers_ever_connected": f.ever_connected,
                "max_connection_ends": f.max_connections,
                "cpu_secs": f.cpu_secs,
                "wall_secs": f.wall_secs,
                "errors": f.errors,
                "browsers": browser_json(&f.browsers),
            }),
        );
    }
    for (s, f) in results {
        if f.origin_bytes_before_crowd > 0 {
            println!(
                "  {}: origin bytes include {} served before the crowd arrived (the host's copy)",
                s.name(),
                fmt_bytes(f.origin_bytes_before_crowd)
            );
        }
        if *s != Scenario::OriginOnly {
            println!(
                "  {}: the peers received {} from peers and {} from the origin; {} requests refused; \
                 {} of {} peers ever connected to a peer, at most {} connections ends at once",
                s.name(),
                fmt_bytes(f.from_peers),
                fmt_bytes(f.from_origin),
                f.refused_requests,
                f.ever_connected,
                f.visitors,
                f.max_connections
            );
        }
        if !f.browsers.is_empty() {
            let b = browser_figures(&f.browsers);
            println!(
                "  {}: browsers {}/{} complete, p50 {} p95 {}; their peerhost got {} from peers and {} from the origin",
                s.name(),
                b.completed,
                f.browsers.len(),
                fmt_secs(b.p50),
                fmt_secs(b.p95),
                fmt_bytes(b.from_peers),
                fmt_bytes(b.from_origin),
            );
            for (e, n) in &b.errors {
                println!("  {}: browsers: {n} × {e}", s.name());
            }
        }
        for (e, n) in &f.errors {
            println!("  {}: {n} × {e}", s.name());
        }
    }
    println!(
        "copies = origin bytes ÷ one copy of the site (manifest re-reads and the host's copy included); assets = the same without \
         manifests; offload = 1 − origin bytes ÷ (visitors × one copy); p50/p95 = seconds from the crowd's start until a visitor \
         holds every asset (one not completed counts as slowest); ratios against origin-only"
    );
    json!({
        "bench": "flash-crowd",
        "peers": args.peers,
        "browsers": args.browsers,
        "origin_rate_bytes_per_sec": args.origin_rate,
        "site_bytes": site,
        "under_pressure": args.under_pressure,
        "peer_connections": args.peer_connections,
        "host_connections": args.host_connections,
        "scenarios": Value::Object(out),
    })
}

/// The browser visitors of one scenario, summed up.
struct BrowserFigures {
    completed: usize,
    p50: Option<f64>,
    p95: Option<f64>,
    from_peers: u64,
    from_origin: u64,
    errors: BTreeMap<String, usize>,
}

fn browser_figures(b: &[BrowserOutcome]) -> BrowserFigures {
    let times: Vec<f64> = b.iter().filter_map(|o| o.done_secs).collect();
    let as_crowd = Figures {
        visitors: b.len(),
        completed: times.len(),
        times,
        ..Figures::default()
    };
    let mut errors = BTreeMap::new();
    for e in b.iter().filter_map(|o| o.error.clone()) {
        *errors.entry(e).or_default() += 1;
    }
    BrowserFigures {
        completed: as_crowd.completed,
        p50: as_crowd.percentile(0.5),
        p95: as_crowd.percentile(0.95),
        from_peers: b.iter().map(|o| o.from_peers).sum(),
        from_origin: b.iter().map(|o| o.from_origin).sum(),
        errors,
    }
}

fn browser_json(b: &[BrowserOutcome]) -> Value {
    if b.is_empty() {
        return Value::Null;
    }
    let f = browser_figures(b);
    json!({
        "visitors": b.len(),
        "completed": f.completed,
        "p50_secs": f.p50,
        "p95_secs": f.p95,
        "received_from_peers": f.from_peers,
        "received_from_origin": f.from_origin,
        "errors": f.errors,
    })
}

/// Warns when the process's network namespace has interfaces besides
/// loopback. Everything binds 127.0.0.1 and WebRTC offers only 127.0.0.1
/// candidates, so nothing leaves the machine either way; the namespace
/// makes it sure. (`/proc/net/dev` is per namespace; `/sys/class/net` shows
/// the namespace sysfs was mounted in.)
fn warn_outside_namespace() {
    let Ok(dev) = std::fs::read_to_string("/proc/net/dev") else {
        return;
    };
    let others: Vec<&str> = dev
        .lines()
        .filter_map(|l| l.split_once(':').map(|(name, _)| name.trim()))
        .filter(|n| *n != "lo")
        .collect();
    if !others.is_empty() {
        eprintln!(
            "bench: warning: not in a loopback-only network namespace (interfaces: {}); everything binds \
             127.0.0.1, but run it as `unshare --net -- sh -c 'ip link set lo up && peerhost bench flash-crowd'` \
             to be sure nothing leaves the machine",
            others.join(", ")
        );
    }
}

/// Writes the demo site published with the emergency flag set.
fn flag_under_pressure(site: &DemoSite) -> anyhow::Result<()> {
    let path = site.dir().join(manifest::FILE_NAME);
    let text = std::fs::read_to_string(&path)?;
    let signed = SignedManifest::from_json(&text)?;
    let mut m = signed.manifest().clone();
    m.flags |= FLAG_ORIGIN_UNDER_PRESSURE;
    let flagged = m.sign(&demo::demo_secret())?;
    std::fs::write(&path, flagged.to_json())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Runs the benchmark and prints the figures.
pub async fn run(mut args: Args) -> anyhow::Result<()> {
    if args.peers == 0 {
        bail!("--peers must be at least 1");
    }
    if args.peer_connections == 0 || args.host_connections == 0 {
        bail!("--peer-connections and --host-connections must be at least 1");
    }
    if args.scenarios.is_empty() {
        args.scenarios = vec![
            Scenario::OriginOnly,
            Scenario::Peers,
            Scenario::PeersAndHost,
            Scenario::OriginRefusing,
        ];
    }
    args.scenarios.sort_unstable();
    args.scenarios.dedup();
    warn_outside_namespace();
    let hard = Duration::from_secs(args.timeout.max(1));
    tokio::time::timeout(hard, run_scenarios(&args))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the benchmark did not finish within --timeout {}s",
                hard.as_secs()
            )
        })?
}

async fn run_scenarios(args: &Args) -> anyhow::Result<()> {
    let site = tokio::task::spawn_blocking(DemoSite::prepare)
        .await
        .context("publishing the demo site panicked")??;
    if args.under_pressure {
        flag_under_pressure(&site)?;
    }
    let signed = SignedManifest::from_json(&std::fs::read_to_string(
        site.dir().join(manifest::FILE_NAME),
    )?)?;
    let size = signed.manifest().total_size();
    let paths: Arc<Vec<String>> = Arc::new(
        signed
            .manifest()
            .assets
            .iter()
            .map(|a| a.path.clone())
            .collect(),
    );
    eprintln!(
        "bench: demo site, {} assets ({}), {} visitors, origin {:.2} Mbit/s; scenarios: {}",
        paths.len(),
        fmt_bytes(size),
        args.peers,
        args.origin_rate as f64 * 8.0 / 1e6,
        args.scenarios
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let web_dir = if args.browsers > 0 {
        Some(browser_crowd::preflight()?)
    } else {
        None
    };
    let limit = Duration::from_secs(args.scenario_timeout.max(1));
    let mut results = Vec::new();
    for &s in &args.scenarios {
        eprintln!("bench: {} …", s.name());
        let f = match s {
            Scenario::OriginOnly => run_origin_only(&site, &paths, args, limit).await?,
            _ => run_peers(s, &site, args, limit, web_dir.as_deref()).await?,
        };
        eprintln!(
            "bench: {}: {}/{} completed in {:.1} s",
            s.name(),
            f.completed,
            f.visitors,
            f.wall_secs
        );
        results.push((s, f));
    }
    let report = print_report(args, size, &results);
    if args.json {
        println!("{report}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_bits_and_bytes() {
        assert_eq!(parse_rate("10mbit"), Ok(1_250_000));
        assert_eq!(parse_rate("10Mbit/s"), Ok(1_250_000));
        assert_eq!(parse_rate("10mbps"), Ok(1_250_000));
        assert_eq!(parse_rate("500kbit"), Ok(62_500));
        assert_eq!(parse_rate("1.25MB"), Ok(1_250_000));
        assert_eq!(parse_rate("2MiB"), Ok(2 * 1024 * 1024));
        assert_eq!(parse_rate("4096"), Ok(4096));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("10 parsecs").is_err());
        assert!(parse_rate("0").is_err());
    }

    #[test]
    fn percentiles_count_incomplete_visitors_as_slowest() {
        let f = Figures {
            visitors: 4,
            completed: 3,
            times: vec![3.0, 1.0, 2.0],
            ..Figures::default()
        };
        assert_eq!(f.percentile(0.5), Some(2.0));
        assert_eq!(f.percentile(0.95), None);
        let all = Figures {
            completed: 4,
            times: vec![3.0, 1.0, 2.0, 4.0],
            ..f
        };
        assert_eq!(all.percentile(0.95), Some(4.0));
    }

    #[tokio::test]
    async fn pacer_holds_the_rate_across_callers() {
        let pacer = Arc::new(Pacer::new(1_000_000));
        let t0 = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let p = pacer.clone();
                tokio::spawn(async move {
                    for _ in 0..5 {
                        p.take(16_384).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // 327,680 bytes at 1 MB/s, less the 64 KiB burst: at least 0.26 s.
        assert!(
            t0.elapsed() >= Duration::from_millis(250),
            "{:?}",
            t0.elapsed()
        );
    }
}
