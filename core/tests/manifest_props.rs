//! Property tests of the signed manifest, the piece map and the bitfield:
//! the wire encoding is canonical and round trips, no flipped bit survives
//! verification, no malformed input panics, and no altered piece verifies.

use std::collections::BTreeMap;

use peerhost_core::manifest::{
    Asset, FLAG_ORIGIN_UNDER_PRESSURE, MAGIC, MAX_LIFETIME_SECS, MAX_PIECE_SIZE, MIN_PIECE_SIZE,
    Manifest, ManifestError, SIGNATURE_LEN, SignedManifest, SiteKey, SiteSecret,
};
use peerhost_core::piece::{Bitfield, PieceError, PieceMap};
use peerhost_core::time::UnixTime;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;

fn config() -> ProptestConfig {
    ProptestConfig {
        // Integration tests have no lib.rs above them for the default to find.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/manifest_props.txt",
        ))),
        ..ProptestConfig::default()
    }
}

/// A signed manifest with the files it describes.
#[derive(Debug, Clone)]
struct Site {
    signed: SignedManifest,
    files: Vec<Vec<u8>>,
}

impl Site {
    fn key(&self) -> SiteKey {
        self.signed.manifest().site_key
    }

    /// A moment inside the validity window.
    fn now(&self) -> UnixTime {
        UnixTime(self.signed.manifest().issued_at)
    }

    /// Decodes and verifies, as a peer receiving `bytes` would.
    fn check(&self, bytes: &[u8]) -> Result<(), ManifestError> {
        SignedManifest::from_bytes(bytes)?.verify(&self.key(), self.now())?;
        Ok(())
    }
}

fn path() -> impl Strategy<Value = String> {
    let segment =
        "[a-zA-Z0-9._~é漢-]{1,6}".prop_filter("no dot segments", |s| s != "." && s != "..");
    prop::collection::vec(segment, 1..=3).prop_map(|segs| format!("/{}", segs.join("/")))
}

fn piece_size() -> impl Strategy<Value = u32> {
    (MIN_PIECE_SIZE.trailing_zeros()..=MAX_PIECE_SIZE.trailing_zeros()).prop_map(|b| 1 << b)
}

/// Valid signed manifests of up to `max_assets` files of up to `max_size` bytes.
fn site(max_assets: usize, max_size: usize) -> impl Strategy<Value = Site> {
    let file = (
        "[ -~]{1,24}",
        piece_size(),
        prop::collection::vec(any::<u8>(), 0..=max_size),
    );
    (
        any::<[u8; 32]>(),
        any::<u64>(),
        0..=u64::MAX / 2,
        1..=MAX_LIFETIME_SECS,
        0..=FLAG_ORIGIN_UNDER_PRESSURE,
        // A BTreeMap of `String`s iterates in byte order, as the format wants.
        prop::collection::btree_map(path(), file, 0..=max_assets),
    )
        .prop_map(|(seed, version, issued_at, lifetime, flags, files)| {
            let secret = SiteSecret::from_seed(seed);
            let (assets, files): (Vec<Asset>, Vec<Vec<u8>>) = files
                .into_iter()
                .map(|(path, (ct, ps, data))| (Asset::from_bytes(&path, &ct, ps, &data), data))
                .unzip();
            let signed = Manifest {
                site_key: secret.site_key(),
                version,
                issued_at,
                expires_at: issued_at + lifetime,
                flags,
                assets,
            }
            .sign(&secret)
            .expect("generated manifests are valid");
            Site { signed, files }
        })
}

/// A small site that is the same on every run, for exhaustive loops.
fn fixed_site() -> Site {
    let secret = SiteSecret::from_seed([9; 32]);
    let files = vec![b"body{}".to_vec(), vec![0x5a; 1500]];
    let signed = Manifest {
        site_key: secret.site_key(),
        version: 3,
        issued_at: 1_700_000_000,
        expires_at: 1_700_086_400,
        flags: 0,
        assets: vec![
            Asset::from_bytes("/a.css", "text/css", MIN_PIECE_SIZE, &files[0]),
            Asset::from_bytes(
                "/b.bin",
                "application/octet-stream",
                MIN_PIECE_SIZE,
                &files[1],
            ),
        ],
    }
    .sign(&secret)
    .expect("valid");
    Site { signed, files }
}

fn flip_bit(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[bit / 8] ^= 0x80 >> (bit % 8);
    out
}

/// Checks that a bit flip is refused, and for the right reason.
fn assert_flip_refused(site: &Site, bit: usize) -> Result<(), TestCaseError> {
    let bytes = site.signed.to_bytes();
    let sig_start = bytes.len() - SIGNATURE_LEN;
    let key = MAGIC.len()..MAGIC.len() + 32;
    let result = site.check(&flip_bit(&bytes, bit));
    let byte = bit / 8;
    if byte >= sig_start {
        prop_assert_eq!(result, Err(ManifestError::BadSignature), "bit {}", bit);
    } else if key.contains(&byte) {
        prop_assert!(
            matches!(result, Err(ManifestError::WrongSiteKey { .. })),
            "bit {}: {:?}",
            bit,
            result
        );
    } else {
        prop_assert!(
            matches!(
                result,
                Err(ManifestError::Malformed(_) | ManifestError::BadSignature)
            ),
            "bit {}: {:?}",
            bit,
            result
        );
    }
    Ok(())
}

/// Bytes near a valid manifest: overwritten, cut, or with a byte slipped in.
fn mutated_manifest_bytes() -> impl Strategy<Value = Vec<u8>> {
    (site(3, 3000), any::<Index>(), any::<u8>(), 0..3u8).prop_map(|(site, at, byte, how)| {
        let mut b = site.signed.to_bytes();
        let i = at.index(b.len());
        match how {
            0 => b[i] ^= byte.max(1),
            1 => b.truncate(i),
            _ => b.insert(i, byte),
        }
        b
    })
}

fn manifest_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let noise = prop::collection::vec(any::<u8>(), 0..=2048);
    let after_magic = prop::collection::vec(any::<u8>(), 0..=2048).prop_map(|rest| {
        let mut b = MAGIC.to_vec();
        b.extend(rest);
        b
    });
    prop_oneof![noise, after_magic, mutated_manifest_bytes()]
}

fn json_like_text() -> impl Strategy<Value = String> {
    let noise = "\\PC{0,256}";
    let mutated = (site(2, 2000), any::<Index>(), any::<char>()).prop_map(|(site, at, c)| {
        let mut chars: Vec<char> = site.signed.to_json().chars().collect();
        let i = at.index(chars.len());
        chars[i] = c;
        chars.into_iter().collect()
    });
    prop_oneof![noise, mutated]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn signed_manifests_round_trip_and_verify(site in site(4, 5000)) {
        let bytes = site.signed.to_bytes();
        prop_assert_eq!(SignedManifest::from_bytes(&bytes), Ok(site.signed.clone()));
        prop_assert!(site.signed.verify(&site.key(), site.now()).is_ok());
        prop_assert_eq!(SignedManifest::from_json(&site.signed.to_json()), Ok(site.signed.clone()));
    }

    #[test]
    fn the_encoding_is_canonical(site in site(4, 5000)) {
        let bytes = site.signed.to_bytes();
        let body = &bytes[..bytes.len() - SIGNATURE_LEN];
        let decoded = Manifest::decode_canonical(body).expect("decodes");
        prop_assert_eq!(&decoded, site.signed.manifest());
        prop_assert_eq!(decoded.canonical_bytes(), body);
    }

    #[test]
    fn a_sampled_flipped_bit_is_refused(site in site(3, 3000), bit in any::<Index>()) {
        let bits = site.signed.to_bytes().len() * 8;
        assert_flip_refused(&site, bit.index(bits))?;
    }

    #[test]
    fn a_cut_or_extended_manifest_is_malformed(site in site(3, 3000), at in any::<Index>(), extra in any::<u8>()) {
        let bytes = site.signed.to_bytes();
        let cut = &bytes[..at.index(bytes.len())];
        prop_assert!(matches!(SignedManifest::from_bytes(cut), Err(ManifestError::Malformed(_))));
        let mut longer = bytes.clone();
        longer.push(extra);
        prop_assert!(matches!(SignedManifest::from_bytes(&longer), Err(ManifestError::Malformed(_))));
    }

    #[test]
    fn any_bytes_decode_to_a_canonical_manifest_or_an_error(bytes in manifest_like_bytes()) {
        if let Ok(m) = SignedManifest::from_bytes(&bytes) {
            prop_assert_eq!(m.to_bytes(), bytes);
        }
    }

    #[test]
    fn any_json_parses_to_an_encodable_manifest_or_an_error(text in json_like_text()) {
        if let Ok(m) = SignedManifest::from_json(&text) {
            prop_assert_eq!(SignedManifest::from_bytes(&m.to_bytes()), Ok(m));
        }
    }

    #[test]
    fn pieces_verify_and_no_altered_piece_does(
        site in site(3, 5000),
        at in any::<Index>(),
        xor in 1..=255u8,
    ) {
        let manifest = site.signed.manifest();
        let map = PieceMap::new(manifest);
        prop_assert_eq!(map.len(), manifest.total_pieces());
        for (ai, file) in site.files.iter().enumerate() {
            let range = map.asset_pieces(ai as u32);
            let mut reassembled = Vec::new();
            for i in range {
                let p = *map.get(i).expect("in range");
                prop_assert_eq!((p.asset, p.offset), (ai as u32, reassembled.len() as u64));
                let data = &file[p.offset as usize..][..p.len as usize];
                prop_assert_eq!(map.verify(i, data), Ok(()));
                let mut altered = data.to_vec();
                altered[at.index(data.len())] ^= xor;
                prop_assert_eq!(map.verify(i, &altered), Err(PieceError::HashMismatch(i)));
                prop_assert_eq!(
                    map.verify(i, &data[..data.len() - 1]),
                    Err(PieceError::WrongLength { piece: i, got: data.len() - 1, expected: p.len })
                );
                reassembled.extend_from_slice(data);
            }
            prop_assert_eq!(&reassembled, file);
        }
        prop_assert_eq!(map.verify(map.len(), b"x"), Err(PieceError::NoSuchPiece(map.len())));
    }

    #[test]
    fn bitfields_round_trip(len in 0..=4096u32, set in prop::collection::vec(any::<u32>(), 0..64)) {
        let mut bf = Bitfield::new(len);
        let mut expected = BTreeMap::new();
        for i in set {
            let i = if len == 0 { i } else { i % (len + 8) };
            let fresh = bf.set(i);
            prop_assert_eq!(fresh, i < len && expected.insert(i, ()).is_none());
        }
        prop_assert_eq!(bf.count() as usize, expected.len());
        for i in 0..len + 8 {
            prop_assert_eq!(bf.has(i), expected.contains_key(&i));
        }
        prop_assert_eq!(Bitfield::from_bytes(len, bf.as_bytes()), Some(bf));
    }

    #[test]
    fn bitfield_bytes_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..=512), spare in 0..8u32) {
        let len = (bytes.len() as u32 * 8).saturating_sub(spare);
        let mut bytes = bytes;
        if len % 8 != 0 {
            *bytes.last_mut().expect("spare bits imply a byte") &= !((1u8 << spare) - 1);
        }
        let bytes = &bytes[..len.div_ceil(8) as usize];
        let bf = Bitfield::from_bytes(len, bytes).expect("valid bitfield");
        prop_assert_eq!(bf.as_bytes(), bytes);
        prop_assert_eq!(bf.len(), len);
        prop_assert_eq!(bf.count(), bytes.iter().map(|b| b.count_ones()).sum::<u32>());
        prop_assert_eq!(bf.is_full(), bf.count() == len);
        for i in 0..len {
            prop_assert_eq!(bf.has(i), bytes[(i / 8) as usize] & (0x80 >> (i % 8)) != 0);
        }
        // One byte more or less is the wrong length.
        let mut longer = bytes.to_vec();
        longer.push(0);
        prop_assert!(Bitfield::from_bytes(len, &longer).is_none());
        if !bytes.is_empty() {
            prop_assert!(Bitfield::from_bytes(len, &bytes[..bytes.len() - 1]).is_none());
        }
    }

    #[test]
    fn a_set_spare_bit_is_rejected(
        len in (1..=4096u32).prop_filter("has spare bits", |n| n % 8 != 0),
        bit in any::<Index>(),
    ) {
        let spare = 8 - len % 8;
        let mut bytes = vec![0u8; len.div_ceil(8) as usize];
        *bytes.last_mut().expect("non-empty") |= 1 << bit.index(spare as usize);
        prop_assert!(Bitfield::from_bytes(len, &bytes).is_none());
    }
}

#[test]
fn every_single_bit_flip_is_refused() {
    let site = fixed_site();
    assert_eq!(site.check(&site.signed.to_bytes()), Ok(()));
    let bits = site.signed.to_bytes().len() * 8;
    for bit in 0..bits {
        if let Err(e) = assert_flip_refused(&site, bit) {
            panic!("{e}");
        }
    }
}

#[test]
fn every_flipped_byte_of_a_piece_is_refused() {
    let site = fixed_site();
    let map = PieceMap::new(site.signed.manifest());
    let piece = *map
        .get(map.asset_pieces(1).start)
        .expect("b.bin has pieces");
    let data = &site.files[1][..piece.len as usize];
    for at in 0..data.len() {
        let mut altered = data.to_vec();
        altered[at] ^= 0x01;
        assert_eq!(
            map.verify(piece.index, &altered),
            Err(PieceError::HashMismatch(piece.index))
        );
    }
}
