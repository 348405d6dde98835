/*
 * peerhost Service Worker: serve the site's listed assets through the page
 * that holds the peer connections (RTCPeerConnection does not exist in
 * workers).
 *
 * For a GET of a listed asset (not a navigation) it asks a window of this
 * site over a MessageChannel. The page answers "ack" at once and every
 * second while it works, then the verified bytes (from peers or the
 * origin). No ack within PAGE_ACK_MS, silence for PAGE_IDLE_MS, or an
 * error: the request goes to the network exactly as without peerhost.
 * Requests for anything not listed are not touched.
 *
 * Serve it from the site root (or with `Service-Worker-Allowed: /`) so its
 * scope covers the whole site.
 */
'use strict';

var PAGE_ACK_MS = 1000;
// The page repeats its ack every second while it works; silence this long
// means it is gone (navigated away, closed, frozen).
var PAGE_IDLE_MS = 3000;
var LISTING_CACHE = 'peerhost-meta';
var LISTING_KEY = '/__peerhost/listing';
var listed = null;
// When a page last said nobody can share with it (and when), listed assets
// go straight to the network for this long: no detour through the page.
var DIRECT_FOR_MS = 30000;
var directSince = 0;

self.addEventListener('install', function () { self.skipWaiting(); });
self.addEventListener('activate', function (e) { e.waitUntil(self.clients.claim()); });

self.addEventListener('message', function (e) {
  var m = e.data;
  if (!m || m.type !== 'peerhost-ready' || !Array.isArray(m.paths)) return;
  listed = new Set(m.paths);
  directSince = m.direct ? Date.now() : 0;
  // The worker may be stopped and restarted at any time: keep the listing.
  e.waitUntil(caches.open(LISTING_CACHE).then(function (c) {
    return c.put(LISTING_KEY, new Response(JSON.stringify(m.paths)));
  }));
});

function listing() {
  if (listed) return Promise.resolve(listed);
  return caches.open(LISTING_CACHE)
    .then(function (c) { return c.match(LISTING_KEY); })
    .then(function (r) { return r ? r.json() : []; })
    .then(function (paths) { listed = new Set(paths); return listed; })
    .catch(function () { return new Set(); });
}

self.addEventListener('fetch', function (e) {
  var req = e.request;
  // Documents are navigations: the page that would answer is the one being
  // replaced, so they go to the network as usual.
  if (req.method !== 'GET' || req.mode === 'navigate' || req.headers.has('range')) return;
  var url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  e.respondWith(listing().then(function (paths) {
    if (!paths.has(url.pathname)) return fetch(req);
    if (directSince && Date.now() - directSince < DIRECT_FOR_MS) return fetch(req);
    return viaPages(url.pathname, e.clientId).catch(function () { return fetch(req); });
  }));
});

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

function ask(win, path) {
  return new Promise(function (resolve, reject) {
    var ch = new MessageChannel();
    var timer = setTimeout(function () { reject(new Error('no ack')); }, PAGE_ACK_MS);
    ch.port1.onmessage = function (m) {
      clearTimeout(timer);
      if (m.data && m.data.type === 'ack') {
        timer = setTimeout(function () { reject(new Error('page went silent')); }, PAGE_IDLE_MS);
        return;
      }
      if (m.data && m.data.ok) {
        resolve(new Response(m.data.body, {
          status: 200,
          headers: { 'content-type': m.data.contentType, 'x-peerhost': '1' },
        }));
      } else {
        reject(new Error(m.data && m.data.error || 'failed'));
      }
    };
    win.postMessage({ type: 'peerhost-fetch', path: path }, [ch.port2]);
  });
}
