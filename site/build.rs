//! Embeds `demo-site/` into the binary so `peerhost demo` works from any
//! directory: generates `$OUT_DIR/demo_site.rs` with one `include_bytes!`
//! per file. A build script rather than a proc-macro crate because cargo
//! re-runs it whenever anything under `demo-site/` changes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let site = manifest_dir.join("../demo-site");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", site.display());

    let mut files = Vec::new();
    if site.is_dir() {
        collect(&site, "", &mut files);
    }
    files.sort();

    let mut out = String::from("&[\n");
    for (rel, abs) in &files {
        let abs = abs.canonicalize().expect("demo-site file exists");
        writeln!(
            out,
            "    ({rel:?}, include_bytes!({:?})),",
            abs.display().to_string()
        )
        .expect("writing to a String");
    }
    out.push_str("]\n");
    let dest = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("demo_site.rs");
    fs::write(dest, out).expect("write demo_site.rs");
}

/// Regular files under `dir`, skipping hidden entries and symlinks, as
/// (`/`-separated relative path, absolute path).
fn collect(dir: &Path, prefix: &str, files: &mut Vec<(String, PathBuf)>) {
    for entry in fs::read_dir(dir).expect("read demo-site") {
        let entry = entry.expect("read demo-site entry");
        let name = entry
            .file_name()
            .into_string()
            .expect("UTF-8 demo-site names");
        // Hidden files and a manifest left by a manual `publish` are not
        // part of the demo: `peerhost demo` publishes its own.
        if name.starts_with('.') || (prefix.is_empty() && name == "peerhost.json") {
            continue;
        }
        let rel = format!("{prefix}{name}");
        let ty = entry.file_type().expect("file type");
        if ty.is_dir() {
            collect(&entry.path(), &format!("{rel}/"), files);
        } else if ty.is_file() {
            files.push((rel, entry.path()));
        }
    }
}
