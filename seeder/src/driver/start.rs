//! Starting a site: reading a published directory, or a mirror's cache and
//! its origin's manifest, into a new [`SiteSeeder`] before anything runs.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use peerhost_core::client::{Client, ClientConfig, Input, ManifestSource};
use peerhost_core::manifest::{self, ManifestError, SignedManifest, SiteKey};
use peerhost_core::time::{Instant, UnixTime};

use super::mirror::Mirror;
use super::{Common, Kind, SiteSeeder};
use crate::StartError;
use crate::cache::Cache;
use crate::origin::Origin;
use crate::site_dir::{self, LoadReport};

/// The wall clock, for manifest validity windows.
pub(super) fn wall() -> UnixTime {
    UnixTime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// The key to trust for a manifest naming `named`: the named key if the
/// operator trusts it (or trusts whatever the directory says), else the
/// first trusted key, so the core's refusal names what was expected.
fn trusted_key(keys: &[SiteKey], named: SiteKey) -> SiteKey {
    if keys.is_empty() || keys.contains(&named) {
        named
    } else {
        keys[0]
    }
}

pub(super) fn random_seed() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        t ^ u64::from(std::process::id()).rotate_left(32)
    })
}

pub(super) fn report_load(name: &str, version: u64, report: &LoadReport) {
    tracing::info!(
        site = %name,
        "version {version}: {} of {} files verified",
        report.complete,
        report.listed
    );
    for path in &report.missing {
        tracing::warn!(site = %name, "{path}: file missing, not served");
    }
    for (path, taken, listed) in &report.mismatched {
        tracing::warn!(
            site = %name,
            "{path}: does not match the manifest ({taken} of {listed} pieces verify); serving only those"
        );
    }
}

impl SiteSeeder {
    pub(crate) fn for_dir(
        dir: &Path,
        keys: &[SiteKey],
        config: ClientConfig,
        common: Common,
    ) -> Result<SiteSeeder, StartError> {
        let signed = site_dir::read_manifest(dir)?;
        let key = trusted_key(keys, signed.manifest().site_key);
        let mut client = Client::new(config, key, 0, random_seed(), Instant::ZERO);
        start_with(&mut client, &key, &signed, ManifestSource::Storage).map_err(|error| {
            StartError::Refused {
                what: dir.join(manifest::FILE_NAME).display().to_string(),
                error,
            }
        })?;
        let name = dir.display().to_string();
        let version = signed.manifest().version;
        let report = site_dir::load_assets(&mut client, Instant::ZERO, dir, signed.manifest());
        report_load(&name, version, &report);
        let kind = Kind::Dir {
            dir: dir.to_owned(),
        };
        let mut d = SiteSeeder::new(name, key, kind, client, common, false);
        d.loaded = Some((version, BTreeSet::new()));
        d.publish();
        Ok(d)
    }

    /// A driver mirroring the site whose manifest is at `manifest_url`,
    /// fetching assets from `origin_base` (or peers) into `cache_dir`.
    pub(crate) async fn for_mirror(
        manifest_url: &str,
        origin_base: &str,
        keys: &[SiteKey],
        cache_dir: &Path,
        config: ClientConfig,
        common: Common,
    ) -> Result<SiteSeeder, StartError> {
        let origin = Origin::new(origin_base).map_err(StartError::Usage)?;
        let cache = Cache::open(cache_dir).map_err(|source| StartError::Cache {
            dir: cache_dir.to_owned(),
            source,
        })?;
        // The newest cached version that still verifies, and the origin's.
        let mut cached: Option<SignedManifest> = None;
        for v in cache.versions() {
            match site_dir::read_manifest(&cache.version_dir(v)) {
                Ok(s) if s.manifest().version == v => {
                    cached = Some(s);
                    break;
                }
                Ok(_) => {
                    tracing::warn!(cache = %cache_dir.display(), "version {v}: manifest of another version; ignored")
                }
                Err(e) => tracing::debug!(cache = %cache_dir.display(), "version {v}: {e}"),
            }
        }
        let fetched = match origin.fetch_manifest(manifest_url).await {
            Ok(text) => SignedManifest::from_json(&text).map_err(|error| StartError::Refused {
                what: manifest_url.to_owned(),
                error,
            }),
            Err(reason) => Err(StartError::ManifestFetch {
                url: manifest_url.to_owned(),
                reason,
            }),
        };
        let named = match (&cached, &fetched) {
            (Some(c), _) => c.manifest().site_key,
            (None, Ok(f)) => f.manifest().site_key,
            (None, Err(_)) => keys[0],
        };
        let key = trusted_key(keys, named);
        let mut client = Client::new(config, key, 0, random_seed(), Instant::ZERO);
        let mut loaded = None;
        if let Some(c) = &cached {
            let v = c.manifest().version;
            if start_with(&mut client, &key, c, ManifestSource::Storage).is_ok() {
                let dir = cache.version_dir(v);
                let report = site_dir::load_assets(&mut client, Instant::ZERO, &dir, c.manifest());
                report_load(&cache_dir.display().to_string(), v, &report);
                let on_disk = c
                    .manifest()
                    .assets
                    .iter()
                    .filter(|a| client.asset_bytes(&a.path).is_some())
                    .map(|a| a.path.clone())
                    .collect();
                loaded = Some((v, on_disk));
            }
        }
        let have_cached = loaded.is_some();
        match fetched {
            Ok(signed) => {
                if let Err(error) = start_with(&mut client, &key, &signed, ManifestSource::Origin)
                    && !have_cached
                {
                    return Err(StartError::Refused {
                        what: manifest_url.to_owned(),
                        error,
                    });
                }
            }
            Err(e) if !have_cached => return Err(e),
            Err(e) => tracing::warn!("{e}; serving the cached version"),
        }
        let mirror = Mirror {
            manifest_url: manifest_url.to_owned(),
            origin,
            cache,
            writer: None,
            writer_task: None,
            writing: None,
            failed: BTreeSet::new(),
        };
        let mut d = SiteSeeder::new(
            manifest_url.to_owned(),
            key,
            Kind::Mirror(Box::new(mirror)),
            client,
            common,
            true,
        );
        d.loaded = loaded;
        d.publish();
        Ok(d)
    }
}

/// Gives a starting client its manifest. The verdict comes out of the
/// client as an event; a start-up error needs it now, so the checks a new
/// client makes (signature under `key`, validity window) are made here too.
/// Behind a cached manifest, a fetched one the client keeps the cached
/// version over is still `Ok`: the client judges versions.
fn start_with(
    client: &mut Client,
    key: &SiteKey,
    signed: &SignedManifest,
    source: ManifestSource,
) -> Result<(), ManifestError> {
    let wall = wall();
    signed.verify(key, wall)?;
    client.handle_input(
        Instant::ZERO,
        Input::Manifest {
            manifest: Box::new(signed.clone()),
            source,
            wall,
        },
    );
    Ok(())
}
