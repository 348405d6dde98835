//! A recording WebSocket proxy between browsers and the tracker: what the
//! tracker received and relayed, as seen on the wire, for tests that must
//! prove what a visitor revealed (e.g. only relay candidates).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

/// One text message through the proxy.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// From a browser to the tracker (else from the tracker to a browser).
    pub to_tracker: bool,
    /// The message text.
    pub text: String,
}

/// The proxy; stops when dropped.
pub struct RecordingProxy {
    addr: SocketAddr,
    path: String,
    frames: Arc<Mutex<Vec<Recorded>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl RecordingProxy {
    /// Listens on `ip` (port 0) and forwards every WebSocket it accepts to
    /// `upstream` (`ws://HOST:PORT/PATH`), recording text messages both ways.
    pub fn start(ip: Ipv4Addr, upstream: &str) -> RecordingProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = runtime
            .block_on(TcpListener::bind((ip, 0)))
            .expect("proxy listens");
        let addr = listener.local_addr().expect("address");
        let frames = Arc::new(Mutex::new(Vec::new()));
        let upstream = upstream.to_owned();
        let path = upstream
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{p}"))
            .unwrap_or_default();
        let recorder = frames.clone();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (upstream, recorder) = (upstream.clone(), recorder.clone());
                tokio::spawn(async move {
                    let Ok(browser) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    let Ok((tracker, _)) =
                        tokio_tungstenite::connect_async(upstream.as_str()).await
                    else {
                        return;
                    };
                    relay(browser, tracker, recorder).await;
                });
            }
        });
        RecordingProxy {
            addr,
            path,
            frames,
            runtime: Some(runtime),
        }
    }

    /// `ws://ADDR:PORT/PATH`: give this to the browsers as their tracker.
    pub fn url(&self) -> String {
        format!("ws://{}{}", self.addr, self.path)
    }

    /// Every text message so far.
    pub fn frames(&self) -> Vec<Recorded> {
        self.frames.lock().expect("recorder").clone()
    }
}

/// Forwards both ways until either side closes.
async fn relay<B, T>(browser: B, tracker: T, recorder: Arc<Mutex<Vec<Recorded>>>)
where
    B: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + futures_util::Sink<Message>
        + Unpin,
    T: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + futures_util::Sink<Message>
        + Unpin,
{
    let (mut to_browser, mut from_browser) = browser.split();
    let (mut to_tracker, mut from_tracker) = tracker.split();
    let record = |to_tracker: bool, m: &Message| {
        if let Message::Text(t) = m {
            recorder.lock().expect("recorder").push(Recorded {
                to_tracker,
                text: t.to_string(),
            });
        }
    };
    loop {
        tokio::select! {
            m = from_browser.next() => {
                let Some(Ok(m)) = m else { break };
                record(true, &m);
                if to_tracker.send(m).await.is_err() { break; }
            }
            m = from_tracker.next() => {
                let Some(Ok(m)) = m else { break };
                record(false, &m);
                if to_browser.send(m).await.is_err() { break; }
            }
        }
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(2));
        }
    }
}

/// Every `a=candidate:` line in any string of a JSON message (SDPs inside
/// offers and answers), or of a non-JSON text.
pub fn candidate_lines(text: &str) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => out.extend(
                s.lines()
                    .filter(|l| l.contains("a=candidate:"))
                    .map(str::to_owned),
            ),
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => walk(&v, &mut out),
        Err(_) => walk(&serde_json::Value::String(text.to_owned()), &mut out),
    }
    out
}
