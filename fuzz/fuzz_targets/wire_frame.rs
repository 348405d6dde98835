//! `peerhost/1` frames: any bytes decode to a frame or an error, and a
//! decoded frame re-encodes to exactly its input and decodes to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peerhost_core::wire::Frame;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::decode(data) {
        let bytes = frame.encode();
        assert_eq!(bytes, data, "decoding is not canonical");
        assert_eq!(Frame::decode(&bytes), Ok(frame));
    }
});
