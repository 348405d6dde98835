//! A site on disk: `DIR/peerhost.json` and every listed file at its URL
//! path under `DIR` — the layout `peerhost publish` writes, and the layout
//! of each version directory of a mirror's cache.

use std::io;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use peerhost_core::client::{Client, Input};
use peerhost_core::manifest::{self, Asset, Manifest, ManifestError, SignedManifest};
use peerhost_core::time::Instant;

/// Why a site directory's manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SiteDirError {
    /// The directory does not exist or is not a directory.
    #[error("site directory {} does not exist", .0.display())]
    NoDir(PathBuf),
    /// `peerhost.json` could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The manifest file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// `peerhost.json` is not a well-formed manifest.
    #[error("{}: {error}", path.display())]
    Malformed {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        error: ManifestError,
    },
}

/// Reads `dir/peerhost.json`; the result still needs verifying.
pub(crate) fn read_manifest(dir: &Path) -> Result<SignedManifest, SiteDirError> {
    if !dir.is_dir() {
        return Err(SiteDirError::NoDir(dir.to_owned()));
    }
    let path = dir.join(manifest::FILE_NAME);
    let text = std::fs::read_to_string(&path).map_err(|source| SiteDirError::Read {
        path: path.clone(),
        source,
    })?;
    SignedManifest::from_json(&text).map_err(|error| SiteDirError::Malformed { path, error })
}

/// Where the file of asset `url_path` lives under `root`, or `None` if the
/// path could escape it (the manifest validator already refuses such paths;
/// this is the second lock on the door).
pub(crate) fn asset_file(root: &Path, url_path: &str) -> Option<PathBuf> {
    let rel = url_path.strip_prefix('/')?;
    let safe = rel
        .split('/')
        .all(|seg| !matches!(seg, "" | "." | "..") && !seg.contains('\\'));
    let path = Path::new(rel);
    if !safe || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(root.join(path))
}

/// What [`load_assets`] found.
#[derive(Debug, Default)]
pub(crate) struct LoadReport {
    /// Assets whose every piece verified.
    pub complete: usize,
    /// Assets of the manifest.
    pub listed: usize,
    /// Assets present but (partly) not matching: path, pieces taken, pieces listed.
    pub mismatched: Vec<(String, u64, u64)>,
    /// Assets with no readable file.
    pub missing: Vec<String>,
}

/// Offers every asset of `manifest` found under `root` to `client`, which
/// keeps only the pieces that verify.
pub(crate) fn load_assets(
    client: &mut Client,
    now: Instant,
    root: &Path,
    manifest: &Manifest,
) -> LoadReport {
    let mut report = LoadReport {
        listed: manifest.assets.len(),
        ..LoadReport::default()
    };
    for asset in &manifest.assets {
        let bytes = asset_file(root, &asset.path).and_then(|f| std::fs::read(f).ok());
        let Some(bytes) = bytes else {
            report.missing.push(asset.path.clone());
            continue;
        };
        let listed = Asset::piece_count_for(asset.size, asset.piece_size);
        client.handle_input(
            now,
            Input::AssetHeld {
                path: asset.path.clone(),
                bytes: Bytes::from(bytes),
            },
        );
        // Pieces already held (from another copy) count as present.
        let taken = client
            .asset_progress(&asset.path)
            .map_or(0, |(held, _)| u64::from(held));
        if taken == listed {
            report.complete += 1;
        } else {
            report.mismatched.push((asset.path.clone(), taken, listed));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_files_stay_under_the_root() {
        let root = Path::new("/srv/site");
        assert_eq!(
            asset_file(root, "/css/a.css"),
            Some(PathBuf::from("/srv/site/css/a.css"))
        );
        assert_eq!(asset_file(root, "/../etc/passwd"), None);
        assert_eq!(asset_file(root, "/a/./b"), None);
        assert_eq!(asset_file(root, "//etc/passwd"), None);
        assert_eq!(asset_file(root, "relative"), None);
        assert_eq!(asset_file(root, "/"), None);
    }
}
