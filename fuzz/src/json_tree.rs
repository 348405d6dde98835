//! A [`JsonValue`] built straight from bytes, as the browser hands one to
//! the core after `JSON.parse`: any shape, any number (NaN, infinities,
//! -0, fractions, huge), repeated keys, non-object roots. Keys and strings
//! come from the dialect's vocabulary most of the time, so the decoders'
//! deep checks are reached, and from raw bytes otherwise.

use peerhost_core::json::JsonValue;

use crate::Bytes;

/// Deepest nesting built (the browser's parser goes deeper; the decoders
/// only look a few levels down).
const MAX_DEPTH: u32 = 6;
/// Most items in one array or object.
const MAX_ITEMS: usize = 12;

/// Words of the tracker dialect and the manifest document.
const WORDS: &[&str] = &[
    "action",
    "announce",
    "scrape",
    "peerhost_publish",
    "peerhost_manifest",
    "info_hash",
    "peer_id",
    "to_peer_id",
    "offer_id",
    "offer",
    "answer",
    "offers",
    "type",
    "sdp",
    "numwant",
    "uploaded",
    "downloaded",
    "left",
    "event",
    "started",
    "stopped",
    "completed",
    "update",
    "paused",
    "interval",
    "complete",
    "incomplete",
    "files",
    "flags",
    "min_request_interval",
    "failure reason",
    "site_key",
    "have_version",
    "version",
    "manifest",
    "format",
    "peerhost-manifest/1",
    "issued_at",
    "expires_at",
    "assets",
    "path",
    "content_type",
    "size",
    "piece_size",
    "integrity",
    "pieces",
    "signature",
    "/index.html",
    "text/html",
    "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "-PH0001-abcdefghijkl",
    "aaaaaaaaaaaaaaaaaaaa",
    "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
    "",
];

/// Numbers worth trying at every numeric field.
const NUMBERS: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    1024.0,
    16384.0,
    1_800_000_000.0,
    9_007_199_254_740_991.0,
    9_007_199_254_740_992.0,
    1e300,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    u32::MAX as f64,
    u64::MAX as f64,
];

/// A value from `r`.
pub fn value(r: &mut Bytes<'_>) -> JsonValue {
    node(r, 0)
}

fn node(r: &mut Bytes<'_>, depth: u32) -> JsonValue {
    let tag = r.u8();
    match tag % 8 {
        0 => JsonValue::Null,
        1 => JsonValue::Bool(tag & 0x80 != 0),
        2 => JsonValue::Number(if tag & 0x80 != 0 {
            f64::from_bits(r.u64())
        } else {
            NUMBERS[r.pick(NUMBERS.len())]
        }),
        3 => JsonValue::Number(f64::from(r.u32())),
        4 | 5 => JsonValue::String(string(r)),
        6 if depth < MAX_DEPTH => {
            let n = r.pick(MAX_ITEMS + 1);
            JsonValue::Array((0..n).map(|_| node(r, depth + 1)).collect())
        }
        _ if depth < MAX_DEPTH => {
            let n = r.pick(MAX_ITEMS + 1);
            JsonValue::Object((0..n).map(|_| (string(r), node(r, depth + 1))).collect())
        }
        _ => JsonValue::Null,
    }
}

fn string(r: &mut Bytes<'_>) -> String {
    let b = r.u8();
    if b < 0xe0 {
        WORDS[b as usize % WORDS.len()].to_owned()
    } else {
        // Raw: Latin-1, as binary-string ids are, so every byte counts.
        let n = r.u8() as usize;
        r.take(n).iter().map(|&c| char::from(c)).collect()
    }
}

/// The bytes [`value`] reads back as `v` (strings longer than 255
/// characters or beyond Latin-1 are cut or replaced; nesting beyond the
/// builder's depth becomes `null`): for seeding a corpus from real
/// messages.
pub fn encode(v: &JsonValue) -> Vec<u8> {
    let mut out = Vec::new();
    put(v, 0, &mut out);
    out
}

fn put(v: &JsonValue, depth: u32, out: &mut Vec<u8>) {
    match v {
        JsonValue::Null => out.push(0),
        JsonValue::Bool(b) => out.push(if *b { 0x81 } else { 1 }),
        JsonValue::Number(n) => {
            out.push(0x82);
            out.extend_from_slice(&n.to_bits().to_be_bytes());
        }
        JsonValue::String(s) => {
            out.push(4);
            put_string(s, out);
        }
        JsonValue::Array(items) if depth < MAX_DEPTH => {
            out.push(6);
            out.push(items.len().min(MAX_ITEMS) as u8);
            for i in items.iter().take(MAX_ITEMS) {
                put(i, depth + 1, out);
            }
        }
        JsonValue::Object(fields) if depth < MAX_DEPTH => {
            out.push(7);
            out.push(fields.len().min(MAX_ITEMS) as u8);
            for (k, v) in fields.iter().take(MAX_ITEMS) {
                put_string(k, out);
                put(v, depth + 1, out);
            }
        }
        _ => out.push(0),
    }
}

fn put_string(s: &str, out: &mut Vec<u8>) {
    if let Some(i) = WORDS.iter().position(|w| *w == s) {
        out.push(i as u8);
        return;
    }
    let latin1: Vec<u8> = s
        .chars()
        .take(255)
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect();
    out.push(0xe0);
    out.push(latin1.len() as u8);
    out.extend_from_slice(&latin1);
}
