// Demo only (not part of peerhost): a corner panel showing, per asset, how
// many bytes came from other visitors and how many from the origin, from
// window.peerhost.stats(). Click it to fold it. It also polls the demo's one
// dynamic endpoint, /api/now, and shows peerhost's limited-mode answer when
// the origin is down (the `x-peerhost-limited` header, a JSON reason).
(function () {
  'use strict';
  var box = document.createElement('aside');
  box.id = 'peerhost-overlay';
  box.setAttribute('aria-live', 'polite');
  box.style.cssText = 'position:fixed;right:12px;bottom:12px;z-index:9;max-width:22rem;' +
    'font:12px/1.4 ui-monospace,monospace;background:rgba(20,24,28,.88);color:#e8e6df;' +
    'padding:10px 12px;border-radius:8px;box-shadow:0 4px 18px rgba(0,0,0,.35);cursor:pointer';
  var folded = false;
  box.addEventListener('click', function () { folded = !folded; render(); });

  function kb(n) { return n >= 1048576 ? (n / 1048576).toFixed(1) + ' MiB' : Math.round(n / 1024) + ' KiB'; }
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; }); }

  var api = { cls: '', text: 'origin clock: …' };
  function pollApi() {
    fetch('/api/now', { cache: 'no-store' }).then(function (r) {
      if (r.headers.get('x-peerhost-limited') === '1') {
        return r.json().then(function (j) { api = { cls: 'limited', text: 'limited mode: ' + j.message }; });
      }
      if (!r.ok) { api = { cls: 'down', text: 'origin clock: HTTP ' + r.status }; return null; }
      return r.json().then(function (j) { api = { cls: 'ok', text: 'origin clock: ' + new Date(j.now * 1000).toLocaleTimeString() }; });
    }).catch(function (e) { api = { cls: 'down', text: 'origin clock unavailable: ' + e.message }; })
      .then(render);
  }
  function apiLine() {
    var color = api.cls === 'limited' ? '#f0b36b' : api.cls === 'down' ? '#f08c8c' : '#b9c4cf';
    return '<div id="peerhost-api" class="' + api.cls + '" style="margin-top:4px;color:' + color + '">' + esc(api.text) + '</div>';
  }

  function render() {
    var s = window.peerhost && window.peerhost.stats();
    if (!s || s.running === false || s.version == null) {
      box.innerHTML = '<b>peerhost</b> not running: everything comes from the origin.' + apiLine();
      return;
    }
    var total = s.bytesFromPeers + s.bytesFromOrigin;
    var pct = total ? Math.round(100 * s.bytesFromPeers / total) : 0;
    var html = '<b>peerhost</b> v' + s.version + ' · ' + s.peers + ' peer' + (s.peers === 1 ? '' : 's') +
      ' · ' + pct + '% from peers · uploaded ' + kb(s.bytesUploaded);
    if (!folded) {
      html += '<table style="margin-top:6px;border-collapse:collapse">';
      Object.keys(s.perAsset).forEach(function (path) {
        var a = s.perAsset[path];
        html += '<tr><td style="padding-right:8px">' + esc(path) + '</td><td style="color:#8fd694">' + kb(a.peers) +
          '</td><td style="padding:0 4px">/</td><td style="color:#f0b36b">' + kb(a.origin) + '</td></tr>';
      });
      html += '</table><div style="opacity:.7;margin-top:4px"><span style="color:#8fd694">peers</span> / ' +
        '<span style="color:#f0b36b">origin</span> · banned ' + s.peersBanned + '</div>';
    }
    box.innerHTML = html + apiLine();
  }

  function start() {
    document.body.appendChild(box);
    render();
    setInterval(render, 1000);
    pollApi();
    setInterval(function () { if (!document.hidden) pollApi(); }, 5000);
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();
