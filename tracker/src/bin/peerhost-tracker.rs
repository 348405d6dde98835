//! Stand-alone tracker binary, with the same command shapes as the main
//! `peerhost` binary (`tracker …`, `bench tracker …`) so the bench can start
//! it as `<exe> tracker --listen 127.0.0.1:0`.

use clap::{Parser, Subcommand};
use peerhost_tracker::BenchArgs;
use peerhost_tracker::cli::TrackerArgs;

#[derive(Parser)]
#[command(name = "peerhost-tracker", about = "peerhost WebSocket tracker")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the tracker.
    Tracker(TrackerArgs),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Load-test this tracker against bittorrent-tracker.
    Tracker(BenchArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Tracker(a) => peerhost_tracker::cli::run(a).await,
        Cmd::Bench {
            what: BenchWhat::Tracker(a),
        } => peerhost_tracker::bench::run(a).await,
    }
}
