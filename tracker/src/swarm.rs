//! Swarm logic: who is in which swarm, which offers await an answer, and
//! where each relayed message goes.
//!
//! Plain functions over [`Swarms`] that take `now`, an RNG and an output
//! buffer; no sockets, no clock, no locks, so every rule is unit-tested
//! here. The server owns one `Swarms` behind a mutex and turns each
//! [`Outgoing`] into a WebSocket send.
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

use std::collections::HashMap;
use std::time::Duration;

use indexmap::IndexMap;
use peerhost_core::signal::{
    Announce, AnnounceEvent, AnswerMsg, InfoHash, OfferId, PeerId, RelayedAnswer, RelayedOffer,
    ScrapeFile, ServerMessage, SignalError,
};
use peerhost_core::time::Instant;
use rand::Rng;

use crate::config::SwarmConfig;
use crate::metrics::Reason;

/// The tracker's name for one WebSocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A message for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The connection to send to.
    pub to: ConnId,
    /// What to send.
    pub msg: ServerMessage,
}

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
            Reject::TooManySwarms => Reason::TooManySwarms,
            Reject::NotInSwarm => Reason::NotInSwarm,
            Reject::UnsolicitedAnswer => Reason::UnsolicitedAnswer,
            Reject::BadSdp(_) => Reason::BadSdp,
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
    conn: ConnId,
    seeder: bool,
    expires: Instant,
    expecting: Vec<Expecting>,
}

#[derive(Debug, Default)]
struct Swarm {
    peers: IndexMap<PeerId, Peer>,
    seeders: usize,
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
        Some(p)
    }
}

/// All swarms of the tracker, and which connection holds which peer.
#[derive(Debug)]
pub struct Swarms {
    cfg: SwarmConfig,
    swarms: HashMap<InfoHash, Swarm>,
    conns: HashMap<ConnId, Vec<(InfoHash, PeerId)>>,
    peers: usize,
}

impl Swarms {
    /// Empty state under `cfg`'s limits.
    pub fn new(cfg: SwarmConfig) -> Self {
        Swarms {
            cfg,
            swarms: HashMap::new(),
            conns: HashMap::new(),
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

    /// Handles an announce from `conn`: joins, updates or leaves the swarm,
    /// answers the announcer, and relays its offers to distinct random peers.
    pub fn announce<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        conn: ConnId,
        a: &Announce,
        out: &mut Vec<Outgoing>,
    ) -> Result<AnnounceOutcome, Reject> {
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
            Some(p) if p.conn == conn => false,
            Some(p) if p.expires > now => return Err(Reject::PeerIdTaken),
            Some(_) => true,
            None => false,
        };
        let exists = existing.is_some();

        if a.event == AnnounceEvent::Stopped {
            if exists && !takeover {
                self.remove_peer(&a.info_hash, &a.peer_id);
            }
            self.respond(a, conn, out);
            return Ok(outcome);
        }

        if takeover {
            // The old binding expired: its connection lost the peer id.
            self.remove_peer(&a.info_hash, &a.peer_id);
        }
        let is_new = takeover || !exists;
        if is_new {
            let held = self.conns.get(&conn).map_or(&[][..], Vec::as_slice);
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
                let (i, _) = swarm.peers.insert_full(
                    a.peer_id,
                    Peer {
                        conn,
                        seeder,
                        expires,
                        expecting: Vec::new(),
                    },
                );
                self.peers += 1;
                self.conns
                    .entry(conn)
                    .or_default()
                    .push((a.info_hash, a.peer_id));
                i
            }
        };

        self.respond(a, conn, out);
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
        let mut recipients: Vec<(PeerId, ConnId)> = Vec::with_capacity(offers.len());
        for i in rand::seq::index::sample(rng, n, amount) {
            if i == self_index || recipients.len() == offers.len() {
                continue;
            }
            if let Some((id, p)) = swarm.peers.get_index(i)
                && p.expires > now
            {
                recipients.push((*id, p.conn));
            }
        }
        let offer_expires = now + Self::ttl(self.cfg.offer_ttl_secs);
        let max_pending = self.cfg.max_pending_offers_per_peer.max(1);
        let Some(me) = swarm.peers.get_mut(&a.peer_id) else {
            return Ok(outcome);
        };
        me.expecting.retain(|e| e.expires > now);
        for ((to_peer, to_conn), offer) in recipients.iter().zip(offers) {
            if me.expecting.len() >= max_pending {
                me.expecting.remove(0);
            }
            me.expecting.push(Expecting {
                from: *to_peer,
                offer_id: offer.offer_id,
                expires: offer_expires,
            });
            out.push(Outgoing {
                to: *to_conn,
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

    fn respond(&self, a: &Announce, conn: ConnId, out: &mut Vec<Outgoing>) {
        let (complete, incomplete) = self.counts(&a.info_hash);
        out.push(Outgoing {
            to: conn,
            msg: ServerMessage::AnnounceResponse {
                info_hash: a.info_hash,
                interval: self.cfg.announce_interval_secs,
                complete,
                incomplete,
            },
        });
    }

    /// Handles an answer from `conn`: forwards it to the offerer if, and
    /// only if, that offer was relayed to this peer and is still pending.
    pub fn answer(
        &mut self,
        now: Instant,
        conn: ConnId,
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
        if answerer.conn != conn {
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
            to: offerer.conn,
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
    pub fn disconnect(&mut self, conn: ConnId) {
        for (ih, pid) in self.conns.remove(&conn).unwrap_or_default() {
            let Some(swarm) = self.swarms.get_mut(&ih) else {
                continue;
            };
            if swarm.peers.get(&pid).is_some_and(|p| p.conn == conn) {
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
        if let Some(held) = self.conns.get_mut(&p.conn) {
            held.retain(|(h, id)| !(h == ih && id == pid));
            if held.is_empty() {
                self.conns.remove(&p.conn);
            }
        }
    }

    /// Drops peers that stopped announcing and offers nobody answered.
    pub fn clean(&mut self, now: Instant) {
        let mut gone: Vec<(ConnId, InfoHash, PeerId)> = Vec::new();
        self.swarms.retain(|ih, swarm| {
            let mut seeders_gone = 0;
            swarm.peers.retain(|pid, p| {
                if p.expires <= now {
                    gone.push((p.conn, *ih, *pid));
                    seeders_gone += usize::from(p.seeder);
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
        for (conn, ih, pid) in gone {
            if let Some(held) = self.conns.get_mut(&conn) {
                held.retain(|(h, id)| !(*h == ih && *id == pid));
                if held.is_empty() {
                    self.conns.remove(&conn);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerhost_core::signal::{Offer, Sdp};
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    const IH: InfoHash = InfoHash([1; 20]);
    const SDP: &str = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";

    fn pid(n: u8) -> PeerId {
        PeerId([n; 20])
    }

    fn offers(n: usize, tag: u8) -> Vec<Offer> {
        (0..n)
            .map(|i| Offer {
                offer_id: OfferId([tag.wrapping_add(i as u8); 20]),
                offer: Sdp::offer(SDP),
            })
            .collect()
    }

    fn ann(peer: u8, event: AnnounceEvent, offers: Vec<Offer>) -> Announce {
        Announce {
            info_hash: IH,
            peer_id: pid(peer),
            numwant: None,
            uploaded: 0,
            downloaded: 0,
            left: Some(10),
            event,
            offers,
        }
    }

    struct T {
        s: Swarms,
        rng: SmallRng,
        out: Vec<Outgoing>,
        now: Instant,
    }

    impl T {
        fn new() -> Self {
            Self::with(SwarmConfig::default())
        }
        fn with(cfg: SwarmConfig) -> Self {
            T {
                s: Swarms::new(cfg),
                rng: SmallRng::seed_from_u64(7),
                out: Vec::new(),
                now: Instant(1_000),
            }
        }
        fn announce(&mut self, conn: u64, a: Announce) -> Result<AnnounceOutcome, Reject> {
            self.out.clear();
            self.s
                .announce(self.now, &mut self.rng, ConnId(conn), &a, &mut self.out)
        }
        fn answer(&mut self, conn: u64, from: u8, to: u8, offer_id: OfferId) -> Result<(), Reject> {
            self.out.clear();
            let m = AnswerMsg {
                info_hash: IH,
                peer_id: pid(from),
                to_peer_id: pid(to),
                offer_id,
                answer: Sdp::answer(SDP),
            };
            self.s.answer(self.now, ConnId(conn), &m, &mut self.out)
        }
        fn offers_sent(&self) -> Vec<(ConnId, OfferId)> {
            self.out
                .iter()
                .filter_map(|o| match &o.msg {
                    ServerMessage::Offer(r) => Some((o.to, r.offer_id)),
                    _ => None,
                })
                .collect()
        }
    }

    #[test]
    fn no_offers_no_peers() {
        let mut t = T::new();
        for p in 1..=5 {
            t.announce(u64::from(p), ann(p, AnnounceEvent::Started, vec![]))
                .unwrap();
            assert_eq!(t.out.len(), 1, "only the announce response");
            assert_eq!(t.out[0].to, ConnId(u64::from(p)));
        }
        assert_eq!(t.s.peer_count(), 5);
        assert_eq!(t.s.counts(&IH), (0, 5));
    }

    #[test]
    fn offers_go_to_distinct_random_peers_never_self() {
        let mut t = T::new();
        for p in 1..=20 {
            t.announce(u64::from(p), ann(p, AnnounceEvent::Started, vec![]))
                .unwrap();
        }
        let mut seen = std::collections::HashSet::new();
        for round in 0..20u8 {
            let o = t
                .announce(1, ann(1, AnnounceEvent::Update, offers(5, round * 10)))
                .unwrap();
            assert_eq!(o.offers_relayed, 5);
            assert!(matches!(
                t.out[0].msg,
                ServerMessage::AnnounceResponse { .. }
            ));
            let sent = t.offers_sent();
            let conns: std::collections::HashSet<_> = sent.iter().map(|s| s.0).collect();
            assert_eq!(conns.len(), 5, "distinct recipients");
            assert!(!conns.contains(&ConnId(1)), "never the offerer");
            seen.extend(conns);
        }
        assert!(seen.len() > 15, "recipients vary: {}", seen.len());
    }

    #[test]
    fn more_offers_than_peers_and_over_the_cap() {
        let mut t = T::new();
        t.announce(2, ann(2, AnnounceEvent::Started, vec![]))
            .unwrap();
        let o = t
            .announce(1, ann(1, AnnounceEvent::Started, offers(15, 0)))
            .unwrap();
        assert_eq!(o.offers_relayed, 1);
        assert_eq!(o.offers_dropped, 5);
        assert_eq!(t.offers_sent(), vec![(ConnId(2), OfferId([0; 20]))]);
    }

    #[test]
    fn answer_forwarded_once_against_an_outstanding_offer() {
        let mut t = T::new();
        t.announce(2, ann(2, AnnounceEvent::Started, vec![]))
            .unwrap();
        t.announce(1, ann(1, AnnounceEvent::Started, offers(1, 50)))
            .unwrap();
        let oid = OfferId([50; 20]);
        t.answer(2, 2, 1, oid).unwrap();
        assert_eq!(t.out.len(), 1);
        assert_eq!(t.out[0].to, ConnId(1));
        assert!(
            matches!(&t.out[0].msg, ServerMessage::Answer(a) if a.peer_id == pid(2) && a.offer_id == oid)
        );
        // One-shot.
        assert_eq!(t.answer(2, 2, 1, oid), Err(Reject::UnsolicitedAnswer));
        assert!(t.out.is_empty());
    }

    #[test]
    fn unsolicited_answers_are_dropped() {
        let mut t = T::new();
        for p in 1..=3 {
            t.announce(u64::from(p), ann(p, AnnounceEvent::Started, vec![]))
                .unwrap();
        }
        // No offer at all.
        assert_eq!(
            t.answer(2, 2, 1, OfferId([9; 20])),
            Err(Reject::UnsolicitedAnswer)
        );
        // An offer relayed to 2, answered by 3 (who never got it).
        t.announce(1, ann(1, AnnounceEvent::Update, offers(2, 60)))
            .unwrap();
        let sent = t.offers_sent();
        let (c, oid) = sent[0];
        let other = if c == ConnId(2) { 3 } else { 2 };
        assert_eq!(
            t.answer(other, other as u8, 1, oid),
            Err(Reject::UnsolicitedAnswer)
        );
        // Right peer id, wrong connection.
        assert_eq!(t.answer(other, c.0 as u8, 1, oid), Err(Reject::PeerIdTaken));
        // Answer from someone not in the swarm.
        assert_eq!(t.answer(9, 9, 1, oid), Err(Reject::NotInSwarm));
        assert!(t.out.is_empty());
        // The real recipient still can.
        t.answer(c.0, c.0 as u8, 1, oid).unwrap();
    }

    #[test]
    fn offers_expire() {
        let mut t = T::new();
        t.announce(2, ann(2, AnnounceEvent::Started, vec![]))
            .unwrap();
        t.announce(1, ann(1, AnnounceEvent::Started, offers(1, 70)))
            .unwrap();
        t.now = t.now + Duration::from_secs(61);
        assert_eq!(
            t.answer(2, 2, 1, OfferId([70; 20])),
            Err(Reject::UnsolicitedAnswer)
        );
    }

    #[test]
    fn spoofed_stopped_from_another_connection_is_refused() {
        let mut t = T::new();
        t.announce(1, ann(1, AnnounceEvent::Started, vec![]))
            .unwrap();
        assert_eq!(
            t.announce(2, ann(1, AnnounceEvent::Stopped, vec![])),
            Err(Reject::PeerIdTaken)
        );
        assert_eq!(
            t.announce(2, ann(1, AnnounceEvent::Update, vec![])),
            Err(Reject::PeerIdTaken)
        );
        assert_eq!(t.s.peer_count(), 1);
        // The owner can stop.
        t.announce(1, ann(1, AnnounceEvent::Stopped, vec![]))
            .unwrap();
        assert_eq!(t.s.peer_count(), 0);
        assert_eq!(t.s.swarm_count(), 0);
    }

    #[test]
    fn expired_binding_can_be_taken_over() {
        let mut t = T::new();
        t.announce(1, ann(1, AnnounceEvent::Started, vec![]))
            .unwrap();
        t.now = t.now + Duration::from_secs(181);
        t.announce(2, ann(1, AnnounceEvent::Started, vec![]))
            .unwrap();
        assert_eq!(t.s.peer_count(), 1);
        t.s.disconnect(ConnId(1));
        assert_eq!(t.s.peer_count(), 1, "old connection no longer owns it");
        t.s.disconnect(ConnId(2));
        assert_eq!(t.s.peer_count(), 0);
    }

    #[test]
    fn one_peer_id_per_swarm_per_connection() {
        let mut t = T::new();
        t.announce(1, ann(1, AnnounceEvent::Started, vec![]))
            .unwrap();
        assert_eq!(
            t.announce(1, ann(2, AnnounceEvent::Started, vec![])),
            Err(Reject::OnePeerIdPerSwarm)
        );
    }

    #[test]
    fn caps_hold() {
        let mut t = T::with(SwarmConfig {
            max_peers_per_swarm: 2,
            max_swarms: 1,
            max_swarms_per_connection: 1,
            ..SwarmConfig::default()
        });
        t.announce(1, ann(1, AnnounceEvent::Started, vec![]))
            .unwrap();
        t.announce(2, ann(2, AnnounceEvent::Started, vec![]))
            .unwrap();
        assert_eq!(
            t.announce(3, ann(3, AnnounceEvent::Started, vec![])),
            Err(Reject::SwarmFull)
        );
        let mut other = ann(3, AnnounceEvent::Started, vec![]);
        other.info_hash = InfoHash([2; 20]);
        assert_eq!(t.announce(3, other.clone()), Err(Reject::TooManySwarms));
        assert_eq!(
            t.announce(1, other),
            Err(Reject::TooManySwarmsPerConnection)
        );
    }

    #[test]
    fn bad_sdp_is_refused_before_any_state_change() {
        let mut t = T::new();
        let mut a = ann(1, AnnounceEvent::Started, offers(1, 0));
        a.offers[0].offer = Sdp::offer("v=0\r\nm=video 9 RTP/SAVPF 96\r\n");
        assert!(matches!(t.announce(1, a), Err(Reject::BadSdp(_))));
        assert_eq!(t.s.peer_count(), 0);
    }

    #[test]
    fn disconnect_and_clean_remove_peers_and_counts_stay_consistent() {
        let mut t = T::new();
        for p in 1..=4u8 {
            let mut a = ann(p, AnnounceEvent::Started, vec![]);
            a.left = Some(u64::from(p % 2));
            t.announce(u64::from(p), a).unwrap();
        }
        assert_eq!(t.s.counts(&IH), (2, 2));
        t.s.disconnect(ConnId(2)); // a seeder
        assert_eq!(t.s.counts(&IH), (1, 2));
        t.now = t.now + Duration::from_secs(100);
        t.announce(3, ann(3, AnnounceEvent::Update, vec![]))
            .unwrap();
        t.now = t.now + Duration::from_secs(100);
        t.s.clean(t.now);
        assert_eq!(t.s.peer_count(), 1);
        assert_eq!(t.s.counts(&IH), (0, 1));
        t.s.disconnect(ConnId(3));
        assert_eq!(t.s.peer_count(), 0);
        assert_eq!(t.s.swarm_count(), 0);
        assert!(t.s.conns.is_empty());
    }

    #[test]
    fn pending_offers_per_peer_are_bounded() {
        let mut t = T::with(SwarmConfig {
            max_pending_offers_per_peer: 3,
            ..SwarmConfig::default()
        });
        t.announce(2, ann(2, AnnounceEvent::Started, vec![]))
            .unwrap();
        for i in 0..10u8 {
            t.announce(1, ann(1, AnnounceEvent::Update, offers(1, i)))
                .unwrap();
        }
        let me = &t.s.swarms[&IH].peers[&pid(1)];
        assert_eq!(me.expecting.len(), 3);
        // The oldest were forgotten, the newest answerable.
        assert_eq!(
            t.answer(2, 2, 1, OfferId([0; 20])),
            Err(Reject::UnsolicitedAnswer)
        );
        t.answer(2, 2, 1, OfferId([9; 20])).unwrap();
    }

    #[test]
    fn scrape_limits() {
        let mut t = T::new();
        t.announce(1, ann(1, AnnounceEvent::Started, vec![]))
            .unwrap();
        assert_eq!(t.s.scrape(&[]), Err(Reject::FullScrape));
        let many = vec![IH; 65];
        assert_eq!(t.s.scrape(&many), Err(Reject::TooManyScrapeHashes));
        let ServerMessage::ScrapeResponse { files } = t.s.scrape(&[IH]).unwrap() else {
            panic!()
        };
        assert_eq!(files[0].1.incomplete, 1);
    }

    #[test]
    fn randomized_operations_keep_invariants() {
        let mut t = T::with(SwarmConfig {
            max_peers_per_swarm: 8,
            ..SwarmConfig::default()
        });
        let mut rng = SmallRng::seed_from_u64(99);
        for step in 0..5_000u32 {
            let conn = rng.random_range(1..12u64);
            let peer = rng.random_range(1..12u8);
            let mut a = ann(
                peer,
                AnnounceEvent::Update,
                offers(rng.random_range(0..4), step as u8),
            );
            a.info_hash = InfoHash([rng.random_range(0..3u8); 20]);
            a.left = Some(rng.random_range(0..2));
            a.event = match rng.random_range(0..5) {
                0 => AnnounceEvent::Stopped,
                1 => AnnounceEvent::Started,
                _ => AnnounceEvent::Update,
            };
            match rng.random_range(0..10) {
                0 => t.s.disconnect(ConnId(conn)),
                1 => {
                    t.now = t.now + Duration::from_secs(rng.random_range(0..90));
                    t.s.clean(t.now);
                }
                _ => {
                    let _ = t.announce(conn, a);
                }
            }
            let total: usize = t.s.swarms.values().map(|s| s.peers.len()).sum();
            assert_eq!(total, t.s.peers);
            for s in t.s.swarms.values() {
                assert!(!s.peers.is_empty());
                assert_eq!(s.seeders, s.peers.values().filter(|p| p.seeder).count());
                assert!(s.peers.len() <= 8);
            }
            let held: usize = t.s.conns.values().map(Vec::len).sum();
            assert_eq!(held, t.s.peers);
        }
    }
}
