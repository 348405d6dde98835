//! One network namespace held by a child process, and the commands that
//! set it up: no `/run/netns` mount needed, so it works inside the
//! loopback-only namespace of `cargo xtask test`.

use std::fmt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a namespace may outlive a test that forgot it (its holder is
/// `timeout`, so even a leaked one goes away).
const HOLDER_LIFETIME_SECS: u32 = 1800;
/// How long the holder may take to enter its namespace.
const ENTER_LIMIT: Duration = Duration::from_secs(10);

/// A set-up step failed: which command, and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupError {
    /// The command line (or step) that failed.
    pub command: String,
    /// Its exit status and standard error, or why it could not run.
    pub detail: String,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "topology set-up: `{}` failed: {}",
            self.command, self.detail
        )
    }
}

impl std::error::Error for SetupError {}

impl SetupError {
    pub(crate) fn new(command: impl Into<String>, detail: impl Into<String>) -> SetupError {
        SetupError {
            command: command.into(),
            detail: detail.into(),
        }
    }
}

/// Runs `cmd` to completion; an error names the command line and carries
/// its standard error.
pub(crate) fn run(cmd: &mut Command) -> Result<String, SetupError> {
    let line = command_line(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| SetupError::new(&line, format!("cannot start: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(SetupError::new(
            &line,
            format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ))
    }
}

/// `cmd` as a shell-like line, for error messages.
pub(crate) fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A network namespace of its own, held by `unshare --net -- timeout N cat`:
/// it lives while that process does, which ends when this is dropped (its
/// stdin closes and it is killed) or, at the latest, after
/// [`HOLDER_LIFETIME_SECS`].
pub struct Namespace {
    holder: Child,
    stdin: Option<ChildStdin>,
    role: String,
}

impl Namespace {
    /// Creates an empty namespace (only a down `lo`); `role` names it in
    /// errors ("router 0", "home 1").
    pub fn new(role: &str) -> Result<Namespace, SetupError> {
        let mut cmd = Command::new("unshare");
        cmd.args(["--net", "--", "timeout", "--signal=KILL"])
            .arg(HOLDER_LIFETIME_SECS.to_string())
            .arg("cat");
        let line = command_line(&cmd);
        let mut holder = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| SetupError::new(&line, format!("cannot start ({role}): {e}")))?;
        let stdin = holder.stdin.take();
        let ns = Namespace {
            holder,
            stdin,
            role: role.to_owned(),
        };
        ns.await_entered(&line)?;
        ns.run(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Waits (bounded) until the holder is in a network namespace other
    /// than ours: `unshare` has then done its work.
    fn await_entered(&self, line: &str) -> Result<(), SetupError> {
        let ours = std::fs::read_link("/proc/self/ns/net")
            .map_err(|e| SetupError::new("readlink /proc/self/ns/net", e.to_string()))?;
        let theirs = format!("/proc/{}/ns/net", self.pid());
        let started = Instant::now();
        for _ in 0..10_000 {
            if std::fs::read_link(&theirs).is_ok_and(|ns| ns != ours) {
                return Ok(());
            }
            if started.elapsed() > ENTER_LIMIT {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Err(SetupError::new(
            line,
            format!(
                "the holder of {} did not enter a new network namespace within {} s",
                self.role,
                ENTER_LIMIT.as_secs()
            ),
        ))
    }

    /// The holder's process id (what `nsenter -t` and `ip link … netns` take).
    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// A command that runs `program` inside this namespace
    /// (`nsenter -t PID -n -- program`); add arguments and spawn it.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.pid().to_string(), "-n", "--", program]);
        cmd
    }

    /// Runs `args` inside this namespace to completion.
    pub fn run(&self, args: &[&str]) -> Result<String, SetupError> {
        let mut cmd = self.command(args[0]);
        cmd.args(&args[1..]);
        run(&mut cmd).map_err(|mut e| {
            e.command = format!("{} (in {})", e.command, self.role);
            e
        })
    }

    /// Writes `value` to a `/proc/sys/net/…` file as seen from inside (the
    /// file's namespace is the opener's), e.g. to turn on forwarding.
    pub fn sysctl(&self, path: &str, value: &str) -> Result<(), SetupError> {
        self.run(&["sh", "-c", &format!("echo {value} > {path}")])
            .map(|_| ())
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
