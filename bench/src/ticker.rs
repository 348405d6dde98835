//! `peerhost bench ticker`: a sports ticker whose data file changes every
//! second, delivered by pushed manifests, against the naive design in which
//! every visitor polls the origin every second.
//!
//! Method, per peer count N (bounded: `--updates` updates, one per second):
//! - A real counting origin ([`peerhost_site::origin`]) and a real tracker, both on
//!   127.0.0.1:0. The site: `score.json` (changes every update) plus a few
//!   static files that never change.
//! - N simulated visitors and `--seeders` seeders: real core
//!   [`Client`]s, each with its own real WebSocket to the tracker (announce,
//!   offers, answers, manifest pushes are the real protocol), whose data
//!   channels are the simulator's in-memory network
//!   ([`peerhost_sim::net::Net`]; no WebRTC: the sandbox cannot hold
//!   hundreds of real peer connections). Visitors use
//!   the browser's defaults; a visitor "page" asks for `score.json` again
//!   whenever its version changes. Seeders (cooperating hosts) hold the
//!   site and fetch each new version from the origin at once.
//! - Each second the publisher rewrites `score.json`, publishes (hash and
//!   sign) and pushes the manifest to the tracker once ([`peerhost_site::push`]).
//!   Figures per update: origin requests and bytes, and the time from the
//!   push until 50 % / 99 % / all visitors hold the new `score.json`.
//! - Then the naive design with the same N: every visitor GETs
//!   `score.json` from a fresh counting origin once per second for as many
//!   seconds; its origin requests and bytes per update, and the ratio.
//!
//! The network runs on the wall clock: before any input the loop performs
//! the network's events that are due and moves its clock to the wall's.
//! Every node's access has no bandwidth limit and no latency, so frames,
//! closes and channel opens arrive in the millisecond they are sent; what
//! the model still adds is [`SDP_MS`] (2 ms) to create each offer and
//! answer, so a new channel opens 4 ms later than with instant SDP.
//!
//! [`SDP_MS`]: peerhost_sim::net::SDP_MS
//!
//! Only 127.0.0.1 is contacted; every loop is bounded in count and time.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::BodyExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use peerhost_core::client::{
    Client, ClientConfig, Input, ManifestSource, OriginError, Output, Ticket,
};
use peerhost_core::manifest::{SignedManifest, SiteSecret};
use peerhost_core::piece::Digest;
use peerhost_core::rng::Rng;
use peerhost_core::scheduler::RequestId;
use peerhost_core::signal::ServerMessage;
use peerhost_core::time::Instant;
use peerhost_sim::net::{Access, Net, NetConfig, Step};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use peerhost_site::clock::unix_now;
use peerhost_site::fmt::fmt_bytes;
use peerhost_site::origin::OriginCounters;
use peerhost_site::publish;

/// The file that changes with every update.
pub const TICKER_FILE: &str = "/score.json";

/// Arguments of `peerhost bench ticker`.
#[derive(clap::Args, Debug, Clone)]
pub struct TickerArgs {
    /// Simulated visitors; a comma-separated list runs once per count.
    #[arg(long, value_delimiter = ',', default_values_t = [10usize, 50, 500])]
    pub peers: Vec<usize>,
    /// Updates per run, one per second.
    #[arg(long, default_value_t = 60)]
    pub updates: u32,
    /// Seeders: cooperating hosts that fetch each new version from the origin.
    #[arg(long, default_value_t = 1)]
    pub seeders: usize,
    /// Print the figures as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

/// Figures of one peer count.
#[derive(Debug, Clone, Serialize)]
pub struct RunFigures {
    /// Simulated visitors.
    pub peers: usize,
    /// Seeders.
    pub seeders: usize,
    /// Updates pushed and measured.
    pub updates: u32,
    /// Origin requests per update, pushed design (mean).
    pub origin_requests_per_update: f64,
    /// Most origin requests in one update.
    pub origin_requests_max: u64,
    /// Origin body bytes per update, pushed design (mean).
    pub origin_bytes_per_update: f64,
    /// Bytes of `score.json`.
    pub ticker_bytes: u64,
    /// Median over updates of the time until half the visitors held it, ms.
    pub p50_peers_ms: f64,
    /// Median over updates of the time until 99 % of visitors held it, ms.
    pub p99_peers_ms: f64,
    /// Worst update's time until 99 % of visitors held it, ms.
    pub p99_peers_worst_ms: f64,
    /// Visitor-updates that never arrived before the next update.
    pub missed: u64,
    /// Per update: ms until 99 % of visitors held it (null: never).
    pub p99_per_update_ms: Vec<Option<f64>>,
    /// Per update: visitors that switched to it (a newer one may overtake it).
    pub switched_per_update: Vec<usize>,
    /// Origin requests per update, naive polling (mean).
    pub naive_requests_per_update: f64,
    /// Origin body bytes per update, naive polling (mean).
    pub naive_bytes_per_update: f64,
    /// Naive origin requests per pushed-design origin request.
    pub request_ratio: f64,
    /// Naive origin bytes per pushed-design origin byte.
    pub byte_ratio: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The benchmark.
    pub bench: &'static str,
    /// One entry per peer count.
    pub runs: Vec<RunFigures>,
}

/// Runs the command.
pub async fn run(args: TickerArgs) -> anyhow::Result<()> {
    anyhow::ensure!(!args.peers.is_empty(), "--peers needs at least one count");
    anyhow::ensure!(
        args.peers.iter().all(|n| (1..=2000).contains(n)),
        "--peers must be between 1 and 2000"
    );
    anyhow::ensure!(
        (1..=600).contains(&args.updates),
        "--updates must be between 1 and 600"
    );
    anyhow::ensure!(args.seeders <= 16, "--seeders must be at most 16");
    let mut runs = Vec::new();
    for &n in &args.peers {
        let figures = run_one(n, args.seeders, args.updates).await?;
        print_run(&figures);
        runs.push(figures);
    }
    if args.json {
        let report = Report {
            bench: "ticker",
            runs,
        };
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

fn print_run(f: &RunFigures) {
    println!(
        "N = {} visitors + {} seeder(s), {} updates of {}:",
        f.peers,
        f.seeders,
        f.updates,
        fmt_bytes(f.ticker_bytes)
    );
    println!(
        "  pushed : {:.2} origin requests/update (max {}), {}/update; \
         visitors holding the update after p50 {:.0} ms, p99 {:.0} ms (worst {:.0} ms); {} missed",
        f.origin_requests_per_update,
        f.origin_requests_max,
        fmt_bytes(f.origin_bytes_per_update as u64),
        f.p50_peers_ms,
        f.p99_peers_ms,
        f.p99_peers_worst_ms,
        f.missed
    );
    println!(
        "  naive  : {:.1} origin requests/update, {}/update (every visitor polls every second)",
        f.naive_requests_per_update,
        fmt_bytes(f.naive_bytes_per_update as u64)
    );
    println!(
        "  ratio  : naive / pushed = {:.1}x requests, {:.1}x bytes",
        f.request_ratio, f.byte_ratio
    );
}

/// The bench site's key (fixed; the bench site is throwaway).
fn bench_secret() -> SiteSecret {
    SiteSecret::from_seed(Digest::of(b"peerhost ticker bench key - not secret").0)
}

/// `score.json` for update `k`: about 1.5 KiB of match state.
fn score(k: u32) -> Vec<u8> {
    let mut s = format!(
        "{{\"update\":{k},\"home\":{},\"away\":{},\"events\":[",
        k / 7,
        k / 11
    );
    for i in 0..24 {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "{{\"minute\":{},\"text\":\"play {i} of update {k}: a long pass down the wing\"}}",
            (k + i) % 90
        ));
    }
    s.push_str("]}\n");
    s.into_bytes()
}

fn write_site(dir: &Path) -> std::io::Result<()> {
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><title>ticker</title><pre id=score></pre>\n",
    )?;
    // A static image-sized file that never changes.
    let logo: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.join("logo.bin"), logo)?;
    std::fs::write(dir.join("score.json"), score(0))
}

fn republish(dir: &Path, k: u32) -> anyhow::Result<SignedManifest> {
    std::fs::write(dir.join("score.json"), score(k))?;
    let report = publish::publish(
        dir,
        &bench_secret(),
        &publish::Options::default(),
        &ProgressBar::hidden(),
    )?;
    Ok(report.signed)
}

async fn serve_origin(dir: &Path) -> anyhow::Result<(SocketAddr, Arc<OriginCounters>)> {
    let counters = Arc::new(OriginCounters::new());
    let app = peerhost_site::origin::router(dir.to_owned(), counters.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, counters))
}

async fn start_tracker(conns: usize) -> anyhow::Result<(String, peerhost_tracker::AppState)> {
    let mut cfg = peerhost_tracker::config::Config::default();
    cfg.connection.max_connections = cfg.connection.max_connections.max(conns + 64);
    cfg.connection.max_connections_per_ip = conns + 64;
    cfg.swarm.max_peers_per_swarm = cfg.swarm.max_peers_per_swarm.max(conns + 64);
    // Every visitor comes from 127.0.0.1.
    cfg.swarm.max_peers_per_prefix = cfg.swarm.max_peers_per_swarm;
    // Every visitor re-announces on every version (swarms are per version).
    cfg.connection.messages_per_sec = cfg.connection.messages_per_sec.max(100.0);
    cfg.connection.message_burst = cfg.connection.message_burst.max(200.0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state = peerhost_tracker::AppState::new(cfg);
    peerhost_tracker::server::spawn_housekeeping(state.clone());
    tokio::spawn(peerhost_tracker::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    Ok((format!("ws://{addr}/announce"), state))
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Empty<hyper::body::Bytes>,
>;

fn http_client() -> HttpClient {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(64)
        .build_http()
}

/// GET `path` (optionally a byte range) from the origin; the body, or why not.
async fn get(
    http: &HttpClient,
    origin: SocketAddr,
    path: &str,
    range: Option<std::ops::Range<u64>>,
) -> Result<Vec<u8>, String> {
    let mut req = hyper::Request::get(format!("http://{origin}{path}"));
    if let Some(r) = &range {
        req = req.header(
            "range",
            format!("bytes={}-{}", r.start, r.end.saturating_sub(1)),
        );
    }
    let req = req
        .body(http_body_util::Empty::new())
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(10), http.request(req))
        .await
        .map_err(|_| "timeout".to_owned())?
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes()
        .to_vec();
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("HTTP {status}"))
    }
}

/// Something for the simulation loop.
enum Ev {
    /// A tracker message for node `i`.
    Tracker(usize, String),
    /// Node `i`'s tracker socket is up.
    TrackerUp(usize),
    /// An origin answer for node `i`.
    Origin(usize, RequestId, Result<Vec<u8>, OriginError>),
    /// The publisher is about to push `version`.
    Pushing(u64, std::time::Instant),
    /// Stop and report.
    Stop(tokio::sync::oneshot::Sender<Vec<UpdateFigures>>),
}

/// When each visitor got one version's `score.json`.
#[derive(Debug, Clone)]
struct UpdateFigures {
    switched: usize,
    pushed_at: std::time::Instant,
    delivered_ms: Vec<f64>,
}

struct Node {
    client: Client,
    visitor: bool,
    ws: Option<mpsc::UnboundedSender<String>>,
    seen_version: u64,
    /// Tickets handed out so far (the next one's number).
    tickets_issued: u64,
}

struct Sim {
    start: std::time::Instant,
    nodes: Vec<Node>,
    /// The data channels between the nodes (node `i` is net node `i`); the
    /// tracker and the origin are real, so its own are unused.
    net: Net<Infallible>,
    origin: SocketAddr,
    http: HttpClient,
    tx: mpsc::UnboundedSender<Ev>,
    updates: BTreeMap<u64, UpdateFigures>,
    files: Vec<String>,
    /// Earliest deadline of any node, as far as known.
    next_deadline: Option<Instant>,
    /// Visitors that hold the ticker file of the first version.
    ready: Arc<std::sync::atomic::AtomicUsize>,
}

/// A node's access: nothing the network adds, so the figures are the
/// protocol's and the core's.
const ACCESS: Access = Access {
    up_bytes_per_s: u64::MAX,
    down_bytes_per_s: u64::MAX,
    latency_ms: 0,
};

/// The network's parameters: no loss, no NAT failure; its tracker and
/// origin are not used.
fn net_config() -> NetConfig {
    NetConfig {
        tracker_latency: Duration::ZERO,
        loss: 0.0,
        nat_failure: 0.0,
        origin_latency: Duration::ZERO,
        origin_bytes_per_s: u64::MAX,
        // Frames as values, one shared buffer per piece, as before.
        wire_codec: false,
    }
}

/// Network events one [`Sim::run_net`] performs at most: a livelock is our
/// bug, not a reason to hang.
const MAX_NET_EVENTS: u64 = 10_000_000;

impl Sim {
    /// The clients' and the network's time: the network's clock, which
    /// [`Sim::run_net`] keeps at the wall's.
    fn now(&self) -> Instant {
        self.net.now()
    }

    fn wall(&self) -> Instant {
        Instant(self.start.elapsed().as_millis() as u64)
    }

    fn pump(&mut self, i: usize) {
        loop {
            while let Some(out) = self.nodes[i].client.poll_output() {
                self.perform(i, out);
            }
            // The page asks for the ticker file again on every new version.
            let version = self.nodes[i].client.manifest().map_or(0, |m| m.version());
            if version <= self.nodes[i].seen_version {
                if let Some(t) = self.nodes[i].client.poll_timeout() {
                    self.next_deadline = Some(self.next_deadline.map_or(t, |n| n.min(t)));
                }
                break;
            }
            self.nodes[i].seen_version = version;
            if self.nodes[i].visitor
                && let Some(u) = self.updates.get_mut(&version)
            {
                u.switched += 1;
            }
            let now = self.now();
            let paths: Vec<String> = if self.nodes[i].visitor {
                vec![TICKER_FILE.to_owned()]
            } else {
                self.files.clone()
            };
            for path in paths {
                let node = &mut self.nodes[i];
                let ticket = Ticket(node.tickets_issued);
                node.tickets_issued += 1;
                node.client.handle_input(now, Input::Want { ticket, path });
            }
        }
    }

    fn perform(&mut self, i: usize, out: Output) {
        match out {
            Output::Tracker(msg) => {
                if let Some(ws) = &self.nodes[i].ws {
                    let _ = ws.send(msg.to_json());
                }
            }
            Output::FetchOrigin {
                request,
                path,
                range,
            } => {
                let (http, origin, tx) = (self.http.clone(), self.origin, self.tx.clone());
                tokio::spawn(async move {
                    let r = get(&http, origin, &path, Some(range))
                        .await
                        .map_err(OriginError);
                    let _ = tx.send(Ev::Origin(i, request, r));
                });
            }
            // Hashing and signature checks stay inline (the default); nothing to answer.
            Output::HashPiece { .. } | Output::VerifySignature { .. } => {}
            Output::Deliver { path, .. } => {
                if self.nodes[i].visitor && path == TICKER_FILE {
                    let version = self.nodes[i].client.manifest().map_or(0, |m| m.version());
                    if version == 1 {
                        self.ready
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    if let Some(u) = self.updates.get_mut(&version) {
                        u.delivered_ms
                            .push(u.pushed_at.elapsed().as_secs_f64() * 1000.0);
                    }
                }
            }
            Output::Failed { .. } | Output::Event(_) => {}
            // Offers, answers, frames and closes: the network's.
            out => {
                let back = self.net.route(i as u32, out);
                debug_assert!(back.is_none(), "the network gave back {back:?}");
            }
        }
    }

    fn handle(&mut self, ev: Ev) -> Option<tokio::sync::oneshot::Sender<Vec<UpdateFigures>>> {
        self.run_net();
        let now = self.now();
        match ev {
            Ev::Tracker(i, text) => {
                if let Ok(msg) = ServerMessage::from_json(&text) {
                    self.nodes[i].client.handle_input(now, Input::Tracker(msg));
                    self.pump(i);
                }
            }
            Ev::TrackerUp(i) => {
                self.nodes[i]
                    .client
                    .handle_input(now, Input::TrackerConnected);
                self.pump(i);
            }
            Ev::Origin(i, request, result) => {
                self.nodes[i].client.handle_input(
                    now,
                    Input::Origin {
                        request,
                        result: (result).map(Bytes::from),
                    },
                );
                self.pump(i);
            }
            Ev::Pushing(version, at) => {
                self.updates.insert(
                    version,
                    UpdateFigures {
                        switched: 0,
                        pushed_at: at,
                        delivered_ms: Vec::new(),
                    },
                );
            }
            Ev::Stop(reply) => return Some(reply),
        }
        None
    }

    /// Performs the network's events that are due by the wall clock, in
    /// order, then moves its clock to the wall's. Events an event schedules
    /// for the same millisecond run too (zero latency).
    fn run_net(&mut self) {
        let wall = self.wall();
        let mut budget = MAX_NET_EVENTS;
        while budget > 0 && self.net.next_instant().is_some_and(|t| t <= wall) {
            self.net.begin();
            let now = self.now();
            while let Some(step) = self.net.pop() {
                budget = budget.saturating_sub(1);
                match step {
                    Step::Client(i, input) => {
                        self.nodes[i as usize].client.handle_input(now, input);
                        self.pump(i as usize);
                    }
                    Step::Driver(never) => match never {},
                }
            }
        }
        if self.net.next_instant().is_none_or(|t| t > wall) {
            self.net.advance_to(wall);
        }
    }

    fn timeouts(&mut self) -> Option<Instant> {
        let now = self.now();
        // Scanning every node is O(N): only when the earliest deadline is due.
        if self.next_deadline.is_some_and(|t| t > now) {
            return self.next_deadline;
        }
        let mut next: Option<Instant> = None;
        for i in 0..self.nodes.len() {
            if self.nodes[i]
                .client
                .poll_timeout()
                .is_some_and(|t| t <= now)
            {
                self.nodes[i].client.handle_input(now, Input::Timeout);
                self.pump(i);
            }
            if let Some(t) = self.nodes[i].client.poll_timeout() {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        }
        self.next_deadline = next;
        next
    }
}

/// Opens node `i`'s tracker WebSocket: messages in go to the loop, the
/// returned sender carries messages out.
async fn connect(
    url: &str,
    i: usize,
    tx: mpsc::UnboundedSender<Ev>,
) -> anyhow::Result<mpsc::UnboundedSender<String>> {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .with_context(|| format!("tracker {url}"))?;
    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Some(text) = out_rx.recv().await {
            if sink.send(Message::text(text)).await.is_err() {
                break;
            }
        }
    });
    let up = tx.clone();
    tokio::spawn(async move {
        while let Some(Ok(frame)) = stream.next().await {
            if let Message::Text(t) = frame
                && tx.send(Ev::Tracker(i, t.to_string())).is_err()
            {
                break;
            }
        }
    });
    let _ = up.send(Ev::TrackerUp(i));
    Ok(out_tx)
}

async fn run_one(peers: usize, seeders: usize, updates: u32) -> anyhow::Result<RunFigures> {
    let site = tempfile::Builder::new()
        .prefix("peerhost-ticker-")
        .tempdir()?;
    write_site(site.path())?;
    let v1 = republish(site.path(), 0)?;
    let files: Vec<String> = v1
        .manifest()
        .assets
        .iter()
        .map(|a| a.path.clone())
        .collect();
    let (origin, counters) = serve_origin(site.path()).await?;
    let total = peers + seeders;
    let (tracker_url, _tracker) = start_tracker(total).await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Ev>();

    let start = std::time::Instant::now();
    let wall = unix_now();
    let mut nodes = Vec::with_capacity(total);
    let mut net = Net::new(net_config(), Rng::new(0x5EED_7EC4));
    for i in 0..total {
        let visitor = i >= seeders;
        let mut config = ClientConfig::default();
        if !visitor {
            // A cooperating host: takes each version at once, fetches it
            // from the origin without waiting for peers, serves many.
            config.max_peers = 32;
            config.max_switch_delay = Duration::ZERO;
            config.scheduler.discovery_grace = Duration::ZERO;
            // Its job is to be the one who asks the origin: no waiting for
            // a neighbour to fetch a piece first (visitors do that).
            config.scheduler.origin_wait_with_peers = Duration::ZERO;
            config.upload = peerhost_core::upload::UploadLimits::unlimited();
        }
        let mut client = Client::new(
            config,
            bench_secret().site_key(),
            0,
            0x5EED_0000 + i as u64,
            Instant(start.elapsed().as_millis() as u64),
        );
        let now = Instant(start.elapsed().as_millis() as u64);
        client.handle_input(
            now,
            Input::Manifest {
                manifest: Box::new(v1.clone()),
                source: ManifestSource::Origin,
                wall,
            },
        );
        anyhow::ensure!(
            client.manifest().is_some(),
            "the bench manifest does not verify"
        );
        if !visitor {
            for p in &files {
                let bytes = std::fs::read(site.path().join(p.trim_start_matches('/')))?;
                client.handle_input(
                    now,
                    Input::AssetHeld {
                        path: p.to_string(),
                        bytes: Bytes::from(bytes),
                    },
                );
            }
        }
        net.add_node(ACCESS);
        nodes.push(Node {
            client,
            visitor,
            ws: None,
            seen_version: 0,
            tickets_issued: 0,
        });
    }
    let ready = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut sim = Sim {
        start,
        nodes,
        net,
        origin,
        http: http_client(),
        tx: tx.clone(),
        updates: BTreeMap::new(),
        files: files.clone(),
        next_deadline: None,
        ready: ready.clone(),
    };
    let bar = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template("  {msg} {bar:30} {pos}/{len}").expect("template"),
    );
    bar.set_message(format!("N = {peers}: connecting"));
    for i in 0..total {
        sim.nodes[i].ws = Some(connect(&tracker_url, i, tx.clone()).await?);
        bar.inc(1);
    }
    // The loop runs on its own task; the publisher below talks to it by events.
    let sim_task = tokio::spawn(async move {
        loop {
            sim.run_net();
            let next = sim.timeouts();
            sim.run_net();
            // Wake for the next client deadline or network event.
            let next = match (next, sim.net.next_instant()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let wait = next.map_or(Duration::from_millis(50), |t| {
                Duration::from_millis(t.as_millis().saturating_sub(sim.now().as_millis()).min(50))
            });
            let ev = tokio::select! {
                ev = rx.recv() => ev,
                () = tokio::time::sleep(wait) => continue,
            };
            let Some(ev) = ev else { return };
            if let Some(reply) = sim.handle(ev) {
                let _ = reply.send(sim.updates.values().cloned().collect());
                return;
            }
            // Drain what else is ready before the next round of timeouts.
            while let Ok(ev) = rx.try_recv() {
                if let Some(reply) = sim.handle(ev) {
                    let _ = reply.send(sim.updates.values().cloned().collect());
                    return;
                }
            }
        }
    });

    // Let the initial load settle: every visitor holds version 1 (bounded).
    bar.set_message(format!("N = {peers}: initial load"));
    let settle = std::time::Instant::now();
    while ready.load(std::sync::atomic::Ordering::Relaxed) < peers
        && settle.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Then a quiet second for connections still being set up.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let mut per_update = Vec::with_capacity(updates as usize);
    bar.set_length(u64::from(updates));
    bar.set_position(0);
    bar.set_message(format!("N = {peers}: pushing updates"));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // A late update (a loaded machine) pushes the next ones later, never two at once.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    for k in 1..=updates {
        tick.tick().await;
        let before = (counters.requests(), counters.bytes_served());
        let signed = republish(site.path(), k)?;
        let _ = tx.send(Ev::Pushing(
            signed.manifest().version,
            std::time::Instant::now(),
        ));
        peerhost_site::push::push(&tracker_url, &signed, Duration::from_secs(5)).await?;
        per_update.push(before);
        bar.inc(1);
    }
    // The last update gets its second too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let end = (counters.requests(), counters.bytes_served());
    let (reply, figures) = tokio::sync::oneshot::channel();
    let _ = tx.send(Ev::Stop(reply));
    let figures = tokio::time::timeout(Duration::from_secs(30), figures)
        .await
        .context("the simulation did not stop")??;
    sim_task.abort();

    let mut requests = Vec::new();
    let mut bytes = Vec::new();
    for (k, before) in per_update.iter().enumerate() {
        let after = per_update.get(k + 1).copied().unwrap_or(end);
        requests.push(after.0 - before.0);
        bytes.push(after.1 - before.1);
    }
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    let mut missed = 0u64;
    for u in &figures {
        let mut d = u.delivered_ms.clone();
        d.sort_by(f64::total_cmp);
        missed += peers.saturating_sub(d.len()) as u64;
        let at = |q: f64| {
            let need = ((peers as f64) * q).ceil() as usize;
            d.get(need.saturating_sub(1))
                .copied()
                .unwrap_or(f64::INFINITY)
        };
        p50.push(at(0.50));
        p99.push(at(0.99));
    }
    let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let ticker_bytes = score(updates).len() as u64;

    bar.set_message(format!("N = {peers}: naive polling"));
    bar.set_position(0);
    let (naive_req, naive_bytes) = naive(site.path(), peers, updates, &bar).await?;
    bar.finish_and_clear();

    let push_req = mean(&requests);
    let push_bytes = mean(&bytes);
    Ok(RunFigures {
        peers,
        seeders,
        updates,
        origin_requests_per_update: push_req,
        origin_requests_max: requests.iter().copied().max().unwrap_or(0),
        origin_bytes_per_update: push_bytes,
        ticker_bytes,
        p50_peers_ms: median(&mut p50),
        p99_peers_ms: median(&mut p99.clone()),
        p99_peers_worst_ms: p99.iter().copied().fold(0.0, f64::max),
        missed,
        p99_per_update_ms: p99.iter().map(|v| v.is_finite().then_some(*v)).collect(),
        switched_per_update: figures.iter().map(|u| u.switched).collect(),
        naive_requests_per_update: naive_req,
        naive_bytes_per_update: naive_bytes,
        request_ratio: naive_req / push_req.max(f64::MIN_POSITIVE),
        byte_ratio: naive_bytes / push_bytes.max(f64::MIN_POSITIVE),
    })
}

/// The naive design: every visitor GETs the ticker file once per second.
/// Returns origin requests and bytes per second (= per update).
async fn naive(
    site: &Path,
    peers: usize,
    seconds: u32,
    bar: &ProgressBar,
) -> anyhow::Result<(f64, f64)> {
    let (origin, counters) = serve_origin(site).await?;
    let http = http_client();
    bar.set_length(u64::from(seconds));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for _ in 0..seconds {
        tick.tick().await;
        for _ in 0..peers {
            let http = http.clone();
            tokio::spawn(async move {
                let _ = get(&http, origin, TICKER_FILE, None).await;
            });
        }
        bar.inc(1);
    }
    tick.tick().await;
    let s = f64::from(seconds.max(1));
    Ok((
        counters.requests() as f64 / s,
        counters.bytes_served() as f64 / s,
    ))
}
