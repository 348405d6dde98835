//! The `peerhost` command, as a library so tests, benchmarks and other
//! commands can reuse its parts.
//!
//! One module per subcommand ([`keygen`], [`publish`], [`verify`],
//! [`push`], [`demo`]), each with its clap `Args` and a `run`; plus the pieces they
//! share: the key-file format ([`keyfile`]), the counting static-file
//! server ([`origin`]) and atomic writes ([`fsutil`]). Library functions
//! return typed errors; only the `run` functions use `anyhow`.

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use peerhost_core::time::UnixTime;

pub mod browser_crowd;
pub mod browser_driver;
pub mod demo;
pub mod flash_crowd;
pub mod fsutil;
pub mod keyfile;
pub mod keygen;
pub mod origin;
pub mod publish;
pub mod push;
pub mod sim;
pub mod ticker;
pub mod verify;

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
    Tracker(peerhost_tracker::BenchArgs),
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
        } => run_async(peerhost_tracker::bench::run(args.clone())),
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

/// The current wall-clock time.
pub fn unix_now() -> UnixTime {
    // A clock before 1970 is a broken machine; treat it as the epoch.
    UnixTime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// Bytes in binary units, e.g. `2.4 MiB`.
pub fn fmt_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Seconds in the largest unit that divides them, e.g. `24h`, `90m`, `7d`.
pub fn fmt_duration(secs: u64) -> String {
    match secs {
        0 => "0s".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_bytes(5), "5 bytes");
        assert_eq!(fmt_bytes(2048), "2.0 KiB");
        assert_eq!(fmt_bytes(3 * 1024 * 1024 + 512 * 1024), "3.5 MiB");
        assert_eq!(fmt_duration(86_400), "1d");
        assert_eq!(fmt_duration(5400), "90m");
        assert_eq!(fmt_duration(61), "61s");
    }

    #[test]
    fn errors_print_on_one_line_without_repeats() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = anyhow::Error::new(keyfile::KeyFileError::Read {
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
