//! What a site directory holds, as `publish` and `verify` see it: the files
//! to publish, the entries left out and why, and any secret key file, which
//! must never be in a site at all.
//!
//! Every entry is visited, hidden and ignored ones too, because the web
//! server serves the whole directory whatever the manifest lists: a key in
//! `.old/site.key` is as public as one in `site.key`. Files are checked by
//! their first bytes only, so the scan stays cheap however large the tree.
//! Symbolic links are never followed into; a link's target is checked
//! against the key file in use and for the key-file header.

use std::collections::HashSet;
use std::fs::{self, File, Metadata};
use std::io::{self, Read as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use peerhost_core::manifest;

/// The ignore file at the site's root, in gitignore syntax.
pub const IGNORE_FILE: &str = ".peerhostignore";

/// Every key file starts with this (then the format version, `1`): a file
/// starting so is a secret key whatever its name or version.
pub const KEY_FILE_PREFIX: &[u8] = b"peerhost-site-secret-key/";

/// Why an entry was left out of the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipKind {
    /// Its name starts with `.` (a hidden directory counts once).
    Hidden,
    /// `.peerhostignore` excludes it (an ignored directory counts once).
    Ignored,
    /// A symbolic link: never followed.
    Symlink,
    /// Not a regular file (a socket, a FIFO, a device).
    NotAFile,
}

impl SkipKind {
    /// The reason, for people.
    pub fn reason(self) -> &'static str {
        match self {
            SkipKind::Hidden => "hidden",
            SkipKind::Ignored => "ignored by .peerhostignore",
            SkipKind::Symlink => "symbolic link (not followed)",
            SkipKind::NotAFile => "not a regular file",
        }
    }
}

/// A directory entry left out of the manifest, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Path relative to the site directory.
    pub path: PathBuf,
    /// Whether it is a directory (everything under it is left out too).
    pub is_dir: bool,
    /// Why it was left out.
    pub kind: SkipKind,
}

/// A secret key found in the site directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// Path relative to the site directory.
    pub path: PathBuf,
    /// How it was recognised.
    pub why: &'static str,
}

/// A file that would be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Path relative to the site directory.
    pub rel: PathBuf,
    /// Its URL path: `/` plus `rel` with `/` separators.
    pub url: String,
    /// Its size in bytes when scanned.
    pub size: u64,
}

/// Everything [`scan`] found.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Files to publish, sorted by URL path.
    pub files: Vec<Found>,
    /// Entries left out, in walk order (names sorted within a directory).
    pub skipped: Vec<Skipped>,
    /// Secret keys anywhere in the tree.
    pub secrets: Vec<Secret>,
    /// Files that would be published but whose name cannot be an asset
    /// path, with the reason.
    pub bad_names: Vec<(PathBuf, String)>,
    /// Entries left out that could not be read to check for a key.
    pub unchecked: Vec<(PathBuf, String)>,
}

/// Why a directory could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A directory or file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// What could not be read.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The ignore file has a line that is not a valid pattern.
    #[error("{}: {reason}", path.display())]
    IgnoreFile {
        /// The ignore file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The site's `.peerhostignore` rules (none if the file is absent).
#[derive(Debug, Clone)]
pub struct IgnoreRules(Option<Gitignore>);

impl IgnoreRules {
    /// Reads `root/.peerhostignore`. A pattern that does not parse is an
    /// error rather than silently publishing what it meant to exclude.
    pub fn load(root: &Path) -> Result<IgnoreRules, ScanError> {
        let path = root.join(IGNORE_FILE);
        match fs::metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(IgnoreRules(None)),
            Err(source) => return Err(ScanError::Read { path, source }),
            Ok(_) => {}
        }
        let mut builder = GitignoreBuilder::new(root);
        if let Some(e) = builder.add(&path) {
            return Err(ScanError::IgnoreFile {
                path,
                reason: e.to_string(),
            });
        }
        let rules = builder.build().map_err(|e| ScanError::IgnoreFile {
            path,
            reason: e.to_string(),
        })?;
        Ok(IgnoreRules(Some(rules)))
    }

    /// Whether the entry `rel` (relative to the root) is excluded, looking
    /// at it alone: the walk does not descend into excluded directories, as
    /// git does not.
    fn excludes_entry(&self, rel: &Path, is_dir: bool) -> bool {
        self.0
            .as_ref()
            .is_some_and(|g| g.matched(rel, is_dir).is_ignore())
    }

    /// Whether the file `rel` or any directory above it is excluded.
    pub fn excludes_file(&self, rel: &Path) -> bool {
        self.0
            .as_ref()
            .is_some_and(|g| g.matched_path_or_any_parents(rel, false).is_ignore())
    }
}

/// The key file in use, to recognise it under another name.
struct KeyIdentity {
    canonical: PathBuf,
    dev: u64,
    ino: u64,
}

/// Scans the site directory `root` (which must exist). `key_file` is the
/// secret key being used, if any: it is found by identity (a hard link, a
/// symbolic link, or the path itself under `root`) even if it were
/// unreadable.
pub fn scan(root: &Path, key_file: Option<&Path>) -> Result<Scan, ScanError> {
    let rules = IgnoreRules::load(root)?;
    let key = key_file.and_then(|k| {
        let meta = fs::metadata(k).ok()?;
        Some(KeyIdentity {
            canonical: fs::canonicalize(k).ok()?,
            dev: meta.dev(),
            ino: meta.ino(),
        })
    });
    let mut out = Scan::default();
    if let (Some(key), Ok(root_canon)) = (&key, fs::canonicalize(root))
        && let Ok(inside) = key.canonical.strip_prefix(&root_canon)
    {
        out.secrets.push(Secret {
            path: inside.to_owned(),
            why: "the --key file",
        });
    }
    walk(
        root,
        Path::new(""),
        Visibility::Published,
        &rules,
        key.as_ref(),
        &mut out,
    )?;
    // One file can be found both by its path and by its identity.
    let mut seen = HashSet::new();
    out.secrets.retain(|s| seen.insert(s.path.clone()));
    out.files
        .sort_by(|a, b| a.url.as_bytes().cmp(b.url.as_bytes()));
    Ok(out)
}

/// Whether entries under the directory being walked are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visibility {
    Published,
    /// Under a hidden or ignored directory: checked for keys only.
    LeftOut,
}

fn walk(
    root: &Path,
    rel: &Path,
    vis: Visibility,
    rules: &IgnoreRules,
    key: Option<&KeyIdentity>,
    out: &mut Scan,
) -> Result<(), ScanError> {
    let dir = root.join(rel);
    let read = |path: &Path, source| ScanError::Read {
        path: path.to_owned(),
        source,
    };
    let listed = fs::read_dir(&dir).and_then(|d| d.collect::<Result<Vec<_>, _>>());
    let mut entries = match listed {
        Ok(e) => e,
        // Left out anyway: publishing used to skip it unread, so an
        // unreadable `.cache/` warns rather than stops the publish.
        Err(e) if vis == Visibility::LeftOut => {
            out.unchecked.push((rel.to_owned(), e.to_string()));
            return Ok(());
        }
        Err(e) => return Err(read(&dir, e)),
    };
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let rel_path = rel.join(&name);
        let path = entry.path();
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if vis == Visibility::LeftOut => {
                out.unchecked.push((rel_path, e.to_string()));
                continue;
            }
            Err(e) => return Err(read(&path, e)),
        };
        let ty = meta.file_type();
        check_secret(&path, &rel_path, &meta, key, out);

        let is_manifest = rel.as_os_str().is_empty() && name == manifest::FILE_NAME;
        let left_out = if vis == Visibility::LeftOut || is_manifest {
            None
        } else if name.as_encoded_bytes().starts_with(b".") {
            Some(SkipKind::Hidden)
        } else if rules.excludes_entry(&rel_path, ty.is_dir()) {
            Some(SkipKind::Ignored)
        } else if ty.is_symlink() {
            Some(SkipKind::Symlink)
        } else if !ty.is_dir() && !ty.is_file() {
            Some(SkipKind::NotAFile)
        } else {
            None
        };
        if let Some(kind) = left_out {
            out.skipped.push(Skipped {
                path: rel_path.clone(),
                is_dir: ty.is_dir(),
                kind,
            });
        }
        let published = vis == Visibility::Published && left_out.is_none() && !is_manifest;
        if ty.is_dir() {
            let vis = if published {
                Visibility::Published
            } else {
                Visibility::LeftOut
            };
            walk(root, &rel_path, vis, rules, key, out)?;
        } else if ty.is_file() && published {
            let url = url_path(&rel_path);
            match name
                .to_str()
                .ok_or_else(|| "its name is not UTF-8".to_owned())
                .and_then(|_| manifest::validate_path(&url))
            {
                Ok(()) => out.files.push(Found {
                    rel: rel_path,
                    url,
                    size: meta.len(),
                }),
                Err(reason) => out.bad_names.push((rel_path, reason)),
            }
        }
    }
    Ok(())
}

/// Records `rel` in `out.secrets` if it is, or links to, a secret key.
fn check_secret(
    path: &Path,
    rel: &Path,
    meta: &Metadata,
    key: Option<&KeyIdentity>,
    out: &mut Scan,
) {
    let mut found = |why| {
        out.secrets.push(Secret {
            path: rel.to_owned(),
            why,
        });
    };
    let same_file = |m: &Metadata| key.is_some_and(|k| (m.dev(), m.ino()) == (k.dev, k.ino));
    let ty = meta.file_type();
    if ty.is_file() {
        if same_file(meta) {
            found("a hard link to the --key file");
            return;
        }
    } else if ty.is_symlink() {
        // Web servers commonly follow links, so a link to the key publishes it.
        let Ok(target) = fs::metadata(path) else {
            return; // dangling
        };
        if same_file(&target) {
            found("a symbolic link to the --key file");
            return;
        }
        if target.is_dir() {
            if let (Some(k), Ok(t)) = (key, fs::canonicalize(path))
                && k.canonical.starts_with(&t)
            {
                found("a symbolic link to a directory holding the --key file");
            }
            return;
        }
        if !target.is_file() {
            return;
        }
    } else {
        return; // directories are walked; FIFOs and devices are not opened
    }
    match starts_like_a_key(path) {
        Ok(true) if ty.is_symlink() => found("a symbolic link to a peerhost secret key file"),
        Ok(true) => found("a peerhost secret key file"),
        Ok(false) => {}
        Err(e) => out.unchecked.push((rel.to_owned(), e.to_string())),
    }
}

/// Whether the file begins with the key-file header (after an optional
/// UTF-8 byte-order mark and leading whitespace, which an editor may add).
pub fn starts_like_a_key(path: &Path) -> io::Result<bool> {
    const WINDOW: usize = 64;
    let mut buf = [0u8; WINDOW];
    let mut len = 0;
    let mut file = File::open(path)?;
    while len < WINDOW {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(looks_like_a_key(&buf[..len]))
}

/// [`starts_like_a_key`] on the first bytes of a file.
pub fn looks_like_a_key(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    head[start..].starts_with(KEY_FILE_PREFIX)
}

/// `/` plus the relative path with `/` separators (lossy for non-UTF-8
/// names, which [`scan`] reports as bad names).
pub fn url_path(rel: &Path) -> String {
    rel.components().fold(String::new(), |mut url, c| {
        url.push('/');
        url.push_str(&c.as_os_str().to_string_lossy());
        url
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_header_is_recognised() {
        assert!(looks_like_a_key(b"peerhost-site-secret-key/1\nseed: x\n"));
        assert!(looks_like_a_key(b"peerhost-site-secret-key/2\r\n"));
        assert!(looks_like_a_key(
            b"\xef\xbb\xbf  \npeerhost-site-secret-key/1"
        ));
        assert!(!looks_like_a_key(b"# peerhost-site-secret-key/1\n"));
        assert!(!looks_like_a_key(b"peerhost-site-secret-key"));
        assert!(!looks_like_a_key(b""));
    }

    #[test]
    fn url_paths_use_slashes() {
        assert_eq!(url_path(Path::new("a/b/c.txt")), "/a/b/c.txt");
        assert_eq!(url_path(Path::new("index.html")), "/index.html");
    }
}
