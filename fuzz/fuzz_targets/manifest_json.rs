//! `peerhost.json`: any text parses to a manifest or an error, and a parsed
//! manifest survives the wire encoding.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peerhost_core::manifest::SignedManifest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(signed) = SignedManifest::from_json(text) {
        assert_eq!(
            SignedManifest::from_bytes(&signed.to_bytes()),
            Ok(signed),
            "a manifest from JSON does not round trip through bytes"
        );
    }
});
