//! The link model: each peer's access (bandwidth and latency), the FIFO
//! pipes of its uplink and downlink, the ordered data channels between two
//! peers, and the fake SDP that names a channel's far end.

use peerhost_core::scheduler::ConnId;
use peerhost_core::signal::Sdp;
use peerhost_core::wire::Frame;

/// One peer's access to the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Uplink, bytes per second.
    pub up_bytes_per_s: u64,
    /// Downlink, bytes per second (`u64::MAX`: not a bottleneck).
    pub down_bytes_per_s: u64,
    /// One-way latency to the middle of the network; a link's latency is
    /// the sum of both ends'.
    pub latency_ms: u64,
}

/// A FIFO pipe of fixed rate: what enters waits for what entered before.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pipe {
    bytes_per_s: u64,
    /// When the pipe has carried everything given so far, microseconds.
    free_us: u64,
}

impl Pipe {
    pub(super) fn new(bytes_per_s: u64) -> Pipe {
        Pipe {
            bytes_per_s,
            free_us: 0,
        }
    }

    /// Carries `bytes` that reach the pipe at `from_us`; returns when the
    /// last byte has left it.
    pub(super) fn carry(&mut self, from_us: u64, bytes: u64) -> u64 {
        let start = self.free_us.max(from_us);
        self.free_us = start + bytes * 1_000_000 / self.bytes_per_s.max(1);
        self.free_us
    }
}

/// One end of a data channel.
#[derive(Debug)]
pub(super) struct Link {
    pub(super) conn: ConnId,
    pub(super) peer: u32,
    pub(super) peer_conn: ConnId,
    /// Latest arrival scheduled on this channel, in microseconds: the
    /// channel is ordered, so nothing sent later may overtake it.
    pub(super) last_arrival_us: u64,
    /// The connection will never open (NAT traversal fails).
    pub(super) nat_fails: bool,
}

/// A peer's place in the network: its access and its channels.
#[derive(Debug)]
pub(super) struct Endpoint {
    pub(super) access: Access,
    pub(super) up: Pipe,
    pub(super) down: Pipe,
    pub(super) links: Vec<Link>,
    /// Removed from the network: its tracker socket is closed.
    pub(super) gone: bool,
}

impl Endpoint {
    pub(super) fn new(access: Access) -> Endpoint {
        Endpoint {
            access,
            up: Pipe::new(access.up_bytes_per_s),
            down: Pipe::new(access.down_bytes_per_s),
            links: Vec::new(),
            gone: false,
        }
    }

    pub(super) fn link(&self, conn: ConnId) -> Option<&Link> {
        self.links.iter().find(|l| l.conn == conn)
    }

    pub(super) fn link_mut(&mut self, conn: ConnId) -> Option<&mut Link> {
        self.links.iter_mut().find(|l| l.conn == conn)
    }

    /// Adds (or replaces) the channel `conn` to `peer`'s `peer_conn`.
    pub(super) fn add_link(&mut self, conn: ConnId, peer: u32, peer_conn: ConnId, nat_fails: bool) {
        self.links.retain(|l| l.conn != conn);
        self.links.push(Link {
            conn,
            peer,
            peer_conn,
            last_arrival_us: 0,
            nat_fails,
        });
    }

    /// Removes the channel `conn`; whether it was there.
    pub(super) fn remove_link(&mut self, conn: ConnId) -> bool {
        let before = self.links.len();
        self.links.retain(|l| l.conn != conn);
        self.links.len() < before
    }
}

/// The fake SDP of `node`'s connection `conn`. Shaped like a browser's
/// data-channel SDP, so a real tracker's check accepts it too (the ticker
/// bench relays it through one); the ICE ufrag `n<node>c<conn>` names the
/// endpoint. Real SDP is opaque to the core too.
pub(super) fn sdp_offer(node: u32, conn: ConnId) -> Sdp {
    Sdp::offer(fake_sdp(Setup::Offer, node, conn))
}

/// The fake SDP answer of `node`'s connection `conn`.
pub(super) fn sdp_answer(node: u32, conn: ConnId) -> Sdp {
    Sdp::answer(fake_sdp(Setup::Answer, node, conn))
}

/// Which side of the DTLS handshake an SDP describes (`a=setup:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Setup {
    /// An offer: `actpass`.
    Offer,
    /// An answer: `active`.
    Answer,
}

fn fake_sdp(setup: Setup, node: u32, conn: ConnId) -> String {
    let role = match setup {
        Setup::Offer => "actpass",
        Setup::Answer => "active",
    };
    format!(
        "v=0\r\no=- {node} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
         m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n\
         a=ice-ufrag:n{node}c{}\r\na=setup:{role}\r\n\
         a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host\r\n",
        conn.0
    )
}

/// The node and connection a fake SDP of that `setup` names; `None` for
/// anything else. Strict: only the exact text [`sdp_offer`] or
/// [`sdp_answer`] makes is ours.
pub(super) fn parse_sdp(s: &str, setup: Setup) -> Option<(u32, ConnId)> {
    let ufrag = s.split_once("\r\na=ice-ufrag:n")?.1.split_once("\r\n")?.0;
    let (node, conn) = ufrag.split_once('c')?;
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if !digits(node) || !digits(conn) {
        return None;
    }
    let (node, conn) = (node.parse().ok()?, ConnId(conn.parse().ok()?));
    (s == fake_sdp(setup, node, conn)).then_some((node, conn))
}

/// Bytes a frame takes on the wire (what `Frame::encode` would produce),
/// without encoding it.
pub(super) fn wire_len(frame: &Frame) -> u64 {
    (match frame {
        Frame::Handshake { have, .. } => 55 + have.len(),
        Frame::Piece { data, .. } => 5 + data.len(),
        Frame::ManifestOffer { chunk, .. } => 17 + chunk.len(),
        _ => 5,
    }) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_queues_in_order() {
        let mut p = Pipe::new(1_000_000); // 1 byte per microsecond
        assert_eq!(p.carry(0, 100), 100);
        assert_eq!(p.carry(50, 100), 200, "waits behind the first");
        assert_eq!(p.carry(1_000, 10), 1_010, "an idle pipe starts at once");
    }

    #[test]
    fn fake_sdp_round_trips_and_rejects_strangers() {
        let offer = sdp_offer(7, ConnId(3)).sdp;
        assert_eq!(parse_sdp(&offer, Setup::Offer), Some((7, ConnId(3))));
        let answer = sdp_answer(u32::MAX, ConnId(u64::MAX)).sdp;
        assert_eq!(
            parse_sdp(&answer, Setup::Answer),
            Some((u32::MAX, ConnId(u64::MAX)))
        );
        assert_eq!(parse_sdp(&offer, Setup::Answer), None, "wrong side");
        assert_eq!(parse_sdp(&answer, Setup::Offer), None, "wrong side");
        assert_eq!(parse_sdp("7:3", Setup::Offer), None, "the old shape");
        assert_eq!(parse_sdp("v=0 a real one", Setup::Offer), None);
        for bad in [
            offer.replace("n7c3", "n+7c3"),
            offer.replace("n7c3", "n07c3"),
            offer.replace("n7c3", "n7c"),
            offer.replace("n7c3", "n99999999999c3"),
            offer.replace("o=- 7", "o=- 8"),
            format!("{offer}a=extra\r\n"),
            offer[..offer.len() - 2].to_owned(),
        ] {
            assert_eq!(parse_sdp(&bad, Setup::Offer), None, "{bad:?}");
        }
    }

    #[test]
    fn fake_sdp_passes_a_real_trackers_check() {
        use peerhost_core::signal::{MAX_SDP_CANDIDATES, MAX_SDP_LEN};
        for sdp in [
            sdp_offer(u32::MAX, ConnId(u64::MAX)),
            sdp_answer(0, ConnId(0)),
        ] {
            assert_eq!(sdp.check(MAX_SDP_LEN, MAX_SDP_CANDIDATES), Ok(()));
            assert!(sdp.sdp.starts_with("v=0\r\n"));
            assert!(sdp.sdp.contains("\r\nm=application "));
        }
    }
}
