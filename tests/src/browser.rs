//! Real headless browsers for end-to-end tests, driven through
//! `tests/js/browser.mjs`: Chromium (playwright-core with Debian's
//! chromium) and Firefox (puppeteer-core over WebDriver BiDi with Debian's
//! firefox-esr), one process and profile per visitor.
//!
//! Browser tests run only inside the loopback-only network namespace that
//! `cargo xtask test` sets up (`PEERHOST_NETNS=1`): there every ICE
//! candidate is 127.0.0.1 and nothing can leave the machine.

use std::path::PathBuf;
use std::time::Duration;

use peerhost_bench::browser_control::BrowserControl;

use serde_json::{Value, json};

/// Whether browser tests may run here (see `peerhost_testenv`).
pub fn browser_tests_enabled(test: &str) -> bool {
    peerhost_testenv::netns_or_skip(test, "browser tests")
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where Firefox is looked for (`PEERHOST_FIREFOX` overrides).
pub fn firefox_path() -> PathBuf {
    std::env::var_os("PEERHOST_FIREFOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/firefox-esr"))
}

/// Which browser a visitor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Debian's chromium through playwright-core.
    Chromium,
    /// Debian's firefox-esr through puppeteer-core (WebDriver BiDi).
    Firefox,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Chromium => "chromium",
            Engine::Firefox => "firefox",
        }
    }
}

/// How a visitor was opened, so [`Browser::reopen`] can start it again.
struct Opened {
    profile: String,
    engine: Engine,
    prefs: Value,
}

/// One node process driving any number of visitors.
pub struct Browser {
    driver: BrowserControl,
    profiles: Vec<tempfile::TempDir>,
    opened: std::collections::HashMap<String, Opened>,
}

impl Browser {
    /// Starts the driver. Panics with a clear message if node or the npm
    /// packages are missing (run `cargo xtask test`, which installs them).
    pub fn launch() -> Browser {
        Browser {
            driver: BrowserControl::launch(&repo_root()).unwrap_or_else(|e| panic!("{e}")),
            profiles: Vec::new(),
            opened: std::collections::HashMap::new(),
        }
    }

    /// Starts the driver, and so every Chromium it opens, inside `home` of
    /// a simulated internet: its visitors are behind that home's NAT.
    /// They gather no loopback candidates (`PEERHOST_NO_LOOPBACK_ICE`): a
    /// home has a real LAN, and a TURN allocation from loopback would hold
    /// up ICE gathering until it times out.
    pub fn launch_in(home: &peerhost_testenv::topology::Home) -> Browser {
        let mut node = home.command("node");
        node.env("PEERHOST_NO_LOOPBACK_ICE", "1");
        Browser {
            driver: BrowserControl::launch_with(&repo_root(), node)
                .unwrap_or_else(|e| panic!("{e}")),
            profiles: Vec::new(),
            opened: std::collections::HashMap::new(),
        }
    }

    /// Sends one command and waits (bounded) for its reply.
    pub fn cmd(&mut self, cmd: Value) -> Result<Value, String> {
        self.driver.cmd(cmd, Duration::from_secs(120))
    }

    fn must(&mut self, cmd: Value) -> Value {
        let what = cmd.to_string();
        self.cmd(cmd)
            .unwrap_or_else(|e| panic!("browser command {what} failed: {e}"))
    }

    /// Launches a visitor: its own Chromium process and fresh profile.
    pub fn open(&mut self, visitor: &str) {
        self.open_with(visitor, &[]);
    }

    /// Launches a visitor with extra Chromium flags.
    pub fn open_with(&mut self, visitor: &str, args: &[&str]) {
        self.open_scripted(visitor, args, None);
    }

    /// Launches a visitor whose pages run `init_script` before any of
    /// their own (a test-only way to make a misbehaving peer).
    pub fn open_scripted(&mut self, visitor: &str, args: &[&str], init_script: Option<&str>) {
        let path = self.new_profile(visitor, Engine::Chromium, json!({}));
        self.must(json!({"op": "open", "visitor": visitor, "profile": path, "args": args, "initScript": init_script}));
    }

    /// Launches a Firefox visitor: its own firefox-esr process and fresh
    /// profile, with the prefs WebRTC over loopback needs
    /// (`tests/js/firefox.mjs`). Panics if firefox-esr or puppeteer-core
    /// is missing: a Firefox test never passes by not running.
    pub fn open_firefox(&mut self, visitor: &str) {
        self.open_firefox_with(visitor, json!({}), None);
    }

    /// Launches a Firefox visitor with extra prefs (a JSON object, e.g.
    /// `{"media.peerconnection.enabled": false}`) and an optional script
    /// its pages run before any of their own.
    pub fn open_firefox_with(&mut self, visitor: &str, prefs: Value, init_script: Option<&str>) {
        let firefox = firefox_path();
        assert!(
            firefox.exists(),
            "{} is missing: install Debian's firefox-esr (cargo xtask test does) to run the Firefox tests",
            firefox.display()
        );
        assert!(
            repo_root().join("node_modules/puppeteer-core").exists(),
            "node_modules/puppeteer-core is missing: run `npm ci --ignore-scripts` (cargo xtask test does)"
        );
        let path = self.new_profile(visitor, Engine::Firefox, prefs.clone());
        self.must(json!({"op": "open", "visitor": visitor, "profile": path, "engine": "firefox", "prefs": prefs, "initScript": init_script}));
    }

    fn new_profile(&mut self, visitor: &str, engine: Engine, prefs: Value) -> String {
        let profile = tempfile::tempdir().expect("profile dir");
        let path = profile.path().to_string_lossy().into_owned();
        self.profiles.push(profile);
        self.opened.insert(
            visitor.to_owned(),
            Opened {
                profile: path.clone(),
                engine,
                prefs,
            },
        );
        path
    }

    /// Starts `visitor`'s browser again with the profile it had: a
    /// returning visitor (its caches, storage and worker kept).
    pub fn reopen(&mut self, visitor: &str) {
        let o = self.opened.get(visitor).expect("opened before");
        let cmd = json!({"op": "open", "visitor": visitor, "profile": o.profile, "engine": o.engine.name(), "prefs": o.prefs, "args": []});
        self.must(cmd);
    }

    /// Lands on `first` (a page without the assets under test), waits until
    /// peerhost runs and its Service Worker controls the page, then browses
    /// to `then`: the way a visitor's second page view goes through peerhost.
    pub fn visit_via_worker(&mut self, visitor: &str, base: &str, first: &str, then: &str) {
        self.goto(visitor, &format!("{base}{first}"));
        self.wait(
            visitor,
            "window.peerhost && peerhost.stats().version > 0",
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| {
            panic!(
                "peerhost did not start for {visitor}: {e}\n{:#?}",
                self.logs(visitor)
            )
        });
        self.wait(
            visitor,
            "navigator.serviceWorker.controller !== null",
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("no service worker for {visitor}: {e}"));
        self.goto(visitor, &format!("{base}{then}"));
    }

    /// Navigates and waits for `load`; returns the load time in ms.
    pub fn goto(&mut self, visitor: &str, url: &str) -> u64 {
        self.must(json!({"op": "goto", "visitor": visitor, "url": url}))["loadMs"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Waits until the JS expression is truthy in the page, polling every
    /// 100 ms; a promise is awaited first (so `caches.has(…)` works), and a
    /// throw counts as "not yet".
    pub fn wait(&mut self, visitor: &str, expr: &str, timeout: Duration) -> Result<(), String> {
        self.cmd(json!({"op": "wait", "visitor": visitor, "expr": expr, "timeoutMs": timeout.as_millis() as u64}))
            .map(|_| ())
    }

    /// Evaluates a JS expression (or `() => …` function) in the page.
    pub fn eval(&mut self, visitor: &str, expr: &str) -> Value {
        self.must(json!({"op": "eval", "visitor": visitor, "expr": expr}))
    }

    /// Every image of the page: path, naturalWidth, SHA-256 (hex).
    pub fn images(&mut self, visitor: &str) -> Vec<Value> {
        self.must(json!({"op": "images", "visitor": visitor}))
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Starts a CPU profile of the visitor's page (for benchmarks).
    pub fn profile_start(&mut self, visitor: &str) {
        self.must(json!({"op": "profileStart", "visitor": visitor}));
    }

    /// Stops the profile: the `top` functions by self time, one line each
    /// (`ms  name script`), and the total sampled time in ms.
    pub fn profile_stop(&mut self, visitor: &str, top: usize) -> (f64, Vec<String>) {
        let v = self.must(json!({"op": "profileStop", "visitor": visitor, "top": top}));
        let rows = v["rows"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        (v["totalMs"].as_f64().unwrap_or(0.0), rows)
    }

    /// The page's console lines so far.
    pub fn logs(&mut self, visitor: &str) -> Vec<String> {
        self.must(json!({"op": "logs", "visitor": visitor}))
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Closes a visitor's browser.
    pub fn close(&mut self, visitor: &str) {
        let _ = self.cmd(json!({"op": "close", "visitor": visitor}));
    }
}
