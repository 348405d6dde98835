//! What the world checks about pieces, cheaply at scale: it answers the
//! clients' hash jobs from a memo of honest buffers, and compares every
//! delivered body with the published bytes, skipping buffers it has already
//! found equal. Both memos are keyed by buffer identity and hold a
//! reference, so an address is never reused while it is a key.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use peerhost_core::client::Body;
use peerhost_core::piece::{Digest, PieceMap};

use crate::site::GeneratedSite;

/// Buffer identity: address and length of a live shared buffer.
type BufKey = (usize, usize);

fn buf_key(b: &Bytes) -> BufKey {
    (b.as_ptr() as usize, b.len())
}

/// The memos, per run.
#[derive(Debug)]
pub(super) struct PieceChecks {
    /// Every piece hash of every version (what an honest buffer hashes to).
    piece_hashes: HashSet<Digest>,
    /// Honest buffers already hashed, kept alive while they are keys.
    hash_memo: HashMap<BufKey, (Bytes, Digest)>,
    /// Buffers already found equal to the published piece (per version and
    /// piece), kept alive while they are keys.
    checked: HashMap<(BufKey, u64, u32), Bytes>,
    /// Piece maps per version.
    maps: Vec<(u64, PieceMap)>,
}

impl PieceChecks {
    pub(super) fn new(site: &GeneratedSite) -> PieceChecks {
        let maps: Vec<(u64, PieceMap)> = site
            .versions
            .iter()
            .map(|v| {
                (
                    v.signed.manifest().version,
                    PieceMap::new(v.signed.manifest()),
                )
            })
            .collect();
        let piece_hashes = site
            .versions
            .iter()
            .flat_map(|v| v.signed.manifest().assets.iter())
            .flat_map(|a| a.pieces.iter().copied())
            .collect();
        PieceChecks {
            piece_hashes,
            hash_memo: HashMap::new(),
            checked: HashMap::new(),
            maps,
        }
    }

    /// The SHA-256 of `data`: from the memo for a buffer already hashed and
    /// found honest, else computed. Also says whether it was computed.
    pub(super) fn hash(&mut self, data: &Bytes) -> (Digest, bool) {
        let key = buf_key(data);
        if let Some((_, d)) = self.hash_memo.get(&key) {
            return (*d, false);
        }
        let d = Digest::of(data);
        if self.piece_hashes.contains(&d) {
            self.hash_memo.insert(key, (data.clone(), d));
        }
        (d, true)
    }

    /// Bytes of a delivered body that differ from `path` as published in
    /// `version` (all of them if that version has no such file).
    pub(super) fn wrong_bytes(
        &mut self,
        site: &GeneratedSite,
        version: u64,
        path: &str,
        body: &Body,
    ) -> u64 {
        let expected = site
            .versions
            .iter()
            .find(|s| s.signed.manifest().version == version)
            .and_then(|s| s.files.iter().find(|(p, _)| p == path))
            .map(|(_, d)| &d[..]);
        let Some(expected) = expected else {
            return body.len() as u64;
        };
        let map = &self
            .maps
            .iter()
            .find(|(v, _)| *v == version)
            .expect("a map per version")
            .1;
        let asset = site.versions[0]
            .files
            .iter()
            .position(|(p, _)| p == path)
            .expect("listed") as u32;
        let mut wrong = expected.len().abs_diff(body.len()) as u64;
        let mut offset = 0usize;
        for (piece, data) in map.asset_pieces(asset).zip(body.pieces()) {
            let key = (buf_key(data), version, piece);
            let published = expected.get(offset..offset + data.len()).unwrap_or(&[]);
            offset += data.len();
            if self.checked.contains_key(&key) {
                continue;
            }
            if published == &data[..] {
                self.checked.insert(key, data.clone());
            } else {
                wrong += data
                    .iter()
                    .zip(published.iter().chain(std::iter::repeat(&0)))
                    .filter(|(a, b)| a != b)
                    .count() as u64;
            }
        }
        wrong
    }
}
