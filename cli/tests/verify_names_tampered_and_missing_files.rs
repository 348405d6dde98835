//! `peerhost verify` checks every byte: one flipped byte names the file
//! and the piece, a deleted file is named as missing, and the exit code
//! says it failed.

mod common;

use std::fs;

use common::{keygen, publish, verify, write_site};

fn published() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let site = tmp.path().join("site");
    write_site(&site);
    let (key, _) = keygen(tmp.path());
    assert!(publish(&site, &key, &[]).ok());
    (tmp, site)
}

#[test]
fn a_flipped_byte_names_the_file_and_piece() {
    let (_tmp, site) = published();
    let path = site.join("img/big.bin");
    let mut bytes = fs::read(&path).unwrap();
    // A byte in the third piece (pieces are numbered from 1 in messages).
    bytes[2 * 16384 + 5] ^= 0x01;
    fs::write(&path, bytes).unwrap();

    let r = verify(&site, &[]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert_eq!(
        r.stdout.trim(),
        "tampered: /img/big.bin (piece 3 of 7 differs, from byte 32768)"
    );
    assert!(r.stderr.contains("1 of 5 assets"), "{}", r.stderr);
}

#[test]
fn a_deleted_file_is_missing() {
    let (_tmp, site) = published();
    fs::remove_file(site.join("css/site.css")).unwrap();
    let r = verify(&site, &[]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    assert_eq!(r.stdout.trim(), "missing: /css/site.css");
}

#[test]
fn every_problem_gets_its_own_line() {
    let (_tmp, site) = published();
    fs::remove_file(site.join("index.html")).unwrap();
    fs::write(site.join("about.html"), "<p>defaced</p>").unwrap();
    let big = site.join("img/big.bin");
    let mut bytes = fs::read(&big).unwrap();
    bytes[0] ^= 0xff;
    bytes[6 * 16384] ^= 0xff;
    fs::write(&big, bytes).unwrap();

    let r = verify(&site, &[]);
    assert_eq!(r.code, Some(1), "{r:#?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(
        lines[0].starts_with("tampered: /about.html ("),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("bytes, the manifest says"),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[1],
        "tampered: /img/big.bin (2 of 7 pieces differ, first piece 1 from byte 0)"
    );
    assert_eq!(lines[2], "missing: /index.html");
}

#[test]
fn a_tampered_manifest_fails_its_signature() {
    let (_tmp, site) = published();
    let path = site.join("peerhost.json");
    let text = fs::read_to_string(&path).unwrap();
    // Claim a later version: the JSON still parses, the signature breaks.
    let tampered = text.replacen("\"version\": 1,", "\"version\": 2,", 1);
    assert_ne!(tampered, text);
    fs::write(&path, tampered).unwrap();
    let line = verify(&site, &[]).one_line_error().to_owned();
    assert!(line.contains("peerhost.json"), "{line}");
    assert!(line.contains("signature does not verify"), "{line}");
}
