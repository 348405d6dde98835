//! Interop with clients nobody here wrote: two stock WebTorrent browser
//! clients (`node_modules/webtorrent/dist/webtorrent.min.js`), each in its
//! own headless Chromium process, swap a generated file through **our**
//! tracker over real WebRTC, and the bytes match.
//!
//! Runs only inside a loopback-only network namespace (`PEERHOST_NETNS=1`):
//! `unshare --net -- sh -c 'ip link set lo up && PEERHOST_NETNS=1 cargo test
//! -p peerhost-tracker --offline --test webtorrent_interop'`. Elsewhere it
//! prints why it skipped. Needs `/usr/bin/chromium` (or `PEERHOST_CHROMIUM`)
//! and `npm ci` at the workspace root.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use common::Tracker;
use peerhost_tracker::config::Config;
use sha2::{Digest as _, Sha256};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const FILE_LEN: usize = 1024 * 1024;
const SEED: u32 = 0x9e37_79b9;

/// The file both sides agree on: xorshift32 low bytes (same code in the page).
fn expected_file() -> Vec<u8> {
    let mut x = SEED;
    (0..FILE_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[derive(Clone)]
struct Pages {
    tracker_url: String,
    webtorrent_js: Arc<Vec<u8>>,
    magnet: Arc<Mutex<Option<String>>>,
    reports: mpsc::UnboundedSender<serde_json::Value>,
}

fn page(role: &str, tracker: &str) -> String {
    let body = match role {
        "seed" => format!(
            r#"
const bytes = new Uint8Array({FILE_LEN});
let x = {SEED} >>> 0;
for (let i = 0; i < bytes.length; i++) {{
  x = (x ^ (x << 13)) >>> 0; x = (x ^ (x >>> 17)) >>> 0; x = (x ^ (x << 5)) >>> 0;
  bytes[i] = x & 0xff;
}}
const file = new File([bytes], 'peerhost-interop.bin');
client.seed(file, {{ announce: ['{tracker}'] }}, (t) =>
  report({{ role: 'seed', magnet: t.magnetURI, infoHash: t.infoHash, sha256: null }}));
"#
        ),
        _ => format!(
            r#"
let magnet = null;
for (let i = 0; i < 600 && !magnet; i++) {{
  const r = await fetch('/magnet', {{ cache: 'no-store' }});
  if (r.ok) magnet = await r.text(); else await new Promise((ok) => setTimeout(ok, 100));
}}
if (!magnet) throw new Error('no magnet from the seeder');
client.add(magnet, {{ announce: ['{tracker}'] }}, (t) => {{
  t.on('done', async () => {{
    const buf = await t.files[0].arrayBuffer();
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
    report({{ role: 'leech', sha256: hex, length: buf.byteLength, peers: t.numPeers }});
  }});
}});
"#
        ),
    };
    format!(
        r#"<!doctype html><meta charset="utf-8"><title>{role}</title>
<script type="module">
const report = (o) => fetch('/report', {{ method: 'POST', body: JSON.stringify(o) }});
window.addEventListener('error', (e) => report({{ role: '{role}', error: String(e.message) }}));
window.addEventListener('unhandledrejection', (e) => report({{ role: '{role}', error: String(e.reason) }}));
try {{
  const {{ default: WebTorrent }} = await import('/webtorrent.min.js');
  const client = new WebTorrent({{ dht: false, lsd: false, utp: false, webSeeds: false,
    tracker: {{ rtcConfig: {{ iceServers: [] }} }} }});
  client.on('error', (e) => report({{ role: '{role}', error: String(e) }}));
  {body}
}} catch (e) {{ report({{ role: '{role}', error: String(e && e.stack || e) }}); }}
</script>"#
    )
}

async fn serve_page(State(p): State<Pages>, role: &'static str) -> Html<String> {
    Html(page(role, &p.tracker_url))
}

async fn webtorrent_js(State(p): State<Pages>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript")],
        p.webtorrent_js.as_ref().clone(),
    )
        .into_response()
}

async fn magnet(State(p): State<Pages>) -> Response {
    match p.magnet.lock().unwrap().clone() {
        Some(m) => m.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn report(State(p): State<Pages>, body: String) -> StatusCode {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    if let Some(m) = v.get("magnet").and_then(|m| m.as_str()) {
        *p.magnet.lock().unwrap() = Some(m.to_owned());
    }
    let _ = p.reports.send(v);
    StatusCode::NO_CONTENT
}

fn chromium(url: &str, profile: &std::path::Path) -> Child {
    let exe = std::env::var("PEERHOST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    Command::new(exe)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--disable-dev-shm-usage",
            "--allow-loopback-in-peer-connection",
            "--use-fake-ui-for-media-stream",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("start chromium")
}

async fn kill_group(child: &mut Child) {
    if let Some(pid) = child.id() {
        // Its own process group (process_group(0)): renderers and the zygote go too.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status()
            .await;
    }
    let _ = child.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_webtorrent_browsers_swap_a_file_through_our_tracker() {
    if !common::netns_or_skip("webtorrent_interop") {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let js = std::fs::read(root.join("node_modules/webtorrent/dist/webtorrent.min.js"))
        .expect("node_modules/webtorrent missing: run `npm ci` at the workspace root");

    let tracker = Tracker::start(Config::default()).await;
    let (tx, mut reports) = mpsc::unbounded_channel();
    let pages = Pages {
        tracker_url: format!("ws://{}", tracker.addr),
        webtorrent_js: Arc::new(js),
        magnet: Arc::new(Mutex::new(None)),
        reports: tx,
    };
    let app = Router::new()
        .route("/seed.html", get(|s| serve_page(s, "seed")))
        .route("/leech.html", get(|s| serve_page(s, "leech")))
        .route("/webtorrent.min.js", get(webtorrent_js))
        .route("/magnet", get(magnet))
        .route("/report", post(report))
        .with_state(pages);
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let web_addr = web.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(web, app).await });

    let base = std::env::temp_dir().join(format!("peerhost-interop-{}", std::process::id()));
    let (seed_dir, leech_dir) = (base.join("seed"), base.join("leech"));
    std::fs::create_dir_all(&seed_dir).unwrap();
    std::fs::create_dir_all(&leech_dir).unwrap();
    let mut seed = chromium(&format!("http://{web_addr}/seed.html"), &seed_dir);
    let mut leech = chromium(&format!("http://{web_addr}/leech.html"), &leech_dir);

    let expected = hex(&Sha256::digest(expected_file()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut outcome: Result<serde_json::Value, String> = Err("timed out after 120 s".into());
    while let Ok(Some(v)) = tokio::time::timeout_at(deadline, reports.recv()).await {
        println!("report: {v}");
        if let Some(e) = v.get("error") {
            outcome = Err(format!("{} page error: {e}", v["role"]));
            break;
        }
        if v["role"] == "leech" {
            outcome = Ok(v);
            break;
        }
    }
    kill_group(&mut seed).await;
    kill_group(&mut leech).await;
    let _ = std::fs::remove_dir_all(&base);

    let snap = tracker.state.metrics().snapshot(tracker.state.gauges());
    println!(
        "tracker: {} announce responses, {} offers relayed, {} answers relayed, {} rejects",
        snap.announce_responses, snap.offers_relayed, snap.answers_relayed, snap.rejects
    );
    let leech_report = outcome.unwrap();
    assert_eq!(leech_report["length"], FILE_LEN);
    assert_eq!(
        leech_report["sha256"],
        expected.as_str(),
        "downloaded bytes differ"
    );
    assert!(
        snap.offers_relayed >= 1 && snap.answers_relayed >= 1,
        "signalled through our tracker"
    );
    tracker.stop().await;
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
