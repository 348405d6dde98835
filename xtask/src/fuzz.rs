//! `cargo xtask fuzz` (also the last step of `cargo xtask test`): install
//! what fuzzing needs, build every target in `fuzz/`, then run each for a
//! bounded time inside a loopback-only network namespace. A crash fails
//! the step and names the input that reproduces it.
//!
//! Under CI (`CI` set) a toolchain that cannot be installed fails the step;
//! elsewhere the step says what is missing and skips.
//!
//! Budget: on 2 cores the build takes about a minute and a half, and the
//! targets run two at a time, so 8 targets × 30 s take two minutes —
//! under 8 minutes with installing cargo-fuzz on a fresh machine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cmd::{cargo, exec, in_namespace, namespace_flags, succeeds};
use crate::repo_root;

/// Seconds each target runs unless [`SECS_VAR`] says otherwise.
pub const DEFAULT_SECS: u64 = 30;
/// Seconds each target runs (`0`: build only).
pub const SECS_VAR: &str = "PEERHOST_FUZZ_SECS";
/// Targets run at once (default: the machine's cores).
pub const JOBS_VAR: &str = "PEERHOST_FUZZ_JOBS";
/// Longest one input may take before libFuzzer calls it a hang (`-timeout`).
pub const INPUT_TIMEOUT_SECS: u64 = 10;
/// Memory one target may use before libFuzzer calls it a leak or a bomb
/// (`-rss_limit_mb`).
pub const RSS_LIMIT_MB: u64 = 2048;
/// Grace after the time budget before a target that did not stop is
/// killed and fails (libFuzzer checks its clock between inputs only).
const STOP_GRACE: Duration = Duration::from_secs(2 * INPUT_TIMEOUT_SECS + 10);
/// Flags for `cargo fuzz build`: release with debug assertions and
/// overflow checks (`-a`), no sanitizer. The core forbids `unsafe`, so
/// AddressSanitizer finds nothing more there but halves the executions
/// per second and doubles the build; panics, overflows and runaway
/// allocations (`-rss_limit_mb`) are what we look for.
const BUILD_FLAGS: &[&str] = &["--debug-assertions", "--sanitizer", "none"];

/// Runs the step. No arguments.
pub fn run(args: &[String]) -> Result<(), String> {
    if let Some(a) = args.first() {
        return Err(format!(
            "unexpected argument {a:?} (set {SECS_VAR} and {JOBS_VAR} instead)"
        ));
    }
    let root = repo_root();
    let fuzz = root.join("fuzz");
    if !fuzz.join("Cargo.toml").exists() {
        println!("    no fuzz/ crate: nothing to fuzz");
        return Ok(());
    }
    let secs = seconds(std::env::var(SECS_VAR).ok().as_deref())?;
    let jobs = jobs(std::env::var(JOBS_VAR).ok().as_deref())?;
    let ci = is_ci(std::env::var("CI").ok().as_deref());
    if let Err(why) = install_toolchain() {
        return missing_toolchain(ci, &why);
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| fuzz.join("target"), |d| PathBuf::from(d).join("fuzz"));
    let built = Instant::now();
    exec(
        Command::new(cargo())
            .current_dir(&fuzz)
            .args(["+nightly", "fuzz", "build"])
            .args(BUILD_FLAGS)
            .arg("--target-dir")
            .arg(&target_dir),
    )?;
    println!("    built in {}s", built.elapsed().as_secs());
    if secs == 0 {
        println!("    {SECS_VAR}=0: built only, not run");
        return Ok(());
    }
    let bin_dir = target_dir.join(host_triple()?).join("release");
    let names = targets(&fuzz)?;
    let runs: Vec<Run> = names
        .iter()
        .map(|name| Run::new(&fuzz, &target_dir, &bin_dir, name))
        .collect::<Result<_, _>>()?;
    let netns = namespace_flags();
    if netns.is_none() {
        println!(
            "    warning: no network namespace here (`unshare --net` not permitted): \
             running the targets without one (they have no network code)"
        );
    }
    println!(
        "    running {} targets for {secs}s each, {jobs} at a time{}",
        runs.len(),
        if netns.is_some() {
            ", in a loopback-only network namespace"
        } else {
            ""
        }
    );
    let failures = run_all(&runs, secs, jobs, netns)?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} fuzz targets failed: {}",
            failures.len(),
            failures.join(", ")
        ))
    }
}

/// Whether we run under CI: `CI` set to anything but empty, `0` or `false`
/// (GitHub, GitLab and our own `.ci/run` environment set `CI=true`).
pub fn is_ci(value: Option<&str>) -> bool {
    value.is_some_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// Seconds per target from [`SECS_VAR`]'s value.
pub fn seconds(value: Option<&str>) -> Result<u64, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(DEFAULT_SECS),
        Some(v) => v
            .parse()
            .map_err(|_| format!("{SECS_VAR}={v:?} is not a number of seconds")),
    }
}

/// Targets run at once, from [`JOBS_VAR`]'s value (at least 1).
pub fn jobs(value: Option<&str>) -> Result<usize, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(std::thread::available_parallelism().map_or(1, usize::from)),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{JOBS_VAR}={v:?} is not a positive number")),
        },
    }
}

/// What to do when nightly or cargo-fuzz is missing and cannot be had.
pub fn missing_toolchain(ci: bool, why: &str) -> Result<(), String> {
    if ci {
        Err(format!(
            "fuzzing needs a nightly toolchain and cargo-fuzz: {why}"
        ))
    } else {
        println!("    fuzzing SKIPPED: {why}");
        println!("    (under CI this fails; see fuzz/README.md to set fuzzing up)");
        Ok(())
    }
}

/// Installs nightly (minimal profile) and cargo-fuzz unless present.
fn install_toolchain() -> Result<(), String> {
    let nightly = || {
        succeeds(
            Command::new("rustup")
                .args(["run", "nightly", "rustc", "--version"])
                .stdin(Stdio::null()),
        )
    };
    if !nightly() {
        if !succeeds(Command::new("rustup").arg("--version")) {
            return Err("rustup not found, so no nightly toolchain can be installed".into());
        }
        exec(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))
        .map_err(|e| format!("cannot install nightly: {e}"))?;
        if !nightly() {
            return Err("nightly installed but `rustup run nightly rustc` fails".into());
        }
    } else {
        println!("    nightly toolchain present");
    }
    if succeeds(Command::new(cargo()).args(["fuzz", "--version"])) {
        println!("    cargo-fuzz present");
    } else {
        exec(Command::new(cargo()).args(["install", "cargo-fuzz", "--locked"]))
            .map_err(|e| format!("cannot install cargo-fuzz: {e}"))?;
    }
    Ok(())
}

/// The host target triple, under which `cargo fuzz` puts the binaries.
fn host_triple() -> Result<String, String> {
    let out = Command::new("rustc")
        .args(["+nightly", "-vV"])
        .output()
        .map_err(|e| format!("cannot run rustc +nightly -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| h.trim().to_owned())
        .ok_or_else(|| "rustc +nightly -vV names no host".into())
}

/// The fuzz targets: `cargo fuzz list`.
fn targets(fuzz: &Path) -> Result<Vec<String>, String> {
    let out = Command::new(cargo())
        .current_dir(fuzz)
        .args(["+nightly", "fuzz", "list"])
        .output()
        .map_err(|e| format!("cannot run cargo fuzz list: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo fuzz list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.is_empty() {
        return Err("cargo fuzz list names no target".into());
    }
    Ok(names)
}

/// One target's run: its binary, corpora, artifacts and log.
struct Run {
    name: String,
    bin: PathBuf,
    /// Where libFuzzer adds what it finds (under the target dir, so the
    /// committed seeds stay as they are).
    work: PathBuf,
    /// The committed seeds, read only.
    seeds: PathBuf,
    artifacts: PathBuf,
    log: PathBuf,
}

impl Run {
    fn new(fuzz: &Path, target_dir: &Path, bin_dir: &Path, name: &str) -> Result<Run, String> {
        let run = Run {
            name: name.to_owned(),
            bin: bin_dir.join(name),
            work: target_dir.join("corpus").join(name),
            seeds: fuzz.join("corpus").join(name),
            artifacts: fuzz.join("artifacts").join(name),
            log: target_dir.join("logs").join(format!("{name}.log")),
        };
        for dir in [&run.work, &run.artifacts, &target_dir.join("logs")] {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        if !run.bin.exists() {
            return Err(format!("{} was not built", run.bin.display()));
        }
        Ok(run)
    }

    fn start(&self, secs: u64, netns: Option<&[&str]>) -> Result<Child, String> {
        let bin = self.bin.to_string_lossy();
        let mut cmd = match netns {
            Some(flags) => in_namespace(flags, &bin),
            None => Command::new(&self.bin),
        };
        cmd.arg(format!("-max_total_time={secs}"))
            .arg(format!("-timeout={INPUT_TIMEOUT_SECS}"))
            .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
            .arg("-print_final_stats=1")
            .arg(format!("-artifact_prefix={}/", self.artifacts.display()))
            .arg(&self.work);
        if self.seeds.is_dir() {
            cmd.arg(&self.seeds);
        }
        let log = std::fs::File::create(&self.log)
            .map_err(|e| format!("cannot create {}: {e}", self.log.display()))?;
        let err = log
            .try_clone()
            .map_err(|e| format!("cannot reopen {}: {e}", self.log.display()))?;
        cmd.stdin(Stdio::null()).stdout(log).stderr(err);
        cmd.spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.bin.display()))
    }

    /// Reports how the run ended; `Err` names the failure.
    fn report(&self, status: Option<std::process::ExitStatus>) -> Result<(), String> {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let summary = summary(&log).unwrap_or_else(|| "no summary".into());
        match status {
            Some(s) if s.success() => {
                println!("    {}: ok, {summary}", self.name);
                return Ok(());
            }
            Some(s) => println!("    {}: FAILED ({s}), {summary}", self.name),
            None => println!(
                "    {}: FAILED: did not stop in time and was killed",
                self.name
            ),
        }
        let lines: Vec<&str> = log.lines().collect();
        println!("    ---- last lines of {}", self.log.display());
        for l in &lines[lines.len().saturating_sub(30)..] {
            println!("    | {l}");
        }
        for why in panic_messages(&log) {
            println!("    panic: {why}");
        }
        for input in crash_inputs(&log) {
            println!("    reproducer: {input}");
            println!(
                "    replay:     cd fuzz && PEERHOST_FUZZ_TRACE=1 cargo +nightly fuzz run {} {input}",
                self.name
            );
        }
        Err(self.name.clone())
    }
}

/// Runs every target, `jobs` at a time; the names of those that failed.
fn run_all(
    runs: &[Run],
    secs: u64,
    jobs: usize,
    netns: Option<&[&str]>,
) -> Result<Vec<String>, String> {
    let mut failures = Vec::new();
    let mut waiting = runs.iter();
    let mut running: Vec<(&Run, Child, Instant)> = Vec::new();
    let limit = Duration::from_secs(secs) + STOP_GRACE;
    loop {
        while running.len() < jobs
            && let Some(run) = waiting.next()
        {
            running.push((run, run.start(secs, netns)?, Instant::now()));
        }
        if running.is_empty() {
            return Ok(failures);
        }
        std::thread::sleep(Duration::from_millis(200));
        let mut i = 0;
        while i < running.len() {
            let (run, child, started) = &mut running[i];
            let status = child
                .try_wait()
                .map_err(|e| format!("cannot wait for {}: {e}", run.name))?;
            let done = match status {
                Some(s) => Some(Some(s)),
                None if started.elapsed() > limit => {
                    let _ = child.kill();
                    let _ = child.wait();
                    Some(None)
                }
                None => None,
            };
            match done {
                Some(status) => {
                    if let Err(name) = run.report(status) {
                        failures.push(name);
                    }
                    running.swap_remove(i);
                }
                None => i += 1,
            }
        }
    }
}

/// libFuzzer's closing figures: `Done N runs in S second(s)` and the
/// corpus it ended with.
pub fn summary(log: &str) -> Option<String> {
    let done = log.lines().rev().find(|l| l.starts_with("Done "))?;
    let corpus = log
        .lines()
        .rev()
        .find_map(|l| l.split_whitespace().skip_while(|w| *w != "corp:").nth(1));
    Some(match corpus {
        Some(c) => format!("{} (corpus {c})", done.trim()),
        None => done.trim().to_owned(),
    })
}

/// Where and why the target panicked: each `panicked at` line with the
/// message on the line after it.
pub fn panic_messages(log: &str) -> Vec<String> {
    let lines: Vec<&str> = log.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains(" panicked at "))
        .map(|(i, l)| match lines.get(i + 1) {
            Some(msg) => format!("{} {}", l.trim(), msg.trim()),
            None => l.trim().to_owned(),
        })
        .collect()
}

/// Inputs libFuzzer saved for a crash, leak, timeout or out-of-memory
/// (`Test unit written to PATH`).
pub fn crash_inputs(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| {
            l.split_once("Test unit written to ")
                .map(|(_, p)| p.trim().to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_is_any_value_but_empty_zero_or_false() {
        assert!(is_ci(Some("true")));
        assert!(is_ci(Some("1")));
        assert!(!is_ci(None));
        assert!(!is_ci(Some("")));
        assert!(!is_ci(Some("0")));
        assert!(!is_ci(Some("false")));
    }

    #[test]
    fn seconds_default_to_30_and_must_be_a_number() {
        assert_eq!(seconds(None), Ok(DEFAULT_SECS));
        assert_eq!(DEFAULT_SECS, 30);
        assert_eq!(seconds(Some(" ")), Ok(DEFAULT_SECS));
        assert_eq!(seconds(Some("5")), Ok(5));
        assert_eq!(seconds(Some("0")), Ok(0));
        assert!(seconds(Some("30s")).is_err());
    }

    #[test]
    fn jobs_are_positive() {
        assert!(jobs(None).unwrap() >= 1);
        assert_eq!(jobs(Some("3")), Ok(3));
        assert!(jobs(Some("0")).is_err());
        assert!(jobs(Some("many")).is_err());
    }

    #[test]
    fn a_missing_toolchain_fails_under_ci_and_skips_elsewhere() {
        let err = missing_toolchain(true, "rustup not found").unwrap_err();
        assert!(err.contains("rustup not found"), "{err}");
        assert_eq!(missing_toolchain(false, "rustup not found"), Ok(()));
    }

    const CLEAN: &str = "\
INFO: Seed: 1
#2\tINITED cov: 10 ft: 11 corp: 5/1Kb exec/s: 0 rss: 30Mb
#9000\tDONE   cov: 3120 ft: 11686 corp: 1344/300Kb lim: 946 exec/s: 315 rss: 34Mb
Done 9000 runs in 31 second(s)
stat::number_of_executed_units: 9000
";

    #[test]
    fn summary_reads_runs_and_corpus() {
        assert_eq!(
            summary(CLEAN).as_deref(),
            Some("Done 9000 runs in 31 second(s) (corpus 1344/300Kb)")
        );
        assert_eq!(summary("INFO: Seed: 1\n"), None);
    }

    #[test]
    fn crash_inputs_are_the_saved_units() {
        let log = "\
thread '<unnamed>' panicked at src/session.rs:263:13:
==1== ERROR: libFuzzer: deadly signal
artifact_prefix='fuzz/artifacts/x/'; Test unit written to fuzz/artifacts/x/crash-0127
Base64: EAAA
";
        assert_eq!(crash_inputs(log), vec!["fuzz/artifacts/x/crash-0127"]);
        assert_eq!(
            panic_messages(log),
            vec![
                "thread '<unnamed>' panicked at src/session.rs:263:13: ==1== ERROR: libFuzzer: deadly signal"
            ]
        );
        assert!(panic_messages(CLEAN).is_empty());
        assert!(crash_inputs(CLEAN).is_empty());
    }
}
