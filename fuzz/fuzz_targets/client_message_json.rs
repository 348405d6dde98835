//! Client → tracker JSON, as the tracker parses every message a stranger
//! sends: any text parses to a message or an error; a parsed message
//! survives its own encoding; and the browser's path (`JSON.parse`, then
//! `from_value`) makes the same decision and the same value wherever the
//! two are documented to agree (no repeated keys, numbers within f64).

#![no_main]

use libfuzzer_sys::fuzz_target;
use peerhost_core::signal::{ClientMessage, SignalError};
use peerhost_fuzz::json_text;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = ClientMessage::from_json(text);
    if let Ok(msg) = &parsed {
        assert_eq!(
            ClientMessage::from_json(&msg.to_json()).as_ref(),
            Ok(msg),
            "to_json does not round trip"
        );
        assert_eq!(
            ClientMessage::from_value(&msg.to_value()).as_ref(),
            Ok(msg),
            "to_value does not round trip"
        );
    }
    if let Some((value, false)) = json_text::parse(text) {
        let browser = ClientMessage::from_value(&value);
        match (&parsed, &browser) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "codecs decode {text:?} differently"),
            (Err(SignalError::Malformed(_)), Err(SignalError::Malformed(_))) => {}
            (a, b) => assert_eq!(a, b, "codecs disagree on {text:?}"),
        }
    }
});
