//! `peerhost push`: hands a published site's signed manifest to the tracker
//! once; the tracker verifies it and pushes it to the site's connected
//! visitors, who pass it on to each other (`peerhost/1` manifest offers).
//!
//! Nothing polls the origin: one push per published version is the whole
//! update traffic from the site owner's side. The manifest is checked here
//! first (signed by `--key`'s site, within its validity window) so that a
//! mistake is named locally, in one line, before anything is sent.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use peerhost_core::manifest::{self, ManifestError, SignedManifest, SiteKey};
use peerhost_core::signal::{ACTION_PUBLISH, ClientMessage, ServerMessage};
use peerhost_core::time::UnixTime;
use tokio_tungstenite::tungstenite::Message;

use crate::clock::unix_now;
use crate::keyfile;

/// How long `push` waits for the tracker (connect, then its answer) by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Send the site's signed manifest (`DIR/peerhost.json`, from `peerhost
/// publish`) to the tracker once; the tracker pushes it to every visitor.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The published site directory (holds peerhost.json).
    pub dir: PathBuf,
    /// The tracker's WebSocket URL as in the page's tag (ws://host/announce,
    /// wss://host/, …); the push goes to its /publish endpoint.
    #[arg(long, value_name = "URL")]
    pub tracker: String,
    /// The site's secret key file: the manifest must be signed by this site.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Seconds to wait for the tracker to connect and answer.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_TIMEOUT.as_secs())]
    pub timeout: u64,
}

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The manifest file could not be read.
    #[error("cannot read {}: {source} (run `peerhost publish` first)", path.display())]
    Read {
        /// The manifest file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The manifest file is not a manifest, or fails its own checks.
    #[error("{}: {error}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        error: ManifestError,
    },
    /// The manifest was signed for another site than the key's.
    #[error("{} is for site {found}, but the key is for site {key}", path.display())]
    WrongKey {
        /// The manifest file.
        path: PathBuf,
        /// The site the manifest names.
        found: SiteKey,
        /// The key file's site.
        key: SiteKey,
    },
    /// The tracker URL is not a ws:// or wss:// URL.
    #[error("tracker URL {0:?} is not a ws:// or wss:// URL")]
    BadUrl(String),
    /// The tracker could not be reached.
    #[error("tracker {url} is unreachable: {reason}")]
    Unreachable {
        /// The publish URL tried.
        url: String,
        /// Why.
        reason: String,
    },
    /// The tracker did not answer in time.
    #[error("tracker {url} did not answer within {secs} s")]
    Timeout {
        /// The publish URL tried.
        url: String,
        /// The timeout.
        secs: u64,
    },
    /// The tracker refused the manifest (its words).
    #[error("tracker refused version {version}: {reason}")]
    Refused {
        /// The version pushed.
        version: u64,
        /// The tracker's failure reason.
        reason: String,
    },
    /// The tracker answered something that is not an answer to a publish.
    #[error("tracker answered unexpectedly: {0}")]
    Protocol(String),
}

/// The tracker's `/publish` endpoint for a tracker URL: `…/announce` and
/// `…/` become `…/publish`; a URL already ending in `/publish` is kept.
pub fn publish_url(tracker: &str) -> Result<String, PushError> {
    let bad = || PushError::BadUrl(tracker.to_owned());
    let rest = tracker
        .strip_prefix("ws://")
        .or_else(|| tracker.strip_prefix("wss://"))
        .ok_or_else(bad)?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() || path.contains(['?', '#']) {
        return Err(bad());
    }
    let scheme = &tracker[..tracker.len() - rest.len()];
    let path = path.trim_end_matches('/');
    let base = path
        .strip_suffix("publish")
        .or_else(|| path.strip_suffix("announce"))
        .unwrap_or(path);
    let base = base.trim_end_matches('/');
    let sep = if base.is_empty() { "" } else { "/" };
    Ok(format!("{scheme}{host}/{base}{sep}publish"))
}

/// Reads `DIR/peerhost.json` and checks it is signed by `key`'s site and
/// valid at `now`.
pub fn load_manifest(
    dir: &Path,
    key: &SiteKey,
    now: UnixTime,
) -> Result<SignedManifest, PushError> {
    let path = dir.join(manifest::FILE_NAME);
    let text = std::fs::read_to_string(&path).map_err(|source| PushError::Read {
        path: path.clone(),
        source,
    })?;
    let signed = SignedManifest::from_json(&text).map_err(|error| PushError::Manifest {
        path: path.clone(),
        error,
    })?;
    let found = signed.manifest().site_key;
    if found != *key {
        return Err(PushError::WrongKey {
            path,
            found,
            key: *key,
        });
    }
    signed
        .verify(key, now)
        .map_err(|error| PushError::Manifest { path, error })?;
    Ok(signed)
}

/// Sends `signed` to the tracker at `tracker` once and waits for its
/// verdict; returns the version the tracker now holds.
pub async fn push(
    tracker: &str,
    signed: &SignedManifest,
    timeout: Duration,
) -> Result<u64, PushError> {
    let url = publish_url(tracker)?;
    let secs = timeout.as_secs();
    let timed_out = || PushError::Timeout {
        url: url.clone(),
        secs,
    };
    let (mut ws, _) = tokio::time::timeout(timeout, tokio_tungstenite::connect_async(&url))
        .await
        .map_err(|_| timed_out())?
        .map_err(|e| PushError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let version = signed.manifest().version;
    let msg = ClientMessage::PublishManifest {
        manifest: signed.to_bytes(),
    };
    ws.send(Message::text(msg.to_json()))
        .await
        .map_err(|e| PushError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        })?;
    let answer = tokio::time::timeout(timeout, async {
        while let Some(frame) = ws.next().await {
            match frame {
                Ok(Message::Text(text)) => return Ok(text.to_string()),
                Ok(Message::Close(c)) => {
                    return Err(PushError::Protocol(format!(
                        "connection closed{}",
                        c.map(|c| format!(": {} {}", u16::from(c.code), c.reason))
                            .unwrap_or_default()
                    )));
                }
                Ok(_) => {}
                Err(e) => return Err(PushError::Protocol(e.to_string())),
            }
        }
        Err(PushError::Protocol("connection closed".into()))
    })
    .await
    .map_err(|_| timed_out())??;
    let _ = ws.close(None).await;
    match ServerMessage::from_json(&answer) {
        Ok(ServerMessage::PublishResult { version: held }) => Ok(held),
        Ok(ServerMessage::Error {
            action,
            failure_reason,
            ..
        }) if action == ACTION_PUBLISH => Err(PushError::Refused {
            version,
            reason: failure_reason,
        }),
        Ok(other) => Err(PushError::Protocol(format!("{other:?}"))),
        Err(e) => Err(PushError::Protocol(e.to_string())),
    }
}

/// Runs the command.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let secret = keyfile::read_key_file(&args.key)?;
    let signed = load_manifest(&args.dir, &secret.site_key(), unix_now())?;
    // Check the URL before starting anything.
    publish_url(&args.tracker)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let held = runtime.block_on(push(&args.tracker, &signed, timeout))?;
    let m = signed.manifest();
    println!(
        "pushed version {} of site {} to {}",
        held,
        m.site_key,
        publish_url(&args.tracker)?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_url_follows_the_tag_url() {
        for (given, want) in [
            ("ws://h:1/announce", "ws://h:1/publish"),
            ("ws://h:1/", "ws://h:1/publish"),
            ("ws://h:1", "ws://h:1/publish"),
            (
                "wss://t.example/tracker/announce",
                "wss://t.example/tracker/publish",
            ),
            ("ws://h/tracker", "ws://h/tracker/publish"),
            ("ws://h/tracker/publish", "ws://h/tracker/publish"),
        ] {
            assert_eq!(publish_url(given).unwrap(), want, "{given}");
        }
        for bad in ["http://h/", "h:1", "ws:///x", "ws://h/a?b"] {
            assert!(
                matches!(publish_url(bad), Err(PushError::BadUrl(_))),
                "{bad}"
            );
        }
    }
}
