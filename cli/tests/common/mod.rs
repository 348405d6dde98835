//! Helpers shared by the CLI's integration tests: run the real binary,
//! build small sites in temporary directories.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `peerhost` binary under test.
pub fn peerhost() -> Command {
    Command::new(env!("CARGO_BIN_EXE_peerhost"))
}

/// The result of one run, with text output.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// Asserts the run failed with exactly one `error: …` line on stderr,
    /// and returns that line.
    pub fn one_line_error(&self) -> &str {
        assert_eq!(self.code, Some(1), "expected exit 1: {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one stderr line: {self:#?}");
        assert!(lines[0].starts_with("error: "), "{self:#?}");
        assert!(!self.stderr.contains("panicked"), "{self:#?}");
        lines[0]
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `peerhost ARGS…`.
pub fn run<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    peerhost()
        .args(args)
        .output()
        .expect("run the peerhost binary")
        .into()
}

/// Runs `peerhost keygen --out DIR/site.key` and returns the key path and
/// the printed site key.
pub fn keygen(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("site.key");
    let r = run(["keygen".as_ref(), "--out".as_ref(), key.as_os_str()]);
    assert!(r.ok(), "{r:#?}");
    (key, r.stdout.trim().to_owned())
}

/// Bytes that differ from piece to piece, so a flipped byte is detectable
/// and pieces are not all alike.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8 ^ seed)
        .collect()
}

/// A small site: three pages' worth of files in nested directories, a
/// seven-piece "image", plus a hidden file that must not be published.
pub fn write_site(root: &Path) {
    fs::create_dir_all(root.join("css")).unwrap();
    fs::create_dir_all(root.join("img")).unwrap();
    fs::create_dir_all(root.join(".git")).unwrap();
    fs::write(
        root.join("index.html"),
        "<!doctype html><title>t</title><h1>hi</h1>\n",
    )
    .unwrap();
    fs::write(
        root.join("about.html"),
        "<!doctype html><title>about</title>\n",
    )
    .unwrap();
    fs::write(root.join("css/site.css"), "body { color: black }\n").unwrap();
    // 6 full 16 KiB pieces and a short seventh.
    fs::write(root.join("img/big.bin"), pattern(6 * 16384 + 1000, 1)).unwrap();
    fs::write(root.join("img/empty.txt"), "").unwrap();
    fs::write(root.join(".hidden"), "not published").unwrap();
    fs::write(root.join(".git/config"), "not published").unwrap();
}

/// `peerhost publish DIR --key KEY EXTRA…`.
pub fn publish(dir: &Path, key: &Path, extra: &[&str]) -> Run {
    let mut cmd = peerhost();
    cmd.arg("publish")
        .arg(dir)
        .arg("--key")
        .arg(key)
        .args(extra);
    cmd.output().expect("run peerhost publish").into()
}

/// `peerhost verify DIR EXTRA…`.
pub fn verify(dir: &Path, extra: &[&str]) -> Run {
    let mut cmd = peerhost();
    cmd.arg("verify").arg(dir).args(extra);
    cmd.output().expect("run peerhost verify").into()
}

/// The parsed manifest in `dir`.
pub fn manifest(dir: &Path) -> peerhost_core::manifest::Manifest {
    let text = fs::read_to_string(dir.join("peerhost.json")).expect("read peerhost.json");
    peerhost_core::manifest::SignedManifest::from_json(&text)
        .expect("parse peerhost.json")
        .manifest()
        .clone()
}

/// Copies a directory tree.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// A response read to the end.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A header's value as text ("" if absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// One plain-HTTP request with a real client (hyper-util), body read fully.
pub async fn http(method: &str, url: &str, headers: &[(&str, &str)]) -> HttpResponse {
    use http_body_util::BodyExt as _;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<hyper::body::Bytes>>();
    let mut req = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(http_body_util::Empty::new()).unwrap())
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// `GET url`.
pub async fn get(url: &str) -> HttpResponse {
    http("GET", url, &[]).await
}

/// Whether WebRTC tests may run here (see `peerhost_testenv`).
pub fn netns_or_skip(test: &str) -> bool {
    peerhost_testenv::netns_or_skip(test, "WebRTC tests")
}
