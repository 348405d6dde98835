//! The [`JsonValue`] codec: the browser's, which parses and writes JSON
//! text with `JSON.parse` / `JSON.stringify` (see [`crate::json`]) so the
//! module carries no JSON parser. It extracts the same fields as the serde
//! codec, with the same type rules, into [`super::raw`], which does every
//! check; `core/tests/signal_codecs_agree.rs` holds the two to that.
//!
//! The browser uses two of these four functions (it reads tracker messages
//! and writes client messages); the other two are what a tracker would
//! call, and keep the agreement test two-way. Unused, they are not linked
//! into the browser module.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::ids::parse_binary_id;
use super::raw::{InfoHashes, Lenient, RawClient, RawServer};
use super::*;
use crate::ice::IceServer;
use crate::json::JsonValue;

fn malformed(reason: String) -> SignalError {
    SignalError::Malformed(reason)
}

/// Field readers over one JSON object, with the serde codec's type rules:
/// `null` is absent, anything but the expected type is malformed.
struct Fields<'v>(&'v JsonValue);

impl<'v> Fields<'v> {
    fn of(v: &'v JsonValue) -> Result<Self, SignalError> {
        match v {
            JsonValue::Object(_) => Ok(Fields(v)),
            other => Err(malformed(format!(
                "a message is an object, not {}",
                other.kind()
            ))),
        }
    }

    fn get(&self, key: &str) -> Option<&'v JsonValue> {
        match self.0.get(key) {
            None | Some(JsonValue::Null) => None,
            Some(v) => Some(v),
        }
    }

    fn id(&self, key: &str) -> Result<Option<[u8; 20]>, SignalError> {
        self.get(key).map(|v| binary_id(key, v)).transpose()
    }

    fn text(&self, key: &str) -> Result<Option<String>, SignalError> {
        match self.get(key) {
            None => Ok(None),
            Some(JsonValue::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(malformed(format!(
                "{key}: {} is not a string",
                other.kind()
            ))),
        }
    }

    fn lenient(&self, key: &str) -> Result<Lenient, SignalError> {
        match self.get(key) {
            None => Ok(Lenient(None)),
            Some(JsonValue::Number(n)) => Ok(Lenient::from_f64(*n)),
            Some(other) => Err(malformed(format!(
                "{key}: {} is not a number",
                other.kind()
            ))),
        }
    }

    fn sdp(&self, key: &str) -> Result<Option<Sdp>, SignalError> {
        self.get(key).map(|v| sdp(key, v)).transpose()
    }
}

fn binary_id(key: &str, v: &JsonValue) -> Result<[u8; 20], SignalError> {
    match v {
        JsonValue::String(s) => parse_binary_id(s)
            .ok_or_else(|| malformed(format!("{key}: not a 20-character binary string"))),
        other => Err(malformed(format!(
            "{key}: {} is not a string",
            other.kind()
        ))),
    }
}

fn sdp(key: &str, v: &JsonValue) -> Result<Sdp, SignalError> {
    let JsonValue::Object(_) = v else {
        return Err(malformed(format!("{key}: {} is not an object", v.kind())));
    };
    let kind = match v.get("type").and_then(JsonValue::as_str) {
        Some("offer") => SdpKind::Offer,
        Some("answer") => SdpKind::Answer,
        _ => {
            return Err(malformed(format!(
                "{key}: type is not \"offer\" or \"answer\""
            )));
        }
    };
    let sdp = v
        .get("sdp")
        .and_then(JsonValue::as_str)
        .ok_or_else(|| malformed(format!("{key}: sdp is not a string")))?;
    Ok(Sdp {
        kind,
        sdp: sdp.to_owned(),
    })
}

impl RawClient {
    fn from_value(v: &JsonValue) -> Result<RawClient, SignalError> {
        let f = Fields::of(v)?;
        let info_hash = match f.get("info_hash") {
            None => None,
            Some(JsonValue::Array(ids)) => {
                if ids.len() > MAX_SCRAPE_HASHES {
                    return Err(malformed(format!(
                        "info_hash: more than {MAX_SCRAPE_HASHES} ids"
                    )));
                }
                let ids = ids.iter().map(|v| binary_id("info_hash", v).map(InfoHash));
                Some(InfoHashes(ids.collect::<Result<_, _>>()?))
            }
            Some(v) => Some(InfoHashes(vec![InfoHash(binary_id("info_hash", v)?)])),
        };
        let offers = match f.get("offers") {
            None => None,
            Some(JsonValue::Array(offers)) => {
                Some(offers.iter().map(offer).collect::<Result<_, _>>()?)
            }
            Some(other) => {
                return Err(malformed(format!(
                    "offers: {} is not an array",
                    other.kind()
                )));
            }
        };
        Ok(RawClient {
            action: f.text("action")?,
            info_hash,
            peer_id: f.id("peer_id")?.map(PeerId),
            to_peer_id: f.id("to_peer_id")?.map(PeerId),
            offer_id: f.id("offer_id")?.map(OfferId),
            numwant: f.lenient("numwant")?,
            uploaded: f.lenient("uploaded")?,
            downloaded: f.lenient("downloaded")?,
            left: f.lenient("left")?,
            event: f.text("event")?,
            offers,
            answer: f.sdp("answer")?,
            manifest: f.text("manifest")?,
            site_key: f.text("site_key")?,
            have_version: f.lenient("have_version")?,
        })
    }
}

/// One element of `offers`: both fields required, `null` is not absent.
fn offer(o: &JsonValue) -> Result<Offer, SignalError> {
    let JsonValue::Object(_) = o else {
        return Err(malformed(format!("offers: {} is not an object", o.kind())));
    };
    let field = |key| o.get(key).unwrap_or(&JsonValue::Null);
    Ok(Offer {
        offer_id: OfferId(binary_id("offer_id", field("offer_id"))?),
        offer: sdp("offer", field("offer"))?,
    })
}

impl RawServer {
    fn from_value(v: &JsonValue) -> Result<RawServer, SignalError> {
        let f = Fields::of(v)?;
        let files = match f.get("files") {
            None => None,
            Some(JsonValue::Object(entries)) => {
                let mut files = BTreeMap::new();
                for (k, file) in entries {
                    files.insert(k.clone(), scrape_file(file)?);
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
        let ice_servers = match f.get("ice_servers") {
            None => None,
            Some(JsonValue::Array(list)) => Some(
                list.iter()
                    .map(|v| {
                        IceServer::from_value(v).map_err(|e| malformed(format!("ice_servers: {e}")))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some(other) => {
                return Err(malformed(format!(
                    "ice_servers: {} is not an array",
                    other.kind()
                )));
            }
        };
        Ok(RawServer {
            action: f.text("action")?,
            info_hash: f.id("info_hash")?.map(InfoHash),
            peer_id: f.id("peer_id")?.map(PeerId),
            offer_id: f.id("offer_id")?.map(OfferId),
            interval: f.lenient("interval")?,
            complete: f.lenient("complete")?,
            incomplete: f.lenient("incomplete")?,
            offer: f.sdp("offer")?,
            answer: f.sdp("answer")?,
            files,
            failure_reason: f.text("failure reason")?,
            site_key: f.text("site_key")?,
            version: f.lenient("version")?,
            manifest: f.text("manifest")?,
            ice_servers,
        })
    }
}

/// One value of a scrape response's `files`: three exact counts (a value
/// that is not an object has none).
fn scrape_file(file: &JsonValue) -> Result<ScrapeFile, SignalError> {
    let n = |field: &str| {
        file.get(field)
            .and_then(JsonValue::as_u64)
            .ok_or_else(|| malformed(format!("files: {field} is not a count")))
    };
    Ok(ScrapeFile {
        complete: n("complete")?,
        incomplete: n("incomplete")?,
        downloaded: n("downloaded")?,
    })
}

fn s(v: &str) -> JsonValue {
    JsonValue::String(v.to_owned())
}

/// Counts are numbers: exact up to 2^53.
fn n(v: u64) -> JsonValue {
    JsonValue::Number(v as f64)
}

fn id(v: &[u8; 20]) -> JsonValue {
    JsonValue::String(v.iter().map(|&b| char::from(b)).collect())
}

fn sdp_value(v: &Sdp) -> JsonValue {
    let kind = match v.kind {
        SdpKind::Offer => "offer",
        SdpKind::Answer => "answer",
    };
    JsonValue::Object(vec![("type".into(), s(kind)), ("sdp".into(), s(&v.sdp))])
}

impl ClientMessage {
    /// [`ClientMessage::from_json`] for a message another JSON parser read
    /// (see [`crate::json`]). The caller checks the text against
    /// [`MAX_JSON_LEN`] before parsing it.
    pub fn from_value(value: &JsonValue) -> Result<ClientMessage, SignalError> {
        ClientMessage::from_raw(RawClient::from_value(value)?)
    }

    /// The fields [`ClientMessage::to_json`] writes, as a [`JsonValue`],
    /// for drivers that write JSON with their own serializer (the
    /// browser's `JSON.stringify`; see [`crate::json`]). Counts are
    /// numbers: exact up to 2^53.
    pub fn to_value(&self) -> JsonValue {
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
                                ("offer".into(), sdp_value(&f.offer)),
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
                o.push(("answer".into(), sdp_value(&a.answer)));
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
}

impl ServerMessage {
    /// [`ServerMessage::from_json`] for a message another JSON parser read
    /// (the browser's `JSON.parse`; see [`crate::json`]). The caller checks
    /// the text against [`MAX_JSON_LEN`] before parsing it.
    pub fn from_value(value: &JsonValue) -> Result<ServerMessage, SignalError> {
        ServerMessage::from_raw(RawServer::from_value(value)?)
    }

    /// The fields [`ServerMessage::to_json`] writes, as a [`JsonValue`].
    pub fn to_value(&self) -> JsonValue {
        let action = match self {
            ServerMessage::Error { action, .. } => action.as_str(),
            ServerMessage::AnnounceResponse { .. }
            | ServerMessage::Offer(_)
            | ServerMessage::Answer(_) => ACTION_ANNOUNCE,
            ServerMessage::ScrapeResponse { .. } => ACTION_SCRAPE,
            ServerMessage::ManifestPush { .. } => ACTION_MANIFEST,
            ServerMessage::PublishResult { .. } => ACTION_PUBLISH,
        };
        let mut o: Vec<(String, JsonValue)> = vec![("action".into(), s(action))];
        match self {
            ServerMessage::AnnounceResponse {
                info_hash,
                interval,
                complete,
                incomplete,
                ice_servers,
            } => {
                o.push(("info_hash".into(), id(&info_hash.0)));
                o.push(("interval".into(), n(*interval)));
                o.push(("complete".into(), n(*complete)));
                o.push(("incomplete".into(), n(*incomplete)));
                if !ice_servers.is_empty() {
                    let list = ice_servers.iter().map(IceServer::to_value).collect();
                    o.push(("ice_servers".into(), JsonValue::Array(list)));
                }
            }
            ServerMessage::Offer(r) => {
                o.push(("info_hash".into(), id(&r.info_hash.0)));
                o.push(("peer_id".into(), id(&r.peer_id.0)));
                o.push(("offer_id".into(), id(&r.offer_id.0)));
                o.push(("offer".into(), sdp_value(&r.offer)));
            }
            ServerMessage::Answer(r) => {
                o.push(("info_hash".into(), id(&r.info_hash.0)));
                o.push(("peer_id".into(), id(&r.peer_id.0)));
                o.push(("offer_id".into(), id(&r.offer_id.0)));
                o.push(("answer".into(), sdp_value(&r.answer)));
            }
            ServerMessage::ScrapeResponse { files } => {
                let files = files.iter().map(|(h, f)| {
                    let counts = vec![
                        ("complete".into(), n(f.complete)),
                        ("incomplete".into(), n(f.incomplete)),
                        ("downloaded".into(), n(f.downloaded)),
                    ];
                    (h.to_binary_string(), JsonValue::Object(counts))
                });
                o.push(("files".into(), JsonValue::Object(files.collect())));
                let interval = n(DEFAULT_ANNOUNCE_INTERVAL_SECS);
                let flags = vec![("min_request_interval".into(), interval)];
                o.push(("flags".into(), JsonValue::Object(flags)));
            }
            ServerMessage::Error {
                failure_reason,
                info_hash,
                ..
            } => {
                o.push(("failure reason".into(), s(failure_reason)));
                if let Some(h) = info_hash {
                    o.push(("info_hash".into(), id(&h.0)));
                }
            }
            ServerMessage::ManifestPush {
                site_key,
                version,
                manifest,
            } => {
                o.push(("site_key".into(), s(&site_key.to_string())));
                o.push(("version".into(), n(*version)));
                o.push(("manifest".into(), s(&STANDARD.encode(manifest))));
            }
            ServerMessage::PublishResult { version } => {
                o.push(("version".into(), n(*version)));
            }
        }
        JsonValue::Object(o)
    }
}
