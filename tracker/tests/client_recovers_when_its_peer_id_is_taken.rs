//! A visitor silent past the tracker's peer timeout (a frozen tab, a
//! sleeping laptop) loses its peer id: anyone may announce it then, and
//! the tracker refuses the owner's next announce with "peer_id is in use".
//! The client must not stay locked out: it takes a new id and joins again.
//!
//! The real tracker state machine (`Hub`) and the real client state
//! machine (`Client`) talk to each other directly: the socket layer in
//! between only frames and forwards these same messages.

use peerhost_core::client::{Client, ClientConfig, Input, ManifestSource, Output};
use peerhost_core::manifest::{Asset, Manifest, SiteSecret};
use peerhost_core::signal::{
    Announce, AnnounceEvent, ClientMessage, InfoHash, PEER_ID_TAKEN, PeerId, ServerMessage,
};
use peerhost_core::time::{Instant, UnixTime};
use peerhost_tracker::config::{ManifestConfig, SwarmConfig};
use peerhost_tracker::hub::{Hub, Input as HubInput, Now};
use peerhost_tracker::outbox::{Outbox, SocketId};
use rand::SeedableRng;
use rand::rngs::StdRng;

const WALL: u64 = 1_800_000_000;
const VISITOR: SocketId = SocketId(1);
const THIEF: SocketId = SocketId(2);

struct World {
    hub: Hub,
    rng: StdRng,
    client: Client,
    /// Every error the tracker sent the visitor.
    errors: Vec<String>,
}

impl World {
    fn now(ms: u64) -> Now {
        Now {
            mono: Instant(ms),
            unix: UnixTime(WALL + ms / 1000),
        }
    }

    /// Sends `msg` from `socket`; returns what the tracker sent back to it.
    fn send_to_tracker(
        &mut self,
        ms: u64,
        socket: SocketId,
        msg: ClientMessage,
    ) -> Vec<ServerMessage> {
        let mut out = Outbox::default();
        let input = HubInput::Message {
            socket,
            from: None,
            msg,
        };
        let _ = self
            .hub
            .handle(Self::now(ms), &mut self.rng, &input, &mut out);
        out.messages
            .into_iter()
            .filter(|m| m.to == socket)
            .map(|m| m.msg)
            .collect()
    }

    /// Runs the visitor until it is quiet: its tracker messages go to the
    /// hub and the replies come back; offers it asks for fail at once (no
    /// WebRTC here: discovery is what is under test).
    fn settle(&mut self, ms: u64) {
        for _ in 0..100 {
            let Some(out) = self.client.poll_output() else {
                return;
            };
            match out {
                Output::Tracker(msg) => {
                    for reply in self.send_to_tracker(ms, VISITOR, msg) {
                        if let ServerMessage::Error { failure_reason, .. } = &reply {
                            self.errors.push(failure_reason.clone());
                        }
                        self.client.handle_input(Instant(ms), Input::Tracker(reply));
                    }
                }
                Output::CreateOffer { conn, .. } => self
                    .client
                    .handle_input(Instant(ms), Input::LocalSdpFailed { conn }),
                _ => {}
            }
        }
        panic!("the client kept producing outputs");
    }

    fn peers_in(&self, info_hash: &InfoHash) -> u64 {
        let (seeders, leechers) = self.hub.swarms().counts(info_hash);
        seeders + leechers
    }
}

fn visitor() -> (Client, InfoHash) {
    let secret = SiteSecret::from_seed([7; 32]);
    let manifest = Manifest {
        site_key: secret.site_key(),
        version: 1,
        issued_at: WALL - 60,
        expires_at: WALL + 86_400,
        flags: 0,
        assets: vec![Asset::from_bytes("/a.txt", "text/plain", 1024, &[1; 2500])],
    }
    .sign(&secret)
    .unwrap();
    let info_hash = peerhost_core::signal::swarm_id(&secret.site_key(), 1);
    let mut c = Client::new(ClientConfig::default(), secret.site_key(), 0, 1, Instant(0));
    c.handle_input(
        Instant(0),
        Input::Manifest {
            manifest: Box::new(manifest),
            source: ManifestSource::Origin,
            wall: UnixTime(WALL),
        },
    );
    (c, info_hash)
}

#[test]
fn client_takes_a_new_peer_id_when_its_old_one_was_taken() {
    let swarm = SwarmConfig::default();
    let ttl_ms = swarm.peer_ttl_secs * 1000;
    let (client, info_hash) = visitor();
    let mut w = World {
        hub: Hub::new(swarm, ManifestConfig::default()),
        rng: StdRng::seed_from_u64(1),
        client,
        errors: Vec::new(),
    };

    w.client.handle_input(Instant(0), Input::TrackerConnected);
    w.settle(0);
    assert_eq!(w.peers_in(&info_hash), 1, "the visitor joined its swarm");
    let old_id: PeerId = w.client.peer_id();

    // The visitor says nothing for longer than the tracker keeps a silent
    // peer; meanwhile another connection announces the visitor's id.
    let later = ttl_ms + 1_000;
    let stolen = Announce {
        info_hash,
        peer_id: old_id,
        numwant: Some(0),
        uploaded: 0,
        downloaded: 0,
        left: Some(0),
        event: AnnounceEvent::Started,
        offers: Vec::new(),
    };
    let replies = w.send_to_tracker(later, THIEF, ClientMessage::Announce(stolen));
    assert!(
        replies
            .iter()
            .all(|m| !matches!(m, ServerMessage::Error { .. })),
        "the tracker hands an expired id to a new connection: {replies:?}"
    );

    // The visitor wakes up and announces on its own schedule.
    w.client.handle_input(Instant(later), Input::Timeout);
    w.settle(later);

    assert!(
        w.errors.iter().any(|e| e == PEER_ID_TAKEN),
        "the tracker refused the old id: {:?}",
        w.errors
    );
    assert_ne!(w.client.peer_id(), old_id, "the visitor took a new id");
    assert_eq!(
        w.peers_in(&info_hash),
        2,
        "the visitor is back in its swarm under the new id, beside the thief"
    );
}

/// A tracker that says "taken" to every announce (broken or hostile) gets
/// a bounded number of new ids per connection, not an announce storm.
#[test]
fn a_tracker_that_always_says_taken_gets_few_new_ids() {
    let (mut client, info_hash) = visitor();
    client.handle_input(Instant(0), Input::TrackerConnected);
    let mut ids = vec![client.peer_id()];
    for round in 0..20u64 {
        let mut announced = false;
        while let Some(out) = client.poll_output() {
            match out {
                Output::Tracker(ClientMessage::Announce(a)) => {
                    announced = true;
                    if !ids.contains(&a.peer_id) {
                        ids.push(a.peer_id);
                    }
                }
                Output::CreateOffer { conn, .. } => {
                    client.handle_input(Instant(round), Input::LocalSdpFailed { conn })
                }
                _ => {}
            }
        }
        if !announced && round > 0 {
            continue;
        }
        client.handle_input(
            Instant(round),
            Input::Tracker(ServerMessage::Error {
                action: "announce".into(),
                failure_reason: PEER_ID_TAKEN.into(),
                info_hash: Some(info_hash),
            }),
        );
    }
    assert_eq!(
        ids.len(),
        1 + peerhost_core::client::MAX_PEER_ID_RENEWALS as usize,
        "ids used: {ids:?}"
    );
}
