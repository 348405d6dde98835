//! JSON text to and from [`JsonValue`] with the browser's own `JSON.parse`
//! and `JSON.stringify`, so the module carries no JSON code of its own
//! (serde and serde_json were about a fifth of it).

use js_sys::{Array, JSON, Object};
use peerhost_core::json::JsonValue;
use wasm_bindgen::{JsCast, JsValue};

/// Deepest nesting accepted; tracker messages and manifests need four.
const MAX_DEPTH: u32 = 32;

/// Parses `text` with `JSON.parse`.
pub fn parse(text: &str) -> Result<JsonValue, String> {
    let value = JSON::parse(text).map_err(|e| crate::js::js_text(&e))?;
    convert(&value, MAX_DEPTH).ok_or_else(|| "nested too deeply".to_owned())
}

fn convert(v: &JsValue, depth: u32) -> Option<JsonValue> {
    if v.is_null() {
        return Some(JsonValue::Null);
    }
    if let Some(b) = v.as_bool() {
        return Some(JsonValue::Bool(b));
    }
    if let Some(n) = v.as_f64() {
        return Some(JsonValue::Number(n));
    }
    if let Some(s) = v.as_string() {
        return Some(JsonValue::String(s));
    }
    let depth = depth.checked_sub(1)?;
    if Array::is_array(v) {
        let items: &Array = v.unchecked_ref();
        return items
            .iter()
            .map(|x| convert(&x, depth))
            .collect::<Option<_>>()
            .map(JsonValue::Array);
    }
    // JSON.parse makes nothing else: a plain object.
    let entries = Object::entries(v.dyn_ref::<Object>()?);
    entries
        .iter()
        .map(|pair| {
            let pair: Array = pair.unchecked_into();
            Some((pair.get(0).as_string()?, convert(&pair.get(1), depth)?))
        })
        .collect::<Option<_>>()
        .map(JsonValue::Object)
}

/// Writes `value` as JSON text with `JSON.stringify`.
pub fn stringify(value: &JsonValue) -> String {
    JSON::stringify(&to_js(value))
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_default()
}

fn to_js(v: &JsonValue) -> JsValue {
    match v {
        JsonValue::Null => JsValue::NULL,
        JsonValue::Bool(b) => JsValue::from_bool(*b),
        JsonValue::Number(n) => JsValue::from_f64(*n),
        JsonValue::String(s) => JsValue::from_str(s),
        JsonValue::Array(items) => items.iter().map(to_js).collect::<Array>().into(),
        JsonValue::Object(fields) => {
            let o = Object::new();
            for (k, v) in fields {
                // Cannot fail on a plain object we created.
                let _ = js_sys::Reflect::set(&o, &JsValue::from_str(k), &to_js(v));
            }
            o.into()
        }
    }
}
