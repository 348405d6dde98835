//! User errors end in one `error: …` line, exit code 1, no panic, and
//! nothing half-written: no manifest appears and an existing one survives.

mod common;

use std::fs;

use common::{keygen, publish, verify, write_site};

#[test]
fn publishing_a_missing_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, _) = keygen(tmp.path());
    let missing = tmp.path().join("nope");
    let line = publish(&missing, &key, &[]).one_line_error().to_owned();
    assert!(
        line.contains("does not exist") && line.contains("nope"),
        "{line}"
    );
    assert!(!missing.exists());
}

#[test]
fn a_corrupt_key_file_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write_site(&site);
    let key = tmp.path().join("bad.key");

    fs::write(&key, "peerhost-site-secret-key/1\nseed: not-base64!\n").unwrap();
    let line = publish(&site, &key, &[]).one_line_error().to_owned();
    assert!(line.contains("bad.key") && line.contains("seed"), "{line}");
    assert!(!site.join("peerhost.json").exists());

    fs::write(&key, [0xff, 0xfe, 0x00]).unwrap();
    let line = publish(&site, &key, &[]).one_line_error().to_owned();
    assert!(line.contains("not a valid peerhost key file"), "{line}");

    fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
    let line = publish(&site, &key, &[]).one_line_error().to_owned();
    assert!(line.contains("first line"), "{line}");

    let line = publish(&site, &tmp.path().join("absent.key"), &[])
        .one_line_error()
        .to_owned();
    assert!(line.contains("cannot read key file"), "{line}");
    assert!(!site.join("peerhost.json").exists());
    // No temporary files left in the site either.
    assert!(fs::read_dir(&site).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".peerhost-tmp")
    }));
}

#[test]
fn a_failed_publish_keeps_the_old_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write_site(&site);
    let (key, _) = keygen(tmp.path());
    assert!(publish(&site, &key, &[]).ok());
    let before = fs::read(site.join("peerhost.json")).unwrap();

    // A file name that cannot be a URL path stops the publish.
    fs::write(site.join("my photo.jpg"), "x").unwrap();
    let line = publish(&site, &key, &[]).one_line_error().to_owned();
    assert!(
        line.contains("my photo.jpg") && line.contains("forbidden character"),
        "{line}"
    );
    assert_eq!(fs::read(site.join("peerhost.json")).unwrap(), before);
    assert!(verify(&site, &[]).ok());
}

#[test]
fn a_corrupt_existing_manifest_needs_an_explicit_version() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write_site(&site);
    let (key, _) = keygen(tmp.path());
    fs::write(site.join("peerhost.json"), "{ not json").unwrap();

    let line = publish(&site, &key, &[]).one_line_error().to_owned();
    assert!(line.contains("--version"), "{line}");
    assert_eq!(
        fs::read_to_string(site.join("peerhost.json")).unwrap(),
        "{ not json"
    );

    assert!(publish(&site, &key, &["--version", "7"]).ok());
    assert!(verify(&site, &[]).ok());
}

#[test]
fn verify_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let line = verify(&tmp.path().join("nope"), &[])
        .one_line_error()
        .to_owned();
    assert!(line.contains("does not exist"), "{line}");

    let line = verify(tmp.path(), &[]).one_line_error().to_owned();
    assert!(line.contains("peerhost.json not found"), "{line}");

    let file = tmp.path().join("a-file");
    fs::write(&file, "x").unwrap();
    let line = verify(&file, &[]).one_line_error().to_owned();
    assert!(line.contains("is not a directory"), "{line}");
    fs::remove_file(&file).unwrap();

    fs::write(tmp.path().join("peerhost.json"), "{\"format\": 3}").unwrap();
    let line = verify(tmp.path(), &[]).one_line_error().to_owned();
    assert!(line.contains("malformed manifest"), "{line}");
}

#[test]
fn an_expired_manifest_is_an_error() {
    use peerhost_core::time::UnixTime;
    use peerhost_site::publish::{Options, publish as publish_lib};

    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write_site(&site);
    let (key, _) = keygen(tmp.path());
    let secret = peerhost_site::keyfile::read_key_file(&key).unwrap();
    // Published a day and a bit ago with a one-day lifetime.
    let now = peerhost_site::clock::unix_now().0;
    let opts = Options {
        lifetime_secs: 86_400,
        version: None,
        now: UnixTime(now - 90_000),
        key_file: None,
    };
    publish_lib(&site, &secret, &opts, &indicatif::ProgressBar::hidden()).unwrap();
    let line = verify(&site, &[]).one_line_error().to_owned();
    assert!(line.contains("expired"), "{line}");
}
