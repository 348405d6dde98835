//! `cargo xtask test`: the whole test suite, as CI runs it.
//!
//! It must pass on a fresh Debian machine where we are root and only
//! package registries are reachable, so it installs what it needs first,
//! then builds everything (the only steps that download), then runs the
//! tests inside a loopback-only network namespace so that no test —
//! browser WebRTC included — can send a packet off the machine.
//! Each step says what it does; the first failure stops the run.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::cmd::{cargo, cargo_in_namespace, exec, have};
use crate::repo_root;

/// A step of the suite: what it checks, and how.
type Step<'a> = (&'static str, Box<dyn Fn() -> Result<(), String> + 'a>);

/// Runs every step. `args`: an optional `--keep-going` (run every step and
/// report all failures at the end, instead of stopping at the first), then
/// anything else is passed on to `cargo test` (e.g. `-- --nocapture`).
pub fn run(args: &[String]) -> Result<(), String> {
    let keep_going = args.first().is_some_and(|a| a == "--keep-going");
    let extra = if keep_going { &args[1..] } else { args };
    let root = repo_root();
    std::env::set_current_dir(&root)
        .map_err(|e| format!("cannot cd to {}: {e}", root.display()))?;
    let started = Instant::now();

    let steps: Vec<Step<'_>> = vec![
        (
            "add the wasm32-unknown-unknown target",
            Box::new(|| {
                if have("rustup") {
                    exec(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
                } else {
                    println!("    rustup not found: assuming the wasm32 target is installed");
                    Ok(())
                }
            }),
        ),
        (
            "system packages (Chromium, chromedriver, iproute2, nftables, coturn, npm)",
            Box::new(|| system_packages(&root)),
        ),
        (
            "npm packages",
            Box::new(|| {
                if root.join("package-lock.json").exists() {
                    exec(Command::new("npm").args(["ci", "--ignore-scripts"]))
                } else {
                    println!("    no package-lock.json: nothing to install");
                    Ok(())
                }
            }),
        ),
        (
            "formatting",
            Box::new(|| exec(Command::new(cargo()).args(["fmt", "--all", "--check"]))),
        ),
        (
            "lints",
            Box::new(|| {
                exec(Command::new(cargo()).args([
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ]))
            }),
        ),
        (
            "no import cycle between the top-level modules of a crate",
            Box::new(crate::cycles::run),
        ),
        (
            "the core builds for wasm32",
            Box::new(|| {
                exec(Command::new(cargo()).args([
                    "build",
                    "-p",
                    "peerhost-core",
                    "--target",
                    "wasm32-unknown-unknown",
                ]))
            }),
        ),
        (
            "build the browser client (wasm32 + wasm-bindgen + wasm-opt)",
            Box::new(|| crate::web::build(&root).map(|_| ())),
        ),
        (
            "build every test (the last step that may download)",
            Box::new(|| exec(Command::new(cargo()).args(["test", "--workspace", "--no-run"]))),
        ),
        (
            "run the tests in a loopback-only network namespace",
            Box::new(|| run_tests(extra)),
        ),
        (
            "fuzz: every target built and run for a bounded time",
            Box::new(|| crate::fuzz::run(&[])),
        ),
    ];

    let total = steps.len();
    let mut failed = Vec::new();
    for (i, (what, step)) in steps.iter().enumerate() {
        println!("==> [{}/{total}] {what}", i + 1);
        let step_started = Instant::now();
        match step() {
            Ok(()) => println!("    ok ({}s)", step_started.elapsed().as_secs()),
            Err(e) if keep_going => {
                println!("    FAILED: {e}");
                failed.push(format!("[{}/{total}] {what}: {e}", i + 1));
            }
            Err(e) => return Err(format!("step {}/{total} ({what}): {e}", i + 1)),
        }
    }
    let secs = started.elapsed().as_secs();
    if failed.is_empty() {
        println!("==> all {total} steps passed in {secs}s");
        Ok(())
    } else {
        println!("==> {} of {total} steps FAILED in {secs}s:", failed.len());
        for f in &failed {
            println!("    {f}");
        }
        Err(format!("{} steps failed", failed.len()))
    }
}

fn is_root() -> bool {
    // Effective uid is the second field of the `Uid:` line.
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

fn system_packages(root: &Path) -> Result<(), String> {
    let mut missing = Vec::new();
    if !Path::new("/usr/bin/chromium").exists() {
        missing.push("chromium");
    }
    if !Path::new("/usr/bin/chromedriver").exists() {
        missing.push("chromium-driver");
    }
    // The second browser engine of the end-to-end tests (`firefox_*`).
    if !Path::new("/usr/bin/firefox-esr").exists() {
        missing.push("firefox-esr");
    }
    // turnserver and its turnutils_* clients: the STUN and TURN tests run
    // against a real coturn (peerhost_testenv::coturn).
    if !Path::new("/usr/bin/turnserver").exists()
        || !Path::new("/usr/bin/turnutils_uclient").exists()
    {
        missing.push("coturn");
    }
    if !have("ip") && !Path::new("/usr/sbin/ip").exists() && !Path::new("/sbin/ip").exists() {
        missing.push("iproute2");
    }
    // The NAT tests' simulated internet (nftables masquerade routers).
    if !have("nft") && !Path::new("/usr/sbin/nft").exists() {
        missing.push("nftables");
    }
    if root.join("package-lock.json").exists() && !have("npm") {
        missing.extend(["nodejs", "npm"]);
    }
    if missing.is_empty() {
        println!("    all present");
        return Ok(());
    }
    if !is_root() {
        println!(
            "    warning: missing {} and not root: install them, or browser tests will skip",
            missing.join(" ")
        );
        return Ok(());
    }
    exec(Command::new("apt-get").arg("update"))?;
    exec(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing),
    )
}

fn run_tests(extra: &[String]) -> Result<(), String> {
    cargo_in_namespace(&["test", "--workspace", "--offline"], extra)
}
