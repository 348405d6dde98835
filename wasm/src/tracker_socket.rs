//! The WebSocket to the tracker, speaking the WebTorrent dialect as JSON
//! text frames ([`peerhost_core::signal`]).

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{CloseEvent, Event, MessageEvent, WebSocket};

use crate::event::{PageEvent, Sink};
use crate::js::js_text;

/// An open (or opening) tracker socket and its handlers.
pub struct TrackerSocket {
    ws: WebSocket,
    _open: Closure<dyn FnMut(Event)>,
    _message: Closure<dyn FnMut(MessageEvent)>,
    _close: Closure<dyn FnMut(CloseEvent)>,
}

impl TrackerSocket {
    /// Connects to `url`; its events go to `sink`.
    pub fn open(url: &str, sink: Sink) -> Result<TrackerSocket, String> {
        let ws = WebSocket::new(url).map_err(|e| js_text(&e))?;
        let open = {
            let sink = sink.clone();
            Closure::<dyn FnMut(Event)>::new(move |_| sink.send(PageEvent::TrackerOpen))
        };
        let message = {
            let sink = sink.clone();
            Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
                if let Some(text) = ev.data().as_string() {
                    sink.send(PageEvent::TrackerMessage(text));
                }
            })
        };
        let close = Closure::<dyn FnMut(CloseEvent)>::new(move |_| {
            // Dropping the socket's own closures while one runs is not
            // allowed: the driver drops the socket on a later microtask.
            let sink = sink.clone();
            wasm_bindgen_futures::spawn_local(async move { sink.send(PageEvent::TrackerClosed) });
        });
        ws.set_onopen(Some(open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(message.as_ref().unchecked_ref()));
        // An error is always followed by a close.
        ws.set_onclose(Some(close.as_ref().unchecked_ref()));
        Ok(TrackerSocket {
            ws,
            _open: open,
            _message: message,
            _close: close,
        })
    }

    /// Sends one JSON message if the socket is open.
    pub fn send(&self, text: &str) {
        if self.ws.ready_state() == WebSocket::OPEN {
            let _ = self.ws.send_with_str(text);
        }
    }
}

impl Drop for TrackerSocket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}
