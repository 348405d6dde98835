//! What a run measured: per-node outcomes, the time series, the summary,
//! and their CSV and SVG forms.

use std::fmt::Write as _;

use peerhost_core::time::Instant;
use serde::Serialize;

use crate::role::Role;

/// What one node did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeOutcome {
    /// Arrival to last asset delivered, if it finished.
    pub completion_ms: Option<u64>,
    /// Assets that failed.
    pub failed: u32,
    /// Closed the tab before finishing.
    pub left_early: bool,
    /// Verified bytes from peers.
    pub from_peers: u64,
    /// Verified bytes from the origin.
    pub from_origin: u64,
    /// Bytes uploaded to peers.
    pub uploaded: u64,
    /// Pieces that failed verification.
    pub pieces_rejected: u64,
    /// Peers it banned.
    pub peers_banned: u64,
    /// Its requests to peers that timed out.
    pub request_timeouts: u64,
    /// Pieces it sent to the origin, by why.
    pub origin_reasons: peerhost_core::scheduler::OriginReasons,
    /// Delivered bytes that differ from the published asset.
    pub corrupt_bytes: u64,
    /// For live sites: publication-to-delivery delay of each update.
    pub update_delays_ms: Vec<u64>,
}

/// Per-bucket counters over virtual time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// Bucket width.
    pub bucket_ms: u64,
    /// Bytes the origin sent.
    pub origin: Vec<u64>,
    /// Piece bytes peers sent to peers.
    pub peer: Vec<u64>,
    /// Visitors arriving.
    pub arrivals: Vec<u64>,
    /// Visitors finishing.
    pub completions: Vec<u64>,
    /// Nodes leaving.
    pub departures: Vec<u64>,
}

impl Series {
    /// Empty series covering `max_ms`.
    pub fn new(bucket_ms: u64, max_ms: u64) -> Series {
        let n = (max_ms / bucket_ms + 2) as usize;
        Series {
            bucket_ms,
            origin: vec![0; n],
            peer: vec![0; n],
            arrivals: vec![0; n],
            completions: vec![0; n],
            departures: vec![0; n],
        }
    }

    fn bucket(&self, t: Instant) -> usize {
        ((t.as_millis() / self.bucket_ms) as usize).min(self.origin.len() - 1)
    }

    /// The origin sent `n` bytes, finishing at `t`.
    pub fn origin_bytes(&mut self, t: Instant, n: u64) {
        let b = self.bucket(t);
        self.origin[b] += n;
    }

    /// A piece of `n` bytes arrived from a peer at `t`.
    pub fn peer_bytes(&mut self, t: Instant, n: u64) {
        let b = self.bucket(t);
        self.peer[b] += n;
    }

    /// A visitor arrived.
    pub fn arrived(&mut self, t: Instant) {
        let b = self.bucket(t);
        self.arrivals[b] += 1;
    }

    /// A visitor finished.
    pub fn completed(&mut self, t: Instant) {
        let b = self.bucket(t);
        self.completions[b] += 1;
    }

    /// A node left.
    pub fn left(&mut self, t: Instant) {
        let b = self.bucket(t);
        self.departures[b] += 1;
    }

    /// Buckets up to the last one with anything in it.
    pub fn used_len(&self) -> usize {
        (0..self.origin.len())
            .rev()
            .find(|&b| self.origin[b] + self.peer[b] + self.arrivals[b] + self.completions[b] > 0)
            .map_or(1, |b| b + 2)
            .min(self.origin.len())
    }

    /// Origin bytes per bucket if every visitor fetched one copy of `copy`
    /// bytes from the origin on arrival, served first come first served at
    /// `origin_bytes_per_s` (the run without peer-to-peer, as a fluid model).
    pub fn without_p2p(&self, copy: u64, origin_bytes_per_s: f64) -> Vec<u64> {
        let per_bucket = origin_bytes_per_s * self.bucket_ms as f64 / 1000.0;
        let mut backlog = 0.0f64;
        let mut out = Vec::with_capacity(self.arrivals.len());
        for &a in &self.arrivals {
            backlog += (a * copy) as f64;
            let served = backlog.min(per_bucket);
            backlog -= served;
            out.push(served as u64);
        }
        out
    }
}

/// The headline figures of a run. Everything here follows from the scenario
/// and seed (no wall-clock figures), so two runs can be compared for
/// equality.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Visitors who wanted the site.
    pub visitors: u64,
    /// Returning visitors holding the site at the start.
    pub returning: u64,
    /// Hostile peers.
    pub hostile: u64,
    /// Visitors who got every asset.
    pub completed: u64,
    /// Visitors with at least one failed asset.
    pub failed: u64,
    /// Visitors who left before finishing (churn).
    pub left_early: u64,
    /// Visitors still unfinished when the run stopped.
    pub unfinished: u64,
    /// Bytes of one copy of the site.
    pub copy_bytes: u64,
    /// Bytes the origin served.
    pub origin_bytes: u64,
    /// Origin bytes divided by one copy.
    pub origin_copies: f64,
    /// Verified bytes visitors received from peers.
    pub peer_bytes: u64,
    /// Share of visitors' verified bytes that came from peers, percent.
    pub offload_pct: f64,
    /// Best possible offload from an empty start, `1 - 1/N`, percent
    /// (100 when returning visitors hold the site).
    pub offload_bound_pct: f64,
    /// Completion time (arrival to last asset) percentiles, seconds.
    pub completion_p50_s: f64,
    /// 95th percentile.
    pub completion_p95_s: f64,
    /// 99th percentile.
    pub completion_p99_s: f64,
    /// Slowest visitor.
    pub completion_max_s: f64,
    /// Kumar–Ross minimum distribution time for these visitors all arriving
    /// at once: `max(F/u_s, F/d_min, N·F/(u_s + Σu_i))`, seconds.
    pub kumar_ross_min_s: f64,
    /// Jain's fairness index of visitors' upload bytes (1 = all equal).
    pub upload_fairness_jain: f64,
    /// Share of all honest upload done by the top 1% of uploaders, percent.
    pub upload_top1pct_share_pct: f64,
    /// Share done by the top 10%, percent.
    pub upload_top10pct_share_pct: f64,
    /// Visitors who uploaded anything, percent.
    pub uploaders_pct: f64,
    /// Delivered bytes that differ from the published assets (must be 0).
    pub corrupt_bytes_accepted: u64,
    /// Pieces refused by verification, all nodes.
    pub pieces_rejected: u64,
    /// Peers banned, all nodes.
    pub peers_banned: u64,
    /// Requests to peers that timed out, all nodes.
    pub request_timeouts: u64,
    /// Pieces sent to the origin because a peer request failed.
    pub origin_pieces_peer_failed: u64,
    /// Pieces sent to the origin while a busy peer held them and no peer
    /// delivered anything.
    pub origin_pieces_holder_busy: u64,
    /// Pieces sent to the origin because no connected peer held them.
    pub origin_pieces_no_holder: u64,
    /// Pieces sent to the origin with no peer connected.
    pub origin_pieces_alone: u64,
    /// Live-site updates delivered, and their delay percentiles (seconds).
    pub updates_delivered: u64,
    /// Median publication-to-delivery delay of an update.
    pub update_p50_s: f64,
    /// 95th percentile.
    pub update_p95_s: f64,
    /// Events simulated.
    pub events: u64,
    /// Virtual time simulated, seconds.
    pub virtual_s: f64,
}

/// Inputs of the summary besides the outcomes.
pub struct SummaryInput<'a> {
    /// Scenario name.
    pub scenario: &'a str,
    /// Seed.
    pub seed: u64,
    /// One copy.
    pub copy_bytes: u64,
    /// Origin bytes served.
    pub origin_bytes: u64,
    /// Origin upstream, bytes per second.
    pub origin_bytes_per_s: f64,
    /// Visitors' (upload, download) bytes per second.
    pub visitor_links: Vec<(u64, u64)>,
    /// Events.
    pub events: u64,
    /// Virtual milliseconds.
    pub virtual_ms: u64,
}

/// Builds the summary.
pub fn summarize(input: &SummaryInput<'_>, outcomes: &[(Role, &NodeOutcome)]) -> Summary {
    let visitors: Vec<&NodeOutcome> = outcomes
        .iter()
        .filter(|(r, _)| *r == Role::Visitor)
        .map(|(_, o)| *o)
        .collect();
    let count = |r: Role| outcomes.iter().filter(|(x, _)| *x == r).count() as u64;
    let returning = count(Role::Returning);
    let hostile = outcomes.iter().filter(|(r, _)| r.hostile()).count() as u64;
    let mut done: Vec<u64> = visitors.iter().filter_map(|o| o.completion_ms).collect();
    done.sort_unstable();
    let completed = visitors
        .iter()
        .filter(|o| o.completion_ms.is_some() && o.failed == 0)
        .count() as u64;
    let failed = visitors.iter().filter(|o| o.failed > 0).count() as u64;
    let left_early = visitors.iter().filter(|o| o.left_early).count() as u64;
    let unfinished = visitors
        .iter()
        .filter(|o| o.completion_ms.is_none() && !o.left_early)
        .count() as u64;
    let peer_bytes: u64 = visitors.iter().map(|o| o.from_peers).sum();
    let from_origin: u64 = visitors.iter().map(|o| o.from_origin).sum();
    let received = peer_bytes + from_origin;
    let n = visitors.len() as f64;
    let pct = |q: f64| percentile(&done, q) as f64 / 1000.0;

    // Fairness over visitors' uploads; shares over all honest uploads.
    let mut ups: Vec<u64> = visitors.iter().map(|o| o.uploaded).collect();
    let mut reasons = peerhost_core::scheduler::OriginReasons::default();
    for (_, o) in outcomes {
        reasons.add(&o.origin_reasons);
    }
    let sum: f64 = ups.iter().map(|&u| u as f64).sum();
    let sq: f64 = ups.iter().map(|&u| (u as f64) * (u as f64)).sum();
    let jain = if sq > 0.0 { sum * sum / (n * sq) } else { 0.0 };
    let honest_total: f64 = outcomes
        .iter()
        .filter(|(r, _)| !r.hostile())
        .map(|(_, o)| o.uploaded as f64)
        .sum();
    let mut all_ups: Vec<u64> = outcomes
        .iter()
        .filter(|(r, _)| !r.hostile())
        .map(|(_, o)| o.uploaded)
        .collect();
    all_ups.sort_unstable_by(|a, b| b.cmp(a));
    let top = |frac: f64| {
        let k = ((all_ups.len() as f64 * frac).ceil() as usize).max(1);
        let s: u64 = all_ups.iter().take(k).sum();
        if honest_total > 0.0 {
            100.0 * s as f64 / honest_total
        } else {
            0.0
        }
    };
    ups.retain(|&u| u > 0);

    // Kumar–Ross for the visitors as if all arrived at once, empty start.
    let f = input.copy_bytes as f64;
    let us = input.origin_bytes_per_s;
    let d_min = input
        .visitor_links
        .iter()
        .map(|(_, d)| *d as f64)
        .fold(f64::INFINITY, f64::min);
    let sum_up: f64 = input.visitor_links.iter().map(|(u, _)| *u as f64).sum();
    let kr = (f / us).max(f / d_min).max(n * f / (us + sum_up));

    let mut updates: Vec<u64> = visitors
        .iter()
        .flat_map(|o| o.update_delays_ms.iter().copied())
        .collect();
    updates.sort_unstable();

    Summary {
        scenario: input.scenario.to_owned(),
        seed: input.seed,
        visitors: visitors.len() as u64,
        returning,
        hostile,
        completed,
        failed,
        left_early,
        unfinished,
        copy_bytes: input.copy_bytes,
        origin_bytes: input.origin_bytes,
        origin_copies: round(input.origin_bytes as f64 / f, 4),
        peer_bytes,
        offload_pct: round(pct_of(peer_bytes, received), 3),
        offload_bound_pct: if returning > 0 {
            100.0
        } else {
            round(100.0 * (1.0 - 1.0 / n), 3)
        },
        completion_p50_s: pct(0.50),
        completion_p95_s: pct(0.95),
        completion_p99_s: pct(0.99),
        completion_max_s: done.last().copied().unwrap_or(0) as f64 / 1000.0,
        kumar_ross_min_s: round(kr, 3),
        upload_fairness_jain: round(jain, 4),
        upload_top1pct_share_pct: round(top(0.01), 2),
        upload_top10pct_share_pct: round(top(0.10), 2),
        uploaders_pct: round(pct_of(ups.len() as u64, visitors.len() as u64), 2),
        corrupt_bytes_accepted: outcomes.iter().map(|(_, o)| o.corrupt_bytes).sum(),
        pieces_rejected: outcomes.iter().map(|(_, o)| o.pieces_rejected).sum(),
        peers_banned: outcomes.iter().map(|(_, o)| o.peers_banned).sum(),
        request_timeouts: outcomes.iter().map(|(_, o)| o.request_timeouts).sum(),
        origin_pieces_peer_failed: reasons.peer_failed,
        origin_pieces_holder_busy: reasons.holder_busy,
        origin_pieces_no_holder: reasons.no_holder,
        origin_pieces_alone: reasons.alone,
        updates_delivered: updates.len() as u64,
        update_p50_s: percentile(&updates, 0.5) as f64 / 1000.0,
        update_p95_s: percentile(&updates, 0.95) as f64 / 1000.0,
        events: input.events,
        virtual_s: input.virtual_ms as f64 / 1000.0,
    }
}

fn pct_of(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

fn round(x: f64, places: i32) -> f64 {
    let m = 10f64.powi(places);
    (x * m).round() / m
}

/// Nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The time series as CSV: one row per bucket.
pub fn csv(series: &Series, no_p2p: &[u64]) -> String {
    let mut out = String::from(
        "t_s,origin_bytes_per_s,peer_bytes_per_s,origin_bytes_per_s_without_p2p,arrivals,completions,departures\n",
    );
    let scale = 1000.0 / series.bucket_ms as f64;
    for b in 0..series.used_len() {
        let _ = writeln!(
            out,
            "{:.3},{:.0},{:.0},{:.0},{},{},{}",
            (b as u64 * series.bucket_ms) as f64 / 1000.0,
            series.origin[b] as f64 * scale,
            series.peer[b] as f64 * scale,
            no_p2p.get(b).copied().unwrap_or(0) as f64 * scale,
            series.arrivals[b],
            series.completions[b],
            series.departures[b],
        );
    }
    out
}

/// An SVG line plot of origin and peer bandwidth over time, with the
/// origin's bandwidth without peer-to-peer for comparison.
pub fn svg(title: &str, series: &Series, no_p2p: &[u64]) -> String {
    let (w, h, left, right, top, bottom) = (900.0, 420.0, 80.0, 20.0, 40.0, 50.0);
    let n = series.used_len().max(2);
    let scale = 1000.0 / series.bucket_ms as f64;
    let lines: [(&str, &str, &str, Vec<f64>); 3] = [
        (
            "origin, without P2P (model)",
            "#999999",
            "6 4",
            no_p2p.iter().take(n).map(|&v| v as f64 * scale).collect(),
        ),
        (
            "origin",
            "#d62728",
            "",
            series.origin[..n]
                .iter()
                .map(|&v| v as f64 * scale)
                .collect(),
        ),
        (
            "peers",
            "#1f77b4",
            "",
            series.peer[..n].iter().map(|&v| v as f64 * scale).collect(),
        ),
    ];
    let max = lines
        .iter()
        .flat_map(|l| l.3.iter().copied())
        .fold(1.0f64, f64::max);
    let (ymax, unit, div) = nice_axis(max);
    let x = |b: usize| left + (w - left - right) * b as f64 / (n - 1) as f64;
    let y = |v: f64| top + (h - top - bottom) * (1.0 - v / ymax);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        w / 2.0,
        escape(title)
    );
    for k in 0..=4 {
        let v = ymax * f64::from(k) / 4.0;
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#e0e0e0"/><text x="{2}" y="{3:.1}" text-anchor="end">{4:.1} {unit}</text>"##,
            y(v),
            w - right,
            left - 6.0,
            y(v) + 4.0,
            v / div
        );
    }
    let secs = (n as u64 * series.bucket_ms) as f64 / 1000.0;
    for k in 0..=5 {
        let b = (n - 1) * k / 5;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{:.0} s</text>"#,
            x(b),
            h - bottom + 18.0,
            secs * k as f64 / 5.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">virtual time</text>"#,
        (left + w - right) / 2.0,
        h - 10.0
    );
    for (k, (label, color, dash, values)) in lines.iter().enumerate() {
        let pts: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(b, v)| format!("{:.1},{:.1}", x(b), y(*v)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" stroke-dasharray="{dash}" points="{}"/>"#,
            pts.join(" ")
        );
        let ly = top + 14.0 + 16.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{0}" y1="{ly}" x2="{1}" y2="{ly}" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/><text x="{2}" y="{3}">{label}</text>"#,
            w - right - 230.0,
            w - right - 200.0,
            w - right - 194.0,
            ly + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A round axis maximum and the unit to label it in.
fn nice_axis(max: f64) -> (f64, &'static str, f64) {
    let (unit, div) = if max >= 1e9 {
        ("GB/s", 1e9)
    } else if max >= 1e6 {
        ("MB/s", 1e6)
    } else {
        ("kB/s", 1e3)
    };
    let v = max / div;
    let mag = 10f64.powf(v.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= v)
        .unwrap_or(10.0 * mag);
    (step * div, unit, div)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
