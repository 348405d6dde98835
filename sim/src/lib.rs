//! peerhost-sim: a deterministic swarm simulator that drives the real
//! `peerhost-core` client state machines under a virtual clock and a seeded
//! network model.
//!
//! - [`scenario`]: scenarios as TOML data (built-ins in `sim/scenarios/`).
//! - [`site`]: the generated site and its signed manifests.
//! - [`net`]: the in-memory network: clock and calendar, links, relay
//!   tracker, fake SDP, origin pipe, routing (shared with the swarm tests).
//! - [`role`]: what kind of peer a node is.
//! - [`world`]: a scenario's peers and origin on the network, one real
//!   `Client` per peer.
//! - [`report`]: summary figures, CSV time series and the SVG plot.
//!
//! Modules depend downwards only: `world` → `net`, `report`, `role`,
//! `site` → `scenario`; `report` → `role`.
//!
//! Same scenario and seed ⇒ the same [`report::Summary`], byte for byte.

pub mod net;
pub mod report;
pub mod role;
pub mod scenario;
pub mod site;
pub mod world;

use std::path::Path;
use std::time::Instant as WallInstant;

use report::{Series, Summary, SummaryInput};
use scenario::Scenario;
use world::{Progress, World};

/// A finished run.
#[derive(Debug, Clone)]
pub struct Run {
    /// The headline figures (deterministic).
    pub summary: Summary,
    /// The time series.
    pub series: Series,
    /// Origin bytes per bucket without peer-to-peer (fluid model).
    pub without_p2p: Vec<u64>,
    /// Wall-clock seconds the run took (not deterministic).
    pub wall_s: f64,
}

impl Run {
    /// Events simulated per wall-clock second.
    pub fn events_per_s(&self) -> f64 {
        self.summary.events as f64 / self.wall_s.max(1e-9)
    }
}

/// Runs `scenario` with `seed`, reporting progress to `progress`.
pub fn run(scenario: &Scenario, seed: u64, progress: &mut dyn FnMut(Progress)) -> Run {
    let started = WallInstant::now();
    let mut world = World::new(scenario, seed);
    world.run(progress);
    let origin_bytes_per_s = scenario.origin.up_mbps * 1e6 / 8.0;
    let copy_bytes = world.site().copy_bytes();
    let input = SummaryInput {
        scenario: &scenario.name,
        seed,
        copy_bytes,
        origin_bytes: world.origin_bytes(),
        origin_bytes_per_s,
        visitor_links: world.visitor_links(),
        events: world.work().events,
        virtual_ms: world.work().virtual_ms,
    };
    let summary = report::summarize(&input, &world.outcomes());
    let series = world.series().clone();
    let without_p2p = series.without_p2p(copy_bytes, origin_bytes_per_s);
    Run {
        summary,
        series,
        without_p2p,
        wall_s: started.elapsed().as_secs_f64(),
    }
}

/// Writes `timeseries.csv`, `bandwidth.svg` and `summary.json` into `dir`.
pub fn write_outputs(run: &Run, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("timeseries.csv"),
        report::csv(&run.series, &run.without_p2p),
    )?;
    let title = format!(
        "{} (seed {}): origin {:.2} copies, offload {:.1}%",
        run.summary.scenario, run.summary.seed, run.summary.origin_copies, run.summary.offload_pct
    );
    std::fs::write(
        dir.join("bandwidth.svg"),
        report::svg(&title, &run.series, &run.without_p2p),
    )?;
    let json = serde_json::to_string_pretty(&run.summary).expect("plain data");
    std::fs::write(dir.join("summary.json"), json + "\n")
}
