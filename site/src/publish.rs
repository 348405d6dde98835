//! `peerhost publish`: hashes a site directory and writes its signed
//! manifest, `peerhost.json`, next to the files.
//!
//! Every regular file under the directory becomes one asset, except hidden
//! entries (names starting with `.`), what `.peerhostignore` excludes,
//! symbolic links (never followed, so a link cannot pull files from outside
//! the site into it) and the manifest itself. The URL path of a file is `/`
//! plus its relative path. A directory holding a secret key file, under any
//! name, hidden or ignored, is refused: the web server serves it all.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use peerhost_core::manifest::{
    self, Asset, DEFAULT_LIFETIME_SECS, DEFAULT_PIECE_SIZE, MAX_LIFETIME_SECS, Manifest,
    ManifestError, SignedManifest, SiteKey, SiteSecret,
};
use peerhost_core::time::UnixTime;

use crate::clock::unix_now;
use crate::fmt::{fmt_bytes, fmt_duration};
use crate::fsutil::{Overwrite, write_atomic};
use crate::keyfile;
pub use crate::scan::Skipped;
use crate::scan::{self, Scan, ScanError, Secret, SkipKind};

/// Permission bits of the manifest: it is public, web servers must read it.
pub const MANIFEST_MODE: u32 = 0o644;

/// Publish a site directory: hash every file and write the signed
/// manifest `DIR/peerhost.json`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The site's root directory (what the web server serves).
    pub dir: PathBuf,
    /// The site's secret key file (from `peerhost keygen`).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// How long the manifest stays valid: e.g. 3600s, 90m, 24h, 7d (at most 7d).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_lifetime)]
    pub lifetime: u64,
    /// Manifest version to publish; must be greater than the current one.
    /// Default: the current version plus one, or 1 for a new site.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub version: Option<u64>,
    /// List every entry left out of the manifest, not only the first few.
    #[arg(long, short)]
    pub verbose: bool,
}

/// How to publish.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seconds from `now` until the manifest expires.
    pub lifetime_secs: u64,
    /// Explicit version; `None` for the previous one plus one.
    pub version: Option<u64>,
    /// The manifest's `issued_at`.
    pub now: UnixTime,
    /// The secret key file being used, recognised in the site under any
    /// name (a key-format file is refused in any case).
    pub key_file: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lifetime_secs: DEFAULT_LIFETIME_SECS,
            version: None,
            now: unix_now(),
            key_file: None,
        }
    }
}

/// What [`publish`] wrote.
#[derive(Debug, Clone)]
pub struct Report {
    /// The manifest file written.
    pub manifest_path: PathBuf,
    /// The signed manifest.
    pub signed: SignedManifest,
    /// The version of the manifest this one replaced, if it was for the same site.
    pub previous_version: Option<u64>,
    /// The replaced manifest named another site key (so versions restart at 1).
    pub replaced_other_site: Option<SiteKey>,
    /// Entries not published.
    pub skipped: Vec<Skipped>,
    /// Files left out that could not be opened to check for a secret key.
    pub unchecked: Vec<(PathBuf, String)>,
}

/// Why publishing failed. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The site directory does not exist.
    #[error("site directory {} does not exist", .0.display())]
    NoSuchDirectory(PathBuf),
    /// The site path is not a directory.
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// A file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// What could not be read.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The site directory holds a secret key file.
    #[error(
        "refusing to publish {}: it holds a secret key, which the web server and every peer would hand to anyone: {}; move it out of the site directory",
        dir.display(),
        name_secrets(secrets)
    )]
    SecretInSite {
        /// The site directory.
        dir: PathBuf,
        /// What was found.
        secrets: Vec<Secret>,
    },
    /// The ignore file cannot be used.
    #[error("cannot use {}: {reason}", path.display())]
    IgnoreFile {
        /// The ignore file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file's name cannot be an asset path.
    #[error("cannot publish {}: {reason} (rename it, or hide it with a leading '.')", file.display())]
    BadFileName {
        /// The file, relative to the site directory.
        file: PathBuf,
        /// Why its path is not allowed.
        reason: String,
    },
    /// The existing manifest could not be used to pick the next version.
    #[error(
        "the existing {} is unusable ({reason}); delete it or pass --version N",
        path.display()
    )]
    ExistingManifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `--version` was not above the current version.
    #[error("version {requested} is not greater than the current version {current}")]
    VersionNotIncreasing {
        /// The version asked for.
        requested: u64,
        /// The version already published.
        current: u64,
    },
    /// The current version is the largest possible.
    #[error("the current version is u64::MAX; no later version exists")]
    VersionExhausted,
    /// The lifetime is zero or longer than [`MAX_LIFETIME_SECS`].
    #[error("{0}")]
    Lifetime(String),
    /// The manifest could not be built (too many files or pieces, say).
    #[error("cannot build the manifest: {0}")]
    Manifest(#[from] ManifestError),
    /// The manifest could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The manifest file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// Parses a manifest lifetime: a number with unit `s`, `m`, `h` or `d`
/// (no unit means seconds); between 1 s and [`MAX_LIFETIME_SECS`].
pub fn parse_lifetime(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{s:?} is not a duration like 3600s, 90m, 24h or 7d"
            ));
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 3600s, 90m, 24h or 7d"))?;
    let secs = n.saturating_mul(scale);
    check_lifetime(secs)?;
    Ok(secs)
}

fn check_lifetime(secs: u64) -> Result<(), String> {
    if secs == 0 {
        return Err("the lifetime must be at least 1 second".into());
    }
    if secs > MAX_LIFETIME_SECS {
        return Err(format!(
            "a lifetime of {} exceeds the maximum of {} (manifests must be re-published at least weekly)",
            fmt_duration(secs),
            fmt_duration(MAX_LIFETIME_SECS)
        ));
    }
    Ok(())
}

/// At most this many secrets are named in the error.
const MAX_SECRETS_NAMED: usize = 8;

/// `a.key (why), b/c (why)…` on one line.
fn name_secrets(secrets: &[Secret]) -> String {
    let mut s = secrets
        .iter()
        .take(MAX_SECRETS_NAMED)
        .map(|x| format!("{} ({})", x.path.display(), x.why))
        .collect::<Vec<_>>()
        .join(", ");
    if secrets.len() > MAX_SECRETS_NAMED {
        s.push_str(&format!(" and {} more", secrets.len() - MAX_SECRETS_NAMED));
    }
    s
}

impl From<ScanError> for PublishError {
    fn from(e: ScanError) -> Self {
        match e {
            ScanError::Read { path, source } => PublishError::Read { path, source },
            ScanError::IgnoreFile { path, reason } => PublishError::IgnoreFile { path, reason },
        }
    }
}

/// Publishes `dir`: hashes every file, signs, writes `dir/peerhost.json`.
///
/// `progress` gets its length set to the total bytes and advances as files
/// are hashed; pass [`ProgressBar::hidden`] for none.
pub fn publish(
    dir: &Path,
    secret: &SiteSecret,
    opts: &Options,
    progress: &ProgressBar,
) -> Result<Report, PublishError> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(PublishError::NotADirectory(dir.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(PublishError::NoSuchDirectory(dir.to_owned()));
        }
        Err(source) => {
            return Err(PublishError::Read {
                path: dir.to_owned(),
                source,
            });
        }
    }
    check_lifetime(opts.lifetime_secs).map_err(PublishError::Lifetime)?;
    let Scan {
        files: found,
        skipped,
        secrets,
        bad_names,
        unchecked,
    } = scan::scan(dir, opts.key_file.as_deref())?;
    if !secrets.is_empty() {
        return Err(PublishError::SecretInSite {
            dir: dir.to_owned(),
            secrets,
        });
    }
    if let Some((file, reason)) = bad_names.into_iter().next() {
        return Err(PublishError::BadFileName { file, reason });
    }
    let site_key = secret.site_key();
    let manifest_path = dir.join(manifest::FILE_NAME);
    let (previous_version, replaced_other_site) =
        previous_version(&manifest_path, &site_key, opts.version.is_some())?;
    let version = match (previous_version, opts.version) {
        (Some(current), Some(requested)) if requested <= current => {
            return Err(PublishError::VersionNotIncreasing { requested, current });
        }
        (_, Some(requested)) => requested,
        (Some(current), None) => current
            .checked_add(1)
            .ok_or(PublishError::VersionExhausted)?,
        (None, None) => 1,
    };

    progress.set_length(found.iter().map(|f| f.size).sum());
    let mut assets = Vec::with_capacity(found.len());
    for f in &found {
        let path = dir.join(&f.rel);
        let bytes = fs::read(&path).map_err(|source| PublishError::Read { path, source })?;
        let content_type = mime_guess::from_path(&f.rel).first_or_octet_stream();
        assets.push(Asset::from_bytes(
            &f.url,
            content_type.as_ref(),
            DEFAULT_PIECE_SIZE,
            &bytes,
        ));
        progress.inc(bytes.len() as u64);
    }

    let signed = Manifest {
        site_key,
        version,
        issued_at: opts.now.0,
        expires_at: opts.now.0.saturating_add(opts.lifetime_secs),
        flags: 0,
        assets,
    }
    .sign(secret)?;
    write_atomic(
        &manifest_path,
        signed.to_json().as_bytes(),
        MANIFEST_MODE,
        Overwrite::Allow,
    )
    .map_err(|source| PublishError::Write {
        path: manifest_path.clone(),
        source,
    })?;
    Ok(Report {
        manifest_path,
        signed,
        previous_version,
        replaced_other_site,
        skipped,
        unchecked,
    })
}

/// The version of the manifest at `path` if it is for `site_key`, and the
/// site key it names if it is for another site.
///
/// Its signature is checked (ignoring expiry: an expired manifest still
/// fixes the version), so a tampered file cannot push versions around.
/// With `override_given`, an unusable manifest is ignored.
fn previous_version(
    path: &Path,
    site_key: &SiteKey,
    override_given: bool,
) -> Result<(Option<u64>, Option<SiteKey>), PublishError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((None, None)),
        Err(_) if override_given => return Ok((None, None)),
        Err(e) => {
            return Err(PublishError::ExistingManifest {
                path: path.to_owned(),
                reason: e.to_string(),
            });
        }
    };
    let checked = SignedManifest::from_json(&text).and_then(|signed| {
        let m = signed.manifest();
        if m.site_key != *site_key {
            return Ok((None, Some(m.site_key)));
        }
        // Verify as of its own issue time: only the signature matters here.
        signed.verify(site_key, UnixTime(m.issued_at))?;
        Ok((Some(m.version), None))
    });
    match checked {
        Ok(v) => Ok(v),
        Err(_) if override_given => Ok((None, None)),
        Err(e) => Err(PublishError::ExistingManifest {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// A progress bar over bytes hashed, drawn on stderr only if it is a terminal.
pub fn progress_bar() -> ProgressBar {
    use std::io::IsTerminal as _;
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template(
        "hashing [{bar:32}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Without `--verbose`, this many skipped entries are named.
pub const SKIPPED_NAMED: usize = 5;

/// `0`, or `4 (2 hidden, 1 ignored by .peerhostignore, 1 symbolic link)`.
pub fn skipped_summary(skipped: &[Skipped]) -> String {
    let mut counts = std::collections::BTreeMap::<SkipKind, usize>::new();
    for s in skipped {
        *counts.entry(s.kind).or_default() += 1;
    }
    if counts.is_empty() {
        return "0".into();
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(kind, n)| match kind {
            SkipKind::Symlink if *n > 1 => format!("{n} symbolic links"),
            SkipKind::Symlink => format!("{n} symbolic link"),
            SkipKind::NotAFile => format!("{n} not regular files"),
            _ => format!("{n} {}", kind.reason()),
        })
        .collect();
    format!("{} ({})", skipped.len(), parts.join(", "))
}

/// Runs the command.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let secret = keyfile::read_key_file(&args.key)?;
    if keyfile::is_readable_by_others(&args.key) {
        eprintln!(
            "warning: key file {} is readable by other users; run `chmod 600` on it",
            args.key.display()
        );
    }
    let opts = Options {
        lifetime_secs: args.lifetime,
        version: args.version,
        now: unix_now(),
        key_file: Some(args.key.clone()),
    };
    let bar = progress_bar();
    let result = publish(&args.dir, &secret, &opts, &bar);
    bar.finish_and_clear();
    let report = result?;
    let shown = if args.verbose {
        report.skipped.len()
    } else {
        SKIPPED_NAMED
    };
    for s in report.skipped.iter().take(shown) {
        let slash = if s.is_dir { "/" } else { "" };
        eprintln!("skipped {}{slash}: {}", s.path.display(), s.kind.reason());
    }
    if report.skipped.len() > shown {
        eprintln!(
            "… and {} more skipped (--verbose lists them all)",
            report.skipped.len() - shown
        );
    }
    for (path, error) in &report.unchecked {
        eprintln!(
            "warning: cannot check {} for a secret key ({error}); it is not published, but the web server may serve it",
            path.display()
        );
    }
    if let Some(other) = report.replaced_other_site {
        eprintln!("note: replaced a manifest of another site ({other}); versions restart at 1");
    }
    let m = report.signed.manifest();
    println!("published {}", report.manifest_path.display());
    println!("  site key: {}", m.site_key);
    match report.previous_version {
        Some(prev) => println!("  version:  {} (was {prev})", m.version),
        None => println!("  version:  {}", m.version),
    }
    println!("  assets:   {}", m.assets.len());
    println!("  skipped:  {}", skipped_summary(&report.skipped));
    println!(
        "  bytes:    {} ({})",
        m.total_size(),
        fmt_bytes(m.total_size())
    );
    println!(
        "  expires:  in {} (unix time {})",
        fmt_duration(m.expires_at - m.issued_at),
        m.expires_at
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("3600s"), Ok(3600));
        assert_eq!(parse_lifetime("3600"), Ok(3600));
        assert_eq!(parse_lifetime("90m"), Ok(5400));
        assert_eq!(parse_lifetime("24h"), Ok(86_400));
        assert_eq!(parse_lifetime("7d"), Ok(MAX_LIFETIME_SECS));
        assert!(parse_lifetime("8d").unwrap_err().contains("maximum"));
        assert!(parse_lifetime("0s").is_err());
        assert!(parse_lifetime("").is_err());
        assert!(parse_lifetime("h").is_err());
        assert!(parse_lifetime("1w").is_err());
        assert!(parse_lifetime("-1h").is_err());
        assert!(parse_lifetime("99999999999999999999d").is_err());
    }
}
