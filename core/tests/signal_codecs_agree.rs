//! The two codecs of the tracker dialect agree: serde on JSON text (tracker,
//! seeder, CLI) and `JsonValue` (the browser, after `JSON.parse`) make the
//! same accept/refuse decision and the same value from the same text, and
//! write the same JSON, for client and server messages.
//!
//! `JSON.parse` is stood in for by [`json_parse`]: serde_json into a
//! `JsonValue` with JavaScript's rules (numbers are `f64`, a repeated key
//! keeps the last value). Inputs where the two cannot agree are listed in
//! the `signal` module doc and tested at the end, as documented differences.
//!
//! The `#[ignore]`d `bench_*` test times the tracker's hot path both ways
//! (`cargo test -p peerhost-core --release --test signal_codecs_agree --
//! --ignored --nocapture`); its figures are in the `signal` module doc.

use std::fmt;

use peerhost_core::ice::IceServer;
use peerhost_core::json::{JsonValue, MAX_SAFE_INTEGER};
use peerhost_core::manifest::SiteKey;
use peerhost_core::signal::*;
use proptest::prelude::*;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

// ---------------------------------------------------------------------------
// JSON.parse / JSON.stringify stand-ins

struct Parsed(JsonValue);

impl<'de> Deserialize<'de> for Parsed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Parsed;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Parsed, E> {
                Ok(Parsed(JsonValue::Null))
            }
            fn visit_bool<E>(self, b: bool) -> Result<Parsed, E> {
                Ok(Parsed(JsonValue::Bool(b)))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Parsed, E> {
                Ok(Parsed(JsonValue::Number(n as f64)))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Parsed, E> {
                Ok(Parsed(JsonValue::Number(n as f64)))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Parsed, E> {
                Ok(Parsed(JsonValue::Number(n)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Parsed, E> {
                Ok(Parsed(JsonValue::String(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Parsed, E> {
                Ok(Parsed(JsonValue::String(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Parsed, A::Error> {
                let mut items = Vec::new();
                while let Some(Parsed(v)) = seq.next_element()? {
                    items.push(v);
                }
                Ok(Parsed(JsonValue::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
                let mut fields: Vec<(String, JsonValue)> = Vec::new();
                while let Some((k, Parsed(v))) = map.next_entry::<String, Parsed>()? {
                    // JSON.parse: a repeated key keeps the last value.
                    match fields.iter_mut().find(|(key, _)| *key == k) {
                        Some(slot) => slot.1 = v,
                        None => fields.push((k, v)),
                    }
                }
                Ok(Parsed(JsonValue::Object(fields)))
            }
        }
        d.deserialize_any(V)
    }
}

/// `JSON.parse`, as far as serde_json can tell.
fn json_parse(text: &str) -> Option<JsonValue> {
    serde_json::from_str::<Parsed>(text).ok().map(|p| p.0)
}

struct Written<'a>(&'a JsonValue);

impl Serialize for Written<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            JsonValue::Null => s.serialize_unit(),
            JsonValue::Bool(b) => s.serialize_bool(*b),
            JsonValue::Number(n) if n.fract() == 0.0 && n.abs() <= MAX_SAFE_INTEGER as f64 => {
                s.serialize_i64(*n as i64)
            }
            JsonValue::Number(n) => s.serialize_f64(*n),
            JsonValue::String(v) => s.serialize_str(v),
            JsonValue::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(&Written(i))?;
                }
                seq.end()
            }
            JsonValue::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, &Written(v))?;
                }
                map.end()
            }
        }
    }
}

/// `JSON.stringify`.
fn json_stringify(v: &JsonValue) -> String {
    serde_json::to_string(&Written(v)).unwrap()
}

/// Object keys sorted, recursively: JSON objects are unordered.
fn normalized(v: &JsonValue) -> JsonValue {
    match v {
        JsonValue::Array(items) => JsonValue::Array(items.iter().map(normalized).collect()),
        JsonValue::Object(fields) => {
            let mut f: Vec<_> = fields
                .iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect();
            f.sort_by(|a, b| a.0.cmp(&b.0));
            JsonValue::Object(f)
        }
        other => other.clone(),
    }
}

// ---------------------------------------------------------------------------
// Agreement

/// What the browser's path makes of `text`.
fn via_value<T>(
    text: &str,
    from_value: fn(&JsonValue) -> Result<T, SignalError>,
) -> Result<T, SignalError> {
    // The browser driver checks the length before JSON.parse.
    if text.len() > MAX_JSON_LEN {
        return Err(SignalError::TooLarge(text.len()));
    }
    match json_parse(text) {
        Some(v) => from_value(&v),
        None => Err(SignalError::Malformed("JSON.parse".into())),
    }
}

/// Same value, or errors of the same kind (and the same error, but for
/// the wording of `Malformed`).
fn same<T: PartialEq + fmt::Debug>(a: &Result<T, SignalError>, b: &Result<T, SignalError>) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => x == y,
        (Err(SignalError::Malformed(_)), Err(SignalError::Malformed(_))) => true,
        (Err(x), Err(y)) => x == y,
        _ => false,
    }
}

fn sorted(m: ServerMessage) -> ServerMessage {
    match m {
        ServerMessage::ScrapeResponse { mut files } => {
            files.sort_by_key(|(h, _)| *h);
            ServerMessage::ScrapeResponse { files }
        }
        other => other,
    }
}

/// Both decoders of both message directions agree on `text`.
fn assert_decoders_agree(text: &str) {
    if let Err(e) = serde_json::from_str::<Parsed>(text) {
        // JSON.parse reads 1e400 as Infinity; serde_json cannot, so the
        // stand-in cannot say what the browser does (a documented
        // difference, see `documented_differences`).
        if e.to_string().contains("number out of range") {
            return;
        }
    }
    let serde = ClientMessage::from_json(text);
    let value = via_value(text, ClientMessage::from_value);
    assert!(
        same(&serde, &value),
        "client codecs disagree on {text:?}:\n serde: {serde:?}\n value: {value:?}"
    );
    let serde = ServerMessage::from_json(text).map(sorted);
    let value = via_value(text, ServerMessage::from_value).map(sorted);
    assert!(
        same(&serde, &value),
        "server codecs disagree on {text:?}:\n serde: {serde:?}\n value: {value:?}"
    );
}

/// Both encoders write the same JSON, and both decoders read it back.
fn assert_client_codecs_agree(m: &ClientMessage, wrong: &[String]) {
    let text = m.to_json();
    let written = json_parse(&text).expect("to_json writes JSON");
    assert_eq!(normalized(&written), normalized(&m.to_value()), "{text}");
    assert_eq!(ClientMessage::from_json(&text).as_ref(), Ok(m));
    assert_eq!(ClientMessage::from_value(&m.to_value()).as_ref(), Ok(m));
    let browser_text = json_stringify(&m.to_value());
    assert_eq!(ClientMessage::from_json(&browser_text).as_ref(), Ok(m));
    decoders_agree_on_variants_of(&text, wrong);
}

fn assert_server_codecs_agree(m: &ServerMessage, wrong: &[String]) {
    let text = m.to_json();
    let written = json_parse(&text).expect("to_json writes JSON");
    assert_eq!(normalized(&written), normalized(&m.to_value()), "{text}");
    let want = sorted(m.clone());
    assert_eq!(
        ServerMessage::from_json(&text).map(sorted),
        Ok(want.clone())
    );
    let back = ServerMessage::from_value(&m.to_value()).map(sorted);
    assert_eq!(back, Ok(want.clone()));
    let from_value_text = json_stringify(&m.to_value());
    assert_eq!(
        ServerMessage::from_json(&from_value_text).map(sorted),
        Ok(want)
    );
    decoders_agree_on_variants_of(&text, wrong);
}

/// Values of every JSON type, plus edge numbers and strings.
fn wrong_values() -> Vec<String> {
    let ih = "a".repeat(20);
    [
        "null",
        "true",
        "0",
        "-1",
        "1.5",
        "1e2",
        "1e300",
        "-1e300",
        "9007199254740991",
        "9007199254740993",
        "18446744073709551616",
        "\"\"",
        "\"x\"",
        "\"offer\"",
        "[]",
        "{}",
        "[1,2]",
        r#"{"type":"offer","sdp":"v=0"}"#,
        r#"{"type":"answer","sdp":"v=0"}"#,
        r#"{"type":"offer"}"#,
        r#"{"type":{"offer":null},"sdp":"v=0"}"#,
        r#"["offer","v=0"]"#,
        r#"{"complete":1,"incomplete":2.0,"downloaded":0}"#,
        r#"[1,2,3]"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("\"{ih}\""),
        format!("[\"{ih}\"]"),
        format!("[\"{ih}\",null]"),
        format!("\"{}\"", "a".repeat(19)),
        format!("\"{}\\u0001\\u00ff\"", "a".repeat(18)),
        format!("\"{}Ā\"", "a".repeat(19)),
        format!(
            "[{}]",
            vec![format!("\"{ih}\""); MAX_SCRAPE_HASHES + 1].join(",")
        ),
        format!(r#"[{{"offer_id":"{ih}","offer":{{"type":"offer","sdp":""}}}}]"#),
        r#"[{"offer_id":null,"offer":{"type":"offer","sdp":""}}]"#.to_string(),
        format!(r#"[{{"offer_id":"{ih}"}}]"#),
        format!(r#"[["{ih}",{{"type":"offer","sdp":""}}]]"#),
        format!(r#"{{"{ih}":{{"complete":1,"incomplete":2,"downloaded":3}}}}"#),
        format!(r#"{{"{ih}":[1,2,3]}}"#),
        format!(r#"{{"{ih}":{{"complete":-1,"incomplete":2,"downloaded":3}}}}"#),
        format!(r#"{{"{ih}":{{"complete":9007199254740992,"incomplete":2,"downloaded":3}}}}"#),
        r#"{"x":{"complete":1,"incomplete":2,"downloaded":3}}"#.to_string(),
        format!("\"{}\"", "A".repeat(MAX_JSON_LEN / 2)),
    ])
    .collect()
}

/// Every truncation, every key removed, every key given every value of
/// `wrong` (all of [`wrong_values`] for the fixed corpus, a few for the
/// generated messages, to keep the test quick), and an unknown key added.
fn decoders_agree_on_variants_of(text: &str, wrong: &[String]) {
    for (i, _) in text.char_indices() {
        assert_decoders_agree(&text[..i]);
    }
    let Some(JsonValue::Object(fields)) = json_parse(text) else {
        panic!("not an object: {text}")
    };
    for (i, (key, _)) in fields.iter().enumerate() {
        let mut without = fields.clone();
        without.remove(i);
        assert_decoders_agree(&json_stringify(&JsonValue::Object(without)));
        for w in wrong {
            let mut changed: Vec<String> = fields
                .iter()
                .map(|(k, v)| {
                    let v = if k == key {
                        w.clone()
                    } else {
                        json_stringify(v)
                    };
                    format!("{}:{v}", serde_json::to_string(k).unwrap())
                })
                .collect();
            assert_decoders_agree(&format!("{{{}}}", changed.join(",")));
            changed.push(format!("\"trackerid\":{w}"));
            assert_decoders_agree(&format!("{{{}}}", changed.join(",")));
        }
    }
}

// ---------------------------------------------------------------------------
// Corpus

/// Control bytes, ASCII and bytes ≥ 0x80 in every id.
fn id(seed: u8) -> [u8; 20] {
    std::array::from_fn(|i| seed.wrapping_add((i as u8).wrapping_mul(13)))
}

fn site() -> SiteKey {
    SiteKey([7; 32])
}

fn clients() -> Vec<ClientMessage> {
    let sdp = "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=x:\"q\" ü\u{1}";
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
                    offer: Sdp::offer(sdp),
                },
                Offer {
                    offer_id: OfferId([0; 20]),
                    offer: Sdp::offer(""),
                },
            ],
        }),
        ClientMessage::Announce(Announce {
            info_hash: InfoHash([0xff; 20]),
            peer_id: PeerId([0x1f; 20]),
            numwant: None,
            uploaded: MAX_SAFE_INTEGER,
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
            answer: Sdp::answer(sdp),
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

fn servers() -> Vec<ServerMessage> {
    vec![
        ServerMessage::AnnounceResponse {
            info_hash: InfoHash(id(1)),
            interval: 120,
            complete: 3,
            incomplete: MAX_SAFE_INTEGER,
            ice_servers: Vec::new(),
        },
        ServerMessage::AnnounceResponse {
            info_hash: InfoHash(id(2)),
            interval: 60,
            complete: 0,
            incomplete: 1,
            ice_servers: vec![
                IceServer::url("stun:192.0.2.1:3478"),
                IceServer {
                    urls: vec![
                        "turn:192.0.2.1:3478?transport=udp".into(),
                        "turns:192.0.2.1:5349".into(),
                    ],
                    username: Some("1800003600:peerhost7".into()),
                    credential: Some("b64+/=".into()),
                },
            ],
        },
        ServerMessage::Offer(RelayedOffer {
            info_hash: InfoHash(id(1)),
            peer_id: PeerId(id(160)),
            offer_id: OfferId(id(161)),
            offer: Sdp::offer("v=0\r\n\u{0}"),
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
        ServerMessage::ScrapeResponse { files: vec![] },
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
fn every_client_message_and_its_variants() {
    let wrong = wrong_values();
    for m in clients() {
        assert_client_codecs_agree(&m, &wrong);
    }
}

#[test]
fn every_server_message_and_its_variants() {
    let wrong = wrong_values();
    for m in servers() {
        assert_server_codecs_agree(&m, &wrong);
    }
}

#[test]
fn odd_texts() {
    let ih = "\\u0000".repeat(20);
    for text in [
        String::new(),
        "null".into(),
        "5".into(),
        "\"announce\"".into(),
        "[]".into(),
        r#"["announce"]"#.into(),
        "{".into(),
        "{}".into(),
        r#"{"action":null}"#.into(),
        r#"{"action":"frob"}"#.into(),
        format!(r#"{{"action":"{}"}}"#, "x".repeat(100)),
        format!(r#"{{"action":"announce","info_hash":"{ih}","peer_id":"{ih}"}}"#),
        format!(r#"{{"action":"announce","info_hash":"{ih}","interval":1,"complete":2}}"#),
        format!(r#"{{"action":"x","failure reason":"no","info_hash":"{ih}"}}"#),
        r#"{"action":"x","failure reason":5}"#.into(),
        r#"{"action":"scrape","files":{}}"#.into(),
        r#"{"action":"peerhost_manifest","site_key":"short","have_version":1}"#.into(),
        format!(
            r#"{{"action":"peerhost_publish","manifest":"{}"}}"#,
            "A".repeat(MAX_JSON_LEN)
        ),
        "[".repeat(100),
        " {\"action\" : \"scrape\" } ".into(),
    ] {
        assert_decoders_agree(&text);
    }
}

/// `ice_servers` of an announce answer: every shape and every limit, the
/// same decision (and value) on both codecs.
#[test]
fn ice_servers_texts() {
    let ih = "\\u0000".repeat(20);
    let answer = |list: &str| {
        format!(r#"{{"action":"announce","info_hash":"{ih}","interval":1,"ice_servers":{list}}}"#)
    };
    let turn = r#"{"urls":"turn:192.0.2.1","username":"u","credential":"c"}"#;
    let long = "a".repeat(peerhost_core::ice::MAX_ICE_TEXT_LEN);
    let many = |n: usize| format!("[{}]", vec![r#"{"urls":"stun:a"}"#; n].join(","));
    let urls = |n: usize| format!(r#"[{{"urls":[{}]}}]"#, vec![r#""stun:a""#; n].join(","));
    let cases = [
        "null".to_owned(),
        "[]".into(),
        r#"[{"urls":"stun:192.0.2.1:3478"}]"#.into(),
        r#"[{"urls":["stun:a","STUNS:b"],"username":null,"credentialType":"password"}]"#.into(),
        format!("[{turn}]"),
        format!("[{turn},{turn}]"),
        many(peerhost_core::ice::MAX_ICE_SERVERS),
        many(peerhost_core::ice::MAX_ICE_SERVERS + 1),
        urls(peerhost_core::ice::MAX_ICE_URLS),
        urls(peerhost_core::ice::MAX_ICE_URLS + 1),
        format!(r#"[{{"urls":"stun:{long}"}}]"#),
        format!(r#"[{{"urls":"stun:a","username":"{long}"}}]"#),
        format!(r#"[{{"urls":"stun:a","username":"{long}a"}}]"#),
        r#"[{"urls":"turn:192.0.2.1"}]"#.into(),
        r#"[{"urls":"turn:192.0.2.1","username":"u"}]"#.into(),
        r#"[{"urls":"http://192.0.2.1"}]"#.into(),
        r#"[{"urls":"stun:"}]"#.into(),
        r#"[{"urls":[]}]"#.into(),
        r#"[{"urls":null}]"#.into(),
        r#"[{}]"#.into(),
        r#"[{"urls":5}]"#.into(),
        r#"[{"urls":[5]}]"#.into(),
        r#"[{"urls":"stun:a","credential":false}]"#.into(),
        r#"[null]"#.into(),
        r#"["stun:a"]"#.into(),
        r#"[["stun:a"]]"#.into(),
        r#"{"urls":"stun:a"}"#.into(),
        r#""stun:a""#.into(),
    ];
    let mut accepted = 0;
    for list in &cases {
        let text = answer(list);
        assert_decoders_agree(&text);
        accepted += usize::from(ServerMessage::from_json(&text).is_ok());
    }
    // null, [], the two stun lists, the two turn lists, 8 servers, 8 urls,
    // a username of exactly the limit.
    assert_eq!(accepted, 9, "accepted lists");
    let ServerMessage::AnnounceResponse { ice_servers, .. } =
        ServerMessage::from_json(&answer(&format!("[{turn}]"))).unwrap()
    else {
        panic!("an announce response")
    };
    assert_eq!(
        ice_servers,
        vec![IceServer {
            urls: vec!["turn:192.0.2.1".into()],
            username: Some("u".into()),
            credential: Some("c".into()),
        }]
    );
}

// ---------------------------------------------------------------------------
// Documented differences: inputs JSON.parse never hands over as such.

#[test]
fn documented_differences() {
    // Repeated keys: serde refuses, JSON.parse keeps the last.
    let dup = r#"{"action":"frob","action":"scrape"}"#;
    assert!(ClientMessage::from_json(dup).is_err());
    assert_eq!(
        via_value(dup, ClientMessage::from_value),
        Ok(ClientMessage::Scrape {
            info_hashes: vec![]
        })
    );
    // A lone surrogate: serde_json refuses it (JSON.parse would not).
    assert!(ServerMessage::from_json(r#"{"action":"x","failure reason":"\ud800"}"#).is_err());
    // Beyond f64: JSON.parse makes Infinity (an unknown counter), serde_json
    // refuses the text where it reads the number (not in unknown keys).
    let ih = "a".repeat(20);
    let huge =
        format!(r#"{{"action":"announce","info_hash":"{ih}","peer_id":"{ih}","left":1e400}}"#);
    assert!(ClientMessage::from_json(&huge).is_err());
    let ignored =
        format!(r#"{{"action":"announce","info_hash":"{ih}","peer_id":"{ih}","x":1e400}}"#);
    assert!(ClientMessage::from_json(&ignored).is_ok());
    // Counters above 2^53 are JavaScript numbers on both sides.
    let big = format!(
        r#"{{"action":"announce","info_hash":"{ih}","peer_id":"{ih}","uploaded":9007199254740993}}"#
    );
    let ClientMessage::Announce(a) = ClientMessage::from_json(&big).unwrap() else {
        panic!()
    };
    assert_eq!(a.uploaded, 1 << 53);
    assert_decoders_agree(&big);
}

// ---------------------------------------------------------------------------
// Generated messages

fn arb_id() -> impl Strategy<Value = [u8; 20]> {
    proptest::array::uniform20(any::<u8>())
}

fn arb_text() -> impl Strategy<Value = String> {
    "[\\x00-\\u{2FF}\"\\\\\r\n😀]{0,40}"
}

fn arb_count() -> impl Strategy<Value = u64> {
    prop_oneof![0..1000u64, 0..=MAX_SAFE_INTEGER]
}

fn arb_client() -> impl Strategy<Value = ClientMessage> {
    let event = prop_oneof![
        Just(AnnounceEvent::Started),
        Just(AnnounceEvent::Stopped),
        Just(AnnounceEvent::Completed),
        Just(AnnounceEvent::Update),
        Just(AnnounceEvent::Paused),
    ];
    let offers = proptest::collection::vec(
        (arb_id(), arb_text()).prop_map(|(o, s)| Offer {
            offer_id: OfferId(o),
            offer: Sdp::offer(s),
        }),
        0..4,
    );
    prop_oneof![
        (
            (arb_id(), arb_id(), proptest::option::of(arb_count())),
            (arb_count(), arb_count(), proptest::option::of(arb_count())),
            event,
            offers
        )
            .prop_map(
                |((ih, p, numwant), (uploaded, downloaded, left), event, offers)| {
                    ClientMessage::Announce(Announce {
                        info_hash: InfoHash(ih),
                        peer_id: PeerId(p),
                        numwant,
                        uploaded,
                        downloaded,
                        left,
                        event,
                        offers,
                    })
                }
            ),
        (arb_id(), arb_id(), arb_id(), arb_id(), arb_text()).prop_map(|(ih, p, to, o, s)| {
            ClientMessage::Answer(AnswerMsg {
                info_hash: InfoHash(ih),
                peer_id: PeerId(p),
                to_peer_id: PeerId(to),
                offer_id: OfferId(o),
                answer: Sdp::answer(s),
            })
        }),
        proptest::collection::vec(arb_id(), 0..5).prop_map(|v| ClientMessage::Scrape {
            info_hashes: v.into_iter().map(InfoHash).collect()
        }),
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|manifest| ClientMessage::PublishManifest { manifest }),
        (proptest::array::uniform32(any::<u8>()), arb_count()).prop_map(|(k, v)| {
            ClientMessage::SubscribeManifest {
                site_key: SiteKey(k),
                have_version: v,
            }
        }),
    ]
}

fn arb_server() -> impl Strategy<Value = ServerMessage> {
    let file = (arb_count(), arb_count(), arb_count()).prop_map(|(c, i, d)| ScrapeFile {
        complete: c,
        incomplete: i,
        downloaded: d,
    });
    prop_oneof![
        (arb_id(), arb_count(), arb_count(), arb_count()).prop_map(|(ih, iv, c, i)| {
            ServerMessage::AnnounceResponse {
                info_hash: InfoHash(ih),
                interval: iv,
                complete: c,
                incomplete: i,
                ice_servers: Vec::new(),
            }
        }),
        (arb_id(), arb_id(), arb_id(), arb_text(), any::<bool>()).prop_map(
            |(ih, p, o, s, offer)| {
                if offer {
                    ServerMessage::Offer(RelayedOffer {
                        info_hash: InfoHash(ih),
                        peer_id: PeerId(p),
                        offer_id: OfferId(o),
                        offer: Sdp::offer(s),
                    })
                } else {
                    ServerMessage::Answer(RelayedAnswer {
                        info_hash: InfoHash(ih),
                        peer_id: PeerId(p),
                        offer_id: OfferId(o),
                        answer: Sdp::answer(s),
                    })
                }
            }
        ),
        proptest::collection::btree_map(arb_id(), file, 0..4).prop_map(|m| {
            ServerMessage::ScrapeResponse {
                files: m.into_iter().map(|(h, f)| (InfoHash(h), f)).collect(),
            }
        }),
        ("[a-z_]{1,64}", arb_text(), proptest::option::of(arb_id())).prop_map(
            |(action, failure_reason, ih)| ServerMessage::Error {
                action,
                failure_reason,
                info_hash: ih.map(InfoHash),
            }
        ),
        (
            proptest::array::uniform32(any::<u8>()),
            arb_count(),
            proptest::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(k, version, manifest)| ServerMessage::ManifestPush {
                site_key: SiteKey(k),
                version,
                manifest,
            }),
        arb_count().prop_map(|version| ServerMessage::PublishResult { version }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn generated_client_messages(m in arb_client(), w in proptest::sample::select(wrong_values())) {
        assert_client_codecs_agree(&m, &[w]);
    }

    #[test]
    fn generated_server_messages(m in arb_server(), w in proptest::sample::select(wrong_values())) {
        assert_server_codecs_agree(&m, &[w]);
    }

    #[test]
    fn mutated_texts(m in arb_client(), s in arb_server(), pos in any::<usize>(), byte in any::<u8>()) {
        for text in [m.to_json(), s.to_json()] {
            let mut bytes = text.into_bytes();
            let at = pos % bytes.len();
            bytes[at] = byte;
            if let Ok(text) = String::from_utf8(bytes) {
                assert_decoders_agree(&text);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The tracker's hot path, both ways

fn time<T>(label: &str, n: u32, mut f: impl FnMut() -> T) -> f64 {
    for _ in 0..n / 10 {
        std::hint::black_box(f());
    }
    // The best of 7 rounds: the machine is shared, noise only adds.
    let ns = (0..7)
        .map(|_| {
            let start = std::time::Instant::now();
            for _ in 0..n {
                std::hint::black_box(f());
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .fold(f64::INFINITY, f64::min);
    println!("{label:<48} {ns:>9.0} ns/op");
    ns
}

#[test]
#[ignore = "a timing, not a check: run with --release --ignored --nocapture"]
fn bench_tracker_hot_path_serde_vs_value() {
    // A WebTorrent-sized announce: 5 offers of ~1.2 KB SDP each.
    let sdp = format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
         m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n{}\
         a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n\
         a=fingerprint:sha-256 {}\r\na=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\n",
        "a=candidate:1 1 udp 2122260223 192.168.1.2 54321 typ host generation 0\r\n".repeat(8),
        "AB:".repeat(31) + "CD"
    );
    let announce = ClientMessage::Announce(Announce {
        info_hash: InfoHash(id(1)),
        peer_id: PeerId(id(200)),
        numwant: Some(5),
        uploaded: 123_456,
        downloaded: 654_321,
        left: None,
        event: AnnounceEvent::Update,
        offers: (0..5)
            .map(|i| Offer {
                offer_id: OfferId(id(i)),
                offer: Sdp::offer(sdp.clone()),
            })
            .collect(),
    });
    let text = announce.to_json();
    let relayed = ServerMessage::Offer(RelayedOffer {
        info_hash: InfoHash(id(1)),
        peer_id: PeerId(id(2)),
        offer_id: OfferId(id(3)),
        offer: Sdp::offer(sdp.clone()),
    });
    let response = ServerMessage::AnnounceResponse {
        info_hash: InfoHash(id(1)),
        interval: 120,
        complete: 10,
        incomplete: 20,
        ice_servers: Vec::new(),
    };
    println!(
        "announce: {} bytes, relayed offer: {} bytes",
        text.len(),
        relayed.to_json().len()
    );
    let n = 20_000;
    let a = time("decode announce: serde from_json", n, || {
        ClientMessage::from_json(&text)
    });
    let b = time(
        "decode announce: text -> JsonValue -> from_value",
        n,
        || ClientMessage::from_value(&json_parse(&text).unwrap()),
    );
    println!("  value path / serde path: {:.2}x", b / a);
    let a = time("encode relayed offer: serde to_json", n, || {
        relayed.to_json()
    });
    let b = time("encode relayed offer: to_value -> text", n, || {
        json_stringify(&relayed.to_value())
    });
    println!("  value path / serde path: {:.2}x", b / a);
    let a = time("encode announce response: serde to_json", n, || {
        response.to_json()
    });
    let b = time("encode announce response: to_value -> text", n, || {
        json_stringify(&response.to_value())
    });
    println!("  value path / serde path: {:.2}x", b / a);
}
