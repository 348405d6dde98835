//! `peerhost bench flash-crowd`, small: with one seeder up and the origin
//! refusing every asset, every peer of the crowd still completes, and the
//! origin serves no asset byte; with a host that mirrored the site first,
//! every peer completes too. Runs the real binary and reads its `--json`
//! line; it asserts completion and bytes, never timings. WebRTC, so only in
//! the loopback-only namespace (PEERHOST_NETNS=1), like the other WebRTC tests.

mod common;

use common::{netns_or_skip, run};
use serde_json::Value;

#[test]
fn flash_crowd_completes_while_origin_refuses() {
    if !netns_or_skip("flash_crowd_completes_while_origin_refuses") {
        return;
    }
    let r = run([
        "bench",
        "flash-crowd",
        "--peers",
        "4",
        "--scenarios",
        "peers-and-host,origin-refusing",
        "--scenario-timeout",
        "120",
        "--timeout",
        "400",
        "--json",
    ]);
    assert!(r.ok(), "{r:#?}");
    let last = r.stdout.lines().last().expect("output");
    let report: Value = serde_json::from_str(last).expect("the last line is JSON");
    let site = report["site_bytes"].as_u64().expect("site_bytes");
    assert!(site > 2_000_000, "the demo site: {report}");

    let refusing = &report["scenarios"]["origin-refusing"];
    assert_eq!(refusing["visitors"], 4, "{report}");
    assert_eq!(refusing["completed"], 4, "every peer completes: {report}");
    assert_eq!(
        refusing["origin_asset_bytes"], 0,
        "the origin served no asset: {report}"
    );
    assert_eq!(
        refusing["peer_received_from_origin"], 0,
        "the peers got nothing from the origin: {report}"
    );
    assert!(
        refusing["peer_received_from_peers"].as_u64().unwrap_or(0) >= 4 * site,
        "the peers got the site from each other and the seeder: {report}"
    );

    let host = &report["scenarios"]["peers-and-host"];
    assert_eq!(host["completed"], 4, "every peer completes: {report}");
    assert!(
        host["origin_bytes_before_crowd"].as_u64().unwrap_or(0) >= site,
        "the host mirrored one copy from the origin: {report}"
    );
}
