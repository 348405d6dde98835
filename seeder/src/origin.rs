//! The site's origin over HTTP(S): the signed manifest and `Range` requests
//! for runs of pieces, always without credentials or cookies.
//!
//! A response marked `Cache-Control: private` or `no-store` is refused, as
//! the browser driver does: such bytes must never be passed on to peers.
//! Bodies are read only up to what the request can legitimately return.

use std::ops::Range;
use std::time::Duration;

use peerhost_core::manifest::MAX_MANIFEST_LEN;
use reqwest::header::{CACHE_CONTROL, RANGE};
use reqwest::{Response, StatusCode};

/// Longest an origin response may go without a byte. An idle timeout, not
/// a total one: an origin under load (a flash crowd, a bandwidth cap) sends
/// a 1 MiB range slowly but steadily, and a total limit would abort it,
/// retry, and pay for the aborted bytes again — the origin then spends its
/// bandwidth on responses nobody finishes.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest any one origin request may take at all (a trickling origin).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest TCP/TLS connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest manifest document read (what `SignedManifest::from_json` accepts).
const MAX_MANIFEST_JSON: usize = 4 * MAX_MANIFEST_LEN;

/// An HTTP client for one site's origin.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    http: reqwest::Client,
    /// `scheme://host[:port]` plus any path prefix, without a trailing `/`.
    base: String,
}

impl Origin {
    /// A client fetching asset paths relative to `base`.
    pub(crate) fn new(base: &str) -> Result<Origin, String> {
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .user_agent(concat!("peerhost-seeder/", env!("CARGO_PKG_VERSION")))
            .timeout(REQUEST_TIMEOUT)
            .read_timeout(IDLE_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .referer(false)
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "{base}: the origin must be an http:// or https:// URL"
            ));
        }
        Ok(Origin { http, base })
    }

    /// The URL of asset `path` (which starts with `/`).
    pub(crate) fn asset_url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Fetches a manifest document (`peerhost.json`) as text.
    pub(crate) async fn fetch_manifest(&self, url: &str) -> Result<String, String> {
        let resp = self.http.get(url).send().await.map_err(describe)?;
        if resp.status() != StatusCode::OK {
            return Err(format!("HTTP {}", resp.status()));
        }
        let body = read_capped(resp, MAX_MANIFEST_JSON).await?;
        String::from_utf8(body).map_err(|_| "the manifest is not UTF-8".to_owned())
    }

    /// Fetches `range` (end exclusive) of asset `path`.
    pub(crate) async fn fetch_range(
        &self,
        path: &str,
        range: Range<u64>,
    ) -> Result<Vec<u8>, String> {
        let want = range.end.saturating_sub(range.start) as usize;
        let mut req = self.http.get(self.asset_url(path));
        if want > 0 {
            req = req.header(RANGE, range_header(&range));
        }
        let resp = req.send().await.map_err(describe)?;
        if let Some(cc) = resp.headers().get(CACHE_CONTROL) {
            let cc = cc.to_str().unwrap_or_default().to_ascii_lowercase();
            if cc.contains("private") || cc.contains("no-store") {
                return Err("the origin marked it private (Cache-Control)".into());
            }
        }
        match resp.status() {
            StatusCode::PARTIAL_CONTENT => {
                // One byte more than asked shows an origin sending too much.
                let body = read_capped(resp, want + 1).await?;
                if body.len() != want {
                    return Err(format!("asked for {want} bytes, got {}", body.len()));
                }
                Ok(body)
            }
            // An origin without Range support sends the whole file.
            StatusCode::OK => {
                let body = read_capped(resp, range.end as usize).await?;
                body.get(range.start as usize..range.end as usize)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| "the origin's file is shorter than the manifest says".into())
            }
            s => Err(format!("HTTP {s}")),
        }
    }
}

/// `bytes=first-last` with the last byte inclusive, as HTTP wants it.
pub(crate) fn range_header(range: &Range<u64>) -> String {
    format!("bytes={}-{}", range.start, range.end - 1)
}

/// The origin of a manifest URL: `scheme://host[:port]` (asset paths are
/// absolute paths on the site's host, as in the browser).
pub(crate) fn origin_of(manifest_url: &str) -> Result<String, String> {
    let (scheme, rest) = manifest_url
        .split_once("://")
        .ok_or_else(|| format!("{manifest_url}: not an absolute URL"))?;
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "{manifest_url}: the manifest URL must be http:// or https://"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("{manifest_url}: no host"));
    }
    Ok(format!("{scheme}://{authority}"))
}

/// Reads at most `cap` bytes of the body (stops early rather than buffering more).
async fn read_capped(mut resp: Response, cap: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::with_capacity(cap.min(1 << 20));
    while let Some(chunk) = resp.chunk().await.map_err(describe)? {
        let room = cap - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= cap {
            break;
        }
    }
    Ok(body)
}

/// One line, with the cause (reqwest's own message hides it).
fn describe(e: reqwest::Error) -> String {
    use std::error::Error as _;
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers_are_inclusive() {
        assert_eq!(range_header(&(0..16384)), "bytes=0-16383");
        assert_eq!(range_header(&(16384..16385)), "bytes=16384-16384");
    }

    #[test]
    fn origins_of_manifest_urls() {
        assert_eq!(
            origin_of("https://example.org/peerhost.json").unwrap(),
            "https://example.org"
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/sub/peerhost.json?x=1").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(origin_of("ftp://example.org/peerhost.json").is_err());
        assert!(origin_of("/peerhost.json").is_err());
        assert!(origin_of("http:///peerhost.json").is_err());
    }
}
