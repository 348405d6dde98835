//! Browser figures, printed not asserted (`cargo xtask bench-browser` runs
//! this in the loopback namespace): in-browser SHA-256 throughput of the
//! core's piece verification (WASM) against `crypto.subtle.digest`, and
//! data-channel throughput between two Chromium processes through peerhost
//! against a plain-JS data channel between the same two processes.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::server::TestServer;

const BIG: usize = 20 * 1024 * 1024;

/// A page without the tag, for measurements that must not run peerhost.
const BENCH_PAGE: &str = "<!doctype html><meta charset=utf-8><title>bench</title><p>bench";

const SHA_BENCH: &str = r#"async () => {
  const mod = await import('/peerhost/peerhost_wasm.js');
  await mod.default({ module_or_path: '/peerhost/peerhost_wasm_bg.wasm' });
  const n = 64 * 1024 * 1024;
  const buf = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(buf.subarray(i, i + 65536));
  const runs = {};
  for (let round = 0; round < 3; round++) {
    let t = performance.now(); mod.hashPieces(buf); const wasm = performance.now() - t;
    t = performance.now();
    for (let i = 0; i < n; i += 16384) await crypto.subtle.digest('SHA-256', buf.subarray(i, i + 16384));
    const subtlePieces = performance.now() - t;
    t = performance.now(); await crypto.subtle.digest('SHA-256', buf); const subtleWhole = performance.now() - t;
    for (const [k, ms] of Object.entries({ wasm, subtlePieces, subtleWhole })) {
      runs[k] = Math.max(runs[k] || 0, n / 1e6 / (ms / 1000));
    }
  }
  return runs;
}"#;

/// Page A: a plain data channel and its offer (non-trickle).
const PLAIN_OFFER: &str = r#"async () => {
  window.pc = new RTCPeerConnection({ iceServers: [] });
  window.dc = pc.createDataChannel('bench', { ordered: true });
  dc.binaryType = 'arraybuffer';
  await pc.setLocalDescription(await pc.createOffer());
  while (pc.iceGatheringState !== 'complete') await new Promise((r) => setTimeout(r, 20));
  return pc.localDescription.sdp;
}"#;

fn plain_answer(offer: &str) -> String {
    format!(
        r#"async () => {{
  window.pc = new RTCPeerConnection({{ iceServers: [] }});
  window.got = 0;
  window.done = new Promise((res) => {{
    pc.ondatachannel = (e) => {{
      const dc = e.channel; dc.binaryType = 'arraybuffer'; let t0 = null; window.bdc = dc;
      dc.onmessage = (m) => {{
        if (t0 === null) t0 = performance.now();
        got += m.data.byteLength;
        if (got >= {BIG}) res(performance.now() - t0);
      }};
    }};
  }});
  await pc.setRemoteDescription({{ type: 'offer', sdp: {offer} }});
  await pc.setLocalDescription(await pc.createAnswer());
  while (pc.iceGatheringState !== 'complete') await new Promise((r) => setTimeout(r, 20));
  return pc.localDescription.sdp;
}}"#,
        offer = serde_json::to_string(offer).expect("json")
    )
}

fn plain_send(answer: &str) -> String {
    format!(
        r#"async () => {{
  await pc.setRemoteDescription({{ type: 'answer', sdp: {answer} }});
  if (dc.readyState !== 'open') await new Promise((r) => {{ dc.onopen = r; }});
  dc.bufferedAmountLowThreshold = 256 * 1024;
  const chunk = new Uint8Array(16384);
  for (let sent = 0; sent < {BIG}; sent += chunk.length) {{
    if (dc.bufferedAmount > 1024 * 1024) await new Promise((r) => {{ dc.onbufferedamountlow = r; }});
    dc.send(chunk);
  }}
  return true;
}}"#,
        answer = serde_json::to_string(answer).expect("json")
    )
}

/// With PEERHOST_PROFILE: records every data-channel message sent and
/// received (time, size) so the bench can tell waiting from working.
const CHANNEL_TAP: &str = r#"(() => {
  const T = window.__tap = { sent: [], recv: [] };
  const send = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (d) {
    const u = d instanceof ArrayBuffer ? new Uint8Array(d) : d;
    T.sent.push([performance.now(), u.byteLength ?? u.length, u[0]]);
    return send.call(this, d);
  };
  const desc = Object.getOwnPropertyDescriptor(RTCDataChannel.prototype, 'onmessage');
  Object.defineProperty(RTCDataChannel.prototype, 'onmessage', {
    configurable: true,
    get() { return desc.get.call(this); },
    set(f) {
      desc.set.call(this, f && ((e) => { T.recv.push([performance.now(), e.data.byteLength ?? 0, new Uint8Array(e.data)[0]]); return f(e); }));
    },
  });
})()"#;

/// Summary of the tap: request→piece delays (receiver) and
/// request→send delays (sender), assuming first-in first-out.
const TAP_SUMMARY: &str = r#"(() => {
  const T = window.__tap; const small = (x) => x[2] === 2; const big = (x) => x[2] === 3;
  const q = (a, p) => { const s = [...a].sort((x, y) => x - y); return s.length ? s[Math.floor(p * (s.length - 1))].toFixed(2) : '-'; };
  const reqOut = T.sent.filter(small), pieceIn = T.recv.filter(big);
  const reqIn = T.recv.filter(small), pieceOut = T.sent.filter(big);
  const rtt = pieceIn.map((p, i) => reqOut[i] ? p[0] - reqOut[i][0] : null).filter((x) => x !== null);
  const svc = pieceOut.map((p, i) => reqIn[i] ? p[0] - reqIn[i][0] : null).filter((x) => x !== null);
  const gaps = pieceIn.slice(1).map((p, i) => p[0] - pieceIn[i][0]);
  return `small out ${reqOut.length}, big in ${pieceIn.length}, small in ${reqIn.length}, big out ${pieceOut.length}; ` +
    `request->piece ms p50 ${q(rtt, .5)} p90 ${q(rtt, .9)}; request->send ms p50 ${q(svc, .5)} p90 ${q(svc, .9)}; ` +
    `gap between pieces ms p50 ${q(gaps, .5)} p90 ${q(gaps, .9)} p99 ${q(gaps, .99)}; ` +
    (reqOut.length && pieceIn.length ? `first request ${(reqOut[0][0] - (window.__t0 || 0)).toFixed(0)} ms after fetch, last piece ${(pieceIn[pieceIn.length - 1][0] - (window.__t0 || 0)).toFixed(0)} ms after fetch` : '');
})()"#;

/// Page A answers every message with a 16 KiB one (plain JS).
const PLAIN_SERVE: &str = r#"() => {
  const chunk = new Uint8Array(16384);
  dc.onmessage = (m) => { const k = m.data.byteLength; for (let i = 0; i < k; i++) dc.send(chunk); };
  return true;
}"#;

/// Page B asks for 20 MiB in 16 KiB pieces with `depth` requests in flight,
/// as peerhost's pipeline does, in plain JS: the protocol pattern's own
/// ceiling, without peerhost's code.
/// Each request message asks for `batch` pieces (its length says how many).
fn plain_request(depth: usize, batch: usize) -> String {
    format!(
        r#"() => new Promise((res) => {{
  const dc = window.bdc, n = {BIG} / 16384, req = new Uint8Array({batch});
  let got = 0, sent = 0, owed = 0; const t0 = performance.now();
  dc.onmessage = () => {{
    got++; owed++;
    if (owed >= {batch} && sent < n) {{ dc.send(req); sent += {batch}; owed -= {batch}; }}
    if (got >= n) res(performance.now() - t0);
  }};
  for (; sent < Math.min({depth}, n); sent += {batch}) dc.send(req);
}})"#
    )
}

/// An expression that calls the function source `f`.
fn call(f: &str) -> String {
    format!("({f})()")
}

fn mb_per_s(bytes: usize, ms: f64) -> f64 {
    bytes as f64 / 1e6 / (ms / 1000.0)
}

#[test]
#[ignore = "a benchmark: run with `cargo xtask bench-browser`"]
fn browser_figures() {
    if !browser_tests_enabled("browser_figures") {
        return;
    }
    let server = TestServer::demo();
    std::fs::write(server.site_dir().join("bench.html"), BENCH_PAGE).expect("bench page");
    // A 20 MiB listed asset: add it and publish version 2 of the demo site.
    let mut big = vec![0u8; BIG];
    let mut x: u32 = 1;
    for b in &mut big {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    std::fs::write(server.site_dir().join("big.bin"), &big).expect("big file");
    peerhost_site::publish::publish(
        &server.site_dir(),
        &peerhost_site::demo::demo_secret(),
        &peerhost_site::publish::Options::default(),
        &indicatif::ProgressBar::hidden(),
    )
    .expect("republish with big.bin");

    // The demo tag caps uploads at 1 MiB/s (a visitor protection); to measure
    // the protocol, the seeding page lifts the cap.
    let about = std::fs::read_to_string(server.site_dir().join("about.html")).expect("about");
    std::fs::write(
        server.site_dir().join("seed-unlimited.html"),
        about.replace(
            "data-manifest=",
            "data-upload-rate=\"1000000000\" data-manifest=",
        ),
    )
    .expect("seed page");

    let profile = std::env::var_os("PEERHOST_PROFILE").is_some();
    let tap = profile.then_some(CHANNEL_TAP);
    let mut browser = Browser::launch();
    browser.open_scripted("a", &[], tap);
    browser.open_scripted("b", &[], tap);

    // SHA-256 in the page.
    browser.goto("a", &server.url("/bench.html"));
    let sha = browser.eval("a", &call(SHA_BENCH));

    // Plain JS data channel between the two processes.
    browser.goto("b", &server.url("/bench.html"));
    let offer = browser.eval("a", &call(PLAIN_OFFER));
    let answer = browser.eval("b", &call(&plain_answer(offer.as_str().expect("sdp"))));
    browser.eval("a", &call(&plain_send(answer.as_str().expect("sdp"))));
    let plain_ms = browser.eval("b", "window.done").as_f64().expect("ms");
    browser.eval("a", &call(PLAIN_SERVE));
    let rr16_ms = browser
        .eval("b", &call(&plain_request(16, 1)))
        .as_f64()
        .expect("ms");
    let rr64_ms = browser
        .eval("b", &call(&plain_request(64, 1)))
        .as_f64()
        .expect("ms");
    let rr16b4_ms = browser
        .eval("b", &call(&plain_request(16, 4)))
        .as_f64()
        .expect("ms");
    let rr32b8_ms = browser
        .eval("b", &call(&plain_request(32, 8)))
        .as_f64()
        .expect("ms");

    // Through peerhost: a holds big.bin (from the origin), then b fetches it.
    browser.goto("a", &server.url("/seed-unlimited.html"));
    browser
        .wait(
            "a",
            "window.peerhost && peerhost.stats().version >= 2",
            Duration::from_secs(20),
        )
        .expect("a runs peerhost");
    browser.eval(
        "a",
        "peerhost.fetch('/big.bin').then(r => r.arrayBuffer()).then(b => b.byteLength)",
    );
    browser.goto("b", &server.url("/about.html"));
    browser
        .wait(
            "b",
            "window.peerhost && peerhost.stats().peers > 0",
            Duration::from_secs(20),
        )
        .expect("b meets a");
    if profile {
        browser.eval(
            "a",
            "window.__tap.sent.length = 0; window.__tap.recv.length = 0",
        );
        browser.eval(
            "b",
            "window.__tap.sent.length = 0; window.__tap.recv.length = 0",
        );
        browser.profile_start("a");
        browser.profile_start("b");
    }
    let peerhost_ms = browser
        .eval(
            "b",
            "(async () => { const t = performance.now(); window.__t0 = t; const b = await (await peerhost.fetch('/big.bin')).arrayBuffer(); \
             return b.byteLength === 20971520 ? performance.now() - t : -1; })()",
        )
        .as_f64()
        .expect("ms");
    let b_stats = browser.eval("b", "peerhost.stats()");
    if profile {
        for (who, role) in [("a", "sender"), ("b", "receiver")] {
            let (total, rows) = browser.profile_stop(who, 30);
            println!("TAP {role} ({who}): {}", browser.eval(who, TAP_SUMMARY));
            println!("PROFILE {role} ({who}), {total:.0} ms sampled, top self time:");
            for r in rows {
                println!("PROFILE   {r}");
            }
        }
    }

    let plain = mb_per_s(BIG, plain_ms);
    println!(
        "FIGURES plain JS request/response over the same channel, 16 KiB pieces: 16 in flight {:.1} MB/s, 64 in flight {:.1} MB/s, \
         16 in flight asked 4 per message {:.1} MB/s, 32 in flight asked 8 per message {:.1} MB/s",
        mb_per_s(BIG, rr16_ms),
        mb_per_s(BIG, rr64_ms),
        mb_per_s(BIG, rr16b4_ms),
        mb_per_s(BIG, rr32b8_ms)
    );
    let through = mb_per_s(BIG, peerhost_ms);
    println!(
        "FIGURES sha256 MB/s (best of 3, 64 MiB): wasm 16 KiB pieces {:.0}, crypto.subtle 16 KiB pieces {:.0}, crypto.subtle whole buffer {:.0}",
        sha["wasm"].as_f64().unwrap_or(0.0),
        sha["subtlePieces"].as_f64().unwrap_or(0.0),
        sha["subtleWhole"].as_f64().unwrap_or(0.0)
    );
    println!(
        "FIGURES data channel, 20 MiB between two Chromium processes: plain JS {plain:.1} MB/s ({plain_ms:.0} ms), \
         through peerhost {through:.1} MB/s ({peerhost_ms:.0} ms, verified, from peers {} of {} bytes) = {:.0}% of plain",
        b_stats["bytesFromPeers"],
        BIG,
        100.0 * through / plain
    );
}
