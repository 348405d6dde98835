//! One WebRTC peer connection and its `peerhost/1` data channel, on
//! webrtc-rs.
//!
//! Each connection is one task that owns the `PeerConnection`; a reader
//! and a writer subtask own the data channel's two directions. SDP goes
//! without trickle, as the browser driver does: the task waits for ICE
//! gathering to complete and reports the whole SDP. Dropping the
//! [`PeerHandle`] ends the task, which aborts its subtasks and closes the
//! connection; nothing of a peer outlives it.
//!
//! Backpressure: the writer awaits `DataChannel::send`, which blocks while
//! the channel holds more than [`PeerNet::send_buffer_limit`] unacknowledged
//! bytes. What waits in front of it is counted in the peer's [`Outbox`]:
//! while it holds more than [`PeerNet::max_queued_bytes_per_peer`] (or all
//! peers' together more than the process cap), the reader stops reading the
//! peer's frames, so a peer that requests without reading is held back by
//! SCTP flow control instead of growing our memory.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use peerhost_core::ice::IceConfig;
use peerhost_core::scheduler::ConnId;
use peerhost_core::signal::Sdp;
use peerhost_core::wire::CHANNEL_LABEL;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webrtc::data_channel::{
    DataChannel, DataChannelEvent, RTCDataChannelInit, RTCDataChannelState,
};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfiguration,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCIceServer, RTCIceTransportPolicy,
    RTCPeerConnectionState, RTCSessionDescription, SettingEngineBuilder,
};

use crate::event::SeederEvent;
use crate::outbox::{MAX_QUEUED_BYTES, MAX_QUEUED_BYTES_PER_PEER, Outbox, Queued, Totals};

/// How peer connections are set up; one per process.
#[derive(Debug, Clone)]
pub(crate) struct PeerNet {
    /// Local UDP addresses to gather host candidates on (`127.0.0.1:0` in tests).
    pub udp_addrs: Vec<String>,
    /// Unacknowledged bytes a data channel may hold before `send` waits.
    pub send_buffer_limit: usize,
    /// Longest wait for ICE gathering before the SDP is sent as it is.
    pub gather_timeout: Duration,
    /// The SCTP receive window we advertise (bytes a peer may have in
    /// flight towards us); see [`DEFAULT_SCTP_RECEIVE_WINDOW`].
    pub sctp_receive_window: u32,
    /// Bytes queued for one peer's writer before its frames stop being
    /// read; default [`MAX_QUEUED_BYTES_PER_PEER`].
    pub max_queued_bytes_per_peer: usize,
    /// Bytes queued for all peers' writers together (the process's, as
    /// this `PeerNet` is); default [`MAX_QUEUED_BYTES`].
    pub totals: Arc<Totals>,
}

/// Default SCTP receive window: 64 KiB.
///
/// webrtc-rs advertises 1 MiB by default. A sender may then burst far more
/// datagrams than a default UDP socket buffer holds (Linux
/// `net.core.rmem_default` = 208 KiB, about 90 datagrams of ~1.2 KB): on a
/// busy receiver the kernel drops the excess, and SCTP recovers only after
/// a retransmission timeout of at least 1 s. Measured on loopback (1 MB,
/// 2 busy cores): 1 MiB window, 40–80 drops and 1.7–1.9 s per run, some
/// runs stalled past the request timeout; 128 KiB, still drops; 64 KiB, no
/// drop and 0.7 s every run. The window only bounds what we *receive*
/// (requests, for a seeder; pieces, for a mirror): over a path with round
/// trip time `rtt` a mirror pulls at most `window / rtt` from one peer.
pub(crate) const DEFAULT_SCTP_RECEIVE_WINDOW: u32 = 64 * 1024;

impl Default for PeerNet {
    fn default() -> Self {
        PeerNet {
            udp_addrs: vec!["127.0.0.1:0".to_owned()],
            send_buffer_limit: 1 << 20,
            sctp_receive_window: DEFAULT_SCTP_RECEIVE_WINDOW,
            gather_timeout: Duration::from_secs(5),
            max_queued_bytes_per_peer: MAX_QUEUED_BYTES_PER_PEER,
            totals: Totals::new(MAX_QUEUED_BYTES),
        }
    }
}

/// Which side of the handshake we are.
#[derive(Debug)]
pub(crate) enum Role {
    /// We create the channel and the offer.
    Offer,
    /// We answer this remote offer SDP.
    Answer(String),
}

/// What the driver keeps of a connection.
#[derive(Debug)]
pub(crate) struct PeerHandle {
    answers: mpsc::UnboundedSender<String>,
    /// Unbounded as a channel, bounded in bytes by `outbox`'s gate.
    frames: mpsc::UnboundedSender<Queued>,
    outbox: Arc<Outbox>,
    task: JoinHandle<()>,
}

impl PeerHandle {
    /// Starts the connection's task.
    pub(crate) fn spawn(
        conn: ConnId,
        role: Role,
        ice: IceConfig,
        net: Arc<PeerNet>,
        inputs: mpsc::Sender<SeederEvent>,
    ) -> PeerHandle {
        let (answers_tx, answers) = mpsc::unbounded_channel();
        let (frames_tx, frames) = mpsc::unbounded_channel();
        let outbox = Outbox::new(net.max_queued_bytes_per_peer, net.totals.clone());
        let task = tokio::spawn(run(
            conn,
            role,
            ice,
            net,
            inputs,
            answers,
            (frames, outbox.clone()),
        ));
        PeerHandle {
            answers: answers_tx,
            frames: frames_tx,
            outbox,
            task,
        }
    }

    /// Applies the remote answer to our offer.
    pub(crate) fn apply_answer(&self, sdp: String) {
        let _ = self.answers.send(sdp);
    }

    /// Queues one frame for the data channel.
    pub(crate) fn send(&self, frame: Vec<u8>) {
        let _ = self.frames.send(self.outbox.queue(Bytes::from(frame)));
    }

    /// The driver handled one frame this peer's reader passed on.
    pub(crate) fn frame_handled(&self) {
        self.outbox.handled();
    }

    /// Closes the connection and returns its task, to await on shutdown.
    pub(crate) fn close(self) -> JoinHandle<()> {
        self.task
    }
}

/// Events webrtc-rs reports from its driver; forwarded without waiting.
enum Ctl {
    Gathered,
    State(RTCPeerConnectionState),
    Channel(Arc<dyn DataChannel>),
}

struct Handler(mpsc::UnboundedSender<Ctl>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.0.send(Ctl::Gathered);
        }
    }
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.0.send(Ctl::State(state));
    }
    async fn on_data_channel(&self, dc: Arc<dyn DataChannel>) {
        let _ = self.0.send(Ctl::Channel(dc));
    }
}

/// webrtc-rs's configuration for the core's ICE servers and policy.
fn rtc_configuration(ice: &IceConfig) -> RTCConfiguration {
    let servers = ice
        .servers
        .iter()
        .map(|s| RTCIceServer {
            urls: s.urls.clone(),
            username: s.username.clone().unwrap_or_default(),
            credential: s.credential.clone().unwrap_or_default(),
        })
        .collect();
    let policy = if ice.relay_only() {
        RTCIceTransportPolicy::Relay
    } else {
        RTCIceTransportPolicy::All
    };
    RTCConfigurationBuilder::new()
        .with_ice_servers(servers)
        .with_ice_transport_policy(policy)
        .build()
}

async fn build(
    net: &PeerNet,
    ice: &IceConfig,
    ctl: mpsc::UnboundedSender<Ctl>,
) -> Result<impl PeerConnection, String> {
    // mDNS would open a multicast socket (absent in a loopback-only
    // namespace) and hide addresses browsers must dial: off.
    let settings = SettingEngineBuilder::new()
        .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
        .with_sctp_max_receive_buffer_size(net.sctp_receive_window)
        .build();
    PeerConnectionBuilder::new()
        // Host candidates on the configured addresses, plus whatever the
        // ICE servers (ours, then the tracker's) yield.
        .with_configuration(rtc_configuration(ice))
        .with_setting_engine(settings)
        .with_handler(Arc::new(Handler(ctl)))
        .with_udp_addrs(net.udp_addrs.clone())
        .with_data_channel_send_buffer_limit(net.send_buffer_limit)
        .build()
        .await
        .map_err(|e| format!("cannot create a peer connection: {e}"))
}

/// The connection's whole life.
async fn run(
    conn: ConnId,
    role: Role,
    ice: IceConfig,
    net: Arc<PeerNet>,
    inputs: mpsc::Sender<SeederEvent>,
    mut answers: mpsc::UnboundedReceiver<String>,
    frames: (mpsc::UnboundedReceiver<Queued>, Arc<Outbox>),
) {
    let (ctl_tx, mut ctl) = mpsc::unbounded_channel();
    let pc = match build(&net, &ice, ctl_tx).await {
        Ok(pc) => pc,
        Err(e) => {
            let _ = inputs
                .send(SeederEvent::LocalSdp { conn, sdp: Err(e) })
                .await;
            return;
        }
    };
    let mut channel = Channel::new(conn, inputs.clone(), frames);
    let offering = matches!(role, Role::Offer);
    // Events that arrive while we wait for gathering are kept for later.
    let mut early: Vec<Ctl> = Vec::new();
    let setup = async {
        match role {
            Role::Offer => {
                let init = RTCDataChannelInit {
                    ordered: true,
                    ..Default::default()
                };
                let dc = pc
                    .create_data_channel(CHANNEL_LABEL, Some(init))
                    .await
                    .map_err(|e| format!("cannot create the data channel: {e}"))?;
                early.push(Ctl::Channel(dc));
                let offer = pc.create_offer(None).await.map_err(|e| e.to_string())?;
                pc.set_local_description(offer)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Role::Answer(remote) => {
                let remote = RTCSessionDescription::offer(remote).map_err(|e| e.to_string())?;
                pc.set_remote_description(remote)
                    .await
                    .map_err(|e| format!("bad remote offer: {e}"))?;
                let answer = pc.create_answer(None).await.map_err(|e| e.to_string())?;
                pc.set_local_description(answer)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        let gathered = async {
            while let Some(ev) = ctl.recv().await {
                match ev {
                    Ctl::Gathered => return,
                    other => early.push(other),
                }
            }
        };
        // On timeout, send what has been gathered so far.
        let _ = tokio::time::timeout(net.gather_timeout, gathered).await;
        pc.local_description()
            .await
            .map(|d| d.sdp)
            .ok_or_else(|| "no local description".to_owned())
    };
    let sdp = tokio::select! {
        r = setup => r,
        // The driver dropped us while we were still setting up.
        () = closed(&mut answers) => Err(String::new()),
    };
    let sdp = match sdp {
        Ok(sdp) => sdp,
        Err(e) => {
            if !e.is_empty() {
                let _ = inputs
                    .send(SeederEvent::LocalSdp { conn, sdp: Err(e) })
                    .await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), pc.close()).await;
            return;
        }
    };
    let sdp = if offering {
        Sdp::offer(sdp)
    } else {
        Sdp::answer(sdp)
    };
    if inputs
        .send(SeederEvent::LocalSdp { conn, sdp: Ok(sdp) })
        .await
        .is_err()
    {
        let _ = tokio::time::timeout(Duration::from_secs(2), pc.close()).await;
        return;
    }
    for ev in early {
        if let Ctl::Channel(dc) = ev {
            channel.attach(dc).await;
        }
    }
    // Until the driver drops us, or the connection dies.
    let closed_remotely = loop {
        tokio::select! {
            answer = answers.recv() => match answer {
                None => break false,
                Some(sdp) => {
                    let applied = match RTCSessionDescription::answer(sdp) {
                        Ok(d) => pc.set_remote_description(d).await.map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    if let Err(e) = applied {
                        tracing::debug!(conn = conn.0, error = %e, "remote answer refused");
                        break true;
                    }
                }
            },
            ev = ctl.recv() => match ev {
                None => break true,
                Some(Ctl::Channel(dc)) => channel.attach(dc).await,
                Some(Ctl::State(RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed)) => break true,
                Some(_) => {}
            },
            () = channel.ended() => break true,
        }
    };
    channel.stop();
    let _ = tokio::time::timeout(Duration::from_secs(2), pc.close()).await;
    if closed_remotely {
        let _ = inputs.send(SeederEvent::PeerClosed(conn)).await;
    }
}

/// The `peerhost/1` data channel's reader and writer.
struct Channel {
    conn: ConnId,
    inputs: mpsc::Sender<SeederEvent>,
    frames: Option<(mpsc::UnboundedReceiver<Queued>, Arc<Outbox>)>,
    reader: Option<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
}

impl Channel {
    fn new(
        conn: ConnId,
        inputs: mpsc::Sender<SeederEvent>,
        frames: (mpsc::UnboundedReceiver<Queued>, Arc<Outbox>),
    ) -> Channel {
        Channel {
            conn,
            inputs,
            frames: Some(frames),
            reader: None,
            writer: None,
        }
    }

    /// Takes the first channel labelled [`CHANNEL_LABEL`]; others are closed.
    async fn attach(&mut self, dc: Arc<dyn DataChannel>) {
        if self.reader.is_some() || dc.label().await.ok().as_deref() != Some(CHANNEL_LABEL) {
            let _ = dc.close().await;
            return;
        }
        let Some((frames, outbox)) = self.frames.take() else {
            return;
        };
        self.reader = Some(tokio::spawn(read(
            self.conn,
            dc.clone(),
            self.inputs.clone(),
            outbox,
        )));
        self.writer = Some(tokio::spawn(write(dc, frames)));
    }

    /// Resolves when the reader ended (the channel closed); never before
    /// a channel is attached.
    async fn ended(&mut self) {
        match &mut self.reader {
            Some(r) => {
                let _ = r.await;
                self.reader = None;
            }
            None => std::future::pending().await,
        }
    }

    fn stop(&mut self) {
        for task in [self.reader.take(), self.writer.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

async fn read(
    conn: ConnId,
    dc: Arc<dyn DataChannel>,
    inputs: mpsc::Sender<SeederEvent>,
    outbox: Arc<Outbox>,
) {
    // The answerer may get a channel that is already open: then no OnOpen
    // may come, and one that does must not be reported twice.
    let mut opened = false;
    if matches!(dc.ready_state().await, Ok(RTCDataChannelState::Open)) {
        opened = true;
        if inputs.send(SeederEvent::PeerOpen(conn)).await.is_err() {
            return;
        }
    }
    loop {
        // Nothing more is read from a peer whose queue is full: SCTP holds
        // its further frames back (see the module doc of `outbox`).
        if opened {
            outbox.room().await;
        }
        let Some(ev) = dc.poll().await else { return };
        let input = match ev {
            DataChannelEvent::OnOpen if !opened => {
                opened = true;
                SeederEvent::PeerOpen(conn)
            }
            DataChannelEvent::OnMessage(msg) if opened => {
                SeederEvent::PeerFrame(conn, msg.data.freeze())
            }
            DataChannelEvent::OnClose => return,
            // The room taken above is for a frame: give it back.
            _ => {
                if opened {
                    outbox.handled();
                }
                continue;
            }
        };
        if inputs.send(input).await.is_err() {
            return;
        }
    }
}

async fn write(dc: Arc<dyn DataChannel>, mut frames: mpsc::UnboundedReceiver<Queued>) {
    while let Some(mut frame) = frames.recv().await {
        // Counted until written (`frame` drops after the send).
        if dc.send(BytesMut::from(frame.take())).await.is_err() {
            return;
        }
    }
}

/// Resolves once the driver dropped the connection. Used only during
/// setup, when no answer can arrive yet (answers follow our SDP).
async fn closed<T>(rx: &mut mpsc::UnboundedReceiver<T>) {
    while rx.recv().await.is_some() {}
}
