//! `peerhost sim SCENARIO`: runs a swarm scenario in the deterministic
//! simulator (real core clients, virtual time) and prints its figures.

use std::path::PathBuf;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use peerhost_sim::scenario::Scenario;
use peerhost_sim::world::Progress;
use peerhost_sim::{Run, write_outputs};

/// Arguments of `peerhost sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// A built-in scenario (flash-crowd-1k, flash-crowd-100k, sports-ticker,
    /// origin-down, hostile-10pct, churn-heavy) or a path to a TOML file.
    pub scenario: String,
    /// Seed of every random choice; the same seed gives the same figures.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the summary as one JSON object on the last line.
    #[arg(long)]
    pub json: bool,
    /// Where to write timeseries.csv, bandwidth.svg and summary.json
    /// [default: target/sim/<scenario>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// With hostile peers, skip the clean run (same seed, no hostile peers)
    /// that the completion times are compared with.
    #[arg(long)]
    pub no_clean_run: bool,
}

/// Runs the command.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let scenario = Scenario::load(&args.scenario)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/sim").join(&scenario.name));
    let main = run_with_bar(&scenario, args.seed);
    write_outputs(&main, &out).with_context(|| format!("writing {}", out.display()))?;
    print_run(&main);
    let clean = (scenario.hostile.fraction > 0.0 && !args.no_clean_run).then(|| {
        let twin = scenario.clean_twin();
        let clean = run_with_bar(&twin, args.seed);
        let ratio = main.summary.completion_p95_s / clean.summary.completion_p95_s.max(1e-9);
        println!(
            "clean run (no hostile peers, same seed): p95 {:.2} s; hostile p95 / clean p95 = {:.3} ({:+.1}%)",
            clean.summary.completion_p95_s,
            ratio,
            (ratio - 1.0) * 100.0
        );
        (clean, ratio)
    });
    println!(
        "files: {}/{{timeseries.csv,bandwidth.svg,summary.json}}",
        out.display()
    );
    if args.json {
        let mut v = serde_json::to_value(&main.summary)?;
        let o = v.as_object_mut().expect("a struct");
        o.insert("wall_s".into(), round3(main.wall_s).into());
        o.insert("events_per_s".into(), main.events_per_s().round().into());
        if let Some((clean, ratio)) = &clean {
            o.insert(
                "clean_completion_p95_s".into(),
                clean.summary.completion_p95_s.into(),
            );
            o.insert("p95_vs_clean".into(), round3(*ratio).into());
        }
        println!("{}", serde_json::to_string(&v)?);
    }
    Ok(())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn run_with_bar(scenario: &Scenario, seed: u64) -> Run {
    let visitors = u64::from(scenario.peers.count);
    let bar = ProgressBar::new(visitors);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} visitors settled {msg}",
        )
        .expect("valid template"),
    );
    bar.set_prefix(scenario.name.clone());
    let mut update = |p: Progress| {
        bar.set_position(p.settled);
        bar.set_message(format!(
            "· t = {:.1} s virtual · {:.1}M events",
            p.now_ms as f64 / 1000.0,
            p.events as f64 / 1e6
        ));
    };
    let run = peerhost_sim::run(scenario, seed, &mut update);
    bar.finish_and_clear();
    run
}

fn print_run(run: &Run) {
    let s = &run.summary;
    println!(
        "scenario {} (seed {}): {} visitors, {} returning, {} hostile",
        s.scenario, s.seed, s.visitors, s.returning, s.hostile
    );
    println!(
        "origin:       {} bytes = {:.3} copies of the site ({} bytes)",
        s.origin_bytes, s.origin_copies, s.copy_bytes
    );
    println!(
        "offload:      {:.2}% from peers (bound from an empty start 1 - 1/N = {:.2}%)",
        s.offload_pct, s.offload_bound_pct
    );
    println!(
        "completion:   p50 {:.2} s, p95 {:.2} s, p99 {:.2} s, max {:.2} s (Kumar-Ross minimum for a burst: {:.2} s)",
        s.completion_p50_s,
        s.completion_p95_s,
        s.completion_p99_s,
        s.completion_max_s,
        s.kumar_ross_min_s
    );
    println!(
        "upload share: Jain index {:.3}; top 1% of uploaders {:.1}%, top 10% {:.1}%; {:.1}% of visitors uploaded",
        s.upload_fairness_jain,
        s.upload_top1pct_share_pct,
        s.upload_top10pct_share_pct,
        s.uploaders_pct
    );
    println!(
        "origin pieces: {} after a failed peer request, {} held by a busy peer, {} held by no neighbour, {} with no peer connected",
        s.origin_pieces_peer_failed,
        s.origin_pieces_holder_busy,
        s.origin_pieces_no_holder,
        s.origin_pieces_alone
    );
    println!(
        "corrupt bytes accepted: {} (pieces rejected {}, peers banned {})",
        s.corrupt_bytes_accepted, s.pieces_rejected, s.peers_banned
    );
    println!(
        "visitors:     {} completed, {} with failed assets, {} left early, {} unfinished",
        s.completed, s.failed, s.left_early, s.unfinished
    );
    if s.updates_delivered > 0 {
        println!(
            "updates:      {} delivered, publication to delivery p50 {:.2} s, p95 {:.2} s",
            s.updates_delivered, s.update_p50_s, s.update_p95_s
        );
    }
    println!(
        "wall clock:   {:.2} s for {:.1} s virtual, {} events ({:.0} events/s)",
        run.wall_s,
        s.virtual_s,
        s.events,
        run.events_per_s()
    );
}
