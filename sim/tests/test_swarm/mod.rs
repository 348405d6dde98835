//! A test driver on the simulator's in-memory network
//! ([`peerhost_sim::net`]): a handful of real `Client`s that are honest or
//! misbehave in a chosen way, an origin serving [`TestSite::files`] as they
//! are when asked, hash and signature jobs answered a millisecond later (as
//! a browser would), and a bounded drive loop that fails on livelock. Same
//! seed, same run.
//!
//! Frames go through the wire codec ([`NetConfig::wire_codec`]), so the
//! clients' decoders run too. The network's tracker is a test double of
//! the WebTorrent relay (the real one is tested in `tracker/` over real
//! sockets); everything else that runs is the real core.

#![allow(dead_code)] // each test file uses a part

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use peerhost_core::client::{
    Client, ClientConfig, Event, HashJob, Input, ManifestSource, Misbehaviour, OriginError, Output,
    SignatureJob, Ticket,
};
use peerhost_core::manifest::{Asset, Manifest, SignedManifest, SiteSecret, verify_signature};
use peerhost_core::piece::Digest;
use peerhost_core::rng::Rng;
use peerhost_core::scheduler::ConnId;
use peerhost_core::time::{Instant, UnixTime};
use peerhost_core::wire::Frame;
use peerhost_sim::net::{self, Access, Net, NetConfig, Step};

/// Wall-clock time at virtual time zero (manifests are valid around it).
pub const WALL_START: u64 = 1_800_000_000;

/// A site made for a test: its files and signed manifest.
pub struct TestSite {
    pub secret: SiteSecret,
    pub files: Vec<(String, Vec<u8>)>,
    pub signed: SignedManifest,
}

impl TestSite {
    /// Files of the given sizes with seeded random content.
    pub fn generate(seed: u64, sizes: &[usize], version: u64) -> TestSite {
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
        TestSite {
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
    /// At this instant, every connection breaks (peers see closes; the
    /// node itself is not told).
    LeavesAt(Instant),
}

/// One client and what happened to it.
pub struct TestNode {
    pub client: Client,
    pub behaviour: Behaviour,
    pub delivered: BTreeMap<String, Vec<u8>>,
    pub tickets: BTreeMap<Ticket, String>,
    /// Tickets handed out so far (the next one's number).
    pub tickets_issued: u64,
    pub failed: Vec<String>,
    pub banned: Vec<(ConnId, Misbehaviour)>,
    pub finished_at: Option<Instant>,
    pub started_at: Instant,
}

impl TestNode {
    /// The page asks for `path`: a new ticket, remembered until answered.
    fn want(&mut self, now: Instant, path: &str) {
        let ticket = Ticket(self.tickets_issued);
        self.tickets_issued += 1;
        self.client.handle_input(
            now,
            Input::Want {
                ticket,
                path: path.to_owned(),
            },
        );
        self.tickets.insert(ticket, path.to_owned());
    }
}

/// The driver's own events.
#[derive(Debug)]
pub enum Local {
    Hash(u32, HashJob, Digest),
    Signature(u32, SignatureJob, bool),
    Behave(u32),
}

/// The swarm: nodes, the network, the site the origin serves.
pub struct TestSwarm {
    net: Net<Local>,
    pub nodes: Vec<TestNode>,
    /// What the origin serves (a test may change it: a new version).
    pub site: TestSite,
    pub origin_requests: u64,
    /// The origin answers 503.
    pub origin_down: bool,
}

/// The tests' network: 15 ms to the tracker, an origin of ~1 MB/s 40 ms
/// away, no loss, no NAT failure.
pub fn net_config() -> NetConfig {
    NetConfig {
        tracker_latency: Duration::from_millis(15),
        loss: 0.0,
        nat_failure: 0.0,
        origin_latency: Duration::from_millis(40),
        origin_bytes_per_s: 1_000_000,
        wire_codec: true,
    }
}

impl TestSwarm {
    pub fn new(seed: u64, site: TestSite) -> TestSwarm {
        Self::with_config(seed, site, net_config())
    }

    pub fn with_config(seed: u64, site: TestSite, config: NetConfig) -> TestSwarm {
        TestSwarm {
            net: Net::new(config, Rng::new(seed)),
            nodes: Vec::new(),
            site,
            origin_requests: 0,
            origin_down: false,
        }
    }

    pub fn now(&self) -> Instant {
        self.net.now()
    }

    /// Bytes the origin served.
    pub fn origin_bytes(&self) -> u64 {
        self.net.origin_bytes()
    }

    /// The manifest the tracker gives subscribers holding an older one.
    pub fn set_tracker_manifest(&mut self, signed: SignedManifest) {
        self.net.set_tracker_manifest(Some(signed));
    }

    fn wall(&self) -> UnixTime {
        UnixTime(WALL_START + self.now().as_millis() / 1000)
    }

    /// Adds a node now: it has the manifest (as from the origin), is
    /// connected to the tracker, and — if `seed_all` — holds every file
    /// already; otherwise it wants every asset. Its uplink carries ~2 MB/s,
    /// its downlink is not a bottleneck, its latency to any other node is
    /// 10–50 ms.
    pub fn add_node(
        &mut self,
        config: ClientConfig,
        behaviour: Behaviour,
        seed_all: bool,
    ) -> usize {
        let now = self.now();
        let latency_ms = 5 + self.net.rng().below(21);
        let idx = self.net.add_node(Access {
            up_bytes_per_s: 2_000_000,
            down_bytes_per_s: u64::MAX,
            latency_ms,
        });
        let seed = self.net.rng().next_u64();
        let mut client = Client::new(config, self.site.secret.site_key(), 0, seed, now);
        client.handle_input(
            now,
            Input::Manifest {
                manifest: Box::new(self.site.signed.clone()),
                source: ManifestSource::Origin,
                wall: self.wall(),
            },
        );
        // Deferred signature check: answered at once, so the node starts
        // with its manifest. Nothing else is pending yet: no tracker, no
        // page, no peer.
        let pending: Vec<Output> = std::iter::from_fn(|| client.poll_output()).collect();
        for out in pending {
            if let Output::VerifySignature {
                job,
                site_key,
                message,
                signature,
            } = out
            {
                let valid = verify_signature(&site_key, &message, &signature);
                client.handle_input(now, Input::SignatureChecked { job, valid });
            }
        }
        assert!(client.manifest().is_some(), "manifest accepted");
        let mut node = TestNode {
            client,
            behaviour,
            delivered: BTreeMap::new(),
            tickets: BTreeMap::new(),
            tickets_issued: 0,
            failed: Vec::new(),
            banned: Vec::new(),
            finished_at: None,
            started_at: now,
        };
        if seed_all {
            for (path, data) in &self.site.files {
                node.client.handle_input(
                    now,
                    Input::AssetHeld {
                        path: path.to_string(),
                        bytes: Bytes::copy_from_slice(data),
                    },
                );
                node.delivered.insert(path.clone(), data.clone());
            }
            node.finished_at = Some(now);
        }
        node.client.handle_input(now, Input::TrackerConnected);
        if !seed_all {
            for (path, _) in &self.site.files {
                node.want(now, path);
            }
        }
        self.nodes.push(node);
        match behaviour {
            Behaviour::SilentFrom(t) | Behaviour::LeavesAt(t) => {
                self.net.schedule(t, Local::Behave(idx));
            }
            _ => {}
        }
        self.flush();
        idx as usize
    }

    /// Hands `node` a manifest as if fetched from the origin.
    pub fn give_manifest(&mut self, node: usize, signed: &SignedManifest) {
        let (now, wall) = (self.now(), self.wall());
        self.nodes[node].client.handle_input(
            now,
            Input::Manifest {
                manifest: Box::new(signed.clone()),
                source: ManifestSource::Origin,
                wall,
            },
        );
        self.flush();
    }

    fn silent(&self, node: u32) -> bool {
        matches!(self.nodes[node as usize].behaviour, Behaviour::SilentFrom(t) if self.now() >= t)
    }

    /// Drains every node's outputs.
    fn flush(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(out) = self.nodes[i].client.poll_output() {
                self.route(i as u32, out);
            }
        }
    }

    fn route(&mut self, i: u32, out: Output) {
        let now = self.now();
        if std::env::var_os("SWARM_TRACE").is_some() {
            let mut line = format!("{out:?}");
            line.truncate(160);
            eprintln!("{:>6} n{i} {line}", now.as_millis());
        }
        let out = match out {
            Output::SendPeer { conn, frame } => return self.send_peer(i, conn, frame),
            out => out,
        };
        let Some(out) = self.net.route(i, out) else {
            return;
        };
        let ms = Duration::from_millis(1);
        match out {
            Output::FetchOrigin {
                request,
                path,
                range,
            } => {
                self.origin_requests += 1;
                let answer = if self.origin_down {
                    Err(OriginError("503".into()))
                } else {
                    let data = &self
                        .site
                        .files
                        .iter()
                        .find(|(p, _)| *p == path)
                        .expect("listed")
                        .1;
                    Ok(Bytes::copy_from_slice(
                        &data[range.start as usize..range.end as usize],
                    ))
                };
                self.net.fetch_origin(i, request, answer);
            }
            Output::Deliver {
                ticket, path, body, ..
            } => {
                let node = &mut self.nodes[i as usize];
                node.tickets.remove(&ticket);
                node.delivered.insert(path, body.to_vec());
                if node.tickets.is_empty() && node.finished_at.is_none() {
                    node.finished_at = Some(now);
                }
            }
            Output::Failed { ticket, error } => {
                let node = &mut self.nodes[i as usize];
                node.tickets.remove(&ticket);
                node.failed.push(error.to_string());
            }
            Output::Event(Event::PeerBanned { conn, reason, .. }) => {
                self.nodes[i as usize].banned.push((conn, reason));
            }
            // Deferred hashing: answered a millisecond later, as a browser's
            // crypto.subtle.digest would be.
            Output::HashPiece { job, data } => {
                self.net
                    .schedule(now + ms, Local::Hash(i, job, Digest::of(&data)));
            }
            // Deferred signature checks: answered a millisecond later, as
            // WebCrypto's would be.
            Output::VerifySignature {
                job,
                site_key,
                message,
                signature,
            } => {
                let valid = verify_signature(&site_key, &message, &signature);
                self.net.schedule(now + ms, Local::Signature(i, job, valid));
            }
            _ => {}
        }
    }

    fn send_peer(&mut self, i: u32, conn: ConnId, frame: Frame) {
        if self.silent(i) {
            return;
        }
        let frame = match frame {
            Frame::Piece { piece, data }
                if self.nodes[i as usize].behaviour == Behaviour::CorruptPieces =>
            {
                let mut bad = data.to_vec();
                let last = bad.len() - 1;
                bad[last] ^= 0x5a;
                Frame::Piece {
                    piece,
                    data: bad.into(),
                }
            }
            f => f,
        };
        self.net.send(i, conn, frame);
    }

    fn handle(&mut self, step: Step<Local>) {
        let (i, input) = match step {
            Step::Client(i, input) => {
                let frame = matches!(input, Input::PeerFrame { .. } | Input::PeerData { .. });
                if frame && self.silent(i) {
                    return;
                }
                (i, input)
            }
            Step::Driver(Local::Hash(i, job, digest)) => (i, Input::PieceHashed { job, digest }),
            Step::Driver(Local::Signature(i, job, valid)) => {
                (i, Input::SignatureChecked { job, valid })
            }
            Step::Driver(Local::Behave(i)) => {
                if let Behaviour::LeavesAt(_) = self.nodes[i as usize].behaviour {
                    self.net.cut_links(i);
                }
                return;
            }
        };
        let now = self.now();
        self.nodes[i as usize].client.handle_input(now, input);
    }

    /// Runs until `done` holds or virtual time passes `limit`. Panics if the
    /// loop spins without time moving (a livelock in the core).
    pub fn run_until(&mut self, limit: Duration, done: impl Fn(&TestSwarm) -> bool) -> bool {
        let deadline = self.now() + limit;
        let mut spins_at_same_time = 0;
        for _ in 0..5_000_000 {
            self.flush();
            if done(self) {
                return true;
            }
            let next_ev = self.net.next_instant();
            let next_timer = self
                .nodes
                .iter()
                .filter_map(|n| n.client.poll_timeout())
                .min();
            let Some(next) = [next_ev, next_timer].into_iter().flatten().min() else {
                return false;
            };
            if next > deadline {
                self.net.advance_to(deadline);
                return done(self);
            }
            if next <= self.now() {
                spins_at_same_time += 1;
                assert!(spins_at_same_time < 100_000, "livelock at {:?}", self.now());
            } else {
                spins_at_same_time = 0;
            }
            if next_ev == Some(next) {
                self.net.begin();
                while let Some(step) = self.net.pop() {
                    self.handle(step);
                    self.flush();
                }
            } else {
                self.net.advance_to(next);
            }
            let now = self.now();
            for n in &mut self.nodes {
                if n.client.poll_timeout().is_some_and(|t| t <= now) {
                    n.client.handle_input(now, Input::Timeout);
                }
            }
        }
        panic!("drive loop did not settle");
    }

    /// The tracker pushes `signed` to every node now (a `peerhost push`).
    pub fn push_to_all(&mut self, signed: &SignedManifest) {
        for i in 0..self.nodes.len() {
            self.net.tracker_send(i as u32, net::manifest_push(signed));
        }
    }

    /// The page of `node` asks for `path` now.
    pub fn want(&mut self, node: usize, path: &str) {
        let now = self.now();
        self.nodes[node].want(now, path);
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
