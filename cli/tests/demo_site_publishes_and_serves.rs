//! The demo site publishes and verifies like any site, and `peerhost demo`
//! serves it, signed with the demo key, until it is interrupted.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{copy_tree, keygen, manifest, publish, verify};
use peerhost_core::manifest::SignedManifest;

#[test]
fn the_demo_site_publishes_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo-site"),
        &site,
    );
    let _ = std::fs::remove_file(site.join("peerhost.json"));
    let (key, _) = keygen(tmp.path());
    let r = publish(&site, &key, &[]);
    assert!(r.ok(), "{r:#?}");
    let r = verify(&site, &[]);
    assert!(r.ok(), "{r:#?}");

    let m = manifest(&site);
    for page in ["/index.html", "/plates.html", "/about.html", "/style.css"] {
        assert!(m.asset(page).is_some(), "{page} missing from the demo site");
    }
    let images: Vec<_> = m
        .assets
        .iter()
        .filter(|a| a.content_type == "image/jpeg")
        .collect();
    assert!(images.len() >= 5, "{} images", images.len());
    assert!(
        images.iter().all(|a| a.size < 1_100_000),
        "each image under ~1 MB"
    );
    assert!(images.iter().map(|a| a.size).sum::<u64>() >= 2_000_000);

    // One flipped byte in a published demo image: verify names that file.
    let img = site.join("img/lichen.jpg");
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[100_000] ^= 1;
    std::fs::write(&img, bytes).unwrap();
    let r = verify(&site, &[]);
    assert!(!r.ok(), "verify must fail after tampering");
    let out = format!("{}{}", r.stdout, r.stderr);
    assert!(out.contains("tampered: /img/lichen.jpg"), "{out}");
    assert_eq!(out.matches("tampered:").count(), 1, "only that file: {out}");
}

/// Kills the demo if the test fails before stopping it.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn peerhost_demo_serves_the_signed_site_until_interrupted() {
    let child = common::peerhost()
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut demo = Demo(child);
    let stdout = demo.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    let url = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("no URL printed ({e}); got {printed:?}"));
        if let Some(url) = line.strip_prefix("Open ") {
            break url.to_owned();
        }
        printed.push(line);
    };
    let site_key = peerhost_site::demo::demo_site_key().to_string();
    assert!(printed.iter().any(|l| l.contains(&site_key)), "{printed:?}");

    let index = common::get(&url).await;
    assert_eq!(index.status, 200);
    let html = String::from_utf8_lossy(&index.body);
    assert!(html.contains("data-manifest=\"/peerhost.json\""), "{html}");

    let text = common::get(&format!("{url}peerhost.json")).await.body;
    let signed = SignedManifest::from_json(&String::from_utf8(text).unwrap()).unwrap();
    signed
        .verify(
            &peerhost_site::demo::demo_site_key(),
            peerhost_site::clock::unix_now(),
        )
        .unwrap();
    let (_, img) = signed.manifest().asset("/img/lichen.jpg").unwrap();
    let bytes = common::get(&format!("{url}img/lichen.jpg")).await.body;
    assert_eq!(bytes.len() as u64, img.size);
    assert_eq!(peerhost_core::piece::Digest::of(&bytes), img.digest);

    // Ctrl-C: a graceful stop with exit code 0.
    let pid = demo.0.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::task::spawn_blocking(move || {
        let status = demo.0.wait();
        (status, demo)
    })
    .await
    .unwrap()
    .0
    .unwrap();
    assert!(status.success(), "{status}");
}
