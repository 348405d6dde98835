//! The demo server under test: the very `peerhost demo` stack (counting
//! origin, tracker, browser client) on `127.0.0.1:0`, on its own runtime.

use std::path::PathBuf;
use std::sync::Arc;

use peerhost_core::manifest::SignedManifest;
use peerhost_site::demo::{DemoOptions, RunningDemo};
use peerhost_site::origin::OriginCounters;

use crate::browser::repo_root;

/// A running demo server; stops when dropped.
pub struct TestServer {
    demo: Option<RunningDemo>,
    runtime: Option<tokio::runtime::Runtime>,
}

/// Where `cargo xtask build-web` puts the browser client.
pub fn web_dir() -> PathBuf {
    let dir = std::env::var_os("PEERHOST_WEB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/peerhost-web"));
    assert!(
        dir.join("peerhost.js").exists() && dir.join("peerhost_wasm_bg.wasm").exists(),
        "the browser client is not built in {}: run `cargo xtask build-web` (cargo xtask test does)",
        dir.display()
    );
    dir
}

impl TestServer {
    /// Starts the demo with `options` (its `listen` is forced to 127.0.0.1:0).
    pub fn start(mut options: DemoOptions) -> TestServer {
        options.listen = "127.0.0.1:0".parse().expect("address");
        Self::start_listening(options)
    }

    fn start_listening(mut options: DemoOptions) -> TestServer {
        if options.web_dir.is_none() {
            options.web_dir = Some(web_dir());
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let demo = runtime
            .block_on(peerhost_site::demo::start(options))
            .expect("demo server starts");
        TestServer {
            demo: Some(demo),
            runtime: Some(runtime),
        }
    }

    /// Starts the demo with `options` on `ip` (port 0): the public address
    /// of a simulated internet (`peerhost_testenv::topology`).
    pub fn start_on(ip: std::net::Ipv4Addr, mut options: DemoOptions) -> TestServer {
        options.listen = std::net::SocketAddr::from((ip, 0));
        Self::start_listening(options)
    }

    /// The demo with default options.
    pub fn demo() -> TestServer {
        Self::start(DemoOptions::default())
    }

    fn demo_ref(&self) -> &RunningDemo {
        self.demo.as_ref().expect("running")
    }

    /// `http://ADDR:PORT` + `path` (`127.0.0.1` unless started with [`TestServer::start_on`]).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.demo_ref().addr)
    }

    /// The origin's byte counters.
    pub fn counters(&self) -> Arc<OriginCounters> {
        self.demo_ref().counters.clone()
    }

    /// The published site directory (files as served).
    pub fn site_dir(&self) -> PathBuf {
        self.demo_ref().site_dir.clone()
    }

    /// Bytes the origin has served for the demo images (`/img/…`) so far.
    pub fn image_bytes_served(&self) -> u64 {
        self.counters()
            .snapshot()
            .iter()
            .filter(|(p, _)| p.starts_with("/img/"))
            .map(|(_, c)| c.bytes)
            .sum()
    }

    /// Makes the origin refuse (503) or serve again.
    pub fn set_origin_down(&self, down: bool) {
        self.demo_ref().set_origin_down(down);
    }

    /// The signed manifest the origin serves now.
    pub fn manifest(&self) -> SignedManifest {
        let text =
            std::fs::read_to_string(self.site_dir().join(peerhost_core::manifest::FILE_NAME))
                .expect("peerhost.json");
        SignedManifest::from_json(&text).expect("valid manifest")
    }

    /// Writes `changes` (path relative to the site, contents) into the
    /// served site and publishes the next version with the demo key, as
    /// `peerhost publish` does; returns the new signed manifest.
    pub fn republish(&self, changes: &[(&str, Vec<u8>)]) -> SignedManifest {
        let dir = self.site_dir();
        for (path, bytes) in changes {
            std::fs::write(dir.join(path), bytes).expect("write site file");
        }
        peerhost_site::publish::publish(
            &dir,
            &peerhost_site::demo::demo_secret(),
            &peerhost_site::publish::Options::default(),
            &indicatif::ProgressBar::hidden(),
        )
        .expect("publish")
        .signed
    }

    /// [`TestServer::republish`] with an explicit version number, even one
    /// not above the current (e.g. the same number again with other
    /// contents, as a stolen key could sign): `publish` refuses that, so the
    /// old manifest is removed first.
    pub fn republish_as(&self, changes: &[(&str, Vec<u8>)], version: u64) -> SignedManifest {
        let dir = self.site_dir();
        for (path, bytes) in changes {
            std::fs::write(dir.join(path), bytes).expect("write site file");
        }
        std::fs::remove_file(dir.join(peerhost_core::manifest::FILE_NAME)).expect("old manifest");
        peerhost_site::publish::publish(
            &dir,
            &peerhost_site::demo::demo_secret(),
            &peerhost_site::publish::Options {
                version: Some(version),
                ..Default::default()
            },
            &indicatif::ProgressBar::hidden(),
        )
        .expect("publish")
        .signed
    }

    /// Sends `signed` to the demo's tracker as `peerhost push` does;
    /// returns the version it holds, or its one-line refusal.
    pub fn push(&self, signed: &SignedManifest) -> Result<u64, String> {
        let url = format!("ws://{}/tracker/announce", self.demo_ref().addr);
        self.runtime
            .as_ref()
            .expect("running")
            .block_on(peerhost_site::push::push(
                &url,
                signed,
                std::time::Duration::from_secs(10),
            ))
            .map_err(|e| e.to_string())
    }

    /// Makes the origin refuse (503) everything but the pages and the
    /// loader, or serve again (`peerhost_site::demo::served_while_assets_down`).
    pub fn set_assets_down(&self, down: bool) {
        self.demo_ref().set_assets_down(down);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let (Some(demo), Some(rt)) = (self.demo.take(), self.runtime.take()) {
            rt.block_on(demo.stop());
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
        }
    }
}
