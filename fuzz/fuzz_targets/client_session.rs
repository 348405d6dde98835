//! One client, many inputs: a script decoded from the bytes feeds a
//! `Client` peer frames, tracker messages, manifests, timeouts, channel
//! events, page requests and origin answers, and checks its outputs after
//! each (see `peerhost_fuzz::session` for the invariants).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| peerhost_fuzz::session::run(data));
