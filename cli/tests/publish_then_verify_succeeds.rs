//! A published directory verifies; publishing again bumps the version;
//! `--version` and `--lifetime` are honoured and checked.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;

use common::{keygen, manifest, publish, verify, write_site};
use peerhost_core::manifest::{DEFAULT_LIFETIME_SECS, DEFAULT_PIECE_SIZE};

#[test]
fn publish_then_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write_site(&site);
    let (key, site_key) = keygen(tmp.path());

    let r = publish(&site, &key, &[]);
    assert!(r.ok(), "{r:#?}");
    assert!(r.stdout.contains(&site_key), "{}", r.stdout);
    assert!(r.stdout.contains("version:  1"), "{}", r.stdout);
    assert!(r.stdout.contains("assets:   5"), "{}", r.stdout);

    let path = site.join("peerhost.json");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let m = manifest(&site);
    let paths: Vec<&str> = m.assets.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/about.html",
            "/css/site.css",
            "/img/big.bin",
            "/img/empty.txt",
            "/index.html"
        ],
        "sorted, hidden files and the manifest itself left out"
    );
    assert_eq!(m.version, 1);
    assert_eq!(m.site_key.to_string(), site_key);
    assert_eq!(m.expires_at - m.issued_at, DEFAULT_LIFETIME_SECS);
    let (_, css) = m.asset("/css/site.css").unwrap();
    assert_eq!(css.content_type, "text/css");
    let (_, html) = m.asset("/index.html").unwrap();
    assert_eq!(html.content_type, "text/html");
    let (_, big) = m.asset("/img/big.bin").unwrap();
    assert_eq!(big.piece_size, DEFAULT_PIECE_SIZE);
    assert_eq!(big.pieces.len(), 7);
    assert_eq!(big.size, 6 * 16384 + 1000);

    let r = verify(&site, &[]);
    assert!(r.ok(), "{r:#?}");
    assert!(r.stdout.starts_with("ok: 5 assets"), "{}", r.stdout);
    let r = verify(&site, &["--site-key", &site_key]);
    assert!(r.ok(), "{r:#?}");
}

#[test]
fn verify_with_another_site_key_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write_site(&site);
    let (key, _) = keygen(tmp.path());
    assert!(publish(&site, &key, &[]).ok());
    let other = tmp.path().join("other");
    fs::create_dir(&other).unwrap();
    let (_, other_key) = keygen(&other);
    let r = verify(&site, &["--site-key", &other_key]);
    let line = r.one_line_error();
    assert!(line.contains("expected"), "{line}");
}

#[test]
fn republish_bumps_the_version_and_version_must_increase() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write_site(&site);
    let (key, _) = keygen(tmp.path());

    assert!(publish(&site, &key, &[]).ok());
    assert_eq!(manifest(&site).version, 1);
    fs::write(site.join("new.html"), "<p>new page</p>").unwrap();
    let r = publish(&site, &key, &[]);
    assert!(r.ok(), "{r:#?}");
    assert!(r.stdout.contains("version:  2 (was 1)"), "{}", r.stdout);
    let m = manifest(&site);
    assert_eq!(m.version, 2);
    assert!(m.asset("/new.html").is_some());

    let r = publish(&site, &key, &["--version", "10"]);
    assert!(r.ok(), "{r:#?}");
    assert_eq!(manifest(&site).version, 10);

    let before = fs::read(site.join("peerhost.json")).unwrap();
    let r = publish(&site, &key, &["--version", "10"]);
    let line = r.one_line_error();
    assert!(
        line.contains("not greater than the current version 10"),
        "{line}"
    );
    assert_eq!(fs::read(site.join("peerhost.json")).unwrap(), before);

    assert!(publish(&site, &key, &[]).ok());
    assert_eq!(manifest(&site).version, 11);
    assert!(verify(&site, &[]).ok());
}

#[test]
fn another_sites_manifest_restarts_at_version_one() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write_site(&site);
    let (key_a, _) = keygen(tmp.path());
    let other = tmp.path().join("b");
    fs::create_dir(&other).unwrap();
    let (key_b, site_key_b) = keygen(&other);

    assert!(publish(&site, &key_a, &["--version", "5"]).ok());
    let r = publish(&site, &key_b, &[]);
    assert!(r.ok(), "{r:#?}");
    assert!(r.stderr.contains("another site"), "{}", r.stderr);
    let m = manifest(&site);
    assert_eq!((m.version, m.site_key.to_string()), (1, site_key_b));
}

#[test]
fn lifetime_is_parsed_and_capped() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write_site(&site);
    let (key, _) = keygen(tmp.path());

    assert!(publish(&site, &key, &["--lifetime", "7d"]).ok());
    let m = manifest(&site);
    assert_eq!(m.expires_at - m.issued_at, 7 * 86_400);
    assert!(publish(&site, &key, &["--lifetime", "3600s"]).ok());
    let m = manifest(&site);
    assert_eq!(m.expires_at - m.issued_at, 3600);

    let r = publish(&site, &key, &["--lifetime", "8d"]);
    assert_eq!(r.code, Some(2), "a usage error: {r:#?}");
    assert!(
        r.stderr.contains("exceeds the maximum of 7d"),
        "{}",
        r.stderr
    );
    assert_eq!(manifest(&site).version, 2, "nothing written");
}

#[test]
fn symlinks_are_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write_site(&site);
    let outside = tmp.path().join("secret.txt");
    fs::write(&outside, "outside the site").unwrap();
    std::os::unix::fs::symlink(&outside, site.join("link.txt")).unwrap();
    // Not to tmp itself: that holds the key, and a link to it is refused
    // (publish_refuses_secret_keys.rs).
    let outside_dir = tmp.path().join("elsewhere");
    fs::create_dir(&outside_dir).unwrap();
    fs::write(outside_dir.join("a.txt"), "outside the site").unwrap();
    std::os::unix::fs::symlink(&outside_dir, site.join("linkdir")).unwrap();
    let (key, _) = keygen(tmp.path());
    let r = publish(&site, &key, &[]);
    assert!(r.ok(), "{r:#?}");
    assert!(
        r.stderr.contains("skipped link.txt: symbolic link"),
        "{}",
        r.stderr
    );
    let m = manifest(&site);
    assert!(m.asset("/link.txt").is_none());
    assert!(m.assets.iter().all(|a| !a.path.starts_with("/linkdir")));
}
