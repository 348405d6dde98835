//! peerhost-site: the site owner's side of peerhost, as a library — create
//! a site key, publish a directory (sign its manifest), verify it, push the
//! manifest to the tracker, serve it from a counting origin, and the
//! built-in demo that puts all of it on one address.
//!
//! One module per `peerhost` subcommand ([`keygen`], [`publish`],
//! [`verify`], [`push`], [`demo`]), each with its clap `Args` and a `run`
//! (as `peerhost_tracker::cli` and `peerhost_seeder::cli` hold theirs), plus
//! what they share: the key-file format ([`keyfile`]), the counting
//! static-file server ([`origin`]), atomic writes ([`fsutil`]), the wall
//! clock ([`clock`]) and human-readable figures ([`fmt`]). Library
//! functions return typed errors; only the `run` functions use `anyhow`.
//!
//! Why a crate of its own: the benchmarks (`peerhost-bench`) and the
//! end-to-end tests (`peerhost-tests`) build on these parts — a published
//! demo site, the counting origin, `publish`, `push` — and the `peerhost`
//! binary dispatches to the benchmarks. Were the parts in the binary's
//! crate, the benchmarks would depend on the binary that depends on them.
//! The counting origin is product code (`peerhost demo` serves the site
//! from it), so it lives with the demo rather than being copied into the
//! benchmarks. Arrows: `peerhost` → `peerhost-bench` → `peerhost-site` →
//! `peerhost-tracker`, `peerhost-core`.

pub mod clock;
pub mod demo;
pub mod fmt;
pub mod fsutil;
pub mod keyfile;
pub mod keygen;
pub mod origin;
pub mod publish;
pub mod push;
pub mod scan;
pub mod verify;
