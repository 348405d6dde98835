//! The deferred-signature seam (the browser's WebCrypto Ed25519): the driver
//! only answers whether (site key, signed bytes, signature) verify; every
//! other check stays in the core, nothing is accepted before a `true`
//! answer, a `false` answer refuses the manifest, and a peer that sent a
//! forged manifest is banned as with inline checks.

use bytes::Bytes;
use peerhost_core::client::{
    AssetError, Client, ClientConfig, Event, Input, ManifestSource, Misbehaviour, Output,
    SignatureJob, Ticket,
};
use peerhost_core::manifest::{
    Asset, Manifest, ManifestError, SIGNATURE_LEN, SignedManifest, SiteSecret, verify_signature,
};
use peerhost_core::scheduler::ConnId;
use peerhost_core::signal::{OfferId, PeerId, RelayedOffer, Sdp, ServerMessage, swarm_id};
use peerhost_core::time::{Instant, UnixTime};
use peerhost_core::wire::{Frame, manifest_offer_frames};

const WALL: u64 = 1_800_000_000;

fn secret() -> SiteSecret {
    SiteSecret::from_seed([5; 32])
}

fn manifest(version: u64, fill: u8) -> Manifest {
    Manifest {
        site_key: secret().site_key(),
        version,
        issued_at: WALL - 60,
        expires_at: WALL + 3600,
        flags: 0,
        assets: vec![Asset::from_bytes(
            "/a.txt",
            "text/plain",
            16 * 1024,
            &[fill; 20_000],
        )],
    }
}

fn sign(version: u64) -> SignedManifest {
    manifest(version, 1).sign(&secret()).unwrap()
}

/// `signed` with one bit of its signature flipped: the same content, forged.
fn forge(signed: &SignedManifest) -> SignedManifest {
    let mut bytes = signed.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    SignedManifest::from_bytes(&bytes).unwrap()
}

fn deferred() -> ClientConfig {
    ClientConfig {
        deferred_signatures: true,
        ..ClientConfig::default()
    }
}

fn client(floor: u64) -> Client {
    Client::new(deferred(), secret().site_key(), floor, 1, Instant(0))
}

fn drain(c: &mut Client) -> Vec<Output> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

/// The one signature request among `outputs`, checked as a driver would.
fn request(outputs: &[Output]) -> (SignatureJob, bool) {
    let requests: Vec<_> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::VerifySignature {
                job,
                site_key,
                message,
                signature,
            } => Some((*job, verify_signature(site_key, message, signature))),
            _ => None,
        })
        .collect();
    assert_eq!(requests.len(), 1, "one signature check asked: {outputs:?}");
    requests[0]
}

fn accepted(outputs: &[Output]) -> bool {
    outputs
        .iter()
        .any(|o| matches!(o, Output::Event(Event::ManifestAccepted { .. })))
}

fn refused(outputs: &[Output]) -> Vec<ManifestError> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(Event::ManifestRefused { error, .. }) => Some(error.clone()),
            _ => None,
        })
        .collect()
}

/// Hands `signed` to a deferred client (its wall clock at `wall`);
/// returns the job and the outputs.
fn offer_at(c: &mut Client, signed: &SignedManifest, wall: u64) -> (SignatureJob, Vec<Output>) {
    c.handle_input(
        Instant(1),
        Input::Manifest {
            manifest: Box::new(signed.clone()),
            source: ManifestSource::Origin,
            wall: UnixTime(wall),
        },
    );
    let out = drain(c);
    assert!(
        refused(&out).is_empty(),
        "not refused before the signature check"
    );
    let (job, _) = request(&out);
    (job, out)
}

fn offer(c: &mut Client, signed: &SignedManifest) -> (SignatureJob, Vec<Output>) {
    offer_at(c, signed, WALL)
}

/// Answers signature check `job`; returns the verdict the events tell
/// (`Some(Ok(version))` accepted, `Some(Err(_))` refused, `None` neither:
/// an unknown job) and every output.
fn answer(
    c: &mut Client,
    now: Instant,
    job: SignatureJob,
    valid: bool,
) -> (Option<Result<u64, ManifestError>>, Vec<Output>) {
    c.handle_input(now, Input::SignatureChecked { job, valid });
    let out = drain(c);
    let verdict = out.iter().find_map(|o| match o {
        Output::Event(Event::ManifestAccepted { version, .. }) => Some(Ok(*version)),
        Output::Event(Event::ManifestRefused { error, .. }) => Some(Err(error.clone())),
        _ => None,
    });
    (verdict, out)
}

#[test]
fn nothing_is_accepted_before_the_answer_and_true_accepts() {
    let mut c = client(0);
    let m = sign(1);
    let (job, out) = offer(&mut c, &m);
    // The request names exactly the manifest's key, signed bytes and signature.
    let Some(Output::VerifySignature {
        site_key,
        message,
        signature,
        ..
    }) = out
        .iter()
        .find(|o| matches!(o, Output::VerifySignature { .. }))
    else {
        panic!("no signature request in {out:?}");
    };
    assert_eq!(*site_key, secret().site_key());
    assert_eq!(&message[..], m.signed_bytes());
    assert_eq!(signature, m.signature());
    assert_eq!(signature.len(), SIGNATURE_LEN);
    // Meanwhile: no manifest, no event, no asset, no raised floor.
    assert!(!accepted(&out));
    assert!(c.manifest().is_none());
    assert_eq!(c.version_floor(), 0);
    c.handle_input(
        Instant(2),
        Input::Want {
            ticket: Ticket(0),
            path: "/a.txt".into(),
        },
    );
    assert!(
        drain(&mut c).iter().any(|o| matches!(
            o,
            Output::Failed {
                error: AssetError::NoManifest,
                ..
            }
        )),
        "no asset before the verdict"
    );
    c.handle_input(
        Instant(2),
        Input::AssetHeld {
            path: "/a.txt".into(),
            bytes: Bytes::copy_from_slice(&[1; 20_000]),
        },
    );
    assert_eq!(c.asset_progress("/a.txt"), None);
    let (_, valid) = request(&out);
    assert!(valid);
    let (verdict, out) = answer(&mut c, Instant(3), job, true);
    assert_eq!(verdict, Some(Ok(1)));
    assert!(accepted(&out));
    assert_eq!(c.manifest().map(|m| m.version()), Some(1));
    c.handle_input(
        Instant(4),
        Input::Want {
            ticket: Ticket(1),
            path: "/a.txt".into(),
        },
    );
    assert!(
        !drain(&mut c)
            .iter()
            .any(|o| matches!(o, Output::Failed { .. }))
    );
    // A second answer to the same job is ignored.
    assert_eq!(answer(&mut c, Instant(5), job, false).0, None);
    assert_eq!(c.manifest().map(|m| m.version()), Some(1));
}

#[test]
fn a_bad_signature_is_refused_through_the_seam() {
    let mut c = client(0);
    let (job, out) = offer(&mut c, &forge(&sign(1)));
    let (_, valid) = request(&out);
    assert!(!valid, "the forged signature does not verify");
    let (verdict, out) = answer(&mut c, Instant(2), job, valid);
    assert_eq!(verdict, Some(Err(ManifestError::BadSignature)));
    assert_eq!(refused(&out), vec![ManifestError::BadSignature]);
    assert!(c.manifest().is_none());
    assert_eq!(c.version_floor(), 0);
}

#[test]
fn a_false_answer_refuses_even_a_genuine_manifest() {
    let mut c = client(0);
    let (job, _) = offer(&mut c, &sign(1));
    assert_eq!(
        answer(&mut c, Instant(2), job, false).0,
        Some(Err(ManifestError::BadSignature))
    );
    assert!(c.manifest().is_none());
    // The same manifest offered again is checked again, and then accepted.
    let (job, _) = offer(&mut c, &sign(1));
    assert_eq!(answer(&mut c, Instant(3), job, true).0, Some(Ok(1)));
}

#[test]
fn every_other_check_still_runs_after_a_true_answer() {
    // Rollback below the persisted floor.
    let mut c = client(5);
    let (job, _) = offer(&mut c, &sign(4));
    assert_eq!(
        answer(&mut c, Instant(2), job, true).0,
        Some(Err(ManifestError::Rollback {
            offered: 4,
            current: 5
        }))
    );
    assert!(c.manifest().is_none());

    // Rollback below the current version, and equivocation at it.
    let mut c = client(0);
    let (job, _) = offer(&mut c, &sign(2));
    assert_eq!(answer(&mut c, Instant(2), job, true).0, Some(Ok(2)));
    let (job, _) = offer(&mut c, &sign(1));
    assert!(matches!(
        answer(&mut c, Instant(3), job, true).0,
        Some(Err(ManifestError::Rollback { .. }))
    ));
    let other = manifest(2, 7).sign(&secret()).unwrap();
    let (job, _) = offer(&mut c, &other);
    assert_eq!(
        answer(&mut c, Instant(4), job, true).0,
        Some(Err(ManifestError::Equivocation { version: 2 }))
    );
    assert_eq!(c.manifest().unwrap().digest(), sign(2).digest());

    // Expired at the wall clock it arrived with.
    let mut c = client(0);
    let (job, _) = offer_at(&mut c, &sign(1), WALL + 3600);
    assert!(matches!(
        answer(&mut c, Instant(2), job, true).0,
        Some(Err(ManifestError::Expired { .. }))
    ));
    assert!(c.manifest().is_none());
}

#[test]
fn another_sites_manifest_is_refused_without_asking() {
    let mut c = client(0);
    let stranger = SiteSecret::from_seed([6; 32]);
    let theirs = Manifest {
        site_key: stranger.site_key(),
        ..manifest(1, 1)
    }
    .sign(&stranger)
    .unwrap();
    c.handle_input(
        Instant(1),
        Input::Manifest {
            manifest: Box::new(theirs),
            source: ManifestSource::Origin,
            wall: UnixTime(WALL),
        },
    );
    let out = drain(&mut c);
    assert!(matches!(
        refused(&out)[..],
        [ManifestError::WrongSiteKey { .. }]
    ));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::VerifySignature { .. }))
    );
    assert!(c.manifest().is_none());
}

/// A visitor on version 1 with one handshaken peer.
fn with_peer() -> (Client, ConnId) {
    let mut c = client(0);
    let (job, _) = offer(&mut c, &sign(1));
    assert_eq!(answer(&mut c, Instant(1), job, true).0, Some(Ok(1)));
    c.handle_input(Instant(1), Input::TrackerConnected);
    c.handle_input(
        Instant(2),
        Input::Tracker(ServerMessage::Offer(RelayedOffer {
            info_hash: swarm_id(&secret().site_key(), 1),
            peer_id: PeerId(*b"-PH0001-remotepeer01"),
            offer_id: OfferId(*b"offer-id-0000000001x"),
            offer: Sdp::offer("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"),
        })),
    );
    let conn = drain(&mut c)
        .into_iter()
        .find_map(|o| match o {
            Output::AcceptOffer { conn, .. } => Some(conn),
            _ => None,
        })
        .expect("accepted the offer");
    c.handle_input(
        Instant(3),
        Input::LocalSdp {
            conn,
            sdp: Sdp::answer("y"),
        },
    );
    c.handle_input(Instant(4), Input::PeerOpen { conn });
    let pieces = sign(1).manifest().total_pieces();
    let hs = Frame::Handshake {
        site_key: *secret().site_key().as_bytes(),
        version: 1,
        piece_count: pieces,
        have: vec![0; pieces.div_ceil(8) as usize],
    };
    c.handle_input(
        Instant(5),
        Input::PeerData {
            conn,
            data: Bytes::copy_from_slice(&hs.encode()),
        },
    );
    drain(&mut c);
    assert_eq!(c.active_peers(), 1);
    (c, conn)
}

fn send_manifest(c: &mut Client, conn: ConnId, signed: &SignedManifest) -> Vec<Output> {
    let version = signed.manifest().version;
    for f in manifest_offer_frames(version, &signed.to_bytes()) {
        c.handle_input(
            Instant(6),
            Input::PeerData {
                conn,
                data: Bytes::copy_from_slice(&f.encode()),
            },
        );
    }
    drain(c)
}

#[test]
fn a_peer_offering_a_forged_manifest_is_banned_on_the_answer() {
    let (mut c, conn) = with_peer();
    let out = send_manifest(&mut c, conn, &forge(&sign(2)));
    let (job, valid) = request(&out);
    assert!(!valid);
    assert_eq!(c.stats().peers_banned, 0, "not judged yet");
    // A second manifest from it while the first is checked is dropped.
    assert!(
        !send_manifest(&mut c, conn, &forge(&sign(3)))
            .iter()
            .any(|o| matches!(o, Output::VerifySignature { .. }))
    );
    let (verdict, out) = answer(&mut c, Instant(7), job, valid);
    assert_eq!(verdict, Some(Err(ManifestError::BadSignature)));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Event(Event::PeerBanned {
            reason: Misbehaviour::BadManifest(ManifestError::BadSignature),
            ..
        })
    )));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::ClosePeer { conn: x, .. } if *x == conn))
    );
    assert_eq!(c.stats().peers_banned, 1);
    assert_eq!(c.manifest().unwrap().version(), 1);
}

#[test]
fn a_peers_genuine_manifest_is_taken_on_a_true_answer() {
    let (mut c, conn) = with_peer();
    let out = send_manifest(&mut c, conn, &sign(2));
    let (job, valid) = request(&out);
    assert!(valid);
    assert_eq!(c.manifest().unwrap().version(), 1, "not before the answer");
    assert_eq!(answer(&mut c, Instant(7), job, valid).0, Some(Ok(2)));
    assert_eq!(c.manifest().unwrap().version(), 2);
    assert_eq!(c.stats().peers_banned, 0);
}

#[test]
fn a_newer_tracker_push_replaces_the_one_being_checked() {
    let (mut c, _) = with_peer();
    let push = |m: &SignedManifest| ServerMessage::ManifestPush {
        site_key: secret().site_key(),
        version: m.manifest().version,
        manifest: m.to_bytes(),
    };
    c.handle_input(Instant(6), Input::Tracker(push(&sign(2))));
    let (old, _) = request(&drain(&mut c));
    c.handle_input(Instant(7), Input::Tracker(push(&sign(3))));
    let (new, valid) = request(&drain(&mut c));
    assert_eq!(answer(&mut c, Instant(8), old, true).0, None, "replaced");
    assert_eq!(answer(&mut c, Instant(8), new, valid).0, Some(Ok(3)));
    assert_eq!(c.manifest().unwrap().version(), 3);
}
