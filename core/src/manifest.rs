//! The site manifest: the signed table of contents of a site.
//!
//! A manifest lists every asset a site lets peers share, with the SHA-256 of
//! each piece and of the whole file. The site's ed25519 key signs one
//! canonical byte encoding of it; a peer, the tracker and the browser all
//! verify against that key before trusting a single byte.
//!
//! # Canonical encoding (`peerhost-manifest/1`)
//! All integers are big-endian. There is exactly one valid encoding of a
//! [`Manifest`]: the decoder rejects anything [`Manifest::canonical_bytes`]
//! would not have produced (unsorted or duplicate paths, trailing bytes,
//! unknown flags, inconsistent piece counts).
//!
//! ```text
//! magic        20 bytes  "PEERHOST-MANIFEST-1\n"
//! site_key     32 bytes  ed25519 public key
//! version       u64      strictly increasing per site
//! issued_at     u64      unix seconds
//! expires_at    u64      unix seconds, issued_at < expires_at <= issued_at + MAX_LIFETIME_SECS
//! flags         u32      bit 0: origin under pressure; other bits must be 0
//! asset_count   u32
//! asset_count × {
//!   path_len    u16, path (UTF-8, see `validate_path`), strictly ascending by bytes
//!   type_len    u8,  content type (printable ASCII)
//!   size        u64
//!   piece_size  u32      power of two in MIN_PIECE_SIZE..=MAX_PIECE_SIZE
//!   digest      32 bytes SHA-256 of the whole file (SRI `sha256-…`)
//!   pieces      ceil(size / piece_size) × 32 bytes, SHA-256 of each piece
//! }
//! ```
//! A [`SignedManifest`] on the wire is those bytes followed by the 64-byte
//! ed25519 signature over them. On disk (`peerhost.json`) it is a JSON
//! document carrying the same fields; its signature is still over the
//! canonical bytes, so any JSON spelling of the same manifest verifies.
//!
//! # Who checks the signature
//! With the `dalek` feature (on by default) the core checks ed25519
//! signatures itself ([`SignedManifest::verify`], [`ManifestGuard::accept`])
//! and can sign ([`SiteSecret`]). Without it — the browser build, which
//! uses the browser's WebCrypto instead — only the `*_with` forms exist:
//! they take the raw signature check as a function of (site key, signed
//! bytes, signature) and still do every other check themselves.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
#[cfg(feature = "dalek")]
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::codec::{ReadError, Reader};
use crate::json::{JsonValue, MAX_SAFE_INTEGER};
use crate::piece::{AssetLayout, Digest, PieceMap};
use crate::time::UnixTime;

/// Domain separator at the start of the canonical encoding.
pub const MAGIC: &[u8; 20] = b"PEERHOST-MANIFEST-1\n";
/// Identifier of the JSON file format.
pub const JSON_FORMAT: &str = "peerhost-manifest/1";
/// Conventional file name of the manifest at the root of a published site.
pub const FILE_NAME: &str = "peerhost.json";
/// Default validity of a freshly published manifest: 24 hours.
pub const DEFAULT_LIFETIME_SECS: u64 = 24 * 3600;
/// Longest validity a manifest may claim: 7 days. Bounds how long a
/// stale-but-signed manifest can be replayed (freeze attack).
pub const MAX_LIFETIME_SECS: u64 = 7 * 24 * 3600;
/// Clock skew tolerated on `issued_at` before a manifest is "not yet valid".
pub const CLOCK_SKEW_SECS: u64 = 300;
/// Default piece size: one piece is one `peerhost/1` piece frame.
pub const DEFAULT_PIECE_SIZE: u32 = 16 * 1024;
/// Smallest allowed piece size.
pub const MIN_PIECE_SIZE: u32 = 1024;
/// Largest allowed piece size (a piece must fit one wire frame).
pub const MAX_PIECE_SIZE: u32 = 16 * 1024;
/// Most assets one manifest may list.
pub const MAX_ASSETS: usize = 65_536;
/// Most pieces one manifest may list in all (2 GiB at 16 KiB pieces); the
/// have-bitfield of the handshake is sized by this.
pub const MAX_TOTAL_PIECES: u32 = 131_072;
/// Longest asset path in bytes.
pub const MAX_PATH_LEN: usize = 1024;
/// Longest content type in bytes.
pub const MAX_CONTENT_TYPE_LEN: usize = 127;
/// Largest signed manifest encoding accepted from anyone.
pub const MAX_MANIFEST_LEN: usize = 8 * 1024 * 1024;
/// Length of an ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Flag bit: the origin is under pressure; clients prefer peers (emergency mode).
pub const FLAG_ORIGIN_UNDER_PRESSURE: u32 = 1;
const KNOWN_FLAGS: u32 = FLAG_ORIGIN_UNDER_PRESSURE;

/// Why a manifest was refused. Each variant says what the offerer did wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The bytes or JSON do not form a well-formed canonical manifest.
    #[error("malformed manifest: {0}")]
    Malformed(String),
    /// The manifest is for another site than the key we trust.
    #[error("manifest is signed for site {found}, expected {expected}")]
    WrongSiteKey {
        /// The site key we trust.
        expected: SiteKey,
        /// The site key the manifest names.
        found: SiteKey,
    },
    /// The signature does not verify under the site key.
    #[error("manifest signature does not verify")]
    BadSignature,
    /// `expires_at` is in the past.
    #[error("manifest expired at {expires_at} (now {now})")]
    Expired {
        /// When it expired, unix seconds.
        expires_at: u64,
        /// Our clock, unix seconds.
        now: u64,
    },
    /// `issued_at` is further in the future than the skew tolerance.
    #[error("manifest not valid before {issued_at} (now {now})")]
    NotYetValid {
        /// When it becomes valid, unix seconds.
        issued_at: u64,
        /// Our clock, unix seconds.
        now: u64,
    },
    /// A lower version than one already accepted: a replay or rollback.
    #[error("manifest version {offered} is older than accepted version {current}")]
    Rollback {
        /// The version offered.
        offered: u64,
        /// The highest version already accepted.
        current: u64,
    },
    /// The same version as one already accepted, with different content:
    /// the site key signed two different manifests for one version.
    #[error("manifest version {version} differs from the accepted manifest of that version")]
    Equivocation {
        /// The version both manifests claim.
        version: u64,
    },
}

impl From<ReadError> for ManifestError {
    fn from(e: ReadError) -> Self {
        ManifestError::Malformed(e.to_string())
    }
}

/// A site's ed25519 public key; also the site's identity.
///
/// Written as unpadded base64url (43 characters), as in the script tag's
/// site-key attribute.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteKey(pub [u8; 32]);

impl SiteKey {
    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The raw ed25519 check of `signature` over `message` under `key`
/// (strict: small-order keys and non-canonical encodings are refused).
///
/// The one step of manifest verification a driver may do itself
/// ([`SignedManifest::verify_with`]); native drivers that are asked to
/// (see `ClientConfig::deferred_signatures`) can answer with this.
#[cfg(feature = "dalek")]
pub fn verify_signature(key: &SiteKey, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
    VerifyingKey::from_bytes(&key.0).is_ok_and(|k| {
        k.verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    })
}

impl fmt::Display for SiteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for SiteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SiteKey({self})")
    }
}

/// Error parsing a [`SiteKey`] from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a site key is 43 characters of unpadded base64url encoding 32 bytes")]
pub struct ParseSiteKeyError;

impl FromStr for SiteKey {
    type Err = ParseSiteKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = URL_SAFE_NO_PAD
            .decode(s.trim())
            .map_err(|_| ParseSiteKeyError)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| ParseSiteKeyError)?;
        Ok(SiteKey(arr))
    }
}

/// A site's secret signing key. Kept out of the browser; used by the CLI.
#[cfg(feature = "dalek")]
pub struct SiteSecret(SigningKey);

#[cfg(feature = "dalek")]
impl SiteSecret {
    /// The secret from its 32-byte seed (the caller supplies the randomness).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SiteSecret(SigningKey::from_bytes(&seed))
    }

    /// The 32-byte seed, for storing the key.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The matching public site key.
    pub fn site_key(&self) -> SiteKey {
        SiteKey(self.0.verifying_key().to_bytes())
    }
}

#[cfg(feature = "dalek")]
impl fmt::Debug for SiteSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SiteSecret(for {})", self.site_key())
    }
}

/// One shareable file of the site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// URL path, starting with `/`.
    pub path: String,
    /// MIME type served with it.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Piece size in bytes (the last piece may be shorter).
    pub piece_size: u32,
    /// SHA-256 of the whole file.
    pub digest: Digest,
    /// SHA-256 of every piece, in order.
    pub pieces: Vec<Digest>,
}

impl Asset {
    /// Describes `data` served at `path`, hashing it in `piece_size` pieces.
    ///
    /// # Panics
    /// If `piece_size` is 0 (a caller bug; [`Manifest::validate`] allows
    /// only `MIN_PIECE_SIZE..=MAX_PIECE_SIZE`).
    pub fn from_bytes(path: &str, content_type: &str, piece_size: u32, data: &[u8]) -> Asset {
        let pieces = data.chunks(piece_size as usize).map(Digest::of).collect();
        Asset {
            path: path.to_owned(),
            content_type: content_type.to_owned(),
            size: data.len() as u64,
            piece_size,
            digest: Digest::of(data),
            pieces,
        }
    }

    /// Number of pieces an asset of `size` bytes has with `piece_size`.
    pub fn piece_count_for(size: u64, piece_size: u32) -> u64 {
        size.div_ceil(u64::from(piece_size))
    }

    /// The whole-file digest in Subresource Integrity form, `sha256-…`.
    pub fn integrity(&self) -> String {
        self.digest.to_sri()
    }
}

/// The site's table of contents, not yet signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The key that signs it.
    pub site_key: SiteKey,
    /// Strictly increasing per site.
    pub version: u64,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds.
    pub expires_at: u64,
    /// Bit set of `FLAG_*` constants.
    pub flags: u32,
    /// Assets sorted by path, paths unique.
    pub assets: Vec<Asset>,
}

impl Manifest {
    /// Checks every structural rule of the format.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let bad = |m: String| Err(ManifestError::Malformed(m));
        if self.expires_at <= self.issued_at {
            return bad("expires_at is not after issued_at".into());
        }
        if self.expires_at - self.issued_at > MAX_LIFETIME_SECS {
            return bad(format!(
                "lifetime {} s exceeds the maximum of {MAX_LIFETIME_SECS} s",
                self.expires_at - self.issued_at
            ));
        }
        if self.flags & !KNOWN_FLAGS != 0 {
            return bad(format!("unknown flags {:#x}", self.flags & !KNOWN_FLAGS));
        }
        if self.assets.len() > MAX_ASSETS {
            return bad(format!("more than {MAX_ASSETS} assets"));
        }
        let mut total_pieces: u64 = 0;
        for (i, a) in self.assets.iter().enumerate() {
            validate_path(&a.path).map_err(ManifestError::Malformed)?;
            if i > 0 && self.assets[i - 1].path.as_bytes() >= a.path.as_bytes() {
                return bad(format!("asset paths not strictly sorted at {:?}", a.path));
            }
            validate_content_type(&a.content_type).map_err(ManifestError::Malformed)?;
            if !a.piece_size.is_power_of_two()
                || !(MIN_PIECE_SIZE..=MAX_PIECE_SIZE).contains(&a.piece_size)
            {
                return bad(format!(
                    "{}: piece size {} not allowed",
                    a.path, a.piece_size
                ));
            }
            let expected = Asset::piece_count_for(a.size, a.piece_size);
            if a.pieces.len() as u64 != expected {
                return bad(format!(
                    "{}: {} piece hashes for {} pieces",
                    a.path,
                    a.pieces.len(),
                    expected
                ));
            }
            total_pieces += expected;
        }
        if total_pieces > u64::from(MAX_TOTAL_PIECES) {
            return bad(format!("{total_pieces} pieces exceed {MAX_TOTAL_PIECES}"));
        }
        // A manifest that could not travel between peers is not publishable.
        let len = self.encoded_len().saturating_add(SIGNATURE_LEN as u64);
        if len > MAX_MANIFEST_LEN as u64 {
            return bad(format!(
                "signed encoding of {len} bytes exceeds {MAX_MANIFEST_LEN}"
            ));
        }
        Ok(())
    }

    /// Length of [`Manifest::canonical_bytes`] (without the signature).
    pub fn encoded_len(&self) -> u64 {
        let fixed = (MAGIC.len() + 32 + 8 + 8 + 8 + 4 + 4) as u64;
        self.assets.iter().fold(fixed, |n, a| {
            n.saturating_add((2 + a.path.len() + 1 + a.content_type.len() + 8 + 4 + 32) as u64)
                .saturating_add(32u64.saturating_mul(a.pieces.len() as u64))
        })
    }

    /// Whether the site marked its origin as under pressure.
    pub fn origin_under_pressure(&self) -> bool {
        self.flags & FLAG_ORIGIN_UNDER_PRESSURE != 0
    }

    /// The asset at `path`, with its index.
    pub fn asset(&self, path: &str) -> Option<(usize, &Asset)> {
        self.assets
            .binary_search_by(|a| a.path.as_bytes().cmp(path.as_bytes()))
            .ok()
            .map(|i| (i, &self.assets[i]))
    }

    /// Total pieces over all assets.
    pub fn total_pieces(&self) -> u32 {
        self.assets.iter().map(|a| a.pieces.len() as u32).sum()
    }

    /// Total bytes over all assets: one copy of the site.
    pub fn total_size(&self) -> u64 {
        self.assets.iter().map(|a| a.size).sum()
    }

    /// The one canonical byte encoding the signature covers.
    ///
    /// Call [`Manifest::validate`] first: an invalid manifest (say, a path
    /// longer than `u16::MAX`) has no canonical encoding.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len() as usize);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.site_key.0);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&(self.assets.len() as u32).to_be_bytes());
        for a in &self.assets {
            out.extend_from_slice(&(a.path.len() as u16).to_be_bytes());
            out.extend_from_slice(a.path.as_bytes());
            out.push(a.content_type.len() as u8);
            out.extend_from_slice(a.content_type.as_bytes());
            out.extend_from_slice(&a.size.to_be_bytes());
            out.extend_from_slice(&a.piece_size.to_be_bytes());
            out.extend_from_slice(&a.digest.0);
            for p in &a.pieces {
                out.extend_from_slice(&p.0);
            }
        }
        out
    }

    /// Decodes the canonical encoding (without signature); total.
    pub fn decode_canonical(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let mut r = Reader::new(bytes);
        Self::read(&mut r).and_then(|m| {
            r.expect_empty()?;
            Ok(m)
        })
    }

    fn read(r: &mut Reader<'_>) -> Result<Manifest, ManifestError> {
        if r.take(MAGIC.len())? != MAGIC {
            return Err(ManifestError::Malformed("not a peerhost manifest".into()));
        }
        let site_key = SiteKey(r.array()?);
        let version = r.u64()?;
        let issued_at = r.u64()?;
        let expires_at = r.u64()?;
        let flags = r.u32()?;
        let count = r.u32()? as usize;
        if count > MAX_ASSETS {
            return Err(ManifestError::Malformed(format!(
                "more than {MAX_ASSETS} assets"
            )));
        }
        // Each asset takes at least 2+1+8+4+32 bytes: bound the allocation by what is there.
        let mut assets = Vec::with_capacity(count.min(r.remaining() / 47));
        for _ in 0..count {
            let path_len = r.u16()? as usize;
            let path = std::str::from_utf8(r.take(path_len)?)
                .map_err(|_| ManifestError::Malformed("asset path is not UTF-8".into()))?
                .to_owned();
            let type_len = r.u8()? as usize;
            let content_type = std::str::from_utf8(r.take(type_len)?)
                .map_err(|_| ManifestError::Malformed("content type is not UTF-8".into()))?
                .to_owned();
            let size = r.u64()?;
            let piece_size = r.u32()?;
            if piece_size == 0 {
                return Err(ManifestError::Malformed("piece size 0".into()));
            }
            let digest = Digest(r.array()?);
            let n = Asset::piece_count_for(size, piece_size);
            if n > (r.remaining() / 32) as u64 {
                return Err(ManifestError::Malformed(format!(
                    "{path}: piece list truncated"
                )));
            }
            let mut pieces = Vec::with_capacity(n as usize);
            for _ in 0..n {
                pieces.push(Digest(r.array()?));
            }
            assets.push(Asset {
                path,
                content_type,
                size,
                piece_size,
                digest,
                pieces,
            });
        }
        let m = Manifest {
            site_key,
            version,
            issued_at,
            expires_at,
            flags,
            assets,
        };
        m.validate()?;
        Ok(m)
    }

    /// Signs the manifest with the site's secret key.
    ///
    /// Fails if the manifest is invalid or names another site key.
    #[cfg(feature = "dalek")]
    pub fn sign(self, secret: &SiteSecret) -> Result<SignedManifest, ManifestError> {
        self.validate()?;
        if self.site_key != secret.site_key() {
            return Err(ManifestError::WrongSiteKey {
                expected: secret.site_key(),
                found: self.site_key,
            });
        }
        let body = self.canonical_bytes();
        let signature = secret.0.sign(&body).to_bytes();
        Ok(SignedManifest {
            manifest: self,
            body,
            signature,
        })
    }
}

/// The piece layout is the manifest's: the map is built here, not in
/// [`crate::piece`], so that piece arithmetic does not depend on the manifest.
impl PieceMap {
    /// Builds the map for a (validated) manifest.
    pub fn new(manifest: &Manifest) -> PieceMap {
        PieceMap::from_layout(manifest.assets.iter().map(|a| AssetLayout {
            size: a.size,
            piece_size: a.piece_size,
            pieces: &a.pieces,
        }))
    }
}

/// Checks an asset path: `/`-rooted, no empty, `.` or `..` segments, no
/// query, fragment, backslash, percent-escape or control characters.
pub fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > MAX_PATH_LEN {
        return Err(format!(
            "asset path length {} not in 1..={MAX_PATH_LEN}",
            path.len()
        ));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("asset path {path:?} does not start with '/'"));
    };
    if path
        .chars()
        .any(|c| c.is_control() || matches!(c, '?' | '#' | '\\' | '%' | ' '))
    {
        return Err(format!("asset path {path:?} has a forbidden character"));
    }
    if rest
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(format!(
            "asset path {path:?} has an empty, '.' or '..' segment"
        ));
    }
    Ok(())
}

fn validate_content_type(ct: &str) -> Result<(), String> {
    if ct.is_empty()
        || ct.len() > MAX_CONTENT_TYPE_LEN
        || !ct.bytes().all(|b| (0x20..0x7f).contains(&b))
    {
        return Err(format!(
            "content type {ct:?} is not 1..={MAX_CONTENT_TYPE_LEN} printable ASCII bytes"
        ));
    }
    Ok(())
}

/// A manifest with its signature, not yet verified.
///
/// Obtain one by signing or by decoding; turn it into a
/// [`VerifiedManifest`] with [`SignedManifest::verify`] or a
/// [`ManifestGuard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedManifest {
    manifest: Manifest,
    body: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
}

impl SignedManifest {
    /// The manifest, unverified.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Wire encoding: canonical bytes then the signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + SIGNATURE_LEN);
        out.extend_from_slice(&self.body);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes the wire encoding; total, allocation bounded by the input.
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedManifest, ManifestError> {
        if bytes.len() > MAX_MANIFEST_LEN {
            return Err(ManifestError::Malformed(format!(
                "{} bytes exceed the {MAX_MANIFEST_LEN}-byte cap",
                bytes.len()
            )));
        }
        let Some(split) = bytes.len().checked_sub(SIGNATURE_LEN) else {
            return Err(ManifestError::Malformed("shorter than a signature".into()));
        };
        let (body, sig) = bytes.split_at(split);
        let manifest = Manifest::decode_canonical(body)?;
        Ok(SignedManifest {
            manifest,
            body: body.to_vec(),
            signature: sig.try_into().expect("split at signature length"),
        })
    }

    /// SHA-256 of the canonical body (not the signature): two manifests
    /// with the same digest have the same content.
    pub fn digest(&self) -> Digest {
        Digest::of(&self.body)
    }

    /// The bytes the signature covers: the canonical encoding.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.body
    }

    /// The ed25519 signature, unverified.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// Checks the signature under `expected` and the validity window at `now`.
    ///
    /// Version ordering needs memory of what was accepted before: use a
    /// [`ManifestGuard`] for that.
    #[cfg(feature = "dalek")]
    pub fn verify(
        &self,
        expected: &SiteKey,
        now: UnixTime,
    ) -> Result<VerifiedManifest, ManifestError> {
        self.verify_with(expected, now, verify_signature)
    }

    /// [`SignedManifest::verify`] with the raw ed25519 check done by
    /// `signature_ok(site key, signed bytes, signature)`, called once, after
    /// the site key matched and before the validity window is checked.
    /// Every other check is the same.
    pub fn verify_with(
        &self,
        expected: &SiteKey,
        now: UnixTime,
        signature_ok: impl FnOnce(&SiteKey, &[u8], &[u8; SIGNATURE_LEN]) -> bool,
    ) -> Result<VerifiedManifest, ManifestError> {
        let m = &self.manifest;
        if m.site_key != *expected {
            return Err(ManifestError::WrongSiteKey {
                expected: *expected,
                found: m.site_key,
            });
        }
        if !signature_ok(expected, &self.body, &self.signature) {
            return Err(ManifestError::BadSignature);
        }
        let now = now.0;
        if m.issued_at > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(ManifestError::NotYetValid {
                issued_at: m.issued_at,
                now,
            });
        }
        if now >= m.expires_at {
            return Err(ManifestError::Expired {
                expires_at: m.expires_at,
                now,
            });
        }
        Ok(VerifiedManifest {
            signed: self.clone(),
            digest: self.digest(),
        })
    }

    /// The JSON document written as `peerhost.json`.
    pub fn to_json(&self) -> String {
        let m = &self.manifest;
        let doc = JsonManifest {
            format: JSON_FORMAT.to_owned(),
            site_key: m.site_key.to_string(),
            version: m.version,
            issued_at: m.issued_at,
            expires_at: m.expires_at,
            flags: m.flags,
            assets: m
                .assets
                .iter()
                .map(|a| JsonAsset {
                    path: a.path.clone(),
                    content_type: a.content_type.clone(),
                    size: a.size,
                    piece_size: a.piece_size,
                    integrity: a.integrity(),
                    pieces: a.pieces.iter().map(|p| STANDARD.encode(p.0)).collect(),
                })
                .collect(),
            signature: URL_SAFE_NO_PAD.encode(self.signature),
        };
        let mut s = serde_json::to_string_pretty(&doc).expect("manifest JSON serialises");
        s.push('\n');
        s
    }

    /// The document [`SignedManifest::to_json`] writes, as a [`JsonValue`],
    /// for drivers that write JSON with their own serializer (the
    /// browser's `JSON.stringify`; see [`crate::json`]). Integers are
    /// numbers: exact up to 2^53, which [`SignedManifest::from_value`]
    /// requires anyway.
    pub fn to_value(&self) -> JsonValue {
        let m = &self.manifest;
        let s = JsonValue::String;
        let n = |v: u64| JsonValue::Number(v as f64);
        let assets = m
            .assets
            .iter()
            .map(|a| {
                JsonValue::Object(vec![
                    ("path".into(), s(a.path.clone())),
                    ("content_type".into(), s(a.content_type.clone())),
                    ("size".into(), n(a.size)),
                    ("piece_size".into(), n(a.piece_size.into())),
                    ("integrity".into(), s(a.integrity())),
                    (
                        "pieces".into(),
                        JsonValue::Array(
                            a.pieces.iter().map(|p| s(STANDARD.encode(p.0))).collect(),
                        ),
                    ),
                ])
            })
            .collect();
        JsonValue::Object(vec![
            ("format".into(), s(JSON_FORMAT.to_owned())),
            ("site_key".into(), s(m.site_key.to_string())),
            ("version".into(), n(m.version)),
            ("issued_at".into(), n(m.issued_at)),
            ("expires_at".into(), n(m.expires_at)),
            ("flags".into(), n(m.flags.into())),
            ("assets".into(), JsonValue::Array(assets)),
            (
                "signature".into(),
                s(URL_SAFE_NO_PAD.encode(self.signature)),
            ),
        ])
    }

    /// Parses `peerhost.json`; the result still needs verifying.
    pub fn from_json(text: &str) -> Result<SignedManifest, ManifestError> {
        if text.len() > 4 * MAX_MANIFEST_LEN {
            return Err(ManifestError::Malformed("manifest JSON too large".into()));
        }
        let doc: JsonManifest = serde_json::from_str(text)
            .map_err(|e| ManifestError::Malformed(format!("JSON: {e}")))?;
        Self::from_doc(doc)
    }

    /// [`SignedManifest::from_json`] for a document another JSON parser
    /// read (the browser's `JSON.parse`; see [`crate::json`]): the same
    /// fields, types and checks; integers must be exact (at most 2^53 − 1).
    /// The caller bounds the text's length as `from_json` does (4 ×
    /// [`MAX_MANIFEST_LEN`]).
    pub fn from_value(value: &JsonValue) -> Result<SignedManifest, ManifestError> {
        Self::from_doc(JsonManifest::from_value(value)?)
    }

    fn from_doc(doc: JsonManifest) -> Result<SignedManifest, ManifestError> {
        if doc.format != JSON_FORMAT {
            return Err(ManifestError::Malformed(format!(
                "format {:?}, expected {JSON_FORMAT:?}",
                doc.format
            )));
        }
        let site_key: SiteKey = doc
            .site_key
            .parse()
            .map_err(|e: ParseSiteKeyError| ManifestError::Malformed(e.to_string()))?;
        let mut assets = Vec::with_capacity(doc.assets.len());
        for a in doc.assets {
            let digest = Digest::from_sri(&a.integrity).ok_or_else(|| {
                ManifestError::Malformed(format!("{}: integrity is not sha256-<base64>", a.path))
            })?;
            let pieces = a
                .pieces
                .iter()
                .map(|p| {
                    STANDARD
                        .decode(p)
                        .ok()
                        .and_then(|v| <[u8; 32]>::try_from(v).ok())
                        .map(Digest)
                        .ok_or_else(|| {
                            ManifestError::Malformed(format!("{}: bad piece hash {p:?}", a.path))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            assets.push(Asset {
                path: a.path,
                content_type: a.content_type,
                size: a.size,
                piece_size: a.piece_size,
                digest,
                pieces,
            });
        }
        let manifest = Manifest {
            site_key,
            version: doc.version,
            issued_at: doc.issued_at,
            expires_at: doc.expires_at,
            flags: doc.flags,
            assets,
        };
        manifest.validate()?;
        let signature: [u8; SIGNATURE_LEN] = URL_SAFE_NO_PAD
            .decode(&doc.signature)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| {
                ManifestError::Malformed("signature is not 64 bytes of base64url".into())
            })?;
        Ok(SignedManifest {
            body: manifest.canonical_bytes(),
            manifest,
            signature,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonManifest {
    format: String,
    site_key: String,
    version: u64,
    issued_at: u64,
    expires_at: u64,
    #[serde(default)]
    flags: u32,
    assets: Vec<JsonAsset>,
    signature: String,
}

/// Reads the fields of `value`, an object with exactly the keys `keys`
/// (those marked optional may be missing).
fn json_fields<'a>(
    value: &'a JsonValue,
    what: &str,
    keys: &[(&str, bool)],
) -> Result<Vec<Option<&'a JsonValue>>, ManifestError> {
    let bad = |m: String| ManifestError::Malformed(format!("JSON: {m}"));
    let JsonValue::Object(fields) = value else {
        return Err(bad(format!("{what} is {}, not an object", value.kind())));
    };
    if let Some((k, _)) = fields
        .iter()
        .find(|(k, _)| !keys.iter().any(|(n, _)| n == k))
    {
        return Err(bad(format!("unknown field {k:?} in {what}")));
    }
    keys.iter()
        .map(|(k, optional)| match value.get(k) {
            None if *optional => Ok(None),
            None => Err(bad(format!("missing field {k:?} in {what}"))),
            Some(v) => Ok(Some(v)),
        })
        .collect()
}

fn json_string(v: Option<&JsonValue>, key: &str) -> Result<String, ManifestError> {
    v.and_then(JsonValue::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ManifestError::Malformed(format!("JSON: {key} is not a string")))
}

fn json_u64(v: Option<&JsonValue>, key: &str) -> Result<u64, ManifestError> {
    v.and_then(JsonValue::as_u64).ok_or_else(|| {
        ManifestError::Malformed(format!(
            "JSON: {key} is not an integer in 0..={MAX_SAFE_INTEGER}"
        ))
    })
}

fn json_u32(v: Option<&JsonValue>, key: &str) -> Result<u32, ManifestError> {
    u32::try_from(json_u64(v, key)?)
        .map_err(|_| ManifestError::Malformed(format!("JSON: {key} does not fit 32 bits")))
}

impl JsonManifest {
    fn from_value(value: &JsonValue) -> Result<JsonManifest, ManifestError> {
        let f = json_fields(
            value,
            "the manifest",
            &[
                ("format", false),
                ("site_key", false),
                ("version", false),
                ("issued_at", false),
                ("expires_at", false),
                ("flags", true),
                ("assets", false),
                ("signature", false),
            ],
        )?;
        let Some(JsonValue::Array(assets)) = f[6] else {
            return Err(ManifestError::Malformed(
                "JSON: assets is not an array".into(),
            ));
        };
        if assets.len() > MAX_ASSETS {
            return Err(ManifestError::Malformed(format!(
                "more than {MAX_ASSETS} assets"
            )));
        }
        Ok(JsonManifest {
            format: json_string(f[0], "format")?,
            site_key: json_string(f[1], "site_key")?,
            version: json_u64(f[2], "version")?,
            issued_at: json_u64(f[3], "issued_at")?,
            expires_at: json_u64(f[4], "expires_at")?,
            flags: f[5].map_or(Ok(0), |v| json_u32(Some(v), "flags"))?,
            assets: assets
                .iter()
                .map(JsonAsset::from_value)
                .collect::<Result<_, _>>()?,
            signature: json_string(f[7], "signature")?,
        })
    }
}

impl JsonAsset {
    fn from_value(value: &JsonValue) -> Result<JsonAsset, ManifestError> {
        let f = json_fields(
            value,
            "an asset",
            &[
                ("path", false),
                ("content_type", false),
                ("size", false),
                ("piece_size", false),
                ("integrity", false),
                ("pieces", false),
            ],
        )?;
        let Some(JsonValue::Array(pieces)) = f[5] else {
            return Err(ManifestError::Malformed(
                "JSON: pieces is not an array".into(),
            ));
        };
        Ok(JsonAsset {
            path: json_string(f[0], "path")?,
            content_type: json_string(f[1], "content_type")?,
            size: json_u64(f[2], "size")?,
            piece_size: json_u32(f[3], "piece_size")?,
            integrity: json_string(f[4], "integrity")?,
            pieces: pieces
                .iter()
                .map(|p| json_string(Some(p), "a piece hash"))
                .collect::<Result<_, _>>()?,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonAsset {
    path: String,
    content_type: String,
    size: u64,
    piece_size: u32,
    integrity: String,
    pieces: Vec<String>,
}

/// A manifest whose signature and validity window have been checked.
///
/// Only [`SignedManifest::verify`] and [`SignedManifest::verify_with`] make
/// one, so holding one proves that the signature check said yes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedManifest {
    signed: SignedManifest,
    digest: Digest,
}

impl VerifiedManifest {
    /// The verified manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.signed.manifest
    }
    /// The signed form, to pass on to others.
    pub fn signed(&self) -> &SignedManifest {
        &self.signed
    }
    /// SHA-256 of the canonical body (not the signature): two manifests
    /// with the same digest have the same content.
    pub fn digest(&self) -> Digest {
        self.digest
    }
    /// The manifest version.
    pub fn version(&self) -> u64 {
        self.signed.manifest.version
    }
}

/// What [`ManifestGuard::accept`] did with a manifest that passed every check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// It is newer than anything before: it is now current.
    Newer {
        /// The version replaced, if any.
        previous: Option<u64>,
    },
    /// It is the very manifest already current.
    Unchanged,
}

/// Keeps the highest manifest version accepted for one site, and refuses
/// rollbacks and equivocation.
///
/// The current manifest changes only after every check passes. A driver
/// that persists [`ManifestGuard::floor`] across visits and restores it with
/// [`ManifestGuard::with_floor`] refuses replays of older versions even
/// before it has seen the current one again. Persisting
/// [`ManifestGuard::floor_digest`] too (restored with
/// [`ManifestGuard::pin_floor_digest`]) also refuses a different manifest
/// of the floor version itself: a version alone would let the same number
/// with other contents through after a reload.
#[derive(Debug, Clone)]
pub struct ManifestGuard {
    site_key: SiteKey,
    floor: u64,
    /// The digest of the restored floor version's manifest, if persisted.
    floor_digest: Option<Digest>,
    current: Option<VerifiedManifest>,
}

impl ManifestGuard {
    /// A guard for `site_key` that has accepted nothing yet.
    pub fn new(site_key: SiteKey) -> Self {
        Self::with_floor(site_key, 0)
    }

    /// A guard that refuses versions below `floor` (a persisted highest version).
    pub fn with_floor(site_key: SiteKey, floor: u64) -> Self {
        ManifestGuard {
            site_key,
            floor,
            floor_digest: None,
            current: None,
        }
    }

    /// Restores the digest of the floor version's manifest: a manifest of
    /// that version with any other digest is then refused as
    /// [`ManifestError::Equivocation`].
    pub fn pin_floor_digest(&mut self, digest: Digest) {
        self.floor_digest = Some(digest);
    }

    /// The digest of the manifest of version [`ManifestGuard::floor`], to
    /// persist with it; `None` if it is not known (a floor restored without
    /// its digest, nothing accepted since).
    pub fn floor_digest(&self) -> Option<Digest> {
        match &self.current {
            Some(c) if c.version() >= self.floor => Some(c.digest()),
            _ => self.floor_digest,
        }
    }

    /// The trusted site key.
    pub fn site_key(&self) -> &SiteKey {
        &self.site_key
    }

    /// The highest version accepted (or restored), to persist.
    pub fn floor(&self) -> u64 {
        self.current
            .as_ref()
            .map_or(self.floor, |c| c.version().max(self.floor))
    }

    /// The current manifest, if any was accepted.
    pub fn current(&self) -> Option<&VerifiedManifest> {
        self.current.as_ref()
    }

    /// Checks `signed` fully and makes it current if it is newer.
    #[cfg(feature = "dalek")]
    pub fn accept(
        &mut self,
        signed: &SignedManifest,
        now: UnixTime,
    ) -> Result<Accepted, ManifestError> {
        self.accept_with(signed, now, verify_signature)
    }

    /// [`ManifestGuard::accept`] with the raw ed25519 check done by
    /// `signature_ok` (see [`SignedManifest::verify_with`]); every other
    /// check — site key, validity window, rollback, equivocation — is the
    /// same, and nothing changes unless all pass.
    pub fn accept_with(
        &mut self,
        signed: &SignedManifest,
        now: UnixTime,
        signature_ok: impl FnOnce(&SiteKey, &[u8], &[u8; SIGNATURE_LEN]) -> bool,
    ) -> Result<Accepted, ManifestError> {
        let verified = signed.verify_with(&self.site_key, now, signature_ok)?;
        let version = verified.version();
        if let Some(cur) = &self.current {
            if version < cur.version() {
                return Err(ManifestError::Rollback {
                    offered: version,
                    current: cur.version(),
                });
            }
            if version == cur.version() {
                return if verified.digest() == cur.digest() {
                    Ok(Accepted::Unchanged)
                } else {
                    Err(ManifestError::Equivocation { version })
                };
            }
        } else if version < self.floor {
            return Err(ManifestError::Rollback {
                offered: version,
                current: self.floor,
            });
        } else if version == self.floor
            && self
                .floor_digest
                .is_some_and(|pinned| pinned != verified.digest())
        {
            return Err(ManifestError::Equivocation { version });
        }
        let previous = self.current.as_ref().map(VerifiedManifest::version);
        self.current = Some(verified);
        Ok(Accepted::Newer { previous })
    }
}
