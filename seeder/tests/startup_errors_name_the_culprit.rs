//! Every reason the seeder cannot start is one line that names the culprit:
//! a missing site directory, a manifest signed by another key, a tampered
//! manifest, an origin serving another site's manifest, a bad tracker URL.
//! No WebRTC: each case fails before anything connects.

mod common;

use common::{Origin, TestSite, args, sign, with_signature_of};
use peerhost_seeder::Seeder;

async fn error_of(argv: &[&str]) -> String {
    let e = Seeder::start(&args(argv))
        .await
        .expect_err("the seeder must refuse to start");
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "not one line: {msg:?}");
    msg
}

#[tokio::test]
async fn startup_errors_name_the_culprit() {
    let tracker = "ws://127.0.0.1:9/";
    let site = TestSite::generate(3, &[40_000, 5_000], 1);
    let other = TestSite::generate(4, &[1_000], 1);
    let tmp = tempfile::tempdir().unwrap();

    // A site directory that does not exist.
    let missing = tmp.path().join("nope");
    let msg = error_of(&["--site", missing.to_str().unwrap(), "--tracker", tracker]).await;
    assert!(
        msg.contains("nope") && msg.contains("does not exist"),
        "{msg}"
    );

    // A directory without peerhost.json.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let msg = error_of(&["--site", empty.to_str().unwrap(), "--tracker", tracker]).await;
    assert!(msg.contains("peerhost.json"), "{msg}");

    // A published directory, trusted under another site's key.
    let good = tmp.path().join("good");
    std::fs::create_dir(&good).unwrap();
    site.write_to(&good);
    let msg = error_of(&[
        "--site",
        good.to_str().unwrap(),
        "--site-key",
        &other.key(),
        "--tracker",
        tracker,
    ])
    .await;
    assert!(msg.contains("manifest refused"), "{msg}");
    assert!(
        msg.contains(&site.key()) && msg.contains(&other.key()),
        "{msg}"
    );

    // A directory whose manifest's signature does not verify.
    let tampered = tmp.path().join("tampered");
    std::fs::create_dir(&tampered).unwrap();
    site.write_to(&tampered);
    let v2 = sign(&site.secret, &site.files, 2);
    std::fs::write(
        tampered.join("peerhost.json"),
        with_signature_of(&site.signed, &v2),
    )
    .unwrap();
    let msg = error_of(&["--site", tampered.to_str().unwrap(), "--tracker", tracker]).await;
    assert!(msg.contains("signature does not verify"), "{msg}");

    // A mirror whose origin serves a manifest signed by another key.
    let origin = Origin::start(&other).await;
    let cache = tmp.path().join("cache");
    let msg = error_of(&[
        "--manifest-url",
        &origin.url("/peerhost.json"),
        "--site-key",
        &site.key(),
        "--cache",
        cache.to_str().unwrap(),
        "--tracker",
        tracker,
    ])
    .await;
    assert!(msg.contains("/peerhost.json: manifest refused"), "{msg}");
    assert!(msg.contains(&other.key()), "{msg}");

    // A mirror whose origin is unreachable, with nothing cached.
    let msg = error_of(&[
        "--manifest-url",
        "http://127.0.0.1:9/peerhost.json",
        "--site-key",
        &site.key(),
        "--cache",
        cache.to_str().unwrap(),
        "--tracker",
        tracker,
    ])
    .await;
    assert!(msg.contains("cannot fetch the manifest"), "{msg}");

    // The same over https: the TLS client is built (no panic) and the cause named.
    let msg = error_of(&[
        "--manifest-url",
        "https://127.0.0.1:9/peerhost.json",
        "--site-key",
        &site.key(),
        "--cache",
        cache.to_str().unwrap(),
        "--tracker",
        "wss://127.0.0.1:9/",
    ])
    .await;
    assert!(msg.contains("cannot fetch the manifest"), "{msg}");

    // Not a WebSocket URL.
    let msg = error_of(&[
        "--site",
        good.to_str().unwrap(),
        "--tracker",
        "http://127.0.0.1:9/",
    ])
    .await;
    assert!(msg.contains("ws://"), "{msg}");

    // Nothing to do.
    let msg = error_of(&["--tracker", tracker]).await;
    assert!(msg.contains("nothing to seed"), "{msg}");
}
