//! Tracker configuration: every abuse limit is a documented field with a
//! safe default.
//!
//! Loaded from a TOML file (`--config FILE`), then overridden by
//! `--set section.field=value` flags (or `PEERHOST_TRACKER_SET`, comma
//! separated). Unknown keys are errors, so a typo never silently leaves a
//! limit at its default. `peerhost tracker --print-config` prints the
//! defaults as TOML.

use std::net::SocketAddr;
use std::time::Duration;

use peerhost_core::ice::IceServer;
use serde::{Deserialize, Serialize};

use crate::ice::{IceOffer, StunConfig, TurnConfig, TurnMinter};

/// The whole tracker configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:8000`.
    pub listen: SocketAddr,
    /// Per-connection and per-IP limits of the WebSocket server.
    pub connection: ConnectionConfig,
    /// Swarm and signalling limits.
    pub swarm: SwarmConfig,
    /// Manifest publishing and push.
    pub manifests: ManifestConfig,
    /// The HTTP side pages.
    pub http: HttpConfig,
    /// STUN/TURN servers handed to every client in announce answers
    /// (`[[ice_servers]]` tables in WebRTC's `RTCIceServer` shape:
    /// `urls`, `username`, `credential`). Default none.
    pub ice_servers: Vec<IceServer>,
    /// TURN with credentials minted per connection (coturn's shared secret).
    pub turn: TurnConfig,
    /// The built-in STUN responder.
    pub stun: StunConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            connection: ConnectionConfig::default(),
            swarm: SwarmConfig::default(),
            manifests: ManifestConfig::default(),
            http: HttpConfig::default(),
            ice_servers: Vec::new(),
            turn: TurnConfig::default(),
            stun: StunConfig::default(),
        }
    }
}

/// Limits on connections: sizes, rates, deadlines, queues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionConfig {
    /// Open TCP connections in all (beyond it new ones are closed at accept).
    pub max_connections: usize,
    /// Open TCP connections from one IP address. 64 leaves room for CGNAT
    /// and offices behind one address while bounding a single host.
    pub max_connections_per_ip: usize,
    /// Largest WebSocket message on `/` and `/announce`, bytes (aquatic_ws: 64 KiB).
    pub max_message_size: usize,
    /// Largest WebSocket frame, bytes; ≤ the message size. Browsers send a
    /// message as one frame, so a smaller cap only refuses large announces;
    /// memory is bounded by the message size either way.
    pub max_frame_size: usize,
    /// Largest message on `/publish`, where manifests are published, bytes.
    pub max_publish_message_size: usize,
    /// Open `/publish` connections in all; beyond it the upgrade is
    /// refused (503). Each may hold a `max_publish_message_size` buffer, so
    /// this bounds that memory apart from the tracker's own connections.
    pub max_publish_connections: usize,
    /// Open `/publish` connections from one IP address (a publisher needs one).
    pub max_publish_connections_per_ip: usize,
    /// Seconds a message on `/publish` may take from its first byte to its
    /// last; a slower one closes the connection. 2 MiB in 30 s is 560 kbit/s.
    pub publish_frame_timeout_secs: u64,
    /// Initial read buffer per connection, bytes: the main per-connection
    /// memory cost; larger messages grow it temporarily.
    pub read_buffer_size: usize,
    /// Messages per second a connection may send, sustained (token bucket).
    pub messages_per_sec: f64,
    /// Burst size of that token bucket.
    pub message_burst: f64,
    /// Messages refused for rate in a row before the connection is closed.
    pub rate_limit_strikes: u32,
    /// Malformed or refused messages in a row before the connection is closed.
    pub protocol_strikes: u32,
    /// Messages queued towards one connection; a full queue closes it (slow consumer).
    pub outbound_queue_len: usize,
    /// Bytes queued towards one connection: a message arriving when this
    /// much waits closes it (a slow reader sent large offers). One message
    /// may cross it, so a manifest push larger than the cap still goes out.
    pub outbound_queue_bytes: usize,
    /// Seconds one outgoing message may take to be written; then the connection is closed.
    pub send_timeout_secs: u64,
    /// Seconds without any message from the client before the connection is closed.
    pub idle_timeout_secs: u64,
    /// Seconds from TCP accept until the HTTP request and upgrade are done.
    pub handshake_timeout_secs: u64,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            max_connections: 16_384,
            max_connections_per_ip: 64,
            max_message_size: 64 * 1024,
            max_frame_size: 64 * 1024,
            max_publish_message_size: 2 * 1024 * 1024,
            max_publish_connections: 64,
            max_publish_connections_per_ip: 4,
            publish_frame_timeout_secs: 30,
            read_buffer_size: 2 * 1024,
            messages_per_sec: 10.0,
            message_burst: 40.0,
            rate_limit_strikes: 20,
            protocol_strikes: 10,
            outbound_queue_len: 64,
            outbound_queue_bytes: 512 * 1024,
            send_timeout_secs: 10,
            idle_timeout_secs: 180,
            handshake_timeout_secs: 10,
        }
    }
}

impl ConnectionConfig {
    /// [`Self::send_timeout_secs`] as a duration.
    pub fn send_timeout(&self) -> Duration {
        Duration::from_secs(self.send_timeout_secs)
    }
    /// [`Self::publish_frame_timeout_secs`] as a duration.
    pub fn publish_frame_timeout(&self) -> Duration {
        Duration::from_secs(self.publish_frame_timeout_secs)
    }
    /// [`Self::idle_timeout_secs`] as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
    /// [`Self::handshake_timeout_secs`] as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout_secs)
    }
}

/// Limits of the swarm logic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwarmConfig {
    /// Announce interval told to clients, seconds (WebTorrent trackers: 120).
    pub announce_interval_secs: u64,
    /// A peer not re-announcing for this long is dropped, seconds (1.5 × interval).
    pub peer_ttl_secs: u64,
    /// An offer may be answered for this long after it was relayed, seconds
    /// (WebTorrent gives up on an offer after 50 s).
    pub offer_ttl_secs: u64,
    /// Offers relayed per announce, to distinct random peers; extra offers
    /// are dropped. Also the cap on `numwant`.
    pub max_offers: usize,
    /// Largest SDP relayed, bytes.
    pub max_sdp_len: usize,
    /// Most `a=candidate` lines in one relayed SDP.
    pub max_sdp_candidates: usize,
    /// Peers in one swarm; announces beyond it are refused.
    pub max_peers_per_swarm: usize,
    /// Peers in one swarm from one address prefix (see `ipv4_prefix_len`,
    /// `ipv6_prefix_len`): swarm ids are public, so without it a few dozen
    /// addresses could fill a swarm and receive every offer (eclipse, T3).
    pub max_peers_per_prefix: usize,
    /// Prefix length grouping IPv4 peers for `max_peers_per_prefix`.
    pub ipv4_prefix_len: u8,
    /// Prefix length grouping IPv6 peers (a /64 is one subscriber's LAN).
    pub ipv6_prefix_len: u8,
    /// The last this many slots of a swarm take only peers from a prefix not
    /// yet in it, so a newcomer network can always join a swarm that
    /// others filled.
    pub newcomer_slots: usize,
    /// Swarms in all; announces creating more are refused.
    pub max_swarms: usize,
    /// Swarms one connection may be a peer of.
    pub max_swarms_per_connection: usize,
    /// Outstanding relayed offers remembered per offering peer; the oldest
    /// is forgotten beyond it.
    pub max_pending_offers_per_peer: usize,
    /// Answer scrapes (never full scrapes).
    pub allow_scrape: bool,
    /// Info-hashes per scrape.
    pub max_scrape_hashes: usize,
    /// How often expired peers and offers are swept, seconds.
    pub cleaning_interval_secs: u64,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig {
            announce_interval_secs: 120,
            peer_ttl_secs: 180,
            offer_ttl_secs: 60,
            max_offers: 10,
            max_sdp_len: 8 * 1024,
            max_sdp_candidates: 16,
            max_peers_per_swarm: 5_000,
            max_peers_per_prefix: 64,
            ipv4_prefix_len: 24,
            ipv6_prefix_len: 64,
            newcomer_slots: 500,
            max_swarms: 100_000,
            max_swarms_per_connection: 16,
            max_pending_offers_per_peer: 64,
            allow_scrape: true,
            max_scrape_hashes: 64,
            cleaning_interval_secs: 30,
        }
    }
}

/// Manifest publishing (`peerhost_publish`) and push (`peerhost_manifest`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ManifestConfig {
    /// Accept publishes and subscriptions at all.
    pub enabled: bool,
    /// Site keys (base64url) allowed to publish; empty allows any signed
    /// manifest. With a list, throwaway keys cannot fill the store at all.
    /// Also accepted as `allowed_site_keys`.
    #[serde(alias = "allowed_site_keys")]
    pub allowed_sites: Vec<String>,
    /// Sites whose manifest the tracker keeps. A new site beyond it (or
    /// beyond `max_total_bytes`) evicts expired manifests, then the least
    /// recently published or subscribed, so a new site can always publish.
    pub max_sites: usize,
    /// Largest signed manifest accepted, bytes.
    pub max_manifest_bytes: usize,
    /// Bytes of all stored manifests together; beyond it, as `max_sites`.
    pub max_total_bytes: usize,
    /// Sites one connection may subscribe to.
    pub max_subscriptions_per_connection: usize,
}

impl Default for ManifestConfig {
    fn default() -> Self {
        ManifestConfig {
            enabled: true,
            allowed_sites: Vec::new(),
            max_sites: 10_000,
            max_manifest_bytes: 1024 * 1024,
            max_total_bytes: 256 * 1024 * 1024,
            max_subscriptions_per_connection: 4,
        }
    }
}

/// The plain HTTP endpoints next to the WebSocket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Serve Prometheus text at `/metrics`.
    pub metrics: bool,
    /// Serve `/stats` (HTML) and `/stats.json`.
    pub stats: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            metrics: true,
            stats: true,
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The TOML is malformed or names an unknown field.
    #[error("config: {0}")]
    Toml(String),
    /// A `--set` override is not `key=value`.
    #[error("override {0:?} is not section.field=value")]
    Override(String),
    /// A value is out of range.
    #[error("config: {0}")]
    Invalid(String),
}

impl Config {
    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let mut c: Config = toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))?;
        c.read_turn_secret()?;
        c.validate()?;
        Ok(c)
    }

    /// Reads `turn.secret_file` into `turn.secret` (when no secret is given
    /// inline).
    fn read_turn_secret(&mut self) -> Result<(), ConfigError> {
        if let (None, Some(path)) = (&self.turn.secret, &self.turn.secret_file) {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.display().to_string(),
                source,
            })?;
            self.turn.secret = Some(text.trim_end_matches(['\r', '\n']).to_owned());
        }
        Ok(())
    }

    /// What the hub hands clients: the static list and, with TURN URLs, a
    /// minter for its secret (checked by [`Config::validate`]).
    pub fn ice_offer(&self) -> IceOffer {
        let turn = match (&self.turn.secret, self.turn.urls.is_empty()) {
            (Some(secret), false) => Some(TurnMinter::new(
                secret.as_bytes(),
                self.turn.urls.clone(),
                self.turn.ttl_secs,
            )),
            _ => None,
        };
        IceOffer::new(self.ice_servers.clone(), turn)
    }

    /// Loads `path` (if any), then applies `overrides` (`section.field=value`,
    /// the value in TOML syntax; bare words are taken as strings).
    pub fn load(
        path: Option<&std::path::Path>,
        overrides: &[String],
    ) -> Result<Config, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.display().to_string(),
                source,
            })?,
            None => String::new(),
        };
        let mut doc: toml::Table =
            toml::from_str(&text).map_err(|e| ConfigError::Toml(e.to_string()))?;
        for o in overrides {
            apply_override(&mut doc, o)?;
        }
        let mut c: Config = doc
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Toml(e.to_string()))?;
        c.read_turn_secret()?;
        c.validate()?;
        Ok(c)
    }

    /// The configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks values that would make the tracker misbehave.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_owned()));
        let c = &self.connection;
        if c.max_frame_size == 0 || c.max_frame_size > c.max_message_size {
            return bad("connection.max_frame_size must be in 1..=max_message_size");
        }
        if c.max_publish_message_size < c.max_message_size {
            return bad("connection.max_publish_message_size must be ≥ max_message_size");
        }
        if c.max_publish_connections_per_ip == 0 || c.publish_frame_timeout_secs == 0 {
            return bad(
                "connection.max_publish_connections_per_ip and publish_frame_timeout_secs must be ≥ 1",
            );
        }
        if !(c.messages_per_sec > 0.0 && c.message_burst >= 1.0) {
            return bad("connection.messages_per_sec must be > 0 and message_burst ≥ 1");
        }
        if c.outbound_queue_len == 0 || c.outbound_queue_bytes == 0 || c.read_buffer_size < 256 {
            return bad(
                "connection.outbound_queue_len ≥ 1, outbound_queue_bytes ≥ 1 and read_buffer_size ≥ 256",
            );
        }
        let s = &self.swarm;
        if s.max_offers == 0 || s.max_peers_per_swarm < 2 || s.cleaning_interval_secs == 0 {
            return bad(
                "swarm.max_offers ≥ 1, max_peers_per_swarm ≥ 2, cleaning_interval_secs ≥ 1",
            );
        }
        if s.max_peers_per_prefix == 0
            || s.ipv4_prefix_len > 32
            || s.ipv6_prefix_len > 128
            || s.newcomer_slots >= s.max_peers_per_swarm
        {
            return bad(
                "swarm.max_peers_per_prefix ≥ 1, ipv4_prefix_len ≤ 32, ipv6_prefix_len ≤ 128, newcomer_slots < max_peers_per_swarm",
            );
        }
        if s.max_scrape_hashes > peerhost_core::signal::MAX_SCRAPE_HASHES {
            return bad("swarm.max_scrape_hashes must be ≤ 255");
        }
        let t = &self.turn;
        if !t.urls.is_empty() {
            if t.secret.as_deref().is_none_or(str::is_empty) {
                return bad("turn.urls needs turn.secret or turn.secret_file");
            }
            if t.ttl_secs == 0 {
                return bad("turn.ttl_secs must be ≥ 1");
            }
            // The minted entry must pass the checks every client applies.
            let minted = IceServer {
                urls: t.urls.clone(),
                username: Some("0:x".into()),
                credential: Some("x".into()),
            };
            if let Err(e) = minted.check() {
                return Err(ConfigError::Invalid(format!("turn.urls: {e}")));
            }
        }
        for server in &self.ice_servers {
            if let Err(e) = server.check() {
                return Err(ConfigError::Invalid(format!("ice_servers: {e}")));
            }
        }
        if self.ice_servers.len() + usize::from(!t.urls.is_empty())
            > peerhost_core::ice::MAX_ICE_SERVERS
        {
            return Err(ConfigError::Invalid(format!(
                "ice_servers: more than {} servers with the minted TURN entry",
                peerhost_core::ice::MAX_ICE_SERVERS
            )));
        }
        for k in &self.manifests.allowed_sites {
            if k.parse::<peerhost_core::manifest::SiteKey>().is_err() {
                return Err(ConfigError::Invalid(format!(
                    "manifests.allowed_sites: {k:?} is not a site key"
                )));
            }
        }
        Ok(())
    }
}

fn apply_override(doc: &mut toml::Table, spec: &str) -> Result<(), ConfigError> {
    let (key, value) = spec
        .split_once('=')
        .ok_or_else(|| ConfigError::Override(spec.to_owned()))?;
    let path: Vec<&str> = key.trim().split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::Override(spec.to_owned()));
    }
    let value = value.trim();
    let parsed: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let (last, parents) = path
        .split_last()
        .ok_or_else(|| ConfigError::Override(spec.to_owned()))?;
    let mut table = doc;
    for p in parents {
        table = table
            .entry((*p).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| ConfigError::Override(spec.to_owned()))?;
    }
    table.insert((*last).to_owned(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_toml() {
        let c = Config::default();
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
        assert_eq!(Config::from_toml("").unwrap(), c);
    }

    #[test]
    fn unknown_fields_are_errors() {
        assert!(Config::from_toml("[connection]\nmax_conections = 3\n").is_err());
        assert!(Config::from_toml("bogus = 1\n").is_err());
    }

    #[test]
    fn overrides_apply() {
        let c = Config::load(
            None,
            &[
                "connection.max_connections_per_ip=3".into(),
                "listen=127.0.0.1:9".into(),
                "swarm.allow_scrape=false".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.connection.max_connections_per_ip, 3);
        assert_eq!(c.listen, "127.0.0.1:9".parse().unwrap());
        assert!(!c.swarm.allow_scrape);
        assert!(Config::load(None, &["nope".into()]).is_err());
        assert!(Config::load(None, &["swarm.nope=1".into()]).is_err());
    }

    #[test]
    fn ice_servers_and_turn_are_checked_and_the_secret_never_printed() {
        let c = Config::from_toml(
            "[[ice_servers]]\nurls = \"stun:192.0.2.1:3478\"\n\n[turn]\nurls = [\"turn:192.0.2.1:3478?transport=udp\"]\nsecret = \"S3CRET\"\nttl = 60\n",
        )
        .unwrap();
        assert_eq!(c.ice_servers, vec![IceServer::url("stun:192.0.2.1:3478")]);
        assert_eq!(c.turn.ttl_secs, 60);
        assert!(!c.to_toml().contains("S3CRET"));
        let list = c.ice_offer().servers_for(
            peerhost_core::time::UnixTime(100),
            crate::outbox::SocketId(3),
        );
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].username.as_deref(), Some("160:peerhost3"));
        // TURN URLs without a secret, a bad scheme, a TURN entry without
        // credentials: refused at start, not in every browser.
        assert!(Config::from_toml("[turn]\nurls = [\"turn:192.0.2.1\"]\n").is_err());
        assert!(Config::from_toml("[[ice_servers]]\nurls = \"http://x\"\n").is_err());
        assert!(Config::from_toml("[[ice_servers]]\nurls = \"turn:x\"\n").is_err());
        assert!(
            Config::from_toml("[turn]\nurls = [\"stun:x\"]\nsecret = \"s\"\nttl_secs = 0\n")
                .is_err()
        );
    }

    #[test]
    fn turn_secret_is_read_from_its_file() {
        let dir = std::env::temp_dir().join(format!("peerhost-turn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "from-file\n").unwrap();
        let c = Config::load(
            None,
            &[
                "turn.urls=[\"turn:192.0.2.1\"]".into(),
                format!("turn.secret_file={:?}", file.display().to_string()),
            ],
        )
        .unwrap();
        assert_eq!(c.turn.secret.as_deref(), Some("from-file"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn invalid_values_are_refused() {
        assert!(Config::from_toml("[connection]\nmax_frame_size = 0\n").is_err());
        assert!(Config::from_toml("[manifests]\nallowed_sites = [\"x\"]\n").is_err());
        assert!(Config::from_toml("[manifests]\nallowed_site_keys = [\"x\"]\n").is_err());
        assert!(Config::from_toml("[manifests]\nallowed_site_keys = []\n").is_ok());
    }
}
