//! The ICE configuration a driver builds a peer connection with comes from
//! the client: the configured servers first, then the list of the
//! tracker's latest announce answer (each answer replaces the last), and
//! the relay-only policy, which the visitor may change for new connections.

use std::time::Duration;

use peerhost_core::client::{Client, ClientConfig, Input, ManifestSource, Output};
use peerhost_core::ice::{IceConfig, IcePolicy, IceServer};
use peerhost_core::manifest::{Asset, Manifest, SiteSecret};
use peerhost_core::signal::{OfferId, PeerId, RelayedOffer, Sdp, ServerMessage, swarm_id};
use peerhost_core::time::{Instant, UnixTime};

const WALL: u64 = 1_800_000_000;

fn turn(user: &str) -> IceServer {
    IceServer {
        urls: vec!["turn:203.0.113.1:3478?transport=udp".into()],
        username: Some(user.into()),
        credential: Some("secret".into()),
    }
}

struct T {
    c: Client,
    secret: SiteSecret,
    next: u8,
}

impl T {
    fn new(config: ClientConfig) -> T {
        let secret = SiteSecret::from_seed([5; 32]);
        let signed = Manifest {
            site_key: secret.site_key(),
            version: 1,
            issued_at: WALL - 60,
            expires_at: WALL + 3600,
            flags: 0,
            assets: vec![Asset::from_bytes(
                "/a.txt",
                "text/plain",
                16 * 1024,
                &[7; 40_000],
            )],
        }
        .sign(&secret)
        .unwrap();
        let mut c = Client::new(config, secret.site_key(), 0, 1, Instant(0));
        c.handle_input(
            Instant(0),
            Input::Manifest {
                manifest: Box::new(signed),
                source: ManifestSource::Origin,
                wall: UnixTime(WALL),
            },
        );
        c.handle_input(Instant(0), Input::TrackerConnected);
        while c.poll_output().is_some() {}
        T { c, secret, next: 0 }
    }

    fn tracker_answer(&mut self, ice_servers: Vec<IceServer>) {
        let info_hash = swarm_id(&self.secret.site_key(), 1);
        self.c.handle_input(
            Instant(5),
            Input::Tracker(ServerMessage::AnnounceResponse {
                info_hash,
                interval: 120,
                complete: 0,
                incomplete: 1,
                ice_servers,
            }),
        );
        while self.c.poll_output().is_some() {}
    }

    /// The ICE configuration of the connection made for one relayed offer.
    fn accept_offer(&mut self) -> IceConfig {
        self.next += 1;
        let i = self.next;
        let now = Instant(0) + Duration::from_millis(10 + u64::from(i));
        self.c.handle_input(
            now,
            Input::Tracker(ServerMessage::Offer(RelayedOffer {
                info_hash: swarm_id(&self.secret.site_key(), 1),
                peer_id: PeerId([100 + i; 20]),
                offer_id: OfferId([i; 20]),
                offer: Sdp::offer(format!(
                    "v=0\r\no=- {i} 1 IN IP4 0.0.0.0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                )),
            })),
        );
        let ice = std::iter::from_fn(|| self.c.poll_output()).find_map(|o| match o {
            Output::AcceptOffer { ice, .. } => Some(ice),
            _ => None,
        });
        ice.expect("the offer is accepted")
    }
}

#[test]
fn configured_servers_come_first_and_the_trackers_list_is_replaced() {
    let stun = IceServer::url("stun:192.0.2.1:3478");
    let mut t = T::new(ClientConfig {
        max_peers: 16,
        ice_servers: vec![stun.clone()],
        ..ClientConfig::default()
    });
    let ice = t.accept_offer();
    assert_eq!(ice.servers, vec![stun.clone()]);
    assert_eq!(ice.policy, IcePolicy::All);

    t.tracker_answer(vec![turn("1:a")]);
    assert_eq!(t.accept_offer().servers, vec![stun.clone(), turn("1:a")]);

    t.tracker_answer(vec![turn("2:a")]);
    assert_eq!(t.accept_offer().servers, vec![stun.clone(), turn("2:a")]);

    t.tracker_answer(Vec::new());
    assert_eq!(t.accept_offer().servers, vec![stun]);
}

#[test]
fn relay_only_applies_to_connections_made_after_the_choice() {
    let mut t = T::new(ClientConfig {
        max_peers: 16,
        relay_only: true,
        ..ClientConfig::default()
    });
    t.tracker_answer(vec![turn("1:a")]);
    let ice = t.accept_offer();
    assert!(ice.relay_only());
    assert_eq!(ice.servers, vec![turn("1:a")]);
    t.c.handle_input(Instant(20), Input::RelayOnly(false));
    assert_eq!(t.accept_offer().policy, IcePolicy::All);
    assert_eq!(t.c.ice_config().policy, IcePolicy::All);
}

#[test]
fn nothing_is_configured_by_default() {
    let mut t = T::new(ClientConfig {
        max_peers: 16,
        ..ClientConfig::default()
    });
    assert_eq!(t.accept_offer(), IceConfig::default());
}

/// A join's offers are made before the tracker's answer, which brings the
/// tracker's ICE servers; an offer's candidates are gathered once. So when
/// an answer names new server URLs, the offers still unanswered are made
/// again with them; a fresh TURN credential for the same URLs (minted per
/// answer) changes nothing. Without servers from the tracker nothing waits.
#[test]
fn offers_made_before_the_trackers_servers_are_made_again_with_them() {
    let secret = SiteSecret::from_seed([6; 32]);
    let signed = Manifest {
        site_key: secret.site_key(),
        version: 1,
        issued_at: WALL - 60,
        expires_at: WALL + 3600,
        flags: 0,
        assets: vec![Asset::from_bytes(
            "/a.txt",
            "text/plain",
            16 * 1024,
            &[7; 40_000],
        )],
    }
    .sign(&secret)
    .unwrap();
    let mut c = Client::new(ClientConfig::default(), secret.site_key(), 0, 1, Instant(0));
    c.handle_input(
        Instant(0),
        Input::Manifest {
            manifest: Box::new(signed),
            source: ManifestSource::Origin,
            wall: UnixTime(WALL),
        },
    );
    let offers = |c: &mut Client| -> Vec<IceConfig> {
        std::iter::from_fn(|| c.poll_output())
            .filter_map(|o| match o {
                Output::CreateOffer { ice, .. } => Some(ice),
                _ => None,
            })
            .collect()
    };
    c.handle_input(Instant(0), Input::TrackerConnected);
    let first = offers(&mut c);
    assert!(!first.is_empty(), "the join makes offers at once");
    assert!(first.iter().all(|i| i.servers.is_empty()));

    let answer = |c: &mut Client, at: u64, user: &str| {
        c.handle_input(
            Instant(at),
            Input::Tracker(ServerMessage::AnnounceResponse {
                info_hash: swarm_id(&secret.site_key(), 1),
                interval: 120,
                complete: 1,
                incomplete: 1,
                ice_servers: vec![turn(user)],
            }),
        );
    };
    answer(&mut c, 5, "1800003600:peerhost1");
    let again = offers(&mut c);
    assert_eq!(
        again.len(),
        first.len(),
        "every unanswered offer is made again"
    );
    assert!(
        again
            .iter()
            .all(|i| i.servers == vec![turn("1800003600:peerhost1")])
    );

    answer(&mut c, 6, "1800003601:peerhost1");
    assert!(
        offers(&mut c).is_empty(),
        "a fresh credential alone remakes nothing"
    );
}
