//! Stand-alone tracker binary, with the same command shape as the main
//! `peerhost` binary (`tracker …`), so `peerhost bench tracker
//! --tracker-exe` can start it as `<exe> tracker --listen 127.0.0.1:0`.

use clap::{Parser, Subcommand};
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Tracker(a) => peerhost_tracker::cli::run(a).await,
    }
}
