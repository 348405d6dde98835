//! The site secret-key file: a small, documented text format.
//!
//! ```text
//! peerhost-site-secret-key/1
//! # This is the SECRET signing key of a peerhost site. Keep it private:
//! # anyone holding it can publish manifests for the site.
//! site-key: 2ZtH…43 characters…   (public; optional; checked if present)
//! seed: q0Vx…43 characters…       (the secret 32-byte ed25519 seed)
//! ```
//!
//! Rules:
//! - The first line is exactly [`HEADER`] (a trailing `\r` is tolerated).
//! - Each further line is blank, a `#` comment, or `field: value`.
//! - `seed` is required, exactly once: 32 bytes as unpadded base64url.
//! - `site-key` is optional, at most once; if present it must be the public
//!   key derived from the seed, so a damaged file is caught rather than
//!   silently signing for another site.
//! - Any other field is an error (a typo should not be ignored).
//! - The file is at most [`MAX_KEY_FILE_LEN`] bytes.
//!
//! [`write_key_file`] creates it with mode 0600, atomically.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use peerhost_core::manifest::{SiteKey, SiteSecret};

use crate::fsutil::{Overwrite, write_atomic};

/// First line of every key file; names the format and its version.
pub const HEADER: &str = "peerhost-site-secret-key/1";
/// Largest key file read; a real one is about 300 bytes.
pub const MAX_KEY_FILE_LEN: u64 = 4096;
/// Permission bits of a new key file.
pub const KEY_FILE_MODE: u32 = 0o600;

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read.
    #[error("cannot read key file {}: {source}", path.display())]
    Read {
        /// The key file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is not a valid key file.
    #[error("{} is not a valid peerhost key file: {reason}", path.display())]
    Invalid {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The target exists and overwriting was not allowed.
    #[error("{} already exists; pass --force to replace it", path.display())]
    Exists {
        /// The key file.
        path: PathBuf,
    },
    /// The file could not be written.
    #[error("cannot write key file {}: {source}", path.display())]
    Write {
        /// The key file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// The text of a key file holding `secret`.
pub fn encode(secret: &SiteSecret) -> String {
    format!(
        "{HEADER}\n\
         # This is the SECRET signing key of a peerhost site. Keep it private:\n\
         # anyone holding it can publish manifests for the site.\n\
         # The site key (public, goes in the page) is:\n\
         site-key: {}\n\
         seed: {}\n",
        secret.site_key(),
        URL_SAFE_NO_PAD.encode(secret.seed()),
    )
}

/// Parses the text of a key file; the error is the reason it is invalid.
pub fn decode(text: &str) -> Result<SiteSecret, String> {
    let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
    if lines.next() != Some(HEADER) {
        return Err(format!("the first line is not {HEADER:?}"));
    }
    let mut seed: Option<[u8; 32]> = None;
    let mut site_key: Option<SiteKey> = None;
    for (i, line) in lines.enumerate() {
        let n = i + 2;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((field, value)) = line.split_once(':') else {
            return Err(format!("line {n} is not `field: value`"));
        };
        let value = value.trim();
        match field.trim() {
            "seed" => {
                if seed.is_some() {
                    return Err(format!("line {n}: a second seed"));
                }
                let bytes = URL_SAFE_NO_PAD
                    .decode(value)
                    .ok()
                    .and_then(|v| <[u8; 32]>::try_from(v).ok())
                    .ok_or_else(|| {
                        format!("line {n}: the seed is not 32 bytes of unpadded base64url")
                    })?;
                seed = Some(bytes);
            }
            "site-key" => {
                if site_key.is_some() {
                    return Err(format!("line {n}: a second site-key"));
                }
                site_key = Some(value.parse().map_err(|e| format!("line {n}: {e}"))?);
            }
            other => return Err(format!("line {n}: unknown field {other:?}")),
        }
    }
    let seed = seed.ok_or("no `seed:` line")?;
    let secret = SiteSecret::from_seed(seed);
    if let Some(recorded) = site_key
        && recorded != secret.site_key()
    {
        return Err(format!(
            "the seed belongs to site key {}, but the file says {recorded}: the file is damaged",
            secret.site_key()
        ));
    }
    Ok(secret)
}

/// Reads the key file at `path`.
pub fn read_key_file(path: &Path) -> Result<SiteSecret, KeyFileError> {
    let read = |source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    };
    let invalid = |reason: String| KeyFileError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let meta = fs::metadata(path).map_err(read)?;
    if !meta.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    if meta.len() > MAX_KEY_FILE_LEN {
        return Err(invalid(format!(
            "{} bytes; a key file is at most {MAX_KEY_FILE_LEN}",
            meta.len()
        )));
    }
    let bytes = fs::read(path).map_err(read)?;
    let text = String::from_utf8(bytes).map_err(|_| invalid("not UTF-8 text".into()))?;
    decode(&text).map_err(invalid)
}

/// Whether a key file can be read by users other than its owner.
pub fn is_readable_by_others(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

/// Writes `secret` to `path` atomically with mode 0600.
pub fn write_key_file(
    path: &Path,
    secret: &SiteSecret,
    overwrite: Overwrite,
) -> Result<(), KeyFileError> {
    write_atomic(path, encode(secret).as_bytes(), KEY_FILE_MODE, overwrite).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists && overwrite == Overwrite::Refuse {
            KeyFileError::Exists {
                path: path.to_owned(),
            }
        } else {
            KeyFileError::Write {
                path: path.to_owned(),
                source,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let secret = SiteSecret::from_seed([7; 32]);
        let back = decode(&encode(&secret)).unwrap();
        assert_eq!(back.seed(), secret.seed());
    }

    #[test]
    fn site_key_line_is_optional_but_checked() {
        let secret = SiteSecret::from_seed([7; 32]);
        let text = encode(&secret);
        let without: String = text
            .lines()
            .filter(|l| !l.starts_with("site-key"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(decode(&without).unwrap().seed(), secret.seed());
        let other = SiteSecret::from_seed([8; 32]).site_key().to_string();
        let wrong = text.replace(&secret.site_key().to_string(), &other);
        assert!(decode(&wrong).unwrap_err().contains("damaged"));
    }

    #[test]
    fn rejects_malformed() {
        let seed = URL_SAFE_NO_PAD.encode([1u8; 32]);
        assert!(decode("").is_err());
        assert!(decode(&format!("seed: {seed}\n")).is_err(), "no header");
        assert!(decode(&format!("{HEADER}\n")).is_err(), "no seed");
        assert!(decode(&format!("{HEADER}\nseed: {seed}\nseed: {seed}\n")).is_err());
        assert!(decode(&format!("{HEADER}\nseed: AAAA\n")).is_err());
        assert!(decode(&format!("{HEADER}\nsed: {seed}\n")).is_err(), "typo");
        assert!(
            decode(&format!("{HEADER}\r\nseed: {seed}\r\n")).is_ok(),
            "CRLF"
        );
    }
}
