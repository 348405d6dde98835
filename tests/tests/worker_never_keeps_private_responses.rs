//! The Service Worker keeps only what is public and published: a listed
//! page the origin answers with a visitor's own content (a `Set-Cookie`
//! session page whose bytes are not the published file), a listed page
//! served `Cache-Control: no-store`, and a cookie-bearing API response are
//! never kept, and with the origin down none of them is replayed — while
//! the listed public page and its images still are.

use std::time::Duration;

use axum::http::{HeaderMap, header};
use axum::response::IntoResponse;
use axum::routing::get;
use peerhost_site::demo::DemoOptions;
use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::check::images_match_files;
use peerhost_tests::server::TestServer;
use peerhost_tests::worker::{keep_round_trip, kept_paths, wait_kept};

/// The published (signed-out) account page, what the manifest lists.
const ACCOUNT_PUBLIC: &str =
    "<!doctype html><title>Account</title><p id=\"who\">Sign in to see your account.</p>\n";
/// The page listed and served with `no-store`.
const FRESH: &str = "<!doctype html><title>Fresh</title><p>Today's figures.</p>\n";

fn signed_in(headers: &HeaderMap) -> bool {
    headers
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.contains("session=alice"))
}

/// What a site with accounts answers: a personal page under a published
/// path (only `Set-Cookie`, which the worker cannot even see, marks it),
/// a `no-store` page and a private API.
fn site_routes() -> axum::Router {
    axum::Router::new()
        .route(
            "/account.html",
            get(|headers: HeaderMap| async move {
                let body = if signed_in(&headers) {
                    "<!doctype html><title>Account of alice</title><p id=\"who\">Signed in as alice</p>\n"
                } else {
                    ACCOUNT_PUBLIC
                };
                (
                    [
                        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                        (header::SET_COOKIE, "session=alice; Path=/"),
                    ],
                    body,
                )
                    .into_response()
            }),
        )
        .route(
            "/fresh.html",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                        (header::CACHE_CONTROL, "no-store"),
                    ],
                    FRESH,
                )
                    .into_response()
            }),
        )
        .route(
            "/api/me",
            get(|headers: HeaderMap| async move {
                let user = if signed_in(&headers) { "alice" } else { "" };
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::CACHE_CONTROL, "private"),
                        (header::SET_COOKIE, "session=alice; Path=/"),
                    ],
                    format!("{{\"user\":\"{user}\"}}"),
                )
                    .into_response()
            }),
        )
}

#[test]
fn worker_never_keeps_private_responses() {
    if !browser_tests_enabled("worker_never_keeps_private_responses") {
        return;
    }
    let server = TestServer::start(DemoOptions {
        extra_routes: Some(site_routes()),
        ..Default::default()
    });
    // Both pages are published files, so the manifest lists them.
    let v2 = server.republish(&[
        ("account.html", ACCOUNT_PUBLIC.as_bytes().to_vec()),
        ("fresh.html", FRESH.as_bytes().to_vec()),
    ]);
    let listed: Vec<&str> = v2
        .manifest()
        .assets
        .iter()
        .map(|a| a.path.as_str())
        .collect();
    assert!(listed.contains(&"/account.html") && listed.contains(&"/fresh.html"));

    let base = server.url("");
    let mut browser = Browser::launch();
    browser.open("a");
    browser.visit_via_worker("a", &base, "/about.html", "/plates.html");
    assert_eq!(browser.images("a").len(), 5);
    for path in ["/plates.html", "/img/lichen.jpg", "/style.css"] {
        wait_kept(&mut browser, "a", path);
    }

    // Signed in, with the origin up: the visitor's own pages work.
    browser.eval("a", "document.cookie = 'session=alice; path=/'");
    browser.goto("a", &server.url("/account.html"));
    let who = browser.eval("a", "document.getElementById('who').textContent");
    assert_eq!(who, "Signed in as alice");
    browser.goto("a", &server.url("/fresh.html"));
    assert_eq!(browser.eval("a", "document.title"), "Fresh");
    let me = browser.eval("a", "fetch('/api/me').then(r => r.json())");
    assert_eq!(me["user"], "alice", "{me}");

    // Whatever the worker would keep of those responses is kept by now.
    keep_round_trip(&mut browser, "a", &server.url("/about.html"), "/about.html");
    let kept = kept_paths(&mut browser, "a");
    for private in ["/account.html", "/fresh.html", "/api/me"] {
        assert!(
            !kept.iter().any(|p| p == private),
            "{private} must not be kept: {kept:?}"
        );
    }

    server.set_origin_down(true);
    browser.goto("a", &server.url("/account.html"));
    let text = browser.eval("a", "document.title + ' | ' + document.body.innerText");
    let text = text.as_str().unwrap_or("");
    assert!(
        !text.contains("alice"),
        "the personal page was replayed: {text}"
    );
    assert!(text.starts_with("Limited mode"), "{text}");

    browser.goto("a", &server.url("/fresh.html"));
    let title = browser.eval("a", "document.title");
    assert!(
        title.as_str().unwrap_or("").starts_with("Limited mode"),
        "the no-store page was replayed: {title}"
    );

    let api = browser.eval(
        "a",
        "fetch('/api/me').then(async r => ({status: r.status, limited: r.headers.get('x-peerhost-limited'), body: await r.text()}))",
    );
    assert_eq!(api["status"], 503, "{api}");
    assert_eq!(api["limited"], "1", "{api}");
    assert!(
        !api["body"].as_str().unwrap_or("").contains("alice"),
        "{api}"
    );

    // The public, listed part is still served, byte for byte.
    browser.goto("a", &server.url("/plates.html"));
    let title = browser.eval("a", "document.title");
    assert!(
        title.as_str().unwrap_or("").contains("The Plates"),
        "{title}"
    );
    let images = browser.images("a");
    assert_eq!(images.len(), 5, "{images:?}");
    images_match_files(&server.site_dir(), &images);
    browser
        .wait(
            "a",
            "window.peerhost && peerhost.stats().version === 2",
            Duration::from_secs(20),
        )
        .expect("peerhost starts from the kept manifest");
}
