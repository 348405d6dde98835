//! The current manifest version: its piece map and store, the scheduler
//! of that version, origin requests, delivering the page's tickets, and the
//! switch to a successor version (pieces whose hash did not change are
//! kept).

use std::ops::Range;

use bytes::Bytes;

use super::checks::HashFor;
use super::peer::Phase;
use super::{AssetError, Body, Client, CloseReason, OriginError, Output, Ticket};
use crate::manifest::VerifiedManifest;
use crate::piece::{Bitfield, Digest, PieceIndex, PieceMap};
use crate::scheduler::{Action, ConnId, RequestId, Scheduler};
use crate::signal::{InfoHash, swarm_id};
use crate::time::Instant;
use crate::vec_map::{VecMap, VecSet};
use crate::wire::{Frame, manifest_offer_frames};

/// The pieces of the current manifest version.
#[derive(Debug)]
pub(super) struct Site {
    pub(super) manifest: VerifiedManifest,
    pub(super) map: PieceMap,
    pub(super) store: PieceStore,
    pub(super) scheduler: Scheduler,
    pub(super) info_hash: InfoHash,
    pub(super) origin_attempts: VecMap<PieceIndex, u32>,
    /// Origin requests in flight. Their ids are unique across versions (the
    /// scheduler of each version starts where the last one stopped), so a
    /// late answer for an older version is never taken for one of this one.
    pub(super) origin_requests: VecMap<RequestId, OriginFetch>,
}

/// What we hold of one manifest version: the verified bytes of each piece
/// and which pieces those are. The one owner of both, so they cannot
/// disagree; the scheduler never holds a copy.
#[derive(Debug)]
pub(super) struct PieceStore {
    pieces: Vec<Option<Bytes>>,
    have: Bitfield,
}

impl PieceStore {
    pub(super) fn new(piece_count: u32) -> PieceStore {
        PieceStore {
            pieces: vec![None; piece_count as usize],
            have: Bitfield::new(piece_count),
        }
    }

    /// Which pieces are held (and verified).
    pub(super) fn have(&self) -> &Bitfield {
        &self.have
    }

    pub(super) fn has(&self, piece: PieceIndex) -> bool {
        self.have.has(piece)
    }

    /// The bytes of a held piece: the shared buffer, not a copy.
    pub(super) fn get(&self, piece: PieceIndex) -> Option<&Bytes> {
        self.pieces.get(piece as usize)?.as_ref()
    }

    /// Keeps a verified piece; false if it was held already (or is out of
    /// range).
    pub(super) fn insert(&mut self, piece: PieceIndex, data: Bytes) -> bool {
        if piece >= self.have.len() || !self.have.set(piece) {
            return false;
        }
        self.pieces[piece as usize] = Some(data);
        true
    }
}

/// An origin request: its pieces, and, once answered, the pieces still
/// being hashed and the first failure.
#[derive(Debug)]
pub(super) struct OriginFetch {
    pub(super) pieces: Range<PieceIndex>,
    pub(super) hashing: u32,
    pub(super) bad: Option<String>,
}

impl Site {
    /// Tells the scheduler that `ticket` waits for the pieces of `asset` we
    /// do not hold.
    fn want_asset(&mut self, asset: u32, ticket: Ticket, now: Instant) {
        for piece in self.map.asset_pieces(asset) {
            if !self.store.has(piece) {
                self.scheduler.want(piece, ticket.0, now);
            }
        }
    }

    pub(super) fn version(&self) -> u64 {
        self.manifest.version()
    }
    pub(super) fn have(&self) -> &Bitfield {
        self.store.have()
    }
}

impl Client {
    /// [`Input::AssetHeld`](super::Input::AssetHeld): keeps the pieces of
    /// a whole asset the driver holds that pass their hash.
    pub(super) fn add_asset(&mut self, now: Instant, path: &str, bytes: &Bytes) {
        let Some(site) = &self.site else { return };
        let Some((ai, _)) = site.manifest.manifest().asset(path) else {
            return;
        };
        for piece in site.map.asset_pieces(ai as u32) {
            let p = self.piece_ref(piece);
            let start = p.offset as usize;
            let end = start + p.len as usize;
            if end > bytes.len() {
                continue;
            }
            let data = bytes.slice(start..end);
            if self
                .site
                .as_ref()
                .is_some_and(|s| s.map.verify(piece, &data).is_ok())
            {
                self.store_piece(now, piece, data, None);
            }
        }
        self.drive(now);
    }

    /// [`Input::Want`](super::Input::Want): the answer comes as
    /// [`Output::Deliver`] or [`Output::Failed`] with the driver's ticket.
    pub(super) fn want(&mut self, now: Instant, ticket: Ticket, path: String) {
        let refused = match &mut self.site {
            _ if self.tickets.contains_key(&ticket) => Some(AssetError::TicketInUse(ticket.0)),
            None => Some(AssetError::NoManifest),
            Some(site) => match site.manifest.manifest().asset(&path) {
                None => Some(AssetError::NotListed(path.clone())),
                Some((ai, _)) => {
                    site.want_asset(ai as u32, ticket, now);
                    self.tickets.insert(ticket, (path, ai as u32));
                    None
                }
            },
        };
        if let Some(error) = refused {
            self.outputs.push_back(Output::Failed { ticket, error });
            return;
        }
        self.deliver_ready(None);
        self.drive(now);
    }

    /// The origin answered the fetch `request` with the bytes of its range,
    /// or failed.
    pub(super) fn handle_origin(
        &mut self,
        now: Instant,
        request: RequestId,
        result: Result<Bytes, OriginError>,
    ) {
        let Some(site) = &mut self.site else { return };
        let Some(fetch) = site.origin_requests.get_mut(&request) else {
            return;
        };
        if fetch.hashing > 0 {
            return; // answered twice
        }
        let pieces = fetch.pieces.clone();
        match result {
            Ok(body) => {
                fetch.hashing = pieces.len() as u32;
                let base = site.map.get(pieces.start).map_or(0, |p| p.offset);
                for piece in pieces {
                    let p = self.piece_ref(piece);
                    let from = (p.offset - base) as usize;
                    let to = from + p.len as usize;
                    let data = if to <= body.len() {
                        body.slice(from..to)
                    } else {
                        Bytes::new()
                    };
                    self.verify_piece(now, piece, data, HashFor::Origin(request));
                }
            }
            Err(e) => {
                site.origin_requests.remove(&request);
                site.scheduler.origin_finished(request);
                for piece in pieces {
                    self.origin_failed(piece);
                }
                self.fail_exhausted(&e.0);
            }
        }
        self.drive(now);
    }

    pub(super) fn schedule(&mut self, now: Instant) {
        let Some(site) = &mut self.site else { return };
        let actions = site.scheduler.poll(now, &site.map, &mut self.rng);
        for action in actions {
            match action {
                Action::Request { conn, piece } => {
                    if let Some(p) = self.peers.get_mut(&conn) {
                        p.cancelled.remove(&piece);
                    }
                    self.send(conn, Frame::Request { piece });
                }
                Action::Cancel { conn, piece } => {
                    self.stats.request_timeouts += 1;
                    self.cancel(conn, piece);
                }
                Action::Drop { conn } => self.close(conn, CloseReason::Unresponsive),
                Action::Origin {
                    request,
                    pieces,
                    reasons,
                } => {
                    self.stats.origin_reasons.add(&reasons);
                    let site = self.site.as_mut().expect("site");
                    let first = *site.map.get(pieces.start).expect("piece");
                    let last = *site.map.get(pieces.end - 1).expect("piece");
                    let asset = &site.manifest.manifest().assets[first.asset as usize];
                    site.origin_requests.insert(
                        request,
                        OriginFetch {
                            pieces: pieces.clone(),
                            hashing: 0,
                            bad: None,
                        },
                    );
                    self.next_request = self.next_request.max(request.0 + 1);
                    self.outputs.push_back(Output::FetchOrigin {
                        request,
                        path: asset.path.clone(),
                        range: first.offset..last.offset + u64::from(last.len),
                    });
                }
            }
        }
    }

    /// Where a piece of the current manifest lives (callers hold a valid index).
    pub(super) fn piece_ref(&self, piece: PieceIndex) -> crate::piece::PieceRef {
        *self
            .site
            .as_ref()
            .and_then(|s| s.map.get(piece))
            .expect("a piece of the current manifest")
    }

    /// Stores a verified piece, tells peers, delivers finished assets.
    /// Returns whether the piece was new.
    pub(super) fn store_piece(
        &mut self,
        now: Instant,
        piece: PieceIndex,
        data: Bytes,
        from: Option<ConnId>,
    ) -> bool {
        let site = self.site.as_mut().expect("site");
        let asset = site.map.get(piece).map(|p| p.asset);
        if !site.store.insert(piece, data) {
            return false;
        }
        site.origin_attempts.remove(&piece);
        let losers = site.scheduler.piece_verified(piece, from, now);
        let version = site.version();
        for conn in losers {
            self.cancel(conn, piece);
        }
        // A peer that holds the piece already has no use for the news: on a
        // transfer from a seed this halves the messages flowing back.
        let scheduler = &self.site.as_ref().expect("site").scheduler;
        let targets: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| matches!(p.phase, Phase::Active { version: v } if v == version))
            .filter(|(c, _)| !scheduler.peer_have(**c).is_some_and(|h| h.has(piece)))
            .map(|(c, _)| *c)
            .collect();
        for conn in targets {
            self.send(conn, Frame::Have { piece });
        }
        self.deliver_ready(asset);
        true
    }

    pub(super) fn count_asset(&mut self, asset: u32, peers: u64, origin: u64) {
        let Some(site) = &self.site else { return };
        let path = &site.manifest.manifest().assets[asset as usize].path;
        // Look up before inserting: no path allocation per piece.
        if !self.stats.per_asset.contains_key(path) {
            self.stats.per_asset.insert(path.clone(), (0, 0));
        }
        let e = self.stats.per_asset.get_mut(path).expect("inserted");
        e.0 += peers;
        e.1 += origin;
    }

    pub(super) fn origin_failed(&mut self, piece: PieceIndex) {
        if let Some(site) = &mut self.site {
            *site.origin_attempts.get_or_insert_with(piece, || 0) += 1;
        }
    }

    /// Fails the tickets whose pieces the origin could not give in
    /// `origin_attempts` tries.
    pub(super) fn fail_exhausted(&mut self, reason: &str) {
        let Some(site) = &mut self.site else { return };
        let limit = self.config.origin_attempts;
        let dead: VecSet<u32> = site
            .origin_attempts
            .iter()
            .filter(|(_, n)| **n >= limit)
            .filter_map(|(p, _)| site.map.get(*p).map(|r| r.asset))
            .collect();
        if dead.is_empty() {
            return;
        }
        let failed: Vec<(Ticket, String)> = self
            .tickets
            .iter()
            .filter(|(_, (_, a))| dead.contains(a))
            .map(|(t, (p, _))| (*t, p.clone()))
            .collect();
        for (ticket, path) in failed {
            self.tickets.remove(&ticket);
            self.outputs.push_back(Output::Failed {
                ticket,
                error: AssetError::Unavailable {
                    path,
                    reason: reason.to_owned(),
                },
            });
        }
        // Stop fetching pieces nobody waits for any more.
        let still: VecSet<u32> = self.tickets.values().map(|(_, a)| *a).collect();
        let site = self.site.as_mut().expect("site");
        for asset in dead.iter().filter(|a| !still.contains(a)) {
            for piece in site.map.asset_pieces(*asset) {
                site.origin_attempts.remove(&piece);
            }
        }
        let (map, sched) = (&site.map, &mut site.scheduler);
        for asset in dead.iter().filter(|a| !still.contains(a)) {
            for piece in map.asset_pieces(*asset) {
                sched.unwant(piece);
            }
        }
    }

    /// Delivers the tickets whose asset is complete (only those for `asset`
    /// if given: the one a new piece belongs to).
    pub(super) fn deliver_ready(&mut self, asset: Option<u32>) {
        let Some(site) = &self.site else { return };
        let ready: Vec<(Ticket, String, u32)> = self
            .tickets
            .iter()
            .filter(|(_, (_, a))| asset.is_none_or(|x| x == *a))
            .filter(|(_, (_, a))| site.map.asset_pieces(*a).all(|p| site.have().has(p)))
            .map(|(t, (p, a))| (*t, p.clone(), *a))
            .collect();
        for (ticket, path, asset) in ready {
            self.tickets.remove(&ticket);
            self.load_delivered = true;
            let body = assemble(site, asset).expect("all pieces held");
            let content_type = site.manifest.manifest().assets[asset as usize]
                .content_type
                .clone();
            self.outputs.push_back(Output::Deliver {
                ticket,
                path,
                content_type,
                body,
                version: site.manifest.version(),
            });
        }
    }

    /// Makes `verified` the current version: reuses pieces whose hash did
    /// not change, re-targets the page's open tickets (only when the page
    /// load outlived `max_switch_delay`; otherwise none are open), re-handshakes
    /// peers and moves to the new version's swarm.
    pub(super) fn switch_site(&mut self, now: Instant, verified: VerifiedManifest) {
        // Queued uploads name pieces of the old version: refuse them before
        // the new handshake (indices mean other bytes, or nothing, after it).
        self.reject_queued_uploads();
        for p in self.peers.values_mut() {
            p.sent = VecSet::new();
        }
        let map = PieceMap::new(verified.manifest());
        let mut tuning = if verified.manifest().origin_under_pressure() {
            self.config.scheduler_under_pressure.clone()
        } else {
            self.config.scheduler.clone()
        };
        let new_version = verified.version();
        // A live update: the peers we are connected to got the same push and
        // are switching too (some may be on the new version already). Pieces
        // nobody has yet wait out the discovery grace for them (and for
        // seeders, who fetch at once) instead of every client asking the
        // origin in the same instant.
        let switching: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| matches!(p.phase, Phase::Active { version } if version < new_version))
            .map(|(c, _)| *c)
            .collect();
        // A page still waiting for an earlier version's asset has waited
        // long enough: no second grace.
        let live_update = self.site.is_some()
            && self.tickets.is_empty()
            && self
                .peers
                .values()
                .any(|p| matches!(p.phase, Phase::Active { .. }));
        if live_update {
            tuning.await_swarm = true;
        }
        let mut scheduler = Scheduler::new(tuning, map.len(), now, RequestId(self.next_request));
        let mut store = PieceStore::new(map.len());
        if let Some(old) = self.site.take() {
            // Answers to the old version's requests may still arrive: expect them.
            for (conn, piece) in old.scheduler.peer_requests() {
                self.cancel(conn, piece);
            }
            // Sorted once, searched per new piece: n log n for big sites.
            let mut by_hash: Vec<(Digest, &Bytes)> = (0..old.map.len())
                .filter_map(|i| Some((old.map.get(i)?.hash, old.store.get(i)?)))
                .collect();
            by_hash.sort_unstable_by_key(|(h, _)| *h);
            for i in 0..map.len() {
                let p = map.get(i).expect("in range");
                let held = by_hash
                    .binary_search_by_key(&p.hash, |(h, _)| *h)
                    .ok()
                    .map(|j| by_hash[j].1);
                if let Some(data) = held.filter(|d| d.len() == p.len as usize) {
                    store.insert(i, data.clone());
                }
            }
            // Until their handshake on the new version they hold nothing of it
            // (peers already on it are added with what they hold, below).
            // What they hold of the old version moves to them from its
            // scheduler: it is their version now, not ours.
            for conn in &switching {
                scheduler.peer_joined(*conn, Bitfield::new(map.len()));
                if let (Some(have), Some(peer)) =
                    (old.scheduler.peer_have(*conn), self.peers.get_mut(conn))
                {
                    peer.their_have = Some(have.clone());
                }
            }
        }
        if self.tracker.unavailable {
            scheduler.end_grace();
        }
        // Peers already on the new version: what they hold of it moves to
        // the new version's scheduler, its one keeper from now on.
        for (conn, peer) in self.peers.iter_mut() {
            if matches!(peer.phase, Phase::Active { version } if version == new_version)
                && peer
                    .their_have
                    .as_ref()
                    .is_some_and(|h| h.len() == map.len())
            {
                let have = peer.their_have.take().expect("checked");
                scheduler.peer_joined(*conn, have);
            }
        }
        let info_hash = swarm_id(self.guard.site_key(), verified.version());
        // Pieces being hashed belong to the old version.
        self.hashing.clear();
        self.site = Some(Site {
            manifest: verified,
            map,
            store,
            scheduler,
            info_hash,
            origin_attempts: VecMap::new(),
            origin_requests: VecMap::new(),
        });
        // Re-target tickets by path.
        let tickets: Vec<(Ticket, String)> = self
            .tickets
            .iter()
            .map(|(t, (p, _))| (*t, p.clone()))
            .collect();
        for (ticket, path) in tickets {
            let site = self.site.as_mut().expect("site");
            match site.manifest.manifest().asset(&path) {
                Some((ai, _)) => {
                    self.tickets.insert(ticket, (path, ai as u32));
                    site.want_asset(ai as u32, ticket, now);
                }
                None => {
                    self.tickets.remove(&ticket);
                    self.outputs.push_back(Output::Failed {
                        ticket,
                        error: AssetError::NoLongerListed(path),
                    });
                }
            }
        }
        self.deliver_ready(None);
        // Tell open peers: a new handshake, and the manifest to those behind.
        let open: Vec<(ConnId, Option<u64>)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.is_open())
            .map(|(c, p)| {
                (
                    *c,
                    if let Phase::Active { version } = p.phase {
                        Some(version)
                    } else {
                        None
                    },
                )
            })
            .collect();
        let handshake = self.handshake_frame().expect("site set");
        let site = self.site.as_ref().expect("site");
        let version = site.version();
        let offer = manifest_offer_frames(version, &site.manifest.signed().to_bytes());
        for (conn, their) in open {
            self.send(conn, handshake.clone());
            self.remember_told(conn);
            if their.is_some_and(|v| v < version) {
                for f in &offer {
                    self.send(conn, f.clone());
                }
            }
            // Their bitfield for the new version comes with their next handshake.
        }
        if self.tracker.connected {
            self.tracker.next_announce = Some(now);
            self.tracker.draft = None;
        }
    }
}

pub(super) fn assemble(site: &Site, asset: u32) -> Option<Body> {
    let range = site.map.asset_pieces(asset);
    let mut pieces = Vec::with_capacity(range.len());
    let mut len = 0;
    for piece in range {
        let p = site.store.get(piece)?.clone();
        len += p.len();
        pieces.push(p);
    }
    Some(Body { pieces, len })
}
