//! The tracker link: joining and leaving swarms, announces with the offers
//! the driver creates, remote offers and the answers to ours, the glare
//! rule, and when discovery has settled (so that a lone visitor never
//! waits for peers).

use std::time::Duration;

use super::peer::{Peer, Phase};
use super::{Client, CloseReason, Event, ManifestSource, Output, new_peer_id};
use crate::ice::{IceConfig, IceServer};
use crate::manifest::SignedManifest;
use crate::scheduler::ConnId;
use crate::signal::{
    Announce, AnnounceEvent, AnswerMsg, ClientMessage, InfoHash, MAX_SDP_CANDIDATES, MAX_SDP_LEN,
    Offer, OfferId, PEER_ID_TAKEN, RelayedAnswer, RelayedOffer, Sdp, ServerMessage,
};
use crate::time::Instant;
use crate::vec_map::{VecMap, VecSet};

/// An announce waiting for the offers the driver is still creating.
#[derive(Debug)]
pub(super) struct AnnounceDraft {
    pub(super) waiting: VecSet<ConnId>,
    pub(super) offers: Vec<Offer>,
    pub(super) deadline: Instant,
}

#[derive(Debug, Default)]
pub(super) struct TrackerLink {
    pub(super) connected: bool,
    /// The driver reported the tracker unreachable (or has none).
    pub(super) unavailable: bool,
    /// The swarm we announced to and have not left.
    pub(super) joined: Option<InfoHash>,
    pub(super) next_announce: Option<Instant>,
    pub(super) last_announce: Option<Instant>,
    pub(super) interval: Option<Duration>,
    pub(super) draft: Option<AnnounceDraft>,
    pub(super) offers: VecMap<OfferId, ConnId>,
    /// Offers in the last announce, and answers to them so far.
    pub(super) offers_sent: u64,
    pub(super) answers: u64,
    /// Answers to expect: our offers, or fewer if the swarm is smaller.
    pub(super) expected_answers: Option<u64>,
    /// New peer ids taken on this connection after the tracker said ours
    /// was taken (bounded by [`MAX_PEER_ID_RENEWALS`]).
    pub(super) peer_id_renewals: u32,
    /// ICE servers of the tracker's latest announce answer.
    pub(super) ice_servers: Vec<IceServer>,
}

/// Whether two ICE server lists name different URLs (credentials aside:
/// minted TURN credentials change with every answer).
fn urls_differ(a: &[IceServer], b: &[IceServer]) -> bool {
    a.len() != b.len() || a.iter().zip(b).any(|(x, y)| x.urls != y.urls)
}

/// New peer ids a client takes per tracker connection when told its id is
/// held by another connection. A tracker that keeps saying so (hostile or
/// broken) gets no more announces until the connection is made again.
pub const MAX_PEER_ID_RENEWALS: u32 = 3;

impl Client {
    /// What new peer connections are built with: the configured ICE
    /// servers, then the tracker's latest, and the policy.
    pub fn ice_config(&self) -> IceConfig {
        IceConfig::merged(
            &self.config.ice_servers,
            &self.tracker.ice_servers,
            self.config.relay_only,
        )
    }

    /// The tracker connection is up.
    pub(super) fn handle_tracker_connected(&mut self, now: Instant) {
        self.tracker.connected = true;
        self.tracker.unavailable = false;
        self.tracker.joined = None;
        self.tracker.peer_id_renewals = 0;
        self.outputs
            .push_back(Output::Tracker(ClientMessage::SubscribeManifest {
                site_key: *self.guard.site_key(),
                have_version: self.guard.floor(),
            }));
        if let Some(site) = &mut self.site {
            self.tracker.next_announce = Some(now);
            // Discovery starts now, not when the manifest arrived.
            site.scheduler.restart_grace(now);
        }
        self.drive(now);
    }

    /// Leaves politely: a `stopped` announce for the swarm we are in and a
    /// close for every connection. The client can be dropped afterwards.
    pub(super) fn leave(&mut self) {
        if let (true, Some(info_hash)) = (self.tracker.connected, self.tracker.joined.take()) {
            let msg = self.stopped(info_hash);
            self.outputs.push_back(msg);
        }
        self.tracker.next_announce = None;
        self.tracker.draft = None;
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for conn in conns {
            self.close(conn, CloseReason::Leaving);
        }
    }

    /// The tracker connection failed or closed — or the driver has no
    /// tracker at all (call this once at start then). Connections already
    /// set up stay; ones waiting on signalling are closed; pieces no
    /// connected peer has go to the origin without waiting for discovery.
    pub(super) fn handle_tracker_closed(&mut self, now: Instant) {
        self.tracker.connected = false;
        self.tracker.unavailable = true;
        self.tracker.joined = None;
        self.tracker.next_announce = None;
        self.tracker.draft = None;
        self.tracker.offers.clear();
        let waiting: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                matches!(
                    p.phase,
                    Phase::MakingOffer | Phase::Offered { .. } | Phase::MakingAnswer { .. }
                )
            })
            .map(|(c, _)| *c)
            .collect();
        for conn in waiting {
            self.close(conn, CloseReason::TrackerLost);
        }
        if let Some(s) = &mut self.site {
            s.scheduler.end_grace();
        }
        self.drive(now);
    }

    /// A message from the tracker.
    pub(super) fn handle_tracker(&mut self, now: Instant, msg: ServerMessage) {
        match msg {
            ServerMessage::AnnounceResponse {
                info_hash,
                interval,
                complete,
                incomplete,
                ice_servers,
            } => {
                // The tracker's list, whichever swarm the answer is for: it
                // is per connection, and each answer replaces the last. New
                // URLs (not merely fresh TURN credentials) make the offers
                // still unanswered out of date: their candidates were
                // gathered once, without those servers (a join's offers are
                // made before its answer, which brings the tracker's STUN
                // and TURN servers).
                let new_urls = urls_differ(&ice_servers, &self.tracker.ice_servers);
                self.tracker.ice_servers = ice_servers;
                if new_urls && self.has_unanswered_offers() {
                    self.remake_offers(now);
                }
                if Some(info_hash) == self.tracker.joined {
                    let interval = Duration::from_secs(interval.clamp(10, 3600));
                    self.tracker.interval = Some(interval);
                    self.tracker.next_announce = Some(now + interval);
                    // The counts include us. Alone: nothing to wait for. With
                    // others, wait for the answers to our offers (the
                    // offer-less first announce does not settle anything).
                    let others = (complete + incomplete).saturating_sub(1);
                    if others == 0 {
                        self.tracker.expected_answers = Some(0);
                    } else if new_urls {
                        // The offers are being made again (above).
                        self.tracker.next_announce = Some(now);
                    } else if self.tracker.offers_sent > 0 {
                        self.tracker.expected_answers = Some(self.tracker.offers_sent.min(others));
                    }
                }
            }
            ServerMessage::Offer(offer) => self.on_remote_offer(offer),
            ServerMessage::Answer(answer) => self.on_remote_answer(answer),
            ServerMessage::ManifestPush { manifest, .. } => {
                match SignedManifest::from_bytes(&manifest) {
                    Ok(signed) => {
                        // A newer push replaces one still being checked.
                        self.signatures
                            .retain(|p| p.source != ManifestSource::Tracker);
                        let wall = self.wall_estimate(now);
                        self.handle_manifest(now, wall, &signed, ManifestSource::Tracker);
                    }
                    Err(error) => self
                        .outputs
                        .push_back(Output::Event(Event::ManifestRefused {
                            source: ManifestSource::Tracker,
                            error,
                        })),
                }
            }
            ServerMessage::Error {
                failure_reason,
                info_hash: Some(info_hash),
                ..
            } if failure_reason == PEER_ID_TAKEN && Some(info_hash) == self.tracker.joined => {
                self.renew_peer_id(now);
            }
            ServerMessage::Error { .. }
            | ServerMessage::ScrapeResponse { .. }
            | ServerMessage::PublishResult { .. } => {}
        }
        self.drive(now);
    }

    /// The driver finished creating the offer or answer it was asked for.
    pub(super) fn handle_local_sdp(&mut self, now: Instant, conn: ConnId, sdp: Sdp) {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        match peer.phase.clone() {
            Phase::MakingOffer => {
                let offer_id = OfferId(self.rng.alphanumeric::<20>());
                peer.phase = Phase::Offered {
                    offer_id,
                    expires: now + self.config.offer_timeout,
                };
                self.tracker.offers.insert(offer_id, conn);
                if let Some(d) = &mut self.tracker.draft
                    && d.waiting.remove(&conn)
                {
                    d.offers.push(Offer {
                        offer_id,
                        offer: sdp,
                    });
                }
                self.maybe_send_announce(now, false);
            }
            Phase::MakingAnswer {
                remote,
                offer_id,
                info_hash,
            } => {
                peer.phase = Phase::Connecting {
                    deadline: now + self.config.connect_timeout,
                };
                self.outputs
                    .push_back(Output::Tracker(ClientMessage::Answer(AnswerMsg {
                        info_hash,
                        peer_id: self.peer_id,
                        to_peer_id: remote,
                        offer_id,
                        answer: sdp,
                    })));
            }
            _ => {}
        }
        self.drive(now);
    }

    /// The driver could not create the SDP it was asked for.
    pub(super) fn handle_local_sdp_failed(&mut self, now: Instant, conn: ConnId) {
        if let Some(d) = &mut self.tracker.draft {
            d.waiting.remove(&conn);
        }
        self.forget(conn);
        self.maybe_send_announce(now, false);
        self.drive(now);
    }

    /// Whether waiting longer would not meet more peers: the tracker is
    /// unreachable, or every offer it could relay was answered and every
    /// connection in progress has opened or failed.
    pub(super) fn discovery_settled(&self) -> bool {
        if self.tracker.unavailable {
            return true;
        }
        let Some(expected) = self.tracker.expected_answers else {
            return false;
        };
        self.tracker.answers >= expected && !self.peers.values().any(Peer::on_the_way)
    }

    pub(super) fn start_announce(&mut self, now: Instant) {
        let site = self.site.as_ref().expect("announce needs a site");
        let info_hash = site.info_hash;
        if let Some(old) = self.tracker.joined.filter(|h| *h != info_hash) {
            let msg = self.stopped(old);
            self.outputs.push_back(msg);
            self.tracker.joined = None;
        }
        if self.tracker.joined != Some(info_hash) {
            // Join at once without offers: the answer tells the swarm's size
            // while WebRTC offers are still being made, so a visitor who is
            // alone stops waiting for peers a round trip after connecting.
            let left = site.map.len() - site.have().count();
            self.outputs
                .push_back(Output::Tracker(ClientMessage::Announce(Announce {
                    info_hash,
                    peer_id: self.peer_id,
                    numwant: Some(0),
                    uploaded: self.stats.bytes_uploaded,
                    downloaded: self.stats.bytes_from_peers,
                    left: Some(u64::from(left)),
                    event: AnnounceEvent::Started,
                    offers: Vec::new(),
                })));
            self.tracker.joined = Some(info_hash);
            self.tracker.offers_sent = 0;
        }
        // Offers from the previous announce that nobody answered are stale.
        let stale: Vec<ConnId> = self
            .peers
            .iter()
            .filter(|(_, p)| matches!(p.phase, Phase::MakingOffer | Phase::Offered { .. }))
            .map(|(c, _)| *c)
            .collect();
        for conn in stale {
            self.close(conn, CloseReason::Timeout);
        }
        let busy = self.peers.len();
        let n = self
            .config
            .offers_per_announce
            .min(self.config.max_peers.saturating_sub(busy));
        let mut waiting = VecSet::new();
        for _ in 0..n {
            let conn = self.new_conn(None, Phase::MakingOffer);
            waiting.insert(conn);
            let ice = self.ice_config();
            self.outputs.push_back(Output::CreateOffer { conn, ice });
        }
        self.tracker.draft = Some(AnnounceDraft {
            waiting,
            offers: Vec::new(),
            deadline: now + Duration::from_secs(5),
        });
        self.tracker.next_announce = None;
        self.maybe_send_announce(now, false);
    }

    /// A `stopped` announce leaving the swarm `info_hash`.
    pub(super) fn stopped(&self, info_hash: InfoHash) -> Output {
        Output::Tracker(ClientMessage::Announce(Announce {
            info_hash,
            peer_id: self.peer_id,
            numwant: Some(0),
            uploaded: self.stats.bytes_uploaded,
            downloaded: self.stats.bytes_from_peers,
            left: None,
            event: AnnounceEvent::Stopped,
            offers: Vec::new(),
        }))
    }

    /// Sends the drafted announce once every offer is in (or `force`).
    pub(super) fn maybe_send_announce(&mut self, now: Instant, force: bool) {
        let Some(draft) = &self.tracker.draft else {
            return;
        };
        if !draft.waiting.is_empty() && !force {
            return;
        }
        let draft = self.tracker.draft.take().expect("checked");
        for conn in draft.waiting {
            // Offers that did not arrive in time are abandoned.
            self.close(conn, CloseReason::Timeout);
        }
        let Some(site) = &self.site else { return };
        let first = self.tracker.joined != Some(site.info_hash);
        let left = site.map.len() - site.have().count();
        let msg = Announce {
            info_hash: site.info_hash,
            peer_id: self.peer_id,
            numwant: Some(draft.offers.len() as u64),
            uploaded: self.stats.bytes_uploaded,
            downloaded: self.stats.bytes_from_peers,
            left: Some(u64::from(left)),
            event: if first {
                AnnounceEvent::Started
            } else {
                AnnounceEvent::Update
            },
            offers: draft.offers,
        };
        self.tracker.offers_sent = msg.offers.len() as u64;
        self.tracker.answers = 0;
        self.tracker.expected_answers = None;
        self.tracker.joined = Some(site.info_hash);
        self.tracker.last_announce = Some(now);
        // Until the tracker answers with its interval, retry on ours.
        self.tracker.next_announce = Some(
            now + self
                .tracker
                .interval
                .unwrap_or(self.config.announce_interval),
        );
        self.outputs
            .push_back(Output::Tracker(ClientMessage::Announce(msg)));
    }

    /// The tracker gave our peer id to another connection (we were silent
    /// past its peer timeout, and someone announced the id): the swarm no
    /// longer knows us by it and would refuse every announce. Take a new
    /// id and join again at once, at most [`MAX_PEER_ID_RENEWALS`] times
    /// per connection.
    fn renew_peer_id(&mut self, now: Instant) {
        if self.tracker.peer_id_renewals >= MAX_PEER_ID_RENEWALS {
            return;
        }
        self.tracker.peer_id_renewals += 1;
        self.peer_id = new_peer_id(&mut self.rng);
        self.tracker.joined = None;
        if self.tracker.draft.is_none() {
            self.tracker.next_announce = Some(now);
        }
    }

    /// Whether offers of ours are being made or await an answer.
    fn has_unanswered_offers(&self) -> bool {
        self.tracker.draft.is_some()
            || self
                .peers
                .values()
                .any(|p| matches!(p.phase, Phase::MakingOffer | Phase::Offered { .. }))
    }

    /// Drops the offers being made or awaiting an answer and announces
    /// again at once with new ones (built with the current ICE servers).
    fn remake_offers(&mut self, now: Instant) {
        if let Some(draft) = self.tracker.draft.take() {
            for conn in draft.waiting {
                self.close(conn, CloseReason::Timeout);
            }
        }
        // `start_announce` closes the rest (offered, unanswered) as stale.
        self.tracker.next_announce = Some(now);
    }

    /// After losing peers, announce again soon (never more often than the
    /// minimum gap) to meet new ones.
    pub(super) fn reannounce_if_lonely(&mut self, now: Instant) {
        if !self.tracker.connected
            || self.site.is_none()
            || self.peers.len() * 2 >= self.config.max_peers
        {
            return;
        }
        let earliest = self
            .tracker
            .last_announce
            .map_or(now, |t| t + self.config.min_announce_gap);
        let at = earliest.max(now);
        if self.tracker.next_announce.is_none_or(|t| t > at) && self.tracker.draft.is_none() {
            self.tracker.next_announce = Some(at);
        }
    }

    pub(super) fn on_remote_offer(&mut self, offer: RelayedOffer) {
        let Some(site) = &self.site else { return };
        // The tracker should have refused a misshapen SDP; a client does not
        // count on it (the browser would have to parse it).
        if offer.info_hash != site.info_hash
            || offer.offer.check(MAX_SDP_LEN, MAX_SDP_CANDIDATES).is_err()
            || offer.peer_id == self.peer_id
            || self.banned.contains(&offer.peer_id)
            || self.connected_or_connecting()
                >= self.config.max_peers + self.config.inbound_headroom
            || self.peers.values().any(|p| p.remote == Some(offer.peer_id))
        {
            return;
        }
        let conn = self.new_conn(
            Some(offer.peer_id),
            Phase::MakingAnswer {
                remote: offer.peer_id,
                offer_id: offer.offer_id,
                info_hash: offer.info_hash,
            },
        );
        let ice = self.ice_config();
        self.outputs.push_back(Output::AcceptOffer {
            conn,
            offer: offer.offer,
            ice,
        });
    }

    pub(super) fn on_remote_answer(&mut self, answer: RelayedAnswer) {
        // One-shot: an offer id is answered at most once.
        let Some(conn) = self.tracker.offers.remove(&answer.offer_id) else {
            return;
        };
        self.tracker.answers += 1;
        if self.banned.contains(&answer.peer_id) {
            self.close(conn, CloseReason::Duplicate);
            return;
        }
        if answer
            .answer
            .check(MAX_SDP_LEN, MAX_SDP_CANDIDATES)
            .is_err()
        {
            // As good as no answer: the offer is abandoned.
            self.close(conn, CloseReason::Timeout);
            return;
        }
        // Glare: both peers offered at once and each also accepted the
        // other's offer. Both sides keep the connection offered by the
        // lower peer id, so exactly one survives.
        let other = self
            .peers
            .iter()
            .find(|(c, p)| **c != conn && p.remote == Some(answer.peer_id))
            .map(|(c, _)| *c);
        if let Some(other) = other {
            if self.peer_id < answer.peer_id {
                self.close(other, CloseReason::Duplicate);
            } else {
                self.close(conn, CloseReason::Duplicate);
                return;
            }
        }
        let Some(peer) = self.peers.get_mut(&conn) else {
            return;
        };
        if !matches!(peer.phase, Phase::Offered { .. }) {
            return;
        }
        peer.remote = Some(answer.peer_id);
        // The deadline counts from the answer: the channel should open soon.
        let deadline = match peer.phase {
            Phase::Offered { expires, .. } => expires,
            _ => unreachable!(),
        };
        peer.phase = Phase::Connecting { deadline };
        self.outputs.push_back(Output::ApplyAnswer {
            conn,
            answer: answer.answer,
        });
    }

    /// Connections past the offer stage: our own unanswered offers do not
    /// keep others from connecting to us.
    pub(super) fn connected_or_connecting(&self) -> usize {
        self.peers
            .values()
            .filter(|p| !matches!(p.phase, Phase::MakingOffer | Phase::Offered { .. }))
            .count()
    }
}
