//! ICE servers and the ICE policy: how a peer connection finds a path
//! through NATs. An [`IceServer`] is WebRTC's `RTCIceServer` dictionary
//! (`{"urls": "stun:…" | ["turn:…", …], "username": …, "credential": …}`);
//! [`IceConfig`] is what a driver needs to build one peer connection: the
//! servers and whether only relayed (TURN) candidates may be used.
//!
//! Servers come from the site's tag or the seeder's flags
//! ([`ClientConfig::ice_servers`](crate::client::ClientConfig::ice_servers))
//! and from the tracker's announce answers (`ice_servers`, see
//! [`crate::signal`]); the client merges them. Nothing is contacted unless
//! configured: the default is no server at all (host candidates only).
//!
//! Every list is checked here, once, whoever parsed it: a browser throws on
//! an unknown scheme or a TURN URL without credentials, and one bad entry
//! would then fail every connection of the page.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use crate::json::JsonValue;

/// Most ICE servers in one list (the tag's, the tracker's, the merged one).
/// Browsers warn above five: every server slows candidate gathering.
pub const MAX_ICE_SERVERS: usize = 8;
/// Most URLs of one server.
pub const MAX_ICE_URLS: usize = 8;
/// Longest URL, username or credential, in bytes.
pub const MAX_ICE_TEXT_LEN: usize = 512;

/// One ICE server: WebRTC's `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct IceServer {
    /// `stun:`, `stuns:`, `turn:` or `turns:` URLs (RFC 7064 / 7065).
    pub urls: Vec<String>,
    /// TURN username (for the tracker's minted credentials
    /// `EXPIRY_UNIX_SECONDS:ID`).
    pub username: Option<String>,
    /// TURN password.
    pub credential: Option<String>,
}

/// Which candidates a peer connection may use (`iceTransportPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IcePolicy {
    /// Host, server-reflexive and relayed candidates (`"all"`).
    #[default]
    All,
    /// Relayed (TURN) candidates only (`"relay"`): the remote peer never
    /// learns this visitor's addresses. Without a TURN server no
    /// connection forms and assets come from the origin.
    RelayOnly,
}

/// What a driver builds one peer connection with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceConfig {
    /// The servers, configured ones first, then the tracker's.
    pub servers: Vec<IceServer>,
    /// The candidate policy.
    pub policy: IcePolicy,
}

impl IceConfig {
    /// Whether only relayed candidates may be used.
    pub fn relay_only(&self) -> bool {
        self.policy == IcePolicy::RelayOnly
    }

    /// The configured servers followed by the tracker's, without
    /// duplicates, at most [`MAX_ICE_SERVERS`] (configured ones win).
    pub fn merged(configured: &[IceServer], tracker: &[IceServer], relay_only: bool) -> Self {
        let mut servers: Vec<IceServer> = Vec::new();
        for s in configured.iter().chain(tracker) {
            if servers.len() == MAX_ICE_SERVERS {
                break;
            }
            if !servers.contains(s) {
                servers.push(s.clone());
            }
        }
        IceConfig {
            servers,
            policy: if relay_only {
                IcePolicy::RelayOnly
            } else {
                IcePolicy::All
            },
        }
    }
}

/// Why an ICE server list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IceServerError {
    /// Not the `RTCIceServer` shape (not an object, `urls` missing or not
    /// a string or list of strings, a non-string username…).
    #[error("{0}")]
    Malformed(String),
    /// More than [`MAX_ICE_SERVERS`] servers.
    #[error("more than {MAX_ICE_SERVERS} servers")]
    TooManyServers,
    /// A server with no URL or more than [`MAX_ICE_URLS`].
    #[error("a server needs 1 to {MAX_ICE_URLS} urls")]
    UrlCount,
    /// A URL, username or credential longer than [`MAX_ICE_TEXT_LEN`].
    #[error("a url, username or credential is longer than {MAX_ICE_TEXT_LEN} bytes")]
    TooLong,
    /// A URL whose scheme is not `stun:`, `stuns:`, `turn:` or `turns:`.
    #[error("{0:?} is not a stun:, stuns:, turn: or turns: url")]
    Scheme(String),
    /// A `turn:`/`turns:` URL on a server without username and credential.
    #[error("turn url {0:?} needs a username and a credential")]
    TurnWithoutCredentials(String),
}

/// The scheme of an ICE URL, lower case, if it is one of the four.
fn scheme(url: &str) -> Option<&'static str> {
    let (scheme, rest) = url.split_once(':')?;
    if rest.is_empty() {
        return None;
    }
    ["stun", "stuns", "turn", "turns"]
        .into_iter()
        .find(|s| s.eq_ignore_ascii_case(scheme))
}

impl IceServer {
    /// A server with one URL and no credentials (STUN).
    pub fn url(url: impl Into<String>) -> Self {
        IceServer {
            urls: vec![url.into()],
            username: None,
            credential: None,
        }
    }

    /// Whether any URL is a TURN URL.
    pub fn is_turn(&self) -> bool {
        self.urls
            .iter()
            .any(|u| matches!(scheme(u), Some("turn" | "turns")))
    }

    /// The checks a browser would otherwise throw on, and the size limits.
    pub fn check(&self) -> Result<(), IceServerError> {
        if self.urls.is_empty() || self.urls.len() > MAX_ICE_URLS {
            return Err(IceServerError::UrlCount);
        }
        let texts = self
            .urls
            .iter()
            .chain(&self.username)
            .chain(&self.credential);
        if texts.into_iter().any(|t| t.len() > MAX_ICE_TEXT_LEN) {
            return Err(IceServerError::TooLong);
        }
        for url in &self.urls {
            match scheme(url) {
                None => return Err(IceServerError::Scheme(url.clone())),
                Some("turn" | "turns") if self.username.is_none() || self.credential.is_none() => {
                    return Err(IceServerError::TurnWithoutCredentials(url.clone()));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Reads one `RTCIceServer` from a value another JSON parser read (the
    /// browser's `JSON.parse`), with the serde impl's type rules: an
    /// object; `urls` a string or a list of strings; `username` and
    /// `credential` strings, `null` or absent; other keys ignored. Only the
    /// shape: [`IceServer::check`] is separate.
    pub fn from_value(v: &JsonValue) -> Result<IceServer, IceServerError> {
        let bad = |m: String| IceServerError::Malformed(m);
        if !matches!(v, JsonValue::Object(_)) {
            return Err(bad(format!("an ice server is an object, not {}", v.kind())));
        }
        let text = |key: &str| match v.get(key) {
            None | Some(JsonValue::Null) => Ok(None),
            Some(JsonValue::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(bad(format!("{key}: {} is not a string", other.kind()))),
        };
        let urls = match v.get("urls") {
            Some(JsonValue::String(s)) => vec![s.clone()],
            Some(JsonValue::Array(list)) => list
                .iter()
                .map(|u| match u {
                    JsonValue::String(s) => Ok(s.clone()),
                    other => Err(bad(format!("urls: {} is not a string", other.kind()))),
                })
                .collect::<Result<_, _>>()?,
            None | Some(JsonValue::Null) => return Err(bad("urls: missing".into())),
            Some(other) => {
                return Err(bad(format!(
                    "urls: {} is not a string or a list",
                    other.kind()
                )));
            }
        };
        Ok(IceServer {
            urls,
            username: text("username")?,
            credential: text("credential")?,
        })
    }

    /// The `RTCIceServer` dictionary as a value (`urls` always a list).
    pub fn to_value(&self) -> JsonValue {
        let s = |v: &str| JsonValue::String(v.to_owned());
        let urls = self.urls.iter().map(|u| s(u)).collect();
        let mut o = vec![("urls".to_owned(), JsonValue::Array(urls))];
        if let Some(u) = &self.username {
            o.push(("username".into(), s(u)));
        }
        if let Some(c) = &self.credential {
            o.push(("credential".into(), s(c)));
        }
        JsonValue::Object(o)
    }
}

/// Checks a whole list: its length and every server.
pub fn check_servers(servers: &[IceServer]) -> Result<(), IceServerError> {
    if servers.len() > MAX_ICE_SERVERS {
        return Err(IceServerError::TooManyServers);
    }
    servers.iter().try_for_each(IceServer::check)
}

/// Reads and checks a list of `RTCIceServer`s from a value (the tag's
/// `data-ice-servers`, the tracker's `ice_servers`).
pub fn servers_from_value(v: &JsonValue) -> Result<Vec<IceServer>, IceServerError> {
    let JsonValue::Array(list) = v else {
        return Err(IceServerError::Malformed(format!(
            "ice servers are a list, not {}",
            v.kind()
        )));
    };
    let servers = list
        .iter()
        .map(IceServer::from_value)
        .collect::<Result<Vec<_>, _>>()?;
    check_servers(&servers)?;
    Ok(servers)
}

impl Serialize for IceServer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = 1 + usize::from(self.username.is_some()) + usize::from(self.credential.is_some());
        let mut st = s.serialize_struct("RTCIceServer", n)?;
        st.serialize_field("urls", &self.urls)?;
        if let Some(u) = &self.username {
            st.serialize_field("username", u)?;
        }
        if let Some(c) = &self.credential {
            st.serialize_field("credential", c)?;
        }
        st.end()
    }
}

/// `urls`: one string or a list of strings (counted by
/// [`IceServer::check`]; the text's length bounds the list).
struct Urls(Vec<String>);

impl<'de> Deserialize<'de> for Urls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Urls;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a url or a list of urls")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Urls, E> {
                Ok(Urls(vec![v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Urls, A::Error> {
                let mut out = Vec::new();
                while let Some(u) = seq.next_element::<String>()? {
                    out.push(u);
                }
                Ok(Urls(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads an object only (the derive would also take a list of fields),
/// other keys ignored (`credentialType`…), as [`IceServer::from_value`].
impl<'de> Deserialize<'de> for IceServer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            urls: Option<Urls>,
            #[serde(default)]
            username: Option<String>,
            #[serde(default)]
            credential: Option<String>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IceServer;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RTCIceServer object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<IceServer, A::Error> {
                let raw = Raw::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let urls = raw.urls.ok_or_else(|| de::Error::missing_field("urls"))?;
                Ok(IceServer {
                    urls: urls.0,
                    username: raw.username,
                    credential: raw.credential,
                })
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(user: &str) -> IceServer {
        IceServer {
            urls: vec!["turn:203.0.113.1:3478?transport=udp".into()],
            username: Some(user.into()),
            credential: Some("c".into()),
        }
    }

    #[test]
    fn string_or_list_urls_read_the_same_on_both_paths() {
        for text in [
            r#"{"urls":"stun:192.0.2.1:3478"}"#,
            r#"{"urls":["stun:192.0.2.1:3478"],"username":null,"credentialType":"password"}"#,
        ] {
            let serde: IceServer = serde_json::from_str(text).unwrap();
            assert_eq!(serde, IceServer::url("stun:192.0.2.1:3478"));
        }
        let v = JsonValue::Object(vec![(
            "urls".into(),
            JsonValue::String("stun:192.0.2.1:3478".into()),
        )]);
        assert_eq!(
            IceServer::from_value(&v).unwrap(),
            IceServer::url("stun:192.0.2.1:3478")
        );
    }

    #[test]
    fn malformed_shapes_are_refused_by_both_paths() {
        for text in [
            r#"{}"#,
            r#"{"urls":null}"#,
            r#"{"urls":3}"#,
            r#"{"urls":[3]}"#,
            r#"{"urls":"stun:a","username":1}"#,
            r#"["stun:a"]"#,
        ] {
            assert!(serde_json::from_str::<IceServer>(text).is_err(), "{text}");
        }
        assert!(IceServer::from_value(&JsonValue::Array(vec![])).is_err());
        let no_urls = JsonValue::Object(vec![("username".into(), JsonValue::Null)]);
        assert!(IceServer::from_value(&no_urls).is_err());
    }

    #[test]
    fn checks_refuse_what_a_browser_would_throw_on() {
        assert_eq!(IceServer::url("stun:192.0.2.1").check(), Ok(()));
        assert_eq!(IceServer::url("STUNS:192.0.2.1").check(), Ok(()));
        assert_eq!(turn("u").check(), Ok(()));
        assert!(matches!(
            IceServer::url("http://192.0.2.1").check(),
            Err(IceServerError::Scheme(_))
        ));
        assert!(matches!(
            IceServer::url("stun:").check(),
            Err(IceServerError::Scheme(_))
        ));
        assert!(matches!(
            IceServer::url("turn:192.0.2.1").check(),
            Err(IceServerError::TurnWithoutCredentials(_))
        ));
        let none = IceServer::default();
        assert_eq!(none.check(), Err(IceServerError::UrlCount));
        let long = IceServer::url(format!("stun:{}", "a".repeat(MAX_ICE_TEXT_LEN)));
        assert_eq!(long.check(), Err(IceServerError::TooLong));
        let many = vec![IceServer::url("stun:a"); MAX_ICE_SERVERS + 1];
        assert_eq!(check_servers(&many), Err(IceServerError::TooManyServers));
    }

    #[test]
    fn merge_puts_configured_first_drops_duplicates_and_caps() {
        let configured = vec![IceServer::url("stun:a"), turn("x")];
        let tracker = vec![turn("x"), turn("y")];
        let m = IceConfig::merged(&configured, &tracker, true);
        assert_eq!(
            m.servers,
            vec![IceServer::url("stun:a"), turn("x"), turn("y")]
        );
        assert!(m.relay_only());
        let many: Vec<_> = (0..20).map(|i| turn(&i.to_string())).collect();
        let m = IceConfig::merged(&configured, &many, false);
        assert_eq!(m.servers.len(), MAX_ICE_SERVERS);
        assert_eq!(m.servers[0], IceServer::url("stun:a"));
        assert_eq!(m.policy, IcePolicy::All);
    }

    #[test]
    fn value_round_trip() {
        let s = turn("1700000000:abc");
        assert_eq!(IceServer::from_value(&s.to_value()).unwrap(), s);
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<IceServer>(&text).unwrap(), s);
    }
}
