//! The fields of a tracker message, and the checks that make a message of
//! them.
//!
//! Both codecs only extract fields ([`RawClient`], [`RawServer`]): the
//! serde codec with the derive below, the value codec by walking a
//! [`JsonValue`](crate::json::JsonValue). Which fields a message needs,
//! which values are acceptable and every error but the wording of
//! [`SignalError::Malformed`] are decided here, once.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::serde_codec;
use super::*;
use crate::manifest::MAX_MANIFEST_LEN;

/// A number as clients write counters: `null`, negative and fractional
/// values are tolerated (see the module doc). A JavaScript number on both
/// codecs: above 2^53 it is rounded to an `f64` first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Lenient(pub Option<u64>);

impl Lenient {
    /// The counter a JavaScript number stands for: truncated, negative is
    /// 0, saturating; not finite is unknown.
    pub fn from_f64(v: f64) -> Lenient {
        // `as` saturates; NaN cannot occur (checked), JSON has no infinity.
        Lenient(v.is_finite().then(|| v.max(0.0) as u64))
    }
}

/// `info_hash` of a scrape: one id or a list of at most
/// [`MAX_SCRAPE_HASHES`].
#[derive(Debug, Default)]
pub(super) struct InfoHashes(pub Vec<InfoHash>);

/// Every field any client message may carry; unknown keys are ignored.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawClient {
    pub action: Option<String>,
    pub info_hash: Option<InfoHashes>,
    pub peer_id: Option<PeerId>,
    pub to_peer_id: Option<PeerId>,
    pub offer_id: Option<OfferId>,
    pub numwant: Lenient,
    pub uploaded: Lenient,
    pub downloaded: Lenient,
    pub left: Lenient,
    pub event: Option<String>,
    #[serde(deserialize_with = "serde_codec::offers")]
    pub offers: Option<Vec<Offer>>,
    #[serde(deserialize_with = "serde_codec::sdp")]
    pub answer: Option<Sdp>,
    pub manifest: Option<String>,
    pub site_key: Option<String>,
    pub have_version: Lenient,
}

/// Every field any tracker message may carry; unknown keys are ignored.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawServer {
    pub action: Option<String>,
    pub info_hash: Option<InfoHash>,
    pub peer_id: Option<PeerId>,
    pub offer_id: Option<OfferId>,
    pub interval: Lenient,
    pub complete: Lenient,
    pub incomplete: Lenient,
    #[serde(deserialize_with = "serde_codec::sdp")]
    pub offer: Option<Sdp>,
    #[serde(deserialize_with = "serde_codec::sdp")]
    pub answer: Option<Sdp>,
    #[serde(deserialize_with = "serde_codec::files")]
    pub files: Option<BTreeMap<String, ScrapeFile>>,
    #[serde(rename = "failure reason")]
    pub failure_reason: Option<String>,
    pub site_key: Option<String>,
    pub version: Lenient,
    pub manifest: Option<String>,
    pub ice_servers: Option<Vec<IceServer>>,
}

pub(super) fn truncate_action(a: &str) -> String {
    a.chars().take(MAX_ECHOED_ACTION).collect()
}

pub(super) fn one_hash(h: Option<InfoHashes>) -> Result<InfoHash, SignalError> {
    match h {
        None => Err(SignalError::MissingField("info_hash")),
        Some(InfoHashes(v)) if v.len() == 1 => Ok(v[0]),
        Some(_) => Err(SignalError::Invalid {
            field: "info_hash",
            reason: "expected one id".into(),
        }),
    }
}

fn ice_servers(list: Option<Vec<IceServer>>) -> Result<Vec<IceServer>, SignalError> {
    let list = list.unwrap_or_default();
    crate::ice::check_servers(&list).map_err(|e| SignalError::Invalid {
        field: "ice_servers",
        reason: e.to_string(),
    })?;
    Ok(list)
}

pub(super) fn need<T>(v: Option<T>, field: &'static str) -> Result<T, SignalError> {
    v.ok_or(SignalError::MissingField(field))
}

pub(super) fn decode_manifest(b64: &str) -> Result<Vec<u8>, SignalError> {
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

pub(super) fn parse_site_key(s: Option<String>) -> Result<SiteKey, SignalError> {
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
    /// The message these fields make, whichever codec extracted them.
    pub(super) fn from_raw(raw: RawClient) -> Result<ClientMessage, SignalError> {
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
}

impl ServerMessage {
    /// The message these fields make, whichever codec extracted them.
    pub(super) fn from_raw(raw: RawServer) -> Result<ServerMessage, SignalError> {
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
                        ice_servers: ice_servers(raw.ice_servers)?,
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
}
