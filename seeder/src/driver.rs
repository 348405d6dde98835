//! One site's seeder: the loop of `peerhost_core::client`'s module doc, on
//! tokio.
//!
//! A [`SiteSeeder`] task owns the site's [`Client`] and nothing else touches
//! it. Sockets, peer connections, origin fetches and cache writes run in
//! their own tasks and report only through [`SeederEvent`]s on one bounded
//! channel; [`SiteSeeder::handle`] is the one place where they become client
//! inputs. The seeder performs every [`Output`] without awaiting anything,
//! then sleeps until the next event, the core's next deadline, or the
//! manifest refresh. Starting a site is in `start`, a mirror's cache
//! bookkeeping and the manifest refresh in `mirror`.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use peerhost_core::client::{Client, Event, Input, ManifestSource, OriginError, Output, Ticket};
use peerhost_core::ice::IceConfig;
use peerhost_core::manifest::{ManifestError, SiteKey};
use peerhost_core::scheduler::ConnId;
use peerhost_core::signal::{Announce, AnnounceEvent, ClientMessage, ServerMessage, swarm_id};
use peerhost_core::time::Instant;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::event::{EventTx, SeederEvent};
use crate::metrics::SiteStatus;
use crate::peer::{PeerHandle, PeerNet, Role};

mod mirror;
mod start;

/// Events queued towards one site's seeder (see [`EventTx`]).
const EVENT_QUEUE: usize = 1024;

#[derive(Debug, Clone)]
pub(crate) struct Common {
    /// Tracker WebSocket URL.
    pub tracker: String,
    /// How peer connections are made.
    pub net: Arc<PeerNet>,
    /// How often the manifest is re-read.
    pub refresh: Duration,
}

/// Where a site's manifest and files come from.
#[derive(Debug)]
enum Kind {
    /// A published directory: its files are served as they are.
    Dir { dir: PathBuf },
    /// A mirrored site: fetched from peers or the origin, kept in a cache.
    Mirror(Box<mirror::Mirror>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrackerState {
    Unknown,
    Up,
    Down,
}

/// One site's driver.
#[derive(Debug)]
pub(crate) struct SiteSeeder {
    name: String,
    site_key: SiteKey,
    kind: Kind,
    client: Client,
    common: Common,
    start: tokio::time::Instant,
    events_tx: EventTx,
    events: mpsc::Receiver<SeederEvent>,
    tracker_tx: Option<mpsc::UnboundedSender<String>>,
    tracker: TrackerState,
    tracker_connects: u64,
    peers: HashMap<ConnId, PeerHandle>,
    tickets: HashMap<Ticket, String>,
    /// Tickets handed out so far (the next one's number).
    tickets_issued: u64,
    /// The version whose files were read from disk (directory or cache).
    loaded: Option<(u64, BTreeSet<String>)>,
    manifests_refused: u64,
    refreshing: bool,
    last_timeout: Option<Instant>,
    status: Arc<Mutex<SiteStatus>>,
}

impl SiteSeeder {
    fn new(
        name: String,
        site_key: SiteKey,
        kind: Kind,
        client: Client,
        common: Common,
        mirror: bool,
    ) -> SiteSeeder {
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let status = SiteStatus {
            name: name.clone(),
            site_key: site_key.to_string(),
            mirror,
            ..SiteStatus::default()
        };
        SiteSeeder {
            name,
            site_key,
            kind,
            client,
            common,
            start: tokio::time::Instant::now(),
            events_tx,
            events,
            tracker_tx: None,
            tracker: TrackerState::Unknown,
            tracker_connects: 0,
            peers: HashMap::new(),
            tickets: HashMap::new(),
            tickets_issued: 0,
            loaded: None,
            manifests_refused: 0,
            refreshing: false,
            last_timeout: None,
            status: Arc::new(Mutex::new(status)),
        }
    }

    /// A driver seeding the published directory `dir`.
    /// The status the site publishes.
    pub(crate) fn status(&self) -> Arc<Mutex<SiteStatus>> {
        self.status.clone()
    }

    fn now(&self) -> Instant {
        Instant(self.start.elapsed().as_millis() as u64)
    }

    /// Runs until `stop` turns true, then says goodbye and closes everything.
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let (tracker_tx, tracker_rx) = mpsc::unbounded_channel();
        self.tracker_tx = Some(tracker_tx);
        let tracker = tokio::spawn(crate::tracker::run(
            self.common.tracker.clone(),
            self.name.clone(),
            start::random_seed(),
            self.events_tx.clone(),
            tracker_rx,
        ));
        if let Kind::Mirror(m) = &mut self.kind {
            let (tx, task) = crate::cache::spawn_writer(m.cache.clone(), self.events_tx.clone());
            m.writer = Some(tx);
            m.writer_task = Some(task);
        }
        let every = self.common.refresh;
        let mut refresh = tokio::time::interval_at(self.start + every, every);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.pump();
            self.publish();
            // Never fire twice in the same millisecond: a deadline the core
            // keeps in the past must not spin the loop.
            let deadline = self.client.poll_timeout().map(|t| {
                let t = self.last_timeout.map_or(t, |l| t.max(Instant(l.0 + 1)));
                self.start + Duration::from_millis(t.0)
            });
            tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => break,
                event = self.events.recv() => match event {
                    Some(event) => self.handle(event),
                    None => break,
                },
                () = sleep_until(deadline) => {
                    let now = self.now();
                    self.last_timeout = Some(now);
                    self.client.handle_input(now, Input::Timeout);
                }
                _ = refresh.tick() => self.refresh(),
            }
        }
        self.shutdown(tracker).await;
    }

    /// Feeds one event to the client: the one place where what the tasks
    /// report becomes client input.
    fn handle(&mut self, event: SeederEvent) {
        let now = self.now();
        match event {
            SeederEvent::TrackerUp => {
                self.tracker = TrackerState::Up;
                self.tracker_connects += 1;
                self.client.handle_input(now, Input::TrackerConnected);
            }
            SeederEvent::TrackerDown => {
                // Told once: the core then serves without discovery until it is back.
                if self.tracker != TrackerState::Down {
                    self.tracker = TrackerState::Down;
                    self.client.handle_input(now, Input::TrackerClosed);
                }
            }
            SeederEvent::Tracker(text) => match ServerMessage::from_json(&text) {
                Ok(msg) => {
                    if let ServerMessage::Error {
                        action,
                        failure_reason,
                        ..
                    } = &msg
                    {
                        tracing::debug!(site = %self.name, %action, "tracker refused: {failure_reason}");
                    }
                    self.client.handle_input(now, Input::Tracker(msg));
                }
                Err(e) => {
                    tracing::debug!(site = %self.name, error = %e, "unreadable tracker message")
                }
            },
            SeederEvent::LocalSdp { conn, sdp } => match sdp {
                Ok(sdp) => self.client.handle_input(now, Input::LocalSdp { conn, sdp }),
                Err(e) => {
                    tracing::debug!(site = %self.name, conn = conn.0, "no SDP: {e}");
                    self.peers.remove(&conn);
                    self.client
                        .handle_input(now, Input::LocalSdpFailed { conn });
                }
            },
            SeederEvent::PeerOpen(conn) => {
                if self.peers.contains_key(&conn) {
                    self.client.handle_input(now, Input::PeerOpen { conn });
                }
            }
            SeederEvent::PeerFrame(conn, bytes) => {
                if let Some(p) = self.peers.get(&conn) {
                    p.frame_handled();
                    self.client.handle_input(
                        now,
                        Input::PeerData {
                            conn,
                            data: Bytes::copy_from_slice(&bytes),
                        },
                    );
                }
            }
            SeederEvent::PeerClosed(conn) => {
                if self.peers.remove(&conn).is_some() {
                    tracing::debug!(site = %self.name, conn = conn.0, "peer connection ended");
                    self.client.handle_input(now, Input::PeerClosed { conn });
                }
            }
            SeederEvent::Origin { request, result } => self.client.handle_input(
                now,
                Input::Origin {
                    request,
                    result: (result).map(Bytes::from),
                },
            ),
            SeederEvent::ManifestText(result) => self.on_manifest_text(now, result),
            SeederEvent::Written {
                version,
                path,
                result,
            } => self.on_written(version, path, result),
        }
    }

    /// Performs every output the client has.
    fn pump(&mut self) {
        while let Some(out) = self.client.poll_output() {
            self.perform(out);
        }
    }

    fn perform(&mut self, out: Output) {
        let now = self.now();
        match out {
            Output::Tracker(msg) => {
                if let Some(tx) = &self.tracker_tx {
                    let _ = tx.send(msg.to_json());
                }
            }
            Output::CreateOffer { conn, ice } => self.spawn_peer(conn, Role::Offer, ice),
            Output::AcceptOffer { conn, offer, ice } => {
                self.spawn_peer(conn, Role::Answer(offer.sdp), ice)
            }
            Output::ApplyAnswer { conn, answer } => {
                if let Some(p) = self.peers.get(&conn) {
                    p.apply_answer(answer.sdp);
                }
            }
            Output::SendPeer { conn, frame } => {
                if let Some(p) = self.peers.get(&conn) {
                    p.send(frame.encode());
                }
            }
            // Hashing and signature checks stay inline here
            // (deferred_hashing and deferred_signatures are off).
            Output::HashPiece { .. } | Output::VerifySignature { .. } => {}
            Output::ClosePeer { conn, reason } => {
                // Dropping the handle ends the connection's task.
                self.peers.remove(&conn);
                tracing::debug!(site = %self.name, conn = conn.0, ?reason, "closed peer");
            }
            Output::FetchOrigin {
                request,
                path,
                range,
            } => match &self.kind {
                Kind::Mirror(m) => {
                    let origin = m.origin.clone();
                    let events = self.events_tx.clone();
                    tokio::spawn(async move {
                        let result = origin
                            .fetch_range(&path, range)
                            .await
                            .map_err(|e| OriginError(format!("{path}: {e}")));
                        let _ = events.send(SeederEvent::Origin { request, result }).await;
                    });
                }
                Kind::Dir { .. } => self.handle(SeederEvent::Origin {
                    request,
                    result: Err(OriginError("no origin: seeding a directory".into())),
                }),
            },
            Output::Deliver {
                ticket, path, body, ..
            } => self.on_deliver(ticket, path, body.to_vec()),
            Output::Failed { ticket, error } => {
                if let Some(path) = self.tickets.remove(&ticket) {
                    tracing::warn!(site = %self.name, "{error}; trying again at the next refresh");
                    if let Kind::Mirror(m) = &mut self.kind {
                        m.failed.insert(path);
                    }
                }
            }
            Output::Event(ev) => self.on_event(now, ev),
        }
    }

    fn spawn_peer(&mut self, conn: ConnId, role: Role, ice: IceConfig) {
        let handle = PeerHandle::spawn(
            conn,
            role,
            ice,
            self.common.net.clone(),
            self.events_tx.clone(),
        );
        self.peers.insert(conn, handle);
    }

    fn on_event(&mut self, now: Instant, ev: Event) {
        match ev {
            Event::ManifestAccepted { version, source } => {
                tracing::info!(site = %self.name, "serving version {version} (manifest from {})", source_name(source));
                self.on_new_version(now, version);
            }
            Event::ManifestRefused { source, error } => {
                self.manifests_refused += 1;
                self.log_refusal(source_name(source), &error);
            }
            Event::PeerConnected { conn } => {
                tracing::debug!(site = %self.name, conn = conn.0, "peer connected");
            }
            Event::PeerBanned { conn, peer, reason } => {
                tracing::warn!(
                    site = %self.name,
                    conn = conn.0,
                    peer = ?peer,
                    "peer dropped for misbehaving: {reason}"
                );
            }
        }
    }

    fn log_refusal(&self, from: &str, error: &ManifestError) {
        let serving = self
            .client
            .manifest()
            .map_or("nothing yet".to_owned(), |m| {
                format!("version {}", m.version())
            });
        match error {
            // Old news, not an attack.
            ManifestError::Rollback { .. } => {
                tracing::debug!(site = %self.name, "manifest from {from} not newer: {error}");
            }
            _ => tracing::warn!(
                site = %self.name,
                "manifest from {from} refused: {error}; still serving {serving}"
            ),
        }
    }

    /// A manifest became current: take or fetch its files.
    fn publish(&self) {
        let st = self.client.stats();
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.version = self.client.manifest().map(|m| m.version());
        s.complete = self.client.is_complete();
        s.peers = self.client.active_peers();
        s.tracker_connected = self.tracker == TrackerState::Up;
        s.tracker_connects = self.tracker_connects;
        s.bytes_uploaded = st.bytes_uploaded;
        s.bytes_from_peers = st.bytes_from_peers;
        s.bytes_from_origin = st.bytes_from_origin;
        s.pieces_rejected = st.pieces_rejected;
        s.peers_banned = st.peers_banned;
        s.manifests_refused = self.manifests_refused;
    }

    /// Leaves the swarm, closes every connection, finishes cache writes.
    async fn shutdown(mut self, tracker: JoinHandle<()>) {
        if self.tracker == TrackerState::Up
            && let (Some(m), Some(tx)) = (self.client.manifest(), &self.tracker_tx)
        {
            let st = self.client.stats();
            let bye = ClientMessage::Announce(Announce {
                info_hash: swarm_id(&self.site_key, m.version()),
                peer_id: self.client.peer_id(),
                numwant: Some(0),
                uploaded: st.bytes_uploaded,
                downloaded: st.bytes_from_peers,
                left: None,
                event: AnnounceEvent::Stopped,
                offers: Vec::new(),
            });
            let _ = tx.send(bye.to_json());
        }
        // Dropping the senders ends the tracker task (after the goodbye)
        // and every peer task.
        self.tracker_tx = None;
        let peers: Vec<JoinHandle<()>> = self.peers.drain().map(|(_, p)| p.close()).collect();
        // Nobody reads events any more: tasks that report fail fast instead of waiting.
        drop(self.events);
        let writer = match &mut self.kind {
            Kind::Mirror(m) => {
                m.writer = None;
                m.writer_task.take()
            }
            Kind::Dir { .. } => None,
        };
        let grace = Duration::from_secs(5);
        if let Some(w) = writer {
            let _ = tokio::time::timeout(grace, w).await;
        }
        let _ = tokio::time::timeout(grace, futures::future::join_all(peers)).await;
        let _ = tokio::time::timeout(grace, tracker).await;
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        s.peers = 0;
        s.tracker_connected = false;
        tracing::info!(site = %self.name, "stopped");
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn source_name(source: ManifestSource) -> &'static str {
    match source {
        ManifestSource::Origin => "the origin",
        ManifestSource::Tracker => "the tracker",
        ManifestSource::Peer(_) => "a peer",
        ManifestSource::Storage => "disk",
    }
}

/// Asks `client` for the asset at `path` with the next ticket, remembered
/// in `tickets` (the answer is a delivery or a failure with that ticket).
/// A free function: callers hold other fields of the seeder borrowed.
pub(super) fn want(
    client: &mut Client,
    tickets: &mut HashMap<Ticket, String>,
    issued: &mut u64,
    now: Instant,
    path: String,
) {
    let ticket = Ticket(*issued);
    *issued += 1;
    tickets.insert(ticket, path.clone());
    client.handle_input(now, Input::Want { ticket, path });
}
