//! The relay tracker: the rules of `tracker/src/swarm.rs` over plain state
//! — one swarm per site version, each offer to a distinct random other
//! member, answers back to the offerer, the latest manifest to subscribers.
//! Not the real tracker code (that is tested over real sockets in
//! `tracker/`); latency is the caller's business.

use std::collections::{BTreeMap, HashMap};

use peerhost_core::manifest::SignedManifest;
use peerhost_core::rng::Rng;
use peerhost_core::signal::{
    AnnounceEvent, ClientMessage, InfoHash, PeerId, RelayedAnswer, RelayedOffer, ServerMessage,
};

/// The members of one swarm, with O(1) insert, remove and random pick.
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

/// Swarm state of the relay tracker.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    swarms: BTreeMap<InfoHash, Swarm>,
    /// Who announced with which peer id (answers are addressed by it).
    peer_ids: HashMap<PeerId, u32>,
    /// Answered to `SubscribeManifest` when newer than the subscriber's.
    pub(super) manifest: Option<SignedManifest>,
}

impl Tracker {
    /// Handles `msg` from node `from`, whose socket is `open` or already
    /// closed (then only a `stopped` announce still matters: it was sent
    /// before the close). Messages to send go to `out`, in order.
    pub(super) fn handle(
        &mut self,
        from: u32,
        open: bool,
        msg: ClientMessage,
        rng: &mut Rng,
        out: &mut Vec<(u32, ServerMessage)>,
    ) {
        if !open {
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
                self.peer_ids.insert(a.peer_id, from);
                let swarm = self.swarms.entry(a.info_hash).or_default();
                if a.event == AnnounceEvent::Stopped {
                    swarm.remove(from);
                    return;
                }
                swarm.insert(from);
                out.push((
                    from,
                    ServerMessage::AnnounceResponse {
                        info_hash: a.info_hash,
                        interval: 120,
                        complete: 0,
                        incomplete: swarm.members.len() as u64,
                        ice_servers: Vec::new(),
                    },
                ));
                // Each offer to a distinct random other member.
                let mut chosen: Vec<u32> = Vec::with_capacity(a.offers.len());
                let m = swarm.members.len() as u64;
                let mut tries = 0;
                while chosen.len() < a.offers.len() && m > 1 && tries < 4 * a.offers.len() {
                    tries += 1;
                    let to = swarm.members[rng.below(m) as usize];
                    if to != from && !chosen.contains(&to) {
                        chosen.push(to);
                    }
                }
                for (offer, to) in a.offers.into_iter().zip(chosen) {
                    out.push((
                        to,
                        ServerMessage::Offer(RelayedOffer {
                            info_hash: a.info_hash,
                            peer_id: a.peer_id,
                            offer_id: offer.offer_id,
                            offer: offer.offer,
                        }),
                    ));
                }
            }
            ClientMessage::Answer(a) => {
                if let Some(&to) = self.peer_ids.get(&a.to_peer_id) {
                    out.push((
                        to,
                        ServerMessage::Answer(RelayedAnswer {
                            info_hash: a.info_hash,
                            peer_id: a.peer_id,
                            offer_id: a.offer_id,
                            answer: a.answer,
                        }),
                    ));
                }
            }
            ClientMessage::SubscribeManifest { have_version, .. } => {
                if let Some(m) = &self.manifest
                    && m.manifest().version > have_version
                {
                    out.push((from, manifest_push(m)));
                }
            }
            _ => {}
        }
    }
}

/// The tracker's push of `signed` (what `peerhost push` makes it send).
pub fn manifest_push(signed: &SignedManifest) -> ServerMessage {
    ServerMessage::ManifestPush {
        site_key: signed.manifest().site_key,
        version: signed.manifest().version,
        manifest: signed.to_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use peerhost_core::signal::{Announce, AnswerMsg, Offer, OfferId, Sdp};

    use super::*;

    fn announce(peer: u8, event: AnnounceEvent, offers: usize) -> ClientMessage {
        ClientMessage::Announce(Announce {
            info_hash: InfoHash([1; 20]),
            peer_id: PeerId([peer; 20]),
            numwant: None,
            uploaded: 0,
            downloaded: 0,
            left: None,
            event,
            offers: (0..offers)
                .map(|k| Offer {
                    offer_id: OfferId([k as u8; 20]),
                    offer: Sdp::offer("o"),
                })
                .collect(),
        })
    }

    #[test]
    fn offers_go_to_distinct_other_members_and_answers_come_back() {
        let (mut t, mut rng, mut out) = (Tracker::default(), Rng::new(1), Vec::new());
        for n in 0..4 {
            t.handle(
                n,
                true,
                announce(n as u8, AnnounceEvent::Started, 0),
                &mut rng,
                &mut out,
            );
        }
        out.clear();
        t.handle(
            4,
            true,
            announce(4, AnnounceEvent::Started, 8),
            &mut rng,
            &mut out,
        );
        assert!(matches!(
            out[0],
            (4, ServerMessage::AnnounceResponse { incomplete: 5, .. })
        ));
        let mut to: Vec<u32> = out[1..].iter().map(|(n, _)| *n).collect();
        to.sort_unstable();
        to.dedup();
        assert_eq!(to.len(), out.len() - 1, "one offer per member");
        assert!(to.iter().all(|&n| n < 4), "never to the offerer");

        out.clear();
        let answer = ClientMessage::Answer(AnswerMsg {
            info_hash: InfoHash([1; 20]),
            peer_id: PeerId([0; 20]),
            to_peer_id: PeerId([4; 20]),
            offer_id: OfferId([0; 20]),
            answer: Sdp::answer("a"),
        });
        t.handle(0, true, answer, &mut rng, &mut out);
        assert!(matches!(out[..], [(4, ServerMessage::Answer(_))]));
    }

    #[test]
    fn a_closed_socket_only_leaves() {
        let (mut t, mut rng, mut out) = (Tracker::default(), Rng::new(1), Vec::new());
        t.handle(
            0,
            true,
            announce(0, AnnounceEvent::Started, 0),
            &mut rng,
            &mut out,
        );
        t.handle(
            1,
            false,
            announce(1, AnnounceEvent::Started, 0),
            &mut rng,
            &mut out,
        );
        t.handle(
            0,
            false,
            announce(0, AnnounceEvent::Stopped, 0),
            &mut rng,
            &mut out,
        );
        out.clear();
        t.handle(
            2,
            true,
            announce(2, AnnounceEvent::Started, 2),
            &mut rng,
            &mut out,
        );
        assert!(
            matches!(
                out[..],
                [(2, ServerMessage::AnnounceResponse { incomplete: 1, .. })]
            ),
            "alone: 0 left, 1 never got in: {out:?}"
        );
    }
}
