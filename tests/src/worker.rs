//! What peerhost's Service Worker holds in a visitor's browser: the copies
//! it kept and the workers registered, read through the page's own APIs.

use std::time::{Duration, Instant};

use crate::browser::Browser;

/// Waits until the JS expression, a promise included, yields `true`,
/// polling every 100 ms for at most `timeout`. ([`Browser::wait`] does not
/// await a promise: any promise counts as truthy there.)
pub fn wait_true(
    browser: &mut Browser,
    visitor: &str,
    expr: &str,
    timeout: Duration,
) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if browser.eval(visitor, expr) == true {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(format!("still not true after {timeout:?}: {expr}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The worker's cache of kept pages and assets.
pub const KEPT: &str = "peerhost-assets";

/// Paths of the copies kept in [`KEPT`], sorted.
pub fn kept_paths(browser: &mut Browser, visitor: &str) -> Vec<String> {
    let v = browser.eval(
        visitor,
        &format!("caches.open('{KEPT}').then(c => c.keys()).then(ks => ks.map(r => new URL(r.url).pathname).sort())"),
    );
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (bounded) until `path` is kept.
pub fn wait_kept(browser: &mut Browser, visitor: &str, path: &str) {
    wait_true(
        browser,
        visitor,
        &format!("caches.open('{KEPT}').then(c => c.match('{path}')).then(Boolean)"),
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| panic!("{path} was never kept for {visitor}: {e}"));
}

/// A round trip through the worker's keeping: drops the kept copy of the
/// listed page `page`, views it again and waits until it is kept again.
/// Responses the worker saw before it have been kept (or not) by then.
pub fn keep_round_trip(browser: &mut Browser, visitor: &str, url: &str, page: &str) {
    browser.eval(
        visitor,
        &format!("caches.open('{KEPT}').then(c => c.delete('{page}'))"),
    );
    browser.goto(visitor, url);
    wait_kept(browser, visitor, page);
}

/// Script URLs of the Service Workers registered for the site, sorted.
pub fn registered_scripts(browser: &mut Browser, visitor: &str) -> Vec<String> {
    let v = browser.eval(
        visitor,
        "navigator.serviceWorker.getRegistrations().then(rs => rs.map(r => { const w = r.active || r.waiting || r.installing; return w ? new URL(w.scriptURL).pathname : '(none)'; }).sort())",
    );
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
