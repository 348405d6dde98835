//! JSON text, the native codec (tracker, seeder, CLI): serde_json straight
//! into the fields of [`super::raw`], no intermediate tree, since the
//! tracker parses every message on its hot path. Writing uses small
//! borrowed structs, with the buffer sized up front.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use super::ids::parse_binary_id;
use super::raw::{InfoHashes, Lenient, RawClient, RawServer};
use super::*;
use crate::ice::IceServer;
use crate::json::MAX_SAFE_INTEGER;

// ---------------------------------------------------------------------------
// Reading

fn parse_json<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, SignalError> {
    if text.len() > MAX_JSON_LEN {
        return Err(SignalError::TooLarge(text.len()));
    }
    serde_json::from_str::<Object<T>>(text)
        .map(|o| o.0)
        .map_err(|e| SignalError::Malformed(e.to_string()))
}

impl ClientMessage {
    /// Parses one client message; total.
    pub fn from_json(text: &str) -> Result<ClientMessage, SignalError> {
        ClientMessage::from_raw(parse_json::<RawClient>(text)?)
    }
}

impl ServerMessage {
    /// Parses one tracker message; total.
    pub fn from_json(text: &str) -> Result<ServerMessage, SignalError> {
        ServerMessage::from_raw(parse_json::<RawServer>(text)?)
    }
}

/// A struct read from a JSON object only. serde's derive also accepts an
/// array of the fields in order, which `JSON.parse`'s walker (and every
/// other tracker) does not.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Object)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// `offer` / `answer`: an SDP object, or `null` / absent.
pub(super) fn sdp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Sdp>, D::Error> {
    Ok(Option::<Object<Sdp>>::deserialize(d)?.map(|o| o.0))
}

/// `type` of an SDP: only the strings (serde would also take the enum's
/// map form, `{"offer":null}`).
pub(super) fn sdp_kind<'de, D: Deserializer<'de>>(d: D) -> Result<SdpKind, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = SdpKind;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("\"offer\" or \"answer\"")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<SdpKind, E> {
            match v {
                "offer" => Ok(SdpKind::Offer),
                "answer" => Ok(SdpKind::Answer),
                other => Err(E::unknown_variant(other, &["offer", "answer"])),
            }
        }
    }
    d.deserialize_str(V)
}

/// `offers`: a list of offer objects, or `null` / absent.
pub(super) fn offers<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Offer>>, D::Error> {
    #[derive(Deserialize)]
    struct RawOffer {
        offer_id: OfferId,
        offer: Object<Sdp>,
    }
    let offers = Option::<Vec<Object<RawOffer>>>::deserialize(d)?;
    Ok(offers.map(|v| {
        v.into_iter()
            .map(|Object(o)| Offer {
                offer_id: o.offer_id,
                offer: o.offer.0,
            })
            .collect()
    }))
}

/// `files` of a scrape response: binary-string ids to exact counts.
pub(super) fn files<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, ScrapeFile>>, D::Error> {
    #[derive(Deserialize)]
    struct RawFile {
        complete: Count,
        incomplete: Count,
        downloaded: Count,
    }
    let files = Option::<BTreeMap<String, Object<RawFile>>>::deserialize(d)?;
    Ok(files.map(|m| {
        m.into_iter()
            .map(|(k, Object(f))| {
                let file = ScrapeFile {
                    complete: f.complete.0,
                    incomplete: f.incomplete.0,
                    downloaded: f.downloaded.0,
                };
                (k, file)
            })
            .collect()
    }))
}

/// An exact count as JavaScript holds it: an integer in
/// `0..=MAX_SAFE_INTEGER`, however written (`1`, `1.0`, `1e0`); what
/// [`JsonValue::as_u64`](crate::json::JsonValue::as_u64) accepts.
struct Count(u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an integer in 0..={MAX_SAFE_INTEGER}")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                if v <= MAX_SAFE_INTEGER {
                    Ok(Count(v))
                } else {
                    Err(E::invalid_value(de::Unexpected::Unsigned(v), &self))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Count, E> {
                if v >= 0.0 && v.fract() == 0.0 && v <= MAX_SAFE_INTEGER as f64 {
                    Ok(Count(v as u64))
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(v), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Lenient;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or null")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Lenient, E> {
                // Rounded as JSON.parse rounds it: the same counter on both codecs.
                Ok(Lenient::from_f64(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Lenient, E> {
                Ok(Lenient::from_f64(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Lenient, E> {
                Ok(Lenient::from_f64(v))
            }
            fn visit_unit<E>(self) -> Result<Lenient, E> {
                Ok(Lenient(None))
            }
            fn visit_none<E>(self) -> Result<Lenient, E> {
                Ok(Lenient(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for InfoHashes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = InfoHashes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "a binary-string id or a list of at most {MAX_SCRAPE_HASHES}"
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<InfoHashes, E> {
                BinaryIdVisitor
                    .visit_str(v)
                    .map(|b| InfoHashes(vec![InfoHash(b)]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<InfoHashes, A::Error> {
                let mut out = Vec::new();
                while let Some(h) = seq.next_element::<InfoHash>()? {
                    if out.len() == MAX_SCRAPE_HASHES {
                        return Err(de::Error::invalid_length(out.len() + 1, &self));
                    }
                    out.push(h);
                }
                Ok(InfoHashes(out))
            }
        }
        d.deserialize_any(V)
    }
}

struct BinaryIdVisitor;

impl Visitor<'_> for BinaryIdVisitor {
    type Value = [u8; 20];
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a 20-character binary string (chars U+0000-U+00FF)")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<[u8; 20], E> {
        parse_binary_id(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

/// Writes 20 bytes as UTF-8 of their Latin-1 characters into `buf`.
fn binary_str<'b>(bytes: &[u8; 20], buf: &'b mut [u8; 40]) -> &'b str {
    let mut n = 0;
    for &b in bytes {
        n += char::from(b).encode_utf8(&mut buf[n..]).len();
    }
    std::str::from_utf8(&buf[..n]).unwrap_or_default()
}

macro_rules! binary_id_serde {
    ($($name:ident),*) => {$(
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut buf = [0u8; 40];
                s.serialize_str(binary_str(&self.0, &mut buf))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(BinaryIdVisitor).map($name)
            }
        }
    )*};
}

binary_id_serde!(PeerId, InfoHash, OfferId);

// ---------------------------------------------------------------------------
// Writing

/// Serialises with the buffer sized up front: relayed SDPs are the bulk of
/// a tracker's output, and growing the buffer copies them several times.
fn json_sized<T: Serialize>(v: &T, capacity: usize) -> Result<String, serde_json::Error> {
    let mut buf = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut buf, v)?;
    // serde_json writes valid UTF-8.
    String::from_utf8(buf).map_err(|e| serde::ser::Error::custom(e.to_string()))
}

impl ClientMessage {
    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        let out = match self {
            ClientMessage::Announce(a) => json_sized(
                &AnnounceOut {
                    action: ACTION_ANNOUNCE,
                    info_hash: &a.info_hash,
                    peer_id: &a.peer_id,
                    numwant: a.numwant,
                    uploaded: a.uploaded,
                    downloaded: a.downloaded,
                    left: a.left,
                    event: (a.event != AnnounceEvent::Update).then_some(a.event),
                    offers: (!a.offers.is_empty()).then_some(&a.offers),
                },
                a.offers
                    .iter()
                    .map(|o| o.offer.sdp.len() + 96)
                    .sum::<usize>()
                    + 256,
            ),
            ClientMessage::Answer(a) => json_sized(
                &AnswerOut {
                    action: ACTION_ANNOUNCE,
                    info_hash: &a.info_hash,
                    peer_id: &a.peer_id,
                    to_peer_id: &a.to_peer_id,
                    offer_id: &a.offer_id,
                    answer: &a.answer,
                },
                a.answer.sdp.len() + 256,
            ),
            ClientMessage::Scrape { info_hashes } => json_sized(
                &ScrapeOut {
                    action: ACTION_SCRAPE,
                    info_hash: (!info_hashes.is_empty()).then_some(info_hashes),
                },
                256,
            ),
            ClientMessage::PublishManifest { manifest } => json_sized(
                &PublishOut {
                    action: ACTION_PUBLISH,
                    manifest: STANDARD.encode(manifest),
                },
                manifest.len() / 3 * 4 + 64,
            ),
            ClientMessage::SubscribeManifest {
                site_key,
                have_version,
            } => json_sized(
                &SubscribeOut {
                    action: ACTION_MANIFEST,
                    site_key: site_key.to_string(),
                    have_version: *have_version,
                },
                256,
            ),
        };
        out.unwrap_or_default()
    }
}

#[derive(Serialize)]
struct AnnounceOut<'a> {
    action: &'static str,
    info_hash: &'a InfoHash,
    peer_id: &'a PeerId,
    #[serde(skip_serializing_if = "Option::is_none")]
    numwant: Option<u64>,
    uploaded: u64,
    downloaded: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    left: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<AnnounceEvent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offers: Option<&'a Vec<Offer>>,
}

#[derive(Serialize)]
struct AnswerOut<'a> {
    action: &'static str,
    info_hash: &'a InfoHash,
    peer_id: &'a PeerId,
    to_peer_id: &'a PeerId,
    offer_id: &'a OfferId,
    answer: &'a Sdp,
}

#[derive(Serialize)]
struct ScrapeOut<'a> {
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    info_hash: Option<&'a Vec<InfoHash>>,
}

#[derive(Serialize)]
struct PublishOut {
    action: &'static str,
    manifest: String,
}

#[derive(Serialize)]
struct SubscribeOut {
    action: &'static str,
    site_key: String,
    have_version: u64,
}

impl ServerMessage {
    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        let out = match self {
            ServerMessage::AnnounceResponse {
                info_hash,
                interval,
                complete,
                incomplete,
                ice_servers,
            } => json_sized(
                &AnnounceResponseOut {
                    action: ACTION_ANNOUNCE,
                    info_hash,
                    interval: *interval,
                    complete: *complete,
                    incomplete: *incomplete,
                    ice_servers: (!ice_servers.is_empty()).then_some(ice_servers),
                },
                256 + ice_servers.len() * 256,
            ),
            ServerMessage::Offer(o) => json_sized(
                &RelayedOfferOut {
                    action: ACTION_ANNOUNCE,
                    info_hash: &o.info_hash,
                    peer_id: &o.peer_id,
                    offer_id: &o.offer_id,
                    offer: &o.offer,
                },
                o.offer.sdp.len() + 256,
            ),
            ServerMessage::Answer(a) => json_sized(
                &RelayedAnswerOut {
                    action: ACTION_ANNOUNCE,
                    info_hash: &a.info_hash,
                    peer_id: &a.peer_id,
                    offer_id: &a.offer_id,
                    answer: &a.answer,
                },
                a.answer.sdp.len() + 256,
            ),
            ServerMessage::ScrapeResponse { files } => {
                let mut map = serde_json::Map::new();
                for (h, f) in files {
                    map.insert(
                        h.to_binary_string(),
                        serde_json::to_value(f).unwrap_or_default(),
                    );
                }
                json_sized(
                    &ScrapeResponseOut {
                        action: ACTION_SCRAPE,
                        files: map,
                        flags: ScrapeFlags {
                            min_request_interval: DEFAULT_ANNOUNCE_INTERVAL_SECS,
                        },
                    },
                    64 + files.len() * 96,
                )
            }
            ServerMessage::Error {
                action,
                failure_reason,
                info_hash,
            } => json_sized(
                &ErrorOut {
                    action,
                    failure_reason,
                    info_hash: info_hash.as_ref(),
                },
                256,
            ),
            ServerMessage::ManifestPush {
                site_key,
                version,
                manifest,
            } => json_sized(
                &PushOut {
                    action: ACTION_MANIFEST,
                    site_key: site_key.to_string(),
                    version: *version,
                    manifest: STANDARD.encode(manifest),
                },
                manifest.len() / 3 * 4 + 128,
            ),
            ServerMessage::PublishResult { version } => json_sized(
                &PublishResultOut {
                    action: ACTION_PUBLISH,
                    version: *version,
                },
                256,
            ),
        };
        out.unwrap_or_default()
    }
}

#[derive(Serialize)]
struct AnnounceResponseOut<'a> {
    action: &'static str,
    info_hash: &'a InfoHash,
    interval: u64,
    complete: u64,
    incomplete: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ice_servers: Option<&'a Vec<IceServer>>,
}

#[derive(Serialize)]
struct RelayedOfferOut<'a> {
    action: &'static str,
    info_hash: &'a InfoHash,
    peer_id: &'a PeerId,
    offer_id: &'a OfferId,
    offer: &'a Sdp,
}

#[derive(Serialize)]
struct RelayedAnswerOut<'a> {
    action: &'static str,
    info_hash: &'a InfoHash,
    peer_id: &'a PeerId,
    offer_id: &'a OfferId,
    answer: &'a Sdp,
}

#[derive(Serialize)]
struct ScrapeFlags {
    min_request_interval: u64,
}

#[derive(Serialize)]
struct ScrapeResponseOut {
    action: &'static str,
    files: serde_json::Map<String, serde_json::Value>,
    flags: ScrapeFlags,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    action: &'a str,
    #[serde(rename = "failure reason")]
    failure_reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    info_hash: Option<&'a InfoHash>,
}

#[derive(Serialize)]
struct PushOut {
    action: &'static str,
    site_key: String,
    version: u64,
    manifest: String,
}

#[derive(Serialize)]
struct PublishResultOut {
    action: &'static str,
    version: u64,
}
