//! The browser's path into the tracker dialect: a [`JsonValue`] of any
//! shape (built from the bytes, as `JSON.parse` could hand one over: NaN,
//! infinities, repeated keys, any root) decodes with
//! `ClientMessage::from_value` / `ServerMessage::from_value` to a message
//! or an error, and a decoded message survives `to_value` and `to_json`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peerhost_core::signal::{ClientMessage, ServerMessage};
use peerhost_fuzz::{Bytes, json_tree};

fuzz_target!(|data: &[u8]| {
    let value = json_tree::value(&mut Bytes::new(data));
    if let Ok(msg) = ClientMessage::from_value(&value) {
        assert_eq!(
            ClientMessage::from_value(&msg.to_value()).as_ref(),
            Ok(&msg)
        );
        assert_eq!(ClientMessage::from_json(&msg.to_json()).as_ref(), Ok(&msg));
    }
    if let Ok(msg) = ServerMessage::from_value(&value) {
        assert_eq!(
            ServerMessage::from_value(&msg.to_value()).as_ref(),
            Ok(&msg)
        );
        assert_eq!(ServerMessage::from_json(&msg.to_json()).as_ref(), Ok(&msg));
    }
});
