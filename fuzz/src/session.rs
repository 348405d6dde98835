//! One [`Client`] driven by a script decoded from fuzz bytes: peer frames on
//! a few connections (raw bytes, or well-formed frames with right or wrong
//! contents), tracker messages (offers, answers, announce responses,
//! manifest pushes, and text through `ServerMessage::from_json`), manifests
//! from the origin, timeouts with advancing time, channels opening and
//! closing, the page wanting assets, origin answers, and honest answers to
//! deferred hash and signature jobs.
//!
//! After every input the outputs are drained and checked:
//! - nothing panics;
//! - after `Timeout` at `now`, `poll_timeout()` is after `now` (a deadline
//!   at or before `now` would spin the driver's loop);
//! - outputs name only connections that exist: created by `CreateOffer` /
//!   `AcceptOffer` (each id once), not yet closed by either side;
//! - every frame sent is one the decoder accepts;
//! - every `Deliver` is for a ticket the page asked for, and its bytes
//!   match the hashes of the manifest version it names;
//! - every origin fetch is a range inside a listed asset;
//! - one input yields at most [`MAX_OUTPUTS_PER_INPUT`] outputs.
//!
//! The script format (one op after another until the bytes run out) is
//! written by [`Script`], which the seed generator uses.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes as Buf;
use peerhost_core::client::{
    Client, ClientConfig, Event, HashJob, Input, ManifestSource, OriginError, Output, SignatureJob,
    Ticket,
};
use peerhost_core::manifest::{
    Asset, FLAG_ORIGIN_UNDER_PRESSURE, Manifest, SIGNATURE_LEN, SignedManifest, SiteKey,
    SiteSecret, verify_signature,
};
use peerhost_core::piece::Digest;
use peerhost_core::scheduler::{ConnId, RequestId};
use peerhost_core::signal::{
    OfferId, PeerId, RelayedAnswer, RelayedOffer, Sdp, ServerMessage, swarm_id,
};
use peerhost_core::time::{Instant, UnixTime};
use peerhost_core::wire::{Frame, manifest_offer_frames};

use crate::Bytes;

/// Most outputs one input may produce here: the fixture site has at most
/// 7 pieces, the client at most 12 connections, and the script at most
/// [`MAX_OPS`] tickets, so anything near this is a runaway.
pub const MAX_OUTPUTS_PER_INPUT: usize = 1024;
/// Most inputs one script feeds (keeps each run short).
pub const MAX_OPS: usize = 256;
/// Wall clock of the fixture: inside every fixture manifest's window.
pub const WALL: u64 = 1_800_000_000;

// Op tags (first byte of each op, modulo `OPS`).
pub const OP_MANIFEST: u8 = 0;
pub const OP_TRACKER_CONNECTED: u8 = 1;
pub const OP_TRACKER_CLOSED: u8 = 2;
pub const OP_ANNOUNCE_RESPONSE: u8 = 3;
pub const OP_REMOTE_OFFER: u8 = 4;
pub const OP_REMOTE_ANSWER: u8 = 5;
pub const OP_MANIFEST_PUSH: u8 = 6;
pub const OP_TRACKER_TEXT: u8 = 7;
pub const OP_LOCAL_SDP: u8 = 8;
pub const OP_PEER_OPEN: u8 = 9;
pub const OP_PEER_CLOSED: u8 = 10;
pub const OP_PEER_BYTES: u8 = 11;
pub const OP_PEER_FRAME: u8 = 12;
pub const OP_TIMEOUT: u8 = 13;
pub const OP_WANT: u8 = 14;
pub const OP_ORIGIN: u8 = 15;
pub const OP_ASSET_HELD: u8 = 16;
pub const OP_PIECE_HASHED: u8 = 17;
pub const OP_SIGNATURE_CHECKED: u8 = 18;
pub const OP_WALL_CLOCK: u8 = 19;
pub const OP_LEECH_ONLY: u8 = 20;
pub const OP_LEAVE: u8 = 21;
const OPS: u8 = 22;

// Frame kinds of `OP_PEER_FRAME`.
pub const FRAME_HANDSHAKE: u8 = 0;
pub const FRAME_HAVE: u8 = 1;
pub const FRAME_REQUEST: u8 = 2;
pub const FRAME_PIECE: u8 = 3;
pub const FRAME_CANCEL: u8 = 4;
pub const FRAME_REJECT: u8 = 5;
pub const FRAME_MANIFEST: u8 = 6;
const FRAMES: u8 = 7;

/// Manifests a script can name: the three good versions, one with a broken
/// signature, one of another site, one already expired.
pub const MANIFESTS: usize = 6;

/// One version of the fixture site.
pub struct Version {
    /// Signed manifest.
    pub signed: SignedManifest,
    /// Its wire encoding.
    pub bytes: Vec<u8>,
    /// Every asset's bytes, by path.
    pub files: Vec<(String, Vec<u8>)>,
    /// Every piece's bytes, by global index.
    pub pieces: Vec<Buf>,
}

/// The fixture: one site, its versions, and manifests that must be refused.
pub struct Fixture {
    /// The site.
    pub site_key: SiteKey,
    /// Indexed as scripts name them (see [`MANIFESTS`]).
    pub manifests: Vec<Version>,
}

/// The fixture, built once per process (signing is slow next to a run).
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let secret = SiteSecret::from_seed([7; 32]);
        let other = SiteSecret::from_seed([8; 32]);
        let v1 = vec![
            ("/a.txt".to_owned(), pattern(2500, 1)),
            ("/b.bin".to_owned(), pattern(1024, 2)),
            ("/empty".to_owned(), Vec::new()),
        ];
        let mut v2 = v1.clone();
        v2[1].1 = pattern(1024, 3);
        v2.push(("/c.css".to_owned(), pattern(1500, 4)));
        v2.sort();
        let version = |secret: &SiteSecret, files: &[(String, Vec<u8>)], v: u64, flags, life| {
            let signed = Manifest {
                site_key: secret.site_key(),
                version: v,
                issued_at: WALL - 600,
                expires_at: WALL - 600 + life,
                flags,
                assets: files
                    .iter()
                    .map(|(p, d)| Asset::from_bytes(p, "text/plain", 1024, d))
                    .collect(),
            }
            .sign(secret)
            .expect("fixture manifest signs");
            let pieces = files
                .iter()
                .flat_map(|(_, d)| d.chunks(1024).map(Buf::copy_from_slice).collect::<Vec<_>>())
                .collect();
            Version {
                bytes: signed.to_bytes(),
                signed,
                files: files.to_vec(),
                pieces,
            }
        };
        let mut forged = version(&secret, &v2, 4, 0, 3600);
        let n = forged.bytes.len();
        forged.bytes[n - 1] ^= 1;
        forged.signed = SignedManifest::from_bytes(&forged.bytes).expect("still well formed");
        Fixture {
            site_key: secret.site_key(),
            manifests: vec![
                version(&secret, &v1, 1, 0, 3600),
                version(&secret, &v2, 2, 0, 3600),
                version(&secret, &v2, 3, FLAG_ORIGIN_UNDER_PRESSURE, 3600),
                forged,
                version(&other, &v2, 5, 0, 3600),
                version(&secret, &v2, 6, 0, 300),
            ],
        }
    })
}

/// Whether to print every input and output (`PEERHOST_FUZZ_TRACE=1`), to
/// read what a crashing script did.
fn trace() -> bool {
    static T: OnceLock<bool> = OnceLock::new();
    *T.get_or_init(|| std::env::var_os("PEERHOST_FUZZ_TRACE").is_some())
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// Runs one script; panics on a broken invariant.
pub fn run(data: &[u8]) {
    let mut r = Bytes::new(data);
    let mut s = Session::new(&mut r);
    for _ in 0..MAX_OPS {
        if r.is_empty() {
            break;
        }
        s.step(&mut r);
    }
}

struct Session {
    client: Client,
    now: u64,
    wall: u64,
    /// Every connection the client created, in order; and those still open.
    created: Vec<ConnId>,
    live: BTreeSet<ConnId>,
    offer_ids: Vec<OfferId>,
    requests: Vec<(RequestId, String, std::ops::Range<u64>)>,
    hash_jobs: Vec<(HashJob, Buf)>,
    signature_jobs: Vec<(SignatureJob, SiteKey, Buf, [u8; SIGNATURE_LEN])>,
    wanted: BTreeSet<Ticket>,
    /// Versions of the fixture by number, for checking deliveries.
    versions: HashMap<u64, usize>,
}

impl Session {
    fn new(r: &mut Bytes<'_>) -> Session {
        let f = fixture();
        let flags = r.u8();
        let config = ClientConfig {
            deferred_hashing: flags & 1 != 0,
            deferred_signatures: flags & 2 != 0,
            leech_only: flags & 4 != 0,
            max_switch_delay: if flags & 8 != 0 {
                Duration::ZERO
            } else {
                Duration::from_secs(10)
            },
            ..ClientConfig::default()
        };
        let floor = u64::from(flags >> 6);
        let seed = u64::from(r.u16());
        let versions = f
            .manifests
            .iter()
            .enumerate()
            .filter(|(_, v)| v.signed.manifest().site_key == f.site_key)
            .map(|(i, v)| (v.signed.manifest().version, i))
            .collect();
        Session {
            client: Client::new(config, f.site_key, floor, seed, Instant(0)),
            now: 0,
            wall: WALL,
            created: Vec::new(),
            live: BTreeSet::new(),
            offer_ids: Vec::new(),
            requests: Vec::new(),
            hash_jobs: Vec::new(),
            signature_jobs: Vec::new(),
            wanted: BTreeSet::new(),
            versions,
        }
    }

    fn conn(&self, r: &mut Bytes<'_>) -> ConnId {
        let b = r.u8();
        if b >= 0xf0 || self.created.is_empty() {
            // Sometimes a connection the client never made.
            ConnId(u64::from(b & 0x0f) + 100)
        } else {
            self.created[b as usize % self.created.len()]
        }
    }

    fn version<'f>(&self, f: &'f Fixture, r: &mut Bytes<'_>) -> &'f Version {
        &f.manifests[r.pick(MANIFESTS)]
    }

    fn feed(&mut self, input: Input) {
        let timeout = matches!(input, Input::Timeout);
        if trace() {
            eprintln!("@{} {input}", self.now);
        }
        self.client.handle_input(Instant(self.now), input);
        self.drain();
        if timeout && let Some(t) = self.client.poll_timeout() {
            assert!(
                t.0 > self.now,
                "after a timeout at {}, poll_timeout() is {} (the driver would spin)",
                self.now,
                t.0
            );
        }
    }

    fn step(&mut self, r: &mut Bytes<'_>) {
        let f = fixture();
        let tag = r.u8() % OPS;
        let input = match tag {
            OP_MANIFEST => {
                let v = self.version(f, r);
                let source = if r.u8() & 1 == 0 {
                    ManifestSource::Origin
                } else {
                    ManifestSource::Storage
                };
                Input::Manifest {
                    manifest: Box::new(v.signed.clone()),
                    source,
                    wall: UnixTime(self.wall),
                }
            }
            OP_TRACKER_CONNECTED => Input::TrackerConnected,
            OP_TRACKER_CLOSED => Input::TrackerClosed,
            OP_ANNOUNCE_RESPONSE => {
                let v = self.version(f, r);
                Input::Tracker(ServerMessage::AnnounceResponse {
                    info_hash: swarm_id(&f.site_key, v.signed.manifest().version),
                    interval: u64::from(r.u16()),
                    complete: u64::from(r.u8()),
                    incomplete: u64::from(r.u8()),
                    ice_servers: Vec::new(),
                })
            }
            OP_REMOTE_OFFER => {
                let v = self.version(f, r);
                Input::Tracker(ServerMessage::Offer(RelayedOffer {
                    info_hash: swarm_id(&f.site_key, v.signed.manifest().version),
                    peer_id: remote(r.u8()),
                    offer_id: OfferId([r.u8(); 20]),
                    offer: Sdp::offer("v=0"),
                }))
            }
            OP_REMOTE_ANSWER => {
                let b = r.u8();
                let offer_id = if self.offer_ids.is_empty() {
                    OfferId([b; 20])
                } else {
                    self.offer_ids[b as usize % self.offer_ids.len()]
                };
                let v = self.version(f, r);
                Input::Tracker(ServerMessage::Answer(RelayedAnswer {
                    info_hash: swarm_id(&f.site_key, v.signed.manifest().version),
                    peer_id: remote(r.u8()),
                    offer_id,
                    answer: Sdp::answer("v=0"),
                }))
            }
            OP_MANIFEST_PUSH => {
                let v = self.version(f, r);
                let mut manifest = v.bytes.clone();
                let cut = r.u16() as usize;
                if cut != 0 {
                    manifest.truncate(cut % manifest.len());
                }
                Input::Tracker(ServerMessage::ManifestPush {
                    site_key: f.site_key,
                    version: v.signed.manifest().version,
                    manifest,
                })
            }
            OP_TRACKER_TEXT => {
                let text = String::from_utf8_lossy(r.blob()).into_owned();
                match ServerMessage::from_json(&text) {
                    Ok(msg) => Input::Tracker(msg),
                    Err(_) => return,
                }
            }
            OP_LOCAL_SDP => {
                let conn = self.conn(r);
                if r.u8() & 1 == 0 {
                    Input::LocalSdp {
                        conn,
                        sdp: Sdp::offer("v=0"),
                    }
                } else {
                    Input::LocalSdpFailed { conn }
                }
            }
            OP_PEER_OPEN => Input::PeerOpen { conn: self.conn(r) },
            OP_PEER_CLOSED => {
                let conn = self.conn(r);
                self.live.remove(&conn);
                Input::PeerClosed { conn }
            }
            OP_PEER_BYTES => {
                let conn = self.conn(r);
                Input::PeerData {
                    conn,
                    data: Buf::copy_from_slice(r.blob()),
                }
            }
            OP_PEER_FRAME => {
                let conn = self.conn(r);
                let frame = self.frame(f, r);
                if r.u8() & 1 == 0 {
                    Input::PeerFrame { conn, frame }
                } else {
                    if frame.check().is_err() {
                        return;
                    }
                    Input::PeerData {
                        conn,
                        data: frame.encode().into(),
                    }
                }
            }
            OP_TIMEOUT => {
                match r.u8() % 3 {
                    0 => {
                        self.now = match self.client.poll_timeout() {
                            Some(t) if t.0 > self.now => t.0,
                            _ => self.now + 1,
                        }
                    }
                    1 => self.now += u64::from(r.u16()),
                    _ => self.now += u64::from(r.u16()) * 1000,
                }
                Input::Timeout
            }
            OP_WANT => {
                let ticket = Ticket(u64::from(r.u8()));
                self.wanted.insert(ticket);
                Input::Want {
                    ticket,
                    path: path(f, r),
                }
            }
            OP_ORIGIN => {
                let b = r.u8();
                let mode = r.u8();
                let Some((request, path, range)) = (!self.requests.is_empty())
                    .then(|| self.requests[b as usize % self.requests.len()].clone())
                else {
                    return;
                };
                let current = self.client.manifest().map(|m| m.version());
                let file = current
                    .and_then(|v| self.versions.get(&v))
                    .and_then(|&i| f.manifests[i].files.iter().find(|(p, _)| *p == path))
                    .map(|(_, d)| d.clone())
                    .unwrap_or_default();
                let start = (range.start as usize).min(file.len());
                let end = (range.end as usize).min(file.len());
                let mut bytes = file[start..end].to_vec();
                let result = match mode % 4 {
                    0 => Ok(bytes),
                    1 => {
                        if let Some(x) = bytes.first_mut() {
                            *x ^= 0x55;
                        }
                        Ok(bytes)
                    }
                    2 => {
                        bytes.pop();
                        Ok(bytes)
                    }
                    _ => Err(OriginError("503".into())),
                };
                Input::Origin {
                    request,
                    result: result.map(Buf::from),
                }
            }
            OP_ASSET_HELD => {
                let v = self.version(f, r);
                let (path, bytes) = &v.files[r.pick(v.files.len())];
                let mut bytes = bytes.clone();
                if r.u8() & 1 != 0
                    && let Some(x) = bytes.last_mut()
                {
                    *x ^= 0xff;
                }
                Input::AssetHeld {
                    path: path.clone(),
                    bytes: bytes.into(),
                }
            }
            OP_PIECE_HASHED => {
                let b = r.u8();
                if self.hash_jobs.is_empty() {
                    return;
                }
                let (job, data) = self.hash_jobs.remove(b as usize % self.hash_jobs.len());
                Input::PieceHashed {
                    job,
                    digest: Digest::of(&data),
                }
            }
            OP_SIGNATURE_CHECKED => {
                let b = r.u8();
                if self.signature_jobs.is_empty() {
                    return;
                }
                let (job, key, message, signature) = self
                    .signature_jobs
                    .remove(b as usize % self.signature_jobs.len());
                Input::SignatureChecked {
                    job,
                    valid: verify_signature(&key, &message, &signature),
                }
            }
            OP_WALL_CLOCK => {
                // Around the fixture's window: inside, expired, not yet valid.
                self.wall = WALL - 3600 + u64::from(r.u16()) * 2;
                Input::WallClock(UnixTime(self.wall))
            }
            OP_LEECH_ONLY => Input::LeechOnly(r.u8() & 1 != 0),
            _ => Input::Leave,
        };
        self.feed(input);
    }

    fn frame(&self, f: &Fixture, r: &mut Bytes<'_>) -> Frame {
        let kind = r.u8() % FRAMES;
        let piece = |r: &mut Bytes<'_>| {
            let b = r.u8();
            if b == 0xff {
                r.u32()
            } else {
                u32::from(b % 10)
            }
        };
        match kind {
            FRAME_HANDSHAKE => {
                let v = self.version(f, r);
                let m = v.signed.manifest();
                let mode = r.u8();
                let piece_count = if mode & 0x80 != 0 {
                    u32::from(r.u8())
                } else {
                    m.total_pieces()
                };
                let mut have = vec![0u8; piece_count.div_ceil(8) as usize];
                for (i, byte) in have.iter_mut().enumerate() {
                    *byte = match mode & 3 {
                        0 => 0,
                        1 => 0xff,
                        _ => r.u8(),
                    };
                    // Spare bits stay zero unless the script says otherwise.
                    let bits = piece_count as usize - 8 * i;
                    if bits < 8 && mode & 0x40 == 0 {
                        *byte &= 0xffu8 << (8 - bits);
                    }
                }
                Frame::Handshake {
                    site_key: if mode & 0x20 != 0 {
                        [9; 32]
                    } else {
                        *m.site_key.as_bytes()
                    },
                    version: m.version,
                    piece_count,
                    have,
                }
            }
            FRAME_HAVE => Frame::Have { piece: piece(r) },
            FRAME_REQUEST => Frame::Request { piece: piece(r) },
            FRAME_PIECE => {
                let v = self.version(f, r);
                let index = piece(r);
                let mode = r.u8();
                let mut data = v
                    .pieces
                    .get(index as usize)
                    .map(|p| p.to_vec())
                    .unwrap_or_else(|| vec![1; 1024]);
                match mode % 4 {
                    0 => {}
                    1 => data[0] ^= 0x80,
                    2 => data.truncate(data.len() / 2),
                    _ => data = r.blob().to_vec(),
                }
                Frame::Piece {
                    piece: index,
                    data: data.into(),
                }
            }
            FRAME_CANCEL => Frame::Cancel { piece: piece(r) },
            FRAME_REJECT => Frame::Reject { piece: piece(r) },
            _ => {
                let v = self.version(f, r);
                let mut frames = manifest_offer_frames(v.signed.manifest().version, &v.bytes);
                let mut frame = frames.swap_remove(0);
                if let Frame::ManifestOffer {
                    version,
                    total_len,
                    offset,
                    chunk,
                } = &mut frame
                {
                    match r.u8() % 6 {
                        0 => {}
                        1 => *version = r.u64(),
                        2 => *total_len = r.u32(),
                        3 => *offset = r.u32(),
                        4 => chunk.truncate(r.u16() as usize),
                        _ => chunk[r.u16() as usize % v.bytes.len()] ^= 1,
                    }
                }
                frame
            }
        }
    }

    fn drain(&mut self) {
        let f = fixture();
        let mut count = 0;
        while let Some(out) = self.client.poll_output() {
            count += 1;
            if trace() {
                eprintln!("    -> {out}");
            }
            assert!(
                count <= MAX_OUTPUTS_PER_INPUT,
                "more than {MAX_OUTPUTS_PER_INPUT} outputs for one input"
            );
            match out {
                Output::CreateOffer { conn, .. } | Output::AcceptOffer { conn, .. } => {
                    assert!(!self.created.contains(&conn), "{conn:?} created twice");
                    self.created.push(conn);
                    self.live.insert(conn);
                }
                Output::ApplyAnswer { conn, .. } => self.assert_live(conn, "ApplyAnswer"),
                Output::SendPeer { conn, frame } => {
                    self.assert_live(conn, "SendPeer");
                    assert_eq!(frame.check(), Ok(()), "sent an undecodable frame");
                    assert_eq!(Frame::decode(&frame.encode()), Ok(frame));
                }
                Output::ClosePeer { conn, .. } => {
                    self.assert_live(conn, "ClosePeer");
                    self.live.remove(&conn);
                }
                Output::Event(Event::PeerConnected { conn }) => {
                    self.assert_live(conn, "PeerConnected")
                }
                Output::Event(Event::PeerBanned { conn, .. }) => {
                    assert!(self.created.contains(&conn), "banned unknown {conn:?}");
                }
                Output::Event(_) => {}
                Output::Tracker(msg) => {
                    if let peerhost_core::signal::ClientMessage::Announce(a) = msg {
                        self.offer_ids.extend(a.offers.iter().map(|o| o.offer_id));
                    }
                }
                Output::HashPiece { job, data } => self.hash_jobs.push((job, data)),
                Output::VerifySignature {
                    job,
                    site_key,
                    message,
                    signature,
                } => self
                    .signature_jobs
                    .push((job, site_key, message, signature)),
                Output::FetchOrigin {
                    request,
                    path,
                    range,
                } => {
                    let listed = f.manifests.iter().any(|v| {
                        v.signed
                            .manifest()
                            .asset(&path)
                            .is_some_and(|(_, a)| range.start < range.end && range.end <= a.size)
                    });
                    assert!(listed, "fetch of {path} {range:?} outside every asset");
                    self.requests.push((request, path, range));
                }
                Output::Deliver {
                    ticket,
                    path,
                    body,
                    version,
                    ..
                } => {
                    assert!(
                        self.wanted.contains(&ticket),
                        "delivered unasked {ticket:?}"
                    );
                    let i = *self
                        .versions
                        .get(&version)
                        .unwrap_or_else(|| panic!("delivered {path} of unknown version {version}"));
                    let m = f.manifests[i].signed.manifest();
                    let (_, asset) = m
                        .asset(&path)
                        .unwrap_or_else(|| panic!("delivered {path}, not in v{version}"));
                    let bytes = body.to_vec();
                    assert_eq!(bytes.len() as u64, asset.size, "{path}: wrong length");
                    let pieces: Vec<Digest> = bytes
                        .chunks(asset.piece_size as usize)
                        .map(Digest::of)
                        .collect();
                    assert_eq!(
                        pieces, asset.pieces,
                        "{path}: bytes fail v{version}'s hashes"
                    );
                    assert_eq!(Digest::of(&bytes), asset.digest);
                }
                Output::Failed { ticket, .. } => {
                    assert!(self.wanted.contains(&ticket), "failed unasked {ticket:?}")
                }
            }
        }
        // Bounded bookkeeping, whatever the script.
        self.offer_ids.truncate(64);
        self.requests.truncate(64);
    }

    fn assert_live(&self, conn: ConnId, what: &str) {
        assert!(
            self.live.contains(&conn),
            "{what} names {conn:?}, which is not open (created: {:?})",
            self.created
        );
    }
}

/// A remote peer's tracker id, one of a few.
fn remote(b: u8) -> PeerId {
    let mut id = *b"-WW0001-remote000000";
    id[19] = b'0' + b % 6;
    PeerId(id)
}

fn path(f: &Fixture, r: &mut Bytes<'_>) -> String {
    let b = r.u8();
    let files = &f.manifests[1].files;
    match files.get(b as usize % (files.len() + 1)) {
        Some((p, _)) => p.clone(),
        None => "/not-listed".to_owned(),
    }
}

/// Writes scripts for the seed corpus, op by op, in the format
/// [`run`] reads.
#[derive(Default)]
pub struct Script(pub Vec<u8>);

impl Script {
    /// A script for a client with these config flags (bit 0 deferred
    /// hashing, 1 deferred signatures, 2 leech only, 3 no switch delay).
    pub fn new(flags: u8, seed: u16) -> Script {
        let mut s = Script(vec![flags]);
        s.0.extend_from_slice(&seed.to_be_bytes());
        s
    }
    /// Appends one op: its tag and its bytes.
    pub fn op(mut self, tag: u8, bytes: &[u8]) -> Script {
        self.0.push(tag);
        self.0.extend_from_slice(bytes);
        self
    }
}
