//! The Content-Security-Policy docs/browser.md gives a site is enough for
//! peerhost (loader, module, tracker, worker) with no violation reported,
//! and `'wasm-unsafe-eval'` is really needed: without it the tag stands
//! down and the page loads from the origin as without it.

use std::time::Duration;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use peerhost_site::demo::DemoOptions;
use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::check::images_match_files;
use peerhost_tests::server::TestServer;
use peerhost_tests::worker::wait_true;

/// The policy of docs/browser.md, with the tracker on the site's origin.
const POLICY: &str = "script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; worker-src 'self'";
const WITHOUT_WASM: &str = "script-src 'self'; connect-src 'self'; worker-src 'self'";
const PLATES: &str = include_str!("../../demo-site/plates.html");

fn page_with(policy: &'static str) -> axum::routing::MethodRouter {
    get(move || async move {
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, policy),
            ],
            PLATES,
        )
            .into_response()
    })
}

#[test]
fn content_security_policy_lets_peerhost_run() {
    if !browser_tests_enabled("content_security_policy_lets_peerhost_run") {
        return;
    }
    let server = TestServer::start(DemoOptions {
        extra_routes: Some(
            axum::Router::new()
                .route("/csp.html", page_with(POLICY))
                .route("/csp-no-wasm.html", page_with(WITHOUT_WASM)),
        ),
        ..Default::default()
    });
    let mut browser = Browser::launch();

    browser.open("a");
    browser.goto("a", &server.url("/csp.html"));
    wait_true(
        &mut browser,
        "a",
        "window.peerhost && peerhost.stats().version > 0 && peerhost.stats().announced",
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| panic!("peerhost did not run: {e} {:#?}", browser.logs("a")));
    // (Polled with `eval`, which the policy does not govern: the browser
    // driver's own wait evaluates a string in the page, which it forbids.)
    wait_true(
        &mut browser,
        "a",
        "navigator.serviceWorker.controller !== null",
        Duration::from_secs(20),
    )
    .expect("the worker registered and controls the page");
    images_match_files(&server.site_dir(), &browser.images("a"));
    let logs = browser.logs("a");
    assert!(
        !logs.iter().any(|l| l.contains("Content Security Policy")),
        "{logs:#?}"
    );

    browser.open("b");
    browser.goto("b", &server.url("/csp-no-wasm.html"));
    assert_eq!(browser.eval("b", "peerhost.ready"), false);
    images_match_files(&server.site_dir(), &browser.images("b"));
    let reason = browser.eval("b", "peerhost.stats().reason");
    let reason = reason.as_str().unwrap_or("");
    assert!(
        reason.contains("unsafe-eval") || reason.contains("Content Security Policy"),
        "the refusal is the policy's: {reason}"
    );
}
