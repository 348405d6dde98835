//! The ICE servers a tracker hands its clients in announce answers: a
//! static list from the configuration, plus TURN credentials minted per
//! connection with coturn's REST shared-secret scheme
//! (draft-uberti-behave-turn-rest, coturn's `use-auth-secret`):
//!
//! - username = `EXPIRY:ID`, `EXPIRY` the Unix second the credential stops
//!   working, `ID` an opaque per-connection id (never the client's address);
//! - credential = base64(HMAC-SHA1(secret, username)).
//!
//! coturn, given the same `static-auth-secret`, recomputes the credential
//! from the username and refuses it after `EXPIRY`; the tracker and the
//! TURN server share nothing else. Time is a parameter: [`IceOffer`] is
//! pure, like the hub that owns it.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use peerhost_core::ice::IceServer;
use peerhost_core::time::UnixTime;
use serde::{Deserialize, Serialize};
use sha1::Sha1;

use crate::outbox::SocketId;

/// Default [`TurnConfig::ttl_secs`]: one hour, coturn's documented example.
pub const DEFAULT_TURN_TTL_SECS: u64 = 3600;

/// The `[turn]` section: TURN through coturn's shared secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnConfig {
    /// TURN URLs handed out with minted credentials, e.g.
    /// `turn:203.0.113.1:3478?transport=udp`. Empty (the default) mints
    /// nothing.
    pub urls: Vec<String>,
    /// coturn's `static-auth-secret`. Never printed by `--print-config`;
    /// prefer `secret_file`.
    #[serde(skip_serializing)]
    pub secret: Option<String>,
    /// A file holding the secret (trailing newline ignored); read at start.
    pub secret_file: Option<PathBuf>,
    /// How long a minted credential works, seconds (also accepted as `ttl`).
    /// Default [`DEFAULT_TURN_TTL_SECS`].
    #[serde(alias = "ttl")]
    pub ttl_secs: u64,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            urls: Vec::new(),
            secret: None,
            secret_file: None,
            ttl_secs: DEFAULT_TURN_TTL_SECS,
        }
    }
}

/// The `[stun]` section: the built-in STUN Binding responder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StunConfig {
    /// UDP address to answer STUN Binding requests on (`--stun ADDR`).
    /// Default none: off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<std::net::SocketAddr>,
}

/// `base64(HMAC-SHA1(secret, username))`: the TURN password coturn expects
/// for `username` under `use-auth-secret`.
pub fn turn_credential(secret: &[u8], username: &str) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(username.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Mints TURN credentials for one shared secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnMinter {
    secret: Vec<u8>,
    urls: Vec<String>,
    ttl_secs: u64,
}

impl std::fmt::Debug for TurnMinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnMinter")
            .field("urls", &self.urls)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl TurnMinter {
    /// A minter for `urls` with `secret`, credentials valid `ttl_secs`.
    pub fn new(secret: impl Into<Vec<u8>>, urls: Vec<String>, ttl_secs: u64) -> Self {
        TurnMinter {
            secret: secret.into(),
            urls,
            ttl_secs,
        }
    }

    /// The server entry for connection `id` at `now`: username
    /// `EXPIRY:ID`, credential its HMAC.
    pub fn mint(&self, now: UnixTime, id: &str) -> IceServer {
        let username = format!("{}:{id}", now.0.saturating_add(self.ttl_secs));
        let credential = turn_credential(&self.secret, &username);
        IceServer {
            urls: self.urls.clone(),
            username: Some(username),
            credential: Some(credential),
        }
    }
}

/// What the tracker offers each client: static servers, then a minted
/// TURN entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceOffer {
    servers: Vec<IceServer>,
    turn: Option<TurnMinter>,
}

impl IceOffer {
    /// Static `servers` and an optional minter.
    pub fn new(servers: Vec<IceServer>, turn: Option<TurnMinter>) -> Self {
        IceOffer { servers, turn }
    }

    /// The list for one announce answer to `socket` at `now`. The id in a
    /// minted username is the socket's number: opaque, and the same for
    /// every answer on one connection, so a TURN server's logs can be
    /// matched to the tracker's without either holding addresses.
    pub fn servers_for(&self, now: UnixTime, socket: SocketId) -> Vec<IceServer> {
        let mut out = self.servers.clone();
        if let Some(t) = &self.turn {
            out.push(t.mint(now, &format!("peerhost{}", socket.0)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checked against an independent implementation: `printf
    /// 1700000000:alice | openssl dgst -sha1 -hmac S -binary | base64`.
    #[test]
    fn credential_is_base64_hmac_sha1_of_the_username() {
        assert_eq!(
            turn_credential(b"S", "1700000000:alice"),
            "/ji27vSDO/vhBF771oz7Ik6/ULo="
        );
    }

    #[test]
    fn minted_username_carries_expiry_and_socket_not_address() {
        let offer = IceOffer::new(
            vec![IceServer::url("stun:192.0.2.1:3478")],
            Some(TurnMinter::new(
                "S",
                vec!["turn:192.0.2.1:3478?transport=udp".into()],
                600,
            )),
        );
        let list = offer.servers_for(UnixTime(1_000), SocketId(42));
        assert_eq!(list[0], IceServer::url("stun:192.0.2.1:3478"));
        let t = &list[1];
        assert_eq!(t.username.as_deref(), Some("1600:peerhost42"));
        assert_eq!(
            t.credential.as_deref(),
            Some(turn_credential(b"S", "1600:peerhost42").as_str())
        );
        assert_eq!(t.check(), Ok(()));
        let later = offer.servers_for(UnixTime(2_000), SocketId(42));
        assert_eq!(later[1].username.as_deref(), Some("2600:peerhost42"));
    }

    #[test]
    fn no_configuration_offers_nothing() {
        assert!(
            IceOffer::default()
                .servers_for(UnixTime(1), SocketId(1))
                .is_empty()
        );
    }
}
