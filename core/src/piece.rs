//! Pieces: how a manifest's assets are cut up, numbered and verified.
//!
//! Every piece of every asset has one global index, counted across the
//! manifest's assets in order; the wire protocol and the have-bitfield use
//! it. A piece is usable and re-servable only once its SHA-256 matches the
//! manifest.
//!
//! This module is arithmetic over sizes and hashes and knows nothing of the
//! manifest; [`PieceMap::new`] (which reads a manifest's assets) lives in
//! [`crate::manifest`], so the two modules do not import each other.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Digest {
        Digest(Sha256::digest(data).into())
    }

    /// Subresource Integrity form: `sha256-<base64>`.
    pub fn to_sri(&self) -> String {
        format!("sha256-{}", STANDARD.encode(self.0))
    }

    /// Parses the Subresource Integrity form.
    pub fn from_sri(s: &str) -> Option<Digest> {
        let b64 = s.strip_prefix("sha256-")?;
        let bytes = STANDARD.decode(b64).ok()?;
        Some(Digest(bytes.try_into().ok()?))
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses [`Digest::to_hex`]'s form (either case).
    pub fn from_hex(s: &str) -> Option<Digest> {
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut d = [0u8; 32];
        for (i, b) in d.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Digest(d))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", &self.to_hex()[..16])
    }
}

/// Global index of a piece within a manifest.
pub type PieceIndex = u32;

/// Where one piece lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceRef {
    /// Global index.
    pub index: PieceIndex,
    /// Index of the asset in the manifest.
    pub asset: u32,
    /// Byte offset within the asset.
    pub offset: u64,
    /// Length in bytes.
    pub len: u32,
    /// Expected SHA-256.
    pub hash: Digest,
}

/// A piece did not match its hash, or does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PieceError {
    /// The index is beyond the manifest.
    #[error("piece {0} does not exist")]
    NoSuchPiece(PieceIndex),
    /// The bytes' length differs from the manifest's.
    #[error("piece {piece}: {got} bytes, expected {expected}")]
    WrongLength {
        /// The piece.
        piece: PieceIndex,
        /// Bytes received.
        got: usize,
        /// Bytes expected.
        expected: u32,
    },
    /// The bytes' SHA-256 differs from the manifest's.
    #[error("piece {0}: SHA-256 mismatch")]
    HashMismatch(PieceIndex),
}

/// Maps global piece indices to assets and byte ranges for one manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceMap {
    /// Global index of each asset's first piece, plus a final total.
    first_piece: Vec<PieceIndex>,
    pieces: Vec<PieceRef>,
}

/// How one asset is cut into pieces, in manifest order: the input of
/// [`PieceMap::from_layout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetLayout<'a> {
    /// Asset size in bytes.
    pub size: u64,
    /// Bytes per piece (the last piece may be shorter).
    pub piece_size: u32,
    /// Expected SHA-256 of each piece.
    pub pieces: &'a [Digest],
}

impl PieceMap {
    /// Builds the map from the assets' layouts, in order. The layouts must
    /// be consistent (as a validated manifest's are): `pieces.len()` is
    /// `size` divided by `piece_size`, rounded up.
    pub fn from_layout<'a>(assets: impl IntoIterator<Item = AssetLayout<'a>>) -> PieceMap {
        let mut first_piece = Vec::new();
        let mut pieces = Vec::new();
        for (ai, a) in assets.into_iter().enumerate() {
            first_piece.push(pieces.len() as PieceIndex);
            for (pi, hash) in a.pieces.iter().enumerate() {
                let offset = pi as u64 * u64::from(a.piece_size);
                let len = a.size.saturating_sub(offset).min(u64::from(a.piece_size)) as u32;
                pieces.push(PieceRef {
                    index: pieces.len() as PieceIndex,
                    asset: ai as u32,
                    offset,
                    len,
                    hash: *hash,
                });
            }
        }
        first_piece.push(pieces.len() as PieceIndex);
        PieceMap {
            first_piece,
            pieces,
        }
    }

    /// Number of pieces.
    pub fn len(&self) -> u32 {
        self.pieces.len() as u32
    }

    /// Whether there are no pieces.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The piece at a global index.
    pub fn get(&self, index: PieceIndex) -> Option<&PieceRef> {
        self.pieces.get(index as usize)
    }

    /// Global indices of an asset's pieces.
    pub fn asset_pieces(&self, asset: u32) -> std::ops::Range<PieceIndex> {
        let a = asset as usize;
        match (
            self.first_piece.get(a),
            a.checked_add(1).and_then(|b| self.first_piece.get(b)),
        ) {
            (Some(&s), Some(&e)) => s..e,
            _ => 0..0,
        }
    }

    /// Checks `data` against the manifest's hash for `index`.
    pub fn verify(&self, index: PieceIndex, data: &[u8]) -> Result<(), PieceError> {
        let p = self.get(index).ok_or(PieceError::NoSuchPiece(index))?;
        if data.len() != p.len as usize {
            return Err(PieceError::WrongLength {
                piece: index,
                got: data.len(),
                expected: p.len,
            });
        }
        if Digest::of(data) != p.hash {
            return Err(PieceError::HashMismatch(index));
        }
        Ok(())
    }
}

/// A set of piece indices, as sent in the handshake's have-bitfield.
///
/// Bit `i` is bit `7 - i % 8` of byte `i / 8` (most significant first, as
/// in BitTorrent).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: u32,
    count: u32,
}

impl Bitfield {
    /// An empty set over `len` pieces.
    pub fn new(len: u32) -> Bitfield {
        Bitfield {
            bytes: vec![0; len.div_ceil(8) as usize],
            len,
            count: 0,
        }
    }

    /// Reads a bitfield for `len` pieces; `None` if the byte length is wrong
    /// or a spare bit past `len` is set.
    pub fn from_bytes(len: u32, bytes: &[u8]) -> Option<Bitfield> {
        if bytes.len() != len.div_ceil(8) as usize {
            return None;
        }
        if spare_bits_set(len, bytes) {
            return None;
        }
        let count = bytes.iter().map(|b| b.count_ones()).sum();
        Some(Bitfield {
            bytes: bytes.to_vec(),
            len,
            count,
        })
    }

    /// The bytes, for the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Pieces the set ranges over.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether it ranges over no pieces.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pieces in the set.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether every piece is in the set.
    pub fn is_full(&self) -> bool {
        self.count == self.len
    }

    /// Whether piece `i` is in the set.
    pub fn has(&self, i: PieceIndex) -> bool {
        i < self.len && self.bytes[(i / 8) as usize] & (0x80 >> (i % 8)) != 0
    }

    /// Adds piece `i`; returns whether it was new. Out-of-range is ignored.
    pub fn set(&mut self, i: PieceIndex) -> bool {
        if i >= self.len || self.has(i) {
            return false;
        }
        self.bytes[(i / 8) as usize] |= 0x80 >> (i % 8);
        self.count += 1;
        true
    }
}

/// Whether any bit past `len` is set in the last byte of a bitfield (they
/// must be zero: one canonical encoding).
pub fn spare_bits_set(len: u32, bytes: &[u8]) -> bool {
    let spare = (8 - len % 8) % 8;
    spare > 0 && bytes.last().is_some_and(|b| b & ((1u8 << spare) - 1) != 0)
}

impl fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bitfield({}/{})", self.count, self.len)
    }
}
