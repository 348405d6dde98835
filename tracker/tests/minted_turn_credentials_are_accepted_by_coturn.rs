//! TURN credentials minted by the tracker (coturn's REST shared-secret
//! scheme) open an allocation on a real coturn configured with the same
//! `static-auth-secret`: coturn's own `turnutils_uclient` allocates, relays
//! and gets its messages back. A credential minted with a wrong secret, or
//! one whose expiry has passed, is refused.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peerhost_core::ice::IceServer;
use peerhost_core::time::UnixTime;
use peerhost_testenv::coturn::{Coturn, coturn_binary};
use peerhost_tracker::ice::TurnMinter;

const SECRET: &str = "shared-with-coturn";

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Allocates on `turn` with the minted entry's credentials (and relays one
/// message between two allocations, `-y`); whether it worked, and the output.
async fn allocate(turn: &Coturn, server: &IceServer) -> (bool, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(coturn_binary("turnutils_uclient"))
            .args(["-y", "-c", "-n", "1", "-m", "1"])
            .args(["-u", server.username.as_deref().unwrap()])
            .args(["-w", server.credential.as_deref().unwrap()])
            .args(["-p", &turn.addr().port().to_string()])
            .arg(turn.addr().ip().to_string())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("turnutils_uclient finishes within 30 s")
    .expect("turnutils_uclient runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let ok = out.status.success() && !text.contains("Cannot complete Allocation");
    (ok, text)
}

fn minter(secret: &str) -> TurnMinter {
    TurnMinter::new(secret, vec!["turn:127.0.0.1?transport=udp".into()], 600)
}

#[tokio::test]
async fn minted_turn_credentials_are_accepted_by_coturn_and_wrong_or_expired_ones_refused() {
    let turn = Coturn::start(IpAddr::V4(Ipv4Addr::LOCALHOST), 0, SECRET);
    let now = UnixTime(unix_now());

    let good = minter(SECRET).mint(now, "peerhost1");
    let (ok, out) = allocate(&turn, &good).await;
    assert!(
        ok,
        "minted credential refused:\n{out}\ncoturn:\n{}",
        turn.log()
    );
    assert!(out.contains("Total lost packets 0"), "relayed:\n{out}");

    let wrong = minter("not-the-secret").mint(now, "peerhost2");
    let (ok, out) = allocate(&turn, &wrong).await;
    assert!(!ok, "a credential from a wrong secret was accepted:\n{out}");

    // Minted 700 s ago with a 600 s ttl: expired 100 s ago.
    let expired = minter(SECRET).mint(UnixTime(now.0 - 700), "peerhost3");
    let (ok, out) = allocate(&turn, &expired).await;
    assert!(!ok, "an expired credential was accepted:\n{out}");
}
