//! `peerhost keygen` writes a private (0600) key file, prints the public
//! site key, and never overwrites an existing key without `--force`.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;

use common::{keygen, run};
use peerhost_site::keyfile;

#[test]
fn keygen_writes_a_private_key_and_prints_its_site_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, printed) = keygen(tmp.path());
    let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let secret = keyfile::read_key_file(&key).unwrap();
    assert_eq!(printed, secret.site_key().to_string());
    assert_eq!(printed.len(), 43, "base64url of 32 bytes");
    let text = fs::read_to_string(&key).unwrap();
    assert!(text.starts_with("peerhost-site-secret-key/1\n"), "{text}");
    // No temporary files left behind.
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn keygen_refuses_to_overwrite_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, first) = keygen(tmp.path());
    let before = fs::read(&key).unwrap();

    let r = run(["keygen".as_ref(), "--out".as_ref(), key.as_os_str()]);
    let line = r.one_line_error();
    assert!(
        line.contains("already exists") && line.contains("--force"),
        "{line}"
    );
    assert_eq!(fs::read(&key).unwrap(), before, "the old key is untouched");

    let r = run([
        "keygen".as_ref(),
        "--out".as_ref(),
        key.as_os_str(),
        "--force".as_ref(),
    ]);
    assert!(r.ok(), "{r:#?}");
    let second = r.stdout.trim();
    assert_ne!(second, first, "a fresh key");
    assert_eq!(
        keyfile::read_key_file(&key).unwrap().site_key().to_string(),
        second
    );
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn keygen_into_a_missing_directory_is_a_one_line_error() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("no/such/dir/site.key");
    let r = run(["keygen".as_ref(), "--out".as_ref(), key.as_os_str()]);
    let line = r.one_line_error();
    assert!(line.contains("site.key"), "{line}");
}
