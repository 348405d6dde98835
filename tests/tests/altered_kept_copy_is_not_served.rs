//! A kept copy is served only if its bytes still have the digest the
//! signed manifest gives: with the origin down, an image and a page whose
//! kept bytes were altered in Cache Storage (here through the page's own
//! `caches` API, as any script of the site's origin could) are not served
//! and are evicted; the untouched images still are, byte for byte.

use std::time::Duration;

use peerhost_tests::browser::{Browser, browser_tests_enabled};
use peerhost_tests::check::images_match_files;
use peerhost_tests::server::TestServer;
use peerhost_tests::worker::{KEPT, kept_paths, wait_kept, wait_true};
use sha2::{Digest as _, Sha256};

#[test]
fn altered_kept_copy_is_not_served() {
    if !browser_tests_enabled("altered_kept_copy_is_not_served") {
        return;
    }
    let server = TestServer::demo();
    let base = server.url("");
    let mut browser = Browser::launch();
    browser.open("a");
    browser.visit_via_worker("a", &base, "/about.html", "/plates.html");
    assert_eq!(browser.images("a").len(), 5);
    for path in [
        "/plates.html",
        "/about.html",
        "/img/lichen.jpg",
        "/img/dusk-ridges.jpg",
    ] {
        wait_kept(&mut browser, "a", path);
    }

    // Someone rewrites two kept copies: the lichen plate becomes another
    // plate (a picture that renders, with one byte changed) and the about
    // page another page.
    browser.eval(
        "a",
        &format!(
            "caches.open('{KEPT}').then(c => Promise.all([
               c.match('/img/dusk-ridges.jpg').then(r => r.arrayBuffer()).then(b => {{
                 const bytes = new Uint8Array(b); bytes[bytes.length - 1] ^= 1;
                 return c.put('/img/lichen.jpg', new Response(bytes, {{headers: {{'content-type': 'image/jpeg'}}}}));
               }}),
               c.put('/about.html', new Response('<!doctype html><title>Tampered</title><p>not the published page</p>',
                 {{headers: {{'content-type': 'text/html'}}}})),
             ])).then(() => true)"
        ),
    );

    server.set_origin_down(true);
    // The page: not the altered copy. (The open page's peerhost still
    // holds the verified about page and answers for it.)
    browser.goto("a", &server.url("/about.html"));
    let html = browser.eval("a", "document.documentElement.outerHTML");
    let html = html.as_str().unwrap_or("");
    assert!(!html.contains("Tampered"), "the altered page was served");
    let title = browser.eval("a", "document.title");
    let title = title.as_str().unwrap_or("");
    assert!(
        title.starts_with("About") || title.starts_with("Limited mode"),
        "{title}"
    );

    // The plates page: four plates from their kept copies; the altered
    // one is not served — either nothing (no peer, origin down) or the
    // published plate, if the page's peerhost still holds it verified.
    let lichen = hex(&Sha256::digest(
        std::fs::read(server.site_dir().join("img/lichen.jpg")).expect("lichen"),
    ));
    browser.goto("a", &server.url("/plates.html"));
    let images = browser.images("a");
    let (altered, good): (Vec<_>, Vec<_>) = images
        .into_iter()
        .partition(|i| i["path"] == "/img/lichen.jpg");
    assert_eq!(good.len(), 4, "{good:?}");
    images_match_files(&server.site_dir(), &good);
    assert!(
        altered.iter().all(|i| i["naturalWidth"].as_u64().unwrap_or(0) == 0
            || i["sha256"] == lichen.as_str()),
        "the altered plate was served: {altered:?}"
    );
    let direct = browser.eval(
        "a",
        "fetch('/img/lichen.jpg').then(async r => r.status === 200 ? Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', await r.arrayBuffer()))).map(x => x.toString(16).padStart(2, '0')).join('') : 'status ' + r.status)",
    );
    let direct = direct.as_str().unwrap_or("");
    assert!(
        direct.starts_with("status ") || direct == lichen,
        "the altered plate was served to fetch(): {direct}"
    );
    // Evicted: nothing altered is kept any more (what the page verified
    // since, e.g. the about page it just showed, may be kept again).
    let kept_ok = format!(
        "caches.open('{KEPT}').then(c => Promise.all([c.match('/img/lichen.jpg'), c.match('/about.html')]))
           .then(async ([l, a]) => {{
             const hex = (b) => Array.from(new Uint8Array(b)).map((x) => x.toString(16).padStart(2, '0')).join('');
             const lichenOk = !l || hex(await crypto.subtle.digest('SHA-256', await l.arrayBuffer())) === '{lichen}';
             const aboutOk = !a || !(await a.text()).includes('Tampered');
             return lichenOk && aboutOk;
           }})"
    );
    wait_true(&mut browser, "a", &kept_ok, Duration::from_secs(10)).unwrap_or_else(|e| {
        panic!(
            "an altered copy is still kept: {e} {:?}",
            kept_paths(&mut browser, "a")
        )
    });
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
