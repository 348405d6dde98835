//! One WebRTC peer connection and its `peerhost/1` data channel.
//!
//! SDP is exchanged without trickle (as WebTorrent does): the driver waits
//! for ICE gathering to complete, then hands the whole SDP to the core,
//! which sends it through the tracker. Everything that happens is reported
//! as a [`PageEvent`] into the driver's [`Sink`]. The struct owns every
//! closure it registers; dropping it unregisters them and closes the
//! connection.

use std::collections::VecDeque;

use js_sys::{ArrayBuffer, Uint8Array};
use peerhost_core::ice::IceConfig;
use peerhost_core::scheduler::ConnId;
use peerhost_core::signal::{Sdp, SdpKind};
use peerhost_core::wire::CHANNEL_LABEL;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{
    Event, MessageEvent, RtcConfiguration, RtcDataChannel, RtcDataChannelEvent, RtcDataChannelInit,
    RtcDataChannelType, RtcIceGatheringState, RtcIceServer, RtcIceTransportPolicy,
    RtcPeerConnection, RtcPeerConnectionState, RtcSdpType, RtcSessionDescriptionInit,
};

use crate::event::{PageEvent, Sink};
use crate::js::js_text;

/// Bytes queued in the data channel above which we stop sending and queue
/// locally until `bufferedamountlow`.
const HIGH_WATER: u32 = 1024 * 1024;
/// `bufferedAmountLowThreshold`.
const LOW_WATER: u32 = 256 * 1024;
/// Bytes queued locally (above [`HIGH_WATER`] in the channel) before the
/// peer is closed: 2 MiB. A page cannot stop reading a data channel, and a
/// `Reject` would queue like a piece, so a peer that lets this much pile
/// up is dropped. An honest peer never gets near it: it has at most
/// `MAX_REQUESTS_IN_FLIGHT` (64) requests of at most 16 KiB open, 1 MiB,
/// and repeat requests are dropped by the core.
pub const MAX_OUTBOX_BYTES: usize = 2 * 1024 * 1024;
/// Longest wait for ICE gathering before sending what we have.
const GATHER_TIMEOUT_MS: i32 = 3000;

type Callback = Closure<dyn FnMut(Event)>;
type MsgCallback = Closure<dyn FnMut(MessageEvent)>;
type ChannelCallback = Closure<dyn FnMut(RtcDataChannelEvent)>;

/// The closures of a data channel; dropped with it.
struct ChannelHandlers {
    _open: Callback,
    _message: MsgCallback,
    _close: Callback,
    _low: Callback,
}

/// A peer connection, its channel and their handlers.
pub struct PeerConn {
    pc: RtcPeerConnection,
    channel: std::rc::Rc<std::cell::RefCell<Option<(RtcDataChannel, ChannelHandlers)>>>,
    outbox: std::rc::Rc<std::cell::RefCell<Outbox>>,
    _on_state: Callback,
    _on_datachannel: Option<ChannelCallback>,
}

/// A peer connection with the core's ICE servers and policy. With none
/// configured, host candidates only: no third party is contacted.
fn new_pc(ice: &IceConfig) -> Result<RtcPeerConnection, JsValue> {
    let config = RtcConfiguration::new();
    let servers = js_sys::Array::new();
    for s in &ice.servers {
        let server = RtcIceServer::new();
        let urls: js_sys::Array = s.urls.iter().map(|u| JsValue::from_str(u)).collect();
        server.set_urls(&urls);
        if let Some(u) = &s.username {
            server.set_username(u);
        }
        if let Some(c) = &s.credential {
            server.set_credential(c);
        }
        servers.push(&server);
    }
    config.set_ice_servers(&servers);
    if ice.relay_only() {
        config.set_ice_transport_policy(RtcIceTransportPolicy::Relay);
    }
    RtcPeerConnection::new_with_configuration(&config)
}

impl PeerConn {
    /// Creates a connection with a data channel and starts making an offer;
    /// the offer is reported as [`PageEvent::LocalSdp`].
    pub fn offer(conn: ConnId, ice: &IceConfig, sink: Sink) -> Result<PeerConn, JsValue> {
        let pc = new_pc(ice)?;
        let init = RtcDataChannelInit::new();
        init.set_ordered(true);
        let dc = pc.create_data_channel_with_data_channel_dict(CHANNEL_LABEL, &init);
        let me = Self::build(pc.clone(), conn, sink.clone(), None);
        me.attach(dc, conn, sink.clone());
        spawn_local(async move {
            let result = async {
                let offer = JsFuture::from(pc.create_offer()).await?;
                let offer: RtcSessionDescriptionInit = offer.unchecked_into();
                JsFuture::from(pc.set_local_description(&offer)).await?;
                gathered_sdp(&pc).await
            }
            .await;
            report_sdp(&sink, conn, SdpKind::Offer, result);
        });
        Ok(me)
    }

    /// Creates a connection from a remote offer and starts answering it.
    /// The remote channel is reported as [`PageEvent::DataChannel`], for the
    /// driver to [`PeerConn::attach`] to this connection.
    pub fn answer(
        conn: ConnId,
        offer_sdp: &str,
        ice: &IceConfig,
        sink: Sink,
    ) -> Result<PeerConn, JsValue> {
        let pc = new_pc(ice)?;
        let on_datachannel = {
            let sink = sink.clone();
            Closure::<dyn FnMut(RtcDataChannelEvent)>::new(move |ev: RtcDataChannelEvent| {
                let channel = ev.channel();
                if channel.label() == CHANNEL_LABEL {
                    sink.send(PageEvent::DataChannel { conn, channel });
                }
            })
        };
        pc.set_ondatachannel(Some(on_datachannel.as_ref().unchecked_ref()));
        let me = Self::build(pc.clone(), conn, sink.clone(), Some(on_datachannel));
        let offer_sdp = offer_sdp.to_owned();
        spawn_local(async move {
            let result = async {
                let remote = RtcSessionDescriptionInit::new(RtcSdpType::Offer);
                remote.set_sdp(&offer_sdp);
                JsFuture::from(pc.set_remote_description(&remote)).await?;
                let answer = JsFuture::from(pc.create_answer()).await?;
                let answer: RtcSessionDescriptionInit = answer.unchecked_into();
                JsFuture::from(pc.set_local_description(&answer)).await?;
                gathered_sdp(&pc).await
            }
            .await;
            report_sdp(&sink, conn, SdpKind::Answer, result);
        });
        Ok(me)
    }

    fn build(
        pc: RtcPeerConnection,
        conn: ConnId,
        sink: Sink,
        on_dc: Option<ChannelCallback>,
    ) -> PeerConn {
        let on_state = {
            let pc = pc.clone();
            Closure::<dyn FnMut(Event)>::new(move |_| {
                if matches!(
                    pc.connection_state(),
                    RtcPeerConnectionState::Failed | RtcPeerConnectionState::Closed
                ) {
                    sink.send(PageEvent::PeerClosed(conn));
                }
            })
        };
        pc.set_onconnectionstatechange(Some(on_state.as_ref().unchecked_ref()));
        PeerConn {
            pc,
            channel: Default::default(),
            outbox: Default::default(),
            _on_state: on_state,
            _on_datachannel: on_dc,
        }
    }

    /// Wires the data channel's events to the sink.
    pub fn attach(&self, dc: RtcDataChannel, conn: ConnId, sink: Sink) {
        dc.set_binary_type(RtcDataChannelType::Arraybuffer);
        dc.set_buffered_amount_low_threshold(LOW_WATER);
        let open = {
            let sink = sink.clone();
            Closure::<dyn FnMut(Event)>::new(move |_| sink.send(PageEvent::PeerOpen(conn)))
        };
        let message = {
            let sink = sink.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
                if let Ok(buf) = ev.data().dyn_into::<ArrayBuffer>() {
                    let bytes = Uint8Array::new(&buf).to_vec();
                    sink.send(PageEvent::PeerFrame(conn, bytes));
                }
            })
        };
        let close = {
            let sink = sink.clone();
            Closure::<dyn FnMut(Event)>::new(move |_| sink.send(PageEvent::PeerClosed(conn)))
        };
        let low = {
            let outbox = self.outbox.clone();
            let dc = dc.clone();
            Closure::<dyn FnMut(Event)>::new(move |_| flush(&dc, &mut outbox.borrow_mut()))
        };
        dc.set_onopen(Some(open.as_ref().unchecked_ref()));
        dc.set_onmessage(Some(message.as_ref().unchecked_ref()));
        dc.set_onclose(Some(close.as_ref().unchecked_ref()));
        dc.set_onbufferedamountlow(Some(low.as_ref().unchecked_ref()));
        if dc.ready_state() == web_sys::RtcDataChannelState::Open {
            // The answerer may receive a channel that is already open: no
            // `open` event will come. Report it once the caller is done.
            spawn_local(async move { sink.send(PageEvent::PeerOpen(conn)) });
        }
        *self.channel.borrow_mut() = Some((
            dc,
            ChannelHandlers {
                _open: open,
                _message: message,
                _close: close,
                _low: low,
            },
        ));
    }

    /// Applies the remote answer to our offer.
    pub fn apply_answer(&self, sdp: &str) {
        let pc = self.pc.clone();
        let init = RtcSessionDescriptionInit::new(RtcSdpType::Answer);
        init.set_sdp(sdp);
        spawn_local(async move {
            // A failure shows up as a connection that never opens; the core times it out.
            let _ = JsFuture::from(pc.set_remote_description(&init)).await;
        });
    }

    /// Sends one frame, queueing above the high-water mark. `Err` the
    /// first time the local queue would pass [`MAX_OUTBOX_BYTES`]: the
    /// caller closes the peer (later frames are dropped until it does).
    pub fn send(&mut self, bytes: Vec<u8>) -> Result<(), OutboxFull> {
        let chan = self.channel.borrow();
        let Some((dc, _)) = chan.as_ref() else {
            return Ok(());
        };
        let mut outbox = self.outbox.borrow_mut();
        let pushed = outbox.push(bytes);
        flush(dc, &mut outbox);
        pushed
    }
}

/// The local queue of a peer's frames passed [`MAX_OUTBOX_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxFull;

/// Frames waiting for the data channel's buffer to drain, bounded in bytes.
#[derive(Debug, Default)]
struct Outbox {
    frames: VecDeque<Vec<u8>>,
    bytes: usize,
    /// Passed the cap once: everything is dropped from then on.
    full: bool,
}

impl Outbox {
    fn push(&mut self, frame: Vec<u8>) -> Result<(), OutboxFull> {
        if self.full {
            return Ok(());
        }
        if self.bytes + frame.len() > MAX_OUTBOX_BYTES {
            self.full = true;
            self.frames.clear();
            self.bytes = 0;
            return Err(OutboxFull);
        }
        self.bytes += frame.len();
        self.frames.push_back(frame);
        Ok(())
    }

    fn pop(&mut self) -> Option<Vec<u8>> {
        let f = self.frames.pop_front()?;
        self.bytes -= f.len();
        Some(f)
    }

    fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }
}

fn flush(dc: &RtcDataChannel, outbox: &mut Outbox) {
    while dc.buffered_amount() < HIGH_WATER {
        let Some(bytes) = outbox.pop() else {
            break;
        };
        if dc.send_with_u8_array(&bytes).is_err() {
            outbox.clear();
            break;
        }
    }
}

/// Drops a connection on a later microtask: its own callbacks may be
/// running right now, and a closure must not be freed while it runs.
pub fn retire(pc: Option<PeerConn>) {
    if let Some(pc) = pc {
        spawn_local(async move { drop(pc) });
    }
}

impl Drop for PeerConn {
    fn drop(&mut self) {
        if let Some((dc, _)) = self.channel.borrow_mut().take() {
            dc.set_onopen(None);
            dc.set_onmessage(None);
            dc.set_onclose(None);
            dc.set_onbufferedamountlow(None);
            dc.close();
        }
        self.pc.set_onconnectionstatechange(None);
        self.pc.set_ondatachannel(None);
        self.pc.close();
    }
}

/// Waits for ICE gathering to complete (bounded), then returns the local SDP.
async fn gathered_sdp(pc: &RtcPeerConnection) -> Result<String, JsValue> {
    let mut waited = 0;
    while pc.ice_gathering_state() != RtcIceGatheringState::Complete && waited < GATHER_TIMEOUT_MS {
        sleep(20).await;
        waited += 20;
    }
    pc.local_description()
        .map(|d| d.sdp())
        .ok_or_else(|| JsValue::from_str("no local description"))
}

async fn sleep(ms: i32) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(p).await;
}

fn report_sdp(sink: &Sink, conn: ConnId, kind: SdpKind, result: Result<String, JsValue>) {
    let sdp = result
        .map(|sdp| Sdp { kind, sdp })
        .map_err(|e| format!("SDP for peer {} failed: {}", conn.0, js_text(&e)));
    sink.send(PageEvent::LocalSdp { conn, sdp });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_refuses_past_its_cap_once_then_drops() {
        let mut o = Outbox::default();
        let frame = vec![0u8; 16 * 1024 + 9];
        let fit = MAX_OUTBOX_BYTES / frame.len();
        for _ in 0..fit {
            assert_eq!(o.push(frame.clone()), Ok(()));
        }
        assert!(o.bytes <= MAX_OUTBOX_BYTES);
        assert_eq!(o.push(frame.clone()), Err(OutboxFull));
        assert_eq!((o.bytes, o.frames.len()), (0, 0));
        // Until the driver closes the peer, more frames cost nothing.
        for _ in 0..1000 {
            assert_eq!(o.push(frame.clone()), Ok(()));
        }
        assert_eq!(o.bytes, 0);
    }

    #[test]
    fn sent_frames_make_room() {
        let mut o = Outbox::default();
        o.push(vec![1; MAX_OUTBOX_BYTES]).unwrap();
        assert_eq!(o.pop().map(|f| f.len()), Some(MAX_OUTBOX_BYTES));
        assert_eq!(o.push(vec![1; 10]), Ok(()));
        assert_eq!(o.bytes, 10);
    }
}
