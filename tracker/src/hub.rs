//! The tracker as one pure state machine: the swarms with their pending
//! offers ([`Swarms`]) and the manifest store with its subscriptions
//! ([`Manifests`]), fed one [`Input`] at a time.
//!
//! # The loop
//!
//! The socket holder (`server.rs`) accepts, frames, size-checks and
//! decodes (answering a frame that does not decode itself); then, for
//! each event:
//!
//! 1. `hub.handle(now, rng, &input, &mut outbox)` with a decoded
//!    [`Input::Message`], an [`Input::Closed`] when a socket ends, or an
//!    [`Input::Tick`] every `swarm.cleaning_interval_secs`;
//! 2. the returned verdict says whether the sender was at fault
//!    (`Err(reason)`: count a strike) or what was done (`Ok(`[`Handled`]`)`:
//!    bump counters);
//! 3. serialise and write every [`Outgoing`] in the outbox, then its
//!    [`Broadcast`], and clear it.
//!
//! No IO, no async, no clock, no locks: [`Now`] and the RNG are parameters,
//! replies are data. Every refusal replies with an `error` to the sender,
//! so the client always learns why.
//!
//! # Splitting the state
//!
//! Swarm state and manifest state never refer to each other, so an input
//! needs only the [`Part`] that [`Input::part`] names, and hubs can be
//! sharded. In one process, `server.rs` keeps a swarm hub and a manifest
//! hub behind separate mutexes (an announce never waits for a publish's
//! signature check). A cluster runs hubs in *swarm owners* and the server
//! in *socket holders*: a holder sends `(SocketId, Input)` (ids made unique
//! per holder) to the owner of the swarm or site the message names, sends
//! `Closed` to every owner, and an owner sends the outbox entries and the
//! verdict back to the holders of those sockets. Owners shard by
//! `info_hash` and `site_key` as aquatic shards its swarm workers (a scrape
//! naming several swarms is split and its answers merged by the holder).

use std::net::IpAddr;

use peerhost_core::signal::{
    ACTION_ANNOUNCE, ACTION_MANIFEST, ACTION_PUBLISH, ACTION_SCRAPE, ClientMessage, ServerMessage,
};
use peerhost_core::time::{Instant, UnixTime};
use rand::Rng;

use crate::config::{ManifestConfig, SwarmConfig};
use crate::ice::IceOffer;
use crate::manifests::Manifests;
use crate::metrics::Reason;
use crate::outbox::{Broadcast, Outbox, Outgoing, SocketId};
use crate::swarm::{AnnounceOutcome, Announcer, Swarms};

/// The time, read once by the driver per input. Swarm expiry runs on the
/// monotonic clock; manifest validity windows on wall-clock seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds since the tracker started.
    pub mono: Instant,
    /// Wall-clock seconds since the Unix epoch.
    pub unix: UnixTime,
}

/// Everything that changes the tracker's state.
///
/// There is no `Connected`: a socket has no state until it announces or
/// subscribes, and telling the hub about every handshake would cost a
/// lock per connection for nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A decoded message from `socket`.
    Message {
        /// The sender.
        socket: SocketId,
        /// The sender's address, for the per-prefix swarm caps; `None`
        /// where the driver does not know it (no prefix rules apply).
        from: Option<IpAddr>,
        /// What it sent.
        msg: ClientMessage,
    },
    /// `socket` is gone: its peers leave their swarms (the synthetic
    /// `stopped` of WebTorrent trackers) and its subscriptions end.
    Closed {
        /// The socket that closed.
        socket: SocketId,
    },
    /// Housekeeping: drop peers that stopped announcing, offers nobody
    /// answered and expired manifests.
    Tick,
}

/// The part of the tracker's state an input reads or changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Swarms and offer records: announces, answers, scrapes.
    Swarms,
    /// Stored manifests and subscriptions: publishes and subscribes.
    Manifests,
    /// Both: a closed socket, housekeeping.
    Both,
}

impl Input {
    /// The part of the state this input needs; a driver that splits the
    /// state routes the input to the hub(s) holding that part.
    pub fn part(&self) -> Part {
        match self {
            Input::Message { msg, .. } => match msg {
                ClientMessage::Announce(_)
                | ClientMessage::Answer(_)
                | ClientMessage::Scrape { .. } => Part::Swarms,
                ClientMessage::PublishManifest { .. } | ClientMessage::SubscribeManifest { .. } => {
                    Part::Manifests
                }
            },
            Input::Closed { .. } | Input::Tick => Part::Both,
        }
    }
}

/// What an accepted input did, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// An announce was answered (and its offers relayed or dropped).
    Announced(AnnounceOutcome),
    /// An answer was relayed to its offerer.
    Answered,
    /// A scrape was answered.
    Scraped,
    /// A manifest was stored and broadcast.
    Published {
        /// The version now current.
        version: u64,
        /// Subscribers it is pushed to.
        pushes: usize,
    },
    /// A subscription was recorded.
    Subscribed {
        /// Whether the current manifest was pushed at once.
        pushed: bool,
    },
    /// A closed socket was forgotten.
    Closed,
    /// Housekeeping ran.
    Ticked,
}

/// The state of one tracker, or of one shard of it (see [`Part`]).
#[derive(Debug)]
pub struct Hub {
    swarms: Swarms,
    manifests: Manifests,
    ice: IceOffer,
}

impl Hub {
    /// Empty state under the given limits.
    pub fn new(swarm: SwarmConfig, manifests: ManifestConfig) -> Self {
        Hub {
            swarms: Swarms::new(swarm),
            manifests: Manifests::new(manifests),
            ice: IceOffer::default(),
        }
    }

    /// The same hub, handing `ice` (static servers, minted TURN
    /// credentials) to clients in announce answers.
    pub fn with_ice(mut self, ice: IceOffer) -> Self {
        self.ice = ice;
        self
    }

    /// The swarms, for gauges and tests.
    pub fn swarms(&self) -> &Swarms {
        &self.swarms
    }

    /// The manifest store, for gauges and tests.
    pub fn manifests(&self) -> &Manifests {
        &self.manifests
    }

    /// Applies one input; replies go into `out`. `Err` names what the
    /// sender did wrong (an `error` reply to it is already in `out`).
    ///
    /// The input is borrowed: the driver frees it (SDPs, manifest bytes)
    /// after releasing whatever lock guards the hub.
    pub fn handle<R: Rng + ?Sized>(
        &mut self,
        now: Now,
        rng: &mut R,
        input: &Input,
        out: &mut Outbox,
    ) -> Result<Handled, Reason> {
        match input {
            Input::Message { socket, from, msg } => {
                self.message(now, rng, *socket, *from, msg, out)
            }
            Input::Closed { socket } => {
                self.swarms.disconnect(*socket);
                self.manifests.disconnect(*socket);
                Ok(Handled::Closed)
            }
            Input::Tick => {
                self.swarms.clean(now.mono);
                self.manifests.clean(now.unix);
                Ok(Handled::Ticked)
            }
        }
    }

    fn message<R: Rng + ?Sized>(
        &mut self,
        now: Now,
        rng: &mut R,
        socket: SocketId,
        from: Option<IpAddr>,
        msg: &ClientMessage,
        out: &mut Outbox,
    ) -> Result<Handled, Reason> {
        let (action, why, info_hash, reason) = match msg {
            ClientMessage::Announce(a) => {
                let ice = self.ice.servers_for(now.unix, socket);
                let who = Announcer {
                    socket,
                    from,
                    ice_servers: &ice,
                };
                match self
                    .swarms
                    .announce(now.mono, rng, who, a, &mut out.messages)
                {
                    Ok(o) => return Ok(Handled::Announced(o)),
                    Err(rej) => (
                        ACTION_ANNOUNCE,
                        rej.to_string(),
                        Some(a.info_hash),
                        rej.reason(),
                    ),
                }
            }
            ClientMessage::Answer(a) => {
                match self.swarms.answer(now.mono, socket, a, &mut out.messages) {
                    Ok(()) => return Ok(Handled::Answered),
                    Err(rej) => (
                        ACTION_ANNOUNCE,
                        rej.to_string(),
                        Some(a.info_hash),
                        rej.reason(),
                    ),
                }
            }
            ClientMessage::Scrape { info_hashes } => match self.swarms.scrape(info_hashes) {
                Ok(msg) => {
                    out.messages.push(Outgoing { to: socket, msg });
                    return Ok(Handled::Scraped);
                }
                Err(rej) => (ACTION_SCRAPE, rej.to_string(), None, rej.reason()),
            },
            ClientMessage::PublishManifest { manifest } => {
                match self.manifests.publish(now.unix, manifest) {
                    Ok(p) => {
                        let done = Handled::Published {
                            version: p.version,
                            pushes: p.push_to.len(),
                        };
                        out.messages.push(Outgoing {
                            to: socket,
                            msg: ServerMessage::PublishResult { version: p.version },
                        });
                        out.broadcast = Some(Broadcast {
                            to: p.push_to,
                            msg: p.push,
                        });
                        return Ok(done);
                    }
                    Err(rej) => (ACTION_PUBLISH, rej.to_string(), None, rej.reason()),
                }
            }
            ClientMessage::SubscribeManifest {
                site_key,
                have_version,
            } => match self
                .manifests
                .subscribe(now.unix, socket, *site_key, *have_version)
            {
                Ok(push) => {
                    let pushed = push.is_some();
                    if let Some(msg) = push {
                        out.messages.push(Outgoing { to: socket, msg });
                    }
                    return Ok(Handled::Subscribed { pushed });
                }
                Err(rej) => (ACTION_MANIFEST, rej.to_string(), None, rej.reason()),
            },
        };
        out.messages
            .push(Outgoing::error(socket, action, why, info_hash));
        Err(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use peerhost_core::signal::{
        Announce, AnnounceEvent, AnswerMsg, InfoHash, Offer, OfferId, PeerId, Sdp,
    };
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    const IH: InfoHash = InfoHash([1; 20]);
    const SDP: &str = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n";
    const NOW: Now = Now {
        mono: Instant(1_000),
        unix: UnixTime(1_800_000_000),
    };

    fn announce(peer: u8, offers: usize) -> ClientMessage {
        ClientMessage::Announce(Announce {
            info_hash: IH,
            peer_id: PeerId([peer; 20]),
            numwant: None,
            uploaded: 0,
            downloaded: 0,
            left: Some(10),
            event: AnnounceEvent::Started,
            offers: (0..offers)
                .map(|i| Offer {
                    offer_id: OfferId([i as u8; 20]),
                    offer: Sdp::offer(SDP),
                })
                .collect(),
        })
    }

    struct T {
        hub: Hub,
        rng: SmallRng,
        out: Outbox,
    }

    impl T {
        fn new(swarm: SwarmConfig) -> Self {
            T {
                hub: Hub::new(swarm, ManifestConfig::default()),
                rng: SmallRng::seed_from_u64(1),
                out: Outbox::default(),
            }
        }

        fn send(&mut self, socket: u64, msg: ClientMessage) -> Result<Handled, Reason> {
            self.out.messages.clear();
            self.out.broadcast = None;
            let socket = SocketId(socket);
            let input = Input::Message {
                socket,
                from: None,
                msg,
            };
            self.hub.handle(NOW, &mut self.rng, &input, &mut self.out)
        }
    }

    #[test]
    fn offer_and_answer_are_relayed_between_sockets() {
        let mut t = T::new(SwarmConfig::default());
        t.send(1, announce(1, 0)).unwrap();
        assert!(matches!(
            t.send(2, announce(2, 1)),
            Ok(Handled::Announced(AnnounceOutcome {
                offers_relayed: 1,
                ..
            }))
        ));
        // The announce response to 2, then the offer to 1.
        assert_eq!(t.out.messages.len(), 2);
        assert_eq!(t.out.messages[1].to, SocketId(1));
        let answer = ClientMessage::Answer(AnswerMsg {
            info_hash: IH,
            peer_id: PeerId([1; 20]),
            to_peer_id: PeerId([2; 20]),
            offer_id: OfferId([0; 20]),
            answer: Sdp::answer(SDP),
        });
        assert_eq!(t.send(1, answer.clone()), Ok(Handled::Answered));
        assert_eq!(t.out.messages[0].to, SocketId(2));
        // The offer record was consumed: a replay is unsolicited.
        assert_eq!(t.send(1, answer), Err(Reason::UnsolicitedAnswer));
        assert!(matches!(
            t.out.messages[0].msg,
            ServerMessage::Error { ref action, .. } if action == "announce"
        ));
    }

    #[test]
    fn inputs_name_the_part_they_need() {
        assert_eq!(
            Input::Message {
                socket: SocketId(1),
                from: None,
                msg: announce(1, 1)
            }
            .part(),
            Part::Swarms
        );
        let subscribe = ClientMessage::SubscribeManifest {
            site_key: peerhost_core::manifest::SiteSecret::from_seed([7; 32]).site_key(),
            have_version: 0,
        };
        let input = Input::Message {
            socket: SocketId(1),
            from: None,
            msg: subscribe.clone(),
        };
        assert_eq!(input.part(), Part::Manifests);
        // A manifest-only hub holds the subscription, a swarm-only one not.
        let mut t = T::new(SwarmConfig::default());
        assert_eq!(
            t.send(1, subscribe),
            Ok(Handled::Subscribed { pushed: false })
        );
        assert_eq!(t.hub.manifests().subscription_count(), 1);
        assert_eq!(t.hub.swarms().peer_count(), 0);
        assert_eq!(Input::Tick.part(), Part::Both);
    }

    #[test]
    fn tick_drops_expired_manifests() {
        use peerhost_core::manifest::{Asset, Manifest, SiteSecret};
        let secret = SiteSecret::from_seed([7; 32]);
        let manifest = Manifest {
            site_key: secret.site_key(),
            version: 1,
            issued_at: NOW.unix.0 - 10,
            expires_at: NOW.unix.0 + 60,
            flags: 0,
            assets: vec![Asset::from_bytes("/a.txt", "text/plain", 16384, b"hi")],
        }
        .sign(&secret)
        .unwrap()
        .to_bytes();
        let mut t = T::new(SwarmConfig::default());
        let publish = ClientMessage::PublishManifest { manifest };
        assert!(matches!(t.send(1, publish), Ok(Handled::Published { .. })));
        let later = Now {
            mono: NOW.mono,
            unix: UnixTime(NOW.unix.0 + 60),
        };
        t.hub
            .handle(later, &mut t.rng, &Input::Tick, &mut t.out)
            .unwrap();
        assert_eq!(t.hub.manifests().site_count(), 0);
    }

    #[test]
    fn closed_socket_leaves_its_swarms() {
        let mut t = T::new(SwarmConfig::default());
        t.send(1, announce(1, 0)).unwrap();
        assert_eq!(t.hub.swarms().peer_count(), 1);
        let closed = Input::Closed {
            socket: SocketId(1),
        };
        assert_eq!(
            t.hub.handle(NOW, &mut t.rng, &closed, &mut t.out),
            Ok(Handled::Closed)
        );
        assert_eq!(t.hub.swarms().peer_count(), 0);
    }

    #[test]
    fn disabled_scrape_is_refused_with_an_error() {
        let mut t = T::new(SwarmConfig {
            allow_scrape: false,
            ..SwarmConfig::default()
        });
        let scrape = ClientMessage::Scrape {
            info_hashes: vec![IH],
        };
        assert_eq!(t.send(1, scrape), Err(Reason::ScrapeDisabled));
        assert!(matches!(
            &t.out.messages[..],
            [Outgoing { to: SocketId(1), msg: ServerMessage::Error { failure_reason, .. } }]
                if failure_reason == "scrape is disabled"
        ));
    }
}
