//! The tracker dialect: WebTorrent's WebSocket tracker protocol plus the
//! `peerhost/1` manifest extension, as plain serde types.
//!
//! Shared by the tracker (`peerhost-tracker`) and the client core. Parsing
//! is total: [`ClientMessage::from_json`] and [`ServerMessage::from_json`]
//! turn untrusted text into a value or a [`SignalError`], never a panic.
//! The browser, which parses and writes JSON with its own `JSON.parse` /
//! `JSON.stringify`, uses [`ServerMessage::from_value`] and
//! [`ClientMessage::to_value`] instead (same fields, same checks).
//!
//! # Participants and goals
//! A *tracker* introduces browsers ("peers") that visit the same site at
//! the same manifest version, by relaying WebRTC offers and answers between
//! them over one WebSocket per peer. It also stores the latest verified
//! manifest of each site and pushes it to peers that subscribed.
//!
//! Non-goals: the tracker never sees content, never chooses pieces, and is
//! never trusted for integrity (every manifest it relays is signed, every
//! piece is hashed against the manifest). No trickle ICE: an SDP carries
//! all its candidates, as simple-peer with `trickle: false` sends it.
//!
//! # Transport
//! JSON text frames over one WebSocket; one message per frame; binary
//! frames are a protocol violation. A tracker bounds every message (see
//! [`MAX_MESSAGE_LEN`]); `peerhost_publish` may be larger and is accepted
//! on a separate endpoint (see the tracker's docs).
//!
//! # Identifiers: binary strings
//! `info_hash`, `peer_id`, `to_peer_id` and `offer_id` are 20 bytes written
//! as a 20-character *binary string*: byte `b` becomes the character
//! `U+00b` (Latin-1), so bytes ≥ 0x80 travel as two UTF-8 bytes and control
//! bytes as `\u00XX` escapes. Decoding rejects any other length and any
//! character above U+00FF. This is what bittorrent-tracker (`hex2bin`),
//! WebTorrent and aquatic_ws (`serialize_20_bytes`) do; p2p-media-loader
//! uses pure-ASCII ids, which are a special case. `Debug` prints hex.
//!
//! # Swarms
//! One swarm per site **and manifest version**, never per URL:
//! [`swarm_id`]`(site, version)` = first 20 bytes of
//! `SHA-256("peerhost/1 swarm" ‖ site key (32 bytes) ‖ version (u64 BE))`.
//! Peers on one version hold the same pieces, so they are the useful ones
//! to meet; and no asset URL ever reaches the tracker (threat T6).
//!
//! # Messages
//! Client → tracker ([`ClientMessage`]):
//!
//! | variant | JSON |
//! |---|---|
//! | [`ClientMessage::Announce`] | `{"action":"announce","info_hash":ID,"peer_id":ID,"numwant":N?,"uploaded":N,"downloaded":N,"left":N?,"event":"started"\|"stopped"\|"completed"\|"update"\|"paused"?,"offers":[{"offer_id":ID,"offer":{"type":"offer","sdp":S}}]?}` |
//! | [`ClientMessage::Answer`] | `{"action":"announce","info_hash":ID,"peer_id":ID,"to_peer_id":ID,"offer_id":ID,"answer":{"type":"answer","sdp":S}}` |
//! | [`ClientMessage::Scrape`] | `{"action":"scrape","info_hash":ID \| [ID,…]?}` |
//! | [`ClientMessage::PublishManifest`] | `{"action":"peerhost_publish","manifest":B64}` |
//! | [`ClientMessage::SubscribeManifest`] | `{"action":"peerhost_manifest","site_key":KEY,"have_version":N}` |
//!
//! Tracker → client ([`ServerMessage`]):
//!
//! | variant | JSON |
//! |---|---|
//! | [`ServerMessage::AnnounceResponse`] | `{"action":"announce","info_hash":ID,"interval":S,"complete":N,"incomplete":N}` |
//! | [`ServerMessage::Offer`] | `{"action":"announce","info_hash":ID,"peer_id":ID (offerer),"offer_id":ID,"offer":{"type":"offer","sdp":S}}` |
//! | [`ServerMessage::Answer`] | `{"action":"announce","info_hash":ID,"peer_id":ID (answerer),"offer_id":ID,"answer":{"type":"answer","sdp":S}}` |
//! | [`ServerMessage::ScrapeResponse`] | `{"action":"scrape","files":{ID:{"complete":N,"incomplete":N,"downloaded":N}},"flags":{"min_request_interval":S}}` |
//! | [`ServerMessage::Error`] | `{"action":A,"failure reason":TEXT,"info_hash":ID?}` |
//! | [`ServerMessage::ManifestPush`] | `{"action":"peerhost_manifest","site_key":KEY,"version":N,"manifest":B64}` |
//! | [`ServerMessage::PublishResult`] | `{"action":"peerhost_publish","version":N}` |
//!
//! `ID` is a binary string; `KEY` the site key as 43 characters of
//! unpadded base64url (as in the script tag); `B64` standard padded base64
//! of [`SignedManifest::to_bytes`](crate::manifest::SignedManifest::to_bytes)
//! (at most [`MAX_MANIFEST_LEN`](crate::manifest::MAX_MANIFEST_LEN) bytes
//! decoded); `S` an SDP string.
//!
//! ## The peerhost extension
//! - `peerhost_publish`: the site owner (`peerhost push`) hands the tracker
//!   a signed manifest. The tracker verifies signature, validity window and
//!   that the version is strictly higher than the one it holds, answers
//!   `PublishResult` (or `Error` with action `peerhost_publish`), and pushes
//!   the manifest once to every connection subscribed to that site.
//! - `peerhost_manifest` from a client subscribes the connection to the
//!   site; if the tracker holds a version above `have_version` it pushes it
//!   at once. From the tracker it is the push. A push is a hint: clients
//!   verify it like a manifest from anywhere else.
//! - Action names starting with `peerhost_` are reserved for this
//!   extension; a tracker answers any action it does not know with `Error`
//!   echoing that action, and keeps the connection.
//!
//! # Where clients differ, and what we do
//! - **`left`**: WebTorrent sends `Infinity` before it has metadata, which
//!   `JSON.stringify` writes as `null`. Counters (`numwant`, `uploaded`,
//!   `downloaded`, `left`) therefore accept `null` (unknown), floats
//!   (truncated) and negative numbers (as 0).
//! - **`event`** is omitted by bittorrent-tracker's client on regular
//!   announces; omitted means `update`, and we omit it when writing `update`.
//! - **Answers** are `announce` messages that carry `answer` and
//!   `to_peer_id`; they are not announces (no announce response is sent),
//!   unlike bittorrent-tracker, which also re-announces the answerer.
//! - **Unknown fields** (`trackerid`, `key`, …) are ignored, as every
//!   tracker does; we never send `trackerid`.
//! - **Scrape** without `info_hash` means "full scrape" in bittorrent-tracker;
//!   it parses here as an empty list, which trackers may refuse (aquatic_ws
//!   and ours do).
//! - **Errors** carry `info_hash` when the request had one, because
//!   bittorrent-tracker's client drops messages whose `info_hash` is not the
//!   torrent's it multiplexes on that socket.
//! - **Offers per announce**: clients send `min(numwant, 5)` (WebTorrent) or
//!   up to 10 (aquatic's load tester); parsing keeps them all, a tracker
//!   relays at most its limit ([`MAX_OFFERS`] by default).
//! - **SDP shape** is not checked by any of them; [`Sdp::check`] lets the
//!   tracker refuse oversize SDPs, non-data-channel media and candidate
//!   floods (threat T5).

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::json::JsonValue;
use crate::manifest::{MAX_MANIFEST_LEN, SiteKey};

/// Protocol id, also the domain separator of [`swarm_id`].
pub const PROTOCOL_ID: &str = "peerhost/1";
/// Action of announces, answers, offers and announce responses.
pub const ACTION_ANNOUNCE: &str = "announce";
/// Action of scrapes and scrape responses.
pub const ACTION_SCRAPE: &str = "scrape";
/// Action of a manifest publish and its result.
pub const ACTION_PUBLISH: &str = "peerhost_publish";
/// Action of a manifest subscription and of a manifest push.
pub const ACTION_MANIFEST: &str = "peerhost_manifest";
/// Prefix reserved for peerhost extension actions.
pub const ACTION_PREFIX_RESERVED: &str = "peerhost_";

/// Recommended bound on one message from a client (aquatic_ws's default).
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;
/// Recommended bound on offers relayed per announce (aquatic_ws's default).
pub const MAX_OFFERS: usize = 10;
/// Recommended bound on one SDP's length in bytes.
pub const MAX_SDP_LEN: usize = 8 * 1024;
/// Recommended bound on `a=candidate` lines in one SDP.
pub const MAX_SDP_CANDIDATES: usize = 16;
/// Most info-hashes one scrape may name (aquatic_ws's default).
pub const MAX_SCRAPE_HASHES: usize = 255;
/// Announce interval a tracker tells clients by default, seconds.
pub const DEFAULT_ANNOUNCE_INTERVAL_SECS: u64 = 120;
/// Longest JSON text `from_json` looks at: a push of the largest manifest.
pub const MAX_JSON_LEN: usize = MAX_MANIFEST_LEN / 3 * 4 + 8 * 1024;
/// Serialises with the buffer sized up front: relayed SDPs are the bulk of
/// a tracker's output, and growing the buffer copies them several times.
fn json_sized<T: Serialize>(v: &T, capacity: usize) -> Result<String, serde_json::Error> {
    let mut buf = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut buf, v)?;
    // serde_json writes valid UTF-8.
    String::from_utf8(buf).map_err(|e| serde::ser::Error::custom(e.to_string()))
}

/// Longest action echoed back in an [`ServerMessage::Error`].
const MAX_ECHOED_ACTION: usize = 64;

/// Why a message could not be parsed. The sender is always to blame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// The text is longer than [`MAX_JSON_LEN`].
    #[error("message of {0} bytes is too large")]
    TooLarge(usize),
    /// Not JSON, or a field of the wrong type or shape.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The object has no string `action`.
    #[error("missing action")]
    MissingAction,
    /// The action is not one this side understands (truncated to 64 chars).
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    /// A field this message needs is absent.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// A field is present but its value is not acceptable.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The JSON key.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

// ---------------------------------------------------------------------------
// Identifiers

macro_rules! binary_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; 20]);

        impl $name {
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 20] {
                &self.0
            }

            /// The 20-character binary string (each byte one char U+0000–U+00FF).
            pub fn to_binary_string(&self) -> String {
                self.0.iter().map(|&b| char::from(b)).collect()
            }

            /// Parses a binary string: exactly 20 chars, each ≤ U+00FF.
            pub fn from_binary_str(s: &str) -> Option<Self> {
                parse_binary_id(s).map($name)
            }

            /// Lower-case hex, 40 characters.
            pub fn to_hex(&self) -> String {
                hex(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), hex(&self.0))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex(&self.0))
            }
        }

        impl From<[u8; 20]> for $name {
            fn from(b: [u8; 20]) -> Self {
                $name(b)
            }
        }

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
    };
}

binary_id!(
    /// A peer's self-chosen 20-byte id; the tracker binds it to the
    /// connection that first announced it in a swarm.
    PeerId
);
binary_id!(
    /// A swarm id; in peerhost always [`swarm_id`] of a site and version.
    InfoHash
);
binary_id!(
    /// A random 20-byte id the offerer gives each offer, to match the answer.
    OfferId
);

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Writes 20 bytes as UTF-8 of their Latin-1 characters into `buf`.
fn binary_str<'b>(bytes: &[u8; 20], buf: &'b mut [u8; 40]) -> &'b str {
    let mut n = 0;
    for &b in bytes {
        n += char::from(b).encode_utf8(&mut buf[n..]).len();
    }
    std::str::from_utf8(&buf[..n]).unwrap_or_default()
}

fn parse_binary_id(s: &str) -> Option<[u8; 20]> {
    // A valid id is at most 40 UTF-8 bytes; refuse early without scanning.
    if s.len() > 40 || s.len() < 20 {
        return None;
    }
    let mut out = [0u8; 20];
    let mut n = 0;
    for c in s.chars() {
        let b = u8::try_from(u32::from(c)).ok()?;
        *out.get_mut(n)? = b;
        n += 1;
    }
    (n == 20).then_some(out)
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

/// One swarm per site and manifest version.
///
/// The first 20 bytes of `SHA-256("peerhost/1 swarm" ‖ site key ‖ version
/// as u64 big-endian)`. Versions of one site never share a swarm, and the
/// id reveals neither URLs nor, without the site key, the site.
pub fn swarm_id(site: &SiteKey, version: u64) -> InfoHash {
    let digest = Sha256::new()
        .chain_update(b"peerhost/1 swarm")
        .chain_update(site.as_bytes())
        .chain_update(version.to_be_bytes())
        .finalize();
    let mut id = [0u8; 20];
    id.copy_from_slice(&digest[..20]);
    InfoHash(id)
}

// ---------------------------------------------------------------------------
// SDP

/// Which half of the WebRTC handshake an SDP is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpKind {
    /// `"offer"`.
    Offer,
    /// `"answer"`.
    Answer,
}

/// A session description as `RTCSessionDescription.toJSON()` writes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sdp {
    /// `"type"`: offer or answer.
    #[serde(rename = "type")]
    pub kind: SdpKind,
    /// The SDP text, with every ICE candidate in it (no trickle).
    pub sdp: String,
}

impl Sdp {
    /// An offer.
    pub fn offer(sdp: impl Into<String>) -> Self {
        Sdp {
            kind: SdpKind::Offer,
            sdp: sdp.into(),
        }
    }

    /// An answer.
    pub fn answer(sdp: impl Into<String>) -> Self {
        Sdp {
            kind: SdpKind::Answer,
            sdp: sdp.into(),
        }
    }

    /// Shape check a tracker applies before relaying (threat T5): at most
    /// `max_len` bytes, no NUL, every `m=` line a data channel
    /// (`m=application`), at most `max_candidates` `a=candidate` lines.
    pub fn check(&self, max_len: usize, max_candidates: usize) -> Result<(), SignalError> {
        let bad = |reason: String| {
            Err(SignalError::Invalid {
                field: "sdp",
                reason,
            })
        };
        if self.sdp.len() > max_len {
            return bad(format!("{} bytes exceed {max_len}", self.sdp.len()));
        }
        if self.sdp.contains('\0') {
            return bad("contains NUL".into());
        }
        let mut candidates = 0usize;
        for line in self.sdp.lines() {
            if line.starts_with("m=") && !line.starts_with("m=application ") {
                return bad("media other than a data channel".into());
            }
            if line.starts_with("a=candidate:") {
                candidates += 1;
                if candidates > max_candidates {
                    return bad(format!("more than {max_candidates} candidates"));
                }
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Client → tracker

/// The announce `event`; absent on the wire means [`AnnounceEvent::Update`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnnounceEvent {
    /// First announce of this peer in this swarm.
    Started,
    /// The peer leaves the swarm.
    Stopped,
    /// The peer finished downloading (became a seeder).
    Completed,
    /// A regular re-announce.
    #[default]
    Update,
    /// The peer keeps its data but pauses (BEP 21 "partial seed").
    Paused,
}

impl AnnounceEvent {
    /// The wire name (`"started"`, …).
    fn name(self) -> &'static str {
        match self {
            AnnounceEvent::Started => "started",
            AnnounceEvent::Stopped => "stopped",
            AnnounceEvent::Completed => "completed",
            AnnounceEvent::Update => "update",
            AnnounceEvent::Paused => "paused",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "started" => AnnounceEvent::Started,
            "stopped" => AnnounceEvent::Stopped,
            "completed" => AnnounceEvent::Completed,
            "update" => AnnounceEvent::Update,
            "paused" => AnnounceEvent::Paused,
            _ => return None,
        })
    }
}

/// One WebRTC offer inside an announce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// Random id the answer will refer to.
    pub offer_id: OfferId,
    /// The offer SDP (`type` must be `offer`).
    pub offer: Sdp,
}

/// An announce: join, stay in, or leave a swarm, with offers to relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// The swarm.
    pub info_hash: InfoHash,
    /// The announcing peer.
    pub peer_id: PeerId,
    /// Peers wanted; informational (the tracker relays one offer per peer).
    pub numwant: Option<u64>,
    /// Bytes uploaded so far.
    pub uploaded: u64,
    /// Bytes downloaded so far.
    pub downloaded: u64,
    /// Bytes left; `None` when unknown (`null`, or absent). `Some(0)` = seeder.
    pub left: Option<u64>,
    /// What happened.
    pub event: AnnounceEvent,
    /// Offers the tracker relays to other peers, one each.
    pub offers: Vec<Offer>,
}

/// An answer to a relayed offer ("announce with answer").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerMsg {
    /// The swarm.
    pub info_hash: InfoHash,
    /// The answering peer.
    pub peer_id: PeerId,
    /// The offerer the answer goes to.
    pub to_peer_id: PeerId,
    /// The offer being answered.
    pub offer_id: OfferId,
    /// The answer SDP (`type` must be `answer`).
    pub answer: Sdp,
}

/// A message from a client to the tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// `announce` without `answer`.
    Announce(Announce),
    /// `announce` with `answer` and `to_peer_id`.
    Answer(AnswerMsg),
    /// `scrape`; empty means a full scrape.
    Scrape {
        /// Swarms asked about.
        info_hashes: Vec<InfoHash>,
    },
    /// `peerhost_publish`: a signed manifest for the tracker to verify and push.
    PublishManifest {
        /// [`SignedManifest::to_bytes`](crate::manifest::SignedManifest::to_bytes); base64 in JSON.
        manifest: Vec<u8>,
    },
    /// `peerhost_manifest`: push me this site's manifests above `have_version`.
    SubscribeManifest {
        /// The site.
        site_key: SiteKey,
        /// Highest version the client already has (0 for none).
        have_version: u64,
    },
}

/// A number as clients write counters: `null`, negative and fractional
/// values are tolerated (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
struct Lenient(Option<u64>);

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Lenient;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or null")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Lenient, E> {
                Ok(Lenient(Some(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Lenient, E> {
                Ok(Lenient(Some(u64::try_from(v).unwrap_or(0))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Lenient, E> {
                // `as` saturates; NaN becomes 0. JSON has no NaN or infinity anyway.
                Ok(Lenient(if v.is_finite() {
                    Some(v.max(0.0) as u64)
                } else {
                    None
                }))
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

/// `info_hash` of a scrape: one id or a bounded list.
#[derive(Debug, Default)]
struct InfoHashes(Vec<InfoHash>);

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

/// Every field any client message may carry; unknown keys are ignored.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawClient {
    action: Option<String>,
    info_hash: Option<InfoHashes>,
    peer_id: Option<PeerId>,
    to_peer_id: Option<PeerId>,
    offer_id: Option<OfferId>,
    numwant: Lenient,
    uploaded: Lenient,
    downloaded: Lenient,
    left: Lenient,
    event: Option<String>,
    offers: Option<Vec<Offer>>,
    answer: Option<Sdp>,
    manifest: Option<String>,
    site_key: Option<String>,
    have_version: Lenient,
}

fn truncate_action(a: &str) -> String {
    a.chars().take(MAX_ECHOED_ACTION).collect()
}

fn parse_json<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, SignalError> {
    if text.len() > MAX_JSON_LEN {
        return Err(SignalError::TooLarge(text.len()));
    }
    serde_json::from_str(text).map_err(|e| SignalError::Malformed(e.to_string()))
}

fn one_hash(h: Option<InfoHashes>) -> Result<InfoHash, SignalError> {
    match h {
        None => Err(SignalError::MissingField("info_hash")),
        Some(InfoHashes(v)) if v.len() == 1 => Ok(v[0]),
        Some(_) => Err(SignalError::Invalid {
            field: "info_hash",
            reason: "expected one id".into(),
        }),
    }
}

fn need<T>(v: Option<T>, field: &'static str) -> Result<T, SignalError> {
    v.ok_or(SignalError::MissingField(field))
}

fn decode_manifest(b64: &str) -> Result<Vec<u8>, SignalError> {
    if b64.len() > MAX_MANIFEST_LEN / 3 * 4 + 4 {
        return Err(SignalError::Invalid {
            field: "manifest",
            reason: "larger than the manifest cap".into(),
        });
    }
    STANDARD.decode(b64).map_err(|e| SignalError::Invalid {
        field: "manifest",
        reason: e.to_string(),
    })
}

fn parse_site_key(s: Option<String>) -> Result<SiteKey, SignalError> {
    need(s, "site_key")?
        .parse()
        .map_err(
            |e: crate::manifest::ParseSiteKeyError| SignalError::Invalid {
                field: "site_key",
                reason: e.to_string(),
            },
        )
}

impl ClientMessage {
    /// Parses one client message; total.
    pub fn from_json(text: &str) -> Result<ClientMessage, SignalError> {
        let raw: RawClient = parse_json(text)?;
        let action = raw.action.as_deref().ok_or(SignalError::MissingAction)?;
        match action {
            ACTION_ANNOUNCE => {
                let info_hash = one_hash(raw.info_hash)?;
                let peer_id = need(raw.peer_id, "peer_id")?;
                if let Some(answer) = raw.answer {
                    if answer.kind != SdpKind::Answer {
                        return Err(SignalError::Invalid {
                            field: "answer",
                            reason: "type is not \"answer\"".into(),
                        });
                    }
                    return Ok(ClientMessage::Answer(AnswerMsg {
                        info_hash,
                        peer_id,
                        to_peer_id: need(raw.to_peer_id, "to_peer_id")?,
                        offer_id: need(raw.offer_id, "offer_id")?,
                        answer,
                    }));
                }
                let event = match raw.event.as_deref() {
                    None => AnnounceEvent::Update,
                    Some(e) => AnnounceEvent::parse(e).ok_or_else(|| SignalError::Invalid {
                        field: "event",
                        reason: format!("unknown event {:?}", truncate_action(e)),
                    })?,
                };
                let offers = raw.offers.unwrap_or_default();
                if offers.iter().any(|o| o.offer.kind != SdpKind::Offer) {
                    return Err(SignalError::Invalid {
                        field: "offers",
                        reason: "an offer's type is not \"offer\"".into(),
                    });
                }
                Ok(ClientMessage::Announce(Announce {
                    info_hash,
                    peer_id,
                    numwant: raw.numwant.0,
                    uploaded: raw.uploaded.0.unwrap_or(0),
                    downloaded: raw.downloaded.0.unwrap_or(0),
                    left: raw.left.0,
                    event,
                    offers,
                }))
            }
            ACTION_SCRAPE => Ok(ClientMessage::Scrape {
                info_hashes: raw.info_hash.unwrap_or_default().0,
            }),
            ACTION_PUBLISH => Ok(ClientMessage::PublishManifest {
                manifest: decode_manifest(&need(raw.manifest, "manifest")?)?,
            }),
            ACTION_MANIFEST => Ok(ClientMessage::SubscribeManifest {
                site_key: parse_site_key(raw.site_key)?,
                have_version: raw.have_version.0.unwrap_or(0),
            }),
            other => Err(SignalError::UnknownAction(truncate_action(other))),
        }
    }

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

    /// The fields [`ClientMessage::to_json`] writes, as a [`JsonValue`],
    /// for drivers that write JSON with their own serializer (the
    /// browser's `JSON.stringify`; see [`crate::json`]). Counts are
    /// numbers: exact up to 2^53.
    pub fn to_value(&self) -> JsonValue {
        let s = |v: &str| JsonValue::String(v.to_owned());
        let n = |v: u64| JsonValue::Number(v as f64);
        let id = |v: &[u8; 20]| JsonValue::String(v.iter().map(|&b| char::from(b)).collect());
        let sdp = |v: &Sdp| {
            JsonValue::Object(vec![
                (
                    "type".into(),
                    s(match v.kind {
                        SdpKind::Offer => "offer",
                        SdpKind::Answer => "answer",
                    }),
                ),
                ("sdp".into(), s(&v.sdp)),
            ])
        };
        let mut o: Vec<(String, JsonValue)> = vec![("action".into(), s(self.action()))];
        match self {
            ClientMessage::Announce(a) => {
                o.push(("info_hash".into(), id(&a.info_hash.0)));
                o.push(("peer_id".into(), id(&a.peer_id.0)));
                if let Some(w) = a.numwant {
                    o.push(("numwant".into(), n(w)));
                }
                o.push(("uploaded".into(), n(a.uploaded)));
                o.push(("downloaded".into(), n(a.downloaded)));
                if let Some(l) = a.left {
                    o.push(("left".into(), n(l)));
                }
                if a.event != AnnounceEvent::Update {
                    o.push(("event".into(), s(a.event.name())));
                }
                if !a.offers.is_empty() {
                    let offers = a
                        .offers
                        .iter()
                        .map(|f| {
                            JsonValue::Object(vec![
                                ("offer_id".into(), id(&f.offer_id.0)),
                                ("offer".into(), sdp(&f.offer)),
                            ])
                        })
                        .collect();
                    o.push(("offers".into(), JsonValue::Array(offers)));
                }
            }
            ClientMessage::Answer(a) => {
                o.push(("info_hash".into(), id(&a.info_hash.0)));
                o.push(("peer_id".into(), id(&a.peer_id.0)));
                o.push(("to_peer_id".into(), id(&a.to_peer_id.0)));
                o.push(("offer_id".into(), id(&a.offer_id.0)));
                o.push(("answer".into(), sdp(&a.answer)));
            }
            ClientMessage::Scrape { info_hashes } => {
                if !info_hashes.is_empty() {
                    let ids = info_hashes.iter().map(|h| id(&h.0)).collect();
                    o.push(("info_hash".into(), JsonValue::Array(ids)));
                }
            }
            ClientMessage::PublishManifest { manifest } => {
                o.push((
                    "manifest".into(),
                    JsonValue::String(STANDARD.encode(manifest)),
                ));
            }
            ClientMessage::SubscribeManifest {
                site_key,
                have_version,
            } => {
                o.push(("site_key".into(), JsonValue::String(site_key.to_string())));
                o.push(("have_version".into(), n(*have_version)));
            }
        }
        JsonValue::Object(o)
    }

    /// The `action` string this message is sent with.
    pub fn action(&self) -> &'static str {
        match self {
            ClientMessage::Announce(_) | ClientMessage::Answer(_) => ACTION_ANNOUNCE,
            ClientMessage::Scrape { .. } => ACTION_SCRAPE,
            ClientMessage::PublishManifest { .. } => ACTION_PUBLISH,
            ClientMessage::SubscribeManifest { .. } => ACTION_MANIFEST,
        }
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

// ---------------------------------------------------------------------------
// Tracker → client

/// An offer relayed to one chosen peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedOffer {
    /// The swarm.
    pub info_hash: InfoHash,
    /// The offerer, to answer to.
    pub peer_id: PeerId,
    /// The offerer's id for this offer.
    pub offer_id: OfferId,
    /// The offer SDP.
    pub offer: Sdp,
}

/// An answer relayed back to the offerer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedAnswer {
    /// The swarm.
    pub info_hash: InfoHash,
    /// The answerer.
    pub peer_id: PeerId,
    /// The offer this answers.
    pub offer_id: OfferId,
    /// The answer SDP.
    pub answer: Sdp,
}

/// Per-swarm figures of a scrape response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScrapeFile {
    /// Seeders.
    pub complete: u64,
    /// Leechers.
    pub incomplete: u64,
    /// Completed downloads (peerhost trackers report 0).
    pub downloaded: u64,
}

/// A message from the tracker to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    /// Reply to an announce, sent before its offers are relayed.
    AnnounceResponse {
        /// The swarm.
        info_hash: InfoHash,
        /// Seconds until the next regular announce.
        interval: u64,
        /// Seeders in the swarm.
        complete: u64,
        /// Leechers in the swarm.
        incomplete: u64,
    },
    /// Another peer's offer; answer it with [`ClientMessage::Answer`].
    Offer(RelayedOffer),
    /// The answer to one of our offers.
    Answer(RelayedAnswer),
    /// Reply to a scrape.
    ScrapeResponse {
        /// Figures per swarm asked about (unknown swarms report zeros).
        files: Vec<(InfoHash, ScrapeFile)>,
    },
    /// The request was refused; the connection stays open unless the
    /// tracker closes it.
    Error {
        /// The action of the refused request (echoed, truncated).
        action: String,
        /// Why, for people (WebTorrent's `"failure reason"`).
        failure_reason: String,
        /// The request's swarm, when it named one.
        info_hash: Option<InfoHash>,
    },
    /// A newer signed manifest of a subscribed site. A hint: verify it.
    ManifestPush {
        /// The site.
        site_key: SiteKey,
        /// The manifest's version, as the tracker verified it.
        version: u64,
        /// [`SignedManifest::to_bytes`](crate::manifest::SignedManifest::to_bytes); base64 in JSON.
        manifest: Vec<u8>,
    },
    /// The tracker accepted a published manifest.
    PublishResult {
        /// The version now current at the tracker.
        version: u64,
    },
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawServer {
    action: Option<String>,
    info_hash: Option<InfoHash>,
    peer_id: Option<PeerId>,
    offer_id: Option<OfferId>,
    interval: Lenient,
    complete: Lenient,
    incomplete: Lenient,
    offer: Option<Sdp>,
    answer: Option<Sdp>,
    files: Option<BTreeMap<String, ScrapeFile>>,
    #[serde(rename = "failure reason")]
    failure_reason: Option<String>,
    site_key: Option<String>,
    version: Lenient,
    manifest: Option<String>,
}

impl RawServer {
    /// The fields of a message another JSON parser read (see
    /// [`crate::json`]), with the same type checks as the serde derive.
    fn from_value(v: &JsonValue) -> Result<RawServer, SignalError> {
        let JsonValue::Object(_) = v else {
            return Err(malformed(format!(
                "a message is an object, not {}",
                v.kind()
            )));
        };
        let id = |key: &str| -> Result<Option<[u8; 20]>, SignalError> {
            match v.get(key) {
                None | Some(JsonValue::Null) => Ok(None),
                Some(JsonValue::String(s)) => parse_binary_id(s)
                    .map(Some)
                    .ok_or_else(|| malformed(format!("{key}: not a 20-character binary string"))),
                Some(other) => Err(malformed(format!(
                    "{key}: {} is not a string",
                    other.kind()
                ))),
            }
        };
        let text = |key: &str| -> Result<Option<String>, SignalError> {
            match v.get(key) {
                None | Some(JsonValue::Null) => Ok(None),
                Some(JsonValue::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(malformed(format!(
                    "{key}: {} is not a string",
                    other.kind()
                ))),
            }
        };
        let lenient = |key: &str| -> Result<Lenient, SignalError> {
            match v.get(key) {
                None | Some(JsonValue::Null) => Ok(Lenient(None)),
                // As `Lenient`'s visitor: saturating, negative is 0.
                Some(JsonValue::Number(n)) => Ok(Lenient(n.is_finite().then(|| n.max(0.0) as u64))),
                Some(other) => Err(malformed(format!(
                    "{key}: {} is not a number",
                    other.kind()
                ))),
            }
        };
        let sdp = |key: &str| -> Result<Option<Sdp>, SignalError> {
            let o = match v.get(key) {
                None | Some(JsonValue::Null) => return Ok(None),
                Some(o @ JsonValue::Object(_)) => o,
                Some(other) => {
                    return Err(malformed(format!(
                        "{key}: {} is not an object",
                        other.kind()
                    )));
                }
            };
            let kind = match o.get("type").and_then(JsonValue::as_str) {
                Some("offer") => SdpKind::Offer,
                Some("answer") => SdpKind::Answer,
                _ => {
                    return Err(malformed(format!(
                        "{key}: type is not \"offer\" or \"answer\""
                    )));
                }
            };
            let sdp = o
                .get("sdp")
                .and_then(JsonValue::as_str)
                .ok_or_else(|| malformed(format!("{key}: sdp is not a string")))?;
            Ok(Some(Sdp {
                kind,
                sdp: sdp.to_owned(),
            }))
        };
        let files = match v.get("files") {
            None | Some(JsonValue::Null) => None,
            Some(JsonValue::Object(entries)) => {
                let mut files = BTreeMap::new();
                for (k, f) in entries {
                    let n = |field: &str| {
                        f.get(field)
                            .and_then(JsonValue::as_u64)
                            .ok_or_else(|| malformed(format!("files: {field} is not a count")))
                    };
                    files.insert(
                        k.clone(),
                        ScrapeFile {
                            complete: n("complete")?,
                            incomplete: n("incomplete")?,
                            downloaded: n("downloaded")?,
                        },
                    );
                }
                Some(files)
            }
            Some(other) => {
                return Err(malformed(format!(
                    "files: {} is not an object",
                    other.kind()
                )));
            }
        };
        Ok(RawServer {
            action: text("action")?,
            info_hash: id("info_hash")?.map(InfoHash),
            peer_id: id("peer_id")?.map(PeerId),
            offer_id: id("offer_id")?.map(OfferId),
            interval: lenient("interval")?,
            complete: lenient("complete")?,
            incomplete: lenient("incomplete")?,
            offer: sdp("offer")?,
            answer: sdp("answer")?,
            files,
            failure_reason: text("failure reason")?,
            site_key: text("site_key")?,
            version: lenient("version")?,
            manifest: text("manifest")?,
        })
    }
}

fn malformed(reason: String) -> SignalError {
    SignalError::Malformed(reason)
}

impl ServerMessage {
    /// Parses one tracker message; total.
    pub fn from_json(text: &str) -> Result<ServerMessage, SignalError> {
        Self::from_raw(parse_json(text)?)
    }

    /// [`ServerMessage::from_json`] for a message another JSON parser read
    /// (the browser's `JSON.parse`; see [`crate::json`]). The caller checks
    /// the text against [`MAX_JSON_LEN`] before parsing it.
    pub fn from_value(value: &JsonValue) -> Result<ServerMessage, SignalError> {
        Self::from_raw(RawServer::from_value(value)?)
    }

    fn from_raw(raw: RawServer) -> Result<ServerMessage, SignalError> {
        let action = raw.action.as_deref().ok_or(SignalError::MissingAction)?;
        if let Some(failure_reason) = raw.failure_reason {
            return Ok(ServerMessage::Error {
                action: truncate_action(action),
                failure_reason,
                info_hash: raw.info_hash,
            });
        }
        match action {
            ACTION_ANNOUNCE => {
                let info_hash = need(raw.info_hash, "info_hash")?;
                if let Some(answer) = raw.answer {
                    Ok(ServerMessage::Answer(RelayedAnswer {
                        info_hash,
                        peer_id: need(raw.peer_id, "peer_id")?,
                        offer_id: need(raw.offer_id, "offer_id")?,
                        answer,
                    }))
                } else if let Some(offer) = raw.offer {
                    Ok(ServerMessage::Offer(RelayedOffer {
                        info_hash,
                        peer_id: need(raw.peer_id, "peer_id")?,
                        offer_id: need(raw.offer_id, "offer_id")?,
                        offer,
                    }))
                } else {
                    Ok(ServerMessage::AnnounceResponse {
                        info_hash,
                        interval: raw.interval.0.unwrap_or(DEFAULT_ANNOUNCE_INTERVAL_SECS),
                        complete: raw.complete.0.unwrap_or(0),
                        incomplete: raw.incomplete.0.unwrap_or(0),
                    })
                }
            }
            ACTION_SCRAPE => {
                let files = need(raw.files, "files")?;
                let files = files
                    .into_iter()
                    .map(|(k, v)| {
                        InfoHash::from_binary_str(&k)
                            .map(|h| (h, v))
                            .ok_or_else(|| SignalError::Invalid {
                                field: "files",
                                reason: "key is not a binary-string id".into(),
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(ServerMessage::ScrapeResponse { files })
            }
            ACTION_MANIFEST => Ok(ServerMessage::ManifestPush {
                site_key: parse_site_key(raw.site_key)?,
                version: need(raw.version.0, "version")?,
                manifest: decode_manifest(&need(raw.manifest, "manifest")?)?,
            }),
            ACTION_PUBLISH => Ok(ServerMessage::PublishResult {
                version: need(raw.version.0, "version")?,
            }),
            other => Err(SignalError::UnknownAction(truncate_action(other))),
        }
    }

    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        let out = match self {
            ServerMessage::AnnounceResponse {
                info_hash,
                interval,
                complete,
                incomplete,
            } => json_sized(
                &AnnounceResponseOut {
                    action: ACTION_ANNOUNCE,
                    info_hash,
                    interval: *interval,
                    complete: *complete,
                    incomplete: *incomplete,
                },
                256,
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

    /// A short label of the message kind, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerMessage::AnnounceResponse { .. } => "announce_response",
            ServerMessage::Offer(_) => "offer",
            ServerMessage::Answer(_) => "answer",
            ServerMessage::ScrapeResponse { .. } => "scrape_response",
            ServerMessage::Error { .. } => "error",
            ServerMessage::ManifestPush { .. } => "manifest_push",
            ServerMessage::PublishResult { .. } => "publish_result",
        }
    }
}

#[derive(Serialize)]
struct AnnounceResponseOut<'a> {
    action: &'static str,
    info_hash: &'a InfoHash,
    interval: u64,
    complete: u64,
    incomplete: u64,
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

#[cfg(test)]
mod tests {
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
                                    sdp in arb_sdp(), numwant in proptest::option::of(any::<u64>()),
                                    up in any::<u64>(), left in proptest::option::of(any::<u64>()), ev in 0..5u8) {
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
}
