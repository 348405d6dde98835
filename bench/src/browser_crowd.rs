//! Headless Chromium visitors for `peerhost bench flash-crowd --browsers N`,
//! driven by the playwright-core driver the end-to-end tests use
//! (`tests/js/browser.mjs`, operation `crowd`). A benchmark tool for a
//! checkout: it needs node, `npm ci` (playwright-core), Debian's chromium
//! and the browser client built by `cargo xtask build-web`.
//!
//! Each visitor is its own Chromium process with a fresh profile. It lands
//! on `/about.html` (no images: its first page view installs the Service
//! Worker and starts peerhost), then browses to `/plates.html`, whose five
//! images then go through the worker to peers or the origin; it is done
//! when every image on that page has rendered.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

/// Where the visitor lands first, and the page with the images.
const FIRST: &str = "/about.html";
const THEN: &str = "/plates.html";

/// Done when every image of the page rendered (lazy images made eager, as
/// a visitor scrolling through the page would load them).
const DONE: &str = "(() => { const im = Array.from(document.images); \
    im.forEach((i) => { i.loading = 'eager'; }); \
    return im.length > 0 && im.every((i) => i.complete && i.naturalWidth > 0); })()";

/// One browser visitor's outcome.
#[derive(Debug, Clone, Default)]
pub struct BrowserOutcome {
    /// Seconds from the crowd's start until every image rendered.
    pub done_secs: Option<f64>,
    /// Verified bytes its peerhost got from peers and from the origin
    /// (assets the worker sent straight to the network are not counted
    /// here; the origin's own counters have them).
    pub from_peers: u64,
    /// See `from_peers`.
    pub from_origin: u64,
    /// Why it did not finish.
    pub error: Option<String>,
}

/// The repository checkout this binary was built from.
fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Checks that browsers can run here; returns the browser client's files.
pub fn preflight() -> anyhow::Result<PathBuf> {
    let root = repo_root();
    if !root.join("node_modules/playwright-core").exists() {
        bail!(
            "--browsers needs playwright-core: run `npm ci` in {}",
            root.display()
        );
    }
    let chromium =
        std::env::var("PEERHOST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        bail!(
            "--browsers needs Chromium at {chromium} (apt-get install chromium, or set PEERHOST_CHROMIUM)"
        );
    }
    let web = peerhost_site::demo::default_web_dir();
    if !web.join("peerhost.js").exists() {
        bail!(
            "--browsers needs the browser client in {}: run `cargo xtask build-web` first",
            web.display()
        );
    }
    Ok(web)
}

/// Starts `n` visitors of `base` (`http://127.0.0.1:port`) at once on a
/// thread; the handle yields one outcome per visitor, within `limit`.
pub fn start(
    base: String,
    n: usize,
    limit: Duration,
) -> std::thread::JoinHandle<anyhow::Result<Vec<BrowserOutcome>>> {
    std::thread::spawn(move || run(&base, n, limit))
}

fn run(base: &str, n: usize, limit: Duration) -> anyhow::Result<Vec<BrowserOutcome>> {
    let root = repo_root();
    let profiles = (0..n)
        .map(|_| {
            tempfile::Builder::new()
                .prefix("peerhost-crowd-browser-")
                .tempdir()
        })
        .collect::<Result<Vec<_>, _>>()
        .context("cannot create browser profiles")?;
    let mut driver =
        crate::browser_control::BrowserControl::launch(&root).map_err(anyhow::Error::msg)?;
    let visitors: Vec<Value> = profiles
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"visitor": format!("browser-{i}"), "profile": p.path()}))
        .collect();
    let cmd = json!({
        "op": "crowd",
        "visitors": visitors,
        "base": base,
        "first": FIRST,
        "then": THEN,
        "doneExpr": DONE,
        "timeoutMs": limit.as_millis() as u64,
    });
    // The driver's own timeouts end every visit by `limit`; a little more
    // for Chromium to start and close.
    let reply = driver
        .cmd(cmd, limit + Duration::from_secs(60))
        .map_err(|e| anyhow::anyhow!("the browser driver failed: {e}"))?;
    drop(driver);
    let results = reply.as_array().cloned().unwrap_or_default();
    Ok(results.iter().map(outcome).collect())
}

fn outcome(r: &Value) -> BrowserOutcome {
    if r["ok"] != json!(true) {
        let error = r["error"].as_str().unwrap_or("unknown error");
        // Playwright's messages carry a call log after the first line.
        let first = error.lines().next().unwrap_or(error);
        return BrowserOutcome {
            error: Some(first.to_owned()),
            ..BrowserOutcome::default()
        };
    }
    let stats = &r["stats"];
    BrowserOutcome {
        done_secs: r["doneMs"].as_f64().map(|ms| ms / 1000.0),
        from_peers: stats["bytesFromPeers"].as_u64().unwrap_or(0),
        from_origin: stats["bytesFromOrigin"].as_u64().unwrap_or(0),
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_replies_become_outcomes() {
        let ok = outcome(&json!({"ok": true, "doneMs": 2500,
            "stats": {"bytesFromPeers": 100, "bytesFromOrigin": 7}}));
        assert_eq!(ok.done_secs, Some(2.5));
        assert_eq!((ok.from_peers, ok.from_origin), (100, 7));
        assert!(ok.error.is_none());
        let failed =
            outcome(&json!({"ok": false, "error": "Timeout 30000ms exceeded.\ncall log: …"}));
        assert_eq!(failed.done_secs, None);
        assert_eq!(failed.error.as_deref(), Some("Timeout 30000ms exceeded."));
    }
}
