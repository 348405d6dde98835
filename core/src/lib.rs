//! peerhost-core: the sans-IO heart of peerhost.
//!
//! No sockets, no async, no clock and no hidden randomness: drivers (the
//! browser client, the native seeder, the simulator) feed events and bytes
//! in and poll actions out. Time and random seeds are parameters.
//!
//! - [`client`]: one visitor or seeder — the only type drivers talk to; its
//!   doc describes the driver loop.
//! - [`manifest`]: the site's signed table of contents and the guard that
//!   refuses rollbacks.
//! - [`piece`]: piece arithmetic and SHA-256 verification.
//! - [`wire`]: the `peerhost/1` data-channel protocol (its doc is the spec).
//! - [`signal`]: the WebTorrent tracker dialect spoken with the tracker.
//! - [`scheduler`]: what to fetch from whom, deadlines, origin fallback.
//! - [`upload`]: the visitor's upload budget.
//! - [`codec`], [`rng`], [`time`]: bounds-checked decoding, seeded
//!   randomness, driver-supplied clocks.
//! - [`json`]: JSON values parsed by the driver (the browser's
//!   `JSON.parse`), so the browser build needs no JSON parser.

pub mod client;
pub mod codec;
pub mod ice;
pub mod json;
pub mod manifest;
pub mod piece;
pub mod rng;
pub mod scheduler;
pub mod signal;
pub mod time;
pub mod upload;
pub mod vec_map;
pub mod wire;
