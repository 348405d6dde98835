//! peerhost-seeder: the native peer that cooperating hosts run to mirror a
//! site and serve it to browsers (`peerhost seed`).
//!
//! It drives the very [`peerhost_core::client::Client`] the browser runs,
//! one per site, with native IO:
//!
//! - `driver` — one task per site (a `SiteSeeder`) owns its `Client` and
//!   runs the loop of the core's module doc: feed an input, perform every
//!   output, sleep until the next input or deadline.
//! - `event` — what the site's tasks below report to its seeder; they
//!   depend on it, never on the driver.
//! - `tracker` — the site's WebSocket to the tracker, reconnecting with
//!   backoff and jitter (`backoff`).
//! - `peer` — WebRTC peer connections on webrtc-rs: non-trickle SDP, the
//!   `peerhost/1` data channel, send backpressure.
//! - `origin` — HTTP `Range` requests to the site's origin.
//! - `site_dir` and `cache` — a published site directory, and the mirror's
//!   versioned cache with atomic writes.
//! - `metrics` — per-site status and the Prometheus page.
//! - [`cli`] — `peerhost seed`'s arguments and entry point.
//!
//! Embedding: [`Seeder::start`] returns a handle with per-site
//! [`SiteStatus`] and a graceful [`Seeder::shutdown`]; [`cli::run`] wraps
//! it with signal handling. `docs/seeder.md` has the operator's view.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use peerhost_core::client::ClientConfig;
use peerhost_core::ice::IceServer;
use peerhost_core::manifest::{MAX_PIECE_SIZE, ManifestError};
use peerhost_core::upload::UploadLimits;
use tokio::sync::watch;
use tokio::task::JoinHandle;

mod backoff;
mod cache;
pub mod cli;
mod driver;
mod event;
mod metrics;
mod origin;
mod outbox;
mod peer;
mod site_dir;
mod tracker;

pub use cli::{SeedArgs, run};
pub use metrics::{SiteStatus, render as render_metrics};
pub use site_dir::SiteDirError;

/// How long a mirror waits for peers before asking the origin: a mirror is
/// not a page in a hurry, and every byte from peers spares the origin.
const MIRROR_DISCOVERY_GRACE: Duration = Duration::from_secs(10);
/// Longest a mirror's wanted piece waits for a busy peer.
const MIRROR_PIECE_DEADLINE: Duration = Duration::from_secs(10);
/// A mirror's peer request timeout: above a few SCTP retransmission
/// timeouts (1 s minimum each), so one lost datagram does not cost a peer
/// a strike per piece in flight.
const MIRROR_REQUEST_TIMEOUT: Duration = Duration::from_secs(8);
/// Strikes before a mirror drops a peer: a whole pipeline may time out at
/// once behind one loss.
const MIRROR_MAX_STRIKES: u32 = 64;

/// Why the seeder could not start. Each message is one line naming the
/// culprit.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Neither `--site` nor `--manifest-url` was given.
    #[error("nothing to seed: give --site DIR or --manifest-url URL")]
    Nothing,
    /// The arguments do not make sense together.
    #[error("{0}")]
    Usage(String),
    /// A site directory or its manifest could not be read.
    #[error(transparent)]
    SiteDir(#[from] SiteDirError),
    /// A manifest failed verification (wrong key, bad signature, expired…).
    #[error("{what}: manifest refused: {error}")]
    Refused {
        /// The manifest file or URL.
        what: String,
        /// Why.
        error: ManifestError,
    },
    /// The mirror's manifest could not be fetched and nothing is cached.
    #[error("{url}: cannot fetch the manifest: {reason}")]
    ManifestFetch {
        /// The manifest URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The cache directory cannot be used.
    #[error("cache {}: {source}", dir.display())]
    Cache {
        /// The cache directory.
        dir: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The metrics address cannot be bound.
    #[error("metrics address {addr}: {source}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A running seeder: one [`driver::SiteSeeder`] per site, and the metrics page.
#[derive(Debug)]
pub struct Seeder {
    board: metrics::Board,
    metrics_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Seeder {
    /// Checks and loads every site, then starts serving. Fails, before
    /// anything is started, on any site it cannot serve.
    pub async fn start(args: &SeedArgs) -> Result<Seeder, StartError> {
        install_crypto_provider();
        tracker::check_url(&args.tracker).map_err(StartError::Usage)?;
        if args.sites.is_empty() && args.manifest_urls.is_empty() {
            return Err(StartError::Nothing);
        }
        if args.udp_addrs.is_empty() {
            return Err(StartError::Usage("give at least one --udp-addr".into()));
        }
        if args
            .udp_addrs
            .iter()
            .all(|a| a.starts_with("127.") || a.starts_with("[::1]") || a.starts_with("localhost"))
        {
            tracing::warn!(
                "WebRTC binds only loopback addresses ({}): only peers on this machine can connect; \
                 set --udp-addr to a public interface to serve visitors",
                args.udp_addrs.join(", ")
            );
        }
        let ice_servers = args.ice_server_list().map_err(StartError::Usage)?;
        let common = driver::Common {
            tracker: args.tracker.clone(),
            net: Arc::new(peer::PeerNet {
                udp_addrs: args.udp_addrs.clone(),
                sctp_receive_window: args.sctp_window,
                ..peer::PeerNet::default()
            }),
            refresh: Duration::from_secs(args.refresh_secs.max(1)),
        };
        let mut sites = Vec::new();
        for dir in &args.sites {
            sites.push(driver::SiteSeeder::for_dir(
                dir,
                &args.site_keys,
                client_config(args, false, &ice_servers),
                common.clone(),
            )?);
        }
        if !args.manifest_urls.is_empty() {
            let Some(cache) = &args.cache else {
                return Err(StartError::Usage("--manifest-url needs --cache DIR".into()));
            };
            if args.site_keys.is_empty() {
                return Err(StartError::Usage(
                    "--manifest-url needs --site-key KEY".into(),
                ));
            }
            if args.manifest_urls.len() > 1 && args.origin.is_some() {
                return Err(StartError::Usage(
                    "--origin goes with a single --manifest-url (each site is fetched from its manifest's host)"
                        .into(),
                ));
            }
            let mut dirs = std::collections::BTreeSet::new();
            for url in &args.manifest_urls {
                let base = match &args.origin {
                    Some(o) => o.clone(),
                    None => origin::origin_of(url).map_err(StartError::Usage)?,
                };
                let dir = if args.manifest_urls.len() == 1 {
                    cache.clone()
                } else {
                    cache.join(cache_name(url))
                };
                if !dirs.insert(dir.clone()) {
                    return Err(StartError::Usage(format!(
                        "--manifest-url {url} is given twice"
                    )));
                }
                sites.push(
                    driver::SiteSeeder::for_mirror(
                        url,
                        &base,
                        &args.site_keys,
                        &dir,
                        client_config(args, true, &ice_servers),
                        common.clone(),
                    )
                    .await?,
                );
            }
        }
        let mut keys = std::collections::BTreeSet::new();
        for d in &sites {
            let key = metrics::read(&d.status()).site_key;
            if !keys.insert(key.clone()) {
                return Err(StartError::Usage(format!("site {key} is given twice")));
            }
        }
        let listener = match args.metrics {
            Some(addr) => Some(
                metrics::bind(addr)
                    .await
                    .map_err(|source| StartError::Metrics { addr, source })?,
            ),
            None => None,
        };
        let (stop, stop_rx) = watch::channel(false);
        let board: metrics::Board = sites.iter().map(driver::SiteSeeder::status).collect();
        let mut tasks: Vec<JoinHandle<()>> = sites
            .into_iter()
            .map(|d| tokio::spawn(d.run(stop_rx.clone())))
            .collect();
        let mut metrics_addr = None;
        if let Some(l) = listener {
            metrics_addr = l.local_addr().ok();
            tasks.push(tokio::spawn(metrics::serve(l, board.clone(), stop_rx)));
        }
        Ok(Seeder {
            board,
            metrics_addr,
            stop,
            tasks,
        })
    }

    /// A snapshot of every site, in the order given (`--site`s, then the mirror).
    pub fn status(&self) -> Vec<SiteStatus> {
        self.board.iter().map(|s| metrics::read(s)).collect()
    }

    /// Where `/metrics` is served, if `--metrics` was given.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Leaves every swarm, closes every connection, finishes cache writes.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// The cache directory of one mirrored site when there are several: the
/// manifest URL without its scheme, every character but letters, digits,
/// `.` and `-` turned into `_` (stable across restarts, readable in `ls`).
fn cache_name(manifest_url: &str) -> String {
    let rest = manifest_url
        .split_once("://")
        .map_or(manifest_url, |(_, r)| r);
    rest.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The core's configuration for one site.
fn client_config(args: &SeedArgs, mirror: bool, ice_servers: &[IceServer]) -> ClientConfig {
    let mut c = ClientConfig {
        max_peers: args.max_peers.max(1),
        // `--max-peers` is the operator's cap: no headroom beyond it.
        inbound_headroom: 0,
        upload: match args.upload_rate {
            // The bucket must hold at least one piece.
            Some(rate) => UploadLimits {
                bytes_per_sec: Some(rate.max(1)),
                burst: rate.max(u64::from(MAX_PIECE_SIZE)),
                total: None,
            },
            None => UploadLimits::unlimited(),
        },
        leech_only: false,
        // A seeder serves no page load: take a new version at once.
        max_switch_delay: std::time::Duration::ZERO,
        ice_servers: ice_servers.to_vec(),
        relay_only: args.relay_only,
        ..ClientConfig::default()
    };
    if mirror {
        c.scheduler.discovery_grace = MIRROR_DISCOVERY_GRACE;
        c.scheduler.piece_deadline = MIRROR_PIECE_DEADLINE;
        c.scheduler.request_timeout = MIRROR_REQUEST_TIMEOUT;
        c.scheduler.max_strikes = MIRROR_MAX_STRIKES;
    }
    c
}

/// rustls needs one process-wide crypto provider; webrtc-rs already builds
/// ring, so https origins and wss trackers use it too.
pub(crate) fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
