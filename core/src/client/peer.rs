//! One remote peer: how its connection is being set up (its phase), the
//! per-peer `peerhost/1` conversation (handshake, have, request, piece,
//! cancel, reject, manifest offers), its upload queue, and closing or
//! banning it.

use std::collections::VecDeque;

use bytes::Bytes;

use super::checks::{HashFor, MAX_PENDING_SIGNATURES};
use super::{Client, CloseReason, Event, ManifestSource, Misbehaviour, Output};
use crate::manifest::{ManifestError, SignedManifest};
use crate::piece::{Bitfield, PieceIndex};
use crate::scheduler::ConnId;
use crate::signal::{InfoHash, OfferId, PeerId};
use crate::time::Instant;
use crate::upload::Allowance;
use crate::vec_map::VecSet;
use crate::wire::{Frame, MAX_MANIFEST_LEN, MAX_REQUESTS_IN_FLIGHT, manifest_offer_frames};

/// How a connection is being set up, or that it is up.
#[derive(Debug, Clone)]
pub(super) enum Phase {
    /// We asked the driver for an offer.
    MakingOffer,
    /// Our offer is at the tracker, waiting for an answer.
    Offered { offer_id: OfferId, expires: Instant },
    /// We asked the driver to answer a remote offer.
    MakingAnswer {
        remote: PeerId,
        offer_id: OfferId,
        info_hash: InfoHash,
    },
    /// SDP exchanged; waiting for the channel to open.
    Connecting { deadline: Instant },
    /// Channel open; our handshake sent, theirs awaited.
    AwaitingHandshake { deadline: Instant },
    /// Handshaken.
    Active { version: u64 },
}

/// A manifest offer being received from one peer.
#[derive(Debug)]
pub(super) enum ManifestIn {
    /// None under way.
    None,
    /// Chunks so far of `version`, announced as `total` bytes. The buffer
    /// grows as chunks arrive: the announced length reserves nothing.
    Assembling {
        version: u64,
        total: u32,
        bytes: Vec<u8>,
    },
    /// Dropped for the all-peers cap: its remaining chunks are ignored
    /// until the peer starts another offer.
    Dropped,
}

impl ManifestIn {
    /// Bytes held.
    pub(super) fn held(&self) -> usize {
        match self {
            ManifestIn::Assembling { bytes, .. } => bytes.capacity(),
            _ => 0,
        }
    }
}

#[derive(Debug)]
pub(super) struct Peer {
    pub(super) remote: Option<PeerId>,
    pub(super) phase: Phase,
    /// Pieces we cancelled: a late copy is ignored, not a violation.
    pub(super) cancelled: VecSet<PieceIndex>,
    /// Their requests, queued until the upload budget allows, with each
    /// piece's length (bounded by the config's `max_queued_upload_bytes*`).
    pub(super) uploads: VecDeque<(PieceIndex, u32)>,
    /// Pieces of our current version sent to them and not cancelled since:
    /// a second request for one is dropped (the channel is reliable, so
    /// only a peer making us repeat work asks again).
    pub(super) sent: VecSet<PieceIndex>,
    /// A newer manifest they are sending us.
    pub(super) manifest_in: ManifestIn,
    /// What they hold of their own version while it is not ours (so that
    /// switching to it needs no new handshake from them). While it is ours,
    /// the scheduler of our version keeps it instead: one keeper at a time.
    pub(super) their_have: Option<Bitfield>,
    /// What our last handshake to them said we hold, until theirs on our
    /// version arrives (pieces stored in between are announced then).
    pub(super) told: Option<Bitfield>,
}

impl Peer {
    pub(super) fn new(remote: Option<PeerId>, phase: Phase) -> Peer {
        Peer {
            remote,
            phase,
            cancelled: VecSet::new(),
            uploads: VecDeque::new(),
            sent: VecSet::new(),
            manifest_in: ManifestIn::None,
            their_have: None,
            told: None,
        }
    }
    pub(super) fn is_open(&self) -> bool {
        matches!(
            self.phase,
            Phase::AwaitingHandshake { .. } | Phase::Active { .. }
        )
    }

    /// Answered (or answering) and not yet past the handshake.
    pub(super) fn on_the_way(&self) -> bool {
        matches!(
            self.phase,
            Phase::MakingAnswer { .. } | Phase::Connecting { .. } | Phase::AwaitingHandshake { .. }
        )
    }
}

impl Client {
    /// The data channel of `conn` opened.
    pub(super) fn handle_peer_open(&mut self, now: Instant, conn: ConnId) {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        if peer.is_open() {
            // Reported twice (an answerer may see its channel already open
            // and then get the open event too): one handshake is enough.
            return;
        }
        peer.phase = Phase::AwaitingHandshake {
            deadline: now + self.config.connect_timeout,
        };
        if let Some(frame) = self.handshake_frame() {
            self.send(conn, frame);
            self.remember_told(conn);
        }
        self.drive(now);
    }

    /// The connection closed (remote close, ICE failure, channel error).
    pub(super) fn handle_peer_closed(&mut self, now: Instant, conn: ConnId) {
        self.forget(conn);
        self.reannounce_if_lonely(now);
        self.drive(now);
    }

    /// One data-channel message from `conn`.
    pub(super) fn handle_peer_frame(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        if !self.peers.get(&conn).is_some_and(Peer::is_open) {
            return;
        }
        match Frame::decode(bytes) {
            Ok(frame) => self.on_checked_frame(now, conn, frame),
            Err(e) => self.ban(conn, Misbehaviour::MalformedFrame(e)),
        }
        self.drive(now);
    }

    /// One frame from `conn`, passed as a value by an in-memory driver (the
    /// simulator): checked against the decoder's limits, then handled as
    /// [`Client::handle_peer_frame`] would. Piece data is kept, not copied.
    pub(super) fn handle_peer_message(&mut self, now: Instant, conn: ConnId, frame: Frame) {
        if !self.peers.get(&conn).is_some_and(Peer::is_open) {
            return;
        }
        match frame.check() {
            Ok(()) => self.on_checked_frame(now, conn, frame),
            Err(e) => self.ban(conn, Misbehaviour::MalformedFrame(e)),
        }
        self.drive(now);
    }

    pub(super) fn on_checked_frame(&mut self, now: Instant, conn: ConnId, frame: Frame) {
        if let Err(m) = self.on_frame(now, conn, frame) {
            self.ban(conn, m);
        }
    }

    pub(super) fn new_conn(&mut self, remote: Option<PeerId>, phase: Phase) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.peers.insert(conn, Peer::new(remote, phase));
        conn
    }

    /// Notes what the handshake just sent to `conn` said we hold.
    pub(super) fn remember_told(&mut self, conn: ConnId) {
        let have = self.site.as_ref().map(|s| s.have().clone());
        if let Some(p) = self.peers.get_mut(&conn) {
            p.told = have;
        }
    }

    pub(super) fn handshake_frame(&self) -> Option<Frame> {
        let site = self.site.as_ref()?;
        Some(Frame::Handshake {
            site_key: *self.guard.site_key().as_bytes(),
            version: site.version(),
            piece_count: site.map.len(),
            have: site.have().as_bytes().to_vec(),
        })
    }

    pub(super) fn send(&mut self, conn: ConnId, frame: Frame) {
        if self.peers.get(&conn).is_some_and(Peer::is_open) {
            self.outputs.push_back(Output::SendPeer { conn, frame });
        }
    }

    /// Removes a connection without telling the driver (it told us).
    pub(super) fn forget(&mut self, conn: ConnId) {
        if let Some(peer) = self.peers.remove(&conn) {
            if let Phase::Offered { offer_id, .. } = peer.phase {
                self.tracker.offers.remove(&offer_id);
            }
            if let Some(s) = &mut self.site {
                s.scheduler.peer_left(conn);
            }
        }
    }

    pub(super) fn close(&mut self, conn: ConnId, reason: CloseReason) {
        if self.peers.contains_key(&conn) {
            self.forget(conn);
            self.outputs.push_back(Output::ClosePeer { conn, reason });
        }
    }

    pub(super) fn ban(&mut self, conn: ConnId, reason: Misbehaviour) {
        let peer = self.peers.get(&conn).and_then(|p| p.remote);
        if let Some(id) = peer {
            self.banned.insert(id);
        }
        self.stats.peers_banned += 1;
        self.outputs.push_back(Output::Event(Event::PeerBanned {
            conn,
            peer,
            reason: reason.clone(),
        }));
        self.close(conn, CloseReason::Misbehaved(reason));
    }

    pub(super) fn cancel(&mut self, conn: ConnId, piece: PieceIndex) {
        if let Some(p) = self.peers.get_mut(&conn) {
            p.cancelled.insert(piece);
        }
        self.send(conn, Frame::Cancel { piece });
    }

    pub(super) fn on_frame(
        &mut self,
        now: Instant,
        conn: ConnId,
        frame: Frame,
    ) -> Result<(), Misbehaviour> {
        let peer = self.peers.get(&conn).expect("open peer");
        let active_version = match peer.phase {
            Phase::Active { version } => Some(version),
            _ => None,
        };
        if active_version.is_none() && !matches!(frame, Frame::Handshake { .. }) {
            return Err(Misbehaviour::Protocol("frame before handshake"));
        }
        let site_version = self.site.as_ref().map(|s| s.version());
        let same_version = active_version.is_some() && active_version == site_version;
        match frame {
            Frame::Handshake {
                site_key,
                version,
                piece_count,
                have,
            } => {
                if site_key != *self.guard.site_key().as_bytes() {
                    self.close(conn, CloseReason::WrongSite);
                    return Ok(());
                }
                let have = Bitfield::from_bytes(piece_count, &have)
                    .ok_or(Misbehaviour::Protocol("bad bitfield"))?;
                let site = self.site.as_mut().expect("handshakes only with a site");
                // A repeated handshake replaces what we knew of the peer;
                // answers to requests already sent are still welcome.
                let in_flight: Vec<PieceIndex> = site
                    .scheduler
                    .peer_requests()
                    .into_iter()
                    .filter(|(c, _)| *c == conn)
                    .map(|(_, p)| p)
                    .collect();
                site.scheduler.peer_left(conn);
                let peer = self.peers.get_mut(&conn).expect("open peer");
                peer.cancelled.extend(in_flight);
                // A new handshake starts their view afresh: what we sent
                // before may be asked for again.
                peer.sent = VecSet::new();
                let site = self.site.as_mut().expect("site");
                // What they hold of our version is the scheduler's to keep;
                // of another version, theirs (for a switch to it).
                let mut theirs = None;
                if version == site.version() {
                    if piece_count != site.map.len() {
                        return Err(Misbehaviour::Protocol(
                            "piece count differs from the manifest",
                        ));
                    }
                    site.scheduler.peer_joined(conn, have);
                    // Pieces we stored after our handshake but before theirs
                    // were announced on no connection of this peer (`Have`
                    // goes to peers on our version): the first time they are
                    // on our version, announce those.
                    let told = self.peers.get_mut(&conn).and_then(|p| p.told.take());
                    if active_version != Some(version)
                        && let Some(told) = told.filter(|t| t.len() == site.map.len())
                    {
                        let news: Vec<PieceIndex> = (0..told.len())
                            .filter(|i| site.have().has(*i) && !told.has(*i))
                            .collect();
                        for piece in news {
                            self.send(conn, Frame::Have { piece });
                        }
                    }
                } else {
                    if version < site.version() {
                        let bytes = site.manifest.signed().to_bytes();
                        for f in manifest_offer_frames(site.version(), &bytes) {
                            self.send(conn, f);
                        }
                    }
                    theirs = Some(have);
                }
                self.peers.get_mut(&conn).expect("open peer").their_have = theirs;
                let peer = self.peers.get_mut(&conn).expect("open peer");
                let first = active_version.is_none();
                peer.phase = Phase::Active { version };
                if first {
                    self.outputs
                        .push_back(Output::Event(Event::PeerConnected { conn }));
                }
            }
            Frame::Have { piece } => {
                let beyond = Misbehaviour::Protocol("have beyond the manifest");
                if same_version {
                    let site = self.site.as_mut().expect("site");
                    if piece >= site.map.len() {
                        return Err(beyond);
                    }
                    site.scheduler.peer_has(conn, piece);
                } else if let Some(theirs) =
                    &mut self.peers.get_mut(&conn).expect("open peer").their_have
                {
                    if piece >= theirs.len() {
                        return Err(beyond);
                    }
                    theirs.set(piece);
                }
            }
            Frame::Request { piece } => self.on_request(now, conn, piece, same_version),
            Frame::Cancel { piece } => {
                let peer = self.peers.get_mut(&conn).expect("open peer");
                peer.uploads.retain(|(p, _)| *p != piece);
                // They may ask again (after a timeout, say): then it is new.
                peer.sent.remove(&piece);
            }
            Frame::Reject { piece } => {
                let site = self.site.as_mut().expect("site");
                if site.scheduler.is_requested_from(conn, piece) {
                    site.scheduler.rejected(conn, piece);
                } else {
                    self.peers
                        .get_mut(&conn)
                        .expect("open peer")
                        .cancelled
                        .remove(&piece);
                }
            }
            Frame::Piece { piece, data } => self.on_piece(now, conn, piece, data, same_version)?,
            Frame::ManifestOffer {
                version,
                total_len,
                offset,
                chunk,
            } => self.on_manifest_chunk(now, conn, version, total_len, offset, chunk)?,
        }
        Ok(())
    }

    pub(super) fn on_request(
        &mut self,
        now: Instant,
        conn: ConnId,
        piece: PieceIndex,
        same_version: bool,
    ) {
        let len = match &self.site {
            Some(s) if same_version && s.have().has(piece) => s.map.get(piece).map_or(0, |p| p.len),
            _ => 0,
        };
        let total_queued = self.upload_queue_bytes();
        let peer = self.peers.get_mut(&conn).expect("open peer");
        // A repeat of a request queued or answered: dropped, neither queued
        // nor rejected, so repeating costs them a frame and us nothing.
        if peer.sent.contains(&piece) || peer.uploads.iter().any(|(p, _)| *p == piece) {
            return;
        }
        let peer_queued: u64 = peer.uploads.iter().map(|(_, l)| u64::from(*l)).sum();
        if len == 0
            || self.config.leech_only
            || self.upload.exhausted()
            || peer.uploads.len() >= MAX_REQUESTS_IN_FLIGHT
            || peer_queued + u64::from(len) > self.config.max_queued_upload_bytes_per_peer
            || total_queued + u64::from(len) > self.config.max_queued_upload_bytes
        {
            self.send(conn, Frame::Reject { piece });
            return;
        }
        peer.uploads.push_back((piece, len));
        self.pump_uploads(now);
    }

    /// Sends queued pieces, one per peer in turn, while the budget allows.
    pub(super) fn pump_uploads(&mut self, now: Instant) {
        if self.upload_wake.is_some_and(|t| now < t)
            || self.peers.values().all(|p| p.uploads.is_empty())
        {
            return;
        }
        self.upload_wake = None;
        loop {
            let mut sent_any = false;
            let conns: Vec<ConnId> = self
                .peers
                .iter()
                .filter(|(_, p)| !p.uploads.is_empty())
                .map(|(c, _)| *c)
                .collect();
            for conn in conns {
                let Some(site) = &self.site else { return };
                let (piece, len) = *self.peers[&conn].uploads.front().expect("non-empty");
                let len = u64::from(len);
                match self.upload.take(now, len) {
                    Allowance::Now => {
                        let peer = self.peers.get_mut(&conn).expect("peer");
                        peer.uploads.pop_front();
                        peer.sent.insert(piece);
                        // The stored buffer itself: shared, not copied.
                        let data = site
                            .store
                            .get(piece)
                            .cloned()
                            .expect("held pieces are stored");
                        self.stats.bytes_uploaded += len;
                        self.send(conn, Frame::Piece { piece, data });
                        sent_any = true;
                    }
                    Allowance::Later(t) => {
                        self.upload_wake = Some(t);
                        return;
                    }
                    Allowance::Never => {
                        self.reject_queued_uploads();
                        return;
                    }
                }
            }
            if !sent_any {
                return;
            }
        }
    }

    pub(super) fn reject_queued_uploads(&mut self) {
        let queued: Vec<(ConnId, Vec<PieceIndex>)> = self
            .peers
            .iter_mut()
            .map(|(c, p)| (*c, p.uploads.drain(..).map(|(piece, _)| piece).collect()))
            .collect();
        for (conn, pieces) in queued {
            for piece in pieces {
                self.send(conn, Frame::Reject { piece });
            }
        }
    }

    pub(super) fn on_piece(
        &mut self,
        now: Instant,
        conn: ConnId,
        piece: PieceIndex,
        data: Bytes,
        same_version: bool,
    ) -> Result<(), Misbehaviour> {
        let site = self.site.as_mut().expect("site");
        let requested = same_version && site.scheduler.is_requested_from(conn, piece);
        let peer = self.peers.get_mut(&conn).expect("open peer");
        if !requested {
            if peer.cancelled.remove(&piece) {
                return Ok(()); // a late answer to a cancelled request
            }
            return Err(Misbehaviour::UnrequestedPiece(piece));
        }
        let remote = peer.remote;
        self.verify_piece(now, piece, data, HashFor::Peer { conn, remote });
        Ok(())
    }

    pub(super) fn on_manifest_chunk(
        &mut self,
        now: Instant,
        conn: ConnId,
        version: u64,
        total_len: u32,
        offset: u32,
        chunk: Vec<u8>,
    ) -> Result<(), Misbehaviour> {
        // Only a newer version is worth assembling; older offers are ignored.
        if version <= self.guard.floor() {
            return Ok(());
        }
        // What the other peers' partial manifests hold; this peer's own is
        // replaced or grown below.
        let others: usize = self
            .peers
            .iter()
            .filter(|(c, _)| **c != conn)
            .map(|(_, p)| p.manifest_in.held())
            .sum();
        let cap = self.config.max_partial_manifest_bytes;
        let peer = self.peers.get_mut(&conn).expect("open peer");
        if offset == 0 {
            // Nothing reserved from the announced length: a few bytes of
            // offer hold a few bytes.
            peer.manifest_in = ManifestIn::Assembling {
                version,
                total: total_len,
                bytes: Vec::new(),
            };
        }
        let (v, total, buf) = match &mut peer.manifest_in {
            ManifestIn::Assembling {
                version,
                total,
                bytes,
            } => (version, total, bytes),
            ManifestIn::Dropped => return Ok(()),
            ManifestIn::None => {
                return Err(Misbehaviour::Protocol("manifest chunk without a start"));
            }
        };
        if *v != version || *total != total_len || buf.len() != offset as usize {
            return Err(Misbehaviour::Protocol("manifest chunks out of order"));
        }
        let want = buf.len() + chunk.len();
        if others + want > cap {
            peer.manifest_in = ManifestIn::Dropped;
            return Ok(());
        }
        // Grow to what has arrived (doubling, but never past the announced
        // length, which the decoder caps at MAX_MANIFEST_LEN).
        if want > buf.capacity() {
            let target = (buf.capacity() * 2)
                .max(want)
                .min((*total as usize).min(MAX_MANIFEST_LEN))
                .min(cap - others)
                .max(want);
            buf.reserve_exact(target - buf.len());
        }
        buf.extend_from_slice(&chunk);
        if buf.len() < *total as usize {
            return Ok(());
        }
        let bytes = match std::mem::replace(&mut peer.manifest_in, ManifestIn::None) {
            ManifestIn::Assembling { bytes, .. } => bytes,
            _ => return Ok(()),
        };
        let signed = SignedManifest::from_bytes(&bytes).map_err(Misbehaviour::BadManifest)?;
        if signed.manifest().version != version {
            return Err(Misbehaviour::Protocol(
                "manifest version differs from its offer",
            ));
        }
        // Deferred checks: its first manifest is judged before it may send
        // another (so a liar is banned), and the queue stays bounded.
        if self.defers_signatures()
            && (self.signatures.len() >= MAX_PENDING_SIGNATURES
                || self
                    .signatures
                    .iter()
                    .any(|p| p.source == ManifestSource::Peer(conn)))
        {
            return Ok(());
        }
        let wall = self.wall_estimate(now);
        match self.check_manifest(now, wall, &signed, ManifestSource::Peer(conn)) {
            Ok(_) => Ok(()),
            // Signed by someone else, or forged: the peer lied.
            Err(
                e @ (ManifestError::BadSignature
                | ManifestError::WrongSiteKey { .. }
                | ManifestError::Malformed(_)),
            ) => Err(Misbehaviour::BadManifest(e)),
            // Stale or from a skewed clock: not proof of malice; ignored (and reported as refused).
            Err(_) => Ok(()),
        }
    }
}
