//! Project automation, run as `cargo xtask <task>` (an alias in
//! `.cargo/config.toml`), so nothing but cargo is needed to drive the repo.
//!
//! - `test`: the whole test suite, exactly what CI (`.ci/run`) runs.
//! - `demo`: `cargo run -p peerhost -- demo`, the local demo.
//! - `gen-demo-images`: regenerates the procedural images of `demo-site/img/`.
//! - `fuzz`: install nightly and cargo-fuzz if missing, build every fuzz
//!   target, run each for a bounded time (part of `test`).
//! - `check-cycles`: no import cycle between the top-level modules of any
//!   workspace crate.

use std::path::PathBuf;
use std::process::ExitCode;

mod cmd;
mod cycles;
mod demo_images;
mod fuzz;
mod test;
mod web;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test [--keep-going] [-- ARGS...]
                    the whole test suite (what .ci/run runs): toolchain and
                    browser setup, fmt, clippy, the wasm32 build, every test
                    inside a loopback-only network namespace, fuzzing.
                    Stops at the first failing step unless --keep-going;
                    ARGS go to `cargo test` (e.g. -- --nocapture)
  fuzz              install nightly and cargo-fuzz if missing, build every
                    fuzz target, run each for PEERHOST_FUZZ_SECS (30) s,
                    PEERHOST_FUZZ_JOBS (cores) at a time, in a loopback-only
                    network namespace; fails on a crash, and under CI when
                    the toolchain cannot be installed (part of `test`)
  demo [ARGS...]    build the browser client, then run the local demo
                    (cargo run --release -p peerhost -- demo ARGS...)
  build-web         build the browser client into target/peerhost-web/
  bench-browser     print browser figures (SHA-256, data-channel throughput)
  gen-demo-images   regenerate demo-site/img/*.jpg (deterministic)
  check-cycles      fail on an import cycle between the top-level modules
                    of a workspace crate (part of `test`)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("demo") => demo(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("bench-browser") => web::bench(&repo_root()),
        Some("build-web") => {
            web::build(&repo_root()).map(|dir| println!("browser client in {}", dir.display()))
        }
        Some("check-cycles") => cycles::run(),
        Some("gen-demo-images") => demo_images::run(&repo_root().join("demo-site/img")),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's directory.
///
/// `cargo run` sets `CARGO_MANIFEST_DIR` for the program too; that is
/// preferred to the compile-time value, which a shared target directory
/// can carry over from another checkout.
pub fn repo_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir
        .parent()
        .map_or(manifest_dir.clone(), PathBuf::from)
}

fn demo(extra: &[String]) -> Result<(), String> {
    web::build(&repo_root())?;
    let mut cmd = std::process::Command::new(cmd::cargo());
    cmd.current_dir(repo_root())
        .args(["run", "--release", "-p", "peerhost", "--", "demo"])
        .args(extra);
    let status = cmd.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the demo exited with {status}"))
    }
}
