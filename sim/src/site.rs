//! The simulated site: seeded random assets and their signed manifests, one
//! per published version.

use bytes::Bytes;
use peerhost_core::manifest::{Asset, Manifest, SignedManifest, SiteSecret};
use peerhost_core::rng::Rng;
use peerhost_core::time::UnixTime;

use crate::scenario::Scenario;

/// Wall-clock time of the simulation's start (manifests are valid around it).
pub const WALL_START: UnixTime = UnixTime(1_800_000_000);

/// Piece size of the simulated site (the browser default).
pub const PIECE_SIZE: u32 = 16 * 1024;

/// One published version.
#[derive(Debug, Clone)]
pub struct PublishedVersion {
    /// The signed manifest.
    pub signed: SignedManifest,
    /// Every asset: path and bytes (shared: the origin answers with
    /// slices of them).
    pub files: Vec<(String, Bytes)>,
}

/// Every version of the site, plus an old one that hostile peers replay.
#[derive(Debug)]
pub struct GeneratedSite {
    /// The signing key (a fixed, public test key).
    pub secret: SiteSecret,
    /// Versions in publication order; `versions[0]` is live at t = 0.
    pub versions: Vec<PublishedVersion>,
    /// An older, validly signed manifest (version below every live one).
    pub stale: SignedManifest,
}

impl GeneratedSite {
    /// Generates the site of `scenario` from `seed`.
    pub fn generate(scenario: &Scenario, seed: u64) -> GeneratedSite {
        let secret = SiteSecret::from_seed([7; 32]);
        let mut rng = Rng::new(seed ^ 0x5173_5173);
        let n = u64::from(scenario.site.files);
        let each = scenario.site.total_bytes / n;
        let files: Vec<(String, Bytes)> = (0..n)
            .map(|i| {
                let len = if i + 1 == n {
                    scenario.site.total_bytes - each * (n - 1)
                } else {
                    each
                };
                (
                    format!("/img/{i:02}.jpg"),
                    random_bytes(&mut rng, len as usize).into(),
                )
            })
            .collect();
        let base = 2;
        let stale = sign(&secret, &files, base - 1);
        let mut versions = vec![PublishedVersion {
            signed: sign(&secret, &files, base),
            files,
        }];
        for k in 0..scenario.updates.count {
            let mut files = versions.last().expect("one").files.clone();
            let mut first = files[0].1.to_vec();
            let changed = (scenario.updates.changed_bytes as usize).min(first.len());
            first[..changed].copy_from_slice(&random_bytes(&mut rng, changed));
            files[0].1 = first.into();
            versions.push(PublishedVersion {
                signed: sign(&secret, &files, base + 1 + u64::from(k)),
                files,
            });
        }
        GeneratedSite {
            secret,
            versions,
            stale,
        }
    }

    /// Bytes of one copy of the first version.
    pub fn copy_bytes(&self) -> u64 {
        self.versions[0]
            .files
            .iter()
            .map(|(_, d)| d.len() as u64)
            .sum()
    }
}

fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sign(secret: &SiteSecret, files: &[(String, Bytes)], version: u64) -> SignedManifest {
    let assets = files
        .iter()
        .map(|(p, d)| Asset::from_bytes(p, "image/jpeg", PIECE_SIZE, d))
        .collect();
    Manifest {
        site_key: secret.site_key(),
        version,
        issued_at: WALL_START.0 - 60,
        expires_at: WALL_START.0 + 24 * 3600,
        flags: 0,
        assets,
    }
    .sign(secret)
    .expect("the simulated site is a valid manifest")
}
