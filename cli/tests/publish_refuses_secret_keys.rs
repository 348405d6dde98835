//! A site directory holding a secret key file is never published: not the
//! `--key` file itself, not a renamed copy, not one in a hidden or ignored
//! directory, not a hard or symbolic link to it. The web server serves the
//! whole directory, so the refusal covers what the manifest would leave out
//! too. `verify` reports a key that appeared after publishing.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{keygen, manifest, publish, verify, write_site};

/// Publishing `site` with `key` fails with one line naming `name`, and
/// writes no manifest.
fn refused(site: &Path, key: &Path, name: &str) {
    let r = publish(site, key, &[]);
    let line = r.one_line_error();
    assert!(line.contains("refusing to publish"), "{line}");
    assert!(line.contains("secret key"), "{line}");
    assert!(line.contains(name), "names {name}: {line}");
    assert!(!site.join("peerhost.json").exists(), "nothing written");
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write_site(&site);
    let keys = tmp.path().join("keys");
    fs::create_dir(&keys).unwrap();
    let (key, _) = keygen(&keys);
    (tmp, site, key)
}

#[test]
fn the_key_file_itself_inside_the_site() {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write_site(&site);
    let (key, _) = keygen(&site);
    refused(&site, &key, "site.key (the --key file)");
    // Also when DIR is given through a symbolic link.
    let alias = tmp.path().join("alias");
    std::os::unix::fs::symlink(&site, &alias).unwrap();
    refused(&alias, &key, "site.key");
}

#[test]
fn a_renamed_copy_anywhere_in_the_tree() {
    let (_tmp, site, key) = setup();
    let copy = site.join("img/logo.txt");
    fs::copy(&key, &copy).unwrap();
    refused(&site, &key, "img/logo.txt (a peerhost secret key file)");
    fs::remove_file(&copy).unwrap();

    // In a hidden directory, which is never published but is served.
    fs::create_dir(site.join(".backup")).unwrap();
    fs::copy(&key, site.join(".backup/old")).unwrap();
    refused(&site, &key, ".backup/old");
    fs::remove_dir_all(site.join(".backup")).unwrap();

    // In a directory .peerhostignore excludes.
    fs::write(site.join(".peerhostignore"), "private/\n").unwrap();
    fs::create_dir(site.join("private")).unwrap();
    fs::copy(&key, site.join("private/k")).unwrap();
    refused(&site, &key, "private/k");
    fs::remove_dir_all(site.join("private")).unwrap();

    // Another key (not the one in use), CRLF, another format version, and
    // a large tail: only the first line counts.
    let mut other = b"peerhost-site-secret-key/2\r\nseed: x\r\n".to_vec();
    other.extend(vec![b'a'; 1 << 20]);
    fs::write(site.join("css/other.css"), other).unwrap();
    refused(&site, &key, "css/other.css");
    fs::remove_file(site.join("css/other.css")).unwrap();

    assert!(publish(&site, &key, &[]).ok(), "clean again");
}

#[test]
fn hard_and_symbolic_links_to_the_key() {
    let (tmp, site, key) = setup();
    fs::hard_link(&key, site.join("hard.txt")).unwrap();
    refused(&site, &key, "hard.txt (a hard link to the --key file)");
    fs::remove_file(site.join("hard.txt")).unwrap();

    std::os::unix::fs::symlink(&key, site.join("soft.txt")).unwrap();
    refused(&site, &key, "soft.txt (a symbolic link to the --key file)");
    fs::remove_file(site.join("soft.txt")).unwrap();

    std::os::unix::fs::symlink(tmp.path().join("keys"), site.join("keys")).unwrap();
    refused(
        &site,
        &key,
        "keys (a symbolic link to a directory holding the --key file)",
    );
    fs::remove_file(site.join("keys")).unwrap();

    assert!(publish(&site, &key, &[]).ok());
}

#[test]
fn a_normal_site_still_publishes() {
    let (_tmp, site, key) = setup();
    // Mentioning the header is fine; only a file that starts with it is a key.
    fs::write(
        site.join("docs.html"),
        "<p>A key file starts with peerhost-site-secret-key/1</p>\n",
    )
    .unwrap();
    let r = publish(&site, &key, &[]);
    assert!(r.ok(), "{r:#?}");
    assert!(manifest(&site).asset("/docs.html").is_some());
    assert!(verify(&site, &[]).ok());
}

#[test]
fn verify_reports_a_key_that_appeared_later() {
    let (_tmp, site, key) = setup();
    assert!(publish(&site, &key, &[]).ok());
    fs::create_dir(site.join(".well-known")).unwrap();
    fs::copy(&key, site.join(".well-known/k")).unwrap();
    let r = verify(&site, &[]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert!(
        r.stdout.contains("secret key: /.well-known/k"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("1 secret key file"), "{}", r.stderr);
}

#[test]
fn an_unreadable_hidden_directory_warns_but_publishes() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_tmp, site, key) = setup();
    let cache = site.join(".cache");
    fs::create_dir(&cache).unwrap();
    fs::write(cache.join("x"), "x").unwrap();
    fs::set_permissions(&cache, fs::Permissions::from_mode(0o000)).unwrap();
    let r = if fs::read_dir(&cache).is_ok() {
        // Root reads through any mode (CI runs as root): publish as
        // `nobody` instead, on a tree that user owns.
        chown_tree(_tmp.path(), NOBODY);
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_peerhost"))
            .arg("publish")
            .arg(&site)
            .arg("--key")
            .arg(&key);
        common::Run::from(cmd.output().expect("run setpriv (util-linux)"))
    } else {
        publish(&site, &key, &[])
    };
    fs::set_permissions(&cache, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(r.ok(), "{r:#?}");
    assert!(
        r.stderr
            .contains("warning: cannot check .cache for a secret key"),
        "{}",
        r.stderr
    );
}

/// The uid and gid of `nobody`.
const NOBODY: u32 = 65534;

/// Gives `dir` and everything below it to `id` (links themselves, not
/// their targets).
fn chown_tree(dir: &Path, id: u32) {
    std::os::unix::fs::lchown(dir, Some(id), Some(id)).unwrap();
    if fs::symlink_metadata(dir).unwrap().is_dir() {
        for entry in fs::read_dir(dir).unwrap() {
            chown_tree(&entry.unwrap().path(), id);
        }
    }
}
