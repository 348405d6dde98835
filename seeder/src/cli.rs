//! `peerhost seed`: its arguments and entry point.

use std::net::SocketAddr;
use std::path::PathBuf;

use peerhost_core::ice::{IceServer, check_servers};
use peerhost_core::manifest::SiteKey;

use crate::Seeder;

/// Arguments of `peerhost seed`.
#[derive(clap::Args, Debug, Clone)]
pub struct SeedArgs {
    /// A published site directory to seed (it holds `peerhost.json`); repeatable.
    #[arg(long = "site", value_name = "DIR")]
    pub sites: Vec<PathBuf>,
    /// Mirror the site whose signed manifest is at this URL: fetch every
    /// file (from peers or the origin), verify, keep it in --cache, seed it.
    /// Repeatable: each site mirrored in its own part of the cache.
    #[arg(long = "manifest-url", value_name = "URL", requires = "cache")]
    pub manifest_urls: Vec<String>,
    /// A trusted site key (43 characters, as in the script tag); repeatable.
    /// Required with --manifest-url. With --site, a directory whose manifest
    /// names another key is refused; without any, each directory is trusted
    /// under the key its manifest names.
    #[arg(long = "site-key", value_name = "KEY")]
    pub site_keys: Vec<SiteKey>,
    /// Where the mirror keeps verified files: DIR/<version>/<path> for one
    /// --manifest-url; with several, DIR/<host>_<port><path>/<version>/<path>,
    /// one directory per manifest URL.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Base URL the mirror fetches assets from [default: the manifest
    /// URL's scheme://host:port]; only with a single --manifest-url.
    #[arg(long, value_name = "URL")]
    pub origin: Option<String>,
    /// The tracker's WebSocket URL (ws:// or wss://).
    #[arg(long, value_name = "URL", env = "PEERHOST_TRACKER")]
    pub tracker: String,
    /// Most peer connections per site, including ones being set up.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub max_peers: usize,
    /// Upload at most this many bytes per second per site [default: unlimited].
    #[arg(long, value_name = "BYTES_PER_SEC")]
    pub upload_rate: Option<u64>,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// Local UDP address for WebRTC; repeatable. The default reaches only
    /// peers on this machine: give the address of the interface visitors
    /// reach (or 0.0.0.0:0 for every non-loopback interface).
    #[arg(long = "udp-addr", value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub udp_addrs: Vec<String>,
    /// SCTP receive window advertised to peers, bytes: what a peer may send
    /// us unacknowledged. Keep it below the UDP socket buffer
    /// (net.core.rmem_default); see docs/seeder.md.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024)]
    pub sctp_window: u32,
    /// Seconds between re-reads of the manifest (the origin's for a mirror,
    /// DIR/peerhost.json for a site directory).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub refresh_secs: u64,
    /// A STUN or TURN server for WebRTC (`stun:HOST:PORT`,
    /// `turn:HOST:PORT?transport=udp`, `turns:…`); repeatable. Used before
    /// the servers the tracker hands out. Default none: only the tracker's.
    #[arg(long = "ice-server", value_name = "URL")]
    pub ice_servers: Vec<String>,
    /// Username for every turn:/turns: --ice-server (static TURN
    /// credentials; a tracker with `[turn]` mints its own).
    #[arg(long, value_name = "NAME", requires = "ice_credential")]
    pub ice_username: Option<String>,
    /// Password for every turn:/turns: --ice-server.
    #[arg(
        long,
        value_name = "SECRET",
        env = "PEERHOST_ICE_CREDENTIAL",
        requires = "ice_username"
    )]
    pub ice_credential: Option<String>,
    /// Use relayed (TURN) candidates only: peers never learn this host's
    /// addresses. Needs a TURN server (ours or the tracker's).
    #[arg(long)]
    pub relay_only: bool,
}

impl SeedArgs {
    /// The `--ice-server` list as servers: one per URL, TURN URLs with
    /// `--ice-username`/`--ice-credential`. Checked as a browser would.
    pub fn ice_server_list(&self) -> Result<Vec<IceServer>, String> {
        let servers: Vec<IceServer> = self
            .ice_servers
            .iter()
            .map(|url| {
                let mut s = IceServer::url(url.clone());
                if s.is_turn() {
                    s.username.clone_from(&self.ice_username);
                    s.credential.clone_from(&self.ice_credential);
                }
                s
            })
            .collect();
        check_servers(&servers).map_err(|e| format!("--ice-server: {e}"))?;
        Ok(servers)
    }
}

/// Runs `peerhost seed` until SIGINT or SIGTERM, then leaves the swarms,
/// closes every connection and finishes cache writes.
pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    let seeder = Seeder::start(&args).await?;
    for s in seeder.status() {
        let version = s
            .version
            .map_or("no version yet".to_owned(), |v| format!("version {v}"));
        println!(
            "peerhost seed: {} {} (site {}, {version}) via {}",
            if s.mirror { "mirroring" } else { "seeding" },
            s.name,
            s.site_key,
            args.tracker
        );
    }
    if let Some(addr) = seeder.metrics_addr() {
        println!("peerhost seed: metrics on http://{addr}/metrics");
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    seeder.shutdown().await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
