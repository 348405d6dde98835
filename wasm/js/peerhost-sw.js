/*
 * peerhost Service Worker: serve the site's listed assets through the page
 * that holds the peer connections (RTCPeerConnection does not exist in
 * workers), and keep the site's static part up when its origin is down.
 *
 * Listed assets (GET, not navigations): asked of a window of this site over
 * a MessageChannel. The page answers "ack" at once and every second while
 * it works, then the verified bytes (from peers or the origin). No ack
 * within PAGE_ACK_MS, silence for PAGE_IDLE_MS, or an error: the request
 * goes to the network as without peerhost; if that fails too (no answer,
 * or 502/503/504), the copy this browser kept (Cache 'peerhost-assets',
 * verified bytes the page stored) is served.
 *
 * Navigations go to the network. For a page the manifest lists, the
 * response is kept; when the origin fails or has not answered within
 * ORIGIN_TIMEOUT_MS, the kept copy (or another open tab's peerhost) serves
 * it. The manifest URL and the client files (the loader's directory) are
 * network-first with a kept copy too, so peerhost itself starts when the
 * origin is down and the page can reach peers.
 *
 * Limited mode: a GET of anything not listed (an API, a dynamic page)
 * whose origin fails gets, instead of a browser error,
 *   - for navigations: the site's own /peerhost-limited.html (kept when the
 *     manifest lists it) or a built-in page, status 503;
 *   - for fetch()/XHR: status 503, JSON {"peerhost":"limited", "reason", "path",
 *     "message"}, header `x-peerhost-limited: 1`, so the page can say why
 *     its dynamic part is limited.
 * Other methods (POST, …) are never touched.
 *
 * Serve it from the site root (or with `Service-Worker-Allowed: /`) so its
 * scope covers the whole site.
 */
'use strict';

var PAGE_ACK_MS = 1000;
// The page repeats its ack every second while it works; silence this long
// means it is gone (navigated away, closed, frozen).
var PAGE_IDLE_MS = 3000;
// A navigation (or a listed asset fetched directly) whose origin has not
// answered by then is served from the kept copy, if there is one; the
// network answer is still used when it comes first.
var ORIGIN_TIMEOUT_MS = 4000;
var META = 'peerhost-meta';
var ASSETS = 'peerhost-assets';
var CLIENT_FILES = 'peerhost-client';
var STATE_KEY = '/__peerhost/state';
var MANIFEST_KEY = '/__peerhost/manifest';
var LIMITED_KEY = '/__peerhost/limited';
// A site may provide this page (styled like the site); it is kept when listed.
var LIMITED_PAGE = '/peerhost-limited.html';
var LIMITED_MESSAGE = 'The site\u2019s server cannot be reached right now. Its pages and images still ' +
  'work from this browser\u2019s copy and other visitors; live data will come back with the server.';
// When a page last said nobody can share with it (and when), listed assets
// go straight to the network for this long: no detour through the page.
var DIRECT_FOR_MS = 30000;
var directSince = 0;
// { paths: Set of listed paths, manifest: manifest URL path, base: client files path }
var state = null;
var limitedKept = false;

self.addEventListener('install', function () { self.skipWaiting(); });
self.addEventListener('activate', function (e) {
  // Navigation preload: the browser starts the page's request while the
  // worker boots, so intercepting navigations (to keep the site up when the
  // origin is down) does not make every page view wait for the worker.
  var preload = self.registration.navigationPreload;
  e.waitUntil(Promise.all([
    self.clients.claim(),
    preload ? preload.enable().catch(function () {}) : null,
  ]));
});

self.addEventListener('message', function (e) {
  var m = e.data;
  if (m && m.type === 'peerhost-listening' && e.source) {
    (unacked.get(e.source.id) || []).slice().forEach(function (send) { send(); });
    return;
  }
  if (!m || m.type !== 'peerhost-ready' || !Array.isArray(m.paths)) return;
  state = { paths: new Set(m.paths), manifest: m.manifestPath || null, base: m.base || null };
  directSince = m.direct ? Date.now() : 0;
  // The worker may be stopped and restarted at any time: keep what it knows.
  var saved = { paths: m.paths, manifest: state.manifest, base: state.base };
  e.waitUntil(caches.open(META).then(function (c) {
    var jobs = [c.put(STATE_KEY, new Response(JSON.stringify(saved)))];
    if (typeof m.manifest === 'string') {
      jobs.push(c.put(MANIFEST_KEY, new Response(m.manifest, { headers: { 'content-type': 'application/json' } })));
    }
    if (!limitedKept && state.paths.has(LIMITED_PAGE)) {
      limitedKept = true;
      jobs.push(fetch(LIMITED_PAGE).then(function (r) { return r.ok ? c.put(LIMITED_KEY, r) : null; }).catch(function () {}));
    }
    return Promise.all(jobs);
  }).catch(function () {}));
});

function loadState() {
  if (state) return Promise.resolve(state);
  return caches.open(META)
    .then(function (c) { return c.match(STATE_KEY); })
    .then(function (r) { return r ? r.json() : {}; })
    .catch(function () { return {}; })
    .then(function (s) {
      state = { paths: new Set(s.paths || []), manifest: s.manifest || null, base: s.base || null };
      return state;
    });
}

// The origin failed: no answer, or a gateway/overload status.
function failed(r) { return !r || r.status === 502 || r.status === 503 || r.status === 504; }

function kept(cacheName, key) {
  return caches.open(cacheName).then(function (c) { return c.match(key); }).catch(function () { return null; });
}

// `net` (a fetch promise) unless it fails or is slower than `timeoutMs`
// (0: wait for it) while `alt()` has an answer. Resolves with the failed
// response if there is no alternative; rejects if there was no response.
function withFallback(net, alt, timeoutMs) {
  return new Promise(function (resolve, reject) {
    var done = false;
    var finish = function (r) { if (!done) { done = true; clearTimeout(timer); resolve(r); } };
    var timer = timeoutMs ? setTimeout(function () {
      alt().then(function (a) { if (a) finish(a); });
    }, timeoutMs) : null;
    net.then(function (r) {
      if (!failed(r)) { finish(r); return; }
      alt().then(function (a) { finish(a || r); });
    }, function (err) {
      alt().then(function (a) {
        if (a) finish(a);
        else if (!done) { done = true; clearTimeout(timer); reject(err); }
      });
    });
  });
}

self.addEventListener('fetch', function (e) {
  var req = e.request;
  // Only GETs; range requests and cache-only reads (the page adopting what
  // the HTTP cache holds) are the browser's business.
  if (req.method !== 'GET' || req.headers.has('range') || req.cache === 'only-if-cached') return;
  var url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (req.mode === 'navigate') {
    e.respondWith(navigate(req, url, e.clientId, e.preloadResponse));
    return;
  }
  e.respondWith(loadState().then(function (st) {
    var path = url.pathname;
    if (st.manifest && path === st.manifest) {
      return withFallback(fetch(req), function () { return kept(META, MANIFEST_KEY); }, 0);
    }
    if (st.base && path.indexOf(st.base) === 0) return clientFile(req);
    if (!st.paths.has(path)) {
      return fetch(req).then(function (r) {
        return failed(r) ? limited(path, 'the origin answered ' + r.status) : r;
      }, function () { return limited(path, 'the origin cannot be reached'); });
    }
    return listedAsset(req, path, e.clientId);
  }));
});

function listedAsset(req, path, clientId) {
  var direct = directSince && Date.now() - directSince < DIRECT_FOR_MS;
  var first = direct ? fetch(req) : viaPages(path, clientId).catch(function () { return fetch(req); });
  return withFallback(first, function () { return kept(ASSETS, path); }, direct ? ORIGIN_TIMEOUT_MS : 0)
    .catch(function () { return limited(path, 'the origin cannot be reached and no copy is kept'); });
}

function clientFile(req) {
  var net = fetch(req).then(function (r) {
    if (r.ok) {
      var copy = r.clone();
      caches.open(CLIENT_FILES).then(function (c) { return c.put(req.url, copy); }).catch(function () {});
    }
    return r;
  });
  return withFallback(net, function () { return kept(CLIENT_FILES, req.url); }, 0);
}

function navigate(req, url, clientId, preloaded) {
  return loadState().then(function (st) {
    var path = url.pathname;
    var page = /\/$/.test(path) ? path + 'index.html' : path;
    var listed = st.paths.has(page);
    var alt = function () {
      if (!listed) return Promise.resolve(null);
      return kept(ASSETS, page).then(function (k) {
        return k || viaPages(page, clientId).catch(function () { return null; });
      });
    };
    var net = Promise.resolve(preloaded).then(function (p) { return p || fetch(req); }).then(function (r) {
      // Keep listed pages as served, for the day the origin is down (the
      // page verifies what it seeds from this cache against the manifest).
      if (listed && r.status === 200 && !r.redirected) {
        var copy = r.clone();
        caches.open(ASSETS).then(function (c) { return c.put(page, copy); }).catch(function () {});
      }
      return r;
    });
    return withFallback(net, alt, listed ? ORIGIN_TIMEOUT_MS : 0).then(function (r) {
      return failed(r) ? limitedPage('the origin answered ' + r.status) : r;
    }, function () { return limitedPage('the origin cannot be reached'); });
  });
}

function esc(s) {
  return String(s).replace(/[&<>"]/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; });
}

function limitedPage(reason) {
  var headers = { 'content-type': 'text/html; charset=utf-8', 'x-peerhost-limited': '1', 'cache-control': 'no-store' };
  return kept(META, LIMITED_KEY).then(function (k) {
    if (k) return k.text().then(function (t) { return new Response(t, { status: 503, headers: headers }); });
    var html = '<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width">' +
      '<title>Limited mode</title><main id="peerhost-limited" style="font:16px/1.5 system-ui,sans-serif;' +
      'max-width:36rem;margin:15vh auto;padding:0 1rem"><h1>This part of the site is in limited mode</h1>' +
      '<p>' + esc(LIMITED_MESSAGE) + '</p><p><small>(' + esc(reason) + ')</small></p>' +
      '<p><a href="/">Go to the home page</a></p></main>';
    return new Response(html, { status: 503, headers: headers });
  });
}

function limited(path, reason) {
  var body = JSON.stringify({ peerhost: 'limited', reason: reason, path: path, message: LIMITED_MESSAGE });
  return new Response(body, {
    status: 503,
    headers: { 'content-type': 'application/json', 'x-peerhost-limited': '1', 'cache-control': 'no-store', 'retry-after': '30' },
  });
}

function viaPages(path, clientId) {
  return self.clients.matchAll({ type: 'window' }).then(function (windows) {
    // Prefer the page that asked: it is surely alive.
    windows.sort(function (a, b) { return (b.id === clientId) - (a.id === clientId); });
    var tryNext = function (i) {
      if (i >= windows.length) return Promise.reject(new Error('no page answered'));
      return ask(windows[i], path).catch(function () { return tryNext(i + 1); });
    };
    return tryNext(0);
  });
}

// Asks not yet acknowledged, by window id. A page's messages that arrive
// before its (async) loader listens are dropped by the browser when the
// document finishes parsing; the loader then says 'peerhost-listening' and
// these are sent again.
var unacked = new Map();

function ask(win, path) {
  return new Promise(function (resolve, reject) {
    var settled = false;
    var timer = null;
    var send = null;
    var forget = function () {
      var list = unacked.get(win.id);
      if (!list) return;
      var i = list.indexOf(send);
      if (i >= 0) list.splice(i, 1);
      if (!list.length) unacked.delete(win.id);
    };
    var fail = function (why) {
      if (settled) return;
      settled = true;
      forget();
      reject(new Error(why));
    };
    var onmessage = function (m) {
      if (settled) return;
      clearTimeout(timer);
      forget();
      if (m.data && m.data.type === 'ack') {
        timer = setTimeout(function () { fail('page went silent'); }, PAGE_IDLE_MS);
        return;
      }
      settled = true;
      if (m.data && m.data.ok) {
        resolve(new Response(m.data.body, {
          status: 200,
          headers: { 'content-type': m.data.contentType, 'x-peerhost': '1' },
        }));
      } else {
        reject(new Error(m.data && m.data.error || 'failed'));
      }
    };
    send = function () {
      var ch = new MessageChannel();
      ch.port1.onmessage = onmessage;
      win.postMessage({ type: 'peerhost-fetch', path: path }, [ch.port2]);
    };
    timer = setTimeout(function () { fail('no ack'); }, PAGE_ACK_MS);
    if (!unacked.has(win.id)) unacked.set(win.id, []);
    unacked.get(win.id).push(send);
    send();
  });
}
