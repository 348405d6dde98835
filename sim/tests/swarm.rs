//! Several real clients on the simulator's in-memory network (seeded
//! links, virtual clock): the swarm behaviours the core must guarantee.
//! (Moved from `core/tests/swarm.rs`: a dev-dependency of the core on the
//! simulator would build two copies of the core's types.)

mod test_swarm;

use std::time::Duration;

use bytes::Bytes;
use peerhost_core::client::{ClientConfig, Input, Misbehaviour, Ticket};
use peerhost_core::time::Instant;
use peerhost_sim::net::NetConfig;
use test_swarm::{Behaviour, TestSite, TestSwarm};

/// Five files, about 1.1 MB, 70 pieces.
fn site(seed: u64) -> TestSite {
    TestSite::generate(seed, &[20_000, 300_000, 250_000, 400_000, 150_000], 1)
}

fn visitor() -> ClientConfig {
    ClientConfig::default()
}

#[test]
fn three_peers_and_an_origin_complete_the_site_mostly_from_peers() {
    let mut swarm = TestSwarm::new(1, site(1));
    let copy = swarm.site.total();
    // The first visitor is alone: it must not wait for peers.
    let first = swarm.add_node(visitor(), Behaviour::Honest, false);
    assert!(swarm.run_until(Duration::from_secs(30), |n| {
        n.nodes[first].finished_at.is_some()
    }));
    let alone = swarm.nodes[first].finished_at.unwrap();
    // Origin time for one copy at 1 MB/s is ~1.1 s; discovery grace must not add to it.
    assert!(
        alone < Instant(2_000),
        "first visitor finished at {alone:?}"
    );

    swarm.add_node(visitor(), Behaviour::Honest, false);
    swarm.add_node(visitor(), Behaviour::Honest, false);
    assert!(swarm.run_until(Duration::from_secs(60), TestSwarm::all_complete));
    swarm.assert_all_bytes_correct();

    let from_peers: u64 = swarm
        .nodes
        .iter()
        .map(|n| n.client.stats().bytes_from_peers)
        .sum();
    let from_origin: u64 = swarm
        .nodes
        .iter()
        .map(|n| n.client.stats().bytes_from_origin)
        .sum();
    assert_eq!(
        from_peers + from_origin,
        3 * copy,
        "every byte counted once"
    );
    assert_eq!(
        from_origin,
        swarm.origin_bytes(),
        "client and origin counters agree"
    );
    assert!(
        from_peers >= 2 * from_origin,
        "most bytes from peers: peers {from_peers}, origin {from_origin}"
    );
    assert!(
        swarm.origin_bytes() <= copy + copy / 5,
        "origin served {} bytes for a {copy}-byte site",
        swarm.origin_bytes()
    );
    for n in &swarm.nodes {
        assert!(n.failed.is_empty() && n.banned.is_empty());
    }
}

#[test]
fn a_peer_serving_corrupt_pieces_is_dropped_and_no_corrupt_byte_is_accepted() {
    let mut swarm = TestSwarm::new(2, site(2));
    let copy = swarm.site.total();
    let liar = swarm.add_node(visitor(), Behaviour::CorruptPieces, true);
    let honest = swarm.add_node(visitor(), Behaviour::Honest, true);
    let _ = honest;
    let mut victims = Vec::new();
    for _ in 0..3 {
        victims.push(swarm.add_node(visitor(), Behaviour::Honest, false));
    }
    assert!(swarm.run_until(Duration::from_secs(60), TestSwarm::all_complete));
    swarm.assert_all_bytes_correct();
    let liar_id = swarm.nodes[liar].client.peer_id();
    let mut saw_liar = false;
    for &v in &victims {
        let n = &swarm.nodes[v];
        for (_, reason) in &n.banned {
            assert!(
                matches!(reason, Misbehaviour::BadPiece(_)),
                "banned for {reason:?}"
            );
        }
        // Every banned connection is to the liar, never to the honest seeder.
        assert!(n.banned.len() <= 1);
        saw_liar |= !n.banned.is_empty();
        assert_eq!(n.client.stats().peers_banned as usize, n.banned.len());
        assert_eq!(
            n.client.stats().bytes_from_peers + n.client.stats().bytes_from_origin,
            copy
        );
    }
    assert!(
        saw_liar,
        "at least one visitor met the liar {liar_id:?} and dropped it"
    );
    let rejected: u64 = victims
        .iter()
        .map(|v| swarm.nodes[*v].client.stats().pieces_rejected)
        .sum();
    assert!(rejected >= 1, "corrupt pieces were seen and rejected");
    // Nothing the liar sent was re-served: verified stores match the originals.
    for &v in &victims {
        for (path, data) in &swarm.site.files {
            assert_eq!(
                swarm.nodes[v].client.asset_bytes(path).as_deref(),
                Some(&data[..])
            );
        }
    }
}

#[test]
fn a_peer_that_goes_silent_mid_piece_is_routed_around() {
    let mut swarm = TestSwarm::new(3, site(3));
    // The silent one is the only seeder at first, so requests surely go to it.
    let silent = swarm.add_node(visitor(), Behaviour::SilentFrom(Instant(600)), true);
    let _ = silent;
    let visitor_idx = swarm.add_node(visitor(), Behaviour::Honest, false);
    assert!(swarm.run_until(Duration::from_secs(60), TestSwarm::all_complete));
    swarm.assert_all_bytes_correct();
    let stats = swarm.nodes[visitor_idx].client.stats();
    assert!(
        stats.request_timeouts > 0,
        "requests to the silent peer timed out"
    );
    assert!(
        stats.bytes_from_peers > 0,
        "it got some bytes before going silent"
    );
    assert!(stats.bytes_from_origin > 0, "the rest came from the origin");
    let done = swarm.nodes[visitor_idx].finished_at.unwrap();
    // Bound: one request timeout plus origin time for the whole site (~1.2 s) plus slack.
    let timeout = peerhost_core::scheduler::SchedulerConfig::default().request_timeout;
    assert!(
        done < Instant(timeout.as_millis() as u64 + 3_000),
        "finished at {done:?}"
    );
}

#[test]
fn a_peer_that_leaves_mid_transfer_is_routed_around_to_another_peer() {
    let mut swarm = TestSwarm::new(4, site(4));
    swarm.add_node(visitor(), Behaviour::LeavesAt(Instant(500)), true);
    swarm.add_node(visitor(), Behaviour::Honest, true);
    let v = swarm.add_node(visitor(), Behaviour::Honest, false);
    assert!(swarm.run_until(Duration::from_secs(60), TestSwarm::all_complete));
    swarm.assert_all_bytes_correct();
    let s = swarm.nodes[v].client.stats();
    assert_eq!(s.bytes_from_peers + s.bytes_from_origin, swarm.site.total());
    assert!(
        s.bytes_from_peers > s.bytes_from_origin,
        "the other seeder carried the rest: {s:?}"
    );
}

#[test]
fn same_seed_same_run() {
    let run = |seed| {
        let mut swarm = TestSwarm::new(seed, site(5));
        swarm.add_node(visitor(), Behaviour::Honest, true);
        for _ in 0..4 {
            swarm.add_node(visitor(), Behaviour::Honest, false);
        }
        assert!(swarm.run_until(Duration::from_secs(60), TestSwarm::all_complete));
        swarm
            .nodes
            .iter()
            .map(|n| (n.finished_at, n.client.stats().clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(77), run(77));
}

#[test]
fn a_leech_only_visitor_uploads_nothing() {
    let mut swarm = TestSwarm::new(6, site(6));
    let leech = ClientConfig {
        leech_only: true,
        ..visitor()
    };
    let holder = swarm.add_node(leech, Behaviour::Honest, true);
    let v = swarm.add_node(visitor(), Behaviour::Honest, false);
    assert!(swarm.run_until(Duration::from_secs(60), TestSwarm::all_complete));
    swarm.assert_all_bytes_correct();
    assert_eq!(swarm.nodes[holder].client.stats().bytes_uploaded, 0);
    assert_eq!(
        swarm.nodes[v].client.stats().bytes_from_origin,
        swarm.site.total()
    );
}

#[test]
fn a_new_manifest_spreads_peer_to_peer_and_older_ones_are_ignored() {
    let mut swarm = TestSwarm::new(7, site(7));
    let a = swarm.add_node(visitor(), Behaviour::Honest, true);
    let b = swarm.add_node(visitor(), Behaviour::Honest, true);
    assert!(
        swarm.run_until(Duration::from_secs(5), |n| n.nodes[b].client.active_peers()
            > 0)
    );
    // Version 2 changes one file; only `a` hears of it from the origin.
    let mut files = swarm.site.files.clone();
    files[1].1[0] ^= 1;
    let v2 = TestSite::sign(&swarm.site.secret, &files, 2);
    swarm.give_manifest(a, &v2);
    assert!(swarm.run_until(Duration::from_secs(5), |n| {
        n.nodes[b].client.manifest().map(|m| m.version()) == Some(2)
    }));
    // Unchanged pieces were kept across the switch; only the changed piece is missing.
    let have = |n: &TestSwarm, i: usize| {
        let m = n.nodes[i].client.manifest().unwrap().manifest().clone();
        m.assets
            .iter()
            .filter(|x| n.nodes[i].client.asset_bytes(&x.path).is_some())
            .count()
    };
    assert_eq!(have(&swarm, b), 4, "four of five files carried over");
    // A latecomer that fetched version 1 from a stale cache is brought
    // forward by the tracker's push (swarms are per version, so it would not
    // meet a and b otherwise), then joins them.
    swarm.set_tracker_manifest(v2.clone());
    swarm.site.files = files.clone(); // the origin now serves version 2
    let c = swarm.add_node(visitor(), Behaviour::Honest, false);
    assert!(swarm.run_until(Duration::from_secs(10), |n| {
        n.nodes[c].finished_at.is_some()
    }));
    assert_eq!(swarm.nodes[c].client.manifest().unwrap().version(), 2);
    assert_eq!(
        swarm.nodes[c].delivered[&files[1].0], files[1].1,
        "got the version 2 bytes"
    );
    let cs = swarm.nodes[c].client.stats();
    assert!(
        cs.bytes_from_peers > cs.bytes_from_origin,
        "c joined a and b in the version 2 swarm: {cs:?}"
    );
    // A replay of version 1 is refused; nobody goes back.
    let v1 = swarm.site.signed.clone();
    for i in [a, b, c] {
        swarm.give_manifest(i, &v1);
        assert_eq!(swarm.nodes[i].client.manifest().unwrap().version(), 2);
        assert!(swarm.nodes[i].banned.is_empty());
    }
}

/// A flash crowd meets one seeder: with the signed "origin under pressure"
/// flag, visitors wait for peers instead of hitting the origin.
#[test]
fn emergency_mode_keeps_a_flash_crowd_off_the_origin() {
    let crowd = |flags: u32| {
        let mut s = site(8);
        s.signed = TestSite::sign_flags(&s.secret, &s.files, 1, flags);
        let config = NetConfig {
            origin_bytes_per_s: 500_000, // a struggling origin
            ..test_swarm::net_config()
        };
        let mut swarm = TestSwarm::with_config(8, s, config);
        swarm.add_node(visitor(), Behaviour::Honest, true);
        for _ in 0..8 {
            swarm.add_node(visitor(), Behaviour::Honest, false);
        }
        assert!(swarm.run_until(Duration::from_secs(120), TestSwarm::all_complete));
        swarm.assert_all_bytes_correct();
        let last = swarm
            .nodes
            .iter()
            .filter_map(|n| n.finished_at)
            .max()
            .unwrap();
        (swarm.origin_bytes(), last, swarm.site.total())
    };
    let (normal, normal_done, copy) = crowd(0);
    let (pressure, pressure_done, _) = crowd(peerhost_core::manifest::FLAG_ORIGIN_UNDER_PRESSURE);
    eprintln!(
        "one copy {copy} B; origin bytes normal {normal} (done {normal_done:?}), under pressure {pressure} (done {pressure_done:?})"
    );
    assert!(pressure <= normal, "emergency mode must spare the origin");
    assert!(
        pressure <= copy / 2,
        "under pressure the seeder carries the crowd"
    );
}

/// Drivers may report a channel open twice, and a peer may repeat its
/// handshake: neither may turn answers already in flight into "unrequested
/// pieces" and get an honest peer banned.
#[test]
fn repeated_open_and_handshake_do_not_get_an_honest_peer_banned() {
    use peerhost_core::client::{Client, ManifestSource, Output};
    use peerhost_core::scheduler::ConnId;
    use peerhost_core::signal::{OfferId, PeerId};
    use peerhost_core::signal::{RelayedOffer, Sdp, ServerMessage, swarm_id};
    use peerhost_core::time::{Instant, UnixTime};
    use peerhost_core::wire::Frame;

    let s = site(9);
    let wall = UnixTime(test_swarm::WALL_START);
    let mut c = Client::new(visitor(), s.secret.site_key(), 0, 1, Instant(0));
    c.handle_input(
        Instant(0),
        Input::Manifest {
            manifest: Box::new(s.signed.clone()),
            source: ManifestSource::Origin,
            wall,
        },
    );
    assert!(c.manifest().is_some());
    c.handle_input(Instant(0), Input::TrackerConnected);
    c.handle_input(
        Instant(0),
        Input::Want {
            ticket: Ticket(0),
            path: s.files[1].0.clone(),
        },
    );
    // A remote offer makes connection `conn`; we answer; the channel opens twice.
    c.handle_input(
        Instant(1),
        Input::Tracker(ServerMessage::Offer(RelayedOffer {
            info_hash: swarm_id(&s.secret.site_key(), 1),
            peer_id: PeerId(*b"-PH0001-remotepeer01"),
            offer_id: OfferId(*b"offer-id-0000000001x"),
            offer: Sdp::offer("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"),
        })),
    );
    let conn = std::iter::from_fn(|| c.poll_output())
        .find_map(|o| match o {
            Output::AcceptOffer { conn, .. } => Some(conn),
            _ => None,
        })
        .expect("accepted the offer");
    c.handle_input(
        Instant(2),
        Input::LocalSdp {
            conn,
            sdp: Sdp::answer("y"),
        },
    );
    c.handle_input(Instant(3), Input::PeerOpen { conn });
    c.handle_input(Instant(3), Input::PeerOpen { conn });
    let sent_handshakes = |c: &mut Client, conn: ConnId| {
        std::iter::from_fn(|| c.poll_output())
            .filter(
                |o| matches!(o, Output::SendPeer { conn: x, frame: Frame::Handshake { .. } } if *x == conn),
            )
            .count()
    };
    assert_eq!(
        sent_handshakes(&mut c, conn),
        1,
        "one handshake per channel"
    );
    let map = peerhost_core::piece::PieceMap::new(s.signed.manifest());
    let full = |n: u32| vec![0xffu8; n.div_ceil(8) as usize];
    let mut have = full(map.len());
    let spare = (8 - map.len() % 8) % 8;
    *have.last_mut().unwrap() &= !((1u8 << spare) - 1);
    let hs = Frame::Handshake {
        site_key: *s.secret.site_key().as_bytes(),
        version: 1,
        piece_count: map.len(),
        have,
    };
    c.handle_input(
        Instant(4),
        Input::PeerData {
            conn,
            data: Bytes::from(hs.encode()),
        },
    );
    let requested: Vec<u32> = std::iter::from_fn(|| c.poll_output())
        .filter_map(|o| match o {
            Output::SendPeer { frame, .. } => match Frame::decode(&frame.encode()) {
                Ok(Frame::Request { piece }) => Some(piece),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert!(!requested.is_empty());
    // The peer repeats its handshake, then answers the first request.
    c.handle_input(
        Instant(5),
        Input::PeerData {
            conn,
            data: Bytes::from(hs.encode()),
        },
    );
    let p = map.get(requested[0]).unwrap();
    let data = s.files[p.asset as usize].1
        [p.offset as usize..(p.offset + u64::from(p.len)) as usize]
        .to_vec()
        .into();
    c.handle_input(
        Instant(6),
        Input::PeerData {
            conn,
            data: Bytes::from(
                Frame::Piece {
                    piece: requested[0],
                    data,
                }
                .encode(),
            ),
        },
    );
    assert_eq!(c.stats().peers_banned, 0);
    assert_eq!(c.stats().bytes_from_peers, u64::from(p.len));
}

/// With hashing handed to the driver (the browser's crypto.subtle seam),
/// a liar is still dropped, nothing it sent is accepted, and the site
/// still completes.
#[test]
fn deferred_hashing_refuses_corrupt_pieces_like_inline_hashing() {
    let deferred = ClientConfig {
        deferred_hashing: true,
        ..ClientConfig::default()
    };
    let mut swarm = TestSwarm::new(12, site(12));
    let copy = swarm.site.total();
    swarm.add_node(deferred.clone(), Behaviour::CorruptPieces, true);
    swarm.add_node(deferred.clone(), Behaviour::Honest, true);
    let victims: Vec<usize> = (0..3)
        .map(|_| swarm.add_node(deferred.clone(), Behaviour::Honest, false))
        .collect();
    assert!(swarm.run_until(Duration::from_secs(60), TestSwarm::all_complete));
    swarm.assert_all_bytes_correct();
    let rejected: u64 = victims
        .iter()
        .map(|v| swarm.nodes[*v].client.stats().pieces_rejected)
        .sum();
    assert!(rejected >= 1, "corrupt pieces were hashed and refused");
    for &v in &victims {
        let n = &swarm.nodes[v];
        assert!(
            n.banned
                .iter()
                .all(|(_, r)| matches!(r, Misbehaviour::BadPiece(_)))
        );
        assert_eq!(
            n.client.stats().bytes_from_peers + n.client.stats().bytes_from_origin,
            copy
        );
    }
}

/// A ticker-style update pushed to a connected swarm of visitors and one
/// seeder: every page asks for the changed file the moment it switches, and
/// the origin serves it about once (to the seeder), not once per visitor.
#[test]
fn a_pushed_update_costs_the_origin_one_copy_per_seeder() {
    use peerhost_core::scheduler::SchedulerConfig;
    let mut swarm = TestSwarm::new(12, site(12));
    let seeder = ClientConfig {
        max_peers: 32,
        max_switch_delay: Duration::ZERO,
        // A seeder fetches what nobody has at once, for everyone.
        scheduler: SchedulerConfig {
            discovery_grace: Duration::ZERO,
            origin_wait_with_peers: Duration::ZERO,
            ..SchedulerConfig::default()
        },
        ..visitor()
    };
    let s = swarm.add_node(seeder, Behaviour::Honest, true);
    let visitors: Vec<usize> = (0..12)
        .map(|_| swarm.add_node(visitor(), Behaviour::Honest, false))
        .collect();
    assert!(swarm.run_until(Duration::from_secs(60), |n| {
        n.all_complete()
            && visitors
                .iter()
                .all(|&v| n.nodes[v].client.active_peers() > 0)
    }));
    // Version 2 changes the first file (20 kB, two pieces); the origin serves it.
    let mut files = swarm.site.files.clone();
    files[0].1[0] ^= 1;
    let v2 = TestSite::sign(&swarm.site.secret, &files, 2);
    swarm.site.files = files.clone();
    let before = swarm.origin_requests;
    swarm.push_to_all(&v2);
    assert!(swarm.run_until(Duration::from_secs(5), |n| {
        n.nodes
            .iter()
            .all(|x| x.client.manifest().unwrap().version() == 2)
    }));
    for i in std::iter::once(s).chain(visitors.iter().copied()) {
        swarm.want(i, &files[0].0);
    }
    assert!(swarm.run_until(Duration::from_secs(20), |n| {
        n.nodes.iter().all(|x| x.tickets.is_empty())
    }));
    for &v in &visitors {
        assert_eq!(swarm.nodes[v].delivered[&files[0].0], files[0].1);
    }
    let used = swarm.origin_requests - before;
    eprintln!("origin requests for the update: {used} (13 clients)");
    assert!(used <= 2, "at most 1 + seeders origin requests, got {used}");
}

/// Browser-like visitors (pieces and manifest signatures checked by the
/// driver, answered a millisecond later): a swarm completes, and a pushed
/// version reaches every one of them — from the tracker or from a peer —
/// only through the signature seam.
#[test]
fn deferred_signature_checks_carry_a_swarm_through_an_update() {
    let browser = ClientConfig {
        deferred_hashing: true,
        deferred_signatures: true,
        ..ClientConfig::default()
    };
    let mut swarm = TestSwarm::new(13, site(13));
    swarm.add_node(browser.clone(), Behaviour::Honest, true);
    let visitors: Vec<usize> = (0..4)
        .map(|_| swarm.add_node(browser.clone(), Behaviour::Honest, false))
        .collect();
    assert!(swarm.run_until(Duration::from_secs(60), TestSwarm::all_complete));
    swarm.assert_all_bytes_correct();
    let mut files = swarm.site.files.clone();
    files[0].1[0] ^= 1;
    let v2 = TestSite::sign(&swarm.site.secret, &files, 2);
    swarm.site.files = files.clone();
    swarm.push_to_all(&v2);
    assert!(swarm.run_until(Duration::from_secs(5), |n| {
        n.nodes
            .iter()
            .all(|x| x.client.manifest().unwrap().version() == 2)
    }));
    for &v in &visitors {
        swarm.want(v, &files[0].0);
    }
    assert!(swarm.run_until(Duration::from_secs(20), |n| {
        n.nodes.iter().all(|x| x.tickets.is_empty())
    }));
    for &v in &visitors {
        assert_eq!(swarm.nodes[v].delivered[&files[0].0], files[0].1);
        assert!(swarm.nodes[v].banned.is_empty());
    }
}

/// A new version arrives while a seeder still has requests of the old one
/// queued behind its upload budget: the queued requests name old piece
/// indices, which the switch must refuse rather than serve (a panic before,
/// `held pieces are stored`, found by the simulator's sports ticker).
#[test]
fn a_version_switch_refuses_uploads_queued_for_the_old_version() {
    use peerhost_core::upload::UploadLimits;
    let mut swarm = TestSwarm::new(13, TestSite::generate(13, &[200_000, 100_000], 1));
    let slow_seeder = ClientConfig {
        max_switch_delay: Duration::ZERO,
        upload: UploadLimits {
            bytes_per_sec: Some(16 * 1024),
            burst: 16 * 1024,
            total: None,
        },
        ..visitor()
    };
    let s = swarm.add_node(slow_seeder, Behaviour::Honest, true);
    let v = swarm.add_node(visitor(), Behaviour::Honest, false);
    // Until the visitor has asked the seeder for pieces it cannot send yet.
    assert!(swarm.run_until(Duration::from_secs(10), |n| {
        n.nodes[v].client.stats().bytes_from_peers > 0
    }));
    // Version 2 changes every piece of the first file.
    let mut files = swarm.site.files.clone();
    for b in files[0].1.iter_mut() {
        *b ^= 0x5a;
    }
    let v2 = TestSite::sign(&swarm.site.secret, &files, 2);
    swarm.site.files = files.clone();
    // The seeder first, alone: the visitor's requests stay queued there
    // (no cancel from a visitor that switched too).
    swarm.give_manifest(s, &v2);
    swarm.run_until(Duration::from_secs(3), |_| false);
    assert_eq!(swarm.nodes[v].client.stats().peers_banned, 0);
    swarm.push_to_all(&v2);
    assert!(swarm.run_until(Duration::from_secs(60), |n| {
        n.nodes[s].client.manifest().unwrap().version() == 2
            && n.nodes[v].client.manifest().unwrap().version() == 2
            && n.nodes[v].tickets.is_empty()
    }));
    assert_eq!(swarm.nodes[v].client.stats().peers_banned, 0);
    assert_eq!(swarm.nodes[v].delivered[&files[1].0], files[1].1);
}
