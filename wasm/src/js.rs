//! Small helpers over JS values shared by the driver and its connections:
//! error text, options and plain objects through `Reflect`, the page's
//! clock and `crypto.subtle`.

use js_sys::Reflect;
use wasm_bindgen::JsValue;

/// A JS error or value as text, without Debug formatting.
pub fn js_text(v: &JsValue) -> String {
    v.as_string()
        .or_else(|| {
            Reflect::get(v, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
        })
        .unwrap_or_else(|| "unknown error".into())
}

/// Sets `key` on a plain object (cannot fail on one we created).
pub fn set(obj: &js_sys::Object, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &key.into(), &value.into());
}

/// A number option of an options object.
pub fn opt_f64(options: &JsValue, key: &str) -> Option<f64> {
    Reflect::get(options, &key.into())
        .ok()
        .and_then(|v| v.as_f64())
}

/// A non-empty string option of an options object.
pub fn opt_str(options: &JsValue, key: &str) -> Option<String> {
    Reflect::get(options, &key.into())
        .ok()
        .and_then(|v| v.as_string())
        .filter(|s| !s.is_empty())
}

/// A boolean option of an options object.
pub fn opt_bool(options: &JsValue, key: &str) -> Option<bool> {
    Reflect::get(options, &key.into())
        .ok()
        .and_then(|v| v.as_bool())
}

/// The page's `crypto.subtle`, where there is one (secure contexts only).
pub fn subtle() -> Option<web_sys::SubtleCrypto> {
    let crypto = web_sys::window()?.crypto().ok()?;
    let subtle = crypto.subtle();
    (!JsValue::from(subtle.clone()).is_undefined()).then_some(subtle)
}

/// `performance.now()`, or `Date.now()` where there is no window.
pub fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or_else(js_sys::Date::now, |p| p.now())
}
