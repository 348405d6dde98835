//! The tracker dialect: WebTorrent's WebSocket tracker protocol plus the
//! `peerhost/1` manifest extension. This module is its spec: messages,
//! limits and errors; the files beside it hold the encodings.
//!
//! Shared by the tracker (`peerhost-tracker`) and the client core. Parsing
//! is total: [`ClientMessage::from_json`] and [`ServerMessage::from_json`]
//! turn untrusted text into a value or a [`SignalError`], never a panic.
//! The browser, which parses and writes JSON with its own `JSON.parse` /
//! `JSON.stringify`, uses [`ServerMessage::from_value`] and
//! [`ClientMessage::to_value`] instead (same fields, same checks; see
//! [Codecs](#codecs)).
//!
//! - `ids`: binary-string ids ([`PeerId`], [`InfoHash`], [`OfferId`]) and
//!   [`swarm_id`].
//! - `raw`: the fields any message may carry and the checks that turn
//!   them into a message — one implementation for both codecs.
//! - `serde_codec`: JSON text, native (tracker, seeder, CLI).
//! - `value_codec`: [`JsonValue`](crate::json::JsonValue), the browser.
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
//! | [`ServerMessage::AnnounceResponse`] | `{"action":"announce","info_hash":ID,"interval":S,"complete":N,"incomplete":N,"ice_servers":[ICE,…]?}` |
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
//! (at most [`MAX_MANIFEST_LEN`] bytes
//! decoded); `S` an SDP string; `ICE` one WebRTC `RTCIceServer` dictionary,
//! `{"urls":URL|[URL,…],"username":TEXT?,"credential":TEXT?}` (see
//! [`crate::ice`]).
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
//! - `ice_servers` in an announce response: STUN/TURN servers the tracker
//!   offers its clients (for TURN, credentials it minted for this
//!   connection). At most [`MAX_ICE_SERVERS`] servers of 1 to
//!   [`MAX_ICE_URLS`](crate::ice::MAX_ICE_URLS) `stun:`/`stuns:`/`turn:`/`turns:`
//!   URLs, every text at most [`MAX_ICE_TEXT_LEN`](crate::ice::MAX_ICE_TEXT_LEN)
//!   bytes, TURN URLs only with username and credential; anything else
//!   refuses the message (a browser would throw on it). Absent means none;
//!   each answer replaces the previous answer's list. Other trackers send
//!   none, and other clients ignore it.
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

//!
//! # Codecs
//! Two codecs read and write the same JSON, because the browser build
//! carries no JSON parser (serde and serde_json were about a fifth of the
//! module): it parses with `JSON.parse` into a
//! [`JsonValue`](crate::json::JsonValue), native code parses text with
//! serde_json. They share everything after field extraction (`raw`): which
//! fields a message needs, every limit, every error but the wording of
//! [`SignalError::Malformed`]. Only "which JSON shape is a string, a number,
//! an object" is written twice, and `core/tests/signal_codecs_agree.rs`
//! checks the two agree on every accept/refuse decision and every decoded
//! value, both directions, every message (plus a proptest).
//!
//! **Why not one codec** (parse text into a `JsonValue` natively too, and
//! use only the value codec): the browser bundle would be the same either
//! way (the native halves are not linked into it), but the tracker parses
//! every client message and writes every relayed offer, and the
//! intermediate tree costs it. Measured with the `#[ignore]`d
//! `bench_tracker_hot_path_serde_vs_value` in that test (release, best of
//! 7 rounds of 20 000, shared 2-core machine, December 2026):
//!
//! | tracker hot path | serde (text codec) | via `JsonValue` | ratio |
//! |---|---|---|---|
//! | decode an announce with 5 offers (5.5 KB) | 2.8 µs | 4.7 µs | 1.65× |
//! | encode a relayed offer (1.2 KB) | 0.86 µs | 1.2 µs | 1.4× |
//! | encode an announce response | 0.14 µs | 0.26 µs | 1.8× |
//!
//! So both stay, kept honest by the shared checks and the agreement test.
//! (The serde path measured 2.9 / 0.83 / 0.13 µs before this layout: the
//! object-only and exact-count rules below did not slow it.)
//!
//! Numbers are JavaScript numbers on both codecs: a counter (`numwant`,
//! `uploaded`, `left`, `interval`, `version`, …) above 2^53 is rounded to
//! the nearest `f64`, as `JSON.parse` does, then truncated and saturated;
//! a scrape count must be an integer in `0..=2^53-1`
//! ([`MAX_SAFE_INTEGER`](crate::json::MAX_SAFE_INTEGER); `1.0` and `1e2`
//! are integers). Structs are JSON objects only (serde
//! would also take arrays). Where the codecs cannot agree, the input is
//! one JSON.parse never hands over, and the text codec refuses it:
//! duplicate keys (`JSON.parse` keeps the last), lone surrogate escapes,
//! numbers beyond `f64` (`1e400`) and nesting deeper than serde_json's
//! 128 levels.

mod ids;
mod raw;
mod serde_codec;
#[cfg(test)]
mod tests;
mod value_codec;

pub use ids::{InfoHash, OfferId, PeerId, swarm_id};

use serde::{Deserialize, Serialize};

use crate::ice::IceServer;
pub use crate::ice::MAX_ICE_SERVERS;
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
    #[serde(rename = "type", deserialize_with = "serde_codec::sdp_kind")]
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
    pub(crate) fn name(self) -> &'static str {
        match self {
            AnnounceEvent::Started => "started",
            AnnounceEvent::Stopped => "stopped",
            AnnounceEvent::Completed => "completed",
            AnnounceEvent::Update => "update",
            AnnounceEvent::Paused => "paused",
        }
    }

    /// The event with that wire name.
    pub(crate) fn parse(s: &str) -> Option<Self> {
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

impl ClientMessage {
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
        /// ICE servers offered by the tracker (`ice_servers`; empty when
        /// absent).
        ice_servers: Vec<IceServer>,
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

impl ServerMessage {
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
