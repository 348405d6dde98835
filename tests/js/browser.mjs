// A line-protocol driver for real headless browsers, used by the Rust
// end-to-end tests (tests/src/browser.rs). One JSON command per stdin line,
// one JSON reply per stdout line: {id, ok, result|error}.
//
// Each "visitor" is its own browser process with its own profile, so two
// visitors share nothing but the network. A visitor is Chromium
// (playwright-core, launchPersistentContext) unless opened with
// `engine: "firefox"` (puppeteer-core over WebDriver BiDi, ./firefox.mjs);
// every op but the CPU profile works the same for both.
// Chromium's WebRTC over loopback needs --allow-loopback-in-peer-connection
// and --use-fake-ui-for-media-stream (see shared/reference/toolchain.md §4).
import { chromium } from 'playwright-core';
import readline from 'node:readline';
import { openFirefox } from './firefox.mjs';

const CHROMIUM = process.env.PEERHOST_CHROMIUM || '/usr/bin/chromium';
// Visitors in a NAT test's home (PEERHOST_NO_LOOPBACK_ICE=1) have a real
// LAN interface and must not gather on loopback: a TURN allocation from
// 127.0.0.1 can never leave the home, and ICE gathering would wait for it.
const LOOPBACK_ICE = process.env.PEERHOST_NO_LOOPBACK_ICE === '1'
  ? [] : ['--allow-loopback-in-peer-connection'];
const ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-dev-shm-usage',
  '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ...LOOPBACK_ICE, '--use-fake-ui-for-media-stream',
];
const visitors = new Map();

// A Chromium visitor, with the surface ./firefox.mjs gives a Firefox one.
async function openChromium(profile, args, initScript) {
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS.concat(args),
  });
  if (initScript) await ctx.addInitScript(initScript);
  const page = ctx.pages()[0] || await ctx.newPage();
  return {
    ctx,
    page,
    async goto(url, timeoutMs) {
      await page.goto(url, { waitUntil: 'load', timeout: timeoutMs });
    },
    async waitFor(expr, timeoutMs) {
      await page.waitForFunction(expr, null, { timeout: timeoutMs, polling: 100 });
    },
    async evaluate(expr) { return await page.evaluate(expr); },
    onConsole(push) {
      page.on('console', (m) => push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => push(`pageerror: ${e.message}`));
    },
    async close() { await ctx.close(); },
  };
}

function visitor(name) {
  const v = visitors.get(name);
  if (!v) throw new Error(`no visitor ${name}`);
  return v;
}

const ops = {
  // `args`: extra Chromium flags; `prefs`: extra Firefox prefs.
  async open({ visitor: name, profile, engine = 'chromium', args = [], prefs = {}, initScript }) {
    const v = engine === 'firefox'
      ? await openFirefox(profile, prefs, initScript)
      : await openChromium(profile, args, initScript);
    v.engine = engine;
    v.logs = [];
    v.onConsole((line) => { if (v.logs.length < 500) v.logs.push(line); });
    visitors.set(name, v);
    return true;
  },
  async goto({ visitor: name, url, timeoutMs = 30000 }) {
    const t0 = Date.now();
    await visitor(name).goto(url, timeoutMs);
    return { loadMs: Date.now() - t0 };
  },
  // Polls `expr` every 100 ms until its value is truthy, awaiting it first
  // when it is a promise (a bare waitForFunction counts a pending promise
  // as truthy). A throw counts as not yet; the last one is in the error.
  async wait({ visitor: name, expr, timeoutMs = 30000 }) {
    const v = visitor(name);
    const until = Date.now() + timeoutMs;
    let last = 'falsy';
    for (;;) {
      try {
        if (await v.evaluate(expr)) return true;
        last = 'falsy';
      } catch (e) {
        last = String(e && e.message || e).slice(0, 300);
      }
      if (Date.now() >= until) throw new Error(`timeout ${timeoutMs} ms waiting for ${expr} (last: ${last})`);
      await new Promise((r) => setTimeout(r, 100));
    }
  },
  async eval({ visitor: name, expr }) {
    return await visitor(name).evaluate(expr);
  },
  // Every <img>: its path, whether it rendered, and the SHA-256 of its bytes
  // as the page gets them now (through the Service Worker when controlled).
  async images({ visitor: name }) {
    return await visitor(name).evaluate(async () => {
      const hex = (b) => Array.from(new Uint8Array(b)).map((x) => x.toString(16).padStart(2, '0')).join('');
      const out = [];
      const imgs = Array.from(document.images);
      imgs.forEach((img) => { img.loading = 'eager'; });
      for (const img of imgs) {
        if (!img.complete) await new Promise((r) => { img.onload = img.onerror = r; });
        const path = new URL(img.src).pathname;
        const body = await (await fetch(img.src)).arrayBuffer();
        out.push({ path, naturalWidth: img.naturalWidth, sha256: hex(await crypto.subtle.digest('SHA-256', body)) });
      }
      return out;
    });
  },
  // CPU profile of one page (Chrome DevTools Protocol), for benchmarks:
  // start, run the workload, then stop to get the functions with the most
  // self time (ms), named with their script.
  async profileStart({ visitor: name }) {
    const v = visitor(name);
    if (!v.ctx) throw new Error('CPU profiles need Chromium (the DevTools Protocol)');
    v.cdp = v.cdp || await v.ctx.newCDPSession(v.page);
    await v.cdp.send('Profiler.enable');
    await v.cdp.send('Profiler.setSamplingInterval', { interval: 100 });
    await v.cdp.send('Profiler.start');
    return true;
  },
  async profileStop({ visitor: name, top = 25 }) {
    const v = visitor(name);
    const { profile } = await v.cdp.send('Profiler.stop');
    const self = new Map();
    const dt = new Map();
    profile.samples.forEach((id, i) => dt.set(id, (dt.get(id) || 0) + (profile.timeDeltas[i] || 0)));
    for (const n of profile.nodes) {
      const f = n.callFrame;
      const key = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}`;
      self.set(key, (self.get(key) || 0) + (dt.get(n.id) || 0) / 1000);
    }
    const total = Array.from(self.values()).reduce((a, b) => a + b, 0);
    const rows = Array.from(self.entries()).sort((a, b) => b[1] - a[1]).slice(0, top)
      .map(([k, ms]) => `${ms.toFixed(1).padStart(8)} ms  ${k}`);
    return { totalMs: total, rows };
  },
  // A crowd of fresh visitors at once (`peerhost bench flash-crowd
  // --browsers N`): each in its own Chromium and profile lands on `first`,
  // waits until peerhost runs and its Service Worker controls the page,
  // browses to `then`, and reports when `doneExpr` holds there.
  async crowd({ visitors: list, base, first, then, doneExpr, timeoutMs = 300000 }) {
    const t0 = Date.now();
    return await Promise.all(list.map(async ({ visitor: name, profile }) => {
      try {
        await ops.open({ visitor: name, profile });
        const v = visitor(name);
        await v.goto(base + first, timeoutMs);
        await v.waitFor(
          'window.peerhost && peerhost.stats().version > 0 && navigator.serviceWorker.controller !== null',
          timeoutMs);
        const landedMs = Date.now() - t0;
        await v.goto(base + then, timeoutMs);
        await v.waitFor(doneExpr, timeoutMs);
        const doneMs = Date.now() - t0;
        const stats = await v.evaluate('peerhost.stats()');
        return { visitor: name, ok: true, landedMs, doneMs, stats };
      } catch (e) {
        return { visitor: name, ok: false, error: String(e && e.message || e) };
      }
    }));
  },
  async logs({ visitor: name }) {
    return visitor(name).logs;
  },
  async close({ visitor: name }) {
    const v = visitors.get(name);
    if (v) { visitors.delete(name); await v.close(); }
    return true;
  },
};

const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on('line', (line) => {
  chain = chain.then(async () => {
    let cmd;
    try { cmd = JSON.parse(line); } catch { return; }
    try {
      const result = await ops[cmd.op](cmd);
      process.stdout.write(JSON.stringify({ id: cmd.id, ok: true, result: result ?? null }) + '\n');
    } catch (e) {
      process.stdout.write(JSON.stringify({ id: cmd.id, ok: false, error: String(e && e.stack || e) }) + '\n');
    }
  });
});
rl.on('close', async () => {
  await chain;
  for (const name of Array.from(visitors.keys())) await ops.close({ visitor: name });
  process.exit(0);
});
