//! `peerhost verify`: checks a published directory against its manifest —
//! the signature, the validity window, and every byte of every listed file —
//! exactly as a visitor's browser would check what peers send it — and,
//! as `publish` does, that the directory holds no secret key file and that
//! `.peerhostignore` excludes nothing the manifest lists.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use peerhost_core::manifest::{self, Asset, ManifestError, SignedManifest, SiteKey};
use peerhost_core::piece::Digest;
use peerhost_core::time::UnixTime;
use sha2::Digest as _;

use crate::clock::unix_now;
use crate::fmt::fmt_bytes;
use crate::scan::{self, IgnoreRules, ScanError};

/// Verify a published directory: the manifest's signature and expiry, and
/// every piece of every listed file.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The site's root directory, holding peerhost.json.
    pub dir: PathBuf,
    /// The site key to trust (base64url). Default: the key the manifest
    /// names, which proves only that the manifest is self-consistent.
    #[arg(long, value_name = "KEY")]
    pub site_key: Option<SiteKey>,
}

/// Why the manifest itself could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The site directory does not exist.
    #[error("site directory {} does not exist", .0.display())]
    NoSuchDirectory(PathBuf),
    /// The site path is not a directory.
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// There is no manifest.
    #[error("{} not found; run `peerhost publish` first", .0.display())]
    NoManifest(PathBuf),
    /// The manifest could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The manifest file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The directory could not be scanned, or its `.peerhostignore` is unusable.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// The manifest is malformed, badly signed, for another key, or expired.
    #[error("{}: {source}", path.display())]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What the core refused.
        source: ManifestError,
    },
}

/// One listed file that does not match the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The file does not exist.
    Missing {
        /// The asset's URL path.
        path: String,
    },
    /// Something other than a regular file is there (a directory, a symlink).
    NotAFile {
        /// The asset's URL path.
        path: String,
    },
    /// The file could not be read.
    Unreadable {
        /// The asset's URL path.
        path: String,
        /// The OS error.
        error: String,
    },
    /// The file has another size than the manifest says.
    WrongSize {
        /// The asset's URL path.
        path: String,
        /// Size in the manifest.
        expected: u64,
        /// Size on disk.
        found: u64,
    },
    /// Some pieces' SHA-256 differ from the manifest's.
    PiecesDiffer {
        /// The asset's URL path.
        path: String,
        /// Zero-based index (within the asset) of the first differing piece.
        first: u64,
        /// How many pieces differ.
        differing: u64,
        /// How many pieces the asset has.
        total: u64,
        /// Bytes per piece.
        piece_size: u32,
    },
    /// Every piece matches but the whole-file digest does not (the
    /// manifest itself is then inconsistent).
    DigestDiffers {
        /// The asset's URL path.
        path: String,
    },
    /// The manifest lists a file that `.peerhostignore` now excludes.
    Ignored {
        /// The asset's URL path.
        path: String,
    },
    /// A secret key file is in the site directory, listed or not: the web
    /// server serves it.
    SecretKey {
        /// `/` plus its path relative to the directory.
        path: String,
        /// How it was recognised.
        why: &'static str,
    },
}

impl Problem {
    /// The URL path of the asset concerned.
    pub fn path(&self) -> &str {
        match self {
            Problem::Missing { path }
            | Problem::NotAFile { path }
            | Problem::Unreadable { path, .. }
            | Problem::WrongSize { path, .. }
            | Problem::PiecesDiffer { path, .. }
            | Problem::DigestDiffers { path }
            | Problem::Ignored { path }
            | Problem::SecretKey { path, .. } => path,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing { path } => write!(f, "missing: {path}"),
            Problem::NotAFile { path } => write!(f, "missing: {path} (not a regular file)"),
            Problem::Unreadable { path, error } => write!(f, "unreadable: {path} ({error})"),
            Problem::WrongSize {
                path,
                expected,
                found,
            } => write!(
                f,
                "tampered: {path} ({found} bytes, the manifest says {expected})"
            ),
            Problem::PiecesDiffer {
                path,
                first,
                differing,
                total,
                piece_size,
            } => {
                // Pieces are numbered from 1 here, for people; the byte range
                // is exact either way.
                let start = first * u64::from(*piece_size);
                if *differing == 1 {
                    write!(
                        f,
                        "tampered: {path} (piece {} of {total} differs, from byte {start})",
                        first + 1
                    )
                } else {
                    write!(
                        f,
                        "tampered: {path} ({differing} of {total} pieces differ, first piece {} from byte {start})",
                        first + 1
                    )
                }
            }
            Problem::Ignored { path } => write!(
                f,
                "ignored: {path} (listed in the manifest, but .peerhostignore excludes it: publish again)"
            ),
            Problem::SecretKey { path, why } => write!(
                f,
                "secret key: {path} ({why}; the web server serves it to anyone: move it out of the site)"
            ),
            Problem::DigestDiffers { path } => write!(
                f,
                "tampered: {path} (pieces match but the whole-file SHA-256 differs: the manifest is inconsistent)"
            ),
        }
    }
}

/// The outcome of checking a directory whose manifest verified.
#[derive(Debug, Clone)]
pub struct Report {
    /// The verified manifest.
    pub signed: SignedManifest,
    /// Problems found: listed files in manifest order, then secret keys.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Whether every listed file matched.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads and verifies `dir/peerhost.json` against `site_key` (or the key it
/// names) at `now`, then checks every listed file.
pub fn verify_dir(
    dir: &Path,
    site_key: Option<&SiteKey>,
    now: UnixTime,
) -> Result<Report, VerifyError> {
    if !dir.is_dir() {
        return Err(if dir.exists() {
            VerifyError::NotADirectory(dir.to_owned())
        } else {
            VerifyError::NoSuchDirectory(dir.to_owned())
        });
    }
    let path = dir.join(manifest::FILE_NAME);
    let text = fs::read_to_string(&path).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            VerifyError::NoManifest(path.clone())
        } else {
            VerifyError::Read {
                path: path.clone(),
                source,
            }
        }
    })?;
    let refused = |source| VerifyError::Manifest {
        path: path.clone(),
        source,
    };
    let signed = SignedManifest::from_json(&text).map_err(refused)?;
    let key = site_key.copied().unwrap_or(signed.manifest().site_key);
    signed.verify(&key, now).map_err(refused)?;
    let rules = IgnoreRules::load(dir)?;
    let mut problems: Vec<Problem> = signed
        .manifest()
        .assets
        .iter()
        .filter_map(|a| {
            if rules.excludes_file(Path::new(a.path.trim_start_matches('/'))) {
                return Some(Problem::Ignored {
                    path: a.path.clone(),
                });
            }
            check_asset(dir, a)
        })
        .collect();
    problems.extend(
        scan::scan(dir, None)?
            .secrets
            .into_iter()
            .map(|s| Problem::SecretKey {
                path: scan::url_path(&s.path),
                why: s.why,
            }),
    );
    Ok(Report { signed, problems })
}

/// Checks one asset's file piece by piece; `None` if it matches.
pub fn check_asset(dir: &Path, asset: &Asset) -> Option<Problem> {
    let path = asset.path.clone();
    // `validate_path` (checked when the manifest was parsed) rules out `..`
    // and empty segments, so this stays inside `dir`.
    let file_path = dir.join(asset.path.trim_start_matches('/'));
    let meta = match fs::symlink_metadata(&file_path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Some(Problem::Missing { path }),
        Err(e) => {
            return Some(Problem::Unreadable {
                path,
                error: e.to_string(),
            });
        }
    };
    if !meta.is_file() {
        return Some(Problem::NotAFile { path });
    }
    if meta.len() != asset.size {
        return Some(Problem::WrongSize {
            path,
            expected: asset.size,
            found: meta.len(),
        });
    }
    let unreadable = |e: io::Error| Problem::Unreadable {
        path: asset.path.clone(),
        error: e.to_string(),
    };
    let mut file = match File::open(&file_path) {
        Ok(f) => f,
        Err(e) => return Some(unreadable(e)),
    };
    let mut whole = sha2::Sha256::new();
    let mut buf = vec![0u8; asset.piece_size as usize];
    let mut first = None;
    let mut differing = 0u64;
    let mut remaining = asset.size;
    for (i, expected) in asset.pieces.iter().enumerate() {
        let len = remaining.min(u64::from(asset.piece_size)) as usize;
        if let Err(e) = file.read_exact(&mut buf[..len]) {
            return Some(unreadable(e));
        }
        remaining -= len as u64;
        whole.update(&buf[..len]);
        if Digest::of(&buf[..len]) != *expected {
            first.get_or_insert(i as u64);
            differing += 1;
        }
    }
    if let Some(first) = first {
        return Some(Problem::PiecesDiffer {
            path,
            first,
            differing,
            total: asset.pieces.len() as u64,
            piece_size: asset.piece_size,
        });
    }
    if Digest(whole.finalize().into()) != asset.digest {
        return Some(Problem::DigestDiffers { path });
    }
    None
}

/// Runs the command; `Ok(false)` if any file failed its check.
pub fn run(args: &Args) -> anyhow::Result<bool> {
    let report = verify_dir(&args.dir, args.site_key.as_ref(), unix_now())?;
    for p in &report.problems {
        println!("{p}");
    }
    let m = report.signed.manifest();
    if report.is_ok() {
        println!(
            "ok: {} assets, {} ({} bytes), version {}, site key {}, expires at unix time {}",
            m.assets.len(),
            fmt_bytes(m.total_size()),
            m.total_size(),
            m.version,
            m.site_key,
            m.expires_at
        );
        Ok(true)
    } else {
        let secrets = report
            .problems
            .iter()
            .filter(|p| matches!(p, Problem::SecretKey { .. }))
            .count();
        let mismatched = report.problems.len() - secrets;
        let mut parts = Vec::new();
        if mismatched > 0 {
            parts.push(format!(
                "{mismatched} of {} assets do not match the signed manifest",
                m.assets.len()
            ));
        }
        if secrets > 0 {
            parts.push(format!(
                "{secrets} secret key file(s) in the site directory: move them out, and make a new key if one was ever served"
            ));
        }
        eprintln!("error: {}", parts.join("; "));
        Ok(false)
    }
}
