//! A JSON value parsed by someone else.
//!
//! The browser already has a JSON parser (`JSON.parse`); the browser
//! driver converts what it returns into a [`JsonValue`] and hands that to
//! [`crate::signal::ServerMessage::from_value`] and
//! [`crate::manifest::SignedManifest::from_value`], so the browser build
//! carries no JSON parser of its own. The typed checks are the same as the
//! text parsers' (`from_json`); only numbers differ: JSON numbers arrive as
//! `f64`, so integers above 2^53 cannot be told apart and are refused
//! where exactness matters (the manifest).

/// A JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonValue {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as JavaScript holds it.
    Number(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<JsonValue>),
    /// An object: its keys and values, in any order, keys unique.
    Object(Vec<(String, JsonValue)>),
}

/// Largest integer an `f64` holds exactly, with every smaller one (2^53 − 1).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

impl JsonValue {
    /// The value at `key` of an object (`None` for other values or a
    /// missing key).
    pub fn get(&self, key: &str) -> Option<&JsonValue> {
        match self {
            JsonValue::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as an exact unsigned integer: a number with no fraction
    /// in `0..=MAX_SAFE_INTEGER`.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            JsonValue::Number(n)
                if n >= 0.0 && n.fract() == 0.0 && n <= MAX_SAFE_INTEGER as f64 =>
            {
                Some(n as u64)
            }
            _ => None,
        }
    }

    /// The value as a string slice.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            JsonValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// A word for the kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            JsonValue::Null => "null",
            JsonValue::Bool(_) => "a boolean",
            JsonValue::Number(_) => "a number",
            JsonValue::String(_) => "a string",
            JsonValue::Array(_) => "an array",
            JsonValue::Object(_) => "an object",
        }
    }
}
