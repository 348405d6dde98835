//! The browser's path to `peerhost.json`: a [`JsonValue`] of any shape —
//! built from the bytes, or, when the first byte is `{`, parsed from the
//! text as `JSON.parse` would — decodes with `SignedManifest::from_value`
//! to a manifest or an error, and a decoded manifest survives `to_value`,
//! `to_json` and the wire encoding.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peerhost_core::manifest::SignedManifest;
use peerhost_fuzz::{Bytes, json_text, json_tree};

fuzz_target!(|data: &[u8]| {
    let value = if data.first() == Some(&b'{') {
        match std::str::from_utf8(data).ok().and_then(json_text::parse) {
            Some((value, _)) => value,
            None => return,
        }
    } else {
        json_tree::value(&mut Bytes::new(data))
    };
    if let Ok(signed) = SignedManifest::from_value(&value) {
        assert_eq!(
            SignedManifest::from_value(&signed.to_value()).as_ref(),
            Ok(&signed)
        );
        assert_eq!(
            SignedManifest::from_json(&signed.to_json()).as_ref(),
            Ok(&signed)
        );
        assert_eq!(
            SignedManifest::from_bytes(&signed.to_bytes()).as_ref(),
            Ok(&signed)
        );
    }
});
