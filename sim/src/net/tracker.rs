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
