//! Shared harness: a real tracker on 127.0.0.1:0 and real WebSocket clients.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt as _, StreamExt as _};
use peerhost_core::manifest::{Asset, Manifest, SiteSecret};
use peerhost_core::signal::{
    Announce, AnnounceEvent, AnswerMsg, ClientMessage, InfoHash, Offer, OfferId, PeerId, Sdp,
    ServerMessage,
};
use peerhost_tracker::config::Config;
use peerhost_tracker::server::{AppState, serve};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SDP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host\r\n";

pub struct Tracker {
    pub addr: SocketAddr,
    pub state: AppState,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Tracker {
    pub async fn start(cfg: Config) -> Tracker {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = AppState::new(cfg);
        let task = tokio::spawn(serve(listener, state.clone(), std::future::pending()));
        Tracker { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.url()).await
    }

    pub async fn stop(self) {
        self.state.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct Client {
    pub ws: Ws,
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::connect_async(url),
        )
        .await
        .expect("connect timed out")
        .expect("connect");
        Client { ws }
    }

    /// Connects with a small receive buffer, so that a client that stops
    /// reading pushes back on the tracker after kilobytes, not after
    /// whatever the kernel's autotuning allows (32 MiB on some machines).
    pub async fn connect_small_window(addr: SocketAddr) -> Client {
        let sock = TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(16 * 1024).unwrap();
        let stream = sock.connect(addr).await.expect("connect");
        let (ws, _) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::client_async(format!("ws://{addr}/"), MaybeTlsStream::Plain(stream)),
        )
        .await
        .expect("handshake timed out")
        .expect("handshake");
        Client { ws }
    }

    /// Connects from a chosen loopback source address (per-IP tests).
    pub async fn connect_from(
        addr: SocketAddr,
        from: std::net::IpAddr,
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        Self::connect_from_to(addr, from, "/").await
    }

    /// Connects from a chosen loopback source address to `path`.
    pub async fn connect_from_to(
        addr: SocketAddr,
        from: std::net::IpAddr,
        path: &str,
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::new(from, 0)).unwrap();
        let stream = sock.connect(addr).await?;
        let (ws, _) = tokio::time::timeout(
            Duration::from_secs(5),
            tokio_tungstenite::client_async(
                format!("ws://{addr}{path}"),
                MaybeTlsStream::Plain(stream),
            ),
        )
        .await
        .map_err(|_| tokio_tungstenite::tungstenite::Error::ConnectionClosed)??;
        Ok(Client { ws })
    }

    pub async fn send(&mut self, m: &ClientMessage) {
        self.send_text(m.to_json()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// The next tracker message, within 5 s.
    pub async fn recv(&mut self) -> ServerMessage {
        self.try_recv(Duration::from_secs(5))
            .await
            .expect("expected a message from the tracker")
    }

    /// The next text message within `wait`, or `None`.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<ServerMessage> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let m = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()??;
            match m {
                Ok(Message::Text(t)) => {
                    return Some(
                        ServerMessage::from_json(t.as_str()).expect("tracker sent valid JSON"),
                    );
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// A round trip on this connection: sends a scrape and returns every
    /// message that arrived before its answer. The tracker handles one
    /// connection's messages in order and writes each connection's replies
    /// and pushes in one queue, so afterwards (a) everything sent before
    /// is handled (a barrier, instead of a sleep), and (b) any push caused
    /// by something another connection finished before the call is in the
    /// returned list (proof of absence, instead of a silence window).
    pub async fn round_trip(&mut self) -> Vec<ServerMessage> {
        self.send(&ClientMessage::Scrape {
            info_hashes: vec![swarm(250)],
        })
        .await;
        let mut before = Vec::new();
        for _ in 0..64 {
            match self.recv().await {
                ServerMessage::ScrapeResponse { .. } => return before,
                m => before.push(m),
            }
        }
        panic!("no scrape answer after 64 messages: {before:?}")
    }

    /// Whether the tracker closed this connection within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }
}

pub fn peer(n: u8) -> PeerId {
    // High bytes on purpose: ids travel as Latin-1 binary strings.
    PeerId([0x80 | n; 20])
}

pub fn swarm(n: u8) -> InfoHash {
    InfoHash([0xe0 | n; 20])
}

pub fn announce(ih: InfoHash, p: PeerId, event: AnnounceEvent, offers: &[u8]) -> ClientMessage {
    ClientMessage::Announce(Announce {
        info_hash: ih,
        peer_id: p,
        numwant: Some(offers.len() as u64),
        uploaded: 0,
        downloaded: 0,
        left: None,
        event,
        offers: offers
            .iter()
            .map(|&o| Offer {
                offer_id: OfferId([o; 20]),
                offer: Sdp::offer(SDP),
            })
            .collect(),
    })
}

pub fn answer(ih: InfoHash, from: PeerId, to: PeerId, offer_id: OfferId) -> ClientMessage {
    ClientMessage::Answer(AnswerMsg {
        info_hash: ih,
        peer_id: from,
        to_peer_id: to,
        offer_id,
        answer: Sdp::answer(SDP),
    })
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A signed manifest of the site with seed `seed`, wire encoding.
pub fn signed_manifest(seed: u8, version: u64) -> Vec<u8> {
    let secret = SiteSecret::from_seed([seed; 32]);
    let now = unix_now();
    Manifest {
        site_key: secret.site_key(),
        version,
        issued_at: now - 10,
        expires_at: now + 3600,
        flags: 0,
        assets: vec![Asset::from_bytes("/a.txt", "text/plain", 16384, b"hi")],
    }
    .sign(&secret)
    .unwrap()
    .to_bytes()
}

pub fn site(seed: u8) -> peerhost_core::manifest::SiteKey {
    SiteSecret::from_seed([seed; 32]).site_key()
}

/// Expects an announce response for `ih`.
pub async fn expect_announce_response(c: &mut Client, ih: InfoHash) -> (u64, u64) {
    match c.recv().await {
        ServerMessage::AnnounceResponse {
            info_hash,
            complete,
            incomplete,
            ..
        } if info_hash == ih => (complete, incomplete),
        other => panic!("expected an announce response, got {other:?}"),
    }
}

/// Whether browser (WebRTC) tests may run here (see `peerhost_testenv`).
pub fn netns_or_skip(test: &str) -> bool {
    peerhost_testenv::netns_or_skip(test, "browser (WebRTC) tests")
}

/// Relays one offer (`sdp`, with an offer id made from `round`) from
/// `offerer` (peer 2) into swarm `ih`, and waits for the tracker's answer
/// to that announce: a round trip, so the relayed offer was queued first.
pub async fn relay_one_offer(offerer: &mut Client, ih: InfoHash, round: u32, sdp: &str) {
    let mut oid = [0u8; 20];
    oid[..4].copy_from_slice(&round.to_be_bytes());
    offerer
        .send(&ClientMessage::Announce(Announce {
            info_hash: ih,
            peer_id: peer(2),
            numwant: Some(1),
            uploaded: 0,
            downloaded: 0,
            left: None,
            event: AnnounceEvent::Update,
            offers: vec![Offer {
                offer_id: OfferId(oid),
                offer: Sdp::offer(sdp.to_owned()),
            }],
        }))
        .await;
    expect_announce_response(offerer, ih).await;
}

/// Publishes version `version` of site `seed` through `publisher` (a
/// `/publish` connection) and checks the tracker took it.
pub async fn publish_ok(publisher: &mut Client, seed: u8, version: u64) {
    publisher
        .send(&ClientMessage::PublishManifest {
            manifest: signed_manifest(seed, version),
        })
        .await;
    assert_eq!(
        publisher.recv().await,
        ServerMessage::PublishResult { version }
    );
}
