//! `peerhost bench tracker`: a bounded load generator for WebTorrent
//! WebSocket trackers, run against this tracker and the stock Node
//! `bittorrent-tracker` in the same run.
//!
//! Method (after aquatic's `ws_load_test`, plain ws): N connections spread
//! over S swarms; each announces with K fake data-channel offers, answers
//! every offer relayed to it, and sends its next announce when the previous
//! one is answered (closed loop). **Responses** = announce responses +
//! offers relayed + answers relayed received by the generator. Then the
//! same connections run open loop at 50 % of the measured peak, for the
//! latency target. Before both, M idle connections (upgrade, no message)
//! measure RSS per idle connection of the tracker process.
//!
//! Figures: responses/s, announce→response latency p50/p99, tracker
//! CPU-seconds per 100k responses (`/proc/<pid>/stat`, normalises a
//! generator that is itself the bottleneck), RSS per idle connection
//! (`/proc/<pid>/statm`). With `--pin` (default) the trackers run on CPU 0
//! and the generator on CPU 1 (`taskset`). Every loop is bounded in count
//! and time; only 127.0.0.0/8 is ever contacted.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::{Context as _, bail};
use futures_util::{SinkExt as _, StreamExt as _};
use peerhost_core::signal::{AnswerMsg, ClientMessage, PeerId, Sdp, ServerMessage};
use serde::Serialize;
use tokio::io::AsyncBufReadExt as _;
use tokio::net::TcpSocket;
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Arguments of `peerhost bench tracker`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Load connections (peers), each announcing in a closed loop.
    #[arg(long, default_value_t = 200)]
    pub connections: usize,
    /// Seconds measured per phase (after a 1 s warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Offers per announce.
    #[arg(long, default_value_t = 2)]
    pub offers: usize,
    /// Swarms the connections are spread over.
    #[arg(long, default_value_t = 10)]
    pub swarms: usize,
    /// Idle connections opened to measure RSS per idle connection (0 skips).
    #[arg(long, default_value_t = 2000)]
    pub idle_connections: usize,
    /// Bench an already running tracker at this ws:// URL instead of starting ours.
    #[arg(long)]
    pub target: Option<String>,
    /// Process id of `--target`, for CPU and RSS figures.
    #[arg(long)]
    pub target_pid: Option<u32>,
    /// Skip the bittorrent-tracker comparison.
    #[arg(long)]
    pub no_node: bool,
    /// The Node script that starts bittorrent-tracker
    /// (default: tracker/tests/js/bittorrent-tracker-server.mjs).
    #[arg(long)]
    pub node_script: Option<PathBuf>,
    /// Binary started as `<exe> tracker --listen 127.0.0.1:0 --set …` (default: this program).
    #[arg(long)]
    pub tracker_exe: Option<PathBuf>,
    /// Do not pin trackers to CPU 0 and the generator to CPU 1.
    #[arg(long)]
    pub no_pin: bool,
    /// Print the figures as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
}

impl Default for BenchArgs {
    fn default() -> Self {
        BenchArgs {
            connections: 200,
            duration: 10,
            offers: 2,
            swarms: 10,
            idle_connections: 2000,
            target: None,
            target_pid: None,
            no_node: false,
            node_script: None,
            tracker_exe: None,
            no_pin: false,
            json: false,
        }
    }
}

/// Hard caps that keep a mistyped flag from hurting the machine.
const MAX_CONNECTIONS: usize = 20_000;
const MAX_IDLE: usize = 15_000;
const MAX_DURATION_SECS: u64 = 300;
const MAX_OFFERS: usize = 10;
/// Latency samples kept per phase, in all.
const MAX_SAMPLES: usize = 2_000_000;
/// Outstanding announces per connection in the open-loop phase.
const MAX_PENDING: usize = 64;

/// A realistic data-channel-only offer, ~450 bytes.
const FAKE_SDP: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=candidate:1467250027 1 udp 2122260223 127.0.0.1 46243 typ host generation 0\r\na=ice-ufrag:pTkE\r\na=ice-pwd:3k5SQnGnpDqWj4Nc/OWbO2Kt\r\na=ice-options:trickle\r\na=fingerprint:sha-256 3C:8F:7A:26:4D:9E:1B:55:C2:86:30:F1:6A:2E:87:B0:11:D4:5F:9C:21:E3:0A:77:98:46:BD:62:5A:19:C4:E8\r\na=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n";

/// The figures for one tracker.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// Which tracker.
    pub name: String,
    /// Responses per second at saturation (closed loop).
    pub responses_per_sec: f64,
    /// Announce responses received in the measured window.
    pub announce_responses: u64,
    /// Relayed offers received.
    pub offers_relayed: u64,
    /// Relayed answers received.
    pub answers_relayed: u64,
    /// Error messages received.
    pub errors: u64,
    /// Load connections that failed to connect.
    pub connect_failures: u64,
    /// Announce→response latency at saturation, ms.
    pub saturated_p50_ms: f64,
    /// Announce→response latency at saturation, ms.
    pub saturated_p99_ms: f64,
    /// Tracker CPU-seconds per 100k responses at saturation.
    pub cpu_seconds_per_100k: Option<f64>,
    /// Offered load of the half-load phase, responses/s.
    pub half_load_target_per_sec: f64,
    /// Responses/s achieved at half load.
    pub half_load_responses_per_sec: f64,
    /// Latency at half load, ms.
    pub half_load_p50_ms: f64,
    /// Latency at half load, ms.
    pub half_load_p99_ms: f64,
    /// Idle connections opened for the RSS figure.
    pub idle_connections: usize,
    /// RSS growth per idle connection, bytes.
    pub rss_per_idle_connection_bytes: Option<f64>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Load connections.
    pub connections: usize,
    /// Seconds per phase.
    pub duration_secs: u64,
    /// Offers per announce.
    pub offers: usize,
    /// Swarms.
    pub swarms: usize,
    /// Whether trackers and generator were pinned to separate CPUs.
    pub pinned: bool,
    /// One report per tracker.
    pub targets: Vec<TargetReport>,
    /// peerhost responses/s ÷ bittorrent-tracker responses/s.
    pub throughput_ratio: Option<f64>,
}

struct Target {
    name: String,
    url: String,
    addr: SocketAddr,
    pid: Option<u32>,
    child: Option<Child>,
}

/// Runs the bench and prints the figures.
///
/// The generator runs on its own single-threaded runtime: two worker
/// threads sharing the one pinned CPU would time-slice and add scheduler
/// delay to every latency figure.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let a = args.clone();
    let report = tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(bench(&a))
    })
    .await??;
    print_report(&report);
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    }
    Ok(())
}

/// Runs the bench and returns the figures.
pub async fn bench(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    let mut args = args.clone();
    args.connections = args.connections.clamp(1, MAX_CONNECTIONS);
    args.idle_connections = args.idle_connections.min(MAX_IDLE);
    args.duration = args.duration.clamp(1, MAX_DURATION_SECS);
    args.offers = args.offers.min(MAX_OFFERS);
    args.swarms = args.swarms.clamp(1, args.connections);
    let pinned = !args.no_pin && pin_self_to_cpu1().await;

    let mut targets = Vec::new();
    match &args.target {
        Some(url) => {
            let addr = parse_ws_addr(url)?;
            targets.push(Target {
                name: "target".into(),
                url: url.clone(),
                addr,
                pid: args.target_pid,
                child: None,
            });
        }
        None => targets.push(spawn_peerhost(&args, pinned).await?),
    }
    let mut reports = Vec::new();
    for t in &mut targets {
        eprintln!("bench: {} at {}", t.name, t.url);
        reports.push(bench_target(&args, t).await);
        if let Some(c) = &mut t.child {
            let _ = c.kill().await;
        }
    }
    if args.target.is_none() && !args.no_node {
        match spawn_node(&args, pinned).await {
            Ok(mut t) => {
                eprintln!("bench: {} at {}", t.name, t.url);
                reports.push(bench_target(&args, &t).await);
                if let Some(c) = &mut t.child {
                    let _ = c.kill().await;
                }
            }
            Err(e) => eprintln!("bench: bittorrent-tracker skipped: {e:#}"),
        }
    }
    let throughput_ratio = match (reports.first(), reports.get(1)) {
        (Some(a), Some(b)) if b.responses_per_sec > 0.0 => {
            Some(a.responses_per_sec / b.responses_per_sec)
        }
        _ => None,
    };
    Ok(BenchReport {
        connections: args.connections,
        duration_secs: args.duration,
        offers: args.offers,
        swarms: args.swarms,
        pinned,
        targets: reports,
        throughput_ratio,
    })
}

fn print_report(r: &BenchReport) {
    println!(
        "tracker bench: {} connections, {} swarms, {} offers/announce, {} s per phase, pinned: {}",
        r.connections, r.swarms, r.offers, r.duration_secs, r.pinned
    );
    let opt =
        |v: Option<f64>, scale: f64| v.map_or("-".to_owned(), |v| format!("{:.2}", v / scale));
    println!(
        "{:<20} {:>12} {:>9} {:>9} {:>12} {:>12} {:>9} {:>9} {:>12} {:>8}",
        "tracker",
        "responses/s",
        "p50 ms",
        "p99 ms",
        "cpu-s/100k",
        "half-load/s",
        "p50 ms",
        "p99 ms",
        "KiB/idle-conn",
        "errors"
    );
    for t in &r.targets {
        println!(
            "{:<20} {:>12.0} {:>9.2} {:>9.2} {:>12} {:>12.0} {:>9.2} {:>9.2} {:>12} {:>8}",
            t.name,
            t.responses_per_sec,
            t.saturated_p50_ms,
            t.saturated_p99_ms,
            opt(t.cpu_seconds_per_100k, 1.0),
            t.half_load_responses_per_sec,
            t.half_load_p50_ms,
            t.half_load_p99_ms,
            opt(t.rss_per_idle_connection_bytes, 1024.0),
            t.errors + t.connect_failures,
        );
    }
    if let Some(x) = r.throughput_ratio {
        println!("throughput ratio peerhost / bittorrent-tracker: {x:.2}x");
    }
}

fn parse_ws_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url
        .strip_prefix("ws://")
        .context("only ws:// targets are supported")?;
    let host = rest.split('/').next().unwrap_or_default();
    let addr: SocketAddr = host.parse().context("target must be ws://IP:PORT")?;
    if !addr.ip().is_loopback() {
        bail!("the bench only targets loopback addresses");
    }
    Ok(addr)
}

async fn pin_self_to_cpu1() -> bool {
    let pid = std::process::id().to_string();
    Command::new("taskset")
        .args(["-a", "-p", "-c", "1", &pid])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

async fn spawn_listening(cmd: Command, name: &str, pinned: bool) -> anyhow::Result<Target> {
    let cmd = if pinned {
        let std = cmd.as_std();
        let mut t = Command::new("taskset");
        t.arg("-c")
            .arg("0")
            .arg(std.get_program())
            .args(std.get_args());
        t
    } else {
        cmd
    };
    let mut cmd = cmd;
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd.spawn().with_context(|| format!("starting {name}"))?;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(l)) = lines.next_line().await {
            if let Some(i) = l.find("ws://") {
                return Some(l[i..].trim().to_owned());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .with_context(|| format!("{name} did not report its address"))?;
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let addr = parse_ws_addr(&line)?;
    Ok(Target {
        name: name.to_owned(),
        url: format!("ws://{addr}/"),
        addr,
        pid: child.id(),
        child: Some(child),
    })
}

async fn spawn_peerhost(args: &BenchArgs, pinned: bool) -> anyhow::Result<Target> {
    let exe = match &args.tracker_exe {
        Some(p) => p.clone(),
        None => std::env::current_exe()?,
    };
    let mut cmd = Command::new(exe);
    cmd.args(["tracker", "--listen", "127.0.0.1:0"]);
    // Abuse limits sized for one generator host opening thousands of
    // connections at full speed; everything else stays at its default.
    for set in [
        "connection.max_connections=100000",
        "connection.max_connections_per_ip=100000",
        "connection.messages_per_sec=1000000",
        "connection.message_burst=1000000",
        "connection.outbound_queue_len=1024",
        "connection.outbound_queue_bytes=16777216",
        "swarm.max_peers_per_swarm=100000",
        "swarm.max_peers_per_prefix=100000",
    ] {
        cmd.args(["--set", set]);
    }
    cmd.env_remove("PEERHOST_TRACKER_SET")
        .env_remove("PEERHOST_TRACKER_CONFIG")
        .env_remove("PEERHOST_TRACKER_LISTEN");
    spawn_listening(cmd, "peerhost", pinned).await
}

async fn spawn_node(args: &BenchArgs, pinned: bool) -> anyhow::Result<Target> {
    let script = match &args.node_script {
        Some(p) => p.clone(),
        None => {
            let here = PathBuf::from("tracker/tests/js/bittorrent-tracker-server.mjs");
            if here.exists() {
                here
            } else {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../tracker/tests/js/bittorrent-tracker-server.mjs")
            }
        }
    };
    if !script.exists() {
        bail!("{} not found", script.display());
    }
    let mut cmd = Command::new("node");
    cmd.arg(&script).arg("0");
    spawn_listening(cmd, "bittorrent-tracker", pinned).await
}

// ---------------------------------------------------------------------------
// /proc readings

async fn getconf(name: &str, default: u64) -> u64 {
    let out = Command::new("getconf").arg(name).output().await;
    out.ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// utime + stime of `pid`, seconds.
async fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = tokio::fs::read_to_string(format!("/proc/{pid}/stat"))
        .await
        .ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is index 0; utime is field 14 overall, index 11 here.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / getconf("CLK_TCK", 100).await as f64)
}

async fn rss_bytes(pid: u32) -> Option<u64> {
    let statm = tokio::fs::read_to_string(format!("/proc/{pid}/statm"))
        .await
        .ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * getconf("PAGESIZE", 4096).await)
}

// ---------------------------------------------------------------------------
// Load

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Spreads connections over 127.0.0.1–127.0.0.250 so ephemeral ports last.
fn source_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % 250) as u8))
}

async fn connect(addr: SocketAddr, i: usize) -> anyhow::Result<Ws> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(source_ip(i), 0))?;
    let stream = tokio::time::timeout(Duration::from_secs(10), sock.connect(addr)).await??;
    stream.set_nodelay(true)?;
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::client_async(format!("ws://{addr}/"), stream),
    )
    .await??;
    Ok(ws)
}

#[derive(Default)]
struct Counters {
    announce_responses: AtomicU64,
    offers: AtomicU64,
    answers: AtomicU64,
    errors: AtomicU64,
    connect_failures: AtomicU64,
}

impl Counters {
    fn responses(&self) -> u64 {
        self.announce_responses.load(Relaxed)
            + self.offers.load(Relaxed)
            + self.answers.load(Relaxed)
    }
}

#[derive(Clone, Copy)]
enum Pace {
    /// Next announce as soon as the previous one is answered.
    Closed,
    /// One announce every `interval`, first after `offset`.
    Open {
        interval: Duration,
        offset: Duration,
    },
}

struct PhaseResult {
    responses_per_sec: f64,
    announce_responses: u64,
    offers: u64,
    answers: u64,
    errors: u64,
    connect_failures: u64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_seconds: Option<f64>,
}

// The generator must cost less than the trackers it measures: ids are
// ASCII (so they appear verbatim in JSON), messages are formatted from
// pre-escaped parts, and relayed offers are read by substring, with a full
// parse only as a fallback.

/// Distinct per phase, so a peer of the previous phase whose close the
/// tracker has not processed yet never collides with its successor.
fn peer_id(phase: u8, i: usize) -> String {
    format!("-PH0001-{phase}{i:011}")
}

fn swarm(i: usize, swarms: usize) -> String {
    format!("peerhostbench{:07}", i % swarms)
}

fn offer_id(i: usize, sent: u64, k: usize) -> String {
    format!(
        "{:08x}{:011x}{:x}",
        i as u32,
        sent & 0x7ff_ffff_ffff,
        k & 15
    )
}

/// The 20-character string value of `"key":"…"` in `text`, if plain ASCII.
fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let at = text.find(key)? + key.len();
    let v = text.get(at..at + 20)?;
    (text.as_bytes().get(at + 20) == Some(&b'"') && !v.contains(['\\', '"'])).then_some(v)
}

struct Templates {
    sdp_json: String,
}

impl Templates {
    fn new() -> Self {
        Templates {
            sdp_json: serde_json::to_string(FAKE_SDP).unwrap_or_default(),
        }
    }

    fn announce(&self, ih: &str, me: &str, i: usize, sent: u64, offers: usize) -> String {
        let mut s = String::with_capacity(160 + offers * (self.sdp_json.len() + 80));
        s.push_str(r#"{"action":"announce","info_hash":""#);
        s.push_str(ih);
        s.push_str(r#"","peer_id":""#);
        s.push_str(me);
        s.push_str(&format!(
            r#"","numwant":{offers},"uploaded":0,"downloaded":0,"left":1"#
        ));
        if sent == 0 {
            s.push_str(r#","event":"started""#);
        }
        s.push_str(r#","offers":["#);
        for k in 0..offers {
            if k > 0 {
                s.push(',');
            }
            s.push_str(r#"{"offer_id":""#);
            s.push_str(&offer_id(i, sent, k));
            s.push_str(r#"","offer":{"type":"offer","sdp":"#);
            s.push_str(&self.sdp_json);
            s.push_str("}}");
        }
        s.push_str("]}");
        s
    }

    fn answer(&self, ih: &str, me: &str, to: &str, oid: &str) -> String {
        format!(
            r#"{{"action":"announce","info_hash":"{ih}","peer_id":"{me}","to_peer_id":"{to}","offer_id":"{oid}","answer":{{"type":"answer","sdp":{}}}}}"#,
            self.sdp_json
        )
    }
}

/// The answer to a relayed offer, by substring or, failing that, a full parse.
fn answer_for(tpl: &Templates, ih: &str, me: &str, text: &str) -> Option<String> {
    if let (Some(from), Some(oid)) = (
        field(text, r#""peer_id":""#),
        field(text, r#""offer_id":""#),
    ) {
        return Some(tpl.answer(ih, me, from, oid));
    }
    let ServerMessage::Offer(o) = ServerMessage::from_json(text).ok()? else {
        return None;
    };
    let msg = ClientMessage::Answer(AnswerMsg {
        info_hash: o.info_hash,
        peer_id: PeerId::from_binary_str(me)?,
        to_peer_id: o.peer_id,
        offer_id: o.offer_id,
        answer: Sdp::answer(FAKE_SDP),
    });
    Some(msg.to_json())
}

#[allow(clippy::too_many_arguments)]
async fn load_peer(
    addr: SocketAddr,
    phase: u8,
    i: usize,
    swarms: usize,
    offers: usize,
    pace: Pace,
    start: Instant,
    measure_from: Instant,
    end: Instant,
    counters: Arc<Counters>,
    sample_cap: usize,
) -> Vec<u32> {
    let mut samples = Vec::new();
    let Ok(Ok(mut ws)) = tokio::time::timeout_at(start, connect(addr, i)).await else {
        counters.connect_failures.fetch_add(1, Relaxed);
        return samples;
    };
    tokio::time::sleep_until(start).await;
    let tpl = Templates::new();
    let (ih, me) = (swarm(i, swarms), peer_id(phase, i));
    let mut pending: VecDeque<Instant> = VecDeque::new();
    let mut sent: u64 = 0;
    let mut next_send = match pace {
        Pace::Closed => start,
        Pace::Open { offset, .. } => start + offset,
    };
    // Bounded: ends at `end` whatever the tracker does.
    while Instant::now() < end {
        let now = Instant::now();
        let due = match pace {
            Pace::Closed => pending.is_empty(),
            Pace::Open { .. } => now >= next_send,
        };
        if due {
            if let Pace::Open { interval, .. } = pace {
                next_send += interval;
            }
            if pending.len() < MAX_PENDING {
                let msg = tpl.announce(&ih, &me, i, sent, offers);
                sent += 1;
                if ws.send(Message::text(msg)).await.is_err() {
                    break;
                }
                pending.push_back(Instant::now());
            }
            continue;
        }
        let wake = match pace {
            Pace::Closed => end,
            Pace::Open { .. } => next_send.min(end),
        };
        let msg = match tokio::time::timeout_at(wake, ws.next()).await {
            Err(_) => continue,
            Ok(None | Some(Err(_))) => break,
            Ok(Some(Ok(m))) => m,
        };
        let Message::Text(text) = msg else { continue };
        let now = Instant::now();
        let measuring = now >= measure_from;
        let t = text.as_str();
        if t.contains("\"failure reason\"") {
            if measuring {
                counters.errors.fetch_add(1, Relaxed);
            }
            pending.pop_front();
        } else if t.contains("\"offer\"") {
            if measuring {
                counters.offers.fetch_add(1, Relaxed);
            }
            if let Some(answer) = answer_for(&tpl, &ih, &me, t)
                && ws.send(Message::text(answer)).await.is_err()
            {
                break;
            }
        } else if t.contains("\"answer\"") {
            if measuring {
                counters.answers.fetch_add(1, Relaxed);
            }
        } else if t.contains("\"interval\"")
            && let Some(at) = pending.pop_front()
            && measuring
        {
            counters.announce_responses.fetch_add(1, Relaxed);
            if samples.len() < sample_cap {
                let micros = now.duration_since(at).as_micros();
                samples.push(micros.min(u128::from(u32::MAX)) as u32);
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
    samples
}

async fn run_phase(
    args: &BenchArgs,
    t: &Target,
    phase: u8,
    pace_of: impl Fn(usize) -> Pace,
) -> PhaseResult {
    let n = args.connections;
    let counters = Arc::new(Counters::default());
    let connect_budget = Duration::from_millis(2_000 + n as u64);
    let start = Instant::now() + connect_budget;
    let measure_from = start + Duration::from_secs(1);
    let end = measure_from + Duration::from_secs(args.duration);
    let cap = (MAX_SAMPLES / n).max(16);
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            tokio::spawn(load_peer(
                t.addr,
                phase,
                i,
                args.swarms,
                args.offers,
                pace_of(i),
                start,
                measure_from,
                end,
                counters.clone(),
                cap,
            ))
        })
        .collect();
    tokio::time::sleep_until(measure_from).await;
    let cpu0 = match t.pid {
        Some(p) => cpu_seconds(p).await,
        None => None,
    };
    let r0 = counters.responses();
    tokio::time::sleep_until(end).await;
    let r1 = counters.responses();
    let cpu1 = match t.pid {
        Some(p) => cpu_seconds(p).await,
        None => None,
    };
    let mut samples = Vec::new();
    for task in tasks {
        // Each task ends by `end` + its 1 s close; the timeout is a backstop.
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(15), task).await {
            samples.extend(s);
        }
    }
    samples.sort_unstable();
    let pct = |p: f64| -> f64 {
        if samples.is_empty() {
            return f64::NAN;
        }
        let idx = ((samples.len() - 1) as f64 * p).round() as usize;
        f64::from(samples[idx]) / 1000.0
    };
    let secs = args.duration as f64;
    PhaseResult {
        responses_per_sec: (r1 - r0) as f64 / secs,
        announce_responses: counters.announce_responses.load(Relaxed),
        offers: counters.offers.load(Relaxed),
        answers: counters.answers.load(Relaxed),
        errors: counters.errors.load(Relaxed),
        connect_failures: counters.connect_failures.load(Relaxed),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        cpu_seconds: cpu0.zip(cpu1).map(|(a, b)| b - a),
    }
}

async fn idle_rss(args: &BenchArgs, t: &Target) -> Option<f64> {
    let pid = t.pid?;
    if args.idle_connections == 0 {
        return None;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_bytes(pid).await?;
    let conns: Vec<Ws> = futures_util::stream::iter(0..args.idle_connections)
        .map(|i| connect(t.addr, i))
        .buffer_unordered(128)
        .filter_map(|r| async move { r.ok() })
        .collect()
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_bytes(pid).await?;
    let opened = conns.len();
    drop(conns);
    tokio::time::sleep(Duration::from_secs(2)).await;
    if opened < args.idle_connections {
        eprintln!(
            "bench: only {opened} of {} idle connections opened",
            args.idle_connections
        );
    }
    (opened > 0).then(|| after.saturating_sub(before) as f64 / opened as f64)
}

async fn bench_target(args: &BenchArgs, t: &Target) -> TargetReport {
    let rss = idle_rss(args, t).await;
    let sat = run_phase(args, t, 1, |_| Pace::Closed).await;
    let announces = sat.announce_responses.max(1) as f64;
    let per_announce = (sat.announce_responses + sat.offers + sat.answers) as f64 / announces;
    let half = sat.responses_per_sec / 2.0;
    let announce_rate = (half / per_announce.max(1.0)).max(1.0);
    let n = args.connections;
    let interval = Duration::from_secs_f64(n as f64 / announce_rate);
    let half_phase = run_phase(args, t, 2, |i| Pace::Open {
        interval,
        offset: interval.mul_f64(i as f64 / n as f64),
    })
    .await;
    let responses = sat.responses_per_sec * args.duration as f64;
    TargetReport {
        name: t.name.clone(),
        responses_per_sec: sat.responses_per_sec,
        announce_responses: sat.announce_responses,
        offers_relayed: sat.offers,
        answers_relayed: sat.answers,
        errors: sat.errors + half_phase.errors,
        connect_failures: sat.connect_failures + half_phase.connect_failures,
        saturated_p50_ms: sat.p50_ms,
        saturated_p99_ms: sat.p99_ms,
        cpu_seconds_per_100k: sat
            .cpu_seconds
            .filter(|_| responses > 0.0)
            .map(|c| c / responses * 100_000.0),
        half_load_target_per_sec: half,
        half_load_responses_per_sec: half_phase.responses_per_sec,
        half_load_p50_ms: half_phase.p50_ms,
        half_load_p99_ms: half_phase.p99_ms,
        idle_connections: args.idle_connections,
        rss_per_idle_connection_bytes: rss,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_messages_are_valid_protocol() {
        let tpl = Templates::new();
        let (ih, me) = (swarm(7, 10), peer_id(1, 7));
        let Ok(ClientMessage::Announce(a)) =
            ClientMessage::from_json(&tpl.announce(&ih, &me, 7, 0, 3))
        else {
            panic!("announce template does not parse")
        };
        assert_eq!(a.offers.len(), 3);
        assert_eq!(a.offers[0].offer.sdp, FAKE_SDP);
        assert!(
            a.offers[0]
                .offer
                .check(peerhost_core::signal::MAX_SDP_LEN, 16)
                .is_ok()
        );
        let relayed = ServerMessage::Offer(peerhost_core::signal::RelayedOffer {
            info_hash: a.info_hash,
            peer_id: PeerId::from_binary_str(&peer_id(1, 3)).unwrap(),
            offer_id: a.offers[1].offer_id,
            offer: a.offers[1].offer.clone(),
        })
        .to_json();
        let Ok(ClientMessage::Answer(ans)) =
            ClientMessage::from_json(&answer_for(&tpl, &ih, &me, &relayed).unwrap())
        else {
            panic!("answer does not parse")
        };
        assert_eq!(ans.to_peer_id.to_binary_string(), peer_id(1, 3));
        assert_eq!(ans.offer_id, a.offers[1].offer_id);
        assert_eq!(ans.peer_id.to_binary_string(), me);
    }
}
