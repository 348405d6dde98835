//! Swarm logic: who is in which swarm, which offers await an answer, and
//! where each relayed message goes.
//!
//! Plain functions over [`Swarms`] that take `now`, an RNG and an output
//! buffer; no sockets, no clock, no locks, so every rule is unit-tested
//! here (`swarm/tests.rs`). The hub (`hub.rs`) owns the one `Swarms` and
//! routes announces, answers, scrapes and closed sockets to it.
//!
//! Rules (threats T3–T5 of the threat model):
//! - A `(swarm, peer_id)` is bound to the connection that first announced
//!   it. Announces, answers and `stopped` naming it from another connection
//!   are refused ([`Reject::PeerIdTaken`]) until the peer expires. One
//!   connection holds at most one peer id per swarm.
//! - No offers, no peers: a client learns of others only by receiving their
//!   offers, which the tracker sends to distinct peers it picks at random.
//! - Each relayed offer leaves a one-shot record on the offerer
//!   ("expecting an answer from B to offer O"), expiring after
//!   `offer_ttl_secs`. An answer is forwarded only against such a record,
//!   which it consumes; anything else is an unsolicited answer and dropped.
//! - A swarm takes at most `max_peers_per_prefix` peers from one address
//!   prefix (/24, /64 by default), and its last `newcomer_slots` only from
//!   prefixes not in it yet: filling a swarm to eclipse it takes many
//!   networks, and a new network still gets in (T3).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use indexmap::IndexMap;
use peerhost_core::ice::IceServer;
use peerhost_core::signal::{
    Announce, AnnounceEvent, AnswerMsg, InfoHash, OfferId, PeerId, RelayedAnswer, RelayedOffer,
    ScrapeFile, ServerMessage, SignalError,
};
use peerhost_core::time::Instant;
use rand::Rng;

use crate::config::SwarmConfig;
use crate::metrics::Reason;
use crate::outbox::{Outgoing, SocketId};

/// Why a request was refused. The requester is to blame in every case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// The peer id is bound to another, live connection in this swarm.
    #[error("peer_id is in use by another connection")]
    PeerIdTaken,
    /// This connection already announced another peer id in this swarm.
    #[error("only one peer_id per swarm per connection")]
    OnePeerIdPerSwarm,
    /// The connection is in as many swarms as allowed.
    #[error("too many swarms on this connection")]
    TooManySwarmsPerConnection,
    /// The swarm has as many peers as allowed.
    #[error("swarm is full")]
    SwarmFull,
    /// The swarm has as many peers from this address prefix as allowed.
    #[error("too many peers from your network in this swarm")]
    PrefixFull,
    /// The swarm's remaining slots are for networks not in it yet.
    #[error("swarm is full")]
    Reserved,
    /// The tracker has as many swarms as allowed.
    #[error("tracker is full")]
    TooManySwarms,
    /// An answer from a peer that has not announced in the swarm.
    #[error("announce before answering")]
    NotInSwarm,
    /// An answer with no outstanding offer from `to_peer_id` to this peer.
    #[error("Could not find the offer corresponding to your answer")]
    UnsolicitedAnswer,
    /// An SDP failed the shape check.
    #[error("{0}")]
    BadSdp(SignalError),
    /// Scrapes are switched off (`swarm.allow_scrape = false`).
    #[error("scrape is disabled")]
    ScrapeDisabled,
    /// A scrape naming no swarm (full scrapes are not served).
    #[error("full scrapes are not allowed")]
    FullScrape,
    /// A scrape naming too many swarms.
    #[error("too many info_hash in scrape")]
    TooManyScrapeHashes,
}

impl Reject {
    /// The metrics label.
    pub fn reason(&self) -> Reason {
        match self {
            Reject::PeerIdTaken => Reason::PeerIdTaken,
            Reject::OnePeerIdPerSwarm => Reason::OnePeerIdPerSwarm,
            Reject::TooManySwarmsPerConnection => Reason::SwarmsPerConnection,
            Reject::SwarmFull => Reason::SwarmFull,
            Reject::PrefixFull => Reason::SwarmPrefixFull,
            Reject::Reserved => Reason::SwarmReserved,
            Reject::TooManySwarms => Reason::TooManySwarms,
            Reject::NotInSwarm => Reason::NotInSwarm,
            Reject::UnsolicitedAnswer => Reason::UnsolicitedAnswer,
            Reject::BadSdp(_) => Reason::BadSdp,
            Reject::ScrapeDisabled => Reason::ScrapeDisabled,
            Reject::FullScrape => Reason::FullScrape,
            Reject::TooManyScrapeHashes => Reason::ScrapeHashes,
        }
    }
}

/// What an accepted announce did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnnounceOutcome {
    /// Offers relayed (one per chosen peer).
    pub offers_relayed: usize,
    /// Offers beyond `max_offers` that were dropped.
    pub offers_dropped: usize,
}

#[derive(Debug, Clone)]
struct Expecting {
    from: PeerId,
    offer_id: OfferId,
    expires: Instant,
}

#[derive(Debug, Clone)]
struct Peer {
    socket: SocketId,
    /// The address prefix it announced from; `None` if the driver did not
    /// say (no prefix rules apply then).
    prefix: Option<IpAddr>,
    seeder: bool,
    expires: Instant,
    expecting: Vec<Expecting>,
}

#[derive(Debug, Default)]
struct Swarm {
    peers: IndexMap<PeerId, Peer>,
    seeders: usize,
    /// Peers per address prefix.
    prefixes: HashMap<IpAddr, usize>,
}

impl Swarm {
    fn counts(&self) -> (u64, u64) {
        let complete = self.seeders as u64;
        (complete, self.peers.len() as u64 - complete)
    }

    fn remove(&mut self, id: &PeerId) -> Option<Peer> {
        let p = self.peers.swap_remove(id)?;
        if p.seeder {
            self.seeders -= 1;
        }
        forget_prefix(&mut self.prefixes, p.prefix);
        Some(p)
    }
}

fn forget_prefix(prefixes: &mut HashMap<IpAddr, usize>, prefix: Option<IpAddr>) {
    if let Some(p) = prefix
        && let Some(n) = prefixes.get_mut(&p)
    {
        *n -= 1;
        if *n == 0 {
            prefixes.remove(&p);
        }
    }
}

/// `ip` with all but its first `v4` (IPv4) or `v6` (IPv6) bits cleared;
/// IPv4-mapped IPv6 addresses count as IPv4.
pub fn address_prefix(ip: IpAddr, v4: u8, v6: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(a) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(v4.min(32)))
                .unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(v6.min(128)))
                .unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

/// Who sent an announce, and what its answer hands it beyond the swarm
/// counts.
#[derive(Debug, Clone, Copy)]
pub struct Announcer<'a> {
    /// The sender's socket.
    pub socket: SocketId,
    /// Its address, for the per-prefix caps; `None` where the driver does
    /// not know it (no prefix rules apply).
    pub from: Option<IpAddr>,
    /// ICE servers for the announce answer (the tracker's static list and
    /// minted TURN credentials).
    pub ice_servers: &'a [IceServer],
}

/// All swarms of the tracker, and which connection holds which peer.
#[derive(Debug)]
pub struct Swarms {
    cfg: SwarmConfig,
    swarms: HashMap<InfoHash, Swarm>,
    sockets: HashMap<SocketId, Vec<(InfoHash, PeerId)>>,
    peers: usize,
}

impl Swarms {
    /// Empty state under `cfg`'s limits.
    pub fn new(cfg: SwarmConfig) -> Self {
        Swarms {
            cfg,
            swarms: HashMap::new(),
            sockets: HashMap::new(),
            peers: 0,
        }
    }

    /// Number of swarms.
    pub fn swarm_count(&self) -> usize {
        self.swarms.len()
    }

    /// Number of peers over all swarms.
    pub fn peer_count(&self) -> usize {
        self.peers
    }

    /// Seeders and leechers in `info_hash`.
    pub fn counts(&self, info_hash: &InfoHash) -> (u64, u64) {
        self.swarms.get(info_hash).map_or((0, 0), Swarm::counts)
    }

    fn ttl(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    /// Handles an announce `a` from `who`: joins, updates or leaves the
    /// swarm, answers the announcer (handing it `who.ice_servers`), and
    /// relays its offers to distinct random peers.
    pub fn announce<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        who: Announcer<'_>,
        a: &Announce,
        out: &mut Vec<Outgoing>,
    ) -> Result<AnnounceOutcome, Reject> {
        let Announcer {
            socket,
            from,
            ice_servers,
        } = who;
        let cfg = &self.cfg;
        let wanted = a
            .offers
            .len()
            .min(cfg.max_offers)
            .min(usize::try_from(a.numwant.unwrap_or(u64::MAX)).unwrap_or(usize::MAX));
        let offers = &a.offers[..wanted];
        for o in offers {
            o.offer
                .check(cfg.max_sdp_len, cfg.max_sdp_candidates)
                .map_err(Reject::BadSdp)?;
        }
        let mut outcome = AnnounceOutcome {
            offers_relayed: 0,
            offers_dropped: a.offers.len() - wanted,
        };

        let existing = self
            .swarms
            .get(&a.info_hash)
            .and_then(|s| s.peers.get(&a.peer_id));
        let takeover = match existing {
            Some(p) if p.socket == socket => false,
            Some(p) if p.expires > now => return Err(Reject::PeerIdTaken),
            Some(_) => true,
            None => false,
        };
        let exists = existing.is_some();

        if a.event == AnnounceEvent::Stopped {
            if exists && !takeover {
                self.remove_peer(&a.info_hash, &a.peer_id);
            }
            self.respond(a, socket, ice_servers, out);
            return Ok(outcome);
        }

        if takeover {
            // The old binding expired: its connection lost the peer id.
            self.remove_peer(&a.info_hash, &a.peer_id);
        }
        let is_new = takeover || !exists;
        let (v4, v6) = (self.cfg.ipv4_prefix_len, self.cfg.ipv6_prefix_len);
        let prefix = from.map(|ip| address_prefix(ip, v4, v6));
        if is_new {
            let held = self.sockets.get(&socket).map_or(&[][..], Vec::as_slice);
            if held.iter().any(|(ih, _)| *ih == a.info_hash) {
                return Err(Reject::OnePeerIdPerSwarm);
            }
            if held.len() >= self.cfg.max_swarms_per_connection {
                return Err(Reject::TooManySwarmsPerConnection);
            }
            match self.swarms.get(&a.info_hash) {
                Some(s) if s.peers.len() >= self.cfg.max_peers_per_swarm => {
                    return Err(Reject::SwarmFull);
                }
                Some(s) if prefix.is_some() => {
                    let here = prefix.and_then(|p| s.prefixes.get(&p)).copied();
                    let here = here.unwrap_or(0);
                    if here >= self.cfg.max_peers_per_prefix {
                        return Err(Reject::PrefixFull);
                    }
                    let open = self
                        .cfg
                        .max_peers_per_swarm
                        .saturating_sub(self.cfg.newcomer_slots);
                    if here > 0 && s.peers.len() >= open {
                        return Err(Reject::Reserved);
                    }
                }
                None if self.swarms.len() >= self.cfg.max_swarms => {
                    return Err(Reject::TooManySwarms);
                }
                _ => {}
            }
        }

        // Every check passed: change state.
        let expires = now + Self::ttl(self.cfg.peer_ttl_secs);
        let swarm = self.swarms.entry(a.info_hash).or_default();
        let seeder_now = |prev: bool| match a.left {
            Some(left) => left == 0,
            None => prev || a.event == AnnounceEvent::Completed,
        };
        let self_index = match swarm.peers.get_full_mut(&a.peer_id) {
            Some((i, _, p)) => {
                let seeder = seeder_now(p.seeder);
                if seeder != p.seeder {
                    p.seeder = seeder;
                    if seeder {
                        swarm.seeders += 1;
                    } else {
                        swarm.seeders -= 1;
                    }
                }
                p.expires = expires;
                i
            }
            None => {
                let seeder = seeder_now(false);
                swarm.seeders += usize::from(seeder);
                if let Some(p) = prefix {
                    *swarm.prefixes.entry(p).or_insert(0) += 1;
                }
                let (i, _) = swarm.peers.insert_full(
                    a.peer_id,
                    Peer {
                        socket,
                        prefix,
                        seeder,
                        expires,
                        expecting: Vec::new(),
                    },
                );
                self.peers += 1;
                self.sockets
                    .entry(socket)
                    .or_default()
                    .push((a.info_hash, a.peer_id));
                i
            }
        };

        self.respond(a, socket, ice_servers, out);
        if offers.is_empty() {
            return Ok(outcome);
        }

        // Distinct random recipients, never the announcer, never expired.
        let swarm = self
            .swarms
            .get_mut(&a.info_hash)
            .expect("swarm inserted above");
        let n = swarm.peers.len();
        let amount = n.min(offers.len() + 1);
        let mut recipients: Vec<(PeerId, SocketId)> = Vec::with_capacity(offers.len());
        for i in rand::seq::index::sample(rng, n, amount) {
            if i == self_index || recipients.len() == offers.len() {
                continue;
            }
            if let Some((id, p)) = swarm.peers.get_index(i)
                && p.expires > now
            {
                recipients.push((*id, p.socket));
            }
        }
        let offer_expires = now + Self::ttl(self.cfg.offer_ttl_secs);
        let max_pending = self.cfg.max_pending_offers_per_peer.max(1);
        let Some(me) = swarm.peers.get_mut(&a.peer_id) else {
            return Ok(outcome);
        };
        me.expecting.retain(|e| e.expires > now);
        for ((to_peer, to_socket), offer) in recipients.iter().zip(offers) {
            if me.expecting.len() >= max_pending {
                me.expecting.remove(0);
            }
            me.expecting.push(Expecting {
                from: *to_peer,
                offer_id: offer.offer_id,
                expires: offer_expires,
            });
            out.push(Outgoing {
                to: *to_socket,
                msg: ServerMessage::Offer(RelayedOffer {
                    info_hash: a.info_hash,
                    peer_id: a.peer_id,
                    offer_id: offer.offer_id,
                    offer: offer.offer.clone(),
                }),
            });
            outcome.offers_relayed += 1;
        }
        Ok(outcome)
    }

    fn respond(
        &self,
        a: &Announce,
        socket: SocketId,
        ice_servers: &[IceServer],
        out: &mut Vec<Outgoing>,
    ) {
        let (complete, incomplete) = self.counts(&a.info_hash);
        out.push(Outgoing {
            to: socket,
            msg: ServerMessage::AnnounceResponse {
                info_hash: a.info_hash,
                interval: self.cfg.announce_interval_secs,
                complete,
                incomplete,
                ice_servers: ice_servers.to_vec(),
            },
        });
    }

    /// Handles an answer from `socket`: forwards it to the offerer if, and
    /// only if, that offer was relayed to this peer and is still pending.
    pub fn answer(
        &mut self,
        now: Instant,
        socket: SocketId,
        m: &AnswerMsg,
        out: &mut Vec<Outgoing>,
    ) -> Result<(), Reject> {
        m.answer
            .check(self.cfg.max_sdp_len, self.cfg.max_sdp_candidates)
            .map_err(Reject::BadSdp)?;
        let peer_ttl = Self::ttl(self.cfg.peer_ttl_secs);
        let swarm = self
            .swarms
            .get_mut(&m.info_hash)
            .ok_or(Reject::NotInSwarm)?;
        let answerer = swarm.peers.get_mut(&m.peer_id).ok_or(Reject::NotInSwarm)?;
        if answerer.socket != socket {
            return Err(Reject::PeerIdTaken);
        }
        answerer.expires = now + peer_ttl;
        let offerer = swarm
            .peers
            .get_mut(&m.to_peer_id)
            .ok_or(Reject::UnsolicitedAnswer)?;
        let pos = offerer
            .expecting
            .iter()
            .position(|e| e.from == m.peer_id && e.offer_id == m.offer_id && e.expires > now)
            .ok_or(Reject::UnsolicitedAnswer)?;
        offerer.expecting.swap_remove(pos);
        out.push(Outgoing {
            to: offerer.socket,
            msg: ServerMessage::Answer(RelayedAnswer {
                info_hash: m.info_hash,
                peer_id: m.peer_id,
                offer_id: m.offer_id,
                answer: m.answer.clone(),
            }),
        });
        Ok(())
    }

    /// Seeders and leechers of each named swarm (unknown ones report zeros).
    pub fn scrape(&self, info_hashes: &[InfoHash]) -> Result<ServerMessage, Reject> {
        if !self.cfg.allow_scrape {
            return Err(Reject::ScrapeDisabled);
        }
        if info_hashes.is_empty() {
            return Err(Reject::FullScrape);
        }
        if info_hashes.len() > self.cfg.max_scrape_hashes {
            return Err(Reject::TooManyScrapeHashes);
        }
        let files = info_hashes
            .iter()
            .map(|h| {
                let (complete, incomplete) = self.counts(h);
                (
                    *h,
                    ScrapeFile {
                        complete,
                        incomplete,
                        downloaded: 0,
                    },
                )
            })
            .collect();
        Ok(ServerMessage::ScrapeResponse { files })
    }

    /// The connection closed: every peer it held leaves its swarm (the
    /// synthetic `stopped` of WebTorrent trackers).
    pub fn disconnect(&mut self, socket: SocketId) {
        for (ih, pid) in self.sockets.remove(&socket).unwrap_or_default() {
            let Some(swarm) = self.swarms.get_mut(&ih) else {
                continue;
            };
            if swarm.peers.get(&pid).is_some_and(|p| p.socket == socket) {
                swarm.remove(&pid);
                self.peers -= 1;
                if swarm.peers.is_empty() {
                    self.swarms.remove(&ih);
                }
            }
        }
    }

    fn remove_peer(&mut self, ih: &InfoHash, pid: &PeerId) {
        let Some(swarm) = self.swarms.get_mut(ih) else {
            return;
        };
        let Some(p) = swarm.remove(pid) else {
            return;
        };
        self.peers -= 1;
        if swarm.peers.is_empty() {
            self.swarms.remove(ih);
        }
        if let Some(held) = self.sockets.get_mut(&p.socket) {
            held.retain(|(h, id)| !(h == ih && id == pid));
            if held.is_empty() {
                self.sockets.remove(&p.socket);
            }
        }
    }

    /// Drops peers that stopped announcing and offers nobody answered.
    pub fn clean(&mut self, now: Instant) {
        let mut gone: Vec<(SocketId, InfoHash, PeerId)> = Vec::new();
        self.swarms.retain(|ih, swarm| {
            let mut seeders_gone = 0;
            swarm.peers.retain(|pid, p| {
                if p.expires <= now {
                    gone.push((p.socket, *ih, *pid));
                    seeders_gone += usize::from(p.seeder);
                    forget_prefix(&mut swarm.prefixes, p.prefix);
                    false
                } else {
                    p.expecting.retain(|e| e.expires > now);
                    true
                }
            });
            swarm.seeders -= seeders_gone;
            !swarm.peers.is_empty()
        });
        self.peers -= gone.len();
        for (socket, ih, pid) in gone {
            if let Some(held) = self.sockets.get_mut(&socket) {
                held.retain(|(h, id)| !(*h == ih && *id == pid));
                if held.is_empty() {
                    self.sockets.remove(&socket);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
