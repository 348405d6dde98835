//! Running commands for the tasks: which cargo, printing each command
//! before it runs, and the loopback-only network namespace the tests use.

use std::process::{Command, Stdio};

/// The cargo to run: the rustup proxy on PATH, which also finds
/// `cargo-fmt` and `cargo-clippy` (the bare binary in `$CARGO` may not).
pub fn cargo() -> &'static str {
    "cargo"
}

/// Prints and runs a command; an error unless it exits 0.
pub fn exec(cmd: &mut Command) -> Result<(), String> {
    let shown = show(cmd);
    println!("    $ {shown}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed ({status})"))
    }
}

fn show(cmd: &Command) -> String {
    let mut s = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            s.push_str(&format!("{}={} ", k.to_string_lossy(), v.to_string_lossy()));
        }
    }
    s.push_str(&cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.contains(' ') || a.contains('$') {
            s.push_str(&format!(" '{a}'"));
        } else {
            s.push_str(&format!(" {a}"));
        }
    }
    s
}

/// Whether `program` runs at all.
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Whether a command succeeds, quietly.
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The script `unshare` runs in a new network namespace: bring loopback
/// up, then become the command (`sh -c SCRIPT sh PROGRAM ARGS…` passes the
/// arguments unquoted-safe).
const NAMESPACE_SCRIPT: &str = "ip link set lo up && exec \"$@\"";

/// The `unshare` flags that give a loopback-only network namespace here,
/// if any do: `--net` as root, or inside a user namespace otherwise.
pub fn namespace_flags() -> Option<&'static [&'static str]> {
    const CHOICES: [&[&str]; 2] = [
        &["--net"],
        // Not root: a user namespace may still allow a private network namespace.
        &["--net", "--map-root-user"],
    ];
    CHOICES.into_iter().find(|flags| {
        succeeds(Command::new("unshare").args(*flags).args([
            "--",
            "sh",
            "-c",
            NAMESPACE_SCRIPT,
            "sh",
            "true",
        ]))
    })
}

/// `program` to be run inside a loopback-only network namespace made with
/// `flags` (from [`namespace_flags`]); add its arguments to the result.
pub fn in_namespace(flags: &[&str], program: &str) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(flags)
        .args(["--", "sh", "-c", NAMESPACE_SCRIPT, "sh", program]);
    cmd
}

/// Runs `cargo ARGS EXTRA` inside a loopback-only network namespace with
/// `PEERHOST_NETNS=1`, or without one (browser tests then skip) where
/// namespaces are not permitted.
pub fn cargo_in_namespace(test_args: &[&str], extra: &[String]) -> Result<(), String> {
    match namespace_flags() {
        Some(flags) => exec(
            in_namespace(flags, cargo())
                .env("PEERHOST_NETNS", "1")
                .args(test_args)
                .args(extra),
        ),
        None if peerhost_testenv::under_ci() => Err(
            "cannot create a network namespace (`unshare --net` is not permitted here): \
             the browser and WebRTC tests cannot run, and under CI that is a failure, not a skip"
                .into(),
        ),
        None => {
            println!(
                "    warning: cannot create a network namespace (`unshare --net` is not permitted here);"
            );
            println!(
                "    warning: running the tests without one: browser (WebRTC) tests will SKIP"
            );
            exec(Command::new(cargo()).args(test_args).args(extra))
        }
    }
}
