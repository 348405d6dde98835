//! peerhost-core: the sans-IO heart of peerhost.
//!
//! No sockets, no async, no clock and no hidden randomness: drivers (the
//! browser client, the native seeder, the simulator) feed events and bytes
//! in and poll actions out. Time and random seeds are parameters.
//!
//! - [`manifest`]: the site's signed table of contents and the guard that
//!   refuses rollbacks.
//! - [`piece`]: piece arithmetic and SHA-256 verification.
//! - [`wire`]: the `peerhost/1` data-channel protocol (its doc is the spec).
//! - [`codec`]: the bounds-checked reader all decoders use.
//! - [`time`]: driver-supplied clocks.

pub mod codec;
pub mod manifest;
pub mod piece;
pub mod time;
pub mod wire;
