//! The socket holder: TCP accept with connection caps, HTTP/1 with a
//! handshake deadline, WebSocket framing and size limits, a token bucket
//! and a bounded outbound queue per connection. Decoded messages go into
//! the pure [`Hub`] as [`Input`]s; its [`Outbox`] is serialised and queued
//! to sockets. No swarm or manifest rule lives here.
//!
//! One task per connection reads frames and writes its queue. Nothing a
//! client sends is buffered beyond the configured message size, nothing
//! queued to a client beyond `outbound_queue_len` messages or
//! `outbound_queue_bytes` (plus one message): a client that does not read
//! is closed (slow consumer, send timeout), never waited for. `/publish`
//! has its own connection caps and a deadline per message.
//!
//! The state is two hubs, one per [`Part`], each behind its own mutex held
//! only for [`Hub::handle`]: decoding happens before it, serialising and
//! queueing after it. In a cluster this module is the socket holder and
//! the inputs travel to swarm owners (see [`crate::hub`]).
//!
//! Endpoints: `/` and `/announce` (WebSocket, the tracker), `/publish`
//! (WebSocket with the larger publish message limit), `/healthz`,
//! `/metrics`, `/stats`, `/stats.json`.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures_util::SinkExt as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use peerhost_core::signal::{ACTION_ANNOUNCE, ClientMessage, SignalError};
use peerhost_core::time::{Instant as CoreInstant, UnixTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tower::ServiceExt as _;

use crate::config::Config;
use crate::hub::{Handled, Hub, Input, Now, Part};
use crate::metrics::{Action, Gauges, Metrics, Reason, rss_bytes};
use crate::outbox::{Outbox, Outgoing, SocketId};
use crate::read_clock::{ReadClock, Watched};

/// Shared tracker state; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

struct Shared {
    cfg: Config,
    /// Receives [`Part::Swarms`] inputs: the announce hot path.
    swarms: Mutex<Hub>,
    /// Receives [`Part::Manifests`] inputs, so publishes and subscribes
    /// never hold up announces.
    manifests: Mutex<Hub>,
    sockets: RwLock<HashMap<SocketId, SocketHandle>>,
    ips: Mutex<HashMap<IpAddr, usize>>,
    tcp_open: AtomicUsize,
    /// Open `/publish` connections: in all, and per IP.
    publishers: Mutex<(usize, HashMap<IpAddr, usize>)>,
    next_socket: AtomicU64,
    metrics: Metrics,
    epoch: std::time::Instant,
    shutdown: watch::Sender<bool>,
}

struct SocketHandle {
    tx: mpsc::Sender<Utf8Bytes>,
    kill: Arc<Notify>,
    /// What the kill is for, and the bytes waiting in `tx`.
    queue: Arc<QueueState>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock is our bug; keep serving rather than
    // cascading it into every connection.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AppState {
    /// Fresh state under `cfg`.
    pub fn new(cfg: Config) -> Self {
        AppState(Arc::new(Shared {
            swarms: Mutex::new(
                Hub::new(cfg.swarm.clone(), cfg.manifests.clone()).with_ice(cfg.ice_offer()),
            ),
            manifests: Mutex::new(Hub::new(cfg.swarm.clone(), cfg.manifests.clone())),
            cfg,
            sockets: RwLock::new(HashMap::new()),
            ips: Mutex::new(HashMap::new()),
            tcp_open: AtomicUsize::new(0),
            publishers: Mutex::new((0, HashMap::new())),
            next_socket: AtomicU64::new(1),
            metrics: Metrics::default(),
            epoch: std::time::Instant::now(),
            shutdown: watch::channel(false).0,
        }))
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.0.cfg
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Gauges read from the swarm and manifest state.
    pub fn gauges(&self) -> Gauges {
        let (swarms, peers) = {
            let hub = lock(&self.0.swarms);
            (hub.swarms().swarm_count(), hub.swarms().peer_count())
        };
        let (sites, subscriptions) = {
            let hub = lock(&self.0.manifests);
            let m = hub.manifests();
            (m.site_count(), m.subscription_count())
        };
        Gauges {
            swarms,
            peers,
            sites,
            subscriptions,
            rss_bytes: rss_bytes(),
        }
    }

    /// Changes to `true` when [`AppState::shutdown`] is called.
    pub fn shutdown_watch(&self) -> watch::Receiver<bool> {
        self.0.shutdown.subscribe()
    }

    /// Asks every connection to close (WebSocket close 1001) and the accept loop to stop.
    pub fn shutdown(&self) {
        self.0.shutdown.send_replace(true);
    }

    /// Monotonic time since this state was built.
    fn uptime(&self) -> CoreInstant {
        CoreInstant(self.0.epoch.elapsed().as_millis() as u64)
    }

    /// The hub's notion of now: both clocks, read once per input.
    fn now(&self) -> Now {
        let unix = UnixTime(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        );
        Now {
            mono: self.uptime(),
            unix,
        }
    }

    /// Hands `input` to the hub(s) holding the part it needs.
    fn handle(&self, input: &Input, out: &mut Outbox) -> Result<Handled, Reason> {
        let now = self.now();
        let hub = match input.part() {
            Part::Swarms => &self.0.swarms,
            Part::Manifests => &self.0.manifests,
            Part::Both => {
                let _ = lock(&self.0.swarms).handle(now, &mut rand::rng(), input, out);
                &self.0.manifests
            }
        };
        lock(hub).handle(now, &mut rand::rng(), input, out)
    }

    /// Hands a non-message input to the hubs; such inputs always succeed
    /// and reply to nobody.
    fn housekeeping(&self, input: Input) {
        let mut out = Outbox::default();
        let _ = self.handle(&input, &mut out);
        debug_assert!(out.is_empty());
    }

    /// Admits one TCP connection from `ip`, or refuses it over a cap.
    fn admit(&self, ip: IpAddr) -> Result<Admission, Reason> {
        let c = &self.0.cfg.connection;
        if self.0.tcp_open.fetch_add(1, Ordering::AcqRel) >= c.max_connections {
            self.0.tcp_open.fetch_sub(1, Ordering::AcqRel);
            return Err(Reason::ConnectionsTotal);
        }
        let mut ips = lock(&self.0.ips);
        let n = ips.entry(ip).or_insert(0);
        if *n >= c.max_connections_per_ip {
            drop(ips);
            self.0.tcp_open.fetch_sub(1, Ordering::AcqRel);
            return Err(Reason::ConnectionsPerIp);
        }
        *n += 1;
        Ok(Admission {
            state: self.clone(),
            ip,
            clock: ReadClock::new(),
        })
    }

    /// Admits one `/publish` WebSocket, or refuses it over the `/publish`
    /// caps. `ip` is `None` for a router served without [`serve`]: only the
    /// total cap applies then.
    fn admit_publisher(&self, ip: Option<IpAddr>) -> Result<PublishSlot, Reason> {
        let c = &self.0.cfg.connection;
        let mut p = lock(&self.0.publishers);
        if p.0 >= c.max_publish_connections {
            return Err(Reason::PublishConnectionsTotal);
        }
        if let Some(ip) = ip {
            let n = p.1.entry(ip).or_insert(0);
            if *n >= c.max_publish_connections_per_ip {
                return Err(Reason::PublishConnectionsPerIp);
            }
            *n += 1;
        }
        p.0 += 1;
        Ok(PublishSlot {
            state: self.clone(),
            ip,
        })
    }

    /// Serialises and queues everything in `out`, leaving it empty; a full
    /// queue marks that socket for closing.
    fn dispatch(&self, out: &mut Outbox) {
        if out.is_empty() {
            return;
        }
        // Serialise before taking the lock: writers (socket open and close)
        // wait only for the queueing.
        let texts: Vec<(SocketId, Utf8Bytes)> = out
            .messages
            .drain(..)
            .map(|o| (o.to, Utf8Bytes::from(o.msg.to_json())))
            .collect();
        // One serialisation for every recipient.
        let broadcast = out
            .broadcast
            .take()
            .map(|b| (b.to, Utf8Bytes::from(b.msg.to_json())));
        let cap = self.0.cfg.connection.outbound_queue_bytes;
        let sockets = self.0.sockets.read().unwrap_or_else(|e| e.into_inner());
        for (to, text) in texts {
            queue(&sockets, to, text, cap);
        }
        if let Some((recipients, text)) = broadcast {
            for to in recipients {
                queue(&sockets, to, text.clone(), cap);
            }
        }
    }

    /// Decodes one text message of `socket` and hands it to the hub;
    /// `Err` says why it was refused (the error reply is in `out`).
    fn handle_text(
        &self,
        socket: SocketId,
        from: Option<IpAddr>,
        text: &str,
        out: &mut Outbox,
    ) -> Result<(), Reason> {
        let m = &self.0.metrics;
        let msg = match ClientMessage::from_json(text) {
            Ok(msg) => msg,
            Err(SignalError::UnknownAction(action)) => {
                m.message_in(Action::Unknown, text.len());
                let why = "unknown action".into();
                out.messages
                    .push(Outgoing::error(socket, &action, why, None));
                return Err(Reason::UnknownAction);
            }
            Err(e) => {
                m.message_in(Action::Malformed, text.len());
                let why = e.to_string();
                out.messages
                    .push(Outgoing::error(socket, ACTION_ANNOUNCE, why, None));
                return Err(Reason::Malformed);
            }
        };
        m.message_in(action_of(&msg), text.len());
        // Borrowed by the hub, so its SDPs or manifest bytes are freed when
        // this returns, after the lock is released.
        let input = Input::Message { socket, from, msg };
        let handled = self.handle(&input, out)?;
        match handled {
            Handled::Announced(o) => {
                m.announce_response();
                m.offers_relayed(o.offers_relayed);
                if o.offers_dropped > 0 {
                    m.reject_n(Reason::OffersDropped, o.offers_dropped as u64);
                }
            }
            Handled::Answered => m.answer_relayed(),
            Handled::Published { version, pushes } => {
                m.manifest_published();
                m.manifest_pushes(pushes);
                tracing::info!(version, pushes, "manifest published");
            }
            Handled::Subscribed { pushed: true } => m.manifest_pushes(1),
            Handled::Scraped
            | Handled::Subscribed { pushed: false }
            | Handled::Closed
            | Handled::Ticked => {}
        }
        Ok(())
    }
}

fn action_of(msg: &ClientMessage) -> Action {
    match msg {
        ClientMessage::Announce(_) => Action::Announce,
        ClientMessage::Answer(_) => Action::Answer,
        ClientMessage::Scrape { .. } => Action::Scrape,
        ClientMessage::PublishManifest { .. } => Action::Publish,
        ClientMessage::SubscribeManifest { .. } => Action::Subscribe,
    }
}

/// Queues `text` to `to`; a full queue marks the connection for closing
/// (slow consumer) instead of waiting or buffering more.
fn queue(sockets: &HashMap<SocketId, SocketHandle>, to: SocketId, text: Utf8Bytes, cap: usize) {
    let Some(h) = sockets.get(&to) else { return };
    let len = text.len();
    // Past the byte cap nothing more is queued: one message may cross it,
    // so a manifest larger than the cap still reaches a reading client.
    if h.queue.bytes.fetch_add(len, Ordering::AcqRel) >= cap {
        h.queue.bytes.fetch_sub(len, Ordering::AcqRel);
        h.queue.over_bytes.store(true, Ordering::Release);
        h.kill.notify_one();
        return;
    }
    if let Err(mpsc::error::TrySendError::Full(_)) = h.tx.try_send(text) {
        h.queue.bytes.fetch_sub(len, Ordering::AcqRel);
        h.kill.notify_one();
    }
}

/// The byte side of one connection's outbound queue.
#[derive(Default)]
struct QueueState {
    /// Bytes queued and not yet handed to the WebSocket.
    bytes: AtomicUsize,
    /// Set when the byte cap, not the message cap, asked for the close.
    over_bytes: std::sync::atomic::AtomicBool,
}

impl QueueState {
    /// Why the connection was asked to close.
    fn kill_reason(&self) -> Reason {
        if self.over_bytes.load(Ordering::Acquire) {
            Reason::OutboundBytes
        } else {
            Reason::SlowConsumer
        }
    }
}

/// One admitted TCP connection; releases its slot when dropped.
pub struct Admission {
    state: AppState,
    ip: IpAddr,
    /// Marked by every read of the TCP stream (see [`ReadClock`]).
    clock: Arc<ReadClock>,
}

/// One open `/publish` WebSocket; releases its slot when dropped.
struct PublishSlot {
    state: AppState,
    ip: Option<IpAddr>,
}

impl Drop for PublishSlot {
    fn drop(&mut self) {
        let mut p = lock(&self.state.0.publishers);
        p.0 -= 1;
        if let Some(ip) = self.ip
            && let Some(n) = p.1.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                p.1.remove(&ip);
            }
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut ips = lock(&self.state.0.ips);
        if let Some(n) = ips.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                ips.remove(&self.ip);
            }
        }
        drop(ips);
        self.state.0.tcp_open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The HTTP routes. Connection caps and the handshake deadline live in
/// [`serve`]'s accept loop: serve this router with [`serve`], not bare.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(ws_tracker))
        .route("/announce", get(ws_tracker))
        .route("/publish", get(ws_publish))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_page))
        .route("/stats", get(stats_page))
        .route("/stats.json", get(stats_json))
        .with_state(state)
}

/// Accepts connections on `listener` until `shutdown` resolves, then closes
/// every WebSocket (1001) and waits up to 5 s for them to finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let router = app(state.clone());
    let cleaner = tokio::spawn(clean_loop(state.clone()));
    let mut stop = state.0.shutdown.subscribe();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => break,
            _ = stop.changed() => break,
        };
        let (stream, addr) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match state.admit(addr.ip()) {
            Ok(adm) => {
                tokio::spawn(serve_connection(stream, adm, router.clone(), state.clone()));
            }
            Err(reason) => {
                state.metrics().reject(reason);
                drop(stream);
            }
        }
    }
    state.shutdown();
    cleaner.abort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while state.0.tcp_open.load(Ordering::Acquire) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Starts the swarm housekeeping (peer expiry) for an [`app`] router served
/// outside [`serve`], e.g. nested in `peerhost demo`'s single port. Such a
/// router has no connection caps or handshake deadline: for local use only.
pub fn spawn_housekeeping(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(clean_loop(state))
}

async fn clean_loop(state: AppState) {
    let every = Duration::from_secs(state.0.cfg.swarm.cleaning_interval_secs);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        state.housekeeping(Input::Tick);
    }
}

async fn serve_connection(stream: TcpStream, adm: Admission, router: Router, state: AppState) {
    let _ = stream.set_nodelay(true);
    let stream = Watched::new(stream, adm.clock.clone());
    let adm = Arc::new(adm);
    let deadline = state.0.cfg.connection.handshake_timeout();
    // Set once a complete request head arrived: a deadline hit after that is
    // an idle keep-alive connection, not a slow handshake.
    let served = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = served.clone();
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        seen.store(true, Ordering::Relaxed);
        req.extensions_mut().insert(adm.clone());
        router.clone().oneshot(req)
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(deadline)
        .max_buf_size(16 * 1024);
    // The deadline covers the whole plain-HTTP life of the connection: a
    // WebSocket leaves this future at the upgrade; anything else (a
    // keep-alive /metrics scraper, a slowloris) is cut at the deadline.
    let conn = http
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades();
    let timed_out = match tokio::time::timeout(deadline, conn).await {
        Err(_) => true,
        Ok(Err(e)) => e.is_timeout(),
        Ok(Ok(())) => false,
    };
    if timed_out && !served.load(Ordering::Relaxed) {
        state.metrics().reject(Reason::HandshakeTimeout);
    }
}

async fn ws_tracker(
    State(state): State<AppState>,
    adm: Option<Extension<Arc<Admission>>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let c = &state.0.cfg.connection;
    let limits = Limits {
        message: c.max_message_size,
        frame: c.max_frame_size,
        publish: None,
    };
    upgrade(state, adm, ws, limits)
}

/// Publishers send whole manifests, unfragmented: one frame may be as
/// large as the publish message limit. Since each such connection may hold
/// that much, `/publish` has its own connection caps, and a message must
/// arrive within `publish_frame_timeout_secs` of its first byte.
async fn ws_publish(
    State(state): State<AppState>,
    adm: Option<Extension<Arc<Admission>>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if ws.is_err() {
        return upgrade(state, adm, ws, Limits::default());
    }
    let slot = match state.admit_publisher(adm.as_ref().map(|a| a.ip)) {
        Ok(slot) => slot,
        Err(reason) => {
            state.metrics().reject(reason);
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "peerhost tracker: too many publishers\n",
            )
                .into_response();
        }
    };
    let c = &state.0.cfg.connection;
    let limits = Limits {
        message: c.max_publish_message_size,
        frame: c.max_publish_message_size,
        publish: Some(slot),
    };
    upgrade(state, adm, ws, limits)
}

/// Size limits of one endpoint, and a `/publish` slot if it is one.
#[derive(Default)]
struct Limits {
    message: usize,
    frame: usize,
    publish: Option<PublishSlot>,
}

fn upgrade(
    state: AppState,
    adm: Option<Extension<Arc<Admission>>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    limits: Limits,
) -> Response {
    let Ok(ws) = ws else {
        return (
            StatusCode::UPGRADE_REQUIRED,
            "peerhost tracker: connect with a WebSocket client\n",
        )
            .into_response();
    };
    let read_buffer = state.0.cfg.connection.read_buffer_size;
    ws.read_buffer_size(read_buffer)
        .write_buffer_size(0)
        .max_message_size(limits.message)
        .max_frame_size(limits.frame)
        .on_failed_upgrade(|_| {})
        .on_upgrade(move |socket| {
            connection(state, socket, adm.map(|Extension(a)| a), limits.publish)
        })
}

/// Token bucket: `rate` per second, at most `burst` saved up.
struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: tokio::time::Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: f64) -> Self {
        TokenBucket {
            tokens: burst,
            rate,
            burst,
            last: tokio::time::Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

fn classify(e: axum::Error) -> Reason {
    use tokio_tungstenite::tungstenite::Error as WsError;
    match e.into_inner().downcast_ref::<WsError>() {
        Some(WsError::Capacity(_)) => Reason::MessageTooLarge,
        _ => Reason::WebSocketError,
    }
}

/// How many queued messages one write batches before flushing.
const WRITE_BATCH: usize = 32;

async fn write_queued(
    ws: &mut WebSocket,
    first: Utf8Bytes,
    rx: &mut mpsc::Receiver<Utf8Bytes>,
    queue: &QueueState,
    metrics: &Metrics,
) -> Result<(), axum::Error> {
    queue.bytes.fetch_sub(first.len(), Ordering::AcqRel);
    metrics.message_out(first.len());
    ws.feed(Message::Text(first)).await?;
    for _ in 1..WRITE_BATCH {
        let Ok(more) = rx.try_recv() else { break };
        queue.bytes.fetch_sub(more.len(), Ordering::AcqRel);
        metrics.message_out(more.len());
        ws.feed(Message::Text(more)).await?;
    }
    ws.flush().await
}

async fn connection(
    state: AppState,
    mut ws: WebSocket,
    adm: Option<Arc<Admission>>,
    publish: Option<PublishSlot>,
) {
    let s = &*state.0;
    let c = &s.cfg.connection;
    // On `/publish`, a message must be whole within the frame timeout of
    // its first byte (bytes of the HTTP request do not count).
    let frame_clock = adm
        .as_ref()
        .filter(|_| publish.is_some())
        .map(|a| a.clock.clone());
    if let Some(clock) = &frame_clock {
        clock.clear();
    }
    let from = adm.as_ref().map(|a| a.ip);
    let frame_timeout = c.publish_frame_timeout();
    let frame_deadline = tokio::time::sleep(frame_timeout);
    tokio::pin!(frame_deadline);
    let id = SocketId(s.next_socket.fetch_add(1, Ordering::Relaxed));
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(c.outbound_queue_len);
    let kill = Arc::new(Notify::new());
    let queued = Arc::new(QueueState::default());
    s.sockets.write().unwrap_or_else(|e| e.into_inner()).insert(
        id,
        SocketHandle {
            tx,
            kill: kill.clone(),
            queue: queued.clone(),
        },
    );
    s.metrics.connection_opened();
    let mut stop = s.shutdown.subscribe();
    let idle = tokio::time::sleep(c.idle_timeout());
    tokio::pin!(idle);
    let mut bucket = TokenBucket::new(c.messages_per_sec, c.message_burst);
    let (mut rate_strikes, mut protocol_strikes) = (0u32, 0u32);
    let mut out = Outbox::default();

    // Shutdown may have begun before this connection was upgraded.
    let stopping = *stop.borrow_and_update();
    let (reason, code): (Option<Reason>, u16) = if stopping {
        (None, 1001)
    } else {
        loop {
            if let Some(clock) = &frame_clock {
                let now = tokio::time::Instant::now();
                let at = clock
                    .pending_since()
                    .map_or(now + frame_timeout, |t| t + frame_timeout);
                frame_deadline.as_mut().reset(at);
            }
            tokio::select! {
                biased;
                () = kill.notified() => break (Some(queued.kill_reason()), 1008),
                () = &mut frame_deadline, if frame_clock.is_some() => {
                    let late = frame_clock
                        .as_ref()
                        .and_then(|c| c.pending_since())
                        .is_some_and(|t| t + frame_timeout <= tokio::time::Instant::now());
                    if late {
                        break (Some(Reason::FrameTimeout), 1008);
                    }
                }
                _ = stop.changed() => break (None, 1001),
                Some(text) = rx.recv() => {
                    let write = tokio::time::timeout(
                        c.send_timeout(),
                        write_queued(&mut ws, text, &mut rx, &queued, &s.metrics),
                    );
                    // A write blocked on a reader that does not read must
                    // not delay the close the queue caps ask for.
                    let written = tokio::select! {
                        biased;
                        () = kill.notified() => None,
                        r = write => Some(r),
                    };
                    match written {
                        None => break (Some(queued.kill_reason()), 1008),
                        Some(Ok(Ok(()))) => {}
                        Some(Ok(Err(_))) => break (Some(Reason::WebSocketError), 1011),
                        Some(Err(_)) => break (Some(Reason::SendTimeout), 1008),
                    }
                }
                () = &mut idle => break (Some(Reason::Idle), 1000),
                msg = ws.recv() => {
                    let text = match msg {
                        None | Some(Ok(Message::Close(_))) => break (None, 1000),
                        Some(Err(e)) => {
                            let reason = classify(e);
                            // 1009 "message too big", else 1002 "protocol error".
                            let code = if reason == Reason::MessageTooLarge { 1009 } else { 1002 };
                            break (Some(reason), code);
                        }
                        Some(Ok(Message::Binary(b))) => {
                            s.metrics.bytes_in(b.len());
                            break (Some(Reason::BinaryFrame), 1003);
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                            // Control frames cost a token too; they never reset the idle timer.
                            if !bucket.take() {
                                s.metrics.reject(Reason::RateLimited);
                                rate_strikes += 1;
                                if rate_strikes > c.rate_limit_strikes {
                                    break (Some(Reason::TooManyStrikes), 1008);
                                }
                            }
                            continue;
                        }
                        Some(Ok(Message::Text(t))) => t,
                    };
                    if let Some(clock) = &frame_clock {
                        clock.clear();
                    }
                    if !bucket.take() {
                        s.metrics.bytes_in(text.len());
                        s.metrics.reject(Reason::RateLimited);
                        rate_strikes += 1;
                        if rate_strikes > c.rate_limit_strikes {
                            break (Some(Reason::TooManyStrikes), 1008);
                        }
                        let why = "rate limited".into();
                        out.messages.push(Outgoing::error(id, ACTION_ANNOUNCE, why, None));
                        state.dispatch(&mut out);
                        continue;
                    }
                    rate_strikes = 0;
                    match state.handle_text(id, from, text.as_str(), &mut out) {
                        Ok(()) => {
                            protocol_strikes = 0;
                            idle.as_mut().reset(tokio::time::Instant::now() + c.idle_timeout());
                        }
                        Err(reason) => {
                            s.metrics.reject(reason);
                            protocol_strikes += 1;
                        }
                    }
                    state.dispatch(&mut out);
                    if protocol_strikes > c.protocol_strikes {
                        break (Some(Reason::TooManyStrikes), 1008);
                    }
                }
            }
        }
    };

    s.sockets
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    state.housekeeping(Input::Closed { socket: id });
    if let Some(r) = reason {
        s.metrics.reject(r);
    }
    s.metrics.connection_closed();
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason.map_or("", Reason::as_str)),
    };
    let _ =
        tokio::time::timeout(Duration::from_secs(1), ws.send(Message::Close(Some(frame)))).await;
    drop(publish);
    drop(adm);
}

async fn metrics_page(State(state): State<AppState>) -> Response {
    if !state.0.cfg.http.metrics {
        return StatusCode::NOT_FOUND.into_response();
    }
    let body = state.metrics().render(state.gauges());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn stats_json(State(state): State<AppState>) -> Response {
    if !state.0.cfg.http.stats {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut snap =
        serde_json::to_value(state.metrics().snapshot(state.gauges())).unwrap_or_default();
    if let Some(o) = snap.as_object_mut() {
        o.insert("uptime_ms".into(), state.uptime().as_millis().into());
    }
    axum::Json(snap).into_response()
}

async fn stats_page(State(state): State<AppState>) -> Response {
    if !state.0.cfg.http.stats {
        return StatusCode::NOT_FOUND.into_response();
    }
    Html(STATS_HTML).into_response()
}

/// The live `/stats` page: polls `stats.json` once a second.
const STATS_HTML: &str = include_str!("stats.html");
