//! Unit tests of the ids and the text codec; the two codecs are checked
//! against each other in `core/tests/signal_codecs_agree.rs`.

use sha2::{Digest as _, Sha256};

use super::*;

fn id(seed: u8) -> [u8; 20] {
    // Covers control bytes, ASCII, and bytes ≥ 0x80.
    std::array::from_fn(|i| seed.wrapping_add((i as u8).wrapping_mul(13)))
}

fn site() -> SiteKey {
    SiteKey([9; 32])
}

#[test]
fn binary_string_ids_round_trip_every_byte() {
    for seed in 0..=255u8 {
        let p = PeerId(id(seed));
        let json = serde_json::to_string(&p).unwrap();
        let back: PeerId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        assert_eq!(p.to_binary_string().chars().count(), 20);
        assert_eq!(PeerId::from_binary_str(&p.to_binary_string()), Some(p));
    }
}

#[test]
fn high_bytes_travel_as_latin1_in_utf8() {
    let h = InfoHash([0xff; 20]);
    let json = serde_json::to_string(&h).unwrap();
    // "ÿ" (U+00FF) is two UTF-8 bytes, not a raw 0xFF byte and not hex.
    assert_eq!(json, format!("\"{}\"", "ÿ".repeat(20)));
    let ctrl = InfoHash([0x01; 20]);
    assert_eq!(
        serde_json::to_string(&ctrl).unwrap(),
        format!("\"{}\"", "\\u0001".repeat(20))
    );
    assert_eq!(format!("{h:?}"), format!("InfoHash({})", "ff".repeat(20)));
}

#[test]
fn ids_reject_wrong_length_and_wide_chars() {
    for bad in [
        "\"\"".to_string(),
        format!("\"{}\"", "a".repeat(19)),
        format!("\"{}\"", "a".repeat(21)),
        format!("\"{}Ā\"", "a".repeat(19)), // U+0100
        format!("\"{}😀\"", "a".repeat(19)),
        "12".to_string(),
        "null".to_string(),
    ] {
        assert!(serde_json::from_str::<PeerId>(&bad).is_err(), "{bad}");
    }
    assert_eq!(
        PeerId::from_binary_str(&"é".repeat(20)),
        Some(PeerId([0xe9; 20]))
    );
}

#[test]
fn swarm_id_depends_on_site_and_version() {
    let a = swarm_id(&site(), 1);
    assert_eq!(a, swarm_id(&site(), 1));
    assert_ne!(a, swarm_id(&site(), 2));
    assert_ne!(a, swarm_id(&SiteKey([8; 32]), 1));
    let mut h = Sha256::new();
    h.update(b"peerhost/1 swarm");
    h.update([9u8; 32]);
    h.update(1u64.to_be_bytes());
    assert_eq!(&a.0[..], &h.finalize()[..20]);
}

fn sample_clients() -> Vec<ClientMessage> {
    vec![
        ClientMessage::Announce(Announce {
            info_hash: InfoHash(id(1)),
            peer_id: PeerId(id(200)),
            numwant: Some(5),
            uploaded: 7,
            downloaded: 9,
            left: Some(0),
            event: AnnounceEvent::Started,
            offers: vec![
                Offer {
                    offer_id: OfferId(id(128)),
                    offer: Sdp::offer(
                        "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
                    ),
                },
                Offer {
                    offer_id: OfferId(id(3)),
                    offer: Sdp::offer("v=0\r\n\"quoted\" ünïcode"),
                },
            ],
        }),
        ClientMessage::Announce(Announce {
            info_hash: InfoHash(id(1)),
            peer_id: PeerId(id(2)),
            numwant: None,
            uploaded: 0,
            downloaded: 0,
            left: None,
            event: AnnounceEvent::Update,
            offers: vec![],
        }),
        ClientMessage::Answer(AnswerMsg {
            info_hash: InfoHash(id(4)),
            peer_id: PeerId(id(5)),
            to_peer_id: PeerId(id(250)),
            offer_id: OfferId(id(0)),
            answer: Sdp::answer("v=0\r\n"),
        }),
        ClientMessage::Scrape {
            info_hashes: vec![InfoHash(id(1)), InfoHash(id(130))],
        },
        ClientMessage::Scrape {
            info_hashes: vec![],
        },
        ClientMessage::PublishManifest {
            manifest: vec![0, 1, 2, 255, 254],
        },
        ClientMessage::SubscribeManifest {
            site_key: site(),
            have_version: 42,
        },
    ]
}

fn sample_servers() -> Vec<ServerMessage> {
    vec![
        ServerMessage::AnnounceResponse {
            info_hash: InfoHash(id(1)),
            interval: 120,
            complete: 3,
            incomplete: 4,
            ice_servers: Vec::new(),
        },
        ServerMessage::Offer(RelayedOffer {
            info_hash: InfoHash(id(1)),
            peer_id: PeerId(id(160)),
            offer_id: OfferId(id(161)),
            offer: Sdp::offer("v=0\r\n"),
        }),
        ServerMessage::Answer(RelayedAnswer {
            info_hash: InfoHash(id(1)),
            peer_id: PeerId(id(170)),
            offer_id: OfferId(id(171)),
            answer: Sdp::answer("v=0\r\n"),
        }),
        ServerMessage::ScrapeResponse {
            files: vec![
                (
                    InfoHash(id(1)),
                    ScrapeFile {
                        complete: 1,
                        incomplete: 2,
                        downloaded: 0,
                    },
                ),
                (InfoHash(id(140)), ScrapeFile::default()),
            ],
        },
        ServerMessage::Error {
            action: "frobnicate".into(),
            failure_reason: "unknown action".into(),
            info_hash: None,
        },
        ServerMessage::Error {
            action: ACTION_ANNOUNCE.into(),
            failure_reason: "too many".into(),
            info_hash: Some(InfoHash(id(99))),
        },
        ServerMessage::ManifestPush {
            site_key: site(),
            version: 3,
            manifest: vec![1, 2, 3],
        },
        ServerMessage::PublishResult { version: 3 },
    ]
}

#[test]
fn client_messages_round_trip() {
    for m in sample_clients() {
        let json = m.to_json();
        assert_eq!(ClientMessage::from_json(&json), Ok(m.clone()), "{json}");
    }
}

#[test]
fn server_messages_round_trip() {
    for m in sample_servers() {
        let json = m.to_json();
        let mut back = ServerMessage::from_json(&json).unwrap();
        if let ServerMessage::ScrapeResponse { files } = &mut back {
            files.sort_by_key(|(h, _)| h.to_binary_string());
        }
        let mut want = m.clone();
        if let ServerMessage::ScrapeResponse { files } = &mut want {
            files.sort_by_key(|(h, _)| h.to_binary_string());
        }
        assert_eq!(back, want, "{json}");
    }
}

#[test]
fn parses_what_webtorrent_sends() {
    // JSON.stringify escapes control characters.
    let ih = "\u{00e4}bcdefghijklmnopqrs\\u0001";
    let pid = "-WW0208-\u{0080}\u{00ff}abcdefghij";
    let text = format!(
        r#"{{"numwant":50,"uploaded":0,"downloaded":0,"left":null,"event":"started","action":"announce","info_hash":"{ih}","peer_id":"{pid}","offers":[{{"offer":{{"type":"offer","sdp":"v=0\r\n"}},"offer_id":"{ih}"}}],"trackerid":"x"}}"#
    );
    let ClientMessage::Announce(a) = ClientMessage::from_json(&text).unwrap() else {
        panic!("not an announce")
    };
    assert_eq!(a.left, None);
    assert_eq!(a.info_hash.0[0], 0xe4);
    assert_eq!(a.info_hash.0[19], 0x01);
    assert_eq!(a.peer_id.0[8], 0x80);
    assert_eq!(a.peer_id.0[9], 0xff);
    assert_eq!(a.offers.len(), 1);
    assert_eq!(a.event, AnnounceEvent::Started);

    let answer = format!(
        r#"{{"action":"announce","info_hash":"{ih}","peer_id":"{pid}","to_peer_id":"{pid}","answer":{{"type":"answer","sdp":"v=0"}},"offer_id":"{ih}"}}"#
    );
    assert!(matches!(
        ClientMessage::from_json(&answer),
        Ok(ClientMessage::Answer(_))
    ));
    let lenient = format!(
        r#"{{"action":"announce","info_hash":"{ih}","peer_id":"{pid}","uploaded":-5,"downloaded":1.9,"left":1e300}}"#
    );
    let ClientMessage::Announce(a) = ClientMessage::from_json(&lenient).unwrap() else {
        panic!()
    };
    assert_eq!((a.uploaded, a.downloaded, a.left), (0, 1, Some(u64::MAX)));
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let ih = "a".repeat(20);
    let cases = [
        String::new(),
        "null".into(),
        "[]".into(),
        "{".into(),
        "{}".into(),
        r#"{"action":5}"#.into(),
        r#"{"action":"frob"}"#.into(),
        r#"{"action":"announce"}"#.into(),
        format!(r#"{{"action":"announce","info_hash":"{ih}"}}"#),
        format!(r#"{{"action":"announce","info_hash":["{ih}","{ih}"],"peer_id":"{ih}"}}"#),
        format!(r#"{{"action":"announce","info_hash":"{ih}","peer_id":"{ih}","event":"x"}}"#),
        format!(
            r#"{{"action":"announce","info_hash":"{ih}","peer_id":"{ih}","offers":[{{"offer_id":"{ih}","offer":{{"type":"answer","sdp":""}}}}]}}"#
        ),
        format!(
            r#"{{"action":"announce","info_hash":"{ih}","peer_id":"{ih}","answer":{{"type":"answer","sdp":""}}}}"#
        ),
        format!(r#"{{"action":"announce","info_hash":"{ih}","peer_id":"{ih}","offers":5}}"#),
        r#"{"action":"peerhost_publish"}"#.into(),
        r#"{"action":"peerhost_publish","manifest":"!!"}"#.into(),
        r#"{"action":"peerhost_manifest","site_key":"short"}"#.into(),
        format!(
            r#"{{"action":"scrape","info_hash":[{}]}}"#,
            vec![format!("\"{ih}\""); 256].join(",")
        ),
        "[".repeat(10_000),
    ];
    for c in &cases {
        assert!(ClientMessage::from_json(c).is_err(), "{c}");
        let _ = ServerMessage::from_json(c);
    }
    assert_eq!(
        ClientMessage::from_json(r#"{"action":"frob"}"#),
        Err(SignalError::UnknownAction("frob".into()))
    );
    assert_eq!(
        ClientMessage::from_json("{}"),
        Err(SignalError::MissingAction)
    );
}

#[test]
fn every_truncation_of_valid_messages_is_total() {
    for m in sample_clients() {
        let json = m.to_json();
        for (i, _) in json.char_indices() {
            let _ = ClientMessage::from_json(&json[..i]);
            let _ = ServerMessage::from_json(&json[..i]);
        }
    }
}

#[test]
fn sdp_check() {
    let good = Sdp::offer(
        "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n",
    );
    assert!(good.check(MAX_SDP_LEN, MAX_SDP_CANDIDATES).is_ok());
    assert!(good.check(10, MAX_SDP_CANDIDATES).is_err());
    assert!(
        Sdp::offer("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n")
            .check(MAX_SDP_LEN, 16)
            .is_err()
    );
    let flood = format!(
        "v=0\r\n{}",
        "a=candidate:1 1 udp 1 1.2.3.4 5 typ host\r\n".repeat(17)
    );
    assert!(Sdp::offer(flood).check(MAX_SDP_LEN, 16).is_err());
    assert!(Sdp::offer("v=0\0").check(MAX_SDP_LEN, 16).is_err());
}

#[test]
fn update_event_is_omitted_and_absent_means_update() {
    let m = &sample_clients()[1];
    let json = m.to_json();
    assert!(!json.contains("event"), "{json}");
    assert!(!json.contains("offers"), "{json}");
    assert!(!json.contains("left"), "{json}");
}

mod props {
    use super::super::*;
    use crate::json::MAX_SAFE_INTEGER;
    use proptest::prelude::*;

    fn arb_id() -> impl Strategy<Value = [u8; 20]> {
        proptest::array::uniform20(any::<u8>())
    }

    fn arb_sdp() -> impl Strategy<Value = String> {
        proptest::string::string_regex("(v=0|m=application 9 x|a=candidate:[0-9 a-z.]{0,20}|[\\x00-\\u{2FF}\"\\\\]{0,12})(\r\n[ -~]{0,30}){0,6}")
            .unwrap()
    }

    proptest! {
        #[test]
        fn announce_round_trips(ih in arb_id(), pid in arb_id(), oids in proptest::collection::vec(arb_id(), 0..4),
                                sdp in arb_sdp(), numwant in proptest::option::of(0..=MAX_SAFE_INTEGER),
                                up in 0..=MAX_SAFE_INTEGER, left in proptest::option::of(0..=MAX_SAFE_INTEGER), ev in 0..5u8) {
            let event = [AnnounceEvent::Started, AnnounceEvent::Stopped, AnnounceEvent::Completed,
                         AnnounceEvent::Update, AnnounceEvent::Paused][ev as usize];
            let m = ClientMessage::Announce(Announce {
                info_hash: InfoHash(ih), peer_id: PeerId(pid), numwant, uploaded: up, downloaded: up / 2,
                left, event,
                offers: oids.into_iter().map(|o| Offer { offer_id: OfferId(o), offer: Sdp::offer(sdp.clone()) }).collect(),
            });
            prop_assert_eq!(ClientMessage::from_json(&m.to_json()), Ok(m));
        }

        #[test]
        fn relays_round_trip(ih in arb_id(), pid in arb_id(), oid in arb_id(), sdp in arb_sdp()) {
            for m in [
                ServerMessage::Offer(RelayedOffer { info_hash: InfoHash(ih), peer_id: PeerId(pid), offer_id: OfferId(oid), offer: Sdp::offer(sdp.clone()) }),
                ServerMessage::Answer(RelayedAnswer { info_hash: InfoHash(ih), peer_id: PeerId(pid), offer_id: OfferId(oid), answer: Sdp::answer(sdp.clone()) }),
            ] {
                prop_assert_eq!(ServerMessage::from_json(&m.to_json()), Ok(m));
            }
            let a = ClientMessage::Answer(AnswerMsg { info_hash: InfoHash(ih), peer_id: PeerId(pid), to_peer_id: PeerId(oid), offer_id: OfferId(oid), answer: Sdp::answer(sdp) });
            prop_assert_eq!(ClientMessage::from_json(&a.to_json()), Ok(a));
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = ClientMessage::from_json(&text);
            let _ = ServerMessage::from_json(&text);
        }

        #[test]
        fn mutated_messages_never_panic(pos in 0usize..400, byte in any::<u8>(), ih in arb_id()) {
            let m = ClientMessage::Announce(Announce {
                info_hash: InfoHash(ih), peer_id: PeerId(ih), numwant: Some(1), uploaded: 0, downloaded: 0,
                left: None, event: AnnounceEvent::Started,
                offers: vec![Offer { offer_id: OfferId(ih), offer: Sdp::offer("v=0\r\n") }],
            });
            let mut bytes = m.to_json().into_bytes();
            let at = pos % bytes.len();
            bytes[at] = byte;
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let _ = ClientMessage::from_json(text);
                let _ = ServerMessage::from_json(text);
            }
        }
    }
}
