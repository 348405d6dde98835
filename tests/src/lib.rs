//! Shared helpers for peerhost's cross-crate and end-to-end tests.
//!
//! - [`browser`]: real headless Chromium and Firefox visitors (each its own process and
//!   profile) driven over a line protocol.
//! - [`check`]: assertions on what a page received.
//! - [`mixed`]: a swarm of Chromium and Firefox visitors.
//! - [`nat`]: the demo on a simulated internet, visitors behind NATs,
//!   and which ICE candidates their connections used.
//! - [`seeder`]: a native seeder of the demo site.
//! - [`server`]: the `peerhost demo` server (origin with byte counters,
//!   tracker, browser client files) on 127.0.0.1, run on its own thread.
//! - [`visit`]: visits several tests make.
//! - [`worker`]: what the Service Worker kept and which workers are registered.
//! - [`ws_recorder`]: a recording WebSocket proxy in front of the tracker.

pub mod browser;
pub mod check;
pub mod mixed;
pub mod nat;
pub mod seeder;
pub mod server;
pub mod visit;
pub mod worker;
pub mod ws_recorder;
