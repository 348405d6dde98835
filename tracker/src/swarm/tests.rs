//! Unit tests of the swarm rules, without sockets.

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
    fn announce(&mut self, socket: u64, a: Announce) -> Result<AnnounceOutcome, Reject> {
        self.out.clear();
        self.s.announce(
            self.now,
            &mut self.rng,
            Announcer {
                socket: SocketId(socket),
                from: None,
                ice_servers: &[],
            },
            &a,
            &mut self.out,
        )
    }
    fn answer(&mut self, socket: u64, from: u8, to: u8, offer_id: OfferId) -> Result<(), Reject> {
        self.out.clear();
        let m = AnswerMsg {
            info_hash: IH,
            peer_id: pid(from),
            to_peer_id: pid(to),
            offer_id,
            answer: Sdp::answer(SDP),
        };
        self.s.answer(self.now, SocketId(socket), &m, &mut self.out)
    }
    fn offers_sent(&self) -> Vec<(SocketId, OfferId)> {
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
        assert_eq!(t.out[0].to, SocketId(u64::from(p)));
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
        let sockets: std::collections::HashSet<_> = sent.iter().map(|s| s.0).collect();
        assert_eq!(sockets.len(), 5, "distinct recipients");
        assert!(!sockets.contains(&SocketId(1)), "never the offerer");
        seen.extend(sockets);
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
    assert_eq!(t.offers_sent(), vec![(SocketId(2), OfferId([0; 20]))]);
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
    assert_eq!(t.out[0].to, SocketId(1));
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
    let other = if c == SocketId(2) { 3 } else { 2 };
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
    t.s.disconnect(SocketId(1));
    assert_eq!(t.s.peer_count(), 1, "old connection no longer owns it");
    t.s.disconnect(SocketId(2));
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
    t.s.disconnect(SocketId(2)); // a seeder
    assert_eq!(t.s.counts(&IH), (1, 2));
    t.now = t.now + Duration::from_secs(100);
    t.announce(3, ann(3, AnnounceEvent::Update, vec![]))
        .unwrap();
    t.now = t.now + Duration::from_secs(100);
    t.s.clean(t.now);
    assert_eq!(t.s.peer_count(), 1);
    assert_eq!(t.s.counts(&IH), (0, 1));
    t.s.disconnect(SocketId(3));
    assert_eq!(t.s.peer_count(), 0);
    assert_eq!(t.s.swarm_count(), 0);
    assert!(t.s.sockets.is_empty());
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
        let socket = rng.random_range(1..12u64);
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
            0 => t.s.disconnect(SocketId(socket)),
            1 => {
                t.now = t.now + Duration::from_secs(rng.random_range(0..90));
                t.s.clean(t.now);
            }
            _ => {
                let _ = t.announce(socket, a);
            }
        }
        let total: usize = t.s.swarms.values().map(|s| s.peers.len()).sum();
        assert_eq!(total, t.s.peers);
        for s in t.s.swarms.values() {
            assert!(!s.peers.is_empty());
            assert_eq!(s.seeders, s.peers.values().filter(|p| p.seeder).count());
            assert!(s.peers.len() <= 8);
        }
        let held: usize = t.s.sockets.values().map(Vec::len).sum();
        assert_eq!(held, t.s.peers);
    }
}

#[test]
fn address_prefixes_group_networks() {
    let p = |s: &str| address_prefix(s.parse().unwrap(), 24, 64);
    assert_eq!(p("192.0.2.77"), p("192.0.2.1"));
    assert_ne!(p("192.0.2.77"), p("192.0.3.77"));
    assert_eq!(p("::ffff:192.0.2.9"), p("192.0.2.1"));
    assert_eq!(p("2001:db8:1:2:aaaa::1"), p("2001:db8:1:2::9"));
    assert_ne!(p("2001:db8:1:2::1"), p("2001:db8:1:3::1"));
    let all = address_prefix("10.1.2.3".parse().unwrap(), 0, 0);
    assert_eq!(all, "0.0.0.0".parse::<IpAddr>().unwrap());
    let exact = address_prefix("10.1.2.3".parse().unwrap(), 32, 128);
    assert_eq!(exact, "10.1.2.3".parse::<IpAddr>().unwrap());
}

#[test]
fn prefix_cap_and_newcomer_slots_hold_and_are_released() {
    let mut t = T::with(SwarmConfig {
        max_peers_per_swarm: 5,
        max_peers_per_prefix: 2,
        newcomer_slots: 2,
        ..SwarmConfig::default()
    });
    let join = |t: &mut T, n: u8, ip: &str| {
        t.out.clear();
        let a = ann(n, AnnounceEvent::Started, vec![]);
        let ip = Some(ip.parse().unwrap());
        t.s.announce(
            t.now,
            &mut t.rng,
            Announcer {
                socket: SocketId(u64::from(n)),
                from: ip,
                ice_servers: &[],
            },
            &a,
            &mut t.out,
        )
    };
    join(&mut t, 1, "10.0.1.1").unwrap();
    join(&mut t, 2, "10.0.1.2").unwrap();
    assert_eq!(join(&mut t, 3, "10.0.1.3"), Err(Reject::PrefixFull));
    join(&mut t, 4, "10.0.2.1").unwrap();
    // Three of five: the last two slots are for networks not in the swarm.
    assert_eq!(join(&mut t, 5, "10.0.2.2"), Err(Reject::Reserved));
    join(&mut t, 6, "2001:db8::1").unwrap();
    join(&mut t, 7, "10.0.3.1").unwrap();
    assert_eq!(join(&mut t, 8, "10.0.4.1"), Err(Reject::SwarmFull));
    // Leaving releases the prefix's count.
    t.s.disconnect(SocketId(1));
    t.s.disconnect(SocketId(2));
    join(&mut t, 3, "10.0.1.3").unwrap();
}
