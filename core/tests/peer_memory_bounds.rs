//! What a stranger can make a client hold: its upload queues stay under
//! their byte caps however many requests arrive, repeat requests are
//! dropped, and manifest offers hold only the bytes that arrived, under one
//! cap across all peers. The property test feeds the worst legal input
//! (requests for every piece, manifest chunks without end) from several
//! peers at once.

use std::time::Duration;

use bytes::Bytes;
use peerhost_core::client::{Client, ClientConfig, Input, ManifestSource, Output};
use peerhost_core::manifest::{Asset, Manifest, SiteSecret};
use peerhost_core::scheduler::ConnId;
use peerhost_core::signal::{OfferId, PeerId, RelayedOffer, Sdp, ServerMessage, swarm_id};
use peerhost_core::time::{Instant, UnixTime};
use peerhost_core::upload::UploadLimits;
use peerhost_core::wire::{Frame, MAX_MANIFEST_CHUNK, MAX_MANIFEST_LEN};
use proptest::prelude::*;

const WALL: u64 = 1_800_000_000;
const PIECE: u32 = 16 * 1024;
/// Pieces of the one file.
const PIECES: u32 = 96;

fn secret() -> SiteSecret {
    SiteSecret::from_seed([9; 32])
}

/// A seeding client holding every piece of a 96-piece site, its tracker up.
fn seeder(config: ClientConfig) -> Client {
    let data = Bytes::from(
        (0..PIECES * PIECE)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let signed = Manifest {
        site_key: secret().site_key(),
        version: 1,
        issued_at: WALL - 60,
        expires_at: WALL + 3600,
        flags: 0,
        assets: vec![Asset::from_bytes(
            "/a.bin",
            "application/octet-stream",
            PIECE,
            &data,
        )],
    }
    .sign(&secret())
    .unwrap();
    let mut c = Client::new(config, secret().site_key(), 0, 1, Instant(0));
    c.handle_input(
        Instant(0),
        Input::Manifest {
            manifest: Box::new(signed),
            source: ManifestSource::Origin,
            wall: UnixTime(WALL),
        },
    );
    c.handle_input(
        Instant(0),
        Input::AssetHeld {
            path: "/a.bin".into(),
            bytes: data,
        },
    );
    assert!(c.is_complete());
    c.handle_input(Instant(0), Input::TrackerConnected);
    drain(&mut c);
    c
}

fn drain(c: &mut Client) -> Vec<Output> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

/// A remote peer `n` connects (its offer relayed by the tracker) and
/// handshakes on version 1 holding nothing.
fn connect(c: &mut Client, now: Instant, n: u8) -> ConnId {
    c.handle_input(
        now,
        Input::Tracker(ServerMessage::Offer(RelayedOffer {
            info_hash: swarm_id(&secret().site_key(), 1),
            peer_id: PeerId([100 + n; 20]),
            offer_id: OfferId([n; 20]),
            offer: Sdp::offer(format!("v=0\r\no=- {n} 1 IN IP4 0.0.0.0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n")),
        })),
    );
    let conn = drain(c)
        .into_iter()
        .find_map(|o| match o {
            Output::AcceptOffer { conn, .. } => Some(conn),
            _ => None,
        })
        .expect("offer accepted");
    c.handle_input(
        now,
        Input::LocalSdp {
            conn,
            sdp: Sdp::answer(format!("answer {n}")),
        },
    );
    c.handle_input(now, Input::PeerOpen { conn });
    c.handle_input(
        now,
        Input::PeerFrame {
            conn,
            frame: Frame::Handshake {
                site_key: *secret().site_key().as_bytes(),
                version: 1,
                piece_count: PIECES,
                have: vec![0; PIECES.div_ceil(8) as usize],
            },
        },
    );
    drain(c);
    assert_eq!(c.active_peers(), usize::from(n) + 1, "peer {n} handshaken");
    conn
}

fn frame(c: &mut Client, now: Instant, conn: ConnId, frame: Frame) -> Vec<Output> {
    c.handle_input(now, Input::PeerFrame { conn, frame });
    drain(c)
}

fn pieces_sent(out: &[Output]) -> Vec<u32> {
    out.iter()
        .filter_map(|o| match o {
            Output::SendPeer {
                frame: Frame::Piece { piece, .. },
                ..
            } => Some(*piece),
            _ => None,
        })
        .collect()
}

fn rejects(out: &[Output]) -> usize {
    out.iter()
        .filter(|o| {
            matches!(
                o,
                Output::SendPeer {
                    frame: Frame::Reject { .. },
                    ..
                }
            )
        })
        .count()
}

fn unlimited() -> ClientConfig {
    ClientConfig {
        upload: UploadLimits::unlimited(),
        ..ClientConfig::default()
    }
}

#[test]
fn a_repeated_request_is_dropped_until_cancelled() {
    let mut c = seeder(unlimited());
    let now = Instant(10);
    let p = connect(&mut c, now, 0);
    let out = frame(&mut c, now, p, Frame::Request { piece: 3 });
    assert_eq!(pieces_sent(&out), vec![3]);
    // Asked again: neither sent again nor rejected.
    for _ in 0..10 {
        let out = frame(&mut c, now, p, Frame::Request { piece: 3 });
        assert_eq!(pieces_sent(&out), Vec::<u32>::new());
        assert_eq!(rejects(&out), 0);
    }
    // After a cancel, a request is a new one.
    frame(&mut c, now, p, Frame::Cancel { piece: 3 });
    let out = frame(&mut c, now, p, Frame::Request { piece: 3 });
    assert_eq!(pieces_sent(&out), vec![3]);
    // Another peer is its own: it gets the piece too.
    let q = connect(&mut c, now, 1);
    let out = frame(&mut c, now, q, Frame::Request { piece: 3 });
    assert_eq!(pieces_sent(&out), vec![3]);
}

#[test]
fn queued_upload_bytes_stay_under_the_per_peer_and_total_caps() {
    let config = ClientConfig {
        // One piece per second: requests queue.
        upload: UploadLimits {
            bytes_per_sec: Some(u64::from(PIECE)),
            burst: u64::from(PIECE),
            total: None,
        },
        max_peers: 6,
        max_queued_upload_bytes_per_peer: 10 * u64::from(PIECE),
        max_queued_upload_bytes: 25 * u64::from(PIECE),
        ..ClientConfig::default()
    };
    let mut c = seeder(config.clone());
    let now = Instant(10);
    let peers: Vec<ConnId> = (0..4).map(|n| connect(&mut c, now, n)).collect();
    let mut rejected = 0;
    for &p in &peers {
        for piece in 0..PIECES {
            rejected += rejects(&frame(&mut c, now, p, Frame::Request { piece }));
            assert!(c.upload_queue_bytes() <= config.max_queued_upload_bytes);
        }
    }
    // 25 pieces queued in all, 10 at most per peer, one sent from the burst.
    assert_eq!(c.upload_queue_bytes(), 25 * u64::from(PIECE));
    assert_eq!(rejected, 4 * PIECES as usize - 25 - 1);
}

#[test]
fn a_manifest_offer_holds_only_the_bytes_that_arrived() {
    let mut c = seeder(unlimited());
    let now = Instant(10);
    let p = connect(&mut c, now, 0);
    frame(
        &mut c,
        now,
        p,
        Frame::ManifestOffer {
            version: 2,
            total_len: MAX_MANIFEST_LEN as u32,
            offset: 0,
            chunk: vec![0; 16],
        },
    );
    assert!(
        c.partial_manifest_bytes() <= 64,
        "a 16-byte chunk holds {} bytes",
        c.partial_manifest_bytes()
    );
}

#[test]
fn partial_manifests_stay_under_the_cap_across_peers() {
    let config = ClientConfig {
        max_partial_manifest_bytes: 3 * MAX_MANIFEST_CHUNK,
        ..unlimited()
    };
    let mut c = seeder(config);
    let now = Instant(10);
    let peers: Vec<ConnId> = (0..4).map(|n| connect(&mut c, now, n)).collect();
    for round in 0..4u32 {
        for &p in &peers {
            frame(
                &mut c,
                now,
                p,
                Frame::ManifestOffer {
                    version: 2,
                    total_len: MAX_MANIFEST_LEN as u32,
                    offset: round * MAX_MANIFEST_CHUNK as u32,
                    chunk: vec![1; MAX_MANIFEST_CHUNK],
                },
            );
            assert!(c.partial_manifest_bytes() <= 3 * MAX_MANIFEST_CHUNK);
        }
    }
    // Dropped offers cost their peers nothing else: no ban.
    assert_eq!(c.active_peers(), 4);
}

/// One step of a hostile peer.
#[derive(Debug, Clone)]
enum Step {
    /// Peer `n` requests a piece (any, repeats included).
    Request(usize, u32),
    /// Peer `n` sends the next chunk of its endless manifest offer.
    ManifestChunk(usize, u16),
    /// Peer `n` starts a new offer.
    NewOffer(usize),
    /// Peer `n` cancels a piece.
    Cancel(usize, u32),
    /// Time passes (the upload budget refills).
    Wait(u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0..5usize, 0..PIECES).prop_map(|(n, p)| Step::Request(n, p)),
        3 => (0..5usize, 1..=MAX_MANIFEST_CHUNK as u16).prop_map(|(n, l)| Step::ManifestChunk(n, l)),
        1 => (0..5usize).prop_map(Step::NewOffer),
        1 => (0..5usize, 0..PIECES).prop_map(|(n, p)| Step::Cancel(n, p)),
        1 => (1..2000u16).prop_map(Step::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever legal frames five peers send, for as long as they send
    /// them, the bytes a client queues for upload and holds for manifest
    /// offers stay under the caps of its config (the defaults, with a
    /// slow upload so that requests do queue).
    #[test]
    fn queued_bytes_stay_under_the_caps(steps in prop::collection::vec(step(), 1..600)) {
        let config = ClientConfig {
            upload: UploadLimits {
                bytes_per_sec: Some(64 * 1024),
                burst: 64 * 1024,
                total: None,
            },
            // A total cap below the five peers' sum, so both caps are met.
            max_queued_upload_bytes: 3 * 1024 * 1024,
            ..ClientConfig::default()
        };
        let mut c = seeder(config.clone());
        let mut now = Instant(10);
        let peers: Vec<ConnId> = (0..5).map(|n| connect(&mut c, now, n)).collect();
        let mut offset = [0u32; 5];
        let mut version = [2u64; 5];
        for s in steps {
            match s {
                Step::Request(n, piece) => {
                    frame(&mut c, now, peers[n], Frame::Request { piece });
                }
                Step::Cancel(n, piece) => {
                    frame(&mut c, now, peers[n], Frame::Cancel { piece });
                }
                Step::NewOffer(n) => {
                    offset[n] = 0;
                    version[n] += 1;
                }
                Step::ManifestChunk(n, len) => {
                    let len = u32::from(len).min(MAX_MANIFEST_LEN as u32 - offset[n]);
                    if len == 0 {
                        offset[n] = 0;
                        version[n] += 1;
                        continue;
                    }
                    frame(&mut c, now, peers[n], Frame::ManifestOffer {
                        version: version[n],
                        total_len: MAX_MANIFEST_LEN as u32,
                        offset: offset[n],
                        chunk: vec![0xab; len as usize],
                    });
                    offset[n] += len;
                }
                Step::Wait(ms) => {
                    now = now + Duration::from_millis(u64::from(ms));
                    c.handle_input(now, Input::Timeout);
                    drain(&mut c);
                }
            }
            // Nobody was banned for legal frames.
            prop_assert_eq!(c.active_peers(), 5);
            prop_assert!(c.upload_queue_bytes() <= config.max_queued_upload_bytes);
            prop_assert!(c.partial_manifest_bytes() <= config.max_partial_manifest_bytes);
        }
    }
}
