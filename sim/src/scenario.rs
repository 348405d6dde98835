//! Scenarios as data: a TOML file names the site, the crowd, the network,
//! the origin, churn and hostile peers. Every table is optional except
//! `site` and `peers`; every field has a documented default; unknown fields
//! are errors, so a typo never silently runs a different experiment.
//!
//! The built-in scenarios live in `sim/scenarios/*.toml` and are embedded
//! in the binary, so `peerhost sim flash-crowd-1k` works from any directory;
//! a path to a `.toml` file runs that file instead.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Why a scenario could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// Neither a built-in name nor a readable file.
    #[error("no scenario named {name:?} (built in: {known}), and no such file")]
    Unknown {
        /// What was asked for.
        name: String,
        /// The built-in names, comma-separated.
        known: String,
    },
    /// The file could not be read.
    #[error("cannot read scenario file {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// Not valid TOML, a wrong type or an unknown field.
    #[error("scenario {source_name}: {message}")]
    Parse {
        /// The file or built-in name.
        source_name: String,
        /// The parser's message, on one line.
        message: String,
    },
    /// Well-formed but meaningless (a negative share, zero peers...).
    #[error("scenario {source_name}: {field}: {why}")]
    Invalid {
        /// The file or built-in name.
        source_name: String,
        /// The offending field, as a TOML path.
        field: String,
        /// What is wrong with it.
        why: String,
    },
}

/// The built-in scenarios: (name, TOML text).
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "flash-crowd-1k",
        include_str!("../scenarios/flash-crowd-1k.toml"),
    ),
    (
        "flash-crowd-100k",
        include_str!("../scenarios/flash-crowd-100k.toml"),
    ),
    (
        "sports-ticker",
        include_str!("../scenarios/sports-ticker.toml"),
    ),
    ("origin-down", include_str!("../scenarios/origin-down.toml")),
    (
        "hostile-10pct",
        include_str!("../scenarios/hostile-10pct.toml"),
    ),
    ("churn-heavy", include_str!("../scenarios/churn-heavy.toml")),
];

/// One experiment.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, used for the output directory.
    pub name: String,
    /// One or two sentences on what it shows.
    #[serde(default)]
    pub description: String,
    /// Virtual time after which the run stops even if peers are unfinished.
    #[serde(default = "default_max_secs")]
    pub max_secs: f64,
    /// Width of one time-series bucket (CSV rows, plot resolution).
    #[serde(default = "default_bucket_ms")]
    pub bucket_ms: u64,
    /// The site.
    pub site: SiteSpec,
    /// The crowd.
    pub peers: PeersSpec,
    /// Links between peers.
    #[serde(default)]
    pub network: NetworkSpec,
    /// The site's origin server.
    #[serde(default)]
    pub origin: OriginSpec,
    /// The signalling tracker.
    #[serde(default)]
    pub tracker: TrackerSpec,
    /// Peers that leave before they finish.
    #[serde(default)]
    pub churn: ChurnSpec,
    /// Peers that lie.
    #[serde(default)]
    pub hostile: HostileSpec,
    /// Client tuning that differs from the browser defaults.
    #[serde(default)]
    pub client: ClientSpec,
    /// New manifest versions published during the run.
    #[serde(default)]
    pub updates: UpdatesSpec,
}

fn default_max_secs() -> f64 {
    600.0
}
fn default_bucket_ms() -> u64 {
    1000
}

/// The site: `files` assets sharing `total_bytes`, random content.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSpec {
    /// Number of assets (e.g. images); each visitor wants all of them.
    pub files: u32,
    /// Bytes of all assets together (one copy of the site).
    pub total_bytes: u64,
}

/// How visitors arrive.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "kebab-case")]
pub enum Arrival {
    /// Everyone at t = 0 (the Kumar–Ross setting).
    Burst,
    /// Uniformly spread over the first `over_secs` seconds.
    Flash {
        /// Length of the arrival window.
        over_secs: f64,
    },
    /// A Poisson stream of `per_sec` arrivals per second.
    Steady {
        /// Mean arrivals per second.
        per_sec: f64,
    },
}

/// The crowd.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PeersSpec {
    /// Visitors who want the whole site (hostile peers come on top).
    pub count: u32,
    /// Returning visitors who hold the whole site from an earlier visit and
    /// are online from t = 0 (also on top of `count`).
    #[serde(default)]
    pub returning: u32,
    /// Arrival curve.
    #[serde(default = "default_arrival")]
    pub arrival: Arrival,
    /// After finishing, a visitor stays on the page (and seeds) for a time
    /// drawn uniformly from this range, in seconds.
    #[serde(default = "default_stay")]
    pub stay_secs: [f64; 2],
}

fn default_arrival() -> Arrival {
    Arrival::Burst
}
fn default_stay() -> [f64; 2] {
    [60.0, 600.0]
}

/// One class of residential access link.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Label, for the report.
    pub name: String,
    /// Relative share of peers on this tier.
    pub share: f64,
    /// Downstream, megabits per second.
    pub down_mbps: f64,
    /// Upstream, megabits per second.
    pub up_mbps: f64,
}

/// The network between peers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// One-way access latency of each peer, drawn uniformly from this range
    /// (milliseconds); a link's latency is the sum of both ends'.
    pub latency_ms: [u64; 2],
    /// Probability that a message is lost once and retransmitted (the data
    /// channel is reliable and ordered: a loss delays it and everything
    /// behind it on that channel by one retransmission timeout).
    pub loss: f64,
    /// Probability that a WebRTC connection never opens (NAT without TURN);
    /// both ends learn it from an ICE failure 10 s later.
    pub nat_failure: f64,
    /// Access-link mix.
    pub mix: Vec<Tier>,
}

impl Default for NetworkSpec {
    /// A residential mix (shares and speeds in the range of published
    /// national broadband statistics: DSL, cable, fibre, mobile).
    fn default() -> Self {
        let tier = |name: &str, share, down_mbps, up_mbps| Tier {
            name: name.into(),
            share,
            down_mbps,
            up_mbps,
        };
        NetworkSpec {
            latency_ms: [5, 40],
            loss: 0.005,
            nat_failure: 0.1,
            mix: vec![
                tier("dsl", 0.2, 16.0, 1.0),
                tier("cable", 0.4, 100.0, 10.0),
                tier("fibre", 0.25, 300.0, 100.0),
                tier("mobile", 0.15, 30.0, 5.0),
            ],
        }
    }
}

/// The origin server.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OriginSpec {
    /// Upstream capacity shared by all requests (first come, first served).
    pub up_mbps: f64,
    /// One-way latency to every peer.
    pub latency_ms: u64,
    /// From this time on every request fails (`503`).
    pub down_from_secs: Option<f64>,
}

impl Default for OriginSpec {
    fn default() -> Self {
        OriginSpec {
            up_mbps: 100.0,
            latency_ms: 40,
            down_from_secs: None,
        }
    }
}

/// The tracker model (the rules of `tracker/src/swarm.rs`: a swarm per
/// site version; each offer goes to a distinct random other peer; answers
/// go back to the offerer).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrackerSpec {
    /// One-way latency between any peer and the tracker.
    pub latency_ms: u64,
}

impl Default for TrackerSpec {
    fn default() -> Self {
        TrackerSpec { latency_ms: 20 }
    }
}

/// Visitors who close the tab before their download finishes.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnSpec {
    /// Fraction of visitors who leave early.
    pub fraction: f64,
    /// They leave this long after arriving (uniform, seconds), if not done.
    pub after_secs: [f64; 2],
}

/// Peers that lie, on top of the visitors; the weights split them by kind.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HostileSpec {
    /// Hostile peers as a fraction of `peers.count`.
    pub fraction: f64,
    /// Weight of peers that hold the site and flip a byte in every piece
    /// they send.
    pub corrupt: f64,
    /// Weight of peers that claim every piece in their handshake and then
    /// never send anything.
    pub silent: f64,
    /// Weight of peers that offer an old, validly signed manifest as if it
    /// were newer.
    pub replay: f64,
}

/// Client tuning for this scenario (unset fields keep the browser defaults).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// Most peer connections per client.
    pub max_peers: Option<usize>,
    /// Upload rate cap of a visitor, bytes per second (default 1 MiB/s).
    pub upload_bytes_per_sec: Option<u64>,
}

/// A live site: the publisher pushes new versions through the tracker.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpdatesSpec {
    /// Versions published after the first (0: a static site).
    pub count: u32,
    /// Seconds between two versions.
    pub every_secs: f64,
    /// Bytes of the first asset rewritten in each version; the other assets
    /// keep their pieces, which clients reuse.
    pub changed_bytes: u64,
}

impl Scenario {
    /// Loads a built-in scenario by name, or a TOML file by path.
    pub fn load(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        if let Some((name, text)) = BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            return Scenario::from_toml(text, name);
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            return Err(ScenarioError::Unknown {
                name: name_or_path.to_owned(),
                known: BUILT_IN
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Read {
            path: name_or_path.to_owned(),
            reason: e.to_string(),
        })?;
        Scenario::from_toml(&text, name_or_path)
    }

    /// Parses and checks a scenario; `source_name` names it in errors.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            source_name: source_name.to_owned(),
            message: one_line(&e.to_string()),
        })?;
        s.check().map_err(|(field, why)| ScenarioError::Invalid {
            source_name: source_name.to_owned(),
            field: field.to_owned(),
            why,
        })?;
        Ok(s)
    }

    fn check(&self) -> Result<(), (&'static str, String)> {
        fn fraction(field: &'static str, v: f64) -> Result<(), (&'static str, String)> {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err((field, format!("{v} is not a fraction between 0 and 1")))
            }
        }
        fn positive(field: &'static str, v: f64) -> Result<(), (&'static str, String)> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err((field, format!("{v} must be a positive number")))
            }
        }
        fn range(field: &'static str, r: [f64; 2]) -> Result<(), (&'static str, String)> {
            if r[0].is_finite() && r[1].is_finite() && 0.0 <= r[0] && r[0] <= r[1] {
                Ok(())
            } else {
                Err((
                    field,
                    format!("{r:?} must be [low, high] with 0 <= low <= high"),
                ))
            }
        }
        if self.name.is_empty() {
            return Err(("name", "must not be empty".into()));
        }
        positive("max_secs", self.max_secs)?;
        if self.bucket_ms == 0 {
            return Err(("bucket_ms", "must be at least 1".into()));
        }
        if self.site.files == 0 || self.site.files > 1000 {
            return Err(("site.files", "must be between 1 and 1000".into()));
        }
        if self.site.total_bytes < u64::from(self.site.files)
            || self.site.total_bytes > 64 * 1024 * 1024
        {
            return Err((
                "site.total_bytes",
                "must be at least one byte per file and at most 64 MiB".into(),
            ));
        }
        if self.peers.count == 0 || self.peers.count > 1_000_000 {
            return Err(("peers.count", "must be between 1 and 1000000".into()));
        }
        match self.peers.arrival {
            Arrival::Burst => {}
            Arrival::Flash { over_secs } => positive("peers.arrival.over_secs", over_secs)?,
            Arrival::Steady { per_sec } => positive("peers.arrival.per_sec", per_sec)?,
        }
        range("peers.stay_secs", self.peers.stay_secs)?;
        let n = &self.network;
        if n.latency_ms[0] > n.latency_ms[1] {
            return Err(("network.latency_ms", "must be [low, high]".into()));
        }
        fraction("network.loss", n.loss)?;
        fraction("network.nat_failure", n.nat_failure)?;
        if n.mix.is_empty() {
            return Err(("network.mix", "needs at least one tier".into()));
        }
        for t in &n.mix {
            if !(t.share.is_finite() && t.share >= 0.0) {
                return Err(("network.mix.share", format!("{}: must be >= 0", t.name)));
            }
            positive("network.mix.down_mbps", t.down_mbps)?;
            positive("network.mix.up_mbps", t.up_mbps)?;
        }
        if n.mix.iter().map(|t| t.share).sum::<f64>() <= 0.0 {
            return Err(("network.mix", "shares must not all be zero".into()));
        }
        positive("origin.up_mbps", self.origin.up_mbps)?;
        if let Some(d) = self.origin.down_from_secs
            && !(d.is_finite() && d >= 0.0)
        {
            return Err(("origin.down_from_secs", "must be >= 0".into()));
        }
        fraction("churn.fraction", self.churn.fraction)?;
        range("churn.after_secs", self.churn.after_secs)?;
        let h = &self.hostile;
        fraction("hostile.fraction", h.fraction)?;
        for (f, w) in [
            ("hostile.corrupt", h.corrupt),
            ("hostile.silent", h.silent),
            ("hostile.replay", h.replay),
        ] {
            if !(w.is_finite() && w >= 0.0) {
                return Err((f, format!("{w} must be >= 0")));
            }
        }
        if h.fraction > 0.0 && h.corrupt + h.silent + h.replay <= 0.0 {
            return Err(("hostile", "fraction > 0 needs a positive weight".into()));
        }
        if self.client.max_peers == Some(0) {
            return Err(("client.max_peers", "must be at least 1".into()));
        }
        if self.client.upload_bytes_per_sec == Some(0) {
            return Err(("client.upload_bytes_per_sec", "must be at least 1".into()));
        }
        if self.updates.count > 0 {
            positive("updates.every_secs", self.updates.every_secs)?;
            if self.updates.changed_bytes == 0 {
                return Err(("updates.changed_bytes", "must be at least 1".into()));
            }
        }
        Ok(())
    }

    /// The same scenario without hostile peers (the baseline a hostile run
    /// is compared with).
    pub fn clean_twin(&self) -> Scenario {
        let mut s = self.clone();
        s.hostile = HostileSpec::default();
        s.name = format!("{}-clean", self.name);
        s
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
