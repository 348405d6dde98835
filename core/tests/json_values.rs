//! The browser parses JSON with `JSON.parse` and hands the core a
//! `JsonValue`: `from_value` must agree with the text parsers (`from_json`)
//! on every tracker message and manifest, valid or not — same value, or
//! both refusing.

use peerhost_core::json::{JsonValue, MAX_SAFE_INTEGER};
use peerhost_core::manifest::{
    Asset, FLAG_ORIGIN_UNDER_PRESSURE, MIN_PIECE_SIZE, Manifest, SignedManifest, SiteSecret,
};
use peerhost_core::signal::{
    Announce, AnnounceEvent, AnswerMsg, ClientMessage, InfoHash, Offer, OfferId, PeerId,
    RelayedAnswer, RelayedOffer, Sdp, ServerMessage,
};
use serde_json::{Value, json};

/// What `JSON.parse` would give the driver: numbers as f64.
fn js(v: &Value) -> JsonValue {
    match v {
        Value::Null => JsonValue::Null,
        Value::Bool(b) => JsonValue::Bool(*b),
        Value::Number(n) => JsonValue::Number(n.as_f64().unwrap()),
        Value::String(s) => JsonValue::String(s.clone()),
        Value::Array(a) => JsonValue::Array(a.iter().map(js).collect()),
        Value::Object(o) => JsonValue::Object(o.iter().map(|(k, v)| (k.clone(), js(v))).collect()),
    }
}

/// What `JSON.stringify` of the driver's object would read back as.
fn back(v: &JsonValue) -> Value {
    match v {
        JsonValue::Null => Value::Null,
        JsonValue::Bool(b) => Value::Bool(*b),
        JsonValue::Number(n) => {
            assert!(n.fract() == 0.0 && *n >= 0.0 && *n <= MAX_SAFE_INTEGER as f64);
            json!(*n as u64)
        }
        JsonValue::String(s) => Value::String(s.clone()),
        JsonValue::Array(a) => Value::Array(a.iter().map(back).collect()),
        JsonValue::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), back(v))).collect())
        }
    }
}

#[track_caller]
fn agree_server(v: &Value) {
    let text = ServerMessage::from_json(&v.to_string());
    let value = ServerMessage::from_value(&js(v));
    match (&text, &value) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{v}"),
        (Err(_), Err(_)) => {}
        _ => panic!("disagree on {v}: text {text:?}, value {value:?}"),
    }
}

#[track_caller]
fn agree_manifest(v: &Value) {
    let text = SignedManifest::from_json(&v.to_string());
    let value = SignedManifest::from_value(&js(v));
    match (&text, &value) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{v}"),
        (Err(_), Err(_)) => {}
        _ => panic!("disagree on {v}: text {text:?}, value {value:?}"),
    }
}

fn id(b: u8) -> [u8; 20] {
    let mut a = [b; 20];
    a[0] = 0xff; // a high byte: travels as U+00FF
    a[1] = 0;
    a
}

fn server_messages() -> Vec<ServerMessage> {
    let secret = SiteSecret::from_seed([4; 32]);
    vec![
        ServerMessage::AnnounceResponse {
            info_hash: InfoHash(id(1)),
            interval: 120,
            complete: 3,
            incomplete: 9,
            ice_servers: Vec::new(),
        },
        ServerMessage::Offer(RelayedOffer {
            info_hash: InfoHash(id(2)),
            peer_id: PeerId(id(3)),
            offer_id: OfferId(id(4)),
            offer: Sdp::offer("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"),
        }),
        ServerMessage::Answer(RelayedAnswer {
            info_hash: InfoHash(id(5)),
            peer_id: PeerId(id(6)),
            offer_id: OfferId(id(7)),
            answer: Sdp::answer("v=0\r\n\"quoted\" \\ é"),
        }),
        ServerMessage::Error {
            action: "announce".into(),
            failure_reason: "nope".into(),
            info_hash: Some(InfoHash(id(8))),
        },
        ServerMessage::Error {
            action: "scrape".into(),
            failure_reason: "nope".into(),
            info_hash: None,
        },
        ServerMessage::ManifestPush {
            site_key: secret.site_key(),
            version: 7,
            manifest: vec![1, 2, 3, 250],
        },
        ServerMessage::PublishResult { version: 9 },
        ServerMessage::ScrapeResponse {
            files: vec![(
                InfoHash(id(9)),
                peerhost_core::signal::ScrapeFile {
                    complete: 1,
                    incomplete: 2,
                    downloaded: 0,
                },
            )],
        },
    ]
}

#[test]
fn every_server_message_reads_the_same_from_a_value() {
    for m in server_messages() {
        let v: Value = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(ServerMessage::from_value(&js(&v)).as_ref(), Ok(&m), "{v}");
        agree_server(&v);
    }
}

#[test]
fn odd_and_broken_server_messages_are_judged_the_same() {
    let ih: String = id(1).iter().map(|&b| char::from(b)).collect();
    let pid: String = id(2).iter().map(|&b| char::from(b)).collect();
    let cases = [
        json!(null),
        json!([]),
        json!("announce"),
        json!({}),
        json!({"action": 5}),
        json!({"action": "announce"}),
        json!({"action": "announce", "info_hash": ih}),
        json!({"action": "announce", "info_hash": ih, "interval": null, "complete": -4, "incomplete": 2.7}),
        json!({"action": "announce", "info_hash": ih, "interval": 1e30}),
        json!({"action": "announce", "info_hash": ih, "interval": "60"}),
        json!({"action": "announce", "info_hash": ih, "unknown": {"deep": [1, 2]}}),
        json!({"action": "announce", "info_hash": "short"}),
        json!({"action": "announce", "info_hash": 7}),
        json!({"action": "announce", "info_hash": "é".repeat(20)}),
        json!({"action": "announce", "info_hash": "ā".repeat(20)}),
        json!({"action": "announce", "info_hash": ih, "offer": {"type": "offer", "sdp": "x"}}),
        json!({"action": "announce", "info_hash": ih, "peer_id": pid, "offer_id": pid, "offer": {"type": "offer", "sdp": "x", "extra": 1}}),
        json!({"action": "announce", "info_hash": ih, "peer_id": pid, "offer_id": pid, "offer": {"type": "pranswer", "sdp": "x"}}),
        json!({"action": "announce", "info_hash": ih, "peer_id": pid, "offer_id": pid, "offer": {"type": "offer"}}),
        json!({"action": "announce", "info_hash": ih, "peer_id": pid, "offer_id": pid, "offer": "x"}),
        json!({"action": "announce", "info_hash": ih, "peer_id": pid, "offer_id": pid, "answer": {"type": "answer", "sdp": "y"}, "offer": null}),
        json!({"action": "announce", "failure reason": "full"}),
        json!({"action": "announce", "failure reason": 3}),
        json!({"action": "scrape", "files": {}}),
        json!({"action": "scrape", "files": {ih.clone(): {"complete": 1, "incomplete": 2, "downloaded": 3}}}),
        json!({"action": "scrape", "files": {ih.clone(): {"complete": 1.5, "incomplete": 2, "downloaded": 3}}}),
        json!({"action": "scrape", "files": {ih.clone(): {"complete": 1, "incomplete": 2}}}),
        json!({"action": "scrape", "files": {"bad": {"complete": 1, "incomplete": 2, "downloaded": 3}}}),
        json!({"action": "scrape", "files": []}),
        json!({"action": "manifest"}),
        json!({"action": "manifest", "site_key": "x", "version": 1, "manifest": "AAAA"}),
        json!({"action": "manifest", "site_key": SiteSecret::from_seed([1; 32]).site_key().to_string(), "version": 1, "manifest": "AAAA"}),
        json!({"action": "manifest", "site_key": SiteSecret::from_seed([1; 32]).site_key().to_string(), "version": 1, "manifest": "not base64!"}),
        json!({"action": "manifest", "site_key": SiteSecret::from_seed([1; 32]).site_key().to_string(), "manifest": "AAAA"}),
        json!({"action": "publish", "version": 3}),
        json!({"action": "publish"}),
        json!({"action": "dance"}),
    ];
    for v in &cases {
        agree_server(v);
    }
}

fn signed(flags: u32) -> SignedManifest {
    let secret = SiteSecret::from_seed([2; 32]);
    Manifest {
        site_key: secret.site_key(),
        version: 3,
        issued_at: 1_800_000_000,
        expires_at: 1_800_003_600,
        flags,
        assets: vec![
            Asset::from_bytes("/a/b.css", "text/css", MIN_PIECE_SIZE, &[3; 2500]),
            Asset::from_bytes("/empty", "application/octet-stream", MIN_PIECE_SIZE, b""),
            Asset::from_bytes("/é.txt", "text/plain", 16 * 1024, &[9; 40_000]),
        ],
    }
    .sign(&secret)
    .unwrap()
}

#[test]
fn manifests_read_the_same_from_a_value() {
    for m in [signed(0), signed(FLAG_ORIGIN_UNDER_PRESSURE)] {
        let v: Value = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(SignedManifest::from_value(&js(&v)).as_ref(), Ok(&m));
        agree_manifest(&v);
        // Without the optional flags field.
        let mut no_flags = v.clone();
        no_flags.as_object_mut().unwrap().remove("flags");
        agree_manifest(&no_flags);
    }
}

#[test]
fn broken_manifests_are_refused_the_same() {
    let v: Value = serde_json::from_str(&signed(0).to_json()).unwrap();
    type Edit = Box<dyn Fn(&mut Value)>;
    let edits: Vec<Edit> = vec![
        Box::new(|v| *v = json!([])),
        Box::new(|v| *v = json!(null)),
        Box::new(|v| v["extra"] = json!(1)),
        Box::new(|v| {
            v.as_object_mut().unwrap().remove("signature");
        }),
        Box::new(|v| {
            v.as_object_mut().unwrap().remove("assets");
        }),
        Box::new(|v| v["format"] = json!("peerhost-manifest/2")),
        Box::new(|v| v["format"] = json!(1)),
        Box::new(|v| v["version"] = json!(-1)),
        Box::new(|v| v["version"] = json!(1.5)),
        Box::new(|v| v["version"] = json!("3")),
        Box::new(|v| v["version"] = json!(null)),
        Box::new(|v| v["flags"] = json!(4_294_967_296u64)),
        Box::new(|v| v["flags"] = json!(2)),
        Box::new(|v| v["site_key"] = json!("short")),
        Box::new(|v| v["signature"] = json!("AAAA")),
        Box::new(|v| v["assets"] = json!({})),
        Box::new(|v| v["assets"][0]["extra"] = json!(true)),
        Box::new(|v| {
            v["assets"][0].as_object_mut().unwrap().remove("pieces");
        }),
        Box::new(|v| v["assets"][0]["pieces"] = json!("x")),
        Box::new(|v| v["assets"][0]["pieces"][0] = json!(5)),
        Box::new(|v| v["assets"][0]["pieces"][0] = json!("AAAA")),
        Box::new(|v| v["assets"][0]["size"] = json!(2501)),
        Box::new(|v| v["assets"][0]["piece_size"] = json!(1000)),
        Box::new(|v| v["assets"][0]["piece_size"] = json!(4_294_968_320u64)),
        Box::new(|v| v["assets"][0]["integrity"] = json!("md5-x")),
        Box::new(|v| v["assets"][0]["path"] = json!("no-slash")),
        Box::new(|v| v["assets"][0] = json!(7)),
    ];
    for edit in edits {
        let mut w = v.clone();
        edit(&mut w);
        agree_manifest(&w);
    }
}

/// The one intended difference: `JSON.parse` cannot hold integers above
/// 2^53 exactly, so `from_value` refuses them (the text parser reads them,
/// and the signature would then decide).
#[test]
fn integers_beyond_2_pow_53_are_refused_from_a_value() {
    let mut v: Value = serde_json::from_str(&signed(0).to_json()).unwrap();
    v["expires_at"] = json!(MAX_SAFE_INTEGER + 1);
    assert!(SignedManifest::from_value(&js(&v)).is_err());
}

fn client_messages() -> Vec<ClientMessage> {
    let secret = SiteSecret::from_seed([4; 32]);
    let announce = Announce {
        info_hash: InfoHash(id(1)),
        peer_id: PeerId(id(2)),
        numwant: Some(5),
        uploaded: 1 << 40,
        downloaded: 7,
        left: Some(0),
        event: AnnounceEvent::Started,
        offers: vec![
            Offer {
                offer_id: OfferId(id(3)),
                offer: Sdp::offer("v=0\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n"),
            },
            Offer {
                offer_id: OfferId(id(4)),
                offer: Sdp::offer("\"\\\u{1}é€"),
            },
        ],
    };
    vec![
        ClientMessage::Announce(announce.clone()),
        ClientMessage::Announce(Announce {
            numwant: None,
            left: None,
            event: AnnounceEvent::Update,
            offers: vec![],
            ..announce.clone()
        }),
        ClientMessage::Announce(Announce {
            event: AnnounceEvent::Stopped,
            ..announce.clone()
        }),
        ClientMessage::Answer(AnswerMsg {
            info_hash: InfoHash(id(5)),
            peer_id: PeerId(id(6)),
            to_peer_id: PeerId(id(7)),
            offer_id: OfferId(id(8)),
            answer: Sdp::answer("v=0\r\n"),
        }),
        ClientMessage::Scrape {
            info_hashes: vec![],
        },
        ClientMessage::Scrape {
            info_hashes: vec![InfoHash(id(9)), InfoHash(id(10))],
        },
        ClientMessage::PublishManifest {
            manifest: signed(0).to_bytes(),
        },
        ClientMessage::SubscribeManifest {
            site_key: secret.site_key(),
            have_version: 12,
        },
    ]
}

#[test]
fn client_messages_write_the_same_fields_as_to_json() {
    for m in client_messages() {
        let written: Value = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(back(&m.to_value()), written);
        // And the tracker reads it back as the same message.
        assert_eq!(
            ClientMessage::from_json(&back(&m.to_value()).to_string()),
            Ok(m)
        );
    }
}

#[test]
fn a_manifest_writes_the_same_document_as_to_json() {
    for m in [signed(0), signed(FLAG_ORIGIN_UNDER_PRESSURE)] {
        let written: Value = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(back(&m.to_value()), written);
        assert_eq!(SignedManifest::from_value(&m.to_value()), Ok(m));
    }
}
