//! The mirror's cache: one directory per manifest version, each laid out
//! like a published site (`CACHE/<version>/peerhost.json`,
//! `CACHE/<version>/<asset path>`), so a cache version can be read back with
//! [`crate::site_dir`].
//!
//! Every file is written atomically (temporary file in the same directory,
//! synced, renamed), so a crash leaves either the old file or the new one;
//! a torn or foreign file is caught anyway when it is read back, because
//! the core verifies every piece. Writes run on one task, in order, off the
//! driver's loop.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use peerhost_core::manifest;
use tokio::sync::mpsc;

use crate::event::SeederEvent;
use crate::site_dir::asset_file;

/// A cache directory.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    root: PathBuf,
}

impl Cache {
    /// Opens (creating if needed) the cache at `root`.
    pub(crate) fn open(root: &Path) -> io::Result<Cache> {
        std::fs::create_dir_all(root)?;
        Ok(Cache {
            root: root.to_owned(),
        })
    }

    /// The directory of one version.
    pub(crate) fn version_dir(&self, version: u64) -> PathBuf {
        self.root.join(version.to_string())
    }

    /// Versions present, highest first. Only directories named by a plain
    /// decimal number count; anything else in the cache is left alone.
    pub(crate) fn versions(&self) -> Vec<u64> {
        let mut out: Vec<u64> = std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| version_name(e.file_name().to_str()?))
            .collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        out
    }
}

fn version_name(name: &str) -> Option<u64> {
    let v: u64 = name.parse().ok()?;
    (v.to_string() == name).then_some(v)
}

/// One unit of work for the writer.
#[derive(Debug)]
pub(crate) enum Job {
    /// Write a version's signed manifest (before its files).
    Manifest {
        /// The version.
        version: u64,
        /// `SignedManifest::to_json`.
        json: String,
    },
    /// Write one verified asset.
    Asset {
        /// The manifest version it belongs to.
        version: u64,
        /// Its URL path.
        path: String,
        /// Every byte, verified.
        body: Vec<u8>,
    },
    /// Remove every version directory but `keep`.
    Prune {
        /// The version to keep.
        keep: u64,
    },
}

/// Starts the writer task; it reports each write to the driver as
/// [`SeederEvent::Written`] and ends, once every queued job is done, when the
/// returned sender is dropped.
pub(crate) fn spawn_writer(
    cache: Cache,
    inputs: mpsc::Sender<SeederEvent>,
) -> (mpsc::UnboundedSender<Job>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    let task = tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            let cache = cache.clone();
            let report = tokio::task::spawn_blocking(move || cache.run(job))
                .await
                .unwrap_or_else(|e| {
                    Some(SeederEvent::Written {
                        version: 0,
                        path: None,
                        result: Err(format!("cache writer panicked: {e}")),
                    })
                });
            // After shutdown nobody listens: keep writing what was queued.
            if let Some(input) = report {
                let _ = inputs.send(input).await;
            }
        }
    });
    (tx, task)
}

impl Cache {
    fn run(&self, job: Job) -> Option<SeederEvent> {
        match job {
            Job::Manifest { version, json } => {
                let file = self.version_dir(version).join(manifest::FILE_NAME);
                let result = write_atomic(&file, json.as_bytes())
                    .map_err(|e| format!("{}: {e}", file.display()));
                Some(SeederEvent::Written {
                    version,
                    path: None,
                    result,
                })
            }
            Job::Asset {
                version,
                path,
                body,
            } => {
                let result = match asset_file(&self.version_dir(version), &path) {
                    Some(file) => {
                        write_atomic(&file, &body).map_err(|e| format!("{}: {e}", file.display()))
                    }
                    None => Err(format!("{path}: not a safe file path")),
                };
                Some(SeederEvent::Written {
                    version,
                    path: Some(path),
                    result,
                })
            }
            Job::Prune { keep } => {
                for v in self.versions().into_iter().filter(|v| *v != keep) {
                    let dir = self.version_dir(v);
                    match std::fs::remove_dir_all(&dir) {
                        Ok(()) => tracing::info!(dir = %dir.display(), "pruned an old version"),
                        Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot prune"),
                    }
                }
                None
            }
        }
    }
}

/// Writes `bytes` to `path` so that readers see the old file or the new
/// one, never a torn one.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("no parent directory"))?;
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".peerhost-tmp-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_decimal_directories_are_versions() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["3", "12", "007", "x", "4a"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        std::fs::write(dir.path().join("5"), b"a file, not a version").unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        assert_eq!(cache.versions(), [12, 3]);
    }

    #[test]
    fn prune_keeps_one_version_and_foreign_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        write_atomic(&cache.version_dir(1).join("a/b.txt"), b"old").unwrap();
        write_atomic(&cache.version_dir(2).join("a/b.txt"), b"new").unwrap();
        std::fs::create_dir(dir.path().join("notes")).unwrap();
        assert!(cache.run(Job::Prune { keep: 2 }).is_none());
        assert_eq!(cache.versions(), [2]);
        assert!(dir.path().join("notes").is_dir());
        assert_eq!(
            std::fs::read(cache.version_dir(2).join("a/b.txt")).unwrap(),
            b"new"
        );
    }
}
