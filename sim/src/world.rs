//! The simulated world: a virtual clock, an event calendar, the network
//! model, the tracker model, the origin, and one real
//! [`peerhost_core::client::Client`] per peer.
//!
//! Everything random is drawn from one seeded [`Rng`] in event order, and
//! events at the same millisecond run in the order they were scheduled, so
//! the same scenario and seed give the same run, byte for byte.
//!
//! # Network model
//! - Each peer has an access tier (down/up bandwidth) and a one-way access
//!   latency; a link's latency is the sum of both ends'.
//! - A message occupies the sender's uplink, then the receiver's downlink
//!   (each a FIFO pipe), then arrives after the link latency. With
//!   probability `loss` it is lost once and retransmitted one timeout
//!   later; a channel is ordered, so nothing overtakes it.
//! - A connection fails to open with probability `nat_failure`; both ends
//!   get a close 10 s later (ICE failure).
//! - The origin is one FIFO pipe of `up_mbps`; it counts what it serves.
//!
//! # Scale
//! Frames travel as [`Frame`] values ([`Client::handle_peer_message`]), so
//! a piece's bytes are one shared buffer however many peers pass it on.
//! Clients run with deferred hashing: the world answers each hash job
//! itself, from a memo keyed by buffer identity for buffers it has already
//! hashed and found to be a piece of the site (the memo holds a reference,
//! so an address is never reused while it is a key), and with a real
//! SHA-256 for anything else — a hostile peer's altered copy is a new
//! buffer, so it is always hashed for real and refused by the client.
//! Delivered assets are compared with the published bytes the same way:
//! a buffer already compared for that piece is not compared again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use peerhost_core::client::{
    Body, Client, ClientConfig, Event, HashJob, Input, ManifestSource, OriginError, Output,
    Ticket,
};
use peerhost_core::manifest::verify_signature;
use peerhost_core::piece::{Digest, PieceMap};
use peerhost_core::rng::Rng;
use peerhost_core::scheduler::{ConnId, RequestId};
use peerhost_core::signal::{
    AnnounceEvent, ClientMessage, InfoHash, PeerId, RelayedAnswer, RelayedOffer, Sdp, ServerMessage,
};
use peerhost_core::time::{Instant, UnixTime};
use peerhost_core::upload::UploadLimits;
use peerhost_core::wire::{Frame, manifest_offer_frames};

use crate::report::{NodeOutcome, Series};
use crate::scenario::{Arrival, Scenario};
use crate::site::{SimSite, WALL_START};

/// Bytes a data-channel message costs on the wire beyond its payload
/// (SCTP, DTLS, UDP and IP headers).
const MESSAGE_OVERHEAD: u64 = 48;
/// Retransmission timeout after a loss, at least.
const MIN_RTO_MS: u64 = 200;
/// ICE gives up on a connection that cannot be made after this long.
const ICE_FAILURE_MS: u64 = 10_000;
/// A local SDP (offer or answer) takes this long to create.
const SDP_MS: u64 = 2;

/// What kind of peer a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A visitor who wants the whole site.
    Visitor,
    /// A visitor who holds the site from an earlier visit.
    Returning,
    /// Holds the site; flips a byte in every piece it sends.
    Corrupt,
    /// Claims every piece, then never sends anything after its handshake.
    Silent,
    /// Offers an old, validly signed manifest as if it were newer.
    Replay,
}

impl Role {
    /// Whether the peer is hostile.
    pub fn hostile(self) -> bool {
        matches!(self, Role::Corrupt | Role::Silent | Role::Replay)
    }
}

#[derive(Debug)]
struct Link {
    conn: ConnId,
    peer: u32,
    peer_conn: ConnId,
    /// Latest arrival scheduled on this channel, in microseconds (ordering).
    last_arrival_us: u64,
    nat_fails: bool,
}

#[derive(Debug)]
struct Node {
    role: Role,
    client: Option<Client>,
    arrive: Instant,
    /// Leaves at this time unless done (churn).
    quit: Option<Instant>,
    stay_ms: u64,
    up_bytes_per_s: u64,
    down_bytes_per_s: u64,
    access_ms: u64,
    up_free_us: u64,
    down_free_us: u64,
    links: Vec<Link>,
    timer: Option<Instant>,
    gone: bool,
    tickets_left: u32,
    /// The next ticket this visitor's page hands its client.
    tickets_issued: u64,
    failed: u32,
    finished: Option<Instant>,
    version: u64,
    /// Update deliveries waited for: ticket → publication time.
    update_waits: BTreeMap<u64, Instant>,
    outcome: NodeOutcome,
}

#[derive(Debug)]
enum Ev {
    Arrive(u32),
    TrackerUp(u32),
    ToTracker(u32, ClientMessage),
    FromTracker(u32, ServerMessage),
    LocalSdp(u32, ConnId, Sdp),
    Open(u32, ConnId),
    Frame(u32, ConnId, Frame),
    Closed(u32, ConnId),
    /// An origin answer: (version index, file index, byte range), sliced
    /// only when it arrives, so a long origin queue holds no bytes.
    Origin(
        u32,
        RequestId,
        Result<(usize, usize, std::ops::Range<usize>), OriginError>,
    ),
    Timer(u32),
    Leave(u32),
    Publish(usize),
}

#[derive(Debug, Default)]
struct Swarm {
    members: Vec<u32>,
    pos: HashMap<u32, usize>,
}

impl Swarm {
    fn insert(&mut self, node: u32) {
        if !self.pos.contains_key(&node) {
            self.pos.insert(node, self.members.len());
            self.members.push(node);
        }
    }
    fn remove(&mut self, node: u32) {
        if let Some(i) = self.pos.remove(&node) {
            self.members.swap_remove(i);
            if let Some(&moved) = self.members.get(i) {
                self.pos.insert(moved, i);
            }
        }
    }
}

/// Figures that say how hard the simulator worked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Work {
    /// Events processed.
    pub events: u64,
    /// Virtual milliseconds simulated.
    pub virtual_ms: u64,
    /// Hash jobs answered with a real SHA-256.
    pub hashes_computed: u64,
    /// Hash jobs answered from the memo.
    pub hashes_memoized: u64,
}

/// Buffer identity: address and length of a live shared buffer.
type BufKey = (usize, usize);

fn buf_key(b: &Bytes) -> BufKey {
    (b.as_ptr() as usize, b.len())
}

/// A progress report, given to the caller's callback now and then.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Virtual time, milliseconds.
    pub now_ms: u64,
    /// Visitors finished (delivered or failed) or gone.
    pub settled: u64,
    /// Visitors in all.
    pub visitors: u64,
    /// Events processed so far.
    pub events: u64,
}

/// One run of a scenario.
pub struct World {
    scenario: Scenario,
    site: SimSite,
    rng: Rng,
    now: Instant,
    calendar: BTreeMap<u64, Vec<Ev>>,
    nodes: Vec<Node>,
    swarms: BTreeMap<InfoHash, Swarm>,
    peer_ids: HashMap<PeerId, u32>,
    live: usize,
    origin_free_us: u64,
    origin_bytes: u64,
    config: ClientConfig,
    /// Every piece hash of every version (what an honest buffer hashes to).
    piece_hashes: HashSet<Digest>,
    /// Honest buffers already hashed, kept alive while they are keys.
    hash_memo: HashMap<BufKey, (Bytes, Digest)>,
    /// Buffers already found equal to the published piece (per version and
    /// piece), kept alive while they are keys.
    checked: HashMap<(BufKey, u64, u32), Bytes>,
    /// Piece maps per version.
    maps: Vec<(u64, PieceMap)>,
    series: Series,
    visitors: u64,
    settled: u64,
    work: Work,
}

impl World {
    /// Sets up a run: the site, every node with its arrival, tier and role.
    pub fn new(scenario: &Scenario, seed: u64) -> World {
        let site = SimSite::generate(scenario, seed);
        let mut rng = Rng::new(seed);
        let mut config = ClientConfig {
            deferred_hashing: true,
            ..ClientConfig::default()
        };
        if let Some(m) = scenario.client.max_peers {
            config.max_peers = m;
        }
        if let Some(rate) = scenario.client.upload_bytes_per_sec {
            config.upload = UploadLimits {
                bytes_per_sec: Some(rate),
                ..UploadLimits::default()
            };
        }
        let count = scenario.peers.count;
        let hostile = (f64::from(count) * scenario.hostile.fraction).round() as u32;
        let mut roles: Vec<Role> = Vec::new();
        roles.extend((0..scenario.peers.returning).map(|_| Role::Returning));
        roles.extend((0..count).map(|_| Role::Visitor));
        let h = &scenario.hostile;
        let weights = h.corrupt + h.silent + h.replay;
        for _ in 0..hostile {
            let x = rng.unit() * weights;
            roles.push(if x < h.corrupt {
                Role::Corrupt
            } else if x < h.corrupt + h.silent {
                Role::Silent
            } else {
                Role::Replay
            });
        }
        let mut steady_t = 0.0f64;
        let mut nodes = Vec::with_capacity(roles.len());
        let bucket_ms = scenario.bucket_ms;
        let max_ms = (scenario.max_secs * 1000.0) as u64;
        for role in roles {
            let arrive_ms = match (role, &scenario.peers.arrival) {
                (Role::Returning, _) => 0.0,
                (_, Arrival::Burst) => 0.0,
                (_, Arrival::Flash { over_secs }) => rng.unit() * over_secs * 1000.0,
                (_, Arrival::Steady { per_sec }) => {
                    // Exponential gaps: a Poisson stream.
                    steady_t += -(1.0 - rng.unit()).ln() / per_sec * 1000.0;
                    steady_t
                }
            };
            let arrive = Instant(arrive_ms as u64);
            let tier = pick_tier(&mut rng, scenario);
            let [lo, hi] = scenario.network.latency_ms;
            let access_ms = lo + rng.below(hi - lo + 1);
            let quit = (role == Role::Visitor && rng.unit() < scenario.churn.fraction).then(|| {
                let [a, b] = scenario.churn.after_secs;
                arrive + Duration::from_secs_f64(a + rng.unit() * (b - a))
            });
            let [a, b] = scenario.peers.stay_secs;
            let stay_ms = ((a + rng.unit() * (b - a)) * 1000.0) as u64;
            nodes.push(Node {
                role,
                client: None,
                arrive,
                quit,
                stay_ms,
                up_bytes_per_s: (tier.1 * 1e6 / 8.0) as u64,
                down_bytes_per_s: (tier.0 * 1e6 / 8.0) as u64,
                access_ms,
                up_free_us: 0,
                down_free_us: 0,
                links: Vec::new(),
                timer: None,
                gone: false,
                tickets_left: 0,
                tickets_issued: 0,
                failed: 0,
                finished: None,
                version: 0,
                update_waits: BTreeMap::new(),
                outcome: NodeOutcome::default(),
            });
        }
        let visitors = nodes.iter().filter(|n| n.role == Role::Visitor).count() as u64;
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
        let mut world = World {
            scenario: scenario.clone(),
            site,
            rng,
            now: Instant::ZERO,
            calendar: BTreeMap::new(),
            nodes,
            swarms: BTreeMap::new(),
            peer_ids: HashMap::new(),
            live: 0,
            origin_free_us: 0,
            origin_bytes: 0,
            config,
            piece_hashes,
            hash_memo: HashMap::new(),
            checked: HashMap::new(),
            maps,
            series: Series::new(bucket_ms, max_ms),
            visitors,
            settled: 0,
            work: Work::default(),
        };
        for i in 0..world.nodes.len() {
            let at = world.nodes[i].arrive;
            world.push(at, Ev::Arrive(i as u32));
        }
        for k in 1..world.site.versions.len() {
            let at = Instant((scenario.updates.every_secs * 1000.0 * k as f64) as u64);
            world.push(at, Ev::Publish(k));
        }
        world
    }

    /// The site being served.
    pub fn site(&self) -> &SimSite {
        &self.site
    }

    fn push(&mut self, at: Instant, ev: Ev) {
        let at = at.max(self.now);
        self.calendar.entry(at.0).or_default().push(ev);
    }

    fn wall(&self) -> UnixTime {
        UnixTime(WALL_START.0 + self.now.as_millis() / 1000)
    }

    /// Runs to the end: every visitor settled, or `max_secs` of virtual
    /// time. Calls `progress` about every 100 000 events.
    pub fn run(&mut self, progress: &mut dyn FnMut(Progress)) {
        let end = Instant((self.scenario.max_secs * 1000.0) as u64);
        while let Some(entry) = self.calendar.first_entry() {
            let t = Instant(*entry.key());
            if t > end || self.settled >= self.visitors {
                break;
            }
            let evs = entry.remove();
            self.now = t;
            for ev in evs {
                self.work.events += 1;
                if self.work.events.is_multiple_of(100_000) {
                    progress(self.progress());
                }
                self.handle(ev);
            }
        }
        self.work.virtual_ms = self.now.as_millis();
        // Whoever is still online: record what they did.
        for i in 0..self.nodes.len() {
            self.record(i as u32);
        }
        progress(self.progress());
    }

    fn progress(&self) -> Progress {
        Progress {
            now_ms: self.now.as_millis(),
            settled: self.settled,
            visitors: self.visitors,
            events: self.work.events,
        }
    }

    /// What the run did.
    pub fn work(&self) -> &Work {
        &self.work
    }

    /// Every node's outcome and role.
    pub fn outcomes(&self) -> Vec<(Role, &NodeOutcome)> {
        self.nodes.iter().map(|n| (n.role, &n.outcome)).collect()
    }

    /// The time series.
    pub fn series(&self) -> &Series {
        &self.series
    }

    /// Bytes the origin served.
    pub fn origin_bytes(&self) -> u64 {
        self.origin_bytes
    }

    /// Every visitor's upload and download bandwidth (bytes/s), for the
    /// Kumar–Ross bound.
    pub fn visitor_links(&self) -> Vec<(u64, u64)> {
        let cap = self.config.upload.bytes_per_sec.unwrap_or(u64::MAX);
        self.nodes
            .iter()
            .filter(|n| n.role == Role::Visitor)
            .map(|n| (n.up_bytes_per_s.min(cap), n.down_bytes_per_s))
            .collect()
    }

    fn handle(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Arrive(i) => self.arrive(i),
            Ev::TrackerUp(i) => {
                if let Some(c) = self.client(i) {
                    c.handle_input(now, Input::TrackerConnected);
                    self.after_input(i);
                }
            }
            Ev::ToTracker(i, msg) => self.tracker(i, msg),
            Ev::FromTracker(i, msg) => {
                if let Some(c) = self.client(i) {
                    c.handle_input(now, Input::Tracker(msg));
                    self.after_input(i);
                }
            }
            Ev::LocalSdp(i, conn, sdp) => {
                if let Some(c) = self.client(i) {
                    c.handle_input(now, Input::LocalSdp { conn, sdp });
                    self.after_input(i);
                }
            }
            Ev::Open(i, conn) => {
                if self.link(i, conn).is_some()
                    && let Some(c) = self.client(i)
                {
                    c.handle_input(now, Input::PeerOpen { conn });
                    self.after_input(i);
                }
            }
            Ev::Frame(i, conn, frame) => {
                if self.link(i, conn).is_some() {
                    if let Frame::Piece { data, .. } = &frame {
                        self.series.peer_bytes(now, data.len() as u64);
                    }
                    let silent = self.nodes[i as usize].role == Role::Silent;
                    if !silent && let Some(c) = self.client(i) {
                        c.handle_input(now, Input::PeerFrame { conn, frame });
                        self.after_input(i);
                    }
                }
            }
            Ev::Closed(i, conn) => {
                let n = &mut self.nodes[i as usize];
                n.links.retain(|l| l.conn != conn);
                if let Some(c) = self.client(i) {
                    c.handle_input(now, Input::PeerClosed { conn });
                    self.after_input(i);
                }
            }
            Ev::Origin(i, request, result) => {
                let result = result.map(|(v, f, r)| Bytes::copy_from_slice(&self.site.versions[v].files[f].1[r]));
                if let Some(c) = self.client(i) {
                    c.handle_input(now, Input::Origin { request, result });
                    self.after_input(i);
                }
            }
            Ev::Timer(i) => {
                let n = &mut self.nodes[i as usize];
                if n.timer != Some(now) {
                    return;
                }
                n.timer = None;
                if let Some(c) = self.client(i) {
                    if c.poll_timeout().is_some_and(|t| t <= now) {
                        c.handle_input(now, Input::Timeout);
                    }
                    self.after_input(i);
                }
            }
            Ev::Leave(i) => self.leave(i),
            Ev::Publish(k) => self.publish(k),
        }
    }

    fn client(&mut self, i: u32) -> Option<&mut Client> {
        let n = &mut self.nodes[i as usize];
        if n.gone { None } else { n.client.as_mut() }
    }

    fn link(&self, i: u32, conn: ConnId) -> Option<&Link> {
        self.nodes[i as usize].links.iter().find(|l| l.conn == conn)
    }

    fn arrive(&mut self, i: u32) {
        let now = self.now;
        let seed = self.rng.next_u64();
        let version = &self.site.versions[self.published_version()];
        let signed = version.signed.clone();
        let paths: Vec<String> = version.files.iter().map(|(p, _)| p.clone()).collect();
        let files: Vec<(String, Vec<u8>)> = match self.nodes[i as usize].role {
            Role::Visitor | Role::Replay => Vec::new(),
            _ => version.files.clone(),
        };
        let mut client = Client::new(
            self.config.clone(),
            self.site.secret.site_key(),
            0,
            seed,
            now,
        );
        let wall = self.wall();
        client.handle_input(
            now,
            Input::Manifest {
                manifest: signed.clone(),
                source: ManifestSource::Origin,
                wall,
            },
        );
        assert!(
            client.manifest().is_some(),
            "the simulated manifest is valid"
        );
        for (path, data) in files {
            client.handle_input(
                now,
                Input::AssetHeld {
                    path,
                    bytes: Bytes::from(data),
                },
            );
        }
        self.peer_ids.insert(client.peer_id(), i);
        let node = &mut self.nodes[i as usize];
        node.version = signed.manifest().version;
        if node.role == Role::Visitor {
            self.series.arrived(now);
            for path in paths {
                let ticket = Ticket(node.tickets_issued);
                node.tickets_issued += 1;
                client.handle_input(now, Input::Want { ticket, path });
                node.tickets_left += 1;
            }
            if let Some(q) = node.quit {
                self.push(q, Ev::Leave(i));
            }
        }
        self.nodes[i as usize].client = Some(client);
        self.live += 1;
        let at = now + Duration::from_millis(self.scenario.tracker.latency_ms * 2);
        self.push(at, Ev::TrackerUp(i));
        self.after_input(i);
    }

    /// Index of the version the origin serves now.
    fn published_version(&self) -> usize {
        if self.scenario.updates.count == 0 {
            return 0;
        }
        let every = (self.scenario.updates.every_secs * 1000.0) as u64;
        ((self.now.as_millis() / every.max(1)) as usize).min(self.site.versions.len() - 1)
    }

    /// Drains a node's outputs and re-arms its timer.
    fn after_input(&mut self, i: u32) {
        while let Some(out) = self
            .nodes
            .get_mut(i as usize)
            .and_then(|n| n.client.as_mut())
            .and_then(Client::poll_output)
        {
            self.route(i, out);
        }
        let now = self.now;
        let n = &mut self.nodes[i as usize];
        let Some(c) = &n.client else { return };
        if n.gone {
            return;
        }
        if let Some(t) = c.poll_timeout() {
            // A deadline already past fires in the next millisecond, never
            // in this one again (no spinning at one instant).
            let t = t.max(now + Duration::from_millis(1));
            if n.timer.is_none_or(|s| t < s) {
                n.timer = Some(t);
                self.push(t, Ev::Timer(i));
            }
        }
    }

    fn route(&mut self, i: u32, out: Output) {
        let now = self.now;
        let tracker = Duration::from_millis(self.scenario.tracker.latency_ms);
        match out {
            Output::Tracker(msg) => self.push(now + tracker, Ev::ToTracker(i, msg)),
            Output::CreateOffer { conn } => {
                let sdp = Sdp::offer(format!("{i}:{}", conn.0));
                self.push(
                    now + Duration::from_millis(SDP_MS),
                    Ev::LocalSdp(i, conn, sdp),
                );
            }
            Output::AcceptOffer { conn, offer } => {
                let Some((n, c)) = parse_sdp(&offer.sdp) else {
                    return;
                };
                let nat_fails = self.rng.unit() < self.scenario.network.nat_failure;
                self.add_link(i, conn, n, c, nat_fails);
                self.add_link(n, c, i, conn, nat_fails);
                let sdp = Sdp::answer(format!("{i}:{}", conn.0));
                self.push(
                    now + Duration::from_millis(SDP_MS),
                    Ev::LocalSdp(i, conn, sdp),
                );
            }
            Output::ApplyAnswer { conn, answer } => {
                let Some((n, c)) = parse_sdp(&answer.sdp) else {
                    return;
                };
                let Some(link) = self.link(i, conn) else {
                    return;
                };
                if link.peer != n || link.peer_conn != c {
                    return;
                }
                if link.nat_fails {
                    let at = now + Duration::from_millis(ICE_FAILURE_MS);
                    self.push(at, Ev::Closed(i, conn));
                    self.push(at, Ev::Closed(n, c));
                } else {
                    // ICE, DTLS and SCTP handshakes: about two round trips.
                    let rtt = 2 * self.latency_ms(i, n);
                    let at = now + Duration::from_millis(2 * rtt);
                    self.push(at, Ev::Open(i, conn));
                    self.push(at, Ev::Open(n, c));
                }
            }
            Output::SendPeer { conn, frame } => self.send_peer(i, conn, frame),
            Output::HashPiece { job, data } => self.hash_job(i, job, &data),
            // Only if a scenario defers signature checks: answered at once.
            Output::VerifySignature {
                job,
                site_key,
                message,
                signature,
            } => {
                let valid = verify_signature(&site_key, &message, &signature);
                if let Some(c) = self.client(i) {
                    c.handle_input(now, Input::SignatureChecked { job, valid });
                }
            }
            Output::ClosePeer { conn, .. } => {
                let node = &mut self.nodes[i as usize];
                let Some(pos) = node.links.iter().position(|l| l.conn == conn) else {
                    return;
                };
                let link = node.links.swap_remove(pos);
                let (n, c) = (link.peer, link.peer_conn);
                let had = {
                    let peer = &mut self.nodes[n as usize];
                    let before = peer.links.len();
                    peer.links.retain(|l| l.conn != c);
                    peer.links.len() < before
                };
                if had {
                    let at = now + Duration::from_millis(self.latency_ms(i, n));
                    self.push(at, Ev::Closed(n, c));
                }
            }
            Output::FetchOrigin {
                request,
                path,
                range,
            } => self.fetch_origin(i, request, &path, range),
            Output::Deliver {
                ticket,
                path,
                body,
                version,
                ..
            } => self.delivered(i, ticket.0, &path, &body, version),
            Output::Failed { ticket, .. } => {
                let n = &mut self.nodes[i as usize];
                if n.update_waits.remove(&ticket.0).is_none() {
                    n.failed += 1;
                    self.ticket_done(i);
                }
            }
            Output::Event(Event::PeerBanned { .. }) => {}
            Output::Event(Event::ManifestAccepted { version, source }) => {
                self.nodes[i as usize].version = version;
                if source == ManifestSource::Tracker {
                    self.want_update(i);
                }
            }
            Output::Event(_) => {}
        }
    }

    fn add_link(&mut self, i: u32, conn: ConnId, n: u32, c: ConnId, nat_fails: bool) {
        let node = &mut self.nodes[i as usize];
        node.links.retain(|l| l.conn != conn);
        node.links.push(Link {
            conn,
            peer: n,
            peer_conn: c,
            last_arrival_us: 0,
            nat_fails,
        });
    }

    fn latency_ms(&self, a: u32, b: u32) -> u64 {
        self.nodes[a as usize].access_ms + self.nodes[b as usize].access_ms
    }

    fn send_peer(&mut self, i: u32, conn: ConnId, frame: Frame) {
        let role = self.nodes[i as usize].role;
        let is_handshake = matches!(frame, Frame::Handshake { .. });
        let frame = match (role, frame) {
            // A black hole after its handshake, which claims everything.
            (Role::Silent, f @ Frame::Handshake { .. }) => claim_everything(f),
            (Role::Silent, _) => return,
            (Role::Corrupt, Frame::Piece { piece, data }) => {
                // A new buffer: the receiver must really hash it.
                let mut bad = data.to_vec();
                let last = bad.len() - 1;
                bad[last] ^= 0x5a;
                Frame::Piece {
                    piece,
                    data: bad.into(),
                }
            }
            (_, f) => f,
        };
        self.transmit(i, conn, frame);
        if role == Role::Replay && is_handshake && self.link(i, conn).is_some() {
            // Right after its handshake: the stale manifest, claimed newer.
            let v = self.nodes[i as usize].version + 1;
            for f in manifest_offer_frames(v, &self.site.stale.to_bytes()) {
                self.transmit(i, conn, f);
            }
        }
    }

    /// Answers a hash job at once: from the memo for a buffer already
    /// hashed and found honest, else with a real SHA-256.
    fn hash_job(&mut self, i: u32, job: HashJob, data: &Bytes) {
        let key = buf_key(data);
        let digest = match self.hash_memo.get(&key) {
            Some((_, d)) => {
                self.work.hashes_memoized += 1;
                *d
            }
            None => {
                self.work.hashes_computed += 1;
                let d = Digest::of(data);
                if self.piece_hashes.contains(&d) {
                    self.hash_memo.insert(key, (data.clone(), d));
                }
                d
            }
        };
        let now = self.now;
        if let Some(c) = self.client(i) {
            c.handle_input(now, Input::PieceHashed { job, digest });
        }
    }

    fn transmit(&mut self, i: u32, conn: ConnId, frame: Frame) {
        let now_us = self.now.as_millis() * 1000;
        let Some(link) = self.link(i, conn) else {
            return;
        };
        let (n, c) = (link.peer, link.peer_conn);
        let lat_us = self.latency_ms(i, n) * 1000;
        let wire = wire_len(&frame) + MESSAGE_OVERHEAD;
        let sender = &mut self.nodes[i as usize];
        let start = sender.up_free_us.max(now_us);
        sender.up_free_us = start + wire * 1_000_000 / sender.up_bytes_per_s.max(1);
        let at_receiver = sender.up_free_us + lat_us;
        let receiver = &mut self.nodes[n as usize];
        let start = receiver.down_free_us.max(at_receiver);
        receiver.down_free_us = start + wire * 1_000_000 / receiver.down_bytes_per_s.max(1);
        let mut arrive = receiver.down_free_us;
        if self.rng.unit() < self.scenario.network.loss {
            arrive += (2 * lat_us).max(MIN_RTO_MS * 1000);
        }
        let link = self.nodes[i as usize]
            .links
            .iter_mut()
            .find(|l| l.conn == conn)
            .expect("checked");
        arrive = arrive.max(link.last_arrival_us);
        link.last_arrival_us = arrive;
        self.push(Instant(arrive.div_ceil(1000)), Ev::Frame(n, c, frame));
    }

    fn fetch_origin(
        &mut self,
        i: u32,
        request: RequestId,
        path: &str,
        range: std::ops::Range<u64>,
    ) {
        let now = self.now;
        let lat = Duration::from_millis(self.scenario.origin.latency_ms);
        let down = self
            .scenario
            .origin
            .down_from_secs
            .is_some_and(|d| now.as_millis() as f64 >= d * 1000.0);
        if down {
            self.push(
                now + lat * 2,
                Ev::Origin(i, request, Err(OriginError("503".into()))),
            );
            return;
        }
        let v = self.nodes[i as usize].version;
        let range = range.start as usize..range.end as usize;
        let body = self
            .site
            .versions
            .iter()
            .position(|s| s.signed.manifest().version == v)
            .and_then(|vi| {
                let files = &self.site.versions[vi].files;
                let fi = files.iter().position(|(p, _)| p == path)?;
                files[fi].1.get(range.clone())?;
                Some((vi, fi, range))
            });
        let Some(body) = body else {
            self.push(
                now + lat * 2,
                Ev::Origin(i, request, Err(OriginError("404".into()))),
            );
            return;
        };
        let len = body.2.len() as u64;
        let now_us = now.as_millis() * 1000 + lat.as_micros() as u64;
        let rate = (self.scenario.origin.up_mbps * 1e6 / 8.0) as u64;
        let start = self.origin_free_us.max(now_us);
        self.origin_free_us = start + len * 1_000_000 / rate.max(1);
        let node = &mut self.nodes[i as usize];
        let start = node.down_free_us.max(self.origin_free_us);
        node.down_free_us = start + len * 1_000_000 / node.down_bytes_per_s.max(1);
        let at = node.down_free_us + lat.as_micros() as u64;
        self.origin_bytes += len;
        self.series
            .origin_bytes(Instant(self.origin_free_us / 1000), len);
        self.push(Instant(at.div_ceil(1000)), Ev::Origin(i, request, Ok(body)));
    }

    fn delivered(&mut self, i: u32, ticket: u64, path: &str, body: &Body, version: u64) {
        // Against the version the client says it verified the body with:
        // a page load may finish on its version after a newer one arrived.
        let wrong = self.wrong_bytes(version, path, body);
        let now = self.now;
        let n = &mut self.nodes[i as usize];
        n.outcome.corrupt_bytes += wrong;
        if let Some(published) = n.update_waits.remove(&ticket) {
            n.outcome
                .update_delays_ms
                .push(now.saturating_since(published).as_millis() as u64);
            return;
        }
        self.ticket_done(i);
    }

    /// Bytes of a delivered body that differ from the published asset.
    fn wrong_bytes(&mut self, version: u64, path: &str, body: &Body) -> u64 {
        let expected = self
            .site
            .versions
            .iter()
            .find(|s| s.signed.manifest().version == version)
            .and_then(|s| s.files.iter().find(|(p, _)| p == path))
            .map(|(_, d)| d.as_slice());
        let Some(expected) = expected else {
            return body.len() as u64;
        };
        let map = &self
            .maps
            .iter()
            .find(|(v, _)| *v == version)
            .expect("a map per version")
            .1;
        let asset = self.site.versions[0]
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

    fn ticket_done(&mut self, i: u32) {
        let now = self.now;
        let n = &mut self.nodes[i as usize];
        n.tickets_left = n.tickets_left.saturating_sub(1);
        if n.tickets_left > 0 || n.finished.is_some() {
            return;
        }
        n.finished = Some(now);
        n.outcome.completion_ms = Some(now.saturating_since(n.arrive).as_millis() as u64);
        n.outcome.failed = n.failed;
        self.settled += 1;
        self.series.completed(now);
        let at = now + Duration::from_millis(n.stay_ms);
        self.push(at, Ev::Leave(i));
    }

    fn want_update(&mut self, i: u32) {
        let now = self.now;
        let n = &mut self.nodes[i as usize];
        if n.role != Role::Visitor || n.finished.is_none() || n.gone {
            return;
        }
        let path = self.site.versions[0].files[0].0.clone();
        let published = self
            .site
            .versions
            .iter()
            .position(|s| s.signed.manifest().version == n.version)
            .map_or(now, |k| {
                Instant((self.scenario.updates.every_secs * 1000.0 * k as f64) as u64)
            });
        if let Some(c) = n.client.as_mut()
            && c.manifest().is_some_and(|m| m.manifest().asset(&path).is_some())
        {
            let ticket = Ticket(n.tickets_issued);
            n.tickets_issued += 1;
            c.handle_input(now, Input::Want { ticket, path });
            n.update_waits.insert(ticket.0, published);
        }
    }

    fn leave(&mut self, i: u32) {
        let now = self.now;
        let n = &mut self.nodes[i as usize];
        if n.gone || n.client.is_none() {
            return;
        }
        if n.role == Role::Visitor && n.finished.is_none() {
            n.outcome.left_early = true;
            self.settled += 1;
        }
        if let Some(c) = n.client.as_mut() {
            c.handle_input(now, Input::Leave);
        }
        self.after_input(i);
        self.record(i);
        let n = &mut self.nodes[i as usize];
        n.gone = true;
        n.client = None;
        n.links.clear();
        self.live -= 1;
        self.series.left(now);
    }

    /// Copies a node's client figures into its outcome (before it is dropped).
    fn record(&mut self, i: u32) {
        let n = &mut self.nodes[i as usize];
        if let Some(c) = &n.client {
            let s = c.stats();
            n.outcome.from_peers = s.bytes_from_peers;
            n.outcome.from_origin = s.bytes_from_origin;
            n.outcome.uploaded = s.bytes_uploaded;
            n.outcome.pieces_rejected = s.pieces_rejected;
            n.outcome.peers_banned = s.peers_banned;
            n.outcome.request_timeouts = s.request_timeouts;
            n.outcome.origin_reasons = s.origin_reasons;
        }
    }

    fn publish(&mut self, k: usize) {
        let now = self.now;
        let signed = self.site.versions[k].signed.clone();
        let push = ServerMessage::ManifestPush {
            site_key: signed.manifest().site_key,
            version: signed.manifest().version,
            manifest: signed.to_bytes(),
        };
        let at = now + Duration::from_millis(self.scenario.tracker.latency_ms);
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            if !n.gone && n.client.is_some() && n.role == Role::Visitor {
                self.push(at, Ev::FromTracker(i as u32, push.clone()));
            }
        }
    }

    fn tracker(&mut self, from: u32, msg: ClientMessage) {
        let now = self.now;
        let at = now + Duration::from_millis(self.scenario.tracker.latency_ms);
        if self.nodes[from as usize].gone {
            // Its socket closed with it; only a `stopped` still matters.
            if let ClientMessage::Announce(a) = &msg
                && a.event == AnnounceEvent::Stopped
                && let Some(s) = self.swarms.get_mut(&a.info_hash)
            {
                s.remove(from);
            }
            return;
        }
        match msg {
            ClientMessage::Announce(a) => {
                let swarm = self.swarms.entry(a.info_hash).or_default();
                if a.event == AnnounceEvent::Stopped {
                    swarm.remove(from);
                    return;
                }
                swarm.insert(from);
                let count = swarm.members.len() as u64;
                self.push(
                    at,
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
                // Each offer to a distinct random other peer.
                let mut chosen: Vec<u32> = Vec::with_capacity(a.offers.len());
                let members = &self.swarms[&a.info_hash].members;
                let m = members.len() as u64;
                let mut tries = 0;
                while chosen.len() < a.offers.len() && m > 1 && tries < 4 * a.offers.len() {
                    tries += 1;
                    let to = members[self.rng.below(m) as usize];
                    if to != from && !chosen.contains(&to) {
                        chosen.push(to);
                    }
                }
                for (offer, to) in a.offers.into_iter().zip(chosen) {
                    self.push(
                        at,
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
                if let Some(&to) = self.peer_ids.get(&a.to_peer_id) {
                    self.push(
                        at,
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
            _ => {}
        }
    }
}

fn pick_tier(rng: &mut Rng, scenario: &Scenario) -> (f64, f64) {
    let mix = &scenario.network.mix;
    let total: f64 = mix.iter().map(|t| t.share).sum();
    let mut x = rng.unit() * total;
    for t in mix {
        if x < t.share {
            return (t.down_mbps, t.up_mbps);
        }
        x -= t.share;
    }
    let t = mix.last().expect("checked non-empty");
    (t.down_mbps, t.up_mbps)
}

fn parse_sdp(s: &str) -> Option<(u32, ConnId)> {
    let (n, c) = s.split_once(':')?;
    Some((n.parse().ok()?, ConnId(c.parse().ok()?)))
}

/// Bytes a frame takes on the wire.
fn wire_len(frame: &Frame) -> u64 {
    (match frame {
        Frame::Handshake { have, .. } => 55 + have.len(),
        Frame::Piece { data, .. } => 5 + data.len(),
        Frame::ManifestOffer { chunk, .. } => 17 + chunk.len(),
        _ => 5,
    }) as u64
}

/// Rewrites a handshake to claim every piece (what a silent peer lies about).
fn claim_everything(frame: Frame) -> Frame {
    match frame {
        Frame::Handshake {
            site_key,
            version,
            piece_count,
            have,
        } => {
            let mut all = vec![0xffu8; have.len()];
            let spare = (8 - piece_count % 8) % 8;
            if let Some(last) = all.last_mut() {
                *last &= !((1u16 << spare) - 1) as u8;
            }
            Frame::Handshake {
                site_key,
                version,
                piece_count,
                have: all,
            }
        }
        f => f,
    }
}
