//! In-memory swarm: several real `Client`s, a virtual clock, a seeded link
//! model, a minimal relay tracker and a bandwidth-capped origin that counts
//! what it serves. Same seed, same run.
//!
//! The tracker here is a test double of the WebTorrent relay (the real one
//! lives in `tracker/` and is tested there over real sockets); everything
//! else that runs is the real core.

#![allow(dead_code, missing_docs)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::Duration;

use peerhost_core::client::{
    Client, ClientConfig, Event, HashJob, ManifestSource, ManifestStatus, Misbehaviour,
    OriginError, Output, SignatureJob, Ticket,
};
use peerhost_core::manifest::{Asset, Manifest, SignedManifest, SiteSecret, verify_signature};
use peerhost_core::piece::Digest;
use peerhost_core::rng::Rng;
use peerhost_core::scheduler::{ConnId, RequestId};
use peerhost_core::signal::{
    AnnounceEvent, ClientMessage, InfoHash, PeerId, RelayedAnswer, RelayedOffer, Sdp, ServerMessage,
};
use peerhost_core::time::{Instant, UnixTime};
use peerhost_core::wire::Frame;

pub const WALL_START: u64 = 1_800_000_000;

/// A generated site: its files and signed manifest.
pub struct Site {
    pub secret: SiteSecret,
    pub files: Vec<(String, Vec<u8>)>,
    pub signed: SignedManifest,
}

impl Site {
    /// Files of the given sizes with seeded random content.
    pub fn generate(seed: u64, sizes: &[usize], version: u64) -> Site {
        let secret = SiteSecret::from_seed([9; 32]);
        let mut rng = Rng::new(seed);
        let files: Vec<(String, Vec<u8>)> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let data: Vec<u8> = (0..*n).map(|_| rng.next_u64() as u8).collect();
                (format!("/asset/{i:02}.bin"), data)
            })
            .collect();
        let signed = Self::sign(&secret, &files, version);
        Site {
            secret,
            files,
            signed,
        }
    }

    pub fn sign(secret: &SiteSecret, files: &[(String, Vec<u8>)], version: u64) -> SignedManifest {
        Self::sign_flags(secret, files, version, 0)
    }

    pub fn sign_flags(
        secret: &SiteSecret,
        files: &[(String, Vec<u8>)],
        version: u64,
        flags: u32,
    ) -> SignedManifest {
        let assets = files
            .iter()
            .map(|(p, d)| Asset::from_bytes(p, "application/octet-stream", 16 * 1024, d))
            .collect();
        Manifest {
            site_key: secret.site_key(),
            version,
            issued_at: WALL_START - 60,
            expires_at: WALL_START + 24 * 3600,
            flags,
            assets,
        }
        .sign(secret)
        .expect("valid manifest")
    }

    pub fn total(&self) -> u64 {
        self.files.iter().map(|(_, d)| d.len() as u64).sum()
    }
}

/// How a node behaves towards others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Honest,
    /// Flips a byte in every piece it sends.
    CorruptPieces,
    /// From this instant on, sends nothing and receives nothing (black hole).
    SilentFrom(Instant),
    /// At this instant, closes every connection.
    LeavesAt(Instant),
}

pub struct Node {
    pub client: Client,
    pub behaviour: Behaviour,
    pub up_free_at: Instant,
    pub upload_bytes_per_ms: u64,
    pub delivered: BTreeMap<String, Vec<u8>>,
    pub tickets: BTreeMap<Ticket, String>,
    pub failed: Vec<String>,
    pub banned: Vec<(ConnId, Misbehaviour)>,
    pub finished_at: Option<Instant>,
    pub started_at: Instant,
}

#[derive(Debug)]
enum Ev {
    ToTracker(usize, ClientMessage),
    FromTracker(usize, ServerMessage),
    LocalSdp(usize, ConnId, Sdp),
    Open(usize, ConnId),
    Frame(usize, ConnId, Vec<u8>),
    Closed(usize, ConnId),
    Origin(usize, RequestId, Result<Vec<u8>, OriginError>),
    Hash(usize, HashJob, Digest),
    Signature(usize, SignatureJob, bool),
    Behave(usize),
}

/// The virtual network.
pub struct Net {
    pub now: Instant,
    pub rng: Rng,
    pub nodes: Vec<Node>,
    pub site: Site,
    queue: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    events: BTreeMap<usize, Ev>,
    seq: u64,
    links: BTreeMap<(usize, ConnId), (usize, ConnId)>,
    link_latency: BTreeMap<(usize, usize), Duration>,
    /// Per swarm: peer id → node.
    swarms: BTreeMap<InfoHash, BTreeMap<PeerId, usize>>,
    pub origin_bytes: u64,
    pub origin_requests: u64,
    pub origin_down: bool,
    origin_free_at: Instant,
    pub origin_bytes_per_ms: u64,
    pub tracker_latency: Duration,
    pub origin_latency: Duration,
    /// The latest manifest published to the tracker, pushed to subscribers.
    pub tracker_manifest: Option<SignedManifest>,
}

impl Net {
    pub fn new(seed: u64, site: Site) -> Net {
        Net {
            now: Instant(0),
            rng: Rng::new(seed),
            nodes: Vec::new(),
            site,
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            seq: 0,
            links: BTreeMap::new(),
            link_latency: BTreeMap::new(),
            swarms: BTreeMap::new(),
            origin_bytes: 0,
            origin_requests: 0,
            origin_down: false,
            origin_free_at: Instant(0),
            origin_bytes_per_ms: 1_000, // ~1 MB/s
            tracker_latency: Duration::from_millis(15),
            origin_latency: Duration::from_millis(40),
            tracker_manifest: None,
        }
    }

    fn wall(&self) -> UnixTime {
        UnixTime(WALL_START + self.now.as_millis() / 1000)
    }

    fn push(&mut self, at: Instant, ev: Ev) {
        let id = self.seq as usize;
        self.seq += 1;
        self.events.insert(id, ev);
        self.queue.push(Reverse((at, self.seq, id)));
    }

    /// Adds a node now: it has the manifest (as from the origin), connects to
    /// the tracker, and — if `seed_all` — holds every file already;
    /// otherwise it wants every asset.
    pub fn add_node(
        &mut self,
        config: ClientConfig,
        behaviour: Behaviour,
        seed_all: bool,
    ) -> usize {
        let idx = self.nodes.len();
        let seed = self.rng.next_u64();
        let mut client = Client::new(config, self.site.secret.site_key(), 0, seed, self.now);
        let status = client
            .handle_manifest(
                self.now,
                self.wall(),
                &self.site.signed,
                ManifestSource::Origin,
            )
            .expect("manifest accepted");
        // Deferred signature check: answered at once, so the node starts
        // with its manifest (the queued request is answered again later,
        // and that second answer is ignored).
        if let ManifestStatus::AwaitingSignature(job) = status {
            let s = &self.site.signed;
            let valid = verify_signature(&s.manifest().site_key, s.signed_bytes(), s.signature());
            client
                .handle_signature(self.now, job, valid)
                .expect("a pending job")
                .expect("manifest accepted");
        }
        let mut node = Node {
            client,
            behaviour,
            up_free_at: self.now,
            upload_bytes_per_ms: 2_000, // ~2 MB/s upload per peer
            delivered: BTreeMap::new(),
            tickets: BTreeMap::new(),
            failed: Vec::new(),
            banned: Vec::new(),
            finished_at: None,
            started_at: self.now,
        };
        if seed_all {
            for (path, data) in &self.site.files {
                node.client.add_asset(self.now, path, data);
                node.delivered.insert(path.clone(), data.clone());
            }
            node.finished_at = Some(self.now);
        }
        node.client.handle_tracker_connected(self.now);
        if !seed_all {
            for (path, _) in &self.site.files {
                let t = node.client.want(self.now, path).expect("listed");
                node.tickets.insert(t, path.clone());
            }
        }
        self.nodes.push(node);
        match behaviour {
            Behaviour::SilentFrom(t) | Behaviour::LeavesAt(t) => self.push(t, Ev::Behave(idx)),
            _ => {}
        }
        self.flush();
        idx
    }

    /// Hands `node` a manifest as if fetched from the origin.
    pub fn give_manifest(&mut self, node: usize, signed: &SignedManifest) {
        let (now, wall) = (self.now, self.wall());
        let _ = self.nodes[node]
            .client
            .handle_manifest(now, wall, signed, ManifestSource::Origin);
        self.flush();
    }

    fn latency(&mut self, a: usize, b: usize) -> Duration {
        let key = (a.min(b), a.max(b));
        if let Some(d) = self.link_latency.get(&key) {
            return *d;
        }
        let d = Duration::from_millis(10 + self.rng.below(40));
        self.link_latency.insert(key, d);
        d
    }

    fn silent(&self, node: usize) -> bool {
        matches!(self.nodes[node].behaviour, Behaviour::SilentFrom(t) if self.now >= t)
    }

    /// Drains every node's outputs into the event queue.
    fn flush(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(out) = self.nodes[i].client.poll_output() {
                self.route(i, out);
            }
        }
    }

    fn route(&mut self, i: usize, out: Output) {
        let now = self.now;
        if std::env::var_os("HARNESS_TRACE").is_some() {
            let mut line = format!("{out:?}");
            line.truncate(160);
            eprintln!("{:>6} n{i} {line}", now.as_millis());
        }
        match out {
            Output::Tracker(msg) => self.push(now + self.tracker_latency, Ev::ToTracker(i, msg)),
            Output::CreateOffer { conn } => self.push(
                now + Duration::from_millis(1),
                Ev::LocalSdp(i, conn, Sdp::offer(format!("{i}:{}", conn.0))),
            ),
            Output::AcceptOffer { conn, offer } => {
                let (n, c) = parse_sdp(&offer.sdp);
                self.links.insert((i, conn), (n, c));
                self.links.insert((n, c), (i, conn));
                self.push(
                    now + Duration::from_millis(1),
                    Ev::LocalSdp(i, conn, Sdp::answer(format!("{i}:{}", conn.0))),
                );
            }
            Output::ApplyAnswer { conn, answer } => {
                let (n, c) = parse_sdp(&answer.sdp);
                if self.links.get(&(i, conn)) == Some(&(n, c)) {
                    let d = self.latency(i, n) * 2;
                    self.push(now + d, Ev::Open(i, conn));
                    self.push(now + d, Ev::Open(n, c));
                }
            }
            Output::SendPeer { conn, frame } => {
                if self.silent(i) {
                    return;
                }
                let Some(&(n, c)) = self.links.get(&(i, conn)) else {
                    return;
                };
                // Over the wire format, so the codec runs too.
                let mut bytes = frame.encode();
                if self.nodes[i].behaviour == Behaviour::CorruptPieces
                    && let Frame::Piece { .. } = frame
                {
                    let last = bytes.len() - 1;
                    bytes[last] ^= 0x5a;
                }
                let node = &mut self.nodes[i];
                let start = node.up_free_at.max(now);
                let tx =
                    Duration::from_millis((bytes.len() as u64).div_ceil(node.upload_bytes_per_ms));
                node.up_free_at = start + tx;
                let at = start + tx + self.latency(i, n);
                self.push(at, Ev::Frame(n, c, bytes));
            }
            Output::ClosePeer { conn, .. } => {
                if let Some((n, c)) = self.links.remove(&(i, conn)) {
                    self.links.remove(&(n, c));
                    let d = self.latency(i, n);
                    self.push(now + d, Ev::Closed(n, c));
                }
            }
            Output::FetchOrigin {
                request,
                path,
                range,
            } => {
                self.origin_requests += 1;
                let result = if self.origin_down {
                    Err(OriginError("503".into()))
                } else {
                    let data = &self
                        .site
                        .files
                        .iter()
                        .find(|(p, _)| *p == path)
                        .expect("listed")
                        .1;
                    Ok(data[range.start as usize..range.end as usize].to_vec())
                };
                let len = result.as_ref().map_or(0, |d| d.len() as u64);
                self.origin_bytes += len;
                let start = self.origin_free_at.max(now);
                self.origin_free_at =
                    start + Duration::from_millis(len.div_ceil(self.origin_bytes_per_ms));
                let at = self.origin_free_at + self.origin_latency;
                self.push(at, Ev::Origin(i, request, result));
            }
            Output::Deliver {
                ticket, path, body, ..
            } => {
                let node = &mut self.nodes[i];
                node.tickets.remove(&ticket);
                node.delivered.insert(path, body.to_vec());
                if node.tickets.is_empty() && node.finished_at.is_none() {
                    node.finished_at = Some(now);
                }
            }
            Output::Failed { ticket, error } => {
                let node = &mut self.nodes[i];
                node.tickets.remove(&ticket);
                node.failed.push(error.to_string());
            }
            Output::Event(Event::PeerBanned { conn, reason, .. }) => {
                self.nodes[i].banned.push((conn, reason))
            }
            // Deferred hashing: answered a millisecond later, as a browser's
            // crypto.subtle.digest would be.
            Output::HashPiece { job, data } => self.push(
                now + Duration::from_millis(1),
                Ev::Hash(i, job, Digest::of(&data)),
            ),
            // Deferred signature checks: answered a millisecond later, as
            // WebCrypto's would be.
            Output::VerifySignature {
                job,
                site_key,
                message,
                signature,
            } => self.push(
                now + Duration::from_millis(1),
                Ev::Signature(i, job, verify_signature(&site_key, &message, &signature)),
            ),
            Output::Event(_) => {}
        }
    }

    fn tracker(&mut self, from: usize, msg: ClientMessage) {
        let now = self.now;
        let lat = self.tracker_latency;
        match msg {
            ClientMessage::Announce(a) => {
                let swarm = self.swarms.entry(a.info_hash).or_default();
                if a.event == AnnounceEvent::Stopped {
                    swarm.remove(&a.peer_id);
                    return;
                }
                swarm.insert(a.peer_id, from);
                let count = swarm.len() as u64;
                let mut others: Vec<(PeerId, usize)> = swarm
                    .iter()
                    .filter(|(p, _)| **p != a.peer_id)
                    .map(|(p, n)| (*p, *n))
                    .collect();
                self.push(
                    now + lat,
                    Ev::FromTracker(
                        from,
                        ServerMessage::AnnounceResponse {
                            info_hash: a.info_hash,
                            interval: 120,
                            complete: 0,
                            incomplete: count,
                        },
                    ),
                );
                for offer in a.offers {
                    if others.is_empty() {
                        break;
                    }
                    let (_, to) = others.swap_remove(self.rng.below(others.len() as u64) as usize);
                    self.push(
                        now + lat,
                        Ev::FromTracker(
                            to,
                            ServerMessage::Offer(RelayedOffer {
                                info_hash: a.info_hash,
                                peer_id: a.peer_id,
                                offer_id: offer.offer_id,
                                offer: offer.offer,
                            }),
                        ),
                    );
                }
            }
            ClientMessage::Answer(a) => {
                let to = self
                    .swarms
                    .get(&a.info_hash)
                    .and_then(|s| s.get(&a.to_peer_id))
                    .copied();
                if let Some(to) = to {
                    self.push(
                        now + lat,
                        Ev::FromTracker(
                            to,
                            ServerMessage::Answer(RelayedAnswer {
                                info_hash: a.info_hash,
                                peer_id: a.peer_id,
                                offer_id: a.offer_id,
                                answer: a.answer,
                            }),
                        ),
                    );
                }
            }
            ClientMessage::SubscribeManifest { have_version, .. } => {
                if let Some(m) = self
                    .tracker_manifest
                    .clone()
                    .filter(|m| m.manifest().version > have_version)
                {
                    let push = ServerMessage::ManifestPush {
                        site_key: m.manifest().site_key,
                        version: m.manifest().version,
                        manifest: m.to_bytes(),
                    };
                    self.push(now + lat, Ev::FromTracker(from, push));
                }
            }
            _ => {}
        }
    }

    fn deliver(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::ToTracker(i, msg) => self.tracker(i, msg),
            Ev::FromTracker(i, msg) => self.nodes[i].client.handle_tracker(now, msg),
            Ev::LocalSdp(i, conn, sdp) => self.nodes[i].client.handle_local_sdp(now, conn, sdp),
            Ev::Open(i, conn) => {
                if self.links.contains_key(&(i, conn)) {
                    self.nodes[i].client.handle_peer_open(now, conn);
                }
            }
            Ev::Frame(i, conn, bytes) => {
                if !self.silent(i) && self.links.contains_key(&(i, conn)) {
                    self.nodes[i].client.handle_peer_frame(now, conn, &bytes);
                }
            }
            Ev::Closed(i, conn) => self.nodes[i].client.handle_peer_closed(now, conn),
            Ev::Origin(i, req, result) => self.nodes[i].client.handle_origin(now, req, result),
            Ev::Hash(i, job, digest) => self.nodes[i].client.handle_piece_hash(now, job, digest),
            Ev::Signature(i, job, valid) => {
                let _ = self.nodes[i].client.handle_signature(now, job, valid);
            }
            Ev::Behave(i) => {
                if let Behaviour::LeavesAt(_) = self.nodes[i].behaviour {
                    let mine: Vec<(usize, ConnId)> = self
                        .links
                        .keys()
                        .filter(|(n, _)| *n == i)
                        .copied()
                        .collect();
                    for key in mine {
                        if let Some((n, c)) = self.links.remove(&key) {
                            self.links.remove(&(n, c));
                            self.push(now + Duration::from_millis(5), Ev::Closed(n, c));
                        }
                    }
                }
            }
        }
    }

    /// Runs until `done` holds or virtual time passes `limit`. Panics if the
    /// loop spins without time moving (a livelock in the core).
    pub fn run_until(&mut self, limit: Duration, done: impl Fn(&Net) -> bool) -> bool {
        let deadline = self.now + limit;
        let mut spins_at_same_time = 0;
        for _ in 0..5_000_000 {
            self.flush();
            if done(self) {
                return true;
            }
            let next_ev = self.queue.peek().map(|Reverse((t, _, _))| *t);
            let next_timer = self
                .nodes
                .iter()
                .filter_map(|n| n.client.poll_timeout())
                .min();
            let Some(next) = [next_ev, next_timer].into_iter().flatten().min() else {
                return false;
            };
            if next > deadline {
                self.now = deadline;
                return done(self);
            }
            if next <= self.now {
                spins_at_same_time += 1;
                assert!(spins_at_same_time < 100_000, "livelock at {:?}", self.now);
            } else {
                spins_at_same_time = 0;
            }
            self.now = self.now.max(next);
            while let Some(Reverse((t, _, id))) = self.queue.peek().copied() {
                if t > self.now {
                    break;
                }
                self.queue.pop();
                let ev = self.events.remove(&id).expect("queued event");
                self.deliver(ev);
                self.flush();
            }
            for i in 0..self.nodes.len() {
                if self.nodes[i]
                    .client
                    .poll_timeout()
                    .is_some_and(|t| t <= self.now)
                {
                    let now = self.now;
                    self.nodes[i].client.handle_timeout(now);
                }
            }
        }
        panic!("drive loop did not settle");
    }

    /// The tracker pushes `signed` to every node now (a `peerhost push`).
    pub fn push_to_all(&mut self, signed: &SignedManifest) {
        let at = self.now + self.tracker_latency;
        for i in 0..self.nodes.len() {
            let push = ServerMessage::ManifestPush {
                site_key: signed.manifest().site_key,
                version: signed.manifest().version,
                manifest: signed.to_bytes(),
            };
            self.push(at, Ev::FromTracker(i, push));
        }
    }

    /// The page of `node` asks for `path` now.
    pub fn want(&mut self, node: usize, path: &str) {
        let now = self.now;
        let t = self.nodes[node].client.want(now, path).expect("listed");
        self.nodes[node].tickets.insert(t, path.to_owned());
        self.flush();
    }

    /// Whether every node that wanted the site has every asset, correct.
    pub fn all_complete(&self) -> bool {
        self.nodes.iter().all(|n| n.finished_at.is_some())
    }

    /// Panics unless every delivered body matches the original file.
    pub fn assert_all_bytes_correct(&self) {
        for (i, n) in self.nodes.iter().enumerate() {
            for (path, body) in &n.delivered {
                let orig = &self
                    .site
                    .files
                    .iter()
                    .find(|(p, _)| p == path)
                    .expect("listed")
                    .1;
                assert!(body == orig, "node {i} got wrong bytes for {path}");
            }
        }
    }
}

fn parse_sdp(s: &str) -> (usize, ConnId) {
    let (n, c) = s.split_once(':').expect("harness sdp");
    (n.parse().expect("node"), ConnId(c.parse().expect("conn")))
}
