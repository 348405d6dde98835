//! The built-in STUN responder (RFC 8489 Binding only): tells a client the
//! address and port its UDP packets arrive from, so a browser behind a NAT
//! learns its server-reflexive candidate without a third-party server.
//!
//! Off by default; `peerhost tracker --stun ADDR` (or `stun.listen`) turns
//! it on. It keeps no state: each datagram is decoded with webrtc-rs's
//! `rtc-stun` codec, and a well-formed Binding request gets one success
//! response with XOR-MAPPED-ADDRESS (and FINGERPRINT); anything else is
//! dropped unanswered. A response is at most 44 bytes for a request of at
//! least 20, so a spoofed source gains little as a reflector.

use std::net::SocketAddr;

use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::message::{BINDING_REQUEST, BINDING_SUCCESS, MESSAGE_HEADER_SIZE, Message, Setter};
use rtc_stun::xoraddr::XorMappedAddress;
use tokio::net::UdpSocket;

use crate::server::AppState;

/// Largest datagram looked at; longer ones arrive truncated and are
/// dropped (a Binding request is 20 bytes plus a few attributes).
pub const MAX_STUN_DATAGRAM: usize = 1500;

/// The response to one datagram from `from`, or `None` when it is not a
/// well-formed STUN Binding request. Total: any bytes, no panic.
pub fn binding_response(packet: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    // RFC 8489 §5: the two top bits are zero, the length covers exactly
    // the rest of the datagram and is a multiple of 4. `rtc-stun` checks
    // the magic cookie and every attribute's bounds.
    if packet.len() < MESSAGE_HEADER_SIZE || packet[0] & 0xC0 != 0 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if len % 4 != 0 || packet.len() != MESSAGE_HEADER_SIZE + len {
        return None;
    }
    let mut request = Message::new();
    request.unmarshal_binary(packet).ok()?;
    if request.typ != BINDING_REQUEST {
        return None;
    }
    let mapped = XorMappedAddress {
        ip: from.ip().to_canonical(),
        port: from.port(),
    };
    let mut response = Message::new();
    let setters: [Box<dyn Setter>; 4] = [
        Box::new(BINDING_SUCCESS),
        Box::new(request.transaction_id),
        Box::new(mapped),
        Box::new(FINGERPRINT),
    ];
    response.build(&setters).ok()?;
    Some(response.raw)
}

/// Answers Binding requests on `socket` until the tracker shuts down,
/// counting answered and ignored datagrams.
pub async fn serve_stun(socket: UdpSocket, state: AppState) {
    let mut buf = vec![0u8; MAX_STUN_DATAGRAM];
    let mut stop = state.shutdown_watch();
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = stop.changed() => return,
        };
        let (n, from) = match received {
            Ok(x) => x,
            // ICMP errors of earlier sends surface here on some systems.
            Err(e) => {
                tracing::debug!(error = %e, "stun recv");
                continue;
            }
        };
        match binding_response(&buf[..n], from) {
            Some(resp) => {
                if let Err(e) = socket.send_to(&resp, from).await {
                    tracing::debug!(error = %e, "stun send");
                }
                state.metrics().stun_answered();
            }
            None => state.metrics().stun_ignored(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_stun::message::{Getter, TransactionId};

    fn request() -> Vec<u8> {
        let mut m = Message::new();
        let setters: [Box<dyn Setter>; 2] =
            [Box::new(BINDING_REQUEST), Box::new(TransactionId([7; 12]))];
        m.build(&setters).unwrap();
        m.raw
    }

    #[test]
    fn binding_request_gets_its_source_back() {
        let from: SocketAddr = "198.51.100.7:40000".parse().unwrap();
        let resp = binding_response(&request(), from).unwrap();
        let mut m = Message::new();
        m.unmarshal_binary(&resp).unwrap();
        assert_eq!(m.typ, BINDING_SUCCESS);
        assert_eq!(m.transaction_id, TransactionId([7; 12]));
        let mut got = XorMappedAddress::default();
        got.get_from(&m).unwrap();
        assert_eq!(SocketAddr::new(got.ip, got.port), from);
    }

    #[test]
    fn v4_mapped_sources_are_reported_as_v4() {
        let from: SocketAddr = "[::ffff:198.51.100.7]:1".parse().unwrap();
        let mut m = Message::new();
        m.unmarshal_binary(&binding_response(&request(), from).unwrap())
            .unwrap();
        let mut got = XorMappedAddress::default();
        got.get_from(&m).unwrap();
        assert_eq!(got.ip, "198.51.100.7".parse::<std::net::IpAddr>().unwrap());
    }

    #[test]
    fn garbage_and_other_messages_get_no_answer() {
        let from: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let good = request();
        assert!(binding_response(&[], from).is_none());
        assert!(binding_response(b"GET / HTTP/1.1\r\n\r\n", from).is_none());
        assert!(binding_response(&[0xFF; 20], from).is_none());
        // Truncated, trailing byte, wrong cookie.
        assert!(binding_response(&good[..good.len() - 1], from).is_none());
        let mut longer = good.clone();
        longer.push(0);
        assert!(binding_response(&longer, from).is_none());
        let mut cookie = good.clone();
        cookie[4] ^= 1;
        assert!(binding_response(&cookie, from).is_none());
        // A response is not a request.
        let resp = binding_response(&good, from).unwrap();
        assert!(binding_response(&resp, from).is_none());
        // An attribute claiming more bytes than the message has.
        let mut bad_attr = good[..20].to_vec();
        bad_attr[3] = 8;
        bad_attr.extend_from_slice(&[0x80, 0x22, 0x00, 0xFF, 0, 0, 0, 0]);
        assert!(binding_response(&bad_attr, from).is_none());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let from: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut base = request();
        for round in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x as usize) % base.len();
            base[i] ^= (x >> 32) as u8;
            if round % 97 == 0 {
                base.extend_from_slice(&x.to_be_bytes()[..4]);
            }
            let _ = binding_response(&base, from);
        }
    }
}
