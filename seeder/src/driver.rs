//! One site's driver: the loop of `peerhost_core::client`'s module doc, on
//! tokio.
//!
//! A task owns the site's [`Client`] and nothing else touches it. Sockets,
//! peer connections, origin fetches and cache writes run in their own tasks
//! and talk to the driver only through [`Input`]s on one bounded channel; the
//! driver performs every [`Output`] without awaiting anything, then sleeps
//! until the next input, the core's next deadline, or the manifest refresh.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use peerhost_core::client::{
    Client, ClientConfig, Event, ManifestSource, OriginError, Output, Ticket,
};
use peerhost_core::manifest::{self, ManifestError, SignedManifest, SiteKey};
use peerhost_core::piece::Digest;
use peerhost_core::scheduler::{ConnId, RequestId};
use peerhost_core::signal::{Announce, AnnounceEvent, ClientMessage, Sdp, ServerMessage, swarm_id};
use peerhost_core::time::{Instant, UnixTime};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::StartError;
use crate::cache::{Cache, Job};
use crate::metrics::SiteStatus;
use crate::origin::Origin;
use crate::peer::{PeerHandle, PeerNet, Role};
use crate::site_dir::{self, LoadReport};

/// Inputs queued towards one driver. Bounded, so a fast peer waits for the
/// driver instead of filling memory.
const INPUT_QUEUE: usize = 1024;

/// Something that happened, for the driver to feed to its client.
#[derive(Debug)]
pub(crate) enum Input {
    /// The tracker socket is up.
    TrackerUp,
    /// The tracker socket failed or could not be opened.
    TrackerDown,
    /// One text frame from the tracker.
    Tracker(String),
    /// The SDP a connection was asked for, or why there is none.
    LocalSdp {
        /// The connection.
        conn: ConnId,
        /// Offer or answer, with every candidate.
        sdp: Result<Sdp, String>,
    },
    /// A data channel opened.
    PeerOpen(ConnId),
    /// One data-channel message.
    PeerFrame(ConnId, Bytes),
    /// A connection died on its own (not closed by us).
    PeerClosed(ConnId),
    /// An origin fetch finished.
    Origin {
        /// The core's id for it.
        request: RequestId,
        /// The bytes of the range, or why not.
        result: Result<Vec<u8>, OriginError>,
    },
    /// A manifest document re-read from the origin or the site directory.
    ManifestText(Result<String, String>),
    /// The cache writer finished a write.
    Written {
        /// The version written to.
        version: u64,
        /// The asset, or `None` for the manifest.
        path: Option<String>,
        /// Whether it worked.
        result: Result<(), String>,
    },
}

/// What the sites of one process share.
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
    Mirror(Box<Mirror>),
}

#[derive(Debug)]
struct Mirror {
    manifest_url: String,
    origin: Origin,
    cache: Cache,
    writer: Option<mpsc::UnboundedSender<Job>>,
    writer_task: Option<JoinHandle<()>>,
    /// The version being written to the cache, and what of it is written.
    writing: Option<Writing>,
    /// Assets whose fetch failed: wanted again at the next refresh.
    failed: BTreeSet<String>,
}

#[derive(Debug)]
struct Writing {
    version: u64,
    manifest: bool,
    assets: BTreeSet<String>,
    began: tokio::time::Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrackerState {
    Unknown,
    Up,
    Down,
}

/// One site's driver.
#[derive(Debug)]
pub(crate) struct Driver {
    name: String,
    site_key: SiteKey,
    kind: Kind,
    client: Client,
    common: Common,
    start: tokio::time::Instant,
    inputs_tx: mpsc::Sender<Input>,
    inputs: mpsc::Receiver<Input>,
    tracker_tx: Option<mpsc::UnboundedSender<String>>,
    tracker: TrackerState,
    tracker_connects: u64,
    peers: HashMap<ConnId, PeerHandle>,
    tickets: HashMap<Ticket, String>,
    /// The version whose files were read from disk (directory or cache).
    loaded: Option<(u64, BTreeSet<String>)>,
    manifests_refused: u64,
    refreshing: bool,
    last_timeout: Option<Instant>,
    status: Arc<Mutex<SiteStatus>>,
}

/// The wall clock, for manifest validity windows.
pub(crate) fn wall() -> UnixTime {
    UnixTime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// The key to trust for a manifest naming `named`: the named key if the
/// operator trusts it (or trusts whatever the directory says), else the
/// first trusted key, so the core's refusal names what was expected.
pub(crate) fn trusted_key(keys: &[SiteKey], named: SiteKey) -> SiteKey {
    if keys.is_empty() || keys.contains(&named) {
        named
    } else {
        keys[0]
    }
}

fn random_seed() -> u64 {
    getrandom::u64().unwrap_or_else(|_| {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        t ^ u64::from(std::process::id()).rotate_left(32)
    })
}

fn report_load(name: &str, version: u64, report: &LoadReport) {
    tracing::info!(
        site = %name,
        "version {version}: {} of {} files verified",
        report.complete,
        report.listed
    );
    for path in &report.missing {
        tracing::warn!(site = %name, "{path}: file missing, not served");
    }
    for (path, taken, listed) in &report.mismatched {
        tracing::warn!(
            site = %name,
            "{path}: does not match the manifest ({taken} of {listed} pieces verify); serving only those"
        );
    }
}

impl Driver {
    fn new(
        name: String,
        site_key: SiteKey,
        kind: Kind,
        client: Client,
        common: Common,
        mirror: bool,
    ) -> Driver {
        let (inputs_tx, inputs) = mpsc::channel(INPUT_QUEUE);
        let status = SiteStatus {
            name: name.clone(),
            site_key: site_key.to_string(),
            mirror,
            ..SiteStatus::default()
        };
        Driver {
            name,
            site_key,
            kind,
            client,
            common,
            start: tokio::time::Instant::now(),
            inputs_tx,
            inputs,
            tracker_tx: None,
            tracker: TrackerState::Unknown,
            tracker_connects: 0,
            peers: HashMap::new(),
            tickets: HashMap::new(),
            loaded: None,
            manifests_refused: 0,
            refreshing: false,
            last_timeout: None,
            status: Arc::new(Mutex::new(status)),
        }
    }

    /// A driver seeding the published directory `dir`.
    pub(crate) fn for_dir(
        dir: &Path,
        keys: &[SiteKey],
        config: ClientConfig,
        common: Common,
    ) -> Result<Driver, StartError> {
        let signed = site_dir::read_manifest(dir)?;
        let key = trusted_key(keys, signed.manifest().site_key);
        let mut client = Client::new(config, key, 0, random_seed(), Instant::ZERO);
        client
            .handle_manifest(Instant::ZERO, wall(), &signed, ManifestSource::Storage)
            .map_err(|error| StartError::Refused {
                what: dir.join(manifest::FILE_NAME).display().to_string(),
                error,
            })?;
        let name = dir.display().to_string();
        let version = signed.manifest().version;
        let report = site_dir::load_assets(&mut client, Instant::ZERO, dir, signed.manifest());
        report_load(&name, version, &report);
        let kind = Kind::Dir {
            dir: dir.to_owned(),
        };
        let mut d = Driver::new(name, key, kind, client, common, false);
        d.loaded = Some((version, BTreeSet::new()));
        d.publish();
        Ok(d)
    }

    /// A driver mirroring the site whose manifest is at `manifest_url`,
    /// fetching assets from `origin_base` (or peers) into `cache_dir`.
    pub(crate) async fn for_mirror(
        manifest_url: &str,
        origin_base: &str,
        keys: &[SiteKey],
        cache_dir: &Path,
        config: ClientConfig,
        common: Common,
    ) -> Result<Driver, StartError> {
        let origin = Origin::new(origin_base).map_err(StartError::Usage)?;
        let cache = Cache::open(cache_dir).map_err(|source| StartError::Cache {
            dir: cache_dir.to_owned(),
            source,
        })?;
        // The newest cached version that still verifies, and the origin's.
        let mut cached: Option<SignedManifest> = None;
        for v in cache.versions() {
            match site_dir::read_manifest(&cache.version_dir(v)) {
                Ok(s) if s.manifest().version == v => {
                    cached = Some(s);
                    break;
                }
                Ok(_) => {
                    tracing::warn!(cache = %cache_dir.display(), "version {v}: manifest of another version; ignored")
                }
                Err(e) => tracing::debug!(cache = %cache_dir.display(), "version {v}: {e}"),
            }
        }
        let fetched = match origin.fetch_manifest(manifest_url).await {
            Ok(text) => SignedManifest::from_json(&text).map_err(|error| StartError::Refused {
                what: manifest_url.to_owned(),
                error,
            }),
            Err(reason) => Err(StartError::ManifestFetch {
                url: manifest_url.to_owned(),
                reason,
            }),
        };
        let named = match (&cached, &fetched) {
            (Some(c), _) => c.manifest().site_key,
            (None, Ok(f)) => f.manifest().site_key,
            (None, Err(_)) => keys[0],
        };
        let key = trusted_key(keys, named);
        let mut client = Client::new(config, key, 0, random_seed(), Instant::ZERO);
        let mut loaded = None;
        if let Some(c) = &cached {
            let v = c.manifest().version;
            if client
                .handle_manifest(Instant::ZERO, wall(), c, ManifestSource::Storage)
                .is_ok()
            {
                let dir = cache.version_dir(v);
                let report = site_dir::load_assets(&mut client, Instant::ZERO, &dir, c.manifest());
                report_load(&cache_dir.display().to_string(), v, &report);
                let on_disk = c
                    .manifest()
                    .assets
                    .iter()
                    .filter(|a| client.asset_bytes(&a.path).is_some())
                    .map(|a| a.path.clone())
                    .collect();
                loaded = Some((v, on_disk));
            }
        }
        let have_cached = loaded.is_some();
        match fetched {
            Ok(signed) => {
                if let Err(error) =
                    client.handle_manifest(Instant::ZERO, wall(), &signed, ManifestSource::Origin)
                    && !have_cached
                {
                    return Err(StartError::Refused {
                        what: manifest_url.to_owned(),
                        error,
                    });
                }
            }
            Err(e) if !have_cached => return Err(e),
            Err(e) => tracing::warn!("{e}; serving the cached version"),
        }
        let mirror = Mirror {
            manifest_url: manifest_url.to_owned(),
            origin,
            cache,
            writer: None,
            writer_task: None,
            writing: None,
            failed: BTreeSet::new(),
        };
        let mut d = Driver::new(
            manifest_url.to_owned(),
            key,
            Kind::Mirror(Box::new(mirror)),
            client,
            common,
            true,
        );
        d.loaded = loaded;
        d.publish();
        Ok(d)
    }

    /// The status the driver publishes.
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
            random_seed(),
            self.inputs_tx.clone(),
            tracker_rx,
        ));
        if let Kind::Mirror(m) = &mut self.kind {
            let (tx, task) = crate::cache::spawn_writer(m.cache.clone(), self.inputs_tx.clone());
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
                input = self.inputs.recv() => match input {
                    Some(input) => self.handle(input),
                    None => break,
                },
                () = sleep_until(deadline) => {
                    let now = self.now();
                    self.last_timeout = Some(now);
                    self.client.handle_timeout(now);
                }
                _ = refresh.tick() => self.refresh(),
            }
        }
        self.shutdown(tracker).await;
    }

    fn handle(&mut self, input: Input) {
        let now = self.now();
        match input {
            Input::TrackerUp => {
                self.tracker = TrackerState::Up;
                self.tracker_connects += 1;
                self.client.handle_tracker_connected(now);
            }
            Input::TrackerDown => {
                // Told once: the core then serves without discovery until it is back.
                if self.tracker != TrackerState::Down {
                    self.tracker = TrackerState::Down;
                    self.client.handle_tracker_closed(now);
                }
            }
            Input::Tracker(text) => match ServerMessage::from_json(&text) {
                Ok(msg) => {
                    if let ServerMessage::Error {
                        action,
                        failure_reason,
                        ..
                    } = &msg
                    {
                        tracing::debug!(site = %self.name, %action, "tracker refused: {failure_reason}");
                    }
                    self.client.handle_tracker(now, msg);
                }
                Err(e) => {
                    tracing::debug!(site = %self.name, error = %e, "unreadable tracker message")
                }
            },
            Input::LocalSdp { conn, sdp } => match sdp {
                Ok(sdp) => self.client.handle_local_sdp(now, conn, sdp),
                Err(e) => {
                    tracing::debug!(site = %self.name, conn = conn.0, "no SDP: {e}");
                    self.peers.remove(&conn);
                    self.client.handle_local_sdp_failed(now, conn);
                }
            },
            Input::PeerOpen(conn) => {
                if self.peers.contains_key(&conn) {
                    self.client.handle_peer_open(now, conn);
                }
            }
            Input::PeerFrame(conn, bytes) => {
                if self.peers.contains_key(&conn) {
                    self.client.handle_peer_frame(now, conn, &bytes);
                }
            }
            Input::PeerClosed(conn) => {
                if self.peers.remove(&conn).is_some() {
                    tracing::debug!(site = %self.name, conn = conn.0, "peer connection ended");
                    self.client.handle_peer_closed(now, conn);
                }
            }
            Input::Origin { request, result } => self.client.handle_origin(now, request, result),
            Input::ManifestText(result) => self.on_manifest_text(now, result),
            Input::Written {
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
            Output::CreateOffer { conn } => self.spawn_peer(conn, Role::Offer),
            Output::AcceptOffer { conn, offer } => self.spawn_peer(conn, Role::Answer(offer.sdp)),
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
                    let inputs = self.inputs_tx.clone();
                    tokio::spawn(async move {
                        let result = origin
                            .fetch_range(&path, range)
                            .await
                            .map_err(|e| OriginError(format!("{path}: {e}")));
                        let _ = inputs.send(Input::Origin { request, result }).await;
                    });
                }
                Kind::Dir { .. } => self.client.handle_origin(
                    now,
                    request,
                    Err(OriginError("no origin: seeding a directory".into())),
                ),
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

    fn spawn_peer(&mut self, conn: ConnId, role: Role) {
        let handle = PeerHandle::spawn(conn, role, self.common.net.clone(), self.inputs_tx.clone());
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
    fn on_new_version(&mut self, now: Instant, version: u64) {
        let Some(current) = self.client.manifest().cloned() else {
            return;
        };
        if current.version() != version {
            return; // already superseded in the same step
        }
        let loaded = match &self.loaded {
            Some((v, files)) if *v == version => Some(files.clone()),
            _ => None,
        };
        match &mut self.kind {
            Kind::Dir { dir } => {
                if loaded.is_some() {
                    return;
                }
                // The site moved on (tracker push, or the directory was
                // republished): serve whatever of it the directory holds.
                let dir = dir.clone();
                let report = site_dir::load_assets(&mut self.client, now, &dir, current.manifest());
                report_load(&self.name, version, &report);
                self.loaded = Some((version, BTreeSet::new()));
            }
            Kind::Mirror(m) => {
                let on_disk = loaded.clone().unwrap_or_default();
                let mut writing = Writing {
                    version,
                    manifest: loaded.is_some(),
                    assets: on_disk,
                    began: tokio::time::Instant::now(),
                };
                let writer = m.writer.clone();
                let send = |job: Job| {
                    if let Some(w) = &writer {
                        let _ = w.send(job);
                    }
                };
                if !writing.manifest {
                    send(Job::Manifest {
                        version,
                        json: current.signed().to_json(),
                    });
                }
                // Tickets of the previous version were re-targeted by path.
                let wanted: HashSet<String> = self.tickets.values().cloned().collect();
                m.failed.clear();
                // A mirror has no page order. Mirrors that start together
                // (a crowd of cooperating hosts) would all ask the origin
                // for the same first pieces; starting at a random asset
                // spreads them, so each can pass on what the others lack.
                let assets = &current.manifest().assets;
                let first = (random_seed() % assets.len().max(1) as u64) as usize;
                for asset in assets[first..].iter().chain(&assets[..first]) {
                    let path = &asset.path;
                    if writing.assets.contains(path) || wanted.contains(path) {
                        continue;
                    }
                    match self.client.asset_bytes(path) {
                        // Unchanged since the previous version: write it out again.
                        Some(body) => send(Job::Asset {
                            version,
                            path: path.clone(),
                            body,
                        }),
                        None => match self.client.want(now, path) {
                            Ok(t) => {
                                self.tickets.insert(t, path.clone());
                            }
                            Err(e) => tracing::warn!(site = %self.name, "{path}: {e}"),
                        },
                    }
                }
                if loaded.is_some() && writing.assets.len() == current.manifest().assets.len() {
                    // Restarted on a full cache: nothing to fetch or write.
                    writing.manifest = true;
                }
                m.writing = Some(writing);
                self.check_mirrored();
            }
        }
    }

    fn on_deliver(&mut self, ticket: Ticket, path: String, body: Vec<u8>) {
        if self.tickets.remove(&ticket).is_none() {
            return;
        }
        let Kind::Mirror(m) = &self.kind else { return };
        let Some(current) = self.client.manifest() else {
            return;
        };
        let Some((_, asset)) = current.manifest().asset(&path) else {
            return;
        };
        // The core verified every piece; this checks we file it under the right version.
        if Digest::of(&body) != asset.digest {
            tracing::error!(site = %self.name, "{path}: delivered bytes do not match the current manifest; not written");
            return;
        }
        if let Some(w) = &m.writer {
            let _ = w.send(Job::Asset {
                version: current.version(),
                path,
                body,
            });
        }
    }

    fn on_written(&mut self, version: u64, path: Option<String>, result: Result<(), String>) {
        let Kind::Mirror(m) = &mut self.kind else {
            return;
        };
        if let Err(e) = result {
            tracing::error!(site = %self.name, "cache write failed: {e}");
            if let Some(p) = path {
                m.failed.insert(p);
            }
            return;
        }
        let Some(w) = m.writing.as_mut().filter(|w| w.version == version) else {
            return;
        };
        match path {
            None => w.manifest = true,
            Some(p) => {
                w.assets.insert(p);
            }
        }
        self.check_mirrored();
    }

    /// When every file of the current version is on disk: report, and
    /// drop older versions.
    fn check_mirrored(&mut self) {
        let Kind::Mirror(m) = &mut self.kind else {
            return;
        };
        let Some(current) = self.client.manifest() else {
            return;
        };
        let Some(w) = &m.writing else { return };
        let listed = current.manifest().assets.len();
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if w.version != current.version()
            || !w.manifest
            || w.assets.len() < listed
            || status.mirrored_version == Some(w.version)
        {
            return;
        }
        status.mirrored_version = Some(w.version);
        drop(status);
        let st = self.client.stats();
        tracing::info!(
            site = %self.name,
            "mirrored version {}: {listed} files, {} bytes, {:.1} s after it became current \
             (downloaded since start: {} bytes from peers, {} from the origin)",
            w.version,
            current.manifest().total_size(),
            w.began.elapsed().as_secs_f64(),
            st.bytes_from_peers,
            st.bytes_from_origin,
        );
        if let Some(writer) = &m.writer {
            let _ = writer.send(Job::Prune { keep: w.version });
        }
    }

    /// Periodic: re-read the manifest, retry failed assets, update the wall clock.
    fn refresh(&mut self) {
        let now = self.now();
        self.client.set_wall_clock(now, wall());
        if let Kind::Mirror(m) = &mut self.kind {
            let failed = std::mem::take(&mut m.failed);
            let wanted: HashSet<String> = self.tickets.values().cloned().collect();
            for path in failed.into_iter().filter(|p| !wanted.contains(p)) {
                match self.client.asset_bytes(&path) {
                    // Held but not written (a cache write failed): write again.
                    Some(body) => {
                        if let (Some(w), Some(cur)) = (&m.writer, self.client.manifest()) {
                            let _ = w.send(Job::Asset {
                                version: cur.version(),
                                path,
                                body,
                            });
                        }
                    }
                    None => {
                        if let Ok(t) = self.client.want(now, &path) {
                            self.tickets.insert(t, path);
                        }
                    }
                }
            }
        }
        if self.refreshing {
            return;
        }
        self.refreshing = true;
        let inputs = self.inputs_tx.clone();
        match &self.kind {
            Kind::Mirror(m) => {
                let origin = m.origin.clone();
                let url = m.manifest_url.clone();
                tokio::spawn(async move {
                    let text = origin.fetch_manifest(&url).await;
                    let _ = inputs.send(Input::ManifestText(text)).await;
                });
            }
            Kind::Dir { dir } => {
                let file = dir.join(manifest::FILE_NAME);
                tokio::spawn(async move {
                    let text = tokio::fs::read_to_string(&file)
                        .await
                        .map_err(|e| format!("cannot read {}: {e}", file.display()));
                    let _ = inputs.send(Input::ManifestText(text)).await;
                });
            }
        }
    }

    fn on_manifest_text(&mut self, now: Instant, text: Result<String, String>) {
        self.refreshing = false;
        let source = match self.kind {
            Kind::Mirror(_) => ManifestSource::Origin,
            Kind::Dir { .. } => ManifestSource::Storage,
        };
        let from = source_name(source);
        match text.map(|t| SignedManifest::from_json(&t)) {
            Err(e) => tracing::warn!(site = %self.name, "cannot re-read the manifest: {e}"),
            Ok(Err(error)) => {
                self.manifests_refused += 1;
                self.log_refusal(from, &error);
            }
            Ok(Ok(signed)) => {
                // Refusals come back as events.
                let _ = self.client.handle_manifest(now, wall(), &signed, source);
            }
        }
    }

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
        // Nobody reads inputs any more: tasks that report fail fast instead of waiting.
        drop(self.inputs);
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
