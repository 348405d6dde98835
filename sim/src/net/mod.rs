//! The in-memory network every in-process driver of the core shares: a
//! virtual clock and event calendar, links with latency, loss and
//! bandwidth (`link.rs`), a relay tracker (`tracker.rs`), fake SDP, an origin
//! pipe, and the routing of frames between clients.
//!
//! # What a driver provides and gets
//! A driver owns the [`Client`]s (one per node, indexed from 0 in the order
//! of [`Net::add_node`]) and everything that is not the network: who they
//! are, what the origin serves, how hash jobs are answered, what is
//! measured. Its loop:
//!
//! ```text
//! while let Some(t) = net.next_instant() {      // stop when you like
//!     net.begin();                              // the clock moves to t
//!     while let Some(step) = net.pop() {
//!         match step {
//!             Step::Client(i, input) => client i.handle_input(net.now(), input),
//!             Step::Driver(ev) => your own event (a timer, an arrival, …),
//!         }
//!         drain client i: for each output,
//!             net.route(i, output) → None if it was the network's
//!             (tracker message, offer/answer, frame, close),
//!             Some(output) for you (origin fetch, delivery, hash job, …)
//!     }
//! }
//! ```
//!
//! - **Provides**: each node's [`Access`] (bandwidth, latency), a
//!   [`NetConfig`], the seeded [`Rng`] (the network draws loss, NAT failure
//!   and the tracker's picks from it, in event order, and the driver may
//!   draw from it too: one stream, one run per seed), the outputs of its
//!   clients, origin answers ([`Net::fetch_origin`]: the driver says what
//!   the origin answers, the network says when it arrives), and its own
//!   events ([`Net::schedule`]).
//! - **Gets**: [`Input`]s for its clients at the right virtual time,
//!   which [`feed`] turns into the client's input calls; [`Net::now`]; the
//!   event count and the origin's byte count.
//!
//! A driver may keep any part for itself by taking the output before
//! [`Net::route`]: the simulator alters what hostile peers send and then
//! calls [`Net::send`]; a driver with a real tracker (the ticker bench)
//! takes [`Output::Tracker`] and feeds [`Input::Tracker`] when the
//! socket answers — the fake SDP it relays still joins the right channels.
//! A driver with its own timers moves the clock with [`Net::advance_to`].
//!
//! # Model
//! - A message occupies the sender's uplink, then the receiver's downlink
//!   (FIFO pipes, [`MESSAGE_OVERHEAD`] bytes per message on top of the
//!   frame), then arrives after the link latency (the sum of both ends'
//!   access latency). With probability [`NetConfig::loss`] it is lost once
//!   and retransmitted one timeout later; a channel is ordered, so nothing
//!   overtakes it.
//! - An offer or answer takes [`SDP_MS`] to create. The fake SDP is shaped
//!   like a browser's data-channel SDP (a real tracker's check accepts it)
//!   and names the node and connection in its ICE ufrag; only the exact
//!   text the network made is taken for one. A channel opens about two round trips after the
//!   answer is applied, or with probability [`NetConfig::nat_failure`]
//!   never: both ends then see a close [`ICE_FAILURE_MS`] later.
//! - Tracker messages take [`NetConfig::tracker_latency`] each way.
//! - The origin is one FIFO pipe; an answer also occupies the receiver's
//!   downlink and takes the origin latency each way. A refusal takes a
//!   round trip.
//! - Events at the same millisecond run in the order they were scheduled;
//!   an event is never scheduled in the past.

mod link;
mod tracker;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use peerhost_core::client::{Input, OriginError, Output};
use peerhost_core::manifest::SignedManifest;
use peerhost_core::rng::Rng;
use peerhost_core::scheduler::{ConnId, RequestId};
use peerhost_core::signal::{ClientMessage, ServerMessage};
use peerhost_core::time::Instant;
use peerhost_core::wire::Frame;

pub use link::Access;
use link::{Endpoint, Pipe, Setup, parse_sdp, sdp_answer, sdp_offer, wire_len};
use tracker::Tracker;
pub use tracker::manifest_push;

/// Bytes a data-channel message costs on the wire beyond its payload
/// (SCTP, DTLS, UDP and IP headers).
pub const MESSAGE_OVERHEAD: u64 = 48;
/// Retransmission timeout after a loss, at least.
pub const MIN_RTO_MS: u64 = 200;
/// ICE gives up on a connection that cannot be made after this long.
pub const ICE_FAILURE_MS: u64 = 10_000;
/// A local SDP (offer or answer) takes this long to create.
pub const SDP_MS: u64 = 2;

/// The network's parameters (each node's own are its [`Access`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NetConfig {
    /// One-way latency between a client and the tracker.
    pub tracker_latency: Duration,
    /// Probability that a peer message is lost once (and retransmitted).
    pub loss: f64,
    /// Probability that a connection never opens.
    pub nat_failure: f64,
    /// One-way latency between a client and the origin.
    pub origin_latency: Duration,
    /// The origin's upload, bytes per second.
    pub origin_bytes_per_s: u64,
    /// Frames travel encoded and reach the client as bytes, so its decoder
    /// runs too ([`Input::PeerData`]); otherwise as values
    /// ([`Input::PeerFrame`]: one shared buffer per piece however
    /// many peers pass it on).
    pub wire_codec: bool,
}

/// What [`Net::pop`] hands the driver.
#[derive(Debug)]
pub enum Step<A> {
    /// An input for the client of that node, due now.
    Client(u32, Input),
    /// One of the driver's own events, due now.
    Driver(A),
}

#[derive(Debug)]
enum Event<A> {
    Deliver(u32, Input),
    ToTracker(u32, ClientMessage),
    Driver(A),
}

/// The network: clock, calendar, links, tracker and origin pipe. `A` is
/// the type of the driver's own events.
pub struct Net<A> {
    config: NetConfig,
    rng: Rng,
    now: Instant,
    /// Events by millisecond, each list in scheduling order.
    calendar: BTreeMap<u64, Vec<Event<A>>>,
    /// The events of the instant being processed.
    batch: std::vec::IntoIter<Event<A>>,
    events: u64,
    nodes: Vec<Endpoint>,
    tracker: Tracker,
    origin: Pipe,
    origin_bytes: u64,
    tracker_out: Vec<(u32, ServerMessage)>,
}

impl<A> Net<A> {
    /// An empty network at time zero; every random draw comes from `rng`.
    pub fn new(config: NetConfig, rng: Rng) -> Net<A> {
        Net {
            origin: Pipe::new(config.origin_bytes_per_s),
            config,
            rng,
            now: Instant::ZERO,
            calendar: BTreeMap::new(),
            batch: Vec::new().into_iter(),
            events: 0,
            nodes: Vec::new(),
            tracker: Tracker::default(),
            origin_bytes: 0,
            tracker_out: Vec::new(),
        }
    }

    /// Virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The run's random stream (shared with the network: draw in event
    /// order and the run stays a function of the seed).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Events processed so far (the network's own included).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Bytes the origin has sent (successful answers).
    pub fn origin_bytes(&self) -> u64 {
        self.origin_bytes
    }

    /// Adds a node with `access`; returns its index.
    pub fn add_node(&mut self, access: Access) -> u32 {
        self.nodes.push(Endpoint::new(access));
        (self.nodes.len() - 1) as u32
    }

    /// Node `i`'s access.
    pub fn access(&self, i: u32) -> Access {
        self.nodes[i as usize].access
    }

    /// Whether node `i` has a channel `conn` (answered or open).
    pub fn has_link(&self, i: u32, conn: ConnId) -> bool {
        self.nodes[i as usize].link(conn).is_some()
    }

    /// Schedules one of the driver's events (never in the past).
    pub fn schedule(&mut self, at: Instant, ev: A) {
        self.push(at, Event::Driver(ev));
    }

    fn push(&mut self, at: Instant, ev: Event<A>) {
        let at = at.max(self.now);
        self.calendar.entry(at.0).or_default().push(ev);
    }

    fn deliver(&mut self, at: Instant, i: u32, input: Input) {
        self.push(at, Event::Deliver(i, input));
    }

    /// When the next event is due, if any.
    pub fn next_instant(&self) -> Option<Instant> {
        self.calendar.keys().next().map(|&t| Instant(t))
    }

    /// Moves the clock to the next instant with events and makes them
    /// [`pop`](Net::pop)'s. Events scheduled for that same instant while
    /// they run come with the next `begin`.
    pub fn begin(&mut self) -> Option<Instant> {
        let (t, evs) = self.calendar.pop_first()?;
        self.now = self.now.max(Instant(t));
        self.batch = evs.into_iter();
        Some(self.now)
    }

    /// Moves the clock forward with no event (a driver's timer); never
    /// back, never past a scheduled event.
    pub fn advance_to(&mut self, t: Instant) {
        debug_assert!(self.next_instant().is_none_or(|n| t <= n));
        self.now = self.now.max(t);
    }

    /// The next event of the current instant for the driver; the
    /// network's own (a message reaching the tracker, a frame for a
    /// channel closed meanwhile) are handled on the way.
    pub fn pop(&mut self) -> Option<Step<A>> {
        loop {
            let ev = self.batch.next()?;
            self.events += 1;
            match ev {
                Event::Driver(a) => return Some(Step::Driver(a)),
                Event::ToTracker(from, msg) => self.tracker_receives(from, msg),
                Event::Deliver(i, input) => {
                    let node = &mut self.nodes[i as usize];
                    match &input {
                        // Only while the channel exists.
                        Input::PeerOpen { conn }
                        | Input::PeerFrame { conn, .. }
                        | Input::PeerData { conn, .. }
                            if node.link(*conn).is_none() =>
                        {
                            continue;
                        }
                        Input::PeerClosed { conn } => {
                            node.remove_link(*conn);
                        }
                        _ => {}
                    }
                    return Some(Step::Client(i, input));
                }
            }
        }
    }

    /// Performs `out` of node `i` if it is the network's (tracker message,
    /// offer, answer, frame, close); gives anything else back. (Inside, an
    /// early `None` is a network output dropped: an SDP that is not ours, an
    /// answer or close for a channel that is gone.)
    pub fn route(&mut self, i: u32, out: Output) -> Option<Output> {
        let now = self.now;
        let sdp_at = now + Duration::from_millis(SDP_MS);
        match out {
            Output::Tracker(msg) => {
                let at = now + self.config.tracker_latency;
                self.push(at, Event::ToTracker(i, msg));
            }
            Output::CreateOffer { conn, .. } => {
                self.deliver(
                    sdp_at,
                    i,
                    Input::LocalSdp {
                        conn,
                        sdp: sdp_offer(i, conn),
                    },
                );
            }
            Output::AcceptOffer { conn, offer, .. } => {
                let (n, c) = parse_sdp(&offer.sdp, Setup::Offer)?;
                let nat_fails = self.rng.unit() < self.config.nat_failure;
                self.nodes[i as usize].add_link(conn, n, c, nat_fails);
                self.nodes[n as usize].add_link(c, i, conn, nat_fails);
                self.deliver(
                    sdp_at,
                    i,
                    Input::LocalSdp {
                        conn,
                        sdp: sdp_answer(i, conn),
                    },
                );
            }
            Output::ApplyAnswer { conn, answer } => {
                let (n, c) = parse_sdp(&answer.sdp, Setup::Answer)?;
                let link = self.nodes[i as usize].link(conn)?;
                if link.peer != n || link.peer_conn != c {
                    return None;
                }
                if link.nat_fails {
                    let at = now + Duration::from_millis(ICE_FAILURE_MS);
                    self.deliver(at, i, Input::PeerClosed { conn });
                    self.deliver(at, n, Input::PeerClosed { conn: c });
                } else {
                    // ICE, DTLS and SCTP handshakes: about two round trips.
                    let rtt = 2 * self.latency_ms(i, n);
                    let at = now + Duration::from_millis(2 * rtt);
                    self.deliver(at, i, Input::PeerOpen { conn });
                    self.deliver(at, n, Input::PeerOpen { conn: c });
                }
            }
            Output::SendPeer { conn, frame } => self.send(i, conn, frame),
            Output::ClosePeer { conn, .. } => {
                let node = &mut self.nodes[i as usize];
                let pos = node.links.iter().position(|l| l.conn == conn)?;
                let link = node.links.swap_remove(pos);
                let (n, c) = (link.peer, link.peer_conn);
                if self.nodes[n as usize].remove_link(c) {
                    let at = now + Duration::from_millis(self.latency_ms(i, n));
                    self.deliver(at, n, Input::PeerClosed { conn: c });
                }
            }
            other => return Some(other),
        }
        None
    }

    /// Sends `frame` from node `i` on channel `conn` (dropped if there is
    /// none). Drivers that alter what a node sends call this instead of
    /// routing [`Output::SendPeer`].
    pub fn send(&mut self, i: u32, conn: ConnId, frame: Frame) {
        let now_us = self.now.as_millis() * 1000;
        let Some(link) = self.nodes[i as usize].link(conn) else {
            return;
        };
        let (n, c) = (link.peer, link.peer_conn);
        let lat_us = self.latency_ms(i, n) * 1000;
        let (input, len) = if self.config.wire_codec {
            let bytes = frame.encode();
            let len = bytes.len() as u64;
            (
                Input::PeerData {
                    conn: c,
                    data: Bytes::from(bytes),
                },
                len,
            )
        } else {
            let len = wire_len(&frame);
            (Input::PeerFrame { conn: c, frame }, len)
        };
        let wire = len + MESSAGE_OVERHEAD;
        let sent = self.nodes[i as usize].up.carry(now_us, wire);
        let mut arrive = self.nodes[n as usize].down.carry(sent + lat_us, wire);
        if self.rng.unit() < self.config.loss {
            arrive += (2 * lat_us).max(MIN_RTO_MS * 1000);
        }
        let link = self.nodes[i as usize].link_mut(conn).expect("checked");
        arrive = arrive.max(link.last_arrival_us);
        link.last_arrival_us = arrive;
        self.deliver(Instant(arrive.div_ceil(1000)), n, input);
    }

    fn latency_ms(&self, a: u32, b: u32) -> u64 {
        self.nodes[a as usize].access.latency_ms + self.nodes[b as usize].access.latency_ms
    }

    /// Node `i` opens its tracker socket: connected one round trip later.
    pub fn connect_tracker(&mut self, i: u32) {
        let at = self.now + self.config.tracker_latency * 2;
        self.deliver(at, i, Input::TrackerConnected);
    }

    /// The tracker sends `msg` to node `i` now (a push).
    pub fn tracker_send(&mut self, i: u32, msg: ServerMessage) {
        let at = self.now + self.config.tracker_latency;
        self.deliver(at, i, Input::Tracker(msg));
    }

    /// The manifest the tracker gives subscribers that hold an older one
    /// (`None`: subscriptions are not answered).
    pub fn set_tracker_manifest(&mut self, signed: Option<SignedManifest>) {
        self.tracker.manifest = signed;
    }

    fn tracker_receives(&mut self, from: u32, msg: ClientMessage) {
        let open = !self.nodes[from as usize].gone;
        let mut out = std::mem::take(&mut self.tracker_out);
        self.tracker
            .handle(from, open, msg, &mut self.rng, &mut out);
        let at = self.now + self.config.tracker_latency;
        for (to, msg) in out.drain(..) {
            self.deliver(at, to, Input::Tracker(msg));
        }
        self.tracker_out = out;
    }

    /// The origin answers node `i`'s `request` with `answer`, which the
    /// driver decides. A body is sent through the origin's pipe and the
    /// node's downlink (returns when the origin finished sending it); a
    /// refusal arrives one round trip later.
    pub fn fetch_origin(
        &mut self,
        i: u32,
        request: RequestId,
        answer: Result<Bytes, OriginError>,
    ) -> Option<Instant> {
        let lat = self.config.origin_latency;
        let body = match answer {
            Ok(body) => body,
            Err(e) => {
                let at = self.now + lat * 2;
                self.deliver(
                    at,
                    i,
                    Input::Origin {
                        request,
                        result: Err(e),
                    },
                );
                return None;
            }
        };
        let len = body.len() as u64;
        let lat_us = lat.as_micros() as u64;
        let sent = self.origin.carry(self.now.as_millis() * 1000 + lat_us, len);
        let at = self.nodes[i as usize].down.carry(sent, len) + lat_us;
        self.origin_bytes += len;
        self.deliver(
            Instant(at.div_ceil(1000)),
            i,
            Input::Origin {
                request,
                result: Ok(body),
            },
        );
        Some(Instant(sent / 1000))
    }

    /// Node `i` leaves: its tracker socket closes and its channels are
    /// forgotten without telling the peers (its client closed what it
    /// knew of before leaving).
    pub fn remove_node(&mut self, i: u32) {
        let node = &mut self.nodes[i as usize];
        node.gone = true;
        node.links.clear();
    }

    /// Every channel of node `i` breaks at once (a crash, a closed tab):
    /// each peer sees its close one link latency later; node `i` is not
    /// told.
    pub fn cut_links(&mut self, i: u32) {
        let links = std::mem::take(&mut self.nodes[i as usize].links);
        for l in links {
            if self.nodes[l.peer as usize].remove_link(l.peer_conn) {
                let at = self.now + Duration::from_millis(self.latency_ms(i, l.peer));
                self.deliver(at, l.peer, Input::PeerClosed { conn: l.peer_conn });
            }
        }
    }
}
