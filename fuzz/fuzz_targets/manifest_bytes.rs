//! Signed manifests on the wire: any bytes decode to a manifest or an
//! error, and a decoded manifest has exactly one encoding, its input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peerhost_core::manifest::SignedManifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(signed) = SignedManifest::from_bytes(data) {
        assert_eq!(signed.to_bytes(), data, "decoding is not canonical");
    }
});
