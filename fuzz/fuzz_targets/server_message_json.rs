//! Tracker → client JSON, as native clients (seeder, CLI) parse whatever
//! the tracker sends: any text parses to a message or an error; a parsed
//! message survives its own encoding; and the browser's path (`JSON.parse`,
//! then `from_value`) makes the same decision and the same value wherever
//! the two are documented to agree (no repeated keys, numbers within f64).

#![no_main]

use libfuzzer_sys::fuzz_target;
use peerhost_core::signal::{ServerMessage, SignalError};
use peerhost_fuzz::json_text;

/// Scrape files are a JSON object: its order is not part of the message.
fn sorted(m: ServerMessage) -> ServerMessage {
    match m {
        ServerMessage::ScrapeResponse { mut files } => {
            files.sort_by_key(|(h, _)| *h);
            ServerMessage::ScrapeResponse { files }
        }
        other => other,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = ServerMessage::from_json(text).map(sorted);
    if let Ok(msg) = &parsed {
        assert_eq!(
            ServerMessage::from_json(&msg.to_json())
                .map(sorted)
                .as_ref(),
            Ok(msg),
            "to_json does not round trip"
        );
        assert_eq!(
            ServerMessage::from_value(&msg.to_value())
                .map(sorted)
                .as_ref(),
            Ok(msg),
            "to_value does not round trip"
        );
    }
    if let Some((value, false)) = json_text::parse(text) {
        let browser = ServerMessage::from_value(&value).map(sorted);
        match (&parsed, &browser) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "codecs decode {text:?} differently"),
            (Err(SignalError::Malformed(_)), Err(SignalError::Malformed(_))) => {}
            (a, b) => assert_eq!(a, b, "codecs disagree on {text:?}"),
        }
    }
});
