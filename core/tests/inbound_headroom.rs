//! A client accepts offers from other peers beyond the connections it opens
//! itself (`max_peers`), up to `inbound_headroom` more, and no further: in a
//! crowd where every member has opened its own connections, newcomers must
//! still meet someone.

use std::time::Duration;

use peerhost_core::client::{Client, ClientConfig, Input, ManifestSource, Output};
use peerhost_core::manifest::{Asset, Manifest, SiteSecret};
use peerhost_core::signal::{OfferId, PeerId, RelayedOffer, Sdp, ServerMessage, swarm_id};
use peerhost_core::time::{Instant, UnixTime};

const WALL: u64 = 1_800_000_000;

/// A client on version 1 of a one-file site, its tracker connected, and
/// how many `AcceptOffer`s it makes for `offers` relayed offers.
fn accepted(max_peers: usize, inbound_headroom: usize, offers: u8) -> usize {
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
    let config = ClientConfig {
        max_peers,
        inbound_headroom,
        ..ClientConfig::default()
    };
    let mut c = Client::new(config, secret.site_key(), 0, 1, Instant(0));
    c.handle_input(
        Instant(0),
        Input::Manifest {
            manifest: Box::new(signed),
            source: ManifestSource::Origin,
            wall: UnixTime(WALL),
        },
    );
    assert!(c.manifest().is_some());
    c.handle_input(Instant(0), Input::TrackerConnected);
    while c.poll_output().is_some() {}
    let now = Instant(0) + Duration::from_millis(10);
    for i in 0..offers {
        c.handle_input(
            now,
            Input::Tracker(ServerMessage::Offer(RelayedOffer {
                info_hash: swarm_id(&secret.site_key(), 1),
                peer_id: PeerId([100 + i; 20]),
                offer_id: OfferId([i; 20]),
                offer: Sdp::offer(format!("v=0\r\no=- {i} 1 IN IP4 0.0.0.0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n")),
            })),
        );
    }
    std::iter::from_fn(|| c.poll_output())
        .filter(|o| matches!(o, Output::AcceptOffer { .. }))
        .count()
}

#[test]
fn offers_are_accepted_up_to_max_peers_plus_headroom() {
    assert_eq!(accepted(2, 0, 6), 2);
    assert_eq!(accepted(2, 3, 6), 5);
    assert_eq!(accepted(2, 3, 4), 4);
}

#[test]
fn the_browser_default_leaves_room_for_newcomers() {
    let d = ClientConfig::default();
    assert!(d.inbound_headroom > 0);
    assert_eq!(
        accepted(d.max_peers, d.inbound_headroom, 20),
        d.max_peers + d.inbound_headroom
    );
}
