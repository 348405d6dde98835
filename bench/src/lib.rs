//! peerhost-bench: the benchmarks and load generators behind
//! `peerhost bench …`, kept out of the product crates so that neither the
//! tracker library nor the command ships a load generator in its API.
//!
//! One module per benchmark, each with its clap `Args` and a `run` that
//! prints figures (and one JSON object on the last line with `--json`):
//! [`tracker_load`] (`bench tracker`), [`ticker`] (`bench ticker`) and
//! [`flash_crowd`] (`bench flash-crowd`, whose `--browsers` visitors are
//! [`browser_crowd`]). [`browser_control`] is the client of the Node script
//! that drives headless Chromium; the end-to-end tests (`peerhost-tests`)
//! use it too.
//!
//! What the benchmarks stand up is the product itself — the demo site, the
//! counting origin, `publish` and `push` from `peerhost-site`, the tracker,
//! the seeder — never a copy of it, so a figure measures what ships. The
//! `peerhost` binary depends on this crate to dispatch `peerhost bench`;
//! this crate depends on nothing of the binary's.

pub mod browser_control;
pub mod browser_crowd;
pub mod flash_crowd;
pub mod ticker;
pub mod tracker_load;
