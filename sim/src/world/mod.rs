//! The simulated world: a scenario's peers (arrivals, tiers, roles,
//! churn, hostile behaviour), its origin and its published versions, on the
//! in-memory network of [`crate::net`], with one real
//! [`peerhost_core::client::Client`] per peer.
//!
//! Everything random is drawn from one seeded [`Rng`] in event order (the
//! network's draws included), and events at the same millisecond run in
//! the order they were scheduled, so the same scenario and seed give the
//! same run, byte for byte.
//!
//! # Peers
//! - Each peer has an access tier (down/up bandwidth) and a one-way access
//!   latency, drawn from the scenario; the link model is [`crate::net`]'s.
//! - The origin is one FIFO pipe of `up_mbps`; it counts what it serves,
//!   and answers 503 from `down_from_secs` on.
//!
//! # Scale
//! Frames travel as [`Frame`] values ([`Client::handle_peer_message`]), so
//! a piece's bytes are one shared buffer however many peers pass it on.
//! Clients run with deferred hashing: the world answers each hash job
//! itself, from a memo keyed by buffer identity for buffers it has already
//! hashed and found to be a piece of the site, and with a real SHA-256 for
//! anything else — a hostile peer's altered copy is a new buffer, so it is
//! always hashed for real and refused by the client. Delivered assets are
//! compared with the published bytes the same way: a buffer already
//! compared for that piece is not compared again (`checks.rs`).

mod checks;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use peerhost_core::client::{
    Body, Client, ClientConfig, Event, HashJob, Input, ManifestSource, OriginError, Output, Ticket,
};
use peerhost_core::manifest::verify_signature;
use peerhost_core::rng::Rng;
use peerhost_core::scheduler::{ConnId, RequestId};
use peerhost_core::time::{Instant, UnixTime};
use peerhost_core::upload::UploadLimits;
use peerhost_core::wire::{Frame, manifest_offer_frames};

use crate::net::{self, Access, Net, NetConfig, Step};
use crate::report::{NodeOutcome, Series};
use crate::role::Role;
use crate::scenario::{Arrival, Scenario};
use crate::site::{GeneratedSite, WALL_START};
use checks::PieceChecks;

#[derive(Debug)]
struct Node {
    role: Role,
    client: Option<Client>,
    arrive: Instant,
    /// Leaves at this time unless done (churn).
    quit: Option<Instant>,
    stay_ms: u64,
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

/// The world's own events (the network schedules the rest).
#[derive(Debug)]
enum Ev {
    Arrive(u32),
    Timer(u32),
    Leave(u32),
    Publish(usize),
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
    site: GeneratedSite,
    net: Net<Ev>,
    nodes: Vec<Node>,
    live: usize,
    config: ClientConfig,
    checks: PieceChecks,
    series: Series,
    visitors: u64,
    settled: u64,
    work: Work,
}

impl World {
    /// Sets up a run: the site, every node with its arrival, tier and role.
    pub fn new(scenario: &Scenario, seed: u64) -> World {
        let site = GeneratedSite::generate(scenario, seed);
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
        let mut accesses = Vec::with_capacity(roles.len());
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
            accesses.push(Access {
                up_bytes_per_s: (tier.1 * 1e6 / 8.0) as u64,
                down_bytes_per_s: (tier.0 * 1e6 / 8.0) as u64,
                latency_ms: access_ms,
            });
            nodes.push(Node {
                role,
                client: None,
                arrive,
                quit,
                stay_ms,
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
        let checks = PieceChecks::new(&site);
        let mut net = Net::new(
            NetConfig {
                tracker_latency: Duration::from_millis(scenario.tracker.latency_ms),
                loss: scenario.network.loss,
                nat_failure: scenario.network.nat_failure,
                origin_latency: Duration::from_millis(scenario.origin.latency_ms),
                origin_bytes_per_s: (scenario.origin.up_mbps * 1e6 / 8.0) as u64,
                wire_codec: false,
            },
            rng,
        );
        for access in accesses {
            net.add_node(access);
        }
        let mut world = World {
            scenario: scenario.clone(),
            site,
            net,
            nodes,
            live: 0,
            config,
            checks,
            series: Series::new(bucket_ms, max_ms),
            visitors,
            settled: 0,
            work: Work::default(),
        };
        for i in 0..world.nodes.len() {
            let at = world.nodes[i].arrive;
            world.net.schedule(at, Ev::Arrive(i as u32));
        }
        for k in 1..world.site.versions.len() {
            let at = Instant((scenario.updates.every_secs * 1000.0 * k as f64) as u64);
            world.net.schedule(at, Ev::Publish(k));
        }
        world
    }

    /// The site being served.
    pub fn site(&self) -> &GeneratedSite {
        &self.site
    }

    fn push(&mut self, at: Instant, ev: Ev) {
        self.net.schedule(at, ev);
    }

    fn now(&self) -> Instant {
        self.net.now()
    }

    fn wall(&self) -> UnixTime {
        UnixTime(WALL_START.0 + self.now().as_millis() / 1000)
    }

    /// Runs to the end: every visitor settled, or `max_secs` of virtual
    /// time. Calls `progress` about every 100 000 events.
    pub fn run(&mut self, progress: &mut dyn FnMut(Progress)) {
        let end = Instant((self.scenario.max_secs * 1000.0) as u64);
        let mut reported = 0;
        while let Some(t) = self.net.next_instant() {
            if t > end || self.settled >= self.visitors {
                break;
            }
            self.net.begin();
            while let Some(step) = self.net.pop() {
                self.work.events = self.net.events();
                if self.work.events / 100_000 > reported {
                    reported = self.work.events / 100_000;
                    progress(self.progress());
                }
                self.handle(step);
            }
        }
        self.work.events = self.net.events();
        self.work.virtual_ms = self.now().as_millis();
        // Whoever is still online: record what they did.
        for i in 0..self.nodes.len() {
            self.record(i as u32);
        }
        progress(self.progress());
    }

    fn progress(&self) -> Progress {
        Progress {
            now_ms: self.now().as_millis(),
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
        self.net.origin_bytes()
    }

    /// Every visitor's upload and download bandwidth (bytes/s), for the
    /// Kumar–Ross bound.
    pub fn visitor_links(&self) -> Vec<(u64, u64)> {
        let cap = self.config.upload.bytes_per_sec.unwrap_or(u64::MAX);
        (0..self.nodes.len() as u32)
            .filter(|&i| self.nodes[i as usize].role == Role::Visitor)
            .map(|i| {
                let a = self.net.access(i);
                (a.up_bytes_per_s.min(cap), a.down_bytes_per_s)
            })
            .collect()
    }

    fn handle(&mut self, step: Step<Ev>) {
        let now = self.now();
        match step {
            Step::Client(i, input) => {
                if let Input::PeerFrame { frame, .. } = &input {
                    if let Frame::Piece { data, .. } = frame {
                        self.series.peer_bytes(now, data.len() as u64);
                    }
                    if self.nodes[i as usize].role == Role::Silent {
                        return;
                    }
                }
                self.feed(i, input);
            }
            Step::Driver(Ev::Arrive(i)) => self.arrive(i),
            Step::Driver(Ev::Timer(i)) => {
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
            Step::Driver(Ev::Leave(i)) => self.leave(i),
            Step::Driver(Ev::Publish(k)) => self.publish(k),
        }
    }

    /// Gives `input` to node `i`'s client, if it is online, and handles
    /// what follows.
    fn feed(&mut self, i: u32, input: Input) {
        let now = self.now();
        if let Some(c) = self.client(i) {
            c.handle_input(now, input);
            self.after_input(i);
        }
    }

    fn client(&mut self, i: u32) -> Option<&mut Client> {
        let n = &mut self.nodes[i as usize];
        if n.gone { None } else { n.client.as_mut() }
    }

    fn arrive(&mut self, i: u32) {
        let now = self.now();
        let seed = self.net.rng().next_u64();
        let version = &self.site.versions[self.published_version()];
        let signed = version.signed.clone();
        let paths: Vec<String> = version.files.iter().map(|(p, _)| p.clone()).collect();
        let files: Vec<(String, Bytes)> = match self.nodes[i as usize].role {
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
                manifest: Box::new(signed.clone()),
                source: ManifestSource::Origin,
                wall,
            },
        );
        assert!(
            client.manifest().is_some(),
            "the simulated manifest is valid"
        );
        for (path, data) in files {
            client.handle_input(now, Input::AssetHeld { path, bytes: data });
        }
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
        self.net.connect_tracker(i);
        self.after_input(i);
    }

    /// Index of the version the origin serves now.
    fn published_version(&self) -> usize {
        if self.scenario.updates.count == 0 {
            return 0;
        }
        let every = (self.scenario.updates.every_secs * 1000.0) as u64;
        ((self.now().as_millis() / every.max(1)) as usize).min(self.site.versions.len() - 1)
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
        let now = self.now();
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
        let now = self.now();
        let out = match out {
            Output::SendPeer { conn, frame } => return self.send_peer(i, conn, frame),
            out => out,
        };
        let Some(out) = self.net.route(i, out) else {
            return;
        };
        match out {
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
            // The network's, handled by `net.route`.
            Output::Tracker(_)
            | Output::CreateOffer { .. }
            | Output::AcceptOffer { .. }
            | Output::ApplyAnswer { .. }
            | Output::SendPeer { .. }
            | Output::ClosePeer { .. }
            | Output::Event(_) => {}
        }
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
        self.net.send(i, conn, frame);
        if role == Role::Replay && is_handshake && self.net.has_link(i, conn) {
            // Right after its handshake: the stale manifest, claimed newer.
            let v = self.nodes[i as usize].version + 1;
            for f in manifest_offer_frames(v, &self.site.stale.to_bytes()) {
                self.net.send(i, conn, f);
            }
        }
    }

    /// Answers a hash job at once: from the memo for a buffer already
    /// hashed and found honest, else with a real SHA-256.
    fn hash_job(&mut self, i: u32, job: HashJob, data: &Bytes) {
        let (digest, computed) = self.checks.hash(data);
        if computed {
            self.work.hashes_computed += 1;
        } else {
            self.work.hashes_memoized += 1;
        }
        let now = self.now();
        if let Some(c) = self.client(i) {
            c.handle_input(now, Input::PieceHashed { job, digest });
        }
    }

    fn fetch_origin(
        &mut self,
        i: u32,
        request: RequestId,
        path: &str,
        range: std::ops::Range<u64>,
    ) {
        let now = self.now();
        let down = self
            .scenario
            .origin
            .down_from_secs
            .is_some_and(|d| now.as_millis() as f64 >= d * 1000.0);
        if down {
            self.net
                .fetch_origin(i, request, Err(OriginError("503".into())));
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
                // A slice of the shared file: a long origin queue holds no
                // bytes of its own.
                Some(files[fi].1.slice(range))
            });
        let Some(body) = body else {
            self.net
                .fetch_origin(i, request, Err(OriginError("404".into())));
            return;
        };
        let len = body.len() as u64;
        if let Some(sent) = self.net.fetch_origin(i, request, Ok(body)) {
            self.series.origin_bytes(sent, len);
        }
    }

    fn delivered(&mut self, i: u32, ticket: u64, path: &str, body: &Body, version: u64) {
        // Against the version the client says it verified the body with:
        // a page load may finish on its version after a newer one arrived.
        let wrong = self.checks.wrong_bytes(&self.site, version, path, body);
        let now = self.now();
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

    fn ticket_done(&mut self, i: u32) {
        let now = self.now();
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
        let now = self.now();
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
            && c.manifest()
                .is_some_and(|m| m.manifest().asset(&path).is_some())
        {
            let ticket = Ticket(n.tickets_issued);
            n.tickets_issued += 1;
            c.handle_input(now, Input::Want { ticket, path });
            n.update_waits.insert(ticket.0, published);
        }
    }

    fn leave(&mut self, i: u32) {
        let now = self.now();
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
        self.net.remove_node(i);
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
        let push = net::manifest_push(&self.site.versions[k].signed);
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            if !n.gone && n.client.is_some() && n.role == Role::Visitor {
                self.net.tracker_send(i as u32, push.clone());
            }
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
