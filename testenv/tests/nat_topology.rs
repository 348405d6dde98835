//! The simulated internet itself: a home reaches a public server through
//! its router's NAT, the NAT kinds behave as named, and the "drop UDP
//! between homes" rule does what the relay tests rely on. Each test drives
//! `udp_probe` (a UDP socket over stdin/stdout) inside a home and plain
//! sockets on the public address. Absence is checked with a marker sent
//! after the datagram that must not arrive, on the same path.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use peerhost_testenv::topology::{Home, NatKind, Topology, TopologyOptions};

const LIMIT: Duration = Duration::from_secs(10);

fn topology(test: &str, options: TopologyOptions) -> Option<Topology> {
    if !peerhost_testenv::netns_or_skip(test, "NAT topology tests") {
        return None;
    }
    Some(Topology::build(options).unwrap_or_else(|e| panic!("{e}")))
}

/// `udp_probe` running in a home.
struct Probe {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    /// Its socket's LAN address.
    bound: SocketAddr,
}

impl Probe {
    fn start(home: &Home) -> Probe {
        let mut child = home
            .command(env!("CARGO_BIN_EXE_udp_probe"))
            .arg("0.0.0.0:0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start udp_probe in the home");
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines.recv_timeout(LIMIT).expect("udp_probe starts");
        let bound = first
            .strip_prefix("bound ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("udp_probe said {first:?}"));
        Probe {
            child,
            stdin,
            lines,
            bound,
        }
    }

    fn send(&mut self, to: SocketAddr, text: &str) {
        writeln!(self.stdin, "send {to} {text}").expect("udp_probe alive");
    }

    /// Every datagram received up to and including the first whose text is
    /// `text` (bounded); as `(from, text)`.
    fn until(&mut self, text: &str) -> Vec<(SocketAddr, String)> {
        let until = Instant::now() + LIMIT;
        let mut got = Vec::new();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {text:?} within {LIMIT:?}; got {got:?}"));
            let Some(rest) = line.strip_prefix("recv ") else {
                continue;
            };
            let (from, body) = rest.split_once(' ').expect("recv FROM TEXT");
            got.push((from.parse().expect("address"), body.to_owned()));
            if body == text {
                return got;
            }
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A socket on the public address.
fn public_socket(topology: &Topology) -> UdpSocket {
    let s = UdpSocket::bind((topology.public_ip(), 0)).expect("bind on the public address");
    s.set_read_timeout(Some(LIMIT)).expect("timeout");
    s
}

/// Receives one datagram on `socket`: (sender, text).
fn receive(socket: &UdpSocket) -> (SocketAddr, String) {
    let mut buf = [0u8; 1500];
    let (n, from) = socket
        .recv_from(&mut buf)
        .expect("a datagram within the limit");
    (from, String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn home_reaches_a_public_server_as_its_routers_wan_address() {
    let Some(topology) = topology(
        "home_reaches_a_public_server_as_its_routers_wan_address",
        TopologyOptions {
            homes: 1,
            ..Default::default()
        },
    ) else {
        return;
    };
    let home = topology.home(0);
    let echo = public_socket(&topology);
    let mut probe = Probe::start(home);
    probe.send(echo.local_addr().unwrap(), "ping");
    let (seen, text) = receive(&echo);
    assert_eq!(text, "ping");
    assert_eq!(
        seen.ip(),
        home.wan_ip(),
        "the server sees the router's WAN address, not the home's {}",
        home.ip()
    );
    echo.send_to(b"pong", seen).unwrap();
    let got = probe.until("pong");
    assert_eq!(got.last().unwrap().0, echo.local_addr().unwrap());
}

#[test]
fn port_restricted_nat_admits_only_whom_the_home_has_sent_to() {
    let Some(topology) = topology(
        "port_restricted_nat_admits_only_whom_the_home_has_sent_to",
        TopologyOptions {
            homes: 1,
            nat: NatKind::PortRestricted,
            ..Default::default()
        },
    ) else {
        return;
    };
    let (s1, s2, s3) = (
        public_socket(&topology),
        public_socket(&topology),
        public_socket(&topology),
    );
    let mut probe = Probe::start(topology.home(0));
    probe.send(s1.local_addr().unwrap(), "open");
    let (mapped, _) = receive(&s1);
    assert_eq!(
        mapped.port(),
        probe.bound.port(),
        "masquerade keeps the port when it is free"
    );

    // Unsolicited from s2 to the mapped port, then a marker from s1 on the
    // same path: the marker arrives, the unsolicited datagram never did.
    s2.send_to(b"unsolicited", mapped).unwrap();
    s1.send_to(b"marker", mapped).unwrap();
    let got = probe.until("marker");
    assert_eq!(got.len(), 1, "only the marker came in: {got:?}");

    // Endpoint-independent mapping: a third server sees the same address.
    probe.send(s3.local_addr().unwrap(), "again");
    assert_eq!(receive(&s3).0, mapped, "one mapping for every destination");

    // Once the home has sent to s2, s2's answers come in.
    probe.send(s2.local_addr().unwrap(), "hello");
    let (seen_by_s2, _) = receive(&s2);
    s2.send_to(b"welcome", seen_by_s2).unwrap();
    let got = probe.until("welcome");
    assert_eq!(got.last().unwrap().0, s2.local_addr().unwrap());
}

#[test]
fn symmetric_nat_maps_two_destinations_to_different_ports() {
    let Some(topology) = topology(
        "symmetric_nat_maps_two_destinations_to_different_ports",
        TopologyOptions {
            homes: 1,
            nat: NatKind::Symmetric,
            ..Default::default()
        },
    ) else {
        return;
    };
    let (s1, s2) = (public_socket(&topology), public_socket(&topology));
    let mut probe = Probe::start(topology.home(0));
    probe.send(s1.local_addr().unwrap(), "one");
    probe.send(s2.local_addr().unwrap(), "two");
    let (a, b) = (receive(&s1).0, receive(&s2).0);
    let wan = topology.home(0).wan_ip();
    assert_eq!((a.ip(), b.ip()), (wan.into(), wan.into()));
    assert_ne!(
        a.port(),
        b.port(),
        "one socket, two destinations, two public ports"
    );
}

/// Two homes learn their mappings from a public server, then punch a hole
/// to each other (two rounds of both sending, each ended by a round trip
/// to the server). The server then sends each home a marker on its open mapping;
/// returns the home-to-home datagrams each got before its marker.
fn hole_punch(topology: &Topology) -> (Vec<String>, Vec<String>) {
    let server = public_socket(topology);
    let to_server = server.local_addr().unwrap();
    let (mut a, mut b) = (
        Probe::start(topology.home(0)),
        Probe::start(topology.home(1)),
    );
    a.send(to_server, "who am i");
    let (a_public, _) = receive(&server);
    b.send(to_server, "who am i");
    let (b_public, _) = receive(&server);
    for round in 1..=2 {
        a.send(b_public, &format!("a{round}"));
        b.send(a_public, &format!("b{round}"));
        // Each probe handles its input in order: its "sent" follows its
        // datagram, so both have sent before the next round.
        a.send(to_server, "sent");
        b.send(to_server, "sent");
        for _ in 0..2 {
            assert_eq!(receive(&server).1, "sent");
        }
    }
    server.send_to(b"marker", a_public).unwrap();
    server.send_to(b"marker", b_public).unwrap();
    let before_marker = |got: Vec<(SocketAddr, String)>| -> Vec<String> {
        got.into_iter()
            .map(|(_, t)| t)
            .filter(|t| t != "marker")
            .collect()
    };
    (
        before_marker(a.until("marker")),
        before_marker(b.until("marker")),
    )
}

#[test]
fn homes_punch_a_hole_unless_udp_between_them_is_dropped() {
    let Some(open) = topology(
        "homes_punch_a_hole_unless_udp_between_them_is_dropped",
        TopologyOptions::default(),
    ) else {
        return;
    };
    let blocked = Topology::build(TopologyOptions {
        drop_udp_between_homes: true,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(
        open.public_ip(),
        blocked.public_ip(),
        "two topologies at once get different blocks"
    );

    // Control: two port-restricted NATs let a punched hole through.
    let (to_a, to_b) = hole_punch(&open);
    assert!(
        !to_a.is_empty() && !to_b.is_empty(),
        "hole punching works between two port-restricted NATs: a got {to_a:?}, b got {to_b:?}"
    );
    assert_eq!(open.dropped_udp_between_homes().unwrap(), 0);

    // With the drop rule nothing passes, and the rule counted every try.
    let (to_a, to_b) = hole_punch(&blocked);
    assert!(
        to_a.is_empty() && to_b.is_empty(),
        "no UDP between the homes: a got {to_a:?}, b got {to_b:?}"
    );
    assert_eq!(
        blocked.dropped_udp_between_homes().unwrap(),
        4,
        "the rule dropped the four datagrams the homes sent each other"
    );
}
