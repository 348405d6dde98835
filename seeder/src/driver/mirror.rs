//! A mirrored site: what to fetch when a version becomes current, filing
//! verified assets in the cache, noticing when a version is complete, and
//! the periodic manifest re-read (for published directories too).

use std::collections::{BTreeSet, HashSet};

use peerhost_core::client::{Input, ManifestSource, Ticket};
use peerhost_core::manifest::{self, SignedManifest};
use peerhost_core::piece::Digest;
use peerhost_core::time::Instant;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::start::{random_seed, report_load, wall};
use super::{Kind, SiteSeeder, source_name, want};
use crate::cache::{Cache, Job};
use crate::event::SeederEvent;
use crate::origin::Origin;
use crate::site_dir;

/// What a mirrored site keeps beyond the client.
#[derive(Debug)]
pub(super) struct Mirror {
    pub(super) manifest_url: String,
    pub(super) origin: Origin,
    pub(super) cache: Cache,
    pub(super) writer: Option<mpsc::UnboundedSender<Job>>,
    pub(super) writer_task: Option<JoinHandle<()>>,
    /// The version being written to the cache, and what of it is written.
    pub(super) writing: Option<Writing>,
    /// Assets whose fetch failed: wanted again at the next refresh.
    pub(super) failed: BTreeSet<String>,
}

#[derive(Debug)]
pub(super) struct Writing {
    version: u64,
    manifest: bool,
    assets: BTreeSet<String>,
    began: tokio::time::Instant,
}

impl SiteSeeder {
    pub(super) fn on_new_version(&mut self, now: Instant, version: u64) {
        let Some(current) = self.client.manifest().cloned() else {
            return;
        };
        if current.version() != version {
            return; // already superseded in the same step
        }
        let loaded = match &self.loaded {
            Some((v, files)) if *v == version => Some(files.clone()),
            _ => None,
        };
        match &mut self.kind {
            Kind::Dir { dir } => {
                if loaded.is_some() {
                    return;
                }
                // The site moved on (tracker push, or the directory was
                // republished): serve whatever of it the directory holds.
                let dir = dir.clone();
                let report = site_dir::load_assets(&mut self.client, now, &dir, current.manifest());
                report_load(&self.name, version, &report);
                self.loaded = Some((version, BTreeSet::new()));
            }
            Kind::Mirror(m) => {
                let on_disk = loaded.clone().unwrap_or_default();
                let mut writing = Writing {
                    version,
                    manifest: loaded.is_some(),
                    assets: on_disk,
                    began: tokio::time::Instant::now(),
                };
                let writer = m.writer.clone();
                let send = |job: Job| {
                    if let Some(w) = &writer {
                        let _ = w.send(job);
                    }
                };
                if !writing.manifest {
                    send(Job::Manifest {
                        version,
                        json: current.signed().to_json(),
                    });
                }
                // Tickets of the previous version were re-targeted by path.
                let wanted: HashSet<String> = self.tickets.values().cloned().collect();
                m.failed.clear();
                // A mirror has no page order. Mirrors that start together
                // (a crowd of cooperating hosts) would all ask the origin
                // for the same first pieces; starting at a random asset
                // spreads them, so each can pass on what the others lack.
                let assets = &current.manifest().assets;
                let first = (random_seed() % assets.len().max(1) as u64) as usize;
                for asset in assets[first..].iter().chain(&assets[..first]) {
                    let path = &asset.path;
                    if writing.assets.contains(path) || wanted.contains(path) {
                        continue;
                    }
                    match self.client.asset_bytes(path) {
                        // Unchanged since the previous version: write it out again.
                        Some(body) => send(Job::Asset {
                            version,
                            path: path.clone(),
                            body,
                        }),
                        // A refusal comes back as Output::Failed, logged there.
                        None => want(
                            &mut self.client,
                            &mut self.tickets,
                            &mut self.tickets_issued,
                            now,
                            path.clone(),
                        ),
                    }
                }
                if loaded.is_some() && writing.assets.len() == current.manifest().assets.len() {
                    // Restarted on a full cache: nothing to fetch or write.
                    writing.manifest = true;
                }
                m.writing = Some(writing);
                self.check_mirrored();
            }
        }
    }

    pub(super) fn on_deliver(&mut self, ticket: Ticket, path: String, body: Vec<u8>) {
        if self.tickets.remove(&ticket).is_none() {
            return;
        }
        let Kind::Mirror(m) = &self.kind else { return };
        let Some(current) = self.client.manifest() else {
            return;
        };
        let Some((_, asset)) = current.manifest().asset(&path) else {
            return;
        };
        // The core verified every piece; this checks we file it under the right version.
        if Digest::of(&body) != asset.digest {
            tracing::error!(site = %self.name, "{path}: delivered bytes do not match the current manifest; not written");
            return;
        }
        if let Some(w) = &m.writer {
            let _ = w.send(Job::Asset {
                version: current.version(),
                path,
                body,
            });
        }
    }

    pub(super) fn on_written(
        &mut self,
        version: u64,
        path: Option<String>,
        result: Result<(), String>,
    ) {
        let Kind::Mirror(m) = &mut self.kind else {
            return;
        };
        if let Err(e) = result {
            tracing::error!(site = %self.name, "cache write failed: {e}");
            if let Some(p) = path {
                m.failed.insert(p);
            }
            return;
        }
        let Some(w) = m.writing.as_mut().filter(|w| w.version == version) else {
            return;
        };
        match path {
            None => w.manifest = true,
            Some(p) => {
                w.assets.insert(p);
            }
        }
        self.check_mirrored();
    }

    /// When every file of the current version is on disk: report, and
    /// drop older versions.
    fn check_mirrored(&mut self) {
        let Kind::Mirror(m) = &mut self.kind else {
            return;
        };
        let Some(current) = self.client.manifest() else {
            return;
        };
        let Some(w) = &m.writing else { return };
        let listed = current.manifest().assets.len();
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if w.version != current.version()
            || !w.manifest
            || w.assets.len() < listed
            || status.mirrored_version == Some(w.version)
        {
            return;
        }
        status.mirrored_version = Some(w.version);
        drop(status);
        let st = self.client.stats();
        tracing::info!(
            site = %self.name,
            "mirrored version {}: {listed} files, {} bytes, {:.1} s after it became current \
             (downloaded since start: {} bytes from peers, {} from the origin)",
            w.version,
            current.manifest().total_size(),
            w.began.elapsed().as_secs_f64(),
            st.bytes_from_peers,
            st.bytes_from_origin,
        );
        if let Some(writer) = &m.writer {
            let _ = writer.send(Job::Prune { keep: w.version });
        }
    }

    /// Periodic: re-read the manifest, retry failed assets, update the wall clock.
    pub(super) fn refresh(&mut self) {
        let now = self.now();
        self.client.handle_input(now, Input::WallClock(wall()));
        if let Kind::Mirror(m) = &mut self.kind {
            let failed = std::mem::take(&mut m.failed);
            let wanted: HashSet<String> = self.tickets.values().cloned().collect();
            for path in failed.into_iter().filter(|p| !wanted.contains(p)) {
                match self.client.asset_bytes(&path) {
                    // Held but not written (a cache write failed): write again.
                    Some(body) => {
                        if let (Some(w), Some(cur)) = (&m.writer, self.client.manifest()) {
                            let _ = w.send(Job::Asset {
                                version: cur.version(),
                                path,
                                body,
                            });
                        }
                    }
                    None => {
                        want(
                            &mut self.client,
                            &mut self.tickets,
                            &mut self.tickets_issued,
                            now,
                            path,
                        );
                    }
                }
            }
        }
        if self.refreshing {
            return;
        }
        self.refreshing = true;
        let events = self.events_tx.clone();
        match &self.kind {
            Kind::Mirror(m) => {
                let origin = m.origin.clone();
                let url = m.manifest_url.clone();
                tokio::spawn(async move {
                    let text = origin.fetch_manifest(&url).await;
                    let _ = events.send(SeederEvent::ManifestText(text)).await;
                });
            }
            Kind::Dir { dir } => {
                let file = dir.join(manifest::FILE_NAME);
                tokio::spawn(async move {
                    let text = tokio::fs::read_to_string(&file)
                        .await
                        .map_err(|e| format!("cannot read {}: {e}", file.display()));
                    let _ = events.send(SeederEvent::ManifestText(text)).await;
                });
            }
        }
    }

    pub(super) fn on_manifest_text(&mut self, now: Instant, text: Result<String, String>) {
        self.refreshing = false;
        let source = match self.kind {
            Kind::Mirror(_) => ManifestSource::Origin,
            Kind::Dir { .. } => ManifestSource::Storage,
        };
        let from = source_name(source);
        match text.map(|t| SignedManifest::from_json(&t)) {
            Err(e) => tracing::warn!(site = %self.name, "cannot re-read the manifest: {e}"),
            Ok(Err(error)) => {
                self.manifests_refused += 1;
                self.log_refusal(from, &error);
            }
            Ok(Ok(signed)) => {
                // Refusals come back as events.
                self.client.handle_input(
                    now,
                    Input::Manifest {
                        manifest: Box::new(signed),
                        source,
                        wall: wall(),
                    },
                );
            }
        }
    }
}
