//! What each site's driver reports, and the Prometheus text page that
//! shows it (`--metrics ADDR`, path `/metrics`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A snapshot of one site's driver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteStatus {
    /// The site's directory (`--site`) or manifest URL (`--manifest-url`).
    pub name: String,
    /// The site key, base64url.
    pub site_key: String,
    /// Whether this site is mirrored (`--manifest-url`) rather than seeded from a directory.
    pub mirror: bool,
    /// The manifest version being served.
    pub version: Option<u64>,
    /// Whether every piece of that version is held and verified.
    pub complete: bool,
    /// Mirror: the highest version whose every file is written to the cache.
    pub mirrored_version: Option<u64>,
    /// Peer connections whose handshake completed.
    pub peers: usize,
    /// Whether the tracker socket is up.
    pub tracker_connected: bool,
    /// Times the tracker socket came up.
    pub tracker_connects: u64,
    /// Bytes of pieces sent to peers.
    pub bytes_uploaded: u64,
    /// Verified bytes received from peers.
    pub bytes_from_peers: u64,
    /// Verified bytes received from the origin.
    pub bytes_from_origin: u64,
    /// Pieces that failed verification.
    pub pieces_rejected: u64,
    /// Peers dropped for misbehaving.
    pub peers_banned: u64,
    /// Manifests refused (bad signature, wrong key, expired, rollback, malformed).
    pub manifests_refused: u64,
}

/// Every site's status, shared between the drivers and the metrics page.
pub(crate) type Board = Vec<Arc<Mutex<SiteStatus>>>;

/// Reads one status (a poisoned lock still holds the last snapshot).
pub(crate) fn read(s: &Mutex<SiteStatus>) -> SiteStatus {
    s.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The Prometheus text exposition of `sites`.
pub fn render(sites: &[SiteStatus]) -> String {
    type Getter = fn(&SiteStatus) -> Option<u64>;
    let families: [(&str, &str, &str, Getter); 10] = [
        (
            "peerhost_seeder_peers",
            "gauge",
            "Peer connections whose handshake completed.",
            |s| Some(s.peers as u64),
        ),
        (
            "peerhost_seeder_uploaded_bytes_total",
            "counter",
            "Bytes of pieces sent to peers.",
            |s| Some(s.bytes_uploaded),
        ),
        (
            "peerhost_seeder_pieces_rejected_total",
            "counter",
            "Pieces that failed verification against the manifest.",
            |s| Some(s.pieces_rejected),
        ),
        (
            "peerhost_seeder_peers_banned_total",
            "counter",
            "Peers dropped for misbehaving.",
            |s| Some(s.peers_banned),
        ),
        (
            "peerhost_seeder_manifests_refused_total",
            "counter",
            "Manifests refused (signature, key, validity, rollback, malformed).",
            |s| Some(s.manifests_refused),
        ),
        (
            "peerhost_seeder_manifest_version",
            "gauge",
            "Manifest version being served.",
            |s| s.version,
        ),
        (
            "peerhost_seeder_complete",
            "gauge",
            "1 if every piece of the served version is held and verified.",
            |s| Some(u64::from(s.complete)),
        ),
        (
            "peerhost_seeder_mirrored_version",
            "gauge",
            "Highest version whose every file is in the mirror's cache.",
            |s| s.mirrored_version,
        ),
        (
            "peerhost_seeder_tracker_connected",
            "gauge",
            "1 while the tracker socket is up.",
            |s| Some(u64::from(s.tracker_connected)),
        ),
        (
            "peerhost_seeder_tracker_connects_total",
            "counter",
            "Times the tracker socket came up.",
            |s| Some(s.tracker_connects),
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, get) in &families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in sites {
            if let Some(v) = get(s) {
                let _ = writeln!(out, "{name}{{site=\"{}\"}} {v}", s.site_key);
            }
        }
    }
    let name = "peerhost_seeder_downloaded_bytes_total";
    let _ = writeln!(
        out,
        "# HELP {name} Verified bytes received, by source.\n# TYPE {name} counter"
    );
    for s in sites {
        let _ = writeln!(
            out,
            "{name}{{site=\"{}\",from=\"peers\"}} {}",
            s.site_key, s.bytes_from_peers
        );
        let _ = writeln!(
            out,
            "{name}{{site=\"{}\",from=\"origin\"}} {}",
            s.site_key, s.bytes_from_origin
        );
    }
    out
}

/// Serves `/metrics` on `listener` until `stop` turns true.
pub(crate) async fn serve(listener: TcpListener, board: Board, mut stop: watch::Receiver<bool>) {
    let page = move || {
        let board = board.clone();
        async move {
            let sites: Vec<SiteStatus> = board.iter().map(|s| read(s)).collect();
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                render(&sites),
            )
                .into_response()
        }
    };
    let app = Router::new().route("/metrics", get(page));
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::warn!(error = %e, "metrics server stopped");
    }
}

/// Binds the metrics listener (so a bad address fails at start).
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_per_site() {
        let s = SiteStatus {
            site_key: "K".into(),
            version: Some(3),
            peers: 2,
            bytes_from_origin: 10,
            ..SiteStatus::default()
        };
        let text = render(&[s]);
        assert!(text.contains("peerhost_seeder_peers{site=\"K\"} 2\n"));
        assert!(text.contains("peerhost_seeder_manifest_version{site=\"K\"} 3\n"));
        assert!(
            text.contains(
                "peerhost_seeder_downloaded_bytes_total{site=\"K\",from=\"origin\"} 10\n"
            )
        );
        // No mirrored version: the series is absent, not zero.
        assert!(!text.contains("peerhost_seeder_mirrored_version{"));
        assert!(text.contains("# TYPE peerhost_seeder_uploaded_bytes_total counter\n"));
    }
}
