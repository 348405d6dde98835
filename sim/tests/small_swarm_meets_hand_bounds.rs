//! A small burst scenario, run for real: the same seed gives the same
//! figures, and the figures respect bounds computed by hand.

use peerhost_sim::scenario::Scenario;

/// 40 visitors arrive at once for one 240 KB file (15 pieces); nobody
/// holds it; a 16 Mbit/s origin; no loss, no NAT failures; uploads not
/// capped below the link, so the Kumar–Ross terms use the link speeds.
const SMALL: &str = r#"
name = "small-burst"
max_secs = 300
[site]
files = 2
total_bytes = 240000
[peers]
count = 40
arrival = { kind = "burst" }
stay_secs = [300, 300]
[network]
latency_ms = [5, 20]
loss = 0.0
nat_failure = 0.0
mix = [
  { name = "a", share = 1, down_mbps = 50, up_mbps = 4 },
  { name = "b", share = 1, down_mbps = 20, up_mbps = 8 },
]
[origin]
up_mbps = 16
latency_ms = 30
[client]
upload_bytes_per_sec = 100_000_000
"#;

fn small() -> Scenario {
    Scenario::from_toml(SMALL, "small").expect("valid")
}

#[test]
fn same_seed_same_summary_and_another_seed_differs() {
    let s = small();
    let a = peerhost_sim::run(&s, 7, &mut |_| {});
    let b = peerhost_sim::run(&s, 7, &mut |_| {});
    assert_eq!(a.summary, b.summary);
    assert_eq!(a.series, b.series);
    assert_eq!(
        serde_json::to_string(&a.summary).unwrap(),
        serde_json::to_string(&b.summary).unwrap()
    );
    let c = peerhost_sim::run(&s, 8, &mut |_| {});
    assert_ne!(a.summary, c.summary, "the seed matters");
}

#[test]
fn small_burst_respects_the_offload_and_kumar_ross_bounds() {
    let s = small();
    let run = peerhost_sim::run(&s, 3, &mut |_| {});
    let r = &run.summary;
    println!("{}", serde_json::to_string_pretty(r).unwrap());
    assert_eq!(r.visitors, 40);
    assert_eq!(r.completed, 40, "everyone finishes: {r:?}");
    assert_eq!(r.corrupt_bytes_accepted, 0);
    let n: f64 = 40.0;
    let f: f64 = 240_000.0;
    // From an empty start the origin sends every piece at least once.
    assert!(r.origin_bytes >= r.copy_bytes, "{r:?}");
    assert_eq!(r.offload_bound_pct, 100.0 * (1.0 - 1.0 / n));
    assert!(r.offload_pct <= r.offload_bound_pct + 1e-9, "{r:?}");
    // Hand-computed Kumar–Ross minimum: u_s = 2 MB/s, d_min = 2.5 MB/s,
    // Σu_i between 40 × 0.5 MB/s and 40 × 1 MB/s (the tiers are drawn).
    let us: f64 = 16e6 / 8.0;
    let slowest_possible = (f / us).max(f / 2.5e6).max(n * f / (us + n * 1e6));
    let fastest_possible = (f / us).max(f / 2.5e6).max(n * f / (us + n * 0.5e6));
    assert!(
        (slowest_possible..=fastest_possible).contains(&r.kumar_ross_min_s),
        "{} not in [{slowest_possible}, {fastest_possible}]",
        r.kumar_ross_min_s
    );
    // Nobody can beat it: the last visitor finishes no earlier.
    assert!(
        r.completion_max_s >= r.kumar_ross_min_s,
        "max {} < Kumar-Ross {}",
        r.completion_max_s,
        r.kumar_ross_min_s
    );
    assert!(r.completion_p50_s <= r.completion_p95_s && r.completion_p95_s <= r.completion_max_s);
}
