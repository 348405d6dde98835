//! The WebSocket to the tracker: one per site (see `docs/seeder.md` for
//! why not one per process), reconnecting with exponential backoff and
//! full jitter.
//!
//! The task turns the socket into events for the site's seeder
//! ([`SeederEvent::TrackerUp`], [`SeederEvent::Tracker`],
//! [`SeederEvent::TrackerDown`]) and sends the seeder's JSON text frames. Messages the driver queued while the socket was down are
//! stale (the core re-subscribes and re-announces on `TrackerUp`) and are
//! dropped. When the driver drops its sender, the task sends what is still
//! queued (the farewell `stopped` announce), closes the socket and ends.

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::backoff::Backoff;
use crate::event::SeederEvent;

/// First reconnect delays are below this.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Reconnect delays never exceed this.
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// Longest TCP + WebSocket handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest write of one message (the tracker closes slow readers anyway).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Checks that `url` is a WebSocket URL.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    if url.starts_with("ws://") || url.starts_with("wss://") {
        Ok(())
    } else {
        Err(format!(
            "{url}: the tracker URL must start with ws:// or wss://"
        ))
    }
}

/// How a session ended.
enum Ended {
    /// The driver is gone: stop.
    Shutdown,
    /// The socket failed or the tracker closed it: reconnect.
    Lost(String),
}

/// Runs the tracker connection of one site until `outbound` closes.
pub(crate) async fn run(
    url: String,
    site: String,
    seed: u64,
    inputs: mpsc::Sender<SeederEvent>,
    mut outbound: mpsc::UnboundedReceiver<String>,
) {
    crate::install_crypto_provider();
    let mut backoff = Backoff::new(BACKOFF_BASE, BACKOFF_CAP, seed);
    loop {
        let attempt =
            tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(&url)).await;
        let problem = match attempt {
            Ok(Ok((ws, _))) => {
                // What was queued while down is stale.
                loop {
                    match outbound.try_recv() {
                        Ok(_) => {}
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => return,
                    }
                }
                tracing::info!(%site, tracker = %url, "tracker connected");
                if inputs.send(SeederEvent::TrackerUp).await.is_err() {
                    return;
                }
                match session(ws, &inputs, &mut outbound, &mut backoff).await {
                    Ended::Shutdown => return,
                    Ended::Lost(why) => format!("connection lost ({why})"),
                }
            }
            Ok(Err(e)) => format!("unreachable ({e})"),
            Err(_) => "unreachable (connect timed out)".to_owned(),
        };
        if inputs.send(SeederEvent::TrackerDown).await.is_err() {
            return;
        }
        let delay = backoff.next_delay();
        tracing::warn!(
            %site,
            tracker = %url,
            "tracker {problem}; retrying in {:.1} s",
            delay.as_secs_f64()
        );
        let wait = tokio::time::sleep(delay);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                msg = outbound.recv() => if msg.is_none() { return },
            }
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn session(
    mut ws: Ws,
    inputs: &mpsc::Sender<SeederEvent>,
    outbound: &mut mpsc::UnboundedReceiver<String>,
    backoff: &mut Backoff,
) -> Ended {
    loop {
        tokio::select! {
            msg = outbound.recv() => match msg {
                Some(text) => {
                    match tokio::time::timeout(SEND_TIMEOUT, ws.send(Message::text(text))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Ended::Lost(e.to_string()),
                        Err(_) => return Ended::Lost("send timed out".into()),
                    }
                }
                None => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                    return Ended::Shutdown;
                }
            },
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    // A tracker that talks to us is a working tracker.
                    backoff.reset();
                    if inputs.send(SeederEvent::Tracker(text.to_string())).await.is_err() {
                        return Ended::Shutdown;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    return Ended::Lost(match frame {
                        Some(f) if !f.reason.is_empty() => format!("closed by the tracker: {} {}", u16::from(f.code), f.reason),
                        Some(f) => format!("closed by the tracker: {}", u16::from(f.code)),
                        None => "closed by the tracker".into(),
                    });
                }
                None => return Ended::Lost("closed".into()),
                Some(Err(e)) => return Ended::Lost(e.to_string()),
                // Pings are answered by tungstenite; binary frames are not ours.
                Some(Ok(_)) => {}
            },
        }
    }
}
