//! Property tests of the `peerhost/1` frame codec: every valid frame round
//! trips, every byte string decodes to a frame or an error (never a panic),
//! and a decoded frame re-encodes to exactly the bytes it came from.

use peerhost_core::codec::ReadError;
use peerhost_core::manifest::MAX_TOTAL_PIECES;
use peerhost_core::wire::{
    Frame, FrameError, MAX_FRAME_LEN, MAX_MANIFEST_CHUNK, MAX_MANIFEST_LEN, MAX_PIECE_DATA,
    PROTOCOL_ID, manifest_offer_frames,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

fn config() -> ProptestConfig {
    ProptestConfig {
        // Integration tests have no lib.rs above them for the default to find.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/wire_props.txt",
        ))),
        ..ProptestConfig::default()
    }
}

/// A bitfield for `count` pieces with the spare bits cleared.
fn have(count: u32) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), count.div_ceil(8) as usize).prop_map(move |mut bytes| {
        let spare = (8 - count % 8) % 8;
        if let Some(last) = bytes.last_mut() {
            *last &= !((1u8 << spare) - 1);
        }
        bytes
    })
}

/// Valid handshakes with up to `max_pieces` pieces.
fn handshake(max_pieces: u32) -> impl Strategy<Value = Frame> {
    (
        any::<[u8; 32]>(),
        any::<u64>(),
        prop_oneof![0..=16u32, 0..=max_pieces, Just(max_pieces)],
    )
        .prop_flat_map(|(site_key, version, piece_count)| {
            have(piece_count).prop_map(move |have| Frame::Handshake {
                site_key,
                version,
                piece_count,
                have,
            })
        })
}

/// Valid frames of every type; payloads and bitfields at most `max_payload`
/// bytes.
fn frame(max_payload: usize) -> impl Strategy<Value = Frame> {
    let handshake = handshake((max_payload as u32 * 8).min(MAX_TOTAL_PIECES));
    let data = prop_oneof![
        prop::collection::vec(any::<u8>(), 1..=16),
        prop::collection::vec(any::<u8>(), 1..=max_payload),
        prop::collection::vec(any::<u8>(), max_payload),
    ];
    let piece = (any::<u32>(), data).prop_map(|(piece, data)| Frame::Piece {
        piece,
        data: data.into(),
    });
    let offer = (any::<u64>(), 0..=MAX_MANIFEST_LEN as u32)
        .prop_flat_map(move |(version, total_len)| {
            let min = usize::from(total_len > 0);
            let max = max_payload.min(total_len as usize);
            (
                Just(version),
                Just(total_len),
                prop::collection::vec(any::<u8>(), min..=max),
            )
        })
        .prop_flat_map(|(version, total_len, chunk)| {
            let last_offset = total_len - chunk.len() as u32;
            (0..=last_offset).prop_map(move |offset| Frame::ManifestOffer {
                version,
                total_len,
                offset,
                chunk: chunk.clone(),
            })
        });
    prop_oneof![
        handshake,
        any::<u32>().prop_map(|piece| Frame::Have { piece }),
        any::<u32>().prop_map(|piece| Frame::Request { piece }),
        any::<u32>().prop_map(|piece| Frame::Cancel { piece }),
        any::<u32>().prop_map(|piece| Frame::Reject { piece }),
        piece,
        offer,
    ]
}

/// Frames whose length their fields fix: nothing may follow them.
fn fixed_size_frame() -> impl Strategy<Value = Frame> {
    frame(MAX_PIECE_DATA).prop_filter("fixed size", |f| {
        !matches!(f, Frame::Piece { .. } | Frame::ManifestOffer { .. })
    })
}

/// Bytes that get past the type byte more often than uniform noise would.
fn frame_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    let noise = prop::collection::vec(any::<u8>(), 0..=20 * 1024);
    let typed = (0u8..=7, prop::collection::vec(any::<u8>(), 0..=64)).prop_map(|(ty, rest)| {
        let mut b = vec![ty];
        b.extend(rest);
        b
    });
    let handshake = (
        any::<[u8; 44]>(),
        prop::collection::vec(any::<u8>(), 0..=64),
    )
        .prop_map(|(fields, rest)| {
            let mut b = vec![0];
            b.extend_from_slice(PROTOCOL_ID);
            b.extend_from_slice(&fields);
            b.extend(rest);
            b
        });
    let mutated = (frame(512), any::<prop::sample::Index>(), 1..=255u8).prop_map(|(f, at, xor)| {
        let mut b = f.encode();
        let at = at.index(b.len());
        b[at] ^= xor;
        b
    });
    prop_oneof![noise, typed, handshake, mutated]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_valid_frame_round_trips(f in frame(MAX_PIECE_DATA)) {
        let bytes = f.encode();
        prop_assert!(bytes.len() <= MAX_FRAME_LEN);
        prop_assert_eq!(Frame::decode(&bytes), Ok(f.clone()));
        // The zero-copy decoder agrees, and a valid frame passes the
        // in-memory check.
        prop_assert_eq!(Frame::decode_shared(&bytes.clone().into()), Ok(f.clone()));
        prop_assert_eq!(f.check(), Ok(()));
    }

    #[test]
    fn the_in_memory_check_agrees_with_the_decoder(bytes in frame_like_bytes()) {
        // Whatever decodes passes the check; and the zero-copy decoder gives
        // the same answer as the copying one on every input.
        let copied = Frame::decode(&bytes);
        prop_assert_eq!(&copied, &Frame::decode_shared(&bytes.clone().into()));
        if let Ok(f) = copied {
            prop_assert_eq!(f.check(), Ok(()));
        }
    }

    #[test]
    fn any_bytes_decode_to_a_canonical_frame_or_an_error(bytes in frame_like_bytes()) {
        match Frame::decode(&bytes) {
            Ok(f) => prop_assert_eq!(f.encode(), bytes),
            Err(FrameError::TooLong(n)) => {
                prop_assert_eq!(n, bytes.len());
                prop_assert!(n > MAX_FRAME_LEN);
            }
            Err(_) => {}
        }
    }

    #[test]
    fn a_trailing_byte_after_a_fixed_size_frame_is_rejected(
        f in fixed_size_frame(),
        extra in any::<u8>(),
    ) {
        let mut bytes = f.encode();
        bytes.push(extra);
        let expected = match f {
            Frame::Handshake { piece_count, .. } => FrameError::BadBitfield(piece_count),
            _ => FrameError::Read(ReadError::Trailing(1)),
        };
        prop_assert_eq!(Frame::decode(&bytes), Err(expected));
    }

    #[test]
    fn a_trailing_byte_never_yields_the_same_frame(f in frame(MAX_PIECE_DATA), extra in any::<u8>()) {
        let mut bytes = f.encode();
        bytes.push(extra);
        prop_assert_ne!(Frame::decode(&bytes), Ok(f));
    }

    #[test]
    fn every_truncation_is_rejected_or_another_frame(f in frame(256)) {
        let bytes = f.encode();
        for len in 0..bytes.len() {
            let decoded = Frame::decode(&bytes[..len]);
            prop_assert_ne!(&decoded, &Ok(f.clone()), "truncated to {}", len);
            if len == 0 {
                prop_assert_eq!(decoded, Err(FrameError::Empty));
            }
        }
    }

    #[test]
    fn inputs_over_max_frame_len_are_too_long(
        head in prop::collection::vec(any::<u8>(), 0..=MAX_FRAME_LEN),
        over in 1..=4096usize,
    ) {
        let mut bytes = head;
        bytes.resize(MAX_FRAME_LEN + over, 0);
        prop_assert_eq!(Frame::decode(&bytes), Err(FrameError::TooLong(bytes.len())));
    }

    #[test]
    fn unknown_types_are_rejected(ty in 0x07u8.., rest in prop::collection::vec(any::<u8>(), 0..=64)) {
        let mut bytes = vec![ty];
        bytes.extend(rest);
        prop_assert_eq!(Frame::decode(&bytes), Err(FrameError::UnknownType(ty)));
    }

    #[test]
    fn a_handshake_for_another_protocol_is_rejected(
        f in handshake(MAX_TOTAL_PIECES),
        at in 1..=PROTOCOL_ID.len(),
        xor in 1..=255u8,
    ) {
        let mut bytes = f.encode();
        bytes[at] ^= xor;
        prop_assert_eq!(Frame::decode(&bytes), Err(FrameError::WrongProtocol));
    }

    #[test]
    fn a_set_spare_bit_in_the_handshake_is_rejected(
        piece_count in (1..=MAX_TOTAL_PIECES).prop_filter("spare bits", |n| n % 8 != 0),
        bit in 0..8u32,
    ) {
        let f = Frame::Handshake {
            site_key: [3; 32],
            version: 1,
            piece_count,
            have: vec![0; piece_count.div_ceil(8) as usize],
        };
        let mut bytes = f.encode();
        let spare = (8 - piece_count % 8) % 8;
        *bytes.last_mut().expect("non-empty bitfield") |= 1 << (bit % spare);
        prop_assert_eq!(Frame::decode(&bytes), Err(FrameError::BadBitfield(piece_count)));
    }

    #[test]
    fn manifest_offer_frames_reassemble(
        version in any::<u64>(),
        signed in prop::collection::vec(any::<u8>(), 1..=3 * MAX_MANIFEST_CHUNK),
    ) {
        let mut whole = Vec::new();
        for f in manifest_offer_frames(version, &signed) {
            prop_assert_eq!(Frame::decode(&f.encode()), Ok(f.clone()));
            let Frame::ManifestOffer { version: v, total_len, offset, chunk } = f else {
                panic!("not an offer: {f:?}");
            };
            prop_assert_eq!((v, total_len as usize, offset as usize), (version, signed.len(), whole.len()));
            whole.extend(chunk);
        }
        prop_assert_eq!(whole, signed);
    }
}

#[test]
fn the_largest_frames_fit() {
    let handshake = Frame::Handshake {
        site_key: [1; 32],
        version: u64::MAX,
        piece_count: MAX_TOTAL_PIECES,
        have: vec![0xff; MAX_TOTAL_PIECES.div_ceil(8) as usize],
    };
    let piece = Frame::Piece {
        piece: u32::MAX,
        data: vec![2; MAX_PIECE_DATA].into(),
    };
    let offer = Frame::ManifestOffer {
        version: u64::MAX,
        total_len: MAX_MANIFEST_LEN as u32,
        offset: (MAX_MANIFEST_LEN - MAX_MANIFEST_CHUNK) as u32,
        chunk: vec![3; MAX_MANIFEST_CHUNK],
    };
    for f in [handshake, piece, offer] {
        let bytes = f.encode();
        assert!(bytes.len() <= MAX_FRAME_LEN);
        assert_eq!(Frame::decode(&bytes), Ok(f));
    }
}

#[test]
fn limits_one_past_the_largest_are_rejected() {
    let mut handshake = Frame::Handshake {
        site_key: [1; 32],
        version: 1,
        piece_count: 0,
        have: Vec::new(),
    }
    .encode();
    let count_at = handshake.len() - 4;
    handshake[count_at..].copy_from_slice(&(MAX_TOTAL_PIECES + 1).to_be_bytes());
    handshake.resize(
        handshake.len() + (MAX_TOTAL_PIECES + 1).div_ceil(8) as usize,
        0,
    );
    assert_eq!(
        Frame::decode(&handshake),
        Err(FrameError::TooManyPieces(MAX_TOTAL_PIECES + 1))
    );

    let mut piece = Frame::Piece {
        piece: 0,
        data: vec![2; MAX_PIECE_DATA].into(),
    }
    .encode();
    piece.push(2);
    assert_eq!(
        Frame::decode(&piece),
        Err(FrameError::BadPieceLen(MAX_PIECE_DATA + 1))
    );
    assert_eq!(Frame::decode(&piece[..5]), Err(FrameError::BadPieceLen(0)));

    let offer = |total_len: u32, offset: u32, len: usize| {
        let mut b = Frame::ManifestOffer {
            version: 1,
            total_len: 0,
            offset: 0,
            chunk: Vec::new(),
        }
        .encode();
        b[9..13].copy_from_slice(&total_len.to_be_bytes());
        b[13..17].copy_from_slice(&offset.to_be_bytes());
        b.resize(b.len() + len, 7);
        (
            Frame::decode(&b),
            Err(FrameError::BadManifestChunk {
                total_len,
                offset,
                len,
            }),
        )
    };
    let cap = MAX_MANIFEST_LEN as u32;
    for (got, expected) in [
        offer(cap + 1, 0, 1),
        offer(100, 0, 101),
        offer(100, 1, 100),
        offer(100, u32::MAX, 1),
        offer(100, 0, 0),
        offer(0, 1, 0),
        offer(cap, 0, MAX_MANIFEST_CHUNK + 1),
    ] {
        assert_eq!(got, expected);
    }
}

#[test]
fn short_frames_are_truncated() {
    assert_eq!(Frame::decode(&[]), Err(FrameError::Empty));
    assert_eq!(
        Frame::decode(&[0x01, 0, 0]),
        Err(FrameError::Read(ReadError::Truncated {
            needed: 4,
            left: 2
        }))
    );
    assert_eq!(
        Frame::decode(&[0x00]),
        Err(FrameError::Read(ReadError::Truncated {
            needed: PROTOCOL_ID.len(),
            left: 0
        }))
    );
}
