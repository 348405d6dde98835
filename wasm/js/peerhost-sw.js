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
 * or 502/503/504), the copy this browser kept is served. A window that
 * never acked is not asked again until its loader speaks.
 *
 * What is kept (Cache 'peerhost-assets', keyed by path): only a response
 * that is public — status 200, not redirected, no `Cache-Control:
 * no-store` or `private`, no `Vary` but `Accept-Encoding` — AND whose bytes
 * have the SHA-256 the current signed manifest gives for its path. The
 * worker cannot see `Set-Cookie` (browsers hide it from scripts), so the
 * digest is what keeps pages made for one visitor out: only the published
 * file matches. A kept copy is hashed again against the current manifest
 * before it is served; a mismatch (altered, or from another version) is
 * evicted and never served. Unlisted responses (APIs, dynamic pages) are
 * never kept nor replayed.
 *
 * Navigations go to the network. For a page the manifest lists, a public
 * response is kept (see above); when the origin fails or has not answered
 * within ORIGIN_TIMEOUT_MS, the verified kept copy (or another open tab's
 * peerhost) serves it. The manifest URL (the copy the page verified) and
 * the client files (the loader's directory, public responses only) are
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
 * Removal: a page whose loader has not spoken within TAG_WAIT_MS of its
 * navigation (the tag may be gone) makes the worker fetch the manifest; a
 * 404 or 410 there means the site dropped peerhost: the worker deletes its
 * caches, unregisters itself (when it is peerhost-sw.js itself, not
 * imported into the site's worker) and handles nothing more. A 5xx or no
 * answer is an origin that is down, not a removal. `peerhost.optOut()`
 * sends 'peerhost-opt-out', which does the same.
 *
 * Serve it from the site root (or with `Service-Worker-Allowed: /`) so its
 * scope covers the whole site. A site with its own worker imports it:
 *   importScripts('/peerhost-sw.js');
 * (docs/browser.md: "A site that has its own Service Worker").
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
// A page whose loader has not said a word this long after its navigation
// answered may no longer carry the tag: check whether the site still
// publishes a manifest.
var TAG_WAIT_MS = 5000;
// At most one such check per this long.
var CHECK_GAP_MS = 60000;
var META = 'peerhost-meta';
var ASSETS = 'peerhost-assets';
var CLIENT_FILES = 'peerhost-client';
var STATE_KEY = '/__peerhost/state';
var MANIFEST_KEY = '/__peerhost/manifest';
// A site may provide this page (styled like the site); it is kept when listed.
var LIMITED_PAGE = '/peerhost-limited.html';
var LIMITED_MESSAGE = 'The site\u2019s server cannot be reached right now. Its pages and images still ' +
  'work from this browser\u2019s copy and other visitors; live data will come back with the server.';
// When a page last said nobody can share with it (and when), listed assets
// go straight to the network for this long: no detour through the page.
var DIRECT_FOR_MS = 30000;
// This file registered as the worker itself, or imported into a site's own
// worker (which peerhost must never unregister).
var STANDALONE = /\/peerhost-sw\.js$/.test(self.location.pathname);
var directSince = 0;
// { active, paths: Set of listed paths, integrity: Map path -> 'sha256-…',
//   manifest: manifest URL path, base: client files path }. Not active
// until a page running peerhost has told the worker what the site lists.
var state = null;
var limitedKept = false;
// Why peerhost handles nothing here: 'dropped' (the site's manifest is
// gone), 'opted-out'; false while it runs.
var removed = false;
// Windows that never acked an ask: not asked again until they speak.
var silent = new Set();
// Navigations waiting for their page's loader to speak, by client id.
var tagWaits = new Map();
var lastCheck = 0;
var checking = null;

function noop() {}

function emptyState() {
  return { active: false, paths: new Set(), integrity: new Map(), manifest: null, base: null };
}

// Path -> SRI digest ('sha256-…') from the signed manifest's JSON, which
// the page verified before sending it.
function integrityOf(text) {
  var map = new Map();
  try {
    (JSON.parse(text).assets || []).forEach(function (a) {
      if (a && typeof a.path === 'string' && typeof a.integrity === 'string') map.set(a.path, a.integrity);
    });
  } catch (e) { /* no manifest: nothing verifies, nothing kept is served */ }
  return map;
}

self.addEventListener('install', function () { self.skipWaiting(); });
self.addEventListener('activate', function (e) {
  // Navigation preload: the browser starts the page's request while the
  // worker boots, so intercepting navigations (to keep the site up when the
  // origin is down) does not make every page view wait for the worker.
  var preload = self.registration.navigationPreload;
  e.waitUntil(Promise.all([
    self.clients.claim(),
    preload ? preload.enable().catch(noop) : null,
  ]));
});

self.addEventListener('message', function (e) {
  var m = e.data;
  if (e.source && e.source.id) heardFrom(e.source.id);
  if (m && m.type === 'peerhost-opt-out') {
    e.waitUntil(standDown('opted-out'));
    return;
  }
  if (m && m.type === 'peerhost-listening' && e.source) {
    (unacked.get(e.source.id) || []).slice().forEach(function (send) { send(); });
    return;
  }
  if (!m || m.type !== 'peerhost-ready' || !Array.isArray(m.paths)) return;
  // A tab opened before the site dropped peerhost does not bring it back;
  // a visitor who opts in again does.
  if (removed === 'dropped') return;
  removed = false;
  var manifest = typeof m.manifest === 'string' ? m.manifest : null;
  state = {
    active: true, paths: new Set(m.paths), integrity: integrityOf(manifest || ''),
    manifest: m.manifestPath || null, base: m.base || null,
  };
  directSince = m.direct ? Date.now() : 0;
  // The worker may be stopped and restarted at any time: keep what it knows.
  var saved = { paths: m.paths, manifest: state.manifest, base: state.base };
  e.waitUntil(caches.open(META).then(function (c) {
    var jobs = [c.put(STATE_KEY, new Response(JSON.stringify(saved)))];
    if (manifest) {
      jobs.push(c.put(MANIFEST_KEY, new Response(manifest, { headers: { 'content-type': 'application/json' } })));
    }
    if (!limitedKept && state.paths.has(LIMITED_PAGE)) {
      limitedKept = true;
      jobs.push(fetch(LIMITED_PAGE, { credentials: 'omit' }).then(function (r) { return keep(LIMITED_PAGE, r); }).catch(noop));
    }
    return Promise.all(jobs);
  }).catch(noop));
});

// A window spoke: its loader runs (the tag is there) and it can be asked.
function heardFrom(id) {
  silent.delete(id);
  var wait = tagWaits.get(id);
  if (wait) wait();
}

function loadState() {
  if (state) return Promise.resolve(state);
  return caches.open(META).then(function (c) {
    return Promise.all([c.match(STATE_KEY), c.match(MANIFEST_KEY)]);
  }).then(function (rs) {
    return Promise.all([rs[0] ? rs[0].json() : null, rs[1] ? rs[1].text() : '']);
  }).catch(function () { return [null, '']; }).then(function (got) {
    var s = got[0];
    state = s && Array.isArray(s.paths) ? {
      active: true, paths: new Set(s.paths), integrity: integrityOf(got[1]),
      manifest: s.manifest || null, base: s.base || null,
    } : emptyState();
    return state;
  });
}

// The site dropped peerhost or the visitor opted out: forget everything
// kept, stop handling requests, and unregister (only when this file is the
// worker: imported into the site's own worker, that worker stays).
function standDown(why) {
  removed = why;
  state = emptyState();
  var jobs = [META, ASSETS, CLIENT_FILES].map(function (n) { return caches.delete(n).catch(noop); });
  if (STANDALONE) jobs.push(self.registration.unregister().catch(noop));
  return Promise.all(jobs);
}

// Whether the site still publishes a manifest. Only a definite "not here"
// (404, 410) removes peerhost; an origin that fails (5xx, no answer) is down,
// which is what the kept copies are for.
function checkRemoval() {
  if (removed || checking || Date.now() - lastCheck < CHECK_GAP_MS) return checking || Promise.resolve();
  lastCheck = Date.now();
  var url = (state && state.manifest) || '/peerhost.json';
  checking = fetch(url, { cache: 'no-store', credentials: 'omit' }).then(function (r) {
    if (r.status === 404 || r.status === 410) return standDown('dropped');
    return null;
  }, noop).then(function () { checking = null; });
  return checking;
}

// Resolves when the page of `clientId` speaks, or after TAG_WAIT_MS with a
// removal check.
function awaitTag(clientId) {
  if (!clientId) return Promise.resolve();
  return new Promise(function (resolve) {
    var timer = setTimeout(function () {
      tagWaits.delete(clientId);
      resolve(checkRemoval());
    }, TAG_WAIT_MS);
    tagWaits.set(clientId, function () {
      clearTimeout(timer);
      tagWaits.delete(clientId);
      resolve();
    });
  });
}

// The origin failed: no answer, or a gateway/overload status.
function failed(r) { return !r || r.status === 502 || r.status === 503 || r.status === 504; }

// Public: the same for every visitor and storable. (`Set-Cookie` is hidden
// from workers; the digest check in keep() covers what it would say.)
function shareable(r) {
  if (!r || r.status !== 200 || r.redirected) return false;
  var cc = (r.headers.get('cache-control') || '').toLowerCase();
  if (/(^|[\s,])(no-store|private)(?![\w-])/.test(cc)) return false;
  var vary = r.headers.get('vary');
  return !vary || vary.split(',').every(function (v) { return v.trim().toLowerCase() === 'accept-encoding'; });
}

function sriOf(buf) {
  return crypto.subtle.digest('SHA-256', buf).then(function (d) {
    return 'sha256-' + btoa(String.fromCharCode.apply(null, new Uint8Array(d)));
  });
}

function evict(path) {
  return caches.open(ASSETS).then(function (c) { return c.delete(path); }).catch(noop);
}

// Keeps `r` (not yet read) as the copy of listed `path` if it is public and
// is the published file; otherwise drops any older copy (the site now
// serves it privately, or differently). A failed origin says nothing.
function keep(path, r) {
  if (failed(r)) return Promise.resolve();
  return loadState().then(function (st) {
    var want = st.integrity.get(path);
    if (!want || !shareable(r)) return evict(path);
    var copy = r.clone();
    return r.arrayBuffer().then(sriOf).then(function (got) {
      if (got !== want) return evict(path);
      return caches.open(ASSETS).then(function (c) { return c.put(path, copy); });
    });
  }).catch(noop);
}

// The kept copy of listed `path`, if its bytes still have the digest the
// current manifest gives; a copy that does not is evicted, never served.
function keptVerified(path) {
  return loadState().then(function (st) {
    return caches.open(ASSETS).then(function (c) {
      return c.match(path).then(function (r) {
        if (!r) return null;
        return r.arrayBuffer().then(function (buf) {
          return sriOf(buf).then(function (got) {
            if (got === st.integrity.get(path)) return new Response(buf, { status: 200, headers: r.headers });
            return c.delete(path).then(function () { return null; });
          });
        });
      });
    });
  }).catch(function () { return null; });
}

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

// peerhost's fetch handling; true if it answers the request. A site that
// combines its own worker with this one may call it from its own handler
// (see docs/browser.md) after setting self.PEERHOST_SW_MANUAL = true.
function onFetch(e) {
  var req = e.request;
  if (removed) {
    // Chromium keeps an unregistered worker while a page it controlled is
    // alive (also in the back/forward cache) and may hand it the next
    // navigation: unregister again, and answer nothing.
    if (STANDALONE && req.mode === 'navigate') e.waitUntil(self.registration.unregister().catch(noop));
    return false;
  }
  // Only GETs; range requests and cache-only reads (the page adopting what
  // the HTTP cache holds) are the browser's business.
  if (req.method !== 'GET' || req.headers.has('range') || req.cache === 'only-if-cached') return false;
  var url = new URL(req.url);
  if (url.origin !== self.location.origin) return false;
  if (req.mode === 'navigate') {
    e.respondWith(navigate(e, req, url));
    return true;
  }
  e.respondWith(loadState().then(function (st) {
    var path = url.pathname;
    // No page has run peerhost here (or it was removed): as without it.
    if (!st.active || removed) return fetch(req);
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
  return true;
}
self.peerhostWorker = { onFetch: onFetch, standalone: STANDALONE };
if (!self.PEERHOST_SW_MANUAL) self.addEventListener('fetch', onFetch);

function listedAsset(req, path, clientId) {
  var direct = directSince && Date.now() - directSince < DIRECT_FOR_MS;
  var first = direct ? fetch(req) : viaPages(path, clientId).catch(function () { return fetch(req); });
  return withFallback(first, function () { return keptVerified(path); }, direct ? ORIGIN_TIMEOUT_MS : 0)
    .catch(function () { return limited(path, 'the origin cannot be reached and no copy is kept'); });
}

// The loader's own files: not in the manifest, kept only when public.
function clientFile(req) {
  var net = fetch(req).then(function (r) {
    if (shareable(r)) {
      var copy = r.clone();
      caches.open(CLIENT_FILES).then(function (c) { return c.put(req.url, copy); }).catch(noop);
    }
    return r;
  });
  return withFallback(net, function () { return kept(CLIENT_FILES, req.url); }, 0);
}

function navigate(e, req, url) {
  var preloaded = Promise.resolve(e.preloadResponse).then(function (p) { return p || fetch(req); });
  return loadState().then(function (st) {
    if (removed) return preloaded;
    if (!st.active) {
      // Nothing known (first install, or a worker the browser kept after
      // it unregistered): pass through, and check the site if no loader speaks.
      e.waitUntil(preloaded.then(function () { return awaitTag(e.resultingClientId); }, noop));
      return preloaded;
    }
    var path = url.pathname;
    var page = /\/$/.test(path) ? path + 'index.html' : path;
    var listed = st.paths.has(page);
    var alt = function () {
      if (!listed) return Promise.resolve(null);
      return keptVerified(page).then(function (k) {
        return k || viaPages(page, e.clientId).catch(function () { return null; });
      });
    };
    var net = preloaded.then(function (r) {
      // Keep listed pages as published, for the day the origin is down.
      if (listed) e.waitUntil(keep(page, r.clone()));
      if (!failed(r)) e.waitUntil(awaitTag(e.resultingClientId));
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
  return keptVerified(LIMITED_PAGE).then(function (k) {
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
    // A window that never acked runs no peerhost (the tag is gone, or its
    // loader stood down): asking it again would only make this wait.
    windows = windows.filter(function (w) { return !silent.has(w.id); });
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
    timer = setTimeout(function () {
      silent.add(win.id);
      fail('no ack');
    }, PAGE_ACK_MS);
    if (!unacked.has(win.id)) unacked.set(win.id, []);
    unacked.get(win.id).push(send);
    send();
  });
}
