//! The scheduler: which piece to fetch from whom, and when to give up on
//! peers and go to the origin.
//!
//! It knows the pieces of one manifest version, which of them the page
//! waits for (and in what order), which connected peer holds what, and
//! every request in flight with its deadline. [`Scheduler::poll`] turns that
//! into [`Action`]s. The rules, in order:
//!
//! 1. **The page first.** Wanted pieces are taken in the order the page asked
//!    for their assets; within an asset, rarest first among connected peers
//!    (ties by index, so a file tends to arrive front to back).
//! 2. **A peer that has it and a free slot.** Each peer gets at most
//!    `pipeline` requests in flight; every timeout is a strike, and each
//!    strike halves that peer's pipeline (never below one). The least busy,
//!    least struck peer wins; ties are broken at random.
//! 3. **The origin when peers cannot do it in time** — never slower than
//!    plain HTTP: a piece goes to the origin, as part of a contiguous
//!    `Range` request, when a peer request for it timed out or was rejected
//!    and no other peer can take it, when no connected peer has it and the
//!    discovery grace (time to meet peers after start) is over, or when it
//!    has waited `piece_deadline` for a busy peer.
//! 4. **Endgame.** When every wanted piece is in flight, idle slots of other
//!    peers duplicate the oldest single requests; the first copy to arrive
//!    wins and the others are cancelled.
//!
//! Bad bytes are not the scheduler's call: the client verifies and drops the
//! peer, then tells the scheduler the peer left.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

use crate::piece::{Bitfield, PieceIndex, PieceMap};
use crate::rng::Rng;
use crate::time::Instant;

/// Identifies one peer connection within a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Identifies one origin fetch within a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Scheduler tuning; see the module doc for what each knob does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Most requests in flight to one peer.
    pub pipeline: usize,
    /// A peer request not answered by then is a strike and goes elsewhere.
    pub request_timeout: Duration,
    /// Longest a wanted piece waits for a busy peer before the origin.
    pub piece_deadline: Duration,
    /// After start, how long to wait for peers before using the origin for
    /// pieces no connected peer has. Ended early by [`Scheduler::end_grace`]
    /// once the client knows discovery has settled.
    pub discovery_grace: Duration,
    /// Most pieces in one origin `Range` request.
    pub max_origin_run: u32,
    /// Most origin requests in flight.
    pub max_origin_requests: usize,
    /// Most peers asked for the same piece at once in endgame.
    pub endgame_copies: usize,
    /// Strikes (timeouts not made up for by deliveries) after which a peer
    /// is disconnected as unresponsive.
    pub max_strikes: u32,
    /// Keep the whole discovery grace even once connections have settled,
    /// unless no peer is connected at all: pieces nobody has yet are left
    /// for neighbours to fetch and pass on (emergency mode).
    pub await_swarm: bool,
}

impl SchedulerConfig {
    /// Tuning while the site's manifest says its origin is under pressure
    /// (emergency mode): peers and seeders first, the origin only after
    /// much longer waits or when no peer has a piece at all.
    pub fn origin_under_pressure() -> Self {
        SchedulerConfig {
            request_timeout: Duration::from_millis(6000),
            piece_deadline: Duration::from_millis(15_000),
            discovery_grace: Duration::from_millis(5000),
            max_origin_requests: 1,
            max_origin_run: 16,
            await_swarm: true,
            ..SchedulerConfig::default()
        }
    }
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            pipeline: 16,
            request_timeout: Duration::from_millis(3000),
            piece_deadline: Duration::from_millis(3000),
            discovery_grace: Duration::from_millis(1500),
            max_origin_run: 64,
            // What browsers allow per host over HTTP/1.1.
            max_origin_requests: 6,
            endgame_copies: 2,
            max_strikes: 8,
            await_swarm: false,
        }
    }
}

/// What the scheduler wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a `Request` for `piece` to `conn`.
    Request {
        /// The peer.
        conn: ConnId,
        /// The piece.
        piece: PieceIndex,
    },
    /// Send a `Cancel` for `piece` to `conn` (timed out, or another copy won).
    Cancel {
        /// The peer.
        conn: ConnId,
        /// The piece.
        piece: PieceIndex,
    },
    /// Disconnect `conn`: it timed out `max_strikes` times (not misbehaviour:
    /// slowness is not malice, but the slot is better used by another peer).
    Drop {
        /// The peer.
        conn: ConnId,
    },
    /// Fetch these contiguous pieces (all of one asset) from the origin.
    Origin {
        /// Id to answer with.
        request: RequestId,
        /// The pieces.
        pieces: Range<PieceIndex>,
    },
}

#[derive(Debug, Clone)]
struct PeerSlot {
    have: Bitfield,
    in_flight: usize,
    strikes: u32,
    refused: BTreeSet<PieceIndex>,
}

impl PeerSlot {
    fn capacity(&self, pipeline: usize) -> usize {
        (pipeline >> self.strikes.min(8)).max(1)
    }

    /// Holds `piece` and has not refused it (or timed out on it).
    fn offers(&self, piece: PieceIndex) -> bool {
        self.have.has(piece) && !self.refused.contains(&piece)
    }

    /// Can take a request for `piece` now.
    fn can_take(&self, piece: PieceIndex, pipeline: usize) -> bool {
        self.offers(piece) && self.in_flight < self.capacity(pipeline)
    }
}

/// Piece selection and deadlines for one manifest version.
#[derive(Debug, Clone)]
pub struct Scheduler {
    cfg: SchedulerConfig,
    done: Bitfield,
    avail: Vec<u16>,
    /// Wanted, not yet verified pieces: priority (lower first) and since when.
    wanted: BTreeMap<PieceIndex, (u64, Instant)>,
    /// Peer requests in flight per piece, with their deadlines.
    requests: BTreeMap<PieceIndex, Vec<(ConnId, Instant)>>,
    /// Pieces covered by an origin request in flight.
    at_origin: BTreeMap<PieceIndex, RequestId>,
    origin_requests: BTreeMap<RequestId, Range<PieceIndex>>,
    /// Pieces a peer failed (timeout, reject, vanished mid-piece): origin next
    /// unless another peer can take them right away.
    failed_at_peer: BTreeSet<PieceIndex>,
    peers: BTreeMap<ConnId, PeerSlot>,
    grace_until: Option<Instant>,
    next_request: u64,
    last_poll: Instant,
}

impl Scheduler {
    /// A scheduler for `piece_count` pieces, started at `now`.
    pub fn new(cfg: SchedulerConfig, piece_count: u32, now: Instant) -> Scheduler {
        let grace_until = Some(now + cfg.discovery_grace);
        Scheduler {
            cfg,
            done: Bitfield::new(piece_count),
            avail: vec![0; piece_count as usize],
            wanted: BTreeMap::new(),
            requests: BTreeMap::new(),
            at_origin: BTreeMap::new(),
            origin_requests: BTreeMap::new(),
            failed_at_peer: BTreeSet::new(),
            peers: BTreeMap::new(),
            grace_until,
            next_request: 0,
            last_poll: now,
        }
    }

    /// The pieces already verified.
    pub fn done(&self) -> &Bitfield {
        &self.done
    }

    /// Starts the discovery grace again from `now` (the tracker connection
    /// came up only now), unless it was ended on purpose.
    pub fn restart_grace(&mut self, now: Instant) {
        if let Some(t) = &mut self.grace_until {
            *t = (*t).max(now + self.cfg.discovery_grace);
        }
    }

    /// Stops waiting for peers to show up: the tracker cannot be reached.
    pub fn end_grace(&mut self) {
        self.grace_until = None;
    }

    /// Discovery has settled (every offer answered, every connection up or
    /// failed): ends the grace unless `await_swarm` asks to keep waiting
    /// for connected peers to fetch what nobody has yet.
    pub fn discovery_settled(&mut self) {
        if !self.cfg.await_swarm || self.peers.is_empty() {
            self.grace_until = None;
        }
    }

    /// Whether the discovery grace is still running at `now`.
    pub fn in_grace(&self, now: Instant) -> bool {
        self.grace_until.is_some_and(|t| now < t)
    }

    /// The page wants `piece`; lower `priority` values go first.
    pub fn want(&mut self, piece: PieceIndex, priority: u64, now: Instant) {
        if !self.done.has(piece) && piece < self.done.len() {
            self.wanted
                .entry(piece)
                .and_modify(|e| e.0 = e.0.min(priority))
                .or_insert((priority, now));
        }
    }

    /// The page no longer waits for `piece`; requests in flight run out.
    pub fn unwant(&mut self, piece: PieceIndex) {
        self.wanted.remove(&piece);
        self.failed_at_peer.remove(&piece);
    }

    /// Every peer request in flight, as (peer, piece).
    pub fn peer_requests(&self) -> Vec<(ConnId, PieceIndex)> {
        self.requests
            .iter()
            .flat_map(|(p, v)| v.iter().map(move |(c, _)| (*c, *p)))
            .collect()
    }

    /// A peer on our version joined with the pieces it holds.
    pub fn peer_joined(&mut self, conn: ConnId, have: Bitfield) {
        self.peer_left(conn);
        for i in 0..have.len() {
            if have.has(i) {
                self.avail[i as usize] = self.avail[i as usize].saturating_add(1);
            }
        }
        self.peers.insert(
            conn,
            PeerSlot {
                have,
                in_flight: 0,
                strikes: 0,
                refused: BTreeSet::new(),
            },
        );
    }

    /// A peer announced a newly verified piece.
    pub fn peer_has(&mut self, conn: ConnId, piece: PieceIndex) {
        if let Some(p) = self.peers.get_mut(&conn)
            && p.have.set(piece)
        {
            self.avail[piece as usize] = self.avail[piece as usize].saturating_add(1);
        }
    }

    /// Whether any peer on our version is connected.
    pub fn has_peers(&self) -> bool {
        !self.peers.is_empty()
    }

    /// Whether we asked `conn` for `piece` and are still waiting.
    pub fn is_requested_from(&self, conn: ConnId, piece: PieceIndex) -> bool {
        self.requests
            .get(&piece)
            .is_some_and(|v| v.iter().any(|(c, _)| *c == conn))
    }

    /// A peer left (closed, dropped, or switched version). Its requests in
    /// flight are given up.
    pub fn peer_left(&mut self, conn: ConnId) {
        let Some(p) = self.peers.remove(&conn) else {
            return;
        };
        for i in 0..p.have.len() {
            if p.have.has(i) {
                self.avail[i as usize] = self.avail[i as usize].saturating_sub(1);
            }
        }
        let mut lost = Vec::new();
        self.requests.retain(|piece, v| {
            let before = v.len();
            v.retain(|(c, _)| *c != conn);
            if v.len() < before {
                lost.push(*piece);
            }
            !v.is_empty()
        });
        for piece in lost {
            if !self.requests.contains_key(&piece) {
                self.failed_at_peer.insert(piece);
            }
        }
    }

    /// The peer would not serve `piece`: ask someone else, never it again
    /// for that piece on this connection.
    pub fn rejected(&mut self, conn: ConnId, piece: PieceIndex) {
        self.drop_request(conn, piece);
        if let Some(p) = self.peers.get_mut(&conn) {
            p.refused.insert(piece);
        }
        if !self.requests.contains_key(&piece) {
            self.failed_at_peer.insert(piece);
        }
    }

    fn drop_request(&mut self, conn: ConnId, piece: PieceIndex) -> bool {
        let mut found = false;
        if let Some(v) = self.requests.get_mut(&piece) {
            let before = v.len();
            v.retain(|(c, _)| *c != conn);
            found = v.len() < before;
            if v.is_empty() {
                self.requests.remove(&piece);
            }
        }
        if found && let Some(p) = self.peers.get_mut(&conn) {
            p.in_flight = p.in_flight.saturating_sub(1);
        }
        found
    }

    /// `piece` was verified (from `from`, a peer, or `None` for the origin
    /// or local storage). Returns the other peers to send a `Cancel` to.
    pub fn piece_verified(
        &mut self,
        piece: PieceIndex,
        from: Option<ConnId>,
        now: Instant,
    ) -> Vec<ConnId> {
        if let Some(conn) = from {
            self.drop_request(conn, piece);
            if let Some(p) = self.peers.get_mut(&conn) {
                // A delivered piece earns back trust lost to timeouts.
                p.strikes = p.strikes.saturating_sub(1);
            }
            // The peer is making progress: its queued requests get a fresh
            // deadline (they wait behind the ones it is sending).
            let fresh = now + self.cfg.request_timeout;
            for v in self.requests.values_mut() {
                for (c, deadline) in v.iter_mut() {
                    if *c == conn && *deadline < fresh {
                        *deadline = fresh;
                    }
                }
            }
        }
        self.done.set(piece);
        self.wanted.remove(&piece);
        self.failed_at_peer.remove(&piece);
        let others: Vec<ConnId> = self
            .requests
            .get(&piece)
            .map(|v| v.iter().map(|(c, _)| *c).collect())
            .unwrap_or_default();
        for c in &others {
            self.drop_request(*c, piece);
        }
        others
    }

    /// The origin request finished (its pieces were verified or not by the
    /// caller, who reports each through `piece_verified` / `origin_failed`).
    pub fn origin_finished(&mut self, request: RequestId) -> Option<Range<PieceIndex>> {
        let range = self.origin_requests.remove(&request)?;
        for p in range.clone() {
            if self.at_origin.get(&p) == Some(&request) {
                self.at_origin.remove(&p);
            }
        }
        Some(range)
    }

    /// The earliest instant at which `poll` has something new to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let req = self
            .requests
            .values()
            .flat_map(|v| v.iter().map(|(_, d)| *d))
            .min();
        // Idle pieces whose wait for a busy peer ends later; one already past
        // its deadline is blocked on origin slots and wakes with their answer.
        let waiting = self
            .wanted
            .iter()
            .filter(|(p, _)| !self.requests.contains_key(p) && !self.at_origin.contains_key(p))
            .map(|(_, (_, since))| *since + self.cfg.piece_deadline)
            .filter(|t| *t > self.last_poll)
            .min();
        let grace = self.grace_until.filter(|_| !self.wanted.is_empty());
        [req, waiting, grace].into_iter().flatten().min()
    }

    /// Decides what to do at `now`; `map` tells asset boundaries for origin
    /// ranges.
    pub fn poll(&mut self, now: Instant, map: &PieceMap, rng: &mut Rng) -> Vec<Action> {
        let mut actions = Vec::new();
        self.last_poll = now;
        self.expire(now, &mut actions);
        if self.grace_until.is_some_and(|t| now >= t) {
            self.grace_until = None;
        }

        // Rule 1: page order, then rarest, then index.
        let mut order: Vec<(u64, u16, PieceIndex)> = self
            .wanted
            .iter()
            .filter(|(p, _)| !self.requests.contains_key(p) && !self.at_origin.contains_key(p))
            .map(|(p, (prio, _))| (*prio, self.avail[*p as usize], *p))
            .collect();
        order.sort_unstable();

        let mut to_origin = Vec::new();
        for (_, _, piece) in order {
            if let Some(conn) = self.pick_peer(piece, rng) {
                self.send_request(conn, piece, now, &mut actions);
                continue;
            }
            let held_by_someone = self.peers.values().any(|p| p.offers(piece));
            let since = self.wanted[&piece].1;
            let go_origin = if self.failed_at_peer.contains(&piece) {
                true
            } else if held_by_someone {
                now >= since + self.cfg.piece_deadline
            } else {
                !self.in_grace(now)
            };
            if go_origin {
                to_origin.push(piece);
            }
        }
        self.plan_origin(to_origin, map, &mut actions);
        self.endgame(now, rng, &mut actions);
        actions
    }

    fn expire(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let expired: Vec<(PieceIndex, ConnId)> = self
            .requests
            .iter()
            .flat_map(|(p, v)| {
                v.iter()
                    .filter(|(_, d)| *d <= now)
                    .map(move |(c, _)| (*p, *c))
            })
            .collect();
        // One strike per peer per pass: a stall that expires a whole
        // pipeline at once is one failure, not sixteen.
        let mut struck = BTreeSet::new();
        for (piece, conn) in expired {
            self.drop_request(conn, piece);
            actions.push(Action::Cancel { conn, piece });
            if let Some(p) = self.peers.get_mut(&conn) {
                // It had its chance at this piece.
                p.refused.insert(piece);
                if struck.insert(conn) {
                    p.strikes += 1;
                    if p.strikes == self.cfg.max_strikes {
                        actions.push(Action::Drop { conn });
                    }
                }
            }
            if !self.requests.contains_key(&piece) {
                self.failed_at_peer.insert(piece);
            }
        }
    }

    fn pick_peer(&self, piece: PieceIndex, rng: &mut Rng) -> Option<ConnId> {
        let mut best: Option<((u32, usize), ConnId)> = None;
        let mut ties = 0u64;
        for (conn, p) in &self.peers {
            if !p.can_take(piece, self.cfg.pipeline) {
                continue;
            }
            let key = (p.strikes, p.in_flight);
            match &best {
                Some((k, _)) if key > *k => {}
                Some((k, _)) if key == *k => {
                    // Reservoir sampling keeps the tie-break uniform.
                    ties += 1;
                    if rng.below(ties + 1) == 0 {
                        best = Some((key, *conn));
                    }
                }
                _ => {
                    best = Some((key, *conn));
                    ties = 0;
                }
            }
        }
        best.map(|(_, c)| c)
    }

    fn send_request(
        &mut self,
        conn: ConnId,
        piece: PieceIndex,
        now: Instant,
        actions: &mut Vec<Action>,
    ) {
        self.requests
            .entry(piece)
            .or_default()
            .push((conn, now + self.cfg.request_timeout));
        if let Some(p) = self.peers.get_mut(&conn) {
            p.in_flight += 1;
        }
        actions.push(Action::Request { conn, piece });
    }

    /// Groups pieces into contiguous same-asset runs, one origin request each.
    fn plan_origin(
        &mut self,
        mut pieces: Vec<PieceIndex>,
        map: &PieceMap,
        actions: &mut Vec<Action>,
    ) {
        pieces.sort_unstable();
        let mut i = 0;
        while i < pieces.len() && self.origin_requests.len() < self.cfg.max_origin_requests {
            let start = pieces[i];
            let asset = map.get(start).map(|p| p.asset);
            let mut end = start + 1;
            i += 1;
            while i < pieces.len()
                && pieces[i] == end
                && end - start < self.cfg.max_origin_run
                && map.get(end).map(|p| p.asset) == asset
            {
                end += 1;
                i += 1;
            }
            let request = RequestId(self.next_request);
            self.next_request += 1;
            for p in start..end {
                self.at_origin.insert(p, request);
                self.failed_at_peer.remove(&p);
            }
            self.origin_requests.insert(request, start..end);
            actions.push(Action::Origin {
                request,
                pieces: start..end,
            });
        }
    }

    fn endgame(&mut self, now: Instant, rng: &mut Rng, actions: &mut Vec<Action>) {
        let all_in_flight = self
            .wanted
            .keys()
            .all(|p| self.requests.contains_key(p) || self.at_origin.contains_key(p));
        if !all_in_flight {
            return;
        }
        let singles: Vec<PieceIndex> = self
            .requests
            .iter()
            .filter(|(p, v)| self.wanted.contains_key(p) && v.len() < self.cfg.endgame_copies)
            .map(|(p, _)| *p)
            .collect();
        for piece in singles {
            let asked: Vec<ConnId> = self.requests[&piece].iter().map(|(c, _)| *c).collect();
            let candidate = {
                let mut pool: Vec<ConnId> = self
                    .peers
                    .iter()
                    .filter(|(c, p)| !asked.contains(c) && p.can_take(piece, self.cfg.pipeline))
                    .map(|(c, _)| *c)
                    .collect();
                if pool.is_empty() {
                    None
                } else {
                    Some(pool.swap_remove(rng.below(pool.len() as u64) as usize))
                }
            };
            if let Some(conn) = candidate {
                self.send_request(conn, piece, now, actions);
            }
        }
    }
}
