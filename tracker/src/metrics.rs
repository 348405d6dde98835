//! Counters for `/metrics` (Prometheus text format) and `/stats.json`.
//!
//! Lock-free atomics bumped from connection tasks; gauges that live in the
//! swarm state (swarms, peers) are read when the page is rendered.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::Serialize;

macro_rules! labelled {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $label:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Every value, in label order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The Prometheus label value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)*
                }
            }
        }
    };
}

labelled!(
    /// What a client message was, for `messages_total{action=…}`.
    Action {
        /// `announce` without answer.
        Announce => "announce",
        /// `announce` with answer.
        Answer => "answer",
        /// `scrape`.
        Scrape => "scrape",
        /// `peerhost_publish`.
        Publish => "peerhost_publish",
        /// `peerhost_manifest` (subscribe).
        Subscribe => "peerhost_manifest",
        /// An action we do not know.
        Unknown => "unknown",
        /// Not a parseable message.
        Malformed => "malformed",
    }
);

labelled!(
    /// Why something was refused or closed, for `rejects_total{reason=…}`.
    Reason {
        /// Connection refused: total connection cap.
        ConnectionsTotal => "connections_total",
        /// Connection refused: per-IP connection cap.
        ConnectionsPerIp => "connections_per_ip",
        /// `/publish` upgrade refused: total `/publish` connection cap.
        PublishConnectionsTotal => "publish_connections_total",
        /// `/publish` upgrade refused: per-IP `/publish` connection cap.
        PublishConnectionsPerIp => "publish_connections_per_ip",
        /// Connection closed: a `/publish` message not complete within the frame deadline.
        FrameTimeout => "frame_timeout",
        /// Connection closed: HTTP request/upgrade not done within the deadline.
        HandshakeTimeout => "handshake_timeout",
        /// Connection closed: message or frame over the size limit.
        MessageTooLarge => "message_too_large",
        /// Connection closed: binary frame.
        BinaryFrame => "binary_frame",
        /// Connection closed: WebSocket protocol error or reset.
        WebSocketError => "websocket_error",
        /// Message refused: not valid JSON or missing fields.
        Malformed => "malformed",
        /// Message refused: unknown action.
        UnknownAction => "unknown_action",
        /// Message refused: token bucket empty.
        RateLimited => "rate_limited",
        /// Connection closed: too many refused messages in a row.
        TooManyStrikes => "too_many_strikes",
        /// Connection closed: outbound queue full.
        SlowConsumer => "slow_consumer",
        /// Connection closed: outbound queue over its byte cap.
        OutboundBytes => "outbound_bytes",
        /// Connection closed: a send took longer than the send timeout.
        SendTimeout => "send_timeout",
        /// Connection closed: nothing received within the idle timeout.
        Idle => "idle",
        /// Announce refused: peer id bound to another connection.
        PeerIdTaken => "peer_id_taken",
        /// Announce refused: second peer id in one swarm on one connection.
        OnePeerIdPerSwarm => "one_peer_id_per_swarm",
        /// Announce refused: connection in too many swarms.
        SwarmsPerConnection => "swarms_per_connection",
        /// Announce refused: swarm full.
        SwarmFull => "swarm_full",
        /// Announce refused: too many peers from that address prefix in the swarm.
        SwarmPrefixFull => "swarm_prefix_full",
        /// Announce refused: the swarm's last slots are for prefixes not in it yet.
        SwarmReserved => "swarm_reserved",
        /// Announce refused: too many swarms.
        TooManySwarms => "too_many_swarms",
        /// Answer refused: answerer not in the swarm.
        NotInSwarm => "not_in_swarm",
        /// Answer dropped: no outstanding offer.
        UnsolicitedAnswer => "unsolicited_answer",
        /// Offer or answer refused: SDP shape.
        BadSdp => "bad_sdp",
        /// Offers beyond `max_offers` dropped (counted per offer).
        OffersDropped => "offers_dropped",
        /// Scrape refused: full scrape.
        FullScrape => "full_scrape",
        /// Scrape refused: too many hashes.
        ScrapeHashes => "scrape_hashes",
        /// Scrape refused: scrapes disabled.
        ScrapeDisabled => "scrape_disabled",
        /// Publish/subscribe refused: manifests disabled.
        ManifestsDisabled => "manifests_disabled",
        /// Publish refused: bad encoding, signature or validity window.
        ManifestInvalid => "manifest_invalid",
        /// Publish refused: version not higher than the current one.
        ManifestRollback => "manifest_rollback",
        /// Publish refused: site not in the allow-list.
        ManifestNotAllowed => "manifest_not_allowed",
        /// Publish refused: manifest or store too large, too many sites.
        ManifestStoreFull => "manifest_store_full",
        /// Subscribe refused: too many subscriptions on this connection.
        Subscriptions => "subscriptions",
    }
);

/// All counters of one tracker.
#[derive(Debug)]
pub struct Metrics {
    connections_open: AtomicU64,
    connections_accepted: AtomicU64,
    messages: Vec<AtomicU64>,
    rejects: Vec<AtomicU64>,
    announce_responses: AtomicU64,
    offers_relayed: AtomicU64,
    answers_relayed: AtomicU64,
    manifest_pushes: AtomicU64,
    manifests_published: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    messages_out: AtomicU64,
    stun_answered: AtomicU64,
    stun_ignored: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            connections_open: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            messages: Action::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            rejects: Reason::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            announce_responses: AtomicU64::new(0),
            offers_relayed: AtomicU64::new(0),
            answers_relayed: AtomicU64::new(0),
            manifest_pushes: AtomicU64::new(0),
            manifests_published: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            messages_out: AtomicU64::new(0),
            stun_answered: AtomicU64::new(0),
            stun_ignored: AtomicU64::new(0),
        }
    }
}

/// Gauges owned by other parts of the tracker, passed in at render time.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Gauges {
    /// Swarms.
    pub swarms: usize,
    /// Peers over all swarms.
    pub peers: usize,
    /// Sites with a stored manifest.
    pub sites: usize,
    /// Manifest subscriptions.
    pub subscriptions: usize,
    /// Resident set size of the process, bytes (0 if unknown).
    pub rss_bytes: u64,
}

/// A point-in-time copy for `/stats.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Open connections.
    pub connections: u64,
    /// Connections accepted since start.
    pub connections_accepted: u64,
    /// Gauges.
    #[serde(flatten)]
    pub gauges: Gauges,
    /// Client messages since start, all actions.
    pub messages_in: u64,
    /// Messages sent since start.
    pub messages_out: u64,
    /// Announce responses sent.
    pub announce_responses: u64,
    /// Offers relayed.
    pub offers_relayed: u64,
    /// Answers relayed.
    pub answers_relayed: u64,
    /// Refusals and closes, all reasons.
    pub rejects: u64,
    /// Bytes received in WebSocket messages.
    pub bytes_in: u64,
    /// Bytes sent in WebSocket messages.
    pub bytes_out: u64,
}

impl Metrics {
    /// A connection was accepted and is now open.
    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Relaxed);
        self.connections_accepted.fetch_add(1, Relaxed);
    }
    /// An open connection closed.
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Relaxed);
    }
    /// Open connections.
    pub fn connections_open(&self) -> u64 {
        self.connections_open.load(Relaxed)
    }
    /// A client message of `action`, `bytes` long, arrived.
    pub fn message_in(&self, action: Action, bytes: usize) {
        self.messages[action as usize].fetch_add(1, Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Relaxed);
    }
    /// Bytes that arrived outside a counted message.
    pub fn bytes_in(&self, bytes: usize) {
        self.bytes_in.fetch_add(bytes as u64, Relaxed);
    }
    /// A message of `bytes` was written to a client.
    pub fn message_out(&self, bytes: usize) {
        self.messages_out.fetch_add(1, Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Relaxed);
    }
    /// Something was refused or closed for `reason`.
    pub fn reject(&self, reason: Reason) {
        self.reject_n(reason, 1);
    }
    /// `n` things were refused for `reason`.
    pub fn reject_n(&self, reason: Reason, n: u64) {
        self.rejects[reason as usize].fetch_add(n, Relaxed);
    }
    /// Count of refusals for `reason`.
    pub fn rejects(&self, reason: Reason) -> u64 {
        self.rejects[reason as usize].load(Relaxed)
    }
    /// An announce response was queued.
    pub fn announce_response(&self) {
        self.announce_responses.fetch_add(1, Relaxed);
    }
    /// `n` offers were relayed.
    pub fn offers_relayed(&self, n: usize) {
        self.offers_relayed.fetch_add(n as u64, Relaxed);
    }
    /// An answer was relayed.
    pub fn answer_relayed(&self) {
        self.answers_relayed.fetch_add(1, Relaxed);
    }
    /// A manifest was accepted.
    pub fn manifest_published(&self) {
        self.manifests_published.fetch_add(1, Relaxed);
    }
    /// `n` manifest pushes were queued.
    pub fn manifest_pushes(&self, n: usize) {
        self.manifest_pushes.fetch_add(n as u64, Relaxed);
    }

    /// A STUN Binding request was answered.
    pub fn stun_answered(&self) {
        self.stun_answered.fetch_add(1, Relaxed);
    }
    /// A datagram on the STUN port was not a Binding request and was dropped.
    pub fn stun_ignored(&self) {
        self.stun_ignored.fetch_add(1, Relaxed);
    }
    /// STUN Binding requests answered since start.
    pub fn stun_answered_count(&self) -> u64 {
        self.stun_answered.load(Relaxed)
    }
    /// Datagrams on the STUN port dropped since start.
    pub fn stun_ignored_count(&self) -> u64 {
        self.stun_ignored.load(Relaxed)
    }

    /// A copy of the headline figures.
    pub fn snapshot(&self, gauges: Gauges) -> Snapshot {
        Snapshot {
            connections: self.connections_open.load(Relaxed),
            connections_accepted: self.connections_accepted.load(Relaxed),
            gauges,
            messages_in: self.messages.iter().map(|m| m.load(Relaxed)).sum(),
            messages_out: self.messages_out.load(Relaxed),
            announce_responses: self.announce_responses.load(Relaxed),
            offers_relayed: self.offers_relayed.load(Relaxed),
            answers_relayed: self.answers_relayed.load(Relaxed),
            rejects: self.rejects.iter().map(|m| m.load(Relaxed)).sum(),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
        }
    }

    /// Prometheus text exposition format, version 0.0.4.
    pub fn render(&self, g: Gauges) -> String {
        let mut s = String::with_capacity(4096);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                s,
                "# HELP peerhost_tracker_{name} {help}\n# TYPE peerhost_tracker_{name} {kind}\npeerhost_tracker_{name} {value}"
            );
        };
        metric(
            "connections",
            "gauge",
            "Open WebSocket connections.",
            self.connections_open.load(Relaxed),
        );
        metric(
            "connections_accepted_total",
            "counter",
            "Connections accepted.",
            self.connections_accepted.load(Relaxed),
        );
        metric(
            "swarms",
            "gauge",
            "Swarms with at least one peer.",
            g.swarms as u64,
        );
        metric("peers", "gauge", "Peers over all swarms.", g.peers as u64);
        metric(
            "manifest_sites",
            "gauge",
            "Sites with a stored manifest.",
            g.sites as u64,
        );
        metric(
            "manifest_subscriptions",
            "gauge",
            "Manifest subscriptions.",
            g.subscriptions as u64,
        );
        metric(
            "announce_responses_total",
            "counter",
            "Announce responses sent.",
            self.announce_responses.load(Relaxed),
        );
        metric(
            "offers_relayed_total",
            "counter",
            "Offers relayed to peers.",
            self.offers_relayed.load(Relaxed),
        );
        metric(
            "answers_relayed_total",
            "counter",
            "Answers relayed to offerers.",
            self.answers_relayed.load(Relaxed),
        );
        metric(
            "manifests_published_total",
            "counter",
            "Manifests accepted from publishers.",
            self.manifests_published.load(Relaxed),
        );
        metric(
            "manifest_pushes_total",
            "counter",
            "Manifest pushes queued to subscribers.",
            self.manifest_pushes.load(Relaxed),
        );
        metric(
            "stun_answered_total",
            "counter",
            "STUN Binding requests answered.",
            self.stun_answered.load(Relaxed),
        );
        metric(
            "stun_ignored_total",
            "counter",
            "Datagrams on the STUN port dropped (not a Binding request).",
            self.stun_ignored.load(Relaxed),
        );
        metric(
            "messages_out_total",
            "counter",
            "Messages written to clients.",
            self.messages_out.load(Relaxed),
        );
        metric(
            "bytes_in_total",
            "counter",
            "Bytes received in WebSocket messages.",
            self.bytes_in.load(Relaxed),
        );
        metric(
            "bytes_out_total",
            "counter",
            "Bytes sent in WebSocket messages.",
            self.bytes_out.load(Relaxed),
        );
        metric(
            "resident_memory_bytes",
            "gauge",
            "Resident set size of the tracker process.",
            g.rss_bytes,
        );
        let _ = writeln!(
            s,
            "# HELP peerhost_tracker_messages_total Client messages by action.\n# TYPE peerhost_tracker_messages_total counter"
        );
        for a in Action::ALL {
            let _ = writeln!(
                s,
                "peerhost_tracker_messages_total{{action=\"{}\"}} {}",
                a.as_str(),
                self.messages[*a as usize].load(Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP peerhost_tracker_rejects_total Refused messages and closed connections by reason.\n# TYPE peerhost_tracker_rejects_total counter"
        );
        for r in Reason::ALL {
            let _ = writeln!(
                s,
                "peerhost_tracker_rejects_total{{reason=\"{}\"}} {}",
                r.as_str(),
                self.rejects[*r as usize].load(Relaxed)
            );
        }
        s
    }
}

/// Resident set size of this process in bytes, from `/proc/self/statm`.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_every_label() {
        let m = Metrics::default();
        m.reject(Reason::Idle);
        m.message_in(Action::Answer, 10);
        let text = m.render(Gauges::default());
        assert!(text.contains("peerhost_tracker_rejects_total{reason=\"idle\"} 1"));
        assert!(text.contains("peerhost_tracker_messages_total{action=\"answer\"} 1"));
        assert!(text.contains("peerhost_tracker_bytes_in_total 10"));
        for r in Reason::ALL {
            assert!(text.contains(r.as_str()));
        }
    }
}
