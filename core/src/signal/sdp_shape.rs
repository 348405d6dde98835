//! The shape an SDP must have to be relayed (by the tracker) or applied
//! (by a client): what [`Sdp::check`](super::Sdp::check) enforces.
//!
//! RFC 8866 §5: an SDP is `type=value` lines, each ending in CRLF, `v=0`
//! first. A peerhost SDP describes one data channel and nothing else. Every
//! browser and webrtc-rs write exactly this (one `m=application` section,
//! CRLF endings); anything else is a hand-made message, and the browser at
//! the other end would otherwise have to cope with it (threat T5):
//!
//! - at most `max_len` bytes;
//! - starts with `v=0` and every line ends with `\r\n` (a bare `\r` or
//!   `\n`, or a last line without its CRLF, is refused);
//! - every line is a lowercase letter, `=`, then text without control
//!   characters (NUL, escapes, bells: nothing below U+0020, nor U+007F);
//! - exactly one `m=` line, and it is `m=application …`;
//! - at most `max_candidates` `a=candidate:` lines.

/// Why `sdp` does not have the shape; `None` if it does.
pub(super) fn shape_error(sdp: &str, max_len: usize, max_candidates: usize) -> Option<String> {
    if sdp.len() > max_len {
        return Some(format!("{} bytes exceed {max_len}", sdp.len()));
    }
    if !sdp.starts_with("v=0\r\n") {
        return Some("does not start with `v=0` and CRLF".into());
    }
    let Some(body) = sdp.strip_suffix("\r\n") else {
        return Some("the last line does not end with CRLF".into());
    };
    let mut media = 0usize;
    let mut candidates = 0usize;
    for (n, line) in body.split("\r\n").enumerate() {
        let at = n + 1;
        let b = line.as_bytes();
        if b.len() < 2 || !b[0].is_ascii_lowercase() || b[1] != b'=' {
            return Some(format!("line {at} is not `x=value`"));
        }
        if line.chars().any(char::is_control) {
            return Some(format!(
                "line {at} holds a control character or a bare CR/LF"
            ));
        }
        if line.starts_with("m=") {
            media += 1;
            if !line.starts_with("m=application ") {
                return Some("media other than a data channel".into());
            }
            if media > 1 {
                return Some("more than one media section".into());
            }
        }
        if line.starts_with("a=candidate:") {
            candidates += 1;
            if candidates > max_candidates {
                return Some(format!("more than {max_candidates} candidates"));
            }
        }
    }
    if media == 0 {
        return Some("no data channel (`m=application`) section".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::shape_error;

    const OK: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
        m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\
        a=candidate:1 1 udp 2122260223 192.0.2.1 50000 typ host\r\n";

    fn err(sdp: &str) -> String {
        shape_error(sdp, 8192, 16).unwrap_or_else(|| panic!("accepted {sdp:?}"))
    }

    #[test]
    fn a_browser_shaped_sdp_passes() {
        assert_eq!(shape_error(OK, 8192, 16), None);
    }

    #[test]
    fn line_endings_must_be_crlf() {
        assert!(err(&OK.replace("\r\n", "\n")).contains("CRLF"));
        assert!(err(&OK.replacen("s=-\r\n", "s=-\n", 1)).contains("control"));
        assert!(err(&OK.replacen("s=-\r\n", "s=-\r", 1)).contains("control"));
        assert!(err(OK.strip_suffix("\r\n").unwrap()).contains("CRLF"));
    }

    #[test]
    fn lines_must_be_type_equals_value_without_controls() {
        assert!(err(&OK.replacen("s=-", "S=-", 1)).contains("x=value"));
        assert!(err(&OK.replacen("s=-", "", 1)).contains("x=value"));
        assert!(err(&OK.replacen("s=-", "s=\u{1b}[2J", 1)).contains("control"));
        assert!(err(&OK.replacen("s=-", "s=\0", 1)).contains("control"));
    }

    #[test]
    fn exactly_one_data_channel_section() {
        let two = format!("{OK}m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n");
        assert!(err(&two).contains("more than one"));
        assert!(err(&OK.replace("m=application", "m=audio")).contains("data channel"));
        assert!(err("v=0\r\ns=-\r\n").contains("no data channel"));
    }

    #[test]
    fn size_and_candidates_are_bounded() {
        assert!(shape_error(OK, 20, 16).is_some());
        let flood = format!(
            "{OK}{}",
            "a=candidate:1 1 udp 1 192.0.2.1 5 typ host\r\n".repeat(16)
        );
        assert!(err(&flood).contains("candidates"));
    }
}
