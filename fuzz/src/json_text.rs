//! `JSON.parse` stood in for natively: serde_json into a [`JsonValue`] with
//! JavaScript's rules (numbers are `f64`; a repeated key keeps the last
//! value), as `core/tests/signal_codecs_agree.rs` does. It also says
//! whether a key was repeated, because there the text codec (which
//! refuses duplicates) and the browser's path documentedly differ.

use std::fmt;

use peerhost_core::json::JsonValue;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};

/// What `JSON.parse` makes of `text` (`None` where serde_json refuses it,
/// e.g. `1e400`, lone surrogates, nesting deeper than 128), and whether an
/// object in it repeats a key.
pub fn parse(text: &str) -> Option<(JsonValue, bool)> {
    serde_json::from_str::<Parsed>(text)
        .ok()
        .map(|p| (p.value, p.duplicate_keys))
}

struct Parsed {
    value: JsonValue,
    duplicate_keys: bool,
}

impl<'de> Deserialize<'de> for Parsed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(V)
    }
}

struct V;

fn leaf(value: JsonValue) -> Parsed {
    Parsed {
        value,
        duplicate_keys: false,
    }
}

impl<'de> Visitor<'de> for V {
    type Value = Parsed;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<Parsed, E> {
        Ok(leaf(JsonValue::Null))
    }
    fn visit_bool<E>(self, b: bool) -> Result<Parsed, E> {
        Ok(leaf(JsonValue::Bool(b)))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Parsed, E> {
        Ok(leaf(JsonValue::Number(n as f64)))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Parsed, E> {
        Ok(leaf(JsonValue::Number(n as f64)))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Parsed, E> {
        Ok(leaf(JsonValue::Number(n)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Parsed, E> {
        Ok(leaf(JsonValue::String(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Parsed, E> {
        Ok(leaf(JsonValue::String(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Parsed, A::Error> {
        let mut items = Vec::new();
        let mut duplicate_keys = false;
        while let Some(p) = seq.next_element::<Parsed>()? {
            duplicate_keys |= p.duplicate_keys;
            items.push(p.value);
        }
        Ok(Parsed {
            value: JsonValue::Array(items),
            duplicate_keys,
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
        let mut fields: Vec<(String, JsonValue)> = Vec::new();
        let mut duplicate_keys = false;
        while let Some((k, p)) = map.next_entry::<String, Parsed>()? {
            duplicate_keys |= p.duplicate_keys;
            match fields.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => {
                    duplicate_keys = true;
                    slot.1 = p.value;
                }
                None => fields.push((k, p.value)),
            }
        }
        Ok(Parsed {
            value: JsonValue::Object(fields),
            duplicate_keys,
        })
    }
}
