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
//! 2. **A peer that has it and a free slot.** Each peer gets a window of
//!    requests in flight: `initial_window` at first, one more for each
//!    piece it delivers within `target_latency` of the request, one less
//!    for each it delivers later, never above `pipeline`. A peer whose
//!    uplink several of us share thus gets short queues, and the pieces wait
//!    here, free for whichever peer has room first, instead of timing out
//!    in its queue (13 318 timeouts in the simulated flash crowd of 1000
//!    with a fixed pipeline of 16; 60 with the window). Every timeout is a
//!    strike, and each strike halves that peer's window (never below one).
//!    The least busy, least struck peer wins; ties are broken at random.
//! 3. **The origin when peers cannot do it in time** — never slower than
//!    plain HTTP: a piece goes to the origin, as part of a contiguous
//!    `Range` request, when a peer request for it timed out or was rejected
//!    and no other peer can take it, when no connected peer has it and the
//!    discovery grace (time to meet peers after start, longer while a
//!    connection is on its way) is over, or when it has waited
//!    `piece_deadline` for a busy peer *and* no peer has delivered anything
//!    for as long (while peers keep delivering, the busy holder's turn
//!    comes). **With peers connected** the origin is the last resort: a
//!    piece no connected peer has waits `origin_wait_with_peers` (a
//!    neighbour may fetch it and announce it), and, while peer requests are
//!    in flight, until no peer has delivered for `piece_deadline`: the
//!    origin is left to the neighbours that peers can no longer keep busy.
//!    At most `origin_requests_with_peers` requests of at most
//!    `origin_run_with_peers` pieces are in flight, starting at a random
//!    candidate, so that visitors of a flash crowd fetch different pieces
//!    from the origin and trade them instead of all fetching the same ones
//!    (found with the simulator, `docs/sim.md`: 954 origin copies for 1000
//!    visitors before this rule).
//! 4. **Endgame.** When every wanted piece is in flight, idle slots of other
//!    peers duplicate the oldest single requests; the first copy to arrive
//!    wins and the others are cancelled.
//!
//! Bad bytes are not the scheduler's call: the client verifies and drops the
//! peer, then tells the scheduler the peer left.
//!
//! # Cost
//! [`Scheduler::poll`] runs after every input a client gets, so it works
//! incrementally. It keeps one invariant: after a poll, no idle wanted
//! piece (wanted, not requested, not at the origin) is held by a peer with
//! a free slot. Only what can break it is looked at again: pieces that
//! became idle or gained a holder (a `Have`), and peers whose slots freed
//! up or that joined. Origin decisions are re-made only when they can
//! change (a piece became idle, a holder left, a request failed, an origin
//! slot freed, the grace ended, or a wait for a busy peer ran out), and
//! request deadlines are kept per peer (a delivery refreshes all of that
//! peer's deadlines, so each request's deadline is `max(sent, last
//! delivery) + request_timeout`). Piece state lives in plain vectors
//! indexed by piece, not maps.

use std::collections::VecDeque;
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
    /// Requests in flight to a peer we know nothing about yet; the window
    /// then grows while its answers come back within `target_latency` and
    /// shrinks while they do not, never above `pipeline`.
    pub initial_window: usize,
    /// How long a request may wait at a peer (queue and transfer) before
    /// we stop adding to that peer's queue.
    pub target_latency: Duration,
    /// A peer request not answered by then is a strike and goes elsewhere.
    pub request_timeout: Duration,
    /// Longest a wanted piece waits for a busy peer before the origin.
    pub piece_deadline: Duration,
    /// After start, how long to wait for peers before using the origin for
    /// pieces no connected peer has. Ended early by [`Scheduler::end_grace`]
    /// once the client knows discovery has settled.
    pub discovery_grace: Duration,
    /// How long the discovery grace may last (from its start) while a
    /// connection is on its way (an offer answered, a channel opening):
    /// setting one up can take longer than `discovery_grace`, and a peer
    /// about to connect is worth more than a guess that nobody will.
    pub connecting_grace: Duration,
    /// Most pieces in one origin `Range` request.
    pub max_origin_run: u32,
    /// Most origin requests in flight.
    pub max_origin_requests: usize,
    /// Most origin requests in flight while peers are connected.
    pub origin_requests_with_peers: usize,
    /// Most pieces in one origin request while peers are connected.
    pub origin_run_with_peers: u32,
    /// While peers are connected, how long a piece none of them has waits
    /// (from when the page asked) for one of them to get it.
    pub origin_wait_with_peers: Duration,
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
            initial_window: 4,
            target_latency: Duration::from_millis(1000),
            // 3 s timed out 52 759 requests in the simulated flash crowd of 1000
            // (slow uplinks shared by several requesters), each sending its
            // piece to the origin; 6 s: 12 450 (docs/sim.md).
            request_timeout: Duration::from_millis(6000),
            piece_deadline: Duration::from_millis(3000),
            discovery_grace: Duration::from_millis(1500),
            // 1.5 s ended the grace of 22 of the simulated flash crowd's
            // 1000 visitors while their first connections were opening;
            // each then fetched a whole copy (docs/sim.md).
            connecting_grace: Duration::from_millis(5000),
            max_origin_run: 64,
            // What browsers allow per host over HTTP/1.1.
            max_origin_requests: 6,
            origin_requests_with_peers: 1,
            origin_run_with_peers: 4,
            origin_wait_with_peers: Duration::from_millis(5_000),
            endgame_copies: 2,
            max_strikes: 8,
            await_swarm: false,
        }
    }
}

/// Why pieces were sent to the origin, counted per piece: what tells a
/// scheduler change that helps from one that moves the cost elsewhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OriginReasons {
    /// A peer request for it timed out, was rejected, or its peer left,
    /// and no other peer could take it.
    pub peer_failed: u64,
    /// A connected peer held it, but was busy for `piece_deadline` while
    /// no peer delivered anything.
    pub holder_busy: u64,
    /// Peers were connected, none held it, and the wait for a neighbour to
    /// fetch it ran out.
    pub no_holder: u64,
    /// No peer was connected and the discovery grace was over.
    pub alone: u64,
}

impl OriginReasons {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &OriginReasons) {
        self.peer_failed += other.peer_failed;
        self.holder_busy += other.holder_busy;
        self.no_holder += other.no_holder;
        self.alone += other.alone;
    }

    fn count(&mut self, reason: OriginReason) {
        match reason {
            OriginReason::PeerFailed => self.peer_failed += 1,
            OriginReason::HolderBusy => self.holder_busy += 1,
            OriginReason::NoHolder => self.no_holder += 1,
            OriginReason::Alone => self.alone += 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OriginReason {
    PeerFailed,
    HolderBusy,
    NoHolder,
    Alone,
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
        /// Why, per piece.
        reasons: OriginReasons,
    },
}

#[derive(Debug, Clone)]
struct PeerSlot {
    conn: ConnId,
    have: Bitfield,
    strikes: u32,
    /// Requests we keep in flight to it, from how fast it answered so far.
    window: usize,
    refused: Bitfield,
    /// Requests in flight, oldest first, with the time each was sent.
    sent: VecDeque<(PieceIndex, Instant)>,
    /// Latest delivery: every request in flight waits at least
    /// `request_timeout` from it.
    last_delivery: Instant,
}

impl PeerSlot {
    fn in_flight(&self) -> usize {
        self.sent.len()
    }

    fn capacity(&self, pipeline: usize) -> usize {
        (self.window.min(pipeline) >> self.strikes.min(8)).max(1)
    }

    fn has_room(&self, pipeline: usize) -> bool {
        self.in_flight() < self.capacity(pipeline)
    }

    /// Holds `piece` and has not refused it (or timed out on it).
    fn offers(&self, piece: PieceIndex) -> bool {
        self.have.has(piece) && !self.refused.has(piece)
    }

    /// Can take a request for `piece` now.
    fn can_take(&self, piece: PieceIndex, pipeline: usize) -> bool {
        self.offers(piece) && self.has_room(pipeline)
    }

    fn deadline(&self, sent: Instant, timeout: Duration) -> Instant {
        sent.max(self.last_delivery) + timeout
    }

    /// The earliest deadline of its requests (the oldest one's).
    fn earliest_deadline(&self, timeout: Duration) -> Option<Instant> {
        self.sent.front().map(|(_, s)| self.deadline(*s, timeout))
    }
}

/// A wanted piece: its priority (lower first) and since when it is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Want {
    priority: u64,
    since: Instant,
}

/// Piece selection and deadlines for one manifest version.
#[derive(Debug, Clone)]
pub(crate) struct Scheduler {
    cfg: SchedulerConfig,
    /// Pieces in the manifest version. What we hold is the piece store's to
    /// know: the client never asks for a piece it holds.
    piece_count: u32,
    /// Connected peers holding each piece.
    avail: Vec<u16>,
    /// Wanted, not yet verified pieces.
    wanted: Vec<Option<Want>>,
    wanted_count: usize,
    /// Peers asked for each piece (one, or a few in endgame).
    asked: Vec<Vec<ConnId>>,
    /// The origin request covering each piece, if any.
    at_origin: Vec<Option<RequestId>>,
    origin_requests: Vec<(RequestId, Range<PieceIndex>)>,
    /// Pieces a peer failed (timeout, reject, vanished mid-piece): origin next
    /// unless another peer can take them right away.
    failed_at_peer: Vec<bool>,
    /// Connected peers on our version, sorted by connection.
    peers: Vec<PeerSlot>,
    grace_until: Option<Instant>,
    /// When the discovery grace (re)started.
    grace_start: Instant,
    next_request: u64,
    last_poll: Instant,
    /// Idle pieces that may now be assignable to a peer.
    dirty_pieces: Vec<PieceIndex>,
    /// Peers that may now take more requests.
    dirty_peers: Vec<ConnId>,
    /// Latest piece delivered by any peer: while peers keep delivering, a
    /// piece a busy peer holds waits for it rather than for the origin.
    last_peer_progress: Instant,
    /// Whether any peer request was in flight after the last poll.
    peers_were_busy: bool,
    /// This client's wait for a piece no neighbour holds: drawn at the
    /// first poll from `origin_wait_with_peers` × [½, 1½), so that among
    /// neighbours who want the same pieces at the same instant (a crowd, a
    /// pushed update) one goes to the origin first and the others get it
    /// from it.
    no_holder_wait: Option<Duration>,
    /// Origin decisions may have changed.
    origin_dirty: bool,
    /// No later than when an idle piece's wait for a busy peer ends (may be
    /// early, never late).
    wait_wake: Option<Instant>,
}

impl Scheduler {
    /// A scheduler for `piece_count` pieces, started at `now`.
    /// Origin request ids start at `first_request` and count up, so ids
    /// stay unique across the versions (and schedulers) of one client.
    pub fn new(
        cfg: SchedulerConfig,
        piece_count: u32,
        now: Instant,
        first_request: RequestId,
    ) -> Scheduler {
        let grace_until = Some(now + cfg.discovery_grace);
        let n = piece_count as usize;
        Scheduler {
            cfg,
            piece_count,
            avail: vec![0; n],
            wanted: vec![None; n],
            wanted_count: 0,
            asked: vec![Vec::new(); n],
            at_origin: vec![None; n],
            origin_requests: Vec::new(),
            failed_at_peer: vec![false; n],
            peers: Vec::new(),
            grace_until,
            grace_start: now,
            next_request: first_request.0,
            last_poll: now,
            dirty_pieces: Vec::new(),
            dirty_peers: Vec::new(),
            last_peer_progress: now,
            peers_were_busy: false,
            no_holder_wait: None,
            origin_dirty: true,
            wait_wake: None,
        }
    }

    /// Starts the discovery grace again from `now` (the tracker connection
    /// came up only now), unless it was ended on purpose.
    pub fn restart_grace(&mut self, now: Instant) {
        if let Some(t) = &mut self.grace_until {
            *t = (*t).max(now + self.cfg.discovery_grace);
            self.grace_start = now;
        }
    }

    /// A connection is on its way while nobody is connected yet: the
    /// discovery grace may run to `connecting_grace` from its start,
    /// unless it has already ended.
    pub fn peer_on_the_way(&mut self, now: Instant) {
        let until = self.grace_start + self.cfg.connecting_grace;
        if self.peers.is_empty()
            && let Some(t) = &mut self.grace_until
            && now < *t
            && *t < until
        {
            *t = until;
        }
    }

    /// Stops waiting for peers to show up: the tracker cannot be reached.
    pub fn end_grace(&mut self) {
        if self.grace_until.take().is_some() {
            self.origin_dirty = true;
        }
    }

    /// Discovery has settled (every offer answered, every connection up or
    /// failed): ends the grace unless `await_swarm` asks to keep waiting
    /// for connected peers to fetch what nobody has yet.
    pub fn discovery_settled(&mut self) {
        if !self.cfg.await_swarm || self.peers.is_empty() {
            self.end_grace();
        }
    }

    /// Whether the discovery grace is still running at `now`.
    pub fn in_grace(&self, now: Instant) -> bool {
        self.grace_until.is_some_and(|t| now < t)
    }

    fn is_idle(&self, piece: PieceIndex) -> bool {
        let i = piece as usize;
        self.wanted[i].is_some() && self.asked[i].is_empty() && self.at_origin[i].is_none()
    }

    /// `piece` may have become idle: look at it again, for peers and origin.
    fn mark_idle(&mut self, piece: PieceIndex) {
        if let Some(w) = self.wanted[piece as usize]
            && self.is_idle(piece)
        {
            self.dirty_pieces.push(piece);
            self.origin_dirty = true;
            let t = w.since + self.cfg.piece_deadline;
            self.wait_wake = Some(self.wait_wake.map_or(t, |w| w.min(t)));
        }
    }

    fn mark_peer(&mut self, conn: ConnId) {
        if !self.dirty_peers.contains(&conn) {
            self.dirty_peers.push(conn);
        }
    }

    fn slot(&self, conn: ConnId) -> Option<&PeerSlot> {
        let i = self.peers.binary_search_by_key(&conn, |p| p.conn).ok()?;
        Some(&self.peers[i])
    }

    fn slot_mut(&mut self, conn: ConnId) -> Option<&mut PeerSlot> {
        let i = self.peers.binary_search_by_key(&conn, |p| p.conn).ok()?;
        Some(&mut self.peers[i])
    }

    /// The page wants `piece`, which we do not hold; lower `priority`
    /// values go first.
    pub fn want(&mut self, piece: PieceIndex, priority: u64, now: Instant) {
        if piece >= self.piece_count {
            return;
        }
        match &mut self.wanted[piece as usize] {
            Some(w) => w.priority = w.priority.min(priority),
            slot @ None => {
                *slot = Some(Want {
                    priority,
                    since: now,
                });
                self.wanted_count += 1;
                self.mark_idle(piece);
            }
        }
    }

    /// The page no longer waits for `piece`; requests in flight run out.
    pub fn unwant(&mut self, piece: PieceIndex) {
        let i = piece as usize;
        if i < self.wanted.len() {
            if self.wanted[i].take().is_some() {
                self.wanted_count -= 1;
            }
            self.failed_at_peer[i] = false;
        }
    }

    /// Every peer request in flight, as (peer, piece).
    pub fn peer_requests(&self) -> Vec<(ConnId, PieceIndex)> {
        self.asked
            .iter()
            .enumerate()
            .flat_map(|(p, v)| v.iter().map(move |c| (*c, p as PieceIndex)))
            .collect()
    }

    /// A peer on our version joined with the pieces it holds.
    pub fn peer_joined(&mut self, conn: ConnId, have: Bitfield) {
        self.peer_left(conn);
        for i in 0..have.len().min(self.piece_count) {
            if have.has(i) {
                self.avail[i as usize] = self.avail[i as usize].saturating_add(1);
            }
        }
        let at = self.peers.partition_point(|p| p.conn < conn);
        self.peers.insert(
            at,
            PeerSlot {
                conn,
                have,
                strikes: 0,
                window: self.cfg.initial_window.max(1),
                refused: Bitfield::new(self.piece_count),
                sent: VecDeque::new(),
                last_delivery: Instant::ZERO,
            },
        );
        self.mark_peer(conn);
    }

    /// A peer announced a newly verified piece.
    pub fn peer_has(&mut self, conn: ConnId, piece: PieceIndex) {
        let pipeline = self.cfg.pipeline;
        let Some(p) = self.slot_mut(conn) else { return };
        if !p.have.set(piece) {
            return;
        }
        let room = p.has_room(pipeline);
        let i = piece as usize;
        self.avail[i] = self.avail[i].saturating_add(1);
        if self.wanted[i].is_some() {
            if self.is_idle(piece) {
                self.dirty_pieces.push(piece);
            } else if room {
                // Endgame may want a second copy from it.
                self.mark_peer(conn);
            }
        }
    }

    /// What a peer on our version holds, as it told us.
    pub fn peer_have(&self, conn: ConnId) -> Option<&Bitfield> {
        self.slot(conn).map(|p| &p.have)
    }

    /// Whether any peer on our version is connected.
    pub fn has_peers(&self) -> bool {
        !self.peers.is_empty()
    }

    /// Whether we asked `conn` for `piece` and are still waiting.
    pub fn is_requested_from(&self, conn: ConnId, piece: PieceIndex) -> bool {
        self.asked
            .get(piece as usize)
            .is_some_and(|v| v.contains(&conn))
    }

    /// A peer left (closed, dropped, or switched version). Its requests in
    /// flight are given up.
    pub fn peer_left(&mut self, conn: ConnId) {
        let Ok(at) = self.peers.binary_search_by_key(&conn, |p| p.conn) else {
            return;
        };
        let p = self.peers.remove(at);
        for i in 0..p.have.len().min(self.piece_count) {
            if p.have.has(i) {
                self.avail[i as usize] = self.avail[i as usize].saturating_sub(1);
            }
        }
        for (piece, _) in &p.sent {
            let asked = &mut self.asked[*piece as usize];
            asked.retain(|c| *c != conn);
            if asked.is_empty() {
                self.failed_at_peer[*piece as usize] = true;
                self.mark_idle(*piece);
            }
        }
        self.dirty_peers.retain(|c| *c != conn);
        // Pieces only it held may now need the origin.
        self.origin_dirty = true;
    }

    /// The peer would not serve `piece`: ask someone else, never it again
    /// for that piece on this connection.
    pub fn rejected(&mut self, conn: ConnId, piece: PieceIndex) {
        self.drop_request(conn, piece);
        if let Some(p) = self.slot_mut(conn) {
            p.refused.set(piece);
        }
        if self.asked[piece as usize].is_empty() {
            self.failed_at_peer[piece as usize] = true;
            self.mark_idle(piece);
        }
        self.origin_dirty = true;
    }

    fn drop_request(&mut self, conn: ConnId, piece: PieceIndex) -> bool {
        let Some(asked) = self.asked.get_mut(piece as usize) else {
            return false;
        };
        let before = asked.len();
        asked.retain(|c| *c != conn);
        if asked.len() == before {
            return false;
        }
        if let Some(p) = self.slot_mut(conn)
            && let Some(k) = p.sent.iter().position(|(x, _)| *x == piece)
        {
            p.sent.remove(k);
        }
        self.mark_peer(conn);
        true
    }

    /// `piece` was verified (from `from`, a peer, or `None` for the origin
    /// or local storage). Returns the other peers to send a `Cancel` to.
    pub fn piece_verified(
        &mut self,
        piece: PieceIndex,
        from: Option<ConnId>,
        now: Instant,
    ) -> Vec<ConnId> {
        if piece >= self.piece_count {
            return Vec::new();
        }
        if let Some(conn) = from {
            let (pipeline, target) = (self.cfg.pipeline, self.cfg.target_latency);
            if let Some(p) = self.slot_mut(conn)
                && let Some((_, sent)) = p.sent.iter().find(|(x, _)| *x == piece)
            {
                // Delay-based: a queue at the peer that answers within the
                // target may grow; one that does not shrinks, so pieces
                // wait here, free for whichever peer has room first.
                if now.saturating_since(*sent) <= target {
                    p.window = (p.window + 1).min(pipeline);
                } else {
                    p.window = p.window.saturating_sub(1).max(1);
                }
            }
            self.drop_request(conn, piece);
            if let Some(p) = self.slot_mut(conn) {
                // A delivered piece earns back trust lost to timeouts, and
                // the peer's queued requests get a fresh deadline (they wait
                // behind the ones it is sending).
                p.strikes = p.strikes.saturating_sub(1);
                p.last_delivery = p.last_delivery.max(now);
            }
            self.last_peer_progress = self.last_peer_progress.max(now);
        }
        let i = piece as usize;
        if self.wanted[i].take().is_some() {
            self.wanted_count -= 1;
        }
        self.failed_at_peer[i] = false;
        let others = std::mem::take(&mut self.asked[i]);
        for c in &others {
            if let Some(p) = self.slot_mut(*c)
                && let Some(k) = p.sent.iter().position(|(x, _)| *x == piece)
            {
                p.sent.remove(k);
            }
            self.mark_peer(*c);
        }
        others
    }

    /// The origin request finished (its pieces were verified or not by the
    /// caller, who reports each through `piece_verified` / `origin_failed`).
    pub fn origin_finished(&mut self, request: RequestId) -> Option<Range<PieceIndex>> {
        let k = self
            .origin_requests
            .iter()
            .position(|(r, _)| *r == request)?;
        let (_, range) = self.origin_requests.remove(k);
        for p in range.clone() {
            if self.at_origin[p as usize] == Some(request) {
                self.at_origin[p as usize] = None;
                self.mark_idle(p);
            }
        }
        self.origin_dirty = true;
        Some(range)
    }

    /// The earliest instant at which `poll` has something new to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let timeout = self.cfg.request_timeout;
        let req = self
            .peers
            .iter()
            .filter_map(|p| p.earliest_deadline(timeout))
            .min();
        // Idle pieces whose wait for a busy peer ends later; one already past
        // its deadline is blocked on origin slots and wakes with their answer.
        let waiting = self.wait_wake.filter(|t| *t > self.last_poll);
        let grace = self.grace_until.filter(|_| self.wanted_count > 0);
        [req, waiting, grace].into_iter().flatten().min()
    }

    /// Decides what to do at `now`; `map` tells asset boundaries for origin
    /// ranges.
    pub fn poll(&mut self, now: Instant, map: &PieceMap, rng: &mut Rng) -> Vec<Action> {
        let mut actions = Vec::new();
        self.last_poll = now;
        if self.no_holder_wait.is_none() {
            let w = self.cfg.origin_wait_with_peers.as_millis() as u64;
            self.no_holder_wait = Some(Duration::from_millis(w / 2 + rng.below(w.max(1))));
        }
        self.expire(now, &mut actions);
        if self.grace_until.is_some_and(|t| now >= t) {
            self.grace_until = None;
            self.origin_dirty = true;
        }
        if self.wait_wake.is_some_and(|t| now >= t) {
            self.origin_dirty = true;
        }
        if self.peers_were_busy && !self.peers_busy() {
            self.origin_dirty = true;
        }
        let mut candidates = std::mem::take(&mut self.dirty_pieces);
        let dirty_peers = std::mem::take(&mut self.dirty_peers);
        if self.wanted_count == 0 {
            self.origin_dirty = false;
            self.wait_wake = None;
            return actions;
        }

        // Rule 2 for what changed: the pieces that became idle or gained a
        // holder, and every idle piece a peer with new room holds.
        let pipeline = self.cfg.pipeline;
        for conn in &dirty_peers {
            if let Some(p) = self.slot(*conn)
                && p.has_room(pipeline)
            {
                candidates
                    .extend((0..self.piece_count).filter(|&i| self.is_idle(i) && p.offers(i)));
            }
        }
        // Rule 1: page order, then rarest, then index.
        candidates.sort_unstable_by_key(|&p| {
            let prio = self.wanted[p as usize].map_or(u64::MAX, |w| w.priority);
            (prio, self.avail[p as usize], p)
        });
        candidates.dedup();
        let changed = !candidates.is_empty() || !dirty_peers.is_empty();
        for piece in candidates {
            if self.is_idle(piece)
                && let Some(conn) = self.pick_peer(piece, rng)
            {
                self.send_request(conn, piece, now, &mut actions);
            }
        }

        // Rule 3, only when it can have changed.
        if self.origin_dirty {
            self.origin_dirty = false;
            self.wait_wake = None;
            if self.origin_requests.len() < self.origin_slots() {
                let to_origin = self.origin_candidates(now);
                self.plan_origin(to_origin, map, rng, &mut actions);
            }
        }
        if changed {
            self.endgame(now, rng, &mut actions);
        }
        self.peers_were_busy = self.peers_busy();
        actions
    }

    /// Whether any peer request is in flight.
    fn peers_busy(&self) -> bool {
        self.peers.iter().any(|p| !p.sent.is_empty())
    }

    /// Origin requests allowed in flight now.
    fn origin_slots(&self) -> usize {
        if self.peers.is_empty() {
            self.cfg.max_origin_requests
        } else {
            self.cfg
                .origin_requests_with_peers
                .min(self.cfg.max_origin_requests)
        }
    }

    /// Idle pieces that should go to the origin now; notes when the next
    /// one will.
    fn origin_candidates(&mut self, now: Instant) -> Vec<(PieceIndex, OriginReason)> {
        let in_grace = self.in_grace(now);
        let peers_busy = self.peers_busy();
        let no_holder_wait = self
            .no_holder_wait
            .unwrap_or(self.cfg.origin_wait_with_peers);
        let mut out = Vec::new();
        let mut wake: Option<Instant> = None;
        for piece in 0..self.piece_count {
            if !self.is_idle(piece) {
                continue;
            }
            let i = piece as usize;
            let since = self.wanted[i].expect("idle pieces are wanted").since;
            let held_by_someone = self.avail[i] > 0 && self.peers.iter().any(|p| p.offers(piece));
            let go = if self.failed_at_peer[i] {
                Some(OriginReason::PeerFailed)
            } else if !self.peers.is_empty() {
                // A busy peer has it, or a neighbour may soon: wait for them.
                let (t, reason) = if held_by_someone {
                    (
                        since.max(self.last_peer_progress) + self.cfg.piece_deadline,
                        OriginReason::HolderBusy,
                    )
                } else if peers_busy {
                    // Peers keep us busy: leave the origin to neighbours
                    // who have run out of things peers can give them.
                    let t = (since + no_holder_wait)
                        .max(self.last_peer_progress + self.cfg.piece_deadline);
                    (t, OriginReason::NoHolder)
                } else {
                    (since + no_holder_wait, OriginReason::NoHolder)
                };
                if now < t {
                    wake = Some(wake.map_or(t, |w| w.min(t)));
                }
                (now >= t).then_some(reason)
            } else {
                (!in_grace).then_some(OriginReason::Alone)
            };
            if let Some(reason) = go {
                out.push((piece, reason));
            }
        }
        self.wait_wake = wake;
        out
    }

    fn expire(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let timeout = self.cfg.request_timeout;
        if !self
            .peers
            .iter()
            .any(|p| p.earliest_deadline(timeout).is_some_and(|d| d <= now))
        {
            return;
        }
        let mut expired: Vec<(PieceIndex, ConnId)> = Vec::new();
        for p in &self.peers {
            for (piece, sent) in &p.sent {
                if p.deadline(*sent, timeout) <= now {
                    expired.push((*piece, p.conn));
                }
            }
        }
        expired.sort_unstable();
        // One strike per peer per pass: a stall that expires a whole
        // pipeline at once is one failure, not sixteen.
        let mut struck: Vec<ConnId> = Vec::new();
        let max_strikes = self.cfg.max_strikes;
        for (piece, conn) in expired {
            self.drop_request(conn, piece);
            actions.push(Action::Cancel { conn, piece });
            let first = !struck.contains(&conn);
            if let Some(p) = self.slot_mut(conn) {
                // It had its chance at this piece.
                p.refused.set(piece);
                if first {
                    p.strikes += 1;
                    if p.strikes == max_strikes {
                        actions.push(Action::Drop { conn });
                    }
                }
            }
            if first {
                struck.push(conn);
            }
            if self.asked[piece as usize].is_empty() {
                self.failed_at_peer[piece as usize] = true;
                self.mark_idle(piece);
            }
            self.origin_dirty = true;
        }
    }

    fn pick_peer(&self, piece: PieceIndex, rng: &mut Rng) -> Option<ConnId> {
        let mut best: Option<((u32, usize), ConnId)> = None;
        let mut ties = 0u64;
        for p in &self.peers {
            if !p.can_take(piece, self.cfg.pipeline) {
                continue;
            }
            let key = (p.strikes, p.in_flight());
            match &best {
                Some((k, _)) if key > *k => {}
                Some((k, _)) if key == *k => {
                    // Reservoir sampling keeps the tie-break uniform.
                    ties += 1;
                    if rng.below(ties + 1) == 0 {
                        best = Some((key, p.conn));
                    }
                }
                _ => {
                    best = Some((key, p.conn));
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
        self.asked[piece as usize].push(conn);
        if let Some(p) = self.slot_mut(conn) {
            p.sent.push_back((piece, now));
        }
        actions.push(Action::Request { conn, piece });
    }

    /// Groups pieces into contiguous same-asset runs, one origin request each.
    fn plan_origin(
        &mut self,
        mut pieces: Vec<(PieceIndex, OriginReason)>,
        map: &PieceMap,
        rng: &mut Rng,
        actions: &mut Vec<Action>,
    ) {
        pieces.sort_unstable_by_key(|(p, _)| *p);
        let (slots, max_run) = if self.peers.is_empty() {
            (self.cfg.max_origin_requests, self.cfg.max_origin_run)
        } else {
            // Neighbours trade what each fetched: start somewhere random.
            if !pieces.is_empty() {
                let k = rng.below(pieces.len() as u64) as usize;
                pieces.rotate_left(k);
            }
            (
                self.origin_slots(),
                self.cfg.origin_run_with_peers.min(self.cfg.max_origin_run),
            )
        };
        let mut i = 0;
        while i < pieces.len() && self.origin_requests.len() < slots {
            let start = pieces[i].0;
            let asset = map.get(start).map(|p| p.asset);
            let mut reasons = OriginReasons::default();
            reasons.count(pieces[i].1);
            let mut end = start + 1;
            i += 1;
            while i < pieces.len()
                && pieces[i].0 == end
                && end - start < max_run
                && map.get(end).map(|p| p.asset) == asset
            {
                reasons.count(pieces[i].1);
                end += 1;
                i += 1;
            }
            let request = RequestId(self.next_request);
            self.next_request += 1;
            for p in start..end {
                self.at_origin[p as usize] = Some(request);
                self.failed_at_peer[p as usize] = false;
            }
            self.origin_requests.push((request, start..end));
            actions.push(Action::Origin {
                request,
                pieces: start..end,
                reasons,
            });
        }
    }

    fn endgame(&mut self, now: Instant, rng: &mut Rng, actions: &mut Vec<Action>) {
        let n = self.piece_count;
        if (0..n).any(|p| self.is_idle(p)) {
            return;
        }
        let pipeline = self.cfg.pipeline;
        if !self.peers.iter().any(|p| p.has_room(pipeline)) {
            return;
        }
        for piece in 0..n {
            let i = piece as usize;
            if self.wanted[i].is_none()
                || self.asked[i].is_empty()
                || self.asked[i].len() >= self.cfg.endgame_copies
            {
                continue;
            }
            let asked = &self.asked[i];
            let mut pool: Vec<ConnId> = self
                .peers
                .iter()
                .filter(|p| !asked.contains(&p.conn) && p.can_take(piece, pipeline))
                .map(|p| p.conn)
                .collect();
            if !pool.is_empty() {
                let conn = pool.swap_remove(rng.below(pool.len() as u64) as usize);
                self.send_request(conn, piece, now, actions);
            }
        }
    }
}
