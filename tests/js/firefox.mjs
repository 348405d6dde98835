// Launching Debian's firefox-esr for the end-to-end tests: puppeteer-core
// over WebDriver BiDi (Playwright's Firefox needs its own patched build).
// Each visitor is its own Firefox process with its own profile directory.
//
// WebRTC over loopback in a loopback-only namespace needs three things
// (see docs/browser.md, "Firefox"):
// - `media.peerconnection.ice.loopback`: gather 127.0.0.1 / ::1 at all;
// - `media.peerconnection.ice.obfuscate_host_addresses` off: no mDNS names;
// - a camera/microphone permission (`permissions.default.*` = allow):
//   without one Firefox gathers only the address of the default route, and
//   a loopback-only namespace has none, so gathering fails ("ICE failed,
//   add a STUN server"). Chromium's `--use-fake-ui-for-media-stream` is
//   the same switch.
import puppeteer from 'puppeteer-core';

const FIREFOX = process.env.PEERHOST_FIREFOX || '/usr/bin/firefox-esr';

export const WEBRTC_PREFS = {
  'media.peerconnection.ice.loopback': true,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'media.navigator.permission.disabled': true,
  'permissions.default.camera': 1,
  'permissions.default.microphone': 1,
};

// Nothing of Firefox's own may call the network (on top of what puppeteer
// and the remote agent already turn off).
const QUIET_PREFS = {
  'app.update.enabled': false,
  'app.update.auto': false,
  'app.shield.optoutstudies.enabled': false,
  'app.normandy.enabled': false,
  'messaging-system.rsexperimentloader.enabled': false,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'network.dns.disablePrefetch': true,
  'network.prefetch-next': false,
  'network.predictor.enabled': false,
  'network.trr.mode': 5,
  'browser.safebrowsing.provider.google4.updateURL': '',
  'browser.safebrowsing.provider.mozilla.updateURL': '',
  'browser.safebrowsing.update.enabled': false,
  'extensions.blocklist.enabled': false,
  'extensions.getAddons.showPane': false,
  'toolkit.telemetry.enabled': false,
  'toolkit.telemetry.unified': false,
  'toolkit.telemetry.server': '',
  'toolkit.coverage.endpoint.base': '',
  'datareporting.healthreport.uploadEnabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'browser.ping-centre.telemetry': false,
  'browser.newtabpage.activity-stream.feeds.telemetry': false,
  'browser.newtabpage.activity-stream.telemetry': false,
  'media.gmp-manager.url': '',
  'media.gmp-gmpopenh264.enabled': false,
  'media.gmp-widevinecdm.enabled': false,
  'geo.provider.network.url': '',
  'browser.region.network.url': '',
  'browser.region.update.enabled': false,
  'identity.fxaccounts.enabled': false,
};

// A Firefox visitor: a page with the same surface the Chromium path gives
// browser.mjs (goto, waitFor, evaluate, console lines, close).
export async function openFirefox(profile, prefs = {}, initScript) {
  const browser = await puppeteer.launch({
    browser: 'firefox',
    protocol: 'webDriverBiDi',
    executablePath: FIREFOX,
    headless: true,
    userDataDir: profile,
    // Playwright's default, so lazy images load alike in both engines.
    defaultViewport: { width: 1280, height: 720 },
    extraPrefsFirefox: { ...QUIET_PREFS, ...WEBRTC_PREFS, ...prefs },
  });
  const page = (await browser.pages())[0] || await browser.newPage();
  if (initScript) await page.evaluateOnNewDocument(initScript);
  return {
    page,
    async goto(url, timeoutMs) {
      await page.goto(url, { waitUntil: 'load', timeout: timeoutMs });
    },
    async waitFor(expr, timeoutMs) {
      await page.waitForFunction(expr, { timeout: timeoutMs, polling: 100 });
    },
    // A string that evaluates to a function is called (as Browser::eval
    // documents; Playwright's Chromium path returns such a function as null).
    async evaluate(expr) {
      if (typeof expr !== 'string') return await page.evaluate(expr);
      return await page.evaluate(
        `(async () => { const v = (${expr}); return typeof v === 'function' ? await v() : await v; })()`);
    },
    onConsole(push) {
      page.on('console', (m) => push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => push(`pageerror: ${e && e.message || e}`));
    },
    async close() { await browser.close(); },
  };
}
