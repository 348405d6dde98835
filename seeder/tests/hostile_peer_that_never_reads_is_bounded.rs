//! Issue 12 end to end: a real webrtc-rs peer meets a seeder through a real
//! tracker, completes the `peerhost/1` handshake, then floods piece
//! requests (repeats, and request–cancel–request cycles that the core
//! serves again) while never reading its data channel. The seeder's upload
//! queue for it stays within the per-peer cap plus the designed slack, the
//! process total within its cap, and an honest mirror is still served while
//! the hostile peer stays connected.
//!
//! "Never reads": the hostile peer never calls `DataChannel::poll` after the
//! handshake. webrtc-rs 0.21 then stops draining SCTP once its 256-event
//! queue is full, so its receive window closes and the seeder's writer
//! blocks; the test checks this by counting what did arrive.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{Origin, TestSite, Tracker, start, status, wait_for, within};
use futures::{FutureExt as _, SinkExt as _, StreamExt as _};
use peerhost_core::signal::{
    Announce, AnnounceEvent, ClientMessage, Offer, OfferId, PeerId, Sdp, ServerMessage, swarm_id,
};
use peerhost_core::wire::{CHANNEL_LABEL, Frame, MAX_FRAME_LEN, MAX_PIECE_DATA};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use webrtc::data_channel::{DataChannel, DataChannelEvent, RTCDataChannelInit};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceGatheringState, RTCSessionDescription, SettingEngineBuilder,
};

/// Piece requests per round; every round asks for every piece again.
const ROUNDS: u32 = 8;
/// How long the gate must hold once the queue reached its cap.
const HOLD: Duration = Duration::from_secs(3);
/// The default caps docs/security.md promises (`outbox::MAX_QUEUED_BYTES_PER_PEER`
/// and `MAX_QUEUED_BYTES`), written out rather than read from the seeder,
/// so that a seeder whose cap is lifted fails here.
const CAP_PER_PEER: usize = 1 << 20;
const CAP: usize = 16 << 20;

struct Gathered(mpsc::UnboundedSender<()>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Gathered {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.0.send(());
        }
    }
}

/// The next data-channel event, bounded in time.
async fn next_event(dc: &Arc<dyn DataChannel>, what: &str) -> DataChannelEvent {
    within(what, Duration::from_secs(20), dc.poll())
        .await
        .unwrap_or_else(|| panic!("channel ended waiting for {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peer_that_never_reads_is_bounded() {
    if !common::netns_or_skip("hostile_peer_that_never_reads_is_bounded") {
        return;
    }
    common::init_tracing();
    let tracker = Tracker::start().await;
    let url = tracker.url();
    // 6 MiB: 384 pieces of 16 KiB.
    let site = TestSite::generate(12, &[1 << 20; 6], 1);
    let dir = tempfile::tempdir().unwrap();
    site.write_to(dir.path());
    let origin = Origin::start(&site).await;
    let seeder = start(&["--site", dir.path().to_str().unwrap(), "--tracker", &url]).await;
    wait_for("the seeder to join", Duration::from_secs(30), || {
        tracker.peers() >= 1
    })
    .await;

    // ---- the hostile peer: an offer through the tracker, as a browser would
    let (gathered_tx, mut gathered) = mpsc::unbounded_channel();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_setting_engine(
            SettingEngineBuilder::new()
                .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
                .with_sctp_max_receive_buffer_size(64 * 1024)
                .build(),
        )
        .with_handler(Arc::new(Gathered(gathered_tx)))
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .expect("peer connection");
    let init = RTCDataChannelInit {
        ordered: true,
        ..Default::default()
    };
    let dc = pc
        .create_data_channel(CHANNEL_LABEL, Some(init))
        .await
        .expect("data channel");
    let offer = pc.create_offer(None).await.unwrap();
    pc.set_local_description(offer).await.unwrap();
    within("ICE gathering", Duration::from_secs(10), gathered.recv()).await;
    let offer_sdp = pc.local_description().await.expect("local offer").sdp;

    let (mut ws, _) = within(
        "tracker connect",
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url.as_str()),
    )
    .await
    .expect("tracker connects");
    let info_hash = swarm_id(&site.secret.site_key(), 1);
    let me = PeerId([0xee; 20]);
    let announce = ClientMessage::Announce(Announce {
        info_hash,
        peer_id: me,
        numwant: Some(1),
        uploaded: 0,
        downloaded: 0,
        left: Some(site.total()),
        event: AnnounceEvent::Started,
        offers: vec![Offer {
            offer_id: OfferId([0x0f; 20]),
            offer: Sdp::offer(offer_sdp),
        }],
    });
    ws.send(Message::text(announce.to_json())).await.unwrap();
    let answer = within("the seeder's answer", Duration::from_secs(20), async {
        // Bounded by the timeout; the tracker may also relay the seeder's
        // own offers, which a hostile peer ignores.
        loop {
            let msg = ws.next().await.expect("tracker open").expect("ws frame");
            let Message::Text(text) = msg else { continue };
            if let Ok(ServerMessage::Answer(a)) = ServerMessage::from_json(&text) {
                return a.answer.sdp;
            }
        }
    })
    .await;
    pc.set_remote_description(RTCSessionDescription::answer(answer).unwrap())
        .await
        .unwrap();

    // The handshake: read until the seeder's, send ours, then never read again.
    let mut piece_count = None;
    for _ in 0..8 {
        match next_event(&dc, "the channel to open and the seeder's handshake").await {
            DataChannelEvent::OnMessage(m) => {
                if let Ok(Frame::Handshake { piece_count: n, .. }) = Frame::decode(&m.data) {
                    piece_count = Some(n);
                    break;
                }
            }
            DataChannelEvent::OnClose => panic!("seeder closed the channel"),
            _ => {}
        }
    }
    let pieces = piece_count.expect("the seeder's handshake");
    assert_eq!(u64::from(pieces), site.total().div_ceil(16 * 1024));
    let ours = Frame::Handshake {
        site_key: site.secret.site_key().0,
        version: 1,
        piece_count: pieces,
        have: vec![0; (pieces as usize).div_ceil(8)],
    };
    dc.send(BytesMut::from(&ours.encode()[..])).await.unwrap();

    // ---- the flood: every piece, again and again, as fast as sends go
    // (no send-buffer limit on this side: `send` never waits).
    let began = Instant::now();
    let flooder = {
        let dc = dc.clone();
        tokio::spawn(async move {
            let mut frames = 0u64;
            for round in 0..ROUNDS {
                for piece in 0..pieces {
                    let mut burst = Vec::with_capacity(3);
                    if round > 0 {
                        // Clears the core's record, so the repeat is served.
                        burst.push(Frame::Cancel { piece });
                    }
                    burst.push(Frame::Request { piece });
                    // A plain repeat: the core drops it.
                    burst.push(Frame::Request { piece });
                    for f in burst {
                        if dc.send(BytesMut::from(&f.encode()[..])).await.is_err() {
                            return frames;
                        }
                        frames += 1;
                    }
                }
            }
            frames
        })
    };
    let requested = u64::from(ROUNDS) * u64::from(pieces) * MAX_PIECE_DATA as u64;

    // ---- the seeder's side, sampled: first until the queue reaches the
    // cap (the writer is stuck: the peer does not read), then for HOLD.
    // By design a queue may pass its cap by what the frames already read
    // produce (`slack_per_peer`); the process total by that much per peer
    // (one, during the flood).
    let slack = seeder.upload_queues().slack_per_peer;
    let bound = CAP_PER_PEER + slack;
    let total_bound = CAP + slack;
    let mut samples = 0u32;
    let mut max_seen = 0usize;
    let mut full_at = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let q = seeder.upload_queues();
        samples += 1;
        max_seen = max_seen.max(q.queued);
        assert!(
            q.peak_per_peer <= bound && q.peak <= total_bound,
            "the gate let the queue grow: {q:?} after {:.2} s \
             (bounds: {bound} per peer, {total_bound} in the process)",
            began.elapsed().as_secs_f64(),
        );
        match full_at {
            None if q.peak_per_peer >= CAP_PER_PEER => full_at = Some(Instant::now()),
            Some(t) if t.elapsed() >= HOLD => break,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "the hostile peer's queue never reached the cap: {q:?}; is it reading?"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sent_frames = within(
        "the flood to be handed over",
        Duration::from_secs(30),
        flooder,
    )
    .await
    .unwrap();
    let q = seeder.upload_queues();

    // What reached the hostile peer: only what its stalled queue holds,
    // taken without waiting (at most 256 events are buffered on its side).
    let mut arrived = 0usize;
    let mut events = 0;
    while events < 1000 {
        match dc.poll().now_or_never() {
            Some(Some(DataChannelEvent::OnMessage(m))) => arrived += m.data.len(),
            Some(Some(_)) => {}
            _ => break,
        }
        events += 1;
    }
    eprintln!(
        "figures: {sent_frames} frames sent asking for {requested} bytes; {samples} samples; \
         queued peaked at {} for the peer (cap {CAP_PER_PEER}, bound {bound}), {} in the process \
         (cap {CAP}), max sampled {max_seen}, {} now; {arrived} bytes had arrived unread at the peer",
        q.peak_per_peer, q.peak, q.queued
    );
    assert_eq!(sent_frames, u64::from(ROUNDS * pieces * 3 - pieces));
    assert!(
        (arrived as u64) < requested / 4,
        "the peer was not stalled: {arrived} of {requested} bytes arrived"
    );
    assert!(q.peak_per_peer >= CAP_PER_PEER && q.peak_per_peer <= bound);
    // Still full after HOLD (within one piece the writer may have sent):
    // the seeder's writer is stuck, the peer takes nothing.
    assert!(
        q.queued + MAX_FRAME_LEN >= CAP_PER_PEER,
        "the hostile peer's queue drained: {q:?}"
    );
    assert!(q.peak <= total_bound);

    // ---- an honest mirror, while the hostile peer is still connected
    let cache = tempfile::tempdir().unwrap();
    let mirror = start(&[
        "--manifest-url",
        &origin.url("/peerhost.json"),
        "--site-key",
        &site.key(),
        "--cache",
        cache.path().to_str().unwrap(),
        "--tracker",
        &url,
    ])
    .await;
    wait_for("the honest mirror", Duration::from_secs(90), || {
        status(&mirror).mirrored_version == Some(1)
    })
    .await;
    site.assert_files_in(&cache.path().join("1"));
    let m = status(&mirror);
    eprintln!(
        "figures: honest mirror got {} bytes from peers, {} from the origin",
        m.bytes_from_peers, m.bytes_from_origin
    );
    assert!(
        m.bytes_from_peers >= site.total() / 2,
        "the seeder did not serve the honest mirror: {m:?}"
    );
    assert!(
        seeder.upload_queues().peak_per_peer <= bound,
        "still bounded after the mirror"
    );

    let _ = within("hostile close", Duration::from_secs(10), pc.close()).await;
    within(
        "mirror shutdown",
        Duration::from_secs(15),
        mirror.shutdown(),
    )
    .await;
    within(
        "seeder shutdown",
        Duration::from_secs(15),
        seeder.shutdown(),
    )
    .await;
    tracker.stop().await;
}
