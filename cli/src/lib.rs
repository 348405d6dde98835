//! The `peerhost` command line: parses arguments, dispatches each
//! subcommand to the crate that implements it, and turns errors into one
//! line and an exit code.
//!
//! The subcommands live with what they drive: the site owner's
//! (`keygen`, `publish`, `verify`, `push`, `demo`) in `peerhost-site`,
//! `tracker` in `peerhost-tracker`, `seed` in `peerhost-seeder`, `bench` in
//! `peerhost-bench`, and [`sim`] here over `peerhost-sim`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use peerhost_bench::{flash_crowd, ticker, tracker_load};
use peerhost_site::{demo, keygen, publish, push, verify};

pub mod sim;

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for any failure: an error, or a verification that found problems.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a usage error (bad flags); clap's convention.
pub const EXIT_USAGE: u8 = 2;

/// peerhost: serve a static site from its visitors' browsers, verified
/// against a signed manifest.
#[derive(Debug, Parser)]
#[command(name = "peerhost", version)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new site key (secret key file + public site key).
    Keygen(keygen::Args),
    /// Hash a site directory and write its signed manifest, peerhost.json.
    Publish(publish::Args),
    /// Check a published directory against its signed manifest.
    Verify(verify::Args),
    /// Send the published manifest to the tracker once; it pushes it to visitors.
    Push(push::Args),
    /// Run the demo: the built-in site (public demo key), its origin, the
    /// tracker and the browser client, on one local address.
    Demo(demo::Args),
    /// Run the WebSocket signalling tracker (WebTorrent protocol + manifest push).
    Tracker(peerhost_tracker::cli::TrackerArgs),
    /// Seed published sites, or mirror one from its signed manifest (cooperating hosts).
    Seed(peerhost_seeder::cli::SeedArgs),
    /// Simulate a swarm scenario with real core clients on a virtual clock.
    Sim(sim::Args),
    /// Benchmarks that print figures (add --json for one JSON object on the last line).
    Bench {
        /// What to measure.
        #[command(subcommand)]
        what: Bench,
    },
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum Bench {
    /// Load-test the tracker side by side with Node's bittorrent-tracker.
    Tracker(tracker_load::BenchArgs),
    /// A ticker updated every second: pushed manifests vs every visitor polling.
    Ticker(ticker::TickerArgs),
    /// A flash crowd of native peers against a bandwidth-capped origin,
    /// side by side with the same crowd over plain HTTP.
    FlashCrowd(flash_crowd::Args),
}

/// Runs an async command on a fresh runtime, with `RUST_LOG`-style logging.
fn run_async<F: std::future::Future<Output = anyhow::Result<()>>>(f: F) -> anyhow::Result<bool> {
    run_async_logging(f, "info")
}

/// [`run_async`] with another default log filter.
fn run_async_logging<F: std::future::Future<Output = anyhow::Result<()>>>(
    f: F,
    default_filter: &str,
) -> anyhow::Result<bool> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(f).map(|()| true)
}

/// Runs a parsed command line; `Ok(false)` means "ran, but the answer is no"
/// (verification found problems).
pub fn run(cli: &Cli) -> anyhow::Result<bool> {
    match &cli.command {
        Command::Keygen(args) => keygen::run(args).map(|()| true),
        Command::Publish(args) => publish::run(args).map(|()| true),
        Command::Verify(args) => verify::run(args),
        Command::Push(args) => push::run(args).map(|()| true),
        Command::Demo(args) => demo::run(args).map(|()| true),
        Command::Sim(args) => sim::run(args).map(|()| true),
        Command::Tracker(args) => run_async(peerhost_tracker::cli::run(args.clone())),
        Command::Seed(args) => run_async(peerhost_seeder::cli::run(args.clone())),
        Command::Bench {
            what: Bench::Tracker(args),
        } => run_async(tracker_load::run(args.clone())),
        Command::Bench {
            what: Bench::Ticker(args),
            // The in-process tracker logs every publish; the figures are the output.
        } => run_async_logging(ticker::run(args.clone()), "warn"),
        Command::Bench {
            what: Bench::FlashCrowd(args),
        } => {
            // Fifty peers (and webrtc-rs under them) logging every
            // connection would bury the figures.
            run_async_logging(flash_crowd::run(args.clone()), "error")
        }
    }
}

/// The binary's entry point: parses arguments, runs, and turns errors into
/// one `error: …` line on stderr and an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(true) => ExitCode::from(EXIT_OK),
        Ok(false) => ExitCode::from(EXIT_FAILURE),
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// An error and its causes on one line, `outer: inner: …`, leaving out a
/// cause whose text the message already contains (our error types quote
/// their OS error and also expose it as `source`).
pub fn one_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_print_on_one_line_without_repeats() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = anyhow::Error::new(peerhost_site::keyfile::KeyFileError::Read {
            path: "k".into(),
            source: io,
        })
        .context("publishing");
        assert_eq!(one_line(&e), "publishing: cannot read key file k: gone");
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
