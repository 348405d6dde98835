/*
 * peerhost loader — the one script tag a site adds:
 *
 *   <script src="/peerhost/peerhost.js" data-site-key="…" data-tracker="/tracker"
 *           data-manifest="/peerhost.json" async></script>
 *
 * Attributes (all optional but data-site-key):
 *   data-site-key      the site's public key (base64url), printed by `peerhost keygen`
 *   data-tracker       tracker WebSocket URL (ws://, wss://, or a path on this origin)
 *   data-manifest      signed manifest URL (default /peerhost.json)
 *   data-sw            Service Worker script URL (default /peerhost-sw.js); "off" disables it
 *   data-max-peers     most peer connections (default 8)
 *   data-upload-rate   upload cap in bytes/s (default 1048576)
 *   data-upload-total  upload cap per visit in bytes (default 67108864)
 *   data-hidden-stop   seconds a hidden tab keeps uploading (default 30)
 *   data-switch-delay  seconds a page load may finish on its version when a newer
 *                      one arrives (default 10); 0 lets one load mix two versions
 *   data-ice-servers   JSON list of RTCIceServer dicts, e.g.
 *                      '[{"urls":"stun:stun.example.org:3478"}]' (default none: no
 *                      third-party server is contacted); bad JSON is ignored with a
 *                      console warning. The tracker may add its own (docs/real-networks.md)
 *   data-relay-only    present or "true": relayed (TURN) candidates only
 *                      (iceTransportPolicy "relay"); peers never see the visitor's address
 *
 * Whatever fails here (no WebAssembly, no WebRTC, no WebCrypto Ed25519 —
 * plain http:// pages or browsers older than Chromium 137, Firefox 129,
 * Safari 17 —, no tracker, a bad manifest) leaves the page exactly as
 * without the tag: every request goes to the origin as usual. The API on window.peerhost:
 *   peerhost.fetch(url) -> Promise<Response>   listed assets via peers/origin, others via fetch()
 *   peerhost.stats()    -> object              bytes from peers/origin, peers, per asset
 *   peerhost.optOut() / peerhost.optIn()        persisted in localStorage
 *   peerhost.setRelayOnly(bool)                 the visitor's choice, persisted in
 *                                               localStorage; applies to new connections
 *   peerhost.disclosure() -> object             what this visitor shares: {mode:
 *                       "seeding"|"leech-only"|"opted-out", relayOnly, assetsHeld,
 *                       uploadedBytes, peers, iceServers, uploadLimitBytesPerSec,
 *                       uploadLimitTotalBytes, running}
 *   peerhost.ready      -> Promise<boolean>     whether peerhost runs in this page
 * Events on window:
 *   'peerhost:version'  detail {version, previous}: a newer signed manifest became
 *                       current in this page (pushed by the tracker or a peer);
 *                       re-fetch what changed (e.g. a ticker's data file)
 */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || window.peerhost) return;
  var data = script.dataset;
  var base = new URL('.', script.src).href;
  var OPT_OUT = 'peerhost.optOut';
  var RELAY_ONLY = 'peerhost.relayOnly';
  var CACHE = 'peerhost-assets';
  var client = null;
  var listed = new Set();
  var queue = [];
  var resolveReady;
  var ready = new Promise(function (r) { resolveReady = r; });

  function log() {
    if (data.debug !== undefined) console.info.apply(console, ['[peerhost]'].concat([].slice.call(arguments)));
  }

  function num(v, d) { var n = Number(v); return v !== undefined && isFinite(n) ? n : d; }

  function trackerUrl() {
    var t = data.tracker;
    if (!t) return undefined;
    if (/^wss?:\/\//.test(t)) return t;
    var u = new URL(t, location.href);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return u.href;
  }

  function stored(key) {
    try { return localStorage.getItem(key); } catch (e) { return null; }
  }

  // The visitor's choice (setRelayOnly) wins over the tag's default.
  function relayOnly() {
    var choice = stored(RELAY_ONLY);
    if (choice === '1' || choice === '0') return choice === '1';
    return data.relayOnly !== undefined && data.relayOnly !== 'false';
  }

  function meteredOrSaving() {
    var c = navigator.connection;
    return !!(c && (c.saveData || c.type === 'cellular'));
  }

  function toResponse(r) {
    return new Response(r.body, { status: 200, headers: { 'content-type': r.contentType, 'x-peerhost': '1' } });
  }

  var api = {
    ready: ready,
    fetch: function (input, init) {
      var url = new URL(typeof input === 'string' ? input : input.url, location.href);
      if (client && url.origin === location.origin && listed.has(url.pathname)) {
        return client.fetch(url.pathname).then(function (r) {
          remember(url.pathname, { body: r.body.slice(), contentType: r.contentType });
          return toResponse(r);
        }, function () { return fetch(input, init); });
      }
      return fetch(input, init);
    },
    stats: function () { return client ? client.stats() : { running: false }; },
    optOut: function () {
      try { localStorage.setItem(OPT_OUT, '1'); } catch (e) { /* storage blocked */ }
      if (client) { client.close(); client = null; }
      if (navigator.serviceWorker) {
        navigator.serviceWorker.getRegistrations().then(function (regs) {
          regs.forEach(function (r) { r.unregister(); });
        });
      }
    },
    optIn: function () { try { localStorage.removeItem(OPT_OUT); } catch (e) { /* ignore */ } },
    setRelayOnly: function (on) {
      try { localStorage.setItem(RELAY_ONLY, on ? '1' : '0'); } catch (e) { /* storage blocked */ }
      if (client) client.setRelayOnly(!!on);
    },
    disclosure: function () {
      var s = client ? client.stats() : null;
      var mode = stored(OPT_OUT) === '1' ? 'opted-out'
        : (!s || s.leechOnly ? 'leech-only' : 'seeding');
      return {
        mode: mode,
        running: !!s,
        relayOnly: s ? s.iceMode === 'relay-only' : relayOnly(),
        assetsHeld: s ? s.assetsHeld : 0,
        uploadedBytes: s ? s.bytesUploaded : 0,
        peers: s ? s.peers : 0,
        iceServers: s ? s.iceServers : 0,
        uploadLimitBytesPerSec: num(data.uploadRate, 1048576),
        uploadLimitTotalBytes: num(data.uploadTotal, 67108864),
      };
    },
  };
  window.peerhost = api;

  // The Service Worker asks this page for listed assets. Answer "ack" at once
  // so it waits for us, then the bytes (or an error, and it goes to the origin).
  function onWorkerMessage(ev) {
    var m = ev.data;
    if (!m || m.type !== 'peerhost-fetch' || !ev.ports[0]) return;
    var port = ev.ports[0];
    port.postMessage({ type: 'ack' });
    // Keep telling the worker we are alive, so it waits for us and only us.
    var alive = setInterval(function () { port.postMessage({ type: 'ack' }); }, 1000);
    var reply = function (msg, transfer) { clearInterval(alive); port.postMessage(msg, transfer || []); };
    var answer = function () {
      if (!client) { reply({ ok: false, error: 'peerhost is not running' }); return; }
      client.fetch(m.path).then(function (r) {
        var keep = { body: r.body.slice(), contentType: r.contentType };
        reply({ ok: true, body: r.body, contentType: r.contentType }, [r.body.buffer]);
        remember(m.path, keep);
      }, function (e) {
        reply({ ok: false, error: String(e && e.message || e) });
      });
    };
    if (client) answer(); else queue.push(answer);
  }
  if (navigator.serviceWorker) {
    navigator.serviceWorker.addEventListener('message', onWorkerMessage);
    // Asks the worker sent before this async script ran were dropped when
    // the document finished parsing: have them sent again.
    if (navigator.serviceWorker.controller) {
      navigator.serviceWorker.controller.postMessage({ type: 'peerhost-listening' });
    }
    navigator.serviceWorker.startMessages();
  }

  function remember(path, r) {
    if (!window.caches) return;
    var copy = new Response(r.body, { headers: { 'content-type': r.contentType } });
    caches.open(CACHE).then(function (c) { return c.put(path, copy); }).catch(function () {});
  }

  // A returning visitor seeds what it kept; the core re-verifies every piece.
  function restoreCache() {
    if (!window.caches) return Promise.resolve();
    return caches.open(CACHE).then(function (c) {
      return Promise.all(Array.from(listed).map(function (path) {
        return c.match(path).then(function (r) {
          return r ? r.arrayBuffer().then(function (b) { client.addAsset(path, new Uint8Array(b)); }) : null;
        });
      }));
    }).catch(function () {});
  }

  // On a first visit the page loads its images before the worker controls it;
  // take those bytes from the HTTP cache (no origin traffic) so we seed them.
  // The page itself counts too: the Service Worker serves it when the origin is down.
  var adopted = {};
  function adoptLoaded() {
    var seen = adopted;
    var urls = performance.getEntriesByType('resource').map(function (e) { return e.name; });
    urls.push(location.href);
    urls.forEach(function (name) {
      var u = new URL(name, location.href);
      var path = /\/$/.test(u.pathname) ? u.pathname + 'index.html' : u.pathname;
      if (u.origin !== location.origin || !listed.has(path) || seen[path]) return;
      seen[path] = true;
      fetch(u.pathname, { cache: 'only-if-cached', mode: 'same-origin', credentials: 'omit' })
        .then(function (r) {
          if (!r.ok || /private|no-store/i.test(r.headers.get('cache-control') || '')) return null;
          var type = r.headers.get('content-type') || 'application/octet-stream';
          return r.arrayBuffer().then(function (b) {
            var bytes = new Uint8Array(b);
            // Keep only what verified completely, for the next visit.
            if (client.addAsset(path, bytes) > 0) remember(path, { body: bytes.slice(), contentType: type });
          });
        })
        .catch(function () {});
    });
  }

  var lastDirect = null;
  var manifestPath = null;
  function announceToWorker() {
    var sw = navigator.serviceWorker && navigator.serviceWorker.controller;
    if (!sw || !client) return;
    lastDirect = client.stats().originOnly;
    sw.postMessage({
      type: 'peerhost-ready', paths: Array.from(listed), direct: lastDirect,
      // What the worker needs to start peerhost again when the origin is down.
      manifestPath: manifestPath, manifest: client.manifestJson(), base: new URL(base).pathname,
    });
  }

  // A newer version became current (tracker push or a peer's offer): list
  // its assets, raise the stored floor, tell the worker and the site.
  var version = 0;
  var floorKey = null;
  function watchVersion() {
    var v = client && client.stats().version;
    if (!v || v === version) return;
    var previous = version;
    version = v;
    listed = new Set(client.listedPaths());
    try { localStorage.setItem(floorKey, String(client.versionFloor())); } catch (e) { /* ignore */ }
    if (previous) {
      log('now on manifest version', v);
      announceToWorker();
      window.dispatchEvent(new CustomEvent('peerhost:version', { detail: { version: v, previous: previous } }));
    }
  }

  // Tell the worker when peers come or go: with nobody to share with it
  // sends listed assets straight to the network (streamed, as without the
  // tag), and we seed them afterwards from the HTTP cache.
  function watchPeers() {
    var ticks = 0;
    setInterval(function () {
      ticks += 1;
      watchVersion();
      // Changed, or still origin-only: refresh the worker's 30 s window.
      if (client && (client.stats().originOnly !== lastDirect || (lastDirect && ticks % 20 === 0))) announceToWorker();
    }, 500);
    if (window.PerformanceObserver) {
      try {
        new PerformanceObserver(function () { if (client) adoptLoaded(); }).observe({ type: 'resource', buffered: false });
      } catch (e) { /* old browser: adopt once at start only */ }
    }
  }

  function watchVisibility(stopAfterMs, leechOnly) {
    var timer = null;
    document.addEventListener('visibilitychange', function () {
      if (!client) return;
      clearTimeout(timer);
      if (document.hidden) {
        timer = setTimeout(function () { if (client) client.setLeechOnly(true); }, stopAfterMs);
      } else if (!leechOnly) {
        client.setLeechOnly(false);
      }
    });
  }

  function start() {
    var optedOut = false;
    try { optedOut = localStorage.getItem(OPT_OUT) === '1'; } catch (e) { /* ignore */ }
    if (optedOut) throw new Error('opted out');
    if (!data.siteKey) throw new Error('data-site-key missing');
    if (!window.WebAssembly || !window.RTCPeerConnection) throw new Error('WebAssembly or WebRTC unavailable');
    // Signatures and pieces are checked with WebCrypto (https:// or localhost only).
    if (!window.crypto || !crypto.subtle) throw new Error('crypto.subtle unavailable');
    floorKey = 'peerhost.floor.' + data.siteKey;
    var floor = 0;
    try { floor = Number(localStorage.getItem(floorKey)) || 0; } catch (e) { /* ignore */ }
    var leechOnly = meteredOrSaving();
    var manifestUrl = data.manifest || '/peerhost.json';
    manifestPath = new URL(manifestUrl, location.href).pathname;
    var manifest = fetch(manifestUrl, { cache: 'no-cache', credentials: 'omit' }).then(function (r) {
      if (!r.ok) throw new Error('manifest: HTTP ' + r.status);
      return r.text();
    });
    return import(base + 'peerhost_wasm.js').then(function (mod) {
      return mod.default({ module_or_path: base + 'peerhost_wasm_bg.wasm' }).then(function () { return mod; });
    }).then(function (mod) {
      client = new mod.Peerhost({
        siteKey: data.siteKey,
        tracker: trackerUrl(),
        floorVersion: floor,
        leechOnly: leechOnly,
        maxPeers: num(data.maxPeers, 8),
        uploadBytesPerSec: num(data.uploadRate, 1048576),
        uploadTotalBytes: num(data.uploadTotal, 67108864),
        switchDelaySecs: num(data.switchDelay, 10),
        iceServers: data.iceServers,
        relayOnly: relayOnly(),
      });
      return manifest;
    }).then(function (text) {
      // The signature is checked with WebCrypto Ed25519: asynchronous.
      return client.loadManifest(text);
    }).then(function (v) {
      version = v;
      try { localStorage.setItem(floorKey, String(client.versionFloor())); } catch (e) { /* ignore */ }
      listed = new Set(client.listedPaths());
      log('manifest version', version, 'with', listed.size, 'assets');
      watchVisibility(num(data.hiddenStop, 30) * 1000, leechOnly);
      queue.splice(0).forEach(function (f) { f(); });
      return restoreCache();
    }).then(function () {
      adoptLoaded();
      watchPeers();
      if (data.sw !== 'off' && navigator.serviceWorker) {
        navigator.serviceWorker.register(data.sw || '/peerhost-sw.js', { scope: '/' }).then(function () {
          announceToWorker();
          navigator.serviceWorker.addEventListener('controllerchange', announceToWorker);
          return navigator.serviceWorker.ready;
        }).then(announceToWorker).catch(function (e) { log('no service worker:', e); });
      }
      return true;
    });
  }

  function disabled(e) {
    log('disabled:', e && e.message || e);
    if (client) { try { client.close(); } catch (x) { /* ignore */ } }
    client = null;
    queue.splice(0).forEach(function (f) { f(); });
    return false;
  }

  var started;
  try { started = start(); } catch (e) { started = Promise.reject(e); }
  started.then(resolveReady, function (e) { resolveReady(disabled(e)); });
})();
