//! Origin fetches for the scheduler: one `Range` request per run of pieces,
//! without credentials, so nothing private is ever fetched into the swarm.

use std::ops::Range;

use js_sys::{ArrayBuffer, Uint8Array};
use peerhost_core::client::OriginError;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, spawn_local};
use web_sys::{Headers, RequestCache, RequestCredentials, RequestInit, Response};

/// Fetches `range` of `path` and calls `done` with its bytes.
///
/// A response marked `Cache-Control: private` or `no-store` is refused:
/// such a response must never be shared with peers.
pub fn fetch_range(
    path: String,
    range: Range<u64>,
    done: impl FnOnce(Result<Vec<u8>, OriginError>) + 'static,
) {
    spawn_local(async move {
        done(
            fetch(&path, range)
                .await
                .map_err(|e| OriginError(format!("{path}: {e}"))),
        );
    });
}

async fn fetch(path: &str, range: Range<u64>) -> Result<Vec<u8>, String> {
    let window = web_sys::window().ok_or("no window")?;
    let headers = Headers::new().map_err(js)?;
    if range.end > range.start {
        headers
            .set("Range", &format!("bytes={}-{}", range.start, range.end - 1))
            .map_err(js)?;
    }
    let init = RequestInit::new();
    init.set_method("GET");
    init.set_credentials(RequestCredentials::Omit);
    init.set_cache(RequestCache::NoStore);
    init.set_headers(&headers);
    let resp: Response = JsFuture::from(window.fetch_with_str_and_init(path, &init))
        .await
        .map_err(js)?
        .dyn_into()
        .map_err(js)?;
    let cache = resp
        .headers()
        .get("cache-control")
        .ok()
        .flatten()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if cache.contains("private") || cache.contains("no-store") {
        return Err("the origin marked it private".into());
    }
    let status = resp.status();
    let buf: ArrayBuffer = JsFuture::from(resp.array_buffer().map_err(js)?)
        .await
        .map_err(js)?
        .dyn_into()
        .map_err(js)?;
    let body = Uint8Array::new(&buf).to_vec();
    match status {
        206 => Ok(body),
        // An origin without Range support sends the whole file.
        200 => body
            .get(range.start as usize..range.end as usize)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| "the origin's file is shorter than the manifest says".into()),
        s => Err(format!("HTTP {s}")),
    }
}

fn js(e: JsValue) -> String {
    crate::js::js_text(&e)
}
