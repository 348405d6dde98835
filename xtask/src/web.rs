//! `cargo xtask build-web`: the browser client, ready to serve.
//!
//! Builds `peerhost-wasm` for wasm32 with the size-optimised
//! `wasm-release` profile, runs the wasm-bindgen CLI (installed at the
//! exact version Cargo.lock pins, which the bindings require), shrinks the
//! module with npm binaryen's `wasm-opt -Oz` when present (never Debian's
//! binaryen 108, whose output Chromium rejects), and copies the loader and
//! the Service Worker next to it in `target/peerhost-web/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{cargo, cargo_in_namespace, exec};

/// Builds the client into `target/peerhost-web/` and returns that path.
pub fn build(root: &Path) -> Result<PathBuf, String> {
    if Command::new("rustup").arg("--version").output().is_ok() {
        exec(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    let version = locked_version(root, "wasm-bindgen")?;
    ensure_wasm_bindgen(&version)?;
    println!("    cargo build -p peerhost-wasm (wasm32, wasm-release profile)");
    exec(Command::new(cargo()).current_dir(root).args([
        "build",
        "--profile",
        "wasm-release",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "peerhost-wasm",
    ]))?;
    let out = root.join("target/peerhost-web");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    // Cargo writes where CARGO_TARGET_DIR says, if set (relative to the root).
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |d| root.join(d));
    let wasm = target_dir.join("wasm32-unknown-unknown/wasm-release/peerhost_wasm.wasm");
    exec(Command::new("wasm-bindgen").args([
        "--target",
        "web",
        "--no-typescript",
        "--out-dir",
        &out.to_string_lossy(),
        &wasm.to_string_lossy(),
    ]))?;
    let bg = out.join("peerhost_wasm_bg.wasm");
    let wasm_opt = root.join("node_modules/.bin/wasm-opt");
    if wasm_opt.exists() {
        let mut opt = Command::new(&wasm_opt);
        opt.arg("-Oz");
        // PEERHOST_PROFILE=1 keeps function names so CPU profiles name WASM
        // functions (`cargo xtask bench-browser` prints one then).
        if std::env::var_os("PEERHOST_PROFILE").is_some() {
            opt.arg("-g");
        }
        exec(opt.arg(&bg).arg("-o").arg(&bg))?;
    } else {
        println!(
            "    node_modules/.bin/wasm-opt not found (npm ci installs it): module left unoptimised"
        );
    }
    for js in ["peerhost.js", "peerhost-sw.js"] {
        std::fs::copy(root.join("wasm/js").join(js), out.join(js))
            .map_err(|e| format!("copy {js}: {e}"))?;
    }
    for f in [
        "peerhost_wasm_bg.wasm",
        "peerhost_wasm.js",
        "peerhost.js",
        "peerhost-sw.js",
    ] {
        let len = std::fs::metadata(out.join(f)).map(|m| m.len()).unwrap_or(0);
        println!("    {f:<24} {len:>8} bytes");
    }
    Ok(out)
}

/// The version of `name` in Cargo.lock.
fn locked_version(root: &Path, name: &str) -> Result<String, String> {
    let lock =
        std::fs::read_to_string(root.join("Cargo.lock")).map_err(|e| format!("Cargo.lock: {e}"))?;
    let needle = format!("name = \"{name}\"\nversion = \"");
    let start = lock
        .find(&needle)
        .ok_or_else(|| format!("{name} is not in Cargo.lock"))?
        + needle.len();
    let end = lock[start..].find('"').ok_or("malformed Cargo.lock")? + start;
    Ok(lock[start..end].to_owned())
}

/// Installs the wasm-bindgen CLI at `version` unless it is on PATH already.
fn ensure_wasm_bindgen(version: &str) -> Result<(), String> {
    let have = Command::new("wasm-bindgen")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if have.as_deref() == Some(&format!("wasm-bindgen {version}")) {
        return Ok(());
    }
    println!("    installing wasm-bindgen-cli {version} (about 2-3 minutes, once per machine)");
    // Not --locked: its lock file names a webpki-roots release the registry
    // mirror here lacks; the CLI's version is what must match.
    exec(Command::new(cargo()).args(["install", "wasm-bindgen-cli", "--version", version]))
}

/// `cargo xtask bench-browser`: builds the client, then prints the browser
/// figures (SHA-256 throughput, data-channel throughput through peerhost vs
/// plain JS) from `tests/tests/browser_figures.rs`, in the loopback namespace.
pub fn bench(root: &Path) -> Result<(), String> {
    build(root)?;
    exec(Command::new(cargo()).current_dir(root).args([
        "test",
        "-p",
        "peerhost-tests",
        "--test",
        "browser_figures",
        "--no-run",
    ]))?;
    cargo_in_namespace(
        &[
            "test",
            "--offline",
            "-p",
            "peerhost-tests",
            "--test",
            "browser_figures",
        ],
        &["--".into(), "--ignored".into(), "--nocapture".into()],
    )
}
