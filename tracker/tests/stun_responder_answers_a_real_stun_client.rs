//! The tracker's STUN responder (`--stun`) answers a real, independent STUN
//! client — coturn's `turnutils_stunclient` — with the address its request
//! came from, drops garbage without answering (no panic, no reply), and
//! keeps answering afterwards. Both kinds are counted in the metrics.

use std::net::SocketAddr;
use std::time::Duration;

use peerhost_testenv::coturn::coturn_binary;
use peerhost_tracker::AppState;
use peerhost_tracker::config::Config;
use peerhost_tracker::stun::serve_stun;
use rtc_stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Getter, Message, Setter, TransactionId};
use rtc_stun::xoraddr::XorMappedAddress;
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(10);

async fn start() -> (AppState, SocketAddr) {
    let state = AppState::new(Config::default());
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(serve_stun(socket, state.clone()));
    (state, addr)
}

/// Runs `turnutils_stunclient` against `addr`; the reflexive address it prints.
async fn stunclient(addr: SocketAddr) -> SocketAddr {
    let out = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(coturn_binary("turnutils_stunclient"))
            .args(["-p", &addr.port().to_string(), &addr.ip().to_string()])
            .output(),
    )
    .await
    .expect("turnutils_stunclient finishes")
    .expect("turnutils_stunclient runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "turnutils_stunclient failed:\n{text}");
    let reported = text
        .lines()
        .find_map(|l| l.split("UDP reflexive addr: ").nth(1))
        .unwrap_or_else(|| panic!("no reflexive address in:\n{text}"));
    reported.trim().parse().expect("an address")
}

fn binding_request(id: u8) -> Vec<u8> {
    let mut m = Message::new();
    let setters: [Box<dyn Setter>; 2] =
        [Box::new(BINDING_REQUEST), Box::new(TransactionId([id; 12]))];
    m.build(&setters).unwrap();
    m.raw
}

#[tokio::test]
async fn stun_responder_answers_a_real_stun_client_and_ignores_garbage() {
    let (state, addr) = start().await;

    let reflexive = stunclient(addr).await;
    assert_eq!(reflexive.ip().to_string(), "127.0.0.1");
    assert_ne!(reflexive.port(), 0);
    let answered = state.metrics().stun_answered_count();
    assert!(answered >= 1, "the answer came from our responder");

    // Garbage first, then one good request, from one socket: the first
    // datagram back must answer the good request, so none of the garbage
    // was answered (loopback keeps one sender's order, and the responder
    // handles datagrams one by one).
    let me = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let good = binding_request(9);
    let mut truncated = good.clone();
    truncated.pop();
    let mut not_a_request = good.clone();
    not_a_request[..2].copy_from_slice(&BINDING_SUCCESS.value().to_be_bytes());
    let garbage: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        vec![0xFF; 20],
        vec![0; 2000],
        truncated,
        not_a_request,
    ];
    for g in &garbage {
        me.send_to(g, addr).await.unwrap();
    }
    me.send_to(&good, addr).await.unwrap();
    let mut buf = [0u8; 1500];
    let (n, from) = tokio::time::timeout(WAIT, me.recv_from(&mut buf))
        .await
        .expect("an answer to the good request")
        .unwrap();
    assert_eq!(from, addr);
    let mut resp = Message::new();
    resp.unmarshal_binary(&buf[..n]).unwrap();
    assert_eq!(resp.typ, BINDING_SUCCESS);
    assert_eq!(
        resp.transaction_id,
        TransactionId([9; 12]),
        "not a garbage answer"
    );
    let mut mapped = XorMappedAddress::default();
    mapped.get_from(&resp).unwrap();
    assert_eq!(
        SocketAddr::new(mapped.ip, mapped.port),
        me.local_addr().unwrap()
    );
    assert_eq!(
        state.metrics().stun_ignored_count(),
        garbage.len() as u64,
        "every garbage datagram counted as ignored"
    );

    // Still answering a real client after the garbage.
    assert_eq!(stunclient(addr).await.ip().to_string(), "127.0.0.1");
    assert!(state.metrics().stun_answered_count() >= answered + 2);
    state.shutdown();
}
