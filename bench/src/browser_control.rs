//! The line protocol to real headless browsers: `tests/js/browser.mjs`
//! (playwright-core with Debian's chromium; puppeteer-core with Debian's
//! firefox-esr for visitors opened with `engine: "firefox"`), one JSON command per stdin
//! line, one JSON reply per stdout line (`{id, ok, result|error}`). Used by
//! the end-to-end tests (`peerhost-tests`) and by
//! `peerhost bench flash-crowd --browsers`; both need a checkout with
//! `npm ci` done.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use serde_json::{Value, json};

/// One node process driving any number of browser visitors. Dropping it
/// closes every browser (and kills what is left of the process group).
pub struct BrowserControl {
    child: Child,
    stdin: Option<ChildStdin>,
    replies: Receiver<String>,
    next_id: u64,
}

impl BrowserControl {
    /// Starts `tests/js/browser.mjs` of the checkout at `root`.
    pub fn launch(root: &Path) -> Result<BrowserControl, String> {
        Self::launch_with(root, Command::new("node"))
    }

    /// Starts the driver with `node`, a command that runs node — e.g.
    /// `nsenter -t PID -n -- node`, so that the driver and every Chromium
    /// it starts live in another network namespace (a NAT test's home).
    /// The script, its working directory and pipes are added here.
    pub fn launch_with(root: &Path, mut node: Command) -> Result<BrowserControl, String> {
        if !root.join("node_modules/playwright-core").exists() {
            return Err(format!(
                "{}/node_modules/playwright-core is missing: run `npm ci` (cargo xtask test does)",
                root.display()
            ));
        }
        let mut child = node
            .arg(root.join("tests/js/browser.mjs"))
            // Its own process group, so no Chromium outlives its user.
            .process_group(0)
            .current_dir(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start node (the browser driver): {e}"))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, replies) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(BrowserControl {
            child,
            stdin: Some(stdin),
            replies,
            next_id: 0,
        })
    }

    /// Sends one command and waits at most `limit` for its reply: the
    /// command's result, or its error message.
    pub fn cmd(&mut self, mut cmd: Value, limit: Duration) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        cmd["id"] = json!(id);
        let stdin = self.stdin.as_mut().ok_or("driver closed")?;
        writeln!(stdin, "{cmd}").map_err(|e| format!("driver gone: {e}"))?;
        let until = std::time::Instant::now() + limit;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            let line = self
                .replies
                .recv_timeout(left)
                .map_err(|_| format!("no reply to {cmd} within {} s", limit.as_secs()))?;
            let Ok(reply) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if reply["id"] != json!(id) {
                continue;
            }
            return if reply["ok"] == json!(true) {
                Ok(reply["result"].clone())
            } else {
                Err(reply["error"]
                    .as_str()
                    .unwrap_or("unknown error")
                    .to_owned())
            };
        }
    }
}

impl Drop for BrowserControl {
    fn drop(&mut self) {
        // End of input lets the driver close every browser; then make sure.
        drop(self.stdin.take());
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}
